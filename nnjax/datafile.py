"""The user's own data: a CSV file, an ``.npz`` archive or a pair of ``.npy`` files.

:func:`read` returns :class:`OwnData`: features ``X`` (n, d) float32 and class indices ``y``
(n,) int32 in [0, K), with ``label_names`` (K,) the original labels, sorted. The formats:

* ``.csv``: a header row, then one example per row, comma-separated (UTF-8, a BOM is
  skipped, blank lines and lines of empty fields only (``,,``: a spreadsheet's empty rows)
  are skipped; an Excel ``sep=,`` first line is skipped, a comma ending every line, the
  header included, is no column, and a file holding a NUL byte is refused:
  :mod:`nnjax.datafile_csv`). The column named ``target`` (default ``"target"``)
  holds the labels; every other column is a numeric feature. A header of numbers only
  (other than pandas' default names 0..d-1) is warned of: it may be the first example of a
  file that has no header row.
* ``.npz``: an archive (``numpy.savez``) holding two arrays named exactly ``X`` (n, d) or
  (n,) and ``y`` (n,); other arrays in it are ignored.
* ``.npy``: the features alone (n, d) or (n,); the labels come from a second ``.npy`` file,
  ``labels`` (n,) (on the command line: ``--data X.npy --labels y.npy``).

Labels: integer labels keep their values as names (``{3, 7}`` become classes 0, 1 named 3
and 7), exactly (up to 4300 digits, Python's limit on integer text); numbers with no
fractional part (``1.0``, within +-2**53, where floats are exact) count as integers; any
other text makes every label a string name, sorted as strings (``"10" < "2"``). The rules
are the same for a CSV column and for a string array ``y``: ``"1"``, ``"1.0"`` and ``"01"``
are one class, named 1. One difference: a CSV cell's spaces are stripped (``" a"`` is the
class ``"a"``), while an array's string names are kept as written (``" a"`` and ``"a"`` are
two classes; spaces around a number still do not count). Numbers with a fractional part, or
infinite (``inf``), among number labels are refused (nnjax trains classifiers), as are fewer
than 2 classes.

Every bad input is a ``ValueError`` naming the file, the column (or array) and the first bad
row: a missing value (an empty cell, ``NA``, ``NaN``, ``null``, ``None``, ``?``, Excel's
``#N/A``: :data:`nnjax.datafile_labels.MISSING`), a non-numeric or infinite feature, a
missing target column (the columns are listed), ragged rows, a label that runs over several
lines (a quote left open, which takes in the rows after it), a file that cannot be parsed
or is not UTF-8 (the line of the first byte that is not, or UTF-16 by its mark), an array
whose header claims more data than its file (or archive member) holds, or an archive member
that is no ``.npy`` array. CSV rows are
named by the line in the file they start on (its first line is 1); array rows by their
0-based index. A path that is missing, a folder or a device is refused by
:func:`check_paths` before anything is read, as a :class:`nnjax.errors.PathError` (an
``OSError``: the CLI exits 3). Nothing here imports JAX.
"""

import os
import zipfile
from typing import NamedTuple

import numpy as np

from nnjax.datafile_csv import _csv_rows as _csv_rows
from nnjax.datafile_csv import _first as _first
from nnjax.datafile_csv import _numeric_column as _numeric_column
from nnjax.datafile_csv import no_header as no_header
from nnjax.datafile_csv import warn_numeric_header as warn_numeric_header
from nnjax.datafile_labels import MISSING, encode_array_labels, encode_text_labels
from nnjax.datafile_labels import integer_label as integer_label

FORMATS = (".csv", ".npz", ".npy")
DEFAULT_TARGET = "target"
NPZ_KEYS = ("X", "y")  # the array names an .npz file must hold
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class OwnData(NamedTuple):
    """``X`` (n, d) float32, ``y`` (n,) int32 class indices, ``label_names[k]`` the label of
    class k (int or str), ``feature_names`` the CSV columns (None for arrays), ``name`` the
    file's base name."""

    X: np.ndarray
    y: np.ndarray
    label_names: tuple
    feature_names: tuple[str, ...] | None
    name: str


def data_format(path) -> str:
    """The format of ``path`` by its extension, one of :data:`FORMATS`."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FORMATS:
        raise ValueError(
            f"{os.fspath(path)}: unknown data format {ext or '(no extension)'!r}; "
            f"valid: {', '.join(FORMATS)}"
        )
    return ext


def check_paths(path, *, target: str | None = None, labels=None) -> None:
    """Refuse, before anything is read, a missing file or options that do not fit the
    format: ``target`` is for CSV files only, ``labels`` for (and needed by) ``.npy``."""
    check_files(path, labels)
    ext = data_format(path)
    if target is not None and ext != ".csv":
        raise ValueError(
            f"--target names a CSV column; {os.fspath(path)} is {ext} (its labels are "
            + ("the array 'y')" if ext == ".npz" else "the --labels file)")
        )
    if ext == ".npy" and labels is None:
        raise ValueError(
            f"{os.fspath(path)} holds the features only: give the labels file too (--labels y.npy)"
        )
    if labels is not None and ext != ".npy":
        raise ValueError(f"--labels is for .npy features; {os.fspath(path)} holds its labels")
    if labels is not None and os.path.splitext(os.fspath(labels))[1].lower() != ".npy":
        raise ValueError(f"--labels {os.fspath(labels)}: must be a .npy file")  # only .npy


def check_files(*paths) -> None:
    """Each of ``paths`` (None skipped) is a regular file, or a
    :class:`nnjax.errors.PathError` (an ``OSError``: exit 3) saying what it is: a directory, a
    device or a pipe, or missing."""
    from nnjax.errors import not_a_file

    for p in paths:
        if p is not None and (error := not_a_file(p)) is not None:
            raise error


def read(path, *, target: str | None = None, labels=None) -> OwnData:
    """Read the user's data file (see the module docstring for the formats)."""
    check_paths(path, target=target, labels=labels)
    ext = data_format(path)
    if ext == ".csv":
        return read_csv(path, target=DEFAULT_TARGET if target is None else target)
    if ext == ".npz":
        X, y = _read_npz(path)
        return _from_arrays(X, y, os.fspath(path), os.fspath(path))
    X, y = _read_npy(path), _read_npy(labels)
    return _from_arrays(X, y, os.fspath(path), os.fspath(labels))


# --- CSV ---------------------------------------------------------------------------------


def read_csv(path, target: str = DEFAULT_TARGET) -> OwnData:
    """A CSV file with a header row; the column ``target`` holds the labels."""
    where = os.fspath(path)
    header, rows, lines, head_line = _csv_rows(where)
    if target not in header:
        shown = _first(header)
        raise ValueError(
            f"{where}: no column {target!r} (give the label column with --target); columns: "
            f"{shown}{no_header(header, head_line)}"
        )
    warn_numeric_header(where, header, head_line)
    t = header.index(target)
    features = [i for i in range(len(header)) if i != t]
    if not features:
        raise ValueError(f"{where}: no feature column besides the target {target!r}")
    X = np.empty((len(rows), len(features)), np.float64)
    for j, i in enumerate(features):
        X[:, j] = _numeric_column([r[i] for r in rows], lines, f"{where}: column {header[i]!r}")
    X = _to_float32(X, lambda r, c: f"{where}: column {header[features[c]]!r}, line {lines[r]}")
    column = [r[t].strip() for r in rows]
    for v, line in zip(column, lines):
        if v.lower() in MISSING:
            raise ValueError(f"{where}: column {target!r}, line {line}: missing label {v!r}")
        if "\n" in v or "\r" in v:  # a quote left open swallows the rows after it, silently
            shown = repr(v) if len(v) <= 40 else f"{v[:30]!r}..."
            raise ValueError(
                f"{where}: column {target!r}, line {line}: label {shown} runs over "
                f"{len(v.splitlines())} lines: a quote left open? (it takes in the rows after "
                "it); close or remove it"
            )
    y, names = encode_text_labels(column, lines, f"{where}: column {target!r}")
    feature_names = tuple(header[i] for i in features)
    return OwnData(X, y, names, feature_names, os.path.basename(where))


# --- arrays --------------------------------------------------------------------------------


def _magic(where: str) -> bytes:
    with open(where, "rb") as f:
        return f.read(6)


def _read_npz(path, need_y: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The arrays X and y of an .npz archive (y None when absent and not ``need_y``)."""
    where = os.fspath(path)
    magic = _magic(where)
    if not magic.startswith(b"PK"):
        kind = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip archive"
        raise ValueError(f"{where}: not an .npz archive ({kind})")
    name = "X"
    try:
        with np.load(where, allow_pickle=False) as archive:
            keys = archive.files
            if "X" in keys and ("y" in keys or not need_y):
                _check_members(where, archive.zip, [k for k in NPZ_KEYS if k in keys])
                X = _array(archive["X"], where, "X")
                name = "y"
                return X, (_array(archive["y"], where, "y") if "y" in keys else None)
    except _Damaged:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if _is_object_array_error(e):
            raise ValueError(_object_array_message(f"{where}: array {name}", name)) from e
        raise ValueError(f"{where}: not a readable .npz archive ({e})") from e
    shown = ", ".join(repr(k) for k in keys[:20]) + (
        f" and {len(keys) - 20} more" * (len(keys) > 20)
    )
    wanted = "arrays named 'X' and 'y'" if need_y else "an array named 'X' (and 'y', the labels)"
    raise ValueError(f"{where}: an .npz file must hold {wanted}; it holds {shown or 'nothing'}")


class _Damaged(ValueError):
    """A refusal of an archive's member, raised as it is (not wrapped as unreadable)."""


def _array(a, where: str, name: str) -> np.ndarray:
    """``a``, an archive's member, when it is an array (NumPy returns the raw bytes of a
    member that is no ``.npy`` file, which no check downstream expects)."""
    if not isinstance(a, np.ndarray):
        raise _Damaged(f"{where}: {name} in the archive is not a .npy array (no NumPy header)")
    return a


def _check_claim(f, available: int, what: str) -> None:
    """The .npy header read from ``f`` claims no more data than the ``available`` bytes that
    follow the magic string: a damaged or forged header (shape (1e11, 2)) made NumPy try to
    allocate 1.5 TiB, reported as "out of memory" with no file named. A header that cannot be
    read is left to ``np.load``'s own error; object arrays to its pickle refusal."""
    start = f.tell()
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0
        if version != (1, 0):
            read = np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError):
        return
    if dtype.hasobject:
        return
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = available - (f.tell() - start)
    if claimed > held:
        raise _Damaged(
            f"{what}: its header claims an array of shape {tuple(shape)} and dtype {dtype} "
            f"({claimed} bytes), but the file holds {max(held, 0)} bytes of data: it is "
            "truncated or damaged"
        )


def _check_members(where: str, archive: zipfile.ZipFile, names: list[str]) -> None:
    """Each array ``names`` of an .npz archive claims no more than its member holds."""
    for name in names:
        member = name + ".npy" if name + ".npy" in archive.namelist() else name
        with archive.open(member) as f:
            _check_claim(f, archive.getinfo(member).file_size, f"{where}: array {name}")


def _read_npy(path) -> np.ndarray:
    where = os.fspath(path)
    if _magic(where) != b"\x93NUMPY":
        raise ValueError(f"{where}: not a .npy file (no NumPy header)")
    with open(where, "rb") as f:
        _check_claim(f, os.fstat(f.fileno()).st_size, where)
    try:
        return np.load(where, allow_pickle=False)
    except (ValueError, EOFError) as e:
        if _is_object_array_error(e):
            raise ValueError(_object_array_message(where, "a")) from e
        raise ValueError(f"{where}: not a readable .npy file ({e})") from e


def _is_object_array_error(e: BaseException) -> bool:
    """NumPy's refusal of a pickled (dtype object) array under ``allow_pickle=False``."""
    return isinstance(e, ValueError) and "Object arrays cannot be loaded" in str(e)


def _object_array_message(what: str, name: str) -> str:
    """One line for an array of Python objects: what it is, why it is not read, the fix."""
    return (
        f"{what} holds Python objects (dtype object), which nnjax does not load (reading "
        f"them would run pickled code): save it as numbers or strings, e.g. "
        f"{name}.astype(float) or {name}.astype(str)"
    )


def _from_arrays(X: np.ndarray, y: np.ndarray, x_where: str, y_where: str) -> OwnData:
    """Check and convert arrays read from .npz/.npy files (``*_where`` names them)."""
    x_name = f"{x_where}: X" if x_where == y_where else x_where
    y_name = f"{y_where}: y" if x_where == y_where else y_where
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim == 0:
        raise ValueError(f"{x_name} is a single number: nnjax train takes (examples, features)")
    if X.ndim != 2:
        raise ValueError(
            f"{x_name} has shape {X.shape}: nnjax train takes (examples, features); reshape "
            f"it to ({X.shape[0]}, {int(np.prod(X.shape[1:]))})"
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{x_name} has dtype {X.dtype}: features must be numbers")
    if len(X) == 0 or X.shape[1] == 0:
        raise ValueError(f"{x_name} has shape {X.shape}: no examples or no features")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{y_name} has shape {y.shape}: labels must be (examples,) class labels "
            "(one-hot rows: y.argmax(1))"
        )
    if len(y) != len(X):
        raise ValueError(f"{y_name} has {len(y)} labels for the {len(X)} examples of {x_name}")
    X = X.astype(np.float64)
    bad = np.argwhere(np.isnan(X))
    if len(bad):
        r, c = bad[0]
        raise ValueError(f"{x_name}: missing value (NaN) at row {r}, column {c}")
    X = _to_float32(X, lambda r, c: f"{x_name}: row {r}, column {c}")
    y_codes, names = encode_array_labels(y, y_name)
    return OwnData(X, y_codes, names, None, os.path.basename(x_where))


def _to_float32(X: np.ndarray, where) -> np.ndarray:
    """X as float32; ``where(row, col)`` names the first infinite or too-large value."""
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    bad = np.argwhere(~np.isfinite(X32))
    if len(bad):
        r, c = bad[0]
        v = X[r, c]
        if np.isnan(v):
            raise ValueError(f"{where(r, c)}: missing value (NaN); features must be finite")
        why = "is infinite" if not np.isfinite(v) else f"exceeds float32's {_FLOAT32_MAX:.4g}"
        raise ValueError(f"{where(r, c)}: the value {v:g} {why}; features must be finite")
    return X32
