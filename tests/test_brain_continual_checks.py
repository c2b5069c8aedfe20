"""Checks of the continual-learning study's inputs: named errors instead of wrong numbers
(nnjax.brain.study, study_report, continual, tasks)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import continual as C
from nnjax.brain import study, tasks
from nnjax.brain.study_report import _p, format_table


def test_an_undefined_p_value_prints_as_na_not_as_significant():
    assert _p(float("nan")) == "n/a"  # nan >= 1e-4 is False: it printed "<1e-4"
    assert (_p(0.03), _p(1e-6)) == ("0.03", "<1e-4")
    one = {"final": np.array([0.3])}  # 1 run: the paired tests are undefined
    metrics = {r: {k: one["final"] + i for k in study.METRICS} | {"seen": np.ones((1, 5))}
               for i, r in enumerate(("sequential", "lwf"))}  # fmt: skip
    res = {"dataset": "digits", "orders": [0], "n_seeds": 1, "rows": ["sequential", "lwf"],
           "scenario": "class", "metrics": metrics, "hp": {}, "hp_source": {"sequential": "-",
           "lwf": "-"}}  # fmt: skip
    res["stats"] = study.summarise(res)
    row = next(x for x in format_table(res).splitlines() if x.startswith("| LwF | +100.0"))
    assert "<1e-4" not in row and "| n/a | 1 |" in row  # p_t; Wilcoxon n = 1: 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"orders": (0, 0)}, r"orders must be distinct .* got \[0, 0\]"),
        ({"orders": ()}, "orders is empty"),
        ({"orders": (0, -1)}, "an order must be an int >= 0"),
        ({"rows": ("Sequential",)}, r"rows must be distinct names of \('sequential',.*unknown"),
        ({"rows": ("src", "src")}, "a repeated row"),
        ({"rows": "sequential"}, "rows must be a sequence"),
        ({"n_seeds": 0}, "n_seeds must be an int >= 1, got 0"),
        ({"dataset": "digit"}, "unknown dataset 'digit'; valid: \\('digits'"),
        ({"src_cfg": C.TrainConfig()}, "cfg must be an SRCConfig"),
    ],
)
def test_run_study_checks_its_arguments_before_anything_runs(kwargs, match, monkeypatch):
    monkeypatch.setattr(study, "run_group", lambda *a, **k: pytest.fail("the study ran"))
    with pytest.raises(ValueError, match=f"run_study: .*{match}"):
        study.run_study(**{"orders": (0,), "n_seeds": 1, "rows": ("sequential",), **kwargs})


def test_a_group_without_test_examples_has_nan_accuracy():
    apply = lambda p, x: x @ p  # noqa: E731
    X, y = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), jnp.array([0, 0, 0])
    acc = np.asarray(C.per_group_accuracy(apply, jnp.eye(2), X, y, jnp.array([0, 0, 2]), 3))
    np.testing.assert_allclose(acc[[0, 2]], [0.5, 1.0])
    assert np.isnan(acc[1])  # a mean over no example (it read 0.0: "all wrong")
    for g in ([0, 3, 1], [0, -1, 1]):  # ids outside 0..G-1 were dropped silently
        with pytest.raises(ValueError, match="per_group_accuracy: group ids must lie in 0..2"):
            C.per_group_accuracy(apply, jnp.eye(2), X, y, jnp.array(g), 3)


def _tiny_split(T=2, N=4, d=3, K=2) -> C.SplitData:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(T, N, d)).astype(np.float32)
    y = np.tile(np.arange(K, dtype=np.int32), (T, N // K))
    X_te, y_te = X.reshape(-1, d), y.reshape(-1)
    groups = np.arange(K, dtype=np.int32)[None].repeat(T, 0)
    return C.SplitData(X, y, np.full(T, N, np.int32), X_te, y_te, groups, K, (d,), "tiny",
                       y_te.copy(), groups, K, "class")  # fmt: skip


def test_run_seeds_takes_the_programs_own_outer_axes():
    sp = _tiny_split()
    run = C.make_run(sp, C.TrainConfig(hidden=(4,), steps=1, batch_size=2))
    stacked = jax.tree.map(lambda *a: np.stack(a), C.task_arrays(sp), C.task_arrays(sp))
    keys = jax.random.split(jax.random.key(0), 3)
    program = C.seed_program(run, over="arrays")
    runs = C.run_seeds(program, stacked, keys)  # over=None: the program's "arrays"
    assert runs.A_after.shape == (2, 3, 2, 2)  # (O, S, T, G): it was (2, 6, 1, 2) before
    with pytest.raises(ValueError, match="run_seeds: over='hp', but the program was built"):
        C.run_seeds(program, stacked, keys, jnp.zeros(2), over="hp")
    with pytest.raises(ValueError, match=r"arrays.X_tasks must be \(T, N, d\), unstacked"):
        C.run_seeds(C.seed_program(run), stacked, keys)
    with pytest.raises(ValueError, match=r"run_seeds: keys must be \(S,\) keys"):
        C.run_seeds(run, C.task_arrays(sp), jax.random.key(0))  # one unsplit key
    with pytest.raises(ValueError, match="every leaf of hp must stack the candidates"):
        C.run_seeds(run, C.task_arrays(sp), keys, jnp.float32(1.0), over="hp")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tasks.load_split("digits", -1), "load_split: order must be an int >= 0, got -1"),
        (lambda: tasks.load_split("digits", 1.0), "load_split: order must be an int >= 0 .*1.0"),
        (lambda: tasks.load_split("digits", np.arange(10.0)), "integer permutation"),
        (lambda: tasks.class_counts(np.array([0, 1, 12]), 10), "class_counts: .* holds 12"),
        (lambda: tasks.class_counts(np.array([0, -1]), 10), "class_counts: .* holds -1"),
        (lambda: tasks.class_order(-1), "class_order: k must be an int >= 0, got -1"),
    ],
)
def test_tasks_name_bad_orders_and_labels(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tasks_take_numpy_ints():
    sp = tasks.load_split("digits", np.int64(1), classes_per_task=np.int64(5))
    assert sp.task_classes.shape == (2, 5)  # was refused: "must divide 10, got 5"
    np.testing.assert_array_equal(tasks.class_counts(np.array([0, 2, 2]), np.int64(3)), [1, 0, 2])
