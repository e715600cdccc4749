"""Relative-index encoding of sparse columns with the EIE filler rule.

EIE stores each PE's slice of a column as a list of ``(v, z)`` entries
(EIE, Han et al., ISCA 2016, Section III and Fig. 2/3):

* ``v`` indexes the weight codebook; ``v = 0`` is reserved for *filler*
  entries (the codebook's entry 0 is the value 0.0).
* ``z`` is the number of zero rows skipped since the previous entry of the
  same segment (a segment is one PE's slice of one column), counting from
  row -1. Decoding therefore is ``row = previous row + z + 1``.
* ``z`` has ``index_bits`` bits (EIE: 4). A gap of ``g`` zero rows becomes
  ``g // 2**index_bits`` filler entries ``(v=0, z=2**index_bits - 1)``
  followed by the real entry with ``z = g % 2**index_bits``. The paper's
  example: rows 2, 3, 22 with codes 1, 2, 3 encode as ``v = [1, 2, 0, 3]``,
  ``z = [2, 0, 15, 2]``.

Everything here is vectorised over entries (no Python loop per non-zero).
"""

from __future__ import annotations

import numpy as np

from ..errors import EieFormatError

__all__ = [
    "encode_column",
    "decode_column",
    "encode_segments",
    "encode_segments_sparse",
    "decode_segments",
    "filler_mask",
    "segment_ids",
]

_MAX_INDEX_BITS = 8  # z is stored in a uint8


def _check_index_bits(index_bits: int) -> int:
    if isinstance(index_bits, (bool, np.bool_)) or not isinstance(index_bits, (int, np.integer)):
        raise EieFormatError(f"index_bits: expected an integer, got {index_bits!r}", code="ARGUMENT")
    index_bits = int(index_bits)
    if not 1 <= index_bits <= _MAX_INDEX_BITS:
        raise EieFormatError(f"index_bits: {index_bits} is outside [1, {_MAX_INDEX_BITS}]", code="ARGUMENT")
    return index_bits


def _int_array(a, name: str) -> np.ndarray:
    """1-D integer array of ``a`` (no value conversion); empty input of any dtype is accepted."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise EieFormatError(f"{name}: expected a 1-D array, got shape {arr.shape}", code="ARGUMENT")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise EieFormatError(f"{name}: expected an integer array, got dtype {arr.dtype}", code="ARGUMENT")
    return arr


def segment_ids(counts) -> np.ndarray:
    """Segment index of every entry of a flat, segment-ordered entry array.

    Parameters
    ----------
    counts : array_like of int, shape (n_seg,)
        Number of entries of each segment (non-negative).

    Returns
    -------
    numpy.ndarray of int64, shape (counts.sum(),)
        ``out[i]`` is the segment that entry ``i`` belongs to.

    Raises
    ------
    EieFormatError
        If ``counts`` is not 1-D integer or holds a negative value.
    """
    counts = _int_array(counts, "counts")
    if counts.size and counts.min() < 0:
        raise EieFormatError(f"counts: segment {int(np.argmax(counts < 0))} has a negative entry count",
                             code="ARGUMENT")
    return np.repeat(np.arange(counts.size, dtype=np.int64), counts.astype(np.int64))


def filler_mask(v) -> np.ndarray:
    """Boolean mask of the filler entries (``v == 0``).

    Code 0 is reserved for fillers (EIE, Section III): a real entry always
    has ``v >= 1``.

    Parameters
    ----------
    v : array_like of int, shape (n_entries,)
        Codebook indices of the entries.

    Returns
    -------
    numpy.ndarray of bool, shape (n_entries,)
    """
    return np.asarray(v) == 0


def encode_segments(seg, pos, codes, n_seg: int, index_bits: int = 4):
    """Encode many segments (PE slices of columns) at once into ``(v, z)`` entries.

    Parameters
    ----------
    seg : array_like of int, shape (nnz,)
        Segment index of each non-zero, sorted non-decreasing, each in
        ``[0, n_seg)``.
    pos : array_like of int, shape (nnz,)
        Position (local row) of each non-zero inside its segment, ``>= 0`` and
        strictly increasing within a segment.
    codes : array_like of int, shape (nnz,)
        Codebook index of each non-zero, in ``[1, 255]`` (code 0 is reserved
        for fillers, EIE Section III).
    n_seg : int
        Number of segments (segments without non-zeros get a zero count).
    index_bits : int, default 4
        Bits of the relative index ``z`` (EIE: 4), in ``[1, 8]``.

    Returns
    -------
    v : numpy.ndarray of uint8, shape (n_entries,)
        Codebook indices, fillers (``0``) included, segments in order.
    z : numpy.ndarray of uint8, shape (n_entries,)
        Relative indices; fillers carry ``2**index_bits - 1``.
    counts : numpy.ndarray of int64, shape (n_seg,)
        Entries per segment, fillers included.

    Raises
    ------
    EieFormatError
        If the arrays differ in length or are not integer, ``seg`` is out of
        range or decreasing, ``pos`` is negative or not strictly increasing
        within a segment, a code is outside ``[1, 255]``, or ``index_bits``
        is out of range. The message names the first offending entry.

    Notes
    -----
    Filler rule (EIE, Section III): a gap of ``g`` zero rows before a
    non-zero becomes ``g // 2**index_bits`` fillers ``(0, 2**index_bits-1)``
    and then the real entry with ``z = g % 2**index_bits``.
    """
    v, z, present, sums = encode_segments_sparse(seg, pos, codes, n_seg, index_bits)
    counts = np.zeros(n_seg, dtype=np.int64)
    counts[present] = sums
    return v, z, counts


def encode_segments_sparse(seg, pos, codes, n_seg: int, index_bits: int = 4):
    """:func:`encode_segments` with the per-segment counts of the non-empty segments only.

    Memory is O(nnz + n_entries), independent of ``n_seg`` (a re-layout over
    many PEs has ``n_pe * n_cols`` segments, most of them empty).

    Parameters
    ----------
    seg, pos, codes, n_seg, index_bits
        As for :func:`encode_segments`.

    Returns
    -------
    v, z : numpy.ndarray of uint8, shape (n_entries,)
        As for :func:`encode_segments`.
    present : numpy.ndarray of int64, shape (n_present,)
        The segments holding entries, increasing.
    sums : numpy.ndarray of int64, shape (n_present,)
        Entries (fillers included) of each of them.

    Raises
    ------
    EieFormatError
        As :func:`encode_segments` (code ``ARGUMENT``).
    """
    index_bits = _check_index_bits(index_bits)
    seg = _int_array(seg, "seg")
    pos = _int_array(pos, "pos")
    codes = _int_array(codes, "codes")
    if not seg.size == pos.size == codes.size:
        raise EieFormatError(
            f"seg, pos, codes: lengths differ ({seg.size}, {pos.size}, {codes.size})", code="ARGUMENT"
        )
    if isinstance(n_seg, (bool, np.bool_)) or not isinstance(n_seg, (int, np.integer)) or n_seg < 0:
        raise EieFormatError(f"n_seg: expected a non-negative integer, got {n_seg!r}", code="ARGUMENT")
    n_seg = int(n_seg)
    nnz = seg.size
    if nnz:
        bad = np.flatnonzero(codes < 1)
        if bad.size:
            i = int(bad[0])
            raise EieFormatError(
                f"codes: entry {i} has code {int(codes[i])}; code 0 is reserved for fillers, "
                "real entries need a code >= 1 (EIE Section III)", code="ARGUMENT"
            )
        bad = np.flatnonzero(codes > 255)
        if bad.size:
            i = int(bad[0])
            raise EieFormatError(f"codes: entry {i} has code {int(codes[i])} > 255 (v is stored in 8 bits)",
                                 code="ARGUMENT")
        if seg.min() < 0 or seg.max() >= n_seg:
            i = int(np.flatnonzero((seg < 0) | (seg >= n_seg))[0])
            raise EieFormatError(f"seg: entry {i} has segment {int(seg[i])} outside [0, {n_seg})", code="ARGUMENT")
        if pos.min() < 0:
            i = int(np.flatnonzero(pos < 0)[0])
            raise EieFormatError(f"pos: entry {i} has negative position {int(pos[i])}", code="ARGUMENT")
    seg = seg.astype(np.int64, copy=False)
    pos = pos.astype(np.int64, copy=False)
    if nnz > 1:
        dseg = np.diff(seg)
        if dseg.min() < 0:
            i = int(np.flatnonzero(dseg < 0)[0]) + 1
            raise EieFormatError(f"seg: entry {i} decreases (segments must be sorted non-decreasing)", code="ARGUMENT")
        same = dseg == 0
        bad = np.flatnonzero(same & (np.diff(pos) <= 0))
        if bad.size:
            i = int(bad[0]) + 1
            raise EieFormatError(
                f"pos: entry {i} (segment {int(seg[i])}, position {int(pos[i])}) does not "
                "increase strictly within its segment", code="ARGUMENT"
            )
    # previous position within the same segment, -1 at a segment start
    prev = np.empty(nnz, dtype=np.int64)
    if nnz:
        prev[0] = -1
        prev[1:] = np.where(seg[1:] == seg[:-1], pos[:-1], -1)
    gap = pos - prev - 1
    n_fill = gap >> index_bits
    per = n_fill + 1  # entries produced by each non-zero
    csum = np.zeros(nnz + 1, dtype=np.int64)
    np.cumsum(per, out=csum[1:])
    total = int(csum[-1])
    zmax = (1 << index_bits) - 1
    v = np.zeros(total, dtype=np.uint8)
    z = np.full(total, zmax, dtype=np.uint8)
    real = csum[1:] - 1
    v[real] = codes.astype(np.uint8)
    z[real] = (gap & zmax).astype(np.uint8)
    present, sums = _segment_sums(seg, per)
    return v, z, present, sums


def _segment_sums(seg: np.ndarray, per: np.ndarray):
    """(segments holding entries, entries each): O(nnz) memory, never O(n_seg).

    ``seg`` is sorted non-decreasing; ``per`` the entries each non-zero
    produces (fillers included).
    """
    if seg.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], seg[1:] != seg[:-1])))
    return seg[starts], np.add.reduceat(per, starts)


def decode_segments(v, z, counts) -> np.ndarray:
    """Decode the position of every entry within its segment (segmented cumsum).

    Parameters
    ----------
    v : array_like of int, shape (n_entries,)
        Codebook indices (only the length is used; fillers are decoded too).
    z : array_like of int, shape (n_entries,)
        Relative indices.
    counts : array_like of int, shape (n_seg,)
        Entries per segment; ``counts.sum() == n_entries``.

    Returns
    -------
    numpy.ndarray of int64, shape (n_entries,)
        Position (local row) of each entry, fillers included:
        ``row = previous row + z + 1`` starting from -1 in every segment
        (EIE, Section III).

    Raises
    ------
    EieFormatError
        If the lengths disagree, a count is negative or an array is not integer.
    """
    v = _int_array(v, "v")
    z = _int_array(z, "z")
    counts = _int_array(counts, "counts").astype(np.int64, copy=False)
    if v.size != z.size:
        raise EieFormatError(f"v, z: lengths differ ({v.size}, {z.size})", code="ARGUMENT")
    if counts.size and counts.min() < 0:
        raise EieFormatError(f"counts: segment {int(np.argmax(counts < 0))} has a negative entry count",
                             code="ARGUMENT")
    if int(counts.sum()) != z.size:
        raise EieFormatError(f"counts: sum {int(counts.sum())} != number of entries {z.size}", code="ARGUMENT")
    return _segment_positions(z, counts)


def _segment_positions(z: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Unchecked core of :func:`decode_segments` (segmented cumsum).

    ``z`` is an integer array, ``counts`` an int64 array of non-negative
    entries per segment summing to ``z.size``; the caller has checked both.
    Returns the int64 position of every entry within its segment.
    """
    c = np.cumsum(z.astype(np.int64) + 1)
    starts = np.cumsum(counts) - counts
    base = np.zeros(counts.size, dtype=np.int64)
    nz = starts > 0
    base[nz] = c[starts[nz] - 1]
    return c - np.repeat(base, counts) - 1


def encode_column(rows, codes, index_bits: int = 4):
    """Encode one segment (one column of one PE) into ``(v, z)``.

    Parameters
    ----------
    rows : array_like of int, shape (nnz,)
        Local rows of the non-zeros, non-negative and strictly increasing.
    codes : array_like of int, shape (nnz,)
        Codebook indices, each ``>= 1``.
    index_bits : int, default 4
        Bits of ``z`` (EIE: 4).

    Returns
    -------
    v, z : numpy.ndarray of uint8, shape (n_entries,)
        Paper example (EIE, Section III): rows ``[2, 3, 22]`` with codes
        ``[1, 2, 3]`` give ``v = [1, 2, 0, 3]`` and ``z = [2, 0, 15, 2]``.

    Raises
    ------
    EieFormatError
        See :func:`encode_segments`.
    """
    rows = _int_array(rows, "rows")
    v, z, _ = encode_segments(np.zeros(rows.size, dtype=np.int64), rows, codes, 1, index_bits)
    return v, z


def decode_column(v, z) -> np.ndarray:
    """Decode one segment: local row of every entry (fillers included).

    Parameters
    ----------
    v, z : array_like of int, shape (n_entries,)

    Returns
    -------
    numpy.ndarray of int64, shape (n_entries,)
        ``row = previous row + z + 1``, starting from -1 (EIE, Section III).
    """
    z = _int_array(z, "z")
    return decode_segments(v, z, np.array([z.size], dtype=np.int64))
