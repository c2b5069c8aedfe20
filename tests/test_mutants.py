"""Properties that the rest of the suite left unchecked, found by injecting faults (mutants)
into the core math: each test here fails on a plausible one-line fault that every other test
file passed. Each checks a real property (the NumPy twin, a closed form, a published
default), not the current output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations as A
from nnjax.brain import neurons
from nnjax.layers import BatchNorm, Dropout
from nnjax.optim import DEFAULT_LEARNING_RATE, get_optimizer
from nnjax.reference import activations as RA
from nnjax.reference import norm as RN

KEY = jax.random.key(0)

# z = 0 is the kink: the twin and JAX both take the left branch there (slope negative_slope
# for leaky_relu, alpha for elu), so the derivative at 0 tells the parameter apart from 1.
Z = np.array([-7.5, -2.0, -0.3, -1e-3, 0.0, 1e-3, 0.4, 2.5, 9.0])


def _value_and_slope(f, z):
    """f(z) and f'(z), elementwise, by jax.grad (float64)."""
    return f(jnp.asarray(z)), jax.vmap(jax.grad(f))(jnp.asarray(z))


@pytest.mark.parametrize(
    "name, kw",
    [
        ("leaky_relu", {"negative_slope": 0.2}),
        ("leaky_relu", {"negative_slope": 0.5}),
        ("elu", {"alpha": 0.5}),
        ("elu", {"alpha": 2.0}),
    ],
    ids=["leaky_relu-0.2", "leaky_relu-0.5", "elu-0.5", "elu-2"],
)
def test_parametrised_activations_match_the_twin_away_from_their_defaults(name, kw):
    """With a non-default negative_slope / alpha (the defaults 0.01 and 1.0 hide a parameter
    that is ignored, and alpha = 1 makes elu's two branches meet with slope 1 at 0): values
    and jax.grad derivatives, z = 0 included, equal the twin's, and the twin's derivative
    equals central differences away from the kink."""
    f = getattr(A, name)
    twin_f, twin_df = getattr(RA, name), getattr(RA, f"{name}_derivative")
    with jax.enable_x64(True):
        y, dy = _value_and_slope(lambda z: f(z, **kw), Z)
    np.testing.assert_allclose(np.asarray(y), twin_f(Z, **kw), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(dy), twin_df(Z, **kw), rtol=1e-12, atol=1e-15)
    # the kink's convention, from the closed form: the left branch's slope at 0
    left = kw.get("negative_slope", kw.get("alpha"))
    assert float(twin_df(np.array([0.0]), **kw)[0]) == left == float(dy[Z == 0.0][0])
    h, away = 1e-6, Z[np.abs(Z) > 1e-2]
    fd = (twin_f(away + h, **kw) - twin_f(away - h, **kw)) / (2 * h)
    np.testing.assert_allclose(twin_df(away, **kw), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_dropout_keeps_a_fraction_one_minus_rate_and_preserves_the_mean(rate):
    """Inverted dropout: each element is kept with probability 1 - rate and scaled by
    1 / (1 - rate), so E[y] = x. At rate 0.5 keeping with probability rate looks the same;
    other rates tell them apart (200 000 elements: the standard error of the kept fraction
    is below 0.0011)."""
    x = jnp.ones((4000, 50))
    y = np.asarray(Dropout(rate).apply({}, x, key=KEY))
    kept = y != 0
    assert abs(kept.mean() - (1.0 - rate)) < 0.006
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02


def test_batch_norm_defaults_are_pytorchs_momentum_and_eps():
    """``BatchNorm()`` follows PyTorch's convention (nnjax.layers.norm), so its defaults must
    be torch.nn.BatchNorm1d/2d's documented ones, momentum = 0.1 and eps = 1e-5: a default
    layer over 6 training steps (outputs and running statistics) and then in evaluation mode
    equals the NumPy twin given those constants explicitly, in float64."""
    rng = np.random.default_rng(3)
    xs = rng.normal(1.5, 2.0, (6, 5, 3, 4))
    momentum, eps = 0.1, 1e-5  # torch.nn.BatchNorm1d(num_features, eps=1e-05, momentum=0.1)
    layer = BatchNorm()
    with jax.enable_x64(True):
        _, params, state = layer.init(KEY, xs.shape[1:])
        ref = {k: np.asarray(v) for k, v in state.items()}
        p = {k: np.asarray(v) for k, v in params.items()}
        for x in xs:
            y, state = layer.apply(params, jnp.asarray(x), state=state, train=True)
            want, _ = RN.batch_norm(eps=eps).forward(p, x)
            np.testing.assert_allclose(np.asarray(y), want, rtol=1e-10, atol=1e-12)
            ref = RN.batch_norm_update(ref, x, momentum=momentum)
            for k in ("mean", "var"):
                np.testing.assert_allclose(np.asarray(state[k]), ref[k], rtol=1e-10, err_msg=k)
        y_eval, _ = layer.apply(params, jnp.asarray(xs[0]), state=state, train=False)
    want, _ = RN.batch_norm(eps=eps, train=False, state=ref).forward(p, xs[0])
    np.testing.assert_allclose(np.asarray(y_eval), want, rtol=1e-10, atol=1e-12)


def test_adam_default_learning_rate_is_kingma_and_bas_and_sets_the_first_step():
    """Adam's published default step size is alpha = 0.001 (Kingma & Ba 2015, Algorithm 1;
    also PyTorch's Adam/AdamW default). Adam's first update is -alpha g / (|g| + eps), about
    -alpha sign(g) whatever the gradient's scale, so the default rate is the size of the first
    step the named optimizer takes."""
    import optax

    for name in ("adam", "adamw"):
        lr = DEFAULT_LEARNING_RATE[name]
        opt = get_optimizer(name, lr)
        params = {"w": jnp.zeros(4)}
        g = {"w": jnp.array([3.0, -0.02, 150.0, -7.0])}
        updates, _ = opt.update(g, opt.init(params), params)
        new = optax.apply_updates(params, updates)
        np.testing.assert_allclose(new["w"], -1e-3 * np.sign(g["w"]), rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("V_r", [-70.0, -60.0])
def test_continuous_lif_resets_to_V_r_not_to_E_L(V_r):
    """The f–I curve with a reset V_r != E_L (the defaults are equal, -65 mV, which hides a
    reset to the wrong one): the simulated rate from exact spike times equals the closed form
    f = 1 / (t_ref + tau ln((V_inf - V_r) / (V_inf - theta))) (every interval after the first
    spike starts at V_r), and right after a spike the membrane is V_r relaxed towards V_inf."""
    with jax.enable_x64(True):
        currents = jnp.array([1.8, 2.5, 4.0, 9.0])  # nA: V_inf = -47 .. 25 mV, above theta
        f = neurons.lif_fi_curve(currents, duration=300.0, dt=0.1, V_r=V_r, t_ref=1.0)
        theory = neurons.lif_rate_theory(currents, V_r=V_r, t_ref=1.0)
        np.testing.assert_allclose(f, theory, rtol=1e-9)
        # one spike with no refractory time left: V(end of step) = V_inf + (V_r - V_inf) e^{-s/tau}
        tr = neurons.lif_continuous(jnp.full((400,), 2.5), dt=0.1, V_r=V_r, t_ref=0.0)
    spikes = np.asarray(tr.spikes)
    k = np.flatnonzero(spikes)[0]
    s = (k + 1) * 0.1 - float(tr.spike_times[k])  # time from the spike to the step's end
    V_inf = -65.0 + 10.0 * 2.5
    assert float(tr.v[k]) == pytest.approx(V_inf + (V_r - V_inf) * np.exp(-s / 10.0), abs=1e-9)
