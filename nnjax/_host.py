"""Who is writing: this host's name and whether a process of this host is still alive.

Used by the directory lock (:mod:`nnjax.lock`) and the temp-file cleanup
(:func:`nnjax.io.clean_temp_files`). Standard library only, so it is cheap to import.

A process is identified across PID reuse by ``boot_id:starttime`` (Linux: the kernel's boot
id and the process start time in clock ticks since boot, ``/proc/<pid>/stat`` field 22).
Where ``/proc`` is missing the identity is None and liveness falls back to ``kill(pid, 0)``.

It also names this machine's processor (:func:`cpu_signature`, :func:`cpu_tag`): compiled
programs are only valid on the processor they were compiled for.
"""

import functools
import os
import re
import socket

_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def hostname() -> str:
    """This host's name, as ``socket.gethostname()`` reports it."""
    return socket.gethostname()


def host_tag(host: str | None = None) -> str:
    """``host`` (default: this host) reduced to ``[A-Za-z0-9-_]``, at most 32 characters: a
    form that fits in a file name and contains no dot."""
    return _UNSAFE.sub("_", hostname() if host is None else host)[:32] or "_"


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in ticks since boot) of ``pid`` from /proc, or None."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_identity(pid: int) -> str | None:
    """``"boot_id:starttime"`` of a live process of this host, or None where /proc cannot
    tell (no /proc, no such process)."""
    boot, st = _boot_id(), _stat(pid)
    return None if boot is None or st is None else f"{boot}:{st[1]}"


def pid_alive(pid: int, identity: str | None = None) -> bool:
    """Whether process ``pid`` of THIS host is alive (a zombie counts as dead).

    ``identity``: the :func:`process_identity` recorded when that process was alive; when it
    is given and /proc reports another one, ``pid`` now belongs to another process (PID reuse
    or a reboot) and the recorded process is dead. Processes of another PID namespace (another
    container with the same host name) are invisible here; callers must not rely on this
    alone (the lock also uses ``flock``).
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return True  # cannot tell: assume alive, the safe answer
    st = _stat(pid)
    if st is not None and st[0] in ("Z", "X"):
        return False
    if identity is not None:
        now = process_identity(pid)
        if now is not None and now != identity:
            return False
    return True


# A training run holds its params, their gradients and, with Adam, two moments (momentum:
# one): at most PARAM_COPIES copies. An example in a forward and backward pass holds each
# unit's pre-activation, activation and gradient: ACTIVATION_COPIES values per unit.
PARAM_COPIES, ACTIVATION_COPIES = 4, 3


def physical_memory() -> int | None:
    """This machine's memory in bytes (``sysconf``), or None where it is not known."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n_bytes: float) -> str:
    """``n_bytes`` in binary units, 3 significant digits: ``'23.5 GiB'``. A size that
    rounds to 1000 or more of a unit is given in the next one (1000 bytes is ``'0.977 KiB'``:
    ``.3g`` wrote ``'1e+03 bytes'``); PiB, the largest unit, keeps every digit."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if float(f"{n_bytes:.3g}") < 1000:
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.3g} PiB" if float(f"{n_bytes:.3g}") < 1000 else f"{n_bytes:.0f} PiB"


# the /proc/cpuinfo fields that name the processor and its instruction set (x86: model name
# and flags; ARM: implementer, part and Features; others: model or cpu)
_CPU_FIELDS = ("model name", "flags", "cpu implementer", "cpu part", "features", "cpu", "model")


@functools.cache
def cpu_signature() -> str:
    """This machine's processor: its architecture, model and instruction-set extensions.

    Linux: the distinct model and flag lines of ``/proc/cpuinfo`` (x86's ``model name`` and
    ``flags``, ARM's ``CPU implementer``, ``CPU part`` and ``Features``), flags sorted. macOS:
    ``sysctl machdep.cpu.brand_string``. Elsewhere: ``platform.processor()``. Two machines
    with the same signature run the same compiled code; XLA compiles for the host's own
    extensions (AVX-512 where present), which another processor may lack (SIGILL)."""
    import platform

    parts = {platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                key = key.strip().lower()
                if sep and key in _CPU_FIELDS:
                    words = value.split()
                    if key in ("flags", "features"):
                        words = sorted(words)
                    parts.add(f"{key}: {' '.join(words)}")
    except OSError:
        pass
    if len(parts) == 1 and platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            parts.add(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    if len(parts) == 1:
        parts.add(platform.processor())
    return "\n".join(sorted(p for p in parts if p))


def cpu_tag() -> str:
    """A short folder-safe name of :func:`cpu_signature`: ``'<arch>-<12 hex digits>'``."""
    import hashlib
    import platform

    digest = hashlib.sha256(cpu_signature().encode()).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', platform.machine()) or 'cpu'}-{digest}"


def file_owner(path: str) -> str:
    """``user NAME (uid N)``: who owns the file at ``path`` (``another user`` if unknown)."""
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "another user"
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"
