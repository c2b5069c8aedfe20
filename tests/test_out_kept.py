"""``nnjax night``, ``nnjax sleep`` and ``nnjax compare`` keep what the user saved in ``--out``.

Found in an audit: ``nnjax night --out p`` replaced the user's README.md and results.json and
deleted recall.png (exit 0, no warning); ``sleep --out`` replaced results.json and table.md,
``compare --out`` report.md and runs.csv. Now, as ``nnjax train``
(:func:`nnjax.commands.train_safety.check_saved_model_kept`): a run into a folder that
holds a file of a name it writes or removes (the command's ``OUT_FILES``) is refused before
any computation (exit 2, one line naming the folder, the files and ``--overwrite``), whether
an earlier run of the command wrote it or the user did; ``--overwrite`` replaces them, and
only them.
"""

import os

import pytest

from nnjax.cli import main
from nnjax.commands import compare as compare_command
from nnjax.commands import night as night_command
from nnjax.commands import sleep as sleep_command

MODULES = {"night": night_command, "sleep": sleep_command, "compare": compare_command}
# the smallest runs: night's night part (the stale-figure removal of the consolidation's
# figures), sleep without images (dreams.png removed), compare with its plots
ARGV = {
    "night": ["--parts", "night", "--hypnogram", "W,N", "--n-exc", "100", "--epoch-s", "3"],
    "sleep": ["--seeds", "2", "--orders", "0", "--methods", "sequential", "--steps", "1",
              "--no-images"],
    "compare": ["--dataset", "xor", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1",
                "--lr", "sgd=0.1"],
}  # fmt: skip
REMOVED = {"night": ("recall.png", "replay.png"), "sleep": ("dreams.png",), "compare": ()}
MINE = b"the user's own file\n"


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"nnjax {command}: error: "), err
    return err.removeprefix(f"nnjax {command}: error: ")


def _no_work(monkeypatch, command: str) -> None:
    """The run, and compare's study, fail the test if they start: a refused run stops in
    the command's check, before any computation."""
    monkeypatch.setattr(MODULES[command], "run", lambda args: pytest.fail("the run started"))
    if command == "compare":
        import importlib

        package = importlib.import_module("nnjax.compare")  # nnjax.compare is compare()
        monkeypatch.setattr(package, "make_study", lambda *a, **k: pytest.fail("set up"))


def _folder(path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in path.iterdir()}


CASES = [(c, name) for c, m in MODULES.items() for name in m.OUT_FILES]


@pytest.mark.parametrize("command, name", CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_a_users_file_of_each_name_is_kept_and_the_run_refused(
    command, name, tmp_path, capsys, monkeypatch
):
    _no_work(monkeypatch, command)
    out = tmp_path / "project"
    out.mkdir()
    (out / name).write_bytes(MINE)
    assert main([command, *ARGV[command], "--out", str(out)]) == 2
    verb = "remove" if name in REMOVED[command] else "replace"
    whose = "" if verb == "remove" else " with its own"
    assert _error_line(capsys, command) == (
        f"--out {out} already holds {name}, which nnjax {command} would {verb}{whose}: add "
        f"--overwrite to {verb} it, or choose another --out"
    )
    assert _folder(out) == {name: MINE}  # kept byte for byte; no lock, no temporary file


def test_the_audits_night_is_refused_naming_every_file(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch, "night")
    out = tmp_path / "p"
    out.mkdir()
    mine = {"README.md": b"# My project\n", "results.json": b"{}\n", "recall.png": b"x\n"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    assert main(["night", *ARGV["night"], "--out", str(out)]) == 2
    assert _error_line(capsys, "night") == (
        f"--out {out} already holds results.json, README.md, which nnjax night would replace "
        "with its own, and recall.png, which it would remove: add --overwrite to replace and "
        "remove them, or choose another --out"
    )
    assert _folder(out) == mine


def test_a_refused_run_starts_no_jax(tmp_path):
    """The refusal is the check's, before the study or the network is set up: ~0.2 s, not
    an import of JAX (measured: 1.3 s) and a simulation."""
    import subprocess
    import sys

    code = (
        "import sys; from nnjax.cli import main; rc = main(sys.argv[1:]); "
        "print(rc, 'jax' in sys.modules, file=sys.stderr)"
    )
    for command in MODULES:
        out = tmp_path / command
        out.mkdir(exist_ok=True)
        (out / MODULES[command].OUT_FILES[0]).write_bytes(MINE)
        argv = [command, *ARGV[command], "--out", str(out)]
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.stderr.splitlines()[-1] == "2 False", done.stderr


def test_a_link_or_a_folder_of_such_a_name_is_found_too(tmp_path, capsys, monkeypatch):
    """Whatever holds the name (a link to nothing, a folder) is the user's: refused."""
    _no_work(monkeypatch, "sleep")
    out = tmp_path / "s"
    out.mkdir()
    (out / "results.json").symlink_to(tmp_path / "gone")
    (out / "table.md").mkdir()
    assert main(["sleep", *ARGV["sleep"], "--out", str(out)]) == 2
    assert "already holds results.json, table.md, which nnjax sleep" in _error_line(capsys, "sleep")
    assert os.readlink(out / "results.json") == str(tmp_path / "gone")
    assert (out / "table.md").is_dir() and sorted(os.listdir(out)) == ["results.json", "table.md"]


def test_compares_default_folder_is_named_as_the_default(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch, "compare")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compare-xor").mkdir()
    (tmp_path / "compare-xor" / "report.md").write_bytes(MINE)
    assert main(["compare", *ARGV["compare"]]) == 2
    assert _error_line(capsys, "compare").startswith(
        "the output folder compare-xor (the default --out) already holds report.md, which "
    )


def test_compares_no_plots_would_remove_the_pngs(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch, "compare")
    out = tmp_path / "c"
    out.mkdir()
    (out / "loss_curves.png").write_bytes(MINE)
    (out / "runs.csv").write_bytes(MINE)
    assert main(["compare", *ARGV["compare"], "--no-plots", "--out", str(out)]) == 2
    assert _error_line(capsys, "compare") == (
        f"--out {out} already holds runs.csv, which nnjax compare would replace with its own, "
        "and loss_curves.png, which it would remove: add --overwrite to replace and remove "
        "them, or choose another --out"
    )


def test_other_files_and_a_missing_folder_pass_the_check(tmp_path):
    """Only the command's names count; the check makes nothing."""
    from nnjax.cli import build_parser

    (tmp_path / "notes.txt").write_bytes(MINE)
    (tmp_path / "README.txt").write_bytes(MINE)
    for command, module in MODULES.items():
        for out in (tmp_path, tmp_path / "new"):
            argv = [command, *ARGV[command], "--out", str(out)]
            args = build_parser([command]).parse_args(argv)
            if command != "compare":  # compare's check sets up the study (JAX): not here
                module.check(args)
            else:
                compare_command._check_out_kept(args)
    assert sorted(os.listdir(tmp_path)) == ["README.txt", "notes.txt"]


def test_sleeps_overwrite_needs_an_out(capsys, monkeypatch):
    _no_work(monkeypatch, "sleep")
    assert main(["sleep", *ARGV["sleep"], "--overwrite"]) == 2
    assert _error_line(capsys, "sleep") == "--overwrite replaces files in --out: give it with --out"


# the light copies the check reads before JAX starts


def test_compares_list_is_the_writers():
    from nnjax.compare import files, plot

    assert compare_command.OUT_FILES == files.OUT_FILES
    assert compare_command.PLOT_FILES == tuple(f"{name}.png" for name in plot.PLOTS)


def test_sleeps_dreaming_methods_are_the_studys():
    """dreams.png draws the networks of DREAMING; a study without one of them draws none."""
    from types import SimpleNamespace

    from nnjax.brain import study

    split = SimpleNamespace(n_classes=10)

    class Drawn(Exception):
        pass

    def drawn(*a, **k):
        raise Drawn

    assert set(sleep_command.DREAMING) <= set(sleep_command.METHODS)
    for method in sleep_command.METHODS:
        if method not in sleep_command.DREAMING:
            assert study._dream_images({method: None}, split, None) == {}, method
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study.C, "make_model", drawn)
        for method in sleep_command.DREAMING:
            with pytest.raises(Drawn):
                study._dream_images({method: None}, split, None)


# one real tiny run per command: --overwrite replaces the listed files and removes the figures
# not drawn, the user's other files stay, and the folder then holds only the command's names;
# a re-run without --overwrite is refused and keeps the run's files


@pytest.mark.parametrize(
    "command, before, after",
    [
        ("night", ("README.md", "results.json", "recall.png"),
         ("results.json", "README.md", "night.png", "stages.png")),
        ("sleep", ("results.json", "dreams.png"),
         ("results.json", "table.md", "accuracy.png", "heatmap.png", "dreams.png")),
        ("compare", ("report.md", "runs.csv"), compare_command.OUT_FILES),
    ],
    ids=["night", "sleep", "compare"],
)  # fmt: skip
def test_overwrite_replaces_only_the_commands_files(command, before, after, tmp_path, capsys):
    out = tmp_path / "project"
    out.mkdir()
    for name in (*before, "notes.txt"):
        (out / name).write_bytes(MINE)
    argv = [command, *ARGV[command], "--out", str(out)]
    if command == "sleep":  # with images: dreams.png is drawn, and replaced
        argv.remove("--no-images")
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    names = set(os.listdir(out))
    assert names == {*after, "notes.txt"}  # no lock, no temporary file, the removed gone
    assert names - {"notes.txt"} <= set(MODULES[command].OUT_FILES)
    assert (out / "notes.txt").read_bytes() == MINE
    assert all((out / name).read_bytes() != MINE for name in after)
    capsys.readouterr()
    kept = _folder(out)
    assert main(argv) == 2  # the run's own files are not replaced without --overwrite either
    assert "add --overwrite to replace them" in _error_line(capsys, command)
    assert _folder(out) == kept
