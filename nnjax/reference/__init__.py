"""The hand-derived NumPy twin of nnjax: plain NumPy, derivatives written by hand.

Imports nothing from JAX (a test parses every module here to keep it so). The modules:

* :mod:`~nnjax.reference.activations`: ``ACTIVATIONS[name] = (f, df)`` and ``vjp``; the
  ReLU derivative is the step 1[z > 0], not max(0, z) (see the module docstring);
* :mod:`~nnjax.reference.losses`: ``LOSSES[name] = (value, grad)``, dJ/dprediction;
* :mod:`~nnjax.reference.layers`: ``forward(params, x) -> (out, cache)`` and
  ``backward(dout, cache) -> (dx, grads)`` pairs (:class:`~nnjax.reference.pair.Pair`);
  ``LAYERS`` mirrors ``nnjax.layers.LAYERS``, with the twins of
  :mod:`~nnjax.reference.conv` (convolution by im2col, transposed convolution),
  :mod:`~nnjax.reference.pool` (max pooling's first-maximum routing, average, global),
  :mod:`~nnjax.reference.norm` (layer and batch norm, the full batch-statistics gradient),
  :mod:`~nnjax.reference.combinators` (fan-out, parallel, fan-in, residual) and
  :mod:`~nnjax.reference.recurrent` (SimpleRNN/GRU/LSTM, backpropagation through time);
* :mod:`~nnjax.reference.mlp`: the MLP's backpropagation written out layer by layer, and
  logistic regression, on the very params ``nnjax.mlp`` / ``nnjax.logistic_regression`` make;
* :mod:`~nnjax.reference.optim`: ``OPTIMIZERS[name](learning_rate, **hp) -> (init, update)``
  with Optax 0.2.8's exact conventions;
* :mod:`~nnjax.reference.train`: a NumPy loop that reproduces ``nnjax.fit`` step by step.

:mod:`nnjax.verify` (``nnjax verify``) holds the twin and JAX side by side.
"""
