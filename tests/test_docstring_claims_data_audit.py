"""Docstring claims of nnjax's data side (data, splits, standardizer, datafile*) and of its
saved models (saved, predictor), held against NumPy oracles, scikit-learn and the files
written.

Each test quotes the claim it checks. Four were defects: an array of bytes labels that are
not UTF-8 raised the decoder's own message, naming neither the file nor the row, where the
datafile module promises a ValueError naming both; the datafile module said the label rules
are the same for a CSV column and a string array, but an array's names keep their spaces (a
CSV cell's are stripped); ``ceil(test_fraction * n)`` read as exact while the product is
taken in float (0.07 of 100 holds out 8, as scikit-learn does); and saved's list of
model.json's fields left out the output shape and the label column (``target``).
"""

import json
import math
import re

import numpy as np
import pytest

from nnjax import data, datafile, datafile_labels, saved, splits
from nnjax.standardizer import Standardizer


def _doc(obj) -> str:
    return " ".join(obj.__doc__.split())


# --- nnjax.standardizer -------------------------------------------------------------------


def test_standardizer_is_ddof_0_and_a_constant_feature_is_only_centred():
    # "std is the divisor: the split's standard deviation (ddof 0), or 1 for a feature that
    # is constant there ... which is then only centred on that value"
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(40, 3)).astype(np.float32)
    X[:, 2] = np.float32(0.1)  # float32 rounding gives a std of noise, not 0
    s = Standardizer.fit(X)
    wide = X.astype(np.float64)
    np.testing.assert_allclose(s.std[:2], wide[:, :2].std(axis=0, ddof=0), rtol=1e-5)
    np.testing.assert_allclose(s.mean[:2], wide[:, :2].mean(axis=0), rtol=1e-5)
    assert s.std[2] == 1.0 and s.mean[2] == np.float32(0.1)
    assert s.mean.dtype == s.std.dtype == np.float32
    Z = s.transform(np.array([[3.0, 3.0, 0.101]], np.float32))
    assert Z.dtype == np.float32
    assert Z[0, 2] == pytest.approx(0.001, abs=1e-6)  # centred, not blown up
    back = Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(back.mean, s.mean)
    np.testing.assert_array_equal(back.std, s.std)


def test_standardize_uses_the_training_statistics_for_every_array():
    # "(X - mean) / std with the training split's mean and std, for every array given"
    X_tr = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    X_te = np.array([[6.0, 9.0]])
    Z_tr, Z_te = data.standardize(X_tr, X_te)
    sd = np.sqrt(8 / 3)  # ddof 0 of 0, 2, 4
    np.testing.assert_allclose(Z_te, [[(6.0 - 2.0) / sd, 9.0 - 5.0]])
    np.testing.assert_allclose(Z_tr[:, 0], [-2 / sd, 0.0, 2 / sd])


# --- nnjax.data and nnjax.splits ----------------------------------------------------------


def test_load_splits_without_validation_is_exactly_load_and_val_comes_from_train():
    # "without a validation split the arrays are exactly load's"; "val_fraction (a fraction of
    # the whole dataset, taken from load's training split)"; test standardised with train's
    a = data.load("digits", seed=3)
    b = data.load_splits("digits", seed=3)
    for x, y in [(a.X_train, b.X_train), (a.X_test, b.X_test), (a.y_test, b.y_test)]:
        np.testing.assert_array_equal(x, y)
    assert len(a.y_test) == math.ceil(0.2 * 1797) == 360
    assert a.X_train.dtype == np.float32 and a.y_train.dtype == np.int32
    c = data.load_splits("digits", seed=3, val_fraction=0.1)
    assert (len(c.y_val), len(c.y_train), len(c.y_test)) == (180, 1797 - 360 - 180, 360)
    raw = data.load("digits", seed=3, standardized=False)
    np.testing.assert_allclose(c.X_test, c.standardizer.transform(raw.X_test), atol=1e-6)
    np.testing.assert_array_equal(c.y_test, raw.y_test)


def test_split_counts_are_the_float_ceil_scikit_learn_takes():
    # split_own / train_test_split: "ceil(test_fraction * n)", a float product: 0.07 * 100 is
    # 7.000000000000001, so 8 are held out (the docstrings read as if 7)
    X, y = np.arange(200.0).reshape(100, 2), np.arange(100) % 2
    assert 0.07 * 100 > 7 and splits.held_out(100, 0.07) == 8
    assert len(data.train_test_split(X, y, 0.07)[1]) == 8
    sp = data.split_own(X, y, (0, 1), name="f", test_fraction=0.07, val_fraction=0.07)
    assert (len(sp.y_test), len(sp.y_val), len(sp.y_train)) == (8, 8, 84)
    model_selection = pytest.importorskip("sklearn.model_selection")
    want = model_selection.train_test_split(X, y, test_size=0.07, random_state=0, stratify=y)
    got = data.train_test_split(X, y, 0.07, seed=0)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)
    assert "0.07 * 100" in _doc(data.train_test_split)
    assert "0.07 * 100 holds out 8" in _doc(data.split_own)


def test_a_stratified_split_refuses_a_class_of_one_example_by_its_name():
    # split_own: "a stratified split needs at least 2 of each class"
    X, y = np.arange(10.0)[:, None], np.array([0] * 5 + [1] * 4 + [2])
    with pytest.raises(ValueError) as e:
        data.split_own(X, y, ("a", "b", "lone"), name="f.csv")
    assert str(e.value) == (
        "f.csv: the test split (0.2): class 'lone' has only 1 of the 10 examples left to split;"
        " a stratified split needs at least 2 of each class"
    )


# --- nnjax.datafile and nnjax.datafile_labels ----------------------------------------------


def test_label_encodings_as_the_module_says(tmp_path):
    # "{3, 7} become classes 0, 1 named 3 and 7"; "'1', '1.0' and '01' are one class, named
    # 1"; "any other text makes every label a string name, sorted as strings ('10' < '2')"
    (tmp_path / "a.csv").write_text("x,target\n1,3\n2,7\n3,7.0\n")
    (tmp_path / "b.csv").write_text("x,target\n1,1\n2,1.0\n3,01\n4,2\n")
    (tmp_path / "c.csv").write_text("x,target\n1,x\n2,10\n3,2\n4, x \n")
    got = {f: datafile.read(tmp_path / f) for f in ("a.csv", "b.csv", "c.csv")}
    assert got["a.csv"].label_names == (3, 7) and got["a.csv"].y.tolist() == [0, 1, 1]
    assert got["b.csv"].label_names == (1, 2) and got["b.csv"].y.tolist() == [0, 0, 0, 1]
    assert got["c.csv"].label_names == ("10", "2", "x")
    assert got["c.csv"].y.tolist() == [2, 0, 1, 2]  # ' x ' stripped: the class 'x'
    assert got["a.csv"].X.dtype == np.float32 and got["a.csv"].y.dtype == np.int32


def test_array_string_names_keep_their_spaces_and_the_docstring_says_so(tmp_path):
    # the module said the rules "are the same for a CSV column and for a string array y";
    # a CSV cell is stripped, an array's name is not (' a' and 'a': two classes, by design)
    np.savez(tmp_path / "s.npz", X=np.arange(4.0), y=np.array(["a", " a", "b", " 1"]))
    assert datafile.read(tmp_path / "s.npz").label_names == (" 1", " a", "a", "b")
    np.savez(tmp_path / "n.npz", X=np.arange(4.0), y=np.array([" 1", "1.0", "01", "2"]))
    assert datafile.read(tmp_path / "n.npz").label_names == (1, 2)  # numbers: spaces ignored
    assert "an array's string names are kept as written" in _doc(datafile)
    assert "not stripped" in _doc(datafile_labels.encode_array_labels)


def test_bytes_labels_that_are_not_utf8_are_named_by_file_and_row(tmp_path):
    # "Every bad input is a ValueError naming the file, the column (or array) and the first
    # bad row": b'\xff' raised "'utf-8' codec can't decode byte 0xff in position 0"
    path = tmp_path / "s.npz"
    np.savez(path, X=np.arange(3.0), y=np.array([b"a", b"\xffx", b"b"]))
    with pytest.raises(ValueError) as e:
        datafile.read(path)
    assert str(e.value) == (
        f"{path}: y: label at row 1 is bytes b'\\xffx', not UTF-8 text (byte 0xff): save the "
        "labels as UTF-8 strings or as integers"
    )
    np.save(tmp_path / "X.npy", np.arange(3.0))
    np.save(tmp_path / "y.npy", np.array([b"a", b"b", b"c\xe9"]))
    with pytest.raises(ValueError, match=r"y\.npy: label at row 2 is bytes b'c\\xe9'"):
        datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    np.save(tmp_path / "y.npy", np.array(["ü".encode(), b"b", b"b"]))  # UTF-8 bytes: read
    got = datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    assert got.label_names == ("b", "ü") and got.y.tolist() == [1, 0, 0]


# --- nnjax.saved and nnjax.predictor --------------------------------------------------------


def test_model_json_holds_the_fields_the_module_lists_and_predict_maps_back(tmp_path):
    # saved: model.json holds "the input and output shapes, ... the label column (target)";
    # predictor: "X' = (X - mean) / std", "predict(X) returns the label names"
    import jax

    import nnjax

    model = nnjax.mlp([3], "tanh")
    _, params = model.init(jax.random.key(0), (-1, 2))
    X = np.array([[1.0, 2.0], [3.0, 5.0], [7.0, 1.0]], np.float32)
    std = Standardizer.fit(X)
    nnjax.save(tmp_path / "m", model, params, standardizer=std, label_names=["b", "a", "c"],
               feature_names=["u", "v"], target="kind")  # fmt: skip
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert set(meta) == {
        "format", "format_version", "nnjax_version", "model", "loss", "label_names",
        "feature_names", "target", "standardizer", "config", "files", "checksum",
    }  # fmt: skip
    assert meta["model"]["output_shape"] == [-1, 3] and meta["target"] == "kind"
    doc = _doc(saved)
    assert "the input and output shapes" in doc and "the label column (``target``)" in doc
    pred = nnjax.load(tmp_path / "m")
    want = (X.astype(np.float64) - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(pred.transform(X), want, rtol=1e-5, atol=1e-6)
    z = pred(X)
    assert pred.predict(X).tolist() == [["b", "a", "c"][k] for k in z.argmax(1)]
    assert re.fullmatch(r"\d+\.\d+.*", meta["nnjax_version"])


def test_predict_names_bytes_labels_that_are_not_utf8_by_file_and_row(tmp_path):
    """nnjax predict's reader (nnjax.inputs) raised the decoder's bare UnicodeDecodeError."""
    from nnjax.inputs import read_inputs

    path = tmp_path / "s.npz"
    np.savez(path, X=np.arange(3.0)[:, None], y=np.array([b"a", b"\xff", b"b"]))
    with pytest.raises(ValueError) as e:
        read_inputs(str(path), n_features=1, label_names=["a", "b"])
    assert str(e.value) == (
        f"{path}: y: label at row 1 is bytes b'\\xff', not UTF-8 text (byte 0xff): save the "
        "labels as UTF-8 strings or as integers"
    )
