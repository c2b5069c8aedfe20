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
    """The bytes of an (uncompressed) ``.npz`` holding ``arrays``. NumPy writes bfloat16 and
    most float8 types as raw bytes (``<V2``, ``<V1``); an array whose ``.npy`` code NumPy
    cannot read back (float8_e5m2's ``'<f1'``, which made a file no NumPy reads) is written
    as raw bytes of its width too."""
    import numpy as np

    buf = io.BytesIO()
    raw = {
        k: a if _readable(a.dtype) else a.view(f"V{a.dtype.itemsize}") for k, a in arrays.items()
    }
    np.savez(buf, **raw)
    return buf.getvalue()


def _readable(dtype) -> bool:
    """Does NumPy read the ``.npy`` header's code for ``dtype`` (``dtype.str``) at all?"""
    import numpy as np

    try:
        np.dtype(dtype.str)
    except TypeError:  # '<f1' (float8_e5m2)
        return False
    return True


def _npy_names(dtype) -> bool:
    """Does the ``.npy`` header's code for ``dtype`` read back as ``dtype`` itself (not for
    ml_dtypes' types: bfloat16 reads back as raw bytes)?"""
    import numpy as np

    return _readable(dtype) and np.dtype(dtype.str) == dtype


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
    come back as text; such a leaf is a ``ValueError`` naming it, before the disk, and so is
    a typed PRNG key (JAX's own TypeError named no leaf)."""
    import jax

    for at, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            raise ValueError(
                f"io.save_params: params{jax.tree_util.keystr(at)} is a PRNG key "
                f"({leaf.dtype}), which {path} cannot hold: save jax.random.key_data(key) "
                "and wrap it back with jax.random.wrap_key_data"
            )
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

    Every leaf of ``like`` must be in the file with its shape and of its kind (floating point,
    in any precision, for a floating leaf; integer, bool or complex likewise), and every array
    of the file must have its place in ``like``; else a ``ValueError`` names the file and the
    first leaf that is not so (an int leaf would truncate, an array left over means the file
    is of another model). A bfloat16 or float8 leaf is stored as raw bytes, which name no
    dtype: ``like``'s leaf gives it (bfloat16 for bfloat16), and one of a dtype the file could
    have named (float16, int8) is a ``ValueError``. A file that is no ``.npz`` of numbers is a
    ``ValueError`` naming it.
    """
    import jax
    import numpy as np

    stored = _read_npz(path)
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
        out.append(_typed(stored[name], leaf, f"{path}: params{name}"))
        if _kind(out[-1].dtype) != _kind(_dtype_of(leaf)):
            raise ValueError(
                f"{path}: params{name} has dtype {out[-1].dtype}, like's leaf is "
                f"{_dtype_of(leaf)} ({_kind(_dtype_of(leaf))})"
            )
    extra = sorted(set(stored) - {jax.tree_util.keystr(p) for p, _ in leaves})
    if extra:
        raise ValueError(
            f"{path}: params{extra[0]} has no place in like ({len(extra)} of the file's arrays "
            "have none): the file holds another model's params"
        )
    return jax.tree_util.tree_unflatten(treedef, out)


def _read_npz(path) -> dict:
    """{name: array} of the ``.npz`` at ``path``, never unpickled; a ValueError names a file
    that is no such archive (a lone ``.npy``, other bytes) or an array that is no numbers."""
    import zipfile

    import numpy as np

    try:
        f = np.load(os.fspath(path), allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        # bytes of neither a zip nor an .npy are taken by NumPy for a pickle
        why = "neither a zip archive nor .npy" if "pickled" in str(e) else str(e)
        raise ValueError(f"{path}: not an .npz archive of params ({why})") from None
    if not hasattr(f, "files"):
        raise ValueError(f"{path}: a single .npy array of shape {f.shape}, not an .npz of params")
    stored = {}
    with f:
        for k in f.files:
            try:
                stored[k] = f[k]
            except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
                why = "an object array, never unpickled" if "allow_pickle" in str(e) else e
                raise ValueError(f"{path}: params{k} cannot be read ({why})") from None
    return stored


def _dtype_of(leaf):
    import numpy as np

    return np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))


def _kind(dtype) -> str:
    """floating (bfloat16 and float8 too), complex, integer, bool, or the dtype itself."""
    import jax.numpy as jnp

    for kind in (jnp.floating, jnp.complexfloating, jnp.integer, jnp.bool_):
        if jnp.issubdtype(dtype, kind):
            return kind.__name__
    return str(dtype)


def _typed(stored, leaf, name: str):
    """``stored`` as the dtype of ``leaf`` when the ``.npy`` header could not name that dtype
    (bfloat16, the float8 types: written as raw bytes, ``|V2``, and read back so); any other
    array as it is. Raw bytes read into a leaf of a dtype the header names (float16, int8)
    are a ``ValueError`` naming them: viewed so, a bfloat16 1.5 read as float16 1.9375."""
    import numpy as np

    want = _dtype_of(leaf)
    if stored.dtype.type is not np.void:
        return stored
    if _npy_names(want) or stored.dtype.itemsize != want.itemsize:
        raise ValueError(
            f"{name} holds raw {stored.dtype.itemsize}-byte values (a dtype the .npy header "
            f"cannot name: bfloat16, a float8 type), and like's leaf is {want}: give like in "
            "the dtype the params were saved in"
        )
    return stored.view(want)
