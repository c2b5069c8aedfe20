"""Audit of the checkpoint API called from a script: bad arguments, damaged records, a full
disk while re-saving a step, stray files named almost like checkpoints, odd lock records."""

import errno
import json
import os
import shutil
import socket
import time

import numpy as np
import pytest

from nnjax import checkpoint as ck
from nnjax.checkpoint import record
from nnjax.errors import PathError


def _tree(v: float) -> dict:
    return {"a": np.full(3, v, np.float32), "n": np.arange(2, dtype=np.int8)}


def _saved(d, *steps_):
    for s in steps_:
        ck.save(d, s, _tree(float(s)), metadata={"epoch": s})


def _files(d) -> list[str]:
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --- leaves that are not arrays of numbers --------------------------------------------


@pytest.mark.parametrize("leaf, kind", [(len, "object"), ("hello", "<U5"), (b"xy", "|S2")])
def test_a_leaf_that_is_no_array_of_numbers_is_refused_before_writing(tmp_path, leaf, kind):
    """An object leaf was pickled into a committed checkpoint that load could not read
    ("Object arrays cannot be loaded when allow_pickle=False", from latest_valid too)."""
    refused = rf"\['f'\] is not an array of numbers \({kind}, holding \w+ values\)"
    with pytest.raises(ValueError, match=refused):
        ck.save(tmp_path, 1, {"a": np.zeros(2), "f": leaf})
    assert _files(tmp_path) == [] and ck.steps(tmp_path) == []


def test_a_checkpoint_numpy_cannot_read_is_named_and_skipped(tmp_path, monkeypatch):
    """One written with an object leaf (as nnjax did before the check above)."""
    _saved(tmp_path, 1)
    monkeypatch.setattr("nnjax.checkpoint.store._check_numbers", lambda *a: None, raising=False)
    ck.save(tmp_path, 2, {"a": np.zeros(3, np.float32), "f": len})
    with pytest.raises(ck.CorruptCheckpointError, match="ckpt_00000002.npz cannot be read") as e:
        ck.load(tmp_path)
    assert e.value.path.endswith("ckpt_00000002.npz") and e.value.latest_valid.step == 1
    assert ck.latest_valid(tmp_path).step == 1


# --- the step given to load / restore --------------------------------------------------


@pytest.mark.parametrize("step", [True, False, 2.0, "2", -1])
def test_load_and_restore_refuse_a_step_that_is_no_int(tmp_path, step):
    """step=True loaded checkpoint 1, 2.0 failed on a format code, '2' said 'no checkpoint
    of step 2' while there is one."""
    _saved(tmp_path, 1, 2)
    with pytest.raises(ValueError, match=rf"step must be an int >= 0, got {step!r}"):
        ck.load(tmp_path, step)
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        ck.restore(tmp_path, _tree(0.0), step=step)


def test_load_takes_numpy_ints_and_steps_past_eight_digits(tmp_path):
    _saved(tmp_path, 2, 99_999_999, 10**8, 10**9 + 5)
    assert ck.steps(tmp_path) == [2, 99_999_999, 10**8, 10**9 + 5]
    assert ck.load(tmp_path).step == 10**9 + 5
    assert ck.load(tmp_path, np.int64(10**8)).metadata == {"epoch": 10**8}
    tree, _ = ck.restore(tmp_path, _tree(0.0), step=np.uint32(2))
    assert tree["a"].tobytes() == _tree(2.0)["a"].tobytes()


# --- a full disk while saving ----------------------------------------------------------


def test_a_full_disk_while_saving_a_step_again_keeps_the_committed_one(tmp_path, monkeypatch):
    """Saving step 2 again set the committed 2 aside into abandoned/ before writing; the
    write then failed, and 2 was no longer a checkpoint of the folder."""
    _saved(tmp_path, 1, 2)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nnjax.io.os.write", full)
    with pytest.raises(OSError, match="ckpt_00000002.npz") as e:
        ck.save(tmp_path, 2, _tree(9.0))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert _files(tmp_path) == [f"ckpt_0000000{s}.{x}" for s in (1, 2) for x in ("json", "npz")]
    assert ck.load(tmp_path, 2).arrays["['a']"].tolist() == [2.0] * 3


def test_a_full_disk_at_the_json_leaves_no_half_checkpoint(tmp_path, monkeypatch):
    """The .npz was renamed to its final name before the JSON was written: ENOSPC at the
    JSON left an uncommitted ckpt_00000002.npz."""
    _saved(tmp_path, 1)
    real, calls = os.write, []

    def second_fails(fd, data):
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr("nnjax.io.os.write", second_fails)
    with pytest.raises(OSError, match="ckpt_00000002.json"):
        ck.save(tmp_path, 2, _tree(2.0))
    monkeypatch.undo()
    assert _files(tmp_path) == ["ckpt_00000001.json", "ckpt_00000001.npz"]


# --- stray files and damaged records -----------------------------------------------------


def test_files_named_almost_like_checkpoints_are_not_checkpoints(tmp_path):
    """`ckpt_000000001.json` (a user's copy, 9 digits) and digits other than 0-9 matched
    the name pattern: steps() listed a step whose files do not exist (load: a bare
    FileNotFoundError), and each save made an empty abandoned/ folder."""
    _saved(tmp_path, 1)
    for x in ("json", "npz"):
        shutil.copy(tmp_path / f"ckpt_00000001.{x}", tmp_path / f"ckpt_000000001.{x}")
    (tmp_path / "ckpt_\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0663.json").write_text("x")
    assert ck.steps(tmp_path) == [1] and ck.load(tmp_path).step == 1
    for s in (2, 3, 4):
        ck.save(tmp_path, s, _tree(float(s)), keep=2)
    assert ck.steps(tmp_path) == [3, 4] and not (tmp_path / ck.ABANDONED).exists()
    assert (tmp_path / "ckpt_000000001.npz").exists()  # the user's files stay


def _rewrite_record(path, change) -> None:
    meta = json.loads(path.read_text())
    meta.pop("meta_sha256")
    change(meta)
    meta["meta_sha256"] = record._digest(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda m: m.pop("size"), "no int 'size'"),
        (lambda m: m.update(metadata=None), "no dict 'metadata'"),
        (lambda m: m.update(format=99), "format 99, written by a newer nnjax"),
    ],
)
def test_a_record_without_its_fields_is_corrupt_not_a_key_error(tmp_path, change, why):
    _saved(tmp_path, 1, 2)
    _rewrite_record(tmp_path / "ckpt_00000002.json", change)
    with pytest.raises(ck.CorruptCheckpointError, match=why) as e:
        ck.load(tmp_path)
    assert e.value.path.endswith("ckpt_00000002.json") and e.value.latest_valid.step == 1
    assert ck.latest_valid(tmp_path).step == 1


def test_a_record_that_cannot_be_read_is_corrupt(tmp_path):
    _saved(tmp_path, 1, 2)
    os.unlink(tmp_path / "ckpt_00000002.json")
    os.mkdir(tmp_path / "ckpt_00000002.json")
    with pytest.raises(ck.CorruptCheckpointError, match="ckpt_00000002.json is unreadable"):
        ck.load(tmp_path)
    assert ck.latest_valid(tmp_path).step == 1


# --- the directory and the metadata ----------------------------------------------------


def test_save_names_a_directory_it_cannot_use(tmp_path):
    (tmp_path / "f").write_text("mine")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    for d, why in [("f", "is a file, not a directory"), ("loop", "symbolic link in a loop")]:
        with pytest.raises(PathError, match=why) as e:
            ck.save(tmp_path / d, 1, _tree(1.0))
        assert e.value.path == str(tmp_path / d)
    with pytest.raises(PathError, match="the directory is an empty path"):
        ck.save("", 1, _tree(1.0))
    with pytest.raises(ValueError, match="the path is empty"):
        ck.load("")
    assert (tmp_path / "f").read_text() == "mine"


@pytest.mark.parametrize("metadata", [[("epoch", 1)], "ab", 3])
def test_metadata_must_be_a_dict(tmp_path, metadata):
    """A list of pairs was stored as a dict, a string failed inside dict()."""
    with pytest.raises(ValueError, match="metadata must be a dict or None"):
        ck.save(tmp_path, 1, _tree(1.0), metadata=metadata)
    assert ck.steps(tmp_path) == []


# --- lock records that name no process -------------------------------------------------


@pytest.mark.parametrize("pid", [10**20, True, 0, -1])
def test_a_lock_record_with_an_impossible_pid_is_unreadable(tmp_path, pid):
    """pid 10**20 raised OverflowError from os.kill; True was taken for process 1."""
    lock = tmp_path / "nnjax.lock"
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    os.utime(lock, (time.time() - 60, time.time() - 60))
    with pytest.raises(ck.DirectoryLockedError, match="is unreadable; if no run uses"):
        ck.lock(tmp_path, heartbeat=None)
    assert lock.exists()
