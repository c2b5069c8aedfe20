"""``python -m benchmarks``: see :mod:`benchmarks.cli`."""

from benchmarks.cli import main
from nnjax.cli import exit_with

exit_with(main())  # as the nnjax command: after a signal, no interpreter teardown
