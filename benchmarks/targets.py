"""The issue's targets, evaluated on one run's results: each a measured value and a verdict.

Every ratio is a speed ratio (time of the other / time of nnjax, > 1 means nnjax is faster)
of medians taken in the same run; the per-round (paired) min-max is in the detail. Where
the issue says "nnjax" against a framework's per-step loop, the verdict uses nnjax's
per-step loop (like for like); the fused loop's ratio is shown beside it.

A target is judged only on what was measured: a row that is missing (a framework skipped)
or whose times are not all positive finite numbers gives no ratio, and a target left with a
case it covers unmeasured is "not measured" (None) unless a measured case misses it.
"""

import math

from benchmarks.harness import paired_ratios

REL = 1e-12
"""A bound is reached to the rounding of a quotient: 0.13 / 0.1 = 1.2999999999999998 is 1.3."""


def reaches(value: float, bound: float) -> bool:
    """``value >= bound`` up to a relative ``REL`` (a ratio at the bound reaches it)."""
    return value >= bound * (1.0 - REL)


def _positive(x) -> bool:
    """A time, a rate: a finite number > 0 (nan, inf, 0 and negatives are no measurement)."""
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def timed_ok(time: dict) -> bool:
    """A row's ``time`` (harness.stats) holds a measurement: its median and every round's
    time are positive finite numbers."""
    return all(_positive(t) for t in [time.get("median"), *time.get("times", [])])


def why_unmeasured(rows: dict, names) -> str | None:
    """Why a ratio of ``names``' rows has no value (None when it has one): a row missing, a
    time that is not a positive finite number, or rows timed in different numbers of rounds
    (a paired ratio needs the same rounds)."""
    missing = [n for n in names if n not in rows]
    if missing:
        return f"no {' or '.join(missing)} row"
    bad = [n for n in names if not timed_ok(rows[n]["time"])]
    if bad:
        return f"{' and '.join(bad)} time not a positive finite number"
    counts = {len(rows[n]["time"]["times"]) for n in names}
    if len(counts) > 1:
        return f"{' and '.join(names)} timed in different rounds ({sorted(counts)})"
    return None


def _speed(cfg, other: str, mine: str):
    """(t_other / t_mine of the medians, the paired per-round ratios), or None when
    :func:`why_unmeasured` names a reason."""
    rows = cfg["rows"]
    if why_unmeasured(rows, (other, mine)):
        return None
    a, b = rows[other]["time"], rows[mine]["time"]
    return a["median"] / b["median"], paired_ratios(a["times"], b["times"])


def _where(cfg) -> str:
    return f"{cfg['model'].split()[0]} B={cfg['batch_size']}"


def _predicted(cfg, overhead, other: str, mine: str):
    """The ratio that per-step costs alone predict: (t + o_other - o_mine) / t, with t the
    measured ms/step of ``mine`` here and o the ms/step of each on the tiny model (its
    cost beyond the arithmetic); None without the tiny-model run."""
    rows = (overhead or {}).get("rows") or {}
    if other not in rows or mine not in rows or mine not in cfg["rows"]:
        return None
    t = cfg["rows"][mine]["step_ms"]
    if not all(_positive(x) for x in (t, rows[other]["step_ms"], rows[mine]["step_ms"])):
        return None
    return (t + rows[other]["step_ms"] - rows[mine]["step_ms"]) / t


def _ratio_target(
    mlp,
    text,
    other,
    mine,
    threshold,
    batch_ok=lambda B: True,
    side=None,
    overhead=None,
    ceiling=None,
):
    vals, parts, unmeasured = [], [], []
    for cfg in mlp:
        if not batch_ok(cfg["batch_size"]):
            continue
        r = _speed(cfg, other, mine)
        if r is None:
            unmeasured.append(f"{_where(cfg)} ({why_unmeasured(cfg['rows'], (other, mine))})")
            continue
        vals.append(r[0])
        extra = ""
        if side:
            s = _speed(cfg, other, side)
            extra = f", fused {s[0]:.2f}x" if s else ""
        c = _speed(cfg, other, ceiling) if ceiling else None
        if c:  # what the hand-written reference reaches against the same loop, same run
            extra += f", hand-written scan {c[0]:.2f}x"
        pred = _predicted(cfg, overhead, other, mine)
        if pred is not None:
            extra += f" (per-step cost predicts {pred:.2f}x)"
        parts.append(f"{_where(cfg)}: {r[0]:.2f}x [{r[1]['min']:.2f}-{r[1]['max']:.2f}]{extra}")
    return verdict(text, parts, vals, threshold, unmeasured)


def verdict(
    text: str, parts: list[str], vals: list[float], threshold: float, unmeasured=()
) -> dict:
    """A ratio target's row: it holds when the worst of ``vals`` reaches ``threshold``
    (:func:`reaches`) and no case it covers is ``unmeasured`` (each a ``where (why)``);
    an unmeasured case leaves it None ("not measured") unless a measured one misses. A
    value that is not a positive finite number is no measurement either."""
    if not vals:
        return {"target": text, "measured": "not measured", "holds": None, "values": []}
    worst = min(vals)
    holds = reaches(worst, threshold) if all(_positive(v) for v in vals) else None
    if holds and unmeasured:
        holds = None
    return {
        "target": text,
        "measured": "; ".join([*parts, *(f"{u}: not measured" for u in unmeasured)]),
        "worst": worst,
        "values": vals,
        "holds": holds,
    }


def evaluate(results: dict) -> list[dict]:
    """Every target's row (``target``, ``measured``, ``holds``) of one run's ``results``.

    A workload the run did not choose (``--only``) gives its targets no row, or "not
    measured" rows (the MLP's, the peak's, vmap's). A run stopped before its end saved the
    workloads it finished (:class:`benchmarks.output.Progress`); those it had chosen and
    not finished are its ``"missing"``: every target that covers one is "not measured" (the
    run stopped before it) and never holds, a row of its own where the workload would have
    given one; a measured case that misses a target still misses it."""
    missing = set(results.get("missing") or ())
    out = []
    for covers, rows in _groups(results):
        gone = [w for w in covers if w in missing]
        if gone and not rows:
            rows = _unmeasured_rows(covers, results)
        out += [_stopped_before(r, gone) for r in rows] if gone else rows
    return out


def _groups(results: dict):
    """(the workloads a group of targets covers, their rows), in the report's order."""
    from benchmarks import nets_report, startup

    yield ("startup",), startup.targets(results)
    yield ("seed",), _seed_targets(results.get("seed"))
    yield ("network",), _network_target(results.get("network"))
    yield ("mlp",), _mlp_targets(results.get("mlp") or [], results.get("overhead"))
    yield ("peak", "mlp"), [_peak_target(results)]
    yield ("vmap",), [_vmap_target(results)]
    yield ("cnn", "gru"), nets_report.targets(results)


def _stopped_before(row: dict, gone: list[str]) -> dict:
    """``row`` of a target covering ``gone``, workloads a stopped run did not finish: "not
    measured" (None) unless a measured case misses it (False)."""
    why = f"not measured: the run stopped before {' and '.join(gone)}"
    measured = row["measured"]
    measured = why if measured.startswith("not measured") else f"{measured}; {why}"
    return {**row, "measured": measured, "holds": False if row["holds"] is False else None}


def _unmeasured_rows(covers, results: dict) -> list[dict]:
    """The "not measured" rows of the targets of ``covers``, workloads that measured nothing
    (a stopped run's missing ones: their target functions give no row without figures)."""
    from benchmarks import nets_report, startup

    nan = float("nan")
    if covers == ("startup",):  # its targets of a run whose times are none (nan)
        pair = dict.fromkeys(("first_compile", "first_wall", "second_wall", "speedup"), nan)
        rows = {"nnjax --help": {"median": nan}, "import nnjax": {"median": nan}}
        train = [] if results.get("mode") == "quick" else [{**pair, "second_compile": nan}]
        texts = [
            r["target"]
            for r in startup.targets({"startup": {"rows": rows, "train": train, "repeats": 0}})
        ]
    elif covers == ("seed",):
        texts = [SEED_SPEED, SEED_THETA]
    elif covers == ("network",):
        texts = [NETWORK]
    else:  # the CNN/GRU targets of runs with no rows
        nets = [{"model": m, "batch_size": 100, "auto": "fused", "rows": {}} for m in covers]
        texts = [r["target"] for r in nets_report.targets({"nets": nets})]
    return [{"target": t, "measured": "not measured", "holds": None} for t in texts]


SEED_SPEED = "Seed example: fused fit >= 40x faster than the NumPy loop"
SEED_THETA = "Seed example: theta bit-identical to the NumPy loop"
NETWORK = "Spiking network: 1000 neurons, 10 s at dt 0.1 ms in < 60 s"


def _seed_targets(seed) -> list[dict]:
    if not seed:
        return []
    same = seed["fused_theta_bit_identical"]
    theta = {
        "target": SEED_THETA,
        "measured": "bit-identical"
        if same
        else f"differs by {seed['fused_vs_numpy_theta_abs_diff']:.3g} "
        f"({seed['fused_vs_numpy_theta_ulps']} ulp); the twin agrees to 1e-12"
        + (
            "; the seed's loop rounded as the compiled step rounds (1/m before the "
            "sum, the update as one FMA) gives nnjax's theta bit for bit"
            if seed.get("fused_theta_equals_reordered_loop")
            else ""
        )
        + (
            f"; with FMAs off (XLA_FLAGS={nofma['xla_flags']}) nnjax.fit's theta is "
            + ("bit-identical" if nofma["bit_identical"] else f"{nofma['theta']!r}")
            if (nofma := seed.get("fit_theta_without_fma"))
            else ""
        ),
        "holds": same,
    }
    return [_seed_speed_target(seed), theta]


def _mlp_targets(mlp: list, tiny) -> list[dict]:
    """The MLP workload's targets (``tiny``: its tiny-model run, the per-step cost)."""
    nnx = (("nnx_jit", "nnx.jit"), ("nnx_split", "split/merge + jax.jit"))
    return [
        _ratio_target(
            mlp,
            "nnjax MLP step >= 0.95x the hand-written JAX step, every batch size",
            "pure_jax",
            "nnjax_step",
            0.95,
        ),
        _ratio_target(
            mlp,
            "fused fit >= 1.3x the per-step jit at batch 32",
            "nnjax_step",
            "nnjax_fused",
            1.3,
            lambda B: B == 32,
            overhead=tiny,
            ceiling="pure_jax_scan",
        ),
        _ratio_target(
            mlp,
            "fused fit >= 0.95x the hand-written scan over pre-batched data, every batch size",
            "pure_jax_scan",
            "nnjax_fused",
            0.95,
        ),
        _ratio_target(
            mlp,
            "fused fit never slower than the per-step jit at larger batches",
            "nnjax_step",
            "nnjax_fused",
            1.0,
            lambda B: B > 32,
            ceiling="pure_jax_scan",
        ),
        _ratio_target(
            mlp,
            "fused fit >= 1.1x the NumPy twin, every batch size",
            "numpy",
            "nnjax_fused",
            1.1,
        ),
        _ratio_target(
            mlp,
            "nnjax step >= 1.5x Equinox (filter_jit), batch <= 128",
            "equinox",
            "nnjax_step",
            1.5,
            lambda B: B <= 128,
            side="nnjax_fused",
            overhead=tiny,
        ),
        _ratio_target(
            mlp,
            "nnjax step >= 1.6x PyTorch eager, batch <= 128",
            "torch",
            "nnjax_step",
            1.6,
            lambda B: B <= 128,
            side="nnjax_fused",
            overhead=tiny,
        ),
        *(
            _ratio_target(
                mlp,
                f"nnjax step >= Flax NNX ({label}), every batch size",
                mode,
                "nnjax_step",
                1.0,
                side="nnjax_fused",
                overhead=tiny,
            )
            for mode, label in nnx
        ),
    ]


def _seed_speed_target(seed: dict) -> dict:
    """t_numpy_loop / t_fused (medians) >= 40, the paired min-max beside it."""
    text = SEED_SPEED
    r = _speed(seed, "numpy_loop", "nnjax_fused")
    if r is None:
        return _unmeasured(text, why_unmeasured(seed["rows"], ("numpy_loop", "nnjax_fused")))
    step = _speed(seed, "numpy_loop", "nnjax_step")
    sp, pr = r
    return {
        "target": text,
        "measured": f"{sp:.1f}x [{pr['min']:.1f}-{pr['max']:.1f}]"
        + (f" (per-step jit loop: {step[0]:.2f}x)" if step else ""),
        "worst": sp,
        "holds": reaches(sp, 40),
    }


def _unmeasured(text: str, why: str) -> dict:
    return {"target": text, "measured": f"not measured ({why})", "holds": None}


def _peak_target(results):
    text = ">= 75% of the matmul peak at batch 1024 on the 784-dim input (nnjax fused)"
    peak = (results.get("peak") or {}).get("peak_gflops")
    cfgs = [
        c
        for c in results.get("mlp") or []
        if c["model"].startswith("synthetic") and c["batch_size"] == 1024
    ]
    if not peak or not cfgs or "nnjax_fused" not in cfgs[0]["rows"]:
        return {"target": text, "measured": "not measured", "holds": None}
    rows = cfgs[0]["rows"]
    fused = rows["nnjax_fused"]["gflops"]
    if not (_positive(peak) and _positive(fused)):
        return _unmeasured(text, f"GFLOP/s fused {fused}, peak {peak}: not positive finite")
    frac = fused / peak
    parts = [f"fused {fused:.1f} GFLOP/s = {100 * frac:.0f}%"]
    for name in ("nnjax_step", "pure_jax", "torch"):
        if name in rows:
            parts.append(f"{name} {100 * rows[name]['gflops'] / peak:.0f}%")
    parts.append(f"peak {peak:.1f} GFLOP/s")
    if frac > 1.0:  # a run above its "peak" measured no peak: no verdict against it
        parts.append("above the measured peak, which is then not this machine's")
        return {"target": text, "measured": "; ".join(parts), "worst": frac, "holds": None}
    return {
        "target": text,
        "measured": "; ".join(parts),
        "worst": frac,
        "holds": reaches(frac, 0.75),
    }


def _vmap_target(results):
    text = "vmap: time per model at N = 64 <= 0.5x that at N = 1"
    rows = (results.get("vmap") or {}).get("rows") or {}
    if "1" not in rows or "64" not in rows:
        return {"target": text, "measured": "not measured", "holds": None}
    t1, t64 = rows["1"]["per_model_ms"], rows["64"]["per_model_ms"]
    if not (_positive(t1) and _positive(t64)):
        return _unmeasured(text, f"ms per model {t64} vs {t1}: not positive finite")
    r = t64 / t1
    return {
        "target": text,
        "measured": f"{r:.2f}x ({t64:.3f} ms vs {t1:.3f} ms per model)",
        "worst": r,
        "holds": r <= 0.5,
    }


def _network_target(net) -> list[dict]:
    """The spiking network: 10 s of biological time of 1000 neurons in < 60 s (quick runs
    simulate 1 s and scale the time by 10)."""
    if not net:
        return []
    if not _positive(net["wall_per_bio_second"]):  # a zero time is no run "under 60 s"
        why = f"wall s per bio s {net['wall_per_bio_second']}: not positive finite"
        return [_unmeasured(NETWORK, why)]
    wall = net["wall_per_bio_second"] * 10.0
    brian = net.get("speedup_vs_brian2")
    vs = f"; {brian:.1f}x Brian2's numpy runtime" if brian else "; Brian2 did not run"
    scaled = "" if net["bio_seconds"] == 10.0 else f" (from {net['bio_seconds']:g} s x 10)"
    return [
        {
            "target": NETWORK,
            "measured": f"{wall:.1f} s{scaled}, compile {net['nnjax']['compile_s']:.1f} s{vs}",
            "worst": wall,
            "holds": wall < 60.0,
        }
    ]
