"""``nnjax night`` on a signal during the night part: the epochs that had ended are kept.

The night runs in blocks of :data:`nnjax.brain.sleep_states.BLOCK_S` seconds of network
time (one compiled call each, :func:`nnjax.brain.network.simulate_blocks`). The first
SIGINT, SIGTERM, SIGHUP or SIGUSR1 there ends it after the running block
(:class:`NightStop`): the night up to its last whole epoch is described and written as a
whole night's files are, its README saying where it stopped; the consolidation part does
not run, and the command ends with status 128 + N. A second signal stops at once, nothing
written, and so does a first one when no stage could be described yet (each needs
``SETTLE_S + DESCRIBED_S`` seconds of one run of epochs). A signal in the consolidation part
is served as before (:mod:`nnjax.commands.night_write`).
"""

import contextlib
import os
import signal

from nnjax.errors import Interrupted
from nnjax.train import SignalStop


class NightStop(SignalStop):
    """The night part's stop flag: the first signal requests a stop (announced on stderr), a
    second raises :class:`~nnjax.errors.Interrupted` at once."""

    second_signal = "a second signal while stopping: stopped at once, nothing written"

    def __init__(self, out: str):
        super().__init__()
        self.out = out

    def handler(self, signum, frame) -> None:
        first = not self.requested
        super().handler(signum, frame)
        if first:  # one unbuffered write (the main thread may be inside a print)
            name = signal.Signals(signum).name
            line = (f"nnjax night: {name}: stopping after the running second of the night, "
                    f"then writing the epochs that ended to {self.out}/ (a second signal "
                    "stops at once)\n")  # fmt: skip
            below = "\n" if os.isatty(2) else ""  # a terminal: below the progress line
            with contextlib.suppress(OSError):
                os.write(2, (below + line).encode())


def stopped_night(stop: NightStop, results: dict, figures: dict) -> None:
    """After a night part during which ``stop`` was requested (the night cut short, or whole
    when the signal came as it was described): mark ``results`` (``"stopped"``: the reason),
    or, when nothing can be written (no stage described), end the command here (128 + N)."""
    night = results["night"]
    results["stopped"] = stop.reason
    if not figures:
        raise Interrupted(
            stop.signum or signal.SIGINT,
            f"the night stopped after {night['epochs_run']} epoch(s), before any stage could "
            "be described; nothing written",
        )


def stopped_line(stop: NightStop, results: dict, out: str) -> Interrupted:
    """The exception that ends a stopped run once its files are written: what they hold."""
    night = results["night"]
    if "epochs_run" in night:
        n = len(night["hypnogram"].split(","))
        text = f"the night stopped after epoch {night['epochs_run']} of {n}"
    else:
        text = "the night had finished"
    return Interrupted(stop.signum or signal.SIGINT, f"{text}; its results are in {out}/")
