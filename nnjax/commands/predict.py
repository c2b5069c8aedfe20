"""``nnjax predict MODEL --data FILE``: a saved model's predictions on a data file.

MODEL is a folder written by ``nnjax train --out`` or ``nnjax.save``. The file is read as
:mod:`nnjax.inputs` says (columns matched by name to the training columns; the label column
optional) and standardised with the saved statistics; the predictions are the label names
of ``nnjax.load(MODEL).predict(X)``, exactly. Output: CSV, one row per example, columns
``row`` (the CSV line, or the 0-based index for arrays), ``prediction``, ``label`` when the
file has labels, and with ``--proba`` one ``p_<label>`` column per class (probabilities as
Python's shortest round-trip repr). To ``--out FILE`` (atomically; into a device or a
pipe such as /dev/stdout directly, never replacing it), else to stdout. An existing
``--out`` file is replaced only when it is empty or holds earlier predictions (its first
line ``row,prediction...``), else with ``--overwrite``; its folder must exist. When the
labels are present the accuracy is printed (to stderr when the CSV may go to stdout).

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
        "--out",
        metavar="FILE",
        help="write the predictions here (default: stdout) as CSV with a header row and one "
        "row per example: row (the CSV line, or the 0-based index of an .npy/.npz row), "
        "prediction (the label name), label (when the data has labels), and with --proba "
        "p_<label> per class; an existing file is replaced only when it holds earlier "
        "predictions (or is empty), else give --overwrite",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace an existing file that holds something other than predictions",
    )
    p.add_argument(
        "--proba",
        action="store_true",
        help="add a column p_<label> per class: its probability (softmax of the logits; for "
        "one output, [1 - q, q] with q its sigmoid, or the output itself for "
        "binary_cross_entropy), written in full precision",
    )


def check(args) -> None:
    """The saved model's model.json and the data file, read and matched (NumPy only)."""
    from nnjax import datafile, saved
    from nnjax.commands import options as o

    if not args.model.strip():  # '' read as the current folder's name: ": no saved model"
        raise ValueError(
            f"MODEL (the saved model's folder) takes a folder path, got {o.blank_text(args.model)}"
        )
    for option, what in (("data", "a file path"), ("labels", "a file path"), ("out", "a file path"),
                         ("target", "a column name")):  # fmt: skip
        error = o.blank_out_error(getattr(args, option, None), f"--{option}", what)
        if error is not None:  # '' was ": unknown data format" or "--out : exists"
            raise error
    meta = saved.read_meta(args.model)
    # a folder, a pipe or a missing file, as train names it (exit 3): the reader's format
    # check came first and called a folder "unknown data format '(no extension)'" (exit 2)
    datafile.check_files(args.data, args.labels)
    if args.out is not None:
        _check_out(args)
    elif getattr(args, "overwrite", False):
        raise ValueError("--overwrite lets --out replace a file: give it with --out")
    _match_inputs(args, meta)


def _match_inputs(args, meta: dict) -> None:
    """The data file read for the model ``meta`` describes (its columns, in its training
    order; its labels, as indices of its label names): ``args._inputs``, and ``args._meta``."""
    from nnjax.inputs import read_inputs

    shape = meta["model"]["input_shape"]
    if len(shape) != 2:
        raise ValueError(
            f"{args.model}: the model takes inputs of shape {tuple(shape)}; nnjax predict reads "
            "flat feature rows (use nnjax.load in Python)"
        )
    if args.proba and meta["loss"] == "mse":
        raise ValueError(f"--proba: {args.model} was trained with mse; it gives no probabilities")
    args._meta = meta
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
    import errno

    from nnjax import saved
    from nnjax._host import file_owner
    from nnjax.commands.train_safety import OUT_FILES, not_replaceable
    from nnjax.errors import PathError
    from nnjax.preflight import NotWritableError

    if os.path.isdir(args.out):  # a path of the wrong kind: exit 3, as --data FOLDER is
        raise PathError(
            f"--out {args.out}: is a folder; give a file name (e.g. preds.csv)",
            args.out,
            errno.EISDIR,
        )
    args._out_stream = _is_stream(args.out)
    if args._out_stream:  # /dev/stdout, a pipe: written into, never replaced by a file
        return
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
    _check_out_folder(args.out, out)
    if not_replaceable(os.path.dirname(out), [os.path.basename(out)]):
        raise NotWritableError(
            f"--out {args.out}: belongs to {file_owner(out)}, and in a folder with the sticky bit "
            "(+t) only its owner may replace it: give another file name",
            args.out,
            errno.EPERM,
        )
    if not getattr(args, "overwrite", False) and not _replaceable(out):
        raise ValueError(
            f"--out {args.out}: exists and holds something other than nnjax predictions; "
            "add --overwrite to replace it, or give another file name"
        )


PREDICTIONS_HEADER = "row,prediction"  # how a file of predictions starts


def _is_stream(path) -> bool:
    """``path`` (followed through symbolic links) exists and is no regular file: a device
    (/dev/stdout, /dev/null), a pipe or a socket. Replacing it atomically would put a
    regular file in its place (root's /dev/full became one) and the reader of a pipe
    would wait forever."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _check_out_folder(given: str, out: str) -> None:
    """The folder ``--out`` goes into exists and takes files, checked before JAX starts (a
    typo would otherwise fail after the predictions are computed)."""
    import errno

    from nnjax import preflight
    from nnjax.errors import PathError

    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        raise PathError(f"--out {given}: no folder {folder} to write it in", given, errno.ENOENT)
    preflight.check_writable(folder, f"--out {given}: the folder")


def _replaceable(out: str) -> bool:
    """``out`` is missing, empty, or a file of predictions (written by an earlier
    ``nnjax predict``: its header row is ``row,prediction``, then ``label`` and ``p_<label>``
    columns only): replacing it loses nothing the user made. A header that merely starts
    with those characters (``row,prediction_by_hand,notes``) is the user's own file."""
    import csv

    try:
        with open(out, "rb") as f:
            head = f.read(1 << 16)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not head:
        return True
    line = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    try:
        fields = next(csv.reader([line.splitlines()[0] if line.strip() else ""]), [])
    except csv.Error:
        return False
    written = fields[:2] == PREDICTIONS_HEADER.split(",")
    return written and all(f == "label" or f.startswith("p_") for f in fields[2:])


def _write_out(args, text: str) -> None:
    """The predictions into ``--out``: atomically for a regular file (the target of a
    symbolic link replaced, the link kept), straight into a device or a pipe."""
    from nnjax.io import atomic_write_text

    if not getattr(args, "_out_stream", False):
        atomic_write_text(os.path.realpath(args.out), text)
        return
    try:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:  # /dev/full: ENOSPC at the flush
        raise OSError(e.errno, e.strerror, args.out) from None


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
    from nnjax.predictor import NonFiniteRows

    pred = nnjax.load(args.model)
    if pred.meta != args._meta:  # a run saved another model there since check read it:
        _match_inputs(args, pred.meta)  # the columns and labels are matched to this one
    inputs = args._inputs
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
        _write_out(args, text)
    streamed = args.out is None or getattr(args, "_out_stream", False)  # maybe stdout
    report = sys.stderr if streamed else sys.stdout
    n = len(inputs.X)
    done = f"{n} predictions" + (f" written to {args.out}" if args.out else "")
    if inputs.y is not None and n:
        right = int(np.sum(pred.classes_of(z) == inputs.y))
        done += f"; accuracy {right / n:.4f} ({right}/{n})"
    print(done, file=report)
    return 0
