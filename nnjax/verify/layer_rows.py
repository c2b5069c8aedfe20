"""The rows of ``nnjax verify`` for the layers beyond Dense: a table of cases (every layer
with the options that change its arithmetic, and the models) compared in one compiled
program, and the cases a spec cannot express: max-pool ties, recurrent initial states,
integer embedding ids, and BatchNorm's running statistics and evaluation mode."""

import jax
import numpy as np

from nnjax.layers import from_spec
from nnjax.reference import layers as RLay
from nnjax.reference import norm as RN
from nnjax.reference import recurrent as RR
from nnjax.verify.core import Check, _to_numpy, compile_fast
from nnjax.verify.layers import (
    _is_shape,
    _jax_vjp,
    check_tree,
    init_shapes,
    random_params,
    twin_of,
    vjp_row,
)


def _conv(kind="Conv", **kw):
    return (kind, kw)


def _seq(*layers):
    return ("serial", {"layers": list(layers)})


def _cell(kind, hidden):
    return (kind, {"hidden": hidden})


_TANH = ("Activation", {"activation": "tanh"})
_BRANCHES = ("parallel", {"layers": [("Dense", {"features": 4}), _TANH]})
_THREE = (
    "parallel",
    {
        "layers": [
            ("Dense", {"features": 4}),
            _seq(("Dense", {"features": 2}), _TANH),
            ("Identity", {}),
        ]
    },
)
_SAME3 = _conv(features=3, kernel_size=3, padding="SAME")

# (label, spec, input_shape): every layer beyond Dense with the options that change its
# arithmetic (stride, padding, dilation, groups, windows, directions), and the models.
LAYER_CASES = [
    ("Conv 1-D VALID", _conv(features=5, kernel_size=3), (3, 11, 4)),
    (
        "Conv 1-D stride 2 SAME dilation 2 groups 2",
        _conv(features=4, kernel_size=3, strides=2, padding="SAME", dilation=2, groups=2),
        (3, 11, 4),
    ),
    (
        "Conv 1-D depthwise pads (2, 1) no bias",
        _conv(features=4, kernel_size=2, padding=[[2, 1]], groups=4, use_bias=False),
        (3, 11, 4),
    ),
    (
        "Conv 2-D (3, 2) strides (2, 1) SAME",
        _conv(features=4, kernel_size=[3, 2], strides=[2, 1], padding="SAME"),
        (2, 7, 6, 3),
    ),
    (
        "Conv 2-D padding 1 dilation (1, 2) groups 3",
        _conv(features=6, kernel_size=3, padding=1, dilation=[1, 2], groups=3),
        (2, 7, 6, 3),
    ),
    (
        "ConvTranspose 2-D stride 2 SAME",
        _conv("ConvTranspose", features=3, kernel_size=3, strides=2, padding="SAME"),
        (2, 4, 5, 3),
    ),
    (
        "ConvTranspose 1-D stride 3 VALID dilation 2",
        _conv("ConvTranspose", features=2, kernel_size=2, strides=3, dilation=2),
        (3, 5, 2),
    ),
    (
        "ConvTranspose 2-D pads ((1, 2), (0, 1))",
        _conv(
            "ConvTranspose",
            features=2,
            kernel_size=[2, 3],
            strides=[1, 2],
            padding=[[1, 2], [0, 1]],
        ),
        (2, 4, 3, 2),
    ),
    (
        "MaxPool 1-D 3 stride 2 SAME",
        ("MaxPool", {"window": 3, "strides": 2, "padding": "SAME"}),
        (3, 10, 2),
    ),
    ("MaxPool 2-D 2x2", ("MaxPool", {"window": 2}), (2, 6, 5, 3)),
    (
        "AvgPool 2-D 3 stride 2 SAME (real-element counts)",
        ("AvgPool", {"window": 3, "strides": 2, "padding": "SAME"}),
        (2, 6, 5, 3),
    ),
    (
        "AvgPool 1-D 2 stride 1 pads (1, 1)",
        ("AvgPool", {"window": 2, "strides": 1, "padding": [[1, 1]]}),
        (3, 7, 2),
    ),
    ("GlobalAvgPool 2-D", ("GlobalAvgPool", {}), (2, 4, 5, 3)),
    ("LayerNorm", ("LayerNorm", {}), (4, 5, 6)),
    ("LayerNorm without scale", ("LayerNorm", {"use_scale": False}), (7, 3)),
    ("LayerNorm eps 0.5", ("LayerNorm", {"eps": 0.5}), (4, 5)),  # a twin ignoring eps fails
    ("BatchNorm (train) (B, F)", ("BatchNorm", {}), (8, 5)),
    ("BatchNorm (train) eps 0.5", ("BatchNorm", {"eps": 0.5}), (8, 5)),
    (
        "BatchNorm (train) (B, H, W, C) no offset",
        ("BatchNorm", {"use_offset": False}),
        (3, 4, 4, 2),
    ),
    (
        "FanOut(3), parallel, FanInConcat",
        _seq(("FanOut", {"n": 3}), _THREE, ("FanInConcat", {"axis": -1})),
        (5, 4),
    ),
    (
        "FanOut(2), parallel, FanInSum",
        _seq(("FanOut", {"n": 2}), _BRANCHES, ("FanInSum", {})),
        (5, 4),
    ),
    ("residual(Conv SAME, tanh)", ("residual", {"layer": _seq(_SAME3, _TANH)}), (2, 6, 3)),
    ("SimpleRNNCell (one step)", _cell("SimpleRNNCell", 4), (5, 3)),
    ("GRUCell (one step)", _cell("GRUCell", 4), (5, 3)),
    ("LSTMCell (one step)", _cell("LSTMCell", 4), (5, 3)),
    ("RNN(SimpleRNNCell) last output", ("RNN", {"cell": _cell("SimpleRNNCell", 3)}), (3, 6, 2)),
    (
        "RNN(GRUCell) sequences",
        ("RNN", {"cell": _cell("GRUCell", 4), "return_sequences": True}),
        (3, 6, 2),
    ),
    ("RNN(GRUCell) reverse", ("RNN", {"cell": _cell("GRUCell", 4), "reverse": True}), (3, 6, 2)),
    (
        "RNN(LSTMCell) reverse sequences",
        ("RNN", {"cell": _cell("LSTMCell", 3), "reverse": True, "return_sequences": True}),
        (3, 6, 2),
    ),
    (
        "Bidirectional(GRUCell) concat sequences",
        ("Bidirectional", {"cell": _cell("GRUCell", 3), "return_sequences": True}),
        (2, 5, 2),
    ),
    (
        "Bidirectional(LSTMCell, SimpleRNNCell) sum",
        (
            "Bidirectional",
            {
                "cell": _cell("LSTMCell", 3),
                "backward_cell": _cell("SimpleRNNCell", 3),
                "merge": "sum",
            },
        ),
        (2, 5, 2),
    ),
    ("model cnn (MNIST-1D)", ("cnn", {}), (3, 40)),
    ("model cnn (digits, 8x8x1)", ("cnn", {"input_shape": [8, 8, 1]}), (3, 64)),
    ("model gru (MNIST-1D)", ("gru", {}), (2, 40)),
    ("model resmlp", ("resmlp", {"hidden": 16}), (4, 40)),
]


def _case_inputs(cases, rng):
    models, params, states, xs, douts = [], [], [], [], []
    for _, spec, shape in cases:
        model = from_spec(spec)
        out_shape, p, st = init_shapes(model, shape)
        models.append(model)
        params.append(random_params(p, rng))
        states.append(jax.tree.map(lambda s: np.ones(s.shape), st))
        xs.append(rng.normal(size=shape))
        douts.append(jax.tree.map(lambda s: rng.normal(size=s), out_shape, is_leaf=_is_shape))
    return models, params, states, xs, douts


def check_layer_twins(rng: np.random.Generator, cases=None) -> list[Check]:
    """One row per case of :data:`LAYER_CASES`: output, dJ/dx and dJ/dparams, JAX (one
    compiled program for all cases, float64, training mode) vs the twin."""
    cases = LAYER_CASES if cases is None else cases
    with jax.enable_x64(True):
        models, params, states, xs, douts = _case_inputs(cases, rng)

        def jax_side(params, xs, douts):
            return [
                _jax_vjp(m, st, True)(p, x, d)
                for m, st, p, x, d in zip(models, states, params, xs, douts)
            ]

        res = _to_numpy(compile_fast(jax_side, params, xs, douts)(params, xs, douts))
    rows = []
    for (label, _, _), model, p, x, d, (y, dp, dx) in zip(cases, models, params, xs, douts, res):
        pair = twin_of(model.spec)
        ty, cache = pair.forward(p, x)
        tdx, tdp = pair.backward(d, cache)
        rows.append(check_tree(f"layer {label}", (y, dx, dp), (ty, tdx, tdp)))
    return rows


def check_max_pool_ties(rng: np.random.Generator) -> list[Check]:
    """Max pooling on inputs full of ties (values in {0, 1, 2}), overlapping windows: the
    twin's first-maximum routing vs JAX's gradient."""
    from nnjax.layers import MaxPool
    from nnjax.reference.pool import max_pool

    rows = []
    for label, kw, shape in (
        (
            "MaxPool 2-D 3x3 stride 1 SAME, ties",
            {"window": 3, "strides": 1, "padding": "SAME"},
            (2, 5, 6, 2),
        ),
        ("MaxPool 1-D 2 stride 1, ties", {"window": 2, "strides": 1}, (3, 9, 2)),
    ):
        x = rng.integers(0, 3, shape).astype(np.float64)
        d = rng.normal(size=MaxPool(**kw).init(None, shape)[0])
        layer = MaxPool(**kw)
        rows.append(vjp_row(label, lambda p, x, l=layer: l.apply(p, x), max_pool(**kw), {}, x, d))
    return rows


def check_recurrent_initial_state(rng: np.random.Generator) -> list[Check]:
    """RNN(GRUCell), RNN(LSTMCell) and Bidirectional from a nonzero initial carry."""
    from nnjax.layers import RNN, Bidirectional, GRUCell, LSTMCell

    B, T, F, H = 3, 5, 2, 4
    x = rng.normal(size=(B, T, F))
    h0, c0, h1 = (rng.normal(size=(B, H)) for _ in range(3))
    rows = []
    for label, layer, pair, carry in (
        ("RNN(GRUCell) from h0", RNN(GRUCell(H)), RR.rnn(RR.gru(), initial_state=h0), h0),
        (
            "RNN(LSTMCell) reverse from (h0, c0)",
            RNN(LSTMCell(H), reverse=True, return_sequences=True),
            RR.rnn(RR.lstm(), reverse=True, return_sequences=True, initial_state=(h0, c0)),
            (h0, c0),
        ),
        (
            "Bidirectional(GRUCell) from (h0, h1)",
            Bidirectional(GRUCell(H)),
            RR.bidirectional(RR.gru(), initial_state=(h0, h1)),
            (h0, h1),
        ),
    ):
        with jax.enable_x64(True):
            out_shape, p, _ = init_shapes(layer, x.shape)
        params = random_params(p, rng)
        f = lambda p, x, l=layer, c=carry: l.apply(p, x, initial_state=c)
        rows.append(vjp_row(label, f, pair, params, x, rng.normal(size=out_shape)))
    return rows


def check_embedding(rng: np.random.Generator) -> list[Check]:
    """Embedding: output and dJ/dW (ids repeat, so rows of W collect several gradients)."""
    from nnjax.layers import Embedding

    ids = rng.integers(0, 5, (4, 6)).astype(np.int32)
    W = rng.normal(size=(5, 3))
    d = rng.normal(size=(4, 6, 3))
    layer = Embedding(5, 3)
    with jax.enable_x64(True):

        def run(W, d):
            y, vjp_fn = jax.vjp(lambda W: layer.apply({"W": W}, ids), W)
            return y, vjp_fn(d)[0]

        y, dW = _to_numpy(compile_fast(run, W, d)(W, d))
    pair = RLay.embedding(5, 3)
    ty, cache = pair.forward({"W": W}, ids)
    return [
        check_tree("layer Embedding: output, dJ/dW", (y, dW), (ty, pair.backward(d, cache)[1]["W"]))
    ]


def batch_norm_steps(x_steps, momentum: float = 0.1, eps: float = 1e-5):
    """JAX's BatchNorm over the batches ``x_steps`` (S, B, ..., C) in training mode, float64:
    (outputs (S, B, ..., C), running state after each step {"mean", "var"}: (S, C))."""
    from nnjax.layers import BatchNorm

    layer = BatchNorm(momentum=momentum, eps=eps)
    with jax.enable_x64(True):
        _, params, state = layer.init(jax.random.key(0), x_steps.shape[1:])

        def run(state, xs):
            def step(state, x):
                y, state = layer.apply(params, x, state=state, train=True)
                return state, (y, state)

            return jax.lax.scan(step, state, xs)[1]

        return _to_numpy(compile_fast(run, state, x_steps)(state, x_steps))


def check_batch_norm_state(rng: np.random.Generator, steps: int = 10) -> list[Check]:
    """BatchNorm's running statistics over ``steps`` training batches (JAX vs the twin's
    PyTorch rule), then evaluation mode (the running statistics): output, dJ/dx, dJ/dparams."""
    from nnjax.layers import BatchNorm

    xs = rng.normal(1.5, 2.0, (steps, 6, 3, 4))
    _, states = batch_norm_steps(xs, momentum=0.3)
    ref = {"mean": np.zeros(4), "var": np.ones(4)}
    ref_states = []
    for x in xs:
        ref = RN.batch_norm_update(ref, x, momentum=0.3)
        ref_states.append(ref)
    ref_stack = {k: np.stack([s[k] for s in ref_states]) for k in ("mean", "var")}
    rows = [check_tree(f"BatchNorm running statistics, {steps} steps", states, ref_stack)]
    final = {k: v[-1] for k, v in states.items()}
    params = {"scale": rng.normal(size=4), "offset": rng.normal(size=4)}
    layer = BatchNorm(momentum=0.3)
    f = lambda p, x: layer.apply(p, x, state=final, train=False)[0]
    pair = RN.batch_norm(train=False, state={k: v[-1] for k, v in ref_stack.items()})
    x, d = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 4))
    rows.append(
        vjp_row(
            "BatchNorm (eval, running statistics): output, dJ/dx, dJ/dparams", f, pair, params, x, d
        )
    )
    return rows


def check_more_layers(rng: np.random.Generator) -> list[Check]:
    """Every row above: :func:`check_layer_twins` and the special cases."""
    return (
        check_layer_twins(rng)
        + check_max_pool_ties(rng)
        + check_embedding(rng)
        + check_recurrent_initial_state(rng)
        + check_batch_norm_state(rng)
    )
