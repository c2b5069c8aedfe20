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
    from benchmarks import startup

    out = startup.targets(results)
    seed = results.get("seed")
    if seed:
        out.append(_seed_speed_target(seed))
        same = seed["fused_theta_bit_identical"]
        out.append(
            {
                "target": "Seed example: theta bit-identical to the NumPy loop",
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
        )
    out += _network_target(results.get("network"))
    mlp = results.get("mlp") or []
    tiny = results.get("overhead")
    out.append(
        _ratio_target(
            mlp,
            "nnjax MLP step >= 0.95x the hand-written JAX step, every batch size",
            "pure_jax",
            "nnjax_step",
            0.95,
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "fused fit >= 1.3x the per-step jit at batch 32",
            "nnjax_step",
            "nnjax_fused",
            1.3,
            lambda B: B == 32,
            overhead=tiny,
            ceiling="pure_jax_scan",
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "fused fit >= 0.95x the hand-written scan over pre-batched data, every batch size",
            "pure_jax_scan",
            "nnjax_fused",
            0.95,
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "fused fit never slower than the per-step jit at larger batches",
            "nnjax_step",
            "nnjax_fused",
            1.0,
            lambda B: B > 32,
            ceiling="pure_jax_scan",
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "fused fit >= 1.1x the NumPy twin, every batch size",
            "numpy",
            "nnjax_fused",
            1.1,
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "nnjax step >= 1.5x Equinox (filter_jit), batch <= 128",
            "equinox",
            "nnjax_step",
            1.5,
            lambda B: B <= 128,
            side="nnjax_fused",
            overhead=tiny,
        )
    )
    out.append(
        _ratio_target(
            mlp,
            "nnjax step >= 1.6x PyTorch eager, batch <= 128",
            "torch",
            "nnjax_step",
            1.6,
            lambda B: B <= 128,
            side="nnjax_fused",
            overhead=tiny,
        )
    )
    for mode, label in (("nnx_jit", "nnx.jit"), ("nnx_split", "split/merge + jax.jit")):
        out.append(
            _ratio_target(
                mlp,
                f"nnjax step >= Flax NNX ({label}), every batch size",
                mode,
                "nnjax_step",
                1.0,
                side="nnjax_fused",
                overhead=tiny,
            )
        )
    out.append(_peak_target(results))
    out.append(_vmap_target(results))
    from benchmarks import nets_report

    return out + nets_report.targets(results)


def _seed_speed_target(seed: dict) -> dict:
    """t_numpy_loop / t_fused (medians) >= 40, the paired min-max beside it."""
    text = "Seed example: fused fit >= 40x faster than the NumPy loop"
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
    text = "Spiking network: 1000 neurons, 10 s at dt 0.1 ms in < 60 s"
    if not _positive(net["wall_per_bio_second"]):  # a zero time is no run "under 60 s"
        why = f"wall s per bio s {net['wall_per_bio_second']}: not positive finite"
        return [_unmeasured(text, why)]
    wall = net["wall_per_bio_second"] * 10.0
    brian = net.get("speedup_vs_brian2")
    vs = f"; {brian:.1f}x Brian2's numpy runtime" if brian else "; Brian2 did not run"
    scaled = "" if net["bio_seconds"] == 10.0 else f" (from {net['bio_seconds']:g} s x 10)"
    return [
        {
            "target": text,
            "measured": f"{wall:.1f} s{scaled}, compile {net['nnjax']['compile_s']:.1f} s{vs}",
            "worst": wall,
            "holds": wall < 60.0,
        }
    ]
