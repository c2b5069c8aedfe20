"""Losses against closed forms, stability at extreme logits, gradients, and bad targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import expit

import nnjax
from nnjax import losses as L

RNG = np.random.default_rng(1)


def test_mse_closed_form_and_reductions():
    p, t = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    with jax.enable_x64(True):
        np.testing.assert_allclose(L.mse(p, t), np.mean((p - t) ** 2), rtol=1e-14)
        np.testing.assert_allclose(L.mse(p, t, "sum"), np.sum((p - t) ** 2), rtol=1e-14)
        np.testing.assert_allclose(L.mse(p, t, "none"), (p - t) ** 2, rtol=1e-14)


def test_binary_cross_entropy_from_probabilities():
    p, t = np.array([0.1, 0.7, 0.99]), np.array([0.0, 1.0, 1.0])
    want = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    with jax.enable_x64(True):
        np.testing.assert_allclose(L.binary_cross_entropy(p, t), want, rtol=1e-13)
        # p in {0, 1} against the wrong label: large but finite
        assert np.isfinite(float(L.binary_cross_entropy(jnp.array([0.0, 1.0]), jnp.array([1, 0]))))


def _exact_bce_grad(p, t):
    """d/dp of -(t log p + (1 - t) log(1 - p)), the unclipped loss."""
    return -t / p + (1.0 - t) / (1.0 - p)


# one compiled gradient for the six cases below (the values, not the eager path, are the point)
_BCE_SUM_GRAD = jax.jit(jax.grad(lambda p, t: L.binary_cross_entropy(p, t, "sum")))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("t", [0.0, 1.0, 0.3])
def test_bce_gradient_is_exact_at_the_clip_bounds_and_not_zero_beyond(dtype, t):
    eps = np.finfo(dtype).eps
    inside = np.array([eps, 0.25, 0.5, 1 - eps], dtype)  # the bounds included
    beyond = np.array([0.0, eps / 4, 1.0], dtype)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    grad = _BCE_SUM_GRAD
    with jax.enable_x64(dtype == "float64"):
        g_in = np.asarray(grad(jnp.asarray(inside), jnp.full(4, t, dtype)))
        g_out = np.asarray(grad(jnp.asarray(beyond), jnp.full(3, t, dtype)))
    np.testing.assert_allclose(g_in, _exact_bce_grad(inside.astype(np.float64), t), rtol=rtol)
    # beyond the clip: the exact gradient at the bound, passed straight through
    np.testing.assert_allclose(g_out, _exact_bce_grad(np.array([eps, eps, 1 - eps]), t), rtol=rtol)
    if t == 0.0:  # p = 1 against t = 0, confidently wrong: pushed down with about 1/eps
        assert g_out[2] == pytest.approx(1 / eps, rel=rtol)


def test_bce_gradient_with_respect_to_soft_targets():
    p, t = np.array([0.2, 0.7, 1.0]), np.array([0.1, 0.9, 0.5])
    # compiled (p, closed over, is still checked): each op compiled alone took 3 s
    with jax.enable_x64(True):
        g = jax.jit(jax.grad(lambda t: L.binary_cross_entropy(p, t, "sum")))(t)
        pc = np.clip(p, np.finfo(float).eps, 1 - np.finfo(float).eps)
        np.testing.assert_allclose(g, np.log1p(-pc) - np.log(pc), rtol=1e-14)
        f = jax.jit(lambda t: L.binary_cross_entropy(p[:2], t))
        check_grads(f, (t[:2],), order=2, eps=1e-6)


def test_bce_agrees_with_torch_inside_the_clip_and_differs_as_documented_at_the_ends():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    eps = float(np.finfo(np.float32).eps)
    p = np.array([eps, 1e-3, 0.3, 0.5, 0.9, 1 - eps], np.float32)
    # one compiled program for the three targets
    value_and_grad = jax.jit(jax.value_and_grad(lambda q, t: L.binary_cross_entropy(q, t, "sum")))
    for t in (np.zeros(6, np.float32), np.ones(6, np.float32), np.full(6, 0.3, np.float32)):
        pt = torch.tensor(p, requires_grad=True)
        want = F.binary_cross_entropy(pt, torch.tensor(t), reduction="sum")
        want.backward()
        value, grad = value_and_grad(p, t)
        np.testing.assert_allclose(value, want.item(), rtol=1e-6)
        np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-5)
    # p = 1 against t = 0: torch's log clamp at -100 and its 1e-12 floor; here -log(eps), 1/eps
    pt = torch.tensor([1.0], requires_grad=True)
    F.binary_cross_entropy(pt, torch.tensor([0.0]), reduction="sum").backward()
    assert pt.grad.item() == pytest.approx(1e12)
    value, grad = jax.value_and_grad(lambda q: L.binary_cross_entropy(q, jnp.zeros(1), "sum"))(
        jnp.ones(1)
    )
    assert float(value) == pytest.approx(-np.log(eps)) and float(grad[0]) == pytest.approx(1 / eps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_is_stable_to_1e4(dtype):
    z = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    t = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    with jax.enable_x64(dtype == "float64"):
        got = np.asarray(L.binary_cross_entropy_with_logits(jnp.asarray(z, dtype), t, "none"))
        grad = jax.jit(jax.grad(lambda z: L.binary_cross_entropy_with_logits(z, t, "sum")))(
            jnp.asarray(z, dtype)
        )
    # softplus(z) - t z without cancelling: at z = 50, t = 1 it is log1p(e^-50) = 1.9e-22,
    # where logaddexp(0, z) - t z rounds to 0
    want = np.where(z >= 0, (1 - t) * z, -t * z) + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-14)
    sig = expit(z)
    np.testing.assert_allclose(grad, sig - t, atol=1e-6)


def test_bce_with_logits_gradient_at_zero_is_sigmoid_minus_target():
    # the max(z,0) + log1p(exp(-|z|)) form gives the wrong autodiff value at z = 0
    g = jax.grad(lambda z: L.binary_cross_entropy_with_logits(z, jnp.array([1.0]), "sum"))(
        jnp.array([0.0])
    )
    np.testing.assert_allclose(g, [-0.5])


def test_softmax_cross_entropy_labels_and_one_hot_agree_and_are_stable():
    z = np.array([[1e4, 0.0, -1e4], [0.1, 0.2, 0.3], [-5.0, 5.0, 0.0]])
    y = np.array([1, 2, 1])
    with jax.enable_x64(True):
        a = L.softmax_cross_entropy(z, y, "none")
        b = L.softmax_cross_entropy(z, np.eye(3)[y], "none")
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    want = -logp[np.arange(3), y]
    np.testing.assert_allclose(a, want, rtol=1e-13)
    np.testing.assert_allclose(b, want, rtol=1e-13)
    assert np.isfinite(np.asarray(a)).all()


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_loss_gradients_match_finite_differences(name):
    pred = RNG.normal(size=(4, 3))
    if name == "binary_cross_entropy":
        pred, target = 1 / (1 + np.exp(-pred)), (RNG.random((4, 3)) > 0.5).astype(float)
    elif name == "binary_cross_entropy_with_logits":
        target = (RNG.random((4, 3)) > 0.5).astype(float)
    elif name == "softmax_cross_entropy":
        target = RNG.integers(0, 3, size=4)
    else:
        target = RNG.normal(size=(4, 3))
    with jax.enable_x64(True):  # compiled: the derivatives, not the eager path, are the point
        check_grads(
            jax.jit(lambda p: L.get_loss(name)(p, target)),
            (jnp.asarray(pred),),
            order=1,
            modes=["rev"],
            eps=1e-6,
        )


def test_binary_targets_broadcast_against_a_single_output_column():
    z = jnp.array([[0.3], [-1.2]])
    y = jnp.array([1, 0])
    np.testing.assert_allclose(
        L.binary_cross_entropy_with_logits(z, y),
        L.binary_cross_entropy_with_logits(z[:, 0], y),
        rtol=1e-6,
    )


def test_bad_targets_and_names_raise():
    with pytest.raises(ValueError, match="integer labels of shape \\(2,\\)"):
        L.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\) for 3 classes; got .* 3"):
        L.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*from -1"):
        L.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([-1, 2]))
    with pytest.raises(ValueError, match="do not fit predictions"):
        L.mse(jnp.zeros((2, 3)), jnp.zeros((3,)))
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        L.mse(jnp.zeros(2), jnp.zeros(2), "avg")
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*mse"):
        L.get_loss("hinge")


def test_out_of_range_labels_under_jit_give_nan_not_a_wrapped_class():
    """Traced labels cannot be checked: -1 and K both make their term NaN (indexing alone
    would wrap -1 to the last class and train on it silently), and their row no gradient."""
    z = jnp.array([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2], [0.0, 0.0, 1.0]])
    loss = jax.jit(lambda z, y: L.softmax_cross_entropy(z, y, "none"))
    grad = jax.jit(jax.grad(L.softmax_cross_entropy))  # compiled once for the three labels
    good = np.asarray(L.softmax_cross_entropy(z, jnp.array([2, 1, 0]), "none"))
    for bad in (-1, 3, -4):
        got = np.asarray(loss(z, jnp.array([bad, 1, 0])))
        assert np.isnan(got[0]) and np.array_equal(got[1:], good[1:]), (bad, got)
        g = grad(z, jnp.array([bad, 1, 0]))
        assert np.all(np.asarray(g[0]) == 0.0) and np.all(np.isfinite(g))
    assert np.isnan(float(jax.jit(L.softmax_cross_entropy)(z, jnp.array([-1, 1, 0]))))


def test_bce_with_logits_derivatives_match_finite_differences_and_hessian():
    """The closed-form JVP: d/dz = sigmoid(z) - t, d/dt = -z; its own derivative (the
    Hessian diagonal sigmoid (1 - sigmoid)) comes from differentiating the rule."""
    with jax.enable_x64(True):
        z = jnp.array([-30.0, -2.0, -0.3, 0.0, 0.7, 3.0, 30.0], jnp.float64)
        t = jnp.array([0.0, 1.0, 0.2, 1.0, 0.0, 0.5, 1.0], jnp.float64)
        # compiled: the rule's values, not the eager path, are the point (eager took 3 s)
        f = jax.jit(lambda z, t: L.binary_cross_entropy_with_logits(z, t, "sum"))
        gz, gt = jax.jit(jax.grad(f, argnums=(0, 1)))(z, t)
        h = 1e-6
        for i in range(len(z)):
            e = jnp.zeros_like(z).at[i].set(h)
            np.testing.assert_allclose(gz[i], (f(z + e, t) - f(z - e, t)) / (2 * h), atol=1e-8)
            np.testing.assert_allclose(gt[i], (f(z, t + e) - f(z, t - e)) / (2 * h), atol=1e-8)
        s = expit(np.asarray(z))
        hessian = jax.jit(jax.hessian(f))(z, t)
        np.testing.assert_allclose(hessian, np.diag(s * (1 - s)), atol=1e-15)
        # forward mode and reverse mode agree
        np.testing.assert_allclose(jax.jit(jax.jacfwd(f))(z, t), gz, rtol=1e-15)


def test_integer_predictions_do_not_truncate_float_targets():
    """mse([[1], [0], [1]], [.7, .2, .9]) was 0.667: the targets were cast to int32."""
    got = L.mse(jnp.array([[1], [0], [1]]), jnp.array([0.7, 0.2, 0.9]))
    np.testing.assert_allclose(got, np.mean(np.square([0.3, -0.2, 0.1])), rtol=1e-6)


def test_bce_on_logits_is_refused_eagerly_and_nan_under_jit():
    """Logits passed to the probability form were clipped to a loss of 1.2e-7."""
    z, t = jnp.array([[3.0], [-2.0], [5.0]]), jnp.array([1, 0, 1])
    with pytest.raises(
        ValueError,
        match=r"probabilities p must be in \[0, 1\]; got values "
        r"from -2 to 5 \(for logits use binary_cross_entropy_with_logits\)",
    ):
        L.binary_cross_entropy(z, t)
    assert np.isnan(jax.jit(L.binary_cross_entropy)(z, t))
    p = jnp.array([[0.25], [0.5], [1.0]])
    np.testing.assert_allclose(
        jax.jit(L.binary_cross_entropy)(p, t), L.binary_cross_entropy(p, t), rtol=1e-6
    )


def test_bce_with_logits_at_infinite_logits_is_its_limit():
    z = jnp.array([jnp.inf, jnp.inf, -jnp.inf, -jnp.inf, jnp.inf])
    t = jnp.array([1.0, 0.0, 0.0, 1.0, 0.5])
    got = np.asarray(L.binary_cross_entropy_with_logits(z, t, "none"))
    np.testing.assert_array_equal(got, [0.0, np.inf, 0.0, np.inf, np.inf])


def test_softmax_labels_are_checked_before_they_can_wrap():
    """Without x64, jnp.asarray turned the label 2**32 into 0, a valid class."""
    with pytest.raises(ValueError, match="labels from 0 to 4294967296"):
        L.softmax_cross_entropy(jnp.zeros((2, 3)), np.array([2**32, 0]))


def test_integer_targets_of_the_logits_shape_must_be_one_hot():
    """Labels [2, 0, 1] for one example of 3 logits were read as one-hot weights."""
    with pytest.raises(ValueError, match="one-hot and must be 0 or 1; got values from 0 to 2"):
        L.softmax_cross_entropy(jnp.zeros(3), jnp.array([2, 0, 1]))
    one_hot = jnp.array([[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(L.softmax_cross_entropy(jnp.zeros((2, 3)), one_hot), np.log(3))


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("shift", [1, -1])
def test_fit_refuses_binary_targets_outside_0_1(loss, shift):
    """Labels {1, 2} or {-1, 1} trained to a negative cross-entropy (-3.4, -6.5)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    y = y + 1 if shift == 1 else 2 * y - 1
    model = nnjax.serial(nnjax.Dense(1), nnjax.Activation("sigmoid"))
    if loss.endswith("logits"):
        model = nnjax.Dense(1)
    _, p = model.init(jax.random.key(0), (-1, 3))
    with pytest.raises(ValueError, match=rf"fit: y: targets of loss '{loss}' must be in \[0, 1\]"):
        nnjax.fit(model, p, X, y, loss=loss, epochs=1)


def test_an_out_of_range_label_in_a_traced_step_shows_in_the_loss_only():
    """What the README and make_train_step's docstring say (they once said the params turn
    NaN too): the loss is NaN, the bad row gets no gradient, the params stay finite."""
    model = nnjax.mlp([4, 3])
    _, params = model.init(jax.random.key(0), (-1, 2))
    opt = nnjax.get_optimizer("sgd", 0.1)
    step = nnjax.make_train_step(model, "softmax_cross_entropy", opt)
    x = jnp.ones((4, 2))
    new, _, loss = step(params, opt.init(params), (x, jnp.array([0, 1, 2, 7])))
    assert np.isnan(float(loss))
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(new))


def test_softmax_cross_entropy_with_masked_classes_is_the_limit_in_both_target_forms():
    # a logit of -inf masks a class: one-hot targets (and the twin, for labels too) gave
    # 0 * -inf = NaN there, while JAX's labels gave the finite loss
    from nnjax.reference import losses as R

    z = np.array([[0.0, -np.inf, 1.0], [2.0, 0.0, -np.inf], [0.5, -np.inf, -np.inf]])
    labels = np.array([0, 1, 0])
    onehot, soft = np.eye(3)[labels], np.array([[0.2, 0, 0.8], [0.5, 0.5, 0], [1, 0, 0]])
    finite = z.copy()
    finite[np.isinf(z)] = -1e300  # the masked classes' probabilities underflow to 0 exactly
    with jax.enable_x64(True):
        for t in (labels, onehot, soft):
            y = L.softmax_cross_entropy(jnp.asarray(z), t, "none")
            np.testing.assert_allclose(y, L.softmax_cross_entropy(finite, t, "none"), rtol=1e-14)
            np.testing.assert_allclose(y, R.softmax_cross_entropy(z, t, "none"), rtol=1e-14)
            g = jax.grad(L.softmax_cross_entropy)(jnp.asarray(z), t)
            np.testing.assert_allclose(g, R.softmax_cross_entropy_grad(z, t), rtol=1e-14)
            assert np.isfinite(g).all()
        wrong = L.softmax_cross_entropy(jnp.asarray(z), np.array([1, 1, 0]), "none")
        assert np.isposinf(wrong[0]) and np.isfinite(wrong[1:]).all()  # target on a masked class


@pytest.mark.parametrize(
    "name", ["mse", "binary_cross_entropy", "binary_cross_entropy_with_logits"]
)
def test_a_target_shape_that_does_not_fit_names_the_loss(name):
    with pytest.raises(ValueError) as err:
        L.LOSSES[name](jnp.full((3, 2), 0.5), jnp.ones((3,)))
    assert str(err.value) == (
        f"{name}: targets of shape (3,) do not fit predictions (3, 2)"
    )  # the message did not name the loss


def test_softmax_cross_entropy_refuses_concrete_negative_targets():
    # a target of -0.3 gave a loss that falls without bound as its logit grows
    z = np.zeros((2, 3), np.float32)
    bad = np.array([[-0.3, 1.3, 0.0], [1.0, 0.0, 0.0]], np.float32)
    with pytest.raises(ValueError, match=r"must be >= 0 .*got values from -0.3 to 1.3"):
        L.softmax_cross_entropy(z, bad)
    soft = np.array([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]], np.float32)
    want = -np.mean(np.sum(soft * np.log(np.full((2, 3), 1 / 3)), axis=1))
    np.testing.assert_allclose(L.softmax_cross_entropy(z, soft), want, rtol=1e-6)
    weighted = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], np.float32)  # above 1: a weight
    want = -np.mean(np.sum(weighted * np.log(np.full((2, 3), 1 / 3)), axis=1))
    np.testing.assert_allclose(L.softmax_cross_entropy(z, weighted), want, rtol=1e-6)
    # traced targets are not checked (the formula is linear in t)
    jax.jit(L.softmax_cross_entropy)(z, bad)


def test_fit_refuses_negative_targets_of_the_softmax_cross_entropy():
    X = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    Y = np.tile(np.array([[-0.5, 1.5]], np.float32), (8, 1))  # fit trained on these
    model = nnjax.mlp([3, 2])
    _, params = model.init(jax.random.key(0), (-1, 3))
    with pytest.raises(ValueError, match=r"^fit: y: targets of .* must be >= 0 .* -0.5 to 1.5"):
        nnjax.fit(model, params, X, Y, optimizer="sgd", learning_rate=0.1, epochs=1)
