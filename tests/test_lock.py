"""The directory lock: a second writer is refused at once, naming the holder; a SIGKILLed
holder's lock is taken over; another host's lock is never stolen (unless its heartbeat is
older than stale_after); racing newcomers cannot both win; the file goes on exit and error."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

from nnjax import _host
from nnjax import checkpoint as ck
from nnjax.lock import LOCK_NAME, DirectoryLock, DirectoryLockedError, StaleLockWarning

PKG = os.path.dirname(_host.__file__)
# the lock needs only the standard library: the subprocesses skip importing JAX
STUB = f"import sys, types; m = types.ModuleType('nnjax'); m.__path__ = [{PKG!r}]; "
STUB += "sys.modules['nnjax'] = m\nfrom nnjax.lock import DirectoryLock, DirectoryLockedError\n"

HOLDER = """
lock = DirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes stdin
lock.release()
"""


def _holder(d) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUB + HOLDER, str(d)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_second_writer_is_refused_at_once_then_a_killed_holder_is_taken_over(tmp_path):
    proc = _holder(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(DirectoryLockedError) as err:
        ck.lock(tmp_path)
    assert time.monotonic() - t0 < 1.0  # at once, no waiting
    msg = str(err.value)
    assert f"process {proc.pid} on host {_host.hostname()}" in msg and "started 20" in msg
    assert str(tmp_path / LOCK_NAME) in msg and "\n" not in msg
    assert isinstance(err.value, OSError) and err.value.holder["pid"] == proc.pid

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    assert (tmp_path / LOCK_NAME).exists()  # a killed holder cannot clean up
    with pytest.warns(StaleLockWarning, match=f"process {proc.pid} is gone"):
        lock = ck.lock(tmp_path)
    assert lock.taken_over["pid"] == proc.pid
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def _zombie_alone(pid: int) -> bool:
    """Whether ``pid`` is a zombie whose other threads have exited too: its leader shows "Z"
    while its heartbeat thread may still hold the open lock file (seen once in CI under
    load: the lock was still flocked); the files go with the last thread."""
    stat = _host._stat(pid)
    if stat is None:  # gone altogether
        return True
    if stat[0] != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def test_a_zombie_holder_counts_as_dead(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _zombie_alone(proc.pid):  # killed, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.warns(StaleLockWarning), DirectoryLock(tmp_path) as lock:
        assert lock.taken_over["pid"] == proc.pid
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def test_lock_file_removed_on_normal_exit_and_on_exceptions(tmp_path):
    with DirectoryLock(tmp_path) as lock:
        assert (tmp_path / LOCK_NAME).exists() and lock.held
        with pytest.raises(DirectoryLockedError, match="already locked by this process"):
            DirectoryLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_NAME).exists() and not lock.held
    with pytest.raises(RuntimeError, match="boom"), ck.lock(tmp_path / "new"):
        raise RuntimeError("boom")
    assert os.listdir(tmp_path / "new") == []
    lock.release()  # idempotent
    code = STUB + "with DirectoryLock(sys.argv[1]):\n    raise SystemExit(3)\n"
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)]).returncode == 3
    assert os.listdir(tmp_path) == ["new"]


def _fake_lock(d, host, pid, identity=None, age=0.0):
    d.mkdir(exist_ok=True)
    path = d / LOCK_NAME
    record = {"pid": pid, "host": host, "started": "2024-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({**record, "identity": identity}))
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def test_another_hosts_lock_is_refused_unless_its_heartbeat_is_older_than_stale_after(tmp_path):
    _fake_lock(tmp_path, "node-17.cluster", 4242, age=3600)
    with pytest.raises(DirectoryLockedError) as err:
        ck.lock(tmp_path)  # flock is free, but flock proves nothing across hosts
    msg = str(err.value)
    assert "process 4242 on host node-17.cluster" in msg and "another host" in msg
    assert f"delete {tmp_path / LOCK_NAME}" in msg and "last heartbeat 3600 s ago" in msg
    with pytest.raises(DirectoryLockedError):
        ck.lock(tmp_path, stale_after=7200)  # heartbeat 1 h old, allowed 2 h: still live
    with pytest.warns(StaleLockWarning, match="last heartbeat is 3600 s old"):
        ck.lock(tmp_path, stale_after=600).release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_same_host_pid_reuse_and_unreadable_records(tmp_path):
    alive = os.getppid()
    _fake_lock(tmp_path, _host.hostname(), alive, identity=None)
    with pytest.raises(DirectoryLockedError, match=f"if process {alive} is not an nnjax run"):
        ck.lock(tmp_path)  # alive and no identity to compare: refused (the safe side)
    _fake_lock(tmp_path, _host.hostname(), alive, identity="another-boot:123")
    if _host.process_identity(alive) is not None:  # /proc shows the pid is someone else now
        with pytest.warns(StaleLockWarning, match=f"process {alive} is gone"):
            ck.lock(tmp_path).release()
    (tmp_path / LOCK_NAME).write_text("{garbage")
    os.utime(tmp_path / LOCK_NAME, (time.time() - 60, time.time() - 60))
    with pytest.raises(DirectoryLockedError, match="unreadable; if no run uses"):
        ck.lock(tmp_path)


def test_a_fresh_unreadable_record_is_named_as_unreadable(tmp_path):
    """A garbled lock file written just now was waited on for 20 x 0.05 s, less than the 2 s
    after which an unreadable record is named, and was reported as 'other runs keep
    changing it'."""
    (tmp_path / LOCK_NAME).write_text("{garbage")
    with pytest.raises(DirectoryLockedError, match="unreadable; if no run uses"):
        ck.lock(tmp_path)


def test_heartbeat_refreshes_the_mtime(tmp_path):
    with DirectoryLock(tmp_path, heartbeat=0.05) as lock:
        os.utime(lock.path, (1e9, 1e9))
        deadline = time.monotonic() + 10
        while os.stat(lock.path).st_mtime < time.time() - 60:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)


def test_lock_cleans_dead_writers_temp_files(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = tmp_path / f".ckpt_00000003.npz.{_host.host_tag()}.{dead.pid}.0a1b2c3d.tmp"
    tmp.write_bytes(b"half a checkpoint")
    with ck.lock(tmp_path) as lock:
        assert lock.cleaned == [str(tmp)] and not tmp.exists()


RACER = """
import time, warnings
warnings.simplefilter("ignore")
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
try:
    lock = DirectoryLock(sys.argv[1]).acquire()
except DirectoryLockedError:
    print("refused", flush=True)
    raise SystemExit
print("won", flush=True)
sys.stdin.read()
lock.release()
"""


def test_racing_newcomers_for_one_stale_lock_yield_one_winner(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_lock(tmp_path, _host.hostname(), dead.pid)
    go = tmp_path / "go"
    code = STUB + "import os\n" + RACER
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), str(go)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    try:
        assert all(p.stdout.readline() == "ready\n" for p in racers)
        go.touch()
        outcomes = [p.stdout.readline().strip() for p in racers]
    finally:
        for p in racers:
            p.stdin.close()
            p.wait()
            p.stdout.close()
    assert sorted(outcomes) == ["refused"] * 4 + ["won"], outcomes
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the winner released it: no stale lock left
        DirectoryLock(tmp_path).acquire().release()


def test_an_unwritable_directory_is_named(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OSError) as err:
        DirectoryLock(tmp_path).acquire()
    monkeypatch.undo()
    assert err.value.errno == 30 and err.value.filename == str(tmp_path / LOCK_NAME)
    assert os.listdir(tmp_path) == []
