"""Verification: the hand-derived NumPy twin (:mod:`nnjax.reference`) against ``jax.grad``
and Optax, component by component. ``nnjax verify`` prints the table; the tests use the same
functions.

Every check returns :class:`Check` rows: the component, the max absolute difference, the max
relative difference, the tolerance and which of the two it bounds. The relative difference
of two arrays is normwise, max_i |a_i - b_i| / max_i |b_i|, and the max over the leaves of a
tree: elementwise ratios are meaningless where a derivative underflows (elu'(-60) = 8.8e-27,
which JAX's expm1 rule rounds to 0) or a saturated tanh' is rounding noise in both.

Tolerances (float64 unless said):

* values and gradients, twin vs ``jax.grad``: relative <= 1e-10 (``RTOL64``);
* gradients vs central finite differences (h = 1e-6): relative <= 1e-6 (``FD_RTOL``);
* 200-step optimizer trajectories, twin vs Optax: absolute <= 1e-9 (``TRAJ_ATOL``);
* ``nnjax.fit`` vs ``reference.train`` step by step: absolute <= 1e-9 on params and losses;
* float32: JAX in float32 against the float64 twin, relative <= 1e-4 for values and
  gradients (``RTOL32``: float32's unit roundoff is 6e-8; sums of up to 256 x 128 terms and
  five layers stay well inside 1e-4), and 100 fit steps within 1e-4 absolute (``TRAJ32_ATOL``).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import activations as A
from nnjax import losses as L
from nnjax import optim as O
from nnjax.models import mlp as jax_mlp
from nnjax.reference import activations as RA
from nnjax.reference import losses as RL
from nnjax.reference import optim as RO
from nnjax.reference.mlp import mlp as ref_mlp
from nnjax.reference.optim import tree_leaves

RTOL64 = 1e-10
FD_RTOL = 1e-6
FD_STEP = 1e-6
TRAJ_ATOL = 1e-9
RTOL32 = 1e-4
TRAJ32_ATOL = 1e-4


class Check(NamedTuple):
    """One row of the table: ``passed`` when the bounded difference is within ``tol``."""

    component: str
    max_abs: float
    max_rel: float
    tol: float
    bound: str = "rel"  # which difference ``tol`` bounds: "rel" or "abs"

    @property
    def passed(self) -> bool:
        d = self.max_rel if self.bound == "rel" else self.max_abs
        return bool(np.isfinite(d) and d <= self.tol)


def tree_diff(actual, expected) -> tuple[float, float]:
    """(max abs diff, max normwise relative diff) over the leaves of two trees."""
    a_leaves, e_leaves = tree_leaves(_to_numpy(actual)), tree_leaves(_to_numpy(expected))
    if len(a_leaves) != len(e_leaves):
        raise ValueError(f"tree_diff: {len(a_leaves)} leaves vs {len(e_leaves)}")
    max_abs = max_rel = 0.0
    for a, e in zip(a_leaves, e_leaves):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if a.shape != e.shape:
            raise ValueError(f"tree_diff: shapes {a.shape} vs {e.shape}")
        if a.size == 0:
            continue
        with np.errstate(invalid="ignore"):
            d = float(np.max(np.abs(a - e)))
        scale = float(np.max(np.abs(e)))
        max_abs = max(max_abs, d) if np.isfinite(d) else float("inf")
        rel = d / scale if scale > 0 else (0.0 if d == 0 else float("inf"))
        max_rel = max(max_rel, rel) if np.isfinite(rel) else float("inf")
    return max_abs, max_rel


def check(component: str, actual, expected, tol: float, bound: str = "rel") -> Check:
    """Compare two trees and make a :class:`Check` row."""
    return Check(component, *tree_diff(actual, expected), tol, bound)


def _to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


# XLA options that cut a small program's compile time about threefold on CPU; the numbers
# are the same up to rounding (no fast-math), well inside every tolerance above.
_FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_cpu_use_fusion_emitters": False,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_parallel_codegen_split_count": 1,
}
_fast_ok = [True]


def compile_fast(fn: Callable, *args):
    """``jax.jit(fn)`` compiled for ``args`` with the fast options (falls back if refused)."""
    lowered = jax.jit(fn).lower(*args)
    if _fast_ok[0]:
        try:
            return lowered.compile(compiler_options=_FAST_COMPILE)
        except Exception:  # an XLA without these options: compile plainly from now on
            _fast_ok[0] = False
    return lowered.compile()


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
    """The index arrays ``nnjax.fit`` uses, step by step (``None`` = full batch, in order).

    fit draws epoch e's order from permutation(fold_in(order_key, e), n), order_key =
    split(key)[0], keeps the first n // b * b and reshapes them to (n // b, b).
    """
    key = jax.random.key(int(key)) if isinstance(key, int | np.integer) else key
    if batch_size is None:
        return [None] * epochs
    order_key = jax.random.split(key)[0]
    steps = n // batch_size
    perms = jax.jit(
        jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(order_key, e), n))
    )(jnp.arange(epochs))
    perms = np.asarray(perms)[:, : steps * batch_size]
    return list(perms.reshape(epochs * steps, batch_size))


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
    return _to_numpy(res.params), ref_params, res.loss_history, ref_losses


# --- the component checks -----------------------------------------------------------------


def check_activations(rng: np.random.Generator) -> list[Check]:
    """Each activation's value and vjp, twin vs JAX, on z in [-40, 40] with 0 and +-1e4."""
    z = rng.normal(0.0, 8.0, (64, 9))
    z[0, :5] = [0.0, -0.0, 1e4, -1e4, 40.0]
    dout = rng.normal(size=z.shape)

    def jax_side(z, dout):  # all activations in one compiled program
        out = {}
        for name, f in A.ACTIVATIONS.items():
            value, vjp_fn = jax.vjp(f, z)
            out[name] = (value, vjp_fn(dout)[0])
        return out

    with jax.enable_x64(True):
        res = _to_numpy(compile_fast(jax_side, z, dout)(z, dout))
    return [
        check(f"activation {name}", res[name], (RA.value(name, z), RA.vjp(name, z, dout)), RTOL64)
        for name in A.ACTIVATIONS
    ]


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
    """The step 1[z > 0] passes the finite-difference check; max(0, z) (ReLU itself) fails."""
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
    """Every optimizer's ``steps``-step trajectory, Optax vs twin (and one cosine schedule)."""
    rows = []
    for name in O.OPTIMIZERS:
        jp, rp = optimizer_trajectory(name, steps)
        rows.append(check(f"optimizer {name}: {steps} steps", jp, rp, TRAJ_ATOL, "abs"))
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


def check_registries() -> list[Check]:
    """Every public activation, loss, layer and optimizer name has a twin."""
    from nnjax.layers import LAYERS
    from nnjax.reference.layers import LAYERS as REF_LAYERS

    rows = []
    for kind, public, twins in (
        ("activations", A.ACTIVATIONS, RA.ACTIVATIONS),
        ("losses", L.LOSSES, RL.LOSSES),
        ("layers", LAYERS, REF_LAYERS),
        ("optimizers", O.OPTIMIZERS, RO.OPTIMIZERS),
    ):
        missing = sorted(set(public) - set(twins))
        rows.append(Check(f"twins for all {len(public)} {kind} {missing or ''}",
                          float(len(missing)), float(len(missing)), 0.0, "abs"))  # fmt: skip
    return rows


def run_all(seed: int = 0, architectures: int = 8) -> list[Check]:
    """Every check, in the order of the table."""
    rng = np.random.default_rng(seed)
    rows = check_registries()
    rows += check_activations(rng) + check_losses(rng) + check_layers(rng)
    for i in range(architectures):
        rows += compare_mlp(random_arch(rng), seed + i)
    rows += check_finite_differences(rng) + check_relu_derivative(rng)
    rows += check_optimizers() + check_fit() + check_float32(rng)
    return rows
