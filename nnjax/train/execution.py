"""How ``fit`` runs its loop: fused, chunked or per step, and the rule ``"auto"`` follows.

* ``"fused"``: every step of a chunk of epochs in one compiled program, ``lax.scan`` over
  epochs of ``lax.scan`` over steps (:mod:`nnjax.train.loop`). No dispatch per step.
* ``"chunked"``: a Python loop calls a compiled program of k straight-line steps
  (:data:`CHUNK_STEPS`, or ``"chunked:K"``; :mod:`nnjax.train.stepped`).
* ``"per_step"``: the same with k = 1: one compiled call per optimizer step.

All three take the same batches in the same order, the same steps and the same
evaluations: the results agree up to float rounding (XLA fuses the programs differently).

``"auto"`` (the default) picks ``"chunked"`` for a model whose forward pass contains a
convolution (``lax.conv_general_dilated``, found in its jaxpr) when the loop runs on the CPU,
and ``"fused"`` otherwise. Why: XLA:CPU runs a convolution through Eigen's fast kernel only
in canonical form (input (B, spatial, C), kernel (spatial, in, out)); its
``ConvCanonicalization`` pass rewrites other convolutions into that form, but only those in
the program's entry computation. The body of a ``lax.scan`` is a while loop, another
computation, so the gradient's convolutions (non-canonical: the input gradient's kernel is
(spatial, out, in), the weight gradient contracts over the batch) stay on XLA's naive loop
emitter there. Measured on 2 CPU cores (jax 0.10.2), the MNIST-1D CNN at batch 100: a fused
step 3.7 ms, the same step jitted and called once per step 0.56 ms (the issue's figures);
the compiled programs show the difference (``benchmarks/README.md``). A model without
convolutions (an MLP, the GRU) is fastest fused: no dispatch per step. On a GPU the fused
loop is kept for every model.
"""

from typing import NamedTuple

import jax

EXECUTIONS = ("auto", "fused", "chunked", "per_step")
CHUNK_STEPS = 8  # straight-line steps per compiled call of "chunked" (compile time grows with it)


class Execution(NamedTuple):
    """The resolved choice: ``mode`` ("fused", "chunked" or "per_step"), ``steps_per_call``
    (k of the host loop; None when fused) and ``reason`` (why "auto" chose it, or "asked")."""

    mode: str
    steps_per_call: int | None
    reason: str


def parse_execution(execution) -> tuple[str, int | None]:
    """``"auto"``, ``"fused"``, ``"per_step"``, ``"chunked"`` or ``"chunked:K"`` (K >= 1, in
    ASCII digits) -> (mode, k or None); a ValueError names the valid values."""
    if isinstance(execution, str):
        mode, _, k = execution.partition(":")
        if mode in EXECUTIONS and not k:
            return mode, (CHUNK_STEPS if mode == "chunked" else 1 if mode == "per_step" else None)
        # ASCII digits only: str.isdigit() takes '³', which int() refuses with its own words
        if mode == "chunked" and k.isascii() and k.isdigit() and int(k) >= 1:
            return mode, int(k)
    raise ValueError(
        f"fit: execution must be one of {', '.join(map(repr, EXECUTIONS))} or 'chunked:K' "
        f"(K steps per compiled call, K >= 1), got {execution!r}"
    )


def has_convolution(apply, params, state, x) -> bool:
    """True if ``apply(params, state, x)`` (traced, not run) contains a convolution."""
    jaxpr = jax.make_jaxpr(lambda p, s, a: apply(p, s, a, None, True)[0])(params, state, x)
    return _contains(jaxpr.jaxpr, "conv_general_dilated")


def _contains(jaxpr, primitive: str) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds a Jaxpr
                if hasattr(inner, "eqns") and _contains(inner, primitive):
                    return True
    return False


def choose_execution(execution, apply, params, state, x, platform: str, *, jaxpr=None):
    """The :class:`Execution` of ``fit(..., execution=execution)`` for a model ``apply``
    (``apply(params, state, x, key, train) -> (y, state)``) on batches like ``x``, its loop
    running on ``platform`` ("cpu", "gpu", ...): the module's rule for ``"auto"``. ``jaxpr``:
    the forward pass already traced (``jax.make_jaxpr``), read instead of tracing again."""
    mode, k = parse_execution(execution)
    if mode != "auto":
        return Execution(mode, k, "asked")
    if platform != "cpu":
        return Execution("fused", None, f"auto: fused on {platform}")
    if (
        _contains(jaxpr.jaxpr, "conv_general_dilated")
        if jaxpr is not None
        else has_convolution(apply, params, state, x)
    ):
        return Execution(
            "chunked",
            CHUNK_STEPS,
            "auto: the model has convolutions and runs on the CPU, where a convolution's "
            "gradient inside a fused loop misses XLA's fast kernel",
        )
    return Execution("fused", None, "auto: no convolution")
