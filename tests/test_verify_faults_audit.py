"""Faults injected into one side of ``nnjax verify`` (a JAX default, a twin's derivative, a
twin's optimizer) must fail verify's row that names the culprit, and only that row; and
verify's own comparison must not be weakened (a tolerance loosened, a side compared with
itself, a row dropped, a NaN difference passing). Each test fails on a one-line fault in
nnjax/verify that the rest of the suite let pass."""

import math
import re

import jax
import numpy as np
import pytest

from nnjax import activations as A
from nnjax import layers as JL
from nnjax import optim as O
from nnjax import verify as V
from nnjax.reference import activations as RA
from nnjax.reference import optim as RO
from nnjax.verify import checks, layer_rows, layers, problems


def _failing(rows):
    return [r.component for r in rows if not r.passed]


# --- defaults: a hyperparameter default changed on one side only ---------------------------


def test_verify_passes_the_defaults_rows_on_the_shipped_code():
    rows = V.check_registries()
    defaults = [r for r in rows if r.component.startswith("defaults of the")]
    assert [r.component.split()[3] for r in defaults] == [
        "activations",
        "losses",
        "layers",
        "optimizers",
    ]
    assert not _failing(rows)


def test_a_layer_default_changed_on_the_jax_side_fails_the_defaults_row_naming_it(monkeypatch):
    """LayerNorm's eps 1e-5 -> 1e-3 in nnjax/layers/norm.py passed all 193 rows of
    ``nnjax verify`` (every layer row builds the twin from JAX's own spec, eps included);
    PyTorch's and the twin's default is 1e-5."""
    monkeypatch.setitem(JL.LayerNorm.__kwdefaults__, "eps", 1e-3)
    assert JL.LayerNorm().spec[1]["eps"] == 1e-3  # the fault is real: the layer uses it
    bad = _failing(V.check_registries())
    assert bad == ["defaults of the layers equal the twins' ['LayerNorm eps: 0.001 vs twin 1e-05']"]


def test_an_optimizer_or_twin_activation_default_changed_fails_naming_it(monkeypatch):
    """A positional default (adam's b2) on the JAX side, and a derivative's default on the
    twin's side (leaky_relu_derivative's slope, which its value function does not share)."""
    monkeypatch.setattr(O._adam, "__defaults__", (0.9, 0.99, 1e-8))
    monkeypatch.setattr(RA.leaky_relu_derivative, "__defaults__", (0.02,))
    bad = _failing(V.check_registries())
    assert bad == [
        "defaults of the activations equal the twins' ['leaky_relu negative_slope: 0.01 vs twin "
        "0.02']",
        "defaults of the optimizers equal the twins' ['adam b2: 0.99 vs twin 0.999']",
    ]


def test_default_mismatches_compares_numbers_by_value_and_bools_by_identity():
    def jax_side(x, *, k=1, flag=True, pad="SAME"):
        return x

    def twin(x, *, k=1.0, flag=1, pad="VALID", extra=3):
        return x

    got = checks.default_mismatches({"f": jax_side}, {"f": twin})
    assert got == ["f flag: True vs twin 1", "f pad: 'SAME' vs twin 'VALID'"]


# --- verify's own comparison: a small fault in one twin fails exactly its row --------------


@pytest.mark.parametrize("side", ["value", "vjp"])
def test_a_3e_8_relative_fault_in_one_activation_twin_fails_that_row_only(side, monkeypatch):
    """Kills a loosened RTOL64 (1e-4 let it pass), a row compared with itself, a row
    dropped from the activations (every name must have its row), and a gradient left out
    of the comparison (``side`` "vjp": the values are right, only the derivative is off)."""
    original = getattr(RA, side)

    def faulty(name, *args):
        out = original(name, *args)
        return out * (1 + 3e-8) if name == "silu" else out

    monkeypatch.setattr(RA, side, faulty)
    rows = V.check_activations(np.random.default_rng(0))
    names = [f"activation {n}" for n in A.ACTIVATIONS]
    assert [r.component for r in rows][: len(names)] == names
    assert _failing(rows) == ["activation silu"]
    silu = rows[list(A.ACTIVATIONS).index("silu")]
    assert silu.tol == 1e-10 and silu.max_rel == pytest.approx(3e-8, rel=1e-3)


@pytest.mark.parametrize("part", ["dJ/dparams", "dJ/dX", "loss"])
def test_a_fault_in_the_mlp_twin_fails_the_row_of_that_part(part, monkeypatch):
    """compare_mlp's output, loss, dJ/dparams and dJ/dX rows each hold the JAX side against
    the twin's (not against itself): a 1e-8 relative fault in one part fails its row."""
    arch = V.Arch(3, (4, 2), 5, "tanh", None, "softmax_cross_entropy", "labels")
    original = problems.ref_loss_and_grads
    index = ("output", "loss", "dJ/dparams", "dJ/dX").index(part)

    def faulty(*args):
        parts = list(original(*args))
        parts[index] = jax.tree.map(lambda a: a * (1 + 1e-8), parts[index])
        return tuple(parts)

    monkeypatch.setattr(problems, "ref_loss_and_grads", faulty)
    rows = V.compare_mlp(arch, 0)
    assert [c.rsplit(": ", 1)[1] for c in _failing(rows)] == [part]
    assert [r.component.rsplit(": ", 1)[1] for r in rows] == [
        "output",
        "loss",
        "dJ/dparams",
        "dJ/dX",
    ]


def test_a_fault_in_a_layer_twin_s_parameter_gradient_fails_the_dparams_row(monkeypatch):
    """compare_network's dJ/dparams row (the random networks of ``nnjax verify``) compares
    JAX's gradient to the twin's backward: a 1e-8 relative fault in dJ/dW fails it."""
    twin_of = layers.twin_of

    def faulty_twin(spec):
        pair = twin_of(spec)

        def backward(dout, cache):
            dx, grads = pair.backward(dout, cache)
            return dx, {k: v * (1 + 1e-8) for k, v in grads.items()}

        return pair._replace(backward=backward)

    monkeypatch.setattr(layers, "twin_of", faulty_twin)
    rows = V.compare_network(("Dense", {"features": 3}), (4, 5), 0)
    assert _failing(rows) == ["Dense: dJ/dparams"]


def test_a_fault_in_one_twin_optimizer_fails_its_trajectory_rows_only(monkeypatch):
    """Adam's twin with b2 = 0.99 (its bias correction then off): the Optax-vs-twin rows of
    adam fail, every other optimizer's passes (the rows compare two sides, not one)."""
    monkeypatch.setitem(RO.OPTIMIZERS, "adam", lambda lr, **kw: RO.adam(lr, b2=0.99, **kw))
    # the rows at other hyperparameters (adam's b2 among them): test_verify_hyperparameters.py
    monkeypatch.setattr("nnjax.verify.checks.OPTIMIZER_HYPERPARAMETERS", ())
    rows = V.check_optimizers(steps=20)
    assert [r.component for r in rows][:-1] == [f"optimizer {n}: 20 steps" for n in O.OPTIMIZERS]
    assert _failing(rows) == [
        "optimizer adam: 20 steps",
        "optimizer adam, cosine schedule: 20 steps",
    ]


# --- the verdict itself --------------------------------------------------------------------


@pytest.mark.parametrize("bound", ["rel", "abs"])
def test_a_row_with_a_nan_or_infinite_difference_fails(bound):
    """A NaN difference is no pass (``not d > tol`` would let it through)."""
    for d in (math.nan, math.inf):
        assert not V.Check("row", d, d, 1.0, bound).passed
    assert V.Check("row", 0.5, 0.5, 0.5, bound).passed


def test_check_tree_judges_a_small_leaf_against_one_percent_of_the_largest():
    """The documented floor: a leaf below 1% of the largest must agree to 1e-12 of the
    tree's scale (tol 1e-10 x floor 1e-2); judging it against the whole tree's scale (a
    floor of 1) would let a 5e-12 error on a leaf of 1e-3 pass."""
    expected = {"big": np.array([1.0, -0.5]), "small": np.array([1e-3])}
    wrong = {"big": expected["big"], "small": expected["small"] + 5e-12}
    row = V.check_tree("t", wrong, expected)
    assert not row.passed and row.max_rel == pytest.approx(5e-10, rel=1e-3)
    ok = {"big": expected["big"], "small": expected["small"] + 5e-13}
    assert V.check_tree("t", ok, expected).passed


def test_check_more_layers_keeps_every_special_case(monkeypatch):
    """Each of the five parts of the layer rows reaches the table (dropping one, say the
    recurrent initial states, left every other test passing)."""
    parts = ("check_layer_twins", "check_max_pool_ties", "check_embedding")
    parts += ("check_recurrent_initial_state", "check_batch_norm_state")
    for name in parts:
        monkeypatch.setattr(layer_rows, name, lambda rng, name=name: [V.Check(name, 0, 0, 0)])
    got = [r.component for r in layer_rows.check_more_layers(np.random.default_rng(0))]
    assert got == list(parts)


def _fake_fit(wrong: str):
    """compare_fit's four results, equal on both sides except ``wrong`` ("params"/"losses")."""

    def compare_fit(optimizer, batch_size, epochs, dtype=np.float64):
        params, losses = [{"W": np.ones((2, 2))}], np.linspace(1.0, 0.5, 5)
        twin_params = [{"W": params[0]["W"] + (1e-3 if wrong == "params" else 0.0)}]
        return params, twin_params, losses, losses + (1e-3 if wrong == "losses" else 0.0)

    return compare_fit


@pytest.mark.parametrize("wrong", ["params", "losses"])
def test_the_fit_rows_compare_fit_with_the_twin_for_params_and_losses(wrong, monkeypatch):
    """check_fit's and check_float32's fit rows (float32's params row dropped left every
    test passing): each optimizer's params and losses rows, each failing on its own part."""
    monkeypatch.setattr(checks, "compare_fit", _fake_fit(wrong))
    rows = checks.check_fit()
    assert len(rows) == 8 and all(f"fit {o} " in rows[2 * i].component for i, o in
                                  enumerate(("sgd", "nesterov", "adam", "gd")))  # fmt: skip
    assert [c.rsplit(": ", 1)[1] for c in _failing(rows)] == [wrong] * 4
    same = lambda model, loss, params, X, y: (np.zeros(3), 0.0, [np.ones(2)], np.zeros(2))
    monkeypatch.setattr(checks, "jax_loss_and_grads", same)
    monkeypatch.setattr(checks, "ref_loss_and_grads", same)
    rows = checks.check_float32(np.random.default_rng(0))
    assert len(rows) == 3
    assert _failing(rows) == [f"float32 fit momentum, 100 steps: {wrong}"]


def test_a_twin_that_crashes_is_a_failing_row_naming_it_and_the_other_steps_run(monkeypatch):
    """A typo in a twin's derivative (a NameError) stopped ``nnjax verify`` with a traceback,
    no table, and exit status 1, the same as a disagreement; now it is one failing row that
    names the step, the error and the line, and the next steps still run."""
    import argparse

    from nnjax.commands import verify as command

    def broken(z):
        return z * undefined_name  # noqa: F821

    monkeypatch.setitem(RA.ACTIVATIONS, "silu", (RA.silu, broken))
    rng = np.random.default_rng(0)
    steps = [("activations", lambda: V.check_activations(rng)), ("registries", V.check_registries)]
    monkeypatch.setattr(V, "verify_steps", lambda seed=0, architectures=8: steps)
    rows = V.run_all()
    (bad,) = _failing(rows)  # the innermost line of nnjax: the twin's call of the derivative
    assert re.fullmatch(
        r"activations: raised NameError: name 'undefined_name' is not defined "
        r"at nnjax/reference/activations\.py:\d+ in vjp",
        bad,
    )
    assert len(rows) == 9 and rows[1].component.startswith("twins for all")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    monkeypatch.setenv("XLA_FLAGS", "")
    assert command.run(parser.parse_args(["--failures-only"])) == 1
