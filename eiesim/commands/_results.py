"""Reading a results JSON, shared by ``eiesim energy`` and ``eiesim plot``."""

from __future__ import annotations

import json

from ..errors import EieInputError


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
        If the file does not exist, cannot be read or decoded, or does not
        hold a JSON object.
    """
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise EieInputError(f"{path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise EieInputError(f"{path}: cannot read results JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise EieInputError(f"{path}: expected a JSON object")
    return doc
