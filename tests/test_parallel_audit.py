"""Data parallelism, paths found by an audit: params from a mesh run trained on one device, a
mesh of devices other than the first ones with the compiled-program store on, meshes that
list a device twice, and errors of ``fit(mesh=...)`` that name ``fit``'s own argument.

The checks that need several devices run in one subprocess with 4 virtual CPU devices
(``XLA_FLAGS`` set before JAX starts), which prints its observations as JSON.
"""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh
from virtual_devices import run_on_devices

import nnjax
from nnjax import parallel

pytestmark = pytest.mark.multidevice


WORKER = r"""
import json, tempfile
import jax, numpy as np
import nnjax
from nnjax import cache, parallel

out = {}
ds = nnjax.data.load("moons")
model = nnjax.mlp([8, 2])
p0 = model.init(jax.random.key(0), (-1, 2))[1]
X, y, d = ds.X_train, ds.y_train, jax.devices()
kw = dict(epochs=1, batch_size=32, key=1)


def attempt(call):
    try:
        return call()
    except Exception as e:
        return f"{type(e).__name__}: {str(e)[:300]}"


# params that live on a mesh (devices 2, 3), trained on one device
moved = nnjax.fit(model, p0, X, y, mesh=parallel.make_mesh(2, d[2:]), **kw)
host = jax.tree.map(np.asarray, moved.params)
for execution in ("fused", "per_step"):
    ref = nnjax.fit(model, host, X, y, execution=execution, **kw)
    res = attempt(lambda: nnjax.fit(model, moved.params, X, y, execution=execution, **kw))
    if isinstance(res, str):
        out[execution] = res
    else:
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                   for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(res.params)))
        out[execution] = {"devices": len(res.params[0]["W"].sharding.device_set), "diff": diff}

# the compiled-program store: the same run on a mesh of devices 0, 1, then of devices 2, 3
cache.enable_compilation_cache(tempfile.mkdtemp())
first = nnjax.fit(model, p0, X, y, mesh=parallel.make_mesh(2, d[:2]), **kw)
second = attempt(lambda: nnjax.fit(model, p0, X, y, mesh=parallel.make_mesh(2, d[2:]), **kw))
out["store"] = second if isinstance(second, str) else {
    "devices": sorted(x.id for x in second.params[0]["W"].sharding.device_set),
    "same": bool(np.array_equal(first.step_loss, second.step_loss)),
}
out["too_many"] = attempt(lambda: nnjax.fit(model, p0, X, y, mesh=8, **kw))
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def four():
    return run_on_devices(WORKER, 4)


@pytest.mark.parametrize("execution", ["fused", "per_step"])
def test_params_from_a_mesh_run_train_on_one_device(four, execution):
    # per_step: "Computation was compiled for input shardings that disagree ..."; fused: the
    # one-device run ran on the mesh's 2 devices and returned its params there
    r = four[execution]
    assert isinstance(r, dict), r
    assert r["devices"] == 1 and r["diff"] == 0.0


def test_stored_program_is_not_loaded_for_a_mesh_of_other_devices(four):
    # the store's key named the mesh's axes only: the program compiled for devices 0, 1 was
    # loaded for devices 2, 3 ("compiled for input shardings that disagree")
    r = four["store"]
    assert isinstance(r, dict), r
    assert r["devices"] == [2, 3] and r["same"]


def test_too_many_devices_names_fits_mesh(four):
    assert four["too_many"].startswith("ValueError: fit: mesh=8 but 4 device(s) are available")


# ---- in process (one device) ---------------------------------------------------------------


def _fit(mesh):
    ds = nnjax.data.load("moons")
    model = nnjax.mlp([8, 2])
    params = model.init(jax.random.key(0), (-1, 2))[1]
    return nnjax.fit(model, params, ds.X_train, ds.y_train, epochs=1, batch_size=32, mesh=mesh)


def test_a_mesh_that_lists_a_device_twice_is_refused():
    d = jax.devices()[0]
    with pytest.raises(ValueError, match=r"^fit: the mesh's devices must be distinct devices"):
        _fit(Mesh(np.array([d, d]), ("data",)))  # a bare AssertionError from JAX
    with pytest.raises(ValueError, match=r"^make_mesh: devices must be distinct devices, got"):
        parallel.make_mesh(devices=[d, d])  # made the mesh above


@pytest.mark.parametrize(
    "mesh, message",
    [
        (0, r"^fit: mesh must be >= 1, got 0$"),  # was make_mesh: n_devices must be >= 1
        (-1, r"^fit: mesh must be >= 1, got -1$"),
        (True, r"^fit: mesh must be a jax.sharding.Mesh or a device count, got True$"),
        ([jax.devices()[0]], r"^fit: mesh must be .*; for these devices pass nnjax.parallel"),
    ],
)
def test_fit_mesh_errors_name_fits_argument(mesh, message):
    with pytest.raises(ValueError, match=message):
        _fit(mesh)


class _FakeDevice:
    def __init__(self, platform):
        self.platform = platform


class _FakeMesh:
    def __init__(self, platform, n):
        self.devices = np.array([_FakeDevice(platform) for _ in range(n)], dtype=object)
        self.size = n


def test_the_device_counts_suggested_are_ones_the_machine_has(monkeypatch):
    """batch 30 on a mesh of all 4 GPUs was told to use '2, 3, 5, 6' devices, counts a
    4-GPU machine does not have; on the CPU any count can be made, so up to 2 d stay."""
    gpus = [_FakeDevice("gpu")] * 4
    monkeypatch.setattr(jax, "devices", lambda platform=None: gpus)
    with pytest.raises(ValueError, match=r"device count that divides it \(2, 3\)$") as e:
        parallel.check_batch(30, _FakeMesh("gpu", 4))
    assert e.value.divisors == [2, 3]
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"device count that divides it \(2, 3, 5, 6\)$"):
        parallel.check_batch(30, _FakeMesh("cpu", 4))
