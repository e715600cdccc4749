"""Reader and writer of the authors' EIE simulator dump directory.

Layout (docs/FORMAT.md §2; RalphMao/EIE-simulator, the C++ simulator of
EIE by its authors)::

    <dir>/ptr/ptr{k}.dat   uint32 LE column pointers of PE k, k = 0 ... N-1
    <dir>/spm/spm{k}.dat   uint32 LE pairs (code v, relative index z), 8 bytes per entry
    <dir>/arithm.dat       16 float32 LE: the codebook, entry 0 = 0.0
    <dir>/act.dat          float32 LE input activations (optional)

Per PE the pointer array has ``ceil(C / N) * N + 2`` values: a leading 0,
one end pointer per column (the C input columns padded up to a multiple of
N; padding columns are empty) and one end pointer for the bias column,
which the dump always has. ``z`` counts zeros among the PE's own rows
(PE k owns global rows ``i % N == k``). Codes and relative indices are 4 bits
(codes < 16, z < 16).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import read_regular_file, remove_stale_temporaries, symlink_loop_message, temporary_prefix
from ..errors import EieFormatError, EieInputError
from .layout import CompressedLayer

__all__ = ["EieDump", "ROW_OUTLIER_LOCAL_ROWS", "read_dump", "write_dump", "dump_files", "dump_layer_name", "DUMP_CODE_BITS", "DUMP_INDEX_BITS"]

#: Bits of the codebook index in the authors' dump (16-entry codebook, docs/FORMAT.md §2).
DUMP_CODE_BITS = 4
#: Bits of the relative index in the authors' dump (EIE Section III: 4-bit z).
DUMP_INDEX_BITS = 4

_PTR_RE = re.compile(r"ptr(0|[1-9][0-9]*)\.dat")
_SPM_RE = re.compile(r"spm(0|[1-9][0-9]*)\.dat")


@dataclass(frozen=True, eq=False)
class EieDump:
    """Contents of one dump directory.

    Attributes
    ----------
    layer : CompressedLayer
        The layer, ``has_bias=True`` (the dump always carries a bias column,
        possibly empty), ``code_bits = index_bits = 4``.
    activations : numpy.ndarray of float32, shape (n_in,), or None
        ``act.dat`` when present.
    path : pathlib.Path
        The directory read.
    n_out_inferred : bool
        True when ``n_out`` was not given and was inferred as the largest
        decoded global row + 1 (trailing all-zero rows cannot be seen).
    warnings : tuple of str
        Suspicious facts found while reading, for the caller to show: with an
        inferred ``n_out``, one PE decoding rows far past every other PE's
        (more than :data:`ROW_OUTLIER_LOCAL_ROWS` local rows: a missing or
        misplaced filler entry looks exactly like that, and it alone then
        decides ``n_out``).
    """

    layer: CompressedLayer
    activations: np.ndarray | None
    path: Path
    n_out_inferred: bool = False
    warnings: tuple = ()


#: Local rows by which one PE's last decoded row must pass every other PE's
#: before :func:`read_dump` warns (an inferred ``n_out`` only): one filler
#: entry's span with 4-bit relative indices (z = 15 skips 16 rows, EIE Section III).
ROW_OUTLIER_LOCAL_ROWS = 16


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


def _check_dim(value, what: str):
    """``value`` (n_out / n_in given by the caller) as an int in ``1..MAX_DIM``, or None when None.

    The bound is :data:`eiesim.format.container.MAX_DIM`, the largest
    dimension a ``.eie`` container accepts (a dump does not record n_out;
    a larger value would only add all-zero rows, at 4 bytes of output each).
    """
    if value is None:
        return None
    from .container import MAX_DIM

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not 1 <= int(value) <= MAX_DIM:
        raise EieInputError(f"{what} = {value!r}: must be an integer in 1..{MAX_DIM}")
    return int(value)


def _not_a_dump_dir(root: Path) -> str:
    """Message for a dump path that is not a directory."""
    try:
        os.stat(root)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return symlink_loop_message(root)
    if root.exists():
        return f"{root}: is a file, not a dump directory (ptr/, spm/, arithm.dat)"
    return f"{root}: dump directory is missing"


def _read_array(path: Path, dtype: str, elem: int, what: str) -> np.ndarray:
    if not path.exists():
        raise EieFormatError(f"{path}: {what} file is missing", code="DUMP-FILES")
    raw = read_regular_file(path, None, error=functools.partial(EieFormatError,
    code="DUMP-FILES"), what=f"{what} file")  # a FIFO is refused unopened
    if len(raw) % elem:
        raise EieFormatError(
            f"{path}: size {len(raw)} bytes is not a multiple of {elem} ({what}; truncated?)", code="STREAM-TRUNCATED"
        )
    return np.frombuffer(raw, dtype=dtype)


def _index_files(folder: Path, pattern: re.Pattern, what: str) -> dict[int, Path]:
    if not folder.is_dir():
        raise EieFormatError(f"{folder}: {what} directory is missing", code="DUMP-UNREADABLE")
    found = {}
    for entry in folder.iterdir():
        m = pattern.fullmatch(entry.name)
        if m:
            found[int(m.group(1))] = entry
    return found


def dump_files(path) -> list[Path]:
    """The files of a dump directory that :func:`read_dump` reads, those that exist.

    ``arithm.dat``, ``act.dat``, ``ptr/ptr<k>.dat`` and ``spm/spm<k>.dat``;
    nothing is opened. Used to keep a command's outputs off its inputs.

    Parameters
    ----------
    path : str or os.PathLike
        The dump directory (anything else gives an empty list).

    Returns
    -------
    list of pathlib.Path
    """
    root = Path(path)
    out = [root / name for name in ("arithm.dat", "act.dat") if (root / name).exists()]
    for sub, pattern in (("ptr", _PTR_RE), ("spm", _SPM_RE)):
        if (root / sub).is_dir():
            found = _index_files(root / sub, pattern, sub)
            out += [found[k] for k in sorted(found)]
    return out


def read_dump(path, *, n_out: int | None = None, n_in: int | None = None,
              n_pe: int | None = None) -> EieDump:
    """Read the authors' simulator dump directory into a :class:`CompressedLayer`.

    Parameters
    ----------
    path : str or os.PathLike
        The dump directory.
    n_out : int, optional
        Output rows. When omitted it is **inferred** as the largest decoded
        global row + 1 (the dump does not record it; trailing all-zero rows
        cannot be seen).
    n_in : int, optional
        Input columns. Defaults to the length of ``act.dat`` when present,
        else the padded column count of the pointer arrays. Must satisfy
        ``ceil(n_in / N) * N == padded count``; the padding columns
        ``n_in ... padded - 1`` must be empty.
    n_pe : int, optional
        Expected number of PEs; N itself is the number of ``ptr/ptr{k}.dat``
        files.

    Returns
    -------
    EieDump

    Raises
    ------
    EieFormatError
        If the directory or a file is missing, the ptr files are not
        numbered 0 ... N-1, N does not match ``n_pe``, a file size is not a
        multiple of its element size, pointer arrays differ in length or do
        not start at 0 / decrease, ``ptr[-1]`` differs from the number of
        entries in ``spm{k}.dat``, a code or z is >= 16, the codebook is not
        16 values with entry 0 = +0.0, padding columns are not empty, or the
        decoded layer breaks a rule of :meth:`CompressedLayer.check_format`.
        Every message names the file or directory (a path that is a file
        is reported as such).
    EieInputError
        If ``n_out`` or ``n_in`` is not an integer in ``1..MAX_DIM``
        (:data:`eiesim.format.container.MAX_DIM`).
    """
    n_out = _check_dim(n_out, "n_out")
    n_in = _check_dim(n_in, "n_in")
    root = Path(path)
    if not root.is_dir():
        raise EieFormatError(_not_a_dump_dir(root), code="DUMP-UNREADABLE")
    ptr_files = _index_files(root / "ptr", _PTR_RE, "ptr")
    if not ptr_files:
        raise EieFormatError(f"{root / 'ptr'}: no ptr{{k}}.dat files", code="DUMP-UNREADABLE")
    N = len(ptr_files)
    if sorted(ptr_files) != list(range(N)):
        missing = sorted(set(range(max(ptr_files) + 1)) - set(ptr_files))
        raise EieFormatError(
            f"{root / 'ptr'}: ptr files must be numbered 0..N-1 contiguously; "
            f"missing ptr{missing[0]}.dat", code="DUMP-FILES"
        )
    if n_pe is not None and n_pe != N:
        raise EieFormatError(f"{root}: N does not match the dump (n_pe={n_pe}, dump has {N} ptr files)",
                             code="META-INCONSISTENT")
    spm_files = _index_files(root / "spm", _SPM_RE, "spm")
    extra = sorted(set(spm_files) - set(range(N)))
    if extra:
        raise EieFormatError(f"{spm_files[extra[0]]}: has no matching ptr file (N = {N})", code="DUMP-FILES")

    cb_path = root / "arithm.dat"
    codebook = _read_array(cb_path, "<f4", 4, "codebook").astype(np.float32)
    if codebook.size != 1 << DUMP_CODE_BITS:
        raise EieFormatError(f"{cb_path}: holds {codebook.size} float32 values, expected {1 << DUMP_CODE_BITS}",
                             code="CODEBOOK-SIZE")
    if codebook.view(np.uint32)[0] != 0:
        raise EieFormatError(f"{cb_path}: entry 0 is {codebook[0].item()!r}, must be +0.0",
                             code="CODEBOOK-ZERO-NOT-POSITIVE-ZERO")
    if not np.all(np.isfinite(codebook)):
        raise EieFormatError(f"{cb_path}: codebook holds a non-finite value", code="FLOAT-NONFINITE")

    act_path = root / "act.dat"
    act = None
    if act_path.exists():
        act = _read_array(act_path, "<f4", 4, "activation").astype(np.float32)

    ptrs, vs, zs = [], [], []
    length = None
    for k in range(N):
        pf = ptr_files[k]
        p = _read_array(pf, "<u4", 4, "pointer").astype(np.int64)
        if length is None:
            length = p.size
            if length < N + 2 or (length - 2) % N:
                raise EieFormatError(
                    f"{pf}: {length} pointers; expected ceil(C/N)*N + 2 with N={N} "
                    "(leading 0, padded columns, bias column) -- N is the number of ptr "
                    f"files: is there a stray ptr{N - 1}.dat?", code="META-INCONSISTENT"
                )
        elif p.size != length:
            raise EieFormatError(f"{pf}: {p.size} pointers, but {ptr_files[0]} has {length}",
                                 code="PTR-SHORT" if p.size < length else "PTR-LONG")
        if p[0] != 0:
            raise EieFormatError(f"{pf}: first pointer is {int(p[0])}, must be 0", code="PTR-START-NONZERO")
        dp = np.diff(p)
        if dp.min() < 0:
            j = int(np.flatnonzero(dp < 0)[0])
            raise EieFormatError(f"{pf}: pointer of column {j} decreases ({int(p[j])} -> {int(p[j + 1])})",
                                 code="PTR-DECREASING")
        sf = spm_files.get(k, root / "spm" / f"spm{k}.dat")
        s = _read_array(sf, "<u4", 8, "sparse-matrix").reshape(-1, 2)
        if p[-1] != s.shape[0]:
            raise EieFormatError(
                f"{pf}: last pointer {int(p[-1])} != number of entries {s.shape[0]} in {sf.name}",
                code="PTR-SLACK" if p[-1] < s.shape[0] else "PTR-OVERRUN"
            )
        for col, what, lim in ((0, "code", 1 << DUMP_CODE_BITS), (1, "relative index z", 1 << DUMP_INDEX_BITS)):
            if s.shape[0] and int(s[:, col].max()) >= lim:
                i = int(np.flatnonzero(s[:, col] >= lim)[0])
                raise EieFormatError(f"{sf}: entry {i} has {what} {int(s[i, col])} >= {lim}",
                                     code="CODE-RANGE" if col == 0 else "RELIDX-Z-RANGE")
        ptrs.append(p)
        vs.append(s[:, 0].astype(np.uint8))
        zs.append(s[:, 1].astype(np.uint8))
    ptr_full = np.stack(ptrs)  # (N, padded + 2)
    padded = length - 2

    if n_in is None and act is not None and -(-act.size // N) * N != padded:
        raise EieFormatError(
            f"{act_path}: holds {act.size} activations, but the pointer files describe "
            f"{padded} padded input columns for N = {N} (act.dat too short or too long?)", code="META-INCONSISTENT"
        )
    n_in_from_act = n_in is None and act is not None
    if n_in is None:
        n_in = act.size if act is not None else padded
    if act is not None and act.size != n_in:
        raise EieFormatError(f"{act_path}: holds {act.size} activations, but n_in = {n_in}", code="META-INCONSISTENT")
    if not isinstance(n_in, (int, np.integer)) or n_in < 1 or -(-int(n_in) // N) * N != padded:
        raise EieFormatError(
            f"{root / 'ptr'}: pointer arrays hold {padded} padded columns, which is not "
            f"ceil(n_in/N)*N for n_in={n_in}, N={N}", code="META-INCONSISTENT"
        )
    n_in = int(n_in)
    pad_bad = np.flatnonzero(ptr_full[:, n_in] != ptr_full[:, padded])
    if pad_bad.size == N and n_in_from_act:
        # n_in came from act.dat alone and every PE stores entries past it: the file whose length
        # disagrees with all the others is act.dat, not a ptr file
        k = int(pad_bad[0])
        j = n_in + int(np.flatnonzero(np.diff(ptr_full[k, n_in:padded + 1]))[0])
        raise EieFormatError(
            f"{act_path}: holds {act.size} activations, but the pointer files store entries in "
            f"column {j} (in all {N} PEs' ptr files): act.dat is too short for the layer's input columns",
            code="META-INCONSISTENT",
        )
    if pad_bad.size:
        k = int(pad_bad[0])
        raise EieFormatError(
            f"{ptr_files[k]}: padding columns {n_in}..{padded - 1} hold "
            f"{int(ptr_full[k, padded] - ptr_full[k, n_in])} entries; they must be empty"
            + (f" (or act.dat, {act.size} activations, is too short)" if n_in_from_act else ""),
            code="PTR-PADDING-NONEMPTY",
        )
    ptr = np.concatenate([ptr_full[:, : n_in + 1], ptr_full[:, padded + 1:]], axis=1)
    v = np.concatenate(vs)
    z = np.concatenate(zs)

    inferred = False
    warnings_ = []
    if n_out is None:
        # infer from the largest decoded global row of a real entry
        from .relindex import decode_segments

        counts = np.diff(ptr, axis=1).ravel()
        lrow = decode_segments(v, z, counts)
        pe = np.repeat(np.arange(N, dtype=np.int64), ptr[:, -1])
        real = v != 0
        if not real.any():
            raise EieFormatError(f"{root}: the dump holds no non-zero; pass n_out explicitly", code="META-MISSING")
        n_out = int((lrow[real] * N + pe[real]).max()) + 1
        inferred = True
        last = np.full(N, -1, dtype=np.int64)  # last decoded local row of a real entry, per PE
        np.maximum.at(last, pe[real], lrow[real])
        if N > 1:
            order = np.argsort(last, kind="stable")
            top, second = int(order[-1]), int(order[-2])
            if last[top] - last[second] > ROW_OUTLIER_LOCAL_ROWS:
                warnings_.append(
                    f"{root}: n_out = {n_out} is inferred from PE {top} alone: its last non-zero decodes to "
                    f"local row {int(last[top])} (global row {n_out - 1}), every other PE's by local row "
                    f"{int(last[second])} -- a missing or misplaced filler entry in spm/spm{top}.dat? "
                    "Pass n_out (--n-out) if the layer really has that many rows"
                )
    try:
        layer = CompressedLayer(
            shape=(n_out, n_in), n_pe=N, codebook=codebook, ptr=ptr, v=v, z=z,
            has_bias=True, code_bits=DUMP_CODE_BITS, index_bits=DUMP_INDEX_BITS,
            name=dump_layer_name(root),
        )
        layer.check_format(full=True)
    except EieFormatError as exc:
        raise EieFormatError(f"{root}: {exc}", code=exc.code) from None
    return EieDump(layer=layer, activations=act, path=root, n_out_inferred=inferred, warnings=tuple(warnings_))


def write_dump(layer: CompressedLayer, path, activations=None) -> Path:
    """Write ``layer`` as the authors' simulator dump directory.

    Columns are padded to a multiple of N with empty columns and a bias
    column is always written (empty when ``layer.has_bias`` is False), so
    reading the authors' FC8 dump and writing it back is byte-identical.

    The directory is built under a temporary name in the same parent and
    renamed into place; on failure the temporary directory is removed and
    ``path`` is left untouched. The temporary name is
    ``.tmp-eiesim-<pid>-<host>-<hex>``; one that a killed writer left in the
    parent is removed first (:func:`eiesim._io.remove_stale_temporaries`).

    Parameters
    ----------
    layer : CompressedLayer
        Must have ``code_bits == index_bits == 4`` (the dump's 4-bit codes
        and relative indices).
    path : str or os.PathLike
        Target directory; must not exist or be an empty directory.
    activations : array_like of float, shape (n_in,), optional
        Written as ``act.dat`` (float32 LE).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    EieFormatError
        If the layer's bit widths are not 4/4, a pointer exceeds uint32,
        ``path`` exists and is not an empty directory, or its parent is missing.
    EieInputError
        If ``activations`` is not 1-D of length ``n_in``.
    """
    if not isinstance(layer, CompressedLayer):
        raise EieFormatError(f"write_dump: expected a CompressedLayer, got {type(layer).__name__}", code="ARGUMENT")
    if layer.code_bits != DUMP_CODE_BITS or layer.index_bits != DUMP_INDEX_BITS:
        raise EieFormatError(
            f"write_dump: the dump format needs code_bits = index_bits = 4, layer has "
            f"{layer.code_bits}/{layer.index_bits}", code="ARGUMENT"
        )
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise EieFormatError(f"{dest}: exists and is not an empty directory; refusing to overwrite", code="ARGUMENT")
    parent = dest.parent
    if not parent.is_dir():
        raise EieFormatError(f"{parent}: parent directory of the dump is missing", code="ARGUMENT")
    act = None
    if activations is not None:
        act = np.asarray(activations)
        if act.shape != (layer.n_in,):
            raise EieInputError(f"activations: expected shape ({layer.n_in},), got {act.shape}")
        act = act.astype("<f4")

    N, n_in = layer.n_pe, layer.n_in
    padded = -(-n_in // N) * N
    ptr_full = np.empty((N, padded + 2), dtype=np.int64)
    ptr_full[:, : n_in + 1] = layer.ptr[:, : n_in + 1]
    ptr_full[:, n_in + 1: padded + 1] = layer.ptr[:, n_in: n_in + 1]
    ptr_full[:, padded + 1] = layer.ptr[:, -1]
    if int(ptr_full[:, -1].max()) > np.iinfo(np.uint32).max:
        raise EieFormatError("write_dump: a PE holds more entries than a uint32 pointer can address", code="PTR-WIDTH")
    ptr_full = ptr_full.astype("<u4")
    off = layer.pe_offsets
    spm = np.empty((layer.n_entries, 2), dtype="<u4")
    spm[:, 0] = layer.v
    spm[:, 1] = layer.z

    # os.mkdir (unlike tempfile.mkdtemp) honours the umask, so the renamed
    # directory gets ordinary permissions
    remove_stale_temporaries(parent)  # what a killed write_dump left here (our naming only)
    tmp = parent / f"{temporary_prefix()}{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        (tmp / "ptr").mkdir()
        (tmp / "spm").mkdir()
        for k in range(N):
            (tmp / "ptr" / f"ptr{k}.dat").write_bytes(ptr_full[k].tobytes())
            (tmp / "spm" / f"spm{k}.dat").write_bytes(spm[off[k]:off[k + 1]].tobytes())
        (tmp / "arithm.dat").write_bytes(layer.codebook.astype("<f4").tobytes())
        if act is not None:
            (tmp / "act.dat").write_bytes(act.tobytes())
        if dest.exists():
            dest.rmdir()  # empty directory (checked above)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
