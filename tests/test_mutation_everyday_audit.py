"""Small faults in the everyday path (data files, predict, resume, the comparison study)
that the suite let pass: each test here fails with one such fault and passes on the code.
The oracles are written here (NumPy, scikit-learn, a hand-made CSV, the README's words)."""

import re
import types
from pathlib import Path

import jax
import numpy as np
import pytest

from nnjax import checkpoint
from nnjax.compare.report import _summary_entry
from nnjax.compare.select import best_index
from nnjax.compare.study import OptimizerRuns, make_splits
from nnjax.data import load
from nnjax.datafile import read_csv
from nnjax.layers.core import init_model
from nnjax.models import logistic_regression
from nnjax.predictor import Predictor
from nnjax.standardizer import Standardizer
from nnjax.train.checkpoints import FitCheckpoints
from nnjax.train.history import History

README = Path(__file__).resolve().parent.parent / "README.md"


# --- data files: '?' is a missing value (datafile.py's docstring lists it) ----------------


def _csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


def test_a_question_mark_label_is_missing_not_a_class(tmp_path):
    path = _csv(tmp_path, "a,target\n1,x\n2,y\n3,?\n4,x\n")
    with pytest.raises(ValueError, match=r"column 'target', line 4: missing label '\?'"):
        read_csv(path)


def test_a_question_mark_feature_is_a_missing_value(tmp_path):
    path = _csv(tmp_path, "a,target\n1,x\n?,y\n3,y\n")
    with pytest.raises(ValueError, match=r"column 'a', line 3: missing value '\?'"):
        read_csv(path)


def test_csv_labels_are_stripped_so_spaces_make_no_new_class(tmp_path):
    """A CSV cell is stripped (unlike an array's string label): ' x' and 'x ' are class x."""
    data = read_csv(_csv(tmp_path, "a,target\n1, x\n2,x \n3,y\n4, y \n"))
    assert data.label_names == ("x", "y")
    assert data.y.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"line 3: missing label 'NA'"):
        read_csv(_csv(tmp_path, "a,target\n1,x\n2, NA \n3,y\n"))


# --- predict: the rule of the module docstring, on a model whose output is its input ------


def _predictor(loss, standardizer=None, dtype=np.float32):
    """logistic_regression(1) with W = 1, b = 0: the output z is the (standardised) input."""
    model = logistic_regression(1)
    _, params, state = init_model(model, jax.random.PRNGKey(0), (-1, 1))
    params = {"W": np.ones((1, 1), dtype), "b": np.zeros(1, dtype)}
    meta = {
        "label_names": ["no", "yes"],
        "loss": loss,
        "model": {"input_shape": [-1, 1], "spec": model.spec},
    }
    return Predictor(model, params, state, standardizer, meta)


def test_a_logit_of_exactly_zero_is_class_0():
    """'class 1 where z > 0 (logit) or p > 0.5': z = 0 is not > 0."""
    p = _predictor("binary_cross_entropy_with_logits")
    X = np.array([[-1.0], [0.0], [1e-6]], np.float32)
    assert p.predict(X).tolist() == ["no", "no", "yes"]
    q = p.predict_proba(X)
    np.testing.assert_allclose(q[:, 1], 1 / (1 + np.exp(-X[:, 0].astype(np.float64))))


def test_a_probability_of_exactly_one_half_is_class_0():
    p = _predictor("binary_cross_entropy")
    X = np.array([[0.25], [0.5], [0.75]], np.float32)
    assert p.predict(X).tolist() == ["no", "no", "yes"]
    np.testing.assert_allclose(p.predict_proba(X), [[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]])


def test_one_mse_output_is_thresholded_at_one_half_as_accuracy_is():
    """A single mse output (a 0/1 target) is class 1 above 0.5, the rule of
    nnjax.train.classification_accuracy, not above 0 as for a logit."""
    from nnjax.train import classification_accuracy
    from nnjax.train.step import _threshold

    p = _predictor("mse")
    X = np.array([[0.3], [0.7], [-0.2], [0.5]], np.float32)
    assert p.predict(X).tolist() == ["no", "yes", "no", "no"]
    y = np.array([0, 1, 0, 0])
    assert float(classification_accuracy(X, y, _threshold("mse"))) == 1.0


def test_integer_inputs_are_standardised_in_the_statistics_precision():
    """Ints meet float64 statistics in float64: 2**24 + 1 is no float32, and rounding it
    first made (x - mean) / std 0 instead of 1."""
    big = 2**24
    s = Standardizer(np.array([big], np.float64), np.array([1.0], np.float64))
    p = _predictor("binary_cross_entropy_with_logits", s)
    X = np.array([[big + 1], [big - 1], [big]], np.int64)
    np.testing.assert_array_equal(p.transform(X)[:, 0], [1.0, -1.0, 0.0])
    assert p.predict(X).tolist() == ["yes", "no", "no"]


# --- resume and the divergence guard: where to go back to -------------------------------


def test_newest_before_includes_a_checkpoint_at_that_very_epoch(tmp_path):
    """'The newest checkpoint of this run at epoch <= epoch': after epochs 2 and 4 were
    saved, a divergence starting at epoch 5 goes back to epoch 4, not 2."""
    ck = FitCheckpoints(tmp_path, 2, None, {}, key=None, epochs=10, steps_per_epoch=1)
    for step in (2, 4):
        checkpoint.save(tmp_path, step, {"a": np.zeros(1, np.float32)})
    assert ck.newest_before(4) == checkpoint.npz_path(tmp_path, 4)
    assert ck.newest_before(3) == checkpoint.npz_path(tmp_path, 2)
    assert ck.newest_before(2) == checkpoint.npz_path(tmp_path, 2)
    assert ck.newest_before(1) is None


def test_a_resumed_run_saves_on_the_same_epochs_as_an_uninterrupted_one(tmp_path):
    """checkpoint_every=2: saves after epochs 2, 4, 6 whether or not the run was resumed at
    epoch 2 (a resume that forgot its epoch saved after 3 and 5: every 2 epochs since 0)."""
    import nnjax

    ds = load("moons")
    model = nnjax.mlp([8, 2])
    p0 = model.init(jax.random.key(0), (-1, 2))[1]
    fit = dict(batch_size=32, key=3, optimizer="adam", learning_rate=0.01, epochs_per_call=1)
    nnjax.fit(
        model, p0, ds.X_train, ds.y_train, epochs=2, checkpoint_dir=tmp_path, checkpoint_every=2,
        **fit,
    )  # fmt: skip
    assert checkpoint.steps(tmp_path) == [2]
    res = nnjax.fit(
        model, p0, ds.X_train, ds.y_train, epochs=6, checkpoint_dir=tmp_path, checkpoint_every=2,
        resume=True, **fit,
    )  # fmt: skip
    assert checkpoint.steps(tmp_path) == [2, 4, 6]
    assert len(res.metrics["step_loss_mean"]) == 6


def test_history_joins_chunks_as_numpy_concatenates_them():
    """Chunks joined as np.concatenate joins them, dtype included, whether or not the
    buffer had to grow (an int buffer with room took a float chunk as ints: 0.5 -> 0)."""
    for chunks in (
        [np.array([1]), np.array([0.5])],
        [np.array([1, 2, 3]), np.array([4]), np.array([0.5])],
        [np.array([1, 2, 3], np.float32), np.array([4.0]), np.array([0.1])],
    ):
        h = History(0, chunks)
        want = np.concatenate(chunks)
        assert h.joined().dtype == want.dtype
        np.testing.assert_array_equal(h.joined(), want)


# --- the comparison study -----------------------------------------------------------------


def _runs(val_loss, learning_rates, train_loss=0.5):
    """OptimizerRuns with validation losses (L, S, E), nothing diverged."""
    val = np.asarray(val_loss, float)
    L, S, E = val.shape
    metrics = {
        "val_loss": val,
        "val_accuracy": 1 - val,
        "train_loss": np.broadcast_to(np.asarray(train_loss, float), (L, S, E)),
        "test_loss": val,
        "test_accuracy": 1 - val,
        "train_accuracy": 1 - val,
    }
    lrs = np.asarray(learning_rates, float)
    return OptimizerRuns("sgd", lrs, np.arange(S), 8, 3, np.ones((L, S, 3 * E)), metrics, 1.0, 12.0)


def test_the_rate_is_chosen_by_the_final_loss_not_the_lowest_on_the_way():
    # rate 0.1 dipped to 0.1 at epoch 1 but ends at 0.5; rate 0.01 ends at 0.3
    runs = _runs([[[0.1, 0.5], [0.1, 0.5]], [[0.4, 0.3], [0.4, 0.3]]], [0.1, 0.01])
    assert best_index(runs, "val_loss") == 1
    assert best_index(runs, "val_accuracy") == 1


def test_the_rate_is_chosen_by_the_mean_over_seeds_not_the_last_seed():
    # rate 0.1: seeds 0.1 and 0.6 (mean 0.35); rate 0.01: 0.3 and 0.3 (mean 0.3)
    runs = _runs([[[0.1], [0.6]], [[0.3], [0.3]]], [0.1, 0.01])
    assert best_index(runs, "val_loss") == 1
    runs = _runs([[[0.6], [0.1]], [[0.3], [0.3]]], [0.1, 0.01])
    assert best_index(runs, "val_loss") == 1


def test_the_summary_divides_the_run_time_over_every_run_and_means_over_seeds():
    runs = _runs([[[0.2], [0.4], [0.3]], [[0.5], [0.5], [0.5]]], [0.1, 0.01])
    study = types.SimpleNamespace(epochs=1, target_loss=0.1, select="val_loss")
    entry = _summary_entry(runs, 0, types.SimpleNamespace(study=study))
    assert entry["run_time_s"] == 12.0
    assert entry["run_time_per_run_s"] == pytest.approx(12.0 / 2 / 3)
    a = np.array([0.2, 0.4, 0.3])
    assert entry["val_loss"]["mean"] == pytest.approx(a.mean())
    assert entry["val_loss"]["std"] == pytest.approx(np.std(a, ddof=1))


def test_steps_to_target_has_no_median_unless_every_seed_reached_it():
    """The report says 'not all (2/3)': a median of the seeds that reached the target alone
    would hide the one that did not."""
    train = [[[0.5, 0.05], [0.05, 0.05], [0.5, 0.5]], [[0.5, 0.5]] * 3]
    runs = _runs([[[0.2, 0.2]] * 3, [[0.5, 0.5]] * 3], [0.1, 0.01], train)
    study = types.SimpleNamespace(epochs=2, target_loss=0.1, select="val_loss")
    stt = _summary_entry(runs, 0, types.SimpleNamespace(study=study))["steps_to_target"]
    assert np.isnan(stt["median"]) and stt["reached"] == 2 and stt["values"] == [6, 3, None]
    train[0][2] = [0.5, 0.1]  # reached at the target itself, in the second epoch
    runs = _runs([[[0.2, 0.2]] * 3, [[0.5, 0.5]] * 3], [0.1, 0.01], train)
    stt = _summary_entry(runs, 0, types.SimpleNamespace(study=study))["steps_to_target"]
    assert stt == {"median": 6.0, "reached": 3, "values": [6, 3, 6]}


def test_a_studys_chunk_is_the_largest_divisor_up_to_its_share_of_the_epochs():
    """'The largest divisor of epochs not above ceil(epochs / parts)': 60 epochs in 10 parts
    are chunks of 6 (not 5, which would leave a shorter last chunk to compile)."""
    import math

    from nnjax.compare.study import _chunk

    for epochs in range(1, 80):
        for parts in range(1, 13):
            cap = math.ceil(epochs / parts)
            want = max(d for d in range(1, epochs + 1) if epochs % d == 0 and d <= cap)
            assert _chunk(epochs, parts) == want, (epochs, parts)
    assert (_chunk(60, 10), _chunk(34, 10), _chunk(61, 10)) == (6, 2, 1)


def test_the_validation_split_is_scikit_learns_seeded_by_the_data_seed():
    """The settings say data_seed 'seeds the data and its split': the fit / validation
    split of the training part is train_test_split(..., random_state=data_seed)."""
    from sklearn.model_selection import train_test_split

    for seed in (0, 3):
        ds = load("moons", seed=seed)
        sp = make_splits("moons", 0.2, seed)
        Xf, Xv, yf, yv = train_test_split(
            ds.X_train, ds.y_train, test_size=0.2, random_state=seed, stratify=ds.y_train
        )
        np.testing.assert_array_equal(sp.fit[0], Xf)
        np.testing.assert_array_equal(sp.val[0], Xv)
        np.testing.assert_array_equal(sp.fit[1], yf)
        np.testing.assert_array_equal(sp.val[1], yv)


# --- the README's account of the default run ------------------------------------------------


def test_the_readme_states_the_digits_preset_the_command_runs():
    from nnjax import presets

    text = " ".join(README.read_text().split())
    m = re.search(
        r"digits preset \(MLP 64-(\d+)-(\d+)-10, (\w+), Adam lr ([\d.e-]+), batch (\d+), "
        r"(\d+) epochs\)",
        text,
    )
    assert m, "README no longer describes the digits preset"
    p = presets.PRESETS["digits"]
    assert presets.OPTIMIZER == "adam"
    assert p["hidden"] == (int(m[1]), int(m[2])) and p["activation"] == m[3]
    assert p["lr"] == float(m[4]) and p["batch_size"] == int(m[5]) and p["epochs"] == int(m[6])
