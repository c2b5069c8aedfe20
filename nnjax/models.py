"""Models: compositions of layers, each describable as data (``model.spec``).

* ``mlp([h1, ..., hk, out])`` is serial(Dense(h1), f, ..., Dense(hk), f, Dense(out)[, g]):
  a^l = f(a^{l-1} W^l + b^l) for hidden layers, logits = a^{k} W + b at the output.
* ``logistic_regression(n)``: the logit x theta + b.
* ``cnn``, ``gru``, ``resmlp``: the CNN, GRU and MLP of the MNIST-1D paper (Greydanus &
  Kobak, "Scaling down deep learning with MNIST-1D", and ``notebooks/models.py`` of
  github.com/greydanus/mnist1d: ``ConvBase``, ``GRUBase``, ``MLPBase``), built only from
  :mod:`nnjax.layers`.

Every builder returns a :class:`~nnjax.layers.Layer` whose ``spec`` is ``(builder name,
kwargs)``; ``nnjax.layers.from_spec`` rebuilds it through :data:`MODELS`. Input widths are
inferred at ``init``.
"""

import operator
from collections.abc import Callable, Sequence

import numpy as np

from nnjax.activations import ACTIVATIONS, get_activation
from nnjax.layers import (
    Activation,
    Bidirectional,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GRUCell,
    Layer,
    Reshape,
    residual,
    serial,
)
from nnjax.layers.checks import as_real, check_shape, flag, positive_int

_RELU_LIKE = {"relu", "leaky_relu", "elu", "gelu", "silu", "softplus"}


def _named(*maybe_callables) -> bool:
    return all(c is None or (isinstance(c, str) and c in ACTIVATIONS) for c in maybe_callables)


def _model(name: str, kwargs: dict, describable: bool = True) -> Layer:
    """The model ``name`` built from its layers, with the spec ``(name, kwargs)``."""
    return _LAYERS_OF[name](**kwargs)._replace(spec=(name, kwargs) if describable else None)


def _as_int(v) -> int | None:
    """``v`` as an int when it is a Python or NumPy integer (not a bool), else None."""
    if isinstance(v, bool | np.bool_):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def _positive_ints(who: str, what: str, values) -> list[int]:
    """``values`` (a sequence, not a string) as a non-empty list of ints >= 1, or a
    ValueError naming ``who`` and ``what``."""
    ints = None
    if isinstance(values, Sequence | np.ndarray) and not isinstance(values, str):
        ints = [_as_int(v) for v in values]
    if not ints or any(v is None or v < 1 for v in ints):
        raise ValueError(f"{who}: {what} must be a non-empty list of positive ints, got {values!r}")
    return ints


def mlp(
    sizes: Sequence[int],
    activation: str | Callable = "relu",
    output_activation: str | Callable | None = None,
    *,
    use_bias: bool = True,
    W_init: str | Callable | None = None,
    dropout: float = 0.0,
) -> Layer:
    """A multi-layer perceptron with layer widths ``sizes`` (the last is the output width).

    ``output_activation=None`` leaves logits (pair them with a ``*_with_logits`` or
    softmax cross-entropy loss). ``W_init`` defaults to ``he_normal`` (var 2 / fan_in) when
    ``activation`` names a ReLU-like function ('relu', 'leaky_relu', 'elu', 'gelu', 'silu',
    'softplus') and to ``glorot_normal`` (var 2 / (fan_in + fan_out)) otherwise, a callable
    activation included (``jax.nn.relu`` too: pass ``activation="relu"`` or ``W_init``).
    Every Dense takes that ``W_init`` (the output layer too) and zero biases. With n_0 the
    input width (known at init) and n_l = sizes[l - 1], Dense l has n_{l-1} n_l + n_l params
    (n_{l-1} n_l without ``use_bias``): ``mlp([256, 256, 10])`` on 64 features has
    64*256+256 + 256*256+256 + 256*10+10 = 85002. Params: a list of ``{"W", "b"}`` dicts
    (and ``{}`` for each activation layer). ``dropout`` > 0 puts a ``Dropout(dropout)`` after
    each hidden activation (active when training with ``fit(..., dropout=True)``; its
    params are ``{}`` entries too).
    """
    sizes = _positive_ints("mlp", "sizes", sizes)
    use_bias = flag("mlp", "use_bias", use_bias)
    _activation("mlp", "activation", activation)  # validate the names early
    if output_activation is not None:
        _activation("mlp", "output_activation", output_activation)
    if W_init is not None:
        from nnjax.initializers import get_initializer

        try:
            get_initializer(W_init)
        except ValueError as e:
            raise ValueError(f"mlp: W_init: {e}") from None
    kwargs = {
        "sizes": sizes,
        "activation": activation,
        "output_activation": output_activation,
        "use_bias": bool(use_bias),
        "W_init": W_init,
    }
    if rate := _dropout_rate("mlp", dropout):  # only when on: specs without it stay the same
        kwargs["dropout"] = rate
    describable = _named(activation, output_activation) and not callable(W_init)
    return _model("mlp", kwargs, describable)


def _activation(who: str, what: str, activation) -> Callable:
    """``get_activation(activation)``; an unknown name is a ValueError naming ``who`` and the
    argument ``what`` (names are exact: 'ReLU' is no activation)."""
    try:
        return get_activation(activation)
    except ValueError as e:
        raise ValueError(f"{who}: {what}: {e}") from None


def _dropout_rate(who: str, rate) -> float:
    """``rate`` as a float in [0, 1) (a Python or NumPy real, not a bool), or a ValueError."""
    value = as_real(rate)
    if value is None or not 0.0 <= value < 1.0:
        raise ValueError(f"{who}: dropout must be a rate in [0, 1), got {rate!r}")
    return value


def _mlp_layers(sizes, activation, output_activation, use_bias, W_init, dropout=0.0) -> Layer:
    w_init = W_init
    if w_init is None:
        # a str test first: a callable may be unhashable (a dataclass instance)
        relu_like = isinstance(activation, str) and activation in _RELU_LIKE
        w_init = "he_normal" if relu_like else "glorot_normal"
    layers = []
    for i, width in enumerate(sizes):
        layers.append(Dense(width, use_bias=use_bias, W_init=w_init))
        if i < len(sizes) - 1:
            layers.append(Activation(activation))
            if dropout:
                layers.append(Dropout(dropout))
    if output_activation is not None:
        layers.append(Activation(output_activation))
    return serial(*layers)


def logistic_regression(n_features: int, use_bias: bool = True) -> Layer:
    """p(y=1 | x) = sigmoid(x theta + b); ``apply`` returns the logit x theta + b, shape (B, 1).

    Weights start at zero (the problem is convex). ``n_features`` is checked at ``init``.
    """
    n_features = positive_int("logistic_regression", "n_features", n_features)  # bools refused
    use_bias = flag("logistic_regression", "use_bias", use_bias)
    dense = _logistic_layers(n_features, use_bias)

    def init(key, input_shape):
        input_shape = check_shape("logistic_regression", input_shape)
        if input_shape[-1] != n_features:
            raise ValueError(
                f"logistic_regression: built for {n_features} features, "
                f"got input_shape {tuple(input_shape)}"
            )
        return dense.init(key, input_shape)

    spec = ("logistic_regression", {"n_features": n_features, "use_bias": bool(use_bias)})
    return Layer(init, dense.apply, f"logistic_regression({n_features})", False, spec)


def cnn(
    n_classes: int = 10,
    *,
    input_shape: Sequence[int] = (40, 1),
    channels: int = 25,
    kernel_sizes: Sequence[int] = (5, 3, 3),
    strides: int = 2,
    padding: int = 1,
) -> Layer:
    """The MNIST-1D paper's CNN (``ConvBase``): the flat input is reshaped to ``input_shape``,
    then three convolutions with ``channels`` channels, kernels 5, 3, 3, stride 2, padding 1,
    each followed by ReLU, then Flatten and a linear read-out to ``n_classes`` logits.

    ``input_shape=(40, 1)`` (default, MNIST-1D): 1-D convolutions, lengths 40 -> 19 -> 10 -> 5,
    125 features into the read-out, as the paper's. ``input_shape=(8, 8, 1)`` (scikit-learn's
    digits as images): the same recipe with square 2-D kernels, 8x8 -> 3x3 -> 2x2 -> 1x1.
    Convolution weights are ``he_normal`` (ReLU), the read-out ``glorot_normal``; the paper's
    PyTorch layers flatten channels-first, a permutation of the read-out's weights.
    """
    n_classes, channels, strides = (
        positive_int("cnn", what, v)
        for what, v in (("n_classes", n_classes), ("channels", channels), ("strides", strides))
    )
    if (pad := _as_int(padding)) is None or pad < 0:
        raise ValueError(f"cnn: padding must be an int >= 0, got {padding!r}")
    padding = pad  # a Python int: the spec is JSON
    shape = _positive_ints("cnn", "input_shape", input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"cnn: input_shape must be (length, channels) or (height, width, "
            f"channels), got {tuple(shape)}"
        )
    kernels = _positive_ints("cnn", "kernel_sizes", kernel_sizes)
    _check_windows(shape, kernels, strides, padding)
    kwargs = {
        "n_classes": n_classes,
        "input_shape": shape,
        "channels": channels,
        "kernel_sizes": kernels,
        "strides": strides,
        "padding": padding,
    }
    return _model("cnn", kwargs)


def _check_windows(shape: list[int], kernels: list[int], stride: int, pad: int) -> None:
    """Each convolution's window fits its padded input: ``cnn`` names the kernel and the
    size it meets (at init, the failing Conv layer would name neither argument)."""
    sizes = list(shape[:-1])
    for i, k in enumerate(kernels):
        if min(sizes) + 2 * pad < k:
            padded = tuple(n + 2 * pad for n in sizes)
            raise ValueError(
                f"cnn: kernel_sizes[{i}] = {k} is larger than its input: input_shape "
                f"{tuple(shape)} after {i} convolution(s) of stride {stride} has spatial size "
                f"{tuple(sizes)}, {padded} with padding {pad}; use smaller kernels, more "
                "padding or a larger input"
            )
        sizes = [(n + 2 * pad - k) // stride + 1 for n in sizes]


def _cnn_layers(n_classes, input_shape, channels, kernel_sizes, strides, padding) -> Layer:
    layers = [Reshape(input_shape)]
    for k in kernel_sizes:
        layers += [
            Conv(channels, k, strides=strides, padding=padding, W_init="he_normal"),
            Activation("relu"),
        ]
    return serial(*layers, Flatten(), Dense(n_classes))


def gru(n_classes: int = 10, *, hidden: int = 6, input_shape: Sequence[int] = (40, 1)) -> Layer:
    """The MNIST-1D paper's GRU (``GRUBase``): the flat input is reshaped to a sequence
    ``input_shape`` = (T, F) (40 steps of 1 value), a bidirectional GRU with ``hidden`` units
    per direction (PyTorch's reset-after GRU, :mod:`nnjax.layers.recurrent`) returns every
    step's output, (B, T, 2 hidden) [forward, backward], and a linear read-out maps all of
    them, flattened (T * 2 hidden = 480 features by default), to ``n_classes`` logits.
    """
    n_classes, hidden = (
        positive_int("gru", "n_classes", n_classes),
        positive_int("gru", "hidden", hidden),
    )
    shape = _positive_ints("gru", "input_shape", input_shape)
    if len(shape) != 2:
        raise ValueError(f"gru: input_shape must be (time steps, features), got {tuple(shape)}")
    return _model("gru", {"n_classes": n_classes, "hidden": hidden, "input_shape": shape})


def _gru_layers(n_classes, hidden, input_shape) -> Layer:
    bigru = Bidirectional(GRUCell(hidden), return_sequences=True)
    return serial(Reshape(input_shape), bigru, Flatten(), Dense(n_classes))


def resmlp(n_classes: int = 10, *, hidden: int = 100, dropout: float = 0.0) -> Layer:
    """The MNIST-1D paper's MLP (``MLPBase``, hidden 100) with its residual middle layer:
    h = relu(x W1 + b1); h = h + relu(h W2 + b2); logits = h W3 + b3. ReLU layers start
    ``he_normal``, the read-out ``glorot_normal``. Params: [W1 dict, {}, [W2 dict, {}], W3 dict].
    ``dropout`` > 0 (not in the paper) puts a ``Dropout(dropout)`` after each of the two
    hidden layers (``{}`` params each).
    """
    n_classes, hidden = (
        positive_int("resmlp", "n_classes", n_classes),
        positive_int("resmlp", "hidden", hidden),
    )
    kwargs = {"n_classes": n_classes, "hidden": hidden}
    if rate := _dropout_rate("resmlp", dropout):
        kwargs["dropout"] = rate
    return _model("resmlp", kwargs)


def _resmlp_layers(n_classes, hidden, dropout=0.0) -> Layer:
    block = residual(serial(Dense(hidden, W_init="he_normal"), Activation("relu")))
    drop = [Dropout(dropout)] if dropout else []
    first = [Dense(hidden, W_init="he_normal"), Activation("relu")]
    return serial(*first, *drop, block, *drop, Dense(n_classes))


def _logistic_layers(n_features, use_bias) -> Layer:
    return Dense(1, use_bias=use_bias, W_init="zeros")


_LAYERS_OF: dict[str, Callable[..., Layer]] = {
    "mlp": _mlp_layers,
    "logistic_regression": _logistic_layers,
    "cnn": _cnn_layers,
    "gru": _gru_layers,
    "resmlp": _resmlp_layers,
}


def layer_spec(spec):
    """The layer-level spec of a model spec (``("cnn", {...})`` -> ``("serial", {...})``), or
    ``spec`` itself when it names a layer; None when the model is not describable."""
    name, kwargs = spec
    if name not in _LAYERS_OF:
        return spec
    return _LAYERS_OF[name](**kwargs).spec


MODELS: dict[str, Callable[..., Layer]] = {
    "mlp": mlp,
    "logistic_regression": logistic_regression,
    "cnn": cnn,
    "gru": gru,
    "resmlp": resmlp,
}
