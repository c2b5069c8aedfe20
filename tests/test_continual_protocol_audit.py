"""The continual-learning protocol as published (docs/results/sleep-digits/README.md), checked
in code: the splits, the pairing of runs across methods, the search and the scores."""

import jax
import numpy as np
import pytest

from nnjax import data as nndata
from nnjax.brain import continual as C
from nnjax.brain import harness as H
from nnjax.brain import tasks

ORDERS = (0, 1, 2, 3, 4, 100, 101)  # the test orders and the validation orders
TINY = C.TrainConfig(hidden=(16, 16), steps=4, batch_size=4)  # 3 layers: SRC's beta is (3,)


def _digit_indices():
    """(train, test, validation-train, validation-test) indices into scikit-learn's digits,
    by the same stratified splits as the protocol (seed 0, then seed 1 on the train part)."""
    X, y = nndata.digits()
    i_tr, i_te, y_tr, _ = nndata.train_test_split(np.arange(len(y)), y, 0.2, seed=0)
    v_tr, v_te, _, _ = nndata.train_test_split(i_tr, y_tr, 0.2, seed=1)
    return X / 16.0, y, i_tr, i_te, v_tr, v_te


def _rows(split):
    """The real training rows of every task, as a sorted list of bytes (a multiset)."""
    return sorted(bytes(r) for x, n in zip(split.X_tasks, split.n_tasks) for r in np.asarray(x[:n]))


@pytest.mark.parametrize("order", ORDERS)
def test_class_incremental_tasks_partition_the_classes(order):
    validation = order >= tasks.VALIDATION_ORDER
    sp = C.load_split("digits", order, validation=validation)
    perm = C.class_order(order)
    assert sorted(perm.tolist()) == list(range(10))
    np.testing.assert_array_equal(sp.task_classes, perm.reshape(5, 2))  # tasks in order
    if order == 0:
        np.testing.assert_array_equal(perm, np.arange(10))  # the natural order
    X, y, i_tr, _, v_tr, v_te = _digit_indices()
    train_y = y[v_tr if validation else i_tr]
    for t, classes in enumerate(sp.task_classes):
        real = sp.y_tasks[t, : sp.n_tasks[t]]
        # exactly the task's classes, every training example of them
        assert set(real.tolist()) == set(classes.tolist())
        assert sp.n_tasks[t] == np.isin(train_y, classes).sum()
    assert sp.n_tasks.sum() == len(train_y)  # no class in two tasks, no example lost
    # every test example in exactly one group (its class), the counts add up
    np.testing.assert_array_equal(sp.g_test, sp.y_test)
    counts = C.group_counts(sp)
    assert counts.sum() == len(sp.y_test) == (len(v_te) if validation else 360)
    np.testing.assert_array_equal(counts, np.bincount(sp.y_test, minlength=10))


def test_validation_split_is_disjoint_from_the_test_split_by_construction():
    X, y, i_tr, i_te, v_tr, v_te = _digit_indices()
    assert len(np.intersect1d(v_tr, i_te)) == 0 and len(np.intersect1d(v_te, i_te)) == 0
    assert len(np.intersect1d(v_tr, v_te)) == 0 and len(v_tr) + len(v_te) == len(i_tr)
    sp, val = C.load_split("digits", 0), C.load_split("digits", 100, validation=True)
    f32 = np.float32
    np.testing.assert_array_equal(sp.X_test, X[i_te].astype(f32))  # the test split
    np.testing.assert_array_equal(val.X_test, X[v_te].astype(f32))  # a fifth of the train split
    assert _rows(val) == sorted(bytes(r) for r in X[v_tr].astype(f32))
    assert _rows(sp) == sorted(bytes(r) for r in X[i_tr].astype(f32))
    # stratified: each class's share of a held-out part within one example of 20%
    for part, whole in ((i_te, np.arange(len(y))), (v_te, i_tr)):
        held, full = np.bincount(y[part], minlength=10), np.bincount(y[whole], minlength=10)
        assert np.all(np.abs(held - 0.2 * full) < 1.0)


@pytest.mark.parametrize("order, validation", [(0, False), (3, False), (100, True)])
def test_permuted_tasks_share_one_permutation_between_train_and_test(order, validation):
    p = C.load_split("permuted-digits", order, validation=validation)
    base = C.load_split("digits", 0, validation=validation)
    T, _, d = p.X_tasks.shape
    perms = tasks.task_permutations(order, d)
    np.testing.assert_array_equal(perms[0], np.arange(d))  # task 0: the identity
    assert all(sorted(q.tolist()) == list(range(d)) for q in perms)
    assert len({q.tobytes() for q in perms}) == T
    M = len(base.y_test)
    Xtr = np.concatenate([x[:n] for x, n in zip(base.X_tasks, base.n_tasks)])
    for t in range(T):
        assert _rows(p._replace(X_tasks=p.X_tasks[t : t + 1], n_tasks=p.n_tasks[t : t + 1])) == (
            sorted(bytes(r) for r in Xtr[:, perms[t]])
        )
        np.testing.assert_array_equal(p.X_test[t * M : (t + 1) * M], base.X_test[:, perms[t]])
        np.testing.assert_array_equal(p.g_test[t * M : (t + 1) * M], t)


def test_task_permutations_and_load_split_name_bad_arguments():
    with pytest.raises(ValueError, match="task_permutations: order must be an int >= 0, got -1"):
        tasks.task_permutations(-1, 8)  # NumPy's SeedSequence error, naming nothing
    with pytest.raises(ValueError, match="task_permutations: n_tasks must be an int >= 1"):
        tasks.task_permutations(0, 8, 0)  # returned one task
    with pytest.raises(ValueError, match="load_split: validation must be True or False"):
        C.load_split("digits", 0, validation="no")  # truthy: the validation split, silently


def _recording_build(build):
    """``harness.build`` whose method also carries the run's initial network in ``extra``."""

    def wrapped(name, split, cfg, src_cfg):
        m = build(name, split, cfg, src_cfg) or C.Method()
        apply = C.make_model(cfg, split.n_classes).apply

        def init(key, params, hp):
            return {"inner": m.init(key, params, hp) if m.init else (), "p0": params}

        def loss(params, extra, key, t, x, y1h, hp):
            if m.loss is None:
                return C.soft_cross_entropy(apply(params, x), y1h)
            return m.loss(params, extra["inner"], key, t, x, y1h, hp)

        def optimizer(opt, params, extra, t, hp):
            return m.optimizer(opt, params, extra["inner"], t, hp) if m.optimizer else opt

        def after_wake(params, extra, state, t, hp):
            if m.after_wake is None:
                return extra
            return {**extra, "inner": m.after_wake(params, extra["inner"], state, t, hp)}

        def after_task(params, extra, key, t, task, seen, hp):
            if m.after_task is None:
                return params, extra
            params, inner = m.after_task(params, extra["inner"], key, t, task, seen, hp)
            return params, {**extra, "inner": inner}

        return C.Method(init, loss, after_task, optimizer, after_wake, m.check)

    return wrapped


def test_every_method_gets_the_same_initial_network_and_first_task_training(monkeypatch):
    monkeypatch.setitem(H.WAKE, "digits", TINY)
    monkeypatch.setattr(H, "build", _recording_build(H.build))
    keys = jax.random.split(jax.random.key(1000), 2)
    seen = {}

    class Enough(Exception):
        """Raised by the hook once task 0 is recorded: tasks 1-4 would not be looked at."""

    for name in ("sequential", "ewc", "src", "joint"):

        def hook(report, name=name):  # a driver hook: after task 0's chunk
            assert report.begin == 0  # the first chunk, which is task 0 alone
            leaves = jax.tree.leaves(report.carry.extra["p0"])
            seen[name] = ([np.asarray(x) for x in leaves], report.outputs.wake_loss)
            raise Enough

        hps = H.candidates(name, 2) if name in H.BOX else None
        with pytest.raises(Enough):
            H.run_candidates(name, "digits", hps, (100, 101), keys, validation=True,
                             hooks=(hook,))  # fmt: skip
    p_ref, loss_ref = seen["sequential"]
    for name, (p0, loss) in seen.items():
        for c in range(loss.shape[0]):  # every candidate: (orders, seeds, task 0, steps)
            for a, b in zip(p0, p_ref):
                np.testing.assert_array_equal(a[c], b[0], err_msg=name)
            # the same batches from the same network: the same losses, bit for bit
            np.testing.assert_array_equal(loss[c], loss_ref[0], err_msg=name)
    assert not np.array_equal(p_ref[0][0, 0, 0], p_ref[0][0, 0, 1])  # seeds differ


def test_the_first_task_batches_are_the_same_rows_for_every_method():
    sp = C.load_split("digits", 1)
    cum = C.cumulative(sp)  # joint's data: task 0 is task 0, then the union of tasks 0..t
    np.testing.assert_array_equal(cum.X_tasks[0, : sp.n_tasks[0]], sp.X_tasks[0, : sp.n_tasks[0]])
    np.testing.assert_array_equal(cum.n_tasks, np.cumsum(sp.n_tasks))
    cfg, src_cfg = C.TrainConfig(hidden=(16, 16), steps=3, batch_size=5), H.configs("digits")[1]
    key = jax.random.key(7)
    batches = {}
    for name, split in (("sequential", sp), ("ewc", sp), ("joint", cum)):
        got = []
        method = _recording_build(H.build)(name, split, cfg, src_cfg)
        inner_loss = method.loss

        def loss(params, extra, k, t, x, y1h, hp, got=got, inner=inner_loss):
            jax.debug.callback(lambda t, x: got.append((int(t), np.asarray(x))), t, x, ordered=True)
            return inner(params, extra, k, t, x, y1h, hp)

        run = C.make_run(split, cfg, method._replace(loss=loss))
        hp = H.as_hp("ewc", H.hp_at(H.candidates("ewc", 1), 0)) if name == "ewc" else None
        run.tasks(run.init(C.task_arrays(split), key, hp), np.arange(1), C.task_arrays(split), hp)
        jax.effects_barrier()
        batches[name] = np.stack([x for t, x in got if t == 0])
    assert batches["sequential"].shape == (3, 5, 64)
    for name in ("ewc", "joint"):
        np.testing.assert_array_equal(batches[name], batches["sequential"], err_msg=name)


def test_every_method_draws_the_same_unit_cube_numbers():
    n = 8
    for name, (lo, hi) in H.BOX.items():
        us = []
        for a, b, x in zip(*(jax.tree.leaves(t) for t in (lo, hi, H.candidates(name, n)))):
            a, b = (np.asarray(v, np.float64).ravel() for v in (a, b))
            x = np.asarray(x, np.float64).reshape(n, -1)
            with np.errstate(divide="ignore", invalid="ignore"):  # a fixed leaf: 0/0
                us.append(np.where(a < b, np.log(x / a) / np.log(b / a), np.nan))
        u = np.concatenate(us, axis=1)  # (n, width): column j is hyperparameter j
        ref = np.random.default_rng(H.SEARCH_SEED).random((u.shape[1], n)).T
        ref[0] = 0.5  # candidate 0: the box's geometric centre, sqrt(lo hi)
        drawn = ~np.isnan(u)
        np.testing.assert_allclose(u[drawn], ref[drawn], atol=1e-6, err_msg=name)
        assert drawn.sum() >= n, name  # every method searches at least one number


def test_candidates_refuse_a_box_they_cannot_draw_from(monkeypatch):
    f = np.float32
    bad = ({"lam": f(5.0), "gamma": f(0.5)}, {"lam": f(1.0), "gamma": f(1.0)})
    monkeypatch.setitem(H.BOX, "ewc", bad)  # drew from [1, 5] silently
    with pytest.raises(ValueError, match=r"candidates: BOX\['ewc'\]\['lam'\] .*lo=5, hi=1"):
        H.candidates("ewc", 3)
    monkeypatch.setitem(H.BOX, "ewc", ({**bad[0], "lam": f(0.0)}, bad[1]))  # nan candidates
    with pytest.raises(ValueError, match=r"BOX\['ewc'\]\['lam'\] needs finite 0 < lo"):
        H.candidates("ewc", 3)


def test_selection_ties_and_the_two_objectives():
    final = np.array([[0.4, 0.6], [0.5, 0.5], [0.7, 0.7], [0.5, 0.5]])
    just = np.array([[0.95, 0.91], [0.93, 0.93], [0.80, 0.82], [0.99, 0.99]])
    runs = H.Runs({"final": final, "just_learned": just}, np.zeros((4, 2), bool), 0.0)
    pick = H.select(runs, floor=0.9)
    assert pick["final"] == 2  # mean 0.7
    # plastic: candidates 0, 1, 3 keep >= 90%; all end at 0.5: the first (lowest index) wins
    assert pick["plastic"] == 0 and pick["plastic_met_floor"]
    none = H.select(runs, floor=0.995)  # none qualifies: the most plastic, and it is said
    assert none == {"final": 2, "plastic": 3, "plastic_met_floor": False}
    runs.diverged[2, 1] = True  # one diverged validation run: never chosen
    assert H.select(runs, floor=0.9)["final"] == 0


def test_the_accuracy_matrices_and_the_final_accuracy_count_test_examples():
    """Row i of A_after is the network after task i and its consolidation (SRC's sleep), on
    each class; the example-weighted final accuracy is the fraction of test examples right."""
    splits = H.splits_for("digits", (100, 101), validation=True)
    # a 200-step sleep (the study's: 1000) still changes the rows: it moved 48% of the
    # per-class accuracies (1000 steps: 50%), and the bookkeeping checked is the same
    cfg, src_cfg = TINY, H.configs("digits")[1]._replace(steps=200)
    method = H.build("src", splits[0], cfg, src_cfg)
    apply = C.make_model(cfg, 10).apply
    program = C.seed_program(C.make_run(splits[0], cfg, method), over="hp+arrays")
    keys = jax.random.split(jax.random.key(3), 2)
    hp = H.candidates("src", 2)
    after = []
    hook = lambda report: after.append(jax.tree.map(np.asarray, report.carry.params))  # noqa: E731
    runs = C.run_seeds(program, H.stack_arrays(splits), keys, hp, over="hp+arrays",
                       check_finite=False, hooks=(hook,))  # fmt: skip
    assert runs.A_after.shape == (2, 2, 2, 5, 10)  # (candidates, orders, seeds, tasks, classes)
    m = H.score_runs(runs, splits)
    assert m["final"].shape == (2, 4)
    for c in range(2):
        for o, sp in enumerate(splits):
            for s in range(2):
                right = []
                for t in range(5):  # the network after task t (hook: after the sleep)
                    p = jax.tree.map(lambda a, c=c, o=o, s=s: a[c, o, s], after[t])
                    right = np.argmax(np.asarray(apply(p, sp.X_test)), 1) == sp.y_test
                    per_class = [right[sp.y_test == k].mean() for k in range(10)]
                    np.testing.assert_allclose(runs.A_after[c, o, s, t], per_class, atol=1e-6)
                # the last network's hand count: right / all test examples
                np.testing.assert_allclose(m["final"][c, o * 2 + s], right.mean(), atol=1e-6)
    assert not np.array_equal(runs.A_wake, runs.A_after)  # the sleep changed the rows


def test_harness_functions_name_bad_arguments():
    with pytest.raises(ValueError, match="splits_for: orders must be distinct"):
        H.splits_for("digits", [100, 100], validation=True)  # counted its runs twice
    with pytest.raises(ValueError, match="splits_for: orders must be a sequence"):
        H.splits_for("digits", 100, validation=True)  # a bare TypeError
    with pytest.raises(ValueError, match="validate: unknown method 'EWC'"):
        H.validate("EWC", "digits", 2)  # "unknown method" naming no function
    with pytest.raises(ValueError, match="run_candidates: unknown method 'foo'"):
        H.run_candidates("foo", "digits", None, [100], jax.random.split(jax.random.key(0), 1),
                         validation=True)  # fmt: skip
    with pytest.raises(ValueError, match=r"as_hp: the hyperparameters of 'ewc' are \['gamma', "):
        H.as_hp("ewc", {"lambda": 1.0, "gamma": 0.5})  # returned as it was
    with pytest.raises(ValueError, match="as_hp: the hyperparameters of 'src'"):
        H.as_hp("src", {"alpha": 1.0})  # SRCParams' TypeError
    with pytest.raises(ValueError, match="as_hp: 'joint' has no hyperparameters"):
        H.as_hp("joint", {"a": 1.0})


def test_validation_runs_share_no_class_order_and_no_seed_with_the_test_runs():
    from nnjax.brain import study

    test = {tuple(C.class_order(o)) for o in study.TEST_ORDERS}
    val = {tuple(C.class_order(o)) for o in H.VALIDATION_ORDERS}
    assert len(test) == 5 and len(val) == 2 and not test & val
    keys = lambda k, n: {  # noqa: E731
        tuple(np.asarray(jax.random.key_data(x)).tolist())
        for x in jax.random.split(jax.random.key(k), n)
    }
    assert not keys(0, study.TEST_SEEDS) & keys(1000, H.VALIDATION_SEEDS)


def test_a_shared_search_gives_each_method_its_own_n_candidates(monkeypatch):
    """The replay buffers run as one program (3n candidates): each gets its own n, its own
    scores and the winner among them (run_candidates replaced by scores that name the
    candidate: final = its index / 100 on every run)."""
    from nnjax.brain import tuning

    n, calls = 4, []

    def fake(name, dataset, hps, orders, keys, **kw):
        C_ = int(jax.tree.leaves(hps)[0].shape[0])
        calls.append((name, C_, tuple(orders), len(keys), kw["validation"]))
        score = np.repeat(np.arange(C_)[:, None] / 100.0, 10, axis=1)
        return H.Runs({"final": score, "just_learned": score + 0.9, "first_task": score},
                      np.zeros((C_, 10), bool), 1.0)  # fmt: skip

    monkeypatch.setattr(H, "run_candidates", fake)
    out = tuning.tune_methods(("replay1", "replay5", "replay20"), "digits", n)
    assert calls == [("replay1", 3 * n, H.VALIDATION_ORDERS, H.VALIDATION_SEEDS, True)]
    for i, name in enumerate(("replay1", "replay5", "replay20")):
        rec = out[name]
        np.testing.assert_allclose(rec["final_accuracy"]["mean"], (i * n + np.arange(n)) / 100)
        assert rec["winners"] == {"final": n - 1, "plastic": n - 1}
        assert rec["chosen"]["final"] == H.hp_at(H.candidates(name, n), n - 1)
        assert len(rec["candidates"]) == n and rec["validation_runs"] == 10


def test_a_run_whose_last_consolidation_broke_the_network_counts_as_diverged():
    """Only a non-finite wake loss marked a run diverged: a consolidation after the last
    task that left nan params (no wake training follows it) was scored as a finished run."""
    from types import SimpleNamespace

    from nnjax.brain import harness

    C_, O_, S_, T_, steps = 2, 3, 2, 5, 4
    loss = np.ones((C_, O_, S_, T_, steps))
    loss[1, 2, 0, 3, 1] = np.inf  # a wake loss: diverged, as before
    W = np.zeros((C_, O_, S_, 4, 3))
    W[0, 1, 1, 2, 0] = np.nan  # finite losses, nan final params: diverged now
    runs = SimpleNamespace(wake_loss=loss, final=([{"W": W, "b": np.zeros((C_, O_, S_, 3))}], {}))
    bad = harness.diverged(runs)
    assert bad.shape == (C_, O_, S_)
    assert sorted(zip(*np.nonzero(bad))) == [(0, 1, 1), (1, 2, 0)]
