"""Weight initializers: ``init(key, shape, dtype) -> array``.

For a weight of shape (fan_in, fan_out) the variance targets are
glorot: 2 / (fan_in + fan_out), he: 2 / fan_in, lecun: 1 / fan_in; for a conv kernel
(*k, C_in, C_out), fan_in = prod(k) C_in and fan_out = prod(k) C_out.
The ``*_normal`` variants draw from a normal truncated at 2 of its standard deviations and
rescaled to that variance (|w| < 2.28 sqrt(var)), the ``*_uniform`` variants from
U(-sqrt(3 var), sqrt(3 var)) (JAX's conventions, through :mod:`jax.nn.initializers`).

Every initializer here checks its ``shape`` first (a ``ValueError`` names the initializer
and the shape): ints (Python or NumPy, not bools or floats), each >= 0; the fan-based ones
(glorot, he, lecun) need at least 2 dims, each >= 1 (a fan of 0 would divide by zero).
"""

import math
import numbers
import operator
from collections.abc import Callable

import jax.nn.initializers as jinit
import numpy as np

Initializer = Callable


def _checked(name: str, init: Initializer, fan_based: bool) -> Initializer:
    """``init`` with its shape checked first (see the module docstring); the same numbers."""
    least = 1 if fan_based else 0

    def checked(key, shape, *args, **kwargs):
        dims = _dims(shape)
        if dims is None or any(d < least for d in dims) or (fan_based and len(dims) < 2):
            need = "at least 2 ints >= 1 (fan-in, fan-out)" if fan_based else "ints >= 0"
            raise ValueError(f"initializer {name}: shape must be {need}, got {shape!r}")
        return init(key, dims, *args, **kwargs)

    checked.__name__ = checked.__qualname__ = name
    return checked


def _dims(shape) -> tuple[int, ...] | None:
    """``shape`` (a sequence of ints, or one int) as a tuple of Python ints; None when it is
    not one (a float or a bool size, a string)."""
    try:
        dims = tuple(shape) if not isinstance(shape, numbers.Integral) else (shape,)
        if isinstance(shape, str) or any(isinstance(d, bool | np.bool_) for d in dims):
            return None
        return tuple(operator.index(d) for d in dims)
    except TypeError:
        return None


_FANS = ("glorot", "he", "lecun")
INITIALIZERS: dict[str, Initializer] = {
    name: _checked(name, make() if name.startswith(_FANS) else make, name.startswith(_FANS))
    for name, make in {
        "glorot_normal": jinit.glorot_normal,
        "glorot_uniform": jinit.glorot_uniform,
        "he_normal": jinit.he_normal,
        "he_uniform": jinit.he_uniform,
        "lecun_normal": jinit.lecun_normal,
        "lecun_uniform": jinit.lecun_uniform,
        "zeros": jinit.zeros,
        "ones": jinit.ones,
    }.items()
}

glorot_normal = INITIALIZERS["glorot_normal"]
glorot_uniform = INITIALIZERS["glorot_uniform"]
he_normal = INITIALIZERS["he_normal"]
he_uniform = INITIALIZERS["he_uniform"]
lecun_normal = INITIALIZERS["lecun_normal"]
lecun_uniform = INITIALIZERS["lecun_uniform"]
zeros = INITIALIZERS["zeros"]


def normal(std: float = 1e-2) -> Initializer:
    """Plain (untruncated) normal N(0, std^2). ``std``: a finite real number > 0 (Python or
    NumPy, not a bool or a string; inf would make every weight +-inf), else a ValueError."""
    real = isinstance(std, numbers.Real) and not isinstance(std, bool | np.bool_)
    if not (real and 0 < std and math.isfinite(std)):
        raise ValueError(f"normal initializer: std must be > 0 and finite (a number), got {std!r}")
    return _checked(f"normal({float(std):g})", jinit.normal(float(std)), False)


def get_initializer(init: str | Initializer) -> Initializer:
    """Resolve an initializer given by name or as a callable."""
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    raise ValueError(
        f"unknown initializer {init!r}; valid names: {', '.join(sorted(INITIALIZERS))}"
        " (or normal(std))"
    )
