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
# # 06 — Sleep and dreams as learning mechanisms
#
# The seed article calls sleep the brain's maintenance and dreams a recombination of memories.
# Here each idea becomes a measured experiment on real data:
#
# 1. **catastrophic forgetting**: a network that learns the digits two classes at a time
#    forgets every old class;
# 2. **Sleep Replay Consolidation** (Tadros et al. 2022): a spiking, unsupervised "sleep"
#    after each task brings part of the old classes back;
# 3. **synaptic downscaling**: scaling all synapses down changes nothing a bias-free ReLU
#    network decides — sleep's effect must come from *selective* changes;
# 4. **DeepDream**: what the network "dreams" for each class, by gradient ascent on the input;
# 5. **wake–sleep** (Hinton et al. 1995): a Helmholtz machine that learns a generative model
#    by dreaming, with its exact KL divergence to the data.
#
# The full study (5 seeds x 3 class orders, generative replay, joint training) is
# `nnjax sleep --dataset digits`; its committed output is in `docs/results/sleep-digits/`.
# This notebook uses small settings to run in well under a minute.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from nnjax.brain import continual as C
from nnjax.brain import dreams as D
from nnjax.brain import helmholtz as H
from nnjax.brain import sleep as S

t_start = time.perf_counter()

# %% [markdown]
# ## 1. Split digits, learned one task at a time
#
# Five tasks of two classes: (0, 1), (2, 3), ..., (8, 9). One bias-free ReLU MLP 64-128-128-10
# with a shared 10-way head, trained on each task in turn. After task t we score it on every
# test digit; `A[t, k]` is the accuracy on class k.

# %%
split = C.load_split("digits", 0)
cfg = C.TrainConfig()
keys = jax.random.split(jax.random.key(0), 2)
counts = C.class_counts(split.y_test, 10)
# one compiled program for both arms: a sleep with zero plasticity (inc = dec = 0) leaves the
# weights untouched, so that arm *is* plain sequential training
no_plasticity = S.CHOSEN._replace(inc=jnp.array(0.0), dec=jnp.array(0.0))
hps = jax.tree.map(lambda a, b: jnp.stack([a, b]), no_plasticity, S.CHOSEN)
run = C.make_run(split, cfg, S.make_src_method(split.image_shape))
# both arms x both seeds, vmapped and run by fit's driver (one compiled program, one task per call)
runs = C.run_seeds(run, C.task_arrays(split), keys, hps, over="hp")
params = runs.final[0]
seq_A, src_A = runs.A_after[0], runs.A_after[1]
seq = C.metrics(seq_A, split.task_classes, counts)
print(
    "no sleep, accuracy on the classes seen so far after each task:", seq["seen"].mean(0).round(3)
)
print("no sleep, final 10-class accuracy:", seq["final"], " old-task accuracy:", seq["old"])

# %% [markdown]
# Each task is learned perfectly, and each new task erases the old ones: after task 5 only
# classes 8 and 9 are ever predicted, so the 10-class accuracy is about 20% and the old-task
# accuracy 0.
#
# ## 2. Sleep Replay Consolidation
#
# After each task the network sleeps: it is run as a network of integrate-and-fire neurons
# (thresholds `beta`, layer scales from its max weights and activations), driven by Poisson
# spikes from masked patches of the mean input seen so far, and an STDP-like rule potentiates
# synapses whose presynaptic neuron fired just before a postsynaptic spike and depresses the
# others. No labels, no stored examples. The hyperparameters were chosen on a validation split
# (`nnjax.brain.sleep_search`), never on the test set. (The second arm of the run above.)

# %%
src = C.metrics(src_A, split.task_classes, counts)
print("SRC final 10-class accuracy:", np.round(src["final"], 3), " no sleep:", seq["final"])
print("SRC old-task accuracy:      ", np.round(src["old"], 3))

fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, A, title in ((axes[0], seq_A, "no sleep"), (axes[1], src_A, "SRC (after each sleep)")):
    im = ax.imshow(100 * A.mean(0), vmin=0, vmax=100, aspect="auto")
    ax.set(title=title, xlabel="class", ylabel="after task")
fig.colorbar(im, ax=axes, label="test accuracy (%)")
plt.show()

# %% [markdown]
# Sleep trades some accuracy on the newest task for a real recovery of old classes: the
# diagonal of the heat map spreads back to the left.
#
# ## 3. Synaptic downscaling
#
# The synaptic homeostasis hypothesis says sleep scales synapses down. For a bias-free ReLU
# network relu(c z) = c relu(z) (c > 0), so scaling layer l by c_l multiplies the output by
# prod c_l — and the argmax, the decision, does not move.

# %%
model = C.make_model(cfg)
params0 = jax.tree.map(lambda a: a[0, 0], params)  # no-sleep arm, seed 0
Ws = C.weights_of(params0)
down = C.with_weights(params0, S.downscale(Ws, [0.5, 0.7, 0.9]))
x = jnp.asarray(split.X_test[:200])
y, y_down = model.apply(params0, x), model.apply(down, x)
print("max |f(cW) - (prod c) f(W)|:", float(jnp.abs(y_down - 0.5 * 0.7 * 0.9 * y).max()))
print("predictions unchanged:", bool(jnp.all(y.argmax(-1) == y_down.argmax(-1))))

# %% [markdown]
# ## 4. DeepDream: what the network dreams for each class
#
# Gradient ascent on the input x (``jax.grad`` with respect to x) of
# J_c(x) = f_c(x) - (lambda/2)||x||^2, with 1-pixel jitter and a backtracking step so that
# J_c never decreases. We dream with the network after task 5 of the no-sleep run.

# %%
x0 = jnp.asarray(split.X_test.mean(0))
imgs, hist = D.dream_all_classes(model.apply, params0, x0, jax.random.key(1), 10,
                                 image_shape=(8, 8), steps=60, lr=0.05, l2=0.1)  # fmt: skip
fig, axes = plt.subplots(1, 11, figsize=(13, 1.6))
for c in range(10):
    axes[c].imshow(np.asarray(imgs[c]).reshape(8, 8), cmap="gray_r")
    axes[c].set(xticks=[], yticks=[], title=str(c))
axes[10].plot(np.asarray(hist).T, lw=0.8)
axes[10].set(title="J_c per step", xticks=[], yticks=[])
plt.show()
print("J never decreases:", bool(np.all(np.diff(np.asarray(hist), axis=1) >= 0)))

# %% [markdown]
# ## 5. Wake–sleep on the bars problem
#
# A Helmholtz machine (1 top unit, 6 hidden, 9 visible) learns 3x3 images of bars (one
# orientation, each bar on with probability 0.2). Wake: recognise real data and teach the
# generative weights; sleep: dream from the generative model and teach the recognition
# weights. With 2^7 hidden states we can enumerate p(v) and compute the exact KL.

# %%
pat, pr = H.bars_distribution(3, 0.2)
train = jax.jit(lambda k: H.train_wake_sleep(k, jnp.asarray(pat), jnp.asarray(pr), steps=6000,
                                            eval_every=250, lr=0.2)[1])  # fmt: skip
kl = np.asarray(train(jax.random.key(0)))
steps = np.arange(len(kl)) * 250
plt.figure(figsize=(5, 3))
plt.plot(steps, kl, lw=0.8, label="exact KL")
plt.plot(steps, H.smooth(kl, 4), "k", lw=2, label="smoothed (window 4)")
plt.xlabel("wake-sleep step")
plt.ylabel("KL(data || model) [bits]")
plt.legend()
plt.show()
print(f"KL: start {kl[0]:.2f} bits, end {kl[-1]:.3f} bits; smoothed curve monotone:",
      bool(np.all(np.diff(H.smooth(kl, 4)) <= 0)))  # fmt: skip

# %%
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
