"""Small faults in the command-line layer that the suite let pass: each test here fails with
one such fault (a bound moved by one, an option's check dropped, an environment variable
read otherwise, a signal handler not put back) and passes on the code. The oracles are the
one-line errors and exit statuses of ``nnjax`` (its ``main`` called in-process), the values
the parser hands the command, and the documented rules of the modules."""

import os
import subprocess
import sys

import pytest

from nnjax.cli import build_parser, main


def _parsed(argv: list[str]):
    """The namespace the parser hands the command ``argv[0]`` (no check, no run)."""
    return build_parser(argv[:1]).parse_args(argv)


def _error_line(capsys, argv: list[str]) -> str:
    """``nnjax argv`` in-process: exit 2 and one line on stderr, returned."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnjax {argv[0]}: error: "), lines
    return lines[0]


# --- each option's range: the valid bound is taken, the one outside refused ---------------

ACCEPTED = [  # (argv, dest, value): the closed end of each documented range
    (["train", "--seed", "4294967295"], "seed", 2**32 - 1),  # "[0, 2**32 - 1]"
    (["train", "--schedule", "exponential", "--decay-rate", "1"], "decay_rate", 1.0),  # (0, 1]
    (["train", "--dropout", "0"], "dropout", 0.0),  # [0, 1)
    (["train", "--weight-decay", "0"], "weight_decay", 0.0),  # >= 0
    (["compare", "--val-fraction", "0"], "val_fraction", 0.0),  # [0, 1), "0: none"
]


@pytest.mark.parametrize("argv, dest, value", ACCEPTED)
def test_the_closed_end_of_each_range_is_accepted(argv, dest, value):
    assert getattr(_parsed(argv), dest) == value


REFUSED = [  # (argv, the error's text): the open end of each range
    (["train", "--test-split", "0"], "argument --test-split: must be a number between 0 and 1"),
    (["train", "--val-split", "0"], "argument --val-split: must be a number between 0 and 1"),
    (
        ["train", "--schedule", "warmup-cosine", "--warmup", "0"],
        "argument --warmup: must be a number between 0 and 1, got '0'",
    ),
    (["train", "--divergence-factor", "1"], "argument --divergence-factor: must be a finite "),
    (["train", "--seed", "4294967296"], "argument --seed: must be at most 2**32 - 1"),
    (["train", "--lr", "inf"], "argument --lr: must be a finite number > 0, got 'inf'"),
]


@pytest.mark.parametrize("argv, text", REFUSED)
def test_the_open_end_of_each_range_is_refused_naming_the_option(argv, text, capsys):
    assert text in _error_line(capsys, argv)


def test_a_validation_and_test_split_summing_to_one_are_refused(capsys):
    """0.8 + the default test split 0.2 is exactly 1.0: nothing is left to train on."""
    line = _error_line(capsys, ["train", "--dataset", "moons", "--val-split", "0.8"])
    assert line.endswith("--val-split 0.8 + --test-split 0.2 >= 1: nothing is left to train on")


# --- NNJAX_CACHE_DIR=off, whatever its case and spacing ---------------------------------


@pytest.mark.parametrize("value", ["OFF", "Off", "  off  ", "off\n"])
def test_nnjax_cache_dir_off_in_any_case_and_spacing_turns_the_cache_off(value, monkeypatch):
    from nnjax.cache import resolve_cache_dir

    monkeypatch.setenv("NNJAX_CACHE_DIR", value)
    assert resolve_cache_dir() is None


# --- an option's value '--' given with '=': checked as any other value -------------------

DOUBLE_DASH = [  # Python 3.11's argparse stored [] for these, past the type and the choices
    (["train", "--lr=--"], "argument --lr: must be a finite number > 0, got '--'"),
    (["train", "--dataset=--"], "argument --dataset: invalid choice: '--'"),
    (["train", "--activation=--"], "argument --activation: unknown activation '--'"),
    (["train", "--seed=--"], "argument --seed: must be a non-negative integer"),
]


@pytest.mark.parametrize("argv, text", DOUBLE_DASH)
def test_a_double_dash_value_after_equals_is_checked_as_a_value(argv, text, capsys):
    """Finding: ``nnjax train --lr=--`` ended in a TypeError traceback (exit 1), ``--out=--``
    in an AttributeError, and ``--dataset=--`` trained on the default dataset."""
    assert text in _error_line(capsys, argv)


def test_a_double_dash_value_after_equals_is_a_path():
    assert _parsed(["train", "--out=--"]).out == "--"
    assert _parsed(["train", "--resume=--"]).resume == "--"  # was True: the newest checkpoint


def test_the_end_of_options_marker_after_an_option_gets_no_value_hint(capsys):
    """'--' ends the options: it is no value read as an option, and ``--lr=--`` no remedy."""
    line = _error_line(capsys, ["train", "--lr", "--"])
    assert line.endswith("error: argument --lr: expected one argument (see nnjax train --help)")


# --- --decay-rate goes with the exponential schedule only ---------------------------------


@pytest.mark.parametrize("schedule", ["constant", "cosine", "warmup-cosine"])
def test_a_decay_rate_is_refused_with_every_schedule_but_exponential(schedule, capsys):
    argv = ["train", "--schedule", schedule, "--decay-rate", "0.9"]
    line = _error_line(capsys, argv)
    assert line.endswith(f"--decay-rate is for --schedule exponential, not {schedule}")


# --- night's seconds and sleep's runs -------------------------------------------------


@pytest.mark.parametrize("text", ["0.03", "0.29", "0.57", "1.13"])
def test_a_whole_number_of_10_ms_is_accepted_whatever_its_float_rounding(text):
    """0.29 / 0.01 is 28.999999999999996 in floats: still 29 bins."""
    from nnjax.commands.night import seconds

    assert seconds(text) == float(text)


def test_a_fraction_of_10_ms_is_refused(capsys):
    line = _error_line(capsys, ["night", "--epoch-s", "0.015"])
    assert "argument --epoch-s: must be a whole number of 10 ms" in line and "'0.015'" in line


def test_one_order_and_one_seed_are_refused_and_the_last_order_is_taken(capsys, monkeypatch):
    from nnjax.commands import sleep

    monkeypatch.setattr(sleep, "run", lambda args: pytest.fail("the study ran"))
    line = _error_line(capsys, ["sleep", "--orders", "7", "--seeds", "1"])
    assert "--orders 7 x --seeds 1 gives 1 run; the std, CI and paired tests need at" in line
    assert _parsed(["sleep", "--orders", "4294967295,0"]).orders == [2**32 - 1, 0]


# --- signals: the handlers a command replaced are put back ------------------------------


def test_signals_unwind_puts_back_the_handlers_it_replaced():
    import signal

    from nnjax.cli_signals import signals_unwind

    def mine(signum, frame):
        pass

    before = {s: signal.signal(s, mine) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with signals_unwind("info"):
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGHUP) is mine
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_sigint_unwinds_as_keyboard_interrupt_and_the_others_as_their_number():
    import signal

    from nnjax.cli_signals import signal_exception
    from nnjax.errors import Interrupted, exit_code

    ctrl_c = signal_exception(signal.SIGINT)
    assert type(ctrl_c) is KeyboardInterrupt and exit_code(ctrl_c) == 130
    term = signal_exception(signal.SIGTERM)
    assert isinstance(term, Interrupted) and exit_code(term) == 128 + signal.SIGTERM


# --- resuming a run ----------------------------------------------------------------------


def test_a_folder_with_only_an_uncommitted_checkpoint_is_no_checkpoint(tmp_path, capsys):
    """A ``.npz`` without its ``.json`` is a save cut short: nothing to resume from."""
    (tmp_path / "ckpt_00000001.npz").write_bytes(b"")
    assert main(["train", "--resume", str(tmp_path)]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"nnjax train: error: cannot resume from {tmp_path}: no checkpoint in this folder "
        "(errno 2, ENOENT)"
    )


def test_the_resume_command_keeps_the_option_after_a_bare_resume():
    from types import SimpleNamespace

    from nnjax.commands.train_safety import resume_command

    args = SimpleNamespace(_argv=["train", "--checkpoint-dir", "c", "--resume", "--epochs", "3"])
    assert resume_command(args) == "nnjax train --checkpoint-dir c --epochs 3 --resume"
    args = SimpleNamespace(_argv=["train", "--resume", "c/ckpt_00000002.npz", "--epochs", "3"])
    want = "nnjax train --epochs 3 --resume c/ckpt_00000001.npz"
    assert resume_command(args, "c/ckpt_00000001.npz") == want


# --- the wording of blank values; mnist1d's data seed; info's devices ------------------


def test_blank_values_are_counted_in_characters(capsys):
    assert "only whitespace (1 character)" in _error_line(capsys, ["train", "--out", " "])
    assert "only whitespace (2 characters)" in _error_line(capsys, ["train", "--out", "  "])


def test_a_data_seed_for_mnist1d_without_a_validation_split_is_refused(capsys):
    line = _error_line(capsys, ["train", "--dataset", "mnist1d", "--data-seed", "3"])
    assert "--data-seed 3: mnist1d is its canonical split (4000 train / 1000 test" in line


def test_info_lists_the_devices_as_words(capsys):
    import jax

    assert main(["info"]) == 0  # the cache stays off (NNJAX_CACHE_DIR=off, tests/conftest.py)
    want = "devices      " + ", ".join(str(d) for d in jax.devices())
    assert want in capsys.readouterr().out.splitlines()


def test_a_bad_output_folder_fails_before_jax_is_imported_leaving_no_folder(tmp_path):
    """--checkpoint-dir under a file: the one-line error (exit 3) came only after the
    compilation cache had imported JAX (1.5 s here); now before, and the --out folder the
    check made on the way is gone again, as is the cache folder it never needed."""
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "ck"
    argv = ["train", "--out", str(tmp_path / "new" / "out"), "--checkpoint-dir", str(bad)]
    script = (
        "import sys; from nnjax.cli import main; print(main(sys.argv[1:]), 'jax' in sys.modules)"
    )
    env = {**os.environ, "NNJAX_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert proc.stdout.split() == ["3", "False"], proc.stderr
    assert proc.stderr == (
        f"nnjax train: error: --checkpoint-dir {bad} is not writable: a component of the path "
        "is a file, not a directory (errno 20, ENOTDIR)\n"
    )
    assert os.listdir(tmp_path) == ["file"]
