"""The checkpoints of a ``fit`` run: when to save, what, and how to resume.

Built on the generic, crash-safe :mod:`nnjax.checkpoint` (save / load / unflatten). A
checkpoint after ``e`` epochs holds

    params, opt_state, state (the model state; empty for a stateless model), key,
    step_loss (e * T,) and metrics name -> (e,)

under those names (``['params']...``, ``['state']...``); its metadata holds ``epoch``,
``step`` (optimizer steps done), ``epochs``, ``metric_names`` and :func:`fit_config`.
The data order of epoch e is a function of (key, e) (:mod:`nnjax.train.order`), so key and
epoch are the whole data-order state and a resumed run ends bit-identical to an
uninterrupted one. Multi-host: process 0 writes.
"""

import hashlib
import os
from typing import Any

import jax
import numpy as np

from nnjax import checkpoint
from nnjax.train.driver import ChunkReport
from nnjax.train.loop import EpochOutputs
from nnjax.train.step import Carry

# names of checkpoints written before the one-meaning-per-name rename (array, metric)
_OLD_STEP_LOSS, _OLD_METRICS = "['loss_history']", {"step_loss": "step_loss_mean"}


def fit_config(X, y, batch_size: int | None, dropout: bool) -> dict[str, Any]:
    """What a resumed ``fit`` must share with the run that wrote the checkpoint: the sizes,
    the data itself (a sha256 of X and y) and the batching that fixes the order."""
    h = hashlib.sha256()
    for a in (np.asarray(X), np.asarray(y)):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return {
        "n_examples": int(np.shape(X)[0]),
        "batch_size": batch_size,
        "dropout": bool(dropout),
        "data_sha256": h.hexdigest(),
    }


def _key_data(key) -> np.ndarray:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


class FitCheckpoints:
    """Saving and restoring the checkpoints of one ``fit`` run (module docstring).

    ``directory``: where (None: only restoring from an explicit path); ``every``: epochs
    between saves; the run's ``key``, ``epochs`` and ``steps_per_epoch``; ``config`` from
    :func:`fit_config`. Use :meth:`hook` as a driver hook.
    """

    def __init__(self, directory, every, keep, config, *, key, epochs, steps_per_epoch):
        self.directory = None if directory is None else os.fspath(directory)
        self.every, self.keep, self.config = every, keep, config
        self.key, self.epochs, self.steps_per_epoch = key, epochs, steps_per_epoch
        self.last = 0

    def check_empty(self) -> None:
        """A fresh run refuses a directory that already holds checkpoints."""
        done = checkpoint.steps(self.directory) if self.directory else []
        if done:
            raise ValueError(
                f"fit: {self.directory} already holds checkpoints (newest: epoch {done[-1]}); "
                "pass resume=True to continue that run, or use another checkpoint_dir"
            )

    def due(self, done: int, final: bool) -> bool:
        """Save after epoch ``done``? Every ``every`` epochs, and at the end (or a stop)."""
        if self.directory is None or done <= self.last:
            return False
        return done - self.last >= self.every or done >= self.epochs or final

    def hook(self, report: ChunkReport) -> None:
        """The driver hook: save when due."""
        if self.due(report.end, report.final):
            self.save(report.end, report.carry, report.outputs_so_far())

    def save(self, done: int, carry: Carry, outputs: EpochOutputs) -> None:
        self.last = done
        if jax.process_index() != 0:
            return
        tree = {
            "params": carry.params,
            "opt_state": carry.opt_state,
            "state": carry.state,
            "key": self.key,
            "step_loss": outputs.step_loss.reshape(-1),
            "metrics": outputs.metrics,
        }
        meta = {
            "epoch": done,
            "step": done * self.steps_per_epoch,
            "epochs": self.epochs,
            "metric_names": list(outputs.metrics),
            "config": self.config,
            "jax": jax.__version__,
        }
        checkpoint.save(self.directory, done, tree, metadata=meta, keep=self.keep)

    def restore(self, resume, like: Carry) -> tuple[int, Carry, EpochOutputs] | None:
        """``(epoch, carry, outputs so far)`` from the checkpoint ``resume`` names (True: the
        newest in the directory), in the structure of ``like``; None when there is none."""
        if resume is True:
            if not checkpoint.steps(self.directory):
                return None
            ck = checkpoint.load(self.directory)
        else:
            ck = checkpoint.load(resume)
        self._check_compatible(ck)
        carry = Carry(
            *(
                jax.tree.map(jax.numpy.asarray, checkpoint.unflatten(ck, part, f"['{name}']"))
                for name, part in zip(Carry._fields, like)
            )
        )
        epoch = ck.metadata["epoch"]
        self.last = epoch
        return epoch, carry, _outputs(ck, self.steps_per_epoch)

    def _check_compatible(self, ck: checkpoint.Checkpoint) -> None:
        meta = ck.metadata
        for name, now in self.config.items():
            then = meta.get("config", {}).get(name)
            if then != now:
                if name == "data_sha256":
                    raise ValueError(
                        f"fit: cannot resume from {ck.path}: it was written for other data (X, y)"
                    )
                raise ValueError(
                    f"fit: cannot resume from {ck.path}: it was written for {name}={then!r}, "
                    f"this run has {name}={now!r}"
                )
        if not np.array_equal(ck.arrays.get("['key']"), _key_data(self.key)):
            raise ValueError(f"fit: cannot resume from {ck.path}: it was written with another key")
        if meta["epoch"] > self.epochs:
            raise ValueError(
                f"fit: {ck.path} is at epoch {meta['epoch']}, past epochs={self.epochs}; "
                "ask for at least as many epochs"
            )


def _outputs(ck: checkpoint.Checkpoint, steps_per_epoch: int) -> EpochOutputs:
    """The loss history and metrics of a checkpoint, as the loop's per-epoch outputs."""
    losses = ck.arrays.get("['step_loss']", ck.arrays.get(_OLD_STEP_LOSS))
    metrics = {
        _OLD_METRICS.get(k, k): ck.arrays[f"['metrics']['{k}']"]
        for k in ck.metadata["metric_names"]
    }
    return EpochOutputs(losses.reshape(-1, steps_per_epoch), metrics)
