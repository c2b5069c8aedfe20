"""The Helmholtz machine: exact marginals by enumeration, the bars data, wake-sleep learning."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import helmholtz as H


def test_bars_distribution():
    pat, pr = H.bars_distribution(3, 0.2)
    assert pat.shape == (14, 9)  # 2 x 8 bar sets, the empty and full grids shared
    np.testing.assert_allclose(pr.sum(), 1.0)
    empty = np.flatnonzero(pat.sum(1) == 0)[0]
    np.testing.assert_allclose(pr[empty], 0.8**3)  # both orientations give it: 2 x 0.5 x 0.8^3
    for p in pat:  # every pattern is a union of whole rows or whole columns
        g = p.reshape(3, 3)
        assert all(len(set(r)) == 1 for r in g) or all(len(set(c)) == 1 for c in g.T)
    with pytest.raises(ValueError, match="p_bar"):
        H.bars_distribution(3, 1.5)


def test_log_marginal_matches_brute_force_and_normalises():
    with jax.enable_x64(True):
        p = H.init_helmholtz(jax.random.key(0), 3, 2, 1, scale=1.0)
        p = p._replace(b2=jnp.array([0.3]), b1=jnp.array([-0.4, 0.2]), b0=jnp.array([0.1, 0, -1.0]))
        V = H.binary_states(3).astype(np.float64)
        lp = np.asarray(H.log_marginal(p, jnp.asarray(V)))
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731

        def bern(x, q):
            return np.prod(np.where(x > 0, q, 1 - q))

        P = {k: np.asarray(v, np.float64) for k, v in p._asdict().items()}
        for v, got in zip(V, lp):
            total = 0.0
            for h2 in itertools.product((0, 1), repeat=1):
                for h1 in itertools.product((0, 1), repeat=2):
                    h2a, h1a = np.array(h2, float), np.array(h1, float)
                    total += (bern(h2a, sig(P["b2"])) * bern(h1a, sig(h2a @ P["G2"] + P["b1"]))
                              * bern(v, sig(h1a @ P["G1"] + P["b0"])))  # fmt: skip
            np.testing.assert_allclose(np.exp(got), total, rtol=1e-10)
        np.testing.assert_allclose(np.exp(lp).sum(), 1.0, rtol=1e-10)


def test_exact_kl_is_zero_on_the_model_itself_and_positive_otherwise():
    with jax.enable_x64(True):
        p = H.init_helmholtz(jax.random.key(1), 4, 2, 1, scale=1.0)
        V = jnp.asarray(H.binary_states(4), jnp.float64)
        probs = jnp.exp(H.log_marginal(p, V))
        np.testing.assert_allclose(H.exact_kl(p, V, probs), 0.0, atol=1e-12)
        pat, pr = H.bars_distribution(2, 0.3)
        assert float(H.exact_kl(p, jnp.asarray(pat, jnp.float64), jnp.asarray(pr))) > 0.0


def test_wake_sleep_lowers_the_exact_kl_monotonically_when_smoothed():
    pat, pr = H.bars_distribution(3, 0.2)
    _, kl = jax.jit(
        lambda k: H.train_wake_sleep(k, jnp.asarray(pat), jnp.asarray(pr), steps=4000,
                                     eval_every=250, lr=0.2)
    )(jax.random.key(0))  # fmt: skip
    kl = np.asarray(kl)
    sm = H.smooth(kl, 4)
    assert np.all(np.diff(sm) <= 0), sm
    assert kl[-1] < 0.5 * kl[0]
    with pytest.raises(ValueError, match="multiple of eval_every"):
        H.train_wake_sleep(jax.random.key(0), jnp.asarray(pat), jnp.asarray(pr), steps=1000,
                           eval_every=300)  # fmt: skip


def test_smooth_is_a_trailing_mean():
    np.testing.assert_allclose(H.smooth(np.array([4.0, 2, 0, 2]), 2), [4, 3, 1, 1])


def test_exact_kl_sums_over_the_support_and_refuses_unnormalised_probs():
    """Finding: a pattern of probability 0 gave nan (0 log 0), and unnormalised probabilities
    a 'KL' of 5.48."""
    with jax.enable_x64(True):
        p = H.init_helmholtz(jax.random.key(1), 4, 2, 1, scale=1.0)
        pat, pr = H.bars_distribution(2, 0.3)
        pat = jnp.asarray(pat, jnp.float64)
        kl = float(H.exact_kl(p, pat, jnp.asarray(pr)))
        padded = jnp.concatenate([pat, jnp.array([[1.0, 0, 0, 1]])])  # a diagonal: p = 0
        assert float(H.exact_kl(p, padded, jnp.append(pr, 0.0))) == pytest.approx(kl, rel=1e-12)
        with pytest.raises(ValueError, match="exact_kl: probs must be >= 0 and sum to 1"):
            H.exact_kl(p, pat, jnp.asarray(pr) * 3)
        with pytest.raises(ValueError, match=r"exact_kl: need patterns \(M, n0\) and probs"):
            H.exact_kl(p, pat, jnp.asarray(pr[:-1]))
        assert np.isnan(float(H.exact_kl(p, pat, jnp.asarray(pr).at[0].set(np.nan))))


def test_train_wake_sleep_takes_numpy_data_and_checks_its_counts():
    """Finding: bars_distribution's own NumPy output raised TracerArrayConversionError;
    eval_every=0 ZeroDivisionError; smooth(x, 0) gave all nan and smooth(x, -1) IndexError."""
    pat, pr = H.bars_distribution(2, 0.3)
    kw = dict(n1=2, steps=4, eval_every=2, batch=2)
    _, kl = H.train_wake_sleep(jax.random.key(0), pat, pr, **kw)
    _, ref = H.train_wake_sleep(jax.random.key(0), jnp.asarray(pat), jnp.asarray(pr), **kw)
    assert kl.shape == (3,) and np.isfinite(kl).all()
    np.testing.assert_array_equal(kl, ref)
    for bad, text in (({"eval_every": 0}, "eval_every must be an int >= 1"),
                      ({"steps": 2.5}, "steps must be an int >= 1"),
                      ({"lr": np.nan}, "lr must be a finite number > 0")):  # fmt: skip
        with pytest.raises(ValueError, match=f"train_wake_sleep: {text}"):
            H.train_wake_sleep(jax.random.key(0), pat, pr, **{**kw, **bad})
    with pytest.raises(ValueError, match="train_wake_sleep: probs must be >= 0 and sum to 1"):
        H.train_wake_sleep(jax.random.key(0), pat, pr / 2, **kw)
    for window in (0, -1, 1.5):
        with pytest.raises(ValueError, match="smooth: window must be an int >= 1"):
            H.smooth(np.ones(3), window)


def test_log_marginal_of_one_pattern_is_a_scalar():
    """One pattern (n0,) gives log p(v) as a scalar, the value of its row in a batch (it was
    shape (1,))."""
    p = H.init_helmholtz(jax.random.PRNGKey(3), 4, 3, 2)
    V = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], np.float32)
    batch = H.log_marginal(p, V)
    one = H.log_marginal(p, V[1])
    assert batch.shape == (2,) and one.shape == ()
    np.testing.assert_array_equal(np.asarray(one), np.asarray(batch)[1])
