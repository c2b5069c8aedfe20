"""Leftover audit findings: the NumPy loss and Bidirectional twins refuse what nnjax refuses,
empty-input gradients, the consolidation raster's bin, downscaling with biases, the replay
buffer's counts, spirals' smallest n, a schedule's rate in the params' dtype, and the
"compiling" line of ``nnjax train`` after a refused batch split."""

import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import data
from nnjax import losses as L
from nnjax.reference import losses as RL
from nnjax.reference import recurrent as RR

# --- 1. the loss twins refuse what nnjax.losses refuses, in its words ------------------


def _message(f, *args) -> str:
    with pytest.raises(ValueError) as e:
        f(*args)
    return str(e.value)


def test_twin_refuses_integer_one_hot_outside_0_1_as_jax():
    """It returned 1.948 (a 'one-hot' of 2) where nnjax raised."""
    z, t = np.array([[0.5, -1.0]]), np.array([[2, 0]])
    want = _message(L.softmax_cross_entropy, z, t)
    assert _message(RL.softmax_cross_entropy, z, t) == want
    assert _message(RL.softmax_cross_entropy_grad, z, t) == want
    labels = np.array([0, 5])  # labels: the same text as nnjax's too
    z2 = np.zeros((2, 3))
    assert _message(RL.softmax_cross_entropy, z2, labels) == _message(
        L.softmax_cross_entropy, z2, labels
    )
    np.testing.assert_allclose(  # float one-hot of 2 is a weight, not checked: as nnjax
        RL.softmax_cross_entropy(z, np.array([[2.0, 0.0]])),
        L.softmax_cross_entropy(z, np.array([[2.0, 0.0]])),
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize(
    "target", [np.array([2.0]), np.array([-1]), np.array([1.01]), np.array(["a"])]
)
def test_twin_refuses_binary_targets_outside_0_1_as_jax(name, target):
    p = np.array([[0.3]])
    value, grad = RL.get(name)
    want = _message(L.LOSSES[name], p, target)
    assert _message(value, p, target) == want
    assert _message(grad, p, target) == want


def test_twin_accepts_binary_targets_within_the_slack():
    assert RL.TARGET_SLACK == L.TARGET_SLACK
    p, t = np.array([[0.3], [0.6]]), np.array([1.0005, -0.0005])
    np.testing.assert_allclose(
        RL.binary_cross_entropy(p, t), L.binary_cross_entropy(p, t), rtol=1e-6
    )


@pytest.mark.parametrize("name", list(RL.LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_twin_on_empty_input_matches_jax(name, reduction):
    """mse_grad and the binary gradients raised ZeroDivisionError for the mean."""
    value, grad = RL.get(name)
    if name == "softmax_cross_entropy":
        p, t = np.zeros((0, 3)), np.zeros((0,), int)
    else:
        p, t = np.zeros((0,)), np.zeros((0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-slice warning either
        v, g = value(p, t, reduction), grad(p, t, reduction)
    jv = L.LOSSES[name](jnp.asarray(p), t, reduction)
    np.testing.assert_array_equal(v, jv)  # nan for the mean, 0 for the sum, [] for none
    if reduction != "none":
        jg = jax.grad(lambda q: L.LOSSES[name](q, t, reduction))(jnp.asarray(p))
        assert g.shape == jg.shape == p.shape


# --- 2. the Bidirectional twin's merge ---------------------------------------------------


def test_bidirectional_twin_refuses_an_unknown_merge_as_the_layer():
    """merge='max' was summed."""
    want = _message(lambda: nnjax.layers.Bidirectional(nnjax.layers.GRUCell(3), merge="max"))
    assert _message(lambda: RR.bidirectional(RR.gru(), merge="max")) == want
    RR.bidirectional(RR.gru(), merge="sum")


# --- 3. the consolidation raster's bin comes from the monitor and the config -----------


def test_run_consolidation_part_derives_the_raster_bin(monkeypatch):
    """bin_ms was 1.0 whatever the network's dt (1.0 = 10 steps of CORTEX's 0.1 ms)."""
    from nnjax.brain import consolidation, night

    small = consolidation.SMALL_CORTEX._replace(dt=0.05)
    monkeypatch.setattr(consolidation, "SMALL_CORTEX", small)
    seen = {}

    def run_experiment(n_seeds, protocol, cfg, **kw):
        seen["cfg"] = cfg
        return {"recall": {}, "trace": {}, "replay_order": {}}

    monkeypatch.setattr(consolidation, "run_experiment", run_experiment)
    monkeypatch.setattr(night, "experiment_stats", lambda raw: {"recall": {}})
    monkeypatch.setattr(night, "figure_recall", lambda stats: "recall")
    monkeypatch.setattr(night, "figure_replay", lambda raw, p, bin_ms: seen.setdefault("b", bin_ms))
    args = SimpleNamespace(train_s=1.0, consolidation_s=1.0, interference_s=1.0, seeds=1, seed=0)
    night.run_consolidation_part(args, {})
    assert seen["cfg"] is small and seen["b"] == pytest.approx(0.5)


# --- 4. downscaling a converted network with biases --------------------------------------


def test_downscaling_scales_the_biases_so_the_relu_net_keeps_its_answers():
    """Only W was scaled: with an output bias the ReLU network changed its mind at c = 0.1
    (accuracy 1.0 -> 0.5), against the documented contrast."""
    from nnjax.brain import convert as V
    from nnjax.brain import homeostasis as H

    layers = [{"W": jnp.eye(2), "b": jnp.zeros(2)}, {"W": jnp.eye(2), "b": jnp.array([0.5, 0.0])}]
    conv = V.Converted(layers, jnp.ones(3))
    X, y = jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([1, 0])
    s = H.sweep(conv, X, y, 20, factors=[1.0, 0.1], fractions=[0.0])
    np.testing.assert_array_equal(s.down_ann_accuracy, [1.0, 1.0])
    d = H.downscaled(conv, 0.1)  # b_l <- c^l b_l: output c^L times the original
    np.testing.assert_allclose(
        V.ann_forward(d.layers, X), 0.01 * V.ann_forward(layers, X), rtol=1e-6
    )


# --- 5. the replay buffer's counts -------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda B: B.sample_buffer(jax.random.key(0), jnp.zeros((1, 2, 3, 1)),
                                   jnp.ones((1, 2, 3), bool), -1),
         "sample_buffer: n must be an int >= 0, got -1"),
        (lambda B: B.sample_buffer(jax.random.key(0), jnp.zeros((1, 2, 3, 1)),
                                   jnp.ones((1, 2, 3), bool), 2.5),
         "sample_buffer: n must be an int >= 0, got 2.5"),
        (lambda B: B.select_per_class(jax.random.key(0), jnp.array([0, 1]), 2, 0, 3, 1),
         "select_per_class: n_classes must be an int >= 1, got 0"),
        (lambda B: B.select_per_class(jax.random.key(0), jnp.array([0, 1]), 2, 2, 0, 0),
         "select_per_class: capacity must be an int >= 1, got 0"),
    ],
)  # fmt: skip
def test_replay_buffer_counts_are_checked_by_name(call, message):
    """A deep JAX shape error, and an empty buffer without a word."""
    from nnjax.brain import baselines as B

    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        call(B)


# --- 6. spirals need two points per arm ----------------------------------------------------


@pytest.mark.parametrize("n, k", [(3, 3), (5, 3), (3, 2)])
def test_spirals_refuse_an_arm_of_one_point(n, k):
    """n = n_classes put every point at the origin, with every label."""
    with pytest.raises(ValueError, match=f"spirals: n must be an int >= {2 * k}, got {n}"):
        data.spirals(n=n, n_classes=k)


def test_spirals_at_two_points_per_arm_reach_both_ends():
    X, y = data.spirals(n=6, n_classes=3, noise=0.0)
    r = np.hypot(X[:, 0], X[:, 1])
    for c in range(3):
        np.testing.assert_allclose(np.sort(r[y == c]), [0.0, 1.0], atol=1e-12)


# --- 7. a schedule's first rate in the params' dtype --------------------------------------


def test_fit_refuses_a_schedule_whose_first_rate_is_inf_in_the_params_dtype():
    """A float rate of 1e5 was refused for float16 params, a schedule giving 1e5 ran into
    NonFiniteLossError."""
    model = nnjax.models.mlp([2, 2])
    _, params = model.init(jax.random.key(0), (-1, 2))
    params = jax.tree.map(lambda a: a.astype(jnp.float16), params)
    X, y = np.zeros((4, 2), np.float16), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"fit: learning_rate schedule\(0\) = 100000 is "
                       r"infinite in float16 \(largest finite 6.55e\+04\)"):  # fmt: skip
        nnjax.fit(model, params, X, y, optimizer="sgd", epochs=1, batch_size=2,
                  learning_rate=optax.constant_schedule(1e5))  # fmt: skip


def test_get_optimizer_checks_a_schedule_in_the_default_float_calling_it_once():
    calls = []

    def schedule(step):
        calls.append(step)
        return 1e39

    with pytest.raises(ValueError, match=r"schedule\(0\) = 1e\+39 is infinite in float32"):
        nnjax.optim.get_optimizer("sgd", schedule)
    assert len(calls) == 1
    calls.clear()
    nnjax.optim.get_optimizer("sgd", optax.constant_schedule(0.1))


# --- 8. no "compiling" line before a refused batch split -----------------------------------

SPLIT = """
from nnjax.cli import main
print("status", main(["train", "--devices", "4", "--batch-size", "30", "--epochs", "1",
                      "--no-cache"]), flush=True)
"""


def test_train_refuses_a_batch_split_before_saying_it_compiles():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    r = subprocess.run(
        [sys.executable, "-c", SPLIT], env=env, capture_output=True, text=True, timeout=300
    )
    assert "status 2" in r.stdout, (r.stdout, r.stderr)
    assert "compiling" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "nnjax train: error: --batch-size 30 does not split evenly across --devices 4: use a "
        "multiple of 4 (e.g. 28 or 32), or --devices 2, 3, 5 or 6"
    )
