"""Class labels as a data file gives them (:mod:`nnjax.datafile`): ``(y, names)``, classes
0..K-1 in sorted order of the labels, the labels themselves the names. Integers keep their
values exactly (up to 4300 digits, Python's limit on integer text; a longer one is refused);
numbers with no fractional part (``1.0``) count as integers within +-2**53, where floats are
exact; any other text makes every label a string name. A missing label (:data:`MISSING`),
among number labels one with a fractional part or an infinite one, or a single class is a
``ValueError`` naming the file, column and row. Imports NumPy only."""

import decimal

import numpy as np

# lower-cased; with pandas' defaults: Excel's '#N/A' (a lookup that failed) was a class label
MISSING = frozenset(
    {"", "na", "n/a", "nan", "-nan", "+nan", "null", "none", "?", "<na>"}
    | {"#n/a", "#n/a n/a", "#na", "-1.#ind", "1.#ind", "-1.#qnan", "1.#qnan"}
)
EXACT_INT = 2**53  # beyond it a float is no exact integer: 9007199254740993.0 reads ...992


def encode_text_labels(values: list[str], lines: list, where: str, word: str = "line"):
    """(y, names): integers (or integral numbers) keep their values; otherwise strings.
    ``lines`` name the values in errors, as ``word`` (a CSV line, an array's row)."""
    try:
        [number(v) for v in values]
    except ValueError:
        return _encode(values, where)
    labels = []
    for v, line in zip(values, lines):
        k = integer_label(v)
        if k is None:
            shown = repr(v) if len(v) <= 40 else f"{v[:20]!r}...({len(v)} characters)"
            why = _no_class(float(v))
            if v.strip().lstrip("+-").isdigit():  # int() refuses text past 4300 digits
                why = "is an integer longer than the 4300 digits Python reads; write names"
            raise ValueError(f"{where}, {word} {line}: label {shown} {why}")
        labels.append(k)
    return _encode(labels, where)


def number(text: str) -> float:
    """``float(text)``, but for Python's digit separators: ``"1_2"`` is text (an id or a
    name), not the number 12 (it made the labels ``1_2`` and ``12`` one class)."""
    if "_" in text:
        raise ValueError(f"could not convert string to float: {text!r}")
    return float(text)


def integer_label(v) -> int | None:
    """The label ``v`` (a number, or its text) as an int: exactly when written as an integer
    (``"9007199254740993"``, ``" -3 "``), else a number with no fractional part within
    +-2**53 (``"1.0"``, ``2e3``; text is compared exactly, not as the float it rounds to:
    ``"9007199254740993.0"`` is beyond); None for anything else."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, str):
        if "_" in v:  # no number: see number()
            return None
        try:
            return int(v.strip())
        except ValueError:
            pass
        try:  # exactly: float("9007199254740993.0") rounds to 2**53, which would pass
            d = decimal.Decimal(v.strip())
        except decimal.InvalidOperation:
            d = None
        if d is not None:
            exact = d.is_finite() and d.copy_abs() <= EXACT_INT and d == d.to_integral_value()
            return int(d) if exact else None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return int(x) if np.isfinite(x) and x == int(x) and abs(x) <= EXACT_INT else None


def _no_class(x: float) -> str:
    """Why the number ``x`` is no class label (for a label that is not an integer)."""
    if np.isfinite(x) and abs(x) >= EXACT_INT:  # where floats are integers, if rounded
        return (
            "is not an exact integer (beyond 2**53 a float is rounded); write the labels as "
            "integers or as names"
        )
    return "is not a class (labels are integers or names; nnjax trains classifiers)"


def _encode(labels: list, where: str):
    """Classes 0..K-1 in sorted order of the labels; the labels themselves are the names."""
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise ValueError(
            f"{where}: a single class ({names[0]!r}) in all {len(labels)} examples; "
            "a classifier needs at least 2"
        )
    index = {name: k for k, name in enumerate(names)}
    return np.array([index[v] for v in labels], np.int32), names


def encode_array_labels(y: np.ndarray, where: str):
    """(y, names) of an array's labels (``where`` names it in errors): bools and integers
    keep their values, floats must be integral within +-2**53, strings (or bytes) follow the
    text rules of :func:`encode_text_labels`, their names kept as written (not stripped, as
    a CSV cell is: ``" a"`` and ``"a"`` are two classes); an empty or missing string is
    refused, naming its 0-based row."""
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind in "iu":
        return _encode([int(v) for v in y], where)
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) > EXACT_INT))
        if len(bad):
            i = bad[0]
            if np.isnan(y[i]):
                raise ValueError(f"{where}: label at row {i} is missing (NaN)")
            raise ValueError(f"{where}: label at row {i} is {y[i]:g}, which {_no_class(y[i])}")
        return _encode([int(v) for v in y], where)
    if y.dtype.kind in "US":
        text = [label_text(v, i, where) for i, v in enumerate(y.tolist())]
        for i, v in enumerate(text):
            if v.strip().lower() in MISSING:
                raise ValueError(f"{where}: label at row {i} is missing ({v!r})")
        # the rules of text labels, as in a CSV file: '1', '1.0' and '01' are the class 1
        # (they were three string classes, and the names strings where a CSV gave ints)
        return encode_text_labels(text, list(range(len(text))), where, "row")
    raise ValueError(f"{where} has dtype {y.dtype}: labels must be integers or strings")


def label_text(v, row: int, where: str) -> str:
    """An array label as text: bytes (dtype ``S``) decoded as UTF-8, else a ValueError naming
    the array and the row (the decoder's own message named neither)."""
    if not isinstance(v, bytes):
        return str(v)
    try:
        return v.decode()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{where}: label at row {row} is bytes {v[:40]!r}, not UTF-8 text (byte "
            f"0x{v[e.start]:02x}): save the labels as UTF-8 strings or as integers"
        ) from None
