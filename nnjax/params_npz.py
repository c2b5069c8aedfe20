"""Params to and from ``.npz``: each leaf stored under its pytree path, e.g. ``[1]['W']``.

Written atomically through :func:`nnjax.io.atomic_write_bytes`; read without unpickling.
(Re-exported by :mod:`nnjax.io`, where these functions lived first.)
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

from nnjax.io import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np


def flatten_params(params) -> dict[str, np.ndarray]:
    """{pytree path string: NumPy array} for every leaf of ``params``."""
    import jax
    import numpy as np

    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an (uncompressed) ``.npz`` holding ``arrays``."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def holds_numbers(a) -> bool:
    """Whether the NumPy array ``a`` is one an ``.npz`` stores as numbers and reads back
    without unpickling: not an object, text or structured (record) array; bfloat16 and the
    float8 types (NumPy kind "V" too, but not ``np.void``) are numbers."""
    import numpy as np

    return a.dtype.kind not in "OUS" and a.dtype.type is not np.void


def save_params(path, params) -> None:
    """Write ``params`` to ``path`` (.npz) atomically: a temporary file, fsync, then rename.

    Every leaf must be an array of numbers: a Python object would be pickled (and
    :func:`load_params`, which never unpickles, could not read it back), a string would
    come back as text; such a leaf is a ``ValueError`` naming it, before the disk."""
    arrays = flatten_params(params)
    for name, a in arrays.items():
        if not holds_numbers(a):
            raise ValueError(
                f"io.save_params: params{name} is not an array of numbers ({a.dtype}); "
                f"{path} can hold only numeric arrays"
            )
    atomic_write_bytes(path, npz_bytes(arrays))


def load_params(path, like):
    """Read params saved by :func:`save_params` into the structure of ``like``.

    Raises ``ValueError`` naming the first missing leaf or mismatched shape.
    """
    import jax
    import numpy as np

    with np.load(os.fspath(path)) as f:
        stored = dict(f)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out = []
    for p, leaf in leaves:
        name = jax.tree_util.keystr(p)
        if name not in stored:
            raise ValueError(f"{path}: no array for params{name}")
        if stored[name].shape != np.shape(leaf):
            raise ValueError(
                f"{path}: params{name} has shape {stored[name].shape}, expected {np.shape(leaf)}"
            )
        out.append(_typed(stored[name], leaf))
    return jax.tree_util.tree_unflatten(treedef, [leaf for leaf in out])


def _typed(stored, leaf):
    """``stored`` as the dtype of ``leaf`` when the ``.npy`` header could not name that dtype
    (bfloat16, the float8 types: NumPy writes them as raw bytes, ``|V2``, and reads them back
    so); any other array as it is."""
    import numpy as np

    want = np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))
    if stored.dtype.type is np.void and stored.dtype.itemsize == want.itemsize:
        return stored.view(want)
    return stored
