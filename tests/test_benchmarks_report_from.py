"""A run whose report fails keeps its measurements, and ``--report-from`` writes the report
from them. A full run measures for 20 minutes before its report: on 2026-12-05 a defect in
the report's imports lost one whole run (no JSON was written before the targets were
evaluated, and the temporary folder was removed)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from benchmarks import cli, harness

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "benchmarks" / "results" / "cpu-2cores-2026-12-04.json"


@pytest.fixture
def no_workloads(tmp_path, monkeypatch):
    """The suite in this process with no workload; new temporary folders in tmp_path/tmp."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(harness, "device_label", lambda: "cpu-test")
    monkeypatch.setattr(harness, "environment", lambda: {"cores_available": 2})
    monkeypatch.setattr(harness, "load_snapshot", lambda interval=0.5: {})
    monkeypatch.setattr(harness, "load_warning", lambda snap, cores: None)

    def measured(args, cfg, results, note_load, stem):
        results["dispatch"] = {"jax_jit_us": 4.2}

    monkeypatch.setattr("benchmarks.workloads.run_workloads", measured)
    return tmp


def _report_fails(monkeypatch):
    def evaluate(results):
        raise ImportError("cannot import name 'why_unmeasured'")

    monkeypatch.setattr("benchmarks.targets.evaluate", evaluate)


@pytest.mark.parametrize("given_out", [False, True])
def test_a_failed_report_keeps_the_measurements(given_out, no_workloads, tmp_path, monkeypatch):
    _report_fails(monkeypatch)
    argv = ["--quick", "--only", "dispatch", "--no-plots"]
    if given_out:
        argv += ["--out", str(tmp_path / "out")]
    with pytest.raises(cli.ReportFailed) as info:
        cli.main(argv)
    saved = info.value.path
    assert saved.parent == (tmp_path / "out" if given_out else next(no_workloads.iterdir()))
    assert f"--report-from {saved}" in str(info.value)
    results = json.loads(saved.read_text())
    assert results["dispatch"] == {"jax_jit_us": 4.2} and "targets" not in results
    assert isinstance(info.value.__cause__, ImportError)


def _run_report_from(*argv) -> int:
    return cli.main(["--report-from", *map(str, argv)])


def test_report_from_refuses_options_that_drive_workloads(tmp_path, capsys):
    saved = tmp_path / "x.json"
    saved.write_text(json.dumps({"suite": "nnjax benchmarks"}))
    for extra, option in ((["--only", "mlp"], "--only"), (["--repeats", "3"], "--repeats")):
        with pytest.raises(SystemExit) as info:
            _run_report_from(saved, *extra)
        assert info.value.code == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert (
            f"error: {option}: --report-from runs no workload and would ignore it; leave it out"
        ) in line, line


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("x.txt", "{}", "give a run's <stem>.json"),
        ("x.json", "{not json", "not JSON"),
        ("x.json", '{"suite": "other"}', "not the measurements of a benchmark run"),
    ],
)
def test_report_from_refuses_a_file_that_is_no_run(name, text, why, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SystemExit) as info:
        _run_report_from(path)
    assert info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--report-from {path}: {why}" in line, line


def test_report_from_keeps_an_existing_report_unless_overwrite(tmp_path, capsys):
    saved = tmp_path / COMMITTED.name
    shutil.copy(COMMITTED, saved)
    report = saved.with_suffix(".md")
    report.write_text("the user's")
    with pytest.raises(SystemExit) as info:
        _run_report_from(saved, "--no-plots")
    assert info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"already holds {report.name}" in line and "--overwrite" in line, line
    assert report.read_text() == "the user's"


def _startup(help_s: float, compile2: float, speedup: float) -> dict:
    rows = {n: {"median": help_s, "min": help_s, "max": help_s} for n in ("nnjax --help",)}
    rows["import nnjax"] = {"median": 0.9, "min": 0.9, "max": 0.9}
    pair = {"first_compile": 1.2, "first_wall": 5.7, "second_wall": 2.8, "speedup": speedup}
    train = [{**pair, "second_compile": compile2}]
    return {"startup": {"repeats": 5, "cli": "nnjax", "rows": rows, "train": train}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -0.1])
def test_a_start_up_time_that_is_no_measurement_gives_no_verdict(bad):
    """A --help of 0 s was "met", a nan one MISSED: neither measured anything."""
    from benchmarks import startup

    got = [t["holds"] for t in startup.targets(_startup(bad, 0.05, 2.0))]
    assert got == [None, True, True, True]
    got = [t["holds"] for t in startup.targets(_startup(0.3, bad, bad))]
    # a compile time of 0.00 s is what a cached second run prints: a measurement
    assert got == [True, True, True if bad == 0.0 else None, None]
    got = [t["holds"] for t in startup.targets(_startup(0.6, 0.3, 1.4))]
    assert got == [False, True, False, False]


def test_report_from_a_committed_runs_json_gives_its_committed_report(tmp_path):
    """The report written again from the measurements equals the one the run wrote (the
    start-up compile times aside: printed to 3 decimals then, to the 2 nnjax train prints
    now; "1 epochs" then, "1 epoch" now); the JSON gets its targets back unchanged."""
    saved = tmp_path / COMMITTED.name
    shutil.copy(COMMITTED, saved)
    stripped = json.loads(saved.read_text())
    committed_targets = stripped.pop("targets")
    saved.write_text(json.dumps(stripped))  # as a run whose report failed leaves it
    assert _run_report_from(saved) == 0
    got = saved.with_suffix(".md").read_text().splitlines()
    want = COMMITTED.with_suffix(".md").read_text().splitlines()
    assert len(got) == len(want)
    for a, b in zip(got, want):
        b = b.replace("(1 epochs of", "(1 epoch of")  # the singular since 2026-12-06
        assert a == b or a == re.sub(r"\b(\d\.\d\d)0\b", r"\1", b), (a, b)
    assert (tmp_path / f"{saved.stem}-throughput.png").stat().st_size > 0
    targets = json.loads(saved.read_text())["targets"]
    assert [t["holds"] for t in targets] == [t["holds"] for t in committed_targets]
