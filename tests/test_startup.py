"""Lean start-up: ``import nnjax`` and the CLI's help, version and usage errors load no JAX;
Flax, matplotlib, rich and the benchmarks load only where used; the lazy package still
offers every public name. Properties of ``sys.modules`` in fresh subprocesses, not timings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nnjax

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("jax", "jaxlib", "optax", "flax", "matplotlib", "rich", "benchmarks", "sklearn", "scipy")


def _python(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; its last stdout line."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def _loaded_after(code: str) -> list[str]:
    out = _python(f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))")
    return sorted({m.split(".")[0] for m in json.loads(out)} & set(HEAVY))


def test_import_nnjax_loads_nothing_heavy():
    code = "import nnjax\nassert nnjax.__version__ and 'fit' in dir(nnjax)"
    assert _loaded_after(code) == []
    assert "numpy" not in _python("import nnjax, sys; print(sorted(sys.modules))")


# every parse below, usage errors included, must load no JAX
CLI_CASES = [
    [],
    ["--help"],
    ["--version"],
    ["trian"],
    ["info", "--help"],
    ["verify", "--help"],
    ["verify", "--architectures", "-1"],
    ["sleep", "--help"],
    ["sleep", "--orders", "0,,1"],
    ["train", "--help"],
    ["compare", "--help"],
    ["predict", "--help"],
    ["night", "--help"],
    ["bench", "--help"],
    ["train", "--lr", "0"],
    ["train", "--resume"],
]


@pytest.mark.parametrize("argv", CLI_CASES, ids=[" ".join(a) for a in CLI_CASES])
def test_cli_help_version_and_usage_errors_load_no_jax(argv):
    code = (
        "import contextlib, io\nfrom nnjax.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):"
        f"\n    assert main({argv!r}) in (0, 2)"
    )
    # bench's options come from the suite's own module (benchmarks.cli), nothing heavier
    allowed = ["benchmarks"] if argv[:1] == ["bench"] else []
    assert _loaded_after(code) == allowed


@pytest.mark.parametrize(
    "first", ["nnjax.compare", "from nnjax import compare", "import nnjax.compare.study"]
)
def test_nnjax_compare_is_the_study_function_however_it_is_reached_first(first):
    """README: ``nnjax.compare(...)``. Reached first as an attribute it was the subpackage
    (``TypeError: 'module' object is not callable``); every way in gives the function."""
    setup = f"import nnjax\n{first}\n"
    code = (
        setup
        + """
from nnjax import compare
from nnjax.compare import make_study
import sys
assert nnjax.compare is compare and callable(compare), compare
assert compare.__module__.startswith("nnjax.compare"), compare.__module__
assert sys.modules["nnjax.compare"].make_study is make_study  # from-imports still work
print("ok")
"""
    )
    assert _python(code) == "ok"


def test_modules_load_flax_matplotlib_rich_only_where_used():
    """Every nnjax module but ``interop`` imports without Flax, matplotlib, rich or the
    benchmarks; importing the subpackage ``nnjax.compare`` keeps ``nnjax.compare`` the
    function; every public name is what its module defines."""
    code = """
import importlib, pkgutil, sys
import nnjax
import nnjax.compare.study
assert callable(nnjax.compare), nnjax.compare
for m in pkgutil.walk_packages(nnjax.__path__, "nnjax."):
    if m.name not in ("nnjax.interop", "nnjax.__main__"):
        importlib.import_module(m.name)
heavy = [k for k in ("flax", "matplotlib", "rich", "benchmarks") if k in sys.modules]
assert heavy == [], heavy
from nnjax import fit, serial
assert fit is importlib.import_module("nnjax.train").fit and serial is nnjax.layers.serial
assert all(getattr(nnjax, n) is not None for n in nnjax.__all__)
import nnjax.interop
assert "flax" in sys.modules
print("ok")
"""
    assert _python(code, timeout=300) == "ok"


def test_lazy_names_are_the_modules_objects():
    import nnjax.data
    import nnjax.models
    import nnjax.train

    assert nnjax.fit is nnjax.train.fit and nnjax.mlp is nnjax.models.mlp
    assert nnjax.data is sys.modules["nnjax.data"]
    assert nnjax.NonFiniteLossError is nnjax.train.NonFiniteLossError
    assert set(nnjax.__all__) <= set(dir(nnjax))
    # nothing else public but loaded submodules: importlib, sys, types, TYPE_CHECKING were
    # listed (tab completion offered nnjax.sys)
    extra = {n for n in dir(nnjax) if not n.startswith("_")} - set(nnjax.__all__)
    assert all(f"nnjax.{n}" in sys.modules for n in extra), sorted(extra)
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        nnjax.fitt  # noqa: B018


def test_enable_x64():
    import jax

    before = jax.config.jax_enable_x64
    try:
        nnjax.enable_x64(True)
        assert jax.numpy.zeros(1).dtype == jax.numpy.float64
        nnjax.enable_x64(False)
        assert jax.numpy.zeros(1).dtype == jax.numpy.float32
    finally:
        jax.config.update("jax_enable_x64", before)
