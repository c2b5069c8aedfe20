"""Two runs sharing one folder, met at the moment between a check and the write.

Audited with real processes (two ``nnjax train`` into one ``--out`` or one
``--checkpoint-dir`` at once, ``nnjax predict`` while ``train --overwrite`` writes, ``compare``
and ``train`` into one folder, SIGTERM/SIGINT/SIGHUP at many moments, a ``--out`` made
read-only mid-run): the lock, the atomic group write and the signal handling held. One path
broke: a second fresh run whose ``--checkpoint-dir`` check passed on an empty folder, while
the first run then finished there, was refused in ``fit``'s words (``pass resume=True ...
checkpoint_dir``), options the command line does not have. Here that moment is made
deterministic: the checkpoints appear just after the command's own check.
"""

import shutil

from nnjax.cli import main
from nnjax.commands import train as train_command

RUN = ["train", "--dataset", "xor", "--epochs", "2"]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def test_a_checkpoint_dir_filled_after_the_check_is_refused_in_the_options_words(
    tmp_path, capsys, tmpdir_here, monkeypatch
):
    first, shared = tmp_path / "first", tmp_path / "shared"
    assert main([*RUN, "--epochs", "1", "--checkpoint-dir", str(first)]) == 0
    capsys.readouterr()
    original = train_command._checkpointing
    calls = []

    def checked_then_filled(args):
        """The command's check sees an empty folder; then the other run's checkpoints land."""
        kw = original(args)
        if not calls:
            shutil.copytree(first, shared, dirs_exist_ok=True)
        calls.append(1)
        return kw

    monkeypatch.setattr(train_command, "_checkpointing", checked_then_filled)
    assert main([*RUN, "--checkpoint-dir", str(shared)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "resume=True" not in err, err
    assert _error_lines(err) == [
        f"nnjax train: error: --checkpoint-dir {shared} already holds the checkpoints of a run "
        "(newest: epoch 1): add --resume to continue it, or choose another --checkpoint-dir"
    ]
    assert sorted(p.name for p in shared.iterdir()) == sorted(p.name for p in first.iterdir())
    for p in first.iterdir():  # the other run's checkpoints are left as they were
        assert (shared / p.name).read_bytes() == p.read_bytes()


def test_a_reader_gone_before_the_results_are_printed_loses_no_trained_model(tmp_path):
    """`nnjax train --out D | head -2` with unbuffered output (PYTHONUNBUFFERED=1, common in
    containers): the reader left before training ended; the results' print then found the
    pipe closed and the run ended (141, quiet) before writing D: the trained model was lost.
    It is written first now, the 141 kept."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnjax", "train", *RUN[1:], "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = [proc.stdout.readline(), proc.stdout.readline()]
    proc.stdout.close()  # as `head -2` does, before the results are printed
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141, err
    assert first[1].startswith("mlp on xor") and "error" not in err, (first, err)
    names = {"params.npz", "model.json", "history.json", "metrics.csv", "loss.png"}
    assert names <= {p.name for p in out.iterdir()}, sorted(os.listdir(out))
