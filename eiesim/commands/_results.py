"""Reading a results JSON, shared by ``eiesim energy`` and ``eiesim plot``."""

from __future__ import annotations

import json

from .._io import read_regular_file
from ..errors import EieInputError

#: Largest results JSON read (bytes).
MAX_RESULTS_BYTES = 1 << 28


def load_results_json(path) -> dict:
    """Read the JSON object of saved results (``eiesim simulate --json`` and the like).

    Parameters
    ----------
    path : str or os.PathLike
        The results file (UTF-8 JSON whose top level is an object).

    Returns
    -------
    dict
        The decoded document.

    Raises
    ------
    EieInputError
        If the file does not exist, is not a regular file (a FIFO is refused
        before it is opened), is larger than :data:`MAX_RESULTS_BYTES`, cannot
        be read or decoded, or does not hold a JSON object.
    """
    raw = read_regular_file(path, MAX_RESULTS_BYTES, error=EieInputError, what="results JSON")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EieInputError(f"{path}: cannot read results JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise EieInputError(f"{path}: expected a JSON object")
    return doc
