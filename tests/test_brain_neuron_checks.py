"""Bad input to the neuron models' steps, initial states and f-I curves: each case used to
give a JAX TypeError naming neither the function nor the argument, a state that silently
changed shape, an integer membrane, a run at an impossible temperature or an attempt to
allocate terabytes. Each is now a ValueError naming the function and the argument. Tiny
inputs only: every case runs in milliseconds (no simulation is started)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.brain import adaptive_lif as alif
from nnjax.brain import adex, izhikevich, neurons
from nnjax.brain import hodgkin_huxley as hh

NAN, INF = float("nan"), float("inf")
ADEX, IZ = adex.AdExParams(), izhikevich.IzhikevichParams()


def _lif(v, current, **kw):
    return neurons.lif_step(v, current, **{"beta": 0.9, "theta": 1.0, **kw})


# (id, step(state, current, params) with the state (4,) and valid params, the function's name)
STEPS = [
    ("lif_step", lambda c, **kw: _lif(jnp.zeros(4), c, **kw), "lif_step"),
    (
        "adex",
        lambda c, p=ADEX: adex.step(adex.init_state((4,)), c, p, 0.1),
        "adex.step",
    ),
    (
        "izhikevich",
        lambda c, p=IZ: izhikevich.step(izhikevich.init_state((4,)), c, p, 0.1),
        "izhikevich.step",
    ),
    (
        "adaptive_lif",
        lambda c, p=alif.DEFAULT: alif.step(alif.init_state((4,)), c, p, 0.1),
        "adaptive_lif.step",
    ),
    ("hh.step", lambda c, p=hh.STANDARD: hh.step(hh.init_state((4,)), c, p), "hodgkin_huxley.step"),
    (
        "hh.rk4_step",
        lambda c, p=hh.STANDARD: hh.rk4_step(hh.init_state((4,)), c, 0.01, p),
        "hodgkin_huxley.rk4_step",
    ),
]
STEP_IDS = [s[0] for s in STEPS]


@pytest.mark.parametrize("step, where", [s[1:] for s in STEPS], ids=STEP_IDS)
def test_step_names_a_current_that_does_not_broadcast_to_the_state(step, where):
    """Finding: 'add got incompatible shapes for broadcasting: (4,), (3,).' (a JAX TypeError)."""
    msg = rf"{where}: current must broadcast to the state's shape \(4,\) .* shape \(3,\)"
    with pytest.raises(ValueError, match=msg):
        step(jnp.ones(3))


@pytest.mark.parametrize("step, where", [s[1:] for s in STEPS], ids=STEP_IDS)
def test_step_refuses_a_current_that_would_widen_the_state(step, where):
    """Finding: a current (2, 4) silently turned every state field (4,) into (2, 4)."""
    with pytest.raises(
        ValueError, match=rf"{where}: current must broadcast .* got current of shape \(2, 4\)"
    ):
        step(jnp.ones((2, 4)))


@pytest.mark.parametrize("step, where", [s[1:] for s in STEPS], ids=STEP_IDS)
def test_step_names_a_string_current(step, where):
    """Finding: "unsupported operand type(s) for +: 'ArrayImpl' and 'str'" (a TypeError)."""
    with pytest.raises(ValueError, match=rf"{where}: current must be a number or an array"):
        step("1.0")


@pytest.mark.parametrize("step, where", [s[1:] for s in STEPS], ids=STEP_IDS)
def test_step_takes_a_scalar_a_row_and_a_full_current(step, where):
    """Valid edge inputs: a scalar current (Python, NumPy), one of the state's own shape and a
    (1,) current all broadcast to the population and keep its shape."""
    for current in (2, np.float32(2.0), jnp.full(4, 2.0), jnp.ones(1)):
        out = step(current)
        assert all(jnp.shape(f) == (4,) for f in out), (where, current)


def test_step_refuses_a_parameter_that_would_widen_the_state():
    """Finding: a per-neuron parameter (2, 4) against a state (4,) gave a (2, 4) state."""
    with pytest.raises(ValueError, match=r"lif_step: beta must broadcast .* shape \(2, 4\)"):
        _lif(jnp.zeros(4), 1.0, beta=jnp.full((2, 4), 0.9))
    p = adex.AdExParams(C=jnp.full((2, 4), 281.0))
    with pytest.raises(ValueError, match=r"adex.step: params.C must broadcast .* \(2, 4\)"):
        adex.step(adex.init_state((4,)), 1.0, p, 0.1)
    with pytest.raises(ValueError, match=r"hodgkin_huxley.step: params.gK must .* \(3,\)"):
        hh.step(hh.init_state((4,)), 1.0, hh.HHParams(gK=jnp.full(3, 36.0)))
    # per-neuron parameters of the state's shape are fine
    assert adex.step(adex.init_state((4,)), 1.0, p._replace(C=jnp.full(4, 281.0)), 0.1).V.shape


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: adex.step(adex.init_state((2,)), 500.0, adex.AdExParams(g_L=-30.0), 0.1),
         r"adex.step: g_L must be a finite number > 0, got -30.0"),
        (lambda: adex.step(adex.init_state((2,)), 500.0, adex.AdExParams(C=0.0), 0.1),
         r"adex.step: C must be a finite number > 0"),
        (lambda: adex.step(adex.init_state((2,)), 500.0, adex.AdExParams(b=NAN), 0.1),
         r"adex.step: b must be a finite number"),
        (lambda: izhikevich.step(izhikevich.init_state((2,)), 10.0,
                                 izhikevich.IzhikevichParams(a=-1.0), 0.1),
         r"izhikevich.step: a must be a finite number > 0"),
        (lambda: izhikevich.step(izhikevich.init_state((2,)), 10.0,
                                 izhikevich.IzhikevichParams(c=40.0), 0.1),
         r"izhikevich.step: c must be finite and below v_peak"),
        (lambda: alif.step(alif.init_state((2,)), 2.0, alif.DEFAULT._replace(tau_m=-10.0), 0.1),
         r"adaptive_lif.step: tau_m must be a finite number > 0"),
        (lambda: alif.step(alif.init_state((2,)), 2.0, alif.DEFAULT._replace(t_ref=0.05), 0.1),
         r"adaptive_lif.step: needs dt <= t_ref"),
        (lambda: hh.step(hh.init_state((2,)), 10.0, hh.HHParams(C=-1.0)),
         r"hodgkin_huxley.step: C \(uF/cm\^2\) must be a finite number > 0"),
        (lambda: hh.rk4_step(hh.init_state((2,)), 10.0, 0.01, hh.HHParams(gNa=-120.0)),
         r"hodgkin_huxley.rk4_step: gNa \(mS/cm\^2\) must be a finite number >= 0"),
        (lambda: alif.check_params(alif.DEFAULT, "0.1"), r"adaptive_lif: dt must be a positive"),
    ],
)  # fmt: skip
def test_step_refuses_concrete_parameters_out_of_range(call, match):
    """Finding: the steps ran with a negative leak conductance, capacitance, time constant or
    recovery rate (AdEx with g_L = -30 nS stepped to V = -70.42 mV as if nothing were wrong);
    simulate refused them, the step did not. alif.check_params('0.1') raised NumPy's
    UFuncTypeError."""
    with pytest.raises(ValueError, match=match):
        call()


def test_adex_keeps_negative_a_and_b_and_hh_keeps_a_blocked_channel():
    """Signs that are physics, not errors: Naud et al.'s delayed-accelerating cell has
    a = -10 nS; b < 0 is a spike-triggered depolarisation; gNa = 0 is TTX."""
    st = adex.init_state((2,))
    assert adex.step(st, 500.0, adex.NAUD_2008["delayed_accelerating"][0], 0.1).V.shape == (2,)
    assert adex.step(st, 500.0, adex.AdExParams(b=-10.0), 0.1).V.shape == (2,)
    assert hh.step(hh.init_state((2,)), 1.0, hh.HHParams(gNa=0.0)).V.shape == (2,)


def test_hodgkin_huxley_refuses_a_temperature_below_absolute_zero():
    """Finding: celsius = -300 ran (phi = 3^-30.6, the gates frozen) in simulate, fi_curve
    and step; -273.15 itself is the limit and passes."""
    msg = r"celsius \(C\) must be at or above absolute zero \(-273.15\), got -300.0"
    cold = hh.HHParams(celsius=-300.0)
    with pytest.raises(ValueError, match=rf"hodgkin_huxley.simulate: {msg}"):
        hh.simulate(jnp.zeros(2), params=cold)
    with pytest.raises(ValueError, match=rf"hodgkin_huxley.fi_curve: {msg}"):
        hh.fi_curve([1.0], duration=1.0, discard=0.0, params=cold)
    with pytest.raises(ValueError, match=rf"hodgkin_huxley.step: {msg}"):
        hh.step(hh.init_state((2,)), 1.0, cold)
    with pytest.raises(ValueError, match=r"got -274.0 \(among \(2,\)\)"):
        hh.step(hh.init_state((2,)), 1.0, hh.HHParams(celsius=np.array([6.3, -274.0])))
    for t in (-273.15, np.array([-273.0, 40.0])):  # odd, but not impossible
        assert hh.step(hh.init_state((2,)), 1.0, hh.HHParams(celsius=t)).V.shape == (2,)


def test_hodgkin_huxley_names_the_temperature_not_dt_when_it_is_to_blame():
    """Finding: at 900 C phi = 3^((T - 6.3) / 10) overflows float32 and every dt failed,
    yet the message said to lower dt; hot but finite, it said nothing of the temperature."""
    hot = hh.HHParams(celsius=900.0)
    msg = r"celsius \(C\) = 900 makes phi = 3\^\(\(T - 6.3\) / 10\) overflow float32"
    with pytest.raises(ValueError, match=rf"hodgkin_huxley.simulate: {msg}"):
        hh.simulate(jnp.zeros(2), params=hot)
    with pytest.raises(ValueError, match=rf"hodgkin_huxley.step: {msg}"):
        hh.step(hh.init_state((2,)), 1.0, hot)
    with pytest.raises(ValueError, match="use a smaller dt; at celsius = 100 the gates run"):
        hh.simulate(jnp.full(100, 10.0), dt=0.01, params=hh.HHParams(celsius=100.0))
    # the hint's bound holds: 0.6 / phi at 100 C (2.03e-5 ms) integrates, 3x it does not
    phi = 3.0 ** ((100.0 - 6.3) / 10.0)
    warm = hh.HHParams(celsius=100.0)
    assert np.isfinite(hh.simulate(jnp.full(3000, 10.0), dt=0.6 / phi, params=warm).V).all()
    with pytest.raises(ValueError, match="V became inf/nan"):
        hh.simulate(jnp.full(3000, 10.0), dt=1.8 / phi, params=warm)


@pytest.mark.parametrize(
    "init, where",
    [
        (adex.init_state, "adex.init_state"),
        (izhikevich.init_state, "izhikevich.init_state"),
        (alif.init_state, "adaptive_lif.init_state"),
        (hh.init_state, "hodgkin_huxley.init_state"),
    ],
)
def test_init_state_refuses_a_dtype_that_is_not_floating(init, where):
    """Finding: dtype=jnp.int32 made an int32 membrane (V = -70 for AdEx's -70.6 mV, Euler
    steps truncated); dtype='foo' raised NumPy's "data type 'foo' not understood"."""
    for dtype, shown in ((jnp.int32, "int32"), (bool, "bool"), ("foo", "'foo'")):
        with pytest.raises(ValueError, match=rf"{where}: dtype must be float16, .* got {shown}"):
            init((2,), dtype=dtype)
    for dtype in (None, jnp.float32, "float32", jnp.bfloat16):
        assert jnp.issubdtype(init((2,), dtype=dtype)[0].dtype, jnp.floating)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: izhikevich.init_state((2,), v0=NAN), r"izhikevich.init_state: v0 must be a fin"),
        (lambda: izhikevich.init_state((2,), v0="-65"), r"izhikevich.init_state: v0 must be a"),
        (lambda: izhikevich.init_state((2,), izhikevich.IzhikevichParams(b=NAN)),
         r"izhikevich.init_state: b must be a finite"),
        (lambda: hh.init_state((2,), V0=INF), r"hodgkin_huxley.init_state: V0 \(mV\) must be"),
        (lambda: adex.init_state((2,), adex.AdExParams(E_L=NAN)), r"adex.init_state: E_L must"),
        (lambda: alif.init_state((2,), alif.ALIFParams(E_L=NAN)),
         r"adaptive_lif.init_state: E_L must"),
    ],
)  # fmt: skip
def test_init_state_refuses_a_nan_or_string_initial_value(call, match):
    """Finding: a nan v0 / V0 / E_L gave a nan state (a neuron silent for the whole run); a
    string v0 raised a bare 'could not convert string to float'."""
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: neurons.lif_fi_curve([1.0], duration=1e12),
         r"lif_fi_curve: duration 1e\+12 ms at dt 0.1 ms is 10000000000000 steps x 1 currents"),
        (lambda: neurons.lif_fi_curve(jnp.ones(4001), duration=500.0),
         r"lif_fi_curve: duration 500 ms at dt 0.1 ms is 5000 steps x 4001 currents = 20005000, "
         r"above MAX_STEPS = 20000000"),
        (lambda: neurons.if_rate(0.5, 10**12),
         r"if_rate: x of shape \(\) over n_steps is 1000000000000 steps"),
        (lambda: alif.fi_curves(jnp.ones(2), duration=1e12),
         r"adaptive_lif.fi_curves: duration 1e\+12 ms at dt 0.1 ms is 10000000000000 steps x 2"),
        (lambda: hh.fi_curve([1.0], duration=1e12),
         r"hodgkin_huxley.fi_curve: duration 1e\+12 ms at dt 0.01 ms is 100000000000000 steps, "
         r"above MAX_STEPS = 10000000"),
        (lambda: hh.resting_potential(duration=1e12),
         r"hodgkin_huxley.resting_potential: duration 1e\+12 ms at dt 0.01 ms is 1000000000000"),
    ],
)  # fmt: skip
def test_absurd_durations_are_refused_before_allocating(call, match):
    """Finding: 'RESOURCE_EXHAUSTED: Out of memory allocating 40000000000000 bytes' (or a
    kill for memory; HH's fi_curve an OverflowError); the caps leave real uses room."""
    with pytest.raises(ValueError, match=match):
        call()


def test_the_caps_leave_room_for_real_sweeps():
    assert neurons.MAX_STEPS >= 5000 * 4000 and alif.MAX_STEPS >= 5000 * 4000
    assert hh.MAX_STEPS >= round(100_000.0 / 0.01)  # 100 s at dt = 0.01 ms


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: neurons.lif_fi_curve([1.0, INF], duration=1.0),
         r"lif_fi_curve: currents must be finite or nan, got inf"),
        (lambda: neurons.lif_fi_curve(["1.0"], duration=1.0),
         r"lif_fi_curve: currents must be real numbers"),
        (lambda: alif.fi_curves(jnp.array([1.0, -INF]), duration=1.0),
         r"adaptive_lif.fi_curves: currents must be finite or nan, got -inf"),
        (lambda: alif.fi_curves(["1"], duration=1.0), r"adaptive_lif.fi_curves: currents must be"),
        (lambda: hh.fi_curve(["10"], duration=1.0, discard=0.0),
         r"hodgkin_huxley.fi_curve: currents must be real numbers"),
        (lambda: neurons.lif_rate_theory("2.0"), r"lif_rate_theory: current must be a number"),
    ],
)  # fmt: skip
def test_f_i_curves_name_their_own_currents(call, match):
    """Finding: an inf current was blamed on 'lif_continuous: the input holds nan or inf' /
    'adaptive_lif.simulate: ...' (functions the caller never called); a string current
    raised JAX's 'is not a valid JAX array type' TypeError."""
    with pytest.raises(ValueError, match=match):
        call()


def test_a_nan_current_still_reads_nan_and_int_currents_still_run():
    rates = neurons.lif_fi_curve([NAN, 2], duration=1.0)
    assert np.isnan(rates[0]) and np.isfinite(rates[1])


def test_the_step_checks_pass_tracers_under_jit_vmap_grad_and_scan():
    """Shapes are static, so the shape check runs at trace time; traced parameters, dt and
    currents skip the value checks. The steps still jit, vmap, differentiate and scan."""
    st = adex.init_state((3,))
    V = jax.jit(lambda c, p: adex.step(st, c, p, 0.1).V)(jnp.ones(3), ADEX)
    assert V.shape == (3,)
    g = jax.grad(lambda c: adex.step(st, c, ADEX, 0.1).V.sum())(jnp.full(3, 500.0))
    np.testing.assert_allclose(g, 0.1 / 281.0, rtol=1e-5)  # dV1/dI = dt / C
    v, s = jax.jit(jax.vmap(lambda c: _lif(jnp.zeros(()), c)))(jnp.array([0.5, 2.0]))
    np.testing.assert_array_equal(s, [0.0, 1.0])
    g_b = jax.grad(lambda b: _lif(jnp.zeros(2), jnp.ones(2), beta=b)[0].sum())(0.9)
    assert float(g_b) == 0.0  # v = 0: beta v + I does not depend on beta
    # a traced dt and traced per-neuron parameters inside a scan

    def run(p, dt):
        body = lambda s, c: (izhikevich.step(s, c, p, dt), None)  # noqa: E731
        return jax.lax.scan(body, izhikevich.init_state((3,), p), jnp.full((5, 3), 10.0))[0].v

    assert jax.jit(run)(IZ._replace(a=jnp.full(3, 0.02)), 0.1).shape == (3,)
    # under jit a wrong shape is still named (shapes are static)
    with pytest.raises(ValueError, match=r"adex.step: current must .* of shape \(2,\)"):
        jax.jit(lambda c: adex.step(st, c, ADEX, 0.1))(jnp.ones(2))
