"""``eiesim energy``: re-price the counters of saved results without simulating again.

Reads the JSON of ``eiesim simulate --json`` (or of ``scripts/reproduce_eie.py``),
prices every layer's counters with the default energy table or a user TOML
table (``--table``), and prints both methods side by side (activity-based and
the paper's chip power x time), the breakdowns and the SRAM/DRAM what-ifs.
The tables are rendered by :mod:`eiesim.report.energy` (shared with
``eiesim simulate --energy``); ``--csv`` writes
:func:`eiesim.report.energy.energy_table`.
"""

from __future__ import annotations

from typing import List, Sequence

from ..errors import EieInputError
from ._args import add_csv_option, add_json_option
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
    add_json_option(s, "the priced results")
    add_csv_option(s, "the energy per layer (both methods, by module and by kind)")
    s.add_argument("--show-table", action="store_true", help="print every entry of the table with its source")
    s.add_argument("--write-table", metavar="FILE.toml", help="write the (merged) table as TOML, a starting point for your own")
    s.set_defaults(func=run)


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
    from ..report.energy import energy_table, format_energy, format_table_entries
    from ..report.files import write_csv, write_json

    check_command_outputs([("--json", args.json), ("--csv", args.csv), ("--write-table", args.write_table)],
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
        write_json(args.json, out)
    if args.csv:
        write_csv(args.csv, energy_table(priced, in_total))
    if args.write_table:
        from .._io import write_atomic

        write_atomic(args.write_table, table.to_toml().encode("utf-8"), error=EieInputError)
    return 0
