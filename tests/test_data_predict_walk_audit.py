"""A fresh user's walk through their own data files and ``nnjax predict``: damaged or forged
array files are refused in one line naming the file, and the predictions of a saved model
agree with its params applied by hand in NumPy."""

import csv
import io
import zipfile

import numpy as np
import pytest

import nnjax
from nnjax import datafile, inputs
from nnjax.cli import main
from nnjax.data import Standardizer
from nnjax.saved import SavedModelError


def _npy_header(shape, descr="<f8") -> bytes:
    """A version 1.0 .npy header (magic, length, dict) claiming ``shape``, without data."""
    head = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    head = head + " " * (118 - len(head)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


FORGED = (100_000_000_000, 2)  # 1.6 TB of float64 claimed by a header and 64 bytes of data


def test_a_forged_npy_header_is_named_not_an_out_of_memory(tmp_path):
    # was: MemoryError "Unable to allocate 1.46 TiB" (CLI: "out of memory", no file named)
    (tmp_path / "X.npy").write_bytes(_npy_header(FORGED) + bytes(64))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match=r"X\.npy: its header claims .*\(100000000000, 2\).*"):
        datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    with pytest.raises(ValueError, match="holds 64 bytes of data: it is truncated or damaged"):
        inputs.read_inputs(tmp_path / "X.npy", n_features=2)


def _refused_by_both_readers(path, want: str, n_features: int) -> None:
    """Training's reader and predict's both refuse ``path`` with a message matching ``want``."""
    with pytest.raises(ValueError, match=want):
        datafile.read(path)
    with pytest.raises(ValueError, match=want):
        inputs.read_inputs(path, n_features=n_features)


def test_a_forged_member_of_an_npz_archive_is_named(tmp_path):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", _npy_header(FORGED) + bytes(64))
        z.writestr("y.npy", _npy(np.array([0, 1])))
    want = r"^\S*d\.npz: array X: its header claims an array of shape \(100000000000, 2\)"
    _refused_by_both_readers(path, want, n_features=2)


def test_a_truncated_labels_file_says_how_much_is_missing(tmp_path):
    np.save(tmp_path / "X.npy", np.ones((6, 2)))
    (tmp_path / "y.npy").write_bytes(_npy(np.arange(6) % 2)[:-8])
    with pytest.raises(ValueError, match=r"y\.npy: its header claims .*\(48 bytes\).* 40 bytes"):
        datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")


@pytest.mark.parametrize("member", ["X", "X.npy"])
def test_an_npz_member_that_is_no_array_is_named(tmp_path, member):
    # was: AttributeError: 'bytes' object has no attribute 'ndim' (NumPy hands back the raw
    # bytes of a member without the .npy magic string)
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, b"1,2,3\n4,5,6\n")
        z.writestr("y.npy", _npy(np.array([0, 1])))
    _refused_by_both_readers(path, r"d\.npz: X in the archive is not a \.npy array", 3)


def test_cli_refuses_a_forged_archive_in_one_line(tmp_path, capsys):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", _npy_header(FORGED) + bytes(64))
        z.writestr("y.npy", _npy(np.array([0, 1])))
    assert main(["train", "--data", str(path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "d.npz: array X: its header claims" in err
    assert "out of memory" not in err


def test_sound_arrays_still_read_exactly(tmp_path):
    X = np.random.default_rng(0).normal(size=(7, 3))
    np.savez_compressed(tmp_path / "d.npz", X=X, y=np.arange(7) % 2)
    d = datafile.read(tmp_path / "d.npz")
    np.testing.assert_array_equal(d.X, X.astype(np.float32))
    np.save(tmp_path / "X.npy", X[:, 0])
    np.save(tmp_path / "y.npy", np.array(["a", "b"] * 3 + ["a"]))
    d = datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    assert d.X.shape == (7, 1) and d.label_names == ("a", "b")


def _saved(tmp_path):
    """A saved mlp 3 -> 4 -> 3 with known params, statistics and names (no training)."""
    rng = np.random.default_rng(1)
    model = nnjax.mlp([4, 3], activation="tanh")
    params = [
        {"W": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=4).astype("f4")},
        {},
        {"W": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=3).astype("f4")},
    ]
    std = Standardizer(np.array([1.0, -2.0, 0.5], "f4"), np.array([2.0, 0.5, 3.0], "f4"))
    nnjax.save(
        tmp_path / "m", model, params, standardizer=std, label_names=["ant", "bee", "cow"],
        feature_names=["x1", "x2", "x3"], target="kind",
    )  # fmt: skip
    return params, std


def _forward(params, std, X):
    Z = (X.astype(np.float32) - std.mean) / std.std
    h = np.tanh(Z @ params[0]["W"] + params[0]["b"])
    z = (h @ params[2]["W"] + params[2]["b"]).astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    return z, p / p.sum(1, keepdims=True)


def test_predict_matches_the_params_applied_by_hand(tmp_path, capsys):
    params, std = _saved(tmp_path)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3)) * 3
    kinds = np.array(["ant", "bee", "cow"])[rng.integers(0, 3, 40)]
    with open(tmp_path / "d.csv", "w", newline="") as f:  # columns in another order
        w = csv.writer(f)
        w.writerow(["kind", "x3", "x1", "x2"])
        for x, k in zip(X, kinds):
            w.writerow([k, repr(float(x[2])), repr(float(x[0])), repr(float(x[1]))])
    out = tmp_path / "p.csv"
    argv = ["predict", str(tmp_path / "m"), "--data", str(tmp_path / "d.csv"), "--proba"]
    assert main(argv + ["--out", str(out)]) == 0
    z, p = _forward(params, std, X)
    got = list(csv.DictReader(open(out)))
    names = ["ant", "bee", "cow"]
    assert [r["prediction"] for r in got] == [names[i] for i in z.argmax(1)]
    assert [int(r["row"]) for r in got] == list(range(2, 42))
    proba = np.array([[float(r[f"p_{n}"]) for n in names] for r in got])
    assert np.abs(proba - p).max() < 1e-5
    right = int(np.sum(np.array(names)[z.argmax(1)] == kinds))
    assert f"accuracy {right / 40:.4f} ({right}/40)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "header, replaced",
    [
        ("row,prediction_by_hand,notes", False),  # was replaced: it starts 'row,prediction'
        ("row,predictions", False),
        ("row,prediction,label,notes", False),  # predictions with the user's column added
        ("row,prediction", True),
        ("\ufeffrow,prediction,label,p_ant,p_bee,p_cow", True),  # as Excel keeps it
    ],
)
def test_out_replaces_only_a_file_of_predictions(tmp_path, capsys, header, replaced):
    _saved(tmp_path)
    (tmp_path / "d.csv").write_text("x1,x2,x3\n1,2,3\n")
    out = tmp_path / "out.csv"
    out.write_text(header + "\r\n1,mine\r\n", encoding="utf-8")
    argv = ["predict", str(tmp_path / "m"), "--data", str(tmp_path / "d.csv"), "--out", str(out)]
    assert main(argv) == (0 if replaced else 2)
    text = out.read_text(encoding="utf-8")
    if replaced:
        assert text.startswith("row,prediction\n2,")
    else:
        assert text.startswith(header) and "add --overwrite" in capsys.readouterr().err


def test_a_model_json_nested_too_deeply_is_named(tmp_path, capsys):
    # was: a RecursionError traceback from json's decoder (exit 1)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "d.csv").write_text("x1,x2,x3\n1,2,3\n")
    assert main(["predict", str(tmp_path / "m"), "--data", str(tmp_path / "d.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("model.json: not valid JSON (nested too deeply): damaged")
    with pytest.raises(SavedModelError, match="nested too deeply"):
        nnjax.load(tmp_path / "m")


def test_a_quote_left_open_in_the_label_column_is_refused(tmp_path, capsys):
    # was: rows 3 and 4 swallowed into the label 'cat\n3,4,dog\n5,6,cat', trained on silently
    path = tmp_path / "d.csv"
    path.write_text('a,b,target\n1,2,"cat\n3,4,dog\n5,6,cat"\n7,8,dog\n9,10,cat\n11,12,dog\n')
    want = r"d\.csv: column 'target', line 2: label 'cat\\n3,4,dog\\n5,6,cat' runs over 3 lines"
    with pytest.raises(ValueError, match=want):
        datafile.read(path)
    assert main(["train", "--data", str(path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a quote left open?" in err


def _label_file(tmp_path, cells) -> str:
    path = tmp_path / "p.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{-i},{c}\n" for i, c in enumerate(cells)))
    return str(path)


@pytest.mark.parametrize("cells", [["", "", ""], ["NA", "", "?"]])
def test_a_label_column_left_empty_is_read_as_no_labels(tmp_path, cells):
    """Every label cell missing: the file is unlabelled (it was "label '' is not one of the
    model's classes"); the features are read as usual."""
    got = inputs.read_inputs(
        _label_file(tmp_path, cells), n_features=2, feature_names=("a", "b"),
        label_names=("cat", "dog"), trained_target="label",
    )  # fmt: skip
    assert got.y is None
    np.testing.assert_array_equal(got.X, [[0, 0], [1, -1], [2, -2]])


def test_one_missing_label_among_labels_names_its_line(tmp_path):
    path = _label_file(tmp_path, ["cat", "", "dog"])
    with pytest.raises(ValueError, match=r"p.csv: column 'label', line 3: missing label ''"):
        inputs.read_inputs(
            path, n_features=2, feature_names=("a", "b"), label_names=("cat", "dog"),
            trained_target="label",
        )  # fmt: skip
    labelled = _label_file(tmp_path, ["cat", "dog", "dog"])
    got = inputs.read_inputs(
        labelled, n_features=2, feature_names=("a", "b"), label_names=("cat", "dog"),
        trained_target="label",
    )  # fmt: skip
    np.testing.assert_array_equal(got.y, [0, 1, 1])
