"""Leftovers: make_loss_fn and make_train_step given a state for a stateless model (it was
ignored; evaluate and fit refuse it); the brain side's positive-number check passed None and
any other object that is no number."""

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


@pytest.mark.parametrize("value", [None, {"tau": 1.0}, [1.0, "x"], object(), 1 + 2j])
def test_the_brain_positive_number_check_refuses_what_is_no_number(value):
    from nnjax.brain import dynamics

    with pytest.raises(ValueError, match=r"^f: tau must be a finite number > 0, got "):
        dynamics.check_positive(value, "tau", "f")


def test_the_brain_positive_number_check_passes_numbers_and_traced_values():
    from nnjax.brain import dynamics

    for value in (1, 2.5, np.float32(3), jnp.ones(3), [1.0, 2.0]):
        dynamics.check_positive(value, "tau", "f")
    got = jax.jit(lambda t: dynamics.check_positive(t, "tau", "f") or 2 * t)(1.5)
    assert float(got) == 3.0


def test_a_brain_function_given_none_names_its_argument():
    from nnjax.brain import spiking

    with pytest.raises(ValueError, match="^RateEncoder: gain must be a finite number > 0, got "):
        spiking.RateEncoder(5, gain=None)  # it built an encoder


@pytest.mark.parametrize("name", ["y.txt", "y.csv", "y"])
def test_labels_of_another_format_are_named_as_labels(tmp_path, name):
    """--labels y.txt said "unknown data format '.txt'; valid: .csv, .npz, .npy", where
    only .npy is valid for labels (and y.csv was "must be a .npy file" already)."""
    from nnjax import datafile

    X = tmp_path / "x.npy"
    np.save(X, np.zeros((4, 2), np.float32))
    (tmp_path / name).write_text("0\n1\n0\n1\n")
    with pytest.raises(ValueError, match=f"^--labels {re.escape(str(tmp_path / name))}: must be"):
        datafile.check_paths(X, labels=tmp_path / name)
