"""``nnjax train --out`` on a disk that is full, or fills while the model trains.

* :func:`check_out_space`: before training, a ``--out`` whose file system has fewer free
  bytes than the model's params and state is refused (an ``OSError`` ENOSPC: exit 3) naming
  the folder and both sizes. That many bytes is a lower bound of what the run writes: the
  saved ``params.npz`` (and ``state.npz``) hold every leaf uncompressed.
* when writing ``--out`` fails after training all the same, the trained model is written
  to a temporary folder the error names (:func:`nnjax.rescue.write_or_rescue`).
* :func:`checkpoint_left` and :func:`with_resume`: a full disk at a checkpoint ends the run
  with the newest checkpoint before it and the command that goes on from it.

Imports nothing heavy at the top.
"""

import errno
import os

from nnjax.commands.train_resume import _CHECKPOINT_NAME


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


def _error(code: int | None, text: str) -> OSError:
    """An ``OSError`` whose message is ``text`` and whose ``errno`` is ``code`` (the CLI
    prints ``text (errno N, NAME)``, or ``text`` for None, and exits 3)."""
    err = OSError(text)
    err.errno = code
    return err


def checkpoint_left(folder: str | None, e: OSError) -> tuple[str, bool] | None:
    """The newest checkpoint of ``folder`` (``--checkpoint-dir``) when ``e`` is a full disk
    (ENOSPC, EDQUOT) met writing a file there: the run can go on from it once there is room;
    and whether later ones are there. Where ``e`` names checkpoint s, those of step >= s
    still there are the future of a run resumed from an older checkpoint (the save would have
    set them aside): the newest before s, which the resume must name."""
    from nnjax import checkpoint

    if folder is None or e.errno not in (errno.ENOSPC, errno.EDQUOT) or e.filename is None:
        return None
    if os.path.dirname(os.path.abspath(os.fsdecode(e.filename))) != os.path.abspath(folder):
        return None
    try:
        done = checkpoint.steps(folder)
    except OSError:
        return None
    writing = _CHECKPOINT_NAME.match(os.path.basename(os.fsdecode(e.filename)))
    before = [s for s in done if writing is None or s < int(writing[1])]
    return (checkpoint.npz_path(folder, before[-1]), before != done) if before else None


def with_resume(e: OSError, newest: str, command: str) -> OSError:
    """``e``'s one line, then where the run can go on from and ``command``, the one that
    does (an ``OSError``: exit 3)."""
    from nnjax.errors import describe_os_error

    return _error(
        None,  # the first error's text already names its errno
        f"{describe_os_error(e)}; the run can go on from its newest checkpoint {newest} once "
        f"there is room: {command}",
    )
