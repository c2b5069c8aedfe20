"""What a ``fit`` checkpoint records besides its arrays, and how a resume checks it.

A checkpoint's metadata holds ``epoch``, ``metric_names`` (:data:`FIT_RECORD`) and
``machine`` (:func:`machine`); its arrays ``['step_loss']`` (E * T,) and
``['metrics'][name]`` (E,). :func:`check_fit_record` refuses, naming the file, a record
that ``fit`` did not write or that was edited; :func:`check_prng` refuses a resume under
other PRNG settings; :func:`warn_other_machine` warns when the processor, versions or
flags changed; :func:`outputs` turns the record into the loop's per-epoch outputs, under
today's metric names (:func:`renamed`).
"""

import os
import warnings

import jax
import numpy as np

from nnjax import checkpoint
from nnjax.train.loop import EpochOutputs

# names of checkpoints written before the one-meaning-per-name rename (array, metric)
_OLD_STEP_LOSS, _OLD_METRICS = "['loss_history']", {"step_loss": "step_loss_mean"}
# JAX's settings that decide the random bits of a key (machine()): a resume must share them
PRNG_FIELDS = {
    "threefry_partitionable": "jax_threefry_partitionable",
    "prng_impl": "jax_default_prng_impl",
}


def leaf(*names: str) -> str:
    """The checkpoint's name of the leaf at ``tree[names[0]][names[1]]...``, spelled as
    :func:`nnjax.checkpoint.save` spells it (``jax.tree_util.keystr``: any name, quotes too)."""
    return jax.tree_util.keystr(tuple(jax.tree_util.DictKey(n) for n in names))


FIT_RECORD = ("epoch", "metric_names")  # what every checkpoint fit writes holds in its metadata


def check_fit_record(ck: checkpoint.Checkpoint) -> None:
    """Refuse, naming the file, a checkpoint that ``fit`` did not write (one of
    :func:`nnjax.checkpoint.save` called directly, or of another tool): its metadata lacks
    the fields of :data:`FIT_RECORD` or its array ``['step_loss']`` (the loss history)."""
    missing = [k for k in FIT_RECORD if k not in ck.metadata]
    names = (leaf("step_loss"), _OLD_STEP_LOSS)
    if not any(k in ck.arrays for k in names):
        missing.append("the array ['step_loss']")
    if missing:
        raise ValueError(
            f"fit: cannot resume from {ck.path}: it is not a checkpoint of a fit run (it lacks "
            f"{', '.join(map(str, missing))}); resume from a checkpoint that fit wrote, or "
            "load this one with nnjax.checkpoint.restore"
        )
    problem = record_problem(ck)
    if problem:  # a record edited and resealed, or written by another tool
        raise ValueError(
            f"fit: cannot resume from {ck.path}: its metadata's {problem}; resume from "
            "another checkpoint of the run, or start a new run"
        )


def record_problem(ck: checkpoint.Checkpoint) -> str | None:
    """What in a fit checkpoint's metadata is not as fit writes it, or None: ``epoch`` an
    int >= 0 equal to the file's step, ``metric_names`` a list of names whose arrays hold one
    value per epoch done, ``config`` and ``machine`` (when present) dicts."""
    meta = ck.metadata
    epoch, names = meta["epoch"], meta["metric_names"]
    if type(epoch) is not int or epoch < 0 or epoch != ck.step:
        return f"'epoch' {epoch!r} is not the file's step {ck.step}"
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return f"'metric_names' {names!r} is no list of names"
    for field in ("config", "machine"):
        if field in meta and not isinstance(meta[field], dict | None):
            return f"{field!r} is a {type(meta[field]).__name__}, not a dict"
    for name in names:
        values = ck.arrays.get(leaf("metrics", name))
        if values is None or np.shape(values)[:1] != (epoch,):
            got = "missing" if values is None else f"of shape {np.shape(values)}"
            return f"metric {name!r} is {got}, not one value per epoch of its {epoch}"
    return None


def warn_fresh_optimizer(path: str, changes: list[dict]) -> None:
    old, new = next(
        (c["old"]["name"], c["new"]["name"]) for c in changes if c["field"] == "optimizer"
    )
    warnings.warn(
        f"fit: resuming {path} with optimizer {new} instead of {old} (overridden): the {old} "
        f"state is dropped; {new} starts afresh from the checkpoint's params",
        stacklevel=5,
    )


def machine() -> dict:
    """What, besides the checkpoint, decides the numbers a run computes: the processor
    (:func:`nnjax._host.cpu_tag`), jax and jaxlib versions, the devices, ``XLA_FLAGS`` and
    JAX's PRNG settings (:data:`PRNG_FIELDS`: ``jax_threefry_partitionable``,
    ``jax_default_prng_impl``)."""
    import jaxlib

    from nnjax import _host

    flags = os.environ.get("XLA_FLAGS", "").split()
    return {
        "cpu": _host.cpu_tag(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        # the kinds; their number is the run's own setting (fit's devices, --override)
        "devices": sorted({d.device_kind for d in jax.devices()}),
        "xla_flags": " ".join(f for f in flags if "host_platform_device_count" not in f),
        "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "prng_impl": str(jax.config.jax_default_prng_impl),
    }


def check_prng(path: str, saved: dict | None) -> None:
    """Refuse a resume under other PRNG settings than the checkpoint's (the same key would
    draw other shuffles and dropout masks: the run would not be a continuation). A
    checkpoint that did not record them is not checked."""
    now = machine()
    for field, flag in PRNG_FIELDS.items():
        old = (saved or {}).get(field)
        if old is not None and old != now[field]:
            raise ValueError(
                f"fit: cannot resume from {path}: it was written with {flag}={old!r}, this "
                f"process has {now[field]!r}, under which the same key draws other shuffles; "
                f"set jax.config.update({flag!r}, {old!r}) (or the environment variable "
                f"{flag.upper()}) before training to resume it"
            )


def warn_other_machine(path: str, saved: dict | None) -> None:
    """A checkpoint written on another machine resumes, with a warning naming the change:
    the run is then the uninterrupted one's only to float rounding."""
    if saved is None:  # written before nnjax recorded the machine
        return
    now = {k: v for k, v in machine().items() if k not in PRNG_FIELDS}  # _check_prng's
    changed = [f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in now if saved.get(k) != now[k]]
    if changed:
        warnings.warn(
            f"fit: {path} was written on another machine ({'; '.join(changed)}): the run goes "
            "on from it, but equals an uninterrupted run only to float rounding",
            stacklevel=5,
        )


def outputs(ck: checkpoint.Checkpoint, steps_per_epoch: int) -> EpochOutputs:
    """The loss history and metrics of a checkpoint, as the loop's per-epoch outputs."""
    losses = ck.arrays.get(leaf("step_loss"), ck.arrays.get(_OLD_STEP_LOSS))
    epoch = ck.metadata["epoch"]
    if np.size(losses) != epoch * steps_per_epoch:
        raise ValueError(
            f"fit: cannot resume from {ck.path}: its loss history holds {np.size(losses)} "
            f"step losses, not the {epoch * steps_per_epoch} of {epoch} epoch(s) of "
            f"{steps_per_epoch} steps; resume from another checkpoint, or start a new run"
        )
    names = renamed(ck.metadata["metric_names"])
    metrics = {names[k]: ck.arrays[leaf("metrics", k)] for k in names}
    return EpochOutputs(losses.reshape(-1, steps_per_epoch), metrics)


def renamed(names: list[str]) -> dict[str, str]:
    """{a checkpoint's metric name: this nnjax's}: the mean step loss was ``step_loss``, and
    at first ``train_loss`` (cc6d378, whose runs had no evaluation sets; an evaluation set
    named "train" gives ``train_loss`` and ``train_accuracy``)."""
    old = dict(_OLD_METRICS)
    if "train_loss" in names and "train_accuracy" not in names:
        old["train_loss"] = "step_loss_mean"
    return {k: old.get(k, k) for k in names}
