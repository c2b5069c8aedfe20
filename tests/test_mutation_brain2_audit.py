"""Small faults in the brain side that the suite let pass (a mutation audit): each test
compares against an independent oracle (a NumPy loop of the documented equations, the
documented seeding, a count by hand) and fails on the fault named in its docstring."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import circuits, convert, harness, tasks
from nnjax.brain import network as nw
from nnjax.brain.continual_run import Method, make_run
from nnjax.brain.continual_train import TrainConfig


def _numpy_if(layers, x, n_steps, theta, reset):
    """The IF network of convert's docstring as a NumPy loop: u = v + I, s = [u >= theta],
    v' = u - theta s (subtract) or u (1 - s) (zero); the output is the mean output current."""
    Ws = [np.asarray(p["W"], np.float64) for p in layers]
    bs = [np.asarray(p["b"], np.float64) for p in layers]
    vs = [np.zeros((x.shape[0], W.shape[1])) for W in Ws[:-1]]
    counts = [np.zeros_like(v) for v in vs]
    for _ in range(n_steps):
        inp = np.asarray(x, np.float64)
        for i in range(len(vs)):
            u = vs[i] + (inp @ Ws[i] + bs[i])
            s = (u >= theta).astype(np.float64)
            vs[i] = u - theta * s if reset == "subtract" else u * (1.0 - s)
            counts[i] += s
            inp = s
    rates = [c / n_steps for c in counts]
    return rates[-1] @ Ws[-1] + bs[-1], rates


def test_if_simulation_with_theta_not_one_subtracts_theta_not_one():
    """Fault: the subtractive reset took 1 off the potential, v' = u - s, whatever theta:
    exact for theta = 1 (every other test), wrong rates for theta = 0.5 or 2."""
    rng = np.random.default_rng(0)
    layers = [
        {"W": jnp.asarray(rng.uniform(0.0, 0.6, (3, 4)), jnp.float32), "b": jnp.zeros(4)},
        {"W": jnp.asarray(rng.normal(0.0, 1.0, (4, 2)), jnp.float32), "b": jnp.zeros(2)},
    ]
    conv = convert.Converted(layers, jnp.ones(3))
    x = jnp.asarray(rng.uniform(0.2, 1.0, (5, 3)), jnp.float32)
    for theta in (0.5, 2.0):
        for reset in ("subtract", "zero"):
            out = convert.simulate(conv, x, 40, reset=reset, theta=theta)
            want_out, want_rates = _numpy_if(layers, np.asarray(x), 40, theta, reset)
            np.testing.assert_allclose(np.asarray(out.rates[0]), want_rates[0], atol=1e-6)
            np.testing.assert_allclose(np.asarray(out.output), want_out, atol=1e-4)


def test_task_permutations_follow_the_documented_seeds():
    """Fault: task t > 0 drew default_rng([order, t - 1]) instead of the documented
    default_rng([order, t]) (task 1 seeded like [order, 0]): still permutations, still
    distinct, but not the documented (and published) tasks."""
    perms = tasks.task_permutations(3, 12, 4)
    np.testing.assert_array_equal(perms[0], np.arange(12))
    for t in range(1, 4):
        np.testing.assert_array_equal(perms[t], np.random.default_rng([3, t]).permutation(12))


def _toy_split(n_tasks):
    """A 2-task split whose real rows of feature 0 are 0, 1, ..., n_t - 1 (padding: -100)."""
    T, N, d = len(n_tasks), 6, 2
    X = np.full((T, N, d), -100.0, np.float32)
    for t, n in enumerate(n_tasks):
        X[t, :n, 0] = np.arange(n)
    y = np.zeros((T, N), np.int32)
    return tasks.SplitData(
        X, y, np.asarray(n_tasks, np.int32), np.zeros((4, d), np.float32),
        np.array([0, 1, 0, 1], np.int32), np.array([[0, 1], [0, 1]], np.int32), 2, (d,),
        "toy", np.array([0, 1, 0, 1], np.int32), np.array([[0, 1], [0, 1]], np.int32), 2,
        "class",
    )  # fmt: skip


def test_wake_batches_draw_every_real_row_and_no_padding():
    """Fault: mini-batch indices were drawn from 0..n_t - 2 (randint's maxval n_t - 1), so the
    last real row of each task was never trained on. The loss here is the batch mean of
    feature 0, which is the row index: over 200 steps of 16 it must reach n_t - 1, never the
    padding, and average (n_t - 1) / 2."""
    split = _toy_split([2, 5])
    cfg = TrainConfig(hidden=(3,), steps=200, batch_size=16, learning_rate=1e-9, momentum=0.0)

    def loss(params, extra, key, t, x, y1h, hp):
        w = sum(jnp.sum(p["W"]) for p in params if "W" in p)
        return jnp.max(x[:, 0]) * 1000.0 + jnp.mean(x[:, 0]) + 0.0 * w

    run = make_run(split, cfg, Method(loss=loss))
    arrays = tasks.task_arrays(split)
    _, out = jax.jit(run.tasks)(run.init(arrays, jax.random.PRNGKey(0)), jnp.arange(2), arrays)
    losses = np.asarray(out.wake_loss)  # (T, steps)
    for t, n in enumerate([2, 5]):
        top = np.floor(losses[t] / 1000.0 + 1e-6)
        assert top.max() == n - 1, (t, top.max())  # the last real row is drawn
        assert top.min() >= 0  # no padding row (-100)
        mean = losses[t] - 1000.0 * top
        assert abs(mean.mean() - (n - 1) / 2) < 0.1, (t, mean.mean())


def test_after_task_sees_the_rows_of_tasks_up_to_and_including_t():
    """Fault: after_task's ``seen`` mask held tasks 0..t-1 (``< t``): task 0's sleep saw no
    data and each later one missed its own task. The mask must count n_0 + ... + n_t rows and
    select exactly those rows."""
    split = _toy_split([2, 5])
    cfg = TrainConfig(hidden=(3,), steps=1, batch_size=2)

    def after_task(params, extra, key, t, task, seen, hp):
        X, mask = seen
        row = (jnp.sum(mask), jnp.sum(jnp.where(mask, X[:, 0], 0.0)))
        return params, extra.at[t].set(jnp.stack(row))

    method = Method(init=lambda key, params, hp: jnp.zeros((2, 2)), after_task=after_task)
    run = make_run(split, cfg, method)
    _, _, (_, extra) = run(tasks.task_arrays(split), jax.random.PRNGKey(1))
    # task 0: rows 0, 1 (sum 1); task 1: also rows 0..4 of task 1 (sum 10)
    np.testing.assert_allclose(np.asarray(extra), [[2.0, 1.0], [7.0, 11.0]])


def test_spike_overflow_counts_the_ids_that_did_not_fit_and_bins_end_at_every_dt():
    """Faults: ``spike_overflow`` was off by one (sum(fired) - max_spikes - 1), and
    ``bin_times`` gave the bins' starts (0, every dt, ...) instead of their documented ends.
    The overflow is checked against a raster of the same run, by hand."""
    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2, rate_ext=3000.0, w_ext=2.0)
    params = circuits.init_params(jax.random.key(0), cfg)
    key = jax.random.key(7)
    fine = nw.simulate(key, params, cfg.spec, 300, monitor=nw.Monitor(every=1))
    ids = nw.simulate(
        key, params, cfg.spec, 300, monitor=nw.Monitor(spikes="indices", max_spikes=1)
    )
    fired = (np.asarray(fine.record["spikes"]) > 0).sum(1)
    assert (fired == 2).any() and (fired == 1).any()  # the off-by-one cases occur
    np.testing.assert_array_equal(ids.record["spike_overflow"], np.maximum(fired - 1, 0))
    np.testing.assert_allclose(nw.bin_times(3, 10, 0.1), [1.0, 2.0, 3.0])


def test_select_counts_a_just_learned_accuracy_at_the_floor_as_meeting_it():
    """Fault: the plasticity floor was strict (plastic > floor): a candidate whose mean
    just-learned accuracy equals the floor lost to a less accurate, more plastic one."""
    runs = SimpleNamespace(
        metrics={"final": np.array([[0.9, 0.9], [0.6, 0.6]]),
                 "just_learned": np.array([[0.5, 0.5], [0.8, 0.8]])},
        diverged=np.zeros((2, 2), bool),
    )  # fmt: skip
    assert harness.select(runs, floor=0.5) == {
        "final": 0, "plastic": 0, "plastic_met_floor": True
    }  # fmt: skip
    assert harness.select(runs, floor=0.51)["plastic"] == 1


def test_night_stats_compare_sleep_against_quiet_wake_in_that_order():
    """Fault: experiment_stats passed (quiet wake, sleep) to paired_stats, so the reported
    difference was wake - sleep: a benefit of sleep read as a loss. Here sleep recalls
    0.10 to 0.13 more in every seed: the difference's mean must be +0.11667, "a" sleep's."""
    from nnjax.brain import consolidation, night

    sleep, wake = np.array([0.6, 0.72, 0.83]), np.array([0.5, 0.6, 0.7])

    def measure():
        return {cond: {st: {"S1": x, "S2": x} for st in consolidation.STAGES}
                for cond, x in (("sleep", sleep), ("quiet_wake", wake))}  # fmt: skip

    raw = {"recall": measure(), "trace": measure(), "replay_order": {"sleep": [0.5, np.nan]}}
    stats = night.experiment_stats(raw)
    for m in ("recall", "trace"):
        for st in consolidation.STAGES:
            got = stats[m][st]["S2"]
            assert abs(got["difference"]["mean"] - 0.35 / 3) < 1e-12
            assert abs(got["a"]["mean"] - sleep.mean()) < 1e-12
            assert abs(got["b"]["mean"] - 0.6) < 1e-12
    assert stats["replay_order_sleep"]["mean"] == 0.5


def test_stdp_weights_act_on_the_network_within_the_run():
    """Fault: the plastic run updated W_ee but stepped the network with the initial W_ee, so
    learning never changed the activity of the run that learned (only Run.W_ee). With
    potentiation only, the E cells of the same drive (same key) must fire more than with
    frozen weights."""
    from nnjax.brain import plasticity

    cfg = circuits.NetworkConfig(n_exc=40, n_inh=10, p=0.2, rate_ext=3000.0, w_ext=2.0)
    params = circuits.init_params(jax.random.key(0), cfg)
    key, mon = jax.random.key(7), nw.Monitor(every=1, rate=False, lfp=False)
    stdp = plasticity.PairSTDPParams(a_plus=2.0, a_minus=0.0, w_max=40.0)
    frozen = nw.simulate(key, params, cfg.spec, 400, monitor=mon)
    plastic = nw.simulate(key, params, cfg.spec, 400, monitor=mon, stdp=stdp)
    assert float(jnp.max(plastic.W_ee - params.W_ee)) > 1.0  # the weights did grow
    s_f, s_p = np.asarray(frozen.record["spikes"]), np.asarray(plastic.record["spikes"])
    assert s_p[:, :40].sum() > s_f[:, :40].sum()
