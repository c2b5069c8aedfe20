# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 — Convolutions and recurrences
#
# Beyond the MLP: a convolutional network on images, one with BatchNorm (a layer that
# carries state), and a recurrent network on sequences, each in a few lines. Every layer is
# still a pair of pure functions `(init, apply)` whose gradients the NumPy twin checks
# (`nnjax verify`); `nnjax.fit` trains them all the same way.
#
# The models here are small and trained briefly, to keep the notebook quick on a CPU (the
# compile and run times it prints are those of the machine that executed it). The MNIST-1D
# paper's full recipe (4000 training examples, 8000 Adam steps at batch 100), run for 3 seeds,
# is `python -m benchmarks.mnist1d_table`; its report, `docs/results/mnist1d-table/`, has the
# CNN at 93.9 ± 0.5% and the GRU at 89.9 ± 2.9% test accuracy (the paper: 94% and 91%).

# %%
import jax
import numpy as np

import nnjax
from nnjax.layers import (
    Activation,
    BatchNorm,
    Bidirectional,
    Conv,
    Dense,
    Flatten,
    GRUCell,
    MaxPool,
    Reshape,
    init_model,
    serial,
)

digits = nnjax.data.load("digits")  # 8x8 images, flattened to 64 values, standardised
print("jax", jax.__version__, "| digits", digits.X_train.shape, "| devices", jax.devices())


def train(model, ds, *, epochs, state=None, batch_size=32, learning_rate=1e-2, seed=0):
    """Initialise ``model`` and fit it with Adam; return the fit result and test accuracy."""
    _, params, state0 = init_model(model, jax.random.key(seed), (-1, ds.X_train.shape[1]))
    res = nnjax.fit(
        model, params, ds.X_train, ds.y_train, state=state0 if state0 != () else None,
        optimizer="adam", learning_rate=learning_rate, loss="softmax_cross_entropy",
        epochs=epochs, batch_size=batch_size, key=jax.random.key(seed + 1),
    )  # fmt: skip
    test = nnjax.evaluate(model, res.params, ds.X_test, ds.y_test, state=res.state)
    return res, test["accuracy"]


# %% [markdown]
# ## A CNN on images
#
# Channels-last, as `lax.conv_general_dilated` with NHWC: the 64 values become an 8x8x1
# image, two 3x3 convolutions (`padding="SAME"` keeps 8x8) with ReLU, a 2x2 max pool
# (8x8 -> 4x4), then a linear read-out from the 4 * 4 * 16 = 256 features.

# %%
cnn = serial(
    Reshape((8, 8, 1)),
    Conv(16, 3, padding="SAME"), Activation("relu"),
    Conv(16, 3, padding="SAME"), Activation("relu"),
    MaxPool(2),
    Flatten(), Dense(10),
)  # fmt: skip
res, acc = train(cnn, digits, epochs=8)
print(f"CNN: test accuracy {acc:.3f}, compile {res.compile_time:.1f} s, run {res.run_time:.1f} s")
assert acc >= 0.95, acc

# %% [markdown]
# `fit` chose how to run the loop: on a CPU, XLA runs the convolutions of the gradient inside
# a `while` loop (what `lax.scan` compiles to) several times slower than the same convolutions
# in a straight-line program (the MNIST-1D CNN at batch 100 on 2 Intel Xeon cores,
# `benchmarks/results/cpu-2cores-2026-12-04.md`: 3.00 ms per step fused, 0.74 ms chunked,
# 4.1x), so for a model with convolutions `fit(execution="auto")` drives the compiled steps
# from the host in chunks of 8 instead of fusing all epochs into one scan. Both take the same
# batches and steps, so they differ only by float32 rounding, which Adam amplifies along the
# run: for the CNN above (2 Intel Xeon cores, jax 0.10.2) the fused run's step losses leave
# the chunked run's at step 4 (counting from 0); after the 352 steps its params differ by up
# to 0.031 (of values up to 0.72), its test loss is 0.091 against 0.087, and all 360 test
# predictions agree. `execution="fused"`, `"chunked"` or `"per_step"` picks one by hand
# (`nnjax.train.execution` explains the rule; the benchmark suite times the three side by
# side: `python -m benchmarks --only cnn gru`).

# %% [markdown]
# ## BatchNorm: a layer with state
#
# `BatchNorm` normalises with the batch statistics while training and with running averages
# at evaluation (momentum 0.1, PyTorch's convention: r <- 0.9 r + 0.1 b, with b the batch
# mean, or the batch variance times n / (n - 1)). Those averages are *state*, not params:
# `init_model` returns them, `fit(..., state=...)` threads them through training and returns
# them as `res.state`, and `evaluate` uses them. This model has one convolution (no bias:
# BatchNorm's offset replaces it) where the CNN above has two.

# %%
cnn_bn = serial(
    Reshape((8, 8, 1)),
    Conv(16, 3, padding="SAME", use_bias=False), BatchNorm(), Activation("relu"),
    MaxPool(2),
    Flatten(), Dense(10),
)  # fmt: skip
res_bn, acc_bn = train(cnn_bn, digits, epochs=8)
running = [s for s in res_bn.state if s != ()][0]
print(f"CNN + BatchNorm: test accuracy {acc_bn:.3f}; running mean of 16 channels, first 4:",
      np.round(np.asarray(running["mean"])[:4], 3))  # fmt: skip
assert acc_bn >= 0.95, acc_bn

# %% [markdown]
# ## A GRU on sequences
#
# MNIST-1D: 40-step 1-D signals, 10 classes. A bidirectional GRU (6 units each way) reads
# the sequence forwards and backwards under `lax.scan`; every step's output feeds the
# read-out. This is the paper's `GRUBase`, also available as the preset `nnjax.gru(10)`
# (and `nnjax.cnn(10)` is its CNN). Trained here on the first 2000 of the 4000 training
# examples for 10 epochs only: 200 steps at batch 100 against the recipe's 8000, hence a test
# accuracy (on the 1000 test examples) far below the full run's 89.9%. `nnjax.data.load`
# also standardises each of the 40 inputs, where the paper feeds the raw signals.

# %%
m1d = nnjax.data.load("mnist1d")
small = m1d._replace(X_train=m1d.X_train[:2000], y_train=m1d.y_train[:2000])
gru = serial(
    Reshape((40, 1)),
    Bidirectional(GRUCell(6), return_sequences=True),  # (B, 40, 12)
    Flatten(), Dense(10),
)  # fmt: skip
res_gru, acc_gru = train(gru, small, epochs=10, batch_size=100)
print(f"GRU: test accuracy {acc_gru:.3f} (chance 0.1), loss {res_gru.step_loss[0]:.2f} -> "
      f"{res_gru.step_loss[-1]:.2f}, compile {res_gru.compile_time:.1f} s")  # fmt: skip
assert acc_gru >= 0.3 and res_gru.step_loss[-1] < res_gru.step_loss[0], acc_gru
