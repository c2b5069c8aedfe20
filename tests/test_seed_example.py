"""The seed article's logistic regression, reproduced exactly (float64)."""

import importlib.util
import pathlib

import jax
import numpy as np

import nnjax

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "seed_logistic_regression.py"


def _example():
    spec = importlib.util.spec_from_file_location("seed_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_seed_example_numbers():
    ex = _example()
    with jax.enable_x64(True):
        X, y = nnjax.data.toy()
        X = X.astype(np.float64)
        theta_np = ex.numpy_seed_loop(X, y)
        params, pred = ex.nnjax_seed_fit(X, y)
    theta = float(params["W"][0, 0])
    assert abs(theta - 0.39785243488382044) < 1e-12
    assert abs(theta - theta_np[0]) < 1e-12
    np.testing.assert_allclose(pred, [0.5, 0.598, 0.689, 0.767, 0.831, 0.880], atol=5e-4)
    assert (pred >= 0.5).all()  # without a bias nothing is ever predicted as class 0


def test_seed_example_script_runs(capsys):
    _example().main([])
    out = capsys.readouterr().out
    assert "0.3978524348838" in out and "NumPy loop" in out
