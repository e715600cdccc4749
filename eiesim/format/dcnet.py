"""Reader and writer of the Deep Compression storage stream (``.net``).

Layout (docs/FORMAT.md §1; the file ``compressed_SqueezeNet.net`` of
songhan/SqueezeNet-Deep-Compression and its ``decode.py``)::

    uint32 LE n[0] ... n[L-1]           stored entries per layer (fillers included)
    per layer, back to back, no alignment:
        float32 LE codebook[2**b]        b = code_bits (8 conv, 4 fc in the authors' files)
        float32 LE bias[shape[0]]
        code stream                      n bytes (b = 8) or ceil(n/2) bytes (b = 4)
        relative-index stream            ceil(n/2) bytes (4 bits per entry)

4-bit packing puts entry ``2k`` in the **low** nibble and ``2k+1`` in the
**high** nibble; for odd ``n`` the last high nibble is padding (0). Positions
index the C-order flattened weight tensor: ``pos_i = pos_{i-1} + z_i + 1``
from ``pos_{-1} = -1``; never-written positions hold code 0, whose codebook
value is 0.0. Filler rule as in EIE (Section III): a gap of ``g`` zeros is
``g // 16`` fillers ``(code 0, z = 15)`` then the real entry ``z = g % 16``.

The file has no magic number, names or shapes: the layer list comes from
outside (:func:`load_layer_specs` reads ``layers.json``). Reading is bounded:
every declared size is checked against the file size before anything is
allocated. The reader raises only for what cannot be read (truncation,
trailing bytes, a position past the tensor); things that decode but are not
canonical are returned as :class:`DCIssue` records (``strict=True`` raises
on them instead).

Unlike the public decoder, odd ``n`` and ``n = 0`` are handled, and the last
position is checked to lie inside the tensor.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .._io import decode_error_text, open_regular_file, os_error_message, read_regular_file, write_atomic
from ..errors import EieFormatError
from .layout import CompressedLayer, _frozen
from .netrules import MAX_NET_WEIGHTS, check_header, check_net_layer, check_positions, plan_layers
from .netrules import shape_problem as _shape_problem
from .relindex import encode_segments
from .rules import RULES, RaiseSink

__all__ = [
    "LayerSpec",
    "DCLayer",
    "DCNet",
    "DCIssue",
    "load_layer_specs",
    "read_net",
    "parse_net",
    "net_to_bytes",
    "write_net",
    "encode_dense",
    "dclayer_to_compressed",
    "compressed_to_dclayer",
    "SUPPORTED_CODE_BITS",
    "SUPPORTED_INDEX_BITS",
    "MAX_NET_WEIGHTS",
]

#: Code widths whose stream layout FORMAT.md §1 defines (decode.py: 8 for conv, 4 for fc).
SUPPORTED_CODE_BITS = (4, 8)
#: Relative-index width of the stream: 4 bits in every layer (FORMAT.md §1).
SUPPORTED_INDEX_BITS = (4,)

_MAX_SPECS_BYTES = 16 * 1024 * 1024
_UNREADABLE = functools.partial(EieFormatError, code="NET-UNREADABLE")
_SPEC_KEYS = {"name", "shape", "code_bits", "index_bits"}
_TOP_KEYS = {"layers", "byte_order", "note"}


# --------------------------------------------------------------------------- metadata
def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class LayerSpec:
    """What the ``.net`` stream does not say about one layer.

    Parameters
    ----------
    name : str
        Layer name (non-empty).
    shape : tuple of int
        Weight tensor shape, outputs first (conv: ``(out, in/group, kh, kw)``;
        fc: ``(out, in)``). Positions index it flattened in C order.
    code_bits : int
        Bits of a codebook index, 4 or 8 (codebook of ``2**code_bits``
        float32 values). Always explicit: never guessed from the name.
    index_bits : int
        Bits of a relative index; the stream stores 4 (FORMAT.md §1).

    Raises
    ------
    EieFormatError
        If a field has the wrong type, a dimension is < 1, or a width is
        not one the stream defines. The message names the layer and field.
    """

    name: str
    shape: tuple[int, ...]
    code_bits: int
    index_bits: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise EieFormatError(f"layer spec: name must be a non-empty string, got {self.name!r}", code="META-MISSING")
        where = f"layer {self.name!r}"
        try:
            shape = tuple(self.shape)
        except TypeError:
            raise EieFormatError(f"{where}: shape must be a list of sizes, got {self.shape!r}",
                                 code="META-MISSING") from None
        if not shape or not all(_is_int(d) and int(d) >= 1 for d in shape):
            raise EieFormatError(f"{where}: shape must be a non-empty list of positive integers, got {self.shape!r}",
                                 code="META-MISSING")
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        if not _is_int(self.code_bits) or int(self.code_bits) not in SUPPORTED_CODE_BITS:
            raise EieFormatError(
                f"{where}: code_bits = {self.code_bits!r}; the .net stream defines {SUPPORTED_CODE_BITS}",
                code="META-MISSING"
            )
        if not _is_int(self.index_bits) or int(self.index_bits) not in SUPPORTED_INDEX_BITS:
            raise EieFormatError(
                f"{where}: index_bits = {self.index_bits!r}; the .net stream stores {SUPPORTED_INDEX_BITS}",
                code="META-MISSING"
            )
        object.__setattr__(self, "code_bits", int(self.code_bits))
        object.__setattr__(self, "index_bits", int(self.index_bits))

    @property
    def n_weights(self) -> int:
        """Elements of the weight tensor, ``prod(shape)``."""
        return math.prod(self.shape)

    @property
    def n_out(self) -> int:
        """Outputs (``shape[0]``): the number of bias values."""
        return self.shape[0]

    @property
    def codebook_size(self) -> int:
        """``2**code_bits`` float32 values."""
        return 1 << self.code_bits

    def stream_bytes(self, n: int) -> int:
        """Bytes of this layer's part of the stream for ``n`` entries (header word excluded).

        ``4 * 2**code_bits`` (codebook) + ``4 * shape[0]`` (bias) + code
        stream (``n`` or ``ceil(n/2)``) + index stream (``ceil(n/2)``).

        Parameters
        ----------
        n : int
            Number of stored entries (fillers included), >= 0.

        Returns
        -------
        int
            Bytes: float32 codebook and biases, then the codes (one byte each
            for 8-bit codes, two 4-bit codes per byte otherwise) and the 4-bit
            relative indices (two per byte).
        """
        code = n if self.code_bits == 8 else (n + 1) // 2
        return 4 * self.codebook_size + 4 * self.n_out + code + (n + 1) // 2


def load_layer_specs(path) -> tuple[LayerSpec, ...]:
    """Read the layer list of a ``.net`` stream (``layers.json``).

    Schema (as in ``../shared/data/squeezenet_dc/layers.json``)::

        {"layers": [{"name": str, "shape": [int, ...], "code_bits": 4|8, "index_bits": 4}, ...],
         "byte_order": "little",      (optional)
         "note": str}                 (optional)

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tuple of LayerSpec
        In file order.

    Raises
    ------
    EieFormatError
        If the file is missing, larger than 16 MiB, not JSON, has an
        unknown key, a layer lacks a field (a missing bit width is an error:
        widths are never guessed), a value is invalid, names repeat, or
        ``byte_order`` is not ``"little"``. The message names the file, the
        layer and the field.
    """
    path = os.fspath(path)
    raw = read_regular_file(path, _MAX_SPECS_BYTES, error=_UNREADABLE, what="layer-list file")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting: RecursionError
        raise EieFormatError(f"{path}: not valid JSON ({decode_error_text(exc)})",
                             code="NET-UNREADABLE") from None
    if not isinstance(doc, dict):
        raise EieFormatError(f"{path}: top level must be an object with a 'layers' list", code="NET-UNREADABLE")
    extra = sorted(set(doc) - _TOP_KEYS)
    if extra:
        raise EieFormatError(f"{path}: unknown top-level key {extra[0]!r} (allowed: {sorted(_TOP_KEYS)})",
                             code="NET-UNREADABLE")
    if doc.get("byte_order", "little") != "little":
        raise EieFormatError(f"{path}: byte_order {doc['byte_order']!r}; the .net stream is little-endian",
                             code="NET-UNREADABLE")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise EieFormatError(f"{path}: 'layers' must be a non-empty list", code="NET-UNREADABLE")
    specs = []
    seen = set()
    for i, lm in enumerate(layers):
        where = f"{path}: layers[{i}]"
        if not isinstance(lm, dict):
            raise EieFormatError(f"{where}: must be an object", code="NET-UNREADABLE")
        extra = sorted(set(lm) - _SPEC_KEYS)
        if extra:
            raise EieFormatError(f"{where}: unknown key {extra[0]!r} (allowed: {sorted(_SPEC_KEYS)})",
                                 code="NET-UNREADABLE")
        missing = [k for k in ("name", "shape", "code_bits", "index_bits") if k not in lm]
        if missing:
            raise EieFormatError(f"{where}: field {missing[0]!r} is missing (bit widths are never guessed)",
                                 code="META-MISSING")
        if not isinstance(lm["shape"], list):
            raise EieFormatError(f"{where}: field 'shape' must be a list", code="META-MISSING")
        try:
            spec = LayerSpec(lm["name"], tuple(lm["shape"]), lm["code_bits"], lm["index_bits"])
        except EieFormatError as exc:
            raise EieFormatError(f"{where}: {exc}", code=exc.code) from None
        if spec.name in seen:
            raise EieFormatError(f"{where}: layer name {spec.name!r} repeats", code="META-INCONSISTENT")
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


# --------------------------------------------------------------------------- issues
@dataclass(frozen=True)
class DCIssue:
    """A rule a readable ``.net`` stream breaks (non-canonical or suspicious).

    Attributes
    ----------
    code : str
        Stable rule code (docs/FORMAT.md §4 style):

        * ``NIBBLE-PAD-NONZERO`` (warning) — odd ``n``: the padding high
          nibble of the last code byte (b = 4) or index byte is not 0;
        * ``RELIDX-FILLER-NONCANONICAL`` (warning) — a code-0 entry whose
          ``z`` is not 15 (a filler must be ``(0, 15)``);
        * ``FILLER-TRAILING`` (warning) — the stream ends with a filler;
        * ``CODEBOOK-ZERO-NOT-POSITIVE-ZERO`` (error) — ``codebook[0]`` is not +0.0 (bit pattern),
          so never-written positions would not decode to 0;
        * ``FLOAT-NONFINITE`` (error) — a codebook or bias value is NaN/inf.
    severity : {"error", "warning"}
        ``error``: the content is wrong; ``warning``: decodes correctly but
        is not canonical.
    layer : str
        Layer name.
    message : str
        What and where (entry index or value).
    """

    code: str
    severity: str
    layer: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity} {self.code} [{self.layer}]: {self.message}"


#: The findings of the .net rules (:mod:`eiesim.format.netrules`) that :meth:`DCLayer.issues` lists, in
#: the order it lists them; the validator's other findings (unused or duplicate centroids, entries
#: decoding to 0.0) are not the reader's concern.
_ISSUE_ORDER = ("CODEBOOK-ZERO-NOT-POSITIVE-ZERO", "FLOAT-NONFINITE", "RELIDX-FILLER-NONCANONICAL",
                "FILLER-TRAILING", "NIBBLE-PAD-NONZERO")


class _IssueSink:
    """Sink of :meth:`DCLayer.issues`: keeps the findings named in :data:`_ISSUE_ORDER` as DCIssue."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.issues: list = []

    def add(self, code: str, message: str, **loc) -> None:
        if code in _ISSUE_ORDER:
            self.issues.append(DCIssue(code, RULES[code].severity, self.layer, message))


# --------------------------------------------------------------------------- layer
@dataclass(frozen=True, eq=False)
class DCLayer:
    """One layer of a Deep Compression ``.net`` stream.

    Parameters
    ----------
    spec : LayerSpec
        Name, shape and bit widths.
    codebook : numpy.ndarray of float32, shape (2**code_bits,)
        Shared weights; ``codebook[0]`` is the value of fillers and
        never-written positions and should be +0.0 (FORMAT.md §1).
    bias : numpy.ndarray of float32, shape (shape[0],)
        Dense full-precision bias.
    codes : numpy.ndarray of uint8, shape (n,)
        Codebook index of every stored entry (fillers: 0), ``< 2**code_bits``.
    z : numpy.ndarray of uint8, shape (n,)
        Relative index of every entry, ``< 2**index_bits``.
    pad_nibbles : tuple of int, default (0, 0)
        For odd ``n``: the padding high nibbles of the last code byte
        (b = 4 only) and of the last index byte as read; written back as
        stored so a non-canonical file round-trips byte-exactly. Must be 0
        for even ``n``.

    Raises
    ------
    EieFormatError
        If an array has the wrong shape or dtype, a code or index is out of
        range, or a position falls past the tensor end. The message names
        the layer and the field.

    Notes
    -----
    Arrays are copied and made read-only. ``eq=False``: compares by identity.
    """

    spec: LayerSpec
    codebook: np.ndarray
    bias: np.ndarray
    codes: np.ndarray
    z: np.ndarray
    pad_nibbles: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        spec = self.spec
        if not isinstance(spec, LayerSpec):
            raise EieFormatError(f"DCLayer: spec must be a LayerSpec, got {type(spec).__name__}", code="ARGUMENT")
        where = f"layer {spec.name!r}"
        problem = _shape_problem(spec)
        if problem is not None:
            raise EieFormatError(f"{where}: {problem}", code="NET-SHAPE-LIMIT")
        cb = np.asarray(self.codebook)
        if cb.shape != (spec.codebook_size,) or (cb.size and cb.dtype.kind not in "fiu"):
            raise EieFormatError(
                f"{where}: codebook must be {spec.codebook_size} real values (code_bits={spec.code_bits}), "
                f"got {cb.dtype} {cb.shape}", code="CODEBOOK-SIZE"
            )
        object.__setattr__(self, "codebook", _frozen(cb.astype(np.float32)))
        b = np.asarray(self.bias)
        if b.shape != (spec.n_out,) or (b.size and b.dtype.kind not in "fiu"):
            raise EieFormatError(f"{where}: bias must be {spec.n_out} real values, got {b.dtype} {b.shape}",
                                 code="META-INCONSISTENT")
        object.__setattr__(self, "bias", _frozen(b.astype(np.float32)))
        for name, bits in (("codes", spec.code_bits), ("z", spec.index_bits)):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1:
                raise EieFormatError(f"{where}: {name} must be 1-D, got shape {arr.shape}", code="ARGUMENT")
            if arr.size and arr.dtype.kind not in "iu":
                raise EieFormatError(f"{where}: {name} must be integers, got dtype {arr.dtype}", code="ARGUMENT")
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= (1 << bits)):
                i = int(np.flatnonzero((arr < 0) | (arr >= (1 << bits)))[0])
                raise EieFormatError(f"{where}: {name}[{i}] = {int(arr[i])} is outside [0, {1 << bits})",
                                     code="CODE-RANGE" if name == "codes" else "RELIDX-Z-RANGE")
            object.__setattr__(self, name, _frozen(arr.astype(np.uint8)))
        if self.codes.size != self.z.size:
            raise EieFormatError(f"{where}: codes and z differ in length ({self.codes.size}, {self.z.size})",
                                 code="META-INCONSISTENT")
        pads = tuple(self.pad_nibbles)
        if len(pads) != 2 or not all(_is_int(p) and 0 <= int(p) < 16 for p in pads):
            raise EieFormatError(f"{where}: pad_nibbles must be two values in [0, 16), got {self.pad_nibbles!r}",
                                 code="ARGUMENT")
        if self.codes.size % 2 == 0 and any(pads):
            raise EieFormatError(f"{where}: pad_nibbles must be (0, 0) for an even entry count", code="ARGUMENT")
        if spec.code_bits == 8 and pads[0]:
            raise EieFormatError(f"{where}: an 8-bit code stream has no padding nibble", code="ARGUMENT")
        object.__setattr__(self, "pad_nibbles", (int(pads[0]), int(pads[1])))
        # the one rule a reader must enforce: every position inside the tensor (the
        # public decoder writes out of bounds here). Positions grow by z + 1 >= 1.
        check_positions(RaiseSink(where), spec, self.z)

    # ------------------------------------------------------------------ counts
    @property
    def name(self) -> str:
        """Layer name (from the spec)."""
        return self.spec.name

    @property
    def shape(self) -> tuple[int, ...]:
        """Weight tensor shape (from the spec)."""
        return self.spec.shape

    @property
    def n_entries(self) -> int:
        """Stored entries, fillers included (the header value ``n``)."""
        return int(self.codes.size)

    @property
    def n_fillers(self) -> int:
        """Entries with code 0 (fillers)."""
        return int(np.count_nonzero(self.codes == 0))

    @property
    def n_nonzeros(self) -> int:
        """Real entries (code >= 1): ``n_entries - n_fillers``."""
        return self.n_entries - self.n_fillers

    @property
    def stream_bytes(self) -> int:
        """Bytes of this layer in the stream (its uint32 header word excluded)."""
        return self.spec.stream_bytes(self.n_entries)

    # ------------------------------------------------------------------ decoding
    def positions(self) -> np.ndarray:
        """Flat C-order position of every entry, fillers included.

        ``pos_i = pos_{i-1} + z_i + 1`` with ``pos_{-1} = -1`` (FORMAT.md §1).

        Returns
        -------
        numpy.ndarray
            int64 ``(n_entries,)``, strictly increasing.
        """
        return np.cumsum(self.z.astype(np.int64) + 1) - 1

    def to_codes(self) -> np.ndarray:
        """Dense code tensor.

        Returns
        -------
        numpy.ndarray of uint8, shape ``spec.shape``
            Codebook index of every weight; 0 where nothing (or a filler) was written.
        """
        out = np.zeros(self.spec.n_weights, dtype=np.uint8)
        if self.n_entries:
            out[self.positions()] = self.codes
        return out.reshape(self.spec.shape)

    def to_dense(self) -> np.ndarray:
        """Dense float32 weights, shape ``spec.shape``: ``codebook[to_codes()]``.

        Returns
        -------
        numpy.ndarray
            float32, shape ``spec.shape``; 0.0 where nothing (or a filler) was
            written.

        Raises
        ------
        EieFormatError
            If ``codebook[0]`` is not +0.0 (bit pattern 0): never-written
            positions would not be zero (FORMAT.md §1).
        """
        if self.codebook.view(np.uint32)[0] != 0:
            raise EieFormatError(
                f"layer {self.name!r}: codebook[0] = {self.codebook[0].item()!r} must be +0.0; it is "
                "the value of fillers and never-written positions (FORMAT.md §1)",
                code="CODEBOOK-ZERO-NOT-POSITIVE-ZERO"
            )
        return self.codebook[self.to_codes()]

    def issues(self) -> list:
        """Non-canonical or suspicious content (see :class:`DCIssue` for the codes).

        Returns
        -------
        list of DCIssue
            Empty for a canonical layer. O(n).
        """
        sink = _IssueSink(self.name)
        check_net_layer(sink, self.spec, self.codebook, self.bias, self.codes, self.z, self.pad_nibbles, "full")
        return sorted(sink.issues, key=lambda i: _ISSUE_ORDER.index(i.code))  # stable: the order of old

    def __repr__(self) -> str:
        return (
            f"DCLayer({self.name!r}, shape={self.shape}, entries={self.n_entries}, "
            f"fillers={self.n_fillers}, code_bits={self.spec.code_bits})"
        )


@dataclass(frozen=True, eq=False)
class DCNet:
    """A whole ``.net`` stream.

    Attributes
    ----------
    layers : tuple of DCLayer
        In file order.
    bytes_consumed : int
        Bytes the layers occupy, header included: ``4 * L + sum(stream_bytes)``.
        For a file read by :func:`read_net` it equals the file size.
    issues : tuple of DCIssue
        Non-canonical content found while reading (empty for a canonical file).
    """

    layers: tuple[DCLayer, ...]
    bytes_consumed: int = 0
    issues: tuple[DCIssue, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        if not all(isinstance(l, DCLayer) for l in layers):
            raise EieFormatError("DCNet: layers must be DCLayer objects", code="ARGUMENT")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "issues", tuple(self.issues))
        if not self.bytes_consumed:
            object.__setattr__(self, "bytes_consumed", 4 * len(layers) + sum(l.stream_bytes for l in layers))

    @property
    def specs(self) -> tuple[LayerSpec, ...]:
        """The layer specs, in order."""
        return tuple(l.spec for l in self.layers)

    def __getitem__(self, key):
        if isinstance(key, str):
            for l in self.layers:
                if l.name == key:
                    return l
            raise KeyError(key)
        return self.layers[key]

    def __len__(self) -> int:
        return len(self.layers)


# --------------------------------------------------------------------------- reading
def _unpack_nibbles(raw: np.ndarray, n: int) -> np.ndarray:
    """``n`` 4-bit values, entry 2k in the low nibble and 2k+1 in the high nibble."""
    out = np.empty(2 * raw.size, dtype=np.uint8)
    out[0::2] = raw & 0x0F
    out[1::2] = raw >> 4
    return out[:n]


def _pack_nibbles(vals: np.ndarray, pad: int = 0) -> bytes:
    """Inverse of :func:`_unpack_nibbles`; ``pad`` fills the last high nibble for odd n."""
    n = vals.size
    buf = np.zeros(n + (n & 1), dtype=np.uint8)
    buf[:n] = vals
    if n & 1:
        buf[-1] = pad
    return (buf[0::2] | (buf[1::2] << 4)).astype(np.uint8).tobytes()


def _as_specs(specs) -> tuple[LayerSpec, ...]:
    if isinstance(specs, (str, os.PathLike)):
        return load_layer_specs(specs)
    specs = tuple(specs)
    if not specs or not all(isinstance(s, LayerSpec) for s in specs):
        raise EieFormatError("specs: expected a non-empty sequence of LayerSpec (or a layers.json path)",
                             code="ARGUMENT")
    return specs


def parse_net(data, specs, *, strict: bool = False, source: str = "<bytes>") -> DCNet:
    """Parse a ``.net`` stream held in memory.

    Parameters
    ----------
    data : bytes-like
        The whole stream.
    specs : sequence of LayerSpec, or str / os.PathLike of a ``layers.json``
        The layers in stream order.
    strict : bool, default False
        Raise on any :class:`DCIssue` instead of listing it.
    source : str, default "<bytes>"
        Name used in error messages.

    Returns
    -------
    DCNet
        ``bytes_consumed == len(data)``.

    Raises
    ------
    EieFormatError
        As :func:`read_net`.
    """
    specs = _as_specs(specs)
    mv = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    size = len(mv)
    L = len(specs)
    check_header(RaiseSink(source), size, L)
    spans = _plan(specs, np.frombuffer(mv[: 4 * L], dtype="<u4"), size, source)
    layers = []
    issues = []
    for spec, (o, n) in zip(specs, spans):
        codebook, bias, codes, z, pads = _layer_body(mv, o, spec, n)
        try:
            layer = DCLayer(spec, codebook, bias, codes, z, pad_nibbles=pads)
        except EieFormatError as exc:
            raise EieFormatError(f"{source}: {exc}", code=exc.code) from None
        layers.append(layer)
        issues.extend(layer.issues())
    if strict and issues:
        raise EieFormatError(f"{source}: {issues[0]} ({len(issues)} issue(s) in strict mode)", code=issues[0].code)
    return DCNet(tuple(layers), bytes_consumed=size, issues=tuple(issues))


def _layer_body(buf, o: int, spec, n: int):
    """Decode one layer's body of ``n`` entries starting at byte ``o`` of ``buf``.

    The span must already be known to fit (:func:`_plan`).  Returns
    ``(codebook, bias, codes, z, (pad_c, pad_z))``: ``<f4`` views of the
    codebook and bias, uint8 codes and relative indices, and the high
    nibbles that pad an odd-length nibble stream.
    """
    cbn, nb = spec.codebook_size, spec.n_out
    codebook = np.frombuffer(buf[o: o + 4 * cbn], dtype="<f4")
    o += 4 * cbn
    bias = np.frombuffer(buf[o: o + 4 * nb], dtype="<f4")
    o += 4 * nb
    half = (n + 1) // 2
    pad_c = pad_z = 0
    if spec.code_bits == 8:
        codes = np.frombuffer(buf[o: o + n], dtype=np.uint8)
        o += n
    else:
        raw = np.frombuffer(buf[o: o + half], dtype=np.uint8)
        codes = _unpack_nibbles(raw, n)
        if n & 1:
            pad_c = int(raw[-1] >> 4)
        o += half
    raw = np.frombuffer(buf[o: o + half], dtype=np.uint8)
    z = _unpack_nibbles(raw, n)
    if n & 1:
        pad_z = int(raw[-1] >> 4)
    return codebook, bias, codes, z, (pad_c, pad_z)


def _plan(specs, header, size: int, source: str):
    """Offsets of every layer from the header; every declared size is checked against ``size``
    (:func:`eiesim.format.netrules.plan_layers`, raising) before anything is allocated.
    Returns ``[(offset, n), ...]``; the layers end at ``size``."""
    spans, _ = plan_layers(RaiseSink(source), specs, header, size)
    return spans


def read_net(path, specs, *, strict: bool = False) -> DCNet:
    """Read a Deep Compression ``.net`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The stream file.
    specs : sequence of LayerSpec, or str / os.PathLike of a ``layers.json``
        The layers in file order (names, shapes, bit widths).
    strict : bool, default False
        When True, any :class:`DCIssue` (non-canonical padding or fillers,
        codebook[0] not +0.0, non-finite values) raises instead of being
        listed in :attr:`DCNet.issues`.

    Returns
    -------
    DCNet
        ``bytes_consumed`` equals the file size (675,763 for the authors'
        ``compressed_SqueezeNet.net``).

    Raises
    ------
    EieFormatError
        If the file is missing; shorter than the header; a layer's declared
        entry count exceeds its tensor or its bytes run past the end of the
        file (checked for every layer from the header and the file size
        **before** the rest is read, so a hostile header costs nothing);
        bytes remain after the last layer; an entry decodes to a position
        past the tensor end; or, in strict mode, an issue is found.
        Messages name the file, the layer and the rule.
    """
    path = os.fspath(path)
    specs = _as_specs(specs)
    L = len(specs)
    try:
        with open_regular_file(path, error=_UNREADABLE, what="Deep Compression .net stream") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(4 * L)
            check_header(RaiseSink(path), size if len(head) == 4 * L else len(head), L)
            _plan(specs, np.frombuffer(head, dtype="<u4"), size, path)
            data = head + fh.read()
    except OSError as exc:
        raise EieFormatError(os_error_message(path, exc), code="NET-UNREADABLE") from None
    return parse_net(data, specs, strict=strict, source=path)


# --------------------------------------------------------------------------- writing
def net_to_bytes(net) -> bytes:
    """Serialise a :class:`DCNet` (or a sequence of :class:`DCLayer`) to ``.net`` bytes.

    Padding nibbles of odd entry counts are written as stored in each layer
    (:attr:`DCLayer.pad_nibbles`, 0 for layers built here), so reading a file
    and writing it back gives identical bytes.

    Parameters
    ----------
    net : DCNet or sequence of DCLayer

    Returns
    -------
    bytes
        Header (uint32 LE entry count per layer) then every layer's codebook,
        bias, code stream and index stream (FORMAT.md §1).

    Raises
    ------
    EieFormatError
        If the input holds no layer or something that is not a DCLayer, or an
        entry count exceeds uint32.
    """
    layers = net.layers if isinstance(net, DCNet) else tuple(net)
    if not layers or not all(isinstance(l, DCLayer) for l in layers):
        raise EieFormatError("write_net: expected a DCNet or a non-empty sequence of DCLayer", code="ARGUMENT")
    counts = [l.n_entries for l in layers]
    if max(counts) > 0xFFFFFFFF:
        raise EieFormatError("write_net: an entry count exceeds the uint32 header field", code="ARGUMENT")
    parts = [np.asarray(counts, dtype="<u4").tobytes()]
    for l in layers:
        parts.append(l.codebook.astype("<f4").tobytes())
        parts.append(l.bias.astype("<f4").tobytes())
        if l.spec.code_bits == 8:
            parts.append(l.codes.tobytes())
        else:
            parts.append(_pack_nibbles(l.codes, l.pad_nibbles[0]))
        parts.append(_pack_nibbles(l.z, l.pad_nibbles[1]))
    return b"".join(parts)


def write_net(path, net) -> int:
    """Write a ``.net`` stream atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or os.PathLike
    net : DCNet or sequence of DCLayer

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    EieFormatError
        As :func:`net_to_bytes`, or if the folder cannot be written.
    """
    data = net_to_bytes(net)
    write_atomic(path, data)
    return len(data)


# --------------------------------------------------------------------------- building
def encode_dense(codes, codebook, bias=None, *, name: str = "layer", code_bits: int | None = None,
                 index_bits: int = 4) -> DCLayer:
    """Build a :class:`DCLayer` from a dense code tensor, with the filler rule.

    Parameters
    ----------
    codes : array_like of int, any shape (the weight tensor's)
        Codebook index of every weight, ``0`` = pruned, ``< 2**code_bits``.
        Flattened in C order.
    codebook : array_like of float, shape (2**code_bits,)
        ``codebook[0]`` should be +0.0 (the layer reports it otherwise).
    bias : array_like of float, shape (codes.shape[0],), optional
        Full-precision bias; zeros when omitted.
    name : str, default "layer"
    code_bits : int, optional
        4 or 8; default: ``log2(len(codebook))``.
    index_bits : int, default 4
        Bits of ``z`` (the stream stores 4).

    Returns
    -------
    DCLayer
        Canonical: a gap of ``g`` zeros becomes ``g // 16`` fillers
        ``(0, 15)`` and the real entry with ``z = g % 16`` (EIE, Section III;
        FORMAT.md §1), via :func:`eiesim.format.relindex.encode_segments`
        with one segment. No trailing filler; zero-padding nibbles.

    Raises
    ------
    EieFormatError
        If codes are not integers in range, the codebook size is not 16 or
        256 (or does not match ``code_bits``), or the bias has the wrong shape.
    """
    c = np.asarray(codes)
    if c.ndim == 0 or c.size == 0:
        raise EieFormatError(f"layer {name!r}: codes must be a non-empty tensor, got shape {c.shape}", code="ARGUMENT")
    if c.dtype.kind not in "iu":
        raise EieFormatError(f"layer {name!r}: codes must be integers, got dtype {c.dtype}", code="ARGUMENT")
    cb = np.asarray(codebook)
    if code_bits is None:
        if cb.ndim != 1 or cb.size not in (16, 256):
            raise EieFormatError(f"layer {name!r}: codebook of shape {cb.shape}; expected 16 or 256 values",
                                 code="ARGUMENT")
        code_bits = int(cb.size).bit_length() - 1
    spec = LayerSpec(name, c.shape, code_bits, index_bits)
    flat = c.reshape(-1)
    if int(flat.min()) < 0 or int(flat.max()) >= spec.codebook_size:
        i = int(np.flatnonzero((flat < 0) | (flat >= spec.codebook_size))[0])
        raise EieFormatError(
            f"layer {name!r}: code {int(flat[i])} at flat position {i} is outside [0, {spec.codebook_size})",
            code="ARGUMENT"
        )
    pos = np.flatnonzero(flat)
    v, z, _ = encode_segments(np.zeros(pos.size, dtype=np.int64), pos, flat[pos], 1, index_bits)
    if bias is None:
        bias = np.zeros(spec.n_out, dtype=np.float32)
    return DCLayer(spec, cb, bias, v, z)


def dclayer_to_compressed(dclayer: DCLayer, n_pe: int, *, fold_bias: bool = False):
    """Lay a ``.net`` layer out for N EIE PEs.

    The weight matrix is ``(shape[0], prod(shape[1:]))`` — for an fc layer its
    ``(out, in)`` matrix; for a conv layer the im2col matrix (C order).

    Parameters
    ----------
    dclayer : DCLayer
    n_pe : int
        Number of PEs N (row ``i`` goes to PE ``i % N``, EIE Section III).
    fold_bias : bool, default False
        When True the bias becomes EIE's bias column (input 1.0), quantised
        with the weight codebook (EIE Section III): every bias value must be
        0.0 or exactly a codebook value, otherwise EieFormatError. When
        False the float bias stays separate and is returned alongside.

    Returns
    -------
    layer : CompressedLayer
        ``code_bits`` and ``index_bits`` of the spec; name of the layer.
    bias : numpy.ndarray of float32, shape (shape[0],), or None
        The full-precision bias, or None when it was folded.

    Raises
    ------
    EieFormatError
        If the shape has fewer than 2 dimensions, a bias value is not a
        codebook value (``fold_bias=True``), or the layout rules fail
        (e.g. ``codebook[0]`` not +0.0).
    """
    if not isinstance(dclayer, DCLayer):
        raise EieFormatError(f"dclayer_to_compressed: expected a DCLayer, got {type(dclayer).__name__}",
                             code="ARGUMENT")
    spec = dclayer.spec
    if len(spec.shape) < 2:
        raise EieFormatError(f"layer {spec.name!r}: shape {spec.shape} is not a weight matrix (needs >= 2 dims)",
                             code="ARGUMENT")
    n_out = spec.shape[0]
    n_in = spec.n_weights // n_out
    real = dclayer.codes != 0
    pos = dclayer.positions()[real]
    import scipy.sparse as sp  # lazily: 0.14 s of import the other readers do not need

    coo = sp.coo_array(
        (dclayer.codes[real].astype(np.int64), (pos // n_in, pos % n_in)), shape=(n_out, n_in)
    )
    bias_out = dclayer.bias.copy()
    bias_codes = None
    if fold_bias:
        cb64 = dclayer.codebook.astype(np.float64)
        b = dclayer.bias.astype(np.float64)
        bias_codes = np.zeros(n_out, dtype=np.int64)
        nz = np.flatnonzero(b != 0)
        if nz.size:
            order = np.argsort(cb64[1:], kind="stable") + 1
            srt = cb64[order]
            idx = np.minimum(np.searchsorted(srt, b[nz]), srt.size - 1)
            ok = srt[idx] == b[nz]
            if not np.all(ok):
                i = int(nz[np.flatnonzero(~ok)[0]])
                raise EieFormatError(
                    f"layer {spec.name!r}: bias[{i}] = {dclayer.bias[i].item()!r} is not a codebook value; "
                    "EIE's bias column is quantised with the weight codebook (use fold_bias=False)", code="ARGUMENT"
                )
            bias_codes[nz] = order[idx]
        bias_out = None
    try:
        layer = CompressedLayer.from_codes(
            coo, dclayer.codebook, n_pe, bias_codes=bias_codes, code_bits=spec.code_bits,
            index_bits=spec.index_bits, name=spec.name,
        )
    except EieFormatError as exc:
        raise EieFormatError(f"layer {spec.name!r}: {exc}", code=exc.code) from None
    return layer, bias_out


def compressed_to_dclayer(layer: CompressedLayer, bias=None, *, name: str | None = None) -> DCLayer:
    """Turn an EIE per-PE layout back into one ``.net`` layer.

    Parameters
    ----------
    layer : CompressedLayer
        ``code_bits`` must be 4 or 8 (the widths the stream defines).
    bias : array_like of float, shape (n_out,), optional
        Full-precision bias. Default: the layer's quantised bias column when
        it has one, else zeros. Giving both is an error.
    name : str, optional
        Default: ``layer.name`` (or ``"layer"``).

    Returns
    -------
    DCLayer
        Shape ``(n_out, n_in)``, canonical filler encoding over the whole
        C-order matrix (4-bit relative indices).

    Raises
    ------
    EieFormatError
        If ``code_bits`` is not 4 or 8, the bias has the wrong shape, or
        ``bias`` is given for a layer that already carries a bias column.
    """
    if not isinstance(layer, CompressedLayer):
        raise EieFormatError(f"compressed_to_dclayer: expected a CompressedLayer, got {type(layer).__name__}",
                             code="ARGUMENT")
    nm = name or layer.name or "layer"
    if layer.code_bits not in SUPPORTED_CODE_BITS:
        raise EieFormatError(
            f"layer {nm!r}: code_bits = {layer.code_bits}; the .net stream defines {SUPPORTED_CODE_BITS}",
            code="ARGUMENT"
        )
    if bias is not None and layer.has_bias:
        raise EieFormatError(f"layer {nm!r}: has a bias column; do not pass a separate bias", code="ARGUMENT")
    if bias is None:
        bias = layer.bias_values() if layer.has_bias else np.zeros(layer.n_out, dtype=np.float32)
    codes = layer.to_codes()[:, : layer.n_in]
    return encode_dense(codes, layer.codebook, bias, name=nm, code_bits=layer.code_bits, index_bits=4)
