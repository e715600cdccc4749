"""``eiesim energy``: re-price the counters of saved results without simulating again.

Reads the JSON of ``eiesim simulate --json`` (or of ``scripts/reproduce_eie.py``),
prices every layer's counters with the default energy table or a user TOML
table (``--table``), and prints both methods side by side (activity-based and
the paper's chip power x time), the breakdowns and the SRAM/DRAM what-ifs.
The text helpers here are shared with ``eiesim simulate --energy``.
"""

from __future__ import annotations

from typing import List, Sequence

from .._io import json_bytes, write_atomic
from ..errors import EieInputError
from ._paths import check_command_outputs
from ._results import check_energy_results, load_results_json


def add_parser(sub) -> None:
    """Register the ``energy`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "energy",
        help="price saved counters with an energy table",
        description="Re-price the counters of a 'eiesim simulate --json' file (or a reproduction JSON) "
        "with the default energy table (Horowitz 45 nm + EIE Table II) or your own TOML table.",
    )
    s.add_argument("results", metavar="RESULTS.json", help="output of 'eiesim simulate --json'")
    s.add_argument("--table", metavar="FILE.toml", help="energy table overriding the default entry by entry")
    s.add_argument("--json", metavar="OUT", help="write the priced results as JSON")
    s.add_argument("--show-table", action="store_true", help="print every entry of the table with its source")
    s.add_argument("--write-table", metavar="FILE.toml", help="write the (merged) table as TOML, a starting point for your own")
    s.set_defaults(func=run)


def _uj(pj: float) -> str:
    return f"{pj / 1e6:,.3f}"


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
        :func:`layers_in_total`.

    Returns
    -------
    str
        The two-method summary table (with a total row for several layers),
        the activity energy by module and by kind, and the what-if table of
        where the weights live.
    """
    from ..energy.model import KIND_LABELS, MODULE_LABELS
    from ..report.text import format_table

    lines: List[str] = []
    header = ["layer", "paper method uJ", "activity uJ", "activity/paper", "activity W",
              "SRAM %", "logic %", "clock %"]
    rows = []
    for p in priced:
        a, pp = p["activity"], p["paper"]
        tot = a["total_pj"] or 1.0
        c = a["by_class_pj"]
        rows.append([p["name"], _uj(pp["per_input_pj"]), _uj(a["per_input_pj"]), f"{p['activity_over_paper']:.3f}",
                     f"{a['avg_power_w']:.3f}", f"{100 * c['sram'] / tot:.1f}", f"{100 * c['logic'] / tot:.1f}",
                     f"{100 * c['clock'] / tot:.1f}"])
    if in_total is None:
        in_total = [True] * len(priced)
    if sum(in_total) > 1:
        rows.append(None)
        ta = sum(p["activity"]["per_input_pj"] for p, t in zip(priced, in_total) if t)
        tp = sum(p["paper"]["per_input_pj"] for p, t in zip(priced, in_total) if t)
        left_out = [p["name"] for p, t in zip(priced, in_total) if not t]
        label = "total" if not left_out else f"total ({sum(in_total)} layers; without {', '.join(left_out)})"
        rows.append([label, _uj(tp), _uj(ta), f"{ta / tp:.3f}" if tp else "n/a", "", "", "", ""])
    lines.append("energy per input (two methods, never mixed: 'paper' = chip power x simulated time; "
                 "'activity' = counters x energy per action, calibrated on EIE Table II)")
    lines.append(format_table(header, rows))
    lines.append("")
    for labels, field, what in ((MODULE_LABELS, "by_module_pj", "module"), (KIND_LABELS, "by_kind_pj", "kind")):
        header = ["layer"] + list(labels.values())
        rows = [[p["name"]] + [_uj(p["activity"][field][k] / p["activity"]["n_inputs"]) for k in labels]
                for p in priced]
        lines.append(f"activity-based energy by {what} (uJ per input)")
        lines.append(format_table(header, rows))
        lines.append("")
    header = ["layer", "scenario", "weight fetch uJ", "compute uJ", "total uJ", "x EIE"]
    rows = []
    for p in priced:
        n = p["activity"]["n_inputs"]
        for w in p["whatifs"]:
            rows.append([p["name"], w["label"], _uj(w["weight_fetch_pj"] / n), _uj(w["compute_pj"] / n),
                         _uj(w["total_pj"] / n), f"{w['ratio_vs_eie']:,.1f}"])
    lines.append("where the weights live (what-if, per input)")
    lines.append(format_table(header, rows, align="llrrrr"))
    return "\n".join(lines)


def price_document(doc: dict, table) -> List[dict]:
    """Price every layer with counters of a results document.

    Parameters
    ----------
    doc : dict
        The JSON of ``eiesim simulate --json``: ``layers`` (list of dicts with
        ``counters`` and ``cycles``) and optionally ``config``.
    table : EnergyTable
        Prices (see :mod:`eiesim.energy.tables`).

    Returns
    -------
    list of dict
        One :func:`eiesim.energy.model.price_run` result per layer that has
        counters, in document order.

    Raises
    ------
    EieInputError
        If the document has no layers with counters.
    """
    from ..energy.model import RunActivity, price_run

    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise EieInputError("results hold no 'layers' list (expected the JSON of 'eiesim simulate --json')")
    config = doc.get("config") or {}
    priced = []
    for layer in layers:
        if not isinstance(layer, dict) or "counters" not in layer:
            continue
        priced.append(price_run(RunActivity.from_dict(layer, config), table))
    if not priced:
        raise EieInputError("no layer of the results holds 'counters'")
    return priced


def layers_in_total(layers: Sequence[dict]) -> List[bool]:
    """Which priced layers a total sums: each benchmark once.

    A reproduction JSON (``scripts/reproduce_eie.py``) holds the synthetic
    Alex-8 and the real FC8, both with ``"bench": "Alex-8"``: two runs of one
    benchmark layer, not two layers of a network. Of layers sharing a
    ``bench`` the total keeps the real one (``"synthetic": false``), else
    the first; layers without ``bench`` (``eiesim simulate --json``: the
    layers of one network) are all summed.

    Parameters
    ----------
    layers : sequence of dict
        The results' layer dicts that were priced, in order.

    Returns
    -------
    list of bool
    """
    keep = [True] * len(layers)
    chosen = {}
    for i, layer in enumerate(layers):
        bench = layer.get("bench")
        if bench is None:
            continue
        if bench not in chosen:
            chosen[bench] = i
        elif layers[chosen[bench]].get("synthetic", False) and not layer.get("synthetic", False):
            keep[chosen[bench]] = False
            chosen[bench] = i
        else:
            keep[i] = False
    return keep


def format_table_entries(table) -> str:
    """Every entry of an energy table with unit and source.

    Parameters
    ----------
    table : EnergyTable

    Returns
    -------
    str
        The table's name, then one row per entry: key, value, unit, source.
    """
    from ..report.text import format_table

    rows = [[k, f"{e.value:g}", e.unit, e.source] for k, e in table.all_entries().items()]
    return f"energy table: {table.name}\n" + format_table(["entry", "value", "unit", "source"], rows, align="lrll")


def run(args) -> int:
    """Execute ``eiesim energy``; returns the exit code.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line of the subcommand (see :func:`add_parser`).

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    EieError
        Bad flags or unreadable/invalid inputs (``EieInputError`` for results without
        counters, ``EieConfigError`` for a bad ``--table``); :func:`eiesim.cli.main`
        prints the message and exits with code 2.
    """
    from ..energy.tables import DEFAULT_TABLE, load_table

    check_command_outputs([("--json", args.json), ("--write-table", args.write_table)],
                          [("RESULTS.json", args.results), ("--table", args.table)])
    doc = load_results_json(args.results)
    table = load_table(args.table) if args.table else DEFAULT_TABLE
    check_energy_results(doc, args.results)
    if args.show_table:
        print(format_table_entries(table))
        print()
    priced = price_document(doc, table)
    in_total = layers_in_total([l for l in doc["layers"] if isinstance(l, dict) and "counters" in l])
    print(f"energy table: {table.name}")
    print(format_energy(priced, in_total))
    if args.json:
        out = {"source": args.results, "table": table.to_dict(), "energy": {"table": table.name, "layers": priced,
                                                                      "in_total": in_total}}
        write_atomic(args.json, json_bytes(out, error=EieInputError), error=EieInputError)
    if args.write_table:
        write_atomic(args.write_table, table.to_toml().encode("utf-8"), error=EieInputError)
    return 0
