"""Branching combinators, as ``jax.example_libraries.stax`` has them.

Several branches travel as a tuple of arrays, and their shapes as a tuple of shapes:

* ``FanOut(n)``: x -> (x, ..., x) (n copies);
* ``parallel(f_1, ..., f_n)``: (x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n));
* ``FanInSum()``: (x_1, ..., x_n) -> x_1 + ... + x_n (equal shapes);
* ``FanInConcat(axis=-1)``: (x_1, ..., x_n) -> concatenate along ``axis``;
* ``residual(f)``: x -> x + f(x), i.e. serial(FanOut(2), parallel(f, Identity()), FanInSum()).

In the backward pass a fan-out sums the gradients of its copies. ``parallel`` and
``residual`` are stateful iff a child is (state: one entry per branch for ``parallel``, the
child's state for ``residual``); ``parallel`` splits a key into one per branch.
"""

import numbers

import jax.numpy as jnp
import numpy as np

from nnjax.layers.checks import as_array, check_shape, located, positive_int
from nnjax.layers.core import (
    Layer,
    apply_model,
    check_children,
    check_layers,
    check_state,
    init_model,
    make_spec,
    spec_of,
    split_keys,
)


def _is_shape_tuple(shape) -> bool:
    return isinstance(shape, tuple | list) and all(isinstance(s, tuple | list) for s in shape)


def _branch_shapes(name: str, input_shape) -> tuple:
    if not _is_shape_tuple(input_shape) or not input_shape:
        raise ValueError(
            f"{name}: expected a tuple of input shapes (from FanOut or parallel), "
            f"got {input_shape!r}"
        )
    return tuple(check_shape(name, s, 0) for s in input_shape)


def _branches(name: str, x, n: int | None = None) -> tuple:
    if not isinstance(x, tuple | list) or (n is not None and len(x) != n):
        what = f"{len(x)} arrays" if isinstance(x, tuple | list) else f"an array {jnp.shape(x)}"
        want = "a tuple of arrays" if n is None else f"a tuple of {n} arrays"
        raise ValueError(f"{name}: expected {want}, got {what}")
    return tuple(x)


def FanOut(n: int) -> Layer:
    """x -> (x,) * n, shapes s -> (s,) * n; no params. Gradients of the copies add up."""
    n = positive_int("FanOut", "n", n)
    name = f"FanOut({n})"

    def init(key, input_shape):
        return (tuple(input_shape),) * n, {}

    def apply(params, x, *, key=None):
        return (x,) * n

    return Layer(init, apply, name, False, make_spec("FanOut", n=n))


def _float_sum(xs):
    """sum_i x_i in the dtype the x_i promote to, a float one (integer or bool branches sum
    in the default float: in their own dtype uint8 177 + 177 wrapped to 98, bools or-ed)."""
    dtype = jnp.result_type(*xs, 1.0)
    return sum((a.astype(dtype) for a in xs[1:]), xs[0].astype(dtype))


def FanInSum() -> Layer:
    """(x_1, ..., x_n) -> sum_i x_i, all of one shape, in the dtype they promote to (the
    default float for integer or bool branches); no params."""
    name = "FanInSum"

    def init(key, input_shape):
        shapes = _branch_shapes(name, input_shape)
        if len(set(shapes)) > 1:
            raise ValueError(f"{name}: branch shapes differ: {shapes}")
        return shapes[0], {}

    def apply(params, x, *, key=None):
        xs = tuple(as_array(name, a) for a in _branches(name, x))
        if len({tuple(a.shape) for a in xs}) > 1:
            raise ValueError(f"{name}: branch shapes differ: {[tuple(a.shape) for a in xs]}")
        return _float_sum(xs)

    return Layer(init, apply, name, False, make_spec("FanInSum"))


def FanInConcat(axis: int = -1) -> Layer:
    """(x_1, ..., x_n) -> concatenate(x_i, axis): sizes along ``axis`` add up, every other
    axis must agree; no params. At init a size -1 (the batch placeholder) along ``axis``
    makes the concatenated size -1: (-1, 5) and (-1, 5) along axis 0 give (-1, 5)."""
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool | np.bool_):
        raise ValueError(f"FanInConcat: axis must be an int, got {axis!r}")
    axis = int(axis)  # a NumPy int too: the spec is JSON
    name = f"FanInConcat({axis})"

    def concat_shape(shapes):
        ndim = len(shapes[0])
        if any(len(s) != ndim for s in shapes) or not -ndim <= axis < ndim:
            raise ValueError(f"{name}: cannot concatenate shapes {list(shapes)} along axis {axis}")
        ax = axis % ndim
        rest = {s[:ax] + s[ax + 1 :] for s in shapes}
        if len(rest) > 1:
            raise ValueError(f"{name}: shapes {list(shapes)} differ off axis {axis}")
        sizes = [s[ax] for s in shapes]
        size = -1 if -1 in sizes else sum(sizes)
        return shapes[0][:ax] + (size,) + shapes[0][ax + 1 :]

    def init(key, input_shape):
        return concat_shape(_branch_shapes(name, input_shape)), {}

    def apply(params, x, *, key=None):
        xs = _branches(name, x)
        concat_shape([tuple(a.shape) for a in xs])
        return jnp.concatenate(xs, axis=axis)

    return Layer(init, apply, name, False, make_spec("FanInConcat", axis=axis))


def parallel(*layers: Layer) -> Layer:
    """(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n)); params (and state, when a branch is
    stateful) a list with one entry per branch. Errors name the branch: ``branch i (name)``."""
    check_layers("parallel", layers)
    n = len(layers)
    name = "parallel(" + ", ".join(layer.name for layer in layers) + ")"
    stateful = any(layer.stateful for layer in layers)
    where = [f"branch {i} ({layer.name})" for i, layer in enumerate(layers)]

    def init(key, input_shape):
        if not _is_shape_tuple(input_shape) or len(input_shape) != n:
            raise ValueError(f"{name}: expected a tuple of {n} input shapes, got {input_shape!r}")
        outs = [
            located(where[i], init_model, layer, k, s)
            for i, (layer, k, s) in enumerate(zip(layers, split_keys(key, n, name), input_shape))
        ]
        shapes, params, states = (list(t) for t in zip(*outs))
        return (tuple(shapes), params, states) if stateful else (tuple(shapes), params)

    def run(params, x, key, state, train):
        xs = _branches(name, x, n)
        check_children(name, params, n, "branch")
        outs = [
            located(where[i], apply_model, layer, p, s, xi, key=k, train=train)
            for i, (layer, p, s, xi, k) in enumerate(
                zip(layers, params, state, xs, split_keys(key, n, name))
            )
        ]
        return tuple(y for y, _ in outs), [s for _, s in outs]

    if stateful:

        def apply(params, x, *, key=None, state=None, train=False):
            check_state(name, state, n)
            return run(params, x, key, state, train)
    else:

        def apply(params, x, *, key=None):
            return run(params, x, key, [()] * n, False)[0]

    spec = make_spec("parallel", layers=[spec_of(layer) for layer in layers])
    return Layer(init, apply, name, stateful, spec)


def residual(layer: Layer) -> Layer:
    """x -> x + f(x); f must keep the shape (checked at init and at apply); the sum as
    :func:`FanInSum`'s (a float one). Params and state are f's own."""
    check_layers("residual", [layer])
    name = f"residual({layer.name})"

    def check(x_shape, y_shape):
        if tuple(x_shape) != tuple(y_shape):
            raise ValueError(
                f"{name}: f(x) has shape {tuple(y_shape)} but x has shape "
                f"{tuple(x_shape)}; x + f(x) needs them equal"
            )

    def init(key, input_shape):
        out_shape, params, state = located(f"inside {name}", init_model, layer, key, input_shape)
        check(input_shape, out_shape)
        return (out_shape, params, state) if layer.stateful else (out_shape, params)

    def run(params, x, key, state, train):
        y, state = located(
            f"inside {name}", apply_model, layer, params, state, x, key=key, train=train
        )
        check(jnp.shape(x), jnp.shape(y))
        return _float_sum((as_array(name, x), y)), state

    if layer.stateful:

        def apply(params, x, *, key=None, state=None, train=False):
            return run(params, x, key, state, train)
    else:

        def apply(params, x, *, key=None):
            return run(params, x, key, (), False)[0]

    return Layer(init, apply, name, layer.stateful, make_spec("residual", layer=spec_of(layer)))
