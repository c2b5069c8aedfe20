"""The check rows, array differences, tolerances and fast compiles behind ``nnjax verify``."""

import numbers
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.extend
import numpy as np

from nnjax.reference.optim import tree_leaves

RTOL64 = 1e-10
FD_RTOL = 1e-6
FD_STEP = 1e-6
TRAJ_ATOL = 1e-9
RTOL32 = 1e-4
TRAJ32_ATOL = 1e-4


class Check(NamedTuple):
    """One row of the table: ``passed`` when the bounded difference is within ``tol``."""

    component: str
    max_abs: float
    max_rel: float
    tol: float
    bound: str = "rel"  # which difference ``tol`` bounds: "rel" or "abs"

    @property
    def passed(self) -> bool:
        """False for a ``bound`` other than "rel" and "abs" (never a silent other bound)."""
        d = {"rel": self.max_rel, "abs": self.max_abs}.get(self.bound, float("nan"))
        return bool(np.isfinite(d) and d <= self.tol)


def leaf_diff(a: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """(max_i |a_i - e_i|, max_i |e_i| over the finite e_i) of two float64 arrays of one
    shape. Equal infinities (a limit both sides reach) differ by 0, not by inf - inf = NaN;
    any other infinity or NaN makes the difference inf or NaN (a failing row)."""
    with np.errstate(invalid="ignore"):
        d = float(np.max(np.where(a == e, 0.0, np.abs(a - e))))
    return d, finite_scale(e)


def finite_scale(e) -> float:
    """max_i |e_i| over the finite entries of ``e`` (0 if none)."""
    e = np.asarray(e, np.float64)
    return float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))


def tree_diff(actual, expected) -> tuple[float, float]:
    """(max abs diff, max normwise relative diff) over the leaves of two trees
    (:func:`leaf_diff`: equal infinities agree)."""
    a_leaves, e_leaves = tree_leaves(_to_numpy(actual)), tree_leaves(_to_numpy(expected))
    if len(a_leaves) != len(e_leaves):
        raise ValueError(f"tree_diff: {len(a_leaves)} leaves vs {len(e_leaves)}")
    max_abs = max_rel = 0.0
    for a, e in zip(a_leaves, e_leaves):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if a.shape != e.shape:
            raise ValueError(f"tree_diff: shapes {a.shape} vs {e.shape}")
        if a.size == 0:
            continue
        d, scale = leaf_diff(a, e)
        max_abs = max(max_abs, d) if np.isfinite(d) else float("inf")
        rel = d / scale if scale > 0 else (0.0 if d == 0 else float("inf"))
        max_rel = max(max_rel, rel) if np.isfinite(rel) else float("inf")
    return max_abs, max_rel


BOUNDS = ("rel", "abs")


def check_tolerance(tol, bound: str = "rel") -> None:
    """A ValueError naming the argument unless ``tol`` is a finite number >= 0 and ``bound``
    one of :data:`BOUNDS` (a misspelt bound would otherwise judge the other difference)."""
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(map(repr, BOUNDS))}, got {bound!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 <= tol < np.inf:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")


def check(component: str, actual, expected, tol: float, bound: str = "rel") -> Check:
    """Compare two trees and make a :class:`Check` row; trees of other leaves or shapes are
    a failing row (infinite differences) that says so, not an error that stops the table.
    A bad ``tol`` or ``bound`` is a ValueError (:func:`check_tolerance`)."""
    check_tolerance(tol, bound)
    try:
        return Check(component, *tree_diff(actual, expected), tol, bound)
    except ValueError as e:
        why = str(e).removeprefix("tree_diff: ")
        return Check(f"{component} (differ: {why})", float("inf"), float("inf"), tol, bound)


def _to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


# XLA options that cut a small program's compile time about threefold on CPU; the numbers
# are the same up to rounding (no fast-math), well inside every tolerance above.
_FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_cpu_use_fusion_emitters": False,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_parallel_codegen_split_count": 1,
}
_fast_ok = [True]


def compile_fast(fn: Callable, *args):
    """``jax.jit(fn)`` compiled for ``args`` with the fast options (falls back if refused);
    under ``jax.disable_jit()`` the jitted ``fn`` itself, run op by op."""
    if jax.config.jax_disable_jit:
        return jax.jit(fn)
    lowered = jax.jit(fn).lower(*args)
    if _fast_ok[0]:
        try:
            return lowered.compile(compiler_options=_FAST_COMPILE)
        except Exception:  # an XLA without these options: compile plainly from now on
            _fast_ok[0] = False
    return lowered.compile()
