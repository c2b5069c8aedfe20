"""Audit of ``nnjax sleep``, ``nnjax night`` and ``nnjax compare`` on the small and odd option
values a user tries first: what their tables print from 1 or 2 runs, or from phases too short
to change anything. Each test failed before its fix (the old output is in its docstring)."""

import warnings

import numpy as np
import pytest
from scipy import stats

from nnjax.brain import consolidation, night, study
from nnjax.brain.study_report import CUT, CUT_NOTE, format_table
from nnjax.cli import main


def _study(n_orders: int, n_seeds: int, finals: dict) -> dict:
    """A study result as run_study returns it, every metric equal to the final accuracy."""
    metrics = {
        r: {k: np.asarray(f) for k in study.METRICS} | {"seen": np.tile(np.asarray(f)[:, None], 5)}
        for r, f in finals.items()
    }
    res = {"dataset": "digits", "orders": list(range(n_orders)), "n_seeds": n_seeds,
           "rows": list(finals), "scenario": "class", "metrics": metrics, "hp": {},
           "hp_source": dict.fromkeys(finals, "-")}  # fmt: skip
    res["stats"] = study.summarise(res)
    return res


def _row(table: str, start: str) -> list[str]:
    return [x for x in table.splitlines() if x.startswith(start)]


def test_a_single_run_prints_n_a_not_nan():
    """run_study(orders=[0], n_seeds=1) (its docstring allows it): the table printed
    "20.0 ± nan", "[nan, nan]", "1 paired runs", and a t-test p of 1 for a tied pair."""
    table = format_table(_study(1, 1, {"sequential": [0.2], "src": [0.3]}))
    assert "± nan" not in table and "nan]" not in table and "| nan |" not in table
    assert "x 1 seed = 1 run (a std, CI or test needs 2: n/a below)" in table
    row = _row(table, "| SRC (sleep) |")
    assert row[0].startswith("| SRC (sleep) | 30.0 ± n/a | n/a | 30.0 ± n/a |")
    assert row[1] == "| SRC (sleep) | +10.0 n/a | n/a | 1 | 1/0 | - | - | - | - |"
    # a tied single pair: its t-test printed p = 1 (a number from one run)
    tied = format_table(_study(1, 1, {"sequential": [0.2], "src": [0.2]}))
    assert _row(tied, "| SRC (sleep) |")[1].startswith("| SRC (sleep) | +0.0 n/a | n/a | 1 | 0/0 |")


def test_an_accuracy_interval_is_cut_at_100_and_marked():
    """Two runs of joint training (86.4 ± 3.9 %, `nnjax sleep --methods joint --orders 0,1
    --seeds 1 --steps 20`) printed the 95% CI [51.1, 121.7]: an accuracy above 100 %."""
    x = np.array([0.82, 0.90])
    table = format_table(_study(2, 1, {"joint": x}))
    half = stats.t.ppf(0.975, 1) * x.std(ddof=1) / np.sqrt(2)  # 12.706 * 0.0566 / 1.414
    lo, hi = 100 * (x.mean() - half), 100 * (x.mean() + half)
    assert (round(lo, 1), round(hi, 1)) == (35.2, 136.8)  # the uncut t interval
    assert f"| 86.0 ± 5.7 | [{lo:.1f}, 100.0]{CUT} |" in table
    assert CUT_NOTE in table
    # an interval inside [0, 100] is printed whole, unmarked, and then no note
    inside = format_table(_study(2, 2, {"joint": [0.80, 0.81, 0.82, 0.83]}))
    assert CUT not in inside and CUT_NOTE not in inside


def test_a_difference_interval_is_cut_at_plus_minus_100():
    table = format_table(_study(2, 1, {"sequential": [0.0, 0.1], "src": [0.5, 0.8]}))
    d = np.array([0.5, 0.7])
    half = stats.t.ppf(0.975, 1) * d.std(ddof=1) / np.sqrt(2)
    assert 100 * (d.mean() + half) > 100  # the t interval reaches past +100 points
    row = _row(table, "| SRC (sleep) |")[1]
    assert f"| +60.0 [{100 * (d.mean() - half):.1f}, 100.0]{CUT} |" in row


def test_a_study_without_a_reference_says_so_instead_of_a_table_of_dashes():
    """`nnjax sleep --methods sequential` printed the paired table with every cell "-"."""
    for finals in ({"sequential": [0.2, 0.3]}, {"ewc": [0.2, 0.3], "si": [0.3, 0.4]}):
        table = format_table(_study(2, 1, finals))
        assert "No paired comparison" in table and "| − sequential |" not in table
    table = format_table(_study(2, 1, {"sequential": [0.2, 0.3], "ewc": [0.3, 0.4]}))
    assert "No paired comparison" not in table and "| − sequential |" in table


def test_one_seed_per_order_reads_as_one_seed():
    """It printed "x 1 seeds" and "(the 1 seeds of an order share its tasks, ...)"."""
    table = format_table(_study(2, 1, {"sequential": [0.2, 0.3], "src": [0.3, 0.35]}))
    assert "x 1 seed = 2 paired runs" in table and "1 seeds" not in table
    assert "(1 seed per order: the orders are the runs)" in table
    table = format_table(_study(2, 2, {"sequential": [0.2, 0.3, 0.2, 0.1], "src": [0.3] * 4}))
    assert "x 2 seeds = 4 paired runs" in table and "the 2 seeds of an order share" in table


def test_the_sleep_one_run_refusal_names_both_options_and_the_way_out(capsys):
    assert main(["sleep", "--orders", "3", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "--orders 3 x --seeds 1 gives 1 run" in err
    assert "give --seeds 2 or more, or a second order" in err


def _night_results(replay_order) -> dict:
    """The consolidation results of 3 seeds: sleep and quiet wake equal after learning (the
    conditions split later), different after; ``replay_order``: the seeds' replay scores."""
    rng = np.random.default_rng(1)
    raw = {}
    for measure in ("recall", "trace"):
        wake = {st: {s: rng.random(3) for s in ("S1", "S2")} for st in consolidation.STAGES}
        sleep = {st: {s: v + (st != "after_learning") * rng.random(3) for s, v in seqs.items()}
                 for st, seqs in wake.items()}  # fmt: skip
        raw[measure] = {"sleep": sleep, "quiet_wake": wake}
    raw["replay_order"] = {"sleep": np.asarray(replay_order, np.float64)}
    protocol = consolidation.Protocol(train_s=0.01, consolidation_s=0.01, interference_s=0.01)
    return {
        "args": {"parts": ["consolidation"], "seed": 0},
        "consolidation": {
            "protocol": protocol._asdict(),
            "network": "SMALL",
            "stats": night.experiment_stats(raw),
        },  # fmt: skip
    }


def test_the_night_readme_prints_no_nan():
    """`nnjax night --parts consolidation --seeds 2 --train-s 0.01 --consolidation-s 0.01
    --interference-s 0.01` printed p "nan" in every after-learning row, "averaged: nan" for
    the replay and "warning: Mean of empty slice" on the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the empty nanmean's RuntimeWarning
        results = _night_results([np.nan, np.nan, np.nan])
    text = night.report_markdown(results)
    assert "nan" not in text.lower().replace("nans", "")
    rows = [x for x in text.splitlines() if x.startswith("| after learning |")]
    assert len(rows) == 4 and all(x.endswith("| n/a (every d = 0) |") for x in rows)
    assert "averaged: n/a (no seed of 3 had an Up state" in text
    stats_ = results["consolidation"]["stats"]
    assert np.isnan(stats_["replay_order_sleep"]["mean"])
    assert stats_["replay_order_sleep"]["n_scored"] == 0
    # the other rows keep their tested p, as paired_stats computed it
    s = stats_["recall"]["after_consolidation"]["S1"]
    assert f"| {s['t_test_p']:.2g} |" in text


def test_the_replay_mean_is_over_the_scored_seeds_and_says_how_many():
    results = _night_results([0.5, np.nan, -0.1])
    r = results["consolidation"]["stats"]["replay_order_sleep"]
    assert r["mean"] == pytest.approx(0.2) and r["n_scored"] == 2
    text = night.report_markdown(results)
    assert "averaged over the 2 of 3 seeds with a scored Up state: 0.20" in text


def test_a_verdict_without_a_test_says_why():
    """verdict() of identical conditions said "paired t p = nan"."""
    a = np.array([0.1, 0.2, 0.3])
    s = consolidation.paired_stats(a, a)
    text = night.verdict(s)
    assert text.startswith("no significant difference") and "nan" not in text
    assert text.endswith("no test: p n/a (every d = 0)")
    b = a.copy()
    b[1] = np.nan
    assert night.p_text(consolidation.paired_stats(a, b)) == "n/a (nan value)"
    assert night.p_text(consolidation.paired_stats(a + [0.1, 0.3, 0.2], a)) != "n/a"


def test_compare_prints_a_huge_loss_in_its_columns():
    """`nnjax compare --optimizers adam --lr adam=1e9 --seeds 1` printed the validation loss
    as "12131801179810269495296.0000 ± n/a" (23 digits; the columns shifted)."""
    from nnjax.commands.compare import _pm

    text = _pm({"mean": 1.2131801179810269e22, "std": float("nan")})
    assert text == "1.213e+22 ± n/a   "
    assert _pm({"mean": 0.16684898, "std": 0.02844784}) == "  0.1668 ± 0.0284"


def test_the_committed_night_readme_has_no_nan_and_regenerates():
    """The committed run's wake stage stays Up (one Up state, no alternation): its Up/Down
    frequency, nan, was printed as "nan" in the table; now "n/a" with a note. The README's
    generated part is what report_markdown gives for the committed results.json."""
    import json
    import pathlib

    folder = pathlib.Path(__file__).parent.parent / "docs/results/network-sleep"
    results = night.load_results(folder / "results.json")  # strict JSON: null read as nan
    assert (
        json.loads((folder / "results.json").read_text())["night"]["stages"]["wake"]["updown_hz"]
        is None
    )
    assert np.isnan(results["night"]["stages"]["wake"]["updown_hz"])
    text = night.report_markdown(results)
    assert "| wake | 9 | 5.66 | 0.026 | 0.50 | n/a | 1.00 | 1.29 | 0.005 |" in text
    assert "Up/Down n/a: fewer than two Down-to-Up transitions" in text
    assert "nan" not in text.lower().replace("nans", "")
    assert (folder / "README.md").read_text().startswith(text.rstrip("\n"))
