from nnjax.cli import entry

entry()
