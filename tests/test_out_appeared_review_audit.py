"""Review of "files that appear in --out while a run computes": the neighbours of that
check. compare's --out made a file while the study computed lost it (write_report's
check_out raised a ValueError, exit 2, which nothing rescues); from Python a ``Path`` out
was named ``PosixPath('...')``; train checked --out before taking its lock, so a run that
ended between the two had its model replaced without --overwrite; and a resumed run's own
file that the user touched was said to have been "come to hold"."""

import importlib
import os
import shutil

import pytest

from nnjax.cli import main

# one optimizer (each compiles its own programs): the report files of a full comparison
COMPARE = "compare --dataset toy --optimizers adam --seeds 2 --epochs 2 --no-plots".split()
TRAIN = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32", "--epochs", "2"]
REPORT = ["report.md", "runs.csv", "runs.json"]


def _before(monkeypatch, module: str, name: str, act) -> None:
    """``module.name`` calls ``act()`` first (the user, another program, meanwhile)."""
    mod = importlib.import_module(module)
    real = getattr(mod, name)

    def wrapped(*args, **kwargs):
        act()
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, name, wrapped)


def _the_rescue(tmpdir_here):
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    return rescue


def test_compare_out_made_a_file_while_it_computes_is_rescued(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    """It said "compare: out ... is an existing file, not a folder" (exit 2): study lost."""
    out = tmp_path / "out"
    out.mkdir()

    def made_a_file():
        shutil.rmtree(out)
        out.write_text("the user's\n")

    _before(monkeypatch, "nnjax.compare", "compare", made_a_file)
    assert main([*COMPARE, "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    rescue = _the_rescue(tmpdir_here)
    assert line == (
        f"nnjax compare: error: the output folder {out} is a file, not a folder (errno 20, "
        f"ENOTDIR); the report and its files were written to {rescue}/ instead (a temporary "
        "folder: move it where it belongs)"
    )
    assert out.read_text() == "the user's\n" and sorted(os.listdir(rescue)) == REPORT


def test_compare_api_names_a_path_out_as_a_str_and_rescues(tmp_path, monkeypatch, tmpdir_here):
    """``compare(out=Path)``: the error named ``PosixPath('...')``; and an out made a file
    meanwhile raised a ValueError, the study lost (now a RescuedError, an OSError)."""
    from nnjax.compare import compare
    from nnjax.rescue import RescuedError

    out = tmp_path / "out"
    out.mkdir()
    _before(monkeypatch, "nnjax.compare", "run_optimizer_study",
            lambda: (out / "runs.json").write_text("mine"))  # fmt: skip
    with pytest.raises(RescuedError) as e:
        compare("xor", optimizers="adam", seeds=1, epochs=1, plots=False, out=out)
    rescue = _the_rescue(tmpdir_here)
    assert str(e.value).startswith(
        f"compare: out {str(out)!r} came to hold runs.json while the run computed (kept as "
        f"it is); the report and its files were written to {rescue}/ instead"
    ), str(e.value)
    assert (out / "runs.json").read_text() == "mine" and sorted(os.listdir(rescue)) == REPORT


def test_compare_api_out_made_a_file_is_rescued(tmp_path, monkeypatch, tmpdir_here):
    from nnjax.compare import compare
    from nnjax.rescue import RescuedError

    out = tmp_path / "out"
    _before(monkeypatch, "nnjax.compare", "run_optimizer_study",
            lambda: out.write_text("the user's\n"))  # fmt: skip
    with pytest.raises(RescuedError) as e:
        compare("xor", optimizers="adam", seeds=1, epochs=1, plots=False, out=str(out))
    rescue = _the_rescue(tmpdir_here)
    assert str(e.value).startswith(f"the output folder {out} is a file, not a folder"), e.value
    assert e.value.rescued == str(rescue) and sorted(os.listdir(rescue)) == REPORT
    assert out.read_text() == "the user's\n"


def test_train_refuses_a_model_written_between_its_check_and_its_lock(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    """Another run into --out that ended between check_paths and the lock: its files were
    taken for this run's (the snapshot came after) and replaced without --overwrite."""
    out = tmp_path / "out"
    out.mkdir()

    def another_run_ended():
        (out / "model.json").write_text("theirs\n")
        (out / "metrics.csv").write_text("theirs\n")

    _before(monkeypatch, "nnjax.lock", "lock_folder", another_run_ended)
    assert main([*TRAIN, "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(
        f"nnjax train: error: --out {out} already holds a saved model (model.json of "
    ), line
    assert line.endswith("add --overwrite to replace it, or choose another --out")
    assert sorted(os.listdir(out)) == ["metrics.csv", "model.json"]
    assert (out / "metrics.csv").read_text() == "theirs\n" and os.listdir(tmpdir_here) == []


def test_a_resumed_runs_own_file_touched_is_said_changed_and_kept(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    """A ``touch`` (mtime only) of the metrics.csv the run's earlier part wrote: kept (the
    run cannot tell a touch from an edit of the same size), and named as changed, not as a
    file that --out "came to hold" (it held it when the run began)."""
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    argv = [*TRAIN, "--out", str(out), "--checkpoint-dir", str(ckpt)]
    assert main(argv) == 0
    mine = (out / "metrics.csv").read_bytes()
    capsys.readouterr()

    def touch():
        st = os.stat(out / "metrics.csv")
        os.utime(out / "metrics.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        (out / "state.npz").write_text("the user's\n")

    _before(monkeypatch, "nnjax", "fit", touch)
    assert main([*[a if a != "2" else "3" for a in argv], "--resume"]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    rescue = _the_rescue(tmpdir_here)
    assert line.startswith(
        f"nnjax train: error: --out {out} came to hold state.npz, and its metrics.csv changed, "
        f"while the run computed (kept as they are); the trained model and the run's files "
        f"were written to {rescue}/"
    ), line
    assert (out / "metrics.csv").read_bytes() == mine
    assert {"params.npz", "model.json", "metrics.csv"} <= set(os.listdir(rescue))


def test_a_refusal_whose_rescue_fails_says_the_files_were_not_written(
    tmp_path, capsys, monkeypatch
):
    """Where no temporary folder can take the files either, the refusal alone ("came to
    hold X ... (kept as it is)") read as if the study were saved somewhere."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such folder"))
    out = tmp_path / "out"
    out.mkdir()
    _before(monkeypatch, "nnjax.compare", "compare", lambda: (out / "runs.csv").write_text("x"))
    assert main([*COMPARE, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"nnjax compare: error: --out {out} came to hold runs.csv while the run computed "
        "(kept as it is); the report and its files were not written: no temporary folder "
        "took them"
    )
    assert os.listdir(out) == ["runs.csv"] and not (tmp_path / "no such folder").exists()
