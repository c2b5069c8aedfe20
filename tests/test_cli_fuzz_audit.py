"""Findings of a fuzzer that ran ``python -m nnjax <command>`` with hostile option values:
a value that starts with '-' but is no number argparse knows (``-inf``, ``-1e-3``) was read
as an option, and the error said "expected one argument" without the value the user gave."""

import pytest

from nnjax.cli import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv, option, value",
    [
        (["train", "--lr", "-1e-3"], "--lr", "-1e-3"),
        (["train", "--epochs", "1", "--weight-decay", "-inf"], "--weight-decay", "-inf"),
        (["verify", "--seed", "-inf"], "--seed", "-inf"),
        (["info", "--cache-dir", "-x"], "--cache-dir", "-x"),
        (["bench", "--batch-sizes", "-1e3"], "--batch-sizes", "-1e3"),
        (["--cache-dir", "-x", "info"], "--cache-dir", "-x"),
    ],
)
def test_a_value_starting_with_a_dash_is_named_with_its_spelling(capsys, argv, option, value):
    """Finding: `nnjax train --lr -1e-3` said "argument --lr: expected one argument" (a value
    was given); now the value and `--lr=-1e-3`, the spelling argparse reads as a value."""
    err = _error(capsys, argv)
    assert f"argument {option}: expected" in err
    assert f"got {value!r}, read as an option: write {option}={value}" in err


def test_the_equals_spelling_the_hint_gives_reaches_the_option_check(capsys):
    """The hint's spelling works: `--lr=-1e-3` is refused by --lr's own rule, naming it."""
    err = _error(capsys, ["train", "--lr=-1e-3"])
    assert "argument --lr: must be a finite number > 0, got '-1e-3'" in err


def test_an_option_missing_its_value_gets_no_dash_hint(capsys):
    """`--out --epochs 1`: --epochs is an option, the value was forgotten: no hint."""
    err = _error(capsys, ["train", "--out", "--epochs", "1"])
    expected = "argument --out: expected one argument (see nnjax train --help)"
    assert err == f"nnjax train: error: {expected}"


def test_an_optional_value_starting_with_a_dash_is_named(capsys):
    """Finding: `nnjax train --resume -inf` said only "unrecognized arguments: -inf"
    (--resume takes an optional value, so argparse left '-inf' over)."""
    err = _error(capsys, ["train", "--resume", "-inf"])
    assert (
        "unrecognized arguments: -inf; -inf: a value that starts with '-' is written "
        "--resume=-inf" in err
    )


def test_a_dash_word_after_a_flag_gets_no_value_hint(capsys):
    """A flag takes no value: `--overwrite -x` is an unknown option, nothing more."""
    err = _error(capsys, ["train", "--overwrite", "-x"])
    assert err == "nnjax train: error: unrecognized arguments: -x (see nnjax train --help)"


def test_python_m_benchmarks_names_a_dash_value(capsys):
    """`python -m benchmarks --pause -inf` shares nnjax's Parser: the same hint."""
    from benchmarks.cli import main as bench_main

    with pytest.raises(SystemExit) as exc:
        bench_main(["--pause", "-inf"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        "argument --pause: expected one argument; got '-inf', read as an option: "
        "write --pause=-inf" in err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--devices", "1000000000"],
        ["train", "--resume", "--checkpoint-dir", "ck", "--override", "devices=1000000000"],
    ],
)
def test_a_device_count_past_the_limit_is_refused_before_jax(capsys, monkeypatch, argv):
    """Finding: `nnjax train --devices 1000000000` asked JAX for 10**9 virtual CPU devices
    before any check: 8 GB of memory in 15 s, still growing (a 1024 limit; a host has 8 GPUs)."""
    from nnjax.commands import options, train

    monkeypatch.setattr(train, "_use_devices", lambda n: pytest.fail("JAX asked for devices"))
    err = _error(capsys, argv)
    assert options.DEVICE_LIMIT == 1024
    assert "devices" in err and "must be an integer >= 1 and <= 1024, got '1000000000'" in err


def test_the_device_limit_itself_is_accepted():
    from nnjax.commands import options

    assert options.device_count("1024") == 1024


@pytest.mark.parametrize("command", ["train", "compare"])
def test_hidden_widths_past_the_layer_limit_are_refused_at_parse_time(capsys, monkeypatch, command):
    """Finding: `nnjax train --hidden 1,1,...` with 30000 widths sat at "preparing mlp on xor
    (starting JAX)..." past 90 s (1 GB, still tracing); each layer is compiled on its own."""
    import importlib

    module = importlib.import_module(f"nnjax.commands.{command}")
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the run started"))
    err = _error(capsys, [command, "--hidden", ",".join(["1"] * 30000)])
    assert "argument --hidden: takes at most 1000 widths" in err
    assert err.endswith(f"got 30000 of them (see nnjax {command} --help)")


def test_hidden_widths_up_to_the_limit_are_accepted():
    from nnjax.commands import options

    assert options.widths(",".join(["2"] * 1000)) == [2] * 1000
    with pytest.raises(Exception, match="got 1001 of them"):
        options.widths(",".join(["2"] * 1001))
