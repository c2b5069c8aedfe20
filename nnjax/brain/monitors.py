"""What a network simulation records (:func:`nnjax.brain.network.simulate`): the monitors.

A :class:`Monitor` is static (part of the compiled program): one record row per bin of
``every`` steps, with the spikes of the bin (a raster of counts or the ids of the neurons that
fired), the E and I population rates (Hz), the LFP proxy's mean over the bin (pA) and chosen
state variables of chosen neurons at the bin's end. Units and shapes as
:mod:`~nnjax.brain.network`.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp

from nnjax.brain import adaptive_lif, adex, dynamics

if TYPE_CHECKING:  # network imports this module
    from nnjax.brain.network import NetworkSpec, NetworkState

Array = jax.Array

SPIKE_MONITORS = (None, "raster", "indices")


class Monitor(NamedTuple):
    """What :func:`simulate` records, one sample per ``every`` steps (a bin).

    spikes: "raster" (spike counts per bin, (n_bins, N), uint8 for bins of up to 255 steps,
    wider for longer ones: :func:`raster_dtype`), "indices" (the ids of the
    neurons that spiked in each bin, (n_bins, max_spikes) int32 padded with -1, and the count
    that did not fit, (n_bins,)), or None. rate: population rates (n_bins, 2) Hz, E and I.
    lfp: the LFP proxy averaged over the bin, (n_bins,) pA (nA for adaptive LIF).
    variables: neuron-state fields (e.g. "V", "w") of ``neurons`` at the bin's end, each
    (n_bins, len(neurons)); "syn_exc", "syn_inh": the recurrent E and I synaptic input of the
    bin's last step (AdEx: the conductances, nS, at that step's start, which act over it;
    adaptive LIF: the currents' means over it, nA), the external drive not included."""

    every: int = 1
    spikes: str | None = "raster"
    max_spikes: int = 64
    rate: bool = True
    lfp: bool = True
    neurons: tuple = ()
    variables: tuple = ("V",)


def raster_dtype(every: int):
    """The narrowest unsigned int that holds a bin's count: a neuron spikes at most once a
    step, so at most ``every`` per bin: uint8 up to 255 steps per bin, uint16 up to 65535,
    uint32 beyond. ``every`` is an int >= 1 (else a ValueError: -1 gave uint8)."""
    every = dynamics.check_count(every, "every", "raster_dtype")
    return jnp.uint8 if every <= 255 else jnp.uint16 if every <= 65535 else jnp.uint32


def _sample(monitor: Monitor, state: NetworkState, g_exc, g_inh) -> dict:
    idx = jnp.asarray(monitor.neurons, jnp.int32)
    out = {}
    for name in monitor.variables:
        if name in ("syn_exc", "syn_inh"):
            v = g_exc if name == "syn_exc" else g_inh
        else:
            v = getattr(state.neurons, name)
        out[name] = v[idx]
    return out


def _bin_record(monitor: Monitor, spec: NetworkSpec, counts: Array, lfp_sum, sample) -> dict:
    rec = dict(sample)
    if monitor.spikes == "raster":
        rec["spikes"] = counts.astype(raster_dtype(monitor.every))
    elif monitor.spikes == "indices":
        fired = counts > 0
        (ids,) = jnp.nonzero(fired, size=monitor.max_spikes, fill_value=-1)
        rec["spike_ids"] = ids.astype(jnp.int32)
        rec["spike_overflow"] = jnp.maximum(jnp.sum(fired) - monitor.max_spikes, 0)
    if monitor.rate:
        seconds = monitor.every * spec.dt / 1000.0
        c = counts.astype(lfp_sum.dtype)
        c_e, c_i = c[: spec.n_exc], c[spec.n_exc :]
        rec["rate"] = jnp.stack([c_e.sum() / spec.n_exc, c_i.sum() / spec.n_inh]) / seconds
    if monitor.lfp:
        rec["lfp"] = lfp_sum / monitor.every
    return rec


def check_monitor(monitor: Monitor, spec: NetworkSpec, n_steps: int) -> Monitor:
    """ValueError for a monitor that does not fit the network or the run's length; returns it
    with Python ints (NumPy ints are accepted; a non-integer neuron id is refused, not
    truncated)."""
    if not isinstance(monitor, Monitor):
        raise ValueError(f"network: monitor must be a Monitor, got {type(monitor).__name__}")
    for name in ("neurons", "variables"):  # a str was read letter by letter, an int failed
        if not isinstance(getattr(monitor, name), tuple | list):
            raise ValueError(
                f"network: Monitor.{name} must be a tuple, got {getattr(monitor, name)!r}"
            )
    for name in ("rate", "lfp"):  # "no" counted as True
        dynamics.check_flag(getattr(monitor, name), f"Monitor.{name}", "network")
    every = dynamics.check_count(monitor.every, "Monitor.every", "network")
    if n_steps % every:
        raise ValueError(
            f"network: Monitor.every must be a positive int dividing n_steps={n_steps}, "
            f"got {every!r}"
        )
    if monitor.spikes not in SPIKE_MONITORS:
        raise ValueError(f"network: Monitor.spikes must be one of {SPIKE_MONITORS}")
    max_spikes = dynamics.check_count(monitor.max_spikes, "Monitor.max_spikes", "network")
    neurons = tuple(_neuron_id(i, spec.n) for i in monitor.neurons)
    state_type = adex.AdExState if spec.model == "adex" else adaptive_lif.ALIFState
    valid = set(state_type._fields) | {"syn_exc", "syn_inh"}
    bad = [v for v in monitor.variables if not isinstance(v, str) or v not in valid]
    if bad:
        raise ValueError(f"network: unknown Monitor.variables {bad}; valid: {sorted(valid)}")
    # a list of variables passed here and failed in jit: a static argument must be hashable
    variables = tuple(monitor.variables)
    monitor = monitor._replace(
        every=every, max_spikes=max_spikes, neurons=neurons, variables=variables
    )
    size = record_bytes(monitor, spec, n_steps)
    if size > MAX_RECORD_BYTES:  # XLA failed with RESOURCE_EXHAUSTED, or the host was killed
        raise ValueError(
            f"network: the recording of {n_steps // every} bins (n_steps={n_steps} / "
            f"Monitor.every={every}) would take {size / 2**30:.1f} GiB, above MAX_RECORD_BYTES "
            f"= {MAX_RECORD_BYTES / 2**30:.0f} GiB; raise Monitor.every, record fewer neurons "
            "or variables, use spikes='indices' or None, or split the run"
        )
    return monitor


MAX_RECORD_BYTES = 2**33
"""The largest recording :func:`check_monitor` lets a run allocate (8 GiB): a raster of
every step of an hour at dt = 0.1 ms for 1000 neurons would be 36 GB."""


def record_bytes(monitor: Monitor, spec: NetworkSpec, n_steps: int) -> int:
    """The bytes of the record of ``n_steps`` steps: n_bins rows of the raster or spike ids
    (int32) and overflow count, rates, LFP and sampled variables (floats and the count of the
    default width: 4 bytes, 8 under JAX's x64, where the state is float64)."""
    f = jnp.dtype(jnp.result_type(float)).itemsize
    i = jnp.dtype(jnp.result_type(int)).itemsize
    row = {"raster": spec.n * jnp.dtype(raster_dtype(monitor.every)).itemsize,
           "indices": 4 * monitor.max_spikes + i, None: 0}[monitor.spikes]  # fmt: skip
    row += 2 * f * bool(monitor.rate) + f * bool(monitor.lfp)
    row += f * len(monitor.neurons) * len(monitor.variables)
    return (n_steps // monitor.every) * row


def _neuron_id(i, n: int) -> int:
    if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < n:
        raise ValueError(f"network: Monitor.neurons must be ints in 0..{n - 1}, got {i!r}")
    return int(i)


def bin_times(n_bins: int, every: int, dt: float):
    """End times (ms) of the recording's bins, NumPy (n_bins,)."""
    import numpy as np

    n_bins = dynamics.check_count(n_bins, "n_bins", "bin_times", minimum=0)
    every = dynamics.check_count(every, "every", "bin_times")
    dt = dynamics.check_dt(dt, "bin_times")
    return (np.arange(n_bins) + 1) * every * dt
