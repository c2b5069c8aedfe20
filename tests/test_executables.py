"""fit's compiled loops kept on disk (nnjax.train.executables): a stored program gives the run
bit for bit, every input of the program is in its key, and a run that cannot be described
or an unreadable entry compiles as usual."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import _host, cache
from nnjax.train import executables
from nnjax.train.driver import Program

ROOT = Path(__file__).resolve().parent.parent


def _data(n=48, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, n)


def _fit(X, y, model=None, **kw):
    model = nnjax.mlp([8, 3]) if model is None else model
    params = model.init(jax.random.PRNGKey(0), X.shape[1:])[1]
    args = dict(loss="softmax_cross_entropy", optimizer="adam", epochs=3, batch_size=16)
    return nnjax.fit(model, params, X, y, **{**args, **kw})


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """The store on, in a temporary folder (as if the CLI had turned the cache on there)."""
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    return tmp_path / executables.SUBDIR


@pytest.fixture
def spy(monkeypatch):
    """Counts of loads that found a program and of compiles."""
    counts = {"loaded": 0, "compiled": 0}
    load, save = executables.ExecutableStore.load, executables.ExecutableStore.save

    def counted_load(self, *a):
        found = load(self, *a)
        counts["loaded"] += found is not None
        return found

    def counted_save(self, *a):
        counts["compiled"] += 1
        return save(self, *a)

    monkeypatch.setattr(executables.ExecutableStore, "load", counted_load)
    monkeypatch.setattr(executables.ExecutableStore, "save", counted_save)
    return counts


def _same(a, b):
    for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(z))


def test_a_stored_program_gives_the_run_bit_for_bit(store_dir, spy):
    X, y = _data()
    first = _fit(X, y)
    assert spy == {"loaded": 0, "compiled": 1} and len(os.listdir(store_dir)) == 1
    second = _fit(X, y)
    assert spy == {"loaded": 1, "compiled": 1}
    _same(first.params, second.params)
    _same(first.metrics, second.metrics)
    cache._active = None  # the store off: the same numbers from a fresh compile
    _same(first.params, _fit(X, y).params)


@pytest.fixture(scope="module")
def default_entry(tmp_path_factory):
    """The stored program of ``_fit`` on ``_data()`` (the store on in a temporary folder)."""
    folder = tmp_path_factory.mktemp("default")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache, "_active", str(folder))
        _fit(*_data())
    (entry,) = (folder / executables.SUBDIR).iterdir()
    return entry


@pytest.mark.parametrize(
    "change",
    [
        {"learning_rate": 0.02},
        {"optimizer": "sgd"},
        {"loss": "mse"},
        {"batch_size": 8},
        {"dropout": True},
        {"X": 6},  # another input width: another signature
    ],
    ids=lambda c: next(iter(c)),
)
def test_each_input_of_the_program_has_its_own_entry(store_dir, spy, change, default_entry):
    """The store holds the default run's program; the run with one input changed loads
    nothing and stores its own. (The default run's entry is stored once for the cases that
    share it and copied in: its name, the key, holds no folder, and the unchanged run loads
    it; the dropout case's model differs: its first run is its own.)"""
    X, y = _data()
    kw = dict(change)
    if "dropout" in kw:  # fit refuses dropout=True for a model without Dropout: give it one
        kw["model"] = nnjax.mlp([8, 3], dropout=0.2)
        _fit(X, y, model=kw["model"])
    else:
        store_dir.mkdir()
        shutil.copy(default_entry, store_dir)
    first = spy["compiled"]
    assert first == ("dropout" in kw)  # the dropout model's first run compiled and stored
    if "X" in kw:
        X, y = _data(d=kw.pop("X"))
    if kw.get("loss") == "mse":
        y = np.eye(3, dtype=np.float32)[y]
    _fit(X, y, **kw)
    assert spy == {"loaded": 0, "compiled": first + 1} and len(os.listdir(store_dir)) == 2


def test_runs_that_cannot_be_described_are_not_stored(store_dir, spy):
    X, y = _data()
    _fit(X, y, optimizer=optax.adam(1e-3))
    _fit(X, y, learning_rate=optax.cosine_decay_schedule(1e-2, 9))
    _fit(X, y, loss=nnjax.losses.softmax_cross_entropy)
    model = nnjax.layers.serial(nnjax.layers.Dense(3), nnjax.layers.Activation(jax.numpy.tanh))
    params = model.init(jax.random.PRNGKey(0), X.shape[1:])[1]
    nnjax.fit(model, params, X, y, loss="softmax_cross_entropy", epochs=1, batch_size=16)
    assert spy == {"loaded": 0, "compiled": 0} and not store_dir.exists()


def test_an_unreadable_entry_is_compiled_afresh_and_replaced(store_dir, spy):
    X, y = _data()
    first = _fit(X, y)
    (entry,) = store_dir.iterdir()
    entry.write_bytes(entry.read_bytes()[:100])  # cut short, as by a kill mid-write
    with pytest.warns(UserWarning, match="unreadable stored program, compiling afresh"):
        again = _fit(X, y)
    _same(first.params, again.params)
    assert spy == {"loaded": 0, "compiled": 2}
    _same(first.params, _fit(X, y).params)
    assert spy["loaded"] == 1  # the replaced entry reads


def test_a_failing_save_never_fails_the_run(store_dir, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nnjax.io.atomic_write_bytes", full)
    monkeypatch.setattr(cache, "_reported", set())
    X, y = _data()
    with pytest.warns(UserWarning, match="could not save compiled programs .*No space left"):
        res = _fit(X, y)
    assert np.isfinite(res.step_loss).all()
    # a full disk fails every write: said once per process, also for JAX's own cache writes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(X, y, batch_size=8)  # another program, whose write fails too
    assert not [w for w in caught if "compiled program" in str(w.message)]
    jax_write = "Error writing persistent compilation cache entry for 'jit_f': OSError: full"
    assert cache.cache_warning(jax_write) is None


def test_the_store_is_off_with_the_cache(spy):
    assert cache.active_dir() is None  # tests run with NNJAX_CACHE_DIR=off
    assert Program(lambda c, i: (c, i)).store is None
    X, y = _data()
    res = _fit(X, y)  # a described run: it would be stored, were the cache on
    assert spy == {"loaded": 0, "compiled": 0} and res.compile_time > 0


def test_the_key_covers_the_signature_and_the_code(tmp_path):
    store = executables.ExecutableStore(tmp_path, {"run": 1})
    a = (np.zeros((2, 3), np.float32),)
    assert store.path(a) == store.path((np.ones((2, 3), np.float32),))  # values are not in it
    assert store.path(a) != store.path((np.zeros((2, 4), np.float32),))
    assert store.path(a) != store.path((np.zeros((2, 3), np.int32),))
    # float64 input becomes float32 without x64, as JAX would convert it: the same program
    assert store.path(a) == store.path((np.zeros((2, 3), np.float64),))
    assert store.path(a) != store.path(a, "donate=True")
    assert store.path(a) != executables.ExecutableStore(tmp_path, {"run": 2}).path(a)
    with pytest.MonkeyPatch.context() as mp:  # another processor: another instruction set
        mp.setattr(_host, "cpu_signature", lambda: "another processor")
        assert store.path(a) != executables.ExecutableStore(tmp_path, {"run": 1}).path(a)
    assert len(executables.source_digest()) == 64


def test_a_program_stored_by_one_process_runs_in_another(tmp_path):
    """Serialised by one interpreter, loaded by a fresh one: the same params, bit for bit."""
    code = f"""
import sys, numpy as np, jax
sys.path.insert(0, {str(ROOT / "tests")!r})
from nnjax import _host, cache
from nnjax.train import executables
cache._active = {str(tmp_path)!r}
load = executables.ExecutableStore.load
found = []
executables.ExecutableStore.load = lambda s, *a: found.append(load(s, *a)) or found[-1]
from test_executables import _data, _fit
res = _fit(*_data())
np.save(sys.argv[1], np.concatenate([np.ravel(x) for x in jax.tree.leaves(res.params)]))
print("loaded" if found[0] is not None else "compiled")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = []
    for i in range(2):
        path = tmp_path / f"params{i}.npy"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append((proc.stdout.split()[-1], np.load(path)))
    assert [o[0] for o in outs] == ["compiled", "loaded"]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_a_cleaned_store_is_refilled_with_a_program_that_loads(tmp_path):
    """With the store's entry gone and JAX's persistent cache still holding the program (a new
    nnjax version, or a cleaned store): the executable JAX's cache would serve cannot be
    stored (serialised again it lacked kernels, and the next process failed with "NOT_FOUND:
    Function ... not found"), and storing nothing left every later run tracing again. The
    program is compiled with JAX's cache off and stored, and the next process loads it.
    Three processes: store; clean the store, compile and store again; load."""
    code = f"""
import sys, numpy as np, jax
sys.path.insert(0, {str(ROOT / "tests")!r})
from nnjax import _host, cache
from nnjax.train import executables
cache.enable_compilation_cache({str(tmp_path / "cache")!r})
load = executables.ExecutableStore.load
found = []
executables.ExecutableStore.load = lambda s, *a: found.append(load(s, *a)) or found[-1]
from test_executables import _data, _fit
res = _fit(*_data())
np.save(sys.argv[1], np.concatenate([np.ravel(x) for x in jax.tree.leaves(res.params)]))
print("loaded" if found[0] is not None else "compiled")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    programs = tmp_path / "cache" / _host.cpu_tag() / executables.SUBDIR
    params, entries, how = [], [], []
    for i in range(3):
        path = tmp_path / f"params{i}.npy"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        params.append(np.load(path))
        entries.append(sorted(os.listdir(programs)))
        how.append(proc.stdout.split()[-1])
        if i == 0:
            for name in entries[0]:
                os.remove(programs / name)
    assert how == ["compiled", "compiled", "loaded"]
    assert len(entries[0]) == 1 and entries[1] == entries[2] == entries[0]
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(params[0], params[2])


def test_the_trace_time_checks_key_the_stored_programs(tmp_path):
    """A program traced without jax.numpy_rank_promotion("raise"), dtype_promotion("strict")
    or enable_checks, loaded under them, skipped the checks they ask for."""
    base = executables.ExecutableStore(tmp_path, {"run": 1}).prefix
    for setting in (jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"),
                    jax.enable_checks(True)):  # fmt: skip
        with setting:
            assert executables.ExecutableStore(tmp_path, {"run": 1}).prefix != base
    assert executables.ExecutableStore(tmp_path, {"run": 1}).prefix == base
