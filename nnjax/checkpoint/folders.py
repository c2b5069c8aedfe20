"""The folders a checkpoint directory keeps: checkpoints set aside (an abandoned future,
corrupt files) each in a fresh numbered folder, and pruning to the newest valid ones."""

import os
import warnings

from nnjax._host import file_owner
from nnjax.checkpoint.record import _NAME, ABANDONED, CORRUPT, _Bad, _paths, _verify, steps


def _fresh_folder(parent: str) -> str:
    """A new, empty, numbered folder ``parent/NNNN`` (one more than the highest there)."""
    os.makedirs(parent, exist_ok=True)
    taken = [int(n) for n in os.listdir(parent) if n.isdigit()]
    n = max(taken, default=0) + 1
    while True:
        folder = os.path.join(parent, f"{n:04d}")
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:  # made meanwhile: the next number
            n += 1


def _set_aside(directory: str, set_steps: list[int], sub: str) -> str | None:
    """Move checkpoints ``set_steps`` into a fresh folder ``directory/sub/NNNN/`` (one per
    event: nothing set aside before is overwritten, and one folder is one timeline), each
    JSON first (which uncommits it). Returns the folder (None when there is nothing)."""
    if not set_steps:
        return None
    folder = _fresh_folder(os.path.join(directory, sub))
    for step in set_steps:
        for path in reversed(_paths(directory, step)):
            if os.path.exists(path):
                os.replace(path, os.path.join(folder, os.path.basename(path)))
    return folder


def _remove(directory: str, step: int) -> None:
    """Delete checkpoint ``step``'s files, the JSON first (uncommitted at once). A file this
    user may not delete (another user's, in a shared folder with the sticky bit) is kept
    with a warning naming it, and so is its ``.npz`` (deleting it would leave a committed
    checkpoint without data): pruning is housekeeping, and a run does not die of it."""
    for path in reversed(_paths(directory, step)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except PermissionError as e:
            warnings.warn(
                f"checkpoint: cannot delete {path}, which belongs to {file_owner(path)} "
                f"({e.strerror}): it is left in place",
                stacklevel=2,
            )
            return


def _retire(directory: str, step: int) -> None:
    """Before writing ``step``: set aside the committed checkpoints of step >= ``step`` and
    delete every uncommitted ``.npz`` (a write cut short)."""
    _set_aside(directory, [s for s in steps(directory) if s >= step], ABANDONED)
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m and m.group(2) == "npz" and not os.path.exists(_paths(directory, int(m[1]))[1]):
            _remove(directory, int(m[1]))


def _prune(directory: str, step: int, keep: int | None) -> None:
    """After committing ``step``: walk the older checkpoints newest first; the first
    ``keep - 1`` that verify are kept, the corrupt ones met on the way are moved into a
    fresh ``corrupt/NNNN/`` (never counted), and all older ones are deleted. ``step`` itself
    counts as valid: its digests were computed from the bytes just written and fsync-ed.
    One this user may not delete (another user's) is kept, with a warning (:func:`_remove`);
    corrupt ones that cannot be moved (a full disk refuses the new folder) stay in place,
    with a warning: ``step`` is committed, and a save does not fail on housekeeping (they are
    skipped when loading, and moved by a later save)."""
    if keep is None:
        return
    kept, bad = 1, []
    for s in reversed([s for s in steps(directory) if s < step]):
        if kept >= keep:
            _remove(directory, s)
            continue
        try:
            _verify(*_paths(directory, s))
            kept += 1
        except (_Bad, FileNotFoundError):
            bad.append(s)
    try:
        _set_aside(directory, bad, CORRUPT)
    except OSError as e:
        warnings.warn(
            f"checkpoint: cannot move the corrupt checkpoint(s) of step "
            f"{', '.join(map(str, bad))} into {os.path.join(directory, CORRUPT)} "
            f"({e.strerror or e}): left in place (loading skips them)",
            stacklevel=3,
        )


def _make_room(directory: str, step: int, keep: int | None) -> bool:
    """On a full disk, before committing ``step``: delete now the checkpoints :func:`_prune`
    would delete after it (the same ones remain in the end). Only for ``keep >= 2``, so that
    the newest older checkpoint stays whatever happens next. True when one went."""
    if keep is None or keep < 2:
        return False
    before = steps(directory)
    _prune(directory, step, keep)
    return steps(directory) != before
