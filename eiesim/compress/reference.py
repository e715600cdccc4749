"""Comparing a compressed file with the dense model it came from (``eiesim validate --reference``).

The layers of a validated file are paired **by name** with the arrays of a
reference model (read by :func:`eiesim.workloads.models.load_model`, the
reader of ``eiesim compress``) and with pruning masks, as ``eiesim compress``
names them (:func:`layer_names`): layer ``NAME`` <- weight ``NAME.weight``
(else the one other ``NAME.<x>`` array of 2 or more dimensions, else
``NAME``), bias ``P.bias`` of that weight ``P.<x>``; mask ``NAME``
(:func:`pair_references`). The paired layers are then checked with the
equivalence rules of docs/FORMAT.md §6 (``EQUIV-DENSE-MISMATCH``,
``CODE0-REAL-NONZERO``, ``CODEBOOK-TOO-MANY-VALUES``, ``EQUIV-OUTSIDE-MASK``;
:func:`check_equivalence`); :func:`compare_with_reference` does both on a
:class:`~eiesim.format.validate.ValidationReport`. Unpaired layers and
arrays are findings (``EQUIV-REFERENCE-MISSING``, ``EQUIV-REFERENCE-UNUSED``);
a paired array of the wrong shape or dtype, or a file whose layers do not
have distinct, non-empty names, is an :class:`~eiesim.errors.EieInputError`.
Nothing here prints or exits.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EieFormatError, EieInputError

__all__ = ["EQUIV_CODES", "LayerReference", "layer_names", "paired_bias", "find_reference_weight",
           "pair_references", "check_equivalence", "stored_layers", "fit_dump_shape", "compare_with_reference"]

_LIST_MAX = 8


def layer_names(weight_names):
    """Layer names of the chosen weights: ``<prefix>`` of ``<prefix>.<x>``, unique.

    A weight ``<prefix>.<x>`` names its layer ``<prefix>`` (``fc1.weight`` ->
    ``fc1``); a weight without a dot is named by itself. Where that name
    would be empty (``.weight``) or shared by several layers (``a.weight`` and
    ``a.weight_orig``, or a prefix equal to another layer's name) the layer
    takes its full weight name instead, so every name is unique and
    ``eiesim validate --reference`` pairs each layer with its own array.

    Parameters
    ----------
    weight_names : sequence of str
        Array names of the weights, in layer order (distinct).

    Returns
    -------
    list of str
    """
    names = [w.rsplit(".", 1)[0] if "." in w else w for w in weight_names]
    full = list(weight_names)
    while True:  # terminates: full weight names are distinct
        seen = {}
        for n in names:
            seen[n] = seen.get(n, 0) + 1
        clash = [i for i, n in enumerate(names) if (not n or seen[n] > 1) and n != full[i]]
        if not clash:
            return names
        for i in clash:
            names[i] = full[i]


#: Rules that compare the stored form with ``--reference`` / ``--mask`` (run by :func:`check_equivalence`).
EQUIV_CODES = ("CODEBOOK-TOO-MANY-VALUES", "EQUIV-DENSE-MISMATCH", "CODE0-REAL-NONZERO", "EQUIV-OUTSIDE-MASK")


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


def paired_bias(tensors: dict[str, np.ndarray], weight_name: str, source: str = "model"):
    """The bias array of weight ``weight_name``: ``<prefix>.bias`` of a weight ``<prefix>.<x>``.

    The pairing of ``eiesim compress`` (:func:`eiesim.workloads.models.select_layers`)
    and of ``eiesim validate --reference`` (:func:`pair_references`).

    Parameters
    ----------
    tensors : mapping of str to numpy.ndarray
        As returned by :func:`eiesim.workloads.models.load_model`.
    weight_name : str
        Name of a weight array of ``tensors``, shape ``(n_out, ...)``.
    source : str
        File name used in error messages.

    Returns
    -------
    bias : numpy.ndarray of float, shape (n_out,), or None
    bias_name : str or None
        None (both) when the weight has no dot in its name or no ``<prefix>.bias`` array exists.

    Raises
    ------
    EieInputError
        The ``<prefix>.bias`` array is not float of shape ``(n_out,)``.
    """
    if "." not in weight_name:
        return None, None
    bname = f"{weight_name.rsplit('.', 1)[0]}.bias"
    if bname not in tensors or bname == weight_name:
        return None, None
    w, b = tensors[weight_name], tensors[bname]
    if b.shape != (w.shape[0],) or b.dtype.kind != "f":
        raise EieInputError(f"{source}: bias {bname!r} is {b.dtype} {b.shape}; weight {weight_name!r} needs float "
                            f"({w.shape[0]},)")
    return b, bname


def find_reference_weight(tensors: dict[str, np.ndarray], name: str, source: str = "reference") -> str | None:
    """Name of the reference weight array of layer ``name``, by ``eiesim compress``'s naming.

    ``eiesim compress`` names the layer of weight ``<prefix>.<x>`` ``<prefix>``
    (and of a weight without a dot, or whose prefix would be empty or shared
    by several layers, the weight's full name; see
    :func:`layer_names`). The reverse: the
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
        (:func:`paired_bias`).
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
                m = w if w.ndim == 2 else w.reshape(w.shape[0], -1)  # compared as its (out, prod(rest)) matrix
                if m.dtype.kind != "f":
                    raise EieInputError(f"{reference_file}: {wname!r} is {m.dtype} {m.shape}, not a 2-D float matrix")
                b, bname = paired_bias(tensors, wname, reference_file)
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


def stored_layers(report, layers=None) -> dict[int, object]:
    """Decode the layers of a file that passed the rules, for :func:`check_equivalence`.

    Parameters
    ----------
    report : eiesim.format.validate.ValidationReport
        Of an ``eie`` container, a ``dump`` directory or a ``net`` stream (``source`` is the path).
    layers : str or os.PathLike, optional
        The layer list of a ``.net`` stream (default: ``layers.json`` beside it).

    Returns
    -------
    dict of int to CompressedLayer or DCLayer
        The layers by index.

    Raises
    ------
    EieInputError
        Another kind of input.
    EieFormatError
        The file cannot be decoded.
    """
    if report.kind == "eie":
        from ..format.container import load_network

        return dict(enumerate(load_network(report.source).layers))
    if report.kind == "dump":
        from ..format.eiedump import read_dump

        (lc,) = report.layers
        return {0: read_dump(report.source, n_out=lc.shape[0], n_in=lc.shape[1]).layer}
    if report.kind == "net":
        from ..format.dcnet import read_net

        specs = layers if layers is not None else Path(report.source).parent / "layers.json"
        return dict(enumerate(read_net(report.source, specs).layers))
    raise EieInputError(f"{report.source}: --reference/--mask cannot be used with a {report.kind!r} input")


def _reference_shape(report, tensors, masks, reference_file: str):
    """The 2-D shape of the array paired with a dump's one layer (the reference weight, else its mask)."""
    lc = report.layers[0]
    shape = None
    if tensors is not None:
        w = find_reference_weight(tensors, lc.name, reference_file)
        if w is not None:
            shape = tensors[w].shape
    if shape is None and masks is not None and lc.name in masks:
        shape = masks[lc.name].shape
    return shape if shape is not None and len(shape) == 2 else None


def fit_dump_shape(report, tensors=None, masks=None, *, n_out: int | None = None, n_in: int | None = None,
                   reference_file: str = "reference"):
    """A dump does not record ``n_out`` (nor, without ``act.dat``, ``n_in``): take them from the reference.

    Parameters
    ----------
    report : eiesim.format.validate.ValidationReport
        The validation of the file; anything but a one-layer dump is returned as it is.
    tensors, masks : mapping of str to numpy.ndarray, optional
        As for :func:`pair_references`.
    n_out, n_in : int, optional
        The sizes the user gave (``--n-out`` / ``--n-in``), which win.
    reference_file : str
        File name used in messages.

    Returns
    -------
    report : ValidationReport
        Validated again (once) with the sizes of the reference when they fit and differ.
    note : str
        Why the sizes could not be taken (``"; ..."``), for a shape error; ``""`` when they could.
    """
    from ..format.validate import validate

    if report.kind != "dump" or len(report.layers) != 1:
        return report, ""
    shape = _reference_shape(report, tensors, masks, reference_file)
    if shape is None:
        return report, ""
    lc = report.layers[0]
    R, C = int(shape[0]), int(shape[1])
    note = []
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


def compare_with_reference(report, tensors=None, masks=None, *, reference_file: str | None = None,
                           mask_file: str | None = None, layers=None, n_out: int | None = None,
                           n_in: int | None = None):
    """Pair the layers of a validated file with a reference model and masks, compare, add the findings.

    Parameters
    ----------
    report : eiesim.format.validate.ValidationReport
        From :func:`eiesim.format.validate.validate`; its ``findings`` list is extended.
    tensors : mapping of str to numpy.ndarray, optional
        The reference model (:func:`eiesim.workloads.models.load_model`).
    masks : mapping of str to numpy.ndarray, optional
        Masks keyed by layer name.
    reference_file, mask_file : str, optional
        Their paths (messages; the returned section).
    layers : str or os.PathLike, optional
        The layer list of a ``.net`` stream.
    n_out, n_in : int, optional
        A dump's sizes as the user gave them (:func:`fit_dump_shape`).

    Returns
    -------
    report : ValidationReport
        ``report``, or a dump's report validated again with the reference's sizes, with the
        findings of :func:`pair_references` and :func:`check_equivalence` added (the values are
        compared only when the file breaks no rule: a broken layout cannot be rebuilt).
    section : dict
        ``reference``, ``mask`` (the paths or None), ``compared`` (bool) and ``layers``
        (:meth:`LayerReference.to_dict` of every pairing): the JSON report's ``equivalence``.

    Raises
    ------
    EieInputError
        From :func:`pair_references` (a paired array of the wrong shape or dtype, unpairable names).
    EieFormatError
        A stored layer cannot be decoded.
    """
    report, note = fit_dump_shape(report, tensors, masks, n_out=n_out, n_in=n_in,
                                  reference_file=reference_file or "reference")
    pairs, findings = pair_references(
        report.layers, tensors, masks, reference_file=reference_file or "reference",
        mask_file=mask_file or "mask", target=report.source, shape_notes={0: note} if note else None)
    compared = report.level == "full" and not report.errors and all(p.shape is not None for p in pairs)
    if compared and pairs:
        findings = check_equivalence(pairs, stored_layers(report, layers), report.source) + findings
    report.findings.extend(findings)
    section = {"reference": reference_file, "mask": mask_file, "compared": bool(compared),
               "layers": [p.to_dict() for p in pairs]}
    return report, section
