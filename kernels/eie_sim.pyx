# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cycle-level EIE kernel: the compiled twin of ``eiesim/sim/reference.py``.

Sees only flat contiguous arrays and scalars prepared and validated by
``eiesim.sim.program.prepare``; loops without the GIL. The timing rules are
documented in the reference model; this kernel must reproduce exactly the same
cycles, counters and output bits (the tests hold both to that).

It does not step every PE through every cycle. Between broadcasts nothing
couples the PEs, so it advances broadcast by broadcast and computes each PE's
schedule in closed form. For broadcast i (cycle b_i) and PE k, with f the last
busy cycle of the PE's previous column (-1 if none):

* the PE takes the activation off its queue at the end of cycle
  p = max(b_i + 1, f)  (visible one cycle after the write; a PE takes one
  when it is idle or finishing a column);
* it works on the column from cycle p + 1 for max(1, entries) cycles, so
  f = p + max(1, entries).

The CCU may broadcast activation i at cycle t only if no queue is full at the
start of t, i.e. every PE has taken activation i - D (D = fifo_depth) by the
end of cycle t - 1: b_i = max(ready_i, max_k p_k(i - D) + 1). Group loads
never wait. PE k's queue was full during the stall cycles t <= p_k(i - D).

Entries are read in their packed hardware form, ``(v << index_bits) | z`` in
one byte (two when code_bits + index_bits > 8): with 64 PEs the kernel walks
64 entry streams at once, and their compactness is what keeps it fast.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint16_t

cnp.import_array()

ctypedef fused packed_t:
    uint8_t
    uint16_t

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

cdef enum:
    ERR_ROW_OUT_OF_RANGE = -1
    ERR_COLUMN_OUT_OF_RANGE = -2


cdef inline int64_t _narrow(int64_t p, int shift, bint nearest) nogil:
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


cdef inline int64_t _fit(int64_t x, int64_t lo, int64_t hi, bint saturate, int total_bits) nogil:
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


def run_layer(
    const int64_t[:, ::1] ptr_t,
    const int64_t[::1] pe_offsets,
    const packed_t[::1] packed,
    const int64_t[::1] slot_col,
    const float[::1] act,
    const int64_t[::1] act_q,
    const float[::1] codebook,
    const int64_t[::1] codebook_q,
    float[::1] out_f,
    int64_t[::1] out_q,
    int64_t[::1] busy,
    int64_t[::1] stall,
    int64_t[::1] counters,
    int n_pe,
    int fifo_depth,
    int entries_per_line,
    int index_bits,
    bint fixed,
    int shift,
    int64_t fx_lo,
    int64_t fx_hi,
    bint fx_nearest,
    bint fx_saturate,
    int fx_total_bits,
):
    """Simulate one layer; return the cycle count before the pipeline drain.

    The drain (``LayerProgram.drain`` = ``eiesim.sim.program.PIPELINE_DRAIN`` cycles: spmat read
    stage, arithmetic unit, write-back; ``eiesim.sim.engine`` adds it, for both backends).

    All arrays come from ``eiesim.sim.program.prepare`` (see ``LayerProgram``):
    ``ptr_t`` (n_cols + 1, n_pe) column-major local pointers, ``pe_offsets``
    (n_pe + 1), ``packed`` (n_entries,) entries ``(v << index_bits) | z``.
    ``out_f``/``out_q`` (n_out,), ``busy``/``stall`` (n_pe,) and ``counters``
    (11,) are zero-initialised outputs. Returns a negative error code if a
    decoded row or broadcast column falls outside the layer (never expected
    after validation; it guards the memory accesses).
    """
    cdef Py_ssize_t n_out = out_f.shape[0]
    cdef Py_ssize_t n_cols = act.shape[0]
    cdef Py_ssize_t n_slots = slot_col.shape[0]
    cdef Py_ssize_t n_entries = packed.shape[0]
    cdef Py_ssize_t n_groups
    if n_pe <= 0 or fifo_depth <= 0 or entries_per_line <= 0:
        raise ValueError("n_pe, fifo_depth and entries_per_line must be positive")
    n_groups = n_slots // n_pe
    if ptr_t.shape[1] != n_pe or ptr_t.shape[0] != n_cols + 1 or pe_offsets.shape[0] != n_pe + 1:
        raise ValueError("pointer arrays do not match n_pe / n_cols")
    if busy.shape[0] != n_pe or stall.shape[0] != n_pe or counters.shape[0] < N_COUNTERS:
        raise ValueError("output arrays have the wrong size")
    if out_q.shape[0] != n_out or n_slots != n_groups * n_pe:
        raise ValueError("output / slot arrays have the wrong size")
    if pe_offsets[n_pe] > n_entries:
        raise ValueError("entry array is shorter than the pointers claim")
    if index_bits < 1 or index_bits > 8 or codebook.shape[0] != codebook_q.shape[0]:
        raise ValueError("index_bits or codebook size out of range")
    cdef int64_t n_codes = codebook.shape[0]

    # Per-PE registers and the take cycles of the last D activations per PE.
    cdef int64_t[::1] fin = np.full(n_pe, -1, dtype=np.int64)
    cdef int64_t[::1] line_reg = np.full(n_pe, -1, dtype=np.int64)
    cdef int64_t[::1] mac_row_last = np.full(n_pe, -1, dtype=np.int64)
    cdef int64_t[::1] mac_cycle_last = np.full(n_pe, -2, dtype=np.int64)
    # Only the last D broadcasts matter, and never more than the slots can broadcast:
    # slot = n_bc % D stays below min(D, n_slots) (a huge queue costs no memory).
    cdef Py_ssize_t ring = fifo_depth if fifo_depth < n_slots else n_slots
    if ring < 1:
        ring = 1
    cdef int64_t[:, ::1] pop_ring = np.zeros((n_pe, ring), dtype=np.int64)
    # Latest take cycle over all PEs of each broadcast.
    cdef int64_t[::1] pop_max = np.zeros(ring, dtype=np.int64)

    cdef int64_t t = 0  # next cycle the CCU can use
    cdef int64_t n_bc = 0  # broadcasts so far
    cdef int64_t g, q, base, k, j, e0, e1, n, g0, g1, gg, line, code, p, nf, lr, row, ent
    cdef int64_t zmask = (1 << index_bits) - 1
    cdef int64_t ready, b, pk, lim, slot, pmax, end_cycle, ccu_last, extra
    cdef int line_shift = -1
    cdef bint loaded_in_broadcast
    cdef int err = 0
    cdef float a_f
    cdef int64_t a_q
    cdef int64_t c_broadcasts = 0, c_stall = 0, c_loads = 0, c_ptr = 0, c_lines = 0
    cdef int64_t c_entries = 0, c_fillers = 0, c_bypasses = 0
    cdef int64_t c_sat = 0, acc_new

    for k in range(31):
        if (<int64_t>1 << k) == entries_per_line:
            line_shift = <int>k
    with nogil:
        # cycle 0: the empty LNZD register loads group 0
        t = 1
        c_loads = 1 if n_groups > 0 else 0
        for g in range(n_groups):
            base = g * n_pe
            loaded_in_broadcast = False
            for q in range(n_pe):
                j = slot_col[base + q]
                if j < 0:
                    continue
                if j >= n_cols:
                    err = ERR_COLUMN_OUT_OF_RANGE
                    break
                # ---------------- CCU: wait until no queue is full
                ready = t
                b = ready
                slot = n_bc % fifo_depth
                if n_bc >= fifo_depth and pop_max[slot] + 1 > b:
                    b = pop_max[slot] + 1
                if b > ready:
                    c_stall += b - ready
                    for k in range(n_pe):
                        pk = pop_ring[k, slot]
                        lim = pk if pk < b - 1 else b - 1
                        if lim >= ready:
                            stall[k] += lim - ready + 1
                c_broadcasts += 1
                t = b + 1
                if q == n_pe - 1:
                    loaded_in_broadcast = True
                    c_loads += 1
                # ---------------- every PE takes column j and works through its slice
                a_f = act[j]
                a_q = act_q[j]
                pmax = -1
                c_ptr += n_pe
                for k in range(n_pe):
                    p = b + 1
                    if fin[k] > p:
                        p = fin[k]
                    pop_ring[k, slot] = p
                    if p > pmax:
                        pmax = p
                    e0 = ptr_t[j, k]
                    e1 = ptr_t[j + 1, k]
                    n = e1 - e0
                    if n <= 0:  # empty slice: the pointer read costs one cycle
                        busy[k] += 1
                        fin[k] = p + 1
                        mac_cycle_last[k] = -2
                        continue
                    # spmat line reads: one division per column, a new line every L entries
                    if line_shift >= 0:
                        line = e0 >> line_shift
                        extra = (e0 - (line << line_shift) + n - 1) >> line_shift
                    else:
                        line = e0 // entries_per_line
                        extra = (e0 - line * entries_per_line + n - 1) // entries_per_line
                    if line != line_reg[k]:
                        c_lines += 1
                    line_reg[k] = line + extra
                    c_lines += extra
                    g0 = pe_offsets[k] + e0
                    g1 = g0 + n
                    c_entries += n
                    # bypass: this column's first MAC lands on the row of the MAC one cycle earlier
                    ent = packed[g0]
                    if ((ent >> index_bits) != 0 and mac_cycle_last[k] == p
                            and mac_row_last[k] == (ent & zmask) * n_pe + k):
                        c_bypasses += 1
                    nf = 0
                    lr = -1
                    row = -1
                    if fixed:
                        for gg in range(g0, g1):
                            ent = packed[gg]
                            lr = lr + (ent & zmask) + 1
                            code = ent >> index_bits
                            if code == 0:
                                nf += 1
                                continue
                            row = lr * n_pe + k
                            if row >= n_out or code >= n_codes:
                                err = ERR_ROW_OUT_OF_RANGE
                                break
                            acc_new = out_q[row] + _narrow(codebook_q[code] * a_q, shift, fx_nearest)
                            if acc_new < fx_lo or acc_new > fx_hi:
                                c_sat += 1  # the sum left the word: saturated (or wrapped)
                            out_q[row] = _fit(acc_new, fx_lo, fx_hi, fx_saturate, fx_total_bits)
                    else:
                        for gg in range(g0, g1):
                            ent = packed[gg]
                            lr = lr + (ent & zmask) + 1
                            code = ent >> index_bits
                            if code == 0:
                                nf += 1
                                continue
                            row = lr * n_pe + k
                            if row >= n_out or code >= n_codes:
                                err = ERR_ROW_OUT_OF_RANGE
                                break
                            out_f[row] = out_f[row] + <float>(codebook[code] * a_f)
                    if err != 0:
                        break
                    c_fillers += nf
                    busy[k] += n
                    fin[k] = p + n
                    if (packed[g1 - 1] >> index_bits) != 0:
                        mac_row_last[k] = row
                        mac_cycle_last[k] = fin[k]
                    else:
                        mac_cycle_last[k] = -2
                if err != 0:
                    break
                pop_max[slot] = pmax
                n_bc += 1
            if err != 0:
                break
            if not loaded_in_broadcast:
                t += 1  # the group has no further non-zero: loading the next costs a cycle
                c_loads += 1

        ccu_last = t - 1
        end_cycle = ccu_last
        for k in range(n_pe):
            if fin[k] > end_cycle:
                end_cycle = fin[k]

    if err != 0:
        return err
    counters[C_BROADCASTS] = c_broadcasts
    counters[C_CCU_STALL] = c_stall
    counters[C_GROUP_LOADS] = c_loads
    counters[C_PTR_READS] = c_ptr
    counters[C_LINE_READS] = c_lines
    counters[C_ENTRIES] = c_entries
    counters[C_FILLERS] = c_fillers
    counters[C_MACS] = c_entries - c_fillers
    counters[C_ACC_WRITES] = c_entries - c_fillers
    counters[C_BYPASSES] = c_bypasses
    counters[C_SATURATIONS] = c_sat
    return end_cycle + 1
