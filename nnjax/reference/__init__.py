"""The hand-derived NumPy twin of nnjax: plain NumPy, derivatives written by hand.

Imports nothing from JAX.
"""
