"""Data parallelism with ``jax.sharding``: one program, the batch split across devices.

On a 1-D mesh of D devices (axis ``"data"``) a mini-batch of B examples is laid out with
``NamedSharding(mesh, P("data"))``: device d holds rows [d B/D, (d+1) B/D). Params and
optimizer state are replicated (``P()``). The loss is the mean over the whole batch,

    J(theta) = (1/B) sum_d sum_{i in shard d} l(f(theta, x_i), y_i),

so its gradient is a sum of per-device partial gradients; XLA's SPMD partitioner inserts the
all-reduce that forms it, and every device applies the same update to its replica. Nothing
in the model or the loss changes: the same ``jit`` program runs with sharded inputs.

Many hosts: call ``jax.distributed.initialize(...)`` in every process before anything else
touches JAX; ``jax.devices()`` then lists the devices of all processes and
:func:`make_mesh` spans them. Every process runs the same program on the same (replicated)
inputs; see ``examples/multihost_data_parallel.py``.

Several devices on one CPU (for tests): set ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(or ``jax.config.update("jax_num_cpu_devices", 8)``) before JAX starts its backend.
"""

import os
import re
from collections.abc import Iterable, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax.errors import BatchSplitError

AXIS = "data"


def make_mesh(n_devices: int | None = None, devices: Sequence | None = None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over the first ``n_devices`` of ``devices``
    (default: all of ``jax.devices()``, every process's devices when multi-host): a sequence
    of distinct JAX devices (one device alone, or names such as "cpu", are a ``ValueError``)."""
    return _make_mesh(n_devices, devices, "make_mesh: n_devices")


def _make_mesh(n_devices, devices, what: str) -> Mesh:
    """:func:`make_mesh`, its errors naming ``what`` (``"make_mesh: n_devices"``, or the
    caller's own argument: ``"fit: mesh"``)."""
    devices = jax.devices() if devices is None else devices
    if isinstance(devices, str | jax.Device) or not isinstance(devices, Iterable):
        raise ValueError(
            f"make_mesh: devices must be a sequence of JAX devices, e.g. jax.devices() or "
            f"[jax.devices()[0]], got {devices!r}"
        )
    devices = list(devices)
    odd = [d for d in devices if not isinstance(d, jax.Device)]
    if odd:
        raise ValueError(
            f"make_mesh: devices must be JAX devices (jax.devices()), got {odd[0]!r} "
            f"({type(odd[0]).__name__})"
        )
    _check_distinct(devices, "make_mesh: devices")
    if n_devices is None:
        n_devices = len(devices)
    if isinstance(n_devices, bool) or not isinstance(n_devices, int | np.integer):
        raise ValueError(f"{what} must be an int, got {n_devices!r}")
    if not devices:
        raise ValueError("make_mesh: devices is empty; give at least one device")
    if n_devices < 1:
        raise ValueError(f"{what} must be >= 1, got {n_devices}")
    if n_devices > len(devices):
        raise too_few_devices(what, int(n_devices), devices)
    # Auto axes: shardings are hints to the partitioner, not part of the array types
    return Mesh(np.array(devices[:n_devices]), (AXIS,), axis_types=(AxisType.Auto,))


def too_few_devices(what: str, asked: int, devices: Sequence) -> ValueError:
    """The error for ``asked`` devices when only ``devices`` exist (``len(devices) < asked``),
    the one message of ``make_mesh``, ``fit(mesh=...)`` and ``nnjax train --devices``:
    ``what`` names the argument (``"make_mesh: n_devices"``, ``"fit: mesh"``, or an option,
    ``"--devices"``, followed by a space instead of ``=``). It says how many devices exist
    and on which platform, and how to get ``asked`` on the CPU: XLA makes that many virtual
    CPU devices when ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` is set before JAX
    starts its backend (a count already set there is named); elsewhere, also to ask for at
    most ``len(devices)``."""
    n, platform = len(devices), devices[0].platform
    count = "--xla_force_host_platform_device_count"
    env = f"XLA_FLAGS={count}={asked}"
    fewer = ""
    if platform != "cpu":  # with the flag alone, JAX would still pick the GPU or TPU
        env, fewer = f"JAX_PLATFORMS=cpu and {env}", f"use at most {n}, or, "
    found = re.search(rf"{count}=\S*", os.environ.get("XLA_FLAGS", ""))
    now = f"XLA_FLAGS sets {found[0]}; " if found else ""
    sep = " " if what.startswith("--") else "="
    return ValueError(
        f"{what}{sep}{asked} but {n} device(s) are available ({platform}); {now}{fewer}to get "
        f"{asked} CPU devices, set {env} before JAX starts"
    )


def _check_distinct(devices, what: str) -> None:
    """``ValueError`` when a device appears twice: ``jax.sharding.Mesh`` takes such a list,
    and the program then ended in a bare ``AssertionError`` deep in JAX."""
    seen = set()
    for d in devices:
        if d in seen:
            raise ValueError(f"{what} must be distinct devices, got {d!r} more than once")
        seen.add(d)


def as_mesh(mesh: Mesh | int, where: str = "as_mesh") -> Mesh:
    """``mesh`` (its axes made ``Auto``, :func:`auto_axes`), or :func:`make_mesh` of that many
    devices when it is an int; anything else is a ``ValueError`` naming ``where``. Every
    function here that takes a mesh takes it through this."""
    if isinstance(mesh, Mesh):
        _check_distinct(mesh.devices.flat, f"{where}: the mesh's devices")
        return auto_axes(mesh)
    if isinstance(mesh, int | np.integer) and not isinstance(mesh, bool):
        return _make_mesh(int(mesh), None, f"{where}: mesh")
    hint = ""
    if isinstance(mesh, Sequence) and mesh and all(isinstance(d, jax.Device) for d in mesh):
        hint = "; for these devices pass nnjax.parallel.make_mesh(devices=[...])"
    raise ValueError(
        f"{where}: mesh must be a jax.sharding.Mesh or a device count, got {mesh!r}{hint}"
    )


def auto_axes(mesh: Mesh | int) -> Mesh:
    """``mesh`` with every axis of type ``Auto``: the same devices, in the same layout, under
    the same names. The data-parallel program lays its batches out with
    ``with_sharding_constraint``, which takes only ``Auto`` axes, while ``jax.make_mesh``
    makes ``Explicit`` ones by default (sharding in types), which it would refuse. An int is
    :func:`make_mesh` of that many devices (:func:`as_mesh`)."""
    if not isinstance(mesh, Mesh):
        return as_mesh(mesh, "auto_axes")
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)


def batch_sharding(mesh: Mesh | int) -> NamedSharding:
    """Leading (batch) axis split over every axis of ``mesh`` (made ``Auto``:
    :func:`auto_axes`; an int: that many devices, :func:`as_mesh`), the rest whole."""
    mesh = as_mesh(mesh, "batch_sharding")
    return NamedSharding(mesh, P(mesh.axis_names))


def replicated(mesh: Mesh | int) -> NamedSharding:
    """A full copy on every device of ``mesh`` (made ``Auto``: :func:`auto_axes`; an int:
    that many devices, :func:`as_mesh`)."""
    return NamedSharding(as_mesh(mesh, "replicated"), P())


def check_batch(batch_size: int, mesh: Mesh | int, what: str = "batch_size") -> None:
    """Raise ``ValueError`` unless ``batch_size`` (an int >= 1, Python or NumPy, not a bool)
    splits evenly over the devices of ``mesh`` (a mesh or a device count, :func:`as_mesh`).

    Uneven shards are refused rather than padded: padding would change the mean loss (or
    need per-example weights) and so silently change the numbers.
    """
    integer = isinstance(batch_size, int | np.integer) and not isinstance(batch_size, bool)
    if not integer or batch_size < 1:
        who = what if ":" in what else f"check_batch: {what}"
        raise ValueError(f"{who} must be an int >= 1, got {batch_size!r}")
    batch_size = int(batch_size)
    d = None if isinstance(mesh, int | np.integer) else getattr(mesh, "size", None)
    d = as_mesh(mesh, "check_batch").size if d is None else d
    if batch_size % d:
        lower, upper = batch_size // d * d, -(-batch_size // d) * d
        hint = f"e.g. {lower} or {upper}" if lower else f"e.g. {upper}"
        counts = _divisor_counts(batch_size, d, mesh)
        other = f", or a device count that divides it ({', '.join(map(str, counts))})"
        raise BatchSplitError(
            f"{what}={batch_size} does not divide across the {d} devices of the mesh; "
            f"use a multiple of {d} ({hint}){other if counts else ''}",
            batch_size=batch_size,
            devices=d,
            full_batch="full batch" in what,
            divisors=counts,
        )


def _divisor_counts(batch_size: int, d: int, mesh) -> list[int]:
    """The device counts >= 2 that split ``batch_size`` evenly and that a run can get: up to
    2 d on the CPU (any count there: ``jax_num_cpu_devices``), else up to the number of
    devices of the mesh's platform (a 4-GPU machine was told to use 5 or 6)."""
    devices = getattr(mesh, "devices", None)
    platform = devices.flat[0].platform if devices is not None else jax.devices()[0].platform
    top = 2 * d if platform == "cpu" else len(jax.devices(platform))
    return [k for k in range(2, top + 1) if batch_size % k == 0]


def replicate(tree, mesh: Mesh | int):
    """``tree`` with every leaf (arrays, PRNG keys) copied to every device of ``mesh`` (a
    mesh or a device count, :func:`as_mesh`).

    Multi-host: every process must pass the same values; each process's copy fills its own
    devices (no cross-process check, which would cost a collective per leaf).
    """
    sharding = replicated(as_mesh(mesh, "replicate"))
    many = jax.process_count() > 1

    def put(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(x)  # typed keys travel as their raw bits
            return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=impl)
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if many:
            return jax.make_array_from_process_local_data(sharding, np.asarray(x))
        return jax.device_put(x, sharding)

    return jax.tree.map(put, tree)
