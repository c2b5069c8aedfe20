"""nnjax.verify's comparison logic and the ``nnjax verify`` command (table, exit status)."""

import argparse

import jax
import numpy as np
import pytest

from nnjax import verify as V
from nnjax.commands import verify as verify_command


def test_tree_diff_is_normwise_relative_per_leaf():
    a = {"x": np.array([1.0, 2.0 + 1e-6]), "y": [np.array([1e-20])]}
    e = {"x": np.array([1.0, 2.0]), "y": [np.array([2e-20])]}
    max_abs, max_rel = V.tree_diff(a, e)
    assert max_abs == pytest.approx(1e-6)
    assert max_rel == pytest.approx(0.5)  # the tiny leaf is judged against its own scale
    assert V.tree_diff(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert V.tree_diff(np.array([np.nan]), np.array([1.0]))[0] == float("inf")
    with pytest.raises(ValueError, match="shapes"):
        V.tree_diff(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="leaves"):
        V.tree_diff([np.zeros(2)], [np.zeros(2), np.zeros(2)])


def test_a_twin_of_another_shape_is_a_failing_row_not_an_error():
    """Review: a twin returning one row fewer stopped nnjax verify with 'error: tree_diff:
    shapes (64, 9) vs (63, 9)', exit 2 and no table, instead of a FAIL row and exit 1."""
    row = V.check("tanh", np.zeros((64, 9)), np.zeros((63, 9)), 1e-10)
    assert not row.passed and row.component == "tanh (differ: shapes (64, 9) vs (63, 9))"
    row = V.check("dense", [np.zeros(2)], [np.zeros(2), np.zeros(2)], 1e-10)
    assert not row.passed and "differ: 1 leaves vs 2" in row.component


def test_check_passes_only_within_its_bound():
    assert V.check("a", np.array([1.0 + 1e-12]), np.array([1.0]), 1e-10).passed
    assert not V.check("a", np.array([1.0 + 1e-8]), np.array([1.0]), 1e-10).passed
    assert V.check("b", np.array([1e3 + 1e-10]), np.array([1e3]), 1e-9, "abs").passed
    assert not V.check("b", np.array([1e3 + 1e-6]), np.array([1e3]), 1e-9, "abs").passed
    assert not V.check("c", np.array([np.nan]), np.array([1.0]), 1.0).passed


def test_fit_batch_indices_are_epoch_permutations():
    idx = V.fit_batch_indices(5, 10, 3, 2)
    assert len(idx) == 6 and all(i.shape == (3,) for i in idx)
    for epoch in (idx[:3], idx[3:]):
        flat = np.concatenate(epoch)
        assert len(set(flat.tolist())) == 9 and flat.max() < 10  # one row dropped per epoch
    assert not np.array_equal(np.concatenate(idx[:3]), np.concatenate(idx[3:]))
    assert V.fit_batch_indices(5, 10, None, 3) == [None, None, None]
    same = V.fit_batch_indices(jax.random.key(5), 10, 3, 2)
    assert all(np.array_equal(a, b) for a, b in zip(idx, same))


def test_random_arch_respects_the_loss_conventions():
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = V.random_arch(rng)
        assert 1 <= len(arch.sizes) <= 5 and all(1 <= s <= 128 for s in arch.sizes)
        assert 1 <= arch.batch <= 256
        if arch.loss == "binary_cross_entropy":
            assert arch.output_activation == "sigmoid"
        if arch.logit_scale != 1.0:
            assert arch.output_activation is None
        params, X, y = V.make_problem(arch, rng)
        assert X.shape == (arch.batch, arch.n_in) and y.shape[0] == arch.batch


def _rows(passed: bool):
    rows = [V.Check("activation relu", 0.0, 0.0, 1e-10)]
    if not passed:
        rows.append(V.Check("optimizer adam: 200 steps", 3e-6, 1e-5, 1e-9, "abs"))
    return rows


def _verify(argv):
    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    return verify_command.run(parser.parse_args(argv))


@pytest.mark.parametrize("passed", [True, False])
def test_verify_command_prints_the_table_and_exits_nonzero_on_failure(passed, monkeypatch, capsys):
    monkeypatch.setenv("XLA_FLAGS", "")  # the command adds its flags; restored afterwards
    monkeypatch.setattr(V, "run_all", lambda seed, architectures, **kw: _rows(passed))
    status = _verify(["--architectures", "0"])
    out = capsys.readouterr().out
    for column in ("component", "max abs diff", "max rel diff", "verdict"):
        assert column in out
    assert "activation relu" in out
    if passed:
        assert status == 0 and "all pass" in out and "FAIL" not in out
    else:
        assert status == 1 and "FAIL" in out and "1 FAILED" in out


def test_verify_command_rejects_a_negative_architecture_count(capsys):
    from nnjax.cli import main

    assert main(["verify", "--architectures", "-1"]) == 2  # refused while parsing
    assert "argument --architectures: must be an integer >= 0" in capsys.readouterr().err


def test_verify_is_a_registered_command():
    from nnjax import cli

    args = cli.build_parser(["verify"]).parse_args(["verify"])
    assert "verify" in cli.COMMANDS and args._run is verify_command.run


def test_each_failing_row_is_one_unwrapped_line_naming_it(monkeypatch, capsys):
    """Piped output wraps the table at 80 columns (a long name split over lines), so each
    failure is also said on one line: `grep ^FAIL` names it with its difference and bound."""
    long = "layer Conv(features=8, kernel=(3, 3), stride=(2, 2), padding='SAME') dJ/dparams [z > 0]"
    rows = [V.Check("activation relu", 1e-12, 1e-12, 1e-10), V.Check(long, 2e-3, 4e-5, 1e-10)]
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr(V, "run_all", lambda seed, architectures, **kw: rows)
    assert _verify(["--architectures", "0"]) == 1
    fails = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAIL ")]
    assert fails == [f"FAIL {long}: rel diff 4.00e-05 > 1e-10"]
