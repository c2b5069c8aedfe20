"""Docstring and ``--help`` claims of the command line, held against what the commands do.

Each test quotes the claim it checks. The defects found: ``nnjax predict --out FOLDER`` and
``--data FOLDER`` were usage errors (exit 2; the data folder called "unknown data format
'(no extension)'") where a path of the wrong kind is exit 3, as in ``nnjax train``;
``nnjax train --resume DIR`` of a folder holding no checkpoint was refused only after JAX
had started and the data were loaded; and ``nnjax --help`` listed the exit statuses without
the 1 of ``verify`` (and ``bench``) on a result that disagrees with the NumPy twin.
"""

import argparse
import csv

import jax
import numpy as np
import pytest

import nnjax
from nnjax import errors
from nnjax import verify as V
from nnjax.cli import main
from nnjax.commands import verify as verify_command

COLUMNS = ["a", "b"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved model (untrained: no test here reads its weights) and a data file."""
    d = tmp_path_factory.mktemp("claims")
    X = np.random.default_rng(0).normal(size=(6, 2))
    model = nnjax.mlp([3, 2], "tanh")
    _, params = model.init(jax.random.key(0), (-1, 2))
    nnjax.save(d / "m", model, params, label_names=["no", "yes"], feature_names=COLUMNS,
               target="y")  # fmt: skip
    with open(d / "data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows([[repr(float(v)) for v in row] for row in X])
    return d


def _error(capsys, argv) -> tuple[int, str, str]:
    """The status, the one line on stderr (nothing else there) and stdout."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0], out


# --- a path of the wrong kind is exit 3 ------------------------------------------------


def test_predict_out_that_is_a_folder_is_an_io_error_exit_3(saved, tmp_path, capsys):
    # README: "3 I/O (a path that is missing or of the wrong kind ...)"; nnjax.errors.PathError:
    # "a folder or a device where a file is ... the CLI exits 3"; before: exit 2
    folder = tmp_path / "preds"
    folder.mkdir()
    code, line, out = _error(capsys, ["predict", saved / "m", "--data", saved / "data.csv",
                                      "--out", folder])  # fmt: skip
    assert code == errors.EXIT_IO == 3
    assert line == (f"nnjax predict: error: --out {folder}: is a folder; give a file name "
                    "(e.g. preds.csv) (errno 21, EISDIR)")  # fmt: skip
    assert out == "" and list(folder.iterdir()) == []


@pytest.mark.parametrize("name", ["inputs", "inputs.csv"])
def test_predict_data_that_is_a_folder_is_named_as_train_names_it(name, saved, tmp_path, capsys):
    # predict --help: "--data FILE the inputs: a .csv file ..."; train's line for a folder is
    # "<path>: a directory, not a file (errno 21, EISDIR)", exit 3; before, predict said
    # "unknown data format '(no extension)'; valid: .csv, .npz, .npy" (exit 2) for "inputs"
    folder = tmp_path / name
    folder.mkdir()
    want = f"{folder}: a directory, not a file (errno 21, EISDIR)"
    for command in (["predict", saved / "m"], ["train"]):
        code, line, out = _error(capsys, [*command, "--data", folder])
        assert (code, line, out) == (3, f"nnjax {command[0]}: error: {want}", "")


def test_predict_labels_that_is_a_folder_is_named_before_the_data_are_read(saved, tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.zeros((3, 2)))
    folder = tmp_path / "y.npy"
    folder.mkdir()
    code, line, _ = _error(capsys, ["predict", saved / "m", "--data", tmp_path / "X.npy",
                                    "--labels", folder])  # fmt: skip
    assert (code, line) == (3, f"nnjax predict: error: {folder}: a directory, not a file "
                               "(errno 21, EISDIR)")  # fmt: skip


# --- train --resume DIR is checked before JAX starts -----------------------------------


@pytest.mark.parametrize("with_dir", [False, True])
def test_resume_from_a_folder_without_a_checkpoint_is_refused_before_the_run(
    with_dir, tmp_path, capsys, tmpdir_here
):
    # nnjax.commands.train_resume: "--resume CKPT: not blank, existing, a folder holding a
    # checkpoint ..." checked "before JAX starts"; nnjax.cli: check() runs "before JAX
    # starts". Before: "preparing mlp on xor (starting JAX)..." and "resuming from D" came
    # first, then "no checkpoint in D" once the data were loaded and the model built
    empty = tmp_path / "ck"
    empty.mkdir()
    (empty / "ckpt_00000003.npz").write_bytes(b"")  # no .json: not a committed checkpoint
    argv = ["train", "--dataset", "xor", "--epochs", "1", "--resume", empty]
    argv += ["--checkpoint-dir", empty] if with_dir else []
    code, line, out = _error(capsys, argv)
    assert code == 3 and out == ""
    assert line == (f"nnjax train: error: cannot resume from {empty}: no checkpoint in this "
                    "folder (errno 2, ENOENT)")  # fmt: skip
    assert sorted(p.name for p in empty.iterdir()) == ["ckpt_00000003.npz"]


def test_resume_from_a_folder_with_a_checkpoint_still_resumes(tmp_path, capsys, tmpdir_here):
    ck = tmp_path / "ck"
    base = ["train", "--dataset", "xor", "--epochs", "1", "--checkpoint-dir", ck]
    assert main([str(a) for a in base]) == 0
    capsys.readouterr()
    argv = ["train", "--dataset", "xor", "--epochs", "2", "--resume", ck]
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert f"resuming from {ck}" in out and "train loss" in out


# --- the exit statuses nnjax --help lists ----------------------------------------------


def test_help_lists_status_1_that_verify_gives_for_a_failed_check(capsys, monkeypatch):
    # nnjax --help: "Exit status: 0 success, ..."; verify returns 1 on a failed check (README:
    # "a pass/fail table (exit 1 on a failure)"); before, the help listed 0, 2, 3, 4, 128+N
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    listed = (
        "Exit status: 0 success, 1 a result disagrees with the NumPy twin (verify, "
        "bench), 2 usage error, 3 I/O error, 4 divergence, 128+N stopped by signal N."
    )
    assert listed in text
    monkeypatch.setenv("XLA_FLAGS", "")  # the command adds its flags; restored afterwards
    failed = [V.Check("optimizer adam: 200 steps", 3e-6, 1e-5, 1e-9, "abs")]
    monkeypatch.setattr(V, "run_all", lambda seed, architectures, **kw: failed)
    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    assert verify_command.run(parser.parse_args(["--architectures", "0"])) == 1
    assert "1 FAILED" in capsys.readouterr().out


# --- train --data-seed ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--dataset", "toy"], "toy is fixed (no points drawn, no split: test = train), so a data "
         "seed would change nothing; leave --data-seed out"),
        (["--dataset", "xor"], "xor is fixed (no points drawn, no split: test = train), so a data "
         "seed would change nothing; leave --data-seed out"),
        (["--dataset", "mnist1d"], "mnist1d is its canonical split (4000 train / 1000 test, "
         "fixed), so a data seed draws only a validation split; give --val-split F, or leave "
         "--data-seed out"),
    ],
)  # fmt: skip
def test_a_data_seed_that_would_change_nothing_is_refused(argv, why, capsys):
    # train --help said "--data-seed N seed of the data: the generated datasets and the test
    # and validation splits"; for these the data and the split are the same for every seed
    # (the oracle below), and `--data-seed 7` ran the seed-0 run, exit 0
    from nnjax import data

    a, b = (data.load_splits(argv[1], seed=s, test_fraction=None) for s in (0, 7))
    for name in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    code, line, out = _error(capsys, ["train", *argv, "--data-seed", "7"])
    assert (code, line, out) == (2, f"nnjax train: error: --data-seed 7: {why}", "")


def test_a_data_seed_left_out_is_0_and_one_given_draws_the_split():
    # "(default: 0)"; mnist1d with --val-split and moons take the seed (their data differ)
    from nnjax import data
    from nnjax.cli import build_parser
    from nnjax.commands import train

    for argv, seed in ((["--dataset", "toy"], 0), (["--dataset", "moons", "--data-seed", "3"], 3)):
        args = build_parser(["train"]).parse_args(["train", *argv])
        train.check(args)
        assert args.data_seed == seed
    args = build_parser(["train"]).parse_args(
        ["train", "--dataset", "mnist1d", "--val-split", "0.1", "--data-seed", "3"]
    )
    train.check(args)
    a, b = (data.load_splits("mnist1d", seed=s, val_fraction=0.1) for s in (0, 3))
    assert not np.array_equal(a.X_val, b.X_val) and args.data_seed == 3
