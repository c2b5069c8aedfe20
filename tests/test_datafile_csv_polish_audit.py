"""The CSV reader's rough edges (:mod:`nnjax.datafile_csv`): a trailing comma on every line,
NUL bytes (a sparse or UTF-16 file), Excel's ``sep=`` first line, a quote left open past the
field limit, and hints that name the header's real line."""

import tracemalloc

import numpy as np
import pytest

from nnjax import datafile, datafile_csv, inputs

CLEAN = "a,b,target\n1,2,x\n3,4,y\n5,6,x\n"


def _read_error(path, **kw) -> str:
    with pytest.raises(ValueError) as e:
        datafile.read(path, **kw)
    return str(e.value)


def _write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def _same(got, want):
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)
    assert (got.label_names, got.feature_names) == (want.label_names, want.feature_names)


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_comma_ending_every_line_is_no_column(tmp_path, end):
    # every line, header included, ends with one empty field: read as the file without it
    text = "".join(line + "," + end for line in CLEAN.splitlines())
    want = datafile.read(_write(tmp_path, CLEAN, "clean.csv"))
    _same(datafile.read(_write(tmp_path, text)), want)
    got = inputs.read_inputs(
        tmp_path / "d.csv",
        n_features=2,
        feature_names=("b", "a"),
        label_names=("x", "y"),
        trained_target="target",
    )  # predict's reader too: columns by name, the empty one gone
    np.testing.assert_array_equal(got.X, want.X[:, ::-1])
    np.testing.assert_array_equal(got.y, want.y)


def test_rows_ending_in_a_comma_under_a_header_without_get_one_hint(tmp_path):
    # was "line 2: 4 fields, but the header has 3" with no hint (after the header's was fixed)
    got = _read_error(_write(tmp_path, "a,b,target\n1,2,x,\n3,4,y,\n"))
    assert (
        "line 2: 4 fields, but the header has 3 (every data row ends with a trailing comma" in got
    )
    got = _read_error(_write(tmp_path, "a,b,target\n1,2,x\n3,4,y,,\n"))
    assert "line 3: 5 fields, but the header has 3 (it ends with empty fields: a trailing" in got


@pytest.mark.parametrize(
    "text, reason",
    [
        (
            "a,b,target,\n1,2,x,\n3,4,y\n",
            "line 1? an empty last column is dropped only when "
            "every line ends with exactly one; line 3 does not",
        ),
        ("a,b,target,\n1,2,x,\n3,4,y,7\n", "; line 3 does not: make every line end with one"),
        (
            "a,b,target,,\n1,2,x,,\n",
            "column 4 has no name in the header (a trailing comma at "
            "the end of line 1? an empty last column is dropped only when every line ends with "
            "exactly one)",
        ),  # was "(an index column? drop it)"
        (
            "\n\na,b,target,\n1,2,x\n",
            "column 4 has no name in the header (a trailing comma at the end of line 3? remove it)",
        ),  # the header's own line (was "line 1")
        ("a,,target\n1,2,x\n", "column 2 has no name in the header (name it or drop it)"),
    ],
    ids=["one-row-without", "a-value-in-it", "two-commas", "header-on-line-3", "middle-column"],
)
def test_a_header_with_an_empty_name_gets_the_right_hint(tmp_path, text, reason):
    got = _read_error(_write(tmp_path, text))
    assert reason in got, got
    assert "index column" not in got


def test_an_index_column_keeps_its_hint(tmp_path):
    got = _read_error(_write(tmp_path, ",a,target\n0,1,x\n"))
    assert "column 1 has no name in the header (an index column? drop it)" in got


def test_excels_sep_comma_line_is_skipped_and_lines_keep_their_numbers(tmp_path):
    want = datafile.read(_write(tmp_path, CLEAN, "clean.csv"))
    for first in ("sep=,", '"sep=,"', "SEP=,"):
        _same(datafile.read(_write(tmp_path, first + "\n" + CLEAN)), want)
    bom = b"\xef\xbb\xbfsep=,\r\n" + CLEAN.encode()
    _same(datafile.read(_write(tmp_path, bom)), want)
    got = _read_error(_write(tmp_path, "sep=,\na,b,target\n1,2,x\n3,,y\n"))
    assert got.endswith("d.csv: column 'b', line 4: missing value ''"), got
    assert "empty file" in _read_error(_write(tmp_path, "sep=,\n"))


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_excels_sep_line_naming_another_separator_is_refused(tmp_path, sep):
    text = f"sep={sep}\n" + CLEAN.replace(",", sep)
    got = _read_error(_write(tmp_path, text))
    first = repr(f"sep={sep}")
    assert f"line 1, {first}, is Excel's separator line: this file is separated by " in got
    assert got.endswith("save it with commas"), got


def test_a_sparse_file_is_refused_at_its_first_byte_without_reading_it_whole(tmp_path):
    path = tmp_path / "sparse.csv"
    with open(path, "wb") as f:
        f.truncate(8 << 20)  # 8 MiB of NUL bytes: was read as one 8 MiB line, then refused
    tracemalloc.start()
    try:
        got = _read_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "sparse.csv, line 1: a NUL byte (0x00) at byte 1 of the line, byte 0 of" in got
    assert "field limit" not in got
    assert peak < 4 << 20, peak  # 1 MiB chunks (the whole line was ~2.3x the file)
    path.write_bytes(b"a,b,target\n" + bytes(3 << 20))
    assert "line 2: a NUL byte (0x00) at byte 1 of the line, byte 11 of" in _read_error(path)


def test_a_nul_in_a_label_is_refused_not_made_a_class(tmp_path):
    # was read: the classes ('x\x00', 'y')
    got = _read_error(_write(tmp_path, b"a,b,target\n1,2,x\x00\n3,4,y\n"))
    assert "d.csv, line 2: a NUL byte (0x00) at byte 6 of the line, byte 16 of the file" in got
    got = str(pytest.raises(ValueError, inputs.read_inputs, tmp_path / "d.csv", n_features=2).value)
    assert "line 2: a NUL byte" in got  # predict's reader too


def test_utf16_without_a_mark_is_named_as_possibly_utf16(tmp_path):
    # was "line 3: 1 fields, but the header has 3"
    got = _read_error(_write(tmp_path, CLEAN.encode("utf-16-le")))
    assert "line 1: a NUL byte (0x00) at byte 2 of the line, byte 1 of" in got
    assert "UTF-16" in got
    got = _read_error(_write(tmp_path, CLEAN.encode("utf-16")))  # with its mark: as before
    assert "not a UTF-8 text file (UTF-16, by its byte-order mark)" in got


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 64, 1 << 20])
def test_the_nul_is_named_by_its_line_whatever_the_line_endings_and_chunks(tmp_path, chunk):
    # oracle: bytes.splitlines (\n, \r and \r\n, as the csv reader counts lines)
    rng = np.random.default_rng(chunk)
    ends = [b"\n", b"\r", b"\r\n"]
    body = b"".join(b"1,2,x" * int(rng.integers(0, 3)) + ends[rng.integers(3)] for _ in range(40))
    for cut in (0, 7, len(body) // 2, len(body)):
        raw = body[:cut] + b"1,\x00" + body[cut:]
        path = _write(tmp_path, raw)
        pos = raw.index(b"\x00")
        line = len((raw[:pos] + b"x").splitlines())
        col = pos - max(raw.rfind(b"\n", 0, pos), raw.rfind(b"\r", 0, pos))
        with pytest.raises(ValueError) as e:
            datafile_csv._refuse_nul(str(path), chunk=chunk)
        assert f"line {line}: a NUL byte (0x00) at byte {col} of the line, byte {pos} " in str(
            e.value
        )


def test_a_quote_left_open_past_the_field_limit_is_named_by_its_first_line(tmp_path):
    # was "line 21847: cannot parse as CSV: field larger than field limit (131072)"
    got = _read_error(_write(tmp_path, 'a,b,target\n"1,2,x\n' + "3,4,y\n" * 30000))
    assert "d.csv, line 2: a field of over 131072 characters (its record runs from line 2 to" in got
    assert "a quote left open?" in got
    got = _read_error(_write(tmp_path, "a,b,target\n" + "7" * 200000 + ",1,x\n"))
    assert "line 2: a field of over 131072 characters (no CSV text?)" in got
