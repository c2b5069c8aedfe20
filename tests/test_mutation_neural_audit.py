"""Mutation audit of the neural side: each test here fails on a plausible small fault (a
mutant) that the rest of the suite let pass, and checks a real property against an
independent oracle (a NumPy formula written here, a closed form, or a published default)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.layers import LayerNorm

KEY = jax.random.key(0)


def test_layer_norm_default_eps_is_torchs_1e_5_at_small_variance():
    """LayerNorm() is torch.nn.LayerNorm(C) (eps = 1e-5, nnjax.layers.norm): with features
    of variance ~1e-5, eps is half the denominator, so y = (x - mu) / sqrt(var + 1e-5)
    computed here in float64 tells 1e-5 from 1e-6 or 1e-3 (mutant eps 1e-5 -> 1e-6)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8)) * 3e-3 + 0.5
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-5)
    with jax.enable_x64(True):
        layer = LayerNorm()
        _, p = layer.init(KEY, x.shape)
        got = np.asarray(layer.apply(p, jnp.asarray(x)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_fit_order_uses_the_first_half_of_the_run_key_split():
    """nnjax.train.order: order_key, dropout_key = split(key), and epoch e's batch t is
    permutation(fold_in(order_key, e), n)[t b : (t + 1) b]. Built here from jax.random alone
    (mutant: the two halves swapped, so the shuffles draw from the dropout key)."""
    from nnjax.train.order import run_batch_indices, run_keys

    key, n, b, epochs = jax.random.key(7), 11, 3, 3
    order_key, dropout_key = jax.random.split(key)
    want = np.concatenate(
        [
            np.asarray(jax.random.permutation(jax.random.fold_in(order_key, e), n))[: n // b * b]
            for e in range(epochs)
        ]
    ).reshape(-1, b)
    np.testing.assert_array_equal(run_batch_indices(key, epochs, n, b), want)
    got = [jax.random.key_data(k) for k in run_keys(key)]
    np.testing.assert_array_equal(got[0], jax.random.key_data(order_key))
    np.testing.assert_array_equal(got[1], jax.random.key_data(dropout_key))


def test_dropout_step_keys_are_folded_with_the_epoch():
    """nnjax.train.order: step t of epoch e draws its dropout mask from
    split(fold_in(dropout_key, e), T)[t], so the masks change from epoch to epoch (mutant:
    the fold_in dropped, every epoch reusing epoch 0's masks)."""
    from nnjax.train.order import step_keys

    dropout_key, T = jax.random.key(5), 4
    for e in (0, 1, 6):
        want = jax.random.split(jax.random.fold_in(dropout_key, e), T)
        np.testing.assert_array_equal(
            jax.random.key_data(step_keys(dropout_key, e, T)), jax.random.key_data(want)
        )
    m0, m1 = (
        np.asarray(jax.random.bernoulli(step_keys(dropout_key, e, T)[0], 0.5, (64,)))
        for e in (0, 1)
    )
    assert (m0 != m1).any()


@pytest.mark.parametrize("total, warmup", [(10, 0.37), (7, 0.5), (40, 0.1)])
def test_warmup_cosine_rates_follow_the_documented_formula_with_w_rounded(total, warmup):
    """make_schedule("warmup-cosine"): eta_t = eta_0 t / W for t < W, then
    eta_0 (1 + cos(pi (t - W) / (T - W))) / 2, W = round(warmup T) (Python's round), written
    out here; T = 10, warmup 0.37 gives W = 4 where truncation gives 3 (mutant: int for
    round)."""
    from nnjax.optim import make_schedule

    eta0 = 0.5
    w = min(max(round(warmup * total), 1), total - 1)
    t = np.arange(total, dtype=np.float64)
    want = np.where(t < w, eta0 * t / w, eta0 * (1 + np.cos(np.pi * (t - w) / (total - w))) / 2)
    sched = make_schedule("warmup-cosine", eta0, total_steps=total, warmup=warmup)
    got = np.array([float(sched(i)) for i in range(total)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_early_stopping_requests_no_stop_when_patience_runs_out_on_the_last_epoch():
    """The run stops after the epoch that ends `patience` epochs without an improvement
    (nnjax.train.early) only when epochs are left: run out on the last epoch, the run ends
    by itself and no stop is requested, so no hook is told of an early stop (mutant:
    end < total -> end <= total)."""
    from nnjax.train import ChunkReport, EpochOutputs, StopFlag
    from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor

    losses = [1.0, 0.5, 0.6, 0.7]  # epochs 3 and 4 do not beat 0.5: patience 2 ends at 4
    stop = StopFlag()
    mon = EarlyStoppingMonitor(EarlyStopping(patience=2), stop)
    for e, v in enumerate(losses):
        out = EpochOutputs(np.zeros((1, 1)), {"val_loss": np.array([v])})
        mon.hook(ChunkReport(e, e + 1, len(losses), {"e": np.full(1, e)}, out, [out], 0.1, None, 0))
    assert mon.wait == 2 and mon.best_epoch == 2 and mon.best == 0.5
    assert not stop.requested and stop.reason is None and mon.reason is None
    # one more epoch in the run: the same sequence is a stop after epoch 4
    stop = StopFlag()
    mon = EarlyStoppingMonitor(EarlyStopping(patience=2), stop)
    for e, v in enumerate(losses):
        out = EpochOutputs(np.zeros((1, 1)), {"val_loss": np.array([v])})
        mon.hook(
            ChunkReport(e, e + 1, len(losses) + 1, {"e": np.full(1, e)}, out, [out], 0.1, None, 0)
        )
    assert stop.requested and "did not improve for 2 epochs (best 0.5 at epoch 2)" in stop.reason


@pytest.mark.parametrize(
    "metric, values", [("val_loss", [1.0, 0.5, 0.5, 0.5]), ("val_accuracy", [0.2, 0.6, 0.6, 0.6])]
)
def test_early_stopping_a_tie_with_the_best_is_no_improvement(metric, values):
    """An epoch improves when m_e < m* - min_delta (mode "min"), m_e > m* + min_delta
    ("max"): strict, so with min_delta = 0 a value equal to the best is no improvement; the
    best epoch stays the first to reach it and patience runs on (mutant: < -> <=)."""
    from nnjax.train import ChunkReport, EpochOutputs, StopFlag
    from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor

    stop = StopFlag()
    mon = EarlyStoppingMonitor(EarlyStopping(patience=2, metric=metric), stop)
    for e, v in enumerate(values):
        out = EpochOutputs(np.zeros((1, 1)), {metric: np.array([v])})
        mon.hook(ChunkReport(e, e + 1, 10, {"e": np.full(1, e)}, out, [out], 0.1, None, 0))
    assert mon.best_epoch == 2 and mon.wait == 2 and stop.requested
    np.testing.assert_array_equal(mon.best_carry["e"], [1])


def test_binary_accuracy_counts_a_prediction_at_the_threshold_as_class_0():
    """classification_accuracy: pred (B, 1) is class 1 where pred > threshold, strictly (a
    logit of exactly 0, a probability of exactly 0.5, is class 0), against labels y > 0.5;
    the fraction counted here by hand (mutant: > -> >=)."""
    from nnjax.train.step import classification_accuracy

    logits = jnp.array([[0.0], [2.0], [-1.0], [0.0]])
    y = jnp.array([0.0, 1.0, 0.0, 1.0])  # rows 0, 1, 2 right; row 3 (logit 0) wrong
    assert float(classification_accuracy(logits, y)) == 0.75
    probs = jnp.array([0.5, 0.9, 0.5001, 0.1])
    y = jnp.array([0, 1, 1, 0])
    assert float(classification_accuracy(probs, y, threshold=0.5)) == 1.0


def test_softmax_cross_entropy_gradient_with_respect_to_probability_targets():
    """J = -mean_b sum_k t_bk log softmax(z_b)_k, so dJ/dt_bk = -log softmax(z_b)_k / B for
    every class, those with t_bk = 0 included (only a masked class, logit -inf, takes 0),
    from a NumPy log-softmax here, float64 (mutant: dJ/dt zeroed wherever t = 0)."""
    from nnjax.losses import softmax_cross_entropy

    rng = np.random.default_rng(1)
    z = rng.normal(size=(3, 4)) * 2
    t = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.0, 0.75, 0.0], [0.5, 0.5, 0.0, 0.0]])
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    with jax.enable_x64(True):
        dt = jax.grad(softmax_cross_entropy, argnums=1)(jnp.asarray(z), jnp.asarray(t))
        dz = jax.grad(softmax_cross_entropy)(jnp.asarray(z), jnp.asarray(t))
    np.testing.assert_allclose(np.asarray(dt), -logp / 3, rtol=1e-12, atol=1e-14)
    p = np.exp(logp)
    np.testing.assert_allclose(
        np.asarray(dz), (p * t.sum(-1, keepdims=True) - t) / 3, rtol=1e-12, atol=1e-14
    )
