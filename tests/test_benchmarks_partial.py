"""A benchmark run stopped during workload k (a signal, a full disk, an error) threw away
workloads 1..k-1 (saved only at the end; a temporary folder removed). Now each finished
workload is saved at once (``"complete": false``, ``"done"``, ``"missing"``), a stopped run
says in one line what it kept and where, and ``--report-from`` of such a file says it is
partial, its missing workloads' targets "not measured". The runs replace the workload table
(``benchmarks.workloads.STEPS``) with steps that copy a committed run's figures."""

import copy
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import cli, harness, targets, workloads
from nnjax import io as nio
from nnjax.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = json.loads((ROOT / "benchmarks/results/cpu-2cores-2026-12-04.json").read_text())
DAY = time.strftime("%Y-%m-%d", time.gmtime())  # the files' names: UTC
ONLY = ["seed", "peak", "mlp", "vmap", "dispatch"]
STEM = f"cpu-test-{DAY}-only-seed-peak-mlp-vmap-dispatch"
ARGV = ["--only", *ONLY, "--impls", "numpy", "nnjax_step", "--no-plots"]


def _measured(*keys):
    """A workload's step: the committed run's figures of ``keys`` into the results."""

    def step(args, cfg, results, note_load, stem):
        for key in keys:
            results[key] = copy.deepcopy(COMMITTED[key])

    return step


def _raises(error):
    def step(args, cfg, results, note_load, stem):
        results["mlp"] = ["half of the MLP rows"]  # a stopped workload's half: never saved
        raise error

    return step


@pytest.fixture
def suite(tmp_path, monkeypatch):
    """The suite in this process, its workloads the committed run's figures; new temporary
    folders in tmp_path/tmp (returned)."""
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(harness, "device_label", lambda: "cpu-test")
    monkeypatch.setattr(harness, "environment", lambda: copy.deepcopy(COMMITTED["env"]))
    monkeypatch.setattr(harness, "load_snapshot", lambda interval=0.5: {})
    monkeypatch.setattr(harness, "load_warning", lambda snap, cores: None)
    monkeypatch.setattr(workloads, "_torch_threads", lambda args, results: None)
    for name, keys in (("seed", ["seed"]), ("peak", ["peak"]), ("mlp", ["mlp", "overhead"]),
                       ("vmap", ["vmap"]), ("dispatch", ["dispatch"])):  # fmt: skip
        monkeypatch.setitem(workloads.STEPS, name, _measured(*keys))
    monkeypatch.setitem(workloads.STEPS, "peak again", lambda *a: None)
    return tmp


def _line(capsys, prog="python -m benchmarks") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: "), err
    return line.removeprefix(f"{prog}: error: ")


def _kept_note(path, kept="seed, peak", rest="mlp vmap dispatch", during="mlp") -> str:
    return (
        f"stopped during {during}; the measurements of {kept} are kept in {path}: `python -m "
        f"benchmarks --report-from {path}` writes their report; `--only {rest}` reruns the rest"
    )


def _saved(path) -> dict:
    results = json.loads(Path(path).read_text())
    assert results["complete"] is False
    return results


@pytest.mark.parametrize("command", ["suite", "nnjax"])
@pytest.mark.parametrize("given_out", [False, True])
def test_a_signal_during_a_workload_keeps_those_finished(
    command, given_out, suite, tmp_path, capsys, monkeypatch
):
    import nnjax.cli

    monkeypatch.setattr(nnjax.cli, "_compilation_cache", lambda args, allowed: None)
    monkeypatch.setitem(workloads.STEPS, "mlp", _raises(KeyboardInterrupt()))
    out = tmp_path / "out"
    argv = [*ARGV, *(["--out", str(out)] if given_out else [])]
    assert (nnjax.cli.main(["bench", *argv]) if command == "nnjax" else cli.main(argv)) == 130
    folder = out if given_out else next(suite.iterdir())  # the temporary folder is kept
    path = folder / f"{STEM}.json"
    prog = "nnjax bench" if command == "nnjax" else "python -m benchmarks"
    assert _line(capsys, prog) == f"interrupted by SIGINT: {_kept_note(path)}"
    assert sorted(os.listdir(folder)) == [path.name]  # no lock, no temporary file
    results = _saved(path)
    assert results["done"] == ["seed", "peak"] and results["missing"] == ["mlp", "vmap", "dispatch"]
    assert results["seed"] == COMMITTED["seed"] and results["peak"] == COMMITTED["peak"]
    assert "mlp" not in results and list(results["workload_s"]) == ["seed", "peak"]


def test_a_full_disk_during_a_workload_keeps_those_finished(suite, tmp_path, capsys, monkeypatch):
    full = OSError(errno.ENOSPC, "No space left on device", "cache.bin")
    monkeypatch.setitem(workloads.STEPS, "vmap", _raises(full))
    out = tmp_path / "out"
    assert cli.main([*ARGV, "--out", str(out)]) == 3
    path = out / f"{STEM}.json"
    note = _kept_note(path, "seed, peak, mlp", "vmap dispatch", "vmap")
    assert _line(capsys) == f"cache.bin: No space left on device; {note} (errno 28, ENOSPC)"
    results = _saved(path)
    assert results["done"] == ["seed", "peak", "mlp"] and results["mlp"] == COMMITTED["mlp"]


def test_an_error_in_a_workload_keeps_those_finished_under_its_traceback(suite, monkeypatch):
    from benchmarks.output import WorkloadFailed

    defect = RuntimeError("a defect in the dispatch workload")
    monkeypatch.setitem(workloads.STEPS, "dispatch", _raises(defect))
    with pytest.raises(WorkloadFailed) as info:  # a defect: its traceback, then this line
        cli.main(ARGV)
    assert info.value.__cause__ is defect
    (folder,) = suite.iterdir()  # kept: it holds the measurements
    path = folder / f"{STEM}.json"
    assert str(info.value) == _kept_note(
        path, "seed, peak, mlp, vmap", "dispatch", "dispatch"
    ).replace("stopped during dispatch", "the dispatch workload failed (above)")
    assert _saved(path)["missing"] == ["dispatch"]


def test_a_mismatch_keeps_those_finished(suite, tmp_path, capsys, monkeypatch):
    import benchmarks.check

    wrong = benchmarks.check.Mismatch("vmap: a wrong loss")
    monkeypatch.setitem(workloads.STEPS, "vmap", _raises(wrong))
    assert cli.main(ARGV) == 1
    (folder,) = suite.iterdir()
    path = folder / f"{STEM}.json"
    err = capsys.readouterr().err
    assert "BENCHMARK MISMATCH against the NumPy twin:\n  vmap: a wrong loss" in err
    assert err.strip().splitlines()[-1] == _kept_note(
        path, "seed, peak, mlp", "vmap dispatch", "vmap"
    )


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.EIO, "I/O error")])
def test_a_stop_in_the_first_workload_keeps_nothing(error, suite, capsys, monkeypatch):
    monkeypatch.setitem(workloads.STEPS, "seed", _raises(error))
    assert cli.main(ARGV) in (130, 3)
    assert "kept" not in capsys.readouterr().err
    assert list(suite.iterdir()) == []  # the temporary folder went, as before


def test_the_file_holds_every_finished_workload_as_the_run_goes(suite, tmp_path, monkeypatch):
    """Read by each step as it starts: the file on disk then holds the workloads before it;
    at the end the complete file of a run that ended, as before (no partial fields)."""
    out, seen = tmp_path / "out", {}

    def looking(name, keys):
        measure = _measured(*keys)

        def step(args, cfg, results, note_load, stem):
            path = out / f"{stem}.json"
            seen[name] = _saved(path)["done"] if path.exists() else None
            measure(args, cfg, results, note_load, stem)

        return step

    for name in ONLY:
        keys = ["mlp", "overhead"] if name == "mlp" else [name]
        monkeypatch.setitem(workloads.STEPS, name, looking(name, keys))
    monkeypatch.setattr(targets, "evaluate", lambda results: [])
    monkeypatch.setattr(cli, "write", lambda out, stem, results, args: None)
    assert cli.main([*ARGV, "--out", str(out)]) == 0
    assert seen == {name: ONLY[:i] or None for i, name in enumerate(ONLY)}
    final = json.loads((out / f"{STEM}.json").read_text())
    assert not {"complete", "done", "missing"} & set(final) and "total_s" in final
    assert all(final[k] == COMMITTED[k] for k in ("seed", "peak", "mlp", "vmap", "dispatch"))


def _disk_full_for(monkeypatch, name: str, saves: set[int]) -> None:
    """The atomic writes of ``name`` whose number (1, 2, ...) is in ``saves`` write half
    their bytes, then fail with ENOSPC, as a disk that fills up does (tests/disk_faults.py,
    counted)."""
    real_create, real_write, state = nio._create_temp, nio._write_all, {"n": 0}

    def create(path):
        state["path"] = path
        if os.path.basename(path).startswith(name):
            state["n"] += 1
        return real_create(path)

    def write(fd, data):
        if os.path.basename(state["path"]).startswith(name) and state["n"] in saves:
            os.write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(nio, "_create_temp", create)
    monkeypatch.setattr(nio, "_write_all", write)


def test_a_full_disk_while_saving_is_said_once_and_the_run_goes_on(
    suite, tmp_path, capsys, monkeypatch
):
    """The saves after peak and mlp fail (disk full), then there is room again: one line,
    the run ends with its complete file (exit 0)."""
    _disk_full_for(monkeypatch, STEM, {2, 3})
    monkeypatch.setattr(targets, "evaluate", lambda results: [])
    monkeypatch.setattr(cli, "write", lambda out, stem, results, args: None)
    out = tmp_path / "out"
    assert cli.main([*ARGV, "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    path = out / f"{STEM}.json"
    assert err == [
        f"warning: the measurements after peak were not saved ({path}: No space left on "
        f"device (errno 28, ENOSPC)); {path} keeps seed; the run goes on"
    ]
    assert "complete" not in json.loads(path.read_text()) and os.listdir(out) == [path.name]


def test_a_stop_after_a_failed_save_keeps_the_file_saved_before_whole(
    suite, tmp_path, capsys, monkeypatch
):
    _disk_full_for(monkeypatch, STEM, {2, 3, 4, 5})  # after peak, mlp, peak again, vmap
    monkeypatch.setitem(workloads.STEPS, "dispatch", _raises(KeyboardInterrupt()))
    out = tmp_path / "out"
    assert cli.main([*ARGV, "--out", str(out)]) == 130
    path = out / f"{STEM}.json"
    note = _kept_note(path, "seed", "peak mlp vmap dispatch", "dispatch")
    assert _line(capsys) == f"interrupted by SIGINT: {note}"
    results = _saved(path)  # whole JSON: the half-written saves never replaced it
    assert results["done"] == ["seed"] and "peak" not in results
    assert os.listdir(out) == [path.name]


def test_a_full_disk_at_the_final_save_keeps_the_last_partial_file(
    suite, tmp_path, capsys, monkeypatch
):
    """Saves 1-6 after seed, peak, mlp, the peak again, vmap, dispatch; the 7th, the
    complete file, fails: the file of every workload stays, and the line says so."""
    _disk_full_for(monkeypatch, STEM, {7})
    out = tmp_path / "out"
    assert cli.main([*ARGV, "--out", str(out)]) == 3
    path = out / f"{STEM}.json"
    assert _line(capsys) == (
        f"{path}: No space left on device; the measurements of seed, peak, mlp, vmap, dispatch "
        f"are kept in {path}: `python -m benchmarks --report-from {path}` writes their report "
        "(errno 28, ENOSPC)"
    )
    results = _saved(path)
    assert results["done"] == ONLY and results["missing"] == [] and "total_s" not in results


def test_the_real_table_runs_every_workload_and_saves_after_each(tmp_path, monkeypatch):
    """The suite's own steps, their measuring functions stubbed: each workload's figures land
    under its key and in the file saved after it (the CNN's and GRU's rows both in "nets")."""
    import argparse

    from benchmarks import micro, mlp, nets, network, seed, startup

    class Problem:
        label, steps, batch_size = "p", 1, 32

    seen = []
    for module, name in ((startup, "bench_startup"), (seed, "bench_seed"),
                         (micro, "vmap_scaling"), (micro, "dispatch_floor"),
                         (network, "bench_network"), (workloads, "run_scaling")):  # fmt: skip
        monkeypatch.setattr(module, name, lambda *a, name=name, **k: {"by": name})
    monkeypatch.setattr(micro, "matmul_peak", lambda *a: {"peak_gflops": 1.0})
    monkeypatch.setattr(micro, "step_anatomy", lambda *a: {"matmuls": {}})
    monkeypatch.setattr(micro, "compiled_programs", lambda *a: {})
    monkeypatch.setattr(mlp, "problems", lambda *a: [Problem()])
    monkeypatch.setattr(mlp, "bench_problem", lambda p, *a, **k: {"by": "bench_problem"})
    monkeypatch.setattr(nets, "problem", lambda model, **k: Problem())
    monkeypatch.setattr(nets, "bench_net", lambda p, *a, **k: {"by": "bench_net"})
    monkeypatch.setattr(workloads, "_torch_threads", lambda args, results: None)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path)])
    results = {"suite": "nnjax benchmarks"}
    note = lambda when: seen.append(json.loads((tmp_path / "s.json").read_text())["done"])  # noqa: E731
    progress = workloads.run_workloads(args, cli._settings(args), results, note, "s")
    assert seen == [["startup", "seed", "peak"]]  # the load after MLP: the file before it
    order = ["startup", "seed", "peak", "mlp", "cnn", "gru", "vmap", "dispatch", "anatomy",
             "network", "scaling"]  # fmt: skip
    assert progress.saved == order and progress.missing == []
    saved = _saved(tmp_path / "s.json")
    assert saved["done"] == order and list(saved["workload_s"]) == [*order[:4], "peak again",
                                                                    *order[4:]]  # fmt: skip
    assert saved["peak"]["measurements"] == [1.0, 1.0] and len(saved["nets"]) == 2
    by = {"mlp": [{"by": "bench_problem"}], "overhead": {"by": "bench_problem"}, "startup":
          {"by": "bench_startup"}, "seed": {"by": "bench_seed"}, "vmap": {"by": "vmap_scaling"},
          "dispatch": {"by": "dispatch_floor"}, "network": {"by": "bench_network"},
          "scaling": {"by": "run_scaling"}}  # fmt: skip
    assert {k: saved[k] for k in by} == by


# --report-from a stopped run's file


def _partial_of_committed(tmp_path, missing) -> Path:
    """The committed run's file as a run stopped before ``missing`` leaves it."""
    from benchmarks.output import Progress

    results = copy.deepcopy(COMMITTED)
    for key in ("targets", "files", "total_s"):
        results.pop(key)
    keys = {"mlp": ["mlp", "overhead"], "cnn": ["nets"], "gru": ["nets"]}
    for name in missing:
        for key in keys.get(name, [name]):
            results.pop(key, None)
    planned = [w for w in cli.WORKLOADS if w in COMMITTED or w in keys]
    progress = Progress(tmp_path, "cpu-2cores-stopped", planned)
    for name in planned:
        if name not in missing:
            progress.finished(name, results)
    return progress.path


def test_report_from_a_stopped_runs_file_says_it_is_partial(tmp_path, capsys):
    missing = ["mlp", "cnn", "gru", "vmap", "dispatch", "anatomy", "scaling", "network"]
    path = _partial_of_committed(tmp_path, missing)
    assert cli.main(["--report-from", str(path), "--no-plots"]) == 0
    report = path.with_suffix(".md").read_text().splitlines()
    assert report[2] == (
        "**PARTIAL: the run stopped before its end; it measured startup, seed, peak; not "
        "measured: mlp, cnn, gru, vmap, dispatch, anatomy, scaling, network (their targets "
        'read "not measured"; `--only mlp cnn gru vmap dispatch anatomy scaling network` '
        "runs them).**"
    )
    assert "PARTIAL: the run stopped" in capsys.readouterr().out  # the terminal's too
    got = {t["target"]: t for t in json.loads(path.read_text())["targets"]}
    want = {t["target"]: t for t in COMMITTED["targets"]}
    assert list(got) == list(want)  # every target has its row, the missing ones' included
    own = [t for t in want if t.startswith(("nnjax --help", "python -c", "second", "Seed"))]
    assert len(own) == 6  # measured: their verdicts as committed
    assert all(got[t]["holds"] == want[t]["holds"] for t in own)
    assert all(got[t] == want[t] for t in own if t.startswith("Seed"))
    for text in set(want) - set(own):
        assert got[text]["holds"] is None, got[text]
        assert got[text]["measured"].startswith("not measured: the run stopped before "), text
    assert got["Spiking network: 1000 neurons, 10 s at dt 0.1 ms in < 60 s"]["measured"] == (
        "not measured: the run stopped before network"
    )


def test_a_target_a_missing_workload_covers_never_holds():
    """cnn measured, gru not: the CNN/GRU targets held on the CNN alone (as an --only cnn
    run's do); now "not measured" beside the CNN's figure. A measured case that misses
    still misses: the CNN's PyTorch row made as fast as fit's (1.0x < 1.5x)."""
    results = copy.deepcopy(COMMITTED)
    (cnn,) = [n for n in results["nets"] if n["model"].startswith("cnn")]
    results["nets"] = [cnn]
    cnn["rows"]["torch"]["time"] = copy.deepcopy(cnn["rows"][f"nnjax_{cnn['auto']}"]["time"])
    held = {t["target"]: t["holds"] for t in targets.evaluate(results)}  # an --only cnn run
    nets = [t for t in held if t.startswith("CNN/GRU")]
    assert [held[t] for t in nets] == [False, True]
    results.update(complete=False, done=["cnn"], missing=["gru"])
    got = {t["target"]: t for t in targets.evaluate(results)}
    assert [got[t]["holds"] for t in nets] == [False, None]
    for text in nets:
        assert got[text]["measured"].startswith("cnn B=100")
        assert got[text]["measured"].endswith("; not measured: the run stopped before gru")
    others = {t: g["holds"] for t, g in got.items() if t not in nets}
    assert others == {t: h for t, h in held.items() if t not in nets}


# a real stop signal, in a subprocess: the workload table replaced by a driver script

DRIVER = """
import sys, time, types
from benchmarks import harness, workloads
harness.device_label = lambda: "cpu-test"
harness.environment = lambda: {"cores_available": 2}
harness.load_snapshot = lambda interval=0.5: {}
harness.load_warning = lambda snap, cores: None
check = types.ModuleType("benchmarks.check")  # imports JAX: not needed here
check.Mismatch = type("Mismatch", (Exception,), {})
sys.modules["benchmarks.check"] = check
def seed(args, cfg, results, note_load, stem):
    results["seed"] = {"rows": {}}
def mlp(args, cfg, results, note_load, stem):
    print("ready", file=sys.stderr, flush=True)
    time.sleep(60)
workloads.STEPS.update(seed=seed, mlp=mlp)
import runpy
sys.argv = ["benchmarks", *sys.argv[1:]]
runpy.run_module("benchmarks", run_name="__main__", alter_sys=True)
"""


def test_sigint_during_a_workload_in_a_real_process(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    argv = ["--quick", "--only", "seed", "mlp", "--impls", "numpy", "--no-plots"]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stderr.readline()
        assert line == "ready\n", line + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    with proc.stdout, proc.stderr:
        err = proc.stderr.read()
    assert proc.returncode == 130, err
    (folder,) = tmp.iterdir()
    path = folder / f"cpu-test-{DAY}-only-seed-mlp-quick.json"
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"python -m benchmarks: error: interrupted by SIGINT: {_kept_note(path, 'seed', 'mlp')}"
    )
    assert _saved(path)["done"] == ["seed"] and sorted(os.listdir(folder)) == [path.name]
    assert not (folder / LOCK_NAME).exists()
