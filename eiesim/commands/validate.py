"""``eiesim validate``: check a compressed model against the format rules (docs/FORMAT.md)."""

from __future__ import annotations

import json
import sys

from .._io import write_atomic
from ..errors import EieError, EieInputError

#: Exit codes: conformant, a rule is broken, the input cannot be read.
EXIT_OK, EXIT_BROKEN, EXIT_UNREADABLE = 0, 1, 2


def add_parser(sub) -> None:
    """Register the ``validate`` subcommand on an argparse subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "validate",
        help="check a compressed model rule by rule",
        description="Check an .eie container, an authors' simulator dump directory or a Deep Compression "
        ".net stream against every format rule (docs/FORMAT.md). Exit status: 0 conformant (warnings "
        "allowed unless --strict), 1 a rule is broken, 2 the input cannot be read.",
    )
    s.add_argument("path", metavar="PATH", help=".eie file, dump directory, or .net file (or its directory)")
    s.add_argument("--format", dest="fmt", choices=("eie", "dump", "net"),
                   help="input kind (default: detected)")
    s.add_argument("--layers", metavar="layers.json",
                   help="layer list of a .net stream (default: layers.json beside it)")
    s.add_argument("--n-out", type=int, metavar="ROWS",
                   help="dump only: output rows (default: inferred from the largest decoded row)")
    s.add_argument("--n-in", type=int, metavar="COLS",
                   help="dump only: input columns (default: length of act.dat)")
    s.add_argument("--json", metavar="OUT", help="write the report as JSON")
    s.add_argument("--strict", action="store_true", help="warnings count as failures (exit 1)")
    s.add_argument("--quiet", action="store_true", help="print only the verdict line")
    s.set_defaults(func=run)


def _print_report(report, quiet: bool) -> None:
    if not quiet:
        print(f"eiesim validate: {report.source} ({report.kind}"
              + (f" v{report.version}" if report.version else "") + f", {report.level} checks)")
        if report.layers:
            from ..report.text import format_table

            rows = []
            for l in report.layers:
                shape = " x ".join(str(d) for d in l.shape) if l.shape else "?"
                rows.append([str(l.index), l.name, shape, "-" if l.n_pe is None else str(l.n_pe),
                             f"{l.stored_entries:,}", f"{l.fillers:,}", f"{l.real_nonzeros:,}"])
            print(format_table(["#", "layer", "shape", "N", "stored entries", "fillers", "real non-zeros"], rows))
        for f in report.findings:
            print(str(f))
    n_e, n_w = len(report.errors), len(report.warnings)
    verdict = "conformant" if report.conformant() else "NOT conformant"
    print(f"{verdict}: {n_e} error(s), {n_w} warning(s)")


def run(args) -> int:
    """Execute ``eiesim validate``; returns the exit code (0, 1 or 2).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line of the subcommand (see :func:`add_parser`).

    Returns
    -------
    int
        ``EXIT_OK`` (0) when the file conforms (with ``--strict``: no warning
        either), ``EXIT_BROKEN`` (1) when a rule is broken, ``EXIT_UNREADABLE`` (2)
        when validation itself failed on the file.

    Raises
    ------
    EieError
        Bad flags or unreadable/invalid inputs (``EieInputError`` and the like from
        :func:`eiesim.format.validate.validate` or when writing ``--json``);
        :func:`eiesim.cli.main` prints the message and exits with code 2.
    """
    from ..format.validate import validate

    try:
        report = validate(args.path, args.fmt, layers=args.layers, n_out=args.n_out, n_in=args.n_in)
    except EieError:
        raise  # cli.main prints one line and exits 2
    except (MemoryError, RecursionError, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a library bug must still not dump a traceback on a user's file
        print(f"eiesim: error: {args.path}: cannot be validated ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_UNREADABLE
    _print_report(report, args.quiet)
    if args.json:
        doc = report.to_dict()
        doc["strict"] = bool(args.strict)
        write_atomic(args.json, json.dumps(doc, indent=2).encode("utf-8"), error=EieInputError)
    return EXIT_OK if report.conformant(strict=args.strict) else EXIT_BROKEN
