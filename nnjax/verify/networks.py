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


def _conv_block(choose, shape):
    C = shape[-1]
    features = choose([1, 2, 3, 4])
    groups = choose([g for g in (1, 2, 3) if C % g == 0 and features % g == 0])
    kw = {
        "features": features,
        "kernel_size": choose([1, 2, 3]),
        "strides": choose([1, 1, 2]),
        "padding": choose(["VALID", "SAME", 1, [[1, 0]] * (len(shape) - 2)]),
        "dilation": choose([1, 1, 2]),
        "groups": groups,
        "use_bias": choose([True, False]),
    }
    if choose([False, False, False, True]):  # now and then a transposed convolution
        del kw["groups"]
        return ("ConvTranspose", kw)
    return ("Conv", kw)


def _pool_block(choose, shape):
    kind = choose(["MaxPool", "AvgPool", "GlobalAvgPool"])
    if kind == "GlobalAvgPool":
        return (kind, {})
    kw = {
        "window": choose([1, 2, 3]),
        "strides": choose([None, 1, 2]),
        "padding": choose(["VALID", "SAME"]),
    }
    return (kind, kw)


def _recurrent_block(choose, shape):
    cell = (choose(["SimpleRNNCell", "GRUCell", "LSTMCell"]), {"hidden": choose([1, 2, 3])})
    seqs = choose([True, False])
    if choose([True, False]):
        return ("RNN", {"cell": cell, "return_sequences": seqs, "reverse": choose([True, False])})
    return (
        "Bidirectional",
        {
            "cell": cell,
            "backward_cell": None,
            "return_sequences": seqs,
            "merge": choose(["concat", "sum"]),
        },
    )


def _branch_block(choose, shape):
    act = ("Activation", {"activation": choose(["tanh", "relu", "gelu"])})
    if len(shape) == 2:
        inner = ("serial", {"layers": [("Dense", {"features": shape[-1]}), act]})
    else:
        conv = ("Conv", {"features": shape[-1], "kernel_size": 3, "padding": "SAME"})
        inner = ("serial", {"layers": [conv, act]})
    if choose([True, False]):
        return ("residual", {"layer": inner})
    merge = choose([("FanInSum", {}), ("FanInConcat", {"axis": -1})])
    return (
        "serial",
        {
            "layers": [
                ("FanOut", {"n": 2}),
                ("parallel", {"layers": [inner, ("Identity", {})]}),
                merge,
            ]
        },
    )


def _block(choose, shape):
    """One block that fits ``shape`` (without the batch-size caveats handled by the caller)."""
    kinds = ["norm", "activation", "branch"]
    kinds += ["conv", "conv", "pool"] if len(shape) in (3, 4) else ["dense"]
    kinds += ["recurrent", "recurrent"] if len(shape) == 3 else []
    kind = choose(kinds)
    if kind == "conv":
        return _conv_block(choose, shape)
    if kind == "pool":
        return _pool_block(choose, shape)
    if kind == "recurrent":
        return _recurrent_block(choose, shape)
    if kind == "branch":
        return _branch_block(choose, shape)
    if kind == "dense":
        return ("Dense", {"features": choose([1, 2, 3, 5]), "use_bias": choose([True, False])})
    if kind == "norm":
        if shape[-1] >= 2 and choose([True, False]):
            return ("LayerNorm", {"use_scale": choose([True, False]), "use_offset": True})
        return ("BatchNorm", {"use_scale": True, "use_offset": choose([True, False])})
    return ("Activation", {"activation": choose(["tanh", "relu", "gelu", "sigmoid", "elu"])})


def network_spec(choose: Choose, n_blocks: int = 3) -> tuple[tuple, tuple]:
    """(spec, input_shape): a random small network of up to ``n_blocks`` blocks (convolutions
    with random stride, padding, dilation and groups; pools; norms; residual and fan-out
    branches; RNN/GRU/LSTM, bidirectional or not) on a random (B, F), (B, T, C) or
    (B, H, W, C) input, with a Dense read-out. A block that does not fit the shape it meets
    (a window larger than the input, a norm with one value) is replaced by a tanh."""
    B = choose([2, 3, 4])
    input_shape = choose(
        [
            (B, choose([1, 3, 6])),
            (B, choose([3, 5, 8]), choose([1, 2, 3])),
            (B, choose([3, 4, 6]), choose([3, 5]), choose([1, 2])),
        ]
    )
    layers, shape = [], input_shape
    for _ in range(choose(list(range(1, n_blocks + 1)))):
        block = _block(choose, shape)
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
