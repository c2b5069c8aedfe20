"""The nnjax command: train writes its outputs; every bad argument is one line and exit 2
before any work; --version, a bare nnjax and --help; the error boundary's exit statuses."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from disk_faults import full_text_stream

from nnjax import errors
from nnjax.cli import COMMANDS, build_parser, main
from nnjax.commands import info as info_command
from nnjax.commands import options


def _one_error_line(err: str, command: str) -> str:
    """The one error line, last on stderr; before it only the status line of a run that had
    started ("preparing ... (starting JAX)...") and its progress lines may stand."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("nnjax ") or "Traceback" in line]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    assert all(x.startswith(("preparing ", "epoch ")) for x in lines[:-1]), err
    assert lines[-1].startswith(f"nnjax {command}: error: "), lines[-1]
    return lines[-1]


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jax" in out and "backend" in out and "cpu" in out
    assert "jax_cache    off" in out  # tests/conftest.py: NNJAX_CACHE_DIR=off


def test_train_writes_params_history_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "moons", "--hidden", "16", "--epochs", "3"]
    assert main([*argv, "--batch-size", "64", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test loss" in text and "compile" in text
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["epochs"]["test_accuracy"]) == 3
    assert hist["config"]["hidden"] == [16] and hist["config"]["batch_size"] == 64
    assert (out / "params.npz").stat().st_size > 0
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "cnn", "--channels", "4"],  # digits as 8x8 images
        ["--model", "gru", "--dataset", "mnist1d", "--hidden", "3"],
        ["--model", "resmlp", "--dataset", "mnist1d", "--hidden", "16"],
    ],
)
def test_train_the_mnist1d_papers_models(argv, tmp_path):
    out = tmp_path / "run"
    argv = [*argv, "--epochs", "1", "--batch-size", "128", "--lr", "0.01"]
    assert main(["train", *argv, "--out", str(out)]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert hist["config"]["model"] == argv[1] and len(hist["epochs"]["test_accuracy"]) == 1
    assert hist["epochs"]["test_accuracy"][0] > 0.2  # above chance (0.1) after one epoch


def test_cnn_and_gru_read_digits_as_images_and_other_data_as_signals():
    from types import SimpleNamespace

    from nnjax.commands.train import example_shape

    def shape(name, features, model):
        return example_shape(SimpleNamespace(name=name, X_train=np.zeros((1, features))), model)

    assert shape("digits", 64, "cnn") == (8, 8, 1) and shape("digits", 64, "gru") == (8, 8)
    assert shape("mnist1d", 40, "cnn") == (40, 1) == shape("mnist1d", 40, "gru")
    with pytest.raises(ValueError, match="--model cnn needs signals of at least 3 values"):
        shape("xor", 2, "cnn")


def test_train_logreg_full_batch_gd(capsys):
    argv = ["train", "--dataset", "moons", "--model", "logreg", "--optimizer", "gd"]
    assert main([*argv, "--lr", "0.5", "--epochs", "20"]) == 0
    assert "gd lr=0.5 batch=full" in capsys.readouterr().out
    # logreg takes no --hidden and no --activation: their defaults are not filled in either


# each bad value is refused by argparse: exit 2, one line naming the option
BAD_ARGUMENTS = [
    (["train", "--batch-size", "-3"], "--batch-size", "0 for full batch"),
    (["train", "--lr", "0"], "--lr", "finite number > 0"),
    (["train", "--lr", "nan"], "--lr", "finite number > 0"),
    (["train", "--lr", "-1"], "--lr", "finite number > 0"),
    (["train", "--lr", "1e39"], "--lr", "infinite in float32"),
    (["train", "--keep", "0"], "--keep", "integer >= 1"),
    (["train", "--epochs", "0"], "--epochs", "integer >= 1"),
    (["train", "--checkpoint-every", "0"], "--checkpoint-every", "integer >= 1"),
    (["train", "--devices", "0"], "--devices", "integer >= 1"),
    (["train", "--hidden", "64,"], "--hidden", "no empty entry"),
    (["train", "--hidden", "64,x"], "--hidden", "comma-separated integers"),
    (["train", "--hidden", "0"], "--hidden", ">= 1"),
    (["train", "--seed", "-1"], "--seed", "non-negative integer"),
    (["train", "--activation", "swish"], "--activation", "unknown activation 'swish'; valid:"),
    (["train", "--activation", "softmax"], "--activation", "not a hidden activation"),
    (["train", "--optimizer", "adamm"], "--optimizer", "invalid choice"),
    (["train", "--dataset", "cifar"], "--dataset", "invalid choice"),
    (["compare", "--seeds", "0"], "--seeds", "integer >= 1"),
    (["compare", "--val-fraction", "1"], "--val-fraction", "must be a number in [0, 1)"),
    (["compare", "--optimizers", "adam,adam"], "--optimizers", "repeated"),
    (["compare", "--optimizers", "adam,"], "--optimizers", "unknown optimizer ['']"),
    (["compare", "--lr", "adam=1e-3,nan"], "--lr", "finite number > 0"),
    (["compare", "--target-loss", "inf"], "--target-loss", "finite number"),
    (["sleep", "--orders", "0,,1"], "--orders", "no empty entry"),
    (["sleep", "--methods", "dream"], "--methods", "unknown method ['dream']"),
    (["verify", "--architectures", "-1"], "--architectures", "integer >= 0"),
    (["verify", "--seed", "-2"], "--seed", "non-negative integer"),
    # JAX keeps a seed's low 32 bits: 2**32 was the run of seed 0 (night, verify alike)
    (["train", "--seed", "4294967296"], "--seed", "at most 2**32 - 1 = 4294967295 (JAX keeps"),
    (["night", "--seed", "4294967301"], "--seed", "it would be seed 5), got '4294967301'"),
]


@pytest.mark.parametrize("argv, option, reason", BAD_ARGUMENTS)
def test_bad_argument_is_one_line_and_exit_2(argv, option, reason, capsys):
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, argv[0])
    assert f"argument {option}: " in line and reason in line


# checks across options: refused by the command's check() before its run starts
BAD_COMBINATIONS = [
    (["train", "--model", "logreg", "--hidden", "8"], "--hidden: not for --model logreg"),
    (["train", "--model", "logreg", "--activation", "tanh"], "--activation is for --model mlp)"),
    (["train", "--model", "cnn", "--hidden", "8"], "--hidden is for --model mlp, resmlp, gru"),
    (["train", "--model", "gru", "--channels", "8"], "--channels is for --model cnn"),
    (["train", "--model", "resmlp", "--activation", "tanh"], "not for --model resmlp"),
    (["train", "--model", "gru", "--hidden", "8,8"], "--model gru takes one width"),
    (["train", "--optimizer", "gd", "--batch-size", "8"], "gd is full-batch"),
    (["train", "--resume"], "--resume needs --checkpoint-dir"),
    # without a folder nothing would be saved: once silently ignored
    (["train", "--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint-dir DIR"),
    (["train", "--keep", "1"], "--keep needs --checkpoint-dir DIR"),
    (["compare", "--lr", "sgd=0.1", "--optimizers", "adam"], "--lr given for sgd"),
]


@pytest.mark.parametrize("argv, reason", BAD_COMBINATIONS)
def test_bad_combination_is_refused_before_the_run(argv, reason, capsys, monkeypatch):
    module = __import__(f"nnjax.commands.{argv[0]}", fromlist=["run"])
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the run started"))
    assert main(argv) == 2
    assert reason in _one_error_line(capsys.readouterr().err, argv[0])


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["train", "--learning-rate", "0.1"], "0.1; --learning-rate: did you mean --lr?"),
        (["train", "--batchsize=3"], "--batchsize=3; --batchsize: did you mean --batch-size?"),
        (["train", "--data_seed", "3", "x"], "3 x; --data_seed: did you mean --data-seed?"),
        (["predict", "m", "--data", "d", "--ovewrite"], "--ovewrite: did you mean --overwrite?"),
        (["verify", "--zzz"], "unrecognized arguments: --zzz (see nnjax verify --help)"),
    ],
)  # fmt: skip
def test_an_unknown_option_is_named_by_its_command_with_the_option_meant(argv, reason, capsys):
    """Review: "nnjax: error: unrecognized arguments: --learning-rate 0.1 (see nnjax --help)"
    named neither the command whose options to read nor the option meant (--lr)."""
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, argv[0])
    assert line.endswith(reason + ("" if "(see" in reason else f" (see nnjax {argv[0]} --help)"))


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["train", "--model", "logreg"], "needs a binary dataset; digits has 10 classes"),
        (["train", "--dataset", "xor", "--batch-size", "8"], "exceeds the 4 training examples"),
        (["train", "--model", "cnn", "--dataset", "moons"], "moons has 2 feature(s)"),
    ],
)
def test_checks_that_need_the_data(argv, reason, capsys):
    assert main(argv) == 2
    assert reason in _one_error_line(capsys.readouterr().err, "train")


def test_too_many_devices_fail_before_the_data_is_loaded(capsys, monkeypatch):
    import jax

    import nnjax.data

    n = len(jax.devices()) + 1  # the backend has started: no more devices can appear
    monkeypatch.setattr(nnjax.data, "load", lambda *a, **k: pytest.fail("data loaded"))
    assert main(["train", "--devices", str(n)]) == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert f"--devices {n} but {n - 1} device(s) are available (cpu);" in line
    assert f"XLA_FLAGS=--xla_force_host_platform_device_count={n} before JAX starts" in line


def test_version(capsys):
    import nnjax

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nnjax {nnjax.__version__} (jax ") and "python" in out


def test_bare_nnjax_prints_the_help(capsys):
    """A bare ``nnjax`` asks what there is: the help on stdout, exit 0, as ``--help``."""
    assert main([]) == 0
    bare = capsys.readouterr()
    assert main(["--help"]) == 0
    assert bare.out == capsys.readouterr().out and bare.err == ""
    assert bare.out.startswith("usage: nnjax") and all(c in bare.out for c in COMMANDS)


def test_help_states_every_default():
    """Every option with a value says its default (store_true flags are off by default).
    ``bench`` is left out: its options are defined in benchmarks/cli.py."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = []
    for name, p in sub.choices.items():
        if name == "bench":
            continue
        formatter = p.formatter_class(prog=p.prog)
        for action in p._actions:
            if not action.option_strings or action.nargs == 0:  # flags, -h
                continue
            if "default" not in formatter._get_help_string(action):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []


@pytest.mark.parametrize(
    "command, names",
    [
        ("train", ["digits", "mnist1d", "logreg", "adamw", "rmsprop", "gelu", "leaky_relu"]),
        ("compare", ["spirals", "nesterov", "val_accuracy", "silu"]),
        ("sleep", ["mnist1d", "sequential", "replay"]),
    ],
)
def test_help_lists_valid_names_and_defaults(command, names, capsys):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo the line wrapping
    assert all(n in out for n in names), [n for n in names if n not in out]
    assert "(default: " in out


def test_train_help_shows_the_values_of_its_defaults(capsys):
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default: digits, unless --data", "(default: adam)", "(default: the preset's",
                 "(default: 0.2;", "(default: 0)", "(default: 3)", "(default: target)",
                 "digits --hidden 128,128 --activation relu --epochs 20"):  # fmt: skip
        assert text in out, text


def test_activation_names_are_the_activation_table():
    from nnjax.activations import ACTIVATIONS

    assert options.ACTIVATION_NAMES == tuple(ACTIVATIONS)
    assert set(options.OUTPUT_ONLY_ACTIVATIONS) < set(ACTIVATIONS)


def test_light_copies_equal_their_sources():
    from nnjax.brain import harness
    from nnjax.brain import study as sleep_study
    from nnjax.brain.continual import SPLIT_DATASETS
    from nnjax.commands import compare, sleep
    from nnjax.compare import settings

    assert compare.DEFAULT_OPTIMIZERS == settings.DEFAULT_OPTIMIZERS
    assert compare.SELECT == settings.SELECT
    assert sleep.SPLIT_DATASETS == SPLIT_DATASETS
    assert sleep.METHODS == harness.METHODS
    assert sleep.TEST_ORDERS == ",".join(map(str, sleep_study.TEST_ORDERS))
    assert sleep.TEST_SEEDS == sleep_study.TEST_SEEDS


def test_global_options_before_or_after_the_command():
    p = build_parser(["info"])
    args = p.parse_args(["--no-cache", "--cache-dir", "a", "info"])
    assert args.no_cache and args.cache_dir == "a" and not args.debug
    args = p.parse_args(["--cache-dir", "a", "info", "--cache-dir", "b", "--debug"])
    assert args.cache_dir == "b" and args.debug and not args.no_cache


@pytest.mark.parametrize("argv", [["--cache-dir", "", "info"], ["info", "--cache-dir", " "]])
def test_an_empty_cache_folder_is_refused(argv, capsys, monkeypatch):
    """review: --cache-dir '' put the cache in the default folder, silently."""
    monkeypatch.setattr(info_command, "run", lambda args: pytest.fail("it ran"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: argument --cache-dir: takes a folder path, got " in err and err.count("\n") == 1


# the error boundary: an expected failure is one line and an exit status by its kind
def _raise(exc):
    def run(args):
        raise exc

    return run


def _enospc():
    with errors.naming_path("/x/y", "write"):
        raise OSError(errno.ENOSPC, "No space left on device")


def _nonfinite():
    from nnjax.train import NonFiniteLossError

    return NonFiniteLossError("fit: the training loss became nan at step 7")


@pytest.mark.parametrize(
    "make, status, line",
    [
        (
            lambda: OSError(errno.ENOSPC, "No space left on device", "/x/y"),
            3,
            "/x/y: No space left on device (errno 28, ENOSPC)",
        ),
        (
            lambda: PermissionError(errno.EACCES, "Permission denied", "/ro/params.npz"),
            3,
            "/ro/params.npz: Permission denied (errno 13, EACCES)",
        ),
        (
            lambda: OSError(errno.EROFS, "Read-only file system", "/ro"),
            3,
            "/ro: Read-only file system (errno 30, EROFS)",
        ),
        (
            lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", "ckpt/7"),
            3,
            "ckpt/7: No such file or directory (errno 2, ENOENT)",
        ),
        (
            lambda: NotADirectoryError(errno.ENOTDIR, "Not a directory", "file/ckpt"),
            3,
            "file/ckpt: Not a directory (errno 20, ENOTDIR)",
        ),
        (_nonfinite, 4, "fit: the training loss became nan at step 7"),
        (
            lambda: errors.DivergenceError("loss 1e22 > 10x its start"),
            4,
            "loss 1e22 > 10x its start",
        ),
        (lambda: ValueError("bad\nvalue"), 2, "bad value"),
        (
            lambda: MemoryError("Unable to allocate 800. TiB for an array with shape (1,)"),
            3,
            "out of memory: Unable to allocate 800. TiB for an array with shape (1,)",
        ),
        (
            lambda: type("JaxRuntimeError", (RuntimeError,), {})(
                "RESOURCE_EXHAUSTED: Out of memory allocating 64001191784 bytes."
            ),
            3,
            "out of memory: Out of memory allocating 64001191784 bytes.",
        ),
        (lambda: KeyboardInterrupt(), 130, "interrupted by SIGINT"),
        (lambda: errors.Interrupted(15), 143, "interrupted by SIGTERM"),
    ],
)
def test_error_boundary(make, status, line, capsys, monkeypatch):
    monkeypatch.setattr(info_command, "run", _raise(make()))
    assert main(["info"]) == status
    assert _one_error_line(capsys.readouterr().err, "info") == f"nnjax info: error: {line}"


def test_an_unnamed_write_error_names_its_path(capsys, monkeypatch):
    def run(args):
        _enospc()

    monkeypatch.setattr(info_command, "run", run)
    assert main(["info"]) == 3
    assert _one_error_line(capsys.readouterr().err, "info") == (
        "nnjax info: error: cannot write /x/y: No space left on device (errno 28, ENOSPC)"
    )


def test_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setattr(info_command, "run", _raise(PermissionError(13, "Permission denied", "/r")))
    assert main(["--debug", "info"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "PermissionError" in err


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(info_command, "run", _raise(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info"])


def test_a_jax_platform_this_install_lacks_is_one_line_naming_the_variable(tmp_path):
    """JAX_PLATFORMS=cuda without the CUDA plugin failed in a bare AssertionError, deep in
    the first array made; 'bogus' stands for it on any machine."""
    env = {**os.environ, "JAX_PLATFORMS": "bogus", "NNJAX_CACHE_DIR": "off"}
    for argv in (["info"], ["train", "--epochs", "1"]):
        cmd = [sys.executable, "-m", "nnjax", *argv]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert _one_error_line(r.stderr, argv[0]).startswith(
            f"nnjax {argv[0]}: error: JAX_PLATFORMS='bogus': JAX cannot start it ("
        ), r.stderr


def test_an_unexpected_error_keeps_its_traceback_when_the_platform_starts(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setattr(info_command, "run", _raise(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info"])


def test_an_unusable_cache_folder_is_a_warning(capsys, monkeypatch):
    import nnjax.cache

    def fail(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/cache")

    monkeypatch.setattr(nnjax.cache, "enable_compilation_cache", fail)
    monkeypatch.setattr(info_command, "run", lambda args: 0)
    assert main(["info"]) == 0
    assert capsys.readouterr().err == (
        "nnjax info: warning: compilation cache off: /cache: Permission denied (errno 13, EACCES)\n"
    )


def test_exit_code_table_lists_subclasses_before_their_bases():
    import importlib

    classes = [getattr(importlib.import_module(m), c) for m, c, _ in errors.EXIT_CODES]
    for i, earlier in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, earlier), f"{later} is never reached after {earlier}"
    codes = {c: s for (_, c, s) in errors.EXIT_CODES}
    assert codes["OSError"] == 3 and codes["ValueError"] == 2 and codes["DivergenceError"] == 4


@pytest.fixture
def full_stream():
    """A text stream, buffered as a file's is, on a full disk (to put in place of stdout in
    the test itself: capsys puts its own back before the test runs)."""
    with full_text_stream() as stream:
        yield stream


@pytest.mark.parametrize(
    ("argv", "prog"),
    [(["info"], "nnjax info"), (["--version"], "nnjax"), (["--help"], "nnjax"), ([], "nnjax")],
)
def test_output_a_full_disk_refuses_names_standard_output(
    argv, prog, full_stream, capsys, monkeypatch
):
    """review: `nnjax train > /dev/full` said "No space left on device" without naming what;
    output still buffered when the command returned was lost with exit 0 (or 120), and
    --help into a full disk exited 0 having written nothing (argparse drops the error)."""
    monkeypatch.setattr(info_command, "run", lambda args: print("a short line") or 0)
    monkeypatch.setattr(sys, "stdout", full_stream)
    assert main(argv) == errors.EXIT_IO
    assert sys.stdout is full_stream  # given back as it was
    assert capsys.readouterr().err == (
        f"{prog}: error: cannot write standard output: No space left on device (errno 28, ENOSPC)\n"
    )


def test_other_failures_do_not_name_standard_output(capsys, monkeypatch):
    monkeypatch.setattr(info_command, "run", _raise(OSError(errno.ENOSPC, "No space left")))
    assert main(["info"]) == errors.EXIT_IO
    assert "standard output" not in capsys.readouterr().err


@pytest.mark.parametrize("platforms", ["cpu,gpu", " "])
def test_a_platform_list_jax_half_starts_is_one_line(platforms, capsys, monkeypatch):
    """review: JAX_PLATFORMS=cpu,gpu on a CPU machine was a traceback: JAX's backend start
    failed, and the retry that tells such a failure from a bug found the CPU started; a
    blank JAX_PLATFORMS, which JAX takes for a platform ' ', counted as unset."""
    why = f"Unable to initialize backend {platforms.split(',')[-1]!r}: not in the known backends"
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    monkeypatch.setattr(info_command, "run", _raise(RuntimeError(why)))
    assert main(["info"]) == errors.EXIT_USAGE
    assert _one_error_line(capsys.readouterr().err, "info") == (
        f"nnjax info: error: JAX_PLATFORMS={platforms!r}: JAX cannot start it ({why}); unset "
        "JAX_PLATFORMS to let JAX choose, or install JAX for that backend (e.g. pip install "
        "'jax[cuda12]')"
    )


def test_a_failed_run_leaves_no_empty_folder_it_made(tmp_path, capsys, monkeypatch):
    """review: `nnjax compare --hidden 1000000000 --out big` ran out of memory (exit 3) and
    left big/, empty, made by the lock of the output folder."""
    from nnjax.commands import compare as command

    def out_of_memory(args):
        assert os.path.isdir(args.out)  # made, and locked, for the run
        raise MemoryError("Unable to allocate 4 GiB")

    monkeypatch.setattr(command, "check", lambda args: None)
    monkeypatch.setattr(command, "run", out_of_memory)
    (tmp_path / "mine").mkdir()
    for out in (tmp_path / "new" / "deeper", tmp_path / "mine"):
        assert main(["compare", "--dataset", "xor", "--out", str(out)]) == 3
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # the user's own folder stays
    assert os.listdir(tmp_path / "mine") == []
    assert "error: out of memory: Unable to allocate 4 GiB" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compare", "sleep", "night", "bench"])
def test_an_out_that_is_a_dangling_link_is_named_as_one(command, tmp_path, capsys, monkeypatch):
    """review: `nnjax compare --out L`, L a link to a missing path, said `L: File exists`
    (the folder cannot be made where the link is); now every command's --out names the link,
    exit 3, before the run."""
    import importlib

    module = importlib.import_module(f"nnjax.commands.{command}")
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the run started"))
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    assert main([command, "--out", str(link)]) == 3
    err = capsys.readouterr().err
    assert f"--out {link} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in err
    assert not (tmp_path / "gone").exists()
