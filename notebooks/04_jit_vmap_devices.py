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
# # 04 — What `jit`, scan-fusion and `vmap` buy, and where the code runs
#
# The same training problem four ways, timed on the machine that executes this notebook:
#
# 1. **the NumPy twin** (`nnjax.reference`): forward, backward and update written by hand,
#    one NumPy call after another — the baseline;
# 2. **JAX, no `jit`**: `jax.value_and_grad` + an Optax update, each primitive dispatched on
#    its own;
# 3. **JAX, a jitted step** (`nnjax.make_train_step`) called from a Python loop: one compiled
#    program per step;
# 4. **JAX, scan-fused**: every step of the run inside one compiled `lax.scan` (what
#    `nnjax.fit` does), so Python is out of the loop.
#
# Then `vmap`: training many models (here: one per learning rate) as one program.
#
# How the timings are taken: every function is compiled first and its compile time is
# reported apart; each timing is the **median of a few repeats**; JAX results are waited for
# with `block_until_ready` (JAX dispatches asynchronously); both sides compute in float32.
# The numbers below are from whatever machine ran the notebook last (its devices are printed
# first), and a shared, busy machine makes them noisy: read the ratios, not the digits.

# %%
import os
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import nnjax
import nnjax.reference.losses
from nnjax.reference.mlp import mlp as twin_mlp
from nnjax.reference.train import train as twin_train

print("jax", jax.__version__, "| backend:", jax.default_backend())


def median_time(fn, repeats=5):
    """Median wall time of fn() over ``repeats`` calls, waiting for JAX's async results."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# %% [markdown]
# ## Where does the code run?
#
# JAX places every array on a **device**. `jax.devices()` lists them; the first is the
# default. Without a GPU that is the CPU (XLA compiles for its cores): the run whose outputs
# are shown here had only the CPU (printed below); on a machine with a GPU and a CUDA build
# of jaxlib it would list `CudaDevice(id=0)`, ... and every `jnp` array and every jitted
# computation would go there, without a change to the code below.

# %%
print("devices:        ", jax.devices())
print("default backend:", jax.default_backend())
print("device count:   ", jax.device_count(), "| CPU cores visible:", os.cpu_count())
x = jnp.ones((3, 3))
print("a jnp array lives on:", x.devices())
print("its sharding:        ", x.sharding)

# %% [markdown]
# ## The problem
#
# An MLP 64 → 64 → 64 → 10 (ReLU) on scikit-learn's 8×8 digits (1437 training images),
# softmax cross-entropy, plain SGD with learning rate 0.1, mini-batches of 32, 100 steps.
# Small on purpose: small batches are where the per-step overhead of Python and of dispatch
# shows, and where compiling the whole loop pays most.
#
# Both sides start from the **same params** (the twin takes nnjax's params pytree as is)
# and see the **same batches**.

# %%
data = nnjax.data.load("digits")
X, y = data.X_train, data.y_train
SIZES, BATCH, STEPS, LR = [64, 64, 10], 32, 100, 0.1

model = nnjax.mlp(SIZES, "relu")  # 64 inputs inferred at init
_, params = model.init(jax.random.key(0), X.shape)
print(jax.tree.map(jnp.shape, params))

rng = np.random.default_rng(0)
batch_idx = np.stack([rng.choice(len(X), BATCH, replace=False) for _ in range(STEPS)])

# the NumPy twin: the same network, backprop by hand
twin_forward, twin_backward = twin_mlp(SIZES, "relu")
params_np = jax.tree.map(np.asarray, params)


def run_numpy(indices=batch_idx):
    kw = dict(loss="softmax_cross_entropy", optimizer="sgd", learning_rate=LR)
    return twin_train(twin_forward, twin_backward, params_np, X, y, batch_indices=indices, **kw)


params_twin, losses_twin = run_numpy()
t_numpy = median_time(run_numpy, repeats=3) / STEPS

# %% [markdown]
# ### JAX without `jit`, and with a jitted step
#
# `value_and_grad` of the loss is backpropagation done by JAX; without `jit` each of its
# primitives (a matmul, an add, a max, ...) is sent to the device on its own.
# `nnjax.make_train_step` wraps the same step in `jax.jit`: the first call traces and
# compiles it, later calls run the compiled program.

# %%
opt = optax.sgd(LR)
loss_fn = nnjax.make_loss_fn(model, "softmax_cross_entropy")
Xj, yj = jnp.asarray(X), jnp.asarray(y)
batches = [(Xj[i], yj[i]) for i in batch_idx]  # gathered up front: we time the steps only


def eager_step(params, opt_state, batch):
    value, grads = jax.value_and_grad(loss_fn)(params, batch)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


jit_step = nnjax.make_train_step(model, "softmax_cross_entropy", opt)


def run_steps(step, n_steps):
    p, s, losses = params, opt.init(params), []
    for batch in batches[:n_steps]:
        p, s, value = step(p, s, batch)
        losses.append(value)
    return p, jnp.stack(losses)


EAGER_STEPS = 5  # op-by-op is slow: time a few steps and scale
_, losses_eager = run_steps(eager_step, EAGER_STEPS)  # also warms the per-primitive caches
t_eager = median_time(lambda: run_steps(eager_step, EAGER_STEPS), repeats=3) / EAGER_STEPS

compile_step = median_time(lambda: run_steps(jit_step, 1), repeats=1)  # traces, compiles
params_jit, losses_jit = run_steps(jit_step, STEPS)
t_jit = median_time(lambda: run_steps(jit_step, STEPS)) / STEPS

# %% [markdown]
# ### Scan-fused: the whole run is one program
#
# `lax.scan` carries (params, optimizer state) through all 100 steps inside one compiled
# program; the batch indices go in as an array. This is the loop `nnjax.fit` compiles
# (plus its own shuffling, and epochs around it). `.lower(...).compile()` separates the
# compile from the run.


# %%
def train_fused(params, batch_idx, learning_rate):
    """STEPS SGD steps in one lax.scan: carry (params, state), one batch index row per step."""
    opt = optax.sgd(learning_rate)

    def step(carry, idx):
        params, opt_state = carry
        value, grads = jax.value_and_grad(loss_fn)(params, (Xj[idx], yj[idx]))
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), value

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), batch_idx)
    return params, losses


idx_j, lr = jnp.asarray(batch_idx), jnp.float32(LR)  # the learning rate is an input too
t0 = time.perf_counter()
fused = jax.jit(train_fused).lower(params, idx_j, lr).compile()
compile_fused = time.perf_counter() - t0
params_fused, losses_fused = fused(params, idx_j, lr)
t_fused = median_time(lambda: fused(params, idx_j, lr)) / STEPS

# %% [markdown]
# ### Same numbers?
#
# Speed means nothing if the answers differ: the four runs take the same 100 steps from the
# same start, so their loss curves must agree (to float32 rounding; the order of the sums
# differs between NumPy and XLA).

# %%
for name, losses in (
    (f"no jit (first {EAGER_STEPS})", losses_eager),
    ("jit step", losses_jit),
    ("scan-fused", losses_fused),
):
    d = np.max(np.abs(np.asarray(losses) - losses_twin[: len(losses)]))  # no jit: EAGER_STEPS
    print(f"max |loss - NumPy twin's loss|, {name:<18} {d:.1e}")
    assert d < 1e-4, name  # float32 rounding only
final = jax.tree.map(lambda a, b: np.max(np.abs(np.asarray(a) - b)), params_fused, params_twin)
print("max |params difference| after 100 steps:", f"{max(jax.tree.leaves(final)):.1e}")
print(f"loss: {losses_twin[0]:.3f} -> {losses_twin[-1]:.3f}")

# %% [markdown]
# ### The timings

# %%
rows = [
    ("NumPy twin (by hand)", t_numpy, None),
    ("JAX, no jit", t_eager, None),
    ("JAX, jitted step in a Python loop", t_jit, compile_step),
    ("JAX, scan-fused (one program)", t_fused, compile_fused),
]
print(f"{'':<36}{'per step':>12}{'vs NumPy':>11}{'compile (once)':>17}")
for name, t, c in rows:
    comp = f"{c:.2f} s" if c is not None else "-"
    print(f"{name:<36}{t * 1e6:>9.0f} us{t_numpy / t:>10.2f}x{comp:>17}")
print(f"\nbatch {BATCH}, {STEPS} steps, float32; medians of 3-5 repeats on {jax.devices()[0]}")

fig, ax = plt.subplots(figsize=(7, 2.8))
names = [r[0] for r in rows]
ax.barh(names[::-1], [r[1] * 1e6 for r in rows][::-1], color=["C2", "C1", "C3", "C0"])
ax.set(xscale="log", xlabel="time per training step (us, log scale; lower is better)")
ax.set_title("one SGD step of a 64-64-64-10 MLP, batch 32")
fig.tight_layout()

# %% [markdown]
# What the table says (the exact ratios depend on the machine and its load):
#
# * **No `jit` is the slowest by far**: each primitive is a separate dispatch with Python
#   overhead, far more than the tiny matmuls cost. Never train this way; it is for
#   debugging.
# * **A jitted step** is one call per step; here it already beats the NumPy twin (`vs NumPy`),
#   which also pays Python overhead for each of the many small NumPy calls of a step.
# * **Scan-fusion** removes the remaining per-step Python and dispatch cost (XLA fuses the
#   elementwise work inside a step in both jitted forms). The price is a compile (its time is
#   in the table), paid once per shape (that is why `nnjax.fit` drops the last partial batch:
#   one shape, one compile).
#
# How the ratios move with the batch size depends on the machine (its cores, its BLAS, its
# load): a larger batch adds arithmetic to each step, not per-step overhead. The twin and the
# fused program again, with batches of 1024:

# %%
BIG = 1024
idx_big = np.stack([rng.choice(len(X), BIG, replace=False) for _ in range(STEPS)])
idx_big_j = jnp.asarray(idx_big)
t_numpy_big = median_time(lambda: run_numpy(idx_big), repeats=3) / STEPS
fused_big = jax.jit(train_fused).lower(params, idx_big_j, lr).compile()
t_fused_big = median_time(lambda: fused_big(params, idx_big_j, lr)) / STEPS
for b, t_np, t_fu in ((BATCH, t_numpy, t_fused), (BIG, t_numpy_big, t_fused_big)):
    per_step = f"NumPy twin {t_np * 1e6:7.0f} us, scan-fused {t_fu * 1e6:6.0f} us per step"
    print(f"batch {b:>4}: {per_step}: {t_np / t_fu:5.1f}x")

# %% [markdown]
# Change `BATCH` above to try other sizes. On a GPU a small network is expected to pay
# mostly per-step launch costs, which is what fusion removes (not measured in this run).

# %% [markdown]
# ## `vmap`: many models as one program
#
# A learning-rate sweep trains the same network several times. `jax.vmap` turns
# `train_fused(params, batch_idx, learning_rate)` into a function of a **vector** of learning
# rates: one program trains all eight models at once, the per-model matmuls batched together.
# The NumPy twin has no such thing: eight models cost eight runs.

# %%
lrs = jnp.array([0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0])
K = len(lrs)
sweep = jax.vmap(train_fused, in_axes=(None, None, 0))  # params and batches shared
t0 = time.perf_counter()
sweep_c = jax.jit(sweep).lower(params, idx_j, lrs).compile()
compile_sweep = time.perf_counter() - t0
_, sweep_losses = sweep_c(params, idx_j, lrs)
t_sweep = median_time(lambda: sweep_c(params, idx_j, lrs))

# the same sweep as a Python loop over the compiled single-model run
t_loop = median_time(lambda: [fused(params, idx_j, lr) for lr in lrs], repeats=3)

# each vmapped model is the model trained alone, to float32 rounding
_, alone = fused(params, idx_j, lrs[3])
print("max |vmapped - alone| (lr = 0.1):", float(jnp.max(jnp.abs(sweep_losses[3] - alone))))
last10 = np.asarray(sweep_losses)[:, -10:].mean(axis=1)  # mean of the last 10 mini-batch losses
print("loss over the last 10 steps:", {f"{float(r):g}": f"{v:.3g}" for r, v in zip(lrs, last10)})

print(f"\n{K} models x {STEPS} steps{'':<14}{'total':>10}{'vs NumPy':>11}")
for name, t in (
    ("NumPy twin, 8 runs", K * t_numpy * STEPS),
    ("scan-fused, Python loop of 8", t_loop),
    ("scan-fused + vmap (one program)", t_sweep),
):
    print(f"{name:<34}{t * 1e3:>8.1f} ms{K * t_numpy * STEPS / t:>10.1f}x")
print(f"(vmapped sweep compiled once in {compile_sweep:.2f} s)")

fig, ax = plt.subplots(figsize=(6, 3.2))
for lr, curve in zip(lrs, np.asarray(sweep_losses)):
    ax.plot(curve, label=f"lr={float(lr):g}")
ax.set(xlabel="step", ylabel="training loss", yscale="log", ylim=(1e-2, 20))
ax.set_title("8 learning rates, one vmap (the largest diverges)")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()

# %% [markdown]
# Read the sweep's ratios with the machine in mind. The eight runs do the same arithmetic
# whether they are looped or vmapped; on a small CPU that arithmetic already keeps the cores
# busy, so the vmapped sweep gains little over the loop of compiled runs, if anything: which
# of the two rows above is ahead varies with the machine and its load (both are far ahead of
# NumPy). What `vmap` removes is the per-call overhead, and it widens each call: one small
# model leaves most of a GPU idle, and eight batched together give it eight times the work
# per launch — at this notebook's sizes still far too little to fill one (about 12 MFLOP
# per step for all eight, by XLA's cost analysis; a GPU was not measured here). Where the
# work per call is tiny, the difference can show even on a CPU — per-example gradients are
# the classic case (the table below, from the same machine).
#
# ### Per-example gradients
#
# The gradient of each example's own loss (for gradient-norm clipping, influence,
# curvature estimates, ...) is `vmap(grad(loss))` over the batch: one program, instead of one
# call (or one backward pass) per example.

# %%
N_EX = 128
xb, yb = Xj[:N_EX], yj[:N_EX]


def example_loss(params, x, t):
    """The loss of a single example x (64,) with label t."""
    return loss_fn(params, (x[None], t[None]))


@jax.jit
def grad_norms(grads):
    """Per-example gradient norms ||g_i|| from a params pytree with a leading example axis."""
    sq = [jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in jax.tree.leaves(grads)]
    return jnp.sqrt(sum(sq))


per_example = jax.jit(jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0)))
one_example = jax.jit(jax.grad(example_loss))
twin_loss_grad = nnjax.reference.losses.LOSSES["softmax_cross_entropy"][1]


def twin_per_example():
    grads = []
    for i in range(N_EX):
        out, cache = twin_forward(params_np, X[i : i + 1])
        grads.append(twin_backward(twin_loss_grad(out, y[i : i + 1]), cache)[1])
    return jax.tree.map(lambda *g: np.stack(g), *grads)


def jit_loop():
    # NumPy rows in: slicing a jax array 128 times would itself be 128 dispatches
    return [one_example(params, x, t) for x, t in zip(X[:N_EX], y[:N_EX])]


norms = grad_norms(per_example(params, xb, yb))
err = float(jnp.max(jnp.abs(norms - grad_norms(twin_per_example()))))
print(f"per-example gradient norms: {np.round(np.asarray(norms[:5]), 3)} ...")
print(f"max |vmap - NumPy twin| over {N_EX} norms: {err:.1e}")
assert err < 1e-4
jit_loop()  # compile the single-example gradient

t_twin_ex = median_time(twin_per_example, repeats=3)
t_loop_ex = median_time(jit_loop, repeats=3)
t_vmap_ex = median_time(lambda: per_example(params, xb, yb))
print(f"\n{N_EX} per-example gradients{'':<18}{'total':>10}{'vs NumPy':>11}")
for name, t in (
    ("NumPy twin, a backward pass each", t_twin_ex),
    ("jitted grad, a Python loop", t_loop_ex),
    ("vmap(grad), one program", t_vmap_ex),
):
    print(f"{name:<42}{t * 1e3:>8.2f} ms{t_twin_ex / t:>10.1f}x")

# %% [markdown]
# The same tool gives ensembles over seeds (`vmap` over init keys) and `nnjax.compare`'s
# optimizer × learning-rate × seed grids, each one compiled program.

# %% [markdown]
# ## Running this notebook on a GPU
#
# Nothing in the notebook names a device, so it runs unchanged on a GPU:
#
# 1. install a CUDA build of jaxlib next to nnjax: `pip install -U "jax[cuda13]"`
#    (`"jax[cuda12]"` for a CUDA 12 driver);
# 2. check: `python -c "import jax; print(jax.devices())"` prints `[CudaDevice(id=0)]`;
# 3. run it: `jupyter nbconvert --to notebook --execute notebooks/04_jit_vmap_devices.ipynb`
#    (or open it in Jupyter), or run the paired script `python notebooks/04_jit_vmap_devices.py`.
#
# What changes: `jax.devices()` lists the GPU; every `jnp` array and every jitted program
# lives there, while the NumPy twin still runs on the CPU, so the ratios and compile times
# change (not measured here: the outputs above come from the device printed first). To keep
# a GPU machine on the CPU, set `JAX_PLATFORMS=cpu` before starting Python. With several
# devices, `nnjax.fit(..., mesh=N)` splits each batch across N of them (data parallelism with
# `jax.sharding`; see `nnjax.parallel`); on one CPU you can try that with
# `XLA_FLAGS=--xla_force_host_platform_device_count=4`, set before JAX starts.
#
# To measure well on a GPU, use larger batches (a batch of 32 leaves most of a GPU idle),
# and keep `block_until_ready` in the timing: without it you time the dispatch, not the work.
