"""Usage mistakes an audit of the CLI found answered in words that did not name the culprit
(or not at all): each is now one line naming the option, before JAX starts."""

import pytest

from nnjax.cli import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_an_abbreviated_option_is_not_taken_for_the_full_one(capsys):
    """Finding: `nnjax train --epoch 2` ran with --epochs 2 (argparse's prefix matching),
    although the top-level parser refuses abbreviations."""
    err = _error(capsys, ["train", "--epoch", "2"])
    assert "unrecognized arguments: --epoch 2; --epoch: did you mean --epochs?" in err


def test_an_override_without_a_value_shows_a_field_the_command_takes(capsys):
    """Finding: the example was learning_rate=1e-4, which --override refuses (the field is lr)."""
    err = _error(capsys, ["train", "--resume", "--override", "lr"])
    assert err.endswith("--override lr: expected FIELD=VALUE, e.g. --override lr=1e-4")


def test_an_override_given_twice_with_two_values_is_refused(capsys):
    """Finding: --override lr=0.1 --override lr=0.2 silently used 0.2."""
    err = _error(capsys, ["train", "--resume", "--override", "lr=0.1", "--override", "lr=0.2"])
    assert err.endswith("--override lr given twice, as 0.1 and 0.2: give one")


@pytest.mark.parametrize("option", ["--out", "--checkpoint-dir"])
def test_a_blank_folder_option_is_named(capsys, option):
    """Finding: `--out ''` said '--out is not writable: No such file or directory'."""
    err = _error(capsys, ["train", option, ""])
    assert err.endswith(f"{option} takes a folder path, got an empty value ('')")


def test_predict_names_a_blank_model_folder(capsys):
    """Finding: `nnjax predict '' ...` said ': no saved model there'."""
    err = _error(capsys, ["predict", "", "--data", "x.csv"])
    assert err.endswith(
        "MODEL (the saved model's folder) takes a folder path, got an empty value ('')"
    )


def test_predict_on_a_checkpoint_folder_says_what_it_holds(tmp_path, capsys):
    (tmp_path / "ckpt_00000002.npz").write_bytes(b"")
    assert main(["predict", str(tmp_path), "--data", "x.csv"]) != 0
    err = capsys.readouterr().err
    assert "not a saved nnjax model (no model.json); it holds training checkpoints" in err
    assert "nnjax train --resume with --out DIR" in err


def test_verify_caps_the_number_of_architectures(capsys):
    """Finding: --architectures 100000000000 built 1e11 steps in a list before the first ran
    (out of memory)."""
    err = _error(capsys, ["verify", "--architectures", "100000000000"])
    assert "--architectures: must be an integer >= 0 and <= 100000" in err


def test_xla_flags_that_stop_the_backend_are_named():
    """Finding: XLA_FLAGS=--xla_force_host_platform_device_count=0 gave a 47-line traceback."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=0")
    env.pop("JAX_PLATFORMS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "nnjax", "info"], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("nnjax info: error: JAX cannot start its backend (")
    assert proc.stderr.rstrip().endswith(
        "check XLA_FLAGS='--xla_force_host_platform_device_count=0'"
    )


@pytest.mark.parametrize(
    "argv, tail",
    [
        (["train", "--out", "{loop}"], "--out {loop} is a symbolic link in a loop (-> {loop})"),
        (["train", "--checkpoint-dir", "{loop}"], "--checkpoint-dir {loop} is a symbolic link"),
        (["compare", "--out", "{loop}"], "--out {loop} is a symbolic link in a loop"),
        (["train", "--data", "{loop}"], "{loop} is a symbolic link in a loop (-> {loop})"),
        (
            ["predict", "{loop}", "--data", "x.csv"],
            "no saved model there (it is a symbolic link in a loop",
        ),
    ],
)
def test_a_symbolic_link_loop_is_named_as_one(tmp_path, capsys, argv, tail):
    """Finding: a link to itself was 'a symbolic link to loop, which does not exist' (--out)
    or 'no such file' (--data): the path exists, as a loop. Exit 3 (a path), errno ELOOP."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    argv = [a.replace("{loop}", str(loop)) for a in argv]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert tail.replace("{loop}", str(loop)) in err, err
    assert err.endswith("(errno 40, ELOOP)"), err
