"""The ``nnjax`` executable at its edges: a signal during start-up (before the command's own
signal handling), and standard streams that are closed or full. Each case runs in a fresh
interpreter through ``nnjax.cli.entry``, as the executable does."""

import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# `nnjax info` with a stand-in for the start-up (check, the compilation cache, imports):
# {body} runs in place of cli.main.
START = """
import os, signal, sys, time
import nnjax.cli as cli
def main(argv=None):
{body}
cli.main = main
sys.argv = ["nnjax", "info"]
cli.entry()
"""

# `nnjax info` whose run prints a line to stdout and one to stderr, then returns 0.
PRINTS = """
import sys
import nnjax.commands.info as info
from nnjax.cli import entry
def run(args):
    print("result")
    print("note", file=sys.stderr)
    return 0
info.run = run
sys.argv = ["nnjax", "info"]
entry()
"""


def _run(script: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        **kw,
    )  # fmt: skip


def _start(body: str) -> str:
    return START.format(body="\n".join("    " + line for line in body.strip("\n").split("\n")))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_ends_it_in_one_line(sig):
    """Finding: Ctrl-C 0.3-1.2 s after `nnjax train` started was raised by Python's default
    handler inside JAX's gc callback (dropped: the run trained to the end, status 0), inside
    an import (a traceback) or inside a native extension loading (SIGABRT, SIGSEGV)."""
    proc = _run(_start(f"os.kill(os.getpid(), {int(sig)})\ntime.sleep(30)\nreturn 0"))
    assert proc.returncode == 128 + sig, (proc.returncode, proc.stderr)
    name = signal.Signals(sig).name
    assert proc.stderr == f"nnjax info: error: interrupted by {name}\n", proc.stderr


def test_a_signal_in_a_gc_callback_during_start_up_is_not_dropped():
    """The signal comes while a gc callback runs (where a raised exception is dropped)."""
    body = """
import gc
def callback(phase, info):
    if phase == "start":
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))
gc.callbacks.append(callback)
gc.collect()
time.sleep(30)
return 0
"""
    proc = _run(_start(body))
    assert proc.returncode == 130 and "Exception ignored" not in proc.stderr, proc.stderr


def _in_shell(script: str, redirect: str, **kw) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter whose descriptors the shell has set with
    ``redirect`` (``>&-`` closes stdout, ``2>/dev/full`` fills stderr): no preexec_fn, which
    forks a process that JAX's threads make unsafe."""
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -c "$1" {redirect}', sys.executable, script], cwd=ROOT,
        text=True, timeout=60, **kw,
    )  # fmt: skip


def test_a_closed_stdout_ends_the_command_in_one_line():
    """Finding: `nnjax info >&-` ended with AttributeError: 'NoneType' object has no attribute
    'flush' (a traceback, status 1). Now it fails as writing to a closed descriptor does."""
    proc = _in_shell(PRINTS, ">&-", stderr=subprocess.PIPE)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "nnjax info: error: cannot write standard output: Bad file descriptor (errno 9, EBADF)"
    ), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("how", ["closed", "full"])
def test_a_stderr_that_cannot_be_written_does_not_fail_the_command(how):
    """Finding: with stderr closed the progress bar raised on None and the run never started
    (status 1); with 2>/dev/full the first diagnostic line raised ENOSPC, and so did the line
    reporting it. Diagnostics are best effort: the command's own output and status stand."""
    proc = _in_shell(PRINTS, "2>&-" if how == "closed" else "2>/dev/full", stdout=subprocess.PIPE)
    assert proc.returncode == 0 and proc.stdout == "result\n", proc


def test_closed_standard_descriptors_are_not_reused_by_files_opened_later(tmp_path):
    """With descriptor 1 closed, the next file opened took number 1, so anything written to
    fd 1 (a library's printf) went into that file; entry() puts /dev/null there first."""
    script = f"""
import os, sys
import nnjax.commands.info as info
from nnjax.cli import entry
def run(args):
    fd = os.open({str(tmp_path / "f")!r}, os.O_WRONLY | os.O_CREAT)
    os.write(2, f"fd={{fd}}\\n".encode())
    return 0
info.run = run
sys.argv = ["nnjax", "info"]
entry()
"""
    proc = _in_shell(script, ">&-", stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stderr.split("fd=")[1].split()[0]) > 2, proc.stderr
