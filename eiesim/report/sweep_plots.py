"""Figures of sweep results (JSON lines of ``eiesim sweep``): any metric against any axis.

The records are read as written; points that share the x value and the
series (e.g. several seeds) are drawn as their mean, with every point shown
as a faint marker, so nothing is hidden.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import EieInputError
from .plots import _new_figure, _save

__all__ = ["record_value", "sweep_series", "plot_sweep", "AXIS_LABELS", "METRIC_LABELS"]

#: Axis labels with units for common settings.
AXIS_LABELS = {
    "n_pe": "processing elements N",
    "fifo_depth": "activation queue depth (activations)",
    "spmat_line_bits": "spmat SRAM line width (bits)",
    "clock_hz": "clock (Hz)",
    "fixed_total_bits": "fixed-point word (bits)",
    "weight_density": "weight density (fraction kept)",
    "act_density": "activation density (fraction non-zero)",
}
#: Metric labels with units.
METRIC_LABELS = {
    "cycles": "cycles per input (cycles)",
    "time_s": "time per input (s)",
    "load_efficiency": "load-balance efficiency (MACs / (cycles x N))",
    "real_work": "real work / total work (MACs / entries)",
    "pe.idle_fraction": "PE idle share (idle cycles / (cycles x N))",
    "energy.activity_pj": "energy per input, activity-based (pJ)",
    "energy.paper_pj": "energy per input, 0.6 W x time (pJ)",
    "counters.spmat_line_reads": "spmat SRAM line reads (per run)",
    "accuracy": "top-1 accuracy (fraction)",
}


def record_value(record: Mapping[str, Any], key: str) -> Any:
    """A setting or metric of one results record.

    Parameters
    ----------
    record : mapping
        One JSON line of ``eiesim sweep``.
    key : str
        A setting name (``n_pe``, ``workload``, ...; looked up in
        ``settings`` first) or a dotted path into the record
        (``load_efficiency``, ``energy.activity_pj``, ``pe.idle.max``).

    Returns
    -------
    object
        The value.

    Raises
    ------
    EieInputError
        No such setting or metric (the message names the key).
    """
    settings = record.get("settings", {})
    if key in settings:
        return settings[key]
    cur: Any = record
    for part in key.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            raise EieInputError(f"no setting or metric {key!r} in the results (settings: "
                                f"{', '.join(sorted(settings))}; metrics: {', '.join(sorted(k for k in record if k != 'settings'))})")
    return cur


def sweep_series(records: Sequence[Mapping], x: str, y: str, by: Optional[str] = None
                 ) -> Dict[str, Tuple[np.ndarray, np.ndarray, List[Tuple[float, float]]]]:
    """Group records into series: label -> (sorted x, mean y per x, every (x, y) point).

    Parameters
    ----------
    records : sequence of mapping
    x, y : str
        Keys for :func:`record_value`; both must be numbers.
    by : str, optional
        Key whose value names the series (default: one series, ``"all"``).

    Returns
    -------
    dict
        In order of first appearance.

    Raises
    ------
    EieInputError
        A key is missing or a value is not a number.
    """
    groups: Dict[str, Dict[float, List[float]]] = {}
    raw: Dict[str, List[Tuple[float, float]]] = {}
    for r in records:
        label = str(record_value(r, by)) if by else "all"
        xv, yv = record_value(r, x), record_value(r, y)
        for k, v in ((x, xv), (y, yv)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise EieInputError(f"{k!r} is {v!r}, not a number: it cannot be plotted")
        groups.setdefault(label, {}).setdefault(float(xv), []).append(float(yv))
        raw.setdefault(label, []).append((float(xv), float(yv)))
    out = {}
    for label, g in groups.items():
        xs = np.array(sorted(g))
        out[label] = (xs, np.array([np.mean(g[v]) for v in xs]), raw[label])
    return out


def _powers_of_two(xs: np.ndarray) -> bool:
    return bool(xs.size > 2 and np.all(xs > 0) and np.all(np.log2(xs) == np.round(np.log2(xs)))
                and xs.max() / xs.min() >= 8)


def plot_sweep(records: Sequence[Mapping], x: str, y: str, by: Optional[str] = None, path=None, *,
               title: Optional[str] = None, xlabel: Optional[str] = None, ylabel: Optional[str] = None,
               logx: Optional[bool] = None, logy: bool = False,
               marks: Sequence[Tuple[float, float, str]] = (), hlines: Sequence[Tuple[float, str]] = (),
               size=(7.5, 4.6)):
    """Draw ``y`` against ``x`` (one line per ``by`` value) and save it as PNG when ``path`` is given.

    Parameters
    ----------
    records : sequence of mapping
        Results records (JSON lines of ``eiesim sweep``).
    x, y, by : str
        See :func:`sweep_series`.
    path : path-like, optional
    title, xlabel, ylabel : str, optional
        Defaults: :data:`AXIS_LABELS` / :data:`METRIC_LABELS` or the key.
    logx : bool, optional
        Default: log2 scale when the x values are powers of two spanning >= 8x.
    logy : bool
    marks : sequence of (x, y, label)
        Reference points (the paper's stated values), drawn as black stars.
    hlines : sequence of (y, label)
        Reference levels, drawn as dashed grey lines.
    size : tuple of float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    EieInputError
        No records, or a key is missing / not numeric.
    """
    if not records:
        raise EieInputError("no results to plot")
    series = sweep_series(records, x, y, by)
    fig = _new_figure(size)
    ax = fig.add_subplot(1, 1, 1)
    allx = np.concatenate([s[0] for s in series.values()])
    if logx is None:
        logx = _powers_of_two(np.unique(allx))
    for label, (xs, ys, pts) in series.items():
        line, = ax.plot(xs, ys, marker="o", ms=4, label=label if by else None)
        if any(sum(1 for p in pts if p[0] == v) > 1 for v in xs):
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=8, alpha=0.35, color=line.get_color())
    for yv, label in hlines:
        ax.axhline(yv, ls="--", color="0.4", lw=1, label=label)
    for xv, yv, label in marks:
        ax.plot([xv], [yv], marker="*", ms=13, color="black", ls="none", label=label)
    if logx:
        ax.set_xscale("log", base=2)
        ticks = np.unique(allx)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{v:g}" for v in ticks])
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or AXIS_LABELS.get(x, x))
    ax.set_ylabel(ylabel or METRIC_LABELS.get(y, y))
    ax.set_title(title or f"{y} vs {x}" + (f" by {by}" if by else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, ncol=2 if len(handles) > 6 else 1, loc="best")
    _save(fig, path)
    return fig
