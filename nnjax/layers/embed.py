"""Embedding: integer ids -> rows of a learned table."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.layers.checks import (
    check_dtype,
    check_key,
    check_param_keys,
    check_param_shape,
    check_shape,
    dtype_name,
    param_dtype,
    positive_int,
    weight_initializer,
)
from nnjax.layers.core import Layer, make_spec


def Embedding(
    num_embeddings: int, features: int, *, W_init: Any = "glorot_normal", dtype: Any = None
) -> Layer:
    """y[..., :] = W[x[...], :]: integer ids x (...) in [0, num_embeddings) -> y (..., features).

    Params ``{"W": (num_embeddings, features)}``. dJ/dW[v] sums dJ/dy over every position
    whose id is v; the ids get no gradient. Ids outside the range are a ValueError when ``x`` is
    concrete; when ``x`` is traced (inside ``jit``, ``vmap``, ``lax.scan``) no value can be
    checked and they are clamped to [0, num_embeddings - 1] silently (``jnp.take``
    ``mode="clip"``: -1 reads row 0), where ``torch.nn.Embedding`` always raises an
    IndexError. W is torch's ``weight``; its init is N(0, 1), here glorot_normal. ``apply``
    checks the params first: ``{"W"}`` of shape exactly (num_embeddings, features), else a
    :class:`~nnjax.layers.checks.ParamsError` (a ValueError) naming the layer (another
    table would clamp the ids to its own rows).
    """
    num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
    features = positive_int("Embedding", "features", features)
    name = f"Embedding({num_embeddings}, {features})"
    init_w = weight_initializer(name, "W_init", W_init)
    check_dtype(name, dtype)

    def init(key, input_shape):
        shape = check_shape(name, input_shape, 0)
        return shape + (features,), {
            "W": init_w(check_key(name, key), (num_embeddings, features), param_dtype(dtype, name))
        }

    def apply(params, x, *, key=None):
        check_param_keys(name, params, ("W",))
        why = f"{num_embeddings} ids -> {features} features"
        check_param_shape(name, params, "W", (num_embeddings, features), why)
        if not hasattr(x, "dtype"):  # a list or a Python int: ids as NumPy gives them
            x = np.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"{name}: expected integer ids, got dtype {jnp.dtype(x.dtype)}")
        if not isinstance(x, jax.core.Tracer) and np.size(x):
            ids = np.asarray(x)  # on the host: a concrete jax.Array's own min would be traced
            lo, hi = int(ids.min()), int(ids.max())  # inside a jit that closes over it
            if lo < 0 or hi >= num_embeddings:
                raise ValueError(f"{name}: ids must be in [0, {num_embeddings}), got {lo}..{hi}")
        return jnp.take(params["W"], x, axis=0, mode="clip")

    spec = make_spec(
        "Embedding",
        num_embeddings=num_embeddings,
        features=features,
        W_init=W_init,
        dtype=dtype_name(dtype),
    )
    return Layer(init, apply, name, False, spec)
