"""Text and CSV of priced runs (``eiesim energy``, ``eiesim simulate --energy``).

Energies are per input vector, in µJ (the priced runs hold pJ:
:func:`eiesim.energy.model.price_run`).
"""

from __future__ import annotations

from typing import List, Sequence

from .table import Column, Table, fixed
from .text import format_table

__all__ = ["energy_table", "format_energy", "format_table_entries"]

_UJ = fixed(3, sep=True)


def _uj(pj: float) -> float:
    return pj / 1e6


def _summary(priced: Sequence[dict], in_total: Sequence[bool] = None, *, breakdown: bool = False) -> Table:
    """The two-method table; ``breakdown`` adds the activity energy by module and by kind (the CSV)."""
    from ..energy.model import KIND_LABELS, MODULE_LABELS

    cols = [Column("layer"), Column("paper method uJ", _UJ), Column("activity uJ", _UJ),
            Column("activity/paper", fixed(3)), Column("activity W", fixed(3)), Column("SRAM %", fixed(1)),
            Column("logic %", fixed(1)), Column("clock %", fixed(1))]
    parts = ((MODULE_LABELS, "by_module_pj"), (KIND_LABELS, "by_kind_pj")) if breakdown else ()
    cols += [Column(f"{label} uJ", _UJ) for labels, _ in parts for label in labels.values()]
    rows = []
    for p in priced:
        a = p["activity"]
        tot, c = a["total_pj"] or 1.0, a["by_class_pj"]
        rows.append([p["name"], _uj(p["paper"]["per_input_pj"]), _uj(a["per_input_pj"]), p["activity_over_paper"],
                     a["avg_power_w"], 100 * c["sram"] / tot, 100 * c["logic"] / tot, 100 * c["clock"] / tot]
                    + [_uj(a[field][k] / a["n_inputs"]) for labels, field in parts for k in labels])
    if in_total is None:
        in_total = [True] * len(priced)
    if sum(in_total) > 1:
        ta = sum(p["activity"]["per_input_pj"] for p, t in zip(priced, in_total) if t)
        tp = sum(p["paper"]["per_input_pj"] for p, t in zip(priced, in_total) if t)
        left_out = [p["name"] for p, t in zip(priced, in_total) if not t]
        label = "total" if not left_out else f"total ({sum(in_total)} layers; without {', '.join(left_out)})"
        rows += [None, [label, _uj(tp), _uj(ta), ta / tp if tp else "n/a"] + [None] * (len(cols) - 4)]
    return Table(cols, rows)


def energy_table(priced: Sequence[dict], in_total: Sequence[bool] = None) -> Table:
    """The table ``--csv`` writes: per layer both methods, then the activity energy by module and by kind.

    The first table :func:`format_energy` prints (paper method and activity
    per input in µJ, their ratio, the average power in W, the SRAM / logic /
    clock shares in %) and, in the same row, the next two (activity energy by
    module and by kind, µJ per input); the total row (several layers) fills
    the first four columns. The what-if scenarios are in the JSON.

    Parameters
    ----------
    priced : sequence of dict
        :func:`eiesim.energy.model.price_run` results.
    in_total : sequence of bool, optional
        Which layers the total sums (default: all).

    Returns
    -------
    Table
    """
    return _summary(priced, in_total, breakdown=True)


def format_energy(priced: Sequence[dict], in_total: Sequence[bool] = None) -> str:
    """Text tables of priced layers (output of :func:`eiesim.energy.model.price_run`).

    Energies are per input vector, in µJ.

    Parameters
    ----------
    priced : sequence of dict
        One :func:`eiesim.energy.model.price_run` result per layer (keys
        ``name``, ``activity``, ``paper``, ``activity_over_paper``,
        ``whatifs``; energies in pJ).
    in_total : sequence of bool, optional
        Which layers the total row sums (default: all); see
        :func:`eiesim.commands.energy.layers_in_total`.

    Returns
    -------
    str
        The two-method summary table (with a total row for several layers),
        the activity energy by module and by kind, and the what-if table of
        where the weights live.
    """
    from ..energy.model import KIND_LABELS, MODULE_LABELS

    lines: List[str] = ["energy per input (two methods, never mixed: 'paper' = chip power x simulated time; "
                        "'activity' = counters x energy per action, calibrated on EIE Table II)",
                        _summary(priced, in_total).text(), ""]
    for labels, field, what in ((MODULE_LABELS, "by_module_pj", "module"), (KIND_LABELS, "by_kind_pj", "kind")):
        rows = [[p["name"]] + [_UJ(_uj(p["activity"][field][k] / p["activity"]["n_inputs"])) for k in labels]
                for p in priced]
        lines += [f"activity-based energy by {what} (uJ per input)",
                  format_table(["layer"] + list(labels.values()), rows), ""]
    header = ["layer", "scenario", "weight fetch uJ", "compute uJ", "total uJ", "x EIE"]
    rows = []
    for p in priced:
        n = p["activity"]["n_inputs"]
        for w in p["whatifs"]:
            rows.append([p["name"], w["label"], _UJ(_uj(w["weight_fetch_pj"] / n)), _UJ(_uj(w["compute_pj"] / n)),
                         _UJ(_uj(w["total_pj"] / n)), f"{w['ratio_vs_eie']:,.1f}"])
    lines.append("where the weights live (what-if, per input)")
    lines.append(format_table(header, rows, align="llrrrr"))
    return "\n".join(lines)


def format_table_entries(table) -> str:
    """Every entry of an energy table with unit and source.

    Parameters
    ----------
    table : eiesim.energy.tables.EnergyTable

    Returns
    -------
    str
        The table's name, then one row per entry: key, value, unit, source.
    """
    rows = [[k, f"{e.value:g}", e.unit, e.source] for k, e in table.all_entries().items()]
    return f"energy table: {table.name}\n" + format_table(["entry", "value", "unit", "source"], rows, align="lrll")
