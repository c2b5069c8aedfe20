"""Leftovers: make_loss_fn and make_train_step given a state for a stateless model (it was
ignored; evaluate and fit refuse it)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax

STATELESS = "state= was given but the model is stateless (its state is ())"


def _stateless():
    model = nnjax.mlp([4, 3], activation="relu")
    _, params = model.init(jax.random.key(0), (-1, 5))
    X = jax.random.normal(jax.random.key(1), (6, 5))
    return model, params, (X, jnp.arange(6) % 3)


@pytest.mark.parametrize("state", [{"x": jnp.ones(2)}, [{"mean": jnp.zeros(4)}]])
def test_a_stateless_models_loss_and_step_refuse_a_state(state):
    model, params, batch = _stateless()
    loss_fn = nnjax.make_loss_fn(model)
    said = "^" + re.escape(f"make_loss_fn: loss_fn: {STATELESS}")
    for call in (loss_fn, jax.jit(loss_fn), jax.grad(loss_fn)):
        with pytest.raises(ValueError, match=said):
            call(params, batch, state=state)
    step = nnjax.make_train_step(model, "softmax_cross_entropy", optax.sgd(0.1))
    with pytest.raises(ValueError, match="^" + re.escape(f"make_train_step: step: {STATELESS}")):
        step(params, optax.sgd(0.1).init(params), batch, state=state)
    with pytest.raises(ValueError, match=re.escape(STATELESS)):  # as evaluate says
        nnjax.evaluate(model, params, *batch, state=state)


@pytest.mark.parametrize("state", [(), None, [], [{}, {}, {}]])
def test_a_stateless_models_empty_state_is_accepted_with_the_same_numbers(state):
    model, params, batch = _stateless()
    loss_fn = nnjax.make_loss_fn(model)
    want = nnjax.losses.softmax_cross_entropy(model.apply(params, batch[0]), batch[1])
    np.testing.assert_allclose(loss_fn(params, batch, state=state), want, rtol=1e-6)
    step = nnjax.make_train_step(model, "softmax_cross_entropy", optax.sgd(0.1))
    got = step(params, optax.sgd(0.1).init(params), batch, state=state)
    assert len(got) == 3 and np.isclose(float(got[2]), float(want), rtol=1e-6)
