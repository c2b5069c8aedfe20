"""Reading the rows of a CSV data file (:mod:`nnjax.datafile`): the header, the data rows and
the line each starts on, and numeric columns, every refusal one line naming the file, the
line and the column. Linear in the file's size, columns included. Imports NumPy only.

Rules beyond plain CSV (comma-separated, UTF-8, a BOM skipped, blank lines and lines of
empty fields only, ``,,``, skipped):

* Excel's separator line: a first line ``sep=,`` (Excel writes it for some locales) is
  skipped, and the header is the line after it; ``sep=;`` (or any other separator) is
  refused with the advice to save the file with commas. Lines keep their numbers in the file.
* A trailing comma: when every line, the header included, ends with exactly one empty field
  (``a,b,target,`` then ``1,2,x,``), that empty last column is dropped. Otherwise a header
  ending in an empty name, or a row with an extra empty field, is refused with the hint.
* NUL bytes: a file holding a NUL byte (0x00: a sparse, truncated or damaged file, or UTF-16
  text with no byte-order mark) is refused before it is parsed, naming the line and the byte
  of the first, scanned in 1 MiB chunks (never the whole file in memory).
* A field is at most 131072 characters (Python's ``csv`` limit): a longer one is refused,
  named by the line its record starts on (often a quote left open).
"""

import collections
import csv
import re

import numpy as np

from nnjax.datafile_labels import MISSING, number

BOM = b"\xef\xbb\xbf"
_COMMA_NUMBER = re.compile(r"[+-]?\d+(,\d+)+")  # '1,5' (a decimal comma) or '1,000'
_SEP_LINE = re.compile(r"sep=(.)", re.IGNORECASE)  # Excel's first line naming the separator


def _all_numbers(header: list[str]) -> bool:
    try:
        [float(h) for h in header]
    except ValueError:
        return False
    return True


def no_header(header: list[str], line: int = 1) -> str:
    """A hint for an error about ``header`` (on the file's ``line``: after blank lines or
    Excel's ``sep=,`` line it is not line 1) when its every cell is a number: the file's
    first row is likely data, its header row missing ('' otherwise)."""
    if not _all_numbers(header):
        return ""
    return (
        f"; line {line} is all numbers: is the header row missing? (a CSV file needs one "
        "naming its columns)"
    )


def warn_numeric_header(where: str, header: list[str], line: int = 1) -> None:
    """Warn when the header row (the file's ``line``) is all numbers other than pandas'
    default names 0..d-1 (``DataFrame(X).to_csv(index=False)``): it may be an example read
    as the header, and so left out."""
    if _all_numbers(header) and header != [str(i) for i in range(len(header))]:
        import warnings

        warnings.warn(
            f"{where}: line {line} ({_first(header, 4)}) is all numbers and is read as the "
            "header, not as an example; if it is data, add a header row naming the columns",
            stacklevel=3,
        )


def _csv_rows(where: str, rows_needed: bool = True) -> tuple[list, list, list[int], int]:
    """(header, data rows, the file line each row starts on, the header's line); blank
    lines (and lines of empty fields only) skipped, and an Excel ``sep=,`` first line and a
    trailing comma on every line dropped (module docstring). A header with no rows is
    refused when ``rows_needed`` (training), else read as no examples."""
    _refuse_nul(where)
    rows, lines, ends = _records(where)
    if rows and lines[0] == 1 and (sep := _SEP_LINE.fullmatch(",".join(rows[0]))):
        if sep.group(1) != ",":
            raise ValueError(
                f"{where}: line 1, {','.join(rows[0])!r}, is Excel's separator line: this file "
                f"is separated by {sep.group(1)!r}; nnjax reads comma-separated values: save "
                "it with commas"
            )
        del rows[0], lines[0], ends[0]
    if not rows:
        raise ValueError(f"{where}: empty file (a CSV file needs a header row)")
    header = [h.strip() for h in rows[0]]
    if _all_trail(header, rows[1:]):
        header.pop()
        for row in rows[1:]:
            row.pop()
    _check_header(where, header, lines[0], rows[1:], lines[1:])
    trail = all(len(r) == len(header) + 1 and not r[-1].strip() for r in rows[1:])
    for row, line, last in zip(rows[1:], lines[1:], ends[1:]):
        if len(row) != len(header):
            raise ValueError(
                f"{where}, line {line}: {len(row)} fields, but the header has {len(header)}"
                + _ragged_hint(header, row, line, last, lines[0], trail)
            )
    if len(rows) == 1 and rows_needed:
        raise ValueError(f"{where}: a header and no data rows")
    return header, rows[1:], lines[1:], lines[0]


def _records(where: str) -> tuple[list, list[int], list[int]]:
    """The non-blank records of the file, the line each starts on and the line it ends on."""
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
            if "field limit" in str(e):  # csv's "field larger than field limit (131072)"
                span = (
                    f"its record runs from line {end + 1} to {reader.line_num} at least: a "
                    "quote left open?"
                    if reader.line_num > end + 1
                    else "no CSV text?"
                )
                raise ValueError(
                    f"{where}, line {end + 1}: a field of over {csv.field_size_limit()} "
                    f"characters ({span})"
                ) from None
            raise ValueError(f"{where}, line {reader.line_num}: cannot parse as CSV: {e}") from e
        except UnicodeDecodeError:
            raise ValueError(not_utf8(where)) from None
    return rows, lines, ends


def _all_trail(header: list[str], rows: list[list[str]]) -> bool:
    """Whether every line, the header included, ends with exactly one empty field (a
    trailing comma), which is then dropped as no column."""
    if len(header) < 2 or header[-1] or not header[-2]:
        return False
    return all(len(r) == len(header) and not r[-1].strip() for r in rows)


def _refuse_nul(where: str, chunk: int = 1 << 20) -> None:
    """Refuse a file holding a NUL byte, naming the line and the byte of the first; read in
    ``chunk``-byte pieces (a 50 MB sparse file was read whole as one line, then refused as
    "field larger than field limit"). UTF-16 with a byte-order mark is left to
    :func:`not_utf8`, which names it."""
    with open(where, "rb") as f:
        if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return
        f.seek(0)
        pos = 0
        while block := f.read(chunk):
            if (i := block.find(b"\x00")) >= 0:
                pos += i
                break
            pos += len(block)
        else:
            return
        f.seek(0)
        line, start, done, cr = 1, 0, 0, False  # start: the byte the NUL's line starts at
        while done < pos:
            block = f.read(min(chunk, pos - done))
            n = block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            line += n - (cr and block.startswith(b"\n"))  # a '\r\n' across two blocks
            breaks = max(block.rfind(b"\n"), block.rfind(b"\r"))
            start = done + breaks + 1 if breaks >= 0 else start
            done, cr = done + len(block), block.endswith(b"\r")
    raise ValueError(
        f"{where}, line {line}: a NUL byte (0x00) at byte {pos - start + 1} of the line, byte "
        f"{pos} of the file: not a CSV text file (a sparse, truncated or damaged file, or UTF-16 "
        "text?): save it as UTF-8 CSV"
    )


def _check_header(where: str, header: list[str], line: int, rows: list, lines: list) -> None:
    """One column per name: no separator other than commas, no empty or repeated name.
    ``line`` is the header's line in the file; ``rows`` (at ``lines``) the data rows."""
    seps = [c for c in ";\t|" if len(header) == 1 and c in header[0]]
    if seps:
        raise ValueError(
            f"{where}: the header {header[0]!r} is one column: nnjax reads comma-separated "
            f"values and this file looks separated by {seps[0]!r}; save it with commas"
        )
    for i, h in enumerate(header):
        if not h:
            if i > 0 and not any(header[i:]):
                fix = _trail_fix(header, rows, lines)
                why = f"a trailing comma at the end of line {line}? {fix}"
            elif i == 0:
                why = "an index column? drop it"
            else:
                why = "name it or drop it"
            raise ValueError(f"{where}: column {i + 1} has no name in the header ({why})")
    counts = collections.Counter(header)  # linear: list.count per name took 8 s at 3e4 names
    repeated = sorted(h for h, c in counts.items() if c > 1)
    if repeated:
        raise ValueError(
            f"{where}: the header repeats column names {repeated}{no_header(header, line)}"
        )


def _trail_fix(header: list[str], rows: list, lines: list) -> str:
    """The fix for a header ending in commas: remove them, or, where rows end in empty
    fields too, make every line end with exactly one (the first line that does not is
    named)."""
    ends = [len(r) == len(header) and not r[-1].strip() for r in rows]
    if not any(ends):
        return "remove it"
    if all(ends):  # every line ends so, but with more than one empty field
        return "an empty last column is dropped only when every line ends with exactly one"
    return (
        "an empty last column is dropped only when every line ends with exactly one; line "
        f"{lines[ends.index(False)]} does not: make every line end with one, or none"
    )


def _ragged_hint(header, row, line: int, last: int, head_line: int, trail: bool) -> str:
    """Why a row may have the wrong number of fields: a comment line, a quote left open, a
    trailing comma (``trail``: every data row ends with one, and the header does not)."""
    if row[0].lstrip().startswith("#"):
        return " (a comment? nnjax reads no comment lines: remove it)"
    if header[0].startswith("#"):
        return f" (line {head_line}, {header[0]!r}, is read as the header: a comment? remove it)"
    if last > line:
        return f" (a quoted field runs from line {line} to {last}: is a quote left open?)"
    if trail:
        return (
            f" (every data row ends with a trailing comma, and the header, line {head_line}, "
            "does not: remove them, or end the header with one too)"
        )
    if len(row) > len(header) and not any(v.strip() for v in row[len(header) :]):
        return " (it ends with empty fields: a trailing comma? remove it)"
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
