"""The ``nnjax`` command: ``nnjax [global options] <command> [options]``.

Each command lives in ``nnjax/commands/<name>.py`` and defines ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status); optionally
``check(args)``, the checks across options that run before JAX starts (raise ``ValueError``),
``output_folder(args)``, the folder the run writes (locked for the run: a second run into it
fails at once, exit 3, instead of mixing its files with this one's), and
``COMPILATION_CACHE = False`` to run without the persistent compilation cache. A command
module imports only the standard library and light nnjax modules at the top and in
``add_arguments``: JAX, Optax, Flax, matplotlib and rich are imported inside ``run``, so that
``nnjax --help``, ``nnjax <command> --help`` and every usage error answer at once.

Only the chosen command's arguments are built. Every expected failure is reported by
:func:`main` as one line ``nnjax <command>: error: ...`` with the exit status of
:mod:`nnjax.errors` (2 usage, 3 I/O, 4 divergence, 128 + N on signal N); ``--debug`` shows
the traceback instead. Status 1 is no failure of the command but its verdict: ``verify``
and ``bench`` found a result that disagrees with the NumPy twin.
"""

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from nnjax.cli_exit import exit_with
from nnjax.cli_hints import dash_value_hint, unrecognized
from nnjax.cli_stdout import (
    is_stdout_error,
    reader_left,
    stderr_best_effort,
    stdout_gone,
    stdout_named,
)
from nnjax.commands.options import HelpFormatter, expand_home

COMMANDS = ("train", "predict", "info", "verify", "compare", "bench", "sleep", "night")
_GLOBAL_WITH_VALUE = ("--cache-dir",)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``<prog>: error: ...``, exit 2."""

    argv: list[str] | None = None  # the command line (build_parser), for dash_value_hint

    def error(self, message):
        message += dash_value_hint(self, message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _get_values(self, action, arg_strings):
        """argparse's, but ``--lr=--`` hands the option the value '--', checked by its type
        and choices: Python 3.11's argparse dropped it, storing [] unchecked (a traceback, or
        ``--dataset=--`` silently the default) or, for ``--resume=--``, the bare option's."""
        if action.option_strings and action.nargs in (None, "?") and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)

    def _print_message(self, message, file=None):
        """argparse's, which drops every ``OSError``: ``--help`` into a full disk exited 0
        having written nothing. A failed write to stdout is raised (:func:`main` reports it);
        one to stderr, or a reader that left, stays quiet as before."""
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
        except (AttributeError, BrokenPipeError):
            pass
        except OSError:
            if file is sys.stdout:
                raise


class _Version(argparse.Action):
    """``--version``: nnjax's version and, read from the installed metadata, JAX's."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, **kw):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        import nnjax

        parts = []
        for dist in ("jax", "jaxlib", "optax"):
            try:
                parts.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                parts.append(f"{dist} not installed")
        py = ".".join(map(str, sys.version_info[:3]))
        print(f"nnjax {nnjax.__version__} ({', '.join(parts)}, python {py})")
        parser.exit(0)


def _add_global_options(p: argparse.ArgumentParser, *, top: bool, cache: bool = True) -> None:
    """The options of every command. Given after the command they override those before it;
    there their defaults are suppressed so they do not hide the values given before.
    ``cache`` False: the command runs without the compilation cache (``COMPILATION_CACHE``),
    and its help says so rather than name a cache folder it never uses."""
    group = p.add_argument_group("global options")

    def default(value):
        return value if top else argparse.SUPPRESS

    if top:
        group.add_argument("--version", action=_Version, help="print the versions and exit")
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the traceback of a failure instead of one line",
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        type=_folder_path,
        default=default(None),
        help="JAX's persistent compilation cache folder, with one subfolder per processor "
        + (
            "(default: $NNJAX_CACHE_DIR, or $XDG_CACHE_HOME/nnjax/jax-cache, "
            "~/.cache/nnjax/jax-cache)"
            if cache
            else f"(none: {p.prog} always compiles afresh, without the cache; refused here)"
        ),
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        default=default(False),
        help="compile afresh, without the persistent compilation cache (NNJAX_CACHE_DIR=off)"
        + ("" if cache else f"; always so for {p.prog}"),
    )


def _folder_path(text: str) -> str:
    """A type: a folder path, not empty (``--cache-dir ''`` used the default folder)."""
    if not text.strip():
        from nnjax.commands.options import blank_text

        raise argparse.ArgumentTypeError(f"takes a folder path, got {blank_text(text)}")
    return text


def _command_in(argv) -> str | None:
    """The command named in ``argv`` (the first word that is not a global option)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(argv=None) -> Parser:
    """The parser; with ``argv``, only the command named there gets its arguments (so that
    ``nnjax --help`` imports no command's dependencies). Without, every command does."""
    parser = Parser(
        prog="nnjax",
        description="Pure-functional neural networks in JAX.",
        epilog="Run 'nnjax COMMAND --help' for a command's options.\nExit status: 0 success, "
        "1 a result disagrees with the NumPy twin (verify,\nbench), 2 usage error, 3 I/O error, "
        "4 divergence, 128+N stopped by signal N.",
        formatter_class=HelpFormatter,
        allow_abbrev=False,  # the command is found in argv before parsing: no abbreviations
    )
    parser.argv = argv
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = sub.choices  # name -> the command's parser
    chosen = _command_in(argv) if argv is not None else None
    for name in COMMANDS:
        module = importlib.import_module(f"nnjax.commands.{name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=HelpFormatter,
            allow_abbrev=False,  # `train --epoch 2` ran as --epochs 2: a typo taken as meant
        )
        p.argv = argv
        if argv is None or name == chosen:
            module.add_arguments(p)
            _add_global_options(p, top=False, cache=getattr(module, "COMPILATION_CACHE", True))
            p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Run ``nnjax`` on ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Standard output is flushed before it returns, so output that cannot be written (a full
    disk) fails here, as one line naming standard output (exit 3), and not in the
    interpreter's teardown; a command reports it as its own error (:func:`_checked_run`),
    and so does its ``--help`` (``nnjax info: error: ...``, as argparse's usage errors)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    with stdout_named(), stderr_best_effort():
        try:
            code = _parse_and_run(argv)
            if not getattr(sys.stdout, "failed", False):  # else the command has said it
                sys.stdout.flush()
            return code
        except BrokenPipeError:  # `nnjax --help | true`: quietly, as a command's output
            return stdout_gone()
        except OSError as e:
            if not is_stdout_error(e):
                raise
            from nnjax import errors
            from nnjax.terminal import detach_stdout

            detach_stdout()  # what is still buffered must not fail again at exit
            command = _command_in(argv)
            prog = f"nnjax {command}" if command else "nnjax"
            print(f"{prog}: error: {errors.describe(e)}", file=sys.stderr)
            return errors.EXIT_IO


def _parse_and_run(argv: list[str]) -> int:
    parser = build_parser(argv)
    if not argv:  # a bare `nnjax` asks what there is: the help, as `nnjax --help` does
        parser.print_help()
        return 0
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the command's own parser says it, with the option meant where it is clear
            parser.commands[args.command].error(unrecognized(parser.commands[args.command], extra))
    except SystemExit as e:  # --help, --version, a usage error: argparse has printed it
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    args._argv = argv  # the command line as given, e.g. for the command that resumes a run
    expand_home(parser.commands[args.command], args)
    return _run(args)


def _run(args) -> int:
    """The command's checks, the compilation cache, then its run; failures become one line,
    and so do warnings (``--debug``: Python's format)."""
    module = importlib.import_module(f"nnjax.commands.{args.command}")
    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = _warning_line(args.command)
        return _checked_run(module, args)


def _warning_line(command: str):
    """``warnings.showwarning`` as one line ``nnjax <command>: warning: ...`` on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):
        from nnjax.cache import cache_warning

        text = cache_warning(" ".join(str(message).split()), once=True)
        if text is not None:
            print(f"nnjax {command}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def _checked_run(module, args) -> int:
    from nnjax import errors

    try:
        check = getattr(module, "check", None)
        if check is not None:
            check(args)
        _compilation_cache(args, getattr(module, "COMPILATION_CACHE", True))
        from nnjax.cli_signals import signals_unwind

        with signals_unwind(args.command), _folder_lock(module, args):
            code = int(args._run(args) or 0)
        sys.stdout.flush()  # output still buffered fails here, as this command's error
        return code
    except (BrokenPipeError, SystemExit) as exc:  # `nnjax verify | head`: quietly, 141
        if not reader_left(exc):  # SystemExit: only the one a library raised for that
            raise
        return stdout_gone()
    except (Exception, KeyboardInterrupt) as exc:
        if is_stdout_error(exc):  # what is still buffered must not fail again at exit
            from nnjax.terminal import detach_stdout

            detach_stdout()
        code = errors.exit_code(exc)
        if code is None and (platforms := _platforms_error(exc)) is not None:
            exc, code = platforms, errors.EXIT_USAGE
        if code is None:  # not an expected failure: a bug, shown with its traceback
            raise
        if args.debug:
            import traceback

            traceback.print_exc()
        else:
            print(f"nnjax {args.command}: error: {errors.describe(exc)}", file=sys.stderr)
        return code


@contextlib.contextmanager
def _folder_lock(module, args):
    """The lock of the command's output folder, held for the run
    (:func:`nnjax.lock.lock_folder`: the temporary files of killed writers go), or nothing for
    a command that writes none. A run that fails or is stopped by a signal leaves no folder
    it made that is still empty (out of memory before its first file); what a stopped run
    wrote there stays, for the command that continues it."""
    folder = getattr(module, "output_folder", None)
    path = folder(args) if folder is not None else None
    if path is None:
        yield
        return
    from nnjax.lock import lock_folder
    from nnjax.preflight import removing_new_folders

    with removing_new_folders(path), lock_folder(path):  # the lock released before rmdir
        yield


def _compilation_cache(args, allowed: bool) -> None:
    """Turn JAX's persistent compilation cache on, or off (``--no-cache``, or a command that
    must compile afresh); a folder that cannot be made is a warning, and the run goes on. A
    ``--cache-dir`` given to a command that must compile afresh, or with ``--no-cache``, is
    refused: it was ignored."""
    from nnjax import errors
    from nnjax.cache import enable_compilation_cache

    if not allowed and args.cache_dir is not None:
        raise ValueError(
            f"--cache-dir {args.cache_dir}: nnjax {args.command} always compiles afresh, "
            "without the persistent compilation cache (it would not be used); leave it out"
        )
    if args.no_cache and args.cache_dir is not None:  # --cache-dir was ignored silently
        raise ValueError(
            f"--cache-dir {args.cache_dir} and --no-cache contradict each other: give one"
        )
    try:
        enable_compilation_cache(args.cache_dir, no_cache=args.no_cache or not allowed)
    except OSError as e:
        print(
            f"nnjax {args.command}: warning: compilation cache off: {errors.describe(e)}",
            file=sys.stderr,
        )


def _platforms_error(exc: BaseException) -> ValueError | None:
    """After an unexpected failure ``exc`` with ``JAX_PLATFORMS`` set: whether JAX's backends
    start. One naming a backend this install lacks fails in JAX's own words (a bare
    ``AssertionError`` for ``cuda`` without the CUDA plugin) at the first array made; that
    becomes one line naming the variable. None when it is unset or JAX starts. ``exc`` from
    JAX's backend start (``cpu,gpu``: once it has failed, JAX starts the CPU alone and a
    second try succeeds) or a failing retry is the reason."""
    wanted = os.environ.get("JAX_PLATFORMS", "")  # " " is not unset: JAX looks for ' '
    flags = os.environ.get("XLA_FLAGS", "")
    if not wanted and flags and _BACKEND_FAILED in str(exc):  # e.g. a device count of 0
        why = " ".join(str(exc).split())
        return ValueError(f"JAX cannot start its backend ({why}); check XLA_FLAGS={flags!r}")
    if not wanted or "jax" not in sys.modules:
        return None
    if _BACKEND_FAILED in str(exc):
        why = " ".join(str(exc).split())
    else:
        import jax

        try:
            jax.devices()
            return None
        except Exception as e:
            why = " ".join(str(e).split()) or type(e).__name__
    return ValueError(
        f"JAX_PLATFORMS={wanted!r}: JAX cannot start it ({why}); unset JAX_PLATFORMS to "
        "let JAX choose, or install JAX for that backend (e.g. pip install 'jax[cuda12]')"
    )


_BACKEND_FAILED = "Unable to initialize backend"  # jax._src.xla_bridge's words


def entry() -> None:
    """The ``nnjax`` executable: standard streams made safe, signals that end the start-up at
    once (:func:`nnjax.cli_signals.leave_at_once`), :func:`main`, then :func:`exit_with`."""
    from nnjax.cli_signals import leave_at_once
    from nnjax.cli_stdout import reserve_standard_fds

    reserve_standard_fds()
    command = _command_in(sys.argv[1:])
    leave_at_once(f"nnjax {command}" if command else "nnjax")
    exit_with(main())


if __name__ == "__main__":
    entry()
