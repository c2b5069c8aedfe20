"""Reading the rows of a CSV data file (:mod:`nnjax.datafile`): the header, the data rows and
the line each starts on, and numeric columns, every refusal one line naming the file, the
line and the column. Linear in the file's size, columns included. Imports NumPy only."""

import collections
import csv
import re

import numpy as np

from nnjax.datafile_labels import MISSING, number

BOM = b"\xef\xbb\xbf"
_COMMA_NUMBER = re.compile(r"[+-]?\d+(,\d+)+")  # '1,5' (a decimal comma) or '1,000'


def _all_numbers(header: list[str]) -> bool:
    try:
        [float(h) for h in header]
    except ValueError:
        return False
    return True


def no_header(header: list[str]) -> str:
    """A hint for an error about ``header`` when its every cell is a number: the file's
    first row is likely data, its header row missing ('' otherwise)."""
    if not _all_numbers(header):
        return ""
    return (
        "; line 1 is all numbers: is the header row missing? (a CSV file needs one naming "
        "its columns)"
    )


def warn_numeric_header(where: str, header: list[str]) -> None:
    """Warn when the header row is all numbers other than pandas' default names 0..d-1
    (``DataFrame(X).to_csv(index=False)``): it may be an example read as the header, and
    so left out."""
    if _all_numbers(header) and header != [str(i) for i in range(len(header))]:
        import warnings

        warnings.warn(
            f"{where}: line 1 ({_first(header, 4)}) is all numbers and is read as the header, "
            "not as an example; if it is data, add a header row naming the columns",
            stacklevel=3,
        )


def _csv_rows(where: str, rows_needed: bool = True) -> tuple[list, list, list[int]]:
    """(header, data rows, the file line each row starts on); blank lines skipped. A header
    with no rows is refused when ``rows_needed`` (training), else read as no examples."""
    rows, lines, ends = [], [], []
    with open(where, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        end = 0  # the line the previous record ended on (a quoted field may span lines)
        try:
            for row in reader:
                if row and any(v.strip() for v in row):
                    rows.append(row)
                    lines.append(end + 1)
                    ends.append(reader.line_num)
                end = reader.line_num
        except csv.Error as e:
            raise ValueError(f"{where}, line {reader.line_num}: cannot parse as CSV: {e}") from e
        except UnicodeDecodeError:
            raise ValueError(not_utf8(where)) from None
    if not rows:
        raise ValueError(f"{where}: empty file (a CSV file needs a header row)")
    header = [h.strip() for h in rows[0]]
    _check_header(where, header)
    for row, line, last in zip(rows[1:], lines[1:], ends[1:]):
        if len(row) != len(header):
            raise ValueError(
                f"{where}, line {line}: {len(row)} fields, but the header has {len(header)}"
                + _ragged_hint(header, row, line, last)
            )
    if len(rows) == 1 and rows_needed:
        raise ValueError(f"{where}: a header and no data rows")
    return header, rows[1:], lines[1:]


def _check_header(where: str, header: list[str]) -> None:
    """One column per name: no separator other than commas, no empty or repeated name."""
    seps = [c for c in ";\t|" if len(header) == 1 and c in header[0]]
    if seps:
        raise ValueError(
            f"{where}: the header {header[0]!r} is one column: nnjax reads comma-separated "
            f"values and this file looks separated by {seps[0]!r}; save it with commas"
        )
    for i, h in enumerate(header):
        if not h:
            why = (
                "a trailing comma at the end of line 1? remove it"
                if i == len(header) - 1
                else "an index column? drop it"
            )
            raise ValueError(f"{where}: column {i + 1} has no name in the header ({why})")
    counts = collections.Counter(header)  # linear: list.count per name took 8 s at 3e4 names
    repeated = sorted(h for h, c in counts.items() if c > 1)
    if repeated:
        raise ValueError(f"{where}: the header repeats column names {repeated}{no_header(header)}")


def _ragged_hint(header: list[str], row: list[str], line: int, last: int) -> str:
    """Why a row may have the wrong number of fields: a comment line, a quote left open."""
    if row[0].lstrip().startswith("#"):
        return " (a comment? nnjax reads no comment lines: remove it)"
    if header[0].startswith("#"):
        return f" (line 1, {header[0]!r}, is read as the header: a comment? remove it)"
    if last > line:
        return f" (a quoted field runs from line {line} to {last}: is a quote left open?)"
    return ""


def not_utf8(where: str) -> str:
    """One line for a file that is not UTF-8 text: the line and the first bad byte in the
    file (the decoder's own offset counts from the start of its last chunk, not the file)."""
    with open(where, "rb") as f:
        raw = f.read()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"{where}: not a UTF-8 text file (UTF-16, by its byte-order mark): save it as UTF-8"
    start = len(BOM) if raw.startswith(BOM) else 0
    try:
        raw[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        pos = start + e.start
    else:  # changed since it was read
        return f"{where}: not a UTF-8 text file"
    line = len((raw[:pos] + b"x").splitlines())
    column = pos - max(raw.rfind(b"\n", 0, pos), raw.rfind(b"\r", 0, pos))
    return (
        f"{where}, line {line}: not a UTF-8 text file (byte 0x{raw[pos]:02x} at byte "
        f"{column} of the line, byte {pos} of the file; Latin-1 or Windows-1252 text?): "
        "save it as UTF-8"
    )


def _numeric_column(values: list[str], lines: list[int], where: str) -> list[float]:
    """The column as floats; the first missing or non-numeric cell raises, with its line."""
    out = []
    for v, line in zip(values, lines):
        s = v.strip()
        if s.lower() in MISSING:
            raise ValueError(f"{where}, line {line}: missing value {v!r}")
        try:
            x = number(s)
        except ValueError:
            hint = (
                " (a decimal comma or a thousands separator? write 1.5 and 1500)"
                if _COMMA_NUMBER.fullmatch(s)
                else ""
            )
            raise ValueError(
                f"{where}, line {line}: {v!r} is not a number; features must be numeric "
                f"(drop the column, or make it the --target){hint}"
            ) from None
        if np.isnan(x):  # 'NaN' is in MISSING; ' -NaN ', '+nan' parse too
            raise ValueError(f"{where}, line {line}: missing value {v!r}")
        out.append(x)
    return out


def _first(names, n: int = 20) -> str:
    """The first ``n`` names, comma-separated, and how many more."""
    names = list(names)
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more
