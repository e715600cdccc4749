"""Reading a results JSON, shared by ``eiesim energy`` and ``eiesim plot``, checked against its schema.

A results file may come from anywhere, so before any field is used it is
checked against the schema of what the command reads (:data:`ENERGY_SCHEMA`
for ``eiesim energy``, :func:`check_plot_results` for ``eiesim plot``):
types, ranges and required fields, each failure one line naming the field
(``layers[1].counters.entries: expected an integer >= 0, got 'abc'``).
"""

from __future__ import annotations

import json
import math

from .._io import decode_error_text, read_regular_file
from ..energy.model import _REQUIRED_COUNTERS
from ..errors import EieInputError

#: Largest results JSON read (bytes).
MAX_RESULTS_BYTES = 1 << 28


def load_results_json(path) -> dict:
    """Read the JSON object of saved results (``eiesim simulate --json`` and the like).

    Parameters
    ----------
    path : str or os.PathLike
        The results file (UTF-8 JSON whose top level is an object).

    Returns
    -------
    dict
        The decoded document.

    Raises
    ------
    EieInputError
        If the file does not exist, is not a regular file (a FIFO is refused
        before it is opened), is larger than :data:`MAX_RESULTS_BYTES`, cannot
        be read or decoded, nests deeper than Python's recursion limit (a
        ``RecursionError`` inside :func:`json.loads`), holds ``NaN`` or
        ``Infinity`` (not JSON), or does not hold a JSON object.
    """
    raw = read_regular_file(path, MAX_RESULTS_BYTES, error=EieInputError, what="results JSON")

    def _no_constants(name):
        raise ValueError(f"{name} is not JSON")

    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise EieInputError(f"{path}: cannot read results JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise EieInputError(f"{path}: cannot read results JSON ({decode_error_text(exc)})") from None
    if not isinstance(doc, dict):
        raise EieInputError(f"{path}: expected a JSON object")
    return doc


# --------------------------------------------------------------------------- schema
class _Bad(Exception):
    """A schema violation: ``(field, rule, value)``."""


def _show(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        text = repr(value)  # nan / inf: a message, never a JSON value
    elif isinstance(value, (str, int, float, bool, type(None))):
        text = json.dumps(value, allow_nan=False)
    else:
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: Largest integer a results file may hold (2**53: every count converts to float64 exactly, and sums
#: of up to 1,024 of them stay within int64). The simulator's counts are far below it.
MAX_COUNT = 1 << 53


def Int(lo: int = 0):
    """An integer (never a boolean) in ``[lo, MAX_COUNT]``."""
    def check(v, where):
        if not _is_int(v) or v < lo:
            raise _Bad(where, f"expected an integer >= {lo}", v)
        if v > MAX_COUNT:
            raise _Bad(where, f"expected an integer <= 2**53 ({MAX_COUNT})", v)
    return check


def _finite(v) -> bool:
    """``math.isfinite`` that is False, not OverflowError, for an integer past the float64 range."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def Num(lo: float = 0.0, *, strict: bool = False):
    """A finite number (never a boolean; an integer within the float64 range) of at least ``lo``
    (above it when ``strict``)."""
    def check(v, where):
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)
              and (v > lo if strict else v >= lo))
        if not ok:
            raise _Bad(where, f"expected a finite number {'>' if strict else '>='} {lo:g}", v)
    return check


def Str():
    """A string."""
    def check(v, where):
        if not isinstance(v, str):
            raise _Bad(where, "expected a string", v)
    return check


def Opt(spec):
    """``spec`` or null."""
    def check(v, where):
        if v is not None:
            spec(v, where)
    return check


def List(item, min_len: int = 0, length=None):
    """A list of ``item`` (at least ``min_len`` long, or exactly ``length``)."""
    def check(v, where):
        if not isinstance(v, list):
            raise _Bad(where, "expected a list", v)
        if length is not None and len(v) != length:
            raise _Bad(where, f"expected a list of {length} items", v)
        if len(v) < min_len:
            raise _Bad(where, f"expected a list of at least {min_len} item(s)", v)
        for i, x in enumerate(v):
            item(x, f"{where}[{i}]")
    return check


def Obj(required=None, optional=None, values=None):
    """An object: ``required`` and ``optional`` fields (name -> spec); other fields checked by ``values``."""
    required, optional = required or {}, optional or {}

    def check(v, where):
        if not isinstance(v, dict):
            raise _Bad(where, "expected an object", v)
        for name, spec in required.items():  # in the schema's order: presence, then value
            if name not in v:
                raise _Bad(f"{where}.{name}" if where else name, "required field is missing", None)
            spec(v[name], f"{where}.{name}" if where else name)
        for name, x in v.items():
            spec = None if name in required else optional.get(name) or values
            if spec is not None:
                spec(x, f"{where}.{name}" if where else name)
    return check


def check_schema(doc, schema, path) -> None:
    """Check ``doc`` against ``schema`` (one of the specs of this module).

    Raises
    ------
    EieInputError
        ``<path>: field <where>: <rule>, got <value>`` for the first violation.
    """
    try:
        schema(doc, "")
    except _Bad as bad:
        where, rule, value = bad.args
        got = "" if rule == "required field is missing" else f", got {_show(value)}"
        raise EieInputError(f"{path}: field {where or '<document>'}: {rule}{got}") from None


#: Counters every priced layer needs (those :class:`eiesim.energy.model.RunActivity` requires).
REQUIRED_COUNTERS = _REQUIRED_COUNTERS

_RUN_FIELDS = {"n_pe": Int(1), "clock_hz": Num(0, strict=True), "spmat_line_bits": Int(1), "n_inputs": Int(1)}

#: What ``eiesim energy`` reads of a ``eiesim simulate --json`` document: the layers
#: with ``counters`` (counts >= 0, the six of :data:`REQUIRED_COUNTERS` present) and
#: ``cycles``; ``n_pe``, ``clock_hz``, ``spmat_line_bits``, ``n_inputs`` in range; an
#: optional ``shape`` of two positive sizes; the same run fields in ``config``.
ENERGY_SCHEMA = Obj(
    required={"layers": List(Obj(optional={
        "counters": Obj(required={c: Int(0) for c in REQUIRED_COUNTERS}, values=Int(0)),
        "cycles": Int(0), "name": Str(), "shape": Opt(List(Int(1), length=2)), **_RUN_FIELDS}), min_len=1)},
    optional={"config": Opt(Obj(optional=_RUN_FIELDS))},
)

_BREAKDOWN = Obj(required={"by_module_pj": Obj(values=Num()), "by_kind_pj": Obj(values=Num())},
                 optional={"n_inputs": Int(1), "total_pj": Num()})
_PRICED = Obj(required={"name": Str()}, optional={"activity": _BREAKDOWN, "paper": _BREAKDOWN})
_PLATFORMS = ("cpu_dense", "cpu_sparse", "gpu_dense", "gpu_sparse", "mgpu_dense", "mgpu_sparse")
_RATIOS = Obj(required={k: Num(0, strict=True) for k in _PLATFORMS})


def check_energy_results(doc: dict, path) -> None:
    """Check what ``eiesim energy`` reads (:data:`ENERGY_SCHEMA`); layers with counters need cycles.

    Raises
    ------
    EieInputError
        One line naming the field and the rule.
    """
    check_schema(doc, ENERGY_SCHEMA, path)
    for i, layer in enumerate(doc["layers"]):
        if "counters" in layer and "cycles" not in layer:
            raise EieInputError(f"{path}: field layers[{i}].cycles: required field is missing (the layer has counters)")


def check_plot_results(doc: dict, path) -> None:
    """Check what ``eiesim plot`` reads, before any figure is drawn.

    The energy breakdown (``energy.layers`` or ``layers[*].energy``: ``name``,
    ``activity``/``paper`` with ``by_module_pj`` and ``by_kind_pj`` of energies
    >= 0 pJ, ``n_inputs`` >= 1) and, for a reproduction JSON (layers with
    ``speedup``), the ratio, timing and platform fields of the three figures.

    Raises
    ------
    EieInputError
        One line naming the field and the rule.
    """
    check_schema(doc, Obj(optional={
        "energy": Obj(optional={"layers": List(_PRICED)}),
        "layers": List(Obj(optional={"name": Str(), "energy": _PRICED})),
        "layer_order": List(Str()),
    }), path)
    layers = doc.get("layers") or []
    for i, layer in enumerate(layers):
        if "energy" in layer and "name" not in layer:
            raise EieInputError(f"{path}: field layers[{i}].name: required field is missing")
    if layers and "speedup" in layers[0] and "geomean" in doc:
        check_schema(doc, Obj(required={
            "layers": List(Obj(required={
                "name": Str(), "speedup": _RATIOS, "energy_ratio": _RATIOS, "ops": Num(0, strict=True),
                "sim_time_us": Num(0, strict=True), "baselines_us": _RATIOS,
                "energy": Obj(required={"paper": Obj(required={"total_pj": Num(0, strict=True)})}),
            })),
            "geomean": Obj(required={"synthetic": Obj(required={"speedup": _RATIOS, "energy_ratio": _RATIOS})}),
            "platforms": Obj(required={p: Obj(required={"power_w": Num(0, strict=True)}) for p in ("cpu", "gpu", "mgpu")}),
        }), path)
