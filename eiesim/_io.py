"""Bounded, pickle-free file I/O shared by every reader and writer (atomic writes, .npy/.npz parsing)."""

from __future__ import annotations

import ast
import errno
import math
import os
import re
import struct
from typing import Callable

from .errors import EieError, EieFormatError

__all__ = [
    "json_bytes",
    "symlink_loop_message",
    "os_error_message",
    "refuse_symlink_loop",
    "write_atomic",
    "write_atomic_with",
    "remove_stale_temporaries",
    "temporary_prefix",
    "check_writable",
    "check_outputs",
    "same_file",
    "open_regular_file",
    "read_regular_file",
    "require_regular_file",
    "zip_member_problem",
    "ZipMemberError",
    "open_zip",
    "zip_member",
    "read_zip_member",
    "check_zip_members",
    "zip_unlisted_data",
    "parse_npy",
    "parse_npy_header",
    "load_npz_members",
    "load_npz_arrays",
]


def _io_error(message: str) -> EieFormatError:
    """The default error of the helpers below: code ``IO-ERROR`` (docs/FORMAT.md 6.2)."""
    return EieFormatError(message, code="IO-ERROR")


def _non_finite_path(obj, where: str = "$"):
    """JSON path of the first NaN or infinite float in nested dicts/lists/tuples, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else where
    if isinstance(obj, dict):
        items = ((f"{where}.{k}", v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for w, v in items:
        bad = _non_finite_path(v, w)
        if bad is not None:
            return bad
    return None


def json_bytes(obj, *, indent=2, sort_keys: bool = False, default=None, newline: bool = True,
               error=_io_error) -> bytes:
    """Serialise ``obj`` as **strict** JSON (RFC 8259: no ``NaN``/``Infinity``), UTF-8.

    Every JSON file eiesim and its scripts write goes through here (a test
    checks that no other ``json.dump``/``json.dumps`` call omits
    ``allow_nan=False``).

    Parameters
    ----------
    obj : object
        JSON-serialisable data.
    indent : int or None, default 2
    sort_keys : bool, default False
    default : callable, optional
        Passed to :func:`json.dumps` (converts non-JSON types).
    newline : bool, default True
        End the text with a newline.
    error : callable, default: EieFormatError with code ``IO-ERROR``
        Builds the exception raised on a non-finite float from its message.

    Returns
    -------
    bytes

    Raises
    ------
    error
        If a float is NaN or infinite; the message gives its JSON path
        (e.g. ``$.layers[0].ratio``).
    """
    import json  # here: a run that writes no JSON never imports it (issue 11)

    try:
        text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default, allow_nan=False)
    except ValueError as exc:
        where = _non_finite_path(obj)
        raise error(f"refusing to write non-finite number at {where} as JSON: {exc}" if where
                    else f"cannot write JSON: {exc}") from None
    return (text + "\n" if newline else text).encode("utf-8")


def symlink_loop_message(path) -> str:
    """The one message for a path whose symbolic links point back at each other (every command uses it).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        ``"<path>: symbolic link loop (its links never reach a file or folder)"``.
    """
    return f"{os.fspath(path)}: symbolic link loop (its links never reach a file or folder)"


def os_error_message(path, exc: OSError) -> str:
    """The message for an ``OSError`` met reading ``path``.

    Parameters
    ----------
    path : str or os.PathLike
    exc : OSError

    Returns
    -------
    str
        :func:`symlink_loop_message` for ``ELOOP``, else ``"<path>: cannot read (<reason>)"``.
    """
    if exc.errno == errno.ELOOP:
        return symlink_loop_message(path)
    return f"{os.fspath(path)}: cannot read ({exc.strerror})"


def refuse_symlink_loop(path, *, error=_io_error) -> None:
    """Raise ``error(symlink_loop_message(path))`` when resolving ``path`` runs into a symbolic link loop.

    Call it first where a path is tested with ``os.path.exists``/``isdir``,
    which answer False for a loop and would report it as a missing file.

    Parameters
    ----------
    path : str or os.PathLike
    error : callable, default: EieFormatError with code ``IO-ERROR``
        Builds the exception raised from the message.

    Raises
    ------
    error
        The path is a symbolic link loop (``ELOOP``).
    """
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(symlink_loop_message(path)) from None


def _chmod_default(path: str) -> None:
    """Give a temporary file the permissions a plain ``open(path, "w")`` would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def decode_error_text(exc: BaseException) -> str:
    """The reason of a JSON or TOML decoding error, for a one-line message.

    The exception's text, except for CPython's limit on the digits of an integer (4300 by default),
    whose advice to call ``sys.set_int_max_str_digits()`` is meant for programmers, not for the user
    of a damaged file.
    """
    text = str(exc) or type(exc).__name__
    if "int_max_str_digits" in text:
        digits = re.search(r"value has (\d+) digits", text)
        return f"an integer of {digits.group(1) + ' ' if digits else 'more than 4300 '}digits is too long to read"
    return text


def _check_target(path: str, error) -> None:
    """Refuse targets an atomic rename would destroy: devices, FIFOs, directories, read-only files."""
    import stat

    try:
        st = os.stat(path)  # follows symlinks: the link's target is what gets replaced
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(symlink_loop_message(path)) from None
        raise error(f"{path}: cannot write ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (device, FIFO or socket); refusing to replace it")
    if not st.st_mode & stat.S_IWUSR:
        raise error(f"{path}: file is read-only; refusing to replace it")


def _check_not_a_stream(path: str, error) -> None:
    """Refuse ``-`` and a path that is, or links through, ``/proc`` or ``/dev`` (``/dev/shm`` excepted).

    An output is written by replacing a file (:func:`write_atomic`): through ``/dev/stdout`` or
    ``/proc/self/fd/1`` that file is whatever a stream was redirected to, so ``--json /dev/stdout >
    report.txt`` replaced the report with the JSON (fresh-user finding), as did a symlink to
    ``/dev/stdout``; ``-`` made a file named ``-``. The links are followed one at a time
    (:func:`os.path.realpath` would resolve ``/proc/self/fd/1`` to the redirected file itself),
    each with its folder resolved (``/proc/self/cwd/x`` is a file in the current folder).
    """
    if path == "-":
        raise error("-: outputs are files here, not standard output; give a file name")
    hop, link = os.path.abspath(path), None
    for _ in range(40):  # the kernel's own limit on symlinks in one lookup
        hop = os.path.join(os.path.realpath(os.path.dirname(hop)), os.path.basename(hop))
        parts = hop.split(os.sep)
        if len(parts) > 2 and (parts[1] == "proc" or (parts[1] == "dev" and parts[2] != "shm")):
            shown = path if link is None else f"{path} (a link to {link})"
            raise error(f"{shown}: a device or a process's stream, not a file; outputs are written by replacing a "
                        "file: give a file name")
        if not os.path.islink(hop):
            return
        link = os.path.join(os.path.dirname(hop), os.readlink(hop))
        hop = link


def check_writable(path, *, error=_io_error) -> None:
    """Check before any work that ``path`` can be written by :func:`write_atomic`.

    Raises
    ------
    EieFormatError (or ``error``)
        Empty path, missing folder, or a target that must not be replaced.
    """
    path = os.fspath(path)
    if path == "":
        raise error("empty output path")
    _check_not_a_stream(path, error)
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise error(f"{path}: folder {folder} does not exist")
    # no write bit at all: read-only to the user, as a file without one is (_check_target), even for
    # root, whom os.access lets write anywhere
    if not os.access(folder, os.W_OK) or not os.stat(folder).st_mode & 0o222:
        raise error(f"{path}: folder {folder} is not writable")
    _check_target(real, error)


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file.

    Existing files are compared by device and inode (:func:`os.path.samefile`:
    symlinks and hard links included); otherwise the resolved paths are
    compared (two spellings of one file still to be created).

    Parameters
    ----------
    a, b : str or os.PathLike

    Returns
    -------
    bool
        Never raises: a path that cannot be stat'ed is compared by name.
    """
    a, b = os.fspath(a), os.fspath(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs=(), *, error=_io_error) -> None:
    """Check a command's output paths before any work is done.

    Every output must be writable (:func:`check_writable`), must not be one
    of the inputs (writing it would destroy the input) and must differ from
    every other output (one would silently overwrite the other).

    Parameters
    ----------
    outputs : iterable of (str, path or None)
        ``(label, path)`` pairs, the label as the user wrote it (``"--json"``);
        None paths (option not given) are skipped.
    inputs : iterable of (str, path or None)
        ``(label, path)`` of every file the command reads; None skipped.

    Raises
    ------
    EieFormatError (or ``error``)
        ``--out: same file as MODEL (m.npz)``, ``--json: same file as --out (x)``,
        or :func:`check_writable`'s messages (prefixed with the label).
    """
    outs = [(label, os.fspath(p)) for label, p in outputs if p is not None]
    ins = [(label, os.fspath(p)) for label, p in inputs if p is not None]
    for i, (label, path) in enumerate(outs):
        for in_label, in_path in ins:
            if in_path != "" and same_file(path, in_path):
                raise error(f"{label}: same file as {in_label} ({in_path}); refusing to overwrite an input")
        for other_label, other in outs[:i]:
            if same_file(path, other):
                raise error(f"{label}: same file as {other_label} ({other}); give two different outputs")
    for label, path in outs:
        try:
            check_writable(path, error=error)
        except EieError as exc:
            raise error(f"{label}: {exc}") from None


def write_atomic_with(path, writer: Callable, *, error=_io_error) -> None:
    """Create ``path`` through ``writer(binary_file)`` in a temporary file, then rename it into place.

    An existing ``path`` is replaced only once the new content is complete; on
    any failure the temporary file is removed and ``path`` is untouched. A
    symlink is followed (its target is replaced, the link stays); devices,
    FIFOs, directories and read-only files are refused; an existing file keeps
    its permission bits. The temporary file is ``.tmp-eiesim-<pid>-<host>-<random>``
    in the target's folder; temporaries that killed writers left there are
    removed first (:func:`remove_stale_temporaries`).

    Raises
    ------
    EieFormatError (or ``error``)
        If the target must not be replaced or the folder cannot be written.
    """
    import stat

    path = os.fspath(path)
    if path == "":
        raise error("empty output path")
    _check_not_a_stream(path, error)
    real = os.path.realpath(path)
    _check_target(real, error)
    folder = os.path.dirname(real)
    remove_stale_temporaries(folder)
    try:
        import tempfile  # here: tempfile imports random and shutil, which a reader never needs

        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(), dir=folder)
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


#: Temporary files of :func:`write_atomic_with` are named ``.tmp-eiesim-<pid>-<host>-<random>``.
_TMP_RE = re.compile(r"\.tmp-eiesim-(\d+)-(.+)-[A-Za-z0-9_]+")
#: A temporary file of a dead writer is removed only once it is this old (seconds): a guard
#: against a recycled pid or a clock step, not a correctness condition.
STALE_TMP_AGE_S = 60.0


def _host() -> str:
    import socket

    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def temporary_prefix() -> str:
    """Name prefix of eiesim's temporary files and folders: ``.tmp-eiesim-<pid>-<host>-``.

    :func:`remove_stale_temporaries` recognises (and only removes) this naming.
    """
    return f".tmp-eiesim-{os.getpid()}-{_host()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (another user's) or cannot tell: keep the file
    return True


def remove_stale_temporaries(folder, *, now: float | None = None) -> list:
    """Delete temporary files a killed :func:`write_atomic_with` left in ``folder``.

    A SIGKILL between creating the temporary file and renaming it leaves a
    hidden ``.tmp-eiesim-<pid>-<host>-<random>`` beside the target (the target
    itself is intact; :func:`eiesim.format.eiedump.write_dump` leaves a folder
    of that name). Every atomic write first removes such files, but only
    files that are certainly ours and certainly abandoned: regular files or
    folders (not links) owned by the current user, named with this eiesim's pattern,
    written on this host (same host name) by a process id that no longer
    exists, and last modified at least :data:`STALE_TMP_AGE_S` seconds ago.
    Files of other hosts sharing the folder, of live processes, of other
    programs or of eiesim versions before this naming are never touched.
    Errors (a file vanishing, no permission) are ignored.

    Parameters
    ----------
    folder : str or os.PathLike
    now : float, optional
        Current time in seconds since the epoch (default: :func:`time.time`).

    Returns
    -------
    list of str
        Paths removed.
    """
    import stat
    import time

    now = time.time() if now is None else now
    host, uid = _host(), os.getuid() if hasattr(os, "getuid") else None
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_RE.fullmatch(entry.name)
        if m is None or m.group(2) != host:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        if not (stat.S_ISREG(st.st_mode) or is_dir) or (uid is not None and st.st_uid != uid):
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid) or now - st.st_mtime < STALE_TMP_AGE_S:
            continue
        try:
            if is_dir:
                import shutil

                shutil.rmtree(entry.path)  # does not follow links inside
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.path)
    return removed


def write_atomic(path, data: bytes, *, error=_io_error) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic_with`)."""
    write_atomic_with(path, lambda fh: fh.write(data), error=error)


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


# --------------------------------------------------------------------------- bounded reading
def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("an eiesim container", "a .npz file")."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def require_regular_file(path, *, error=_io_error, what: str = "file") -> int:
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
        raise error(os_error_message(path, exc)) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{path}: {kind}; expected {_a(what)}")
    return st.st_size


def open_regular_file(path, *, max_bytes=None, error=_io_error, what: str = "file"):
    """Open an existing regular file for binary reading, without ever blocking.

    The path is checked with :func:`os.stat` first (:func:`require_regular_file`),
    so a FIFO, device or directory is refused before any ``open()``; the file
    is then opened with ``O_NONBLOCK`` and checked again with :func:`os.fstat`
    (the name may have been replaced in between), so even then opening a FIFO
    cannot wait for a writer.

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int, optional
        Largest size accepted, checked on the open file before anything is read.
    error : callable, optional
        Exception class (or factory) raised with the message.
    what : str, optional
        What the file should be, for messages (``".npz file"``).

    Returns
    -------
    io.BufferedReader
        The open file (the caller closes it).

    Raises
    ------
    EieFormatError (or ``error``)
        Empty path, missing, a directory, a device or FIFO, larger than
        ``max_bytes``, or unreadable.
    """
    import stat

    path = os.fspath(path)
    require_regular_file(path, error=error, what=what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(os_error_message(path, exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: not a regular file; expected {_a(what)}")
        if max_bytes is not None and st.st_size > max_bytes:
            raise error(f"{path}: {st.st_size} bytes is larger than the {max_bytes}-byte limit for {_a(what)}")
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path, max_bytes, *, error=_io_error, what: str = "file") -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes (None: no limit).

    Devices, FIFOs and directories are refused before anything is opened
    (``/dev/zero`` would never end, a FIFO would block), and the size is
    checked before reading (:func:`open_regular_file`).

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int or None
        Largest size accepted, in bytes.
    error : callable, optional
        Exception class (or factory) raised with the message.
    what : str, optional
        What the file should be, for messages (``"TOML file"``).

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    EieFormatError (or ``error``)
        Missing, not a regular file, larger than ``max_bytes``, or unreadable.
    """
    path = os.fspath(path)
    with open_regular_file(path, max_bytes=max_bytes, error=error, what=what) as fh:
        try:
            return fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except OSError as exc:
            raise error(os_error_message(path, exc)) from None


#: Largest ratio of uncompressed to compressed size DEFLATE can reach (RFC 1951: a
#: 258-byte match costs at least 2 bits); a member claiming more lies about its size.
ZIP_DEFLATE_MAX_RATIO = 1032


def zip_member_problem(info, data_end: int, max_bytes=None):
    """What is wrong with a ZIP member's declared sizes, checked before reading it.

    A ZIP directory may declare any size: zipfile would then ask the OS for
    that many bytes at once, or inflate a bomb. The member's compressed bytes
    must lie before ``data_end`` (the start of the central directory), its
    uncompressed size must be reachable from them (equal for a stored member,
    at most :data:`ZIP_DEFLATE_MAX_RATIO` times for DEFLATE) and at most
    ``max_bytes``.

    Parameters
    ----------
    info : zipfile.ZipInfo
    data_end : int
        Offset of the central directory (``ZipFile.start_dir``), or the file size.
    max_bytes : int, optional
        Limit on the uncompressed size.

    Returns
    -------
    tuple of (str, str) or None
        ``(kind, message)`` with kind ``"unsupported"`` (encrypted, or a method
        other than stored / DEFLATE) or ``"size"``; None when the member may be read.
    """
    import zipfile

    if info.flag_bits & 0x1:
        return "unsupported", "member is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return "unsupported", f"compression method {info.compress_type} (only 0 = stored and 8 = DEFLATE)"
    if info.header_offset + info.compress_size > data_end:
        return "size", (f"declares {info.compress_size} compressed bytes at offset {info.header_offset}, past the "
                        f"central directory at {data_end}; refused before reading")
    limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else (
        info.compress_size * ZIP_DEFLATE_MAX_RATIO + 64)
    if (max_bytes is not None and info.file_size > max_bytes) or info.file_size > limit:
        cap = f"limit {max_bytes} bytes, " if max_bytes is not None else ""
        return "size", (f"declares {info.file_size} uncompressed bytes from {info.compress_size} compressed "
                        f"bytes ({cap}ratio {ZIP_DEFLATE_MAX_RATIO}:1); refused before decompression")
    return None


class ZipMemberError(EieFormatError):
    """A ZIP member that cannot be read (raised by :func:`zip_member` and :func:`read_zip_member`).

    The message is the problem alone (no file or member name), so that a
    caller can place it: :func:`read_zip_member` prefixes the file and the
    member, the container reader hands it to its rule sink.

    Attributes
    ----------
    code : str
        Rule of docs/FORMAT.md: ``CONTAINER-CRC`` (CRC-32 mismatch, corrupt
        DEFLATE data, bad local header, local and central names differ),
        ``STREAM-TRUNCATED`` (data end early), ``CONTAINER-MEMBER-UNSUPPORTED``
        (encryption, a compression method or a ZIP feature zipfile cannot
        read) or ``CONTAINER-SIZE-ABSURD`` (see :func:`zip_member_problem`).
    member : str
        The member's name in the central directory.
    """

    def __init__(self, message: str, *, code: str, member: str) -> None:
        super().__init__(message, code=code)
        self.member = member


def _zip_exceptions():
    """Exceptions the standard library's zipfile (and zlib under it) raises on a damaged archive or member."""
    import zipfile
    import zlib

    return (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError, OSError,
            ValueError, RuntimeError, struct.error, UnicodeDecodeError)


def _member_error(exc: BaseException, member: str) -> ZipMemberError:
    """The rule a zipfile/zlib exception breaks, as a :class:`ZipMemberError`."""
    import zlib

    text = str(exc) or type(exc).__name__
    if isinstance(exc, (EOFError, struct.error)) or "Truncated" in text:
        code, what = "STREAM-TRUNCATED", "is truncated"
    elif isinstance(exc, NotImplementedError) or (isinstance(exc, RuntimeError) and "password" in text):
        code, what = "CONTAINER-MEMBER-UNSUPPORTED", "uses a ZIP feature that cannot be read"
    elif isinstance(exc, zlib.error):
        code, what = "CONTAINER-CRC", "has corrupt DEFLATE data"
    elif "differ" in text:
        code, what = "CONTAINER-CRC", "has different names in the central directory and its local header"
    else:
        code, what = "CONTAINER-CRC", "is corrupt"
    return ZipMemberError(f"{what} ({type(exc).__name__}: {text})", code=code, member=member)


def open_zip(fh, path, *, error=None, what: str = "ZIP archive"):
    """Open ``fh`` with the standard library's :class:`zipfile.ZipFile`, every failure a typed error.

    Parameters
    ----------
    fh : binary file
        Open, seekable.
    path : str
        File name for messages.
    error : callable, optional
        Exception class (or factory) raised with the message.
    what : str, optional
        What the file should be, for messages (``".npz file"``).

    Returns
    -------
    zipfile.ZipFile
        Open for reading (the caller closes it).

    Raises
    ------
    EieFormatError (or ``error``)
        Code ``CONTAINER-UNREADABLE`` by default. Not a ZIP archive, a damaged central directory, or a member needing a
        newer ZIP version than zipfile reads ("version needed to extract"
        above 6.3: :class:`NotImplementedError` inside zipfile).
    """
    import zipfile

    try:
        return zipfile.ZipFile(fh, "r")
    except _zip_exceptions() as exc:
        member = _directory_entry(exc)
        where = f" (central directory entry {member!r})" if member is not None else ""
        if error is None:
            raise EieFormatError(f"{path}: not a readable {what}{where} ({type(exc).__name__}: {exc})",
                                 code="CONTAINER-UNREADABLE") from None
        raise error(f"{path}: not a readable {what}{where} ({type(exc).__name__}: {exc})") from None


def _directory_entry(exc: BaseException):
    """Name of the central-directory entry zipfile was reading when it raised ``exc``, if known.

    zipfile refuses an entry it cannot read (e.g. "version needed to extract"
    above 6.3) while it builds the directory, before any ZipInfo is returned;
    the entry's name is then only in that frame's ``filename`` local.
    """
    tb = exc.__traceback__
    name = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_RealGetContents":
            value = tb.tb_frame.f_locals.get("filename")
            name = value if isinstance(value, str) else None
        tb = tb.tb_next
    return name


class _MemberStream:
    """A member being read: ``read``/``readinto`` turn zipfile and zlib failures into :class:`ZipMemberError`."""

    def __init__(self, raw, member: str) -> None:
        self._raw = raw
        self._member = member

    def read(self, n: int = -1) -> bytes:
        try:
            return self._raw.read(n)
        except _zip_exceptions() as exc:
            raise _member_error(exc, self._member) from None

    def readinto(self, buf) -> int:
        try:
            return self._raw.readinto(buf)
        except _zip_exceptions() as exc:
            raise _member_error(exc, self._member) from None


class zip_member:  # noqa: N801 - used as a context manager, like open()
    """Context manager: one member of an open archive, vetted and opened for reading.

    Before anything is read the member's declared sizes are checked
    (:func:`zip_member_problem`), then :meth:`zipfile.ZipFile.open` reads its
    local header, which must name the member as the central directory does
    (zipfile compares them). Reading the stream to its end checks the CRC-32.
    This is the one place where eiesim reads a ZIP member (``.npz``, ``.pth``,
    ``.eie``); every failure is a :class:`ZipMemberError`.

    Parameters
    ----------
    zf : zipfile.ZipFile
    info : zipfile.ZipInfo
    max_bytes : int, optional
        Limit on the member's uncompressed size.

    Yields
    ------
    object with ``read(n=-1)`` and ``readinto(buffer)``

    Raises
    ------
    ZipMemberError
        Sizes refused, encrypted or unsupported member, names that differ,
        corrupt data, CRC mismatch, truncation.
    """

    def __init__(self, zf, info, max_bytes=None) -> None:
        self._zf, self._info, self._max = zf, info, max_bytes
        self._raw = None

    def __enter__(self) -> _MemberStream:
        info = self._info
        problem = zip_member_problem(info, getattr(self._zf, "start_dir", float("inf")), self._max)
        if problem is not None:
            kind, message = problem
            raise ZipMemberError(message, member=info.filename,
                                 code="CONTAINER-MEMBER-UNSUPPORTED" if kind == "unsupported" else "CONTAINER-SIZE-ABSURD")
        try:
            self._raw = self._zf.open(info)
        except _zip_exceptions() as exc:
            raise _member_error(exc, info.filename) from None
        return _MemberStream(self._raw, info.filename)

    def __exit__(self, *exc) -> bool:
        try:
            self._raw.close()
        except _zip_exceptions():
            pass
        return False


def read_zip_member(zf, info, *, max_bytes=None, path=None, error=None) -> bytes:
    """The whole content of one member (see :class:`zip_member`), CRC-checked.

    Parameters
    ----------
    zf : zipfile.ZipFile
    info : zipfile.ZipInfo
    max_bytes : int, optional
        Limit on the member's uncompressed size.
    path : str, optional
        With ``error``: the file name put in the message.
    error : callable, optional
        Raise ``error("<path>: member '<name>' <problem>")`` instead of the
        :class:`ZipMemberError`.

    Returns
    -------
    bytes

    Raises
    ------
    ZipMemberError (or ``error``)
        As :class:`zip_member`.
    """
    try:
        with zip_member(zf, info, max_bytes) as member:
            return member.read()
    except ZipMemberError as exc:
        if error is None:
            raise
        raise error(f"{path}: member {exc.member!r} {exc}") from None


def check_zip_members(zf, *, path, error=None, max_bytes=None) -> None:
    """Vet every member of an archive before any is used: sizes, support and local headers.

    A member whose name was damaged in the central directory only (its local
    header keeps the right one) is caught here, wherever the name points, so
    it cannot be silently skipped as "not one of ours".

    Raises
    ------
    EieFormatError (or ``error``)
        ``<path>: member '<name>' <problem>`` for the first bad member; by
        default carrying the member's rule code (:class:`ZipMemberError`).
    """
    for info in zf.infolist():
        try:
            with zip_member(zf, info, max_bytes):
                pass
        except ZipMemberError as exc:
            if error is None:
                raise EieFormatError(f"{path}: member {exc.member!r} {exc}", code=exc.code) from None
            raise error(f"{path}: member {exc.member!r} {exc}") from None
    problem = zip_unlisted_data(zf)
    if problem is not None:
        if error is None:
            raise EieFormatError(f"{path}: {problem}", code="CONTAINER-UNLISTED-DATA")
        raise error(f"{path}: {problem} [CONTAINER-UNLISTED-DATA]")


#: Largest ZIP data descriptor (ZIP64, with its optional signature), in bytes (PKWARE APPNOTE 4.3.9).
ZIP_MAX_DATA_DESCRIPTOR = 24


def zip_unlisted_data(zf):
    """Bytes before the central directory that no member it lists accounts for, or None.

    The central directory is the archive's table of contents; zipfile reads
    only what it lists. If its entry count or size field is damaged (to zero,
    say) the archive still holds local headers and data that no reader sees:
    an ``.npz`` would load as fewer arrays, or none, and no check would fail.
    So the members it lists, each a local header (30 bytes + name + extra
    field, PKWARE APPNOTE 4.3.7), compressed data and, when flag bit 3 is set,
    a data descriptor (at most :data:`ZIP_MAX_DATA_DESCRIPTOR` bytes), must
    tile the bytes from offset 0 to the central directory without gaps (a
    prefix before the first member, which zipfile skips, is refused too).

    Parameters
    ----------
    zf : zipfile.ZipFile
        Open for reading, members already vetted (:func:`check_zip_members`).

    Returns
    -------
    str or None
        The first gap found, named by its byte range, or None when the listed members cover the archive.
    """
    import zipfile

    end = getattr(zf, "start_dir", None)
    if end is None or zf.fp is None:
        return None
    infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
    pos = 0  # a prefix (zipfile's 'concat': e.g. another archive's local headers) is unlisted data too
    if not infos and end > 0:
        return (f"the ZIP central directory lists no member, but {end} bytes precede it (members it does not "
                "list: a damaged entry count or directory size); refused, not read as empty")
    for info in infos:
        slack = ZIP_MAX_DATA_DESCRIPTOR if info.flag_bits & 0x08 else 0
        if not pos <= info.header_offset <= pos + slack:
            return (f"bytes {pos}..{info.header_offset} before member {info.filename!r} are not listed in the ZIP "
                    "central directory (a member it does not list)")
        zf.fp.seek(info.header_offset)
        head = zf.fp.read(zipfile.sizeFileHeader)
        if len(head) != zipfile.sizeFileHeader:
            return f"member {info.filename!r}: local header truncated"
        fh = struct.unpack(zipfile.structFileHeader, head)
        pos = (info.header_offset + zipfile.sizeFileHeader + fh[zipfile._FH_FILENAME_LENGTH]
               + fh[zipfile._FH_EXTRA_FIELD_LENGTH] + info.compress_size)
    slack = ZIP_MAX_DATA_DESCRIPTOR if infos and infos[-1].flag_bits & 0x08 else 0
    if not pos <= end <= pos + slack:
        return (f"bytes {pos}..{end} before the ZIP central directory are not listed in it (members it does not "
                "list: a damaged entry count or directory size)")
    return None


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


def _npy_layout(head: bytes, where: str, error):
    """Checked layout of a ``.npy`` image from its first bytes.

    Returns
    -------
    tuple
        ``(dtype, shape, fortran_order, count, nbytes, data_offset)``.
    """
    import numpy as np

    hdr = parse_npy_header(head)
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
    return dtype, tuple(shape), fortran, count, count * dtype.itemsize, offset


def _size_mismatch(where, dtype, shape, need, have, error):
    return error(f"{where}: header declares shape {shape} of {dtype} ({need} bytes) but {have} bytes follow")


def parse_npy(data: bytes, where: str, *, error=_io_error):
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

    dtype, shape, fortran, count, need, offset = _npy_layout(data, where, error)
    if len(data) - offset != need:
        raise _size_mismatch(where, dtype, shape, need, len(data) - offset, error)
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    order = "F" if fortran else "C"
    return arr.reshape(shape, order=order).copy()


#: Bytes read at a time from a ZIP member into its array. zipfile has no ``readinto``: each chunk
#: is read as a ``bytes`` object and copied. 1 MiB chunks reuse the same heap memory, where 16 MiB
#: ones were fresh mappings whose pages the kernel faulted in at every chunk: a 31 MB ``.npz`` of
#: 10,000 MNIST digits loaded in 30-33 ms instead of 49-50 ms in a new process (issue 11).
_CHUNK_BYTES = 1 << 20


def _read_npy_member(zf, info, where: str, error):
    """One ``.npy`` member of an open archive: header checked against the member's size, then read.

    The declared shape must need exactly the member's bytes after the header,
    which :func:`zip_member_problem` has bounded by the file, so a header
    declaring terabytes costs nothing; the data are read in chunks straight
    into the array through :class:`zip_member`.
    """
    import numpy as np

    with zip_member(zf, info) as member:
        head = member.read(MAX_NPY_HEADER_BYTES)
        dtype, shape, fortran, count, need, offset = _npy_layout(head, where, error)
        have = info.file_size - offset
        if have != need:
            raise _size_mismatch(where, dtype, shape, need, have, error)
        arr = np.empty(count, dtype=dtype)
        view = arr.view(np.uint8)
        got = min(len(head) - offset, need)
        view[:got] = np.frombuffer(head, dtype=np.uint8, count=got, offset=offset)
        while got < need:
            n = member.readinto(view[got: got + _CHUNK_BYTES])
            if not n:
                raise _size_mismatch(where, dtype, shape, need, got, error)
            got += n
        member.read()  # to the end: zipfile checks the CRC there
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_npz(path, names, max_file_bytes, max_member_bytes, error):
    """The ``.npy`` members of an ``.npz`` (``names``, or all in archive order) and every member name.

    Every member is vetted first (:func:`check_zip_members`: sizes, local
    header agreeing with the central directory) and must be named ``*.npy``
    (all that :func:`numpy.savez` writes): a member that cannot be read, or
    whose name was damaged, is an error, never a skipped array.
    """
    import collections

    out = collections.OrderedDict()
    with open_regular_file(path, max_bytes=max_file_bytes, error=error, what=".npz file") as fh:
        try:
            with open_zip(fh, path, error=error, what=".npz archive") as zf:
                check_zip_members(zf, path=path, error=error, max_bytes=max_member_bytes)
                infos = collections.OrderedDict()
                for info in zf.infolist():
                    if not info.filename.endswith(".npy"):
                        raise error(f"{path}: member {info.filename!r} is not a .npy array (an .npz holds only "
                                    "'<name>.npy' members; a damaged name is refused, not skipped)")
                    key = info.filename[:-4]
                    if key in infos:
                        raise error(f"{path}: member {info.filename!r} occurs twice")
                    infos[key] = info
                wanted = names if names is not None else list(infos)
                for name in wanted:
                    info = infos.get(name)
                    if info is None:
                        continue
                    where = f"{path}: member {info.filename!r}"
                    try:
                        out[name] = _read_npy_member(zf, info, where, error)
                    except ZipMemberError as exc:
                        raise error(f"{where} {exc}") from None
        except EieError:
            raise
        except MemoryError:
            raise error(f"{path}: not enough memory to read the arrays") from None
        except _zip_exceptions() as exc:
            raise error(f"{path}: not a readable .npz archive ({exc})") from None
    return out, list(infos)


def load_npz_members(path, names, max_bytes: int, *, error=_io_error) -> dict:
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
        Not a regular file, not a ZIP archive, a corrupt or oversized member
        (any member, wanted or not: :func:`check_zip_members`), a member not
        named ``*.npy`` (a damaged name is refused, never skipped), a header
        whose shape disagrees with the member's size, or a member that is not
        a plain array.
    """
    out, files = _read_npz(os.fspath(path), list(names), max_bytes, max_bytes, error)
    out = dict(out)
    out["__files__"] = sorted(files)
    return out


def load_npz_arrays(path, *, max_member_bytes=None, error=_io_error):
    """Every ``.npy`` member of an ``.npz`` file, in archive order, with size checks and no pickle.

    What :func:`numpy.load` gives, except that nothing is trusted: the file
    must be a regular file (a FIFO is refused before it is opened), each
    member's declared sizes must fit the file (:func:`zip_member_problem`) and
    each header's shape must need exactly the member's bytes, all checked
    before any array is allocated. Members not named ``*.npy`` are skipped.

    Parameters
    ----------
    path : str or os.PathLike
    max_member_bytes : int, optional
        Limit on each member's uncompressed size.

    Returns
    -------
    collections.OrderedDict of str to numpy.ndarray
        Keyed by member name without ``.npy``.

    Raises
    ------
    EieFormatError (or ``error``)
        As :func:`load_npz_members`.
    """
    return _read_npz(os.fspath(path), None, None, max_member_bytes, error)[0]
