"""``nnjax verify`` checks the optimizers and activations that take hyperparameters at values
other than their defaults too: a twin (or an nnjax wrapper) that ignored its momentum, betas,
eps, decay, slope or alpha passed every row at the defaults (a mutation audit found it)."""

import numpy as np

from nnjax.reference import activations as RA
from nnjax.reference import optim as RO
from nnjax.verify import checks as V


def _failing(rows):
    return [r.component for r in rows if not r.passed]


def test_a_twin_that_ignores_its_hyperparameters_fails_only_those_optimizer_rows(monkeypatch):
    for name, _ in V.OPTIMIZER_HYPERPARAMETERS:
        original = RO.OPTIMIZERS[name]
        monkeypatch.setitem(RO.OPTIMIZERS, name, lambda lr, f=original, **kw: f(lr))
    rows = V.check_optimizers(steps=20)
    hyper = [
        f"optimizer {n} ({', '.join(f'{k}={v:g}' for k, v in kw.items())}): 20 steps"
        for n, kw in V.OPTIMIZER_HYPERPARAMETERS
    ]
    assert _failing(rows) == hyper
    assert "optimizer adam (b1=0.5, b2=0.9, eps=0.001): 20 steps" in hyper
    assert {n for n, _ in V.OPTIMIZER_HYPERPARAMETERS} == {
        "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
    }  # fmt: skip
    for r in rows:  # each optimizer's every hyperparameter differs from its default
        assert r.max_abs > 1e-6 if r.component in hyper else r.max_abs < 1e-12


def test_an_activation_twin_that_ignores_its_parameter_fails_only_that_row(monkeypatch):
    for name in ("leaky_relu", "elu"):
        f, df = RA.ACTIVATIONS[name]
        monkeypatch.setitem(
            RA.ACTIVATIONS, name, (lambda z, f=f, **kw: f(z), lambda z, df=df, **kw: df(z))
        )
    rows = V.check_activations(np.random.default_rng(0))
    assert _failing(rows) == [
        "activation leaky_relu (negative_slope=0.2)",
        "activation elu (alpha=0.5)",
    ]
