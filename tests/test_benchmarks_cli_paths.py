"""``python -m benchmarks`` and ``nnjax bench`` on the paths of the audit: a command line that
makes no sense (a workload named twice, one --quick skips, an option no chosen workload
reads, rounds without end) is one line, exit 2, before anything runs, in both commands; the
files of an earlier run in --out are kept unless --overwrite (the committed results
included); a partial run's files never take the names of the full run's; the scaling JSON is
written atomically.

The runs stub the workloads and the JAX behind them: each test takes well under a second."""

import time

import pytest

from benchmarks import cli, harness, report, scaling

DAY = time.strftime("%Y-%m-%d", time.gmtime())  # the reports' names: UTC


@pytest.mark.parametrize(
    "argv, message",
    [
        # each was accepted: --only seed seed quietly ran once; --quick --only anatomy ran
        # nothing and wrote an empty report (exit 0); the others ran and ignored the option
        (["--only", "seed", "seed"], "--only: seed given twice; give each once"),
        (["--quick", "--only", "anatomy"],
         "--only anatomy: full runs only, --quick skips it; leave out --quick"),
        (["--quick", "--only", "seed", "network", "scaling"],
         "--only network scaling: full runs only, --quick skips them"),
        (["--only", "peak", "--impls", "torch"],
         "--impls: only the mlp workload reads it, and --only peak runs none; add mlp to "
         "--only, or leave --impls out"),
        (["--only", "seed", "--models", "digits 64-256-256-10"], "--models: only the mlp"),
        (["--only", "seed", "--batch-sizes", "64"], "--batch-sizes: only the mlp workload"),
        (["--only", "seed", "--optimizer", "adam"], "--optimizer: only the mlp workload"),
        (["--only", "startup", "--no-memory"], "--no-memory: only the mlp workload"),
        (["--only", "dispatch", "--repeats", "3"],
         "--repeats: only the timed workloads (seed, peak, mlp, cnn, gru, vmap, anatomy) read "
         "it, and --only dispatch runs none"),
        (["--only", "startup", "scaling", "--pause", "0"], "--pause: only the timed workloads"),
        (["--only", "network", "--min-block", "1"], "--min-block: only the timed workloads"),
        # --repeats 1000000000 ran a quick seed workload for years
        (["--only", "seed", "--repeats", "1000000000"],
         "argument --repeats: must be an integer in [1, 1000] (1000 rounds take about a day), "
         "got '1000000000'"),
    ],
)  # fmt: skip
def test_a_command_line_that_makes_no_sense_is_one_line_exit_2(argv, message, suite, capsys):
    from nnjax.cli import main

    argv = [*argv, "--no-plots", "--out", str(suite)]
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("nnjax bench: error: ") and message in err, err
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err, err
    assert err.startswith("python -m benchmarks: error: ") and message in err, err
    assert list(suite.iterdir()) == []  # refused before anything ran or was written


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--quick"],
        ["--quick", "--repeats", "1000", "--pause", "0", "--no-memory"],  # all: mlp reads them
        ["--only", "mlp", "--impls", "torch", "--optimizer", "adam", "--batch-sizes", "64"],
        ["--only", "seed", "dispatch", "--repeats", "3", "--min-block", "0"],
        ["--only", "anatomy", "network", "scaling"],  # a full run runs them
    ],
)
def test_command_lines_that_make_sense_pass_the_checks(argv):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    cli.check(parser.parse_args(argv))


@pytest.fixture
def suite(tmp_path, monkeypatch):
    """The suite in this process, no workload run and no JAX: the device is ``cpu-test``,
    the report one line; returns the folder --out."""
    import nnjax.cli

    monkeypatch.setattr(harness, "device_label", lambda: "cpu-test")
    monkeypatch.setattr(harness, "environment", lambda: {"cores_available": 2})
    monkeypatch.setattr(harness, "load_snapshot", lambda interval=0.5: {})
    monkeypatch.setattr(harness, "load_warning", lambda snap, cores: None)
    monkeypatch.setattr("benchmarks.workloads.run_workloads", lambda *a: None)
    monkeypatch.setattr(report, "markdown", lambda results, pngs: "the report\n")
    monkeypatch.setattr(report, "print_terminal", lambda results: None)
    monkeypatch.setattr(nnjax.cli, "_compilation_cache", lambda args, allowed: None)
    out = tmp_path / "out"
    out.mkdir()
    return out


def _run(command: str, *argv) -> int:
    from nnjax.cli import main

    argv = [str(a) for a in argv]
    return main(["bench", *argv]) if command == "nnjax" else cli.main(argv)


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", ["nnjax", "suite"])
def test_a_partial_run_never_writes_the_full_runs_files(command, suite, capsys):
    """review: `--only scaling --out benchmarks/results` wrote its report as
    cpu-2cores-<day>-scaling.json, the name of the committed full run's scaling JSON, which
    it replaced (exit 0). Every partial run's files now have names of their own."""
    full = [f"cpu-test-{DAY}{s}" for s in (".json", ".md", "-throughput.png", "-vmap.png")]
    for name in [*full, f"cpu-test-{DAY}-scaling.json"]:
        (suite / name).write_text(f"the committed {name}")
    before = _files(suite)
    for only in cli.WORKLOADS:
        assert _run(command, "--only", only, "--no-plots", "--out", suite) == 0
    capsys.readouterr()
    after = _files(suite)
    assert {n: after[n] for n in before} == before
    assert f"cpu-test-{DAY}-only-scaling.json" in after


@pytest.mark.parametrize("command", ["nnjax", "suite"])
def test_an_earlier_runs_files_in_out_are_kept_unless_overwrite(command, suite, capsys):
    """review: a second run of the day into one --out (`--out benchmarks/results`, whose
    results are committed, included) replaced the first one's report silently."""
    stem = f"cpu-test-{DAY}-only-seed-quick"
    (suite / "notes.txt").write_text("someone's notes")
    (suite / f"{stem}.json").write_text("an earlier run's numbers")
    before = _files(suite)
    assert _run(command, "--quick", "--only", "seed", "--no-plots", "--out", suite) == 2
    err = capsys.readouterr().err.strip()
    prog = "nnjax bench" if command == "nnjax" else "python -m benchmarks"
    assert err == (
        f"{prog}: error: --out {suite} already holds {stem}.json, of the names this run "
        "writes: add --overwrite to replace it, or choose another --out"
    )
    assert _files(suite) == before and not (suite / "nnjax.lock").exists()


@pytest.mark.parametrize("command", ["nnjax", "suite"])
def test_overwrite_replaces_the_runs_files_and_keeps_the_others(command, suite, capsys):
    """--overwrite replaces the run's report and removes the figure of the same name that it
    no longer draws (its report would not name it); other files stay."""
    stem = f"cpu-test-{DAY}-only-mlp-quick"
    (suite / "notes.txt").write_text("someone's notes")
    (suite / f"{stem}.md").write_text("an earlier report")
    (suite / f"{stem}-throughput.png").write_text("an earlier figure")
    argv = ["--quick", "--only", "mlp", "--no-plots", "--out", suite]
    assert _run(command, *argv) == 2
    assert "already holds" in capsys.readouterr().err
    assert _run(command, *argv, "--overwrite") == 0
    capsys.readouterr()
    assert sorted(_files(suite)) == sorted([f"{stem}.json", f"{stem}.md", "notes.txt"])
    assert (suite / f"{stem}.md").read_text() == "the report\n"
    assert (suite / "notes.txt").read_text() == "someone's notes"


@pytest.mark.parametrize("command", ["nnjax", "suite"])
def test_a_failed_run_leaves_no_empty_out_it_made(command, suite, monkeypatch, capsys):
    """review: a full disk while writing the report left the --out a/b that `python -m
    benchmarks` had made, empty; `nnjax bench` removed it (nnjax.cli._folder_lock)."""
    from disk_faults import enospc_when_writing

    enospc_when_writing(monkeypatch, "cpu-test")
    out = suite / "a" / "b"
    assert _run(command, "--quick", "--only", "seed", "--no-plots", "--out", out) == 3
    assert "No space left on device" in capsys.readouterr().err
    assert list(suite.iterdir()) == []


def test_the_scaling_json_is_written_atomically(tmp_path, monkeypatch, capsys):
    """review: `python -m benchmarks.scaling --out X` on a full disk truncated an earlier X
    (the full run's into benchmarks/results: 1939 bytes to 1024 with `ulimit -f 1`) and
    ended in a traceback."""
    from disk_faults import enospc_when_writing

    monkeypatch.setattr(scaling, "_spawn", lambda n, cfg, b, t: {"devices": n, "skipped": "-"})
    out = tmp_path / "x-scaling.json"
    out.write_text('{"strong": "an earlier run"}')
    enospc_when_writing(monkeypatch, "x-scaling")
    assert scaling.main(["--quick", "--devices", "1", "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip()
    assert line == (
        f"python -m benchmarks.scaling: error: {out}: No space left on device (errno 28, ENOSPC)"
    )
    assert out.read_text() == '{"strong": "an earlier run"}'
    assert [p.name for p in tmp_path.iterdir()] == ["x-scaling.json"]  # no temporary file
    monkeypatch.undo()
    monkeypatch.setattr(scaling, "_spawn", lambda n, cfg, b, t: {"devices": n, "skipped": "-"})
    assert scaling.main(["--quick", "--devices", "1", "--out", str(out)]) == 0
    assert '"strong"' in out.read_text() and "an earlier run" not in out.read_text()


@pytest.mark.parametrize(
    "only, impls, threads",
    [
        (["cnn"], ["numpy", "nnjax_step"], 2),
        (["mlp"], ["numpy"], None),
        (["seed"], ["torch"], None),
    ],
)
def test_pytorchs_threads_are_set_where_a_pytorch_row_runs(only, impls, threads, monkeypatch):
    """review: `--only mlp cnn --impls numpy nnjax_step` ran the CNN's PyTorch row with
    PyTorch's threads unset, and the report said `PyTorch ... (threads: None)`; PyTorch was
    imported for every run whose --impls held torch (`--only seed`)."""
    pytest.importorskip("torch")
    import argparse

    from benchmarks import workloads

    monkeypatch.setattr(harness, "n_cores", lambda: 2)
    monkeypatch.setattr(workloads, "_run_nets", lambda *a: [])
    monkeypatch.setattr("benchmarks.seed.bench_seed", lambda *a: {})
    args = argparse.Namespace(only=only, impls=impls, quick=True, pause=0.0, optimizer="sgd")
    results = {"env": {}}
    cfg = {"repeats": 1, "min_block": 0.0, "models": [], "batch_sizes": [32]}
    cfg.update(target_steps=lambda B: 8, max_examples=256, memory=False)
    monkeypatch.setattr("benchmarks.mlp.problems", lambda *a: [])
    workloads.run_workloads(args, cfg, results, lambda when: None, "stem")
    assert results["env"].get("torch_threads") == threads
