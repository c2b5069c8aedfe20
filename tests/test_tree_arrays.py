"""nnjax.tree_arrays: a pytree as named arrays and back, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import tree_arrays


def _tree():
    return {
        "W": jnp.arange(6, dtype=jnp.float32).reshape(2, 3) / 7,
        "h": jnp.asarray([1.5, -2.25], dtype=jnp.bfloat16),
        "key": jax.random.key(3),
        "n": [jnp.asarray(4, dtype=jnp.int32)],
    }


def test_round_trip_is_exact_with_keys_and_bfloat16():
    tree = _tree()
    arrays, keys = tree_arrays.flatten(tree)
    assert sorted(arrays) == ["['W']", "['h']", "['key']", "['n'][0]"]
    assert keys == {"['key']": "threefry2x32"}
    stored, dtypes = tree_arrays.storable(arrays)
    assert stored["['h']"].dtype == np.uint16 and dtypes == {"['h']": "bfloat16"}
    back = tree_arrays.unflatten(tree_arrays.unstored(stored, dtypes), tree, prng_keys=keys)
    np.testing.assert_array_equal(back["W"], tree["W"])
    assert back["h"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(back["h"].astype(np.float32), tree["h"].astype(np.float32))
    assert jnp.array_equal(jax.random.key_data(back["key"]), jax.random.key_data(tree["key"]))


def test_prefix_reads_one_subtree():
    arrays, _ = tree_arrays.flatten({"params": [{"W": np.ones(2)}], "opt": np.zeros(3)})
    back = tree_arrays.unflatten(arrays, [{"W": np.ones(2)}], prefix="['params']")
    np.testing.assert_array_equal(back[0]["W"], np.ones(2))


@pytest.mark.parametrize(
    "like, match",
    [
        ({"W": np.zeros((3, 2), np.float32)}, r"here: \['W'\] is float32\[2, 3\], expected"),
        ({"V": np.zeros((2, 3), np.float32)}, r"here: no array for \['V'\]"),
        ({"W": np.zeros((2, 3), np.float64)}, r"expected float64\[2, 3\]"),
        ({"W": jax.random.key(0)}, r"not the data of a threefry2x32 PRNG key of shape \[\]"),
    ],
)
def test_mismatches_name_the_leaf(like, match):
    arrays = {"['W']": np.zeros((2, 3), np.float32)}
    with pytest.raises(ValueError, match=match):
        tree_arrays.unflatten(arrays, like, where="here")


def test_arrays_like_has_no_place_for_are_refused_unless_partial():
    arrays = {"['W']": np.zeros(2), "['b']": np.ones(2)}
    with pytest.raises(ValueError, match=r"\['b'\] is not in like \(1 of the stored"):
        tree_arrays.unflatten(arrays, {"W": np.zeros(2)})
    out = tree_arrays.unflatten(arrays, {"W": np.zeros(2)}, partial=True)
    assert list(out) == ["W"]
