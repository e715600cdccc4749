"""Figures drawn from saved results (headless: matplotlib's Agg canvas, no pyplot state).

Inputs are the JSON documents eiesim writes:

* ``scripts/reproduce_eie.py`` (``"kind": "eiesim.reproduce_eie"``): every
  figure -- energy breakdown, speedup and energy-efficiency bars against the
  baselines, throughput vs energy-efficiency scatter;
* ``eiesim simulate --json OUT --energy``: the energy breakdown only.

Every function returns the :class:`matplotlib.figure.Figure` it drew and,
when given a path, saves it as PNG. The plotted numbers are the JSON's,
unchanged (bars in the paper's layer order, then the geometric mean).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import EieInputError
from ..workloads.benchmarks import BENCHMARKS

__all__ = [
    "energy_layers",
    "plot_energy_breakdown",
    "plot_ratios",
    "plot_throughput_efficiency",
    "plot_all",
    "plot_pe_load",
    "plot_layers",
    "plot_queue_timeline",
    "FIGURE_FILES",
    "MODULE_ORDER",
    "KIND_ORDER",
    "PLATFORM_STYLE",
]

#: Files :func:`plot_all` may write in its folder (energy breakdown, the two ratio bars, the scatter).
FIGURE_FILES = ("energy_breakdown.png", "speedup.png", "energy_efficiency.png", "throughput_vs_efficiency.png",
                "pe_load.png", "layers.png", "queue_timeline.png")

#: Module order of the breakdown (EIE Table II order, then the CCU estimate).
MODULE_ORDER = ("act_queue", "ptr_read", "spmat_read", "arithm_unit", "act_rw", "lnzd_ccu")
_MODULE_LABEL = {"act_queue": "Act queue", "ptr_read": "PtrRead", "spmat_read": "SpmatRead",
                 "arithm_unit": "ArithmUnit", "act_rw": "ActRW", "lnzd_ccu": "LNZD/CCU (est.)"}
#: Kind order of the breakdown (EIE Table II "by type").
KIND_ORDER = ("memory", "register", "combinational", "clock")
_KIND_LABEL = {"memory": "memory (SRAM)", "register": "register", "combinational": "combinational",
               "clock": "clock network"}
#: Colour and label of each platform.
PLATFORM_STYLE = {
    "cpu": ("#1f77b4", "CPU (Core i7-5930K)"),
    "gpu": ("#2ca02c", "GPU (Titan X)"),
    "mgpu": ("#ff7f0e", "mGPU (Tegra K1)"),
    "eie": ("#d62728", "EIE (eiesim)"),
}


def _new_figure(size) -> Figure:
    fig = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> None:
    """Write the figure atomically (a failure leaves no half-written image); format from the suffix."""
    if path is not None:
        from .._io import write_atomic_with

        fmt = Path(path).suffix[1:].lower() or "png"
        write_atomic_with(path, lambda fh: fig.savefig(fh, format=fmt, dpi=110), error=EieInputError)


# --------------------------------------------------------------------------- data access
def energy_layers(doc: dict, method: str = "activity") -> List[Tuple[str, dict]]:
    """``[(layer name, energy breakdown dict)]`` of a results document.

    Parameters
    ----------
    doc : dict
        A reproduction JSON (layers with ``energy``) or a ``eiesim simulate
        --energy`` JSON (``energy.layers``).
    method : {"activity", "paper"}

    Returns
    -------
    list of (str, dict)
        Per layer, in document order: its name and the ``method`` breakdown
        (:meth:`eiesim.energy.model.EnergyBreakdown.to_dict` form, pJ).

    Raises
    ------
    EieInputError
        If the document holds no energy results, or a layer's energy lacks its
        name or the ``method`` breakdown (the message names the layer).
    """
    if isinstance(doc.get("energy"), dict) and "layers" in doc["energy"]:  # (where, name, energy)
        entries = [(f"energy.layers[{k}]", e.get("name") if isinstance(e, dict) else None, e)
                   for k, e in enumerate(doc["energy"]["layers"])]
    else:
        entries = [(f"layers[{k}].energy", l.get("name"), l["energy"])
                   for k, l in enumerate(doc.get("layers", [])) if isinstance(l, dict) and "energy" in l]
    out = []
    for where, name, e in entries:
        if not isinstance(name, str) or not isinstance(e, dict) or not isinstance(e.get(method), dict):
            raise EieInputError(f"{where}: expected a layer name and the {method!r} energy breakdown")
        out.append((name, e[method]))
    if not out:
        raise EieInputError("results hold no energy: run 'eiesim simulate --energy --json OUT' or scripts/reproduce_eie.py")
    return out


def _ordered_layers(doc: dict) -> List[dict]:
    order = doc.get("layer_order") or [l["name"] for l in doc["layers"]]
    by_name = {l["name"]: l for l in doc["layers"]}
    return [by_name[n] for n in order if n in by_name]


# --------------------------------------------------------------------------- figures
def plot_energy_breakdown(doc: dict, path=None, *, method: str = "activity") -> Figure:
    """Stacked bars of energy per input (µJ) by module and by kind, one bar per layer.

    The values are ``by_module_pj`` and ``by_kind_pj`` of the ``method``'s
    breakdown divided by ``n_inputs`` and by 1e6 (pJ -> µJ).

    Parameters
    ----------
    doc : dict
        A results document (see :func:`energy_layers`).
    path : path-like, optional
        Where to save the PNG; not saved when None.
    method : {"activity", "paper"}, default "activity"

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EieInputError
        As :func:`energy_layers`.
    """
    layers = energy_layers(doc, method)
    names = [n for n, _ in layers]
    n = len(names)
    x = np.arange(n)
    # one panel per view, as wide as its bars need (one layer: one wide bar, no empty slots);
    # the legend sits right of each panel so it never hides a bar
    fig = _new_figure((2 * (4.6 + 0.75 * n), 5.4))
    axes = fig.subplots(1, 2)
    for ax, key, order, labels, title in (
        (axes[0], "by_module_pj", MODULE_ORDER, _MODULE_LABEL, "by module (Table II)"),
        (axes[1], "by_kind_pj", KIND_ORDER, _KIND_LABEL, "by type (Table II)"),
    ):
        per = {k: np.array([e[key].get(k, 0.0) / e.get("n_inputs", 1) / 1e6 for _, e in layers]) for k in order}
        total = float(sum(v.sum() for v in per.values())) or 1.0
        bottom = np.zeros(n)
        cmap = _palette(len(order))
        for i, k in enumerate(order):
            vals = per[k]
            # the share in the legend keeps categories too thin to see as a bar readable (e.g. the CCU)
            ax.bar(x, vals, 0.6, bottom=bottom, label=f"{labels[k]}: {100 * vals.sum() / total:.1f} %",
                   color=cmap[i], gid=k)
            bottom += vals
        ax.set_xticks(x, names, rotation=30 if n > 1 else 0, ha="right" if n > 1 else "center", fontsize=11)
        ax.set_xlim(-0.6, n - 0.4)
        ax.tick_params(axis="y", labelsize=11)
        ax.set_ylabel("energy per input (µJ)", fontsize=12)
        ax.set_title(f"energy {title}", fontsize=13)
        ax.set_ylim(0, 1.08 * float(bottom.max()) if bottom.size and bottom.max() > 0 else 1.0)
        ax.legend(fontsize=10, loc="center left", bbox_to_anchor=(1.01, 0.5), title="share of the total",
                  title_fontsize=10, frameon=False)
        ax.grid(axis="y", alpha=0.3)
    how = "activity-based model" if method == "activity" else "paper method: 0.6 W × time"
    fig.suptitle(f"EIE energy per input in µJ ({how}): {_workload(doc, n)}", fontsize=14)
    _save(fig, path)
    return fig


def _workload(doc: dict, n_layers: int) -> str:
    """A short name of what a results document ran, for figure titles."""
    if doc.get("kind") == "eiesim.reproduce_eie" or "layer_order" in doc:
        return f"EIE benchmark layers ({n_layers}, synthetic and real)"
    src = doc.get("source")
    if isinstance(src, str) and src:
        name = src.split(" (")[0]  # "embedded LeNet-300-100 (traces/)" -> "embedded LeNet-300-100"
        if name.startswith("dump "):
            name = name[5:]
        if "/" in name or os.sep in name:
            name = os.path.basename(name.rstrip("/" + os.sep))
        return name or src
    return f"{n_layers} layer{'s' if n_layers != 1 else ''}"


def _palette(n: int):
    base = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
    return [base[i % len(base)] for i in range(n)]


def plot_ratios(doc: dict, key: str = "speedup", path=None, *, geomean_set: str = "synthetic") -> Figure:
    """Grouped bars (log scale) of EIE's speedup or energy efficiency over each baseline.

    Parameters
    ----------
    doc : dict
        A reproduction JSON.
    key : {"speedup", "energy_ratio"}
    path : path-like, optional
        When given, the figure is also saved there (110 dpi).
    geomean_set : str
        Which ``doc["geomean"]`` set gives the last group.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn (Agg canvas, no pyplot state).

    Raises
    ------
    EieInputError
        If ``key`` is not one of the two, or the document holds no ``key``.

    Notes
    -----
    Bars are labelled ``"<platform> <kind>"`` (e.g. ``"CPU dense"``), one
    container per platform and kind; layers in ``doc["layer_order"]``, then
    ``"geomean"``. Dense bars are solid, sparse bars hatched.
    """
    if key not in ("speedup", "energy_ratio"):
        raise EieInputError(f"plot_ratios: key must be 'speedup' or 'energy_ratio', not {key!r}")
    layers = _ordered_layers(doc)
    if not layers or key not in layers[0]:
        raise EieInputError(f"results hold no {key!r}: use the JSON of scripts/reproduce_eie.py")
    gm = doc["geomean"][geomean_set][key]
    names = [l["name"] for l in layers] + [f"geomean ({doc['geomean'][geomean_set].get('n_layers', '')} {geomean_set.replace('_', ' ')})"]
    combos = [(p, k) for p in ("cpu", "gpu", "mgpu") for k in ("dense", "sparse")]
    width = 0.8 / len(combos)
    x = np.arange(len(names))
    fig = _new_figure((max(10.0, 1.2 * len(names)), 5.0))
    ax = fig.subplots()
    for i, (p, k) in enumerate(combos):
        vals = [l[key][f"{p}_{k}"] for l in layers] + [gm[f"{p}_{k}"]]
        colour, plabel = PLATFORM_STYLE[p]
        ax.bar(x - 0.4 + width * (i + 0.5), vals, width, color=colour if k == "dense" else "white",
               edgecolor=colour, hatch=None if k == "dense" else "///",
               label=f"{plabel.split(' (')[0]} {k}")
    # the paper's headline geomeans (dense baselines): a dashed line per platform and a diamond on the
    # geomean group's dense bar, so the figure shows by itself how close eiesim comes
    head = (doc.get("headline") or {}).get("speedup" if key == "speedup" else "energy") or {}
    for i, (p, k) in enumerate(combos):
        if k != "dense" or p not in head:
            continue
        colour, plabel = PLATFORM_STYLE[p]
        v = float(head[p])
        ax.axhline(v, color=colour, lw=1.0, ls="--", alpha=0.8, gid=f"paper:{p}")
        ax.plot([x[-1] - 0.4 + width * (i + 0.5)], [v], marker="D", ms=8, color=colour, mec="k", ls="none",
                label=f"paper {plabel.split(' (')[0]}: {v:,.0f}×", gid=f"paper_marker:{p}")
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0.5), hi * 6.0)  # headroom for the legend
    ax.set_xticks(x, names, rotation=30, ha="right")
    what = "speedup" if key == "speedup" else "energy efficiency"
    ax.set_ylabel(f"EIE {what} over platform (×, log scale)")
    ax.set_title(f"EIE {what} vs CPU / GPU / mGPU, batch 1, EIE benchmark layers (baselines: EIE Table IV; "
                 f"EIE: eiesim)\n◆ and dashed: the paper's geomean over the dense baselines (EIE, Section VI)")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(ncol=3, fontsize=8, loc="upper right")
    _save(fig, path)
    return fig


def _throughput_points(doc: dict) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Per-series (GOP/s, GOP/J) arrays over the layers; dense-equivalent operations 2 n_in n_out."""
    layers = _ordered_layers(doc)
    power = {p: doc["platforms"][p]["power_w"] for p in ("cpu", "gpu", "mgpu")}
    series: Dict[str, Tuple[list, list]] = {}
    for l in layers:
        ops = float(l["ops"])
        t = l["sim_time_us"] * 1e-6
        e = l["energy"]["paper"]["total_pj"] * 1e-12
        series.setdefault("eie", ([], []))
        series["eie"][0].append(ops / t / 1e9)
        series["eie"][1].append(ops / e / 1e9)
        for p in ("cpu", "gpu", "mgpu"):
            for k in ("dense", "sparse"):
                tb = l["baselines_us"][f"{p}_{k}"] * 1e-6
                s = series.setdefault(f"{p}_{k}", ([], []))
                s[0].append(ops / tb / 1e9)
                s[1].append(ops / (power[p] * tb) / 1e9)
    return {k: (np.array(a), np.array(b)) for k, (a, b) in series.items()}


def plot_throughput_efficiency(doc: dict, path=None) -> Figure:
    """Scatter of throughput (GOP/s) against energy efficiency (GOP/J), log-log.

    Operations are dense-equivalent (``2 n_in n_out`` per layer, as the paper's
    GOP/s figures). Small markers: one per layer; large markers: the geometric
    mean over the layers of each series (``"<platform>_<kind>"`` and ``"eie"``,
    the ``gid`` of each collection). EIE energy = the paper's method (0.6 W x
    simulated time); platform energy = derived power x published time.

    Parameters
    ----------
    doc : dict
        A reproduction JSON (``scripts/reproduce_eie.py``).
    path : path-like, optional
        Where to save the PNG; not saved when None.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pts = _throughput_points(doc)
    fig = _new_figure((8.0, 6.0))
    ax = fig.subplots()
    for key, (thr, eff) in pts.items():
        p, _, k = key.partition("_")
        colour, plabel = PLATFORM_STYLE[p]
        label = plabel if p == "eie" else f"{plabel.split(' (')[0]} {k}"
        marker = "*" if p == "eie" else ("o" if k == "dense" else "s")
        face = colour if (p == "eie" or k == "dense") else "white"
        ax.scatter(thr, eff, s=18, marker=marker, facecolors=face, edgecolors=colour, alpha=0.5, gid=f"{key}:layers")
        g_thr = math.exp(np.mean(np.log(thr)))
        g_eff = math.exp(np.mean(np.log(eff)))
        ax.scatter([g_thr], [g_eff], s=180 if p == "eie" else 110, marker=marker, facecolors=face,
                   edgecolors=colour, linewidths=1.8, label=f"{label} (geomean)", gid=f"{key}:geomean")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (GOP/s, dense-equivalent operations)")
    ax.set_ylabel("energy efficiency (GOP/J)")
    ax.set_title("Throughput vs energy efficiency, batch 1\n(small: each layer; large: geomean)")
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)
    return fig


# --------------------------------------------------------------------------- load balance (issue 14)
def _pe_layers(doc: dict) -> List[dict]:
    """The layers of a simulate document that carry per-PE cycles (``pe_busy`` and ``cycles``)."""
    return [l for l in (doc.get("layers") or []) if "pe_busy" in l and "cycles" in l]


def _finite_numbers(value, where: str, size=None) -> np.ndarray:
    """``value`` as a float64 array of finite numbers >= 0 (of ``size`` when given), else EieInputError."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise EieInputError(f"{where}: expected {'a list of numbers' if isinstance(value, list) else 'a number'}")
    try:
        arr = np.asarray(items, dtype=np.float64)
    except OverflowError:  # an integer past the float64 range (e.g. 2**1100 in a hand-edited file)
        raise EieInputError(f"{where}: expected finite numbers >= 0 (a value is past the float64 range)") from None
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise EieInputError(f"{where}: expected finite numbers >= 0")
    if size is not None and arr.size != size:
        raise EieInputError(f"{where}: expected {size} values (one per PE), got {arr.size}")
    return arr


def _require_pe_layers(doc: dict) -> List[dict]:
    """:func:`_pe_layers` with their per-PE fields checked, or :class:`EieInputError` (both PE plots).

    ``cycles``, ``n_inputs`` (optional), ``pe_busy`` and ``pe_stall`` (optional, as long as
    ``pe_busy``) must be finite numbers >= 0: a hand-edited or damaged results file is refused
    naming the layer and field, not drawn from or turned into a traceback.
    """
    layers = _pe_layers(doc)
    if not layers:
        raise EieInputError("no layer has per-PE cycles (pe_busy): write the results with eiesim simulate --json")
    for k, l in enumerate(layers):
        where = f"layers[{k}] ({l.get('name', '?')!s})"
        _finite_numbers(l["cycles"], f"{where}.cycles")
        if "n_inputs" in l:
            _finite_numbers(l["n_inputs"], f"{where}.n_inputs")
        if l.get("load_balance_efficiency") is not None:
            _finite_numbers(l["load_balance_efficiency"], f"{where}.load_balance_efficiency")
        busy = _finite_numbers(l["pe_busy"], f"{where}.pe_busy")
        if l.get("pe_stall") is not None:
            _finite_numbers(l["pe_stall"], f"{where}.pe_stall", size=busy.size)
    return layers


def plot_pe_load(doc: dict, path=None) -> Figure:
    """Per-PE load of every layer: busy and idle (starved) cycles per input as stacked bars, stall marked.

    One panel per layer of an ``eiesim simulate --json`` document (``layers[*]``
    with ``cycles``, ``n_inputs``, ``pe_busy`` and ``pe_stall``): bar k is PE k,
    busy + idle = the layer's cycles; the black marks are the cycles PE k's full
    activation queue held the CCU back (during busy or idle cycles). The dashed
    line is the mean busy cycles; the title gives the load-balance efficiency
    ``macs / (cycles x N)`` (EIE Section VI-B).

    Parameters
    ----------
    doc : dict
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EieInputError
        No layer carries per-PE cycles.
    """
    layers = _require_pe_layers(doc)
    n_layers = len(layers)
    fig = _new_figure((11, 2.2 + 2.6 * n_layers))
    axes = fig.subplots(n_layers, 1, squeeze=False)[:, 0]
    for ax, l in zip(axes, layers):
        n_in = max(1, int(l.get("n_inputs", 1)))
        busy = np.asarray(l["pe_busy"], dtype=np.float64) / n_in
        cyc = float(l["cycles"]) / n_in
        stall = np.asarray(l.get("pe_stall") or np.zeros_like(busy), dtype=np.float64) / n_in
        x = np.arange(busy.shape[0])
        ax.bar(x, busy, 0.8, color="#1f77b4", label="busy (pointer read + entries)")
        ax.bar(x, cyc - busy, 0.8, bottom=busy, color="#d9d9d9", label="idle (starved: empty queue)")
        ax.plot(x, stall, "_", color="black", markersize=8, mew=2, label="queue full: CCU held back")
        ax.axhline(busy.mean(), color="#d62728", ls="--", lw=1, label=f"mean busy {busy.mean():,.0f}")
        lbe = l.get("load_balance_efficiency")
        extra = f", load-balance efficiency {100 * lbe:.1f} %" if lbe is not None else ""
        ax.set_title(f"layer {l['name']} ({l['shape'][0]} x {l['shape'][1]}): {cyc:,.0f} cycles per input{extra}",
                     fontsize=11)
        ax.set_ylabel("cycles per input", fontsize=10)
        ax.set_xlim(-0.6, busy.shape[0] - 0.4)
        ax.set_ylim(0, cyc * 1.05 if cyc > 0 else 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axes[-1].set_xlabel("PE", fontsize=10)
    n = doc.get("n_inputs", layers[0].get("n_inputs", 1))
    fig.suptitle(f"Per-PE load on EIE: {_workload(doc, n_layers)}, {n} input{'s' if n != 1 else ''}", fontsize=13)
    _save(fig, path)
    return fig


def _paper_marks(layers: List[dict]) -> Dict[int, Tuple[str, float]]:
    """The paper's EIE time (cycles at 800 MHz) for each layer shaped like one of its benchmarks, at 64 PEs.

    EIE (Han et al., ISCA 2016) Table IV gives EIE's time per benchmark layer
    with 64 PEs at 800 MHz (AlexNet FC8, 1000 x 4096: 9.9 µs = 7,920 cycles).
    A layer of the same shape simulated on 64 PEs gets that mark; the match is
    by shape (and N) only, so the legend names the benchmark compared with.
    """
    by_shape = {}
    for b in BENCHMARKS.values():
        by_shape.setdefault(b.shape, b)
    marks = {}
    for i, l in enumerate(layers):
        b = by_shape.get(tuple(l.get("shape") or ()))
        if b is not None and l.get("n_pe") == 64:
            marks[i] = (b.name, b.paper_cycles)
    return marks


def plot_layers(doc: dict, path=None) -> Figure:
    """Cycles per input of each layer (bars) and, when the document has energy, energy per input (µJ).

    Parameters
    ----------
    doc : dict
        ``eiesim simulate --json`` (``--energy`` adds the energy panel).
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EieInputError
        No layer with per-PE cycles.
    """
    layers = _require_pe_layers(doc)
    try:
        energy = dict(energy_layers(doc))
    except EieInputError:
        energy = {}
    clock = (doc.get("config") or {}).get("clock_hz")
    if clock is not None:  # a damaged file: refused naming the field, before any figure; 0 Hz: no time shown
        clock = float(_finite_numbers(clock, "config.clock_hz")[0]) or None
    names = [l["name"] for l in layers]
    cyc = np.array([l["cycles"] / max(1, l.get("n_inputs", 1)) for l in layers])
    x = np.arange(len(names))
    panels = 2 if energy else 1
    fig = _new_figure((max(9.0, 4.5 + 1.0 * len(names) * panels), 4.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    axes[0].bar(x, cyc, 0.6, color="#1f77b4", label="simulated cycles per input")
    for xi, c in zip(x, cyc):
        axes[0].annotate(f"{c:,.0f}" + (f"\n{1e6 * c / clock:.2f} µs" if clock else ""), (xi, c),
                         ha="center", va="bottom", fontsize=9)
    paper = _paper_marks(layers)
    for i, (bname, pc) in sorted(paper.items()):
        axes[0].plot([x[i] - 0.4, x[i] + 0.4], [pc, pc], color="#d62728", lw=2.5, gid=f"paper:{bname}",
                     label=f"paper {bname} (EIE Table IV, 64 PEs): {pc:,.0f} cycles = {pc / 800:.1f} µs")
    axes[0].set_ylabel("cycles per input", fontsize=11)
    axes[0].set_title("cycles per layer", fontsize=12)
    top = max([cyc.max() if cyc.size else 0.0] + [pc for _, pc in paper.values()])
    axes[0].set_ylim(0, 1.45 * top if top > 0 else 1)  # room for the legend above the bars
    if energy:
        e = np.array([sum(energy[n]["by_module_pj"].values()) / energy[n].get("n_inputs", 1) / 1e6
                      if n in energy else 0.0 for n in names])
        axes[1].bar(x, e, 0.6, color="#2ca02c", label="energy per input (activity model)")
        axes[1].set_ylabel("energy per input (µJ)", fontsize=11)
        axes[1].set_title("energy per layer", fontsize=12)
        axes[1].set_ylim(0, 1.45 * e.max() if e.max() > 0 else 1)
    for ax in axes:
        ax.set_xticks(x, names)
        ax.set_xlabel("layer", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"EIE per layer: {_workload(doc, len(names))}", fontsize=13)
    _save(fig, path)
    return fig


def plot_queue_timeline(trace: dict, path=None) -> Figure:
    """Activation-queue occupancy per PE over a trace window (heat map, PEs x cycles) and the CCU's stalls.

    Reads an ``eiesim simulate --trace OUT.json`` document: the ``queue PEkk``
    counter events and the CCU's ``stall`` slices; ``otherData`` gives the
    window, the clock and the queue depth. A PE whose queue sits at the depth
    while the CCU stalls is the one holding the broadcasts back -- the picture
    behind EIE Fig. 8 (why a depth of 8 suffices).

    Parameters
    ----------
    trace : dict
    path : path-like, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EieInputError
        Not a trace document, or it has no queue counters.
    """
    other = trace.get("otherData") or {}
    try:
        start, end = (int(v) for v in other["window_cycles"])
        us = float(other["cycle_us"])
        depth = int(other["fifo_depth"])
    except (KeyError, TypeError, ValueError):
        raise EieInputError("not an eiesim trace JSON (otherData.window_cycles / cycle_us / fifo_depth)") from None
    events = trace.get("traceEvents") or []
    pes = sorted({e["name"] for e in events if e.get("ph") == "C" and str(e.get("name", "")).startswith("queue PE")})
    if not pes:
        raise EieInputError("the trace has no queue occupancy counters")
    n = end - start
    occ = np.zeros((len(pes), n))
    row = {name: i for i, name in enumerate(pes)}
    ch: Dict[str, list] = {name: [] for name in pes}
    for e in events:
        if e.get("ph") == "C" and e.get("name") in row:
            ch[e["name"]].append((int(round(e["ts"] / us)) - start, int(e["args"]["occupancy"])))
    for name, changes in ch.items():
        changes.sort()
        for (t, v), nxt in zip(changes, changes[1:] + [(n, None)]):
            occ[row[name], max(t, 0):min(nxt[0], n)] = v
    stall = np.zeros(n)
    for e in events:
        if e.get("ph") == "X" and e.get("tid") == 0 and e.get("name") == "stall":
            a = int(round(e["ts"] / us)) - start
            stall[max(a, 0):min(a + int(round(e["dur"] / us)), n)] = 1
    fig = _new_figure((12, 2.6 + 0.09 * len(pes) + 1.2))
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[max(3.0, 0.09 * len(pes) + 2), 0.7])
    im = ax.imshow(occ, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=depth,
                   extent=(start - 0.5, end - 0.5, len(pes) - 0.5, -0.5))
    cb = fig.colorbar(im, ax=[ax, ax2], pad=0.01)
    cb.set_label(f"activations in the queue (depth {depth})", fontsize=10)
    ax.set_yticks(range(len(pes)), [p.replace("queue ", "") for p in pes] if len(pes) <= 16 else None)
    if len(pes) > 16:
        ax.set_yticks(range(0, len(pes), 8), [pes[i].replace("queue ", "") for i in range(0, len(pes), 8)])
    ax.set_ylabel("PE", fontsize=10)
    ax.set_title(f"activation-queue occupancy per PE, cycles {start:,}..{end - 1:,} "
                 f"(queue full = yellow)", fontsize=11)
    ax2.fill_between(np.arange(start, end), stall, step="mid", color="#d62728", label="CCU stalled (a queue full)")
    ax2.set_yticks([])
    ax2.set_ylim(0, 1.1)
    ax2.set_xlabel(f"cycle (1 cycle = {1e3 * us:g} ns)", fontsize=10)
    ax2.legend(fontsize=9, loc="upper right")
    fig.suptitle(f"EIE trace: layer {other.get('layer', '?')}, {int(stall.sum()):,} CCU stall cycles in the window",
                 fontsize=13)
    _save(fig, path)
    return fig


def plot_all(doc: dict, out_dir) -> List[Path]:
    """Draw every figure ``doc`` supports into ``out_dir``; returns the paths written.

    Parameters
    ----------
    doc : dict
        A results document: a ``eiesim simulate --energy --json`` or
        ``eiesim energy --json`` file, or a reproduction JSON.
    out_dir : path-like
        Existing folder for the PNG files (never created: eiesim's one rule for
        outputs; a missing folder raises ``FileNotFoundError`` from the writer).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    EieInputError
        If the document supports no figure.
    """
    out = Path(out_dir)
    written = []
    if "traceEvents" in doc:
        p = out / "queue_timeline.png"
        plot_queue_timeline(doc, p)
        return [p]
    try:
        energy_layers(doc)
        has_energy = True
    except EieInputError:
        has_energy = False
    layers = doc.get("layers") or []
    has_ratios = bool(layers) and "speedup" in layers[0] and "geomean" in doc
    has_pe = bool(_pe_layers(doc))
    if not (has_energy or has_ratios or has_pe):  # before any figure: a refused document leaves nothing
        raise EieInputError("nothing to plot: the results hold neither energy, baseline comparisons nor "
                            "per-PE cycles")
    if has_pe:
        for fname, fn in (("pe_load.png", plot_pe_load), ("layers.png", plot_layers)):
            p = out / fname
            fn(doc, p)
            written.append(p)
    if has_energy:
        p = out / "energy_breakdown.png"
        plot_energy_breakdown(doc, p)
        written.append(p)
    if has_ratios:
        for key, fname in (("speedup", "speedup.png"), ("energy_ratio", "energy_efficiency.png")):
            p = out / fname
            plot_ratios(doc, key, p)
            written.append(p)
        p = out / "throughput_vs_efficiency.png"
        plot_throughput_efficiency(doc, p)
        written.append(p)
    return written
