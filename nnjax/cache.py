"""JAX's persistent compilation cache for the ``nnjax`` command.

Compiled XLA programs are written to a folder and reused by the next process that compiles
the same program (same shapes, dtypes, flags, jax/jaxlib version and device), so a repeated
``nnjax train`` loads its executables instead of compiling them. The CLI turns it on for every
command (``nnjax bench`` excepted: it times compilation); library users opt in with
:func:`enable_compilation_cache`.

Where the cache lives, first rule that applies:

1. ``--no-cache`` turns it off; ``--cache-dir DIR`` puts it in DIR;
2. the environment variable ``NNJAX_CACHE_DIR``: a folder, or ``off`` to turn it off;
3. JAX's own settings, when the user made them: ``JAX_COMPILATION_CACHE_DIR`` is kept (a
   URL such as ``gs://bucket/cache`` too: no local folder is made for it), and
   ``JAX_ENABLE_COMPILATION_CACHE=false`` (or any of JAX's false words: ``0``, ``f``, ``n``,
   ``no``, ``off``, any case) keeps the cache off;
4. ``$XDG_CACHE_HOME/nnjax/jax-cache``, ``~/.cache/nnjax/jax-cache`` without XDG_CACHE_HOME
   (or with a relative one, which the XDG Base Directory rules say to ignore).

In a folder nnjax chose (rules 1, 2 and 4) the programs go in a subfolder named for this
machine's processor (``x86_64-d4e990987989``: :func:`nnjax._host.cpu_tag`). XLA compiles for
the instruction set of the processor it runs on, and JAX's cache key does not say which one:
a cache shared by two machines (a home folder mounted on a cluster's nodes) would hand an
AVX-512 program to a processor without AVX-512, which JAX loads with only a logged error
("Target machine feature ... is not supported on the host machine") and runs into SIGILL
(jax 0.10.2). Each processor has its own subfolder, so such machines can share the folder.
A folder set through JAX's own settings (rule 3) is used as JAX uses it.

Every program is cached, however small or quick to compile (JAX's defaults keep only
programs that took over a second to compile); ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``
and ``JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES`` still override that. The folder grows
without bound (JAX's default: a size cap, ``jax_compilation_cache_max_size``, needs the
``filelock`` package); an entry of a small program is tens of kilobytes, and deleting the
folder is always safe.

JAX reads and writes the entries itself, in place, and never replaces one that exists: an
entry cut short (a full disk, a run killed while JAX wrote it) made JAX warn "Error reading
persistent compilation cache entry" and compile afresh on every later run, for good. nnjax
repairs that: turning the cache on removes the entries of zero bytes a full disk leaves
(:func:`remove_empty_entries`), and :func:`cache_warning` (the CLI passes every warning
through it) removes an entry JAX could not read (cut short, or decompressing to something JAX
cannot parse), so the next run writes it whole, and says a failing write once per process
instead of once per program (a full disk: 17 lines for one default ``nnjax train``); in the
CLI a damaged entry is said once per process too. A home folder that does not exist is not
made (the cache is off), nor is a folder whose name XLA cannot take (not text here).

``fit`` also keeps its compiled loop, whole, in the cache's ``nnjax-programs`` subfolder,
so that a repeated run skips tracing and lowering too (:mod:`nnjax.train.executables`).

This module imports JAX only inside :func:`enable_compilation_cache`.
"""

import errno
import os
import re
import sys

from nnjax import _host

ENV_VAR = "NNJAX_CACHE_DIR"
OFF = "off"
_active: str | None = None  # the folder enable_compilation_cache turned on, in this process
_unusable: str | None = None  # why the last enable_compilation_cache turned the cache off


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/nnjax/jax-cache``, or ``~/.cache/nnjax/jax-cache`` when
    XDG_CACHE_HOME is unset, empty or relative (the XDG Base Directory rule: a relative path
    there is invalid and ignored; it made the cache a folder of the current one)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nnjax", "jax-cache")


def resolve_cache_dir(cache_dir: str | None = None, *, no_cache: bool = False) -> str | None:
    """The folder the cache will use (rules 1, 2 and 4 above), or None when it is off.

    Returns ``""`` when JAX's own settings decide (rule 3); :func:`enable_compilation_cache`
    then reads them. Reads only the environment: no JAX."""
    if no_cache:
        return None
    if cache_dir:
        return os.path.abspath(os.path.expanduser(cache_dir))
    env = os.environ.get(ENV_VAR, "").strip()
    if env.lower() == OFF:
        return None
    if env:
        return os.path.abspath(os.path.expanduser(env))
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or _jax_cache_turned_off_by_env():
        return ""
    return default_cache_dir()


# the words JAX reads as false in a boolean variable (jax._src.config.bool_env)
_JAX_FALSE = ("n", "no", "f", "false", "off", "0")


def _jax_cache_turned_off_by_env() -> bool:
    """Whether JAX_ENABLE_COMPILATION_CACHE turns JAX's cache off, in any of JAX's spellings
    (``no`` and ``off`` were taken for "on": nnjax turned the cache on in its own folder)."""
    return os.environ.get("JAX_ENABLE_COMPILATION_CACHE", "").strip().lower() in _JAX_FALSE


def enable_compilation_cache(cache_dir: str | None = None, *, no_cache: bool = False):
    """Turn JAX's persistent compilation cache on (in ``cache_dir``, see the rules above) or
    off (``no_cache=True``) for this process; returns the folder in use (this processor's
    subfolder of the one chosen), or None when off.

    Call it before the first compilation: JAX opens the cache once per process. The folder is
    created here, so a location where it cannot be made fails now with an ``OSError`` naming
    it; the cache is then off (JAX's own setting too: it would try the folder at each
    compile), and :func:`state` says why. A folder that exists but refuses writes (read-only)
    stays on: what it holds is still read, and the first failing write is said once
    (:func:`cache_warning`)."""
    import jax

    global _active, _unusable
    _active, _unusable = None, None
    try:
        return _enable(cache_dir, no_cache)
    except OSError as e:
        from nnjax.errors import describe

        jax.config.update("jax_enable_compilation_cache", False)
        _unusable = describe(e)
        raise


def _enable(cache_dir: str | None, no_cache: bool) -> str | None:
    """:func:`enable_compilation_cache`'s work: the folder found, checked, made and set."""
    import jax

    path = resolve_cache_dir(cache_dir, no_cache=no_cache)
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    if path == "":  # the user's JAX settings decide
        if not jax.config.jax_enable_compilation_cache:
            return None
        path = jax.config.jax_compilation_cache_dir
        _check_utf8(path or "")
        if path and _URL.match(path):  # gs://bucket/...: JAX's to reach, no local folder to make
            return _turn_on(path)
    else:  # a folder nnjax chose: one subfolder per processor (module docstring)
        if not cache_dir and not os.environ.get(ENV_VAR, "").strip():
            _check_home()  # rule 4
        _check_folder(path)
        path = os.path.join(path, _host.cpu_tag())
    _check_folder(path)
    os.makedirs(path, exist_ok=True)
    path = _turn_on(path)
    remove_empty_entries(path)
    return path


# a folder named by a URL (gs://bucket/cache), which JAX's cache reaches through etils
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _turn_on(path: str) -> str:
    """JAX's cache on in ``path``, every program kept (module docstring); returns ``path``."""
    import jax

    global _active
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    # cache every program: a small CLI run compiles many programs of well under a second
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no minimum
    _active = path
    _reported.clear()
    return path


def _check_home() -> None:
    """Refuse the default folder under ``~`` when the home folder does not exist (``HOME``
    pointing nowhere, as Debian's ``/nonexistent`` for service users): making the cache made
    the home folder itself, which such a setting says must not exist (an ``$XDG_CACHE_HOME``
    that is absolute is made, as the XDG rules ask)."""
    if os.path.isabs(os.environ.get("XDG_CACHE_HOME", "")):
        return
    home = os.path.expanduser("~")
    if not os.path.isdir(home):
        raise FileNotFoundError(
            errno.ENOENT,
            f"the home folder {home} does not exist, and nnjax does not make it (set "
            f"{ENV_VAR} or XDG_CACHE_HOME, or give --no-cache)",
        )


def _check_utf8(path: str) -> None:
    """Refuse a folder whose name is not UTF-8 (``--cache-dir $'caf\\xe9'``, or any non-ASCII
    name in the C locale without UTF-8 mode): Python holds its bytes as lone surrogates, which
    JAX hands to XLA as the GPU autotuning cache's folder, and the first compilation failed
    with a TypeError from XLA's DebugOptions (a traceback, exit 1), on every device."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise OSError(
            errno.EILSEQ,
            f"the folder name {os.fsencode(path)!r} does not decode in this locale's "
            f"encoding ({sys.getfilesystemencoding()}), and XLA takes names as text; give a "
            f"folder named in ASCII (--cache-dir, {ENV_VAR})",
        ) from None


def _check_folder(path: str) -> None:
    _check_utf8(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, "a file, not a directory", path)


def state() -> str:
    """The cache as ``nnjax info`` shows it: the folder JAX uses, or ``off``, with the reason
    when :func:`enable_compilation_cache` could not use the folder it was given."""
    import jax

    if _unusable is not None:
        return f"off (unusable: {_unusable})"
    on = jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir
    return jax.config.jax_compilation_cache_dir if on else OFF


def active_dir() -> str | None:
    """The folder :func:`enable_compilation_cache` turned on in this process, or None. ``fit``
    keeps its compiled loops in its ``nnjax-programs`` subfolder
    (:mod:`nnjax.train.executables`), which skips tracing as well."""
    return _active


# JAX's entries: <module name>-<64 hex digits>-cache, zlib (or zstd) compressed
_ENTRY = re.compile(r"(?P<module>.+)-[0-9a-f]{64}-cache")
_READ_ERROR = re.compile(
    r"Error reading persistent compilation cache entry for '(?P<module>[^']+)'"
    r"(?:: (?P<reason>.*))?"
)
_WRITE_ERROR = "Error writing persistent compilation cache entry"
_reported: set[str] = set()  # the kinds of cache failure said once in this process


def remove_empty_entries(folder: str) -> list[str]:
    """Remove JAX's entries of zero bytes in ``folder`` (a write a full disk refused leaves
    the file empty, and JAX never writes over an entry that exists); returns their names."""
    removed = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if _ENTRY.fullmatch(e.name) and e.is_file() and e.stat().st_size == 0:
                    if _remove(e.path):
                        removed.append(e.name)
    except OSError:
        pass
    return removed


def remove_unreadable_entries(module: str, folder: str | None = None) -> list[str]:
    """Remove the entries of the program ``module`` (e.g. ``jit_nnjax_fit_<key>``, or one
    entry's whole key ``<module>-<64 hex digits>``) in ``folder`` (default: the active one)
    that JAX could not read; returns the names removed (not those a read-only folder, or
    another process, kept).

    Those that do not decompress (cut short) when there are any; else all of ``module``'s
    entries: one that decompresses but does not parse (a damaged zstd frame: zstd keeps no
    checksum by default) cannot be told apart without JAX, and was kept for good, JAX warning
    at every run. Removing an entry is always safe: the next run compiles and writes it."""
    return _remove_unreadable(module, folder or _active)[0]


def _remove_unreadable(module: str, folder: str | None) -> tuple[list[str], bool]:
    """:func:`remove_unreadable_entries`'s work; also whether the names removed are the ones
    cut short (False: all of ``module``'s entries, none of which is)."""
    try:
        names = os.listdir(folder) if folder else []
    except OSError:
        return [], False
    ours = [n for n in names if n == f"{module}-cache" or _module_of(n) == module]
    cut = [name for name in ours if not _decompresses(os.path.join(folder, name))]
    removed = [name for name in cut or ours if _remove(os.path.join(folder, name))]
    return removed, bool(cut)


def _module_of(name: str) -> str | None:
    m = _ENTRY.fullmatch(name)
    return m["module"] if m else None


def _decompressors():
    """The decompressors JAX may have written an entry with: zlib, zstd (Python 3.14's
    ``compression.zstd``, which JAX prefers, or the ``zstandard`` package)."""
    import zlib

    found = [(zlib.decompress, zlib.error)]
    try:
        from compression import zstd

        found.append((zstd.decompress, zstd.ZstdError))
    except ImportError:
        pass
    try:
        import zstandard

        found.append((zstandard.ZstdDecompressor().decompress, zstandard.ZstdError))
    except ImportError:
        pass
    return found


def _decompresses(path: str) -> bool:
    """Whether the entry at ``path`` decompresses whole with one of :func:`_decompressors`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return True  # gone or unreadable here: not ours to judge
    for decompress, error in _decompressors():
        try:
            decompress(data)
            return True
        except error:
            pass
    return False


def _remove(path: str) -> bool:
    """Remove the file at ``path``; whether it went (a folder, a read-only one: kept)."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def cache_warning(text: str, *, once: bool = False) -> str | None:
    """What to say for the warning ``text``: itself, unless it is one of JAX's cache warnings.

    * "Error reading ... entry for 'M'": the entries of ``M`` that are cut short are removed
      (the next run writes them whole), or all of them when none is
      (:func:`remove_unreadable_entries`); the line says so.
    * "Error writing ... entry": said once per process (a full disk fails every program's
      write), with the folder; later ones return None (say nothing).

    ``once`` (the CLI): a damaged entry, JAX's or nnjax's own stored program
    (:mod:`nnjax.train.executables`), is said once per process too, later ones healed without
    a word: a damaged cache folder (a disk error, a bad copy) gave one line per program, 21
    lines of ~300 characters for one ``nnjax train --dataset xor``."""
    m = _READ_ERROR.search(text)
    line = _healed(m) if m else None
    if line is None and once and STORED_UNREADABLE in text:
        line = text  # nnjax's own store: compiled afresh, and stored whole again
    if line is None:
        return write_failure(_active, text.split(": ", 1)[-1]) if _WRITE_ERROR in text else text
    if not once:
        return line
    if "read" in _reported:
        return None
    _reported.add("read")
    return f"{line} (further damaged entries are removed and compiled afresh without a word)"


# how nnjax.train.executables says a stored program it could not load
STORED_UNREADABLE = ": unreadable stored program, compiling afresh"


def _healed(m: re.Match) -> str | None:
    """The line for JAX's "Error reading" warning ``m``, its entries removed; None when none
    was removed."""
    removed, cut = _remove_unreadable(m["module"], _active)
    why = m["reason"] or "JAX could not load it"
    if not removed:
        return None  # none there, or none that could go: JAX's own line is said
    if cut:
        return (
            f"compilation cache: {', '.join(removed)} in {_active} was cut short (a full "
            "disk, or a run killed while writing it): removed, compiled afresh"
        )
    if len(removed) == 1:
        return (
            f"compilation cache: {removed[0]} in {_active} could not be read (damaged: "
            f"{why}): removed, compiled afresh"
        )
    return (
        f"compilation cache: an entry of {m['module']} in {_active} could not be read "
        f"(damaged: {why}): its {len(removed)} entries removed, compiled afresh"
    )


def write_failure(folder, reason: str) -> str | None:
    """The line for a failed write of a compiled program into ``folder`` (JAX's cache or
    nnjax's own store, :mod:`nnjax.train.executables`): said once per process, as a full disk
    fails every write; later calls return None (say nothing)."""
    if "write" in _reported:
        return None
    _reported.add("write")
    return (
        f"compilation cache: could not save compiled programs in {folder} ({reason}); the "
        "run goes on (further failures of this kind are not repeated)"
    )
