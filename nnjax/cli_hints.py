"""The hints a usage error of the command line adds, for what argparse reads otherwise than
meant: an unknown option's likely spelling (:func:`unrecognized`), and a value that starts
with '-' read as an option (:func:`dash_value_hint`). Standard library only."""

import argparse
import re


def dash_value_hint(parser: argparse.ArgumentParser, message: str) -> str:
    """For argparse's "argument --lr: expected one argument" when the value given starts with
    '-' and is no option (``--lr -inf``, ``--lr -1e-3``: argparse reads it as an option): the
    value and how to give it, ``; got '-inf', read as an option: write --lr=-inf``; else ''."""
    match = re.match(r"argument (\S+): expected (?:one|at least one) argument$", message)
    if match is None:
        return ""
    argv = getattr(parser, "argv", None) or []
    names = match.group(1).split("/")
    for token, value in zip(argv, argv[1:]):
        if token in names and value.startswith("-") and value != "--":
            if value.split("=", 1)[0] not in parser._option_string_actions:
                return f"; got {value!r}, read as an option: write {token}={value}"
    return ""


def unrecognized(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """argparse's "unrecognized arguments: ..." and, for each unknown option, the one of
    ``parser`` it most likely means: a close spelling (``--batchsize``: ``--batch-size``) or
    the option named by its words' initials (``--learning-rate``: ``--lr``); for a value that
    starts with '-' after an option taking one (``--resume -inf``), how to give it."""
    import difflib

    known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    hints = []
    argv = getattr(parser, "argv", None) or []
    with_value = [o for a in parser._actions if a.nargs != 0 for o in a.option_strings]
    for token in extra:
        name = token.split("=", 1)[0]
        before = [a for a, b in zip(argv, argv[1:]) if b == token and a in with_value]
        if name.startswith("-") and not name.startswith("--") and before:  # --resume -inf
            hints.append(f"{token}: a value that starts with '-' is written {before[0]}={token}")
        if not name.startswith("--") or name in known:
            continue
        initials = "--" + "".join(w[:1] for w in name[2:].replace("_", "-").split("-"))
        close = difflib.get_close_matches(name.replace("_", "-"), known, n=1, cutoff=0.75)
        meant = close or [o for o in known if o == initials and len(initials) > 3]
        if meant:
            hints.append(f"{name}: did you mean {meant[0]}?")
    return f"unrecognized arguments: {' '.join(extra)}" + "".join(f"; {h}" for h in hints)
