"""``nnjax verify``: the NumPy twin against jax.grad and Optax, as a table; a progress line
with an ETA (stderr) while the steps run."""

import os
import time

HELP = "check every activation, loss, layer and optimizer against the hand-derived NumPy twin"
MAX_ARCHITECTURES = 100_000  # nnjax.verify.MAX_ARCHITECTURES (not imported: no JAX in --help)

# Compile small programs at XLA's lowest optimisation level: the same IEEE arithmetic
# (no fast-math), a fraction of the compile time, and compiling is most of this command's work.
_FAST_XLA_FLAGS = (
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false "
    "--xla_llvm_disable_expensive_passes=true --xla_cpu_parallel_codegen_split_count=1"
)


def add_arguments(parser) -> None:
    from nnjax.commands.options import int_at_least, seed

    parser.add_argument(
        "--seed", type=seed, default=0, metavar="N", help="seed of the random problems"
    )
    parser.add_argument(
        "--architectures",
        type=int_at_least(0, high=MAX_ARCHITECTURES),
        default=8,
        metavar="N",
        help="random MLP architectures to compare (default: 8; the tests run 200; at most "
        f"{MAX_ARCHITECTURES}: every step is made before the first runs, and 1e11 of them "
        "filled the memory)",
    )
    parser.add_argument(
        "--failures-only", action="store_true", help="print only the rows that fail"
    )


def _table(rows, failures_only: bool):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="nnjax verify: NumPy twin vs jax.grad / Optax")
    for col, justify in (("component", "left"), ("max abs diff", "right"),
                         ("max rel diff", "right"), ("tolerance", "right"),
                         ("verdict", "center")):  # fmt: skip
        table.add_column(col, justify=justify)
    for r in rows:
        if failures_only and r.passed:
            continue
        verdict = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        tol = f"{r.bound} <= {r.tol:.0e}"
        # escaped: rich read "[z > 0]" of "relu' = 1[z > 0] vs ..." as markup and dropped it
        table.add_row(escape(r.component), f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", tol, verdict)
    return table


def run(args) -> int:
    if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
        # read when JAX starts its backend, which nothing has done yet in this command
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FAST_XLA_FLAGS).strip()
    from nnjax.progress import Progress

    t0 = time.perf_counter()
    with Progress(1, "verify", unit="step") as bar:
        bar.start("importing JAX...")  # at once: the first step needs JAX, a few seconds in
        import jax
        from rich.console import Console

        from nnjax import verify

        jax.devices()  # a JAX_PLATFORMS backend that cannot start: one line, not FAIL rows

        def on_step(done: int, total: int, name: str) -> None:
            bar.total = total
            bar.update(done, name if done == total else f"{name}...")

        rows = verify.run_all(seed=args.seed, architectures=args.architectures, on_step=on_step)
    elapsed = time.perf_counter() - t0
    console = Console()
    console.print(_table(rows, args.failures_only))
    failed = sum(not r.passed for r in rows)
    summary = f"{len(rows) - failed}/{len(rows)} checks pass in {elapsed:.1f} s"
    if failed:
        from rich.markup import escape

        for r in rows:  # one unwrapped line each: the table wraps long names at 80 columns
            if not r.passed:
                diff = r.max_rel if r.bound == "rel" else r.max_abs
                line = f"FAIL {r.component}: {r.bound} diff {diff:.2e} > {r.tol:.0e}"
                console.print(escape(line), soft_wrap=True, highlight=False)
        console.print(f"[bold red]{failed} FAILED[/bold red]; {summary}")
        return 1
    console.print(f"[green]all pass[/green]: {summary}")
    return 0
