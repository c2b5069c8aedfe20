"""The CNN and GRU training workloads (``--only cnn gru``): the MNIST-1D paper's models, Adam
1e-2 at batch 100 (the paper's recipe), every implementation on the same batches.

Implementations (each from the same initial params, nnjax's init, converted):

* ``numpy``: the NumPy twin (``nnjax.verify.layers.twin_of`` the model's spec,
  ``nnjax.reference.train``): the oracle every row is checked against.
* ``nnjax_fused``, ``nnjax_chunked``, ``nnjax_per_step``: ``nnjax.fit``'s loop in each of
  its three execution modes, built exactly as ``fit`` builds it (``make_plan`` +
  ``fit_loop``) and run by its driver, compiled once. The mode ``execution="auto"`` picks is
  "nnjax fit" in the targets.
* ``pure_jax``: a hand-written step (``lax.conv_general_dilated`` / a GRU under
  ``lax.scan`` over time, ``jax.value_and_grad``, a hand-written Adam) jitted and called once
  per step, gathering its batch inside; ``pure_jax_scan``: that step under one ``lax.scan``
  over pre-batched data.
* ``torch``: PyTorch eager (``nn.Conv1d`` / ``nn.GRU``, ``torch.optim.Adam(fused=True)``) on
  the CPU, with as many threads as cores (the suite's rule, the row of the targets);
  ``torch_1thread``: the same with one thread (on a loaded machine the fairer row).
* ``equinox`` (``eqx.nn.Conv1d`` / ``eqx.nn.GRUCell``), ``linen`` (``nn.Conv`` /
  ``nn.GRUCell``): in :mod:`benchmarks.nets_frameworks`.

The batches are those ``fit`` draws (:func:`nnjax.train.run_batch_indices`). Time per step =
the median time of a run / its steps; "8000 steps" = 8000 x that, compile time apart (first
call minus the median).
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import nnjax
from benchmarks.harness import Runner
from benchmarks.impl_jax import (
    _hand_optimizer,
    device_data,
    prebatched,
    scan_over_batches,
    step_loop,
)
from nnjax.train import Program, drive, fit_loop, make_plan

LOSS = "softmax_cross_entropy"
RECIPE_STEPS = 8000
MODES = ("fused", "chunked", "per_step")


@dataclass
class NetProblem:
    """``name``: "cnn" or "gru"; the first ``n`` MNIST-1D training examples; ``epochs`` of
    n // batch_size steps. ``idx`` (steps, batch): fit's batches, step by step."""

    name: str
    X: np.ndarray
    y: np.ndarray
    batch_size: int
    epochs: int
    learning_rate: float = 1e-2
    optimizer: str = "adam"
    seed: int = 0
    params0: list = field(init=False)
    idx: np.ndarray = field(init=False)

    def __post_init__(self):
        _, params = self.model().init(jax.random.key(self.seed), (-1, self.X.shape[1]))
        self.params0 = jax.tree.map(np.asarray, params)
        self.idx = nnjax.train.run_batch_indices(
            self.key, self.epochs, len(self.X), self.batch_size
        )

    def model(self):
        return nnjax.cnn(10) if self.name == "cnn" else nnjax.gru(10)

    @property
    def key(self):
        return jax.random.key(self.seed + 1)

    @property
    def steps(self) -> int:
        return self.idx.shape[0]

    @property
    def label(self) -> str:
        return f"{self.name} B={self.batch_size}"


def problem(name: str, batch_size: int = 100, epochs: int = 2, max_examples=None) -> NetProblem:
    ds = nnjax.data.load("mnist1d")
    X, y = ds.X_train[:max_examples], ds.y_train[:max_examples]
    return NetProblem(name, X.astype(np.float32), y.astype(np.int32), batch_size, epochs)


def auto_mode(p: NetProblem) -> str:
    """The execution ``fit(..., execution="auto")`` picks for this problem."""
    return _plan(p, "auto").execution.mode


def _plan(p: NetProblem, execution: str):
    return make_plan(
        p.model(), jax.tree.map(jnp.asarray, p.params0), p.X, p.y, state=None,
        optimizer=p.optimizer, learning_rate=p.learning_rate, loss=LOSS, epochs=p.epochs,
        batch_size=p.batch_size, key=p.key, eval_data=None, opt_state=None, dropout=False,
        check_finite=True, epochs_per_call=None, on_epochs=None, mesh=None,
        checkpoint_dir=None, checkpoint_every=None, keep=None, resume=False, stop=None,
        override=None, divergence_guard=None, max_chunk_seconds=None, early_stopping=None,
        execution=execution,
    )  # fmt: skip


def nnjax_fit(p: NetProblem, mode: str) -> Runner:
    """fit's loop in execution ``mode``, as ``fit`` builds it, compiled once."""
    plan = _plan(p, mode)
    program = Program(fit_loop(plan))
    data = (plan.key, plan.X, plan.y, plan.evals)

    def run():
        driven = drive(program, plan.carry, data, total=p.epochs)
        jax.block_until_ready(driven.carry)
        return driven

    def result(driven):
        return jax.tree.map(np.asarray, driven.carry.params), driven.outputs.step_loss.reshape(-1)

    return Runner(lambda: None, run, result)


# ---- the hand-written models ------------------------------------------------------------


def cnn_logits(layers, x):
    """Three convolutions (stride 2, padding 1) with ReLU, flatten, a linear read-out."""
    h = x.reshape(x.shape[0], -1, 1)
    for W, b in layers[:-1]:
        dims = ("NWC", "WIO", "NWC")
        h = jax.nn.relu(
            jax.lax.conv_general_dilated(h, W, (2,), [(1, 1)], dimension_numbers=dims) + b
        )
    W, b = layers[-1]
    return h.reshape(h.shape[0], -1) @ W + b


def _gru_direction(cell, xs, reverse: bool):
    """Hidden states (T, B, H) of one direction, PyTorch's gates r, z, n (reset after)."""
    W_i, W_h, b_i, b_h = cell

    def step(h, x):
        a_r, a_z, a_n = jnp.split(x @ W_i + b_i, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ W_h + b_h, 3, axis=-1)
        r, z = jax.nn.sigmoid(a_r + h_r), jax.nn.sigmoid(a_z + h_z)
        h = (1 - z) * jnp.tanh(a_n + r * h_n) + z * h
        return h, h

    h0 = jnp.zeros((xs.shape[1], W_h.shape[0]), xs.dtype)
    return jax.lax.scan(step, h0, xs, reverse=reverse)[1]


def gru_logits(layers, x):
    """A bidirectional GRU over the 40 time steps, every step's [forward, backward] output
    flattened into a linear read-out."""
    fwd, bwd, (W, b) = layers
    xs = jnp.swapaxes(x, 0, 1)[..., None]  # (T, B, 1)
    h = jnp.concatenate([_gru_direction(fwd, xs, False), _gru_direction(bwd, xs, True)], -1)
    return jnp.swapaxes(h, 0, 1).reshape(x.shape[0], -1) @ W + b


def hand_layers(p: NetProblem):
    """nnjax's params as the hand-written models take them (the same arrays)."""
    params = jax.tree.map(jnp.asarray, p.params0)
    if p.name == "cnn":
        return [(d["W"], d["b"]) for d in params if d]
    cells = [
        tuple(params[1][k][n] for n in ("W_i", "W_h", "b_i", "b_h"))
        for k in ("forward", "backward")
    ]
    return [*cells, (params[3]["W"], params[3]["b"])]


def from_hand(p: NetProblem, layers) -> list:
    """The hand-written params back in nnjax's layout (for the check)."""
    layers = jax.tree.map(np.asarray, layers)
    if p.name == "cnn":
        it = iter(layers)
        return [{} if not d else dict(zip(("W", "b"), next(it))) for d in p.params0]
    names = ("W_i", "W_h", "b_i", "b_h")
    bi = {k: dict(zip(names, c)) for k, c in zip(("forward", "backward"), layers[:2])}
    return [{}, bi, {}, dict(zip(("W", "b"), layers[2]))]


def _hand_loss(logits_fn):
    def loss(layers, x, y):
        logp = jax.nn.log_softmax(logits_fn(layers, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    return loss


def pure_jax(p: NetProblem) -> Runner:
    loss = _hand_loss(cnn_logits if p.name == "cnn" else gru_logits)
    init, update = _hand_optimizer(p.optimizer, p.learning_rate)

    @jax.jit
    def step(layers, state, X, y, i):
        value, g = jax.value_and_grad(loss)(layers, X[i], y[i])
        layers, state = update(g, state, layers)
        return layers, state, value

    layers0 = hand_layers(p)
    state0 = init(layers0)
    X, y, idx = device_data(p)

    def result(out):
        layers, losses = out
        return from_hand(p, layers), np.asarray(jnp.stack(losses))

    return Runner(lambda: None, lambda: step_loop(step, (layers0, state0), X, y, idx), result)


def pure_jax_scan(p: NetProblem) -> Runner:
    loss = _hand_loss(cnn_logits if p.name == "cnn" else gru_logits)
    init, run_all = scan_over_batches(loss, p.optimizer, p.learning_rate)
    layers0 = hand_layers(p)
    state0 = init(layers0)
    Xb, yb = prebatched(p)

    def result(out):
        layers, losses = out
        return from_hand(p, layers), np.asarray(losses)

    return Runner(
        lambda: None, lambda: jax.block_until_ready(run_all(layers0, state0, Xb, yb)), result
    )


def numpy_twin(p: NetProblem) -> Runner:
    from nnjax.reference import train as ref_train
    from nnjax.verify.layers import twin_of

    pair = twin_of(p.model().spec)

    def run():
        return ref_train.train(pair.forward, pair.backward, p.params0, p.X, p.y, loss=LOSS,
                               optimizer=p.optimizer, learning_rate=p.learning_rate,
                               batch_indices=p.idx)  # fmt: skip

    return Runner(lambda: None, run, lambda out: out)


# ---- the workload ---------------------------------------------------------------------------


def impls() -> dict:
    """name -> (label, factory(problem) -> Runner); the twin first: it is the oracle."""
    from benchmarks import nets_frameworks as fw

    out = {"numpy": ("NumPy twin (its checked call alone: no warm-up, no rounds)", numpy_twin)}
    for mode in MODES:
        out[f"nnjax_{mode}"] = (f"nnjax fit, {mode}", lambda p, m=mode: nnjax_fit(p, m))
    out.update(
        pure_jax=("hand-written JAX step (jit per step)", pure_jax),
        pure_jax_scan=("hand-written JAX scan, pre-batched", pure_jax_scan),
        torch=("PyTorch eager (CPU)", fw.torch_eager),
        torch_1thread=("PyTorch eager (CPU), 1 thread", lambda p: fw.torch_eager(p, 1)),
        equinox=("Equinox (filter_jit)", fw.equinox),
        linen=("Flax linen (jit per step)", fw.linen),
    )
    return out


FIRST_STEP_TOL = 1e-5  # float32: |J_0 - J_0(nnjax)| <= tol (1 + |J_0|), every row
# Adam at lr 1e-2 amplifies float32 rounding ~10x every 3-4 steps (the CNN, measured: the
# hand-written JAX step vs the twin 6e-8 at step 0, 3e-5 at step 8, 6e-3 at step 32, while
# PyTorch, which rounds the convolution like the twin, stays within 4e-6): against the twin a
# run is held to the loss check on its first CHECK_STEPS steps (and to the whole check when
# it has no more); fit's loops are held to the whole check against the hand-written JAX step.
CHECK_STEPS = 8

QUICK_IMPLS = ("numpy", "auto", "torch")  # "auto": the mode fit picks; one compile each


def _check(p: NetProblem, name: str, out, twin, hand) -> dict:
    """``out`` = (params or None, losses) against the twin's, and fit's against ``hand``
    (the hand-written JAX step's); the errors found, or :class:`Mismatch`."""
    from benchmarks.check import LOSS_TOL, Mismatch, compare

    params, losses = out
    if len(losses) != p.steps:  # a row that ran fewer steps would pass and time faster
        raise Mismatch(f"{p.label} {name}: {len(losses)} losses for {p.steps} steps")
    k = min(CHECK_STEPS, p.steps) if params is not None else 1  # None: merged GRU biases
    ref = np.asarray(twin[1][:k], np.float64)
    err = np.abs(np.asarray(losses[:k], np.float64) - ref) / (1 + np.abs(ref))
    if not err.max() <= LOSS_TOL:  # a nan loss fails too (nan > tol is False)
        s = int(np.argmax(err))
        raise Mismatch(
            f"{p.label} {name}: loss at step {s} is {losses[s]:.7g}, the NumPy twin's "
            f"{ref[s]:.7g} (relative error {err[s]:.2g} > {LOSS_TOL:g})"
        )
    found = {"max_loss_rel_err": float(err.max()), "steps_checked": k}
    if params is not None and p.steps <= CHECK_STEPS:
        found["whole_run_vs_twin"] = compare(f"{p.label} {name}", params, losses, *twin, p.params0)
    elif params is not None and name.startswith("nnjax_") and hand is not None:
        where = f"{p.label} {name} (vs the hand-written JAX step)"
        found["whole_run_vs_hand_jax"] = compare(where, params, losses, *hand, p.params0)
    return found


def bench_net(p: NetProblem, names, *, repeats: int, pause: float, min_block=0.0, log=print):
    """Check every implementation (:func:`_check`; every first loss against nnjax's), then
    time them round-robin (the twin, the oracle, is timed once); a dict ready for JSON."""
    from benchmarks.check import Mismatch
    from benchmarks.harness import Unavailable, round_robin, stats, timed

    table, auto = impls(), auto_mode(p)
    names = [f"nnjax_{auto}" if n == "auto" else n for n in names]
    wanted = ["numpy"] + [n for n in dict.fromkeys(names) if n != "numpy"]
    runners, notes, rows, outs = {}, {}, {}, {}
    for name in sorted(wanted, key=lambda n: n != "pure_jax"):  # fit's rows are held to it
        try:
            runners[name] = table[name][1](p)
        except Unavailable as e:
            notes[name] = str(e)
            log(f"  skip {name}: {e}")
    for name, r in runners.items():  # the first call also compiles
        r.reset()
        first, out = timed(r.run)
        outs[name] = r.result(out)
        losses = outs[name][1]
        rows[name] = {"label": table[name][0], "first_call_s": first,
                      "first_loss": float(losses[0]), "final_loss": float(losses[-1])}  # fmt: skip
    rows = {n: rows[n] for n in table if n in rows}  # the table's order
    for name, row in rows.items():
        row["check"] = _check(p, name, outs[name], outs["numpy"], outs.get("pure_jax"))
    j0 = rows[f"nnjax_{auto}"]["first_loss"] if f"nnjax_{auto}" in rows else outs["numpy"][1][0]
    for name, row in rows.items():
        row["first_loss_rel_err"] = err = abs(row["first_loss"] - j0) / (1 + abs(j0))
        if not err <= FIRST_STEP_TOL:  # a nan first loss fails too
            raise Mismatch(
                f"{p.label} {name}: first loss {row['first_loss']:.7g} vs nnjax {j0:.7g}"
            )
    timed_runners = {n: r for n, r in runners.items() if n != "numpy"}
    times = round_robin(timed_runners, repeats, pause, min_block)
    times["numpy"] = [rows["numpy"]["first_call_s"]]
    for name, ts in times.items():
        s, row = stats(ts), rows[name]
        row.update(time=s, step_ms=1e3 * s["median"] / p.steps)
        row["compile_s"] = 0.0 if name == "numpy" else max(0.0, row["first_call_s"] - s["median"])
        row["recipe_s"] = row["step_ms"] * RECIPE_STEPS / 1e3  # 8000 steps, compile apart
    return {
        "model": p.name,
        "batch_size": p.batch_size,
        "steps": p.steps,
        "n_examples": len(p.X),
        "optimizer": f"{p.optimizer} {p.learning_rate:g}",
        "auto": auto,
        "rows": rows,
        "skipped": notes,
    }
