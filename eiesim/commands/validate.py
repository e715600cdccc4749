"""``eiesim validate``: check a compressed model against the format rules (docs/FORMAT.md).

With ``--reference MODEL`` (and/or ``--mask MASKS``) the equivalence rules
(``EQUIV-DENSE-MISMATCH``, ``CODE0-REAL-NONZERO``, ``CODEBOOK-TOO-MANY-VALUES``,
``EQUIV-OUTSIDE-MASK``) also run on every layer of the file, against dense
arrays read by :func:`eiesim.workloads.models.load_model` (the reader of
``eiesim compress``) and paired with the layers by name as ``eiesim compress``
names them: layer ``NAME`` <- weight ``NAME.weight`` (else the one other
``NAME.<x>`` array of 2 or more dimensions, else ``NAME``), bias
``P.bias`` of that weight ``P.<x>`` (``NAME.bias`` but for a layer named
by its full weight name); mask ``NAME``.  A file whose layers do not have distinct,
non-empty names cannot be paired (:class:`~eiesim.errors.EieInputError`).
Unpaired layers and arrays are findings
(``EQUIV-REFERENCE-MISSING``, ``EQUIV-REFERENCE-UNUSED``); a paired array of
the wrong shape or dtype is an :class:`~eiesim.errors.EieInputError` (exit 2).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import json_bytes, write_atomic
from ._args import dim_int
from ..errors import EieError, EieFormatError, EieInputError
from ._paths import check_command_outputs

#: Exit codes: conformant, a rule is broken, the input cannot be read.
EXIT_OK, EXIT_BROKEN, EXIT_UNREADABLE = 0, 1, 2



#: Column header of the weight non-zeros, the same in inspect and validate (and README): real
#: (non-filler) entries of W, the bias column excluded (issue 9: one definition of "non-zeros").
NONZEROS_HEADER = "non-zeros (W, no bias)"

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
    s.add_argument("--json", metavar="OUT", help="write the report as JSON")
    s.add_argument("--strict", action="store_true", help="warnings count as failures (exit 1)")
    s.add_argument("--quiet", action="store_true", help="print only the verdict line")
    s.set_defaults(func=run)


#: Rules that compare the stored form with ``--reference`` / ``--mask`` (run by :func:`check_equivalence`).
EQUIV_CODES = ("CODEBOOK-TOO-MANY-VALUES", "EQUIV-DENSE-MISMATCH", "CODE0-REAL-NONZERO", "EQUIV-OUTSIDE-MASK")
_LIST_MAX = 8


@dataclasses.dataclass(frozen=True, eq=False)
class LayerReference:
    """What one layer of the validated file is compared with.

    Attributes
    ----------
    layer : int
        Layer index in file order.
    name : str
        Layer name.
    shape : tuple of int or None
        Dense weight shape of the layer: ``(n_out, n_in)`` (``.net``: the
        layer's tensor shape, e.g. ``(out, in, kh, kw)``); None when the
        file does not say (it then breaks a rule and nothing is compared).
    weight_name : str or None
        Name of the paired weight array in the reference file (None: no
        ``--reference``, or no array for this layer).
    weight : numpy.ndarray of float, shape ``shape``, or None
        The dense reference weights (compared as float32, bit for bit).
    bias_name : str or None
        Name of the paired ``<prefix>.bias`` array, or None.
    bias : numpy.ndarray of float, shape (shape[0],), or None
        Reference bias; None with a weight means the reference has no bias,
        and the stored bias must then be zero.
    mask_name : str or None
        Key of the paired mask in the mask file (the layer name), or None.
    mask : numpy.ndarray of bool, shape ``shape``, or None
        True where a stored non-zero is allowed.
    """

    layer: int
    name: str
    shape: tuple[int, ...] | None
    weight_name: str | None = None
    weight: np.ndarray | None = None
    bias_name: str | None = None
    bias: np.ndarray | None = None
    mask_name: str | None = None
    mask: np.ndarray | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready pairing: ``layer``, ``name``, ``weight``, ``bias``, ``mask`` (array names or None).

        Returns
        -------
        dict
        """
        return {"layer": self.layer, "name": self.name, "weight": self.weight_name, "bias": self.bias_name,
                "mask": self.mask_name}


def _weightlike(a: np.ndarray) -> bool:
    return a.ndim >= 2 and a.dtype.kind == "f"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LIST_MAX])
    return shown + (f", ... ({len(names) - _LIST_MAX} more)" if len(names) > _LIST_MAX else "")


def _shape(shape) -> str:
    return str(tuple(int(d) for d in shape))


def find_reference_weight(tensors: dict[str, np.ndarray], name: str, source: str = "reference") -> str | None:
    """Name of the reference weight array of layer ``name``, by ``eiesim compress``'s naming.

    ``eiesim compress`` names the layer of weight ``<prefix>.<x>`` ``<prefix>``
    (and of a weight without a dot, or whose prefix would be empty or shared
    by several layers, the weight's full name; see
    :func:`eiesim.commands.compress.layer_names`). The reverse: the
    array ``NAME.weight``; else the one other ``NAME.<x>`` floating-point
    array of 2 or more dimensions (``NAME.bias`` excluded); else the array
    ``NAME`` itself.

    Parameters
    ----------
    tensors : mapping of str to numpy.ndarray
        As returned by :func:`eiesim.workloads.models.load_model`.
    name : str
        Layer name (an empty name matches nothing).
    source : str, default "reference"
        File name used in error messages.

    Returns
    -------
    str or None
        The array name, or None when no array fits.

    Raises
    ------
    EieInputError
        Several ``NAME.<x>`` arrays fit and none is ``NAME.weight``.
    """
    if not name:
        return None
    if f"{name}.weight" in tensors:
        return f"{name}.weight"
    cands = [k for k, v in tensors.items()
             if "." in k and k.rsplit(".", 1)[0] == name and k != f"{name}.bias" and _weightlike(v)]
    if len(cands) > 1:
        raise EieInputError(f"{source}: layer {name!r} matches {len(cands)} arrays ({_names(cands)}) and none "
                            f"is named {name + '.weight'!r}; rename the one to compare")
    if cands:
        return cands[0]
    return name if name in tensors else None


def _mask_array(arr: np.ndarray, key: str, source: str) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise EieInputError(f"{source}: mask {key!r} is {arr.dtype}; expected bool or 0/1 values")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        idx = tuple(int(x) for x in np.argwhere(bad)[0])
        raise EieInputError(f"{source}: mask {key!r} holds {arr[idx].item()!r} at {list(idx)}; expected bool or "
                            "0/1 values")
    return arr != 0


def _check_shape(arr: np.ndarray, what: str, source: str, shape, where: str) -> None:
    if shape is not None and tuple(arr.shape) != shape:
        raise EieInputError(f"{source}: {what} has shape {_shape(arr.shape)}, expected {_shape(shape)}{where}")


def pair_references(layers, tensors: dict[str, np.ndarray] | None = None,
                    masks: dict[str, np.ndarray] | None = None, *, reference_file: str = "reference",
                    mask_file: str = "mask", target: str = "PATH",
                    shape_notes: dict[int, str] | None = None):
    """Pair the layers of a validated file with reference arrays and masks, by name.

    Parameters
    ----------
    layers : sequence of LayerCounts
        ``ValidationReport.layers`` (uses ``index``, ``name`` and ``shape``).
    tensors : mapping of str to numpy.ndarray, optional
        The reference model (``--reference``), from
        :func:`eiesim.workloads.models.load_model`; layer ``NAME`` gets the
        weight :func:`find_reference_weight` names and its ``<prefix>.bias``
        (paired as :func:`eiesim.workloads.models.select_layers` pairs them).
    masks : mapping of str to numpy.ndarray, optional
        Masks keyed by layer name (``--mask``): bool or 0/1, layer shape.
    reference_file, mask_file, target : str
        File names used in messages (the reference, the masks, the validated file).
    shape_notes : dict of int to str, optional
        Text appended to the shape error of a layer (by index).

    Returns
    -------
    pairs : list of LayerReference
        One per layer with a reference weight or a mask, in layer order.
    findings : list of eiesim.format.validate.Finding
        ``EQUIV-REFERENCE-MISSING`` (error) for each layer without a weight
        (``tensors`` given) or without a mask (``masks`` given);
        ``EQUIV-REFERENCE-UNUSED`` (warning, one per file) listing the weight
        arrays (floating point, 2 or more dimensions) and masks that match no
        layer. Other arrays (1-D, integer: biases, batch-norm statistics,
        counters) are never reported.

    Raises
    ------
    EieInputError
        A paired weight or mask does not have the layer's shape (the
        message names the file, the array and the expected shape); a weight
        is not floating point; a bias is not float ``(n_out,)``; a mask holds
        values other than 0/1; a layer name matches several arrays; a layer
        of the validated file has an empty name, or several layers share a
        name (pairing is by name, so they cannot be told apart; the message
        names the layers by index).
    """
    from ..format.validate import RULES, Finding
    from ..workloads.models import select_layers

    by_name: dict = {}
    for lc in layers:
        by_name.setdefault(lc.name or "", []).append(int(lc.index))
    for name, idx in by_name.items():
        if not name:
            which = f"layers {', '.join(map(str, idx))} have" if len(idx) > 1 else f"layer {idx[0]} has"
            raise EieInputError(f"{target}: {which} an empty name; --reference/--mask pair layers by name")
        if len(idx) > 1:
            raise EieInputError(f"{target}: layers {', '.join(map(str, idx))} are all named {name!r}; "
                                "--reference/--mask pair layers by name and cannot tell them apart")

    def finding(code: str, message: str, **loc) -> Finding:
        return Finding(code, RULES[code].severity, message, **loc)

    ref_base = os.path.basename(reference_file)
    mask_base = os.path.basename(mask_file)
    pairs: list[LayerReference] = []
    findings: list[Finding] = []
    used_w: set = set()
    used_m: set = set()
    notes = shape_notes or {}
    for lc in layers:
        i, name = int(lc.index), lc.name
        shape = tuple(int(d) for d in lc.shape) if lc.shape is not None else None
        where = f" (layer {i} {name!r} of {target}){notes.get(i, '')}"
        wname = w = bname = b = mkey = mk = None
        if tensors is not None:
            wname = find_reference_weight(tensors, name, reference_file)
            if wname is None:
                findings.append(finding(
                    "EQUIV-REFERENCE-MISSING",
                    f"no reference array for layer {name!r} in {ref_base} (looked for "
                    f"{name + '.weight'!r}, another {name + '.<x>'!r} array of 2 or more "
                    f"dimensions, or {name!r}): its equivalence is unchecked",
                    layer=i, layer_name=name, member=ref_base))
            else:
                w = tensors[wname]
                _check_shape(w, f"array {wname!r}", reference_file, shape, where)
                as_matrix = {**tensors, wname: w if w.ndim == 2 else w.reshape(w.shape[0], -1)}
                ((_, _, b, bname),) = select_layers(as_matrix, [wname], source=reference_file)
                used_w.add(wname)
                if bname is not None:
                    used_w.add(bname)
        if masks is not None:
            if name in masks:
                mkey = name
                _check_shape(masks[name], f"mask {name!r}", mask_file, shape, where)
                mk = _mask_array(masks[name], name, mask_file)
                used_m.add(name)
            else:
                findings.append(finding(
                    "EQUIV-REFERENCE-MISSING",
                    f"no mask for layer {name!r} in {mask_base} (key {name!r}): the mask rule is unchecked",
                    layer=i, layer_name=name, member=mask_base))
        if wname is not None or mkey is not None:
            pairs.append(LayerReference(i, name, shape, wname, w, bname, b, mkey, mk))
    if tensors is not None:
        extra = [k for k, v in tensors.items() if k not in used_w and _weightlike(v)]
        if extra:
            findings.append(finding(
                "EQUIV-REFERENCE-UNUSED", f"{len(extra)} weight array(s) of {ref_base} match no layer of "
                f"{os.path.basename(target)}: {_names(extra)}", member=ref_base, count=len(extra)))
    if masks is not None:
        extra = [k for k in masks if k not in used_m]
        if extra:
            findings.append(finding(
                "EQUIV-REFERENCE-UNUSED", f"{len(extra)} mask(s) of {mask_base} match no layer of "
                f"{os.path.basename(target)}: {_names(extra)}", member=mask_base, count=len(extra)))
    return pairs, findings


def _net_csc(dcl):
    """A ``.net`` layer as one-PE CSC arrays of its ``(out, prod(rest))`` matrix, code-0 entries kept."""
    from ..format.relindex import encode_segments

    n_out = dcl.shape[0]
    n_in = dcl.spec.n_weights // n_out
    pos = dcl.positions()
    rows, cols = pos // n_in, pos % n_in
    order = np.lexsort((rows, cols))
    # encode every stored entry (fillers included) as a real one, then put the stored codes back:
    # a code-0 entry of the stream stays a stored code-0 entry at its own position
    v, z, counts = encode_segments(cols[order], rows[order], np.ones(pos.size, np.int64), n_in, dcl.spec.index_bits)
    v = v.astype(np.int64)
    v[v != 0] = dcl.codes[order]
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)[None, :]
    return (n_out, n_in), ptr, v, z.astype(np.int64)


_PE_NOTE = re.compile(r" \(PE 0, column \d+, local row \d+\)")
_W_AT = re.compile(r"W\[(\d+), (\d+)\]")


def _net_message(msg: str, shape: tuple[int, ...], n_in: int) -> str:
    msg = _PE_NOTE.sub("", msg)

    def at(m):
        flat = int(m.group(1)) * n_in + int(m.group(2))
        idx = ", ".join(str(int(x)) for x in np.unravel_index(flat, shape))
        return f"W[{idx}] (position {flat})"

    return _W_AT.sub(at, msg, count=1)


def check_equivalence(pairs: Sequence[LayerReference], stored: dict[int, object], target: str = "PATH"):
    """Run the equivalence rules on the stored layers against their references.

    Parameters
    ----------
    pairs : sequence of LayerReference
        From :func:`pair_references`.
    stored : dict of int to CompressedLayer or DCLayer
        The decoded layers by index (a ``.eie`` container or dump directory:
        :class:`~eiesim.format.layout.CompressedLayer`; a ``.net`` stream:
        :class:`~eiesim.format.dcnet.DCLayer`, compared as its
        ``(out, prod(rest))`` matrix in C order, conv layers included).
    target : str, default "PATH"
        File name used in error messages.

    Returns
    -------
    list of eiesim.format.validate.Finding
        Findings of :data:`EQUIV_CODES`, located at their layer (index and
        name), in layer order. The weights are compared by
        :func:`eiesim.format.validate.validate_layer` /
        :func:`~eiesim.format.validate.validate_arrays`; the bias with the
        reference bias (zero when the reference has none), bit for bit:
        the bias column of a CompressedLayer, the float bias of a ``.net``
        layer.

    Raises
    ------
    EieFormatError
        A stored layer breaks a layout rule, so it cannot be rebuilt (the
        caller validates the file first and compares only conformant ones).
    """
    from ..format.dcnet import DCLayer
    from ..format.layout import CompressedLayer
    from ..format.validate import (
        RULES,
        Finding,
        _zero_sign_bits,
        validate_arrays,
        validate_layer,
    )

    out: list[Finding] = []
    for p in pairs:
        layer = stored[p.layer]
        if not isinstance(layer, (CompressedLayer, DCLayer)):  # pragma: no cover - the callers pass only these
            raise EieFormatError(f"{target}: layer {p.layer}: cannot compare a {type(layer).__name__}", code="ARGUMENT")
        rb = None  # the reference bias: no NAME.bias means a zero bias
        if p.weight is not None:
            rb = np.zeros(layer.shape[0], np.float32) if p.bias is None else np.asarray(p.bias, np.float32)
        if isinstance(layer, CompressedLayer):
            sub = validate_layer(layer, reference=p.weight, reference_bias=rb, mask=p.mask)
            net = None
        else:
            shape2, ptr, v, z = _net_csc(layer)
            sub = validate_arrays(
                shape2, 1, layer.codebook, ptr, v, z, code_bits=layer.spec.code_bits,
                index_bits=layer.spec.index_bits, name=layer.name,
                reference=None if p.weight is None else np.asarray(p.weight).reshape(shape2),
                mask=None if p.mask is None else p.mask.reshape(shape2))
            net = (tuple(layer.shape), shape2[1])
        broken = [f for f in sub.errors if f.code not in EQUIV_CODES]
        if broken:
            raise EieFormatError(f"{target}: layer {p.layer} {p.name!r} cannot be rebuilt for the equivalence "
                                 f"rules ({broken[0].code}: {broken[0].message})", code=broken[0].code)
        for f in sub.findings:
            if f.code not in EQUIV_CODES:
                continue
            if net is None:
                out.append(dataclasses.replace(f, layer=p.layer, layer_name=p.name))
            else:
                out.append(dataclasses.replace(f, layer=p.layer, layer_name=p.name, pe=None, column=None,
                                               message=_net_message(f.message, *net)))
        if net is not None and rb is not None:  # a .net bias is float, outside the codebook: compared here
            got = layer.bias
            m = _zero_sign_bits(rb) != _zero_sign_bits(got)
            if m.any():
                i = int(np.flatnonzero(m)[0])
                out.append(Finding("EQUIV-DENSE-MISMATCH", RULES["EQUIV-DENSE-MISMATCH"].severity,
                                   f"bias[{i}] is stored as {got[i].item()!r}, the reference holds "
                                   f"{rb[i].item()!r}", layer=p.layer, layer_name=p.name, count=int(m.sum())))
    return out


def _stored_layers(report, layers_arg) -> dict[int, object]:
    """Decode the layers of a file that passed the rules (for the equivalence comparison)."""
    if report.kind == "eie":
        from ..format.container import load_network

        return dict(enumerate(load_network(report.source).layers))
    if report.kind == "dump":
        from ..format.eiedump import read_dump

        (lc,) = report.layers
        return {0: read_dump(report.source, n_out=lc.shape[0], n_in=lc.shape[1]).layer}
    if report.kind == "net":
        from ..format.dcnet import read_net

        specs = layers_arg if layers_arg is not None else Path(report.source).parent / "layers.json"
        return dict(enumerate(read_net(report.source, specs).layers))
    raise EieInputError(f"{report.source}: --reference/--mask cannot be used with a {report.kind!r} input")


def _fit_dump(args, report, tensors, masks):
    """A dump does not record n_out (nor, without act.dat, n_in): take them from the reference.

    Returns the (possibly re-run) report and the note to add to a shape error.
    """
    from ..format.validate import validate

    if report.kind != "dump" or len(report.layers) != 1:
        return report, ""
    lc = report.layers[0]
    shape = None
    if tensors is not None:
        w = find_reference_weight(tensors, lc.name, args.reference)
        if w is not None:
            shape = tensors[w].shape
    if shape is None and masks is not None and lc.name in masks:
        shape = masks[lc.name].shape
    if shape is None or len(shape) != 2:
        return report, ""
    R, C = int(shape[0]), int(shape[1])
    note = []
    n_out, n_in = args.n_out, args.n_in
    rerun = False  # validate again, once, with the n_out / n_in taken from the reference
    if n_out is None:
        low = lc.shape[0] if lc.shape is not None else 0
        if R >= low:
            n_out = R
            if lc.shape is None:  # no row inferred: the column count is known only once n_out is given
                report = validate(report.source, "dump", n_out=n_out, n_in=n_in)
                lc = report.layers[0]
            else:
                rerun = n_out != lc.shape[0]
        else:
            note.append(f"the dump records no n_out and its entries decode rows up to {low - 1}")
    # n_pe and the padded column count do not depend on n_out: lc still holds them
    if n_in is None and lc.n_pe and lc.shape is not None:
        if (Path(report.source) / "act.dat").is_file():
            note.append("n_in is the length of act.dat")
        elif -(-C // lc.n_pe) * lc.n_pe != lc.shape[1]:
            note.append(f"the pointer arrays describe {lc.shape[1]} padded columns for N = {lc.n_pe}")
        elif C != lc.shape[1]:
            n_in, rerun = C, True
    if rerun:
        report = validate(report.source, "dump", n_out=n_out, n_in=n_in)
    return report, ("; " + "; ".join(note)) if note else ""


def _equivalence(args, report, tensors, masks):
    """Pair, compare, and add the findings to ``report``; returns the JSON section."""
    report, note = _fit_dump(args, report, tensors, masks)
    pairs, findings = pair_references(
        report.layers, tensors, masks, reference_file=args.reference or "reference",
        mask_file=args.mask or "mask", target=report.source, shape_notes={0: note} if note else None)
    compared = report.level == "full" and not report.errors and all(p.shape is not None for p in pairs)
    if compared and pairs:
        findings = check_equivalence(pairs, _stored_layers(report, args.layers), report.source) + findings
    report.findings.extend(findings)
    section = {"reference": args.reference, "mask": args.mask, "compared": bool(compared),
               "layers": [p.to_dict() for p in pairs]}
    return report, section


def _print_report(report, quiet: bool, equiv=None, strict: bool = False) -> None:
    if not quiet:
        print(f"eiesim validate: {report.source} ({report.kind}"
              + (f" v{report.version}" if report.version else "") + f", {report.level} checks)")
        if report.layers:
            from ..report.text import format_table

            rows = []
            for l in report.layers:
                shape = " x ".join(str(d) for d in l.shape) if l.shape else "?"
                rows.append([str(l.index), l.name, l.kind, shape, "-" if l.n_pe is None else str(l.n_pe),
                             f"{l.stored_entries:,}", f"{l.fillers:,}", f"{l.bias_nonzeros:,}",
                             f"{l.real_nonzeros:,}"])
            print(format_table(["#", "layer", "kind", "shape", "N", "stored entries", "fillers", "bias entries",
                                NONZEROS_HEADER], rows))
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
        from :func:`pair_references` for a paired array of the wrong shape or dtype);
        :func:`eiesim.cli.main` prints the message and exits with code 2.

    Notes
    -----
    With ``--reference`` / ``--mask`` the findings of :func:`pair_references`
    and :func:`check_equivalence` join the report like any other rule's; the
    values are compared only when the file breaks no rule (a broken layout
    cannot be rebuilt), and a dump's unrecorded ``n_out`` (and ``n_in``
    without ``act.dat``) is taken from the reference when it fits.
    """
    from ..format.validate import validate
    from ..workloads.models import load_model

    # the output first, then the reference and masks: a bad one stops before the (possibly long) validation
    beside = None  # a .net stream's default layer list
    if args.layers is None and os.path.isfile(args.path) and not os.fspath(args.path).lower().endswith(".eie"):
        beside = os.path.join(os.path.dirname(os.fspath(args.path)), "layers.json")
    check_command_outputs([("--json", args.json)], [
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
            report, equiv = _equivalence(args, report, tensors, masks)
    except EieError:
        raise  # cli.main prints one line and exits 2
    except (MemoryError, RecursionError, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a library bug must still not dump a traceback on a user's file
        print(f"eiesim: error: {args.path}: cannot be validated ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_UNREADABLE
    _print_report(report, args.quiet, equiv, strict=args.strict)
    if args.json:
        doc = report.to_dict()
        doc["strict"] = bool(args.strict)
        if equiv is not None:
            doc["equivalence"] = equiv
        write_atomic(args.json, json_bytes(doc, error=EieInputError), error=EieInputError)
    return EXIT_OK if report.conformant(strict=args.strict) else EXIT_BROKEN
