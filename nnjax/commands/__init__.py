"""Subcommands of the ``nnjax`` CLI, one module each (see :mod:`nnjax.cli`)."""
