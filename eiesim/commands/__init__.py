"""Subcommands of the ``eiesim`` command line (one module each)."""
