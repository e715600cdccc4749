"""Atomic file writing shared by every writer (containers, JSON reports, outputs)."""

from __future__ import annotations

import os
import tempfile
from typing import Callable

from .errors import EieFormatError

__all__ = ["write_atomic", "write_atomic_with"]


def _chmod_default(path: str) -> None:
    """Give a temporary file the permissions a plain ``open(path, "w")`` would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_atomic_with(path, writer: Callable, *, error=EieFormatError) -> None:
    """Create ``path`` through ``writer(binary_file)`` in a temporary file, then rename it into place.

    An existing ``path`` is replaced only once the new content is complete; on
    any failure the temporary file is removed and ``path`` is untouched.

    Raises
    ------
    EieFormatError (or ``error``)
        If the folder cannot be written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as exc:
        raise error(f"{path}: cannot write in {folder} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
        _chmod_default(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise error(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _discard(tmp)
        raise


def write_atomic(path, data: bytes, *, error=EieFormatError) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic_with`)."""
    write_atomic_with(path, lambda fh: fh.write(data), error=error)


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
