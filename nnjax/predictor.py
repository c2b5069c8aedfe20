"""A loaded model, callable on raw inputs: :class:`Predictor` (what ``nnjax.load`` returns).

With raw inputs X (n, *input_shape[1:]) (e.g. (n, features), as read from a data file):

    X' = (X - mean) / std              the saved standardisation statistics (if any), float32
                                       (float64 for a model whose params are float64, loaded
                                       with x64 on: the in-memory model's precision)
    z  = f(params, state, X')          the model in evaluation mode (no dropout; BatchNorm's
                                       running statistics), jit-compiled once per input shape

``predictor(X)`` returns z, the model's outputs: logits (n, K) for the softmax
cross-entropy, one logit (n, 1) for ``binary_cross_entropy_with_logits``, a probability
(n, 1) for ``binary_cross_entropy``. ``predict_proba(X)`` returns class probabilities
(n, K): softmax(z), or [1 - p, p] with p = sigmoid(z) (or z itself for
``binary_cross_entropy``). ``predict(X)`` returns the label names (n,) of the most probable
classes: argmax_k z for K > 1 outputs, else class 1 where z > 0 (logit) or p > 0.5.
"""

from __future__ import annotations

import numpy as np

_FAR = " (inputs far outside the training data?)"


def _ml_float(dtype) -> bool:
    """Is ``dtype`` a floating dtype NumPy knows only as raw bytes (kind 'V': ml_dtypes'
    bfloat16 and float8 types, which JAX knows as floats)?"""
    import jax.numpy as jnp

    return bool(jnp.issubdtype(dtype, jnp.floating))  # False for raw bytes or records


class NonFiniteRows(ValueError):
    """Rows whose inputs or outputs are unusable (nan or inf; for a model trained with
    ``binary_cross_entropy``, an output outside [0, 1], which is no probability): ``rows``
    their 0-based indices, ``what`` is wrong with them, ``hint`` a likely cause ('' or a
    parenthesis)."""

    def __init__(self, name: str, what: str, rows: list, hint: str = ""):
        self.what, self.rows, self.hint = what, rows, hint
        super().__init__(f"{name}: {what} in {len(rows)} row(s), first rows {rows[:5]}{hint}")


class Predictor:
    """A saved model with its params, state, standardisation and label names.

    Attributes: ``model`` (the rebuilt :class:`~nnjax.layers.Layer`), ``params``, ``state``
    (``()`` when stateless), ``standardizer`` (or None), ``label_names`` (list, class k's
    name), ``feature_names`` (a CSV file's columns, or None), ``target`` (the label column it
    was trained with, or None), ``loss``, ``input_shape`` ((-1, ...)), ``config`` (the
    training configuration, or None), ``meta`` (``model.json`` whole), ``path``.
    """

    def __init__(self, model, params, state, standardizer, meta: dict, path: str | None = None):
        import jax
        import jax.numpy as jnp

        from nnjax.layers import apply_model

        self.model, self.standardizer, self.meta, self.path = model, standardizer, meta, path
        self.params = jax.tree.map(jnp.asarray, params)
        self.state = jax.tree.map(jnp.asarray, state)
        self.label_names = list(meta["label_names"])
        self.feature_names = meta.get("feature_names")
        self.target = meta.get("target")
        self.loss = meta["loss"]
        self.input_shape = tuple(meta["model"]["input_shape"])
        self.config = meta.get("config")
        floats = [a.dtype for a in jax.tree.leaves((self.params, self.state))]
        wide = any(d == jnp.float64 for d in floats)  # only with x64 on
        self._dtype = np.dtype(np.float64 if wide else np.float32)
        self._forward = jax.jit(lambda p, s, x: apply_model(model, p, s, x, train=False)[0])

    def transform(self, X) -> np.ndarray:
        """Raw inputs standardised with the saved statistics, float32 (float64 for a model
        with float64 params), shapes checked, every value finite (a row with nan/inf is a
        ValueError naming it). Inputs of ints, bools or floats of any width (float16, and
        ml_dtypes' bfloat16 and float8 types, converted exactly) are taken. A table with named
        columns (a pandas or polars DataFrame) is matched by name to the model's
        :attr:`feature_names`, in any order; a column named :attr:`target` is left out."""
        X = self._by_name(X)
        X = self._as_array(X)
        if X.dtype.kind == "V" and _ml_float(X.dtype):  # bfloat16, float8: NumPy's kind 'V'
            X = X.astype(np.float32)  # exact: each is a subset of float32
        if X.dtype.kind in "biu":
            std_dtype = None if self.standardizer is None else self.standardizer.mean.dtype
            X = X.astype(np.result_type(self._dtype, *([std_dtype] if std_dtype else [])))
        if X.dtype.kind != "f":
            raise ValueError(
                f"{self._name()}: inputs must be numbers (an array of ints, bools or floats), "
                f"got dtype {X.dtype}{' (cast it with .astype(float))' * (X.dtype == object)}"
            )
        want = self.input_shape[1:]
        if X.ndim != len(want) + 1 or tuple(X.shape[1:]) != want:
            one = " (one example? give X[None], of shape (1, ...))" if X.shape == want else ""
            raise ValueError(
                f"{self._name()}: expects inputs of shape (n, {', '.join(map(str, want))}), "
                f"got {X.shape}{one}"
            )
        self._check_finite(X, "inputs have nan/inf")  # the model would still name a class
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        with np.errstate(over="ignore"):
            X = np.asarray(X, self._dtype)
        self._check_finite(X, f"standardised, inputs exceed {self._dtype.name}'s range", _FAR)
        return X

    def _as_array(self, X) -> np.ndarray:
        """``X`` as a NumPy array; rows of unequal lengths (a ragged list) are a ValueError
        naming the saved model, not NumPy's."""
        try:
            return np.asarray(X)
        except ValueError as e:
            why = str(e).splitlines()[0]
            raise ValueError(
                f"{self._name()}: inputs must be an array of shape (n, "
                f"{', '.join(map(str, self.input_shape[1:]))}); a list of rows of unequal "
                f"lengths? (NumPy: {why})"
            ) from None

    def _check_finite(self, a: np.ndarray, what: str, hint: str = "") -> None:
        """A ValueError naming the rows of ``a`` (n, ...) with a nan or inf: ``what``."""
        bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1)) if a.size else []
        if len(bad):
            raise NonFiniteRows(self._name(), what, bad.tolist(), hint)

    def _by_name(self, X):
        """A DataFrame's columns, put in the training order: np.asarray would take them in
        the frame's order, and a reordered frame would give wrong outputs silently. The
        feature columns are selected before any conversion, so other columns (a text label
        column) may be of any type; a name given twice is refused."""
        columns = getattr(X, "columns", None)
        if columns is None or self.feature_names is None:
            return X
        from nnjax.inputs import check_same_columns

        columns = list(columns)
        names = [str(c) for c in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{self._name()}: the table repeats column names {repeated}")
        given = [c for c in names if c != self.target]
        check_same_columns(f"{self._name()}: the table", given, list(self.feature_names))
        return np.asarray(X[[columns[names.index(f)] for f in self.feature_names]])

    def __call__(self, X) -> np.ndarray:
        """The model's outputs on raw inputs X: logits, or probabilities for a model trained
        with ``binary_cross_entropy`` (module docstring). Rows whose inputs or outputs are
        nan or inf (finite inputs can overflow), or whose probability is outside [0, 1],
        are a :class:`NonFiniteRows` naming them."""
        z = np.asarray(self._forward(self.params, self.state, self.transform(X)))
        self._check_finite(z, "the model's outputs are nan or inf", _FAR)  # argmax: a class
        if self.loss == "binary_cross_entropy":  # q and 1 - q must be probabilities
            bad = np.flatnonzero(((z < 0) | (z > 1)).reshape(len(z), -1).any(axis=1))
            if len(bad):
                raise NonFiniteRows(
                    self._name(),
                    "the model's outputs are outside [0, 1], no probabilities,",
                    bad.tolist(),
                    " (saved with loss binary_cross_entropy, but its last layer gives no "
                    "probability: a logit is binary_cross_entropy_with_logits)",
                )
        return z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, K), columns in the order of :attr:`label_names`."""
        return self.proba_of(self(X))

    def predict(self, X) -> np.ndarray:
        """The label names (n,) of the predicted classes."""
        return self.names_of(self.classes_of(self(X)))

    def proba_of(self, z: np.ndarray) -> np.ndarray:
        """Probabilities (n, K) from the model's outputs ``z``."""
        z = np.asarray(z, np.float64)
        if self.loss == "mse":
            raise ValueError(f"{self._name()}: trained with mse, its outputs are no probabilities")
        if z.ndim == 2 and z.shape[1] > 1:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        z = z.reshape(len(z))
        p = z if self.loss == "binary_cross_entropy" else 1.0 / (1.0 + np.exp(-z))
        return np.stack([1.0 - p, p], axis=1)

    def classes_of(self, z: np.ndarray) -> np.ndarray:
        """Class indices (n,) from the model's outputs ``z`` (the rule of
        :func:`nnjax.train.classification_accuracy`)."""
        z = np.asarray(z)
        if z.ndim == 2 and z.shape[1] > 1:
            return np.argmax(z, axis=1)
        threshold = 0.5 if self.loss in ("binary_cross_entropy", "mse") else 0.0
        return (z.reshape(len(z)) > threshold).astype(np.int64)

    def names_of(self, classes: np.ndarray) -> np.ndarray:
        """Label names of class indices, as an array (ints stay ints, names stay strings;
        names of mixed types, e.g. ``[0, "other"]``, an object array, so that 0 stays 0)."""
        mixed = len({type(n) for n in self.label_names}) > 1
        names = np.asarray(self.label_names, dtype=object if mixed else None)
        return names[np.asarray(classes, np.int64)]

    def _name(self) -> str:
        return f"saved model {self.path}" if self.path else "saved model"

    def __repr__(self) -> str:
        n = len(self.label_names)
        shown = ", ".join(map(str, self.label_names[:5])) + (", ..." if n > 5 else "")
        return (
            f"Predictor({self.meta['model']['spec'][0]}, input {self.input_shape}, {n} classes "
            f"({shown}), loss {self.loss}" + (f", from {self.path}" if self.path else "") + ")"
        )
