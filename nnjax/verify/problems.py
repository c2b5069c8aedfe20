"""Random MLP problems and the fit loop, run side by side in JAX and in the NumPy twin."""

from typing import Any, NamedTuple

import jax
import jax.extend
import numpy as np

from nnjax import activations as A
from nnjax import losses as L
from nnjax.models import mlp as jax_mlp
from nnjax.reference import losses as RL
from nnjax.reference.mlp import mlp as ref_mlp
from nnjax.verify.core import (
    RTOL64,
    Check,
    _to_numpy,
    check,
    compile_fast,
)

# --- random problems --------------------------------------------------------------------


class Arch(NamedTuple):
    """A random MLP problem: ``sizes`` (hidden..., out), input width, batch, activations,
    loss, target form and the scale of the output layer (large for extreme logits)."""

    n_in: int
    sizes: tuple[int, ...]
    batch: int
    activation: str
    output_activation: str | None
    loss: str
    target: str  # "match" (pred's shape), "flat" ((B,) for width 1), "labels", "probs"
    use_bias: bool = True
    logit_scale: float = 1.0


def output_activation_for(loss: str, choice: str | None) -> str | None:
    """The output activation each loss expects: sigmoid probabilities for the binary
    cross-entropy, logits (None) for the *_with_logits and softmax ones, any for mse."""
    if loss == "binary_cross_entropy":
        return "sigmoid"
    if loss in ("binary_cross_entropy_with_logits", "softmax_cross_entropy"):
        return None
    return choice


def random_arch(rng: np.random.Generator) -> Arch:
    """Depth 1-5, widths 1-128, batch 1-256, any activation and loss, sometimes huge logits."""
    depth = int(rng.integers(1, 6))
    loss = str(rng.choice(list(L.LOSSES)))
    names = list(A.ACTIVATIONS)
    out_act = output_activation_for(loss, rng.choice([None, *names]))
    sizes = tuple(int(s) for s in rng.integers(1, 129, depth))
    target = {"softmax_cross_entropy": ["labels", "match", "probs"]}.get(loss, ["match", "flat"])
    return Arch(
        n_in=int(rng.integers(1, 129)),
        sizes=sizes,
        batch=int(rng.integers(1, 257)),
        activation=str(rng.choice(names)),
        output_activation=out_act,
        loss=loss,
        target=str(rng.choice(target)),
        use_bias=bool(rng.integers(0, 2)),
        logit_scale=float(rng.choice([1.0, 1e2, 1e4])) if out_act is None else 1.0,
    )


def make_problem(arch: Arch, rng: np.random.Generator, dtype=np.float64):
    """NumPy params in nnjax.mlp's structure, inputs X (B, n_in) and targets for the loss."""
    params, fan_in = [], arch.n_in
    for i, width in enumerate(arch.sizes):
        p = {"W": rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, width))}
        if arch.use_bias:
            p["b"] = rng.normal(0.0, 0.1, width)
        if i == len(arch.sizes) - 1:
            p = {k: v * arch.logit_scale for k, v in p.items()}
        params.append(p)
        if i < len(arch.sizes) - 1:
            params.append({})
        fan_in = width
    if arch.output_activation is not None:
        params.append({})
    params = [{k: v.astype(dtype) for k, v in p.items()} for p in params]
    X = rng.normal(size=(arch.batch, arch.n_in)).astype(dtype)
    B, K = arch.batch, arch.sizes[-1]
    if arch.loss == "softmax_cross_entropy":
        labels = rng.integers(0, K, B)
        if arch.target == "labels":
            y = labels.astype(np.int32)
        elif arch.target == "probs":
            y = rng.dirichlet(np.ones(K), B).astype(dtype)
        else:
            y = np.eye(K, dtype=dtype)[labels]
    elif arch.loss == "mse":
        y = rng.normal(size=(B, K) if arch.target == "match" or K > 1 else (B,)).astype(dtype)
    else:
        shape = (B,) if arch.target == "flat" and K == 1 else (B, K)
        y = rng.integers(0, 2, shape).astype(dtype)
    return params, X, y


def models(arch: Arch):
    """The JAX model and the twin's (forward, backward) for ``arch``."""
    kw = dict(output_activation=arch.output_activation, use_bias=arch.use_bias)
    return jax_mlp(list(arch.sizes), arch.activation, **kw), ref_mlp(
        list(arch.sizes), arch.activation, **kw
    )


def jax_loss_and_grads(model, loss: str, params, X, y):
    """(out, J, dJ/dparams, dJ/dX) from ``jax.value_and_grad`` (one compiled program)."""
    loss_f = L.get_loss(loss)

    def f(p, x, t):
        out = model.apply(p, x)
        return loss_f(out, t), out

    fn = jax.value_and_grad(f, argnums=(0, 1), has_aux=True)
    # Trace with the inner jits (jax.nn's) inlined: one flat program, about a fifth cheaper
    # to trace and lower; XLA inlines them anyway, so the arithmetic is the same.
    args = (params, X, y)
    with jax.disable_jit():
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    flat_fn = jax.extend.core.jaxpr_as_fun(closed)
    leaves = jax.tree.leaves(args)
    flat_out = compile_fast(flat_fn, *leaves)(*leaves)
    (value, out), (gp, gx) = jax.tree.unflatten(jax.tree.structure(out_shape), flat_out)
    return _to_numpy(out), float(value), _to_numpy(gp), np.asarray(gx)


def ref_loss_and_grads(ref, loss: str, params, X, y):
    """(out, J, dJ/dparams, dJ/dX) from the twin: forward, loss gradient, backward."""
    forward, backward = ref
    value, grad = RL.get(loss)
    out, cache = forward(params, X)
    dX, gp = backward(grad(out, y), cache)
    return out, float(value(out, y)), gp, dX


def compare_mlp(arch: Arch, seed: int = 0) -> list[Check]:
    """Twin vs jax.grad in float64 on one random architecture: output, loss, grads."""
    rng = np.random.default_rng(seed)
    params, X, y = make_problem(arch, rng)
    model, ref = models(arch)
    with jax.enable_x64(True):
        j = jax_loss_and_grads(model, arch.loss, params, X, y)
    r = ref_loss_and_grads(ref, arch.loss, params, X, y)
    name = f"mlp {arch.n_in}->{list(arch.sizes)} {arch.activation}/{arch.output_activation}"
    parts = ("output", "loss", "dJ/dparams", "dJ/dX")
    return [check(f"{name} {arch.loss}: {p}", a, b, RTOL64) for p, a, b in zip(parts, j, r)]


# --- the fit loop -------------------------------------------------------------------------


def fit_batch_indices(key, n: int, batch_size: int | None, epochs: int) -> list:
    """The index arrays ``nnjax.fit`` uses, step by step (``None`` = full batch, in order):
    :func:`nnjax.train.run_batch_indices`, as one entry per step."""
    from nnjax.train import run_batch_indices

    if batch_size is None:
        return [None] * epochs
    return list(run_batch_indices(key, epochs, n, batch_size))


def _fit_problem(dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(48, 3)).astype(dtype)
    y = (X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0).astype(np.int32)
    arch = Arch(3, (8, 6, 2), 48, "tanh", None, "softmax_cross_entropy", "labels")
    params, _, _ = make_problem(arch, rng, dtype)
    return arch, params, X, y


def compare_fit(
    optimizer: str, batch_size: int | None, epochs: int, dtype=np.float64
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Run ``nnjax.fit`` and ``reference.train`` on the same batches in the same order.

    Returns (fit params, twin params, fit loss history, twin losses); in float32 the twin
    runs in float64 from the same (rounded) start, so the pair measures float32's error.
    """
    from nnjax.reference.train import train
    from nnjax.train import fit

    arch, params, X, y = _fit_problem(dtype)
    model, (forward, backward) = models(arch)
    lr = 1e-2 if optimizer in ("adam", "adamw") else 0.1
    with jax.enable_x64(dtype == np.float64):
        res = fit(
            model,
            params,
            X,
            y,
            optimizer=optimizer,
            learning_rate=lr,
            loss=arch.loss,
            epochs=epochs,
            batch_size=batch_size,
            key=3,
        )
        idx = fit_batch_indices(3, X.shape[0], batch_size, epochs)
    p64 = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
    ref_params, ref_losses = train(
        forward, backward, p64, X.astype(np.float64), y, loss=arch.loss,
        optimizer=optimizer, learning_rate=lr, batch_indices=idx,
    )  # fmt: skip
    return _to_numpy(res.params), ref_params, res.step_loss, ref_losses
