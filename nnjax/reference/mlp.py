"""The multi-layer perceptron and logistic regression, backpropagation written out by hand.

Row-major batch convention (as nnjax): a batch is X (B, n_0), layer l has W^l (n_{l-1}, n_l)
and b^l (n_l,), and for l = 1..L

    z^l = a^{l-1} W^l + b^l          (B, n_l),   a^0 = X
    a^l = f(z^l)  for l < L,         a^L = g(z^L)  (g the output activation, or the identity)

Backpropagation, with delta^l = dJ/dz^l (B, n_l) and dJ/da^L = ``dout`` given by the loss:

    delta^L  = dout * g'(z^L)
    delta^l  = (delta^{l+1} (W^{l+1})^T) * f'(z^l)         for l = L-1, ..., 1
    dJ/dW^l  = (a^{l-1})^T delta^l                           (n_{l-1}, n_l)
    dJ/db^l  = sum over the batch rows of delta^l            (n_l,)
    dJ/dX    = delta^1 (W^1)^T

(In the column-vector convention of textbooks the same equations read
delta^l = (W^{l+1})^T delta^{l+1} * f'(z^l), dJ/dW^l = delta^l (a^{l-1})^T, dJ/db^l = delta^l.)
For softmax/log_softmax, whose Jacobian is not diagonal, "* f'(z)" is the vector-Jacobian
product :func:`nnjax.reference.activations.vjp`; for every other f it is the elementwise
product with f'(z).

Params have exactly the structure ``nnjax.mlp`` produces: a list with ``{"W", "b"}`` (no
``"b"`` when ``use_bias=False``) for each Dense layer and ``{}`` for each activation layer.
"""

import numbers
from collections.abc import Sequence

import numpy as np

from nnjax.reference.activations import ACTIVATIONS, NOT_ELEMENTWISE, vjp


def _check_activation(name, what):
    if name not in ACTIVATIONS:
        raise ValueError(
            f"mlp: unknown {what} {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
        )


def _backprop_activation(name, z, delta_a):
    """dJ/dz from dJ/da, a = f(z): delta_a * f'(z), or the vjp when f is not elementwise."""
    if name in NOT_ELEMENTWISE:
        return vjp(name, z, delta_a)
    return delta_a * ACTIVATIONS[name][1](z)


def _is_count(n) -> bool:
    """An int >= 1: Python or NumPy, never a bool (True is no size)."""
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    output_activation: str | None = None,
    use_bias: bool = True,
):
    """The twin of ``nnjax.mlp(sizes, activation, output_activation, use_bias=...)``.

    Returns ``(forward, backward)``:
    ``forward(params, X) -> (out, cache)`` with out (B, sizes[-1]), and
    ``backward(dout, cache) -> (dX, grads)`` with grads shaped like params (module docstring).
    """
    sizes = list(sizes)
    if not sizes or not all(_is_count(s) for s in sizes):
        raise ValueError(f"mlp: sizes must be a non-empty list of positive ints, got {sizes}")
    sizes = [int(s) for s in sizes]
    _check_activation(activation, "activation")
    if output_activation is not None:
        _check_activation(output_activation, "output_activation")
    L = len(sizes)
    n_entries = 2 * L - 1 + (output_activation is not None)

    def dense_params(params):
        if len(params) != n_entries:
            raise ValueError(f"mlp: expected {n_entries} params entries, got {len(params)}")
        dense = params[0::2][:L]
        for l, p in enumerate(dense):
            if ("b" in p) != use_bias or p["W"].shape[1] != sizes[l]:
                raise ValueError(
                    f"mlp: params[{2 * l}] has W {p['W'].shape}, keys {sorted(p)}; expected "
                    f"W (*, {sizes[l]}) and use_bias={use_bias}"
                )
        return dense

    def forward(params, X):
        """z^l = a^{l-1} W^l + b^l, a^l = f(z^l) (g at the output); caches a^{l-1} and z^l."""
        dense = dense_params(params)
        a = np.asarray(X)
        n_in = dense[0]["W"].shape[0]
        if a.ndim != 2 or a.shape[1] != n_in:
            raise ValueError(f"mlp: expected X of shape (B, {n_in}), got {a.shape}")
        inputs, zs = [], []
        for l, p in enumerate(dense):
            inputs.append(a)
            z = a @ p["W"]
            if use_bias:
                z = z + p["b"]
            zs.append(z)
            act = activation if l < L - 1 else output_activation
            a = z if act is None else ACTIVATIONS[act][0](z)
        return a, (inputs, zs, [p["W"] for p in dense])

    def backward(dout, cache):
        """delta^L = dout g'(z^L); dW^l = (a^{l-1})^T delta^l; db^l = sum_b delta^l;
        delta^{l-1} = (delta^l (W^l)^T) f'(z^{l-1})."""
        inputs, zs, Ws = cache
        delta_a = np.asarray(dout)
        grads = []
        for l in reversed(range(L)):
            act = activation if l < L - 1 else output_activation
            delta = delta_a if act is None else _backprop_activation(act, zs[l], delta_a)
            g = {"W": inputs[l].T @ delta}
            if use_bias:
                g["b"] = np.sum(delta, axis=0)
            if act is not None and l == L - 1:
                grads.append({})  # the output activation layer
            grads.append(g)
            if l > 0:
                grads.append({})  # the hidden activation layer below
            delta_a = delta @ Ws[l].T
        return delta_a, grads[::-1]

    return forward, backward


def logistic_regression(n_features: int, use_bias: bool = True):
    """The twin of ``nnjax.logistic_regression``: logit z = X theta + b, shape (B, 1), params
    ``{"W": (n_features, 1), "b": (1,)}``. With delta = dJ/dz (B, 1):
    dJ/dtheta = X^T delta, dJ/db = sum_b delta, dJ/dX = delta theta^T.
    """
    if not _is_count(n_features):
        raise ValueError(f"logistic_regression: n_features must be an int >= 1, got {n_features!r}")
    n_features = int(n_features)

    def forward(params, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(
                f"logistic_regression: built for {n_features} features, got X of shape {X.shape}"
            )
        if params["W"].shape != (n_features, 1) or ("b" in params) != use_bias:
            raise ValueError(
                f"logistic_regression: params W {params['W'].shape}, keys {sorted(params)}"
            )
        z = X @ params["W"]
        return (z + params["b"] if use_bias else z), (X, params["W"])

    def backward(dout, cache):
        X, W = cache
        delta = np.asarray(dout)
        grads = {"W": X.T @ delta}
        if use_bias:
            grads["b"] = np.sum(delta, axis=0)
        return delta @ W.T, grads

    return forward, backward
