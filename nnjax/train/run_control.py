"""How a ``fit`` run is cut into compiled calls, checkpointed, watched and stopped: those
arguments checked and decided (the chunk size, the checkpoint interval, the bound of a
chunk's wall time, the callbacks), as :class:`~nnjax.train.plan.Plan` fields.
"""

import inspect
import numbers
import os

import numpy as np

from nnjax.train.arguments import _check_int
from nnjax.train.driver import check_stop
from nnjax.train.guards import as_guard

STOP_LATENCY_SECONDS = 5.0  # fit's default bound of a chunk's wall time (a stop's latency)


def _run_control(
    epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop, on_epochs,
    override, divergence_guard, max_chunk_seconds,
) -> dict:  # fmt: skip
    """The :class:`~nnjax.train.plan.Plan` fields that say how the run is cut into calls,
    saved, watched and stopped, each checked (:func:`_chunking`, :func:`_check_callbacks`)."""
    every, chunk, keep = _chunking(
        epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop
    )
    if override is not None and not resume:
        raise ValueError("fit: override is for a resume (resume=True or a checkpoint path)")
    _check_callbacks(on_epochs, stop)
    return dict(
        epochs_per_call=chunk,
        checkpoint_dir=None if checkpoint_dir is None else os.fspath(checkpoint_dir),
        checkpoint_every=every,
        keep=keep,
        resume=resume,
        on_epochs=on_epochs,
        stop=stop,
        max_chunk_seconds=_max_chunk_seconds(max_chunk_seconds, checkpoint_dir, stop),
        override=override,
        guard=as_guard(divergence_guard),
    )


def _check_callbacks(on_epochs, stop) -> None:
    """``on_epochs`` a function that takes ``(epochs_done, metrics)`` (its signature bound,
    nothing called), ``stop`` a :class:`~nnjax.train.driver.StopFlag`: checked before the
    run, not after its first chunk."""
    if on_epochs is not None:
        if not callable(on_epochs):
            raise ValueError(
                f"fit: on_epochs must be a function on_epochs(epochs_done, metrics), got "
                f"{on_epochs!r}"
            )
        try:
            signature = inspect.signature(on_epochs)
        except (TypeError, ValueError):  # no signature to read (some builtins): called as is
            signature = None
        try:
            if signature is not None:
                signature.bind(0, {})
        except TypeError as e:
            raise ValueError(
                f"fit: on_epochs is called as on_epochs(epochs_done, metrics), but it takes "
                f"{signature}: {e}"
            ) from None
    check_stop(stop, "fit")


def _max_chunk_seconds(seconds, checkpoint_dir, stop) -> float | None:
    """The bound of a chunk's wall time: ``seconds`` as given; by default
    :data:`STOP_LATENCY_SECONDS` when a checkpoint or a stop request can end a chunk."""
    if seconds is None:
        return STOP_LATENCY_SECONDS if checkpoint_dir is not None or stop is not None else None
    real = isinstance(seconds, numbers.Real) and not isinstance(seconds, bool | np.bool_)
    if not real or not seconds > 0:  # NumPy numbers too; nan is not > 0
        raise ValueError(f"fit: max_chunk_seconds must be a number > 0 or None, got {seconds!r}")
    return float(seconds)


def _chunking(epochs, epochs_per_call, checkpoint_dir, checkpoint_every, keep, resume, stop):
    """``(checkpoint_every, epochs_per_call, keep)``: by default one compiled call for the whole
    run, one per checkpoint interval (default 1 epoch) when checkpointing, and one per epoch
    when a ``stop`` flag may end the run early (a stop is served at the end of a call). A
    checkpoint is written between calls, so ``checkpoint_every`` must be a multiple of
    ``epochs_per_call`` (:func:`_check_aligned`)."""
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
    keep = _check_int("keep", keep, 1)
    epochs_per_call = _check_int("epochs_per_call", epochs_per_call, 1)
    if checkpoint_dir is None and checkpoint_every is not None:
        raise ValueError("fit: checkpoint_every needs a checkpoint_dir")
    if not isinstance(resume, bool | str | os.PathLike):
        raise ValueError(f"fit: resume must be a bool or a checkpoint path, got {resume!r}")
    if resume is True and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs a checkpoint_dir (or pass a checkpoint path)")
    if epochs_per_call is not None:
        chunk = epochs_per_call
        _check_aligned(checkpoint_every, chunk)
    elif stop is not None:
        chunk = 1
    elif checkpoint_dir is not None:
        chunk = checkpoint_every or 1
    else:
        chunk = epochs
    return checkpoint_every or chunk, chunk, keep


def _check_aligned(checkpoint_every: int | None, epochs_per_call: int) -> None:
    """Calls end after epochs c, 2c, ... (c = ``epochs_per_call``) and a checkpoint is
    written at the end of a call, so checkpoints every k epochs need k = m c."""
    k, c = checkpoint_every, epochs_per_call
    if k is None or k % c == 0:
        return
    divisors = ", ".join(str(d) for d in range(1, k + 1) if k % d == 0)
    raise ValueError(
        f"fit: checkpoint_every={k} does not line up with epochs_per_call={c}: checkpoints "
        f"are written between compiled calls, which end every {c} epochs; use a "
        f"checkpoint_every that is a multiple of {c} ({c}, {2 * c}, ...) or an "
        f"epochs_per_call that divides {k} ({divisors})"
    )


def _one_epoch_chunks(epochs_per_call, resume) -> int:
    """Early stopping decides after every epoch, so a compiled chunk is one epoch; a resumed
    run would have lost the best params of its first part, so it is refused."""
    if epochs_per_call not in (None, 1):
        raise ValueError(
            f"fit: early_stopping runs one epoch per compiled call; epochs_per_call="
            f"{epochs_per_call} does not fit with it (leave it out)"
        )
    if resume:
        raise ValueError(
            "fit: early_stopping cannot resume a run: the best params of the interrupted part "
            "are not in its checkpoint (start afresh, or resume without early_stopping)"
        )
    return 1
