"""Random architectures mixing every layer, for the twin-vs-JAX comparison of
:func:`nnjax.verify.layers.compare_network`.

:func:`network_spec` draws a network as a spec from a chooser ``choose(options) -> option``
(a NumPy generator in ``nnjax verify``, hypothesis' ``draw`` in the tests, so that
hypothesis can shrink a failing network to a small one).
"""

from collections.abc import Callable

import numpy as np

from nnjax.layers import from_spec
from nnjax.verify.core import Check
from nnjax.verify.layers import compare_network, init_shapes

Choose = Callable[[list], object]  # choose(options) -> one of them


def _conv_block(choose, shape, kind):
    C = shape[-1]
    groups = choose([g for g in (1, 2, 3) if C % g == 0]) if kind == "Conv" else 1
    features = groups * choose([1, 2])
    kw = {
        "features": features,
        "kernel_size": choose([1, 2, 3]),
        "strides": choose([1, 2]),
        "padding": choose(["VALID", "SAME", 1, [[1, 0]] * (len(shape) - 2)]),
        "dilation": choose([1, 2]),
        "use_bias": choose([True, False]),
    }
    if kind == "Conv":
        kw["groups"] = groups
    return (kind, kw)


def _pool_block(choose, kind):
    if kind == "GlobalAvgPool":
        return (kind, {})
    kw = {
        "window": choose([1, 2, 3]),
        "strides": choose([None, 1, 2]),
        "padding": choose(["VALID", "SAME"]),
    }
    return (kind, kw)


def _recurrent_block(choose, cell_kind):
    cell = (cell_kind, {"hidden": choose([1, 2, 3])})
    seqs = choose([True, False])
    if choose([True, False]):
        return ("RNN", {"cell": cell, "return_sequences": seqs, "reverse": choose([True, False])})
    merge = choose(["concat", "sum"])
    kw = {"cell": cell, "backward_cell": None, "return_sequences": seqs, "merge": merge}
    return ("Bidirectional", kw)


def _branch_block(choose, shape, kind):
    act = ("Activation", {"activation": choose(["tanh", "relu", "gelu"])})
    if len(shape) == 2:
        inner = ("serial", {"layers": [("Dense", {"features": shape[-1]}), act]})
    else:
        conv = ("Conv", {"features": shape[-1], "kernel_size": 3, "padding": "SAME"})
        inner = ("serial", {"layers": [conv, act]})
    if kind == "residual":
        return ("residual", {"layer": inner})
    merge = choose([("FanInSum", {}), ("FanInConcat", {"axis": -1})])
    branches = ("parallel", {"layers": [inner, ("Identity", {})]})
    return ("serial", {"layers": [("FanOut", {"n": 2}), branches, merge]})


SPATIAL = ("Conv", "ConvTranspose", "MaxPool", "AvgPool", "GlobalAvgPool")
CELLS = ("SimpleRNNCell", "GRUCell", "LSTMCell")
ANYWHERE = ("Dense", "LayerNorm", "BatchNorm", "residual", "branches", "activation")
KINDS = SPATIAL + CELLS + ANYWHERE
"""The kinds of block :func:`network_spec` draws (a cell kind stands for an RNN or a
bidirectional layer of that cell)."""


def kinds_for(shape) -> tuple[str, ...]:
    """The block kinds that take an input of ``shape``."""
    return ANYWHERE + (SPATIAL if len(shape) in (3, 4) else ()) + (CELLS if len(shape) == 3 else ())


def _block(choose, shape, kind):
    """One block of ``kind`` for an input of ``shape``."""
    if kind in ("Conv", "ConvTranspose"):
        return _conv_block(choose, shape, kind)
    if kind in SPATIAL:
        return _pool_block(choose, kind)
    if kind in CELLS:
        return _recurrent_block(choose, kind)
    if kind in ("residual", "branches"):
        return _branch_block(choose, shape, kind)
    if kind == "Dense":
        return ("Dense", {"features": choose([1, 2, 3, 5]), "use_bias": choose([True, False])})
    if kind == "LayerNorm":
        return ("LayerNorm", {"use_scale": choose([True, False]), "use_offset": True})
    if kind == "BatchNorm":
        return ("BatchNorm", {"use_scale": True, "use_offset": choose([True, False])})
    return ("Activation", {"activation": choose(["tanh", "relu", "gelu", "sigmoid", "elu"])})


def _input_shape(choose, featured):
    B = choose([2, 3, 4])
    ranks = [3] if featured in CELLS else [3, 4] if featured in SPATIAL else [2, 3, 4]
    rank = choose(ranks)
    if rank == 2:
        return (B, choose([2, 3, 6]))
    if rank == 3:
        return (B, choose([5, 6, 8]), choose([1, 2, 3]))
    return (B, choose([5, 6]), choose([5, 7]), choose([1, 2]))


def network_spec(choose: Choose, n_blocks: int = 3) -> tuple[tuple, tuple]:
    """(spec, input_shape): a random small network on a random (B, F), (B, T, C) or
    (B, H, W, C) input. Its first block is of a kind drawn from :data:`KINDS` (so every
    kind is drawn about equally often), up to ``n_blocks - 1`` more follow, of any kind that
    fits the shape they meet (convolutions with random stride, padding, dilation and
    groups; pools; norms; residual and fan-out branches; RNN/GRU/LSTM, bidirectional or
    not), then Flatten and a Dense read-out. A block that does not fit (a window larger than
    its input, say) becomes a tanh."""
    featured = choose(list(KINDS))
    input_shape = _input_shape(choose, featured)
    layers, shape = [], input_shape
    for i in range(choose(list(range(1, n_blocks + 1)))):
        block = _block(choose, shape, featured if i == 0 else choose(list(kinds_for(shape))))
        try:
            new_shape = _shape_after(block, shape)
        except ValueError:
            block, new_shape = ("Activation", {"activation": "tanh"}), shape
        layers.append(block)
        shape = new_shape
    if len(shape) > 2:
        layers.append(("Flatten", {}))
    layers.append(("Dense", {"features": choose([1, 2, 3])}))
    return ("serial", {"layers": layers}), input_shape


def _shape_after(spec, shape):
    """The output shape of the block ``spec`` on ``shape`` (init traced, no arrays made)."""
    out = init_shapes(from_spec(spec), shape)[0]
    if spec[0] == "LayerNorm" and shape[-1] < 2:
        raise ValueError("LayerNorm over a single feature")
    if np.prod(out) == 0 or (spec[0] == "BatchNorm" and np.prod(shape[:-1]) < 2):
        raise ValueError("too small")
    return tuple(out)


def check_network_twins(rng: np.random.Generator, n: int = 8) -> list[Check]:
    """:func:`compare_network` on ``n`` random architectures (:func:`network_spec`)."""
    rows = []
    for i in range(n):
        choose = lambda options: options[int(rng.integers(len(options)))]
        spec, shape = network_spec(choose)
        seed = int(rng.integers(2**31))
        rows += compare_network(spec, shape, seed, f"random network {i} {shape}")
    return rows
