"""Audit of ``nnjax night``'s stop and write paths (walkT): a signal that lands while the
files are written. The parts are fakes (no JAX work), as in tests/test_night_stop.py; the
signal is a real one sent to this process as a figure is being saved.

Found with real runs (--n-exc 100, --hypnogram W,N,R, --epoch-s 3, --seeds 2, phases of
2 s): SIGTERM as the night part's early write began left results.json and an "Unfinished run"
README.md whose night.png and stages.png were never written; SIGTERM as the final write
began left a finished README.md whose replay.png was never written (status 143 both)."""

import copy
import os
import signal
from pathlib import Path

import pytest

from nnjax.brain import night
from nnjax.cli import main

COMMITTED = Path(__file__).resolve().parents[1] / "docs/results/network-sleep/results.json"
NIGHT_FIGURES = ["night.png", "stages.png"]
ALL_FILES = ["README.md", "night.png", "recall.png", "replay.png", "results.json", "stages.png"]


@pytest.fixture
def parts(monkeypatch):
    """Fake parts putting the committed run's numbers into the results; ``seen`` counts the
    consolidation parts that ran."""
    from nnjax.plotting import subplots

    committed = night.load_results(COMMITTED)
    seen = {"consolidation": 0}

    def night_part(args, results, stop=None):
        results["night"] = copy.deepcopy(committed["night"])
        return {name: subplots()[0] for name in NIGHT_FIGURES}

    def consolidation_part(args, results):
        seen["consolidation"] += 1
        results["consolidation"] = copy.deepcopy(committed["consolidation"])
        return {name: subplots()[0] for name in ("recall.png", "replay.png")}

    monkeypatch.setattr(night, "run_night_part", night_part)
    monkeypatch.setattr(night, "run_consolidation_part", consolidation_part)
    return seen


def _signal_at(monkeypatch, name: str, signum: int) -> list:
    """SIGTERM to this process as the figure ``name`` starts to be saved (the first time)."""
    from nnjax import io

    real, sent = io.atomic_save_figure, []

    def save(fig, path, **kw):
        if os.path.basename(path) == name and not sent:
            sent.append(path)
            os.kill(os.getpid(), signum)  # the handler runs in this thread, here
        return real(fig, path, **kw)

    monkeypatch.setattr(io, "atomic_save_figure", save)
    return sent


def _consistent(out: Path) -> dict:
    """results.json parses, README.md is its report, and every figure it shows is there."""
    written = night.load_results(out / "results.json")
    readme = (out / "README.md").read_text()
    assert readme == night.report_markdown(written)
    for line in readme.splitlines():
        if line.startswith("![") and line.endswith(".png)"):
            figure = out / line[line.index("](") + 2 : -1]
            assert figure.read_bytes()[:4] == b"\x89PNG", figure
    return written


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_early_write_lets_its_figures_land(
    parts, monkeypatch, tmp_path, capsys, signum
):
    """The early write is there for a run stopped after it: one stopped during it kept the
    numbers and a README whose two figures were missing."""
    sent = _signal_at(monkeypatch, "night.png", signum)
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 128 + signum
    assert sent and parts["consolidation"] == 0  # stopped before the consolidation began
    assert sorted(os.listdir(out)) == ["README.md", "night.png", "results.json", "stages.png"]
    assert _consistent(out)["unfinished"] == ["consolidation"]
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith("nnjax night: error: interrupted")
    )


def test_a_signal_during_the_final_write_lets_every_file_land(parts, monkeypatch, tmp_path):
    """A finished results.json and README.md beside a missing replay.png, status 143, was what
    a SIGTERM as the final write began left; now the files land whole, then the signal ends
    the command (128 + N)."""
    sent = _signal_at(monkeypatch, "recall.png", signal.SIGTERM)
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 143
    assert sent and parts["consolidation"] == 1
    assert sorted(os.listdir(out)) == ALL_FILES
    written = _consistent(out)
    assert "unfinished" not in written and set(written) >= {"night", "consolidation"}


def test_a_run_that_ends_untouched_is_whole(parts, tmp_path, capsys):
    """The deferral changes nothing for a run without a signal: six files, status 0, the
    summary printed after them."""
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ALL_FILES and "unfinished" not in _consistent(out)
    said = capsys.readouterr()
    assert said.out.splitlines()[-1].startswith(f"wrote {out}/results.json, README.md, ")
    assert said.err == ""


def test_a_signal_during_a_rescued_final_write_still_names_the_folder(
    parts, monkeypatch, tmp_path, capsys, tmpdir_here
):
    """A full disk at the final write, and a signal as it fails: the files go to a temporary
    folder and the error line names it (exit 3), as without the signal; the signal alone
    ended the run at 143 with nothing rescued."""
    import errno

    from nnjax import io

    out = tmp_path / "n"
    real = io.atomic_write_files

    def full(files, **kw):
        path = files[0][0]
        if str(path).startswith(str(out)) and "unfinished" not in files[0][1].decode():
            os.kill(os.getpid(), signal.SIGTERM)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(files, **kw)

    monkeypatch.setattr(io, "atomic_write_files", full)
    assert main(["night", "--out", str(out)]) == 3
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert sorted(os.listdir(rescue)) == ALL_FILES and "unfinished" not in _consistent(rescue)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"nnjax night: error: {out}/results.json: No space left on device")
    assert line.endswith(f"were written to {rescue}/ instead (a temporary folder: move it "
                         "where it belongs)")  # fmt: skip
    assert _consistent(out)["unfinished"] == ["consolidation"]  # the early write's, kept
