"""Signals the ``nnjax`` executable must not lose or report with a traceback: one that comes
where Python drops the handler's exception (a gc callback: JAX installs one; a finalizer),
SIGUSR1 outside training, and a signal that comes after the command has finished (during
the interpreter's teardown). Each case runs in a fresh interpreter, as the executable does."""

import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNALS = [signal.SIGINT, signal.SIGTERM]
IDS = ["SIGINT", "SIGTERM"]

# A stub command run through nnjax.cli.entry: `nnjax info` whose run is replaced, with an
# output folder (sys.argv[1]) so that the command holds a lock. {body} is run's body.
COMMAND = """
import gc, os, signal, sys, time
import nnjax.commands.info as info
from nnjax.cli import entry
def run(args):
{body}
info.run = run
folder = sys.argv[1]
info.output_folder = lambda args: folder
sys.argv = ["nnjax", "info"]
entry()
"""

# Where Python drops an exception: the handler runs inside a gc callback or a finalizer
# (os.kill delivers the signal at once; the handler runs at the next bytecode there).
DROPPED = {
    "gc": """
def callback(phase, info):
    if phase == "start":
        os.kill(os.getpid(), {sig})
        sum(range(1000))
gc.callbacks.append(callback)
gc.collect()
gc.callbacks.remove(callback)
""",
    "finalizer": """
class Finalized:
    def __del__(self):
        os.kill(os.getpid(), {sig})
        sum(range(1000))
Finalized()
""",
}


def _run(script: str, *args, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _command(body: str) -> str:
    return COMMAND.format(body="\n".join("    " + line for line in body.strip("\n").split("\n")))


def _assert_one_line(proc: subprocess.CompletedProcess, command: str, sig: int) -> None:
    """Status 128 + N, the one error line last on stderr, no traceback, nothing dropped."""
    err = proc.stderr
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    name = signal.Signals(sig).name
    assert err.strip().splitlines()[-1] == f"nnjax {command}: error: interrupted by {name}", err
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
@pytest.mark.parametrize("after", ["returns", "goes-on"])
@pytest.mark.parametrize("where", ["gc", "finalizer"])
def test_a_dropped_signal_still_ends_the_command(where, after, sig, tmp_path):
    """The signal came where Python drops the handler's exception (a gc callback: JAX
    installs one; a finalizer). The command goes on: the signal is delivered again and
    unwinds it before the watchdog's grace ends ("goes-on"); or it returns at once: leaving
    the block raises the signal ("returns"). Either way main's one line, 128 + N, no
    "Exception ignored", the lock removed."""
    rest = "time.sleep(30)\nprint('still running')" if after == "goes-on" else "print('returned')"
    body = DROPPED[where].format(sig=int(sig)).strip("\n") + "\n" + rest
    proc = _run(_command(body), str(tmp_path))
    _assert_one_line(proc, "info", sig)
    assert "still running" not in proc.stdout and os.listdir(tmp_path) == []


def test_a_signal_in_a_busy_gc_callback_is_raised_outside_it(tmp_path):
    """The main thread spends about two thirds of its time in a slow gc callback (and JAX's
    one lets the GIL go, where another thread gets it): the signal is still raised in the
    command's own code, well before the watchdog's grace ends."""
    body = DROPPED["gc"].format(sig=int(signal.SIGTERM)).strip("\n") + (
        "\ndef slow(phase, info):\n"
        "    end = time.perf_counter() + 0.005\n"
        "    while time.perf_counter() < end:\n"
        "        pass\n"
        "gc.callbacks.append(slow)\n"
        "for _ in range(2000):\n"
        "    gc.collect()\n"
        "    end = time.perf_counter() + 0.005\n"
        "    while time.perf_counter() < end:\n"
        "        pass\n"
        "print('still running')"
    )
    proc = _run(_command(body), str(tmp_path))
    _assert_one_line(proc, "info", signal.SIGTERM)
    assert "still running" not in proc.stdout and os.listdir(tmp_path) == []


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_a_dropped_signal_in_signals_unwind_alone(sig):
    """signals_unwind by itself (the demo of the defect): the exception comes out of the
    block, none is printed as ignored."""
    script = (
        "import gc, os, signal\n"
        "from nnjax.cli_signals import signals_unwind\n"
        f"cb = lambda p, i: p == 'start' and os.kill(os.getpid(), {int(sig)})\n"
        "try:\n"
        "    with signals_unwind('x'):\n"
        "        gc.callbacks.append(cb); gc.collect(); gc.callbacks.remove(cb)\n"
        "except KeyboardInterrupt as e:\n"
        "    print('raised', getattr(e, 'signum', 2))\n"
    )
    proc = _run(script)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == f"raised {int(sig)}", proc
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_second_delivery_leaves_an_unwinding_alone():
    """SIGTERM comes in a gc callback (its delivery waits), then SIGINT in ordinary code
    unwinds the command: the SIGTERM is not delivered into the cleanup that runs."""
    script = (
        "import gc, os, signal, time\n"
        "from nnjax.cli_signals import signals_unwind\n"
        "cb = lambda p, i: p == 'start' and os.kill(os.getpid(), signal.SIGTERM)\n"
        "try:\n"
        "    with signals_unwind('x'):\n"
        "        try:\n"
        "            gc.callbacks.append(cb); gc.collect(); gc.callbacks.remove(cb)\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "            time.sleep(30)\n"
        "        finally:\n"
        "            time.sleep(0.3)\n"
        "            print('cleaned')\n"
        "except KeyboardInterrupt as e:\n"
        "    print('raised', getattr(e, 'signum', 2))\n"
    )
    proc = _run(script)
    assert proc.returncode == 0 and proc.stdout == "cleaned\nraised 2\n", proc
    assert proc.stderr == "", proc.stderr


def test_other_unraisable_exceptions_go_to_the_previous_hook():
    """Within the block another dropped exception reaches the hook set before it, which is
    back on leaving."""
    script = (
        "import gc, sys\n"
        "from nnjax.cli_signals import signals_unwind\n"
        "seen = []\n"
        "mine = lambda u: seen.append(type(u.exc_value).__name__)\n"
        "sys.unraisablehook = mine\n"
        "def cb(p, i):\n"
        "    raise RuntimeError('x')\n"
        "with signals_unwind('x'):\n"
        "    gc.callbacks.append(cb); gc.collect(); gc.callbacks.remove(cb)\n"
        "print(seen, sys.unraisablehook is mine)\n"
    )
    proc = _run(script)
    assert proc.returncode == 0 and proc.stdout.strip() == "['RuntimeError', 'RuntimeError'] True"


LOCKED = """
import os, signal, sys, time
from nnjax.cli_signals import signals_unwind
from nnjax.errors import Interrupted
from nnjax.lock import DirectoryLock
try:
    with signals_unwind("test"), DirectoryLock(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(30)
        print("still running")
except Interrupted as e:
    print("interrupted", e.signum, os.listdir(sys.argv[1]))
"""


def test_sigusr1_unwinds_and_releases_the_lock(tmp_path):
    """SIGUSR1 raises Interrupted(SIGUSR1) in the block like SIGTERM: the lock is released
    (its file gone) as the exception unwinds."""
    proc = _run(LOCKED, str(tmp_path))
    assert proc.stdout.strip() == f"interrupted {int(signal.SIGUSR1)} []", proc
    assert os.listdir(tmp_path) == []


def test_sigusr1_ends_a_command_in_one_line(tmp_path):
    """Through the executable's entry: SIGUSR1 ends a command with its one line, status 138,
    and its output folder's lock removed."""
    proc = _run(_command("os.kill(os.getpid(), signal.SIGUSR1)\ntime.sleep(30)"), str(tmp_path))
    _assert_one_line(proc, "info", signal.SIGUSR1)
    assert os.listdir(tmp_path) == []


# The command has finished (status 3); an atexit function registered before entry() runs
# during the interpreter's teardown and sends the signal; the handler runs at its next
# bytecode. `ignored` first sets SIGHUP to SIG_IGN, as nohup does.
TEARDOWN = """
import atexit, os, signal
import nnjax.cli as cli
if {ignored}:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
def send():
    os.kill(os.getpid(), {sig})
    sum(range(1000))
    print("after the signal", flush=True)
atexit.register(send)
cli.main = lambda argv=None: print("done", flush=True) or 3
cli.entry()
"""


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1],
    ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1"],
)  # fmt: skip
def test_a_signal_after_the_command_leaves_with_its_status(sig):
    """A signal during the teardown is ignored: the process ends with the command's status, no
    traceback from a KeyboardInterrupt in an atexit callback, no death by the signal (Python
    resets its own handlers to the default part way through the teardown; SIG_IGN stays)."""
    proc = _run(TEARDOWN.format(sig=int(sig), ignored=False))
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert proc.stdout == "done\nafter the signal\n" and proc.stderr == "", proc


def test_an_ignored_signal_stays_ignored_after_the_command():
    proc = _run(TEARDOWN.format(sig=int(signal.SIGHUP), ignored=True))
    assert proc.returncode == 3 and proc.stdout == "done\nafter the signal\n", proc
