"""Leftovers audit (2): the public io writers name a wrong type; a DirectoryLock on a file
names it; ``nnjax night`` and ``nnjax sleep`` write strict JSON (NaN as null) that nnjax reads
back as NaN; ``nnjax night`` announces a run expected to take more than 10 minutes."""

import copy
import errno
import json
import math
import os
import pathlib

import numpy as np
import pytest

from nnjax import io as nio

ROOT = pathlib.Path(__file__).resolve().parent.parent
NIGHT_RESULTS = ROOT / "docs/results/network-sleep"


def _strict(text: str):
    """``json.loads`` as jq or JavaScript's JSON.parse read: NaN, Infinity refused."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# 1. io writers given the wrong type


def test_atomic_write_text_refuses_a_non_str_naming_text_and_its_type(tmp_path):
    """Audit: atomic_write_text(path, 5) raised AttributeError: 'int' object has no
    attribute 'encode'."""
    path = tmp_path / "a.txt"
    with pytest.raises(TypeError, match=r"^io\.atomic_write_text: text must be a str, got int$"):
        nio.atomic_write_text(path, 5)
    with pytest.raises(TypeError, match=r"got bytes \(use io\.atomic_write_bytes\)$"):
        nio.atomic_write_text(path, b"abc")
    assert os.listdir(tmp_path) == []  # nothing written, no temporary file
    nio.atomic_write_text(path, "héllo")
    assert path.read_bytes() == "héllo".encode()


def test_bytes_writers_refuse_a_str_naming_it_before_the_disk(tmp_path):
    """Audit: atomic_write_bytes(path, "text") raised memoryview's "a bytes-like object is
    required, not 'str'", naming no argument; atomic_write_files staged the files before it."""
    path = tmp_path / "a.bin"
    with pytest.raises(TypeError, match=r"^io\.atomic_write_bytes: data must be bytes .*got str "
                       r"\(encode it, or use io\.atomic_write_text\)$"):  # fmt: skip
        nio.atomic_write_bytes(path, "text")
    with pytest.raises(TypeError, match=r"data must be bytes .*got NoneType$"):
        nio.atomic_write_bytes(path, None)
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"old")
    with pytest.raises(TypeError, match=rf"files\[1\] \({second}\) must be bytes .*got str"):
        nio.atomic_write_files([(first, b"new"), (second, "text")])
    assert first.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["first"]
    # every bytes-like kind is written as its bytes (the oracle: bytes(...))
    for data in (bytearray(b"ab"), memoryview(b"cd"), np.arange(3, dtype=np.uint16)):
        nio.atomic_write_bytes(path, data)
        assert path.read_bytes() == bytes(memoryview(data).cast("B"))


def test_atomic_save_figure_refuses_what_is_not_a_figure(tmp_path):
    with pytest.raises(TypeError, match=r"^io\.atomic_save_figure: fig must be a Figure, got "):
        nio.atomic_save_figure(None, tmp_path / "a.png")
    assert os.listdir(tmp_path) == []


# 2. a lock on a file


def test_a_lock_on_a_file_says_it_is_a_file_not_a_folder(tmp_path):
    """Audit: DirectoryLock(<a regular file>) raised a bare FileExistsError (from makedirs)."""
    from nnjax.errors import PathError
    from nnjax.lock import DirectoryLock, lock_folder

    path = tmp_path / "notes.txt"
    path.write_bytes(b"mine")
    for take in (lambda: DirectoryLock(path).acquire(), lambda: lock_folder(path)):
        with pytest.raises(PathError) as e:
            take()
        assert str(e.value) == f"DirectoryLock: {path} is a file, not a folder"
        assert e.value.errno == errno.ENOTDIR and isinstance(e.value, OSError)
    with pytest.raises(PathError, match="is a file, not a folder"):
        with DirectoryLock(path):
            pass
    assert path.read_bytes() == b"mine" and os.listdir(tmp_path) == ["notes.txt"]


# 3. strict JSON


def test_night_jsonable_writes_nan_and_inf_as_null():
    from nnjax.brain import night

    obj = {"a": float("nan"), "b": [1.5, np.float32("inf"), np.nan], "c": np.array([np.nan, 2.0]),
           "d": np.float64(-np.inf), "e": 3, "f": "x", "g": (0.25, np.int64(4))}  # fmt: skip
    out = night.jsonable(obj)
    assert out == {"a": None, "b": [1.5, None, None], "c": [None, 2.0], "d": None, "e": 3,
                   "f": "x", "g": [0.25, 4]}  # fmt: skip
    text = json.dumps(out, allow_nan=False)
    back = night.nan_for_null(_strict(text))
    assert math.isnan(back["a"]) and back["b"][0] == 1.5 and math.isnan(back["c"][0])


def test_the_committed_night_results_are_strict_json_and_regenerate_the_readme():
    """docs/results/network-sleep/results.json held 9 NaN (not JSON: jq and JSON.parse refuse
    it); now null, and the README made from it is the committed one."""
    from nnjax.brain import night

    text = (NIGHT_RESULTS / "results.json").read_text()
    raw = _strict(text)
    assert raw["night"]["stages"]["wake"]["updown_hz"] is None
    readme = (NIGHT_RESULTS / "README.md").read_text()
    generated = night.report_markdown(raw)
    assert readme.startswith(generated.rstrip("\n"))
    assert "| wake | 9 | 5.66 | 0.026 | 0.50 | n/a | 1.00 | 1.29 | 0.005 |" in generated
    loaded = night.load_results(NIGHT_RESULTS / "results.json")
    assert math.isnan(loaded["night"]["stages"]["wake"]["updown_hz"])
    assert night.report_markdown(loaded) == generated
    s = raw["consolidation"]["stats"]["recall"]["after_learning"]["S1"]
    assert s["t_test_p"] is None
    assert night.p_text(s) == "n/a (every d = 0)"
    assert night.verdict(s) == night.verdict(loaded["consolidation"]["stats"]["recall"][
        "after_learning"]["S1"])  # fmt: skip
    # the file is the old one with NaN -> null, in the same layout (indent 1)
    nan = night.nan_for_null(raw)
    assert json.dumps(night.jsonable(nan), indent=1, allow_nan=False) + "\n" == text


def _committed_parts(monkeypatch):
    """night.run_night_part / run_consolidation_part put the committed run's numbers (NaN
    where it had them) into the results, and draw nothing."""
    from nnjax.brain import night

    committed = night.load_results(NIGHT_RESULTS / "results.json")
    for part, name in (("night", "run_night_part"), ("consolidation", "run_consolidation_part")):

        def fill(args, results, part=part, stop=None):
            results[part] = copy.deepcopy(committed[part])
            return {}

        monkeypatch.setattr(night, name, fill)
    return committed


def test_night_writes_strict_json_read_back_as_its_readme(tmp_path, capsys, monkeypatch):
    """Audit: `nnjax night` wrote results.json with literal NaN (json.dumps' default)."""
    from nnjax.brain import night
    from nnjax.cli import main

    committed = _committed_parts(monkeypatch)
    out = tmp_path / "n"
    assert main(["night", "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""  # the default run: no estimate line (about 7 min)
    written = _strict((out / "results.json").read_text())
    assert written["night"]["stages"]["wake"]["updown_hz"] is None
    assert written["consolidation"]["stats"] == json.loads(
        json.dumps(night.jsonable(committed["consolidation"]["stats"]))
    )
    assert night.report_markdown(written) == (out / "README.md").read_text()


def _fake_study():
    """A run_study result (1 order x 2 seeds, no JAX) whose statistics hold NaN: joint's runs
    equal sequential's (every paired d = 0), a std and an interval set to NaN."""
    from nnjax.brain import scores, study

    tg, rng = np.arange(10).reshape(5, 2), np.random.default_rng(1)
    a = rng.random((1, 2, 5, 10))
    A = {"sequential": a, "joint": a.copy()}
    metrics = {r: scores.metrics(A[r].reshape(2, 5, 10), tg, np.ones(10)) for r in A}
    res = {"dataset": "digits", "orders": [7], "n_seeds": 2, "rows": list(A), "metrics": metrics,
           "A": A, "task_groups": [tg], "scenario": "class", "images": None,
           "hp": {"sequential": None, "joint": None},
           "hp_source": {"sequential": "none", "joint": "none"}, "diverged": {}}  # fmt: skip
    res["stats"] = study.summarise(res)
    res["stats"]["joint"]["final"]["std"] = float("nan")
    res["stats"]["joint"]["seen"][0]["ci"] = np.float64("nan")
    return res


def test_sleep_writes_strict_json_that_as_arrays_reads_back_as_nan(tmp_path, capsys):
    """`nnjax sleep`'s results.json could hold NaN too (study.jsonable kept it): null now;
    as_arrays reads a null number back as NaN (a null hp stays None), so the plots drawn
    from the file and the table are those of the run."""
    from nnjax.brain import study, study_plots
    from nnjax.brain.study_report import format_table
    from nnjax.commands import sleep

    res = _fake_study()
    out = tmp_path / "s"
    os.makedirs(out)
    sleep._write(str(out), res, "the table", "wall 1.0 s")
    raw = _strict((out / "results.json").read_text())
    assert raw["stats"]["joint"]["final"]["std"] is None
    assert raw["stats"]["joint"]["seen"][0]["ci"] is None
    back = study.as_arrays(raw)
    assert math.isnan(back["stats"]["joint"]["final"]["std"])
    assert math.isnan(back["stats"]["joint"]["seen"][0]["ci"])
    assert back["hp"] == {"sequential": None, "joint": None}
    np.testing.assert_allclose(back["A"]["joint"], res["A"]["joint"], atol=5e-5)
    assert format_table(back) == format_table(res)
    assert study_plots.write_plots(back, str(tmp_path)) == ["accuracy.png", "heatmap.png"]
    nested = study.as_arrays({"x": [[1.0, None], [None, 2.0]], "n": [1, 2]})
    assert nested["x"].dtype == np.float64 and np.isnan(nested["x"]).sum() == 2
    assert nested["n"].dtype.kind == "i"  # a list without null keeps its ints


# 4. nnjax night's estimate


def _night_args(*argv):
    from nnjax.cli import build_parser

    return build_parser(["night"]).parse_args(["night", "--out", "unused", *argv])


def test_the_estimate_follows_its_formula_on_option_values():
    """estimate_seconds: PART_S + rate x simulated seconds x (cells / 1000)^NIGHT_POWER for
    the night, PART_S + rate x seeds x seconds per seed for the consolidation."""
    from nnjax.commands import night as cmd

    base = cmd.estimate_seconds(_night_args())
    night_s = 11 * 5.0  # the default hypnogram: 11 epochs of 5 s, 1000 cells
    assert base["night"] == pytest.approx(cmd.PART_S + cmd.NIGHT_S_PER_S_AT_1000 * night_s)
    seed_s = 4.0 + 2 * (6.0 + 3.0) + 5 * cmd.TEST_S
    assert base["consolidation"] == pytest.approx(cmd.PART_S + cmd.SEED_S_PER_S * 10 * seed_s)
    big = cmd.estimate_seconds(_night_args("--n-exc", "1600", "--epoch-s", "10"))
    scale = 2 * 2.0**cmd.NIGHT_POWER  # twice the seconds, of twice the cells
    assert big["night"] - cmd.PART_S == pytest.approx(scale * (base["night"] - cmd.PART_S))
    assert 2 <= cmd.NIGHT_POWER <= 3  # at least the dense synapses' cells^2
    more = cmd.estimate_seconds(_night_args("--parts", "consolidation", "--seeds", "40"))
    assert set(more) == {"consolidation"}
    assert more["consolidation"] - cmd.PART_S == pytest.approx(
        4 * (base["consolidation"] - cmd.PART_S)
    )


def test_the_test_length_is_the_protocols():
    from nnjax.brain.consolidation import Protocol
    from nnjax.commands import night as cmd

    p = Protocol()
    assert cmd.TEST_S == pytest.approx(p.settle_s + 2 * p.n_cues * p.cue_period_ms / 1000.0)


def test_a_long_night_is_announced_with_the_options_that_drive_it():
    from nnjax.commands import night as cmd

    assert cmd.long_run_line(_night_args()) is None  # the default: about 7 min
    line = cmd.long_run_line(_night_args("--n-exc", "4000", "--parts", "night"))
    assert line is not None and "\n" not in line
    assert line.startswith("nnjax night: this run is expected to take about ")
    assert "--n-exc 4000 (5000 cells)" in line and "--epoch-s 5" in line
    assert "--hypnogram of 11 epochs" in line and "consolidation" not in line
    line = cmd.long_run_line(_night_args("--seeds", "200", "--parts", "consolidation"))
    assert "--seeds 200" in line and "--consolidation-s 6" in line and "night " not in line


def test_night_prints_the_estimate_to_stderr_before_it_starts(tmp_path, capsys, monkeypatch):
    """Audit: `nnjax night --n-exc 4000 --epoch-s 60` would run for hours without a word."""
    from nnjax.brain import night
    from nnjax.cli import main

    started = []

    def part(args, results, stop=None):
        started.append(capsys.readouterr().err)  # what was printed before the work began
        results["night"] = copy.deepcopy(night.load_results(NIGHT_RESULTS / "results.json"))[
            "night"]  # fmt: skip
        return {}

    monkeypatch.setattr(night, "run_night_part", part)
    argv = ["night", "--out", str(tmp_path / "n"), "--parts", "night", "--n-exc", "4000"]
    assert main(argv) == 0
    (err,) = started
    assert err.startswith("nnjax night: this run is expected to take about ")
    assert err.count("\n") == 1 and "--n-exc 4000" in err
