"""``eiesim workloads``: list the registered real workloads, whether installed, and how to install them."""

from __future__ import annotations

from .._io import json_bytes, write_atomic
from ..errors import EieInputError
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
    s.add_argument("--json", metavar="OUT", help="write the list as JSON")
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
    from ..report.text import format_table
    from ..workloads.registry import REGISTRY

    if args.json == "":
        raise EieInputError("--json: empty path")
    check_command_outputs([("--json", args.json)], [])
    docs = [s.to_dict() for s in REGISTRY]
    rows = [[d["name"], "yes" if d["installed"] else "no", d["install_command"] or "(nothing to install)"]
            for d in docs]
    print(format_table(["workload", "installed", "install command"], rows))
    print("\nrun one: eiesim simulate --workload NAME [--inputs K] [--json OUT]")
    if args.json:
        write_atomic(args.json, json_bytes({"workloads": docs}, error=EieInputError), error=EieInputError)
    return 0
