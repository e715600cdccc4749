"""Cycle counts of tiny layers, worked out by hand from the timing rules.

The rules are those of the module docstring of :mod:`eiesim.sim.reference`
(the authors' C++ simulator's behaviour; EIE, ISCA 2016, Section IV and Fig. 4: activation
queue, pointer read unit, distributed leading non-zero detection, central control unit). In short, per cycle:

* CCU: if the LNZD register has a non-zero after the last one broadcast, broadcast
  it -- unless some queue is full (stall). If it has none, load the next group
  (costs the cycle). A broadcast from slot N-1 loads the next group in the same
  cycle. The register starts empty: cycle 0 always loads group 0. Loading past
  the last group (bias group included) is counted as a load and ends the CCU.
* PE: a PE that is idle, or whose column ends this cycle, takes the next activation
  off its queue at the end of the cycle. The next cycle reads p_j, p_j+1 and
  processes the first entry; each further entry takes a cycle; an empty slice
  takes one cycle.
* Queue: a broadcast is written at the end of its cycle, so it can be taken at
  the end of the next cycle at the earliest; a queue holds ``fifo_depth`` items.
* End: once the CCU is done, queues are empty and PEs idle, plus 5 drain cycles
  (``PIPELINE_DRAIN``: 1 spmat read stage + 3 arithmetic stages + 1 write-back, the
  pipeline of the authors' C++ simulator).

Notation in the comments: "c3: ..." is what happens during cycle 3; "bc j" is a
broadcast of column j; "pop j" a PE taking j at the end of the cycle; "load gX" a
group load; "e(r)" an entry fetched on output row r. Every test runs on both backends.
"""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate
from eiesim.sim.functional import spmv_float32
from eiesim.sim.program import (
    ARITH_PIPELINE_DRAIN, PIPELINE_DRAIN, SPMAT_READ_LATENCY, WRITEBACK_LATENCY,
)
from eiesim.sim.result import COUNTER_NAMES

# Codebook: code i -> i / 4 (exact in float32 and in every fixed format used here).
CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)

DRAIN = 5  # 1 spmat read stage + 3 arithmetic stages + 1 write-back


@pytest.fixture(params=["kernel", "reference"])
def backend(request):
    return request.param


def _counters(**nonzero) -> dict:
    unknown = set(nonzero) - set(COUNTER_NAMES)
    assert not unknown, unknown
    return {name: nonzero.get(name, 0) for name in COUNTER_NAMES}


def _layer(n_out, n_in, n_pe, entries, *, bias=None, index_bits=4):
    """Layer whose code matrix has ``entries`` = {(row, col): code}."""
    codes = np.zeros((n_out, n_in), dtype=np.int64)
    for (r, c), v in entries.items():
        codes[r, c] = v
    bias_codes = None if bias is None else np.asarray(bias)
    return CompressedLayer.from_codes(codes, CB, n_pe, bias_codes=bias_codes, index_bits=index_bits)


def _run(layer, act, backend, **cfg):
    cfg.setdefault("n_pe", layer.n_pe)
    cfg.setdefault("index_bits", layer.index_bits)
    res = simulate(layer, np.asarray(act, dtype=np.float32), EIEConfig(**cfg), backend=backend)
    # the output is always W·a + b in the hardware's order
    np.testing.assert_array_equal(res.output.view(np.uint32), spmv_float32(layer, act).view(np.uint32))
    np.testing.assert_array_equal(res.busy + res.idle, res.cycles)
    return res


def test_drain_constant():
    assert (SPMAT_READ_LATENCY, ARITH_PIPELINE_DRAIN, WRITEBACK_LATENCY) == (1, 3, 1)
    assert PIPELINE_DRAIN == DRAIN


# ------------------------------------------------------------------ one column
def test_single_column_three_entries(backend):
    """N = 1, column 0 holds rows 0, 1, 2; the only activation is a[0] = 2.

    c0: load g0 (LNZD register starts empty).
    c1: bc 0 from slot 0 = N-1, so g1 is loaded in the same cycle -> past the last
        group: CCU done. Queue gets col 0 at the end of c1.
    c2: PE idle -> pop 0.
    c3: ptr read p_0, p_1; e(0), MAC.      (line 0 read)
    c4: e(1), MAC.
    c5: e(2), MAC; column ends, queue empty.
    Loop ends after c5 -> 6 cycles, + 5 drain = 11.
    """
    layer = _layer(3, 1, 1, {(0, 0): 1, (1, 0): 2, (2, 0): 3})
    res = _run(layer, [2.0], backend)
    assert res.cycles == 11
    assert res.counters == _counters(
        broadcasts=1, group_loads=2, ptr_reads=1, spmat_line_reads=1, entries=3, macs=3, acc_writes=3
    )
    assert res.busy.tolist() == [3] and res.idle.tolist() == [8] and res.stall.tolist() == [0]
    assert res.output.tolist() == [0.5, 1.0, 1.5]


# ------------------------------------------------------------------ all-zero input
def test_all_zero_input_costs_only_group_loads(backend):
    """N = 2, n_in = 5 -> 3 groups (slots 0-1, 2-3, 4 + padding); a = 0.

    c0: load g0.  c1: g0 has no non-zero -> load g1.  c2: load g2.  c3: load g3 = done.
    No broadcast, no PE work. 4 cycles + 5 drain = 9 = 1 + n_groups + drain.
    """
    layer = _layer(3, 5, 2, {(0, 0): 1, (1, 2): 2, (2, 4): 3})
    res = _run(layer, np.zeros(5), backend)
    assert res.cycles == 1 + 3 + DRAIN == 9
    assert res.counters == _counters(group_loads=4)
    assert res.busy.tolist() == [0, 0] and res.idle.tolist() == [9, 9]
    assert not np.any(res.output)


# ------------------------------------------------------------------ group load in the broadcast cycle
@pytest.mark.parametrize(
    "nz_index, expected_cycles",
    [
        # a[3] != 0, slot 3 = N-1 of g0:
        #   c0: load g0.  c1: bc 3 and load g1 in the same cycle.  c2: load g2; PEs pop 3.
        #   c3: load g3 = done; every PE reads its pointers and works one cycle
        #       (PE 0: e(0); PEs 1-3: empty slices, one cycle each).
        #   4 cycles + 5 = 9.
        (3, 9),
        # a[2] != 0, slot 2 of g0: the move to g1 costs a cycle of its own:
        #   c0: load g0.  c1: bc 2.  c2: no further non-zero in g0 -> load g1; PEs pop 2.
        #   c3: load g2; PEs work one cycle.  c4: load g3 = done.
        #   5 cycles + 5 = 10.
        (2, 10),
    ],
)
def test_last_nonzero_in_slot_n_minus_1_saves_the_load_cycle(backend, nz_index, expected_cycles):
    layer = _layer(4, 12, 4, {(0, 2): 1, (0, 3): 2, (1, 2): 3})
    a = np.zeros(12)
    a[nz_index] = 1.0
    res = _run(layer, a, backend)
    assert res.cycles == expected_cycles
    macs = 2 if nz_index == 2 else 1
    assert res.counters == _counters(
        broadcasts=1, group_loads=4, ptr_reads=4, spmat_line_reads=macs, entries=macs, macs=macs,
        acc_writes=macs,
    )
    # an empty column slice still costs its PE one cycle
    assert res.busy.tolist() == [1, 1, 1, 1]


# ------------------------------------------------------------------ queue depth 1: CCU stalls
def test_depth_one_queue_stalls_single_pe(backend):
    """N = 1, fifo_depth = 1; column 0 has 3 entries (rows 0-2), columns 1, 2 one each (row 3).

    c0: load g0.
    c1: bc 0 (+ load g1). Queue [0].
    c2: queue full at the start of the cycle -> CCU stalls (1). PE pops 0.
    c3: bc 1 (+ load g2). PE: ptr, e(0). Queue [1].
    c4: queue full -> stall (2). PE e(1).
    c5: queue full -> stall (3). PE e(2), column ends -> pops 1.
    c6: bc 2 (+ load g3 = done). PE: ptr, e(3), column ends; queue still empty
        (the write lands at the end of c6) -> PE idle.
    c7: PE pops 2.   c8: PE: ptr, e(3).
    9 cycles + 5 = 14. Stalls: 3, all charged to the one PE.
    """
    layer = _layer(4, 3, 1, {(0, 0): 1, (1, 0): 1, (2, 0): 1, (3, 1): 2, (3, 2): 3})
    res = _run(layer, [1.0, 1.0, 1.0], backend, fifo_depth=1)
    assert res.cycles == 14
    assert res.counters == _counters(
        broadcasts=3, ccu_stall_cycles=3, group_loads=4, ptr_reads=3, spmat_line_reads=1,
        entries=5, macs=5, acc_writes=5,
    )
    assert res.stall.tolist() == [3]
    assert res.busy.tolist() == [5] and res.idle.tolist() == [9]


def test_depth_one_queue_per_pe_stall_counter(backend):
    """N = 2, fifo_depth = 1, a = 1 1 1 1 (groups g0 = cols 0-1, g1 = cols 2-3).

    PE 0 owns rows 0, 2, 4 and has all three in every column (3 entries a column);
    PE 1 owns rows 1, 3, 5, all empty (1 cycle a column). Q0/Q1 = the two queues.

    c0:  load g0.
    c1:  bc 0 (slot 0).                                      Q0 [0]  Q1 [0]
    c2:  Q0, Q1 full -> stall (PE0 1, PE1 1). Both PEs pop 0.
    c3:  bc 1 from slot 1 = N-1 (+ load g1). PE0 e(0); PE1 empty slice, ends, Q1
         empty -> idle.                                      Q0 [1]  Q1 [1]
    c4:  Q0, Q1 full -> stall (PE0 2, PE1 2). PE0 e(2); PE1 pops 1.
    c5:  Q0 full -> stall (PE0 3; PE1's queue is empty). PE0 e(4), ends, pops 1;
         PE1 empty slice.
    c6:  bc 2 (slot 0). PE0 e(0).                            Q0 [2]  Q1 [2]
    c7:  both full -> stall (PE0 4, PE1 3). PE0 e(2); PE1 pops 2.
    c8:  Q0 full -> stall (PE0 5). PE0 e(4), pops 2; PE1 empty slice.
    c9:  bc 3 from slot 1 (+ load g2 = done). PE0 e(0).
    c10: PE0 e(2); PE1 pops 3.   c11: PE0 e(4), pops 3; PE1 empty slice.
    c12-c14: PE0 e(0) e(2) e(4).
    15 cycles + 5 = 20; CCU stalled 5 cycles; PE0's queue was full in 5 of them,
    PE1's in 3. Busy: PE0 4 x 3 = 12, PE1 4 x 1 = 4.
    """
    entries = {(r, c): 1 + c for r in (0, 2, 4) for c in range(4)}
    layer = _layer(6, 4, 2, entries)
    res = _run(layer, [1.0, 1.0, 1.0, 1.0], backend, fifo_depth=1)
    assert res.cycles == 20
    assert res.counters == _counters(
        broadcasts=4, ccu_stall_cycles=5, group_loads=3, ptr_reads=8,
        spmat_line_reads=2,  # PE0's 12 entries span lines 0 and 1 (8 entries a line)
        entries=12, macs=12, acc_writes=12,
    )
    assert res.stall.tolist() == [5, 3]
    assert res.busy.tolist() == [12, 4]
    assert res.idle.tolist() == [8, 16]


# ------------------------------------------------------------------ bias pseudo-activation
def test_bias_pseudo_activation(backend):
    """N = 2, n_in = 2, a = 0, bias codes (1, 2): groups g0 = cols 0-1, g1 = bias group.

    c0: load g0.  c1: g0 all zero -> load g1 (bias group, 1.0 in slot 0).
    c2: bc bias column 2 (slot 0 != N-1: no load).
    c3: no further non-zero in g1 -> load g2 = done. PEs pop 2.
    c4: PE0 ptr + e(0) (bias of row 0); PE1 ptr + e(1).
    5 cycles + 5 = 10. The output is exactly the (quantised) bias.
    """
    layer = _layer(2, 2, 2, {(0, 0): 3, (1, 1): 4}, bias=[1, 2])
    res = _run(layer, [0.0, 0.0], backend)
    assert res.cycles == 10
    assert res.counters == _counters(
        broadcasts=1, group_loads=3, ptr_reads=2, spmat_line_reads=2, entries=2, macs=2, acc_writes=2
    )
    assert res.act_nonzeros == 0
    assert res.output.tolist() == [0.25, 0.5]


# ------------------------------------------------------------------ spmat lines
@pytest.mark.parametrize(
    "line_entries, line_reads",
    [
        (1, 5),  # every entry is its own line
        # L = 2: entries (PE-local index) 0 | 1 2 | 3 | 4 in columns 0..3 lie in lines
        # 0 | 0 1 | 1 | 2. Reads: e0 (line 0); e1 same line (the register kept line 0
        # across the column switch); e2 line 1; e3 same line, across columns again;
        # e4 line 2. 3 reads (5 if the register were cleared per column).
        (2, 3),
        (4, 2),  # lines 0 0 0 0 1
        (8, 1),
    ],
)
def test_line_register_survives_across_columns(backend, line_entries, line_reads):
    """N = 1, fifo_depth = 4, a = 1 1 1 1; columns: 0 -> row 0, 1 -> rows 1, 2, 2 -> row 2, 3 -> row 0.

    c0: load g0. c1..c4: bc 0..3 (each from slot 0 = N-1, with its group load;
        c4 loads g4 = done).
    c2: pop 0.  c3: ptr, e(0); ends -> pop 1.  c4: ptr, e(1).  c5: e(2); ends -> pop 2.
    c6: ptr, e(2) -- same row as c5's MAC: bypass; ends -> pop 3.  c7: ptr, e(0).
    8 cycles + 5 = 13, independent of the line width.
    """
    layer = _layer(3, 4, 1, {(0, 0): 1, (1, 1): 2, (2, 1): 3, (2, 2): 4, (0, 3): 5})
    res = _run(layer, [1.0] * 4, backend, fifo_depth=4, spmat_line_bits=8 * line_entries)
    assert res.cycles == 13
    assert res.counters == _counters(
        broadcasts=4, group_loads=5, ptr_reads=4, spmat_line_reads=line_reads,
        entries=5, macs=5, acc_writes=5, bypasses=1,
    )
    assert res.busy.tolist() == [5]


# ------------------------------------------------------------------ accumulator bypass
def test_bypass_back_to_back_columns(backend):
    """N = 1, a = 1 1; column 0 -> rows 0, 1; column 1 -> row 1.

    c0: load g0.  c1: bc 0 (+ load g1).  c2: bc 1 (+ load g2 = done); PE pops 0.
    c3: ptr, e(0).  c4: e(1); ends -> pops 1.  c5: ptr, e(1): the previous cycle's MAC
    hit row 1 too -> bypass.  6 cycles + 5 = 11.
    """
    layer = _layer(2, 2, 1, {(0, 0): 1, (1, 0): 2, (1, 1): 3})
    res = _run(layer, [1.0, 2.0], backend)
    assert res.cycles == 11
    assert res.counters == _counters(
        broadcasts=2, group_loads=3, ptr_reads=2, spmat_line_reads=1, entries=3, macs=3,
        acc_writes=3, bypasses=1,
    )
    assert res.output.tolist() == [0.25, 0.5 + 1.5]


def test_no_bypass_when_columns_are_not_back_to_back(backend):
    """N = 1, a = 1 0 0 1; column 0 -> rows 0, 1; column 3 -> row 1.

    c0: load g0.  c1: bc 0 (+ load g1).  c2: g1 all zero -> load g2; PE pops 0.
    c3: load g3; PE ptr, e(0).  c4: bc 3 (+ load g4 = done); PE e(1), ends, queue
    still empty -> idle.  c5: PE pops 3.  c6: ptr, e(1) -- no MAC in c5: no bypass.
    7 cycles + 5 = 12.
    """
    layer = _layer(2, 4, 1, {(0, 0): 1, (1, 0): 2, (1, 3): 3})
    res = _run(layer, [1.0, 0.0, 0.0, 1.0], backend)
    assert res.cycles == 12
    assert res.counters == _counters(
        broadcasts=2, group_loads=5, ptr_reads=2, spmat_line_reads=1, entries=3, macs=3, acc_writes=3
    )
    assert res.busy.tolist() == [3] and res.idle.tolist() == [9]


# ------------------------------------------------------------------ fillers
@pytest.mark.parametrize(
    "second_row, expected",
    [
        # gap of 15 zero rows before row 16: z = 15, no filler. Entries (v,0) (v,15).
        # c0 load g0, c1 bc 0 (+ done), c2 pop, c3 e(0), c4 e(16). 5 + 5 = 10.
        (16, {"cycles": 10, "entries": 2, "fillers": 0}),
        # gap of 16 before row 17: one filler (0, 15), then (v, 0). Entries (v,0) (0,15) (v,0).
        # c3 e(0), c4 filler (a cycle, no MAC), c5 e(17). 6 + 5 = 11.
        (17, {"cycles": 11, "entries": 3, "fillers": 1}),
    ],
)
def test_filler_takes_a_cycle_but_no_mac(backend, second_row, expected):
    layer = _layer(18, 1, 1, {(0, 0): 2, (second_row, 0): 3})
    assert layer.n_fillers == expected["fillers"]
    res = _run(layer, [2.0], backend)
    assert res.cycles == expected["cycles"]
    assert res.counters == _counters(
        broadcasts=1, group_loads=2, ptr_reads=1, spmat_line_reads=1,
        entries=expected["entries"], fillers=expected["fillers"], macs=2, acc_writes=2,
    )
    assert res.busy.tolist() == [expected["entries"]]
    y = np.zeros(18, dtype=np.float32)
    y[0], y[second_row] = 1.0, 1.5
    np.testing.assert_array_equal(res.output, y)


def test_fillers_with_two_bit_index(backend):
    """index_bits = 2: gap 9 before row 9 -> 9 // 4 = 2 fillers (0, 3) then (v, 1).

    c0 load g0, c1 bc 0 (+ done), c2 pop, c3 filler, c4 filler, c5 e(9). 6 + 5 = 11.
    """
    layer = _layer(10, 1, 1, {(9, 0): 1}, index_bits=2)
    assert layer.v.tolist() == [0, 0, 1] and layer.z.tolist() == [3, 3, 1]
    res = _run(layer, [1.0], backend, spmat_line_bits=48)  # 8 entries of 4 + 2 bits
    assert res.cycles == 11
    assert res.counters == _counters(
        broadcasts=1, group_loads=2, ptr_reads=1, spmat_line_reads=1, entries=3, fillers=2,
        macs=1, acc_writes=1,
    )


# ------------------------------------------------------------------ negative activations
def test_negative_activation_is_broadcast(backend):
    """The LNZD detects != 0 (not > 0): a[1] = -2 is broadcast like any non-zero.

    N = 2, one group: c0 load g0, c1 bc 1 from slot 1 = N-1 (+ load g1 = done),
    c2 pop, c3 PE0 e(0), PE1 empty slice. 4 + 5 = 9.
    """
    layer = _layer(2, 2, 2, {(0, 1): 4})
    res = _run(layer, [0.0, -2.0], backend)
    assert res.cycles == 9
    assert res.counters["broadcasts"] == 1 and res.counters["macs"] == 1
    assert res.output.tolist() == [-2.0, 0.0]
