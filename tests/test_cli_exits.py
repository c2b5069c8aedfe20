"""How the nnjax command ends when its output cannot go anywhere: a command's --help into a
full disk is that command's one-line error, as its run's; a reader of stdout that leaves
(``| head -1``) ends it quietly with SIGPIPE's status 141, also when a library (rich) caught
the broken pipe; and ``nnjax sleep``'s counts that no run can use are refused before JAX."""

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from disk_faults import full_text_stream

from nnjax import errors
from nnjax.cli import main
from nnjax.commands import sleep as sleep_command

ROOT = Path(__file__).resolve().parent.parent
FULL = "cannot write standard output: No space left on device (errno 28, ENOSPC)"


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["info", "--help"], "nnjax info"),
        (["train", "--help"], "nnjax train"),
        (["sleep", "-h"], "nnjax sleep"),
        (["--no-cache", "compare", "--help"], "nnjax compare"),
        (["--cache-dir", "info", "verify", "--help"], "nnjax verify"),  # a folder named info
        (["bench", "--help"], "nnjax bench"),
        (["--help"], "nnjax"),
    ],
)
def test_a_commands_help_into_a_full_disk_is_that_commands_error(argv, prog, capsys, monkeypatch):
    """review: `nnjax info --help > /dev/full` said "nnjax: error: ..." where `nnjax info >
    /dev/full` says "nnjax info: error: ..." (and argparse's usage errors "nnjax info: ...")."""
    with full_text_stream() as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(argv) == errors.EXIT_IO
        monkeypatch.undo()
    assert capsys.readouterr().err == f"{prog}: error: {FULL}\n"


def _nnjax(*argv, stdout=None, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONUNBUFFERED", None)  # as users run it: stdout buffered
    cmd = [sys.executable, "-m", "nnjax", *argv]
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, **kw)


def test_help_into_dev_full_names_the_command_as_its_run_does():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = _nnjax("info", "--help", stdout=full)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and err == f"nnjax info: error: {FULL}\n"


# nnjax verify's table through rich, long enough to fill the pipe (JAX not needed)
RICH_TABLE = """
import sys
from nnjax.commands import verify
def run(args):
    from rich.console import Console
    from rich.table import Table
    table = Table(title="many rows")
    table.add_column("row")
    for i in range(2000):  # 2000 lines of 90 bytes: more than a pipe and a reader's buffer hold
        table.add_row(f"{i:080d}")
    Console().print(table)
    return 0
verify.run = run
sys.argv = ["nnjax", "verify"]
from nnjax import cli
cli._compilation_cache = lambda args, allowed: None  # imports JAX: not needed here
cli.entry()
"""


@pytest.mark.parametrize("printer", ["rich", "print"])
def test_a_reader_that_leaves_ends_the_command_quietly_with_141(printer, tmp_path):
    """review: `nnjax verify | head -1` exited 1 (rich's Console catches the broken pipe and
    exits 1); a Unix tool whose reader left ends as SIGPIPE's 141, with nothing on stderr."""
    script = RICH_TABLE
    if printer == "print":
        lines = "[print(f'{i:080d}') for i in range(2000)]"
        script = script.replace("Console().print(table)", lines)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141, err
    assert first and err == ""  # no traceback, no "Exception ignored"


def test_reader_left_knows_the_exit_of_a_library_that_caught_the_broken_pipe(monkeypatch):
    from nnjax.cli_stdout import _NamedStdout, reader_left

    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    named = _NamedStdout(Gone())
    monkeypatch.setattr(sys, "stdout", named)
    assert not reader_left(SystemExit(1))
    with pytest.raises(BrokenPipeError):
        named.write("x")
    assert named.gone and reader_left(SystemExit(1)) and reader_left(BrokenPipeError())
    monkeypatch.undo()
    assert not reader_left(SystemExit(1))  # another stdout: its own exit


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--orders", str(10**30)],
            "argument --orders: takes comma-separated integers in [0, 4294967295] (each seeds "
            f"a class order, as --seed) like 0,1,2,3,4 (no empty entry), got '{10**30}'",
        ),
        (
            ["--orders", "1,4294967296"],
            "argument --orders: takes comma-separated integers in [0, 4294967295] (each seeds "
            "a class order, as --seed) like 0,1,2,3,4 (no empty entry), got '1,4294967296'",
        ),
        (
            ["--orders", "-1"],
            "argument --orders: takes comma-separated integers in [0, 4294967295] (each seeds "
            "a class order, as --seed) like 0,1,2,3,4 (no empty entry), got '-1'",
        ),
    ],
)
def test_sleep_refuses_orders_out_of_range(argv, line, capsys):
    """review: --orders 10**30 was accepted: more than 2**32 seeds give no class order the
    first 2**32 do not (10! of them), and results.json's orders were no longer exact in
    readers of float64 or int64 numbers."""
    with pytest.raises(SystemExit) as exit_:
        _sleep_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"nnjax sleep: error: {line} (see nnjax sleep --help)\n"


def test_sleep_takes_the_largest_order():
    assert _sleep_args(["--orders", "4294967295,0"]).orders == [4294967295, 0]


def _sleep_args(argv):
    from nnjax.cli import build_parser

    return build_parser(["sleep"]).parse_args(["sleep", *argv])


def test_sleep_refuses_more_seeds_than_memory_holds_at_the_default_steps(monkeypatch):
    """review: --seeds 10**12 (without --steps) got past the memory check, which counted only
    the steps given, into XLA: a traceback ("Out of memory allocating 8000000000000 bytes")."""
    monkeypatch.setattr("nnjax._host.physical_memory", lambda: 16 * 2**30)

    def refusal(*argv) -> str:
        with pytest.raises(ValueError) as error:
            sleep_command.check(_sleep_args(argv))
        return str(error.value)

    assert refusal("--seeds", str(10**12)) == (
        f"--seeds {10**12} x 5 --orders: {5 * 10**12} runs of 300 steps (--steps's default) "
        "need at least 42.6 PiB of memory; this machine has 16 GiB"
    )
    assert refusal("--seeds", str(10**12), "--steps", "3").startswith(
        f"--seeds {10**12} x 5 --orders: {5 * 10**12} runs of 3 steps need"
    )
    assert refusal("--steps", str(10**10)).startswith(  # the steps alone: named
        "--steps 10000000000: 10 runs of 10000000000 steps need"
    )
    assert main(["sleep", "--seeds", str(10**9), "--sleep-steps", "5"]) == 2  # at the command


def test_sleeps_default_steps_are_the_harness_defaults():
    from nnjax.brain import harness

    assert {c.steps for c in harness.WAKE.values()} == {sleep_command.DEFAULT_STEPS}
    assert {c.steps for c in harness.SLEEP.values()} == {sleep_command.DEFAULT_SLEEP_STEPS}


class _ShortWrites(io.RawIOBase):
    """A file that takes at most 10 bytes a write, as a pipe or a filling disk may, and has
    room for ``room`` bytes (None: no limit)."""

    def __init__(self, room=None):
        self.data, self.room = bytearray(), room

    def writable(self):
        return True

    def write(self, b):
        if self.room is not None and len(self.data) >= self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.data += bytes(b[:10])
        return min(len(b), 10)


@pytest.mark.parametrize("room", [None, 50])
def test_unbuffered_stdout_loses_nothing_to_a_short_write(room, capsys, monkeypatch):
    """review: unbuffered (``python -u``, PYTHONUNBUFFERED=1, as many containers set it), a
    TextIOWrapper ignores a short write: `nnjax predict > out.csv` on a nearly full disk wrote
    its first 64 KiB and exited 0, the rest lost without a word."""
    from nnjax.commands import info as info_command

    text = "".join(f"line {i:03d} é\n" for i in range(30))
    monkeypatch.setattr(info_command, "run", lambda args: print(text, end="") or 0)
    raw = _ShortWrites(room)
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)
    code = main(["info"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    if room is None:
        assert code == 0 and raw.data.decode() == text and err == ""
    else:
        assert code == errors.EXIT_IO and err == f"nnjax info: error: {FULL}\n"
        assert text.encode().startswith(raw.data) and len(raw.data) == room
