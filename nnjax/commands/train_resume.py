"""``nnjax train --resume`` and ``--override``, checked before JAX starts.

* ``--override FIELD=VALUE`` (with ``--resume``): the deliberate change of a field the
  checkpoint recorded. ``lr``, ``optimizer``, ``activation`` and ``devices`` (or their
  configuration names ``optimizer.learning_rate``, ``optimizer.name``, ``model.activation``)
  set the option and let ``fit`` accept the change (:mod:`nnjax.train.config`).
* ``--resume CKPT``: not blank, existing, a folder holding a checkpoint or a ``ckpt_<epoch>``
  file.

Imports nothing heavy at the top.
"""

import argparse
import errno
import os
import re

# --override name -> (configuration field, the option it sets, its argparse type's name)
OVERRIDES = {
    "lr": ("optimizer.learning_rate", "lr", "learning_rate"),
    "optimizer": ("optimizer.name", "optimizer", None),
    "activation": ("model.activation", "activation", "hidden_activation"),
    "devices": ("devices", "devices", "device_count"),
}
BY_FIELD = {field: name for name, (field, _, _) in OVERRIDES.items()}


def check_resume_options(args) -> None:
    """Before JAX: ``--override`` parsed and applied to the options it names (an option
    given with another value is refused), and a ``--resume CKPT`` that does not exist."""
    from nnjax import runconfig
    from nnjax.commands import options as o

    args._override = {}
    if args.override and args.resume is False:
        raise ValueError("--override changes a resumed run: give it with --resume")
    if isinstance(args.resume, str):
        _check_resume_path(args.resume)
    for item in args.override:  # runconfig's example names a field of the Python API
        field, sep, _ = item.partition("=")
        if not sep or not field.strip():  # "=1" too: runconfig's example is epochs=20
            raise ValueError(f"--override {item}: expected FIELD=VALUE, e.g. --override lr=1e-4")
    try:
        overrides = runconfig.parse_overrides(args.override)
    except ValueError as e:
        raise ValueError(f"--{e}") from None
    for key, text in overrides.items():
        name = BY_FIELD.get(key, key)
        if name not in OVERRIDES:
            valid = ", ".join(f"{n} ({f})" for n, (f, _, _) in OVERRIDES.items())
            raise ValueError(f"--override {key}: no such field here; valid: {valid}")
        field, dest, kind = OVERRIDES[name]
        value = _parse(name, str(text), kind, o)
        given = getattr(args, dest)  # --optimizer has a default: the override wins over it
        if given is not None and given != value and dest != "optimizer":
            raise ValueError(f"--{dest} {given} and --override {name}={text} disagree: give one")
        setattr(args, dest, value)
        args._override[field] = value


def _parse(name: str, text: str, kind: str | None, o):
    if kind is None:  # the optimizer: one of the names
        names = o.optimizers()[0]
        if text not in names:
            raise ValueError(f"--override optimizer={text}: valid: {', '.join(names)}")
        return text
    try:
        return getattr(o, kind)(text)
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"--override {name}={text}: {e}") from None


# a checkpoint's file name (nnjax.checkpoint.record's, which imports JAX)
_CHECKPOINT_NAME = re.compile(r"^ckpt_(\d{8}|[1-9]\d{8,})\.(npz|json)$", re.ASCII)


def _check_resume_path(path: str) -> None:
    """``--resume CKPT``: not blank, existing and readable by this user (another user's
    private folder was "no such checkpoint"), a folder holding a checkpoint (one holding none
    was found only after JAX had started) or a ``ckpt_<epoch>.npz/.json``.
    Blank, it failed as "cannot resume from : no such checkpoint"; another file, with a
    --checkpoint-dir holding checkpoints, as "resume=FILE is a checkpoint of ." (it is none)."""
    from nnjax.commands.options import blank_text

    if not path.strip():
        raise ValueError(
            "--resume takes a checkpoint (a ckpt_<epoch>.npz or a folder of them), or no "
            f"value for the newest in --checkpoint-dir; got {blank_text(path)}"
        )
    try:  # os.path.exists is False too for a path this user may not reach: not "no such"
        os.stat(path)
        readable = os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0))
    except PermissionError:
        readable = False
    except OSError:
        missing = FileNotFoundError(errno.ENOENT, "no such checkpoint", path)
        missing.nnjax_action = "resume from"  # nnjax.errors.describe_os_error's verb
        raise missing from None
    if not readable:  # another user's (a folder on the way, or the checkpoint itself)
        denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        denied.nnjax_action = "resume from"
        raise denied
    if os.path.isdir(path) and not _holds_checkpoint(path):  # was found after JAX started
        empty = FileNotFoundError(errno.ENOENT, "no checkpoint in this folder", path)
        empty.nnjax_action = "resume from"
        raise empty
    if not os.path.isdir(path) and not _CHECKPOINT_NAME.match(os.path.basename(path)):
        raise ValueError(
            f"--resume {path}: not a checkpoint; give a ckpt_<epoch>.npz (or .json) that "
            "--checkpoint-dir wrote, or a folder of them"
        )


def _holds_checkpoint(folder: str) -> bool:
    """Whether ``folder`` holds a committed checkpoint (a ``ckpt_<epoch>.json``, as
    :func:`nnjax.checkpoint.steps` counts them); a folder that cannot be listed is left to
    the resume itself to name."""
    try:
        names = os.listdir(folder)
    except OSError:
        return True
    return any((m := _CHECKPOINT_NAME.match(n)) and m.group(2) == "json" for n in names)
