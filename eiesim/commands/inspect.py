"""``eiesim inspect``: per-layer storage facts of a compressed-weight file.

Three inputs are recognised:

* a directory: the authors' EIE simulator dump (docs/FORMAT.md §2), or a
  directory without ``ptr/`` holding exactly one ``.net`` file: that file;
* a ZIP archive (or a ``.eie`` name): an eiesim container (FORMAT.md §3);
* anything else: a Deep Compression ``.net`` stream (FORMAT.md §1), which
  carries no layer list: ``--layers layers.json``, by default the
  ``layers.json`` beside it (as ``eiesim validate``).

Bytes are counted as stored: for ``.net`` the layer's bytes in the stream
(codebook + bias + code stream + index stream; the 4-byte header words are
counted once in the total); for the per-PE layouts
``entries * (code_bits + index_bits) / 8 + pointers * pointer_bits / 8 +
codebook * 4`` (float32 codebook; pointers ``n_pe * (columns + 1)``, bias
column included when present), rounded up to whole bytes.

For the per-PE layouts two balance columns follow (:mod:`eiesim.format.balance`,
weight columns only, real non-zeros): ``PE max/mean``, the busiest PE's
non-zeros over the mean over all N PEs, and ``slice max/mean``, the sum over
columns of the busiest PE's slice over the sum of the mean slice (what a dense
input costs when every broadcast waits for its busiest PE). 1.000 is perfect.
"""

from __future__ import annotations

import glob
import math
import os

from .._io import os_error_message, open_regular_file, refuse_symlink_loop
from ..config import EIEConfig
from ..errors import EieInputError
from ._args import add_csv_option, add_json_option
from ._paths import check_command_outputs

_ZIP_MAGIC = b"PK\x03\x04"


def add_parser(sub) -> None:
    """Register the ``inspect`` subcommand on an argparse subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "inspect",
        help="per-layer storage of a .net stream, .eie container or dump directory",
        description="Print per layer: shape, stored entries, fillers, real non-zeros, codebook size "
        "and bytes (per-PE layouts also the PE and column-slice balance, max/mean), for a Deep Compression "
        ".net stream (its layer list: --layers, default layers.json beside it), "
        "an eiesim .eie container "
        "or the authors' simulator dump directory.",
    )
    s.add_argument("file", metavar="FILE", help=".net stream, .eie container or dump directory")
    s.add_argument("--layers", metavar="JSON",
                   help="layer list of a .net stream (names, shapes, code_bits, index_bits; default: layers.json "
                   "beside it)")
    s.add_argument("--pointer-bits", type=int, metavar="B", default=None,
                   help=f"pointer width for per-PE layouts (default: {EIEConfig().pointer_bits}, EIE)")
    add_json_option(s, "the table")
    add_csv_option(s, "the table")
    s.set_defaults(func=run)


def _kind(path: str, layers_flag):
    """``(kind, path, layers)``: a dump directory, a directory holding one ``.net`` file, a container or a
    ``.net`` stream, whose layer list defaults to the ``layers.json`` beside it (as ``eiesim validate``)."""
    refuse_symlink_loop(path, error=EieInputError)
    if os.path.isdir(path):
        nets = sorted(glob.glob(os.path.join(glob.escape(path), "*.net")))
        if os.path.isdir(os.path.join(path, "ptr")) or len(nets) != 1:
            return "dump", path, layers_flag
        path = nets[0]
    if not os.path.exists(path):
        raise EieInputError(f"{path}: no such file or directory")
    # os.stat before open: a FIFO would block, a device never end
    with open_regular_file(path, error=EieInputError, what=".net stream, .eie container or dump directory") as fh:
        try:
            magic = fh.read(4)
        except OSError as exc:
            raise EieInputError(os_error_message(path, exc)) from None
    if magic == _ZIP_MAGIC or path.lower().endswith(".eie"):
        return "eie", path, layers_flag
    if layers_flag is None:
        beside = os.path.join(os.path.dirname(path), "layers.json")
        if not os.path.isfile(beside):
            raise EieInputError(
                f"{path}: not a container or dump directory, so read as a Deep Compression .net stream, "
                "which has no layer list: pass --layers layers.json (none beside it)"
            )
        layers_flag = beside
    return "net", path, layers_flag


def _inspect_net(path: str, layers_json: str) -> dict:
    from ..format.dcnet import load_layer_specs, read_net

    specs = load_layer_specs(layers_json)
    net = read_net(path, specs)
    rows = []
    for l in net.layers:
        rows.append({
            "name": l.name,
            "kind": "conv" if len(l.shape) == 4 else "fc",  # a .net layer's shape: (out, in, kh, kw) or (out, in)
            "shape": list(l.shape),
            "weights": l.spec.n_weights,
            "entries": l.n_entries,
            "fillers": l.n_fillers,
            "nonzeros": l.n_nonzeros,
            "density": l.n_nonzeros / l.spec.n_weights,
            "code_bits": l.spec.code_bits,
            "index_bits": l.spec.index_bits,
            "codebook_size": l.spec.codebook_size,
            "bias_values": l.spec.n_out,
            "bytes": l.stream_bytes,
            "dense_bytes": 4 * (l.spec.n_weights + l.spec.n_out),
        })
    return {
        "kind": "net",
        "format": "Deep Compression .net stream",
        "layers": rows,
        "header_bytes": 4 * len(net.layers),
        "bytes_consumed": net.bytes_consumed,
        "file_size": os.path.getsize(path),
        "issues": [
            {"code": i.code, "severity": i.severity, "layer": i.layer, "message": i.message}
            for i in net.issues
        ],
    }


def _layout_row(layer, pointer_bits: int, kind: str = "fc") -> dict:
    from ..format.balance import layer_balance

    n_ptr = int(layer.ptr.size)
    bits = (layer.n_entries * (layer.code_bits + layer.index_bits) + n_ptr * pointer_bits
            + layer.codebook.size * 32)
    max_ptr = int(layer.ptr[:, -1].max()) if layer.ptr.size else 0
    return {
        "name": layer.name,
        "kind": kind,
        "shape": [layer.n_out, layer.n_in],
        "has_bias": layer.has_bias,
        "n_pe": layer.n_pe,
        "weights": layer.n_out * layer.n_in,
        "entries": layer.n_entries,
        "fillers": layer.n_fillers,
        # non-zeros of W (bias column excluded), so that density = nonzeros / weights
        "nonzeros": int(round(layer.weight_density * layer.n_out * layer.n_in)),
        "bias_entries": (layer.n_nonzeros - int(round(layer.weight_density * layer.n_out * layer.n_in))),
        "density": layer.weight_density,
        "code_bits": layer.code_bits,
        "index_bits": layer.index_bits,
        "codebook_size": int(layer.codebook.size),
        "pointers": n_ptr,
        "pointer_bits": pointer_bits,
        "pointers_fit": max_ptr < (1 << pointer_bits),
        "bits": bits,
        "bytes": math.ceil(bits / 8),
        "balance": layer_balance(layer).to_dict(),
        # the baseline every rate in eiesim uses: dense float32 weights and biases (32 bits per parameter)
        "dense_bytes": 4 * (layer.n_out * layer.n_in + (layer.n_out if layer.has_bias else 0)),
    }


def run(args) -> int:
    """Execute ``eiesim inspect``; returns the exit code.

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
        Bad flags or unreadable/invalid inputs (``EieInputError`` for ``--pointer-bits``
        outside [1, 64], ``EieFormatError`` for a malformed file);
        :func:`eiesim.cli.main` prints the message and exits with code 2.
    """
    from ..report.files import write_csv, write_json
    from ..report.summaries import inspect_table

    path = os.fspath(args.file)
    pointer_bits = args.pointer_bits if args.pointer_bits is not None else EIEConfig().pointer_bits
    if not 1 <= pointer_bits <= 64:
        raise EieInputError(f"--pointer-bits: {pointer_bits} is outside [1, 64]")
    kind, path, layers = _kind(path, args.layers)
    if args.layers is not None and kind != "net":
        raise EieInputError(f"--layers applies to a .net stream only; {path} is read as {kind}")
    check_command_outputs([("--json", args.json), ("--csv", args.csv)], [("FILE", path), ("--layers", layers)])
    if kind == "net":
        doc = _inspect_net(path, layers)
    elif kind == "eie":
        from ..format.container import load_network

        net = load_network(path)
        doc = {"kind": "eie", "format": "eiesim .eie container",
               "layers": [_layout_row(l, pointer_bits, kd) for l, kd in zip(net.layers, net.kinds)],
               "file_size": os.path.getsize(path)}
    else:
        from ..format.eiedump import read_dump

        dump = read_dump(path)
        doc = {"kind": "dump", "format": "EIE simulator dump directory",
               "layers": [_layout_row(dump.layer, pointer_bits)]}
    doc = {"source": path, **doc}
    rows_doc = doc["layers"]
    doc["total"] = {k: sum(r[k] for r in rows_doc)
                    for k in ("weights", "entries", "fillers", "nonzeros", "bytes", "dense_bytes") + (("bias_entries",) if kind != "net"
                                                                                        else ())}
    # weight density over all layers (a bias column's entries are not weights)
    doc["total"]["density"] = (sum(r["density"] * r["weights"] for r in rows_doc) / doc["total"]["weights"]
                               if doc["total"]["weights"] else 0.0)

    n = len(rows_doc)
    print(f"{path}: {doc['format']}, {n} layer{'s' if n != 1 else ''}")
    table = inspect_table(doc)
    print(table.text())
    t = doc["total"]
    if kind == "net":
        print(f"\nbytes consumed: {doc['bytes_consumed']:,} of {doc['file_size']:,} "
              f"(header {doc['header_bytes']:,} + layers {t['bytes']:,})")
        for i in doc["issues"]:
            print(f"{i['severity']} {i['code']} [{i['layer']}]: {i['message']}")
    else:
        print(f"\nbytes: entries x (code_bits + index_bits) + pointers x {pointer_bits} bits "
              "+ float32 codebook, per layer")
        print("balance: real non-zeros of the weight columns; PE max/mean = busiest PE / mean over all PEs, "
              "slice max/mean = sum over columns of the busiest PE's slice / sum of the mean slice (1.000 = even)")
        for r in rows_doc:
            if not r["pointers_fit"]:
                print(f"note: layer {r['name']!r}: a pointer does not fit {pointer_bits} bits")
    print("dense bytes: the baseline, dense float32 weights and biases (32 bits per parameter); "
          "dense / bytes: the compression ratio")

    if args.json:
        write_json(args.json, doc)
    if args.csv:
        write_csv(args.csv, table)
    return 0
