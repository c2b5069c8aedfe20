"""A second look at the docstring claims of nnjax.compare, of nnjax.brain's tuned, tuning and
delays, and of docs/optimizers.md, held against what the code does and the files committed.

Four were defects. ``write_tuned`` promised to keep the winners of the searches it did not
run, but merged the module imported when the process started, not the file it writes: a
second search in one process (another method or dataset) put back what the first had
replaced. ``compare`` said any error of the writing holds the study as ``.comparison``;
only an OSError or a ValueError did, and a RuntimeError of the plots lost it; and it said
files of its names that appeared in ``out`` while it trained are kept, which
``overwrite=True`` replaces.
``write_checked`` said an ``out`` "gone with its parent" since the check fails as
an OSError; it is made again, as a missing ``out`` is. docs/optimizers.md said a study runs in
"~10 compiled calls"; a prime number of epochs above 10 runs one epoch per call. The other
tests hold claims that were true against oracles, so that they stay true.
"""

import json
import os
import runpy
import shutil

import numpy as np
import pytest

from nnjax.brain import delays, tuned, tuning
from nnjax.brain import harness as H
from nnjax.compare.files import check_out, write_checked
from nnjax.compare.report import FINAL_METRICS
from nnjax.compare.study import PRESETS, OptimizerRuns, StudyResult, _chunk, make_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _words(text: str) -> str:
    return " ".join(text.split())


# --- nnjax.brain.tuning.write_tuned ------------------------------------------------------


def _search(method: str, chosen: dict, n: int, seconds: float) -> dict:
    """The part of a search's JSON that write_tuned reads: one method's winners."""
    return {"n_candidates": n, "seconds": seconds,
            "methods": {method: {"chosen": {"final": chosen, "plastic": chosen}}}}  # fmt: skip


def _read(path: str) -> tuple[dict, dict]:
    got = runpy.run_path(path)
    return got["CHOSEN"], got["SEARCH"]


def test_two_searches_in_one_process_keep_the_first_ones_winners(tmp_path):
    # write_tuned: "other datasets, and the methods of dataset this search did not run, are
    # kept"; the second write merged the imported module and put ewc's old winners back
    path = str(tmp_path / "tuned.py")
    ewc, si = {"gamma": 0.5, "lam": 1.0}, {"c": 1.0, "xi": 0.1}
    tuning.write_tuned("digits", _search("ewc", ewc, 8, 10.0), path)
    tuning.write_tuned("digits", _search("si", si, 8, 20.0), path)
    chosen, search = _read(path)
    assert chosen["digits"]["ewc"]["final"] == ewc  # was the package's gamma 0.707, lam 100
    assert chosen["digits"]["si"]["plastic"] == si
    assert chosen["digits"]["src"] == tuned.CHOSEN["digits"]["src"]
    assert chosen["mnist1d"] == tuned.CHOSEN["mnist1d"]
    # "seconds summed over the searches kept": the package's, then 10 s, then 20 s
    assert search["digits"]["seconds"] == tuned.SEARCH["digits"]["seconds"] + 30
    # a search of another dataset next keeps both digits searches
    tuning.write_tuned("mnist1d", _search("si", si, 4, 5.0), path)
    chosen, search = _read(path)
    assert chosen["digits"]["ewc"]["final"] == ewc and chosen["mnist1d"]["si"]["final"] == si
    assert search["mnist1d"]["n_candidates"]["si"] == 4
    assert search["mnist1d"]["n_candidates"]["ewc"] == tuned.SEARCH["mnist1d"]["n_candidates"]


def test_the_tuned_file_reads_back_as_the_imported_module():
    chosen, search = tuning._written(tuning.TUNED_PATH)
    assert chosen == tuned.CHOSEN and search == tuned.SEARCH


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_the_tuned_winners_are_the_committed_searchs_by_its_rule(dataset):
    # tuned: "chosen by the harness's search on the validation runs"; tuning: N candidates
    # per method scored on the 10 validation runs (orders 100, 101 x seeds split(key(1000), 5))
    with open(os.path.join(ROOT, "docs", "results", f"sleep-{dataset}", "search.json")) as f:
        s = json.load(f)
    n = tuned.SEARCH[dataset]["n_candidates"]
    assert s["n_candidates"] == n == 8 and round(s["seconds"]) == tuned.SEARCH[dataset]["seconds"]
    assert s["validation_orders"] == list(H.VALIDATION_ORDERS) == [100, 101]
    assert s["validation_seeds"] == "jax.random.split(jax.random.key(1000), 5)"
    assert tuned.SEARCH[dataset]["validation_runs"] == 10
    for name, objectives in tuned.CHOSEN[dataset].items():
        rec = s["methods"][name]
        assert rec["validation_runs"] == 10
        # the harness's rule, re-run on the recorded means: the winners it names
        means = {k: np.asarray(rec[f"{k}_accuracy"]["mean"])[:, None]
                 for k in ("final", "just_learned")}  # fmt: skip
        diverged = (np.asarray(rec["diverged_runs"]) > 0)[:, None]
        pick = H.select(H.Runs(means, diverged, 0.0), s["plasticity_floor"])
        stack = H.candidates(name, n)
        for objective, value in objectives.items():
            assert pick[objective] == rec["winners"][objective]
            assert value == rec["chosen"][objective] == H.hp_at(stack, pick[objective])


# --- nnjax.compare.files.write_checked ---------------------------------------------------


def _result() -> StudyResult:
    """A small StudyResult made by hand (2 rates x 2 seeds x 2 epochs of 3 steps)."""
    study = make_study("moons", optimizers="sgd", learning_rates={"sgd": [0.1, 0.01]},
                       seeds=2, epochs=2)  # fmt: skip
    metrics = {m: np.full((2, 2, 2), 0.5, np.float32) for m in (*FINAL_METRICS, "step_loss_mean")}
    runs = OptimizerRuns("sgd", np.array([0.1, 0.01]), np.array([0, 1]), 32, 3,
                         np.full((2, 2, 6), 0.7, np.float32), metrics, 0.0, 1.0)  # fmt: skip
    sizes = {"n_fit": 256, "n_val": 64, "n_test": 80, "n_features": 2, "n_classes": 2}
    return StudyResult(study, "mlp", sizes, True, {"sgd": runs})


def test_an_out_removed_with_its_parent_since_the_check_is_made_again(tmp_path):
    # write_checked said such an out fails as an OSError: it is made again, as a missing out
    parent = tmp_path / "p"
    (parent / "out").mkdir(parents=True)
    out = check_out(str(parent / "out"))
    shutil.rmtree(parent)
    paths = write_checked(_result(), out, plots=False)
    assert sorted(os.listdir(out)) == ["report.md", "runs.csv", "runs.json"]
    assert paths["csv"] == os.path.join(out, "runs.csv")
    assert "is made again" in _words(write_checked.__doc__)
    # a folder on its way made a file: an OSError, which compare answers with a rescue
    shutil.rmtree(parent)
    parent.write_text("mine")
    with pytest.raises(OSError):
        write_checked(_result(), out, plots=False)
    assert parent.read_text() == "mine"


def test_an_error_of_any_kind_while_writing_holds_the_study(tmp_path, monkeypatch):
    # compare: "that error, or any other of the writing, holds the study as .comparison";
    # only an OSError or a ValueError did: a RuntimeError of the plots lost the study
    import importlib

    compare_module = importlib.import_module("nnjax.compare")  # nnjax.compare: the function
    files = importlib.import_module("nnjax.compare.files")

    def fail(*args, **kwargs):
        raise RuntimeError("the figure could not be drawn")

    monkeypatch.setattr(files, "render", fail)
    result, out = _result(), str(tmp_path / "out")
    with pytest.raises(RuntimeError, match="the figure could not be drawn") as e:
        compare_module._write_or_rescue(result, out, plots=True, overwrite=False)
    kept = e.value.comparison
    assert kept.result is result and kept.paths == {}
    assert kept.summary["sgd"]["best_lr"] == 0.01  # a tie of equal losses: the smaller rate
    assert not os.path.exists(out)  # nothing written


def test_files_that_appeared_while_it_trained_are_kept_unless_overwrite(tmp_path):
    # compare: files of its names that appeared in out meanwhile "are kept"; with
    # overwrite=True they are replaced, as those found before are (the docstring said kept)
    import importlib

    from nnjax.rescue import RescuedError

    compare_module = importlib.import_module("nnjax.compare")
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_text("mine")
    with pytest.raises(RescuedError, match="came to hold runs.csv") as e:
        compare_module._write_or_rescue(_result(), str(out), plots=False, overwrite=False)
    assert (out / "runs.csv").read_text() == "mine"
    assert sorted(os.listdir(e.value.rescued)) == ["report.md", "runs.csv", "runs.json"]
    shutil.rmtree(e.value.rescued)
    compare_module._write_or_rescue(_result(), str(out), plots=False, overwrite=True)
    assert (out / "runs.csv").read_text().startswith("optimizer,learning_rate,seed,")
    doc = _words(compare_module.compare.__doc__)
    assert "(they are kept; ``overwrite=True`` replaces them as it replaces those" in doc


# --- the chunks of a study: docs/optimizers.md and study._chunk --------------------------


def test_compiled_calls_per_optimizer_are_ten_for_the_presets_and_epochs_for_a_prime():
    # docs: "10 calls for the presets' epochs ... 34 epochs run in 17 calls of 2, and a prime
    # number of epochs above 10, e.g. --epochs 61, runs one epoch per call" (it said "~10")
    for preset in PRESETS.values():
        assert preset["epochs"] // _chunk(preset["epochs"], 10) == 10
    for epochs, calls in ((61, 61), (13, 13), (7, 7), (34, 17), (12, 6), (25, 25), (50, 10)):
        chunk = _chunk(epochs, 10)
        assert epochs % chunk == 0 and epochs // chunk == calls
    with open(os.path.join(ROOT, "docs", "optimizers.md"), encoding="utf-8") as f:
        doc = _words(f.read())
    assert "~10 compiled calls" not in doc
    assert "34 epochs run in 17 calls of 2" in doc
    assert "a prime number of epochs above 10, e.g. `--epochs 61`, runs one epoch per call" in doc


# --- nnjax.brain.delays ------------------------------------------------------------------


def test_delay_steps_divides_in_float64_and_rounds_half_to_even():
    # delay_steps: "2.55 ms at dt 0.1 is 25 steps ... (float32 made it 25.5, rounded to 26)"
    assert int(delays.delay_steps(2.55, 0.1)) == 25
    assert int(delays.delay_steps(np.float32(2.55), 0.1)) == 25
    assert np.float32(2.55) / np.float32(0.1) == np.float32(25.5)
    # round(delay / dt), Python's and NumPy's rounding: half-way to even (0.25 / 0.1 = 2.5)
    got = np.asarray(delays.delay_steps(np.array([0.0, 0.25, 1.5, 0.35]), 0.1))
    want = [round(x / 0.1) for x in (0.0, 0.25, 1.5, 0.35)]
    assert got.dtype == np.int32 and got.tolist() == want == [0, 2, 15, 3]
