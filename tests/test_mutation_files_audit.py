"""Mutation audit of the file side (nnjax.io, nnjax.params_npz, nnjax.parallel and the
consolidation protocol): each test here fails on one small fault the other tests let pass
(a rename group's folder syncs, the temporary name's cut, byte-string leaves, the leftover
array named, a transposed leaf, ...)."""

import os
import re

import numpy as np
import pytest

from nnjax import _host
from nnjax import io as nio
from nnjax import params_npz as pn

# ---- nnjax.io -------------------------------------------------------------------------------


def _record_renames_and_syncs(monkeypatch):
    events = []
    replace, fsync_dir = os.replace, nio.fsync_dir

    def on_replace(src, dst):
        events.append(("replace", os.path.basename(dst)))
        return replace(src, dst)

    def on_fsync_dir(folder):
        events.append(("fsync_dir", os.path.abspath(folder)))
        return fsync_dir(folder)

    monkeypatch.setattr(nio.os, "replace", on_replace)
    monkeypatch.setattr(nio, "fsync_dir", on_fsync_dir)
    return events


@pytest.mark.parametrize("sync_each", [True, False])
def test_atomic_write_files_syncs_the_folder_after_each_rename_when_asked(
    tmp_path, monkeypatch, sync_each
):
    """sync_each: the folder is fsync-ed after each rename (so a power cut never keeps a later
    rename without an earlier one), then once per folder; without it, once per folder."""
    events = _record_renames_and_syncs(monkeypatch)
    d = os.path.abspath(tmp_path)
    nio.atomic_write_files(
        [(tmp_path / "data.npz", b"1"), (tmp_path / "meta.json", b"2")], sync_each=sync_each
    )
    monkeypatch.undo()
    each = [("fsync_dir", d)] if sync_each else []
    want = [("replace", "data.npz"), *each, ("replace", "meta.json"), *each, ("fsync_dir", d)]
    assert events == want
    assert (tmp_path / "data.npz").read_bytes() == b"1"
    assert (tmp_path / "meta.json").read_bytes() == b"2"


def test_temp_path_keeps_the_first_100_bytes_of_the_name(tmp_path):
    """The temporary name holds the target's name cut to 100 bytes (the docstring), no fewer:
    a 150-character ASCII name keeps exactly its first 100 characters."""
    name = "".join(chr(ord("a") + i % 26) for i in range(150))
    tmp = os.path.basename(nio.temp_path(tmp_path / name))
    assert tmp.startswith(f".{name[:100]}.{_host.host_tag()}.{os.getpid()}.")
    assert nio._TMP.match(tmp)["target"] == name[:100]
    short = os.path.basename(nio.temp_path(tmp_path / "w.npz"))
    assert nio._TMP.match(short)["target"] == "w.npz"


# ---- nnjax.params_npz ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "leaf", [np.array([b"ab", b"c"]), np.array(["ab", "c"]), np.array([1, "x"], dtype=object)]
)
def test_save_params_refuses_bytes_text_and_object_leaves(tmp_path, leaf):
    """A byte-string leaf (dtype S) is no array of numbers: it would come back as bytes, not
    as the numbers the params were; a ValueError names it before the disk is touched."""
    path = tmp_path / "p.npz"
    assert not pn.holds_numbers(leaf)
    with pytest.raises(ValueError, match=r"params\['b'\] is not an array of numbers"):
        pn.save_params(path, {"a": np.zeros(2, np.float32), "b": leaf})
    assert not path.exists()
    for ok in (np.zeros(2, np.float32), np.arange(3), np.array([True]), np.zeros(1, complex)):
        assert pn.holds_numbers(ok)


def test_load_params_names_the_first_leftover_array_in_sorted_order(tmp_path):
    """Arrays of the file with no place in like: the message names the first of them in
    sorted order (so the same file always gives the same message) and counts them."""
    path = tmp_path / "p.npz"
    params = {"W": np.ones(2, np.float32), "b": np.zeros(2, np.float32)}
    params.update({k: np.zeros(1, np.float32) for k in ("zz", "m", "y")})
    pn.save_params(path, params)
    like = {"W": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}
    extra = sorted(set(pn.flatten_params(params)) - set(pn.flatten_params(like)))
    assert extra[0] == "['m']"
    with pytest.raises(ValueError, match=r"params\['m'\] has no place in like \(3 of the file"):
        pn.load_params(path, like)


def test_load_params_refuses_a_leaf_of_the_same_size_in_another_shape(tmp_path):
    """A (2, 3) array read into a (3, 2) leaf (the same rank and size, a transposed layer)
    is a ValueError naming both shapes, not a silently reshaped weight."""
    path = tmp_path / "p.npz"
    W = np.arange(6, dtype=np.float32).reshape(2, 3)
    pn.save_params(path, [{"W": W}])
    for shape in ((3, 2), (6,), (1, 6)):
        want = re.escape(f"params[0]['W'] has shape (2, 3), expected {shape}")
        with pytest.raises(ValueError, match=want):
            pn.load_params(path, [{"W": np.zeros(shape, np.float32)}])
    back = pn.load_params(path, [{"W": np.zeros((2, 3), np.float32)}])
    np.testing.assert_array_equal(back[0]["W"], W)


# ---- nnjax.parallel (four virtual CPU devices, in a fresh process) --------------------------

_MESH_SCRIPT = """
import json, jax, numpy as np
from jax.sharding import AxisType, Mesh
from nnjax import parallel
devs = jax.devices()
m = parallel.make_mesh(2)
x = jax.device_put(np.arange(16.0).reshape(8, 2), parallel.batch_sharding(4))
rows = sorted((s.device.id, s.index[0].start, s.index[0].stop) for s in x.addressable_shards)
mixed = Mesh(np.array(devs).reshape(2, 2), ("a", "b"),
             axis_types=(AxisType.Auto, AxisType.Explicit))
try:
    parallel.as_mesh(Mesh(np.array([devs[0], devs[1], devs[0]]), ("data",)))
    twice = None
except ValueError as e:
    twice = str(e)
print("RESULT" + json.dumps({
    "mesh": [d.id for d in m.devices.flat], "first": [d.id for d in devs[:2]], "rows": rows,
    "auto": [str(t) for t in parallel.auto_axes(mixed).axis_types], "twice": twice}))
"""


def test_mesh_takes_the_first_devices_and_batches_split_by_rows():
    """make_mesh(2) takes the first two devices (the docstring); batch_sharding gives device d
    rows [d B/D, (d+1) B/D); auto_axes makes every axis of a 2-D mesh Auto (one Auto axis is
    not all); a mesh listing a device twice is refused by as_mesh (it ended in a bare
    AssertionError deep in JAX)."""
    from virtual_devices import run_on_devices

    out = run_on_devices(_MESH_SCRIPT, 4, timeout=120)
    assert out["mesh"] == out["first"]
    assert [r[1:] for r in out["rows"]] == [[2 * d, 2 * d + 2] for d in range(4)]
    assert out["auto"] == ["AxisType.Auto", "AxisType.Auto"]
    assert out["twice"] is not None and "more than once" in out["twice"]


# ---- nnjax.brain.consolidation: what runs in each phase ------------------------------------


def test_consolidation_phases_keys_stimuli_and_plasticity(monkeypatch):
    """Spy on every phase of run_experiment: STDP acts in every phase but the tests, the whole
    consolidation period (raster part + rest) runs in the condition's state with STDP on, S2 is
    S1 reversed, no two phases of a condition share a random tag, both conditions share all
    their tags, and S2's recall is scored at S2's cue onsets."""
    from nnjax.brain import consolidation as cons
    from nnjax.brain import sleep_states as ss

    cfg = cons.SMALL_CORTEX._replace(n_exc=60, n_inh=15, p=0.5)
    proto = cons.Protocol(n_groups=3, group_size=10, train_s=0.05, consolidation_s=0.1,
                          interference_s=0.05, n_cues=1, settle_s=0.02, raster_s=0.05)  # fmt: skip
    calls, scored = [], []
    run, recall = cons._run, cons.recall

    def spy_run(keys, params, state, mod, stim, protocol, cfg_, monitor, plastic, tag, *traces):
        calls.append((tag, plastic, monitor is cons._RASTER, np.asarray(stim), mod))
        return run(keys, params, state, mod, stim, protocol, cfg_, monitor, plastic, tag, *traces)

    def spy_recall(raster, bin_ms, onsets, protocol, order):
        scored.append((list(order), np.asarray(onsets)))
        return recall(raster, bin_ms, onsets, protocol, order)

    monkeypatch.setattr(cons, "_run", spy_run)
    monkeypatch.setattr(cons, "recall", spy_recall)
    cons.run_experiment(1, proto, cfg, seed=1)
    steps = lambda s: int(round(s * 1000.0 / cfg.dt))  # noqa: E731
    s1, s2 = [0, 1, 2], [2, 1, 0]
    assert len(calls) == 2 + 2 * 5
    wake, nrem = (ss.modulation(ss.STATES[s], ss.StateMap()) for s in ("wake", "NREM"))
    for c, state in enumerate((nrem, wake)):
        phases = calls[:2] + calls[2 + 5 * c : 7 + 5 * c]
        tags = [p[0] for p in phases]
        assert len(set(tags)) == len(tags), tags
        assert tags == [p[0] for p in calls[:2] + calls[2 + 5 * (1 - c) : 7 + 5 * (1 - c)]]
        plastic = [p[1] for p in phases]
        assert plastic == [True, False, True, True, False, True, False]
        first, rest, _, train2, _ = phases[2:]
        assert first[2] and not rest[2]  # the raster is the first raster_s s
        assert len(first[3]) == steps(proto.raster_s)
        assert len(first[3]) + len(rest[3]) == steps(proto.consolidation_s)
        assert not first[3].any() and not rest[3].any()
        for p in (first, rest):
            for a, b in zip(p[4], state):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        want = cons.sequence_stimulus(proto, steps(proto.interference_s), cfg.dt, s2)
        np.testing.assert_array_equal(train2[3], want)
    _, onsets = cons.cue_stimulus(proto, cfg.dt, [s1[0], s2[0]])
    assert len(scored) == 2 * 5
    for order, at in scored:
        np.testing.assert_array_equal(at, onsets[0::2] if order == s1 else onsets[1::2])
