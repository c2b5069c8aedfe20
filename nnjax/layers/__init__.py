"""Layers as pairs of pure functions, and the protocol every layer follows.

The protocol (a decision: explicit state in and out, as Haiku's ``transform_with_state`` or
Equinox's ``State``, so that a layer without state pays nothing for it):

* A :class:`Layer` is ``(init, apply, name, stateful, spec)``. ``input_shape`` includes the
  batch axes, e.g. ``(-1, 64)``; shapes are inferred at ``init`` without tracing, and the
  shape ``init`` returns is the shape ``apply`` produces.
* Stateless layer (``stateful=False``): ``init(key, input_shape) -> (output_shape, params)``,
  ``apply(params, x, *, key=None) -> y``.
* Stateful layer (``stateful=True``; :func:`BatchNorm` and anything containing one):
  ``init(key, input_shape) -> (output_shape, params, state)``,
  ``apply(params, x, *, key=None, state, train=False) -> (y, new_state)``. ``train=True``
  is training mode (BatchNorm normalises with the batch statistics and returns updated
  running statistics); ``train=False`` is evaluation (the state comes back unchanged).
  ``serial``, ``parallel`` and ``residual`` are stateful iff a child is; their state has the
  structure of their params: for ``serial`` and ``parallel`` a list with one entry per child
  (``()`` for a stateless one), for ``residual(f)`` f's own state (not a list).
* Params are plain pytrees with readable names (``{"W", "b"}``); non-trained state is a
  separate pytree; hyperparameters live in the closure. Keys are explicit: ``Dropout`` is
  active only when ``apply`` gets a ``key``.
* :func:`init_model` and :func:`apply_model` treat both kinds alike:
  ``init_model(model, key, input_shape) -> (output_shape, params, state)`` (state ``()``
  when stateless) and ``apply_model(model, params, state, x, *, key=None, train=False) ->
  (y, new_state)``; a plain callable ``apply(params, x, *, key=None)`` counts as a
  stateless model.
* Models as data: ``Layer.spec`` is ``(constructor_name, kwargs)`` with JSON-able kwargs
  (nested layers as their specs), e.g. ``("Dense", {"features": 64, ...})``;
  :func:`from_spec` rebuilds the layer. A layer holding an arbitrary Python callable (an
  activation function object, a custom initializer) has ``spec=None``, and so has anything
  containing it.
* Errors: a ValueError names the layer, its position in the model (``layer i (name)``,
  ``branch i (name)``) and both shapes. ``apply`` checks the params it is given against
  the layer (the keys and shapes its ``init`` makes; static, so free under jit, grad and
  vmap): params that do not fit raise :class:`ParamsError`, a ValueError naming the layer
  and the param, e.g. ``Dense(3): params['W'] has shape (4, 5), expected (4, 3)``.
* Arrays are channels-last ((B, W, C), (B, H, W, C)); params default to float32, float64
  when ``jax_enable_x64`` is on (:func:`default_float`), or a layer's ``dtype``. A layer
  built with ``dtype=float64`` refuses to ``init`` while x64 is off (a ValueError naming the
  layer and the fix), rather than make float32 params.

Modules: :mod:`~nnjax.layers.core` (Dense, Activation, Flatten, Reshape, Identity, Dropout,
serial), :mod:`~nnjax.layers.conv`, :mod:`~nnjax.layers.pool`, :mod:`~nnjax.layers.norm`,
:mod:`~nnjax.layers.combinators`, :mod:`~nnjax.layers.recurrent`, :mod:`~nnjax.layers.embed`.
:data:`LAYERS` lists every constructor; each has a twin in :mod:`nnjax.reference`.
"""

from nnjax.layers.checks import ParamsError, default_float
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
    Shape,
    apply_model,
    init_model,
    serial,
)
from nnjax.layers.embed import Embedding
from nnjax.layers.norm import BatchNorm, LayerNorm
from nnjax.layers.pool import AvgPool, GlobalAvgPool, MaxPool
from nnjax.layers.recurrent import RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNNCell
from nnjax.layers.registry import LAYERS, from_spec

__all__ = [
    "LAYERS",
    "RNN",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Bidirectional",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Dropout",
    "Embedding",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Flatten",
    "GRUCell",
    "GlobalAvgPool",
    "Identity",
    "LSTMCell",
    "Layer",
    "LayerNorm",
    "MaxPool",
    "ParamsError",
    "Reshape",
    "Shape",
    "SimpleRNNCell",
    "apply_model",
    "default_float",
    "from_spec",
    "init_model",
    "parallel",
    "residual",
    "serial",
]
