"""Docstring claims of training, prediction, data and optimizers, held against NumPy oracles.

Each test quotes the claim it checks. Two were defects: a ``TrainingStopped`` before the first
epoch gave ``metrics == {}`` where ``FitResult`` lists ``step_loss_mean`` and every eval
set's metrics (now empty arrays under each name), and adam/adamw/rmsprop took an ``eps`` that
is 0 in float32 (1e-40), whose update is 0/0 = nan for a zero gradient (now a ValueError).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import EarlyStopping, data, optim
from nnjax.train import StopFlag, TrainingStopped, run_batch_indices


def _problem(n=48, out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
    model = nnjax.mlp([5, out])
    _, params = model.init(jax.random.key(seed), (-1, 3))
    return model, params, X, y


def _np_forward(params, X):
    """mlp([5, K]) with relu, in float64."""
    P = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in params]
    h = np.maximum(np.asarray(X, np.float64) @ P[0]["W"] + P[0]["b"], 0.0)
    return h @ P[2]["W"] + P[2]["b"]


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))  # fmt: skip


# --- FitResult -------------------------------------------------------------------------


def test_a_stop_before_the_first_epoch_keeps_every_metric_name_with_no_values():
    # FitResult: "metrics: per-epoch arrays of shape (epochs,): step_loss_mean ... and, for
    # each eval_data entry name, {name}_loss and {name}_accuracy"; before: metrics == {}
    model, params, X, y = _problem()
    flag = StopFlag()
    flag.request("test")
    with pytest.raises(TrainingStopped) as err:
        nnjax.fit(model, params, X, y, epochs=3, batch_size=16, eval_data={"val": (X, y)},
                  stop=flag)  # fmt: skip
    r = err.value.result
    assert err.value.epochs_done == 0 and r.step_loss.shape == (0,)
    assert sorted(r.metrics) == ["step_loss_mean", "val_accuracy", "val_loss"]
    assert all(v.shape == (0,) for v in r.metrics.values())
    assert "epochs 0 x 0 steps" in repr(r)


def test_step_loss_is_every_step_before_its_update_in_fits_order():
    # FitResult: step_loss (epochs * steps_per_epoch,), each taken before its update, in
    # order; step_loss_mean the mean of the epoch's step losses. Oracle: make_train_step
    # replayed over run_batch_indices (the documented order); max error 0.
    model, params, X, y = _problem()
    r = nnjax.fit(model, params, X, y, epochs=3, batch_size=16, key=7, optimizer="sgd",
                  learning_rate=0.1, eval_data={"val": (X, y)})  # fmt: skip
    assert r.step_loss.shape == (9,)
    assert {k: v.shape for k, v in r.metrics.items()} == dict.fromkeys(
        ("step_loss_mean", "val_accuracy", "val_loss"), (3,)
    )
    opt = nnjax.get_optimizer("sgd", 0.1)
    step = nnjax.make_train_step(model, "softmax_cross_entropy", opt)
    p, s, losses = params, opt.init(params), []
    for rows in run_batch_indices(7, 3, len(X), 16):
        p, s, loss = step(p, s, (X[rows], y[rows]))
        losses.append(float(loss))
    np.testing.assert_array_equal(r.step_loss, np.float32(losses))
    assert _max_diff(p, r.params) == 0.0
    np.testing.assert_allclose(r.metrics["step_loss_mean"], r.step_loss.reshape(3, 3).mean(1),
                               rtol=1e-6)  # fmt: skip
    assert r.metrics["val_loss"][-1] == pytest.approx(nnjax.evaluate(model, p, X, y)["loss"])


def test_early_stopping_best_epoch_and_carry_follow_the_documented_rule():
    # early.py: epoch e improves when m_e < m* - min_delta ("min"; "max" for *_accuracy);
    # stop after `patience` epochs without; the carry returned is best_epoch's (1-based)
    model, params, X, y = _problem(n=96)
    Xv, yv = _problem(n=64, seed=1)[2:]
    for rule in (EarlyStopping(2, "val_loss", min_delta=0.01), EarlyStopping(2, "val_accuracy")):
        r = nnjax.fit(model, params, X, y, epochs=15, batch_size=32, learning_rate=0.05,
                      eval_data={"val": (Xv, yv)}, early_stopping=rule)  # fmt: skip
        best, best_epoch, wait, ran = None, None, 0, 0
        for e, v in enumerate(r.metrics[rule.metric], 1):
            lower = best is None or v < best - rule.min_delta
            higher = best is None or v > best + rule.min_delta
            if lower if rule.direction == "min" else higher:
                best, best_epoch, wait = v, e, 0
            else:
                wait += 1
            ran = e
            if wait >= rule.patience:
                break
        assert (r.best_epoch, len(r.metrics[rule.metric])) == (best_epoch, ran)
        assert r.step_loss.shape == (ran * 3,)
        got = nnjax.evaluate(model, r.params, Xv, yv)["loss"]
        assert got == pytest.approx(float(r.metrics["val_loss"][r.best_epoch - 1]), rel=1e-6)


# --- evaluate, Predictor -----------------------------------------------------------------


@pytest.mark.parametrize(
    "loss, out", [("softmax_cross_entropy", 3), ("binary_cross_entropy_with_logits", 1),
                  ("mse", 1)],
)  # fmt: skip
def test_evaluate_matches_a_numpy_recomputation(loss, out):
    # evaluate: "Loss and accuracy ... as Python floats"; accuracy: argmax for K > 1, else
    # pred > 0 (logits) or 0.5 (mse). Measured max error 3e-8.
    model, params, X, y = _problem(out=out)
    y = y if out > 1 else y.astype(np.float32)
    if out > 1:
        y = (y + (X[:, 2] > 1)).astype(np.int32)
    ev = nnjax.evaluate(model, params, X, y, loss)
    assert set(ev) == {"loss", "accuracy"} and all(type(v) is float for v in ev.values())
    z = _np_forward(params, X)
    if out > 1:
        m = z.max(1)
        L = np.mean(np.log(np.exp(z - m[:, None]).sum(1)) + m - z[np.arange(len(y)), y])
        A = np.mean(z.argmax(1) == y)
    elif loss == "mse":
        L, A = np.mean((z[:, 0] - y) ** 2), np.mean((z[:, 0] > 0.5) == (y > 0.5))
    else:
        z = z[:, 0]
        L = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        A = np.mean((z > 0) == (y > 0.5))
    assert ev["loss"] == pytest.approx(L, abs=1e-6) and ev["accuracy"] == pytest.approx(A)


@pytest.mark.parametrize("loss, out", [("softmax_cross_entropy", 3),
                                       ("binary_cross_entropy_with_logits", 1)])  # fmt: skip
def test_predictor_outputs_probabilities_and_names_match_numpy(tmp_path, loss, out):
    # predictor.py: z = f(params, (X - mean) / std); predict_proba softmax(z) or
    # [1 - sigmoid(z), sigmoid(z)] (n, K); predict the names (n,). Max errors 3e-7, 2e-8.
    model, params, X, _ = _problem(out=out)
    st = data.Standardizer.fit(X * 3.0 + 1.0)
    names = ["a", "b", "c"][: max(out, 2)]
    p = nnjax.load(nnjax.save(tmp_path / "m", model, params, standardizer=st,
                              label_names=names, loss=loss))  # fmt: skip
    raw = np.random.default_rng(5).normal(size=(7, 3)) * 3.0 + 1.0
    z = _np_forward(params, (raw - st.mean) / st.std)
    if out > 1:
        e = np.exp(z - z.max(1, keepdims=True))
        P = e / e.sum(1, keepdims=True)
    else:
        q = 1.0 / (1.0 + np.exp(-z[:, 0]))
        P = np.stack([1 - q, q], axis=1)
    got = p(raw)
    assert got.shape == (7, out) and got.dtype == np.float32
    np.testing.assert_allclose(got, z, atol=1e-5)
    np.testing.assert_allclose(p.predict_proba(raw), P, atol=1e-6)
    assert p.predict_proba(raw).shape == (7, len(names))
    np.testing.assert_array_equal(p.predict(raw), np.asarray(names)[P.argmax(1)])


# --- optimizers --------------------------------------------------------------------------


def _run(opt, steps=3):
    p = {"w": jnp.array([1.0, -2.0, 3.0])}
    g = {"w": jnp.array([0.5, 0.1, -0.3])}
    s = opt.init(p)
    for _ in range(steps):
        u, s = opt.update(g, s, p)
        p = optax.apply_updates(p, u)
    return np.asarray(p["w"])


def test_default_rates_and_hyperparameters_are_optaxs():
    # DEFAULT_LEARNING_RATE and the factories' defaults against Optax's own; max error 0
    ref = {"gd": optax.sgd(1e-2), "sgd": optax.sgd(1e-2),
           "momentum": optax.sgd(1e-2, momentum=0.9),
           "nesterov": optax.sgd(1e-2, momentum=0.9, nesterov=True),
           "adam": optax.adam(1e-3), "adamw": optax.adamw(1e-3),
           "rmsprop": optax.rmsprop(1e-2), "adagrad": optax.adagrad(1e-2)}  # fmt: skip
    assert set(ref) == set(optim.OPTIMIZERS)
    for name, opt in ref.items():
        mine = nnjax.get_optimizer(name, optim.DEFAULT_LEARNING_RATE[name])
        np.testing.assert_array_equal(_run(mine), _run(opt), err_msg=name)


def test_the_module_docstrings_update_equations():
    # optim.py: rmsprop g / sqrt(s + eps) (s_0 = 0), adagrad g / sqrt(s + eps) (s_0 = 0.1,
    # eps 1e-7), nesterov eta (g + mu v), adamw adam + eta wd theta; max error 3.3e-7
    g, th0 = np.array([0.5, 0.1, -0.3]), np.array([1.0, -2.0, 3.0])
    th, s = th0.copy(), np.zeros(3)
    for _ in range(3):
        s = 0.9 * s + 0.1 * g**2
        th = th - 0.01 * g / np.sqrt(s + 1e-8)
    np.testing.assert_allclose(_run(nnjax.get_optimizer("rmsprop", 0.01)), th, atol=1e-6)
    th, s = th0.copy(), np.full(3, 0.1)
    for _ in range(3):
        s = s + g**2
        th = th - 0.01 * g / np.sqrt(s + 1e-7)
    np.testing.assert_allclose(_run(nnjax.get_optimizer("adagrad", 0.01)), th, atol=1e-6)
    th, v = th0.copy(), np.zeros(3)
    for _ in range(3):
        v = 0.9 * v + g
        th = th - 0.01 * (g + 0.9 * v)
    np.testing.assert_allclose(_run(nnjax.get_optimizer("nesterov", 0.01)), th, atol=1e-6)
    th, m, s = th0.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, 4):
        m, s = 0.9 * m + 0.1 * g, 0.999 * s + 0.001 * g**2
        step = m / (1 - 0.9**t) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
        th = th - 1e-3 * (step + 1e-4 * th)
    np.testing.assert_allclose(_run(nnjax.get_optimizer("adamw", 1e-3)), th, atol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
def test_an_eps_that_is_zero_in_float32_is_refused(name):
    # "eps > 0": 1e-40 is 0 for XLA in float32, and adam's update of a zero gradient was
    # 0/0 = nan; the smallest normal float32 (1.2e-38) still gives finite updates
    with pytest.raises(ValueError, match=rf"^{name}: eps 1e-40 is 0 in float32"):
        nnjax.get_optimizer(name, 1e-3, eps=1e-40)
    opt = nnjax.get_optimizer(name, 1e-3, eps=1.2e-38)
    p, g = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.0, 0.5])}
    u, _ = jax.jit(opt.update)(g, opt.init(p), p)
    assert bool(jnp.isfinite(u["w"]).all())  # adamw's decay moves w[0] by eta wd w


# --- data --------------------------------------------------------------------------------


def test_datasets_shapes_dtypes_class_counts_and_splits():
    # Dataset: X float32 (n, features), y int32; default test_fraction 0.2, ceil'd
    for name, n, f, k in [("toy", 6, 1, 2), ("xor", 4, 2, 2), ("moons", 400, 2, 2),
                          ("spirals", 600, 2, 3), ("digits", 1797, 64, 10)]:  # fmt: skip
        ds = data.load(name)
        n_test = n if name in data.NO_SPLIT else int(np.ceil(0.2 * n))
        assert ds.X_test.shape == (n_test, f) and ds.n_classes == k, name
        assert ds.X_train.dtype == ds.X_test.dtype == np.float32, name
        assert ds.y_train.dtype == ds.y_test.dtype == np.int32, name
        if name not in data.NO_SPLIT:
            assert len(ds.y_train) + n_test == n, name
    # spirals: n // K per arm, one more for the first n mod K; moons: n // 2 of class 0
    assert np.bincount(data.spirals(n=11, n_classes=3)[1]).tolist() == [4, 4, 3]
    assert np.bincount(data.two_moons(n=7)[1]).tolist() == [3, 4]
    # load_splits: val_fraction of the whole set, from load's training split
    s = data.load_splits("moons", val_fraction=0.1)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (280, 40, 80)


def test_help_of_fit_documents_every_argument_once():
    """fit's argument reference sits beside the function and is appended to its docstring:
    ``help(fit)`` names each parameter of the signature once."""
    import inspect

    doc = inspect.getdoc(nnjax.fit)
    names = [n for n in inspect.signature(nnjax.fit).parameters if n not in ("X", "y")]
    starts = [doc.find(f"\n  {n}: ") for n in names]
    assert -1 not in starts, [n for n, s in zip(names, starts) if s == -1]
    assert "\n  X, y: " in doc and all(doc.count(f"\n  {n}: ") == 1 for n in names)


def test_the_docstring_of_fit_is_stored_dedented_on_every_python():
    """Python 3.13 strips a docstring's indentation as it compiles it, 3.11 does not: fit's
    docstring and its appended argument reference are both dedented before they are joined
    (on 3.13 the reference came out 4 spaces deeper than ``Args:`` in ``help(fit)``)."""
    import inspect

    doc = nnjax.fit.__doc__
    assert doc == inspect.cleandoc(doc)
    assert "\nArgs:\n  model: " in doc
