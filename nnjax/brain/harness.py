"""The fair harness: every method, the same hyperparameter search on the same validation runs.

**Methods** (:data:`METHODS`): ``sequential`` and ``joint`` (no hyperparameters); ``ewc``,
``si``, ``lwf``, ``replay1``/``replay5``/``replay20`` (a buffer of M = 1, 5, 20 examples per
class) from :mod:`nnjax.brain.baselines`; ``genreplay`` (generative replay, a VAE,
:mod:`nnjax.brain.dreams`); ``src`` (Sleep Replay Consolidation, :mod:`nnjax.brain.sleep`) and
``src+replay1`` (SRC's sleep after every task on top of a 1-example-per-class buffer). All
share the wake training of their dataset (:data:`WAKE`): the same network, optimizer, steps
and batches; only the method's hooks differ.

**The search** (:func:`candidates`): each method's hyperparameters lie in a box (:data:`BOX`)
and are drawn log-uniformly in it — the same N for every method, the same random numbers
(``numpy.random.default_rng(SEARCH_SEED)``, one column per hyperparameter), candidate 0 the
box's geometric centre. SRC's box is a factor of 4 either side of the authors' MNIST values
(its centre), as in its earlier search; the others are stated in :data:`BOX`.

**The validation protocol** (:func:`validate`): ``load_split(dataset, order,
validation=True)`` (the training split cut 80/20; the test split is never read), class
orders :data:`VALIDATION_ORDERS` and seeds ``split(key(1000), VALIDATION_SEEDS)``: 2 x 5 = 10
runs per candidate, none of which shares a class order or a seed with the test runs (orders
0, 1, 2, 3, 4, :data:`nnjax.brain.study.TEST_ORDERS`; seeds ``split(key(0), S)``).

**Selection** (:func:`select`), two objectives, both reported:

* ``final``: argmax_c F_c, F_c = 1/R sum_r final_{c,r} (the mean final validation accuracy
  over the R = 10 runs);
* ``plastic``: argmax F_c over the candidates with J_c >= :data:`PLASTICITY_FLOOR`, J_c =
  1/R sum_r 1/T sum_j R^{(c,r)}_{j,j} (the mean just-learned accuracy: task j's accuracy
  right after its own training and consolidation; :mod:`nnjax.brain.scores`) — a
  consolidation that destroys the task it follows is refused. When no candidate qualifies,
  the most plastic one, argmax J_c, is taken and ``plastic_met_floor`` is False (recorded in
  the search's JSON; the MNIST-1D search is such a case).

A candidate with a diverged validation run (a non-finite wake loss, or non-finite final
params: :func:`diverged`), or whose mean final accuracy is nan, is never chosen; -1 when no
candidate is left. Ties go to the lowest index (so the box's centre, candidate 0, wins a
tie). ``python -m nnjax.brain.tuning
DATASET OUT.json [N] [METHOD,...]`` runs the search (:func:`nnjax.brain.tuning.tune`) and
writes the winners to :mod:`nnjax.brain.tuned`; digits and MNIST-1D were searched with N = 8
(``docs/results/sleep-digits/search.json``, ``docs/results/sleep-mnist1d/search.json``).
"""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.brain import baselines as B
from nnjax.brain import continual as C
from nnjax.brain import scores
from nnjax.brain import sleep as S
from nnjax.brain.dynamics import check_count

VALIDATION_ORDERS = (C.VALIDATION_ORDER, C.VALIDATION_ORDER + 1)
VALIDATION_SEEDS = 5
SEARCH_SEED = 0
PLASTICITY_FLOOR = 0.9
OBJECTIVES = ("final", "plastic")

WAKE = {
    "digits": C.TrainConfig(),
    "mnist1d": C.TrainConfig(steps=300, batch_size=128, learning_rate=0.1, momentum=0.9),
}
"""Wake training per dataset (the permuted variants use their base's). Digits: the earlier
study's. MNIST-1D: of three settings tried on the validation split (class order 100, seeds
1000-1001), the one with the best joint accuracy: 300 steps of 128, lr 0.1, momentum 0.9
(59% joint, against 53% for 1000 steps of 32 at lr 0.05 and 52% for 500 of 64 at lr 0.1)."""

SLEEP = {"digits": S.SRCConfig(), "mnist1d": S.SRCConfig(patch=16)}
"""SRC's fixed settings per dataset: the window is about 40% of the input's width, as the
authors' 11 of 28 pixels (digits: 4 of 8; MNIST-1D: 16 of 40 positions, both channels)."""

METHODS = ("sequential", "ewc", "si", "lwf", "replay1", "replay5", "replay20", "genreplay",
           "src", "src+replay1", "joint")  # fmt: skip
LABELS = {
    "sequential": "sequential (lower bound)",
    "ewc": "EWC (online)",
    "si": "SI",
    "lwf": "LwF",
    "replay1": "replay buffer, M=1",
    "replay5": "replay buffer, M=5",
    "replay20": "replay buffer, M=20",
    "genreplay": "generative replay (VAE)",
    "src": "SRC (sleep)",
    "src+replay1": "SRC + replay buffer M=1",
    "joint": "joint (upper bound)",
}


def _f(x):
    return np.asarray(x, np.float32)


def _src_box(factor: float = 4.0):
    return (jax.tree.map(lambda x: _f(x) / factor, S.PAPER),
            jax.tree.map(lambda x: _f(x) * factor, S.PAPER))  # fmt: skip


def _replay_box(m: float):
    return {"rho": _f(0.25), "m": _f(m)}, {"rho": _f(4.0), "m": _f(m)}


BOX = {
    "ewc": ({"lam": _f(0.1), "gamma": _f(0.5)}, {"lam": _f(1e5), "gamma": _f(1.0)}),
    "si": ({"c": _f(1e-3), "xi": _f(1e-3)}, {"c": _f(1e2), "xi": _f(1.0)}),
    "lwf": ({"temperature": _f(1.0), "lam": _f(0.25)}, {"temperature": _f(4.0), "lam": _f(4.0)}),
    "replay1": _replay_box(1.0),
    "replay5": _replay_box(5.0),
    "replay20": _replay_box(20.0),
    "genreplay": ({"rho": _f(0.25)}, {"rho": _f(4.0)}),
    "src": _src_box(),
    "src+replay1": tuple(zip(_replay_box(1.0), _src_box())),
}
"""Each method's search box (lower corner, upper corner), every number drawn log-uniformly;
equal corners: fixed. EWC lambda 0.1..1e5, gamma 0.5..1; SI c 1e-3..1e2, xi 1e-3..1;
LwF T 1..4, lambda 0.25..4 (centre: van de Ven et al.'s T = 2, lambda = 1); replay weight
rho 0.25..4 (centre 1: each task counts equally); SRC a factor 4 around the authors' values."""


def base_dataset(dataset: str) -> str:
    return dataset.removeprefix("permuted-")


def configs(dataset: str) -> tuple[C.TrainConfig, S.SRCConfig]:
    """(wake training, SRC settings) of ``dataset`` (one of :data:`C.SPLIT_DATASETS`)."""
    if dataset not in C.SPLIT_DATASETS:
        raise ValueError(f"configs: unknown dataset {dataset!r}; valid: {C.SPLIT_DATASETS}")
    return WAKE[base_dataset(dataset)], SLEEP[base_dataset(dataset)]


def build(name: str, split: C.SplitData, cfg: C.TrainConfig, src_cfg: S.SRCConfig):
    """The :class:`~nnjax.brain.continual.Method` of ``name`` for tasks shaped like ``split``
    (None for sequential and joint)."""
    from nnjax.brain import dreams

    check_method(name, "build")
    apply = C.make_model(cfg, split.n_classes).apply
    T, _, d = split.X_tasks.shape
    K = split.n_classes
    if name in ("sequential", "joint"):
        return None
    if name == "ewc":
        return B.ewc_method(apply)
    if name == "si":
        return B.si_method(apply)
    if name == "lwf":
        return B.lwf_method(apply, K)
    if name.startswith("replay"):
        return B.replay_method(apply, T, K, d)
    if name == "genreplay":
        return dreams.make_replay_method(C.make_model(cfg, K), K, d)[0]
    src = S.make_src_method(split.image_shape, src_cfg)
    if name == "src":
        return src
    return B.combine(B.replay_method(apply, T, K, d), src)  # src+replay1


def check_method(name, where: str) -> str:
    """``name`` when it is one of :data:`METHODS`, else a ValueError naming ``where`` (an
    unknown name failed in :func:`build` only after the splits were loaded, naming no
    function)."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"{where}: unknown method {name!r}; valid: {METHODS}")
    return name


def candidates(name: str, n: int, seed: int = SEARCH_SEED):
    """``n`` candidates of method ``name`` stacked on a leading axis (module docstring):
    x = lo (hi / lo)^u, u ~ U[0, 1) from ``default_rng(seed)``, candidate 0 at u = 1/2.
    ``name``: a method with hyperparameters (a key of :data:`BOX`); ``n`` >= 1."""
    if name not in BOX:
        raise ValueError(f"candidates: {name!r} has no hyperparameters to search; valid: "
                         f"{tuple(BOX)}")  # fmt: skip
    check_count(n, "n", "candidates")
    n = int(n)
    # -1 and 1.5 failed in NumPy's SeedSequence, naming no argument; True ran as seed 1
    seed = check_count(seed, "seed", "candidates", minimum=0)
    lo, hi = BOX[name]
    leaves_lo, tree = jax.tree.flatten(lo)
    leaves_hi = jax.tree.leaves(hi)
    where = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(lo)[0]]
    _check_box(name, where, leaves_lo, leaves_hi, tree == jax.tree.structure(hi))
    width = sum(int(np.size(x)) for x in leaves_lo)
    u = np.random.default_rng(seed).random((width, n)).T  # column j: the same n numbers for all
    u[0] = 0.5
    out, col = [], 0
    for a, b in zip(leaves_lo, leaves_hi):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        k = int(np.size(a))
        uu = u[:, col : col + k].reshape((n, *a.shape))
        out.append(jnp.asarray(a * (b / a) ** uu, jnp.float32))
        col += k
    return jax.tree.unflatten(tree, out)


def _check_box(name: str, where: list, leaves_lo, leaves_hi, same_tree: bool) -> None:
    """A ValueError naming ``candidates`` and ``BOX[name]`` unless the box's corners share one
    structure and shapes and every lower corner is finite, > 0 and <= its upper corner (equal:
    fixed). lo > hi drew from [hi, lo] silently; lo <= 0 gave nan candidates."""
    shapes = [np.shape(a) == np.shape(b) for a, b in zip(leaves_lo, leaves_hi)]
    if not same_tree or not all(shapes):
        raise ValueError(f"candidates: BOX[{name!r}]'s lower and upper corners must have one "
                         "structure and the same shapes")  # fmt: skip
    for path, a, b in zip(where, leaves_lo, leaves_hi):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (a <= b)
        if not ok.all():
            i = np.flatnonzero(~ok.ravel())[0]
            lo, hi = a.ravel()[i], b.ravel()[i]
            raise ValueError(f"candidates: BOX[{name!r}]{path} needs finite 0 < lo <= hi "
                             f"(log-uniform), got lo={lo:g}, hi={hi:g}")  # fmt: skip


class Runs(NamedTuple):
    """Scores of runs with leading axes (C candidates, R runs): ``metrics`` (dict of arrays, see
    :func:`nnjax.brain.scores.metrics`), ``diverged`` (C, R) bool; ``seconds``."""

    metrics: dict
    diverged: np.ndarray
    seconds: float


def splits_for(dataset: str, orders, *, validation: bool, joint: bool = False) -> list:
    """The splits of ``orders`` (at least one), padded to one shape (the cumulative view for
    ``joint``)."""
    if isinstance(orders, str) or not hasattr(orders, "__iter__"):  # 100: a bare TypeError
        raise ValueError(f"splits_for: orders must be a sequence of class orders, got {orders!r}")
    orders = list(orders)
    if not orders:  # max() of an empty sequence before
        raise ValueError("splits_for: orders is empty; give at least one class order")
    seen = [_order_key(o) for o in orders]
    if len(set(seen)) != len(seen):  # a repeat counted its runs twice in every mean
        raise ValueError(f"splits_for: orders must be distinct (a repeat counts its runs "
                         f"twice), got {orders}")  # fmt: skip
    splits = [C.load_split(dataset, o, validation=validation) for o in orders]
    if joint:
        splits = [C.cumulative(s) for s in splits]
    N = max(s.X_tasks.shape[1] for s in splits)
    return [C.pad_tasks(s, N) for s in splits]


def _order_key(order):
    """A hashable form of a class order (an int, or an explicit permutation as a tuple);
    :func:`nnjax.brain.tasks.load_split` checks the order itself."""
    if np.ndim(order) == 0:
        is_int = isinstance(order, int | np.integer) and not isinstance(order, bool)
        return int(order) if is_int else ("not an int", repr(order))
    return tuple(np.asarray(order).ravel().tolist())


def stack_arrays(splits):
    arrays = [C.task_arrays(s) for s in splits]
    return jax.tree.map(lambda *a: np.stack(a), *arrays)


def score_runs(runs: C.SeedRuns, splits) -> dict:
    """:func:`scores.metrics` of ``run_seeds(..., over="hp+arrays")`` output (C, O, S, T, G),
    the orders (each with its own task groups) flattened into runs: arrays (C, O*S)."""
    per = []
    for o, s in enumerate(splits):
        A, A0 = runs.A_after[:, o], runs.A_start[:, o, :, 0]
        per.append(scores.metrics(A, s.task_groups, C.group_counts(s), A0))
    return {k: np.concatenate([m[k] for m in per], axis=1) for k in per[0]}


def run_candidates(name, dataset, hps, orders, keys, *, validation, group=16, hooks=()) -> Runs:
    """Every candidate of ``hps`` (stacked; None for no hyperparameters) x order x seed, run
    ``group`` candidates at a time through one compiled program (the last group padded)."""
    check_method(name, "run_candidates")
    cfg, src_cfg = configs(dataset)
    group = check_count(group, "group", "run_candidates")  # 0: a range() error; 2.5: a TypeError
    splits = splits_for(dataset, orders, validation=validation, joint=name == "joint")
    method = build(name, splits[0], cfg, src_cfg)
    n = 1 if hps is None else int(jax.tree.leaves(hps)[0].shape[0])
    program = C.seed_program(C.make_run(splits[0], cfg, method), over="hp+arrays")
    arrays, t0, parts, div = stack_arrays(splits), time.perf_counter(), [], []
    for begin in range(0, n, group):
        idx = np.minimum(np.arange(begin, begin + group), n - 1)[: max(1, min(group, n))]
        hp = None if hps is None else jax.tree.map(lambda x, i=idx: x[i], hps)
        hp = jnp.zeros(len(idx)) if hp is None else hp  # a dummy axis for vmap
        runs = C.run_seeds(program, arrays, keys, hp, over="hp+arrays", check_finite=False,
                           hooks=hooks)  # fmt: skip
        keep = slice(0, min(group, n - begin))
        m = score_runs(runs, splits)
        parts.append({k: v[keep] for k, v in m.items()})
        bad = diverged(runs)  # (C, O, S)
        div.append(bad.reshape(bad.shape[0], -1)[keep])
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return Runs(merged, np.concatenate(div), time.perf_counter() - t0)


def diverged(runs) -> np.ndarray:
    """(C, O, S) bool: the runs of :func:`nnjax.brain.continual.run_seeds` (outer axes
    candidates, orders, seeds) whose wake loss became nan/inf in any task, or whose final
    params hold a nan/inf (a consolidation after the last task that broke the network, which
    no later wake loss would show)."""
    bad = ~np.isfinite(np.asarray(runs.wake_loss)).all(axis=(-1, -2))
    for leaf in jax.tree.leaves(runs.final[0]):
        leaf = np.asarray(leaf)
        bad |= ~np.isfinite(leaf.reshape(bad.shape + (-1,))).all(axis=-1)
    return bad


def validate(name: str, dataset: str, n: int, *, group: int = 16, hooks=()) -> tuple:
    """(candidates, :class:`Runs`) of method ``name`` on the validation protocol."""
    check_method(name, "validate")
    keys = jax.random.split(jax.random.key(1000), VALIDATION_SEEDS)
    hps = candidates(name, n) if name in BOX else None
    runs = run_candidates(name, dataset, hps, VALIDATION_ORDERS, keys, validation=True,
                          group=group, hooks=hooks)  # fmt: skip
    return hps, runs


def select(runs: Runs, floor: float = PLASTICITY_FLOOR) -> dict:
    """The winners' indices under both objectives (module docstring). A candidate competes
    only when none of its runs diverged and its mean final accuracy is a number (a nan mean
    never wins: argmax alone would pick it); for ``plastic`` its mean just-learned accuracy
    must be a number too. -1 when no candidate competes. ``runs``: ``metrics["final"]`` and
    ``metrics["just_learned"]`` (C, R), ``diverged`` (C, R). Returns {"final": int,
    "plastic": int, "plastic_met_floor": bool}; ties go to the lowest index."""
    if (
        isinstance(floor, bool)
        or not isinstance(floor, int | float | np.number)
        or not (0.0 <= floor <= 1.0)
    ):  # nan (no candidate met it: the most plastic won) and 2 were taken silently
        raise ValueError(f"select: floor must be an accuracy in [0, 1], got {floor!r}")
    final = runs.metrics["final"].mean(axis=1)
    plastic = runs.metrics["just_learned"].mean(axis=1)
    ok = ~runs.diverged.any(axis=1) & ~np.isnan(final)
    meets = ok & (plastic >= floor)  # nan >= floor is False
    if meets.any():
        best_plastic = _argmax(final, meets)
    else:
        best_plastic = _argmax(plastic, ok & ~np.isnan(plastic))
    return {"final": _argmax(final, ok), "plastic": best_plastic,
            "plastic_met_floor": bool(meets.any())}  # fmt: skip


def _argmax(x: np.ndarray, allowed: np.ndarray) -> int:
    """The index of the largest ``x`` where ``allowed`` (the first on a tie); -1 if none."""
    return int(np.argmax(np.where(allowed, x, -np.inf))) if allowed.any() else -1


def hp_at(hps, i: int):
    """Candidate ``i`` (0 <= i < n) of stacked ``hps`` (n candidates) as nested plain floats /
    lists (JSON)."""
    n = {int(np.shape(x)[0]) if np.ndim(x) else 0 for x in jax.tree.leaves(hps)}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"hp_at: hps must stack its candidates on a leading axis of one size, "
                         f"got leading sizes {sorted(n)}")  # fmt: skip
    (n,) = n
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
        raise ValueError(f"hp_at: i must be an int in 0..{n - 1} ({n} candidates), got {i!r}")
    return jax.tree.map(lambda x: np.asarray(x[i]).tolist(), _plain(hps))


def _plain(tree):
    """SRCParams -> dict, recursively (JSON and :mod:`nnjax.brain.tuned` hold plain data)."""
    if isinstance(tree, S.SRCParams):
        return {k: v for k, v in tree._asdict().items()}
    if isinstance(tree, tuple | list):
        return [_plain(t) for t in tree]
    return tree


def as_hp(name: str, plain):
    """The inverse of :func:`hp_at`: plain data -> the hyperparameter pytree of ``name`` (a
    key of :data:`BOX`); ``plain`` must name exactly the box's hyperparameters (a misspelt
    name was returned as it was, or failed in ``SRCParams`` naming no function). None: None."""
    if plain is None:
        return None
    if name not in BOX:
        raise ValueError(f"as_hp: {name!r} has no hyperparameters; valid: {tuple(BOX)}")
    want = _plain(jax.tree.map(lambda x: 0, BOX[name][0]))
    if _names(plain) != _names(want):
        raise ValueError(f"as_hp: the hyperparameters of {name!r} are {_names(want)}, got "
                         f"{_names(plain)}")  # fmt: skip
    if name == "src":
        return S.SRCParams(**{k: jnp.asarray(v, jnp.float32) for k, v in plain.items()})
    if name == "src+replay1":
        return (as_hp("replay1", plain[0]), as_hp("src", plain[1]))
    return {k: jnp.asarray(v, jnp.float32) for k, v in plain.items()}


def _names(plain):
    """The hyperparameter names of plain data: sorted keys of a dict, a list per part."""
    if isinstance(plain, dict):
        return sorted(plain)
    if isinstance(plain, tuple | list):
        return [_names(p) for p in plain]
    return type(plain).__name__
