"""Two leftovers of the audits.

1. ``compare(out=...)`` from Python replaced the files of an earlier study in ``out`` (or the
   user's report.md) without a word, while ``nnjax compare --out`` refuses unless
   ``--overwrite``. Now the Python API keeps the same rule: refused before anything trains,
   naming the folder, the files and ``overwrite=True``; ``overwrite=True`` replaces them.
2. The hint for more devices than exist differed between ``nnjax train --devices`` and
   ``make_mesh`` / ``fit(mesh=...)``. Now it is one message
   (:func:`nnjax.parallel.too_few_devices`): the devices there are, the count asked for, and
   how to get that many on the CPU (``XLA_FLAGS=--xla_force_host_platform_device_count=N``,
   set before JAX starts).
"""

import importlib
import json
import os
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

import nnjax
from nnjax import parallel
from nnjax.cli import main
from nnjax.compare import compare

package = importlib.import_module("nnjax.compare")  # nnjax.compare is compare()
TINY = dict(optimizers="sgd", learning_rates={"sgd": [0.5]}, seeds=1, epochs=1)
PNGS = ("loss_curves.png", "lr_sensitivity.png", "test_accuracy.png")
FLAG = "--xla_force_host_platform_device_count"


def _folder(path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _no_study(monkeypatch) -> None:
    monkeypatch.setattr(package, "run_optimizer_study", lambda *a, **k: pytest.fail("trained"))


# 1. compare(out=...) keeps what the folder holds unless overwrite=True


def test_a_second_study_into_the_same_out_is_refused_before_it_trains(tmp_path, monkeypatch):
    out = tmp_path / "study"
    compare("xor", **TINY, out=str(out), plots=False)
    before = _folder(out)
    assert set(before) == {"runs.csv", "runs.json", "report.md"}
    _no_study(monkeypatch)
    with pytest.raises(ValueError) as err:
        compare("xor", **TINY, out=str(out), plots=False)
    assert str(err.value) == (
        f"compare: out {str(out)!r} already holds runs.csv, runs.json, report.md, which "
        "compare would replace with its own: pass overwrite=True to replace them, or choose "
        "another out"
    )
    assert _folder(out) == before  # byte for byte; no temporary file


def test_a_users_own_file_of_a_report_name_is_kept(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("my notes")
    _no_study(monkeypatch)
    with pytest.raises(ValueError, match=r"already holds report\.md, .*overwrite=True to "
                                         r"replace it, or choose another out"):  # fmt: skip
        compare("xor", **TINY, out=tmp_path, plots=False)  # a Path, as check_out takes
    assert _folder(tmp_path) == {"report.md": b"my notes"}


def test_without_plots_a_figure_it_would_remove_is_named(tmp_path, monkeypatch):
    (tmp_path / "loss_curves.png").write_bytes(b"mine")
    _no_study(monkeypatch)
    with pytest.raises(ValueError) as err:
        compare("xor", **TINY, out=str(tmp_path), plots=False)
    assert "loss_curves.png, which compare would remove: pass overwrite=True to remove it" in (
        str(err.value)
    )
    assert _folder(tmp_path) == {"loss_curves.png": b"mine"}


def test_overwrite_true_replaces_the_studys_files_and_keeps_the_rest(tmp_path):
    compare("xor", **TINY, out=str(tmp_path), plots=False)
    (tmp_path / "loss_curves.png").write_bytes(b"stale figure")
    (tmp_path / "notes.txt").write_text("mine")
    c = compare("xor", **{**TINY, "epochs": 3}, out=str(tmp_path), plots=False, overwrite=True)
    assert json.loads((tmp_path / "runs.json").read_text())["study"]["epochs"] == 3
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "report.md", "runs.csv", "runs.json"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert set(c.paths) == {"csv", "json", "report"}


def test_overwrite_must_be_a_bool(tmp_path, monkeypatch):
    _no_study(monkeypatch)
    with pytest.raises(ValueError, match=r"^compare: overwrite must be True or False, got 'no'"):
        compare("xor", **TINY, out=str(tmp_path), overwrite="no")


def test_files_that_appear_while_it_trains_are_kept(tmp_path, monkeypatch, tmpdir_here):
    """The folder is checked again before writing: a report saved there during the study
    (another run, the user) is not replaced, and the study is written to a temporary folder
    named in the error (a ValueError lost it)."""
    from nnjax.rescue import RescuedError

    out = tmp_path / "out"
    out.mkdir()
    real = package.run_optimizer_study

    def study_then_a_file(*a, **k):
        result = real(*a, **k)
        (out / "runs.csv").write_text("written meanwhile")
        return result

    monkeypatch.setattr(package, "run_optimizer_study", study_then_a_file)
    with pytest.raises(RescuedError) as e:
        compare("xor", **TINY, out=str(out), plots=False)
    (rescue,) = [tmpdir_here / n for n in os.listdir(tmpdir_here)]
    assert str(e.value) == (
        f"compare: out {str(out)!r} came to hold runs.csv while the run computed (kept as it "
        f"is); the report and its files were written to {rescue}/ instead (a temporary "
        "folder: move it where it belongs)"
    )
    assert _folder(out) == {"runs.csv": b"written meanwhile"} and e.value.rescued == str(rescue)
    kept = e.value.comparison  # the study itself too, as compare() would have returned it
    assert kept.paths == {} and set(kept.summary) == {"sgd"}
    assert kept.result.runs.keys() == kept.summary.keys()
    assert sorted(os.listdir(rescue)) == ["report.md", "runs.csv", "runs.json"]


def test_the_cli_still_replaces_with_overwrite_and_refuses_without(tmp_path, capsys):
    argv = ["compare", "--dataset", "xor", "--optimizers", "sgd", "--lr", "sgd=0.5"]
    argv += ["--seeds", "1", "--epochs", "1", "--no-plots", "--out", str(tmp_path)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2  # the CLI's own message, unchanged
    assert "add --overwrite to replace them, or choose another --out" in capsys.readouterr().err
    assert main([*argv, "--epochs", "2", "--overwrite"]) == 0  # compare(overwrite=True)
    assert json.loads((tmp_path / "runs.json").read_text())["study"]["epochs"] == 2


# 2. one message for too few devices, from make_mesh, fit and nnjax train --devices


def _more_than_there_are() -> int:
    return len(jax.devices()) + 1  # the backend has started: no more devices can appear


def _message(what: str, n: int) -> str:
    have = n - 1
    return (
        f"{what}{n} but {have} device(s) are available (cpu); to get {n} CPU devices, set "
        f"XLA_FLAGS={FLAG}={n} before JAX starts"
    )


def test_make_mesh_and_fit_name_the_counts_and_the_cpu_flag(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    n = _more_than_there_are()
    with pytest.raises(ValueError) as err:
        parallel.make_mesh(n)
    assert str(err.value) == _message("make_mesh: n_devices=", n)
    model = nnjax.mlp([2])
    _, params = model.init(jax.random.key(0), (-1, 3))
    X, y = np.zeros((4, 3), np.float32), np.zeros(4, np.int32)
    with pytest.raises(ValueError) as err:
        nnjax.fit(model, params, X, y, epochs=1, mesh=n, key=jax.random.key(0))
    assert str(err.value) == _message("fit: mesh=", n)


def test_the_cli_gives_the_same_message_naming_its_option(capsys, monkeypatch):
    import nnjax.data

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    n = _more_than_there_are()
    monkeypatch.setattr(nnjax.data, "load", lambda *a, **k: pytest.fail("data loaded"))
    assert main(["train", "--devices", str(n)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after "preparing ... JAX"
    assert last == "nnjax train: error: " + _message("--devices ", n)


def test_a_count_already_in_xla_flags_is_named(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_enable_fast_math=false {FLAG}=1")
    n = _more_than_there_are()
    with pytest.raises(ValueError) as err:
        parallel.make_mesh(n)
    assert f"(cpu); XLA_FLAGS sets {FLAG}=1; to get {n} CPU devices, set" in str(err.value)


def test_on_a_gpu_it_says_use_fewer_or_the_cpu(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    gpus = [types.SimpleNamespace(platform="gpu")] * 2
    e = parallel.too_few_devices("--devices", 8, gpus)
    assert isinstance(e, ValueError) and str(e) == (
        f"--devices 8 but 2 device(s) are available (gpu); use at most 2, or, to get 8 CPU "
        f"devices, set JAX_PLATFORMS=cpu and XLA_FLAGS={FLAG}=8 before JAX starts"
    )


SUBPROCESS = "from nnjax.cli import main; raise SystemExit(main(['train', '--devices', '4']))"


def test_the_command_with_fewer_virtual_devices_says_what_xla_flags_sets():
    """``nnjax train --devices 4`` under ``XLA_FLAGS=...=2``: the command cannot add devices
    (the flag wins), so the message names the flag's count and the one to set."""
    env = dict(os.environ, XLA_FLAGS=f"{FLAG}=2")
    r = subprocess.run([sys.executable, "-c", SUBPROCESS], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"nnjax train: error: --devices 4 but 2 device(s) are available (cpu); XLA_FLAGS sets "
        f"{FLAG}=2; to get 4 CPU devices, set XLA_FLAGS={FLAG}=4 before JAX starts"
    )
