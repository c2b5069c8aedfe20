"""Branching combinators, forward and backward, in NumPy: the twins of ``nnjax.layers``'
``parallel``, ``FanOut``, ``FanInSum``, ``FanInConcat`` and ``residual``.

Branches travel as tuples of arrays (a branch may itself be a tuple: a fan-out inside a
branch), their gradients as tuples of the same shapes:

* fan-out  y_i = x (i = 1..n):           dJ/dx   = sum_i dJ/dy_i
* parallel y_i = f_i(x_i):               dJ/dx_i = backward_i(dJ/dy_i)
* sum      y = sum_i x_i:                dJ/dx_i = dJ/dy
* concat   y = [x_1, ..., x_n] (axis):   dJ/dx_i = the slice of dJ/dy that x_i filled
* residual y = x + f(x):                 dJ/dx   = dJ/dy + backward_f(dJ/dy)
"""

import numpy as np

from nnjax.reference.pair import Pair


def _branch(a):
    """A branch's value as arrays: an array, or a tuple of branches (a fan-out inside a
    branch) kept a tuple, never stacked into one array."""
    return tuple(_branch(b) for b in a) if isinstance(a, tuple | list) else np.asarray(a)


def _tuple(name, x, n=None):
    if not isinstance(x, tuple | list) or (n is not None and len(x) != n):
        raise ValueError(f"{name}: expected a tuple of {n or 'several'} arrays")
    return tuple(_branch(a) for a in x)


def _copy(a):
    """A copy of a branch's value (an array or a tuple of them)."""
    return tuple(_copy(b) for b in a) if isinstance(a, tuple) else np.array(a)


def _add(a, b):
    """a + b, branch by branch when they are tuples."""
    return tuple(_add(u, v) for u, v in zip(a, b)) if isinstance(a, tuple) else a + b


def fan_out(n: int) -> Pair:
    """x -> (x,) * n; the copies' gradients add up."""

    def forward(params, x):
        return (_branch(x),) * n, None

    def backward(dout, cache):
        douts = _tuple(f"FanOut({n})", dout, n)
        total = _copy(douts[0])
        for d in douts[1:]:
            total = _add(total, d)
        return total, {}

    return Pair(forward, backward, f"FanOut({n})")


def fan_in_sum() -> Pair:
    """(x_1, ..., x_n) -> sum_i x_i; each x_i gets dJ/dy."""

    def forward(params, x):
        xs = _tuple("FanInSum", x)
        if len({a.shape for a in xs}) > 1:
            raise ValueError(f"FanInSum: branch shapes differ: {[a.shape for a in xs]}")
        total = xs[0].copy()
        for a in xs[1:]:
            total = total + a
        return total, len(xs)

    def backward(dout, n):
        return (np.asarray(dout),) * n, {}

    return Pair(forward, backward, "FanInSum")


def fan_in_concat(axis: int = -1) -> Pair:
    """(x_1, ..., x_n) -> concatenate along ``axis``; dJ/dx_i is dJ/dy's slice of x_i."""

    def forward(params, x):
        xs = _tuple(f"FanInConcat({axis})", x)
        return np.concatenate(xs, axis=axis), [a.shape[axis] for a in xs]

    def backward(dout, sizes):
        return tuple(np.split(np.asarray(dout), np.cumsum(sizes)[:-1], axis=axis)), {}

    return Pair(forward, backward, f"FanInConcat({axis})")


def parallel(*pairs: Pair) -> Pair:
    """(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n)); params and grads: one entry per branch."""
    n = len(pairs)
    name = "parallel(" + ", ".join(p.name for p in pairs) + ")"

    def forward(params, x):
        xs = _tuple(name, x, n)
        if len(params) != n:
            raise ValueError(f"{name}: {n} branches but params for {len(params)}")
        outs, caches = [], []
        for i, (pair, p, xi) in enumerate(zip(pairs, params, xs)):
            try:
                y, c = pair.forward(p, xi)
            except ValueError as e:
                raise ValueError(f"branch {i} ({pair.name}): {e}") from None
            outs.append(y)
            caches.append(c)
        return tuple(outs), caches

    def backward(dout, caches):
        douts = _tuple(name, dout, n)
        results = [pair.backward(d, c) for pair, d, c in zip(pairs, douts, caches)]
        return tuple(dx for dx, _ in results), [g for _, g in results]

    return Pair(forward, backward, name)


def residual(pair: Pair) -> Pair:
    """y = x + f(x); dJ/dx = dJ/dy + f's dJ/dx; grads are f's."""
    name = f"residual({pair.name})"

    def forward(params, x):
        x = np.asarray(x)
        y, cache = pair.forward(params, x)
        if np.shape(y) != x.shape:
            raise ValueError(f"{name}: f(x) has shape {np.shape(y)} but x has shape {x.shape}")
        return x + y, cache

    def backward(dout, cache):
        dout = np.asarray(dout)
        dx, grads = pair.backward(dout, cache)
        return dout + dx, grads

    return Pair(forward, backward, name)
