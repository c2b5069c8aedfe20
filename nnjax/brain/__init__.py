"""The brain side: spiking neurons, synchrony, sleep and dreams, as differentiable JAX code.

Import the submodules directly, e.g. ``from nnjax.brain import neurons``.
"""
