# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cycle-level EIE kernel: the compiled twin of ``eiesim/sim/reference.py``.

Three entry points, called by ``eiesim.sim.engine`` (and ``last_rows``, each PE's largest
decoded local row, by ``eiesim.format.eiedump`` to infer a dump's ``n_out``):

``build_tables(ptr=, v=, z=, n_out=, code_bits=, index_bits=, submit=None)``
    The per-layer pass, run once per layer object: it checks every full format
    rule of ``CompressedLayer.check_format(full=True)`` in one sweep (O(nnz),
    no temporaries beyond its outputs) and builds a :class:`LayerTables`. The
    common case (uint16 MACs, int16 rows) decodes 8 entries per SSSE3 step where
    the CPU has it (:func:`simd_decode`); with ``submit``, a layer of at least
    :data:`SPLIT_MIN_ENTRIES` entries decodes half of its columns on another thread.
``run_batch(tables, ...)``
    Simulates a batch of independent input vectors on one layer (one input is
    a batch of one), without the GIL.
``run_one(tables, a, codebook, ..., submit=None)``
    One float32 input, with the fewest Python objects per call: ``simulate``'s
    warm path. With ``submit`` (a thread pool's), the timing pass runs on another
    thread while the calling thread runs the arithmetic pass.

Timing and arithmetic are separate passes. Between broadcasts nothing couples
the PEs, so the **timing pass** advances broadcast by broadcast and computes
each PE's schedule in closed form from the per-(column, PE) pointer table
alone, in a branch-free integer loop over the PEs. For broadcast i (cycle
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
A PE that owns no row (k >= n_out) has no entry, so f = p_prev + 1 <= b_i + 1:
it takes every activation at p = b_i + 1 and is busy one cycle per broadcast;
the pass gives such PEs in closed form and steps only ``LayerTables.n_active``.

The **arithmetic pass** walks the broadcast columns in the same order over a
column-major copy of the entries (all PEs' slices of column j are adjacent,
PE 0 first), so each column is one contiguous run instead of N separate
streams. Each output row belongs to one PE and receives its products in
column order in both passes' orders and in the reference, so float32 sums are
bit-identical. float32 has its own C loop (``EIESIM_ARITH_F32``: a long
column's 2**code_bits products formed once, 8 MACs per step); fixed16 one
multiply-add loop through the fused accumulator type ``acc_t``.

Both passes walk the input's list of broadcast columns and, for tables larger
than :data:`PREFETCH_MIN_BYTES`, hint the cache to fetch the table rows and MACs
of the column two broadcasts ahead. The passes write nothing in common, which
is what lets ``run_one`` run them on two threads with the serial results.

The timing state is int32 when :func:`timing_bound` (a cap on every cycle
number the pass forms) fits, else int64: cycle counts may pass 2**31. The
timing pass is C (``EIESIM_TIMING``, one function per state and row type) and
its loop over the PEs is branch-free over restrict pointers, so the compiler
keeps 4 (SSE2) or 8 (AVX2) PEs per register; the whole pass is built twice and
the loader picks the AVX2 or the portable build on the running CPU
(``target_clones`` on GCC/glibc), once per input. The tables take the
narrowest exact dtypes per layer (uint16 MACs, int16 rows where they fit, see
:class:`LayerTables`).

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
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
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


#: Tables larger than this (bytes; about a core's L2 cache) are read with prefetch hints two broadcasts
#: ahead; smaller ones stay in cache between calls, where the hints only cost time.
PREFETCH_MIN_BYTES = 1 << 20

#: Largest timing bound (cycles, see :func:`timing_bound`) the int32 timing pass takes.
INT32_TIMING_LIMIT = (1 << 31) - 1


def timing_bound(int64_t n_entries, Py_ssize_t n_cols, Py_ssize_t n_pe):
    """An upper bound on any cycle number, busy, stall or line count the timing pass forms.

    Every cycle the CCU broadcasts, loads a group, or waits for a PE that is busy or
    one cycle from taking an activation; after the last broadcast each PE finishes
    its own work. So the last cycle is below ``2 (slots + groups + 1) + 2 W``, with
    ``W`` every PE's work (at most its entries plus one cycle per column). The bound
    doubles that again: ``4 (n_cols + 3 n_pe + 2 + n_entries + n_cols n_pe)``.

    Returns
    -------
    int
        The bound, in cycles; the kernel times in int32 when it is at most
        :data:`INT32_TIMING_LIMIT`, else in int64.
    """
    return 4 * (int(n_cols) + 3 * int(n_pe) + 2 + int(n_entries) + int(n_cols) * int(n_pe))


def _row_dtype(Py_ssize_t n_out, Py_ssize_t n_pe):
    """int16 when every local row and the sentinels -1, -2 fit, else int32."""
    return np.int16 if (n_out + n_pe - 1) // n_pe <= 32767 else np.int32


def _mac_dtype(Py_ssize_t n_out, int code_bits):
    """Narrowest unsigned type holding ``(row << code_bits) | code`` for every row < n_out."""
    cdef uint64_t top = (<uint64_t>n_out) << code_bits
    if top <= (<uint64_t>1) << 16:
        return np.uint16
    if top < (<uint64_t>1) << 32:
        return np.uint32
    return np.uint64


cdef class LayerTables:
    """A layer's static arrays as the kernel reads them (built by :func:`build_tables`).

    Each integer table takes the narrowest dtype that holds every value of this
    layer exactly (chosen per layer, with an exact wider fallback): that is what
    keeps a large layer's peak memory within twice its encoded size.

    Attributes
    ----------
    n_pe, n_out, n_cols, code_bits : int
    ptr_t : ndarray of int32, shape (n_cols + 1, n_pe)
        Per-PE local column pointers, column-major: the N pointer pairs of a
        broadcast are adjacent. ``ptr_t[j + 1, k] - ptr_t[j, k]`` entries
        (fillers included) of column j belong to PE k.
    first_row : ndarray of int16 (int32 when a PE owns more than 32,767 rows), shape (n_cols, n_pe)
        Local row of the first entry of PE k's slice of column j when that
        entry is a MAC; -1 when it is a filler or the slice is empty.
    last_row : ndarray, dtype of ``first_row``, shape (n_cols, n_pe)
        Local row of the slice's last entry (never a filler); -2 for an empty slice.
    col_fillers : ndarray of int64, shape (n_cols,)
        Filler entries of column j, all PEs.
    col_entries : ndarray of int64, shape (n_cols,)
        Entries (fillers included) of column j, all PEs (from the pointers).
    mac_start : ndarray of int64, shape (n_cols + 1,)
        Start of column j's run in ``macs``.
    macs : ndarray of uint16, uint32 or uint64, shape (n_macs,)
        The non-filler entries, column-major: ``(global row << code_bits) | code``;
        uint16 when ``n_out << code_bits <= 2**16``, uint32 below 2**32, else uint64.
    n_active : int
        PEs that own a row, ``min(n_pe, n_out)`` (``n_pe`` for hand-made tables that give
        entries to a PE without rows): the timing pass steps these; a PE without rows and
        entries takes every activation at once, busy one cycle per broadcast.
    prefetch : bool
        The passes hint the cache to fetch later broadcast columns' rows and MACs
        (the tables are larger than :data:`PREFETCH_MIN_BYTES`).
    timing_int64 : bool
        The timing pass keeps its state in int64 (:func:`timing_bound` above
        :data:`INT32_TIMING_LIMIT`), else in int32 (twice the PEs per SIMD register).
    """
    cdef readonly int n_pe, code_bits
    cdef readonly Py_ssize_t n_active
    cdef readonly Py_ssize_t n_out, n_cols
    cdef readonly object ptr_t, first_row, last_row, col_fillers, col_entries, mac_start, macs
    cdef readonly bint timing_int64, prefetch
    # raw views of the arrays above (they are read-only and owned by this object)
    cdef const int32_t* p_ptr
    cdef const void* p_fr
    cdef const void* p_lr
    cdef const int64_t* p_fill
    cdef const int64_t* p_ent
    cdef const int64_t* p_ms
    cdef const void* p_macs
    cdef int row_bytes, mac_bytes

    cdef void _bind(self, bint force_int64):
        for arr in (self.ptr_t, self.first_row, self.last_row, self.col_fillers, self.col_entries, self.mac_start,
                    self.macs):
            arr.setflags(write=False)
        self.p_ptr = <const int32_t*>cnp.PyArray_DATA(self.ptr_t)
        self.p_fr = cnp.PyArray_DATA(self.first_row)
        self.p_lr = cnp.PyArray_DATA(self.last_row)
        self.p_fill = <const int64_t*>cnp.PyArray_DATA(self.col_fillers)
        self.p_ent = <const int64_t*>cnp.PyArray_DATA(self.col_entries)
        self.p_ms = <const int64_t*>cnp.PyArray_DATA(self.mac_start)
        self.p_macs = cnp.PyArray_DATA(self.macs)
        self.row_bytes = self.first_row.dtype.itemsize
        self.mac_bytes = self.macs.dtype.itemsize
        n_entries = int(self.ptr_t[self.n_cols].sum())
        self.timing_int64 = force_int64 or timing_bound(n_entries, self.n_cols, self.n_pe) > INT32_TIMING_LIMIT
        self.prefetch = self.nbytes > PREFETCH_MIN_BYTES
        # PEs k >= n_out own no row, so (built tables) no entry: the timing pass gives them a closed form
        na = min(self.n_pe, self.n_out)
        if na < self.n_pe and np.any(self.ptr_t[self.n_cols, na:] != 0):  # hand-made tables may differ
            na = self.n_pe
        self.n_active = na

    @classmethod
    def from_arrays(cls, *, ptr_t, first_row, last_row, col_fillers, mac_start, macs, Py_ssize_t n_out,
                    int code_bits, bint timing_int64=False):
        """Tables from hand-made arrays (kernel-level tests and tools); every index is checked.

        The arrays are as in the class docstring (rows are stored as int16 or int32
        by the same rule as :func:`build_tables`; ``macs`` keeps its unsigned dtype);
        ``macs`` may hold fewer MACs than the pointers count entries (timing uses
        the pointers, arithmetic the MACs), which lets a test build the timing of a
        huge layer without its entries. ``timing_int64`` forces the int64 timing
        pass (tests hold it equal to the int32 one).

        Raises
        ------
        ValueError
            A shape, dtype or index that would let the kernel read or write out of
            bounds, or a row outside ``[-2, rows of a PE)``.
        """
        pt = np.ascontiguousarray(ptr_t, dtype=np.int32)
        if pt.ndim != 2 or pt.shape[0] < 2 or pt.shape[1] < 1:
            raise ValueError("ptr_t must be (n_cols + 1, n_pe)")
        n_cols, n_pe = pt.shape[0] - 1, pt.shape[1]
        if n_out < 1:
            raise ValueError("code_bits or n_out out of range")
        n_rows = (n_out + n_pe - 1) // n_pe
        fr64 = np.asarray(first_row, dtype=np.int64)
        lr64 = np.asarray(last_row, dtype=np.int64)
        cf = np.ascontiguousarray(col_fillers, dtype=np.int64)
        ms = np.ascontiguousarray(mac_start, dtype=np.int64)
        mc = np.ascontiguousarray(macs)
        if fr64.shape != (n_cols, n_pe) or lr64.shape != (n_cols, n_pe) or cf.shape != (n_cols,) \
                or ms.shape != (n_cols + 1,) or mc.ndim != 1 or mc.dtype not in (np.uint16, np.uint32, np.uint64):
            raise ValueError("table shapes or dtypes do not match ptr_t")
        if fr64.size and (min(fr64.min(), lr64.min()) < -2 or max(fr64.max(), lr64.max()) >= n_rows):
            raise ValueError("a first or last row lies outside [-2, rows of a PE)")
        if np.any(pt[0] != 0) or np.any(np.diff(pt.astype(np.int64), axis=0) < 0):
            raise ValueError("ptr_t must start at 0 and not decrease")
        if ms[0] != 0 or np.any(np.diff(ms) < 0) or ms[-1] != mc.shape[0]:
            raise ValueError("mac_start must run from 0 to len(macs) without decreasing")
        if not (1 <= code_bits <= 8):
            raise ValueError("code_bits or n_out out of range")
        if mc.size and int((mc >> code_bits).max()) >= n_out:
            raise ValueError("a MAC's row is outside the layer")
        rdt = _row_dtype(n_out, n_pe)
        cdef LayerTables t = LayerTables.__new__(LayerTables)
        t.n_pe, t.n_out, t.n_cols, t.code_bits = n_pe, n_out, n_cols, code_bits
        t.ptr_t, t.col_fillers, t.mac_start, t.macs = pt, cf, ms, mc
        t.col_entries = np.diff(pt.astype(np.int64), axis=0).sum(axis=1)
        t.first_row = np.ascontiguousarray(fr64, dtype=rdt)
        t.last_row = np.ascontiguousarray(lr64, dtype=rdt)
        t._bind(timing_int64)
        return t

    @property
    def nbytes(self):
        """Bytes held by the tables."""
        return sum(a.nbytes for a in (self.ptr_t, self.first_row, self.last_row, self.col_fillers,
                                      self.col_entries, self.mac_start, self.macs))


ctypedef fused mac_t:
    uint16_t
    uint32_t
    uint64_t

ctypedef fused row_t:
    int16_t
    int32_t

cdef uint8_t _NO_ENTRY[2]  # zeros: v and z of a layer without entries


# ----------------------------------------------------------------------------- SIMD decode
# The per-layer decode of the common case (uint16 MACs: n_out << code_bits <= 2**16; int16
# rows) in 8-entry steps with SSSE3: a slice of up to 8 entries is decoded without a loop
# whose exit depends on its length (the scalar loop's exit mispredicts on nearly every
# slice), its rows formed by a prefix sum of (z + 1) in one register and its fillers
# dropped by a byte shuffle from a 256-entry table. Integer work only: the same tables
# bit for bit as the scalar decode (tests hold them equal). Chosen at run time, once, on
# CPUs with SSSE3 (``simd_decode``); elsewhere, and on other compilers, the scalar loop.
cdef extern from *:
    """
    #include <stdint.h>
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(EIESIM_NO_SIMD_DECODE)
    #define EIESIM_HAVE_SSSE3_DECODE 1
    #include <tmmintrin.h>
    #else
    #define EIESIM_HAVE_SSSE3_DECODE 0
    #endif
    /* Slack (uint16 slots) after each column's room in the decode scratch: an 8-entry step
       stores 8 slots however many of them are MACs. */
    #define EIESIM_DECODE_SLACK 8
    static int eiesim_decode_simd = 0;
    #if EIESIM_HAVE_SSSE3_DECODE
    static uint8_t eiesim_keep_shuf[256][16];  /* mask of kept lanes -> pshufb control packing them */
    static uint8_t eiesim_keep_count[256];     /* its popcount */
    static uint8_t eiesim_low_bytes[9][8];     /* m -> the first m bytes all ones */
    static int eiesim_decode_init(void) {
        int m, i, o;
        for (m = 0; m < 256; m++) {
            for (i = 0, o = 0; i < 8; i++)
                if ((m >> i) & 1) { eiesim_keep_shuf[m][2 * o] = (uint8_t)(2 * i);
                                    eiesim_keep_shuf[m][2 * o + 1] = (uint8_t)(2 * i + 1); o++; }
            eiesim_keep_count[m] = (uint8_t)o;
            for (; o < 8; o++) { eiesim_keep_shuf[m][2 * o] = 0x80; eiesim_keep_shuf[m][2 * o + 1] = 0x80; }
        }
        for (m = 0; m < 9; m++) for (i = 0; i < 8; i++) eiesim_low_bytes[m][i] = i < m ? 0xff : 0;
        __builtin_cpu_init();
        return __builtin_cpu_supports("ssse3") ? 1 : 0;
    }
    /* PE k's slices of columns [j0, j1): rows, first/last rows, MACs into scratch at
       cursor[j - j0] (advanced); the same arithmetic as _fill_entries' scalar loop (uint16
       rc wraps the same way: every product is taken mod 2**16). Returns the OR of the
       slices' broken-rule flags (a segment ending with a filler, a row outside the PE). */
    __attribute__((target("ssse3")))
    static int eiesim_decode16(const int32_t* ptr_t, Py_ssize_t n_pe, Py_ssize_t k, Py_ssize_t j0,
                               Py_ssize_t j1, int64_t base, int64_t n_local, const uint8_t* v,
                               const uint8_t* z, int64_t n_entries, uint16_t* scratch,
                               int64_t* cursor, int16_t* first_row, int16_t* last_row, int code_bits) {
        const uint16_t step = (uint16_t)((uint16_t)n_pe << code_bits);
        const uint16_t rstart = (uint16_t)(((uint16_t)k << code_bits) - step);
        const __m128i one = _mm_set1_epi16(1), stepv = _mm_set1_epi16((short)step);
        const __m128i zero = _mm_setzero_si128();
        int bad = 0;
        Py_ssize_t j;
        int64_t e1 = base + ptr_t[j0 * n_pe + k];
        for (j = j0; j < j1; j++) {
            int64_t e0 = e1, e, pos = cursor[j - j0], lr = -1;
            int nz;
            int64_t ef, el;
            uint16_t rc = rstart;
            e1 = base + ptr_t[(j + 1) * n_pe + k];
            nz = e1 > e0;
            ef = nz ? e0 : 0;
            el = nz ? e1 - 1 : 0;
            for (e = e0; e < e1;) {
                int64_t m = e1 - e < 8 ? e1 - e : 8;
                if (e + 8 <= n_entries) {
                    __m128i zb = _mm_loadl_epi64((const __m128i*)(z + e));
                    __m128i vv = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i*)(v + e)), zero);
                    __m128i s = _mm_add_epi16(_mm_unpacklo_epi8(zb, zero), one);
                    __m128i r;
                    int keep, sum;
                    s = _mm_add_epi16(s, _mm_slli_si128(s, 2));
                    s = _mm_add_epi16(s, _mm_slli_si128(s, 4));
                    s = _mm_add_epi16(s, _mm_slli_si128(s, 8));   /* s[i] = sum of z + 1 up to i */
                    r = _mm_or_si128(_mm_add_epi16(_mm_set1_epi16((short)rc), _mm_mullo_epi16(s, stepv)), vv);
                    keep = (_mm_movemask_epi8(_mm_packs_epi16(_mm_cmpeq_epi16(vv, zero), zero)) ^ 0xff)
                           & ((1 << m) - 1);
                    _mm_storeu_si128((__m128i*)(scratch + pos),
                                     _mm_shuffle_epi8(r, _mm_loadu_si128((const __m128i*)eiesim_keep_shuf[keep])));
                    pos += eiesim_keep_count[keep];
                    zb = _mm_and_si128(zb, _mm_loadl_epi64((const __m128i*)eiesim_low_bytes[m]));
                    sum = _mm_cvtsi128_si32(_mm_sad_epu8(zb, zero)) + (int)m;
                    lr += sum;
                    rc = (uint16_t)(rc + (uint16_t)(sum * step));
                } else {  /* the last entries of the layer: no 8-byte read past them */
                    int64_t i;
                    for (i = e; i < e + m; i++) {
                        uint8_t vi = v[i], zi = z[i];
                        lr += zi + 1;
                        rc = (uint16_t)(rc + (zi + 1) * step);
                        scratch[pos] = (uint16_t)(rc | vi);
                        pos += vi != 0;
                    }
                }
                e += m;
            }
            bad |= nz & ((v[el] == 0) | (lr >= n_local));
            first_row[j * n_pe + k] = (nz & (v[ef] != 0)) ? (int16_t)z[ef] : -1;
            last_row[j * n_pe + k] = nz ? (int16_t)lr : -2;
            cursor[j - j0] = pos;
        }
        return bad;
    }
    #else
    static int eiesim_decode_init(void) { return 0; }
    static int eiesim_decode16(const int32_t* ptr_t, Py_ssize_t n_pe, Py_ssize_t k, Py_ssize_t j0,
                               Py_ssize_t j1, int64_t base, int64_t n_local, const uint8_t* v,
                               const uint8_t* z, int64_t n_entries, uint16_t* scratch,
                               int64_t* cursor, int16_t* first_row, int16_t* last_row, int code_bits) {
        return -1;  /* never called: eiesim_decode_simd stays 0 */
    }
    #endif
    """
    int EIESIM_DECODE_SLACK
    int eiesim_decode_simd
    int eiesim_decode_init()
    int eiesim_decode16(const int32_t* ptr_t, Py_ssize_t n_pe, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1,
                        int64_t base, int64_t n_local, const uint8_t* v, const uint8_t* z, int64_t n_entries,
                        uint16_t* scratch, int64_t* cursor, int16_t* first_row, int16_t* last_row,
                        int code_bits) noexcept nogil

cdef bint _SIMD_DECODE_AVAILABLE = eiesim_decode_init() == 1
eiesim_decode_simd = _SIMD_DECODE_AVAILABLE


def simd_decode(on=None):
    """Whether the per-layer decode uses its SSSE3 path; ``on`` (bool) switches it (tests).

    Parameters
    ----------
    on : bool or None
        ``None`` only reports; ``True`` turns the SSSE3 decode on (where the CPU and the
        build have it), ``False`` makes every layer use the scalar decode.

    Returns
    -------
    bool
        The setting before the call. Both paths build the same tables bit for bit.

    Raises
    ------
    RuntimeError
        ``on=True`` where the build or the CPU has no SSSE3 decode.
    """
    global eiesim_decode_simd
    before = bool(eiesim_decode_simd)
    if on is not None:
        if on and not _SIMD_DECODE_AVAILABLE:
            raise RuntimeError("this build or CPU has no SSSE3 decode")
        eiesim_decode_simd = 1 if on else 0
    return before


cdef int _first_bad_slice(const int32_t[:, ::1] ptr_t, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1, int64_t base,
                          int64_t n_local, const uint8_t* v, const uint8_t* z, int64_t* bad_at) noexcept nogil:
    """The first broken slice of PE k in columns [j0, j1), slice by slice (only after a flag was raised):
    a segment that ends with a filler, or whose last (largest) local row lies outside the PE's rows."""
    cdef Py_ssize_t j
    cdef int64_t e, e0, e1, lr
    for j in range(j0, j1):
        e0 = base + ptr_t[j, k]
        e1 = base + ptr_t[j + 1, k]
        if e1 == e0:
            continue
        if v[e1 - 1] == 0:
            bad_at[0] = e1 - 1
            return BAD_FILLER_TRAILING
        lr = -1
        for e in range(e0, e1):
            lr += z[e] + 1
        if lr >= n_local:
            bad_at[0] = e1 - 1
            return BAD_ROW_RANGE
    return BAD_NONE  # pragma: no cover - called only when a flag was raised


cdef int _fill_entries(const int32_t[:, ::1] ptr_t, const int64_t* pe_off, const int64_t* n_rows,
                       const uint8_t* v, const uint8_t* z, mac_t* macs, mac_t* scratch, int64_t* mac_start,
                       const int64_t* col_entries, int64_t* cursor, row_t* first_row, row_t* last_row,
                       int code_bits, Py_ssize_t block, int64_t n_entries, Py_ssize_t jstart, Py_ssize_t jend,
                       int64_t out0, int64_t* bad_at) noexcept nogil:
    """Decode the segments of columns [jstart, jend); fill their per-(column, PE) rows and write
    their MACs column-major from ``macs[out0]`` (``mac_start[jstart:jend]``; the caller sets
    ``mac_start[n_cols]``). ``jstart`` is a multiple of ``block``: the blocks are those of one
    pass over every column, so two calls on [0, js) and [js, n_cols) find the same first broken
    slice as one call, the first call's before the second's.

    Codes, relative indices and fillers were checked by the vectorised sweep before;
    this pass checks only what needs the decoded rows: no segment ends with a filler,
    and the segment's last (largest) local row lies inside the PE's rows.

    Blocks of ``block`` columns: each PE's entries of the block are one contiguous read,
    decoded branch-free into ``scratch`` (column-major, each column given room for all
    its entries, fillers included, plus ``EIESIM_DECODE_SLACK`` slots: a filler's slot is
    overwritten by the next MAC), then each column's MACs are copied to their place in
    ``macs`` (one contiguous write). uint16 MACs with int16 rows take the SSSE3 decode
    (``eiesim_decode16``) when :func:`simd_decode` is on. ``col_entries`` (n_cols,) counts
    each column's entries; ``cursor`` (block,) is work space; ``n_entries``: the length of
    ``v`` and ``z`` (the SIMD decode reads 8 entries at a time only below it).
    """
    cdef Py_ssize_t n_pe = ptr_t.shape[1]
    cdef Py_ssize_t k, j, j0, j1
    cdef int64_t e, e0, e1, ef, el, lr, n_local, pos, base, out = out0, room
    cdef uint8_t vv, zz, nz, bad
    cdef mac_t rc, rstart, step = (<mac_t>n_pe) << code_bits
    j0 = jstart
    while j0 < jend:
        j1 = j0 + block if j0 + block < jend else jend
        room = 0
        for j in range(j0, j1):
            cursor[j - j0] = room
            room += col_entries[j] + EIESIM_DECODE_SLACK
        for k in range(n_pe):
            n_local = n_rows[k]
            base = pe_off[k]
            if mac_t is uint16_t and row_t is int16_t:
                if eiesim_decode_simd:
                    if eiesim_decode16(&ptr_t[0, 0], n_pe, k, j0, j1, base, n_local, v, z, n_entries,
                                       scratch, cursor, first_row, last_row, code_bits):
                        return _first_bad_slice(ptr_t, k, j0, j1, base, n_local, v, z, bad_at)
                    continue
            rstart = ((<mac_t>k) << code_bits) - step  # (global row << code_bits) of local row -1
            bad = 0
            e1 = base + ptr_t[j0, k]
            for j in range(j0, j1):
                # no branch on the slice: an empty one runs no entry and reads entry 0 behind a mask
                e0 = e1
                e1 = base + ptr_t[j + 1, k]
                nz = e1 > e0
                ef = e0 if nz else 0
                el = e1 - 1 if nz else 0
                pos = cursor[j - j0]
                lr = -1
                rc = rstart
                for e in range(e0, e1):
                    vv = v[e]
                    zz = z[e]
                    lr += zz + 1
                    rc += (zz + 1) * step
                    scratch[pos] = rc | vv
                    pos += vv != 0
                # rows grow along a segment: its last row is its largest
                bad |= nz & ((v[el] == 0) | (lr >= n_local))
                first_row[j * n_pe + k] = <row_t>(z[ef]) if nz & (v[ef] != 0) else -1
                last_row[j * n_pe + k] = <row_t>lr if nz else -2
                cursor[j - j0] = pos
            if bad:  # name the first broken slice, in the order the rules are listed
                return _first_bad_slice(ptr_t, k, j0, j1, base, n_local, v, z, bad_at)
        # the block's columns, compacted: column j's MACs are scratch[start_j : cursor[j]]
        room = 0
        for j in range(j0, j1):
            mac_start[j] = out
            e = cursor[j - j0] - room
            if e > 0:
                memcpy(macs + out, scratch + room, <size_t>e * sizeof(mac_t))
            out += e
            room += col_entries[j] + EIESIM_DECODE_SLACK
        j0 = j1
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


cdef int _fill_any(bint r16, int mb, const int32_t[:, ::1] ptr_t, const int64_t* pe_off, const int64_t* n_rows,
                   const uint8_t* v, const uint8_t* z, void* macs, void* scratch, int64_t* mac_start,
                   const int64_t* col_entries, int64_t* cursor, void* first_row, void* last_row, int code_bits,
                   Py_ssize_t block, int64_t n_entries, Py_ssize_t jstart, Py_ssize_t jend, int64_t out0,
                   int64_t* bad_at) noexcept nogil:
    """:func:`_fill_entries` for the tables' row dtype (``r16``: int16, else int32) and MAC width ``mb`` (bytes)."""
    if r16 and mb == 2:
        return _fill_entries[uint16_t, int16_t](ptr_t, pe_off, n_rows, v, z, <uint16_t*>macs, <uint16_t*>scratch,
                                                mac_start, col_entries, cursor, <int16_t*>first_row,
                                                <int16_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                                bad_at)
    if r16 and mb == 4:
        return _fill_entries[uint32_t, int16_t](ptr_t, pe_off, n_rows, v, z, <uint32_t*>macs, <uint32_t*>scratch,
                                                mac_start, col_entries, cursor, <int16_t*>first_row,
                                                <int16_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                                bad_at)
    if r16:
        return _fill_entries[uint64_t, int16_t](ptr_t, pe_off, n_rows, v, z, <uint64_t*>macs, <uint64_t*>scratch,
                                                mac_start, col_entries, cursor, <int16_t*>first_row,
                                                <int16_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                                bad_at)
    if mb == 2:
        return _fill_entries[uint16_t, int32_t](ptr_t, pe_off, n_rows, v, z, <uint16_t*>macs, <uint16_t*>scratch,
                                                mac_start, col_entries, cursor, <int32_t*>first_row,
                                                <int32_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                                bad_at)
    if mb == 4:
        return _fill_entries[uint32_t, int32_t](ptr_t, pe_off, n_rows, v, z, <uint32_t*>macs, <uint32_t*>scratch,
                                                mac_start, col_entries, cursor, <int32_t*>first_row,
                                                <int32_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                                bad_at)
    return _fill_entries[uint64_t, int32_t](ptr_t, pe_off, n_rows, v, z, <uint64_t*>macs, <uint64_t*>scratch,
                                            mac_start, col_entries, cursor, <int32_t*>first_row,
                                            <int32_t*>last_row, code_bits, block, n_entries, jstart, jend, out0,
                                            bad_at)


cdef class _FillJob:
    """The second half of a split decode (columns [jstart, n_cols)), run on another thread.

    It holds a reference to every array the decode reads or writes, so an interrupted
    wait in :func:`build_tables` cannot free them while the other thread still uses them.
    """
    cdef object keep  # the arrays behind the pointers below
    cdef const int32_t[:, ::1] ptr_t
    cdef const uint8_t[::1] v
    cdef const uint8_t[::1] z
    cdef const int64_t* pe_off
    cdef const int64_t* n_rows
    cdef const uint8_t* vp
    cdef const uint8_t* zp
    cdef void* macs
    cdef void* scratch
    cdef int64_t* mac_start
    cdef const int64_t* col_entries
    cdef int64_t* cursor
    cdef void* first_row
    cdef void* last_row
    cdef bint r16
    cdef int mb, code_bits
    cdef Py_ssize_t block, jstart, jend
    cdef int64_t n_entries, out0
    cdef readonly int bad
    cdef readonly int64_t bad_at

    def run(self):
        """Decode the columns (without the GIL); the result is in ``bad`` and ``bad_at``."""
        cdef int64_t at = -1
        cdef int r
        with nogil:
            r = _fill_any(self.r16, self.mb, self.ptr_t, self.pe_off, self.n_rows, self.vp, self.zp, self.macs,
                          self.scratch, self.mac_start, self.col_entries, self.cursor, self.first_row,
                          self.last_row, self.code_bits, self.block, self.n_entries, self.jstart, self.jend,
                          self.out0, &at)
        self.bad = r
        self.bad_at = at


#: Entries from which :func:`build_tables` given a ``submit`` decodes the two halves of the
#: columns on two threads. Measured on the README's benchmark machine (2-core x86-64), builds
#: interleaved with one-thread ones: the real FC8 (1.05 M entries) 2.66 vs 2.74 ms (the other
#: thread's half ran at half speed after the core idled), the fc6-size layer (3.4 M) 0.80x, the
#: VGG-6-size layer (6.4 M) 0.67-0.70x.
SPLIT_MIN_ENTRIES = 1 << 21


cdef Py_ssize_t _split_column(const int64_t* col_entries, Py_ssize_t n_cols, Py_ssize_t block) noexcept nogil:
    """The block boundary nearest to half of the entries (0 < js < n_cols), or n_cols (no split)."""
    cdef int64_t total = 0, acc = 0, best = -1, d
    cdef Py_ssize_t j, js = n_cols
    for j in range(n_cols):
        total += col_entries[j]
    for j in range(n_cols):
        if j > 0 and j % block == 0:
            d = 2 * acc - total
            d = -d if d < 0 else d
            if best < 0 or d < best:
                best = d
                js = j
        acc += col_entries[j]
    return js


cdef int64_t _count_fillers(const uint8_t* v, const int64_t* pe_off, const int32_t[:, ::1] ptr_t,
                            Py_ssize_t js) noexcept nogil:
    """Fillers (code 0) among the entries of columns [0, js), every PE (each PE's are a prefix of its stream)."""
    cdef Py_ssize_t k, n_pe = ptr_t.shape[1]
    cdef int64_t e, n = 0
    cdef uint32_t c
    for k in range(n_pe):
        c = 0
        for e in range(pe_off[k], pe_off[k] + ptr_t[js, k]):
            c += v[e] == 0
        n += c
    return n


def last_rows(const int64_t[:, ::1] ptr, const uint8_t[::1] z):
    """Each PE's largest decoded local row: the most of ``sum(z + 1) - 1`` over its segments.

    The compiled twin of the NumPy inference in ``eiesim.format.eiedump`` (a dump does
    not store ``n_out``): one running sum of ``z + 1`` per PE, read at its segment
    boundaries, without a branch per segment. A segment's rows grow along it, so its
    last entry's row is its largest.

    Parameters
    ----------
    ptr : ndarray of int64, shape (n_pe, n_cols + 1)
        Per-PE local column pointers.
    z : ndarray of uint8, shape (n_entries,)
        Relative row indices, PE 0 first.

    Returns
    -------
    ndarray of int64, shape (n_pe,)
        -1 for a PE without entries.

    Raises
    ------
    ValueError
        A pointer row does not start at 0 or decreases, or the pointers' entry count is
        not ``len(z)`` (checked before the loop).
    """
    cdef Py_ssize_t n_pe = ptr.shape[0], n_cols = ptr.shape[1] - 1
    cdef Py_ssize_t k, j
    cdef int64_t e, base = 0, most = 0, n_k, d, best
    if n_pe < 1 or n_cols < 0:
        raise ValueError("ptr must be (n_pe, n_cols + 1)")
    for k in range(n_pe):
        if ptr[k, 0] != 0:
            raise ValueError(f"ptr[{k}, 0] must be 0")
        for j in range(n_cols):
            if ptr[k, j + 1] < ptr[k, j]:
                raise ValueError(f"ptr[{k}] decreases at column {j}")
        base += ptr[k, n_cols]
        if ptr[k, n_cols] > most:
            most = ptr[k, n_cols]
    if base != z.shape[0]:
        raise ValueError(f"the pointers count {base} entries, z holds {z.shape[0]}")
    out_arr = np.empty(n_pe, dtype=np.int64)
    csum_arr = np.empty(most + 1, dtype=np.int64)
    cdef int64_t[::1] out = out_arr
    cdef int64_t[::1] c = csum_arr
    base = 0
    with nogil:
        for k in range(n_pe):
            n_k = ptr[k, n_cols]
            c[0] = 0
            for e in range(n_k):
                c[e + 1] = c[e] + z[base + e] + 1
            best = 0
            for j in range(n_cols):
                d = c[ptr[k, j + 1]] - c[ptr[k, j]]
                best = d if d > best else best
            out[k] = best - 1
            base += n_k
    return out_arr


def build_tables(*, const int64_t[:, ::1] ptr, const uint8_t[::1] v, const uint8_t[::1] z,
                 Py_ssize_t n_out, int code_bits, int index_bits, submit=None):
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
    submit : callable, optional
        A thread pool's ``submit``: a layer of at least :data:`SPLIT_MIN_ENTRIES` entries
        and two blocks of columns decodes its second half of the columns (split at the
        block boundary nearest to half of the entries) on that pool while the calling
        thread decodes the first. The tables, and the first broken rule named, are those
        of one thread. A ``submit`` that returns None or raises RuntimeError (a pool shut
        down): this thread decodes both halves.

    Returns
    -------
    (LayerTables or None, int, int)
        The tables, ``BAD_NONE`` and -1; or ``None``, the ``BAD_*`` code of a
        broken rule and the entry (or PE) it was found at. The rules are those of
        ``CompressedLayer.check_format(full=True)``: pointers non-decreasing,
        ``v < 2**code_bits``, ``z < 2**index_bits``, fillers
        ``(0, 2**index_bits - 1)``, no filler at a segment's end, decoded rows
        inside the PE's rows; plus a PE's entry count below 2**31 (the int32
        pointer table). The passes run in that order, but the last two rules are
        checked slice by slice (blocks of 64 columns, PE by PE), so when a layer
        breaks several rules the code may name another one than ``check_format``
        would: callers run ``check_format`` for the message (``kernel_tables``
        returns None).

    Notes
    -----
    Three sequential passes: the pointers (blocked transpose, checks, entries
    per column); one branch-free sweep over ``v`` and ``z`` (vectorised by the
    compiler) for the code and index ranges, canonical fillers and the MAC
    count; then one branch-free decode of each segment in blocks of columns
    (:func:`_fill_entries`). Allocates only the tables (4 n_pe (n_cols + 1)
    bytes of pointers, 2 x 2 n_pe n_cols of rows (2 x 4 beyond 32,767 rows per
    PE), 16 (n_cols + 1) of per-column counts and 2, 4 or 8 bytes per MAC:
    see :class:`LayerTables`), an int64 count per column and one block's scratch.
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
    fill_arr = np.zeros(n_cols, dtype=np.int64)
    mac_start_arr = np.zeros(n_cols + 1, dtype=np.int64)
    pe_off_arr = np.zeros(n_pe + 1, dtype=np.int64)
    n_rows_arr = np.zeros(n_pe, dtype=np.int64)
    cdef int32_t[:, ::1] ptr_t = ptr_t_arr
    cdef int64_t[::1] pe_off = pe_off_arr
    cdef int64_t[::1] n_rows = n_rows_arr
    cdef int64_t[::1] mac_start = mac_start_arr
    cdef int64_t[::1] fill_v = fill_arr
    col_ent_arr = np.zeros(n_cols + 1, dtype=np.int64)
    cdef int64_t[::1] col_entries = col_ent_arr
    cdef int64_t[::1] cursor = np.zeros(block, dtype=np.int64)
    # no entries: the decode still reads entry 0 of each (empty) slice, behind a mask
    cdef const uint8_t* vp = &v[0] if n_entries > 0 else _NO_ENTRY
    cdef const uint8_t* zp = &z[0] if n_entries > 0 else _NO_ENTRY
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
                in_block = EIESIM_DECODE_SLACK * (j1 - j0)
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
    rdt = _row_dtype(n_out, n_pe)
    mdt = _mac_dtype(n_out, code_bits)
    first_arr = np.empty((n_cols, n_pe), dtype=rdt)
    last_arr = np.empty((n_cols, n_pe), dtype=rdt)
    macs_arr = np.empty(n_macs, dtype=mdt)
    cdef bint r16 = first_arr.dtype.itemsize == 2
    cdef int mb = macs_arr.dtype.itemsize
    cdef Py_ssize_t js = n_cols
    cdef int64_t macs_a = n_macs
    cdef _FillJob job = None
    if submit is not None and n_entries > 0 and n_entries >= SPLIT_MIN_ENTRIES and n_cols >= 2 * block:
        with nogil:
            js = _split_column(&col_entries[0], n_cols, block)
            if js < n_cols:  # the first half's MACs: its entries less its fillers
                macs_a = 0
                for k in range(n_pe):
                    macs_a += ptr_t[js, k]
                macs_a -= _count_fillers(vp, &pe_off[0], ptr_t, js)
    scratch_arr = np.empty(max_block + 1, dtype=mdt)
    cdef void* fr_p = cnp.PyArray_DATA(first_arr)
    cdef void* lr_p = cnp.PyArray_DATA(last_arr)
    cdef void* m_p = cnp.PyArray_DATA(macs_arr)
    cdef void* s_p = cnp.PyArray_DATA(scratch_arr)
    fut = None
    if js < n_cols:
        job = _FillJob.__new__(_FillJob)
        scratch_b = np.empty(max_block + 1, dtype=mdt)
        cursor_b = np.zeros(block, dtype=np.int64)
        job.keep = (ptr_t_arr, pe_off_arr, n_rows_arr, macs_arr, scratch_b, mac_start_arr, col_ent_arr, cursor_b,
                    first_arr, last_arr)
        job.ptr_t, job.v, job.z = ptr_t, v, z
        job.pe_off, job.n_rows, job.vp, job.zp = &pe_off[0], &n_rows[0], vp, zp
        job.macs, job.scratch = m_p, cnp.PyArray_DATA(scratch_b)
        job.mac_start, job.col_entries = &mac_start[0], &col_entries[0]
        job.cursor = <int64_t*>cnp.PyArray_DATA(cursor_b)
        job.first_row, job.last_row = fr_p, lr_p
        job.r16, job.mb, job.code_bits, job.block = r16, mb, code_bits, block
        job.n_entries, job.jstart, job.jend, job.out0 = n_entries, js, n_cols, macs_a
        job.bad, job.bad_at = BAD_NONE, -1
        try:
            fut = submit(job.run)
        except RuntimeError:  # a pool shut down (interpreter exit): this thread decodes both halves
            fut = None
    with nogil:
        bad = _fill_any(r16, mb, ptr_t, &pe_off[0], &n_rows[0], vp, zp, m_p, s_p, &mac_start[0], &col_entries[0],
                        &cursor[0], fr_p, lr_p, code_bits, block, n_entries, 0, js, 0, &bad_at)
    if job is not None:
        if fut is None:
            job.run()
        else:
            fut.result()
        if bad == BAD_NONE and job.bad != BAD_NONE:
            bad, bad_at = job.bad, job.bad_at
    mac_start[n_cols] = n_macs
    del scratch_arr
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
    t.ptr_t, t.first_row, t.last_row, t.col_fillers = ptr_t_arr, first_arr, last_arr, fill_arr
    t.mac_start, t.macs = mac_start_arr, macs_arr
    t.col_entries = col_ent_arr[:n_cols]
    t._bind(False)
    return t, BAD_NONE, -1




# ----------------------------------------------------------------------------- one input
# The per-broadcast loop over the PEs, in C: restrict pointers and branch-free
# selects let the compiler keep several PEs in one SIMD register (int32 state: 4
# per SSE2 register, 8 with AVX2). With GCC on x86-64 glibc the loop is built
# twice, for AVX2 and for the x86-64 baseline, and the loader picks one on the
# running CPU (``target_clones``): the wheel stays portable. Integer work only,
# so every version gives the same bits.
cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \\
        && defined(__GLIBC__) && !defined(EIESIM_NO_CLONES)
    #define EIESIM_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define EIESIM_CLONES
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define EIESIM_PREFETCH(P) __builtin_prefetch((P), 0, 3)
    #else
    #define EIESIM_PREFETCH(P) ((void)(P))
    #endif
    /* Broadcasts ahead whose table rows and MACs are fetched early. */
    #ifndef EIESIM_PF_COLS
    #define EIESIM_PF_COLS 2
    #endif
    /* Hint the cache to fetch bytes [p, p + n). */
    static inline void eiesim_prefetch(const void* p, Py_ssize_t n) {
        const char* c = (const char*)p;
        const char* end = c + n;
        for (; c < end; c += 64) EIESIM_PREFETCH(c);
    }
    /* The loop over the PEs; L0, L1: the spmat lines of a column's first and last entry. */
    #define EIESIM_PE_STEPS(ST, L0, L1)                                                          \\
        for (k = 0; k < n_pe; k++) {                                                             \\
            ST f = fin[k], p = f > b1 ? f : b1;                                                  \\
            ST e0 = p0[k], e1 = p1[k], n = e1 - e0, w = n > 1 ? n : 1;                           \\
            ST nz = -(ST)(n > 0), l0 = (L0), l1 = (L1), lk = lreg[k];                            \\
            take[k] = p;                                                                         \\
            pmax = p > pmax ? p : pmax;                                                          \\
            byp += (ST)(f == p) & (ST)((ST)fr[k] == last_mac[k]);                                \\
            last_mac[k] = (ST)lr[k];                                                             \\
            busy[k] += w;                                                                        \\
            fin[k] = p + w;                                                                      \\
            lines += (l1 - l0 + (ST)(l0 != lk)) & nz;                                            \\
            lreg[k] = (l1 & nz) | (lk & ~nz);                                                    \\
        }
    /* Broadcast of a column at cycle b1 - 1 reaching every PE k (see the module docstring):
       take cycle p = max(b1, fin), work w = max(1, entries), bypass when back to back on
       the previous MAC's row, line reads (line register kept across columns). Returns the
       latest take cycle; adds bypasses, entries and line reads to acc[0..2]. ls >= 0:
       lines of 2**ls entries, else of epl entries. */
    #define EIESIM_PE_LOOP(NAME, ST, ROW)                                                        \\
    static inline ST NAME(Py_ssize_t n_pe, ST b1, const int32_t* __restrict p0,                 \\
            const int32_t* __restrict p1, const ROW* __restrict fr, const ROW* __restrict lr,  \\
            ST* __restrict fin, ST* __restrict take, ST* __restrict last_mac,                    \\
            ST* __restrict lreg, ST* __restrict busy, int ls, int64_t epl,                       \\
            int64_t* __restrict acc) {                                                           \\
        ST pmax = -1, byp = 0, lines = 0;                                                      \\
        Py_ssize_t k;                                                                            \\
        if (ls >= 0) {                                                                           \\
            EIESIM_PE_STEPS(ST, e0 >> ls, (e1 - 1) >> ls)                                        \\
        } else {                                                                                 \\
            EIESIM_PE_STEPS(ST, e0 / epl, (e1 - 1) / epl)                                        \\
        }                                                                                        \\
        acc[0] += byp; acc[2] += lines;                                                          \\
        return pmax;                                                                             \\
    }
    /* A CCU stall from cycle ready to b - 1: PE k's queue was full until min(take_k(i - D), b - 1);
       counted in the state type (the timing bound covers it), branch-free so it vectorises. */
    #define EIESIM_STALL(NAME, ST)                                                                \\
    static inline void NAME(Py_ssize_t n_pe, const ST* __restrict ring, ST ready, ST b,          \\
                     ST* __restrict stall) {                                                     \\
        Py_ssize_t k;                                                                            \\
        ST bm1 = b - 1, r1 = ready - 1;                                                          \\
        for (k = 0; k < n_pe; k++) {                                                             \\
            ST lim = ring[k] < bm1 ? ring[k] : bm1, d = lim - r1;                                \\
            stall[k] += d > 0 ? d : 0;                                                           \\
        }                                                                                        \\
    }
    /* float32 arithmetic pass over the broadcast columns bc[0..n_bc): out[row] += cb[code] * a, the
       product rounded to float32 before the add (no FMA: -ffp-contract=off). A column with at least
       2 * 2**code_bits MACs first forms its 2**code_bits products once (the same float32 multiply, so
       the same bits as forming each at its MAC), then runs 8 MACs per step; rows within a column
       are distinct, so the step's order is free. SH: the code width (a constant for the common
       4-bit codebook). The MACs of the column EIESIM_PF_COLS broadcasts ahead are fetched early. */
    #define EIESIM_ARITH_COLUMN(MT, SH)                                                          \\
        if (e1 - e >= (2 << (SH))) {                                                             \\
            const MT cm = (MT)((1u << (SH)) - 1);                                                \\
            for (c = 0; c < (1 << (SH)); c++) prod[c] = cb[c] * a;                               \\
            for (; e + 8 <= e1; e += 8) {                                                        \\
                MT m0 = macs[e], m1 = macs[e + 1], m2 = macs[e + 2], m3 = macs[e + 3];           \\
                MT m4 = macs[e + 4], m5 = macs[e + 5], m6 = macs[e + 6], m7 = macs[e + 7];       \\
                out[m0 >> (SH)] += prod[m0 & cm];                                                \\
                out[m1 >> (SH)] += prod[m1 & cm];                                                \\
                out[m2 >> (SH)] += prod[m2 & cm];                                                \\
                out[m3 >> (SH)] += prod[m3 & cm];                                                \\
                out[m4 >> (SH)] += prod[m4 & cm];                                                \\
                out[m5 >> (SH)] += prod[m5 & cm];                                                \\
                out[m6 >> (SH)] += prod[m6 & cm];                                                \\
                out[m7 >> (SH)] += prod[m7 & cm];                                                \\
            }                                                                                    \\
            for (; e < e1; e++) out[macs[e] >> (SH)] += prod[macs[e] & cm];                      \\
        } else {                                                                                 \\
            const MT cm = (MT)((1u << (SH)) - 1);                                                \\
            for (; e < e1; e++) out[macs[e] >> (SH)] += cb[macs[e] & cm] * a;                    \\
        }
    #define EIESIM_ARITH_F32(NAME, MT)                                                           \\
    static void NAME(float* __restrict out, const float* __restrict cb, const float* __restrict act,\\
                     const MT* __restrict macs, const int64_t* __restrict mac_start,             \\
                     Py_ssize_t n_bc, int code_bits, const int64_t* __restrict bc, int pf) {     \\
        float prod[256];                                                                         \\
        Py_ssize_t i;                                                                            \\
        int c;                                                                                   \\
        for (i = 0; i < n_bc; i++) {                                                             \\
            int64_t j = bc[i], e = mac_start[j], e1 = mac_start[j + 1];                          \\
            float a = act[j];                                                                    \\
            if (pf && i + EIESIM_PF_COLS < n_bc) {                                               \\
                int64_t jn = bc[i + EIESIM_PF_COLS];                                             \\
                eiesim_prefetch(macs + mac_start[jn],                                            \\
                                (mac_start[jn + 1] - mac_start[jn]) * sizeof(MT));               \\
            }                                                                                    \\
            if (code_bits == 4) {                                                                \\
                EIESIM_ARITH_COLUMN(MT, 4)                                                       \\
            } else {                                                                             \\
                EIESIM_ARITH_COLUMN(MT, code_bits)                                               \\
            }                                                                                    \\
        }                                                                                        \\
    }
    EIESIM_ARITH_F32(eiesim_arith_f32_16, uint16_t)
    EIESIM_ARITH_F32(eiesim_arith_f32_32, uint32_t)
    EIESIM_ARITH_F32(eiesim_arith_f32_64, uint64_t)
    EIESIM_STALL(eiesim_stall_32, int32_t)
    EIESIM_STALL(eiesim_stall_64, int64_t)
    EIESIM_PE_LOOP(eiesim_pe_loop_32_16, int32_t, int16_t)
    EIESIM_PE_LOOP(eiesim_pe_loop_32_32, int32_t, int32_t)
    EIESIM_PE_LOOP(eiesim_pe_loop_64_16, int64_t, int16_t)
    EIESIM_PE_LOOP(eiesim_pe_loop_64_32, int64_t, int32_t)
    /* Trace records of one input, filled by the timing pass (NULL: tracing off). */
    typedef struct {
        int64_t* bc;        /* (n_bc, 3): broadcast cycle b, first cycle the CCU held it (ready), column j */
        int64_t* take;      /* (n_bc, n_pe): cycle at whose end PE k took broadcast i off its queue */
        int64_t* loads;     /* (n_groups + 1,): cycles of the LNZD group loads */
        int64_t cap_bc;     /* rows of bc / take */
        int64_t n_bc;       /* out: broadcasts recorded */
        int64_t n_loads;    /* out: group loads recorded */
    } eiesim_trace;
    /* The timing pass over one input's LNZD slots (the contract: _timing_any in the Cython part);
       cnt receives broadcasts, stall cycles, group loads, line reads, entries, fillers, bypasses.
       One function per state and row type, built per target (target_clones) with the loops over
       the PEs inlined: one dispatch per input instead of one call per broadcast. */
    #define EIESIM_TIMING(NAME, ST, ROW, PE_LOOP, STALL)                                         \\
    EIESIM_CLONES static int64_t NAME(const int32_t* __restrict ptr_t, const ROW* __restrict first_row,\\
            const ROW* __restrict last_row, const int64_t* __restrict col_fillers,               \\
            const int64_t* __restrict col_entries, Py_ssize_t n_pe, Py_ssize_t n_act,            \\
            Py_ssize_t n_groups, int fifo_depth,                                                 \\
            int64_t epl, int ls, const int64_t* __restrict slot_col, const int64_t* __restrict bc,\\
            Py_ssize_t n_bcast, ST* st, int64_t* __restrict busy, int64_t* __restrict stall,     \\
            int64_t* __restrict cnt, eiesim_trace* tr, int pf) {                                 \\
        Py_ssize_t ring = fifo_depth < n_groups * n_pe ? fifo_depth : n_groups * n_pe;           \\
        Py_ssize_t g, q, k;                                                                      \\
        int64_t t, n_bc = 0, j, jn, ready, b = 0, slot = 0, end_cycle, e_stall = 0, lim;         \\
        int64_t c_stall = 0, c_loads, c_fill = 0, c_ent = 0;                                     \\
        int64_t acc[3] = {0, 0, 0};                                                              \\
        ST* fin = st;                                                                            \\
        ST* line_reg = st + n_pe;                                                                \\
        ST* last_mac = st + 2 * n_pe;                                                            \\
        ST* busy_in = st + 3 * n_pe;                                                             \\
        ST* stall_in = st + 4 * n_pe;                                                            \\
        ST* pop_max = st + 5 * n_pe;                                                             \\
        ST* e_take;                                                                              \\
        ST* pop_ring;                                                                            \\
        ST* ring_row;                                                                            \\
        int loaded;                                                                              \\
        if (ring < 1) ring = 1;                                                                  \\
        e_take = pop_max + ring;                                                                 \\
        pop_ring = e_take + ring;                                                                \\
        for (k = 0; k < n_pe; k++) {                                                             \\
            fin[k] = -1; line_reg[k] = -1; last_mac[k] = -2; busy_in[k] = 0; stall_in[k] = 0;    \\
        }                                                                                        \\
        t = 1;  /* cycle 0: the empty LNZD register loads group 0 */                             \\
        c_loads = n_groups > 0 ? 1 : 0;                                                          \\
        if (tr != NULL && n_groups > 0) { tr->loads[0] = 0; tr->n_loads = 1; }                   \\
        for (g = 0; g < n_groups; g++) {                                                         \\
            loaded = 0;                                                                          \\
            for (q = 0; q < n_pe; q++) {                                                         \\
                j = slot_col[g * n_pe + q];                                                      \\
                if (j < 0) continue;                                                             \\
                if (pf && n_bc + EIESIM_PF_COLS < n_bcast) {  /* a later column's rows, early */ \\
                    jn = bc[n_bc + EIESIM_PF_COLS];                                              \\
                    eiesim_prefetch(ptr_t + jn * n_pe, 2 * n_pe * sizeof(int32_t));              \\
                    eiesim_prefetch(first_row + jn * n_pe, n_pe * sizeof(ROW));                  \\
                    eiesim_prefetch(last_row + jn * n_pe, n_pe * sizeof(ROW));                   \\
                }                                                                                \\
                /* CCU: wait until no queue is full */                                           \\
                ready = t;                                                                       \\
                b = ready;                                                                       \\
                ring_row = pop_ring + slot * n_pe;                                               \\
                if (n_bc >= fifo_depth && pop_max[slot] + 1 > b) {                               \\
                    b = pop_max[slot] + 1;                                                       \\
                    c_stall += b - ready;                                                        \\
                    STALL(n_act, ring_row, (ST)ready, (ST)b, stall_in);                          \\
                    lim = e_take[slot] < b - 1 ? e_take[slot] : b - 1;                           \\
                    e_stall += lim - ready + 1 > 0 ? lim - ready + 1 : 0;                        \\
                }                                                                                \\
                t = b + 1;                                                                       \\
                if (q == n_pe - 1) {                                                             \\
                    loaded = 1;                                                                  \\
                    c_loads++;                                                                   \\
                    if (tr != NULL) { tr->loads[tr->n_loads] = b; tr->n_loads++; }               \\
                }                                                                                \\
                /* every PE takes column j and works through its slice */                        \\
                c_fill += col_fillers[j];                                                        \\
                c_ent += col_entries[j];                                                         \\
                pop_max[slot] = PE_LOOP(n_act, (ST)(b + 1), ptr_t + j * n_pe, ptr_t + (j + 1) * n_pe,\\
                                        first_row + j * n_pe, last_row + j * n_pe, fin, ring_row,\\
                                        last_mac, line_reg, busy_in, ls, epl, acc);              \\
                /* a PE without rows (k >= n_act) takes each activation at once: p = b + 1 */    \\
                e_take[slot] = (ST)(b + 1);                                                      \\
                if (n_act < n_pe && pop_max[slot] < (ST)(b + 1)) pop_max[slot] = (ST)(b + 1);    \\
                if (tr != NULL && n_bc < tr->cap_bc) {  /* event hook: the broadcast, every take */\\
                    tr->bc[3 * n_bc] = b;                                                        \\
                    tr->bc[3 * n_bc + 1] = ready;                                                \\
                    tr->bc[3 * n_bc + 2] = j;                                                    \\
                    for (k = 0; k < n_pe; k++)                                                   \\
                        tr->take[n_bc * n_pe + k] = k < n_act ? ring_row[k] : b + 1;             \\
                    tr->n_bc = n_bc + 1;                                                         \\
                }                                                                                \\
                n_bc++;                                                                          \\
                if (++slot == fifo_depth) slot = 0;                                              \\
            }                                                                                    \\
            if (!loaded) {  /* the group has no further non-zero: loading the next costs a cycle */\\
                if (tr != NULL) { tr->loads[tr->n_loads] = t; tr->n_loads++; }                   \\
                t++;                                                                             \\
                c_loads++;                                                                       \\
            }                                                                                    \\
        }                                                                                        \\
        cnt[0] = n_bc; cnt[1] = c_stall; cnt[2] = c_loads; cnt[3] = acc[2];                      \\
        cnt[4] = c_ent; cnt[5] = c_fill; cnt[6] = acc[0];                                        \\
        end_cycle = t - 1;                                                                       \\
        for (k = 0; k < n_act; k++) {                                                            \\
            busy[k] += busy_in[k];                                                               \\
            stall[k] += stall_in[k];                                                             \\
            if (fin[k] > end_cycle) end_cycle = fin[k];                                          \\
        }                                                                                        \\
        for (; k < n_pe; k++) {  /* busy one cycle per broadcast, last busy cycle b + 1 */      \\
            busy[k] += n_bc;                                                                     \\
            stall[k] += e_stall;                                                                 \\
        }                                                                                        \\
        if (n_act < n_pe && n_bc > 0 && b + 2 > end_cycle) end_cycle = b + 2;                    \\
        return end_cycle + 1;                                                                    \\
    }
    EIESIM_TIMING(eiesim_timing_32_16, int32_t, int16_t, eiesim_pe_loop_32_16, eiesim_stall_32)
    EIESIM_TIMING(eiesim_timing_32_32, int32_t, int32_t, eiesim_pe_loop_32_32, eiesim_stall_32)
    EIESIM_TIMING(eiesim_timing_64_16, int64_t, int16_t, eiesim_pe_loop_64_16, eiesim_stall_64)
    EIESIM_TIMING(eiesim_timing_64_32, int64_t, int32_t, eiesim_pe_loop_64_32, eiesim_stall_64)
    """
    void eiesim_arith_f32_16(float*, const float*, const float*, const uint16_t*, const int64_t*, Py_ssize_t, int,
                             const int64_t*, int) noexcept nogil
    void eiesim_arith_f32_32(float*, const float*, const float*, const uint32_t*, const int64_t*, Py_ssize_t, int,
                             const int64_t*, int) noexcept nogil
    void eiesim_arith_f32_64(float*, const float*, const float*, const uint64_t*, const int64_t*, Py_ssize_t, int,
                             const int64_t*, int) noexcept nogil
    ctypedef struct Trace "eiesim_trace":
        # event records of one input, filled by the timing pass (NULL: tracing off)
        int64_t* bc         # (n_bc, 3): broadcast cycle b, first cycle the CCU held it (ready), column j
        int64_t* take       # (n_bc, n_pe): cycle at whose end PE k took broadcast i off its queue
        int64_t* loads      # (n_groups + 1,): cycles of the LNZD group loads
        int64_t cap_bc      # rows of bc / take
        int64_t n_bc        # out: broadcasts recorded
        int64_t n_loads     # out: group loads recorded
    int64_t eiesim_timing_32_16(const int32_t*, const int16_t*, const int16_t*, const int64_t*,
                                  const int64_t*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int64_t, int, const int64_t*,
                                  const int64_t*, Py_ssize_t, int32_t*, int64_t*, int64_t*, int64_t*, Trace*,
                                  int) noexcept nogil
    int64_t eiesim_timing_32_32(const int32_t*, const int32_t*, const int32_t*, const int64_t*,
                                  const int64_t*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int64_t, int, const int64_t*,
                                  const int64_t*, Py_ssize_t, int32_t*, int64_t*, int64_t*, int64_t*, Trace*,
                                  int) noexcept nogil
    int64_t eiesim_timing_64_16(const int32_t*, const int16_t*, const int16_t*, const int64_t*,
                                  const int64_t*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int64_t, int, const int64_t*,
                                  const int64_t*, Py_ssize_t, int64_t*, int64_t*, int64_t*, int64_t*, Trace*,
                                  int) noexcept nogil
    int64_t eiesim_timing_64_32(const int32_t*, const int32_t*, const int32_t*, const int64_t*,
                                  const int64_t*, Py_ssize_t, Py_ssize_t, Py_ssize_t, int, int64_t, int, const int64_t*,
                                  const int64_t*, Py_ssize_t, int64_t*, int64_t*, int64_t*, int64_t*, Trace*,
                                  int) noexcept nogil


cdef void _arith(acc_t* out, const acc_t* cb, const acc_t* act, const mac_t* macs,
                 const int64_t* mac_start, Py_ssize_t n_bc, int code_bits,
                 const FixedMode* fm, const int64_t* bc, int64_t* c) noexcept nogil:
    """The arithmetic pass: the broadcast columns ``bc[0:n_bc]``' MACs, one contiguous run per column."""
    cdef Py_ssize_t i
    cdef int64_t j, e, e1
    cdef mac_t m, cmask = (1 << code_bits) - 1
    cdef acc_t a
    cdef int64_t sat = 0
    for i in range(n_bc):
        j = bc[i]
        a = act[j]
        e1 = mac_start[j + 1]
        for e in range(mac_start[j], e1):
            m = macs[e]
            out[m >> code_bits] = _mac(out[m >> code_bits], cb[m & cmask], a, fm, &sat)
    c[C_SATURATIONS] += sat


cdef int64_t _timing_any(LayerTables t, Py_ssize_t n_groups, int fifo_depth, int64_t entries_per_line,
                         int line_shift, const int64_t* slot_col, const int64_t* bc, Py_ssize_t n_bcast,
                         void* st, int64_t* busy, int64_t* stall, int64_t* c, Trace* tr) noexcept nogil:
    """The timing pass over one input's LNZD slots (C: ``EIESIM_TIMING``); returns the last CCU/PE cycle + 1.

    ``slot_col`` holds the input's LNZD slots (column or -1), ``bc[0:n_bcast]`` its
    broadcast columns in slot order. ``st`` is work space of ``5 n_pe + ring (n_pe + 2)``
    values (ring = min(D, slots)): each PE's last busy cycle, line register, previous MAC
    row, busy and stall counts, then for each of the last D broadcasts the latest take
    cycle, the take cycle of the PEs without rows (``k >= n_active``) and every PE's take
    cycle; int32 when :func:`timing_bound` allows it, else int64. Busy and stall
    cycles are added to ``busy`` and ``stall``, the counters to ``c``.

    ``tr`` (NULL when tracing is off) receives the events this pass computes: per
    broadcast (b, ready, j) and every PE's take cycle p, and each group load's cycle;
    the off path costs one predicted-not-taken branch per broadcast and per group.
    """
    cdef int64_t cnt[7]
    cdef int64_t end
    cdef const int16_t* fr16 = <const int16_t*>t.p_fr
    cdef const int16_t* lr16 = <const int16_t*>t.p_lr
    cdef const int32_t* fr32 = <const int32_t*>t.p_fr
    cdef const int32_t* lr32 = <const int32_t*>t.p_lr
    if t.timing_int64 and t.row_bytes == 2:
        end = eiesim_timing_64_16(t.p_ptr, fr16, lr16, t.p_fill, t.p_ent, t.n_pe, t.n_active, n_groups, fifo_depth,
                                  entries_per_line, line_shift, slot_col, bc, n_bcast, <int64_t*>st, busy, stall,
                                  cnt, tr, t.prefetch)
    elif t.timing_int64:
        end = eiesim_timing_64_32(t.p_ptr, fr32, lr32, t.p_fill, t.p_ent, t.n_pe, t.n_active, n_groups, fifo_depth,
                                  entries_per_line, line_shift, slot_col, bc, n_bcast, <int64_t*>st, busy, stall,
                                  cnt, tr, t.prefetch)
    elif t.row_bytes == 2:
        end = eiesim_timing_32_16(t.p_ptr, fr16, lr16, t.p_fill, t.p_ent, t.n_pe, t.n_active, n_groups, fifo_depth,
                                  entries_per_line, line_shift, slot_col, bc, n_bcast, <int32_t*>st, busy, stall,
                                  cnt, tr, t.prefetch)
    else:
        end = eiesim_timing_32_32(t.p_ptr, fr32, lr32, t.p_fill, t.p_ent, t.n_pe, t.n_active, n_groups, fifo_depth,
                                  entries_per_line, line_shift, slot_col, bc, n_bcast, <int32_t*>st, busy, stall,
                                  cnt, tr, t.prefetch)
    c[C_BROADCASTS] += cnt[0]
    c[C_CCU_STALL] += cnt[1]
    c[C_GROUP_LOADS] += cnt[2]
    c[C_PTR_READS] += cnt[0] * t.n_pe
    c[C_LINE_READS] += cnt[3]
    c[C_ENTRIES] += cnt[4]
    c[C_FILLERS] += cnt[5]
    c[C_MACS] += cnt[4] - cnt[5]
    c[C_ACC_WRITES] += cnt[4] - cnt[5]
    c[C_BYPASSES] += cnt[6]
    return end


cdef void _arith_any(LayerTables t, bint fixed, void* out, const void* cb, const void* act, Py_ssize_t n_bc,
                     const FixedMode* fm, const int64_t* bc, int64_t* c) noexcept nogil:
    """:func:`_arith` on the tables' MAC type, in float32 or fixed16."""
    if fixed:
        if t.mac_bytes == 2:
            _arith[int64_t, uint16_t](<int64_t*>out, <const int64_t*>cb, <const int64_t*>act,
                                      <const uint16_t*>t.p_macs, t.p_ms, n_bc, t.code_bits, fm, bc, c)
        elif t.mac_bytes == 4:
            _arith[int64_t, uint32_t](<int64_t*>out, <const int64_t*>cb, <const int64_t*>act,
                                      <const uint32_t*>t.p_macs, t.p_ms, n_bc, t.code_bits, fm, bc, c)
        else:
            _arith[int64_t, uint64_t](<int64_t*>out, <const int64_t*>cb, <const int64_t*>act,
                                      <const uint64_t*>t.p_macs, t.p_ms, n_bc, t.code_bits, fm, bc, c)
    elif t.mac_bytes == 2:
        eiesim_arith_f32_16(<float*>out, <const float*>cb, <const float*>act, <const uint16_t*>t.p_macs, t.p_ms,
                            n_bc, t.code_bits, bc, t.prefetch)
    elif t.mac_bytes == 4:
        eiesim_arith_f32_32(<float*>out, <const float*>cb, <const float*>act, <const uint32_t*>t.p_macs, t.p_ms,
                            n_bc, t.code_bits, bc, t.prefetch)
    else:
        eiesim_arith_f32_64(<float*>out, <const float*>cb, <const float*>act, <const uint64_t*>t.p_macs, t.p_ms,
                            n_bc, t.code_bits, bc, t.prefetch)


cdef inline Py_ssize_t _state_size(Py_ssize_t n_pe, Py_ssize_t ring) noexcept nogil:
    """Values of :func:`_timing_any`'s work space (int64-sized, whatever the state type)."""
    return 5 * n_pe + (ring if ring > 0 else 1) * (n_pe + 2)


cdef inline int _line_shift(int entries_per_line) noexcept nogil:
    cdef int x
    for x in range(31):
        if (1 << x) == entries_per_line:
            return x
    return -1


cdef int _fill_slots(int64_t* slot_col, Py_ssize_t n_slots, Py_ssize_t n_in, Py_ssize_t n_real_groups,
                     Py_ssize_t n_pe, bint has_bias, const float* act_f, const int64_t* act_i) noexcept nogil:
    """The LNZD view of one input: groups of N slots, non-zero activations, then the bias group.

    ``act_i`` (fixed16, else NULL) is the activation the datapath holds: the LNZD tests it.
    ``slot_col`` holds ``2 n_slots`` values: the slots (column or -1), then the broadcast
    columns in slot order (the non-zeros ascending, then the bias column), the list both
    passes walk. Returns the non-zero count (bias excluded).
    """
    cdef int64_t* bc = slot_col + n_slots
    cdef Py_ssize_t jj
    cdef int nz = 0
    for jj in range(n_slots):
        slot_col[jj] = -1
    if act_i != NULL:
        for jj in range(n_in):
            if act_i[jj] != 0:
                slot_col[jj] = jj
                bc[nz] = jj
                nz += 1
    else:
        for jj in range(n_in):
            if act_f[jj] != 0:
                slot_col[jj] = jj
                bc[nz] = jj
                nz += 1
    if has_bias:
        slot_col[n_real_groups * n_pe] = n_in
        bc[nz] = n_in
    return nz


cdef class _OneInput:
    """One float32 input's work space and timing pass (``run_one``): it owns every buffer the two
    passes share, so a timing pass running on another thread never outlives them."""
    cdef LayerTables tables
    cdef Py_ssize_t n_groups, n_slots, n_bc
    cdef int fifo_depth, line_shift
    cdef int64_t epl, cycles
    cdef float* act
    cdef int64_t* slot_col
    cdef void* st
    cdef int64_t c[N_COUNTERS]
    cdef object busy_arr, stall_arr

    def __cinit__(self, LayerTables tables, Py_ssize_t n_groups, int fifo_depth, int entries_per_line):
        cdef Py_ssize_t n_pe = tables.n_pe, jj
        self.tables = tables
        self.n_groups = n_groups
        self.n_slots = n_groups * n_pe
        self.fifo_depth = fifo_depth
        self.epl = entries_per_line
        self.line_shift = _line_shift(entries_per_line)
        ring = fifo_depth if fifo_depth < self.n_slots else self.n_slots
        self.act = <float*>malloc((tables.n_cols if tables.n_cols > 0 else 1) * sizeof(float))
        self.slot_col = <int64_t*>malloc((2 * self.n_slots if self.n_slots > 0 else 1) * sizeof(int64_t))
        self.st = malloc(_state_size(n_pe, ring) * sizeof(int64_t))
        if self.act == NULL or self.slot_col == NULL or self.st == NULL:
            raise MemoryError()
        for jj in range(N_COUNTERS):
            self.c[jj] = 0
        self.busy_arr = np.zeros(n_pe, dtype=np.int64)
        self.stall_arr = np.zeros(n_pe, dtype=np.int64)

    def __dealloc__(self):
        free(self.act)
        free(self.slot_col)
        free(self.st)

    def __call__(self):
        """The timing pass (without the GIL): cycles, busy, stall and the timing counters."""
        cdef int64_t* busy = <int64_t*>cnp.PyArray_DATA(self.busy_arr)
        cdef int64_t* stall = <int64_t*>cnp.PyArray_DATA(self.stall_arr)
        with nogil:
            self.cycles = _timing_any(self.tables, self.n_groups, self.fifo_depth, self.epl, self.line_shift,
                                      self.slot_col, self.slot_col + self.n_slots, self.n_bc, self.st, busy,
                                      stall, self.c, NULL)


def run_one(LayerTables tables, const float[:] a, const float[::1] codebook, Py_ssize_t n_in, bint has_bias,
            int fifo_depth, int entries_per_line, submit=None, overlap_min=None):
    """Simulate one float32 input vector: the warm single-input path of ``simulate``.

    Parameters
    ----------
    tables : LayerTables
    a : float32 (n_in,)
        Input activations (any stride); the bias column's 1.0 is added here.
    codebook : float32 (>= 2**code_bits,)
    n_in : int
        Real input columns; ``n_in + has_bias`` must be the tables' columns.
    has_bias : bool
    fifo_depth, entries_per_line : int >= 1
        Activation queue depth D, spmat entries per SRAM line L.
    submit : callable, optional
        ``submit(fn) -> future`` (e.g. ``ThreadPoolExecutor.submit``): the timing pass runs
        through it, on another thread, while this thread runs the arithmetic pass; both
        release the GIL and share nothing they write, so the results are those of the
        serial order. None, a ``submit`` that returns None or raises RuntimeError (a pool
        shut down): both passes on this thread.
    overlap_min : (int, int), optional
        ``(min_steps, min_macs)``: use ``submit`` only when this input's broadcasts (the
        bias column's included) times the PEs that own rows reach ``min_steps`` and the
        broadcasts times the layer's mean MACs per column reach ``min_macs``
        (``eiesim.sim.engine.OVERLAP_MIN_STEPS``); counted from the LNZD view this call
        builds anyway. None: ``submit`` whenever given.

    Returns
    -------
    tuple or None
        ``(cycles, output, busy, stall, counters, nonzeros, nonfinite)``: int cycles
        without the drain, float32 (n_out,) W a + b, int64 (n_pe,) busy and stall
        cycles, a tuple of the 11 counters in the order of
        ``eiesim.sim.result.COUNTER_NAMES``, the non-zero activations and the outputs
        that are inf or NaN (an accumulator passed the float32 range); ``None``
        (nothing simulated) when a value of ``a`` is not finite: the caller's check
        names it.

    Raises
    ------
    ValueError
        A shape or size that does not match the tables.
    """
    cdef Py_ssize_t n_pe = tables.n_pe, n_cols = tables.n_cols
    cdef Py_ssize_t n_real_groups = (n_in + n_pe - 1) // n_pe
    cdef Py_ssize_t n_groups = n_real_groups + (1 if has_bias else 0)
    cdef Py_ssize_t jj
    cdef int nz
    cdef Py_ssize_t n_bad = 0
    cdef bint finite = True
    cdef FixedMode fm
    cdef int64_t c_arith[N_COUNTERS]  # the arithmetic pass's counter (saturations: fixed16 only)
    for jj in range(N_COUNTERS):
        c_arith[jj] = 0
    if fifo_depth < 1 or entries_per_line < 1:
        raise ValueError("fifo_depth and entries_per_line must be positive")
    if n_in + (1 if has_bias else 0) != n_cols or a.shape[0] != n_in:
        raise ValueError("n_in and has_bias do not match the layer's columns")
    if codebook.shape[0] < (1 << tables.code_bits):
        raise ValueError("codebook is shorter than 2**code_bits")
    cdef _OneInput job = _OneInput(tables, n_groups, fifo_depth, entries_per_line)
    out_arr = np.zeros(tables.n_out, dtype=np.float32)
    cdef float* out = <float*>cnp.PyArray_DATA(out_arr)
    cdef float* act = job.act
    cdef int64_t* bc = job.slot_col + job.n_slots
    with nogil:
        for jj in range(n_in):
            act[jj] = a[jj]
            finite &= act[jj] - act[jj] == 0  # false for inf and nan
        if finite:
            if has_bias:
                act[n_in] = 1.0
            nz = _fill_slots(job.slot_col, job.n_slots, n_in, n_real_groups, n_pe, has_bias, act, NULL)
            job.n_bc = nz + (1 if has_bias else 0)
    if not finite:
        return None
    if submit is not None and overlap_min is not None:  # Python ints: the products may pass int64
        min_steps, min_macs = overlap_min
        if (job.n_bc * min(n_pe, tables.n_out) < min_steps
                or job.n_bc * tables.macs.size < min_macs * n_cols):
            submit = None
    fut = None
    if submit is not None:
        try:
            fut = submit(job)
        except RuntimeError:  # a pool shut down (interpreter exit): this thread runs the timing pass
            fut = None
    if fut is None:
        job()
    with nogil:  # the arithmetic pass (fm unused in float32) and the non-finite outputs
        _arith_any(tables, False, out, &codebook[0], act, job.n_bc, &fm, bc, c_arith)
        for jj in range(tables.n_out):
            n_bad += not (out[jj] - out[jj] == 0)
    if fut is not None:
        fut.result()  # the job owns the shared buffers: an interrupted wait leaves them to it
    return (job.cycles, out_arr, job.busy_arr, job.stall_arr, tuple([job.c[jj] for jj in range(N_COUNTERS)]), nz,
            n_bad)


def run_batch(LayerTables tables, *, act, act_q, codebook, codebook_q, bint fixed, fixed_mode,
              bint has_bias, Py_ssize_t n_in, int fifo_depth, int entries_per_line,
              out_f, out_q, int64_t[::1] cycles, int64_t[::1] busy, int64_t[::1] stall,
              int64_t[::1] counters, Py_ssize_t trace_input=-1, trace_bc=None, trace_take=None,
              trace_loads=None, nonzeros=None):
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
    nonzeros          int64 (n_inputs,) or None       out: non-zero activations per input as the LNZD
                                                      sees them (fixed16: quantised), bias excluded
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
    cdef Py_ssize_t x, jj, n_bc
    cdef int line_shift
    cdef int64_t[::1] nz_out
    cdef int64_t* nzp = NULL
    if nonzeros is not None:
        nz_out = nonzeros
        if nz_out.shape[0] != n_inputs:
            raise ValueError("nonzeros must be (n_inputs,)")
        nzp = &nz_out[0] if n_inputs > 0 else NULL
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
    line_shift = _line_shift(entries_per_line)
    cdef int64_t c[N_COUNTERS]
    cdef int64_t* slot_col = <int64_t*>malloc((2 * n_slots if n_slots > 0 else 1) * sizeof(int64_t))
    cdef void* st = malloc(_state_size(n_pe, ring) * sizeof(int64_t))
    if slot_col == NULL or st == NULL:
        free(slot_col); free(st)
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
            free(slot_col); free(st)
            raise ValueError("trace_input is not an input of the batch")
        tr_bc = trace_bc
        tr_take = trace_take
        tr_loads = trace_loads
        if tr_bc.shape[1] != 3 or tr_take.shape[1] != n_pe or tr_take.shape[0] != tr_bc.shape[0] \
                or tr_loads.shape[0] < n_groups + 1 or tr_bc.shape[0] < 1:
            free(slot_col); free(st)
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
                n_bc = _fill_slots(slot_col, n_slots, n_in, n_real_groups, n_pe, has_bias, &act_f[x, 0],
                                   &act_i[x, 0] if fixed else NULL)
                if nzp != NULL:
                    nzp[x] = n_bc
                n_bc += 1 if has_bias else 0
                trp = &tr if x == trace_input else NULL
                cycles[x] = _timing_any(tables, n_groups, fifo_depth, entries_per_line, line_shift, slot_col,
                                        slot_col + n_slots, n_bc, st, &busy[0], &stall[0], c, trp)
                if fixed:
                    _arith_any(tables, True, &oq[x, 0], &cb_i[0], &act_i[x, 0], n_bc, &fm, slot_col + n_slots, c)
                else:
                    _arith_any(tables, False, &of[x, 0], &cb_f[0], &act_f[x, 0], n_bc, &fm, slot_col + n_slots, c)
    finally:
        free(slot_col); free(st)
    for jj in range(N_COUNTERS):
        counters[jj] += c[jj]
    if trace_input >= 0:
        return int(tr.n_bc), int(tr.n_loads)
    return None
