"""The format rules of docs/FORMAT.md: the rule table and the one implementation of each rule.

Every rule of the per-PE CSC layout (pointers, entries, fillers, decoded rows) and of the codebook is
checked here, once. A checker does not decide what a broken rule means: it reports a finding --
``sink.add(code, message, **location)`` -- to a *sink*:

* the validator (:mod:`eiesim.format.validate`) passes a sink that collects every finding with its
  code, severity and location, and goes on;
* construction and loading (:class:`~eiesim.format.layout.CompressedLayer`, the container, the dump
  reader) pass a :class:`RaiseSink`, which raises :class:`~eiesim.errors.EieFormatError` with the
  rule's code on the first error (scipy.sparse's ``check_format`` has the same two tiers, each rule
  written once).

Tiers (as scipy.sparse): ``"cheap"`` rules cost O(N * n_cols) -- the size of the pointer arrays --
and run on every construction and load; ``"full"`` rules cost O(entries) and run in ``eiesim
validate``, in ``check_format(full=True)`` and before a layer is decoded or simulated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import EieFormatError
from .relindex import _segment_positions

__all__ = ["Rule", "RULES", "FATAL_CODES", "ERROR", "WARNING", "RaiseSink", "CscLayer", "check_codebook",
           "check_floats", "check_csc", "check_csc_arrays", "check_zero_decoding", "n_local_rows",
           "zero_codes"]

ERROR = "error"
WARNING = "warning"
_LEVELS = ("cheap", "full")


# =========================================================================== the rule table
@dataclass(frozen=True)
class Rule:
    """One conformance rule.

    Attributes
    ----------
    code : str
        Stable identifier (never reused for another meaning).
    severity : {"error", "warning"}
    tier : {"cheap", "full"}
        ``cheap``: O(N + header), checked on every load; ``full``: O(nnz),
        checked by ``eiesim validate``.
    inputs : tuple of str
        Input kinds it applies to: ``"eie"`` (container), ``"dump"``
        (authors' dump directory), ``"net"`` (``.net`` stream), ``"layer"``
        (in-memory layer / raw arrays).
    text : str
        What it checks (one sentence; the same text is in docs/FORMAT.md).
    """

    code: str
    severity: str
    tier: str
    inputs: Tuple[str, ...]
    text: str


_ALL = ("eie", "dump", "net", "layer")
_CSC = ("eie", "dump", "layer")

_RULE_LIST = [
    # ---- bytes and containers
    Rule("STREAM-TRUNCATED", ERROR, "cheap", ("eie", "dump", "net"),
         "A file, member or stream holds fewer bytes than its declaration or layout needs."),
    Rule("STREAM-TRAILING-BYTES", ERROR, "cheap", ("eie", "net"),
         "Bytes remain after the declared end (after the last .net layer, after a .npy payload, "
         "outside the ZIP archive)."),
    Rule("CONTAINER-CRC", ERROR, "cheap", ("eie",),
         "A ZIP member fails its CRC-32, its DEFLATE data is corrupt, or its local header is damaged or "
         "names it differently from the central directory."),
    Rule("CONTAINER-MEMBER-MISSING", ERROR, "cheap", ("eie",),
         "A member named by the manifest is not in the archive."),
    Rule("CONTAINER-MEMBER-UNKNOWN", WARNING, "cheap", ("eie",),
         "The archive holds a member the manifest does not declare."),
    Rule("CONTAINER-MEMBER-UNSUPPORTED", ERROR, "cheap", ("eie",),
         "A member is encrypted, uses a compression method other than stored/DEFLATE, or its name repeats."),
    Rule("CONTAINER-SIZE-ABSURD", ERROR, "cheap", ("eie",),
         "A declared size exceeds the limits (2 GiB per member, 8 GiB in all), what DEFLATE can "
         "expand its compressed bytes to (1032:1), or the archive (compressed data running past the "
         "central directory): refused before reading or decompressing."),
    Rule("CONTAINER-NPY-HEADER", ERROR, "cheap", ("eie",),
         "A .npy member's header is malformed or disagrees with the declared dtype and shape "
         "(or is Fortran-ordered)."),
    Rule("CONTAINER-NEWER-MINOR", WARNING, "cheap", ("eie",),
         "The file has a newer minor version: it is read, but optional fields unknown to this "
         "reader are ignored and unchecked."),
    Rule("META-MISSING", ERROR, "cheap", ("eie", "net"),
         "A required manifest (or layers.json) field is missing or has the wrong type or range."),
    Rule("META-INCONSISTENT", ERROR, "cheap", ("eie", "dump", "net"),
         "Declared metadata contradict each other or the arrays (shapes, N, widths, entry/filler/"
         "non-zero counts, chained layer shapes, act.dat length)."),
    Rule("META-UNKNOWN-FIELD", WARNING, "cheap", ("eie",),
         "A manifest object has a field this version does not define (likely a typo)."),
    Rule("DUMP-FILES", ERROR, "cheap", ("dump",),
         "The dump's ptr{k}.dat files are not numbered 0..N-1, or an spm{k}.dat file is missing "
         "or has no ptr file."),
    Rule("FLOAT-NONFINITE", ERROR, "cheap", _ALL,
         "A codebook, bias or activation value is NaN or infinite."),
    # ---- codebook
    Rule("CODEBOOK-SIZE", ERROR, "cheap", _ALL,
         "The codebook does not hold exactly 2**code_bits float32 values."),
    Rule("CODEBOOK-ZERO-NOT-POSITIVE-ZERO", ERROR, "cheap", _ALL,
         "codebook[0] is not +0.0 by bit pattern (-0.0 included): it is the value of fillers "
         "and pruned weights."),
    Rule("CODEBOOK-DUPLICATE", WARNING, "full", _ALL,
         "Two codebook entries hold the same value (an entry k >= 1 equal to 0.0 included)."),
    Rule("CODEBOOK-UNUSED", WARNING, "full", _ALL,
         "A centroid (index >= 1) is used by no real entry."),
    Rule("ENTRY-DECODES-TO-ZERO", ERROR, "full", _ALL,
         "A stored entry with code v >= 1 decodes to 0.0 (codebook[v] is +0.0 or -0.0): it is not a "
         "filler, yet it adds nothing; it would be counted as a non-zero and simulated as a MAC. A "
         "zero weight is code 0 (not stored, or a filler)."),
    Rule("CODEBOOK-TOO-MANY-VALUES", ERROR, "full", _ALL,
         "The reference dense matrix has more distinct values (zero included) than "
         "2**code_bits: no codebook of that size can encode it."),
    Rule("FIXED-RANGE", WARNING, "full", ("eie",),
         "A codebook value lies outside the declared fixed-point weight format and would saturate."),
    # ---- pointers
    Rule("PTR-SHORT", ERROR, "cheap", _CSC,
         "A PE's pointer array is shorter than declared (n_cols + 1; dump: ceil(C/N)*N + 2)."),
    Rule("PTR-LONG", ERROR, "cheap", _CSC,
         "A PE's pointer array is longer than declared."),
    Rule("PTR-START-NONZERO", ERROR, "cheap", _CSC, "A PE's first pointer p[0] is not 0."),
    Rule("PTR-DECREASING", ERROR, "cheap", _CSC, "A PE's pointers decrease (p[j+1] < p[j])."),
    Rule("PTR-SLACK", ERROR, "cheap", _CSC,
         "A PE stores more entries than its last pointer addresses (p[-1] < stored entries)."),
    Rule("PTR-OVERRUN", ERROR, "cheap", _CSC,
         "A PE's last pointer is past its stored entries (p[-1] > stored entries)."),
    Rule("PTR-WIDTH", ERROR, "full", ("eie",),
         "A pointer does not fit the declared pointer width (pointer_bits)."),
    Rule("PTR-PADDING-NONEMPTY", ERROR, "full", ("dump",),
         "A padding column of the dump (columns n_in .. ceil(n_in/N)*N - 1) holds entries."),
    # ---- entries and relative indices
    Rule("CODE-RANGE", ERROR, "full", _CSC, "A code v is >= 2**code_bits."),
    Rule("RELIDX-Z-RANGE", ERROR, "full", _CSC, "A relative index z is >= 2**index_bits."),
    Rule("RELIDX-FILLER-NONCANONICAL", WARNING, "full", _ALL,
         "An entry with code 0 has z != 2**index_bits - 1 (a filler must be (0, max)): it decodes as "
         "a stored zero, but the filler count is then not floor(gap / 2**index_bits)."),
    Rule("FILLER-TRAILING", WARNING, "full", _ALL,
         "A column segment (or a .net layer stream) ends with a filler."),
    Rule("FILLER-MISSING", ERROR, "full", _ALL,
         "An entry decodes to a position past its slice (the PE's local rows, or the tensor for "
         ".net): a filler is missing or a z is too large."),
    Rule("RELIDX-GLOBAL-ROWS", ERROR, "full", _CSC,
         "z counts global rows instead of the PE's local rows: every decoded row of PE k is "
         "≡ k (mod N) and rows run past the PE's slice (or, with n_out unknown, the pattern is "
         "too regular to be chance: < 2**-40)."),
    Rule("NET-SHAPE-LIMIT", ERROR, "cheap", ("net",),
         "A layer of layers.json declares a tensor of more than 2**27 weights (MAX_NET_WEIGHTS: "
         "512 MiB as float32); shape[0] is bounded by the stream itself (one float32 bias per output, "
         "else STREAM-TRUNCATED)."),
    Rule("NIBBLE-PAD-NONZERO", WARNING, "full", ("net",),
         "Odd entry count: the padding high nibble of the last code (4-bit) or index byte is not 0."),
    # ---- representations
    Rule("PACKED-MISMATCH", ERROR, "full", ("eie",),
         "The packed hardware image disagrees with the v / z arrays."),
    Rule("HUFFMAN-KRAFT", ERROR, "full", ("eie",),
         "The Huffman code lengths have a Kraft sum > 1 (no prefix code has them)."),
    Rule("HUFFMAN-LENGTHS", ERROR, "full", ("eie",),
         "A Huffman code length exceeds 32 bits, or the table is empty while symbols are declared."),
    Rule("HUFFMAN-PAD", ERROR, "full", ("eie",),
         "The payload is not ceil(n_bits / 8) bytes (8 or more pad bits) or its pad bits are not zero."),
    Rule("HUFFMAN-DECODE", ERROR, "full", ("eie",),
         "The Huffman payload does not decode to exactly n_symbols symbols in exactly n_bits bits."),
    Rule("HUFFMAN-MISMATCH", ERROR, "full", ("eie",),
         "The decoded Huffman stream differs from the stored v / z entries."),
    # ---- equivalence with a reference
    # (eie / dump / net: `eiesim validate --reference MODEL --mask MASKS`; layer: validate_layer(reference=...))
    Rule("EQUIV-DENSE-MISMATCH", ERROR, "full", _ALL,
         "The dense matrix rebuilt from the stored form differs (bit for bit) from the reference."),
    Rule("CODE0-REAL-NONZERO", ERROR, "full", _ALL,
         "A non-zero of the reference is stored as a code-0 entry (code 0 is reserved for fillers)."),
    Rule("EQUIV-OUTSIDE-MASK", ERROR, "full", _ALL,
         "A stored non-zero lies outside the pruning mask."),
    Rule("EQUIV-REFERENCE-MISSING", ERROR, "full", ("eie", "dump", "net"),
         "A layer has no array in the reference model (`NAME.weight`, else the one other `NAME.<x>` "
         "array of 2 or more dimensions, else `NAME`) or, with a mask file, no mask (key `NAME`): "
         "its equivalence is unchecked."),
    Rule("EQUIV-REFERENCE-UNUSED", WARNING, "full", ("eie", "dump", "net"),
         "A weight array of the reference model (floating point, 2 or more dimensions) or a mask of "
         "the mask file matches no layer."),
]

#: Every rule by code.
RULES: Dict[str, Rule] = {r.code: r for r in _RULE_LIST}

#: Codes of the errors that stop validation (the input cannot be read at all; CLI exit 2).
FATAL_CODES = {
    "CONTAINER-UNREADABLE": "The container file is missing, not a ZIP archive, or has no readable JSON manifest.",
    "CONTAINER-VERSION": "Another format name, or a newer major version.",
    "CONTAINER-UNLISTED-DATA": "Bytes before a model archive's (.npz, .pth) ZIP central directory that none of the "
                               "members it lists accounts for (listed local header + data + data descriptor must "
                               "tile them): a damaged entry count or directory size would otherwise hide members, "
                               "e.g. an .npz read as no arrays.",
    "DUMP-UNREADABLE": "The dump directory or its ptr/ folder is missing or has no ptr{k}.dat file.",
    "NET-UNREADABLE": "The .net file or its layers.json is missing or unreadable.",
    "IO-ERROR": "A file cannot be read or written (missing, not a regular file, no permission, disk full).",
    "SIZE-LIMIT": "A dense matrix or a re-layout asked of a layer would exceed 2 GiB "
                  "(eiesim.format.layout.MAX_DENSE_BYTES); refused before allocating.",
    "ARGUMENT": "A library call got an argument of the wrong type, shape or range (not read from a file).",
}



# =========================================================================== sinks
class RaiseSink:
    """A sink that raises on the first error: what construction and loading run the rules through.

    Parameters
    ----------
    path : str, optional
        File the findings are about; it prefixes the message with the layer and member of the
        location (``"f.eie: layer 0 ('fc1'): member 'layers/0/ptr.npy': ..."``).
    refuse : iterable of str, default ()
        Warning codes that are refused too (``check_format(full=True)`` refuses the non-canonical
        filler warnings: the simulator counts every code-0 entry as a filler slot).
    folder : bool, default False
        ``path`` is a directory whose members are files (a dump): the message starts with the
        member's own path.

    Notes
    -----
    ``add`` takes the severity from :data:`RULES`; ``error`` and ``warn`` (the container reader's
    protocol) take it from the caller. Every raise is an :class:`EieFormatError` whose ``code`` is
    the rule's code.
    """

    def __init__(self, path: Optional[str] = None, refuse=(), *, folder: bool = False) -> None:
        self.path = path
        self.refuse = frozenset(refuse)
        self.folder = folder

    def _raise(self, code: str, message: str, loc: dict) -> None:
        if self.path is None:
            prefix = ""
        elif self.folder and loc.get("member"):  # a dump directory: name the file itself, once
            prefix = f"{os.path.join(self.path, loc['member'])}: "
            message = message.removeprefix(f"{loc['member']}: ")
        else:
            prefix = f"{self.path}: {_where(loc)}"
        raise EieFormatError(prefix + message, code=code)

    def add(self, code: str, message: str, **loc) -> None:
        if RULES[code].severity == ERROR or code in self.refuse:
            self._raise(code, message, loc)

    def error(self, code: str, message: str, **loc) -> None:
        self._raise(code, message, loc)

    def warn(self, code: str, message: str, **loc) -> None:  # warnings do not stop a load
        if code in self.refuse:
            self._raise(code, message, loc)


def _where(loc: dict) -> str:
    parts = []
    if loc.get("layer") is not None:
        name = loc.get("layer_name")
        parts.append(f"layer {loc['layer']}" + (f" ({name!r})" if name else ""))
    if loc.get("member"):
        parts.append(f"member {loc['member']!r}")
    return ": ".join(parts) + (": " if parts else "")


# =========================================================================== codebook / floats
def check_floats(sink, arr: np.ndarray, what: str, **loc) -> None:
    """``FLOAT-NONFINITE``: every value of ``arr`` (codebook, bias, act.dat) is finite. O(len(arr))."""
    arr = np.asarray(arr)
    if arr.size == 0 or arr.dtype.kind != "f":
        return
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        sink.add("FLOAT-NONFINITE", f"{what}[{i}] = {arr[i].item()!r} is not finite ({bad.size} such values)",
                 count=bad.size, entry=i if what == "act.dat" else None, **loc)


def check_codebook(sink, cb: np.ndarray, code_bits: Optional[int], level: str, *,
                   size_checked: bool = False, **loc) -> None:
    """Codebook rules: ``CODEBOOK-SIZE``, ``FLOAT-NONFINITE``, ``CODEBOOK-ZERO-NOT-POSITIVE-ZERO``
    (cheap) and ``CODEBOOK-DUPLICATE`` (full).

    Parameters
    ----------
    sink : RaiseSink or the validator's collector
    cb : numpy.ndarray, shape (k,)
        The codebook (float32 expected: entry 0 must be +0.0 by bit pattern).
    code_bits : int or None
        Declared code width (``None``: the size is not checked).
    level : {"cheap", "full"}
    size_checked : bool, default False
        The caller has reported the size already.
    **loc
        Location of the findings (``member=...``).
    """
    cb = np.asarray(cb)
    if code_bits is not None and not size_checked and cb.size != 1 << code_bits:
        sink.add("CODEBOOK-SIZE", f"codebook holds {cb.size} values, code_bits = {code_bits} needs "
                 f"{1 << code_bits}", **loc)
    check_floats(sink, cb, "codebook", **loc)
    if cb.size and cb.dtype == np.float32 and cb.view(np.uint32)[0] != 0:
        sink.add("CODEBOOK-ZERO-NOT-POSITIVE-ZERO",
                 f"codebook[0] = {cb[0].item()!r} (bits 0x{int(cb.view(np.uint32)[0]):08x}) must be +0.0 "
                 "(bit pattern 0): it is the value of fillers and pruned weights", **loc)
    if level == "full" and cb.size > 1:
        fin = np.isfinite(cb)
        vals = cb[fin]
        idx = np.flatnonzero(fin)
        order = np.argsort(vals, kind="stable")
        sv = vals[order]
        dup = np.flatnonzero(sv[1:] == sv[:-1])
        if dup.size:
            a, b = sorted((int(idx[order[dup[0]]]), int(idx[order[dup[0] + 1]])))
            sink.add("CODEBOOK-DUPLICATE",
                     f"codebook[{a}] and codebook[{b}] both hold {cb[b].item()!r} ({dup.size} duplicate(s))",
                     count=dup.size, **loc)


def _check_unused(sink, v_real: np.ndarray, code_bits: Optional[int], cb_size: int, **loc) -> None:
    """``CODEBOOK-UNUSED``: every centroid k >= 1 is used by some real entry (full).

    ``v_real``: non-negative integer codes (code-0 entries may be included; they are not counted).
    """
    if code_bits is None or cb_size != 1 << code_bits:
        return
    k = 1 << code_bits
    if v_real.size and int(v_real.max()) >= k:  # out-of-range codes (CODE-RANGE) are not counted
        v_real = v_real[v_real < k]
    if v_real.dtype == np.uint64:  # bincount casts safely to intp only
        v_real = v_real.astype(np.int64)
    used = np.bincount(v_real, minlength=k) if v_real.size else np.zeros(k, dtype=np.int64)
    unused = np.flatnonzero(used[1:k] == 0) + 1
    if unused.size:
        shown = ", ".join(str(int(u)) for u in unused[:8]) + (", ..." if unused.size > 8 else "")
        sink.add("CODEBOOK-UNUSED", f"{unused.size} of {k - 1} centroids are used by no real entry "
                 f"(indices {shown})", count=unused.size, **loc)


def zero_codes(cb) -> np.ndarray:
    """Codes >= 1 whose codebook value is 0.0 (either sign); empty when unknown."""
    if cb is None:
        return np.zeros(0, dtype=np.int64)
    cb = np.asarray(cb)
    if cb.ndim != 1 or cb.size < 2 or cb.dtype.kind != "f":
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(cb[1:] == 0) + 1


def check_zero_decoding(sink, v_real: np.ndarray, cb, **loc) -> None:
    """``ENTRY-DECODES-TO-ZERO``: no stored entry with code >= 1 decodes to 0.0 (full)."""
    zc = zero_codes(cb)
    if zc.size == 0 or v_real.size == 0:
        return
    hit = np.isin(v_real, zc)
    n = int(np.count_nonzero(hit))
    if n:
        codes = sorted({int(x) for x in np.unique(v_real[hit])})
        shown = ", ".join(f"codebook[{k}] = {np.asarray(cb)[k].item()!r}" for k in codes[:4])
        sink.add("ENTRY-DECODES-TO-ZERO", f"{n:,} stored entries with code(s) {', '.join(map(str, codes))} "
                 f"decode to 0.0 ({shown}) but are not fillers: they would count as non-zeros and be "
                 "simulated as MACs (re-quantise: a zero weight is code 0)", count=n, **loc)


# =========================================================================== the per-PE CSC layout
def n_local_rows(n_out: int, n_pe: int, k):
    """Rows owned by PE ``k`` (scalar or array): ``len(range(k, n_out, n_pe))`` (EIE §III interleaving)."""
    return np.maximum(0, (n_out - np.asarray(k) + n_pe - 1) // n_pe)


def _gather_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), vectorised."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    csum = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64) - csum, lengths) + np.arange(total, dtype=np.int64)


@dataclass
class CscLayer:
    """Raw per-PE CSC data of one layer, possibly broken (nothing is assumed).

    ``ptrs`` is either a list of per-PE int64 arrays (``None`` for a PE whose pointers could not be
    read; lengths may differ) or one int64 array of shape ``(n_pe, L)`` (every PE the same length,
    the fast path of an in-memory layer).
    """

    index: int
    name: str
    n_pe: int
    n_out: Optional[int]  # None: unknown (dump without --n-out): inferred
    n_in: int
    code_bits: int
    index_bits: int
    ptrs: Any  # list of per-PE arrays (None for a missing PE), or a 2-D int64 array
    v: np.ndarray  # all entries, PE after PE
    z: np.ndarray
    ent_counts: np.ndarray  # (n_pe,) entries stored per PE (in v/z order)
    ptr_len: int  # declared pointer-array length
    bias_col: Optional[int] = None  # column index of the bias column, if any
    pad_cols: Optional[Tuple[int, int]] = None  # dump: [n_in, padded) padding columns
    codebook: Optional[np.ndarray] = None  # for ENTRY-DECODES-TO-ZERO (None: unread or not checked)
    pad_from_act: bool = False  # dump: n_in taken from act.dat's length (non-empty padding blames act.dat)
    pointer_bits: Optional[int] = None
    extra_entries: int = 0  # container: entries after the last PE's range
    member: Optional[str] = None
    ptr_member: Optional[str] = None  # per-PE file name pattern, e.g. "ptr/ptr{k}.dat"
    spm_member: Optional[str] = None
    entries_complete: bool = True  # False: some PE's entries could not be read (usage unknown)

    def pm(self, k: int) -> Optional[str]:
        """Member (file) holding PE ``k``'s pointers, if the input has members."""
        return self.ptr_member.format(k=k) if self.ptr_member else None

    def sm(self, k: int) -> Optional[str]:
        """Member (file) holding PE ``k``'s entries, if the input has members."""
        return self.spm_member.format(k=k) if self.spm_member else None

    def col_name(self, j: int) -> str:
        """``"column j"``, marked ``(bias)`` or ``(padding)`` where it is one."""
        if self.bias_col is not None and j == self.bias_col:
            return f"column {j} (bias)"
        if self.pad_cols is not None and self.pad_cols[0] <= j < self.pad_cols[1]:
            return f"column {j} (padding)"
        return f"column {j}"


def split_entries(ptr_rows, n_entries: int):
    """Per-PE entry counts of concatenated v/z from the PEs' last pointers, and the leftover count.

    Parameters
    ----------
    ptr_rows : list of (numpy.ndarray or None), or numpy.ndarray of shape (n_pe, L)
    n_entries : int
        Length of the concatenated ``v`` / ``z``.

    Returns
    -------
    counts : numpy.ndarray of int64, shape (n_pe,)
        Entries of each PE, clipped to what ``v`` holds.
    extra : int
        Entries after the last PE's range.
    """
    if isinstance(ptr_rows, np.ndarray):
        lasts = ptr_rows[:, -1].astype(np.int64) if ptr_rows.shape[1] else np.zeros(len(ptr_rows), np.int64)
    else:
        lasts = np.array([int(p[-1]) if p is not None and p.size else 0 for p in ptr_rows], dtype=np.int64)
    lasts = np.maximum(lasts, 0)
    start = np.cumsum(lasts) - lasts
    cnt = np.clip(np.minimum(lasts, n_entries - start), 0, None)
    extra = max(0, n_entries - int(lasts.sum()))
    return cnt, extra


@dataclass
class _Sound:
    """Pointer arrays of the PEs with the declared length, and which of them are sound."""

    P: np.ndarray  # (n_good, L) int64
    gidx: np.ndarray  # PE of each row of P
    n_k: np.ndarray  # (n_pe,) entries stored per PE (extra entries counted on the last PE)
    sound: np.ndarray  # (n_good,) bool: p[0] == 0, p[-1] <= stored, non-decreasing


def _pe_count_hint(c: CscLayer, lens: np.ndarray) -> str:
    """When every pointer file of a dump has one length that another PE count would give (the count
    nearest to the files found), a hint that a PE's files are missing or extra; else "". A dump's N is
    the number of its files, so one missing pair made every intact file look too short."""
    if c.pad_cols is None or lens.size == 0 or (lens != lens[0]).any() or c.n_in is None:
        return ""
    N, Lp, n_in = c.n_pe, int(lens[0]), c.n_in
    for n in sorted(range(1, 2 * N + 2), key=lambda n: (abs(n - N), n)):
        if n != N and -(-n_in // n) * n + 2 == Lp:
            return (f"; every pointer file has the {Lp} values of N = {n} PEs for {n_in} input columns, but "
                    f"{N} PE(s) have files: a PE's ptr/spm pair missing or extra?")
    return ""


def _pointer_lengths(sink, c: CscLayer):
    """``PTR-SHORT`` / ``PTR-LONG``; returns ``(P, gidx)`` of the PEs with the declared length."""
    N, L = c.n_pe, c.ptr_len
    if isinstance(c.ptrs, np.ndarray):
        lens = np.full(N, c.ptrs.shape[1], dtype=np.int64)
    else:
        lens = np.array([-1 if p is None else p.size for p in c.ptrs], dtype=np.int64)
    present = lens >= 0
    for code, bad, word in (("PTR-SHORT", present & (lens < L), "short"), ("PTR-LONG", present & (lens > L), "long")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            hint = _pe_count_hint(c, lens[present]) if bad.sum() == present.sum() else ""
            sink.add(code, f"PE {k}'s pointer array has {int(lens[k])} values, {L} declared "
                     f"({int(bad.sum())} PE(s) too {word}){hint}", pe=k, count=int(bad.sum()), member=c.pm(k))
    if isinstance(c.ptrs, np.ndarray):
        if c.ptrs.shape[1] != L or N == 0:
            return None, None
        return c.ptrs, np.arange(N)
    gidx = np.flatnonzero(present & (lens == L))
    if gidx.size == 0:
        return None, None
    return np.stack([c.ptrs[k] for k in gidx]).astype(np.int64), gidx


def _pointer_rules(sink, c: CscLayer) -> Optional[_Sound]:
    """Cheap pointer rules: lengths, start, slack/overrun, monotonicity. O(n_pe * n_cols)."""
    P, gidx = _pointer_lengths(sink, c)
    if P is None:
        return None
    n_k = c.ent_counts.astype(np.int64)
    if c.extra_entries and c.n_pe:
        n_k = n_k.copy()
        n_k[-1] += c.extra_entries
    bad = np.flatnonzero(P[:, 0] != 0)
    if bad.size:
        k = int(gidx[bad[0]])
        sink.add("PTR-START-NONZERO", f"PE {k}: first pointer p[0] = {int(P[bad[0], 0])}, must be 0",
                 pe=k, column=0, count=bad.size, member=c.pm(k))
    last = P[:, -1]
    nk = n_k[gidx]
    for code, badm, text in (
        ("PTR-SLACK", last < nk, "stores {n} entries but its last pointer is {p}: {d} entries after it belong "
                                 "to no column"),
        ("PTR-OVERRUN", last > nk, "has last pointer {p} but stores only {n} entries ({d} missing)"),
    ):
        bad = np.flatnonzero(badm)
        if bad.size:
            i = int(bad[0])
            k = int(gidx[i])
            sink.add(code, f"PE {k} " + text.format(n=int(nk[i]), p=int(last[i]), d=abs(int(nk[i] - last[i]))),
                     pe=k, count=bad.size, member=c.sm(k) if code == "PTR-SLACK" else c.pm(k))
    sound = (P[:, 0] == 0) & (last <= nk)
    # monotonicity: cheap (O(size of ptr), a bool temporary) and every later method relies on it
    decm = P[:, 1:] < P[:, :-1]
    if decm.any():
        rows = np.flatnonzero(decm.any(axis=1))
        r = int(rows[0])
        j = int(np.flatnonzero(decm[r])[0])
        k = int(gidx[r])
        sink.add("PTR-DECREASING", f"PE {k}: pointer decreases at {c.col_name(j)} "
                 f"(p[{j}] = {int(P[r, j])} -> p[{j + 1}] = {int(P[r, j + 1])})",
                 pe=k, column=j, count=int(decm.sum()), member=c.pm(k))
        sound &= ~decm.any(axis=1)
    return _Sound(P, gidx, n_k, sound)


def _width_padding_rules(sink, c: CscLayer, s: _Sound) -> None:
    """Full pointer rules: ``PTR-WIDTH`` (declared width) and ``PTR-PADDING-NONEMPTY`` (dump)."""
    P, gidx = s.P, s.gidx
    if c.pointer_bits is not None and P.size:
        lim = 1 << c.pointer_bits
        wide = P >= lim
        if wide.any():
            r, j = (int(x) for x in np.argwhere(wide)[0])
            k = int(gidx[r])
            sink.add("PTR-WIDTH", f"PE {k}: pointer p[{j}] = {int(P[r, j])} does not fit pointer_bits = "
                     f"{c.pointer_bits} (max {lim - 1})", pe=k, column=j, count=int(wide.sum()), member=c.pm(k))
    if c.pad_cols is not None and c.pad_cols[1] > c.pad_cols[0]:
        a, b = c.pad_cols
        padn = P[:, b] - P[:, a]
        bad = np.flatnonzero(padn != 0)
        if bad.size:
            r = int(bad[0])
            k = int(gidx[r])
            D = np.diff(P[r, a:b + 1])
            j = a + int(np.flatnonzero(D != 0)[0]) if np.any(D != 0) else a
            if c.pad_from_act and bad.size == c.n_pe:
                # n_in is act.dat's length and every PE stores entries past it: act.dat is the odd file
                sink.add("META-INCONSISTENT", f"act.dat holds {a} activations, but all {c.n_pe} PEs' pointer files "
                         f"store entries past it (PE {k}: {int(padn[r])} entries in columns {a}..{b - 1}, first "
                         f"in column {j}); act.dat is too short for the layer's input columns", column=j,
                         count=bad.size, member="act.dat")
            else:
                sink.add("PTR-PADDING-NONEMPTY", f"PE {k}: padding columns {a}..{b - 1} hold {int(padn[r])} "
                         f"entries (first in column {j}); they must be empty"
                         + (f" (or act.dat, {a} activations, is too short)" if c.pad_from_act else ""),
                         pe=k, column=j, count=bad.size, member=c.pm(k))


class _Entries:
    """The entries of the sound PEs, with the way back from an entry to its (PE, column, entry)."""

    def __init__(self, c: CscLayer, s: _Sound) -> None:
        self.c = c
        if s.sound.all():
            self.spe, self.Ps = s.gidx, s.P
        else:
            self.spe, self.Ps = s.gidx[s.sound], s.P[s.sound]
        n_k = s.n_k
        self.take = self.Ps[:, -1]
        starts = (np.cumsum(n_k) - n_k)[self.spe]
        n_total = c.v.size
        if self.spe.size == c.n_pe and np.array_equal(self.take, n_k) and int(self.take.sum()) == n_total:
            self.v, self.z = c.v, c.z
        else:
            idx = _gather_ranges(starts, self.take)
            idx = idx[idx < n_total]  # pointers were checked against the counts: nothing is cut
            self.v, self.z = c.v[idx], c.z[idx]
        self.off = np.zeros(self.spe.size + 1, dtype=np.int64)
        np.cumsum(self.take, out=self.off[1:])

    def where(self, i: int):
        """``(PE, column, entry within the PE)`` of entry ``i`` (an index into ``self.v``)."""
        r = int(np.searchsorted(self.off, i, side="right") - 1)
        local = i - int(self.off[r])
        j = int(np.searchsorted(self.Ps[r], local, side="right") - 1)
        return int(self.spe[r]), j, local

    def add_at(self, sink, code: str, i: int, text: str, count: int) -> None:
        """Report ``code`` located at entry ``i``."""
        k, j, e = self.where(i)
        sink.add(code, f"PE {k}, {self.c.col_name(j)}, entry {e}: {text}", pe=k, column=j, entry=e,
                 count=count, member=self.c.sm(k))


def _entry_rules(sink, c: CscLayer, ent: _Entries) -> np.ndarray:
    """``CODE-RANGE``, ``RELIDX-Z-RANGE``, ``RELIDX-FILLER-NONCANONICAL``, ``FILLER-TRAILING`` (full).

    Returns the per-segment entry counts (the decoding needs them).
    """
    v, z = ent.v, ent.z
    zmax = (1 << c.index_bits) - 1
    vmax = (1 << c.code_bits) - 1
    if v.size:
        badv = v > vmax
        if badv.any():
            i = int(np.argmax(badv))
            ent.add_at(sink, "CODE-RANGE", i, f"code v = {int(v[i])} > {vmax} (code_bits = {c.code_bits})",
                       int(badv.sum()))
        badz = z > zmax
        if badz.any():
            i = int(np.argmax(badz))
            ent.add_at(sink, "RELIDX-Z-RANGE", i, f"relative index z = {int(z[i])} > {zmax} "
                       f"(index_bits = {c.index_bits})", int(badz.sum()))
    fill = v == 0
    nonc = fill & (z != zmax)
    if nonc.any():
        i = int(np.argmax(nonc))
        ent.add_at(sink, "RELIDX-FILLER-NONCANONICAL", i, f"code 0 with z = {int(z[i])}; a filler must be "
                   f"(0, {zmax})", int(nonc.sum()))
    Ps = ent.Ps
    counts = np.diff(Ps, axis=1).ravel()
    ends = (np.repeat(ent.off[:-1], Ps.shape[1] - 1) + Ps[:, 1:].ravel() - 1)[counts > 0]
    trail = ends[fill[ends]] if ends.size else ends
    if trail.size:
        ent.add_at(sink, "FILLER-TRAILING", int(trail[0]), "the column segment ends with a filler", int(trail.size))
    return counts


def _looks_global(N: int, R: np.ndarray, pos: np.ndarray, pe_of: np.ndarray, real: np.ndarray,
                  past: np.ndarray) -> bool:
    """The ``RELIDX-GLOBAL-ROWS`` test (docs/FORMAT.md §6): every real row of PE k is ≡ k (mod N), and
    rows run past the PE's slice or the congruence has probability < 2**-40 by chance."""
    if N <= 1 or not real.any():
        return False
    head = np.flatnonzero(real[:4096])  # most layouts fail the congruence within their first entries
    if head.size and not np.all(pos[head] % N == pe_of[head]):
        return False
    pr, kr = pos[real], pe_of[real]
    if not np.all(pr % N == kr):
        return False
    if past.any():
        return True
    Rk = R[kr]
    cnt = np.where(kr < Rk, (Rk - 1 - kr) // N + 1, 0)
    bits = float(np.sum(np.log2(Rk[cnt > 0] / cnt[cnt > 0])))
    return bits >= 40.0


def _position_rules(sink, c: CscLayer, ent: _Entries, counts: np.ndarray, facts: Dict[str, Any]) -> None:
    """``FILLER-MISSING`` / ``RELIDX-GLOBAL-ROWS``: decoded rows inside their PE's slice (full)."""
    v, z, N = ent.v, ent.z, c.n_pe
    if not v.size:
        return
    pos = _segment_positions(z, counts)
    pe_of = np.repeat(ent.spe, ent.take)
    real = v != 0
    n_out = c.n_out
    if n_out is None:  # infer (dump): the largest decoded global row of a real entry
        n_out = int((pos[real] * N + pe_of[real]).max()) + 1 if real.any() else None
        facts["n_out_inferred"] = n_out
    if n_out is None:
        return
    R = n_local_rows(n_out, N, np.arange(N))
    past = real & (pos >= R[pe_of])
    if _looks_global(N, R, pos, pe_of, real, past):
        i = int(np.argmax(past)) if past.any() else int(np.argmax(real))
        k, j, e = ent.where(i)
        extra = (f"; {int(past.sum())} entries run past their PE's rows (first: PE {k}, "
                 f"{c.col_name(j)}, entry {e}, decoded row {int(pos[i])} >= {int(R[k])})"
                 if past.any() else f" (n_out {'inferred as ' if c.n_out is None else ''}{n_out})")
        sink.add("RELIDX-GLOBAL-ROWS",
                 f"z counts global rows, not the PE's local rows: every decoded row of PE k is ≡ k "
                 f"(mod N = {N}){extra}; the gaps should be counted among the PE's own rows "
                 f"(global row = local row * N + k)",
                 pe=k, column=j, entry=e, count=int(past.sum()) or int(real.sum()), member=c.sm(k))
    elif past.any():
        i = int(np.argmax(past))
        k = ent.where(i)[0]
        ent.add_at(sink, "FILLER-MISSING", i, f"decodes to local row {int(pos[i])} (global row "
                   f"{int(pos[i]) * N + k}), but PE {k} owns only {int(R[k])} rows of n_out = {n_out}: "
                   "a filler is missing or a z is too large", int(past.sum()))


def check_csc(sink, c: CscLayer, level: str) -> Dict[str, Any]:
    """Every pointer and entry rule of one per-PE CSC layer (docs/FORMAT.md §6.1).

    Cheap tier: ``PTR-SHORT``, ``PTR-LONG``, ``PTR-START-NONZERO``, ``PTR-SLACK``, ``PTR-OVERRUN``,
    ``PTR-DECREASING`` -- O(n_pe * n_cols). Full tier adds ``CODEBOOK-UNUSED``, ``PTR-WIDTH``,
    ``PTR-PADDING-NONEMPTY`` and, on the PEs whose pointers are sound, ``CODE-RANGE``,
    ``RELIDX-Z-RANGE``, ``RELIDX-FILLER-NONCANONICAL``, ``FILLER-TRAILING``, ``FILLER-MISSING`` /
    ``RELIDX-GLOBAL-ROWS`` -- O(entries), vectorised.

    Parameters
    ----------
    sink : RaiseSink or the validator's collector
        Receives ``add(code, message, pe=, column=, entry=, member=, count=)``.
    c : CscLayer
    level : {"cheap", "full"}

    Returns
    -------
    dict
        Facts for the layer summary: ``empty_pes`` and, when ``c.n_out`` is None, ``n_out_inferred``.
    """
    facts: Dict[str, Any] = {"empty_pes": int(np.count_nonzero(c.ent_counts == 0))}
    if level == "full" and c.entries_complete:
        # usage is a property of every stored code, whatever the pointers say
        _check_unused(sink, c.v, c.code_bits, 1 << c.code_bits)  # code 0 (fillers) is not counted
        if c.codebook is not None:
            check_zero_decoding(sink, c.v[c.v != 0], c.codebook)
    s = _pointer_rules(sink, c)
    if s is None or level == "cheap":
        return facts
    _width_padding_rules(sink, c, s)
    if not s.sound.any():
        return facts
    ent = _Entries(c, s)
    counts = _entry_rules(sink, c, ent)
    _position_rules(sink, c, ent, counts, facts)
    return facts


def check_csc_arrays(sink, shape: Tuple[int, int], n_pe: int, cb: np.ndarray, ptr, v: np.ndarray,
                     z: np.ndarray, *, has_bias: bool, code_bits: int, index_bits: int,
                     pointer_bits: Optional[int] = None, name: str = "", level: str = "full",
                     zero_rule: bool = True):
    """The codebook and CSC rules of one in-memory layer given as arrays.

    Parameters
    ----------
    sink : RaiseSink or the validator's collector
    shape : (int, int)
        ``(n_out, n_in)``, bias column excluded.
    n_pe : int
    cb : numpy.ndarray of float32, shape (2**code_bits,)
    ptr : numpy.ndarray of int64, shape (n_pe, n_cols + 1), or list of 1-D int64 arrays
    v, z : numpy.ndarray of int, shape (n_entries,)
    has_bias : bool
    code_bits, index_bits : int
    pointer_bits : int, optional
    name : str
    level : {"cheap", "full"}
    zero_rule : bool, default True
        Check ``ENTRY-DECODES-TO-ZERO`` (the validator does; loading does not: the simulator
        simulates such an entry as the MAC it is stored as).

    Returns
    -------
    c : CscLayer or None
        None when ``v`` and ``z`` differ in length (``META-INCONSISTENT``; nothing else is checked).
    facts : dict
        As :func:`check_csc`.
    """
    n_out, n_in = shape
    N = n_pe
    rows = ptr
    if len(ptr) != N:
        sink.add("META-INCONSISTENT", f"{len(ptr)} pointer arrays for n_pe = {N}")
        rows = (list(ptr) + [None] * N)[:N]
    check_codebook(sink, cb, code_bits, level)
    if v.size != z.size:
        sink.add("META-INCONSISTENT", f"v and z hold {v.size} and {z.size} entries")
        return None, {}
    cnt, extra = split_entries(rows, v.size)
    c = CscLayer(index=0, name=name, n_pe=N, n_out=n_out, n_in=n_in, code_bits=code_bits,
                 index_bits=index_bits, ptrs=rows, v=v, z=z, ent_counts=cnt, ptr_len=n_in + int(has_bias) + 1,
                 bias_col=n_in if has_bias else None, pointer_bits=pointer_bits, extra_entries=extra,
                 codebook=cb if zero_rule else None)
    return c, check_csc(sink, c, level)
