"""``nnjax train --out`` on a disk that is full, or fills while the model trains.

* :func:`check_out_space`: before training, a ``--out`` whose file system has fewer free
  bytes than the model's params and state is refused (an ``OSError`` ENOSPC: exit 3) naming
  the folder and both sizes. That many bytes is a lower bound of what the run writes: the
  saved ``params.npz`` (and ``state.npz``) hold every leaf uncompressed.
* when writing ``--out`` fails after training all the same, the trained model is written
  to a temporary folder the error names (:func:`nnjax.rescue.write_or_rescue`).

Imports nothing heavy at the top.
"""

import errno


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
