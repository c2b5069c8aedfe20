"""An audit of the everyday paths of ``nnjax compare``, ``nnjax sleep`` and ``nnjax night``:
the night's bins and README, ``--out`` checked before any JAX work (blank, a file on its
way, the write probe's folders), options the run would ignore refused, compare's
runs.json, memory check and update equations, the harness docstring."""

import errno
import json
import os

import numpy as np
import pytest

from nnjax.cli import build_parser, main
from nnjax.commands import compare as compare_command
from nnjax.commands import night as night_command
from nnjax.commands import options
from nnjax.commands import sleep as sleep_command


def _error_line(capsys, command: str) -> str:
    """The one line on stderr, ``nnjax <command>: error: ...``."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"nnjax {command}: error: "), err
    return err


def _args(command: str, *argv):
    return build_parser([command]).parse_args([command, *argv])


def _no_run(monkeypatch, module):
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the run started"))


# 1. nnjax night: a stage's bins are rounded, not truncated


def test_stage_bins_rounds_a_product_that_float_division_leaves_below_a_whole_number():
    from nnjax.brain import night

    assert int(0.3 / 0.1) == 2 and night.stage_bins(0.3, 100.0) == 3
    assert int(3 * 0.35 * 1000.0) == 1049 and night.stage_bins(3 * 0.35, 1.0) == 1050
    assert night.stage_bins(4.0, 1.0) == 4000 and night.stage_bins(2.0, 10.0) == 200


def test_describe_stages_takes_every_bin_of_the_stretch(monkeypatch):
    """Epochs of 1.15 s: W runs [0, 3.45) s, N [3.45, 6.9) s. Truncated, W's end bin was
    3449 (3.45 * 1000 = 3449.9999999999995) and N's first 4449: a bin lost, one shifted."""
    from nnjax.brain import night, sleep_states

    seen = {}

    def describe(seg, bin_ms, n_exc, nperseg):
        seen[len(seen)] = (int(seg["rate"][0, 0]), len(seg["rate"]), nperseg)
        return {}

    monkeypatch.setattr(sleep_states, "describe", describe)
    record = {"rate": np.arange(10350)[:, None], "lfp": np.zeros(10350)}
    out = night.describe_stages(record, np.repeat([0, 1, 2], 3), 1.15, 1.0, n_exc=1)
    # W from 1 s (settle) to 3.45 s; N from 4.45 s to 6.9 s; R from 7.9 s to 10.35 s
    assert seen == {0: (1000, 2450, 2450), 1: (4450, 2450, 2450), 2: (7900, 2450, 2450)}
    assert [d["seconds"] for d in out.values()] == [2.45, 2.45, 2.45]


# 2. night's README: seconds as given, the replay window used, the Welch segments as run


def _night_results(protocol) -> dict:
    from nnjax.brain import consolidation, night

    rng = np.random.default_rng(0)
    per_stage = {st: {s: rng.random(4) for s in ("S1", "S2")} for st in consolidation.STAGES}
    raw = {m: {cond: per_stage for cond in consolidation.CONDITIONS} for m in ("recall", "trace")}
    raw["replay_order"] = {"sleep": rng.random(4)}
    stage = {"seconds": 2.5, "rate_exc_hz": 1.0, "slow_power_fraction": 0.5,
             "peak_hz_below_4": 1.0, "updown_hz": 0.5, "up_fraction": 0.4,
             "cv_isi_median": 1.0, "pairwise_correlation": 0.01}  # fmt: skip
    return {
        "args": {"parts": ["night", "consolidation"], "seed": 0},
        "night": {
            "hypnogram": "W,N,R",
            "epoch_s": 0.1 + 0.2 + 3,
            "stages": {"wake": stage},
            "network": "CORTEX",
        },  # fmt: skip
        "consolidation": {
            "protocol": protocol._asdict(),
            "network": "SMALL",
            "stats": night.experiment_stats(raw),
        },  # fmt: skip
    }


def test_night_readme_states_the_seconds_and_the_replay_window_used():
    from nnjax.brain import consolidation, night

    p = consolidation.Protocol(train_s=0.1 + 0.2, consolidation_s=2.0, interference_s=1.0)
    text = night.report_markdown(_night_results(p))
    assert "0.30000000000000004" not in text and "3.3000000000000003" not in text
    assert "epochs of 3.3 s" in text and "for 0.3 s with pair STDP" in text
    assert "| wake | 2.5 |" in text  # was "| wake | 2 |" (.0f)
    # the replay is scored on the raster of min(raster_s 4 s, consolidation_s 2 s)
    assert night.replay_s(p._asdict()) == 2.0
    assert "in the first 2 s of NREM" in text and "first 4 s" not in text
    assert "first non-zero Welch frequency to 100 Hz (0.25 Hz for 4 s segments, 1/T for a " in text
    assert "stretch of T < 4 s, taken whole)" in text
    assert night.SPECTRUM_S == 4.0


def test_raster_s_copy_equals_the_protocols():
    from nnjax.brain import consolidation

    assert night_command.RASTER_S == consolidation.Protocol().raster_s


# 3. --out with a file on its way: one line naming it, before any JAX work; a missing
# parent is made, as nnjax train makes it


@pytest.mark.parametrize("command", ["compare", "night"])
@pytest.mark.parametrize("depth", [1, 2])
def test_an_out_with_a_file_on_its_way_is_refused_first(
    command, depth, tmp_path, capsys, monkeypatch
):
    import importlib

    module = compare_command if command == "compare" else night_command
    _no_run(monkeypatch, module)
    study = importlib.import_module("nnjax.compare")  # the package: nnjax.compare is compare()
    monkeypatch.setattr(study, "make_study", lambda *a, **k: pytest.fail("set up"))
    parent = tmp_path / "parent"
    parent.write_text("mine")
    out = parent / "out" if depth == 1 else parent / "deeper" / "out"
    extra = ["--dataset", "xor"] if command == "compare" else ["--parts", "consolidation"]
    assert main([command, *extra, "--out", str(out)]) == 3
    assert _error_line(capsys, command) == (
        f"nnjax {command}: error: --out {out}: {parent} on its way is a file, not a folder; "
        "give a folder path (errno 20, ENOTDIR)"
    )
    assert sorted(os.listdir(tmp_path)) == ["parent"] and parent.read_text() == "mine"


def test_out_parent_error_takes_folders_and_new_folders_in_them(tmp_path):
    (tmp_path / "f").write_text("")
    assert options.out_parent_error(str(tmp_path)) is None
    assert options.out_parent_error(str(tmp_path / "new")) is None
    assert options.out_parent_error(str(tmp_path / "new") + "/") is None
    assert options.out_parent_error(str(tmp_path / "new" / "deeper" / "out")) is None
    assert "is a file, not a folder" in str(options.out_parent_error(str(tmp_path / "f")))
    error = options.out_parent_error(str(tmp_path / "f" / "x" / "y"))
    assert f"{tmp_path / 'f'} on its way is a file" in str(error)
    assert not (tmp_path / "new").exists()  # a check: it makes nothing


# 4. a blank --out is refused (night, sleep; compare already did)


@pytest.mark.parametrize("command", ["night", "sleep", "compare"])
@pytest.mark.parametrize(
    "blank, shown",
    [("", "an empty value ('')"), (" ", "only whitespace (1 character)"),
     ("  \t", "only whitespace (3 characters)")],
)  # fmt: skip
def test_a_blank_out_is_refused(command, blank, shown, capsys, monkeypatch, tmp_path):
    """The value is described in words: the one-line error squeezes whitespace, and showed
    '   ' as ' '."""
    monkeypatch.chdir(tmp_path)
    module = {"night": night_command, "sleep": sleep_command, "compare": compare_command}
    _no_run(monkeypatch, module[command])
    assert main([command, "--out", blank]) == 2
    line = _error_line(capsys, command)
    assert line == f"nnjax {command}: error: --out takes a folder path, got {shown}"
    assert os.listdir(tmp_path) == []


# 5. sleep's write probe leaves no folder behind


def test_sleeps_write_probe_removes_the_folders_it_made(tmp_path):
    out = tmp_path / "new" / "deeper"
    sleep_command.check(_args("sleep", "--out", str(out)))
    assert os.listdir(tmp_path) == []  # the run's lock makes them when it starts
    (tmp_path / "mine").mkdir()
    sleep_command.check(_args("sleep", "--out", str(tmp_path / "mine")))
    assert os.listdir(tmp_path) == ["mine"]  # the user's folder stays


def test_sleeps_write_probe_that_fails_removes_the_folders_it_made(tmp_path, monkeypatch):
    from nnjax import preflight

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preflight.os, "fsync", full)
    with pytest.raises(OSError, match="--out .* is not writable: no space left on device"):
        sleep_command.check(_args("sleep", "--out", str(tmp_path / "new" / "deeper")))
    assert os.listdir(tmp_path) == []


# 6, 9. compare's runs.json and report, as run


@pytest.fixture(scope="module")
def xor_full_batch():
    """gd and sgd on xor (4 points) with a batch of 4: both run full batch."""
    from nnjax.compare import make_study, run_optimizer_study

    kw = {"optimizers": ("gd", "sgd"), "learning_rates": {"gd": (0.1,), "sgd": (0.1,)}}
    return run_optimizer_study(make_study("xor", **kw, seeds=(0,), epochs=1, batch_size=4))


def test_runs_json_records_the_full_batch_optimizers_as_run(xor_full_batch):
    from nnjax.compare import files

    study = files.to_json(xor_full_batch)["study"]
    assert study["full_batch"] == ["gd", "sgd"]  # was ["gd"]: sgd's batch held every point
    assert {r["optimizer"]: r["batch_size"] for r in files.run_rows(xor_full_batch)} == {
        "gd": "full",
        "sgd": "full",
    }


def test_the_report_states_the_equations_of_the_optimizers_run(xor_full_batch):
    from nnjax.compare import report

    text = report.markdown(xor_full_batch).split("## Update equations")[1]
    bullets = [line.split("**")[1] for line in text.splitlines() if line.startswith("* **")]
    assert bullets == ["GD", "SGD"]
    assert "(all of the fit set for gd, sgd)" in text and "mini-batch" not in text
    assert set(report.EQUATIONS) == set(options.optimizers()[0])
    mixed = report.update_equations(["gd", "adam"], ["gd"])
    assert "all of the fit set for gd; a mini-batch for adam" in mixed
    assert "**Adam**" in mixed and "**SGD**" not in mixed and "RMSProp" not in mixed


# 7. compare refuses options it would ignore


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--optimizers", "gd", "--batch-size", "8"], "--batch-size 8: --optimizers gd train "),
        (["--dataset", "xor", "--val-fraction", "0.1"], "--val-fraction 0.1: --dataset xor is "),
        (["--dataset", "toy", "--val-fraction", "0"], "--val-fraction 0: --dataset toy is too"),
    ],
)
def test_compare_refuses_an_option_it_would_ignore(argv, text, capsys, monkeypatch, tmp_path):
    _no_run(monkeypatch, compare_command)
    assert main(["compare", *argv, "--out", str(tmp_path / "c")]) == 2
    assert text in _error_line(capsys, "compare")
    assert not (tmp_path / "c").exists()


def test_compare_takes_a_batch_size_beside_gd_and_a_split_where_there_is_one(tmp_path):
    out = str(tmp_path / "c")
    compare_command.check(_args("compare", "--optimizers", "gd,sgd", "--batch-size", "8",
                                "--dataset", "moons", "--out", out))  # fmt: skip
    compare_command.check(_args("compare", "--dataset", "moons", "--val-fraction", "0.1"))


def test_no_split_names_exactly_the_datasets_load_does_not_split():
    """NO_SPLIT is defined once (nnjax.data); compare's option check and its study read it."""
    from nnjax.data import DATASETS, NO_SPLIT, load

    unsplit = set()
    for name in DATASETS:
        ds = load(name)
        if ds.X_test is ds.X_train:  # test = train: the same points, not a copy
            unsplit.add(name)
        else:
            assert ds.X_test.shape[0] > 0 and ds.X_train.shape[0] > 0, name
    assert unsplit == set(NO_SPLIT)


# 8. compare's memory check counts the model's parameters and activations


def test_mlp_parameters_counts_the_models_params():
    import jax

    from nnjax.compare.settings import mlp_parameters
    from nnjax.models import mlp

    _, params = mlp([7, 5, 3]).init(jax.random.key(0), (-1, 4))
    assert mlp_parameters(4, (7, 5), 3) == sum(a.size for a in jax.tree.leaves(params))


def test_a_model_too_big_for_memory_is_refused_naming_hidden(capsys, monkeypatch, tmp_path):
    import nnjax._host
    from nnjax.compare import make_study
    from nnjax.compare.settings import ACTIVATION_COPIES, PARAM_COPIES

    monkeypatch.setattr(nnjax._host, "physical_memory", lambda: 2**30)  # a 1 GiB machine
    _no_run(monkeypatch, compare_command)
    out = tmp_path / "big"
    argv = ["compare", "--dataset", "xor", "--optimizers", "adam", "--seeds", "2"]
    assert main([*argv, "--hidden", "1000000", "--out", str(out)]) == 2
    line = _error_line(capsys, "compare")
    # 5 rates x 2 seeds; 2-10^6-2: 5000002 params; 4 points x (10^6 + 2) units, float32
    need = 10 * (PARAM_COPIES * 5_000_002 + ACTIVATION_COPIES * 4 * 1_000_002) * 4
    assert "the MLP 2-1000000-2 of --hidden has 5,000,002 parameters; 10 runs" in line
    assert f"need about {nnjax._host.size_text(need)} of memory" in line
    assert not out.exists()
    make_study("xor", optimizers="adam", seeds=2, hidden=(100_000,))  # 0.1 GiB: taken


# 10. the harness docstring states the test orders the study runs


def test_the_harness_docstring_names_the_test_orders():
    from nnjax.brain import harness, study

    doc = " ".join(harness.__doc__.split())
    assert f"test runs (orders {', '.join(map(str, study.TEST_ORDERS))}," in doc
    assert study.TEST_ORDERS == (0, 1, 2, 3, 4)


# found in the audit: night's --seeds against memory, options of a part not run, sleep's
# --sleep-steps without a sleeping method


def test_night_refuses_more_seeds_than_memory_holds(capsys, monkeypatch, tmp_path):
    """--seeds 10**8 failed as out of memory after 47 s of setting up the networks."""
    monkeypatch.setattr("nnjax._host.physical_memory", lambda: 16 * 2**30)
    _no_run(monkeypatch, night_command)
    argv = ["night", "--parts", "consolidation", "--out", str(tmp_path / "n")]
    assert main([*argv, "--seeds", str(10**8)]) == 2
    line = _error_line(capsys, "night")
    assert f"--seeds {10**8}: {10**8} networks simulated together need about" in line
    assert line.endswith("this machine has 16 GiB: fewer --seeds")
    night_command.check(_args("night", *argv[1:], "--seeds", "1000"))  # 6 GB: taken


@pytest.mark.parametrize(
    "argv, option, part",
    [
        (["--parts", "night", "--seeds", "5"], "--seeds", "consolidation"),
        (["--parts", "night", "--consolidation-s", "2"], "--consolidation-s", "consolidation"),
        (["--parts", "consolidation", "--epoch-s", "3"], "--epoch-s", "night"),
        (["--parts", "consolidation", "--hypnogram", "W,N,R"], "--hypnogram", "night"),
    ],
)
def test_night_refuses_an_option_of_a_part_it_does_not_run(
    argv, option, part, capsys, monkeypatch, tmp_path
):
    _no_run(monkeypatch, night_command)
    assert main(["night", *argv, "--out", str(tmp_path / "n")]) == 2
    assert _error_line(capsys, "night") == (
        f"nnjax night: error: {option}: only the {part} part reads it, and --parts "
        f"{argv[1]} leaves that part out; add {part} to --parts, or leave {option} out"
    )


def test_nights_recorded_settings_are_those_of_the_parts_run(tmp_path):
    args = _args("night", "--parts", "night", "--out", str(tmp_path), "--epoch-s", "3")
    night_command.check(args)
    assert night_command._args_dict(args) == {
        "parts": ["night"], "seed": 0, "hypnogram": night_command.DEFAULT_NIGHT, "n_exc": 800,
        "epoch_s": 3.0,
    }  # fmt: skip


def test_sleep_refuses_sleep_steps_without_a_sleeping_method(capsys, monkeypatch):
    _no_run(monkeypatch, sleep_command)
    assert main(["sleep", "--methods", "sequential,ewc", "--sleep-steps", "5"]) == 2
    assert _error_line(capsys, "sleep") == (
        "nnjax sleep: error: --sleep-steps 5: only SRC sleeps (src, src+replay1), and --methods "
        "sequential,ewc has none of them; add one, or leave --sleep-steps out"
    )
    sleep_command.check(_args("sleep", "--methods", "src+replay1", "--sleep-steps", "5"))
    assert set(sleep_command.SLEEPING) <= set(sleep_command.METHODS)


def test_sleeps_memory_check_counts_sleep_steps_only_when_a_method_sleeps(monkeypatch):
    """10 runs: 300 wake steps need 96 kB, 1000 sleep steps 320 kB; on a 200 kB machine a
    study without SRC was refused for the sleep it would not run."""
    monkeypatch.setattr("nnjax._host.physical_memory", lambda: 200_000)
    sleep_command.check(_args("sleep", "--methods", "sequential"))
    with pytest.raises(ValueError, match=r"runs of 1000 steps \(--sleep-steps's default\)"):
        sleep_command.check(_args("sleep", "--methods", "sequential,src"))


def test_the_compare_cli_writes_full_batch_as_run(tmp_path, capsys):
    """The command end to end on a tiny study: runs.json and report.md as run."""
    out = tmp_path / "c"
    argv = ["compare", "--dataset", "xor", "--optimizers", "sgd", "--lr", "sgd=0.1"]
    argv += ["--seeds", "1", "--epochs", "1", "--batch-size", "4", "--no-plots"]
    assert main([*argv, "--out", str(out)]) == 0
    study = json.loads((out / "runs.json").read_text())["study"]
    assert study["full_batch"] == ["sgd"] and study["optimizers"] == ["sgd"]
    report = (out / "report.md").read_text()
    assert "**SGD**" in report and "**GD**" not in report and "**Adam**" not in report
