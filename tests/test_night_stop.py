"""``nnjax night`` writes the night part's files before the consolidation part starts: a run
stopped there (a signal the consolidation's long compiled calls cannot serve before the
watchdog ends the process, SIGKILL, out of memory) kept nothing of minutes of night before.

The parts are replaced by fakes that put the committed run's numbers into the results (no
JAX work); a signal is its exception raised inside the consolidation part, as the handler
raises it in the main thread."""

import copy
import errno
import json
import os
import signal
from pathlib import Path

import pytest

from nnjax.brain import night
from nnjax.cli import main
from nnjax.errors import Interrupted

COMMITTED = Path(__file__).resolve().parents[1] / "docs/results/network-sleep/results.json"
NIGHT_FIGURES = ["night.png", "stages.png"]


@pytest.fixture
def parts(monkeypatch):
    """Fake parts; ``seen["readme"]``: README.md of --out as the consolidation started;
    ``seen["consolidation"]``: called with the folder, or raising, as a test sets it."""
    from nnjax.plotting import subplots

    committed = night.load_results(COMMITTED)
    seen = {"consolidation": lambda out: None}

    def night_part(args, results, stop=None):
        results["night"] = copy.deepcopy(committed["night"])
        return {name: subplots()[0] for name in NIGHT_FIGURES}

    def consolidation_part(args, results):
        readme = Path(args.out) / "README.md"
        seen["readme"] = readme.read_text() if readme.exists() else None
        seen["consolidation"](Path(args.out))
        results["consolidation"] = copy.deepcopy(committed["consolidation"])
        return {name: subplots()[0] for name in ("recall.png", "replay.png")}

    monkeypatch.setattr(night, "run_night_part", night_part)
    monkeypatch.setattr(night, "run_consolidation_part", consolidation_part)
    return seen


def _results(out: Path) -> dict:
    return night.load_results(out / "results.json")


def _text(obj) -> str:
    """``obj`` as strict JSON (NaN as null): NaN == NaN compares true there."""
    return json.dumps(night.jsonable(obj), sort_keys=True)


def _assert_unfinished(out: Path) -> None:
    """--out holds the night part alone, saying so, and its figures (real PNGs)."""
    written = _results(out)
    assert written["unfinished"] == ["consolidation"] and "consolidation" not in written
    assert _text(written["night"]) == _text(night.load_results(COMMITTED)["night"])
    readme = (out / "README.md").read_text()
    assert readme == night.report_markdown(written)
    assert "**Unfinished run.** Written when the consolidation part had not yet finished" in readme
    assert "## The night" in readme and "## Consolidation" not in readme
    assert sorted(os.listdir(out)) == sorted(["README.md", "results.json", *NIGHT_FIGURES])
    for name in NIGHT_FIGURES:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_consolidation_keeps_the_night(parts, signum, tmp_path, capsys):
    def stopped(out):
        raise KeyboardInterrupt if signum == signal.SIGINT else Interrupted(signum)

    parts["consolidation"] = stopped
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 128 + signum
    _assert_unfinished(out)
    said = capsys.readouterr()
    assert f"nnjax night: the night part's results are in {out}/ (results.json, README.md, " \
        "night.png, stages.png)" in said.out  # fmt: skip
    assert said.err.strip().splitlines()[-1].startswith("nnjax night: error: interrupted")


def test_a_run_that_ends_replaces_the_unfinished_files(parts, tmp_path, capsys):
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 0
    assert "**Unfinished run.**" in parts["readme"] and "## The night" in parts["readme"]
    written = _results(out)
    assert "unfinished" not in written and set(written) >= {"night", "consolidation"}
    readme = (out / "README.md").read_text()
    assert "Unfinished" not in readme and readme == night.report_markdown(written)
    assert len(os.listdir(out)) == 6
    assert capsys.readouterr().err == ""


def test_one_part_alone_writes_once(parts, tmp_path, monkeypatch):
    """--parts night has nothing after the night to wait for: one write, no unfinished mark."""
    from nnjax.commands import night_write

    calls = []
    real = night_write.write_files
    monkeypatch.setattr(night_write, "write_files", lambda *a: calls.append(a[3]) or real(*a))
    out = tmp_path / "n"
    assert main(["night", "--out", str(out), "--parts", "night"]) == 0
    assert calls == [["night"]] and "unfinished" not in _results(out)
    assert main(["night", "--out", str(out), "--parts", "consolidation", "--overwrite"]) == 0
    assert calls[1:] == [["consolidation"]]


def test_a_full_disk_at_the_night_write_lets_the_run_go_on(parts, tmp_path, capsys, monkeypatch):
    from nnjax import io

    real, failed = io.atomic_write_files, []

    def full_once(files, **kw):
        if not failed:
            failed.append(files[0][0])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), files[0][0])
        return real(files, **kw)

    monkeypatch.setattr(io, "atomic_write_files", full_once)
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 0
    assert parts["readme"] is None  # nothing was written before the consolidation
    assert "unfinished" not in _results(out) and len(os.listdir(out)) == 6
    err = capsys.readouterr().err
    assert err == (
        f"nnjax night: the night part is not written now: {failed[0]}: No space "
        "left on device (errno 28, ENOSPC); the whole run's files are written at its end\n"
    )


def test_a_file_that_appears_in_the_consolidation_is_kept(parts, tmp_path, capsys, tmpdir_here):
    """The night part's own files do not count as appeared; the user's recall.png does."""
    parts["consolidation"] = lambda out: (out / "recall.png").write_text("the user's\n")
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert line.startswith(f"nnjax night: error: --out {out} came to hold recall.png while ")
    assert (out / "recall.png").read_text() == "the user's\n"
    os.remove(out / "recall.png")
    _assert_unfinished(out)
    assert len(os.listdir(rescue)) == 6 and "unfinished" not in _results(rescue)


def test_a_file_that_appears_in_the_night_stops_the_early_write(
    parts, tmp_path, capsys, monkeypatch, tmpdir_here
):
    real = night.run_night_part

    def appearing(args, results, stop=None):
        (Path(args.out) / "README.md").write_text("the user's\n")
        return real(args, results, stop=stop)

    monkeypatch.setattr(night, "run_night_part", appearing)
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 3
    assert os.listdir(out) == ["README.md"] and parts["readme"] == "the user's\n"
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"nnjax night: the night part is not written now: --out {out} came to hold README.md "
        "while the run computed (kept as it is); the whole run's files are written at its end"
    )
    assert len(os.listdir(tmpdir_here)) == 1


def test_overwrite_and_a_stop_leave_no_earlier_consolidation_figure(parts, tmp_path):
    """An earlier full run's recall.png beside the unfinished README would pass for this one's."""
    out = tmp_path / "n"
    out.mkdir()
    for name in ("recall.png", "replay.png", "night.png", "results.json"):
        (out / name).write_text("an earlier run's\n")

    def stopped(out):
        raise KeyboardInterrupt

    parts["consolidation"] = stopped
    assert main(["night", "--out", str(out), "--overwrite"]) == 130
    _assert_unfinished(out)
    assert json.loads((out / "results.json").read_text())["unfinished"] == ["consolidation"]


BUSY = """
import sys, jax, jax.numpy as jnp, numpy as np
from nnjax.cli_signals import signals_unwind
loop = jax.jit(lambda x: jax.lax.fori_loop(0, 10**7, lambda i, x: jnp.tanh(x @ x), x))
x = jnp.eye(64)
loop.lower(x).compile()
with signals_unwind("test"):
    print("training S1 for 4.0 s (10 seeds)")  # a progress line, block-buffered in a pipe
    print("computing", file=sys.stderr, flush=True)
    np.asarray(loop(x))  # minutes of XLA: the watchdog ends the process
"""


def test_the_watchdog_keeps_the_lines_printed_before_it_ends_the_process():
    """The consolidation's progress lines went to a file or pipe block-buffered, and the
    watchdog's os._exit dropped them: a stopped ``nnjax night > log`` lost its last lines."""
    import subprocess
    import sys
    import time

    pipe, root = subprocess.PIPE, Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as by default
    proc = subprocess.Popen(
        [sys.executable, "-c", BUSY], stdout=pipe, stderr=pipe, cwd=root, env=env
    )
    assert proc.stderr.readline() == b"computing\n"
    time.sleep(1.0)  # inside the XLA call by then
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and b"did not return within" in err, err
    assert out == b"training S1 for 4.0 s (10 seeds)\n"
