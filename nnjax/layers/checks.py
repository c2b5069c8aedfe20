"""Checks and dtype rules shared by the layers: a ValueError names the layer (its ``name``),
the shape or option, and the valid values.

* dtypes: :func:`default_float` (float32, float64 under x64), :func:`check_dtype` and
  :func:`param_dtype` (floating dtypes only; float64 only under x64, checked at init by
  :func:`check_available`), :func:`float_result_type` (the dtype a layer
  computes in), :func:`dtype_name` (JSON-able);
* options: :func:`as_real` (Python or NumPy reals, not bools), :func:`positive_int`,
  :func:`flag` (bools only),
  :func:`weight_initializer` (names the layer and argument of an unknown name),
  :func:`bias_initializer` / :func:`init_bias` (no fan-based initializer for a 1-D bias);
* shapes: :func:`check_shape` (ints >= -1; -1 for the batch), :func:`check_known_sizes`,
  :func:`check_features`, :func:`check_spatial`;
* ``apply``'s arguments: :func:`as_array` (array-likes taken, branch tuples refused),
  :func:`check_param_keys` and :func:`check_param_shape` (params as ``init`` makes them:
  shapes are static, so the checks cost nothing per step and hold under jit, grad and vmap,
  where ``apply`` sees each param's unbatched shape), whose errors are a
  :class:`ParamsError` (a ValueError: the params, not the input, are the culprit);
* keys: :func:`check_key` (a TypeError naming the layer for a seed or None where a PRNG key
  is needed), :func:`split_key`;
* :func:`located`: a ValueError re-raised with the layer's name in front (a
  :class:`ParamsError` stays one).
"""

import numbers
import operator
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.initializers import INITIALIZERS, get_initializer

Shape = tuple[int, ...]


def default_float() -> jnp.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


_FLOATS = "float16, bfloat16, float32 or float64 (None: float32, float64 under x64)"


def check_dtype(name: str, dtype):
    """``dtype`` as a NumPy dtype (None stays None), or a ValueError naming the layer unless it
    is a real floating dtype (float16, bfloat16, float32, float64)."""
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name}: dtype must be {_FLOATS}, got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"{name}: dtype must be {_FLOATS}, got {dt.name}")
    return dt


def check_available(name: str, dt) -> None:
    """A ValueError naming the layer when ``dt`` (a floating dtype) is float64 while JAX's x64
    is off: JAX would silently make float32 arrays instead (with a UserWarning per array).
    Called at init time, not at construction: x64 may be switched on in between."""
    if dt is not None and jnp.dtype(dt) == np.float64 and default_float() != np.float64:
        raise ValueError(
            f"{name}: dtype float64 needs JAX's 64-bit mode, which is off (JAX would make "
            "float32 params); enable it first with nnjax.enable_x64(), "
            'jax.config.update("jax_enable_x64", True) or JAX_ENABLE_X64=1, or leave '
            "dtype=None (float32)"
        )


def param_dtype(dtype, name: str = "layer") -> jnp.dtype:
    """``dtype`` as a NumPy dtype, or :func:`default_float` when it is None; a ValueError
    (:func:`check_dtype`) unless it is a floating dtype, and (:func:`check_available`) for
    float64 while x64 is off. Layers call it in ``init``."""
    dt = check_dtype(name, dtype)
    check_available(name, dt)
    return dt if dt is not None else default_float()


def float_result_type(*arrays) -> jnp.dtype:
    """The dtype to compute in: ``jnp.result_type(*arrays)`` when it is inexact, else
    :func:`default_float` (integer or bool inputs)."""
    dt = jnp.result_type(*arrays)
    return dt if jnp.issubdtype(dt, jnp.inexact) else default_float()


def as_real(value) -> float | None:
    """``value`` as a Python float when it is a real number (int, float or a NumPy real
    scalar, not a bool), else None. A NumPy float is read as it prints (np.float32(0.1) is
    0.1, not 0.10000000149011612), the value its writer meant."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    return float(str(value)) if isinstance(value, np.floating) else float(value)


# Initializers that need a weight matrix's fan-in and fan-out: not for a 1-D bias.
_FAN_BASED = sorted(n for n in INITIALIZERS if n.split("_")[0] in ("glorot", "he", "lecun"))


def weight_initializer(name: str, what: str, init):
    """``get_initializer(init)``; an unknown name is a ValueError naming the layer and the
    argument ``what`` ("W_init"), so the culprit is clear inside a model or a spec."""
    try:
        return get_initializer(init)
    except ValueError as e:
        raise ValueError(f"{name}: {what}: {e}") from None


def bias_initializer(name: str, b_init, what: str = "b_init"):
    """The initializer for a 1-D bias; a ValueError naming the layer for a fan-based name
    (glorot/he/lecun need a matrix's fan-in and fan-out) or an unknown one."""
    if isinstance(b_init, str) and b_init in _FAN_BASED:
        raise ValueError(
            f"{name}: {what} {b_init!r} needs a weight matrix's fan-in and fan-out and cannot "
            f"initialise a 1-D bias; use 'zeros', 'ones' or normal(std)"
        )
    return weight_initializer(name, what, b_init)


def init_bias(name: str, b_init: Callable, key, size: int, dtype):
    """``b_init(key, (size,), dtype)``, its ValueError (a callable fan-based initializer)
    re-raised naming the layer."""
    return located(name, b_init, key, (size,), dtype)


def dtype_name(dtype) -> str | None:
    """A dtype as its JSON-able name ("float64"), None stays None."""
    return None if dtype is None else jnp.dtype(dtype).name


def _dim(d) -> int:
    """An int dim (a Python or NumPy integer, not a bool or a float), else a TypeError."""
    if isinstance(d, bool | np.bool_):
        raise TypeError(d)
    return operator.index(d)


def check_shape(name: str, input_shape: Sequence[int], min_ndim: int = 1) -> Shape:
    """``input_shape`` as a tuple of ints >= -1 (-1: the batch, or a size not known) with at
    least ``min_ndim`` dims, or a ValueError (floats such as 5.7 and bools are refused, not
    truncated; so are sizes below -1, such as the -3 of a flattened (-1, -1, 3))."""
    try:
        shape = tuple(_dim(d) for d in input_shape)
    except TypeError:
        raise ValueError(
            f"{name}: input_shape must be ints (-1 for the batch), got {input_shape!r}"
        ) from None
    if any(d < -1 for d in shape):
        raise ValueError(f"{name}: input_shape sizes must be >= 0 (-1 for the batch), got {shape}")
    if len(shape) < min_ndim:
        raise ValueError(f"{name}: needs an input of at least {min_ndim} dims, got {shape}")
    return shape


def check_known_sizes(name: str, shape: Shape) -> None:
    """A ValueError unless every size after the batch axis is known (>= 0): a layer that
    multiplies them (Flatten, Reshape) cannot use a -1 there."""
    if any(d < 0 for d in shape[1:]):
        raise ValueError(
            f"{name}: the sizes after the batch axis must be known (>= 0; -1 only for the "
            f"batch), got input shape {shape}"
        )


def check_features(name: str, shape: Shape, what: str = "input features") -> None:
    """A ValueError unless the last axis of ``shape`` holds at least one feature/channel."""
    if shape[-1] < 1:
        raise ValueError(f"{name}: {what} must be >= 1, got shape {shape}")


def check_spatial(name: str, shape: Shape) -> None:
    """A ValueError unless every spatial size of a (B, *spatial, C) shape is >= 1."""
    if any(n < 1 for n in shape[1:-1]):
        raise ValueError(f"{name}: spatial sizes must be >= 1, got input shape {tuple(shape)}")


def as_array(name: str, x):
    """``x`` as an array: a JAX array (a tracer too) or a NumPy array as it is, an array-like
    (a nested list of numbers, a scalar) by ``jnp.asarray``. A ValueError naming the layer
    for a tuple or list of arrays (several branches, from FanOut or parallel), for what
    ``jnp.asarray`` refuses (a ragged list, a string), and for an array that holds no real
    numbers (:func:`check_numbers`: an object array, complex numbers)."""
    if isinstance(x, jax.Array | np.ndarray):
        return check_numbers(name, x)
    if isinstance(x, tuple | list) and any(
        isinstance(leaf, jax.Array | np.ndarray) for leaf in jax.tree.leaves(x)
    ):
        raise ValueError(
            f"{name}: expected an array, got a {type(x).__name__} of {len(x)} arrays (several "
            "branches: merge them with FanInSum or FanInConcat first)"
        )
    try:
        a = jnp.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array, got {type(x).__name__} {x!r:.80}") from None
    return check_numbers(name, a)


def check_numbers(name: str, x):
    """``x`` (an array) when its dtype is bool, an integer or a real float (float16,
    bfloat16, float32, float64), else a ValueError naming the layer and the dtype: an object
    array ended in JAX's "Error interpreting argument ... as an abstract array" from deep in
    the layer, and complex inputs gave complex outputs, the imaginary parts mixed in silently.
    Reads the dtype only: free under jit."""
    dt = x.dtype
    if dt == np.bool_ or jnp.issubdtype(dt, jnp.integer) or jnp.issubdtype(dt, jnp.floating):
        return x
    hint = {"O": " (an object array: convert it, e.g. x.astype(np.float32))",
            "c": " (complex: give the real and imaginary parts as separate features)"}  # fmt: skip
    raise ValueError(
        f"{name}: expected an array of numbers (bool, int or float), got dtype {dt.name}"
        f"{hint.get(getattr(dt, 'kind', ''), '')}"
    )


class ParamsError(ValueError):
    """A layer's params do not fit the layer (another layer's, or another size's): the
    params, not the input, are the culprit. :func:`located` keeps the class through
    ``serial``, ``parallel``, ``residual`` and the recurrent wrappers."""


def check_param_keys(name: str, params, keys: Sequence[str]) -> None:
    """A ValueError naming the layer unless ``params`` is a dict (any Mapping) with exactly
    ``keys``, as the layer's ``init`` makes it: a missing key, an extra one (a bias given
    to a layer built with ``use_bias=False``) or another layer's params."""
    if isinstance(params, Mapping) and set(params) == set(keys):
        return
    if isinstance(params, Mapping):
        missing = [k for k in keys if k not in params]
        extra = [k for k in params if k not in keys]
        parts = [f"missing {missing}"] * bool(missing) + [f"not expected {extra}"] * bool(extra)
        got = f"keys {list(params)} ({', '.join(parts)})"
    else:
        got = f"a {type(params).__name__}"
    raise ParamsError(
        f"{name}: params must be a dict with keys {list(keys)} (from init), got {got}"
    )


def check_param_shape(name: str, params, key: str, expected: Sequence, why: str = "") -> None:
    """A ValueError naming the layer and ``params[key]`` unless that leaf has shape
    ``expected``; ``why`` says what fixes the shape ("input features 4 -> 3 units")."""
    got = tuple(jnp.shape(params[key]))
    if got != tuple(expected):
        raise param_shape_error(name, key, got, expected, why)


def param_shape_error(name: str, key: str, got, expected, why: str = "") -> ValueError:
    """The :class:`ParamsError` of :func:`check_param_shape`."""
    why = f" ({why})" if why else ""
    return ParamsError(
        f"{name}: params[{key!r}] has shape {tuple(got)}, expected {tuple(expected)}{why}"
    )


def positive_int(name: str, what: str, value) -> int:
    """``value`` as a Python int if it is an int >= 1 (Python or NumPy, not a bool), else a
    ValueError naming it."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_) or value < 1:
        raise ValueError(f"{name}: {what} must be a positive int, got {value!r}")
    return int(value)


def flag(name: str, what: str, value) -> bool:
    """``value`` as a Python bool if it is one (Python or NumPy), else a ValueError naming it:
    a string such as "false" (a hand-edited JSON spec) would otherwise count as True."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: {what} must be True or False, got {value!r}")
    return bool(value)


def check_key(name: str, key, *, optional: bool = False):
    """``key`` when it can be a PRNG key: a typed key array (``jax.random.key(seed)``) or a
    raw uint32 one (``jax.random.PRNGKey(seed)``), or None when ``optional`` (``apply``'s
    key: no randomness). Anything else is a TypeError naming the layer; for an int seed, the
    usual mistake, the message says which key to pass. Checks dtypes only: free under jit."""
    if key is None and optional:
        return None
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (
        jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or np.dtype(dtype) == np.uint32
    ):
        return key
    if isinstance(key, np.generic):
        got = f"{type(key).__name__} {key!r:.40}"
    elif dtype is not None:
        got = f"an array of dtype {np.dtype(dtype).name} and shape {np.shape(key)}"
    else:
        got = f"{type(key).__name__} {key!r:.40}"
    seed = isinstance(key, numbers.Integral) and not isinstance(key, bool)
    hint = f"; for the seed {key}, pass jax.random.key({key})" if seed else ""
    raise TypeError(f"{name}: key must be a PRNG key such as jax.random.key(0), got {got}{hint}")


def split_key(name: str, key, n: int = 2):
    """``jax.random.split(key, n)`` after :func:`check_key` (``key`` required)."""
    return jax.random.split(check_key(name, key), n)


def located(where: str, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, a ValueError re-raised with ``where: `` in front (a
    :class:`ParamsError` as a ParamsError)."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise (ParamsError if isinstance(e, ParamsError) else ValueError)(f"{where}: {e}") from None
