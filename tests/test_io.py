"""Atomic writes: the umask is honoured, a failure mid-write (a full disk) leaves the old file
intact and no temporary file, the error names the target, temp files of dead writers are
recognised and cleaned, and a killed writer's leftovers say whose they are."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from nnjax import checkpoint as ck
from nnjax import io as nio

PKG = os.path.dirname(nio.__file__)
# run nnjax's stdlib-only modules in a subprocess without importing the package (and JAX)
STUB = f"import sys, types; m = types.ModuleType('nnjax'); m.__path__ = [{PKG!r}]; "
STUB += "sys.modules['nnjax'] = m\n"


def _raise(code: int, text: str):
    def fail(*args, **kwargs):
        raise OSError(code, text)

    return fail


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_umask_not_0600(tmp_path, umask, mask, mode):
    umask(mask)
    nio.atomic_write_bytes(tmp_path / "a.bin", b"x")
    nio.save_params(tmp_path / "params.npz", {"W": np.ones(3)})
    ck.save(tmp_path / "ckpt", 1, {"W": np.ones(3)})
    for path in (
        tmp_path / "a.bin",
        tmp_path / "params.npz",
        tmp_path / "ckpt" / "ckpt_00000001.npz",
        tmp_path / "ckpt" / "ckpt_00000001.json",
    ):
        assert os.stat(path).st_mode & 0o777 == mode, path


def _no_temp(folder) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def _half_then_enospc(real_write):
    calls = []

    def write(fd, data):  # the first call writes half, the next finds the disk full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_full_disk_mid_write_keeps_old_file_and_names_the_path(tmp_path, monkeypatch, where):
    target = tmp_path / "history.json"
    nio.atomic_write_json(target, {"old": True})
    if where == "write":  # half the bytes reach the temp file, then the disk is full
        monkeypatch.setattr(os, "write", _half_then_enospc(os.write))
    else:
        monkeypatch.setattr(os, where, _raise(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError) as err:
        nio.atomic_write_json(target, {"new": list(range(10_000))})
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert str(target) in str(err.value) and "No space left" in str(err.value)
    assert json.loads(target.read_text()) == {"old": True}
    assert _no_temp(tmp_path), os.listdir(tmp_path)


def _full_after(n_files: int):
    """os.fsync that finds the disk full at the file after the first ``n_files``."""
    real, calls = os.fsync, []

    def fsync(fd):
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # a file, not a folder being fsync-ed
            calls.append(fd)
            if len(calls) > n_files:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    return fsync


@pytest.mark.parametrize("fails_at", [0, 1, 2])
def test_write_files_replaces_none_when_one_cannot_be_written(tmp_path, monkeypatch, fails_at):
    """A saved model's files: the arrays replaced, then the disk full at model.json, left
    the old model.json over the new arrays (the old model unreadable, the new unwritten)."""
    names = ["params.npz", "state.npz", "model.json"]
    for n in names:
        (tmp_path / n).write_text(f"old {n}")
    monkeypatch.setattr(os, "fsync", _full_after(fails_at))
    with pytest.raises(OSError) as err:
        nio.atomic_write_files([(tmp_path / n, f"new {n}".encode()) for n in names])
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / names[fails_at])
    assert [(tmp_path / n).read_text() for n in names] == [f"old {n}" for n in names]
    assert _no_temp(tmp_path), os.listdir(tmp_path)
    nio.atomic_write_files([(tmp_path / n, f"new {n}".encode()) for n in names])
    assert [(tmp_path / n).read_text() for n in names] == [f"new {n}" for n in names]
    assert _no_temp(tmp_path)


def test_errno_subclass_is_kept_and_interrupt_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    nio.atomic_write_text(target, "old")

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/some/tmp")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(PermissionError) as err:  # still a PermissionError, now naming target
        nio.atomic_write_text(target, "new")
    assert err.value.filename == str(target)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nio.atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and _no_temp(tmp_path)


def test_json_text_and_unserialisable_object(tmp_path):
    nio.atomic_write_text(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    nio.atomic_write_json(tmp_path / "h.json", {"loss": [1.0, 0.5], "name": "x"})
    assert json.loads((tmp_path / "h.json").read_text()) == {"loss": [1.0, 0.5], "name": "x"}
    with pytest.raises(TypeError):
        nio.atomic_write_json(tmp_path / "h.json", {"bad": object()})
    assert json.loads((tmp_path / "h.json").read_text())["name"] == "x"
    assert _no_temp(tmp_path)


def test_figure_saved_atomically_in_the_format_of_its_extension(tmp_path, monkeypatch):
    from nnjax.plotting import subplots

    fig, ax = subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    nio.atomic_save_figure(fig, tmp_path / "loss.png", dpi=50)
    nio.atomic_save_figure(fig, tmp_path / "loss.svg")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()[:2000]
    before = (tmp_path / "loss.png").read_bytes()
    monkeypatch.setattr(os, "write", _half_then_enospc(os.write))
    with pytest.raises(OSError, match="loss.png"):
        nio.atomic_save_figure(fig, tmp_path / "loss.png", dpi=80)
    monkeypatch.undo()
    assert (tmp_path / "loss.png").read_bytes() == before and _no_temp(tmp_path)


def test_io_imports_neither_matplotlib_nor_jax():
    code = STUB + (
        "import nnjax.io, nnjax.lock, nnjax.preflight, nnjax.runconfig\n"
        "print(sorted(m for m in ('jax', 'matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_temp_files_removes_only_dead_writers(tmp_path):
    me = nio._host.host_tag()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f".a.npz.{me}.{_dead_pid()}.0a1b2c3d.tmp",
            "live": f".b.npz.{me}.{sleeper.pid}.0a1b2c3d.tmp",
            "self": f".c.json.{me}.{os.getpid()}.0a1b2c3d.tmp",
            "other_host": ".d.npz.elsewhere.12.0a1b2c3d.tmp",
            "legacy": ".k3j_9xq2.tmp",  # nnjax <= 0.1's, or a user's .sessions.tmp: kept
            "short_token": ".draft.laptop.4242.beef.tmp",  # a user's: not 8 hex digits
            "unrelated": ".notes.tmp",
            "data": "ckpt_00000001.npz",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        gone = nio.clean_temp_files(tmp_path)
        assert gone == [str(tmp_path / names["dead"])]
        gone = nio.clean_temp_files(tmp_path, exclusive=True)
        assert gone == [str(tmp_path / names["other_host"])]
        left = {k for k, n in names.items() if (tmp_path / n).exists()}
        assert left == {"live", "self", "legacy", "short_token", "unrelated", "data"}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert nio.clean_temp_files(tmp_path / "missing") == []


KILLED_WRITER = """
import os, time
from nnjax import io
def stuck(fd):  # written, not yet renamed: the moment a kill leaves a temp file
    print("writing", flush=True)
    time.sleep(60)
os.fsync = stuck
io.atomic_write_bytes(sys.argv[1], b"new" * 100_000)
"""


def test_sigkill_mid_write_leaves_a_named_temp_file_that_cleanup_removes(tmp_path):
    target = tmp_path / "params.npz"
    target.write_bytes(b"old")
    proc = subprocess.Popen(
        [sys.executable, "-c", STUB + KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "writing\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    left = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert target.read_bytes() == b"old"
    assert len(left) == 1 and left[0].startswith(f".params.npz.{nio._host.host_tag()}.{proc.pid}.")
    t0 = time.monotonic()
    assert nio.clean_temp_files(tmp_path) == [str(tmp_path / left[0])]
    assert time.monotonic() - t0 < 1.0 and sorted(os.listdir(tmp_path)) == ["params.npz"]


def test_a_long_non_ascii_file_name_can_be_written(tmp_path):
    """Review: the temporary name kept 100 characters of the target's: 80 CJK characters
    (244 bytes, a valid name) made a 300-byte one, and the write failed (ENAMETOOLONG)."""
    name = "預" * 80 + ".csv"
    path = tmp_path / name
    assert len(os.fsencode(os.path.basename(nio.temp_path(path)))) <= 255
    nio.atomic_write_text(path, "row,prediction\n")
    assert path.read_text() == "row,prediction\n"
    assert os.listdir(tmp_path) == [name]
    cut = os.path.basename(nio.temp_path(tmp_path / ("a" + "é" * 120)))  # a character cut in two
    assert nio._TMP.match(cut) and len(os.fsencode(cut)) <= 160


def test_params_functions_live_in_params_npz_and_keep_their_old_names_in_io():
    from nnjax import params_npz

    for name in ("flatten_params", "npz_bytes", "holds_numbers", "save_params", "load_params"):
        assert getattr(nio, name) is getattr(params_npz, name)
    with pytest.raises(AttributeError, match="no attribute 'save_parms'"):
        nio.save_parms  # noqa: B018
