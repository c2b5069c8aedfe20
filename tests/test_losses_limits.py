"""softmax_cross_entropy, softmax and log_softmax at +inf logits: the limit with the
infinite logits tied, in both target forms, against closed forms and the NumPy twins, with
finite gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations as A
from nnjax import losses as L
from nnjax.reference import activations as RA
from nnjax.reference import losses as R

INF = np.inf
LOG2 = np.log(2.0)

# rows of logits, a label, a one-hot/probability target, and the term of each by hand
ROWS = [
    # one +inf, the target on it: softmax is one-hot on it, the loss 0
    ([INF, 0.0, 1.0], 0, [1.0, 0.0, 0.0], 0.0, 0.0),
    # one +inf, the target on a finite class: that class has probability 0
    ([1.0, INF, 2.0], 0, [0.0, 0.5, 0.5], INF, INF),
    # two +inf tied: 1/2 each, -log(1/2) for a target on one of them
    ([INF, INF, -INF], 1, [0.25, 0.75, 0.0], LOG2, LOG2),
    ([INF, INF, 3.0], 0, [0.5, 0.5, 0.0], LOG2, LOG2),
    # no +inf: unchanged, a masked class (-inf) included
    ([-INF, 2.0, 1.0], 1, [0.0, 1.0, 0.0], np.log1p(np.exp(-1.0)), np.log1p(np.exp(-1.0))),
]


def _batch():
    z = np.array([r[0] for r in ROWS])
    labels = np.array([r[1] for r in ROWS])
    probs = np.array([r[2] for r in ROWS])
    return z, labels, probs, np.array([r[3] for r in ROWS]), np.array([r[4] for r in ROWS])


@pytest.mark.parametrize("jit", [False, True])
def test_plus_inf_logits_give_the_tied_limit_not_nan(jit):
    z, labels, probs, want_labels, want_probs = _batch()
    f = jax.jit(L.softmax_cross_entropy, static_argnums=2) if jit else L.softmax_cross_entropy
    with jax.enable_x64(True):
        for t, want in ((labels, want_labels), (probs, want_probs)):
            got = np.asarray(f(jnp.asarray(z), jnp.asarray(t), "none"))  # was NaN in inf rows
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
            np.testing.assert_allclose(R.softmax_cross_entropy(z, t, "none"), want, rtol=1e-14)
        # finite rows only: the mean is finite and matches the twin
        keep = np.isfinite(want_labels)
        np.testing.assert_allclose(
            f(jnp.asarray(z[keep]), jnp.asarray(labels[keep]), "mean"),
            R.softmax_cross_entropy(z[keep], labels[keep]),
            rtol=1e-14,
        )


def test_plus_inf_logits_in_float32_and_a_large_finite_logit_beside_them():
    z = np.array([[INF, 1e30, -1e30], [3e38, INF, 0.0]], np.float32)
    got = L.softmax_cross_entropy(z, np.array([0, 1]), "none")
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got), [0.0, 0.0])


def test_gradient_at_plus_inf_logits_is_finite_and_matches_the_twin():
    z, labels, probs, _, _ = _batch()
    with jax.enable_x64(True):
        for t in (labels, probs):
            g = np.asarray(jax.grad(L.softmax_cross_entropy)(jnp.asarray(z), t, "sum"))
            assert np.isfinite(g).all()
            np.testing.assert_allclose(g, R.softmax_cross_entropy_grad(z, t, "sum"), atol=1e-15)
        # dJ/dz = softmax(z) sum_k t_k - t, softmax 1/m on the m +inf logits, 0 elsewhere
        g = np.asarray(jax.grad(lambda v: L.softmax_cross_entropy(v, probs, "sum"))(z))
        np.testing.assert_allclose(g[0], [0.0, 0.0, 0.0])  # one-hot on the one +inf
        np.testing.assert_allclose(g[2], [0.25, -0.25, 0.0])
        np.testing.assert_allclose(g[3], [0.0, 0.0, 0.0])


def test_nan_logits_and_rows_of_only_minus_inf_stay_nan():
    z = np.array([[np.nan, INF, 1.0], [-INF, -INF, -INF], [0.0, 1.0, 2.0]])
    with jax.enable_x64(True):
        got = np.asarray(L.softmax_cross_entropy(z, np.array([1, 0, 2]), "none"))
    assert np.isnan(got[:2]).all() and np.isfinite(got[2])


@pytest.mark.parametrize("x64", [False, True])
def test_softmax_and_log_softmax_at_plus_inf_are_the_tied_limit(x64):
    z = np.array([[INF, 1.0, 0.0], [INF, INF, -INF], [-INF, 0.0, 1.0], [1e30, -1e30, 0.0]])
    want_p = np.array([[1.0, 0, 0], [0.5, 0.5, 0], RA.softmax(z[2]), [1.0, 0, 0]])
    with jax.enable_x64(x64):
        zj = jnp.asarray(z, "float64" if x64 else "float32")
        p, logp = np.asarray(A.softmax(zj)), np.asarray(A.log_softmax(zj))  # were NaN rows
    tol = 1e-15 if x64 else 1e-6  # float32 rounding
    np.testing.assert_allclose(p, want_p, rtol=tol, atol=tol)
    np.testing.assert_allclose(RA.softmax(z), want_p, rtol=1e-15, atol=1e-15)
    want_logp = np.array(
        [[0.0, -INF, -INF], [-LOG2, -LOG2, -INF], RA.log_softmax(z[2]), [0.0, -2e30, -1e30]]
    )
    np.testing.assert_allclose(logp, want_logp, rtol=tol)
    np.testing.assert_allclose(RA.log_softmax(z), want_logp, rtol=1e-15)


def test_softmax_jacobians_at_plus_inf_are_finite_and_match_the_twin():
    z = np.array([[INF, 1.0, 0.0], [INF, INF, 2.0], [0.3, -1.0, 2.0]])
    with jax.enable_x64(True):  # compiled: the values, not the eager path, are the point
        for name in ("softmax", "log_softmax"):
            f = A.ACTIVATIONS[name]
            jac = np.asarray(jax.jit(jax.vmap(jax.jacrev(f)))(jnp.asarray(z)))
            assert np.isfinite(jac).all()
            np.testing.assert_allclose(jac, RA.ACTIVATIONS[name][1](z), atol=1e-15)
        # softmax's Jacobian s_i (delta_ij - s_j) at s = (1/2, 1/2, 0)
        jac = np.asarray(jax.jit(jax.jacrev(A.softmax))(jnp.asarray(z[1])))
        np.testing.assert_allclose(jac, [[0.25, -0.25, 0], [-0.25, 0.25, 0], [0, 0, 0]])


def test_softmax_rows_without_plus_inf_are_unchanged_and_k0_is_empty():
    z = np.random.default_rng(0).normal(size=(4, 5)) * 30
    with jax.enable_x64(True):
        np.testing.assert_allclose(A.softmax(z), jax.nn.softmax(z), rtol=1e-14)
        np.testing.assert_allclose(A.log_softmax(z), jax.nn.log_softmax(z), rtol=1e-14)
        assert A.softmax(jnp.zeros((2, 0))).shape == (2, 0)
        assert np.isnan(A.softmax(jnp.array([-INF, -INF]))).all()  # no class: NaN, as before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_largest_finite_logit_below_the_max_ties_only_when_it_equals_it(dtype):
    """The shift is (min(z, F) - min(m, F)) * k with k = F in +inf rows: every finite logit
    below F goes to -inf there, one of exactly F counts as tied with the +inf."""
    with jax.enable_x64(dtype == "float64"):
        big = np.finfo(dtype).max
        below = np.nextafter(big, 0, dtype=dtype)
        z = jnp.asarray([[INF, below, big / 2, -big], [INF, big, 0.0, -INF]], dtype)
        logp = np.asarray(A.log_softmax(z))
        np.testing.assert_array_equal(logp[0], [0.0, -INF, -INF, -INF])
        np.testing.assert_allclose(logp[1], [-LOG2, -LOG2, -INF, -INF], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(A.softmax(z))[1], [0.5, 0.5, 0.0, 0.0], rtol=1e-6)


def test_second_derivatives_through_the_shift_match_the_closed_form():
    """d2 log_softmax_y / dz2 = -(diag(p) - p p^T); the shift's custom jvp (ds = dz) must
    carry through forward-over-reverse, at finite logits and in a +inf row alike."""
    # compiled once for both z (the values, not the eager path, are the point)
    hessian = jax.jit(jax.hessian(lambda v: A.log_softmax(v)[1]))
    jvp = jax.jit(lambda z, u: jax.jvp(A.softmax, (z,), (u,)))
    with jax.enable_x64(True):
        for z in (jnp.asarray([0.3, -1.0, 2.0, 0.5]), jnp.asarray([INF, 1.0, INF, 0.0])):
            hess = np.asarray(hessian(z))
            p = np.asarray(A.softmax(z))
            np.testing.assert_allclose(hess, -(np.diag(p) - np.outer(p, p)), atol=1e-15)
            # jvp of softmax along a direction u: p * (u - p.u)
            u = jnp.asarray([1.0, -2.0, 0.5, 3.0])
            _, tangent = jvp(z, u)
            np.testing.assert_allclose(tangent, p * (u - p @ u), atol=1e-15)
