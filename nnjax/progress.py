"""One line of progress with an ETA, for the commands that run longer than a moment.

    epoch 7/20 [#######-------------] 35%  0.21 s/epoch  ETA 2.7 s  | loss 0.1234 ...

The line is written to stderr at once when the work starts (:meth:`Progress.start`: e.g.
"compiling..."), then after each unit of work. On a terminal it is redrawn in place, cut to
the terminal's width; in a log or a pipe a new line is written at most every ``interval``
seconds (and the last update always, when the work ends or the bar closes), so a long run's
log stays short.

ETA = (total - done) * r, where r is the time per unit measured from the first update on
(the first unit usually includes compiling, which later units do not pay). Before a second
update there is no rate and the ETA shows as ``?``. Imports nothing heavy.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable


def format_seconds(s: float) -> str:
    """``4.2 s``, ``42 s``, ``3m05s``, ``1h02m``: ``s`` rounded to the last digit shown (a
    tenth below 9.95 s, a second below 59m59.5s, a minute above), so that 59.6 is ``1m00s``
    and not ``60 s``, 9.96 ``10 s`` and not ``10.0 s``, 3599.6 ``1h00m``. A negative ``s`` is
    the same with a ``-``; nan and infinities, which are no duration, are ``?``."""
    if not math.isfinite(s):
        return "?"
    sign, s = ("-" if s < 0 else ""), abs(s)
    if round(s, 1) < 10:
        text = f"{s:.1f} s"
        return sign + text if text != "0.0 s" else text
    n = math.floor(s + 0.5)  # whole seconds, halves up
    if n < 60:
        return f"{sign}{n} s"
    if n < 3600:
        return f"{sign}{n // 60}m{n % 60:02d}s"
    m = math.floor(s / 60 + 0.5)  # whole minutes
    return f"{sign}{m // 60}h{m % 60:02d}m"


class Progress:
    """Progress over ``total`` units named ``unit`` (``label`` starts the line).

    ``stream`` (default stderr), ``clock`` (seconds, monotonic; a fake one in tests),
    ``tty`` (default: ``stream.isatty()``), ``interval``: seconds between lines off a
    terminal, ``columns``: a terminal's width (default: measured at each redraw). A total
    below 1 counts as 1. Use as a context manager, or call :meth:`close`.

    On a terminal the line is cut to ``columns - 1`` characters: a longer one wraps, and the
    carriage return that redraws it goes back to its last row only, leaving the others on
    screen at every update (the train line "epoch 0/300 ... compiling (the first epoch
    includes it)..." is 92 characters). With ``TERM=dumb`` the rest of the previous line is
    erased with spaces instead of the escape sequence ``ESC[K``, which such a terminal shows.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        unit: str = "",
        stream=None,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
        interval: float = 2.0,
        width: int = 20,
        columns: int | None = None,
    ):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.interval, self.width = clock, interval, width
        isatty = getattr(self.stream, "isatty", None)
        self.tty = tty if tty is not None else bool(isatty and isatty())
        self.done, self.status = 0, ""
        self._t0 = clock()
        self._first: tuple[float, int] | None = None  # (time, done) at the first update
        self._last_line, self._written = None, False
        self._pending = False  # an update not written yet (off a terminal: throttled)
        self.columns, self._shown = columns, 0  # _shown: the length of the line on screen
        self._dumb = os.environ.get("TERM", "") == "dumb"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, status: str = "") -> None:
        """Show the line now (0 units done), e.g. with status ``compiling...``."""
        self.status = status
        self._write(force=True)

    def update(self, done: int, status: str | None = None) -> None:
        """``done`` units are finished; ``status`` replaces the text after the bar."""
        self.done = min(int(done), self.total)
        if status is not None:
            self.status = status
        if self._first is None:
            self._first = (self.clock(), self.done)
        self._write(force=self.done >= self.total)

    def seconds_per_unit(self) -> float | None:
        """r: seconds per unit since the first update (None before a second one)."""
        if self._first is None or self.done <= self._first[1]:
            return None
        return (self.clock() - self._first[0]) / (self.done - self._first[1])

    def eta(self) -> float | None:
        r = self.seconds_per_unit()
        return None if r is None else (self.total - self.done) * r

    def line(self) -> str:
        """The progress line as it is now."""
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        pct = 100 * self.done / self.total
        parts = [f"{self.label} {self.done}/{self.total} [{bar}] {pct:3.0f}%"]
        r = self.seconds_per_unit()
        if self.done >= self.total:
            parts.append(f"done in {format_seconds(self.clock() - self._t0)}")
        else:
            if r is not None:
                parts.append(f"{r:.3g} s/{self.unit}" if self.unit else f"{r:.3g} s each")
            eta = self.eta()
            parts.append("ETA ?" if eta is None else f"ETA {format_seconds(eta)}")
        text = "  ".join(parts)
        return f"{text}  | {self.status}" if self.status else text

    def _write(self, force: bool = False) -> None:
        now = self.clock()
        if not (force or self.tty) and self._last_line is not None:
            if now - self._last_line < self.interval:
                self._pending = True
                return
        self._last_line, self._pending = now, False
        text = self.line()
        if self.tty:
            self.stream.write(self._redraw(text))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._written = True

    def _redraw(self, text: str) -> str:
        """What redraws the terminal's line as ``text``: cut to the width, then erased."""
        columns = self.columns or _columns(self.stream)
        if columns is not None:
            text = text[: max(columns - 1, 1)]
        if self._dumb:  # no escape sequences: spaces over the rest of the line shown before
            erase = " " * (self._shown - len(text))
            self._shown = len(text)
            return "\r" + text + erase
        return "\r" + text + "\x1b[K"

    def close(self) -> None:
        """Write the last update if the throttle held it back (a run that stopped before its
        total, e.g. by early stopping: the log ended at its first epoch), then end the line
        (a terminal's cursor moves to the next line)."""
        if self._pending:
            self._write(force=True)
        if self.tty and self._written:
            self.stream.write("\n")
            self.stream.flush()
        self._written, self._shown = False, 0


def _columns(stream) -> int | None:
    """The width of the terminal ``stream`` writes to, or None where it cannot be told."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):  # no descriptor, or not a terminal
        return None
