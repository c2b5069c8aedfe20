"""The component checks of ``nnjax verify``: activations, losses, layers, finite
differences, the ReLU derivative, optimizers, fit, float32 and the registries."""

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import activations as A
from nnjax import losses as L
from nnjax import optim as O
from nnjax.reference import activations as RA
from nnjax.reference import losses as RL
from nnjax.reference import optim as RO
from nnjax.verify.core import (
    FD_RTOL,
    FD_STEP,
    RTOL32,
    RTOL64,
    TRAJ32_ATOL,
    TRAJ_ATOL,
    Check,
    _to_numpy,
    check,
    compile_fast,
)
from nnjax.verify.problems import (
    Arch,
    compare_fit,
    jax_loss_and_grads,
    make_problem,
    models,
    output_activation_for,
    ref_loss_and_grads,
)

# --- the component checks -----------------------------------------------------------------


def check_activations(rng: np.random.Generator) -> list[Check]:
    """Each activation's value and vjp, twin vs JAX, on z ~ N(0, 8^2) (64 x 9 values; not
    clipped, so a seed may draw |z| > 40) with 0, -0, 40 and +-1e4 among them."""
    z = rng.normal(0.0, 8.0, (64, 9))
    z[0, :5] = [0.0, -0.0, 1e4, -1e4, 40.0]
    dout = rng.normal(size=z.shape)

    def jax_side(z, dout):  # all activations in one compiled program
        out = {}
        for name, f in A.ACTIVATIONS.items():
            value, vjp_fn = jax.vjp(f, z)
            out[name] = (value, vjp_fn(dout)[0])
        for name, kw in ACTIVATION_HYPERPARAMETERS:
            value, vjp_fn = jax.vjp(functools.partial(A.ACTIVATIONS[name], **kw), z)
            out[f"{name} ({_label(kw)})"] = (value, vjp_fn(dout)[0])
        return out

    with jax.enable_x64(True):
        res = _to_numpy(compile_fast(jax_side, z, dout)(z, dout))
    rows = [
        check(f"activation {name}", res[name], (RA.value(name, z), RA.vjp(name, z, dout)), RTOL64)
        for name in A.ACTIVATIONS
    ]
    for name, kw in ACTIVATION_HYPERPARAMETERS:
        f, df = RA.ACTIVATIONS[name]
        twin = (f(z, **kw), dout * df(z, **kw))
        what = f"{name} ({_label(kw)})"
        rows.append(check(f"activation {what}", res[what], twin, RTOL64))
    return rows


# the activations and optimizers with hyperparameters are checked at their defaults and at
# these values too: a twin (or a wrapper) that ignored one passed every default row
ACTIVATION_HYPERPARAMETERS = (("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.5}))
OPTIMIZER_HYPERPARAMETERS = (
    ("momentum", {"momentum": 0.5}),
    ("nesterov", {"momentum": 0.99}),
    ("adam", {"b1": 0.5, "b2": 0.9, "eps": 1e-3}),
    ("adamw", {"weight_decay": 0.1}),
    ("rmsprop", {"decay": 0.5, "eps": 1e-2}),
    ("adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-3}),
)


def _label(hyperparams: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in hyperparams.items())


def loss_cases(rng: np.random.Generator) -> list[tuple[str, str, Any, Any]]:
    """(loss, case, prediction, target) with ordinary and extreme inputs for every loss."""
    B, K = 37, 5
    logits = rng.normal(0.0, 3.0, (B, K))
    labels = rng.integers(0, K, B)
    cases = []
    for name, z in (("normal", logits), ("extreme", logits * 1e4)):
        cases += [
            ("softmax_cross_entropy", f"{name} labels", z, labels.astype(np.int32)),
            ("softmax_cross_entropy", f"{name} one-hot", z, np.eye(K)[labels]),
            ("softmax_cross_entropy", f"{name} probs", z, rng.dirichlet(np.ones(K), B)),
            # rows not summing to 1: the only case where dJ/dz's factor sum_k t_bk shows
            ("softmax_cross_entropy", f"{name} weights", z, rng.uniform(0.0, 2.0, (B, K))),
            ("binary_cross_entropy_with_logits", f"{name} (B,1)", z[:, :1], labels % 2 * 1.0),
            ("binary_cross_entropy_with_logits", f"{name} (B,K)", z, rng.integers(0, 2, z.shape)),
            ("mse", f"{name}", z, rng.normal(size=z.shape)),
        ]
    p = rng.uniform(size=(B, 1))
    p[:4, 0] = [0.0, 1.0, 1e-300, 1.0 - 1e-17]  # clipped to [eps, 1 - eps]
    cases.append(("binary_cross_entropy", "with p in {0, 1}", p, labels % 2 * 1.0))
    cases.append(("mse", "(B,1) vs (B,)", logits[:, :1], rng.normal(size=B)))
    return [(loss, case, pred, np.asarray(t, np.float64) if t.dtype == np.int64 else t)
            for loss, case, pred, t in cases]  # fmt: skip


def check_losses(rng: np.random.Generator) -> list[Check]:
    """Each loss's value and gradient, twin vs jax.value_and_grad, mean and sum reductions."""
    cases = loss_cases(rng)
    reductions = ("mean", "sum")

    def jax_side(arrays):  # every case in one compiled program
        out = []
        for (loss, *_), (pred, target) in zip(cases, arrays):
            for red in reductions:
                f = lambda p, t=target, red=red, loss=loss: L.LOSSES[loss](p, t, red)
                out.append(jax.value_and_grad(f)(pred))
        return out

    arrays = [(pred, target) for _, _, pred, target in cases]
    with jax.enable_x64(True):
        res = iter(_to_numpy(compile_fast(jax_side, arrays)(arrays)))
    rows = []
    for loss, case, pred, target in cases:
        value, grad = RL.get(loss)
        for red in reductions:
            ref = (value(pred, target, red), grad(pred, target, red))
            rows.append(check(f"loss {loss} {case} {red}", next(res), ref, RTOL64))
    return rows


def check_layers(rng: np.random.Generator) -> list[Check]:
    """Dense, Activation, Flatten, Dropout (JAX's own mask) and serial: forward and vjp."""
    from nnjax import layers as JL
    from nnjax.reference import layers as RLay

    x = rng.normal(size=(6, 2, 5))
    dense_p = {"W": rng.normal(size=(5, 4)), "b": rng.normal(size=4)}
    cases = [
        ("Dense", JL.Dense(4), RLay.dense(4), dense_p),
        ("Dense no bias", JL.Dense(4, use_bias=False), RLay.dense(4, use_bias=False),
         {"W": dense_p["W"]}),
        ("Activation(gelu)", JL.Activation("gelu"), RLay.activation("gelu"), {}),
        ("Flatten", JL.Flatten(), RLay.flatten(), {}),
        ("Dropout(0.3)", JL.Dropout(0.3), None, {}),
        ("serial", JL.serial(JL.Flatten(), JL.Dense(4), JL.Activation("softmax")),
         RLay.serial(RLay.flatten(), RLay.dense(4), RLay.activation("softmax")),
         [{}, {"W": rng.normal(size=(10, 4)), "b": rng.normal(size=4)}, {}]),
    ]  # fmt: skip
    with jax.enable_x64(True):
        key = jax.random.key(0)
        keep = np.asarray(JL.Dropout(0.3).apply({}, jnp.ones(x.shape), key=key)) != 0
        outs = [jax.eval_shape(lambda p, l=l: l.apply(p, x), p) for _, l, _, p in cases]
        douts = [rng.normal(size=o.shape) for o in outs]

        def jax_side(params, x, douts):  # every layer in one compiled program
            res = []
            for (name, layer, _, _), p, d in zip(cases, params, douts):
                k = key if name.startswith("Dropout") else None
                out, vjp_fn = jax.vjp(lambda p, x, l=layer, k=k: l.apply(p, x, key=k), p, x)
                res.append((out, *vjp_fn(d)[::-1]))
            return res

        params = [c[3] for c in cases]
        res = _to_numpy(compile_fast(jax_side, params, x, douts)(params, x, douts))
    rows = []
    for (name, _, pair, p), d, r in zip(cases, douts, res):
        pair = pair or RLay.dropout(0.3, keep)
        out, cache = pair.forward(p, x)
        rows.append(check(f"layer {name}", r, (out, *pair.backward(d, cache)), RTOL64))
    return rows


def finite_difference_grad(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = FD_STEP):
    """Central differences: dJ/dx_i ~ (J(x + h e_i) - J(x - h e_i)) / 2h."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def _fd_param_grads(J: Callable, params: list) -> list:
    """Central differences of J(params) for every leaf of a list of dicts."""
    grads = []
    for i, p in enumerate(params):
        grads.append({})
        for k in p:

            def J_leaf(w, i=i, k=k):
                q = [dict(d) for d in params]
                q[i][k] = w
                return J(q)

            grads[-1][k] = finite_difference_grad(J_leaf, p[k])
    return grads


def finite_difference_check(arch: Arch, rng: np.random.Generator) -> Check:
    """The twin's parameter gradients for ``arch`` vs central differences of its loss."""
    params, X, y = make_problem(arch, rng)
    _, (forward, backward) = models(arch)
    value, grad = RL.get(arch.loss)
    out, cache = forward(params, X)
    _, gp = backward(grad(out, y), cache)
    fd = _fd_param_grads(lambda q: value(forward(q, X)[0], y), params)
    name = f"finite differences mlp {arch.activation}/{arch.output_activation} {arch.loss}"
    return check(name, gp, fd, FD_RTOL)


def check_finite_differences(rng: np.random.Generator) -> list[Check]:
    """One small MLP per activation (losses in turn), twin gradients vs central differences."""
    losses = list(L.LOSSES)
    archs = [
        Arch(3, (4, 3), 5, act, output_activation_for(loss, None), loss, "match")
        for act, loss in zip(A.ACTIVATIONS, losses * len(A.ACTIVATIONS))
    ]
    return [finite_difference_check(arch, rng) for arch in archs]


def check_relu_derivative(rng: np.random.Generator) -> list[Check]:
    """Two rows: the step 1[z > 0] against central differences away from the kink, and
    relu'(0) = 0 against jax.grad(relu)(0). The formula max(0, z) (ReLU itself, kept as
    ``relu_derivative_wrong``) would fail the first; no row runs it (a row that must fail
    would fail the table)."""
    z = rng.uniform(-3.0, 3.0, 200)
    z = z[np.abs(z) > 1e-3]  # away from the kink, where the difference quotient is exact
    fd = (RA.relu(z + FD_STEP) - RA.relu(z - FD_STEP)) / (2 * FD_STEP)
    with jax.enable_x64(True):
        at_zero = float(jax.grad(A.relu)(0.0))
    return [
        check("relu' = 1[z > 0] vs finite differences", RA.relu_derivative(z), fd, FD_RTOL),
        check("relu'(0) = 0 vs jax.grad(relu)(0)", RA.relu_derivative(0.0), at_zero, 0.0, "abs"),
    ]


def _objective_grads(params):
    """A smooth, non-quadratic gradient field g(theta) = 2 theta + sin(3 theta) - 0.5."""
    return jax.tree.map(lambda t: 2 * t + jnp.sin(3 * t) - 0.5, params)


def optimizer_trajectory(
    name: str, steps: int = 200, learning_rate=0.01, dtype=np.float64, **hyperparams
):
    """(Optax params, twin params) after ``steps`` updates on g(theta) above, on a nested
    dict/list/tuple tree, from the same start; ``hyperparams`` go to both optimizers."""
    rng = np.random.default_rng(1)
    start = {"w": [rng.normal(size=(3, 4)), rng.normal(size=5)], "b": (rng.normal(size=2),)}
    start = jax.tree.map(lambda a: a.astype(dtype), start)
    with jax.enable_x64(dtype == np.float64):
        opt = O.get_optimizer(name, learning_rate, **hyperparams)

        def body(carry, _):
            p, s = carry
            u, s = opt.update(_objective_grads(p), s, p)
            return (optax.apply_updates(p, u), s), None

        run = lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=steps)[0][0]
        jax_params = _to_numpy(compile_fast(run, start)(start))
    ref_lr = learning_rate
    if callable(learning_rate):
        # Optax calls a schedule inside its compiled update with an int32 step count, and
        # some schedules round through float32 on such a count (exponential_decay does, even
        # with x64): evaluate it alike, compiled, so both sides get the same eta_t.
        compiled_schedule = jax.jit(learning_rate)
        ref_lr = lambda t: compiled_schedule(jnp.asarray(t, jnp.int32))
    init, update = RO.OPTIMIZERS[name](ref_lr, **hyperparams)
    p, s = start, init(start)
    with jax.enable_x64(dtype == np.float64):  # an Optax schedule then runs in float64 too
        for _ in range(steps):
            g = RO.tree_map(lambda t: 2 * t + np.sin(3 * t) - 0.5, p)
            p, s = update(g, s, p)
    return jax_params, p


def check_optimizers(steps: int = 200) -> list[Check]:
    """Every optimizer's ``steps``-step trajectory, Optax vs twin, at its default
    hyperparameters and at :data:`OPTIMIZER_HYPERPARAMETERS` (and one cosine schedule)."""
    rows = []
    for name in O.OPTIMIZERS:
        jp, rp = optimizer_trajectory(name, steps)
        rows.append(check(f"optimizer {name}: {steps} steps", jp, rp, TRAJ_ATOL, "abs"))
    for name, kw in OPTIMIZER_HYPERPARAMETERS:
        jp, rp = optimizer_trajectory(name, steps, **kw)
        what = f"optimizer {name} ({_label(kw)}): {steps} steps"
        rows.append(check(what, jp, rp, TRAJ_ATOL, "abs"))
    sched = optax.cosine_decay_schedule(0.05, steps)
    jp, rp = optimizer_trajectory("adam", steps, learning_rate=sched)
    rows.append(check(f"optimizer adam, cosine schedule: {steps} steps", jp, rp, TRAJ_ATOL, "abs"))
    return rows


def check_fit() -> list[Check]:
    """nnjax.fit vs reference.train, same batches: mini-batch and full-batch."""
    rows = []
    for opt, bs, epochs in (("sgd", 16, 4), ("nesterov", 10, 3), ("adam", 16, 4), ("gd", None, 12)):
        fp, rp, fl, rl = compare_fit(opt, bs, epochs)
        what = "full batch" if bs is None else f"batch {bs}"
        rows.append(check(f"fit {opt} {what}: params", fp, rp, TRAJ_ATOL, "abs"))
        rows.append(check(f"fit {opt} {what}: losses", fl, rl, TRAJ_ATOL, "abs"))
    return rows


def check_float32(rng: np.random.Generator) -> list[Check]:
    """JAX in float32 vs the float64 twin: one deep MLP's grads, and 100 fit steps."""
    arch = Arch(17, (128, 64, 128, 32, 10), 256, "tanh", None, "softmax_cross_entropy", "labels")
    params, X, y = make_problem(arch, rng)
    model, ref = models(arch)
    p32 = jax.tree.map(lambda a: a.astype(np.float32), params)
    j = jax_loss_and_grads(model, arch.loss, p32, X.astype(np.float32), y)
    r = ref_loss_and_grads(ref, arch.loss, params, X, y)
    rows = [check("float32 mlp 17->[128,64,128,32,10]: output, loss, grads", j, r, RTOL32)]
    fp, rp, fl, rl = compare_fit("momentum", 12, 25, dtype=np.float32)
    rows.append(check("float32 fit momentum, 100 steps: params", fp, rp, TRAJ32_ATOL, "abs"))
    rows.append(check("float32 fit momentum, 100 steps: losses", fl, rl, TRAJ32_ATOL, "abs"))
    return rows


def _defaults(f) -> dict:
    """The keyword defaults ``f``'s signature declares ({} where it has none to read)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def default_mismatches(public: dict, twins: dict) -> list[str]:
    """Every keyword default that a public function (or factory) and its twin both declare
    and that differ, as "name param: JAX's value vs twin value". The other rows build
    the twin from JAX's own hyperparameters (a layer's spec, say), so they cannot see a
    default that only one side changed: ``LayerNorm()`` with eps 1e-3 against the twin's
    1e-5 passed every one of them."""
    out = []
    for name in sorted(set(public) & set(twins)):
        mine = _defaults(public[name])
        twin = twins[name] if isinstance(twins[name], tuple) else (twins[name],)
        for f in twin:  # an activation's or loss's twin is a pair: value and derivative
            for k, v in _defaults(f).items():
                if k in mine and not _same(mine[k], v):
                    out.append(f"{name} {k}: {mine[k]!r} vs twin {v!r}")
    return sorted(set(out))


def _same(a, b) -> bool:
    """Equal defaults: numbers by value (1 == 1.0), a bool only to the same bool."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return bool(a == b)
    except ValueError:  # an array default: compare it as such
        return bool(np.array_equal(a, b))


def check_registries() -> list[Check]:
    """Every public activation, loss, layer and optimizer name has a twin, and the keyword
    defaults both sides declare agree (:func:`default_mismatches`)."""
    from nnjax.layers import LAYERS
    from nnjax.reference.layers import LAYERS as REF_LAYERS

    kinds = (
        ("activations", A.ACTIVATIONS, RA.ACTIVATIONS),
        ("losses", L.LOSSES, RL.LOSSES),
        ("layers", LAYERS, REF_LAYERS),
        ("optimizers", O.OPTIMIZERS, RO.OPTIMIZERS),
    )
    rows = []
    for kind, public, twins in kinds:
        missing = sorted(set(public) - set(twins))
        rows.append(Check(f"twins for all {len(public)} {kind} {missing or ''}",
                          float(len(missing)), float(len(missing)), 0.0, "abs"))  # fmt: skip
    for kind, public, twins in kinds:
        differ = default_mismatches(public, twins)
        rows.append(Check(f"defaults of the {kind} equal the twins' {differ or ''}",
                          float(len(differ)), float(len(differ)), 0.0, "abs"))  # fmt: skip
    return rows
