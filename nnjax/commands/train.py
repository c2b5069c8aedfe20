"""``nnjax train``: train a model on a built-in dataset or your own file, with a progress bar.

The data step (options, checks, presets, loading) is :mod:`nnjax.commands.train_data`: a
built-in ``--dataset`` or ``--data FILE``, split by ``--data-seed``, standardised with the
training split's statistics; ``--seed`` seeds the init, the batch order and dropout only.
With a validation split (``--val-split``) the per-epoch metrics are the validation set's
and the test set is evaluated once, at the end. Options left out come from the dataset's
preset (:mod:`nnjax.presets`). The model options and the model they build are
:mod:`nnjax.commands.train_model`.

``--devices N`` trains data-parallel over N devices (N virtual CPU devices when JAX runs on
the CPU); ``--checkpoint-dir D`` saves a checkpoint every ``--checkpoint-every`` epochs and
``--resume`` continues from the newest one, so the same command line can be rerun after a
crash and ends with the params of an uninterrupted run.
"""

import os
import sys
import time

from nnjax.commands.train_model import (
    DEFAULT_CHANNELS,
    ONE_WIDTH,
    _check_model_options,
    _model_options,
    build,
    check_memory,
    init_params,
)
from nnjax.commands.train_model import MODEL_OPTIONS as MODEL_OPTIONS
from nnjax.commands.train_model import MODELS as MODELS
from nnjax.commands.train_model import example_shape as example_shape

HELP = "train a model on a built-in dataset or your own data file (default: an MLP on digits)"


def add_arguments(p) -> None:
    """The options, one group each; a new option goes into its group's function and, when it
    depends on other options, into :func:`check` too."""
    from nnjax import presets
    from nnjax.commands import options as o
    from nnjax.commands import train_data, train_options, train_outputs, train_safety

    p.epilog = presets.help_text()
    train_data.data_options(p.add_argument_group("data"), o)
    train_data.seed_options(p.add_argument_group("seeds"), o)
    _model_options(p.add_argument_group("model"), o)
    train_options.optimization_options(p.add_argument_group("optimization"), o)
    train_options.training_options(p.add_argument_group("training"), o)
    _output_options(p.add_argument_group("outputs and checkpoints"), o)
    train_safety.add_guard_options(p.add_argument_group("divergence guard"), o)
    train_outputs.log_options(p.add_argument_group("logs"), o)
    p.add_argument_group("devices").add_argument(
        "--devices",
        type=o.device_count,
        metavar="N",
        default=None,
        help=f"data-parallel over N devices, at most {o.DEVICE_LIMIT} (default: one device, "
        "no mesh)",
    )


def _output_options(g, o) -> None:
    g.add_argument(
        "--out",
        metavar="DIR",
        help="write the saved model (model.json, params.npz; nnjax predict DIR reads it), "
        "history.json, metrics.csv, loss.png, accuracy.png here (default: none); a folder "
        "that already holds a saved model is refused unless --overwrite or --resume",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="let a new run replace the saved model already in --out",
    )
    g.add_argument(
        "--checkpoint-dir", metavar="DIR", help="save checkpoints in this directory (default: none)"
    )
    g.add_argument(
        "--checkpoint-every",
        type=o.positive_int,
        metavar="N",
        default=None,
        help="epochs between checkpoints; needs --checkpoint-dir (default: 1)",
    )
    g.add_argument(
        "--keep",
        type=o.positive_int,
        metavar="N",
        default=None,
        help="checkpoints kept; needs --checkpoint-dir (default: 3)",
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue from the newest checkpoint in --checkpoint-dir (or from CKPT) "
        "(default: start afresh)",
    )
    from nnjax.commands import train_safety

    train_safety.add_options(g, o)


# the options naming a path or a column, which a blank value must not reach: `--tensorboard " "`
# wrote into a folder named by a space, `--data ""` failed as ": no such file", and
# `--target ""` with a built-in dataset was taken for no --target
_PATHS = (
    ("out", "a folder path"),
    ("checkpoint_dir", "a folder path"),
    ("tensorboard", "a folder path"),
    ("data", "a file path"),
    ("labels", "a file path"),
    ("target", "a column name"),
)


def check(args) -> None:
    """Checks across options, before JAX starts; fills in the defaults that depend on others."""
    from nnjax.commands import options as o
    from nnjax.commands import train_resume

    for option, what in _PATHS:  # blank: "--out is not writable: No such file"
        flag = "--" + option.replace("_", "-")
        error = o.blank_out_error(getattr(args, option, None), flag, what)
        if error is not None:
            raise error
    train_resume.check_resume_options(args)  # first: an --override sets the option it names
    _, _, full_batch = o.optimizers()
    _check_model_options(args)
    if args.resume is True and args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir (or a checkpoint path: --resume CKPT)")
    for name, value in (("--checkpoint-every", args.checkpoint_every), ("--keep", args.keep)):
        if value is not None and args.checkpoint_dir is None:  # else nothing would be saved
            raise ValueError(f"{name} needs --checkpoint-dir DIR (where the checkpoints go)")
    args.checkpoint_every = 1 if args.checkpoint_every is None else args.checkpoint_every
    args.keep = 3 if args.keep is None else args.keep
    if args.optimizer in full_batch and args.batch_size not in (None, 0):
        raise ValueError(
            f"--batch-size {args.batch_size}: {args.optimizer} is full-batch gradient descent; "
            "use --optimizer sgd for mini-batches"
        )
    from nnjax.commands import train_data

    train_data.check_data(args)
    train_data.apply_preset(args, full_batch)
    from nnjax.commands import train_options, train_outputs

    train_options.check_training(args)
    train_outputs.check_logs(args)
    if args.model in ONE_WIDTH:
        args.hidden = args.hidden or [ONE_WIDTH[args.model]]
    elif args.model == "cnn":
        args.channels = args.channels or DEFAULT_CHANNELS
    from nnjax.commands.train_safety import check_paths
    from nnjax.preflight import probing

    # now, not once the compilation cache has imported JAX (1.5 s); run checks again, locked
    with probing(args.out, args.checkpoint_dir, getattr(args, "tensorboard", None)):
        check_paths(args)


def _use_devices(n: int | None):
    """A mesh of ``n`` devices, or None; refused at once when fewer devices exist, with the
    message of ``make_mesh`` and ``fit`` (:func:`nnjax.parallel.too_few_devices`).

    On the CPU, XLA is first asked for ``n`` virtual devices, which only works before JAX
    starts its backend (so this runs before any computation); afterwards, or with
    ``XLA_FLAGS=--xla_force_host_platform_device_count``, the devices already there are used."""
    if n is None:
        return None
    import jax

    from nnjax.parallel import make_mesh, too_few_devices

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and jax.config.jax_num_cpu_devices < n:
        try:  # sizes the CPU backend only: harmless on a GPU machine
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # the backend has started: the count below says what is missing
            pass
    devices = jax.devices()
    if n > len(devices):  # the message make_mesh gives, naming the option
        raise too_few_devices("--devices", n, devices)
    return make_mesh(n)


def _prepare(args):
    """The data, the model, its loss, its initial params and fit's batch size (None: full
    batch); the checks that need the data come before the model is built."""
    from nnjax.commands.train_data import load_data

    ds = load_data(args)
    batch = args.batch_size or None
    if batch is not None and batch > len(ds.X_train):
        if not getattr(args, "_batch_from_preset", False):
            raise ValueError(
                f"--batch-size {batch} exceeds the {len(ds.X_train)} training examples of "
                f"{ds.name} (0 = full batch)"
            )
        batch = args.batch_size = None  # a default larger than the data: full batch
    model, loss = build(args, ds)
    check_memory(args, model, (-1, ds.X_train.shape[1]))
    params = init_params(model, args.seed, (-1, ds.X_train.shape[1]))
    return ds, model, loss, params, batch


def _lr_label(args) -> str:
    if args.lr is not None:
        return f"{args.lr:g}"
    from nnjax.commands.options import optimizers

    rates = optimizers()[1]
    return f"{rates[args.optimizer]:g}" if rates and args.optimizer in rates else "default"


def run(args) -> int:
    from contextlib import ExitStack

    from nnjax.commands import train_safety
    from nnjax.preflight import removing_new_folders

    with ExitStack() as folders:  # a failed or stopped run leaves no empty folder it made
        for path in {args.out, args.checkpoint_dir, getattr(args, "tensorboard", None)} - {None}:
            folders.enter_context(removing_new_folders(path))
        train_safety.check_paths(args)  # before the data and JAX: a read-only --out fails now
        with train_safety.out_lock(args) as out:  # one run writes a --out folder at a time
            train_safety.check_saved_model_kept(args)  # again, under the lock: a run that
            # ended since check_paths wrote there (_run's snapshot would take its files)
            return _run(args, out)


def _run(args, out_lock) -> int:
    from nnjax.commands import train_finish, train_options, train_outputs, train_safety, train_space
    from nnjax.commands.info import banner
    from nnjax.commands.train_data import data_record, describe_data, final_test
    from nnjax.rescue import out_files_state

    what = args.data or args.dataset
    # the files of its names --out holds now (checked: none, or this run's, resumed): one
    # that appears or changes while it trains is someone else's, kept as it is
    before = out_files_state(args.out, train_safety.OUT_FILES) if args.out else None
    print(f"preparing {args.model} on {what} (starting JAX)...", file=sys.stderr, flush=True)
    mesh = _use_devices(args.devices)  # first: a missing device fails within seconds
    ds, model, loss, params, batch = _prepare(args)
    train_space.check_out_space(args.out, params)  # a --out too full for the model: now
    print(banner())
    print(
        f"{args.model} on {describe_data(ds)} | {args.optimizer} lr={_lr_label(args)} "
        f"batch={batch or 'full'} epochs={args.epochs}"
        + train_options.describe(args)
        + (f" devices={mesh.size}" if mesh is not None else "")
    )
    watch = "val" if ds.y_val is not None else "test"  # the per-epoch metrics besides train
    fit_kw = dict(
        **train_options.fit_options(args, len(ds.X_train), batch),
        loss=loss,
        epochs=args.epochs,
        batch_size=batch,
        key=args.seed,
        eval_data={
            "train": (ds.X_train, ds.y_train),
            watch: (ds.X_val, ds.y_val) if watch == "val" else (ds.X_test, ds.y_test),
        },
        mesh=mesh,
        **_checkpointing(args),
    )
    log = train_outputs.EpochLog(args.tensorboard)
    log.learning_rates = train_options.learning_rates_per_epoch(
        args, len(ds.X_train), batch, args.epochs
    )
    stop = train_finish.Finishing(args.out)  # fit's stop flag, then the final writes'
    t0 = time.perf_counter()
    with train_safety.stoppable(args, fit_kw, _lr_label(args), stop):  # one-line failures
        res = _train(model, params, ds, args, fit_kw, watch, log)
        stop.begin()  # a signal from here on: the trained model is written first
        log.close(res.step_loss)  # TensorBoard: the step losses, then the file is complete
        wall = time.perf_counter() - t0
        test = final_test(model, res.params, ds, loss, res.metrics)
        shown = (res, test, watch, wall)  # the results lines: after the files, a reader gone
        if args.out:  # (a closed pipe) loses nothing; where the files are rescued, before them
            out_lock.acquire()  # held since the start, or taken now from fit (--out = ckpt dir)
            with train_outputs.shown_if_it_fails(*shown):
                record = data_record(ds, test)
                written = train_outputs.write_out(args, model, loss, res, ds, log, record, before)
        train_outputs.print_results(*shown)
        if args.out:
            print(f"wrote {args.out}/: {', '.join(written)}")  # all at once: never two runs'
    stop.end()
    return 0


def _train(model, params, ds, args, fit_kw: dict, watch: str, log):
    """fit's result; the TensorBoard log is closed when fit fails. A stop in the last chunk
    of a run without early stopping finds training complete: its result is kept to write."""
    from nnjax.train import TrainingStopped
    from nnjax.train.checkpoints import CheckpointsPresentError

    try:
        return _fit_with_progress(
            model, params, ds.X_train, ds.y_train, args.epochs, fit_kw, watch, log
        )
    except TrainingStopped as e:
        if e.epochs_done < args.epochs or "early_stopping" in fit_kw:
            log.close()
            raise
        return e.result
    except BaseException as e:
        log.close()
        if isinstance(e, CheckpointsPresentError) and not args.resume:  # filled since checked
            _checkpointing(args)  # refused in the options' words
        raise


def _fit_with_progress(
    model, params, X, y, epochs: int, fit_kw: dict, watch: str = "test", log=None
):
    """``nnjax.fit`` one epoch per compiled call, with a progress line and an ETA
    (:class:`nnjax.progress.Progress`: "compiling..." at once, then after every epoch). A
    batch that does not split over the mesh's devices is refused first, as fit would, so
    no "compiling" line comes before that refusal."""
    import nnjax
    from nnjax.parallel import check_batch
    from nnjax.progress import Progress

    mesh, batch = fit_kw.get("mesh"), fit_kw.get("batch_size")
    if mesh is not None:
        what = "fit: n_examples (full batch)" if batch is None else "fit: batch_size"
        check_batch(len(X) if batch is None else batch, mesh, what)
    with Progress(epochs, "epoch", unit="epoch") as bar:
        bar.start("compiling (the first epoch includes it)...")

        def on_epochs(done, m):
            if log is not None:
                log.epochs_done(done, m)
            acc = m[f"{watch}_accuracy"][-1]
            bar.update(done, f"loss {m['train_loss'][-1]:.4f}  {watch} acc {acc:.4f}")

        per_call = None if "early_stopping" in fit_kw else 1  # early stopping: 1 already
        return nnjax.fit(
            model, params, X, y, epochs_per_call=per_call, on_epochs=on_epochs, **fit_kw
        )


def _checkpointing(args) -> dict:
    """fit's checkpoint arguments from the command line, saying where a resume starts, and
    its divergence guard and overrides."""
    from nnjax import checkpoint
    from nnjax.commands import train_safety

    safety = train_safety.fit_options(args)
    if args.checkpoint_dir is None and args.resume is False:
        return safety
    if args.resume is True:
        done = checkpoint.steps(args.checkpoint_dir)
        if not done:  # a new run after all: a model saved in --out is kept unless --overwrite
            train_safety.check_saved_model_kept(args, resuming=False)
        print(
            f"resuming from {args.checkpoint_dir} (newest checkpoint: epoch {done[-1]})"
            if done
            else f"no checkpoint in {args.checkpoint_dir} yet: starting afresh"
        )
    elif args.resume:
        print(f"resuming from {args.resume}")
    elif done := checkpoint.steps(args.checkpoint_dir):
        raise ValueError(
            f"--checkpoint-dir {args.checkpoint_dir} already holds the checkpoints of a run "
            f"(newest: epoch {done[-1]}): add --resume to continue it, or choose another "
            "--checkpoint-dir"
        )
    return {
        "checkpoint_dir": args.checkpoint_dir,
        "checkpoint_every": args.checkpoint_every if args.checkpoint_dir else None,
        "keep": args.keep,
        "resume": args.resume,
        **safety,
    }
