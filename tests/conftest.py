import gc
import os
import sys

import pytest

# Python's cyclic garbage collector runs every 700 net allocations by default; JAX's caches
# keep many objects alive, so each run walked them again. A generation 0 of 10,000 objects
# (and fewer older-generation passes) cut the collector's time in test_losses, test_order and
# test_brain_convert_audit from 5.9 s to 1.9 s (of about 150 s); explicit gc.collect() is
# unchanged.
gc.set_threshold(10_000, 10, 10)

# Where the environment says PYTHONDONTWRITEBYTECODE (as this project's machines do), every
# Python process the suite starts (its `python -m nnjax` subprocesses, the notebooks' kernels)
# compiled nnjax's sources again, and each xdist worker compiled and assertion-rewrote the test
# modules. Bytecode is written (to the git-ignored __pycache__ folders) and loaded again: on
# six files of subprocess tests, 68.0 and 68.4 -> 60.8 and 63.9 s of user CPU (runs back to
# back on the idle 2-core machine, caches cleared). What the code does is unchanged.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

os.environ.setdefault("MPLBACKEND", "Agg")
# the CLI's persistent compilation cache stays off in tests (never the user's folder); the
# tests of the cache give each subprocess its own temporary folder
os.environ["NNJAX_CACHE_DIR"] = "off"

# The tests compile at XLA:CPU's lowest optimisation level, as `nnjax verify` does: the same
# IEEE arithmetic (no fast-math), well inside every tolerance, and a third of the compile
# time, which is most of the suite's (test_train, test_execution, test_brain_network and
# test_cli took 93 s at XLA's defaults, 35 s so, on 2 cores). Subprocesses inherit it. The
# few tests that hold only for XLA's optimised programs are marked ``xla_defaults`` and run
# by tests/test_default_compiler.py in a process at XLA's defaults. Set
# NNJAX_TEST_XLA_DEFAULTS=1 to run the whole suite at XLA's defaults.
FAST_XLA_FLAGS = (
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
    "--xla_llvm_disable_expensive_passes=true --xla_cpu_parallel_codegen_split_count=1"
)
XLA_DEFAULTS = bool(os.environ.get("NNJAX_TEST_XLA_DEFAULTS"))
# the flags the suite was started with (kept for xdist's workers, which inherit ours)
USER_XLA_FLAGS = os.environ.setdefault("NNJAX_TEST_USER_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
if not XLA_DEFAULTS:
    os.environ["XLA_FLAGS"] = f"{USER_XLA_FLAGS} {FAST_XLA_FLAGS}".strip()


def pytest_collection_modifyitems(config, items):
    """Under the fast flags, a test marked ``xla_defaults`` (bit-exact against numbers that
    XLA's optimised programs gave) is skipped here and run by tests/test_default_compiler.py
    in a process at XLA's defaults."""
    if XLA_DEFAULTS:
        return
    skip = pytest.mark.skip(reason="at XLA's defaults: run by tests/test_default_compiler.py")
    for item in items:
        if item.get_closest_marker("xla_defaults"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits_net():
    """A bias-free ReLU MLP 64-32-32-10 trained on split digits' training inputs in [0, 1] (all
    10 classes, 400 SGD steps; test accuracy 0.958 measured), with the training and test sets:
    (model, params, (X_train, y_train), (X_test, y_test)). Shared by the brain tests that need
    a trained network (DeepDream, homeostasis, diversity)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from nnjax.brain import continual as C
    from nnjax.models import mlp

    split = C.load_split("digits", 0)
    X = np.concatenate([split.X_tasks[t, : split.n_tasks[t]] for t in range(5)])
    y = np.concatenate([split.y_tasks[t, : split.n_tasks[t]] for t in range(5)])
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    model = mlp([32, 32, 10], "relu", use_bias=False)

    def loss(p, k):
        i = jax.random.randint(k, (32,), 0, Xj.shape[0])
        return C.soft_cross_entropy(model.apply(p, Xj[i]), jax.nn.one_hot(yj[i], 10))

    @jax.jit
    def train(k):
        _, p = model.init(k, (-1, 64))
        return C.sgd_steps(loss, p, jax.random.fold_in(k, 1), 400, optax.sgd(0.1, 0.5))[0]

    return model, train(jax.random.key(0)), (X, y), (split.X_test, split.y_test)


@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch):
    """Python's temporary directory (``tempfile.gettempdir()``) made ``tmp_path/tmp`` for the
    test: what a run writes there (nnjax.rescue's folders) is the test's, and goes with it."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="module")
def keep_compiled_programs(tmp_path_factory):
    """fit's store of compiled programs (nnjax.train.executables; on by default in the CLI,
    off here: NNJAX_CACHE_DIR=off above) in a folder of the module's while its tests run: a
    training program is compiled once and the module's later runs of it load it (about 1.3 s
    of CPU saved per in-process ``nnjax train`` of the moons preset). What a run does after
    loading is unchanged; JAX's own persistent cache stays off. For modules of many runs of
    the same few programs (``pytestmark = pytest.mark.usefixtures(...)``)."""
    import nnjax.cache

    folder = str(tmp_path_factory.mktemp("programs"))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(nnjax.cache, "active_dir", lambda: folder)
        yield folder
