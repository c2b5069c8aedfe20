"""The delay line of :mod:`nnjax.brain.synapses`: a ring buffer of presynaptic spikes (or
of per-spike numbers, with a channel axis), written once a step and read ``d`` steps back.
Its public names are re-exported by :mod:`~nnjax.brain.synapses`, whose names its errors
carry (``synapses.delay_read: ...``)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics

Array = jax.Array


class DelayLine(NamedTuple):
    """Ring buffer of presynaptic spikes: buffer (D, n_pre), head = the slot of the latest
    step (int32 scalar)."""

    buffer: Array
    head: Array


INT32_MAX = 2**31 - 1


def delay_steps(delay_ms, dt: float) -> Array:
    """Delays in ms -> whole steps, round(delay / dt), int32. ValueError for a concrete delay
    that is not finite, negative, or of more than INT32_MAX steps (traced ones pass). A
    concrete delay is divided in float64, as :attr:`NetworkSpec.delay_steps` divides (2.55 ms
    at dt 0.1 is 25 steps in both: float32 made it 25.5, rounded to 26); a traced one in its
    own float."""
    check_numbers(delay_ms, "synapses.delay_steps")
    dt = dynamics.check_dt(dt, "synapses.delay_steps")
    ms = dynamics.concrete(delay_ms)
    if ms is None:
        return jnp.round(jnp.asarray(delay_ms) / dt).astype(jnp.int32)
    if not np.all(np.isfinite(ms)):
        raise ValueError(
            f"synapses.delay_steps: delays must be finite (ms), got {ms[~np.isfinite(ms)][0]!s}"
        )
    if np.any(ms < 0):  # not steps < 0: -0.04 ms at dt 0.1 rounded to 0 steps
        raise ValueError(f"synapses.delay_steps: delays must be >= 0 ms, got min {ms.min()!s}")
    n = np.round(ms.astype(np.float64) / float(dt))
    if np.any(n > INT32_MAX):
        raise ValueError(
            f"synapses.delay_steps: delays must be at most {INT32_MAX} steps of dt={dt} ms, got "
            f"{ms.max()!s} ms"
        )
    return jnp.asarray(n.astype(np.int32))


def delay_init(n_pre: int, max_delay: int, *, channels: int | None = None, dtype=None):
    """An empty ring buffer for ``n_pre`` neurons and delays of 0..max_delay steps; with
    ``channels`` every spike carries that many numbers (buffer (D, n_pre, channels))."""
    where = "synapses.delay_init"
    max_delay = dynamics.check_count(max_delay, "max_delay (steps)", where, minimum=0)
    n_pre = dynamics.check_count(n_pre, "n_pre", where)
    dtype = jnp.result_type(float) if dtype is None else dtype
    extra = () if channels is None else (dynamics.check_count(channels, "channels", where),)
    return DelayLine(jnp.zeros((max_delay + 1, n_pre) + extra, dtype), jnp.zeros((), jnp.int32))


def delay_push(line: DelayLine, spikes: Array) -> DelayLine:
    """Store this step's spikes (n_pre,) (or (n_pre, channels)) in the slot after the head.
    A ValueError for spikes of another shape (a (1,) array would fill every slot's row)."""
    return push(line, spikes, "synapses.delay_push", "spikes")


def push(line: DelayLine, spikes, where: str, name: str) -> DelayLine:
    if np.shape(spikes) != line.buffer.shape[1:]:  # np: jnp.shape of a list is deprecated
        raise ValueError(
            f"{where}: {name} must have shape {line.buffer.shape[1:]} (n_pre[, channels]), got "
            f"{np.shape(spikes)}"
        )
    head = (line.head + 1) % line.buffer.shape[0]
    spikes = jnp.asarray(spikes, line.buffer.dtype)  # a list had no .astype
    return DelayLine(line.buffer.at[head].set(spikes), head)


def delay_read(line: DelayLine, delays: Array) -> Array:
    """Spikes of ``delays`` steps ago (0 = the latest push).

    delays (n_pre,) or a scalar -> (n_pre,); delays (n_post, n_pre) -> (n_post, n_pre)
    (each with the channel axis appended, if the line has one); ValueError for another
    shape. Delays must be whole steps in 0..max_delay: ValueError for concrete ones
    outside; traced ones (under jit, as arguments) are not checked and wrap around the ring.
    """
    D, n_pre = line.buffer.shape[:2]
    check_delay_shape(delays, n_pre, None, "synapses.delay_read")
    check_delays(delays, 0, D - 1, "synapses.delay_read")
    delays = jnp.asarray(delays, jnp.int32)
    slot = (line.head - delays) % D
    cols = jnp.arange(n_pre)
    return line.buffer[slot, jnp.broadcast_to(cols, slot.shape) if slot.ndim else cols]


def check_delay_shape(delays, n_pre: int, n_post: int | None, where: str):
    """A ValueError unless delays are a scalar, (n_pre,) or (n_post, n_pre) (any n_post when
    None): another shape failed in a broadcast naming neither, or read a 3-D block."""
    shape = jnp.shape(delays)
    rows = shape[:1] if n_post is None else (n_post,)
    if shape not in ((), (n_pre,), rows + (n_pre,)):
        post = "n_post" if n_post is None else n_post
        raise ValueError(
            f"{where}: delays has shape {shape}, the line holds {n_pre} presynaptic neurons; "
            f"delays must be (), ({n_pre},) or ({post}, {n_pre})"
        )


def check_delays(delays, low: int, high: int, where: str):
    """A ValueError unless concrete ``delays`` are whole numbers in [low, high] (tracers
    pass; a Python int or a small array costs microseconds, once per trace)."""
    check_numbers(delays, where)
    d = dynamics.concrete(delays)
    if d is None:
        return
    bad = (d != np.round(d)) | (d < low) | (d > high)
    if np.any(bad):
        raise ValueError(
            f"{where}: delays must be whole steps in [{low}, max_delay={high}], got "
            f"{d[bad].ravel()[0]!s}"
        )


def check_numbers(delays, where: str) -> None:
    """A ValueError naming ``where`` unless ``delays`` are real numbers or a tracer: the
    string "1" was parsed as 1 step and True ran as 1 (1 ms in delay_steps)."""
    if isinstance(delays, jax.core.Tracer):
        return
    d = dynamics.concrete(delays)
    if d is None or d.dtype.kind == "b":
        shown = repr(delays)
        shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
        raise ValueError(f"{where}: delays must be real numbers (not bools), got {shown}")
