"""``eiesim workloads``: list the registered real workloads, whether installed, and how to install them."""

from __future__ import annotations

from ..errors import EieInputError
from ._args import add_csv_option, add_json_option
from ._paths import check_command_outputs


def add_parser(sub) -> None:
    """Register the ``workloads`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object; the new subparser sets ``func=run``.
    """
    s = sub.add_parser(
        "workloads",
        help="list the real workloads (installed or not, and the install command)",
        description="List the registered real workloads (eiesim.workloads.registry): name, whether its "
        "pinned packages are installed, and the exact command that installs them. Run one with "
        "'eiesim simulate --workload NAME'.",
    )
    add_json_option(s, "the list")
    add_csv_option(s, "the list")
    s.set_defaults(func=run)


def run(args) -> int:
    """Execute ``eiesim workloads``; returns the exit code.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        0.

    Raises
    ------
    EieError
        An output path that cannot be written (``EieInputError``).
    """
    from ..report.files import write_csv, write_json
    from ..report.summaries import workloads_table
    from ..workloads.registry import REGISTRY

    for flag in ("json", "csv"):
        if getattr(args, flag) == "":
            raise EieInputError(f"--{flag}: empty path")
    check_command_outputs([("--json", args.json), ("--csv", args.csv)], [])
    docs = [s.to_dict() for s in REGISTRY]
    table = workloads_table(docs)
    print(table.text())
    print("\nrun one: eiesim simulate --workload NAME [--inputs K] [--json OUT]")
    if args.json:
        write_json(args.json, {"workloads": docs})
    if args.csv:
        write_csv(args.csv, table)
    return 0
