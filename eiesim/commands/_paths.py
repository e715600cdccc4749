"""Output paths of the subcommands, checked before any work (shared by every command that writes)."""

from __future__ import annotations

import os
from pathlib import Path

from .._io import check_outputs
from ..errors import EieInputError


def input_files(label: str, path):
    """``(label, file)`` pairs of the files an input path stands for.

    A file stands for itself; a directory (a simulator dump, or a folder
    holding a ``.net`` stream) for the files the readers take from it
    (:func:`eiesim.format.eiedump.dump_files`, ``*.net``, ``layers.json``).

    Parameters
    ----------
    label : str
        How the user gave the input (``"--network"``, ``"FILE"``).
    path : str, os.PathLike or None
        None gives no pair.

    Returns
    -------
    list of (str, str)
    """
    if path is None:
        return []
    if os.path.isdir(path):
        from ..format.eiedump import dump_files

        root = Path(path)
        files = dump_files(root) + sorted(root.glob("*.net")) + [root / "layers.json"]
        return [(label, os.fspath(f)) for f in files]
    return [(label, os.fspath(path))]


def check_command_outputs(outputs, inputs) -> None:
    """Refuse, before any work, outputs that cannot be written, that are an input, or that repeat.

    Parameters
    ----------
    outputs : iterable of (str, path or None)
        ``(flag, path)`` of every output the command would write (None: not asked for).
    inputs : iterable of (str, path or None)
        ``(label, path)`` of every input; directories are expanded with :func:`input_files`.

    Raises
    ------
    EieInputError
        ``--json: same file as MODEL (m.npz); ...``, ``--json: same file as --out (x)``,
        or an unwritable target (missing folder, read-only file, FIFO ...).
    """
    outputs = list(outputs)
    if all(path is None for _, path in outputs):  # nothing to write: no input folder to list (issue 11)
        return
    expanded = [pair for label, path in inputs for pair in input_files(label, path)]
    check_outputs(outputs, expanded, error=EieInputError)


def check_output_dir(flag: str, folder, names, inputs) -> None:
    """Check before any work a folder the command will write files ``names`` into.

    One rule for every output of eiesim (commands and ``scripts/``): **a
    missing folder is refused, never created** -- a typo in ``--out`` must
    not scatter results into a new folder, and ``--json nodir/x.json`` has
    always been refused. The folder must exist and be a directory; each
    ``folder/name`` is then checked as :func:`check_command_outputs` checks an
    output.

    Parameters
    ----------
    flag : str
        The option as the user wrote it (``"--out"``).
    folder : str or os.PathLike
    names : sequence of str
        Files the command writes into the folder.
    inputs : iterable of (str, path or None)
        As for :func:`check_command_outputs`.

    Raises
    ------
    EieInputError
        Empty path, a missing folder (``--out: DIR: folder does not exist;
        create it first``), a file in the way, or an unwritable target or one
        that is an input.
    """
    folder = os.fspath(folder)
    if folder == "":
        raise EieInputError(f"{flag}: empty path")
    if not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise EieInputError(f"{flag}: {folder}: exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(folder))
        while not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise EieInputError(f"{flag}: {folder}: folder does not exist ({parent} is not a directory)")
        raise EieInputError(f"{flag}: {folder}: folder does not exist; create it first (eiesim creates no folders)")
    check_command_outputs([(flag, os.path.join(folder, n)) for n in names], inputs)
