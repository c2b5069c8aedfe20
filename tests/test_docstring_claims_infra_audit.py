"""Docstring claims of nnjax's run infrastructure (cache, io, lock, lock_record, preflight,
progress, presets, runconfig), held against the code's behaviour.

Each test quotes the claim it checks. Four were defects: runconfig.config_diff promises
``True != 1`` and "nan equals nan", but compared a list with Python's ``==``, so ``[nan]``
differed from ``[nan]`` (a resume refused over a list holding nan) and ``[True]`` equalled
``[1]`` (a change from a flag to a number went unnoticed); parse_overrides, which refuses a
field given twice with different values, let ``a=1 a=true`` through and refused ``a=NaN
a=NaN``; and preflight.human_bytes wrote ``1024 B`` and ``1024.0 KiB`` for figures that
round up to the next unit. And lock_record.describe's docstring showed its line with commas
and ``command C`` where the line has semicolons and ``command: C`` (docstring fixed).
"""

import json
import os
import subprocess
import sys
import time
import warnings

import pytest

from nnjax import cache, io, lock, lock_record, presets, progress, runconfig
from nnjax.preflight import check_free_space, human_bytes


def _doc(obj) -> str:
    return " ".join(obj.__doc__.split())


# --- nnjax.runconfig ----------------------------------------------------------------------


def test_config_diff_nan_equals_nan_inside_a_list_too():
    # "nan equals nan": a list holding nan read back from JSON is not a change
    nan = float("nan")
    assert runconfig.config_diff({"a": [nan, 1]}, {"a": [float("nan"), 1]}) == []
    assert runconfig.config_diff({"a": [{"b": nan}]}, {"a": [{"b": float("nan")}]}) == []
    runconfig.check_config({"hidden": [nan]}, json.loads(json.dumps({"hidden": [nan]})))


def test_config_diff_true_is_not_1_inside_a_list_either():
    # "``True != 1``"
    assert runconfig.config_diff({"a": [True]}, {"a": [1]}) == [("a", [True], [1])]
    assert runconfig.config_diff({"a": True}, {"a": 1}) == [("a", True, 1)]


def test_parse_overrides_refuses_a_field_given_twice_only_when_the_values_differ():
    # "a field given twice with different values": 1 and true differ (True != 1), nan and
    # nan do not
    with pytest.raises(ValueError, match=r"^override a given twice, as 1 and True: give one$"):
        runconfig.parse_overrides(["a=1", "a=true"])
    got = runconfig.parse_overrides(["a=NaN", "a=NaN"])["a"]
    assert got != got  # nan


def test_config_diff_tuples_equal_lists_and_1_equals_1_0():
    # "Tuples equal lists (JSON has only lists), ``1 == 1.0``"
    assert runconfig.config_diff({"a": (1, 2), "b": 1}, {"a": [1, 2.0], "b": 1.0}) == []
    assert runconfig.config_diff({"a": (1, 2)}, {"a": [1, 2, 3]}) == [("a", (1, 2), [1, 2, 3])]


# --- nnjax.cache --------------------------------------------------------------------------


def _env(monkeypatch, **values):
    names = ("NNJAX_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE")
    for name in names + ("XDG_CACHE_HOME",):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_cache_folder_rules_in_their_order(monkeypatch, tmp_path):
    # rule 1 beats 2 beats 3 beats 4; NNJAX_CACHE_DIR=off turns it off
    _env(monkeypatch, NNJAX_CACHE_DIR=str(tmp_path / "env"), JAX_COMPILATION_CACHE_DIR="/j")
    assert cache.resolve_cache_dir(str(tmp_path / "opt")) == str(tmp_path / "opt")
    assert cache.resolve_cache_dir(str(tmp_path / "opt"), no_cache=True) is None
    assert cache.resolve_cache_dir() == str(tmp_path / "env")
    monkeypatch.setenv("NNJAX_CACHE_DIR", " OFF ")
    assert cache.resolve_cache_dir() is None
    monkeypatch.delenv("NNJAX_CACHE_DIR")
    assert cache.resolve_cache_dir() == ""  # JAX's own settings decide
    _env(monkeypatch, JAX_ENABLE_COMPILATION_CACHE="No")
    assert cache.resolve_cache_dir() == ""
    _env(monkeypatch, XDG_CACHE_HOME=str(tmp_path))
    assert cache.resolve_cache_dir() == str(tmp_path / "nnjax" / "jax-cache")
    _env(monkeypatch, XDG_CACHE_HOME="relative/dir")  # ignored, as the XDG rules say
    home = os.path.expanduser("~")
    assert cache.resolve_cache_dir() == os.path.join(home, ".cache", "nnjax", "jax-cache")


def test_remove_empty_entries_removes_only_empty_jax_entries(tmp_path):
    # "removes the entries of zero bytes a full disk leaves"
    key = "0123456789abcdef" * 4
    empty, full, other = f"jit_f-{key}-cache", f"jit_g-{key}-cache", "notes-cache"
    for name, data in ((empty, b""), (full, b"x"), (other, b"")):
        (tmp_path / name).write_bytes(data)
    assert cache.remove_empty_entries(str(tmp_path)) == [empty]
    assert sorted(os.listdir(tmp_path)) == sorted([full, other])


# --- nnjax.io -----------------------------------------------------------------------------


def test_atomic_write_fsyncs_the_file_then_renames_then_fsyncs_the_folder(monkeypatch, tmp_path):
    # "a temporary file in the same directory, fsync, ``os.replace``, fsync of the directory"
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        assert os.path.dirname(src) == str(tmp_path) and os.path.getsize(src) == 3
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    io.atomic_write_bytes(tmp_path / "f.bin", b"abc")
    assert events == ["fsync file", "replace", "fsync folder"]
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_files_stages_all_then_renames_in_order(monkeypatch, tmp_path):
    # "only when all are on disk are they renamed over their targets, in the order given";
    # "if it [before_replace] raises, nothing is replaced"
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    renamed, real_replace = [], os.replace

    def replace(src, dst):
        assert len([n for n in os.listdir(tmp_path) if n.endswith(".tmp")]) == 2 - len(renamed)
        renamed.append(os.path.basename(dst))
        real_replace(src, dst)

    def refuse():
        raise RuntimeError("set aside failed")

    with pytest.raises(RuntimeError):
        io.atomic_write_files([(b, b"new b"), (a, b"new a")], before_replace=refuse)
    assert os.listdir(tmp_path) == ["a"] and a.read_bytes() == b"old a"
    monkeypatch.setattr(os, "replace", replace)
    io.atomic_write_files([(b, b"new b"), (a, b"new a")])
    assert renamed == ["b", "a"] and a.read_bytes() == b"new a" and b.read_bytes() == b"new b"


def test_temp_path_names_its_writer():
    # "``.{name}.{host}.{pid}.{8 hex}.tmp``"
    name = os.path.basename(io.temp_path("/x/results.json"))
    assert io._TMP.match(name)["pid"] == str(os.getpid())
    assert name.startswith(".results.json.") and name.endswith(".tmp")


# --- nnjax.lock, nnjax.lock_record --------------------------------------------------------


def test_lock_file_holds_the_record_and_goes_on_release(tmp_path):
    # "a JSON record of its holder ``{pid, host, started, started_unix, identity, command}``"
    with lock.DirectoryLock(tmp_path, heartbeat=None) as held:
        rec = json.loads(open(held.path).read())
        assert set(rec) == {"pid", "host", "started", "started_unix", "identity", "command"}
        assert rec["pid"] == os.getpid()
        with pytest.raises(lock.DirectoryLockedError):
            lock.DirectoryLock(tmp_path, heartbeat=None).acquire()
    assert not os.path.exists(held.path)


def test_a_dead_holder_on_this_host_is_taken_over_with_a_warning(tmp_path):
    # "Stale locks are taken over with a StaleLockWarning naming the dead holder"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with lock.DirectoryLock(tmp_path, heartbeat=None) as held:
        rec = json.loads(open(held.path).read())
    rec["pid"] = child.pid
    (tmp_path / lock.LOCK_NAME).write_text(json.dumps(rec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lock.DirectoryLock(tmp_path, heartbeat=None) as held:
            assert held.taken_over["pid"] == child.pid
    assert any(
        issubclass(w.category, lock.StaleLockWarning) and f"process {child.pid}" in str(w.message)
        for w in caught
    )


def test_a_holder_is_described_as_the_docstring_shows():
    # "``process P on host H (started T; last heartbeat N s ago; command: C)``"
    holder = {"pid": 5, "host": "h", "started": "T", "command": "nnjax train"}
    got = lock_record.describe(holder, time.time() - 3)
    assert got == "process 5 on host h (started T; last heartbeat 3 s ago; command: nnjax train)"
    assert _doc(lock_record.describe).startswith(
        "``process P on host H (started T; last heartbeat N s ago; command: C)``"
    )
    assert lock_record.describe({"pid": 5, "host": "h"}) == "process 5 on host h (started ?)"


# --- nnjax.preflight ----------------------------------------------------------------------


def test_human_bytes_is_binary_units():
    # "``1536`` -> ``"1.5 KiB"``"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**2) == "3.0 MiB"
    # a figure that rounds up to 1024 goes to the next unit
    assert human_bytes(1023.6) == "1.0 KiB"
    assert human_bytes(1024**2 - 1) == "1.0 MiB"
    assert human_bytes(1023) == "1023 B" and human_bytes(0) == "0 B"


def test_check_free_space_warns_in_one_line_only_when_short(tmp_path):
    free = __import__("shutil").disk_usage(tmp_path).free
    assert check_free_space(tmp_path, 0) is None
    line = check_free_space(tmp_path / "new" / "sub", free * 4 + 10**12, "--out")
    assert line.startswith(f"--out {tmp_path / 'new' / 'sub'}: only ") and "\n" not in line


# --- nnjax.progress -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "s, text",
    [(4.2, "4.2 s"), (42, "42 s"), (185, "3m05s"), (3720, "1h02m"), (59.6, "1m00s"),
     (9.96, "10 s"), (3599.6, "1h00m"), (-5, "-5.0 s"), (float("nan"), "?")],
)  # fmt: skip
def test_format_seconds_examples(s, text):
    assert progress.format_seconds(s) == text


def test_eta_is_remaining_units_times_the_rate_from_the_first_update():
    # "ETA = (total - done) * r, where r is the time per unit measured from the first update"
    t = [0.0]
    p = progress.Progress(10, "epoch", unit="epoch", stream=_Sink(), clock=lambda: t[0])
    p.start("compiling...")
    t[0] = 30.0  # the first epoch pays compiling
    p.update(1)
    assert p.eta() is None and "ETA ?" in p.line()
    t[0] = 34.0
    p.update(3)  # 2 units in 4 s
    assert p.seconds_per_unit() == 2.0 and p.eta() == 14.0
    assert "ETA 14 s" in p.line()


class _Sink:
    def write(self, text):
        pass

    def flush(self):
        pass


# --- nnjax.presets ------------------------------------------------------------------------


def test_presets_read_as_the_options_they_stand_for():
    assert presets.describe(presets.preset("toy")) == (
        "--hidden 8 --activation tanh --epochs 100 --batch-size 0 (full) --lr 0.05 (adam)"
    )
    assert "lr" not in presets.preset(None)  # --data: the optimizer's own default
    with pytest.raises(ValueError, match="valid: toy, xor, moons, spirals, digits, mnist1d"):
        presets.preset("cifar")
