"""A second audit of the data side's docstrings (nnjax.datafile, datafile_csv, datafile_labels,
inputs): a header row of numbers is named by its own line in the file (it was always "line
1", also after blank lines or Excel's ``sep=,`` line), and the documented CSV rules that the
docstrings now state: lines of empty fields only are skipped as blank, an infinite label
among number labels is refused."""

import warnings

import numpy as np
import pytest

from nnjax import datafile
from nnjax.inputs import read_inputs

NO_HEADER = "is all numbers: is the header row missing? (a CSV file needs one naming its columns)"


def _write(path, text: str):
    path.write_text(text, newline="")
    return path


def test_numeric_header_warning_names_its_line_after_excel_sep_line(tmp_path):
    p = _write(tmp_path / "a.csv", "sep=,\n1.5,2.5,0\n1,2,0\n3,4,1\n")
    with pytest.warns(UserWarning) as caught:
        d = datafile.read(p, target="0")
    (message,) = [str(w.message) for w in caught]
    assert message == (
        f"{p}: line 2 (1.5, 2.5, 0) is all numbers and is read as the header, not as an "
        "example; if it is data, add a header row naming the columns"
    )
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4]])


def test_missing_target_hint_names_the_header_line_after_blank_lines(tmp_path):
    p = _write(tmp_path / "b.csv", "\n\n1.5,2.5\n1,2\n")
    with pytest.raises(ValueError) as e:
        datafile.read(p)
    assert str(e.value) == (
        f"{p}: no column 'target' (give the label column with --target); columns: 1.5, 2.5; "
        f"line 3 {NO_HEADER}"
    )


def test_repeated_numeric_header_names_its_line(tmp_path):
    p = _write(tmp_path / "c.csv", "\n1,1,2\n1,2,a\n")
    with pytest.raises(ValueError) as e:
        datafile.read(p, target="2")
    assert str(e.value) == f"{p}: the header repeats column names ['1']; line 2 {NO_HEADER}"


def test_predict_inputs_name_the_numeric_header_line(tmp_path):
    """``nnjax predict``'s reading: columns matched by name, and a model trained on arrays."""
    p = _write(tmp_path / "d.csv", "\n\n1.5,2.5\n1,2\n")
    with pytest.raises(ValueError) as e:
        read_inputs(p, n_features=2, feature_names=["x1", "x2"], label_names=(0, 1))
    assert str(e.value).endswith(f"(it was trained on x1, x2); line 3 {NO_HEADER}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = read_inputs(p, n_features=2, label_names=(0, 1))
    assert [str(w.message) for w in caught] == [
        f"{p}: line 3 (1.5, 2.5) is all numbers and is read as the header, not as an example; "
        "if it is data, add a header row naming the columns"
    ]
    assert inputs.rows == [4]
    np.testing.assert_array_equal(inputs.X, [[1, 2]])


def test_first_line_header_still_line_1(tmp_path):
    p = _write(tmp_path / "e.csv", "1.5,2.5\n1,2\n")
    with pytest.raises(ValueError, match=r"; line 1 is all numbers"):
        datafile.read(p)


def test_lines_of_empty_fields_only_are_skipped_rows_keep_their_lines(tmp_path):
    """The docstring's rule: ``,,`` (a spreadsheet's empty row) is skipped as a blank line, a
    row with one value left is refused naming the empty cell's line."""
    p = _write(tmp_path / "f.csv", "a,b,target\n1,2,x\n,,\n , ,\n3,4,y\n5,,y\n")
    with pytest.raises(ValueError) as e:
        datafile.read(p)
    assert str(e.value) == f"{p}: column 'b', line 6: missing value ''"
    p = _write(tmp_path / "g.csv", "a,b,target\n1,2,x\n,,\n3,4,y\n")
    d = datafile.read(p)
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4]])
    assert d.label_names == ("x", "y")


def test_infinite_label_among_numbers_is_refused_among_names_a_name(tmp_path):
    p = _write(tmp_path / "h.csv", "a,target\n1,1\n2,inf\n3,0\n")
    with pytest.raises(ValueError) as e:
        datafile.read(p)
    assert str(e.value) == (
        f"{p}: column 'target', line 3: label 'inf' is not a class (labels are integers or "
        "names; nnjax trains classifiers)"
    )
    p = _write(tmp_path / "i.csv", "a,target\n1,a\n2,inf\n")
    assert datafile.read(p).label_names == ("a", "inf")
