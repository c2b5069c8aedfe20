"""Models: mlp and logistic_regression structure and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax


def test_mlp_structure():
    net = nnjax.mlp([32, 16, 10], activation="tanh", output_activation="softmax")
    out_shape, params = net.init(jax.random.key(0), (-1, 64))
    assert out_shape == (-1, 10)
    assert [p["W"].shape for p in params if p] == [(64, 32), (32, 16), (16, 10)]
    y = net.apply(params, jnp.ones((3, 64)))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)


def test_logistic_regression_is_x_theta_plus_b():
    model = nnjax.logistic_regression(2)
    _, p = model.init(jax.random.key(0), (-1, 2))
    assert p["W"].shape == (2, 1) and not p["W"].any() and p["b"].shape == (1,)
    p = {"W": jnp.array([[1.0], [2.0]]), "b": jnp.array([0.5])}
    np.testing.assert_allclose(model.apply(p, jnp.array([[1.0, 1.0]])), [[3.5]])


def test_model_errors():
    with pytest.raises(ValueError, match="sizes must be a non-empty list"):
        nnjax.mlp([])
    with pytest.raises(ValueError, match="unknown activation 'sigmod'"):
        nnjax.mlp([3], activation="sigmod")
    with pytest.raises(ValueError, match="built for 3 features"):
        nnjax.logistic_regression(3).init(jax.random.key(0), (-1, 2))


def test_paper_models_have_the_papers_parameter_counts_and_shapes():
    # ConvBase: 1*25*5+25 + 2*(25*25*3+25) + 125*10+10 = 5210; GRUBase: 2*(3*6*(1+6) + 2*18)
    # + 480*10+10 = 5134; MLPBase (hidden 100): 40*100+100 + 100*100+100 + 100*10+10 = 15210
    count = lambda p: sum(leaf.size for leaf in jax.tree.leaves(p))
    for model, n_in, n_params in (
        (nnjax.models.cnn(), 40, 5210),
        (nnjax.models.gru(), 40, 5134),
        (nnjax.models.resmlp(), 40, 15210),
    ):
        out_shape, params = model.init(jax.random.key(0), (-1, n_in))
        assert out_shape == (-1, 10) and count(params) == n_params, model.name
    _, p = nnjax.models.cnn(input_shape=(8, 8, 1)).init(jax.random.key(0), (-1, 64))
    assert p[-1]["W"].shape == (25, 10)  # 8x8 -> 3x3 -> 2x2 -> 1x1, 25 channels


def test_resmlp_is_the_residual_formula():
    model = nnjax.models.resmlp(n_classes=3, hidden=5)
    _, p = model.init(jax.random.key(1), (-1, 4))
    x = jax.random.normal(jax.random.key(2), (6, 4))
    relu = jax.nn.relu
    h = relu(x @ p[0]["W"] + p[0]["b"])
    h = h + relu(h @ p[2][0]["W"] + p[2][0]["b"])
    np.testing.assert_allclose(model.apply(p, x), h @ p[3]["W"] + p[3]["b"], rtol=1e-5)


def _torch_conv_base(torch):
    """The MNIST-1D repository's ConvBase (notebooks/models.py), rebuilt in float64."""
    nn = torch.nn
    convs = [
        nn.Conv1d(1, 25, 5, stride=2, padding=1, dtype=torch.float64),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, dtype=torch.float64),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, dtype=torch.float64),
    ]
    linear = nn.Linear(125, 10, dtype=torch.float64)

    def forward(x):
        h = x.view(-1, 1, x.shape[-1])
        for conv in convs:
            h = conv(h).relu()
        return linear(h.view(h.shape[0], -1))

    return convs, linear, forward


def test_cnn_equals_the_papers_torch_conv_base_with_copied_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    convs, linear, forward = _torch_conv_base(torch)
    t = lambda w: w.detach().numpy()
    params = [{}]
    for conv in convs:  # torch (F, C, k) -> (k, C, F)
        params += [{"W": t(conv.weight).transpose(2, 1, 0), "b": t(conv.bias)}, {}]
    # torch flattens (C=25, L=5) channel-major, nnjax (L=5, C=25) position-major
    W = t(linear.weight).T.reshape(25, 5, 10).transpose(1, 0, 2).reshape(125, 10)
    params += [{}, {"W": W, "b": t(linear.bias)}]
    x = np.random.default_rng(0).normal(size=(7, 40))
    with jax.enable_x64(True):
        y = nnjax.models.cnn().apply(params, x)
    np.testing.assert_allclose(y, t(forward(torch.from_numpy(x))), rtol=1e-11, atol=1e-13)


def test_gru_equals_the_papers_torch_gru_base_with_copied_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    gru = torch.nn.GRU(1, 6, batch_first=True, bidirectional=True, dtype=torch.float64)
    linear = torch.nn.Linear(480, 10, dtype=torch.float64)
    t = lambda name: getattr(gru, name).detach().numpy()
    direction = lambda s: {
        "W_i": t("weight_ih_l0" + s).T,
        "W_h": t("weight_hh_l0" + s).T,
        "b_i": t("bias_ih_l0" + s),
        "b_h": t("bias_hh_l0" + s),
    }
    params = [
        {},
        {"forward": direction(""), "backward": direction("_reverse")},
        {},
        {"W": linear.weight.detach().numpy().T, "b": linear.bias.detach().numpy()},
    ]
    x = np.random.default_rng(0).normal(size=(5, 40))
    out, _ = gru(torch.from_numpy(x).view(5, 40, 1), torch.zeros(2, 5, 6, dtype=torch.float64))
    want = linear(out.reshape(5, -1)).detach().numpy()
    with jax.enable_x64(True):
        y = nnjax.models.gru().apply(params, x)
    np.testing.assert_allclose(y, want, rtol=1e-11, atol=1e-13)


def test_model_specs_rebuild_the_same_model():
    from nnjax.layers import from_spec
    from nnjax.models import MODELS, layer_spec

    for model in (
        nnjax.models.cnn(n_classes=4, channels=3),
        nnjax.models.gru(hidden=2),
        nnjax.models.resmlp(hidden=7),
        nnjax.mlp([5, 2], "tanh"),
        nnjax.logistic_regression(3),
    ):
        assert model.spec[0] in MODELS
        assert from_spec(model.spec).spec == model.spec
        assert layer_spec(model.spec)[0] in ("serial", "Dense")
        assert (
            from_spec(layer_spec(model.spec)).name == model.name
            or model.spec[0] == "logistic_regression"
        )


def test_paper_model_errors():
    with pytest.raises(ValueError, match="cnn: input_shape must be"):
        nnjax.models.cnn(input_shape=(40,))
    with pytest.raises(ValueError, match="gru: hidden must be a positive int, got 0"):
        nnjax.models.gru(hidden=0)
    with pytest.raises(ValueError, match=r"Reshape\(\(40, 1\)\): input shape \(3, 64\)"):
        nnjax.models.cnn().init(jax.random.key(0), (3, 64))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nnjax.mlp(32), "mlp: sizes must be a non-empty list of positive ints, got 32"),
        (
            lambda: nnjax.mlp([True, 2]),
            "mlp: sizes must be a non-empty list of positive ints, got [True, 2]",
        ),
        (
            lambda: nnjax.mlp("32"),
            "mlp: sizes must be a non-empty list of positive ints, got '32'",
        ),
        (
            lambda: nnjax.logistic_regression(True),
            "logistic_regression: n_features must be a positive int, got True",
        ),
        (
            lambda: nnjax.mlp([3, 2], dropout=True),
            "mlp: dropout must be a rate in [0, 1), got True",
        ),
        (
            lambda: nnjax.models.cnn(kernel_sizes=5),
            "cnn: kernel_sizes must be a non-empty list of positive ints, got 5",
        ),
        # each option is named alone, not "n_classes, channels, strides must be ..."
        (lambda: nnjax.models.cnn(channels=0), "cnn: channels must be a positive int, got 0"),
        (lambda: nnjax.models.cnn(strides=-2), "cnn: strides must be a positive int, got -2"),
        (lambda: nnjax.models.gru(3.0), "gru: n_classes must be a positive int, got 3.0"),
        (lambda: nnjax.models.resmlp(hidden=0), "resmlp: hidden must be a positive int, got 0"),
        (lambda: nnjax.models.cnn(padding=True), "cnn: padding must be an int >= 0, got True"),
        # used to be an IndexError (and for floats, an error naming Dense(1))
        (
            lambda: nnjax.logistic_regression(3).init(jax.random.key(0), ()),
            "logistic_regression: needs an input of at least 1 dims, got ()",
        ),
        (
            lambda: nnjax.logistic_regression(3).init(jax.random.key(0), (-1, 3.0)),
            "logistic_regression: input_shape must be ints (-1 for the batch), got (-1, 3.0)",
        ),
    ],
)
def test_model_argument_errors_are_named(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_models_take_numpy_scalars():
    net = nnjax.mlp(np.array([4, 3]), dropout=np.float32(0.5))
    assert net.spec[1]["sizes"] == [4, 3] and net.spec[1]["dropout"] == 0.5
    _, params = net.init(jax.random.key(0), (-1, 5))
    x = jnp.ones((2, 5))
    h = jax.nn.relu(x @ params[0]["W"] + params[0]["b"])
    keep = jax.random.bernoulli(jax.random.split(jax.random.key(1), 4)[2], 0.5, h.shape)
    want = jnp.where(keep, 2 * h, 0) @ params[3]["W"] + params[3]["b"]
    np.testing.assert_allclose(net.apply(params, x, key=jax.random.key(1)), want, rtol=1e-6)
    assert nnjax.models.resmlp(dropout=np.float64(0.25)).spec[1]["dropout"] == 0.25
    assert nnjax.models.cnn(n_classes=np.int64(4)).spec[1]["n_classes"] == 4
    # a NumPy padding was refused with "padding must be an int >= 0, got np.int64(1)"
    model = nnjax.models.cnn(padding=np.int64(0), input_shape=np.array([20, 1]))
    assert model.spec[1]["padding"] == 0 and type(model.spec[1]["padding"]) is int
    _, params = model.init(jax.random.key(0), (-1, 20))
    assert params[-1]["W"].shape == (1 * 25, 10)  # lengths 20 -> 8 -> 3 -> 1 unpadded


def test_cnn_under_x64_takes_a_float32_or_int_batch():
    # float64 params (x64) with a float32 batch used to raise lax's dtype TypeError
    x = np.random.default_rng(0).normal(size=(3, 40))
    with jax.enable_x64(True):
        model = nnjax.models.cnn()
        _, params = model.init(jax.random.key(0), (-1, 40))
        want = model.apply(params, x)
        y = model.apply(params, x.astype(np.float32))
        y_int = model.apply(params, np.round(x).astype(np.int32))
        want_int = model.apply(params, np.round(x))
    assert want.dtype == y.dtype == y_int.dtype == jnp.float64
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y_int, want_int, rtol=1e-12)
