"""The checks a study makes of its model before anything compiles: an nnjax layer
(:func:`check_layer`) that takes the dataset's features and has an output per class
(:func:`check_model`)."""

from typing import Any

import jax

from nnjax.layers import Layer
from nnjax.layers.checks import ParamsError
from nnjax.train.model import as_apply
from nnjax.train.step import check_labels


def check_model(model: Layer, init_params: Any, splits, dataset: str) -> None:
    """The model takes the features and its outputs fit the labels of the fit, validation
    and test sets of ``splits`` (:class:`nnjax.compare.study.Splits`): the checks ``fit``
    makes (:func:`nnjax.train.step.check_labels`: the loss traced on the output shape, and
    every integer label y in [0, K) for K outputs), done on the first seed's initial params
    with ``jax.eval_shape`` (nothing computed), before any compile. A model with too few
    outputs would train on nan losses and report accuracies."""
    params, state = jax.tree.map(lambda a: a[0], init_params)
    apply = as_apply(model)
    X = splits.fit[0]
    name = getattr(model, "name", "model")
    try:
        out = jax.eval_shape(lambda p, s, x: apply(p, s, x)[0], params, state, X[:1])
    except ParamsError as e:  # the params are the culprit, not X
        raise ParamsError(f"compare: model {name}: {e}") from None
    except ValueError as e:
        msg = f"compare: model {name} does not accept X of shape {X.shape}: {e}"
        raise ValueError(msg) from None
    for part, (_, y) in zip(("fit", "validation", "test"), splits[:3]):
        try:
            check_labels("softmax_cross_entropy", y, out.shape, f"the {part} labels y")
        except ValueError as e:
            raise ValueError(
                f"compare: model {name} does not fit {dataset} ({splits.n_classes} classes; "
                f"give a model with {splits.n_classes} outputs): {e}"
            ) from None


def check_layer(model) -> None:
    """A TypeError naming ``compare``'s ``model`` unless it is None or an nnjax layer (an
    object with ``init`` and ``apply``): a function or a name failed in ``seed_params`` with
    "'function' object has no attribute 'init'"."""
    if model is not None and not (callable(getattr(model, "init", None))
                                  and callable(getattr(model, "apply", None))):  # fmt: skip
        raise TypeError(
            f"compare: model must be None (the preset MLP) or an nnjax layer with init and "
            f"apply (e.g. nnjax.mlp([64, 10])), got {model!r}"
        )
