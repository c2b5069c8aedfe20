"""``nnjax train``'s safety at the command line (issue 15): a second writer refused and a stale
lock taken over; a changed setting refused naming it, an --override recorded; full disk,
read-only, file-as-directory and missing paths as one line, exit 3; history.json never torn;
dead writers' temporary files gone; the keep=1 recovery; SIGTERM ends in a checkpoint whose
--resume is bit-identical; divergence stops with exit 4."""

import errno
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from disk_faults import enospc_when_writing

from nnjax import checkpoint as ck
from nnjax import io as nio
from nnjax.cli import main
from nnjax.commands import train as train_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = [
    "train",
    "--dataset",
    "moons",
    "--hidden",
    "8",
    "--batch-size",
    "32",
]  # moons preset: lr 0.01


# fit's compiled programs kept in a folder of this module's (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("keep_compiled_programs")


def _one_error_line(err: str) -> str:
    """The one error line, last on stderr; before it only warnings, the run's status line
    ("preparing ... (starting JAX)...") and progress lines ("epoch ...") may stand."""
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert "Traceback" not in err and lines, err
    assert all(x.startswith(("preparing ", "epoch ", "resuming ")) for x in lines[:-1]), err
    assert lines[-1].startswith("nnjax train: error: "), lines[-1]
    return lines[-1]


def _arrays(path) -> dict:
    with np.load(path) as f:
        return dict(f)


def _same_arrays(a, b) -> bool:
    a, b = _arrays(a), _arrays(b)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _no_temp_files(folder) -> bool:
    return not [n for _, _, names in os.walk(folder) for n in names if n.endswith(".tmp")]


# ---- one writer -------------------------------------------------------------------------------

# another run holding the folder's lock: nnjax.lock.lock_folder, the lock checkpoint.lock and
# the CLI's --out take (without importing JAX: 0.3 s of CPU instead of 2 s per holder)
HOLDER = """
import sys, time
from nnjax.lock import lock_folder
lock = lock_folder(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def _holder(d):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"locked\n"
    proc.stdout.close()
    return proc


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, monkeypatch):
    d = tmp_path / "ckpt"
    holder = _holder(d)
    _not_started(monkeypatch)  # refused before the data is read or JAX starts
    try:
        assert main([*RUN, "--epochs", "1", "--checkpoint-dir", str(d)]) == 3
    finally:
        holder.kill()
        holder.wait()
    line = _one_error_line(capsys.readouterr().err)
    assert f"is in use by another run: process {holder.pid} on host {socket.gethostname()}" in line
    assert line.endswith("(errno 16, EBUSY)") and ck.steps(d) == []


def test_a_second_run_into_the_same_out_folder_is_refused(tmp_path, capsys, monkeypatch):
    """--out is locked for the whole run: a second run into the folder fails at once (it
    would mix its params.npz with the first run's model.json); the folder and its saved
    model stay the first run's."""
    out = tmp_path / "out"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    saved = {n: (out / n).read_bytes() for n in ("model.json", "params.npz")}
    capsys.readouterr()
    holder = _holder(out)  # a run writing there now
    _not_started(monkeypatch)
    try:
        assert main([*RUN, "--epochs", "2", "--out", str(out), "--overwrite"]) == 3
    finally:
        holder.kill()
        holder.wait()
    line = _one_error_line(capsys.readouterr().err)
    assert f"{out} is in use by another run: process {holder.pid}" in line
    assert {n: (out / n).read_bytes() for n in saved} == saved


def test_a_new_run_keeps_the_saved_model_in_out_unless_told(tmp_path, capsys, monkeypatch):
    """A finished run's saved model in --out is not replaced by a new run (a re-run of the
    same command replaced a 20-epoch model with a 3-epoch one, silently): refused before
    JAX starts, exit 2, unless --overwrite; --resume continues the same run into it."""
    out = tmp_path / "out"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    saved = {n: (out / n).read_bytes() for n in os.listdir(out)}
    capsys.readouterr()
    with monkeypatch.context() as m:
        _not_started(m)
        assert main([*RUN, "--epochs", "2", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"error: --out {out} already holds a saved model (model.json, params.npz of " in line
    assert line.endswith("add --overwrite to replace it, or choose another --out")
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == saved
    assert main([*RUN, "--epochs", "2", "--out", str(out), "--overwrite"]) == 0
    assert (out / "params.npz").read_bytes() != saved["params.npz"]
    capsys.readouterr()
    assert main([*RUN, "--overwrite"]) == 2  # nothing to overwrite: said, not ignored
    assert _one_error_line(capsys.readouterr().err).endswith("give it with --out")
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]["train_loss"]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--dataset", "xor", "--epochs", "1"],
        ["sleep", "--dataset", "digits"],
        ["night", "--parts", "consolidation"],
        ["bench", "--quick", "--only", "seed"],
    ],
    ids=lambda a: a[0],
)
def test_report_commands_refuse_an_out_folder_in_use(tmp_path, capsys, argv):
    """compare, sleep, night and bench lock their --out folder for the run: a second run
    into it fails at once, before any work, naming the holder (bench took no lock: two runs
    wrote one report)."""
    out = tmp_path / "report"
    holder = _holder(out)
    try:
        assert main([*argv, "--out", str(out)]) == 3
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"nnjax {argv[0]}: error: {out} is in use by another run: "), err
    assert f"process {holder.pid}" in err[-1] and os.listdir(out) == ["nnjax.lock"]  # the holder's


def test_python_m_benchmarks_refuses_an_out_folder_in_use(tmp_path, capsys):
    from benchmarks import cli as bench_cli

    out = tmp_path / "report"
    holder = _holder(out)
    try:
        assert bench_cli.main(["--quick", "--only", "seed", "--out", str(out)]) == 3
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    want = f"python -m benchmarks: error: {out} is in use by another run: process {holder.pid}"
    assert len(err) == 1 and err[0].startswith(want), err
    assert os.listdir(out) == ["nnjax.lock"]


def test_out_and_checkpoint_dir_may_be_one_folder(tmp_path, capsys):
    """fit locks the folder for the training, the command for the writing after it."""
    d = tmp_path / "run"
    assert main([*RUN, "--epochs", "2", "--out", str(d), "--checkpoint-dir", str(d)]) == 0
    assert ck.steps(d)[-1] == 2 and (d / "model.json").exists()
    assert not (d / "nnjax.lock").exists()
    # --resume goes on with the same run: its saved model is replaced by the longer run's
    assert (
        main([*RUN, "--epochs", "3", "--out", str(d), "--checkpoint-dir", str(d), "--resume"]) == 0
    )
    assert ck.steps(d)[-1] == 3


def test_a_stale_lock_is_taken_over_and_dead_writers_temp_files_removed(tmp_path, capsys):
    d = tmp_path / "ckpt"
    holder = _holder(d)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    dead = os.path.basename(nio.temp_path(d / "ckpt_00000001.npz")).split(".")
    dead[-3] = str(holder.pid)  # .{target}.{host}.{pid}.{token}.tmp of the killed writer
    for name in (".".join(dead), ".abcd1234.tmp"):  # and a name no writer of nnjax's has
        (d / name).write_bytes(b"half a checkpoint")
    assert main([*RUN, "--epochs", "1", "--checkpoint-dir", str(d)]) == 0
    err = capsys.readouterr().err
    assert f"nnjax train: warning: {d}: taking over the stale lock of process {holder.pid}" in err
    assert sorted(os.listdir(d)) == [".abcd1234.tmp", "ckpt_00000001.json", "ckpt_00000001.npz"]


def test_a_killed_writers_temp_file_in_out_is_removed_by_the_next_run(tmp_path):
    """The watchdog's exit or a kill -9 can leave a temporary file in --out (a folder, not a
    checkpoint directory); the next run that takes the folder's lock removes it."""
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    name = os.path.basename(nio.temp_path(out / "params.npz")).split(".")
    name[-3] = dead
    (out / ".".join(name)).write_bytes(b"half a model")
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    assert not any(n.endswith(".tmp") for n in os.listdir(out)) and (out / "params.npz").exists()


# ---- resume -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "ckpt"
    assert main([*RUN, "--epochs", "2", "--checkpoint-dir", str(d)]) == 0
    return d


@pytest.mark.parametrize(
    "change, shown, advice",
    [
        (["--lr", "0.02"], "optimizer.learning_rate: 0.01 -> 0.02", "--override lr=0.02"),
        (["--optimizer", "momentum"], "optimizer.name: 'adam' -> 'momentum'", "optimizer=momentum"),
        (["--activation", "tanh"], "model.activation: 'relu' -> 'tanh'", "activation=tanh"),
        (["--hidden", "4"], "model.sizes: [8, 2] -> [4, 2]", "model.sizes: cannot change"),
    ],
)
def test_resume_with_a_changed_setting_is_refused_naming_it(
    two_epochs, change, shown, advice, capsys
):
    argv = [*RUN, "--epochs", "3", "--checkpoint-dir", str(two_epochs), "--resume"]
    capsys.readouterr()
    assert main([*argv, *change]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot resume from {two_epochs}/ckpt_00000002.npz" in line
    assert shown in line and advice in line and "no array for" not in line
    assert ck.steps(two_epochs) == [1, 2]


def test_an_override_on_resume_is_applied_and_recorded(two_epochs, tmp_path, capsys):
    import shutil

    d = shutil.copytree(two_epochs, tmp_path / "ckpt")
    argv = [*RUN, "--epochs", "3", "--checkpoint-dir", str(d), "--resume"]
    assert main([*argv, "--lr", "0.002", "--override", "lr=0.01"]) == 2
    assert "--lr 0.002 and --override lr=0.01 disagree" in capsys.readouterr().err
    assert main([*argv, "--override", "lr=0.01", "--override", "optimizer=momentum"]) == 0
    assert "warning: fit: resuming" in capsys.readouterr().err  # momentum starts afresh
    meta = ck.load(d).metadata
    assert meta["config"]["optimizer"] == {
        "name": "momentum",
        "learning_rate": 0.01,
        "momentum": 0.9,
    }
    assert [(r["epoch"], r["field"]) for r in meta["overrides"]] == [(2, "optimizer")]
    assert main([*argv[:-3], "--override", "lr=0.01"]) == 2  # an override needs --resume
    assert "--override changes a resumed run" in capsys.readouterr().err


# ---- I/O failures -----------------------------------------------------------------------------


def _fail_open_under(monkeypatch, folder, code):
    real = os.open

    def fake(path, *a, **k):
        if os.fspath(path).startswith(os.fspath(folder)):
            raise OSError(code, os.strerror(code), path)
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", fake)


def _not_started(monkeypatch):
    def boom(args):
        raise AssertionError("the run started")

    monkeypatch.setattr(train_command, "_prepare", boom)


def test_a_read_only_out_fails_before_training_starts(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    _fail_open_under(monkeypatch, out, errno.EROFS)
    _not_started(monkeypatch)
    assert main([*RUN, "--out", str(out)]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert line.endswith(
        f"error: --out {out} is not writable: read-only file system (errno 30, EROFS)"
    )


# --tensorboard: found only when the event file was opened ("afile/events.out.tfevents...:
# Not a directory"), after the data was read and JAX started
@pytest.mark.parametrize("where", ["checkpoint-dir", "out", "tensorboard"])
def test_a_file_where_a_directory_should_be_is_one_line(tmp_path, capsys, monkeypatch, where):
    if where == "tensorboard":
        pytest.importorskip("tensorboardX")  # without it, refused as not installed (exit 2)
    f = tmp_path / "a-file"
    f.write_text("not a directory")
    _not_started(monkeypatch)
    assert main([*RUN, f"--{where}", str(f)]) == 3
    assert _one_error_line(capsys.readouterr().err).endswith(
        f"--{where} {f} is a file, not a directory (errno 20, ENOTDIR)"
    )
    assert main([*RUN, f"--{where}", str(f / "sub")]) == 3
    assert "a component of the path is a file" in _one_error_line(capsys.readouterr().err)


def test_a_second_fresh_run_into_a_checkpoint_dir_is_told_of_resume(tmp_path, capsys):
    d = tmp_path / "ckpt"
    assert main([*RUN, "--epochs", "1", "--checkpoint-dir", str(d)]) == 0
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert main([*RUN, "--epochs", "2", "--checkpoint-dir", str(d)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"nnjax train: error: --checkpoint-dir {d} already holds the checkpoints of a run "
        "(newest: epoch 1): add --resume to continue it, or choose another --checkpoint-dir"
    )
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_a_missing_resume_path_is_named_as_given(tmp_path, capsys, monkeypatch):
    _not_started(monkeypatch)
    given = tmp_path / "runs" / "ckpt_00000009.npz"
    assert main([*RUN, "--resume", str(given)]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert (
        line
        == f"nnjax train: error: cannot resume from {given}: no such checkpoint (errno 2, ENOENT)"
    )


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path, capsys, monkeypatch):
    d = tmp_path / "ckpt"
    enospc_when_writing(monkeypatch, "ckpt_")
    assert main([*RUN, "--epochs", "2", "--checkpoint-dir", str(d)]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert line.endswith(f"{d}/ckpt_00000001.npz: No space left on device (errno 28, ENOSPC)")
    assert not d.exists()  # the folder the run made goes: no temporary file, no lock left
    d.mkdir()  # the user's own folder stays, empty
    assert main([*RUN, "--epochs", "2", "--checkpoint-dir", str(d)]) == 3
    assert sorted(os.listdir(d)) == []


def test_a_full_disk_leaves_no_empty_output_folder_the_run_made(tmp_path, capsys, monkeypatch):
    """Review: `nnjax train --out new/run` onto a full disk trained, failed writing its
    outputs (exit 3) and left new/run/ behind, empty."""
    enospc_when_writing(monkeypatch, "accuracy.png")
    out = tmp_path / "new" / "run"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 3
    assert _one_error_line(capsys.readouterr().err).endswith(
        f"{out}/accuracy.png: No space left on device (errno 28, ENOSPC)"
    )
    assert os.listdir(tmp_path) == []  # new/ and new/run/ both made by the run, both gone
    (tmp_path / "mine").mkdir()
    assert main([*RUN, "--epochs", "1", "--out", str(tmp_path / "mine")]) == 3
    assert os.listdir(tmp_path / "mine") == []  # the user's own folder stays


def test_history_json_is_never_half_written(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "history.json").read_bytes()
    enospc_when_writing(monkeypatch, "history.json")
    assert main([*RUN, "--epochs", "2", "--out", str(out), "--overwrite"]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert line.endswith(f"{out}/history.json: No space left on device (errno 28, ENOSPC)")
    assert (out / "history.json").read_bytes() == before and _no_temp_files(out)


# ---- recovery, signals, divergence ------------------------------------------------------------


def test_recovery_with_keep_1_keeps_the_offered_checkpoint(tmp_path, capsys):
    d, out, full = tmp_path / "ckpt", tmp_path / "out", tmp_path / "full"
    assert main([*RUN, "--epochs", "4", "--out", str(full)]) == 0
    assert main([*RUN, "--epochs", "3", "--checkpoint-dir", str(d)]) == 0
    npz = d / "ckpt_00000003.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    capsys.readouterr()
    argv = [*RUN, "--epochs", "4", "--checkpoint-dir", str(d)]
    assert main([*argv, "--resume"]) == 2
    offered = f"{d}/ckpt_00000002.npz"
    assert f"the newest valid checkpoint is {offered}" in _one_error_line(capsys.readouterr().err)
    assert main([*argv, "--resume", offered, "--keep", "1", "--out", str(out)]) == 0
    assert ck.steps(d) == [4] and ck.steps(d / ck.ABANDONED / "0001") == [3]
    assert _same_arrays(out / "params.npz", full / "params.npz")


SLOW = """
import sys, time
import nnjax.train.driver as driver
hooks = driver._call_hooks
def slow(*a):  # 0.3 s per epoch: time to signal a run of tiny epochs mid-way
    time.sleep(0.3)
    hooks(*a)
driver._call_hooks = slow
from nnjax.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_leaves_a_checkpoint_whose_resume_is_bit_identical(tmp_path, capsys):
    d, out, full = tmp_path / "ckpt", tmp_path / "out", tmp_path / "full"
    argv = [*RUN, "--epochs", "8", "--checkpoint-dir", str(d), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not ck.steps(d):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 128 + signal.SIGTERM, err
    line = _one_error_line(err)
    done = ck.steps(d)[-1]
    assert 1 <= done < 8 and f"interrupted by SIGTERM: stopped after epoch {done} of 8" in line
    assert f"checkpoint {d}/ckpt_{done:08d}.npz; resume with: nnjax train " in line
    assert "nnjax.lock" not in os.listdir(d) and _no_temp_files(d)
    assert not os.path.exists(out)  # made at the start, removed again: a stopped run wrote none
    command = shlex.split(line.split("resume with: ")[1])
    assert command[:2] == ["nnjax", "train"] and command[-1] == "--resume"
    assert main(command[1:]) == 0  # the printed command, run as it is
    assert main([*RUN, "--epochs", "8", "--out", str(full)]) == 0
    assert _same_arrays(out / "params.npz", full / "params.npz")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_a_hung_up_terminal_ends_training_in_a_checkpoint(tmp_path):
    """The terminal closes (SIGHUP; writing to it now fails with EIO): the run stops after
    its chunk with a checkpoint, exit 129, its lock gone, nothing written half (it was killed
    outright, its last epochs lost)."""
    pty = pytest.importorskip("pty")
    d = tmp_path / "ckpt"
    master, slave = pty.openpty()
    argv = [*RUN, "--epochs", "8", "--checkpoint-dir", str(d), "--checkpoint-every", "100"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, *argv], cwd=ROOT, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 120
    while b"epoch 2/8" not in seen:
        assert proc.poll() is None and time.monotonic() < deadline, seen
        seen += os.read(master, 4096)
    os.close(master)  # the terminal is gone: the run's writes to it fail
    proc.send_signal(signal.SIGHUP)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP
    done = ck.steps(d)
    assert len(done) == 1 and 2 <= done[0] < 8  # --checkpoint-every 100: the stop's own
    assert ck.load(ck.npz_path(d, done[0])) is not None
    assert "nnjax.lock" not in os.listdir(d) and _no_temp_files(d)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_report_command_with_its_status_and_its_folder_unlocked(tmp_path, sig):
    """The nnjax executable stopped by Ctrl-C or SIGTERM mid-run: one line, exit 128 + N
    (it crashed with SIGSEGV, 139, when the signal cut into JAX's tracing), no lock left.
    The signal comes while the first optimizer trains: nothing finished, nothing written
    (tests/test_study_stop.py: the optimizers that finished are)."""
    out = tmp_path / "cmp"
    argv = ["--no-cache", "compare", "--dataset", "digits", "--epochs", "30", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnjax", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    chunks = []  # stderr, read as it comes: the signal goes once the first runs are done
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(), b"")))
    reader.start()
    deadline = time.monotonic() + 120
    while b"runs " not in b"".join(chunks):  # "gd runs 1/100": training, tracing the next
        assert proc.poll() is None and time.monotonic() < deadline, b"".join(chunks)
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    reader.join(timeout=60)
    err = b"".join(chunks).decode()
    assert proc.returncode == 128 + sig, err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last == (
        f"nnjax compare: error: interrupted by {signal.Signals(sig).name}: no optimizer had "
        "finished its runs; nothing written"
    ), err
    assert not os.path.exists(out)  # the folder it made, still empty, is removed again


@pytest.mark.parametrize("lr, optimizer", [("1e6", "adam"), ("1e9", "sgd")])
def test_a_diverging_run_stops_with_exit_4(lr, optimizer, capsys):
    assert main([*RUN, "--epochs", "6", "--lr", lr, "--optimizer", optimizer]) == 4
    line = _one_error_line(capsys.readouterr().err)
    # sgd at 1e9: a +inf logit is cross-entropy's limit (inf), no longer the nan of inf - inf
    stopped = ("the training loss diverged", "the training loss became nan", "became inf")
    assert any(s in line for s in stopped), line
    assert f"lower --lr (now {float(lr):g})" in line and "check_finite" not in line


SWALLOWED = """
import gc, os, sys, time
from nnjax import errors
from nnjax.cli_signals import signals_unwind
def callback(phase, info):
    if phase == "start" and not fired:
        fired.append(1)
        os.kill(os.getpid(), {sig})
        sum(range(1000))  # the handler runs here, in the callback, where Python drops exceptions
fired = []
try:
    with signals_unwind("test"):
        gc.callbacks.append(callback)
        gc.collect()
        time.sleep(30)
        print("still running")
except KeyboardInterrupt as e:  # as nnjax.cli.main reports it
    print(f"nnjax test: error: {{errors.describe(e)}}", file=sys.stderr)
    sys.exit(errors.exit_code(e))
"""

BUSY = """
import sys, jax, jax.numpy as jnp, numpy as np
from nnjax.cli_signals import signals_unwind
from nnjax.lock import DirectoryLock
from nnjax.preflight import removing_new_folders
loop = jax.jit(lambda x: jax.lax.fori_loop(0, 10**7, lambda i, x: jnp.tanh(x @ x), x))
x = jnp.eye(64)
loop.lower(x).compile()
out = sys.argv[1] + "/made/out"  # a run's new output folder: the watchdog removes it, empty
with signals_unwind("test"), removing_new_folders(out), DirectoryLock(out):
    print("computing", flush=True)
    np.asarray(loop(x))  # minutes of XLA, waited for in C++: no handler runs meanwhile
    print("still running")
"""


@pytest.mark.parametrize("where", ["gc", "xla"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_command_where_python_cannot_raise(sig, where, tmp_path):
    """A signal that comes inside a gc callback (JAX installs one; Python would drop an
    exception raised there) is raised once the callback has returned: the command unwinds
    with its one line. One that arrives while the main thread is inside one long XLA call
    still ends the command within seconds (the watchdog). Status 128 + N, the lock removed,
    and the watchdog's case: the output folder the run made, and its new parent, too."""
    code = SWALLOWED.format(sig=int(sig)) if where == "gc" else BUSY
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    if where == "xla":
        assert proc.stdout.readline() == b"computing\n"
        time.sleep(0.3)
        proc.send_signal(sig)
    start = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig and b"still running" not in out, err
    name = signal.Signals(sig).name
    watchdog = " (the running computation did not return within 2 s: ended at once)"
    assert err.decode().strip().splitlines()[-1] == (
        f"nnjax test: error: interrupted by {name}" + (watchdog if where == "xla" else "")
    ), err
    assert time.monotonic() - start < 20 and os.listdir(tmp_path) == []
