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

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._io import remove_stale_temporaries, temporary_prefix
from ..errors import EieFormatError, EieInputError
from . import dumprules
from .dumprules import DUMP_CODE_BITS, DUMP_INDEX_BITS, PTR_RE, SPM_RE, dump_layer_name, index_files
from .layout import _SIM_REFUSED, CompressedLayer
from .rules import RaiseSink, check_csc

__all__ = ["EieDump", "ROW_OUTLIER_LOCAL_ROWS", "read_dump", "write_dump", "dump_files", "dump_layer_name",
           "DUMP_CODE_BITS", "DUMP_INDEX_BITS"]


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
    for sub, pattern in (("ptr", PTR_RE), ("spm", SPM_RE)):
        found = index_files(root / sub, pattern)
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
    # the rules of docs/FORMAT.md, the validator's own (dumprules, rules), raising on the first error
    sink = RaiseSink(str(root), refuse=_SIM_REFUSED, folder=True)
    files = dumprules.find_dump_files(sink, root)
    N = files.n_pe
    if n_pe is not None and n_pe != N:
        raise EieFormatError(f"{root}: N does not match the dump (n_pe={n_pe}, dump has {N} ptr files)",
                             code="META-INCONSISTENT")
    codebook = dumprules.read_codebook(sink, root, "cheap")
    act = dumprules.read_activations(sink, root)
    pes = dumprules.read_pes(sink, files)
    if n_in is not None and len(set(pes.lengths)) == 1 and pes.lengths[0] - 2 != -(-n_in // N) * N:
        raise EieFormatError(f"{root / 'ptr'}: pointer arrays hold {pes.lengths[0] - 2} padded columns, which is "
                             f"not ceil(n_in/N)*N for n_in={n_in}, N={N}", code="META-INCONSISTENT")
    n_in, padded, from_act = dumprules.dump_columns(sink, pes.lengths, N, act, n_in)
    c = dumprules.dump_csc(dump_layer_name(root), pes, N, n_in, padded, n_out=n_out, codebook=None,
                           pad_from_act=from_act)
    check_csc(sink, c, "cheap")
    P = pes.ptrs if isinstance(pes.ptrs, np.ndarray) else np.stack(pes.ptrs)  # (N, padded + 2), checked
    if pes.v.size and (int(pes.v.max()) >= 1 << DUMP_CODE_BITS or int(pes.z.max()) >= 1 << DUMP_INDEX_BITS) \
            or np.any(P[:, n_in] != P[:, padded]):
        check_csc(sink, c, "full")  # codes, indices or padding columns out of range: name the rule and file
    # the real columns and the bias column (no copy when there are no padding columns)
    ptr = P if padded == n_in else np.concatenate([P[:, : n_in + 1], P[:, padded + 1:]], axis=1)
    v, z = pes.v.astype(np.uint8), pes.z.astype(np.uint8)
    warnings_ = ()
    if n_out is None:
        n_out, warnings_ = _infer_n_out(root, ptr, v, z)
    layer = CompressedLayer(shape=(n_out, n_in), n_pe=N, codebook=codebook, ptr=ptr, v=v, z=z, has_bias=True,
                            code_bits=DUMP_CODE_BITS, index_bits=DUMP_INDEX_BITS, name=c.name)
    if layer.kernel_tables() is None:  # the compiled sweep found a broken rule (or is not built): name it
        check_csc(sink, replace(c, n_out=n_out), "full")
    return EieDump(layer=layer, activations=None if act is None else act.astype(np.float32), path=root,
                   n_out_inferred=c.n_out is None, warnings=tuple(warnings_))


#: Entries per group of PEs in :func:`_last_rows_numpy` (its temporaries: about 16 bytes per entry).
_INFER_CHUNK = 1 << 16


def _infer_n_out(root: Path, ptr: np.ndarray, v: np.ndarray, z: np.ndarray):
    """``n_out`` of a dump as its largest decoded global row + 1, and the row-outlier warning.

    A column segment's last local row is ``sum(z + 1) - 1`` over the segment (EIE Section III): one
    running sum over all PEs' entries, read at the segment boundaries. The last entry of a segment
    is a real one (a trailing filler breaks ``FILLER-TRAILING``, which the reader refuses after
    this), so the largest of them is the PE's last real row.

    Parameters
    ----------
    root : pathlib.Path
        The dump directory (for the messages).
    ptr : numpy.ndarray of int64, shape (N, n_cols + 1)
        Pointers, checked (cheap tier): start at 0, non-decreasing, end at each PE's entry count.
    v, z : numpy.ndarray of uint8, shape (n_entries,)
        Codes and relative indices, PE after PE.

    Returns
    -------
    n_out : int
    warnings : tuple of str
        One message when one PE decodes rows more than :data:`ROW_OUTLIER_LOCAL_ROWS` local
        rows past every other PE's, else empty.

    Raises
    ------
    EieFormatError
        ``META-MISSING`` when the dump holds no non-zero (nothing to infer from).
    """
    if not v.any():
        raise EieFormatError(f"{root}: the dump holds no non-zero; pass n_out explicitly", code="META-MISSING")
    N = ptr.shape[0]
    last = _last_rows(ptr, z)  # last decoded local row, per PE (-1: none)
    n_out = int((last * N + np.arange(N))[last >= 0].max()) + 1
    if N > 1:
        order = np.argsort(last, kind="stable")
        top, second = int(order[-1]), int(order[-2])
        if last[top] - last[second] > ROW_OUTLIER_LOCAL_ROWS:
            return n_out, (
                f"{root}: n_out = {n_out} is inferred from PE {top} alone: its last non-zero decodes to "
                f"local row {int(last[top])} (global row {n_out - 1}), every other PE's by local row "
                f"{int(last[second])} -- a missing or misplaced filler entry in spm/spm{top}.dat? "
                "Pass n_out (--n-out) if the layer really has that many rows",)
    return n_out, ()


#: :func:`_last_rows` uses the compiled kernel (``eie_sim.last_rows``) when it is built; tests set
#: this False to run the NumPy twin.
_USE_KERNEL = True


def _last_rows(ptr: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each PE's last (largest) decoded local row, -1 for a PE without entries: the kernel's
    ``eie_sim.last_rows`` when built, else (and in tests) :func:`_last_rows_numpy` -- the same values."""
    if _USE_KERNEL:
        try:
            from .._kernels import eie_sim
        except ImportError:  # pragma: no cover - only on a broken install
            pass
        else:
            return eie_sim.last_rows(np.ascontiguousarray(ptr, dtype=np.int64), np.ascontiguousarray(z))
    return _last_rows_numpy(ptr, z)


def _last_rows_numpy(ptr: np.ndarray, z: np.ndarray) -> np.ndarray:
    """:func:`_last_rows` in NumPy: one running sum of ``z`` over groups of PEs, read at the segment
    boundaries (``ptr`` checked: starts at 0, non-decreasing, ends at each PE's entry count)."""
    N = ptr.shape[0]
    off = np.concatenate([[0], np.cumsum(ptr[:, -1])])  # each PE's first entry in z
    last = np.empty(N, dtype=np.int64)  # last decoded local row, per PE (-1: none)
    k0 = 0
    while k0 < N:  # PEs in groups of about 2**16 entries: the temporaries stay small (and in cache)
        k1 = k0 + 1
        while k1 < N and off[k1 + 1] - off[k0] <= _INFER_CHUNK:
            k1 += 1
        zg = z[off[k0]: off[k1]]
        # running sum of z (int32 while it cannot overflow: z < 2**8), read at the segment boundaries
        csum = np.empty(zg.size + 1, dtype=np.int32 if zg.size < 1 << 23 else np.int64)
        csum[0] = 0
        np.cumsum(zg, dtype=csum.dtype, out=csum[1:])
        bounds = (ptr[k0:k1] + (off[k0:k1] - off[k0])[:, None]).astype(np.intp)  # (PEs, n_cols + 1)
        # sum(z + 1) up to each boundary: its difference between a segment's ends, less 1, is the
        # segment's last local row (-1: empty segment); one gather, no per-segment temporaries
        ends = csum[bounds] + bounds
        last[k0:k1] = np.diff(ends, axis=1).max(axis=1) - 1
        k0 = k1
    return last


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
    import secrets  # here, with shutil: only a writer needs them
    import shutil

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
