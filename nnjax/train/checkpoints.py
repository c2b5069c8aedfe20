"""The checkpoints of a ``fit`` run: when to save, what, and how to resume.

Built on the generic, crash-safe :mod:`nnjax.checkpoint` (save / load / unflatten). A
checkpoint after ``e`` epochs holds

    params, opt_state, state (the model state; empty for a stateless model), key,
    step_loss (e * T,) and metrics name -> (e,)

under those names (``['params']...``, ``['state']...``); its metadata holds ``epoch``,
``step`` (optimizer steps done), ``epochs``, ``metric_names``, the run's whole
configuration (:func:`nnjax.train.config.run_config`, with its evaluation sets:
:func:`nnjax.train.config.eval_config`) and ``overrides``, the fields changed deliberately
on a resume (``[{"epoch", "field", "old", "new"}]``, oldest first), and ``machine``
(:func:`nnjax.train.checkpoint_record.machine`: processor, versions, devices,
``XLA_FLAGS``, JAX's PRNG settings; how a resume checks them: that module).
The data order of epoch e is a function of (key, e) (:mod:`nnjax.train.order`), so key and
epoch are the whole data-order state and a resumed run ends bit-identical to an
uninterrupted one on the same machine. Resumed on another (XLA compiles for each
processor's instruction set, and its kernels round differently) it goes on with a warning
naming what changed, and equals an uninterrupted run only to float rounding. Under another
PRNG setting (:data:`PRNG_FIELDS`: the same key gives other shuffles) a resume is refused.
A run writes only into an empty ``checkpoint_dir`` or into the folder of the checkpoint it
resumes (:meth:`FitCheckpoints.check_target`): another run's checkpoints are never set
aside or pruned by it. Multi-host: process 0 takes the directory's lock and writes.
"""

import contextlib
import os
import warnings

import jax
import numpy as np

from nnjax import checkpoint, preflight
from nnjax.errors import ResumeError
from nnjax.train import checkpoint_record as record
from nnjax.train.checkpoint_record import PRNG_FIELDS as PRNG_FIELDS
from nnjax.train.checkpoint_record import machine as machine
from nnjax.train.config import check_resume
from nnjax.train.config import fit_config as fit_config
from nnjax.train.driver import ChunkReport
from nnjax.train.loop import EpochOutputs
from nnjax.train.step import Carry


class CheckpointsPresentError(ValueError):
    """A fresh run's ``checkpoint_dir`` holds another run's checkpoints (the command line
    says it in its options' words)."""


class FreeSpaceWarning(UserWarning):
    """The checkpoint directory's file system has less free space than the run needs."""


@contextlib.contextmanager
def locked_directory(directory, estimate: int, n_kept: int):
    """For a run's lifetime: ``directory`` checked for writability, a warning when it has
    less than ``(n_kept + 1) * estimate`` bytes free, and its lock held
    (:func:`nnjax.checkpoint.lock`, which also removes the temporary files of dead writers).
    Only process 0 does this (the only writer); a ``directory`` of None does nothing."""
    if directory is None or jax.process_index() != 0:
        yield None
        return
    if not os.fspath(directory):  # preflight would say "checkpoint_dir  is not writable"
        raise ValueError("fit: checkpoint_dir is an empty path: give a folder, or None")
    preflight.check_writable(directory, "fit: checkpoint_dir")
    short = preflight.check_free_space(directory, (n_kept + 1) * estimate, "fit: checkpoint_dir")
    if short is not None:
        warnings.warn(
            f"{short} ({n_kept} checkpoint{'s' * (n_kept != 1)} kept, one more while saving)",
            FreeSpaceWarning,
            stacklevel=4,
        )
    with checkpoint.lock(directory) as held:
        yield held


def _key_data(key) -> np.ndarray:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


class FitCheckpoints:
    """Saving and restoring the checkpoints of one ``fit`` run (module docstring).

    ``directory``: where (None: only restoring from an explicit path); ``every``: epochs
    between saves; the run's ``key``, ``epochs`` and ``steps_per_epoch``; ``config`` from
    :func:`nnjax.train.config.run_config`; ``override``: the fields a resume may change
    (:func:`nnjax.train.config.check_resume`); ``init_opt_state(params)``: a fresh optimizer
    state, for a resume whose optimizer is overridden. Use :meth:`hook` as a driver hook.
    ``last_path``: the newest checkpoint written or resumed from (None before). ``every``,
    ``keep`` and ``epochs`` may be NumPy ints; ``config`` is checked to be storable (no nan,
    :func:`nnjax.checkpoint.check_metadata`) here, before the run.
    """

    def __init__(
        self, directory, every, keep, config, *, key, epochs, steps_per_epoch,
        override=None, init_opt_state=None,
    ):  # fmt: skip
        self.directory = None if directory is None else os.fspath(directory)
        checkpoint.check_metadata(config, "fit: the run's configuration")
        self.every, self.keep, self.config = int(every), _int_or_none(keep), config
        self.key, self.epochs, self.steps_per_epoch = key, int(epochs), int(steps_per_epoch)
        self.override, self.init_opt_state = override, init_opt_state
        self.last, self.last_path = 0, None
        self.resumed: tuple[int, str] | None = None  # (epoch, path) of the checkpoint resumed
        self.overrides: list[dict] = []  # the record of deliberate changes, kept in metadata

    def check_empty(self) -> None:
        """A fresh run refuses a directory that already holds checkpoints."""
        self.check_target(False)

    def check_target(self, resume=False) -> None:
        """Refuse, before the run, to write where the checkpoints of another run are: a fresh
        run (``resume`` False) needs a ``directory`` without checkpoints, and a resume from a
        checkpoint outside ``directory`` too (its saves would set aside, and its ``keep``
        delete, the checkpoints there). A resume from ``directory``'s own checkpoints
        (``True``, or a path in it) is checked against the one it loads (:meth:`restore`)."""
        done = checkpoint.steps(self.directory) if self.directory else []
        if not done:
            return
        if not resume:
            raise CheckpointsPresentError(
                f"fit: {self.directory} already holds checkpoints (newest: epoch {done[-1]}); "
                "pass resume=True to continue that run, or use another checkpoint_dir"
            )
        if resume is True:
            return
        source = os.fspath(resume)
        folder = source if os.path.isdir(source) else os.path.dirname(source) or "."
        if os.path.realpath(folder) != os.path.realpath(self.directory):
            raise ValueError(
                f"fit: resume={source} is a checkpoint of {folder}, but checkpoint_dir "
                f"{self.directory} holds the checkpoints of another run (epochs "
                f"{', '.join(map(str, done))}), which this run would set aside or delete; "
                f"give an empty checkpoint_dir to continue {source} there, or resume from "
                f"{self.directory}'s own checkpoints (resume=True)"
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
            "overrides": self.overrides,
            "jax": jax.__version__,
            "machine": record.machine(),
        }
        self.last_path = checkpoint.save(self.directory, done, tree, metadata=meta, keep=self.keep)

    def restore(self, resume, like: Carry) -> tuple[int, Carry, EpochOutputs] | None:
        """``(epoch, carry, outputs so far)`` from the checkpoint ``resume`` names (True: the
        newest in the directory), in the structure of ``like``; None when there is none.
        An overridden optimizer (another name) starts from a fresh state, with a warning."""
        if resume is True:
            if not checkpoint.steps(self.directory):
                return None
            ck = checkpoint.load(self.directory)
        else:
            ck = checkpoint.load(resume)
        changes = self._check_compatible(ck)
        epoch = ck.metadata["epoch"]
        fresh_opt = any(c["field"] == "optimizer" for c in changes)  # another optimizer
        parts = {}
        for name, part in zip(Carry._fields, like):
            if name == "opt_state" and fresh_opt:
                continue
            try:
                tree = checkpoint.unflatten(ck, part, record.leaf(name))
            except ValueError as e:
                if name != "opt_state":
                    raise
                raise ValueError(
                    f"{e}: the checkpoint's optimizer state does not fit this run's optimizer "
                    f"({self.config['optimizer']['name']}); resume with the checkpoint's "
                    "optimizer, or override optimizer.name to start its state afresh"
                ) from None
            parts[name] = jax.tree.map(jax.numpy.asarray, tree)
        if fresh_opt:
            parts["opt_state"] = self.init_opt_state(parts["params"])
            record.warn_fresh_optimizer(ck.path, changes)
        record.warn_other_machine(ck.path, ck.metadata.get("machine"))
        self.last, self.last_path, self.resumed = epoch, ck.path, (epoch, ck.path)
        self.overrides = [
            *ck.metadata.get("overrides", []),
            *({"epoch": epoch, **c} for c in changes),
        ]
        return epoch, Carry(**parts), record.outputs(ck, self.steps_per_epoch)

    def newest_before(self, epoch: int) -> str | None:
        """The newest checkpoint of this run at epoch <= ``epoch`` (in the directory, or the
        one resumed from), or None: where to go back to when epoch ``epoch + 1`` went wrong."""
        found = [self.resumed] if self.resumed and self.resumed[0] <= epoch else []
        if self.directory is not None:
            done = [s for s in checkpoint.steps(self.directory) if s <= epoch]
            if done:
                found.append((done[-1], checkpoint.npz_path(self.directory, done[-1])))
        return max(found)[1] if found else None

    def _check_compatible(self, ck: checkpoint.Checkpoint) -> list[dict]:
        """Raise unless the checkpoint belongs to this run (its data, key, configuration up
        to the overridden fields, and epochs); return the overridden changes."""
        meta = ck.metadata
        record.check_fit_record(ck)
        saved = meta.get("config", {})
        if saved.get("data_sha256", self.config["data_sha256"]) != self.config["data_sha256"]:
            raise ResumeError(
                f"fit: cannot resume from {ck.path}: it was written for other data (X, y)",
                path=ck.path,
                argument="X, y",
            )
        # before the key: rbg keys have other data
        record.check_prng(ck.path, meta.get("machine"))
        changes = check_resume(saved, self.config, self.override, source=ck.path)
        self._check_metric_names(ck)
        if not np.array_equal(ck.arrays.get("['key']"), _key_data(self.key)):
            raise ResumeError(
                f"fit: cannot resume from {ck.path}: it was written with another key",
                path=ck.path,
                argument="key",
            )
        if meta["epoch"] > self.epochs:
            raise ResumeError(
                f"fit: {ck.path} is at epoch {meta['epoch']}, past epochs={self.epochs}; "
                "ask for at least as many epochs",
                path=ck.path,
                argument="epochs",
                saved=meta["epoch"],
            )
        return changes

    def _check_metric_names(self, ck: checkpoint.Checkpoint) -> None:
        """The checkpoint's per-epoch metrics are this run's (the same evaluation sets): a
        checkpoint written before the configuration recorded ``eval_names`` is checked here."""
        names = self.config.get("eval_names", [])
        want = {"step_loss_mean", *(f"{n}_{m}" for n in names for m in ("loss", "accuracy"))}
        have = set(record.renamed(ck.metadata["metric_names"]).values())
        if have != want:
            raise ValueError(
                f"fit: cannot resume from {ck.path}: its metrics are {sorted(have)}, this "
                f"run's are {sorted(want)}: eval_data differs (names {names}); resume with "
                "the checkpoint's eval_data, or start a new run"
            )


def _int_or_none(n) -> int | None:
    return None if n is None else int(n)
