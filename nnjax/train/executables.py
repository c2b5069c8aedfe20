"""Compiled training programs kept on disk, so that a repeated run skips tracing as well.

JAX's persistent compilation cache (:mod:`nnjax.cache`) saves the XLA compile, but a new
process must still trace and lower the program to find its entry. For the CLI's default MLP
that was most of the second run's "compile" (0.9-1.4 s on 2 cores under a load of 8, 0.16 s
of it the cache's load; 0.07-0.08 s with this store, idle). This store skips the tracing too:
``fit`` saves its compiled loop (``jax.experimental.serialize_executable``) under a key made
before any tracing, and a later process with the same key loads it in milliseconds.

The key (sha256) covers everything the program is a function of:

* the program's code: a digest of every ``.py`` file of the installed ``nnjax`` package, and
  the jax and jaxlib versions;
* the machine: the processor and its instruction set (:func:`nnjax._host.cpu_signature`:
  XLA compiles for the host's extensions, and a program loaded on a processor without them
  dies of SIGILL), the backend, each device's kind and the device count,
  ``jax_enable_x64``, the default matmul precision, ``XLA_FLAGS`` and JAX's PRNG settings
  (``jax_threefry_partitionable``, ``jax_default_prng_impl``: the traced shuffle depends on
  them, :mod:`nnjax.train.threefry`, so a program traced under one is wrong under another),
  and the checks JAX makes while tracing (``jax_numpy_rank_promotion``,
  ``jax_numpy_dtype_promotion``, ``jax_enable_checks``: a program traced without them and
  loaded under them would skip them);
* the run: the model's spec, the loss's and optimizer's names with every hyperparameter
  (:mod:`nnjax.train.config`), the batch size, steps per epoch, dropout, the finiteness
  check, the evaluation sets' names, the execution mode (not why ``"auto"`` chose it) and
  buffer donation;
* the call: the tree structure, shape, dtype and sharding (its devices included) of every
  argument.

A run is stored only when all of it can be described: a model with a ``spec`` (built from
nnjax's layers), a loss and an optimizer given by name, a constant learning rate. Anything
else (a Python function as the loss, an ``optax`` object, a schedule) compiles as usual, and
so do the ``"chunked"`` and ``"per_step"`` loops (a host loop over compiled pieces,
:class:`~nnjax.train.driver.HostProgram`): only the fused loop is stored. The
store is on only while the compilation cache is (:func:`nnjax.cache.active_dir`: the CLI
by default, library users through :func:`nnjax.cache.enable_compilation_cache`), in its
``nnjax-programs`` subfolder. Entries are written atomically; one that cannot be read (cut
short, another format) is compiled afresh and replaced. Failing to save never fails a run.

Only a program XLA compiled in this process is stored: one that JAX's persistent cache
served, serialised again, lacks some of its kernels, and the next process to load it failed
with ``NOT_FOUND: Function ... not found`` (jax 0.10.2, CPU). JAX's cache keys a program by
its module name, so the program is lowered under a name made of this store's key
(``nnjax_fit_<key>``): a new nnjax version or other settings give a new name, which JAX's
cache has never seen, and XLA compiles it. When JAX's cache serves it all the same (this
store's entry was deleted, JAX's kept), it is lowered once more under a name of its own and
compiled. (Storing nothing there, as before, left every later run served by JAX's cache
and tracing again: 0.28 s of "compile" for the default MLP, until the folder was deleted.)
"""

import functools
import hashlib
import json
import os
import pickle
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from nnjax import _host

SUBDIR = "nnjax-programs"
FORMAT = 1
_CACHE_HIT = "/jax/compilation_cache/cache_hits"  # recorded by JAX, in the compiling thread
_hits = threading.local()


def _count_hit(event: str, **_) -> None:
    if event == _CACHE_HIT:
        _hits.n = getattr(_hits, "n", 0) + 1


@functools.cache
def _listen() -> None:
    jax.monitoring.register_event_listener(_count_hit)


def compile_counting_hits(lowered):
    """``(lowered.compile(), served)``: ``served`` is True when JAX's persistent compilation
    cache returned the executable instead of XLA compiling it."""
    _listen()
    before = getattr(_hits, "n", 0)
    compiled = lowered.compile()
    return compiled, getattr(_hits, "n", 0) > before


@functools.cache
def source_digest() -> str:
    """sha256 of the relative paths and bytes of every ``.py`` file of the ``nnjax`` package."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def machine() -> dict[str, Any]:
    """What, besides the program, decides the executable: versions, devices, global flags
    (the PRNG settings included: the same key draws other bits under another one; and the
    trace-time checks, which a loaded program would skip)."""
    import jaxlib

    devices = jax.devices()
    return {
        "format": FORMAT,
        "nnjax_sources": source_digest(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "cpu": _host.cpu_signature(),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in devices],
        "x64": bool(jax.config.jax_enable_x64),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "prng_impl": str(jax.config.jax_default_prng_impl),
        # the checks made while tracing: a program stored without them skipped them
        "rank_promotion": str(jax.config.jax_numpy_rank_promotion),
        "dtype_promotion": str(jax.config.jax_numpy_dtype_promotion),
        "enable_checks": bool(jax.config.jax_enable_checks),
    }


def signature(args: tuple) -> str:
    """The call's abstract signature: tree structure, then each leaf's type and sharding."""
    leaves, tree = jax.tree.flatten(args)
    parts = [str(tree)]
    for x in leaves:
        sharding = getattr(x, "sharding", None)
        parts.append(f"{jax.typeof(x)}|{sharding}|{_device_ids(sharding)}")
    return "\n".join(parts)


def _device_ids(sharding) -> list[int] | None:
    """The devices of ``sharding``, in the mesh's order: a mesh's repr names only its axes,
    so a program compiled for devices 0, 1 was loaded for a mesh of devices 2, 3 and failed
    ("compiled for input shardings that disagree")."""
    mesh = getattr(sharding, "mesh", None)
    if getattr(mesh, "device_ids", None) is not None:
        return mesh.device_ids.ravel().tolist()
    return None if sharding is None else sorted(d.id for d in sharding.device_set)


class ExecutableStore:
    """Compiled programs of one described run in ``directory`` (module docstring)."""

    def __init__(self, directory: str | os.PathLike, run: dict[str, Any]):
        self.directory = Path(directory)
        self.prefix = json.dumps({"machine": machine(), "run": run}, sort_keys=True, default=str)

    def path(self, args: tuple, tag: str = "") -> Path:
        """The entry of a call with ``args``; ``tag``: what else the caller varies (donation)."""
        text = f"{self.prefix}\n{tag}\n{signature(args)}"
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()}.xla"

    def load(self, args: tuple, tag: str = ""):
        """The stored executable for a call with ``args``, or None (absent or unreadable)."""
        from jax.experimental import serialize_executable

        path = self.path(args, tag)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            return serialize_executable.deserialize_and_load(*pickle.loads(blob))
        except Exception as e:  # cut short, or written by another build: compile afresh
            from nnjax import cache

            msg = f"{path}{cache.STORED_UNREADABLE} ({e})"  # the CLI says it once
            warnings.warn(msg, stacklevel=3)
            return None

    def compile(self, lower: Callable[[str], Any], args: tuple, tag: str = ""):
        """Compile the program for calls with ``args`` and store it: ``lower(name)`` lowers
        it under the module name ``name``, which keys JAX's persistent cache (module
        docstring). Returns the executable."""
        name = f"nnjax_fit_{self.path(args, tag).stem[:16]}"
        compiled, served = compile_counting_hits(lower(name))
        if served:  # JAX's cache holds this name: a name it has not seen, to compile afresh
            compiled, served = compile_counting_hits(lower(f"{name}_{uuid.uuid4().hex[:8]}"))
        if not served:
            self.save(compiled, args, tag)
        return compiled

    def save(self, compiled, args: tuple, tag: str = "") -> None:
        """Store ``compiled`` for calls with ``args``; best effort, never raises."""
        from jax.experimental import serialize_executable

        from nnjax.io import atomic_write_bytes

        try:
            blob = pickle.dumps(serialize_executable.serialize(compiled))
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path(args, tag), blob)
        except Exception as e:  # a full disk, an unpicklable tree: the run goes on
            from nnjax import cache

            msg = cache.write_failure(self.directory, f"{type(e).__name__}: {e}")
            if msg is not None:  # said once per process, with JAX's own write failures
                warnings.warn(msg, stacklevel=3)


def store_for_fit(plan, optimizer, learning_rate, loss) -> ExecutableStore | None:
    """The store for ``fit``'s plan, or None: the cache is off, or the run is not fully
    described (a model without spec, a loss or optimizer not given by name, a schedule)."""
    from nnjax import cache
    from nnjax.optim import DEFAULT_LEARNING_RATE, OPTIMIZERS
    from nnjax.train.config import describe_model, describe_optimizer

    root = cache.active_dir()
    spec = getattr(plan.model, "spec", None)
    named = isinstance(loss, str) and isinstance(optimizer, str) and optimizer in OPTIMIZERS
    if root is None or spec is None or not named or callable(learning_rate):
        return None
    run = {
        "model": describe_model(plan.model),
        "loss": loss,
        "optimizer": describe_optimizer(
            optimizer, DEFAULT_LEARNING_RATE[optimizer] if learning_rate is None else learning_rate
        ),
        "batch_size": plan.batch_size,
        "steps_per_epoch": plan.steps_per_epoch,
        "dropout": plan.dropout,
        "check_finite": plan.check_finite,
        "eval_names": list(plan.eval_names),
        "execution": _execution_key(getattr(plan, "execution", None)),
    }
    return ExecutableStore(Path(root) / SUBDIR, run)


def _execution_key(execution) -> str:
    """The execution mode as it decides the program: ``mode`` and ``steps_per_call``, not the
    reason ``"auto"`` gives, so ``execution="fused"`` and an ``"auto"`` that picks the fused
    loop share their entry (keyed on the reason, each compiled its own)."""
    if execution is None:
        return "fused"
    return f"{execution.mode}:{execution.steps_per_call}"
