"""fit's refusals, and a model too large for memory, reach the command line in the
options' words: `--epochs`, `--seed`, `--devices`, `--hidden`, not fit's argument names
(``fit: ... past epochs=1``, ``batch_size=32``) or XLA's ``out of memory``."""

import os
import subprocess
import sys

import pytest

from nnjax.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 2-epoch run with its checkpoints (the folder to resume from)."""
    root = tmp_path_factory.mktemp("resume")
    ck = root / "ck"
    assert main(["train", "--epochs", "2", "--checkpoint-dir", str(ck), "--no-cache"]) == 0
    return ck


def _resume_error(capsys, ck, *extra) -> str:
    capsys.readouterr()
    argv = ["train", "--checkpoint-dir", str(ck), "--resume", "--no-cache", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fit:" not in err and "epochs=" not in err, err
    return err


def test_a_resume_past_the_asked_epochs_names_epochs(run_dir, capsys):
    err = _resume_error(capsys, run_dir, "--epochs", "1")
    assert err.endswith("is at epoch 2, past --epochs 1: resume with --epochs 2 or more"), err
    assert "ckpt_00000002.npz" in err


def test_a_resume_with_another_seed_names_seed(run_dir, capsys):
    err = _resume_error(capsys, run_dir, "--epochs", "3", "--seed", "5")
    assert "it was written with another --seed (this command: --seed 5)" in err, err


def test_a_resume_on_another_split_names_the_data_options(run_dir, capsys):
    err = _resume_error(capsys, run_dir, "--epochs", "3", "--data-seed", "3")
    assert "it was written with other training data" in err, err
    assert "--test-split, --val-split and --data-seed" in err


SPLITS = """
from nnjax.cli import main
for argv in (["--devices", "3"], ["--devices", "2", "--optimizer", "gd"],
             ["--devices", "7", "--batch-size", "36"]):
    print("status", main(["train", "--epochs", "1", "--no-cache", *argv]), flush=True)
"""


def test_a_batch_that_does_not_split_across_devices_names_the_options():
    # 8 host devices added to the suite's XLA flags (tests/conftest.py): the child compiles
    # its params' init at the suite's fast optimisation level too (6.9 s of CPU at XLA's
    # defaults, 4.4 s so); the refusals it checks come before any training
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8"
    env = dict(os.environ, XLA_FLAGS=flags.strip())
    r = subprocess.run(
        [sys.executable, "-c", SPLITS], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.stdout.split().count("status") == 3 and r.stdout.count("status 2") == 3, r.stdout
    errors = [line for line in r.stderr.splitlines() if line.startswith("nnjax train: error:")]
    assert errors == [
        "nnjax train: error: --batch-size 32 does not split evenly across --devices 3: use a "
        "multiple of 3 (e.g. 30 or 33), or --devices 2 or 4",
        "nnjax train: error: the full batch (1437 training examples) does not split evenly "
        "across --devices 2: use --devices 3",
        "nnjax train: error: --batch-size 36 does not split evenly across --devices 7: use a "
        "multiple of 7 (e.g. 35 or 42), or --devices 2, 3, 4 or 6",
    ], r.stderr


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--hidden", "100000,100000"], "--hidden 100000,100000"),
        (["--model", "cnn", "--channels", "100000"], "--channels 100000"),
        (["--model", "gru", "--hidden", "30000"], "--hidden 30000"),
    ],
)
def test_a_model_too_large_for_memory_names_its_size_option(capsys, tmp_path, argv, option):
    """Finding: `--hidden 100000,100000` ended as `out of memory: Out of memory allocating
    40000000000 bytes` (exit 3) after JAX tried, naming no option. Counted with eval_shape
    now, allocating nothing."""
    assert main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"nnjax train: error: {option}: --model "), err
    assert "parameters; training them needs about" in err and "use a smaller" in err
    assert not (tmp_path / "o").exists()
