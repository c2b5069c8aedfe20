"""Small faults in reading and splitting a user's own data file that the suite let pass:
each test here fails with one such fault and passes on the code. The oracles are tiny files
written here, their arrays and per-class counts worked out by hand, and the one-line errors
naming the file, line and column."""

import numpy as np
import pytest

from nnjax.datafile import read, read_csv


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- datafile_csv: the header -----------------------------------------------------------


CSV_ERRORS = {  # the file's text -> its one-line error ({path}: the file)
    # a blank line, then sep=;: no Excel separator line (it was named as "line 1"), but a
    # header of one column that holds ';', line 2 of the file
    "excel sep= on line 1 only": (
        "\nsep=;\na;target\n1;x\n2;y\n",
        "{path}: the header 'sep=;' is one column: nnjax reads comma-separated values and "
        "this file looks separated by ';'; save it with commas",
    ),
    "pipe separator named": (
        "a|target\n1|x\n2|y\n",
        "{path}: the header 'a|target' is one column: nnjax reads comma-separated values "
        "and this file looks separated by '|'; save it with commas",
    ),
    "repeated names sorted": (
        "b,a,b,a,target\n1,2,3,4,x\n",
        "{path}: the header repeats column names ['a', 'b']",
    ),
    "trailing comma on one row only": (
        "a,target\n1,x,\n2,y\n",
        "{path}, line 2: 3 fields, but the header has 2 (it ends with empty fields: a "
        "trailing comma? remove it)",
    ),
    "first 20 columns named": (
        ",".join(f"c{i}" for i in range(25)) + "\n" + ",".join(["1"] * 25) + "\n",
        "{path}: no column 'target' (give the label column with --target); columns: "
        + ", ".join(f"c{i}" for i in range(20))
        + " and 5 more",
    ),
    "a feature's column with the target first": (
        "target,a,b\nx,1,1e39\ny,2,3\n",
        "{path}: column 'b', line 2: the value 1e+39 exceeds float32's 3.403e+38; features "
        "must be finite",
    ),
}


@pytest.mark.parametrize("case", CSV_ERRORS)
def test_a_bad_csv_file_gets_its_one_line_error(case, tmp_path):
    text, message = CSV_ERRORS[case]
    path = _csv(tmp_path, text)
    with pytest.raises(ValueError) as e:
        read_csv(path)
    assert str(e.value) == message.format(path=path)


def test_header_names_are_stripped_of_spaces(tmp_path):
    data = read_csv(_csv(tmp_path, " a , b ,  target \n1,2,x\n3,4,y\n"))
    assert data.feature_names == ("a", "b")
    assert data.X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert data.y.tolist() == [0, 1]


# --- datafile_labels: 2**53 itself is an exact integer -----------------------------------


def test_a_label_of_exactly_2_53_is_a_class_in_text_and_in_an_array(tmp_path):
    data = read_csv(_csv(tmp_path, "a,target\n1,9007199254740992.0\n2,1\n3,1\n"))
    assert data.label_names == (1, 2**53)
    assert data.y.tolist() == [1, 0, 0]
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 1)), y=np.array([2.0**53, 0.0, 2.0**53]))
    data = read(path)
    assert data.label_names == (0, 2**53)
    assert data.y.tolist() == [1, 0, 1]


# --- data_checks: a seed is below 2**32 -------------------------------------------------


def test_a_seed_of_2_32_is_refused_by_name():
    from nnjax.data import split_own

    X, y = np.arange(4.0).reshape(4, 1), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError) as e:
        split_own(X, y, ("a", "b"), name="f.csv", seed=2**32, test_fraction=0.5)
    assert str(e.value) == "f.csv: seed must be an int in [0, 2**32), got 4294967296"
    s = split_own(X, y, ("a", "b"), name="f.csv", seed=2**32 - 1, test_fraction=0.5)
    assert sorted(s.y_test.tolist()) == sorted(s.y_train.tolist()) == [0, 1]


# --- inputs: labels read for a trained model ---------------------------------------------


def test_a_class_named_like_a_missing_marker_is_a_label_in_predict(tmp_path):
    from nnjax.inputs import read_inputs

    path = _csv(tmp_path, "a,target\n1,NA\n2,b\n3,NA\n")
    got = read_inputs(
        path, n_features=1, feature_names=("a",), label_names=("NA", "b"), target="target"
    )
    assert got.y.tolist() == [0, 1, 0]
    assert got.X.tolist() == [[1.0], [2.0], [3.0]]


def test_array_labels_that_differ_by_spaces_keep_their_own_classes_in_predict(tmp_path):
    from nnjax.inputs import read_inputs

    path = tmp_path / "p.npz"
    np.savez(path, X=np.zeros((3, 1)), y=np.array([" a", "a", "a "]))
    got = read_inputs(path, n_features=1, label_names=(" a", "a"))
    assert got.y.tolist() == [0, 1, 1]  # 'a ' is no class: matched stripped, as 'a'


def test_an_array_label_of_spaces_around_a_missing_marker_is_missing(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((3, 1)), y=np.array(["a", " NA", "b"]))
    with pytest.raises(ValueError) as e:
        read(path)
    assert str(e.value) == f"{path}: y: label at row 1 is missing (' NA')"


# --- splits and split_own: the sizes by hand ---------------------------------------------


def test_a_numpy_integer_test_size_is_a_count_not_a_fraction():
    from nnjax.splits import split_indices

    train, test = split_indices(np.array([0, 1] * 5), np.int64(2), seed=0)
    assert (len(train), len(test)) == (8, 2)
    assert sorted(np.r_[train, test].tolist()) == list(range(10))


def test_two_dimensional_labels_are_stratified_by_whole_rows():
    """Rows (1, 12) and (11, 2) are two classes (joined as '112' they were one): a test part
    of 2 holds one of each, whatever the seed."""
    from nnjax.splits import train_test_split

    y = np.array([[1, 12], [11, 2]] * 3)
    for seed in range(8):
        *_, y_test = train_test_split(np.arange(6), y, 2, seed)
        assert sorted(map(tuple, y_test.tolist())) == [(1, 12), (11, 2)], seed


def test_predict_names_the_last_column_as_the_likely_labels_for_a_model_of_arrays(tmp_path):
    """A model of 2 features (no column names) and a file of 3 columns, none named target:
    the last column is the one asked about; with 2 columns too many, no guess is made."""
    from nnjax.inputs import read_inputs

    path = _csv(tmp_path, "a,b,label\n1,2,x\n")
    with pytest.raises(ValueError) as e:
        read_inputs(path, n_features=2)
    assert str(e.value) == (
        f"{path}: 3 feature columns (a, b, label), but the model takes 2 features (is "
        "'label' the labels? give --target label)"
    )
    with pytest.raises(ValueError) as e:
        read_inputs(path, n_features=1)
    assert str(e.value).endswith("but the model takes 1 feature")


def test_names_that_are_not_all_ints_are_matched_as_text(tmp_path):
    """A Python caller's names (0, 0.5): matched as text, '0.5' is class 1 (read as an
    integer label it was no class)."""
    from nnjax.inputs import read_inputs

    path = _csv(tmp_path, "a,target\n1,0.5\n2,0\n")
    names = (0, 0.5)
    got = read_inputs(path, n_features=1, feature_names=("a",), label_names=names, target="target")
    assert got.y.tolist() == [1, 0]


def test_a_quote_left_open_in_a_file_of_cr_line_endings_is_named(tmp_path):
    """Old Mac line endings ('\\r' alone): the open quote takes in line 5, and is named."""
    path = tmp_path / "cr.csv"
    path.write_bytes(b'a,target\r1,x\r2,y\r3,"z\r4,y\r')
    with pytest.raises(ValueError) as e:
        read_csv(path)
    assert str(e.value) == (
        f"{path}: column 'target', line 4: label 'z\\r4,y' runs over 2 lines: a quote left "
        "open? (it takes in the rows after it); close or remove it"
    )
