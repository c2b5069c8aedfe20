"""Audit of nnjax.reference and nnjax.verify on paths the other tests do not take: scalar
inputs, infinite logits, out-of-range probabilities, one value per channel, float32 inputs,
the verify API's arguments and its comparison of infinities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations as A
from nnjax import losses as L
from nnjax import verify as V
from nnjax.reference import activations as RA
from nnjax.reference import layers as RLay
from nnjax.reference import losses as RL
from nnjax.reference import norm as RN
from nnjax.reference import pool as RP
from nnjax.reference import recurrent as RR
from nnjax.verify.layers import vjp_row


def test_gelu_twin_takes_scalars():
    """Finding: RA.gelu(1.0), gelu_derivative(1.0) and vjp("gelu", 0.5, 1.0) raised
    AttributeError: 'float' object has no attribute 'astype' (erfc's ufunc returns a bare
    float on a 0-d input); every other activation took a scalar."""
    for z in (1.0, np.float64(-2.0), np.array(0.5), np.float32(3.0)):
        with jax.enable_x64(True):
            z64 = jnp.asarray(z, jnp.float64)
            want, want_d = float(A.gelu(z64)), float(jax.grad(A.gelu)(z64))
        rtol = 1e-6 if np.asarray(z).dtype == np.float32 else 1e-12
        assert float(RA.gelu(z)) == pytest.approx(want, rel=rtol)
        assert float(RA.gelu_derivative(z)) == pytest.approx(want_d, rel=rtol)
        assert float(RA.vjp("gelu", z, 2.0)) == pytest.approx(2 * want_d, rel=rtol)
    assert RA.gelu(np.float32(3.0)).dtype == np.float32


def test_bce_with_logits_twin_is_the_limit_at_infinite_logits():
    """Finding: the twin computed softplus(z) - t z, inf - inf = NaN at z = +inf with t = 1
    (and at z = -inf with t = 0 or 1/2 the terms came out NaN or inf unlike JAX), so the
    mean was NaN where JAX's is finite (0.139 here)."""
    z = np.array([[np.inf], [-np.inf], [np.inf], [-np.inf], [0.0], [800.0]])
    t = np.array([1.0, 0.0, 0.5, 1.0, 1.0, 0.0])
    value, grad = RL.LOSSES["binary_cross_entropy_with_logits"]
    with jax.enable_x64(True):
        for red in ("none", "mean", "sum"):
            f = lambda q, red=red: L.binary_cross_entropy_with_logits(q, t, red)  # noqa: E731
            want = np.asarray(f(jnp.asarray(z)))
            np.testing.assert_array_equal(value(z, t, red), want)
        g = np.asarray(jax.grad(lambda q: f(q).sum())(jnp.asarray(z)))
    np.testing.assert_allclose(grad(z, t, "sum"), g, rtol=1e-15)
    assert value(z[:2], t[:2]) == 0.0  # the right target at +-inf: exactly 0
    assert value(z.astype(np.float32), t).dtype == np.float32


def test_bce_twin_refuses_probabilities_outside_the_unit_interval():
    """Finding: the twin clipped p = 1.5 or -0.2 (logits passed by mistake) or NaN into
    [eps, 1 - eps] and returned a finite loss (2.2e-16 here), where nnjax.losses raises."""
    t = np.array([1.0, 0.0])
    msg = r"binary_cross_entropy: probabilities p must be in \[0, 1\]; got values from -0.2 to 1.5"
    for f in RL.LOSSES["binary_cross_entropy"]:
        with pytest.raises(ValueError, match=msg):
            f(np.array([[1.5], [-0.2]]), t)
        with pytest.raises(ValueError, match="from nan to nan"):
            f(np.array([[np.nan], [0.5]]), t)
        assert np.isfinite(f(np.array([[0.0], [1.0]]), t)).all()  # the bounds are fine
    with pytest.raises(ValueError, match=msg):
        L.binary_cross_entropy(np.array([[1.5], [-0.2]]), t)  # the same message as JAX's


def test_batch_norm_twin_refuses_one_value_per_channel():
    """Finding: on a (1, C) batch the twin returned y = offset and a running variance of
    NaN (0 * 1 / 0, with a RuntimeWarning), where the JAX layer raises."""
    p = {"scale": np.ones(3), "offset": np.zeros(3)}
    msg = "training needs more than 1 value per channel, got input"
    with pytest.raises(ValueError, match="BatchNorm: " + msg):
        RN.batch_norm().forward(p, np.ones((1, 3)))
    with pytest.raises(ValueError, match="batch_norm_update: " + msg):
        RN.batch_norm_update({"mean": np.zeros(3), "var": np.ones(3)}, np.ones((1, 1, 3)))
    assert RN.batch_norm(train=False, state={"mean": 0.0, "var": 1.0}).forward(p, np.ones((1, 3)))


def test_twins_keep_float32():
    """Finding: AvgPool's output and dJ/dx, the recurrent layers' outputs and every
    gradient, and Embedding's dJ/dW came back float64 for float32 inputs and params (a
    float64 count, zero carry or accumulator); every other twin keeps float32."""
    rng = np.random.default_rng(0)
    r = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    lstm_params = {"W_i": r(3, 16), "W_h": r(4, 16), "b": r(16)}
    cases = [
        (RP.avg_pool(2, padding="SAME"), {}, r(2, 5, 3)),
        (RR.rnn(RR.simple_rnn()), {"W_i": r(3, 4), "W_h": r(4, 4), "b": r(4)}, r(2, 5, 3)),
        (
            RR.rnn(RR.gru(), return_sequences=True),
            {"W_i": r(3, 12), "W_h": r(4, 12), "b_i": r(12), "b_h": r(12)},
            r(2, 5, 3),
        ),
        (RR.rnn(RR.lstm(), reverse=True), lstm_params, r(2, 5, 3)),
        (RR.lstm_cell(), lstm_params, r(2, 3)),
        (RLay.embedding(5, 3), {"W": r(5, 3)}, rng.integers(0, 5, (2, 4))),
    ]
    for pair, params, x in cases:
        y, cache = pair.forward(params, x)
        dx, grads = pair.backward(np.ones_like(y), cache)
        assert y.dtype == np.float32, pair.name
        if x.dtype == np.float32:
            assert dx.dtype == np.float32, pair.name
        assert all(g.dtype == np.float32 for g in grads.values()), pair.name
    y, _ = RR.rnn(RR.simple_rnn()).forward(
        {"W_i": np.ones((1, 2)), "W_h": np.ones((2, 2)), "b": np.zeros(2)}, np.ones((1, 2, 1), int)
    )
    assert y.dtype == np.float64  # integer inputs: float64, as before


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"seed": None}, "seed must be an integer >= 0, got None"),
        ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"architectures": -1}, "architectures must be an integer >= 0 and <= 100000, got -1"),
        ({"architectures": True}, "architectures must be an integer >= 0 and <= 100000, got True"),
        ({"architectures": 10**11}, "architectures must be an integer >= 0 and <= 100000, got"),
    ],
)
def test_verify_steps_refuse_bad_arguments_by_name(kw, message):
    """Finding: seed=None was taken and failed only when the first MLP step ran (TypeError:
    unsupported operand type(s) for +: 'NoneType' and 'int'); seed=-1 gave NumPy's 'expected
    non-negative integer'; architectures=-1 or True ran as 0 or 1 architectures; 1e11 would
    fill the memory building the steps."""
    with pytest.raises(ValueError, match=message):
        V.verify_steps(**kw)
    with pytest.raises(ValueError, match=message):
        V.run_all(**kw)
    names = [name for name, _ in V.verify_steps(np.int64(3), np.int32(2))]  # NumPy ints pass
    assert names[5:7] == ["MLP 1/2", "MLP 2/2"]


def test_check_refuses_an_unknown_bound_and_a_bad_tolerance():
    """Finding: any bound other than "rel" judged the absolute difference, so a misspelt
    check("x", 1e-12, 2e-12, 1e-9, "relative") passed with a relative difference of 0.5;
    a negative or NaN tolerance made a row that could never pass."""
    a, e = np.array([1e-12]), np.array([2e-12])
    with pytest.raises(ValueError, match="bound must be one of 'rel', 'abs', got 'relative'"):
        V.check("x", a, e, 1e-9, "relative")
    for tol in (-1.0, float("nan"), float("inf"), "1e-9", True):
        with pytest.raises(ValueError, match="tol must be a finite number >= 0, got"):
            V.check("x", a, e, tol)
        with pytest.raises(ValueError, match="tol must be a finite number >= 0, got"):
            V.check_tree("x", a, e, tol)
    assert not V.Check("x", 1e-12, 0.5, 1e-9, "relative").passed
    assert V.check("x", a, a, 0.0, "abs").passed and V.check("x", a, e, np.float64(1.0)).passed


def test_equal_infinities_agree_in_the_comparisons():
    """Finding: tree_diff and check_tree took inf - inf = NaN for two equal infinities, so a
    twin reaching the same limit as JAX (max pooling over -inf inputs, a loss term of inf)
    made a FAILing row with inf differences; and an infinite expected value made every
    finite difference of its leaf relatively 0."""
    inf = np.inf
    assert V.tree_diff(np.array([inf, -inf, 1.0]), np.array([inf, -inf, 1.0])) == (0.0, 0.0)
    assert V.tree_diff(np.array([inf, 1.1]), np.array([inf, 1.0]))[1] == pytest.approx(0.1)
    for a, e in (([inf, 1.0], [-inf, 1.0]), ([5.0], [inf]), ([np.nan], [np.nan])):
        assert V.tree_diff(np.array(a), np.array(e)) == (inf, inf)
        assert not V.check_tree("x", [np.array(a)], [np.array(e)]).passed
    assert V.check_tree("x", [np.array([inf, 1.0])], [np.array([inf, 1.0])]).max_rel == 0.0

    from nnjax.layers import MaxPool

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (2, 5, 6, 2)).astype(float)
    x[0, :2], x[1, 0, 0] = -inf, inf
    kw = {"window": 3, "strides": 1, "padding": "SAME"}
    layer = MaxPool(**kw)
    d = rng.normal(size=layer.init(None, x.shape)[0])
    f = lambda p, x: layer.apply(p, x)  # noqa: E731
    row = vjp_row("MaxPool over +-inf", f, RP.max_pool(**kw), {}, x, d)
    assert row.passed, row


def test_check_losses_catches_a_gradient_that_assumes_rows_summing_to_one(monkeypatch):
    """Finding: every softmax cross-entropy target verify drew summed to 1 per row (labels,
    one-hot, Dirichlet), so a twin gradient softmax(z) - t, missing the factor sum_k t_bk
    JAX's has, passed every row."""
    value, grad = RL.LOSSES["softmax_cross_entropy"]

    def wrong(z, t, reduction="mean"):
        t = np.eye(z.shape[-1])[t] if np.ndim(t) == 1 else t
        return grad(z, t / np.sum(t, axis=-1, keepdims=True), reduction)

    rows = V.check_losses(np.random.default_rng(0))
    assert all(r.passed for r in rows)
    monkeypatch.setitem(RL.LOSSES, "softmax_cross_entropy", (value, wrong))
    failed = [r.component for r in V.check_losses(np.random.default_rng(0)) if not r.passed]
    assert failed and all("weights" in c for c in failed)


def test_the_cli_bound_on_architectures_is_the_api_bound():
    """commands/verify.py keeps its own copy (its --help must not import JAX)."""
    from nnjax.commands import verify as command

    assert command.MAX_ARCHITECTURES == V.MAX_ARCHITECTURES


def test_verify_rows_with_a_non_default_eps_catch_a_norm_twin_that_ignores_it(monkeypatch):
    """verify checked LayerNorm and BatchNorm at their default eps (1e-5) only, where a twin
    that ignored eps agreed to 1e-10; the eps = 0.5 rows fail it."""
    from nnjax.reference import layers as RLay
    from nnjax.reference import norm as RN
    from nnjax.verify import layer_rows

    cases = [c for c in layer_rows.LAYER_CASES if "eps 0.5" in c[0]]
    assert [c[0] for c in cases] == ["LayerNorm eps 0.5", "BatchNorm (train) eps 0.5"]
    assert all(r.passed for r in layer_rows.check_layer_twins(np.random.default_rng(0), cases))
    table = next(v for v in vars(RLay).values() if isinstance(v, dict) and "LayerNorm" in v)
    monkeypatch.setitem(table, "LayerNorm", lambda eps=1e-5, **kw: RN.layer_norm(**kw))
    batch_norm = RN.batch_norm  # verify takes it from the module (training mode)
    monkeypatch.setattr(RN, "batch_norm", lambda eps=1e-5, **kw: batch_norm(**kw))
    rows = layer_rows.check_layer_twins(np.random.default_rng(0), cases)
    assert not any(r.passed for r in rows)
