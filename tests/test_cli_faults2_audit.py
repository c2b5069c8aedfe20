"""Audit of `nnjax sleep`, `nnjax night`, `nnjax bench` on the paths of faults: a stop signal
while the numbers replace an earlier run's (their earlier figures must not stay beside
them), a signal that a native extension turns into an ImportError as it loads, and a full disk
or a signal at the benchmark report (the measurements saved before it are kept, and said so)."""

import errno
import os
import signal
import subprocess
import sys

import pytest
from test_benchmarks_cli import _args, stubbed_suite  # noqa: F401  (a fixture)

from benchmarks import cli as bench_cli
from nnjax import errors
from nnjax import io as nio
from nnjax.cli_signals import signals_unwind

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _files(folder) -> dict:
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def _sigint_after_replacing(monkeypatch, name: str) -> None:
    """A Ctrl-C that comes as ``name`` is renamed into place (in atomic_write_files' renames
    it is deferred and raised after the last)."""
    real = os.replace

    def replace(src, dst):
        real(src, dst)
        if os.path.basename(dst) == name:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace)


def _write_new_run(folder) -> None:
    """A new run's results.json, then its fig.png, into ``folder`` (the commands' order)."""
    nio.write_numbers_then_figures(
        str(folder),
        ["fig.png"],
        lambda: nio.atomic_write_files([(str(folder / "results.json"), b"new")]),
        lambda: nio.atomic_write_bytes(str(folder / "fig.png"), b"new figure"),
        numbers=["results.json"],
    )


def test_a_signal_during_the_numbers_renames_leaves_no_earlier_figure(tmp_path, monkeypatch):
    for name, text in (("results.json", b"earlier"), ("fig.png", b"earlier figure")):
        (tmp_path / name).write_bytes(text)
    _sigint_after_replacing(monkeypatch, "results.json")
    with pytest.raises(KeyboardInterrupt):
        _write_new_run(tmp_path)
    assert _files(tmp_path) == {"results.json": b"new"}  # not the earlier figure beside it


def test_numbers_that_fail_before_replacing_keep_the_earlier_run_whole(tmp_path, monkeypatch):
    from disk_faults import enospc_when_writing

    earlier = {"results.json": b"earlier", "fig.png": b"earlier figure"}
    for name, text in earlier.items():
        (tmp_path / name).write_bytes(text)
    enospc_when_writing(monkeypatch, "results.json")
    with pytest.raises(OSError, match="No space left"):
        _write_new_run(tmp_path)
    assert _files(tmp_path) == dict(sorted(earlier.items()))  # no temporary file either


# The studies below run small (sleep: 2 runs, the fewest it takes, of 5 steps; night: one wake
# epoch of 3 s, the shortest a stage may be, of the smallest network); they write every file
# of a full run, in the same order.

# `nnjax ARGS` whose os.replace raises SIGINT once results.json is in place
DRIVER = """
import os, signal, sys
real = os.replace
def replace(src, dst):
    real(src, dst)
    if os.path.basename(dst) == "results.json":
        signal.raise_signal(signal.SIGINT)
os.replace = replace
sys.argv = ["nnjax", *sys.argv[1:]]
from nnjax import cli
cli.entry()
"""


@pytest.mark.parametrize(
    "argv, figures",
    [
        (["sleep", "--seeds", "2", "--orders", "0", "--methods", "sequential", "--steps", "5"],
         ("accuracy.png", "heatmap.png", "dreams.png")),
        (["night", "--parts", "night", "--hypnogram", "W", "--epoch-s", "3", "--n-exc", "100"],
         ("night.png", "stages.png")),
    ],
)  # fmt: skip
def test_a_command_stopped_as_its_numbers_land_keeps_no_earlier_figure(argv, figures, tmp_path):
    """review: `nnjax sleep --overwrite` stopped by Ctrl-C just after results.json and
    table.md were replaced left the earlier study's accuracy.png beside the new numbers.
    `nnjax sleep` now lets a first signal's files land whole (tests/test_study_stop.py),
    and so does `nnjax night` (tests/test_night_walk_audit.py)."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.json", *figures):
        (out / name).write_bytes(b"an earlier run's")
    env = dict(os.environ, PYTHONPATH=ROOT, NNJAX_CACHE_DIR="off")
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv, "--out", str(out), "--overwrite"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    last = f"nnjax {argv[0]}: error: interrupted by SIGINT"
    if argv[0] == "sleep":
        last += f": the study had finished; its table is in {out}/"
    assert proc.stderr.strip().splitlines()[-1] == last
    assert "Traceback" not in proc.stderr
    kept = _files(out)
    assert kept["results.json"] != b"an earlier run's"  # the new numbers landed
    earlier = [n for n in figures if kept.get(n) == b"an earlier run's"]
    assert not earlier, earlier  # and no earlier figure beside them
    assert set(figures) <= set(kept)  # the new figures landed too (the signal waited)
    assert not [n for n in kept if n.endswith(".tmp") or n == "nnjax.lock"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "argv, written",
    [
        (["sleep", "--seeds", "2", "--orders", "0", "--methods", "sequential", "--steps", "5"],
         ["accuracy.png", "dreams.png", "heatmap.png", "results.json", "table.md"]),
        (["night", "--parts", "night", "--hypnogram", "W", "--epoch-s", "3", "--n-exc", "100"],
         ["README.md", "night.png", "results.json", "stages.png"]),
    ],
)  # fmt: skip
def test_a_full_standard_output_loses_none_of_the_files(argv, written, tmp_path):
    """review: `nnjax sleep --out D > /dev/full` wrote nothing to D (the table was printed
    before the files: the study was lost); `nnjax night` wrote no figure (its summary was
    printed between the numbers and the figures)."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT, NNJAX_CACHE_DIR="off")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "nnjax", *argv, "--out", str(out)],
            stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"nnjax {argv[0]}: error: cannot write standard output: No space left on device "
        "(errno 28, ENOSPC)"
    )
    assert sorted(os.listdir(out)) == written


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_an_extension_turned_into_an_import_error_ends_as_the_signal(signum, code):
    """review: Ctrl-C as matplotlib's Agg backend loaded (`nnjax night`, at the first figure)
    was `ImportError: initialization failed`, a traceback and exit 1."""
    with pytest.raises(KeyboardInterrupt) as info:
        with signals_unwind("night"):
            try:
                signal.raise_signal(signum)
            except KeyboardInterrupt as e:  # as a native module's initialisation does
                raise ImportError("initialization failed") from e
    assert errors.exit_code(info.value) == code
    assert errors.describe(info.value) == f"interrupted by {signal.Signals(signum).name}"


def test_other_failures_in_the_block_stay_themselves():
    with pytest.raises(ImportError):  # no signal behind it: a bug, its traceback
        with signals_unwind("night"):
            raise ImportError("initialization failed")
    with pytest.raises(OSError, match="No space"):  # an expected failure while unwinding
        with signals_unwind("night"):
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                raise OSError(errno.ENOSPC, "No space left on device", "x.json") from None


def _report_fails(monkeypatch, error) -> None:
    def write(out, stem, results, args):
        raise error

    monkeypatch.setattr(bench_cli, "write", write)
    monkeypatch.setattr("benchmarks.targets.evaluate", lambda results: {})


def test_a_full_disk_at_the_report_keeps_the_saved_measurements(stubbed_suite, monkeypatch):  # noqa: F811
    """review: without --out, a full disk at the report removed the temporary folder with
    the measurements it had saved; the line said only the disk was full."""
    _report_fails(monkeypatch, OSError(errno.ENOSPC, "No space left on device", "x.md"))
    with pytest.raises(OSError) as info:
        bench_cli.run(_args())
    (folder,) = stubbed_suite.iterdir()
    (saved,) = folder.iterdir()
    assert saved.suffix == ".json" and '"suite": "nnjax benchmarks"' in saved.read_text()
    line = errors.describe(info.value)
    assert line.startswith("x.md: No space left on device; the measurements saved before the ")
    assert f"--report-from {saved}` writes the report (errno 28, ENOSPC)" in line
    assert errors.exit_code(info.value) == 3


def test_a_signal_at_the_report_says_the_measurements_are_kept(
    stubbed_suite,  # noqa: F811
    tmp_path,
    capsys,
    monkeypatch,
):
    _report_fails(monkeypatch, KeyboardInterrupt())
    out = tmp_path / "out"
    assert bench_cli.main(["--quick", "--only", "dispatch", "--no-plots", "--out", str(out)]) == 130
    (saved,) = out.iterdir()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        "python -m benchmarks: error: interrupted by SIGINT: the measurements saved before the "
        f"report are kept in {saved}: `python -m benchmarks --report-from {saved}` writes the "
        "report"
    )
