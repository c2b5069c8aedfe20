"""One line of progress with an ETA, for the commands that run longer than a moment.

    epoch 7/20 [#######-------------] 35%  0.21 s/epoch  ETA 2.7 s  | loss 0.1234 ...

The line is written to stderr at once when the work starts (:meth:`Progress.start`: e.g.
"compiling..."), then after each unit of work. On a terminal it is redrawn in place; in a
log or a pipe a new line is written at most every ``interval`` seconds (and the last one
always), so a long run's log stays short.

ETA = (total - done) * r, where r is the time per unit measured from the first update on
(the first unit usually includes compiling, which later units do not pay). Before a second
update there is no rate and the ETA shows as ``?``. Imports nothing heavy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def format_seconds(s: float) -> str:
    """``4.2 s``, ``3m05s``, ``1h02m``."""
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class Progress:
    """Progress over ``total`` units named ``unit`` (``label`` starts the line).

    ``stream`` (default stderr), ``clock`` (seconds, monotonic; a fake one in tests),
    ``tty`` (default: ``stream.isatty()``), ``interval``: seconds between lines off a
    terminal. Use as a context manager, or call :meth:`close`.
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
                return
        self._last_line = now
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._written = True

    def close(self) -> None:
        """End the line (a terminal's cursor moves to the next line)."""
        if self.tty and self._written:
            self.stream.write("\n")
            self.stream.flush()
        self._written = False
