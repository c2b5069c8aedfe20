"""Faults injected into ``nnjax verify`` and its NumPy twins that the rest of the suite let
pass (mutation audit): each test injects a plausible fault into a twin (monkeypatch) and
requires verify's row to FAIL, or holds a result against a closed form."""

import jax
import numpy as np
import pytest

from nnjax import verify as V
from nnjax.reference import activations as RA
from nnjax.reference import layers as RLay
from nnjax.reference import losses as RL
from nnjax.reference import norm as RN
from nnjax.reference import optim as RO
from nnjax.verify import checks, layer_rows, networks, problems


def _failing(rows):
    return [r.component for r in rows if not r.passed]


# --- the comparison: a tree is as wrong as its worst leaf, wherever that leaf is -----------


def test_a_tree_is_judged_by_its_worst_leaf_not_its_last():
    """tree_diff and check_tree took the max over the leaves; keeping only the last leaf's
    relative difference (max_rel = rel) passed every other test, whose wrong leaf was last."""
    good, bad = np.array([2.0, -1.0]), np.array([1.0 + 1e-6, 3.0])
    expected = [np.array([1.0, 3.0]), good]
    max_abs, max_rel = V.tree_diff([bad, good], expected)
    assert max_abs == pytest.approx(1e-6, rel=1e-6) and max_rel == pytest.approx(1e-6 / 3, rel=1e-6)
    row = V.check_tree("t", [bad, good], expected)
    assert not row.passed and row.max_rel == pytest.approx(1e-6 / 3, rel=1e-6)
    assert not V.check("t", [bad, good], expected, V.RTOL64).passed


def test_make_problem_scales_the_output_layer_for_extreme_logits():
    """Arch.logit_scale scales the output layer only (1e4: std 1e4 sqrt(2/40) = 2236), so the
    MLP rows meet huge logits; never scaling it passed every other test."""
    arch = V.Arch(50, (40, 30), 8, "tanh", None, "softmax_cross_entropy", "labels", True, 1e4)
    params, _, _ = V.make_problem(arch, np.random.default_rng(0))
    assert 1.5e3 < params[-1]["W"].std() < 3e3 and params[0]["W"].std() < 1.0


# --- finite differences: the twin's gradient, not finite differences against themselves -----


def test_the_finite_difference_row_fails_a_1e_5_fault_in_the_twin_gradient(monkeypatch):
    """The row holds the twin's backward against central differences (h = 1e-6) of its
    forward to FD_RTOL = 1e-6: the true twin agrees to ~6e-10, a dJ/dW 1e-5 too large fails.
    (FD_RTOL 1e-3, or the row checking fd against fd, passed every other test.)"""
    arch = V.Arch(3, (4, 3), 5, "tanh", None, "mse", "match")
    row = checks.finite_difference_check(arch, np.random.default_rng(0))
    assert row.passed and row.tol == 1e-6 and 0 < row.max_rel < 1e-8
    models = problems.models

    def faulty(arch):
        model, (forward, backward) = models(arch)

        def wrong_backward(dout, cache):
            dx, grads = backward(dout, cache)
            return dx, [{k: v * (1 + 1e-5) for k, v in g.items()} for g in grads]

        return model, (forward, wrong_backward)

    monkeypatch.setattr(checks, "models", faulty)
    row = checks.finite_difference_check(arch, np.random.default_rng(0))
    assert not row.passed and row.max_rel == pytest.approx(1e-5, rel=1e-2)


# --- the ReLU rows: each must fail its own wrong derivative ----------------------------------


def test_the_relu_rows_fail_max0z_and_a_step_that_is_1_at_the_kink(monkeypatch):
    """Row 1 holds relu_derivative against finite differences of relu, row 2 relu'(0) against
    jax.grad; with either row comparing the twin with itself, both faults passed."""
    rng = np.random.default_rng(0)

    def wrong_body(df):  # the function itself is wrong: the registry holds it too
        monkeypatch.setattr(RA, "relu_derivative", df)
        monkeypatch.setitem(RA.ACTIVATIONS, "relu", (RA.relu, df))

    wrong_body(RA.relu_derivative_wrong)
    assert _failing(checks.check_relu_derivative(rng)) == ["relu' = 1[z > 0] vs finite differences"]
    wrong_body(lambda z: (np.asarray(z) >= 0) * 1.0)
    assert _failing(checks.check_relu_derivative(rng)) == ["relu'(0) = 0 vs jax.grad(relu)(0)"]


# --- the activation and loss rows: their inputs reach the ranges that break naive twins ------


def _naive_softplus(z):
    with np.errstate(over="ignore"):
        return np.log1p(np.exp(np.asarray(z, np.float64)))


def test_the_activation_rows_fail_a_softplus_that_overflows_at_1e4(monkeypatch):
    """log(1 + e^z) agrees with softplus to 1e-16 for the N(0, 8^2) draws and is inf at
    z = 1e4: only the fixed extremes among verify's inputs (dropped, every row passed) show it."""
    monkeypatch.setitem(RA.ACTIVATIONS, "softplus", (_naive_softplus, RA.softplus_derivative))
    assert _failing(checks.check_activations(np.random.default_rng(0))) == ["activation softplus"]


def test_the_loss_rows_check_the_sum_reduction(monkeypatch):
    """A twin gradient that always divides by n fails every "sum" row and no "mean" row (with
    the rows run for "mean" only, it passed)."""
    monkeypatch.setattr(RL, "_grad_scale", lambda n, reduction: 1.0 / max(n, 1))
    rows = checks.check_losses(np.random.default_rng(0))
    sums = [r.component for r in rows if r.component.endswith(" sum")]
    assert len(sums) == len(rows) // 2 and _failing(rows) == sums


def test_the_loss_rows_fail_a_cross_entropy_that_takes_log_of_softmax(monkeypatch):
    """-sum t log(softmax z) is right for ordinary logits and NaN or inf where softmax
    underflows to 0: only the rows with logits x 1e4 show it."""
    _, grad = RL.LOSSES["softmax_cross_entropy"]

    def naive(z, t, reduction="mean"):
        t = np.eye(z.shape[-1])[t] if np.ndim(t) == 1 else t
        with np.errstate(divide="ignore", invalid="ignore"):
            return RL._reduce(-np.sum(t * np.log(RA.softmax(z)), axis=-1), reduction)

    monkeypatch.setitem(RL.LOSSES, "softmax_cross_entropy", (naive, grad))
    failed = _failing(checks.check_losses(np.random.default_rng(0)))
    assert failed and all(c.startswith("loss softmax_cross_entropy extreme") for c in failed)


# --- optimizers and fit: both sides get the hyperparameters; the twin's side is returned -----


def test_optimizer_trajectory_gives_the_hyperparameters_to_both_sides():
    """Two momentum steps with mu = 0.5 and one adamw step with weight decay 0.5 and eps 1,
    in closed form; both sides dropping them (Optax's and the twin's defaults) agreed."""
    rng = np.random.default_rng(1)  # optimizer_trajectory's start
    start = [rng.normal(size=(3, 4)), rng.normal(size=5), rng.normal(size=2)]
    g = lambda t: 2 * t + np.sin(3 * t) - 0.5  # noqa: E731
    lr, mu = 0.1, 0.5
    one = [t - lr * g(t) for t in start]
    two = [t1 - lr * (g(t1) + mu * g(t0)) for t0, t1 in zip(start, one)]
    adamw = [t - lr * (g(t) / (np.abs(g(t)) + 1.0) + 0.5 * t) for t in start]
    cases = [("momentum", 2, {"momentum": mu}, two)]
    cases.append(("adamw", 1, {"weight_decay": 0.5, "eps": 1.0}, adamw))
    for name, steps, hp, want in cases:
        jp, rp = checks.optimizer_trajectory(name, steps, lr, **hp)
        for side in (jp, rp):
            got = [side["w"][0], side["w"][1], side["b"][0]]
            for a, e in zip(got, want):
                np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


def test_a_1e_7_learning_rate_fault_in_the_twin_fails_the_trajectory_row(monkeypatch):
    """20 sgd steps with the twin's rate 1e-7 too large move params by ~6e-8: beyond
    TRAJ_ATOL = 1e-9 (a TRAJ_ATOL of 1e-6 passed it)."""
    sgd = RO.OPTIMIZERS["sgd"]
    monkeypatch.setitem(RO.OPTIMIZERS, "sgd", lambda lr, **kw: sgd(lr * (1 + 1e-7), **kw))
    jp, rp = checks.optimizer_trajectory("sgd", 20)
    row = V.check("sgd", jp, rp, V.TRAJ_ATOL, "abs")
    assert not row.passed and 1e-8 < row.max_abs < 1e-6


def test_compare_fit_returns_the_twins_params_and_losses(monkeypatch):
    """With the twin's sgd rate 1e-5 too large, fit's and the twin's params and losses
    differ (losses from the second step on); compare_fit returning fit's losses or params
    twice passed every other test."""
    sgd = RO.OPTIMIZERS["sgd"]
    monkeypatch.setitem(RO.OPTIMIZERS, "sgd", lambda lr, **kw: sgd(lr * (1 + 1e-5), **kw))
    fp, rp, fl, rl = problems.compare_fit("sgd", 16, 1)
    assert fl.shape == rl.shape == (3,) and abs(fl[0] - rl[0]) < 1e-14
    assert not V.check("params", fp, rp, V.TRAJ_ATOL, "abs").passed
    assert not V.check("losses", fl, rl, V.TRAJ_ATOL, "abs").passed


def test_the_fit_rows_cover_full_batch_and_a_dropped_remainder(monkeypatch):
    """check_fit runs fit full-batch (gd) and at a batch size that leaves a remainder of the
    48 rows (10): a full-batch row turned into batches of 16 passed every other test."""
    seen = []

    def fake(optimizer, batch_size, epochs, dtype=np.float64):
        seen.append((optimizer, batch_size))
        p, losses = [{"W": np.ones(2)}], np.ones(3)
        return p, p, losses, losses

    monkeypatch.setattr(checks, "compare_fit", fake)
    rows = checks.check_fit()
    assert ("gd", None) in seen and any(b and 48 % b for _, b in seen)
    assert "fit gd full batch: params" in [r.component for r in rows]


def test_the_float32_row_runs_float32_and_fails_a_1e_3_fault(monkeypatch):
    """JAX in float32 against the float64 twin differs by float32's rounding (above 1e-9,
    below RTOL32 = 1e-4), also with x64 on; a twin 1e-3 off fails (RTOL32 1e-2 passed it)."""
    seen = {}
    ref = checks.ref_loss_and_grads

    def faulty(*args):
        seen["ref"] = ref(*args)
        out, J, gp, dx = seen["ref"]
        return out * (1 + 1e-3), J, gp, dx

    jax_side = checks.jax_loss_and_grads
    monkeypatch.setattr(checks, "ref_loss_and_grads", faulty)
    monkeypatch.setattr(checks, "jax_loss_and_grads", lambda *a: seen.setdefault("j", jax_side(*a)))
    same = lambda *a, **k: ([np.ones(2)], [np.ones(2)], np.ones(2), np.ones(2))  # noqa: E731
    monkeypatch.setattr(checks, "compare_fit", same)
    with jax.enable_x64(True):  # as under JAX_ENABLE_X64=1: the row still runs float32
        rows = checks.check_float32(np.random.default_rng(0))
    assert _failing(rows) == [rows[0].component]
    true = V.check("float32", seen["j"], seen["ref"], V.RTOL32)
    assert true.passed and 1e-9 < true.max_rel < 1e-4


def test_the_twin_training_loop_stops_at_the_first_non_finite_loss():
    """reference.train raises FloatingPointError naming the step whose loss is not finite
    (without the check it returned inf and NaN losses and params)."""
    from nnjax.reference.mlp import mlp
    from nnjax.reference.train import train

    forward, backward = mlp([1])
    X, y = np.array([[1e3], [-2e3]]), np.array([[1.0], [0.0]])
    params = [{"W": np.ones((1, 1)), "b": np.zeros(1)}]
    where = r"^train: the loss became (inf|nan) at step \d+$"
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match=where):
        train(forward, backward, params, X, y, loss="mse", optimizer="sgd",
              learning_rate=10.0, batch_indices=[None] * 50)  # fmt: skip


# --- the layer rows: JAX against the twin, each over what it names ---------------------------


def test_the_running_statistics_row_fails_a_biased_variance(monkeypatch):
    """A twin keeping the biased batch variance (no m/(m-1)) fails the running-statistics
    row itself, not only the evaluation row that reads the twin's statistics."""

    def biased(state, x, momentum=0.1):
        axes = tuple(range(x.ndim - 1))
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        new = {"mean": mu, "var": var}
        return {k: (1 - momentum) * state[k] + momentum * v for k, v in new.items()}

    monkeypatch.setattr(RN, "batch_norm_update", biased)
    rows = layer_rows.check_batch_norm_state(np.random.default_rng(0), steps=3)
    assert _failing(rows)[0] == "BatchNorm running statistics, 3 steps"


def test_the_embedding_row_fails_a_twin_that_counts_a_repeated_id_once(monkeypatch):
    """dW[ids] += dout (buffered) keeps one gradient per repeated id; the row compares JAX's
    dJ/dW with the twin's (not with itself)."""
    good = RLay.embedding

    def buffered(n, f):
        pair = good(n, f)

        def backward(dout, cache):
            ids, shape, dtype = cache
            dW = np.zeros(shape, dtype)
            dW[ids] += dout
            return np.zeros(ids.shape), {"W": dW}

        return pair._replace(backward=backward)

    monkeypatch.setattr(RLay, "embedding", buffered)
    (row,) = layer_rows.check_embedding(np.random.default_rng(0))
    assert not row.passed and row.component == "layer Embedding: output, dJ/dW"


def test_check_network_twins_compares_n_networks(monkeypatch):
    """n random networks, each its own spec and seed (a loop cut short passed every test)."""
    calls = []
    stub = lambda spec, shape, seed, label: calls.append((spec, seed, label)) or []  # noqa: E731
    monkeypatch.setattr(networks, "compare_network", stub)
    networks.check_network_twins(np.random.default_rng(0), 5)
    assert [c[2].split(" (")[0] for c in calls] == [f"random network {i}" for i in range(5)]
    assert len({c[1] for c in calls}) == 5


# --- the command: the figures under their own headings ---------------------------------------


def test_the_table_prints_the_absolute_then_the_relative_difference(monkeypatch, capsys):
    """The columns read "max abs diff", "max rel diff": a row's two figures in that order
    (printed swapped, every other test passed)."""
    import argparse
    import re

    from nnjax.commands import verify as command

    rows = [V.Check("activation relu", 1.25e-12, 3.5e-11, 1e-10)]
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr(V, "run_all", lambda seed, architectures, **kw: rows)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["--architectures", "0"])) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(ln for ln in lines if "max abs diff" in ln)
    assert head.index("max abs diff") < head.index("max rel diff")
    line = next(ln for ln in lines if "activation relu" in ln)
    assert re.findall(r"\d\.\d\de-\d\d", line) == ["1.25e-12", "3.50e-11"]
