"""Every notebook in notebooks/ runs top to bottom (nbclient) without an error.

Each is written to run in under 60 s on 2 cores; the kernel timeout below only catches a hang
(speed is measured in the benchmark suite, never asserted in tests)."""

import os
import pathlib

import pytest
from conftest import USER_XLA_FLAGS

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# Run at XLA's default optimisation, as a reader runs them, not at the suite's fast-compile
# level (tests/conftest.py): its long network simulations took 52 s there, 25 s at the defaults;
# and so one notebook runs the optimised programs of the sleeping network.
AT_XLA_DEFAULTS = {"07_a_network_that_sleeps"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    env = dict(os.environ)
    if path.stem in AT_XLA_DEFAULTS:
        env["XLA_FLAGS"] = USER_XLA_FLAGS
    client.execute(env=env)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_its_script(path):
    """The committed .ipynb holds the cells of its jupytext .py twin, the file that is edited
    (an edit to the .py alone left the executed notebook showing the old text)."""
    jupytext = pytest.importorskip("jupytext")

    def cells(p):
        return [(c.cell_type, c.source.strip()) for c in jupytext.read(p).cells]

    script = path.with_suffix(".py")
    assert script.exists(), f"{path.name} has no {script.name}"
    fix = f"jupytext --update --to ipynb notebooks/{script.name}"
    assert cells(path) == cells(script), f"{path.name} differs from {script.name}: run `{fix}`"
