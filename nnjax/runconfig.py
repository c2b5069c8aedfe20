"""The run configuration a resume must share with the run that wrote the checkpoint.

A configuration is a JSON-able dict, nested dicts allowed (``{"optimizer": {"name": "adam",
"learning_rate": 1e-3}, "loss": ..., "dtype": "float32", "devices": 1, ...}``); a field is
named by its dotted path (``optimizer.learning_rate``).

* :func:`config_diff` lists the fields that differ, old and new;
* :func:`check_config` raises :class:`ConfigMismatchError` naming each of them;
* :func:`parse_overrides` and :func:`apply_overrides` implement the deliberate change
  (``--override optimizer.learning_rate=1e-4``): the saved configuration with those fields
  replaced, unknown fields refused with the list of valid ones.

Standard library only.
"""

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


MISSING = _Missing()  # the value of a field that one side lacks


def flatten_config(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``{"a.b": 1, "c": 2}`` (an empty dict stays a leaf)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = value
    return out


def _normal(v):
    """A value as it reads back from JSON: tuples become lists."""
    if isinstance(v, tuple | list):
        return [_normal(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _normal(x) for k, x in v.items()}
    return v


def _same(a, b) -> bool:
    """Equal as :func:`config_diff` says, at any depth: inside a list too (``[nan]`` was
    unequal to ``[nan]`` and ``[True]`` equal to ``[1]``, Python's list ``==``)."""
    a, b = _normal(a), _normal(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):  # True == 1 in Python, not here
        return False
    return a == b


def _ignored(name: str, ignore: Iterable[str]) -> bool:
    return any(name == i or name.startswith(i + ".") for i in ignore)


def config_diff(saved: Mapping, current: Mapping, *, ignore=()) -> list[tuple[str, Any, Any]]:
    """``[(field, old, new), ...]`` for every dotted field whose value differs between
    ``saved`` and ``current``, in sorted field order; a field only one side has is shown
    as :data:`MISSING` on the other. Tuples equal lists (JSON has only lists), ``1 == 1.0``,
    ``True != 1``, nan equals nan, inside lists too. ``ignore``: fields (or prefixes of
    them) to skip.
    """
    old, new = flatten_config(saved), flatten_config(current)
    diffs = []
    for name in sorted(old.keys() | new.keys()):
        if _ignored(name, ignore):
            continue
        a, b = old.get(name, MISSING), new.get(name, MISSING)
        if not _same(a, b):
            diffs.append((name, a, b))
    return diffs


def _shown(value) -> str:
    """``value`` as typed on a command line: text as is when it reads back as that text."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return json.dumps(_normal(value), separators=(",", ":"))


class ConfigMismatchError(ValueError):
    """A resume whose configuration differs from the checkpoint's. ``diffs``: the
    ``(field, old, new)`` triples of :func:`config_diff`."""

    def __init__(self, diffs: list[tuple[str, Any, Any]], source: str | None = None):
        fields = "; ".join(f"{name}: {old!r} -> {new!r}" for name, old, new in diffs)
        where = f" from {source}" if source else ""
        both = [(name, new) for name, old, new in diffs if MISSING not in (old, new)]
        names = " ".join(f"{name}={_shown(new)}" for name, new in both)
        super().__init__(
            f"cannot resume{where}: the configuration differs (checkpoint -> this run): "
            f"{fields}. Resume with the checkpoint's values, or change them deliberately "
            f"with an override ({names or 'FIELD=VALUE'})"
        )
        self.diffs = diffs
        self.source = source


def check_config(saved: Mapping, current: Mapping, *, ignore=(), source=None) -> None:
    """Raise :class:`ConfigMismatchError` naming every differing field (see
    :func:`config_diff`); ``source`` (e.g. the checkpoint path) is named in the message."""
    diffs = config_diff(saved, current, ignore=ignore)
    if diffs:
        raise ConfigMismatchError(diffs, source)


def parse_value(text: str) -> Any:
    """A command-line value: a JSON literal (``1e-4``, ``3``, ``true``, ``null``,
    ``[64, 32]``, ``"x"``), Python's ``True``/``False``/``None``, else the text itself."""
    words = {"True": True, "False": False, "None": None}
    if text in words:
        return words[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["optimizer.learning_rate=1e-4", "epochs=20"]`` -> ``{field: value}`` (values by
    :func:`parse_value`). A ValueError names an item that is not ``FIELD=VALUE``, and a field
    given twice with different values (the last one silently won)."""
    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected FIELD=VALUE, e.g. epochs=20")
        new = parse_value(value.strip())
        if key in out and not _same(out[key], new):  # as config_diff: True != 1
            raise ValueError(f"override {key} given twice, as {out[key]!r} and {new!r}: give one")
        out[key] = new
    return out


def _coerce(name: str, old, new):
    """``new`` as the type of the field's ``old`` value (int widens to float; a string is
    parsed); a ValueError names the field when it cannot be."""
    if isinstance(new, str) and not isinstance(old, str):
        new = parse_value(new)
    if old is None or new is None or isinstance(old, str) and isinstance(new, str):
        return new
    if isinstance(old, bool) or isinstance(new, bool):
        ok = isinstance(old, bool) and isinstance(new, bool)
    elif isinstance(old, float) and isinstance(new, int):
        return float(new)
    else:
        ok = isinstance(new, type(old)) or isinstance(old, list | tuple) and isinstance(new, list)
    if not ok:
        raise ValueError(
            f"override {name}={new!r}: must be of type {type(old).__name__}, like the "
            f"current value {old!r}"
        )
    return new


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        config[p] = dict(config[p])
        config = config[p]
    config[last] = value


def apply_overrides(config: Mapping, overrides: Mapping[str, Any]) -> dict:
    """A copy of ``config`` with each dotted field of ``overrides`` replaced (``config`` is
    not modified). Values are coerced to the field's type (:func:`_coerce`). A ValueError
    names an unknown field and lists the valid ones."""
    valid = flatten_config(config)
    out = dict(config)
    for name, value in overrides.items():
        if name not in valid:
            raise ValueError(
                f"override {name}: no such field; valid fields: {', '.join(sorted(valid))}"
            )
        _set(out, name, _coerce(name, valid[name], value))
    return out
