"""A comparison stopped by its stop flag (``nnjax compare``: a signal) keeps the optimizers
that finished every run: the same numbers as an unstopped study's, written as a whole
study's files are, the report and runs.json naming the optimizers it lacks. ``nnjax sleep``
keeps its methods likewise."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from test_cli_faults2_audit import DRIVER as RESULTS_DRIVER

from nnjax.compare import StudyStopped, make_study, run_optimizer_study, write_report
from nnjax.train import StopFlag

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = dict(optimizers=["gd", "sgd", "adam"], seeds=2, epochs=6)


def _stopped_in(name: str, stop: StopFlag):
    """An ``on_progress`` that requests the stop after the first compiled chunk of ``name``."""
    started = []

    def on_progress(optimizer, done, total, epochs):
        if optimizer == name and started:
            stop.request("SIGTERM")
        started.extend([optimizer] if optimizer == name else [])

    return on_progress


def test_a_stopped_study_keeps_the_optimizers_that_finished(tmp_path):
    study, stop = make_study("toy", **SETTINGS), StopFlag()
    with pytest.raises(StudyStopped) as info:
        run_optimizer_study(study, on_progress=_stopped_in("sgd", stop), stop=stop)
    e = info.value
    assert (e.reason, e.unfinished) == ("SIGTERM", ("sgd", "adam"))
    assert str(e) == "stopped by SIGTERM before sgd and adam finished their runs"
    result = e.result
    assert list(result.runs) == ["gd"] and result.study.optimizers == ("gd",)
    assert result.stopped == str(e)
    whole = run_optimizer_study(make_study("toy", **{**SETTINGS, "optimizers": ["gd"]}))
    assert whole.stopped is None
    for k, v in whole.runs["gd"].metrics.items():  # the very numbers of an unstopped study
        np.testing.assert_array_equal(result.runs["gd"].metrics[k], v, err_msg=k)
    np.testing.assert_array_equal(result.runs["gd"].step_loss, whole.runs["gd"].step_loss)
    write_report(result, str(tmp_path), plots=False)
    report = (tmp_path / "report.md").read_text().splitlines()
    assert "; 1 feature, 2 classes." in report[4]  # toy: it read "1 features"
    assert report[2] == (
        "**Incomplete: stopped by SIGTERM before sgd and adam finished their runs.** The "
        "results are those of gd."
    )
    timing = next(ln for ln in report if ln.startswith("Run time / run: "))
    assert "The optimizers that finished: compile " in timing and "Whole study" not in timing
    study_json = json.loads((tmp_path / "runs.json").read_text())["study"]
    assert study_json["optimizers"] == ["gd"] and study_json["stopped"] == str(e)
    write_report(whole, str(tmp_path / "whole"), plots=False)  # a whole study says nothing
    assert "Incomplete" not in (tmp_path / "whole" / "report.md").read_text()
    assert json.loads((tmp_path / "whole" / "runs.json").read_text())["study"]["stopped"] is None


def test_compare_writes_the_finished_optimizers_to_out_and_holds_them(tmp_path, monkeypatch):
    from nnjax.compare import compare
    from nnjax.compare import study as study_module

    stop, real = StopFlag(), study_module.train_optimizer

    def at_sgd(name, *a, **k):  # a signal as sgd starts
        if name == "sgd":
            stop.request("SIGINT")
        return real(name, *a, **k)

    monkeypatch.setattr(study_module, "train_optimizer", at_sgd)
    out = tmp_path / "out"
    with pytest.raises(StudyStopped) as info:
        compare("toy", **{**SETTINGS, "epochs": 2}, out=out, plots=False, stop=stop)
    c = info.value.comparison
    assert list(c.result.runs) == ["gd"] and list(c.summary) == ["gd"]
    assert sorted(c.paths) == ["csv", "json", "report"]
    assert json.loads((out / "runs.json").read_text())["study"]["stopped"] == (
        "stopped by SIGINT before sgd and adam finished their runs"
    )


def test_a_stop_before_the_first_optimizer_ends_holds_no_result():
    stop = StopFlag()
    with pytest.raises(StudyStopped) as info:
        run_optimizer_study(make_study("toy", **SETTINGS), on_progress=_stopped_in("gd", stop),
                            stop=stop)  # fmt: skip
    assert info.value.result is None and info.value.unfinished == ("gd", "sgd", "adam")
    assert str(info.value) == "stopped by SIGTERM before any optimizer finished its runs"
    other = StopFlag()
    other.request()  # no signal's: its reason in brackets
    with pytest.raises(StudyStopped, match=r"^stopped \(stop requested\) before any optimizer"):
        run_optimizer_study(make_study("toy", **SETTINGS), stop=other)


# `nnjax ARGS` that sends itself SIGTERM as {module}.{func} starts on the part {part}
SIGTERM_AT = """
import os, signal, sys
from nnjax.{package} import {module} as m
real = m.{func}
def at(names, *a, **k):
    if (names if isinstance(names, str) else names[0]) == {part!r}:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(names, *a, **k)
m.{func} = at
sys.argv = ["nnjax", *sys.argv[1:]]
from nnjax import cli
cli.entry()
"""


def _sigterm_at(argv, where: str, part: str) -> tuple[str, list[str]]:
    """``nnjax ARGV`` sent SIGTERM as the function ``where`` (``package.module.func``) starts
    on ``part``: it exits 143; its stdout and its stderr lines."""
    package, module, func = where.split(".")
    code = SIGTERM_AT.format(package=package, module=module, func=func, part=part)
    env = dict(os.environ, NNJAX_CACHE_DIR="off")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    err = proc.stderr.replace("\r", "\n").strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM, err
    return proc.stdout, err


def test_sigterm_during_the_second_optimizer_writes_the_first_ones_report(tmp_path):
    """``nnjax compare`` ended by SIGTERM as sgd starts: exit 143, gd's report written (it
    lost every run), one announcement and one error line naming what is missing."""
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "digits", "--optimizers", "gd,sgd", "--seeds",
            "1", "--epochs", "20", "--hidden", "16", "--no-plots", "--out", str(out)]  # fmt: skip
    stdout, err = _sigterm_at(argv, "compare.study.train_optimizer", "sgd")
    assert err[-2:] == [
        f"nnjax compare: SIGTERM: stopping, writing the report of gd to {out}/ (a second "
        "signal stops at once)",
        "nnjax compare: error: interrupted by SIGTERM: sgd had not finished its runs; the "
        f"report of gd is in {out}/",
    ]
    assert sorted(os.listdir(out)) == ["report.md", "runs.csv", "runs.json"]
    assert re.search(r"^wall [\d.]+ s; the finished optimizers: compile [\d.]+ s \+ run "
                     r"[\d.]+ s$", stdout, re.M), stdout  # fmt: skip
    runs = json.loads((out / "runs.json").read_text())
    assert {r["optimizer"] for r in runs["runs"]} == {"gd"}
    assert runs["study"]["stopped"] == "stopped by SIGTERM before sgd finished its runs"


# `nnjax ARGS` whose os.replace raises SIGINT once runs.csv is in place (the first file)
DRIVER = RESULTS_DRIVER.replace('"results.json"', '"runs.csv"')


def test_ctrl_c_while_a_finished_study_is_written_lets_the_files_land(tmp_path):
    """Ctrl-C a moment late, as the report is written: the files land whole, then exit 130
    with a line saying where they are (it said only "interrupted by SIGINT")."""
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "toy", "--optimizers", "gd", "--seeds", "1", "--epochs",
            "5", "--no-plots", "--out", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, NNJAX_CACHE_DIR="off")
    proc = subprocess.run([sys.executable, "-c", DRIVER, *argv], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-2:] == [
        f"nnjax compare: SIGINT: the study is done, finishing writing its report to {out}/ (a "
        "second signal stops at once)",
        f"nnjax compare: error: interrupted by SIGINT: the study had finished; its report is in "
        f"{out}/",
    ]
    assert sorted(os.listdir(out)) == ["report.md", "runs.csv", "runs.json"]
    assert json.loads((out / "runs.json").read_text())["study"]["stopped"] is None


def test_sigterm_during_the_second_method_writes_the_first_ones_table(tmp_path):
    """``nnjax sleep`` ended by SIGTERM as EWC starts: exit 143, sequential's table and
    figures written (it lost every run), the table and results.json naming EWC missing."""
    out = tmp_path / "sl"
    argv = ["sleep", "--seeds", "2", "--orders", "0", "--methods", "sequential,ewc", "--steps",
            "3", "--no-images", "--out", str(out)]  # fmt: skip
    stdout, err = _sigterm_at(argv, "brain.study.run_group", "ewc")
    assert err[-1] == (
        "nnjax sleep: error: interrupted by SIGTERM: ewc had not finished its runs; the table of "
        f"sequential is in {out}/"
    )
    assert stdout.startswith("**Incomplete: stopped by SIGTERM before ewc finished its runs.**")
    assert (out / "table.md").read_text().startswith(stdout.splitlines()[0])
    res = json.loads((out / "results.json").read_text())
    assert res["rows"] == ["sequential"] and res["unfinished"] == ["ewc"]
    assert sorted(os.listdir(out)) == ["accuracy.png", "heatmap.png", "results.json", "table.md"]
