"""The checks of :mod:`nnjax.data`'s arguments: fractions, flags, counts and seeds, each a
``ValueError`` naming the function (``who``) and the argument. NumPy-free and JAX-free."""

import numbers


def fraction(who: str, name: str, value, zero_ok: bool = False) -> float:
    """``value`` as a Python float in (0, 1) ([0, 1) where ``zero_ok``; a NumPy float too,
    which scikit-learn's ``test_size`` refuses), else a ``ValueError`` naming ``name``."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and (0.0 <= value if zero_ok else 0.0 < value) and value < 1.0):
        raise ValueError(f"{who}: {name} must be in {'[0' if zero_ok else '(0'}, 1), got {value!r}")
    return float(value)


def flag(who: str, name: str, value) -> bool:
    """``value`` as a bool by :func:`nnjax.layers.checks.flag` ("no" is not True)."""
    if isinstance(value, bool):  # the usual case imports no JAX
        return value
    from nnjax.layers.checks import flag

    return flag(who, name, value)


def val_fraction_below(who: str, val_fraction, test_fraction: float) -> float:
    """``val_fraction`` in [0, 1), with val_fraction + test_fraction below 1."""
    v = fraction(who, "val_fraction", val_fraction, zero_ok=True)
    if v + test_fraction >= 1.0:
        raise ValueError(
            f"{who}: val_fraction {v:g} + test_fraction {test_fraction:g} must be below 1"
        )
    return v


def count(who: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (Python or NumPy, not a bool), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


MAX_GENERATED_BYTES = 2**30
"""The most a generator's float64 features may take (1 GiB): spirals(n=10**12) asked NumPy
for 2.4 TiB and died in a MemoryError (mnist1d first looped for hours)."""


def examples(who: str, n, n_features: int, minimum: int = 1) -> int:
    """``n`` examples to generate: an int >= ``minimum`` whose (n, n_features) float64
    features fit in :data:`MAX_GENERATED_BYTES`, else a ValueError."""
    n = count(who, "n", n, minimum)
    most = MAX_GENERATED_BYTES // (8 * n_features)
    if n > most:
        raise ValueError(
            f"{who}: n must be an int in [{minimum}, {most}] (at most "
            f"{MAX_GENERATED_BYTES // 2**30} GiB of float64 features, made in memory), got {n}"
        )
    return n


def noise(who: str, value) -> float:
    """A noise scale: a finite real >= 0 (a nan made every generated point nan)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and 0.0 <= value < float("inf")):
        raise ValueError(f"{who}: noise must be a finite number >= 0, got {value!r}")
    return float(value)


def seed(who: str, seed) -> int:
    """A data seed: an int in [0, 2**32) (what NumPy and scikit-learn take), else a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"{who}: seed must be an int in [0, 2**32), got {seed!r}")
    return int(seed)
