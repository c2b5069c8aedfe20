"""``nnjax compare`` and ``nnjax sleep`` on a signal: what finished is kept.

The first SIGINT, SIGTERM, SIGHUP or SIGUSR1 while a study trains ends it after the running
compiled chunk (:class:`nnjax.train.SignalStop`; the ``stop`` of
:func:`nnjax.compare.compare` and :func:`nnjax.brain.study.run_study`): the files of the
optimizers (methods) that had finished every run are written as a whole study's are,
naming those missing, and the command ends with status 128 + N. While the files are written
a first signal lets them finish and a second stops at once
(:class:`nnjax.commands.train_finish.Finishing`), as in ``nnjax train``; a second signal
before that stops at once and writes nothing.
"""

from nnjax.commands.train_finish import Finishing
from nnjax.errors import Interrupted
from nnjax.train.signals import listed


class StudyFinishing(Finishing):
    """A study command's stop flag, through the study and while its files are written:
    ``unfinished`` names the parts (``noun``: optimizers, methods) a stopped study lacks,
    ``finished`` those it holds (:meth:`stopped`); ``what`` its files (the report)."""

    second_signal = "a second signal while stopping: stopped at once, nothing written"

    def __init__(self, out: str | None, command: str, noun: str, what: str):
        super().__init__(out)
        self.command, self.noun, self.what = command, noun, what
        self.finished: tuple[str, ...] = ()
        self.unfinished: tuple[str, ...] = ()

    def stopped(self, finished, unfinished) -> None:
        """The study stopped before ``unfinished`` finished their runs; when none of its
        parts finished, the command ends (128 + N) with nothing written."""
        self.finished, self.unfinished = tuple(finished), tuple(unfinished)
        if not self.finished:
            text = f"no {self.noun} had finished its runs; nothing written"
            raise Interrupted(self.signum or 2, text)

    def announcement(self, name: str) -> str:
        where = f" to {self.out}/" if self.out else ""
        if self.unfinished:
            what = f"stopping, writing the {self.what} of {listed(self.finished)}{where}"
        else:
            what = f"the study is done, finishing writing its {self.what}{where}"
        return f"nnjax {self.command}: {name}: {what} (a second signal stops at once)"

    def end(self) -> None:
        """After the files were written: a signal ends the command (128 + N), naming what the
        files hold."""
        if self.signum is None:
            return
        where = f"in {self.out}/" if self.out else "above (no --out)"
        if not self.unfinished:
            raise Interrupted(self.signum, f"the study had finished; its {self.what} is {where}")
        have = "its" if len(self.unfinished) == 1 else "their"
        raise Interrupted(
            self.signum,
            f"{listed(self.unfinished)} had not finished {have} runs; the {self.what} of "
            f"{listed(self.finished)} is {where}",
        )
