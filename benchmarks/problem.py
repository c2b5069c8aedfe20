"""One MLP training problem that every implementation solves: same data, same initial params,
same batches in the same order, same optimizer, same dtype.

The batches are the ones ``nnjax.fit`` draws (:func:`fit_batch_indices`), so nnjax's fused
loop, which shuffles inside its jit, and every per-step loop train on identical batches, and
the NumPy twin's result after the same steps is the oracle for all of them.
"""

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import nnjax


@dataclass
class Problem:
    """``sizes`` excludes the input width (``X.shape[1]``), as ``nnjax.mlp`` does.

    ``idx`` (steps, batch_size): the rows of every batch, epoch by epoch (each
    implementation gathers them itself, inside the clock, but the hand-written scan, the
    fused loop's reference, whose batches :func:`benchmarks.impl_jax.prebatched` gathers
    once before its clock starts).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    sizes: list[int]
    batch_size: int
    epochs: int
    optimizer: str = "sgd"
    learning_rate: float = 0.01
    activation: str = "relu"
    seed: int = 0
    params0: list = field(init=False)
    idx: np.ndarray = field(init=False)

    def __post_init__(self):
        if self.X.dtype != np.float32:
            raise ValueError(f"{self.name}: X must be float32, got {self.X.dtype}")
        model = nnjax.mlp(self.sizes, self.activation)
        _, params = model.init(jax.random.key(self.seed), (-1, self.X.shape[1]))
        self.params0 = jax.tree.map(np.asarray, params)
        self.idx = fit_batch_indices(self.key, len(self.X), self.batch_size, self.epochs)

    @property
    def key(self):
        return jax.random.key(self.seed + 1)

    @property
    def steps(self) -> int:
        return self.idx.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.X) // self.batch_size

    @property
    def label(self) -> str:
        return f"{self.name} B={self.batch_size}"

    def flops_per_step(self) -> int:
        """The matmul FLOPs one SGD step needs: with layer widths n_0..n_L and batch B,
        forward 2B sum_l n_{l-1} n_l, weight gradients the same again, and input gradients
        2B sum_{l>=2} n_{l-1} n_l (none for the data). Elementwise work (bias, ReLU,
        softmax, the update) is O(B sum n_l + P) and not counted: XLA's cost analysis of
        the hand-written SGD step puts it at 1.8% of these FLOPs at batch 32 on the digits
        model (1.7% on the 784-dim one), under 1% from batch 128, 6% on the tiny 16-32-32-4
        model; Adam's update adds more (8-9% at batch 32, under 1% at 1024)."""
        widths = [self.X.shape[1], *self.sizes]
        mm = [widths[i] * widths[i + 1] for i in range(len(widths) - 1)]
        B = self.batch_size
        return 2 * B * sum(mm) * 2 + 2 * B * sum(mm[1:])


def fit_batch_indices(key, n: int, batch_size: int, epochs: int) -> np.ndarray:
    """The rows ``nnjax.fit`` trains on, step by step (:func:`nnjax.train.run_batch_indices`):
    shape (epochs * (n // batch_size), batch_size)."""
    return nnjax.train.run_batch_indices(key, epochs, n, batch_size)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, standardised: X (1437, 64) float32, y (1437,) int32."""
    ds = nnjax.data.load("digits")
    return ds.X_train.astype(np.float32), ds.y_train.astype(np.int32)


def synthetic_data(n: int = 1024, d: int = 784, k: int = 10, seed: int = 0):
    """Gaussian inputs X (n, d) float32 labelled by a random linear teacher:
    y = argmax(X T), T (d, k) ~ N(0, 1/d), so the labels are learnable."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    T = rng.standard_normal((d, k)).astype(np.float32) / np.sqrt(d)
    return X, np.argmax(X @ T, axis=1).astype(np.int32)


def as_jax(tree):
    return jax.tree.map(jnp.asarray, tree)
