"""The ``nnjax`` command: ``nnjax <command> [options]``; ``nnjax <command> -h`` for each.

Each command lives in ``nnjax/commands/<name>.py`` and defines ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status).
"""

import argparse
import importlib
import importlib.util
import sys

COMMANDS = ("train", "info", "verify", "compare", "bench", "sleep")


def _available():
    for name in COMMANDS:
        if importlib.util.find_spec(f"nnjax.commands.{name}") is not None:
            yield name, importlib.import_module(f"nnjax.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnjax", description="Pure-functional neural networks in JAX."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ValueError as e:  # bad input: a clear message, not a traceback
        print(f"nnjax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
