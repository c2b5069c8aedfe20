"""``nnjax train``'s initial params: one compiled program (XLA optimization level 1) that
must draw exactly the numbers ``model.init`` draws op by op, for every ``--model``."""

from types import SimpleNamespace

import jax
import numpy as np
import pytest

from nnjax.commands.train_model import (
    DEFAULT_CHANNELS,
    ONE_WIDTH,
    build,
    init_params,
    init_program,
)
from nnjax.layers.core import init_model

# (model, dataset name, features, classes, --hidden): the shapes the CLI's datasets give
CASES = [
    ("mlp", "digits", 64, 10, [32]),
    ("mlp", "mnist1d", 40, 10, [100, 100]),
    ("logreg", "moons", 2, 2, [8]),
    ("cnn", "digits", 64, 10, [8]),
    ("cnn", "mnist1d", 40, 10, [8]),
    ("gru", "digits", 64, 10, [ONE_WIDTH["gru"]]),
    ("gru", "mnist1d", 40, 10, [ONE_WIDTH["gru"]]),
    ("resmlp", "digits", 64, 10, [ONE_WIDTH["resmlp"]]),
]


def _model(name, dataset, features, classes, hidden):
    ds = SimpleNamespace(name=dataset, X_train=np.zeros((5, features)), n_classes=classes)
    args = SimpleNamespace(
        model=name,
        hidden=hidden,
        activation="relu",
        dropout=0.1 if name != "cnn" else 0.0,
        channels=DEFAULT_CHANNELS,
    )
    return build(args, ds)[0], (-1, features)


def _assert_same(eager, compiled):
    assert jax.tree.structure(eager) == jax.tree.structure(compiled)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(compiled), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), strict=True)


# every case in float32; float64 on the digits shapes of each model (each case compiles the
# eager init op by op: ~1-3 s apiece on 2 cores)
RUNS = [(c, False) for c in CASES] + [(c, True) for c in CASES if c[1] != "mnist1d"]


@pytest.mark.xla_defaults  # the bit-exact claim is of the program XLA optimises
@pytest.mark.parametrize(
    ("case", "x64"), RUNS, ids=[f"{c[0]}-{c[1]}-{'64' if x else '32'}" for c, x in RUNS]
)
def test_compiled_init_draws_the_eager_numbers(case, x64):
    model, shape = _model(*case)
    with jax.enable_x64(x64):
        init = init_program(model, shape)  # what init_params runs: compiled once, both seeds
        for seed in (0, 7):  # the second seed reuses the eager compilations and init's
            eager = init_model(model, jax.random.key(seed), shape)[1]
            compiled = init(jax.random.key(seed))
            _assert_same(eager, compiled)
            want = np.float64 if x64 else np.float32
            assert all(leaf.dtype == want for leaf in jax.tree.leaves(compiled))


def test_seeds_differ():
    model, shape = _model(*CASES[0])
    a, b = (jax.tree.leaves(init_params(model, s, shape))[0] for s in (0, 1))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
