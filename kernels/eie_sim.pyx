# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cycle-level EIE kernel: the compiled twin of ``eiesim/sim/reference.py``.

Two entry points, both called by ``eiesim.sim.engine`` with keywords:

``build_tables(ptr=, v=, z=, n_out=, code_bits=, index_bits=)``
    The per-layer pass, run once per layer object: it checks every full format
    rule of ``CompressedLayer.check_format(full=True)`` in one sweep (O(nnz),
    no temporaries beyond its outputs) and builds a :class:`LayerTables`.
``run_batch(tables, ...)``
    Simulates a batch of independent input vectors on one layer (one input is
    a batch of one), without the GIL.

Timing and arithmetic are separate passes. Between broadcasts nothing couples
the PEs, so the **timing pass** advances broadcast by broadcast and computes
each PE's schedule in closed form from the per-(column, PE) pointer table
alone, in a branch-light integer loop over the PEs. For broadcast i (cycle
b_i) and PE k, with f the last busy cycle of the PE's previous column (-1 if
none):

* the PE takes the activation off its queue at the end of cycle
  p = max(b_i + 1, f)  (visible one cycle after the write; a PE takes one
  when it is idle or finishing a column);
* it works on the column from cycle p + 1 for max(1, entries) cycles, so
  f = p + max(1, entries);
* it was "back to back" when p == f: its first MAC of this column follows its
  previous column's last MAC in the next cycle (a bypass when the rows match;
  the arithmetic pass, which decodes the rows, counts it).

The CCU may broadcast activation i at cycle t only if no queue is full at the
start of t, i.e. every PE has taken activation i - D (D = fifo_depth) by the
end of cycle t - 1: b_i = max(ready_i, max_k p_k(i - D) + 1). Group loads
never wait. PE k's queue was full during the stall cycles t <= p_k(i - D).

The **arithmetic pass** walks the broadcast columns in the same order over a
column-major copy of the entries (all PEs' slices of column j are adjacent,
PE 0 first), so each column is one contiguous run instead of N separate
streams. Each output row belongs to one PE and receives its products in
column order in both passes' orders and in the reference, so float32 sums are
bit-identical. One multiply-add loop serves float32 and fixed16 through the
fused accumulator type ``acc_t``.

Integer state is int64 throughout: cycle counts may pass 2**31.

Complexity per input: O(B * N) timing (B broadcasts, N PEs) + O(entries of
the broadcast columns) arithmetic + O(n_groups * N) LNZD scan.

Cycle traces: with ``run_batch(trace_input=K, ...)`` the timing pass records,
for input K, each broadcast's (b, ready, j), every PE's take cycle p of it and
the group-load cycles (the ``Trace`` struct); ``eiesim.sim.trace`` derives every
traced signal from these and the layer's pointers. When tracing is off the
pass tests one NULL pointer per broadcast and per group (a predicted-not-taken
branch); nothing else changes.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cnp.import_array()

ctypedef fused packed_t:
    uint8_t
    uint16_t

ctypedef fused acc_t:
    float
    int64_t

# Counter slots (same order as eiesim.sim.result.COUNTER_NAMES)
cdef enum:
    C_BROADCASTS = 0
    C_CCU_STALL = 1
    C_GROUP_LOADS = 2
    C_PTR_READS = 3
    C_LINE_READS = 4
    C_ENTRIES = 5
    C_FILLERS = 6
    C_MACS = 7
    C_ACC_WRITES = 8
    C_BYPASSES = 9
    C_SATURATIONS = 10
    N_COUNTERS = 11

# build_tables: the first broken rule (the caller re-runs the named checker for the message)
cdef enum:
    BAD_NONE = 0
    BAD_PTR_DECREASING = 1
    BAD_CODE_RANGE = 2
    BAD_RELIDX_RANGE = 3
    BAD_FILLER_NONCANONICAL = 4
    BAD_FILLER_TRAILING = 5
    BAD_ROW_RANGE = 6
    BAD_SHAPE = 7
    BAD_TOO_MANY_ENTRIES = 8

#: Python names of the BAD_* codes build_tables returns
BAD_RULES = {BAD_PTR_DECREASING: "PTR-DECREASING", BAD_CODE_RANGE: "CODE-RANGE",
             BAD_RELIDX_RANGE: "RELIDX-Z-RANGE", BAD_FILLER_NONCANONICAL: "RELIDX-FILLER-NONCANONICAL",
             BAD_FILLER_TRAILING: "FILLER-TRAILING", BAD_ROW_RANGE: "FILLER-MISSING",
             BAD_SHAPE: "META-INCONSISTENT", BAD_TOO_MANY_ENTRIES: "PTR-WIDTH"}


cdef struct FixedMode:
    # fixed16 narrowing of a product and overflow rule of the accumulator word
    int shift          # weight_frac_bits: product >> shift
    bint nearest       # round half away from zero (else floor)
    bint saturate      # clamp to [lo, hi] (else wrap modulo 2**total_bits)
    int total_bits
    int64_t lo
    int64_t hi


cdef inline int64_t _narrow(int64_t p, int shift, bint nearest) noexcept nogil:
    cdef int64_t half
    if shift <= 0:
        return p
    if nearest:
        half = (<int64_t>1) << (shift - 1)
        if p >= 0:
            return (p + half) >> shift
        return -((-p + half) >> shift)
    # floor, portable for negative values
    if p >= 0:
        return p >> shift
    return -((-p + ((<int64_t>1) << shift) - 1) >> shift)


cdef inline int64_t _fit(int64_t x, int64_t lo, int64_t hi, bint saturate, int total_bits) noexcept nogil:
    cdef int64_t span, m
    if saturate:
        if x < lo:
            return lo
        if x > hi:
            return hi
        return x
    span = (<int64_t>1) << total_bits
    m = (x - lo) % span
    if m < 0:
        m += span
    return m + lo


cdef inline acc_t _mac(acc_t acc, acc_t w, acc_t a, const FixedMode* fm, int64_t* sat) noexcept nogil:
    """One multiply-add: float32 (two roundings, no FMA) or fixed16 (narrow, add, fit the word;
    a sum that leaves the word counts in ``sat``: saturated, or wrapped)."""
    cdef int64_t s
    if acc_t is float:
        return acc + <float>(w * a)
    else:
        s = acc + _narrow(w * a, fm.shift, fm.nearest)
        sat[0] += (s < fm.lo) | (s > fm.hi)
        return _fit(s, fm.lo, fm.hi, fm.saturate, fm.total_bits)


def narrow(int64_t p, int shift, bint nearest):
    """Python view of the kernel's product narrowing (for the kernel-level tests)."""
    return _narrow(p, shift, nearest)


def fit(int64_t x, int64_t lo, int64_t hi, bint saturate, int total_bits):
    """Python view of the kernel's accumulator fit (for the kernel-level tests)."""
    return _fit(x, lo, hi, saturate, total_bits)


cdef class LayerTables:
    """A layer's static arrays as the kernel reads them (built by :func:`build_tables`).

    Attributes
    ----------
    n_pe, n_out, n_cols, code_bits : int
    ptr_t : ndarray of int32, shape (n_cols + 1, n_pe)
        Per-PE local column pointers, column-major: the N pointer pairs of a
        broadcast are adjacent. ``ptr_t[j + 1, k] - ptr_t[j, k]`` entries
        (fillers included) of column j belong to PE k.
    first_row : ndarray of int32, shape (n_cols, n_pe)
        Local row of the first entry of PE k's slice of column j when that
        entry is a MAC; -1 when it is a filler or the slice is empty.
    last_row : ndarray of int32, shape (n_cols, n_pe)
        Local row of the slice's last entry (never a filler); -2 for an empty slice.
    col_fillers : ndarray of int64, shape (n_cols,)
        Filler entries of column j, all PEs.
    mac_start : ndarray of int64, shape (n_cols + 1,)
        Start of column j's run in ``macs``.
    macs : ndarray of uint32 (uint64 when n_out << code_bits >= 2**32), shape (n_macs,)
        The non-filler entries, column-major: ``(global row << code_bits) | code``.
    """
    cdef readonly int n_pe, code_bits
    cdef readonly Py_ssize_t n_out, n_cols
    cdef readonly object ptr_t, first_row, last_row, col_fillers, mac_start, macs

    @classmethod
    def from_arrays(cls, *, ptr_t, first_row, last_row, col_fillers, mac_start, macs, Py_ssize_t n_out,
                    int code_bits):
        """Tables from hand-made arrays (kernel-level tests and tools); every index is checked.

        The arrays are as in the class docstring; ``macs`` may hold fewer MACs than the
        pointers count entries (timing uses the pointers, arithmetic the MACs), which lets
        a test build the timing of a huge layer without its entries.

        Raises
        ------
        ValueError
            A shape, dtype or index that would let the kernel read or write out of bounds.
        """
        pt = np.ascontiguousarray(ptr_t, dtype=np.int32)
        fr = np.ascontiguousarray(first_row, dtype=np.int32)
        lr = np.ascontiguousarray(last_row, dtype=np.int32)
        cf = np.ascontiguousarray(col_fillers, dtype=np.int64)
        ms = np.ascontiguousarray(mac_start, dtype=np.int64)
        mc = np.ascontiguousarray(macs)
        if pt.ndim != 2 or pt.shape[0] < 2 or pt.shape[1] < 1:
            raise ValueError("ptr_t must be (n_cols + 1, n_pe)")
        n_cols, n_pe = pt.shape[0] - 1, pt.shape[1]
        if fr.shape != (n_cols, n_pe) or lr.shape != (n_cols, n_pe) or cf.shape != (n_cols,) \
                or ms.shape != (n_cols + 1,) or mc.ndim != 1 or mc.dtype not in (np.uint32, np.uint64):
            raise ValueError("table shapes or dtypes do not match ptr_t")
        if np.any(pt[0] != 0) or np.any(np.diff(pt.astype(np.int64), axis=0) < 0):
            raise ValueError("ptr_t must start at 0 and not decrease")
        if ms[0] != 0 or np.any(np.diff(ms) < 0) or ms[-1] != mc.shape[0]:
            raise ValueError("mac_start must run from 0 to len(macs) without decreasing")
        if not (1 <= code_bits <= 8) or n_out < 1:
            raise ValueError("code_bits or n_out out of range")
        if mc.size and int((mc >> code_bits).max()) >= n_out:
            raise ValueError("a MAC's row is outside the layer")
        cdef LayerTables t = LayerTables.__new__(LayerTables)
        t.n_pe, t.n_out, t.n_cols, t.code_bits = n_pe, n_out, n_cols, code_bits
        for arr in (pt, fr, lr, cf, ms, mc):
            arr.setflags(write=False)
        t.ptr_t, t.first_row, t.last_row, t.col_fillers, t.mac_start, t.macs = pt, fr, lr, cf, ms, mc
        return t

    @property
    def nbytes(self):
        """Bytes held by the tables."""
        return sum(a.nbytes for a in (self.ptr_t, self.first_row, self.last_row, self.col_fillers,
                                      self.mac_start, self.macs))


ctypedef fused mac_t:
    uint32_t
    uint64_t


cdef int _fill_entries(const int32_t[:, ::1] ptr_t, const int64_t* pe_off, const int64_t* n_rows,
                       const uint8_t* v, const uint8_t* z, mac_t* macs, mac_t* scratch, int64_t* mac_start,
                       const int64_t* col_entries, int64_t* cursor, int32_t[:, ::1] first_row,
                       int32_t[:, ::1] last_row,
                       int code_bits, Py_ssize_t block, int64_t* bad_at) noexcept nogil:
    """Decode every segment; fill the per-(column, PE) rows and write the MACs column-major.

    Codes, relative indices and fillers were checked by the vectorised sweep before;
    this pass checks only what needs the decoded rows: no segment ends with a filler,
    and the segment's last (largest) local row lies inside the PE's rows.

    Blocks of ``block`` columns: each PE's entries of the block are one contiguous read,
    decoded branch-free into ``scratch`` (column-major, each column given room for all
    its entries, fillers included: a filler's slot is overwritten by the next MAC), then
    each column's MACs are copied to their place in ``macs`` (one contiguous write).
    ``col_entries`` (n_cols,) counts each column's entries; ``cursor`` (block,) is work space.
    """
    cdef Py_ssize_t n_pe = ptr_t.shape[1], n_cols = ptr_t.shape[0] - 1
    cdef Py_ssize_t k, j, j0, j1
    cdef int64_t e, e0, e1, lr, n_local, pos, base, out = 0, room
    cdef uint8_t vv, zz
    cdef mac_t rc, step = (<mac_t>n_pe) << code_bits
    j0 = 0
    while j0 < n_cols:
        j1 = j0 + block if j0 + block < n_cols else n_cols
        room = 0
        for j in range(j0, j1):
            cursor[j - j0] = room
            room += col_entries[j]
        for k in range(n_pe):
            n_local = n_rows[k]
            base = pe_off[k]
            for j in range(j0, j1):
                e0 = base + ptr_t[j, k]
                e1 = base + ptr_t[j + 1, k]
                if e1 == e0:
                    first_row[j, k] = -1
                    last_row[j, k] = -2
                    continue
                if v[e1 - 1] == 0:
                    bad_at[0] = e1 - 1
                    return BAD_FILLER_TRAILING
                pos = cursor[j - j0]
                lr = -1
                rc = (<mac_t>k) << code_bits  # (global row << code_bits) of local row -1, + n_pe rows
                rc -= step
                for e in range(e0, e1):
                    vv = v[e]
                    zz = z[e]
                    lr += zz + 1
                    rc += (zz + 1) * step
                    scratch[pos] = rc | vv
                    pos += vv != 0
                if lr >= n_local:  # rows grow along a segment: its last row is its largest
                    bad_at[0] = e1 - 1
                    return BAD_ROW_RANGE
                first_row[j, k] = <int32_t>(z[e0]) if v[e0] != 0 else -1
                last_row[j, k] = <int32_t>lr
                cursor[j - j0] = pos
        # the block's columns, compacted: column j's MACs are scratch[start_j : cursor[j]]
        room = 0
        for j in range(j0, j1):
            mac_start[j] = out
            e = cursor[j - j0] - room
            if e > 0:
                memcpy(macs + out, scratch + room, <size_t>e * sizeof(mac_t))
            out += e
            room += col_entries[j]
        j0 = j1
    mac_start[n_cols] = out
    return BAD_NONE


cdef void _sweep(const uint8_t* v, const uint8_t* z, int64_t n, uint8_t zmax, uint8_t* or_v, uint8_t* or_z,
                 int64_t* n_fill, int64_t* n_bad) noexcept nogil:
    """OR of all codes and of all indices, count of fillers (code 0) and of fillers whose
    index is not ``zmax``; in chunks with 32-bit counters, so the compiler vectorises it."""
    cdef int64_t c0, c1, i
    cdef uint8_t ov = 0, oz = 0
    cdef uint32_t cf, cb
    cdef int64_t nf = 0, nb = 0
    c0 = 0
    while c0 < n:
        c1 = c0 + 65536 if c0 + 65536 < n else n
        cf = 0
        cb = 0
        for i in range(c0, c1):
            ov |= v[i]
            oz |= z[i]
            cf += v[i] == 0
            cb += (v[i] == 0) & (z[i] != zmax)
        nf += cf
        nb += cb
        c0 = c1
    or_v[0] = ov
    or_z[0] = oz
    n_fill[0] = nf
    n_bad[0] = nb


def build_tables(*, const int64_t[:, ::1] ptr, const uint8_t[::1] v, const uint8_t[::1] z,
                 Py_ssize_t n_out, int code_bits, int index_bits):
    """The per-layer pass: check every full format rule and build the kernel's tables.

    Parameters
    ----------
    ptr : ndarray of int64, shape (n_pe, n_cols + 1)
        Per-PE local column pointers (``CompressedLayer.ptr``), ``ptr[:, 0] == 0``.
    v, z : ndarray of uint8, shape (n_entries,)
        Codebook indices and relative row indices, PE 0 first.
    n_out : int
        Output rows; PE k owns rows k, k + N, ...
    code_bits, index_bits : int
        Widths of v and z, in [1, 8].

    Returns
    -------
    (LayerTables or None, int, int)
        The tables, ``BAD_NONE`` and -1; or ``None``, the ``BAD_*`` code of the
        first broken rule and the entry (or PE) it was found at. The rules are
        those of ``CompressedLayer.check_format(full=True)``, in its order:
        pointers non-decreasing, ``v < 2**code_bits``, ``z < 2**index_bits``,
        fillers ``(0, 2**index_bits - 1)``, no filler at a segment's end, decoded
        rows inside the PE's rows; plus a PE's entry count below 2**31 (the int32
        pointer table).

    Notes
    -----
    Three sequential passes: the pointers (blocked transpose, checks, entries
    per column); one branch-free sweep over ``v`` and ``z`` (vectorised by the
    compiler) for the code and index ranges, canonical fillers and the MAC
    count; then one branch-free decode of each segment in blocks of columns
    (:func:`_fill_entries`). Allocates only the tables (12 n_pe (n_cols + 1)
    + 16 (n_cols + 1) bytes and 4 or 8 bytes per MAC), an int64 count per
    column and one block's scratch.
    """
    cdef Py_ssize_t n_pe = ptr.shape[0]
    cdef Py_ssize_t n_cols = ptr.shape[1] - 1
    cdef Py_ssize_t n_entries = v.shape[0]
    cdef Py_ssize_t k, j, j0, j1
    cdef Py_ssize_t block = 64
    cdef int64_t total = 0, n_macs = 0, max_block = 0, in_block
    cdef int64_t bad_at = -1
    cdef int bad = BAD_NONE
    cdef int vmax, zmax
    if n_pe < 1 or n_cols < 0 or z.shape[0] != n_entries or n_out < 1 \
            or not (1 <= code_bits <= 8) or not (1 <= index_bits <= 8):
        return None, BAD_SHAPE, -1
    vmax = (1 << code_bits) - 1
    zmax = (1 << index_bits) - 1
    for k in range(n_pe):
        if ptr[k, 0] != 0:
            return None, BAD_SHAPE, k
        if ptr[k, n_cols] >= (<int64_t>1) << 31:
            return None, BAD_TOO_MANY_ENTRIES, k
        total += ptr[k, n_cols]
    if total != n_entries:
        return None, BAD_SHAPE, -1
    ptr_t_arr = np.empty((n_cols + 1, n_pe), dtype=np.int32)
    first_arr = np.empty((n_cols, n_pe), dtype=np.int32)
    last_arr = np.empty((n_cols, n_pe), dtype=np.int32)
    fill_arr = np.zeros(n_cols, dtype=np.int64)
    mac_start_arr = np.zeros(n_cols + 1, dtype=np.int64)
    pe_off_arr = np.zeros(n_pe + 1, dtype=np.int64)
    n_rows_arr = np.zeros(n_pe, dtype=np.int64)
    cdef int32_t[:, ::1] ptr_t = ptr_t_arr
    cdef int64_t[::1] pe_off = pe_off_arr
    cdef int64_t[::1] n_rows = n_rows_arr
    cdef int64_t[::1] mac_start = mac_start_arr
    cdef int64_t[::1] fill_v = fill_arr
    cdef int64_t[::1] col_entries = np.zeros(n_cols + 1, dtype=np.int64)
    cdef int64_t[::1] cursor = np.zeros(block, dtype=np.int64)
    cdef const uint8_t* vp = &v[0] if n_entries > 0 else NULL
    cdef const uint8_t* zp = &z[0] if n_entries > 0 else NULL
    cdef int64_t e, prev, n_fill = 0, n_bad = 0
    cdef uint8_t or_v = 0, or_z = 0
    with nogil:
        for k in range(n_pe):
            pe_off[k + 1] = pe_off[k] + ptr[k, n_cols]
            n_rows[k] = (n_out - k + n_pe - 1) // n_pe
        # pointers: non-decreasing, transposed to column-major, entries per column; in
        # blocks of columns, so the strided writes stay in cache
        j0 = 0
        while j0 < n_cols + 1 and bad == BAD_NONE:
            j1 = j0 + 512 if j0 + 512 < n_cols + 1 else n_cols + 1
            for k in range(n_pe):
                prev = ptr[k, j0 - 1] if j0 > 0 else 0
                for j in range(j0, j1):
                    e = ptr[k, j]
                    if e < prev:
                        bad = BAD_PTR_DECREASING
                        bad_at = k
                        break
                    ptr_t[j, k] = <int32_t>e
                    if j > 0:
                        col_entries[j - 1] += e - prev
                    prev = e
                if bad != BAD_NONE:
                    break
            j0 = j1
        if bad == BAD_NONE:
            j0 = 0
            while j0 < n_cols:  # entries of the largest block of columns (the decode's scratch)
                j1 = j0 + block if j0 + block < n_cols else n_cols
                in_block = 0
                for j in range(j0, j1):
                    in_block += col_entries[j]
                if in_block > max_block:
                    max_block = in_block
                j0 = j1
            # one branch-free sweep: code and index ranges (an OR of all values has a bit
            # above the width iff some value does), non-canonical fillers, filler count
            _sweep(vp, zp, n_entries, <uint8_t>zmax, &or_v, &or_z, &n_fill, &n_bad)
            if or_v > vmax or or_z > zmax or n_bad:  # find the first broken entry, rule by rule
                bad = BAD_CODE_RANGE if or_v > vmax else BAD_RELIDX_RANGE if or_z > zmax \
                    else BAD_FILLER_NONCANONICAL
                for e in range(n_entries):
                    if (bad == BAD_CODE_RANGE and vp[e] > vmax) or (bad == BAD_RELIDX_RANGE and zp[e] > zmax) \
                            or (bad == BAD_FILLER_NONCANONICAL and vp[e] == 0 and zp[e] != zmax):
                        bad_at = e
                        break
            n_macs = n_entries - n_fill
    if bad != BAD_NONE:
        return None, bad, bad_at
    cdef int32_t[:, ::1] fr_v = first_arr
    cdef int32_t[:, ::1] lr_v = last_arr
    cdef uint32_t[::1] m32, s32
    cdef uint64_t[::1] m64, s64
    if (<uint64_t>n_out) << code_bits < (<uint64_t>1) << 32:
        macs_arr = np.empty(n_macs, dtype=np.uint32)
        m32 = macs_arr
        s32 = np.empty(max_block + 1, dtype=np.uint32)
        with nogil:
            bad = _fill_entries[uint32_t](ptr_t, &pe_off[0], &n_rows[0], vp, zp,
                                          &m32[0] if n_macs > 0 else NULL, &s32[0], &mac_start[0],
                                          &col_entries[0], &cursor[0], fr_v, lr_v, code_bits, block, &bad_at)
    else:
        macs_arr = np.empty(n_macs, dtype=np.uint64)
        m64 = macs_arr
        s64 = np.empty(max_block + 1, dtype=np.uint64)
        with nogil:
            bad = _fill_entries[uint64_t](ptr_t, &pe_off[0], &n_rows[0], vp, zp,
                                          &m64[0] if n_macs > 0 else NULL, &s64[0], &mac_start[0],
                                          &col_entries[0], &cursor[0], fr_v, lr_v, code_bits, block, &bad_at)
    if bad != BAD_NONE:
        return None, bad, bad_at
    with nogil:  # fillers per column: entries - MACs
        for j in range(n_cols):
            fill_v[j] = col_entries[j] - (mac_start[j + 1] - mac_start[j])
    cdef LayerTables t = LayerTables.__new__(LayerTables)
    t.n_pe = <int>n_pe
    t.n_out = n_out
    t.n_cols = n_cols
    t.code_bits = code_bits
    for arr in (ptr_t_arr, first_arr, last_arr, fill_arr, mac_start_arr, macs_arr):
        arr.setflags(write=False)
    t.ptr_t, t.first_row, t.last_row, t.col_fillers = ptr_t_arr, first_arr, last_arr, fill_arr
    t.mac_start, t.macs = mac_start_arr, macs_arr
    return t, BAD_NONE, -1


# ----------------------------------------------------------------------------- one input
cdef struct Layer:
    # pointers into a LayerTables' arrays (read-only)
    const int32_t* ptr_t
    const int32_t* first_row
    const int32_t* last_row
    const int64_t* col_fillers
    const int64_t* mac_start
    Py_ssize_t n_pe


cdef struct Scratch:
    int64_t* fin        # (n_pe,) last busy cycle of the PE's previous column
    int64_t* line_reg   # (n_pe,) spmat line register
    int64_t* last_mac   # (n_pe,) local row of the PE's previous column's last MAC; -2: none
    int64_t* pop_ring   # (ring, n_pe) take cycle of the last D broadcasts per PE
    int64_t* pop_max    # (ring,) latest take cycle over the PEs
    int64_t* slot_col   # (n_slots,) LNZD view: column of a non-zero slot, -1 for a zero


cdef struct Trace:
    # event records of one input, filled by the timing pass (NULL: tracing off)
    int64_t* bc         # (n_bc, 3): broadcast cycle b, first cycle the CCU held it (ready), column j
    int64_t* take       # (n_bc, n_pe): cycle at whose end PE k took broadcast i off its queue
    int64_t* loads      # (n_groups + 1,): cycles of the LNZD group loads
    int64_t cap_bc      # rows of bc / take
    int64_t n_bc        # out: broadcasts recorded
    int64_t n_loads     # out: group loads recorded


cdef inline void _stall_pes(int64_t* stall, const int64_t* ring_row, Py_ssize_t n_pe,
                            int64_t ready, int64_t b) noexcept nogil:
    """PE k's queue was full from cycle ``ready`` to min(p_k(i - D), b - 1)."""
    cdef Py_ssize_t k
    cdef int64_t lim, d
    for k in range(n_pe):
        lim = ring_row[k]
        if lim > b - 1:
            lim = b - 1
        d = lim - ready + 1
        if d > 0:
            stall[k] += d


cdef int64_t _timing(const Layer* L, Py_ssize_t n_groups, int fifo_depth, int64_t entries_per_line,
                     int line_shift, Scratch* s, int64_t* busy, int64_t* stall, int64_t* c,
                     Trace* tr) noexcept nogil:
    """The timing pass over one input's LNZD slots; returns the last CCU/PE cycle + 1.

    ``tr`` (NULL when tracing is off) receives the events this pass computes: per
    broadcast (b, ready, j) and every PE's take cycle p, and each group load's cycle;
    the off path costs one predicted-not-taken branch per broadcast and per group.
    """
    cdef Py_ssize_t n_pe = L.n_pe
    cdef Py_ssize_t ring = fifo_depth if fifo_depth < n_groups * n_pe else n_groups * n_pe
    cdef Py_ssize_t g, q, k
    cdef int64_t t, n_bc = 0, j, ready, b, p, f, pmax, n, w, e0, e1, line0, line1, slot, end_cycle, fr
    cdef int64_t c_stall = 0, c_loads = 0, c_lines = 0, c_byp = 0, c_entries = 0, c_fill = 0
    cdef int64_t* fin = s.fin
    cdef int64_t* line_reg = s.line_reg
    cdef int64_t* last_mac = s.last_mac
    cdef int64_t* ring_row
    cdef const int32_t* pj
    cdef const int32_t* frj
    cdef const int32_t* lrj
    cdef bint loaded
    if ring < 1:
        ring = 1
    for k in range(n_pe):
        fin[k] = -1
        line_reg[k] = -1
        last_mac[k] = -2
    # cycle 0: the empty LNZD register loads group 0
    t = 1
    c_loads = 1 if n_groups > 0 else 0
    if tr != NULL and n_groups > 0:
        tr.loads[0] = 0
        tr.n_loads = 1
    for g in range(n_groups):
        loaded = False
        for q in range(n_pe):
            j = s.slot_col[g * n_pe + q]
            if j < 0:
                continue
            # ---------------- CCU: wait until no queue is full
            ready = t
            b = ready
            slot = n_bc % fifo_depth
            ring_row = s.pop_ring + slot * n_pe
            if n_bc >= fifo_depth and s.pop_max[slot] + 1 > b:
                b = s.pop_max[slot] + 1
                c_stall += b - ready
                _stall_pes(stall, ring_row, n_pe, ready, b)
            t = b + 1
            if q == n_pe - 1:
                loaded = True
                c_loads += 1
                if tr != NULL:
                    tr.loads[tr.n_loads] = b
                    tr.n_loads += 1
            # ---------------- every PE takes column j and works through its slice
            pj = L.ptr_t + j * n_pe
            frj = L.first_row + j * n_pe
            lrj = L.last_row + j * n_pe
            c_fill += L.col_fillers[j]
            pmax = -1
            for k in range(n_pe):
                f = fin[k]
                p = b + 1
                if f > p:
                    p = f
                ring_row[k] = p
                if p > pmax:
                    pmax = p
                # bypass: back to back (p == f) and this column's first MAC is on the row of
                # the PE's previous MAC, one cycle earlier
                fr = frj[k]
                c_byp += (f == p) & (fr == last_mac[k])
                last_mac[k] = lrj[k]
                e0 = pj[k]
                e1 = pj[n_pe + k]
                n = e1 - e0
                c_entries += n
                w = n if n > 0 else 1  # an empty slice: the pointer read costs one cycle
                busy[k] += w
                fin[k] = p + w
                # spmat line reads: a new line every L entries; the register survives columns
                if line_shift >= 0:
                    line0 = e0 >> line_shift
                    line1 = (e1 - 1) >> line_shift
                else:
                    line0 = e0 // entries_per_line
                    line1 = (e1 - 1) // entries_per_line
                if n > 0:
                    c_lines += line1 - line0 + (line0 != line_reg[k])
                    line_reg[k] = line1
            s.pop_max[slot] = pmax
            if tr != NULL and n_bc < tr.cap_bc:  # event hook: this broadcast and every PE's take cycle
                tr.bc[3 * n_bc] = b
                tr.bc[3 * n_bc + 1] = ready
                tr.bc[3 * n_bc + 2] = j
                memcpy(tr.take + n_bc * n_pe, ring_row, n_pe * sizeof(int64_t))
                tr.n_bc = n_bc + 1
            n_bc += 1
        if not loaded:
            if tr != NULL:
                tr.loads[tr.n_loads] = t
                tr.n_loads += 1
            t += 1  # the group has no further non-zero: loading the next costs a cycle
            c_loads += 1
    c[C_BROADCASTS] += n_bc
    c[C_CCU_STALL] += c_stall
    c[C_GROUP_LOADS] += c_loads
    c[C_PTR_READS] += n_bc * n_pe
    c[C_LINE_READS] += c_lines
    c[C_ENTRIES] += c_entries
    c[C_FILLERS] += c_fill
    c[C_MACS] += c_entries - c_fill
    c[C_ACC_WRITES] += c_entries - c_fill
    c[C_BYPASSES] += c_byp
    end_cycle = t - 1
    for k in range(n_pe):
        if fin[k] > end_cycle:
            end_cycle = fin[k]
    return end_cycle + 1


cdef void _arith(acc_t* out, const acc_t* cb, const acc_t* act, const mac_t* macs,
                 const int64_t* mac_start, Py_ssize_t n_slots, int code_bits,
                 const FixedMode* fm, const int64_t* slot_col, int64_t* c) noexcept nogil:
    """The arithmetic pass: every broadcast column's MACs, one contiguous run per column."""
    cdef Py_ssize_t i
    cdef int64_t j, e, e1
    cdef mac_t m, cmask = (1 << code_bits) - 1
    cdef acc_t a
    cdef int64_t sat = 0
    for i in range(n_slots):
        j = slot_col[i]
        if j < 0:
            continue
        a = act[j]
        e1 = mac_start[j + 1]
        for e in range(mac_start[j], e1):
            m = macs[e]
            out[m >> code_bits] = _mac(out[m >> code_bits], cb[m & cmask], a, fm, &sat)
    c[C_SATURATIONS] += sat


def run_batch(LayerTables tables, *, act, act_q, codebook, codebook_q, bint fixed, fixed_mode,
              bint has_bias, Py_ssize_t n_in, int fifo_depth, int entries_per_line,
              out_f, out_q, int64_t[::1] cycles, int64_t[::1] busy, int64_t[::1] stall,
              int64_t[::1] counters, Py_ssize_t trace_input=-1, trace_bc=None, trace_take=None,
              trace_loads=None):
    """Simulate ``n_inputs`` independent input vectors on one layer.

    ================  ==============================  =================================================
    argument          dtype, shape                    meaning
    ================  ==============================  =================================================
    tables            LayerTables                     the layer (:func:`build_tables`)
    act               float32 (n_inputs, n_cols)      activations; column ``n_in`` (bias) = 1.0
    act_q             int64 (n_inputs, n_cols)        the same in fixed point (fixed16; else (0, 0))
    codebook          float32 (2**code_bits,)         shared weights
    codebook_q        int64 (2**code_bits,)           the same in fixed point (fixed16; else (0,))
    fixed             bool                            fixed16 arithmetic (else float32)
    fixed_mode        (shift, nearest, saturate,      product narrowing and accumulator word
                      total_bits, lo, hi)             (ignored in float32 mode)
    has_bias          bool                            column ``n_in`` is the bias column
    n_in              int                             real input columns
    fifo_depth        int >= 1                        activation queue depth D
    entries_per_line  int >= 1                        spmat entries per SRAM line L
    out_f             float32 (n_inputs, n_out)       zeroed outputs (float32 mode; else (0, 0))
    out_q             int64 (n_inputs, n_out)         zeroed accumulators (fixed16; else (0, 0))
    cycles            int64 (n_inputs,)               out: cycles per input, without the drain
    busy, stall       int64 (n_pe,)                   out (added to): busy / stall cycles per PE
    counters          int64 (11,)                     out (added to): action counters, in the order of
                                                      ``eiesim.sim.result.COUNTER_NAMES``
    trace_input       int                             input whose timing events are recorded (-1: none)
    trace_bc          int64 (cap, 3)                  out: per broadcast (cycle b, ready cycle, column)
    trace_take        int64 (cap, n_pe)               out: per broadcast, each PE's take cycle p
    trace_loads       int64 (n_groups + 1,)           out: group-load cycles
    ================  ==============================  =================================================

    With ``trace_input >= 0`` returns ``(n_broadcasts, n_group_loads)`` recorded
    (``cap`` must be at least the input's broadcasts); else None.

    Shapes are checked here (``ValueError``); values were validated by the caller
    (finite activations) and by :func:`build_tables` (every index in range).
    Runs without the GIL. O(B N + E + G N) per input (B broadcasts, N PEs, E
    entries of the broadcast columns, G LNZD groups).
    """
    cdef Py_ssize_t n_pe = tables.n_pe, n_out = tables.n_out, n_cols = tables.n_cols
    cdef Py_ssize_t n_inputs = cycles.shape[0]
    cdef Py_ssize_t n_real_groups = (n_in + n_pe - 1) // n_pe
    cdef Py_ssize_t n_groups = n_real_groups + (1 if has_bias else 0)
    cdef Py_ssize_t n_slots = n_groups * n_pe
    cdef Py_ssize_t ring = fifo_depth if fifo_depth < n_slots else n_slots
    cdef Py_ssize_t x, jj
    cdef int line_shift = -1
    cdef FixedMode fm
    if fifo_depth < 1 or entries_per_line < 1:
        raise ValueError("fifo_depth and entries_per_line must be positive")
    if n_in + (1 if has_bias else 0) != n_cols:
        raise ValueError("n_in and has_bias do not match the layer's columns")
    if busy.shape[0] != n_pe or stall.shape[0] != n_pe or counters.shape[0] != N_COUNTERS:
        raise ValueError("busy / stall / counters have the wrong size")
    cdef const float[:, ::1] act_f = act
    cdef const int64_t[:, ::1] act_i = act_q
    cdef const float[::1] cb_f = codebook
    cdef const int64_t[::1] cb_i = codebook_q
    cdef float[:, ::1] of = out_f
    cdef int64_t[:, ::1] oq = out_q
    if act_f.shape[0] != n_inputs or act_f.shape[1] != n_cols:
        raise ValueError("act must be (n_inputs, n_cols)")
    if cb_f.shape[0] < (1 << tables.code_bits):
        raise ValueError("codebook is shorter than 2**code_bits")
    if fixed:
        if act_i.shape[0] != n_inputs or act_i.shape[1] != n_cols or oq.shape[0] != n_inputs \
                or oq.shape[1] != n_out or cb_i.shape[0] < (1 << tables.code_bits):
            raise ValueError("fixed16 arrays have the wrong shape")
        fm.shift, fm.nearest, fm.saturate, fm.total_bits, fm.lo, fm.hi = fixed_mode
        if not (0 <= fm.shift < 63 and 1 <= fm.total_bits < 63 and fm.lo <= fm.hi):
            raise ValueError("fixed_mode out of range")
    elif of.shape[0] != n_inputs or of.shape[1] != n_out:
        raise ValueError("out_f must be (n_inputs, n_out)")
    for x in range(31):
        if (<int64_t>1 << x) == entries_per_line:
            line_shift = <int>x

    cdef const int32_t[:, ::1] ptr_t = tables.ptr_t
    cdef const int32_t[:, ::1] first_row = tables.first_row
    cdef const int32_t[:, ::1] last_row = tables.last_row
    cdef const int64_t[::1] col_fillers = tables.col_fillers
    cdef const int64_t[::1] mac_start = tables.mac_start
    cdef const uint32_t[::1] m32
    cdef const uint64_t[::1] m64
    cdef bint wide = tables.macs.dtype == np.uint64
    if wide:
        m64 = tables.macs
    else:
        m32 = tables.macs
    cdef Layer L
    L.ptr_t = &ptr_t[0, 0]
    L.first_row = &first_row[0, 0]
    L.last_row = &last_row[0, 0]
    L.col_fillers = &col_fillers[0]
    L.mac_start = &mac_start[0]
    L.n_pe = n_pe
    cdef int code_bits = tables.code_bits
    cdef int64_t c[N_COUNTERS]
    cdef Scratch s
    cdef Py_ssize_t ring_alloc = ring if ring > 0 else 1
    s.fin = <int64_t*>malloc(n_pe * sizeof(int64_t))
    s.line_reg = <int64_t*>malloc(n_pe * sizeof(int64_t))
    s.last_mac = <int64_t*>malloc(n_pe * sizeof(int64_t))
    s.pop_ring = <int64_t*>malloc(ring_alloc * n_pe * sizeof(int64_t))
    s.pop_max = <int64_t*>malloc(ring_alloc * sizeof(int64_t))
    s.slot_col = <int64_t*>malloc((n_slots if n_slots > 0 else 1) * sizeof(int64_t))
    if not (s.fin and s.line_reg and s.last_mac and s.pop_ring and s.pop_max and s.slot_col):
        free(s.fin); free(s.line_reg); free(s.last_mac); free(s.pop_ring); free(s.pop_max); free(s.slot_col)
        raise MemoryError()
    cdef Trace tr
    cdef Trace* trp = NULL
    cdef int64_t[:, ::1] tr_bc
    cdef int64_t[:, ::1] tr_take
    cdef int64_t[::1] tr_loads
    tr.n_bc = 0
    tr.n_loads = 0
    if trace_input >= 0:
        if trace_input >= n_inputs:
            raise ValueError("trace_input is not an input of the batch")
        tr_bc = trace_bc
        tr_take = trace_take
        tr_loads = trace_loads
        if tr_bc.shape[1] != 3 or tr_take.shape[1] != n_pe or tr_take.shape[0] != tr_bc.shape[0] \
                or tr_loads.shape[0] < n_groups + 1 or tr_bc.shape[0] < 1:
            raise ValueError("trace arrays have the wrong shape")
        tr.bc = &tr_bc[0, 0]
        tr.take = &tr_take[0, 0]
        tr.loads = &tr_loads[0]
        tr.cap_bc = tr_bc.shape[0]
    for jj in range(N_COUNTERS):
        c[jj] = 0
    try:
        with nogil:
            for x in range(n_inputs):
                # the LNZD view: groups of N slots, non-zero activations, then the bias group
                for jj in range(n_slots):
                    s.slot_col[jj] = -1
                if fixed:  # the LNZD tests the activation the datapath holds (quantised)
                    for jj in range(n_in):
                        if act_i[x, jj] != 0:
                            s.slot_col[jj] = jj
                else:
                    for jj in range(n_in):
                        if act_f[x, jj] != 0:
                            s.slot_col[jj] = jj
                if has_bias:
                    s.slot_col[n_real_groups * n_pe] = n_in
                trp = &tr if x == trace_input else NULL
                cycles[x] = _timing(&L, n_groups, fifo_depth, entries_per_line, line_shift,
                                    &s, &busy[0], &stall[0], c, trp)
                if fixed:
                    if wide:
                        _arith[int64_t, uint64_t](&oq[x, 0], &cb_i[0], &act_i[x, 0], &m64[0], &mac_start[0],
                                                  n_slots, code_bits, &fm, s.slot_col, c)
                    else:
                        _arith[int64_t, uint32_t](&oq[x, 0], &cb_i[0], &act_i[x, 0], &m32[0], &mac_start[0],
                                                  n_slots, code_bits, &fm, s.slot_col, c)
                else:
                    if wide:
                        _arith[float, uint64_t](&of[x, 0], &cb_f[0], &act_f[x, 0], &m64[0], &mac_start[0],
                                                n_slots, code_bits, &fm, s.slot_col, c)
                    else:
                        _arith[float, uint32_t](&of[x, 0], &cb_f[0], &act_f[x, 0], &m32[0], &mac_start[0],
                                                n_slots, code_bits, &fm, s.slot_col, c)
    finally:
        free(s.fin); free(s.line_reg); free(s.last_mac); free(s.pop_ring); free(s.pop_max); free(s.slot_col)
    for jj in range(N_COUNTERS):
        counters[jj] += c[jj]
    if trace_input >= 0:
        return int(tr.n_bc), int(tr.n_loads)
    return None
