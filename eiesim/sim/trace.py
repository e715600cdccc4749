"""Cycle traces of a simulated layer: timing events -> per-cycle signals -> VCD / Perfetto JSON.

Every signal here is derived from a :class:`~eiesim.sim.result.TimingEvents`, the
event stream the timing pass itself computed (the Cython kernel's timing pass, or
the reference model: the tests hold the two identical), plus the layer's pointers
and codes. Nothing is re-simulated: for broadcast i (cycle ``b_i``, first ready
``r_i``, column j) and PE k (take cycle ``p``, slice of ``n`` entries starting at
local entry ``e0``):

* the queue of PE k holds broadcast i during cycles ``b_i < t <= p`` (written at
  the end of ``b_i``, taken at the end of ``p``), so its occupancy at the start of
  cycle t is the number of such i;
* PE k works on column j during cycles ``p + 1 .. p + max(1, n)`` and fetches local
  entry ``e0 + m`` in cycle ``p + 1 + m`` (a filler when its code is 0; an spmat
  line read when it lies in another line than the entry the PE fetched before);
* the CCU stalls in cycles ``r_i .. b_i - 1``; during them PE k's queue is full
  (it holds the CCU back) up to the cycle it takes broadcast ``i - D``
  (EIE, ISCA 2016, Section IV: activation queue, CCU; D = ``fifo_depth``).

Per-PE ``busy`` and ``stall`` summed over the whole run equal the result's
``busy`` and ``stall`` arrays; the tests read the written VCD back and check it.

The VCD is written with ``pyvcd`` (scopes ``eie``, ``eie.ccu``, ``eie.pe00`` ...;
timescale 1 ps, one cycle = ``round(1e12 / clock_hz)`` ps). The JSON follows the
Chrome trace-event format (``traceEvents`` with ``ph`` "M", "X", "i", "C"; ``ts``
and ``dur`` in microseconds), which ui.perfetto.dev and chrome://tracing open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import EieInputError
from .result import SimResult, TimingEvents

__all__ = ["trace_network_layer", "PeSignals", "pe_signals", "ccu_signals", "write_vcd", "trace_events_json", "write_trace",
           "parse_window", "parse_pes", "STATE_IDLE", "STATE_BUSY", "STATE_STALL", "TRACE_FORMATS"]

#: PE state values in the trace: no column to work on (starved), working on a column, or its full
#: activation queue holds the CCU's broadcast back (takes priority over busy).
STATE_IDLE, STATE_BUSY, STATE_STALL = 0, 1, 2
_STATE_NAMES = {STATE_IDLE: "idle (starved)", STATE_BUSY: "busy", STATE_STALL: "stalled (queue full)"}
#: File suffixes and what they hold.
TRACE_FORMATS = {".vcd": "Value Change Dump (GTKWave)", ".json": "Chrome trace-event JSON (ui.perfetto.dev)"}


@dataclass(frozen=True)
class PeSignals:
    """One PE's signals, one value per cycle of ``[0, n_cycles)``.

    Attributes
    ----------
    occupancy : ndarray of int64, shape (n_cycles,)
        Activations in the PE's queue at the start of the cycle.
    busy, stall : ndarray of bool, shape (n_cycles,)
        Working on a column; queue full while the CCU holds a broadcast back.
    column : ndarray of int64, shape (n_cycles,)
        Column worked on, -1 when idle.
    entry, filler, line_read : ndarray of bool, shape (n_cycles,)
        An entry fetched this cycle; it is a filler; it needed an spmat line read.
    """

    occupancy: np.ndarray
    busy: np.ndarray
    stall: np.ndarray
    column: np.ndarray
    entry: np.ndarray
    filler: np.ndarray
    line_read: np.ndarray

    @property
    def state(self) -> np.ndarray:
        """int64 (n_cycles,): :data:`STATE_IDLE`, :data:`STATE_BUSY` or :data:`STATE_STALL`."""
        s = self.busy.astype(np.int64) * STATE_BUSY
        s[self.stall] = STATE_STALL
        return s


def _n_cycles(ev: TimingEvents) -> int:
    return ev.end_cycle + ev.drain


def pe_signals(ev: TimingEvents, k: int) -> PeSignals:
    """PE ``k``'s per-cycle signals over the whole run (``end_cycle + drain`` cycles).

    Parameters
    ----------
    ev : TimingEvents
    k : int
        PE index, 0 <= k < ev.n_pe.

    Returns
    -------
    PeSignals
    """
    n = _n_cycles(ev) + 1
    b = ev.bc_cycle
    p = ev.take[:, k]
    j = ev.bc_col
    e0 = ev.ptr[k, j]
    cnt = ev.ptr[k, j + 1] - e0
    w = np.maximum(cnt, 1)
    occ = np.zeros(n + 1, dtype=np.int64)
    np.add.at(occ, b + 1, 1)
    np.add.at(occ, p + 1, -1)
    occ = np.cumsum(occ)[:n]
    busy_d = np.zeros(n + 1, dtype=np.int64)
    np.add.at(busy_d, p + 1, 1)
    np.add.at(busy_d, p + 1 + w, -1)
    busy = np.cumsum(busy_d)[:n] > 0
    column = np.full(n, -1, dtype=np.int64)
    # busy intervals do not overlap: mark each interval's column
    cyc = np.repeat(p + 1, w) + _ranges(w)
    column[cyc] = np.repeat(j, w)
    # entries fetched: cycle p + 1 + m fetches local entry e0 + m
    loc = np.repeat(e0, cnt) + _ranges(cnt)
    ecyc = np.repeat(p + 1, cnt) + _ranges(cnt)
    entry = np.zeros(n, dtype=bool)
    entry[ecyc] = True
    filler = np.zeros(n, dtype=bool)
    filler[ecyc] = ev.v[ev.pe_offsets[k] + loc] == 0
    line = loc // ev.entries_per_line
    lr = np.ones(line.shape[0], dtype=bool)
    lr[1:] = line[1:] != line[:-1]
    line_read = np.zeros(n, dtype=bool)
    line_read[ecyc] = lr
    stall = np.zeros(n, dtype=bool)
    d = ev.fifo_depth
    if b.shape[0] > d:
        i = np.flatnonzero(ev.bc_ready[d:] < b[d:]) + d
        lo = ev.bc_ready[i]
        hi = np.minimum(ev.take[i - d, k], b[i] - 1)
        keep = hi >= lo
        lo, hi = lo[keep], hi[keep]
        sd = np.zeros(n + 1, dtype=np.int64)
        np.add.at(sd, lo, 1)
        np.add.at(sd, hi + 1, -1)
        stall = np.cumsum(sd)[:n] > 0
    sl = slice(0, n - 1)
    return PeSignals(occ[sl], busy[sl], stall[sl], column[sl], entry[sl], filler[sl], line_read[sl])


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(l) for l in ``lengths`` (int64)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts


def ccu_signals(ev: TimingEvents) -> Dict[str, np.ndarray]:
    """The CCU's per-cycle signals over the whole run.

    Returns
    -------
    dict of str to ndarray, each shape (n_cycles,)
        ``broadcast`` (bool: a broadcast this cycle), ``column`` (int64, the
        broadcast's column, -1 none), ``value`` (float32, its activation, NaN none),
        ``group_load`` (bool), ``stall`` (bool: a non-zero held back, some queue full).
    """
    n = _n_cycles(ev)
    bcast = np.zeros(n, dtype=bool)
    bcast[ev.bc_cycle] = True
    col = np.full(n, -1, dtype=np.int64)
    col[ev.bc_cycle] = ev.bc_col
    val = np.full(n, np.nan, dtype=np.float32)
    val[ev.bc_cycle] = ev.bc_value
    load = np.zeros(n, dtype=bool)
    load[ev.loads] = True
    sd = np.zeros(n + 1, dtype=np.int64)
    np.add.at(sd, ev.bc_ready, 1)
    np.add.at(sd, ev.bc_cycle, -1)
    return {"broadcast": bcast, "column": col, "value": val, "group_load": load, "stall": np.cumsum(sd)[:n] > 0}


# ----------------------------------------------------------------------------- options
def parse_window(text: Optional[str], n_cycles: int) -> Tuple[int, int]:
    """``"START:END"`` (cycles, END exclusive; either may be empty) -> (start, end) clipped to the run.

    Raises
    ------
    EieInputError
        Not two integers, START < 0, or an empty window.
    """
    if text is None:
        return 0, n_cycles
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start = int(parts[0]) if parts[0].strip() else 0
        end = int(parts[1]) if parts[1].strip() else n_cycles
    except ValueError:
        raise EieInputError(f"--trace-window {text!r}: expected START:END in cycles, e.g. 0:2000") from None
    if start < 0 or end <= start:
        raise EieInputError(f"--trace-window {text!r}: need 0 <= START < END")
    if start >= n_cycles:
        raise EieInputError(f"--trace-window {text!r}: the run has only {n_cycles:,} cycles")
    return start, min(end, n_cycles)


def parse_pes(text: Optional[str], n_pe: int) -> List[int]:
    """``"0,3,8-11"`` -> sorted PE indices; None -> every PE.

    Raises
    ------
    EieInputError
        A malformed item or a PE outside ``0 .. n_pe - 1``.
    """
    if text is None:
        return list(range(n_pe))
    out = set()
    for item in text.split(","):
        item = item.strip()
        try:
            if "-" in item:
                a, b = (int(x) for x in item.split("-", 1))
            else:
                a = b = int(item)
        except ValueError:
            raise EieInputError(f"--trace-pes {text!r}: {item!r} is not a PE index or range A-B") from None
        if a > b:
            raise EieInputError(f"--trace-pes {text!r}: the range {item!r} is reversed (write {b}-{a})")
        if not (0 <= a <= b < n_pe):
            raise EieInputError(f"--trace-pes {text!r}: PEs are 0..{n_pe - 1}")
        out.update(range(a, b + 1))
    return sorted(out)


# ----------------------------------------------------------------------------- VCD
def _width(max_value: int) -> int:
    return max(1, int(max_value).bit_length())


def write_vcd(ev: TimingEvents, fh, *, window: Tuple[int, int], pes: Sequence[int], comment: str = "") -> None:
    """Write the signals of cycles ``window`` for ``pes`` as a VCD (pyvcd) to the text file ``fh``.

    Scopes and variables (widths declared from the layer: ``D`` = queue depth,
    ``C`` = columns):

    * ``eie.cycle`` (32 bits): the cycle number;
    * ``eie.ccu``: ``broadcast`` (1), ``bcast_column`` (bits of C; x when none),
      ``bcast_value`` (real), ``group_load`` (1), ``stall`` (1), ``broadcasts`` (32, running count);
    * ``eie.peKK``: ``queue_occupancy`` (bits of D), ``state`` (2: 0 idle/starved, 1 busy,
      2 stalled = its full queue holds the CCU back), ``busy`` (1), ``stall`` (1),
      ``column`` (bits of C; x when idle), ``entries``, ``fillers``, ``spmat_line_reads``
      (32, running counts since cycle 0).

    Timestamps: cycle x period in ps (timescale 1 ps).

    Parameters
    ----------
    ev : TimingEvents
    fh : text file
    window : (int, int)
        Cycles [start, end).
    pes : sequence of int
    comment : str
        Written into the VCD header.
    """
    from vcd import VCDWriter

    start, end = window
    period = max(1, int(round(1e12 / ev.clock_hz)))
    cw = _width(ev.n_cols)
    changes = []  # (cycle, var order, var, value)

    def add(var, values, order, fmt=None):
        seg = values[start:end]
        if seg.shape[0] == 0:
            return
        idx = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if seg.dtype.kind != "f" else \
            np.flatnonzero(np.r_[True, ~((seg[1:] == seg[:-1]) | (np.isnan(seg[1:]) & np.isnan(seg[:-1])))])
        for i in idx:
            v = seg[i].item()
            changes.append((start + int(i), order, var, fmt(v) if fmt else v))

    nat = lambda v: "x" if v < 0 else v  # noqa: E731
    with VCDWriter(fh, timescale="1 ps", date="", version="eiesim", comment=comment, check_values=False) as w:
        order = 0
        cyc = w.register_var("eie", "cycle", "integer", size=32, init=start)
        ccu = ccu_signals(ev)
        specs = [("broadcast", "wire", 1, ccu["broadcast"].astype(np.int64), None),
                 ("bcast_column", "wire", cw, ccu["column"], nat),
                 ("bcast_value", "real", None, ccu["value"], lambda v: 0.0 if v != v else v),
                 ("group_load", "wire", 1, ccu["group_load"].astype(np.int64), None),
                 ("stall", "wire", 1, ccu["stall"].astype(np.int64), None),
                 ("broadcasts", "integer", 32, np.cumsum(ccu["broadcast"]).astype(np.int64), None)]
        for name, vt, size, vals, fmt in specs:
            var = w.register_var("eie.ccu", name, vt, size=size)
            add(var, vals, order, fmt)
            order += 1
        dw = _width(ev.fifo_depth)
        for k in pes:
            s = pe_signals(ev, k)
            scope = f"eie.pe{k:02d}"
            for name, vt, size, vals, fmt in (
                    ("queue_occupancy", "wire", dw, s.occupancy, None),
                    ("state", "wire", 2, s.state, None),
                    ("busy", "wire", 1, s.busy.astype(np.int64), None),
                    ("stall", "wire", 1, s.stall.astype(np.int64), None),
                    ("column", "wire", cw, s.column, nat),
                    ("entries", "integer", 32, np.cumsum(s.entry), None),
                    ("fillers", "integer", 32, np.cumsum(s.filler), None),
                    ("spmat_line_reads", "integer", 32, np.cumsum(s.line_read), None)):
                var = w.register_var(scope, name, vt, size=size)
                add(var, vals, order, fmt)
                order += 1
        changes.sort(key=lambda c: (c[0], c[1]))
        ci = 0
        for t in range(start, end):
            if t > start:
                w.change(cyc, t * period, t)
            while ci < len(changes) and changes[ci][0] == t:
                _, _, var, val = changes[ci]
                w.change(var, t * period, val)
                ci += 1
        w.change(cyc, end * period, end)  # closes the window: its last cycle shows at full width


# ----------------------------------------------------------------------------- trace-event JSON
def _runs(mask: np.ndarray, start: int, end: int) -> List[Tuple[int, int]]:
    """[(first, last + 1)] of the True runs of ``mask[start:end]`` (absolute cycles)."""
    seg = mask[start:end].astype(np.int8)
    d = np.diff(np.r_[0, seg, 0])
    return [(start + int(a), start + int(b)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def trace_events_json(ev: TimingEvents, *, window: Tuple[int, int], pes: Sequence[int]) -> dict:
    """The window's events as a Chrome trace-event document (opens in ui.perfetto.dev).

    One process (pid 1, the layer); thread 0 is the CCU (slices ``broadcast col j``
    with args ``column``/``value``, ``stall``; instant events ``group load``), thread
    k + 1 is PE k (slices ``col j`` with args ``column``, ``entries``, ``fillers``,
    ``spmat_line_reads``; slices ``queue full (CCU stalled)``); counter events
    ``queue PEkk`` (args ``occupancy``) give one counter track per PE. ``ts``/``dur``
    in microseconds (the format's unit), one cycle = 1 / clock_hz.

    Returns
    -------
    dict
        ``{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}``.
    """
    start, end = window
    us = 1e6 / ev.clock_hz
    evs: list = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": f"EIE layer {ev.name}"}},
                 {"ph": "M", "pid": 1, "tid": 0, "name": "thread_name", "args": {"name": "CCU"}},
                 {"ph": "M", "pid": 1, "tid": 0, "name": "thread_sort_index", "args": {"sort_index": 0}}]

    def sl(tid, name, a, b, args=None, cat="eie"):
        e = {"ph": "X", "pid": 1, "tid": tid, "name": name, "cat": cat, "ts": round(a * us, 6),
             "dur": round((b - a) * us, 6)}
        if args:
            e["args"] = args
        evs.append(e)

    inw = (ev.bc_cycle >= start) & (ev.bc_cycle < end)
    for b, j, v in zip(ev.bc_cycle[inw], ev.bc_col[inw], ev.bc_value[inw]):
        sl(0, f"broadcast col {int(j)}", int(b), int(b) + 1, {"column": int(j), "value": float(v)})
    ccu = ccu_signals(ev)
    for a, b in _runs(ccu["stall"], start, end):
        sl(0, "stall", a, b, {"cycles": b - a})
    for t in ev.loads[(ev.loads >= start) & (ev.loads < end)]:
        evs.append({"ph": "i", "pid": 1, "tid": 0, "s": "t", "name": "group load", "ts": round(int(t) * us, 6)})
    for k in pes:
        tid = k + 1
        evs.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": f"PE{k:02d}"}})
        evs.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
        s = pe_signals(ev, k)
        p = ev.take[:, k]
        j = ev.bc_col
        cnt = ev.ptr[k, j + 1] - ev.ptr[k, j]
        w = np.maximum(cnt, 1)
        ent = np.cumsum(s.entry)
        fil = np.cumsum(s.filler)
        lr = np.cumsum(s.line_read)
        sel = np.flatnonzero((p + w >= start) & (p + 1 < end))
        for i in sel:
            a, b = max(int(p[i]) + 1, start), min(int(p[i] + w[i]) + 1, end)
            c0, c1 = a - 1, b - 1  # running counts before a and at b - 1

            def d(x):
                return int(x[c1] - (x[c0] if c0 >= 0 else 0))

            sl(tid, f"col {int(j[i])}", a, b, {"column": int(j[i]), "entries": d(ent), "fillers": d(fil),
                                              "spmat_line_reads": d(lr)})
        for a, b in _runs(s.stall, start, end):
            sl(tid, "queue full (CCU stalled)", a, b, {"cycles": b - a}, cat="stall")
        occ = s.occupancy[start:end]
        ch = np.flatnonzero(np.r_[True, occ[1:] != occ[:-1]])
        name = f"queue PE{k:02d}"
        for i in ch:
            evs.append({"ph": "C", "pid": 1, "name": name, "ts": round((start + int(i)) * us, 6),
                        "args": {"occupancy": int(occ[i])}})
    return {
        "traceEvents": evs,
        "displayTimeUnit": "ns",
        "otherData": {"layer": ev.name, "window_cycles": [start, end], "pes": list(map(int, pes)),
                      "clock_hz": ev.clock_hz, "fifo_depth": ev.fifo_depth, "cycle_us": us,
                      "states": {str(k): v for k, v in _STATE_NAMES.items()}},
    }


def write_trace(result: SimResult, path: str, *, window: Optional[str] = None, pes: Optional[str] = None,
                comment: str = "") -> Tuple[int, int]:
    """Write ``result``'s trace to ``path`` (``.vcd`` or ``.json``), atomically.

    Parameters
    ----------
    result : SimResult
        From ``simulate(..., events=True)``.
    path : str
    window : str, optional
        ``"START:END"`` cycles; default the whole run.
    pes : str, optional
        ``"0,3,8-11"``; default every PE.
    comment : str

    Returns
    -------
    (int, int)
        The window written.

    Raises
    ------
    EieInputError
        No events in ``result``, an unknown suffix, a bad window or PE list, or the file cannot be written.
    """
    from .._io import json_bytes, write_atomic, write_atomic_with

    ev = result.events
    if ev is None:
        raise EieInputError("write_trace: the result has no timing events (simulate with events=True)")
    low = path.lower()
    if not low.endswith(tuple(TRACE_FORMATS)):
        raise EieInputError(f"--trace {path}: the suffix must be one of {', '.join(TRACE_FORMATS)}")
    win = parse_window(window, result.cycles)
    sel = parse_pes(pes, ev.n_pe)
    if low.endswith(".vcd"):
        def writer(fh):
            import io

            text = io.TextIOWrapper(fh, encoding="ascii", newline="\n")
            write_vcd(ev, text, window=win, pes=sel, comment=comment)
            text.flush()
            text.detach()

        write_atomic_with(path, writer, error=EieInputError)
    else:
        write_atomic(path, json_bytes(trace_events_json(ev, window=win, pes=sel), indent=None),
                     error=EieInputError)
    return win


def trace_network_layer(network, inputs, config, *, layer: Optional[str] = None, input_index: int = 0,
                        backend: str = "kernel") -> SimResult:
    """Simulate one layer of ``network`` on one input with its timing events recorded.

    The layer's input is the network's forward pass of input ``input_index``
    through the layers before it (ReLU between layers, as
    :func:`eiesim.sim.network.simulate_network` runs it), so the traced run is
    exactly that input's run of that layer in the network simulation.

    Parameters
    ----------
    network : eiesim.format.container.Network
    inputs : ndarray of float, shape (n_inputs, n_in)
    config : EIEConfig
    layer : str, optional
        Layer name, or its 0-based index as a string when no layer has that name
        (:func:`check_trace_target`); default the first layer.
    input_index : int
        Which input (0-based).
    backend : {"kernel", "reference"}

    Returns
    -------
    SimResult
        With ``events`` set.

    Raises
    ------
    EieInputError
        Unknown layer name, input index out of range, or an ``lstm`` layer at or
        before the traced one (not supported).
    """
    from ..format.network import Network
    from .engine import simulate
    from .network import relu, simulate_network

    names = [l.name or f"layer{k}" for k, l in enumerate(network.layers)]
    idx = check_trace_target(names, int(np.asarray(inputs).shape[0]), layer, input_index)
    kinds = getattr(network, "kinds", None) or ["fc"] * len(names)
    if any(kind != "fc" for kind in kinds[:idx + 1]):
        raise EieInputError(f"--trace-layer {names[idx]!r}: tracing covers fc layers fed by fc layers; this "
                            "network has an lstm layer up to it (its input depends on the previous step)")
    a = np.asarray(inputs)[input_index:input_index + 1]
    if idx > 0:
        head = Network(tuple(network.layers[:idx]), activation=network.activation, metadata={})
        a = simulate_network(head, a, config, backend=backend).outputs
        if network.activation == "relu":
            a = relu(a)
    return simulate(network.layers[idx], a[0], config, backend=backend, warn=False, events=True)


def check_trace_target(names: Sequence[str], n_inputs: int, layer: Optional[str], input_index: int) -> int:
    """Index of the layer to trace; checks the input index (before any simulation).

    ``layer`` is a layer's name or, when no layer has that name, its 0-based index (``"2"``):
    the way to pick one of two layers of the same name.

    Raises
    ------
    EieInputError
        Unknown layer name or index (the message lists the names), a name that more than one layer
        has (the message gives their indices), or input index outside ``0 .. n_inputs - 1``.
    """
    if not (0 <= input_index < n_inputs):
        raise EieInputError(f"--trace-input {input_index}: the run has inputs 0..{n_inputs - 1}")
    if layer is None:
        return 0
    names = list(names)
    hits = [k for k, name in enumerate(names) if name == layer]
    if len(hits) > 1:
        listed = f"{', '.join(map(str, hits[:-1]))} and {hits[-1]}"
        raise EieInputError(f"--trace-layer {layer!r}: layers {listed} have that name; "
                            f"give the index of the one to trace (e.g. --trace-layer {hits[-1]})")
    if hits:
        return hits[0]
    if layer.isascii() and layer.isdigit() and int(layer) < len(names):
        return int(layer)
    raise EieInputError(f"--trace-layer {layer!r}: the network's layers are {', '.join(names)} "
                        f"(or their indices 0..{len(names) - 1})")
