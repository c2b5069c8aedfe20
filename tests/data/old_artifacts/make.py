"""Write the fixtures of ``tests/test_versions_audit.py``: saved models and checkpoints
written by older nnjax, with what that nnjax predicted from them.

Run once per commit, with that commit's nnjax on the path (never the current one)::

    git worktree add /tmp/old_<hash> <hash>
    cd /tmp/old_<hash> && PYTHONPATH=/tmp/old_<hash> python \
        /work/main/tests/data/old_artifacts/make.py <hash> /work/main/tests/data/old_artifacts
    git worktree remove --force /tmp/old_<hash>

The commits (``git log``), each where the files changed:

* ``cc6d378`` (2026-11-27): the first checkpoints (``fit(checkpoint_dir=, resume=)``), before
  any saved-model format and before the run's configuration was recorded;
* ``ac1f196`` (2026-12-02): the first saved models (``nnjax.save``/``load``, format version
  1, ``nnjax train --out``), checkpoints that record the run's configuration;
* ``54359a6`` (2026-12-03): checkpoints that record the machine, the evaluation sets and
  the optimizer's recipe; ``model.json`` fields checked whole.

Into ``<out>/<hash>/``: ``fit/`` (a 4-epoch ``fit`` run checkpointed every 2 epochs, its
epoch-4 checkpoint removed, so it is a run stopped mid-way; ``fit_data.npz`` its data and
final params; ``params.npz`` those params by ``nnjax.io.save_params``), and where the
commit has them ``mlp/`` (an MLP saved with a standardizer and text labels), ``bn/`` (a
BatchNorm model with running statistics), ``cli_ck/`` (``nnjax train --checkpoint-dir``,
its epoch-2 checkpoint) and ``cli_model/`` (``nnjax train --out``); ``expected.npz``: what
that nnjax predicted from each saved model on ``X``; ``made.json``: the commit and versions.
"""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np

import nnjax
from nnjax.models import mlp


def _flat(tree) -> dict:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def _fit_run(out: str) -> None:
    """A 4-epoch run, checkpoints at epochs 2 and 4; the epoch-4 one removed."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int32)
    model = mlp([8, 2], "tanh")
    params = model.init(jax.random.PRNGKey(0), (-1, 2))[1]
    ck = os.path.join(out, "fit")
    res = nnjax.fit(
        model, params, X, y, optimizer="adam", learning_rate=0.05, epochs=4, batch_size=16,
        key=0, checkpoint_dir=ck, checkpoint_every=2, keep=None,
    )  # fmt: skip
    for ext in ("npz", "json"):
        os.remove(os.path.join(ck, f"ckpt_00000004.{ext}"))
    np.savez(os.path.join(out, "fit_data.npz"), X=X, y=y, **_flat(res.params))
    from nnjax import io

    io.save_params(os.path.join(out, "params.npz"), res.params)  # a bare params file


def _saved_models(out: str, X: np.ndarray, expected: dict) -> None:
    """An MLP with a standardizer and text labels, a BatchNorm model with running stats."""
    from nnjax.data import Standardizer
    from nnjax.layers import Activation, BatchNorm, Dense, init_model, serial

    rng = np.random.default_rng(1)
    std = Standardizer(
        mean=rng.normal(size=4).astype(np.float32),
        std=rng.uniform(0.5, 2, size=4).astype(np.float32),
    )
    model = mlp([6, 3], "relu")
    params = model.init(jax.random.PRNGKey(1), (-1, 4))[1]
    path = nnjax.save(
        os.path.join(out, "mlp"), model, params, standardizer=std,
        label_names=["cat", "dog", "eel"], config={"made_by": "make.py"},
    )  # fmt: skip
    _expect(expected, "mlp", nnjax.load(path), X)

    bn = serial(Dense(5), BatchNorm(), Activation("relu"), Dense(2))
    _, p, s = init_model(bn, jax.random.PRNGKey(2), (-1, 4))
    s = jax.tree.map(lambda a: a + rng.uniform(0.1, 1.0, size=a.shape).astype(a.dtype), s)
    path = nnjax.save(os.path.join(out, "bn"), bn, p, state=s, input_shape=(-1, 4))
    _expect(expected, "bn", nnjax.load(path), X)


def _expect(expected: dict, name: str, predictor, X) -> None:
    expected[f"{name}_outputs"] = np.asarray(predictor(X))
    expected[f"{name}_proba"] = np.asarray(predictor.predict_proba(X))
    expected[f"{name}_predict"] = np.asarray(predictor.predict(X)).astype(str)


CLI_ARGS = "--dataset moons --hidden 4 --epochs 4 --batch-size 64 --lr 0.05"


def _cli_run(out: str, expected: dict) -> None:
    """``nnjax train`` with checkpoints every 2 epochs and --out; epoch 4's removed."""
    ck, model = os.path.join(out, "cli_ck"), os.path.join(out, "cli_model")
    cmd = [sys.executable, "-m", "nnjax", "train", *CLI_ARGS.split()]
    cmd += ["--checkpoint-dir", ck, "--checkpoint-every", "2", "--keep", "5", "--out", model]
    subprocess.run(cmd, check=True, capture_output=True)
    for ext in ("npz", "json"):
        os.remove(os.path.join(ck, f"ckpt_00000004.{ext}"))
    for name in os.listdir(model):  # the saved model only, not the run's history and plots
        if name not in ("model.json", "params.npz", "state.npz"):
            os.remove(os.path.join(model, name))
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)), -1)
    expected["cli_X"] = grid.reshape(-1, 2).astype(np.float32)
    _expect(expected, "cli", nnjax.load(model), expected["cli_X"])


def main(commit: str, root: str) -> None:
    out = os.path.join(root, commit)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    X = np.random.default_rng(2).normal(size=(12, 4)).astype(np.float32)
    expected = {"X": X}
    _fit_run(out)
    if hasattr(nnjax, "save"):
        _saved_models(out, X, expected)
        _cli_run(out, expected)
    np.savez(os.path.join(out, "expected.npz"), **expected)
    info = {"commit": commit, "nnjax": nnjax.__version__, "jax": jax.__version__}
    with open(os.path.join(out, "made.json"), "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
