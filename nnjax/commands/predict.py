"""``nnjax predict MODEL --data FILE``: a saved model's predictions on a data file.

MODEL is a folder written by ``nnjax train --out`` or ``nnjax.save``. The file is read as
:mod:`nnjax.inputs` says (columns matched by name to the training columns; the label column
optional) and standardised with the saved statistics; the predictions are the label names
of ``nnjax.load(MODEL).predict(X)``, exactly. Output: CSV, one row per example, columns
``row`` (the CSV line, or the 0-based index for arrays), ``prediction``, ``label`` when the
file has labels, and with ``--proba`` one ``p_<label>`` column per class (probabilities as
Python's shortest round-trip repr). To ``--out FILE`` (atomically), else to stdout. When
the labels are present the accuracy is printed (to stderr when the CSV goes to stdout).

The saved model's description and the data file are read and checked before JAX starts.
"""

import os
import sys

HELP = "predict with a saved model (nnjax train --out DIR) on a data file; accuracy if labelled"


def add_arguments(p) -> None:
    p.add_argument(
        "model", metavar="MODEL", help="the saved model's folder (nnjax train --out DIR)"
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        required=True,
        help="the inputs: a .csv file with the training columns (the label column optional), "
        "an .npz file holding X (and y), or an .npy file of features (with --labels) "
        "(required: no default)",
    )
    p.add_argument(
        "--target",
        metavar="COLUMN",
        help="the label column of a .csv file (default: the training one, when present)",
    )
    p.add_argument(
        "--labels", metavar="FILE", help="labels (n,) of an .npy --data file (default: none)"
    )
    p.add_argument(
        "--out", metavar="FILE", help="write the predictions as CSV here (default: stdout)"
    )
    p.add_argument("--proba", action="store_true", help="add a probability column per class")


def check(args) -> None:
    """The saved model's model.json and the data file, read and matched (NumPy only)."""
    from nnjax import saved
    from nnjax.inputs import read_inputs

    meta = saved.read_meta(args.model)
    shape = meta["model"]["input_shape"]
    if len(shape) != 2:
        raise ValueError(
            f"{args.model}: the model takes inputs of shape {tuple(shape)}; nnjax predict reads "
            "flat feature rows (use nnjax.load in Python)"
        )
    if args.out is not None:
        _check_out(args)
    if args.proba and meta["loss"] == "mse":
        raise ValueError(f"--proba: {args.model} was trained with mse; it gives no probabilities")
    args._inputs = read_inputs(
        args.data,
        n_features=int(shape[1]),
        feature_names=meta.get("feature_names"),
        label_names=meta["label_names"],
        target=args.target,
        trained_target=meta.get("target"),
        labels=args.labels,
    )


def _check_out(args) -> None:
    """``--out`` is a file name, and not one of the files read or kept: the saved model's own
    files, those ``nnjax train`` wrote beside them (history.json, metrics.csv, the plots) or
    the data (writing there would destroy them)."""
    from nnjax import saved
    from nnjax.commands.train_safety import OUT_FILES

    if os.path.isdir(args.out):
        raise ValueError(f"--out {args.out}: is a folder; give a file name (e.g. preds.csv)")
    out = os.path.realpath(args.out)
    run_files = {saved.MODEL_FILE, saved.PARAMS_FILE, saved.STATE_FILE, *OUT_FILES}
    if os.path.dirname(out) == os.path.realpath(args.model) and os.path.basename(out) in (
        run_files
    ):
        raise ValueError(
            f"--out {args.out}: is a file of the saved run {args.model}; writing the "
            "predictions there would destroy it: give another file name (e.g. preds.csv)"
        )
    for option, path in (("--data", args.data), ("--labels", args.labels)):
        if path is not None and os.path.realpath(path) == out:
            raise ValueError(
                f"--out {args.out}: is the {option} file; writing the predictions there "
                "would destroy it: give another file name (e.g. preds.csv)"
            )


def predictions_csv(pred, inputs, z, proba: bool) -> str:
    """The CSV text: row, prediction[, label][, p_<name>...]."""
    import csv
    import io

    names = pred.names_of(pred.classes_of(z))
    header = ["row", "prediction"] + ["label"] * (inputs.y is not None)
    p = None
    if proba:
        p = pred.proba_of(z)
        header += [f"p_{n}" for n in pred.label_names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i, row in enumerate(inputs.rows):
        line = [row, names[i]]
        if inputs.y is not None:
            line.append(pred.label_names[int(inputs.y[i])])
        if p is not None:
            line += [repr(float(v)) for v in p[i]]
        w.writerow(line)
    return buf.getvalue()


def run(args) -> int:
    import numpy as np

    import nnjax
    from nnjax.io import atomic_write_text
    from nnjax.predictor import NonFiniteRows

    inputs = args._inputs
    pred = nnjax.load(args.model)
    try:
        z = pred(inputs.X)
    except NonFiniteRows as e:  # named as the output names rows: CSV lines or indices
        word = "line" if args.data.lower().endswith(".csv") else "row"
        first = ", ".join(str(inputs.rows[i]) for i in e.rows[:5])
        raise ValueError(
            f"{args.data}: {e.what} in {len(e.rows)} row(s), first at {word} {first}{e.hint}"
        ) from None
    text = predictions_csv(pred, inputs, z, args.proba)
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(args.out, text)
    report = sys.stderr if args.out is None else sys.stdout
    n = len(inputs.X)
    done = f"{n} predictions" + (f" written to {args.out}" if args.out else "")
    if inputs.y is not None and n:
        right = int(np.sum(pred.classes_of(z) == inputs.y))
        done += f"; accuracy {right / n:.4f} ({right}/{n})"
    print(done, file=report)
    return 0
