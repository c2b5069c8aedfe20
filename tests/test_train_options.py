"""nnjax train's training options: each valid value reaches fit, each invalid one is one line
and exit 2 before JAX; weight decay and schedules do what nnjax.optim's docs say."""

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import optim
from nnjax.cli import build_parser, main
from nnjax.commands import train as train_command
from nnjax.commands import train_options


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnjax train: error: "), err
    return lines[0]


BAD = [
    (["--weight-decay", "-1"], "argument --weight-decay: must be a finite number >= 0"),
    (["--weight-decay", "inf"], "argument --weight-decay: must be a finite number >= 0"),
    (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'"),
    (["--warmup", "1.5", "--schedule", "warmup-cosine"], "--warmup: must be a number between"),
    (["--decay-rate", "0"], "argument --decay-rate: must be a number in (0, 1]"),
    (["--early-stopping", "0"], "argument --early-stopping: must be an integer >= 1"),
    (["--lr", "1e-50"], "argument --lr: 1e-50 is 0 in float32, the training dtype"),  # trained
    (["--dropout", "1"], "argument --dropout: must be a rate in [0, 1)"),
    (["--dropout", "-0.1"], "argument --dropout: must be a rate in [0, 1)"),
    (["--warmup", "0.1"], "--warmup is for --schedule warmup-cosine, not constant"),
    (["--decay-rate", "0.9", "--schedule", "cosine"], "--decay-rate is for --schedule exponential"),
    (["--model", "logreg", "--dataset", "moons", "--dropout", "0.2"], "--dropout: for --model mlp"),
    (["--early-stopping", "3"], "--early-stopping watches the validation loss: give a valid"),
    (
        ["--early-stopping", "3", "--val-split", "0.2", "--checkpoint-dir", "/tmp/x", "--resume"],
        "--early-stopping cannot resume a run",
    ),
    (  # review: a stopped run printed a command to resume it that was then refused
        ["--early-stopping", "3", "--val-split", "0.2", "--checkpoint-dir", "/tmp/x"],
        "--early-stopping with --checkpoint-dir: a run with early stopping cannot be resumed",
    ),
]


@pytest.mark.parametrize("argv, message", BAD)
def test_bad_training_options_are_one_line_before_jax(argv, message, capsys):
    jax_loaded = "jax" in sys.modules
    assert main(["train", *argv]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert message in line, line
    if not jax_loaded:  # only meaningful when this test runs first in its process
        assert "jax" not in sys.modules


def test_tensorboard_without_its_extra_names_the_extra(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorboardX" else real(n, *a)
    )
    assert main(["train", "--tensorboard", "/tmp/tb"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "tensorboardX, which is not installed" in line and "nnjax[tensorboard]" in line


def test_help_shows_the_training_options_with_defaults(capsys):
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "--weight-decay L",
        "(default: 0.0)",
        "--schedule {constant,cosine,warmup-cosine,exponential}",
        "(default: constant)",
        "(default: 0.05)",
        "(default: 0.95)",
        "--early-stopping PATIENCE",
        "(default: off)",
        "--dropout RATE",
        "--tensorboard DIR",
    ):
        assert text in out, text


def _args(argv):
    args = build_parser(["train"]).parse_args(["train", *argv])
    train_command.check(args)
    return args


def test_fit_options_plain_when_nothing_is_on():
    kw = train_options.fit_options(_args(["--dataset", "moons"]), 320, 32)
    assert kw == {"dropout": False, "optimizer": "adam", "learning_rate": 0.01}


def test_fit_options_schedule_weight_decay_early_stopping_dropout():
    argv = ["--dataset", "moons", "--val-split", "0.2", "--epochs", "10", "--lr", "0.1"]
    argv += ["--schedule", "exponential", "--decay-rate", "0.5", "--weight-decay", "0.01"]
    args = _args([*argv, "--early-stopping", "4", "--dropout", "0.3", "--optimizer", "sgd"])
    kw = train_options.fit_options(args, 240, 32)  # 7 steps per epoch
    assert kw["learning_rate"] is None and kw["dropout"] is True
    assert kw["early_stopping"].patience == 4 and kw["early_stopping"].metric == "val_loss"
    lrs = train_options.learning_rates_per_epoch(args, 240, 32, 10)
    np.testing.assert_allclose(lrs, [0.1 * 0.5 ** ((7 * (e + 1) - 1) / 7) for e in range(10)], 1e-6)
    # sgd with weight decay: theta <- theta - eta_t (g + lambda theta); g = 0 here
    params = {"w": jnp.array([1.0, -2.0])}
    opt = kw["optimizer"]
    updates, _ = opt.update({"w": jnp.zeros(2)}, opt.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.01 * np.array([1.0, -2.0]), rtol=1e-6)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_weight_decay_with_a_zero_gradient(name):
    """With g = 0: decoupled decay (adam, adamw) and plain gradient descent step by exactly
    -eta lambda theta; L2 (momentum, nesterov, rmsprop, adagrad) is the base optimizer's
    step on the gradient lambda theta (nesterov's first step: -eta (1 + mu) lambda theta)."""
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    opt = optim.with_weight_decay(name, 0.1, 0.01)
    updates, _ = opt.update({"w": jnp.zeros(3)}, opt.init(params), params)
    if "L2" in optim.WEIGHT_DECAY[name] and name not in ("gd", "sgd"):
        base = optim.get_optimizer(name, 0.1)
        want, _ = base.update({"w": 0.01 * params["w"]}, base.init(params), params)
        np.testing.assert_allclose(updates["w"], want["w"], rtol=1e-6)
    else:
        np.testing.assert_allclose(updates["w"], -0.1 * 0.01 * params["w"], rtol=1e-6)
    if name == "nesterov":
        np.testing.assert_allclose(updates["w"], -0.1 * 1.9 * 0.01 * params["w"], rtol=1e-6)


def test_weight_decay_zero_is_the_plain_optimizer_and_adam_becomes_adamw():
    assert optim.with_weight_decay("sgd", 0.1, 0.0) is not None
    params = {"w": jnp.array([3.0])}
    g = {"w": jnp.array([0.5])}
    a = optim.with_weight_decay("adam", 1e-3, 0.1)
    b = optax.adamw(1e-3, weight_decay=0.1)
    np.testing.assert_array_equal(a.update(g, a.init(params), params)[0]["w"],
                                  b.update(g, b.init(params), params)[0]["w"])  # fmt: skip


def test_adamw_records_the_weight_decay_it_applies():
    """with_weight_decay('adamw', lr, 0.0) decayed at adamw's own 1e-4 and recorded 0.0 (so
    did `nnjax train --optimizer adamw --schedule cosine`, whose --weight-decay defaulted
    to 0.0); now None keeps 1e-4, recorded as such, and 0 turns it off."""
    params, g = {"w": jnp.array([3.0])}, {"w": jnp.array([0.0])}

    def step(opt):
        return opt.update(g, opt.init(params), params)[0]["w"]

    own = optim.with_weight_decay("adamw", 1e-3, None)
    assert own.recipe["weight_decay"] == optim.ADAMW_WEIGHT_DECAY == 1e-4
    np.testing.assert_array_equal(step(own), step(optax.adamw(1e-3, weight_decay=1e-4)))
    off = optim.with_weight_decay("adamw", 1e-3, 0.0)
    assert off.recipe["weight_decay"] == 0.0 and float(step(off)[0]) == 0.0
    cli = _args(["--optimizer", "adamw", "--schedule", "cosine"])
    assert cli.weight_decay is None  # adamw's own: the options no longer say 0.0


def test_schedules_follow_their_formulas():
    T, eta = 100, 0.2
    cos = optim.make_schedule("cosine", eta, total_steps=T)
    wc = optim.make_schedule("warmup-cosine", eta, total_steps=T, warmup=0.1)
    for t in (0, 10, 37, 99):
        want = eta * (1 + math.cos(math.pi * t / T)) / 2
        assert float(cos(t)) == pytest.approx(want, rel=1e-5, abs=1e-7)  # float32 cos
        want = eta * t / 10 if t < 10 else eta * (1 + math.cos(math.pi * (t - 10) / 90)) / 2
        assert float(wc(t)) == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert optim.make_schedule("constant", eta, total_steps=T) == eta
    with pytest.raises(ValueError, match="unknown schedule 'step'; valid: constant, cosine"):
        optim.make_schedule("step", eta, total_steps=T)


def test_dropout_puts_dropout_layers_in_the_mlp():
    args = _args(["--dataset", "moons", "--dropout", "0.25", "--hidden", "8,8"])
    ds = type("DS", (), {"n_classes": 2, "name": "moons"})()
    model, _ = train_command.build(args, ds)
    assert model.name.count("Dropout(0.25)") == 2 and model.spec[1]["dropout"] == 0.25
    _, p = model.init(jax.random.key(0), (-1, 2))
    x = jnp.ones((4, 2))
    assert not np.array_equal(model.apply(p, x, key=jax.random.key(1)), model.apply(p, x))


RESUMED = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32"]


@pytest.mark.parametrize(
    "first, then, field",
    [
        (["--schedule", "cosine"], ["--schedule", "exponential"], "optimizer.learning_rate"),
        (["--weight-decay", "0.01"], ["--weight-decay", "0.5"], "optimizer.weight_decay: 0.01"),
        (
            ["--weight-decay", "0.01"],
            ["--weight-decay", "0.01", "--lr", "0.5"],
            "optimizer.learning_rate: 0.01 -> 0.5",
        ),  # fmt: skip
    ],
)
def test_a_resume_with_another_schedule_or_weight_decay_is_refused(
    first, then, field, tmp_path, capsys
):
    """Review: with --schedule or --weight-decay the checkpoint recorded the optimizer as an
    undescribable Optax transformation, so any other schedule, rate or decay resumed."""
    d = str(tmp_path / "ck")
    assert main([*RESUMED, "--epochs", "2", *first, "--checkpoint-dir", d]) == 0
    capsys.readouterr()
    assert main([*RESUMED, "--epochs", "2", *then, "--checkpoint-dir", d, "--resume"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress line
    assert line.startswith("nnjax train: error: cannot resume from "), line
    assert "the configuration differs" in line and field in line, line
    assert main([*RESUMED, "--epochs", "2", *first, "--checkpoint-dir", d, "--resume"]) == 0


def test_a_resume_that_finds_no_checkpoint_keeps_a_saved_model(tmp_path, capsys):
    """Review: --resume with an empty --checkpoint-dir started a new run and replaced the
    model saved in --out without --overwrite."""
    out, d = tmp_path / "keep", str(tmp_path / "ck")
    assert main([*RESUMED, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "params.npz").read_bytes()
    capsys.readouterr()
    argv = [*RESUMED, "--epochs", "2", "--seed", "5", "--out", str(out), "--checkpoint-dir", d]
    assert main([*argv, "--resume"]) == 2
    assert "already holds a saved model" in capsys.readouterr().err
    assert (out / "params.npz").read_bytes() == before
    assert main([*argv, "--resume", "--overwrite"]) == 0
    assert (out / "params.npz").read_bytes() != before
