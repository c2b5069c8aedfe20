"""The tests marked ``xla_defaults``, run in a process at XLA's default optimisation.

The suite compiles at XLA:CPU's lowest optimisation level (tests/conftest.py); a few tests
hold only for the programs XLA optimises as a user's run does: numbers recorded bit for bit
by earlier versions, the compiled init's equality with the eager draw, the shape of an
optimised program. Each file holding such tests runs them here, at XLA's defaults.
"""

import os
import subprocess
import sys

import pytest
from conftest import USER_XLA_FLAGS, XLA_DEFAULTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["test_cli_init.py", "test_execution.py", "test_versions_audit.py"]


def test_the_files_listed_are_those_holding_marked_tests(request):
    marked = {
        os.path.basename(item.path)
        for item in request.session.items
        if item.get_closest_marker("xla_defaults")
    }
    if len({os.path.basename(item.path) for item in request.session.items}) < 100:
        pytest.skip("only part of the suite was collected")
    assert marked == set(FILES), "update FILES in tests/test_default_compiler.py"


@pytest.mark.skipif(XLA_DEFAULTS, reason="the whole run is at XLA's defaults")
@pytest.mark.parametrize("name", FILES)
def test_marked_tests_pass_at_xla_defaults(name):
    env = {**os.environ, "NNJAX_TEST_XLA_DEFAULTS": "1", "XLA_FLAGS": USER_XLA_FLAGS}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    cmd += ["-m", "xla_defaults", os.path.join("tests", name)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout.splitlines()[-1] and "skipped" not in tail, tail
