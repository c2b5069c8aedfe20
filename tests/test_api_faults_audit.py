"""nnjax.save / nnjax.load on the paths a script or notebook meets: a second writer, a save
killed mid-write, a load while another process saves, a broken symbolic link, a format
version that only compares equal to 1, float64 params in a float32 process."""

import errno
import hashlib
import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

import nnjax
from nnjax import lock as nlock
from nnjax import saved
from nnjax.errors import PathError
from nnjax.io import temp_path
from nnjax.saved_format import _body_checksum

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _model(seed=0):
    m = nnjax.mlp([4, 8, 3])
    _, p = m.init(jax.random.key(seed), (-1, 4))
    return m, p


def _md5s(folder):
    return {
        n: hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest()
        for n in sorted(os.listdir(folder))
    }


def _x():
    return np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)


def _out(m, p, x):
    return np.asarray(m.apply(p, x))


@pytest.fixture
def held_by_other_process(tmp_path):
    """``tmp_path/m`` locked by another live process (standard library only: fast)."""
    folder = tmp_path / "m"
    folder.mkdir()
    code = (
        "import sys, time; from nnjax.lock import DirectoryLock; "
        "l = DirectoryLock(sys.argv[1], heartbeat=None).acquire(); print('held', flush=True); "
        "time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield folder, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_save_refuses_a_folder_another_process_writes(held_by_other_process):
    # old: the save went ahead; two writers renaming params.npz and model.json in turn can
    # leave the params of one model under the model.json of the other
    folder, pid = held_by_other_process
    m, p = _model()
    before = _md5s(folder)
    with pytest.raises(nlock.DirectoryLockedError, match=f"process {pid}") as info:
        nnjax.save(folder, m, p, input_shape=(-1, 4))
    assert str(folder) in str(info.value) and info.value.errno == errno.EBUSY
    assert _md5s(folder) == before  # nothing written


def test_save_under_this_process_lock_and_releases_its_own(tmp_path):
    from nnjax import checkpoint

    m, p = _model()
    with checkpoint.lock(tmp_path):  # a run that holds its folder saves its model there
        nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
        assert os.path.exists(tmp_path / nlock.LOCK_NAME)
    nnjax.save(tmp_path / "other", m, p, input_shape=(-1, 4))
    assert sorted(os.listdir(tmp_path / "other")) == ["model.json", "params.npz"]
    np.testing.assert_array_equal(nnjax.load(tmp_path)(_x()), _out(m, p, _x()))


def test_save_removes_the_temporary_file_of_a_killed_save(tmp_path):
    # a save SIGKILLed between writing its temporary params file and renaming it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    m, p = _model()
    nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
    mine = temp_path(tmp_path / "params.npz")
    left = mine.replace(f".{os.getpid()}.", f".{dead.pid}.")
    assert left != mine
    with open(left, "wb") as f:
        f.write(b"half a params file")
    nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
    assert sorted(os.listdir(tmp_path)) == ["model.json", "params.npz"]  # old: + the .tmp


def test_full_disk_at_the_lock_leaves_no_file(tmp_path, monkeypatch):
    m, p = _model()
    nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
    before = _md5s(tmp_path)

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    # fails after the lock's temp file exists
    monkeypatch.setattr(nlock.lock_record, "record", full)
    with pytest.raises(OSError, match="No space left") as info:
        nnjax.save(tmp_path, m, _model(1)[1], input_shape=(-1, 4))
    assert info.value.errno == errno.ENOSPC and str(tmp_path) in str(info.value)
    assert _md5s(tmp_path) == before  # no temp file, no lock, the old model as it was


def test_load_while_another_model_is_saved_reads_the_new_one(tmp_path, monkeypatch):
    # model.json read before a save replaced both files, params.npz after: old code said
    # "params.npz: checksum mismatch: damaged or replaced after saving" (23 of 300 loads
    # with a writer saving two models in turn)
    m, p0 = _model(0)
    _, p1 = _model(1)
    nnjax.save(tmp_path, m, p0, input_shape=(-1, 4))
    real, calls = saved.read_arrays, []

    def racing(folder, name, entry):
        if not calls:
            nnjax.save(tmp_path, m, p1, input_shape=(-1, 4))
        calls.append(name)
        return real(folder, name, entry)

    monkeypatch.setattr(saved, "read_arrays", racing)
    pred = nnjax.load(tmp_path)
    np.testing.assert_array_equal(pred(_x()), _out(m, p1, _x()))
    assert calls == ["params.npz", "params.npz"]


def test_params_of_another_model_are_still_refused(tmp_path):
    m, p0 = _model(0)
    nnjax.save(tmp_path / "a", m, p0, input_shape=(-1, 4))
    nnjax.save(tmp_path / "b", m, _model(1)[1], input_shape=(-1, 4))
    os.replace(tmp_path / "b" / "params.npz", tmp_path / "a" / "params.npz")
    with pytest.raises(saved.SavedModelError, match=r"a/params.npz: checksum mismatch"):
        nnjax.load(tmp_path / "a")


def test_save_to_a_broken_symbolic_link_names_its_target(tmp_path):
    link = tmp_path / "model"
    os.symlink(tmp_path / "nowhere" / "x", link)
    m, p = _model()
    # old: "nnjax.save: cannot make the folder ...: File exists"
    with pytest.raises(PathError, match=r"symbolic link to .*nowhere/x, which does not exist"):
        nnjax.save(link, m, p, input_shape=(-1, 4))
    assert not os.path.exists(tmp_path / "nowhere")


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_format_version_must_be_the_int_1(tmp_path, version):
    import json

    m, p = _model()
    nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
    path = tmp_path / "model.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = version
    del meta["checksum"]
    meta["checksum"] = _body_checksum(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(saved.SavedModelError, match=f"format version {version!r}"):
        nnjax.load(tmp_path)


def test_float64_model_in_a_float32_process_warns(tmp_path):
    m, p = _model()
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
        nnjax.save(tmp_path, m, p64, input_shape=(-1, 4))
        pred = nnjax.load(tmp_path)  # x64 on: the saved precision, bit for bit
        for a, b in zip(jax.tree.leaves(pred.params), jax.tree.leaves(p64), strict=True):
            assert a.dtype == np.float64 and np.array_equal(a, b)
        want = np.asarray(m.apply(p64, _x().astype(np.float64)))
        np.testing.assert_allclose(pred(_x()), want, rtol=1e-12)
    with pytest.warns(UserWarning, match=r"params.npz: the params were saved in float64"):
        pred32 = nnjax.load(tmp_path)
    got = np.asarray(pred32(_x()))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_float32_model_loads_without_warning_under_x64(tmp_path):
    m, p = _model()
    nnjax.save(tmp_path, m, p, input_shape=(-1, 4))
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = nnjax.load(tmp_path)
        for a, b in zip(jax.tree.leaves(pred.params), jax.tree.leaves(p), strict=True):
            assert a.dtype == np.float32 and np.array_equal(a, b)


@pytest.mark.parametrize("below", ["", "sub"])
def test_compare_out_through_a_broken_link_is_refused_before_training(tmp_path, below):
    """out a symbolic link to nowhere (or a folder below one): refused naming the link before
    anything trains (the study trained, then os.makedirs said "File exists")."""
    from nnjax.compare.files import check_out

    link = tmp_path / "dangle"
    link.symlink_to(tmp_path / "nowhere" / "x")
    out = link / below if below else link
    with pytest.raises(ValueError, match=r"cannot be made: .*dangle' is a symbolic link to .*"):
        check_out(str(out))
