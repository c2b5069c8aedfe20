"""Mutation audit of the rate choice (compare.select), a study's model checks, the Flax
interop's checks, the predictor's probabilities and the figure helper, against NumPy loops of
the documented rules and exact messages naming the culprit."""

import jax
import numpy as np
import pytest

import nnjax
from nnjax import interop
from nnjax.compare.model_checks import check_layer, check_model
from nnjax.compare.select import best_index, diverged, seed_mean
from nnjax.compare.study import OptimizerRuns, Splits
from nnjax.layers import init_model
from nnjax.layers.checks import ParamsError
from nnjax.plotting import subplots
from nnjax.predictor import Predictor


def _runs(lrs, step, metrics):
    return OptimizerRuns("sgd", np.asarray(lrs, float), np.arange(step.shape[1]), 8, 2, step,
                         metrics, 1.0, 1.0)  # fmt: skip


def _div(step, m, r, t):
    tr = m["train_loss"][r, t]
    return (
        not (np.isfinite(step[r, t]).all() and np.isfinite(tr).all()) or tr[-1] > 10 * step[r, t, 0]
    )


def _oracle(lrs, step, m, select):
    """The module docstring's rule, by loops: diverged if a step or epoch loss is not finite
    or the final train loss is above 10 x the first step's loss; score = sign x mean over
    seeds of the final criterion; ties to the smallest rate; None if no rate is left."""
    key, sign = {"val_loss": ("val_loss", 1), "val_accuracy": ("val_accuracy", -1),
                 "train_loss": ("train_loss", 1)}[select]  # fmt: skip
    best = None
    for i in range(len(lrs)):
        bad = any(_div(step, m, i, s) for s in range(step.shape[1]))
        score = sign * sum(float(v) for v in m[key][i, :, -1]) / step.shape[1]
        if not bad and np.isfinite(score) and (best is None or (score, lrs[i]) < best[:2]):
            best = (score, lrs[i], i)
    return None if best is None else best[2]


def test_best_index_and_diverged_follow_the_documented_rule_by_loops():
    """Catches: the final value read from another epoch, the initial loss from another step,
    a non-finite step or epoch loss not counted diverged, one diverged seed not enough to
    exclude a rate, another factor than 10, the val_accuracy or train_loss criterion signed or
    read wrong, ties not going to the smallest rate, None when only some rates are out."""
    g = np.random.default_rng(3)
    L, S, E, T = 6, 3, 3, 2
    lrs = [0.3, 0.01, 0.1, 1.0, 0.03, 3.0]  # unsorted: ties must go to the smallest
    for trial in range(40):
        step = 1.0 + g.random((L, S, E * T))
        step[:, :, 1] = 0.05  # a second step's loss far below: 10 x it is a low bar
        m = {k: g.random((L, S, E)) for k in ("train_loss", "val_loss", "val_accuracy")}
        m["val_loss"][:, :, -2] = 0.0  # the epoch before the last would tie every rate
        i, j, k = g.choice(L, 3, replace=False)
        m["val_loss"][j, :, -1] = m["val_loss"][i, :, -1][::-1]  # tied score, other order
        m["val_accuracy"][j, :, -1] = m["val_accuracy"][i, :, -1][::-1]
        m["train_loss"][j, :, -1] = m["train_loss"][i, :, -1][::-1]
        kind = trial % 5
        s = g.integers(S)
        if kind == 0:
            step[k, s, 2 + g.integers(E * T - 2)] = np.nan  # a step loss only
        elif kind == 1:
            m["train_loss"][k, s, 0] = np.inf  # an epoch loss, the final one finite
        elif kind == 2:
            m["train_loss"][k, s, -1] = 10.0 * step[k, s, 0] * 1.5  # 15x: over 10, below 100
        elif kind == 3:
            m["train_loss"][k, s, -1] = 10.0 * step[k, s, 0]  # exactly 10x: converged
        elif kind == 4:  # every rate but k diverged by one seed each
            for r in range(L):
                if r != k:
                    step[r, g.integers(S), 3] = np.inf
        runs = _runs(lrs, step, m)
        want = [[_div(step, m, r, t) for t in range(S)] for r in range(L)]
        np.testing.assert_array_equal(diverged(runs), want)
        for select in ("val_loss", "val_accuracy", "train_loss"):
            assert best_index(runs, select) == _oracle(lrs, step, m, select), (trial, select)


def test_seed_mean_is_the_mean_over_seeds_and_nan_where_a_seed_is_not_finite():
    """Catches a divisor other than the seed count and a row kept when only some seeds are
    finite."""
    a = np.array([[0.1, 0.2, 0.6], [1.0, np.nan, 2.0], [np.inf, 1.0, 1.0]], np.float32)
    got = seed_mean(a)
    np.testing.assert_allclose(got[0], np.mean(a[0].astype(np.float64)), rtol=1e-15)
    assert np.isnan(got[1:]).all()


def _splits(n_classes=3, bad=None):
    """Splits of 5 features, labels in [0, n_classes); ``bad`` names the set given label K."""
    X = np.zeros((4, 5), np.float32)
    y = {p: np.array([0, n_classes if p == bad else 1, 2, 0], np.int32) for p in "fvt"}
    return Splits((X, y["f"]), (X, y["v"]), (X, y["t"]), n_classes, True)


def _stacked(model, n_in=5, seeds=2):
    _, p, s = init_model(model, jax.random.PRNGKey(0), (-1, n_in))
    return jax.tree.map(lambda a: np.stack([np.asarray(a)] * seeds), (p, s))


@pytest.mark.parametrize(("part", "word"), [("v", "validation"), ("t", "test")])
def test_check_model_names_the_split_whose_labels_exceed_the_outputs(part, word):
    """Catches the test set left unchecked and the sets named out of order."""
    model = nnjax.mlp([4, 3])
    with pytest.raises(ValueError, match=rf"give a model with 3 outputs\): the {word} labels"):
        check_model(model, _stacked(model), _splits(bad=part), "toy")
    check_model(model, _stacked(model), _splits(), "toy")  # all three in range: no error


def test_check_model_asks_for_an_output_per_class_and_keeps_a_params_error_one():
    """Catches a message asking for the model's own output count instead of the classes, and
    params of another model re-raised as a bare ValueError blaming X."""
    model = nnjax.mlp([4, 2])
    with pytest.raises(ValueError, match=r"toy \(3 classes; give a model with 3 outputs\)"):
        check_model(model, _stacked(model), _splits(), "toy")
    with pytest.raises(ParamsError, match=r"^compare: model "):
        check_model(nnjax.mlp([4, 3]), _stacked(nnjax.mlp([6, 3])), _splits(), "toy")


@pytest.mark.parametrize("obj", [type("OnlyInit", (), {"init": lambda s: 0})(), print])
def test_check_layer_needs_both_init_and_apply(obj):
    """Catches 'init or apply' taken for 'init and apply'."""
    with pytest.raises(TypeError, match=r"compare: model must be None .* got "):
        check_layer(obj)
    check_layer(None), check_layer(nnjax.mlp([2]))


def _pred(loss, labels, W):  # a Dense layer z = x W on 2 inputs, no standardisation
    model = nnjax.mlp([W.shape[1]])
    _, _, state = init_model(model, jax.random.PRNGKey(0), (-1, 2))
    params = [{"W": W.astype(np.float32), "b": np.zeros(W.shape[1], np.float32)}]
    meta = {"label_names": labels, "loss": loss,
            "model": {"input_shape": [-1, 2], "spec": model.spec}}  # fmt: skip
    return Predictor(model, params, state, None, meta)


def test_predict_proba_is_numpy_softmax_and_sigmoid_and_names_keep_their_types():
    """Catches a softmax shifted by the min (overflow), columns [p, 1 - p] swapped, and label
    names of mixed types made all strings."""
    X = np.array([[400.0, 0.0], [0.0, 1.0], [-2.0, 3.0]], np.float32)
    p3 = _pred("softmax_cross_entropy", [0, "b", "c"], np.array([[1.0, 0, -1], [0, 2, 0]]))
    z = X.astype(np.float64) @ np.array([[1.0, 0, -1], [0, 2, 0]])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p3.predict_proba(X), e / e.sum(1, keepdims=True), rtol=1e-6)
    assert p3.predict(X).tolist() == [0, "b", "b"] and p3.predict(X)[0] == 0
    p1 = _pred("binary_cross_entropy_with_logits", ["no", "yes"], np.array([[1.0], [0.5]]))
    z1 = X[:, 0].astype(np.float64) + 0.5 * X[:, 1]
    q = 1 / (1 + np.exp(-z1))
    np.testing.assert_allclose(p1.predict_proba(X), np.stack([1 - q, q], 1), rtol=1e-6)
    assert "6 classes (0, 1, 2, 3, 4, ...)" in repr(_pred("mse", list(range(6)), np.eye(2, 6)))
    assert "5 classes (0, 1, 2, 3, 4), loss" in repr(_pred("mse", list(range(5)), np.eye(2, 5)))


def _err(params):
    with pytest.raises(ValueError) as e:
        interop.dense_layers(params)
    return str(e.value)


def test_interop_names_a_transposed_chain_a_1d_convolution_and_a_list_of_bools():
    """Catches the transposed hint dropped (or given) on a chain of widths, a 1-D
    convolution's 3-axis W not named a convolution, and bools taken as floats."""
    z = np.zeros
    msg = _err([{"W": z((2, 3)), "b": z(3)}, {}, {"W": z((4, 3)), "b": z(3)}])
    assert msg.endswith("Dense 1 W has 4 inputs but Dense 0 has 3 outputs (is W transposed? "
                        "nnjax's W is (in, out), a torch weight (out, in))")  # fmt: skip
    msg = _err([{"W": z((2, 3)), "b": z(3)}, {}, {"W": z((4, 5)), "b": z(5)}])
    assert msg.endswith("Dense 1 W has 4 inputs but Dense 0 has 3 outputs")
    msg = _err([{"W": z((3, 2, 4)), "b": z(4)}])
    assert msg.startswith("interop: params[0] is a convolution's (Conv or ConvTranspose: W of")
    msg = _err([{"W": [[True, False]]}])
    assert msg.startswith("interop: Dense 0 W must be an array of floats, got list")


def test_probabilities_of_exactly_0_and_1_are_taken_and_bad_rows_listed_five_first():
    """Catches p = 1 refused as outside [0, 1] (z >= 1), and the message listing fewer than
    the first five bad rows."""
    p = _pred("binary_cross_entropy", ["no", "yes"], np.array([[1.0], [0.0]]))
    X = np.array([[0.0, 9.0], [1.0, -9.0], [0.5, 0.0]], np.float32)
    np.testing.assert_array_equal(p.predict_proba(X), [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"outside \[0, 1\].* in 2 row\(s\), first rows \[1, 3\]"):
        p(np.array([[0.0, 0], [1.5, 0], [1.0, 0], [-0.5, 0]], np.float32))
    X = np.full((8, 2), np.nan, np.float32)
    X[5] = 0.0
    with pytest.raises(ValueError, match=r"nan/inf in 7 row\(s\), first rows \[0, 1, 2, 3, 4\]$"):
        p(X)


def test_subplots_gives_layout_keywords_to_the_axes_and_the_rest_to_the_figure():
    """Catches figure keywords (figsize, dpi) passed to Figure.subplots, and sharey sent to
    the Figure, as plt.subplots would not."""
    fig, axes = subplots(1, 2, figsize=(3.0, 2.0), dpi=50, sharey=True, squeeze=False)
    assert axes.shape == (1, 2) and fig.get_dpi() == 50
    np.testing.assert_array_equal(fig.get_size_inches(), [3.0, 2.0])
    assert axes[0, 0].get_shared_y_axes().joined(axes[0, 0], axes[0, 1])
