"""Audit of the compilation cache's rules and of the progress line, on the paths nobody had
tried: JAX's own false words, a relative XDG_CACHE_HOME, a URL as JAX's folder, an entry that
decompresses but does not parse, Python 3.14's zstd; a throttled last update, a terminal
narrower than the line, ``TERM=dumb``, format_seconds at its boundaries."""

import io
import math
import os
import re
import sys
import types
import zlib

import pytest
from test_progress import FakeClock

from nnjax import cache
from nnjax.progress import Progress, format_seconds

JAX_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE")


@pytest.fixture
def env(monkeypatch):
    for name in (cache.ENV_VAR, "XDG_CACHE_HOME", *JAX_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---------------------------------------------------------------- where the cache lives


@pytest.mark.parametrize("word", ["n", "no", "f", "off", "OFF", "No", "false", "0"])
def test_every_false_word_of_jax_keeps_the_cache_off(env, tmp_path, word):
    """JAX_ENABLE_COMPILATION_CACHE=no (or off, n, f) turns JAX's cache off in JAX's own
    reading, but nnjax read only 0 and false: it turned the cache on in its default folder."""
    from jax._src.config import bool_env

    env.setenv("HOME", str(tmp_path))
    env.setenv("JAX_ENABLE_COMPILATION_CACHE", word)
    assert bool_env("JAX_ENABLE_COMPILATION_CACHE", True) is False  # JAX: off
    assert cache.resolve_cache_dir() == ""  # JAX's setting decides, not rule 4


def test_a_relative_xdg_cache_home_is_ignored(env, tmp_path):
    """XDG_CACHE_HOME=relxdg made the cache ``relxdg/nnjax/jax-cache`` under whatever folder
    the command ran in; the XDG rules say a relative path there is to be ignored."""
    env.setenv("HOME", str(tmp_path))
    env.setenv("XDG_CACHE_HOME", "relxdg")
    assert cache.resolve_cache_dir() == str(tmp_path / ".cache" / "nnjax" / "jax-cache")
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # an absolute one is used
    assert cache.resolve_cache_dir() == str(tmp_path / "xdg" / "nnjax" / "jax-cache")


def test_a_url_as_jax_folder_makes_no_local_folder(env, tmp_path):
    """JAX_COMPILATION_CACHE_DIR=gs://bucket/cache made the local folders gs:/bucket/cache
    in the current folder (os.makedirs of the URL); JAX reaches such a folder itself."""
    import jax

    url = "gs://bucket/cache"
    env.setenv("JAX_COMPILATION_CACHE_DIR", url)
    env.setattr(cache, "_active", cache._active)  # restored after: later tests see no URL
    env.chdir(tmp_path)
    saved = jax.config.jax_enable_compilation_cache, jax.config.jax_compilation_cache_dir
    jax.config.update("jax_enable_compilation_cache", True)  # as JAX reads the variable
    jax.config.update("jax_compilation_cache_dir", url)
    try:
        assert cache.enable_compilation_cache() == url
        assert jax.config.jax_compilation_cache_dir == url and cache.active_dir() == url
    finally:
        jax.config.update("jax_enable_compilation_cache", saved[0])
        jax.config.update("jax_compilation_cache_dir", saved[1])
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- entries JAX cannot read


def _entry(folder, module: str, data: bytes, n: int = 0):
    path = folder / f"{module}-{n:064x}-cache"
    path.write_bytes(data)
    return path


@pytest.fixture
def active(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    monkeypatch.setattr(cache, "_reported", set())
    return tmp_path


PARSE = (
    "Error reading persistent compilation cache entry for '{}': JaxRuntimeError: "
    "INVALID_ARGUMENT: Failed to parse SerializedXlaExecutableMetadata"
)


def test_an_entry_that_decompresses_but_does_not_parse_is_removed(active):
    """An entry whose bytes decompress but are no executable (a damaged zstd frame: no
    checksum) was kept, and JAX warned at every later run, for good (reproduced by hand)."""
    bad = _entry(active, "jit__finite", zlib.compress(b"garbage" * 100), 1)
    other = _entry(active, "jit_add", zlib.compress(b"garbage" * 100), 2)
    line = cache.cache_warning(PARSE.format("jit__finite"))
    assert line == (
        f"compilation cache: {bad.name} in {active} could not be read (damaged: "
        "JaxRuntimeError: INVALID_ARGUMENT: Failed to parse SerializedXlaExecutableMetadata): "
        "removed, compiled afresh"
    )
    assert not bad.exists() and other.exists()  # another program's entry is not touched
    assert cache.cache_warning(PARSE.format("jit__finite")) == PARSE.format("jit__finite")
    # several entries, all whole: which one JAX could not parse is not known; all go, said
    # in one line that names the program, not every entry
    names = [_entry(active, "jit_add", zlib.compress(b"x" * 100), n).name for n in (3, 4)]
    line = cache.cache_warning(PARSE.format("jit_add"))
    assert line.startswith(f"compilation cache: an entry of jit_add in {active} could not be")
    assert line.endswith("its 3 entries removed, compiled afresh") and names[0] not in line
    assert os.listdir(active) == []


def test_a_warning_naming_the_whole_key_removes_that_entry_only(active):
    """JAX's `_is_executable_in_cache` names the entry by its whole key, not its module."""
    one = _entry(active, "jit_run", zlib.compress(b"x" * 100), 1)
    two = _entry(active, "jit_run", zlib.compress(b"x" * 100), 2)
    key = one.name[: -len("-cache")]
    line = cache.cache_warning(PARSE.format(key))
    assert line.startswith(f"compilation cache: {one.name} in {active}")
    assert not one.exists() and two.exists()


def test_entries_compressed_by_python_3_14_zstd_are_read(tmp_path, monkeypatch):
    """JAX prefers Python 3.14's compression.zstd; nnjax tried zlib and zstandard only, so
    every whole entry of a program JAX warned about counted as cut short."""
    fake = types.ModuleType("compression.zstd")

    class ZstdError(Exception):
        pass

    def decompress(data: bytes) -> bytes:
        if not data.startswith(b"\x28\xb5\x2f\xfd") or not data.endswith(b"END"):
            raise ZstdError("truncated")
        return data[4:-3]

    fake.ZstdError, fake.decompress = ZstdError, decompress
    package = types.ModuleType("compression")
    package.zstd = fake
    monkeypatch.setitem(sys.modules, "compression", package)
    monkeypatch.setitem(sys.modules, "compression.zstd", fake)
    whole = _entry(tmp_path, "jit_run", b"\x28\xb5\x2f\xfd" + b"program" + b"END", 1)
    cut = _entry(tmp_path, "jit_run", b"\x28\xb5\x2f\xfd" + b"prog", 2)
    assert cache.remove_unreadable_entries("jit_run", str(tmp_path)) == [cut.name]
    assert whole.exists() and not cut.exists()


# ---------------------------------------------------------------- the progress line


def test_the_eta_is_the_rate_since_the_first_update_times_what_is_left():
    clock = FakeClock()
    bar = Progress(20, "e", unit="epoch", stream=io.StringIO(), clock=clock, tty=False)
    clock.t += 7.0
    bar.update(1)  # the first update: the origin of the rate
    assert bar.eta() is None
    for done, dt in [(4, 3.0), (5, 0.5), (11, 6.1)]:
        clock.t += dt
        bar.update(done)
        r = (clock.t - 107.0) / (done - 1)
        assert bar.seconds_per_unit() == pytest.approx(r, rel=1e-12)
        assert bar.eta() == pytest.approx((20 - done) * r, rel=1e-12)
    bar.update(25)  # more than the total: counted as the total
    assert bar.done == 20 and bar.line().startswith("e 20/20 [####################] 100%  done")


def test_a_throttled_last_update_is_written_when_the_bar_closes():
    """Off a terminal a run that stopped before its total (early stopping at epoch 28 of
    300) left a log ending at "epoch 1/300": the last updates fell inside the interval."""
    clock, out = FakeClock(), io.StringIO()
    with Progress(10, "epoch", stream=out, clock=clock, tty=False, interval=2.0) as bar:
        bar.start("compiling")
        for i in range(1, 6):
            clock.t += 0.3
            bar.update(i, f"loss {i}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("epoch 5/10 ") and "loss 5" in lines[-1]


def _redraws(text: str) -> list[str]:
    return [s.removesuffix("\x1b[K") for s in text.split("\r")[1:]]


def test_on_a_terminal_the_line_is_cut_to_its_width():
    """A line wider than the terminal wraps, and the carriage return redraws its last row
    only: each update left the rows above on screen."""
    out = io.StringIO()
    with Progress(300, "epoch", stream=out, clock=FakeClock(), tty=True, columns=40) as bar:
        bar.start("compiling (the first epoch includes it)...")
        full = bar.line()
        bar.update(1, "loss 0.3225  val acc 0.8625")
    first, second = _redraws(out.getvalue().removesuffix("\n"))
    assert len(full) == 92 and first == full[:39] and len(second) == 39


def test_the_width_of_a_real_terminal_is_measured():
    pty, fcntl, termios = (pytest.importorskip(m) for m in ("pty", "fcntl", "termios"))
    import struct

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 50, 0, 0))
    with os.fdopen(follower, "w") as stream:
        with Progress(300, "epoch", stream=stream, clock=FakeClock()) as bar:
            bar.start("compiling (the first epoch includes it)...")
    data = os.read(leader, 4096).decode()
    os.close(leader)
    shown = re.split(r"\r\n?", data)[1].removesuffix("\x1b[K")
    assert len(bar.line()) > 49 and shown == bar.line()[:49]


def test_a_dumb_terminal_gets_no_escape_sequence(monkeypatch):
    """TERM=dumb shows ESC[K as text; the rest of a longer earlier line is blanked with
    spaces instead."""
    monkeypatch.setenv("TERM", "dumb")
    out = io.StringIO()
    with Progress(2, "x", stream=out, clock=FakeClock(), tty=True, columns=200) as bar:
        bar.start("a long status at the start")
        long = len(bar.line())
        bar.update(1, "b")
    text = out.getvalue()
    assert "\x1b" not in text
    first, second = text.removesuffix("\n").split("\r")[1:]
    assert len(first) == long and len(second) == long and second.endswith(" ")
    assert second.rstrip() == bar.line()


@pytest.mark.parametrize(
    "s, text",
    [
        (9.94, "9.9 s"),
        (9.96, "10 s"),
        (10, "10 s"),
        (59.4, "59 s"),
        (59.6, "1m00s"),
        (60, "1m00s"),
        (119.9, "2m00s"),
        (3599.4, "59m59s"),
        (3599.6, "1h00m"),
        (3600, "1h00m"),
        (-100, "-1m40s"),
        (-0.04, "0.0 s"),
        (math.nan, "?"),
        (math.inf, "?"),
        (-math.inf, "?"),
    ],
)
def test_format_seconds_at_its_boundaries(s, text):
    """59.6 was "60 s", 9.96 "10.0 s", 3599.6 "59m59s", -100 "-100.0 s"; nan and inf raised
    ValueError (a progress line that ended the run)."""
    assert format_seconds(s) == text
