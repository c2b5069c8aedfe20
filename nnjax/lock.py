"""An exclusive lock on a directory, held for a run's lifetime: one writer per checkpoint folder.

``with DirectoryLock(D):`` (or ``nnjax.checkpoint.lock(D)``) creates ``D/nnjax.lock``
holding a JSON record of its holder ``{pid, host, started, started_unix, identity,
command}`` and keeps it ``flock``-ed; leaving the block (normally or by an exception) removes
it. A second writer fails at once with :class:`DirectoryLockedError` naming the holder.

How a lock is taken (every step is one atomic file-system operation):

1. the record is written to a temporary file and hard-linked to ``nnjax.lock``: ``link``
   fails when the name exists, on local disks and NFS alike (the classic NFS-safe O_EXCL);
   where ``link`` is unsupported, ``open(O_CREAT | O_EXCL)`` is used instead;
2. the holder keeps ``flock(LOCK_EX)`` on it. The kernel drops that lock when the holder
   dies, however it dies (SIGKILL included);
3. when ``nnjax.lock`` exists, the newcomer reads the record and tries ``flock``:

   * flock refused: a live process holds it; refused, whichever host wrote it;
   * the record names THIS host: the lock is stale when the holder's process is dead (no such
     PID, a zombie, or a PID now used by another process: its start time, /proc field 22,
     and the boot id differ from the record's). Stale locks are taken over with a
     :class:`StaleLockWarning` naming the dead holder; a live holder means refusal;
   * the record names ANOTHER host: nnjax cannot see that host's processes, and ``flock``
     on a network file system may be local to each host, so a free flock proves nothing:
     refused, with the path of the lock file to delete by hand if that run is over. Only
     with ``stale_after=S`` is it taken over when its heartbeat (the file's mtime, refreshed
     by the holder every ``heartbeat`` seconds) is more than S seconds old.

   A takeover renames the stale file aside (atomic), checks it moved the very file it judged,
   and goes back to step 1, so two newcomers racing for one stale lock cannot both win.
   Another user's lock file this user may not read (mode 0600, umask 077), or may not rename
   (a shared folder with the sticky bit), is refused too, naming its owner.

Guarantees: on one host, at most one live holder, and a dead holder's lock is always taken
over. Across hosts sharing the directory, a lock is never taken from a holder whose heartbeat
is fresh; without ``stale_after`` another host's lock is never taken at all (it is refused,
never silently stolen). Limits: a child process forked while the lock is held shares the
flock until it exits; a holder frozen (SIGSTOP, a suspended VM) longer than ``stale_after``
looks dead to other hosts.
"""

import errno
import json
import os
import threading
import time
import warnings
import weakref

from nnjax import _host, lock_record
from nnjax.errors import not_a_folder
from nnjax.io import clean_temp_files, temp_path
from nnjax.lock_record import describe

LOCK_NAME = "nnjax.lock"
_HELD: set[str] = set()  # real paths of the lock files this process holds (held_here)
_HOLDERS: "weakref.WeakSet[DirectoryLock]" = weakref.WeakSet()  # the locks holding them
_HELD_MUTEX = threading.Lock()


class DirectoryLockedError(OSError):
    """Another run holds the directory's lock (``errno`` EBUSY).

    ``path``: the lock file; ``holder``: its record (``pid``, ``host``, ``started``, ...),
    or None when the file could not be read.
    """

    def __init__(self, message: str, path: str, holder: dict | None):
        super().__init__(message)
        self.errno = errno.EBUSY
        self.path = path
        self.holder = holder


class StaleLockWarning(UserWarning):
    """The lock of a dead run was taken over."""


class DirectoryLock:
    """The exclusive lock of ``directory`` (created if needed); see the module docstring.

    ``stale_after``: seconds (> 0) without heartbeat after which another host's lock is taken
    over (None, the default: never). ``heartbeat``: seconds (> 0) between refreshes of the lock
    file's mtime by a daemon thread (None: only explicit :meth:`heartbeat` calls).
    ``taken_over``: the dead holder's record when :meth:`acquire` replaced a stale lock.
    """

    def __init__(self, directory, *, stale_after: float | None = None, heartbeat=60.0):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_NAME)
        self.stale_after = lock_record.seconds(
            "stale_after", stale_after, "never take another host's"
        )
        self.heartbeat_every = lock_record.seconds("heartbeat", heartbeat, "no heartbeat thread")
        self.taken_over: dict | None = None
        self.cleaned: list[str] = []  # temporary files removed by lock_folder
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "DirectoryLock":
        """Take the lock or raise :class:`DirectoryLockedError` at once (a ``directory`` that
        is a file: :class:`nnjax.errors.PathError`, ENOTDIR, naming it)."""
        if self.held:
            return self
        if (error := not_a_folder(self.directory, "DirectoryLock:")) is not None:
            raise error  # a file: makedirs raised a bare FileExistsError, naming no path
        os.makedirs(self.directory, exist_ok=True)
        key = os.path.realpath(self.path)
        with _HELD_MUTEX:
            if key in _HELD:
                raise DirectoryLockedError(
                    f"{self.directory} is already locked by this process ({os.getpid()})",
                    self.path,
                    None,
                )
            for _ in range(20):  # each retry follows a concurrent change of the lock file
                try:
                    fd = self._create()
                    if fd is None:
                        self._judge_existing()
                        continue
                except DirectoryLockedError:
                    raise
                except OSError as e:  # e.g. a read-only directory: name the lock, not a temp
                    raise OSError(e.errno, e.strerror or str(e), self.path) from e
                self._fd = fd
                _HELD.add(key)
                _HOLDERS.add(self)
                break
            else:
                raise DirectoryLockedError(
                    f"{self.directory}: could not take {self.path}: other runs keep changing it",
                    self.path,
                    None,
                )
        if self.heartbeat_every:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="nnjax-lock", daemon=True)
            self._thread.start()
        return self

    def _create(self) -> int | None:
        """Step 1 and 2: the fd of a new lock file holding our record, or None if one exists.
        The temporary file goes whatever fails (a full disk at its write or fsync left it)."""
        tmp = temp_path(self.path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                os.write(fd, json.dumps(lock_record.record()).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            os.unlink(tmp)
            raise
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return None
        except OSError as e:  # no hard links here (some FUSE, FAT): plain O_EXCL
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                return None
            os.replace(tmp, self.path)  # same content; replaces the empty file atomically
            tmp = None
        finally:
            if tmp is not None:
                os.unlink(tmp)
        fd = os.open(self.path, os.O_RDONLY)
        for _ in range(100):  # a newcomer may hold the flock for the instant it judges ours
            if lock_record.flock(fd) is not False:
                return fd
            time.sleep(0.01)
        os.close(fd)
        raise DirectoryLockedError(f"{self.path}: held by another process", self.path, None)

    def _judge_existing(self) -> None:
        """Step 3: raise if the existing lock is live; take it over (rename aside) if stale."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return  # released meanwhile: retry
        except PermissionError as e:  # another user's, made under umask 077: mode 0600
            raise DirectoryLockedError(
                f"{self.directory} is locked by {_host.file_owner(self.path)}, whose lock file "
                f"{self.path} you cannot read ({e.strerror}), so whether that run is alive "
                "cannot be told; if no run uses this directory, ask them to delete it",
                self.path,
                None,
            ) from None
        try:
            got = lock_record.flock(fd)
            holder, mtime = lock_record.read(fd), os.fstat(fd).st_mtime
            if got is False:
                raise self._refuse(holder, mtime, "Wait for it to end or use another directory.")
            if not lock_record.same_file(fd, self.path):
                return  # replaced meanwhile: retry
            reason = self._stale_reason(holder, mtime, got)
            if reason is None:  # a record being written (no-link fallback): retry; 20 retries
                time.sleep(0.15)  # span the 2 s after which an unreadable record is named
                return
            self._take_over(fd, holder, mtime, reason)
        finally:
            os.close(fd)

    def _stale_reason(self, holder: dict | None, mtime: float, got: bool | None) -> str | None:
        """Why the lock is stale; raise when it may be live; None to look again."""
        if holder is None:
            if time.time() - mtime < 2.0:
                return None
            raise DirectoryLockedError(
                f"{self.directory} is locked, but its lock file {self.path} is unreadable; "
                "if no run uses this directory, delete it",
                self.path,
                None,
            )
        pid = holder["pid"]
        if holder["host"] == _host.hostname():
            if pid == os.getpid():
                return f"process {pid} (this process's id) does not hold it: an earlier run"
            if not _host.pid_alive(pid, holder.get("identity")):
                return f"process {pid} is gone"
            raise self._refuse(
                holder,
                mtime,
                f"Wait for it to end, or, if process {pid} is not an nnjax run (its id was "
                f"reused), delete {self.path}.",
            )
        age = time.time() - mtime
        if self.stale_after is not None and got is not False and age > self.stale_after:
            return f"its last heartbeat is {age:.0f} s old (stale_after={self.stale_after:g} s)"
        raise self._refuse(
            holder,
            mtime,
            "It runs on another host, where nnjax cannot tell whether it is still alive: "
            f"if that run has ended, delete {self.path}.",
        )

    def _refuse(self, holder, mtime, advice: str) -> DirectoryLockedError:
        return DirectoryLockedError(
            f"{self.directory} is in use by another run: {describe(holder, mtime)}. "
            f"Lock file: {self.path}. {advice}",
            self.path,
            holder,
        )

    def _take_over(self, fd: int, holder: dict, mtime: float, reason: str) -> None:
        aside = temp_path(self.path + ".stale")
        try:
            os.rename(self.path, aside)
        except PermissionError as e:  # another user's file in a sticky (+t) shared folder
            raise DirectoryLockedError(
                f"{self.directory} holds the lock of a run that ended ({describe(holder, mtime)}"
                f": {reason}), but its lock file {self.path} belongs to "
                f"{_host.file_owner(self.path)} and you cannot remove it ({e.strerror}): ask "
                "them to delete it",
                self.path,
                holder,
            ) from None
        # another newcomer replaced it first: put theirs back
        if not lock_record.same_file(fd, aside):
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        else:
            self.taken_over = holder
            warnings.warn(
                f"{self.directory}: taking over the stale lock of {describe(holder, mtime)}: "
                f"{reason}",
                StaleLockWarning,
                stacklevel=4,
            )
        os.unlink(aside)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Refresh the lock file's mtime: what other hosts read as "last seen alive"."""
        fd = self._fd
        if fd is not None:
            try:
                os.utime(fd)
            except OSError:
                pass

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the flock. Idempotent."""
        if self._fd is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if lock_record.same_file(self._fd, self.path):
                os.unlink(self.path)
        except OSError as e:  # left behind, it is recognised as stale by the next run
            warnings.warn(f"could not remove the lock file {self.path}: {e}", stacklevel=2)
        finally:
            os.close(self._fd)
            self._fd = None
            with _HELD_MUTEX:
                _HELD.discard(os.path.realpath(self.path))
                _HOLDERS.discard(self)

    def remove_file(self) -> None:
        """Remove the lock file if it is still ours, keeping the flock: for a process about to
        end at once (``os._exit``), whose flocks the kernel drops. Errors are ignored."""
        fd = self._fd
        try:
            if fd is not None and lock_record.same_file(fd, self.path):
                os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DirectoryLock({self.directory!r}, held={self.held})"


def lock_folder(directory, **kwargs) -> DirectoryLock:
    """Take ``directory``'s lock for a run that writes there (``kwargs``: those of
    :class:`DirectoryLock`), then remove the temporary files killed writers left in it
    (:func:`nnjax.io.clean_temp_files`, listed in ``.cleaned``); returns the held lock."""
    held = DirectoryLock(directory, **kwargs).acquire()
    try:
        held.cleaned = clean_temp_files(directory, exclusive=True)
    except BaseException:
        held.release()
        raise
    return held


def remove_held_lock_files() -> None:
    """Remove the lock files of every lock this process holds (:meth:`DirectoryLock.remove_file`),
    before it ends at once; safe from any thread."""
    for holder in list(_HOLDERS):
        holder.remove_file()


def held_here(directory) -> bool:
    """Whether this process holds ``directory``'s lock (its :data:`LOCK_NAME` file)."""
    with _HELD_MUTEX:
        return os.path.realpath(os.path.join(directory, LOCK_NAME)) in _HELD
