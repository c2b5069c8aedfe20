"""README.md against the code: each Python example defines every name it uses, its command
lines parse, and every module, attribute, option, command and path it names exists.

A README example that leans on names from another block (``jax``, ``ds``) fails for a reader
who pastes it alone; these tests read README.md itself, so an edit of the README or of the
code that breaks one of its promises shows here.
"""

import ast
import builtins
import importlib
import pathlib
import re
import shlex

import pytest

from nnjax.cli import COMMANDS, build_parser

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    """The fenced code blocks of README.md in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _undefined_names(source: str) -> set[str]:
    """Names a block loads that it neither binds (assignment, import, for, def) nor are
    builtins: a block run alone (``python -`` on it) raises NameError on them."""
    tree = ast.parse(source)
    bound, loaded = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound


def test_the_readme_has_its_examples():
    assert len(_blocks("python")) == 3
    assert len(_blocks("bash")) == 4


@pytest.mark.parametrize("index", range(3))
def test_each_python_example_runs_alone(index):
    """Every name a block uses is defined in that block (the reader pastes one block), or is
    the reader's own data, introduced in the block by a comment ``# NAME: ...``."""
    source = _blocks("python")[index]
    introduced = set(re.findall(r"^# (\w+): ", source, flags=re.M))
    missing = _undefined_names(source) - introduced
    assert not missing, f"README python block {index + 1} uses undefined names {sorted(missing)}"


def test_undefined_names_sees_a_missing_import():
    """The check itself: the CNN block as it was (no import, no ds) is caught."""
    old = "from nnjax.layers import Dense\n_, p = Dense(3).init(jax.random.key(0), (-1, 4))\nds.X"
    assert _undefined_names(old) == {"jax", "ds"}


def _command_lines() -> list[list[str]]:
    """Every ``nnjax ...`` line of the README's bash blocks, continuations joined, the
    trailing comment dropped, as argv lists without the leading ``nnjax``."""
    lines = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "nnjax" in words:  # `pip install -e . && nnjax train` too
                lines.append(words[words.index("nnjax") + 1 :])
    return lines


def test_every_readme_command_line_parses():
    lines = _command_lines()
    assert len(lines) >= 7
    for argv in lines:
        args, extra = build_parser(argv).parse_known_args(argv)
        assert not extra, f"nnjax {' '.join(argv)}: unknown {extra}"
        assert args.command == argv[0]


def test_the_command_table_names_real_commands():
    named = re.findall(r"^\| `nnjax (\w+)", README, flags=re.M)
    assert named and set(named) <= set(COMMANDS), set(named) - set(COMMANDS)
    assert set(COMMANDS) <= set(named), (
        f"commands missing from the table: {set(COMMANDS) - set(named)}"
    )


def test_every_option_the_readme_names_exists():
    """An option in the README (``--early-stopping``) is an option of some nnjax command."""
    parser = build_parser()
    known = {"--help", "--version"}
    for p in parser.commands.values():
        known |= {s for action in p._actions for s in action.option_strings}
    known |= {s for action in parser._actions for s in action.option_strings}
    seed_example = (ROOT / "examples" / "seed_logistic_regression.py").read_text(encoding="utf-8")
    known |= set(re.findall(r"add_argument\(\s*\"(--[a-z-]+)\"", seed_example))  # --bias
    known.add("--check")  # `ruff format --check .`
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README))
    assert named - known == set()


def _resolve(dotted: str):
    """``nnjax.a.b.C`` -> the object: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_nnjax_name_the_readme_names_exists():
    names = set(re.findall(r"\bnnjax(?:\.[A-Za-z_]\w*)+", README))
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ModuleNotFoundError, AttributeError):
            missing.append(name)
    assert not missing, f"README names that do not exist: {missing}"


def test_every_path_the_readme_names_exists():
    linked = re.findall(r"\]\(([^)#]+)\)", README)
    quoted = re.findall(r"`((?:docs|examples|benchmarks|notebooks|tests)/[^`\s]*)`", README)
    quoted += re.findall(r"python (examples/\S+\.py)", README)
    paths = set(linked) | set(quoted)
    assert len(paths) >= 10
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README paths that do not exist: {missing}"


def test_the_notebook_count_is_right():
    assert "eight of them" in README
    assert len(list((ROOT / "notebooks").glob("*.ipynb"))) == 8


def test_the_quick_start_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    quick = _blocks("bash")[0].splitlines()[1]
    command = quick.split("&&")[1].split("#")[0].strip()
    assert ci[-1].strip() == command


def test_the_cache_subfolder_example_has_the_tag_form():
    """The README's example subfolder is what nnjax._host.cpu_tag makes: arch-12 hex."""
    from nnjax._host import cpu_tag

    example = re.search(r"e\.g\. `([^`]+)/`; `nnjax info` prints it", README).group(1)
    pattern = r"[A-Za-z0-9_]+-[0-9a-f]{12}"
    assert re.fullmatch(pattern, example) and re.fullmatch(pattern, cpu_tag())
