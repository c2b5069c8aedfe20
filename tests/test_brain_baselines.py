"""The continual-learning baselines against hand-computed cases (nnjax.brain.baselines)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax.brain import baselines as B
from nnjax.brain import continual as C


def linear(params, x):
    """A 2-parameter model: logits (B, 2) = x (B, 1) @ W (1, 2)."""
    return x @ params["W"]


def test_ewc_fisher_of_a_two_parameter_model_by_hand():
    # logits (w1 x, w2 x); d log p_k / d w_j = x (delta_kj - p_j), so
    # sum_k p_k (d log p_k / d w_j)^2 = x^2 p_j (1 - p_j) for both j.
    # W = (ln 3, 0): x = 1 gives p_1 = 3/4, x^2 p(1-p) = 3/16; x = 2 gives p_1 = 9/10,
    # 4 * 9/100 = 36/100. The mean over the two rows: (3/16 + 36/100) / 2 = 0.27375.
    params = {"W": jnp.array([[np.log(3.0), 0.0]])}
    X = jnp.array([[1.0], [2.0], [7.0]])
    weights = jnp.array([1.0, 1.0, 0.0])  # the third row is padding: dropped
    F = B.fisher_diagonal(linear, params, X, weights, chunk=2)
    np.testing.assert_allclose(F["W"], [[0.27375, 0.27375]], rtol=1e-6)
    # one example at p = (1/2, 1/2), x = 1: 1/4 each
    F0 = B.example_fisher(linear, {"W": jnp.zeros((1, 2))}, jnp.array([1.0]))
    np.testing.assert_allclose(F0["W"], [[0.25, 0.25]], rtol=1e-6)


def test_ewc_online_accumulation_and_penalty():
    m = B.ewc_method(linear)
    p0 = {"W": jnp.zeros((1, 2))}
    hp = {"lam": jnp.array(4.0), "gamma": jnp.array(0.5)}
    extra = m.init(None, p0, hp)
    task = (jnp.array([[1.0], [1.0]]), jnp.array([0, 1]), jnp.array(2))
    _, extra = m.after_task(p0, extra, None, 0, task, None, hp)
    np.testing.assert_allclose(extra["fisher"]["W"], [[0.25, 0.25]], rtol=1e-6)
    _, extra = m.after_task(p0, extra, None, 1, task, None, hp)  # 0.5 * 0.25 + 0.25
    np.testing.assert_allclose(extra["fisher"]["W"], [[0.375, 0.375]], rtol=1e-6)
    # loss = CE + lam/2 sum F (theta - anchor)^2; at theta = anchor + (1, -2): penalty
    # 2 * 0.375 * (1 + 4) = 3.75
    theta = {"W": jnp.array([[1.0, -2.0]])}
    x, y1h = jnp.zeros((1, 1)), jnp.array([[1.0, 0.0]])
    ce = np.log(2.0)  # x = 0: logits 0, p = 1/2
    np.testing.assert_allclose(m.loss(theta, extra, None, 2, x, y1h, hp), ce + 3.75, rtol=1e-6)


def _quadratic_path(a, theta0, lr, n):
    """GD on L = 1/2 sum a theta^2 through the SI wrapper; returns (omega, theta_n)."""
    opt = B.path_integral(optax.sgd(lr))
    loss = lambda p, k: 0.5 * jnp.sum(a * p**2)  # noqa: E731
    carry, _ = C.sgd_carry(loss, theta0, jax.random.key(0), n, opt)
    return carry.opt_state.omega, carry.params, carry.opt_state.start


def test_si_path_integral_on_a_quadratic_is_analytic():
    # theta_k = r^k theta_0 with r = 1 - lr a; each step adds -g Delta = lr (a theta_k)^2, so
    # omega = lr a^2 theta_0^2 (1 - r^(2n)) / (1 - r^2)   (a geometric series)
    a, theta0, lr, n = jnp.array([1.0, 4.0]), jnp.array([2.0, -1.0]), 0.05, 30
    omega, theta_n, start = _quadratic_path(a, theta0, lr, n)
    r = 1.0 - lr * np.asarray(a)
    expected = lr * np.asarray(a) ** 2 * np.asarray(theta0) ** 2 * (1 - r ** (2 * n)) / (1 - r**2)
    np.testing.assert_allclose(omega, expected, rtol=1e-5)
    np.testing.assert_allclose(theta_n, np.asarray(theta0) * r**n, rtol=1e-5)
    np.testing.assert_allclose(start, theta0)
    # continuous limit: omega -> L(theta_0) - L(theta_n), the loss each parameter removed
    omega_fine, theta_fine, _ = _quadratic_path(a, theta0, 1e-3, 1500)
    drop = 0.5 * np.asarray(a) * (np.asarray(theta0) ** 2 - np.asarray(theta_fine) ** 2)
    np.testing.assert_allclose(omega_fine, drop, rtol=5e-3)
    # importance Omega = omega / (Delta^2 + xi)
    Om = B.si_importance(omega, start, theta_n, 0.1)
    np.testing.assert_allclose(Om, expected / ((np.asarray(theta_n - start)) ** 2 + 0.1), rtol=1e-5)


def test_si_integrates_the_task_gradient_not_the_penalty():
    # with an anchor and Omega > 0 the step follows task + penalty gradients, but omega sums
    # -g_task * Delta only; checked against a hand-written loop
    a, lr, c = np.array([1.0, 2.0]), 0.1, 0.5
    Om, anchor, theta = np.array([1.0, 3.0]), np.array([0.5, -0.5]), np.array([2.0, 1.0])
    m = B.si_method(lambda p, x: None)
    extra = {"omega": jnp.asarray(Om), "anchor": jnp.asarray(anchor)}
    hp = {"c": jnp.array(c), "xi": jnp.array(0.1)}
    opt = m.optimizer(optax.sgd(lr), None, extra, 1, hp)
    loss = lambda p, k: 0.5 * jnp.sum(a * p**2) + c * jnp.sum(Om * (p - anchor) ** 2)  # noqa: E731
    carry, _ = C.sgd_carry(loss, jnp.asarray(theta), jax.random.key(0), 5, opt)
    omega, th = np.zeros(2), theta.copy()
    for _ in range(5):
        g_task = a * th
        step = -lr * (g_task + 2 * c * Om * (th - anchor))
        omega -= g_task * step
        th = th + step
    np.testing.assert_allclose(carry.opt_state.omega, omega, rtol=1e-5)
    np.testing.assert_allclose(carry.params, th, rtol=1e-5)
    new = m.after_wake(carry.params, extra, carry.opt_state, 1, hp)
    inc = np.maximum(omega, 0) / ((th - theta) ** 2 + 0.1)
    np.testing.assert_allclose(new["omega"], Om + inc, rtol=1e-5)
    np.testing.assert_allclose(new["anchor"], th, rtol=1e-6)


def test_lwf_distillation_by_hand():
    # mask {0, 1}; T = 2: old logits (2, 0) / 2 -> q = softmax(1, 0); new (0, 0) -> log 1/2
    # KD = -(q0 + q1) log(1/2) = log 2, whatever q; class 2 is outside the mask
    kd = B.distillation(jnp.array([[0.0, 0.0, 9.0]]), jnp.array([[2.0, 0.0, -5.0]]),
                        jnp.array([True, True, False]), 2.0)  # fmt: skip
    np.testing.assert_allclose(kd, np.log(2.0), rtol=1e-6)
    # new logits (2, 0) / 2 as well: KD = entropy-like -sum q log q with q = softmax(1, 0)
    q = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    kd2 = B.distillation(jnp.array([[2.0, 0.0, 0.0]]), jnp.array([[2.0, 0.0, 0.0]]),
                         jnp.array([True, True, False]), 2.0)  # fmt: skip
    np.testing.assert_allclose(kd2, -(q * np.log(q)).sum(), rtol=1e-6)
    # no class seen yet (task 0): finite, and weighted 0 in the loss
    m = B.lwf_method(lambda p, x: x @ p, 3)
    extra = m.init(None, jnp.eye(3), None)
    hp = {"temperature": jnp.array(2.0), "lam": jnp.array(1.0)}
    x, y1h = jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[1.0, 0.0, 0.0]])
    ce = -np.log(np.e / (np.e + 2))
    np.testing.assert_allclose(m.loss(jnp.eye(3), extra, None, 0, x, y1h, hp), ce, rtol=1e-6)


def test_replay_buffer_is_class_balanced():
    y = jnp.array([0, 1, 0, 2, 0, 1, 0, 0, 1, 2, 0, 0])  # class 2: rows 3, 9 (2 examples)
    n = 10  # rows 10, 11 are padding (class 0): never stored
    idx, valid = B.select_per_class(jax.random.key(0), y, n, 4, capacity=5, m=3)
    counts = np.asarray(valid.sum(1))
    np.testing.assert_array_equal(counts, [3, 3, 2, 0])  # min(M, n_k); class 3 absent
    for k in range(3):
        rows = np.asarray(idx[k])[np.asarray(valid[k])]
        assert len(set(rows)) == len(rows) and np.all(rows < n) and np.all(np.asarray(y)[rows] == k)
    # draws: uniform over the stored examples, so over classes in proportion to 3 : 3 : 2
    X = jnp.arange(2 * 4 * 5, dtype=jnp.float32).reshape(2, 4, 5, 1)
    buf_valid = jnp.zeros((2, 4, 5), bool).at[0].set(valid)
    x, lab = B.sample_buffer(jax.random.key(1), X, buf_valid, 40000)
    freq = np.bincount(np.asarray(lab), minlength=4) / 40000
    np.testing.assert_allclose(freq, [3 / 8, 3 / 8, 2 / 8, 0], atol=0.01)  # ~4 std
    slots = np.asarray(x[:, 0]).astype(int)  # the slot number is the stored value
    assert np.all(np.asarray(buf_valid).reshape(-1)[slots])  # only valid slots are drawn


def test_replay_method_fills_its_task_row_and_weights_the_losses():
    K, d = 3, 2
    apply = lambda p, x: x @ p  # noqa: E731
    m = B.replay_method(apply, n_tasks=2, n_classes=K, d=d, capacity=4)
    hp = {"rho": jnp.array(1.0), "m": jnp.array(2.0)}
    W = jnp.zeros((d, K))
    extra = m.init(None, W, hp)
    Xt = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    task = (Xt, jnp.array([0, 1, 0, 1]), jnp.array(4))
    _, extra = m.after_task(W, extra, jax.random.key(0), 0, task, None, hp)
    np.testing.assert_array_equal(extra["valid"].sum(-1), [[2, 2, 0], [0, 0, 0]])
    # task 1, rho = 1: (1/2) CE(current) + (1/2) CE(replayed); with W = 0 both are log K
    loss = m.loss(W, extra, jax.random.key(1), 1, Xt[:2], jnp.eye(K)[:2], hp)
    np.testing.assert_allclose(loss, np.log(K), rtol=1e-6)


def test_combine_threads_state_and_refuses_two_losses():
    calls = []

    def after(tag):
        def f(params, extra, key, t, task, seen, hp):
            calls.append((tag, hp))
            return params + 1, extra + [tag]

        return f

    a = C.Method(init=lambda k, p, hp: ["a0"], after_task=after("a"))
    b = C.Method(init=lambda k, p, hp: ["b0"], after_task=after("b"))
    m = B.combine(a, b)
    extra = m.init(jax.random.key(0), 0, ("ha", "hb"))
    params, extra = m.after_task(0, extra, jax.random.key(0), 0, None, None, ("ha", "hb"))
    assert params == 2 and extra == (["a0", "a"], ["b0", "b"])
    assert calls == [("a", "ha"), ("b", "hb")]
    with pytest.raises(ValueError, match="both methods define 'loss'"):
        B.combine(B.ewc_method(linear), B.si_method(linear))


def test_baselines_run_in_a_vmapped_study():
    """SI (the optimizer and after-wake hooks) and a replay buffer (a loss and after-task hook,
    as EWC, LwF, SRC and generative replay) in the vmapped, driven runs of the study: finite,
    A_wake = A_after for SI (no hook changes a weight), and the buffer keeps old classes
    that sequential training loses."""
    sp = C.load_split("digits", 0)
    cfg = C.TrainConfig(hidden=(32,), steps=60, learning_rate=0.1)
    apply = C.make_model(cfg).apply
    T, _, d = sp.X_tasks.shape
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    cases = {
        "si": (B.si_method(apply), {"c": f(0.1), "xi": f(0.1)}),
        "replay": (B.replay_method(apply, T, 10, d), {"rho": f(1.0), "m": f(20.0)}),
    }
    keys = jax.random.split(jax.random.key(0), 2)
    counts = C.group_counts(sp)
    for name, (method, hp) in cases.items():
        runs = C.run_seeds(C.make_run(sp, cfg, method), C.task_arrays(sp), keys, hp)
        assert np.isfinite(runs.wake_loss).all(), name
        m = C.metrics(runs.A_after, sp.task_groups, counts)
        if name == "replay":
            assert np.all(m["old"] > 0.3), m["old"]
        else:
            np.testing.assert_array_equal(runs.A_wake, runs.A_after)
        assert np.all(m["seen"][:, 0] > 0.9), (name, m["seen"])  # task 1 is learned


def test_an_empty_buffer_gives_zeros_and_replays_nothing():
    # every slot holds a stale input (ones) but none is valid: zeros labelled 0, as documented
    X = jnp.ones((2, 3, 4, 2))
    x, lab = B.sample_buffer(jax.random.key(0), X, jnp.zeros((2, 3, 4), bool), 8)
    np.testing.assert_array_equal(x, 0.0)
    np.testing.assert_array_equal(lab, 0)
    # M = 0: after task 0 the buffer's slots hold real inputs, none valid; task 1's loss is the
    # current batch's alone (it trained on a real input labelled class 0 at weight 1/2)
    K, W = 3, jnp.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]])
    m = B.replay_method(lambda p, x: x @ p, n_tasks=2, n_classes=K, d=2, capacity=4)
    hp = {"rho": jnp.array(1.0), "m": jnp.array(0.0)}
    Xt = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    _, extra = m.after_task(W, m.init(None, W, hp), jax.random.key(0), 0,
                            (Xt, jnp.array([0, 1, 2, 1]), jnp.array(4)), None, hp)  # fmt: skip
    assert not extra["valid"].any() and extra["X"].any()
    x, y1h = Xt[:2], jnp.eye(K)[:2]
    loss = m.loss(W, extra, jax.random.key(1), 1, x, y1h, hp)
    np.testing.assert_allclose(loss, C.soft_cross_entropy(x @ W, y1h), rtol=1e-6)


@pytest.mark.parametrize("m", [21.0, 2.5, -1.0, np.nan])
def test_replay_refuses_a_buffer_size_it_cannot_hold(m):
    method = B.replay_method(linear, n_tasks=2, n_classes=2, d=1, capacity=20)
    with pytest.raises(ValueError, match="replay_method: m .* whole number in 0..20"):
        method.check({"rho": jnp.array(1.0), "m": jnp.array(m)})
    with pytest.raises(ValueError, match="select_per_class: m"):
        B.select_per_class(jax.random.key(0), jnp.array([0, 1]), 2, 2, capacity=20, m=m)
    stacked = {"rho": jnp.ones(3), "m": jnp.array([1.0, 5.0, m])}  # candidates: each checked
    with pytest.raises(ValueError, match="replay_method: m"):
        method.check(stacked)
    method.check({"rho": jnp.ones(3), "m": jnp.array([0.0, 5.0, 20.0])})  # 0..capacity pass


def test_run_seeds_checks_the_hyperparameters_before_training():
    sp = C.load_split("digits", 0)
    cfg = C.TrainConfig(hidden=(4,), steps=1)
    run = C.make_run(sp, cfg, B.replay_method(C.make_model(cfg).apply, 5, 10, 64))
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="replay_method: m .* got 25"):
        C.run_seeds(run, C.task_arrays(sp), keys, {"rho": jnp.array(1.0), "m": jnp.array(25.0)})
    lwf = C.make_run(sp, cfg, B.lwf_method(C.make_model(cfg).apply, 10))
    hp = {"temperature": jnp.array(0.0), "lam": jnp.array(1.0)}
    with pytest.raises(ValueError, match="lwf_method: temperature must be finite and > 0"):
        lwf(C.task_arrays(sp), keys[0], hp)


def test_fisher_chunk_and_distillation_temperature_are_checked():
    params, X = {"W": jnp.zeros((1, 2))}, jnp.ones((3, 1))
    with pytest.raises(ValueError, match="fisher_diagonal: chunk must be an int >= 1, got 0"):
        B.fisher_diagonal(linear, params, X, jnp.ones(3), chunk=0)
    z, mask = jnp.zeros((1, 3)), jnp.array([True, True, False])
    for T in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="distillation: temperature must be finite and > 0"):
            B.distillation(z, z, mask, T)
    with pytest.raises(ValueError, match="ewc_method: lam must be finite and >= 0"):
        B.ewc_method(linear).check({"lam": jnp.array(-1.0), "gamma": jnp.array(1.0)})
