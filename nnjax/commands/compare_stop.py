"""``nnjax compare`` on a signal: the optimizers that finished are kept.

The first SIGINT, SIGTERM, SIGHUP or SIGUSR1 while the study trains ends it after the running
compiled chunk (:class:`nnjax.train.SignalStop`, :func:`nnjax.compare.compare`'s ``stop``);
the report, CSV, JSON and plots of the optimizers that had finished every run are written as
a whole study's are, the report naming the optimizers it lacks, and the command ends with
status 128 + N. While the files are written a first signal lets them finish and a second
stops at once (:class:`nnjax.commands.train_finish.Finishing`), as in ``nnjax train``; a
second signal before that stops at once and writes nothing.
"""

from nnjax.commands.train_finish import Finishing
from nnjax.compare.study import listed
from nnjax.errors import Interrupted


class StudyFinishing(Finishing):
    """``nnjax compare``'s stop flag, through the study and while its files are written:
    ``unfinished`` names the optimizers a stopped study lacks (:meth:`stopped_study`)."""

    second_signal = "a second signal while stopping: stopped at once, nothing written"

    def __init__(self, out: str):
        super().__init__(out)
        self.finished: tuple[str, ...] = ()
        self.unfinished: tuple[str, ...] = ()

    def stopped_study(self, e):
        """The comparison of the optimizers that finished, from the study's
        :class:`~nnjax.compare.study.StudyStopped` ``e``; when none did, the command ends
        (128 + N) with nothing written."""
        self.unfinished = e.unfinished
        if e.comparison is None:
            raise Interrupted(
                self.signum or 2, "no optimizer had finished its runs; nothing written"
            )
        self.finished = tuple(e.comparison.result.runs)
        return e.comparison

    def announcement(self, name: str) -> str:
        if self.unfinished:
            what = f"stopping, writing the report of {listed(self.finished)} to {self.out}/"
        else:
            what = f"the study is done, finishing writing its report to {self.out}/"
        return f"nnjax compare: {name}: {what} (a second signal stops at once)"

    def end(self) -> None:
        """After the files were written: a signal ends the command (128 + N), naming what the
        report holds."""
        if self.signum is None:
            return
        if not self.unfinished:
            raise Interrupted(self.signum, f"the study had finished; its report is in {self.out}/")
        have = "its" if len(self.unfinished) == 1 else "their"
        raise Interrupted(
            self.signum,
            f"{listed(self.unfinished)} had not finished {have} runs; the report of "
            f"{listed(self.finished)} is in {self.out}/",
        )
