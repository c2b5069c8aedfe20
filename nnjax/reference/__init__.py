"""The hand-derived NumPy twin of nnjax: plain NumPy, derivatives written by hand.

Imports nothing from JAX (a test parses every module here to keep it so). The modules:

* :mod:`~nnjax.reference.activations`: ``ACTIVATIONS[name] = (f, df)`` and ``vjp``; the
  ReLU derivative is the step 1[z > 0], not max(0, z) (see the module docstring);
* :mod:`~nnjax.reference.losses`: ``LOSSES[name] = (value, grad)``, dJ/dprediction;
* :mod:`~nnjax.reference.layers`: ``forward(params, x) -> (out, cache)`` and
  ``backward(dout, cache) -> (dx, grads)`` pairs; ``LAYERS`` mirrors ``nnjax.layers.LAYERS``;
* :mod:`~nnjax.reference.mlp`: the MLP's backpropagation written out layer by layer, and
  logistic regression, on the very params ``nnjax.mlp`` / ``nnjax.logistic_regression`` make;
* :mod:`~nnjax.reference.optim`: ``OPTIMIZERS[name](learning_rate, **hp) -> (init, update)``
  with Optax 0.2.8's exact conventions;
* :mod:`~nnjax.reference.train`: a NumPy loop that reproduces ``nnjax.fit`` step by step.

:mod:`nnjax.verify` (``nnjax verify``) holds the twin and JAX side by side.
"""
