"""Audit of the continual-learning baselines and scores: each test failed before its fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import baselines as B
from nnjax.brain import continual as C
from nnjax.brain import scores


def linear(params, x):
    return x @ params["W"]


def test_fisher_divides_by_the_sum_of_the_weights_as_documented():
    # W = 0, x = 1: p = (1/2, 1/2), each example's Fisher is 1/4 per weight. The documented
    # sum_n w_n F(x_n) / sum_n w_n is 1/4 for any positive weights; dividing by max(sum w, 1)
    # gave 1/8 for weights (1/4, 1/4).
    params, X = {"W": jnp.zeros((1, 2))}, jnp.ones((2, 1))
    for w in ([0.25, 0.25], [0.1, 0.3], [2.0, 2.0], [1.0, 0.0]):
        F = B.fisher_diagonal(linear, params, X, jnp.array(w))
        np.testing.assert_allclose(F["W"], [[0.25, 0.25]], rtol=1e-6)
    zero = B.fisher_diagonal(linear, params, X, jnp.zeros(2))  # no row counts: a zero Fisher
    np.testing.assert_array_equal(zero["W"], 0.0)


@pytest.mark.parametrize(
    "weights, match",
    [
        (jnp.ones(2), r"fisher_diagonal: weights must be \(3,\), one per row of X, got shape"),
        (jnp.array([1.0, -1.0, 1.0]), "fisher_diagonal: weights must be finite and >= 0, got -1"),
        (jnp.array([1.0, np.nan, 1.0]), "fisher_diagonal: weights must be finite and >= 0"),
    ],
)
def test_fisher_names_weights_that_do_not_fit(weights, match):
    # a short weights vector failed in a reshape; a negative weight gave a negative Fisher
    with pytest.raises(ValueError, match=match):
        B.fisher_diagonal(linear, {"W": jnp.zeros((1, 2))}, jnp.ones((3, 1)), weights)


def test_online_ewc_refuses_a_decay_above_one():
    # Schwarz et al.'s online EWC decays the old Fisher by gamma <= 1; gamma = 2 was taken
    # and doubled every old task's importance at each task
    check = B.ewc_method(linear).check
    with pytest.raises(ValueError, match="ewc_method: gamma must be finite and >= 0 and <= 1"):
        check({"lam": jnp.array(1.0), "gamma": jnp.array(2.0)})
    with pytest.raises(ValueError, match="got 1.5"):  # stacked candidates: each checked
        check({"lam": jnp.ones(2), "gamma": jnp.array([0.5, 1.5])})
    check({"lam": jnp.array(1.0), "gamma": jnp.array(1.0)})  # the box's upper corner


def test_replay_names_inputs_of_the_wrong_width_without_the_run_view():
    # after_task called with seen=None (as the unit tests do) and 5 features for a buffer of
    # 2 raised AttributeError: 'NoneType' object has no attribute 'shape'
    m = B.replay_method(linear, n_tasks=2, n_classes=3, d=2, capacity=4)
    hp = {"rho": jnp.array(1.0), "m": jnp.array(2.0)}
    task = (jnp.ones((4, 5)), jnp.array([0, 1, 0, 1]), jnp.array(4))
    with pytest.raises(ValueError, match="replay_method: the buffer holds 2 tasks of 2 features"):
        m.after_task(None, m.init(None, None, hp), jax.random.key(0), 0, task, None, hp)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_paired_refuses_a_run_that_is_not_a_number(bad):
    # a nan run counted as neither a win nor a loss (wins 0, losses 0 of 3 pairs) and made
    # every statistic nan without saying which run
    with pytest.raises(ValueError, match=r"paired: a must be finite, got (nan|inf) at run 1"):
        scores.paired([0.5, bad, 0.7], [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="paired: b must be finite"):
        scores.paired([0.5, 0.6], [bad, 0.5])


@pytest.mark.parametrize("N", [300.5, "400", True])
def test_pad_tasks_names_a_row_count_that_is_not_an_int(N):
    # 300.5 failed inside np.resize, "400" in a comparison of str and int
    with pytest.raises(ValueError, match="pad_tasks: N must be an int"):
        C.pad_tasks(C.load_split("digits", 0), N)
