"""The layers beyond Dense (convolution, pooling, normalisation, combinators, recurrent,
embedding, and the models built from them) held against their NumPy twins.

A network is described by its spec (``nnjax.layers.Layer.spec``); :func:`twin_of` builds the
twin from the same spec, so one description drives both sides. :func:`compare_network`
compares the output, dJ/dparams and dJ/dx of J = sum(dout * y) for a random cotangent dout
(``jax.vjp`` against the twin's backward) in float64. The rows of ``nnjax verify`` are in
:mod:`nnjax.verify.layer_rows`, the random architectures in :mod:`nnjax.verify.networks`.
"""

import jax
import numpy as np

from nnjax.layers import apply_model as jax_apply_model
from nnjax.layers import from_spec, init_model
from nnjax.reference import combinators as RC
from nnjax.reference import layers as RLay
from nnjax.reference import norm as RN
from nnjax.reference import recurrent as RR
from nnjax.verify.core import (
    RTOL64,
    Check,
    _to_numpy,
    check_tolerance,
    compile_fast,
    finite_scale,
    leaf_diff,
)

INIT_ONLY = frozenset({"W_init", "b_init", "W_i_init", "W_h_init", "dtype"})


def twin_of(spec) -> RLay.Pair:
    """The NumPy twin of the layer or model ``spec`` describes (training mode for
    BatchNorm; Dropout without a mask, i.e. the identity, as JAX's without a key)."""
    from nnjax.models import MODELS, layer_spec

    name, kw = spec
    if name in MODELS:
        return twin_of(layer_spec(spec))
    kw = {k: v for k, v in kw.items() if k not in INIT_ONLY}
    if name in ("serial", "parallel"):
        return RLay.LAYERS[name](*[twin_of(s) for s in kw["layers"]])
    if name == "residual":
        return RC.residual(twin_of(kw["layer"]))
    if name == "RNN":
        cell = RR.CELLS[kw.pop("cell")[0]]()
        return RR.rnn(cell, **kw)
    if name == "Bidirectional":
        cell, back = kw.pop("cell"), kw.pop("backward_cell")
        back = None if back is None else RR.CELLS[back[0]]()
        return RR.bidirectional(RR.CELLS[cell[0]](), back, **kw)
    if name == "Activation":
        return RLay.activation(kw["activation"])
    if name == "BatchNorm":
        kw.pop("momentum", None)
        return RN.batch_norm(**kw, train=True)
    return RLay.LAYERS[name](**kw)


def _jax_vjp(model, state, train: bool):
    """(params, x, dout) -> (y, dJ/dparams, dJ/dx), J = sum(dout * y)."""

    def run(params, x, dout):
        f = lambda p, x: jax_apply_model(model, p, state, x, train=train)[0]
        y, vjp_fn = jax.vjp(f, params, x)
        dp, dx = vjp_fn(dout)
        return y, dp, dx

    return run


def init_shapes(model, input_shape):
    """(output_shape, params, state) of ``init_model`` with ShapeDtypeStructs for arrays: the
    init is traced, not run (running it eagerly compiles every initializer op anew)."""
    box = []

    def init():
        out, params, state = init_model(model, jax.random.key(0), tuple(input_shape))
        box.append(out)
        return params, state

    params, state = jax.eval_shape(init)
    return box[0], params, state


def random_params(tree, rng: np.random.Generator, std: float = 0.5):
    """Every array of a ShapeDtypeStruct tree drawn from N(0, std^2), float64 NumPy."""
    return jax.tree.map(lambda s: rng.normal(0.0, std, s.shape), tree)


def check_tree(component: str, actual, expected, tol: float = RTOL64, floor: float = 1e-2) -> Check:
    """Like :func:`nnjax.verify.core.check` (normwise relative difference per leaf), but a
    leaf's scale is floored at ``floor`` times the largest leaf of ``expected``.

    Why: a gradient that is exactly 0 in exact arithmetic (a Dense weight whose scale a
    following BatchNorm cancels, say) comes out of both sides as rounding noise of the
    terms that cancel, ~1e-14 of the tree's scale, and its own scale is that noise. With the
    floor, a leaf smaller than 1% of the largest must agree to 1e-12 of the tree's scale
    (``tol`` times ``floor``): a wrong small leaf still fails, noise around 0 does not.
    A bad ``tol`` is a ValueError (:func:`nnjax.verify.core.check_tolerance`).
    """
    check_tolerance(tol)
    a_leaves = jax.tree.leaves(_to_numpy(actual))
    e_leaves = jax.tree.leaves(_to_numpy(expected))
    if len(a_leaves) != len(e_leaves):
        return Check(
            f"{component} ({len(a_leaves)} vs {len(e_leaves)} leaves)", *(float("inf"),) * 2, tol
        )
    top = max((finite_scale(e) for e in e_leaves), default=0.0)
    max_abs = max_rel = 0.0
    for a, e in zip(a_leaves, e_leaves):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if a.shape != e.shape:
            return Check(f"{component} (shapes {a.shape} vs {e.shape})", *(float("inf"),) * 2, tol)
        if a.size == 0:
            continue
        d, scale = leaf_diff(a, e)
        scale = max(scale, floor * top)
        rel = d / scale if scale > 0 else (0.0 if d == 0 else float("inf"))
        max_abs = max(max_abs, d) if np.isfinite(d) else float("inf")
        max_rel = max(max_rel, rel) if np.isfinite(rel) else float("inf")
    return Check(component, max_abs, max_rel, tol)


def compare_network(spec, input_shape, seed: int, label: str | None = None) -> list[Check]:
    """Output, dJ/dparams and dJ/dx of ``from_spec(spec)`` (JAX, float64, training mode) vs
    :func:`twin_of`, on params ~ N(0, 0.5^2) of the shapes ``init`` gives and x ~ N(0, 1),
    J = sum(dout * y) for dout ~ N(0, 1); and the shape ``init`` returns vs the one
    ``apply`` makes."""
    label = label or spec[0]
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        model = from_spec(spec)
        out_shape, params, state = init_shapes(model, input_shape)
        params = random_params(params, rng)
        state = jax.tree.map(lambda s: np.ones(s.shape), state)
        x = rng.normal(size=input_shape)
        dout = jax.tree.map(lambda s: rng.normal(size=s), out_shape, is_leaf=_is_shape)
        run = _jax_vjp(model, state, train=True)
        y, dp, dx = _to_numpy(compile_fast(run, params, x, dout)(params, x, dout))
    same = jax.tree.map(np.shape, y) == jax.tree.map(tuple, out_shape, is_leaf=_is_shape)
    pair = twin_of(model.spec or spec)
    ty, cache = pair.forward(params, x)
    tdx, tdp = pair.backward(dout, cache)
    return [
        Check(f"{label}: init shape == apply shape", 1 - same, 1 - same, 0.0, "abs"),
        check_tree(f"{label}: output", y, ty),
        check_tree(f"{label}: dJ/dparams", dp, tdp),
        check_tree(f"{label}: dJ/dx", dx, tdx),
    ]


def _is_shape(s) -> bool:
    return isinstance(s, tuple) and all(isinstance(d, int) for d in s)


def vjp_row(label, f, pair, params, x, dout) -> Check:
    """One row: f(params, x) (JAX, float64, compiled) vs ``pair``: output, dJ/dx, dJ/dparams."""
    with jax.enable_x64(True):

        def run(p, x, d):
            y, vjp_fn = jax.vjp(f, p, x)
            dp, dx = vjp_fn(d)
            return y, dx, dp

        res = _to_numpy(compile_fast(run, params, x, dout)(params, x, dout))
    y, cache = pair.forward(params, x)
    return check_tree(label, res, (y, *pair.backward(dout, cache)))
