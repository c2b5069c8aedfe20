"""Your own data: CSV, .npz and .npy pairs read with their label names; every bad input is
one line and exit 2 naming the file and the column (and the first bad row); `nnjax train
--data` trains on it and records the names and the standardisation statistics."""

import json
import re
import warnings
from argparse import Namespace

import numpy as np
import pytest

from nnjax import datafile
from nnjax.cli import main


def _write(path, text: str):
    path.write_text(text)
    return path


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnjax train: error: "), lines[0]
    return lines[0]


def test_csv_with_string_labels_keeps_the_names_sorted(tmp_path):
    f = _write(tmp_path / "pets.csv", "w,h,kind\n1,2,dog\n3,4,cat\n\n5,6.5,dog\n7,8,emu\n")
    d = datafile.read(f, target="kind")
    assert d.label_names == ("cat", "dog", "emu") and d.feature_names == ("w", "h")
    np.testing.assert_array_equal(d.y, [1, 0, 1, 2])  # the blank line is skipped
    assert [d.label_names[k] for k in d.y] == ["dog", "cat", "dog", "emu"]
    np.testing.assert_array_equal(d.X, np.array([[1, 2], [3, 4], [5, 6.5], [7, 8]], np.float32))
    assert d.X.dtype == np.float32 and d.y.dtype == np.int32 and d.name == "pets.csv"


def test_integer_labels_keep_their_values_as_names(tmp_path):
    f = _write(tmp_path / "d.csv", "target,x\n7,0.5\n3,1\n7.0,2\n3,3\n")  # 7.0 is 7
    d = datafile.read(f)
    assert d.label_names == (3, 7) and all(type(n) is int for n in d.label_names)
    np.testing.assert_array_equal(d.y, [1, 0, 1, 0])
    np.savez(tmp_path / "d.npz", X=np.arange(8.0).reshape(4, 2), y=np.array([10, -1, 10, -1]))
    assert datafile.read(tmp_path / "d.npz").label_names == (-1, 10)


def test_integer_labels_beyond_2_53_stay_exact_and_distinct(tmp_path):
    """Review: the labels were read through float, so 2**53 + 1 and 2**53 + 3 became one
    class with another's name (three labels, two classes)."""
    ids = [2**53 + 1, 2**53, 2**53 + 3, -(2**63)]
    rows = "".join(f"{i % 2},{ids[i % 4]}\n" for i in range(16))
    d = datafile.read(_write(tmp_path / "ids.csv", "x,target\n" + rows))
    assert d.label_names == tuple(sorted(ids))
    assert [d.label_names[k] for k in d.y] == [ids[i % 4] for i in range(16)]
    for v, want in [("7", 7), (" -3 ", -3), ("2.0", 2), ("2e3", 2000), (str(2**70), 2**70),
                    ("1e30", None), ("0.5", None), ("inf", None), ("x", None)]:  # fmt: skip
        assert datafile.integer_label(v) == want, v


def test_a_label_written_with_a_fraction_beyond_2_53_is_not_rounded_into_a_class(tmp_path):
    """Review: "9007199254740993.0" was read through float, which rounds it to 2**53, inside
    the bound: the example got the label 9007199254740992, silently."""
    rows = "0,9007199254740993.0\n1,0\n"
    with pytest.raises(ValueError, match=r"line 2: label '9007199254740993.0' is not an exact"):
        datafile.read(_write(tmp_path / "big.csv", "x,target\n" + rows))
    for v, want in [("9007199254740992.0", 2**53), ("-9007199254740993e0", None),
                    ("1e999999999", None), ("1e-999999999", None), ("0.1e1", 1)]:  # fmt: skip
        assert datafile.integer_label(v) == want, v
    with pytest.raises(ValueError, match=r"label '1e-999' is not a class \(labels are"):
        datafile.read(_write(tmp_path / "tiny.csv", "x,target\n0,1e-999\n1,0\n"))


def test_an_empty_target_is_refused_not_read_as_the_default_column(tmp_path):
    """Review: --target '' trained on the column 'target', silently."""
    f = _write(tmp_path / "d.csv", "a,target\n1,0\n2,1\n")
    with pytest.raises(ValueError, match=r"d.csv: no column '' \(give the label column"):
        datafile.read(f, target="")


def test_npz_and_npy_pair_read_the_same_data(tmp_path):
    X = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array(["b", "a", "b", "a", "a", "b"])
    np.savez(tmp_path / "d.npz", X=X, y=y, extra=np.zeros(2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    a = datafile.read(tmp_path / "d.npz")
    b = datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    np.testing.assert_array_equal(a.X, X.astype(np.float32))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(a.y, b.y)
    assert a.label_names == b.label_names == ("a", "b") and a.feature_names is None


# (file name, content or a writer, extra options, what the one line must say); the line
# must also name the file
CSV = "a,b,target\n"
BAD_INPUTS = [
    ("miss.csv", CSV + "1,2,x\n3,,y\n", [], "column 'b', line 3: missing value ''"),
    ("na.csv", CSV + "1,2,x\nNA,4,y\n", [], "column 'a', line 3: missing value 'NA'"),
    ("nolabel.csv", CSV + "1,2,x\n3,4,\n", [], "column 'target', line 3: missing label"),
    ("text.csv", "a,color,target\n1,2,x\n3,red,y\n", [], "column 'color', line 3: 'red' is not"),
    ("inf.csv", CSV + "1,inf,x\n3,4,y\n", [], "column 'b', line 2: the value inf is infinite"),
    ("big.csv", CSV + "1,1e39,x\n3,4,y\n", [], "column 'b', line 2: the value 1e+39 exceeds"),
    # review: '-nan' was read as a number and reported as "the value nan is infinite"
    ("minusnan.csv", CSV + "1,2,x\n-nan,4,y\n", [], "column 'a', line 3: missing value '-nan'"),
    # review: 1e30 became the class named 1000000000000000019884624838656
    ("hugelabel.csv", CSV + "1,2,1e30\n3,4,1\n", [], "label '1e30' is not an exact integer"),
    (
        "notarget.csv",
        "a,b,label\n1,2,x\n",
        [],
        "no column 'target' (give the label column with --target); columns: a, b, label",
    ),  # fmt: skip
    ("other.csv", CSV + "1,2,x\n", ["--target", "kind"], "no column 'kind'"),
    ("single.csv", CSV + "1,2,x\n3,4,x\n5,6,x\n", [], "column 'target': a single class ('x')"),
    ("ragged.csv", CSV + "1,2,x\n3,4\n", [], "line 3: 2 fields, but the header has 3"),
    ("empty.csv", "", [], "empty file"),
    ("header.csv", CSV, [], "a header and no data rows"),
    ("noname.csv", ",a,target\n0,1,x\n", [], "column 1 has no name"),
    ("twice.csv", "a,a,target\n0,1,x\n", [], "repeats column names ['a']"),
    ("semi.csv", "a;b;target\n1;2;x\n", [], "looks separated by ';'"),
    ("frac.csv", CSV + "1,2,0.5\n3,4,1\n", [], "column 'target', line 2: label '0.5' is not a"),
    ("binary.csv", b"\xff\xfe\x00a,b\n", [], "not a UTF-8 text file"),
    ("lonely.csv", CSV + "1,2,x\n3,4,x\n5,6,y\n", [], "class 'y' has only 1 of the 3 examples"),
    ("data.txt", "a,target\n1,x\n", [], "unknown data format '.txt'; valid: .csv, .npz, .npy"),
    ("fake.npz", "a,b\n1,2\n", [], "fake.npz: not an .npz archive (not a zip archive)"),
    (
        "keys.npz",
        {"x": np.zeros((3, 2)), "labels": np.zeros(3)},
        [],
        "must hold arrays named 'X' and 'y'; it holds 'x', 'labels'",
    ),  # fmt: skip
    (
        "nan.npz",
        {"X": np.array([[0.0, 1], [np.nan, 2]]), "y": np.array([0, 1])},
        [],
        "nan.npz: X: missing value (NaN) at row 1, column 0",
    ),  # fmt: skip
    (
        "ylen.npz",
        {"X": np.zeros((3, 2)), "y": np.array([0, 1])},
        [],
        "ylen.npz: y has 2 labels for the 3 examples",
    ),  # fmt: skip
    ("onehot.npz", {"X": np.zeros((2, 2)), "y": np.eye(2)}, [], "y.argmax(1)"),
    ("img.npz", {"X": np.zeros((2, 3, 3)), "y": np.array([0, 1])}, [], "reshape it to (2, 9)"),
    # review: X of shape () ended in an IndexError traceback
    ("scalar.npz", {"X": np.array(5.0), "y": np.array([0, 1])}, [], "X is a single number"),
    (
        "hugey.npz",
        {"X": np.zeros((2, 1)), "y": np.array([0.0, 2.0**60])},
        [],
        "label at row 1 is 1.15292e+18, which is not an exact integer",
    ),  # fmt: skip
    (
        "strX.npz",
        {"X": np.array([["a"], ["b"]]), "y": np.array([0, 1])},
        [],
        "X has dtype <U1: features must be numbers",
    ),  # fmt: skip
    ("X.npy", np.zeros((3, 2)), [], "X.npy holds the features only: give the labels file"),
    # review: an object array got NumPy's "Object arrays cannot be loaded when allow_pickle=False"
    (
        "objX.npz",
        {"X": np.zeros((2, 1)).astype(object), "y": np.array([0, 1])},
        [],
        "objX.npz: array X holds Python objects (dtype object), which nnjax does not load",
    ),  # fmt: skip
    (
        "objy.npz",
        {"X": np.zeros((2, 1)), "y": np.array(["a", 1], dtype=object)},
        [],
        "objy.npz: array y holds Python objects (dtype object), which nnjax does not load",
    ),  # fmt: skip
    (
        "objX.npy",
        np.zeros((2, 1)).astype(object),
        ["--labels", "objX.npy"],
        "objX.npy holds Python objects (dtype object)",
    ),  # fmt: skip
    (
        "t.npz",
        {"X": np.zeros((2, 1)), "y": np.array([0, 1])},
        ["--target", "y"],
        "--target names a CSV column; ",
    ),  # fmt: skip
    ("l.csv", CSV + "1,2,x\n", ["--labels", "l.csv"], "--labels is for .npy features"),
]


def _make(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    return path


@pytest.mark.parametrize("name, content, extra, reason", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_data_is_one_line_naming_the_file_and_exit_2(
    tmp_path, capsys, name, content, extra, reason
):
    path = _make(tmp_path, name, content)
    extra = [str(tmp_path / e) if e.endswith((".csv", ".npy")) else e for e in extra]
    assert main(["train", "--data", str(path), "--epochs", "1", *extra]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert reason in line and name in line, line


def test_a_path_that_is_not_a_regular_file_is_named_for_what_it_is(tmp_path):
    (tmp_path / "runs").mkdir()
    for path, what in [
        (tmp_path / "runs", "a directory, not a file"),  # no extension: not 'unknown format'
        ("/dev/null", "not a regular file (a device or a pipe)"),
        (tmp_path / "gone", "no such file"),
    ]:
        with pytest.raises(OSError, match=rf"^{path}: {re.escape(what)}$"):
            datafile.check_paths(path)  # an OSError (a PathError): the CLI exits 3
    assert main(["train", "--data", str(tmp_path / "gone.csv")]) == 3


def test_npy_labels_must_match_and_be_labels(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.zeros((4, 2)))
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0, np.nan, 1.0]))
    argv = ["train", "--data", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    assert "y.npy: label at row 2 is missing (NaN)" in _one_error_line(capsys.readouterr().err)
    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    assert main(argv) == 2
    assert "y.npy has 3 labels for the 4 examples of " in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--data", "d.csv", "--dataset", "moons"], "give one of them"),
        (["--target", "y"], "--target: for your own data file (--data) only"),
        (["--dataset", "toy", "--val-split", "0.2"], "--val-split: toy is too small to split"),
        (["--dataset", "xor", "--test-split", "0.5"], "--test-split: xor is too small"),
        (["--val-split", "0.5", "--test-split", "0.5"], "nothing is left to train on"),
        (["--val-split", "0.9"], "--val-split 0.9 + --test-split 0.2 >= 1"),
    ],
)
def test_data_options_are_checked_before_the_run(argv, reason, tmp_path, capsys, monkeypatch):
    from nnjax.commands import train

    _write(tmp_path / "d.csv", "a,target\n1,0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "run", lambda args: pytest.fail("the run started"))
    assert main(["train", *argv]) == 2
    assert reason in _one_error_line(capsys.readouterr().err)


def _pets(tmp_path, n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    kind = np.where(X[:, 0] > 0, "dog", "cat")
    kind[::7] = "emu"
    rows = "".join(f"{a:.4f},{b:.4f},{k}\n" for (a, b), k in zip(X, kind))
    return _write(tmp_path / "pets.csv", "x1,x2,kind\n" + rows), kind


def test_train_on_a_csv_records_label_names_and_statistics(tmp_path, capsys):
    path, kind = _pets(tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--data", str(path), "--target", "kind", "--val-split", "0.25"]
    assert main([*argv, "--epochs", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "pets.csv: 22 train / 10 val / 8 test, 2 features, 3 classes (cat, dog, emu)" in text
    assert "| val loss" in text and "test loss" in text  # the final line
    assert "val acc" in captured.err  # the progress line watches the validation set
    hist = json.loads((out / "history.json").read_text())
    rec = hist["data"]
    assert rec["label_names"] == ["cat", "dog", "emu"] and rec["feature_names"] == ["x1", "x2"]
    assert (rec["n_train"], rec["n_val"], rec["n_test"]) == (22, 10, 8)
    assert {"val_loss", "val_accuracy"} <= set(hist["epochs"])  # every epoch: validation,
    assert not any(k.startswith("test") for k in hist["epochs"])  # the test set at the end only
    assert 0.0 <= rec["test"]["accuracy"] <= 1.0
    # the statistics are the training split's: refit them from the same split
    from nnjax import data
    from nnjax.commands.train_data import load_data

    args = Namespace(data=str(path), target="kind", labels=None, val_split=0.25, test_split=None)
    ds = load_data(Namespace(**vars(args), data_seed=0))
    assert data.Standardizer.from_dict(rec["standardizer"]).to_dict() == rec["standardizer"]
    np.testing.assert_array_equal(rec["standardizer"]["mean"], ds.standardizer.mean)
    assert sorted(ds.label_names[k] for k in np.concatenate([ds.y_train, ds.y_val, ds.y_test])) \
        == sorted(kind)  # fmt: skip


def test_a_small_file_trains_full_batch_by_default(tmp_path, capsys):
    """The --data default batch (32) is capped at the training examples; an explicit
    --batch-size larger than them is refused."""
    path, _ = _pets(tmp_path, n=21)
    assert main(["train", "--data", str(path), "--target", "kind", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "16 train / 5 test" in out and "batch=full" in out
    argv = ["train", "--data", str(path), "--target", "kind", "--batch-size", "17"]
    assert main(argv) == 2
    assert "--batch-size 17 exceeds the 16 training examples of pets.csv" in capsys.readouterr().err


def test_bad_data_fails_before_jax_starts(tmp_path):
    """The file is read and split with NumPy and scikit-learn only, before JAX is imported."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    path = _write(tmp_path / "bad.csv", "a,target\n1,x\n,y\n")
    code = (
        "import sys\nfrom nnjax.cli import main\n"
        f"rc = main(['train', '--data', {str(path)!r}])\nprint(rc, 'jax' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert "bad.csv: column 'a', line 3: missing value" in proc.stderr


def test_a_csv_without_its_header_row_says_so(tmp_path):
    """Review: a headerless file's first example was read as the header, and the error
    spoke of repeated or missing column names only."""
    f = tmp_path / "noheader.csv"
    f.write_text("0.5,1.5,0\n2.5,3.5,1\n4.5,5.5,0\n")
    with pytest.raises(ValueError, match=r"no column 'target'.*line 1 is all numbers: is the "
                       r"header row missing\?"):  # fmt: skip
        datafile.read_csv(f)
    f.write_text("0,0,1\n2,3,1\n")
    with pytest.raises(ValueError, match=r"repeats column names \['0'\]; line 1 is all numbers"):
        datafile.read_csv(f)
    f.write_text("x,x,target\n1,2,0\n")  # a real header: no hint
    with pytest.raises(ValueError, match=r"repeats column names \['x'\]$"):
        datafile.read_csv(f)


def test_predicting_on_a_numeric_first_row_warns_it_is_read_as_the_header(tmp_path):
    """A model without feature names takes any header of the right width: a headerless file
    lost its first example silently. pandas' default names 0..d-1 do not warn."""
    from nnjax.inputs import read_inputs

    f = tmp_path / "x.csv"
    f.write_text("0.25,1.5,2.75\n3.5,4.25,5.5\n6.75,7.5,8.25\n")
    with pytest.warns(UserWarning, match=r"x.csv: line 1 \(0.25, 1.5, 2.75\) is all numbers "
                      "and is read as the header, not as an example"):  # fmt: skip
        got = read_inputs(f, n_features=3)
    assert got.X.shape == (2, 3)
    f.write_text("0,1,2\n3.5,4.25,5.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_inputs(f, n_features=3).X.shape == (1, 3)
