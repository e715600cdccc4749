"""The Cython kernel called directly on hand-made arrays (as scipy's test_sparsetools.py does).

Hand-worked tables, timing and arithmetic of tiny layers; every rule the per-layer pass
refuses; a layer whose cycle count passes 2**31 (built from pointer tables alone, no
entries); the batch path equal to one call per input; and the inline helpers of the
``nogil`` loop declared ``noexcept`` (without it Cython re-takes the GIL to check for an
exception whenever a helper returns -1, e.g. a fixed16 sum of -1).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate, simulate_batch
from eiesim.sim.result import COUNTER_NAMES
from ..conftest import CB16

eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")

ROOT = Path(__file__).resolve().parents[2]

# Two PEs, four outputs (PE 0: rows 0, 2; PE 1: rows 1, 3), three columns, 2-bit z (filler z = 3).
#   column 0: PE 0 rows 0 and 2 (codes 1, 2); PE 1 row 3 (code 3)
#   column 1: PE 0 empty; PE 1 row 1 (code 1)
#   column 2: PE 0 row 2 (code 3); PE 1 empty
PTR = np.array([[0, 2, 2, 3],
                [0, 1, 2, 2]], dtype=np.int64)
V = np.array([1, 2, 3, 3, 1], dtype=np.uint8)  # PE 0: col0 (1, 2), col2 (3); PE 1: col0 (3), col1 (1)
Z = np.array([0, 0, 1, 1, 0], dtype=np.uint8)


def _tables(ptr=PTR, v=V, z=Z, n_out=4, code_bits=4, index_bits=2):
    return eie_sim.build_tables(ptr=ptr, v=v, z=z, n_out=n_out, code_bits=code_bits, index_bits=index_bits)


def test_build_tables_hand_worked():
    t, bad, where = _tables()
    assert (bad, where) == (0, -1)
    np.testing.assert_array_equal(t.ptr_t, PTR.T)
    assert t.ptr_t.dtype == np.int32
    # first MAC's local row per (column, PE), -1 for empty; last row, -2 for empty
    np.testing.assert_array_equal(t.first_row, [[0, 1], [-1, 0], [1, -1]])
    np.testing.assert_array_equal(t.last_row, [[1, 1], [-2, 0], [1, -2]])
    np.testing.assert_array_equal(t.col_fillers, [0, 0, 0])
    np.testing.assert_array_equal(t.mac_start, [0, 3, 4, 5])
    # (global row << code_bits) | code, column-major, PE 0 first
    assert list(t.macs) == [(0 << 4) | 1, (2 << 4) | 2, (3 << 4) | 3, (1 << 4) | 1, (2 << 4) | 3]
    # narrowest exact dtypes: int32 pointers, int16 rows (2 rows per PE), uint16 MACs (4 << 4 <= 2**16)
    assert (t.first_row.dtype, t.last_row.dtype, t.macs.dtype) == (np.int16, np.int16, np.uint16)
    np.testing.assert_array_equal(t.col_entries, [3, 1, 1])
    assert t.nbytes == 4 * 2 * 4 + 2 * (3 * 2 * 2) + 3 * 8 + 3 * 8 + 4 * 8 + 5 * 2


def test_build_tables_fillers_are_counted_not_stored():
    # one PE, one column: filler (0, 3) then code 5 at z = 1 -> local row 3 + 1 + 1 = 5
    t, bad, _ = _tables(ptr=np.array([[0, 2]]), v=np.array([0, 5], np.uint8), z=np.array([3, 1], np.uint8),
                        n_out=6)
    assert bad == 0
    np.testing.assert_array_equal(t.first_row, [[-1]])  # the first entry is a filler: no bypass possible
    np.testing.assert_array_equal(t.last_row, [[5]])
    np.testing.assert_array_equal(t.col_fillers, [1])
    assert list(t.macs) == [(5 << 4) | 5]


@pytest.mark.parametrize("change, rule", [
    (dict(v=np.array([1, 2, 3, 3, 16], np.uint8)), "CODE-RANGE"),
    (dict(z=np.array([0, 0, 1, 4, 0], np.uint8)), "RELIDX-Z-RANGE"),
    (dict(v=np.array([1, 0, 3, 3, 1], np.uint8)), "RELIDX-FILLER-NONCANONICAL"),
    (dict(v=np.array([1, 0, 3, 3, 1], np.uint8), z=np.array([0, 3, 1, 1, 0], np.uint8), n_out=16),
     "FILLER-TRAILING"),
    (dict(z=np.array([0, 1, 1, 1, 0], np.uint8)), "FILLER-MISSING"),  # PE 0 row 0 then local row 2 of 2
    (dict(ptr=np.array([[0, 2, 1, 3], [0, 1, 2, 2]])), "PTR-DECREASING"),
])
def test_build_tables_names_each_broken_rule(change, rule):
    t, bad, where = _tables(**change)
    assert t is None
    assert eie_sim.BAD_RULES[bad] == rule
    assert where >= 0


def _run(t, act, *, fifo_depth=2, entries_per_line=2, has_bias=False, fixed=False, fixed_mode=None,
         codebook=None, codebook_q=None):
    act = np.atleast_2d(np.asarray(act, dtype=np.float32))
    n = act.shape[0]
    cb = np.arange(16, dtype=np.float32) if codebook is None else codebook
    out_f = np.zeros((0, 0) if fixed else (n, t.n_out), np.float32)
    out_q = np.zeros((n, t.n_out) if fixed else (0, 0), np.int64)
    res = dict(cycles=np.zeros(n, np.int64), busy=np.zeros(t.n_pe, np.int64), stall=np.zeros(t.n_pe, np.int64),
               counters=np.zeros(len(COUNTER_NAMES), np.int64))
    act_q = np.rint(act).astype(np.int64) if fixed else np.zeros((0, 0), np.int64)
    eie_sim.run_batch(
        t, act=act, act_q=act_q, codebook=cb,
        codebook_q=np.arange(16, dtype=np.int64) if codebook_q is None else codebook_q,
        fixed=fixed, fixed_mode=fixed_mode or (0, False, True, 16, -(1 << 15), (1 << 15) - 1),
        has_bias=has_bias, n_in=t.n_cols - has_bias, fifo_depth=fifo_depth, entries_per_line=entries_per_line,
        out_f=out_f, out_q=out_q, **res)
    res["counters"] = dict(zip(COUNTER_NAMES, res["counters"].tolist()))
    res["out"] = out_q if fixed else out_f
    return res


def test_run_batch_hand_worked_timing_and_arithmetic():
    """Activations (2, 3, 4), FIFO depth 2, 2 entries per line, worked by hand.

    Cycle 0 loads group 0 (slots 0, 1); broadcast col 0 at cycle 1, col 1 at cycle 2 (slot 1 = N-1:
    group 1 loads in the same cycle), col 2 at cycle 3; group 1 then has no further non-zero:
    loading the (absent) next group costs cycle 4. PE 0 takes col 0 at the end of cycle 2, works
    cycles 3-4; takes col 1 at the end of 4 (empty: cycle 5); col 2 at the end of 5, works cycle 6.
    PE 1: col 0 cycle 3, col 1 cycle 4 (taken at the end of 3), col 2 at the end of 4, empty: cycle 5.
    The last busy cycle is 6: 7 cycles before the drain.
    """
    t, _, _ = _tables()
    r = _run(t, [2.0, 3.0, 4.0])
    assert r["cycles"].tolist() == [7]
    assert r["busy"].tolist() == [4, 3]
    assert r["stall"].tolist() == [0, 0]
    assert r["counters"] == dict(broadcasts=3, ccu_stall_cycles=0, group_loads=3, ptr_reads=6,
                                 spmat_line_reads=3, entries=5, fillers=0, macs=5, acc_writes=5, bypasses=0,
                                 saturations=0)
    # W @ a with codebook[c] = c: row 0 = 1*2, row 1 = 1*3, row 2 = 2*2 + 3*4, row 3 = 3*2
    assert r["out"][0].tolist() == [2.0, 3.0, 16.0, 6.0]
    # fixed16 with shift 0: the same integers, same timing
    q = _run(t, [2.0, 3.0, 4.0], fixed=True)
    assert q["out"][0].tolist() == [2, 3, 16, 6]
    assert q["cycles"].tolist() == [7] and q["counters"] == r["counters"]


def test_run_batch_equals_the_reference_on_the_hand_made_layer():
    layer = CompressedLayer(shape=(4, 3), n_pe=2, codebook=np.r_[0.0, np.linspace(0.5, 7.5, 15)], ptr=PTR,
                            v=V, z=Z, code_bits=4, index_bits=2)
    cfg = EIEConfig(n_pe=2, fifo_depth=1, spmat_line_bits=12, code_bits=4, index_bits=2)
    for a in ([2.0, 3.0, 4.0], [0.0, 3.0, 0.0], [1.0, 0.0, -4.0], [0.0, 0.0, 0.0]):
        rk = simulate(layer, np.array(a, np.float32), cfg)
        rr = simulate(layer, np.array(a, np.float32), cfg, backend="reference")
        assert (rk.cycles, rk.counters) == (rr.cycles, rr.counters)
        np.testing.assert_array_equal(rk.stall, rr.stall)
        np.testing.assert_array_equal(rk.output.view(np.uint32), rr.output.view(np.uint32))


def _long_column_tables(c: int):
    """One PE, three columns: column 0 holds ``c`` entries (all fillers, timing only), 1 and 2 are empty."""
    return eie_sim.LayerTables.from_arrays(
        ptr_t=np.array([[0], [c], [c], [c]]), first_row=np.full((3, 1), -1), last_row=np.array([[0], [-2], [-2]]),
        col_fillers=np.array([c, 0, 0]), mac_start=np.zeros(4, np.int64), macs=np.zeros(0, np.uint32),
        n_out=1, code_bits=4)


def _long_column_expected(c: int) -> dict:
    """Hand-worked for FIFO depth 1, 16 entries per line, activations (1, 1, 1):

    col 0 broadcast at cycle 1, taken at the end of 2, busy 3 .. c + 2; col 1 waits for the
    queue (stall 1), broadcast at 3, taken at the end of c + 2, busy c + 3; col 2 stalls
    c - 1 cycles, broadcast at c + 3, taken at the end of c + 4, busy c + 5: c + 6 cycles.
    """
    return dict(cycles=c + 6, stall=c, busy=c + 2, ccu_stall_cycles=c, group_loads=4,
                spmat_line_reads=(c - 1) // 16 + 1, entries=c)


@pytest.mark.parametrize("c", [2, 5, 40, 2**31 - 1])
def test_cycle_counts_past_2_31_are_exact(c):
    r = _run(_long_column_tables(c), [1.0, 1.0, 1.0], fifo_depth=1, entries_per_line=16)
    e = _long_column_expected(c)
    assert r["cycles"].tolist() == [e["cycles"]]
    assert r["stall"].tolist() == [e["stall"]] and r["busy"].tolist() == [e["busy"]]
    for k in ("ccu_stall_cycles", "group_loads", "spmat_line_reads", "entries"):
        assert r["counters"][k] == e[k], k
    if c == 2**31 - 1:
        assert e["cycles"] > 2**31


@pytest.mark.parametrize("c", [2, 5, 40])
def test_long_column_formula_matches_the_reference(c):
    """The formula above, on real layers the reference can step: c - 1 fillers then one MAC."""
    n_local = (c - 1) * 4 + 1
    layer = CompressedLayer(shape=(n_local, 3), n_pe=1, codebook=np.r_[0.0, np.ones(15)],
                            ptr=np.array([[0, c, c, c]]), v=np.r_[np.zeros(c - 1), 1].astype(np.uint8),
                            z=np.r_[np.full(c - 1, 3), 0].astype(np.uint8), code_bits=4, index_bits=2)
    cfg = EIEConfig(n_pe=1, fifo_depth=1, spmat_line_bits=16 * 6, code_bits=4, index_bits=2)
    rr = simulate(layer, np.ones(3, np.float32), cfg, backend="reference")
    e = _long_column_expected(c)
    drain = rr.cycles - _run(_long_column_tables(c), [1.0, 1.0, 1.0], fifo_depth=1,
                             entries_per_line=16)["cycles"][0]
    assert rr.cycles - drain == e["cycles"]
    assert rr.stall.tolist() == [e["stall"]] and rr.busy.tolist() == [e["busy"]]
    for k in ("ccu_stall_cycles", "group_loads", "spmat_line_reads", "entries"):
        assert rr.counters[k] == e[k], k


def test_from_arrays_refuses_out_of_bounds_tables():
    good = dict(ptr_t=np.array([[0], [1]]), first_row=np.array([[0]]), last_row=np.array([[0]]),
                col_fillers=np.array([0]), mac_start=np.array([0, 1]), macs=np.array([(0 << 4) | 1], np.uint32),
                n_out=1, code_bits=4)
    eie_sim.LayerTables.from_arrays(**good)
    for bad in (dict(macs=np.array([(1 << 4) | 1], np.uint32)),  # row 1 of a 1-row layer
                dict(mac_start=np.array([0, 2])), dict(ptr_t=np.array([[1], [2]])),
                dict(first_row=np.zeros((2, 1)))):
        with pytest.raises(ValueError):
            eie_sim.LayerTables.from_arrays(**{**good, **bad})


def test_fixed16_helpers_match_the_reference_rounding():
    # nearest: half away from zero; floor: toward minus infinity (eiesim.sim.reference._mac_fixed)
    assert [eie_sim.narrow(p, 2, True) for p in (-6, -5, -2, 2, 5, 6)] == [-2, -1, -1, 1, 1, 2]
    assert [eie_sim.narrow(p, 2, False) for p in (-6, -5, -1, 1, 5)] == [-2, -2, -1, 0, 1]
    assert eie_sim.fit(-1, -8, 7, True, 4) == -1  # a result of -1 is an ordinary value, not an error flag
    assert eie_sim.fit(9, -8, 7, False, 4) == -7 and eie_sim.fit(9, -8, 7, True, 4) == 7


def test_inline_helpers_of_the_nogil_loops_are_noexcept():
    """Without ``noexcept`` a cdef helper returning -1 makes the generated C take the GIL inside the
    nogil loop to look for a Python exception (old _narrow/_fit: every fixed16 product or sum of -1)."""
    src = (ROOT / "kernels" / "eie_sim.pyx").read_text()
    heads = re.findall(r"^cdef (?:inline )?(?!class|struct|enum)[^\n=]*\([^)]*\)[^:\n]*:", src, flags=re.M)
    assert len(heads) >= 6
    for head in heads:
        assert "noexcept" in head and "nogil" in head, head


def test_batch_equals_one_call_per_input():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 16, size=(37, 29)) * (rng.random((37, 29)) < 0.3)
    cb = np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, 4, bias_codes=rng.integers(0, 16, 37), index_bits=2)
    x = (rng.uniform(-3, 3, (9, 29)) * (rng.random((9, 29)) < 0.4)).astype(np.float32)
    x[2, :5] = [40.0, -70.0, 1e-4, 900.0, -1e-5]  # fixed16: inputs clipped/wrapped, values rounding to 0
    for cfg in (EIEConfig(n_pe=4, fifo_depth=2, index_bits=2, spmat_line_bits=24),
                EIEConfig(n_pe=4, fifo_depth=3, index_bits=2, arith="fixed16", saturate=False,
                          spmat_line_bits=48)):
        b = simulate_batch(layer, x, cfg)
        singles = [simulate(layer, row, cfg, warn=False) for row in x]
        assert b.cycles.tolist() == [r.cycles for r in singles]
        np.testing.assert_array_equal(b.output.view(np.uint32), np.stack([r.output for r in singles]).view(np.uint32))
        if b.output_fixed is not None:
            assert b.counters["saturations"] > 0 and b.act_saturations.sum() > 0
            np.testing.assert_array_equal(b.output_fixed, np.stack([r.output_fixed for r in singles]))
        np.testing.assert_array_equal(b.busy, np.sum([r.busy for r in singles], axis=0))
        np.testing.assert_array_equal(b.stall, np.sum([r.stall for r in singles], axis=0))
        assert b.counters == {k: sum(r.counters[k] for r in singles) for k in COUNTER_NAMES}
        assert b.act_nonzeros.tolist() == [r.act_nonzeros for r in singles]
        if b.output_fixed is None:  # counted by the kernel as it builds each input's LNZD view
            assert b.act_nonzeros.tolist() == np.count_nonzero(x, axis=1).tolist()
        assert b.act_saturations.tolist() == [r.act_saturations for r in singles]


def _random_layer(seed, n_out=37, n_in=29, n_pe=4, density=0.3, index_bits=2):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 16, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    cb = np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, n_pe, index_bits=index_bits)
    x = (rng.uniform(-3, 3, (5, n_in)) * (rng.random((5, n_in)) < 0.5)).astype(np.float32)
    return layer, x


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fifo_depth, entries_per_line", [(1, 3), (2, 4), (7, 16), (3, 5)])
def test_int64_timing_equals_int32_timing(seed, fifo_depth, entries_per_line):
    """The int32 timing pass (the default below :data:`INT32_TIMING_LIMIT`) and the int64 one
    (forced here; chosen on its own only for layers near 2**31 cycles) give the same everything."""
    layer, x = _random_layer(seed, density=0.1 + 0.2 * seed)
    t, bad, _ = _tables(ptr=layer.ptr, v=layer.v, z=layer.z, n_out=layer.n_out, index_bits=2)
    assert bad == 0 and not t.timing_int64
    t64 = eie_sim.LayerTables.from_arrays(ptr_t=t.ptr_t, first_row=t.first_row, last_row=t.last_row,
                                          col_fillers=t.col_fillers, mac_start=t.mac_start, macs=t.macs,
                                          n_out=t.n_out, code_bits=4, timing_int64=True)
    assert t64.timing_int64
    kw = dict(fifo_depth=fifo_depth, entries_per_line=entries_per_line, codebook=layer.codebook)
    r32, r64 = _run(t, x, **kw), _run(t64, x, **kw)
    for k in ("cycles", "busy", "stall"):
        np.testing.assert_array_equal(r32[k], r64[k])
    assert r32["counters"] == r64["counters"]
    np.testing.assert_array_equal(r32["out"].view(np.uint32), r64["out"].view(np.uint32))


def test_timing_bound_picks_int64_past_2_31():
    """The hand-worked layer of 2**31 - 1 entries in one column needs the int64 pass; 2 entries do not."""
    assert _long_column_tables(2**31 - 1).timing_int64
    assert not _long_column_tables(2).timing_int64
    assert eie_sim.timing_bound(2**31 - 1, 3, 1) > eie_sim.INT32_TIMING_LIMIT


@pytest.mark.parametrize("n_out, n_pe, code_bits, index_bits, rows, macs", [
    (4096, 64, 4, 4, np.int16, np.uint16),    # VGG-6's rows: 4095 << 4 | 15 = 2**16 - 1
    (4097, 64, 4, 4, np.int16, np.uint32),    # one row more: 2**16 + 15
    (32767, 1, 1, 8, np.int16, np.uint16),    # 32,767 rows per PE: the largest int16 table
    (32768, 1, 1, 8, np.int32, np.uint16),    # 32,768 rows per PE: int32 rows
    (1 << 28, 1, 4, 8, np.int32, np.uint64),  # (2**28 - 1) << 4 | 15 >= 2**32
])
def test_tables_take_the_narrowest_exact_dtypes(n_out, n_pe, code_bits, index_bits, rows, macs):
    """Entries at the first and the last row of every PE (one column), so the largest values are stored;
    the tables decode back to those rows, and (below 2**28 rows) simulate as the reference does."""
    import scipy.sparse as sp

    last = n_out - 1
    r = np.array(sorted({0, last} | set(range(max(0, last - n_pe + 1), last + 1))))
    codes = sp.coo_array((np.full(r.size, (1 << code_bits) - 1), (r, np.zeros(r.size, int))), shape=(n_out, 1))
    cb = np.r_[0.0, np.linspace(0.5, 2.0, (1 << code_bits) - 1)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, n_pe, code_bits=code_bits, index_bits=index_bits)
    t, bad, _ = eie_sim.build_tables(ptr=layer.ptr, v=layer.v, z=layer.z, n_out=n_out, code_bits=code_bits,
                                     index_bits=index_bits)
    assert bad == 0
    assert (t.first_row.dtype, t.last_row.dtype, t.macs.dtype) == (rows, rows, macs)
    assert sorted((t.macs.astype(np.uint64) >> code_bits).tolist()) == r.tolist()
    assert t.last_row.max() == (last // n_pe)
    assert t.nbytes == (t.ptr_t.size * 4 + 2 * t.first_row.size * np.dtype(rows).itemsize + 8 * (3 * 1 + 1)
                        + r.size * np.dtype(macs).itemsize)
    if n_out < 1 << 20:
        cfg = EIEConfig(n_pe=n_pe, fifo_depth=2, code_bits=code_bits, index_bits=index_bits,
                        spmat_line_bits=8 * (code_bits + index_bits))
        rk = simulate(layer, np.array([1.5], np.float32), cfg)
        rr = simulate(layer, np.array([1.5], np.float32), cfg, backend="reference")
        assert (rk.cycles, rk.counters) == (rr.cycles, rr.counters)
        np.testing.assert_array_equal(rk.output.view(np.uint32), rr.output.view(np.uint32))


def test_hand_made_tables_step_a_row_less_pe_that_has_entries():
    """``n_active``: built tables step only the PEs that own a row (min(n_pe, n_out)); hand-made tables
    that give entries to a row-less PE (timing-only tables) keep every PE stepped, and time it as busy."""
    layer = CompressedLayer.from_codes(np.array([[1, 2], [3, 0]]), CB16, 4)  # 2 rows on 4 PEs
    t, bad, _ = eie_sim.build_tables(ptr=layer.ptr, v=layer.v, z=layer.z, n_out=2, code_bits=4, index_bits=4)
    assert bad == 0 and (t.n_pe, t.n_active) == (4, 2)
    # PE 3 (no rows) holds 5 timing-only entries in column 0 (fillers by the pointers, no MACs)
    ptr_t = np.array([[0, 0, 0, 0], [1, 1, 0, 5], [2, 1, 0, 5]])
    rows = dict(first_row=np.array([[0, 0, -2, -1], [0, -2, -2, -2]]),
                last_row=np.array([[0, 0, -2, -1], [0, -2, -2, -2]]))
    hand = eie_sim.LayerTables.from_arrays(ptr_t=ptr_t, **rows, col_fillers=np.array([5, 0]),
                                           mac_start=np.array([0, 2, 3]),
                                           macs=np.array([(0 << 4) | 1, (1 << 4) | 3, (0 << 4) | 2], np.uint16),
                                           n_out=2, code_bits=4)
    assert hand.n_active == 4
    got = _run(hand, [1.0, 1.0], fifo_depth=1, entries_per_line=16)
    assert got["busy"].tolist()[3] == 5 + 1  # 5 entries in column 0, one idle-take cycle in column 1
