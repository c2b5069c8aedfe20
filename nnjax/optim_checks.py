"""The checks of :mod:`nnjax.optim`'s arguments: hyperparameter ranges, the learning rate
(finite in the params' dtype, and not 0 there: :func:`check_rate_nonzero`) and a schedule's
first rate (finite in it too). Imports NumPy and JAX only inside its functions, as
:mod:`nnjax.optim` does (``nnjax train --help`` needs no JAX)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

Schedule = Callable[[Any], Any]


# Hyperparameter ranges, (text, test): an infinite eps would make every update 0
UNIT = ("in [0, 1)", lambda v: 0.0 <= v < 1.0)
POSITIVE = ("a finite number > 0", lambda v: 0.0 < v < float("inf"))
NONNEGATIVE = ("a finite number >= 0", lambda v: 0.0 <= v < float("inf"))
OPEN_UNIT, RATE = ("in (0, 1)", lambda v: 0.0 < v < 1.0), ("in (0, 1]", lambda v: 0.0 < v <= 1.0)


def real(value) -> float | None:
    """``value`` as a float when it is one real number (a Python or NumPy int or float, a 0-d
    int or float array); None for a bool, a string, None, a larger array or a tracer."""
    import numpy as np

    if isinstance(value, bool | np.bool_ | str | bytes):
        return None
    kind = np.dtype(getattr(value, "dtype", object)).kind
    if not isinstance(value, numbers.Real) and (np.shape(value) != () or kind not in "iuf"):
        return None
    try:
        return float(value)
    except TypeError:  # a tracer
        return None


def is_traced_rate(value) -> bool:
    """Whether ``value`` is one traced real number (a scalar int or float tracer under
    ``jit``, ``vmap`` or ``grad``): its value is unknown when the optimizer is built, so a
    learning rate so given passes unchecked, as Optax takes it (a meta-gradient with
    respect to the rate, or a vmap over rates)."""
    import jax
    import numpy as np

    if not isinstance(value, jax.core.Tracer):
        return False
    return np.shape(value) == () and np.dtype(value.dtype).kind in "iuf"


def number(name: str, value, valid: tuple, where: str = "") -> float:
    """``value`` (:func:`real`) as a float in the range ``valid`` (:data:`UNIT`, ...), else a
    ``ValueError`` naming ``where`` (get_optimizer adds the optimizer), ``name`` and the range."""
    x = real(value)
    if x is None or not valid[1](x):
        what = "" if x is not None else f" ({type(value).__name__}, not a number)"
        raise ValueError(f"{where}{name} must be {valid[0]}, got {value!r}{what}")
    return x


LARGEST_FINITE: dict[str, float] = {
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
    "float32": 3.4028234663852886e38,
    "float64": 1.7976931348623157e308,
}
"""The largest finite value of each float dtype (``numpy.finfo(dtype).max``): a learning
rate above it is infinite once it meets the params (Optax scales the updates in their
dtype), so every update would be inf or nan."""

SMALLEST_RATE: dict[str, float] = {
    "float16": float(2.0**-25 * (1 + 2.0**-23)),
    "bfloat16": 2.0**-126,
    "float32": 2.0**-126,
    "float64": 2.0**-1022,
}
"""The smallest learning rate that is not 0 for XLA in each float dtype: the smallest normal
number (``numpy.finfo(dtype).tiny``), as XLA flushes subnormal float32, bfloat16 and float64
values to 0 (float32 params stayed exactly as they were with a rate of 1e-39, or 1e-50); for
float16, whose subnormals XLA keeps, the smallest number that does not round to 0 either
way a CPU converts a Python float: at once, or through float32 (an AMD EPYC without native
float16 rounds 2^-25 (1 + 2^-40) to 2^-25 in float32, then to 0, a tie to even; an Intel
Xeon with AVX512-FP16 to 2^-24): the float32 number just above half the smallest float16
subnormal 2^-24, 2^-25 (1 + 2^-23)."""


def check_learning_rate(
    learning_rate: float | Schedule, dtype: Any = None, whose: str = "the dtype of the params"
) -> None:
    """A float learning rate must be > 0 and finite, in Python and, given ``dtype`` (the
    params' float dtype: a name such as ``"float32"``, a NumPy dtype or a type such as
    ``jnp.float32``; ``whose`` says what it is), in that dtype (1e39 is inf in float32);
    a schedule must be callable and, given ``dtype``, give at step 0 a rate that a float
    rate would pass (:func:`check_schedule_start`, called once). The one rule ``fit`` and
    ``nnjax train --lr`` apply."""
    if callable(learning_rate):
        if dtype is not None:
            check_schedule_start(learning_rate, dtype, whose)
        return
    try:
        if isinstance(learning_rate, str | bytes | bool):  # float("0.1") and float(True) work
            raise TypeError
        lr = float(learning_rate)
    except (TypeError, ValueError):
        raise ValueError(
            f"learning_rate must be a positive float or an optax schedule, got {learning_rate!r}"
        ) from None
    if not (lr > 0 and lr < float("inf")):
        raise ValueError(f"learning_rate must be > 0 and finite, got {learning_rate}")
    _check_finite_in(lr, f"learning_rate {learning_rate:g}", dtype, whose)


def _check_finite_in(rate: float, what: str, dtype, whose: str) -> None:
    """A ValueError saying ``what`` is infinite in ``dtype`` when ``rate`` is above the
    dtype's largest finite value (:data:`LARGEST_FINITE`); no check for dtype None or one
    not listed there."""
    name = dtype_name(dtype) if dtype is not None else None
    largest = LARGEST_FINITE.get(name) if name is not None else None
    if largest is not None and rate > largest:
        raise ValueError(
            f"{what} is infinite in {name} (largest finite {largest:.4g}), {whose}; give a "
            "smaller rate"
        )


def check_rate_nonzero(learning_rate, dtype, whose: str = "the dtype of the params") -> None:
    """A ValueError when the float ``learning_rate`` (> 0, as :func:`check_learning_rate`
    checks) is 0 for XLA in ``dtype`` (``whose`` says what it is): below its
    :data:`SMALLEST_RATE`, where every update is 0 and training silently changes nothing.
    No check for a schedule, or for a dtype not listed there."""
    name = dtype_name(dtype)
    smallest = SMALLEST_RATE.get(name)
    if callable(learning_rate) or smallest is None or float(learning_rate) >= smallest:
        return
    raise ValueError(
        f"learning_rate {float(learning_rate):g} is 0 in {name}, {whose} (the smallest rate "
        f"that is not: {smallest:.4g}), so no update would move the params; give a larger rate"
    )


def dtype_name(dtype) -> str:
    """``"float32"`` for ``"float32"``, ``np.dtype("float32")``, ``np.float32`` or
    ``jnp.float32`` alike (a type was looked up as ``"<class 'numpy.float32'>"`` and the
    check skipped); a name NumPy does not know is kept as given."""
    import numpy as np

    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def default_float() -> str:
    """JAX's default float dtype: float32, or float64 when x64 is on."""
    import jax.numpy as jnp

    return jnp.dtype(jnp.result_type(float)).name


def check_schedule_start(
    schedule, dtype: Any = None, whose: str = "the dtype of the params"
) -> None:
    """``schedule(0)`` (an int32 step count, as Optax calls it), the first step's rate, must
    be one finite number >= 0 and, given ``dtype`` (``whose`` says what it is), finite in it
    as a float rate must be (1e5 is inf in float16); a ValueError names it (a traced value is
    not checked)."""
    import jax
    import jax.numpy as jnp

    try:
        value = schedule(jnp.asarray(0, jnp.int32))
    except Exception as e:  # any error of the user's schedule, named here
        value = e
    if isinstance(value, jax.core.Tracer):
        return
    error, rate = isinstance(value, Exception), real(value)
    if error or rate is None or not 0.0 <= rate < float("inf"):
        got = f"raised {type(value).__name__}: {value}" if error else f"gave {value!r}"
        raise ValueError(
            "learning_rate is a schedule, called by Optax as schedule(step) -> rate, whose rate "
            f"must be one finite number >= 0; schedule(0) {got}"
        )
    _check_finite_in(rate, f"learning_rate schedule(0) = {rate:g}", dtype, whose)
