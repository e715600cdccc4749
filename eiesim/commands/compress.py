"""``eiesim compress``: prune and quantise a trained model's fully-connected layers into a ``.eie`` file.

The model is read with :mod:`eiesim.workloads.models` (``.npz``, safetensors, or
a PyTorch ``.pth`` state dict through a restricted unpickler -- no torch, no
code from the file), compressed one shot by
:func:`eiesim.compress.pipeline.compress_arrays` (magnitude pruning, k-means
weight sharing; no retraining: there is no data), laid out for EIE and written
with :func:`eiesim.format.container.save_network`.  The storage table (Deep
Compression Table 2 columns) is printed.
"""

from __future__ import annotations

import dataclasses
import math
import os

from .. import __version__
from .._io import open_regular_file
from ._args import add_csv_option, add_json_option, int_range, seed_int
from ..config import MAX_N_PE
from ..errors import EieInputError
from ._paths import check_command_outputs


def _floats(text: str, what: str):
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EieInputError(f"--{what}: expected a number or a comma-separated list, got {text!r}") from None
    if not vals:
        raise EieInputError(f"--{what}: empty list")
    return vals


def _ints(text: str, what: str):
    try:
        vals = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EieInputError(f"--{what}: expected an integer or a comma-separated list, got {text!r}") from None
    if not vals:
        raise EieInputError(f"--{what}: empty list")
    return vals


def _per_layer(vals, n: int, what: str):
    if vals is None:
        return None
    if len(vals) == 1:
        return vals * n
    if len(vals) != n:
        raise EieInputError(f"--{what}: {len(vals)} values for {n} layers (give one, or one per layer)")
    return vals


def _size_summary(total, file_bytes: int) -> dict:
    """The sizes ``compress`` names side by side: dense baseline, Deep Compression stream, the ``.eie`` file.

    The storage table's rates are those of Deep Compression's own stream
    (relative indices in C order, Han et al., ICLR 2016, Table 2 accounting);
    the ``.eie`` file written holds the per-PE EIE layout (pointers for every
    PE and column, EIE Section III), the container's manifest and ZIP framing,
    so it is larger. Both are shown, named.

    Parameters
    ----------
    total : eiesim.compress.storage.LayerStorage
        The total row of the storage table (bits).
    file_bytes : int
        Size of the written ``.eie`` file, bytes.

    Returns
    -------
    dict
        ``dense_bytes``, ``pq_bytes``, ``pqh_bytes`` (None without Huffman),
        ``file_bytes`` and ``rows`` ((label, bytes) in print order).
    """
    dense = math.ceil(total.dense_bits / 8)
    pq = math.ceil(total.pq_bits / 8)
    pqh = math.ceil(total.pqh_bits / 8) if total.pqh_bits is not None else None
    rows = [("dense float32 weights and biases (baseline)", dense),
            ("Deep Compression stream, pruned + quantised (P+Q; the table's rate)", pq)]
    if pqh is not None:
        rows.append(("Deep Compression stream with Huffman coding (P+Q+H)", pqh))
    rows.append(("this .eie file (per-PE EIE layout: pointers per PE and column, codebooks, biases, "
                 "manifest, ZIP)", int(file_bytes)))
    return {"dense_bytes": dense, "pq_bytes": pq, "pqh_bytes": pqh, "file_bytes": int(file_bytes), "rows": rows}


def add_parser(sub) -> None:
    """Register ``eiesim compress``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "compress",
        help="prune + quantise a model's fully-connected layers into a .eie file",
        description="Prune (magnitude) and quantise (k-means weight sharing, Deep Compression) the 2-D "
        "weight matrices of a model given as .npz, .safetensors or a PyTorch .pth state dict (read "
        "without torch), lay them out for EIE and write a .eie container. One shot: no retraining. "
        "The layer of weight PREFIX.X is named PREFIX; where that name is empty or shared by several "
        "layers (a.weight and a.weight_orig) each such layer is named by its full weight name.",
    )
    s.add_argument("model", metavar="MODEL", help="model file: .npz (named arrays, or one scipy.sparse save_npz "
                   "matrix in CSR/CSC/COO, named after the file; duplicate entries refused), .safetensors, or "
                   ".pth/.pt state dict")
    s.add_argument("--out", required=True, metavar="FILE", help="output .eie container")
    s.add_argument("--layers", metavar="NAMES",
                   help="comma-separated weight names in layer order (default: every 2-D float array "
                   "in file order); biases are matched as <prefix>.bias")
    rule = s.add_mutually_exclusive_group()
    rule.add_argument("--density", metavar="D[,D...]",
                      help="fraction of weights kept, one value or one per layer (default: keep all non-zeros)")
    rule.add_argument("--quality", metavar="Q[,Q...]",
                      help="keep |w| > Q x std(layer), one value or one per layer")
    s.add_argument("--balance", choices=("none", "balanced-pe", "balanced-column"), default="none",
                   help="how pruning spreads the kept weights over the --n-pe PEs (row i -> PE i mod N): "
                   "none = plain magnitude (default); balanced-pe = every PE's rows keep the same count "
                   "(+-1, ESE); balanced-column = every PE's slice of each column keeps the same count "
                   "(+-1). Needs --density or --quality; see docs/balanced_pruning.md")
    s.add_argument("--bits", default="4", metavar="B[,B...]",
                   help="codebook index bits per layer, 1..8 (default 4: EIE's 16-entry codebook)")
    s.add_argument("--index-bits", type=int_range(1, 8), default=4, metavar="N",
                   help="relative row-index bits of the EIE layout, 1..8 (default 4)")
    s.add_argument("--storage-index-bits", type=int_range(1, 8), metavar="N",
                   help="relative-index bits of the storage accounting, 1..8 (default: --index-bits)")
    s.add_argument("--huffman", action="store_true",
                   help="also account Huffman coding of the code and index streams (P+Q+H columns)")
    s.add_argument("--init", choices=("linear", "density", "random"), default="linear",
                   help="k-means centroid initialisation (default linear, as Deep Compression)")
    s.add_argument("--seed", type=seed_int, default=0,
                   help="seed of the random initialisation, >= 0 (default 0)")
    s.add_argument("--n-pe", type=int_range(1, MAX_N_PE), default=64, metavar="N",
                   help=f"PEs of the layout, 1..{MAX_N_PE} as 'eiesim simulate' accepts (default 64)")
    s.add_argument("--activation", choices=("relu", "none"), default="relu",
                   help="non-linearity between layers recorded in the container (default relu)")
    add_json_option(s, "the storage rows and settings")
    add_csv_option(s, "the storage table")
    s.set_defaults(func=run)


@dataclasses.dataclass
class CompressRun:
    """What ``eiesim compress`` computed and wrote (the ``.eie`` file); printed by :func:`_render`.

    Attributes
    ----------
    result : eiesim.compress.pipeline.CompressResult
        The compressed layers, their k-means details and storage rows (bits).
    metadata : dict
        The container's metadata (settings, per-layer facts, storage).
    findings : list of eiesim.format.validate.Finding
        What ``eiesim validate`` reports on the new layers (duplicate, unused or zero centroids, ...).
    sizes : dict
        :func:`_size_summary` (bytes).
    """

    result: object
    metadata: dict
    findings: list
    sizes: dict

    def to_dict(self, out) -> dict:
        """The ``--json`` document (``out``: the ``.eie`` path)."""
        s = self.sizes
        return {"eiesim_version": __version__, "out": os.fspath(out), **self.metadata,
                "sizes": {"dense_bytes": s["dense_bytes"], "dc_stream_pq_bytes": s["pq_bytes"],
                          "dc_stream_pqh_bytes": s["pqh_bytes"], "eie_file_bytes": s["file_bytes"]},
                "findings": [{"code": f.code, "severity": f.severity, "layer": f.layer_name, "message": f.message}
                             for f in self.findings]}


def _settings(args, n: int):
    """Per-layer ``(densities, qualities, bits)`` from the flags (one value, or one per layer), checked."""
    dens = _per_layer(_floats(args.density, "density") if args.density else None, n, "density")
    qual = _per_layer(_floats(args.quality, "quality") if args.quality else None, n, "quality")
    bits = _per_layer(_ints(args.bits, "bits"), n, "bits")
    for b in bits:
        if not 1 <= b <= 8:
            raise EieInputError(f"--bits: {b} is outside 1..8")
    for d in dens or []:
        if not 0.0 <= d <= 1.0:
            raise EieInputError(f"--density: {d} is outside [0, 1]")
    for q in qual or []:
        if not (q >= 0.0 and math.isfinite(q)):
            raise EieInputError(f"--quality: {q} must be a finite number >= 0")
    if args.balance != "none" and dens is None and qual is None:
        raise EieInputError(f"--balance {args.balance}: nothing is pruned; give --density or --quality")
    return dens, qual, bits


def _chosen_layers(args):
    """The model's weights chosen as layers (``--layers``, else every 2-D float array): select_layers tuples."""
    from ..workloads.models import load_model, select_layers

    names = None
    if args.layers is not None:
        names = [n.strip() for n in args.layers.split(",")]
        if not all(names):
            raise EieInputError(f"--layers: {args.layers!r} holds an empty name; give comma-separated weight "
                                "names")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise EieInputError(f"--layers: {dup[0]!r} is given more than once")
    chosen = select_layers(load_model(args.model), names, source=args.model)
    for w_name, w, _, _ in chosen:
        if 0 in w.shape:
            raise EieInputError(f"{args.model}: weight {w_name!r} has shape {tuple(w.shape)}; a layer needs at "
                                "least one output row and one input column")
    return chosen


def _metadata(args, chosen, res, dens, qual, bits) -> dict:
    """The container's metadata: source file (with its SHA-256), settings, per-layer facts, storage."""
    import hashlib

    from ..compress.storage import BASELINE

    with open_regular_file(args.model, error=EieInputError, what="model file") as fh:
        sha = hashlib.file_digest(fh, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
            else hashlib.sha256(fh.read()).hexdigest()
    layers_meta = []
    for (w_name, w, b, b_name), info, st in zip(chosen, res.infos, res.storage):
        layers_meta.append({
            "weight": w_name, "bias": b_name, "shape": [int(w.shape[0]), int(w.shape[1])],
            "density": info["density"], "n_kept": info["n_kept_weights"], "code_bits": info["code_bits"],
            "kmeans_iterations": info["iterations"], "kmeans_converged": bool(info["converged"]),
            "empty_codes": [c + 1 for c in info["empty_clusters"]],
            "bias_max_abs_error": info["bias_max_abs_error"],
            "storage": st.to_dict(),
        })
    return {
        "generator": f"eiesim {__version__} compress",
        "source": {"file": os.path.basename(os.fspath(args.model)), "sha256": sha},
        "compression": {
            "pruning": ("magnitude, target density" if dens else
                        "magnitude, quality x std" if qual else "none (all non-zeros kept)"),
            "requested_densities": dens, "qualities": qual, "retraining": "none (one shot)",
            "code_bits": bits, "index_bits": args.index_bits,
            "kmeans_init": args.init, "kmeans_method": "sorted 1-D Lloyd", "seed": args.seed,
            "codebook": "2**bits float32 entries: +0.0 then the k-means centroids, ascending",
            "bias": "folded as an extra column (input 1.0), clustered and coded with the weight "
                    "codebook (lossy); layers without a <prefix>.bias get none",
            "n_pe": args.n_pe,
            "balance": args.balance,
        },
        "storage_baseline": BASELINE,
        "storage_total": res.total.to_dict(),
        "layers": layers_meta,
    }


def _execute(args) -> CompressRun:
    """Check the outputs, read and compress the model, write the ``.eie`` file; nothing printed."""
    from ..compress.pipeline import compress_arrays
    from ..compress.reference import layer_names
    from ..format.container import Network, save_network
    from ..format.validate import validate_layer

    # before any work: a bad --json must not leave a fresh --out behind, nor an output replace the model
    check_command_outputs([("--out", args.out), ("--json", args.json), ("--csv", args.csv)], [("MODEL", args.model)])
    chosen = _chosen_layers(args)
    dens, qual, bits = _settings(args, len(chosen))
    try:
        res = compress_arrays(
            [w for _, w, _, _ in chosen], [b for _, _, b, _ in chosen], layer_names([w_name for w_name, *_ in chosen]),
            densities=dens, qualities=qual, code_bits=bits, index_bits=args.index_bits,
            storage_index_bits=args.storage_index_bits, init=args.init, seed=args.seed,
            n_pe=args.n_pe, huffman=args.huffman, balance=args.balance,
        )
    except EieInputError as exc:
        if "do not form a chain" in str(exc):
            raise EieInputError(f"{args.model}: {exc}; pick the layers with --layers") from None
        raise EieInputError(f"{args.model}: {exc}") from None  # the library names the layer, the file is ours
    metadata = _metadata(args, chosen, res, dens, qual, bits)
    save_network(args.out, Network(tuple(res.layers), activation=args.activation), metadata)
    # what `eiesim validate` would warn about (duplicate, unused or zero centroids, ...), said now
    findings = [f for layer in res.layers for f in validate_layer(layer).findings]
    return CompressRun(res, metadata, findings, _size_summary(res.total, os.path.getsize(args.out)))


def _render(run: CompressRun, args) -> None:
    """Print the layers, the findings, the storage table and the sizes."""
    from ..compress.storage import STORAGE_NOTE
    from ..report.summaries import storage_report

    print(f"eiesim {__version__}: compressed {args.model} -> {args.out}")
    for m, layer in zip(run.metadata["layers"], run.result.layers):
        bias = f", bias {m['bias']} (max error {m['bias_max_abs_error']:.3g})" if m["bias"] else ", no bias"
        print(f"  {layer.name}: {m['weight']} {m['shape'][0]} x {m['shape'][1]}, kept {m['n_kept']:,} "
              f"({100 * m['density']:.2f} %), {m['code_bits']}-bit codes{bias}; EIE layout "
              f"{layer.n_entries:,} entries ({layer.n_fillers:,} fillers) over {layer.n_pe} PEs")
    for f in run.findings:
        more = f" ({f.count} places)" if f.count > 1 else ""
        print(f"  {f.severity} {f.code} [layer {f.layer_name!r}]: {f.message}{more} (as 'eiesim validate' reports it)")
    print()
    print(storage_report(run.result.storage + [run.result.total]).text())
    print(STORAGE_NOTE)
    print()
    print()
    print("sizes (KB = 1000 bytes; rate = size / dense baseline):")
    sizes = run.sizes
    for label, nbytes in sizes["rows"]:
        rate = "" if nbytes == sizes["dense_bytes"] or not nbytes else \
            f", {100 * nbytes / sizes['dense_bytes']:.2f} % ({sizes['dense_bytes'] / nbytes:,.1f}x)"
        print(f"  {label}: {nbytes / 1000:,.1f} KB{rate}")


def run(args) -> int:
    """Execute ``eiesim compress``; returns the exit code.

    :func:`_execute` compresses and writes the ``.eie`` file (a
    :class:`CompressRun`), :func:`_render` prints, then ``--json`` /
    ``--csv`` (the storage table) are written.

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
        Bad flags or unreadable/invalid inputs (``EieInputError`` for out-of-range
        ``--bits``, ``--density``, ``--quality``, ``--n-pe`` or an unusable model file);
        :func:`eiesim.cli.main` prints the message and exits with code 2.
    """
    from ..report.files import write_csv, write_json
    from ..report.summaries import storage_report

    result = _execute(args)
    _render(result, args)
    if args.json:
        write_json(args.json, result.to_dict(args.out))
    if args.csv:
        write_csv(args.csv, storage_report(result.result.storage + [result.result.total]))
    return 0
