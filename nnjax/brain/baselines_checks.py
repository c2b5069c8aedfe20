"""The hyperparameter checks of :mod:`nnjax.brain.baselines`' methods (split out of it to keep
it short): a named ValueError for an ``hp`` that is not a dict of the method's keys, holds a
non-number, or a number outside its bounds, called on concrete values before any training
(``Method.check``) and skipped on traced ones."""

import jax
import numpy as np

from nnjax.brain.dynamics import concrete


def _check_keys(hp, names, where: str) -> None:
    """A ValueError naming ``where`` unless ``hp`` is a dict holding every key of ``names``
    (None or a misspelt key was a bare TypeError or KeyError inside the trace) and no other
    key (an unknown one, e.g. another method's, was ignored silently)."""
    if not isinstance(hp, dict) or any(k not in hp for k in names):
        missing = [k for k in names if k not in hp] if isinstance(hp, dict) else list(names)
        raise ValueError(f"{where}: hp must be a dict with the keys {', '.join(names)} (missing "
                         f"{', '.join(missing)}), got {hp!r}")  # fmt: skip
    unknown = [k for k in hp if k not in names]
    if unknown:
        raise ValueError(f"{where}: hp has the unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"its keys are {', '.join(names)}")  # fmt: skip


def _check_hp(hp: dict, bounds: dict, where: str, keys: tuple | None = None) -> None:
    """A ValueError naming ``where`` unless ``hp`` is a dict holding the keys of ``bounds``
    and each concrete ``hp[name]`` is finite and above its bound ``bounds[name] = (low,
    inclusive)`` (a nan would be a silent wrong number), and at most ``high`` when the bound
    is ``(low, inclusive, high)``; ``keys``: every key ``hp`` holds (None: those of ``bounds``).
    A bool is not a number here."""
    _check_keys(hp, tuple(bounds) if keys is None else keys, where)
    for name, (low, inclusive, *high) in bounds.items():
        v = concrete(hp[name])
        if v is not None and v.dtype == bool:  # True ran as 1.0, silently
            raise ValueError(f"{where}: {name} must be a number, got {hp[name]!r}")
        if v is None:
            if isinstance(hp[name], jax.core.Tracer):
                continue
            # a string failed in jit's argument parsing, naming no method
            raise ValueError(f"{where}: {name} must be a number, got {hp[name]!r}")
        ok = np.isfinite(v) & ((v >= low) if inclusive else (v > low))
        ok &= (v <= high[0]) if high else True
        if not np.all(ok):
            bad = v[~ok].ravel()[0] if v.ndim else v.item()
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            bound += f" and <= {high[0]:g}" if high else ""
            raise ValueError(f"{where}: {name} must be finite and {bound}, got {bad}")


def _checker(bounds: dict, where: str):
    """A ``Method.check`` of hyperparameters with the bounds of :func:`_check_hp`."""
    return lambda hp: _check_hp(hp, bounds, where)


def _check_weights(weights, n: int, where: str) -> None:
    """A ValueError naming ``where`` unless ``weights`` is (n,) (one per row) and, when
    concrete, finite and >= 0 (a length mismatch failed in a reshape; a negative weight
    made a Fisher information negative)."""
    if np.shape(weights) != (n,):
        raise ValueError(f"{where}: weights must be ({n},), one per row of X, got shape "
                         f"{np.shape(weights)}")  # fmt: skip
    v = concrete(weights)
    bad = None if v is None else v[~(np.isfinite(v) & (v >= 0))]
    if bad is not None and bad.size:
        raise ValueError(f"{where}: weights must be finite and >= 0, got {bad[0]}")


def check_buffer_size(m, capacity: int, where: str) -> None:
    """A ValueError naming ``where`` unless every concrete ``m`` (examples per class and task)
    is a whole number in 0..``capacity`` (a larger m would be clipped, a fraction rounded up)."""
    v = concrete(m)
    if v is None:
        return
    ok = np.isfinite(v) & (v >= 0) & (v <= capacity)
    ok &= np.where(np.isfinite(v), v, 0) == np.round(np.where(np.isfinite(v), v, 0))
    if not np.all(ok):
        bad = v[~ok].ravel()[0] if v.ndim else v.item()
        raise ValueError(f"{where}: m (examples per class) must be a whole number in "
                         f"0..{capacity} (the buffer's capacity), got {bad}")  # fmt: skip
