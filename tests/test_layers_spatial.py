"""Convolution and pooling: lax's own padding rules, the max-pool tie rule, the average
divisor at the borders, and errors that name the layer, its position and the shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from nnjax.layers import (
    AvgPool,
    Conv,
    ConvTranspose,
    Dense,
    Flatten,
    GlobalAvgPool,
    MaxPool,
    serial,
)
from nnjax.reference.pool import avg_pool, max_pool

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "n, k, s, d", [(11, 3, 2, 1), (10, 4, 3, 1), (7, 3, 1, 2), (8, 2, 2, 3), (5, 5, 1, 1)]
)
def test_conv_same_pads_as_lax_does(n, k, s, d):
    with jax.enable_x64(True):
        layer = Conv(3, k, strides=s, padding="SAME", dilation=d)
        x = jax.random.normal(KEY, (2, n, 2))
        out_shape, p = layer.init(KEY, x.shape)
        y = layer.apply(p, x)
        want = lax.conv_general_dilated(
            x, p["W"], (s,), "SAME", rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC")
        )
        np.testing.assert_allclose(y, want + p["b"], rtol=1e-12)
        assert y.shape == out_shape == (2, -(-n // s), 3)


@pytest.mark.parametrize(
    "padding, strides, dilation", [("SAME", 2, 1), ("VALID", 3, 1), ("SAME", 1, 2), ("VALID", 2, 2)]
)
def test_conv_transpose_is_lax_conv_transpose(padding, strides, dilation):
    with jax.enable_x64(True):
        layer = ConvTranspose(3, (3, 2), strides=strides, padding=padding, dilation=dilation)
        x = jax.random.normal(KEY, (2, 4, 5, 2))
        out_shape, p = layer.init(KEY, x.shape)
        want = lax.conv_transpose(
            x,
            p["W"],
            (strides,) * 2,
            padding,
            rhs_dilation=(dilation,) * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        y = layer.apply(p, x)
        np.testing.assert_allclose(y, want + p["b"], rtol=1e-12)
        assert y.shape == out_shape


def test_conv_explicit_int_padding_and_groups_match_a_direct_sum():
    # y[b, o, f] = b_f + sum_{t, c} x_pad[b, 2 o + 2 t, g*2 + c] W[t, c, f], groups of 2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 4))
    with jax.enable_x64(True):
        layer = Conv(6, 3, strides=2, padding=1, dilation=2, groups=2)
        _, p = layer.init(KEY, x.shape)
        y = np.asarray(layer.apply(p, x))
    W, b = np.asarray(p["W"]), np.asarray(p["b"])
    xp = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    out = (9 + 2 - 5) // 2 + 1
    want = np.zeros((2, out, 6))
    for o in range(out):
        for f in range(6):
            g = f // 3
            for t in range(3):
                want[:, o, f] += xp[:, 2 * o + 2 * t, 2 * g : 2 * g + 2] @ W[t, :, f]
    np.testing.assert_allclose(y, want + b, rtol=1e-12)


def test_max_pool_sends_the_gradient_to_the_first_maximum_of_each_window():
    # windows (1, 3) (3, 3) (3, 2): JAX picks index 1, then index 1 again (the first of the
    # tie), then index 2; a split tie would give [0, 1.5, 1.5, 0], the last maximum [0, 1, 2, 0]
    x = jnp.array([[1.0, 3.0, 3.0, 2.0]])[..., None]
    pool = MaxPool(2, strides=1)
    g = jax.grad(lambda x: pool.apply({}, x).sum())(x)
    np.testing.assert_array_equal(g[0, :, 0], [0.0, 2.0, 1.0, 0.0])
    y, cache = max_pool(2, strides=1).forward({}, np.asarray(x))
    dx, _ = max_pool(2, strides=1).backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx, g)
    # 2-D: in a 2x2 window of equal values the top-left one (row-major first) wins
    x2 = jnp.ones((1, 2, 2, 1))
    g2 = jax.grad(lambda x: MaxPool(2).apply({}, x).sum())(x2)
    np.testing.assert_array_equal(g2[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_avg_pool_divides_by_the_real_elements_of_each_window():
    x = jnp.arange(4.0).reshape(1, 4, 1)
    y = AvgPool(3, strides=1, padding="SAME").apply({}, x)
    np.testing.assert_allclose(y[0, :, 0], [0.5, 1.0, 2.0, 2.5])  # (0+1)/2 ... (2+3)/2
    ones = jnp.ones((2, 5, 4, 3))
    np.testing.assert_allclose(AvgPool((3, 2), strides=2, padding="SAME").apply({}, ones), 1.0)
    twin_y, _ = avg_pool(3, strides=1, padding="SAME").forward({}, np.asarray(x))
    np.testing.assert_allclose(twin_y, y)


@pytest.mark.parametrize("x64", [False, True])
@pytest.mark.parametrize(
    "pool, twin",
    [
        (AvgPool(3, strides=2, padding="SAME"), avg_pool(3, strides=2, padding="SAME")),
        (AvgPool(2, strides=1), avg_pool(2, strides=1)),
        (GlobalAvgPool(), None),
    ],
    ids=["avg-same", "avg-valid", "global"],
)
def test_averages_of_int_and_bool_inputs_are_in_the_default_float(pool, twin, x64):
    # bools raised reduce_window's TypeError; int32 under x64 averaged in float32
    x = np.random.default_rng(0).integers(-4, 5, size=(2, 7, 5, 2))
    with jax.enable_x64(x64):
        want = "float64" if x64 else "float32"
        for xi in (x.astype(np.int32), x > 0):
            y = pool.apply({}, jnp.asarray(xi))
            assert y.dtype.name == want
            expected = twin.forward({}, xi.astype(np.float64))[0] if twin else xi.mean((1, 2))
            np.testing.assert_allclose(y, expected, rtol=1e-6)
        assert MaxPool(2).apply({}, jnp.asarray(x, jnp.int32)).dtype == jnp.int32


def test_global_avg_pool_is_the_spatial_mean():
    x = jax.random.normal(KEY, (2, 3, 4, 5))
    np.testing.assert_allclose(GlobalAvgPool().apply({}, x), x.mean(axis=(1, 2)), rtol=1e-6)


def test_channel_mismatch_at_apply_names_layer_position_and_shapes():
    net = serial(Conv(4, 3), Conv(2, 3), Flatten(), Dense(2))
    _, params = net.init(KEY, (2, 10, 3))
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(Conv\(4, 3\)\): Conv\(4, 3\): expected input of shape "
        r"\(B, W, 3\), got \(2, 10, 5\)",
    ):
        net.apply(params, jnp.ones((2, 10, 5)))
    with pytest.raises(
        ValueError, match=r"layer 0 \(Conv\(4, 3\)\): .*\(B, W, 3\), got \(2, 4, 4, 3\)"
    ):
        net.apply(params, jnp.ones((2, 4, 4, 3)))


def test_conv_and_pool_errors_at_init_name_layer_position_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"layer 1 \(Conv\(2, 5\)\): Conv\(2, 5\): spatial size 3 padded by "
        r"\(0, 0\) is smaller than the \(dilated\) window 5",
    ):
        serial(Conv(2, 3), Conv(2, 5)).init(KEY, (2, 5, 1))
    with pytest.raises(
        ValueError,
        match=r"Conv\(2, \(3, 3\)\): built for 2 spatial axes, "
        r"expected \(B, H, W, C\), got \(2, 8, 1\)",
    ):
        Conv(2, (3, 3)).init(KEY, (2, 8, 1))
    with pytest.raises(ValueError, match="input channels 3 .* not divisible by groups 2"):
        Conv(4, 3, groups=2).init(KEY, (2, 8, 3))
    with pytest.raises(ValueError, match="features 3 is not divisible by groups 2"):
        Conv(3, 3, groups=2)
    with pytest.raises(ValueError, match=r"at least 3 dims, got \(2, 8\)"):
        Conv(3, 3).init(KEY, (2, 8))
    with pytest.raises(ValueError, match=r"expected input \(B, W, C\) or \(B, H, W, C\)"):
        Conv(3, 3).init(KEY, (2, 4, 4, 4, 1))
    with pytest.raises(ValueError, match="padding must be 'SAME', 'VALID'"):
        Conv(3, 3, padding="FULL")
    with pytest.raises(ValueError, match="strides must be >= 1"):
        MaxPool(2, strides=0)
    with pytest.raises(ValueError, match=r"padding \[\(2, 2\)\] must be smaller than the window"):
        MaxPool(2, padding=2).init(KEY, (2, 8, 1))
    with pytest.raises(ValueError, match="disagree on the number of spatial axes"):
        Conv(3, (3, 3), strides=(1, 1, 1))


@pytest.mark.parametrize("kind", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("x_dtype", ["float32", "int32"])
def test_conv_promotes_input_and_params_as_dense_does(kind, x_dtype):
    # under x64 the params are float64: a float32 or int32 batch computes in float64
    layer = {"Conv": Conv, "ConvTranspose": ConvTranspose}[kind](3, 3, strides=2, padding="SAME")
    x = np.arange(2 * 7 * 2).reshape(2, 7, 2) % 5 - 2
    with jax.enable_x64(True):
        _, p = layer.init(KEY, x.shape)
        y = layer.apply(p, jnp.asarray(x, x_dtype))
        conv = lax.conv_transpose if kind == "ConvTranspose" else lax.conv_general_dilated
        want = (
            conv(
                jnp.asarray(x, jnp.float64),
                p["W"],
                (2,),
                "SAME",
                dimension_numbers=("NWC", "WIO", "NWC"),
            )
            + p["b"]
        )
    assert p["W"].dtype == y.dtype == jnp.float64
    np.testing.assert_allclose(y, want, rtol=1e-12)
    # float32 params, int32 batch: float32, as Dense's x @ W
    _, p32 = layer.init(KEY, x.shape)
    y32 = layer.apply(p32, jnp.asarray(x, jnp.int32))
    assert y32.dtype == jnp.float32
    np.testing.assert_allclose(y32, layer.apply(p32, jnp.asarray(x, jnp.float32)), rtol=1e-6)


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (
            Conv(4, 3),
            (-1, 7, 0),
            r"Conv\(4, 3\): input channels must be >= 1, got shape \(-1, 7, 0\)",
        ),
        (
            ConvTranspose(4, (3,)),
            (-1, 7, 0),
            r"ConvTranspose\(4, \(3,\)\): input channels must be >= 1, got shape \(-1, 7, 0\)",
        ),
        (
            ConvTranspose(4, 2, strides=2),
            (-1, 0, 2),
            r"ConvTranspose\(4, 2\): spatial sizes must be >= 1, got input shape \(-1, 0, 2\)",
        ),
        (
            ConvTranspose(4, 2, strides=2, padding="SAME"),
            (-1, 3, 0, 2),
            r"ConvTranspose\(4, 2\): spatial sizes must be >= 1, got input shape \(-1, 3, 0, 2\)",
        ),
        (
            Conv(4, 1, padding="SAME"),
            (-1, 0, 2),
            r"Conv\(4, 1\): spatial sizes must be >= 1, got input shape \(-1, 0, 2\)",
        ),
        (
            MaxPool(1, padding="SAME"),
            (-1, 0, 2),
            r"MaxPool\(1\): spatial sizes must be >= 1, got input shape \(-1, 0, 2\)",
        ),
        (
            GlobalAvgPool(),
            (-1, 4, 0, 2),
            r"GlobalAvgPool: spatial sizes must be >= 1, got input shape \(-1, 4, 0, 2\)",
        ),
    ],
)
def test_empty_channels_and_spatial_sizes_are_named_errors_at_init(layer, shape, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        layer.init(KEY, shape)


def test_empty_spatial_sizes_are_named_errors_at_apply():
    # init on (-1, 0, 2) used to say (-1, 1, 4) while apply made (2, 2, 4)
    layer = ConvTranspose(4, 2, strides=2)
    _, p = layer.init(KEY, (-1, 3, 2))
    with pytest.raises(
        ValueError, match=r"spatial sizes must be >= 1, got input shape \(2, 0, 2\)"
    ):
        layer.apply(p, jnp.ones((2, 0, 2)))
    with pytest.raises(
        ValueError,
        match=r"^GlobalAvgPool: spatial sizes must be >= 1, got input shape \(2, 0, 3\)$",
    ):
        GlobalAvgPool().apply({}, jnp.ones((2, 0, 3)))  # used to be nan
    with pytest.raises(ValueError, match=r"AvgPool\(2\): spatial sizes must be >= 1"):
        AvgPool(2, padding="SAME").apply({}, jnp.ones((2, 0, 3)))


def test_conv_dtype_and_bias_initializer_are_checked_at_construction():
    with pytest.raises(
        ValueError, match=r"^Conv\(4, \(3,\)\): dtype must be float16, bfloat16, float32 or float64"
    ):
        Conv(4, (3,), dtype="int32")
    with pytest.raises(
        ValueError, match=r"ConvTranspose\(2, 3\): b_init 'he_normal' needs a weight"
    ):
        ConvTranspose(2, 3, b_init="he_normal")
