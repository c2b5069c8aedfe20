"""The JAX implementations of one MLP training run (softmax cross-entropy, ReLU, SGD or Adam).

* ``nnjax_step``: ``nnjax.make_train_step`` called once per batch from Python.
* ``nnjax_fused``: ``nnjax.train.make_epochs_fn`` under one ``jax.jit`` (what ``nnjax.fit``
  runs): the shuffle-gather, every step and the loss history in one compiled call.
* ``pure_jax``: the zero-overhead floor: plain ``jnp`` matmuls, ``jax.value_and_grad`` and a
  hand-written SGD/Adam update, jitted; no nnjax, no Optax.
* ``pure_jax_scan``: that hand-written step under one ``lax.scan`` over pre-batched data (the
  batches gathered before the clock starts): the reference for the fused loop, which
  shuffles and gathers inside its clock.

Every loop gathers its batches from the device-resident data inside the clock, as a
training loop does: a per-step loop passes each step its batch's row indices and the
gather ``X[idx]`` runs inside the jitted step; the fused loop draws its permutation and
gathers inside its one compiled call. Each runner returns only after ``block_until_ready``.
"""

import jax
import jax.numpy as jnp
import numpy as np

import nnjax
from benchmarks.harness import Runner
from benchmarks.problem import Problem, as_jax

LOSS = "softmax_cross_entropy"


def memory_of(jitted, *args) -> dict:
    """Bytes of the compiled program (XLA's ``memory_analysis``): arguments, outputs,
    temporaries; ``peak`` = arguments + outputs + temporaries - aliased."""
    compiled = jitted.lower(*args).compile()
    compiled = getattr(compiled, "compiled", compiled)  # Equinox wraps JAX's Compiled
    m = compiled.memory_analysis()
    if m is None:
        return {}
    out = {
        k: int(getattr(m, f"{k}_size_in_bytes"))
        for k in ("argument", "output", "temp", "alias", "generated_code")
    }
    out["peak"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def device_data(p: Problem):
    """(X, y) on the device and the row indices of every step's batch (int32 arrays)."""
    return jnp.asarray(p.X), jnp.asarray(p.y), [jnp.asarray(i, jnp.int32) for i in p.idx]


def step_loop(step, carry: tuple, X, y, idx):
    """The per-step loop every jitted implementation shares: ``*carry, loss = step(*carry,
    X, y, i)`` for each batch's row indices ``i``. Returns the first carried value (the
    trained params, model or state), after ``block_until_ready``, and the list of losses."""
    losses = []
    for i in idx:
        *carry, loss = step(*carry, X, y, i)
        losses.append(loss)
    return jax.block_until_ready(carry[0]), losses


def _np_result(out):
    params, losses = out
    return jax.tree.map(np.asarray, params), np.asarray(jnp.stack(losses))


def nnjax_step(p: Problem) -> Runner:
    model = nnjax.mlp(p.sizes, p.activation)
    opt = nnjax.get_optimizer(p.optimizer, p.learning_rate)
    train_step = nnjax.make_train_step(model, LOSS, opt)
    step = jax.jit(lambda params, state, X, y, i: train_step(params, state, (X[i], y[i])))
    params0 = as_jax(p.params0)
    state0 = opt.init(params0)
    X, y, idx = device_data(p)

    return Runner(
        lambda: None,
        lambda: step_loop(step, (params0, state0), X, y, idx),
        _np_result,
        lambda: memory_of(step, params0, state0, X, y, idx[0]),
    )


def nnjax_fused(p: Problem) -> Runner:
    model = nnjax.mlp(p.sizes, p.activation)
    opt = nnjax.get_optimizer(p.optimizer, p.learning_rate)
    run_fn, n_steps = nnjax.train.make_epochs_fn(
        model, LOSS, opt, n_examples=len(p.X), batch_size=p.batch_size
    )
    assert n_steps == p.steps_per_epoch
    fused = jax.jit(run_fn)
    params0 = as_jax(p.params0)
    carry = nnjax.train.Carry(params0, opt.init(params0))
    epochs = jnp.arange(p.epochs)
    args = (carry, epochs, p.key, jnp.asarray(p.X), jnp.asarray(p.y))

    def run():
        return jax.block_until_ready(fused(*args))

    def result(out):
        carry, outputs = out
        return jax.tree.map(np.asarray, carry.params), np.asarray(outputs.step_loss).reshape(-1)

    return Runner(lambda: None, run, result, lambda: memory_of(fused, *args))


# --- the hand-written floor ------------------------------------------------------------


def _forward(layers, x):
    """logits = a_L, a_l = relu(a_{l-1} W_l + b_l) for hidden layers, a_0 = x."""
    for i, (W, b) in enumerate(layers):
        if i:
            x = jax.nn.relu(x)
        x = x @ W + b
    return x


def _loss(layers, x, y):
    """J = -mean_b log softmax(z_b)[y_b]."""
    logp = jax.nn.log_softmax(_forward(layers, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _hand_optimizer(name: str, lr: float, b1=0.9, b2=0.999, eps=1e-8):
    """SGD: theta -= lr g. Adam (Optax's form): m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
    theta -= lr m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - b1^t), v_hat likewise."""
    if name in ("sgd", "gd"):
        return (lambda layers: ()), (
            lambda g, s, layers: (_tmap(lambda p, d: p - lr * d, layers, g), s)
        )
    if name != "adam":
        raise ValueError(f"pure_jax: optimizer must be sgd or adam, got {name!r}")

    def init(layers):
        zeros = _tmap(jnp.zeros_like, layers)
        return (zeros, zeros, jnp.zeros((), jnp.int32))

    def update(g, state, layers):
        m, v, t = state
        t = t + 1
        m = _tmap(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = _tmap(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = _tmap(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), layers, m, v)
        return new, (m, v, t)

    return init, update


def _tmap(f, *trees):
    return jax.tree.map(f, *trees)


def pure_jax(p: Problem) -> Runner:
    init, update = _hand_optimizer(p.optimizer, p.learning_rate)

    @jax.jit
    def step(layers, state, X, y, i):
        loss, g = jax.value_and_grad(_loss)(layers, X[i], y[i])
        layers, state = update(g, state, layers)
        return layers, state, loss

    layers0 = [(jnp.asarray(d["W"]), jnp.asarray(d["b"])) for d in p.params0 if d]
    state0 = init(layers0)
    X, y, idx = device_data(p)

    def run():
        return step_loop(step, (layers0, state0), X, y, idx)

    def result(out):
        layers, losses = out
        params = []
        for i, (W, b) in enumerate(layers):
            params += ([{}] if i else []) + [{"W": np.asarray(W), "b": np.asarray(b)}]
        return params, np.asarray(jnp.stack(losses))

    return Runner(lambda: None, run, result, lambda: memory_of(step, layers0, state0, X, y, idx[0]))


def scan_over_batches(loss, optimizer: str, learning_rate: float):
    """The hand-written reference of a fused loop: ``lax.scan`` of one step (``value_and_grad``
    of ``loss(layers, X, y)``, then the hand-written update) over pre-batched data, jitted.
    Returns ``(init, run_all)``: ``run_all(layers, state, Xb, yb) -> (layers, losses)``."""
    init, update = _hand_optimizer(optimizer, learning_rate)

    def step(carry, batch):
        layers, state = carry
        value, g = jax.value_and_grad(loss)(layers, *batch)
        return update(g, state, layers), value

    @jax.jit
    def run_all(layers, state, Xb, yb):
        (layers, _), losses = jax.lax.scan(step, (layers, state), (Xb, yb))
        return layers, losses

    return init, run_all


def prebatched(p):
    """``(Xb, yb)``: every batch of the problem's order (``p.idx``, (steps, batch)) gathered
    once, outside the clock."""
    rows = jnp.asarray(p.idx, jnp.int32)
    return jnp.asarray(p.X)[rows], jnp.asarray(p.y)[rows]


def pure_jax_scan(p: Problem) -> Runner:
    init, run_all = scan_over_batches(_loss, p.optimizer, p.learning_rate)
    layers0 = [(jnp.asarray(d["W"]), jnp.asarray(d["b"])) for d in p.params0 if d]
    state0 = init(layers0)
    Xb, yb = prebatched(p)

    def run():
        return jax.block_until_ready(run_all(layers0, state0, Xb, yb))

    def result(out):
        layers, losses = out
        params = []
        for i, (W, b) in enumerate(layers):
            params += ([{}] if i else []) + [{"W": np.asarray(W), "b": np.asarray(b)}]
        return params, np.asarray(losses)

    return Runner(lambda: None, run, result, lambda: memory_of(run_all, layers0, state0, Xb, yb))
