"""The rules of the authors' dump directory (docs/FORMAT.md §2), each written once, run through a sink.

The dump's own rules -- its files (``DUMP-FILES``, ``STREAM-TRUNCATED``), its codebook file, the
agreement of ``act.dat``, ``n_in`` and the pointer files (``META-INCONSISTENT``) -- are checked
here; the per-PE CSC rules of the layer they hold are :func:`eiesim.format.rules.check_csc`'s.
As in :mod:`eiesim.format.rules`, a checker reports a finding to a *sink*: the validator
(:func:`eiesim.format.validate.validate_dump`) collects every finding, the reader
(:func:`eiesim.format.eiedump.read_dump`) raises on the first error through a
:class:`~eiesim.format.rules.RaiseSink` that names the file.

Every PE's files are read once, then decoded in one pass over all PEs (one ``numpy.frombuffer``
over the concatenated bytes), not PE by PE.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .._io import open_regular_file, os_error_message, read_regular_file, symlink_loop_message
from ..errors import EieFormatError
from .rules import CscLayer, check_codebook

__all__ = ["DUMP_CODE_BITS", "DUMP_INDEX_BITS", "MAX_DUMP_PES", "DumpFiles", "DumpPEs", "find_dump_files",
           "index_files", "read_member", "read_codebook", "read_activations", "read_pes", "dump_columns",
           "dump_csc", "dump_layer_name", "not_a_dump_dir"]

#: Bits of the codebook index in the authors' dump (16-entry codebook, docs/FORMAT.md §2).
DUMP_CODE_BITS = 4
#: Bits of the relative index in the authors' dump (EIE Section III: 4-bit z).
DUMP_INDEX_BITS = 4
#: Most PEs a dump may declare (by its largest ``ptr{k}.dat``) before it is refused unread.
MAX_DUMP_PES = 1 << 16

PTR_RE = re.compile(r"ptr(0|[1-9][0-9]*)\.dat")
SPM_RE = re.compile(r"spm(0|[1-9][0-9]*)\.dat")


def dump_layer_name(path) -> str:
    """Name of the layer of a dump directory: the directory's own name.

    The path is resolved first, so ``.``, ``..`` or ``dump/`` name the
    directory they point to (``Path(".").name`` is empty); the root
    directory, which has no name, gives its path.

    Parameters
    ----------
    path : str or os.PathLike
        The dump directory.

    Returns
    -------
    str
        A non-empty name.
    """
    p = Path(path)
    try:
        p = p.resolve()
    except (OSError, RuntimeError):  # pragma: no cover - unresolvable (symlink loop): keep it as given
        p = Path(os.path.abspath(p))
    return p.name or str(p)


def not_a_dump_dir(root: Path) -> str:
    """Message for a dump path that is not a directory (a file, a symlink loop, nothing)."""
    try:
        os.stat(root)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return symlink_loop_message(root)
    if root.exists():
        return f"{root}: is a file, not a dump directory (ptr/, spm/, arithm.dat)"
    return f"{root}: dump directory is missing"


@dataclass(frozen=True)
class DumpFiles:
    """The per-PE files of a dump directory: ``ptr[k]`` and ``spm[k]`` by PE, and N (largest ptr + 1)."""

    root: Path
    ptr: Dict[int, Path]
    spm: Dict[int, Path]
    n_pe: int


def index_files(folder: Path, pattern: re.Pattern) -> Dict[int, Path]:
    """``{k: path}`` of the files of ``folder`` named by ``pattern`` (indices of 7 digits or more ignored)."""
    found = {}
    if folder.is_dir():
        for e in folder.iterdir():
            m = pattern.fullmatch(e.name)
            if m and len(m.group(1)) < 7:
                found[int(m.group(1))] = e
    return found


def find_dump_files(sink, root: Path) -> DumpFiles:
    """The dump's per-PE files; ``DUMP-FILES`` for gaps in the numbering and unpaired files.

    Raises
    ------
    EieFormatError
        ``DUMP-UNREADABLE`` (fatal, whatever the sink) when ``root`` is not a directory, has no
        ``ptr{k}.dat`` file, or its largest one implies more than :data:`MAX_DUMP_PES` PEs.
    """
    if not root.is_dir():
        raise EieFormatError(not_a_dump_dir(root), code="DUMP-UNREADABLE")
    ptr, spm = index_files(root / "ptr", PTR_RE), index_files(root / "spm", SPM_RE)
    if not ptr:
        raise EieFormatError(f"{root}: no ptr/ptr{{k}}.dat files (not a dump directory)", code="DUMP-UNREADABLE")
    N = max(ptr) + 1
    if N > MAX_DUMP_PES:
        raise EieFormatError(f"{root}: ptr{N - 1}.dat implies {N} PEs (limit {MAX_DUMP_PES})",
                             code="DUMP-UNREADABLE")
    missing = sorted(set(range(N)) - set(ptr))
    if missing:
        sink.add("DUMP-FILES", f"ptr files must be numbered 0..N-1: ptr{missing[0]}.dat is missing "
                 f"({len(missing)} missing, N = {N} from the largest)", pe=missing[0], count=len(missing),
                 member=f"ptr/ptr{missing[0]}.dat")
    orphans = sorted(set(spm) - set(range(N)))
    if orphans:
        sink.add("DUMP-FILES", f"spm{orphans[0]}.dat has no ptr file (N = {N})", count=len(orphans),
                 member=f"spm/spm{orphans[0]}.dat")
    nospm = sorted(set(ptr) - set(spm))
    if nospm:
        sink.add("DUMP-FILES", f"spm{nospm[0]}.dat is missing (PE {nospm[0]} has a ptr file)", pe=nospm[0],
                 count=len(nospm), member=f"spm/spm{nospm[0]}.dat")
    return DumpFiles(root, ptr, spm, N)


def read_member(sink, path: Path, elem: int, member: str) -> Optional[bytes]:
    """The bytes of one dump file, or None after reporting ``DUMP-FILES`` (unreadable, not a regular
    file) or ``STREAM-TRUNCATED`` (not a whole number of ``elem``-byte records)."""
    try:
        raw = read_regular_file(path, None, what="dump file")  # a FIFO is refused unopened
    except EieFormatError as exc:
        sink.add("DUMP-FILES", f"{member}: {str(exc).removeprefix(f'{path}: ')}", member=member)
        return None
    if len(raw) % elem:
        sink.add("STREAM-TRUNCATED", f"{member}: {len(raw)} bytes is not a multiple of {elem} "
                 f"({len(raw) % elem} bytes of a partial record)", member=member)
        return None
    return raw


def read_codebook(sink, root: Path, level: str) -> Optional[np.ndarray]:
    """``arithm.dat`` as float32 (None when missing or unreadable) and its codebook rules
    (:func:`eiesim.format.rules.check_codebook`, 16 values)."""
    path = root / "arithm.dat"
    if not path.exists():  # exists, not is_file: a FIFO or directory is reported by read_member
        sink.add("DUMP-FILES", "arithm.dat (the codebook) is missing", member="arithm.dat")
        return None
    raw = read_member(sink, path, 4, "arithm.dat")
    if raw is None:
        return None
    cb = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    check_codebook(sink, cb, DUMP_CODE_BITS, level, member="arithm.dat")
    return cb


def read_activations(sink, root: Path) -> Optional[np.ndarray]:
    """``act.dat`` as float32 (a read-only view), None when absent or unreadable.

    Its values are not checked here: the validator adds ``FLOAT-NONFINITE``
    (:func:`eiesim.format.rules.check_floats`); the reader returns them as stored.
    """
    path = root / "act.dat"
    if not path.exists():
        return None
    raw = read_member(sink, path, 4, "act.dat")
    return None if raw is None else np.frombuffer(raw, dtype="<f4")


@dataclass
class DumpPEs:
    """Every PE's pointers and entries, decoded in one pass.

    ``ptrs`` is one int64 array of shape (N, L) when every PE's files were read and agree in length,
    else a list of per-PE int64 arrays (None where a PE's pointers or entries are missing or
    unreadable). ``v`` and ``z`` are uint32 views of every entry, PE after PE; ``counts`` the
    entries per PE; ``complete`` whether every PE's entries were read.
    """

    ptrs: object
    v: np.ndarray
    z: np.ndarray
    counts: np.ndarray
    complete: bool

    @property
    def lengths(self) -> List[int]:
        """Pointer-array length of every PE whose pointers were read."""
        if isinstance(self.ptrs, np.ndarray):
            return [self.ptrs.shape[1]] * self.ptrs.shape[0]
        return [p.size for p in self.ptrs if p is not None]


def _read_member_into(sink, path: Path, elem: int, member: str, buf: np.ndarray, off: int):
    """:func:`read_member` that reads the file straight into ``buf[off:]`` when its size fits there.

    Returns ``(nbytes, None)`` after reading ``nbytes`` bytes into ``buf``, ``(None, raw)`` with the
    file's bytes when it does not fit (it changed size since ``buf`` was sized), or ``(None, None)``
    after reporting ``DUMP-FILES`` / ``STREAM-TRUNCATED`` exactly as :func:`read_member` does.
    """
    try:
        fh = open_regular_file(path, what="dump file")  # a FIFO is refused unopened
    except EieFormatError as exc:
        sink.add("DUMP-FILES", f"{member}: {str(exc).removeprefix(f'{path}: ')}", member=member)
        return None, None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            if size % elem == 0 and off + size <= buf.size:
                got = fh.readinto(buf[off: off + size])
                if got == size and not fh.read(1):
                    return size, None
                fh.seek(0)
            raw = fh.read()
        except OSError as exc:
            sink.add("DUMP-FILES", f"{member}: {os_error_message(path, exc).removeprefix(f'{path}: ')}",
                     member=member)
            return None, None
    if len(raw) % elem:
        sink.add("STREAM-TRUNCATED", f"{member}: {len(raw)} bytes is not a multiple of {elem} "
                 f"({len(raw) % elem} bytes of a partial record)", member=member)
        return None, None
    return None, raw


def _file_sizes(paths: Dict[int, Path], n: int) -> List[int]:
    """Size in bytes of ``paths[k]`` for k < n (0 where missing or not statable): to size one buffer."""
    sizes = [0] * n
    for k, p in paths.items():
        if k < n:
            try:
                sizes[k] = os.stat(p).st_size
            except OSError:
                pass
    return sizes


def _read_all(sink, paths: Dict[int, Path], n: int, elem: int, name: str, before=None) -> Tuple[np.ndarray, list]:
    """Every ``paths[k]`` (k < n) read straight into one preallocated byte buffer, in PE order.

    Returns the buffer (the files' bytes back to back, as ``b"".join`` of them) and, per PE, its
    ``(start, stop)`` in the buffer, or None when the file is absent or was reported (see
    :func:`_read_member_into`). ``before(k)`` runs first for each PE (the pointer file is read,
    and reported, before the PE's entries).
    """
    sizes = _file_sizes(paths, n)
    buf = np.empty(sum(s for s in sizes if s % elem == 0), dtype=np.uint8)
    spans: list = [None] * n
    extra = []  # files that changed size since the stat: read as bytes, appended after the buffer
    off = 0
    for k in range(n):
        if before is not None:
            before(k)
        if k not in paths:
            continue
        got, raw = _read_member_into(sink, paths[k], elem, f"{name}/{name}{k}.dat", buf, off)
        if got is not None:
            spans[k] = (off, off + got)
            off += got
        elif raw is not None:
            extra.append((k, raw))
    if extra:  # rare: rebuild the buffer with those files in PE order
        parts = [(k, buf[a:b]) for k, (a, b) in ((k, s) for k, s in enumerate(spans) if s is not None)]
        parts += [(k, np.frombuffer(raw, dtype=np.uint8)) for k, raw in extra]
        parts.sort(key=lambda kp: kp[0])
        off = 0
        for k, part in parts:
            spans[k] = (off, off + part.size)
            off += part.size
        return np.concatenate([p for _, p in parts]) if parts else np.empty(0, np.uint8), spans
    return buf[:off], spans


def read_pes(sink, files: DumpFiles) -> DumpPEs:
    """Read every PE's ``ptr{k}.dat`` and ``spm{k}.dat`` (file rules reported PE after PE, pointer
    file first), then decode all of them at once.

    Each kind of file is read straight into one preallocated buffer (no per-file ``bytes`` and no
    join of the ~8 MB of FC8's entries: issue 11).
    """
    N = files.n_pe
    pbuf_spans: dict = {}

    def read_ptr(k):  # the pointer files are small: read before each PE's entries, as the rules order
        if k in files.ptr:
            pbuf_spans[k] = read_member(sink, files.ptr[k], 4, f"ptr/ptr{k}.dat")

    sbuf, sspans = _read_all(sink, files.spm, N, 8, "spm", before=read_ptr)
    praw: List[Optional[bytes]] = [pbuf_spans.get(k) for k in range(N)]
    counts = np.array([0 if s is None else (s[1] - s[0]) // 8 for s in sspans], dtype=np.int64)
    ent = sbuf.view("<u4").reshape(-1, 2)
    ok = [p is not None and s is not None for p, s in zip(praw, sspans)]
    if all(ok) and len({len(p) for p in praw}) == 1 and praw[0]:
        ptrs = np.frombuffer(b"".join(praw), dtype="<u4").reshape(N, -1).astype(np.int64)
    else:  # missing PEs or ragged lengths: per PE, None for a PE left out of the pointer checks
        ptrs = [np.frombuffer(p, dtype="<u4").astype(np.int64) if good else None for p, good in zip(praw, ok)]
    complete = all(k in files.spm for k in range(N)) and all(s is not None for s in sspans)
    return DumpPEs(ptrs, ent[:, 0], ent[:, 1], counts, complete)


def dump_columns(sink, lengths: List[int], n_pe: int, act: Optional[np.ndarray],
                 n_in: Optional[int]) -> Optional[Tuple[int, int, bool]]:
    """``META-INCONSISTENT``: ``act.dat``, ``n_in`` and the pointer files agree on the input columns.

    Parameters
    ----------
    sink : RaiseSink or the validator's collector
    lengths : list of int
        Pointer-array lengths of the PEs read (each should be ``ceil(n_in / N) * N + 2``).
    n_pe : int
    act : numpy.ndarray or None
        ``act.dat``.
    n_in : int or None
        Given by the caller; default ``len(act.dat)``, else the padded count of the pointer files.

    Returns
    -------
    (n_in, padded, pad_from_act) or None
        None when the pointer files fit no column count (reported) or none was read. ``pad_from_act``:
        ``n_in`` is act.dat's length (non-empty padding then blames act.dat).
    """
    N = n_pe
    pad_from_act = n_in is None and act is not None
    if pad_from_act:
        n_in = int(act.size)
        L = lengths[0] if lengths and len(set(lengths)) == 1 else None
        if L is not None and L - 2 != -(-n_in // N) * N and (L - 2) % N == 0 and L - 2 >= N:
            # every pointer file agrees on the padded column count: the odd one out is act.dat
            sink.add("META-INCONSISTENT", f"act.dat holds {act.size} activations, but the pointer files "
                     f"describe {L - 2} padded input columns for N = {N} (act.dat too short or too long?)",
                     member="act.dat")
            return L - 2, L - 2, False  # act.dat reported; judge the rest without it
    if n_in is not None:
        if act is not None and act.size != n_in:
            sink.add("META-INCONSISTENT", f"act.dat holds {act.size} activations, n_in = {n_in}", member="act.dat")
        return n_in, -(-n_in // N) * N, pad_from_act
    if not lengths:
        return None
    vals, freq = np.unique(np.array(lengths), return_counts=True)
    L0 = int(vals[np.argmax(freq)])
    if L0 - 2 < N or (L0 - 2) % N:
        sink.add("META-INCONSISTENT", f"pointer arrays hold {L0} values; expected ceil(C/N)*N + 2 with "
                 f"N = {N} (leading 0, padded columns, bias column)", member="ptr")
        return None
    return L0 - 2, L0 - 2, False


def dump_csc(name: str, pes: DumpPEs, n_pe: int, n_in: int, padded: int, *, n_out: Optional[int],
             codebook: Optional[np.ndarray], pad_from_act: bool) -> CscLayer:
    """The layer of a dump as :class:`~eiesim.format.rules.CscLayer` (padding and bias columns marked)
    for :func:`eiesim.format.rules.check_csc`. ``codebook`` None skips ``ENTRY-DECODES-TO-ZERO``."""
    return CscLayer(index=0, name=name, n_pe=n_pe, n_out=n_out, n_in=n_in, code_bits=DUMP_CODE_BITS,
                    index_bits=DUMP_INDEX_BITS, ptrs=pes.ptrs, v=pes.v, z=pes.z, ent_counts=pes.counts,
                    ptr_len=padded + 2, bias_col=padded, pad_cols=(n_in, padded), pointer_bits=None,
                    ptr_member="ptr/ptr{k}.dat", spm_member="spm/spm{k}.dat", entries_complete=pes.complete,
                    codebook=codebook, pad_from_act=pad_from_act)
