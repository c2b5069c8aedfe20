"""Checkpoints that survive crashes: a pytree of arrays plus JSON metadata, written atomically.

A checkpoint of step ``s`` in ``directory`` is two files:

* ``ckpt_{s:08d}.npz``: every leaf of the saved pytree under its path string
  (``jax.tree_util.keystr``, e.g. ``['params'][0]['W']``); PRNG key leaves are stored as
  their raw ``key_data`` (uint32) and re-wrapped on restore;
* ``ckpt_{s:08d}.json``: ``{"format", "step", "file", "size", "sha256", "prng_keys",
  "metadata", "meta_sha256"}`` (and ``"dtypes"`` for leaves such as bfloat16, stored as
  unsigned integers of their width) where ``format`` is :data:`FORMAT` (a record of a newer
  format is refused, the message naming it), ``file`` the ``.npz``'s name, ``size`` its
  length in bytes, ``sha256`` the digest of the ``.npz`` bytes and ``meta_sha256`` the
  digest of the JSON's own content (without that field), so a flipped bit in either file
  is detected.

Both are written with :func:`nnjax.io.atomic_write_files`: each in full to a temporary file
and fsync-ed (a full disk fails there, before anything is moved or replaced), then renamed,
the ``.npz`` first and the ``.json`` last, with an fsync of the directory after each: the
JSON is the commit mark. A process killed at any instant leaves either a complete
checkpoint or an ``.npz`` without its JSON, which is ignored (and removed by the next
:func:`save`). A checkpoint whose bytes do not match its digests raises
:class:`CorruptCheckpointError` naming the file; the older checkpoints stay usable and
:func:`latest_valid` finds the newest good one.

One writer per directory: :func:`lock` takes its exclusive lock (:mod:`nnjax.lock`) and
removes the temporary files of killed writers. :func:`save` refuses non-finite float leaves
(:class:`NonFiniteCheckpointError`) and non-finite floats in the metadata (JSON has no nan).
Saving step ``s`` first moves committed checkpoints of step >= s (the abandoned future of a
run resumed from an older one) into a fresh folder ``abandoned/NNNN/``; pruning to ``keep``
counts only checkpoints that verify, moves corrupt ones into a fresh ``corrupt/NNNN/``, and
so never deletes the newest valid checkpoint. Each set-aside event gets its own numbered
folder (0001, 0002, ...): nothing set aside is ever overwritten, and one folder holds one
timeline.

Restoring is exact: arrays come back bit for bit with their dtypes, so a run resumed from a
checkpoint continues exactly where it stopped (see ``fit(..., checkpoint_dir=...)``; what a
``fit`` run saves and how it resumes is :mod:`nnjax.train.checkpoints`).
"""

from nnjax.checkpoint.record import ABANDONED as ABANDONED
from nnjax.checkpoint.record import CORRUPT as CORRUPT
from nnjax.checkpoint.record import FORMAT as FORMAT
from nnjax.checkpoint.record import Checkpoint as Checkpoint
from nnjax.checkpoint.record import CorruptCheckpointError as CorruptCheckpointError
from nnjax.checkpoint.record import NonFiniteCheckpointError as NonFiniteCheckpointError
from nnjax.checkpoint.record import check_metadata as check_metadata
from nnjax.checkpoint.record import npz_path as npz_path
from nnjax.checkpoint.record import steps as steps
from nnjax.checkpoint.store import latest_valid as latest_valid
from nnjax.checkpoint.store import load as load
from nnjax.checkpoint.store import lock as lock
from nnjax.checkpoint.store import restore as restore
from nnjax.checkpoint.store import save as save
from nnjax.checkpoint.store import unflatten as unflatten
from nnjax.lock import DirectoryLock as DirectoryLock
from nnjax.lock import DirectoryLockedError as DirectoryLockedError
from nnjax.lock import StaleLockWarning as StaleLockWarning
