"""What ``nnjax train`` prints at the end and writes into ``--out``: ``history.json``,
``loss.png``, ``metrics.csv``, ``accuracy.png`` and the saved model (``model.json``,
``params.npz``, ``state.npz`` for a stateful model; ``nnjax predict DIR`` and
``nnjax.load(DIR)`` read it), all by :func:`write_more`; the progress line; and, with
``--tensorboard DIR``, TensorBoard event files.

``metrics.csv`` has one row per epoch run: ``epoch`` (1-based), ``step_loss_mean``, each
evaluation set's ``{name}_loss`` and ``{name}_accuracy`` (train, and val or test), the
``wall_time_s`` since this process's start of training (the first epoch includes compiling;
nan for epochs run before a resume: the checkpoint does not record their times) and, with a
``--schedule``, the ``learning_rate`` of the epoch's last step. The files in ``--out`` are
rendered in memory, then written as one group (:func:`nnjax.io.atomic_write_files`): a run
that fails or is stopped while writing them leaves the files of a run written there before
all as they were. The event files are not in the group: tensorboardX appends to them while
the run goes (TensorBoard reads them as they grow). Imports nothing heavy at the top.
"""

import contextlib
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
        # the event file is opened at the first scalar: a run that fails before its first
        # epoch (compiling, or --devices refused) leaves none, and no folder made for it
        self.tensorboard, self.writer = tensorboard, None
        self.learning_rates = None  # set by the caller when a schedule is on

    def _open(self):
        """The event file's writer, opened at the first call."""
        if self.writer is None and self.tensorboard is not None:
            from tensorboardX import SummaryWriter

            # unique: tensorboardX names the file by the second and the host alone, so runs
            # started together into one folder (a sweep's seeds) wrote one file, a run lost
            self.writer = SummaryWriter(self.tensorboard, filename_suffix=_unique_suffix())
        return self.writer

    def epochs_done(self, done: int, metrics: dict) -> None:
        """``fit``'s ``on_epochs``: ``done`` epochs in all, a resumed run's included.
        ``nnjax train`` runs one epoch per compiled call, so at the first call every epoch
        before the last ran in an earlier process (a resume): its time is unknown, nan."""
        now = self.clock() - self.t0
        first = len(self.times)
        self.times += _times(first, done, now)
        if first >= done or self._open() is None:
            return
        for e in range(first, done):
            for key, values in metrics.items():
                self.writer.add_scalar(_tag(key), float(values[e]), e + 1)
            if self.learning_rates is not None:
                self.writer.add_scalar("learning_rate", self.learning_rates[e], e + 1)

    def close(self, step_loss=None) -> None:
        """Write the step losses (tag ``step_loss``, step = the step's index) and close."""
        if (self._open() if step_loss is not None else self.writer) is None:
            return
        if step_loss is not None:
            for i, v in enumerate(step_loss):
                self.writer.add_scalar("step_loss", float(v), i)
        self.writer.close()
        self.writer = None


def _unique_suffix() -> str:
    """``.<pid>.<8 hex digits>``: an event file name no other writer of the folder uses."""
    import secrets

    return f".{os.getpid()}.{secrets.token_hex(4)}"


def _times(first: int, done: int, now: float) -> list[float]:
    """The wall times of epochs ``first .. done - 1``, reported at ``now``: all ``now``, but
    at the first report (``first`` 0) only the last epoch ran in this process; the earlier
    ones (a resumed run's) are nan."""
    if first == 0 and done > 1:
        return [float("nan")] * (done - 1) + [now]
    return [now] * (done - first)


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


def metrics_csv(rows: list[dict]) -> bytes:
    """metrics.csv's bytes: a header, then one line per row (floats as ``repr``, exact)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["epoch"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue().encode()


def accuracy_png(metrics: dict, best_epoch=None) -> bytes:
    """accuracy.png's bytes: each set's accuracy after each epoch, the best epoch marked."""
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
    return _png(fig)


def history_json(res, config: dict, data: dict | None = None) -> bytes:
    """history.json's bytes: the config (private ``_`` keys dropped), per-step loss,
    per-epoch metrics, the compile and run times, and the data record of
    :func:`nnjax.commands.train_data.data_record`."""
    import json

    history = {
        "config": {k: v for k, v in config.items() if not k.startswith("_")},
        "step_loss": res.step_loss.tolist(),
        "epochs": {k: v.tolist() for k, v in res.metrics.items()},
        "compile_time_s": res.compile_time,
        "run_time_s": res.run_time,
        "data": data,
    }
    return (json.dumps(history, indent=1) + "\n").encode()


def loss_png(res) -> bytes:
    """loss.png's bytes: the step losses, and the val or test loss at each epoch's end (a
    log scale, linear when a finite loss is 0 or below: matplotlib warned, and hid the points;
    nan and inf, a diverged run's, are gaps on either). A single step is a marker."""
    import numpy as np

    from nnjax.plotting import subplots

    fig, ax = subplots(figsize=(6, 4))
    one = len(res.step_loss) == 1  # a line of one point draws nothing
    ax.plot(res.step_loss, lw=0.8, marker="o" if one else None, ms=3, label="step loss")
    steps = len(res.step_loss) // len(res.metrics["train_loss"])
    epochs_x = [(i + 1) * steps - 1 for i in range(len(res.metrics["train_loss"]))]
    for name in ("val", "test"):
        if f"{name}_loss" in res.metrics:
            ax.plot(
                epochs_x, res.metrics[f"{name}_loss"], "o-", ms=3, label=f"{name} loss (epoch end)"
            )
    losses = [res.step_loss, *(res.metrics.get(f"{n}_loss", []) for n in ("val", "test"))]
    v = np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in losses])
    v = v[np.isfinite(v)]  # a nan (diverged) made it linear too
    positive = v.size > 0 and bool((v > 0).all())  # a loss of exactly 0: linear
    ax.set(xlabel="step", ylabel="loss", yscale="log" if positive else "linear")
    ax.set_title("training loss")
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def _png(fig) -> bytes:
    """A figure rendered as PNG in memory (nothing is written until the whole group is)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


def run_files(
    model, loss: str, res, ds, config: dict, log: EpochLog, data: dict | None = None
) -> list[tuple[str, bytes]]:
    """Every file of the run as ``(name, bytes)``, in the order to write them: history.json,
    loss.png, metrics.csv, accuracy.png, then the saved model's (:func:`nnjax.saved.
    model_files`: params.npz, state.npz for a stateful model, model.json last, the commit).
    ``data``: the data record for history.json. The model is checked first."""
    from nnjax.saved import model_files

    stateful = bool(getattr(model, "stateful", False))
    saved = model_files(
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
    rows = metrics_rows(res.metrics, log.times, log.learning_rates)
    return [
        ("history.json", history_json(res, config, data)),
        ("loss.png", loss_png(res)),
        ("metrics.csv", metrics_csv(rows)),
        ("accuracy.png", accuracy_png(res.metrics, res.best_epoch)),
        *saved,
    ]


def write_out(args, model, loss, res, ds, log, record: dict, before: dict) -> list[str]:
    """:func:`write_more` into ``--out``; a full disk, or files of its names that appeared
    or changed there since ``before`` (:func:`nnjax.rescue.out_files_state` as
    the run began): into a temporary folder instead, named by the error
    (:func:`nnjax.rescue.write_or_rescue`)."""
    from nnjax.commands import train_options
    from nnjax.commands.train_safety import OUT_FILES
    from nnjax.rescue import out_appeared_error, write_or_rescue

    return write_or_rescue(
        args.out,
        lambda folder: write_more(
            folder, model, loss, res, ds, train_options.recorded(args), log, record
        ),
        "train",
        "the trained model and the run's files",
        "; 'nnjax predict {folder} --data FILE' uses it as it is",
        refuse=lambda: out_appeared_error(
            args.out, OUT_FILES, overwrite=getattr(args, "overwrite", False), before=before
        ),
    )


def write_more(
    out: str, model, loss: str, res, ds, config: dict, log: EpochLog, data: dict | None = None
) -> list[str]:
    """Write every file of the run (:func:`run_files`) into ``out`` as one group
    (:func:`nnjax.io.atomic_write_files`): each in full to a temporary file first, then all
    renamed, model.json last. A full disk, an error or a signal before the renames leaves
    the files of a run written there before all as they were, never a mix of two runs.
    A stateless model written over a stateful one removes the old state.npz after the
    commit. Returns the names written, params.npz first (the order ``nnjax train`` prints)."""
    from nnjax.io import atomic_write_files
    from nnjax.saved import _remove_stale

    files = run_files(model, loss, res, ds, config, log, data)
    os.makedirs(out, exist_ok=True)
    atomic_write_files([(os.path.join(out, name), data) for name, data in files])
    names = [name for name, _ in files]
    _remove_stale(out, names)
    return ["params.npz", *(n for n in names if n != "params.npz")]


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


@contextlib.contextmanager
def shown_if_it_fails(*results):
    """:func:`print_results` of ``results`` when the block fails, then the error goes on: a
    run whose files were rescued to a temporary folder (a full disk) still prints its loss
    and accuracy before the one error line. A standard output that fails there is ignored:
    the error of the writing is the one to report."""
    try:
        yield
    except Exception:
        with contextlib.suppress(OSError):
            print_results(*results)
        raise
