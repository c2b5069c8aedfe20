"""Mutation audit of the optimizer comparison (nnjax.compare and ``nnjax compare``): each test
kills small faults that the earlier tests let through, with an independent oracle: a run redone
by hand with ``nnjax.fit`` (keys split by hand, the split made by hand), NumPy over the rows read
back from runs.json, hand-made runs for the summary, the report and the plots, the printed
table against the JSON, and the default grids against the committed report."""

import json
import warnings
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

import nnjax
from nnjax.cli import main
from nnjax.compare import make_study, run_optimizer_study, seed_keys
from nnjax.compare import plot as cplot
from nnjax.compare.files import render, write_report
from nnjax.compare.report import markdown, seed_stats, summarize
from nnjax.compare.select import diverged
from nnjax.compare.settings import DEFAULT_LEARNING_RATES
from nnjax.compare.study import OptimizerRuns, Study, StudyResult
from nnjax.data import load, train_test_split

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss")
METRICS += ("test_accuracy", "step_loss_mean")


def _fake(name, lrs, seeds, E=3, T=2, seed=0, chosen=1):
    """OptimizerRuns of L rates x S seeds with distinct values everywhere (a mix-up of rates,
    seeds or metrics shows); rate ``chosen`` has the lowest validation loss, nothing diverged
    (initial loss 2.0, every later loss below it)."""
    g = np.random.default_rng(seed)
    L, S = len(lrs), len(seeds)
    step = 0.2 + 1.5 * g.random((L, S, E * T))
    step[:, :, 0] = 2.0
    metrics = {m: 0.1 + 0.8 * g.random((L, S, E)) for m in METRICS}
    metrics["val_loss"][chosen] *= 0.1
    lrs = np.asarray(lrs, float)
    return OptimizerRuns(name, lrs, np.asarray(seeds), 8, T, step, metrics, 1.5, 12.0)


def _result(*runs, seeds, epochs=3, target=0.5):
    names = tuple(r.name for r in runs)
    study = Study(dataset="moons", optimizers=names, seeds=tuple(seeds), epochs=epochs,
                  target_loss=target)  # fmt: skip
    sizes = {"n_fit": 240, "n_val": 60, "n_test": 100, "n_features": 2, "n_classes": 2}
    return StudyResult(study, "mlp", sizes, True, {r.name: r for r in runs})


# ---- a real study against nnjax.fit, and its files against NumPy ----------------------------


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    """sgd on moons: rates (0.001, 0.3) x seeds (3, 7) x 2 epochs, data seed 3; written out."""
    study = make_study("moons", optimizers=("sgd",), learning_rates={"sgd": (0.001, 0.3)},
                       seeds=(3, 7), epochs=2, batch_size=16, hidden=(8,), data_seed=3)  # fmt: skip
    result = run_optimizer_study(study)
    out = tmp_path_factory.mktemp("moons")
    write_report(result, str(out), plots=False)
    return result, json.loads((out / "runs.json").read_text())


def test_a_run_equals_fit_alone_from_keys_and_split_made_by_hand(moons):
    """Run (lr 0.3, seed 7): init_key, train_key = split(key(7)); the fit/val split of the
    training split of load(moons, seed=3), stratified with seed 3 (the data seed)."""
    result, _ = moons
    ds = load("moons", seed=3)
    X_fit, X_val, y_fit, y_val = train_test_split(ds.X_train, ds.y_train, 0.2, 3)
    init_key, train_key = jax.random.split(jax.random.key(7))
    model = nnjax.mlp([8, 2])
    _, params = model.init(init_key, (-1, 2))
    ref = nnjax.fit(model, params, X_fit, y_fit, optimizer="sgd", learning_rate=0.3, epochs=2,
                    batch_size=16, key=train_key, eval_data={"val": (X_val, y_val)})  # fmt: skip
    runs = result.runs["sgd"]
    np.testing.assert_allclose(runs.step_loss[1, 1], ref.step_loss, rtol=2e-5)
    np.testing.assert_allclose(runs.metrics["val_loss"][1, 1], ref.metrics["val_loss"], rtol=2e-5)
    assert result.sizes["n_val"] == len(y_val) and result.sizes["n_fit"] == len(y_fit)
    for seed in (0, 7):  # seed_keys is that split, the init key first
        ours, theirs = seed_keys(seed), jax.random.split(jax.random.key(seed))
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))


def test_runs_json_rows_hold_each_runs_own_curves_and_the_summary_is_numpy_over_them(moons):
    result, data = moons
    runs = result.runs["sgd"]
    rows = {(r["learning_rate"], r["seed"]): r for r in data["runs"]}
    assert sorted(rows) == [(0.001, 3), (0.001, 7), (0.3, 3), (0.3, 7)]
    for i, lr in enumerate(runs.learning_rates):
        for j, seed in enumerate((3, 7)):
            row = rows[float(lr), seed]
            np.testing.assert_array_equal(row["step_loss"], runs.step_loss[i, j])
            for m, a in runs.metrics.items():
                np.testing.assert_array_equal(row["epoch_metrics"][m], a[i, j])
            assert row["run_time_s"] * 4 == pytest.approx(runs.run_time)
            hit = [k for k, v in enumerate(row["epoch_metrics"]["train_loss"]) if v <= 0.1]
            steps = (hit[0] + 1) * runs.steps_per_epoch if hit else None
            assert row["steps_to_target"] == steps
    # the choice and the statistics, redone with NumPy on the rows read back
    mean_val = [np.mean([rows[lr, s]["val_loss"] for s in (3, 7)]) for lr in (0.001, 0.3)]
    best = (0.001, 0.3)[int(np.argmin(mean_val))]
    s = data["summary"]["sgd"]
    assert s["best_lr"] == best == 0.3  # 0.001 barely moves in 2 epochs
    for m in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        v = np.array([rows[best, seed][m] for seed in (3, 7)])
        assert s[m]["mean"] == pytest.approx(v.mean(), rel=1e-6)
        assert s[m]["std"] == pytest.approx(v.std(ddof=1), rel=1e-5)
        assert s[m]["median"] == pytest.approx(np.median(v), rel=1e-6)
    assert s["updates"] == 2 * (len(_fit_labels()) // 16) == 2 * runs.steps_per_epoch
    assert s["run_time_per_run_s"] == pytest.approx(runs.run_time / 4)


def _fit_labels():
    ds = load("moons", seed=3)
    return train_test_split(ds.X_train, ds.y_train, 0.2, 3)[2]


def test_runs_json_is_strict_json_with_null_for_inf_and_nan():
    runs = _fake("sgd", (0.01, 0.1), (0, 1))
    runs.step_loss[0, 1, 3] = np.inf
    runs.metrics["val_loss"][0, 1, 0] = np.inf  # epoch 1 of 3
    runs.metrics["test_loss"][0, 0, -1] = np.nan
    text = render(_result(runs, seeds=(0, 1)), plots=False)["json"][1]
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"runs.json holds {c}"))
    row = {(r["learning_rate"], r["seed"]): r for r in data["runs"]}
    assert row[0.01, 1]["step_loss"][3] is None and row[0.01, 1]["step_loss"][4] is not None
    bad = row[0.01, 1]
    assert bad["epoch_metrics"]["val_loss"][0] is None and bad["val_loss"] is not None
    assert row[0.01, 0]["test_loss"] is None and row[0.01, 0]["val_loss"] is not None
    for r in data["runs"]:  # updates to the first epoch at or below the target 0.5, T = 2
        hit = [e for e, v in enumerate(r["epoch_metrics"]["train_loss"]) if v <= 0.5]
        assert r["steps_to_target"] == (2 * (hit[0] + 1) if hit else None)
    assert any(r["steps_to_target"] for r in data["runs"])


# ---- the summary and the report of hand-made runs --------------------------------------------


def test_summary_and_tables_read_the_chosen_rate_and_count_per_rate():
    runs = _fake("sgd", (0.01, 0.1, 1.0), (0, 1), chosen=1)
    runs.metrics["train_loss"][1, :, :] = [[0.9, 0.4, 0.3], [0.9, 0.8, 0.7]]  # seed 1 never
    runs.metrics["train_loss"][0, 0, -1] = 25.0  # > 10 x 2.0: rate 0 seed 0 diverged
    result = _result(runs, seeds=(0, 1))
    s = summarize(result)["sgd"]
    assert s["best_index"] == 1 and s["best_lr"] == 0.1 and s["diverged"] == 0
    assert s["steps_to_target"]["reached"] == 1 and s["steps_to_target"]["values"] == [4, None]
    assert np.isnan(s["steps_to_target"]["median"])  # not every seed reached it
    assert s["updates"] == 6 and s["run_time_per_run_s"] == pytest.approx(12.0 / 6)
    for m in ("train_loss", "val_loss", "test_accuracy"):
        v = runs.metrics[m][1, :, -1]
        assert s[m]["mean"] == pytest.approx(v.mean()) and s[m]["max"] == v.max()
        assert s[m]["std"] == pytest.approx(v.std(ddof=1))
    text = markdown(result)
    best = next(ln for ln in text.splitlines() if ln.startswith("| sgd | 0.1 |"))
    f = [c.strip() for c in best.split("|")[1:-1]]

    def pm(m):
        v = runs.metrics[m][1, :, -1]
        return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"

    assert f[2:5] == [pm("train_loss"), pm("val_loss"), pm("test_loss")]
    assert f[5] == f"**{pm('test_accuracy')}**" and f[7] == "not all (1/2)"
    table = text.split("## Every learning rate")[1].splitlines()
    every = [ln for ln in table if ln.startswith("| sgd |")]
    assert [ln.split("|")[2].strip() for ln in every] == ["0.01", "0.1 (chosen)", "1"]
    assert [ln.split("|")[7].strip() for ln in every] == ["1/2", "0/2", "0/2"]


def test_a_final_loss_of_exactly_ten_times_the_first_steps_loss_has_not_diverged():
    """ "above k = 10 times its initial loss (the loss of its first batch at the initial
    weights)": 23.0 = 10 x 2.3 is not above; the later, smaller step losses are not the
    initial loss."""
    runs = _fake("sgd", (0.1,), (0, 1, 2), chosen=0)
    runs.step_loss[:] = 0.01
    runs.step_loss[:, :, 0] = 2.3
    runs.metrics["train_loss"][0, :, -1] = [23.0, 23.000001, 1.0]
    np.testing.assert_array_equal(diverged(runs), [[False, True, False]])


# ---- the plots: the data of the figures ------------------------------------------------------


def _data_lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def test_the_figures_draw_the_chosen_rate_and_mark_a_finite_diverged_rate():
    runs = _fake("adam", (0.001, 0.01, 0.1), (0, 1, 2), chosen=1)
    runs.metrics["train_loss"][2, 0, -1] = 50.0  # finite, 25 x its initial loss: diverged
    result = _result(runs, seeds=(0, 1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = [cplot.figure_loss_curves(result), cplot.figure_lr_sensitivity(result),
                cplot.figure_test_accuracy(result)]  # fmt: skip
    try:
        line = _data_lines(figs[0].axes[0])["adam (lr 0.01)"]
        np.testing.assert_allclose(line.get_ydata(), np.median(runs.step_loss[1], 0))
        line = _data_lines(figs[2].axes[0])["adam (lr 0.01)"]
        np.testing.assert_allclose(line.get_ydata(), np.median(runs.metrics["test_accuracy"][1], 0))
        np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
        for ax, m in zip(figs[1].axes, ("train_loss", "val_loss")):
            med = np.median(runs.metrics[m][:, :, -1], axis=1)
            (circle,) = [ln for ln in ax.get_lines() if ln.get_markersize() == 11]
            assert list(circle.get_xdata()) == [0.01] and circle.get_ydata()[0] == med[1]
            (cross,) = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
            assert list(cross.get_xdata()) == [0.1]
            (points,) = [c.lines[0] for c in ax.containers]
            np.testing.assert_allclose(points.get_ydata()[:2], med[:2])
            assert np.isnan(points.get_ydata()[2])  # the diverged rate: no point, an x
    finally:
        for fig in figs:
            plt.close(fig)


# ---- the settings --------------------------------------------------------------------------


def test_the_default_grids_are_those_of_the_committed_report_and_the_docs():
    report = Path(__file__).parents[1] / "docs" / "results" / "compare-digits" / "report.md"
    text = report.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("* Learning rates: "))
    for part in line.removeprefix("* Learning rates: ").split("; "):
        name, rates = part.split(": ")
        assert [f"{r:.3g}" for r in DEFAULT_LEARNING_RATES[name]] == rates.split(", ")
    # docs/optimizers.md: "momentum 10^-3.5 ... 10^-1.5", and the other optimizers' ranges
    for name, lo in (("gd", -1.5), ("sgd", -2.5), ("momentum", -3.5), ("adam", -4.0)):
        np.testing.assert_allclose(DEFAULT_LEARNING_RATES[name], np.logspace(lo, lo + 2, 5))


def test_the_bounds_of_the_settings_are_where_the_messages_put_them():
    with pytest.raises(ValueError, match=r"^compare: target_loss must be a finite number > 0, "):
        make_study("xor", target_loss=0.0)
    # a batch of all 4 fit examples is taken, and run (and reported) as full batch
    study = make_study("xor", optimizers=("sgd",), batch_size=4, seeds=1, epochs=1)
    runs = run_optimizer_study(study).runs["sgd"]
    assert study.batch_size == 4 and runs.batch_size is None and runs.steps_per_epoch == 1
    # ceil(f x 320) examples held out of moons' 320: 1.5/320 holds out 2, one of each class
    assert make_study("moons", val_fraction=1.5 / 320).val_fraction == 1.5 / 320
    with pytest.raises(ValueError, match=r"^compare: seeds must be a count n >= 1 .* \[0, 2\*\*31"):
        make_study("xor", seeds=[2**31])
    assert make_study("xor", seeds=[2**31 - 1]).seeds == (2**31 - 1,)


# ---- the printed table of `nnjax compare` --------------------------------------------------


def test_the_printed_table_shows_the_val_loss_and_test_accuracy_of_the_json(tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["compare", "--dataset", "moons", "--optimizers", "sgd", "--lr", "sgd=0.1,0.5"]
    argv += ["--seeds", "3", "--epochs", "2", "--hidden", "8", "--no-plots", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "runs.json").read_text())
    best = data["summary"]["sgd"]["best_lr"]
    rows = [r for r in data["runs"] if r["learning_rate"] == best]
    assert "6 runs, 2 epochs each" in printed
    row = next(ln for ln in printed.splitlines() if ln.startswith("sgd "))
    want = []
    for m in ("val_loss", "test_accuracy"):
        v = np.array([r[m] for r in rows])
        want += [f"{v.mean():.4f}", "±", f"{v.std(ddof=1):.4f}"]
    assert row.split()[1:8] == [f"{best:.3g}", *want]


def test_the_spread_of_a_diverged_rate_is_nan_without_a_warning():
    """An inf final metric (a diverged run) made np.std warn "invalid value encountered in
    subtract" from the every-rate table; its std is nan, said as "n/a"."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = seed_stats(np.array([[np.inf, 0.7], [0.5, 0.7]]))
    assert np.isnan(stats["std"][0]) and stats["std"][1] == pytest.approx(
        np.std([0.5, 0.7], ddof=1)
    )
    assert stats["mean"][0] == np.inf
