"""Where `nnjax predict --out` writes: into a pipe or a device (never replacing it with a
file), through a symbolic link (the link kept), never over a file the user made (unless
--overwrite), and a folder that is missing is named before JAX starts. The predictions are
the model's outputs on the standardised inputs."""

import csv
import os
import stat

import jax
import numpy as np
import pytest

import nnjax
from nnjax.cli import main
from nnjax.data import Standardizer
from nnjax.layers import apply_model

COLUMNS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved model (not trained: nothing here depends on its weights) and a data file."""
    d = tmp_path_factory.mktemp("paths")
    X = np.random.default_rng(0).normal([1.0, -5.0, 300.0], [1.0, 2.0, 50.0], size=(8, 3))
    model = nnjax.mlp([4, 2], "tanh")
    _, params = model.init(jax.random.key(0), (-1, 3))
    std = Standardizer.fit(X.astype(np.float32))
    nnjax.save(d / "m", model, params, standardizer=std, label_names=["no", "yes"],
               feature_names=COLUMNS, target="y")  # fmt: skip
    with open(d / "data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows([[repr(float(v)) for v in row] for row in X])
    return d, X


def _predict(saved, out, *extra):
    d = saved[0]
    return main(["predict", str(d / "m"), "--data", str(d / "data.csv"), "--proba",
                 "--out", str(out), *extra])  # fmt: skip


def _expected_proba(saved):
    """softmax(model.apply((X - mean) / std)), computed here directly."""
    d, X = saved
    pred = nnjax.load(d / "m")
    x = ((X.astype(np.float32) - pred.standardizer.mean) / pred.standardizer.std).astype("f4")
    z = np.asarray(apply_model(pred.model, pred.params, pred.state, x, train=False)[0], "f8")
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _proba(text: str) -> np.ndarray:
    rows = list(csv.DictReader(text.splitlines()))
    return np.array([[float(r["p_no"]), float(r["p_yes"])] for r in rows])


@pytest.mark.parametrize("through_link", [False, True])
def test_a_pipe_is_written_into_not_replaced_by_a_file(saved, tmp_path, through_link):
    """Review: --out a FIFO (or /dev/stdout, /dev/full: a link to a device) was replaced by a
    regular file (os.replace over it), the reader left waiting; root's /dev/full became a
    file holding the predictions, and the run said it had written them."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = fifo
    if through_link:
        out = tmp_path / "stdout"
        out.symlink_to(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the pipe holds the small output
    try:
        assert _predict(saved, out) == 0
        text = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.path.islink(out) == through_link
    np.testing.assert_allclose(_proba(text), _expected_proba(saved), atol=1e-6)


def test_a_full_device_is_an_error_naming_it(saved, tmp_path, capsys, monkeypatch):
    """A write into a device that fails (/dev/full: ENOSPC) is one line, exit 3."""
    import errno

    import nnjax.commands.predict as predict

    fifo = tmp_path / "full"
    os.mkfifo(fifo)
    monkeypatch.setattr(predict, "open", _full_device, raising=False)
    assert _predict(saved, fifo) == 3
    err = capsys.readouterr().err.strip()
    assert err == f"nnjax predict: error: {fifo}: No space left on device (errno 28, ENOSPC)"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and errno.ENOSPC == 28


class _full_device:
    def __init__(self, path, mode, encoding=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import errno

        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, text):
        return len(text)


def test_a_symbolic_link_keeps_pointing_at_the_new_predictions(saved, tmp_path):
    """Review: the link itself was replaced by a regular file; its target kept the old ones."""
    target = tmp_path / "runs" / "preds.csv"
    target.parent.mkdir()
    target.write_text("row,prediction\n2,old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    assert _predict(saved, link) == 0
    assert os.path.islink(link) and os.readlink(link) == str(target)
    np.testing.assert_allclose(_proba(target.read_text()), _expected_proba(saved), atol=1e-6)


def test_a_file_the_user_made_is_not_replaced_without_overwrite(saved, tmp_path, capsys):
    """Review: --out replaced any existing file (another data file, notes) silently."""
    mine = tmp_path / "train.csv"
    mine.write_text("a,b,c,y\n1,2,3,no\n")
    assert _predict(saved, mine) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"nnjax predict: error: --out {mine}: exists and holds something other than nnjax "
        "predictions; add --overwrite to replace it, or give another file name"
    )
    assert mine.read_text() == "a,b,c,y\n1,2,3,no\n"
    assert _predict(saved, mine, "--overwrite") == 0
    first = mine.read_text()
    assert first.startswith("row,prediction,p_no,p_yes\n")
    assert _predict(saved, mine) == 0  # earlier predictions are replaced: a rerun
    assert mine.read_text() == first
    d = saved[0]
    argv = ["predict", str(d / "m"), "--data", str(d / "data.csv"), "--overwrite"]
    capsys.readouterr()
    assert main(argv) == 2
    assert "--overwrite lets --out replace a file: give it with --out" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.touch()  # e.g. made by the shell's redirection
    assert _predict(saved, empty) == 0 and empty.read_text() == first


def test_a_missing_folder_is_named_before_jax_starts(saved, tmp_path, capsys, monkeypatch):
    """Review: a typo in --out's folder failed only after the model was loaded and run."""

    def never(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(nnjax, "load", never)
    out = tmp_path / "nodir" / "p.csv"
    assert _predict(saved, out) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nnjax predict: error: --out {out}: no folder {tmp_path / 'nodir'}")
    assert not out.parent.exists()


def test_labels_of_a_model_saved_with_float_or_bool_names_are_matched():
    """Review: a model saved (from Python) with label names 0.5 and 1.5 refused every label
    of a data file ("'0.5' is not one of the model's classes"); False/True likewise."""
    from nnjax.inputs import _classes

    got = _classes(["1.5", " 0.5", "0.5"], [2, 3, 4], [0.5, 1.5], "f.csv: column 'y'", "line")
    np.testing.assert_array_equal(got, [1, 0, 0])
    np.testing.assert_array_equal(_classes(["True", "False"], [2, 3], [False, True], "f", "line"),
                                  [1, 0])  # fmt: skip
    np.testing.assert_array_equal(_classes(["1", "0.0"], [2, 3], [0, 1], "f", "line"), [1, 0])
    with pytest.raises(ValueError, match=r"f, line 3: label '2' is not one of the model's"):
        _classes(["1", "2"], [2, 3], [0, 1], "f", "line")


def test_a_csv_with_a_header_and_no_rows_gives_no_predictions(saved, tmp_path, capsys):
    """Review: an .npz of 0 rows gave '0 predictions', a CSV of 0 rows (a filter that kept
    nothing) was refused as 'a header and no data rows'."""
    d = saved[0]
    (tmp_path / "none.csv").write_text("c,a,b,y\n\n")
    capsys.readouterr()
    assert main(["predict", str(d / "m"), "--data", str(tmp_path / "none.csv"), "--proba"]) == 0
    out, err = capsys.readouterr()
    assert out == "row,prediction,label,p_no,p_yes\n" and err.strip() == "0 predictions"
