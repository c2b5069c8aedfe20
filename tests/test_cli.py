"""The nnjax command: train writes its outputs; info; clear errors for bad options."""

import json

import pytest

from nnjax.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jax" in out and "backend" in out and "cpu" in out


def test_train_writes_params_history_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--dataset",
            "moons",
            "--hidden",
            "16",
            "--epochs",
            "3",
            "--batch-size",
            "64",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "test loss" in text and "compile" in text
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["epochs"]["test_accuracy"]) == 3
    assert (out / "params.npz").stat().st_size > 0
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_train_logreg_on_a_binary_dataset(capsys):
    assert (
        main(
            [
                "train",
                "--dataset",
                "moons",
                "--model",
                "logreg",
                "--optimizer",
                "gd",
                "--lr",
                "0.5",
                "--epochs",
                "20",
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--hidden", "64,x"], "--hidden takes comma-separated ints"),
        (["train", "--epochs", "0"], "--epochs must be >= 1"),
        (["train", "--lr", "-1"], "learning_rate must be > 0"),
        (["train", "--model", "logreg"], "needs a binary dataset"),
    ],
)
def test_bad_options_give_a_clear_error(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_unknown_choice_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--optimizer", "adamm"])
    assert "invalid choice" in capsys.readouterr().err
