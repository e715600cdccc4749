"""Command line: ``eiesim <command>``. Thin: parse, call the library, print.

Each subcommand lives in ``eiesim/commands/<name>.py`` with ``add_parser(sub)``
(registers its arguments and ``func``) and a ``run(args) -> int``; the argument
types they share are in :mod:`eiesim.commands._args`. This module only dispatches. Library errors
(:class:`eiesim.errors.EieError`) become one line on stderr and exit code 2;
nothing else here catches them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from . import __version__
from .errors import EieError

__all__ = ["main", "build_parser", "COMMANDS"]

#: Subcommands, in help order; a module that does not exist yet is skipped.
COMMANDS = ("simulate", "compress", "convert", "inspect", "validate", "energy", "plot", "workloads", "sweep")


def _help_width() -> int:
    """Columns for help text: argparse's own rule (``shutil.get_terminal_size().columns - 2``:
    ``$COLUMNS``, else the terminal of stdout, else 80), without importing :mod:`shutil` (issue
    11: argparse builds a formatter per ``add_argument`` and imports shutil for its width)."""
    try:
        cols = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        cols = 0
    if cols <= 0:
        try:
            cols = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            cols = 0
    return (cols if cols > 0 else 80) - 2


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter with the width of :func:`_help_width`."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position, _help_width() if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse with the house error format (one line on stderr, exit code 2) and :class:`_Formatter`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"eiesim: error: {message} (see '{self.prog} --help')\n")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser of the ``eiesim`` command.

    Parameters
    ----------
    command : str, optional
        Build only this subcommand (one of :data:`COMMANDS`): the command
        line names it, so the other command modules are not imported (issue
        11: a run pays for its own command's imports only). Default: all.

    Returns
    -------
    argparse.ArgumentParser
        With ``--version`` and one required subcommand per module of
        :data:`COMMANDS` that is installed (each sets ``func``).
    """
    p = _Parser(prog="eiesim", description="Cycle-level simulator of the EIE accelerator.")
    p.add_argument("--version", action="version", version=f"eiesim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS if command is None else (command,):
        try:
            mod = importlib.import_module(f"eiesim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"eiesim.commands.{name}":
                continue
            raise
        mod.add_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``eiesim`` console script; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; None reads
        ``sys.argv[1:]``.

    Returns
    -------
    int
        The subcommand's exit code; 2 after an :class:`~eiesim.errors.EieError`
        (message printed to stderr), 130 on Ctrl-C, 0 when the output pipe
        closes early.

    Raises
    ------
    SystemExit
        From argparse, for ``--help``, ``--version`` or a usage error (code 2).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EieError as exc:
        print(f"eiesim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("eiesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

