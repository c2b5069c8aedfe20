"""What ``nnjax train`` prints at the end and writes: ``history.json`` and ``loss.png``
(:func:`write_outputs`), the progress line, ``metrics.csv``, ``accuracy.png``, the saved
model (``model.json``, ``params.npz``; ``nnjax predict DIR`` and ``nnjax.load(DIR)`` read
it) and, with ``--tensorboard DIR``, TensorBoard event files.

``metrics.csv`` has one row per epoch run: ``epoch`` (1-based), ``step_loss_mean``, each
evaluation set's ``{name}_loss`` and ``{name}_accuracy`` (train, and val or test), the
``wall_time_s`` since training started (the first epoch includes compiling) and, with a
``--schedule``, the ``learning_rate`` of the epoch's last step. Every file is written
atomically (:mod:`nnjax.io`), except the event files, which tensorboardX appends to while
the run goes (TensorBoard reads them as they grow). Imports nothing heavy at the top.
"""

import importlib.util
import os
import time

TENSORBOARD_EXTRA = "pip install 'nnjax[tensorboard]'  (the tensorboardX package)"


def log_options(g, o) -> None:
    """The "logs" group."""
    g.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="also write TensorBoard event files here, one scalar per metric and epoch and the "
        f"step losses (needs {TENSORBOARD_EXTRA}; default: none)",
    )


def check_logs(args) -> None:
    """``--tensorboard`` needs its extra installed: refused before JAX starts otherwise."""
    if args.tensorboard is not None and importlib.util.find_spec("tensorboardX") is None:
        raise ValueError(
            f"--tensorboard needs tensorboardX, which is not installed: {TENSORBOARD_EXTRA}"
        )


class EpochLog:
    """Per-epoch bookkeeping during ``fit``: the wall time at the end of each epoch and, with
    ``--tensorboard``, the epoch's scalars written at once (tags ``loss/{name}``,
    ``accuracy/{name}``, ``step_loss_mean``, ``learning_rate``; step = epoch, 1-based)."""

    def __init__(self, tensorboard: str | None = None, clock=time.perf_counter):
        self.clock, self.t0, self.times = clock, clock(), []
        self.writer = None
        if tensorboard is not None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(tensorboard)
        self.learning_rates = None  # set by the caller when a schedule is on

    def epochs_done(self, done: int, metrics: dict) -> None:
        now = self.clock() - self.t0
        first = len(self.times)
        self.times += [now] * (done - first)
        if self.writer is None:
            return
        for e in range(first, done):
            for key, values in metrics.items():
                self.writer.add_scalar(_tag(key), float(values[e]), e + 1)
            if self.learning_rates is not None:
                self.writer.add_scalar("learning_rate", self.learning_rates[e], e + 1)

    def close(self, step_loss=None) -> None:
        """Write the step losses (tag ``step_loss``, step = the step's index) and close."""
        if self.writer is None:
            return
        if step_loss is not None:
            for i, v in enumerate(step_loss):
                self.writer.add_scalar("step_loss", float(v), i)
        self.writer.close()
        self.writer = None


def _tag(key: str) -> str:
    """``val_loss`` -> ``loss/val``; ``step_loss_mean`` stays."""
    for kind in ("loss", "accuracy"):
        if key.endswith(f"_{kind}") and key != "step_loss_mean":
            return f"{kind}/{key[: -len(kind) - 1]}"
    return key


def metrics_rows(metrics: dict, times, learning_rates=None) -> list[dict]:
    """The rows of metrics.csv (see the module docstring)."""
    n = len(next(iter(metrics.values()), ()))
    order = ["step_loss_mean"] + sorted(k for k in metrics if k != "step_loss_mean")
    rows = []
    for e in range(n):
        row = {"epoch": e + 1}
        row.update({k: float(metrics[k][e]) for k in order if k in metrics})
        row["wall_time_s"] = float(times[e]) if e < len(times) else float("nan")
        if learning_rates is not None:
            row["learning_rate"] = float(learning_rates[e])
        rows.append(row)
    return rows


def write_metrics_csv(path, rows: list[dict]) -> None:
    import csv
    import io

    from nnjax.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["epoch"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def write_accuracy_plot(path, metrics: dict, best_epoch=None) -> None:
    from nnjax.io import atomic_save_figure
    from nnjax.plotting import subplots

    fig, ax = subplots(figsize=(6, 4))
    for key, values in metrics.items():
        if key.endswith("_accuracy"):
            epochs = range(1, len(values) + 1)
            ax.plot(epochs, values, "o-", ms=3, label=key.replace("_", " "))
    if best_epoch is not None:
        ax.axvline(best_epoch, color="0.5", ls="--", lw=0.8, label=f"best epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy after each epoch")
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)


def write_more(out: str, model, loss: str, res, ds, config: dict, log: EpochLog) -> list[str]:
    """metrics.csv, accuracy.png and the saved model (model.json, params.npz, state.npz for a
    stateful model: :func:`nnjax.save`, which replaces a model saved before only once all
    its files are on disk) in ``out``; returns the names written."""
    import nnjax

    os.makedirs(out, exist_ok=True)
    rows = metrics_rows(res.metrics, log.times, log.learning_rates)
    write_metrics_csv(os.path.join(out, "metrics.csv"), rows)
    write_accuracy_plot(os.path.join(out, "accuracy.png"), res.metrics, res.best_epoch)
    stateful = bool(getattr(model, "stateful", False))
    nnjax.save(
        out,
        model,
        res.params,
        state=res.state if stateful else None,
        standardizer=ds.standardizer,
        label_names=ds.label_names,
        config=config,
        loss=loss,
        input_shape=(-1, *ds.X_train.shape[1:]),
        feature_names=ds.feature_names,
        target=config.get("target") or ("target" if ds.feature_names is not None else None),
    )
    return ["metrics.csv", "accuracy.png", "model.json"] + ["state.npz"] * stateful


def print_results(res, test: dict, watch: str, wall: float) -> None:
    """The final lines: train, validation (when watched) and test metrics of the params kept
    (the best epoch's with early stopping), and the wall time with compile time apart."""
    m = res.metrics
    e = -1 if res.best_epoch is None else res.best_epoch - 1  # the epoch of the params kept
    val = (
        f"val loss {m['val_loss'][e]:.4f} acc {m['val_accuracy'][e]:.4f} | "
        if watch == "val"
        else ""
    )
    print(
        f"train loss {m['train_loss'][e]:.4f} acc {m['train_accuracy'][e]:.4f} | {val}"
        f"test loss {test['loss']:.4f} acc {test['accuracy']:.4f}"
    )
    print(
        f"wall {wall:.2f} s = compile {res.compile_time:.2f} s + run {res.run_time:.2f} s "
        f"+ host {wall - res.compile_time - res.run_time:.2f} s"
    )
    if res.best_epoch is not None:
        n = len(m["val_loss"])
        print(
            f"early stopping: kept the params of epoch {res.best_epoch} of the {n} run (best "
            f"val loss); the metrics above are theirs"
        )


def write_outputs(out: str, res, config: dict, data: dict | None = None) -> None:
    """history.json (config, per-step loss, per-epoch metrics, the data record of
    :func:`nnjax.commands.train_data.data_record`), loss.png; each written atomically (a
    temporary file, fsync, rename): a failure leaves the old file. The params are written
    by :func:`write_more` with the model that records them."""
    from nnjax.io import atomic_save_figure, atomic_write_json
    from nnjax.plotting import subplots

    os.makedirs(out, exist_ok=True)
    history = {
        "config": {k: v for k, v in config.items() if not k.startswith("_")},
        "step_loss": res.step_loss.tolist(),
        "epochs": {k: v.tolist() for k, v in res.metrics.items()},
        "compile_time_s": res.compile_time,
        "run_time_s": res.run_time,
        "data": data,
    }
    atomic_write_json(os.path.join(out, "history.json"), history)
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(res.step_loss, lw=0.8, label="step loss")
    steps = len(res.step_loss) // len(res.metrics["train_loss"])
    epochs_x = [(i + 1) * steps - 1 for i in range(len(res.metrics["train_loss"]))]
    for name in ("val", "test"):
        if f"{name}_loss" in res.metrics:
            ax.plot(
                epochs_x, res.metrics[f"{name}_loss"], "o-", ms=3, label=f"{name} loss (epoch end)"
            )
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, os.path.join(out, "loss.png"), dpi=120)
