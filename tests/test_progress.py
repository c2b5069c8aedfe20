"""Progress lines: shown at once, an ETA from the rate after the first unit, throttled off a
terminal; verify reports each step, compare each chunk."""

import argparse
import io

import pytest

from nnjax.commands import verify as verify_command
from nnjax.progress import Progress, format_seconds


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_start_is_shown_at_once_and_the_eta_excludes_the_first_unit():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(10, "epoch", unit="epoch", stream=out, clock=clock, tty=False, interval=0)
    bar.start("compiling...")
    assert out.getvalue() == "epoch 0/10 [--------------------]   0%  ETA ?  | compiling...\n"
    clock.t += 30.0  # the first epoch: compile + run
    bar.update(1, "loss 1.0")
    assert out.getvalue().splitlines()[-1].endswith("ETA ?  | loss 1.0")
    clock.t += 4.0  # epochs 2 and 3: 2 s each
    bar.update(3, "loss 0.5")
    last = out.getvalue().splitlines()[-1]
    assert "3/10" in last and "2 s/epoch" in last and "ETA 14 s" in last, last
    clock.t += 14.0
    bar.update(10, "loss 0.1")
    assert "done in 48 s" in out.getvalue().splitlines()[-1]


def test_off_a_terminal_lines_are_throttled_but_the_last_is_kept():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(100, "step", stream=out, clock=clock, tty=False, interval=2.0)
    bar.start()
    for i in range(1, 101):
        clock.t += 0.1
        bar.update(i)
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 8  # 10 s of updates, one line per 2 s, plus the first and last
    assert lines[-1].startswith("step 100/100")


def test_on_a_terminal_the_line_is_redrawn_in_place():
    clock, out = FakeClock(), io.StringIO()
    with Progress(2, "x", stream=out, clock=clock, tty=True) as bar:
        bar.start("a")
        bar.update(1, "b")
        bar.update(2, "c")
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1


@pytest.mark.parametrize(
    "s, text", [(4.25, "4.2 s"), (42, "42 s"), (185, "3m05s"), (3720, "1h02m")]
)
def test_format_seconds(s, text):
    assert format_seconds(s) == text


def test_verify_reports_each_step_before_it_runs(monkeypatch, capsys):
    import nnjax.verify as V

    monkeypatch.setenv("XLA_FLAGS", "")
    steps = [(f"group {i}", lambda i=i: [V.Check(f"row {i}", 0.0, 0.0, 1e-10)]) for i in range(3)]
    monkeypatch.setattr(V, "verify_steps", lambda seed, architectures: steps)
    seen = []
    rows = V.run_all(on_step=lambda *a: seen.append(a))
    assert seen == [(0, 3, "group 0"), (1, 3, "group 1"), (2, 3, "group 2"), (3, 3, "done")]
    assert [r.component for r in rows] == ["row 0", "row 1", "row 2"]
    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    assert verify_command.run(parser.parse_args([])) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("verify 0/1") and err[0].endswith("importing JAX...")
    assert err[-1].startswith("verify 3/3 [####################] 100%  done in")


def test_verify_steps_are_the_whole_table():
    import nnjax.verify as V

    names = [n for n, _ in V.verify_steps(0, 2)]
    assert names[:2] == ["registries", "activations"] and names[-1] == "float32"
    assert "MLP 1/2" in names and "MLP 2/2" in names and len(names) == 13


def test_compare_progress_reports_runs_and_eta():
    from nnjax.compare import progress_bar

    clock, out = FakeClock(), io.StringIO()
    with progress_bar(True, stream=out, clock=clock, tty=False, interval=0) as on_progress:
        on_progress("gd", 0, 40, 10)
        clock.t += 5
        on_progress("gd", 10, 40, 10)
        clock.t += 5
        on_progress("adam", 20, 40, 10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("compare 0/1") and "preparing" in lines[0]
    assert lines[-1].startswith("compare 20/40") and "adam runs 2/4" in lines[-1]
    assert "ETA 10 s" in lines[-1]  # 0.5 s per run-epoch since the first report
