"""Where a training run's arrays live: one device, or replicated over a data-parallel mesh.

``fit`` asks a :class:`Placement` and never branches on the mesh itself:

* :meth:`Placement.put` puts a pytree where the loop reads it (on one device: unchanged,
  but for arrays that live on several devices, e.g. a mesh run's params, copied to one; a
  full copy on every device of the mesh otherwise);
* :attr:`Placement.batch_sharding` is how each batch is split (None on one device);
* :meth:`Placement.jit` compiles the loop with the outputs replicated on the mesh;
* :meth:`Placement.check_batch` refuses a batch that does not split evenly.

See :mod:`nnjax.parallel` for the data-parallel scheme (the batch split over the devices,
params and optimizer state replicated, XLA all-reduces the gradient).
"""

from collections.abc import Callable
from typing import Any

import jax

from nnjax import parallel


class Placement:
    """One device (``mesh=None``) or the devices of a 1-D data mesh (a ``Mesh`` or a count)."""

    def __init__(self, mesh: Any = None, where: str = "Placement"):
        """``where``: the caller that errors name, e.g. ``"fit"`` (``fit: mesh must be ...``)."""
        self.mesh = None if mesh is None else parallel.as_mesh(mesh, where)

    @property
    def size(self) -> int:
        """The number of devices a batch is split over."""
        return 1 if self.mesh is None else self.mesh.size

    @property
    def platform(self) -> str:
        """Where the loop runs: "cpu", "gpu", "tpu" (the mesh's devices, or JAX's default)."""
        if self.mesh is None:
            return jax.default_backend()
        return self.mesh.devices.flat[0].platform

    @property
    def batch_sharding(self):
        """The sharding of a batch (leading axis split), or None on one device."""
        return None if self.mesh is None else parallel.batch_sharding(self.mesh)

    def check_batch(self, batch_size: int, what: str) -> None:
        """``ValueError`` unless ``batch_size`` splits evenly over the devices."""
        if self.mesh is not None:
            parallel.check_batch(batch_size, self.mesh, what)

    def put(self, tree):
        """``tree`` where the compiled loop reads it: replicated on the mesh; on one device,
        as it is, except arrays spread over several devices (a mesh run's params or state
        passed on), which are copied to one. Left there, they made the one-device run run on
        all of their devices, or fail step by step ("compiled for input shardings that
        disagree")."""
        if self.mesh is not None:
            return parallel.replicate(tree, self.mesh)
        return jax.tree.map(_one_device, tree)

    def jit(self, fn: Callable, **kwargs):
        """``jax.jit(fn)``, its outputs replicated on the mesh."""
        if self.mesh is not None:
            kwargs.setdefault("out_shardings", parallel.replicated(self.mesh))
        return jax.jit(fn, **kwargs)

    def __repr__(self) -> str:
        return "Placement(one device)" if self.mesh is None else f"Placement({self.size} devices)"


def _one_device(x):
    """``x``, or a copy of it on JAX's default device when it is spread over several (and
    all of them are this process's)."""
    if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1 and x.is_fully_addressable:
        device = jax.config.jax_default_device
        return jax.device_put(x, device if isinstance(device, jax.Device) else jax.devices()[0])
    return x
