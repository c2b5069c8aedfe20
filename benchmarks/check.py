"""Correctness first: every implementation's result against the NumPy twin's.

After the same N steps from the same params on the same batches, an implementation must
match the twin on

* the loss of every step: |J_k - J_k^twin| <= loss_tol * (1 + |J_k^twin|), and
* every parameter: max |theta - theta^twin| <= param_tol * max |theta^twin - theta_0| + 1e-7
  per leaf, i.e. relative to how far training moved it (a skipped step, a wrong learning
  rate or a swapped batch moves it by a visible fraction of that).

Float32 rounding differs between BLAS/XLA/torch kernels by ~1e-7; where a pre-activation sits
that close to zero, the ReLU of one example flips, and from then on that example's gradient
differs by ~lr |x| |delta| / B (seen: 1% of the movement of W^1 and 3e-5 in the loss after
64 steps at batch 32 on the 784-dim data, PyTorch vs the twin). The tolerances leave room for
a few such flips and still catch a 10% wrong learning rate (5% of the movement), a skipped
step or a swapped batch (the loss). Float64 runs (the seed example) are held to 1e-12.
A mismatch raises :class:`Mismatch`, which stops the suite.

Adam's params are compared in the Frobenius norm per leaf (``param_norm="fro"``):
||theta - theta^twin|| <= param_tol * ||theta^twin - theta_0|| + 1e-7. Adam moves every entry
by about lr sign(g) once |g| >> eps, so an entry whose gradient is a sum that cancels to
rounding level (the 784-dim data at batch 1024) takes a full step in a direction rounding
decides: the largest entry differs by more than the largest movement (1.4x, every
implementation alike, against a twin rounded otherwise), while the norm of the difference stays
at 2% of the norm of the movement; a 10% wrong learning rate still moves it by 10%.
"""

import jax
import numpy as np

LOSS_TOL = 3e-4
PARAM_TOL = 5e-2


class Mismatch(AssertionError):
    """An implementation disagrees with the NumPy twin."""


def compare(
    where: str,
    params,
    losses,
    ref_params,
    ref_losses,
    params0,
    *,
    loss_tol: float = LOSS_TOL,
    param_tol: float = PARAM_TOL,
    param_norm: str = "max",
) -> dict:
    """Check (see the module docstring) and return the errors found; raise on a mismatch.
    ``param_norm``: "max" (the largest entry) or "fro" (the Frobenius norm, for Adam)."""
    size = {"max": lambda d: float(np.abs(d).max()), "fro": lambda d: float(np.linalg.norm(d))}
    if param_norm not in size:
        raise ValueError(f"param_norm must be 'max' or 'fro', got {param_norm!r}")
    losses, ref_losses = np.asarray(losses, np.float64), np.asarray(ref_losses, np.float64)
    if losses.shape != ref_losses.shape:
        raise Mismatch(f"{where}: {losses.shape} losses, the twin has {ref_losses.shape}")
    if losses.size == 0:
        raise Mismatch(f"{where}: no losses to check (0 steps)")
    if not np.isfinite(losses).all():
        raise Mismatch(
            f"{where}: non-finite loss at step {np.flatnonzero(~np.isfinite(losses))[0]}"
        )
    loss_err = np.abs(losses - ref_losses) / (1.0 + np.abs(ref_losses))
    leaves, ref, start = (jax.tree.leaves(t) for t in (params, ref_params, params0))
    if len(leaves) != len(ref) or len(start) != len(ref):  # zip would skip the extra ones
        raise Mismatch(
            f"{where}: {len(leaves)} param arrays, the twin has {len(ref)}, the initial "
            f"params {len(start)}"
        )
    worst = 0.0
    for i, (a, b, a0) in enumerate(zip(leaves, ref, start)):
        a, b, a0 = np.asarray(a), np.asarray(b), np.asarray(a0)
        if a.shape != b.shape:
            raise Mismatch(f"{where}: param {i} has shape {a.shape}, the twin's {b.shape}")
        if a.dtype != b.dtype:
            raise Mismatch(f"{where}: param {i} is {a.dtype}, the twin's is {b.dtype}")
        moved = size[param_norm](b.astype(np.float64) - a0)
        err = size[param_norm](a.astype(np.float64) - b)
        rel = err / (moved + 1e-7 / param_tol)
        worst = max(worst, rel)
        if not err <= param_tol * moved + 1e-7:  # a nan param fails too (nan > tol is False)
            raise Mismatch(
                f"{where}: param {i} {a.shape} differs from the NumPy twin by {err:.3g} after "
                f"{len(losses)} steps (training moved it by {moved:.3g}; tolerance "
                f"{param_tol:g} of that{'; Frobenius norms' if param_norm == 'fro' else ''})"
            )
    if not loss_err.max() <= loss_tol:
        k = int(np.argmax(loss_err))
        raise Mismatch(
            f"{where}: loss at step {k} is {losses[k]:.7g}, the NumPy twin's {ref_losses[k]:.7g}"
            f" (relative error {loss_err[k]:.2g} > {loss_tol:g})"
        )
    return {"max_loss_rel_err": float(loss_err.max()), "max_param_err_vs_moved": worst}
