"""Small faults in the continual-learning study (nnjax.brain.study, study_report, study_plots,
nnjax sleep) that the suite let pass (a mutation audit): each test below fails on one of them
and checks the table's cells, the figures' data or the runs' keys against a hand computation
(NumPy, scipy.stats) or the documented protocol."""

import json
import os
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import nnjax.io
from nnjax.brain import continual as C
from nnjax.brain import dreams as D
from nnjax.brain import harness as H
from nnjax.brain import study, study_plots, study_report, tuned, tuning
from nnjax.commands import sleep

ROWS = ("sequential", "ewc", "src")
O, S = 4, 2  # 4 class orders x 2 seeds: an exact signed-rank p of 0.125 needs 3 digits


def _res(rows=ROWS, n_orders=O, n_seeds=S, seed=0):
    rng, n = np.random.default_rng(seed), n_orders * n_seeds
    m = {}
    for i, r in enumerate(rows):
        m[r] = {k: rng.uniform(0.1, 0.5, size=n) for k in study.METRICS}
        m[r]["final"] = 0.2 + 0.1 * i + rng.uniform(0, 0.05, size=n)  # every run: src > ewc > seq
        m[r]["seen"] = rng.uniform(size=(n, 5))
    res = {"metrics": m, "rows": list(rows), "orders": [0, 3, 5, 7][:n_orders],
           "n_seeds": n_seeds, "dataset": "digits", "scenario": "class",
           "hp": {"sequential": None, "ewc": {"lam": 100.0, "gamma": 0.7071}},
           "hp_source": dict.fromkeys(rows, "tuned"), "diverged": {"ewc": 2}}  # fmt: skip
    res["stats"] = study.summarise(res)
    return res


def _pm(x):
    return f"{100 * np.mean(x):.1f} ± {100 * np.std(x, ddof=1):.1f}"


def _t_cell(d):
    n, sd = len(d), np.std(d, ddof=1)
    h = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    lo, hi = 100 * (d.mean() - h), 100 * (d.mean() + h)
    return f"{100 * d.mean():+.1f} [{lo:.1f}, {hi:.1f}]"


def _p(p):
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def test_the_table_cells_by_hand():
    res = _res()
    lines = study_report.format_table(res).splitlines()
    m, n, L = res["metrics"], O * S, study.LABELS
    assert f"class orders 0,3,5,7 x {S} seeds = {n} paired runs." in lines[0]
    for r in ROWS:
        f = m[r]["final"]
        h = stats.t.ppf(0.975, n - 1) * np.std(f, ddof=1) / np.sqrt(n)
        ci = f"[{100 * (f.mean() - h):.1f}, {100 * (f.mean() + h):.1f}]"
        cells = [_pm(f), ci, *(_pm(m[r][k]) for k in ("bwt", "fwt", "forgetting", "just_learned"))]
        want = f"| {L[r]} | " + " | ".join(cells) + f" | {res['diverged'].get(r, 0)}/{n} |"
        assert want in lines, want
    # paired over the runs: ewc - sequential, then ewc - src
    cells = []
    for ref in ("sequential", "src"):
        d = m["ewc"]["final"] - m[ref]["final"]
        p_t, p_w = stats.ttest_1samp(d, 0).pvalue, stats.wilcoxon(d).pvalue
        cells += [_t_cell(d), _p(p_t), _p(p_w), f"{(d > 0).sum()}/{(d < 0).sum()}"]
    assert f"| {L['ewc']} | " + " | ".join(cells) + " |" in lines
    # over the orders: each order's 2 seeds averaged (runs are order-major), 3 df
    text = "\n".join(lines)
    assert "(t, 3 df)" in text and "2/2^4 = 0.125" in text
    assert f"the {S} seeds of an order share its tasks" in text
    cells = []
    for ref in ("sequential", "src"):
        d = (m["ewc"]["final"] - m[ref]["final"]).reshape(O, S).mean(1)
        c = res["stats"]["ewc"][f"vs_{ref}_orders"]
        assert c["p_wilcoxon"] == 0.125  # every order better / worse: the exact smallest p
        cells += [_t_cell(d), _p(stats.ttest_1samp(d, 0).pvalue), "0.125",
                  f"{(d > 0).sum()}/{(d < 0).sum()}", f"{c['icc']:.2f}"]  # fmt: skip
    assert f"| {L['ewc']} | " + " | ".join(cells) + " |" in lines
    # hyperparameters: sorted by name, 3 significant digits
    assert f"- {L['ewc']}: gamma=0.707, lam=100 (tuned)" in lines
    assert f"- {L['sequential']}: none (tuned)" in lines
    assert (study_report._p(1e-4), study_report._p(9.9e-5)) == ("0.0001", "<1e-4")


def _figures(res, tmp_path, monkeypatch):
    figs = {}
    save = lambda fig, path, **k: figs.setdefault(path.split("/")[-1], fig)  # noqa: E731
    monkeypatch.setattr(nnjax.io, "atomic_save_figure", save)
    study_plots.write_plots(res, str(tmp_path))
    return figs


def test_accuracy_figure_draws_each_rows_seen_curve_with_its_t_interval(tmp_path, monkeypatch):
    res = _res()
    res["A"] = {r: np.random.default_rng(1).uniform(size=(O, S, 5, 10)) for r in ROWS}
    res["task_groups"] = [np.arange(10)[::-1].reshape(5, 2)] * O
    ax = _figures(res, tmp_path, monkeypatch)["accuracy.png"].axes[0]
    assert ax.get_title() == f"digits: mean and 95% CI over {O * S} runs"
    for i, (r, c) in enumerate(zip(ROWS, ax.containers)):
        seen = res["metrics"][r]["seen"]
        mean = seen.mean(0)
        half = stats.t.ppf(0.975, O * S - 1) * seen.std(0, ddof=1) / np.sqrt(O * S)
        line = c.lines[0]
        np.testing.assert_allclose(line.get_xdata(), np.arange(1, 6) + 0.03 * (i - 1.5))
        np.testing.assert_allclose(line.get_ydata(), 100 * mean, rtol=1e-6)
        seg = np.array(c.lines[2][0].get_segments())  # (5, 2 ends, xy)
        np.testing.assert_allclose(seg[:, :, 1], 100 * np.c_[mean - half, mean + half], rtol=1e-6)
        assert c.get_label() == study.LABELS[r]


def test_heatmap_shows_the_first_orders_seed_mean_in_class_order(tmp_path, monkeypatch):
    rows = ("si", "lwf", "replay5", "replay20", "src:plastic", "src+replay1", "genreplay")
    res = _res(rows=rows)
    res["A"] = {r: np.random.default_rng(i).uniform(size=(O, S, 5, 10)) for i, r in enumerate(rows)}
    groups = np.array([3, 1, 4, 0, 9, 2, 6, 5, 8, 7])
    res["task_groups"] = [groups.reshape(5, 2)] + [np.arange(10).reshape(5, 2)] * (O - 1)
    axes = _figures(res, tmp_path, monkeypatch)["heatmap.png"].axes[:-1]  # the colorbar last
    assert [a.get_title() for a in axes] == [study.LABELS["genreplay"]]  # of HEATMAP_ROWS
    rows = rows[:-1]  # none of HEATMAP_ROWS: the first six
    res = _res(rows=rows) | {"A": res["A"], "task_groups": res["task_groups"]}
    axes = _figures(res, tmp_path, monkeypatch)["heatmap.png"].axes[:-1]
    assert [a.get_title() for a in axes] == [study.LABELS[r] for r in rows]
    for a, r in zip(axes, rows):
        want = 100 * res["A"][r][0].mean(0)[:, groups]
        np.testing.assert_allclose(a.images[0].get_array(), want, rtol=1e-6)
        assert [t.get_text() for t in a.get_xticklabels()] == [str(c) for c in groups]


def test_the_study_runs_its_groups_in_order_with_the_documented_keys(monkeypatch):
    calls = []

    def fake(names, dataset, orders, keys, *args):
        calls.append((names, list(orders), np.asarray(jax.random.key_data(keys))))
        n = len(orders) * 3
        met = {k: np.full(n, 0.5) for k in study.METRICS} | {"seen": np.full((n, 5), 0.5)}
        out = {r: {"metrics": met, "A": np.zeros((len(orders), 3, 5, 10)), "final": None,
                   "hp": None, "hp_source": "-", "diverged": 0} for r in names}  # fmt: skip
        return out, 6.0

    monkeypatch.setattr(study, "run_group", fake)
    res = study.run_study("digits", (2, 0), 3, ("joint", "ewc", "sequential"), images=False)
    want = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(0), 3)))
    assert [c[0] for c in calls] == [("sequential", "joint"), ("ewc",)]
    for c in calls:
        assert c[1] == [2, 0] and np.array_equal(c[2], want)
    assert res["rows"] == ["sequential", "joint", "ewc"]
    assert res["seconds"] == {"sequential": 3.0, "joint": 3.0, "ewc": 6.0}  # a group's time split
    assert "unfinished" not in res and res["n_seeds"] == 3 and res["orders"] == [2, 0]
    assert "vs_sequential_orders" in res["stats"]["ewc"]  # 2 orders: compared over the orders


@pytest.mark.parametrize("row, objective", [("src", "final"), ("src:plastic", "plastic")])
def test_src_plastic_takes_the_plasticity_objectives_choice(row, objective):
    hp, source = study.chosen_hp("mnist1d", row)
    want = tuned.CHOSEN["mnist1d"]["src"][objective]
    assert source == f"tuned on mnist1d validation runs ({objective} objective)"
    np.testing.assert_allclose(np.asarray(hp.beta), want["beta"], rtol=1e-6)
    assert float(hp.rate) == pytest.approx(want["rate"], rel=1e-6)


def test_a_tasks_wake_training_is_sgd_with_momentum_on_its_real_rows_by_hand():
    """Task t: fold_in(key, t), ``steps`` SGD-with-momentum steps (a fresh trace per task) at
    the config's rate on batches drawn from the task's n_t real rows (padding never drawn);
    after_task sees the real rows of tasks 0..t."""

    split = C.pad_tasks(C.load_split("digits", 0), 400)  # padding rows past every n_t
    arrays = C.task_arrays(split)
    cfg = C.TrainConfig(hidden=(8,), steps=3, batch_size=5, learning_rate=0.3, momentum=0.7)

    def after_task(params, extra, key, t, task, seen, hp):  # records the seen rows
        X, mask = seen
        return params, extra.at[t].set(jnp.stack([mask.sum(), (X * mask[:, None]).sum()]))

    method = C.Method(init=lambda k, p, hp: jnp.zeros((5, 2)), after_task=after_task)
    run, model = C.make_run(split, cfg, method), C.make_model(cfg, split.n_classes)
    key = jax.random.key(3)
    carry = run.init(arrays, key)
    carry, out = jax.jit(run.tasks)(carry, jnp.arange(2), arrays)
    k_init, k_tasks = jax.random.split(key)
    p = model.init(k_init, (-1, split.X_tasks.shape[2]))[1]
    X, y, n = (np.asarray(a) for a in (split.X_tasks, split.y_tasks, split.n_tasks))
    for t in range(2):
        keys = jax.random.split(jax.random.split(jax.random.fold_in(k_tasks, t))[0], 3)
        trace = jax.tree.map(jnp.zeros_like, p)
        for s, k in enumerate(keys):
            k_b, _ = jax.random.split(k)
            i = np.asarray(jax.random.randint(k_b, (5,), 0, n[t]))
            assert i.max() < n[t]

            x, y1h = jnp.asarray(X[t][i]), jax.nn.one_hot(y[t][i], split.n_classes)
            ce = lambda q, x=x, y1h=y1h: C.soft_cross_entropy(model.apply(q, x), y1h)  # noqa: E731
            val, g = jax.value_and_grad(ce)(p)
            assert float(out.wake_loss[t, s]) == pytest.approx(float(val), rel=1e-5)
            trace = jax.tree.map(lambda tr, gg: gg + 0.7 * tr, trace, g)
            p = jax.tree.map(lambda a, tr: a - 0.3 * tr, p, trace)
    for a, b in zip(jax.tree.leaves(carry.params), jax.tree.leaves(p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    seen = [[n[: t + 1].sum(), sum(X[s][: n[s]].sum() for s in range(t + 1))] for t in (0, 1)]
    np.testing.assert_allclose(np.asarray(carry.extra[:2]), seen, rtol=1e-5)  # tasks 0..t


def test_a_shared_search_scores_each_replay_buffer_on_its_own_candidates(monkeypatch):
    names, n, R = ("replay1", "replay5", "replay20"), 2, 4
    final = np.array([[0.5] * R, [0.4] * R, [0.1] * R, [0.6] * R, [0.3] * R, [0.2] * R])
    final[3, 0] = 0.2  # replay5's second candidate: mean 0.5, sample std by hand below
    got = {}

    def fake(name, dataset, hps, orders, keys, *, validation, group=16):
        got.update(name=name, orders=orders, keys=keys, validation=validation, hps=hps)
        met = {"final": final, "just_learned": final + 0.5, "first_task": final}
        return H.Runs(met, np.zeros(final.shape, bool), 9.0)

    monkeypatch.setattr(H, "run_candidates", fake)
    out = tuning.tune_methods(names, "digits", n)
    keys = jax.random.key_data(jax.random.split(jax.random.key(1000), H.VALIDATION_SEEDS))
    assert got["name"] == "replay1" and got["validation"] and got["orders"] == H.VALIDATION_ORDERS
    assert np.array_equal(jax.random.key_data(got["keys"]), keys)
    assert [out[k]["winners"]["final"] for k in names] == [0, 1, 0]
    for i, k in enumerate(names):
        part = final[i * n : (i + 1) * n]
        np.testing.assert_allclose(out[k]["final_accuracy"]["mean"], part.mean(1))
        np.testing.assert_allclose(out[k]["final_accuracy"]["std"], part.std(1, ddof=1))
        assert out[k]["validation_runs"] == R and out[k]["seconds"] == 3.0
        assert out[k]["chosen"]["final"] == H.hp_at(H.candidates(k, n), out[k]["winners"]["final"])
    assert out["replay5"]["chosen"]["final"]["m"] == 5.0


def test_run_group_keeps_the_network_of_the_first_order_and_seed(monkeypatch):
    """Its "final" network (dreams.png's) is order 0 / seed 0's: its accuracy per group is that
    run's last row of A; every run that diverged counts in "diverged"."""

    real = H.diverged  # every run flagged (as a nan wake loss would): each one counts
    monkeypatch.setattr(H, "diverged", lambda runs: real(runs) | True)
    keys = jax.random.split(jax.random.key(0), 2)
    cfg = C.TrainConfig(hidden=(16,), steps=40)
    out, _ = study.run_group(("lwf",), "digits", [1], keys, cfg)
    split = C.load_split("digits", 1)
    params = out["lwf"]["final"][0]
    acc = C.per_group_accuracy(C.make_model(cfg, 10).apply, params, split.X_test, split.y_test,
                               split.g_test, split.n_groups)  # fmt: skip
    A = np.asarray(out["lwf"]["A"])  # (orders, seeds, T, G)
    np.testing.assert_allclose(np.asarray(acc), A[0, 0, -1], atol=1e-6)
    assert not np.allclose(A[0, 0, -1], A[0, 1, -1])  # the seeds' networks differ
    assert out["lwf"]["diverged"] == 2


def test_nnjax_sleep_runs_the_options_rows_and_writes_them_to_results_json(tmp_path, monkeypatch):
    got = {}

    def fake(dataset, orders, seeds, rows, *, cfg, src_cfg, progress, images, stop):
        got.update(dataset=dataset, orders=orders, seeds=seeds, rows=rows, cfg=cfg,
                   src_cfg=src_cfg, images=images, plan=progress.plan)  # fmt: skip
        res = _res(rows=rows, n_orders=2, n_seeds=seeds)
        res["A"] = {r: np.full((2, seeds, 5, 10), 0.5) for r in rows}
        res["task_groups"] = [np.arange(10).reshape(5, 2)] * 2
        return res | {"seconds": dict.fromkeys(rows, 1.0)}

    monkeypatch.setattr(study, "run_study", fake)
    monkeypatch.setattr(os, "cpu_count", lambda: 7)  # read, not assumed
    out = str(tmp_path / "o")
    os.mkdir(out)  # the run's lock makes it
    args = SimpleNamespace(dataset="mnist1d", orders=[3, 0], seeds=2, methods=["src", "ewc"],
                           steps=7, sleep_steps=11, no_images=True, out=out,
                           overwrite=False)  # fmt: skip
    stop = SimpleNamespace(begin=lambda: None, stopped=lambda *a: got.setdefault("stopped", a))
    sleep._run(args, stop)
    assert got["rows"] == ["ewc", "src", "src:plastic"] and got["orders"] == [3, 0]
    assert (got["dataset"], got["seeds"], got["images"]) == ("mnist1d", 2, False)
    assert (got["cfg"].steps, got["src_cfg"].steps) == (7, 11) and "stopped" not in got
    # the ETA's cost model: a compile (40) + runs x the rows' costs (ewc 2, src 1.5 + 1.5)
    assert got["plan"] == [(("ewc",), 40 + 4 * 2), (("src", "src:plastic"), 40 + 4 * 3)]
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)
    assert res["cpu_count"] == 7 and res["rows"] == got["rows"]
    assert res["wall_s"] >= 0 and len(res["load_average"]) == 3
    want = _res(rows=got["rows"], n_orders=2)["metrics"]["ewc"]["final"]
    assert res["metrics"]["ewc"]["final"] == [round(float(x), 4) for x in want]  # 4 decimals
    assert sorted(os.listdir(out)) == ["accuracy.png", "heatmap.png", "results.json", "table.md"]


def test_dreams_start_from_the_mean_of_the_real_training_rows(monkeypatch):
    got = []
    fake = lambda apply, p, x0, *a, **k: got.append(np.asarray(x0)) or (np.zeros(1),) * 2  # noqa: E731
    monkeypatch.setattr(D, "dream_all_classes", fake)
    split = C.pad_tasks(C.load_split("digits", 2), 400)  # padding rows: not drawn, not averaged
    study._images({"sequential": (None, None)}, None, SimpleNamespace(apply=None), split, None)
    X, n = np.asarray(split.X_tasks), np.asarray(split.n_tasks)
    want = sum(X[t, : n[t]].sum(0) for t in range(5)) / n.sum()
    np.testing.assert_allclose(got[0], want, rtol=1e-5)
