"""Audit of nnjax under JAX's runtime debugging settings.

``jax.debug_nans(True)`` (``JAX_DEBUG_NANS=1``) and ``jax.debug_infs``: ``fit`` compiled its
programs ahead of time, whose calls JAX does not re-run de-optimized, so a diverging run
raised JAX's private ``InternalFloatingPointError(('jit(run)', 'nan'))``: no
``except FloatingPointError`` caught it, and ``nnjax train`` printed a 60-line traceback
with status 1. Now the programs go through ``jax.jit`` there: ``FloatingPointError``, and
the command says it in one line with the divergence status 4.

``python -W error`` (``PYTHONWARNINGS=error``): a warning of nnjax's own became a traceback;
now one line naming it, status 1. ``JAX_PLATFORMS`` naming a backend that cannot start:
``nnjax verify`` gave FAIL rows; now the one line of the other commands."""

import functools
import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

import nnjax
from nnjax.cli import main


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    model = nnjax.mlp([8, 2])
    _, params = model.init(jax.random.key(0), (-1, 4))
    return model, params, X, y


def _fit_kw(execution: str) -> dict:
    return dict(optimizer="sgd", learning_rate=1e30, epochs=2, batch_size=16, execution=execution)


@functools.cache
def _settings_off(execution: str) -> np.ndarray:
    """The runs with both settings off, the same for debug_nans and debug_infs (run once per
    execution): the diverging run stopped by nnjax's own check, and the finite run's losses."""
    model, params, X, y = _problem()
    kw = _fit_kw(execution)
    with pytest.raises(nnjax.errors.DivergenceError):  # the setting off: nnjax's own check
        nnjax.fit(model, params, X, y, **kw)
    return nnjax.fit(model, params, X, y, **{**kw, "learning_rate": 0.1}).step_loss


@pytest.mark.parametrize("execution", ["fused", "chunked:2"])
@pytest.mark.parametrize("setting", [jax.debug_nans, jax.debug_infs])
def test_fit_under_debug_nans_raises_floating_point_error(execution, setting):
    want = _settings_off(execution)
    model, params, X, y = _problem()
    kw = _fit_kw(execution)
    with setting(True), pytest.raises(FloatingPointError, match=r"^invalid value \((nan|inf)\)"):
        nnjax.fit(model, params, X, y, **kw)
    with setting(True):  # a run that stays finite is unchanged
        got = nnjax.fit(model, params, X, y, **{**kw, "learning_rate": 0.1})
    np.testing.assert_allclose(got.step_loss, want, rtol=1e-6)


def test_train_command_under_debug_nans_fails_in_one_line_with_status_4(tmp_path, capsys):
    _, _, X, y = _problem()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    args = ["train", "--data", str(tmp_path / "d.npz"), "--epochs", "2", "--batch-size", "16"]
    args += ["--optimizer", "sgd", "--lr", "1e30", "--out", str(tmp_path / "r")]
    with jax.debug_nans(True):
        status = main([*args, "--no-cache"])
    err = capsys.readouterr().err
    assert status == nnjax.errors.EXIT_DIVERGENCE
    assert "Traceback" not in err
    assert "nnjax train: error: invalid value (nan) encountered in " in err


@pytest.fixture(scope="module")
def float64_model(tmp_path_factory):
    """A model trained and saved under ``JAX_ENABLE_X64=1`` (float64 params) and its data."""
    folder = tmp_path_factory.mktemp("x64")
    _, _, X, y = _problem()
    np.savez(folder / "d.npz", X=X, y=y)
    with jax.enable_x64(True):
        args = ["train", "--data", str(folder / "d.npz"), "--epochs", "1", "--no-cache"]
        assert main([*args, "--out", str(folder / "m")]) == 0
    with np.load(folder / "m" / "params.npz") as saved:
        assert {saved[k].dtype for k in saved.files} == {np.dtype(np.float64)}
    return folder


def test_a_warning_made_an_error_is_one_line_not_a_traceback(float64_model, capsys):
    """``python -W error -m nnjax predict`` on a float64 model with x64 off: nnjax's own
    warning raised a UserWarning traceback (status 1); now one line naming it."""
    args = ["predict", str(float64_model / "m"), "--data", str(float64_model / "d.npz")]
    assert main(args) == 0  # the warning, in one line, that names the variable to set
    err = capsys.readouterr().err
    assert err.startswith("nnjax predict: warning: ") and "JAX_ENABLE_X64=1" in err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = main(args)
    out, err = capsys.readouterr()
    assert status == 1 and out == "" and "Traceback" not in err
    assert err.startswith("nnjax predict: error: UserWarning made an error by -W error: ")
    assert err.count("\n") == 1 and "saved in float64" in err


def test_verify_with_a_platform_that_cannot_start_is_one_line_not_fail_rows(tmp_path):
    """``JAX_PLATFORMS=gpu nnjax verify`` on a CPU machine ('bogus' stands for it anywhere)
    gave 10 FAIL rows, each JAX's backend error (status 1, as if nnjax's maths were wrong);
    train, predict, compare and info said it in one line, status 2, as verify now does."""
    env = {**os.environ, "JAX_PLATFORMS": "bogus", "NNJAX_CACHE_DIR": "off"}
    cmd = [sys.executable, "-m", "nnjax", "verify", "--architectures", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "FAIL" not in r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(
        "nnjax verify: error: JAX_PLATFORMS='bogus': JAX cannot start it ("
    )


def _xor_study():
    from nnjax.compare import make_study, run_optimizer_study

    kw = {"optimizers": ("sgd",), "learning_rates": {"sgd": (0.1,)}}
    return run_optimizer_study(make_study("xor", **kw, seeds=(0,), epochs=1, batch_size=4))


def test_a_comparison_under_x64_says_it_ran_in_float64():
    """Under jax_enable_x64 a comparison's numbers differ (the initial weights are drawn in
    float64); runs.json and the report said nothing of it."""
    from nnjax.compare import files
    from nnjax.compare.report import markdown

    plain = _xor_study()
    with jax.enable_x64(True):
        wide = _xor_study()
    assert files.to_json(plain)["study"]["dtype"] == "float32"
    assert files.to_json(wide)["study"]["dtype"] == "float64"
    model = [ln for ln in markdown(wide).splitlines() if ln.startswith("* Model: ")]
    assert model and "softmax cross-entropy, in float64; 2 features" in model[0]
    plain_model = [ln for ln in markdown(plain).splitlines() if ln.startswith("* Model: ")]
    assert plain_model and "float" not in plain_model[0]


def test_the_train_banner_says_float64_under_x64():
    from nnjax.commands.info import banner

    assert "float64" not in banner()
    with jax.enable_x64(True):
        assert banner().endswith(" | float64 (jax_enable_x64 on)")
