"""fit's order: ``permutation`` gives exactly ``jax.random.permutation``'s integers (any n, key
kind, under jit and vmap), the unrolled threefry gives JAX's key words and bits, with JAX's
own functions taking over for other PRNGs and settings, ``stable_argsort_u32`` is a stable
argsort, ties included, and a batch of every example is the full batch."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax
from nnjax.train import threefry
from nnjax.train.loop import gather_rows
from nnjax.train.order import batch_indices, permutation, stable_argsort_u32

# 1, 2 and 1625 keep one round, 1626 and above take two; 65536 is the last packed size and
# 65537 goes to jax.random.permutation itself.
SIZES = [1, 2, 3, 10, 1000, 1024, 1437, 1625, 1626, 4000, 65536, 65537]


@pytest.mark.parametrize("n", SIZES)
def test_permutation_equals_jax_random_permutation(n):
    f = jax.jit(permutation, static_argnums=1)
    for seed in range(6 if n > 5000 else 25):
        key = jax.random.key(seed)
        got = np.asarray(f(key, n))
        assert got.dtype == np.int32 and got.shape == (n,)
        np.testing.assert_array_equal(got, np.asarray(jax.random.permutation(key, n)))


def test_permutation_with_raw_keys_and_under_vmap():
    n = 300
    raw = jax.random.PRNGKey(7)  # the legacy uint32[2] key
    perm = jax.jit(permutation, static_argnums=1)  # one program, not op by op
    np.testing.assert_array_equal(perm(raw, n), jax.random.permutation(raw, n))
    keys = jax.random.split(jax.random.key(3), 5)
    many = jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys)
    for k, row in zip(keys, many):
        np.testing.assert_array_equal(row, jax.random.permutation(k, n))


def test_threefry_words_are_jax_random_bits_fold_in_and_split():
    data = jnp.asarray([0, 1, 2, 7, 2**31 - 1], jnp.int32)
    for seed in range(8):
        key = jax.random.fold_in(jax.random.key(seed), 11)
        words = threefry.key_words(key)
        for n in (1, 2, 5, 1024, 4001):
            got = jax.jit(threefry.bits, static_argnums=1)(words, n)
            np.testing.assert_array_equal(got, jax.random.bits(key, (n,), jnp.uint32))
        folded = jax.vmap(threefry.fold_in, in_axes=(None, 0))(words, data)
        want = jax.vmap(lambda k, d: jax.random.key_data(jax.random.fold_in(k, d)), (None, 0))(
            key, data
        )
        np.testing.assert_array_equal(folded, want)
        halves = [threefry.fold_in(words, c) for c in (0, 1)]
        np.testing.assert_array_equal(jnp.stack(halves), jax.random.key_data(jax.random.split(key)))


def test_other_prngs_and_settings_use_jax_random_itself():
    n, epoch = 1000, 3
    # compiled, not op by op: the setting is part of jit's key, so it is traced under it
    perm = jax.jit(permutation, static_argnums=1)
    rows = jax.jit(batch_indices, static_argnums=(2, 3))
    with jax.threefry_partitionable(False):  # JAX's other threefry scheme: other words
        key = jax.random.key(5)
        assert threefry.key_words(key) is None
        np.testing.assert_array_equal(perm(key, n), jax.random.permutation(key, n))
    for impl in ("rbg", "unsafe_rbg"):
        key = jax.random.key(5, impl=impl)
        assert threefry.key_words(key) is None
        want = jax.random.permutation(jax.random.fold_in(key, epoch), n).reshape(100, 10)
        np.testing.assert_array_equal(rows(key, epoch, n, 10), want)


def test_batch_indices_is_the_permutation_of_the_folded_key():
    key = jax.random.key(9)
    for e in (0, 1, 41):
        want = jax.random.permutation(jax.random.fold_in(key, e), 1797)[: 56 * 32]
        got = jax.jit(batch_indices, static_argnums=(2, 3))(key, e, 1797, 32)
        np.testing.assert_array_equal(got, want.reshape(56, 32))


def test_stable_argsort_keeps_ties_in_order_as_the_two_operand_sort():
    rng = np.random.default_rng(0)
    for n, distinct in [(1000, 3), (1000, 700), (65536, 5000), (17, 1)]:
        # few distinct values spread over the whole 32-bit range: ties in high and low bits
        values = rng.integers(0, 2**32, distinct, dtype=np.uint64).astype(np.uint32)
        u = jnp.asarray(values[rng.integers(0, distinct, n)])
        ref = jax.lax.sort_key_val(u, jnp.arange(n, dtype=jnp.int32))[1]
        np.testing.assert_array_equal(stable_argsort_u32(u), ref)
    edge = jnp.asarray([2**32 - 1, 0, 2**31, 2**31 - 1, 0, 2**32 - 1], jnp.uint32)
    np.testing.assert_array_equal(stable_argsort_u32(edge), [1, 4, 3, 2, 0, 5])


def test_stable_argsort_refuses_more_keys_than_it_can_pack():
    with pytest.raises(ValueError, match="at most 65536 keys, got 65537"):
        stable_argsort_u32(jnp.zeros(65537, jnp.uint32))


def test_gather_rows_takes_the_rows_of_x_and_y():
    X = jnp.arange(24.0).reshape(6, 4)
    y = jnp.arange(6) * 10
    idx = jnp.asarray([[5, 0], [2, 3]], jnp.int32)
    xb, yb = gather_rows(idx, X, y)
    np.testing.assert_array_equal(xb, np.asarray(X)[np.asarray(idx)])
    np.testing.assert_array_equal(yb, [[50, 0], [20, 30]])


def test_a_batch_of_every_example_is_taken_in_stored_order():
    order_key = jax.random.key(4)
    np.testing.assert_array_equal(batch_indices(order_key, 3, 12, 12), [np.arange(12)])
    assert not np.array_equal(batch_indices(order_key, 3, 12, 6).reshape(-1), np.arange(12))


@pytest.mark.parametrize("execution", ["fused", "per_step"])
def test_fit_with_batch_size_n_is_full_batch_bit_for_bit(execution):
    """batch_size = n and batch_size = None run the same steps: params and losses agree
    exactly, in the fused loop and driven step by step."""
    ds = nnjax.data.load("digits")
    X, y = ds.X_train[:96], ds.y_train[:96]
    model = nnjax.mlp([16, 10])
    _, p0 = model.init(jax.random.key(0), (-1, X.shape[1]))
    kw = dict(optimizer="sgd", learning_rate=0.1, epochs=3, key=7, execution=execution)
    full = nnjax.fit(model, p0, X, y, batch_size=None, **kw)
    every = nnjax.fit(model, p0, X, y, batch_size=96, **kw)
    chex.assert_trees_all_equal(full.params, every.params)
    np.testing.assert_array_equal(full.step_loss, every.step_loss)


def test_rows_drawn_for_every_epoch_at_once_equal_rows_drawn_epoch_by_epoch(monkeypatch):
    """The loop draws a call's rows up front when they fit HOIST_MAX_INDICES, else epoch by
    epoch; both give the same run, bit for bit (and the per-step driver's)."""
    import nnjax.train.loop as loop
    import nnjax.train.order as order

    ds = nnjax.data.load("digits")
    X, y = ds.X_train[:200], ds.y_train[:200]
    model = nnjax.mlp([16, 10])
    _, p0 = model.init(jax.random.key(0), (-1, X.shape[1]))
    kw = dict(optimizer="adam", learning_rate=0.01, epochs=4, batch_size=32, key=3)
    traced = []  # the tracer type of the epoch each call of batch_indices sees

    def spy(order_key, e, *args):
        traced.append(type(e).__name__)
        return batch_indices(order_key, e, *args)

    monkeypatch.setattr(loop, "batch_indices", spy)  # drawn epoch by epoch
    monkeypatch.setattr(order, "batch_indices", spy)  # drawn for every epoch at once
    hoisted = nnjax.fit(model, p0, X, y, execution="fused", **kw)
    assert traced == ["BatchTracer"]  # drawn under vmap over the epochs, before the scan
    stepped = nnjax.fit(model, p0, X, y, execution="per_step", **kw)
    monkeypatch.setattr(loop, "HOIST_MAX_INDICES", 0)
    traced.clear()
    each = nnjax.fit(model, p0, X, y, execution="fused", **kw)
    assert traced and "BatchTracer" not in traced  # drawn inside the epoch scan
    for other in (stepped, each):
        chex.assert_trees_all_equal(hoisted.params, other.params)
        np.testing.assert_array_equal(hoisted.step_loss, other.step_loss)


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_rng_bit_generator_keys_give_one_order_however_the_run_is_cut(impl):
    """Keys of XLA's RngBitGenerator draw other bits under vmap than one call at a time
    (JAX's own caveat); the rows of every epoch drawn at once are still the rows of
    batch_indices epoch by epoch, so a run's order and numbers do not depend on how many
    epochs a compiled call holds (a resume stays bit-identical)."""
    from nnjax.train.order import epochs_batch_indices, run_batch_indices, run_keys

    key = jax.random.key(3, impl=impl)
    order_key, _ = run_keys(key)
    one_by_one = np.stack([batch_indices(order_key, e, 50, 8) for e in range(4)])
    at_once = jax.jit(lambda es: epochs_batch_indices(order_key, es, 50, 8))(jnp.arange(4))
    np.testing.assert_array_equal(at_once, one_by_one)
    np.testing.assert_array_equal(run_batch_indices(key, 4, 50, 8), one_by_one.reshape(-1, 8))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2)).astype(np.float32), rng.integers(0, 3, 50)
    model = nnjax.mlp([2, 4, 3])
    _, p0 = model.init(jax.random.key(0), (-1, 2))
    kw = dict(optimizer="sgd", learning_rate=0.1, epochs=4, batch_size=8, key=key)
    whole = nnjax.fit(model, p0, X, y, **kw)
    for other in (dict(epochs_per_call=1), dict(execution="per_step")):
        cut = nnjax.fit(model, p0, X, y, **kw, **other)
        np.testing.assert_array_equal(cut.step_loss, whole.step_loss)
        chex.assert_trees_all_equal(cut.params, whole.params)
