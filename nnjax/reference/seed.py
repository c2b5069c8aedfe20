"""The seed article's logistic-regression loop, in plain NumPy, as the article writes it."""

import numpy as np


def numpy_seed_loop(X, y, alpha: float = 0.01, iterations: int = 1000) -> np.ndarray:
    """theta = 0, then ``iterations`` times: theta -= alpha * (sigmoid(X theta) - y)^T X / m.

    X (m, n), y (m,) -> theta (n,): full-batch gradient descent on the mean binary
    cross-entropy of a bias-free logistic regression.
    """
    theta = np.zeros(X.shape[1])
    m = len(y)
    for _ in range(iterations):
        h = 1.0 / (1.0 + np.exp(-(X @ theta)))
        theta -= alpha * ((h - y).T @ X) / m
    return theta
