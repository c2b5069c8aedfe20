"""A fresh user's walk through ``nnjax train``'s less-trodden options: blank paths and
columns, ``--resume`` given something that is not a checkpoint, ``--override =VALUE``. Each is
refused before JAX starts, in one line naming the option, exit 2, and leaves no folder."""

import os

import pytest

from nnjax.cli import main


def _one_line_error(capsys) -> str:
    """The one stderr line of a refused command (progress lines would come first)."""
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "option, value, what",
    [
        ("--tensorboard", " ", "a folder path"),  # wrote event files into a folder named " "
        ("--tensorboard", "", "a folder path"),  # "--tensorboard is not writable", exit 3
        ("--data", "", "a file path"),  # ": no such file", naming nothing
        ("--data", "  ", "a file path"),
        ("--labels", "", "a file path"),
        ("--target", "", "a column name"),  # taken for no --target: the run went on
    ],
)
def test_blank_path_or_column_is_refused_naming_the_option(
    option, value, what, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--dataset", "toy", "--epochs", "1", option, value]
    if option == "--labels":
        (tmp_path / "x.npy").write_bytes(b"")
        argv = ["train", "--data", "x.npy", "--epochs", "1", option, value]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"nnjax train: error: {option} takes {what}, got "), line
    assert os.listdir(tmp_path) == (["x.npy"] if option == "--labels" else [])


def test_blank_resume_is_refused_naming_the_option(tmp_path, monkeypatch, capsys):
    """Was "cannot resume from : no such checkpoint" (exit 3): the empty path unnamed."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "toy", "--checkpoint-dir", "K", "--resume", ""]) == 2
    line = _one_line_error(capsys)
    assert "--resume takes a checkpoint" in line and "an empty value ('')" in line, line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("with_checkpoints", [False, True])
def test_resume_from_a_file_that_is_no_checkpoint(with_checkpoints, tmp_path, monkeypatch, capsys):
    """A file that is not a ckpt_<epoch>.npz/.json is named as none before JAX starts. With a
    --checkpoint-dir holding checkpoints it was called "a checkpoint of ." (it is none)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello\n")
    argv = ["train", "--dataset", "toy", "--epochs", "1", "--resume", "notes.txt"]
    if with_checkpoints:
        (tmp_path / "K").mkdir()
        for ext in ("npz", "json"):
            (tmp_path / "K" / f"ckpt_00000001.{ext}").write_bytes(b"{}")
        argv += ["--checkpoint-dir", "K"]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert line.startswith("nnjax train: error: --resume notes.txt: not a checkpoint"), line
    assert "is a checkpoint of" not in line
    assert (tmp_path / "notes.txt").read_text() == "hello\n"


def test_override_without_a_field_names_an_overridable_example(capsys):
    """``--override =1`` was answered "e.g. epochs=20", a field --override refuses."""
    argv = ["train", "--dataset", "toy", "--checkpoint-dir", "K", "--resume", "--override", "=1"]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "--override =1: expected FIELD=VALUE" in line and "epochs" not in line, line
    assert main([*argv[:-1], "epochs=20"]) == 2  # the old example is indeed refused
    assert "no such field here" in _one_line_error(capsys)


def test_a_resume_keeps_the_saved_model_of_another_run_in_out(tmp_path, monkeypatch, capsys):
    """``--resume`` let a run replace the saved model in ``--out`` without ``--overwrite``,
    even one that another run wrote there (here: a run without checkpoints): the finished
    model was lost. Resuming the run that wrote it still replaces it, as before."""
    from nnjax.commands import train_outputs

    # The guard is about the saved model (params.npz), not the figures each run also writes:
    # drawing those for the 8 runs took about 3.5 s CPU. Here they are 3 bytes each.
    monkeypatch.setattr(train_outputs, "loss_png", lambda res: b"png")
    monkeypatch.setattr(train_outputs, "accuracy_png", lambda metrics, best: b"png")
    monkeypatch.chdir(tmp_path)
    toy = ["train", "--dataset", "toy", "--epochs"]
    assert main([*toy, "2", "--out", "D"]) == 0  # a finished run, its model saved in D
    assert main([*toy, "2", "--checkpoint-dir", "K"]) == 0  # another run, resumable
    saved = (tmp_path / "D" / "params.npz").read_bytes()
    capsys.readouterr()
    assert main([*toy, "3", "--checkpoint-dir", "K", "--resume", "--out", "D"]) == 2
    line = _one_line_error(capsys)
    assert "--out D already holds a saved model of another run" in line and "--overwrite" in line
    assert (tmp_path / "D" / "params.npz").read_bytes() == saved
    # the run that wrote E goes on into E (its --checkpoint-dir, or a checkpoint of it)
    assert main([*toy, "2", "--out", "E", "--checkpoint-dir", "KE"]) == 0
    assert main([*toy, "3", "--out", "E", "--checkpoint-dir", "./KE/", "--resume"]) == 0
    assert main([*toy, "4", "--out", "E", "--resume", "KE/ckpt_00000003.npz"]) == 0
    assert main([*toy, "5", "--out", "E", "--checkpoint-dir", "KE", "--resume"]) == 0
    assert main([*toy, "4", "--checkpoint-dir", "K", "--resume", "--out", "D", "--overwrite"]) == 0
    assert (tmp_path / "D" / "params.npz").read_bytes() != saved


def _scalar_tags(path) -> set[str]:
    """The scalar tags of a TensorBoard event file (TFRecords: length, crc, Event, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, tags, i = path.read_bytes(), set(), 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
        tags |= {v.tag for v in event.summary.value}
        i += 12 + n + 4
    return tags


def test_two_runs_into_one_tensorboard_folder_keep_their_own_event_files(tmp_path, monkeypatch):
    """tensorboardX names an event file by the second and the host alone: runs started in
    the same second into one --tensorboard folder (a sweep's seeds) wrote one file, and one
    run's log was lost. Each run's EpochLog now has its own file."""
    pytest.importorskip("tensorboardX")
    import time

    from nnjax.commands.train_outputs import EpochLog

    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)  # the same second for both
    logs = [EpochLog(str(tmp_path)) for _ in range(2)]
    for k, log in enumerate(logs):
        log.epochs_done(1, {f"run{k}_loss": [0.5]})
    for log in logs:
        log.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2, files
    assert [_scalar_tags(f) for f in files] in (
        [{"loss/run0"}, {"loss/run1"}],
        [{"loss/run1"}, {"loss/run0"}],
    )


def test_a_run_failing_before_its_first_epoch_leaves_no_tensorboard_folder(
    tmp_path, capsys, monkeypatch
):
    """The event file was opened before training: a run that failed after its checks and
    before its first epoch (--devices 64 for a full batch of 6; here a compile that fails)
    left the --tensorboard folder made for it, an empty event file in it. The file now opens
    at the first epoch's scalars, and the folders the run made are removed, as --out's are."""
    pytest.importorskip("tensorboardX")
    from nnjax.commands import train as train_command

    def no_compile(*args, **kwargs):
        raise ValueError("the program did not compile")

    tb, out = tmp_path / "tb" / "run", tmp_path / "out"
    argv = ["train", "--dataset", "toy", "--epochs", "1", "--tensorboard", str(tb)]
    with monkeypatch.context() as m:
        m.setattr(train_command, "_fit_with_progress", no_compile)
        assert main([*argv, "--out", str(out)]) == 2
    assert capsys.readouterr().err.endswith("nnjax train: error: the program did not compile\n")
    assert sorted(tmp_path.iterdir()) == []
    assert main(argv) == 0  # a run that trains writes its scalars, the step losses included
    (events,) = tb.iterdir()
    assert _scalar_tags(events) == {"loss/train", "loss/test", "accuracy/train",
                                    "accuracy/test", "step_loss_mean", "step_loss"}  # fmt: skip


def test_a_tilde_in_a_path_option_is_the_home_folder(tmp_path, monkeypatch, capsys):
    """``--out=~/runs`` (no shell expands a tilde after '=') made a folder named '~' in the
    current one; every path option now expands it, as the shell does unquoted."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert main(["train", "--dataset", "toy", "--epochs", "1", "--out=~/runs"]) == 0
    assert (home / "runs" / "params.npz").is_file() and os.listdir(work) == []
    capsys.readouterr()
    assert main(["predict", "~/runs", "--data=~/absent.csv"]) != 0
    assert f"{home}/absent.csv: no such file" in _one_line_error(capsys)
    assert os.listdir(work) == []


@pytest.mark.parametrize(
    "argv, option, what",
    [
        (["--data", ""], "--data", "a file path"),  # was ": unknown data format"
        (["--data", "d.csv", "--out", ""], "--out", "a file path"),  # "--out : exists ..."
        (["--data", "d.npy", "--labels", " "], "--labels", "a file path"),
        (["--data", "d.csv", "--target", ""], "--target", "a column name"),
    ],
)
def test_predict_refuses_a_blank_path_or_column(argv, option, what, tmp_path, capsys):
    assert main(["predict", str(tmp_path), *argv]) == 2
    assert f"nnjax predict: error: {option} takes {what}, got " in _one_line_error(capsys)


def test_cache_dir_and_no_cache_together_are_refused(capsys):
    """``--cache-dir x --no-cache`` ran without the cache, the folder ignored silently."""
    assert main(["info", "--cache-dir", "x", "--no-cache"]) == 2
    assert "--cache-dir x and --no-cache contradict each other" in _one_line_error(capsys)
