"""``nnjax train``'s stop flag, through training and after it. During training it is fit's
(:class:`nnjax.train.SignalStop`: the first signal ends the run after the running chunk,
with a checkpoint). Once training is over, while the final evaluation runs and ``--out`` is
written, a first signal lets them finish (writing takes about a second), so that a Ctrl-C a
moment late does not lose a trained model; a second stops at once. Imported once JAX runs.
"""

import os
import signal
import threading

from nnjax.cli_signals import in_gc_callback
from nnjax.errors import Interrupted
from nnjax.terminal import detach_terminal
from nnjax.train import SignalStop


class Finishing(SignalStop):
    """fit's stop flag until :meth:`begin`; then the first signal is noted and announced and
    a second raises :class:`nnjax.errors.Interrupted`, outside a gc callback (Python drops
    an exception raised inside one: the signal is sent again a moment later, as
    :mod:`nnjax.cli_signals` does). :meth:`end` raises for a signal noted."""

    def __init__(self, out: str | None):
        super().__init__()
        self.out, self.finishing, self.announced = out, False, False

    def begin(self) -> None:
        """Training is over: from now on a first signal lets the results be written."""
        self.finishing = True
        if self.signum is not None:  # it came in the last chunk: announce it now
            self._announce()

    def end(self) -> None:
        """After the results were written: a signal noted ends the command (128 + N). (A
        stop requested without a signal, early stopping's, is not one.)"""
        if self.signum is not None:
            saved = f"the results are in {self.out}/" if self.out else "nothing saved (no --out)"
            raise Interrupted(self.signum, f"training had finished; {saved}")

    def handler(self, signum, frame) -> None:
        if not self.finishing:
            super().handler(signum, frame)
        elif self.signum is None:
            if signum == getattr(signal, "SIGHUP", None):
                detach_terminal()
            self.signum = int(signum)
            self._announce()
        elif in_gc_callback(frame):
            main = threading.main_thread().ident
            threading.Timer(0.02, signal.pthread_kill, (main, signum)).start()
        else:
            raise Interrupted(signum, "a second signal while finishing: stopped at once")

    def _announce(self) -> None:
        if self.announced:
            return
        self.announced = True
        _raw_line(self.announcement(signal.Signals(self.signum).name))

    def announcement(self, name: str) -> str:
        """The line a first signal after :meth:`begin` prints (``name``: the signal's)."""
        what = f"writing the results to {self.out}/" if self.out else "its report"
        done = f"nnjax train: {name}: training is done, finishing {what}"
        return f"{done} (a second signal stops at once)"


def _raw_line(text: str) -> None:
    """``text`` on stderr from a signal handler: one unbuffered write (no reentrant call into
    the buffered stream the main thread may be writing), best effort."""
    try:
        os.write(2, (text + "\n").encode())
    except OSError:
        pass
