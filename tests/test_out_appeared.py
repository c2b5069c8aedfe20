"""A file of a study's names that appears in --out while the study computes (the user,
another program) is kept, and the study goes to a temporary folder named in the one error
line: ``nnjax compare`` refused at that point (exit 2) and lost the study; ``sleep`` and
``night`` replaced the file without --overwrite."""

import os

import pytest

from nnjax.cli import main

# argv, the computing function to wrap (module, name), a file it writes, its files. Each study
# small: one optimizer (each compiles its own programs); a night of one wake epoch of 3 s (the
# shortest a stage may be) of the smallest network; they write the files of a full run.
STUDIES = {
    "compare": (
        "compare --dataset toy --optimizers adam --seeds 2 --epochs 2 --no-plots".split(),
        ("nnjax.compare", "compare"),
        "runs.csv",
        ["report.md", "runs.csv", "runs.json"],
        "the report and its files",
    ),
    "sleep": (
        ["sleep", "--methods", "sequential", "--orders", "0", "--steps", "5", "--no-images"],
        ("nnjax.brain.study", "run_study"),
        "table.md",
        ["accuracy.png", "heatmap.png", "results.json", "table.md"],
        "the results and figures",
    ),
    "night": (
        ["night", "--parts", "night", "--n-exc", "100", "--hypnogram", "W", "--epoch-s", "3"],
        ("nnjax.brain.night", "run_night_part"),
        "README.md",
        ["README.md", "night.png", "results.json", "stages.png"],
        "the results and figures",
    ),
}


def _appearing(monkeypatch, target, path) -> None:
    """``target`` (module, name) writes the user's ``path`` before it computes."""
    import importlib

    module = importlib.import_module(target[0])
    real = getattr(module, target[1])

    def computing(*args, **kwargs):
        path.write_text("the user's\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, target[1], computing)


@pytest.mark.parametrize("command", list(STUDIES))
def test_a_file_that_appears_in_out_is_kept_and_the_study_rescued(
    command, tmp_path, capsys, monkeypatch, tmpdir_here
):
    argv, target, name, files, what = STUDIES[command]
    out = tmp_path / "out"
    out.mkdir()
    _appearing(monkeypatch, target, out / name)
    assert main([*argv, "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert rescue.name.startswith(f"nnjax-{command}-unsaved-")
    assert line == (
        f"nnjax {command}: error: --out {out} came to hold {name} while the run computed "
        f"(kept as it is); {what} were written to {rescue}/ instead (a temporary folder: "
        "move it where it belongs)"
    )
    assert os.listdir(out) == [name] and (out / name).read_text() == "the user's\n"
    assert sorted(os.listdir(rescue)) == files


def test_with_overwrite_the_study_replaces_it(tmp_path, capsys, monkeypatch, tmpdir_here):
    argv, target, name, files, _ = STUDIES["compare"]
    out = tmp_path / "out"
    _appearing(monkeypatch, target, out / name)
    out.mkdir()
    assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == files and os.listdir(tmpdir_here) == []
    assert (out / name).read_text() != "the user's\n"


TRAIN = ["train", "--dataset", "moons", "--hidden", "8", "--batch-size", "32", "--epochs", "2"]


def _fit_writing(monkeypatch, path, text: str) -> None:
    """nnjax.fit writes ``text`` to the user's ``path`` before it trains."""
    import nnjax

    real = nnjax.fit

    def fit(*args, **kwargs):
        path.write_text(text)
        return real(*args, **kwargs)

    monkeypatch.setattr(nnjax, "fit", fit)


def test_train_keeps_a_file_that_appeared_and_rescues_the_model(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    """It replaced the user's metrics.csv, written while it trained, without --overwrite."""
    out = tmp_path / "out"
    out.mkdir()
    _fit_writing(monkeypatch, out / "metrics.csv", "the user's\n")
    assert main([*TRAIN, "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert line.startswith(
        f"nnjax train: error: --out {out} came to hold metrics.csv while the run computed "
        f"(kept as it is); the trained model and the run's files were written to {rescue}/"
    ), line
    assert os.listdir(out) == ["metrics.csv"]
    assert (out / "metrics.csv").read_text() == "the user's\n"
    assert {"params.npz", "model.json", "metrics.csv"} <= set(os.listdir(rescue))


def test_a_resumed_train_keeps_its_own_files_replaceable_but_not_a_changed_one(
    tmp_path, capsys, monkeypatch, tmpdir_here
):
    """A resumed run replaces the files its earlier part wrote (they are the same run's);
    one the user rewrote while it trained is kept."""
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    argv = [*TRAIN, "--out", str(out), "--checkpoint-dir", str(ckpt)]
    assert main(argv) == 0
    longer = [a if a != "2" else "3" for a in argv]  # --epochs 3: goes on from epoch 2
    assert main([*longer, "--resume"]) == 0 and os.listdir(tmpdir_here) == []
    capsys.readouterr()
    _fit_writing(monkeypatch, out / "history.json", "{}\n")
    longest = [a if a != "3" else "4" for a in longer]
    assert main([*longest, "--resume"]) == 3
    assert "history.json changed while" in capsys.readouterr().err
    assert (out / "history.json").read_text() == "{}\n"
