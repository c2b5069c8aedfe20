"""Models: compositions of layers.

``mlp([h1, ..., hk, out])`` is serial(Dense(h1), f, ..., Dense(hk), f, Dense(out)[, g]):
a^l = f(a^{l-1} W^l + b^l) for hidden layers, logits = a^{k} W + b at the output.
The input width is inferred at ``init`` from ``input_shape``.
"""

from collections.abc import Callable, Sequence

from nnjax.activations import get_activation
from nnjax.layers import Activation, Dense, Layer, serial

_RELU_LIKE = {"relu", "leaky_relu", "elu", "gelu", "silu", "softplus"}


def mlp(
    sizes: Sequence[int],
    activation: str | Callable = "relu",
    output_activation: str | Callable | None = None,
    *,
    use_bias: bool = True,
    W_init: str | Callable | None = None,
) -> Layer:
    """A multi-layer perceptron with layer widths ``sizes`` (the last is the output width).

    ``output_activation=None`` leaves logits (pair them with a ``*_with_logits`` or
    softmax cross-entropy loss). ``W_init`` defaults to ``he_normal`` for ReLU-like
    activations and ``glorot_normal`` otherwise. Params: a list of ``{"W", "b"}`` dicts
    (and ``{}`` for each activation layer).
    """
    sizes = list(sizes)
    if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"mlp: sizes must be a non-empty list of positive ints, got {sizes}")
    get_activation(activation)  # validate the name early
    if output_activation is not None:
        get_activation(output_activation)
    if W_init is None:
        W_init = "he_normal" if activation in _RELU_LIKE else "glorot_normal"
    layers = []
    for i, width in enumerate(sizes):
        layers.append(Dense(width, use_bias=use_bias, W_init=W_init))
        if i < len(sizes) - 1:
            layers.append(Activation(activation))
    if output_activation is not None:
        layers.append(Activation(output_activation))
    return serial(*layers)


def logistic_regression(n_features: int, use_bias: bool = True) -> Layer:
    """p(y=1 | x) = sigmoid(x theta + b); ``apply`` returns the logit x theta + b, shape (B, 1).

    Weights start at zero (the problem is convex). ``n_features`` is checked at ``init``.
    """
    if not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"logistic_regression: n_features must be >= 1, got {n_features!r}")
    dense = Dense(1, use_bias=use_bias, W_init="zeros")

    def init(key, input_shape):
        if input_shape[-1] != n_features:
            raise ValueError(
                f"logistic_regression: built for {n_features} features, "
                f"got input_shape {tuple(input_shape)}"
            )
        return dense.init(key, input_shape)

    return Layer(init, dense.apply, f"logistic_regression({n_features})")
