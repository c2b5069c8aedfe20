"""``nnjax train --out`` on a disk that is full, or fills while the model trains.

* :func:`check_out_space`: before training, a ``--out`` whose file system has fewer free
  bytes than the model's params and state is refused (an ``OSError`` ENOSPC: exit 3) naming
  the folder and both sizes. That many bytes is a lower bound of what the run writes: the
  saved ``params.npz`` (and ``state.npz``) hold every leaf uncompressed.
* :func:`write_or_rescue`: when writing ``--out`` fails after training (the disk filled
  meanwhile, a quota, the folder made read-only or removed), the same files are written to
  a new folder under the temporary directory (``tempfile.gettempdir()``) and the error
  names it, so that a trained model is not lost to a full disk. Where that fails too, the
  new folder is removed and the first error is raised as it was.

Imports nothing heavy at the top.
"""

import errno
import shutil
import tempfile
from collections.abc import Callable

RESCUE_PREFIX = "nnjax-train-unsaved-"


def model_bytes(*trees) -> int:
    """The bytes of every leaf of ``trees`` (params, state), as a saved model stores them."""
    import jax

    from nnjax.preflight import _leaf_bytes

    return sum(_leaf_bytes(leaf) for tree in trees for leaf in jax.tree.leaves(tree))


def check_out_space(out: str | None, *trees) -> None:
    """Refuse, before training, an ``out`` (or its nearest existing parent) on a file system
    with fewer free bytes than :func:`model_bytes` of ``trees``; no check without ``out``."""
    if out is None:
        return
    from nnjax.preflight import check_free_space

    short = check_free_space(out, model_bytes(*trees), "--out")
    if short is not None:
        raise _error(
            errno.ENOSPC,
            f"{short} for the model alone; free some space or choose another --out "
            "(checked before training)",
        )


def write_or_rescue(out: str, write: Callable[[str], list[str]]) -> list[str]:
    """``write(out)``; where it raises an ``OSError``, ``write(rescue)`` into a new folder
    ``<tmp>/nnjax-train-unsaved-XXXX`` and an ``OSError`` (the first one's text, its errno
    named there) saying where the files are. Returns what ``write(out)`` returns."""
    try:
        return write(out)
    except OSError as first:
        from nnjax.errors import describe_os_error

        rescue = _rescued(write)
        if rescue is None:
            raise
        raise _error(  # no errno: the first error's text already ends with it
            None,
            f"{describe_os_error(first)}; the trained model and the run's files were written "
            f"to {rescue}/ instead (a temporary folder: move it where it belongs; "
            f"'nnjax predict {rescue} --data FILE' uses it as it is)",
        ) from None


def _rescued(write: Callable[[str], list[str]]) -> str | None:
    """The new temporary folder ``write`` filled, or None (nothing left behind)."""
    try:
        rescue = tempfile.mkdtemp(prefix=RESCUE_PREFIX)
    except OSError:
        return None
    try:
        write(rescue)
    except (OSError, ValueError):
        shutil.rmtree(rescue, ignore_errors=True)
        return None
    return rescue  # mode 0700, as mkdtemp makes it: private in a shared temporary folder


def _error(code: int | None, text: str) -> OSError:
    """An ``OSError`` whose message is ``text`` and whose ``errno`` is ``code`` (the CLI
    prints ``text (errno N, NAME)``, or ``text`` for None, and exits 3)."""
    err = OSError(text)
    err.errno = code
    return err
