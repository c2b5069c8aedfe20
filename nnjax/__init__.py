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
* saved models: :func:`save` (a folder describing itself: architecture, params, standardisation,
  label names, configuration) and :func:`load` (a :class:`Predictor` for raw inputs).
* studies: :func:`compare` (optimizers x learning rates x seeds, vmapped in one jit each).
* scale and safety: :mod:`nnjax.parallel` (``fit(..., mesh=8)``), :mod:`nnjax.checkpoint`
  (``fit(..., checkpoint_dir=D, resume=True)``).
* Flax interop: :mod:`nnjax.interop` (MLP params to Flax NNX / linen and back).
* the oracle: :mod:`nnjax.reference`, the hand-derived NumPy twin (``nnjax verify``).
* the brain side: :mod:`nnjax.brain` (spiking neurons, synchrony, sleep and dreams).
* float64 is opt-in: :func:`enable_x64` (or ``with jax.enable_x64(True):``).

Importing ``nnjax`` is lazy (PEP 562): it imports neither JAX nor Flax, matplotlib or rich.
Each public name loads its module on first use, so ``nnjax --help`` and ``nnjax.__version__``
cost no JAX start-up (about 2 s on 2 cores) and ``nnjax.interop`` alone brings in Flax.
"""

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it (a name equal to its module's last part is the
# module itself: ``nnjax.data`` is the module nnjax.data)
_LAZY = {
    "Activation": "nnjax.layers",
    "Dense": "nnjax.layers",
    "Dropout": "nnjax.layers",
    "Flatten": "nnjax.layers",
    "Layer": "nnjax.layers",
    "serial": "nnjax.layers",
    "init_model": "nnjax.layers",
    "apply_model": "nnjax.layers",
    "from_spec": "nnjax.layers",
    "mlp": "nnjax.models",
    "logistic_regression": "nnjax.models",
    "cnn": "nnjax.models",
    "gru": "nnjax.models",
    "resmlp": "nnjax.models",
    "get_activation": "nnjax.activations",
    "get_loss": "nnjax.losses",
    "get_optimizer": "nnjax.optim",
    "FitResult": "nnjax.train",
    "EarlyStopping": "nnjax.train",
    "NonFiniteLossError": "nnjax.train",
    "evaluate": "nnjax.train",
    "fit": "nnjax.train",
    "make_loss_fn": "nnjax.train",
    "make_train_step": "nnjax.train",
    "compare": "nnjax.compare",
    "save": "nnjax.saved",
    "load": "nnjax.saved",
    "Predictor": "nnjax.predictor",
    "activations": "nnjax.activations",
    "checkpoint": "nnjax.checkpoint",
    "data": "nnjax.data",
    "initializers": "nnjax.initializers",
    "interop": "nnjax.interop",
    "losses": "nnjax.losses",
    "parallel": "nnjax.parallel",
}

# public names that are a function of the subpackage of the same name (``nnjax.compare`` is
# nnjax.compare.compare, the study), not the subpackage itself
_FUNCTIONS_OVER_MODULES = frozenset({"compare"})

if _TYPE_CHECKING:  # for type checkers and IDEs only; never executed
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
    from nnjax.predictor import Predictor
    from nnjax.saved import load, save
    from nnjax.train import (
        EarlyStopping,
        FitResult,
        NonFiniteLossError,
        evaluate,
        fit,
        make_loss_fn,
        make_train_step,
    )


def enable_x64(enabled: bool = True) -> None:
    """Switch JAX to float64 by default (``jax_enable_x64``); float32 is nnjax's default."""
    import jax

    jax.config.update("jax_enable_x64", bool(enabled))


def __getattr__(name: str):
    """Load a public name (or any submodule, e.g. ``nnjax.brain``) on first access."""
    module_name = _LAZY.get(name)
    if module_name is None:
        full = f"{__name__}.{name}"
        if full in _sys.modules:
            return _sys.modules[full]
        if name.startswith("_") or _importlib_util.find_spec(full) is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return _importlib.import_module(full)  # the import binds it here
    module = _importlib.import_module(module_name)
    itself = module_name == f"{__name__}.{name}" and name not in _FUNCTIONS_OVER_MODULES
    value = module if itself else getattr(module, name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(_types.ModuleType):
    """The nnjax module, keeping ``nnjax.compare`` the function.

    Importing the subpackage ``nnjax.compare`` makes Python bind the *module* as the attribute
    ``compare`` of this package; here the function of the same name is bound instead, as the
    eager ``from nnjax.compare import compare`` did before start-up became lazy.
    """

    def __setattr__(self, name, value):
        if (
            name in _FUNCTIONS_OVER_MODULES
            and isinstance(value, _types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "FitResult",
    "Flatten",
    "Layer",
    "NonFiniteLossError",
    "Predictor",
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
    "load",
    "logistic_regression",
    "losses",
    "make_loss_fn",
    "make_train_step",
    "mlp",
    "parallel",
    "resmlp",
    "save",
    "serial",
]
