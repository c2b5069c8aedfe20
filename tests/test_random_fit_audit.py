"""Audit: random fit configurations against a plain loop with Optax itself.

:func:`random_fit` draws fit configurations (optimizer, a batch size not dividing n, epochs,
epochs per call, checkpoints, BatchNorm, dropout) held against a plain loop over
``nnjax.train.order``'s batches and keys with Optax itself (measured: at most 1.3e-12
relative over 100 configurations). The random architectures are in
tests/test_random_architectures_audit.py.
"""

import jax
import numpy as np
import optax
import pytest
from test_random_architectures_audit import _pick, _rel

import nnjax
from nnjax import layers as L
from nnjax.losses import get_loss
from nnjax.train.order import as_key, run_batch_indices, run_keys, step_keys

OPTAX = {
    "gd": lambda lr: optax.sgd(lr),
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=1e-4),
    "rmsprop": lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-8),
    "adagrad": lambda lr: optax.adagrad(lr, initial_accumulator_value=0.1, eps=1e-7),
}
"""nnjax's optimizers by name, written with Optax directly (nnjax.optim's defaults)."""


def random_fit(rng):
    """A random fit configuration: model (Dense, [BatchNorm], act, [Dropout], Dense), data,
    optimizer, batch size (often not dividing n), epochs, epochs per call, checkpoints."""
    n, F, K = int(rng.integers(5, 23)), _pick(rng, [1, 2, 3]), _pick(rng, [1, 2, 3])
    bn, drop = bool(rng.random() < 0.3), bool(rng.random() < 0.3)
    # no bias before BatchNorm: its gradient is 0 but for rounding, which adam divides by
    # sqrt(s) + eps ~ 1e-8, so that bias would drift ~1e-10 apart in any two loops
    layers = [L.Dense(_pick(rng, [1, 3, 4]), use_bias=not bn)]
    layers += [L.Activation(_pick(rng, ["tanh", "gelu"]))]
    layers[1:1] = [L.BatchNorm()] if bn else []
    layers += [L.Dropout(_pick(rng, [0.2, 0.5]))] if drop else []
    opt = _pick(rng, list(OPTAX))
    bs = None if opt == "gd" else _pick(rng, [None, 1, 2, 3, n - 1, n, int(rng.integers(1, n))])
    bs = max(bs, 2) if bn and bs is not None else bs
    loss = _pick(rng, ["mse", "binary_cross_entropy_with_logits" if K == 1 else
                       "softmax_cross_entropy"])  # fmt: skip
    epc = _pick(rng, [None, 1, 2, 3])
    every = _pick(rng, [None, 1, 2]) if epc is None else _pick(rng, [None, epc, 2 * epc])
    cfg = dict(model=L.serial(*layers, L.Dense(K)), opt=opt, batch_size=bs, loss=loss,
               epochs=int(rng.integers(1, 6)), lr=_pick(rng, [0.05, 1e-3]), bn=bn, drop=drop,
               epochs_per_call=epc, checkpoint_every=every)  # fmt: skip
    cfg["key"] = _pick(rng, [int(rng.integers(2**32)), jax.random.key(int(rng.integers(99)))])
    X = rng.normal(size=(n, F))
    y = {"mse": rng.normal(size=(n, K)), "softmax_cross_entropy": rng.integers(0, K, n)}
    return cfg, X, y.get(loss, rng.integers(0, 2, n).astype(float))


def optax_loop(cfg, params, state, X, y):
    """``fit`` written out: run_batch_indices' rows, step_keys' dropout keys, Optax's update."""
    n, bs, opt = len(X), cfg["batch_size"], OPTAX[cfg["opt"]](cfg["lr"])
    rows = run_batch_indices(cfg["key"], cfg["epochs"], n, bs)
    steps = 1 if bs in (None, n) else n // bs
    loss = get_loss(cfg["loss"])

    def objective(p, s, xb, yb, k):
        pred, s = L.apply_model(cfg["model"], p, s, xb, key=k, train=True)
        return loss(pred, yb), s

    @jax.jit  # one compiled step (Optax's update run op by op took 2.3 s of seed 0's 6 s)
    def step(params, state, opt_state, xb, yb, k):
        (value, state), g = jax.value_and_grad(objective, has_aux=True)(params, state, xb, yb, k)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    opt_state, losses = opt.init(params), []
    for e in range(cfg["epochs"]):
        keys = step_keys(run_keys(as_key(cfg["key"]))[1], e, steps) if cfg["drop"] else None
        for t in range(steps):
            r = slice(None) if rows is None else rows[e * steps + t]
            k = None if keys is None else keys[t]
            params, state, opt_state, value = step(params, state, opt_state, X[r], y[r], k)
            losses.append(float(value))
    return params, state, np.array(losses)


def compare_random_fit(seed, tmp_path):
    """Relative differences of fit's final params, model state and step losses from
    :func:`optax_loop`'s, for the configuration of ``seed`` (float64)."""
    rng = np.random.default_rng(seed)
    cfg, X, y = random_fit(rng)
    _, params, state = L.init_model(cfg["model"], jax.random.key(seed), (-1, X.shape[1]))
    every = cfg["checkpoint_every"]
    res = nnjax.fit(
        cfg["model"], params, X, y, optimizer=cfg["opt"], learning_rate=cfg["lr"],
        loss=cfg["loss"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], key=cfg["key"],
        state=state if cfg["bn"] else None, dropout=cfg["drop"],
        epochs_per_call=cfg["epochs_per_call"], checkpoint_every=every,
        checkpoint_dir=None if every is None else tmp_path / "ck",
    )  # fmt: skip
    p, s, losses = optax_loop(cfg, params, state, X, y)
    assert all(leaf.dtype == np.float64 for leaf in jax.tree.leaves(res.params))
    return {"params": _rel(res.params, p), "state": _rel(res.state, s),
            "step_loss": _rel(res.step_loss, losses)}  # fmt: skip


FIT_SEEDS = [0, 3, 11]  # adamw + BatchNorm + dropout; gd, full batch; nesterov, 3 ∤ 7


@pytest.mark.parametrize("seed", FIT_SEEDS)
def test_random_fit_configuration_matches_an_optax_loop(seed, tmp_path):
    with jax.enable_x64(True):
        errors = compare_random_fit(seed, tmp_path)
    assert max(errors.values()) < 1e-11, errors
