"""Claims of the user documents (README.md, docs/*.md, notebooks/README.md) checked by running
them: a call the prose writes as ``nnjax.a.b(...)`` works as written after ``import nnjax``
(the README's ``nnjax.compare.compare(...)`` raised AttributeError: ``nnjax.compare`` is the
study function, not its module), and the configuration-mismatch line docs/checkpoints.md
quotes is the one ``fit`` gives in the case it describes (it showed one field where the
default rates of adam and momentum make two). Tiny data, 2 to 4 epochs."""

import functools
import pathlib
import re

import jax
import pytest

import nnjax

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "notebooks" / "README.md",
]
CALL = re.compile(r"\bnnjax((?:\.[A-Za-z_]\w*)+)\(")


def _calls() -> dict[str, list[str]]:
    """Every dotted ``nnjax.x.y(`` call of the documents, with the files that write it."""
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for tail in CALL.findall(path.read_text(encoding="utf-8")):
            found.setdefault(tail.lstrip("."), []).append(path.name)
    return found


def test_the_documents_write_calls():
    calls = _calls()
    assert len(calls) >= 15 and "fit" in calls and "compare" in calls


@pytest.mark.parametrize("dotted", sorted(_calls()))
def test_a_documented_call_resolves_from_import_nnjax(dotted):
    # what a reader types after `import nnjax`: attribute access, not a module path
    obj = functools.reduce(getattr, dotted.split("."), nnjax)
    assert callable(obj), f"nnjax.{dotted} is not callable"


def _quoted_after(text: str, lead: str) -> str:
    """The indented block that follows ``lead`` in ``text``, as one line."""
    start = text.index(lead) + len(lead)
    block = re.match(r"\n\n((?:    .*\n)+)", text[start:]).group(1)
    return " ".join(block.split())


def test_the_config_mismatch_line_of_docs_checkpoints_is_what_fit_gives(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "checkpoints.md").read_text(encoding="utf-8")
    documented = _quoted_after(
        text, 'with `optimizer="momentum"` (whose default rate is 0.01) is\nrefused with:'
    )
    monkeypatch.chdir(tmp_path)
    ds = nnjax.data.load("moons")
    X, y = ds.X_train[:64], ds.y_train[:64]
    model = nnjax.mlp([8, 2])
    _, params = model.init(jax.random.key(0), (-1, 2))
    kw = dict(batch_size=32, key=0, checkpoint_dir="runs/a")
    nnjax.fit(model, params, X, y, epochs=2, **kw)  # fit's default optimizer: adam
    with pytest.raises(nnjax.runconfig.ConfigMismatchError) as e:
        nnjax.fit(model, params, X, y, epochs=4, resume=True, optimizer="momentum", **kw)
    assert str(e.value) == documented
