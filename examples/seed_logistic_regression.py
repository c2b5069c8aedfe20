"""The seed example, reproduced exactly: NumPy loop vs nnjax, side by side.

Logistic regression without bias on X = 0..5, y = 0,0,0,1,1,1; theta = 0; full-batch
gradient descent with learning rate 0.01 for 1000 iterations; the gradient of the mean
binary cross-entropy, (sigmoid(X theta) - y)^T X / m. Runs in float64.

Without a bias the decision boundary passes through x = 0, so sigmoid(0 * theta) = 0.5 for
the first point whatever theta is, and every prediction for x >= 0 is >= 0.5: the model
cannot say "class 0" for any input. A bias fixes that (run with --bias).

    python examples/seed_logistic_regression.py [--bias]
"""

import argparse

import jax
import numpy as np

import nnjax
from nnjax.reference.seed import numpy_seed_loop


def nnjax_seed_fit(X, y, alpha=0.01, iterations=1000, use_bias=False):
    """The same model in nnjax: one fused jit of 1000 full-batch GD steps."""
    model = nnjax.logistic_regression(X.shape[1], use_bias=use_bias)
    _, params = model.init(jax.random.key(0), X.shape)
    res = nnjax.fit(
        model,
        params,
        X,
        y,
        optimizer="gd",
        learning_rate=alpha,
        loss="binary_cross_entropy_with_logits",
        epochs=iterations,
    )
    return res.params, np.asarray(jax.nn.sigmoid(model.apply(res.params, X)))[:, 0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bias", action="store_true", help="add the bias the seed left out")
    args = ap.parse_args(argv)
    with jax.enable_x64(True):
        X, y = nnjax.data.toy()
        X = X.astype(np.float64)
        theta = numpy_seed_loop(X, y)
        params, pred = nnjax_seed_fit(X, y, use_bias=False)
        np_pred = 1.0 / (1.0 + np.exp(-(X @ theta)))
        print("              theta                 predictions")
        print(f"NumPy loop    {float(theta[0])!r:22} {np.round(np_pred, 3)}")
        print(f"nnjax fit     {float(params['W'][0, 0])!r:22} {np.round(pred, 3)}")
        print(f"|difference|  {abs(theta[0] - float(params['W'][0, 0])):.1e}")
        print("Without a bias every prediction is >= 0.5: sigmoid(0) = 0.5 at x = 0.")
        if args.bias:
            params_b, pred_b = nnjax_seed_fit(X, y, iterations=20000, use_bias=True, alpha=0.1)
            print(
                f"with bias     W={float(params_b['W'][0, 0]):.3f} b={float(params_b['b'][0]):.3f}"
                f" {np.round(pred_b, 3)}"
            )


if __name__ == "__main__":
    main()
