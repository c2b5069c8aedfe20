"""``nnjax train``'s safety: overrides on resume, paths checked before the run, signals, and
the one-line messages of a stopped, diverged or mismatched run.

* ``--override`` and ``--resume`` themselves are checked in :mod:`nnjax.commands.train_resume`.
* :func:`check_paths`: ``--out`` and ``--checkpoint-dir`` writable, before JAX starts, and
  a saved model in ``--out`` kept unless ``--overwrite`` (or ``--resume``) says otherwise.
* :func:`out_lock`: one run at a time writes a ``--out`` folder; a second fails at once.
* :func:`stoppable`: SIGTERM, SIGINT, SIGHUP and SIGUSR1 finish the running epoch, write a
  checkpoint (with ``--checkpoint-dir``) and exit 128 + N with the command that resumes;
  divergence and configuration errors are reworded in terms of the command's options.

Imports nothing heavy at the top.
"""

import argparse
import contextlib
import os
import shlex

from nnjax.commands.train_resume import _CHECKPOINT_NAME, BY_FIELD, OVERRIDES

GUARD_FACTOR, GUARD_EPOCHS = 10.0, 3  # nnjax.train.DivergenceGuard's measured defaults


def add_options(g, o) -> None:
    """``--override`` (in the outputs and checkpoints group)."""
    g.add_argument(
        "--override",
        action="append",
        metavar="FIELD=VALUE",
        default=[],
        help="with --resume: change a setting the checkpoint recorded, deliberately; FIELD is "
        f"one of {', '.join(OVERRIDES)} (e.g. --override lr=1e-4; another optimizer starts "
        "its state afresh); repeatable",
    )


def add_guard_options(g, o) -> None:
    """The divergence guard's options."""
    g.add_argument(
        "--no-divergence-guard",
        dest="divergence_guard",
        action="store_false",
        help="let a run go on whose training loss stays above --divergence-factor x its "
        "first step's loss for --divergence-epochs epochs (default: stop it, exit 4)",
    )
    g.add_argument(
        "--divergence-factor",
        type=_factor,
        metavar="K",
        default=GUARD_FACTOR,
        help="the guard's factor over the first step's loss",
    )
    g.add_argument(
        "--divergence-epochs",
        type=o.positive_int,
        metavar="M",
        default=GUARD_EPOCHS,
        help="the guard's consecutive epochs",
    )


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (1.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1, got {text!r}")
    return value


def check_paths(args) -> None:
    """``--out``, ``--checkpoint-dir`` and ``--tensorboard`` can be written (created if
    needed), and no other run holds the checkpoint directory, before JAX starts or the data
    is read: :class:`nnjax.preflight.NotWritableError` or ``DirectoryLockedError`` (exit 3).
    ``fit`` takes the lock for the run itself, later; this is the early answer."""
    from nnjax import preflight
    from nnjax.lock import DirectoryLock

    folders = (
        (args.out, "--out"),
        (args.checkpoint_dir, "--checkpoint-dir"),
        (getattr(args, "tensorboard", None), "--tensorboard"),
    )
    for path, what in folders:
        if path is not None:
            preflight.check_writable(path, what)
    _check_inputs_outside_out(args)
    check_saved_model_kept(args)
    _check_replaceable(args.out)
    if args.checkpoint_dir is not None:
        DirectoryLock(args.checkpoint_dir, heartbeat=None).acquire().release()


# every file nnjax train writes into --out (a test keeps the list whole)
OUT_FILES = ("params.npz", "state.npz", "model.json", "history.json", "metrics.csv", "loss.png",
             "accuracy.png")  # fmt: skip


def _check_inputs_outside_out(args) -> None:
    """The run's --data and --labels files are not among the files it writes into --out."""
    if args.out is None:
        return
    out = os.path.realpath(args.out)
    for option in ("--data", "--labels"):
        path = getattr(args, option[2:], None)
        if path is None:
            continue
        real = os.path.realpath(path)
        if os.path.dirname(real) == out and os.path.basename(real) in OUT_FILES:
            raise ValueError(
                f"{option} {path}: nnjax train writes {os.path.basename(real)} into --out "
                f"{args.out}; it would overwrite the data: choose another --out"
            )


def not_replaceable(folder: str, names) -> list[str]:
    """The files among ``names`` in ``folder`` this user may not replace: in a folder with
    the sticky bit (+t, a shared folder) only a file's owner, the folder's owner or root
    may rename over it (the kernel's EPERM, after the work was done)."""
    import stat

    me = getattr(os, "geteuid", lambda: 0)()
    try:
        st = os.stat(folder)
    except OSError:
        return []
    if not st.st_mode & stat.S_ISVTX or me in (0, st.st_uid):
        return []
    theirs = []
    for name in names:
        try:
            if os.lstat(os.path.join(folder, name)).st_uid != me:
                theirs.append(name)
        except OSError:
            continue
    return theirs


def _check_replaceable(out: str | None) -> None:
    """The files of :data:`OUT_FILES` in ``out`` can be replaced by this user
    (:func:`not_replaceable`): a run writing into a colleague's ``--out`` in a sticky
    folder failed after the training with "history.json: Operation not permitted", its
    model lost; a :class:`nnjax.preflight.NotWritableError` (EPERM) says so before JAX."""
    import errno

    from nnjax._host import file_owner
    from nnjax.preflight import NotWritableError

    theirs = not_replaceable(out, OUT_FILES) if out is not None else []
    if theirs:
        raise NotWritableError(
            f"--out {out}: {', '.join(theirs)} belong to {file_owner(os.path.join(out, theirs[0]))}"
            ", and in a folder with the sticky bit (+t) only their owner may replace them: "
            "choose another --out",
            out,
            errno.EPERM,
        )


MODEL_FILES = ("model.json", "params.npz")  # what nnjax predict reads: the saved model


def check_saved_model_kept(args, resuming: bool | None = None) -> None:
    """A new run does not replace the saved model a finished run left in ``--out``, nor files
    of the names it writes (:data:`OUT_FILES`) that are the user's own: refused
    unless ``--overwrite`` (say so) or ``resuming`` (the same run, going on; default: when
    ``--resume`` is given; a ``--resume`` that finds no checkpoint starts a new run, and the
    caller says so once it knows)."""
    if args.out is None and getattr(args, "overwrite", False):
        raise ValueError("--overwrite replaces the saved model in --out: give it with --out")
    resuming = args.resume is not False if resuming is None else resuming
    if args.out is None or getattr(args, "overwrite", False):
        return
    if resuming:
        return _check_same_run(args)
    import time

    found = [f for f in MODEL_FILES if os.path.isfile(os.path.join(args.out, f))]
    if found:
        mtime = max(os.path.getmtime(os.path.join(args.out, f)) for f in found)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))
        raise ValueError(
            f"--out {args.out} already holds a saved model ({', '.join(found)} of {when}): "
            "add --overwrite to replace it, or choose another --out"
        )
    # no saved model, yet files of the names a run writes: not a run's (it writes them all
    # with its model), so the user's own (--out . in a project folder), which would be lost
    theirs = [f for f in OUT_FILES if os.path.lexists(os.path.join(args.out, f))]
    if theirs:
        raise ValueError(
            f"--out {args.out} already holds {', '.join(theirs)}, which nnjax train would "
            "replace with its own: add --overwrite to replace them, or choose another --out"
        )


def _check_same_run(args) -> None:
    """A resume replaces the saved model in ``--out`` only when the run it continues wrote it:
    its history.json records the checkpoint folder being resumed (``--checkpoint-dir``, or
    ``--resume CKPT``'s). Else (another run's model, or one saved without checkpoints) it was
    replaced without ``--overwrite``."""
    import json

    if not any(os.path.isfile(os.path.join(args.out, f)) for f in MODEL_FILES):
        return
    ours = [args.checkpoint_dir] if args.checkpoint_dir is not None else []
    if isinstance(args.resume, str):
        ours.append(args.resume if os.path.isdir(args.resume) else os.path.dirname(args.resume))
    try:
        with open(os.path.join(args.out, "history.json"), encoding="utf-8") as f:
            config = json.load(f)["config"]
        theirs, source = config["checkpoint_dir"], config.get("resume")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        theirs = source = None
    if isinstance(source, str):  # it continued a checkpoint of that folder: the same run
        named = _CHECKPOINT_NAME.match(os.path.basename(source))  # else its folder
        theirs = theirs if theirs is not None else os.path.dirname(source) if named else source
    if isinstance(theirs, str) and any(_same_dir(theirs, d or ".") for d in ours):
        return
    recorded = (
        f"the checkpoints {theirs}, relative to where that run started"
        if isinstance(theirs, str)
        else "no checkpoints"
    )
    raise ValueError(
        f"--out {args.out} already holds a saved model of another run (its history.json "
        f"records {recorded}; this resume continues {' / '.join(d or '.' for d in ours)}): "
        "add --overwrite to replace it, or choose another --out"
    )


@contextlib.contextmanager
def out_lock(args):
    """Hold ``--out``'s lock (:func:`nnjax.lock.lock_folder`) for the whole run, so that a
    second run into the same folder fails at once (``DirectoryLockedError``, exit 3) instead
    of mixing its files with this run's. A ``--out`` that is the ``--checkpoint-dir`` is
    locked by ``fit`` for the training and here for the writing after it."""
    from nnjax.lock import DirectoryLock, lock_folder

    if args.out is None:
        yield
        return
    shared = args.checkpoint_dir is not None and _same_dir(args.out, args.checkpoint_dir)
    lock = DirectoryLock(args.out) if shared else lock_folder(args.out)
    try:
        yield lock  # a shared folder: ``lock.acquire()`` once fit has released it
    finally:
        lock.release()


def _same_dir(a, b) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def fit_options(args) -> dict:
    """``fit``'s override and divergence guard."""
    from nnjax.train import DivergenceGuard

    guard = DivergenceGuard(args.divergence_factor, args.divergence_epochs)
    return {
        "override": getattr(args, "_override", None) or None,  # set by check_resume_options
        "divergence_guard": guard if args.divergence_guard else None,
    }


def resume_command(args, checkpoint: str | None = None) -> str:
    """The command line that continues this run from its checkpoint directory: the one given,
    its ``--resume`` (and value) replaced by a bare ``--resume`` (``--resume checkpoint``
    where that is given)."""
    argv, out, skip = list(getattr(args, "_argv", None) or []), [], False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token == "--resume":
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            skip = nxt is not None and not nxt.startswith("-")
        elif not token.startswith("--resume="):
            out.append(token)
    return shlex.join(["nnjax", *out, "--resume", *([checkpoint] if checkpoint else [])])


@contextlib.contextmanager
def stoppable(args, fit_kw: dict, lr_label: str, flag=None):
    """Around ``fit``: the stop signals handled (``fit_kw["stop"]``), and the failures
    reworded for the command line: a stop -> :class:`nnjax.errors.Interrupted` (exit
    128 + N) naming the checkpoint and the command that resumes; a divergence -> what to
    change; a configuration mismatch -> the options and the ``--override`` to give.
    ``flag``: the stop flag the signals set (default: a new :class:`nnjax.train.SignalStop`;
    ``nnjax train`` gives its :class:`~nnjax.commands.train_finish.Finishing`, which goes on
    serving the signals after fit returns, inside the block)."""
    from nnjax.errors import (
        BatchSplitError,
        DivergenceError,
        Interrupted,
        NonFiniteLossError,
        ResumeError,
    )
    from nnjax.runconfig import ConfigMismatchError
    from nnjax.train import TrainingStopped, stop_on_signals

    with stop_on_signals(flag=flag) as stop:
        fit_kw["stop"] = stop
        try:
            yield
        except TrainingStopped as e:
            raise Interrupted(stop.signum or 2, _stopped(args, e)) from None
        except DivergenceError as e:
            cls = NonFiniteLossError if isinstance(e, FloatingPointError) else DivergenceError
            raise cls(_diverged(e, lr_label), last_checkpoint=e.last_checkpoint) from None
        except ConfigMismatchError as e:
            raise ValueError(_mismatch(e)) from None
        except ResumeError as e:
            raise ValueError(_not_resumable(args, e)) from None
        except BatchSplitError as e:
            raise ValueError(_split(args, e)) from None
        except OSError as e:  # a full disk at a checkpoint: where the run can go on from
            from nnjax.commands.train_space import checkpoint_left, with_resume

            left = checkpoint_left(args.checkpoint_dir, e)
            if left is None:
                raise
            newest, named = left
            raise with_resume(e, newest, resume_command(args, newest if named else None)) from None


def _stopped(args, e) -> str:
    done = f"stopped after epoch {e.epochs_done} of {args.epochs}"
    if args.checkpoint_dir is None:
        return f"{done}; nothing saved (no --checkpoint-dir): give one to make a run resumable"
    saved = f"checkpoint {e.checkpoint}" if e.checkpoint else "no checkpoint yet"
    return f"{done}; {saved}; resume with: {resume_command(args)}"


def _diverged(e, lr_label: str) -> str:
    off = "" if isinstance(e, FloatingPointError) else " (--no-divergence-guard lets it run on)"
    text = f"{e.detail}; lower --lr (now {lr_label}) or check the data{off}"
    if e.last_checkpoint:
        text += (
            f"; the newest checkpoint from before it is {e.last_checkpoint}: continue from it "
            f"with --resume {e.last_checkpoint} and --override lr=SMALLER in place of --lr"
        )
    return text


def _not_resumable(args, e) -> str:
    """fit's :class:`nnjax.errors.ResumeError` in the options' words."""
    if e.argument == "epochs":
        return (
            f"{e.path} is at epoch {e.saved}, past --epochs {args.epochs}: resume with "
            f"--epochs {e.saved} or more"
        )
    why = {
        "key": f"another --seed (this command: --seed {args.seed}); resume with the run's --seed",
        "X, y": "other training data; resume with the run's --dataset or --data, "
        "--test-split, --val-split and --data-seed",
    }
    return f"cannot resume from {e.path}: it was written with {why[e.argument]}"


def _split(args, e) -> str:
    """fit's :class:`nnjax.errors.BatchSplitError` in the options' words."""
    d = e.devices
    what = (
        f"the full batch ({e.batch_size} training examples)"
        if e.full_batch
        else f"--batch-size {e.batch_size}"
    )
    fix = "" if e.full_batch else f"use a multiple of {d} ({_near(e.batch_size, d)})"
    if e.divisors:
        counts = list(map(str, e.divisors[:4]))
        counts = ", ".join(counts[:-1]) + " or " + counts[-1] if len(counts) > 1 else counts[0]
        fix += f"{', or ' if fix else 'use '}--devices {counts}"
    return f"{what} does not split evenly across --devices {d}: {fix or 'use --devices 1'}"


def _near(b: int, d: int) -> str:
    lower, upper = b // d * d, -(-b // d) * d
    return f"e.g. {lower} or {upper}" if lower else f"e.g. {upper}"


def _mismatch(e) -> str:
    """The fields that differ, the ``--override`` for those an option sets, and the others
    named as unchangeable."""
    shown = "; ".join(f"{f}: {old!r} -> {new!r}" for f, old, new in e.diffs)
    wanted = [f"--override {BY_FIELD[f]}={new}" for f, _, new in e.diffs if f in BY_FIELD]
    fixed = [f for f, _, _ in e.diffs if f not in BY_FIELD]
    where = f" from {e.source}" if e.source else ""
    text = f"cannot resume{where}: the configuration differs (checkpoint -> this command): {shown}"
    if wanted:
        text += ". Rerun with the checkpoint's values, or change them deliberately: " + " ".join(
            wanted
        )
    if fixed:
        text += f". {', '.join(fixed)}: cannot change on a resume (start a new run)"
    return text
