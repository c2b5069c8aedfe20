"""The wake-sleep algorithm for a Helmholtz machine (Hinton, Dayan, Frey and Neal, Science 1995).

The machine: binary stochastic units in three layers, top h2 (n2), middle h1 (n1), visible v
(n0). A *generative* (top-down) model

    p(h2) = prod Bern(logistic(b2)),  p(h1 | h2) = Bern(logistic(h2 G2 + b1)),
    p(v | h1) = Bern(logistic(h1 G1 + b0))

and a *recognition* (bottom-up) model q(h1 | v) = Bern(logistic(v R1 + r1)),
q(h2 | h1) = Bern(logistic(h1 R2 + r2)). Learning alternates two local delta rules:

* **wake**: v from the data, h1 ~ q(h1|v), h2 ~ q(h2|h1); the generative weights learn to
  reproduce each layer from the one above: b2 += eps (h2 - p(h2)),
  G2 += eps h2^T (h1 - p(h1|h2)), b1 += ..., G1 += eps h1^T (v - p(v|h1)), b0 += ...;
* **sleep** ("dreams"): h2 ~ p(h2), h1 ~ p(h1|h2), v ~ p(v|h1); the recognition weights learn
  to recover the causes of the dream: R1 += eps v^T (h1 - q(h1|v)), r1 += ...,
  R2 += eps h1^T (h2 - q(h2|h1)), r2 += ....

Each update is averaged over a mini-batch. The generative model's marginal
p(v) = sum_{h2, h1} p(h2) p(h1|h2) p(v|h1) is computed *exactly* by enumerating the
2^(n2 + n1) hidden states, hence the exact KL(p_data || p) = sum_v p_data(v) log2
(p_data(v) / p(v)) in bits.

The data: the bars problem on an n x n grid: an orientation (vertical or horizontal) is chosen
with probability 1/2, then each of its n bars is on independently with probability ``p_bar``;
:func:`bars_distribution` enumerates the patterns and their exact probabilities.
"""

import itertools
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import dynamics

Array = jax.Array


MAX_BARS = 16
"""The largest grid :func:`bars_distribution` enumerates: 2^(n+1) patterns (n = 16: 131070
patterns in seconds; n = 30, 2^31 of them, had not finished after 5 minutes)."""


def bars_distribution(n: int = 3, p_bar: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(patterns (M, n*n) float in {0,1}, probs (M,)) of the n x n bars problem (distinct
    patterns; the empty and full grids arise from both orientations and are merged). n an
    int in 2..MAX_BARS (Python or NumPy), p_bar a number in (0, 1)."""
    ok = isinstance(n, numbers.Integral) and not isinstance(n, bool | np.bool_) and n >= 2
    p = dynamics.concrete(p_bar)  # a string failed in the comparison, True passed as 1
    if not ok or p is None or p.ndim or p.dtype.kind == "b" or not 0.0 < p_bar < 1.0:
        raise ValueError(
            f"bars_distribution: need an int n >= 2 and p_bar in (0, 1); "
            f"got n={n!r}, p_bar={p_bar!r}"
        )
    if n > MAX_BARS:  # 2^(n+1) patterns, enumerated one by one
        raise ValueError(f"bars_distribution: n must be <= {MAX_BARS} (2^(n+1) patterns), got {n}")
    n = int(n)
    probs: dict[tuple, float] = {}
    for vertical in (True, False):
        for on in itertools.product((0, 1), repeat=n):
            grid = np.zeros((n, n))
            for i, b in enumerate(on):
                if b:
                    if vertical:
                        grid[:, i] = 1
                    else:
                        grid[i, :] = 1
            p = 0.5 * np.prod([p_bar if b else 1 - p_bar for b in on])
            key = tuple(grid.ravel().astype(int))
            probs[key] = probs.get(key, 0.0) + p
    patterns = np.array(list(probs), dtype=np.float32)
    return patterns, np.array(list(probs.values()))


MAX_STATE_BITS = 20
"""The widest layer whose states :func:`binary_states` enumerates (2^20 rows)."""

MAX_JOINT_BITS = 24
"""The most hidden units, n1 + n2, whose 2^(n1 + n2) joint states :func:`log_marginal`
enumerates: its arrays hold 2^(n1 + n2) n1 numbers (n1 = n2 = 15 failed in XLA, out of
memory, instead of naming the cause)."""


def binary_states(n: int) -> np.ndarray:
    """All 2^n binary vectors (2^n, n), float32; n an int in 1..MAX_STATE_BITS."""
    n = dynamics.check_count(n, "n", "binary_states")  # 0 was a reshape error, -1 NumPy's
    if n > MAX_STATE_BITS:  # 2^40 rows exhausted the memory (the process was killed)
        raise ValueError(
            f"binary_states: n must be <= {MAX_STATE_BITS} (2^n states are enumerated), got {n}"
        )
    return np.array(list(itertools.product((0, 1), repeat=n)), np.float32).reshape(-1, n)


class Helmholtz(NamedTuple):
    """Params of a Helmholtz machine (module docstring): generative b2 (n2,), G2 (n2, n1),
    b1 (n1,), G1 (n1, n0), b0 (n0,); recognition R1 (n0, n1), r1 (n1,), R2 (n1, n2), r2 (n2,)."""

    b2: Array
    G2: Array
    b1: Array
    G1: Array
    b0: Array
    R1: Array
    r1: Array
    R2: Array
    r2: Array


def init_helmholtz(key: Array, n0: int, n1: int, n2: int, scale: float = 0.1) -> Helmholtz:
    """Small random weights N(0, scale^2), zero biases."""
    n0, n1, n2 = (dynamics.check_count(v, name, "init_helmholtz")  # -1 failed in XLA
                  for name, v in (("n0", n0), ("n1", n1), ("n2", n2)))  # fmt: skip
    _not_bool(scale, "scale", "init_helmholtz")  # True ran as 1
    dynamics.check_positive(scale, "scale", "init_helmholtz", allow_zero=True)  # nan: nan params
    k = jax.random.split(key, 4)
    z = jnp.zeros
    return Helmholtz(
        z(n2), scale * jax.random.normal(k[0], (n2, n1)), z(n1),
        scale * jax.random.normal(k[1], (n1, n0)), z(n0),
        scale * jax.random.normal(k[2], (n0, n1)), z(n1),
        scale * jax.random.normal(k[3], (n1, n2)), z(n2),
    )  # fmt: skip


def _not_bool(value, name: str, where: str) -> None:
    """A ValueError naming ``where: name`` for a bool given as a number (True ran as 1)."""
    v = dynamics.concrete(value)
    if v is not None and v.dtype.kind == "b":
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")


def check_params(params, where: str) -> tuple[int, int, int]:
    """(n0, n1, n2) of a :class:`Helmholtz`, or a ValueError naming ``where``: not a
    Helmholtz (a tuple failed with an AttributeError), fields whose shapes disagree (a
    dot_general TypeError deep in JAX), or more hidden units than :func:`log_marginal`
    enumerates (n1, n2 <= MAX_STATE_BITS, n1 + n2 <= MAX_JOINT_BITS)."""
    if not isinstance(params, Helmholtz):
        raise ValueError(f"{where}: params must be a Helmholtz, got {type(params).__name__}")
    n0, n1, n2 = (int(np.prod(jnp.shape(v))) for v in (params.b0, params.b1, params.b2))
    want = ((n2,), (n2, n1), (n1,), (n1, n0), (n0,), (n0, n1), (n1,), (n1, n2), (n2,))
    got = tuple(jnp.shape(v) for v in params)
    if got != want:
        raise ValueError(
            f"{where}: params' shapes must be b2 (n2,), G2 (n2, n1), b1 (n1,), G1 (n1, n0), b0 "
            f"(n0,), R1 (n0, n1), r1 (n1,), R2 (n1, n2), r2 (n2,), got "
            f"{dict(zip(Helmholtz._fields, got))}"
        )
    _check_hidden(n1, n2, where)
    return n0, n1, n2


def _check_hidden(n1: int, n2: int, where: str) -> None:
    if max(n1, n2) > MAX_STATE_BITS or n1 + n2 > MAX_JOINT_BITS:  # binary_states' error, OOM
        raise ValueError(
            f"{where}: n1 = {n1} and n2 = {n2} hidden units: the exact marginal enumerates "
            f"2^(n1 + n2) states; need n1, n2 <= {MAX_STATE_BITS} and n1 + n2 <= "
            f"{MAX_JOINT_BITS}"
        )


def _check_binary(V, n0: int, name: str, where: str, ndims=(2,)) -> Array:
    """``V`` (M, n0) as a float array, or a ValueError naming ``where: name`` for another
    shape, a string, or concrete entries that are not 0 or 1 (a Bernoulli's log-likelihood
    of 2 is no probability; bools are 0/1). A concrete V stays a NumPy array: jnp.asarray
    is a tracer under jit, and the checks and merges after it lost the values."""
    v = dynamics.concrete(V)
    if not isinstance(V, jax.core.Tracer) and v is None:
        raise ValueError(f"{where}: {name} must hold 0/1 numbers, got {type(V).__name__}")
    if jnp.ndim(V) not in ndims or jnp.shape(V)[-1] != n0:
        raise ValueError(f"{where}: {name} must be (M, n0={n0}), got {jnp.shape(V)}")
    if v is not None and not np.isin(v, (0, 1)).all():
        bad = v[~np.isin(v, (0, 1))].ravel()[0]
        raise ValueError(f"{where}: {name} must hold binary patterns (0 or 1), got {bad}")
    V = jnp.asarray(V) if v is None else v
    return V if jnp.issubdtype(V.dtype, jnp.floating) else V.astype(jnp.result_type(float))


def _bern_logp(x: Array, logits: Array) -> Array:
    """sum_i log Bern(x_i; logistic(logits_i)) over the last axis."""
    return jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), -1)


def log_marginal(params: Helmholtz, V: Array) -> Array:
    """log p(v) (nats) for each row of V (M, n0) of 0/1 entries, shape (M,); one pattern V
    (n0,) gives a scalar. By enumerating every (h2, h1): 2^(n1 + n2) states, n1 + n2 <=
    MAX_JOINT_BITS (:func:`check_params`)."""
    n0, _, _ = check_params(params, "log_marginal")
    V = _check_binary(V, n0, "V", "log_marginal", ndims=(1, 2))  # a broadcast TypeError before
    lp = _log_marginal(params, jnp.atleast_2d(V))
    return lp[0] if V.ndim == 1 else lp


def _log_marginal(params: Helmholtz, V: Array) -> Array:
    V = jnp.asarray(V)
    n1, n2 = params.b1.shape[0], params.b2.shape[0]
    H2, H1 = jnp.asarray(binary_states(n2)), jnp.asarray(binary_states(n1))
    lp2 = _bern_logp(H2, params.b2)  # (S2,)
    lp1 = _bern_logp(H1[None], (H2 @ params.G2 + params.b1)[:, None])  # (S2, S1)
    lv = _bern_logp(V[None], (H1 @ params.G1 + params.b0)[:, None])  # (S1, M)
    joint_h = jax.nn.logsumexp(lp2[:, None] + lp1, axis=0)  # (S1,) log p(h1)
    return jax.nn.logsumexp(joint_h[:, None] + lv, axis=0)


def check_distribution(patterns, probs, where: str) -> tuple[Array, Array]:
    """(patterns (M, n0), probs (M,)) as arrays (NumPy when concrete, so that later checks
    see the values under jit too), or a ValueError naming ``where``: the shapes must match
    and concrete probabilities must be >= 0 and sum to 1 (to 1e-5); traced ones pass
    unchecked, NaN passes (and gives NaN)."""
    for name, value in (("patterns", patterns), ("probs", probs)):  # a JAX TypeError before
        if not isinstance(value, jax.core.Tracer) and dynamics.concrete(value) is None:
            raise ValueError(f"{where}: {name} must hold numbers, got {type(value).__name__}")
    pat, pr = (x if isinstance(x, jax.core.Tracer) else dynamics.concrete(x)
               for x in (patterns, probs))  # fmt: skip
    if pat.ndim != 2 or pr.shape != pat.shape[:1] or pr.shape[0] < 1:
        raise ValueError(
            f"{where}: need patterns (M, n0) and probs (M,), got {pat.shape} and {pr.shape}"
        )
    v = dynamics.concrete(probs)
    if v is not None and ((v < 0).any() or abs(v.sum(dtype=np.float64) - 1.0) > 1e-5):
        raise ValueError(
            f"{where}: probs must be >= 0 and sum to 1 (a distribution over the patterns), got "
            f"sum {v.sum(dtype=np.float64)!r}, min {v.min()!r}"
        )
    return pat, pr


def exact_kl(params: Helmholtz, patterns: Array, probs: Array) -> Array:
    """KL(p_data || p_model) = sum_{v: p_data(v) > 0} p_data(v) log2 (p_data(v) / p(v)) in
    bits, exactly: a pattern of probability 0 adds 0 (0 log 0 = 0). ``probs`` must sum to 1
    (:func:`check_distribution`); patterns (M, n0) of 0/1 and params as :func:`log_marginal`
    (errors name this function). A pattern listed more than once (e.g. samples with 1/M
    each) is one v with p_data(v) the sum of its probs: concrete patterns are merged first
    (term by term, p_1 log p_1 + p_2 log p_2 < (p_1 + p_2) log (p_1 + p_2) understated the
    KL), under jit too when they are closed over; traced patterns (a jit argument) must be
    distinct rows."""
    n0, _, _ = check_params(params, "exact_kl")
    patterns, probs = check_distribution(patterns, probs, "exact_kl")
    patterns = _check_binary(patterns, n0, "patterns", "exact_kl")
    patterns, probs = _merge_duplicates(patterns, jnp.asarray(probs))
    lp = _log_marginal(params, patterns)
    terms = jax.scipy.special.xlogy(probs, probs) - jnp.where(probs > 0, probs * lp, 0.0)
    return jnp.sum(terms) / jnp.log(2.0)


def _merge_duplicates(patterns: Array, probs: Array) -> tuple[Array, Array]:
    """Distinct rows of concrete ``patterns`` (order of first appearance) with their ``probs``
    summed, concrete or traced (traced probs, under jit or vmap, once left repeats
    unmerged); traced patterns are returned as they are."""
    pat = dynamics.concrete(patterns)
    if pat is None:
        return patterns, probs
    _, first, inverse = np.unique(pat, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(pat):
        return patterns, probs
    rank = np.empty(len(first), int)
    rank[np.argsort(first)] = np.arange(len(first))  # np.unique's row -> first-appearance rank
    merged = jnp.zeros(len(first), probs.dtype).at[rank[inverse.reshape(-1)]].add(probs)
    return jnp.asarray(pat[np.sort(first)]), merged


def _bern(key, logits):
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(logits.dtype)


def wake_sleep_step(params: Helmholtz, key: Array, v: Array, lr: float) -> Helmholtz:
    """One wake phase on the data batch v (B, n0) of 0/1 entries and one sleep phase on B
    dreams (module docstring), both reading ``params`` as given (the dreams come from the
    generative weights before this step's wake update; the nine updates are applied
    together), each averaged over the B rows. lr a finite number > 0 (a traced 0 is not
    checked: it returns the params unchanged, bit for bit). The key is split in 5 for h1, h2
    (wake), d2, d1, d0 (sleep); a unit fires when uniform(k_i) < its probability
    (``jax.random.bernoulli``). Concrete v must be 0/1 (bools and ints are cast); traced v is
    not checked. The work runs in the params' float dtype, which the result keeps (float32
    params stay float32 under x64)."""
    n0 = check_params(params, "wake_sleep_step")[0]
    if jnp.ndim(v) != 2 or jnp.shape(v)[0] < 1 or jnp.shape(v)[1] != n0:
        raise ValueError(  # a dot_general TypeError, or a nan mean over no example
            f"wake_sleep_step: v must be (B >= 1, n0={n0}), got {jnp.shape(v)}"
        )
    v = _check_binary(v, n0, "v", "wake_sleep_step")
    _not_bool(lr, "lr", "wake_sleep_step")
    # 0 refused as fit refuses it (training that changes nothing); nan; < 0: ascent
    dynamics.check_positive(lr, "lr", "wake_sleep_step")
    dt = jnp.result_type(*params, float)  # int or float64 data made float32 params float64
    p = Helmholtz(*(jnp.asarray(a, dt) for a in params))
    v, lr = jnp.asarray(v, dt), jnp.asarray(lr, dt)
    B = v.shape[0]
    k = jax.random.split(key, 5)
    # wake: recognise, then teach the generative model to reproduce each layer
    h1 = _bern(k[0], v @ p.R1 + p.r1)
    h2 = _bern(k[1], h1 @ p.R2 + p.r2)
    e2 = h2 - jax.nn.sigmoid(p.b2)
    e1 = h1 - jax.nn.sigmoid(h2 @ p.G2 + p.b1)
    e0 = v - jax.nn.sigmoid(h1 @ p.G1 + p.b0)
    b2 = p.b2 + lr * e2.mean(0)
    G2 = p.G2 + lr * h2.T @ e1 / B
    b1 = p.b1 + lr * e1.mean(0)
    G1 = p.G1 + lr * h1.T @ e0 / B
    b0 = p.b0 + lr * e0.mean(0)
    # sleep: dream from the generative model, teach recognition to recover the causes
    d2 = _bern(k[2], jnp.broadcast_to(p.b2, (B, p.b2.shape[0])))
    d1 = _bern(k[3], d2 @ p.G2 + p.b1)
    d0 = _bern(k[4], d1 @ p.G1 + p.b0)
    f1 = d1 - jax.nn.sigmoid(d0 @ p.R1 + p.r1)
    f2 = d2 - jax.nn.sigmoid(d1 @ p.R2 + p.r2)
    R1 = p.R1 + lr * d0.T @ f1 / B
    r1 = p.r1 + lr * f1.mean(0)
    R2 = p.R2 + lr * d1.T @ f2 / B
    r2 = p.r2 + lr * f2.mean(0)
    return Helmholtz(b2, G2, b1, G1, b0, R1, r1, R2, r2)


def train_wake_sleep(
    key: Array,
    patterns: Array,
    probs: Array,
    *,
    n1: int = 6,
    n2: int = 1,
    steps: int = 20000,
    batch: int = 16,
    lr: float = 0.1,
    eval_every: int = 500,
) -> tuple[Helmholtz, Array]:
    """Wake-sleep from a random init; data drawn from (patterns, probs) (NumPy or JAX, as
    :func:`bars_distribution` gives them). Returns the params and the exact KL (bits) at step
    0 and after every ``eval_every`` steps: (steps/eval_every + 1,). jit/vmap-able over
    ``key``. Patterns are 0/1 (concrete ones, also when closed over under jit, are checked,
    and repeated rows merged in the KL as :func:`exact_kl` does); n1 and n2 as
    :func:`check_params` (the exact KL enumerates their 2^(n1 + n2) states)."""
    where = "train_wake_sleep"
    patterns, probs = check_distribution(patterns, probs, where)
    patterns = _check_binary(patterns, patterns.shape[1], "patterns", where)
    for name, v in (("n1", n1), ("n2", n2), ("steps", steps), ("batch", batch)):
        dynamics.check_count(v, name, where)
    _check_hidden(n1, n2, where)
    eval_every = dynamics.check_count(eval_every, "eval_every", where)
    _not_bool(lr, "lr", where)
    dynamics.check_positive(lr, "lr", where)
    if steps % eval_every:
        raise ValueError(
            f"train_wake_sleep: steps ({steps}) must be a multiple of eval_every ({eval_every})"
        )
    k_init, k_run = jax.random.split(key)
    params = init_helmholtz(k_init, patterns.shape[1], n1, n2)
    logits, data = jnp.log(probs), jnp.asarray(patterns)  # exact_kl merges concrete patterns

    def step(p, k):
        k_data, k_ws = jax.random.split(k)
        v = data[jax.random.categorical(k_data, logits, shape=(batch,))]
        return wake_sleep_step(p, k_ws, v, lr), None

    def block(p, k):
        p, _ = jax.lax.scan(step, p, jax.random.split(k, eval_every))
        return p, exact_kl(p, patterns, probs)

    params, kls = jax.lax.scan(block, params, jax.random.split(k_run, steps // eval_every))
    return params, jnp.concatenate(
        [exact_kl(init_helmholtz(k_init, patterns.shape[1], n1, n2), patterns, probs)[None], kls]
    )


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average, y_i = mean(x_{max(0, i - window + 1)} .. x_i) for an int
    window >= 1 (the first values average what exists)."""
    window = dynamics.check_count(window, "window", "smooth")
    try:
        x = np.asarray(x, np.float64)
    except (TypeError, ValueError):  # NumPy's "could not convert string to float"
        raise ValueError(f"smooth: x must hold numbers, got {x!r:.80}") from None
    if x.ndim != 1:  # a 2-D x failed in np.concatenate
        raise ValueError(f"smooth: x must be 1-D (n,), got shape {x.shape}")
    c = np.cumsum(np.concatenate([[0.0], x]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)
