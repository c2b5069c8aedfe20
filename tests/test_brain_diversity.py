"""The diversity figures of generated samples (nnjax.brain.diversity) on hand-made samples."""

import numpy as np
import pytest

from nnjax.brain import diversity as V


def test_histogram_entropy_and_coverage_by_hand():
    h = V.class_histogram([0, 0, 1, 3, 3, 3, 3, 3], 5)
    np.testing.assert_array_equal(h, [2, 1, 0, 5, 0])
    # p = (2, 1, 5) / 8: H = -(1/4 log2 1/4 + 1/8 log2 1/8 + 5/8 log2 5/8) bits
    want = 0.25 * 2 + 0.125 * 3 + 0.625 * np.log2(8 / 5)
    assert V.entropy_bits(h) == pytest.approx(want, rel=1e-12)
    assert V.entropy_bits([7, 7, 7, 7]) == pytest.approx(2.0)  # uniform over 4: log2 4
    assert V.entropy_bits([0, 9, 0]) == 0.0  # one class
    with pytest.raises(ValueError, match="labels must be"):
        V.class_histogram([0, 5], 5)
    with pytest.raises(ValueError, match="not all 0"):
        V.entropy_bits([0, 0])


def test_mean_pairwise_distance_by_hand():
    # the corners (0,0), (3,0), (0,4): distances 3, 4, 5 -> mean 4
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert V.mean_pairwise_distance(X) == pytest.approx(4.0, rel=1e-12)
    assert V.mean_pairwise_distance(np.ones((5, 3))) == 0.0  # one repeated sample
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(30, 7))
    loops = [np.linalg.norm(Y[i] - Y[j]) for i in range(30) for j in range(i + 1, 30)]
    assert V.mean_pairwise_distance(Y) == pytest.approx(np.mean(loops), rel=1e-9)
    with pytest.raises(ValueError, match="n >= 2"):
        V.mean_pairwise_distance(np.ones((1, 3)))


def test_diversity_of_collapsed_and_varied_samples():
    """A classifier that reads the class off the first 4 coordinates (argmax): samples that are
    all one average input get one class, 0 bits and distance 0; the 4 one-hot samples, twice
    each, get 2 bits, 4 classes and mean distance sqrt(2) * 24 / 28."""
    classify = lambda X: X[:, :4]  # noqa: E731
    collapsed = V.diversity(np.tile([0.3, 0.2, 0.25, 0.25], (8, 1)), classify, 4)
    assert (collapsed.entropy_bits, collapsed.classes_covered) == (0.0, 1)
    assert collapsed.effective_classes == 1.0 and collapsed.mean_distance == 0.0
    np.testing.assert_array_equal(collapsed.histogram, [8, 0, 0, 0])
    varied = V.diversity(np.tile(np.eye(4), (2, 1)), classify, 4)
    assert varied.entropy_bits == pytest.approx(2.0) and varied.classes_covered == 4
    assert varied.effective_classes == pytest.approx(4.0)
    # 28 pairs: 4 identical (distance 0), 24 between different one-hots (sqrt 2)
    assert varied.mean_distance == pytest.approx(np.sqrt(2) * 24 / 28, rel=1e-12)


def test_mean_pairwise_distance_survives_a_large_common_offset():
    """Finding: [[1e8], [1e8 + 1]] gave 0.0 (the Gram matrix form cancels); centring first
    gives 1.0, and leaves small inputs as they were."""
    assert V.mean_pairwise_distance([[1e8], [1e8 + 1]]) == 1.0
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]) + 1e9
    assert V.mean_pairwise_distance(X) == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ValueError, match=r"mean_pairwise_distance: X must be finite, got nan/inf"):
        V.mean_pairwise_distance([[0.0], [np.nan], [1.0]])  # was a silent nan


def test_diversity_refuses_nan_scores():
    """Finding: NaN logits made every sample class 0 (argmax of NaN): entropy 0, one class."""
    X = np.tile(np.eye(4), (2, 1))
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="diversity: classify.X. gave NaN scores for 1 of 8"):
        V.diversity(X, lambda x: x, 4)
    with pytest.raises(ValueError, match=r"diversity: classify\(X\) must return scores"):
        V.diversity(np.eye(4), lambda x: x[:, :3], 4)


@pytest.mark.parametrize("shape", [(0, 4), (1, 4), (4,)])
def test_diversity_names_itself_for_too_few_samples(shape):
    """n = 0 was refused by entropy_bits, n = 1 by mean_pairwise_distance, after classify ran."""
    ran = []
    with pytest.raises(ValueError, match=r"^diversity: need samples X of shape \(n >= 2, d\)"):
        V.diversity(np.zeros(shape), lambda x: ran.append(1) or np.zeros((len(x), 3)), 3)
    assert not ran
