"""Weight initializers: ``init(key, shape, dtype) -> array``.

For a weight of shape (fan_in, fan_out) the variance targets are
glorot: 2 / (fan_in + fan_out), he: 2 / fan_in, lecun: 1 / fan_in; for a conv kernel
(*k, C_in, C_out), fan_in = prod(k) C_in and fan_out = prod(k) C_out.
The ``*_normal`` variants draw from a normal truncated at 2 of its standard deviations and
rescaled to that variance (|w| < 2.28 sqrt(var)), the ``*_uniform`` variants from
U(-sqrt(3 var), sqrt(3 var)) (JAX's conventions, through :mod:`jax.nn.initializers`).
"""

from collections.abc import Callable

import jax.nn.initializers as jinit

Initializer = Callable

INITIALIZERS: dict[str, Initializer] = {
    "glorot_normal": jinit.glorot_normal(),
    "glorot_uniform": jinit.glorot_uniform(),
    "he_normal": jinit.he_normal(),
    "he_uniform": jinit.he_uniform(),
    "lecun_normal": jinit.lecun_normal(),
    "lecun_uniform": jinit.lecun_uniform(),
    "zeros": jinit.zeros,
    "ones": jinit.ones,
}

glorot_normal = INITIALIZERS["glorot_normal"]
glorot_uniform = INITIALIZERS["glorot_uniform"]
he_normal = INITIALIZERS["he_normal"]
he_uniform = INITIALIZERS["he_uniform"]
lecun_normal = INITIALIZERS["lecun_normal"]
lecun_uniform = INITIALIZERS["lecun_uniform"]
zeros = jinit.zeros


def normal(std: float = 1e-2) -> Initializer:
    """Plain (untruncated) normal N(0, std^2)."""
    if not std > 0:
        raise ValueError(f"normal initializer: std must be > 0, got {std}")
    return jinit.normal(std)


def get_initializer(init: str | Initializer) -> Initializer:
    """Resolve an initializer given by name or as a callable."""
    if callable(init):
        return init
    if isinstance(init, str) and init in INITIALIZERS:
        return INITIALIZERS[init]
    raise ValueError(
        f"unknown initializer {init!r}; valid names: {', '.join(sorted(INITIALIZERS))}"
        " (or normal(std))"
    )
