"""Audit of ANN -> SNN conversion (convert), surrogate spikes (surrogate) and spiking layers
(spiking), each held against a NumPy oracle (float64 where the claim is about numbers)."""

import fractions

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.brain import convert, neurons, spiking, surrogate
from nnjax.brain.surrogate import spike

# ------------------------------------------------------------------ convert: the IF identity

T_GRID = (1, 2, 3, 5, 7, 10, 16, 25, 49, 64, 100)


def _z_grid() -> np.ndarray:
    """Every k / T of T_GRID, their midpoints, and a sweep over [-1, 2]."""
    grid = {k / t for t in T_GRID for k in range(t + 1)}
    grid |= {(k + 0.5) / t for t in T_GRID for k in range(t)}
    return np.array(sorted(grid | set(np.linspace(-1.0, 2.0, 121).tolist())))


def _identity_net(n: int, dtype) -> convert.Converted:
    """One hidden IF layer driven by z itself (W = I, b = 0), so its rate is the IF rate of z."""
    eye, zero = jnp.eye(n, dtype=dtype), jnp.zeros(n, dtype)
    return convert.Converted([{"W": eye, "b": zero}, {"W": eye, "b": zero}], jnp.ones(3, dtype))


def _np_if_counts(z: np.ndarray, n_steps: int, dtype) -> np.ndarray:
    """Spike counts of IF neurons (theta = 1, subtractive reset, v_0 = 0) in ``dtype``."""
    z = np.asarray(z, dtype)
    v, n, one = np.zeros_like(z), np.zeros(z.shape, np.int64), dtype(1)
    for _ in range(n_steps):
        u = v + z
        s = u >= one
        v = np.where(s, u - one, u).astype(dtype)
        n += s
    return n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_if_identity_floor_tz_on_an_exhaustive_grid(dtype):
    """count = floor(T z) for z in [0, 1] (z exact as stored), 0 below, T above; near the grid
    z = k/T (|T z - k| within the rounding of the running sum) k - 1 or k; and the counts of
    simulate equal a NumPy loop in the same dtype exactly."""
    z = _z_grid()
    with jax.enable_x64(dtype == np.float64):
        net = _identity_net(len(z), dtype)
        x = jnp.asarray(z[None, :], dtype)
        zd = np.asarray(x[0]).astype(np.float64)  # z as the network stores it
        for t in T_GRID:
            count = np.rint(np.asarray(convert.simulate(net, x, t).rates[0][0]) * t)
            np.testing.assert_array_equal(count, _np_if_counts(zd, t, dtype), err_msg=f"T={t}")
            exact = np.array([fractions.Fraction(v) * t for v in zd])
            floor = np.array([int(e // 1) for e in exact])
            near = (
                np.array([abs(e - round(e)) for e in exact], float) <= 4 * t * np.finfo(dtype).eps
            )
            inside = (zd >= 0) & (zd <= 1)
            ok = np.where(inside & ~near, count == floor, True)
            k = np.rint(zd * t)
            ok &= np.where(inside & near, (count == k) | (count == k - 1), True)
            ok &= np.where(zd < 0, count == 0, True) & np.where(zd > 1, count == t, True)
            assert ok.all(), (t, zd[~ok], count[~ok])


def test_if_identity_docstring_example_is_float64():
    """The module docstring's z = 0.1, T = 10 example: 0 spikes in float64 (0.1 summed ten
    times is 0.999...), 1 in float32 (1.0000001)."""
    with jax.enable_x64(True):
        r64 = convert.simulate(_identity_net(1, jnp.float64), jnp.array([[0.1]]), 10).rates[0]
    r32 = convert.simulate(_identity_net(1, jnp.float32), jnp.array([[0.1]], jnp.float32), 10)
    assert float(r64[0, 0]) == 0.0 and float(r32.rates[0][0, 0]) == pytest.approx(0.1)
    assert "float64" in convert.__doc__.split("z = 0.1, T = 10")[1][:40]


@pytest.fixture(scope="module")
def small_mlp():
    ds = nnjax.data.load("digits")
    model = nnjax.mlp([32, 16, 10])
    _, params = model.init(jax.random.key(0), (-1, 64))
    res = nnjax.fit(model, params, ds.X_train, ds.y_train, epochs=4, batch_size=64)
    return ds.X_train[:200], model, res.params


def test_converted_rates_approach_the_ann_as_t_grows(small_mlp):
    """With max normalisation on X itself every normalised activation is in [0, 1]; layer 1's
    rate is within 1/T of it (docstring); every layer's error shrinks as 1/T (T err bounded)
    and the decoded output approaches the ANN logits."""
    X, model, params = small_mlp
    conv = convert.normalize(params, X, percentile=100.0, model=model)
    logits, hidden = convert.ann_forward(convert.dense_params(params), X, return_hidden=True)
    targets = [a / lam for a, lam in zip(hidden, conv.scales[1:])]
    errs = {}
    for t in (100, 400, 1600, 6400):
        res = convert.simulate(conv, X, t)
        errs[t] = [float(jnp.abs(r - a).max()) for r, a in zip(res.rates, targets)]
        assert errs[t][0] <= 1.0 / t + 1e-6, (t, errs[t])
        out_err = float(jnp.abs(res.output - logits).max() / jnp.abs(logits).max())
        assert out_err <= 8.0 / t, (t, out_err)  # measured 3.5 / T at most
    for layer in range(len(targets)):  # measured T err: 1.0 (layer 1), 2.6 (layer 2)
        assert max(t * errs[t][layer] for t in errs) <= 6.0, errs
        assert errs[6400][layer] < errs[100][layer] / 8, errs


def _np_normalize(layers, X, p):
    """lambda_l = np.percentile of layer l's activations (logits last), <= 0 -> 1."""
    a, lams = X, [1.0]
    for i, (W, b) in enumerate(layers):
        z = a @ W + b
        a = np.maximum(z, 0.0) if i < len(layers) - 1 else z
        lam = np.percentile(a.ravel(), p)
        lams.append(1.0 if lam <= 0 else lam)
    new = [(W * lams[i] / lams[i + 1], b / lams[i + 1]) for i, (W, b) in enumerate(layers)]
    return new, np.array(lams)


@pytest.mark.parametrize("percentile", [50.0, 99.9, 100.0])
def test_normalize_against_numpy_percentiles(percentile):
    rng = np.random.default_rng(0)
    sizes = [6, 9, 7, 5, 3]
    layers = [(rng.normal(size=(m, n)), rng.normal(size=n)) for m, n in zip(sizes, sizes[1:])]
    layers[1] = (layers[1][0], np.full(7, -1e3))  # a silent layer: lambda = 1
    X = rng.normal(size=(40, 6))
    want, lams = _np_normalize(layers, X, percentile)
    with jax.enable_x64(True):
        params = [{"W": jnp.asarray(W), "b": jnp.asarray(b)} for W, b in layers]
        got = convert.normalize(params, jnp.asarray(X), percentile=percentile)
        np.testing.assert_allclose(got.scales, lams, rtol=1e-12, atol=0)
        assert lams[2] == 1.0  # the silent layer
        for g, (W, b) in zip(got.layers, want):
            np.testing.assert_allclose(g["W"], W, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(g["b"], b, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------- convert: only ReLU networks convert

_NON_RELU = [
    ("tanh", lambda: nnjax.mlp([8, 3], activation="tanh")),
    ("sigmoid", lambda: nnjax.mlp([8, 3], activation="sigmoid")),
    ("gelu", lambda: nnjax.mlp([8, 8, 3], activation="gelu")),
    ("leaky_relu", lambda: nnjax.mlp([8, 3], activation="leaky_relu")),
    ("tanh", lambda: nnjax.mlp([8, 3], activation=jax.nn.tanh)),  # callable: no spec
    ("gelu", lambda: nnjax.serial(nnjax.Dense(8), nnjax.Activation("gelu"), nnjax.Dense(3))),
    ("<lambda>", lambda: nnjax.mlp([8, 3], activation=lambda z: jnp.maximum(z, 0))),
]


@pytest.mark.parametrize("act, build", _NON_RELU, ids=[f"{a}-{i}" for i, (a, _) in
                                                          enumerate(_NON_RELU)])  # fmt: skip
def test_normalize_refuses_a_non_relu_model_naming_its_activation(act, build):
    """Params cannot show the activation (every activation layer's params are {}): a tanh
    MLP converted silently as if ReLU. Given the model, normalize refuses it in one line."""
    model = build()
    _, params = model.init(jax.random.key(0), (-1, 5))
    X = jax.random.normal(jax.random.key(1), (20, 5))
    with pytest.raises(ValueError, match=rf"^normalize: model must be a ReLU MLP.*'{act}'"):
        convert.normalize(params, X, model=model)


@pytest.mark.parametrize("build", [
    lambda: nnjax.mlp([8, 3]),
    lambda: nnjax.mlp([8, 3], activation=jax.nn.relu),
    lambda: nnjax.mlp([8, 4, 3], output_activation="softmax", dropout=0.2),
    lambda: nnjax.serial(nnjax.Dense(8), nnjax.Activation("relu"), nnjax.Dense(3)),
])  # fmt: skip
def test_normalize_accepts_relu_models_unchanged(build):
    model = build()
    _, params = model.init(jax.random.key(0), (-1, 5))
    X = jax.random.normal(jax.random.key(1), (20, 5))
    a, b = convert.normalize(params, X, model=model), convert.normalize(params, X)
    np.testing.assert_array_equal(a.scales, b.scales)
    convert.check_relu_mlp(model)


@pytest.mark.parametrize("model", [nnjax.cnn(), {"W": 1}, "mlp"], ids=["cnn", "dict", "str"])
def test_check_relu_mlp_refuses_what_is_not_an_mlp(model):
    with pytest.raises(ValueError, match="^check_relu_mlp: model must be"):
        convert.check_relu_mlp(model)


# ----------------------------------------------------------------------------- surrogate

X_GRID = np.array([0.0, 1e-300, 1e-8, 0.013, 0.1, 0.37, 0.5, 1.0, 1.3, 3.1, 10.0, 50.0,
                   1e3, 1e30, 1e300])  # fmt: skip
X_GRID = np.concatenate([-X_GRID[::-1], X_GRID])
SLOPES = (1e-3, 0.5, 1.0, 4.0, 25.0, 1e3)


def _g(name, x, k):
    """The docstring's g(x), in NumPy float64, in forms that keep relative precision."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        if name == "fast_sigmoid":
            return 1.0 / (1.0 + k * np.abs(x)) ** 2
        if name == "arctan":
            return (k / 2.0) / (1.0 + (np.pi * k * x / 2.0) ** 2)
        if name == "sigmoid":
            e = np.exp(-k * np.abs(x))  # sigma(kx)(1 - sigma(kx)) = e / (1 + e)^2
            return k * e / (1.0 + e) ** 2
        if name == "triangular":
            return k * np.maximum(0.0, 1.0 - k * np.abs(x))
    return np.ones_like(x)


def _dg(name, x, k):
    """g'(x), the analytic second derivative of the surrogate spike (away from kinks)."""
    x = np.asarray(x, np.float64)
    if name == "fast_sigmoid":
        return -2.0 * k * np.sign(x) / (1.0 + k * np.abs(x)) ** 3
    if name == "arctan":
        a = np.pi * k / 2.0
        return -k * a**2 * x / (1.0 + (a * x) ** 2) ** 2
    if name == "sigmoid":
        e = np.exp(-k * np.abs(x))  # k^2 s (1 - s) (1 - 2 s), s = sigma(kx), kept precise
        return -(k**2) * e / (1.0 + e) ** 2 * np.tanh(k * x / 2.0)
    if name == "triangular":
        return np.where(k * np.abs(x) < 1.0, -(k**2) * np.sign(x), 0.0)
    return np.zeros_like(x)


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
@pytest.mark.parametrize("slope", SLOPES)
def test_surrogate_backward_is_the_docstring_formula_in_float64(name, slope):
    """Relative precision on a grid with 0 and |x| up to 1e300: sigma(kx)(1 - sigma(kx))
    rounded 1 - sigma to 0 for kx > 37, so g(10) = 0 at k = 4 while g(-10) = 1.7e-17."""
    with jax.enable_x64(True):
        x = jnp.asarray(X_GRID)
        g = jax.vmap(jax.grad(lambda v: spike(v, name, slope)))(x)
        table = surrogate.SURROGATES[name](x, slope)
    want = _g(name, X_GRID, slope)
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(table, want, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(g, g[::-1])  # g(x) = g(-x): every surrogate is even


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.int32])
def test_spike_forward_is_exactly_the_heaviside_step(dtype):
    with jax.enable_x64(True):
        x = np.concatenate([X_GRID, [-0.0, np.inf, -np.inf]])
        big = {jnp.int32: 1e9, jnp.float32: 1e30}.get(dtype, np.inf)
        x = jnp.asarray(np.clip(x, -big, big), dtype)
        want = (np.asarray(x) >= 0).astype(np.float64)  # H(0) = H(-0) = 1
        for name in surrogate.SURROGATES:
            s = spike(x, name)
            assert s.dtype == (jnp.float64 if dtype == jnp.int32 else dtype)
            np.testing.assert_array_equal(s, want)
            np.testing.assert_array_equal(jax.jit(lambda v, n=name: spike(v, n))(x), want)
        assert np.isnan(spike(jnp.array([np.nan]))).all()


@pytest.mark.parametrize("slope", [0, 0.0, -1.0, np.inf, -np.inf, np.nan, True, "2", [1.0, 2.0]])
def test_spike_refuses_bad_slopes(slope):
    with pytest.raises(ValueError, match="slope"):
        spike(jnp.ones(3), "sigmoid", slope)


@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
@pytest.mark.parametrize("slope", [0.5, 2.0, 25.0])
def test_grad_of_grad_jit_and_vmap_differentiate_g(name, slope):
    """grad of grad is g'(x) (docstring: 'which differentiates g'); jit(vmap) agrees."""
    x = np.array([-3.1, -1.3, -0.37, -0.013, 0.013, 0.37, 1.3, 3.1])
    x = x[np.abs(np.abs(x) * slope - 1.0) > 1e-6]  # off the triangle's kinks
    with jax.enable_x64(True):
        d2 = jax.vmap(jax.grad(jax.grad(lambda v: spike(v, name, slope))))(jnp.asarray(x))
        jv = jax.jit(jax.vmap(jax.grad(lambda v: spike(v, name, slope))))(jnp.asarray(x))
        np.testing.assert_allclose(d2, _dg(name, x, slope), rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(jv, _g(name, x, slope), rtol=1e-12, atol=1e-300)
        with pytest.raises(TypeError):  # forward mode: refused by JAX (docstring)
            jax.jvp(lambda v: spike(v, name, slope), (jnp.asarray(x),), (jnp.ones(len(x)),))


# ------------------------------------------------------------------------------- spiking


def _shape_cases():
    t, b, f = 1, 1, 3
    enc = (b, f)
    seq = (t, b, f)
    return [
        (spiking.RateEncoder(1), enc), (spiking.RateEncoder(4, gain=2.0), enc),
        (spiking.LatencyEncoder(1), enc), (spiking.LatencyEncoder(5), enc),
        (spiking.LIF(), seq), (spiking.LIF(1.0, reset="zero"), (4, 2, 3)),
        (spiking.SpikeCount(), seq), (spiking.MembraneReadout(0.5, "mean"), seq),
        (spiking.MembraneReadout(0.5, "max"), (3, 2, 2)),
        (spiking.MembraneReadout(1.0, "last"), seq), (spiking.spiking_mlp([4, 2], 1), enc),
        (spiking.spiking_mlp([2], 3, readout="membrane"), enc),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(12))
def test_every_layer_init_shape_equals_apply_shape(case):
    layer, shape = _shape_cases()[case]
    out_shape, params = layer.init(jax.random.key(0), shape)
    x = jax.random.uniform(jax.random.key(1), shape)
    for key in (None, jax.random.key(2)):
        assert layer.apply(params, x, key=key).shape == tuple(out_shape), layer.name


def _np_lif(current, beta, theta, reset):
    """The NumPy loop: u = beta v + I; s = [u >= theta]; v = u - theta s or u (1 - s)."""
    v = np.zeros(current.shape[1:])
    spikes, us, vs = [], [], []
    for i_t in current:
        u = beta * v + i_t
        s = (u >= theta).astype(np.float64)
        v = u - theta * s if reset == "subtract" else u * (1.0 - s)
        spikes.append(s), us.append(u), vs.append(v)
    return np.array(spikes), np.array(us), np.array(vs)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("beta, theta", [(0.8, 0.7), (1.0, 1.0), (0.95, 2.5)])
def test_lif_layer_matches_numpy_loop_in_float64(reset, beta, theta):
    rng = np.random.default_rng(3)
    current = rng.uniform(-0.5, 1.2, size=(40, 3, 5)) * theta
    current[:, 0, 0] = 0.0
    current[-1, 0, 0] = 2.0 * theta  # the only spike of this unit is on the last step
    s_np, _, v_np = _np_lif(current, beta, theta, reset)
    with jax.enable_x64(True):
        s = spiking.LIF(beta, theta, reset=reset).apply({}, jnp.asarray(current))
        s2, v = neurons.lif(jnp.asarray(current), beta=beta, theta=theta, reset=reset)
    np.testing.assert_array_equal(s, s_np)
    np.testing.assert_array_equal(s2, s_np)
    np.testing.assert_allclose(v, v_np, rtol=1e-13, atol=1e-13)
    assert s_np[-1, 0, 0] == 1 and s_np[:-1, 0, 0].sum() == 0 and s_np.sum() > 20


def _np_lif_backward(ds, s, u, beta, theta, reset, detach, g):
    """dL/dI (T, ...) from dL/ds by backpropagation through time with ds_t/du_t = g(u_t - theta):
    du_t = ds_t g_t + beta du_{t+1} dv_t/du_t, dv/du = 1 or 1 - s (detached reset), else
    1 - theta g or (1 - s) - u g."""
    du_next, di = np.zeros(ds.shape[1:]), np.zeros_like(ds)
    for t in reversed(range(len(ds))):
        gt = g(u[t] - theta)
        if detach:
            dv_du = 1.0 if reset == "subtract" else 1.0 - s[t]
        else:
            dv_du = 1.0 - theta * gt if reset == "subtract" else (1.0 - s[t]) - u[t] * gt
        di[t] = ds[t] * gt + beta * du_next * dv_du
        du_next = di[t]
    return di


def _np_bptt(params, x, n_steps, cfg, C):
    """Forward and hand-written backward of serial(RateEncoder(T), [Dense, LIF]*, Dense,
    LIF + SpikeCount | MembraneReadout) for L = sum(out C); returns (out, grads)."""
    beta, theta, reset, detach, name, k, readout = cfg
    g = lambda z: _g(name, z, k)  # noqa: E731
    t = np.arange(n_steps + 1, dtype=np.float64).reshape(-1, 1, 1)
    a = np.diff(np.floor(t * np.clip(x, 0.0, 1.0)), axis=0)  # the deterministic rate code
    dense = [i for i, p in enumerate(params) if p]
    caches = []
    for j, i in enumerate(dense):
        cur = a @ params[i]["W"] + params[i]["b"]
        if j == len(dense) - 1 and readout == "membrane":
            kern = np.tril(beta ** np.subtract.outer(np.arange(n_steps), np.arange(n_steps)))
            caches.append((a, None, None))
            out = np.einsum("ts,sbf->tbf", kern, cur).mean(0)
            break
        s, u, _ = _np_lif(cur, beta, theta, reset)
        caches.append((a, s, u))
        a = s
    else:
        out = a.sum(0)
    grads = [{} for _ in params]
    if readout == "membrane":
        d = np.einsum("ts,bf->sbf", kern, C) / n_steps  # d mean_t v_t / d I_s
    else:
        d = np.broadcast_to(C, a.shape)
    for j in reversed(range(len(dense))):
        a_in, s, u = caches[j]
        if s is not None:
            d = _np_lif_backward(d, s, u, beta, theta, reset, detach, g)
        W = params[dense[j]]["W"]
        grads[dense[j]] = {"W": np.einsum("tbi,tbo->io", a_in, d), "b": d.sum((0, 1))}
        d = d @ W.T
    return out, grads


BPTT = [  # beta, theta, reset, detach_reset, surrogate, slope, readout; T, B
    ((0.9, 1.0, "subtract", True, "fast_sigmoid", 25.0, "count"), 12, 4),
    ((0.8, 0.6, "zero", True, "arctan", 2.0, "count"), 10, 3),
    ((0.9, 1.0, "subtract", False, "sigmoid", 4.0, "count"), 10, 3),
    ((0.7, 0.8, "zero", False, "fast_sigmoid", 5.0, "count"), 10, 3),
    ((0.85, 1.0, "subtract", True, "triangular", 0.5, "membrane"), 9, 2),
    ((0.9, 1.0, "subtract", True, "fast_sigmoid", 25.0, "count"), 1, 1),
    ((0.9, 1.0, "subtract", True, "arctan", 2.0, "membrane"), 1, 1),
]


def _spiking_net(cfg, n_steps, sizes):
    beta, theta, reset, detach, name, k, readout = cfg
    neuron = dict(reset=reset, detach_reset=detach, surrogate=name, slope=k)
    layers = [spiking.RateEncoder(n_steps)]
    for w in sizes[:-1]:
        layers += [nnjax.Dense(w), spiking.LIF(beta, theta, **neuron)]
    layers.append(nnjax.Dense(sizes[-1]))
    if readout == "count":
        layers += [spiking.LIF(beta, theta, **neuron), spiking.SpikeCount()]
    else:
        layers.append(spiking.MembraneReadout(beta))
    return nnjax.serial(*layers)


@pytest.mark.parametrize("case", range(len(BPTT)))
def test_spiking_mlp_gradients_equal_numpy_bptt(case):
    cfg, n_steps, batch = BPTT[case]
    sizes = [7, 5, 3]
    with jax.enable_x64(True):
        model = _spiking_net(cfg, n_steps, sizes)
        _, params = model.init(jax.random.key(case), (batch, 6))
        params = jax.tree.map(lambda w: 3.0 * w + 0.3, params)  # enough drive to spike
        x = jax.random.uniform(jax.random.key(9), (batch, 6), jnp.float64, -0.3, 1.4)
        C = jax.random.normal(jax.random.key(4), (batch, sizes[-1]), jnp.float64)
        loss = lambda p: jnp.sum(model.apply(p, x) * C)  # noqa: E731
        g = jax.jit(jax.grad(loss))(params)  # compiled: not op by op
        out = jax.jit(model.apply)(params, x)
    if cfg[-1] == "count" and cfg[:4] == (0.9, 1.0, "subtract", True):  # spiking_mlp itself
        with jax.enable_x64(True):
            same = spiking.spiking_mlp(sizes, n_steps, surrogate=cfg[4], slope=cfg[5])
            np.testing.assert_array_equal(jax.jit(same.apply)(params, x), out)
            chk = jax.jit(jax.grad(lambda p: jnp.sum(same.apply(p, x) * C)))(params)
            jax.tree.map(np.testing.assert_array_equal, chk, g)
    np_params = jax.tree.map(np.asarray, params)
    out_np, g_np = _np_bptt(np_params, np.asarray(x), n_steps, cfg, np.asarray(C))
    np.testing.assert_allclose(out, out_np, rtol=1e-12, atol=1e-12)
    flat, flat_np = jax.tree.leaves(g), jax.tree.leaves(g_np)
    assert len(flat) == len(flat_np) == 6
    for a, b in zip(flat, flat_np):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert sum(float(np.abs(b).sum()) for b in flat_np) > 0


def test_encoders_with_rates_outside_unit_interval():
    x = jnp.array([[-3.0, -0.5, 0.0, 1.0, 1.5, 7.0]])
    want = np.array([0, 0, 0, 9, 9, 9])
    np.testing.assert_array_equal(spiking.rate_encode(None, x, 9).sum(0)[0], want)
    np.testing.assert_array_equal(spiking.rate_encode(jax.random.key(0), x, 9).sum(0)[0], want)
    enc = spiking.RateEncoder(9, gain=2.0).apply({}, jnp.array([[0.5, 0.6, 0.2]]))
    np.testing.assert_array_equal(enc.sum(0)[0], [9, 9, 3])  # 2x clipped at 1; floor(9 * 0.4)
    lat = spiking.latency_encode(x, 9)
    np.testing.assert_array_equal(lat.sum(0)[0], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(lat[0, 0, 3:], [1, 1, 1])  # clipped to 1: first step


def test_latency_threshold_compares_x_not_its_clip():
    """'Each input with x > threshold fires once ... at or below threshold stay silent': the
    clipped x was compared, so x = 1.5 > 1.2 never fired and x = -1 <= -0.5 fired at T - 1."""
    s = spiking.latency_encode(jnp.array([[1.5, 1.0]]), 5, threshold=1.2)
    np.testing.assert_array_equal(s[:, 0, 0], [1, 0, 0, 0, 0])
    assert float(s[:, 0, 1].sum()) == 0.0
    s = spiking.latency_encode(jnp.array([[-1.0, -0.2]]), 5, threshold=-0.5)
    assert float(s[:, 0, 0].sum()) == 0.0
    np.testing.assert_array_equal(s[:, 0, 1], [0, 0, 0, 0, 1])  # above: fires (clip 0: T-1)


@pytest.mark.parametrize("bad, match", [
    (dict(theta=-1.0), "theta"), (dict(surrogate="bogus"), "surrogate"),
    (dict(slope=0.0), "slope"),
])  # fmt: skip
def test_spiking_mlp_checks_neuron_arguments_without_hidden_layers(bad, match):
    """sizes=[n], readout='membrane' builds no LIF, so theta=-1 or an unknown surrogate passed."""
    with pytest.raises(ValueError, match=match):
        spiking.spiking_mlp([3], 4, readout="membrane", **bad)


def test_relu_mlp_layer_checks_the_model_it_is_given():
    """DeepDream's features of a tanh MLP were computed as a ReLU MLP's: with the model given,
    it is refused naming the activation; a ReLU MLP's features are its hidden activations."""
    from nnjax.brain import dreams

    tanh = nnjax.mlp([8, 4], activation="tanh")
    with pytest.raises(ValueError, match="relu_mlp_layer: model must be a ReLU MLP.*'tanh'"):
        dreams.relu_mlp_layer(0, model=tanh)
    relu = nnjax.mlp([8, 4])
    _, params = relu.init(jax.random.key(0), (-1, 5))
    x = jax.random.normal(jax.random.key(1), (3, 5))
    got = dreams.relu_mlp_layer(0, model=relu)(params, x)
    layers = convert.dense_params(params)
    want = np.maximum(np.asarray(x) @ np.asarray(layers[0]["W"]) + np.asarray(layers[0]["b"]), 0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
