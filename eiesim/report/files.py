"""Writing a command's results: JSON and CSV, atomically, through :func:`eiesim._io.write_atomic`.

The paths were checked before the command did any work
(:func:`eiesim.commands._paths.check_command_outputs`); these only write.
"""

from __future__ import annotations

from .._io import json_bytes, write_atomic
from ..errors import EieInputError

__all__ = ["write_json", "write_csv"]


def write_json(path, doc) -> None:
    """Write ``doc`` as strict JSON (:func:`eiesim._io.json_bytes`, indent 2) to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    doc : object
        JSON-serialisable data (no NaN or infinity).

    Raises
    ------
    EieInputError
        A non-finite float in ``doc``, or a target that cannot be written.
    """
    write_atomic(path, json_bytes(doc, error=EieInputError), error=EieInputError)


def write_csv(path, table) -> None:
    """Write a :class:`eiesim.report.table.Table` as CSV (UTF-8) to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    table : eiesim.report.table.Table

    Raises
    ------
    EieInputError
        A target that cannot be written.
    """
    write_atomic(path, table.to_csv().encode("utf-8"), error=EieInputError)
