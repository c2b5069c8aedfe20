"""A mutation audit of the everyday infrastructure (cache, lock records, checkpoint layout,
labels, preflight, CLI hints and output): each test caught a fault the suite let pass."""

import argparse
import datetime
import errno
import io
import json
import os
import subprocess
import sys
import time
import zlib
from collections import namedtuple

import jax
import numpy as np
import pytest

from nnjax import _host, cache, lock_record, preflight, saved_format, tree_arrays
from nnjax.cli_hints import dash_value_hint, unrecognized
from nnjax.cli_stdout import STDOUT, _BestEffortStderr, _NamedStdout
from nnjax.datafile_labels import encode_array_labels, encode_text_labels, integer_label
from nnjax.inputs import check_same_columns, read_inputs


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        call(*args, **kwargs)
    return str(err.value)


@pytest.fixture
def jax_cache(monkeypatch):
    """enable_compilation_cache's effects undone: JAX's settings and the module's state."""
    names = ["jax_enable_compilation_cache", "jax_compilation_cache_dir"]
    names += [f"jax_persistent_cache_min_{n}" for n in ("compile_time_secs", "entry_size_bytes")]
    saved = {n: getattr(jax.config, n) for n in names}
    for name in ("NNJAX_CACHE_DIR", "XDG_CACHE_HOME", *(n.upper() for n in names)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cache, "_active", None)
    monkeypatch.setattr(cache, "_unusable", None)
    monkeypatch.setattr(cache, "_reported", set())
    yield jax.config
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.mark.parametrize("var, folder", [("NNJAX_CACHE_DIR", "c"), ("XDG_CACHE_HOME", "x")])
def test_a_cache_folder_set_in_the_environment_needs_no_home_folder(
    jax_cache, monkeypatch, tmp_path, var, folder
):
    """Only the default folder under ~ needs the home folder to exist."""
    monkeypatch.setenv("HOME", str(tmp_path / "nonexistent"))
    monkeypatch.setenv(var, str(tmp_path / folder))
    under = tmp_path / folder / ("nnjax/jax-cache" if folder == "x" else "")
    got = cache.enable_compilation_cache()
    assert got == str(under / _host.cpu_tag()) and os.path.isdir(got)
    assert not (tmp_path / "nonexistent").exists()


def test_the_cache_turned_on_drops_empty_entries_and_says_failed_writes_anew(jax_cache, tmp_path):
    folder = tmp_path / "c" / _host.cpu_tag()
    folder.mkdir(parents=True)
    empty = folder / f"jit_a-{1:064x}-cache"
    whole = folder / f"jit_b-{2:064x}-cache"
    empty.write_bytes(b"")
    whole.write_bytes(b"x")
    assert cache.enable_compilation_cache(str(tmp_path / "c")) == str(folder)
    assert sorted(os.listdir(folder)) == [whole.name]
    assert jax_cache.jax_enable_compilation_cache
    assert jax_cache.jax_compilation_cache_dir == str(folder)
    assert cache.write_failure("/old", "full").startswith("compilation cache: could not save")
    assert cache.write_failure("/old", "full") is None
    cache.enable_compilation_cache(str(tmp_path / "c"))  # on again: a failing write is said
    assert cache.write_failure(str(folder), "full") == (
        f"compilation cache: could not save compiled programs in {folder} (full); the run "
        "goes on (further failures of this kind are not repeated)"
    )


@pytest.mark.parametrize(
    "rec, usable",
    [
        ({"pid": 0, "host": "h"}, False),  # os.kill(0, ...) signals the process group
        ({"pid": 2**31, "host": "h"}, False),  # os.kill overflows
        ({"pid": 2**31 - 1, "host": "h", "started": "s"}, True),
        ({"pid": True, "host": "h"}, False),
        ({"pid": 5, "host": 7}, False),
        ({"pid": 5}, False),
    ],
)
def test_a_lock_record_reads_back_only_with_a_usable_pid_and_host(tmp_path, rec, usable):
    (tmp_path / "lock.json").write_text(json.dumps(rec))
    fd = os.open(tmp_path / "lock.json", os.O_RDONLY)
    got = lock_record.read(fd)
    os.close(fd)
    assert got == (rec if usable else None)


def test_a_lock_record_in_whole_seconds_and_300_characters_and_a_future_heartbeat(
    monkeypatch,
):
    monkeypatch.setattr("sys.argv", ["nnjax", "x" * 400])
    rec = lock_record.record()
    assert rec["command"] == "nnjax " + "x" * 294
    when = datetime.datetime.fromisoformat(rec["started"])
    assert rec["started"].endswith("+00:00") and when.microsecond == 0
    assert abs(when.timestamp() - rec["started_unix"]) < 1
    got = lock_record.describe({"pid": 5, "host": "h"}, time.time() + 100)  # a clock ahead
    assert got == "process 5 on host h (started ?; last heartbeat 0 s ago)"


@pytest.mark.parametrize("value", [0, 0.0, -1, float("nan"), float("inf"), True])
def test_lock_seconds_refuse_what_is_not_a_finite_positive_number(value):
    assert _error(lock_record.seconds, "stale_after", value, "never") == (
        f"DirectoryLock: stale_after must be seconds > 0 or None (never), got {value!r}"
    )


def test_a_float_label_of_2_53_is_that_integer_and_a_digit_separator_makes_a_name():
    """An array's float labels reach integer_label as floats (nnjax predict's .npz y)."""
    assert integer_label(2.0**53) == 2**53 and integer_label(-(2.0**53)) == -(2**53)
    assert integer_label(2.0**53 + 2) is None and integer_label(np.float64(3.0)) == 3
    assert integer_label(3.5) is None and integer_label(float("inf")) is None
    y, names = encode_text_labels(["1_2", "12", "1_2"], [2, 3, 4], "f.csv")  # 1_2: a name
    assert names == ("12", "1_2") and y.tolist() == [1, 0, 1]


def test_bytes_labels_that_are_not_utf8_name_the_row_and_the_first_bad_byte():
    y = np.array([b"cat", b"ab\xff\xfe"], dtype="S4")
    assert _error(encode_array_labels, y, "y.npy") == (
        "y.npy: label at row 1 is bytes b'ab\\xff\\xfe', not UTF-8 text (byte 0xff): save "
        "the labels as UTF-8 strings or as integers"
    )


def test_damaged_entries_are_said_once_in_the_cli_even_after_a_failed_write(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    monkeypatch.setattr(cache, "_reported", set())
    cut = zlib.compress(b"program" * 50)[:9]
    for n, module in enumerate(("jit_a", "jit_b", "jit_c")):
        (tmp_path / f"{module}-{n:064x}-cache").write_bytes(cut)
    write = "Error writing persistent compilation cache entry for 'jit_z': OSError: full"
    assert cache.cache_warning(write, once=True).endswith(
        "(OSError: full); the run goes on (further failures of this kind are not repeated)"
    )
    read = "Error reading persistent compilation cache entry for '{}': Error -5"
    first = cache.cache_warning(read.format("jit_a"), once=True)
    assert first.startswith(f"compilation cache: jit_a-{0:064x}-cache in {tmp_path} was cut")
    assert first.endswith(
        "(further damaged entries are removed and compiled afresh without a word)"
    )
    assert cache.cache_warning(read.format("jit_b"), once=True) is None
    assert os.listdir(tmp_path) == [f"jit_c-{2:064x}-cache"]
    assert cache.cache_warning(read.format("jit_c")).startswith("compilation cache: jit_c-")


def test_a_csv_of_one_column_for_a_model_of_three_says_column_in_the_singular(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a\n1\n2\n")
    got = _error(read_inputs, path, n_features=3)
    assert got == f"{path}: 1 feature column (a), but the model takes 3 features"


def test_labels_of_one_column_are_read_two_refused_and_a_labels_file_named(tmp_path):
    path = tmp_path / "d.npz"
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.savez(path, X=X, y=np.array([[7], [3]]))
    got = read_inputs(path, n_features=2, label_names=(3, 7))
    assert got.y.tolist() == [1, 0] and got.X.dtype == np.float32 and got.rows == [0, 1]
    np.savez(path, X=X, y=np.array([[7, 3], [3, 7]]))
    got = _error(read_inputs, path, n_features=2, label_names=(3, 7))
    assert got == f"{path}: y has shape (2, 2): labels must be (examples,) class labels"
    X, labels = tmp_path / "X.npy", tmp_path / "labels.npy"
    np.save(X, np.ones((2, 2)))
    np.save(labels, np.array([3, 7, 3]))
    got = _error(read_inputs, X, n_features=2, label_names=(3, 7), labels=labels)
    assert got == f"{labels}: 3 labels for the 2 examples of {X}"


def test_a_numeric_header_missing_a_column_gets_no_header_hint_unless_one_is_unknown():
    """pandas' default names 0..d-1: a file lacking column '2' has its header row."""
    start = "f.csv: columns differ from the model's training data: missing column(s) '2'"
    got = _error(check_same_columns, "f.csv", ["0", "1"], ["0", "1", "2"], header_line=1)
    assert got == f"{start} (it was trained on 0, 1, 2)"
    got = _error(check_same_columns, "f.csv", ["0", "1", "5"], ["0", "1", "2"], header_line=4)
    assert (
        got == f"{start}; unknown column(s) '5' (it was trained on 0, 1, 2); line 4 is all "
        "numbers: is the header row missing? (a CSV file needs one naming its columns)"
    )


def test_the_writable_probe_is_one_whole_block_synced_then_removed(monkeypatch, tmp_path):
    """On a full disk a block cannot be allocated; a byte may fit in a partly used one."""
    sizes, fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (sizes.append(os.fstat(fd).st_size), fsync(fd)))
    assert preflight.check_writable(tmp_path / "out") == str(tmp_path / "out")
    assert sizes == [4096] and os.listdir(tmp_path / "out") == []


def test_leftover_arrays_a_namedtuple_field_included_are_counted_the_first_sorted_named():
    P = namedtuple("P", "a")
    arrays = {"['p'].a": np.zeros(2), "['p'].b": np.ones(2), "['q']": np.ones(1)}
    got = _error(tree_arrays.unflatten, arrays, P(np.zeros(2)), where="ck", prefix="['p']")
    assert got.startswith("ck: ['p'].b is not in like (1 of the stored arrays")
    got = tree_arrays.unflatten(arrays, P(np.zeros(2)), prefix="['p']", partial=True)
    assert got.a.tolist() == [0.0, 0.0]
    arrays = {"['c']": np.zeros(1), "['b']": np.zeros(1), "['a']": np.zeros(1)}  # sorted: b
    with pytest.raises(ValueError, match=r"^x: \['b'\] is not in like \(2 of the stored"):
        tree_arrays.unflatten(arrays, {"a": np.zeros(1)}, where="x")


def test_key_data_of_another_shape_than_like_s_key_is_refused_naming_it():
    keys = jax.random.split(jax.random.key(0), 2)
    arrays, impls = tree_arrays.flatten({"k": keys})
    got = _error(tree_arrays.unflatten, arrays, {"k": jax.random.key(1)}, prng_keys=impls)
    assert (
        got == "arrays: ['k'] is uint32[2, 2], not the data of a threefry2x32 PRNG key "
        "of shape [] as in like (a key of shape [2])"
    )


def test_an_entry_that_cannot_be_opened_is_not_taken_for_the_one_cut_short(tmp_path):
    """A folder under an entry's name is not judged; the parsed-badly whole entry goes."""
    odd = tmp_path / f"jit_a-{1:064x}-cache"
    odd.mkdir()
    whole = tmp_path / f"jit_a-{2:064x}-cache"
    whole.write_bytes(zlib.compress(b"not an executable"))
    assert cache.remove_unreadable_entries("jit_a", str(tmp_path)) == [whole.name]
    assert not whole.exists() and odd.is_dir()


def test_an_entry_that_stays_is_not_said_removed(monkeypatch, tmp_path):
    """An entry that cannot be removed (here a folder; a read-only shared cache alike): JAX's
    own line is said, not "removed, compiled afresh" (said before while it stayed)."""
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    (tmp_path / f"jit_q-{3:064x}-cache").mkdir()
    read = "Error reading persistent compilation cache entry for 'jit_q': Error -5"
    assert cache.cache_warning(read) == read


def test_a_checkpoint_estimate_counts_a_leaf_name_in_utf8_bytes():
    """['é'].npy is 9 characters, 10 bytes, stored twice in the zip: 4 + 300 + 2 * 10."""
    leaf = np.zeros(1, np.float32)
    assert preflight.estimate_checkpoint_bytes({"é": leaf}, metadata_bytes=0) == 324
    assert preflight.estimate_checkpoint_bytes({"e": leaf}) == 4096 + 322


def test_hints_for_an_unknown_option_and_for_an_option_read_as_a_value():
    parser = argparse.ArgumentParser()
    for name in ("--epochs", "--lr", "--validation-split"):
        parser.add_argument(name)
    parser.argv = ["--epoc", "3", "--learning-rate", "1", "--val-split", ".1"]
    assert unrecognized(parser, ["--epoc", "--learning-rate", "--val-split", "--zzz"]) == (
        "unrecognized arguments: --epoc --learning-rate --val-split --zzz; --epoc: did you "
        "mean --epochs?; --learning-rate: did you mean --lr?; --val-split: did you mean "
        "--validation-split?"
    )
    message = "argument --lr: expected one argument"
    parser.argv = ["--lr", "--epochs=3"]  # an option, its value forgotten: no value hint
    assert dash_value_hint(parser, message) == ""
    parser.argv = ["--lr", "-1e-3=x"]
    assert (
        dash_value_hint(parser, message) == "; got '-1e-3=x', read as an option: write --lr=-1e-3=x"
    )


def test_a_saved_running_variance_of_zero_is_kept_and_a_negative_one_named():
    """A constant feature's batch-norm variance is 0: the model is sound (< 0 is refused)."""
    name, f32 = "state['bn']['var']", np.dtype(np.float32)
    saved_format._check_leaf(np.array([0.0, 2.0], f32), f32, name, True)
    got = _error(saved_format._check_leaf, np.array([0.0, -0.5], f32), f32, name, True)
    assert got == f"{name}, a running variance, holds values < 0 (min -0.5)"


def test_a_saved_binary_loss_with_three_outputs_is_refused_naming_both():
    meta = {"model": {"output_shape": [-1, 3], "input_shape": [-1, 2]}, "loss": "mse"}
    meta["label_names"] = [0, 1, 2]
    saved_format.check_outputs(meta, (-1, 3), None, "m.json")
    meta["loss"] = "binary_cross_entropy"
    assert _error(saved_format.check_outputs, meta, (-1, 3), None, "m.json") == (
        "m.json: loss binary_cross_entropy takes one output per example, the model gives 3"
    )


def test_stdout_names_only_a_failed_write_that_names_no_file_and_stderr_drops_a_closed_one():
    class Failing(io.StringIO):
        def write(self, text):
            raise OSError(errno.EIO, "I/O error", *self.filename)

    for filename, named in (((), STDOUT), (("/mnt/log",), "/mnt/log")):
        stream = Failing()
        stream.filename = filename
        with pytest.raises(OSError) as err:
            _NamedStdout(stream).write("x")
        assert err.value.filename == named
    (closed := io.StringIO()).close()
    assert _BestEffortStderr(closed).write("four") == 4


def test_a_run_ended_by_a_signal_flushes_what_it_printed_before_leaving(tmp_path):
    code = "from nnjax.cli_exit import exit_with; print('kept'); exit_with(130)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(cache.__file__))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60)
    assert (run.returncode, run.stdout) == (130, b"kept\n")
