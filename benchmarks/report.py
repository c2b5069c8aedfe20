"""Output: a terminal table (rich), the JSON of the whole run, and a Markdown report."""

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks import startup
from nnjax.io import atomic_write_text

VERDICT = {True: "holds", False: "MISSED", None: "not measured"}


def _ms(s: float) -> str:
    return f"{1e3 * s:.2f}"


def _mib(m) -> str:
    if not m or "peak" not in m:
        return "n/a"
    return f"{m['peak'] / 2**20:.2f}"


def mlp_rows(cfg: dict, peak: float | None) -> list[list[str]]:
    """One line per implementation: the columns of :data:`MLP_HEADER`."""
    rows = cfg["rows"]
    base = rows.get("nnjax_step", {}).get("time", {}).get("median")
    out = []
    for r in rows.values():
        t = r["time"]
        out.append(
            [
                r["label"],
                _ms(t["median"]),
                f"{_ms(t['min'])}-{_ms(t['max'])}",
                f"{r['step_ms']:.3f}",
                f"{r['examples_per_s']:,.0f}",
                f"{r['gflops']:.1f}",
                f"{100 * r['gflops'] / peak:.0f}%" if peak else "n/a",
                f"{t['median'] / base:.2f}" if base else "n/a",
                f"{r['compile_s']:.2f}",
                _mib(r.get("memory")),
                f"{r['check']['max_loss_rel_err']:.1e}",
            ]
        )
    return out


MLP_HEADER = [
    "implementation",
    "run ms (median)",
    "min-max ms",
    "ms/step",
    "examples/s",
    "GFLOP/s",
    "% peak",
    "time / nnjax step",
    "compile s",
    "peak MiB",
    "loss err vs twin",
]


def print_terminal(results: dict, console: Console | None = None) -> None:
    """The results as rich tables. Every cell and note is printed as plain text (a note
    such as "pip install nnjax[bench]" lost "[bench]" to rich's markup, and "[/]" raised)."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file: wide enough for the tables
            console = Console(width=200)
    if line := partial(results):
        console.print(f"[bold red]{escape(line)}[/]")
    peak = (results.get("peak") or {}).get("peak_gflops")
    for cfg in results.get("mlp") or []:
        t = Table(
            title=f"{cfg['model']}, batch {cfg['batch_size']}, {cfg['steps']} steps "
            f"({cfg['optimizer']}, {cfg['dtype']})"
        )
        for h in MLP_HEADER:
            t.add_column(h, justify="left" if h == "implementation" else "right")
        for row in mlp_rows(cfg, peak):
            t.add_row(*map(escape, row))
        console.print(t)
        for name, note in cfg["skipped"].items():
            console.print(f"  skipped {name}: {note}", markup=False)
    from benchmarks import nets_report

    nets_report.print_terminal(results, console)
    t = Table(title="Targets")
    for h in ("target", "measured", "verdict"):
        t.add_column(h)
    for tg in results.get("targets", []):
        t.add_row(escape(tg["target"]), escape(tg["measured"]), VERDICT[tg["holds"]])
    console.print(t)
    for w in results.get("warnings", []):
        console.print(f"[bold red]WARNING[/]: {escape(w)}")


def write_json(results: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(results, indent=1, default=str) + "\n")


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _cpu(env: dict) -> str:
    """`` of CPU: <model, ISA>`` (older results, without it: nothing)."""
    return f" of CPU: {env['cpu']}" if env.get("cpu") else ""


def _mode(results: dict) -> str:
    """``full run`` or ``quick run``, with ``--only <workloads>`` when the run chose some of
    them (results of 2026-12-05 and before do not record it)."""
    only = results.get("only")
    return f"{results['mode']} run" + (f", --only {' '.join(only)}" if only else "")


def partial(results: dict) -> str | None:
    """The line that says a stopped run's measurements are partial (None for a run that
    ended: its file has no ``"complete": false``; :class:`benchmarks.output.Progress`)."""
    if results.get("complete", True) is not False:
        return None
    done, missing = results.get("done") or [], results.get("missing") or []
    return (
        f"PARTIAL: the run stopped before its end; it measured {', '.join(done) or 'nothing'}; "
        f'not measured: {", ".join(missing) or "none"} (their targets read "not measured"'
        + (f"; `--only {' '.join(missing)}` runs them" if missing else "")
        + ")."
    )


def markdown(results: dict, plots: dict[str, str]) -> str:
    env, L = results["env"], []
    L += [f"# nnjax benchmarks: {results['device']}, {results['date']} ({_mode(results)})", ""]
    if line := partial(results):
        L += [f"**{line}**", ""]
    total = results.get("total_s")  # a stopped run's file has none
    L += [
        f"Device: {env['device_kind']} ({env['jax_backend']}), {env['cores_available']} cores "
        f"available{_cpu(env)}; JAX {env['jax']} (XLA CPU threads: {env['jax_cpu_threads']}"
        + (f"; ml_dtypes {env['ml_dtypes']}" if env.get("ml_dtypes") else "")  # not in older files
        + "), "
        f"NumPy {env['numpy']} (BLAS: {_blas(env)}), Flax {env['flax']}, Optax {env['optax']}, "
        f"Equinox {env['equinox']}, PyTorch {env['torch']} (threads: {env.get('torch_threads')})."
        f" Python {env['python']} on {env['platform']}."
        + (f" Total time {total:.0f} s." if total is not None else ""),
        "",
    ]
    st = results.get("settings", {})
    if st:
        L += [
            f"Timing: {st.get('repeats')} round-robin rounds; a sample is a block of "
            f"back-to-back calls sized to last {st.get('min_block', 0)} s; "
            f"{st.get('pause', 0)} s pause before each block.",
            "",
        ]
    if results.get("workload_s"):
        L += [
            "Wall / CPU seconds per workload: "
            + ", ".join(
                f"{k} {v['wall']:.0f} / {v['cpu']:.0f}" for k, v in results["workload_s"].items()
            )
            + (
                " (CPU well under wall: the process waited for cores held by others)."
                if sum(v["cpu"] for v in results["workload_s"].values())
                < 0.6 * sum(v["wall"] for v in results["workload_s"].values())
                else "."
            ),
            "",
        ]
    L += ["## Load from other processes", ""]
    L += _table(
        ["when", "load average (1, 5, 15 min)", "other processes' CPU %", "busiest"],
        [
            [
                k,
                ", ".join(f"{v:.2f}" for v in s["loadavg"]),
                s.get("others_cpu_percent"),
                "; ".join(s.get("busiest", [])),
            ]
            for k, s in results["load"].items()
        ],
    )
    for w in results.get("warnings", []):
        L += [f"**Warning:** {w}", ""]
    L += [
        "## Targets",
        "",
        "Speed ratios are time(other) / time(nnjax), medians of one run; "
        "[min-max] of the per-round ratios.",
        "",
    ]
    L += _table(
        ["target", "measured", "verdict"],
        [[t["target"], t["measured"], f"**{VERDICT[t['holds']]}**"] for t in results["targets"]],
    )
    L += startup.markdown(results)
    if results.get("seed"):
        s = results["seed"]
        L += ["## Seed example (1000 GD steps, float64)", ""]
        L += _table(
            ["implementation", "median ms", "min-max ms", "first call s", "theta"],
            [
                [
                    n,
                    _ms(r["time"]["median"]),
                    f"{_ms(r['time']['min'])}-{_ms(r['time']['max'])}",
                    f"{r['first_call_s']:.3f}",
                    repr(r["theta"]),
                ]
                for n, r in s["rows"].items()
            ],
        )
        L += [
            f"NumPy twin theta {s['theta_twin']!r}. `nnjax.fit` called once end to end: "
            f"{s['fit_call_s']:.2f} s, of which compile {s['fit_compile_s']:.2f} s and run "
            f"{1e3 * s['fit_run_s']:.2f} ms.",
            "",
        ]
    peak = results.get("peak")
    if peak:
        L += ["## Matmul peak (jnp.dot under jit, float32)", ""]
        if peak.get("measurements"):
            L += [
                "Measured before and after the MLP workload: "
                + ", ".join(f"{m:.1f}" for m in peak["measurements"])
                + " GFLOP/s; the higher is the peak (its sizes below).",
                "",
            ]
        if peak.get("square_peak_gflops"):
            L += [
                f"A matmul of the step anatomy ran faster than these: {peak['peak_n']}, "
                f"{peak['peak_gflops']:.1f} GFLOP/s, is the peak the MLP rows are held to.",
                "",
            ]
        L += _table(
            ["n", "median ms", "GFLOP/s"],
            [[n, _ms(r["time"]["median"]), f"{r['gflops']:.1f}"] for n, r in peak["sizes"].items()],
        )
    L += ["## MLP training", ""]
    p = (peak or {}).get("peak_gflops")
    for cfg in results.get("mlp") or []:
        L += [
            f"### {cfg['model']}, batch {cfg['batch_size']}",
            "",
            f"{cfg['steps']} steps ({cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''} "
            f"of {cfg['n_examples']} examples), "
            f"{cfg['optimizer']} lr {cfg['learning_rate']}, {cfg['dtype']}, "
            f"{cfg['flops_per_step'] / 1e6:.1f} MFLOP/step.",
            "",
        ]
        L += _table(MLP_HEADER, mlp_rows(cfg, p))
        for name, note in cfg["skipped"].items():
            L += [f"Skipped {name}: {note}", ""]
    ov = results.get("overhead")
    if ov:
        nn = ov["rows"].get("nnjax_step", {}).get("step_ms")  # --impls without it: n/a
        L += [
            f"### Cost per step beyond the arithmetic: {ov['model']}, batch {ov['batch_size']}",
            "",
            f"{ov['flops_per_step'] / 1e6:.2f} MFLOP/step: the time per step here is what each "
            "implementation spends on dispatch, Python and its framework; a larger model's step "
            "costs its matmuls plus about this much.",
            "",
        ]
        L += _table(
            ["implementation", "us/step", "beyond nnjax step, us/step"],
            [
                [
                    r["label"],
                    f"{1e3 * r['step_ms']:.0f}",
                    "n/a" if nn is None else f"{1e3 * (r['step_ms'] - nn):+.0f}",
                ]
                for r in ov["rows"].values()
            ],
        )
    from benchmarks import nets_report

    L += nets_report.markdown(results, _table)
    v = results.get("vmap")
    if v:
        L += [f"## vmap scaling ({v['model']}, {v['steps']} steps, batch {v['batch_size']})", ""]
        L += _table(
            ["N models", "median ms", "min-max ms", "ms per model", "compile s"],
            [
                [
                    n,
                    _ms(r["time"]["median"]),
                    f"{_ms(r['time']['min'])}-{_ms(r['time']['max'])}",
                    f"{r['per_model_ms']:.3f}",
                    f"{r['compile_s']:.2f}",
                ]
                for n, r in v["rows"].items()
            ],
        )
    if results.get("dispatch"):
        L += ["## Dispatch floor (one call of a trivial jitted function)", ""]
        L += _table(
            ["wrapper", "microseconds per call"],
            [[k, f"{v:.1f}"] for k, v in results["dispatch"].items()],
        )
    for a in results.get("anatomy") or []:
        w = "-".join(map(str, a["widths"]))
        L += [f"## Step anatomy: {w}, batch {a['batch_size']} (each matmul alone, float32)", ""]
        L += _table(
            ["part", "ms", "GFLOP/s"],
            [[k, f"{r['ms']:.3f}", f"{r['gflops']:.1f}"] for k, r in a["matmuls"].items()]
            + [
                ["sum of the matmuls", f"{a['matmul_sum_ms']:.3f}", ""],
                ["nnjax step (loss, grad, SGD), one call", f"{a['step_ms']:.3f}", ""],
                ["forward only, one call", f"{a['forward_ms']:.3f}", ""],
            ],
        )
        if a.get("programs"):
            L += ["Compiled XLA programs at this shape:", ""]
            L += _table(
                ["step", "dot ops", "fusions", "HLO lines"],
                [[k, v["dots"], v["fusions"], v["hlo_lines"]] for k, v in a["programs"].items()],
            )
    if results.get("network"):
        L += _network_section(results["network"])
    if results.get("scaling"):
        sc = results["scaling"]
        L += ["## Data-parallel scaling (benchmarks/scaling.py, its own process)", ""]
        L += [f"`{sc.get('command')}`, {sc['seconds']:.0f} s, exit status {sc['returncode']}:", ""]
        L += ["```", sc.get("output", "").rstrip(), "```", ""]
    if plots:
        L += ["## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()] + [""]
    L += ["## Method", "", METHOD, ""]
    return "\n".join(L)


def _blas(env) -> str:
    blas = env.get("numpy_blas") or []
    return ", ".join(f"{b['internal_api']} {b['num_threads']} threads" for b in blas) or "n/a"


METHOD = """\
Every implementation trains the same initial params (nnjax's init, converted) on the same
batches in the same order (the ones `nnjax.fit` draws) with the same optimizer, in float32,
and is checked against the NumPy twin (`nnjax.reference`) before it is timed: the loss of
every step to 3e-4 relative, and every parameter to 5% of how far training moved it; a
mismatch stops the suite. That checked first call is also the warm-up; then round-robin
rounds, the order rotated every round. One sample is a block of back-to-back calls, divided
by the calls: ceil(the block time in the header / t) of them, t the time of one untimed call
(one call when the block time is 0), so a block lasts about the block time, less when that
call was slower than the rest; a pause before each block lets BLAS/XLA threads stop spinning.
Medians with min-max over the rounds; a ratio is of two medians, with the min-max of its
per-round ratios. Every loop gathers its batches from the full data inside the clock:
per-step loops pass row indices and gather inside the jitted step (PyTorch indexes its
tensors), the fused loop also draws its permutation inside its one call, the NumPy twin
indexes its arrays; only the hand-written scan over pre-batched data (where a table has one)
has its batches gathered once before its clock: it is the fused loop's reference without the
gather. Compile time = first call minus the steady-state median; peak memory from XLA's
`memory_analysis()` of the compiled step (arguments + outputs + temporaries - aliased) or
`tracemalloc` for NumPy, at the largest batch only (n/a for PyTorch, whose CPU allocator
keeps no statistics). GFLOP/s count the matmul FLOPs a step needs (forward, weight
gradients, input gradients of all but the first layer)."""


def _network_section(net: dict) -> list[str]:
    """The spiking-network workload's table (benchmarks/network.py)."""
    rows = []
    for name, bio in (("nnjax", net["bio_seconds"]), ("brian2", net.get("brian2_bio_seconds"))):
        r = net.get(name)
        if r is None:
            why = net.get("brian2_unavailable") or "not installed"
            rows.append([name, f"not run ({why})", "-", "-", "-"])
            continue
        t = r["time"]["median"]
        rows.append([name, f"{bio:g}", f"{t:.2f}", f"{t / bio:.2f}",
                     f"{r['rate_exc_hz']:.2f} / {r['rate_inh_hz']:.2f}"])  # fmt: skip
    L = ["## Spiking network (benchmarks/network.py)", ""]
    L += ["1000 AdEx neurons (800 E, 200 I, 80 E + 20 I inputs each), wake state, dt 0.1 ms.", ""]
    L += _table(["simulator", "bio s", "wall s", "wall s per bio s", "E / I rate (Hz)"], rows)
    return L + [""]
