"""The twin's unit: a :class:`Pair` of hand-written forward and backward functions.

``forward(params, x) -> (out, cache)`` and ``backward(dout, cache) -> (dx, grads)``, the
contract of ``jax.vjp``: ``dout = dJ/dout`` (out's shape) in, ``dx = dJ/dx`` (x's shape, or a
tuple of arrays for a tuple input) and ``grads = dJ/dparams`` (params' structure) out.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class Pair(NamedTuple):
    """``forward(params, x) -> (out, cache)``, ``backward(dout, cache) -> (dx, grads)``."""

    forward: Callable[[Any, np.ndarray], tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]
    name: str = "layer"
