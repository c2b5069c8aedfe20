"""The continual-learning baselines, each a :class:`~nnjax.brain.continual.Method` (pure hooks).

Notation: theta the network's parameters, l(theta; x, y) the softmax cross-entropy of a
batch, t = 0, 1, ... the task index, theta*_t the parameters at the end of task t. Every
hyperparameter arrives as ``hp`` (a dict of arrays), so one compiled study runs many
candidates side by side (``vmap``).

**EWC, online** (Kirkpatrick et al. 2017; the online form of Schwarz et al. 2018). After task
t, the diagonal of the **true Fisher information** on task t's training inputs x_1..x_n,
with the expectation over the network's own predictive distribution taken exactly over the
K classes (not sampled, and not the "empirical" Fisher of the true labels):

    F_t,i = 1/n sum_n sum_k p_k(x_n) (d log p_k(x_n) / d theta_i)^2,

accumulates as F~_t = gamma F~_{t-1} + F_t, and task t+1 minimises
l + (lambda / 2) sum_i F~_t,i (theta_i - theta*_t,i)^2.  ``hp``: ``lam``, ``gamma`` in [0, 1].

**Synaptic Intelligence** (Zenke, Poole & Ganguli 2017). During task t every optimizer step
adds omega_i -= g_i Delta theta_i (g the gradient of the *unregularised* task loss, Delta
theta the step actually taken, momentum included): the path integral of the loss decrease
each parameter is responsible for. After task t, with Delta_i = theta*_t,i - theta*_{t-1,i},
Omega_i += max(omega_i, 0) / (Delta_i^2 + xi) and omega is reset; task t+1 minimises
l + c sum_i Omega_i (theta_i - theta*_t,i)^2.  (Negative path integrals, where the task loss
rose along the path, are set to 0 so the penalty stays a bounded-below quadratic; Zenke et
al. do not say.)  ``hp``: ``c``, ``xi``.

**Learning without Forgetting** (Li & Hoiem 2017), class-incremental single-head form as van
de Ven, Siegelmann & Tolias (2020) run it: the network at the end of task t-1 labels the
*current* inputs softly; on the classes seen before task t (mask S),

    L = 1/(1+t) l + t/(1+t) lambda T^2 KD,
    KD = -mean_b sum_{k in S} softmax(z_old / T)_k log softmax(z / T)_k  (softmaxes over S).

``hp``: ``temperature`` T, ``lam`` lambda (van de Ven et al.: T = 2, lambda = 1).

**Experience replay with a fixed buffer** of M examples per class (per class *and task* in the
permuted, domain-incremental setting). Selection: after task t, for each of its classes, a
uniform random sample without replacement of min(M, n_k) of its training examples (what a
class-balanced reservoir holds at the end of the task; no herding). While task t > 0 is
learned, every batch of B current examples is joined by B examples drawn uniformly (with
replacement) from the buffer — class-balanced, since every stored class holds M — and

    L = 1/(1+rho t) l(current) + rho t/(1+rho t) l(replayed)

(rho = 1: each task seen so far counts equally, as in generative replay). ``hp``: ``rho``,
``m`` (M, at most the buffer's ``capacity``).

:func:`combine` joins two methods (e.g. a replay buffer and SRC's sleep).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnjax.brain.baselines_checks import (
    _check_hp,
    _check_keys,
    _check_weights,
    _checker,
    check_buffer_size,
)
from nnjax.brain.continual import Method, soft_cross_entropy
from nnjax.brain.dynamics import check_count

Array = jax.Array
_MASKED = -1e9  # a logit that takes no part in a softmax (finite, so an empty mask gives no nan)


def _sq_distance(weights, params, anchor) -> Array:
    """sum_i w_i (theta_i - anchor_i)^2 over a pytree."""
    terms = jax.tree.map(lambda w, p, a: jnp.sum(w * (p - a) ** 2), weights, params, anchor)
    return sum(jax.tree.leaves(terms))


# --------------------------------------------------------------------------- EWC


def example_fisher(apply, params, x: Array):
    """sum_k p_k(x) (d log p_k(x) / d theta)^2 for one input ``x`` (d,): a pytree like params.
    One forward pass, K backward passes (``jax.vjp``, a scan over the classes)."""
    logp, vjp = jax.vjp(lambda p: jax.nn.log_softmax(apply(p, x[None])[0]), params)
    prob, K = jnp.exp(logp), logp.shape[0]

    def add(acc, k):
        (g,) = vjp(jax.nn.one_hot(k, K, dtype=logp.dtype))
        return jax.tree.map(lambda a, gi: a + prob[k] * gi * gi, acc, g), None

    acc, _ = jax.lax.scan(add, jax.tree.map(jnp.zeros_like, params), jnp.arange(K))
    return acc


def fisher_diagonal(apply, params, X: Array, weights: Array, chunk: int = 32):
    """The diagonal true Fisher (module docstring) of the rows of ``X`` (n, d) weighted by
    ``weights`` (n,) >= 0: sum_n w_n F(x_n) / sum_n w_n (0 if every w_n is 0). Rows run
    ``chunk`` (an int >= 1) at a time, so memory holds ``chunk`` per-example gradients."""
    chunk = check_count(chunk, "chunk", "fisher_diagonal")
    n = X.shape[0]
    _check_weights(weights, n, "fisher_diagonal")
    pad = (-n) % chunk
    Xc = jnp.pad(X, ((0, pad), (0, 0))).reshape(-1, chunk, X.shape[1])
    wc = jnp.pad(weights, (0, pad)).reshape(-1, chunk).astype(X.dtype)

    def add(acc, xw):
        xs, ws = xw
        per = jax.vmap(lambda x: example_fisher(apply, params, x))(xs)
        return jax.tree.map(lambda a, f: a + jnp.tensordot(ws, f, axes=1), acc, per), None

    total, _ = jax.lax.scan(add, jax.tree.map(jnp.zeros_like, params), (Xc, wc))
    w = weights.sum().astype(X.dtype)  # / max(w, 1) made fractional weights' Fisher too small
    return jax.tree.map(lambda f: f / jnp.where(w > 0, w, 1.0), total)


def ewc_method(apply) -> Method:
    """Online EWC for the network ``apply`` (module docstring)."""

    def init(key, params, hp):
        return {"fisher": jax.tree.map(jnp.zeros_like, params), "anchor": params}

    def loss(params, extra, key, t, x, y1h, hp):
        penalty = _sq_distance(extra["fisher"], params, extra["anchor"])
        return soft_cross_entropy(apply(params, x), y1h) + 0.5 * hp["lam"] * penalty

    def after_task(params, extra, key, t, task, seen, hp):
        Xt, _, nt = task
        F = fisher_diagonal(apply, params, Xt, jnp.arange(Xt.shape[0]) < nt)
        F = jax.tree.map(lambda old, new: hp["gamma"] * old + new, extra["fisher"], F)
        return params, {"fisher": F, "anchor": params}

    check = _checker({"lam": (0.0, True), "gamma": (0.0, True, 1.0)}, "ewc_method")
    return Method(init=init, loss=loss, after_task=after_task, check=check)


# --------------------------------------------------------------------------- SI


class PathIntegralState(NamedTuple):
    """The state of :func:`path_integral`: the wrapped optimizer's ``inner`` state, the running
    ``omega`` (like params) and the params at the ``start`` of the task."""

    inner: optax.OptState
    omega: optax.Params
    start: optax.Params


def path_integral(opt: optax.GradientTransformation, task_grad=None):
    """``opt`` that also accumulates omega_i -= g_i u_i over its steps, with u the update it
    returns and g = ``task_grad(grads, params)`` (default: the gradient it is given)."""
    task_grad = task_grad or (lambda grads, params: grads)

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return PathIntegralState(opt.init(params), zeros, params)

    def update(grads, state, params=None):
        updates, inner = opt.update(grads, state.inner, params)
        g = task_grad(grads, params)
        omega = jax.tree.map(lambda o, gi, u: o - gi * u, state.omega, g, updates)
        return updates, PathIntegralState(inner, omega, state.start)

    return optax.GradientTransformation(init, update)


def si_importance(omega, start, end, xi):
    """Omega's increment of one task: max(omega, 0) / ((end - start)^2 + xi), per parameter."""
    return jax.tree.map(
        lambda o, s, e: jnp.maximum(o, 0.0) / ((e - s) ** 2 + xi), omega, start, end
    )


def si_method(apply) -> Method:
    """Synaptic Intelligence for the network ``apply`` (module docstring)."""

    def init(key, params, hp):
        return {"omega": jax.tree.map(jnp.zeros_like, params), "anchor": params}

    def loss(params, extra, key, t, x, y1h, hp):
        penalty = _sq_distance(extra["omega"], params, extra["anchor"])
        return soft_cross_entropy(apply(params, x), y1h) + hp["c"] * penalty

    def optimizer(opt, params, extra, t, hp):
        def task_grad(grads, p):  # the penalty's gradient 2 c Omega (theta - anchor) removed
            pen = jax.tree.map(lambda w, q, a: 2.0 * hp["c"] * w * (q - a),
                               extra["omega"], p, extra["anchor"])  # fmt: skip
            return jax.tree.map(jnp.subtract, grads, pen)

        return path_integral(opt, task_grad)

    def after_wake(params, extra, opt_state, t, hp):
        inc = si_importance(opt_state.omega, opt_state.start, params, hp["xi"])
        return {"omega": jax.tree.map(jnp.add, extra["omega"], inc), "anchor": params}

    check = _checker({"c": (0.0, True), "xi": (0.0, False)}, "si_method")
    return Method(init=init, loss=loss, optimizer=optimizer, after_wake=after_wake, check=check)


# --------------------------------------------------------------------------- LwF


def distillation(logits: Array, old_logits: Array, mask: Array, temperature) -> Array:
    """KD = -mean_b sum_{k in mask} softmax(old/T)_k log softmax(logits/T)_k (softmaxes over
    the ``mask`` (K,) classes only); the temperature T must be finite and > 0 (checked when
    concrete)."""
    _check_hp({"temperature": temperature}, {"temperature": (0.0, False)}, "distillation")
    q = jax.nn.softmax(jnp.where(mask, old_logits / temperature, _MASKED), axis=-1)
    logp = jax.nn.log_softmax(jnp.where(mask, logits / temperature, _MASKED), axis=-1)
    return -jnp.mean(jnp.sum(jnp.where(mask, q * logp, 0.0), axis=-1))


def lwf_method(apply, n_classes: int) -> Method:
    """Learning without Forgetting, class-incremental single head (module docstring)."""
    n_classes = check_count(n_classes, "n_classes", "lwf_method")  # 0 failed in the trace

    def init(key, params, hp):
        return {"old": params, "seen": jnp.zeros(n_classes, bool)}

    def loss(params, extra, key, t, x, y1h, hp):
        w, T = t / (t + 1.0), hp["temperature"]
        z = apply(params, x)
        kd = distillation(z, apply(extra["old"], x), extra["seen"], T)
        return (1.0 - w) * soft_cross_entropy(z, y1h) + w * hp["lam"] * T**2 * kd

    def after_task(params, extra, key, t, task, seen, hp):
        _, yt, _ = task  # padded rows repeat real ones
        return params, {"old": params, "seen": extra["seen"].at[yt].set(True)}

    check = _checker({"temperature": (0.0, False), "lam": (0.0, True)}, "lwf_method")
    return Method(init=init, loss=loss, after_task=after_task, check=check)


# --------------------------------------------------------------------------- replay buffer


def select_per_class(key, y: Array, n: Array, n_classes: int, capacity: int, m) -> tuple:
    """For each class k: up to ``capacity`` row indices of class k among the first ``n`` rows
    of ``y`` (N,), in a uniformly random order, and a mask of the first min(m, n_k) of them.
    Returns (idx (K, capacity) int, valid (K, capacity) bool). ``m``: a whole number in
    0..capacity (checked when concrete, :func:`check_buffer_size`); ``n_classes`` and
    ``capacity`` ints >= 1 (0 gave an empty buffer without a word)."""
    n_classes = check_count(n_classes, "n_classes", "select_per_class")
    capacity = check_count(capacity, "capacity", "select_per_class")
    check_buffer_size(m, capacity, "select_per_class")
    u = jax.random.uniform(key, y.shape)
    real = jnp.arange(y.shape[0]) < n

    def one(k):
        mine = real & (y == k)
        order = jnp.argsort(jnp.where(mine, u, 2.0))  # fewer than capacity rows: padded
        idx = jnp.pad(order, (0, max(0, capacity - order.shape[0])))[:capacity]
        valid = jnp.arange(capacity) < jnp.minimum(m, mine.sum())
        return idx, valid

    return jax.vmap(one)(jnp.arange(n_classes))


def sample_buffer(key, X: Array, valid: Array, n: int) -> tuple[Array, Array]:
    """``n`` examples drawn uniformly, with replacement, from the valid slots of a buffer ``X``
    (T, K, capacity, d) / ``valid`` (T, K, capacity) whose (task, class) cells hold their
    valid examples first: a cell is drawn in proportion to its count, then a slot uniformly
    in it. Returns (x (n, d), class labels (n,)). An empty buffer (no valid slot) gives zero
    inputs labelled 0, whatever its slots hold: weight them 0. ``n``: an int >= 0 (a negative
    one failed deep in JAX's shapes)."""
    n = check_count(n, "n", "sample_buffer", minimum=0)
    T, K, cap, d = X.shape
    count = valid.reshape(T * K, cap).sum(-1)
    k_cell, k_slot = jax.random.split(key)
    logits = jnp.where(count > 0, jnp.log(jnp.maximum(count, 1)), _MASKED)
    cell = jax.random.categorical(k_cell, logits, shape=(n,))
    i = jnp.floor(jax.random.uniform(k_slot, (n,)) * count[cell]).astype(jnp.int32)
    i = jnp.clip(i, 0, cap - 1)
    full = count.sum() > 0
    x = jnp.where(full, X.reshape(T * K, cap, d)[cell, i], 0.0)
    return x, jnp.where(full, cell % K, 0)


def replay_method(apply, n_tasks: int, n_classes: int, d: int, capacity: int = 20) -> Method:
    """Experience replay with a buffer of ``hp["m"]`` <= ``capacity`` examples per class and
    task (module docstring). The buffer is ``{"X": (T, K, capacity, d), "valid": (T, K,
    capacity)}`` in the method's state; unused slots are masked, so every M in
    1..capacity shares one compiled program. While the buffer is empty (M = 0) the replayed
    term has weight 0: plain sequential training. ``hp``: ``m`` a whole number in
    0..capacity, ``rho`` finite >= 0 (checked before training, ``Method.check``)."""
    where = "replay_method"  # 0 or a float failed deep in XLA (a gather, a shape)
    T, K = check_count(n_tasks, "n_tasks", where), check_count(n_classes, "n_classes", where)
    d, capacity = check_count(d, "d", where), check_count(capacity, "capacity", where)

    def init(key, params, hp):
        return {"X": jnp.zeros((T, K, capacity, d)), "valid": jnp.zeros((T, K, capacity), bool)}

    def check_task(Xt, seen_X) -> None:
        """The split's (static) shapes against the buffer's, while tracing: free per step."""
        N = Xt.shape[0]
        Tr = T if seen_X is None else seen_X.shape[0] // max(N, 1)  # None: an AttributeError
        if Xt.shape[-1] != d or (seen_X is not None and seen_X.shape[0] != T * N):
            raise ValueError(f"{where}: the buffer holds {T} tasks of {d} features, but the run's "
                             f"tasks are {Tr} of {Xt.shape[-1]}: give n_tasks and d of the "
                             "split (X_tasks (T, N, d))")  # fmt: skip

    def loss(params, extra, key, t, x, y1h, hp):
        if x.shape[-1] != d:  # static: checked while tracing
            raise ValueError(f"{where}: the buffer holds inputs of d={d} features, but the "
                             f"run's have {x.shape[-1]}: give d of the split")  # fmt: skip
        B, w = x.shape[0], hp["rho"] * t / (1.0 + hp["rho"] * t)
        w = jnp.where(extra["valid"].any(), w, 0.0)  # an empty buffer replays nothing
        xr, yr = sample_buffer(key, extra["X"], extra["valid"], B)
        cur = soft_cross_entropy(apply(params, x), y1h)
        return (1.0 - w) * cur + w * soft_cross_entropy(apply(params, xr), jax.nn.one_hot(yr, K))

    def after_task(params, extra, key, t, task, seen, hp):
        Xt, yt, nt = task
        check_task(Xt, None if seen is None else seen[0])
        idx, valid = select_per_class(key, yt, nt, K, capacity, hp["m"])
        return params, {
            "X": extra["X"].at[t].set(Xt[idx]),
            "valid": extra["valid"].at[t].set(valid),
        }

    def check(hp):
        _check_keys(hp, ("rho", "m"), "replay_method")
        check_buffer_size(hp["m"], capacity, "replay_method")
        _check_hp(hp, {"rho": (0.0, True)}, "replay_method", keys=("rho", "m"))

    return Method(init=init, loss=loss, after_task=after_task, check=check)


# --------------------------------------------------------------------------- combining


def combine(first: Method, second: Method) -> Method:
    """Both methods at once: ``hp`` = (hp_first, hp_second), state = (extra_first,
    extra_second); ``after_task`` runs first's then second's (the params threaded through);
    ``check`` runs both; the wake loss, optimizer and ``after_wake`` may come from one of them
    only."""
    for hook in ("loss", "optimizer", "after_wake"):
        if getattr(first, hook) is not None and getattr(second, hook) is not None:
            raise ValueError(f"combine: both methods define {hook!r}; only one may")
    a, b = first, second

    def init(key, params, hp):
        ka, kb = jax.random.split(key)
        return (a.init(ka, params, hp[0]) if a.init else (),
                b.init(kb, params, hp[1]) if b.init else ())  # fmt: skip

    def pick(hook):
        i, m = (0, a) if getattr(a, hook) is not None else (1, b)
        return None if getattr(m, hook) is None else (i, getattr(m, hook))

    def loss(params, extra, key, t, x, y1h, hp):
        i, f = pick("loss")
        return f(params, extra[i], key, t, x, y1h, hp[i])

    def after_task(params, extra, key, t, task, seen, hp):
        ka, kb = jax.random.split(key)
        ea, eb = extra
        if a.after_task:
            params, ea = a.after_task(params, ea, ka, t, task, seen, hp[0])
        if b.after_task:
            params, eb = b.after_task(params, eb, kb, t, task, seen, hp[1])
        return params, (ea, eb)

    def check(hp):
        if not isinstance(hp, tuple | list) or len(hp) != 2:  # None failed inside the trace
            raise ValueError(f"combine: hp must be a pair (hp of the first method, hp of the "
                             f"second), got {hp!r}")  # fmt: skip
        for i, m in enumerate((a, b)):
            if m.check is not None:
                m.check(hp[i])

    return Method(
        init=init,
        loss=loss if pick("loss") else None,
        after_task=after_task,
        optimizer=_combined_optimizer(pick("optimizer")),
        after_wake=_combined_after_wake(pick("after_wake")),
        check=check,
    )


def _combined_optimizer(picked):
    if picked is None:
        return None
    i, f = picked
    return lambda opt, params, extra, t, hp: f(opt, params, extra[i], t, hp[i])


def _combined_after_wake(picked):
    if picked is None:
        return None
    i, f = picked

    def after_wake(params, extra, opt_state, t, hp):
        new = f(params, extra[i], opt_state, t, hp[i])
        return (new, extra[1]) if i == 0 else (extra[0], new)

    return after_wake
