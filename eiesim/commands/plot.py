"""``eiesim plot``: draw the figures of saved results (PNG, headless)."""

from __future__ import annotations

from ..errors import EieInputError
from ._paths import check_output_dir
from ._results import check_plot_results, load_results_json


def add_parser(sub) -> None:
    """Register the ``plot`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "plot",
        help="draw figures from saved results",
        description="Draw PNG figures from a results JSON: the energy breakdown (from 'eiesim simulate "
        "--energy --json' or 'eiesim energy --json'), and with a reproduction JSON "
        "(scripts/reproduce_eie.py) also the speedup and energy-efficiency bars and the "
        "throughput vs energy-efficiency scatter.",
    )
    s.add_argument("results", metavar="RESULTS.json")
    s.add_argument("--out", metavar="DIR", default=".", help="existing folder for the PNG files (default: .; a missing folder is refused, not created, "
                   "as for every eiesim output)")
    s.add_argument("--x", metavar="AXIS", help="sweep results (JSON lines of 'eiesim sweep'): the setting on "
                   "the x axis (n_pe, fifo_depth, spmat_line_bits, ...)")
    s.add_argument("--y", metavar="METRIC", help="sweep results: the metric (cycles, time_s, load_efficiency, "
                   "real_work, pe.idle_fraction, energy.activity_pj, counters.spmat_line_reads, accuracy, ...)")
    s.add_argument("--by", metavar="AXIS", help="sweep results: one line per value of this setting (e.g. workload)")
    s.set_defaults(func=run)


def run(args) -> int:
    """Execute ``eiesim plot``; returns the exit code.

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
        Bad flags or unreadable/invalid inputs (``EieInputError`` when the output cannot
        be written or the results lack a field the figures need);
        :func:`eiesim.cli.main` prints the message and exits with code 2.
    """
    from ..report.plots import FIGURE_FILES, plot_all

    if args.x or args.y or args.by or args.results.lower().endswith(".jsonl"):
        return _run_sweep_plot(args)
    check_output_dir("--out", args.out, FIGURE_FILES, [("RESULTS.json", args.results)])
    doc = load_results_json(args.results)
    check_plot_results(doc, args.results)
    try:
        paths = plot_all(doc, args.out)
    except OSError as exc:
        raise EieInputError(f"{args.out}: cannot write the figures ({exc})") from None
    except (KeyError, TypeError) as exc:
        raise EieInputError(f"{args.results}: results lack a field the figures need ({exc})") from None
    for p in paths:
        print(f"wrote {p}")
    return 0


def _run_sweep_plot(args) -> int:
    """``eiesim plot RESULTS.jsonl --x AXIS --y METRIC [--by AXIS]``: one PNG in --out."""
    import re

    from ..explore import read_results
    from ..report.sweep_plots import plot_sweep

    if not (args.x and args.y):
        raise EieInputError("sweep results need --x AXIS and --y METRIC (and optionally --by AXIS)")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{args.y}_vs_{args.x}" + (f"_by_{args.by}" if args.by else "")) + ".png"
    check_output_dir("--out", args.out, [name], [("RESULTS.jsonl", args.results)])
    records, _ = read_results(args.results)
    if not records:
        raise EieInputError(f"{args.results}: holds no finished point")
    import os

    path = os.path.join(args.out, name)
    spec = os.path.basename(args.results)
    plot_sweep(records, args.x, args.y, args.by, path,
               title=f"{args.y} vs {args.x}" + (f" by {args.by}" if args.by else "") + f" ({spec}, {len(records)} points)")
    print(f"wrote {path}")
    return 0
