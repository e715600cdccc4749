"""``eiesim validate``: check a compressed model against the format rules (docs/FORMAT.md).

With ``--reference MODEL`` (and/or ``--mask MASKS``) the equivalence rules
also run on every layer of the file, against dense arrays read by
:func:`eiesim.workloads.models.load_model` (the reader of ``eiesim compress``)
and paired with the layers by name as ``eiesim compress`` names them: the
library's :func:`eiesim.compress.reference.compare_with_reference` (pairing
rules, findings and errors documented there). This module parses and renders.
"""

from __future__ import annotations

import os
import sys

from ._args import add_csv_option, add_json_option, dim_int
from ..errors import EieError, EieInputError
from ._paths import check_command_outputs

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
    s.add_argument("--n-out", type=dim_int, metavar="ROWS",
                   help="dump only: output rows, 1..2**28 as a .eie container allows (default: inferred "
                   "from the largest decoded row)")
    s.add_argument("--n-in", type=dim_int, metavar="COLS",
                   help="dump only: input columns, 1..2**28 (default: length of act.dat)")
    s.add_argument("--reference", metavar="MODEL",
                   help="dense weights to compare every layer with, bit for bit (.npz, .safetensors or "
                   ".pth/.pt state dict, as read by 'eiesim compress'): layer NAME <- NAME.weight and "
                   "NAME.bias (a missing NAME.bias means a zero bias)")
    s.add_argument("--mask", metavar="MASKS",
                   help="pruning masks keyed by layer name (.npz of bool or 0/1 arrays, layer shape): "
                   "stored non-zeros must lie inside them")
    add_json_option(s, "the report")
    add_csv_option(s, "every finding, one row each (code, severity, location, count, message)")
    s.add_argument("--strict", action="store_true", help="warnings count as failures (exit 1)")
    s.add_argument("--quiet", action="store_true", help="print only the verdict line")
    s.set_defaults(func=run)


def _print_report(report, quiet: bool, equiv=None, strict: bool = False) -> None:
    if not quiet:
        print(f"eiesim validate: {report.source} ({report.kind}"
              + (f" v{report.version}" if report.version else "") + f", {report.level} checks)")
        if report.layers:
            from ..report.summaries import validation_table

            print(validation_table(report.layers).text())
        for f in report.findings:
            print(str(f))
        for f in report.info:  # informational (INFO-BALANCE): never a failure
            print(str(f))
        if equiv is not None:
            src = " and ".join(f"{what} {os.path.basename(p)}" for what, p in
                               (("reference", equiv["reference"]), ("masks", equiv["mask"])) if p)
            if equiv["compared"]:
                print(f"equivalence: {len(equiv['layers'])} of {len(report.layers)} layer(s) compared with {src}")
            else:
                print(f"equivalence: not compared with {src}: the stored form breaks the rules above")
    n_e, n_w = len(report.errors), len(report.warnings)
    if report.conformant(strict=strict):
        verdict = "conformant"
    elif report.conformant():  # only warnings, and --strict counts them (exit 1)
        verdict = "NOT conformant under --strict"
    else:
        verdict = "NOT conformant"
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
        :func:`eiesim.format.validate.validate` or when writing ``--json``; from
        :func:`eiesim.workloads.models.load_model` for ``--reference`` / ``--mask``;
        from :func:`eiesim.compress.reference.pair_references` for a paired array of the wrong
        shape or dtype);
        :func:`eiesim.cli.main` prints the message and exits with code 2.

    Notes
    -----
    With ``--reference`` / ``--mask`` the findings of
    :func:`eiesim.compress.reference.compare_with_reference` join the report like any other rule's; the
    values are compared only when the file breaks no rule (a broken layout
    cannot be rebuilt), and a dump's unrecorded ``n_out`` (and ``n_in``
    without ``act.dat``) is taken from the reference when it fits.
    """
    from ..compress.reference import compare_with_reference
    from ..format.validate import validate
    from ..workloads.models import load_model

    # the output first, then the reference and masks: a bad one stops before the (possibly long) validation
    beside = None  # a .net stream's default layer list
    if args.layers is None and os.path.isfile(args.path) and not os.fspath(args.path).lower().endswith(".eie"):
        beside = os.path.join(os.path.dirname(os.fspath(args.path)), "layers.json")
    check_command_outputs([("--json", args.json), ("--csv", args.csv)], [
        ("PATH", args.path), ("--layers", args.layers), ("the layer list of PATH", beside),
        ("--reference", args.reference), ("--mask", args.mask)])
    kind = args.fmt
    if kind is None and (args.layers is not None or args.n_out is not None or args.n_in is not None):
        from ..format.validate import detect_format

        kind = detect_format(args.path, layers=args.layers)
    if args.layers is not None and kind != "net":
        raise EieInputError(f"--layers applies to a .net stream only; {args.path} is read as {kind}")
    for flag, val in (("--n-out", args.n_out), ("--n-in", args.n_in)):
        if val is not None and kind != "dump":
            raise EieInputError(f"{flag} applies to a dump directory only; {args.path} is read as {kind}")
    tensors = load_model(args.reference) if args.reference else None
    masks = load_model(args.mask) if args.mask else None
    equiv = None
    try:
        report = validate(args.path, kind, layers=args.layers, n_out=args.n_out, n_in=args.n_in)
        if tensors is not None or masks is not None:
            report, equiv = compare_with_reference(report, tensors, masks, reference_file=args.reference,
                                                   mask_file=args.mask, layers=args.layers, n_out=args.n_out,
                                                   n_in=args.n_in)
    except EieError:
        raise  # cli.main prints one line and exits 2
    except (MemoryError, RecursionError, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a library bug must still not dump a traceback on a user's file
        print(f"eiesim: error: {args.path}: cannot be validated ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_UNREADABLE
    _print_report(report, args.quiet, equiv, strict=args.strict)
    if args.json:
        from ..report.files import write_json

        doc = report.to_dict()
        doc["strict"] = bool(args.strict)
        if equiv is not None:
            doc["equivalence"] = equiv
        write_json(args.json, doc)
    if args.csv:
        from ..report.files import write_csv
        from ..report.summaries import findings_table

        write_csv(args.csv, findings_table(report.findings + report.info))
    return EXIT_OK if report.conformant(strict=args.strict) else EXIT_BROKEN
