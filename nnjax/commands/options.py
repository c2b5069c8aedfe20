"""Argument types and help formatting shared by the commands. Imports nothing heavy.

Every type raises ``argparse.ArgumentTypeError`` with a message that says what is valid, so a
bad value ends at parse time, before JAX starts, as one line:
``nnjax train: error: argument --lr: must be a finite number > 0, got 'nan' (see nnjax train
--help)``.
"""

import argparse
import errno
import math
import os

# nnjax.activations.ACTIVATIONS by name (a test keeps the two equal): listed here so that
# `--help` and the checks need no JAX
ACTIVATION_NAMES = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "softplus",
    "gelu",
    "silu",
    "softmax",
    "log_softmax",
)
# normalise across the features: output layers only, never a hidden layer's activation
OUTPUT_ONLY_ACTIVATIONS = ("softmax", "log_softmax")
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATION_NAMES if a not in OUTPUT_ONLY_ACTIVATIONS)

TRAINING_DTYPE = "float32"  # the CLI's params; --lr must be finite in it (nnjax.optim's rule)


def optimizers():
    """``(names, default learning rates or None, full-batch names)`` from :mod:`nnjax.optim`,
    the one place these facts live (importable without JAX)."""
    from nnjax import optim

    return tuple(optim.OPTIMIZERS), dict(optim.DEFAULT_LEARNING_RATE), optim.FULL_BATCH


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to each option whose help does not state its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or any(action.default is v for v in (None, False, argparse.SUPPRESS))
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class StoreGiven(argparse.Action):
    """``store``, and the option's dest added to ``namespace.given``: a check can tell an
    option given on the command line from its default (to refuse one the run would
    ignore)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


def int_at_least(low: int, rule: str | None = None, high: int | None = None):
    """A type: an int ``>= low`` (and ``<= high``, if given); ``rule`` words the requirement
    in the error message."""
    rule = rule or f"must be an integer >= {low}" + ("" if high is None else f" and <= {high}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
SEED_LIMIT = 2**32 - 1  # nnjax.train.order.check_seed's: JAX keeps a seed's low 32 bits


def seed(text: str) -> int:
    """A type: a seed, an int in [0, 2**32 - 1] (JAX keeps a seed's low 32 bits without
    x64: 2**32 + 5 would be the run of seed 5)."""
    value = int_at_least(0, "must be a non-negative integer (seeds start at 0)")(text)
    if value > SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be at most 2**32 - 1 = {SEED_LIMIT} (JAX keeps a seed's low 32 bits: "
            f"it would be seed {value % 2**32}), got {text!r}"
        )
    return value


batch_size = int_at_least(0, "must be an integer >= 1, or 0 for full batch")
# --devices: one process drives its host's devices (8 GPUs a host); on the CPU JAX makes the
# N asked for, before any check can see them: 10**9 of them took 8 GB in 15 s, then more
DEVICE_LIMIT = 1024
device_count = int_at_least(1, high=DEVICE_LIMIT)


def learning_rate(text: str) -> float:
    """A type: a float > 0 that is finite in float32 (1e39 is inf there), by the rule of
    :func:`nnjax.optim.check_learning_rate`."""
    from nnjax import optim

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    try:
        optim.check_learning_rate(value, TRAINING_DTYPE)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("learning_rate ")) from None
    return value


def nonzero_learning_rate(text: str) -> float:
    """A type: :func:`learning_rate`, and not 0 in float32 (1e-50 is: every update would
    be 0; :func:`nnjax.optim_checks.check_rate_nonzero`). ``nnjax compare`` checks its
    rates in its own words, naming the optimizer."""
    from nnjax import optim_checks

    value = learning_rate(text)
    try:
        optim_checks.check_rate_nonzero(value, TRAINING_DTYPE, "the training dtype")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("learning_rate ")) from None
    return value


def fraction(text: str) -> float:
    """A type: a float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def _float_in(text: str, ok, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A type: a finite float >= 0."""
    return _float_in(text, lambda v: v >= 0, "must be a finite number >= 0")


def positive_float(text: str) -> float:
    """A type: a finite float > 0."""
    return _float_in(text, lambda v: v > 0, "must be a finite number > 0")


def fraction_or_zero(text: str) -> float:
    """A type: a float in [0, 1) (0: nothing held out)."""
    return _float_in(text, lambda v: 0 <= v < 1, "must be a number in [0, 1)")


def fraction_or_one(text: str) -> float:
    """A type: a float in (0, 1]."""
    return _float_in(text, lambda v: 0 < v <= 1, "must be a number in (0, 1]")


def dropout_rate(text: str) -> float:
    """A type: a float in [0, 1) (the fraction of units dropped)."""
    return _float_in(text, lambda v: 0 <= v < 1, "must be a rate in [0, 1)")


def finite_float(text: str) -> float:
    """A type: a finite float."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def int_list(low: int, example: str, high: int | None = None, why: str = ""):
    """A type: comma-separated ints in [``low``, ``high``] (``high`` None: no upper bound; ``why``
    says where it comes from), at least one, no empty entry (``64,``)."""
    valid = f">= {low}" if high is None else f"in [{low}, {high}]{why}"

    def parse(text: str) -> list[int]:
        items = [s.strip() for s in text.split(",")]
        try:
            values = [int(s) for s in items]
        except ValueError:  # not an int, or one of more than 4300 digits
            values = None
        if values is None or any(v < low or (high is not None and v > high) for v in values):
            raise argparse.ArgumentTypeError(
                f"takes comma-separated integers {valid} like {example} "
                f"(no empty entry), got {text!r}"
            )
        return values

    parse.__name__ = "int list"
    return parse


_width_list = int_list(1, "64,64")
MAX_HIDDEN_LAYERS = 1000  # each layer is traced and compiled: 100 took 60 s, 30000 never began


def widths(text: str) -> list[int]:
    """A type: hidden widths ``W,W,...``, ints >= 1, at most :data:`MAX_HIDDEN_LAYERS`."""
    values = _width_list(text)
    if len(values) > MAX_HIDDEN_LAYERS:
        raise argparse.ArgumentTypeError(
            f"takes at most {MAX_HIDDEN_LAYERS} widths (one per hidden layer, each compiled: "
            f"30000 layers had not started training after 90 s), got {len(values)} of them"
        )
    return values


def name_list(valid, what: str):
    """A type: comma-separated names from ``valid``, at least one, no repeats."""
    valid = tuple(valid)

    def parse(text: str) -> list[str]:
        names = [s.strip() for s in text.split(",")]
        bad = [n for n in names if n not in valid]
        if bad or len(set(names)) != len(names):
            problem = f"unknown {what} {bad}" if bad else "a name is repeated"
            raise argparse.ArgumentTypeError(
                f"{problem} in {text!r}; valid: {', '.join(valid)} (comma-separated)"
            )
        return names

    parse.__name__ = f"{what} list"
    return parse


def hidden_activation(text: str) -> str:
    """A type: the name of an activation for hidden layers (not softmax/log_softmax)."""
    if text in OUTPUT_ONLY_ACTIVATIONS:
        raise argparse.ArgumentTypeError(
            f"{text} normalises across the features and is an output function, not a hidden "
            f"activation; valid: {', '.join(HIDDEN_ACTIVATIONS)}"
        )
    if text not in HIDDEN_ACTIVATIONS:
        raise argparse.ArgumentTypeError(
            f"unknown activation {text!r}; valid: {', '.join(HIDDEN_ACTIVATIONS)}"
        )
    return text


def choices_help(text: str, names) -> str:
    """``text`` followed by the valid names, for options with a metavar instead of choices."""
    return f"{text}; one of: {', '.join(names)}"


def blank_out_error(path, option: str = "--out", what: str = "a folder path") -> ValueError | None:
    """None unless ``path`` was given blank (``--out ""`` or spaces): then the ValueError
    saying so, ``option`` takes ``what``. Blank, it wrote into a folder named by spaces, or
    failed on the empty path."""
    if path is None or path.strip():
        return None
    return ValueError(f"{option} takes {what}, got {blank_text(path)}")


def blank_text(text: str) -> str:
    """Words for an empty or all-whitespace value, which survive the one-line error's
    squeezing of whitespace (``'   '`` was shown as ``' '``)."""
    if not text:
        return "an empty value ('')"
    return f"only whitespace ({len(text)} character{'s' * (len(text) > 1)})"


def out_parent_error(path, option: str = "--out"):
    """None when ``path`` is an existing folder or can be made as one: its missing parents
    are made with it (as ``nnjax train --out`` makes them). Else the
    :class:`nnjax.errors.PathError` naming ``option``, the path and what is wrong: it is a
    file or a link to nothing, or the nearest existing path on its way is a file or a link
    to nothing (it failed only when the output folder was made, in the system's words,
    without the option; a link to nothing on its way was called a file)."""
    from nnjax.errors import PathError, broken_link, not_a_folder

    if (error := not_a_folder(path, option)) is not None or os.path.isdir(path):
        return error
    above = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if os.path.isdir(above):
        return None
    what, code = broken_link(above) or ("is a file, not a folder", errno.ENOTDIR)
    return PathError(f"{option} {path}: {above} on its way {what}; give a folder path", path, code)


def probe_writable(path, option: str = "--out") -> None:
    """:func:`nnjax.preflight.check_writable` on ``path`` (raises ``NotWritableError``), then
    remove the folders the probe made (``path`` and its missing parents, deepest first),
    whether it failed or not: the run makes them again when it writes, and a run refused
    or failing before that leaves no empty folder behind."""
    from nnjax.preflight import check_writable, removing_new_folders

    with removing_new_folders(path, keep=False):
        check_writable(path, option)


def out_kept_error(out, command: str, writes, removes=(), overwrite: bool = False, where=None):
    """None when ``overwrite`` is given, or when the folder ``out`` holds none of the files
    named ``writes`` (those ``command`` writes there, replacing a file of the name) and
    ``removes`` (its own names it removes there, e.g. the figures a run no longer draws);
    else the ValueError (exit 2) naming the folder, the files found and ``--overwrite``.
    A name is found whatever it is (a link, even a dangling one, or a folder): nothing the
    user saved under a name the command uses is lost without ``--overwrite``, whether an
    earlier run of the command wrote it or the user did (``nnjax train``'s rule,
    :func:`nnjax.commands.train_safety.check_saved_model_kept`). ``where`` names the folder
    in the message (default ``--out OUT``). A check: reads only."""
    if overwrite or out is None:
        return None
    replaced, removed = ([n for n in names if os.path.lexists(os.path.join(out, n))]
                         for names in (writes, removes))  # fmt: skip
    if not replaced and not removed:
        return None
    found = replaced + removed
    what = []
    if replaced:
        what.append(f"{', '.join(replaced)}, which nnjax {command} would replace with its own")
    if removed:
        who = f"nnjax {command}" if not replaced else "it"
        what.append(f"{', '.join(removed)}, which {who} would remove")
    verb = " and ".join(v for v, names in (("replace", replaced), ("remove", removed)) if names)
    return ValueError(
        f"{where or f'--out {out}'} already holds {', and '.join(what)}: add --overwrite to {verb} "
        f"{'it' if len(found) == 1 else 'them'}, or choose another --out"
    )


_PATH_METAVARS = ("DIR", "FILE", "CKPT")


def expand_home(command: argparse.ArgumentParser, args) -> None:
    """``~`` and ``~user`` at the start of every path option (metavar DIR, FILE, CKPT, and
    predict's MODEL) are expanded, as the shell expands them unquoted: ``--out=~/runs`` (no
    shell expands a tilde after ``=``) made a folder named ``~`` in the current one, which
    a later ``rm -rf ~`` would take for the home folder."""
    for action in command._actions:
        is_path = action.metavar in _PATH_METAVARS or (
            action.dest == "model" and action.metavar == "MODEL"
        )
        value = getattr(args, action.dest, None)
        if is_path and isinstance(value, str | os.PathLike):
            text = os.fspath(value)
            if text.startswith("~"):
                expanded = os.path.expanduser(text)
                setattr(args, action.dest, type(value)(expanded))  # a str, or bench's Path
