"""How ``nnjax night`` writes its files into ``--out``: its numbers, then its figures.

A run of both parts writes the night part's files as soon as that part has finished
(:func:`write_first_part`), then all of them again at the end. The consolidation part is a
few long compiled computations that a signal cannot stop half-way: a signal there ends the
command within :data:`nnjax.cli_signals.GRACE_S` seconds with nothing more written, and so
does the kernel on SIGKILL or out of memory. The night part's minutes of results were lost
then; now they stay in ``--out``, their README saying the run did not finish. A signal while
either write runs (a second or two) waits for its files (:func:`nnjax.io.signals_deferred`):
one in between left a README beside none of its figures, or some.
"""

import json
import os

# the figures of each part (nnjax.brain.night.run_night_part, run_consolidation_part): a run
# without a part removes that part's figures of an earlier run from --out
FIGURES = {"night": ("night.png", "stages.png"), "consolidation": ("recall.png", "replay.png")}
# every file a run writes into --out (run) or removes there (remove_stale_figures): a run
# into a folder holding any of them is refused unless --overwrite (check; a test keeps the
# list whole)
NUMBERS = ("results.json", "README.md")
OUT_FILES = (*NUMBERS, *(name for names in FIGURES.values() for name in names))


def write_files(folder: str, results: dict, figures: dict, parts, overwrite: bool) -> None:
    """results.json and README.md (:func:`nnjax.brain.night.report_markdown`) as one atomic
    group, then ``figures`` ({file name: Figure}); with ``overwrite``, the figures of the
    parts not in ``parts`` are removed from ``folder`` (without it, the check before the run
    found none there). A disk that fills at the figures keeps the numbers, and no earlier
    run's figure stays beside them (:func:`nnjax.io.write_numbers_then_figures`)."""
    from nnjax import io
    from nnjax.brain import night

    # strict JSON: a NaN (an undefined p, an Up/Down frequency without alternation) is null
    numbers = json.dumps(night.jsonable(results), indent=1, allow_nan=False) + "\n"
    files = [
        (os.path.join(folder, "results.json"), numbers.encode()),
        (os.path.join(folder, "README.md"), night.report_markdown(results).encode()),
    ]

    def write_figures() -> None:
        if overwrite:
            remove_stale_figures(folder, parts)
        for name, fig in figures.items():
            io.atomic_save_figure(fig, os.path.join(folder, name), dpi=120)

    io.write_numbers_then_figures(
        folder, OUT_FILES[len(NUMBERS) :], lambda: io.atomic_write_files(files),
        write_figures, numbers=NUMBERS,
    )  # fmt: skip


def write_first_part(out: str, results: dict, figures: dict, refuse, overwrite: bool):
    """Write the night part's ``results`` (marked ``"unfinished": ["consolidation"]``) and
    ``figures`` into ``out`` before the consolidation part starts. Returns the state of
    ``out``'s files afterwards (:func:`nnjax.rescue.out_files_state`), the ``before`` of the
    final write's check for files that appeared meanwhile, so that these do not count; None
    when nothing was written: ``refuse()`` (files of the run's names that appeared in ``out``
    while the night ran: kept, and the final write rescues the run as before) or a failed
    write (a full disk: said on stderr; the run goes on and writes everything at its end)."""
    import sys

    from nnjax.errors import describe_os_error
    from nnjax.io import signals_deferred
    from nnjax.rescue import out_files_state

    later = "the whole run's files are written at its end"
    error = refuse()
    if error is not None:
        print(f"nnjax night: the night part is not written now: {error}; {later}",
              file=sys.stderr, flush=True)  # fmt: skip
        return None
    partial = {**results, "unfinished": ["consolidation"]}
    try:  # a signal waits for the files (a second or two): one in between left the
        with signals_deferred():  # README's night.png and stages.png unwritten
            write_files(out, partial, figures, ("night",), overwrite)
    except OSError as e:
        print(f"nnjax night: the night part is not written now: {describe_os_error(e)}; "
              f"{later}", file=sys.stderr, flush=True)  # fmt: skip
        return out_files_state(out, OUT_FILES)  # what it left is its own (refused just now)
    print(f"nnjax night: the night part's results are in {out}/ (results.json, README.md, "
          f"{', '.join(figures)}); a run stopped from here keeps them, one that ends replaces "
          "them", flush=True)  # fmt: skip
    return out_files_state(out, OUT_FILES)


def remove_stale_figures(out: str, parts) -> None:
    """Remove from ``out`` the figures of the parts not in ``parts``: an earlier run's
    night.png beside a README that describes only the consolidation would pass for this
    run's. Only with --overwrite, and only these names (:data:`FIGURES`)."""
    for part, names in FIGURES.items():
        if part in parts:
            continue
        for name in names:
            path = os.path.join(out, name)
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
