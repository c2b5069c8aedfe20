"""A pytree as named NumPy arrays and back: the layout a checkpoint stores.

Each leaf is named by its path string (``jax.tree_util.keystr``, e.g. ``['params'][0]['W']``).
PRNG key leaves become their raw ``key_data`` (uint32) with their implementation's name kept
aside, and come back as keys of that implementation. Dtypes the ``.npy`` header cannot name
(bfloat16, float8: ml_dtypes) are stored as unsigned integers of their width with their
dtype names kept aside. Every round trip is bit for bit.
"""

import jax
import numpy as np


def is_key(x) -> bool:
    """Is ``x`` a typed PRNG key array (``jax.random.key``)?"""
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten(tree) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(arrays, prng_keys)``: every leaf of ``tree`` as a NumPy array under its path string;
    ``prng_keys`` maps the key leaves' names to their implementation (``'threefry2x32'``)."""
    arrays, keys = {}, {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = jax.tree_util.keystr(path)
        if is_key(leaf):
            keys[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[name] = np.asarray(leaf)
    return arrays, keys


def storable(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(stored, dtypes)``: arrays whose dtype the ``.npy`` header cannot name, viewed as
    unsigned integers of their width, and those arrays' dtype names (undone by
    :func:`unstored`)."""
    stored, dtypes = dict(arrays), {}
    for name, a in arrays.items():
        if not _npy_names(a.dtype):
            stored[name], dtypes[name] = a.view(f"u{a.dtype.itemsize}"), a.dtype.name
    return stored, dtypes


def _npy_names(dtype: np.dtype) -> bool:
    """Does the ``.npy`` header's dtype code (``dtype.str``) read back as ``dtype``? Not for
    ml_dtypes' types: bfloat16 says ``'<V2'`` (raw bytes), float8_e5m2 ``'<f1'``, a code
    NumPy does not read (a TypeError, which stopped the save)."""
    try:
        return np.dtype(dtype.str) == dtype
    except TypeError:
        return False


def unstored(arrays: dict[str, np.ndarray], dtypes: dict[str, str]) -> dict[str, np.ndarray]:
    """The arrays :func:`storable` was given: those named in ``dtypes`` viewed back."""
    out = dict(arrays)
    for name, dtype in dtypes.items():
        out[name] = out[name].view(jax.numpy.dtype(dtype))
    return out


def _under(name: str, prefix: str) -> bool:
    """Is the leaf path ``name`` inside the subtree ``prefix`` (``''`` is the whole tree)? A
    path goes on with ``[key]`` or, into a namedtuple or a dataclass, ``.field`` (an extra
    ``.b`` of a namedtuple was ignored, as if not under the prefix)."""
    return name.startswith(prefix) and (len(name) == len(prefix) or name[len(prefix)] in "[.")


def _as_key(where: str, name: str, a: np.ndarray, leaf, impl: str | None):
    """The raw key data ``a`` re-wrapped as a PRNG key like ``leaf``; a ``ValueError`` names
    the leaf when the stored array is not such a key's data."""
    impl = impl or str(jax.random.key_impl(leaf))
    try:
        key = jax.random.wrap_key_data(a, impl=impl)
    except (TypeError, ValueError) as e:
        # JAX's first line ends in "for impl=PRNGImpl(...)", its functions' addresses
        key, why = None, str(e).splitlines()[0].split(" for impl=")[0]
    else:
        why = f"a key of shape {list(key.shape)}"
    if key is None or key.shape != leaf.shape:
        raise ValueError(
            f"{where}: {name} is {a.dtype}{list(a.shape)}, not the data of a {impl} PRNG "
            f"key of shape {list(leaf.shape)} as in like ({why})"
        )
    return key


def unflatten(
    arrays: dict[str, np.ndarray],
    like,
    *,
    prng_keys: dict[str, str] | None = None,
    where: str = "arrays",
    prefix: str = "",
    partial: bool = False,
):
    """The ``arrays`` under ``prefix`` in the structure of the pytree ``like``.

    Each leaf must exist with ``like``'s shape and dtype (a ``ValueError`` starting with
    ``where`` names the first that does not); PRNG key leaves of ``like`` are re-wrapped
    with the implementation in ``prng_keys`` (else ``like``'s). An array under ``prefix``
    that ``like`` has no place for is a ``ValueError`` naming it, unless ``partial``.
    """
    prng_keys = prng_keys or {}
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out, names = [], set()
    for path, leaf in leaves:
        name = prefix + jax.tree_util.keystr(path)
        names.add(name)
        if name not in arrays:
            raise ValueError(f"{where}: no array for {name}")
        a = arrays[name]
        if is_key(leaf):
            a = _as_key(where, name, a, leaf, prng_keys.get(name))
        else:
            dtype = np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf))
            if a.shape != np.shape(leaf) or a.dtype != dtype:
                raise ValueError(
                    f"{where}: {name} is {a.dtype}{list(a.shape)}, expected "
                    f"{dtype}{list(np.shape(leaf))}"
                )
        out.append(a)
    extra = sorted(n for n in arrays if _under(n, prefix) and n not in names)
    if extra and not partial:
        raise ValueError(
            f"{where}: {extra[0]} is not in like ({len(extra)} of the stored arrays are not: "
            "another model or structure?); pass partial=True to read only the arrays like names"
        )
    return jax.tree_util.tree_unflatten(treedef, out)
