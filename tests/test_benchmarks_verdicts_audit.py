"""The benchmark suite's verdicts and reports, audited on hand-built result dicts (nothing is
timed): a ratio at its bound, a row missing or a time that is no measurement (nan, inf, 0),
the direction of a speed ratio, paired min-max intervals, medians of an even number of
rounds, the report's numbers against the JSON's, and the committed reports rendered again
from their JSON."""

import json
import math
import re
import statistics
import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks import mnist1d_report, mnist1d_table, nets_report, report, targets
from benchmarks.check import Mismatch, compare
from benchmarks.harness import stats

ROOT = Path(__file__).resolve().parent.parent
FUSED_13 = "fused fit >= 1.3x the per-step jit at batch 32"
JAX_095 = "nnjax MLP step >= 0.95x the hand-written JAX step, every batch size"
TORCH_16 = "nnjax step >= 1.6x PyTorch eager, batch <= 128"


def _row(times, label="impl", steps=8, batch=32, flops=1e6):
    s = stats(times)
    return {
        "label": label,
        "time": s,
        "step_ms": 1e3 * s["median"] / steps,
        "examples_per_s": steps * batch / s["median"],
        "gflops": flops * steps / s["median"] / 1e9,
        "compile_s": 0.5,
        "memory": None,
        "check": {"max_loss_rel_err": 1e-7, "max_param_err_vs_moved": 1e-6},
        "first_call_s": 0.6,
    }


def _cfg(batch, model="digits 64-256-256-10", **times):
    """An MLP problem's result; each keyword an implementation's per-round times (s)."""
    rows = {k: _row(list(t), label=k, batch=batch) for k, t in times.items()}
    return {"model": model, "batch_size": batch, "steps": 8, "epochs": 1, "n_examples": 256,
            "optimizer": "sgd", "learning_rate": 0.01, "dtype": "float32",
            "flops_per_step": 1e6, "rows": rows, "skipped": {}}  # fmt: skip


def _by_target(res):
    return {t["target"]: t for t in targets.evaluate(res)}


# --- the bound, the direction, the paired interval ------------------------------------------


def test_a_ratio_exactly_at_its_bound_reaches_it():
    """0.013 s / 0.01 s is 1.3, but the float quotient is 1.2999999999999998: the report read
    "1.30x [1.30-1.30]" and MISSED for ">= 1.3x"; 1.2999 still misses (the tolerance is the
    quotient's rounding, not leniency)."""
    assert 0.013 / 0.01 < 1.3 and 0.5035 / 0.53 < 0.95 and 2.8 / 0.07 < 40
    at = _by_target({"mlp": [_cfg(32, nnjax_step=[0.013], nnjax_fused=[0.01])]})[FUSED_13]
    assert at["holds"] is True and at["measured"].startswith("digits B=32: 1.30x")
    under = _by_target({"mlp": [_cfg(32, nnjax_step=[0.012999], nnjax_fused=[0.01])]})[FUSED_13]
    assert under["holds"] is False
    at95 = _by_target({"mlp": [_cfg(32, pure_jax=[0.5035], nnjax_step=[0.53])]})[JAX_095]
    assert at95["holds"] is True
    # a time ratio "<= 0.5" has no such rounding: x / 2 / x is 0.5 exactly
    vm = {"rows": {"1": {"per_model_ms": 0.7}, "64": {"per_model_ms": 0.7 / 2}}}
    assert targets._vmap_target({"vmap": vm})["holds"] is True
    vm["rows"]["64"]["per_model_ms"] = 0.7 * 0.5001
    assert targets._vmap_target({"vmap": vm})["holds"] is False


def test_a_speed_ratio_is_the_slower_time_over_nnjaxs_and_its_interval_pairs_rounds():
    """time(other) / time(nnjax): nnjax's smaller time gives a ratio > 1; the [min-max] is of
    round r's ratio other[r] / nnjax[r] (the same rounds), ordered, with the ratio of the
    medians inside it, medians of an even number of rounds averaging the middle two."""
    other, mine = [2.0, 4.0, 3.0, 8.0], [1.0, 1.0, 2.0, 2.0]
    t = _by_target({"mlp": [_cfg(32, pure_jax=other, nnjax_step=mine)]})[JAX_095]
    want = np.median(other) / np.median(mine)  # 3.5 / 1.5, the numpy oracle
    assert t["values"] == [pytest.approx(want, rel=1e-15)] and t["holds"] is True
    per_round = np.divide(other, mine)  # 2, 4, 1.5, 4
    assert f"{want:.2f}x [{per_round.min():.2f}-{per_round.max():.2f}]" in t["measured"]
    # nnjax slower: the ratio is < 1 and misses
    slow = _by_target({"mlp": [_cfg(32, pure_jax=mine, nnjax_step=other)]})[JAX_095]
    assert slow["values"] == [pytest.approx(1 / want)] and slow["holds"] is False
    # the ratio of medians always lies in the paired interval (monotone medians)
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 7, 10):
        for _ in range(200):
            a, b = rng.lognormal(0, 0.5, n), rng.lognormal(0, 0.5, n)
            r, pr = targets._speed(_cfg(32, x=a, y=b), "x", "y")
            assert pr["min"] <= r * (1 + 1e-12) and r <= pr["max"] * (1 + 1e-12)


# --- rows missing, times that are no measurement ---------------------------------------------


def test_a_framework_skipped_everywhere_is_not_measured():
    res = {"mlp": [_cfg(32, nnjax_step=[1.0]), _cfg(128, nnjax_step=[1.0])]}
    t = _by_target(res)[TORCH_16]
    assert t["holds"] is None and t["measured"] == "not measured"
    assert report.VERDICT[t["holds"]] == "not measured"


def test_a_case_left_unmeasured_is_no_met_verdict():
    """A "batch <= 128" target measured at B=32 only (no torch row at B=128) read "holds"."""
    res = {
        "mlp": [
            _cfg(32, nnjax_step=[1.0], torch=[2.0]),
            _cfg(128, nnjax_step=[1.0]),
        ]
    }
    t = _by_target(res)[TORCH_16]
    assert t["holds"] is None
    assert "digits B=32: 2.00x" in t["measured"]
    assert "digits B=128 (no torch row): not measured" in t["measured"]
    res["mlp"][0]["rows"]["torch"] = _row([1.5])  # a measured case misses: MISSED
    assert _by_target(res)[TORCH_16]["holds"] is False


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1.0])
def test_a_time_that_is_no_measurement_gives_no_verdict(bad):
    """A nan time read "holds" when its problem came second (min(2.0, nan) is 2.0), an inf
    time of the other implementation gave an infinite speed-up that "holds", a zero time
    raised ZeroDivisionError after the whole run."""
    good = _cfg(32, model="synthetic 784-256-256-10", pure_jax=[2.0], nnjax_step=[1.0])
    for who in ("pure_jax", "nnjax_step"):
        cfg = _cfg(32, pure_jax=[2.0], nnjax_step=[1.0])
        cfg["rows"][who]["time"] = {"median": bad, "min": bad, "max": bad, "times": [bad]}
        t = _by_target({"mlp": [good, cfg]})[JAX_095]
        assert t["holds"] is None, (who, bad, t)
        assert f"digits B=32 ({who} time not a positive finite number)" in t["measured"]


def test_a_time_that_is_no_measurement_gives_no_verdict_beyond_the_mlp():
    seed = {"rows": {n: {"time": stats([t])} for n, t in
                     (("numpy_loop", 4.0), ("nnjax_fused", 0.0), ("nnjax_step", 1.0))}}  # fmt: skip
    seed["fused_theta_bit_identical"] = True
    got = _by_target({"seed": seed})  # a zero time raised ZeroDivisionError
    assert got["Seed example: fused fit >= 40x faster than the NumPy loop"]["holds"] is None
    seed["rows"]["numpy_loop"]["time"] = stats([2.8])
    seed["rows"]["nnjax_fused"]["time"] = stats([0.07])  # 2.8 / 0.07 = 40: at the bound
    sp = _by_target({"seed": seed})["Seed example: fused fit >= 40x faster than the NumPy loop"]
    assert sp["holds"] is True and sp["measured"] == "40.0x [40.0-40.0] (per-step jit loop: 2.80x)"
    vm = {"rows": {"1": {"per_model_ms": 0.0}, "64": {"per_model_ms": 0.3}}}
    assert targets._vmap_target({"vmap": vm})["holds"] is None
    net = {"wall_per_bio_second": 0.0, "bio_seconds": 1.0, "nnjax": {"compile_s": 1.0}}
    (t,) = targets._network_target(net)
    assert t["holds"] is None and "not measured" in t["measured"]  # was "0.0 s ... holds"
    net["wall_per_bio_second"] = math.nan
    assert targets._network_target(net)[0]["holds"] is None
    peak = {"peak": {"peak_gflops": 100.0}, "mlp": [_cfg(1024, "synthetic 784", nnjax_fused=[1])]}
    peak["mlp"][0]["rows"]["nnjax_fused"]["gflops"] = math.nan
    assert targets._peak_target(peak)["holds"] is None


def test_rows_timed_in_different_rounds_are_not_paired():
    """paired_ratios zips: 3 rounds against 5 silently kept the first 3."""
    good = _cfg(32, model="synthetic 784-256-256-10", pure_jax=[2.0] * 3, nnjax_step=[1.0] * 3)
    cfg = _cfg(32, pure_jax=[2.0, 2.0, 2.0], nnjax_step=[1.0, 1.0, 1.0, 9.0, 9.0])
    t = _by_target({"mlp": [good, cfg]})[JAX_095]
    assert t["holds"] is None
    assert (
        "digits B=32 (pure_jax and nnjax_step timed in different rounds ([3, 5]))"
        in (t["measured"])
    )


def _net(auto="chunked", **times):
    rows = {k: {"time": stats(list(t)), "step_ms": 1e3 * statistics.median(t) / 10}
            for k, t in times.items()}  # fmt: skip
    return {"model": "cnn", "batch_size": 100, "steps": 10, "auto": auto, "rows": rows}


def test_the_cnn_gru_targets_judge_only_what_was_measured():
    ok = dict(nnjax_chunked=[1.0, 1.0], pure_jax=[1.2, 1.2], pure_jax_scan=[1.3, 1.3])
    gru = {**_net(**ok, torch=[2.0, 2.0]), "model": "gru"}
    cnn = _net(**ok)  # torch skipped for the CNN only
    torch_t, hand_t = nets_report.targets({"nets": [gru, cnn]})
    assert torch_t["holds"] is None
    assert "cnn B=100 (no torch row): not measured" in torch_t["measured"]
    assert hand_t["holds"] is True  # both measured: 1.2 / 1.0
    nan = _net(**{**ok, "pure_jax": [math.nan, 1.2]})
    assert nets_report.targets({"nets": [gru, nan]})[1]["holds"] is None
    # at the bound: 0.5035 / 0.53 is 0.95, under it in floats
    bound = _net(nnjax_chunked=[0.53], pure_jax=[0.5035], pure_jax_scan=[0.6])
    assert nets_report.targets({"nets": [bound]})[1]["holds"] is True


# --- the report against its JSON --------------------------------------------------------------


def _results():
    """A full result dict as the suite writes it: four rounds (an even count) per row."""
    cfgs = [
        _cfg(32, numpy=[3.0e-3, 3.2e-3, 2.9e-3, 3.1e-3], nnjax_step=[1.1e-3, 1.0e-3, 1.3e-3,
             1.2e-3], nnjax_fused=[0.8e-3, 0.7e-3, 0.75e-3, 0.9e-3],
             pure_jax=[1.0e-3, 1.2e-3, 1.1e-3, 1.15e-3], torch=[2.0e-3, 2.4e-3, 2.2e-3, 2.1e-3]),
        _cfg(1024, "synthetic 784-256-256-10", nnjax_step=[9e-3, 8e-3, 8.5e-3, 9.5e-3],
             nnjax_fused=[8.8e-3, 8.1e-3, 8.2e-3, 9.0e-3], pure_jax=[9e-3, 9e-3, 8e-3, 8e-3]),
    ]  # fmt: skip
    tiny = _cfg(32, "tiny 16-32-32-4", nnjax_step=[1e-4] * 4, torch=[3e-4] * 4)
    env = {"device_kind": "cpu", "jax_backend": "cpu", "cores_available": 2, "jax": "0.x",
           "jax_cpu_threads": 2, "numpy": "2.x", "flax": None, "optax": "0.x", "equinox": None,
           "torch": "2.x", "python": "3.x", "platform": "linux"}  # fmt: skip
    res = {"suite": "nnjax benchmarks", "mode": "full", "date": "2026-12-05 07:00 UTC",
           "device": "cpu-2cores", "env": env, "settings": {"repeats": 4}, "total_s": 60.0,
           "load": {"start": {"loadavg": [1.0, 1.0, 1.0], "others_cpu_percent": 0.0}},
           "warnings": [], "mlp": cfgs, "overhead": tiny,
           "peak": {"peak_gflops": 0.5, "peak_n": "512", "sizes": {}}}  # fmt: skip
    res["targets"] = targets.evaluate(res)
    return res


def _tables(md: str) -> dict[str, list[list[str]]]:
    """Each Markdown table under its heading: rows of cells (the header row first)."""
    out, head = {}, None
    for line in md.splitlines():
        if line.startswith("#"):
            head = line.lstrip("# ")
        elif line.startswith("| "):
            out.setdefault(head, []).append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_the_reports_numbers_are_the_jsons():
    """Parse the Markdown back and hold every MLP cell to the JSON's numbers (numpy medians
    of the raw rounds as the oracle), and the targets table to the JSON's targets."""
    res = json.loads(json.dumps(_results()))  # what the JSON file holds
    tables = _tables(report.markdown(res, {}))
    peak = res["peak"]["peak_gflops"]
    for cfg in res["mlp"]:
        head, *rows = tables[f"{cfg['model']}, batch {cfg['batch_size']}"]
        assert head == report.MLP_HEADER and len(rows) == len(cfg["rows"])
        base = np.median(cfg["rows"]["nnjax_step"]["time"]["times"])
        for cells, r in zip(rows, cfg["rows"].values()):
            c = dict(zip(head, cells))
            ts = np.asarray(r["time"]["times"])
            assert c["implementation"] == r["label"]
            assert abs(float(c["run ms (median)"]) - 1e3 * np.median(ts)) <= 0.005
            lo, hi = map(float, c["min-max ms"].split("-"))
            assert abs(lo - 1e3 * ts.min()) <= 0.005 and abs(hi - 1e3 * ts.max()) <= 0.005
            assert abs(float(c["ms/step"]) - 1e3 * np.median(ts) / cfg["steps"]) <= 5e-4
            assert abs(float(c["time / nnjax step"]) - np.median(ts) / base) <= 0.005
            gf = 1e6 * cfg["steps"] / np.median(ts) / 1e9
            assert abs(float(c["GFLOP/s"]) - gf) <= 0.05
            assert abs(float(c["% peak"].rstrip("%")) - 100 * gf / peak) <= 0.5
    head, *rows = tables["Targets"]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (t["target"], t["measured"], f"**{report.VERDICT[t['holds']]}**") for t in res["targets"]
    ]
    # the 0.95x row: every number in its text against the oracle
    (t,) = [t for t in res["targets"] if t["target"] == JAX_095]
    for cfg, m in zip(res["mlp"], t["measured"].split("; ")):
        a, b = (np.asarray(cfg["rows"][n]["time"]["times"]) for n in ("pure_jax", "nnjax_step"))
        got = [float(x) for x in re.findall(r"\d+\.\d+", m)]
        assert got == pytest.approx(
            [np.median(a) / np.median(b), (a / b).min(), (a / b).max()], abs=0.005
        )


def test_the_report_of_a_run_without_the_nnjax_step_has_its_overhead_table():
    """--impls numpy torch: the tiny model's table read rows["nnjax_step"] (KeyError after a
    full run, its report not written)."""
    res = _results()
    for cfg in [*res["mlp"], res["overhead"]]:
        cfg["rows"].pop("nnjax_step", None)
    res["targets"] = targets.evaluate(res)
    (head, *rows) = _tables(report.markdown(res, {}))[
        "Cost per step beyond the arithmetic: tiny 16-32-32-4, batch 32"
    ]
    assert rows == [["torch", "38", "n/a"]]  # 1e3 * 3e-4 s / 8 steps = 37.5 us


COMMITTED = sorted(
    p for p in (ROOT / "benchmarks" / "results").glob("*.json") if p.with_suffix(".md").exists()
)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_report_is_its_json_rendered_again(path):
    """Every table of the committed Markdown equals the one rendered from its JSON."""
    res = json.loads(path.read_text())
    again = _tables(report.markdown(res, res.get("files", {}).get("plots", {})))
    committed = _tables(path.with_suffix(".md").read_text())
    assert again.keys() == committed.keys()
    for head, rows in committed.items():
        assert len(again[head]) == len(rows), head
        for new_row, old_row in zip(again[head], rows):
            assert len(new_row) == len(old_row), (head, old_row)
            for a, b in zip(new_row, old_row):
                assert _same_cell(a, b), (head, old_row, a, b)


def _same_cell(a: str, b: str) -> bool:
    """Equal text, or equal numbers to the coarser of the two roundings (a table since
    printed with fewer digits: the start-up table's second compile, 0.050 s then 0.05 s)."""
    if a == b:
        return True
    num = r"\d+(?:\.(\d+))?"
    if re.sub(num, "#", a) != re.sub(num, "#", b):
        return False
    for x, y in zip(re.finditer(num, a), re.finditer(num, b)):
        digits = min(len(x.group(1) or ""), len(y.group(1) or ""))
        if abs(float(x.group()) - float(y.group())) > 0.5 * 10**-digits:
            return False
    return True


# --- the MNIST-1D table -----------------------------------------------------------------------


def test_the_committed_mnist1d_table_is_its_json_rendered_again():
    """The committed README is the report of its results.json, then a sentence by hand."""
    folder = ROOT / "docs" / "results" / "mnist1d-table"
    res = json.loads((folder / "results.json").read_text())
    assert (folder / "README.md").read_text().startswith(mnist1d_report.markdown(res))


def _driven(epochs):
    out = types.SimpleNamespace(step_loss=np.full((1, epochs, 40), 0.5))
    return types.SimpleNamespace(outputs=out, compile_time=1.0, run_time=2.0)


def test_one_seed_has_no_standard_deviation():
    """One seed's "std" was 0.0 and the table printed "**67.0 ± 0.0**": no spread measured
    read as none at all."""
    curve = np.array([[60.0, 67.0]])
    row = mnist1d_table._row("mlp", [0], curve, np.array([99.0]), 40, _driven(2), 3.0)
    assert row["std"] is None and row["mean"] == 67.0 and row["holds"] is True
    line = mnist1d_report.table({"rows": [row]}).splitlines()[-1]
    assert "| **67.0** |" in line and "±" not in line
    three = mnist1d_table._row("mlp", [0, 1, 2], np.array([[0, 66.0], [0, 67.0], [0, 68.0]]),
                               np.array([99.0] * 3), 40, _driven(2), 3.0)  # fmt: skip
    assert three["std"] == pytest.approx(1.0)  # ddof = 1
    assert "| **67.0 ± 1.0** |" in mnist1d_report.table({"rows": [three]})
    at = mnist1d_table._row("mlp", [0], np.array([[0, 66.0]]), np.array([99.0]), 40,
                            _driven(2), 3.0)  # fmt: skip
    assert at["holds"] is True  # ">= 66" at 66.0


@pytest.mark.parametrize("seeds", ["a", "", "0,,1", "0,0"])
def test_bad_seeds_are_one_line_before_anything_runs(seeds, tmp_path, capsys, monkeypatch):
    def ran(*a, **k):
        raise AssertionError("the table ran")

    monkeypatch.setattr(mnist1d_table, "run_table", ran)
    with pytest.raises(SystemExit) as e:
        mnist1d_table.main(["--out", str(tmp_path), "--seeds", seeds])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--seeds takes distinct comma-separated integers" in err and repr(seeds) in err


# --- the correctness check ------------------------------------------------------------------


def test_the_check_covers_every_param_and_needs_a_loss():
    """Initial params with fewer leaves than the run's left the extra leaves unchecked (zip):
    a leaf 98 off passed; no losses at all raised numpy's zero-size reduction error."""

    def two(a, b):
        return [{"W": np.float32([a])}, {"W": np.float32([b])}]

    losses = np.float32([1.0, 0.9])
    with pytest.raises(Mismatch, match="2 param arrays, the twin has 2, the initial params 1"):
        compare("x", two(1.0, 99.0), losses, two(1.0, 1.0), losses, [{"W": np.float32([0.0])}])
    with pytest.raises(Mismatch, match="no losses"):
        compare("x", two(1.0, 1.0), losses[:0], two(1.0, 1.0), losses[:0], two(0.0, 0.0))
    # at its tolerance a param passes: 5% of the movement (+ 1e-7)
    got = compare("x", two(1.05, 1.0), losses, two(1.0, 1.0), losses, two(0.0, 0.0))
    assert got["max_param_err_vs_moved"] == pytest.approx(0.05, rel=1e-5)
    with pytest.raises(Mismatch, match="param 0"):
        compare("x", two(1.0501, 1.0), losses, two(1.0, 1.0), losses, two(0.0, 0.0))


def test_an_mlp_section_says_one_epoch_in_the_singular():
    res = json.loads((ROOT / "benchmarks" / "results" / "cpu-2cores-2026-12-05.json").read_text())
    text = report.markdown(res, {})
    assert "32 steps (1 epoch of 1024 examples)" in text
    assert "16 steps (2 epochs of 1024 examples)" in text
    assert "1 epochs" not in text
