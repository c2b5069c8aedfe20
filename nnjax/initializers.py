"""Weight initializers: ``init(key, shape, dtype) -> array``.

For a weight of shape (fan_in, fan_out) the variance targets are
glorot: 2 / (fan_in + fan_out), he: 2 / fan_in, lecun: 1 / fan_in; for a conv kernel
(*k, C_in, C_out), fan_in = prod(k) C_in and fan_out = prod(k) C_out.
The ``*_normal`` variants draw from a normal truncated at 2 of its standard deviations and
rescaled to that variance (|w| < 2.28 sqrt(var)), the ``*_uniform`` variants from
U(-sqrt(3 var), sqrt(3 var)) (JAX's conventions, through :mod:`jax.nn.initializers`).
For a complex dtype, JAX's complex versions: a uniform draw from the disk |w| <= sqrt(2 var)
(E|w|^2 = var), and a complex normal truncated at |w| < 2.10 sqrt(var) whose E|w|^2 is
1.019 var, not var (JAX rescales by 1 / 0.9531 where the cut leaves E|w|^2 = 0.9254 of the
unit complex normal's 1: 0.9254 / 0.9531^2 = 1.0187; measured 1.018 over 10^6 draws).

In float16/bfloat16 JAX computes the variance, its square root and the product in that
dtype, a rounding each, so a bound holds up to those: |w| may exceed it by a relative
2^-9 (float16) or 2^-6 (bfloat16) at most (he_uniform in float16 went 7.1e-4 past
sqrt(3 var), glorot_uniform in bfloat16 5.4e-3: more than one rounding, 2^-11 or 2^-8).

Every initializer here checks its arguments first, each error naming the initializer:
``shape`` (a ``ValueError`` naming the shape): ints (Python or NumPy, not bools or
floats), each >= 0, with at most 2^63 - 1 elements in all and in each dim (XLA's int64
sizes); the fan-based ones (glorot, he, lecun) need at least 2 dims, each >= 1 (a fan of 0
would divide by zero).
``key`` (the random ones; zeros and ones ignore it): one PRNG key (``jax.random.key(seed)``
or ``jax.random.PRNGKey(seed)``), else a ``TypeError``. ``dtype`` (default: float32,
float64 under x64; Python's ``float`` means that default too, as in JAX): a ``ValueError``
for one JAX cannot make now, i.e. a 64-bit dtype while x64 is off (JAX would return 32-bit
arrays, with only a warning), and, for the random ones, a dtype that is not floating or
complex.
"""

import math
import numbers
import operator
from collections.abc import Callable

import jax
import jax.nn.initializers as jinit
import jax.numpy as jnp
import numpy as np

Initializer = Callable


def _checked(name: str, init: Initializer, fan_based: bool, random: bool = True) -> Initializer:
    """``init`` with its key, shape and dtype checked first (module docstring); the same
    numbers. ``random``: ``init`` draws from ``key`` (not zeros/ones)."""
    least = 1 if fan_based else 0

    def checked(key, shape, dtype=None, *args, **kwargs):
        dims = _dims(shape)
        if dims is None or any(d < least for d in dims) or (fan_based and len(dims) < 2):
            need = "at least 2 ints >= 1 (fan-in, fan-out)" if fan_based else "ints >= 0"
            raise ValueError(f"initializer {name}: shape must be {need}, got {shape!r}")
        if (size := max((math.prod(dims), *dims))) > _MAX_SIZE:
            what = "elements" if size == math.prod(dims) else "positions on one axis"
            raise ValueError(
                f"initializer {name}: shape {dims} has {size} {what}, more than an array can "
                f"hold (2^63 - 1)"
            )
        if random:  # zeros and ones ignore their key, as JAX's do
            _check_key(name, key)
        if dtype is None:  # the initializer's own default: float32, float64 under x64
            return init(key, dims, *args, **kwargs)
        return init(key, dims, _check_dtype(name, dtype, random), *args, **kwargs)

    checked.__name__ = checked.__qualname__ = name
    return checked


_MAX_SIZE = 2**63 - 1
_PY_TYPES = (float, int, complex, bool)


def _check_key(name: str, key) -> None:
    """A TypeError naming the initializer unless ``key`` is one PRNG key: a typed key of
    shape (), or one raw uint32 key of the default PRNG (checked abstractly, so free under
    jit); an int seed is the usual mistake. A key array of shape (2,) or a uint32 array of
    shape (3,) reached JAX, whose ValueError or TypeError did not name the initializer."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if np.shape(key) == ():
            return
        got = f"a key array of shape {np.shape(key)} (pass one key: split it, or vmap)"
    elif dtype is not None and np.dtype(dtype) == np.uint32:
        if _is_raw_key(np.shape(key)):
            return
        got = f"a uint32 array of shape {np.shape(key)}, not one raw key of the default PRNG"
    elif dtype is not None:
        got = f"an array of dtype {np.dtype(dtype).name}"
    else:
        got = repr(key)[:40]
    raise TypeError(
        f"initializer {name}: key must be a PRNG key such as jax.random.key(0), got {got}"
    )


def _is_raw_key(shape) -> bool:
    """Is a uint32 array of ``shape`` one raw key of the default PRNG (``PRNGKey(seed)``)?"""
    try:
        wrapped = jax.eval_shape(jax.random.wrap_key_data, jax.ShapeDtypeStruct(shape, np.uint32))
    except (TypeError, ValueError):
        return False
    return wrapped.shape == ()


def _check_dtype(name: str, dtype, random: bool):
    """``dtype`` as a NumPy dtype, or a ValueError naming the initializer: not a dtype, not
    floating/complex when ``random``, or 64-bit while JAX's x64 mode is off."""
    try:  # Python's float, int and complex mean JAX's default ones (float32 unless x64)
        python_type = any(dtype is t for t in _PY_TYPES)  # np.dtype(float64) == float
        dt = np.dtype(jax.dtypes.canonicalize_dtype(dtype) if python_type else dtype)
    except TypeError:
        raise ValueError(f"initializer {name}: dtype must be a dtype, got {dtype!r}") from None
    if random and not jnp.issubdtype(dt, jnp.inexact):
        raise ValueError(
            f"initializer {name}: dtype must be floating (float16, bfloat16, float32, "
            f"float64) or complex, got {dt.name}"
        )
    if jax.dtypes.canonicalize_dtype(dt) != dt:
        raise ValueError(
            f"initializer {name}: dtype {dt.name} needs JAX's 64-bit mode, which is off (JAX "
            f"would make {jax.dtypes.canonicalize_dtype(dt).name} arrays); enable it with "
            'nnjax.enable_x64() or jax.config.update("jax_enable_x64", True)'
        )
    return dt


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
    name: _checked(
        name,
        make() if name.startswith(_FANS) else make,
        name.startswith(_FANS),
        name not in ("zeros", "ones"),
    )
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
ones = INITIALIZERS["ones"]


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
