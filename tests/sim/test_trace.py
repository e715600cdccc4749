"""Cycle traces (issue 14): the kernel's and the reference's event streams, the VCD and the trace JSON.

The traces are derived from the timing events the timing pass records; these tests
hold them to the run's own counters (busy and stall cycles per PE, broadcasts, group
loads, entries, fillers, spmat line reads, the last cycle), read the written VCD back
with ``vcdvcd`` (an independent reader), and check a small example worked by hand:
the 16 x 8 matrix of EIE Fig. 2/3 (PE0's non-zeros) on 4 PEs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

vcdvcd = pytest.importorskip("vcdvcd")

from eiesim.config import EIEConfig  # noqa: E402
from eiesim.errors import EieInputError  # noqa: E402
from eiesim.format.layout import CompressedLayer  # noqa: E402
from eiesim.sim.engine import simulate  # noqa: E402
from eiesim.sim.trace import ccu_signals, parse_pes, parse_window, pe_signals, write_trace  # noqa: E402

from ..conftest import FC8_DIR  # noqa: E402

CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)
FC8 = FC8_DIR  # honours EIESIM_SHARED_DATA (tests/conftest.py)

# EIE Fig. 2/3: PE0's non-zeros (row, column) of the 16 x 8 matrix over 4 PEs
PE0_NZ = [(0, 0), (8, 0), (12, 0), (4, 1), (0, 2), (12, 2), (0, 4), (4, 4), (0, 5), (12, 5),
          (0, 6), (8, 7), (12, 7)]


def _fig2_layer():
    codes = np.zeros((16, 8), dtype=np.int64)
    for n, (r, c) in enumerate(PE0_NZ):
        codes[r, c] = n % 15 + 1
    return CompressedLayer.from_codes(codes, CB, 4)


def _random_layer(rng, n_out, n_in, n_pe, density, index_bits, bias):
    codes = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 16, (n_out, n_in)), 0)
    bias_codes = rng.integers(0, 16, n_out) if bias else None
    return CompressedLayer.from_codes(codes, CB, n_pe, bias_codes=bias_codes, index_bits=index_bits)


def _vcd_cycles(vcd, name, n_cycles, period):
    """Per-cycle values of a VCD signal (ints; 'x' -> -1) from the reader's (time, value) list."""
    out = np.full(n_cycles, -1, dtype=np.int64)
    tv = vcd[name].tv
    for (t, v), nxt in zip(tv, tv[1:] + [(n_cycles * period, None)]):
        a, b = t // period, min(nxt[0] // period, n_cycles)
        if a < b:
            out[a:b] = -1 if "x" in v else int(v, 2)
    return out


# ------------------------------------------------------------------ hand-worked: Fig. 2/3 layer, 4 PEs
@pytest.mark.parametrize("backend", ["kernel", "reference"])
def test_fig2_layer_events_and_vcd_by_hand(backend, tmp_path):
    """N = 4, fifo_depth = 2, 64-bit lines (8 entries), a = 1 in every column (8 broadcasts).

    PE0's slices have 3 1 2 0 2 2 1 2 entries (busy 3 1 2 1 2 2 1 2 cycles); PEs 1-3 have
    empty slices (1 cycle each). With b_i = max(ready_i, max_k p_k(i-2) + 1) and
    p = max(b + 1, end of the previous column):

    c0 load g0; bc0 c1, bc1 c2, bc2 c3; bc3 ready c4, PE0 takes bc1 only at the end of
    c5, so the CCU stalls c4-c5 (PE0's queue holds bc1, bc2), bc3 at c6 (+ load g1);
    bc4 c7; bc5 stalls c8 (PE0 takes bc3 at the end of c8), bc5 c9; bc6 c10; bc7 stalls
    c11, bc7 c12 (+ load past g1). PE0 takes at the end of c2 5 6 8 9 11 13 14 and works
    until c16; PEs 1-3 take at 2 3 4 7 8 10 11 13. 17 cycles + 5 drain = 22.
    """
    layer = _fig2_layer()
    res = simulate(layer, np.ones(8, dtype=np.float32), EIEConfig(n_pe=4, fifo_depth=2), backend=backend,
                   events=True)
    ev = res.events
    assert res.cycles == 22 and ev.end_cycle == 17
    assert ev.bc_cycle.tolist() == [1, 2, 3, 6, 7, 9, 10, 12]
    assert ev.bc_ready.tolist() == [1, 2, 3, 4, 7, 8, 10, 11]
    assert ev.bc_col.tolist() == list(range(8))
    assert ev.take[:, 0].tolist() == [2, 5, 6, 8, 9, 11, 13, 14]
    for k in (1, 2, 3):
        assert ev.take[:, k].tolist() == [2, 3, 4, 7, 8, 10, 11, 13]
    assert ev.loads.tolist() == [0, 6, 12]
    assert res.stall.tolist() == [4, 0, 0, 0] and res.busy.tolist() == [14, 8, 8, 8]
    s0 = pe_signals(ev, 0)
    assert np.flatnonzero(s0.stall).tolist() == [4, 5, 8, 11]
    assert s0.occupancy[[3, 4, 5, 6]].tolist() == [1, 2, 2, 1]
    assert np.flatnonzero(s0.line_read).tolist() == [3, 12]  # entries 0 (c3) and 8 (c12): lines 0 and 1
    assert s0.column[3:17].tolist() == [0, 0, 0, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7]
    assert np.flatnonzero(ccu_signals(ev)["stall"]).tolist() == [4, 5, 8, 11]

    path = str(tmp_path / "fig2.vcd")
    write_trace(res, path)
    vcd = vcdvcd.VCDVCD(path)
    period = 1250  # ps at the default 800 MHz
    n = res.cycles
    assert _vcd_cycles(vcd, "eie.cycle", n, period).tolist() == list(range(n))
    assert _vcd_cycles(vcd, "eie.pe00.state", n, period)[2:18].tolist() == \
        [0, 1, 2, 2, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 0]
    assert np.flatnonzero(_vcd_cycles(vcd, "eie.ccu.broadcast", n, period)).tolist() == [1, 2, 3, 6, 7, 9, 10, 12]
    assert np.flatnonzero(_vcd_cycles(vcd, "eie.ccu.group_load", n, period)).tolist() == [0, 6, 12]
    assert _vcd_cycles(vcd, "eie.pe00.queue_occupancy", n, period)[3:7].tolist() == [1, 2, 2, 1]
    assert _vcd_cycles(vcd, "eie.pe00.column", n, period)[:4].tolist() == [-1, -1, -1, 0]
    assert _vcd_cycles(vcd, "eie.pe00.entries", n, period)[-1] == 13
    assert _vcd_cycles(vcd, "eie.pe00.spmat_line_reads", n, period)[-1] == 2
    assert vcd["eie.pe00.queue_occupancy"].size == "2"  # declared width: a depth-2 queue
    assert vcd["eie.pe00.column"].size == "4"  # 8 columns


# ------------------------------------------------------------------ kernel == reference, trace == counters
@pytest.mark.parametrize("seed,n_pe,depth,index_bits,bias,line_bits", [
    (1, 4, 1, 4, False, 64), (2, 8, 2, 2, True, 36), (3, 3, 8, 3, True, 56), (4, 16, 3, 4, False, 128),
])
def test_event_streams_identical_and_traces_match_counters(seed, n_pe, depth, index_bits, bias, line_bits,
                                                           tmp_path):
    rng = np.random.default_rng(seed)
    layer = _random_layer(rng, 12 * n_pe, 40, n_pe, 0.3, index_bits, bias)
    a = np.where(rng.random(40) < 0.6, rng.standard_normal(40), 0).astype(np.float32)
    cfg = EIEConfig(n_pe=n_pe, fifo_depth=depth, index_bits=index_bits, spmat_line_bits=line_bits)
    rk = simulate(layer, a, cfg, backend="kernel", events=True)
    rr = simulate(layer, a, cfg, backend="reference", events=True)
    for f in ("bc_cycle", "bc_ready", "bc_col", "bc_value", "take", "loads"):
        np.testing.assert_array_equal(getattr(rk.events, f), getattr(rr.events, f), err_msg=f)
    assert rk.cycles == rr.cycles
    ev, c = rk.events, rk.counters
    sigs = [pe_signals(ev, k) for k in range(n_pe)]
    assert [int(s.busy.sum()) for s in sigs] == rk.busy.tolist()
    assert [int(s.stall.sum()) for s in sigs] == rk.stall.tolist()
    assert sum(int(s.entry.sum()) for s in sigs) == c["entries"]
    assert sum(int(s.filler.sum()) for s in sigs) == c["fillers"]
    assert sum(int(s.line_read.sum()) for s in sigs) == c["spmat_line_reads"]
    ccu = ccu_signals(ev)
    assert int(ccu["broadcast"].sum()) == c["broadcasts"]
    assert int(ccu["group_load"].sum()) == c["group_loads"]
    assert int(ccu["stall"].sum()) == c["ccu_stall_cycles"]
    # the VCD read back by an independent reader says the same
    path = str(tmp_path / "t.vcd")
    write_trace(rk, path)
    vcd = vcdvcd.VCDVCD(path)
    n, period = rk.cycles, 1250
    for k in range(n_pe):
        assert int((_vcd_cycles(vcd, f"eie.pe{k:02d}.busy", n, period) == 1).sum()) == rk.busy[k]
        assert int((_vcd_cycles(vcd, f"eie.pe{k:02d}.stall", n, period) == 1).sum()) == rk.stall[k]
        assert int((_vcd_cycles(vcd, f"eie.pe{k:02d}.state", n, period) >= 1).sum()) >= rk.busy[k]
    assert int(_vcd_cycles(vcd, "eie.ccu.stall", n, period).sum()) == c["ccu_stall_cycles"]
    assert _vcd_cycles(vcd, "eie.ccu.broadcasts", n, period)[-1] == c["broadcasts"]
    assert _vcd_cycles(vcd, "eie.cycle", n, period)[-1] == n - 1
    assert vcd.endtime == n * period


def test_events_of_every_input_of_a_batch_match_single_runs():
    """trace_input picks one input of a batch; its events equal that input simulated alone."""
    from eiesim.sim import engine

    rng = np.random.default_rng(7)
    layer = _random_layer(rng, 32, 24, 4, 0.4, 4, True)
    cfg = EIEConfig(n_pe=4, fifo_depth=2)
    x = np.where(rng.random((3, 24)) < 0.5, 1.0, 0.0).astype(np.float32)
    for k in range(3):
        single = simulate(layer, x[k], cfg, events=True).events
        prog = engine.prepare(layer, x[0], cfg)
        act = np.concatenate([x, np.ones((3, 1), np.float32)], axis=1)
        raw = engine._kernel_batch(prog, act, np.zeros((0, 0), np.int64), trace_input=k)
        np.testing.assert_array_equal(raw["events"]["take"], single.take)
        np.testing.assert_array_equal(raw["events"]["bc"][:, 0], single.bc_cycle)


# ------------------------------------------------------------------ trace-event JSON
def test_trace_json_matches_counters_and_window(tmp_path):
    rng = np.random.default_rng(5)
    layer = _random_layer(rng, 64, 48, 4, 0.35, 4, False)
    a = np.ones(48, dtype=np.float32)
    res = simulate(layer, a, EIEConfig(n_pe=4, fifo_depth=2), events=True)
    path = str(tmp_path / "t.json")
    write_trace(res, path)
    doc = json.load(open(path))
    us = 1e6 / 800e6
    ev = doc["traceEvents"]
    for k in range(4):
        busy = sum(round(e["dur"] / us) for e in ev if e["ph"] == "X" and e["tid"] == k + 1 and e["cat"] == "eie")
        stall = sum(e["args"]["cycles"] for e in ev if e["ph"] == "X" and e["tid"] == k + 1 and e["cat"] == "stall")
        assert busy == res.busy[k] and stall == res.stall[k]
        ent = sum(e["args"]["entries"] for e in ev if e["ph"] == "X" and e["tid"] == k + 1 and e["cat"] == "eie")
        assert ent == int(res.events.ptr[k, -1])  # all columns broadcast: every entry once
    assert sum(1 for e in ev if e.get("name", "").startswith("broadcast col")) == res.counters["broadcasts"]
    assert sum(e["args"]["cycles"] for e in ev if e.get("tid") == 0 and e.get("name") == "stall") == \
        res.counters["ccu_stall_cycles"]
    assert {e["name"] for e in ev if e["ph"] == "C"} == {f"queue PE{k:02d}" for k in range(4)}
    # a window keeps only what overlaps it, clipped
    write_trace(res, path, window="10:30", pes="1,3")
    doc = json.load(open(path))
    xs = [e for e in doc["traceEvents"] if e["ph"] in "XiC"]
    assert xs and all(10 * us - 1e-9 <= e["ts"] and e["ts"] + e.get("dur", 0) <= 30 * us + 1e-9 for e in xs)
    assert {e.get("tid") for e in doc["traceEvents"] if e["ph"] == "X"} <= {0, 2, 4}


def test_options_are_checked():
    assert parse_window("0:2000", 100) == (0, 100)
    assert parse_window(":50", 100) == (0, 50)
    assert parse_pes("0,3,8-10", 64) == [0, 3, 8, 9, 10]
    for bad in ("5", "a:b", "20:10", "-1:5"):
        with pytest.raises(EieInputError, match="--trace-window"):
            parse_window(bad, 100)
    with pytest.raises(EieInputError, match="run has only"):
        parse_window("200:300", 100)
    with pytest.raises(EieInputError, match="PEs are 0..3"):
        parse_pes("2-4", 4)
    with pytest.raises(EieInputError, match=r"the range '3-1' is reversed \(write 1-3\)"):
        parse_pes("0,3-1", 64)  # said "PEs are 0..63" (fresh-user finding)
    res = simulate(_fig2_layer(), np.ones(8, dtype=np.float32), EIEConfig(n_pe=4))
    with pytest.raises(EieInputError, match="no timing events"):
        write_trace(res, "x.vcd")


# ------------------------------------------------------------------ the real FC8: CCU stalls where the counters say
@pytest.mark.skipif(not FC8.is_dir(), reason=f"{FC8} not present (set EIESIM_SHARED_DATA)")
def test_fc8_window_shows_ccu_stalls(tmp_path):
    from eiesim.format.eiedump import read_dump

    d = read_dump(FC8)
    res = simulate(d.layer, d.activations, events=True)
    ev = res.events
    assert res.cycles == 7896 and res.counters["ccu_stall_cycles"] == 6031
    path = str(tmp_path / "fc8.vcd")
    write_trace(res, path, window="0:2000", pes="0-3")
    vcd = vcdvcd.VCDVCD(path, signals=["eie.ccu.stall", "eie.ccu.broadcasts", "eie.cycle"])
    stall = _vcd_cycles(vcd, "eie.ccu.stall", 2000, 1250)
    expect = ccu_signals(ev)["stall"][:2000]
    assert np.array_equal(stall == 1, expect)
    # the counters' stall cycles that fall in the window: sum over broadcasts of their overlap
    lo, hi = ev.bc_ready, np.minimum(ev.bc_cycle, 2000)
    assert int(stall.sum()) == int(np.clip(hi - lo, 0, None).sum()) > 0
    assert _vcd_cycles(vcd, "eie.ccu.broadcasts", 2000, 1250)[-1] == int((ev.bc_cycle < 2000).sum())


# ------------------------------------------------------------------ the command line
def test_cli_trace_of_a_network_layer_and_input(tmp_path, capsys):
    from eiesim.cli import main
    from eiesim.commands.simulate import DEFAULT_INPUTS, DEFAULT_NETWORK, _trace_path
    from eiesim.format.container import load_network
    from eiesim.sim.network import simulate_network

    out = tmp_path / "t.vcd"
    assert main(["simulate", "--trace", str(out), "--trace-layer", "ip2", "--trace-input", "3",
                 "--trace-pes", "0-3", "--trace-window", "0:100"]) == 0
    assert "trace: " in capsys.readouterr().out
    vcd = vcdvcd.VCDVCD(str(out))
    assert sorted({s.split(".")[1] for s in vcd.signals if s.count(".") == 2}) == ["ccu", "pe00", "pe01", "pe02",
                                                                                    "pe03"]
    assert vcd.endtime == 100 * 1250
    # the traced run is input 3's run of ip2 inside the network simulation
    net = load_network(_trace_path(DEFAULT_NETWORK))
    x = np.load(_trace_path(DEFAULT_INPUTS))["inputs"][3:4].astype(np.float32)
    one = simulate_network(net, x)
    ip2 = one.layers[1]
    from eiesim.sim.trace import trace_network_layer

    traced = trace_network_layer(net, x, EIEConfig.for_layer(net.layers[0]), layer="ip2")
    assert traced.cycles == ip2.cycles and traced.busy.tolist() == ip2.pe_busy.tolist()
    assert traced.counters == ip2.counters


def test_trace_target_by_name_or_index_and_duplicate_names_refused():
    from eiesim.errors import EieInputError
    from eiesim.sim.trace import check_trace_target

    assert check_trace_target(["ip1", "ip2", "ip3"], 5, "ip2", 0) == 1
    assert check_trace_target(["ip1", "ip2", "ip3"], 5, "2", 0) == 2  # no layer named "2": its index
    assert check_trace_target(["a", "1", "b"], 5, "1", 0) == 1  # a name wins over an index
    assert check_trace_target(["a", "0", "b"], 5, "0", 0) == 1
    assert check_trace_target(["fc", "relu", "fc"], 5, "2", 0) == 2  # the way to pick the second "fc"
    with pytest.raises(EieInputError, match=r"layers 0 and 2 have that name; give the index .*--trace-layer 2"):
        check_trace_target(["fc", "relu", "fc"], 5, "fc", 0)
    with pytest.raises(EieInputError, match=r"layers 0, 1 and 3 have that name"):
        check_trace_target(["fc", "fc", "x", "fc"], 5, "fc", 0)
    for bad in ("3", "-1", "٢", "nope"):
        with pytest.raises(EieInputError, match=r"layers are ip1, ip2, ip3 \(or their indices 0\.\.2\)"):
            check_trace_target(["ip1", "ip2", "ip3"], 5, bad, 0)


@pytest.mark.parametrize("argv,msg", [
    (["--trace", "{d}/t.txt"], "suffix must be one of"),
    (["--trace", "{d}/t.vcd", "--trace-layer", "nope"], "layers are ip1, ip2, ip3"),
    (["--trace", "{d}/t.vcd", "--trace-layer", "3"], "(or their indices 0..2)"),
    (["--trace", "{d}/t.vcd", "--trace-input", "100"], "inputs 0..99"),
    (["--trace", "{d}/t.vcd", "--trace-pes", "70"], "PEs are 0..63"),
    (["--trace", "{d}/t.vcd", "--trace-window", "9:3"], "--trace-window"),
    (["--trace-window", "0:10"], "need --trace OUT"),
])
def test_cli_trace_options_fail_before_simulating(argv, msg, tmp_path, capsys):
    from eiesim.cli import main

    code = main(["simulate"] + [a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and msg in err
    assert list(tmp_path.iterdir()) == []
