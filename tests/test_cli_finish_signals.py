"""A stop signal after training, while ``nnjax train`` evaluates and writes ``--out``: the
first lets the results be written (the trained model is not lost), a second stops at once
and leaves no partial set of files. Finding: a Ctrl-C a moment after the last epoch ended
the run with `interrupted by SIGINT`, status 130, and an empty --out: the model was lost."""

import os
import signal
import subprocess
import sys
import time

RUN_FILES = {"params.npz", "history.json", "loss.png", "metrics.csv", "accuracy.png"}


def _train_then_signal(cwd, *signals, gap_s: float = 0.02):
    """Run a 3-epoch `nnjax train --out out`; when its progress line says training is done
    (stderr; stdout is buffered, as users run it), send the first of ``signals``, and the
    others ``gap_s`` apart once the run says it is finishing (the last progress line comes
    before fit returns: a second signal sent at once could arrive before the finishing
    began, under load). Returns (status, stderr lines)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    cmd = [sys.executable, "-m", "nnjax", "train", "--epochs", "3", "--out", "out", "--no-cache"]
    p = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines, left = [], list(signals)
    for line in p.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith("epoch 3/3") and "done in" in line:
            time.sleep(gap_s)
            p.send_signal(left.pop(0))
        elif "training is done, finishing writing the results" in line or not left:
            for s in left:
                time.sleep(gap_s)
                p.send_signal(s)
            left = []
            break
    _, err = p.communicate(timeout=120)
    return p.returncode, lines + err.strip().splitlines()


def test_a_signal_after_training_writes_the_results_then_ends_with_its_status(tmp_path):
    status, err = _train_then_signal(tmp_path, signal.SIGINT)
    assert status == 130, err
    assert err[-2] == (
        "nnjax train: SIGINT: training is done, finishing writing the results to out/ "
        "(a second signal stops at once)"
    )
    assert err[-1] == (
        "nnjax train: error: interrupted by SIGINT: training had finished; the results are in out/"
    )
    assert RUN_FILES | {"model.json"} <= set(os.listdir(tmp_path / "out"))


def test_a_second_signal_stops_at_once_leaving_no_partial_model(tmp_path):
    status, err = _train_then_signal(tmp_path, signal.SIGINT, signal.SIGTERM)
    assert status == 143, err
    assert err[-1] == (
        "nnjax train: error: interrupted by SIGTERM: a second signal while finishing: "
        "stopped at once"
    )
    assert not any("Traceback" in line for line in err), err
    # stopped before the renames (model.json is renamed last: a loadable model is whole)
    out = tmp_path / "out"  # removed again when nothing of the run is left in it
    assert not out.exists() or not set(os.listdir(out)) & (RUN_FILES | {"model.json"})


def test_a_stop_without_a_signal_is_not_an_interruption(tmp_path, capsys):
    """Early stopping ends a run through the same stop flag, with no signal: the run ends
    with status 0 and its model written (a first version reported it as interrupted)."""
    from nnjax.cli import main

    argv = ["train", "--val-split", "0.2", "--early-stopping", "1", "--epochs", "40"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-cache"]) == 0
    assert "early stopping: kept the params of epoch" in capsys.readouterr().out
    assert RUN_FILES | {"model.json"} <= set(os.listdir(tmp_path / "out"))
