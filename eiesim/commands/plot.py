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
