"""``nnjax bench``: the benchmark suite (the same entry point as ``python -m benchmarks``).

The suite lives in ``benchmarks/`` of a source checkout and is not installed (a wheel holds
the ``nnjax`` package only; a top-level ``benchmarks`` package would clash with other
projects'). ``nnjax bench`` finds it next to the ``nnjax`` package it runs from, as an
editable install (``pip install -e .``) or a checkout on ``PYTHONPATH`` has it; without a
checkout it fails with one line (exit 2) saying so.
"""

import argparse
import sys
from pathlib import Path

HELP = "run the benchmark suite: results checked against the NumPy twin, then timed"
# the suite times compilation: a persistent cache would make it time a file read
COMPILATION_CACHE = False


def checkout_root() -> Path:
    """The folder holding the ``nnjax`` package this runs from (a checkout's root, when it
    is one)."""
    import nnjax

    return Path(nnjax.__file__).resolve().parent.parent


def suite(root: Path | None = None):
    """``benchmarks.cli`` of the checkout at ``root`` (default :func:`checkout_root`); a
    ``ValueError`` when there is none, or when ``benchmarks`` is another package."""
    import importlib

    root = checkout_root() if root is None else root
    if not (root / "benchmarks" / "cli.py").is_file() or not (root / "pyproject.toml").is_file():
        raise ValueError(
            f"the benchmark suite is not installed (nnjax runs from {root}, not a source "
            "checkout): run it from a checkout, `pip install -e '.[bench]'` then "
            "`nnjax bench` or `python -m benchmarks`"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.cli")
    if Path(module.__file__).resolve().parent.parent != root.resolve():
        raise ValueError(
            f"the module 'benchmarks' is {module.__file__}, not nnjax's suite in "
            f"{root / 'benchmarks'}"
        )
    return module


def add_arguments(parser) -> None:
    # benchmarks.cli names its choices without importing the suite: --help starts no JAX
    try:
        cli = suite()
    except ValueError as e:
        parser.epilog = f"unavailable: {e}"
        _accept_anything(parser, str(e))
        return
    cli.add_arguments(parser)


def _accept_anything(parser, message: str) -> None:
    """Without the suite its options are unknown, and argparse would stop at the first one
    with a misleading "unrecognized arguments": let any command line through (``--help``
    aside) to :func:`check`, which reports ``message`` as the one-line error, exit 2."""
    parse = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        if args and any(a in ("-h", "--help") for a in args):
            return parse(args, namespace)
        namespace = argparse.Namespace() if namespace is None else namespace
        namespace._run, namespace._unavailable = parser.get_default("_run"), message
        return namespace, []

    parser.parse_known_args = parse_known_args


def check(args) -> None:
    if getattr(args, "_unavailable", None):
        raise ValueError(args._unavailable)
    suite().check(args)


def output_folder(args):
    """``--out``, locked for the run by the CLI (a temporary folder when not given; with
    ``--report-from FILE`` and no ``--out``, FILE's folder)."""
    if args.out is None and getattr(args, "report_from", None) is not None:
        return args.report_from.parent
    return args.out


def run(args) -> int:
    return suite().run(args)
