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
# # 05 · Spiking neurons and synchrony
#
# The seed article maps biology onto networks: neuron ↔ unit, action potential ↔ nonlinear
# activation, synchrony ↔ information transfer. This notebook runs each mapping as JAX code
# from `nnjax.brain`:
#
# 1. neurons that fire: discrete and continuous leaky integrate-and-fire, Hodgkin–Huxley;
# 2. their f–I curves, against the closed form where there is one;
# 3. the spike ↔ activation identity: an IF neuron's rate is `clip(relu(x)/θ, 0, 1)`, which
#    turns a trained ReLU MLP into a spiking network;
# 4. surrogate gradients, and a spiking MLP trained end to end on digits;
# 5. synchrony: coincidence detection, van Rossum distance, and the Kuramoto transition.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # the inline backend renders with Agg
import numpy as np

import nnjax
from nnjax.brain import convert, kuramoto, neurons, spiking, surrogate, synchrony
from nnjax.brain import hodgkin_huxley as hh

t_start = time.perf_counter()

# %% [markdown]
# ## 1. Voltage traces
#
# Discrete LIF: `u_t = β v_{t-1} + I_t`, spike `s_t = H(u_t − θ)`, reset by subtraction.
# Continuous LIF: `τ dV/dt = −(V − E_L) + R I`, integrated exactly, with a 2 ms refractory
# period. Hodgkin–Huxley: the 1952 squid axon, RK4 at dt = 0.025 ms, 10 µA/cm² step.

# %%
I_discrete = jnp.concatenate([jnp.zeros(10), jnp.full((90,), 0.25)])
s_d, v_d = neurons.lif(I_discrete, beta=0.9)
tr = neurons.lif_continuous(jnp.full((1000,), 2.0), dt=0.1)
I_hh = jnp.concatenate([jnp.zeros(400), jnp.full((3600,), 10.0)])
hh_tr = hh.simulate(I_hh, dt=0.025)

fig, ax = plt.subplots(1, 3, figsize=(13, 3))
ax[0].plot(v_d, label="v (after reset)")
ax[0].vlines(np.flatnonzero(np.asarray(s_d)), 1.0, 1.3, color="k", label="spikes")
ax[0].axhline(1.0, ls=":", c="gray")
ax[0].set(title="discrete LIF, β = 0.9", xlabel="step")
ax[0].legend(fontsize=7)
ax[1].plot(np.arange(1000) * 0.1, tr.v)
ax[1].set(title="continuous LIF, I = 2 nA", xlabel="t (ms)", ylabel="V (mV)")
ax[2].plot(np.arange(4000) * 0.025, hh_tr.V)
ax[2].set(title="Hodgkin–Huxley, 10 µA/cm²", xlabel="t (ms)", ylabel="V (mV)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. f–I curves
#
# The continuous LIF has the closed form
# `f = 1 / (t_ref + τ ln((RI + E_L − V_r)/(RI + E_L − θ)))`; spike times found exactly inside
# each step make the simulation agree to rounding. The HH model is class II: silent up to
# I ≈ 6.25 µA/cm², then it jumps to ≈ 50 Hz.

# %%
with jax.enable_x64(True):
    I_lif = jnp.linspace(0.0, 6.0, 61)
    f_sim = neurons.lif_fi_curve(I_lif, duration=300.0)
    f_th = neurons.lif_rate_theory(I_lif)
    I_h = jnp.linspace(0.0, 20.0, 41)
    fi = hh.fi_curve(I_h, duration=300.0, discard=100.0, dt=0.025)
    I_on = jnp.linspace(6.0, 6.5, 51)  # the onset, 0.01 µA/cm² apart
    fi_on = hh.fi_curve(I_on, duration=300.0, discard=100.0, dt=0.025)
    # back to NumPy inside the float64 block
    I_lif, f_sim, f_th, I_h, I_on = (np.asarray(a) for a in (I_lif, f_sim, f_th, I_h, I_on))
    fi, fi_on = jax.tree.map(np.asarray, (fi, fi_on))
print("LIF: max relative error", np.max(np.abs(f_sim - f_th) / np.maximum(f_th, 1)))
print("HH onset between", float(I_h[~fi.sustained].max()), "and", float(I_h[fi.sustained].min()))
print(
    f"HH onset, finer: between {I_on[~fi_on.sustained].max():.2f} and "
    f"{I_on[fi_on.sustained].min():.2f} µA/cm², first sustained rate "
    f"{fi_on.rate[fi_on.sustained][0]:.1f} Hz"
)

fig, ax = plt.subplots(1, 2, figsize=(10, 3))
ax[0].plot(I_lif, f_th, "k-", label="closed form")
ax[0].plot(I_lif, f_sim, "o", ms=3, label="simulated")
ax[0].set(title="LIF f–I", xlabel="I (nA)", ylabel="rate (Hz)")
ax[0].legend()
ax[1].plot(I_h, fi.rate, "o-", ms=3)
ax[1].set(title="Hodgkin–Huxley f–I (class II)", xlabel="I (µA/cm²)", ylabel="rate (Hz)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The spike ↔ activation identity
#
# An IF neuron with subtractive reset, driven by a constant `x`, fires at a rate within
# `1/T` of `clip(relu(x)/θ, 0, 1)` after `T` steps (here θ = 1; printed below: `T` times the
# largest gap on the grid, which is at most 1 up to float32 rounding).

# %%
x = jnp.linspace(-0.5, 1.5, 201)
fig, ax = plt.subplots(figsize=(5, 3))
for T in (5, 20, 200):
    ax.plot(x, neurons.if_rate(x, T), label=f"IF rate, T = {T}")
ax.plot(x, jnp.clip(jax.nn.relu(x), 0, 1), "k--", label="clip(relu(x), 0, 1)")
ax.set(xlabel="input x", ylabel="spikes / step")
ax.legend(fontsize=8)
plt.show()
for T in (5, 20, 200):
    gap = float(jnp.max(jnp.abs(neurons.if_rate(x, T) - jnp.clip(jax.nn.relu(x), 0, 1))))
    print(f"T = {T:3d}: max |IF rate - clip(relu(x), 0, 1)| = {gap:.7f}, times T: {gap * T:.6f}")

# %% [markdown]
# ## 4. Surrogate gradients
#
# The spike is a Heaviside step; its derivative is replaced, in the backward pass only, by a
# smooth surrogate. Below: `jax.grad` of `spike(x)` for each surrogate.

# %%
xs = jnp.linspace(-2, 2, 401)
fig, ax = plt.subplots(figsize=(6, 3))
for name in surrogate.SURROGATES:
    g = jax.vmap(jax.grad(lambda v, n=name: surrogate.spike(v, n, 2.0)))(xs)
    ax.plot(xs, g, label=name)
ax.set(title="surrogate derivatives (slope k = 2)", xlabel="v − θ", ylabel="ds/dv")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 5. A spiking MLP on digits, and a converted ANN
#
# `serial(RateEncoder(25), Dense(128), LIF, Dense(10), MembraneReadout)`: Bernoulli rate code
# over 25 steps, the mean membrane of non-spiking output units as logits (`readout="count"`
# would count output spikes instead), trained with `jax.grad` + Adam through `nnjax.fit`
# (the `dropout=True` flag hands the encoder a fresh key at every step).

# %%
ds = nnjax.data.load("digits", standardized=False)
snn = spiking.spiking_mlp([128, 10], n_steps=25, readout="membrane")
_, p0 = snn.init(jax.random.key(0), (-1, 64))
res = nnjax.fit(
    snn,
    p0,
    ds.X_train / 16,
    ds.y_train,
    learning_rate=2e-3,
    epochs=10,
    batch_size=64,
    dropout=True,
)
print("spiking MLP test accuracy:", nnjax.evaluate(snn, res.params, ds.X_test / 16, ds.y_test))

# hidden-layer raster for one test digit

x0 = jnp.asarray(ds.X_test[:1] / 16)
inp = spiking.rate_encode(jax.random.key(1), x0, 25)
hidden = spiking.LIF(0.9).apply({}, inp @ res.params[1]["W"] + res.params[1]["b"])
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
ax[0].imshow(np.asarray(inp[:, 0, :]).T, aspect="auto", cmap="Greys")
ax[0].set(title="input spikes (rate code)", xlabel="step", ylabel="pixel")
ax[1].imshow(np.asarray(hidden[:, 0, :]).T, aspect="auto", cmap="Greys")
ax[1].set(title="hidden LIF spikes", xlabel="step", ylabel="neuron")
plt.tight_layout()
plt.show()

# %% [markdown]
# ANN → SNN: train a ReLU MLP, normalise layer by layer (99.9th percentile of each layer's
# activations), run it as IF neurons. Accuracy approaches the ANN's as T grows.

# %%
dstd = nnjax.data.load("digits")
ann = nnjax.mlp([64, 32, 10])
_, pa = ann.init(jax.random.key(0), (-1, 64))
ann_params = nnjax.fit(ann, pa, dstd.X_train, dstd.y_train, epochs=20, batch_size=64).params
ann_acc = nnjax.evaluate(ann, ann_params, dstd.X_test, dstd.y_test)["accuracy"]
conv = convert.normalize(ann_params, dstd.X_train, percentile=99.9)
# one run of 200 steps; the decoded output after the first T steps is
# lambda_L (sum_{t<T} s_t W_L + T b_L) / T, so every T is read off the same spike trains
sim = convert.simulate(conv, dstd.X_test, 200, return_spikes=True)
cum = jnp.cumsum(sim.spikes[-1], axis=0)  # (200, B, hidden)
W_L, b_L = conv.layers[-1]["W"], conv.layers[-1]["b"]
steps = [5, 10, 20, 50, 100, 200]
snn_acc = [
    float(jnp.mean(jnp.argmax(cum[T - 1] @ W_L + T * b_L, -1) == dstd.y_test)) for T in steps
]
print("ANN", ann_acc, "SNN", dict(zip(steps, snn_acc)))
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogx(steps, snn_acc, "o-", label="converted SNN")
ax.axhline(ann_acc, c="k", ls="--", label="ANN")
ax.set(xlabel="time steps T", ylabel="test accuracy")
ax.legend()
plt.show()

# %% [markdown]
# ## 6. Synchrony
#
# **Coincidence detection.** 20 inputs each fire once per volley; a leaky neuron fires when
# the volley is synchronous, and less and less as the same spikes are jittered apart.
# **Van Rossum distance** between two single spikes δ apart: `D² = 1 − e^{−δ/τ}`.

# %%
jitters = jnp.array([0, 0.5, 1, 2, 3, 4, 6, 8])
volleys = jnp.arange(20, 400, 40)


def response(jitter):
    raster = synchrony.coincidence_inputs(jax.random.key(3), 20, 400, volleys, jitter)
    return synchrony.coincidence_response(raster, 1 / 15)


out = jax.vmap(response)(jitters)  # all jitters in one compiled call
deltas = jnp.linspace(0, 5, 51)
vr = jax.vmap(
    lambda d: synchrony.van_rossum_distance(jnp.array([0.0]), d[None], 1.0, squared=True)
)(deltas)
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
ax[0].plot(jitters, out, "o-")
ax[0].set(
    title="coincidence detection",
    xlabel="input jitter (sd, steps)",
    ylabel="output spikes (10 volleys)",
)
ax[1].plot(deltas, vr, label="van Rossum D²")
ax[1].plot(deltas, 1 - jnp.exp(-deltas), "k:", label="1 − e^{−δ/τ}")
ax[1].set(xlabel="δ / τ")
ax[1].legend()
plt.tight_layout()
plt.show()
print("output spikes at jitter", dict(zip(jitters.tolist(), np.asarray(out).tolist())))
print(
    "van Rossum: max |D² - (1 - e^{-δ/τ})| =", float(jnp.max(jnp.abs(vr - (1 - jnp.exp(-deltas)))))
)

# %% [markdown]
# **Kuramoto.** `dθ_i/dt = ω_i + (K/N) Σ_j sin(θ_j − θ_i)`, N = 4 000 Lorentzian frequencies
# (half-width γ = 1, quantile-spaced), all 11 values of K at once (a batch axis, broadcast
# through one simulation). Above
# `K_c = 2γ` the order parameter follows `r = sqrt(1 − 2γ/K)`; below it, r stays near 0.
# (Printed below: r averaged over the second half of the run, t = 21..40, against the
# formula. At K = K_c itself the run has not settled: relaxation is slowest there.)

# %%
N = 4_000
omega = kuramoto.lorentzian_frequencies(N)
Ks = jnp.linspace(0.5, 8.0, 11)[:, None]
kres = kuramoto.simulate(jnp.zeros((11, N)), omega, Ks, dt=0.2, n_steps=200, record_every=5)
r_stat = kres.r[20:].mean(axis=0)
K_fine = jnp.linspace(0.5, 8, 200)
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
ax[0].plot(Ks[:, 0], r_stat, "o", label="simulated (N = 4 000)")
ax[0].plot(K_fine, kuramoto.stationary_r(K_fine), "k-", label="sqrt(1 − 2γ/K)")
ax[0].set(xlabel="coupling K", ylabel="stationary r")
ax[0].legend()
t_rec = np.arange(1, 41) * 1.0
for i in (1, 3, 6, 10):
    ax[1].plot(t_rec, kres.r[:, i], label=f"K = {float(Ks[i, 0]):.1f}")
ax[1].set(xlabel="t", ylabel="r(t)")
ax[1].legend(fontsize=8)
plt.tight_layout()
plt.show()
r_theory = kuramoto.stationary_r(Ks[:, 0])
print("K        ", np.round(np.asarray(Ks[:, 0]), 2))
print("r, sim.  ", np.round(np.asarray(r_stat), 3))
print("r, theory", np.round(np.asarray(r_theory), 3))
above = np.asarray(Ks[:, 0]) > 2.0  # K_c = 2 gamma = 2
print("max |sim - theory| for K > K_c:", float(np.max(np.abs(r_stat - r_theory)[above])))

# %%
print(f"notebook ran in {time.perf_counter() - t_start:.1f} s")
