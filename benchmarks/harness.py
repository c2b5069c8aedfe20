"""The measuring method: round-robin repetitions, medians with min-max, machine load.

Every implementation is a :class:`Runner`: ``reset()`` restores its initial state (untimed),
``run()`` trains and returns its output *after* ``block_until_ready`` (so the clock sees
the work, not the asynchronous dispatch), ``result(out)`` turns that output into NumPy
``(params, losses)`` for the correctness check. :func:`round_robin` times each runner once
per round (a block of back-to-back calls, sized to last ``min_block`` seconds), rotating
the order every round and sleeping ``pause`` seconds before each block (then one untimed
call wakes the cores, see :func:`round_robin`): BLAS and XLA worker threads spin for ~0.1 s after
a call, and would otherwise steal cores from the next implementation.
"""

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np


class Runner(NamedTuple):
    """One implementation set up on one problem (see the module docstring)."""

    reset: Callable[[], None]
    run: Callable[[], Any]
    result: Callable[[Any], tuple[list, np.ndarray]]
    memory: Callable[[], dict | None] | None = None  # bytes (compiled program, tracemalloc)


class Unavailable(RuntimeError):
    """An implementation's framework is not installed: its row is skipped with this note."""


def stats(times: Sequence[float]) -> dict:
    """Median, min, max (seconds) and the raw list."""
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": list(times),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def round_robin(
    runners: dict[str, Runner], repeats: int, pause: float, min_block: float = 0.0
) -> dict[str, list[float]]:
    """``repeats`` rounds; in round r the runners go in the order rotated by r.

    One sample = one *block* of ``k`` back-to-back calls, divided by ``k``: ``k`` is chosen
    once per runner, ``ceil(min_block / t)`` with ``t`` the time of one untimed calibration
    call, so a block lasts at least ``min_block`` seconds only when its calls are no faster
    than that call (a calibration call slower than the steady state gives shorter blocks;
    one call when ``min_block`` is 0). The pause comes before each block, not between its
    calls: a call that follows a sleep pays for waking idle cores and cold caches (0.4 ms
    on a 0.35 ms call, measured), which a training loop running back to back does not.
    For the same reason one untimed call follows the pause: on the 2-core machine a
    64-step MLP run right after a 0.15 s sleep took 0.62-1.08 ms a step (median 0.92), back to back
    0.58-0.67 ms (2026-12-02, 40 calls each), and blocks of a few calls inherited that slow
    first call.
    """
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    calls = {}
    for name in names:
        runners[name].reset()
        t, _ = timed(runners[name].run)
        calls[name] = max(1, math.ceil(min_block / max(t, 1e-9)))
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runner, n = runners[name], calls[name]
            time.sleep(pause)
            runner.reset()
            runner.run()  # untimed: wakes the worker threads the pause put to sleep
            runner.reset()
            t0 = time.perf_counter()
            for _ in range(n):
                runner.run()
            times[name].append((time.perf_counter() - t0) / n)
    return times


def paired_ratios(num: Sequence[float], den: Sequence[float]) -> dict:
    """Ratios num[r] / den[r] of the same rounds: median, min, max. A ratio taken round by
    round cancels load that drifts slowly over the run."""
    rs = [a / b for a, b in zip(num, den)]
    return {"median": statistics.median(rs), "min": min(rs), "max": max(rs)}


# --- the machine -----------------------------------------------------------------------


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_snapshot(interval: float = 0.5) -> dict:
    """The load average and the CPU use of *other* processes over ``interval`` seconds
    (psutil; in percent of one core, summed), with the busiest few named."""
    snap = {"time": time.time(), "loadavg": list(os.getloadavg())}
    try:
        import psutil
    except ImportError:
        snap["others_cpu_percent"] = None
        return snap
    me = os.getpid()
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        if p.info["pid"] != me:
            try:
                p.cpu_percent(None)
                procs.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    time.sleep(interval)
    use = []
    for p in procs:
        try:
            use.append((p.cpu_percent(None), p.info["name"], p.info["pid"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    use.sort(reverse=True)
    snap["others_cpu_percent"] = round(sum(u[0] for u in use), 1)
    snap["busiest"] = [f"{name}({pid}): {c:.0f}%" for c, name, pid in use[:3] if c > 5]
    return snap


def load_warning(snap: dict, cores: int) -> str | None:
    """A warning when other processes hold more than a quarter of the machine (their CPU use
    from psutil; without psutil, a load average above half the cores)."""
    others = snap.get("others_cpu_percent")
    if others is not None:  # the load average counts this process's own threads too
        high = others > 25.0 * cores
    else:
        high = snap["loadavg"][0] > 0.5 * cores
    if high:
        return (
            f"HIGH LOAD from other processes: load average {snap['loadavg'][0]:.2f} on "
            f"{cores} cores, others using {others}% CPU ({', '.join(snap.get('busiest', []))});"
            " absolute timings are unreliable, ratios within one run less so"
        )
    return None


VECTOR_ISAS = ("avx512f", "avx2", "avx", "sse4_2", "neon", "asimd")
"""The vector extensions that set the matmul peak, widest first (x86 and Arm names)."""


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU a report's figures come from: its model name, family/model numbers and the
    widest vector extension of :data:`VECTOR_ISAS` it has, e.g. ``AMD EPYC (family 25 model
    1), AVX2``, from ``/proc/cpuinfo`` (or ``cpuinfo``, its text). The same machine type can
    be lent with another CPU on another day (AVX2 one day, AVX-512 the next: a 3x different
    peak), so timings are compared only within one report. ``platform.processor()`` where
    there is no /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return platform.processor() or platform.machine()
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's
            fields[key.strip()] = value.strip()
    name = fields.get("model name") or fields.get("Processor") or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    isa = next((i for i in VECTOR_ISAS if i in flags), None)
    return f"{name}, {isa.upper().replace('AVX512F', 'AVX-512')}" if isa else name


def environment() -> dict:
    """Versions, device, and the thread counts of every library that spawns threads."""
    import jax
    import jaxlib

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_description(),
        "cores_available": n_cores(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        # XLA's CPU client sizes its intra-op pool to the cores this process may use.
        "jax_cpu_threads": n_cores() if jax.default_backend() == "cpu" else None,
        "numpy": np.__version__,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }
    for mod in ("ml_dtypes", "flax", "optax", "equinox", "torch"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            env[mod] = None
    try:
        from threadpoolctl import threadpool_info

        env["numpy_blas"] = [
            {k: i.get(k) for k in ("internal_api", "num_threads", "version")}
            for i in threadpool_info()
        ]
    except ImportError:
        env["numpy_blas"] = None
    return env


def device_label() -> str:
    """A file-name-safe name for the device: ``cpu-2cores`` or ``gpu-NVIDIA_H100``."""
    import jax

    backend = jax.default_backend()
    if backend == "cpu":
        return f"cpu-{n_cores()}cores"
    kind = jax.devices()[0].device_kind
    return f"{backend}-" + "".join(c if c.isalnum() else "_" for c in kind)
