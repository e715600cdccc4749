"""Argument types and checks shared by the ``eiesim`` subcommands and the scripts.

Argument parsing lives in :mod:`eiesim.commands` (docs/DESIGN.md); :mod:`eiesim.cli`
only dispatches. argparse ``type`` callables raise
:class:`argparse.ArgumentTypeError`, which argparse reports as a usage error
(exit code 2) before any file is read.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

from .._io import same_file
from ..errors import EieError
from ._paths import check_command_outputs, check_output_dir

__all__ = ["int_range", "seed_int", "dim_int", "check_output_args", "add_json_option", "add_csv_option"]


def int_range(lo: int, hi: Optional[int] = None, what: str = "an integer"):
    """An argparse ``type`` for an integer in ``lo..hi`` (``hi=None``: no upper bound).

    Out-of-range or non-integer text raises :class:`argparse.ArgumentTypeError`,
    which argparse reports as ``argument --flag: <message>`` with exit code 2,
    before any file is read.

    Parameters
    ----------
    lo : int
        Smallest accepted value.
    hi : int, optional
        Largest accepted value.
    what : str
        Noun used when the text is not an integer.

    Returns
    -------
    callable
        ``str -> int``.
    """

    def parse(text: str) -> int:
        try:
            val = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if val < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {val}")
        if hi is not None and val > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}, got {val}")
        return val

    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


def jobs_arg(text: str) -> Optional[int]:
    """argparse ``type`` of ``--jobs``: ``auto`` (None: every CPU the process may use) or ``1..1024``.

    Raises
    ------
    argparse.ArgumentTypeError
        Neither ``auto`` nor an integer in range.
    """
    if text == "auto":
        return None
    return int_range(1, 1024, "an integer or 'auto'")(text)


def dim_int(text: str) -> int:
    """argparse ``type`` of a matrix dimension (``--n-out``, ``--n-in``): an integer in ``1..MAX_DIM``.

    The bound is :data:`eiesim.format.container.MAX_DIM` (2**28), the largest
    dimension a ``.eie`` container accepts, so a layer read with it can be
    written, validated and simulated like any other; larger values would
    only describe all-zero rows past anything a file stores, at gigabytes of
    output vector each. Imported when first used, so ``eiesim --help``
    does not load the format package.

    Parameters
    ----------
    text : str

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        Not an integer, or outside ``1..MAX_DIM``.
    """
    from ..format.container import MAX_DIM

    return int_range(1, MAX_DIM, what="a positive integer")(text)


def add_json_option(parser, what: str = "the results") -> None:
    """Declare ``--json OUT`` (dest ``json``): write ``what`` as JSON.

    One declaration for every subcommand; the path is checked with the
    command's other outputs before any work
    (:func:`eiesim.commands._paths.check_command_outputs`: no folder is
    created, an input is never overwritten) and written atomically by
    :func:`eiesim.report.files.write_json`.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    what : str
        What the file holds, for ``--help``.
    """
    parser.add_argument("--json", metavar="OUT", help=f"write {what} as JSON")


def add_csv_option(parser, what: str = "the printed table") -> None:
    """Declare ``--csv OUT`` (dest ``csv``): write ``what`` as CSV (docs/CLI.md, "Tables as CSV").

    The same checks as ``--json`` (:func:`add_json_option`); the file is
    :meth:`eiesim.report.table.Table.to_csv` of the printed table: one header
    row with the units in the names, one row per printed row, numbers
    unformatted.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    what : str
        What the file holds, for ``--help``.
    """
    parser.add_argument("--csv", metavar="OUT",
                        help=f"write {what} as CSV (one header row, one row per printed row, numbers unformatted)")


#: argparse ``type`` of a random seed: NumPy seeds are non-negative integers
#: (``numpy.random.default_rng(-1)`` raises), so ``--seed -1`` is a usage error.
seed_int = int_range(0, what="a non-negative integer seed")


def check_output_args(parser: argparse.ArgumentParser, outputs=(), inputs=(), folders=()) -> None:
    """Check a script's output paths right after parsing; a bad one is a usage error (exit 2).

    For scripts that work for minutes before writing: a missing folder (never created), a
    read-only or non-regular target, an output equal to an input or to
    another output is reported by ``parser.error`` before any work, with
    the messages of :func:`eiesim.commands._paths.check_command_outputs`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    outputs : iterable of (str, path or None)
        ``(flag, path)`` of the files the script writes (None: not asked for).
    inputs : iterable of (str, path or None)
        ``(label, path)`` of the files it reads.
    folders : iterable of (str, path, sequence of str)
        ``(flag, folder, file names)`` of folders the script writes those
        files into; a missing folder is refused like any other output's
        (:func:`eiesim.commands._paths.check_output_dir`).
    """
    outputs = [(label, path) for label, path in outputs if path is not None]
    try:
        for flag, folder, names in folders:
            check_output_dir(flag, folder, names, inputs)
        check_command_outputs(outputs, inputs)
    except EieError as exc:
        parser.error(str(exc))
    planned = [(flag, os.path.join(os.fspath(folder), n)) for flag, folder, names in folders for n in names]
    for label, path in outputs:
        for flag, target in planned:
            if same_file(path, target):
                parser.error(f"{label}: same file as {target} (written into {flag}); give two different outputs")
