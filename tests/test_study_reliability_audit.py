"""Reliability of the study commands' output folders (``nnjax sleep``, ``night``, ``compare``):
a disk that fills up, or a signal, while the figures are written leaves no figure of an
earlier run beside the new numbers; a run that another run's files reached between the
early check and the folder's lock is refused; the 'wrote' line of a --out given with a
trailing slash."""

import errno
import json
import os

import numpy as np
import pytest

from nnjax.cli import main


def _fake_study(rows=("sequential", "joint")):
    """A run_study result of ``rows`` on random accuracies (1 order x 2 seeds), no JAX."""
    from nnjax.brain import scores, study

    tg, rng = np.arange(10).reshape(5, 2), np.random.default_rng(1)
    A = {r: rng.random((1, 2, 5, 10)) for r in rows}
    metrics = {r: scores.metrics(A[r].reshape(2, 5, 10), tg, np.ones(10)) for r in rows}
    res = {"dataset": "digits", "orders": [7], "n_seeds": 2, "rows": list(rows),
           "metrics": metrics, "A": A, "task_groups": [tg], "scenario": "class",
           "images": None}  # fmt: skip
    res["stats"] = study.summarise(res)
    return res


def _earlier_study(out):
    """An earlier study's four files (made with images: dreams.png too) in ``out``."""
    os.makedirs(out, exist_ok=True)
    names = ("results.json", "table.md", "accuracy.png", "heatmap.png", "dreams.png")
    for name in names:
        with open(os.path.join(out, name), "wb") as f:
            f.write(f"the earlier study's {name}".encode())


def _failing_at(monkeypatch, name, exc):
    """io.atomic_save_figure raises ``exc`` for the figure ``name`` (an OSError with the
    figure's path, as the real one names it); the others are written."""
    from nnjax import io

    real = io.atomic_save_figure

    def save(fig, path, **kwargs):
        if os.path.basename(path) == name:
            raise OSError(exc.errno, exc.strerror, path) if isinstance(exc, OSError) else exc
        return real(fig, path, **kwargs)

    monkeypatch.setattr(io, "atomic_save_figure", save)


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
    ids=["full-disk", "signal"],
)
def test_sleep_leaves_no_earlier_figure_beside_its_new_numbers(tmp_path, monkeypatch, exc):
    """Audit: on a 128 KiB tmpfs, `nnjax sleep --orders 1 --overwrite` into the folder of an
    --orders 0 study failed at accuracy.png (exit 3) and left results.json and table.md of
    order 1 beside accuracy.png and heatmap.png of order 0 (md5 unchanged): two studies in
    one folder. Now the new numbers stay, the figures this run wrote stay, and the earlier
    study's figures go."""
    from nnjax.commands import sleep

    out = str(tmp_path / "s")
    _earlier_study(out)
    _failing_at(monkeypatch, "heatmap.png", exc)
    with pytest.raises(type(exc)):
        sleep._write(out, _fake_study(), "the table", "wall 1.0 s")
    assert json.load(open(os.path.join(out, "results.json")))["orders"] == [7]
    assert open(os.path.join(out, "table.md")).read() == "the table\n\nwall 1.0 s\n"
    with open(os.path.join(out, "accuracy.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"  # this run's figure
    assert sorted(os.listdir(out)) == ["accuracy.png", "results.json", "table.md"]


def test_sleep_full_disk_at_the_numbers_keeps_every_earlier_file(tmp_path, monkeypatch):
    """A disk full before the numbers are replaced leaves the earlier study whole: its
    figures are not removed (only figures beside new numbers are another run's)."""
    from nnjax import io
    from nnjax.commands import sleep

    out = str(tmp_path / "s")
    _earlier_study(out)
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "_write_all", full)
    with pytest.raises(OSError, match="results.json"):
        sleep._write(out, _fake_study(), "the table", "wall 1.0 s")
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before


def test_sleep_wrote_line_has_one_slash_after_a_trailing_one(tmp_path):
    """Audit: --out D/ printed 'wrote D//{results.json, ...}'."""
    from nnjax.commands import sleep

    out = str(tmp_path / "s") + "/"
    os.makedirs(out)  # the run's lock makes it
    line = sleep._wrote(out, sleep._write(out, _fake_study(), "the table", "wall 1.0 s"))
    assert line == f"wrote {tmp_path}/s/{{results.json, table.md, accuracy.png, heatmap.png}}"


FULL = "No space left on device"
# a one-epoch night (wake alone, the shortest hypnogram a stage allows: 3 s): the files it
# writes, and the order they are written in, are a full night's (W,N,R took twice as long)
NIGHT = ["night", "--parts", "night", "--n-exc", "100", "--hypnogram", "W", "--epoch-s", "3"]


def test_night_leaves_no_earlier_figure_beside_its_new_numbers(tmp_path, capsys, monkeypatch):
    """Audit: on a 128 KiB tmpfs, `nnjax night --seed 1 --overwrite` into the folder of a
    --seed 0 run failed at recall.png (exit 3) and left results.json ("seed": 1) and
    README.md beside the --seed 0 run's recall.png and replay.png. Now the earlier run's
    figures go (the other part's too); this run's numbers and night.png stay."""
    out = str(tmp_path / "n")
    os.makedirs(out)
    for name in ("results.json", "README.md", "night.png", "stages.png", "recall.png"):
        with open(os.path.join(out, name), "w") as f:
            f.write(f"the earlier run's {name}")
    _failing_at(monkeypatch, "stages.png", OSError(errno.ENOSPC, "No space left on device"))
    assert main([*NIGHT, "--out", out, "--overwrite"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"nnjax night: error: {out}/stages.png: {FULL} (errno 28, ENOSPC)"
    assert len(err) >= 2 and all(line.startswith("night ") for line in err[:-1])  # its progress
    assert sorted(os.listdir(out)) == ["README.md", "night.png", "results.json"]
    assert "## The night" in open(os.path.join(out, "README.md")).read()
    with open(os.path.join(out, "night.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _another_run_finishes_before_the_lock(monkeypatch, name):
    """Between the command's check and its lock, another run writes ``name`` into the
    folder and ends (its lock released): simulated in the lock's taking."""
    from nnjax import lock

    real = lock.lock_folder

    def lock_folder(path, **kwargs):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write("another run's file")
        return real(path, **kwargs)

    monkeypatch.setattr(lock, "lock_folder", lock_folder)


@pytest.mark.parametrize(
    "argv, name",
    [
        (["sleep", "--methods", "sequential", "--orders", "0", "--steps", "5", "--no-images"],
         "results.json"),
        (NIGHT, "README.md"),
        (["compare", "--dataset", "toy", "--seeds", "2", "--epochs", "2", "--no-plots"],
         "runs.csv"),
    ],
    ids=["sleep", "night", "compare"],
)  # fmt: skip
def test_a_file_written_between_check_and_lock_is_kept(tmp_path, capsys, monkeypatch, argv, name):
    """Audit: the refusal of a folder holding the command's files was asked only before the
    lock; a run into the same --out that ended in between (its files written, its lock
    released) had them replaced without --overwrite. Now the question is asked again under
    the lock: refused, exit 2, the file kept byte for byte."""
    out = str(tmp_path / "o")
    _another_run_finishes_before_the_lock(monkeypatch, name)
    assert main([*argv, "--out", out]) == 2
    err = capsys.readouterr().err
    assert f"--out {out} already holds {name}" in err and "--overwrite" in err
    assert open(os.path.join(out, name)).read() == "another run's file"
    assert not os.path.exists(os.path.join(out, "nnjax.lock"))


def _read_only(monkeypatch, folder):
    """Creating a file in ``folder`` fails as on a read-only file system (EROFS): root is
    not stopped by chmod, and a test cannot mount one."""
    real = os.open

    def open_(path, flags, *args, **kwargs):
        if os.path.dirname(os.path.abspath(os.fspath(path))) == folder and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize(
    "argv",
    [NIGHT, ["compare", "--dataset", "toy", "--seeds", "2", "--epochs", "2", "--no-plots"]],
    ids=["night", "compare"],
)
def test_a_read_only_out_is_named_as_the_option(tmp_path, capsys, monkeypatch, argv):
    """Audit: on a read-only tmpfs, night and compare said 'error: ro/nnjax.lock: Read-only
    file system (errno 30, EROFS)', naming a file the user never gave; sleep (and now they)
    say '--out ro is not writable: read-only file system', before JAX starts."""
    out = str(tmp_path / "ro")
    os.makedirs(out)
    _read_only(monkeypatch, out)
    assert main([*argv, "--out", out]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nnjax {argv[0]}: error: --out {out} is not writable: read-only")
    assert os.listdir(out) == []
