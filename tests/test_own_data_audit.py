"""The "your own data" path on the files real users have: Latin-1 and UTF-16 files named by
the line of the first bad byte, Excel's #N/A read as missing, string label arrays under the
same rules as a CSV column, wide files read in linear time, hints for comment lines, a
trailing comma, an open quote and decimal commas; and end to end, train on one CSV, predict
on another with its columns in another order: the model's own predictions, a hand-counted
accuracy."""

import csv
import re

import numpy as np
import pytest

import nnjax
from nnjax import datafile, inputs
from nnjax.cli import main


def _read_error(path, **kw) -> str:
    with pytest.raises(ValueError) as e:
        datafile.read(path, **kw)
    text = str(e.value)
    assert "\n" not in text and str(path) in text, text
    return text


def test_a_latin1_byte_is_named_by_its_line_and_offset_in_the_file(tmp_path):
    # review: the offset was the decoder's, from the start of its last 8 KiB chunk
    # ("at byte 1332" for a byte at 25908), and no line was named
    rows = "".join(f"{i},{i % 7},{'xy'[i % 2]}\n" for i in range(3000))
    raw = ("a,b,target\n" + rows).encode() + "5,6,caf\xe9\n".encode("latin-1")
    path = tmp_path / "late.csv"
    path.write_bytes(raw)
    pos = raw.index(b"\xe9")
    line = raw.count(b"\n", 0, pos) + 1
    assert (pos, line) == (25908, 3002)
    text = _read_error(path)
    assert f"late.csv, line {line}: not a UTF-8 text file (byte 0xe9 at byte 8 of the line" in text
    assert f"byte {pos} of the file" in text
    path.write_bytes(b"\xef\xbb\xbf" + raw)  # a BOM before it: one byte count of 3 more
    assert f"byte {pos + 3} of the file" in _read_error(path)


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "wide_chars.csv"
    path.write_bytes("a,b,target\n1,2,x\n3,4,y\n".encode("utf-16"))
    assert "not a UTF-8 text file (UTF-16, by its byte-order mark)" in _read_error(path)


@pytest.mark.parametrize("cell", ["#N/A", "#n/a", "<NA>", "#NA", "1.#QNAN"])
def test_excel_and_pandas_missing_markers_are_missing_values(tmp_path, cell):
    # review: '#N/A' in the target became a class, and made every label a string
    path = tmp_path / "na.csv"
    path.write_text(f"a,b,target\n1,2,1\n3,4,{cell}\n5,6,0\n")
    assert f"column 'target', line 3: missing label {cell!r}" in _read_error(path)
    path.write_text(f"a,b,target\n1,2,1\n3,{cell},1\n5,6,0\n")
    assert f"column 'b', line 3: missing value {cell!r}" in _read_error(path)
    np.savez(tmp_path / "na.npz", X=np.zeros((3, 1)), y=np.array(["1", cell, "0"]))
    assert f"y: label at row 1 is missing ({cell!r})" in _read_error(tmp_path / "na.npz")


def test_string_label_arrays_follow_the_rules_of_csv_labels(tmp_path):
    # review: '1', '1.0' and '01' in an .npz's y were three string classes ('01', '1',
    # '1.0'), where the same labels in a CSV column are the one class 1
    labels = ["1", "1.0", "01", "2", " 2 ", "2.0"]
    X = np.arange(12.0).reshape(6, 2)
    np.savez(tmp_path / "s.npz", X=X, y=np.array(labels))
    got = datafile.read(tmp_path / "s.npz")
    assert got.label_names == (1, 2)
    np.testing.assert_array_equal(got.y, [0, 0, 0, 1, 1, 1])
    rows = "".join(f"{a:g},{b:g},{t}\n" for (a, b), t in zip(X, labels))
    (tmp_path / "s.csv").write_text("a,b,target\n" + rows)
    from_csv = datafile.read(tmp_path / "s.csv")
    assert from_csv.label_names == got.label_names
    np.testing.assert_array_equal(from_csv.y, got.y)
    np.save(tmp_path / "X.npy", X)  # the .npy pair too, bytes as well as str
    np.save(tmp_path / "y.npy", np.array([s.encode() for s in labels]))
    pair = datafile.read(tmp_path / "X.npy", labels=tmp_path / "y.npy")
    assert pair.label_names == (1, 2)
    np.testing.assert_array_equal(pair.y, got.y)
    np.savez(tmp_path / "f.npz", X=X, y=np.array(["1", "1.5", "2", "1", "2", "1"]))
    assert "y, row 1: label '1.5' is not a class" in _read_error(tmp_path / "f.npz")
    np.savez(tmp_path / "t.npz", X=X, y=np.array(["a", " a", "2", "1", "2", "1"]))
    assert datafile.read(tmp_path / "t.npz").label_names == (" a", "1", "2", "a")  # as text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("# my data\na,b,target\n1,2,x\n3,4,y\n", "line 1, '# my data', is read as the header"),
        ("a,b,target\n1,2,x\n# note\n3,4,y\n", "line 3: 1 fields, but the header has 3 (a comm"),
        ("a,b,target,\n1,2,x\n3,4,y\n", "column 4 has no name in the header (a trailing comma"),
        ('a,b,target\n"1,2,x\n3,4,y\n', "line 2: 1 fields, but the header has 3 (a quoted field"),
        ('a,b,target\n"1,5",2,x\n3,4,y\n', "line 2: '1,5' is not a number; features must be"),
    ],
    ids=["comment-first", "comment-row", "trailing-comma", "open-quote", "decimal-comma"],
)
def test_common_csv_mistakes_get_a_hint(tmp_path, text, reason):
    path = tmp_path / "d.csv"
    path.write_text(text)
    got = _read_error(path)
    assert reason in got, got
    hints = ("comment", "trailing comma", "quote left open", "decimal comma")
    assert any(h in got for h in hints), got


def test_a_multi_line_record_is_named_by_the_line_it_starts_on(tmp_path):
    # a quoted label may hold a line break; the record's first line names it (was its last)
    path = tmp_path / "m.csv"
    path.write_text('a,b,target\n1,2,x\n,4,"two\nlines"\n5,6,x\n')
    assert "column 'a', line 3: missing value ''" in _read_error(path)
    path.write_text('a,b,target\n1,2,"two\nlines"\n3,4,x\n5,,y\n')
    assert "column 'b', line 5: missing value ''" in _read_error(path)


def test_a_wide_file_is_read_and_matched_by_name(tmp_path):
    # 20000 columns: the header checks were quadratic (list.count per name: 8 s at 30000
    # columns before JAX started; predict's header.index per column, 20 s)
    d = 20000
    names = [f"c{i}" for i in range(d)]
    X = np.random.default_rng(0).normal(size=(3, d)).astype(np.float32)
    path = tmp_path / "wide.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "target"])
        for row, t in zip(X, "aba"):
            w.writerow([*map(repr, row.tolist()), t])
    got = datafile.read(path)
    np.testing.assert_array_equal(got.X, X)
    assert got.feature_names == tuple(names) and got.label_names == ("a", "b")
    trained = names[::-1]  # a model trained on the columns in another order
    got = inputs.read_inputs(
        path, n_features=d, feature_names=trained, label_names=("a", "b"), trained_target="target"
    )
    np.testing.assert_array_equal(got.X, X[:, ::-1])
    np.testing.assert_array_equal(got.y, [0, 1, 0])
    (tmp_path / "dup.csv").write_text(",".join([*names, "c7", "target"]) + "\n")
    assert "repeats column names ['c7']" in _read_error(tmp_path / "dup.csv")


def _write_csv(path, header, X, y=None, order=None):
    cols = list(header) + (["target"] if y is not None else [])
    order = order or list(range(len(cols)))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([cols[i] for i in order])
        for i, x in enumerate(X):
            cells = [repr(float(v)) for v in x] + ([y[i]] if y is not None else [])
            w.writerow([cells[i] for i in order])


@pytest.mark.parametrize("header", [["f1", "f2", "f3"], ["3", "1", "2"]], ids=["named", "numeric"])
def test_train_then_predict_on_columns_in_another_order(tmp_path, capsys, header):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(160, 3))
    names = np.array(["Zebra", "ant", "Ému"])
    y = names[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    _write_csv(tmp_path / "train.csv", header, X[:120], y[:120], order=[2, 3, 0, 1])
    out = tmp_path / "m"
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--epochs", "2"] + [
        "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    model = nnjax.load(out)
    trained = [2, 0, 1]  # the training file's feature columns, in its order
    want = [str(v) for v in model.predict(X[120:, trained].astype(np.float32))]
    for with_y, order in ((True, [3, 1, 0, 2]), (False, [1, 2, 0])):
        f = tmp_path / f"new_{with_y}.csv"
        _write_csv(f, header, X[120:], y[120:] if with_y else None, order=order)
        preds = tmp_path / f"p_{with_y}.csv"
        argv = ["predict", str(out), "--data", str(f), "--out", str(preds)]
        assert main(argv) == 0
        printed = capsys.readouterr().out
        rows = list(csv.DictReader(open(preds)))
        assert [r["prediction"] for r in rows] == want
        assert [int(r["row"]) for r in rows] == list(range(2, 42))  # the CSV lines
        if with_y:
            right = sum(p == t for p, t in zip(want, y[120:]))
            assert f"accuracy {right / 40:.4f} ({right}/40)" in printed, printed
        else:
            assert "accuracy" not in printed
    _write_csv(tmp_path / "extra.csv", [*header, "note"], np.c_[X[120:], X[120:, 0]])
    argv = ["predict", str(out), "--data", str(tmp_path / "extra.csv")]
    assert main(argv) == 2
    assert re.search(r"unknown column\(s\) 'note' \(it was trained on ", capsys.readouterr().err)


def test_a_model_trained_on_arrays_asks_for_the_target_column(tmp_path):
    # a model trained on an .npz knows no label column: 'target' counted as a feature
    path = tmp_path / "p.csv"
    path.write_text("u,v,target\n0.5,1,1\n2,3,2\n")
    with pytest.raises(ValueError) as e:
        inputs.read_inputs(path, n_features=2, label_names=(1, 2))
    assert "3 feature columns (u, v, target), but the model takes 2 features (is 'target' the " \
        "labels? give --target target)" in str(e.value)  # fmt: skip
    got = inputs.read_inputs(path, n_features=2, label_names=(1, 2), target="target")
    np.testing.assert_array_equal(got.X, [[0.5, 1], [2, 3]])
    np.testing.assert_array_equal(got.y, [0, 1])
    # another name for the label column, one column too many: the last one is suggested
    path.write_text("u,v,digit\n0.5,1,1\n2,3,2\n")
    with pytest.raises(ValueError, match=r"takes 2 features \(is 'digit' the labels\? give "):
        inputs.read_inputs(path, n_features=2, label_names=(1, 2))


def test_an_integer_label_past_pythons_digit_limit_is_named_briefly(tmp_path):
    """A 5000-digit label was refused as "not a class", its 5000 digits in the message."""
    p = tmp_path / "big.csv"
    p.write_text("a,target\n1," + "7" * 5000 + "\n2,3\n3," + "7" * 5000 + "\n4,3\n")
    with pytest.raises(ValueError) as e:
        datafile.read(p)
    msg = str(e.value)
    assert "line 2: label '77777777777777777777'...(5000 characters) is an integer" in msg
    assert len(msg) < 300 and "4300 digits" in msg
