"""The driver: compile a pure chunked program once, run it chunk by chunk, run hooks between.

A *program* is a pure function ``program(carry, indices, *args) -> (carry, outputs)`` that
advances ``carry`` over the int array ``indices`` (epochs for ``fit`` and ``compare``, tasks
for the continual-learning runs); ``outputs`` is a pytree whose ``axis`` runs over
``indices``. :func:`drive` runs ``indices = start .. total - 1`` in chunks:

1. it compiles the program once per chunk size (``jit(...).lower(...).compile()``, timed
   apart from running; equal chunks compile once), or lets a :class:`HostProgram` (a loop
   on the host over compiled pieces, e.g. one optimizer step per call) compile its pieces;
2. it runs a chunk, waits for its outputs and copies them to the host (NumPy), timed;
3. it calls each hook ``hook(report)`` with a :class:`ChunkReport` (the chunk's range, the
   carry after it, its outputs, all outputs so far): the finiteness check, checkpoints,
   progress and user callbacks are hooks. A hook stops the run by raising (e.g.
   ``NonFiniteLossError``) or by requesting a stop (below);
4. it asks the chunk schedule for the next chunk's size (:class:`FixedChunks`, or
   :class:`BoundedChunks` to bound a chunk's wall time).

Seams for stopping early (signals, a divergence guard):

* ``stop``: a :class:`StopFlag`. Anyone (a signal handler, a hook) calls
  ``stop.request(reason)``; the chunk running then finishes, the hooks see
  ``report.stopping == reason`` (``report.final`` is true: a checkpoint hook saves), and
  :func:`drive` returns with ``Driven.stopped == reason`` instead of running the next chunk.
  A request that arrives while the hooks run re-runs them once with ``stopping`` set, so
  hooks must tolerate the same report twice (save only once, report once).
* chunk length: a stop takes effect at the end of the running chunk; a
  :class:`BoundedChunks` schedule keeps chunks under a wall-time bound, so a stop request is
  served within that bound (plus the hooks' time).

How ``fit`` uses them: ``fit(..., stop=flag)`` hands its flag to the driver; its hooks are,
in order, the checks of the losses, of the metrics and of the carry before a due checkpoint
(each raises ``NonFiniteLossError``), the divergence guard (raises ``DivergenceError``),
early stopping (requests a stop), the checkpoint (saves when due or ``report.final``) and
``on_epochs`` (:func:`nnjax.train.fitting._hooks`); after a stop it raises
``TrainingStopped`` carrying the result so far. A signal handler is one line,
``signal.signal(signal.SIGTERM, lambda *_: flag.request("SIGTERM"))``. Chunks are
``FixedChunks(epochs_per_call)``, or ``BoundedChunks(epochs_per_call, max_chunk_seconds)``
when a bound is set (by default with ``checkpoint_dir`` or ``stop``).

Every training loop in nnjax runs through :func:`drive`: ``fit`` (its loop from
:func:`nnjax.train.make_epochs_fn`), ``compare`` (that loop ``vmap``-ed over runs) and the
continual-learning runs of :mod:`nnjax.brain` (``vmap``-ed over seeds).
"""

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.train.history import History
from nnjax.train.placement import Placement


class StopFlag:
    """A request to stop a run between chunks; ``reason`` is None until :meth:`request`.

    Setting it is one attribute assignment, safe from a signal handler.
    """

    def __init__(self):
        self.reason: str | None = None

    def request(self, reason: str = "stop requested") -> None:
        """Stop after the running chunk (the first reason given is kept)."""
        if self.reason is None:
            self.reason = reason

    @property
    def requested(self) -> bool:
        return self.reason is not None


def check_stop(stop, where: str) -> None:
    """``stop`` is None or a StopFlag, else a ValueError naming ``where``."""
    if stop is not None and not isinstance(stop, StopFlag):
        raise ValueError(
            f"{where}: stop must be a StopFlag (nnjax.train.StopFlag(), or stop_on_signals()'s) "
            f"or None, got {stop!r}"
        )


class ChunkReport(NamedTuple):
    """What a hook sees after a chunk: indices ``begin .. end - 1`` of a run to ``total``;
    ``carry`` after the chunk (device arrays); ``outputs`` this chunk's outputs and
    ``history`` every chunk's so far (a :class:`~nnjax.train.history.History`, resumed
    prefix first), as NumPy; ``seconds``
    its run time; ``stopping`` the stop reason when the run ends after this chunk early."""

    begin: int
    end: int
    total: int
    carry: Any
    outputs: Any
    history: History | Sequence
    seconds: float
    stopping: str | None
    axis: int

    @property
    def final(self) -> bool:
        """True after the last chunk the run will execute (the end, or a stop)."""
        return self.end >= self.total or self.stopping is not None

    def outputs_so_far(self):
        """Every chunk's outputs concatenated along ``axis`` (read-only NumPy views, joined as
        the chunks came: reading them after every chunk costs no more than the chunk); a
        report built by hand may hold a plain list of chunks, joined here."""
        if isinstance(self.history, History):
            return self.history.joined()
        return concat(self.history, self.axis)


class Driven(NamedTuple):
    """What :func:`drive` returns: the final ``carry``, all ``outputs`` (concatenated, None if
    nothing ran or was given), ``compile_time`` and ``run_time`` in seconds (apart), ``done``
    the index the run reached and ``stopped`` the stop reason (None when it ran to the end)."""

    carry: Any
    outputs: Any
    compile_time: float
    run_time: float
    done: int
    stopped: str | None


class FixedChunks:
    """Every chunk ``size`` indices long (the last one shorter): one compile, or two."""

    def __init__(self, size: int):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"chunk size must be a positive int, got {size!r}")
        self.size = size

    def __call__(self, done: int, last_seconds: float | None) -> int:
        return self.size


class BoundedChunks:
    """Chunks of at most ``size`` indices that take at most ``max_seconds`` each: a chunk that
    ran longer cuts the size to its largest divisor up to half of it (down to 1: 8 -> 4 -> 2,
    6 -> 3 -> 1, 5 -> 1), and each size compiles once. Bounds the latency of a stop request
    (a signal is served after the running chunk). Each size divides the one before, so chunks
    still end on every multiple of ``size``: ``fit`` writes its checkpoints there
    (``checkpoint_every`` is a multiple of ``epochs_per_call``); halving 5 to 2 made them
    land after epochs 5, 11, 17."""

    def __init__(self, size: int, max_seconds: float):
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
        self.size, self.max_seconds = FixedChunks(size).size, float(max_seconds)

    def __call__(self, done: int, last_seconds: float | None) -> int:
        while last_seconds is not None and last_seconds > self.max_seconds and self.size > 1:
            smaller = max(d for d in range(1, self.size // 2 + 1) if self.size % d == 0)
            last_seconds *= smaller / self.size  # the time a chunk of the new size would take
            self.size = smaller
        return self.size


class HostProgram:
    """A program whose loop runs on the host, calling compiled pieces (e.g. one optimizer step
    per call: :class:`nnjax.train.stepped.SteppedLoop`), instead of one pure function that
    :class:`Program` jits whole. ``compile(carry, indices, args)`` compiles the pieces (timed
    as compile time) and returns ``run(carry, indices, *args) -> (carry, outputs)``."""

    def compile(self, carry, indices, args) -> Callable:
        raise NotImplementedError


class Program:
    """A driver program jitted once and compiled once per chunk length (``compile_time``: the
    seconds spent compiling, summed). Pass one to several :func:`drive` calls with the same
    shapes to compile it only once. A :class:`HostProgram` compiles its own pieces."""

    def __init__(
        self,
        program: Callable | HostProgram,
        placement: Placement | None = None,
        donate: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        store=None,
    ):
        placement = placement or Placement()
        if isinstance(program, HostProgram):
            self.host, self.jitted = program, None
        else:
            self.host = None
            self.jitted = placement.jit(program, donate_argnums=(0,) if donate else ())
        self.program, self.placement = program, placement
        self.by_length: dict[int, Any] = {}
        self.clock, self.compile_time = clock, 0.0
        self.store, self.donate = store, donate

    def compiled(self, carry, indices, args):
        """The executable for chunks of ``len(indices)``, compiled on first use, or loaded
        from ``store`` (an :class:`~nnjax.train.executables.ExecutableStore`) when given."""
        n = int(indices.shape[0])
        if n not in self.by_length:
            t0 = self.clock()
            if self.host is not None:  # compiles its own pieces, never stored
                self.by_length[n] = self.host.compile(carry, indices, args)
                self.compile_time += self.clock() - t0
                return self.by_length[n]
            call = (carry, indices, *args)
            tag = f"donate={self.donate}"
            if self.store is None or through_jit():  # through_jit: the store is skipped
                found = ahead_of_time(self.jitted, *call)
            else:
                found = self.store.load(call, tag)
                if found is None:
                    found = self.store.compile(lambda name: self._lowered(name, call), call, tag)
            self.by_length[n] = found
            self.compile_time += self.clock() - t0
        return self.by_length[n]

    def _lowered(self, name: str, call: tuple):
        """The program lowered for ``call`` as a module named ``name`` (the name keys JAX's
        persistent cache: :meth:`nnjax.train.executables.ExecutableStore.compile`)."""
        program = self.program

        def named(*a):
            return program(*a)

        named.__name__ = named.__qualname__ = name
        donate = (0,) if self.donate else ()
        return self.placement.jit(named, donate_argnums=donate).lower(*call)


def eager() -> bool:
    """True under ``jax.disable_jit()`` (or ``JAX_DISABLE_JIT=1``): jitted functions then run
    op by op in Python, and JAX refuses to lower them ahead of time."""
    return bool(jax.config.jax_disable_jit)


def through_jit() -> bool:
    """True where a program must be called through ``jax.jit`` itself, not compiled ahead of
    time: under :func:`eager`, and under ``jax_debug_nans`` / ``jax_debug_infs``, where only
    jit's own call re-runs a program that output a nan (inf) and raises ``FloatingPointError``
    (an ahead-of-time executable raised JAX's private ``InternalFloatingPointError``)."""
    return eager() or bool(jax.config.jax_debug_nans or jax.config.jax_debug_infs)


def ahead_of_time(jitted: Callable, *args) -> Callable:
    """``jitted.lower(*args).compile()``, or ``jitted`` itself where :func:`through_jit`:
    under ``jax.disable_jit()`` it runs op by op (a breakpoint or ``print`` in a loss or layer
    then stops or prints at every step: the debugging mode ``disable_jit`` is for), under
    ``jax_debug_nans`` jit finds the first op that made a nan."""
    return jitted if through_jit() else jitted.lower(*args).compile()


def concat(history: Sequence, axis: int = 0):
    """The chunks' output pytrees joined along ``axis`` (None for no chunks)."""
    return History(axis, history).copy()


def drive(
    program: Callable | HostProgram | Program,
    carry: Any,
    args: tuple = (),
    *,
    total: int,
    start: int = 0,
    chunks: Callable[[int, float | None], int] | None = None,
    hooks: Sequence[Callable[[ChunkReport], None]] = (),
    stop: StopFlag | None = None,
    placement: Placement | None = None,
    history: Sequence = (),
    axis: int = 0,
    donate: bool = False,
    clock: Callable[[], float] = time.perf_counter,
    store=None,
) -> Driven:
    """Run ``program(carry, indices, *args)`` over ``start .. total - 1`` (module docstring).

    ``chunks(done, last_chunk_seconds) -> size`` (default: one chunk); ``placement`` puts
    the indices where the program reads them and compiles (default: one device);
    ``history``: outputs of earlier chunks (a resumed run's), kept first; ``donate``: let the
    program reuse the carry's buffers (the ``carry`` passed in is consumed). ``program`` may
    be a :class:`Program` (then ``placement``, ``donate`` and ``store`` are its own);
    ``store``: compiled programs kept on disk (:mod:`nnjax.train.executables`).
    """
    placement = placement or Placement()
    chunks = chunks or FixedChunks(max(total - start, 1))
    stop = stop or StopFlag()
    if isinstance(program, Program):
        run = program
    else:
        run = Program(program, placement, donate, clock, store)
    compiled_before = run.compile_time
    history, done, last, run_time = History(axis, history), start, None, 0.0
    while done < total and not stop.requested:
        end = min(done + chunks(done, last), total)
        indices = placement.put(jnp.arange(done, end))
        compiled = run.compiled(carry, indices, args)
        t0 = clock()
        carry, outputs = compiled(carry, indices, *args)
        outputs = jax.tree.map(np.asarray, outputs)  # waits for the chunk
        last = clock() - t0
        run_time += last
        history.append(outputs)
        report = ChunkReport(done, end, total, carry, outputs, history, last, stop.reason, axis)
        _call_hooks(hooks, report, stop)
        done = end
    compile_time = run.compile_time - compiled_before
    return Driven(carry, history.copy(), compile_time, run_time, done, stop.reason)


def _call_hooks(hooks, report: ChunkReport, stop: StopFlag) -> None:
    for hook in hooks:
        hook(report)
    if stop.requested and report.stopping is None:  # requested while the hooks ran
        report = report._replace(stopping=stop.reason)
        for hook in hooks:
            hook(report)
