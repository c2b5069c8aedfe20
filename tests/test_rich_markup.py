"""Text printed through rich's tables is printed as it is, never read as markup.

rich reads "[word ...]" as a style tag: nnjax verify's row "relu' = 1[z > 0] vs finite
differences" printed as "relu' = 1 vs finite differences", a benchmark note "pip install
nnjax[bench]" lost "[bench]", and a note holding "[/]" raised rich's MarkupError."""

import copy
import json
from pathlib import Path

from rich.console import Console

from benchmarks import report
from nnjax.commands import verify as verify_command
from nnjax.verify.core import Check

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def _text(renderable) -> str:
    console = Console(width=300, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_verify_prints_a_component_with_brackets_whole():
    label = "relu' = 1[z > 0] vs finite differences"
    out = _text(verify_command._table([Check(label, 0.0, 0.0, 1e-6)], False))
    assert label in out


def test_the_verify_table_holds_every_component_of_a_real_run_whole():
    """The table of a real run, in the order ``nnjax verify`` runs its steps (one random
    generator shared by them all): every row passes, and each is printed whole."""
    from nnjax import verify

    rows = verify.run_all(seed=0, architectures=1)
    failing = [f"{r.component}: rel {r.max_rel:.2e}" for r in rows if not r.passed]
    assert not failing, failing
    out = _text(verify_command._table(rows, False))  # 300 columns: no cell wraps
    assert any("[" in r.component for r in rows)  # the relu' row has one
    missing = [r.component for r in rows if r.component not in out]
    assert not missing


def test_benchmark_report_prints_notes_targets_and_warnings_as_they_are():
    results = json.loads((RESULTS / "cpu-2cores-2026-12-05.json").read_text())
    results = copy.deepcopy(results)
    note = "torch missing: pip install nnjax[bench] [/] to run it"
    results["mlp"][0]["skipped"] = {"torch": note}
    results["targets"][0]["measured"] = "[z > 0] measured"
    results["warnings"] = ["a [red]warning[/red] with [brackets]"]
    console = Console(width=400, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    report.print_terminal(results, console)
    out = console.export_text()
    assert f"skipped torch: {note}" in out
    assert "[z > 0] measured" in out
    assert "WARNING: a [red]warning[/red] with [brackets]" in out
