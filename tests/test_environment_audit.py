"""Audit of the ``nnjax`` command in an unusual process environment: a compilation cache
whose every entry is damaged, two processes filling one empty cache at once, a home folder
that does not exist, and a standard output whose encoding cannot carry the text (a non-ASCII
``--out`` path with ``PYTHONIOENCODING=ascii``). Each CLI run is a fresh process with its own
HOME, XDG_CACHE_HOME and NNJAX_CACHE_DIR under ``tmp_path``: the user's cache is never
touched."""

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from nnjax import _host, cache

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--dataset", "xor", "--epochs", "1"]
JAX_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE", "XDG_CACHE_HOME")
# The CLI process. A train run's two figures are written as 3 bytes each: no test here is
# about them (matplotlib compiles nothing and reads no JAX cache), and drawing them, with
# matplotlib's import and its font cache in each fresh HOME, took about 1.2 s CPU a run.
CODE = (
    "import sys, nnjax.cli; sys.argv[0] = 'nnjax'\n"
    "if sys.argv[1:2] == ['train']:\n"
    "    from nnjax.commands import train_outputs as t\n"
    "    t.loss_png = t.accuracy_png = lambda *a: b'png'\n"
    "nnjax.cli.entry()"
)


def _nnjax(args, home: Path, *, cache_dir=None, stdout=subprocess.PIPE, **env):
    """``nnjax ARGS`` through ``nnjax.cli.entry`` in a fresh process; HOME is ``home``, the
    cache in ``cache_dir`` (default: off), ``env`` added (a value None unsets it)."""
    full = {k: v for k, v in os.environ.items() if k not in JAX_ENV}
    full.update(HOME=str(home), PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    full[cache.ENV_VAR] = "off" if cache_dir is None else str(cache_dir)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return subprocess.run(
        [sys.executable, "-c", CODE, *args], cwd=home.parent, env=full, stdout=stdout,
        stderr=subprocess.PIPE, text=True, timeout=120,
    )  # fmt: skip


def _warnings(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ": warning: " in line]


def _metrics(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("train loss")]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """One ``nnjax train`` on xor that filled an empty cache: (home, cache folder, run)."""
    home = tmp_path_factory.mktemp("env") / "home"
    home.mkdir()
    proc = _nnjax([*TRAIN, "--out", str(home / "out")], home, cache_dir=home / "cache")
    assert proc.returncode == 0, proc.stderr
    return home, home / "cache" / _host.cpu_tag(), proc


# ---------------------------------------------------------------- a damaged cache folder


def test_a_cache_whose_every_entry_is_damaged_heals_in_one_line(filled, tmp_path):
    """Finding: every file of the cache cut in half (a disk error, a bad copy) gave 14 to 21
    warnings of ~300 characters for one `nnjax train --dataset xor` (one per program, and
    nnjax's stored program): now one line; the run's numbers are the first run's, and the
    next run, served whole again, says nothing."""
    home, folder, first = filled
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    second = _nnjax([*TRAIN, "--out", str(tmp_path / "a")], home, cache_dir=folder.parent)
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    assert _metrics(second) == _metrics(first)
    (line,) = _warnings(second)
    assert str(folder) in line and line.endswith("compiled afresh without a word)"), line
    third = _nnjax([*TRAIN, "--out", str(tmp_path / "b")], home, cache_dir=folder.parent)
    assert third.returncode == 0 and _warnings(third) == [], third.stderr
    assert _metrics(third) == _metrics(first)


@pytest.fixture
def active(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_active", str(tmp_path))
    monkeypatch.setattr(cache, "_reported", set())
    return tmp_path


READ = "Error reading persistent compilation cache entry for '{}': error: Error -5"


def test_damaged_entries_are_said_once_per_process_with_once(active):
    """``cache_warning(..., once=True)`` (the CLI's): the first damaged entry is said, with
    a note that later ones are not; each is still removed. Without ``once``, as before."""
    whole = zlib.compress(b"a compiled program" * 100)
    names = []
    for n, module in enumerate(["jit_a", "jit_b", "jit_c"]):
        path = active / f"{module}-{n:064x}-cache"
        path.write_bytes(whole[:20])
        names.append(path.name)
    first = cache.cache_warning(READ.format("jit_a"), once=True)
    assert first.startswith(f"compilation cache: {names[0]} in {active} was cut short")
    assert first.endswith(
        ": removed, compiled afresh (further damaged entries are removed and compiled afresh "
        "without a word)"
    )
    assert cache.cache_warning(READ.format("jit_b"), once=True) is None
    stored = f"{active}/nnjax-programs/ab.xla: unreadable stored program, compiling afresh (x)"
    assert cache.cache_warning(stored, once=True) is None
    assert os.listdir(active) == [names[2]]  # the two said and unsaid both removed
    line = cache.cache_warning(READ.format("jit_c"))  # without once: said, as before
    assert line == (
        f"compilation cache: {names[2]} in {active} was cut short (a full disk, or a run "
        "killed while writing it): removed, compiled afresh"
    )
    assert cache.cache_warning(stored) == stored  # not a JAX warning: itself
    assert cache.cache_warning("other", once=True) == "other"


def test_two_processes_filling_one_empty_cache_agree(filled, tmp_path):
    """Sound: two `nnjax train` started together on one empty cache both succeed, without a
    warning, and save the same parameters as a run alone."""
    home, _, first = filled
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    procs = [
        _popen([*TRAIN, "--out", str(tmp_path / n / "out")], tmp_path / n, tmp_path / "cache")
        for n in ("a", "b")
    ]
    said = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and ": warning: " not in err, err
        assert [x for x in out.splitlines() if x.startswith("train loss")] == _metrics(first)
        said.append(err[-2000:])
    with np.load(home / "out" / "params.npz") as alone:
        for n in ("a", "b"):
            with np.load(tmp_path / n / "out" / "params.npz") as got:
                assert sorted(got) == sorted(alone)
                diff = {k: float(np.max(np.abs(got[k] - alone[k]))) for k in alone}
                assert not any(diff.values()), (n, diff, said, first.stderr[-2000:])


def _popen(args, home: Path, cache_dir: Path) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k not in JAX_ENV}
    full.update(HOME=str(home), PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    full[cache.ENV_VAR] = str(cache_dir)
    return subprocess.Popen(
        [sys.executable, "-c", CODE, *args], cwd=home, env=full, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# ---------------------------------------------------------------- a home that does not exist


@pytest.fixture
def jax_cache_config(monkeypatch):
    """JAX's cache settings and nnjax's record of them, put back after the test (a cache
    left on here was on in the later tests of this process)."""
    import jax

    monkeypatch.setattr(cache, "_active", cache._active)
    monkeypatch.setattr(cache, "_unusable", cache._unusable)
    monkeypatch.setattr(cache, "_reported", set(cache._reported))  # cleared in place
    saved = jax.config.jax_enable_compilation_cache, jax.config.jax_compilation_cache_dir
    yield
    jax.config.update("jax_enable_compilation_cache", saved[0])
    jax.config.update("jax_compilation_cache_dir", saved[1])


def test_the_default_cache_does_not_make_a_missing_home_folder(
    monkeypatch, tmp_path, jax_cache_config
):
    """Finding: HOME=/nonexistent (Debian's home of service users, which must not exist)
    and no XDG_CACHE_HOME: turning the cache on made /nonexistent/.cache/nnjax/..., the home
    folder itself. Now the cache is off, with the reason naming the home folder."""
    for name in (cache.ENV_VAR, *JAX_ENV):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "missing" / "home"
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(FileNotFoundError, match=f"the home folder {home} does not exist"):
        cache.enable_compilation_cache()
    assert not (tmp_path / "missing").exists()
    assert cache.state().startswith(f"off (unusable: the home folder {home} does not exist")
    # an absolute XDG_CACHE_HOME is made, as the XDG rules ask, home or not
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    made = cache.enable_compilation_cache()
    assert made == str(tmp_path / "xdg" / "nnjax" / "jax-cache" / _host.cpu_tag())
    assert os.path.isdir(made) and not (tmp_path / "missing").exists()


def test_info_with_a_missing_home_warns_in_one_line(tmp_path):
    home = tmp_path / "nonexistent"
    proc = _nnjax(["info"], home, cache_dir="", XDG_CACHE_HOME=None)
    assert proc.returncode == 0, proc.stderr
    (line,) = _warnings(proc)
    assert line.startswith(
        f"nnjax info: warning: compilation cache off: the home folder {home} does not exist"
    )
    assert "jax_cache    off (unusable: the home folder" in proc.stdout
    assert not home.exists()


def test_a_cache_folder_not_named_in_text_is_off_in_one_line(tmp_path):
    """Finding: `nnjax train --cache-dir $'caf\\xe9'` (a Latin-1 name in a UTF-8 locale; or
    any non-ASCII name in the C locale without UTF-8 mode): Python holds the name with lone
    surrogates, JAX handed it to XLA's DebugOptions, and the first compilation failed with
    "TypeError: (): incompatible function arguments" (a traceback, exit 1), the same for
    NNJAX_CACHE_DIR and JAX_COMPILATION_CACHE_DIR. Now the cache is off, in one line."""
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    proc = _nnjax([*TRAIN, "--out", str(tmp_path / "out"), "--cache-dir", folder], tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = _warnings(proc)
    assert line.startswith(
        f"nnjax train: warning: compilation cache off: the folder name {folder!r} does not "
        "decode in this locale's encoding"
    )
    assert (tmp_path / "out" / "params.npz").is_file() and not os.path.exists(folder)


# ---------------------------------------------------------------- stdout's encoding


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
def test_text_stdout_cannot_encode_is_an_io_error_naming_it(tmp_path, unbuffered):
    """Finding: `nnjax train --out dir-é€` with PYTHONIOENCODING=ascii trained and saved,
    then ended with "nnjax train: error: 'ascii' codec can't encode characters in position
    30-31" and status 2, a usage error. Now: status 3, one line naming standard output, its
    encoding, the characters and the remedy; the files saved are whole."""
    out = tmp_path / "run-é€"
    env = dict(PYTHONIOENCODING="ascii", PYTHONUNBUFFERED=unbuffered)
    proc = _nnjax([*TRAIN, "--out", str(out)], tmp_path / "home", **env)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "nnjax train: error: cannot write standard output: its encoding ascii cannot "
        "represent '\\xe9\\u20ac' (set PYTHONIOENCODING=utf-8, or a UTF-8 locale such as "
        "LANG=C.UTF-8) (errno 84, EILSEQ)"
    )
    with np.load(out / "params.npz") as params:
        assert len(params.files) == 4 and all(np.isfinite(params[k]).all() for k in params)
