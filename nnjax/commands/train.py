"""``nnjax train``: train a model on a built-in dataset, with a progress bar per epoch.

``--devices N`` trains data-parallel over N devices (N virtual CPU devices when JAX runs on
the CPU); ``--checkpoint-dir D`` saves a checkpoint every ``--checkpoint-every`` epochs and
``--resume`` continues from the newest one, so the same command line can be rerun after a
crash and ends with the params of an uninterrupted run.
"""

import json
import os
import time

HELP = "train a model on a built-in dataset (default: an MLP on digits with Adam)"
MODELS = ("mlp", "logreg", "cnn", "gru", "resmlp")
DEFAULT_HIDDEN = "64,64"
DEFAULT_BATCH_SIZE = 32
# --hidden of the one-width models: resmlp's hidden width, gru's units per direction (the
# MNIST-1D paper's); --channels of the cnn
ONE_WIDTH = {"resmlp": 100, "gru": 6}
DEFAULT_CHANNELS = 25
# the model options and the models they apply to (any other model refuses them)
MODEL_OPTIONS = {
    "--hidden": ("mlp", "resmlp", "gru"),
    "--activation": ("mlp",),
    "--channels": ("cnn",),
}


DEFAULT_ACTIVATION = "relu"


def add_arguments(p) -> None:
    """The options, one group each; a new option goes into its group's function and, when it
    depends on other options, into :func:`check` too."""
    from nnjax.commands import options as o

    _data_options(p.add_argument_group("data"), o)
    _model_options(p.add_argument_group("model"), o)
    _optimization_options(p.add_argument_group("optimization"), o)
    _output_options(p.add_argument_group("outputs and checkpoints"), o)
    p.add_argument_group("devices").add_argument(
        "--devices",
        type=o.positive_int,
        metavar="N",
        default=None,
        help="data-parallel over N devices (default: one device, no mesh)",
    )


def _data_options(g, o) -> None:
    from nnjax.data import DATASETS

    g.add_argument("--dataset", default="digits", choices=DATASETS, help="built-in dataset")
    g.add_argument(
        "--seed",
        type=o.seed,
        metavar="N",
        default=0,
        help="seed of the split, the init and the batch order",
    )


def _model_options(g, o) -> None:
    g.add_argument(
        "--model",
        default="mlp",
        choices=MODELS,
        help="mlp, logreg, or the MNIST-1D paper's cnn, gru, resmlp; cnn and gru read digits "
        "as 8x8 images (gru: 8 rows as time steps), other data as a 1-D signal",
    )
    g.add_argument(
        "--hidden",
        type=o.widths,
        default=None,
        metavar="W,W,...",
        help=f"hidden widths (default: {DEFAULT_HIDDEN}; mlp: W,W,...; one width for resmlp "
        f"(default {ONE_WIDTH['resmlp']}) and gru (units per direction, default "
        f"{ONE_WIDTH['gru']}))",
    )
    g.add_argument(
        "--channels",
        type=o.positive_int,
        default=None,
        metavar="N",
        help=f"channels of each convolution (default: {DEFAULT_CHANNELS}; cnn only)",
    )
    g.add_argument(
        "--activation",
        type=o.hidden_activation,
        default=None,
        metavar="NAME",
        help=o.choices_help(
            f"hidden activation (default: {DEFAULT_ACTIVATION}; mlp only)", o.HIDDEN_ACTIVATIONS
        ),
    )


def _optimization_options(g, o) -> None:
    names, rates, _ = o.optimizers()
    own = ": " + ", ".join(f"{k} {v:g}" for k, v in rates.items()) if rates else ""
    g.add_argument("--optimizer", default="adam", choices=names, help="optimizer")
    g.add_argument(
        "--lr",
        type=o.learning_rate,
        default=None,
        help=f"learning rate (default: the optimizer's own{own})",
    )
    g.add_argument("--epochs", type=o.positive_int, metavar="N", default=20, help="epochs")
    g.add_argument(
        "--batch-size",
        type=o.batch_size,
        metavar="N",
        default=None,
        help=f"mini-batch size; 0 = full batch (default: {DEFAULT_BATCH_SIZE}; full batch, "
        "always, for gd)",
    )


def _output_options(g, o) -> None:
    g.add_argument(
        "--out", metavar="DIR", help="write params.npz, history.json, loss.png here (default: none)"
    )
    g.add_argument(
        "--checkpoint-dir", metavar="DIR", help="save checkpoints in this directory (default: none)"
    )
    g.add_argument(
        "--checkpoint-every",
        type=o.positive_int,
        metavar="N",
        default=1,
        help="epochs between checkpoints",
    )
    g.add_argument("--keep", type=o.positive_int, metavar="N", default=3, help="checkpoints kept")
    g.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue from the newest checkpoint in --checkpoint-dir (or from CKPT) "
        "(default: start afresh)",
    )


def check(args) -> None:
    """Checks across options, before JAX starts; fills in the defaults that depend on others."""
    from nnjax.commands import options as o

    _, _, full_batch = o.optimizers()
    _check_model_options(args)
    if args.resume is True and args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir (or a checkpoint path: --resume CKPT)")
    if args.optimizer in full_batch and args.batch_size not in (None, 0):
        raise ValueError(
            f"--batch-size {args.batch_size}: {args.optimizer} is full-batch gradient descent; "
            "use --optimizer sgd for mini-batches"
        )
    if args.model == "mlp":
        args.hidden = args.hidden or [int(w) for w in DEFAULT_HIDDEN.split(",")]
        args.activation = args.activation or DEFAULT_ACTIVATION
    elif args.model in ONE_WIDTH:
        args.hidden = args.hidden or [ONE_WIDTH[args.model]]
    elif args.model == "cnn":
        args.channels = args.channels or DEFAULT_CHANNELS
    if args.batch_size is None:
        args.batch_size = 0 if args.optimizer in full_batch else DEFAULT_BATCH_SIZE


def _check_model_options(args) -> None:
    """A model option given to a model it does not apply to is refused, in one line."""
    values = {"--hidden": args.hidden, "--activation": args.activation}
    values["--channels"] = args.channels
    given = [f for f, v in values.items() if v and args.model not in MODEL_OPTIONS[f]]
    if given:
        takes = "; ".join(f"{f} is for --model {', '.join(MODEL_OPTIONS[f])}" for f in given)
        raise ValueError(f"{' and '.join(given)}: not for --model {args.model} ({takes})")
    if args.model in ONE_WIDTH and args.hidden and len(args.hidden) != 1:
        widths = ",".join(map(str, args.hidden))
        raise ValueError(f"--hidden {widths}: --model {args.model} takes one width, e.g. 32")


def example_shape(ds, model: str) -> tuple[int, ...]:
    """How ``--model cnn``/``gru`` read one example of ``ds`` (the data arrive flat, (n, F);
    the model reshapes them inside): digits as an 8x8 image, (8, 8, 1) for the cnn and 8 rows
    of 8 pixels as time steps, (8, 8), for the gru; anything else as a 1-D signal (F, 1)."""
    n_features = int(ds.X_train.shape[1])
    if ds.name == "digits" and n_features == 64:
        return (8, 8, 1) if model == "cnn" else (8, 8)
    if model == "cnn" and n_features < 3:
        raise ValueError(
            f"--model cnn needs signals of at least 3 values; {ds.name} has {n_features} "
            "feature(s) (use --model mlp)"
        )
    return (n_features, 1)


def build(args, ds):
    """The model and its loss for ``args.model`` on dataset ``ds``."""
    import nnjax

    k = ds.n_classes
    if args.model == "logreg":
        if k != 2:
            raise ValueError(f"--model logreg needs a binary dataset; {ds.name} has {k} classes")
        return nnjax.logistic_regression(ds.X_train.shape[1]), "binary_cross_entropy_with_logits"
    if args.model == "cnn":
        model = nnjax.cnn(k, input_shape=example_shape(ds, "cnn"), channels=args.channels)
    elif args.model == "gru":
        model = nnjax.gru(k, hidden=args.hidden[0], input_shape=example_shape(ds, "gru"))
    elif args.model == "resmlp":
        model = nnjax.resmlp(k, hidden=args.hidden[0])
    else:
        model = nnjax.mlp([*args.hidden, k], args.activation)
    return model, "softmax_cross_entropy"


def _use_devices(n: int | None):
    """A mesh of ``n`` devices, or None; refused at once when fewer devices exist.

    On the CPU, XLA is first asked for ``n`` virtual devices, which only works before JAX
    starts its backend (so this runs before any computation); afterwards, or with
    ``XLA_FLAGS=--xla_force_host_platform_device_count``, the devices already there are used."""
    if n is None:
        return None
    import jax

    from nnjax.parallel import make_mesh

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and jax.config.jax_num_cpu_devices < n:
        try:  # sizes the CPU backend only: harmless on a GPU machine
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # the backend has started: the count below says what is missing
            pass
    devices = jax.devices()
    if n > len(devices):
        raise ValueError(
            f"--devices {n}: only {len(devices)} {devices[0].platform} device(s) available"
            + (
                f" (XLA_FLAGS={flags!r} fixes the CPU count)"
                if "xla_force_host_platform_device_count" in flags
                else ""
            )
        )
    return make_mesh(n)


def _prepare(args):
    """The dataset, the model, its loss, its initial params and fit's batch size (None: full
    batch); the checks that need the data come before the model is built."""
    import nnjax

    ds = nnjax.data.load(args.dataset, seed=args.seed)
    batch = args.batch_size or None
    if batch is not None and batch > len(ds.X_train):
        raise ValueError(
            f"--batch-size {batch} exceeds the {len(ds.X_train)} training examples of {ds.name}"
            " (0 = full batch)"
        )
    import jax

    model, loss = build(args, ds)
    _, params = model.init(jax.random.key(args.seed), (-1, ds.X_train.shape[1]))
    return ds, model, loss, params, batch


def _lr_label(args) -> str:
    if args.lr is not None:
        return f"{args.lr:g}"
    from nnjax.commands.options import optimizers

    rates = optimizers()[1]
    return f"{rates[args.optimizer]:g}" if rates and args.optimizer in rates else "default"


def run(args) -> int:
    from nnjax.commands.info import info

    mesh = _use_devices(args.devices)  # first: a missing device fails within seconds
    ds, model, loss, params, batch = _prepare(args)
    dev = info()
    print(f"nnjax {dev['nnjax']} | jax {dev['jax']} | {dev['backend']}: {dev['devices'][0]}")
    print(
        f"{args.model} on {ds.name}: {len(ds.X_train)} train / {len(ds.X_test)} test, "
        f"{args.optimizer} lr={_lr_label(args)} batch={batch or 'full'} epochs={args.epochs}"
        + (f" devices={mesh.size}" if mesh is not None else "")
    )
    fit_kw = dict(
        optimizer=args.optimizer,
        learning_rate=args.lr,
        loss=loss,
        epochs=args.epochs,
        batch_size=batch,
        key=args.seed,
        eval_data={"train": (ds.X_train, ds.y_train), "test": (ds.X_test, ds.y_test)},
        mesh=mesh,
        **_checkpointing(args),
    )
    t0 = time.perf_counter()
    res = _fit_with_progress(model, params, ds.X_train, ds.y_train, args.epochs, fit_kw)
    wall = time.perf_counter() - t0
    m = res.metrics
    print(
        f"train loss {m['train_loss'][-1]:.4f} acc {m['train_accuracy'][-1]:.4f} | "
        f"test loss {m['test_loss'][-1]:.4f} acc {m['test_accuracy'][-1]:.4f}"
    )
    print(
        f"wall {wall:.2f} s = compile {res.compile_time:.2f} s + run {res.run_time:.2f} s "
        f"+ host {wall - res.compile_time - res.run_time:.2f} s"
    )
    if args.out:
        write_outputs(args.out, res, vars(args))
        print(f"wrote {args.out}/params.npz, history.json, loss.png")
    return 0


def _fit_with_progress(model, params, X, y, epochs: int, fit_kw: dict):
    """``nnjax.fit`` one epoch per compiled call, with a rich progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    import nnjax

    with Progress(
        TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[status]}")
    ) as bar:
        task = bar.add_task("train", total=epochs, status="compiling")

        def on_epochs(done, m):
            bar.update(
                task,
                completed=done,
                status=(f"loss {m['train_loss'][-1]:.4f}  test acc {m['test_accuracy'][-1]:.4f}"),
            )

        return nnjax.fit(model, params, X, y, epochs_per_call=1, on_epochs=on_epochs, **fit_kw)


def _checkpointing(args) -> dict:
    """fit's checkpoint arguments from the command line, saying where a resume starts."""
    from nnjax import checkpoint

    if args.checkpoint_dir is None and args.resume is False:
        return {}
    if args.resume is True:
        done = checkpoint.steps(args.checkpoint_dir)
        print(
            f"resuming from {args.checkpoint_dir} (newest checkpoint: epoch {done[-1]})"
            if done
            else f"no checkpoint in {args.checkpoint_dir} yet: starting afresh"
        )
    elif args.resume:
        print(f"resuming from {args.resume}")
    return {
        "checkpoint_dir": args.checkpoint_dir,
        "checkpoint_every": args.checkpoint_every if args.checkpoint_dir else None,
        "keep": args.keep,
        "resume": args.resume,
    }


def write_outputs(out: str, res, config: dict) -> None:
    """params.npz, history.json (config, per-step loss, per-epoch metrics), loss.png."""
    from nnjax.io import save_params
    from nnjax.plotting import subplots

    os.makedirs(out, exist_ok=True)
    save_params(os.path.join(out, "params.npz"), res.params)
    history = {
        "config": {k: v for k, v in config.items() if not k.startswith("_")},
        "step_loss": res.step_loss.tolist(),
        "epochs": {k: v.tolist() for k, v in res.metrics.items()},
        "compile_time_s": res.compile_time,
        "run_time_s": res.run_time,
    }
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(history, f, indent=1)
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(res.step_loss, lw=0.8, label="step loss")
    steps = len(res.step_loss) // len(res.metrics["train_loss"])
    epochs_x = [(i + 1) * steps - 1 for i in range(len(res.metrics["train_loss"]))]
    if "test_loss" in res.metrics:
        ax.plot(epochs_x, res.metrics["test_loss"], "o-", ms=3, label="test loss (epoch end)")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=120)
