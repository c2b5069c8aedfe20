"""Per-feature standardisation with its statistics held as data (JSON-able): a saved model
re-applies the statistics of its training split to raw inputs. ``nnjax.data`` re-exports
:class:`Standardizer` and :func:`standardize`."""

from typing import NamedTuple

import numpy as np


class Standardizer(NamedTuple):
    """Per-feature standardisation x' = (x - mean) / std, its statistics held as data.

    ``mean`` and ``std`` are (features,) arrays fitted on the training split only; ``std`` is
    the divisor: the split's standard deviation (ddof 0), or 1 for a feature that is constant
    there (all its values equal: a float32 std of rounding noise does not count), which is
    then only centred on that value. :meth:`transform` maps (..., features) to the same
    shape (float32 statistics keep float32 inputs float32; JAX arrays work too).
    :meth:`to_dict` and :meth:`from_dict` round-trip exactly through JSON (float32 -> Python
    float -> float32 is exact), so a saved model can re-apply the statistics to raw inputs.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X) -> "Standardizer":
        """The statistics of ``X`` (n, features), n >= 1, every value finite (a nan would
        make its feature's mean nan, and every standardised value of it)."""
        try:
            X = np.asarray(X)
        except ValueError as e:  # rows of unequal lengths
            raise ValueError(
                f"Standardizer.fit: X must be an array (n, features); {str(e).splitlines()[0]}"
            ) from None
        if X.ndim != 2 or 0 in X.shape:  # no features: from_dict could not read it back
            raise ValueError(f"Standardizer.fit: X must be (n >= 1, features >= 1); got {X.shape}")
        if X.dtype.kind not in "biuf":  # complex statistics are no JSON; text, objects fail
            raise ValueError(
                f"Standardizer.fit: X must hold real numbers (ints, bools or floats); got dtype "
                f"{X.dtype}"
            )
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            bad = np.flatnonzero(~np.isfinite(X).all(axis=0))
            raise ValueError(
                f"Standardizer.fit: X has nan/inf in {bad.size} feature(s), first columns "
                f"{bad[:5].tolist()}"
            )
        with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: nan, redone below
            mean, std = X.mean(axis=0), X.std(axis=0)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):  # float32 overflowed
            # (1e30 squared; float64's sum of 1e308s): the statistics in float64 of X scaled
            # by its largest magnitude per feature, then back in X's dtype
            wide = X.astype(np.float64)
            scale = np.abs(wide).max(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            mean, std = (wide / scale).mean(axis=0) * scale, (wide / scale).std(axis=0) * scale
            mean, std = mean.astype(X.dtype), np.minimum(std, np.finfo(X.dtype).max)
            std = std.astype(X.dtype)
        # a constant feature is told by its values, not by its std: float32 sums round, so
        # 1000 copies of 0.1 have mean 0.10000002 and std 1.5e-8, which would blow a value
        # of 0.101 up to 67108; it is centred on its one value and divided by 1
        constant = (X == X[:1]).all(axis=0)
        mean = np.where(constant, X[0], mean).astype(mean.dtype)
        return cls(mean, np.where(constant | ~(std > 0), 1.0, std).astype(std.dtype))

    @classmethod
    def identity(cls, n_features: int, dtype=np.float32) -> "Standardizer":
        """mean 0, std 1: x' = x exactly (toy and xor are used raw)."""
        import numbers

        is_int = isinstance(n_features, numbers.Integral) and not isinstance(n_features, bool)
        if not is_int or n_features < 1:
            raise ValueError(
                f"Standardizer.identity: n_features must be an int >= 1; got {n_features!r}"
            )
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"Standardizer.identity: dtype must be a float dtype; got {dtype!r}")
        return cls(np.zeros(n_features, dtype), np.ones(n_features, dtype))

    def transform(self, X):
        """(X - mean) / std over the last axis; X is (..., features)."""
        X = X if hasattr(X, "shape") else np.asarray(X)
        if X.ndim == 0 or X.shape[-1] != len(self.mean):
            raise ValueError(
                f"Standardizer: fitted on {len(self.mean)} features; got an input of shape "
                f"{X.shape}"
            )
        return (X - self.mean) / self.std

    def to_dict(self) -> dict:
        """``{"mean": [...], "std": [...], "dtype": "float32"}``: JSON-able."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return {"mean": mean.tolist(), "std": std.tolist(), "dtype": str(mean.dtype)}

    @classmethod
    def from_dict(cls, d) -> "Standardizer":
        """The inverse of :meth:`to_dict`; a ValueError names what is wrong with ``d``."""
        if not isinstance(d, dict) or not {"mean", "std"} <= set(d):  # not a whole dict shown
            got = f"keys {sorted(map(str, d))}" if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"Standardizer.from_dict: needs keys 'mean' and 'std'; got {got}")
        dtype = d.get("dtype", "float32")
        if dtype not in ("float16", "float32", "float64"):
            raise ValueError(f"Standardizer.from_dict: dtype {dtype!r} is not a float dtype")
        try:
            mean, std = np.asarray(d["mean"], dtype), np.asarray(d["std"], dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Standardizer.from_dict: mean and std must be numbers ({e})") from e
        if mean.ndim != 1 or mean.shape != std.shape or not len(mean):
            raise ValueError(
                f"Standardizer.from_dict: mean and std must be lists of the same length >= 1; "
                f"got shapes {mean.shape} and {std.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std) & (std > 0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                "Standardizer.from_dict: mean must be finite and std finite > 0; feature "
                f"{i} has mean {mean[i]:g} and std {std[i]:g} ({bad.size} such feature(s))"
            )
        return cls(mean, std)


def standardize(X_train, *others):
    """(X - mean) / std with the training split's mean and std, for every array given.

    A feature that is constant on the training split (std = 0, e.g. a blank pixel of digits)
    is only centred (std taken as 1), so test values are never blown up. The statistics as
    data: :class:`Standardizer`.
    """
    s = Standardizer.fit(X_train)
    return tuple(s.transform(X) for X in (X_train, *others))
