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
# # 03 — Optimizers: GD, SGD and Adam
#
# All three follow the gradient $g = \nabla_\theta J$; they differ in how much data each step
# sees and how they scale the step:
#
# * **GD** (full batch): $\theta \leftarrow \theta - \eta\, g$, with $g$ on all the training
#   data — one exact, expensive step per epoch;
# * **SGD** (mini-batch): the same update with $g$ on a random batch of $b$ examples — a
#   noisy but cheap estimate, $n/b$ steps per epoch;
# * **Adam**: running means of $g$ and $g^2$ (bias-corrected $\hat m$, $\hat s$), and
#   $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat s} + \epsilon)$ — a per-parameter
#   step size.
#
# First `nnjax.compare` races them on two moons and on digits: every optimizer × learning
# rate × seed, each optimizer's runs vmapped into one compiled program, the learning rate
# picked on a validation split. Then a loss surface with only two parameters, where each
# optimizer's path can be drawn.
#
# The settings are small, to keep the notebook quick to run (the `compile` and `run` columns
# below are its compare studies' wall times on the machine that ran it); `nnjax compare` on
# the command line runs the full study.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # the notebook's inline backend renders figures with Agg
import numpy as np
import optax

import nnjax
from nnjax.compare import compare

OPTIMIZERS = ("gd", "sgd", "adam")
COLORS = {"gd": "C0", "sgd": "C1", "adam": "C2", "momentum": "C3", "gd_large": "C4"}
# four learning rates each, half a decade apart, around each one's usual range
RATES = {
    "gd": (0.3, 1.0, 3.0, 10.0),
    "sgd": (0.03, 0.1, 0.3, 1.0),
    "adam": (0.001, 0.003, 0.01, 0.03),
}

# %% [markdown]
# ## Two moons
#
# A 2-16-2 MLP (ReLU), 20 epochs, mini-batches of 32 for SGD and Adam; GD takes the whole
# training set per step. Two seeds per setting.

# %%
moons = compare(
    "moons",
    optimizers=OPTIMIZERS,
    learning_rates=RATES,
    seeds=2,
    epochs=20,
    batch_size=32,
    hidden=(16,),
    plots=False,
)


def show_summary(c):
    """The chosen learning rate and the final metrics (mean over seeds) per optimizer."""
    print(
        f"{'optimizer':<10}{'best lr':>9}{'updates':>9}{'train loss':>12}{'test acc':>10}"
        f"{'compile':>9}{'run':>8}"
    )
    for name, s in c.summary.items():
        print(
            f"{name:<10}{s['best_lr']:>9g}{s['updates']:>9}{s['train_loss']['mean']:>12.4f}"
            f"{s['test_accuracy']['mean']:>10.3f}{s['compile_time_s']:>8.1f}s"
            f"{s['run_time_s']:>7.2f}s"
        )


def plot_curves(c, title):
    """Training loss against epochs (left) and final validation loss against the learning
    rate (right); medians over the seeds."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, runs in c.result.runs.items():
        b = c.summary[name]["best_index"]
        epoch_loss = np.median(runs.metrics["train_loss"][b], axis=0)  # (E,), whole fit set
        epochs = np.arange(1, len(epoch_loss) + 1)
        ax1.plot(
            epochs, epoch_loss, color=COLORS[name], label=f"{name} (lr {runs.learning_rates[b]:g})"
        )
        val = np.median(runs.metrics["val_loss"][:, :, -1], axis=1)  # (L,)
        ax2.plot(runs.learning_rates, val, "o-", color=COLORS[name], label=name)
        ax2.plot(runs.learning_rates[b], val[b], "o", ms=12, mfc="none", color=COLORS[name])
    ax1.set(
        xlabel="epoch",
        ylabel="training loss",
        yscale="log",
        title=f"{title}: loss at the chosen rate",
    )
    ax2.set(xlabel="learning rate", ylabel="final validation loss", xscale="log", yscale="log")
    ax2.set_title("learning-rate sensitivity (circled: chosen)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()


show_summary(moons)
plot_curves(moons, "two moons")

# %% [markdown]
# Per **epoch**, SGD and Adam are ahead of GD: with batches of 32 they make $n/b = 8$
# updates for each one of GD's (160 against 20 here). Per update GD is the most accurate,
# but each of its updates costs a pass over all the data.
#
# On the right, a chosen rate at the top of its grid (SGD's and Adam's here) says that with
# only 20 epochs the largest rate tried was still the best: a real study would extend the
# grid (`learning_rates=`) until the chosen rate sits inside it.
#
# The `compile` and `run` columns are wall times on the machine that executed the notebook:
# they vary from machine to machine, and with its load.

# %% [markdown]
# ## Digits
#
# scikit-learn's 8×8 digits (64 inputs, 10 classes), a 64-32-10 MLP, 10 epochs.

# %%
digits = compare(
    "digits",
    optimizers=OPTIMIZERS,
    learning_rates=RATES,
    seeds=2,
    epochs=10,
    batch_size=32,
    hidden=(32,),
    plots=False,
)
show_summary(digits)
plot_curves(digits, "digits")

# %% [markdown]
# The same picture on a harder problem: with ten epochs GD has made ten updates and is still
# far from the others. The right-hand panels show the other half of any optimizer
# comparison: each optimizer has its own good range of learning rates (the rates chosen
# here: Adam 0.03 on moons and 0.01 on digits, SGD 1 and 0.3, GD 3 and 1), so comparing them
# at one shared rate says little.
# `nnjax.compare` tunes each one on a validation split before reporting the test accuracy.

# %% [markdown]
# ## A loss surface with two parameters
#
# To *see* the paths, take a model with two parameters: logistic regression on one feature,
# $p = \sigma(w x + b)$, on 80 points from two overlapping classes centred at $x = 1$ and
# $x = 3$. The cross-entropy $J(w, b)$ is a long, narrow valley: because $x$ is not centred,
# $w$ and $b$ trade off against each other. Every path below starts at $(w, b) = (-1.5, 3)$
# and takes 80 Optax updates from `nnjax.get_optimizer`; the minimum itself comes from
# Newton's method (two parameters: a 2×2 Hessian).

# %%
rng = np.random.default_rng(0)
x1d = jnp.asarray(np.concatenate([rng.normal(1.0, 1.0, 40), rng.normal(3.0, 1.0, 40)]))
x1d = x1d.astype(jnp.float32)[:, None]  # (80, 1)
t1d = jnp.repeat(jnp.array([0, 1]), 40)
logreg = nnjax.logistic_regression(1)
bce = nnjax.make_loss_fn(logreg, "binary_cross_entropy_with_logits")


def loss_wb(wb, x, t):
    """J(w, b) for the 2-vector wb = (w, b)."""
    return bce({"W": wb[0].reshape(1, 1), "b": wb[1].reshape(1)}, (x, t))


# the surface on a grid, one vmapped program
W_grid, B_grid = np.meshgrid(np.linspace(-2, 5, 141), np.linspace(-10, 4, 141))
grid = jnp.stack([W_grid.ravel(), B_grid.ravel()], axis=1)
J_grid = jax.jit(jax.vmap(lambda wb: loss_wb(wb, x1d, t1d)))(grid).reshape(W_grid.shape)

START, STEPS = jnp.array([-1.5, 3.0]), 80
OPTS = {  # name: (label, optax transformation, mini-batch size or None for full batch)
    "gd": ("GD, lr 1", nnjax.get_optimizer("gd", 1.0), None),
    "gd_large": ("GD, lr 5", nnjax.get_optimizer("gd", 5.0), None),
    "sgd": ("SGD, lr 1, batch 8", nnjax.get_optimizer("sgd", 1.0), 8),
    "momentum": ("momentum 0.9, lr 0.3", nnjax.get_optimizer("momentum", 0.3), None),
    "adam": ("Adam, lr 0.3", nnjax.get_optimizer("adam", 0.3), None),
}


def optimizer_path(opt, batch_size, key):
    """The STEPS + 1 points (w, b) that ``opt`` visits from START, and J at each of them."""

    def step(carry, k):
        wb, state = carry
        if batch_size is None:
            g = jax.grad(loss_wb)(wb, x1d, t1d)
        else:
            idx = jax.random.choice(k, len(t1d), (batch_size,), replace=False)
            g = jax.grad(loss_wb)(wb, x1d[idx], t1d[idx])
        updates, state = opt.update(g, state, wb)
        wb = optax.apply_updates(wb, updates)
        return (wb, state), wb

    _, path = jax.lax.scan(step, (START, opt.init(START)), jax.random.split(key, STEPS))
    path = jnp.concatenate([START[None], path])
    return path, jax.vmap(lambda wb: loss_wb(wb, x1d, t1d))(path)


@jax.jit  # all five paths in one compiled program
def all_paths(key):
    return {name: optimizer_path(opt, bs, key) for name, (_, opt, bs) in OPTS.items()}


paths = jax.tree.map(np.asarray, all_paths(jax.random.key(0)))


def newton_minimum(x, t, steps=20):
    """The minimum of J(w, b) by Newton's method in NumPy: with A = [x, 1] (n, 2),
    p = sigmoid(A theta), gradient A^T (p - t) / n and Hessian A^T diag(p (1 - p)) A / n."""
    A = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
    t, theta = np.asarray(t, np.float64), np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-A @ theta))
        theta -= np.linalg.solve(A.T @ (A * (p * (1 - p))[:, None]), A.T @ (p - t))
    return theta


w_star, b_star = newton_minimum(x1d, t1d)
J_star = float(loss_wb(jnp.array([w_star, b_star], jnp.float32), x1d, t1d))
print(f"minimum (Newton's method): w = {w_star:.3f}, b = {b_star:.3f}, J = {J_star:.4f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
levels = J_star + np.geomspace(1e-3, float(J_grid.max()) - J_star, 22)
ax1.contour(W_grid, B_grid, J_grid, levels=levels, cmap="Greys_r", linewidths=0.6)
ax1.plot(w_star, b_star, "k*", ms=12, label="minimum")
for name, (label, _, _) in OPTS.items():
    path, losses = paths[name]
    ax1.plot(path[:, 0], path[:, 1], ".-", ms=2.5, lw=1, color=COLORS[name], label=label)
    ax1.plot(*path[-1], "o", color=COLORS[name], ms=6)
    ax2.plot(np.maximum(losses - J_star, 1e-7), color=COLORS[name], label=label)
    print(f"{label:<22} after {STEPS} steps: J - J* = {losses[-1] - J_star:.2e}")
steps_adam, w_mom = np.diff(paths["adam"][0], axis=0), paths["momentum"][0][:, 0]
print(
    f"Adam (lr 0.3): first step (w, b) {np.round(steps_adam[0], 4)}, largest |step| in w, b "
    f"{np.round(np.abs(steps_adam).max(axis=0), 4)}"
)
print(f"momentum: w reaches {w_mom.max():.2f} (w* = {w_star:.2f}), ends at {w_mom[-1]:.2f}")
ax1.set(xlabel="w", ylabel="b", title="cross-entropy J(w, b) and 80 steps of each optimizer")
ax1.set(xlim=(W_grid.min(), W_grid.max()), ylim=(B_grid.min(), B_grid.max()))
ax1.legend(fontsize=8, loc="lower left")
ax2.set(xlabel="step", ylabel="J - J*", yscale="log", title="distance to the minimum")
ax2.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# What the picture shows:
#
# * **GD, lr 1** slides down the steep wall into the valley, then crawls along its flat floor:
#   the step is $\eta g$, and $g$ is small there.
# * **GD, lr 5** is near the edge of stability for the steep direction: its first steps
#   bounce from wall to wall, the bouncing dies out, and the large step then carries it
#   along the floor — the fastest here. A little more (lr 8) and it is still bouncing after
#   80 steps (checked below). With GD the steep direction caps the learning rate and the flat
#   one pays for it.
# * **SGD** follows GD's route with noise: each batch of 8 has its own valley, and with a
#   constant learning rate the jitter never stops; it ends about as far off as GD at the
#   same rate.
# * **Momentum** accumulates the consistent along-valley gradient and overshoots: it runs
#   past the minimum down the valley (its $w$ goes beyond $w^*$, printed above) and after 80
#   steps is still swinging back (behind Adam).
# * **Adam** divides each coordinate's step by its own running gradient scale: its first
#   step is $\eta$ in $w$ and in $b$ alike (up to its $\epsilon$ and float32 rounding), and
#   no step is much longer than $\eta$, whatever the gradients' sizes (both printed above) —
#   a steady march down the valley without a bounce.
#
# Two of these, checked. GD is stable near the minimum only for $\eta < 2/\lambda_\max$,
# $\lambda_\max$ the largest eigenvalue of the Hessian of $J$ there; and the valley's shape
# is the ratio of the Hessian's eigenvalues. Below, the same for $x$ centred
# ($p = \sigma(w (x - \bar x) + b')$: the same models, with $b' = b + w \bar x$).


# %%
def gd_final(lr, x, wb):
    """J after STEPS full-batch GD steps from wb, and the last two steps in w."""
    opt = nnjax.get_optimizer("gd", lr)

    def step(carry, _):
        wb, state = carry
        updates, state = opt.update(jax.grad(loss_wb)(wb, x, t1d), state, wb)
        wb = optax.apply_updates(wb, updates)
        return (wb, state), wb

    _, path = jax.lax.scan(step, (wb, opt.init(wb)), length=STEPS)
    return float(loss_wb(path[-1], x, t1d)), np.diff(np.asarray(path[-3:, 0]))


x_mean = float(x1d.mean())
x_centred = x1d - x_mean
for label, x, shift in (("x as given", x1d, 0.0), ("x centred ", x_centred, x_mean)):
    wb_star = jnp.array([w_star, b_star + w_star * shift], jnp.float32)
    lam = np.linalg.eigvalsh(np.asarray(jax.hessian(loss_wb)(wb_star, x, t1d)))
    print(
        f"{label}: Hessian eigenvalues at the minimum {lam[0]:.4f}, {lam[1]:.4f} "
        f"(ratio {lam[1] / lam[0]:.1f}); 2 / lambda_max = {2 / lam[1]:.2f}"
    )
J8, dw8 = gd_final(8.0, x1d, START)
print(f"GD, lr 8, x as given: J - J* = {J8 - J_star:.2e} after {STEPS} steps, last w steps {dw8}")
start_c = START + jnp.array([0.0, START[0] * x_mean])  # the same starting model
J1c, _ = gd_final(1.0, x_centred, start_c)
print(
    f"GD, lr 1, x centred:  J - J* = {J1c - J_star:.2e} after {STEPS} steps "
    f"(x as given: {paths['gd'][1][-1] - J_star:.2e})"
)

# %% [markdown]
# At lr 8, above $2/\lambda_\max$, GD ends in a steady two-step oscillation across the
# valley. Centring $x$ (standardising the data, as `nnjax.data.load` does) rounds the valley
# and makes plain GD fast: the printed eigenvalue ratio and GD's distance to $J^*$ above.
#
# None of this ranks the optimizers in general: each needs its learning rate tuned (as
# `nnjax.compare` does above), and much of any comparison is a statement about the problem's
# conditioning.
