"""A mutation audit of what ``nnjax verify`` builds: the random MLP problems and their
targets, the fit loop's batches, the layer rows' inputs and the tree comparison's floor."""

import jax
import numpy as np
import pytest

from nnjax.verify import layer_rows as LR
from nnjax.verify import layers as VL
from nnjax.verify.problems import (
    Arch,
    fit_batch_indices,
    make_problem,
    output_activation_for,
    random_arch,
)


def test_random_arch_draws_the_documented_ranges_and_every_option():
    """Catches: depth drawn from 1-4 instead of 1-5, widths 1-127, batch from 2, huge logits
    (1e4) never drawn, bias always on, the binary cross-entropy not given sigmoid outputs."""
    archs = [random_arch(np.random.default_rng(s)) for s in range(3000)]
    depths = {len(a.sizes) for a in archs}
    widths = {w for a in archs for w in a.sizes}
    assert depths == {1, 2, 3, 4, 5}
    assert min(widths) == 1 and max(widths) == 128
    assert {min(a.batch for a in archs), max(a.batch for a in archs)} == {1, 256}
    assert {min(a.n_in for a in archs), max(a.n_in for a in archs)} == {1, 128}
    assert {a.logit_scale for a in archs if a.output_activation is None} == {1.0, 1e2, 1e4}
    assert {a.logit_scale for a in archs if a.output_activation is not None} == {1.0}
    assert {a.use_bias for a in archs} == {True, False}
    for a in archs:
        assert a.output_activation == output_activation_for(a.loss, a.output_activation)
    assert output_activation_for("binary_cross_entropy", "tanh") == "sigmoid"
    assert output_activation_for("softmax_cross_entropy", "tanh") is None
    assert output_activation_for("mse", "tanh") == "tanh"


def _oracle_params(arch, seed):
    """The documented draws, by hand: W ~ N(0, 2 / fan_in), b ~ N(0, 0.1^2), the output
    layer times logit_scale, an empty dict for each activation between layers."""
    rng = np.random.default_rng(seed)
    out, fan_in = [], arch.n_in
    for i, width in enumerate(arch.sizes):
        W = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, width))
        b = rng.normal(0.0, 0.1, width) if arch.use_bias else None
        s = arch.logit_scale if i == len(arch.sizes) - 1 else 1.0
        out.append({"W": W * s} | ({} if b is None else {"b": b * s}))
        out.append({})
        fan_in = width
    return out if arch.output_activation is not None else out[:-1], rng


def test_make_problem_draws_he_weights_small_biases_and_scales_only_the_output_layer():
    """Catches: W's variance 1 / fan_in instead of 2 / fan_in, biases ~ N(0, 1), fan_in not
    carried to the next layer, logit_scale on the first layer, a missing output-activation
    slot, X not ~ N(0, 1) of shape (B, n_in)."""
    for arch in (
        Arch(5, (4, 3, 2), 6, "tanh", None, "mse", "match", True, 1e2),
        Arch(3, (7, 1), 4, "relu", "sigmoid", "mse", "match", False, 1.0),
    ):
        params, X, _ = make_problem(arch, np.random.default_rng(11))
        expected, rng = _oracle_params(arch, 11)
        assert [sorted(p) for p in params] == [sorted(p) for p in expected]
        for p, e in zip(params, expected):
            for k in e:
                np.testing.assert_allclose(p[k], e[k], rtol=1e-15)
        np.testing.assert_allclose(X, rng.normal(size=(arch.batch, arch.n_in)), rtol=1e-15)


@pytest.mark.parametrize(
    "loss, target, K, shape, kind",
    [
        ("mse", "flat", 1, (9,), "normal"),
        ("mse", "flat", 3, (9, 3), "normal"),
        ("mse", "match", 1, (9, 1), "normal"),
        ("binary_cross_entropy", "flat", 1, (9,), "binary"),
        ("binary_cross_entropy_with_logits", "flat", 2, (9, 2), "binary"),
        ("binary_cross_entropy_with_logits", "match", 1, (9, 1), "binary"),
        ("softmax_cross_entropy", "labels", 4, (9,), "labels"),
        ("softmax_cross_entropy", "match", 4, (9, 4), "onehot"),
        ("softmax_cross_entropy", "probs", 4, (9, 4), "probs"),
    ],
)
def test_make_problem_targets_take_the_form_each_loss_and_target_name(loss, target, K, shape, kind):
    """Catches: a flat target of width 1 made (B, 1) (the (B,) broadcast case never
    checked), a flat target of width > 1 made (B,), labels out of [0, K) or not int32,
    one-hot rows that are not one-hot, probabilities that do not sum to 1."""
    arch = Arch(2, (K,), 9, "tanh", None, loss, target)
    _, _, y = make_problem(arch, np.random.default_rng(3))
    assert y.shape == shape
    if kind == "binary":
        assert set(np.unique(y)) <= {0.0, 1.0} and y.dtype == np.float64
    elif kind == "labels":
        assert y.dtype == np.int32 and y.min() >= 0 and y.max() < K
    elif kind == "onehot":
        assert set(np.unique(y)) == {0.0, 1.0} and np.all(y.sum(1) == 1)
    elif kind == "probs":
        assert np.all(y > 0) and np.allclose(y.sum(1), 1.0, rtol=0, atol=1e-14)
    else:
        assert y.dtype == np.float64 and len(np.unique(y)) == y.size


def test_full_batch_fit_indices_are_one_none_per_epoch():
    """Catches: a full-batch fit compared over one step fewer (or more) than its epochs."""
    assert fit_batch_indices(0, 10, None, 4) == [None] * 4
    steps = fit_batch_indices(3, 10, 4, 3)
    assert len(steps) == 3 * 2 and all(len(s) == 4 for s in steps)  # remainder 2 dropped


def test_batch_norm_steps_follow_pytorchs_running_rule_with_the_given_momentum_and_eps():
    """Catches: momentum or eps not handed to the layer, running statistics not carried
    from step to step, the biased variance: a NumPy loop of the rule as oracle."""
    xs = np.random.default_rng(5).normal(1.0, 2.0, (3, 4, 2))
    ys, states = LR.batch_norm_steps(xs, momentum=0.3, eps=0.5)
    mean, var = np.zeros(2), np.ones(2)
    for s, x in enumerate(xs):
        mu, v = x.mean(0), x.var(0)
        np.testing.assert_allclose(ys[s], (x - mu) / np.sqrt(v + 0.5), rtol=1e-12)
        mean, var = 0.7 * mean + 0.3 * mu, 0.7 * var + 0.3 * v * 4 / 3
        np.testing.assert_allclose(states["mean"][s], mean, rtol=1e-12)
        np.testing.assert_allclose(states["var"][s], var, rtol=1e-12)


def test_the_tie_rows_get_ties_the_initial_state_rows_nonzero_carries(monkeypatch):
    """Catches: tie rows drawn from a continuous law (no ties left to route), initial
    states of zeros (the default carry, so a twin ignoring initial_state passed), and
    random_params drawing N(0, 1) instead of the documented N(0, 0.5^2)."""
    seen = []
    monkeypatch.setattr(LR, "vjp_row", lambda label, f, pair, p, x, d: seen.append((f, x)))
    LR.check_max_pool_ties(np.random.default_rng(0))
    LR.check_recurrent_initial_state(np.random.default_rng(0))
    assert len(seen) == 5
    for _, x in seen[:2]:
        assert set(np.unique(x)) == {0.0, 1.0, 2.0}
    for f, _ in seen[2:]:
        carry = f.__defaults__[1]  # the (layer, carry) the row's JAX side applies with
        for c in carry if isinstance(carry, tuple) else (carry,):
            assert c.shape == (3, 4) and np.all(c != 0)
    tree = {"a": jax.ShapeDtypeStruct((20000,), np.float64)}
    draws = VL.random_params(tree, np.random.default_rng(1))
    assert abs(draws["a"].std() - 0.5) < 0.01 and abs(draws["a"].mean()) < 0.01


def test_network_spec_blocks_fit_their_shapes_and_end_in_flatten_and_dense():
    """Catches: recurrent cells offered on a 4-D input, a LayerNorm over one feature or a
    BatchNorm over one value per channel let through, the Flatten before the read-out
    dropped, at most n_blocks - 1 blocks drawn, transposed convs or pools never drawn with
    groups or their default stride."""
    from nnjax.verify import networks as N

    assert N.kinds_for((2, 3)) == N.ANYWHERE
    assert set(N.kinds_for((2, 5, 3))) == set(N.KINDS)
    assert set(N.kinds_for((2, 5, 5, 3))) == set(N.ANYWHERE + N.SPATIAL)
    for spec, shape in ((("LayerNorm", {}), (4, 1)), (("BatchNorm", {}), (1, 3))):
        with pytest.raises(ValueError):
            N._shape_after(spec, shape)
    rng = np.random.default_rng(0)
    counts, groups, strides = set(), set(), set()
    for _ in range(40):
        choose = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        (_, kw), shape = N.network_spec(choose)
        layers = kw["layers"]
        assert layers[-1][0] == "Dense"
        flat = layers[-2][0] == "Flatten"
        body = ("serial", {"layers": layers[: len(layers) - 1 - flat]})
        assert len(N._shape_after(body, shape)) > 2 or not flat  # Flatten only where needed
        assert len(N._shape_after(("serial", {"layers": layers[:-1]}), shape)) == 2
        counts.add(len(layers) - 1 - flat)
        groups |= {k.get("groups") for n, k in layers if n == "Conv"}
        strides |= {k.get("strides") for n, k in layers if n in ("MaxPool", "AvgPool")}
    assert counts == {1, 2, 3}
    assert {2, 3} & groups and None in strides


def test_a_size_of_2_to_the_63_is_refused_naming_the_initializer_and_the_count():
    """Catches: the limit raised to 2^63 (2^63 elements then reached JAX unnamed)."""
    from nnjax import initializers as I

    n = 2**63
    with pytest.raises(ValueError, match=rf"^initializer zeros: shape \({n},\) has {n} elements"):
        I.zeros(None, (n,))
    with pytest.raises(ValueError, match=rf"shape \(1, {n}\) has {n} elements, more than"):
        I.he_uniform(None, (1, n))


def test_compare_network_gives_a_shape_row_then_output_dparams_dx():
    """Catches: the row comparing init's output shape with apply's dropped (four rows, the
    first an exact bound of 0), or the rows out of order."""
    rows = VL.compare_network(("Dense", {"features": 2}), (3, 4), 0, "net")
    assert [r.component for r in rows] == [
        "net: init shape == apply shape",
        "net: output",
        "net: dJ/dparams",
        "net: dJ/dx",
    ]
    assert (rows[0].max_abs, rows[0].tol, rows[0].bound) == (0, 0.0, "abs")
    assert all(r.passed for r in rows) and max(r.max_rel for r in rows[1:]) < 1e-13
