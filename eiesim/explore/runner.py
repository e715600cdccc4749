"""Run a sweep: a loop over :func:`~eiesim.sim.engine.simulate` and the energy model, on any Executor.

Points are grouped by workload and PE count (so a worker builds each layer
layout once), cut into batches (one task each; a point takes 1-50 ms, a task
should take >= ~100 ms) and handed to a :class:`concurrent.futures.Executor`
-- a ``ProcessPoolExecutor``, a Dask ``Client.get_executor()``, a
Slurm-backed executor, or none (serial, in this process). Each finished
point becomes one JSON line, appended and flushed as its batch comes back;
a resumed sweep skips the points already in the file. Results do not depend
on the executor or the batching: every point is simulated from its
resolved settings alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, wait
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import __version__
from .._kernels import limit_cpus, usable_cpus
from ..config import EIEConfig
from ..errors import EieConfigError, EieError, EieInputError
from .spec import Point, SweepSpec

__all__ = [
    "run_point",
    "run_batch",
    "run_sweep",
    "make_batches",
    "read_results",
    "SweepSummary",
    "RESULT_VERSION",
    "table_identity",
    "resolve_workload",
    "default_batch_size",
    "EieSweepError",
    "SweepInterrupted",
    "local_pool",
    "stop_local_pool",
]


class EieSweepError(EieError, RuntimeError):
    """A sweep could not finish: a worker died or the executor failed.

    The points written before the failure stay in the results file; the
    message says how many and that ``--resume`` finishes the rest.
    """


class SweepInterrupted(EieSweepError):
    """:func:`run_sweep`'s ``stop`` asked it to stop (the command line: Ctrl-C).

    The queued tasks were cancelled; the points written before stay in the results
    file (the message says how many) and ``--resume`` finishes the rest.
    """


#: Seconds between two polls of :func:`run_sweep`'s ``stop`` while tasks run on an executor.
STOP_POLL_S = 0.2

#: Version of the JSON line layout written by :func:`run_sweep`.
RESULT_VERSION = 1
#: Longest results line accepted (bytes; a record is a few KB).
MAX_LINE_BYTES = 1 << 24
#: Largest input file read for a workload (bytes).
MAX_INPUT_BYTES = 1 << 30
#: Workloads (layouts, inputs) one process keeps in memory between points; a memo only:
#: results never depend on it.
_CACHE_SIZE = 24


class _Cache:
    """A small LRU memo of built workloads and layouts, per process."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self.data: "OrderedDict[Any, Any]" = OrderedDict()

    def get(self, key, build: Callable[[], Any]):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        val = build()
        self.data[key] = val
        while len(self.data) > self.size:
            self.data.popitem(last=False)
        return val


_MEMO = _Cache()


# --------------------------------------------------------------------------- workloads
def _benchmark_base(ref: str, seed: int, profile: str, weight_density: float, code_bits: int, index_bits: int,
                    n_pe: int):
    import dataclasses

    from ..workloads.benchmarks import benchmark_spec
    from ..workloads.synthetic import generate

    spec = dataclasses.replace(benchmark_spec(ref, profile, seed=seed), weight_density=weight_density)
    return generate(spec, n_pe, code_bits=code_bits, index_bits=index_bits)


def _layers_for(point: Point, root: str) -> Tuple[list, Optional[np.ndarray], Optional[np.ndarray], str]:
    """(layers laid out for the point's N, inputs (n, n_in) float32, labels or None, activation)."""
    s = point.settings
    ws = s["workload_spec"]
    n_pe, cb, ib = s["n_pe"], s["code_bits"], s["index_bits"]
    inputs = s["inputs"]
    if ws["kind"] == "benchmark":
        wkey = ("bench", ws["ref"], ws["seed"], ws["profile"], s["weight_density"], cb, ib)
        # the first N a process meets generates the layer; other N are exact re-layouts of it
        base = _MEMO.get(wkey, lambda: _benchmark_base(ws["ref"], ws["seed"], ws["profile"],
                                                        s["weight_density"], cb, ib, n_pe))
        layer = _MEMO.get(wkey + (n_pe,), lambda: base.layer if base.layer.n_pe == n_pe else base.layer.relayout(n_pe))
        x = _MEMO.get(wkey + ("acts", s["act_density"], inputs.get("count", 1)),
                      lambda: _benchmark_inputs(base, s["act_density"], inputs.get("count", 1)))
        return [layer], x, None, "none"
    path = os.path.join(root, ws["ref"])
    if ws["kind"] == "dump":
        from ..format.eiedump import read_dump

        dump = _MEMO.get(("dump", path), lambda: read_dump(path))
        layers = [dump.layer]
        activation = "none"
    else:
        from ..format.container import load_network

        net = _MEMO.get(("net", path), lambda: load_network(path))
        layers = list(net.layers)
        activation = net.activation
    layers = _MEMO.get((ws["kind"], path, n_pe),
                       lambda: [l if l.n_pe == n_pe else l.relayout(n_pe) for l in layers])
    x, labels = _MEMO.get((ws["kind"], path, "inputs", json.dumps(inputs, sort_keys=True, allow_nan=False)),
                          lambda: _file_inputs(ws["kind"], path, inputs, root, layers[0].n_in, layers[-1].n_out))
    return layers, x, labels, activation


def _benchmark_inputs(base, act_density: float, count: int) -> np.ndarray:
    """``count`` activation vectors; vector 0 is the generator's own draw (same seed stream)."""
    from ..workloads.synthetic import make_activations

    spec = base.spec
    s_act = np.random.SeedSequence(spec.seed).spawn(6)[4]  # generate()'s activation stream
    out = np.empty((count, spec.n_in), dtype=np.float32)
    for i in range(count):
        seed = s_act if i == 0 else np.random.SeedSequence([spec.seed, 7919, i])
        out[i] = make_activations(spec.n_in, act_density, base.col_multipliers, spec.act_affinity, seed=seed)
    return out


def _file_inputs(kind: str, path: str, inputs: dict, root: str, n_in: int, n_out: int):
    from .._io import load_npz_members, parse_npy, read_regular_file

    count = inputs.get("count")
    labels = None
    if "file" in inputs:
        f = os.path.join(root, inputs["file"])
        if f.lower().endswith(".npz"):
            arrays = load_npz_members(f, ("inputs", "labels"), MAX_INPUT_BYTES, error=EieInputError)
            if "inputs" not in arrays:
                raise EieInputError(f"{f}: .npz has no 'inputs' array (has {arrays['__files__']})")
            x, labels = arrays["inputs"], arrays.get("labels")
        elif f.lower().endswith(".npy"):
            x = parse_npy(read_regular_file(f, MAX_INPUT_BYTES, error=EieInputError, what=".npy file"), f,
                          error=EieInputError)
        else:
            raw = read_regular_file(f, MAX_INPUT_BYTES, error=EieInputError, what="float32 .dat file")
            if len(raw) % 4:
                raise EieInputError(f"{f}: {len(raw)} bytes is not a whole number of float32 values")
            x = np.frombuffer(raw, dtype="<f4")
        where = f
    elif "dataset" in inputs:
        from ..workloads.mnist import load_mnist

        d = load_mnist()
        x, labels, where = d["x_test"], d["y_test"], "MNIST test split"
    else:
        from ..format.eiedump import read_dump

        dump = read_dump(path)
        if dump.activations is None:
            raise EieInputError(f"{path}: no act.dat; give inputs.file")
        x, where = dump.activations, os.path.join(path, "act.dat")
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(-1, n_in) if x.size and x.size % n_in == 0 else x[None, :]
    if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] == 0 or x.dtype.kind not in "biuf":
        raise EieInputError(f"{where}: inputs of shape {x.shape} ({x.dtype}), expected numbers of shape (n, {n_in})")
    if count is not None:
        if count > x.shape[0]:
            raise EieInputError(f"{where}: inputs.count = {count} but it holds {x.shape[0]} inputs")
        x = x[:count]
        labels = labels[:count] if labels is not None else None
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise EieInputError(f"{where}: an input activation is not a finite float32")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu" or (
                labels.size and (labels.min() < 0 or labels.max() >= n_out)):
            raise EieInputError(f"{where}: 'labels' must be integers in 0..{n_out - 1}, one per input")
    return x, labels


def resolve_workload(kind: str, path: str) -> Tuple[int, int, int]:
    """Defaults of a dump or network workload: ``(code_bits, index_bits, n_pe)`` of its first layer.

    Parameters
    ----------
    kind : {"dump", "network"}
    path : str
        Dump directory or ``.eie`` file.

    Returns
    -------
    tuple of int

    Raises
    ------
    EieFormatError
        The file cannot be read (from the format readers).
    """
    if kind == "dump":
        from ..format.eiedump import read_dump

        layer = _MEMO.get(("dump", path), lambda: read_dump(path)).layer
    else:
        from ..format.container import load_network

        layer = _MEMO.get(("net", path), lambda: load_network(path)).layers[0]
    return int(layer.code_bits), int(layer.index_bits), int(layer.n_pe)


# --------------------------------------------------------------------------- one point
def table_identity(table) -> Dict[str, str]:
    """Name and content hash of an energy table (which prices a results line).

    Parameters
    ----------
    table : EnergyTable

    Returns
    -------
    dict
        ``name`` and ``sha256`` (first 16 hex digits of the SHA-256 of
        :meth:`EnergyTable.to_toml`).
    """
    return {"name": table.name, "sha256": hashlib.sha256(table.to_toml().encode("utf-8")).hexdigest()[:16]}


def _summary(a: np.ndarray) -> Dict[str, float]:
    return {"min": int(a.min()), "max": int(a.max()), "mean": float(a.mean()), "total": int(a.sum())}


def run_point(point: Point, root: str = ".", table=None, *, backend: str = "kernel",
              calibration=None) -> Dict[str, Any]:
    """Simulate one point and price it: the JSON line of a results file.

    Parameters
    ----------
    point : Point
        Resolved settings (see :class:`eiesim.explore.spec.Point`).
    root : str
        Folder the point's relative paths are resolved against.
    table : EnergyTable, optional
        Default :data:`eiesim.energy.tables.DEFAULT_TABLE`.
    backend : {"kernel", "reference"}
        Simulator backend (identical results; the reference is slow).
    calibration : Calibration, optional
        :func:`eiesim.energy.model.calibrate` of ``table`` (computed when absent).

    Returns
    -------
    dict
        ``version`` (line layout), ``eiesim`` (the simulator's version, so a
        resumed sweep never mixes versions), ``point`` (id), ``settings``; per input, over all layers:
        ``cycles`` (cycles), ``time_s`` (s); ``n_inputs``, ``cycles_total``;
        ``load_efficiency`` = MACs / (cycles x N) (EIE Section VI-B, Fig. 8);
        ``real_work`` = MACs / entries processed (EIE Fig. 12, fillers are
        the rest); ``pe`` -- per-PE ``busy``, ``idle``, ``stall`` cycles
        (min/max/mean/total over PEs) and ``idle_fraction``; ``counters``
        (totals); ``layers`` (per layer: name, shape, cycles, load
        efficiency, entries, fillers); ``energy`` -- the table's identity,
        per input activity-based and paper-method totals (pJ), the activity
        energy by module and kind (pJ), and ``mac`` (energy of the MACs at
        the point's arithmetic, pJ, when the table prices it); ``accuracy``
        (top-1 of the simulated outputs) when the inputs have labels;
        ``quality`` (``metric``, ``compressed`` as simulated, ``original``,
        ``n_inputs``) of a registry workload, whose "input" is one of its real
        inputs (a digit, a sentence, a recording: every M x V it asks for);
        ``warnings`` (category, count, first message) when the simulator
        warned, e.g. ``FixedPointSaturationWarning``.

    Raises
    ------
    EieError
        The workload cannot be built or simulated with these settings
        (the message names the workload).
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if point.settings["workload_spec"]["kind"] == "registry":
            per_layer, layers, n, quality, cfg = _simulate_registry(point, backend)
            labels = outputs = None
        else:
            per_layer, layers, x, labels, outputs, cfg = _simulate_point(point, root, backend)
            n, quality = x.shape[0], None
    return _record(point, per_layer, layers, n, labels, outputs, cfg, table, calibration, caught, quality)


def _simulate_registry(point: Point, backend: str):
    """A registry workload (its own model, real inputs and metric) through :func:`run_workload`.

    Returns per-layer sums as :func:`_simulate_point` does, the layers as laid out for the point's
    N, the number of real inputs (digits, sentences, recordings), the quality dict of
    :class:`~eiesim.workloads.run.WorkloadRun` and the config.
    """
    import dataclasses

    from ..workloads.registry import load
    from ..workloads.run import run_workload

    s = point.settings
    ws = s["workload_spec"]
    try:
        cfg = point.config()
        count = s["inputs"].get("count", 1)
        key = ("registry", ws["ref"], count, ws["seed"])
        wl = _MEMO.get(key, lambda: load(ws["ref"], count, ws["seed"]))
        for l in wl.layers:
            for fld in ("code_bits", "index_bits"):
                if getattr(l, fld) != getattr(cfg, fld):
                    raise EieConfigError(f"config field {fld!r} is {getattr(cfg, fld)}, but layer {l.name!r} "
                                         f"uses {getattr(l, fld)}")
        wl = _MEMO.get(key + (cfg.n_pe,), lambda: dataclasses.replace(
            wl, layers=tuple(l if l.n_pe == cfg.n_pe else l.relayout(cfg.n_pe) for l in wl.layers)))
        wr = run_workload(wl, cfg, backend=backend)
    except EieError as exc:
        raise type(exc)(f"point {point.id} (workload {s['workload']!r}): {exc}") from None
    per_layer = [{"cycles": ls.cycles, "counters": dict(ls.counters), "busy": ls.pe_busy, "stall": ls.pe_stall}
                 for ls in wr.layers]
    return per_layer, list(wl.layers), int(wl.n_inputs), dict(wr.quality), cfg


def _simulate_point(point: Point, root: str, backend: str):
    """Every input through every layer: per-layer sums of cycles, counters, busy and stall."""
    from ..sim.engine import simulate
    from ..sim.network import relu
    from ..sim.result import COUNTER_NAMES

    s = point.settings
    try:
        cfg = point.config()
        layers, x, labels, activation = _layers_for(point, root)
        for l in layers:
            for fld in ("code_bits", "index_bits"):
                if getattr(l, fld) != getattr(cfg, fld):
                    raise EieConfigError(f"config field {fld!r} is {getattr(cfg, fld)}, but layer {l.name!r} "
                                         f"uses {getattr(l, fld)}")
        n = x.shape[0]
        per_layer = [{"cycles": 0, "counters": dict.fromkeys(COUNTER_NAMES, 0),
                      "busy": np.zeros(cfg.n_pe, np.int64), "stall": np.zeros(cfg.n_pe, np.int64)}
                     for _ in layers]
        outputs = np.zeros((n, layers[-1].n_out), dtype=np.float32)
        for i in range(n):
            a = x[i]
            for k, layer in enumerate(layers):
                r = simulate(layer, a, cfg, backend=backend)
                acc = per_layer[k]
                acc["cycles"] += r.cycles
                acc["busy"] += r.busy
                acc["stall"] += r.stall
                for c, v in r.counters.items():
                    acc["counters"][c] += v
                a = r.output
                if not np.all(np.isfinite(a)):
                    raise EieInputError(f"input {i}: layer {layer.name!r} produced non-finite outputs")
                if k < len(layers) - 1 and activation == "relu":
                    a = relu(a)
            outputs[i] = a
    except EieError as exc:
        raise type(exc)(f"point {point.id} (workload {s['workload']!r}): {exc}") from None
    return per_layer, layers, x, labels, outputs, cfg


def _record(point, per_layer, layers, n, labels, outputs, cfg, table, calibration, caught,
            quality=None) -> Dict[str, Any]:
    """The JSON line of a simulated point (see :func:`run_point`); ``n`` inputs, ``quality`` of a registry one."""
    from ..energy.model import RunActivity, activity_energy, calibrate, mac_energy_pj, paper_energy
    from ..energy.tables import DEFAULT_TABLE
    from ..sim.result import COUNTER_NAMES

    table = table or DEFAULT_TABLE
    s = point.settings
    cal = calibration or calibrate(table)
    cycles_total = sum(p["cycles"] for p in per_layer)
    counters = {c: sum(p["counters"][c] for p in per_layer) for c in COUNTER_NAMES}
    busy = sum(p["busy"] for p in per_layer)
    stall = sum(p["stall"] for p in per_layer)
    idle = cycles_total - busy
    act_tot, pap_tot = 0.0, 0.0
    by_module: Dict[str, float] = {}
    by_kind: Dict[str, float] = {}
    layer_rows = []
    for layer, p in zip(layers, per_layer):
        run = RunActivity(counters=p["counters"], cycles=p["cycles"], n_pe=cfg.n_pe, clock_hz=cfg.clock_hz,
                          spmat_line_bits=cfg.spmat_line_bits, name=layer.name, shape=layer.shape, n_inputs=n)
        act = activity_energy(run, table, cal)
        act_tot += act.total_pj
        pap_tot += paper_energy(run, table).total_pj
        for m, v in act.by_module.items():
            by_module[m] = by_module.get(m, 0.0) + v / n
        for m, v in act.by_kind.items():
            by_kind[m] = by_kind.get(m, 0.0) + v / n
        layer_rows.append({
            "name": layer.name, "shape": [int(layer.n_out), int(layer.n_in)], "cycles": p["cycles"] / n,
            "load_efficiency": p["counters"]["macs"] / (p["cycles"] * cfg.n_pe) if p["cycles"] else 0.0,
            "stored_entries": int(layer.n_entries), "fillers": int(layer.n_fillers),
        })
    mac = mac_energy_pj(cfg.arith, cfg.fixed_total_bits, table)
    energy = {
        "table": table_identity(table),
        "activity_pj": act_tot / n,
        "paper_pj": pap_tot / n,
        "by_module_pj": by_module,
        "by_kind_pj": by_kind,
        "mac": None if mac is None else {**mac, "total_pj": mac["mac_pj"] * counters["macs"] / n},
    }
    slots = cycles_total * cfg.n_pe
    doc = {
        "version": RESULT_VERSION,
        "eiesim": __version__,
        "point": point.id,
        "settings": s,
        "n_inputs": int(n),
        "cycles": cycles_total / n if n > 1 else int(cycles_total),
        "cycles_total": int(cycles_total),
        "time_s": cycles_total / n / cfg.clock_hz,
        "load_efficiency": counters["macs"] / slots if slots else 0.0,
        "real_work": counters["macs"] / counters["entries"] if counters["entries"] else 0.0,
        "pe": {"busy": _summary(busy), "idle": _summary(idle), "stall": _summary(stall),
               "idle_fraction": float(idle.sum() / slots) if slots else 0.0},
        "counters": counters,
        "layers": layer_rows,
        "energy": energy,
    }
    if labels is not None:
        doc["accuracy"] = float(np.mean(outputs.argmax(axis=1) == labels))
    if quality is not None:
        doc["quality"] = quality
    if caught:  # e.g. fixed-point saturation: counted per kind, first message kept
        kinds: Dict[str, Dict[str, Any]] = {}
        for w in caught:
            k = kinds.setdefault(w.category.__name__, {"category": w.category.__name__, "count": 0,
                                                       "first": str(w.message)})
            k["count"] += 1
        doc["warnings"] = list(kinds.values())
    return doc


def run_batch(points: Sequence[Point], root: str, table=None) -> List[Dict[str, Any]]:
    """Run several points in order (one executor task).

    Parameters
    ----------
    points : sequence of Point
    root : str
        Folder relative paths are resolved against.
    table : EnergyTable, optional

    Returns
    -------
    list of dict
        :func:`run_point` of each point, in order.
    """
    from ..energy.model import calibrate
    from ..energy.tables import DEFAULT_TABLE

    table = table or DEFAULT_TABLE
    cal = calibrate(table)
    return [run_point(p, root, table, calibration=cal) for p in points]


# --------------------------------------------------------------------------- batching and files
def make_batches(points: Sequence[Point], batch_size: int) -> List[List[Point]]:
    """Cut points into tasks, grouped by workload and PE count so a worker lays out a layer once.

    Parameters
    ----------
    points : sequence of Point
    batch_size : int
        Points per task (>= 1).

    Returns
    -------
    list of list of Point
        Every point exactly once; a batch never mixes (workload, N) groups
        unless a group is smaller than the batch.
    """
    if batch_size < 1:
        raise EieConfigError(f"batch size must be >= 1, got {batch_size}")
    groups: "OrderedDict[str, List[Point]]" = OrderedDict()
    for p in points:
        key = json.dumps([p.settings["workload_spec"], p.settings["n_pe"], p.settings.get("weight_density")],
                         sort_keys=True, allow_nan=False)
        groups.setdefault(key, []).append(p)
    out: List[List[Point]] = []
    for grp in groups.values():
        for i in range(0, len(grp), batch_size):
            out.append(grp[i:i + batch_size])
    return out


def read_results(path) -> Tuple[List[Dict[str, Any]], int]:
    """Read a JSONL results file, tolerating a torn last line (a writer killed mid-line).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    records : list of dict
        One per complete line.
    good_bytes : int
        Length of the file up to the end of the last complete line (where an
        append should start).

    Raises
    ------
    EieInputError
        A complete line that is not a JSON object with a ``point`` id (the
        message names the file and line).
    """
    from .._io import open_regular_file

    where = os.fspath(path)
    records: List[Dict[str, Any]] = []
    pos = 0
    lineno = 0
    with open_regular_file(path, error=EieInputError, what="results file (JSON lines)") as fh:
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                if len(line) > MAX_LINE_BYTES:
                    raise EieInputError(f"{where}: line {lineno + 1} is longer than {MAX_LINE_BYTES} bytes")
                break  # end of file, or a torn tail: dropped, overwritten by the next append
            lineno += 1
            pos += len(line)
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except (ValueError, RecursionError):
                raise EieInputError(f"{where}: line {lineno} is not JSON") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("point"), str):
                raise EieInputError(f"{where}: line {lineno} has no 'point' id")
            records.append(doc)
    return records, pos


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    total : int
        Points in the spec.
    skipped : int
        Points already in the results file (``resume``).
    run : int
        Points simulated and written by this call.
    tasks : int
        Executor tasks submitted.
    batch_size : int
        Points in the largest task (at most the batch size asked for; ``--batch 100000`` on 16
        points reported tasks "of up to 100000 points").
    """

    total: int
    skipped: int
    run: int
    tasks: int
    batch_size: int


def _dumps(doc: Dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def _check_same_simulator(out: str, records: Sequence[Dict[str, Any]]) -> None:
    """Refuse to resume a results file written by another eiesim version or line layout.

    A point id hashes the resolved settings only, so without this check a
    resumed sweep would silently mix numbers from two simulator versions.

    Raises
    ------
    EieInputError
        Naming the file, the first such line's version and this one's.
    """
    for i, r in enumerate(records, 1):
        if r.get("eiesim") != __version__ or r.get("version") != RESULT_VERSION:
            raise EieInputError(
                f"{out}: record {i} (point {r['point']}) was written by eiesim {r.get('eiesim', 'unknown')} "
                f"(results layout {r.get('version', 'unknown')}); this is eiesim {__version__} "
                f"(layout {RESULT_VERSION}): resuming would mix simulator versions -- write to a new file")


#: ``prctl`` option that sends the calling process a signal when its parent dies (Linux, <sys/prctl.h>).
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: end this worker when the sweep process that started it dies.

    Without it a ``SIGKILL``ed sweep leaves its pool workers running (re-parented to init) until
    their task ends or forever. Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere a no-op.
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: nothing better to do
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _pool_worker(parent_pid: int, cpus: int) -> None:
    """Pool-worker initializer: :func:`_die_with_parent`, this worker's share of the CPUs
    (``cpus``, :func:`eiesim._kernels.limit_cpus`): ``jobs`` workers on as many CPUs simulate on
    one thread each instead of each adding the simulator's helper thread on large layers; and
    SIGINT ignored. A terminal's Ctrl-C reaches the whole process group: a worker interrupted
    inside the pool's queue could leave the pool unable to shut down (the sweep then hung at exit,
    fresh-user finding); the sweep process handles it and stops its workers
    (:func:`stop_local_pool`)."""
    import signal

    _die_with_parent(parent_pid)
    limit_cpus(cpus)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def local_pool(jobs: int) -> Executor:
    """A process pool of ``jobs`` workers for :func:`run_sweep` that do not outlive the caller.

    Parameters
    ----------
    jobs : int
        Worker processes (>= 1).

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        Each worker is ended (SIGTERM) when the process that made the pool
        dies, killed or not (Linux; elsewhere a plain pool), and may use
        ``max(1, usable_cpus() // jobs)`` CPUs (:func:`eiesim._kernels.limit_cpus`).
    """
    from concurrent.futures import ProcessPoolExecutor

    share = max(1, usable_cpus() // max(1, jobs))
    return ProcessPoolExecutor(max_workers=jobs, initializer=_pool_worker, initargs=(os.getpid(), share))


def stop_local_pool(executor: Executor) -> None:
    """Stop a :func:`local_pool` now (an interrupted sweep): drop its queued tasks and end its
    workers (SIGTERM) without waiting for the tasks they run; their points are not written, those
    written before stay (``--resume`` runs them again).

    Parameters
    ----------
    executor : concurrent.futures.ProcessPoolExecutor
        A pool from :func:`local_pool`.
    """
    # the pool's worker processes (no public accessor before Python 3.14's terminate_workers)
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    # the pool's own thread sees its workers gone, fails their tasks and ends; waiting for it here
    # keeps it from racing the interpreter's exit (Python 3.11 then printed an ignored OSError)
    executor.shutdown(wait=True, cancel_futures=True)


def default_batch_size(n_points: int, workers: int) -> int:
    """Points per task: about four tasks per worker, at least 8 points (a point takes 1-50 ms).

    Parameters
    ----------
    n_points : int
    workers : int

    Returns
    -------
    int
        ``max(8, ceil(n_points / (4 * workers)))``, at most 1000 and at most
        ``ceil(n_points / workers)`` (every worker gets a task).
    """
    w = max(workers, 1)
    return int(max(1, min(1000, max(8, math.ceil(n_points / (4 * w))), math.ceil(n_points / w))))


def run_sweep(spec: SweepSpec, out, *, executor: Optional[Executor] = None, workers: int = 1,
              batch_size: Optional[int] = None, resume: bool = False, table=None,
              on_point: Optional[Callable[[Dict[str, Any]], None]] = None,
              stop: Optional[Callable[[], bool]] = None) -> SweepSummary:
    """Run every point of ``spec`` not yet in ``out``, appending one JSON line per finished point.

    Parameters
    ----------
    spec : SweepSpec
    out : str or os.PathLike
        Results file (JSON lines). Each line is written and flushed as soon as
        its batch returns, so a killed run keeps every point it reported.
    executor : concurrent.futures.Executor, optional
        Where batches run (``submit(fn, *args)``); None runs them here, in order.
    workers : int
        Workers behind ``executor`` (sizes the batches).
    batch_size : int, optional
        Points per task; default :func:`default_batch_size`.
    resume : bool
        Skip points whose id is already in ``out``. Without it an existing,
        non-empty ``out`` is refused.
    table : EnergyTable, optional
        Default: the spec's ``[energy] table`` or eiesim's default table.
    on_point : callable, optional
        Called with each written record (progress reporting).
    stop : callable, optional
        Polled between batches and every :data:`STOP_POLL_S` seconds while tasks
        run on ``executor``; when it returns True the queued tasks are cancelled
        and :class:`SweepInterrupted` is raised (tasks already running are not
        waited for; their points are not written). The command line sets it
        from a SIGINT handler, so that Ctrl-C never raises inside the executor's
        own code (a ``KeyboardInterrupt`` there could leave a process pool unable
        to shut down).

    Returns
    -------
    SweepSummary

    Raises
    ------
    EieInputError
        ``out`` exists without ``resume``, or holds a line that is not a
        results record.
    SweepInterrupted
        ``stop`` returned True.
    EieError
        A point fails (the message names the point and workload); the
        points finished before it stay in ``out``.
    """
    from .._io import check_writable

    out = os.fspath(out)
    if table is None:
        from ..energy.tables import DEFAULT_TABLE, load_table

        table = load_table(spec.resolve(spec.energy_table)) if spec.energy_table else DEFAULT_TABLE
    done: set = set()
    start = 0
    if os.path.exists(out) and os.path.getsize(out) > 0:
        if not resume:
            raise EieInputError(f"{out}: exists and is not empty; give --resume to finish it, or another file")
        records, start = read_results(out)
        _check_same_simulator(out, records)
        ids = {p.id for p in spec.points}
        foreign = [i for i, r in enumerate(records, 1) if r["point"] not in ids]
        if foreign:
            raise EieInputError(
                f"{out}: {len(foreign)} of {len(records)} record(s) (first: record {foreign[0]}) are not points "
                f"of this spec{f' {spec.name!r}' if spec.name else ''}: the file belongs to "
                "another sweep; --resume would mix the two -- write to a new file")
        done = {r["point"] for r in records}
    else:
        check_writable(out, error=EieInputError)
    todo = [p for p in spec.points if p.id not in done]
    bs = batch_size or default_batch_size(len(todo), workers)
    batches = make_batches(todo, bs)
    written = 0
    mode = "r+b" if os.path.exists(out) else "wb"
    with open(out, mode) as fh:
        fh.seek(start)
        fh.truncate()  # a torn last line of a killed writer goes

        def emit(docs: Iterable[Dict[str, Any]]) -> None:
            nonlocal written
            for doc in docs:
                fh.write(_dumps(doc))
                fh.flush()
                written += 1
                if on_point is not None:
                    on_point(doc)
            os.fsync(fh.fileno())

        def interrupted() -> SweepInterrupted:
            return SweepInterrupted(f"interrupted: {written} point(s) were written to {out}; rerun with --resume "
                                    "to finish")

        if executor is None:
            for b in batches:
                if stop is not None and stop():
                    raise interrupted()
                emit(run_batch(b, spec.root, table))
        else:
            pending = {executor.submit(run_batch, b, spec.root, table) for b in batches}
            error: Optional[BaseException] = None
            try:
                while pending:
                    finished, pending = wait(pending, timeout=None if stop is None else STOP_POLL_S,
                                             return_when=FIRST_COMPLETED)
                    if stop is not None and stop():
                        for fut in pending:
                            fut.cancel()
                        raise interrupted()
                    for fut in finished:
                        if fut.cancelled():
                            continue
                        exc = fut.exception()
                        if exc is None:
                            emit(fut.result())  # tasks still running after a failure are kept too
                        elif error is None:
                            error = exc
                            for other in pending:
                                other.cancel()
            except BaseException:  # interrupted: stop what has not started
                for fut in pending:
                    fut.cancel()
                raise
            if isinstance(error, BrokenExecutor):
                raise EieSweepError(f"a worker of the executor died ({type(error).__name__}: {error}); {written} "
                                    f"point(s) were written to {out}: rerun with --resume to finish") from None
            if error is not None:
                raise error
    return SweepSummary(total=len(spec.points), skipped=len(spec.points) - len(todo), run=written,
                        tasks=len(batches), batch_size=max((len(b) for b in batches), default=bs))
