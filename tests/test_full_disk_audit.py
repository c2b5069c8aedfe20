"""A full disk. ``nnjax train --out``: refused before training when the model cannot fit,
and a disk that fills while training keeps the trained model in a temporary folder (the
run's files were lost: a real 200 KiB tmpfs with 120 KiB free trained, then failed writing
params.npz, exit 3, nothing saved). Checkpoints: with ``keep >= 2``, the ones ``keep`` would
delete after a save are deleted before it when the disk is full (a real 1 MiB tmpfs ended a
``--keep 3`` run at its 4th checkpoint, with room for 3)."""

import errno
import os
import re
import shutil
import tempfile

import numpy as np
import pytest

import nnjax
from nnjax import checkpoint, preflight
from nnjax import io as nio
from nnjax.cli import main

RUN = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32", "--epochs", "2"]
FILES = ["accuracy.png", "history.json", "loss.png", "metrics.csv", "model.json", "params.npz"]


def _error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert "Traceback" not in err and lines[-1].startswith("nnjax train: error: "), err
    return lines[-1]


def _full_under(monkeypatch, *folders) -> None:
    """Every atomic write of a file under one of ``folders`` fails with ENOSPC."""
    real = nio._create_temp

    def create(path):
        if any(os.fspath(path).startswith(os.fspath(f) + os.sep) for f in folders):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        return real(path)

    monkeypatch.setattr(nio, "_create_temp", create)


def test_an_out_too_full_for_the_model_is_refused_before_training(tmp_path, capsys, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda _: usage._replace(free=100))
    out = tmp_path / "new" / "run"
    assert main([*RUN, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "epoch " not in err  # refused before training began
    params = (2 * 8 + 8) + (8 * 2 + 2)  # moons --hidden 8: 2 -> 8 -> 2, float32
    assert _error_line(err) == (
        f"nnjax train: error: --out {out}: only 100 B free on its file system, about "
        f"{preflight.human_bytes(4 * params)} needed for the model alone; free some space "
        "or choose another --out (checked before training) (errno 28, ENOSPC)"
    )
    assert os.listdir(tmp_path) == []  # no folder left behind


def test_a_disk_that_fills_while_training_keeps_the_model_in_a_temporary_folder(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    assert main([*RUN, "--out", str(tmp_path / "ok")]) == 0  # the same run, written
    capsys.readouterr()
    out = tmp_path / "full"
    _full_under(monkeypatch, out)
    assert main([*RUN, "--out", str(out)]) == 3
    std = capsys.readouterr()
    line = _error_line(std.err)
    # the results lines are still printed (the files are written before them since a closed
    # pipe at them lost the model), and no 'wrote' line: the files are not in --out
    assert "| test loss " in std.out and "wrote" not in std.out, std.out
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    first = re.escape(f"{out}/history.json: No space left on device (errno 28, ENOSPC)")
    assert re.fullmatch(
        f"nnjax train: error: {first}; the trained model and the run's files were written "
        f"to {re.escape(str(rescue))}/ instead .*'nnjax predict {re.escape(str(rescue))} "
        "--data FILE' uses it as it is\\)",
        line,
    ), line
    assert sorted(os.listdir(rescue)) == FILES and not out.exists()
    kept, ok = nnjax.load(rescue), nnjax.load(tmp_path / "ok")
    X = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(kept.predict(X), ok.predict(X))  # bit-identical model


def test_an_earlier_model_in_out_stays_and_the_new_one_is_kept_apart(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    out = tmp_path / "out"
    assert main([*RUN, "--out", str(out)]) == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    _full_under(monkeypatch, out)
    assert main([*RUN, "--seed", "1", "--out", str(out), "--overwrite"]) == 3
    assert "were written to" in _error_line(capsys.readouterr().err)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    (rescue,) = os.listdir(tmpdir_here)
    assert sorted(os.listdir(tmpdir_here / rescue)) == FILES


def test_where_the_temporary_folder_fails_too_the_first_error_stands(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    out = tmp_path / "full"
    _full_under(monkeypatch, out, tmpdir_here)
    assert main([*RUN, "--out", str(out)]) == 3
    assert _error_line(capsys.readouterr().err) == (
        f"nnjax train: error: {out}/history.json: No space left on device (errno 28, ENOSPC)"
    )
    assert os.listdir(tmpdir_here) == [] and not out.exists()


def _disk_of(monkeypatch, folder, capacity: int) -> None:
    """The file system of ``folder`` holds ``capacity`` bytes: a write past them fails with
    ENOSPC, as a small disk's does (the temporary files count while they exist)."""
    real = nio._write_all

    def used() -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            if used() + len(data) > capacity:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(nio, "_write_all", write)


def _tree(step: int) -> dict:
    return {"w": np.full(1000, step, np.float32)}


def _checkpoint_bytes(tmp_path, tree) -> int:
    """The bytes of one checkpoint of ``tree`` (its .npz and .json)."""
    npz = checkpoint.save(tmp_path / "probe", 1, tree)
    return os.path.getsize(npz) + os.path.getsize(npz.replace(".npz", ".json"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_full_disk_deletes_first_what_keep_deletes_after(tmp_path, monkeypatch):
    d = tmp_path / "ck"
    d.mkdir()
    one = _checkpoint_bytes(tmp_path, _tree(1))
    _disk_of(monkeypatch, d, capacity=int(3.5 * one))  # room for 3 checkpoints, not 4
    with pytest.warns(UserWarning, match="No space left on device: the checkpoints beyond keep=3 "):
        for step in range(1, 7):
            checkpoint.save(d, step, _tree(step), keep=3)
    assert checkpoint.steps(d) == [4, 5, 6]
    np.testing.assert_array_equal(checkpoint.restore(d, _tree(0))[0]["w"], _tree(6)["w"])


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("keep", [1, None])
def test_keep_1_or_all_deletes_nothing_on_a_full_disk(tmp_path, monkeypatch, keep):
    d = tmp_path / "ck"
    d.mkdir()
    _disk_of(monkeypatch, d, capacity=int(1.5 * _checkpoint_bytes(tmp_path, _tree(1))))
    checkpoint.save(d, 1, _tree(1), keep=keep)
    with pytest.raises(OSError, match="No space left on device") as err:
        checkpoint.save(d, 2, _tree(2), keep=keep)
    assert err.value.errno == errno.ENOSPC
    assert checkpoint.steps(d) == [1]  # the only checkpoint stays, whole
    np.testing.assert_array_equal(checkpoint.restore(d, _tree(0))[0]["w"], _tree(1)["w"])


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_fit_goes_on_through_a_full_checkpoint_disk_to_the_same_params(tmp_path, monkeypatch):
    import jax

    model = nnjax.mlp([16, 3], activation="tanh")
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    y = np.arange(60) % 3
    _, p0 = model.init(jax.random.key(0), (-1, 5))
    kw = dict(optimizer="adam", learning_rate=1e-2, epochs=6, batch_size=20, key=1)
    want = nnjax.fit(model, p0, X, y, **kw)
    d = tmp_path / "ck"
    d.mkdir()
    one = _checkpoint_bytes(tmp_path, {"p": p0, "a": p0, "b": p0})  # params, two moments
    _disk_of(monkeypatch, d, capacity=int(3.5 * (one + 2000)))  # + losses, metadata, lock
    with pytest.warns(UserWarning, match="No space left on device: the checkpoints beyond"):
        got = nnjax.fit(model, p0, X, y, **kw, checkpoint_dir=d, keep=3)
    assert checkpoint.steps(d) == [4, 5, 6]
    for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_full_disk_at_a_later_checkpoint_says_how_the_run_goes_on(tmp_path, capsys, monkeypatch):
    from disk_faults import enospc_when_writing

    d = tmp_path / "ck"
    argv = [*RUN[:-1], "3", "--checkpoint-dir", str(d)]
    with monkeypatch.context() as m:
        enospc_when_writing(m, "ckpt_00000002")
        assert main(argv) == 3
    newest = d / "ckpt_00000001.npz"
    assert _error_line(capsys.readouterr().err) == (
        f"nnjax train: error: {d}/ckpt_00000002.npz: No space left on device (errno 28, "
        f"ENOSPC); the run can go on from its newest checkpoint {newest} once there is room: "
        f"nnjax {' '.join(argv)} --resume"
    )
    assert main([*argv, "--resume"]) == 0  # as it says, once there is room
    assert checkpoint.steps(d) == [1, 2, 3]


# each study small: one optimizer (each compiles its own programs); a night of one wake
# epoch of 3 s (the shortest a stage may be) of the smallest network; they write the files
# of a full run, by the same path
STUDIES = {
    "compare": (
        "compare --dataset toy --optimizers adam --seeds 2 --epochs 2 --no-plots".split(),
        ["report.md", "runs.csv", "runs.json"],
        "the report and its files",
    ),
    "sleep": (
        ["sleep", "--methods", "sequential", "--orders", "0", "--steps", "5", "--no-images"],
        ["accuracy.png", "heatmap.png", "results.json", "table.md"],
        "the results and figures",
    ),
    "night": (
        ["night", "--parts", "night", "--n-exc", "100", "--hypnogram", "W", "--epoch-s", "3"],
        ["README.md", "night.png", "results.json", "stages.png"],
        "the results and figures",
    ),
}


@pytest.mark.parametrize("command", list(STUDIES))
def test_a_study_whose_out_filled_meanwhile_is_kept_in_a_temporary_folder(
    command, tmp_path, capsys, monkeypatch, tmpdir_here
):
    """A real 1 MiB tmpfs with 16 KiB free: `nnjax compare` trained, then failed at
    runs.json, exit 3, nothing kept; sleep and night did the same."""
    argv, files, what = STUDIES[command]
    out = tmp_path / "out"
    _full_under(monkeypatch, out)
    assert main([*argv, "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert rescue.name.startswith(f"nnjax-{command}-unsaved-")
    assert line.startswith(f"nnjax {command}: error: {out}/") and line.endswith(
        f"(errno 28, ENOSPC); {what} were written to {rescue}/ instead (a temporary folder: "
        "move it where it belongs)"
    ), line
    assert sorted(os.listdir(rescue)) == files and not out.exists()
    monkeypatch.undo()  # room again: the same run into out gives the same numbers
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir_here))
    assert main([*argv, "--out", str(out)]) == 0
    if command == "compare":  # the same numbers, but for the times
        import csv

        def strip(path):
            rows = list(csv.DictReader(path.open()))
            return [{k: v for k, v in r.items() if "time" not in k} for r in rows]

        assert strip(rescue / "runs.csv") == strip(out / "runs.csv")
    else:  # results.json: the same, but for the wall times and the load average
        import json

        def strip(path):
            data = json.loads(path.read_text())
            data.get("night", {}).pop("wall_s", None)
            timed = ("wall_s", "load_average", "seconds")
            return {k: v for k, v in data.items() if k not in timed}

        assert strip(rescue / "results.json") == strip(out / "results.json")
