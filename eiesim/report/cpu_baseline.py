"""Tables and a figure of the measured CPU baseline (``scripts/measure_cpu_baseline.py``).

Input: the JSON document the script writes (``"kind": "eiesim.cpu_baseline"``):
EIE's simulated time and energy per benchmark layer, CPU timings measured on
this host (:mod:`eiesim.energy.host_cpu`) and the paper's published numbers
(EIE, Han et al., ISCA 2016, Table IV, Figs. 6-7). Everything here reads the
document and formats it; nothing is computed but presentation (the ratios
are the document's).
"""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

from ..errors import EieInputError

__all__ = ["MEASURED_KEYS", "PAPER_KEYS", "render_cpu_baseline_markdown", "plot_cpu_baseline", "FIGURE_FILE"]

#: Measured series: (key in the document, label).
MEASURED_KEYS = (("dense_b1", "dense, batch 1"), ("sparse_b1", "CSR, batch 1"),
                 ("dense_b64", "dense, batch 64"), ("sparse_b64", "CSR, batch 64"))
#: Published series (EIE Table IV, batch 1): (key, label).
PAPER_KEYS = (("cpu_dense", "CPU dense"), ("cpu_sparse", "CPU sparse"), ("gpu_dense", "GPU dense"),
              ("gpu_sparse", "GPU sparse"), ("mgpu_dense", "mGPU dense"), ("mgpu_sparse", "mGPU sparse"))
#: File name of :func:`plot_cpu_baseline`'s figure when written by the script.
FIGURE_FILE = "cpu_baseline.png"


def _check(doc: dict) -> List[dict]:
    if not isinstance(doc, dict) or doc.get("kind") != "eiesim.cpu_baseline":
        raise EieInputError("not a CPU-baseline document (expected 'kind': 'eiesim.cpu_baseline', "
                            "the JSON of scripts/measure_cpu_baseline.py)")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise EieInputError("the CPU-baseline document holds no layers")
    return layers


def _x(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return _num(v) + "×"


def _us(v) -> str:
    if v is None:
        return "n/a"
    return _num(v)


def _num(v: float) -> str:
    """3 significant figures or more: 1,135 / 50.0 / 5.00 (thresholds on the rounded value: 99.99999 -> 100)."""
    if round(v, 1) >= 100:
        return f"{v:,.0f}"
    if round(v, 2) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _md(header: Sequence[str], rows: Sequence[Sequence[object]], align: str) -> str:
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _gm_label(gm: dict) -> str:
    """``"geomean (9 synthetic)"``; without the word when the set is not the synthetic layers."""
    return f"geomean ({len(gm['layers'])}{' synthetic' if gm.get('synthetic', True) else ''})"


def _spread_rows(layers: Sequence[dict], settings: dict) -> List[List[str]]:
    """How noisy the samples were: IQR / median over every measured series, and the machine's load."""
    iqr = [t["iqr_rel"] for l in layers for t in l["measured"].values() if "iqr_rel" in t]
    text = ""
    if iqr:
        text = (f"interquartile range / median of the samples: median {100 * float(np.median(iqr)):.0f} %, "
                f"largest {100 * max(iqr):.0f} % over {len(iqr)} series")
    load = settings.get("load_avg_1min")
    if isinstance(load, dict) and "start" in load and "end" in load:
        text += f"{'; ' if text else ''}1-min load average {load['start']:.1f} at the start, {load['end']:.1f} at the end"
    return [["spread", text]] if text else []


def render_cpu_baseline_markdown(doc: dict) -> str:
    """Markdown: the host, the times, and EIE's speedup and energy efficiency, measured beside published.

    Parameters
    ----------
    doc : dict
        The JSON of ``scripts/measure_cpu_baseline.py``: ``host``, ``power``,
        ``settings``, ``layers`` (each with ``name``, ``eie_time_us``,
        ``measured`` (:class:`~eiesim.energy.host_cpu.CpuTiming` dicts keyed
        as :data:`MEASURED_KEYS`), ``speedup`` / ``energy_ratio`` (same keys),
        ``paper_us`` / ``paper_speedup`` / ``paper_energy_ratio`` (keys of
        :data:`PAPER_KEYS`)), ``geomean`` and ``paper``.

    Returns
    -------
    str
        Four sections: host and power (the power's source quoted), time per
        input vector (µs), speedup table, energy-efficiency table; each ratio
        table ends with the geometric mean over the nine synthetic layers and
        the paper's headline.

    Raises
    ------
    EieInputError
        Not a CPU-baseline document.
    """
    layers = _check(doc)
    host, power, st = doc["host"], doc["power"], doc["settings"]
    paper = doc["paper"]
    threads = host.get("blas_threads")
    parts = [
        "### Host",
        "",
        _md(["", ""], [
            ["CPU", f"{host['cpu_model']}{' (virtual machine)' if host.get('hypervisor') else ''}, "
                    f"{host['cpu_count']} logical CPUs"],
            ["BLAS (NumPy dense)", f"{host['blas']}, {threads if threads is not None else 'unknown'} thread(s) "
                                   f"({host['blas_threads_source']})"],
            ["sparse", f"SciPy {host['scipy']} CSR (single-threaded); NumPy {host['numpy']}, Python {host['python']}"],
            ["timing", f"median of {st['repeats']} samples per implementation, dense and CSR interleaved sample "
                       f"by sample; a sample repeats the call for >= {1e3 * st['min_sample_s']:g} ms"],
            ["energy", (f"declared power {power['watts']:.3g} W x measured time. Source: {power['source']}"
                        if power["method"] == "declared" else f"measured: {power['source']}")],
            ["RAPL", doc.get("rapl_probe", "n/a")],
        ] + _spread_rows(layers, st), "ll"),
        "",
        "### Time per input vector (µs)",
        "",
    ]
    rows = []
    for l in layers:
        m = l["measured"]
        rows.append([l["name"], _us(l["eie_time_us"]), _us(l["paper_eie_us"])]
                    + [_us(1e6 * m[k]["time_per_vector_s"]) for k, _ in MEASURED_KEYS]
                    + [_us(l["paper_us"]["cpu_dense"]), _us(l["paper_us"]["cpu_sparse"])])
    parts.append(_md(["layer", "EIE (eiesim)", "EIE (paper)"] + [f"this CPU: {lab}" for _, lab in MEASURED_KEYS]
                     + ["paper CPU dense", "paper CPU sparse"], rows, "l" + "r" * 8))
    parts += ["", "Batch-64 times are per input vector (call time / 64). Paper: EIE Table IV, batch 1, "
              "Core i7-5930K (its batch-64 columns are not in this project's sources).", ""]

    gm = doc["geomean"]
    for key, pkey, title, head in (
            ("speedup", "paper_speedup", "Speedup of EIE", "speedup"),
            ("energy_ratio", "paper_energy_ratio", "Energy efficiency of EIE", "energy")):
        rows = []
        for l in layers:
            rows.append([l["name"]] + [_x(l[key][k]) for k, _ in MEASURED_KEYS]
                        + [_x(l[pkey][k]) for k, _ in PAPER_KEYS])
        rows.append([f"**{_gm_label(gm)}**"]
                    + [f"**{_x(gm[key][k])}**" for k, _ in MEASURED_KEYS]
                    + [f"**{_x(gm[pkey][k])}**" for k, _ in PAPER_KEYS])
        if key == "speedup" and "speedup_fastest" in gm:
            rows.append(["geomean, fastest sample"] + [_x(gm["speedup_fastest"][k]) for k, _ in MEASURED_KEYS]
                        + [""] * len(PAPER_KEYS))
        rows.append(["paper headline (dense)", "", "", "", ""]
                    + [_x(paper["headline"][head][k.split('_')[0]]) if k.endswith("dense") else ""
                       for k, _ in PAPER_KEYS])
        parts += [f"### {title} over this CPU (measured) and over the paper's platforms (published)", "",
                  _md(["layer"] + [f"this CPU: {lab}" for _, lab in MEASURED_KEYS]
                      + [f"paper: {lab}" for _, lab in PAPER_KEYS], rows, "l" + "r" * 10), ""]
    parts += [f"EIE: eiesim's simulated time (64 PEs, 800 MHz); EIE energy = {paper['eie_power_w']:g} W x that "
              "time (the paper's method, EIE Section VI). Paper columns: EIE Table IV times; their energy uses "
              "platform powers derived from the paper's headline ratios ("
              + ", ".join(f"{p['label']} {p['power_w']:.1f} W" for p in paper["platforms"].values())
              + "); the paper's ratios use its own EIE times (Table IV)."]
    return "\n".join(parts)


def plot_cpu_baseline(doc: dict, path=None):
    """Grouped bars (log scale): EIE's speedup and energy efficiency over this CPU and the paper's CPU.

    Parameters
    ----------
    doc : dict
        The JSON of ``scripts/measure_cpu_baseline.py`` (see
        :func:`render_cpu_baseline_markdown`).
    path : path-like, optional
        When given, the PNG is written there (atomically, 110 dpi).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (speedup, energy efficiency); per layer and for the
        geometric mean: the four measured series (solid dense, hatched CSR;
        dark batch 1, light batch 64) and the paper's CPU dense / sparse
        (grey); the paper's headline geomean (dense) drawn as a dashed line
        with a diamond on the geomean group; on the speedup panel a black
        tick marks each measured series' speedup over its fastest sample
        (when the document holds ``speedup_fastest``).

    Raises
    ------
    EieInputError
        Not a CPU-baseline document.
    """
    from .plots import _new_figure, _save

    layers = _check(doc)
    gm = doc["geomean"]
    names = [l["name"] for l in layers] + [_gm_label(gm)]
    series = [(k, f"this CPU: {lab}", c, h) for (k, lab), c, h in zip(
        MEASURED_KEYS, ("#1f77b4", "#1f77b4", "#9ecae1", "#9ecae1"), (None, "///", None, "///"))]
    series += [("cpu_dense", "paper CPU (i7-5930K) dense", "#7f7f7f", None),
               ("cpu_sparse", "paper CPU (i7-5930K) sparse", "#7f7f7f", "///")]
    width = 0.8 / len(series)
    x = np.arange(len(names))
    host = doc["host"]
    fig = _new_figure((max(11.0, 1.15 * len(names)), 9.0))
    axes = fig.subplots(2, 1)
    head = doc["paper"]["headline"]
    for ax, key, pkey, what, hk in ((axes[0], "speedup", "paper_speedup", "speedup", "speedup"),
                                    (axes[1], "energy_ratio", "paper_energy_ratio", "energy efficiency", "energy")):
        for i, (k, label, colour, hatch) in enumerate(series):
            src, gsrc = (key, gm[key]) if k in dict(MEASURED_KEYS) else (pkey, gm[pkey])
            vals = [l[src][k] for l in layers] + [gsrc[k]]
            ax.bar(x - 0.4 + width * (i + 0.5), vals, width, color=colour if hatch is None else "white",
                   edgecolor=colour, hatch=hatch, label=label)
            if key == "speedup" and k in dict(MEASURED_KEYS) and "speedup_fastest" in gm \
                    and all("speedup_fastest" in l for l in layers):
                fast = [l["speedup_fastest"][k] for l in layers] + [gm["speedup_fastest"][k]]
                ax.plot(x - 0.4 + width * (i + 0.5), fast, ls="none", marker="_", ms=9, mew=2.0, color="k",
                        label="this CPU: fastest sample" if i == 0 else None, gid=f"fastest:{k}")
        v = float(head[hk]["cpu"])
        i_dense = [s[0] for s in series].index("cpu_dense")
        ax.axhline(v, color="#444444", lw=1.0, ls="--", gid=f"paper_headline:{key}")
        ax.plot([x[-1] - 0.4 + width * (i_dense + 0.5)], [v], marker="D", ms=8, color="#7f7f7f", mec="k",
                ls="none", label=f"paper headline vs CPU dense: {v:,.0f}×", gid=f"paper_marker:{key}")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, 0.5), hi * 8.0)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(x, names, rotation=25, ha="right")
        ax.set_ylabel(f"EIE {what} (×, log scale)")
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.legend(ncol=4, fontsize=7.5, loc="upper right")
        ax.set_title(f"EIE {what} over the CPU, per input vector", fontsize=10)
    power = doc["power"]
    pw = (f"{power['watts']:.3g} W declared" if power["method"] == "declared" else "RAPL")
    threads = host.get("blas_threads")
    n_syn = sum(1 for l in layers if l.get("synthetic", True))
    n_real = len(layers) - n_syn
    fig.suptitle(
        f"EIE vs a CPU measured on this host: EIE benchmark layers ({n_syn} synthetic, EIE Table III"
        + (f"; {n_real} real: AlexNet FC8" if n_real else "") + ")\n"
        f"EIE: eiesim, 64 PEs, 800 MHz, 0.6 W x time.  This host: {host['cpu_model']}, {host['blas']}, "
        f"{threads if threads is not None else '?'} BLAS thread(s); CPU energy: {pw}\n"
        "grey bars, dashed line and diamond: the paper's Core i7-5930K (EIE Table IV, batch 1; headline geomean)",
        fontsize=9.5)
    _save(fig, path)
    return fig
