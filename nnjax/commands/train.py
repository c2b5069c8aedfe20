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
MODELS = ("mlp", "logreg")


def add_arguments(p) -> None:
    from nnjax.data import DATASETS
    from nnjax.optim import OPTIMIZERS

    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--model", default="mlp", choices=MODELS)
    p.add_argument("--hidden", default="64,64", help="hidden widths of the MLP, e.g. 64,64")
    p.add_argument("--activation", default="relu")
    p.add_argument("--optimizer", default="adam", choices=tuple(OPTIMIZERS))
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size; 0 means full batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write params.npz, history.json, loss.png here")
    p.add_argument(
        "--devices", type=int, default=None, help="data-parallel over N devices (default: one)"
    )
    p.add_argument("--checkpoint-dir", default=None, help="save checkpoints in this directory")
    p.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints")
    p.add_argument("--keep", type=int, default=3, help="how many checkpoints to keep")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue from the newest checkpoint in --checkpoint-dir (or from CKPT)",
    )


def _parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--hidden takes comma-separated ints like 64,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"--hidden widths must be >= 1, got {text!r}")
    return sizes


def build(args, ds):
    """The model and its loss for ``args.model`` on dataset ``ds``."""
    import nnjax

    if args.model == "logreg":
        if ds.n_classes != 2:
            raise ValueError(
                f"--model logreg needs a binary dataset; {ds.name} has {ds.n_classes} classes"
            )
        return nnjax.logistic_regression(ds.X_train.shape[1]), "binary_cross_entropy_with_logits"
    hidden = _parse_hidden(args.hidden)
    return nnjax.mlp([*hidden, ds.n_classes], args.activation), "softmax_cross_entropy"


def _use_devices(n: int | None):
    """A mesh of ``n`` devices. On the CPU, XLA is first asked for ``n`` virtual devices,
    which only works before JAX starts its backend (so this runs before any computation);
    afterwards, or with ``XLA_FLAGS=--xla_force_host_platform_device_count``, the devices
    already there are used."""
    if n is None:
        return None
    if n < 1:
        raise ValueError(f"--devices must be >= 1, got {n}")
    import jax

    from nnjax.parallel import make_mesh

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and jax.config.jax_num_cpu_devices < n:
        try:  # sizes the CPU backend only: harmless on a GPU machine
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # the backend has started: make_mesh says what is missing
            pass
    return make_mesh(n)


def run(args) -> int:
    import jax
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    import nnjax
    from nnjax.commands.info import info

    mesh = _use_devices(args.devices)
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.resume is True and args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir (or a checkpoint path: --resume CKPT)")
    ds = nnjax.data.load(args.dataset, seed=args.seed)
    model, loss = build(args, ds)
    batch = None if args.batch_size == 0 or args.optimizer == "gd" else args.batch_size
    if batch is not None and batch > len(ds.X_train):
        raise ValueError(f"--batch-size {batch} exceeds the {len(ds.X_train)} training examples")
    _, params = model.init(jax.random.key(args.seed), (-1, ds.X_train.shape[1]))
    dev = info()
    print(f"nnjax {dev['nnjax']} | jax {dev['jax']} | {dev['backend']}: {dev['devices'][0]}")
    print(
        f"{args.model} on {ds.name}: {len(ds.X_train)} train / {len(ds.X_test)} test, "
        f"{args.optimizer} lr={args.lr} batch={batch or 'full'} epochs={args.epochs}"
        + (f" devices={mesh.size}" if mesh is not None else "")
    )
    ckpt_kw = _checkpointing(args)

    t0 = time.perf_counter()
    with Progress(
        TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[status]}")
    ) as bar:
        task = bar.add_task("train", total=args.epochs, status="compiling")

        def on_epochs(done, m):
            bar.update(
                task,
                completed=done,
                status=(f"loss {m['train_loss'][-1]:.4f}  test acc {m['test_accuracy'][-1]:.4f}"),
            )

        res = nnjax.fit(
            model,
            params,
            ds.X_train,
            ds.y_train,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            loss=loss,
            epochs=args.epochs,
            batch_size=batch,
            key=args.seed,
            eval_data={"train": (ds.X_train, ds.y_train), "test": (ds.X_test, ds.y_test)},
            epochs_per_call=1,
            on_epochs=on_epochs,
            mesh=mesh,
            **ckpt_kw,
        )
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
