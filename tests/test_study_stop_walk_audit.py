"""Adversarial walk of a stopped study (``nnjax compare``/``nnjax sleep`` on a signal; the
``stop`` of compare, run_optimizer_study and run_study): a stop flag that is not one is
refused up front, naming it; a flag requested before the call writes nothing, not even the
folder, and leaves an earlier comparison as it was; two signals as the second optimizer
starts stop at once and leave an earlier comparison's files untouched (--overwrite)."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from nnjax.brain.study import run_study
from nnjax.compare import StudyStopped, compare, make_study, run_optimizer_study
from nnjax.train import StopFlag

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = dict(optimizers=["gd", "sgd"], seeds=1, epochs=3, hidden=[4])


@pytest.mark.parametrize(
    "name, call",
    [
        ("compare", lambda stop: compare("toy", **TOY, stop=stop)),
        ("run_optimizer_study",
         lambda stop: run_optimizer_study(make_study("toy", **TOY), stop=stop)),
        ("run_study", lambda stop: run_study("digits", [0], 1, ["sequential"], stop=stop)),
    ],
)  # fmt: skip
@pytest.mark.parametrize("stop", [threading.Event(), True], ids=["Event", "True"])
def test_a_stop_that_is_not_a_stop_flag_is_refused_naming_it(name, call, stop):
    """fit refuses it (``fit: stop must be a StopFlag ... got ...``); the studies read
    ``stop.requested`` after loading the data: "AttributeError: 'Event' object has no
    attribute 'requested'" (a study's ``stop=True`` likewise)."""
    with pytest.raises(ValueError) as info:
        call(stop)
    text = str(info.value)
    assert text.startswith(f"{name}: stop must be a StopFlag"), text
    assert repr(stop) in text, text


def test_a_flag_requested_before_compare_writes_nothing(tmp_path):
    """No optimizer ran: StudyStopped without a comparison, no folder made; an earlier
    report in ``out`` (overwrite=True) is left as it was."""
    stop = StopFlag()
    stop.request("SIGTERM")
    new = tmp_path / "new"
    with pytest.raises(StudyStopped) as info:
        compare("toy", **TOY, plots=False, out=str(new), stop=stop)
    assert info.value.comparison is None and info.value.unfinished == ("gd", "sgd")
    assert str(info.value) == "stopped by SIGTERM before any optimizer finished its runs"
    assert not new.exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.md").write_text("an earlier report\n")
    with pytest.raises(StudyStopped):
        compare("toy", **TOY, plots=False, out=str(old), overwrite=True, stop=stop)
    assert os.listdir(old) == ["report.md"]
    assert (old / "report.md").read_text() == "an earlier report\n"


# `nnjax ARGS` that raises SIGTERM twice as compare.study.train_optimizer starts on sgd
TWICE = """
import signal, sys
from nnjax.compare import study as m
real = m.train_optimizer
def at(name, *a, **k):
    if name == "sgd":
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
    return real(name, *a, **k)
m.train_optimizer = at
sys.argv = ["nnjax", *sys.argv[1:]]
from nnjax import cli
cli.entry()
"""


def test_two_signals_between_optimizers_stop_at_once_keeping_an_earlier_report(tmp_path):
    """Ctrl-C twice (here SIGTERM) as sgd starts, into a folder of an earlier comparison
    with --overwrite: exit 143, one error line, gd's report not written, the earlier files
    byte for byte, no lock or temporary file left."""
    out = tmp_path / "cmp"
    out.mkdir()
    earlier = {n: f"earlier {n}\n" for n in ("report.md", "runs.csv", "runs.json")}
    for n, text in earlier.items():
        (out / n).write_text(text)
    argv = ["compare", "--dataset", "toy", "--optimizers", "gd,sgd", "--seeds", "1", "--epochs",
            "3", "--hidden", "4", "--no-plots", "--overwrite", "--out", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT, NNJAX_CACHE_DIR="off")
    proc = subprocess.run([sys.executable, "-c", TWICE, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    err = proc.stderr.replace("\r", "\n").strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err[-1] == (
        "nnjax compare: error: interrupted by SIGTERM: a second signal while stopping: "
        "stopped at once, nothing written"
    )
    assert not any("Traceback" in line or "Exception ignored" in line for line in err), err
    assert not any("stopping, writing" in line for line in err), err
    assert sorted(os.listdir(out)) == sorted(earlier)
    assert {n: (out / n).read_text() for n in earlier} == earlier
