"""The CNN and GRU of :mod:`benchmarks.nets` in PyTorch (eager), Equinox and Flax linen, each
with the framework's own layers, from nnjax's initial params (converted exactly):

* CNN: a convolution kernel is (width, in, out) in nnjax and Flax, (out, in, width) in
  PyTorch and Equinox; PyTorch and Equinox also flatten the last feature map channels-first,
  (25, 5), where nnjax flattens (5, 25), so the read-out's 125 input rows are permuted.
* GRU: PyTorch's ``nn.GRU`` has nnjax's params transposed (``weight_ih_l0 = W_i^T``, biases
  ``b_i``, ``b_h``; ``*_reverse`` the backward cell). Equinox's and Flax's ``GRUCell`` keep
  one bias for each of the r and z gates where PyTorch and nnjax keep two (b_i + b_h): the
  same function, so the same first loss, but Adam moves two biases by a full step each and
  one bias by one step, so their runs leave the others' after the first update. Their rows
  are checked on the first step's loss only.

Each in its fast idiom, as the MLP rows (:mod:`benchmarks.impl_frameworks`): PyTorch's Adam
with its fused kernel (``fused=True``), Equinox in its low-overhead loop
(:func:`~benchmarks.impl_frameworks.equinox_flat_step`), every JAX row's params on the
device before the clock starts.
"""

import numpy as np

from benchmarks import convert
from benchmarks.harness import Runner, n_cores
from benchmarks.impl_frameworks import equinox_flat_step
from benchmarks.impl_jax import device_data, step_loop

GATES = 3


def _cnn_read_out(W):
    """nnjax's read-out (125, 10), rows l * 25 + c, as channels-first rows c * 5 + l."""
    L = 5
    C = W.shape[0] // L
    return W.reshape(L, C, -1).transpose(1, 0, 2).reshape(L * C, -1)


def _cnn_read_out_back(W):
    L = 5
    C = W.shape[0] // L
    return W.reshape(C, L, -1).transpose(1, 0, 2).reshape(L * C, -1)


# ---- PyTorch --------------------------------------------------------------------------------


def _tensor(torch, a):
    """A writable, contiguous copy of ``a`` as a tensor (the params are read-only arrays)."""
    return torch.from_numpy(np.array(a, order="C"))


def _torch_model(p, torch):
    nn = torch.nn
    if p.name == "cnn":
        convs = [d for d in p.params0 if d][:-1]
        mods = nn.ModuleList(
            nn.Conv1d(d["W"].shape[1], d["W"].shape[2], d["W"].shape[0], stride=2, padding=1)
            for d in convs
        )
        dense = p.params0[-1]
        lin = nn.Linear(*dense["W"].shape)
        with torch.no_grad():
            for m, d in zip(mods, convs):
                m.weight.copy_(_tensor(torch, d["W"].transpose(2, 1, 0)))
                m.bias.copy_(_tensor(torch, d["b"]))
            lin.weight.copy_(_tensor(torch, _cnn_read_out(dense["W"]).T))
            lin.bias.copy_(_tensor(torch, dense["b"]))

        def forward(x):
            h = x.view(-1, 1, x.shape[-1])
            for m in mods:
                h = torch.relu(m(h))
            return lin(h.reshape(h.shape[0], -1))

        return nn.ModuleList([*mods, lin]), forward
    cells, dense = p.params0[1], p.params0[3]
    H = cells["forward"]["W_h"].shape[0]
    gru = nn.GRU(1, H, batch_first=True, bidirectional=True)
    lin = nn.Linear(*dense["W"].shape)
    with torch.no_grad():
        for suffix, d in (("", cells["forward"]), ("_reverse", cells["backward"])):
            for name, a in (("weight_ih", d["W_i"].T), ("weight_hh", d["W_h"].T),
                            ("bias_ih", d["b_i"]), ("bias_hh", d["b_h"])):  # fmt: skip
                getattr(gru, f"{name}_l0{suffix}").copy_(_tensor(torch, a))
        lin.weight.copy_(_tensor(torch, dense["W"].T))
        lin.bias.copy_(_tensor(torch, dense["b"]))

    def forward(x):
        out, _ = gru(x.view(*x.shape, 1))
        return lin(out.reshape(out.shape[0], -1))

    return nn.ModuleList([gru, lin]), forward


def _from_torch(p, module) -> list:
    t = lambda a: a.detach().numpy().copy()  # noqa: E731
    if p.name == "cnn":
        convs, lin = list(module)[:-1], list(module)[-1]
        out = [{"W": t(m.weight).transpose(2, 1, 0), "b": t(m.bias)} for m in convs]
        out.append({"W": _cnn_read_out_back(t(lin.weight).T), "b": t(lin.bias)})
        it = iter(out)
        return [{} if not d else next(it) for d in p.params0]
    gru, lin = list(module)
    cell = lambda s: {"W_i": t(getattr(gru, f"weight_ih_l0{s}")).T,  # noqa: E731
                      "W_h": t(getattr(gru, f"weight_hh_l0{s}")).T,
                      "b_h": t(getattr(gru, f"bias_hh_l0{s}")),
                      "b_i": t(getattr(gru, f"bias_ih_l0{s}"))}  # fmt: skip
    return [{}, {"backward": cell("_reverse"), "forward": cell("")}, {},
            {"W": t(lin.weight).T, "b": t(lin.bias)}]  # fmt: skip


def torch_eager(p, threads: int | None = None) -> Runner:
    """PyTorch eager on the CPU with ``threads`` intra-op threads (default: the cores, the
    suite's rule). One thread is the fair row on a loaded machine: a 2-thread OpenMP team
    whose threads wait for each other's cores slowed the CNN's step from ~5 to 30-700 ms
    at load 11 on 2 cores (measured)."""
    torch = convert.require("torch")
    threads = threads or n_cores()
    module, forward = _torch_model(p, torch)
    start = {k: v.clone() for k, v in module.state_dict().items()}
    X, Y = _tensor(torch, p.X), torch.from_numpy(p.y.astype(np.int64))
    idx = [torch.from_numpy(i.astype(np.int64)) for i in p.idx]
    live = {}

    def reset():
        module.load_state_dict(start)
        params = module.parameters()
        live["opt"] = torch.optim.Adam(params, lr=p.learning_rate, eps=1e-8, fused=True)

    def run():
        opt, losses, before = live["opt"], [], torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for i in idx:
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(forward(X[i]), Y[i])
                loss.backward()
                opt.step()
                losses.append(loss.detach())
        finally:
            torch.set_num_threads(before)
        return losses

    def result(losses):
        return _from_torch(p, module), np.array([float(v) for v in losses], np.float32)

    return Runner(reset, run, result)


# ---- Equinox and Flax linen -------------------------------------------------------------------


def _merged_gru_biases(d):
    """One bias per r/z gate (b_i + b_h) and the input bias of n; the n gate's hidden bias."""
    H = d["W_h"].shape[0]
    bias = d["b_i"].copy()
    bias[: 2 * H] += d["b_h"][: 2 * H]
    return bias, d["b_h"][2 * H :]


def _adam(p):
    import optax

    return optax.adam(p.learning_rate, b1=0.9, b2=0.999, eps=1e-8)


def _ce(logits, y):
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _equinox_model(p):
    eqx = convert.require("equinox")
    import jax
    import jax.numpy as jnp

    key = jax.random.key(0)
    set_ = lambda m, names, values: eqx.tree_at(  # noqa: E731
        lambda m: tuple(getattr(m, n) for n in names), m, tuple(map(jnp.asarray, values))
    )
    dense = p.params0[-1]
    if p.name == "cnn":
        convs = []
        for d in [d for d in p.params0 if d][:-1]:
            k, c_in, c_out = d["W"].shape
            m = eqx.nn.Conv1d(c_in, c_out, k, stride=2, padding=1, key=key)
            convs.append(set_(m, ("weight", "bias"), (d["W"].transpose(2, 1, 0), d["b"][:, None])))
        lin = eqx.nn.Linear(*dense["W"].shape, key=key)
        lin = set_(lin, ("weight", "bias"), (_cnn_read_out(dense["W"]).T, dense["b"]))

        def logits(model, x):  # one example (40,)
            *cs, ln = model
            h = x[None, :]
            for c in cs:
                h = jax.nn.relu(c(h))
            return ln(h.reshape(-1))

        return [*convs, lin], logits
    cells = []
    for name in ("forward", "backward"):
        d = p.params0[1][name]
        m = eqx.nn.GRUCell(1, d["W_h"].shape[0], key=key)
        bias, bias_n = _merged_gru_biases(d)
        cells.append(set_(m, ("weight_ih", "weight_hh", "bias", "bias_n"),
                          (d["W_i"].T, d["W_h"].T, bias, bias_n)))  # fmt: skip
    lin = eqx.nn.Linear(*dense["W"].shape, key=key)
    lin = set_(lin, ("weight", "bias"), (dense["W"].T, dense["b"]))

    def logits(model, x):
        fwd, bwd, ln = model
        h0 = jnp.zeros(fwd.hidden_size, x.dtype)
        run = lambda cell, rev: jax.lax.scan(  # noqa: E731
            lambda h, xt: (cell(xt[None], h),) * 2, h0, x, reverse=rev
        )[1]
        return ln(jnp.concatenate([run(fwd, False), run(bwd, True)], -1).reshape(-1))

    return [*cells, lin], logits


def equinox(p) -> Runner:
    eqx = convert.require("equinox")
    import jax

    model0, logits = _equinox_model(p)
    tx = _adam(p)
    state0, (X, Y, idx) = tx.init(eqx.filter(model0, eqx.is_array)), device_data(p)

    def step(model, state, X, Y, i):
        f = lambda m: _ce(jax.vmap(lambda x: logits(m, x))(X[i]), Y[i])  # noqa: E731
        loss, grads = eqx.filter_value_and_grad(f)(model)
        updates, state = tx.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    flat_step, carry0, to_model = equinox_flat_step(step, model0, state0)

    def result(out):
        leaves, losses = out
        model = to_model(leaves)
        losses = np.asarray([float(v) for v in losses], np.float32)
        if p.name != "cnn":  # merged GRU biases: no exact way back (module docstring)
            return None, losses
        t = lambda a: np.asarray(a)  # noqa: E731
        *convs, lin = model
        back = [{"W": t(c.weight).transpose(2, 1, 0), "b": t(c.bias)[:, 0]} for c in convs]
        back.append({"W": _cnn_read_out_back(t(lin.weight).T), "b": t(lin.bias)})
        it = iter(back)
        return [{} if not d else next(it) for d in p.params0], losses

    return Runner(lambda: None, lambda: step_loop(flat_step, carry0, X, Y, idx), result)


def _linen_model(p):
    import flax.linen as nn
    import jax.numpy as jnp

    dense = p.params0[-1]
    if p.name == "cnn":
        convs = [d for d in p.params0 if d][:-1]

        class CNN(nn.Module):
            @nn.compact
            def __call__(self, x):
                h = x[..., None]
                for d in convs:
                    k, _, c_out = d["W"].shape
                    h = nn.relu(nn.Conv(c_out, (k,), strides=(2,), padding=[(1, 1)])(h))
                return nn.Dense(dense["W"].shape[1])(h.reshape(h.shape[0], -1))

        params = {f"Conv_{i}": {"kernel": d["W"], "bias": d["b"]} for i, d in enumerate(convs)}
        params["Dense_0"] = {"kernel": dense["W"], "bias": dense["b"]}
        return CNN(), params
    cells = p.params0[1]
    H = cells["forward"]["W_h"].shape[0]

    class GRU(nn.Module):
        @nn.compact
        def __call__(self, x):
            rnn = nn.Bidirectional(nn.RNN(nn.GRUCell(H)), nn.RNN(nn.GRUCell(H)))
            h = rnn(x[..., None])
            return nn.Dense(dense["W"].shape[1])(h.reshape(h.shape[0], -1))

    params = {"Dense_0": {"kernel": dense["W"], "bias": dense["b"]}}
    for cell, name in (("GRUCell_0", "forward"), ("GRUCell_1", "backward")):
        d = cells[name]
        bias, bias_n = _merged_gru_biases(d)
        gates = {}
        for g, s in zip("rzn", range(GATES)):
            cols = slice(s * H, (s + 1) * H)
            gates[f"i{g}"] = {"kernel": d["W_i"][:, cols], "bias": bias[cols]}
            gates[f"h{g}"] = {"kernel": d["W_h"][:, cols]}
        gates["hn"]["bias"] = bias_n
        params[cell] = gates  # the compact module's cells, in the order they were built
    return GRU(), jax_tree(params, jnp.asarray)


def jax_tree(tree, f):
    import jax

    return jax.tree.map(f, tree)


def linen(p) -> Runner:
    import jax
    import optax

    module, params0 = _linen_model(p)
    params0 = jax_tree(params0, jax.numpy.asarray)  # on the device, as every row's params
    tx = _adam(p)
    state0, (X, Y, idx) = tx.init(params0), device_data(p)

    @jax.jit
    def step(params, state, X, Y, i):
        f = lambda q: _ce(module.apply({"params": q}, X[i]), Y[i])  # noqa: E731
        loss, g = jax.value_and_grad(f)(params)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, loss

    def result(out):
        params, losses = out
        full = p.name == "cnn"  # linen's CNN params are nnjax's layout exactly
        if not full:
            return None, np.asarray([float(v) for v in losses], np.float32)
        it = iter([(q["kernel"], q["bias"]) for q in params.values()])
        back = [{} if not d else dict(zip(("W", "b"), next(it))) for d in p.params0]
        return jax_tree(back, np.asarray), np.asarray([float(v) for v in losses], np.float32)

    return Runner(lambda: None, lambda: step_loop(step, (params0, state0), X, Y, idx), result)
