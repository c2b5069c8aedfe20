"""The step protocol shared by the brain side's neuron and synapse models, and its scan.

Every model ``m`` (:mod:`~nnjax.brain.adex`, :mod:`~nnjax.brain.izhikevich`,
:mod:`~nnjax.brain.adaptive_lif`, :mod:`~nnjax.brain.hodgkin_huxley`,
:mod:`~nnjax.brain.synapses`) has

* ``m.Params``-like NamedTuple of parameters: a pytree, every field a float or an array that
  broadcasts against the population axis, passed traced (never static), so a population can
  be heterogeneous, new values reuse the compiled program, and ``jax.grad`` reaches them;
* a State NamedTuple, each field of the population's shape (e.g. ``(n,)``);
* ``m.init_state(shape, params) -> State`` and the pure step
  ``m.step(state, inputs, params, dt) -> State`` (dt in ms), with the spikes of the step,
  where the model has them, in ``state.spike`` (float 0/1, differentiable through a
  surrogate where the model says so).

A network composes these steps inside one ``jax.lax.scan``; :func:`run` is that scan for a
single model driven by an input array (T, ...).
"""

import functools
import numbers
import operator
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def check_time_input(inputs, where: str, *, finite: bool = True) -> Array:
    """The input as a floating array with a leading time axis (T, ...), or a ValueError; with
    ``finite``, a concrete input (not traced) holding nan or inf is refused naming its first
    step: a nan makes the membrane nan for the rest of the run, which never crosses a
    threshold, so a simulated neuron would fall silent (0 Hz) with no error."""
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1:
        raise ValueError(f"{where}: inputs must have a leading time axis (T, ...), got a scalar")
    if not jnp.issubdtype(inputs.dtype, jnp.floating):
        inputs = inputs.astype(jnp.result_type(float))
    if finite and not isinstance(inputs, jax.core.Tracer) and inputs.size:
        with jax.ensure_compile_time_eval():  # concrete, also when captured inside a jit
            steps_ok = jnp.isfinite(inputs).reshape(len(inputs), -1).all(axis=1)  # on device
            if not bool(steps_ok.all()):
                step = int(jnp.argmin(steps_ok))
                raise ValueError(f"{where}: the input holds nan or inf (first at step {step})")
    return inputs


def check_dt(dt, where: str, name: str = "dt") -> float:
    """dt as a positive Python float (ms), or a ValueError (a bool or a string is refused)."""
    if isinstance(dt, bool | np.bool_ | str | bytes):
        raise ValueError(f"{where}: {name} must be a positive float (ms), got {dt!r}")
    if isinstance(dt, jax.core.Tracer):  # float() raised JAX's ConcretizationTypeError
        raise ValueError(
            f"{where}: {name} must be a concrete number (ms), got a traced value: it sets the "
            "compiled step (and the step count), so jit or vmap over it is not supported; loop "
            "over the values, or scan the model's step function, which takes a traced dt"
        )
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a positive float (ms), got {dt!r}") from None
    if not (dt > 0 and dt < float("inf")):
        raise ValueError(f"{where}: {name} must be > 0 and finite (ms), got {dt}")
    return dt


def check_step_dt(dt, where: str) -> None:
    """A step function's dt: a scalar (a static shape, so checked under jit too; an array dt
    widened the state into its shape, silently) and, where concrete, finite and > 0 (ms)."""
    check_positive(dt, "dt (ms)", where)  # concrete dt only; a traced one passes
    if jnp.ndim(dt) != 0:
        raise ValueError(f"{where}: dt has shape {jnp.shape(dt)}; dt must be a scalar (ms)")


def check_number(value, name: str, where: str) -> float:
    """``value`` as a Python float when it is a real number (Python or NumPy, a 0-d array;
    not a bool, a string or an array of several), else a ValueError naming ``where: name``."""
    v = concrete(value)
    if v is None or v.ndim != 0 or v.dtype.kind == "b":
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    return float(v)


def check_flag(value, name: str, where: str) -> bool:
    """``value`` as a Python bool when it is one (Python or NumPy), else a ValueError naming
    ``where: name``: a string such as "no" would count as True (the layers' rule,
    :func:`nnjax.layers.checks.flag`)."""
    from nnjax.layers.checks import flag

    return flag(where, name, value)


def concrete(value) -> np.ndarray | None:
    """``value`` as a NumPy array when it is known now (a Python or NumPy number or array, a
    JAX array outside a trace), so that a check covers NumPy scalars and 0-d arrays as well
    as Python floats; None for a tracer or an object that is not numeric."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        out = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return out if out.dtype.kind in "biuf" else None


def check_positive(value, name: str, where: str, *, allow_zero: bool = False) -> None:
    """A ValueError naming ``where: name`` when a concrete ``value`` (any element of it) is
    not a finite number > 0 (>= 0 with ``allow_zero``, for a time constant that may vanish);
    traced values pass unchecked; a string is refused (it ran as a number or failed deep),
    and so are a bool (True ran as 1: ``RateEncoder(gain=True)``), None and any other object
    that is no number (they passed, to fail later deep in JAX, or to run as nan)."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, str | bytes | bool | np.bool_):
        raise ValueError(f"{where}: {name} must be a finite number {bound}, got {value!r}")
    if isinstance(value, jax.core.Tracer):
        return
    v = concrete(value)
    if v is None:
        raise ValueError(f"{where}: {name} must be a finite number {bound}, got {value!r}")
    if v.dtype.kind == "b":
        raise ValueError(f"{where}: {name} must be a finite number {bound}, got booleans")
    ok = np.isfinite(v) & ((v >= 0) if allow_zero else (v > 0))
    if not np.all(ok):
        shown = v.item() if v.ndim == 0 else f"{v[~ok].ravel()[0]} (among {v.shape})"
        raise ValueError(f"{where}: {name} must be a finite number {bound}, got {shown}")


def check_finite(value, name: str, where: str) -> None:
    """A ValueError naming ``where: name`` when a concrete ``value`` (any element of it) is
    nan or inf: such a parameter makes the state nan, which never crosses a threshold, so
    the neuron falls silent with no error. Traced values pass unchecked; a string is refused."""
    if isinstance(value, str | bytes):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    v = concrete(value)
    if v is not None and not np.all(np.isfinite(v)):
        shown = v.item() if v.ndim == 0 else f"{v[~np.isfinite(v)].ravel()[0]} (among {v.shape})"
        raise ValueError(f"{where}: {name} must be a finite number, got {shown}")


def check_count(value, name: str, where: str, minimum: int = 1) -> int:
    """``value`` as a Python int when it is an integer (Python or NumPy, not a bool) >=
    ``minimum``, else a ValueError naming ``where: name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_below(low, high, names: tuple[str, str], where: str):
    """A ValueError naming ``where`` unless concrete ``low`` < ``high`` everywhere, both finite
    (a reset below the spike cut-off); skipped when either is traced."""
    lo, hi = concrete(low), concrete(high)
    if lo is None or hi is None:
        return
    if not np.all(np.isfinite(lo) & np.isfinite(hi) & (lo < hi)):
        raise ValueError(
            f"{where}: {names[0]} must be finite and below {names[1]}, got {names[0]}={low}, "
            f"{names[1]}={high}"
        )


def check_population(current: Array, params, state, where: str):
    """A ValueError naming ``where`` unless the input's trailing shape, every parameter's shape
    and every field of ``state`` (if given) broadcast to one shape, the state's own: the shape
    the scan carries. Shapes are static, so this runs under jit too."""
    params_shapes = [jnp.shape(v) for v in jax.tree.leaves(params)]
    fields = [] if state is None else [jnp.shape(f) for f in state]
    try:
        shape = jnp.broadcast_shapes(current.shape[1:], *params_shapes, *fields)
    except ValueError:
        shape = None
    if shape is None or any(f != shape for f in fields):
        state_part = "" if state is None else f" and the state's fields {fields}"
        raise ValueError(
            f"{where}: the input's trailing shape {current.shape[1:]} (input (T, ...)), the "
            f"parameters' shapes {sorted(set(params_shapes))}{state_part} must broadcast to one "
            "population shape (the state's)"
        )


def check_step_input(where: str, state_fields, current, params) -> None:
    """A ValueError naming ``where`` for state fields that do not broadcast together, a
    ``current`` not a number or a numeric array, or a current or parameter (``params``: a
    NamedTuple, or a dict name -> value) whose shape does not broadcast to the state's or would
    widen it. Shapes are static: this costs nothing under jit; no value is read."""
    dtype = getattr(current, "dtype", np.dtype(float))
    numeric = jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)
    if not (numeric and isinstance(current, jax.Array | np.ndarray | np.generic | int | float)):
        raise ValueError(f"{where}: current must be a number or an array, got {current!r}")
    fields = [jnp.shape(f) for f in state_fields]
    try:
        shape = jnp.broadcast_shapes(*fields)
    except ValueError:
        raise ValueError(f"{where}: the state's fields {fields} do not broadcast") from None
    if hasattr(params, "_asdict"):
        params = {f"params.{k}": v for k, v in params._asdict().items()}
    for name, value in (("current", current), *params.items()):
        check_fits(value, name, shape, where, "the state's shape")


def check_grid(where: str, n_steps: int, n: int, what: str, cap: int) -> None:
    """A ValueError naming ``where`` and ``what`` when n_steps x n currents is above ``cap``
    (the module's MAX_STEPS: the time grid a simulation would allocate)."""
    if n_steps * max(n, 1) > cap:
        raise ValueError(
            f"{where}: {what} is {n_steps} steps x {n} currents = {n_steps * max(n, 1)}, above "
            f"MAX_STEPS = {cap}; shorten it or split the currents"
        )


def check_currents(currents, where: str, *, nan: bool | None = True) -> Array:
    """``currents`` as a floating array, or a ValueError naming ``where`` for non-numbers and
    for +-inf (nan too unless ``nan``: a nan current reads nan; None: no value check)."""
    try:  # a string or None: JAX's own error named no function
        arr = jnp.asarray(currents)
    except (TypeError, ValueError):
        arr = jnp.asarray(True)
    if not jnp.issubdtype(arr.dtype, jnp.integer) and not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(f"{where}: currents must be real numbers, got {currents!r}")
    arr = arr if jnp.issubdtype(arr.dtype, jnp.floating) else arr.astype(jnp.result_type(float))
    c = None if isinstance(arr, jax.core.Tracer) or nan is None else np.asarray(arr, np.float64)
    bad = None if c is None else np.isinf(c) if nan else ~np.isfinite(c)
    if bad is not None and bad.any():
        what = "finite or nan" if nan else "finite"
        raise ValueError(f"{where}: currents must be {what}, got {c[bad].ravel()[0]}")
    return arr


def check_finite_list(values, where: str, name: str) -> None:
    """A ValueError naming the first of ``values`` (a list of settings, not a time series)
    that is nan or inf by its index; tracers pass unchecked."""
    if isinstance(values, jax.core.Tracer):
        return
    flat = np.asarray(values, np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{where}: {name} must be finite, got {flat[k]} at index {k}")


def check_fits(value, name: str, shape, where: str, what: str) -> None:
    """A ValueError naming ``where: name`` and both shapes unless ``value`` broadcasts to
    ``shape`` (``what``) without changing it: a wider value would silently widen the
    carried state or the weights. Shapes are static, so this runs under jit too."""
    got, shape = jnp.shape(value), tuple(shape)
    try:
        ok = jnp.broadcast_shapes(got, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{where}: {name} must broadcast to {what} {shape} without changing it, got "
            f"{name} of shape {got}"
        )


def batch_shape(shape, params, where: str = "init_state") -> tuple[int, ...]:
    """The population shape: ``shape`` broadcast with the shape of every parameter leaf; a
    ValueError naming ``where`` for a shape that is not a tuple of ints >= 0 or that does not
    broadcast with the parameters."""
    try:
        dims = tuple(operator.index(n) for n in shape)
    except TypeError:
        dims = None
    if dims is None or any(n < 0 for n in dims):
        raise ValueError(f"{where}: shape must be a tuple of ints >= 0, got {shape!r}")
    shape = dims
    shapes = [jnp.shape(p) for p in jax.tree.leaves(params)]
    try:
        return jnp.broadcast_shapes(shape, *shapes)
    except ValueError:
        raise ValueError(
            f"{where}: shape {shape} and the parameters' shapes {sorted(set(shapes))} must "
            "broadcast to one population shape"
        ) from None


def state_dtype(inputs: Array, params):
    """The dtype of a state driven by ``inputs`` under ``params``: their common float type
    (Python-number parameters are weakly typed and follow the input)."""
    return jnp.result_type(inputs.dtype, *jax.tree.leaves(params))


def run(step: Callable, state, inputs: Array, params, dt: float):
    """Scan ``step`` over the time axis of ``inputs`` (T, ...) from ``state``.

    Returns the trace: the State after every step, each field (T, *population shape).
    ``step`` and ``dt`` are static; the parameters and the state are traced; ``dt`` as
    :func:`check_dt` (a dt <= 0 ran backwards in time), checked before the jit: a JAX
    array dt failed in jit's hashing with "Non-hashable static arguments".
    """
    return _run(step, state, inputs, params, check_dt(dt, "run"))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _run(step: Callable, state, inputs: Array, params, dt: float):
    def body(s, x):
        s = step(s, x, params, dt)
        return s, s

    return jax.lax.scan(body, state, inputs)[1]


def spike_times(spikes, dt: float):
    """Spike times (ms) of one neuron's spike trace (T,): the end of each step that holds a
    spike, t = (k + 1) dt. NumPy in, NumPy out (for analysis, not for jit)."""
    import numpy as np

    dt = check_dt(dt, "spike_times")
    spikes = np.asarray(spikes)
    if spikes.ndim != 1:
        raise ValueError(f"spike_times: expected one neuron's trace (T,), got {spikes.shape}")
    return (np.flatnonzero(spikes > 0) + 1) * dt
