"""Format-conformance validator: every rule of docs/FORMAT.md, with stable codes.

Three kinds of input are checked rule by rule:

* our container (``.eie``, :mod:`eiesim.format.container`);
* the authors' simulator dump directory (``ptr/``, ``spm/``, ``arithm.dat``,
  ``act.dat``; :mod:`eiesim.format.eiedump`);
* Deep Compression ``.net`` streams with their ``layers.json``
  (:mod:`eiesim.format.dcnet`);

plus in-memory layers (:class:`~eiesim.format.layout.CompressedLayer` or
raw arrays), optionally against the dense quantised matrix they should
encode.

Like scipy.sparse's ``check_format`` the checks are tiered: ``level="cheap"``
runs the O(N + header) rules (sizes, declared metadata, codebook, pointer
ends) -- the same rules every load applies -- and ``level="full"`` adds the
O(nnz) rules (pointer monotonicity, ranges, fillers, positions,
equivalence, Huffman). Unlike a loader, the validator does not stop at the
first broken rule: it reports every rule broken, once per rule and layer,
with the number of places and the first one (layer, PE, column, entry).

Each rule has a stable code and a severity (:data:`RULES`): ``error`` -- the
input is wrong (our readers refuse it or would decode something else) --
or ``warning`` -- it decodes to a well-defined matrix but is not canonical
(or carries something unused). Informational reports (severity ``info``,
:data:`INFO_CODES`: the per-PE and column-slice balance of every sound per-PE
layer, :mod:`eiesim.format.balance`) go to ``ValidationReport.info``, never to
the findings, and never change the verdict. Inputs that cannot be read at all raise
:class:`~eiesim.errors.EieFormatError` (with a code) instead of returning a
report.

Everything per entry is vectorised with NumPy (no Python loop per entry or
column); a 25088 x 4096 layer at 4 % density over 64 PEs validates in well
under 2 s (``scripts/bench_validate.py``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import __version__
from .._io import os_error_message, open_regular_file, read_regular_file, refuse_symlink_loop
from ..errors import EieFormatError
from . import dumprules, netrules
from .balance import INFO_CODES, csc_balance
from .huffman import MAX_CODE_LEN, canonical_codes, kraft_sum
from .huffman import decode as huffman_decode
from .layout import CompressedLayer
from .relindex import _segment_positions
from .rules import (ERROR, FATAL_CODES, RULES, WARNING, CscLayer, Rule, check_codebook, check_csc,
                    check_csc_arrays, check_floats, split_entries)
from .rules import zero_codes as _zero_codes

__all__ = [
    "Rule",
    "RULES",
    "FATAL_CODES",
    "INFO_CODES",
    "Finding",
    "LayerCounts",
    "ValidationReport",
    "validate",
    "validate_container",
    "load_network_validated",
    "validate_dump",
    "validate_net",
    "validate_layer",
    "validate_arrays",
    "detect_format",
]

INFO = "info"
_LEVELS = ("cheap", "full")


# =========================================================================== findings and report
@dataclass(frozen=True)
class Finding:
    """One broken rule in one layer (or file), located at its first occurrence.

    Attributes
    ----------
    code : str
        Rule code (:data:`RULES`), or an informational code (:data:`INFO_CODES`).
    severity : {"error", "warning", "info"}
    message : str
        What is wrong, naming the layer, PE, column, entry or member involved.
    layer : int or None
        Layer index in file order.
    layer_name : str or None
    pe : int or None
        PE of the first occurrence.
    column : int or None
        Column of the first occurrence (in the input's own column numbering;
        for dumps the padded columns come before the bias column).
    entry : int or None
        Entry index of the first occurrence: within its PE (the record of
        ``spm{k}.dat``; for a container, the offset in PE k's part of v/z),
        or in the layer's stream for ``.net``.
    member : str or None
        File or ZIP member concerned.
    count : int
        How many places break the rule in this layer (>= 1).
    data : dict or None
        The numbers of an informational report (JSON-ready); None for a broken rule.
    """

    code: str
    severity: str
    message: str
    layer: Optional[int] = None
    layer_name: Optional[str] = None
    pe: Optional[int] = None
    column: Optional[int] = None
    entry: Optional[int] = None
    member: Optional[str] = None
    count: int = 1
    data: Optional[Dict[str, Any]] = None  # an informational report's numbers (INFO_CODES)

    def location(self) -> Dict[str, Any]:
        """The non-empty location fields as a dict.

        Returns
        -------
        dict of str to int or str
            The fields among ``layer``, ``layer_name``, ``pe``, ``column``,
            ``entry``, ``member`` that are not None.
        """
        loc = {}
        for key in ("layer", "layer_name", "pe", "column", "entry", "member"):
            val = getattr(self, key)
            if val is not None:
                loc[key] = val
        return loc

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form: code, severity, location, count, message.

        Returns
        -------
        dict
            ``code`` (str), ``severity`` (``"error"``, ``"warning"`` or ``"info"``),
            ``location`` (:meth:`location`), ``count`` (int), ``message`` (str); ``data``
            (dict) when present.
        """
        out = {
            "code": self.code,
            "severity": self.severity,
            "location": self.location(),
            "count": int(self.count),
            "message": self.message,
        }
        if self.data is not None:
            out["data"] = self.data
        return out

    def __str__(self) -> str:
        where = []
        if self.layer is not None:
            where.append(f"layer {self.layer}" + (f" {self.layer_name!r}" if self.layer_name else ""))
        if self.member:
            where.append(self.member)
        loc = f" [{', '.join(where)}]" if where else ""
        more = f" ({self.count} places)" if self.count > 1 else ""
        return f"{self.severity} {self.code}{loc}: {self.message}{more}"


@dataclass(frozen=True)
class LayerCounts:
    """Summary counts of one layer (reported whatever the findings).

    Attributes
    ----------
    index : int
    name : str
    shape : tuple of int or None
        ``(n_out, n_in)`` (dump: n_out as given or inferred); tensor shape for ``.net``.
    n_pe : int or None
        N; None for ``.net`` streams (one stream per layer).
    code_bits, index_bits : int or None
    stored_entries : int
        Entries stored, fillers included.
    fillers : int
        Entries with code 0.
    real_nonzeros : int
        Non-zeros of the weight matrix W: entries that decode to a value != 0
        (code >= 1 and codebook[code] != 0.0) outside the bias column. One
        definition in every eiesim report (``inspect``, ``validate``,
        ``simulate``'s weight density, the README): the bias is not a weight.
    empty_pes : int or None
        PEs with no entry (legal).
    bias_nonzeros : int
        Entries with code >= 1 in the bias column (0 without one, or when the
        pointers are too broken to locate it).
    kind : str
        ``"fc"`` or ``"lstm"`` (``.eie`` manifest field ``kind``); ``"conv"`` for a ``.net`` layer
        with a 4-D shape (out, in, kh, kw), held as its out x (in kh kw) matrix; ``"fc"`` otherwise.
    """

    index: int
    name: str
    shape: Optional[Tuple[int, ...]]
    n_pe: Optional[int]
    code_bits: Optional[int]
    index_bits: Optional[int]
    stored_entries: int
    fillers: int
    real_nonzeros: int
    empty_pes: Optional[int] = None
    bias_nonzeros: int = 0
    kind: str = "fc"

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form.

        Returns
        -------
        dict
            The fields; ``shape`` as a list (or None).
        """
        return {
            "index": self.index,
            "name": self.name,
            "shape": list(self.shape) if self.shape is not None else None,
            "n_pe": self.n_pe,
            "code_bits": self.code_bits,
            "index_bits": self.index_bits,
            "stored_entries": int(self.stored_entries),
            "fillers": int(self.fillers),
            "real_nonzeros": int(self.real_nonzeros),
            "bias_nonzeros": int(self.bias_nonzeros),
            "empty_pes": self.empty_pes,
            "kind": self.kind,
        }


@dataclass
class ValidationReport:
    """Result of a validation: findings plus per-layer summary counts.

    Attributes
    ----------
    source : str
        What was validated (path or description).
    kind : {"eie", "dump", "net", "layer"}
    level : {"cheap", "full"}
    findings : list of Finding
        In the order found (file-level first, then layer by layer).
    layers : list of LayerCounts
    version : str or None
        Container version ``"major.minor"`` when ``kind == "eie"``.
    info : list of Finding
        Informational reports (severity ``info``, :data:`INFO_CODES`, e.g.
        ``INFO-BALANCE``); not findings: they never make a report non-conformant.
    """

    source: str
    kind: str
    level: str
    findings: List[Finding] = field(default_factory=list)
    layers: List[LayerCounts] = field(default_factory=list)
    version: Optional[str] = None
    info: List[Finding] = field(default_factory=list)  # severity "info" (INFO_CODES): never a failure

    @property
    def errors(self) -> List[Finding]:
        """Findings of severity ``error``."""
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> List[Finding]:
        """Findings of severity ``warning``."""
        return [f for f in self.findings if f.severity == WARNING]

    def conformant(self, strict: bool = False) -> bool:
        """True when no rule is broken (``strict``: no warning either).

        Parameters
        ----------
        strict : bool, default False
            Also count warnings as failures.

        Returns
        -------
        bool
        """
        return not self.errors and not (strict and self.warnings)

    def codes(self, severity: Optional[str] = None) -> set:
        """Set of the codes found (optionally of one severity).

        Parameters
        ----------
        severity : {"error", "warning"}, optional
            Only findings of this severity; None = all.

        Returns
        -------
        set of str
            Rule codes of the findings.
        """
        return {f.code for f in self.findings if severity is None or f.severity == severity}

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form: source, format, level, conformant, counts, summary, layers, findings.

        Returns
        -------
        dict
            ``eiesim_version``, ``source``, ``format`` (the kind), ``version``,
            ``level``, ``conformant`` / ``conformant_strict`` (bool), ``counts``
            (errors, warnings), ``summary`` (layers, stored entries, fillers, real
            non-zeros summed over layers), ``layers``, ``findings`` and ``info`` (lists of
            dicts; an ``info`` dict adds ``data``, its numbers).
        """
        tot = {
            "layers": len(self.layers),
            "stored_entries": sum(l.stored_entries for l in self.layers),
            "fillers": sum(l.fillers for l in self.layers),
            "real_nonzeros": sum(l.real_nonzeros for l in self.layers),
            "bias_nonzeros": sum(l.bias_nonzeros for l in self.layers),
        }
        return {
            "eiesim_version": __version__,
            "source": self.source,
            "format": self.kind,
            "version": self.version,
            "level": self.level,
            "conformant": self.conformant(),
            "conformant_strict": self.conformant(strict=True),
            "counts": {"errors": len(self.errors), "warnings": len(self.warnings)},
            "summary": tot,
            "layers": [l.to_dict() for l in self.layers],
            "findings": [f.to_dict() for f in self.findings],
            "info": [f.to_dict() for f in self.info],
        }


class _Collector:
    """Collects findings; also serves as the container reader's sink."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        self.layer: Optional[int] = None
        self.layer_name: Optional[str] = None

    def add(self, code: str, message: str, **loc) -> None:
        rule = RULES[code]
        loc.setdefault("layer", self.layer)
        if loc.get("layer") is not None and loc.get("layer") == self.layer:
            loc.setdefault("layer_name", self.layer_name)
        keep = {k: loc.get(k) for k in ("layer", "layer_name", "pe", "column", "entry", "member")}
        for k in ("pe", "column", "entry", "layer"):
            if keep[k] is not None:
                keep[k] = int(keep[k])
        self.report.findings.append(
            Finding(code, rule.severity, message, count=int(loc.get("count", 1)), **keep)
        )

    # sink protocol of eiesim.format.container._Reader
    def error(self, code: str, message: str, **loc) -> None:
        self.add(code, message, **loc)

    def warn(self, code: str, message: str, **loc) -> None:
        self.add(code, message, **loc)


def _check_level(level: str) -> str:
    if level not in _LEVELS:
        raise EieFormatError(f"level: expected 'cheap' or 'full', got {level!r}", code="ARGUMENT")
    return level


def _report_balance(col: _Collector, c: CscLayer, level: str) -> None:
    """INFO-BALANCE (:mod:`eiesim.format.balance`): per-PE and column-slice balance of a layer that
    broke no error rule in the full checks; goes to ``report.info``, never to the findings."""
    if level != "full" or not getattr(c, "entries_complete", True) \
            or any(p is None or p.size != c.ptr_len for p in c.ptrs) \
            or any(f.severity == ERROR and f.layer == c.index for f in col.report.findings):
        return
    try:
        b = csc_balance(np.stack(c.ptrs), c.v, n_in=c.n_in, codebook=getattr(c, "codebook", None))
    except EieFormatError:  # not a layout after all (an error reported outside the layer): nothing to say
        return
    col.report.info.append(Finding("INFO-BALANCE", INFO, b.message(), layer=c.index, layer_name=c.name,
                                   data=b.to_dict()))


def _summary(index, name, shape, n_pe, code_bits, index_bits, v, empty_pes=None, cb=None,
             bias_nonzeros=0) -> LayerCounts:
    fillers = int(np.count_nonzero(v == 0)) if v is not None else 0
    n = int(v.size) if v is not None else 0
    real = n - fillers
    zc = _zero_codes(cb)
    if zc.size and n:  # "non-zeros" means decoded value != 0
        real -= int(np.count_nonzero(np.isin(v, zc)))
    shape = tuple(shape) if shape is not None else None
    kind = "conv" if shape is not None and len(shape) == 4 else "fc"  # a .net layer (out, in, kh, kw)
    return LayerCounts(index, name, shape, n_pe, code_bits, index_bits,
                       n, fillers, real - bias_nonzeros, empty_pes, bias_nonzeros, kind)


def _bias_nonzeros(c: "CscLayer") -> int:
    """Entries of the bias column of ``c`` that decode to a value != 0 (pointers clipped to each PE's entries)."""
    if c.bias_col is None:
        return 0
    zc = _zero_codes(c.codebook)
    total, off = 0, 0
    for k, p in enumerate(c.ptrs):
        n_k = int(c.ent_counts[k]) if k < len(c.ent_counts) else 0
        if p is not None and p.size > c.bias_col + 1:
            a = min(max(int(p[c.bias_col]), 0), n_k)
            b = min(max(int(p[c.bias_col + 1]), a), n_k)
            seg = c.v[off + a: off + b]
            total += int(np.count_nonzero(seg)) - (int(np.count_nonzero(np.isin(seg, zc))) if zc.size else 0)
        off += n_k
    return total


# =========================================================================== in-memory layers
def _ptr_rows(ptr):
    """``ptr`` as one 2-D int64 array, or as a list of 1-D int64 arrays (PEs of different lengths)."""
    if isinstance(ptr, np.ndarray) and ptr.ndim == 2 or not isinstance(ptr, (list, tuple)):
        parr = np.asarray(ptr)
        if parr.ndim != 2 or (parr.size and parr.dtype.kind not in "iu"):
            raise EieFormatError(f"ptr: expected a 2-D integer array or a list of 1-D arrays, got {parr.shape}",
                                 code="ARGUMENT")
        return parr.astype(np.int64)
    rows = []
    for k, p in enumerate(ptr):
        pa = np.asarray(p)
        if pa.ndim != 1 or (pa.size and pa.dtype.kind not in "iu"):
            raise EieFormatError(f"ptr[{k}]: expected a 1-D integer array", code="ARGUMENT")
        rows.append(pa.astype(np.int64))
    return rows


def validate_arrays(shape, n_pe: int, codebook, ptr, v, z, *, has_bias: bool = False, code_bits: int = 4,
                    index_bits: int = 4, pointer_bits: Optional[int] = None, name: str = "",
                    reference=None, reference_bias=None, mask=None, level: str = "full") -> ValidationReport:
    """Validate a per-PE CSC layout given as raw (possibly broken) arrays.

    Parameters
    ----------
    shape : tuple of int
        ``(n_out, n_in)`` of W (bias column excluded).
    n_pe : int
        Number of PEs N (PE k owns rows ``i % N == k``).
    codebook : array_like of float32, shape (2**code_bits,)
    ptr : array_like of int, shape (n_pe, n_cols + 1), or sequence of n_pe 1-D arrays
        Per-PE column pointers (a sequence lets PEs have wrong lengths).
        ``n_cols = n_in + has_bias``.
    v, z : array_like of int, shape (n_entries,)
        Codes and relative indices of all PEs, PE 0 first; PE k's share is
        ``ptr[k][-1]`` entries.
    has_bias : bool, default False
        Column ``n_in`` is the bias column.
    code_bits, index_bits : int, default 4
    pointer_bits : int, optional
        Declared pointer width (checked when given).
    name : str, default ""
    reference : array_like of float, shape (n_out, n_in), optional
        The dense quantised matrix the layout should encode (equivalence rules).
    reference_bias : array_like of float, shape (n_out,), optional
        The quantised bias the bias column should encode.
    mask : array_like of bool, shape (n_out, n_in), optional
        Pruning mask; stored non-zeros must lie inside it.
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport
        ``kind == "layer"``.

    Raises
    ------
    EieFormatError
        If the arguments cannot even be interpreted (non-integer arrays,
        shapes of the wrong rank, a negative size).
    """
    level = _check_level(level)
    report = ValidationReport(source=f"layer {name!r}" if name else "layer", kind="layer", level=level)
    col = _Collector(report)
    col.layer, col.layer_name = 0, name or "layer0"
    try:
        n_out, n_in = (int(s) for s in shape)
        N = int(n_pe)
        if n_out < 1 or n_in < 1 or N < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise EieFormatError(f"shape {shape!r} / n_pe {n_pe!r}: expected positive integers", code="ARGUMENT") from None
    cb = np.asarray(codebook)
    if cb.dtype != np.float32:
        cb = cb.astype(np.float32)
    rows = _ptr_rows(ptr)
    v = np.asarray(v)
    z = np.asarray(z)
    for nm, a in (("v", v), ("z", z)):
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise EieFormatError(f"{nm}: expected a 1-D integer array", code="ARGUMENT")
        if a.size and a.min() < 0:
            raise EieFormatError(f"{nm}: negative value", code="ARGUMENT")
    v = v.astype(np.int64) if v.dtype.kind == "i" else v
    z = z.astype(np.int64) if z.dtype.kind == "i" else z
    c, facts = check_csc_arrays(col, (n_out, n_in), N, cb, rows, v, z, has_bias=has_bias, code_bits=code_bits,
                                index_bits=index_bits, pointer_bits=pointer_bits, name=col.layer_name, level=level)
    if c is None:
        report.layers.append(_summary(0, col.layer_name, (n_out, n_in), N, code_bits, index_bits, v))
        return report
    _report_balance(col, c, level)
    report.layers.append(_summary(0, col.layer_name, (n_out, n_in), N, code_bits, index_bits, v,
                                  facts.get("empty_pes"), cb=cb, bias_nonzeros=_bias_nonzeros(c)))
    if level == "full" and (reference is not None or mask is not None or reference_bias is not None):
        _check_equivalence(col, c, cb, reference, reference_bias, mask)
    return report


def validate_layer(layer: CompressedLayer, *, reference=None, reference_bias=None, mask=None,
                   pointer_bits: Optional[int] = None, level: str = "full") -> ValidationReport:
    """Validate an in-memory :class:`CompressedLayer` (full rule set by default).

    Parameters
    ----------
    layer : CompressedLayer
    reference : array_like of float, shape (n_out, n_in), optional
        Dense quantised weights the layer should encode, compared bit for
        bit (zeros of either sign mean "pruned").
    reference_bias : array_like of float, shape (n_out,), optional
        Quantised bias the bias column should encode.
    mask : array_like of bool, shape (n_out, n_in), optional
        Pruning mask.
    pointer_bits : int, optional
        Pointer width to check against (EIE: 16).
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport

    Raises
    ------
    EieFormatError
        If ``layer`` is not a CompressedLayer or a reference has the wrong shape.
    """
    if not isinstance(layer, CompressedLayer):
        raise EieFormatError(f"validate_layer: expected a CompressedLayer, got {type(layer).__name__}", code="ARGUMENT")
    return validate_arrays(
        layer.shape, layer.n_pe, layer.codebook, layer.ptr, layer.v, layer.z, has_bias=layer.has_bias,
        code_bits=layer.code_bits, index_bits=layer.index_bits, pointer_bits=pointer_bits,
        name=layer.name, reference=reference, reference_bias=reference_bias, mask=mask, level=level,
    )


def _zero_sign_bits(a) -> np.ndarray:
    """Bit patterns of ``a`` as float32, both zeros mapped to +0.0 (the equivalence rules' comparison key).

    Parameters
    ----------
    a : array_like of float
        Any shape; converted to float32.

    Returns
    -------
    numpy.ndarray of uint32, same shape as ``a``
        Equal entries mean "the same stored value, bit for bit", with -0.0
        and +0.0 equal (either sign of zero means "pruned").
    """
    a = np.asarray(a, dtype=np.float32)
    return np.where(a == 0, np.float32(0), a).view(np.uint32)


def _check_equivalence(col: _Collector, c: CscLayer, cb: np.ndarray, reference, reference_bias, mask) -> None:
    """Equivalence rules: rebuild the dense matrix from the stored entries and compare."""
    n_out, n_in, N = c.n_out, c.n_in, c.n_pe
    # the layout must be sound to rebuild; otherwise the other findings explain it
    if any(f.severity == ERROR for f in col.report.findings):
        return
    P = np.stack(c.ptrs).astype(np.int64)
    counts = np.diff(P, axis=1).ravel()
    n_cols = P.shape[1] - 1
    v = c.v.astype(np.int64)
    z = c.z.astype(np.int64)
    lrow = _segment_positions(z, counts)
    pe = np.repeat(np.arange(N, dtype=np.int64), P[:, -1])
    rows = lrow * N + pe
    cols = np.repeat(np.tile(np.arange(n_cols, dtype=np.int64), N), counts)
    keep = rows < n_out  # a trailing filler may decode past the slice (a warning, not an error)
    rows, cols, v = rows[keep], cols[keep], v[keep]
    codes = np.zeros((n_out, n_cols), dtype=np.int64)
    stored = np.zeros((n_out, n_cols), dtype=bool)
    codes[rows, cols] = v
    stored[rows, cols] = True
    rebuilt = cb[codes]  # float32 (n_out, n_cols)

    if reference is not None:
        ref = np.asarray(reference)
        if ref.shape != (n_out, n_in):
            raise EieFormatError(f"reference: expected shape ({n_out}, {n_in}), got {ref.shape}", code="ARGUMENT")
        ref = ref.astype(np.float32)
        distinct = np.unique(_zero_sign_bits(ref))
        if distinct.size > 1 << c.code_bits:
            col.add("CODEBOOK-TOO-MANY-VALUES", f"the reference holds {distinct.size} distinct values (zero "
                    f"included); a {c.code_bits}-bit codebook has {1 << c.code_bits}", count=int(distinct.size))
        refb = _zero_sign_bits(ref)
        got = _zero_sign_bits(rebuilt[:, :n_in])
        diff = refb != got
        if diff.any() and distinct.size <= 1 << c.code_bits:  # else the mismatch is implied
            code0 = diff & stored[:, :n_in] & (codes[:, :n_in] == 0) & (ref != 0)
            rest = diff & ~code0
            for code, m, text in (
                ("CODE0-REAL-NONZERO", code0, "holds {r!r} in the reference but is stored as a code-0 entry"),
                ("EQUIV-DENSE-MISMATCH", rest, "rebuilds to {g!r}, the reference holds {r!r}"),
            ):
                if m.any():
                    i, j = (int(x) for x in np.argwhere(m)[0])
                    col.add(code, f"W[{i}, {j}] (PE {i % N}, column {j}, local row {i // N}) "
                            + text.format(r=ref[i, j].item(), g=rebuilt[i, j].item()),
                            pe=i % N, column=j, count=int(m.sum()))
    if reference_bias is not None:
        rb = np.asarray(reference_bias).astype(np.float32)
        if rb.shape != (n_out,):
            raise EieFormatError(f"reference_bias: expected shape ({n_out},), got {rb.shape}", code="ARGUMENT")
        got = rebuilt[:, n_in] if c.bias_col is not None else np.zeros(n_out, np.float32)
        m = _zero_sign_bits(rb) != _zero_sign_bits(got)
        if m.any():
            i = int(np.flatnonzero(m)[0])
            col.add("EQUIV-DENSE-MISMATCH", f"bias[{i}] rebuilds to {got[i].item()!r}, the reference holds "
                    f"{rb[i].item()!r}", pe=i % N, column=n_in, count=int(m.sum()))
    if mask is not None:
        mk = np.asarray(mask)
        if mk.shape != (n_out, n_in):
            raise EieFormatError(f"mask: expected shape ({n_out}, {n_in}), got {mk.shape}", code="ARGUMENT")
        out = (rebuilt[:, :n_in] != 0) & ~mk.astype(bool)
        if out.any():
            i, j = (int(x) for x in np.argwhere(out)[0])
            col.add("EQUIV-OUTSIDE-MASK", f"W[{i}, {j}] = {rebuilt[i, j].item()!r} is stored but the pruning "
                    "mask removes it", pe=i % N, column=j, count=int(out.sum()))


# =========================================================================== container
def validate_container(path, *, level: str = "full") -> ValidationReport:
    """Validate a ``.eie`` container file.

    Parameters
    ----------
    path : str or os.PathLike
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport
        ``kind == "eie"``; ``version`` is the file's ``"major.minor"``.

    Raises
    ------
    EieFormatError
        With code ``CONTAINER-UNREADABLE`` (missing, not a ZIP archive, no
        readable manifest), ``CONTAINER-VERSION`` (other format, newer major
        version) or ``CONTAINER-SIZE-ABSURD`` (too many members/layers):
        nothing can be checked.
    """
    report, col, parsed = _parse_container(path, _check_level(level))
    _check_container_layers(col, parsed, report)
    return report


def load_network_validated(path):
    """Load a ``.eie`` container as :func:`~eiesim.format.container.load_network` does and validate it
    fully, from one read and one parse of the file.

    What ``load_network(path)`` followed by ``validate_container(path, level="full")`` gives, without
    reading and parsing the file twice (issue 11: ``eiesim simulate`` warns about the errors the full
    validator finds in a container that loads).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    network : eiesim.format.network.Network
        As :func:`~eiesim.format.container.load_network` (``check="cheap"``) returns it.
    report : ValidationReport
        As :func:`validate_container` with ``level="full"`` returns it.

    Raises
    ------
    EieFormatError
        Whatever :func:`~eiesim.format.container.load_network` raises, with the same message and code.
    """
    from .container import _container_from, load_network

    report, col, parsed = _parse_container(path, "full")
    if report.errors:  # the loader stops at the first of them: let it say so, in its own words
        network = load_network(path)
    else:  # no error while parsing: the loader's parse (raising on errors only) is this one
        network = _container_from(parsed, os.fspath(path), "cheap").network
    _check_container_layers(col, parsed, report)
    return network, report


def _parse_container(path, level: str):
    """``(report, collector, parsed)``: a container read and parsed once, archive and manifest findings
    collected (``CONTAINER-*`` fatal problems raise)."""
    from .container import _Reader

    path = os.fspath(path)
    report = ValidationReport(source=path, kind="eie", level=level)
    col = _Collector(report)
    parsed = _Reader(path, sink=col).parse()
    report.version = f"{parsed.version[0]}.{parsed.version[1]}"
    return report, col, parsed


def _check_container_layers(col: _Collector, parsed, report: ValidationReport) -> None:
    """Every layer's rules at ``report.level`` into ``report`` (:func:`validate_container` after parsing)."""
    level = report.level
    fp = parsed.fixed_point
    for raw in parsed.layers:
        col.layer, col.layer_name = raw.index, raw.name
        _validate_container_layer(col, raw, fp, level, report)
    kinds = {raw.index: raw.kind for raw in parsed.layers}
    for lc in report.layers:
        object.__setattr__(lc, "kind", kinds.get(lc.index, "fc"))  # frozen: set once, here
    col.layer = col.layer_name = None


def _validate_container_layer(col: _Collector, raw, fixed_point, level: str, report: ValidationReport) -> None:
    i = raw.index
    if raw.codebook is not None:
        check_codebook(col, raw.codebook, raw.code_bits, level, size_checked=True)
        if fixed_point is not None and level == "full":
            tb, wf = fixed_point["total_bits"], fixed_point["weight_frac_bits"]
            lim = ((1 << (tb - 1)) - 1) / float(1 << wf)
            lo = -float(1 << (tb - 1)) / float(1 << wf)
            fin = raw.codebook[np.isfinite(raw.codebook)].astype(np.float64)
            out = np.flatnonzero((fin > lim) | (fin < lo))
            if out.size:
                col.add("FIXED-RANGE", f"codebook value {fin[out[0]]!r} is outside the Q format of the weights "
                        f"({tb} bits, {wf} fraction bits: [{lo}, {lim}])", count=out.size)
    # ---- entries from their representations
    v = z = None
    if raw.v is not None:
        v, z = raw.v, raw.z
    if raw.packed is not None and raw.index_bits is not None:
        pv = raw.packed >> np.uint8(raw.index_bits)
        pz = raw.packed & np.uint8((1 << raw.index_bits) - 1)
        if v is None:
            v, z = pv, pz
        elif level == "full":
            if pv.size != v.size:
                col.add("PACKED-MISMATCH", f"packed image holds {pv.size} entries, v/z hold {v.size}")
            else:
                bad = np.flatnonzero((pv != v) | (pz != z))
                if bad.size:
                    e = int(bad[0])
                    col.add("PACKED-MISMATCH", f"packed entry {e} = 0x{int(raw.packed[e]):02x} decodes to "
                            f"(v={int(pv[e])}, z={int(pz[e])}), v/z hold ({int(v[e])}, {int(z[e])})",
                            entry=e, count=bad.size)
    if raw.huffman is not None and (level == "full" or v is None):
        primary = {"v": v, "z": z} if v is not None else None
        dec = {}
        for sym in ("v", "z"):
            stream = raw.huffman[sym]
            if not _check_huffman(col, stream, sym):
                continue
            ref = primary[sym] if primary is not None else None
            if ref is not None and _huffman_matches(stream, ref):
                continue  # the payload is exactly the stored entries under the stored prefix code
            try:
                d = huffman_decode(stream)
            except EieFormatError as exc:
                col.add("HUFFMAN-DECODE", f"Huffman stream {sym!r}: {exc}")
                continue
            if ref is None:
                dec[sym] = d
                continue
            bad = np.flatnonzero(d != ref) if d.size == ref.size else np.array([min(d.size, ref.size)])
            if bad.size:
                e = int(bad[0])
                col.add("HUFFMAN-MISMATCH", f"decoded Huffman stream {sym!r} differs from the stored {sym} at "
                        f"entry {e}", entry=e, count=bad.size)
        if v is None and len(dec) == 2 and dec["v"].size == dec["z"].size:
            v, z = dec["v"].astype(np.uint8), dec["z"].astype(np.uint8)
    # ---- declared counts
    if v is not None and level == "full":
        f = int(np.count_nonzero(v == 0))
        got = {"n_entries": int(v.size), "n_fillers": f, "n_nonzeros": int(v.size) - f}
        for key, val in raw.declared.items():
            if got[key] != val:
                col.add("META-INCONSISTENT", f"manifest declares {key} = {val}, the arrays hold {got[key]}")
    elif v is not None and "n_entries" in raw.declared and raw.declared["n_entries"] != v.size:
        col.add("META-INCONSISTENT", f"manifest declares n_entries = {raw.declared['n_entries']}, the arrays "
                f"hold {v.size}")
    # ---- per-PE CSC
    empty = None
    bias_nz = 0
    if (raw.ptr is not None and raw.ptr_shape_ok and v is not None and raw.shape is not None
            and raw.n_pe is not None and raw.has_bias is not None and raw.code_bits is not None
            and raw.index_bits is not None):
        rows = raw.ptr.astype(np.int64)
        if rows.shape[0] != raw.n_pe:
            rows = list(rows)
        cnt, extra = split_entries(rows, v.size)
        c = CscLayer(index=i, name=raw.name, n_pe=raw.n_pe, n_out=raw.shape[0], n_in=raw.shape[1],
                 code_bits=raw.code_bits, index_bits=raw.index_bits, ptrs=rows, v=v, z=z, ent_counts=cnt,
                 ptr_len=raw.n_cols + 1, bias_col=raw.shape[1] if raw.has_bias else None,
                 pointer_bits=raw.pointer_bits, extra_entries=extra, codebook=raw.codebook)
        empty = check_csc(col, c, level).get("empty_pes")
        _report_balance(col, c, level)
        bias_nz = _bias_nonzeros(c)
    report.layers.append(_summary(i, raw.name, raw.shape, raw.n_pe, raw.code_bits, raw.index_bits,
                                  v if v is not None else np.zeros(0, np.uint8), empty, cb=raw.codebook,
                                  bias_nonzeros=bias_nz))


def _check_huffman(col: _Collector, stream, sym: str) -> bool:
    """Table and framing rules of one Huffman stream; True when they all hold."""
    what = f"Huffman stream {sym!r}"
    lens = np.asarray(stream.code_lengths, dtype=np.int64)
    ok = True
    if lens.size and lens.max() > MAX_CODE_LEN:
        s = int(np.argmax(lens > MAX_CODE_LEN))
        col.add("HUFFMAN-LENGTHS", f"{what}: code length of symbol {s} is {int(lens[s])} > {MAX_CODE_LEN} bits")
        ok = False
    if stream.n_symbols and not np.any(lens):
        col.add("HUFFMAN-LENGTHS", f"{what}: {stream.n_symbols} symbols declared but the code table is empty")
        ok = False
    ks = kraft_sum(lens)
    if ks > 1:
        col.add("HUFFMAN-KRAFT", f"{what}: Kraft sum of the code lengths is {ks} = {float(ks):.4f} > 1 "
                "(no prefix code has these lengths)")
        ok = False
    need = (stream.n_bits + 7) // 8
    have = len(stream.payload)
    if have < need:
        col.add("STREAM-TRUNCATED", f"{what}: payload holds {have} bytes, n_bits = {stream.n_bits} needs {need}")
        ok = False
    elif have > need:
        col.add("HUFFMAN-PAD", f"{what}: payload holds {have} bytes, n_bits = {stream.n_bits} needs {need} "
                f"({8 * have - stream.n_bits} pad bits; fewer than 8 allowed)")
        ok = False
    elif stream.n_bits % 8 and stream.payload[-1] & ((1 << (8 - stream.n_bits % 8)) - 1):
        col.add("HUFFMAN-PAD", f"{what}: the {8 - stream.n_bits % 8} pad bits of the last byte are not zero")
        ok = False
    return ok


_MATCH_CHUNK = 1 << 20


def _huffman_matches(stream, symbols: np.ndarray) -> bool:
    """True when ``stream`` is exactly ``symbols`` coded with its own (canonical, prefix) table.

    Every code word is compared in place: symbol i's code word must sit at bit
    offset ``sum(len[s_0..s_{i-1}])`` and the lengths must add up to
    ``n_bits``. With a Kraft sum <= 1 (checked before) the canonical code is a
    prefix code, so the payload then decodes to exactly these symbols -- the
    same verdict as decoding, at the cost of one gather per symbol instead of
    a search per bit.
    """
    lens = np.asarray(stream.code_lengths, dtype=np.int64)
    sym = np.asarray(symbols).astype(np.int64)
    if sym.size != stream.n_symbols:
        return False
    if sym.size == 0:
        return stream.n_bits == 0
    if int(sym.max()) >= lens.size:
        return False
    lsym = lens[sym]
    if not lsym.all() or int(lsym.sum()) != stream.n_bits:
        return False
    codes = canonical_codes(lens)
    buf = np.frombuffer(stream.payload + bytes(8), dtype=np.uint8)
    offs = np.cumsum(lsym) - lsym
    for a in range(0, sym.size, _MATCH_CHUNK):
        o = offs[a:a + _MATCH_CHUNK]
        l = lsym[a:a + _MATCH_CHUNK]
        b0, b1 = int(o[0] >> 3), int(o[-1] >> 3)
        win = np.lib.stride_tricks.sliding_window_view(buf[b0:b1 + 8], 8)
        words = np.ascontiguousarray(win).view(">u8").ravel().astype(np.uint64)
        x = words[(o >> 3) - b0] << (o & 7).astype(np.uint64)
        x >>= (64 - l).astype(np.uint64)
        if not np.array_equal(x, codes[sym[a:a + _MATCH_CHUNK]]):
            return False
    return True


# =========================================================================== dump directory
def validate_dump(path, *, n_out: Optional[int] = None, n_in: Optional[int] = None,
                  level: str = "full") -> ValidationReport:
    """Validate the authors' simulator dump directory (docs/FORMAT.md §2).

    Parameters
    ----------
    path : str or os.PathLike
        The dump directory (``ptr/ptr{k}.dat``, ``spm/spm{k}.dat``,
        ``arithm.dat``, optional ``act.dat``).
    n_out : int, optional
        Output rows. Without it rows past a PE's slice cannot be seen; n_out
        is inferred from the largest decoded row (as :func:`read_dump` does)
        and the global-row rule relies on its statistical test.
    n_in : int, optional
        Input columns. Default: the length of ``act.dat``, else the padded
        column count of the pointer arrays.
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport
        ``kind == "dump"``, one layer (code and index bits 4, pointers 32 bits).

    Raises
    ------
    EieFormatError
        With code ``DUMP-UNREADABLE`` when the directory, its ``ptr/`` folder
        or every ``ptr{k}.dat`` file is missing, or the path is a file.
    EieInputError
        If ``n_out`` or ``n_in`` is not an integer in ``1..MAX_DIM``
        (:data:`eiesim.format.container.MAX_DIM`).

    Notes
    -----
    The layer is named after the directory, resolved first (``.`` names the
    current directory).
    """
    level = _check_level(level)
    from .eiedump import _check_dim

    n_out = _check_dim(n_out, "n_out")
    n_in = _check_dim(n_in, "n_in")
    root = Path(path)
    report = ValidationReport(source=str(root), kind="dump", level=level)
    col = _Collector(report)
    name = dumprules.dump_layer_name(root)
    col.layer, col.layer_name = 0, name
    files = dumprules.find_dump_files(col, root)  # DUMP-UNREADABLE (not a dump) raises
    cb = dumprules.read_codebook(col, root, level)
    act = dumprules.read_activations(col, root)
    if act is not None:
        check_floats(col, act, "act.dat", member="act.dat")
    pes = dumprules.read_pes(col, files)
    N = files.n_pe
    cols = dumprules.dump_columns(col, pes.lengths, N, act, n_in)
    if cols is None:
        report.layers.append(_summary(0, name, None, N, 4, 4, pes.v))
        return report
    n_in, padded, pad_from_act = cols
    c = dumprules.dump_csc(name, pes, N, n_in, padded, n_out=n_out, codebook=cb, pad_from_act=pad_from_act)
    facts = check_csc(col, c, level)
    _report_balance(col, c, level)
    shape_out = n_out if n_out is not None else facts.get("n_out_inferred")
    report.layers.append(_summary(0, name, (shape_out, n_in) if shape_out else None, N, 4, 4, pes.v,
                                  facts.get("empty_pes"), cb=cb, bias_nonzeros=_bias_nonzeros(c)))
    return report


# =========================================================================== .net stream
def validate_net(path, layers, *, level: str = "full") -> ValidationReport:
    """Validate a Deep Compression ``.net`` stream (docs/FORMAT.md §1).

    Parameters
    ----------
    path : str or os.PathLike
        The stream file.
    layers : str or os.PathLike or sequence of LayerSpec
        ``layers.json`` (names, shapes, bit widths in file order) or the specs.
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport
        ``kind == "net"``; one :class:`LayerCounts` per layer that could be located.

    Raises
    ------
    EieFormatError
        With code ``NET-UNREADABLE`` when the file is missing or the layer
        list cannot be read.
    """
    from . import dcnet

    level = _check_level(level)
    path = os.fspath(path)
    try:
        if isinstance(layers, (str, os.PathLike)):
            specs = dcnet.load_layer_specs(layers)
        else:
            specs = tuple(layers)
            if not specs or not all(isinstance(s, dcnet.LayerSpec) for s in specs):
                raise EieFormatError("expected a non-empty sequence of LayerSpec or a layers.json path",
                                     code="NET-UNREADABLE")
    except EieFormatError as exc:
        raise EieFormatError(f"layer list: {exc}", code="NET-UNREADABLE") from None
    data = read_regular_file(path, None, error=functools.partial(EieFormatError, code="NET-UNREADABLE"),
                             what="Deep Compression .net stream")
    report = ValidationReport(source=path, kind="net", level=level)
    col = _Collector(report)

    # The reader decides what is readable; on refusal the byte walk below pinpoints the rule.
    refusal = None
    try:
        net = dcnet.parse_net(data, specs, strict=False, source=path)
        located = [(l.spec, l.codebook, l.bias, l.codes, l.z, l.pad_nibbles) for l in net.layers]
    except EieFormatError as exc:
        refusal = exc
        located = _walk_net(col, data, specs)
    for i, (spec, cb, bias, codes, z, pads) in enumerate(located):
        col.layer, col.layer_name = i, spec.name
        netrules.check_net_layer(col, spec, cb, bias, codes, z, pads, level)
        report.layers.append(_summary(i, spec.name, spec.shape, None, spec.code_bits, spec.index_bits, codes,
                                      cb=cb))
    col.layer = col.layer_name = None
    if refusal is not None and not report.errors:
        # the reader refused something no rule above names: never call such a stream conformant
        raise EieFormatError(f"{refusal}", code="NET-UNREADABLE")
    return report


def _walk_net(col: _Collector, data: bytes, specs) -> list:
    """Locate the layers of a stream the reader refused; report size rules; return the readable ones."""
    from .dcnet import _layer_body

    if not netrules.check_header(col, len(data), len(specs)):
        return []
    header = np.frombuffer(data[: 4 * len(specs)], dtype="<u4").astype(np.int64)
    spans, _ = netrules.plan_layers(col, specs, header, len(data))
    out = []
    for spec, (off, n) in zip(specs, spans):
        cb, bias, codes, z, pads = _layer_body(data, off, spec, n)
        out.append((spec, cb.astype(np.float32), bias.astype(np.float32), codes, z, pads))
    return out


# =========================================================================== dispatch
def detect_format(path, layers=None) -> str:
    """Guess the kind of input: ``"dump"``, ``"eie"`` or ``"net"``.

    A directory with a ``ptr/`` folder is a dump; a directory holding one
    ``*.net`` file (and a ``layers.json``) is a ``.net`` stream; a file that
    starts with a ZIP local header is a container; any other file is a
    ``.net`` stream when a layer list is given or lies beside it.

    Parameters
    ----------
    path : str or os.PathLike
        File or directory to classify.
    layers : str or os.PathLike or sequence of LayerSpec, optional
        Layer list of a ``.net`` stream; when given, a non-ZIP file is taken
        as a ``.net`` stream.

    Returns
    -------
    str
        ``"dump"``, ``"eie"`` or ``"net"``.

    Raises
    ------
    EieFormatError
        With a ``*-UNREADABLE`` code when nothing fits.
    """
    p = Path(path)
    refuse_symlink_loop(p, error=functools.partial(EieFormatError, code="CONTAINER-UNREADABLE"))
    if p.is_dir():
        if (p / "ptr").is_dir():
            return "dump"
        nets = sorted(p.glob("*.net"))
        if len(nets) == 1:
            return "net"
        raise EieFormatError(f"{p}: a directory that is neither a dump (no ptr/) nor holds one .net file",
                             code="DUMP-UNREADABLE")
    if not p.exists():
        raise EieFormatError(f"{p}: no such file or directory", code="CONTAINER-UNREADABLE")
    # os.stat before open: a FIFO would block, a device never end
    unreadable = functools.partial(EieFormatError, code="CONTAINER-UNREADABLE")
    with open_regular_file(p, error=unreadable, what="container, .net stream or dump directory") as fh:
        try:
            head = fh.read(4)
        except OSError as exc:
            raise unreadable(os_error_message(p, exc)) from None
    if head == b"PK\x03\x04" or p.suffix == ".eie":
        return "eie"
    if layers is not None or p.suffix == ".net" or (p.parent / "layers.json").is_file():
        return "net"
    raise EieFormatError(f"{p}: not a ZIP container and no layer list for a .net stream (give --format/--layers)",
                         code="CONTAINER-UNREADABLE")


def validate(path, fmt: Optional[str] = None, *, layers=None, n_out: Optional[int] = None,
             n_in: Optional[int] = None, level: str = "full") -> ValidationReport:
    """Validate any supported input (container, dump directory, ``.net`` stream).

    Parameters
    ----------
    path : str or os.PathLike
    fmt : {"eie", "dump", "net"}, optional
        Default: :func:`detect_format`.
    layers : str or os.PathLike or sequence of LayerSpec, optional
        Layer list of a ``.net`` stream; default ``layers.json`` beside the
        file (or inside the directory).
    n_out, n_in : int, optional
        Matrix size of a dump (see :func:`validate_dump`).
    level : {"cheap", "full"}, default "full"

    Returns
    -------
    ValidationReport

    Raises
    ------
    EieFormatError
        When the input cannot be read at all (code in :data:`FATAL_CODES`).
    """
    if fmt is None:
        fmt = detect_format(path, layers)
    if fmt == "eie":
        return validate_container(path, level=level)
    if fmt == "dump":
        return validate_dump(path, n_out=n_out, n_in=n_in, level=level)
    if fmt == "net":
        p = Path(path)
        if p.is_dir():
            nets = sorted(p.glob("*.net"))
            if len(nets) != 1:
                raise EieFormatError(f"{p}: holds {len(nets)} .net files, expected one", code="NET-UNREADABLE")
            p = nets[0]
        if layers is None:
            layers = p.parent / "layers.json"
            if not layers.is_file():
                raise EieFormatError(f"{p}: a .net stream needs its layer list (--layers layers.json)",
                                     code="NET-UNREADABLE")
        return validate_net(p, layers, level=level)
    raise EieFormatError(f"format {fmt!r}: expected 'eie', 'dump' or 'net'", code="ARGUMENT")
