"""A night run in blocks that a signal can stop (network.simulate_blocks, run_night's stop,
nnjax night on a signal in its night part): the same numbers as one scan, cut where it
stopped, and the epochs that had ended written."""

import json
import os
import signal

import jax
import numpy as np
import pytest

from nnjax.brain import circuits, network, plasticity
from nnjax.brain import sleep_states as ss
from nnjax.brain.night import night_network, simulate_night
from nnjax.cli import main
from nnjax.train import StopFlag

CFG = night_network(83)  # the smallest night network: 83 E + 20 I cells
MONITOR = network.Monitor(every=10, spikes="raster")


def _same(a, b) -> bool:
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y), a, b))
    return jax.tree.structure(a) == jax.tree.structure(b) and all(leaves)


def _stop_after(bins: int):
    """A stop flag and the hook that requests it once ``bins`` bins have run."""
    stop = StopFlag()
    return stop, lambda report: report.end >= bins and stop.request("test")


@pytest.mark.parametrize("plastic", [False, True], ids=["static", "stdp"])
def test_blocks_give_one_scans_numbers_and_stop_between_blocks(plastic):
    """3000 steps in blocks of 700 (4 of 70 bins, then one of 20): the record, state, W_ee
    and traces of one simulate call, bit for bit; a stop after the second block keeps its
    140 bins (the first 140 of the whole run) and the state at step 1400; a stop before the
    first leaves the record's fields without rows and the state untouched."""
    params = circuits.init_params(jax.random.key(0), CFG)
    stdp = plasticity.PairSTDPParams() if plastic else None
    key, kw = jax.random.key(1), dict(monitor=MONITOR, stdp=stdp)
    one = network.simulate(key, params, CFG.spec, 3000, **kw)
    run, driven = network.simulate_blocks(key, params, CFG.spec, 3000, 700, **kw)
    assert driven.done == 300 and driven.stopped is None
    assert _same(jax.tree.map(np.asarray, one), run)
    stop, hook = _stop_after(140)
    part, driven = network.simulate_blocks(
        key, params, CFG.spec, 3000, 700, stop=stop, hooks=[hook], **kw
    )
    assert driven.done == 140 and driven.stopped == "test" and int(part.state.t) == 1400
    assert _same({k: np.asarray(v)[:140] for k, v in one.record.items()}, part.record)
    stop = StopFlag()
    stop.request("before")
    none, driven = network.simulate_blocks(key, params, CFG.spec, 3000, 700, stop=stop, **kw)
    assert driven.done == 0 and int(none.state.t) == 0
    assert {k: v.shape for k, v in none.record.items()} == {
        k: (0,) + np.shape(v)[1:] for k, v in one.record.items()
    }


def test_blocks_refuse_what_simulate_would_not_take():
    params = circuits.init_params(jax.random.key(0), CFG)
    with pytest.raises(ValueError, match=r"block_steps must be a multiple of the monitor's every"):
        network.simulate_blocks(jax.random.key(1), params, CFG.spec, 100, 15, monitor=MONITOR)
    with pytest.raises(ValueError, match="simulate_blocks: stop must be a StopFlag"):
        network.simulate_blocks(jax.random.key(1), params, CFG.spec, 100, 10, stop=True)
    blocks = lambda k: network.simulate_blocks(k, params, CFG.spec, 100, 10)[0].record  # noqa: E731
    for transform in (jax.jit, jax.vmap):  # a deep JAX error on a tracer before
        with pytest.raises(ValueError, match="not under jax.jit, jax.vmap or jax.grad"):
            transform(blocks)(jax.random.split(jax.random.key(1), 2))


def test_a_stopped_night_is_the_night_of_the_epochs_that_ended():
    """simulate_night with a stop runs 1 s blocks (run_night): a stop in the fifth block of a
    W,N,N,R night of 1.5 s epochs keeps the three epochs that had ended (4500 of its 5000
    bins), the record and the described NREM of a night of those three, bit for bit."""
    stop, hook = _stop_after(4600)
    part = simulate_night([0, 1, 1, 2], 1.5, cfg=CFG, stop=stop, hooks=[hook], settle_s=0.0)
    whole = simulate_night([0, 1, 1], 1.5, cfg=CFG, settle_s=0.0)
    assert part["epochs_run"] == 3 and "epochs_run" not in whole
    assert list(part["hypno"]) == [0, 1, 1] and len(part["record"]["lfp"]) == 4500
    assert _same(whole["record"], part["record"])
    assert set(part["stages"]) == {"NREM"}
    np.testing.assert_equal(part["stages"], whole["stages"])  # NaN (no Up/Down) equal to NaN


ARGV = ["night", "--parts", "night,consolidation", "--n-exc", "100", "--epoch-s", "1.5"]


def _signal_at(monkeypatch, seconds: float):
    """SIGTERM to this process once ``seconds`` of the night have run (a hook on its blocks),
    as a user's kill would arrive while the night's compiled calls run."""
    real = ss.run_night

    def run_night(*a, hooks=(), **kw):
        sent = []

        def send(report):
            if report.end >= seconds * 1000 and not sent:  # 1 ms bins
                sent.append(os.kill(os.getpid(), signal.SIGTERM))

        return real(*a, hooks=(*hooks, send), **kw)

    monkeypatch.setattr(ss, "run_night", run_night)


def test_a_signal_in_the_night_writes_the_epochs_that_ended(tmp_path, capfd, monkeypatch):
    """Stopped after 4 s of a N,N,W,W night of 1.5 s epochs: the two NREM epochs that ended
    are written (results, README, figures; the third epoch's first second left out), the
    consolidation does not run, status 143."""
    _signal_at(monkeypatch, 4.0)
    out = tmp_path / "n"
    assert main([*ARGV, "--out", str(out), "--hypnogram", "N,N,W,W"]) == 128 + signal.SIGTERM
    res = json.loads((out / "results.json").read_text())
    assert res["night"]["epochs_run"] == 2 and res["stopped"] == "SIGTERM"
    assert set(res["night"]["stages"]) == {"NREM"} and "consolidation" not in res
    assert sorted(os.listdir(out)) == ["README.md", "night.png", "results.json", "stages.png"]
    readme = (out / "README.md").read_text()
    assert "**Stopped by SIGTERM after 2 of its 4 epochs** (`N,N`)" in readme
    assert (
        "The consolidation part did not run: the run was stopped by SIGTERM in the night "
        "part." in readme
    )
    err = capfd.readouterr().err.strip().splitlines()  # the announcement: a write to fd 2
    said = [line for line in err if line.startswith("nnjax night: SIGTERM: stopping after")]
    assert len(said) == 1 and err[0].startswith("night 0/6 [")  # the night's progress first
    assert err[-1] == (
        "nnjax night: error: interrupted by SIGTERM: the night stopped after epoch 2 of 4; "
        f"its results are in {out}/"
    )


def test_a_signal_before_a_stage_could_be_described_writes_nothing(tmp_path, capsys, monkeypatch):
    _signal_at(monkeypatch, 1.0)
    out = tmp_path / "new" / "n"
    assert main([*ARGV, "--out", str(out), "--hypnogram", "N,N,W,W"]) == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == []  # the folders the run made, removed again
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "nnjax night: error: interrupted by SIGTERM: the night stopped after 0 epoch(s), "
        "before any stage could be described; nothing written"
    )
