"""``nnjax bench``: the benchmark suite (the same entry point as ``python -m benchmarks``)."""

HELP = "run the benchmark suite: results checked against the NumPy twin, then timed"
# the suite times compilation: a persistent cache would make it time a file read
COMPILATION_CACHE = False


def add_arguments(parser) -> None:
    # TODO: benchmarks.cli imports the suite (and JAX) at module level, so `nnjax bench --help`
    # still starts JAX; it becomes light when the benchmarks move under nnjax (issue 16, 7)
    from benchmarks.cli import add_arguments as bench_arguments

    bench_arguments(parser)


def run(args) -> int:
    from benchmarks.cli import run as bench_run

    return bench_run(args)
