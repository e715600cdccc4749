"""Bounded, pickle-free file I/O shared by every reader and writer (atomic writes, .npy/.npz parsing)."""

from __future__ import annotations

import ast
import os
import struct
import tempfile
from typing import Callable

from .errors import EieFormatError

__all__ = [
    "write_atomic",
    "write_atomic_with",
    "check_writable",
    "read_regular_file",
    "require_regular_file",
    "parse_npy",
    "parse_npy_header",
    "load_npz_members",
]


def _chmod_default(path: str) -> None:
    """Give a temporary file the permissions a plain ``open(path, "w")`` would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _check_target(path: str, error) -> None:
    """Refuse targets an atomic rename would destroy: devices, FIFOs, directories, read-only files."""
    import stat

    try:
        st = os.stat(path)  # follows symlinks: the link's target is what gets replaced
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"{path}: cannot write ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (device, FIFO or socket); refusing to replace it")
    if not st.st_mode & stat.S_IWUSR:
        raise error(f"{path}: file is read-only; refusing to replace it")


def check_writable(path, *, error=EieFormatError) -> None:
    """Check before any work that ``path`` can be written by :func:`write_atomic`.

    Raises
    ------
    EieFormatError (or ``error``)
        Empty path, missing folder, or a target that must not be replaced.
    """
    path = os.fspath(path)
    if path == "":
        raise error("empty output path")
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise error(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise error(f"{path}: folder {folder} is not writable")
    _check_target(real, error)


def write_atomic_with(path, writer: Callable, *, error=EieFormatError) -> None:
    """Create ``path`` through ``writer(binary_file)`` in a temporary file, then rename it into place.

    An existing ``path`` is replaced only once the new content is complete; on
    any failure the temporary file is removed and ``path`` is untouched. A
    symlink is followed (its target is replaced, the link stays); devices,
    FIFOs, directories and read-only files are refused; an existing file keeps
    its permission bits.

    Raises
    ------
    EieFormatError (or ``error``)
        If the target must not be replaced or the folder cannot be written.
    """
    import stat

    path = os.fspath(path)
    if path == "":
        raise error("empty output path")
    real = os.path.realpath(path)
    _check_target(real, error)
    folder = os.path.dirname(real)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as exc:
        raise error(f"{path}: cannot write in {folder} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(real).st_mode))
        except FileNotFoundError:
            _chmod_default(tmp)
        os.replace(tmp, real)
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


# --------------------------------------------------------------------------- bounded reading
def require_regular_file(path, *, error=EieFormatError, what: str = "file") -> int:
    """Check that ``path`` is an existing regular file; return its size in bytes.

    Raises
    ------
    EieFormatError (or ``error``)
        Empty path, missing, a directory, a device or FIFO, or unreadable.
    """
    import stat

    path = os.fspath(path)
    if path == "":
        raise error(f"empty path given for the {what}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{path}: {kind}; expected a {what}")
    return st.st_size


def read_regular_file(path, max_bytes: int, *, error=EieFormatError, what: str = "file") -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    Devices, FIFOs and directories are refused (``/dev/zero`` would never end),
    and the size is checked before reading.

    Raises
    ------
    EieFormatError (or ``error``)
        Missing, not a regular file, larger than ``max_bytes``, or unreadable.
    """
    path = os.fspath(path)
    size = require_regular_file(path, error=error, what=what)
    if size > max_bytes:
        raise error(f"{path}: {size} bytes is larger than the {max_bytes}-byte limit for a {what}")
    try:
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


#: Magic bytes of a ``.npy`` image (NumPy format specification).
NPY_MAGIC = b"\x93NUMPY"
#: Largest ``.npy`` header (magic + length field + header text), in bytes.
MAX_NPY_HEADER_BYTES = 4096


def parse_npy_header(raw: bytes):
    """Parse the header of a ``.npy`` image without trusting it.

    The header text is read with :func:`ast.literal_eval` (never pickle), its
    length is bounded by :data:`MAX_NPY_HEADER_BYTES`, and it must hold exactly
    ``descr``, ``fortran_order`` and a tuple of non-negative sizes.

    Parameters
    ----------
    raw : bytes
        The whole ``.npy`` image (or at least its header).

    Returns
    -------
    tuple or str
        ``(descr, fortran_order, shape, data_offset)``, or a string naming the problem.
    """
    if len(raw) < 10 or raw[:6] != NPY_MAGIC:
        return "not a .npy array (bad magic)"
    major = raw[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", raw[8:10])
        start = 10
    elif major in (2, 3):
        if len(raw) < 12:
            return "truncated .npy header"
        (hlen,) = struct.unpack("<I", raw[8:12])
        start = 12
    else:
        return f"unsupported .npy version {major}"
    if start + hlen > MAX_NPY_HEADER_BYTES:
        return f".npy header of {start + hlen} bytes exceeds {MAX_NPY_HEADER_BYTES}"
    if start + hlen > len(raw):
        return "truncated .npy header"
    try:
        text = raw[start: start + hlen].decode("utf-8" if major == 3 else "latin1")
        hdr = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        return ".npy header is not a Python literal"
    if not isinstance(hdr, dict) or set(hdr) != {"descr", "fortran_order", "shape"}:
        return ".npy header must have exactly 'descr', 'fortran_order' and 'shape'"
    shape = hdr["shape"]
    if not isinstance(shape, tuple) or not all((isinstance(s, int) and not isinstance(s, bool)) and s >= 0 for s in shape):
        return f".npy header shape {shape!r} is not a tuple of sizes"
    if not isinstance(hdr["descr"], str) or not isinstance(hdr["fortran_order"], bool):
        return ".npy header 'descr' must be a string and 'fortran_order' a boolean"
    return hdr["descr"], hdr["fortran_order"], shape, start + hlen


def parse_npy(data: bytes, where: str, *, error=EieFormatError):
    """Parse ``.npy`` bytes without pickle and without trusting the header.

    The header's shape and dtype must describe exactly the bytes that follow;
    only plain numeric, boolean or fixed-width string dtypes are accepted.

    Returns
    -------
    numpy.ndarray (a copy, writeable)

    Raises
    ------
    EieFormatError (or ``error``)
        Not a ``.npy`` array, object dtype, or a size that disagrees with the header.
    """
    import numpy as np

    hdr = parse_npy_header(data)
    if isinstance(hdr, str):
        raise error(f"{where}: {hdr if hdr.startswith('not a .npy') else 'not a .npy array: ' + hdr}")
    descr, fortran, shape, offset = hdr
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise error(f"{where}: .npy header dtype {descr!r} is not a NumPy dtype") from None
    if dtype.hasobject or dtype.kind not in "biufcSUM" or dtype.fields is not None:
        raise error(f"{where}: dtype {dtype} is not a plain array type (object/structured data refused)")
    count = 1
    for s in shape:
        count *= int(s)
    need = count * dtype.itemsize
    if len(data) - offset != need:
        raise error(
            f"{where}: header declares shape {tuple(shape)} of {dtype} ({need} bytes) but "
            f"{len(data) - offset} bytes follow"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    order = "F" if fortran else "C"
    return arr.reshape(shape, order=order).copy()


def load_npz_members(path, names, max_bytes: int, *, error=EieFormatError) -> dict:
    """Read chosen ``.npy`` members of an ``.npz`` file with size checks and no pickle.

    Parameters
    ----------
    path : str or os.PathLike
    names : iterable of str
        Member names without ``.npy``; absent ones are skipped.
    max_bytes : int
        Limit on the file and on each member's declared uncompressed size.

    Returns
    -------
    dict of str to numpy.ndarray, plus the key ``"__files__"`` listing every member name.

    Raises
    ------
    EieFormatError (or ``error``)
        Not a ZIP archive, a corrupt or oversized member, or a member that is not a plain array.
    """
    import io
    import zipfile
    import zlib

    raw = read_regular_file(path, max_bytes, error=error, what=".npz file")
    out = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in zf.infolist()}
            out["__files__"] = sorted(infos)
            for name in names:
                info = infos.get(name)
                if info is None:
                    continue
                if info.file_size > max_bytes:
                    raise error(f"{path}: member {info.filename!r} declares {info.file_size} bytes (limit {max_bytes})")
                out[name] = parse_npy(zf.read(info), f"{path}: member {info.filename!r}", error=error)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise error(f"{path}: not a readable .npz archive ({exc})") from None
    return out
