"""A run's files (:mod:`benchmarks.cli`): the measurements saved before any target is
evaluated, the report and figures written from them, and ``--report-from``, which writes
them again from a saved ``<stem>.json``. Imports nothing heavy."""

from pathlib import Path


class ReportFailed(Exception):
    """The workloads ran and their measurements are saved in ``path``, but evaluating the
    targets or writing the report failed (a defect of the suite, not of the run): the
    measurements are kept, and ``--report-from path`` writes the report again."""

    def __init__(self, path: Path):
        super().__init__(
            f"the report failed; the measurements are saved in {path}: `python -m benchmarks "
            f"--report-from {path}` writes the report from them"
        )
        self.path = path


def kept(exc: BaseException, path: Path) -> BaseException:
    """``exc`` (an ``OSError``: a full disk at the report; a ``KeyboardInterrupt``: a stop
    signal) raised after the measurements were saved in ``path``, as the same failure whose
    one line also says they are kept and how to write their report (it said only the
    failure, and a run without --out removed its temporary folder, measurements and all).
    The new exception's ``measurements`` is ``path``; its exit status is ``exc``'s."""
    from nnjax.errors import Interrupted

    note = (f"the measurements saved before the report are kept in {path}: `python -m "
            f"benchmarks --report-from {path}` writes the report")  # fmt: skip
    if isinstance(exc, KeyboardInterrupt):
        import signal

        new = Interrupted(getattr(exc, "signum", signal.SIGINT), note)
    elif exc.errno is None:
        new = type(exc)(f"{exc}; {note}")
    else:
        import os

        reason = exc.strerror or os.strerror(exc.errno)
        new = type(exc)(exc.errno, f"{reason}; {note}", exc.filename)
        if hasattr(exc, "nnjax_action"):
            new.nnjax_action = exc.nnjax_action
    new.measurements = path
    return new


def save_measurements(out: Path, stem: str, results: dict) -> Path:
    """``out/<stem>.json``: the measurements before any target is evaluated or report
    written, with the standard library only (the report's own modules may be what fails)."""
    import json

    from nnjax.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    atomic_write_text(path, json.dumps(results, indent=1, default=str) + "\n")
    return path


def report_from(args) -> int:
    """``--report-from FILE``: the targets and report of the measurements a run saved in
    FILE (``<stem>.json``), written beside it (or into ``--out``) under the same stem; the
    JSON is written again with its targets. Files of that stem already there other than
    FILE are kept unless ``--overwrite``."""
    from benchmarks import targets
    from benchmarks.cli_checks import load_measurements

    results = load_measurements(args.report_from)
    out = args.out if args.out is not None else args.report_from.parent
    stem = args.report_from.stem
    results.pop("files", None)
    results["targets"] = targets.evaluate(results)
    write(out, stem, results, args)
    return 0


def write(out: Path, stem: str, results: dict, args) -> None:
    """The report of ``results`` into ``out``: ``<stem>.json`` (with its targets), ``<stem>.md``
    and the figures (unless ``args.no_plots``); with ``args.overwrite``, an earlier run's
    figures this report does not name are removed. Prints the terminal table."""
    from benchmarks import plots, report
    from nnjax.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    pngs = {}
    if not args.no_plots:
        for name, fn in (("throughput", plots.throughput), ("vmap", plots.vmap_scaling)):
            path = out / f"{stem}-{name}.png"
            if fn(results, path):
                pngs[name] = path.name
    results["files"] = {"json": f"{stem}.json", "report": f"{stem}.md", "plots": pngs}
    report.write_json(results, out / f"{stem}.json")
    atomic_write_text(out / f"{stem}.md", report.markdown(results, pngs))
    if getattr(args, "overwrite", False):  # an earlier run's figures this report does not name
        for name in ("throughput", "vmap"):
            if name not in pngs:
                (out / f"{stem}-{name}.png").unlink(missing_ok=True)
    report.print_terminal(results)
    print(f"\nwrote {out / stem}.json, .md and {len(pngs)} plots")
