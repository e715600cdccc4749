"""``eiesim convert``: re-encode an already compressed layer or network as a ``.eie`` container.

Nothing is pruned or quantised again: the codes and the codebook are kept
exactly, only the layout changes (row ``i`` goes to PE ``i % N``, EIE Section
III; relative indices and filler entries re-encoded for the new slices). Three
sources are read:

* the authors' EIE simulator dump directory (``ptr/``, ``spm/``, ``arithm.dat``;
  docs/FORMAT.md §2): one layer, its bias column kept as stored;
* a Deep Compression ``.net`` stream (docs/FORMAT.md §1, layer list from
  ``--layers``, by default the ``layers.json`` beside it): its FC-shaped layers
  (shape ``(out, in)`` or ``(out, in, 1, 1)``), the float biases folded into EIE's
  bias column where every value is a codebook value, else refused (``--drop-bias``
  converts the weights alone);
* ``.npz`` or ``.safetensors`` of codes and codebooks: per layer ``PREFIX.codes``
  (2-D integers ``(n_out, n_in)``, 0 = pruned), ``PREFIX.codebook`` (1-D float,
  ``2**b`` values with entry 0 = +0.0, b = 1..8) and optionally
  ``PREFIX.bias_codes`` (1-D integers ``(n_out,)``); a file holding only
  ``codes`` and ``codebook`` is one layer named after the file. Layers in file
  order (a safetensors file orders its tensors by data offset, which writers
  choose: give ``--select`` to fix the network order).
"""

from __future__ import annotations

import os

import numpy as np

from .. import __version__
from ._args import dim_int, int_range
from ..config import MAX_N_PE
from ..errors import EieFormatError, EieInputError
from ._paths import check_command_outputs


def add_parser(sub) -> None:
    """Register ``eiesim convert``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets ``func=run``.
    """
    s = sub.add_parser(
        "convert",
        help="re-encode a dump directory, .eie container, .net stream or codes+codebook file as a .eie container",
        description="Write an already compressed layer or network as a .eie container, codes and codebooks "
        "kept exactly, re-interleaved over --n-pe PEs. SRC: the authors' simulator dump directory (one "
        "layer); a .eie container (re-interleaved for another N); a Deep Compression .net stream (its "
        "FC-shaped layers: (out, in) or (out, in, 1, 1); --layers layers.json, default the one beside it); "
        "or .npz/.safetensors holding PREFIX.codes "
        "(2-D integers, 0 = pruned), PREFIX.codebook (2**b floats, entry 0 = +0.0) and optional "
        "PREFIX.bias_codes, layers in file order (--select sets the order).",
    )
    s.add_argument("src", metavar="SRC", help="dump directory, .eie container, .net stream (or its folder), .npz or "
                   ".safetensors")
    s.add_argument("--out", required=True, metavar="DST.eie", help="output .eie container")
    s.add_argument("--n-pe", type=int_range(1, MAX_N_PE), metavar="N",
                   help=f"PEs of the new layout, 1..{MAX_N_PE} (default: the dump's or container's N; 64 for "
                   "other sources)")
    s.add_argument("--n-out", type=dim_int, metavar="ROWS",
                   help="outputs of a dump's layer (a dump does not store it; default: inferred from the largest "
                   "decoded row)")
    s.add_argument("--layers", metavar="JSON", help="layer list of a .net stream (default: layers.json beside it)")
    s.add_argument("--select", metavar="NAMES",
                   help="comma-separated layer names to convert, each once, in the order the new network runs "
                   "them (default: every FC-shaped layer)")
    s.add_argument("--drop-bias", action="store_true",
                   help="convert a .net stream's layers without their float biases (default: fold each bias into "
                   "EIE's bias column, refused when a value is not a codebook value)")
    s.add_argument("--index-bits", type=int_range(1, 8), default=None, metavar="B",
                   help="relative-index bits of the new layout for .npz/.safetensors sources, 1..8 (default 4; a "
                   "dump, a .eie container and a .net stream keep theirs)")
    s.add_argument("--activation", choices=("relu", "none"), default=None,
                   help="non-linearity between layers recorded in the container (default: none for one layer, "
                   "relu for several)")
    s.set_defaults(func=run)


# --------------------------------------------------------------------------- layout
def relayout(network, n_pe: int):
    """Re-interleave every layer of ``network`` over ``n_pe`` PEs, exactly.

    The real (non-filler) entries, the codebook, the bias column and the
    code/index widths are kept; the per-PE slices, relative indices and filler
    entries are re-encoded (EIE Section III: row ``i`` on PE ``i % N``).

    Parameters
    ----------
    network : eiesim.format.container.Network
    n_pe : int
        PEs of the new layout.

    Returns
    -------
    eiesim.format.container.Network
        ``network`` itself when every layer already has ``n_pe`` PEs.
    """
    from ..format.container import Network

    if all(layer.n_pe == n_pe for layer in network.layers):
        return network
    layers = tuple(layer.relayout(n_pe) for layer in network.layers)  # CompressedLayer.relayout: O(entries)
    return Network(layers, activation=network.activation, metadata=network.metadata)


# --------------------------------------------------------------------------- sources
def _select(layers, select, src):
    """Keep the layers named in ``select`` (comma-separated), in that order."""
    if select is None:
        return layers
    names = [n.strip() for n in select.split(",")]
    if not all(names):
        raise EieInputError(f"--select: {select!r} holds an empty name")
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:  # it wrote a network with one layer twice under one name (fresh-user finding)
        raise EieInputError(f"--select: {twice!r} is given twice")
    by_name = {layer.name: layer for layer in layers}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise EieInputError(f"--select: {src} has no FC-shaped layer {missing[0]!r} (has "
                            f"{', '.join(list(by_name)[:20]) or 'none'})")
    return [by_name[n] for n in names]


def _from_net(path: str, layers_json, n_pe: int, select, drop_bias: bool):
    from ..format.dcnet import dclayer_to_compressed, load_layer_specs, read_net

    if os.path.isdir(path):
        nets = sorted(f for f in os.listdir(path) if f.endswith(".net"))
        if len(nets) != 1:
            raise EieInputError(f"{path}: a folder of a .net stream must hold exactly one .net file "
                                f"(holds {len(nets)})")
        path = os.path.join(path, nets[0])
    if layers_json is None:
        layers_json = os.path.join(os.path.dirname(path), "layers.json")
        if not os.path.isfile(layers_json):
            raise EieInputError(f"{path}: a .net stream has no layer list: pass --layers layers.json "
                                "(none beside it)")
    net = read_net(path, load_layer_specs(layers_json))
    fc = [d for d in net.layers if len(d.spec.shape) == 2 or all(x == 1 for x in d.spec.shape[2:])]
    skipped = [d.name for d in net.layers if d not in fc]
    fc = _select(fc, select, path)
    if not fc:
        raise EieInputError(f"{path}: no FC-shaped layer ((out, in) or (out, in, 1, 1)); "
                            f"{len(skipped)} convolution layer(s) cannot run on EIE as one matrix")
    out = []
    for d in fc:
        try:
            layer, _ = dclayer_to_compressed(d, n_pe, fold_bias=not drop_bias)
        except EieFormatError as exc:
            msg = str(exc).replace("(use fold_bias=False)", "(--drop-bias converts the layer without it)")
            raise EieFormatError(f"{path}: {msg}", code=exc.code) from None
        out.append(layer)
    return out, path


def _from_codes(path: str, n_pe: int, index_bits: int, select):
    from ..format.layout import CompressedLayer
    from ..workloads.models import load_model

    tensors = load_model(path)
    prefixes = [k[: -len(".codes")] if k != "codes" else "" for k in tensors
                if k == "codes" or k.endswith(".codes")]
    if not prefixes:
        raise EieInputError(f"{path}: no 'codes' or 'PREFIX.codes' array (has {', '.join(list(tensors)[:20])}); "
                            "'eiesim compress' reads float weights")
    stem = os.path.splitext(os.path.basename(path))[0]
    layers = []
    for pre in prefixes:
        key = (lambda k: f"{pre}.{k}" if pre else k)
        name = pre or stem
        codes = tensors[key("codes")]
        if codes.ndim != 2 or codes.dtype.kind not in "iu" or 0 in codes.shape:
            raise EieInputError(f"{path}: {key('codes')!r} is {codes.dtype} {codes.shape}; expected 2-D integers "
                                "(n_out, n_in)")
        if key("codebook") not in tensors:
            raise EieInputError(f"{path}: {key('codes')!r} has no {key('codebook')!r}")
        cb = tensors[key("codebook")]
        bits = int(cb.size).bit_length() - 1
        if cb.ndim != 1 or cb.dtype.kind != "f" or not 1 <= bits <= 8 or cb.size != 1 << bits:
            raise EieInputError(f"{path}: {key('codebook')!r} is {cb.dtype} {cb.shape}; expected 1-D floats, "
                                "2**b values for b in 1..8")
        bias = tensors.get(key("bias_codes"))
        if bias is not None and (bias.shape != (codes.shape[0],) or bias.dtype.kind not in "iu"):
            raise EieInputError(f"{path}: {key('bias_codes')!r} is {bias.dtype} {bias.shape}; expected integers "
                                f"({codes.shape[0]},)")
        try:
            layers.append(CompressedLayer.from_codes(
                codes, cb.astype(np.float32), n_pe, bias_codes=bias, code_bits=bits, index_bits=index_bits,
                name=name,
            ))
        except EieFormatError as exc:
            raise EieFormatError(f"{path}: layer {name!r}: {exc}", code=exc.code) from None
    return _select(layers, select, path)


def load_source(args):
    """Read ``eiesim convert``'s SRC into a network laid out for the requested N.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``src``, ``n_pe``, ``n_out``, ``layers``,
        ``select``, ``drop_bias``, ``index_bits``, ``activation``).

    Returns
    -------
    network : eiesim.format.container.Network
        Every layer over ``args.n_pe`` PEs (default: the dump's or container's N, else 64).
    kind : {"dump", "eie", "net", "codes"}
    source : str
        The file read (a ``.net`` folder resolves to its stream).

    Raises
    ------
    EieInputError
        A flag that does not apply to the source, an array of the wrong
        type or shape, a layer list that does not chain.
    EieFormatError
        A malformed dump or ``.net`` stream, a ``.net`` bias that is not a
        codebook value (without ``--drop-bias``), a layout rule broken.
    """
    from ..format.container import Network

    src = args.src
    n_pe = args.n_pe
    is_dump = os.path.isdir(src) and os.path.isdir(os.path.join(src, "ptr"))
    if args.n_out is not None and not is_dump:
        raise EieInputError("--n-out applies to a dump directory only (other sources store their shapes)")
    low = src.lower()
    kept_activation = None  # a container's own, for its layers
    if is_dump:
        if args.select is not None or args.layers is not None or args.drop_bias:
            raise EieInputError("--select/--layers/--drop-bias do not apply to a dump directory (one layer)")
        from ..format.eiedump import read_dump

        dump = read_dump(src, n_out=args.n_out)
        if dump.n_out_inferred:
            print(f"note: n_out = {dump.layer.n_out} inferred from the largest decoded row (a dump does not store "
                  "it); give --n-out ROWS to set it")
        for w in dump.warnings:
            print(f"warning: {w}")
        layers, kind = [dump.layer], "dump"
        n_pe = n_pe or dump.layer.n_pe
    elif low.endswith(".eie"):  # a container: re-interleaved for another N (it was read as a .net stream)
        if args.layers is not None or args.drop_bias or args.index_bits is not None:
            raise EieInputError("--layers/--drop-bias/--index-bits do not apply to a .eie container (its layers "
                                "keep their codes and widths; use --select to pick layers)")
        from ..format.container import load_network

        source = load_network(src, check="full")
        layers, kind = _select(list(source.layers), args.select, src), "eie"
        n_pe = n_pe or layers[0].n_pe
        kept_activation = source.activation if len(layers) > 1 else None
    elif low.endswith((".npz", ".safetensors")):
        if args.layers is not None or args.drop_bias:
            raise EieInputError("--layers/--drop-bias apply to a .net stream only (use --select to pick layers)")
        n_pe = n_pe or 64
        index_bits = 4 if args.index_bits is None else args.index_bits
        layers, kind = _from_codes(src, n_pe, index_bits, args.select), "codes"
    else:
        n_pe = n_pe or 64
        layers, src = _from_net(src, args.layers, n_pe, args.select, args.drop_bias)
        kind = "net"
    activation = args.activation or kept_activation or ("none" if len(layers) == 1 else "relu")
    try:
        network = Network(tuple(layers), activation=activation, metadata={})
    except EieFormatError as exc:
        raise EieInputError(f"{src}: {exc}; pick a chain of layers with --select") from None
    return relayout(network, n_pe), kind, src


def run(args) -> int:
    """Execute ``eiesim convert``; returns the exit code.

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
        Unreadable or invalid source (``EieFormatError``), bad flags or an
        unwritable output (``EieInputError``); :func:`eiesim.cli.main` prints
        the message and exits with code 2.
    """
    from ..format.container import Network, save_network

    check_command_outputs([("--out", args.out)], [("SRC", args.src), ("--layers", args.layers)])
    network, kind, src = load_source(args)
    metadata = {
        "generator": f"eiesim {__version__} convert",
        "source": {"file": os.path.basename(os.path.abspath(src)), "kind": kind},
        "conversion": "codes and codebooks kept exactly; re-interleaved over n_pe PEs",
        "n_pe": network.layers[0].n_pe,
    }
    save_network(args.out, Network(network.layers, activation=network.activation), metadata)
    print(f"eiesim {__version__}: converted {src} ({kind}) -> {args.out}, {len(network.layers)} layer(s) over "
          f"{network.layers[0].n_pe} PEs")
    for layer in network.layers:
        print(f"  {layer.name}: {layer.n_out} x {layer.n_in}{' +bias' if layer.has_bias else ''}, "
              f"{layer.n_entries:,} entries ({layer.n_fillers:,} fillers), {layer.code_bits}-bit codes, "
              f"{layer.index_bits}-bit relative indices")
    return 0
