"""JAX's threefry key operations, unrolled, for the shuffle of :mod:`nnjax.train.order`.

With JAX's default PRNG (``threefry2x32``, ``jax_threefry_partitionable`` on), every key
operation the shuffle uses is one hash of the key's two words (k1, k2) with a counter (0, c),

    H(k, c) = threefry2x32((k1, k2), (0, c))         -> (h1, h2), 20 rounds
    fold_in(k, c) = split(k)[c] = H(k, c)             (a new key's two words)
    bits(k, (n,))[i] = h1 ^ h2 of H(k, i)             (n uint32 words)

On the CPU, JAX lowers the hash as a loop of 5 iterations, each a chain of small kernels;
written out here, XLA fuses all 20 rounds into one elementwise kernel. Measured on the 2-core
CPU (median of 300 calls): 4000 words 94 -> 38 us, 60000 words 277 -> 126 us. The words are
the same: ``tests/test_order.py`` checks them against ``jax.random.bits``, ``split`` and
``fold_in``, so a change in JAX's scheme fails there. :func:`key_words` returns ``None`` for
any other PRNG or setting, and the callers then use ``jax.random`` itself.
"""

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def key_words(key: Array) -> Array | None:
    """The key's words, uint32 (..., 2), when its PRNG is partitionable threefry; else None."""
    if str(jax.random.key_impl(key)) != "threefry2x32" or not jax.config.jax_threefry_partitionable:
        return None
    return jax.random.key_data(key)


def _rotate_left(x: Array, d: int) -> Array:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def hash_counter(words: Array, counter: Array) -> tuple[Array, Array]:
    """H(k, c) = threefry2x32((k1, k2), (0, c)) for keys ``words`` (..., 2) and uint32
    counters ``c`` (broadcast against the keys' leading shape): the pair (h1, h2)."""
    k1, k2 = words[..., 0], words[..., 1]
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = jnp.zeros_like(counter) + ks[0], counter + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def fold_in(words: Array, c) -> Array:
    """``jax.random.fold_in``'s key words for data c >= 0 (also ``split(key)[c]``)."""
    return jnp.stack(hash_counter(words, jnp.asarray(c).astype(jnp.uint32)), axis=-1)


def bits(words: Array, n: int) -> Array:
    """``jax.random.bits(key, (n,), jnp.uint32)`` for one key's words (2,): uint32 (n,)."""
    h1, h2 = hash_counter(words, jnp.arange(n, dtype=jnp.uint32))
    return h1 ^ h2
