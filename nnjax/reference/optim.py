"""Optimizer updates by hand, in NumPy, with Optax 0.2.8's exact conventions.

``OPTIMIZERS[name](learning_rate, **hyperparams) -> (init, update)`` with
``init(params) -> state`` and ``update(grads, state, params) -> (new_params, new_state)``,
on nested dict/list/tuple trees of NumPy arrays. Names and default hyperparameters are those
of :data:`nnjax.optim.OPTIMIZERS`. ``learning_rate`` is a float or a schedule ``eta(t)``,
called with the step count t = 0, 1, 2, ... (Optax's ``scale_by_schedule`` count).

With g the gradient at step t = 1, 2, ... (every rule ends with theta <- theta + u):

* ``gd``, ``sgd``: u = -eta g
* ``momentum``:  v <- g + mu v (v_0 = 0);  u = -eta v
* ``nesterov``:  v <- g + mu v;            u = -eta (g + mu v)   (v already updated)
* ``adam``:      m <- (1-b1) g + b1 m;  s <- (1-b2) g^2 + b2 s  (m_0 = s_0 = 0)
                 m_hat = m / (1 - b1^t);  s_hat = s / (1 - b2^t)
                 u = -eta m_hat / (sqrt(s_hat) + eps)          (eps OUTSIDE the sqrt)
* ``adamw``:     u = -eta (m_hat / (sqrt(s_hat) + eps) + weight_decay theta)
                 (decoupled decay on every leaf: Optax's mask=None; decay scaled by eta)
* ``rmsprop``:   s <- (1-decay) g^2 + decay s   (s_0 = initial_scale = 0, no bias correction)
                 u = -eta g / sqrt(s + eps)                     (eps INSIDE the sqrt:
                 Optax 0.2.8's ``eps_in_sqrt=True`` default)
* ``adagrad``:   s <- s + g^2  (s_0 = initial_accumulator_value)
                 u = -eta g / sqrt(s + eps) where s > 0, else 0 (eps INSIDE the sqrt)

The new params keep the old params' dtype (as ``optax.apply_updates``).
"""

from collections.abc import Callable

import numpy as np

# --- a tiny tree map over dict / list / tuple (NamedTuples included) ---------------------


def tree_map(f: Callable, tree, *rest):
    """Apply ``f`` leafwise to trees of the same structure (dict, list, tuple; leaves else)."""
    if isinstance(tree, dict):
        for r in rest:
            if not isinstance(r, dict) or r.keys() != tree.keys():
                raise ValueError(f"tree_map: dict keys differ: {sorted(tree)} vs {r!r}")
        return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, list | tuple):
        for r in rest:
            if not isinstance(r, list | tuple) or len(r) != len(tree):
                raise ValueError(f"tree_map: sequences differ: length {len(tree)} vs {r!r}")
        items = [tree_map(f, *xs) for xs in zip(tree, *rest)]
        if isinstance(tree, list):
            return items
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return f(tree, *rest)


def tree_leaves(tree) -> list:
    """The leaves of a dict/list/tuple tree, dicts in key order (as the tree was built)."""
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, list | tuple):
        return [leaf for x in tree for leaf in tree_leaves(x)]
    return [tree]


def _asarrays(tree):
    return tree_map(np.asarray, tree)


def _apply(params, updates):
    """theta + u, cast back to theta's dtype (``optax.apply_updates``)."""
    return tree_map(lambda p, u: np.asarray(p + u).astype(p.dtype), params, updates)


def _lr(learning_rate, count):
    """eta at this step: the float, or the schedule called with the step count (from 0)."""
    return float(learning_rate(count)) if callable(learning_rate) else float(learning_rate)


def _scale(updates, factor):
    """factor * u, with factor cast to each leaf's dtype first (as Optax does)."""
    return tree_map(lambda u: np.asarray(u.dtype.type(factor) * u), updates)


# --- the optimizers ---------------------------------------------------------------------


def sgd(learning_rate):
    """theta <- theta - eta g."""

    def init(params):
        return {"count": 0}

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        u = _scale(grads, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1}

    return init, update


def _trace(learning_rate, momentum, nesterov):
    _check_unit("momentum", momentum)

    def init(params):
        return {"count": 0, "trace": tree_map(np.zeros_like, _asarrays(params))}

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        v = tree_map(lambda g, t: g + momentum * t, grads, state["trace"])
        direction = tree_map(lambda g, t: g + momentum * t, grads, v) if nesterov else v
        u = _scale(direction, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1, "trace": v}

    return init, update


def momentum(learning_rate, momentum=0.9):
    """v <- g + mu v; theta <- theta - eta v (heavy ball, Optax's ``trace``)."""
    return _trace(learning_rate, momentum, nesterov=False)


def nesterov(learning_rate, momentum=0.9):
    """v <- g + mu v; theta <- theta - eta (g + mu v)."""
    return _trace(learning_rate, momentum, nesterov=True)


def _adam_direction(grads, state, b1, b2, eps):
    """Adam's m_hat / (sqrt(s_hat) + eps) and the new moments (t = state count + 1)."""
    t = state["adam_count"] + 1
    m = tree_map(lambda g, m: (1 - b1) * g + b1 * m, grads, state["mu"])
    s = tree_map(lambda g, s: (1 - b2) * (g * g) + b2 * s, grads, state["nu"])
    c1, c2 = 1 - b1**t, 1 - b2**t
    d = tree_map(lambda m, s: (m / m.dtype.type(c1)) / (np.sqrt(s / s.dtype.type(c2)) + eps), m, s)
    return d, {"adam_count": t, "mu": m, "nu": s}


def _adam_init(params):
    zeros = tree_map(np.zeros_like, _asarrays(params))
    return {"count": 0, "adam_count": 0, "mu": zeros, "nu": tree_map(np.copy, zeros)}


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Bias-corrected moments; theta <- theta - eta m_hat / (sqrt(s_hat) + eps)."""
    _check_betas(b1, b2, eps)

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        d, new = _adam_direction(grads, state, b1, b2, eps)
        u = _scale(d, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1, **new}

    return _adam_init, update


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4):
    """theta <- theta - eta (m_hat / (sqrt(s_hat) + eps) + weight_decay theta)."""
    _check_betas(b1, b2, eps)
    if not 0.0 <= weight_decay < float("inf"):
        raise ValueError(f"adamw: weight_decay must be a finite number >= 0, got {weight_decay}")

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        d, new = _adam_direction(grads, state, b1, b2, eps)
        if weight_decay != 0.0:  # Optax skips a constant zero decay entirely
            d = tree_map(lambda d, p: d + weight_decay * p, d, params)
        u = _scale(d, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1, **new}

    return _adam_init, update


def rmsprop(learning_rate, decay=0.9, eps=1e-8):
    """s <- (1-decay) g^2 + decay s (s_0 = 0); theta <- theta - eta g / sqrt(s + eps)."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"rmsprop: decay must be in [0, 1), got {decay}")
    _check_eps(eps)

    def init(params):
        return {"count": 0, "nu": tree_map(np.zeros_like, _asarrays(params))}

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        s = tree_map(lambda g, s: (1 - decay) * (g * g) + decay * s, grads, state["nu"])
        d = tree_map(lambda g, s: (1.0 / np.sqrt(s + eps)) * g, grads, s)
        u = _scale(d, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1, "nu": s}

    return init, update


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """s <- s + g^2 (s_0 = initial_accumulator_value); theta <- theta - eta g / sqrt(s + eps)
    where s > 0 (0 where s = 0)."""
    if not 0.0 <= initial_accumulator_value < float("inf"):
        raise ValueError(
            "adagrad: initial_accumulator_value must be a finite number >= 0, got "
            f"{initial_accumulator_value}"
        )
    _check_eps(eps)

    def init(params):
        acc = tree_map(lambda p: np.full_like(p, initial_accumulator_value), _asarrays(params))
        return {"count": 0, "sum_of_squares": acc}

    def update(grads, state, params):
        grads, params = _asarrays(grads), _asarrays(params)
        s = tree_map(lambda g, s: g * g + s, grads, state["sum_of_squares"])

        def direction(g, s):
            with np.errstate(divide="ignore"):
                return np.where(s > 0, 1.0 / np.sqrt(s + eps), 0.0).astype(g.dtype) * g

        d = tree_map(direction, grads, s)
        u = _scale(d, -_lr(learning_rate, state["count"]))
        return _apply(params, u), {"count": state["count"] + 1, "sum_of_squares": s}

    return init, update


OPTIMIZERS: dict[str, Callable] = {
    "gd": sgd,
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adam": adam,
    "adamw": adamw,
    "rmsprop": rmsprop,
    "adagrad": adagrad,
}


def get(name: str, learning_rate, **hyperparams):
    """``(init, update)`` for the optimizer called ``name``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name](learning_rate, **hyperparams)
    except TypeError as e:
        raise ValueError(f"optimizer {name!r}: bad hyperparameters: {e}") from None


def _check_unit(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _check_eps(eps):
    """As nnjax.optim: an infinite eps would make every update 0."""
    if not 0.0 < eps < float("inf"):
        raise ValueError(f"eps must be a finite number > 0, got {eps}")


def _check_betas(b1, b2, eps):
    _check_unit("b1", b1)
    _check_unit("b2", b2)
    _check_eps(eps)
