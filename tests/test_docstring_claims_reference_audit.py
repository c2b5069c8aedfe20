"""Docstring claims of the NumPy twin (nnjax.reference) and of nnjax.verify held against
their behaviour (audit).

Each test reads one claim of a public docstring and checks it with a small program: the
twin against JAX in float64 at edge inputs, the data order verify re-derives against
``nnjax.fit``, and what the check functions draw.
"""

import warnings

import jax
import numpy as np
import pytest

from nnjax import activations as A
from nnjax import verify as V
from nnjax.reference import activations as RA
from nnjax.reference import optim as RO
from nnjax.verify import checks
from nnjax.verify import layers as VL


def _doc(obj) -> str:
    return " ".join(obj.__doc__.split())


# --- check_activations: "on z in [-40, 40] with 0 and +-1e4". z is N(0, 8^2), not clipped:
# seed 1292 (the first rng use of `nnjax verify --seed 1292`) draws |z| = 40.6.


def test_check_activations_docstring_says_what_z_is():
    doc = _doc(checks.check_activations)
    assert "z in [-40, 40]" not in doc
    assert "z ~ N(0, 8^2)" in doc and "|z| > 40" in doc
    z = np.random.default_rng(1292).normal(0.0, 8.0, (64, 9))  # as check_activations draws
    assert np.abs(z).max() > 40.0


def test_check_activations_passes_on_a_seed_that_draws_beyond_40():
    rows = checks.check_activations(np.random.default_rng(1292))
    names = [f"activation {n}" for n in A.ACTIVATIONS]
    assert [r.component for r in rows][: len(names)] == names
    assert all(r.passed for r in rows), [r for r in rows if not r.passed]


# --- compare_network: "on x, params ~ N(0, 0.5^2)": params are N(0, 0.5^2), x is N(0, 1).


def test_compare_network_draws_x_from_a_unit_normal(monkeypatch):
    doc = _doc(VL.compare_network)
    assert "x ~ N(0, 1)" in doc and "params ~ N(0, 0.5^2)" in doc
    seen = []
    real = VL.twin_of

    def spy(spec):
        pair = real(spec)

        def forward(params, x):
            seen.append((params, np.asarray(x)))
            return pair.forward(params, x)

        return pair._replace(forward=forward)

    monkeypatch.setattr(VL, "twin_of", spy)
    rows = VL.compare_network(("Dense", {"features": 40}), (50, 40), seed=0)
    assert all(r.passed for r in rows), rows
    ((params, x),) = seen
    assert 0.9 < x.std() < 1.1  # N(0, 1), not N(0, 0.25)
    assert 0.45 < params["W"].std() < 0.55


# --- check_relu_derivative: "The step 1[z > 0] passes the finite-difference check; max(0, z)
# (ReLU itself) fails": it returns two rows, and neither runs max(0, z).


def test_check_relu_derivative_docstring_names_its_two_rows():
    doc = _doc(checks.check_relu_derivative)
    assert doc.startswith("Two rows:") and "no row runs it" in doc
    rows = checks.check_relu_derivative(np.random.default_rng(0))
    assert [r.component for r in rows] == [
        "relu' = 1[z > 0] vs finite differences",
        "relu'(0) = 0 vs jax.grad(relu)(0)",
    ]
    assert all(r.passed for r in rows)
    z = np.random.default_rng(0).uniform(-3.0, 3.0, 200)
    fd = (RA.relu(z + V.FD_STEP) - RA.relu(z - V.FD_STEP)) / (2 * V.FD_STEP)
    assert not V.check("wrong", RA.relu_derivative_wrong(z), fd, V.FD_RTOL).passed


# --- gelu_derivative: "the limits 1 and 0 at z = +inf and -inf"; a finite z beyond 1.3e154
# gave the right 1 or 0 but with NumPy's "RuntimeWarning: overflow encountered in multiply"
# (z^2 overflows, e^-inf = 0), so jax.grad's neighbour in the twin warned on a valid input.


def test_gelu_derivative_of_huge_finite_z_is_its_limit_without_a_warning():
    z = np.array([2e154, -2e154, 1e300, -1.7e308, np.inf, -np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = RA.gelu_derivative(z)
        back = RA.vjp("gelu", z, np.ones_like(z))
    np.testing.assert_array_equal(got, [1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(back, got)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(jax.vmap(jax.grad(A.gelu))(z[:4]), got[:4])


# --- Sound claims, pinned: the twin's derivatives at kinks and saturation against jax.grad.

_EDGES = np.array(
    [0.0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, 1.0, -1.0, 17.0, -17.0, 40.0, -40.0, 700.0,
     -700.0, 1e4, -1e4, np.inf, -np.inf]
)  # fmt: skip


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "sigmoid", "softplus", "silu"])
def test_elementwise_derivatives_match_jax_grad_at_kinks_and_extremes(name):
    with jax.enable_x64(True):
        want = np.asarray(jax.jit(jax.vmap(jax.grad(A.ACTIVATIONS[name])))(_EDGES))
    got = RA.ACTIVATIONS[name][1](_EDGES)
    # absolute: JAX flushes e^-700-sized subnormals and rounds elu'(-40) to 0 via expm1
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[0] == want[0] and got[1] == want[1]  # the kink at 0 and -0: exactly


def test_fit_batch_indices_are_the_order_fit_trains_on():
    # "The index arrays nnjax.fit uses, step by step": reference.train fed them reproduces
    # fit's loss history, with a remainder dropped (48 rows in batches of 7) and a typed key.
    from nnjax.reference.train import train
    from nnjax.train import fit
    from nnjax.verify.problems import _fit_problem, models

    arch, params, X, y = _fit_problem(np.float64)
    model, (forward, backward) = models(arch)
    key = jax.random.key(11)
    with jax.enable_x64(True):
        res = fit(model, params, X, y, optimizer="sgd", learning_rate=0.1, loss=arch.loss,
                  epochs=2, batch_size=7, key=key)  # fmt: skip
        idx = V.fit_batch_indices(key, X.shape[0], 7, 2)
    assert len(idx) == 2 * (48 // 7)
    _, losses = train(forward, backward, params, X, y, loss=arch.loss, optimizer="sgd",
                      learning_rate=0.1, batch_indices=idx)  # fmt: skip
    np.testing.assert_allclose(losses, res.step_loss, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "name, hp",
    [("nesterov", {"momentum": 0.99}), ("adagrad", {"initial_accumulator_value": 0.0}),
     ("rmsprop", {"decay": 0.0, "eps": 1e-3}), ("adamw", {"weight_decay": 0.5, "eps": 1.0})],
)  # fmt: skip
def test_optimizer_twins_follow_optax_at_unusual_hyperparameters(name, hp):
    jp, rp = checks.optimizer_trajectory(name, 40, 0.05, **hp)
    row = V.check(name, jp, rp, V.TRAJ_ATOL, "abs")
    assert row.passed, row
    assert RO.tree_leaves(rp)[0].dtype == np.float64
