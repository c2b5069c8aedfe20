"""The registry of layer constructors, and models rebuilt from their specs."""

from collections.abc import Callable

from nnjax.layers.combinators import FanInConcat, FanInSum, FanOut, parallel, residual
from nnjax.layers.conv import Conv, ConvTranspose
from nnjax.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    Reshape,
    serial,
)
from nnjax.layers.embed import Embedding
from nnjax.layers.norm import BatchNorm, LayerNorm
from nnjax.layers.pool import AvgPool, GlobalAvgPool, MaxPool
from nnjax.layers.recurrent import RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNNCell

LAYERS: dict[str, Callable[..., Layer]] = {
    "Dense": Dense,
    "Activation": Activation,
    "Flatten": Flatten,
    "Reshape": Reshape,
    "Identity": Identity,
    "Dropout": Dropout,
    "serial": serial,
    "Conv": Conv,
    "ConvTranspose": ConvTranspose,
    "MaxPool": MaxPool,
    "AvgPool": AvgPool,
    "GlobalAvgPool": GlobalAvgPool,
    "LayerNorm": LayerNorm,
    "BatchNorm": BatchNorm,
    "parallel": parallel,
    "FanOut": FanOut,
    "FanInSum": FanInSum,
    "FanInConcat": FanInConcat,
    "residual": residual,
    "SimpleRNNCell": SimpleRNNCell,
    "GRUCell": GRUCell,
    "LSTMCell": LSTMCell,
    "RNN": RNN,
    "Bidirectional": Bidirectional,
    "Embedding": Embedding,
}

# The kwargs that hold layers (specs in a spec), and the constructors that take them as *args.
NESTED: dict[str, tuple[str, ...]] = {
    "serial": ("layers",),
    "parallel": ("layers",),
    "residual": ("layer",),
    "RNN": ("cell",),
    "Bidirectional": ("cell", "backward_cell"),
}
_VARARGS = {"serial", "parallel"}


def constructors() -> dict[str, Callable[..., Layer]]:
    """Every name :func:`from_spec` knows: :data:`LAYERS` and the models of
    :data:`nnjax.models.MODELS` (imported here, as models build on layers)."""
    from nnjax.models import MODELS

    return {**LAYERS, **MODELS}


def _is_spec(spec) -> bool:
    return (
        isinstance(spec, tuple | list)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], dict)
    )


def from_spec(spec) -> Layer:
    """Rebuild a layer or model from ``spec = (constructor_name, kwargs)``, as ``Layer.spec``
    holds it (lists in place of tuples are fine, as JSON gives them back). Nested layers in
    ``kwargs`` (:data:`NESTED`) are specs themselves.
    """
    if not _is_spec(spec):
        raise ValueError(f"from_spec: a spec is (constructor_name, kwargs), got {spec!r}")
    name, kwargs = spec
    registry = constructors()
    if name not in registry:
        raise ValueError(
            f"from_spec: unknown constructor {name!r}; valid names: {', '.join(sorted(registry))}"
        )
    kwargs = dict(kwargs)
    for key in NESTED.get(name, ()):
        value = kwargs.get(key)
        if key == "layers":
            if not isinstance(value, list | tuple):
                raise ValueError(
                    f"from_spec: {name} needs 'layers', a list of specs, got {value!r}"
                )
            kwargs[key] = [from_spec(s) for s in value]
        elif value is not None:
            kwargs[key] = from_spec(value)
    try:
        if name in _VARARGS:
            return registry[name](*kwargs.pop("layers"), **kwargs)
        return registry[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"from_spec: bad arguments for {name}: {e}") from None
