"""``nnjax night`` and the consolidation experiment's pieces: recall and synaptic-trace
scores on hand-made rasters and weights, the paired statistics, the stimuli, and a small
night that writes its figures."""

import inspect
import json
import re

import numpy as np
import pytest

from nnjax.brain import consolidation as cons
from nnjax.brain import night
from nnjax.brain.plasticity import PairSTDPParams
from nnjax.cli import main
from nnjax.commands import night as night_command

PROTO = cons.Protocol(n_groups=3, group_size=4, window_ms=20.0)


def test_light_copies_equal_their_sources():
    p = cons.Protocol()
    assert night_command.DEFAULT_NIGHT == night.DEFAULT_NIGHT
    assert night_command.TRAIN_S == p.train_s
    assert night_command.CONSOLIDATION_S == p.consolidation_s
    assert night_command.INTERFERENCE_S == p.interference_s
    settle = inspect.signature(night.simulate_night).parameters["settle_s"].default
    assert (night_command.SETTLE_S, night_command.DESCRIBED_S) == (settle, night.DESCRIBED_S)


def test_recall_counts_later_groups_answering_the_cue_minus_background():
    """Groups G0 = 0-3, G1 = 4-7, G2 = 8-11 in 1 ms bins; a cue at 100 ms."""
    r = np.zeros((200, 12), np.uint8)
    r[105, 4:8] = 1  # all of G1 answers
    r[110, 8:10] = 1  # half of G2
    r[90, 8] = 1  # one G2 cell fired in the 20 ms before the cue (background)
    score = cons.recall(r, 1.0, [100.0], PROTO, [0, 1, 2])
    assert score == pytest.approx(np.mean([1.0 - 0.0, 0.5 - 0.25]))
    assert cons.recall(r, 1.0, [100.0], PROTO, [0, 2, 1]) == score  # same later groups
    assert cons.recall(np.zeros_like(r), 1.0, [100.0], PROTO, [0, 1, 2]) == 0.0


def test_synaptic_trace_is_forward_minus_backward_per_synapse():
    W = np.zeros((12, 12))
    W[4:8, 0:4] = 3.0  # G0 -> G1
    W[8:12, 4:8] = 3.0  # G1 -> G2
    W[0:4, 4:8] = 1.0  # G1 -> G0 (backward)
    # existing synapses (W > 0): 32 forward at 3 nS, 16 backward at 1 nS (G2 -> G1 has none).
    # (This assertion expected (48 - 8) / 12 = 3.33: sums divided by a mean count, not means.)
    assert cons.synaptic_trace(W, PROTO, [0, 1, 2]) == pytest.approx(3.0 - 1.0)
    assert cons.synaptic_trace(W, PROTO, [2, 1, 0]) == pytest.approx(1.0 - 3.0)
    # with the mask of every off-diagonal synapse, G2 -> G1's 16 synapses count at 0 nS
    mask = 1.0 - np.eye(12)
    assert cons.synaptic_trace(W, PROTO, range(3), mask) == pytest.approx(3.0 - 16 / 32)


def test_synaptic_trace_takes_means_not_sums_over_a_mean_count():
    """Finding: 3 forward synapses at 6 nS and 1 backward at 2 nS gave 8.0 (the sums'
    difference over the mean count), not 6 - 2 = 4; with the backward one depressed to 0
    it gave 12 (not 6), and an all-zero W raised ZeroDivisionError."""
    p = cons.Protocol(n_groups=2, group_size=2)
    W = np.zeros((4, 4))
    W[2, 0] = W[2, 1] = W[3, 0] = 6.0  # G0 -> G1: 3 synapses (W is (post, pre))
    W[0, 2] = 2.0  # G1 -> G0: 1 synapse
    assert cons.synaptic_trace(W, p, [0, 1]) == 4.0
    assert cons.synaptic_trace(W, p, [1, 0]) == -4.0
    mask = W > 0
    W[0, 2] = 0.0  # STDP depressed it to 0: still a synapse, of 0 nS
    assert cons.synaptic_trace(W, p, [0, 1], mask) == 6.0
    assert np.isnan(cons.synaptic_trace(W, p, [0, 1]))  # no mask: no backward synapse left
    assert np.isnan(cons.synaptic_trace(np.zeros((4, 4)), p, [0, 1]))
    W[2, 0] = np.nan
    assert np.isnan(cons.synaptic_trace(W, p, [0, 1], mask))
    for args, text in (
        ((np.zeros((3, 3)), p, [0, 1]), "W_ee must cover"),
        ((np.zeros((4, 5)), p, [0, 1]), "W_ee must be a square"),
        ((np.zeros((4, 4)), p, [0, 2]), "order must be"),
        ((np.zeros((4, 4)), p, [0, 0]), "order must be"),
        ((np.zeros((4, 4)), p, [0, 1], np.ones((3, 3))), "mask must have"),
    ):
        with pytest.raises(ValueError, match=f"synaptic_trace: {text}"):
            cons.synaptic_trace(*args)


def test_recall_refuses_windows_outside_the_raster():
    """Finding: a cue at 5 ms with 20 ms windows sliced r[-15:5] (empty): background 0, recall
    1.0 from a network that fires all the time."""
    r = np.ones((200, 12), np.uint8)
    assert cons.recall(r, 1.0, [100.0], PROTO, [0, 1, 2]) == 0.0  # always on: no recall
    for onset in (5.0, 190.0, np.nan):
        with pytest.raises(ValueError, match="recall: .*onset"):
            cons.recall(r, 1.0, [onset], PROTO, [0, 1, 2])
    with pytest.raises(ValueError, match="recall: raster must cover"):
        cons.recall(r[:, :10], 1.0, [100.0], PROTO, [0, 1, 2])
    with pytest.raises(ValueError, match="recall: bin_ms"):
        cons.recall(r, 0.0, [100.0], PROTO, [0, 1, 2])


def test_run_experiment_refuses_groups_beyond_the_e_cells():
    """Finding: 5 groups of 45 cells on SMALL_CORTEX's 200 E cells drove 25 inhibitory cells."""
    with pytest.raises(ValueError, match="group_size = 225 must be <= n_exc = 200"):
        cons.run_experiment(2, cons.Protocol(group_size=45))
    with pytest.raises(ValueError, match="n_groups must be an int >= 2"):
        cons.run_experiment(2, cons.Protocol(n_groups=1))
    with pytest.raises(ValueError, match="n_seeds must be an int >= 1"):
        cons.run_experiment(0)


@pytest.mark.parametrize(
    "field, text",
    [
        ({"period_ms": 0.0}, "protocol.period_ms must be a finite number > 0, got 0.0"),
        ({"stim_pA": float("nan")}, "protocol.stim_pA must be a finite number > 0, got nan"),
        ({"cue_ms": 0.0}, "protocol.cue_ms must be a finite number > 0"),
        ({"step_ms": -15.0}, "protocol.step_ms must be a finite number > 0"),
        ({"train_s": -1.0}, "protocol.train_s must be a finite number > 0"),
        ({"consolidation_s": 1e-6}, "protocol.consolidation_s = 1e-06 s is under one time step"),
        ({"n_cues": 0}, "protocol.n_cues must be an int >= 1"),
        ({"period_ms": 70.0}, "period_ms = 70.0 must hold a whole trial"),
        ({"cue_period_ms": 100.0}, "cue_period_ms = 100.0 must be >= 2 window_ms = 160.0"),
        ({"stdp": PairSTDPParams(tau_plus=-1.0)}, "protocol.stdp: tau_plus"),
    ],
)
def test_run_experiment_refuses_a_protocol_that_cannot_run_or_be_scored(field, text):
    """Review: only the groups were checked. A period of 0 ms or a nan current ran for
    minutes and reported a recall of 0 (a plausible 'nothing learned'); a negative phase
    failed in NumPy ('negative dimensions'), too short a cue period after the learning."""
    with pytest.raises(ValueError, match=re.escape("run_experiment: ") + ".*" + re.escape(text)):
        cons.run_experiment(2, cons.Protocol(**field))
    cons.check_protocol(cons.Protocol(), cons.SMALL_CORTEX.n_exc, "ok", cons.SMALL_CORTEX.dt)


def test_paired_stats_tests_a_tiny_consistent_difference_and_checks_shapes():
    """Finding: a - b = 1e-9 on every seed gave p = nan (np.allclose called it no difference)."""
    b = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    s = cons.paired_stats(b + 1e-9, b)
    assert s["t_test_p"] < 1e-6 and s["wilcoxon_p"] == pytest.approx(1 / 32)
    same = cons.paired_stats(b, b)  # no difference at all: no test statistic
    assert np.isnan(same["t_test_p"]) and np.isnan(same["wilcoxon_p"])
    a = b.copy()
    a[0] = np.nan
    s = cons.paired_stats(a, b)
    assert np.isnan(s["t_test_p"]) and np.isnan(s["difference"]["mean"])
    for a, b in (([1.0, 2.0, 3.0], [1.0, 2.0]), ([1.0], [2.0]), (np.ones((2, 2)), np.ones((2, 2)))):
        with pytest.raises(ValueError, match="paired_stats: a and b must be 1-D"):
            cons.paired_stats(a, b)


def test_sequence_and_cue_stimuli():
    stim = cons.sequence_stimulus(PROTO, 3000, 0.1, [2, 0, 1])  # 300 ms: one trial and a bit
    on = [np.flatnonzero(stim[:, k])[0] * 0.1 for k in range(3)]
    assert on == pytest.approx([15.0, 30.0, 0.0])  # group 2 first, 15 ms steps
    assert stim[:, 0].sum() == 150 + 150  # 15 ms in each of the two trials begun
    cue, onsets = cons.cue_stimulus(PROTO._replace(n_cues=2, settle_s=0.1), 0.1, [0, 2])
    assert len(onsets) == 4 and onsets[0] == pytest.approx(100.0 + 20.0)
    assert np.diff(onsets) == pytest.approx([250.0] * 3)
    assert cue[:, 0].sum() == 2 * 100 and cue[:, 2].sum() == 2 * 100 and cue[:, 1].sum() == 0


def test_paired_stats_and_verdict():
    a, b = np.array([0.5, 0.6, 0.7, 0.55, 0.65]), np.array([0.4, 0.45, 0.5, 0.42, 0.48])
    s = cons.paired_stats(a, b)
    d = a - b
    half = 2.776 * d.std(ddof=1) / np.sqrt(5)  # t_{0.975, 4} = 2.776
    assert s["difference"]["mean"] == pytest.approx(d.mean())
    assert s["difference"]["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-3)
    assert night.verdict(s).startswith("sleep helped")
    assert night.verdict(cons.paired_stats(b, a)).startswith("sleep hurt")
    assert night.verdict(cons.paired_stats(a, a)).startswith("no significant difference")


def test_night_writes_its_figures_and_report(tmp_path, capsys):
    out = tmp_path / "night"
    argv = ["night", "--out", str(out), "--parts", "night", "--n-exc", "100"]
    assert main([*argv, "--hypnogram", "W,N,R", "--epoch-s", "3"]) == 0
    for name in ("night.png", "stages.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    res = json.loads((out / "results.json").read_text())
    assert set(res["night"]["stages"]) == {"wake", "NREM", "REM"}
    assert "## The night" in (out / "README.md").read_text()
    assert "wrote" in capsys.readouterr().out


def _disk_full_at_figures(monkeypatch):
    """Every figure write fails as a full disk does; the other files are written."""
    import errno

    from nnjax import io

    def full(fig, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io, "atomic_save_figure", full)


def test_a_disk_full_at_the_figures_keeps_the_numbers(tmp_path, capsys, monkeypatch):
    """results.json and README.md are written before the figures: a minutes-long night is
    not lost to a disk that fills up at its PNGs (they were written first)."""
    out = tmp_path / "night"
    _disk_full_at_figures(monkeypatch)
    argv = ["night", "--out", str(out), "--parts", "night", "--n-exc", "100"]
    assert main([*argv, "--hypnogram", "W,N,R", "--epoch-s", "3"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("night 0/9 [") and err[0].endswith("| compiling...")  # progress
    assert err[-2].startswith("night 9/9 [") and err[-2].endswith("| epoch 3/3 (REM)")
    assert err[-1] == (
        f"nnjax night: error: {out}/night.png: No space left on device (errno 28, ENOSPC)"
    )
    assert set(json.loads((out / "results.json").read_text())["night"]["stages"]) == {
        "wake", "NREM", "REM"
    }  # fmt: skip
    assert "## The night" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--hypnogram", "W,X"], "--hypnogram: letters must be W, N or R"),
        (["--n-exc", "150"], "--n-exc must be a multiple of 4"),
        (["--n-exc", "50"], "--n-exc: must be an integer >= 100"),
        (["--epoch-s", "0"], "--epoch-s: must be a number of seconds > 0"),
        (["--seeds", "1"], "--seeds: must be an integer >= 2"),
        (["--hypnogram", "W,N,R", "--epoch-s", "2"], "the longest run of W is 1 epoch(s) of 2 s"),
        (["--hypnogram", "W,W,N,R,R", "--epoch-s", "1.5"], "the longest run of N is 1 epoch(s)"),
        (["--epoch-s", "3.0001"], "--epoch-s: must be a whole number of 10 ms"),
        (["--train-s", "4.005"], "--train-s: must be a whole number of 10 ms"),
        (["--epoch-s", "1e9"], "11 epochs of 1e+09 s = 1.1e+10 s of 1000 cells need about 60"),
        (["--parts", "consolidation", "--interference-s", "1e9"], "--interference-s 1e+09: "),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, text, tmp_path, capsys):
    assert main(["night", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and text in err, err
    assert not (tmp_path / "x").exists()


def test_the_experiment_runs_both_conditions_from_the_same_learned_state():
    """Two tiny networks (100 E + 25 I, CORTEX's in-degrees), short phases: learning S1 makes
    its forward links stronger than its backward ones (the trace grows from that of the
    random initial weights), the conditions part after it, S1 and S2 traces are opposite,
    and the replay rasters cover the first raster_s of the consolidation period."""
    import jax

    from nnjax.brain import circuits

    cfg = cons.SMALL_CORTEX._replace(n_exc=100, n_inh=25, p=0.8)
    proto = cons.Protocol(train_s=1.0, consolidation_s=0.3, interference_s=0.1, n_cues=1,
                          settle_s=0.1, raster_s=0.2)  # fmt: skip
    out = cons.run_experiment(2, proto, cfg, seed=3)
    learned = out["trace"]["sleep"]["after_learning"]
    keys = jax.random.split(jax.random.key(3), 2)  # run_experiment's networks, drawn as it
    # draws them (vmapped), in one compiled call (eagerly: ~40 small compiles, 0.9 s more CPU)
    W_ee = jax.jit(jax.vmap(lambda k: circuits.init_params(k, cfg).W_ee))(keys)
    before = [cons.synaptic_trace(np.asarray(W), proto, range(5)) for W in W_ee]
    assert (learned["S1"] > np.array(before) + 0.1).all(), (learned, before)
    np.testing.assert_allclose(learned["S2"], -learned["S1"], rtol=1e-6)
    # the two conditions share the after-learning scores by construction (one dict); what
    # can fail is that the states differ afterwards (same draws: test_brain_sleep_audit.py)
    a, b = (out["trace"][c]["after_consolidation"]["S1"] for c in cons.CONDITIONS)
    assert not np.array_equal(a, b)
    for measure in ("recall", "trace"):
        for cond in cons.CONDITIONS:
            for stage in cons.STAGES:
                assert out[measure][cond][stage]["S1"].shape == (2,)
    assert out["raster"]["sleep"].shape == (200, 125)  # 0.2 s in 1 ms bins, all neurons


def test_a_run_of_one_part_removes_the_other_parts_earlier_figures(tmp_path, monkeypatch):
    """Review: nnjax night --parts consolidation into the folder of an earlier full run left
    its night.png and stages.png beside a README without the night (taken for this run's).
    (Such a re-run needs --overwrite: tests/test_out_kept.py.)"""
    from nnjax.plotting import subplots

    def part(names):
        return lambda args, results, stop=None: {n: subplots()[0] for n in names}

    monkeypatch.setattr(night, "run_night_part", part(night_command.FIGURES["night"]))
    monkeypatch.setattr(night, "run_consolidation_part", part(("recall.png", "replay.png")))
    out = tmp_path / "run"
    out.mkdir()
    for name in ("night.png", "stages.png", "recall.png", "replay.png"):
        (out / name).write_bytes(b"an earlier run's figure")
    assert main(["night", "--out", str(out), "--parts", "consolidation", "--overwrite"]) == 0
    assert {p.name for p in out.iterdir()} == {"results.json", "README.md", "recall.png",
                                               "replay.png"}  # fmt: skip
    assert (out / "recall.png").read_bytes()[:4] == b"\x89PNG"


def test_describe_stages_refuses_a_negative_settle_time():
    """Review: settle_s=-2 started the stage's stretch at a negative bin, and Python's
    negative index described the last 2 s of the night as that stage (or failed in welch)."""
    rng = np.random.default_rng(0)
    n = 6000  # 6 s in 1 ms bins, one NREM run
    rec = {"rate": rng.random((n, 2)) * 5, "lfp": rng.standard_normal(n),
           "spikes": (rng.random((n, 120)) < 0.005).astype(np.uint8)}  # fmt: skip
    for bad in (-2.0, float("nan")):
        with pytest.raises(ValueError, match=r"describe_stages: settle_s \(s\) must be a finite"):
            night.describe_stages(rec, np.array([1, 1]), 3.0, 1.0, 100, settle_s=bad)
    assert night.describe_stages(rec, np.array([1, 1]), 3.0, 1.0, 100)["NREM"]["seconds"] == 5.0


def test_night_network_refuses_too_few_cells_naming_n_exc():
    """Review: night_network(0) divided by zero and night_network(50) failed in connectivity
    ('p must lie in [0, 1], got 1.6'), naming neither n_exc nor its bound."""
    for bad in (0, 50, 100.0):
        with pytest.raises(ValueError, match="night_network: n_exc must be an int >= 83"):
            night.night_network(bad)
    cfg = night.night_network(200)
    assert (cfg.n_exc, cfg.n_inh, cfg.p * 200, cfg.p * 50) == (200, 50, 80.0, 20.0)
