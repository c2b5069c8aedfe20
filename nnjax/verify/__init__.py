"""Verification: the hand-derived NumPy twin (:mod:`nnjax.reference`) against ``jax.grad``
and Optax, component by component. ``nnjax verify`` prints the table; the tests use the same
functions.

Every check returns :class:`Check` rows: the component, the max absolute difference, the max
relative difference, the tolerance and which of the two it bounds. The relative difference
of two arrays is normwise, max_i |a_i - b_i| / max_i |b_i| (the max over the finite b_i;
equal infinities, a limit both sides reach, differ by 0), and the max over the leaves of a
tree: elementwise ratios are meaningless where a derivative underflows (elu'(-60) = 8.8e-27,
which JAX's expm1 rule rounds to 0) or a saturated tanh' is rounding noise in both.

Tolerances (float64 unless said):

* values and gradients, twin vs ``jax.grad``: relative <= 1e-10 (``RTOL64``); for the layers
  beyond Dense (:mod:`nnjax.verify.layers`) a leaf's scale is floored at 1% of the largest
  leaf of its tree (``check_tree``), so that a gradient that is exactly 0 (rounding noise on
  both sides) is judged against the tree's scale;
* gradients vs central finite differences (h = 1e-6): relative <= 1e-6 (``FD_RTOL``);
* 200-step optimizer trajectories, twin vs Optax: absolute <= 1e-9 (``TRAJ_ATOL``);
* ``nnjax.fit`` vs ``reference.train`` step by step: absolute <= 1e-9 on params and losses;
* float32: JAX in float32 against the float64 twin, relative <= 1e-4 for values and
  gradients (``RTOL32``: float32's unit roundoff is 6e-8; sums of up to 256 x 128 terms and
  five layers stay well inside 1e-4), and 100 fit steps within 1e-4 absolute (``TRAJ32_ATOL``).

Two rows per registry need no tolerance: every public name has a twin, and every keyword
default that a public function and its twin both declare is equal (the other rows build the
twin from JAX's own hyperparameters, so only this row sees a default changed on one side).
A step that raises is one failing row naming the error and the line of nnjax that raised it.
"""

import numbers
import os
import traceback
from collections.abc import Callable

import numpy as np

from nnjax.verify.checks import (
    check_activations,
    check_finite_differences,
    check_fit,
    check_float32,
    check_layers,
    check_losses,
    check_optimizers,
    check_registries,
    check_relu_derivative,
    finite_difference_check,
    finite_difference_grad,
    loss_cases,
    optimizer_trajectory,
)
from nnjax.verify.core import (
    FD_RTOL,
    FD_STEP,
    RTOL32,
    RTOL64,
    TRAJ32_ATOL,
    TRAJ_ATOL,
    Check,
    check,
    compile_fast,
    tree_diff,
)
from nnjax.verify.layer_rows import (
    LAYER_CASES,
    batch_norm_steps,
    check_batch_norm_state,
    check_embedding,
    check_layer_twins,
    check_max_pool_ties,
    check_more_layers,
    check_recurrent_initial_state,
)
from nnjax.verify.layers import check_tree, compare_network, twin_of
from nnjax.verify.networks import check_network_twins, network_spec
from nnjax.verify.problems import (
    Arch,
    compare_fit,
    compare_mlp,
    fit_batch_indices,
    jax_loss_and_grads,
    make_problem,
    models,
    output_activation_for,
    random_arch,
    ref_loss_and_grads,
)

MAX_ARCHITECTURES = 100_000
"""The most random architectures one run takes (``nnjax verify --architectures``'s bound):
every step is made before the first runs."""


def _check_int(name: str, value, high: float = float("inf")) -> int:
    """``value`` as an int (Python or NumPy, never a bool) in [0, high], else a ValueError
    naming ``name``: not a deferred TypeError or NumPy's message once the steps run."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= high:
        bound = "" if high == float("inf") else f" and <= {high}"
        raise ValueError(f"{name} must be an integer >= 0{bound}, got {value!r}")
    return int(value)


def verify_steps(seed: int = 0, architectures: int = 8) -> list[tuple[str, Callable]]:
    """The checks as ``(name, run)`` steps, ``run() -> list[Check]``, in the order of the
    table; they share one random generator, so they must run in this order. ``seed`` is an
    int >= 0, ``architectures`` an int in [0, :data:`MAX_ARCHITECTURES`] (else ValueError)."""
    seed = _check_int("seed", seed)
    architectures = _check_int("architectures", architectures, MAX_ARCHITECTURES)
    rng = np.random.default_rng(seed)
    steps = [
        ("registries", check_registries),
        ("activations", lambda: check_activations(rng)),
        ("losses", lambda: check_losses(rng)),
        ("layers", lambda: check_layers(rng)),
        ("more layers", lambda: check_more_layers(rng)),
    ]
    for i in range(architectures):
        steps.append(
            (f"MLP {i + 1}/{architectures}", lambda i=i: compare_mlp(random_arch(rng), seed + i))
        )
    steps += [
        ("network twins", lambda: check_network_twins(rng, architectures)),
        ("finite differences", lambda: check_finite_differences(rng)),
        ("relu derivative", lambda: check_relu_derivative(rng)),
        ("optimizers", check_optimizers),
        ("fit", check_fit),
        ("float32", lambda: check_float32(rng)),
    ]
    return steps


def crashed_row(step: str, error: Exception) -> Check:
    """A failing row for a step that raised: the step, the error and the innermost line of
    nnjax that raised it (a twin's typo stopped ``nnjax verify`` with a traceback, no table
    and the verdict's exit status 1)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "nnjax" in f.filename]
    where = ""
    if frames:
        path = frames[-1].filename.replace(os.sep, "/")
        path = "nnjax/" + path.rsplit("/nnjax/", 1)[-1] if "/nnjax/" in path else path
        where = f" at {path}:{frames[-1].lineno} in {frames[-1].name}"
    what = f"{type(error).__name__}: {error}".splitlines()[0]
    return Check(f"{step}: raised {what}{where}", float("inf"), float("inf"), 0.0, "abs")


def run_all(
    seed: int = 0, architectures: int = 8, on_step: Callable[[int, int, str], None] | None = None
) -> list[Check]:
    """Every check, in the order of the table. ``on_step(done, total, name)`` is called
    before each step (``name`` the one starting) and once at the end (``name`` "done"). A
    step that raises gives one failing row (:func:`crashed_row`) and the next steps run."""
    steps = verify_steps(seed, architectures)
    rows = []
    for i, (name, run) in enumerate(steps):
        if on_step is not None:
            on_step(i, len(steps), name)
        try:
            rows += run()
        except Exception as e:  # a side that crashes is a failing row; the other steps run
            rows.append(crashed_row(name, e))
    if on_step is not None:
        on_step(len(steps), len(steps), "done")
    return rows


__all__ = [
    "FD_RTOL",
    "FD_STEP",
    "LAYER_CASES",
    "MAX_ARCHITECTURES",
    "RTOL32",
    "RTOL64",
    "TRAJ32_ATOL",
    "TRAJ_ATOL",
    "Arch",
    "Check",
    "batch_norm_steps",
    "check",
    "check_activations",
    "check_batch_norm_state",
    "check_embedding",
    "check_finite_differences",
    "check_fit",
    "check_float32",
    "check_layer_twins",
    "check_layers",
    "check_losses",
    "check_max_pool_ties",
    "check_more_layers",
    "check_network_twins",
    "check_optimizers",
    "check_recurrent_initial_state",
    "check_registries",
    "check_relu_derivative",
    "check_tree",
    "compare_fit",
    "compare_mlp",
    "compare_network",
    "compile_fast",
    "crashed_row",
    "finite_difference_check",
    "finite_difference_grad",
    "fit_batch_indices",
    "jax_loss_and_grads",
    "loss_cases",
    "make_problem",
    "models",
    "network_spec",
    "optimizer_trajectory",
    "output_activation_for",
    "random_arch",
    "ref_loss_and_grads",
    "run_all",
    "tree_diff",
    "twin_of",
    "verify_steps",
]
