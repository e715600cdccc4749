"""Cycle-stepped pure-Python model of EIE: the readable specification.

This module is the oracle the Cython kernel (``kernels/eie_sim.pyx``) is held to:
same cycles, same counters, same output bits. It is slow (a few hundred thousand
PE-cycles per second) and meant to be read next to the EIE paper (Han et al.,
ISCA 2016, Section IV and Figs. 4-5) and the timing notes below.

One clock cycle, in the order the hardware evaluates it (all decisions use the
state at the start of the cycle; every register updates at its end):

1. **CCU / LNZD.** The leading non-zero detector holds one group of N
   consecutive activations (slot q of group g is activation g*N + q, owned by
   PE q). If the group has a non-zero after the last one broadcast, the CCU
   broadcasts it (index and value) to every PE's activation queue, unless any
   queue is full, in which case it stalls. If the group has no further
   non-zero, the CCU loads the next group, which costs the cycle; when the
   broadcast took the group's final slot (q = N-1) the next group is loaded in
   that same cycle. The register starts empty, so cycle 0 loads group 0.
   After the last input group comes the bias group (pseudo-activation 1.0 in
   slot 0) if the layer has a bias column.
2. **PE.** A PE that took activation j from its queue at the end of the
   previous cycle reads p_j and p_j+1 from the even/odd pointer SRAM banks in
   one cycle and, if its slice of column j is non-empty, fetches the column's
   first entry in that same cycle; each further entry takes one more cycle.
   An empty slice costs one cycle. A PE whose column ends this cycle (or that
   has none) takes the next activation off its queue at the end of the cycle,
   so columns follow back to back.
3. **Queues.** A broadcast is written into every queue at the end of its cycle;
   a PE can take it at the end of the next cycle at the earliest. A queue holds
   ``fifo_depth`` activations.
4. **Spmat SRAM.** Entries are read in lines of ``spmat_line_bits / 8``; a line
   read happens when the entry lies in another line than the previous entry
   the PE fetched (the line register survives across columns).
5. **Arithmetic.** Behind each fetched entry: codebook decode and row-address
   accumulation (row = previous row + z + 1), then multiply-add into the
   destination accumulator. A MAC on the same row as the previous cycle's MAC
   takes the bypass. Filler entries (v = 0) occupy the slot but do not write.
   In ``fixed16`` mode a sum outside the word is saturated (or wrapped, with
   ``saturate = false``) and counted in ``saturations``.
6. **End.** The layer ends when the CCU has passed the last group, every queue
   is empty and every PE has finished its column; then
   :data:`~eiesim.sim.program.PIPELINE_DRAIN` = 5 more cycles pass before the
   last result is in the activation SRAM:

   * 1 cycle, the **spmat read stage** (:data:`~eiesim.sim.program.SPMAT_READ_LATENCY`):
     the SRAM line is read the cycle after the pointer read formed its address.
     Steps 2 and 4 above count the pointer read and the first fetch in one cycle
     because the stage adds latency but no occupancy (the next column's pointer
     read overlaps the previous column's last line read), so it shows only once,
     here;
   * 3 cycles, the **arithmetic unit** (:data:`~eiesim.sim.program.ARITH_PIPELINE_DRAIN`):
     decode and address accumulation, multiply, add;
   * 1 cycle, the **write-back** (:data:`~eiesim.sim.program.WRITEBACK_LATENCY`):
     the result register is written into the activation SRAM; the layer is
     complete once no write is pending.

   These are the pipeline stages of the authors' C++ simulator (RalphMao/EIE-simulator:
   ``PtrRead`` -> ``SpMatRead`` -> ``ArithmUnit`` stages 1-3 -> ``ActRW``'s
   registered write and ``layer_complete``). With them eiesim is cycle-exact with
   that simulator on the real AlexNet FC8 (``../shared/data/alexnet_fc8_eie``, 64
   PEs, 64-bit lines): activation buffers of B = 2 / 3 / 4 / 8 / 16 / 64 slots hold
   B - 1 activations (the C++ FIFO is full at ``(write + 1) % B == read``), i.e.
   ``fifo_depth`` = 1 / 2 / 3 / 7 / 15 / 63, and give 10,194 / 8,827 / 8,386 /
   7,926 / 7,794 / 7,794 cycles in both (``tests/sim/test_fc8.py``). Before these 3
   cycles were modelled (an arithmetic drain of 2 only) eiesim was exactly 3 lower
   at every buffer size, with identical pointer and spmat line reads. Not
   modelled: the C++ test bench runs at least 9 cycles however small the layer
   (``cycles < 9`` in its ``main``), a property of the harness, not the hardware.
"""

from __future__ import annotations

from collections import deque
from typing import List

import numpy as np

from .program import LayerProgram

__all__ = ["run_reference"]


class ActivationQueue:
    """One PE's activation FIFO; ``depth`` entries of (column, value)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.items: deque = deque()

    def full(self) -> bool:
        """Whether the FIFO holds ``depth`` entries (the CCU must not broadcast).

        Returns
        -------
        bool
        """
        return len(self.items) >= self.depth

    def empty(self) -> bool:
        """Whether the FIFO holds no entry (the PE has nothing to start).

        Returns
        -------
        bool
        """
        return not self.items


class CentralControlUnit:
    """CCU with its LNZD: scans groups of N activation slots, broadcasts non-zeros."""

    def __init__(self, slot_col: np.ndarray, n_pe: int) -> None:
        self.slot_col = slot_col
        self.n_pe = n_pe
        self.n_groups = slot_col.shape[0] // n_pe
        self.group = -1  # the LNZD register starts empty
        self.last = -1  # slot of the last broadcast within the group
        self.done = self.n_groups == 0

    def next_nonzero(self) -> int:
        """Slot of the next non-zero in the loaded group after the last broadcast, or -1.

        Returns
        -------
        int
            Slot index in ``[0, n_pe)`` within the loaded group; -1 when no group
            is loaded or no non-zero remains after ``last``.
        """
        if self.group < 0:
            return -1
        base = self.group * self.n_pe
        for q in range(self.last + 1, self.n_pe):
            if self.slot_col[base + q] >= 0:
                return q
        return -1

    def load_next_group(self) -> None:
        """Load the next group of ``n_pe`` activation slots into the LNZD; set ``done`` past the last."""
        self.group += 1
        self.last = -1
        if self.group >= self.n_groups:
            self.done = True


class ProcessingElement:
    """One PE: pointer read, spmat fetch, and its slice of the accumulators."""

    def __init__(self, k: int, prog: LayerProgram) -> None:
        self.k = k
        self.ptr = prog.ptr[k]
        self.base = int(prog.pe_offsets[k])
        self.column = -1  # column being worked on, -1: none
        self.first_cycle = False
        self.cursor = 0  # next local entry
        self.end = 0
        self.row = -1  # local row of the last entry fetched in this column
        self.line = -1  # spmat line register (survives across columns)
        self.last_mac_row = -1  # global row of the previous cycle's MAC (bypass check)
        self.busy = 0
        self.stall = 0

    def start_column(self, column: int) -> None:
        """Begin work on input column ``column`` (its pointer read happens in the first cycle).

        Parameters
        ----------
        column : int
            Input column (activation index) just popped from the PE's queue.
        """
        self.column = column
        self.first_cycle = True


def _mac_float(acc: np.ndarray, row: int, w: np.float32, a: np.float32) -> None:
    acc[row] = np.float32(acc[row] + np.float32(w * a))


def _mac_fixed(acc: np.ndarray, row: int, wq: int, aq: int, prog: LayerProgram) -> int:
    """Fixed-point multiply-accumulate into ``acc[row]``; 1 if the sum left the word, else 0."""
    p = wq * aq
    s = prog.shift
    if s > 0:
        if prog.fx_nearest:
            half = 1 << (s - 1)
            p = (abs(p) + half) >> s if p >= 0 else -((-p + half) >> s)
        else:
            p >>= s
    total = int(acc[row]) + p
    overflow = 1 if total < prog.fx_lo or total > prog.fx_hi else 0
    if prog.fx_saturate:
        total = min(max(total, prog.fx_lo), prog.fx_hi)
    else:
        span = 1 << prog.fx_total_bits
        total = ((total - prog.fx_lo) % span) + prog.fx_lo
    acc[row] = total
    return overflow


class _Events:
    """Timing events of one run (see :func:`run_reference`'s ``events``)."""

    def __init__(self, n_pe: int) -> None:
        self.bc: list = []  # (cycle, first cycle held, column) per broadcast
        self.take: list = []  # per broadcast: the cycle at whose end each PE took it
        self.loads: list = []  # group-load cycles
        self.taken = [0] * n_pe  # broadcasts each PE has taken off its queue


def _ccu_cycle(ccu: CentralControlUnit, queues: List[ActivationQueue], pes: list, c: dict, ev: _Events,
               cycle: int, pending_since: int):
    """Step 1 of a cycle: the CCU loads a group, stalls on a full queue, or broadcasts.

    Returns
    -------
    (int, int)
        The column broadcast this cycle (-1: none) and the first cycle the CCU
        has held its pending non-zero back (-1: none pending).
    """
    if ccu.done:
        return -1, pending_since
    q = ccu.next_nonzero()
    if q < 0:
        ccu.load_next_group()
        c["group_loads"] += 1
        ev.loads.append(cycle)
        return -1, pending_since
    if any(qu.full() for qu in queues):
        if pending_since < 0:
            pending_since = cycle
        c["ccu_stall_cycles"] += 1
        for pe, qu in zip(pes, queues):
            if qu.full():
                pe.stall += 1
        return -1, pending_since
    broadcast = int(ccu.slot_col[ccu.group * ccu.n_pe + q])
    ccu.last = q
    c["broadcasts"] += 1
    ev.bc.append((cycle, pending_since if pending_since >= 0 else cycle, broadcast))
    ev.take.append([-1] * ccu.n_pe)
    if q == ccu.n_pe - 1:
        ccu.load_next_group()
        c["group_loads"] += 1
        ev.loads.append(cycle)
    return broadcast, -1


def _fetch(pe: ProcessingElement, prog: LayerProgram, acc: np.ndarray, c: dict) -> int:
    """Steps 4-5 for one PE: fetch its next entry, multiply-add it; the MAC's global row or -1."""
    e = pe.base + pe.cursor
    line = pe.cursor // prog.entries_per_line
    if line != pe.line:
        c["spmat_line_reads"] += 1
        pe.line = line
    code = int(prog.v[e])
    pe.row += int(prog.z[e]) + 1
    c["entries"] += 1
    pe.cursor += 1
    if code == 0:
        c["fillers"] += 1
        return -1
    row = pe.row * prog.n_pe + pe.k
    c["macs"] += 1
    c["acc_writes"] += 1
    if row == pe.last_mac_row:
        c["bypasses"] += 1
    j = pe.column
    if prog.fixed:
        c["saturations"] += _mac_fixed(acc, row, int(prog.codebook_q[code]), int(prog.act_q[j]), prog)
    else:
        _mac_float(acc, row, prog.codebook[code], prog.act[j])
    return row


def _pe_cycle(pe: ProcessingElement, qu: ActivationQueue, prog: LayerProgram, acc: np.ndarray, c: dict,
              ev: _Events, cycle: int) -> None:
    """Step 2 for one PE: pointer read or entry fetch, then take the next activation when free."""
    mac_row = -1
    finishing = pe.column < 0  # idle PEs may take an activation
    if pe.column >= 0:
        pe.busy += 1
        if pe.first_cycle:  # pointer read: p_j and p_j+1 from the two banks
            c["ptr_reads"] += 1
            pe.cursor = int(pe.ptr[pe.column])
            pe.end = int(pe.ptr[pe.column + 1])
            pe.row = -1
            pe.first_cycle = False
        if pe.cursor < pe.end:  # fetch one entry
            mac_row = _fetch(pe, prog, acc, c)
        if pe.cursor >= pe.end:  # last entry (or empty slice): free next cycle
            pe.column = -1
            finishing = True
    pe.last_mac_row = mac_row
    if finishing and not qu.empty():  # dequeue at the end of the cycle
        pe.start_column(qu.items.popleft())
        ev.take[ev.taken[pe.k]][pe.k] = cycle
        ev.taken[pe.k] += 1


def run_reference(prog: LayerProgram, *, events: bool = False) -> dict:
    """Simulate one layer cycle by cycle in pure Python.

    Each cycle runs the CCU (:func:`_ccu_cycle`), then every PE (:func:`_pe_cycle`),
    then writes the cycle's broadcast into every queue (step 3 of the module notes).

    Parameters
    ----------
    prog : LayerProgram
        Validated inputs from :func:`eiesim.sim.program.prepare`.
    events : bool
        Also return the timing events (key ``events``): ``bc`` int64 (n_bc, 3) with
        each broadcast's cycle, the first cycle the CCU held it (stalled) or the
        broadcast cycle, and its column; ``take`` int64 (n_bc, n_pe), the cycle at
        whose end each PE took it off its queue; ``loads`` int64 (n_loads,), the
        group-load cycles. The kernel records the same arrays (tests hold them equal).

    Returns
    -------
    dict
        ``cycles`` (int), ``output`` (float32 (n_out,) in float32 mode, int64
        accumulators in fixed mode), ``busy`` / ``stall`` (int64 (n_pe,)) and
        ``counters`` (dict of int, see :data:`eiesim.sim.result.COUNTER_NAMES`).
    """
    n_pe = prog.n_pe
    ccu = CentralControlUnit(prog.slot_col, n_pe)
    queues: List[ActivationQueue] = [ActivationQueue(prog.fifo_depth) for _ in range(n_pe)]
    pes = [ProcessingElement(k, prog) for k in range(n_pe)]
    acc = np.zeros(prog.n_out, dtype=np.int64 if prog.fixed else np.float32)
    c = dict.fromkeys(
        ("broadcasts", "ccu_stall_cycles", "group_loads", "ptr_reads", "spmat_line_reads",
         "entries", "fillers", "macs", "acc_writes", "bypasses", "saturations"),
        0,
    )
    ev = _Events(n_pe)
    pending_since = -1  # first cycle the CCU held its pending non-zero back
    cycle = 0
    while True:
        broadcast, pending_since = _ccu_cycle(ccu, queues, pes, c, ev, cycle, pending_since)
        for pe, qu in zip(pes, queues):
            _pe_cycle(pe, qu, prog, acc, c, ev, cycle)
        if broadcast >= 0:  # end of cycle: queue writes
            for qu in queues:
                qu.items.append(broadcast)
        cycle += 1
        if ccu.done and all(qu.empty() for qu in queues) and all(pe.column < 0 for pe in pes):
            break

    out = {
        "cycles": cycle + prog.drain,
        "output": acc,
        "busy": np.array([pe.busy for pe in pes], dtype=np.int64),
        "stall": np.array([pe.stall for pe in pes], dtype=np.int64),
        "counters": c,
    }
    if events:
        out["events"] = {
            "bc": np.array(ev.bc, dtype=np.int64).reshape(-1, 3),
            "take": np.array(ev.take, dtype=np.int64).reshape(-1, n_pe),
            "loads": np.array(ev.loads, dtype=np.int64),
        }
    return out
