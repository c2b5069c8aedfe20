"""Claims of the study commands (compare, sleep, night, verify, info, bench) and their shared
option types, checked against what they do: each test pins a claim that was found false."""

import errno
import os

import pytest

from nnjax.cli import main
from nnjax.commands import compare as compare_command
from nnjax.commands import night as night_command
from nnjax.commands import options
from nnjax.commands import sleep as sleep_command

MODULES = {"compare": compare_command, "sleep": sleep_command, "night": night_command}
# the smallest command line of each (only checked: the run is replaced by a failure)
SMALL = {
    "compare": ["--dataset", "xor", "--optimizers", "gd", "--seeds", "1", "--epochs", "1"],
    "sleep": ["--methods", "sequential", "--steps", "1", "--seeds", "2", "--orders", "0"],
    "night": ["--parts", "consolidation", "--seeds", "2", "--train-s", "0.01"],
}


def _error_line(capsys, command: str) -> str:
    """The one line on stderr, ``nnjax <command>: error: ...``."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"nnjax {command}: error: "), err
    return err


def _refused(command, out, capsys, monkeypatch) -> tuple[int, str]:
    """``nnjax COMMAND ... --out OUT`` with its run replaced by a failure: (status, line)."""
    monkeypatch.setattr(MODULES[command], "run", lambda args: pytest.fail("the run started"))
    status = main([command, *SMALL[command], "--out", str(out)])
    return status, _error_line(capsys, command)


# 1. nnjax sleep --out with a file on its way: it was "not writable: a component of the path
# is a file, not a directory" with no path named (compare and night name the file)


@pytest.mark.parametrize("depth", [1, 2])
def test_sleep_names_the_file_on_the_way_of_its_out(depth, tmp_path, capsys, monkeypatch):
    parent = tmp_path / "parent"
    parent.write_text("mine")
    out = parent / "out" if depth == 1 else parent / "deeper" / "out"
    status, line = _refused("sleep", out, capsys, monkeypatch)
    assert status == 3
    assert line == (
        f"nnjax sleep: error: --out {out}: {parent} on its way is a file, not a folder; "
        "give a folder path (errno 20, ENOTDIR)"
    )
    assert sorted(os.listdir(tmp_path)) == ["parent"] and parent.read_text() == "mine"


# 2. a link to nothing on the way of --out was called "a file" (compare, night) or "No such
# file or directory" without its name (sleep)


@pytest.mark.parametrize("command", ["compare", "sleep", "night"])
def test_a_link_to_nothing_on_the_way_of_out_is_named_as_one(
    command, tmp_path, capsys, monkeypatch
):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    out = link / "out"
    status, line = _refused(command, out, capsys, monkeypatch)
    assert status == 3
    assert line == (
        f"nnjax {command}: error: --out {out}: {link} on its way is a symbolic link to "
        f"{tmp_path / 'nowhere'}, which does not exist; give a folder path (errno 2, ENOENT)"
    )
    assert sorted(os.listdir(tmp_path)) == ["link"] and not os.path.lexists(tmp_path / "nowhere")


def test_out_parent_error_names_a_link_loop_and_still_a_file(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    error = options.out_parent_error(str(loop / "x"))
    assert str(error) == (
        f"--out {loop / 'x'}: {loop} on its way is a symbolic link in a loop (-> {loop}); "
        "give a folder path"
    )
    assert error.errno == errno.ELOOP
    (tmp_path / "f").write_text("")
    error = options.out_parent_error(str(tmp_path / "f" / "x"))
    assert str(error).endswith(
        f"{tmp_path / 'f'} on its way is a file, not a folder; give a folder path"
    )
    assert error.errno == errno.ENOTDIR
    link_to_file = tmp_path / "to-f"
    link_to_file.symlink_to(tmp_path / "f")  # a link to a file is a file on the way
    assert "to-f on its way is a file, not a folder" in str(
        options.out_parent_error(str(link_to_file / "x"))
    )
    assert options.out_parent_error(str(tmp_path / "new" / "x")) is None


# 3. the option types' module docstring quoted the one-line error without its "(see nnjax
# train --help)" tail


def test_the_options_docstring_quotes_the_error_line_as_it_is(capsys):
    doc = " ".join(options.__doc__.split())
    quoted = doc.split("as one line: ``")[1].split("``")[0]
    assert main(["train", "--lr", "nan"]) == 2
    assert _error_line(capsys, "train") == quoted


# 4. nnjax night --seed was "the first random seed": the consolidation's networks are split
# from it (jax.random.split(key(seed), --seeds)), not seeds seed, seed + 1, ...


def test_night_seed_help_says_how_the_consolidation_draws_its_networks(monkeypatch, capsys):
    import jax

    from nnjax.brain import consolidation

    seen = []

    def split(key, n):
        seen.append((jax.random.key_data(key).tolist(), n))
        raise RuntimeError("stop")

    monkeypatch.setattr(consolidation.jax.random, "split", split)
    with pytest.raises(RuntimeError, match="stop"):
        consolidation.run_experiment(3, seed=5)
    assert seen == [(jax.random.key_data(jax.random.key(5)).tolist(), 3)]
    assert main(["night", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "first random seed" not in help_text
    assert "the consolidation's --seeds networks are split from it" in help_text


# 5. nnjax night's memory check counted the night's recordings only: --n-exc 80000 over 3 s
# passed it on a 23.5 GiB machine, though its dense synapses alone take 51 GB


@pytest.mark.parametrize("n_exc", [100, 120])
def test_synapse_bytes_are_the_night_networks_weights_and_mask(n_exc):
    import jax

    from nnjax.brain import circuits, night

    params = circuits.init_params(jax.random.key(0), night.night_network(n_exc))
    names = ("W_ee", "mask_ee", "W_ei", "W_ie", "W_ii")
    assert night_command.synapse_bytes(n_exc) == sum(getattr(params, n).nbytes for n in names)


def test_night_refuses_a_network_whose_synapses_exceed_the_memory(capsys, monkeypatch, tmp_path):
    import nnjax._host

    monkeypatch.setattr(nnjax._host, "physical_memory", lambda: 16 * 2**30)
    monkeypatch.setattr(night_command, "run", lambda args: pytest.fail("the run started"))
    out = tmp_path / "night"
    argv = ["--parts", "night", "--n-exc", "60000", "--hypnogram", "W,W,W", "--epoch-s", "1"]
    assert main(["night", *argv, "--out", str(out)]) == 2
    assert _error_line(capsys, "night") == (
        "nnjax night: error: --hypnogram/--epoch-s/--n-exc: 3 epochs of 1 s = 3 s of 75000 "
        "cells need about 34.9 GiB of memory for their recordings and synapses; this machine "
        "has 16 GiB: shorten --epoch-s or the hypnogram, or lower --n-exc"
    )
    assert not out.exists()


# 6. nnjax compare's printed table: its header gave each "mean ± std" 16 columns, and _pm
# writes 17, so "val loss" ended one column before its numbers, "test accuracy", "compile"
# and "run" two


def test_compare_prints_each_header_over_its_column(tmp_path, capsys):
    argv = ["--dataset", "toy", "--optimizers", "gd,sgd", "--seeds", "2", "--epochs", "1"]
    assert main(["compare", *argv, "--out", str(tmp_path / "c"), "--no-plots"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("optimizer "))
    rows = [line for line in lines if line.startswith(("gd ", "sgd "))]
    assert len(rows) == 2
    for row in rows:
        assert len(row) == len(header), (header, row)
        digits = "0123456789"
        columns = [("best lr", digits), ("val loss", digits), ("test accuracy", digits)]
        for label, last in [*columns, ("compile", "s"), ("run", "s")]:
            end = header.index(label) + len(label)
            assert row[end - 1] in last and row[end : end + 1] in ("", " "), (label, header, row)
