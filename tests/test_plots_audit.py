"""Every figure nnjax writes, driven with what real runs produce: one epoch, a loss that turns
nan/inf or reaches exactly 0, flat curves, 10^5 steps, many optimizers, odd paths, a headless
process with an odd MPLBACKEND. The oracle is the input: each Axes' line data, its scales,
its legend's names; no figure is left open in pyplot and no matplotlib warning is raised."""

import os
import subprocess
import sys
import types
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from nnjax.commands import train_outputs
from nnjax.compare import plot
from nnjax.compare.study import OptimizerRuns, Study, StudyResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def strict():
    """Every matplotlib/NumPy warning is an error, and no pyplot figure may be left open."""
    before = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    assert plt.get_fignums() == before


def _runs(name, lrs, step_loss, train, val, acc, steps_per_epoch=1):
    """OptimizerRuns from (L, S, E*T) step losses and (L, S, E) metrics."""
    step_loss, train, val, acc = (np.asarray(a, np.float64) for a in (step_loss, train, val, acc))
    L, S, _ = train.shape
    metrics = {"train_loss": train, "val_loss": val, "test_accuracy": acc, "val_accuracy": acc}
    return OptimizerRuns(name, np.asarray(lrs, np.float64), np.arange(S), None,
                         steps_per_epoch, step_loss, metrics, 0.0, 0.0)  # fmt: skip


def _result(*runs):
    study = Study(dataset="xor", optimizers=tuple(r.name for r in runs))
    return StudyResult(study, "mlp", {}, True, {r.name: r for r in runs})


def _curve(name, lrs=(0.01, 0.1), S=3, E=4, T=2, scale=1.0, seed=0, tau=3.0):
    """A converging optimizer: losses falling from ~scale, accuracy rising; the first rate
    the best (the chosen one)."""
    g = np.random.default_rng(seed)
    L = len(lrs)
    step = scale * np.exp(-np.arange(E * T) / tau) * (1 + 0.1 * g.random((L, S, E * T)))
    step *= (1.0 + 0.5 * np.arange(L))[:, None, None]
    train = step[:, :, T - 1 :: T]
    return _runs(name, lrs, step, train, 1.1 * train, 1 - train / (2 * scale), T)


def _lines(ax):
    """The Line2Ds that carry data, by label: plotted lines and errorbars' data lines."""
    out = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    for c in ax.containers:
        if isinstance(c, matplotlib.container.ErrorbarContainer):
            out[c.get_label()] = c.lines[0]
    return out


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _visible_marker(line) -> bool:
    return line.get_marker() not in (None, "None", "", " ") and line.get_markersize() > 0


# ---- compare: loss_curves, lr_sensitivity, test_accuracy -----------------------------------


def test_compare_curves_equal_the_seed_median_and_the_legend_names_every_optimizer():
    a, b = _curve("sgd"), _curve("adam", seed=1)
    dead = _curve("momentum")._replace(step_loss=np.full((2, 3, 8), np.nan))  # every rate nan
    res = _result(a, b, dead)
    ax = plot.figure_loss_curves(res).axes[0]
    assert ax.get_yscale() == "log"
    assert _legend(ax) == ["sgd (lr 0.01)", "adam (lr 0.01)", "momentum: no rate converged"]
    for r in (a, b):
        line = _lines(ax)[f"{r.name} (lr 0.01)"]
        np.testing.assert_allclose(line.get_ydata(), np.median(r.step_loss[0], 0), rtol=1e-12)
        np.testing.assert_allclose(line.get_xdata(), np.arange(1, 9) / 2)
    ax = plot.figure_test_accuracy(res).axes[0]
    np.testing.assert_allclose(
        _lines(ax)["sgd (lr 0.01)"].get_ydata(), np.median(a.metrics["test_accuracy"][0], 0)
    )


def test_compare_one_epoch_study_draws_a_visible_point_per_optimizer():
    """--epochs 1 with one step an epoch (gd, or a batch as big as the set): a line and a band
    of one point drew nothing at all: a blank loss_curves.png and test_accuracy.png."""
    r = _curve("gd", E=1, T=1)
    res = _result(r)
    for fig in (plot.figure_loss_curves(res), plot.figure_test_accuracy(res)):
        ax = fig.axes[0]
        (line,) = [ln for lab, ln in _lines(ax).items() if lab.startswith("gd")]
        assert len(line.get_ydata()) == 1 and _visible_marker(line), line.get_marker()
    line = _lines(plot.figure_loss_curves(res).axes[0])["gd (lr 0.01)"]
    assert line.get_ydata()[0] == pytest.approx(np.median(r.step_loss[0, :, 0]))


def test_compare_a_loss_of_exactly_zero_keeps_every_point_in_sight():
    """Float32 cross-entropy on separable data reaches 0: on the log axes the chosen rate's
    point (and its circle) fell off the figure; the axes are linear then."""
    r = _curve("adam")
    step = r.step_loss.copy()
    step[:, :, 5:] = 0.0
    train = step[:, :, 1::2].copy()
    r = r._replace(step_loss=step, metrics={**r.metrics, "train_loss": train})
    res = _result(r, _curve("sgd", seed=2))
    ax = plot.figure_loss_curves(res).axes[0]
    assert ax.get_yscale() == "linear"
    lo, hi = ax.get_ylim()
    assert lo <= 0.0 <= hi
    fig = plot.figure_lr_sensitivity(res)
    for ax in fig.axes:
        assert ax.get_yscale() == "linear"
    lo, hi = fig.axes[0].get_ylim()
    assert lo <= 0.0 <= hi  # the final train loss 0 is drawn


def test_compare_the_x_of_a_diverged_rate_is_above_every_point():
    """The x's height came from the optimizers drawn before it: the first optimizer's x sat
    below a later optimizer's points (here at 1.0, under points at 5)."""
    a = _curve("sgd", lrs=(0.01, 0.1, 1.0), scale=0.5)
    a.step_loss[2, 0, -1] = np.nan  # rate 1.0 diverged on seed 0
    b = _curve("adam", lrs=(0.01, 0.1), scale=5.0, seed=1)
    fig = plot.figure_lr_sensitivity(_result(a, b))
    for ax in fig.axes:
        xs = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
        assert len(xs) == 1 and list(xs[0].get_xdata()) == [1.0]
        points = [ln.get_ydata() for ln in ax.get_lines() if ln.get_marker() == "o"]
        assert xs[0].get_ydata()[0] > np.nanmax(np.concatenate(points))
    assert _legend(fig.axes[0]) == ["sgd", "adam"]


def test_compare_every_optimizer_of_the_registry_in_one_study():
    from nnjax.optim import OPTIMIZERS

    names = list(OPTIMIZERS)
    res = _result(*(_curve(n, seed=i) for i, n in enumerate(names)))
    for fig in (plot.figure_loss_curves(res), plot.figure_test_accuracy(res)):
        labels = _legend(fig.axes[0])
        assert [lab.split(" ")[0] for lab in labels] == names
        colors = {matplotlib.colors.to_hex(ln.get_color()) for ln in _lines(fig.axes[0]).values()}
        assert len(colors) == len(names)
    assert _legend(plot.figure_lr_sensitivity(res).axes[0]) == names


def test_compare_a_long_study_stays_small(tmp_path):
    """10^5 steps a seed (e.g. 1000 epochs of 100 steps): each PNG < 300 kB. (Its time, 2-4
    s, was bounded here too, and failed on a loaded machine: timings belong in benchmarks.)"""
    r = _curve("sgd", S=3, E=1000, T=100, tau=3e4)
    paths = plot.plot_all(_result(r), str(tmp_path))
    assert all(0 < os.path.getsize(p) < 300_000 for p in paths.values())


def test_compare_writes_into_a_path_with_spaces_and_non_ascii(tmp_path):
    out = tmp_path / "my runs — étude ünïcode"
    out.mkdir()
    paths = plot.plot_all(_result(_curve("sgd")), str(out))
    for p in paths.values():
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- nnjax train: loss.png and accuracy.png -----------------------------------------------


@pytest.fixture
def drawn(monkeypatch):
    """The figures train_outputs renders, kept (its _png renders them to bytes)."""
    figs, real = [], train_outputs._png
    monkeypatch.setattr(train_outputs, "_png", lambda fig: figs.append(fig) or real(fig))
    return figs


def _res(step_loss, **metrics):
    metrics = {k: np.asarray(v, np.float64) for k, v in metrics.items()}
    return types.SimpleNamespace(step_loss=np.asarray(step_loss, np.float64), metrics=metrics)


def test_train_loss_plot_of_a_diverged_run_stays_logarithmic(drawn):
    """A loss that turns inf then nan (divergence) made the axis linear, against the
    docstring ("linear when a loss is exactly 0"): the run's first epochs were a flat line
    under the spike. Non-finite values are gaps on a log axis."""
    step = np.geomspace(2.0, 0.01, 12)
    step[8], step[9:] = 1e30, [np.inf, np.nan, np.nan]
    res = _res(step, train_loss=step[2::3], test_loss=[1.0, 0.5, np.inf, np.nan])
    assert train_outputs.loss_png(res).startswith(b"\x89PNG")
    ax = drawn[0].axes[0]
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(_lines(ax)["step loss"].get_ydata(), step)
    np.testing.assert_array_equal(_lines(ax)["test loss (epoch end)"].get_xdata(), [2, 5, 8, 11])
    assert _legend(ax) == ["step loss", "test loss (epoch end)"]


def test_train_loss_plot_of_one_step_shows_it(drawn):
    """One epoch of full-batch gd: one step loss, drawn as a line of one point: nothing."""
    train_outputs.loss_png(_res([0.7], train_loss=[0.6]))
    line = _lines(drawn[0].axes[0])["step loss"]
    assert list(line.get_ydata()) == [0.7] and _visible_marker(line)


@pytest.mark.parametrize(
    "step, val, scale",
    [
        (np.full(6, 0.25), [0.25, 0.25], "log"),  # flat: a singular log range, widened
        (np.full(6, np.nan), [1.0, 0.9], "log"),
        (np.full(6, np.nan), [np.nan, np.inf], "linear"),  # nothing finite: log of no data
        ([0.5, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.9], "linear"),
        ([0.5, 0.1, -0.2, -0.3, -0.3, -0.4], [1.0, 0.9], "linear"),  # a loss below 0
    ],
)
def test_train_loss_plot_scale(drawn, step, val, scale):
    train_outputs.loss_png(_res(step, train_loss=[1.0, 1.0], val_loss=val))
    ax = drawn[0].axes[0]
    assert ax.get_yscale() == scale
    np.testing.assert_array_equal(_lines(ax)["step loss"].get_ydata(), step)


def test_train_accuracy_plot_names_every_set_and_the_best_epoch(drawn):
    acc = {"train_accuracy": [0.5], "val_accuracy": [np.nan], "test_accuracy": [0.4]}
    train_outputs.accuracy_png({"train_loss": [1.0], **acc}, best_epoch=1)
    ax = drawn[0].axes[0]
    assert _legend(ax) == ["train accuracy", "val accuracy", "test accuracy", "best epoch 1"]
    for key, v in acc.items():
        line = _lines(ax)[key.replace("_", " ")]
        np.testing.assert_array_equal(line.get_ydata(), v)
        assert _visible_marker(line)


def test_train_plots_of_a_long_run_stay_small():
    """10^5 steps over 10^4 epochs: each PNG under 300 kB (not timed: a loaded machine)."""
    g = np.random.default_rng(0)
    step = np.exp(-np.arange(100_000) / 3e4) * (1 + 0.3 * g.random(100_000))
    epochs = step[9::10]
    res = _res(step, train_loss=epochs, test_loss=epochs, train_accuracy=1 - epochs / 2)
    for draw, arg in ((train_outputs.loss_png, res), (train_outputs.accuracy_png, res.metrics)):
        assert 0 < len(draw(arg)) < 300_000


# ---- benchmarks: throughput and vmap scaling ----------------------------------------------


def _bench_results():
    rows = lambda k: {  # noqa: E731
        "numpy": {"label": "NumPy twin_ç", "examples_per_s": 1e4 * k},
        "nnjax_fused": {"label": "nnjax $ fused", "examples_per_s": 3e4 * k},
    }
    models = ("digits_ü", "mnist")
    mlp = [{"model": m, "batch_size": b, "rows": rows(b)} for m in models for b in (16, 64)]
    vmap = {"model": "moons_1", "rows": {"1": {"per_model_ms": 2.0}, "64": {"per_model_ms": 0.1}}}
    return {"device": "cpu_2 cores", "date": "2026-12-05", "mlp": mlp, "vmap": vmap}


def test_benchmark_plots_draw_the_input(tmp_path, monkeypatch):
    from benchmarks import plots

    figs, real = [], plots.atomic_save_figure
    keep = lambda f, *a, **k: figs.append(f) or real(f, *a, **k)  # noqa: E731
    monkeypatch.setattr(plots, "atomic_save_figure", keep)
    assert plots.throughput(_bench_results(), tmp_path / "t é.png")
    assert plots.vmap_scaling(_bench_results(), tmp_path / "v é.png")
    axes = figs[0].axes
    assert [ax.get_title() for ax in axes] == ["digits_ü", "mnist"]
    for ax in axes:
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        line = _lines(ax)["nnjax $ fused"]
        np.testing.assert_array_equal(line.get_xdata(), [16, 64])
        np.testing.assert_array_equal(line.get_ydata(), [3e4 * 16, 3e4 * 64])
    assert _legend(axes[-1]) == ["NumPy twin_ç", "nnjax $ fused"]
    (line,) = figs[1].axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 64])
    np.testing.assert_array_equal(line.get_ydata(), [2.0, 0.1])
    assert (tmp_path / "t é.png").stat().st_size > 1000


@pytest.mark.parametrize("fn", ["throughput", "vmap_scaling"])
def test_benchmark_plot_whose_save_fails_leaves_no_figure_open(tmp_path, fn):
    """The pyplot figure was closed after the save only: a failed save (here: the path is
    a folder) left it open in pyplot for the rest of the process."""
    from benchmarks import plots

    with pytest.raises(IsADirectoryError):
        getattr(plots, fn)(_bench_results(), tmp_path)
    # the autouse fixture checks plt.get_fignums()


def _run(code: str, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    e.update(PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_importing_the_benchmark_plots_keeps_the_process_backend():
    """``import benchmarks.plots`` called matplotlib.use("Agg"): a notebook that imported it
    lost its inline figures (and any GUI backend its process had chosen)."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import benchmarks.plots; "
        "print(matplotlib.get_backend())"
    )
    p = _run(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "svg"


@pytest.mark.parametrize("backend", ["TkAgg", "QtAgg", "pdf", "module://no_such_backend"])
def test_every_figure_renders_headless_with_any_mplbackend(tmp_path, backend):
    """No DISPLAY and an MPLBACKEND that is a GUI, a non-PNG or a missing module: the figures
    are stand-alone (no pyplot), so each renders a PNG all the same."""
    code = f"""
import sys, types, numpy as np
sys.path.insert(0, 'tests')
from test_plots_audit import _result, _curve, _res, _bench_results
from nnjax.compare import plot
from nnjax.commands import train_outputs as t
from benchmarks import plots
out = {str(tmp_path)!r}
plot.plot_all(_result(_curve('sgd')), out)
assert t.loss_png(_res([1.0, 0.5], train_loss=[0.5])).startswith(b'\\x89PNG')
assert plots.throughput(_bench_results(), out + '/t.png')
import matplotlib.pyplot as plt
assert plt.get_fignums() == []
print('ok')
"""
    p = _run(code, MPLBACKEND=backend)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def test_an_mplbackend_that_names_no_backend_is_ignored_with_a_warning():
    """MPLBACKEND=bogus (a typo): ``import matplotlib`` raised "Key backend: 'bogus' is not a
    valid value", so ``nnjax train --out`` trained, then wrote nothing at all. The figures
    need no backend: it is ignored with a warning naming it, and the environment is kept."""
    code = """
import os, types, warnings, numpy as np
from nnjax.commands import train_outputs as t
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    res = types.SimpleNamespace(step_loss=np.ones(4), metrics={'train_loss': np.ones(2)})
    png = t.loss_png(res)
assert png.startswith(b'\\x89PNG')
assert t.accuracy_png({'test_accuracy': [0.5]}).startswith(b'\\x89PNG')
print([str(x.message) for x in w if 'MPLBACKEND' in str(x.message)])
print(os.environ['MPLBACKEND'])
"""
    p = _run(code, MPLBACKEND="bogus")
    assert p.returncode == 0, p.stderr[-1500:]
    warned, env = p.stdout.strip().splitlines()
    assert "MPLBACKEND='bogus' is not a matplotlib backend; ignored" in warned
    assert env == "bogus"


def test_hypnogram_stage_names_are_plain_text():
    """A stage name with a '$' was parsed as mathtext: a ValueError with an empty first line
    at the save."""
    import io

    from nnjax.brain import hypnogram as hg

    fig = hg.plot_hypnogram([0, 1, 2, 1], names=("W", r"$\alpha_$", "R"))
    fig.savefig(io.BytesIO(), format="png")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["W", r"$\alpha_$", "R"]


def test_spectrogram_colours_span_the_finite_bins_and_refuse_none():
    """A nan bin made the colour limits nan (a blank image, silently); all-nan is refused."""
    from nnjax.brain import hypnogram as hg

    t, f = np.arange(5.0), np.arange(4.0)
    s = np.full((4, 5), np.nan)
    with pytest.raises(ValueError, match="plot_spectrogram: sxx has no finite value"):
        hg.plot_spectrogram(t, f, s)
    s[0, 0], s[1, 2] = 1.0, 10.0  # 0 and 10 dB
    fig = hg.plot_spectrogram(t, f, s)
    assert fig.axes[0].collections[0].get_clim() == pytest.approx((0.2, 9.8))
