"""``nnjax train --model cnn|gru|resmlp|logreg|mlp`` on paths a user with their own data takes:
each refusal is one line naming what the user gave (the option, or the ``--override`` that set
it) and says nothing untrue about the model."""

import numpy as np
import pytest

from nnjax.cli import main


@pytest.fixture
def own_data(tmp_path):
    """A tiny own data file: 24 examples of 7 features (a prime: no stride divides it), 3
    classes."""
    rng = np.random.default_rng(0)
    path = tmp_path / "own.npz"
    np.savez(path, X=rng.normal(size=(24, 7)).astype(np.float32), y=np.arange(24) % 3)
    return str(path)


def _error(argv, capsys) -> str:
    """The one error line of a refused ``nnjax train`` (exit status 2), and no traceback."""
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("nnjax train: error: "), err
    return line.removeprefix("nnjax train: error: ")


@pytest.mark.parametrize("model", ["cnn", "gru", "resmlp"])
def test_an_override_of_the_activation_is_named_as_the_override(model, tmp_path, capsys):
    # the user gave no --activation: the refusal used to name it ("--activation: not for
    # --model cnn"), sending them to look for an option they never typed
    argv = ["--model", model, "--checkpoint-dir", str(tmp_path / "ckpt"), "--resume"]
    line = _error([*argv, "--override", "activation=tanh"], capsys)
    assert line.startswith(f"--override activation=tanh: not for --model {model} "), line
    assert "--activation is for --model mlp" in line


def test_an_activation_given_directly_is_still_named_as_the_option(capsys):
    line = _error(["--model", "gru", "--activation", "tanh"], capsys)
    assert line.startswith("--activation: not for --model gru "), line


@pytest.mark.parametrize("model", ["cnn", "gru"])
def test_dropout_refused_for_cnn_and_gru_without_claiming_no_hidden_layer(model, own_data, capsys):
    # cnn (3 convolutions) and gru (a recurrent layer) have hidden layers: they have no
    # Dropout layers; the refusal used to say "{model} has no hidden layer to drop"
    line = _error(["--data", own_data, "--model", model, "--dropout", "0.2"], capsys)
    assert line.startswith("--dropout: for --model mlp, resmlp only; "), line
    assert "no hidden layer" not in line and "no dropout layers" in line, line


def test_dropout_refused_for_logreg_names_its_missing_hidden_layer(own_data, capsys):
    line = _error(["--data", own_data, "--model", "logreg", "--dropout", "0.2"], capsys)
    assert line.endswith("logreg has no hidden layer to drop"), line


@pytest.mark.parametrize(
    "model, option, value, shape",
    [
        ("cnn", "--channels", "3000000000", "(3, 3000000000, 3000000000)"),
        ("gru", "--hidden", "99999999999999999999", "(1, 299999999999999999997)"),
        ("resmlp", "--hidden", "9999999999999", "(9999999999999, 9999999999999)"),
        ("mlp", "--hidden", "99999999999999999999", "(7, 99999999999999999999)"),
    ],
)
def test_a_width_past_what_an_array_holds_names_the_option(
    model, option, value, shape, own_data, capsys
):
    # a weight of more than 2^63 - 1 elements used to be refused by the layer deep inside,
    # "layer 1 (Conv(3000000000, 5)): ...: W: initializer he_normal: ...", naming no option
    argv = ["--data", own_data, "--model", model, option, value, "--epochs", "1"]
    line = _error(argv, capsys)
    assert line.startswith(f"{option} {value}: --model {model} cannot be built: "), line
    assert f"shape {shape} has" in line and "more than an array can hold (2^63 - 1)" in line
    assert line.endswith(f"; use a smaller {option}"), line
