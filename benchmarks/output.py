"""A run's files (:mod:`benchmarks.cli`): the measurements saved after each workload
(:class:`Progress`) and before any target is evaluated, the report and figures written from
them, and ``--report-from``, which writes them again from a saved ``<stem>.json``. Imports
nothing heavy."""

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


class WorkloadFailed(Exception):
    """A workload raised an unexpected error (a defect of the suite: its traceback comes
    first) after the measurements of the workloads before it were saved: ``progress``
    (:class:`Progress`) says which, and where."""

    def __init__(self, progress: "Progress"):
        super().__init__(progress.note(f"the {progress.running} workload failed (above)"))
        self.path = self.measurements = progress.path


def kept(exc: BaseException, path: Path, note: str | None = None) -> BaseException:
    """``exc`` (an ``OSError``: a full disk at the report; a ``KeyboardInterrupt``: a stop
    signal) raised after the measurements were saved in ``path``, as the same failure whose
    one line also says they are kept and how to write their report (it said only the
    failure, and a run without --out removed its temporary folder, measurements and all).
    ``note``: that sentence (default: the measurements saved before the report). The new
    exception's ``measurements`` is ``path``; its exit status is ``exc``'s."""
    from nnjax.errors import Interrupted

    note = note or (f"the measurements saved before the report are kept in {path}: `python "
                    f"-m benchmarks --report-from {path}` writes the report")  # fmt: skip
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


def stopped(exc: BaseException, progress: "Progress") -> BaseException:
    """``exc``, raised during a workload (or while saving after one), as the failure that
    also says in its one line what ``progress`` kept: a signal or an ``OSError`` stays
    itself (its exit status), an unexpected error becomes :class:`WorkloadFailed`."""
    if isinstance(exc, KeyboardInterrupt | OSError):
        return kept(exc, progress.path, progress.note())
    return WorkloadFailed(progress)


class Progress:
    """The measurements of a run's finished workloads, saved after each one in
    ``out/<stem>.json`` (atomically: the file always holds every workload saved so far,
    whole), with ``"complete": false``, ``"done"`` (the workloads it holds, in the order
    they ran) and ``"missing"`` (those of ``planned`` it does not). The run's final
    :func:`save_measurements` replaces it with the complete file. A save that fails (a full
    disk) is said once, on stderr, and the run goes on; the file saved before stays.
    ``out`` None: nothing is saved."""

    def __init__(self, out: Path | None, stem: str, planned: list[str]):
        self.out, self.stem, self.planned = out, stem, list(planned)
        self.done: list[str] = []  # the workloads finished
        self.saved: list[str] = []  # those the file on disk holds
        self.path: Path | None = None  # the file, once saved
        self.running: str | None = None  # the step under way
        self.warned = False

    @property
    def missing(self) -> list[str]:
        """The planned workloads the saved file does not hold."""
        return [w for w in self.planned if w not in self.saved]

    def finished(self, name: str, results: dict) -> None:
        """Step ``name`` finished, its measurements in ``results``: save them all."""
        from nnjax.io import signals_deferred

        if name in self.planned:
            self.done.append(name)
        if self.out is None:
            return
        done = list(self.done)
        missing = [w for w in self.planned if w not in done]
        partial = {**results, "complete": False, "done": done, "missing": missing}
        try:
            with signals_deferred():  # the file and what this says of it agree
                self.path = save_measurements(self.out, self.stem, partial)
                self.saved = done
        except OSError as e:
            self._warn(name, e)

    def _warn(self, name: str, e: OSError) -> None:
        import sys

        from nnjax.errors import describe

        if self.warned:
            return
        self.warned = True
        held = (f"{self.path} keeps {', '.join(self.saved) or 'no workload'}" if self.path
                else "none is saved yet")  # fmt: skip
        print(f"warning: the measurements after {name} were not saved ({describe(e)}); "
              f"{held}; the run goes on", file=sys.stderr, flush=True)  # fmt: skip

    def note(self, stop: str | None = None) -> str:
        """One sentence: where the run stopped (``stop``, default: during the step under
        way), what is kept where, how to write its report and run the rest."""
        stop = stop or (f"stopped during {self.running}" if self.running else None)
        s = (f"{stop}; " if stop else "") + (
            f"the measurements of {', '.join(self.saved)} are kept in {self.path}: `python -m "
            f"benchmarks --report-from {self.path}` writes their report"
        )
        if self.missing:
            s += f"; `--only {' '.join(self.missing)}` reruns the rest"
        return s


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
