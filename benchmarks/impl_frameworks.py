"""The other implementations of the same MLP training run, each in its own idiom:

* ``numpy``: the NumPy twin, ``nnjax.reference.train.train`` (the oracle; it gathers its
  batches itself, as a NumPy loop would).
* ``nnx_jit``: Flax NNX, a step under ``nnx.jit`` that mutates the model and an
  ``nnx.Optimizer`` in place, called through ``nnx.cached_partial`` (Flax's performance
  guide: it caches the graph traversal that plain ``nnx.jit`` redoes on every call).
  ``nnx_split``: the same step as a pure function of the ``nnx.split`` state,
  ``nnx.merge`` inside a ``jax.jit`` (the guide's functional training loop).
* ``linen``: Flax linen, ``module.apply`` under ``jax.jit`` with Optax.
* ``equinox``: ``eqx.filter_jit`` and ``eqx.filter_value_and_grad``, the model called per
  example under ``jax.vmap`` (Equinox's convention), in Equinox's low-overhead training loop
  (:func:`equinox_flat_step`).
* ``torch``: PyTorch eager on the CPU with as many threads as JAX has cores, its optimizer's
  fused kernel (``fused=True``, one kernel for all params, as XLA fuses Optax's update).

All start from the same params (:mod:`nnjax.interop` for Flax, :mod:`benchmarks.convert`
for the others) and use Optax (or torch.optim) with the same hyperparameters.
"""

import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import convert
from benchmarks.harness import Runner, n_cores
from benchmarks.impl_jax import device_data, memory_of, step_loop
from benchmarks.problem import Problem, as_jax
from nnjax import interop
from nnjax.reference import mlp as ref_mlp
from nnjax.reference import train as ref_train


def _optax(p: Problem):
    if p.optimizer in ("sgd", "gd"):
        return optax.sgd(p.learning_rate)
    if p.optimizer == "adam":
        return optax.adam(p.learning_rate, b1=0.9, b2=0.999, eps=1e-8)
    raise ValueError(f"benchmarks: optimizer must be sgd or adam, got {p.optimizer!r}")


def _ce(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _np_tree(tree):
    return jax.tree.map(np.asarray, tree)


def _stack(losses):
    return np.asarray(jnp.stack(losses))


def numpy_twin(p: Problem) -> Runner:
    forward, backward = ref_mlp.mlp(p.sizes, p.activation)

    def train(idx):
        return ref_train.train(
            forward,
            backward,
            p.params0,
            p.X,
            p.y,
            loss="softmax_cross_entropy",
            optimizer=p.optimizer,
            learning_rate=p.learning_rate,
            batch_indices=idx,
        )

    def memory():  # NumPy reports its buffers to tracemalloc; two steps show a step's peak
        tracemalloc.start()
        try:
            train(p.idx[:2])
            return {"peak": tracemalloc.get_traced_memory()[1], "source": "tracemalloc, 2 steps"}
        finally:
            tracemalloc.stop()

    return Runner(lambda: None, lambda: train(p.idx), lambda out: out, memory)


def nnx_jit(p: Problem) -> Runner:
    from flax import nnx

    tx, (X, Y, idx), live = _optax(p), device_data(p), {}

    @nnx.jit
    def step(model, optimizer, X, Y, i):
        loss, grads = nnx.value_and_grad(lambda m: _ce(m(X[i]), Y[i]))(model)
        optimizer.update(model, grads)
        return loss

    def reset():
        live["model"] = model = interop.to_nnx(as_jax(p.params0), p.activation)
        live["opt"] = nnx.Optimizer(model, tx, wrt=nnx.Param)
        live["step"] = nnx.cached_partial(step, model, live["opt"])

    def run():
        model, cached_step = live["model"], live["step"]
        losses = [cached_step(X, Y, i) for i in idx]
        jax.block_until_ready(nnx.state(model))
        return model, losses

    def result(out):
        model, losses = out
        return _np_tree(interop.from_nnx(model)), _stack(losses)

    def memory():
        reset()
        return memory_of(step, live["model"], live["opt"], X, Y, idx[0])

    return Runner(reset, run, result, memory)


def nnx_split(p: Problem) -> Runner:
    from flax import nnx

    model = interop.to_nnx(as_jax(p.params0), p.activation)
    graphdef, state0 = nnx.split((model, nnx.Optimizer(model, _optax(p), wrt=nnx.Param)))
    X, Y, idx = device_data(p)

    @jax.jit
    def step(state, X, Y, i):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: _ce(m(X[i]), Y[i]))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    def run():
        return step_loop(step, (state0,), X, Y, idx)

    def result(out):
        state, losses = out
        model, _ = nnx.merge(graphdef, state)
        return _np_tree(interop.from_nnx(model)), _stack(losses)

    return Runner(lambda: None, run, result, lambda: memory_of(step, state0, X, Y, idx[0]))


def linen(p: Problem) -> Runner:
    module, variables = interop.to_linen(as_jax(p.params0), p.activation)
    tx, params0 = _optax(p), variables["params"]
    state0, (X, Y, idx) = tx.init(params0), device_data(p)

    @jax.jit
    def step(params, state, X, Y, i):
        loss, g = jax.value_and_grad(lambda q: _ce(module.apply({"params": q}, X[i]), Y[i]))(params)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, loss

    def run():
        return step_loop(step, (params0, state0), X, Y, idx)

    def result(out):
        params, losses = out
        return _np_tree(interop.from_linen(module, {"params": params})), _stack(losses)

    return Runner(lambda: None, run, result, lambda: memory_of(step, params0, state0, X, Y, idx[0]))


def equinox_flat_step(step, model0, state0, jit=None):
    """Equinox's low-overhead training loop (its docs, "Tricks"): ``step(model, state, X, Y,
    i) -> (model, state, loss)`` under ``eqx.filter_jit`` on the *leaves* of the model and
    the optimizer state, flattened once here, outside the clock, so that no call flattens
    and unflattens a Module at the jit boundary (nnjax's and the hand-written steps take
    plain pytrees). Returns ``(flat_step, (model_leaves0, state_leaves0), to_model)``;
    ``flat_step(model_leaves, state_leaves, X, Y, i) -> (model_leaves, state_leaves, loss)``.
    ``jit``: ``eqx.filter_jit`` by default; the leaves are all arrays, so ``jax.jit`` (which
    Equinox's docs allow) takes them too, without filter_jit's per-call partition of its
    arguments (~0.1 ms a call on the 2-core machine, measured on the 16-32-32-4 model).
    """
    eqx = convert.require("equinox")
    leaves0, (model_def, state_def) = zip(*map(jax.tree_util.tree_flatten, (model0, state0)))

    @(jit or eqx.filter_jit)
    def flat_step(model_leaves, state_leaves, X, Y, i):
        model = jax.tree_util.tree_unflatten(model_def, model_leaves)
        state = jax.tree_util.tree_unflatten(state_def, state_leaves)
        model, state, loss = step(model, state, X, Y, i)
        return jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(state), loss

    return flat_step, leaves0, lambda leaves: jax.tree_util.tree_unflatten(model_def, leaves)


def equinox(p: Problem, jit=None) -> Runner:
    """Equinox's step in its low-overhead loop under ``jit`` (see :func:`equinox_flat_step`)."""
    eqx = convert.require("equinox")
    model0 = convert.to_equinox(as_jax(p.params0))
    tx = _optax(p)
    state0, (X, Y, idx) = tx.init(eqx.filter(model0, eqx.is_array)), device_data(p)

    def step(model, state, X, Y, i):
        loss, grads = eqx.filter_value_and_grad(lambda m: _ce(jax.vmap(m)(X[i]), Y[i]))(model)
        updates, state = tx.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    flat_step, carry0, to_model = equinox_flat_step(step, model0, state0, jit)

    def run():
        return step_loop(flat_step, carry0, X, Y, idx)

    def result(out):
        leaves, losses = out
        return convert.from_equinox(to_model(leaves)), _stack(losses)

    def memory():
        try:
            return memory_of(flat_step, *carry0, X, Y, idx[0])
        except (AttributeError, TypeError):  # an Equinox without AOT lowering
            return None

    return Runner(lambda: None, run, result, memory)


def torch_eager(p: Problem) -> Runner:
    torch = convert.require("torch")
    torch.set_num_threads(n_cores())
    model = convert.to_torch(p.params0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    X, Y = torch.from_numpy(p.X), torch.from_numpy(p.y.astype(np.int64))
    idx = [torch.from_numpy(i.astype(np.int64)) for i in p.idx]
    loss_fn, live = torch.nn.functional.cross_entropy, {}

    def reset():
        model.load_state_dict(start)
        params = model.parameters()
        if p.optimizer in ("sgd", "gd"):
            live["opt"] = torch.optim.SGD(params, lr=p.learning_rate, fused=True)
        elif p.optimizer == "adam":
            live["opt"] = torch.optim.Adam(
                params, lr=p.learning_rate, betas=(0.9, 0.999), eps=1e-8, fused=True
            )
        else:
            raise ValueError(f"torch: optimizer must be sgd or adam, got {p.optimizer!r}")

    def run():
        opt, losses = live["opt"], []
        for i in idx:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[i]), Y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return losses

    def result(losses):
        return convert.from_torch(model), np.array([float(v) for v in losses], np.float32)

    return Runner(reset, run, result, None)
