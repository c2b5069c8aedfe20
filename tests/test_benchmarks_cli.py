"""``python -m benchmarks`` and ``nnjax bench`` when a run does not end well: a signal
releases the lock of --out and ends in one line with status 128 + N (no traceback); a run
without --out that fails (a signal, a mismatch, an error) leaves no temporary folder, and one
that succeeds keeps its results there; two runs into one --out, a read-only --out and a full
disk while writing the report are one line, exit 3.

The runs in a subprocess stub the workloads (and the JAX behind them): they test the command
line around the suite, in a second or two each."""

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import cli, harness
from nnjax.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parent.parent

# runs the suite's command line with its workloads replaced by BEHAVIOUR (what it does once it
# has said "ready" on stderr); argv[1] says which command: "nnjax" (nnjax bench) or the suite's
DRIVER = """
import signal, sys, time, types
from benchmarks import harness
harness.device_label = lambda: "cpu-test"
harness.environment = lambda: {"cores_available": 2}
harness.load_snapshot = lambda interval=0.5: {}
harness.load_warning = lambda snap, cores: None
check = types.ModuleType("benchmarks.check")
check.Mismatch = type("Mismatch", (Exception,), {})
sys.modules["benchmarks.check"] = check
workloads = types.ModuleType("benchmarks.workloads")
def run_workloads(args, cfg, results, note_load, stem):
    print("ready", file=sys.stderr, flush=True)
    BEHAVIOUR
workloads.run_workloads = run_workloads
sys.modules["benchmarks.workloads"] = workloads
if sys.argv[1] == "nnjax":
    sys.argv = ["nnjax", "bench", *sys.argv[2:]]
    from nnjax import cli
    cli._compilation_cache = lambda args, allowed: None  # imports JAX: not needed here
    cli.entry()
else:
    import runpy
    sys.argv = ["benchmarks", *sys.argv[2:]]
    runpy.run_module("benchmarks", run_name="__main__", alter_sys=True)
"""
WAIT = "time.sleep(60)"
MISMATCH = "raise check.Mismatch('a wrong loss')"
FULL_DISK = "raise OSError(28, 'No space left on device', 'x.json')"
PROG = {"nnjax": "nnjax bench", "suite": "python -m benchmarks"}


def _start(tmp_path, command: str, behaviour: str, *argv) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(_tmp(tmp_path))}
    env.pop("PYTHONUNBUFFERED", None)
    script = DRIVER.replace("BEHAVIOUR", behaviour)
    cmd = [sys.executable, "-c", script, command, "--quick", "--only", "dispatch", *argv]
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _tmp(tmp_path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir(exist_ok=True)
    return folder


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stderr.readline()
    assert line == "ready\n", line + proc.stderr.read()


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    """The status, stdout and stderr (read through the streams: communicate would miss what
    _wait_ready's readline buffered; the output is far below a pipe's capacity)."""
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()  # no-op once it has ended
    with proc.stdout, proc.stderr:
        return proc.returncode, proc.stdout.read(), proc.stderr.read()


def _last_line(err: str) -> str:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_releases_the_lock_of_out_in_one_line(sig, tmp_path):
    """review: `python -m benchmarks --out D` killed by SIGTERM left D/nnjax.lock, taken over
    with a warning by the next run; SIGINT was a KeyboardInterrupt traceback."""
    out = tmp_path / "out"
    proc = _start(tmp_path, "suite", WAIT, "--out", str(out))
    _wait_ready(proc)
    assert (out / LOCK_NAME).exists()
    proc.send_signal(getattr(signal, sig))
    code, _, err = _finish(proc)
    assert code == 128 + getattr(signal, sig)
    assert _last_line(err) == f"python -m benchmarks: error: interrupted by {sig}"
    assert not out.exists()  # the run made it and wrote nothing: removed again, lock and all


@pytest.mark.parametrize(
    ("command", "behaviour", "code", "line"),
    [
        ("nnjax", "SIGTERM", 143, "nnjax bench: error: interrupted by SIGTERM"),
        ("suite", "SIGTERM", 143, "python -m benchmarks: error: interrupted by SIGTERM"),
        ("nnjax", MISMATCH, 1, "a wrong loss"),
        (
            "suite",
            FULL_DISK,
            3,
            "python -m benchmarks: error: x.json: No space left on device (errno 28, ENOSPC)",
        ),
    ],
)
def test_a_failed_run_without_out_leaves_no_temporary_folder(
    command, behaviour, code, line, tmp_path
):
    """review: `nnjax bench` without --out left its temporary folder (nnjax-bench-*, empty:
    no report) behind after a failure."""
    proc = _start(tmp_path, command, WAIT if behaviour == "SIGTERM" else behaviour)
    _wait_ready(proc)
    if behaviour == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    got, out, err = _finish(proc)
    assert got == code, err
    assert out.startswith(f"writing results to {_tmp(tmp_path)}{os.sep}nnjax-bench-")
    assert line in err and "Traceback" not in err, err
    assert list(_tmp(tmp_path).iterdir()) == []


def _args(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(["--quick", "--only", "dispatch", "--no-plots", *argv])


@pytest.fixture
def stubbed_suite(tmp_path, monkeypatch):
    """The suite in this process with no workload (and no JAX behind it); new temporary
    folders in tmp_path/tmp."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(_tmp(tmp_path)))
    monkeypatch.setattr(harness, "device_label", lambda: "cpu-test")
    monkeypatch.setattr(harness, "environment", lambda: {"cores_available": 2})
    monkeypatch.setattr(harness, "load_snapshot", lambda interval=0.5: {})
    monkeypatch.setattr(harness, "load_warning", lambda snap, cores: None)
    monkeypatch.setattr("benchmarks.workloads.run_workloads", lambda *a: None)
    return _tmp(tmp_path)


def test_a_successful_run_keeps_its_temporary_folder(stubbed_suite, monkeypatch):
    def write(out, stem, results, args):
        (out / "report.md").write_text("the report")

    monkeypatch.setattr(cli, "write", write)
    args = _args()
    assert cli.run(args) == 0
    assert args.out.parent == stubbed_suite and (args.out / "report.md").is_file()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.EIO, "I/O error")])
def test_a_run_that_raises_removes_its_temporary_folder(error, stubbed_suite, monkeypatch):
    """A run stopped before its first workload has finished has saved no measurements: its
    temporary folder goes. (Stopped later, or at the report, it keeps them:
    tests/test_benchmarks_partial.py, tests/test_cli_faults2_audit.py.)"""

    def run_workloads(args, cfg, results, note_load, stem):
        (args.out / "half.png").write_text("half a figure")
        raise error

    monkeypatch.setattr("benchmarks.workloads.run_workloads", run_workloads)
    with pytest.raises(type(error)):
        cli.run(_args())
    assert list(stubbed_suite.iterdir()) == []


def test_a_run_into_a_given_out_keeps_it_when_it_fails(stubbed_suite, tmp_path, monkeypatch):
    """--out is the user's: what a failed run wrote there stays (only a temporary one goes)."""
    monkeypatch.setattr(cli, "write", lambda out, stem, results, args: 1 / 0)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "earlier.md").write_text("kept")
    with pytest.raises(cli.ReportFailed):
        cli.run(_args("--out", str(out)))
    assert (out / "earlier.md").read_text() == "kept"


def test_a_second_run_into_the_same_out_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    first = _start(tmp_path, "suite", WAIT, "--out", str(out))
    try:
        _wait_ready(first)
        for command in ("suite", "nnjax"):
            second = _start(tmp_path, command, "pass", "--out", str(out))
            code, _, err = _finish(second)
            assert code == 3, err
            line = _last_line(err)
            assert line.startswith(f"{PROG[command]}: error: {out} is in use by another run: ")
            assert f"process {first.pid} on host" in line
    finally:
        first.send_signal(signal.SIGTERM)
        _finish(first)
    assert not (out / LOCK_NAME).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_line(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, _, err = _finish(_start(tmp_path, "suite", "pass", "--out", str(out)))
    finally:
        out.chmod(0o755)
    assert code == 3 and "Permission denied" in _last_line(err), err


def test_the_watchdogs_line_names_the_suite(tmp_path):
    """A signal the main thread cannot serve in time (a long compiled call): the watchdog
    ends the run with the suite's own name, and its lock file goes."""
    out = tmp_path / "out"
    # as in a long XLA call, the main thread does not run Python's handler: here it blocks
    # the signal, which another thread takes, and sleeps
    stuck = "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); time.sleep(60)"
    proc = _start(tmp_path, "suite", stuck, "--out", str(out))
    _wait_ready(proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, _, err = _finish(proc)
    assert code == 143, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("python -m benchmarks: error: interrupted by SIGTERM (the running ")
    assert not (out / LOCK_NAME).exists()


def test_a_full_disk_while_writing_the_report_is_one_line(
    stubbed_suite, tmp_path, capsys, monkeypatch
):
    """The report written on a full disk: one line naming the file, exit 3; the lock of --out
    released, no torn or temporary file left (atomic writes), and the --out it made gone."""
    from disk_faults import enospc_when_writing

    enospc_when_writing(monkeypatch, "cpu-test")
    out = tmp_path / "out"
    assert cli.main(["--quick", "--only", "dispatch", "--no-plots", "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    day = time.strftime("%Y-%m-%d", time.gmtime())  # the report's name: UTC
    assert line == (
        f"python -m benchmarks: error: {out}{os.sep}cpu-test-{day}-"
        "only-dispatch-quick.json: No space left on device (errno 28, ENOSPC)"
    )
    assert not out.exists()  # the folder it made, empty: removed, as by nnjax bench


@pytest.mark.parametrize(
    ("argv", "header"),
    [
        (["--only", "dispatch", "seed"], "(quick run, --only seed dispatch)"),  # run order
        (["--only", *cli.WORKLOADS], "(quick run)"),
    ],
)
def test_the_report_header_names_the_workloads_only_chose(argv, header, stubbed_suite, monkeypatch):
    # an --only run was headed "(full run)" like the whole suite's
    from benchmarks import report

    written = {}
    monkeypatch.setattr(cli, "write", lambda out, stem, results, args: written.update(results))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--quick", "--no-plots", *argv])) == 0
    committed = json.loads(Path(cli.RESULTS, "cpu-2cores-2026-12-06.json").read_text())
    run = {k: written[k] for k in ("mode", "only") if k in written}
    text = report.markdown({**committed, **run}, {})
    assert text.splitlines()[0].endswith(header)
