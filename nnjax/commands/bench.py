"""``nnjax bench``: the benchmark suite (the same entry point as ``python -m benchmarks``)."""

HELP = "run the benchmark suite: results checked against the NumPy twin, then timed"


def add_arguments(parser) -> None:
    from benchmarks.cli import add_arguments as bench_arguments

    bench_arguments(parser)


def run(args) -> int:
    from benchmarks.cli import run as bench_run

    return bench_run(args)
