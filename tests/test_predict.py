"""The own-data round trip of issue 16: `nnjax train --data my.csv --target y --out run` then
`nnjax predict run --data new.csv` gives exactly the predictions of nnjax.load("run") and of
the in-memory model; the run's logs (metrics.csv, accuracy.png, TensorBoard); predict's
one-line errors for columns that differ from training's."""

import csv
import importlib.util
import os
import struct

import jax
import numpy as np
import pytest

import nnjax
from nnjax.cli import main
from nnjax.commands import train_outputs
from nnjax.layers import apply_model

NAMES = ["alpha", "beta", "gamma"]
COLUMNS = ["x1", "x2", "x3", "x4"]
HAS_TB = importlib.util.find_spec("tensorboardX") is not None


def _write_csv(path, X, y=None, columns=COLUMNS, target="y"):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns + ([target] if y is not None else []))
        for i, row in enumerate(X):
            w.writerow([repr(float(v)) for v in row] + ([y[i]] if y is not None else []))


def _make(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal([5.0, -3.0, 100.0, 0.0], [1.0, 2.0, 20.0, 0.1], size=(n, 4))
    score = (X[:, 0] - 5) + (X[:, 1] + 3) / 2
    k = np.digitize(score, [-0.6, 0.6])
    return X, [NAMES[i] for i in k]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One training run through nnjax.cli.main, with the in-memory model captured."""
    d = tmp_path_factory.mktemp("own")
    X, y = _make(240, 0)
    _write_csv(d / "my.csv", X, y)
    X_new, y_new = _make(50, 1)
    _write_csv(d / "new.csv", X_new[:, [2, 0, 3, 1]], y_new, [COLUMNS[i] for i in (2, 0, 3, 1)])
    _write_csv(d / "unlabelled.csv", X_new)
    captured = {}
    real = train_outputs.write_more

    def spy(out, model, loss, res, ds, config, log, data=None):
        captured.update(model=model, res=res, ds=ds)
        return real(out, model, loss, res, ds, config, log, data)

    argv = ["train", "--data", d / "my.csv", "--target", "y", "--out", d / "run"]
    argv += ["--val-split", "0.2", "--epochs", "40", "--early-stopping", "3", "--lr", "0.05"]
    argv += ["--schedule", "warmup-cosine", "--weight-decay", "1e-4", "--dropout", "0.1"]
    argv += ["--tensorboard", d / "tb"] if HAS_TB else []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_outputs, "write_more", spy)
        assert main(argv) == 0
    return d, captured, X_new, y_new


def test_predict_equals_load_and_the_in_memory_model(run, capsys):
    d, mem, X_new, y_new = run
    capsys.readouterr()
    assert main(["predict", d / "run", "--data", d / "unlabelled.csv", "--proba"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["row"] for r in rows] == [str(i) for i in range(2, 52)]  # CSV lines
    cli = [r["prediction"] for r in rows]
    cli_p = np.array([[float(r[f"p_{n}"]) for n in NAMES] for r in rows])
    pred = nnjax.load(d / "run")
    z = pred(X_new.astype(np.float32))
    assert cli == pred.predict(X_new.astype(np.float32)).tolist()
    np.testing.assert_array_equal(cli_p, pred.predict_proba(X_new.astype(np.float32)))
    x = mem["ds"].standardizer.transform(X_new.astype(np.float32)).astype(np.float32)
    f = jax.jit(lambda p, s, x: apply_model(mem["model"], p, s, x)[0])
    z_mem = np.asarray(f(mem["res"].params, mem["res"].state, x))
    np.testing.assert_array_equal(z, z_mem)  # the in-memory model, bit for bit
    assert cli == [NAMES[k] for k in z_mem.argmax(1)]
    assert err.strip() == "50 predictions"


def test_predict_with_labels_prints_accuracy_and_reorders_columns(run, capsys, tmp_path):
    d, mem, X_new, y_new = run
    out = tmp_path / "preds.csv"
    capsys.readouterr()
    assert main(["predict", d / "run", "--data", d / "new.csv", "--out", out]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["label"] for r in rows] == y_new
    right = sum(r["prediction"] == r["label"] for r in rows)
    assert f"accuracy {right / 50:.4f} ({right}/50)" in capsys.readouterr().out
    assert right / 50 > 0.8  # a learnable rule: the model did learn it
    unlabelled = nnjax.load(d / "run").predict(X_new.astype(np.float32)).tolist()
    assert [r["prediction"] for r in rows] == unlabelled  # columns matched by name


class _Frame:
    """What Predictor reads of a pandas or polars DataFrame: ``columns``, ``frame[names]``
    (a frame of those columns) and ``__array__`` (object dtype when the columns mix types,
    as pandas gives for a frame with a text column)."""

    def __init__(self, columns, values):
        self.columns, self.values = list(columns), list(map(np.asarray, values))

    def __getitem__(self, names):
        return _Frame(names, [self.values[self.columns.index(n)] for n in names])

    def __array__(self, dtype=None, copy=None):
        mixed = len({v.dtype.kind for v in self.values}) > 1
        a = np.stack(self.values, axis=1).astype(object if mixed else self.values[0].dtype)
        return a if dtype is None else a.astype(dtype)


def test_a_dataframe_is_matched_by_column_name_not_position(run):
    d, mem, X_new, y_new = run
    pred = nnjax.load(d / "run")
    want = pred(X_new.astype(np.float32))
    order = [2, 0, 3, 1]
    shuffled = _Frame([COLUMNS[i] for i in order], X_new.T[order].astype(np.float32))
    np.testing.assert_array_equal(pred(shuffled), want)  # np.asarray alone would misplace them
    labelled = _Frame([*COLUMNS, "y"], [*X_new.T.astype(np.float32), np.zeros(50)])
    np.testing.assert_array_equal(pred(labelled), want)  # the target column is left out
    with pytest.raises(ValueError, match=r"the table: columns differ .* missing column\(s\) 'x4'"):
        pred(_Frame(COLUMNS[:3], X_new.T[:3]))


def test_a_dataframe_with_its_text_labels_or_a_name_twice(run):
    """Review: a frame holding its text label column was refused ("inputs must be numbers,
    got dtype object": the whole frame was converted before the features were picked); a
    frame naming a column twice was read by its first column silently."""
    d, _, X_new, y_new = run
    pred = nnjax.load(d / "run")
    labelled = _Frame(["y", *COLUMNS], [np.array(y_new, object), *X_new.T])
    assert np.asarray(labelled).dtype == object
    np.testing.assert_array_equal(pred.predict(labelled), pred.predict(X_new))
    with pytest.raises(ValueError, match=r"the table repeats column names \['x1'\]"):
        pred(_Frame([*COLUMNS, "x1"], [*X_new.T, -X_new[:, 0]]))


def test_outputs_that_overflow_are_refused_naming_the_row(run, tmp_path, capsys):
    """Review: 3e38 (finite) gave nan outputs, and argmax named class 0 for them."""
    d, _, X_new, _ = run
    pred = nnjax.load(d / "run")
    X = X_new[:4].astype(np.float32)
    X[2, 0] = 3e38
    for call in (pred.predict, pred.predict_proba, pred):
        with pytest.raises(ValueError, match=r"in 1 row\(s\), first rows \[2\] \(inputs far"):
            call(X)
    with pytest.raises(ValueError, match=r"standardised, inputs exceed float32's range in 1 row"):
        pred(X.astype(np.float64) * np.array([1e10, 1, 1, 1]))  # 3e48: finite in float64
    _write_csv(tmp_path / "far.csv", X)
    assert main(["predict", d / "run", "--data", tmp_path / "far.csv"]) == 2
    err = capsys.readouterr().err
    assert "far.csv: the model's outputs are nan or inf in 1 row(s), first at line 4 (" in err


def test_a_row_with_nan_or_inf_is_refused_not_given_a_class(run):
    """predict named class 'a' for a row holding nan, and for a row of inf."""
    d, _, X_new, _ = run
    pred = nnjax.load(d / "run")
    X = X_new[:6].astype(np.float32)
    X[1, 2], X[4] = np.nan, np.inf
    for call in (pred.predict, pred.predict_proba, pred):
        with pytest.raises(ValueError, match=r"nan/inf in 2 row\(s\), first rows \[1, 4\]"):
            call(X)


@pytest.mark.parametrize(
    "columns, message",
    [
        (
            ["x1", "x2", "x3"],
            "columns differ from the model's training data: missing column(s) 'x4'",
        ),
        (["x1", "x2", "x3", "x4", "x5"], "unknown column(s) 'x5'"),
        (["x1", "x2", "x3", "z"], "missing column(s) 'x4'; unknown column(s) 'z'"),
    ],
)
def test_predict_refuses_other_columns_naming_them(run, tmp_path, capsys, columns, message):
    d = run[0]
    _write_csv(tmp_path / "bad.csv", np.ones((3, len(columns))), columns=columns)
    capsys.readouterr()
    assert main(["predict", d / "run", "--data", tmp_path / "bad.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnjax predict: error: ") and "\n" not in err and message in err, err
    assert "(it was trained on x1, x2, x3, x4)" in err


def test_a_csv_without_its_header_row_is_asked_about(run, tmp_path, capsys):
    """A file whose first row is data listed its numbers as unknown columns, no more."""
    d = run[0]
    (tmp_path / "nohead.csv").write_text("0.5,1.5,2.5,3.5\n1,2,3,4\n")
    assert main(["predict", d / "run", "--data", tmp_path / "nohead.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown column(s) '0.5', '1.5', '2.5', '3.5'" in err and "\n" not in err
    assert err.endswith("line 1 is all numbers: is the header row missing? (a CSV file needs "
                        "one naming its columns)")  # fmt: skip


def test_predict_refuses_an_unknown_label(run, tmp_path, capsys):
    d = run[0]
    _write_csv(tmp_path / "bad.csv", np.ones((2, 4)), ["alpha", "delta"])
    assert main(["predict", d / "run", "--data", tmp_path / "bad.csv"]) == 2
    err = capsys.readouterr().err
    assert "column 'y', line 3: label 'delta' is not one of the model's classes" in err


def test_predict_reads_npz_and_refuses_the_wrong_width(run, tmp_path, capsys):
    d, _, X_new, _ = run
    np.savez(tmp_path / "new.npz", X=X_new)
    assert main(["predict", d / "run", "--data", tmp_path / "new.npz"]) == 0
    lines = capsys.readouterr().out.splitlines()
    want = nnjax.load(d / "run").predict(X_new.astype(np.float32)).tolist()
    assert [line.split(",")[1] for line in lines[1:]] == want
    np.savez(tmp_path / "narrow.npz", X=X_new[:, :3])
    assert main(["predict", d / "run", "--data", tmp_path / "narrow.npz"]) == 2
    assert "the model takes numbers of shape (n, 4)" in capsys.readouterr().err


def test_bad_labels_of_an_npy_pair_name_the_labels_file(run, tmp_path, capsys):
    """Review: a bad --labels file was reported under the features' name ("X.npy: y, row 0")."""
    d, _, X_new, _ = run
    np.save(tmp_path / "X.npy", X_new)
    np.save(tmp_path / "short.npy", np.array(["alpha"] * 49))
    np.save(tmp_path / "odd.npy", np.array(["alpha"] * 49 + ["delta"]))
    for labels, after in [
        ("short.npy", f": 49 labels for the 50 examples of {tmp_path / 'X.npy'}"),
        ("odd.npy", ", row 49: label 'delta' is not one of the model's classes"),
    ]:
        argv = ["predict", d / "run", "--data", tmp_path / "X.npy", "--labels", tmp_path / labels]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"nnjax predict: error: {tmp_path / labels}{after}" in err, err


def test_npz_inputs_as_train_reads_them(run, tmp_path, capsys):
    """Review: labels (n, 1), which nnjax train takes, were refused; a file that is no
    archive got NumPy's advice on pickles; zero rows ended in a ZeroDivisionError; a folder
    was 'no such file'."""
    d, _, X_new, y_new = run
    run_dir = d / "run"
    np.savez(tmp_path / "col.npz", X=X_new, y=np.array(y_new)[:, None])
    assert main(["predict", run_dir, "--data", tmp_path / "col.npz"]) == 0
    out = capsys.readouterr()
    want = nnjax.load(run_dir).predict(X_new.astype(np.float32)).tolist()
    assert [line.split(",")[2] for line in out.out.splitlines()[1:]] == list(y_new)
    assert [line.split(",")[1] for line in out.out.splitlines()[1:]] == want
    np.savez(tmp_path / "none.npz", X=np.zeros((0, 4)), y=np.array([], "<U5"))
    assert main(["predict", run_dir, "--data", tmp_path / "none.npz"]) == 0
    assert capsys.readouterr().err.strip() == "0 predictions"
    (tmp_path / "fake.npz").write_text("hello")
    np.savez(tmp_path / "obj.npz", X=X_new.astype(object))
    (tmp_path / "dir.csv").mkdir()
    for name, message in [
        ("fake.npz", "fake.npz: not an .npz archive (not a zip archive)"),
        ("obj.npz", "obj.npz: array X holds Python objects (dtype object), which nnjax does not"),
        ("dir.csv", "dir.csv: a directory, not a file"),
    ]:
        assert main(["predict", run_dir, "--data", tmp_path / name]) == (3 if "dir" in name else 2)
        err = capsys.readouterr().err
        assert err.startswith(f"nnjax predict: error: {tmp_path}/{message}"), err


def test_predict_on_a_folder_that_is_no_model(tmp_path, capsys):
    assert main(["predict", tmp_path, "--data", tmp_path / "x.csv"]) == 2
    assert "not a saved nnjax model (no model.json)" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["run/params.npz", "run/model.json", "run/../run/state.npz",
                                    "run/history.json", "run/metrics.csv", "new.csv"])  # fmt: skip
def test_predict_never_writes_over_the_model_or_the_data(run, capsys, target):
    d = run[0]
    before = {p: p.read_bytes() for p in [*(d / "run").iterdir(), d / "new.csv"]}
    assert main(["predict", d / "run", "--data", d / "new.csv", "--out", d / target]) == 2
    assert "would destroy it: give another file name" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


def test_train_never_writes_over_its_own_data(run, capsys, tmp_path):
    """A --data file named like one of the run's outputs, in --out: refused before reading."""
    from nnjax.commands.train_safety import OUT_FILES

    assert sorted(os.listdir(run[0] / "run")) == sorted(set(OUT_FILES) - {"state.npz"})
    data = tmp_path / "metrics.csv"
    data.write_bytes((run[0] / "my.csv").read_bytes())
    assert main(["train", "--data", data, "--target", "y", "--out", tmp_path]) == 2
    assert "nnjax train writes metrics.csv into --out" in capsys.readouterr().err
    assert data.read_bytes() == (run[0] / "my.csv").read_bytes()


def test_metrics_csv_accuracy_plot_and_early_stopping(run):
    d, mem = run[0], run[1]
    res = mem["res"]
    rows = list(csv.DictReader((d / "run" / "metrics.csv").read_text().splitlines()))
    assert list(rows[0]) == [
        "epoch", "step_loss_mean", "train_accuracy", "train_loss", "val_accuracy",
        "val_loss", "wall_time_s", "learning_rate",
    ]  # fmt: skip
    n = len(res.metrics["val_loss"])
    assert [int(r["epoch"]) for r in rows] == list(range(1, n + 1))
    assert [float(r["val_loss"]) for r in rows] == res.metrics["val_loss"].tolist()
    times = [float(r["wall_time_s"]) for r in rows]
    assert times == sorted(times) and times[0] > 0
    assert res.best_epoch is not None and n <= 40
    assert float(rows[0]["learning_rate"]) < float(rows[1]["learning_rate"])  # warming up
    assert (d / "run" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    meta = nnjax.load(d / "run")
    assert meta.label_names == NAMES and meta.feature_names == COLUMNS and meta.target == "y"
    assert meta.config["early_stopping"] == 3 and meta.config["schedule"] == "warmup-cosine"


def _events(folder):
    """(tag, step, value) of every scalar in the TensorBoard event files of ``folder``: the
    TFRecord framing (length, crc, data, crc) read by hand, each record an Event proto."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in folder.iterdir():
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return out


@pytest.mark.skipif(not HAS_TB, reason="the tensorboard extra (tensorboardX) is not installed")
def test_tensorboard_event_files_hold_every_epoch_metric(run):
    d, mem = run[0], run[1]
    res = mem["res"]
    events = _events(d / "tb")
    val = sorted((s, v) for t, s, v in events if t == "loss/val")
    n = len(res.metrics["val_loss"])
    assert [s for s, _ in val] == list(range(1, n + 1))
    np.testing.assert_allclose([v for _, v in val], res.metrics["val_loss"], rtol=1e-6)
    steps = [s for t, s, _ in events if t == "step_loss"]
    assert steps == list(range(len(res.step_loss)))
    assert {"accuracy/train", "accuracy/val", "step_loss_mean", "learning_rate"} <= {
        t for t, _, _ in events
    }


def test_train_shows_progress_at_once_with_an_eta(run, capsys):
    d = run[0]
    argv = ["train", "--data", d / "my.csv", "--target", "y", "--epochs", "3"]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"preparing mlp on {d / 'my.csv'} (starting JAX)..."
    err = err[1:]
    assert err[0].startswith("epoch 0/3") and err[0].endswith(
        "compiling (the first epoch includes it)..."
    )
    assert err[-1].startswith("epoch 3/3 [####################] 100%  done in")


def test_predict_checks_model_and_columns_before_jax(run, tmp_path):
    """A column error is found by reading model.json and the file with NumPy alone."""
    import subprocess
    import sys

    d = run[0]
    _write_csv(tmp_path / "bad.csv", np.ones((2, 3)), columns=["x1", "x2", "x3"])
    code = (
        "import sys; from nnjax.cli import main; "
        f"rc = main(['predict', {str(d / 'run')!r}, '--data', {str(tmp_path / 'bad.csv')!r}]); "
        "print('jax loaded' if 'jax' in sys.modules else 'no jax'); sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout.strip() == "no jax", (r.stdout, r.stderr)
    assert "missing column(s) 'x4'" in r.stderr
