"""The ```python blocks of README.md and docs/*.md run as written, so that the docs cannot drift.

Each Markdown file's blocks run in order in one fresh Python process (its working directory a
temporary folder: the `runs/a`, `run` and `compare-digits` the snippets write land there), in
one namespace, as a reader pasting them one after the other would run them. Tracebacks name
the Markdown file and its line.

The mapping from the docs to this test:

- ``SETUP[(file, anchor)]`` runs just before the one block of ``file`` that contains
  ``anchor``: the names the prose leaves to the reader (``model, params, X, y``; the saved
  model a bash block wrote), kept small.
- ``CHECK[(file, anchor)]`` runs just after it: the values the block's comments promise
  (``# ~0.97``, shapes), with a tolerance for floats.
- A block whose previous non-blank line is ``<!-- no-test: REASON -->`` is skipped; the reason
  is printed with ``-rs``.

Every anchor must match exactly one block (``test_mapping_matches_the_docs``), so an edited doc
fails here until its setup or check is updated too.

Cost: about 60 s of CPU in all, most of it compiling; a third is optimizers.md's full digits
study (100 runs). Outside pytest-xdist the files run two at a time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import USER_XLA_FLAGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NO_TEST = re.compile(r"^<!--\s*no-test:\s*(?P<reason>\S.*?)\s*-->$")
TIMEOUT_S = 300
# Run at XLA's default optimisation, as a reader's run (and the doc's recorded numbers) is,
# not at the suite's fast-compile level (tests/conftest.py): the default `compare` study of
# optimizers.md took 35.6 s at the fast level, 29.7 s at the defaults (2 AMD EPYC cores)
AT_XLA_DEFAULTS = {"optimizers.md"}

_DATA = """\
import jax, nnjax
ds = nnjax.data.load("moons")  # small: 320 training examples
X, y = ds.X_train, ds.y_train
model = nnjax.mlp([8, 2])
_, params = model.init(jax.random.key(0), (-1, 2))
"""

SETUP = {
    # the bash block before it wrote `run` with `nnjax train ... --out run`; here from Python
    ("README.md", 'model = nnjax.load("run")'): """\
nnjax.save("run", cnn, res.params, input_shape=(-1, 64))
X_new = ds.X_test[:5]
""",
    ("checkpoints.md", 'checkpoint_dir="runs/a", checkpoint_every=5'): _DATA,
    ("checkpoints.md", "checkpoint.save(D, step, tree"): """\
D, step = "runs/api", 1
tree = like = {"params": params, "key": jax.random.key(1)}
""",
    ("checkpoints.md", "io.atomic_write_bytes(path, data)"): """\
import matplotlib.pyplot as plt
path, data, text, obj = "runs/api/notes.bin", b"bytes", "text", {"a": 1}
fig = plt.figure()
""",
    ("checkpoints.md", "preflight.check_writable(D,"): "keep = 3\n",
    ("checkpoints.md", "runconfig.config_diff(saved, current"): """\
import json
saved = {"optimizer": {"name": "adam", "learning_rate": 0.001}, "batch_size": 32}
current = json.loads(json.dumps(saved))  # equal: check_config passes
""",
    # 8 virtual CPU devices, set before JAX starts its backend (as the doc says below)
    ("parallel.md", "parallel.make_mesh(8)"): """\
import jax
jax.config.update("jax_num_cpu_devices", 8)
import nnjax
ds = nnjax.data.load("digits")
X, y = ds.X_train, ds.y_train
model = nnjax.mlp([32, 10])
_, params = model.init(jax.random.key(0), (-1, 64))
""",
}

CHECK = {
    ("README.md", 'ds = nnjax.data.load("digits")'): """\
assert logits.shape == (360, 10), logits.shape
acc = float(res.metrics["test_accuracy"][-1])
assert abs(acc - 0.97) <= 0.01, f"README says ~0.97, got {acc}"
assert set(nnjax.evaluate(model, res.params, ds.X_test, ds.y_test)) >= {"loss", "accuracy"}
""",
    ("README.md", "cnn = serial("): """\
acc = nnjax.evaluate(cnn, res.params, ds.X_test, ds.y_test)["accuracy"]
assert abs(acc - 0.98) <= 0.01, f"README says ~0.98, got {acc}"
assert gru.init(jax.random.key(0), (-1, 40))[0] == (-1, 10)
""",
    ("README.md", 'model = nnjax.load("run")'): """\
assert model.predict(X_new).shape == (5,)
assert model.predict_proba(X_new).shape == (5, 10) and model(X_new).shape == (5, 10)
""",
    ("checkpoints.md", 'checkpoint_dir="runs/a", checkpoint_every=5'): """\
assert nnjax.checkpoint.steps("runs/a") == [90, 95, 100]  # every 5 epochs, keep=3
""",
    ("checkpoints.md", 'checkpoint.lock("runs/a") as lk'): """\
import os
assert not os.path.exists("runs/a/nnjax.lock")  # removed on leaving the block
""",
    ("checkpoints.md", "stop_on_signals() as stop"): """\
assert len(res.metrics["step_loss_mean"]) == 100  # resumed: the whole history
""",
    ("checkpoints.md", "checkpoint.save(D, step, tree"): """\
assert checkpoint.steps(D) == [1] and metadata == {"epoch": 1}
""",
    ("checkpoints.md", "io.atomic_write_bytes(path, data)"): """\
import os
assert os.path.isfile("loss.png") and os.path.isfile(path)
assert not [f for f in os.listdir(D) if f.endswith(".tmp")]
""",
    ("checkpoints.md", "preflight.check_writable(D,"): """\
assert isinstance(est, int) and est > 0
""",
    ("checkpoints.md", "runconfig.config_diff(saved, current"): """\
assert wanted["optimizer"]["learning_rate"] == 1e-4
other = {"optimizer": {"name": "sgd", "learning_rate": 0.01}, "batch_size": 32}
try:
    runconfig.check_config(saved, other, source="runs/a/ckpt_00000004.npz")
    raise AssertionError("check_config accepted another optimizer")
except runconfig.ConfigMismatchError as e:
    assert "optimizer.learning_rate: 0.001 -> 0.01; optimizer.name: 'adam' -> 'sgd'" in str(e)
""",
    ("optimizers.md", 'compare("digits", out="compare-digits")'): """\
import math
s = c.summary["adam"]
assert math.isclose(s["best_lr"], 1e-3, rel_tol=1e-9), s["best_lr"]
acc = s["test_accuracy"]["mean"]
assert abs(acc - 0.9711) <= 0.003, f"the doc's table says 0.9711, got {acc}"
assert c.result.runs["adam"].step_loss.shape == (5, 5, 2100)
""",
    ("parallel.md", "parallel.make_mesh(8)"): """\
assert mesh.devices.size == 8 and mesh.axis_names == ("data",)
assert res.params is not None
""",
    ("saved-models.md", 'nnjax.save("run", model, res.params'): """\
assert p(X_raw).shape == (1797, 10)
proba = p.predict_proba(X_raw)
assert proba.shape == (1797, 10) and abs(float(proba.sum(axis=1).mean()) - 1.0) < 1e-5
assert set(p.predict(X_raw)) <= set(names)
""",
}

# Runs the parts in one namespace, each compiled under its Markdown file and line; a check
# runs in a copy of it, so that its imports cannot hide a later block's missing import.
DRIVER = """\
import json, sys, traceback
parts = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for kind, where, line, code in parts:
    try:
        exec(compile("\\n" * line + code, where, "exec"), dict(ns) if kind == "check" else ns)
    except BaseException:
        traceback.print_exc()
        print(f"DOC SNIPPET FAILED: {where}" + (f":{line}" if line else ""), file=sys.stderr)
        sys.exit(1)
"""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # the line of the opening ```python, 1-based
    code: str
    skip: str | None  # the no-test reason, or None


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with their no-test markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```"):
            i += 1
            continue
        start, lang = i, fence[3:].strip()
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        if i == len(lines):
            raise ValueError(f"{path.name}:{start + 1}: unclosed code block")
        if lang == "python":
            before = next((s.strip() for s in reversed(lines[:start]) if s.strip()), "")
            marker = NO_TEST.match(before)
            code = "\n".join(lines[start + 1 : i]) + "\n"
            skip = marker["reason"] if marker else None
            blocks.append(Block(path, start + 1, code, skip))
        i += 1
    return blocks


def _anchored(table: dict, block: Block) -> str:
    keys = [k for k in table if k[0] == block.path.name and k[1] in block.code]
    return "".join(table[k] for k in keys)


def script_parts(path: Path) -> tuple[list[tuple[str, str, int, str]], list[str]]:
    """The parts to run for one Markdown file, and the reasons of its skipped blocks."""
    parts, skipped = [], []
    for b in python_blocks(path):
        where = f"{path.name}:{b.line}"
        if b.skip:
            skipped.append(f"{where}: {b.skip}")
            continue
        if setup := _anchored(SETUP, b):
            parts.append(("setup", f"<setup of {where}>", 0, setup))
        parts.append(("block", str(b.path), b.line, b.code))
        if check := _anchored(CHECK, b):
            parts.append(("check", f"<check of {where}>", 0, check))
    return parts, skipped


def run_doc(path: Path, workdir: Path) -> subprocess.CompletedProcess:
    """Run a Markdown file's Python blocks in a fresh process in ``workdir``."""
    parts, _ = script_parts(path)
    (workdir / "parts.json").write_text(json.dumps(parts))
    (workdir / "driver.py").write_text(DRIVER)
    env = dict(os.environ, MPLBACKEND="Agg", NNJAX_CACHE_DIR="off")
    if path.name in AT_XLA_DEFAULTS:
        env["XLA_FLAGS"] = USER_XLA_FLAGS
    return subprocess.run(
        [sys.executable, "driver.py", "parts.json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


DOCS_WITH_CODE = [p for p in DOCS if python_blocks(p)]
CHECKOUT_BEFORE = set(os.listdir(ROOT))  # at collection, before any snippet runs


def leaked_into_checkout(workdir: Path) -> set[str]:
    """The names a run wrote into ``workdir`` (its top level: ``run``, ``runs``, ``new.csv``,
    ...) that have also appeared in the checkout since this module was collected: a snippet
    that wrote there instead of into its temporary folder."""
    return (set(os.listdir(workdir)) & set(os.listdir(ROOT))) - CHECKOUT_BEFORE


def test_mapping_matches_the_docs():
    """Every setup and check anchor matches exactly one block, and no block is skipped
    without a reason."""
    by_name = {p.name: python_blocks(p) for p in DOCS}
    for name, anchor in [*SETUP, *CHECK]:
        hits = [b.line for b in by_name.get(name, []) if anchor in b.code]
        assert len(hits) == 1, f"{name}: anchor {anchor!r} matches blocks at lines {hits}"
    assert {p.name for p in DOCS_WITH_CODE} >= {"README.md", "checkpoints.md"}


@pytest.fixture(scope="module")
def doc_runs(request, tmp_path_factory):
    """The selected files' runs, started at once two at a time (each process uses about one
    core): {file name: Future}. Under pytest-xdist, whose workers already share the cores,
    None: each test runs its file itself."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        yield None
        return
    wanted = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_doc_snippets_run"
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        folders = {path.name: tmp_path_factory.mktemp(path.stem) for path in wanted}
        yield {
            path.name: (pool.submit(run_doc, path, folders[path.name]), folders[path.name])
            for path in wanted
        }


@pytest.mark.parametrize("path", DOCS_WITH_CODE, ids=[p.name for p in DOCS_WITH_CODE])
def test_doc_snippets_run(path, tmp_path, doc_runs):
    """Each file's snippets pass, and write only into their temporary folder (not the checkout
    pytest may run in: the README's predict block names new.csv)."""
    future, workdir = doc_runs[path.name] if doc_runs else (None, tmp_path)
    r = future.result() if future else run_doc(path, tmp_path)
    assert r.returncode == 0, f"{path.name}: a snippet failed\n{r.stdout[-3000:]}{r.stderr[-6000:]}"
    assert not leaked_into_checkout(workdir), f"{path.name}: wrote into {ROOT}"


def test_a_snippet_writes_into_a_temporary_folder_not_the_current_one(tmp_path, monkeypatch):
    """A snippet writing new.csv (as a reader of the README's predict block might) runs in its
    temporary folder, whatever folder pytest runs in (the checkout here): the file lands there,
    and nothing new appears in the checkout."""
    doc = tmp_path / "doc.md"
    code = "import os\nopen('new.csv', 'w').write('a,y\\n1,0\\n')\nprint(os.getcwd())\n"
    doc.write_text(f"# a doc\n\n```python\n{code}```\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(ROOT)
    r = run_doc(doc, work)
    assert r.returncode == 0, r.stderr
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(work)
    assert (work / "new.csv").read_text() == "a,y\n1,0\n"
    assert not leaked_into_checkout(work) and "new.csv" not in os.listdir(ROOT)


SKIPPED = [s for p in DOCS_WITH_CODE for s in script_parts(p)[1]]


if SKIPPED:  # one skip per block marked <!-- no-test: ... -->, so that `-rs` lists them

    @pytest.mark.parametrize("reason", SKIPPED)
    def test_blocks_marked_no_test(reason):
        pytest.skip(f"not run: {reason}")
