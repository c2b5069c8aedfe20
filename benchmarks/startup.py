"""Start-up: what a user waits for before nnjax does any work, and what the cache saves.

Every figure is wall-clock time of fresh processes, the median of ``repeats`` runs:

* ``python -c pass``: the interpreter alone, the floor under every command;
* ``python -c "import nnjax"``: the lazy package (no JAX, Flax, matplotlib or rich);
* ``python -c "import jax"``: the floor under every command that computes (JAX imports
  NumPy, SciPy and ml_dtypes);
* ``nnjax --help`` and ``nnjax train --help``: argument parsing only, no JAX work;
* ``nnjax train`` with its defaults, twice in a row on one fresh compilation cache
  (``--cache-dir``), ``pairs`` times: the first run compiles and fills the cache, the second
  loads its programs from it. Each run's own report line gives its compile time (the
  driver's ``lower().compile()``: tracing and lowering, then the cache's load) and the end-
  to-end wall time is measured around the process.

The console script is the ``nnjax`` beside this Python when there is one, else
``python -m nnjax``; both run :func:`nnjax.cli.main`.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _nnjax() -> list[str]:
    script = Path(sys.executable).with_name("nnjax")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnjax"]


def _run(cmd: list[str], env: dict) -> tuple[float, str]:
    """(wall seconds, stdout) of one process; a failure stops the benchmark, naming it."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]}")
    return wall, proc.stdout


def _median(cmd: list[str], env: dict, repeats: int) -> dict:
    times = [_run(cmd, env)[0] for _ in range(repeats)]
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def _compile_seconds(stdout: str) -> float:
    m = re.search(r"compile ([0-9.]+) s", stdout)
    if m is None:
        raise RuntimeError(f"no compile time in nnjax train's output: {stdout[-300:]!r}")
    return float(m.group(1))


def _train_pairs(env: dict, pairs: int) -> list[dict]:
    """``pairs`` x (first, second) default ``nnjax train`` runs, each pair on a new cache."""
    out = []
    for _ in range(pairs):
        cache = tempfile.mkdtemp(prefix="nnjax-cache-")
        try:
            cmd = [*_nnjax(), "--cache-dir", cache, "train"]
            (w1, o1), (w2, o2) = _run(cmd, env), _run(cmd, env)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        out.append(
            {
                "first_wall": w1,
                "second_wall": w2,
                "first_compile": _compile_seconds(o1),
                "second_compile": _compile_seconds(o2),
                "speedup": w1 / w2,
            }
        )
    return out


def bench_startup(repeats: int = 5, pairs: int = 5) -> dict:
    """The start-up figures (see the module docstring) as a dict for the report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NNJAX_CACHE_DIR", None)
    cli = _nnjax()
    rows = {
        "python -c pass": _median([sys.executable, "-c", "pass"], env, repeats),
        "import nnjax": _median([sys.executable, "-c", "import nnjax"], env, repeats),
        "import jax": _median([sys.executable, "-c", "import jax"], env, repeats),
        "nnjax --help": _median([*cli, "--help"], env, repeats),
        "nnjax train --help": _median([*cli, "train", "--help"], env, repeats),
    }
    train = _train_pairs(env, pairs)
    return {"cli": " ".join(cli), "repeats": repeats, "rows": rows, "train": train}


def targets(results: dict) -> list[dict]:
    """The issue's start-up targets on one run's figures (medians of the rounds and of the
    train pairs). A time that is no measurement (nan, inf; 0 or less for a process's wall
    time; a compile time may be 0.00 as printed) gives no verdict (None), never "met"."""
    s = results.get("startup")
    if not s:
        return []
    rows, train = s["rows"], s["train"]
    help_s, import_s = rows["nnjax --help"]["median"], rows["import nnjax"]["median"]
    out = [
        {
            "target": "nnjax --help under 0.5 s",
            "measured": f"{help_s:.3f} s (median of {s['repeats']})",
            "holds": _verdict(help_s, lambda v: v < 0.5),
        },
        {
            "target": 'python -c "import nnjax" under 1.2 s',
            "measured": f"{import_s:.3f} s (median of {s['repeats']})",
            "holds": _verdict(import_s, lambda v: v < 1.2),
        },
    ]
    if not train:  # a quick run times no training
        return out
    compile2 = statistics.median(p["second_compile"] for p in train)
    speedup = statistics.median(p["speedup"] for p in train)
    return out + [
        {
            "target": "second identical nnjax train: compile under 0.2 s",
            # nnjax train prints its compile time to 0.01 s: no third decimal to show
            "measured": f"{compile2:.2f} s (median of {len(train)}; first runs "
            f"{statistics.median(p['first_compile'] for p in train):.2f} s)",
            "holds": _verdict(compile2, lambda v: v < 0.2, zero_ok=True),
        },
        {
            "target": "second identical nnjax train: >= 1.5x faster end to end",
            "measured": f"{speedup:.2f}x (median of {len(train)}: "
            + ", ".join(f"{p['first_wall']:.2f} -> {p['second_wall']:.2f} s" for p in train)
            + ")",
            "holds": _verdict(speedup, lambda v: v >= 1.5),
        },
    ]


def _verdict(value, bound, *, zero_ok: bool = False) -> bool | None:
    """``bound(value)``, or None when ``value`` is no measurement: not a finite number, < 0,
    or 0 unless ``zero_ok`` (a wall time of 0 s measured nothing)."""
    import math

    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        return None
    if value == 0 and not zero_ok:
        return None
    return bool(bound(value))


def markdown(results: dict) -> list[str]:
    """The report's start-up section."""
    s = results.get("startup")
    if not s:
        return []
    L = ["## Start-up", "", f"Fresh processes, median of {s['repeats']} (`{s['cli']}`).", ""]
    L += ["| command | median s | min-max s |", "| --- | --- | --- |"]
    for name, r in s["rows"].items():
        L.append(f"| `{name}` | {r['median']:.3f} | {r['min']:.3f}-{r['max']:.3f} |")
    if not s["train"]:
        return L + [""]
    L += ["", "`nnjax train` (defaults) twice on one fresh compilation cache:", ""]
    L += [
        "| pair | first: wall / compile s | second: wall / compile s | speed-up |",
        "| --- | --- | --- | --- |",
    ]
    for i, p in enumerate(s["train"], 1):
        L.append(
            f"| {i} | {p['first_wall']:.2f} / {p['first_compile']:.2f} | "
            f"{p['second_wall']:.2f} / {p['second_compile']:.2f} | {p['speedup']:.2f}x |"
        )
    return L + [""]
