"""nnjax: neural networks as composed pure functions, trained with jax.grad and Optax.

The public API, in the order data flows:

* layers: :class:`Layer` = (init, apply[, state]); :func:`Dense`, :func:`Activation`,
  :func:`Flatten`, :func:`Dropout`, :func:`serial` here, and every other layer (convolution,
  pooling, normalisation, combinators, recurrent) in :mod:`nnjax.layers`, with
  :func:`init_model`, :func:`apply_model` and :func:`from_spec`; models :func:`mlp`,
  :func:`logistic_regression`, :func:`cnn`, :func:`gru`, :func:`resmlp`.
* math: :mod:`nnjax.activations`, :mod:`nnjax.losses`, :mod:`nnjax.initializers` (by name).
* training: :func:`get_optimizer` (Optax, by name), :func:`make_loss_fn`,
  :func:`make_train_step`, :func:`fit` (the loop fused under one jit), :func:`evaluate`.
* data: :mod:`nnjax.data` (toy, xor, moons, spirals, digits, mnist1d; no download).
* studies: :func:`compare` (optimizers x learning rates x seeds, vmapped in one jit each).
* scale and safety: :mod:`nnjax.parallel` (``fit(..., mesh=8)``), :mod:`nnjax.checkpoint`
  (``fit(..., checkpoint_dir=D, resume=True)``).
* Flax interop: :mod:`nnjax.interop` (MLP params to Flax NNX / linen and back).
* the oracle: :mod:`nnjax.reference`, the hand-derived NumPy twin (``nnjax verify``).
* the brain side: :mod:`nnjax.brain` (spiking neurons, synchrony, sleep and dreams).
* float64 is opt-in: :func:`enable_x64` (or ``with jax.enable_x64(True):``).
"""

import jax

from nnjax import activations, checkpoint, data, initializers, interop, losses, parallel
from nnjax.activations import get_activation
from nnjax.compare import compare
from nnjax.layers import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Layer,
    apply_model,
    from_spec,
    init_model,
    serial,
)
from nnjax.losses import get_loss
from nnjax.models import cnn, gru, logistic_regression, mlp, resmlp
from nnjax.optim import get_optimizer
from nnjax.train import (
    FitResult,
    NonFiniteLossError,
    evaluate,
    fit,
    make_loss_fn,
    make_train_step,
)

__version__ = "0.1.0"


def enable_x64(enabled: bool = True) -> None:
    """Switch JAX to float64 by default (``jax_enable_x64``); float32 is nnjax's default."""
    jax.config.update("jax_enable_x64", bool(enabled))


__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "FitResult",
    "Flatten",
    "Layer",
    "NonFiniteLossError",
    "activations",
    "apply_model",
    "checkpoint",
    "cnn",
    "compare",
    "data",
    "enable_x64",
    "evaluate",
    "fit",
    "from_spec",
    "get_activation",
    "get_loss",
    "get_optimizer",
    "gru",
    "init_model",
    "initializers",
    "interop",
    "logistic_regression",
    "losses",
    "make_loss_fn",
    "make_train_step",
    "mlp",
    "parallel",
    "resmlp",
    "serial",
]
