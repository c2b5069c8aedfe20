"""Driver hooks that stop a ``fit`` run that has gone wrong, before it writes anything from it.

* :func:`check_losses`: every step loss of the chunk is finite;
* :func:`check_metrics`: every evaluation metric of the chunk is finite;
* :func:`check_carry`: params, optimizer state and model state are finite, checked before a
  due checkpoint and after the last chunk (a step's loss is taken before its update, so the
  last update of a chunk can make the params non-finite with every loss finite);
* :class:`DivergenceGuard`: the training loss far above its start for several epochs.

Each raises a :class:`nnjax.errors.DivergenceError` (``NonFiniteLossError`` for nan/inf)
whose ``detail`` says what happened and whose ``last_checkpoint`` names the newest
checkpoint written (or resumed from) before it: the state to go back to.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.errors import DivergenceError, NonFiniteLossError
from nnjax.train.driver import ChunkReport

ADVICE = "lower the learning rate or check the data"


def _raise(cls, detail: str, advice: str, last: str | None):
    where = f"; the newest checkpoint from before it is {last}" if last else ""
    raise cls(f"fit: {detail}; {advice}{where}", detail=detail, last_checkpoint=last)


def check_losses(steps_per_epoch: int, last: Callable[[], str | None]):
    """Raise :class:`NonFiniteLossError` naming the first step whose loss is nan/inf.

    With T = ``steps_per_epoch``, the run's step s (0-based, the index into
    ``FitResult.step_loss``) is batch s mod T + 1 of epoch s // T + 1, both counted from 1
    as every epoch ``fit`` reports: ``at step_loss[8] (batch 3 of 3 in epoch 3)``."""

    def hook(report: ChunkReport) -> None:
        losses = report.outputs.step_loss.reshape(-1)
        if np.isfinite(losses).all():
            return
        i = int(np.flatnonzero(~np.isfinite(losses))[0])
        bad = report.begin * steps_per_epoch + i
        detail = (
            f"the training loss became {losses[i]} at step_loss[{bad}] (batch "
            f"{bad % steps_per_epoch + 1} of {steps_per_epoch} in epoch "
            f"{bad // steps_per_epoch + 1})"
        )
        _raise(NonFiniteLossError, detail, f"{ADVICE} (check_finite=False lets it run on)", last())

    return hook


def check_metrics(last: Callable[[], str | None]):
    """Raise :class:`NonFiniteLossError` naming the first evaluation metric that is nan/inf."""

    def hook(report: ChunkReport) -> None:
        for name, values in report.outputs.metrics.items():
            values = np.asarray(values).reshape(-1)
            if np.isfinite(values).all():
                continue
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            detail = f"{name} became {values[i]} in epoch {report.begin + i + 1}"
            _raise(NonFiniteLossError, detail, ADVICE, last())

    return hook


@jax.jit
def _finite(tree) -> jax.Array:
    leaves = [
        jnp.isfinite(a).all() for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def first_nonfinite(tree) -> str | None:
    """The path of the first float leaf of ``tree`` holding nan/inf, or None."""
    if bool(_finite(tree)):
        return None
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(jnp.isfinite(leaf).all()):
            return jax.tree_util.keystr(path)
    return None


def check_carry(due: Callable[[int, bool], bool], last: Callable[[], str | None]):
    """Raise :class:`NonFiniteLossError` when params, optimizer or model state hold nan/inf
    after a chunk that ends in a checkpoint (``due(end, final)``) or ends the run: no
    checkpoint is ever written from non-finite state, and no run returns it."""

    def hook(report: ChunkReport) -> None:
        checkpoint = due(report.end, report.final)
        if not (report.final or checkpoint):
            return
        carry = report.carry
        tree = {"params": carry.params, "opt_state": carry.opt_state, "state": carry.state}
        bad = first_nonfinite(tree)
        if bad is not None:
            detail = f"{bad} holds nan/inf after epoch {report.end}"
            detail += "; no checkpoint written" if checkpoint else ""
            _raise(NonFiniteLossError, detail, ADVICE, last())

    return hook


class DivergenceGuard(NamedTuple):
    """Stop a run whose training loss stays far above where it started.

    With L_0 the loss of the run's first step (before any update) and L_e the mean step loss
    of epoch e, the run stops with :class:`~nnjax.errors.DivergenceError` after ``epochs``
    consecutive epochs with L_e > ``factor`` * L_0 (or L_e nan). Not applied when L_0 <= 0
    (a loss that can be negative has no scale to compare with).

    Defaults: factor 10, 3 epochs. Measured on the built-in datasets with the CLI's MLP
    (64, 64, relu), every optimizer at 1, 3 and 10 times its default learning rate, 20
    epochs (docs/checkpoints.md): a run that recovers can spend up to 2 epochs in a row above
    10x (xor with rmsprop at 10x, toy with rmsprop at 3x; a full-batch epoch is one step),
    none spends 3; Adam at lr 1e6 stays above it from its first epoch.
    """

    factor: float = 10.0
    epochs: int = 3

    def check(self, where: str = "DivergenceGuard") -> "DivergenceGuard":
        """The guard with ``factor`` a float > 1 and ``epochs`` an int >= 1 (NumPy numbers
        accepted and made Python's); anything else is a ``ValueError`` naming ``where`` and
        the field."""
        f, e = self.factor, self.epochs
        real = isinstance(f, int | float | np.integer | np.floating) and not isinstance(
            f, bool | np.bool_
        )
        if not (real and f > 1.0 and np.isfinite(f)):
            raise ValueError(f"{where}: factor must be a finite number > 1, got {f!r}")
        if isinstance(e, bool | np.bool_) or not isinstance(e, int | np.integer) or e < 1:
            raise ValueError(f"{where}: epochs must be an int >= 1, got {e!r}")
        return DivergenceGuard(float(f), int(e))

    def hook(self, before: Callable[[int], str | None]):
        """The driver hook (raises :class:`~nnjax.errors.DivergenceError`); ``before(e)``
        names the newest checkpoint of epoch <= e (the one to go back to)."""

        def hook(report: ChunkReport) -> None:
            outputs = report.outputs_so_far()
            first = float(np.asarray(outputs.step_loss).reshape(-1)[0])
            means = np.asarray(outputs.metrics["step_loss_mean"]).reshape(-1)
            if not first > 0:
                return
            above = ~(means <= self.factor * first)
            if above.size < self.epochs:
                return
            # the first window of `epochs` consecutive epochs all above (vectorised: the hook
            # runs after every chunk, over every epoch so far)
            window = np.convolve(above.astype(np.int64), np.ones(self.epochs, np.int64), "valid")
            starts = np.flatnonzero(window == self.epochs)
            if starts.size:
                a = int(starts[0])
                e = a + self.epochs - 1
                shown = ", ".join(f"{v:.4g}" for v in means[a : e + 1])
                detail = (
                    f"the training loss diverged: its epoch mean was above {self.factor:g} "
                    f"x its initial value {first:.4g} for {self.epochs} epochs in a row "
                    f"(epochs {a + 1}-{e + 1}: {shown})"
                )
                _raise(DivergenceError, detail, ADVICE, before(a))

        return hook


def as_guard(divergence_guard) -> DivergenceGuard | None:
    """``fit``'s ``divergence_guard``: None/False (off), True (defaults), a
    :class:`DivergenceGuard`, or a ``(factor, epochs)`` pair (checked by
    :meth:`DivergenceGuard.check`; a ``ValueError`` says ``fit: divergence_guard``). NumPy's
    bools count as bools, as ``fit``'s other flags take them (``np.True_`` was refused with
    "must be True, ..., got np.True_")."""
    if divergence_guard is None:
        return None
    if isinstance(divergence_guard, bool | np.bool_):
        return DivergenceGuard() if divergence_guard else None
    if isinstance(divergence_guard, tuple | list) and len(divergence_guard) == 2:
        divergence_guard = DivergenceGuard(*divergence_guard)
    if isinstance(divergence_guard, DivergenceGuard):
        return divergence_guard.check("fit: divergence_guard")
    raise ValueError(
        "fit: divergence_guard must be True, False, a DivergenceGuard or (factor, epochs), "
        f"got {divergence_guard!r}"
    )
