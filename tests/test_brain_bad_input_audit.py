"""Bad input to the brain's small functions: one ValueError naming the function, the argument
and its valid values, where a bare TypeError came from deep inside or the input was taken
silently. Each test's docstring names the finding; valid input keeps its old result."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from nnjax.brain import activity, diversity, filters, homeostasis, hypnogram, monitors, plasticity

matplotlib.use("Agg")

HYPNO = [0, 1, 2, 3, 4, 2]


@pytest.mark.parametrize("unit", [["s"], {"s": 1}, 60])
def test_plot_hypnogram_time_unit_not_a_name(unit):
    """Finding: time_unit=["s"] failed with "unhashable type: 'list'"."""
    with pytest.raises(ValueError, match=r"plot_hypnogram: time_unit must be one of .*'min'"):
        hypnogram.plot_hypnogram(HYPNO, time_unit=unit)


def test_plot_spectrogram_time_unit_not_a_name():
    t, f = np.arange(4.0), np.arange(3.0)
    with pytest.raises(ValueError, match="plot_spectrogram: time_unit must be one of"):
        hypnogram.plot_spectrogram(t, f, np.ones((3, 4)), time_unit=["s"])


@pytest.mark.parametrize(
    "fn",
    [
        hypnogram.stage_intervals,
        hypnogram.stage_durations,
        hypnogram.plot_hypnogram,
        lambda h, names: hypnogram.stage_at(h, [1.0], names=names),
    ],
)
@pytest.mark.parametrize("names", [0, None, "WNR", ()])
def test_stage_functions_names_not_a_sequence(fn, names):
    """Finding: stage_intervals(h, names=0) failed with "object of type 'int' has no len()";
    names="WNR" was read letter by letter; () said "codes [...] are not in 0..-1"."""
    with pytest.raises(ValueError, match=r"names must be a non-empty sequence of stage names"):
        fn([0, 1, 2], names=names)


def test_stage_durations_repeated_names_refused():
    """Finding: names=("W", "W", "R") merged stage 0's time into stage 1's key: stage_durations
    returned {"W": 30.0, "R": 30.0} for [0, 0, 1, 2], losing 60 s of stage 0 without a word."""
    with pytest.raises(ValueError, match=r"stage_durations: names must be distinct"):
        hypnogram.stage_durations([0, 0, 1, 2], names=("W", "W", "R"))


def test_stage_functions_valid_names_unchanged():
    """A tuple, a list and a 1-D array of names all work as before (oracle: counts x 30 s)."""
    h = [0, 0, 1, 2, 2, 2]
    for names in (("wake", "NREM", "REM"), ["wake", "NREM", "REM"], np.array(["a", "b", "c"])):
        d = hypnogram.stage_durations(h, names=names)
        assert list(d.values()) == [60.0, 30.0, 90.0]
    codes, iv = hypnogram.stage_intervals(h, names=("wake", "NREM", "REM"))
    np.testing.assert_array_equal(codes, [0, 1, 2])
    np.testing.assert_array_equal(iv, [[0, 60], [60, 90], [90, 180]])


@pytest.mark.parametrize("rate0", [None, "1.0", object()])
def test_scaling_init_rate0_not_a_number(rate0):
    """Finding: scaling_init(3, rate0=None) failed with "full requires ndarray or scalar
    arguments" from jax._src.numpy."""
    with pytest.raises(ValueError, match=r"scaling_init: rate0 \(Hz\) must be a finite number"):
        plasticity.scaling_init(3, rate0=rate0)


def test_scaling_init_rate0_overflows_the_dtype():
    """Finding: scaling_init(3, rate0=1e300) returned [inf inf inf] in float32 silently."""
    with pytest.raises(ValueError, match=r"rate0 \(Hz\) must be finite in dtype float32.*1e\+300"):
        plasticity.scaling_init(3, rate0=1e300, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"finite in dtype float16"):
        plasticity.scaling_init(2, rate0=np.array([1.0, 7e4]), dtype=jnp.float16)


def test_scaling_init_valid_rates_unchanged():
    """Large but representable rates, arrays and traced rates pass (oracle: jnp.full)."""
    r = plasticity.scaling_init(3, rate0=3e38, dtype=jnp.float32)
    assert r.dtype == jnp.float32 and bool(jnp.isfinite(r).all())
    np.testing.assert_allclose(np.asarray(r), 3e38, rtol=1e-7)
    r = plasticity.scaling_init(2, rate0=np.array([0.0, 5.0]), dtype=jnp.float32)
    np.testing.assert_array_equal(np.asarray(r), [0.0, 5.0])
    traced = jax.jit(lambda x: plasticity.scaling_init(2, rate0=x))(jnp.float32(4.0))
    np.testing.assert_array_equal(np.asarray(traced), [4.0, 4.0])


@pytest.mark.parametrize("weights", [None, 3, 2.5, "W", {"W": np.ones((2, 2))}])
def test_prune_weights_not_a_list_or_array(weights):
    """Finding: prune(None, 0.5) failed with "'NoneType' object is not iterable"; a dict was
    read key by key ("weights[0] must be an array ..., got 'W'")."""
    with pytest.raises(ValueError, match=r"prune: weights must be a list of weight arrays"):
        homeostasis.prune(weights, 0.5)


def test_prune_valid_weights_unchanged():
    """A list, a tuple and a bare array prune as before (oracle: the 2 smallest |w| of 4)."""
    W = np.array([[0.1, -3.0], [2.0, -0.2]])
    want = np.array([[0.0, -3.0], [2.0, 0.0]])
    for ws in ([W], (W,)):
        np.testing.assert_array_equal(np.asarray(homeostasis.prune(ws, 0.5)[0]), want)
    np.testing.assert_array_equal(np.asarray(homeostasis.prune(W, 0.5)), want)


@pytest.mark.parametrize("classify", [3, None, "logits"])
def test_diversity_classify_not_callable(classify):
    """Finding: diversity(X, 3, 2) failed with "'int' object is not callable"."""
    with pytest.raises(ValueError, match=r"diversity: classify must be a function X"):
        diversity.diversity(np.ones((4, 2)), classify, 2)


@pytest.mark.parametrize(
    "sos",
    [{}, None, "abc", [list("100100")], np.array([[1j, 0, 0, 1, 0, 0]]), [[1, 2], [3]]],
)
def test_sosfiltfilt_sos_not_real_numbers(sos):
    """Finding: sosfiltfilt({}, x) failed with "float() argument must be a string or a real
    number, not 'dict'"; strings were parsed as numbers; a complex sos lost its imaginary part
    with only a ComplexWarning."""
    with pytest.raises(ValueError, match=r"sosfiltfilt: sos must be an array of real numbers"):
        filters.sosfiltfilt(sos, np.zeros(100))


def test_sosfiltfilt_valid_sos_matches_scipy():
    """Integer and float sos still run (oracle: scipy.signal.sosfiltfilt, float64)."""
    from scipy.signal import butter, sosfiltfilt

    x = np.random.default_rng(0).standard_normal(300)
    sos = butter(2, (5.0, 20.0), btype="bandpass", fs=100.0, output="sos")
    with jax.enable_x64(True):
        got = np.asarray(filters.sosfiltfilt(sos, jnp.asarray(x, jnp.float64)))
    np.testing.assert_allclose(got, sosfiltfilt(sos, x), atol=1e-10)
    ident = np.asarray(filters.sosfiltfilt([[1, 0, 0, 1, 0, 0]], x.astype(np.float32)))
    np.testing.assert_allclose(ident, x, atol=1e-6)


RASTER = np.eye(4, dtype=np.uint8)


@pytest.mark.parametrize(
    "groups, what",
    [
        ("x", "groups must be a list of arrays of neuron ids"),
        (3, "groups must be a list of arrays of neuron ids"),
        ([["a", "b"]], r"groups\[0\] must be neuron ids \(ints >= 0\), got \['a', 'b'\]"),
        ([[0], [0.5]], r"groups\[1\] must be neuron ids \(ints >= 0\), got \[0.5\]"),
        ([[0, 1], [2, -1]], r"groups\[1\] must be neuron ids \(ints >= 0\), got \[2, -1\]"),
        ([[np.nan]], r"groups\[0\] must be neuron ids \(ints >= 0\)"),
    ],
)
def test_plot_raster_groups_not_neuron_ids(groups, what):
    """Finding: plot_raster(raster, 1.0, groups="x") returned a figure with no group drawn
    and no error; a negative id or a fraction matched nothing the same way."""
    with pytest.raises(ValueError, match="plot_raster: " + what):
        activity.plot_raster(RASTER, 1.0, groups=groups)


def test_plot_raster_valid_groups_drawn():
    """Lists, arrays, whole floats and an empty group pass; each group adds its scatter of
    its neurons' spikes (oracle: the identity raster, one spike per neuron); ids beyond the
    raster's columns (a raster cut to its first neurons) are valid and not drawn."""
    groups = [[0, 1], np.array([3]), [2.0], [], [3, 7]]
    fig = activity.plot_raster(RASTER, 1.0, groups=groups)
    counts = [len(c.get_offsets()) for c in fig.axes[0].collections]
    assert counts == [4, 2, 1, 1, 0, 1]


@pytest.mark.parametrize("every", [-1, 0, 2.5, True, "8", None])
def test_raster_dtype_every_not_a_positive_int(every):
    """Finding: raster_dtype(-1) returned uint8 (and 2.5 did too) without a word."""
    with pytest.raises(ValueError, match=r"raster_dtype: every must be an int >= 1"):
        monitors.raster_dtype(every)


def test_raster_dtype_valid_bounds_unchanged():
    """uint8 up to 255 steps a bin, uint16 up to 65535, uint32 beyond; NumPy ints pass."""
    got = [monitors.raster_dtype(e) for e in (1, 255, 256, 65535, 65536, np.int64(300))]
    want = [jnp.uint8, jnp.uint8, jnp.uint16, jnp.uint16, jnp.uint32, jnp.uint16]
    assert got == want
