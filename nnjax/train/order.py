"""The one definition of the order in which ``fit`` visits the data.

A run key ``key`` is split once, ``order_key, dropout_key = split(key)`` (:func:`run_keys`).
Epoch e shuffles the n examples with the permutation

    pi_e = permutation(fold_in(order_key, e), n)

and cuts its first T * b entries into T = n // b batches of b rows (the n % b rows left over
by that epoch's permutation are dropped, so every step has one shape):
batch t of epoch e is the rows pi_e[t b : (t + 1) b] (:func:`batch_indices`). Dropout, when
on, gets the key ``split(fold_in(dropout_key, e), T)[t]`` at step t of epoch e
(:func:`step_keys`). Full batch (``batch_size=None``) is one step per epoch on all n rows in
their stored order, and draws no permutation; so is ``batch_size = n``: a batch of every
example is the same set in any order, and a permutation would change only the order of the
sums over it (their rounding), at the price of a sort and a copy of X every epoch.

Since the order of epoch e depends only on (key, e), a run cut into chunks of epochs visits
the data exactly as the run in one piece, and a resumed run needs only the key and the epoch.
Everybody who needs fit's order calls these functions (the compiled loop, ``nnjax verify``,
the benchmarks and the tests); nobody re-derives it.

pi_e is exactly ``jax.random.permutation(fold_in(order_key, e), n)``; :func:`permutation`
computes the same integers with cheaper sorts (see there).
"""

import math
import numbers

import jax
import jax.custom_batching
import jax.numpy as jnp
import numpy as np

from nnjax.train import threefry

Array = jax.Array

# jax.random.permutation's shuffle: r = ceil(3 ln n / ln(2^32 - 1)) rounds of sorting by fresh
# 32-bit keys (a perfect shuffle once every element's concatenated keys differ).
_EXPONENT, _UINT32_MAX = 3, np.iinfo(np.uint32).max
_PACKED_MAX_N = 1 << 16  # two 16-bit fields fit one uint32 word (see stable_argsort_u32)


def permutation(key: Array, n: int) -> Array:
    """``jax.random.permutation(key, n)``, the same int32 (n,) array, computed faster.

    JAX shuffles ``x = arange(n)`` with r = ceil(3 ln n / ln(2^32 - 1)) rounds of

        key, sub = split(key);  u = bits(sub, (n,), uint32);  x = x[argsort(u)]

    with a *stable* argsort (ties keep their order), which it runs as a two-operand sort; on
    the CPU that sort calls a compiled comparator per comparison. Here the argsort is
    :func:`stable_argsort_u32`: two sorts of single uint32 words, which XLA runs natively,
    and with JAX's default PRNG the keys and bits come from :mod:`nnjax.train.threefry`
    (the same words, hashed in one fused kernel). Measured on the 2-core CPU (minimum of 300
    calls), jax's against this one: n = 1024 116 against 40 us; n = 4000 (two rounds) 1055
    against 176 us; n = 60000 19.3 against 3.8 ms. The integers are the same;
    ``tests/test_order.py`` checks that against ``jax.random.permutation`` for many n and
    keys, so a change in JAX's algorithm fails there, not silently. For n > 2^16 it calls
    ``jax.random.permutation`` itself.
    """
    if n > _PACKED_MAX_N:
        return jax.random.permutation(key, n).astype(jnp.int32)
    rounds = math.ceil(_EXPONENT * math.log(max(1, n)) / math.log(_UINT32_MAX))
    words = threefry.key_words(key)
    x = jnp.arange(n, dtype=jnp.int32)
    for _ in range(rounds):
        if words is None:
            key, sub = jax.random.split(key)
            u = jax.random.bits(sub, (n,), jnp.uint32)
        else:
            words, sub = threefry.fold_in(words, 0), threefry.fold_in(words, 1)
            u = threefry.bits(sub, n)
        x = x[stable_argsort_u32(u)]
    return x


def stable_argsort_u32(u: Array) -> Array:
    """The stable argsort of uint32 keys u (n,), n <= 2^16: the positions i ordered by
    (u_i, i), int32 (n,), as ``lax.sort_key_val(u, arange(n))[1]``.

    With w = bits of the largest position (2^w >= n), split u_i into its high w bits h_i and
    its low 32 - w bits l_i, and sort twice, each time one uint32 word that packs a key
    above a w-bit position (a least-significant-digit radix sort in two passes):

        p = sort(l_i * 2^w + i) mod 2^w         positions ordered by (l, i)
        q = sort(h_{p_j} * 2^w + j) mod 2^w     ranks j of p ordered by (h, j): stable in h
        argsort = p[q]                          ordered by (h, l, i) = (u, i)
    """
    n = u.shape[0]
    if n > _PACKED_MAX_N:
        raise ValueError(f"stable_argsort_u32: at most {_PACKED_MAX_N} keys, got {n}")
    w = max(1, (n - 1).bit_length())
    iota = jnp.arange(n, dtype=jnp.uint32)
    low = jnp.uint32((1 << w) - 1)
    p = jax.lax.sort((u << w) | iota) & low
    q = jax.lax.sort(((u[p] >> (32 - w)) << w) | iota) & low
    return p[q].astype(jnp.int32)


def is_full_batch(n_examples: int, batch_size: int | None) -> bool:
    """Whether every step takes all n rows in stored order: ``batch_size`` None or n."""
    return batch_size is None or batch_size == n_examples


def run_keys(key: Array) -> tuple[Array, Array]:
    """``(order_key, dropout_key) = jax.random.split(key)``: the shuffles and the dropout masks.
    ``key``: a PRNG key, or an int seed (as ``fit``'s ``key``; :func:`as_key`)."""
    order_key, dropout_key = per_key(lambda k: jax.random.split(k), as_key(key, "run_keys"))
    return order_key, dropout_key


SEEDS = 2**32  # seeds are ints in [0, SEEDS): the bits a key keeps of a seed without x64


def check_seed(seed, where: str, name: str = "seed") -> int:
    """``seed`` as a Python int when it is in [0, 2**32), else a ``ValueError`` naming
    ``where`` and ``name``: without x64 JAX keeps a seed's low 32 bits, so seed 2**32 + 5
    (or -1) would silently be the run of seed 5 (or 4294967295); in [0, 2**32) a seed
    gives the same key with and without x64."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{where}: {name} must be an int seed in [0, 2**32), got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < SEEDS:
        raise ValueError(
            f"{where}: {name} as a seed must be an int in [0, 2**32), got {seed} (JAX keeps "
            f"its low 32 bits: it would be seed {seed % SEEDS})"
        )
    return seed


def as_key(key, where: str = "fit", name: str = "key") -> Array:
    """``key`` as one PRNG key: None is seed 0, an int (or an integer scalar array, traced
    too) a seed in [0, 2**32) (:func:`check_seed`); a typed key of shape () or one raw
    ``uint32`` key passes as given (so a traced key adds nothing to a compiled program).
    Anything else is a ``ValueError`` naming ``where`` and ``name``."""
    if key is None:
        key = 0
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(check_seed(key, where, name))
    dtype = getattr(key, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    shape = np.shape(key) if dtype is not None else None
    if typed and shape == ():
        return key
    if not typed and shape == () and jax.dtypes.issubdtype(dtype, np.integer):
        if isinstance(key, jax.core.Tracer):
            return jax.random.key(key)
        return jax.random.key(check_seed(int(key), where, name))
    if not typed and dtype is not None and _is_raw_key(shape, dtype):
        return key
    got = f"{dtype} of shape {shape}" if dtype is not None else f"{type(key).__name__} {key!r}"
    raise ValueError(
        f"{where}: {name} must be an int seed or one PRNG key (jax.random.key(seed) or "
        f"jax.random.PRNGKey(seed)), got {got}; for several runs, vmap over keys"
    )


def _is_raw_key(shape, dtype) -> bool:
    """Whether an array of this shape and dtype is one raw key of the default PRNG (checked
    abstractly: nothing is computed or traced)."""
    try:
        wrapped = jax.eval_shape(jax.random.wrap_key_data, jax.ShapeDtypeStruct(shape, dtype))
    except (TypeError, ValueError):
        return False
    return wrapped.shape == ()


def batch_indices(
    order_key: Array, epoch, n_examples: int, batch_size: int, shuffle: bool = True
) -> Array:
    """The rows of every batch of epoch ``epoch``: int32 (n_examples // batch_size, batch_size).

    Row t is batch t: ``permutation(fold_in(order_key, epoch), n)[t b : (t + 1) b]``.
    ``epoch``: an int in [0, 2**32) (a float or a negative one is a ``ValueError``), or an
    integer scalar traced (jit/vmap); ``n_examples`` and ``batch_size`` are static ints,
    1 <= b <= n; ``order_key`` a PRNG key (or an int seed, as ``fit``'s ``key``).
    ``shuffle=False``: rows t b .. (t + 1) b - 1 in their stored order, every epoch (the
    MNIST-1D paper's training script draws its batches so; ``fit`` always shuffles). Unshuffled,
    the rows T b .. n - 1 would never be visited in any epoch, so n must then divide by b (a
    ``ValueError`` names the rows otherwise). ``batch_size == n_examples``: the one batch is
    every row in stored order (see above).
    """
    n, b = check_order("batch_indices", n_examples, batch_size, shuffle, none_ok=False)
    check_epoch(epoch, "batch_indices")
    steps = n // b
    if not shuffle or is_full_batch(n, b):
        return jnp.arange(steps * b, dtype=jnp.int32).reshape(steps, b)
    perm = _shuffle(as_key(order_key, "batch_indices", "order_key"), epoch, n)
    return perm[: steps * b].reshape(steps, b)


def _shuffle(key: Array, epoch, n: int) -> Array:
    """``permutation(fold_in(key, epoch), n)`` (one key at a time under ``vmap`` for a PRNG
    other than threefry: :func:`per_key`)."""
    if not isinstance(epoch, jax.core.Tracer):
        epoch = np.uint32(int(epoch))  # checked in [0, 2**32): a uint32 without x64 too
    return per_key(lambda k, e: permutation(_fold_in(k, e), n), key, epoch)


def per_key(fn, key: Array, *args):
    """``fn(key, *args)`` for one typed key (a raw key is the default PRNG's), an array out
    (a typed key array too). A key of another PRNG than threefry (``"rbg"``,
    ``"unsafe_rbg"``: XLA's RngBitGenerator) draws, under ``vmap`` over a batch of keys,
    *other* bits than each key alone (JAX's batching rule of that generator), so a run
    vmapped over seeds would train on another order than the same run alone; for them a
    batch goes one key at a time (``jax.custom_batching.sequential_vmap``)."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    impl = jax.random.key_impl(key if typed else jax.random.wrap_key_data(key))
    if str(impl) == "threefry2x32":
        return fn(key, *args)  # the key as given: a raw key's results stay raw
    key = key if typed else jax.random.wrap_key_data(key, impl=impl)
    out_is_key = []

    @jax.custom_batching.sequential_vmap
    def one(data, *a):
        out = fn(jax.random.wrap_key_data(data, impl=impl), *a)
        typed = jax.dtypes.issubdtype(out.dtype, jax.dtypes.prng_key)
        out_is_key[:] = [typed]
        return jax.random.key_data(out) if typed else out

    out = one(jax.random.key_data(key), *args)
    return jax.random.wrap_key_data(out, impl=impl) if out_is_key[0] else out


def epochs_batch_indices(
    order_key: Array, epochs: Array, n_examples: int, batch_size: int, shuffle: bool = True
) -> Array:
    """:func:`batch_indices` of every epoch in ``epochs`` (E,): int32 (E, T, b), row e the
    rows of epoch ``epochs[e]``, the same integers as calling it once per epoch.

    With threefry keys one ``vmap`` over the epochs (a hash: batched, its bits are the
    same). Keys of another PRNG (``"rbg"``, ``"unsafe_rbg"``: XLA's RngBitGenerator) draw
    *other* bits under ``vmap`` than one call at a time, so a run's order would depend on
    how many epochs a compiled call holds; for them the epochs go one by one (``lax.map``).
    """
    one = lambda e: batch_indices(order_key, e, n_examples, batch_size, shuffle)  # noqa: E731
    if str(jax.random.key_impl(order_key)) == "threefry2x32":
        return jax.vmap(one)(epochs)
    return jax.lax.map(one, epochs)


def check_order(where: str, n_examples, batch_size, shuffle=True, none_ok=True):
    """``(n, b)``: ``n_examples`` an int >= 1 and ``batch_size`` an int in [1, n] (NumPy ints
    too; None, full batch, where ``none_ok``), as Python ints; ``shuffle`` a bool, and
    ``shuffle=False`` only with n divisible by b (else rows T b .. n - 1, T = n // b, would
    never be trained on). A ``ValueError`` names ``where`` and the argument."""
    n = as_int(n_examples)
    if n is None or n < 1:
        raise ValueError(f"{where}: n_examples must be a positive int, got {n_examples!r}")
    b = check_batch_size(batch_size, n, where, none_ok)
    if not isinstance(shuffle, bool | np.bool_):
        raise ValueError(f"{where}: shuffle must be True or False, got {shuffle!r}")
    if not shuffle and b is not None and n % b:
        raise ValueError(
            f"{where}: shuffle=False with n_examples={n} and batch_size={b} would never train "
            f"on rows {n - n % b}..{n - 1} (every epoch takes the same first {n - n % b} rows); "
            f"use a batch_size that divides {n}, or shuffle=True"
        )
    return n, b


def check_batch_size(batch_size, n: int, where: str, none_ok: bool = True) -> int | None:
    """``batch_size`` as a Python int in [1, n] (a NumPy int accepted), or None (full batch)
    where ``none_ok``; anything else is a ``ValueError`` naming ``where``."""
    if batch_size is None and none_ok:
        return None
    b = as_int(batch_size)
    if b is None or not 1 <= b <= n:
        also = " or None (full batch)" if none_ok else ""
        raise ValueError(
            f"{where}: batch_size must be an int in [1, {n}]{also}, got {batch_size!r}"
        )
    return b


def as_int(v) -> int | None:
    """``v`` as a Python int when it is an int or a NumPy integer (not a bool), else None."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
        return None
    return int(v)


def _fold_in(key: Array, data) -> Array:
    """``jax.random.fold_in(key, data)``, hashed by :mod:`nnjax.train.threefry` when it can."""
    words = threefry.key_words(key)
    if words is None:
        return jax.random.fold_in(key, data)
    return jax.random.wrap_key_data(threefry.fold_in(words, data), impl="threefry2x32")


def step_keys(dropout_key: Array, epoch, n_steps: int) -> Array:
    """The dropout keys of the ``n_steps`` steps of epoch ``epoch``: (n_steps,) keys.
    ``dropout_key``: a PRNG key or an int seed (:func:`as_key`); ``epoch`` as in
    :func:`batch_indices`; ``n_steps`` an int >= 1. A ``ValueError`` names a bad one."""
    where = "step_keys"
    n = as_int(n_steps)
    if n is None or n < 1:
        raise ValueError(f"{where}: n_steps must be a positive int, got {n_steps!r}")
    check_epoch(epoch, where)
    if not isinstance(epoch, jax.core.Tracer):
        epoch = np.uint32(int(epoch))
    split = lambda k, e: jax.random.split(jax.random.fold_in(k, e), n)  # noqa: E731
    return per_key(split, as_key(dropout_key, where, "dropout_key"), epoch)


def check_epoch(epoch, where: str) -> None:
    """``epoch`` an int in [0, 2**32) (Python or NumPy, or a concrete integer scalar array),
    or a traced integer scalar (not checked further); else a ``ValueError`` naming ``where``:
    fold_in would truncate 1.5 to epoch 1 and wrap -1 to 2**32 - 1, another epoch's order."""
    dtype, shape = getattr(epoch, "dtype", None), getattr(epoch, "shape", None)
    if dtype is not None and shape == () and jnp.issubdtype(dtype, jnp.integer):
        if isinstance(epoch, jax.core.Tracer):
            return
        epoch = int(epoch)
    e = as_int(epoch)
    if e is None or not 0 <= e < SEEDS:
        raise ValueError(
            f"{where}: epoch must be an int in [0, 2**32) (an integer scalar if traced), "
            f"got {epoch!r}"
        )


def run_batch_indices(key, epochs: int, n_examples: int, batch_size: int | None) -> np.ndarray:
    """Every batch of a ``fit`` run with run key ``key`` (a PRNG key, an int seed or None,
    as ``fit`` takes it), step by step, on the host: int32 (epochs * (n // b), b), or ``None``
    for full batch (``batch_size`` None).

    The same numbers as :func:`batch_indices` (one compiled call,
    :func:`epochs_batch_indices`), for every PRNG.
    """
    where = "run_batch_indices"
    n, b = check_order(where, n_examples, batch_size)
    e = as_int(epochs)
    if e is None or e < 1:
        raise ValueError(f"{where}: epochs must be a positive int, got {epochs!r}")
    if b is None:
        return None
    order_key, _ = run_keys(as_key(key, where))
    each = jax.jit(lambda es: epochs_batch_indices(order_key, es, n, b))(jnp.arange(e))
    return np.asarray(each).reshape(-1, b)
