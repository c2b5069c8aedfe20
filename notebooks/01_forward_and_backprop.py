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
# # 01 — Forward propagation and backpropagation
#
# From one neuron to a network, forward propagation as function composition, the seed
# article's logistic-regression example (its NumPy loop against nnjax), backpropagation
# written by hand next to `jax.grad`, and a pitfall: the derivative of ReLU.
#
# This notebook computes in **float64**, so that hand-written math and JAX can be compared
# to ~1e-15 (nnjax's default is float32).

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # the notebook's inline backend renders figures with Agg
import numpy as np

import nnjax
from nnjax.reference import activations as twin_act
from nnjax.reference import losses as twin_losses
from nnjax.reference import mlp as twin_mlp

nnjax.enable_x64()  # this notebook only: compare with NumPy in double precision
key = jax.random.key(0)

# %% [markdown]
# ## A neuron
#
# A neuron weighs its inputs, adds a bias and passes the sum through an activation:
#
# $$z = w \cdot x + b, \qquad a = f(z).$$
#
# In nnjax that is a `Dense(1)` layer (the affine part, params `{"W": (n_in, 1), "b": (1,)}`)
# followed by an `Activation`. A layer is a pair of pure functions: `init(key, input_shape)`
# returns the output shape and the params; `apply(params, x)` computes.

# %%
dense = nnjax.Dense(1)
# params set by hand, to read the numbers (dense.init(key, (-1, 3)) would draw them)
p = {"W": jnp.array([[0.5], [-1.0], [2.0]]), "b": jnp.array([0.1])}
x = jnp.array([[1.0, 2.0, 3.0]])  # a batch of one input with 3 features

z = dense.apply(p, x)
a = nnjax.Activation("sigmoid").apply({}, z)
print("z = w.x + b =", float(z[0, 0]), " (by hand:", 0.5 * 1 - 1.0 * 2 + 2.0 * 3 + 0.1, ")")
print("a = sigmoid(z) =", float(a[0, 0]))

# %% [markdown]
# ## A layer, and a batch
#
# A layer is many neurons reading the same input: stack their weight vectors as the columns
# of $W$ (shape `(n_in, n_out)`). A batch of $B$ inputs is the rows of $X$ `(B, n_in)`, and the
# whole layer on the whole batch is one matrix product:
#
# $$Z = X W + b \quad (B, n_\text{out}), \qquad A = f(Z).$$

# %%
layer = nnjax.Dense(4)
shape, p1 = layer.init(key, (-1, 3))
X = jax.random.normal(jax.random.key(1), (5, 3))  # 5 examples, 3 features
Z = layer.apply(p1, X)
print("W:", p1["W"].shape, " b:", p1["b"].shape, " X:", X.shape, " -> Z:", Z.shape)
# a column of Z is one neuron, a row one example: Z[i, j] = X[i] . W[:, j] + b[j]
print("neuron 2 on example 3:", float(Z[3, 2]), "=", float(X[3] @ p1["W"][:, 2] + p1["b"][2]))

# %% [markdown]
# ## Forward propagation is function composition
#
# A network applies layers in turn, $a^l = f(a^{l-1} W^l + b^l)$, so the forward pass is the
# composition $f_L \circ \cdots \circ f_1$. `nnjax.serial` composes layers;
# `nnjax.mlp(sizes, activation)` builds the usual stack. Both give a `Layer` again, whose
# params are a list with one entry per sublayer.

# %%
net = nnjax.serial(
    nnjax.Dense(4), nnjax.Activation("relu"), nnjax.Dense(2), nnjax.Activation("sigmoid")
)
_, params = net.init(key, (-1, 3))
print([jax.tree.map(jnp.shape, p) for p in params])

# the same forward pass written out as a composition of the four functions
W1, b1, W2, b2 = params[0]["W"], params[0]["b"], params[2]["W"], params[2]["b"]
by_hand = jax.nn.sigmoid(jnp.maximum(X @ W1 + b1, 0.0) @ W2 + b2)
print("serial == composition written out:", bool(jnp.allclose(net.apply(params, X), by_hand)))

# nnjax.mlp([4, 2], "relu", "sigmoid") is exactly this stack
mlp = nnjax.mlp([4, 2], "relu", output_activation="sigmoid")
print("mlp == serial on the same params:", bool(jnp.allclose(mlp.apply(params, X), by_hand)))

# %% [markdown]
# ## The seed example: logistic regression, NumPy loop vs nnjax
#
# The seed article trains logistic regression on six points, $x = 0,\dots,5$ with labels
# $0,0,0,1,1,1$, **without a bias**: $p = \sigma(x\theta)$, $\theta_0 = 0$, 1000 steps of
# full-batch gradient descent with learning rate 0.01 on the mean binary cross-entropy,
# whose gradient is $\nabla_\theta J = X^\top(\sigma(X\theta) - y)/m$.
#
# Below: the seed's NumPy loop, and the same model in nnjax — `logistic_regression` (no
# bias), `fit` with `optimizer="gd"` and the cross-entropy computed from logits (the whole
# 1000-step loop compiled into one program). They must agree to rounding.

# %%
X_toy, y_toy = nnjax.data.toy()  # X (6, 1) = 0..5, y = 0,0,0,1,1,1


def seed_numpy_loop(X, y, alpha=0.01, iterations=1000):
    """The seed's loop: theta -= alpha * X^T (sigmoid(X theta) - y) / m."""
    theta = np.zeros(X.shape[1])
    m = len(y)
    for _ in range(iterations):
        h = 1.0 / (1.0 + np.exp(-(X @ theta)))
        theta -= alpha * (X.T @ (h - y)) / m
    return theta


theta_numpy = seed_numpy_loop(X_toy, y_toy)

logreg = nnjax.logistic_regression(1, use_bias=False)
_, lr_params = logreg.init(key, X_toy.shape)
res = nnjax.fit(
    logreg,
    lr_params,
    X_toy,
    y_toy,
    optimizer="gd",
    learning_rate=0.01,
    loss="binary_cross_entropy_with_logits",
    epochs=1000,
)
theta_nnjax = float(res.params["W"][0, 0])
print(f"theta, NumPy loop: {float(theta_numpy[0])!r}")
print(f"theta, nnjax.fit:  {theta_nnjax!r}")
print(f"|difference| = {abs(theta_numpy[0] - theta_nnjax):.1e}")
assert abs(theta_numpy[0] - 0.39785243488382044) < 1e-12  # the seed example's value
assert abs(theta_nnjax - theta_numpy[0]) < 1e-12

# %% [markdown]
# The two agree. But look at what was learned: without a bias the boundary $x\theta = 0$ is
# pinned at $x = 0$, so $p(x{=}0) = \sigma(0) = 0.5$ whatever $\theta$ is, and every
# $x \ge 0$ gets $p \ge 0.5$ — the model can never say "class 0" on this data. Adding the bias
# (`use_bias=True`, the default) fixes it.

# %%
logreg_b = nnjax.logistic_regression(1)
_, pb = logreg_b.init(key, X_toy.shape)
res_b = nnjax.fit(
    logreg_b,
    pb,
    X_toy,
    y_toy,
    optimizer="gd",
    learning_rate=0.5,
    loss="binary_cross_entropy_with_logits",
    epochs=2000,
)
xs = np.linspace(-1, 6, 200)[:, None]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(xs, jax.nn.sigmoid(logreg.apply(res.params, xs)), label="seed: no bias, theta = 0.398")
ax.plot(xs, jax.nn.sigmoid(logreg_b.apply(res_b.params, xs)), label="with a bias")
ax.scatter(X_toy[:, 0], y_toy, color="k", zorder=3, label="data")
ax.axhline(0.5, color="0.7", lw=0.8, ls=":")
ax.set(xlabel="x", ylabel="p(y = 1 | x)", title="logistic regression on the seed's six points")
ax.legend(fontsize=8)
fig.tight_layout()
print(
    "predictions without a bias:",
    np.round(np.asarray(jax.nn.sigmoid(res.params["W"][0, 0] * X_toy[:, 0])), 3),
)
print(
    "predictions with a bias:   ",
    np.round(np.asarray(jax.nn.sigmoid(logreg_b.apply(res_b.params, X_toy)[:, 0])), 3),
)

# %% [markdown]
# ## Backpropagation by hand, next to `jax.grad`
#
# For $z^l = a^{l-1}W^l + b^l$, $a^l = f(z^l)$ and a loss $J$, write $\delta^l = \partial J /
# \partial z^l$. The chain rule, applied from the output back:
#
# $$\delta^L = \frac{\partial J}{\partial a^L} \odot g'(z^L), \qquad
# \delta^{l} = \big(\delta^{l+1} (W^{l+1})^\top\big) \odot f'(z^{l}),$$
# $$\frac{\partial J}{\partial W^l} = (a^{l-1})^\top \delta^l, \qquad
# \frac{\partial J}{\partial b^l} = \textstyle\sum_\text{batch} \delta^l.$$
#
# First a two-layer network done inline, each line one equation; then the NumPy twin
# (`nnjax.reference.mlp`, the same equations for any depth) and `jax.grad`, on the same
# params.

# %%
sizes = [5, 3]  # 4 inputs -> 5 hidden (tanh) -> 3 logits
model = nnjax.mlp(sizes, "tanh")
X4 = np.random.default_rng(0).normal(size=(8, 4))
y4 = np.random.default_rng(1).integers(0, 3, size=8)
_, params = model.init(key, X4.shape)
P = jax.tree.map(np.asarray, params)  # the same numbers as NumPy arrays


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# forward, keeping what the backward pass needs
z1 = X4 @ P[0]["W"] + P[0]["b"]
a1 = np.tanh(z1)
z2 = a1 @ P[2]["W"] + P[2]["b"]  # logits
# backward: softmax cross-entropy (mean over the batch) gives dJ/dz2 = (softmax(z2) - onehot)/B
delta2 = (softmax(z2) - np.eye(3)[y4]) / len(y4)
dW2, db2 = a1.T @ delta2, delta2.sum(axis=0)
delta1 = (delta2 @ P[2]["W"].T) * (1 - a1**2)  # tanh'(z) = 1 - tanh(z)^2
dW1, db1 = X4.T @ delta1, delta1.sum(axis=0)
by_hand = [{"W": dW1, "b": db1}, {}, {"W": dW2, "b": db2}]

# the NumPy twin: forward/backward pairs, dJ/dout from the twin's loss gradient
forward, backward = twin_mlp.mlp(sizes, "tanh")
loss_value, loss_grad = twin_losses.LOSSES["softmax_cross_entropy"]
out, cache = forward(P, X4)
_, twin_grads = backward(loss_grad(out, y4), cache)

# jax.grad of the loss as a function of the params
loss_fn = nnjax.make_loss_fn(model, "softmax_cross_entropy")
jax_grads = jax.jit(jax.grad(loss_fn))(params, (X4, y4))

print(f"{'param':<10}{'inline vs jax.grad':>20}{'twin vs jax.grad':>20}")
for i, name in [(0, "W1"), (0, "b1"), (2, "W2"), (2, "b2")]:
    k = name[0]
    e_hand = np.max(np.abs(by_hand[i][k] - jax_grads[i][k]))
    e_twin = np.max(np.abs(twin_grads[i][k] - jax_grads[i][k]))
    print(f"{name:<10}{e_hand:>20.1e}{e_twin:>20.1e}")
    assert max(e_hand, e_twin) < 1e-12, name
print("loss: twin", loss_value(out, y4), " nnjax", float(loss_fn(params, (X4, y4))))

# %% [markdown]
# Three routes, one answer, to float64 rounding. `jax.grad` runs the same chain rule
# (reverse-mode automatic differentiation) without anyone writing the backward pass; the
# NumPy twin keeps it written out, as the oracle nnjax's tests check against.

# %% [markdown]
# ## The ReLU-derivative pitfall
#
# The seed article gives the derivative of ReLU, $f(z) = \max(0, z)$, as $\max(0, z)$. That
# is ReLU itself. Its derivative is the **step**
#
# $$f'(z) = 1[z > 0] = \begin{cases}1 & z > 0\\ 0 & z < 0\end{cases}$$
#
# (undefined at the kink $z = 0$; JAX and the twin use 0 there). Check numerically, with a
# central finite difference $\big(f(z+h) - f(z-h)\big)/2h$:

# %%
zs = np.array([-2.0, -0.5, 0.3, 1.0, 2.0, 3.5])
h = 1e-6
finite_diff = (twin_act.relu(zs + h) - twin_act.relu(zs - h)) / (2 * h)
print(f"{'z':>6}{'finite diff':>13}{'1[z > 0]':>10}{'jax.grad':>10}{'max(0, z)':>11}")
jax_relu_grad = jax.jit(jax.vmap(jax.grad(jax.nn.relu)))(zs)
for zi, fd, step, g, wrong in zip(
    zs, finite_diff, twin_act.relu_derivative(zs), jax_relu_grad, twin_act.relu_derivative_wrong(zs)
):
    flag = "" if abs(wrong - fd) < 1e-6 else "  <- wrong"
    print(f"{zi:>6}{fd:>13.6f}{step:>10}{float(g):>10}{wrong:>11}{flag}")

# %% [markdown]
# $\max(0, z)$ agrees with the derivative only for $z \le 0$ (0, with the convention at the
# kink) and at $z = 1$; for every other $z > 0$ it is wrong.
# What does it do to a gradient? Backpropagate through a ReLU network once with the right
# derivative and once with the wrong one, and compare with `jax.grad`:

# %%
relu_net = nnjax.mlp([8, 1], "relu")
Xr = np.random.default_rng(2).normal(size=(32, 4)) * 2.0
yr = (Xr[:, 0] * Xr[:, 1] > 0).astype(float)
_, rparams = relu_net.init(key, Xr.shape)
R = jax.tree.map(np.asarray, rparams)
mse_value, mse_grad = twin_losses.LOSSES["mse"]


def backprop_grad(relu_derivative):
    """dJ/dW1 of a 4-8-1 ReLU net under MSE, with the given ReLU derivative."""
    z1 = Xr @ R[0]["W"] + R[0]["b"]
    out = np.maximum(z1, 0) @ R[2]["W"] + R[2]["b"]
    delta2 = mse_grad(out, yr)
    delta1 = (delta2 @ R[2]["W"].T) * relu_derivative(z1)
    return Xr.T @ delta1


g_jax = np.asarray(
    jax.jit(jax.grad(nnjax.make_loss_fn(relu_net, "mse")))(rparams, (Xr, yr))[0]["W"]
)
for label, d in (
    ("1[z > 0]", twin_act.relu_derivative),
    ("max(0, z)", twin_act.relu_derivative_wrong),
):
    g = backprop_grad(d)
    rel = np.linalg.norm(g - g_jax) / np.linalg.norm(g_jax)
    cos = float(np.sum(g * g_jax) / (np.linalg.norm(g) * np.linalg.norm(g_jax)))
    print(
        f"ReLU' = {label:<10} relative error of dJ/dW1: {rel:.1e}   cosine with jax.grad: {cos:.3f}"
    )

fig, ax = plt.subplots(figsize=(6, 3))
zz = np.linspace(-2, 3, 501)
ax.plot(zz, twin_act.relu(zz), lw=5, alpha=0.3, label="ReLU  max(0, z)")
ax.plot(zz, twin_act.relu_derivative(zz), label="derivative  1[z > 0]")
ax.plot(zz, twin_act.relu_derivative_wrong(zz), "--", label="the seed's 'derivative'  max(0, z)")
ax.set(xlabel="z", title="ReLU and its derivative")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# With the wrong derivative every active unit's backpropagated signal is scaled by its own
# pre-activation $z$ instead of passed through: the gradient points elsewhere and has the
# wrong size. Nothing crashes and the loss may still go down for a while, which is how such a
# slip survives; the check that catches it is a finite difference, as above — what
# `jax.test_util.check_grads` does in nnjax's tests.
