"""The CLI's persistent compilation cache: where it lives (options, environment, JAX's own
settings), and that a second identical run compiles nothing (in a temporary folder, in
subprocesses: a process opens JAX's cache once, and the user's cache is never touched)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnjax.cache import ENV_VAR, default_cache_dir, resolve_cache_dir

ROOT = Path(__file__).resolve().parent.parent
JAX_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE")


@pytest.fixture
def env(monkeypatch):
    for name in (ENV_VAR, "XDG_CACHE_HOME", *JAX_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_default_folder_follows_xdg(env, tmp_path):
    env.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / ".cache" / "nnjax" / "jax-cache")
    assert resolve_cache_dir() == default_cache_dir()
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == str(tmp_path / "xdg" / "nnjax" / "jax-cache")


def test_precedence_of_the_settings(env, tmp_path):
    env.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_cache_dir() == str(tmp_path / "env")
    assert resolve_cache_dir(str(tmp_path / "opt")) == str(tmp_path / "opt")  # --cache-dir
    assert resolve_cache_dir(str(tmp_path / "opt"), no_cache=True) is None  # --no-cache
    env.setenv(ENV_VAR, "off")
    assert resolve_cache_dir() is None
    assert resolve_cache_dir("rel") == os.path.abspath("rel")


def test_the_users_jax_settings_are_kept(env, tmp_path):
    env.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))
    assert resolve_cache_dir() == ""  # JAX's own setting decides
    env.delenv("JAX_COMPILATION_CACHE_DIR")
    env.setenv("JAX_ENABLE_COMPILATION_CACHE", "false")
    assert resolve_cache_dir() == ""
    env.setenv(ENV_VAR, str(tmp_path))  # an explicit nnjax setting wins
    assert resolve_cache_dir() == str(tmp_path)


def _train(cache: Path, cpu: str | None = None) -> tuple[float, set[str]]:
    """``nnjax train`` on xor in a fresh process; its reported compile time, the files of this
    processor's subfolder of the cache. ``cpu``: the processor the process sees, in place of
    this machine's (:func:`nnjax._host.cpu_signature`)."""
    env = {k: v for k, v in os.environ.items() if k not in JAX_ENV}
    env.update({ENV_VAR: str(cache), "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    argv = ["train", "--dataset", "xor", "--hidden", "4", "--epochs", "2", "--batch-size", "0"]
    code = "import sys, nnjax.cli; sys.argv[0] = 'nnjax'; nnjax.cli.entry()"
    if cpu is not None:
        code = f"import nnjax._host as h; h.cpu_signature = lambda: {cpu!r}; {code}"
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    compile_s = float(re.search(r"compile ([0-9.]+) s", proc.stdout).group(1))
    results = [line for line in proc.stdout.splitlines() if line.startswith("train loss")]
    _train.results = results  # the metrics printed, to compare the runs
    _train.stderr = proc.stderr
    return compile_s, set(os.listdir(cache / _tag(cpu)))


def _tag(cpu: str | None) -> str:
    import nnjax._host as h

    if cpu is None:
        return h.cpu_tag()
    real = h.cpu_signature
    h.cpu_signature = lambda: cpu
    try:
        return h.cpu_tag()
    finally:
        h.cpu_signature = real


@pytest.fixture(scope="module")
def _first_run(tmp_path_factory):
    """One ``nnjax train`` into an empty cache, and a copy of the cache it filled: (its
    folder, the copy, the run's compile time, cache files and metrics)."""
    cache = tmp_path_factory.mktemp("first") / "cache"
    compile_s, files = _train(cache)
    copy = shutil.copytree(cache, cache.parent / "copy")
    return cache, copy, compile_s, files, _train.results


@pytest.fixture
def filled(_first_run):
    """The cache as the first run left it, at the folder it filled (JAX's keys of the small
    programs differ with the folder: a copy elsewhere is not served), restored for each test;
    with that run's compile time, cache files and metrics. One first run for the three tests
    instead of one each."""
    cache, copy, *run = _first_run
    shutil.rmtree(cache)
    shutil.copytree(copy, cache)
    return cache, *run


def test_second_identical_run_compiles_nothing(filled):
    cache, first_compile, first, results = filled
    # fit's fused loop is cached, under its store key's name (nnjax.train.executables)
    assert any(name.startswith("jit_nnjax_fit_") for name in first)
    assert os.listdir(cache) == [_tag(None)]  # in this processor's subfolder
    programs = cache / _tag(None) / "nnjax-programs"
    stored = os.listdir(programs)  # and kept whole (nnjax.train.executables)
    assert len(stored) == 1 and stored[0].endswith(".xla")
    second_compile, second = _train(cache)
    assert second == first  # every program of the second run came from the cache
    assert os.listdir(programs) == stored
    assert second_compile < first_compile
    assert _train.results == results and len(results) == 1  # the same run, to the digit
    # another processor sharing the folder (a home folder mounted on a cluster's nodes)
    # neither loads these programs (compiled for this processor's instruction set: SIGILL
    # where it lacks one) nor replaces them: it compiles into its own subfolder
    before = {p: p.stat().st_mtime_ns for p in (cache / _tag(None)).rglob("*")}
    _, other = _train(cache, cpu="another processor")
    assert sorted(os.listdir(cache)) == sorted([_tag(None), _tag("another processor")])

    # the same programs (JAX's key differs with the folder, fit's name with the processor:
    # compare the names without them)
    def programs_of(names):
        return sorted(re.sub(r"^jit_nnjax_fit_\w+$", "fit", n.split("-")[0]) for n in names)

    assert programs_of(other) == programs_of(first)
    assert _train.results == results
    assert {p: p.stat().st_mtime_ns for p in (cache / _tag(None)).rglob("*")} == before


def test_no_cache_turns_jax_cache_off(env):
    import jax

    from nnjax.cache import enable_compilation_cache

    assert enable_compilation_cache("/never/made", no_cache=True) is None
    assert not jax.config.jax_enable_compilation_cache and not os.path.exists("/never/made")


def test_a_file_given_as_the_cache_folder_is_named(env, tmp_path):
    import jax

    from nnjax.cache import enable_compilation_cache

    path = tmp_path / "a-file"
    path.write_text("mine")
    with pytest.raises(NotADirectoryError, match="a file, not a directory") as err:
        enable_compilation_cache(str(path))
    assert err.value.filename == str(path) and path.read_text() == "mine"
    assert not jax.config.jax_enable_compilation_cache


def test_the_processor_is_named_by_its_instruction_set():
    import platform

    import nnjax._host as h

    sig = h.cpu_signature()
    assert platform.machine() in sig.splitlines()
    if os.path.exists("/proc/cpuinfo") and platform.machine() in ("x86_64", "AMD64"):
        (flags,) = [line for line in sig.splitlines() if line.startswith("flags: ")]
        assert "sse2" in flags.split()  # every x86-64 processor has it
    assert re.fullmatch(r"[A-Za-z0-9_-]+-[0-9a-f]{12}", h.cpu_tag())


def _entry(folder: Path, module: str, data: bytes, n: int = 0) -> Path:
    path = folder / f"{module}-{n:064x}-cache"
    path.write_bytes(data)
    return path


def test_broken_entries_are_removed_and_write_failures_said_once(tmp_path, monkeypatch):
    """JAX never writes over an entry that exists: one cut short (a full disk, a kill) made
    every later run warn and compile afresh. Empty ones go when the cache is turned on, and
    one JAX could not read goes when JAX says so; a failing write is said once."""
    import zlib

    from nnjax import cache

    whole = zlib.compress(b"a compiled program" * 100)
    good = _entry(tmp_path, "jit_run", whole, 1)
    cut = _entry(tmp_path, "jit_run", whole[: len(whole) // 2], 2)
    other = _entry(tmp_path, "jit_add", whole[:10], 3)  # another program's: not touched
    empty = _entry(tmp_path, "jit_iota", b"", 4)
    (tmp_path / "notes.txt").write_bytes(b"")  # not an entry
    assert cache.remove_empty_entries(str(tmp_path)) == [empty.name]
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    monkeypatch.setattr(cache, "_reported", set())
    read = "Error reading persistent compilation cache entry for 'jit_run': error: Error -5"
    line = cache.cache_warning(read)
    assert line.startswith(f"compilation cache: {cut.name} in {tmp_path} was cut short")
    assert good.exists() and not cut.exists() and other.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([good.name, other.name, "notes.txt"])
    # JAX says again it cannot read jit_run's entry; the one left decompresses, so it is one
    # JAX cannot parse (a damaged zstd frame): removed too
    assert cache.cache_warning(read).startswith(f"compilation cache: {good.name} in {tmp_path}")
    assert sorted(os.listdir(tmp_path)) == sorted([other.name, "notes.txt"])
    assert cache.cache_warning(read) == read  # nothing left to remove: JAX's own words
    write = "Error writing persistent compilation cache entry for 'jit_add': OSError: [Errno 28] No space left on device"  # noqa: E501
    first = cache.cache_warning(write)
    assert first.startswith(f"compilation cache: could not save compiled programs in {tmp_path}")
    assert "[Errno 28] No space left on device" in first
    assert cache.cache_warning(write.replace("jit_add", "jit_run")) is None
    assert cache.cache_warning("something else") == "something else"


def test_an_entry_cut_short_is_said_once_and_healed(filled):
    """Three processes: fill the cache (the shared first run); cut fit's entry in half (its
    stored program gone, so JAX's cache is asked): one line naming it, compiled afresh,
    written whole; then served."""
    cache = filled[0]
    folder = cache / _tag(None)
    shutil.rmtree(folder / "nnjax-programs")
    (entry,) = folder.glob("jit_nnjax_fit_*-cache")
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])
    _train(cache)
    warnings = [line for line in _train.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"{entry.name} in {folder} was cut short" in warnings[0]
    assert entry.read_bytes() != data[: len(data) // 2]  # written afresh, whole
    shutil.rmtree(folder / "nnjax-programs")
    _train(cache)
    assert "warning" not in _train.stderr


def test_info_says_an_unusable_jax_cache_folder_is_off_and_why(env, tmp_path, capsys):
    """review: JAX_COMPILATION_CACHE_DIR under a file: a warning, then ``nnjax info`` showed
    that path as the cache in use (and JAX kept it on, to try it at every compile)."""
    import jax

    from nnjax.cli import main

    (tmp_path / "a-file").write_text("mine")
    bad = str(tmp_path / "a-file" / "cache")
    env.setenv("JAX_COMPILATION_CACHE_DIR", bad)  # read by JAX at import: set it as JAX does
    saved = jax.config.jax_enable_compilation_cache, jax.config.jax_compilation_cache_dir
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", bad)
    try:
        assert main(["info"]) == 0
        assert not jax.config.jax_enable_compilation_cache
    finally:
        jax.config.update("jax_enable_compilation_cache", saved[0])
        jax.config.update("jax_compilation_cache_dir", saved[1])
    out, err = capsys.readouterr()
    assert f"warning: compilation cache off: {bad}: Not a directory" in err
    line = next(x for x in out.splitlines() if x.startswith("jax_cache"))
    assert line == f"jax_cache    off (unusable: {bad}: Not a directory (errno 20, ENOTDIR))"


def test_an_entry_that_decompresses_but_does_not_parse_is_healed(filled):
    """Audit: fit's entry replaced by compressed bytes that are no executable (a damaged zstd
    frame decompresses: zstd keeps no checksum). JAX warned "Failed to parse" at every run,
    for good, the entry kept; now it is removed once, said in one line, and written whole."""
    import zlib

    cache = filled[0]
    folder = cache / _tag(None)
    shutil.rmtree(folder / "nnjax-programs")
    (entry,) = folder.glob("jit_nnjax_fit_*-cache")
    damaged = zlib.compress(b"not a program" * 100)
    entry.write_bytes(damaged)
    _train(cache)
    warnings = [line for line in _train.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"{entry.name} in {folder} could not be read" in warnings[0]
    assert entry.read_bytes() != damaged  # written afresh, whole
    shutil.rmtree(folder / "nnjax-programs")
    _train(cache)
    assert "warning" not in _train.stderr
