"""Mutation audit of data parallelism, placement, the run plan, the divergence guard and the
compiled-program store: each test here kills a small deliberate fault (a dropped key field,
a lost attribute, a swapped branch) that the rest of the suite let pass.

The checks that need several devices run in one subprocess with 2 virtual CPU devices
(``XLA_FLAGS`` set before JAX starts), which prints its observations as JSON.
"""

from typing import Any, NamedTuple

import jax
import numpy as np
import pytest

import nnjax
from nnjax import checkpoint as ck
from nnjax import parallel
from nnjax.errors import BatchSplitError, DivergenceError
from nnjax.train import StopFlag
from nnjax.train.driver import ChunkReport
from nnjax.train.guards import DivergenceGuard


class _Out(NamedTuple):
    step_loss: Any
    metrics: Any


def _report(chunks, begin, end, total=10):
    """A hand-built report after the last of ``chunks``, each (its first step's loss, its
    epoch means); the report covers epochs ``begin .. end - 1``."""
    outs = [
        _Out(np.array([first, *means[1:]], np.float64), {"step_loss_mean": np.array(means)})
        for first, means in chunks
    ]
    return ChunkReport(begin, end, total, None, outs[-1], outs, 0.0, None, 0)


def _guard_detail(chunks, begin, end):
    """The detail of the DivergenceError a DivergenceGuard(10, 3) raises, or None."""
    try:
        DivergenceGuard(10.0, 3).hook(lambda e: f"ckpt{e}")(_report(chunks, begin, end))
    except DivergenceError as e:
        return e.detail
    return None


def test_the_guard_measures_from_the_runs_first_step_not_the_chunks():
    """Chunks of 2 and 1 epochs: L_0 = 1 is the loss of the run's first step; the second
    chunk's first step (5) is no start (against it, 20 is not above 10 x)."""
    detail = _guard_detail([(1.0, [20.0, 20.0]), (5.0, [20.0])], 2, 3)
    assert detail is not None and "its initial value 1 for 3 epochs in a row (epochs 1-3" in detail


class _CpuMesh:
    """A stand-in for a mesh of ``size`` CPU devices (this process has one device)."""

    def __init__(self, size):
        self.size = size
        self.devices = np.array([type("D", (), {"platform": "cpu"})()] * size, dtype=object)


def test_a_split_error_says_whether_the_full_batch_was_split():
    """BatchSplitError.full_batch (documented in nnjax.errors): True for fit's full batch."""
    with pytest.raises(BatchSplitError) as e:
        parallel.check_batch(318, _CpuMesh(8), "fit: n_examples (full batch)")
    assert e.value.full_batch is True and e.value.batch_size == 318 and e.value.devices == 8
    with pytest.raises(BatchSplitError) as e:
        parallel.check_batch(30, _CpuMesh(8), "fit: batch_size")
    assert e.value.full_batch is False


def _fit_calls(tmp_path, name, **kw):
    """(epochs seen by on_epochs, epochs checkpointed) of a 4-epoch run on 12 rows."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)).astype(np.float32), rng.integers(0, 3, 12)
    model = nnjax.mlp([3])
    seen, d = [], tmp_path / name
    params = model.init(jax.random.key(0), (4,))[1]
    nnjax.fit(
        model, params, X, y, epochs=4, checkpoint_dir=d, on_epochs=lambda e, m: seen.append(e), **kw
    )
    return seen, ck.steps(d)


def test_a_stop_flag_makes_one_epoch_calls_even_with_a_checkpoint_interval(tmp_path):
    """Documented: 'Without epochs_per_call, a call is then one epoch' (a stop is served at
    the end of a call); checkpoints stay every checkpoint_every = 2 epochs."""
    assert _fit_calls(tmp_path, "a", stop=StopFlag(), checkpoint_every=2) == ([1, 2, 3, 4], [2, 4])


def test_checkpoints_stay_every_call_of_epochs_per_call_when_calls_are_cut(tmp_path):
    """Default checkpoint_every: after each call of epochs_per_call = 2 epochs. A call over
    max_chunk_seconds is cut to 1 epoch, and checkpoints stay at epochs 2 and 4."""
    seen, steps = _fit_calls(tmp_path, "b", epochs_per_call=2, max_chunk_seconds=1e-9)
    assert (seen, steps) == ([2, 3, 4], [2, 4])


def test_the_program_key_covers_every_run_field_and_global_setting(tmp_path, monkeypatch):
    """Two runs that differ only in check_finite or the evaluation sets' names trace other
    programs: each its own entry. So for XLA_FLAGS, jax_enable_x64 and
    jax_threefry_partitionable (the module docstring lists them). Why "auto" chose the fused
    loop is no part of the key: execution="fused" and an "auto" that fuses share an entry."""
    from types import SimpleNamespace

    from nnjax import cache
    from nnjax.train import executables
    from nnjax.train.execution import Execution

    monkeypatch.setattr(cache, "active_dir", lambda: str(tmp_path))
    base = dict(model=nnjax.mlp([3]), batch_size=4, steps_per_epoch=3, dropout=False)
    base.update(check_finite=True, eval_names=("val",), execution=Execution("fused", None, "asked"))
    a = (np.zeros((2, 3), np.float32),)

    def path(**change):
        plan = SimpleNamespace(**{**base, **change})
        return executables.store_for_fit(plan, "adam", None, "softmax_cross_entropy").path(a)

    first = path()
    assert path() == first  # the same run: the same entry
    assert path(execution=Execution("fused", None, "auto: a GPU fuses")) == first
    assert path(check_finite=False) != first  # (dropout: tests/test_executables.py)
    assert path(eval_names=("test",)) != first
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert path() != first
    monkeypatch.undo()
    monkeypatch.setattr(cache, "active_dir", lambda: str(tmp_path))
    with jax.enable_x64(not jax.config.jax_enable_x64):
        assert path() != first
    was = jax.config.jax_threefry_partitionable
    try:
        jax.config.update("jax_threefry_partitionable", not was)
        assert path() != first
    finally:
        jax.config.update("jax_threefry_partitionable", was)


WORKER = r"""
import json, tempfile
import jax, numpy as np
import nnjax
from nnjax import checkpoint as ck, parallel

out = {}
ds = nnjax.data.load("moons")
X, y = ds.X_train[:64], ds.y_train[:64]
model = nnjax.mlp([8, 2])
p0 = model.init(jax.random.key(0), (-1, 2))[1]
kw = dict(batch_size=16, key=1, optimizer="adam", learning_rate=0.01)
d = tempfile.mkdtemp()
two = nnjax.fit(model, p0, X, y, mesh=2, epochs=1, checkpoint_dir=d, **kw)
out["devices"] = ck.load(d).metadata["config"]["devices"]
out["replicated"] = [bool(a.sharding.is_fully_replicated) and len(a.sharding.device_set) == 2
                     for a in jax.tree.leaves(two.params)]
try:
    nnjax.fit(model, p0, X, y, epochs=2, checkpoint_dir=d, resume=True, **kw)
    out["resume_one"] = None
except Exception as e:
    out["resume_one"] = f"{type(e).__name__}: {e}"
try:  # a NumPy int is a device count too (a NumPy int's .size is 1: no device count)
    parallel.check_batch(15, np.int64(2))
    out["numpy_count"] = None
except ValueError as e:
    out["numpy_count"] = str(e)
# the program store's key names a mesh's devices in the mesh's order (not as a set)
from nnjax.train import executables
x = np.zeros(4, np.float32)
meshes = [parallel.make_mesh(devices=ds) for ds in (jax.devices(), jax.devices()[::-1])]
sigs = [executables.signature((jax.device_put(x, parallel.batch_sharding(m)),)) for m in meshes]
out["order"] = [m.device_ids.tolist() for m in meshes] + [sigs[0] != sigs[1]]
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def two():
    from virtual_devices import run_on_devices

    return run_on_devices(WORKER, 2)


@pytest.mark.multidevice
def test_a_mesh_runs_checkpoint_records_its_device_count_and_refuses_one_device(two):
    """The configuration a checkpoint records says 'devices': 2 for a run on a mesh of 2
    (one recorded as 1 let a one-device resume through the configuration check)."""
    assert two["devices"] == 2
    assert two["resume_one"] is not None
    assert two["resume_one"].startswith("ConfigMismatchError: cannot resume from "), two
    assert "the configuration differs (checkpoint -> this run): devices: 2 -> 1." in str(two)
    assert all(two["replicated"]), two["replicated"]


@pytest.mark.multidevice
def test_the_program_key_tells_a_mesh_of_devices_0_1_from_one_of_1_0(two):
    """A program laid out for devices [0, 1] is not the one for the mesh [1, 0]."""
    assert two["order"] == [[0, 1], [1, 0], True]


@pytest.mark.multidevice
def test_a_numpy_device_count_splits_the_batch_as_an_int_does(two):
    assert two["numpy_count"] == (
        "batch_size=15 does not divide across the 2 devices of the mesh; use a "
        "multiple of 2 (e.g. 14 or 16), or a device count that divides it (3)"
    )
