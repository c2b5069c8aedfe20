"""The nnjax benchmark suite: every result checked against the NumPy twin, then timed
against NumPy, a hand-written JAX step, Flax (NNX and linen), Equinox and PyTorch.

Run ``python -m benchmarks`` (or ``nnjax bench``); ``--quick`` for the smoke test.
See ``benchmarks/README.md``.
"""
