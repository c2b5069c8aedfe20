"""Measurement defects of the benchmark suite found by an audit: each test failed before its
fix. No timing is asserted."""

import json
import subprocess
import types

import numpy as np
import pytest

from benchmarks import mlp, nets, startup, targets, workloads
from benchmarks.check import Mismatch, compare
from benchmarks.problem import Problem, digits_data


def _params(w):
    return [{"W": np.asarray(w, np.float32), "b": np.zeros(2, np.float32)}]


def test_a_nan_param_fails_the_check():
    """nan > tol is False: a run whose last update made a param nan passed (finite losses:
    each loss is taken before its step's update)."""
    p0, ref = _params([[0.0, 0.0]]), _params([[1.0, 1.0]])
    bad = _params([[1.0, np.nan]])
    losses = np.array([2.3, 2.2], np.float32)
    with pytest.raises(Mismatch, match="param 0"):
        compare("x", bad, losses, ref, losses, p0)
    compare("x", ref, losses, ref, losses, p0)  # the right one passes


def _net_problem(steps=40):
    return types.SimpleNamespace(steps=steps, label="cnn B=100", params0=_params([[0.0, 0.0]]))


def test_a_cnn_or_gru_row_with_a_nan_loss_or_fewer_steps_fails_its_check():
    p = _net_problem()
    twin = (_params([[1.0, 1.0]]), np.full(40, 2.3, np.float32))
    nan3 = twin[1].copy()
    nan3[3] = np.nan
    with pytest.raises(Mismatch, match="step 3"):  # a torch row: the first 8 losses checked
        nets._check(p, "torch", (twin[0], nan3), twin, None)
    nan0 = twin[1].copy()
    nan0[0] = np.nan
    with pytest.raises(Mismatch):  # Equinox's GRU: the first loss alone
        nets._check(p, "equinox", (None, nan0), twin, None)
    with pytest.raises(Mismatch, match="8 losses for 40 steps"):  # timed on 8 steps of 40
        nets._check(p, "torch", (twin[0], twin[1][:8]), twin, None)
    assert nets._check(p, "torch", twin, twin, None)["steps_checked"] == 8


def test_the_cnn_twins_single_call_is_not_labelled_a_median_of_rounds():
    assert "no rounds" in nets.impls()["numpy"][0]


def test_the_twin_is_the_oracle_whatever_the_order_of_the_implementations():
    """The first implementation named was the oracle: with pure_jax first, the twin's row was
    "checked" against the JAX step, and the JAX step's against itself (error 0)."""
    X, y = digits_data()
    p = Problem("digits 64-256-256-10", X[:64], y[:64], [16, 10], 32, 1)
    res = mlp.bench_problem(
        p, ["pure_jax", "numpy"], repeats=1, pause=0.0, memory=False, log=lambda *a: None
    )
    assert res["rows"]["numpy"]["check"]["max_loss_rel_err"] == 0.0
    assert list(res["rows"]) == ["numpy", "pure_jax"]


def test_a_scaling_mismatch_stops_the_suite(tmp_path, monkeypatch):
    """benchmarks.scaling exits 1 when a device count's final loss is off; the suite kept
    going and wrote a report that said only "exit status 1"."""
    out = tmp_path / "s.json"

    def fake_run(cmd, **kw):
        out.write_text(json.dumps({"loss_max_abs_diff_vs_1": 3e-3}))
        return subprocess.CompletedProcess(cmd, 1, "final loss ... MISMATCH", "")

    monkeypatch.setattr(workloads.subprocess, "run", fake_run)
    with pytest.raises(Mismatch, match="scaling"):
        workloads.run_scaling(out)

    def fake_ok(cmd, **kw):
        out.write_text(json.dumps({"loss_max_abs_diff_vs_1": 0.0}))
        return subprocess.CompletedProcess(cmd, 0, "OK", "")

    monkeypatch.setattr(workloads.subprocess, "run", fake_ok)
    assert workloads.run_scaling(out)["returncode"] == 0


def _peak_results(peak, fused_gflops, anatomy=None):
    rows = {"nnjax_fused": {"gflops": fused_gflops}}
    res = {
        "peak": {"peak_gflops": peak, "peak_n": "2048", "sizes": {}},
        "mlp": [{"model": "synthetic 784-256-256-10", "batch_size": 1024, "rows": rows}],
    }
    if anatomy is not None:
        res["anatomy"] = [{"matmuls": {"fwd 1": {"gflops": anatomy, "ms": 1.0}}}]
    return res


def test_the_peak_is_the_fastest_plain_matmul_of_the_run():
    """2026-12-03: square n = 2048 ran at 127.7 GFLOP/s, the anatomy's (1024,256)x(256,256)
    at 149.8, and the fused MLP at 135.1 read "106% of the peak" with the 75% target holding."""
    res = _peak_results(127.7, 135.1, anatomy=149.8)
    workloads.peak_from_anatomy(res)
    assert res["peak"]["peak_gflops"] == 149.8 and res["peak"]["square_peak_gflops"] == 127.7
    t = targets._peak_target(res)
    assert "= 90%" in t["measured"] and t["holds"] is True
    # no anatomy (a partial run): above the peak gets no verdict
    t = targets._peak_target(_peak_results(127.7, 135.1))
    assert t["holds"] is None and "above the measured peak" in t["measured"]


def test_the_second_runs_compile_is_shown_to_the_digits_nnjax_train_prints():
    pair = {"first_compile": 1.2, "first_wall": 5.7, "second_wall": 2.86, "speedup": 1.99}
    res = {
        "startup": {
            "repeats": 5,
            "cli": "nnjax",
            "rows": {n: {"median": 0.1, "min": 0.1, "max": 0.1} for n in ("a",)},
            "train": [{**pair, "second_compile": 0.05}],
        }
    }
    assert "| 2.86 / 0.05 |" in "\n".join(startup.markdown(res))
    res["startup"]["rows"] = {
        n: {"median": 0.1, "min": 0.1, "max": 0.1} for n in ("nnjax --help", "import nnjax")
    }
    got = {t["target"]: t for t in startup.targets(res)}
    assert got["second identical nnjax train: compile under 0.2 s"]["measured"].startswith("0.05 s")


def test_adam_params_are_checked_in_the_frobenius_norm_and_still_catch_a_wrong_rate():
    # Adam turns a gradient that cancels to rounding level into a full step in either
    # direction: one entry apart by more than the largest movement, the norm barely apart
    rng = np.random.default_rng(0)
    p0 = {"W": np.zeros((64, 64), np.float32)}
    step = np.sign(rng.standard_normal((64, 64))).astype(np.float32) * 1e-3
    twin = {"W": p0["W"] + 5 * step}
    flipped = twin["W"].copy()
    flipped[0, 0] = -flipped[0, 0]  # one sign decided otherwise by rounding
    losses = [1.0, 0.9]
    with pytest.raises(Mismatch, match="differs from the NumPy twin"):
        compare("adam", {"W": flipped}, losses, twin, losses, p0)
    errs = compare("adam", {"W": flipped}, losses, twin, losses, p0, param_norm="fro")
    assert errs["max_param_err_vs_moved"] == pytest.approx(2 / 64, rel=1e-3)
    wrong_rate = {"W": p0["W"] + 1.1 * 5 * step}  # a 10% larger learning rate
    with pytest.raises(Mismatch, match="Frobenius norms"):
        compare("adam", wrong_rate, losses, twin, losses, p0, param_norm="fro")


def test_the_mlp_workload_runs_adam_at_its_usual_rate():
    assert workloads.MLP_RATES == {"sgd": 0.01, "adam": 1e-3}
