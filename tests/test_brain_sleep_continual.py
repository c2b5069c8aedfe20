"""The class-incremental benchmark: the splits, the metrics, and the two baselines."""

import jax
import numpy as np
import pytest

from nnjax.brain import continual as C
from nnjax.brain import tasks


def test_load_split_digits():
    sp = C.load_split("digits", 0)
    T, N, d = sp.X_tasks.shape
    assert (T, d, sp.n_classes, sp.image_shape) == (5, 64, 10, (8, 8))
    np.testing.assert_array_equal(sp.task_classes, np.arange(10).reshape(5, 2))
    assert sp.n_tasks.sum() + len(sp.y_test) == 1797
    assert 0.0 <= sp.X_tasks.min() and sp.X_tasks.max() <= 1.0  # firing rates need [0, 1]
    for t in range(T):  # only the task's classes, padding included
        assert set(np.unique(sp.y_tasks[t])) == set(sp.task_classes[t])
    other = C.load_split("digits", 1)
    assert sorted(other.task_classes.ravel()) == list(range(10))
    assert not np.array_equal(other.task_classes, sp.task_classes)


def test_validation_split_never_touches_the_test_set():
    sp, val = C.load_split("digits", 0), C.load_split("digits", 0, validation=True)
    assert val.n_tasks.sum() + len(val.y_test) == sp.n_tasks.sum()
    train_rows = {r.tobytes() for t, n in zip(sp.X_tasks, sp.n_tasks) for r in t[:n]}
    assert all(r.tobytes() in train_rows for r in val.X_test)


def test_load_split_validates():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        C.load_split("cifar")
    with pytest.raises(ValueError, match="permutation"):
        C.load_split("digits", np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(ValueError, match="classes_per_task must divide 10"):
        C.load_split("digits", classes_per_task=3)


def test_cumulative_and_padding():
    sp = C.load_split("digits", 0)
    cum = C.cumulative(sp)
    np.testing.assert_array_equal(cum.n_tasks, np.cumsum(sp.n_tasks))
    assert set(np.unique(cum.y_tasks[2])) == set(range(6))
    padded = C.pad_tasks(sp, cum.X_tasks.shape[1])
    assert padded.X_tasks.shape == cum.X_tasks.shape
    np.testing.assert_array_equal(
        padded.X_tasks[1, : sp.n_tasks[1]], sp.X_tasks[1, : sp.n_tasks[1]]
    )
    with pytest.raises(ValueError, match="below"):
        C.pad_tasks(sp, 3)


def test_metrics_on_a_hand_made_matrix():  # more in test_brain_scores
    task_classes = np.array([[0, 1], [2, 3]])
    counts = np.array([10.0, 10, 20, 20])
    A = np.array([[1.0, 1.0, 0.0, 0.0], [0.5, 0.0, 1.0, 0.5]])
    m = C.metrics(A, task_classes, counts)
    np.testing.assert_allclose(m["seen"], [1.0, (5 + 0 + 20 + 10) / 60])
    np.testing.assert_allclose(m["old"], 0.25)
    np.testing.assert_allclose(m["forgetting"], 1.0 - 0.25)
    # leading axes are runs
    m2 = C.metrics(np.stack([A, A]), task_classes, counts)
    np.testing.assert_allclose(m2["final"], [m["final"]] * 2)


def test_sequential_forgets_and_joint_does_not():
    sp = C.load_split("digits", 0)
    cum = C.cumulative(sp)
    N = cum.X_tasks.shape[1]
    cfg = C.TrainConfig(hidden=(32,), steps=60, batch_size=32, learning_rate=0.1)
    program = C.seed_program(C.make_run(sp, cfg))  # one compile for both
    keys = jax.random.split(jax.random.key(0), 2)
    counts = C.class_counts(sp.y_test, 10)
    res = {}
    for name, s in (("seq", C.pad_tasks(sp, N)), ("joint", cum)):
        runs = C.run_seeds(program, C.task_arrays(s), keys)
        np.testing.assert_array_equal(runs.A_wake, runs.A_after)  # no after-task hook
        assert runs.wake_loss.shape == (2, 5, 60) and np.isfinite(runs.wake_loss).all()
        res[name] = C.metrics(runs.A_after, sp.task_classes, counts)
    assert program.tasks.compile_time > 0 and len(program.tasks.by_length) == 1
    assert np.all(res["seq"]["old"] < 0.05)  # catastrophic forgetting
    assert np.all(res["seq"]["seen"][:, 0] > 0.9)  # but each task is learned
    assert np.all(res["joint"]["final"] > 0.8)
    assert np.all(res["seq"]["forgetting"] > 0.9) and np.all(res["joint"]["forgetting"] < 0.2)


def test_cli_rejects_bad_arguments():
    from nnjax.cli import main

    assert main(["sleep", "--methods", "dream"]) == 2
    assert main(["sleep", "--orders", "a,b"]) == 2
    assert main(["sleep", "--seeds", "0"]) == 2


def test_study_table_and_json_roundtrip():
    from nnjax.brain import study
    from nnjax.brain.study_report import format_table

    rng = np.random.default_rng(0)
    metrics = {}
    for r, level in (("sequential", 0.2), ("src", 0.45)):
        final = level + 0.01 * rng.standard_normal(4)
        metrics[r] = {k: final for k in study.METRICS} | {"seen": np.tile(final[:, None], 5)}
    res = {
        "dataset": "digits", "orders": [0, 1], "n_seeds": 2, "rows": ["sequential", "src"],
        "scenario": "class", "metrics": metrics, "hp": {"sequential": None, "src": {"inc": 0.5}},
        "hp_source": {"sequential": "no hyperparameters", "src": "tuned"},
        "diverged": {"src": 1},
    }  # fmt: skip
    res["stats"] = study.summarise(res)
    table = format_table(res)
    s = res["stats"]["sequential"]["final"]
    assert f"| {100 * s['mean']:.1f} ± {100 * s['std']:.1f} |" in table
    assert f"[{100 * s['lo']:.1f}, {100 * s['hi']:.1f}]" in table
    diff = res["stats"]["src"]["vs_sequential"]["diff"]
    assert f"{100 * diff['mean']:+.1f}" in table and "4/0" in table
    assert "inc=0.5 (tuned)" in table
    src_row = next(x for x in table.splitlines() if x.startswith("| SRC (sleep) |"))
    seq_row = next(x for x in table.splitlines() if x.startswith("| sequential"))
    assert src_row.endswith("| 1/4 |") and seq_row.endswith("| 0/4 |")  # diverged runs
    back = study.as_arrays(study.jsonable(res))
    np.testing.assert_allclose(back["metrics"]["src"]["final"], metrics["src"]["final"], atol=1e-4)


def test_permuted_split_is_domain_incremental():
    sp = C.load_split("permuted-digits", 3)
    T, N, d = sp.X_tasks.shape
    assert (T, sp.scenario, sp.n_groups) == (5, "domain", 5)
    np.testing.assert_array_equal(sp.task_groups.ravel(), np.arange(5))
    perms = tasks.task_permutations(3, d)
    np.testing.assert_array_equal(perms[0], np.arange(d))  # task 0: the original inputs
    for t in range(T):
        np.testing.assert_array_equal(sp.X_tasks[t], sp.X_tasks[0][:, perms[t]])
        np.testing.assert_array_equal(sp.y_tasks[t], sp.y_tasks[0])
        rows = sp.g_test == t
        np.testing.assert_array_equal(sp.X_test[rows], sp.X_test[sp.g_test == 0][:, perms[t]])
    assert len(np.unique(perms[1:], axis=0)) == 4
    with pytest.raises(ValueError, match="takes an int order"):
        C.load_split("permuted-digits", np.arange(10))


def test_mnist1d_is_the_canonical_split_as_on_off_channels():
    from nnjax import data

    sp = C.load_split("mnist1d", 0)
    X_tr, y_tr, X_te, y_te = data.mnist1d_canonical()
    assert sp.n_tasks.sum() == 4000 and len(sp.y_test) == 1000 and sp.image_shape == (2, 40)
    np.testing.assert_array_equal(sp.y_test, y_te)
    scale = np.abs(X_tr).max()
    np.testing.assert_allclose(sp.X_test[:, :40] - sp.X_test[:, 40:], np.clip(X_te / scale, -1, 1),
                               atol=1e-6)  # fmt: skip
    assert sp.X_tasks.min() == 0.0 and sp.X_tasks.max() == 1.0
