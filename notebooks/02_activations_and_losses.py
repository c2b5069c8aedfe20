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
# # 02 — Activations and losses
#
# An activation $f$ turns a neuron's pre-activation $z = w \cdot x + b$ into its output
# $a = f(z)$; backpropagation needs $f'(z)$. A loss $J(\text{prediction}, \text{target})$
# says how wrong the output is; its gradient is where backpropagation starts.
#
# This notebook plots every elementwise activation in `nnjax.activations` (all but `softmax`
# and `log_softmax`, which act on a whole vector) with its derivative, taken by `jax.grad`
# (and `jax.vmap` to apply it pointwise), checks the derivatives against the textbook
# formulas, takes softmax's Jacobian, and then shows why a sigmoid output should be trained
# with cross-entropy rather than mean squared error: MSE's gradient *saturates*.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # the notebook's inline backend renders figures with Agg
import numpy as np

import nnjax
from nnjax import activations as act
from nnjax import losses
from nnjax.reference import activations as ref_act  # the NumPy twin, derivatives by hand

print("jax", jax.__version__, "| nnjax", nnjax.__version__)

# %% [markdown]
# ## Every elementwise activation, and its derivative by `jax.grad`
#
# `jax.grad(f)` differentiates a scalar function; `jax.vmap` turns that scalar derivative into
# a function of the whole grid of points at once. (`softmax` and `log_softmax` act on a whole
# vector; softmax gets its own section below.)

# %%
ELEMENTWISE = [n for n in act.ACTIVATIONS if n not in ("softmax", "log_softmax")]
z = jnp.linspace(-4.0, 4.0, 800)  # an even count: the kink at z = 0 is not on the grid


def derivative(f):
    """f'(z) pointwise: the gradient of a scalar-to-scalar f, vmapped over a 1-D grid."""
    return jax.jit(jax.vmap(jax.grad(f)))


fig, axes = plt.subplots(2, 5, figsize=(15, 5.6), sharex=True)
df = {name: derivative(act.ACTIVATIONS[name])(z) for name in ELEMENTWISE}
for ax, name in zip(axes.flat, ELEMENTWISE):
    ax.plot(z, act.ACTIVATIONS[name](z), label="f(z)")
    ax.plot(z, df[name], "--", label="f'(z)  (jax.grad)")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_title(name)
    ax.set_ylim(-1.6, 4.1)
for ax in axes.flat[len(ELEMENTWISE) :]:
    ax.axis("off")
axes.flat[0].legend(loc="upper left", fontsize=8)
fig.suptitle("Activations f and their derivatives f' (by jax.grad + jax.vmap)")
fig.tight_layout()

# %% [markdown]
# ### The derivatives agree with the formulas
#
# | f | f'(z) |
# |---|---|
# | sigmoid $\sigma$ | $\sigma(z)(1-\sigma(z))$ (at most 1/4, at $z=0$) |
# | tanh | $1 - \tanh^2 z$ |
# | ReLU $\max(0,z)$ | the step $1[z>0]$ — **not** $\max(0,z)$ |
# | leaky ReLU | $1$ if $z>0$ else $0.01$ |
# | ELU | $1$ if $z>0$ else $e^z$ |
# | softplus $\log(1+e^z)$ | $\sigma(z)$ |
# | SiLU $z\sigma(z)$ | $\sigma(z)(1 + z(1-\sigma(z)))$ |
# | GELU $z\Phi(z)$ | $\Phi(z) + z\varphi(z)$ |
#
# The check below prints, per activation, `jax.grad` against this formula and, in its last
# column, against the hand-written derivative of the NumPy twin,
# `nnjax.reference.activations.ACTIVATIONS[name] = (f, df)`.
# The grid avoids $z = 0$ exactly, where the piecewise ones have a kink (there JAX picks
# $\text{relu}'(0) = 0$, the convention the NumPy twin follows too).

# %%
z_np = np.asarray(z, dtype=np.float32)
s = jax.nn.sigmoid
phi = jax.scipy.stats.norm
FORMULAS = {
    "identity": lambda z: jnp.ones_like(z),
    "sigmoid": lambda z: s(z) * (1 - s(z)),
    "tanh": lambda z: 1 - jnp.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(z.dtype),
    "leaky_relu": lambda z: jnp.where(z > 0, 1.0, 0.01),
    "elu": lambda z: jnp.where(z > 0, 1.0, jnp.exp(z)),
    "softplus": lambda z: s(z),
    "silu": lambda z: s(z) * (1 + z * (1 - s(z))),
    "gelu": lambda z: phi.cdf(z) + z * phi.pdf(z),
}
print(f"{'activation':<12} max |jax.grad - formula|   max |jax.grad - NumPy twin f'|")
for name in ELEMENTWISE:
    err = float(jnp.max(jnp.abs(df[name] - FORMULAS[name](z))))
    err_twin = float(np.max(np.abs(np.asarray(df[name]) - ref_act.ACTIVATIONS[name][1](z_np))))
    print(f"{name:<12} {err:.1e}                    {err_twin:.1e}")
    assert err < 1e-5 and err_twin < 1e-5, name

# %% [markdown]
# Two things the plots show:
#
# * **sigmoid and tanh saturate**: for $|z| \gtrsim 4$ their derivative is close to 0, so a
#   gradient passing back through a saturated unit nearly vanishes. Sigmoid's derivative is
#   never above 1/4, so every sigmoid layer multiplies the backpropagated signal by at most
#   1/4 (the weights then scale it again).
# * **ReLU does not saturate for $z > 0$**: its derivative is exactly 1 there and exactly 0
#   for $z < 0$ (a "dead" unit passes no gradient).

# %% [markdown]
# ## Softmax: a vector function, so a Jacobian
#
# $\text{softmax}(z)_i = e^{z_i} / \sum_j e^{z_j}$ couples all outputs; its derivative is the
# Jacobian $\partial s_i / \partial z_j = s_i(\delta_{ij} - s_j)$, i.e.
# $\text{diag}(s) - s s^\top$. `jax.jacobian` gives it directly.

# %%
zv = jnp.array([2.0, 1.0, 0.1, -1.0])
sm = act.softmax(zv)
J = jax.jit(jax.jacobian(act.softmax))(zv)
J_formula = jnp.diag(sm) - jnp.outer(sm, sm)
print("softmax(z) =", np.round(np.asarray(sm), 4), " sum =", float(sm.sum()))
print("max |jax.jacobian - (diag(s) - s s^T)| =", float(jnp.max(jnp.abs(J - J_formula))))
# each row of the Jacobian sums to 0: shifting every logit by the same amount changes nothing
print("row sums of the Jacobian:", np.round(np.asarray(J.sum(axis=1)), 7))

# %% [markdown]
# ## MSE vs cross-entropy for a sigmoid output: saturation
#
# One sigmoid output $p = \sigma(z)$ with target $t \in \{0, 1\}$. By the chain rule,
# with $\sigma'(z) = p(1-p)$:
#
# * **MSE**, $J = (p - t)^2$: $\;\dfrac{\partial J}{\partial z} = 2 (p - t)\, p (1 - p)$.
#   (The textbook $\tfrac12(p-t)^2$ gives $(p-t)\,p(1-p)$; same shape.)
# * **Cross-entropy**, $J = -[t \log p + (1 - t)\log(1 - p)]$:
#   $\;\dfrac{\partial J}{\partial z} = p - t$. The $p(1-p)$ factor cancels.
#
# When the output is **confidently wrong** (say $t = 1$ but $z = -8$, $p \approx 3\cdot10^{-4}$),
# the factor $p(1-p) \approx 0$ kills MSE's gradient exactly when the error is largest, while
# cross-entropy's gradient stays near $-1$. Below, both gradients are taken with `jax.grad`
# through nnjax's own losses (`losses.mse` on $\sigma(z)$, and
# `losses.binary_cross_entropy_with_logits` on $z$) and checked against the formulas.

# %%
t = 1.0
zs = jnp.linspace(-10.0, 10.0, 401)


def mse_of_logit(z):
    return losses.mse(jax.nn.sigmoid(z)[None], jnp.array([t]))


def ce_of_logit(z):
    return losses.binary_cross_entropy_with_logits(z[None], jnp.array([t]))


g_mse = derivative(mse_of_logit)(zs)
g_ce = derivative(ce_of_logit)(zs)
p = jax.nn.sigmoid(zs)
print("max |grad MSE - 2(p-t)p(1-p)| =", float(jnp.max(jnp.abs(g_mse - 2 * (p - t) * p * (1 - p)))))
print("max |grad CE  - (p-t)|        =", float(jnp.max(jnp.abs(g_ce - (p - t)))))

for z0 in (-8, -4, 0, 4):
    i = int(jnp.argmin(jnp.abs(zs - z0)))  # z0 lies on the grid
    g1, g2, p0 = float(g_mse[i]), float(g_ce[i]), float(p[i])
    print(f"z = {z0:+d}  p = {p0:.4f}   dMSE/dz = {g1:+.2e}   dCE/dz = {g2:+.2e}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
ax1.plot(zs, -g_mse, label="MSE:  -dJ/dz = 2(t-p) p(1-p)")
ax1.plot(zs, -g_ce, label="cross-entropy:  -dJ/dz = t - p")
ax1.axvspan(-10, -4, color="tab:red", alpha=0.08, label="confidently wrong")
ax1.set(xlabel="logit z (target t = 1)", ylabel="size of the push towards t", title="gradient")
ax1.legend(fontsize=8)
ax2.plot(zs, (p - t) ** 2, label="MSE  (p - t)^2")
ax2.plot(zs, -jnp.log(p), label="cross-entropy  -log p")
ax2.set(xlabel="logit z (target t = 1)", ylabel="loss", title="loss", ylim=(0, 5))
ax2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ### The same thing in training
#
# A single sigmoid neuron, one example $x = 1$, target $t = 1$, started confidently wrong at
# $w = -6$ (so $p = \sigma(-6) \approx 0.0025$), trained by full-batch gradient descent with
# `nnjax.fit`. The model is the same, $p = \sigma(w x + b)$; only the loss differs:
#
# * MSE: `serial(Dense(1), Activation("sigmoid"))` with `loss="mse"`;
# * cross-entropy: `Dense(1)` producing the logit, with `loss="binary_cross_entropy_with_logits"`.

# %%
X1, y1 = jnp.array([[1.0]]), jnp.array([1])
start = [{"W": jnp.array([[-6.0]]), "b": jnp.array([0.0])}]
sigmoid_net = nnjax.serial(nnjax.Dense(1), nnjax.Activation("sigmoid"))
logit_net = nnjax.serial(nnjax.Dense(1))
common = dict(optimizer="gd", learning_rate=0.5, epochs=400)

res_mse = nnjax.fit(sigmoid_net, start + [{}], X1, y1, loss="mse", **common)
res_ce = nnjax.fit(logit_net, start, X1, y1, loss="binary_cross_entropy_with_logits", **common)


@jax.jit
def p_of(params):
    return jax.nn.sigmoid(params[0]["W"][0, 0] + params[0]["b"][0])


print(f"after 400 steps: p (MSE) = {p_of(res_mse.params):.4f}   p (CE) = {p_of(res_ce.params):.4f}")

# p after every step: the same updates, one jitted train step at a time
opt = nnjax.get_optimizer("gd", 0.5)
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, net, loss, params, res in (
    ("MSE", sigmoid_net, "mse", start + [{}], res_mse),
    ("cross-entropy", logit_net, "binary_cross_entropy_with_logits", start, res_ce),
):
    step, state, ps = nnjax.make_train_step(net, loss, opt), opt.init(params), []
    for _ in range(400):
        ps.append(float(p_of(params)))
        params, state, _ = step(params, state, (X1, y1))
    assert abs(p_of(params) - p_of(res.params)) < 1e-5  # the fused fit took the same path
    ax.plot(ps, label=label)
    print(f"{label:>13}: p first above 0.5 after {int(np.argmax(np.array(ps) > 0.5))} steps")
ax.set(xlabel="gradient-descent step", ylabel="p = sigmoid(w x + b)", ylim=(0, 1))
ax.set_title("a confidently wrong start: MSE crawls, cross-entropy recovers")
ax.legend()
fig.tight_layout()

# %% [markdown]
# With MSE the neuron barely moves for about 200 steps (at $w = -6$ its gradient is
# $2(p-1)p(1-p) \approx -0.005$, about 1/200 of cross-entropy's $p - 1 \approx -1$) and only
# escapes once $p$ leaves the flat tail. With cross-entropy the logit's first steps are the
# largest (each adds $0.5\,(1-p)$ to both $w$ and $b$: $z$ rises by about 1 per step while
# $p \approx 0$), and $p$ passes 0.5 after 7 steps. This is why nnjax pairs a sigmoid (or
# softmax) output with cross-entropy computed **from logits**
# (`binary_cross_entropy_with_logits`, `softmax_cross_entropy`): the gradient is simply
# $p - t$, and it is stable for any $z$.
