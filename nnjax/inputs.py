"""A data file read for a trained model (``nnjax predict``): the features in the model's order,
and the labels when the file has them.

The formats are :mod:`nnjax.datafile`'s. A CSV file's columns are matched by name against the
columns the model was trained on (``feature_names`` of the saved model; any order, the
training order is restored); the label column (``target``: the one named on the command
line, else the training one when the file has it) is optional. A column the model does not
know, or one it needs that is missing, is a ``ValueError`` naming them. A model trained on
arrays (no column names) takes a CSV file whose non-label columns are as many as its
features. ``.npz`` files hold ``X`` and optionally ``y``; ``.npy`` files hold X, with the
labels in ``labels``. Labels are the names the model was trained with (``3``, ``"cat"``),
mapped to its classes; an unknown one is an error naming the row. A CSV label column whose
every cell is missing (empty, ``NA``, ...) is read as no labels; one missing among labels is
an error naming its line. Imports NumPy only.
"""

import os
from typing import NamedTuple

import numpy as np

from nnjax import datafile, datafile_labels


class Inputs(NamedTuple):
    """``X`` (n, features) float32 in the model's feature order; ``y`` (n,) class indices of
    the labels, or None; ``rows``: how each example is named in errors and output (CSV
    lines, or 0-based indices)."""

    X: np.ndarray
    y: np.ndarray | None
    rows: list


def read_inputs(
    path, *, n_features: int, feature_names=None, label_names=(), target=None,
    trained_target=None, labels=None,
) -> Inputs:  # fmt: skip
    """Read ``path`` for a model of ``n_features`` inputs (see the module docstring)."""
    ext = datafile.data_format(path)
    datafile.check_files(path, labels)
    if target is not None and ext != ".csv":
        raise ValueError(f"--target names a CSV column; {os.fspath(path)} is {ext}")
    if labels is not None and ext != ".npy":
        raise ValueError(f"--labels is for .npy features; {os.fspath(path)} is {ext}")
    if ext == ".csv":
        return _csv(os.fspath(path), n_features, feature_names, label_names, target, trained_target)
    return _arrays(path, ext, labels, n_features, label_names)


def _csv(where, n_features, feature_names, label_names, target, trained_target) -> Inputs:
    header, rows, lines, head_line = datafile._csv_rows(where, rows_needed=False)  # 0 rows: as .npz
    if target is not None and target not in header:
        raise ValueError(f"{where}: no column {target!r} (--target); columns: {', '.join(header)}")
    if target is None and trained_target in header:
        target = trained_target
    given = [h for h in header if h != target]
    if feature_names is not None:
        check_same_columns(where, given, list(feature_names), header_line=head_line)
        order = list(feature_names)
    else:
        datafile.warn_numeric_header(where, header, head_line)
        if len(given) != n_features:
            # a model trained on arrays or a built-in dataset knows no label column: name it
            label = datafile.DEFAULT_TARGET if datafile.DEFAULT_TARGET in given else given[-1]
            hint = (
                f" (is {label!r} the labels? give --target {label})"
                if len(given) == n_features + 1
                else ""
            )
            raise ValueError(
                f"{where}: {len(given)} feature column{'s' * (len(given) != 1)} "
                f"({datafile._first(given)}), but the model takes {n_features} "
                f"feature{'s' * (n_features != 1)}{hint}"
            )
        order = given
    X = np.empty((len(rows), len(order)), np.float64)
    column = {h: i for i, h in enumerate(header)}  # header.index per name was quadratic
    for j, name in enumerate(order):
        i = column[name]
        X[:, j] = datafile._numeric_column([r[i] for r in rows], lines, f"{where}: column {name!r}")
    X = datafile._to_float32(X, lambda r, c: f"{where}: column {order[c]!r}, line {lines[r]}")
    y = None
    if target is not None:
        t = header.index(target)
        where_t = f"{where}: column {target!r}"
        values = [r[t].strip() for r in rows]
        if _all_missing(values, label_names, where_t, lines):  # a column left empty to fill
            return Inputs(X, None, lines)
        y = _classes(values, lines, label_names, where_t, "line")
    return Inputs(X, y, lines)


def _all_missing(values, label_names, where: str, lines) -> bool:
    """True when every label cell is missing (empty, ``NA``, ...: :data:`MISSING
    <nnjax.datafile_labels.MISSING>`): the file is read as unlabelled. Some missing and some
    not is a ``ValueError`` naming the first missing one's line (a model's own class name
    is never missing)."""
    known = {str(n) for n in label_names}
    missing = [v.lower() in datafile_labels.MISSING and v not in known for v in values]
    if values and all(missing):
        return True
    if any(missing):
        i = missing.index(True)
        raise ValueError(
            f"{where}, line {lines[i]}: missing label {values[i]!r} (leave every label cell "
            "empty, or remove the column, to predict without labels)"
        )
    return False


def check_same_columns(
    where: str, given: list, trained: list, header_line: int | None = None
) -> None:
    """The columns ``given`` are the model's ``trained`` ones, in any order, or a
    ``ValueError`` naming the missing and the unknown ones (and, for a CSV file's header of
    numbers only, on the file's ``header_line``, asking whether its header row is
    missing)."""
    given_set, trained_set = set(given), set(trained)  # linear in the columns
    missing = [c for c in trained if c not in given_set]
    extra = [c for c in given if c not in trained_set]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unknown column(s) {', '.join(map(repr, extra))}")
        raise ValueError(
            f"{where}: columns differ from the model's training data: {'; '.join(parts)} "
            f"(it was trained on {datafile._first(trained)})"
            + (datafile.no_header(given, header_line) if extra and header_line else "")
        )


def _arrays(path, ext, labels, n_features, label_names) -> Inputs:
    where = os.fspath(path)
    if ext == ".npz":
        X, y = datafile._read_npz(where, need_y=False)
    else:
        X, y = datafile._read_npy(where), None
        if labels is not None:
            y = datafile._read_npy(labels)
    X = X[:, None] if X.ndim == 1 else X
    if X.ndim != 2 or X.shape[1] != n_features or X.dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: X has shape {X.shape} and dtype {X.dtype}; the model takes numbers of "
            f"shape (n, {n_features})"
        )
    X = datafile._to_float32(X.astype(np.float64), lambda r, c: f"{where}: X row {r}, column {c}")
    rows = list(range(len(X)))
    if y is not None:  # named where they come from: the .npz's y, or the --labels file
        where_y = f"{where}: y" if labels is None else os.fspath(labels)
        if y.ndim == 2 and y.shape[1] == 1:  # (n, 1), as nnjax train takes it
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"{where_y} has shape {y.shape}: labels must be (examples,) class labels"
            )
        if len(y) != len(X):
            raise ValueError(f"{where_y}: {len(y)} labels for the {len(X)} examples of {where}")
        text = [  # bytes that are not UTF-8: named, with the row
            datafile_labels.label_text(v, i, where_y) if isinstance(v, bytes) else v
            for i, v in enumerate(y.tolist())
        ]
        y = _classes(text, rows, label_names, where_y, "row")
    return Inputs(X, y, rows)


def _classes(values, rows, label_names, where: str, row_word: str) -> np.ndarray:
    """The class index of each label value, by the model's label names."""
    names = list(label_names)
    numeric = all(isinstance(n, int) and not isinstance(n, bool) for n in names)
    # other names (strings; floats or bools a Python caller saved) are matched as text
    index = {(n if numeric else str(n)): k for k, n in enumerate(names)}
    out = np.empty(len(values), np.int32)
    for i, (v, row) in enumerate(zip(values, rows)):
        # text: as written first (an array's labels are not stripped in training: ' a'
        # and 'a ' can be two classes), else stripped (a CSV cell's spaces)
        key = datafile.integer_label(v) if numeric else _text_key(v, index)
        if key not in index:
            raise ValueError(
                f"{where}, {row_word} {row}: label {v!r} is not one of the model's classes "
                f"({datafile._first(map(str, names))})"
            )
        out[i] = index[key]
    return out


def _text_key(v, index: dict) -> str:
    """The label ``v`` as text, as the model names it: exactly, else without spaces."""
    text = str(v)
    return text if text in index else text.strip()
