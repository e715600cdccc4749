"""The ``.eie`` container: compressed layers and networks on disk.

A ``.eie`` file is a ZIP archive (CRC-checked, members stored or DEFLATE-d)
holding

* ``manifest.json`` -- UTF-8 JSON: format name and version, the network's
  layers in order with every shape, N, bit widths (code, relative index,
  pointer), bias handling, codebook number format, entry counts, the declared
  dtype and shape of every array, optional fixed-point formats and
  provenance metadata;
* one ``.npy`` member per array (``layers/<i>/ptr.npy``, ``codebook.npy``,
  ``v.npy``, ``z.npy``, optionally ``packed.npy`` -- the hardware image, one
  byte per entry -- and the Huffman-coded streams ``huffman/v_lengths.npy``,
  ``huffman/v_payload.npy``, ``huffman/z_lengths.npy``,
  ``huffman/z_payload.npy``), little-endian, C order.

The field-by-field specification, the version policy and the rule table
are in the project's ``docs/FORMAT.md``. Version 2.1 is written (2.1 added the per-layer ``kind``); versions 1
(the first container, integer ``version`` only) and 2.x are read. A reader
refuses a newer *major* version and accepts a newer *minor* version,
ignoring the optional fields it does not know.

Reading is bounded: every member's size in the ZIP central directory is
checked against the manifest's declared dtype and shape (and against what
DEFLATE can possibly expand to) **before** it is decompressed; ``.npy``
headers are parsed here with :func:`ast.literal_eval` and never given to
:func:`numpy.load`, so nothing is allocated from an untrusted header and
nothing is unpickled. Every refusal is an :class:`~eiesim.errors.EieFormatError`
whose ``code`` names the broken rule. Writing is atomic (temporary file in
the same folder, then :func:`os.replace`).
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import __version__
from .._io import (MAX_NPY_HEADER_BYTES, ZipMemberError, decode_error_text, open_regular_file, open_zip,
                   parse_npy_header, read_zip_member, write_atomic_with, zip_member_problem)
from ..errors import EieFormatError
from .huffman import MAX_ALPHABET, HuffmanStream
from .huffman import decode as huffman_decode
from .huffman import encode as huff_encode
from .layout import MAX_DIM, CompressedLayer  # noqa: F401 - MAX_DIM: the largest dimension / PE count read
from .lstm import lstm_dims
from .network import _ACTIVATIONS, LAYER_KINDS, Network  # noqa: F401 - Network re-exported (its home before)
from .rules import RaiseSink

__all__ = [
    "Network",
    "Container",
    "ContainerLayer",
    "save_network",
    "load_network",
    "load_container",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FORMAT_MINOR_VERSION",
    "MAX_MEMBER_BYTES",
]

FORMAT_NAME = "eiesim-container"
#: Major version written by this eiesim. A reader refuses a newer major version.
FORMAT_VERSION = 2
#: Minor version written by this eiesim. A newer minor version is read; its
#: unknown optional fields are ignored.
FORMAT_MINOR_VERSION = 1
_READABLE_MAJORS = (1, 2)

_MANIFEST = "manifest.json"
#: Largest manifest read, in bytes.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
#: Largest member (uncompressed) read, in bytes; larger declared sizes are refused as absurd.
MAX_MEMBER_BYTES = 1 << 31
#: Largest sum of the members' uncompressed sizes, in bytes.
MAX_TOTAL_BYTES = 1 << 33
_MAX_MEMBERS = 1 << 16
_MAX_LAYERS = 1 << 12
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: identical input, identical file

_PTR_DTYPES = {"<u2": 16, "<u4": 32, "<i8": 63}  # dtype -> widest pointer it holds
_U8 = "|u1"
_F32 = "<f4"
_BIAS_HANDLING = ("none", "column")
_ROUNDING = ("nearest", "floor")

_TOP_FIELDS_V2 = {
    "format", "version", "minor_version", "kind", "activation", "layers", "metadata",
    "fixed_point", "writer", "byte_order",
}
_LAYER_FIELDS_V2 = {
    "name", "shape", "n_pe", "code_bits", "index_bits", "pointer_bits", "has_bias",
    "bias_handling", "codebook_format", "n_entries", "n_fillers", "n_nonzeros", "arrays",
    "huffman", "packed_layout", "compression", "kind",
}
_ARRAY_NAMES_V2 = {"ptr", "codebook", "v", "z", "packed"}
_HUFF_FIELDS = {"alphabet_size", "n_symbols", "n_bits", "code_lengths", "payload"}


# =========================================================================== data types
@dataclass(frozen=True, eq=False)
class ContainerLayer:
    """One layer of a container with everything the manifest says about it.

    Attributes
    ----------
    kind : str
        ``"fc"`` or ``"lstm"`` (manifest field ``kind``; ``"fc"`` when absent, as in
        every file written before the field existed).
    layer : CompressedLayer
        The per-PE layout (ptr, v, z, codebook), cheap-checked.
    pointer_bits : int or None
        Declared pointer width in bits (EIE: 16); None in version-1 files.
    packed : numpy.ndarray of uint8, shape (n_entries,), or None
        The hardware image when stored: ``(v << index_bits) | z`` per entry
        (for 4 + 4 bits: v in the high nibble, z in the low nibble).
    huffman : dict of str to HuffmanStream, or None
        ``{"v": ..., "z": ...}``: the canonical-Huffman streams when stored
        (:class:`eiesim.format.huffman.HuffmanStream`), not decoded.
    compression : dict
        Per-layer provenance of the compression settings (free-form JSON object).
    """

    layer: CompressedLayer
    pointer_bits: Optional[int] = None
    packed: Optional[np.ndarray] = None
    huffman: Optional[Dict[str, Any]] = None
    compression: Dict[str, Any] = field(default_factory=dict)
    kind: str = "fc"


@dataclass(frozen=True, eq=False)
class Container:
    """A whole ``.eie`` file as read.

    Attributes
    ----------
    network : Network
        The layers, activation and metadata (what the simulator runs).
    layers : tuple of ContainerLayer
        Per-layer details (pointer width, optional packed image and Huffman streams).
    version : tuple of int
        ``(major, minor)`` of the file (version-1 files read as ``(1, 0)``).
    fixed_point : dict or None
        Declared fixed-point formats (``docs/FORMAT.md``), or None.
    manifest : dict
        The parsed manifest as stored.
    """

    network: Network
    layers: Tuple[ContainerLayer, ...]
    version: Tuple[int, int]
    fixed_point: Optional[Dict[str, Any]]
    manifest: Dict[str, Any]


# =========================================================================== reporting
def _fatal(path: str, code: str, message: str) -> EieFormatError:
    return EieFormatError(f"{path}: {message}", code=code)


# =========================================================================== writing
def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _fixed_point_doc(fixed_point) -> Optional[dict]:
    """Manifest form of the declared fixed-point formats (None, a dict, or an EIEConfig)."""
    if fixed_point is None:
        return None
    from ..config import EIEConfig

    if isinstance(fixed_point, EIEConfig):
        c = fixed_point
        fixed_point = {
            "total_bits": c.fixed_total_bits,
            "act_frac_bits": c.act_frac_bits,
            "weight_frac_bits": c.weight_frac_bits,
            "rounding": c.rounding,
            "saturate": c.saturate,
        }
    if not isinstance(fixed_point, dict):
        raise EieFormatError(f"fixed_point: expected a dict or an EIEConfig, got {type(fixed_point).__name__}",
                             code="ARGUMENT")
    errs = _check_fixed_point(fixed_point)
    if errs:
        raise EieFormatError(f"fixed_point: {errs[0]}", code="META-INCONSISTENT")
    return dict(fixed_point)


def _check_fixed_point(fp: dict) -> List[str]:
    """Problems of a ``fixed_point`` manifest object (empty list when it is well-formed)."""
    errs = []
    tb = fp.get("total_bits")
    if not _is_int(tb) or not 2 <= tb <= 64:
        errs.append(f"'total_bits' must be an integer in [2, 64], got {tb!r}")
        tb = None
    for key in ("act_frac_bits", "weight_frac_bits"):
        val = fp.get(key)
        if not _is_int(val) or val < 0 or (tb is not None and val >= tb):
            errs.append(f"{key!r} must be an integer in [0, total_bits), got {val!r}")
    if "rounding" in fp and fp["rounding"] not in _ROUNDING:
        errs.append(f"'rounding' must be one of {_ROUNDING}, got {fp['rounding']!r}")
    if "saturate" in fp and not isinstance(fp["saturate"], bool):
        errs.append(f"'saturate' must be true or false, got {fp['saturate']!r}")
    return errs


def _ptr_dtype(pointer_bits: int) -> str:
    if pointer_bits <= 16:
        return "<u2"
    if pointer_bits <= 32:
        return "<u4"
    return "<i8"


def _layer_pointer_bits(layer, i: int, pointer_bits: Optional[int]) -> int:
    """The pointer width declared for layer ``i``: ``pointer_bits`` (checked), else 16, 32 or 63 bits."""
    max_ptr = int(layer.ptr.max()) if layer.ptr.size else 0
    if pointer_bits is None:
        return 16 if max_ptr < 1 << 16 else 32 if max_ptr < 1 << 32 else 63
    if not _is_int(pointer_bits) or not 1 <= int(pointer_bits) <= 63:
        raise EieFormatError(f"pointer_bits: expected an integer in [1, 63], got {pointer_bits!r}",
                             code="ARGUMENT")
    pb = int(pointer_bits)
    if max_ptr >= 1 << pb:
        raise EieFormatError(
            f"save_network: layer {i} ({layer.name!r}) has pointer {max_ptr}, which does not fit "
            f"pointer_bits = {pb}",
            code="PTR-WIDTH",
        )
    return pb


def _huffman_members(layer, i: int, members: List[Tuple[str, bytes]]) -> Dict[str, Any]:
    """Append layer ``i``'s canonical-Huffman members (v and z) to ``members``; return the manifest's
    ``huffman`` object (docs/FORMAT.md §2.7)."""
    hdoc = {}
    for sym, bits in (("v", layer.code_bits), ("z", layer.index_bits)):
        stream = huff_encode(getattr(layer, sym), 1 << bits)
        lens_member = f"layers/{i}/huffman/{sym}_lengths.npy"
        pay_member = f"layers/{i}/huffman/{sym}_payload.npy"
        members.append((lens_member, _npy_bytes(np.asarray(stream.code_lengths, dtype=np.uint8))))
        members.append((pay_member, _npy_bytes(np.frombuffer(stream.payload, dtype=np.uint8))))
        hdoc[sym] = {
            "alphabet_size": stream.alphabet_size,
            "n_symbols": stream.n_symbols,
            "n_bits": stream.n_bits,
            "code_lengths": {"file": lens_member, "dtype": _U8, "shape": [stream.alphabet_size]},
            "payload": {"file": pay_member, "dtype": _U8, "shape": [len(stream.payload)]},
        }
    return hdoc


def save_network(
    path,
    network,
    metadata: Optional[Dict[str, Any]] = None,
    *,
    pointer_bits: Optional[int] = None,
    packed: bool = False,
    huffman: bool = False,
    store_vz: bool = True,
    fixed_point=None,
    layer_compression: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
) -> None:
    """Write a network (or a list of layers) to a ``.eie`` container, atomically.

    Writes format version 2.0 (``docs/FORMAT.md``).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; an existing file is replaced only once the new one is complete.
    network : Network or sequence of CompressedLayer
    metadata : dict, optional
        Provenance merged over ``network.metadata`` (source model and
        weights, data set, compression settings); must be JSON-serialisable.
    pointer_bits : int, optional
        Declared pointer width in bits, in ``[1, 63]`` (EIE: 16). Default: 16
        when every pointer fits, else 32, else 63. The ``ptr`` member is
        stored as uint16 / uint32 / int64 accordingly.
    packed : bool, default False
        Also store the hardware image ``packed.npy``: one byte per entry,
        ``(v << index_bits) | z`` (v in the high nibble, z in the low nibble
        for 4 + 4 bits). Needs ``code_bits + index_bits <= 8``.
    huffman : bool, default False
        Also store the canonical-Huffman streams of ``v`` and ``z``
        (:func:`eiesim.format.huffman.encode`; code lengths, symbol and bit
        counts, payload).
    store_vz : bool, default True
        Store ``v.npy`` and ``z.npy``. May be False only when ``packed`` or
        ``huffman`` is set; the reader then rebuilds v and z from them.
    fixed_point : dict or EIEConfig, optional
        Fixed-point formats to declare: ``{"total_bits", "act_frac_bits",
        "weight_frac_bits", "rounding", "saturate"}`` (an
        :class:`~eiesim.config.EIEConfig` supplies its own).
    layer_compression : sequence of dict, optional
        Per-layer compression settings (pruning density, quantisation
        method, ...), one JSON object (or None) per layer.

    Raises
    ------
    EieFormatError
        If the metadata is not JSON-serialisable, a pointer does not fit
        ``pointer_bits``, ``packed`` is asked for wider entries, no entry
        representation would be stored, or the folder cannot be written.
    """
    if not isinstance(network, Network):
        network = Network(tuple(network))
    if not (store_vz or packed or huffman):
        raise EieFormatError("save_network: store_vz=False needs packed=True or huffman=True", code="ARGUMENT")
    meta = dict(network.metadata)
    meta.update(metadata or {})
    n_layers = len(network.layers)
    if layer_compression is not None:
        layer_compression = list(layer_compression)
        if len(layer_compression) != n_layers:
            raise EieFormatError(
                f"layer_compression: {len(layer_compression)} entries for {n_layers} layers", code="ARGUMENT"
            )
    fp_doc = _fixed_point_doc(fixed_point)

    layers_meta = []
    members: List[Tuple[str, bytes]] = []
    for i, layer in enumerate(network.layers):
        pb = _layer_pointer_bits(layer, i, pointer_bits)
        if packed and layer.code_bits + layer.index_bits > 8:
            raise EieFormatError(
                f"save_network: layer {i} ({layer.name!r}): the packed image needs code_bits + index_bits "
                f"<= 8, layer has {layer.code_bits} + {layer.index_bits}", code="ARGUMENT"
            )
        arrays = {"ptr": (layer.ptr, _ptr_dtype(pb)), "codebook": (layer.codebook, _F32)}
        if store_vz:
            arrays["v"] = (layer.v, _U8)
            arrays["z"] = (layer.z, _U8)
        if packed:
            img = (layer.v.astype(np.uint8) << np.uint8(layer.index_bits)) | layer.z
            arrays["packed"] = (img.astype(np.uint8), _U8)
        decl = {}
        for name, (arr, dtype) in arrays.items():
            arr = np.ascontiguousarray(arr, dtype=np.dtype(dtype))
            member = f"layers/{i}/{name}.npy"
            members.append((member, _npy_bytes(arr)))
            decl[name] = {"file": member, "dtype": dtype, "shape": list(arr.shape)}
        lm = {
            "name": layer.name,
            "kind": network.kinds[i],
            "shape": [layer.n_out, layer.n_in],
            "n_pe": layer.n_pe,
            "code_bits": layer.code_bits,
            "index_bits": layer.index_bits,
            "pointer_bits": pb,
            "has_bias": layer.has_bias,
            "bias_handling": "column" if layer.has_bias else "none",
            "codebook_format": "float32",
            "n_entries": layer.n_entries,
            "n_fillers": layer.n_fillers,
            "n_nonzeros": layer.n_nonzeros,
            "arrays": decl,
        }
        if packed:
            lm["packed_layout"] = "v_high"
        if huffman:
            lm["huffman"] = _huffman_members(layer, i, members)
        if layer_compression is not None and layer_compression[i] is not None:
            if not isinstance(layer_compression[i], dict):
                raise EieFormatError(f"layer_compression[{i}]: expected a dict", code="ARGUMENT")
            lm["compression"] = layer_compression[i]
        layers_meta.append(lm)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "minor_version": FORMAT_MINOR_VERSION,
        "kind": "network",
        "byte_order": "little",
        "writer": f"eiesim {__version__}",
        "activation": network.activation,
        "layers": layers_meta,
        "metadata": meta,
    }
    if fp_doc is not None:
        manifest["fixed_point"] = fp_doc
    try:
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise EieFormatError(f"{os.fspath(path)}: metadata is not JSON-serialisable ({exc})", code="ARGUMENT") from None

    def _write(fh) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            for name, data in [(_MANIFEST, manifest_bytes)] + members:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)

    write_atomic_with(path, _write)


# =========================================================================== reading: helpers
def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _archive_bounds(fh, size: int) -> Tuple[int, int]:
    """(offset of the first byte after the end-of-central-directory record, its comment length).

    Returns ``(-1, 0)`` when no end record is found (zipfile reports that itself).
    """
    tail = min(size, 22 + 65535)
    fh.seek(size - tail)
    buf = fh.read(tail)
    pos = buf.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + 22 <= len(buf):
            (clen,) = struct.unpack("<H", buf[pos + 20: pos + 22])
            if pos + 22 + clen <= len(buf):
                return size - tail + pos + 22 + clen, clen
        pos = buf.rfind(b"PK\x05\x06", 0, pos)
    return -1, 0


# =========================================================================== reading: parser
@dataclass
class _RawLayer:
    """One layer as parsed, before (or instead of) building a CompressedLayer."""

    index: int
    name: str
    shape: Optional[Tuple[int, int]] = None
    n_pe: Optional[int] = None
    code_bits: Optional[int] = None
    index_bits: Optional[int] = None
    pointer_bits: Optional[int] = None
    has_bias: Optional[bool] = None
    declared: Dict[str, int] = field(default_factory=dict)  # n_entries, n_fillers, n_nonzeros
    ptr: Optional[np.ndarray] = None
    codebook: Optional[np.ndarray] = None
    v: Optional[np.ndarray] = None
    z: Optional[np.ndarray] = None
    packed: Optional[np.ndarray] = None
    huffman: Optional[Dict[str, Any]] = None  # sym -> HuffmanStream
    compression: Dict[str, Any] = field(default_factory=dict)
    kind: str = "fc"  # absent in files before the field existed: fc
    ok: bool = True  # False: a required part is missing or unreadable
    ptr_shape_ok: bool = True  # the ptr array has the declared (n_pe, n_cols + 1) shape

    @property
    def n_cols(self) -> Optional[int]:
        if self.shape is None or self.has_bias is None:
            return None
        return self.shape[1] + int(self.has_bias)


@dataclass
class _Parsed:
    path: str
    version: Tuple[int, int]
    manifest: dict
    activation: str
    metadata: dict
    fixed_point: Optional[dict]
    layers: List[_RawLayer]


class _Reader:
    """Bounded reading of one container; reports through a sink (raise or collect)."""

    def __init__(self, path, sink=None) -> None:
        self.path = os.fspath(path)
        self.sink = sink if sink is not None else RaiseSink(self.path)
        self.used_members: set = set()
        self.bad_members: set = set()  # members refused in the directory scan

    # ------------------------------------------------------------------ archive level
    def parse(self) -> _Parsed:
        path = self.path
        # stat before open: a device such as /dev/zero would never end, a FIFO would block
        fh = open_regular_file(path, error=functools.partial(EieFormatError, code="CONTAINER-UNREADABLE"),
                               what="eiesim container (.eie)")
        with fh:
            size = os.fstat(fh.fileno()).st_size
            zf = open_zip(fh, path, error=functools.partial(EieFormatError, code="CONTAINER-UNREADABLE"),
                          what="eiesim container (ZIP archive)")
            with zf:
                self.zf = zf
                self._scan_directory(fh, size)
                parsed = self._parse_manifest()
                unknown = sorted(
                    set(self.infos) - self.used_members - {_MANIFEST} - self.bad_members
                )
                if unknown:
                    self.sink.warn(
                        "CONTAINER-MEMBER-UNKNOWN",
                        f"{len(unknown)} member(s) not declared in the manifest (first: {unknown[0]!r})",
                        member=unknown[0], count=len(unknown),
                    )
                return parsed

    def _scan_directory(self, fh, size: int) -> None:
        sink = self.sink
        infos = self.zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise _fatal(self.path, "CONTAINER-SIZE-ABSURD", f"{len(infos)} members (limit {_MAX_MEMBERS})")
        self.infos: Dict[str, zipfile.ZipInfo] = {}
        # compressed data must lie before the central directory: a lying size would make
        # zipfile ask the OS for that many bytes at once
        cd_start = getattr(self.zf, "start_dir", size)
        seen = set()
        total = 0
        for info in infos:
            name = info.filename
            if name in seen:
                sink.error("CONTAINER-MEMBER-UNSUPPORTED", f"member name {name!r} occurs twice", member=name)
                self.bad_members.add(name)
                continue
            seen.add(name)
            problem = zip_member_problem(info, cd_start, MAX_MEMBER_BYTES)
            if problem is not None:
                kind, message = problem
                sink.error("CONTAINER-MEMBER-UNSUPPORTED" if kind == "unsupported" else "CONTAINER-SIZE-ABSURD",
                           message, member=name)
                self.bad_members.add(name)
                continue
            total += info.file_size
            self.infos[name] = info
        if total > MAX_TOTAL_BYTES:
            raise _fatal(
                self.path, "CONTAINER-SIZE-ABSURD", f"members declare {total} bytes in all (limit {MAX_TOTAL_BYTES})"
            )
        # bytes outside the archive: before the first local header or after the end record
        first = min((i.header_offset for i in infos), default=0)
        end, _ = _archive_bounds(fh, size)
        if first > 0:
            sink.error("STREAM-TRAILING-BYTES", f"{first} bytes before the first ZIP member")
        if end >= 0 and end != size:
            sink.error("STREAM-TRAILING-BYTES", f"{size - end} bytes after the end of the ZIP archive")

    def _read_member(self, name: str, **loc) -> Optional[bytes]:
        """Decompress one member (size already vetted); None after reporting a problem."""
        info = self.infos.get(name)
        if info is None:
            if name in self.bad_members:
                return None
            self.sink.error("CONTAINER-MEMBER-MISSING", f"member {name!r} is missing", **loc)
            return None
        self.used_members.add(name)
        try:
            return read_zip_member(self.zf, info)
        except ZipMemberError as exc:
            self.sink.error(exc.code, f"member {name!r} {exc}", member=name, **loc)
        return None

    def read_array(self, decl, dtype, shape, what: str, **loc) -> Optional[np.ndarray]:
        """Read a declared ``.npy`` member whose dtype and shape were vetted by the caller."""
        name = decl["file"]
        payload = math.prod(shape) * np.dtype(dtype).itemsize
        if payload > MAX_MEMBER_BYTES:
            self.sink.error(
                "CONTAINER-SIZE-ABSURD", f"{what}: declared shape {list(shape)} needs {payload} bytes "
                f"(limit {MAX_MEMBER_BYTES})", **loc)
            return None
        info = self.infos.get(name)
        if info is not None:
            # compare with the directory's byte count before decompressing anything
            if info.file_size < payload + 10:
                self.used_members.add(name)
                self.sink.error(
                    "STREAM-TRUNCATED",
                    f"{what}: member {name!r} holds {info.file_size} bytes, the declared shape "
                    f"{list(shape)} of {dtype} needs {payload} plus a header",
                    **loc,
                )
                return None
            if info.file_size > payload + MAX_NPY_HEADER_BYTES:
                self.used_members.add(name)
                self.sink.error(
                    "STREAM-TRAILING-BYTES",
                    f"{what}: member {name!r} holds {info.file_size} bytes, more than the declared shape "
                    f"{list(shape)} of {dtype} ({payload} bytes) plus a header",
                    **loc,
                )
                return None
        raw = self._read_member(name, **loc)
        if raw is None:
            return None
        hdr = parse_npy_header(raw)
        if isinstance(hdr, str):
            self.sink.error("CONTAINER-NPY-HEADER", f"{what}: member {name!r}: {hdr}", **loc)
            return None
        descr, fortran, nshape, offset = hdr
        if descr != dtype or fortran or tuple(nshape) != tuple(shape):
            self.sink.error(
                "CONTAINER-NPY-HEADER",
                f"{what}: member {name!r} is {descr}{list(nshape)}"
                f"{' (Fortran order)' if fortran else ''}, declared {dtype}{list(shape)}",
                **loc,
            )
            return None
        got = len(raw) - offset
        if got < payload:
            self.sink.error(
                "STREAM-TRUNCATED", f"{what}: member {name!r} holds {got} data bytes, {payload} declared", **loc
            )
            return None
        if got > payload:
            self.sink.error(
                "STREAM-TRAILING-BYTES",
                f"{what}: member {name!r} holds {got} data bytes, {payload} declared ({got - payload} extra)",
                **loc,
            )
            return None
        arr = np.frombuffer(raw, dtype=np.dtype(dtype), count=math.prod(shape), offset=offset)
        return arr.reshape(shape)

    # ------------------------------------------------------------------ manifest level
    def _parse_manifest(self) -> _Parsed:
        path, sink = self.path, self.sink
        info = self.infos.get(_MANIFEST)
        if info is None:
            raise _fatal(path, "CONTAINER-UNREADABLE", f"no {_MANIFEST} in the archive")
        if info.file_size > MAX_MANIFEST_BYTES:
            raise _fatal(
                path, "CONTAINER-SIZE-ABSURD", f"{_MANIFEST} is {info.file_size} bytes (limit {MAX_MANIFEST_BYTES})"
            )
        try:
            raw = read_zip_member(self.zf, info)
        except ZipMemberError as exc:
            raise _fatal(path, exc.code, f"member {_MANIFEST!r} {exc}") from None

        def _no_constants(name):
            raise ValueError(f"{name} is not JSON")

        try:
            manifest = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise _fatal(path, "CONTAINER-UNREADABLE",
                         f"{_MANIFEST} is not valid JSON ({decode_error_text(exc)})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise _fatal(path, "CONTAINER-VERSION", f"manifest does not declare format {FORMAT_NAME!r}")
        major = manifest.get("version")
        if not _is_int(major) or major < 1:
            raise _fatal(path, "CONTAINER-VERSION", "manifest field 'version' must be a positive integer")
        if major > FORMAT_VERSION:
            raise _fatal(
                path, "CONTAINER-VERSION",
                f"container version {major} is newer than this eiesim reads ({FORMAT_VERSION}); "
                "a newer major version may change the meaning of any field",
            )
        if major not in _READABLE_MAJORS:  # pragma: no cover - every major <= current is readable
            raise _fatal(path, "CONTAINER-VERSION", f"container version {major} is not supported")
        minor = 0
        if major >= 2:
            minor = manifest.get("minor_version")
            if not _is_int(minor) or minor < 0:
                sink.error("META-MISSING", "manifest field 'minor_version' must be a non-negative integer")
                minor = 0
        self.version = (major, minor)
        self.newer_minor = major == FORMAT_VERSION and minor > FORMAT_MINOR_VERSION
        if self.newer_minor:
            sink.warn(
                "CONTAINER-NEWER-MINOR",
                f"written as version {major}.{minor}, newer than {FORMAT_VERSION}.{FORMAT_MINOR_VERSION}: "
                "optional fields this reader does not know are ignored and not checked",
            )
        if major >= 2:
            self._unknown(manifest, _TOP_FIELDS_V2, "manifest")
            if manifest.get("kind") != "network":
                sink.error("META-MISSING", f"manifest field 'kind' must be \"network\", got {manifest.get('kind')!r}")
        activation = manifest.get("activation", "relu" if major == 1 else None)
        if activation not in _ACTIVATIONS:
            sink.error("META-MISSING", f"manifest field 'activation' must be one of {_ACTIVATIONS}, got {activation!r}")
            activation = "relu"
        metadata = manifest.get("metadata", {} if major == 1 else None)
        if not isinstance(metadata, dict):
            sink.error("META-MISSING", "manifest field 'metadata' must be an object")
            metadata = {}
        fixed_point = manifest.get("fixed_point")
        if fixed_point is not None:
            errs = _check_fixed_point(fixed_point) if isinstance(fixed_point, dict) else ["must be an object"]
            if errs:
                sink.error("META-INCONSISTENT", f"manifest field 'fixed_point': {errs[0]}")
                fixed_point = None
        layers_meta = manifest.get("layers")
        layers: List[_RawLayer] = []
        if not isinstance(layers_meta, list) or not layers_meta:
            sink.error("META-MISSING", "manifest field 'layers' must be a non-empty list")
        elif len(layers_meta) > _MAX_LAYERS:
            raise _fatal(path, "CONTAINER-SIZE-ABSURD", f"{len(layers_meta)} layers (limit {_MAX_LAYERS})")
        else:
            for i, lm in enumerate(layers_meta):
                layers.append(self._parse_layer(i, lm, major))
            def _io(raw):  # (inputs, outputs) as the network sees them; lstm: (X, H)
                if raw.kind == "lstm":
                    try:
                        return lstm_dims(raw.shape)
                    except EieFormatError:  # reported by _parse_layer
                        return None
                return raw.shape[1], raw.shape[0]

            for k in range(len(layers) - 1):
                a, b = layers[k], layers[k + 1]
                a_io = _io(a) if a.shape else None
                b_io = _io(b) if b.shape else None
                if a_io and b_io and a_io[1] != b_io[0]:
                    sink.error(
                        "META-INCONSISTENT",
                        f"layer {k} ({a.name!r}) has {a_io[1]} outputs but layer {k + 1} "
                        f"({b.name!r}) has {b_io[0]} inputs",
                        layer=k + 1, layer_name=b.name,
                    )
        return _Parsed(path, self.version, manifest, activation, metadata, fixed_point, layers)

    def _unknown(self, obj: dict, known: set, what: str, **loc) -> None:
        if self.newer_minor:
            return
        extra = sorted(set(obj) - known)
        if extra:
            self.sink.warn(
                "META-UNKNOWN-FIELD", f"{what} has unknown field(s) {extra} (typo? ignored)", **loc
            )

    def _int_field(self, lm, key, lo, hi, loc, *, required=True) -> Optional[int]:
        val = lm.get(key)
        if val is None and not required:
            return None
        if not _is_int(val) or not lo <= val <= hi:
            self.sink.error("META-MISSING", f"field {key!r} must be an integer in [{lo}, {hi}], got {val!r}", **loc)
            return None
        return val

    def _parse_layer(self, i: int, lm, major: int) -> _RawLayer:
        sink = self.sink
        raw = _RawLayer(index=i, name=f"layer{i}")
        loc = {"layer": i}
        if not isinstance(lm, dict):
            sink.error("META-MISSING", "layer entry must be an object", **loc)
            raw.ok = False
            return raw
        if major >= 2 and "name" not in lm:  # required in v2 (docs/FORMAT.md 2.4; may be empty)
            sink.error("META-MISSING", "required field 'name' is missing", **loc)
        name = lm.get("name", "")
        if not isinstance(name, str):
            sink.error("META-MISSING", f"field 'name' must be a string, got {name!r}", **loc)
            name = ""
        raw.name = name or f"layer{i}"
        loc["layer_name"] = raw.name
        if major >= 2:
            self._unknown(lm, _LAYER_FIELDS_V2, "layer", **loc)
        shape = lm.get("shape")
        if (isinstance(shape, list) and len(shape) == 2
                and all(_is_int(s) and 1 <= s <= MAX_DIM for s in shape)):
            raw.shape = (shape[0], shape[1])
        else:
            sink.error("META-MISSING", f"field 'shape' must be [n_out, n_in] with sizes in [1, {MAX_DIM}], "
                       f"got {shape!r}", **loc)
        kind = lm.get("kind", "fc")
        if kind not in LAYER_KINDS:
            sink.error("META-MISSING", f"field 'kind' must be one of {LAYER_KINDS}, got {kind!r}", **loc)
        else:
            raw.kind = kind
            if kind == "lstm" and raw.shape is not None:
                try:
                    lstm_dims(raw.shape)
                except EieFormatError as exc:
                    sink.error("META-INCONSISTENT", str(exc), **loc)
        raw.n_pe = self._int_field(lm, "n_pe", 1, MAX_DIM, loc)
        raw.code_bits = self._int_field(lm, "code_bits", 1, 8, loc)
        raw.index_bits = self._int_field(lm, "index_bits", 1, 8, loc)
        raw.pointer_bits = self._int_field(lm, "pointer_bits", 1, 63, loc, required=major >= 2)
        hb = lm.get("has_bias", False if major == 1 else None)
        if not isinstance(hb, bool):
            sink.error("META-MISSING", f"field 'has_bias' must be true or false, got {hb!r}", **loc)
        else:
            raw.has_bias = hb
        if major >= 2:
            bh = lm.get("bias_handling")
            if bh not in _BIAS_HANDLING:
                sink.error("META-MISSING", f"field 'bias_handling' must be one of {_BIAS_HANDLING}, got {bh!r}", **loc)
            elif raw.has_bias is not None and (bh == "column") != raw.has_bias:
                sink.error("META-INCONSISTENT",
                           f"bias_handling {bh!r} contradicts has_bias = {str(raw.has_bias).lower()}", **loc)
            cf = lm.get("codebook_format")
            if cf != "float32":
                sink.error("META-MISSING", f"field 'codebook_format' must be \"float32\", got {cf!r}", **loc)
            for key in ("n_entries", "n_fillers", "n_nonzeros"):
                val = self._int_field(lm, key, 0, 1 << 62, loc)
                if val is not None:
                    raw.declared[key] = val
            comp = lm.get("compression", {})
            if not isinstance(comp, dict):
                sink.error("META-MISSING", "field 'compression' must be an object", **loc)
            else:
                raw.compression = comp
        else:
            for key in ("n_entries", "n_fillers"):
                val = lm.get(key)
                if _is_int(val) and val >= 0:
                    raw.declared[key] = val
        self._parse_arrays(raw, lm, major, loc)
        if raw.ptr is None or raw.codebook is None or (raw.v is None and raw.packed is None and raw.huffman is None):
            raw.ok = False
        return raw

    def _decl(self, decls: dict, key: str, loc, *, required: bool) -> Optional[dict]:
        d = decls.get(key)
        if d is None:
            if required:
                self.sink.error("META-MISSING", f"array {key!r} is not declared", **loc)
            return None
        if (not isinstance(d, dict) or not isinstance(d.get("file"), str) or not isinstance(d.get("dtype"), str)
                or not isinstance(d.get("shape"), list)):
            self.sink.error("META-MISSING", f"array {key!r}: declaration needs 'file', 'dtype' and 'shape' "
                            "(a list of sizes)", **loc)
            return None
        if not all(_is_int(s) and 0 <= s <= MAX_MEMBER_BYTES for s in d["shape"]):
            self.sink.error("META-MISSING", f"array {key!r}: 'shape' must be a list of integer sizes in "
                            f"[0, {MAX_MEMBER_BYTES}]", **loc)
            return None
        return d

    def _parse_arrays(self, raw: _RawLayer, lm: dict, major: int, loc: dict) -> None:
        sink = self.sink
        decls = lm.get("arrays")
        if not isinstance(decls, dict):
            sink.error("META-MISSING", "field 'arrays' missing", **loc)
            return
        if major >= 2:
            self._unknown(decls, _ARRAY_NAMES_V2, "arrays", **loc)
        n_entries = raw.declared.get("n_entries")

        # ---- ptr
        d = self._decl(decls, "ptr", loc, required=True)
        if d is not None:
            allowed = _PTR_DTYPES if major >= 2 else {"<i8": 63}
            shp = d["shape"]
            if d["dtype"] not in allowed:
                sink.error("META-INCONSISTENT", f"array 'ptr' has dtype {d['dtype']!r}, allowed {sorted(allowed)}",
                           **loc)
            elif len(shp) != 2:
                sink.error("META-INCONSISTENT", f"array 'ptr' must be 2-D, declared shape {shp}", **loc)
            else:
                ok = True
                if raw.n_pe is not None and shp[0] != raw.n_pe:
                    sink.error("META-INCONSISTENT", f"array 'ptr' declares {shp[0]} rows, n_pe = {raw.n_pe}", **loc)
                    ok = False
                n_cols = raw.n_cols
                if n_cols is not None and shp[1] != n_cols + 1:
                    code = "PTR-SHORT" if shp[1] < n_cols + 1 else "PTR-LONG"
                    sink.error(code, f"array 'ptr' declares {shp[1]} pointers per PE, n_cols + 1 = {n_cols + 1} "
                               f"(n_in = {raw.shape[1]}{' + bias column' if raw.has_bias else ''})", **loc)
                    ok = False
                if raw.pointer_bits is not None and raw.pointer_bits > _PTR_DTYPES[d["dtype"]]:
                    sink.error("META-INCONSISTENT",
                               f"pointer_bits = {raw.pointer_bits} does not fit ptr dtype {d['dtype']}", **loc)
                arr = self.read_array(d, d["dtype"], tuple(shp), "array 'ptr'", **loc)
                if arr is not None:
                    raw.ptr = arr.astype(np.int64)
                    raw.ptr_shape_ok = ok

        # ---- codebook
        d = self._decl(decls, "codebook", loc, required=True)
        if d is not None:
            if d["dtype"] != _F32 or len(d["shape"]) != 1:
                sink.error("META-INCONSISTENT", f"array 'codebook' must be declared as 1-D {_F32}", **loc)
            else:
                if raw.code_bits is not None and d["shape"][0] != 1 << raw.code_bits:
                    sink.error("CODEBOOK-SIZE", f"codebook declares {d['shape'][0]} entries, code_bits = "
                               f"{raw.code_bits} needs {1 << raw.code_bits}", **loc)
                raw.codebook = self.read_array(d, _F32, tuple(d["shape"]), "array 'codebook'", **loc)

        # ---- entries: v/z, packed
        entry_arrays = {}
        for key in ("v", "z", "packed"):
            d = self._decl(decls, key, loc, required=False)
            if d is None:
                continue
            if d["dtype"] != _U8 or len(d["shape"]) != 1:
                sink.error("META-INCONSISTENT", f"array {key!r} must be declared as 1-D {_U8}", **loc)
                continue
            if n_entries is not None and d["shape"][0] != n_entries:
                sink.error("META-INCONSISTENT",
                           f"array {key!r} declares {d['shape'][0]} entries, n_entries = {n_entries}", **loc)
            if key == "packed" and raw.code_bits is not None and raw.index_bits is not None \
                    and raw.code_bits + raw.index_bits > 8:
                sink.error("META-INCONSISTENT", "a packed image needs code_bits + index_bits <= 8", **loc)
                continue
            arr = self.read_array(d, _U8, tuple(d["shape"]), f"array {key!r}", **loc)
            if arr is not None:
                entry_arrays[key] = arr
        if ("v" in decls) != ("z" in decls):
            sink.error("META-MISSING", "arrays 'v' and 'z' must be declared together", **loc)
        if "v" in entry_arrays and "z" in entry_arrays:
            if entry_arrays["v"].size != entry_arrays["z"].size:
                sink.error("META-INCONSISTENT", f"arrays 'v' and 'z' hold {entry_arrays['v'].size} and "
                           f"{entry_arrays['z'].size} entries", **loc)
            else:
                raw.v, raw.z = entry_arrays["v"], entry_arrays["z"]
        if "packed" in entry_arrays:
            raw.packed = entry_arrays["packed"]
            pl = lm.get("packed_layout", "v_high")
            if pl != "v_high":
                sink.error("META-INCONSISTENT", f"field 'packed_layout' must be \"v_high\", got {pl!r}", **loc)
                raw.packed = None

        # ---- huffman
        h = lm.get("huffman")
        if h is not None and major >= 2:
            raw.huffman = self._parse_huffman(raw, h, loc)
        if not any(k in decls for k in ("v", "packed")) and h is None:
            sink.error("META-MISSING", "no entry representation: declare 'v' and 'z', 'packed' or 'huffman'", **loc)

    def _parse_huffman(self, raw: _RawLayer, h, loc) -> Optional[dict]:
        sink = self.sink
        if not isinstance(h, dict):
            sink.error("META-MISSING", "field 'huffman' must be an object", **loc)
            return None
        out = {}
        for sym, bits in (("v", raw.code_bits), ("z", raw.index_bits)):
            hd = h.get(sym)
            if not isinstance(hd, dict):
                sink.error("META-MISSING", f"huffman stream {sym!r} is not declared", **loc)
                continue
            self._unknown(hd, _HUFF_FIELDS, f"huffman stream {sym!r}", **loc)
            vals = {}
            for key in ("alphabet_size", "n_symbols", "n_bits"):
                val = hd.get(key)
                if not _is_int(val) or val < 0 or val > 8 * MAX_MEMBER_BYTES:
                    sink.error("META-MISSING", f"huffman stream {sym!r}: field {key!r} must be a non-negative "
                               f"integer, got {val!r}", **loc)
                    vals = None
                    break
                vals[key] = val
            if vals is None:
                continue
            a = vals["alphabet_size"]
            if bits is not None and a != 1 << bits or not 1 <= a <= MAX_ALPHABET:
                sink.error("META-INCONSISTENT", f"huffman stream {sym!r}: alphabet_size {a}, the "
                           f"{sym} field has {bits} bits", **loc)
                continue
            ne = raw.declared.get("n_entries")
            if ne is not None and vals["n_symbols"] != ne:
                sink.error("META-INCONSISTENT", f"huffman stream {sym!r}: n_symbols {vals['n_symbols']} "
                           f"!= n_entries {ne}", **loc)
                continue
            lens = pay = None
            dl = self._decl(hd, "code_lengths", loc, required=True)
            if dl is not None:
                if dl["dtype"] != _U8 or dl["shape"] != [a]:
                    sink.error("META-INCONSISTENT",
                               f"huffman stream {sym!r}: code_lengths must be declared as {_U8} [{a}]", **loc)
                else:
                    lens = self.read_array(dl, _U8, (a,), f"huffman {sym!r} code_lengths", **loc)
            dp = self._decl(hd, "payload", loc, required=True)
            if dp is not None:
                if dp["dtype"] != _U8 or len(dp["shape"]) != 1:
                    sink.error("META-INCONSISTENT",
                               f"huffman stream {sym!r}: payload must be declared as 1-D {_U8}", **loc)
                else:
                    pay = self.read_array(dp, _U8, tuple(dp["shape"]), f"huffman {sym!r} payload", **loc)
            if lens is None or pay is None:
                continue
            out[sym] = HuffmanStream(a, lens, vals["n_symbols"], vals["n_bits"], pay.tobytes())
        return out if len(out) == 2 else None


# =========================================================================== reading: public
def _entries_from(raw: _RawLayer, path: str):
    """(v, z) of a parsed layer from v/z, else the packed image, else the Huffman streams."""
    if raw.v is not None:
        return raw.v, raw.z
    if raw.packed is not None:
        zmask = np.uint8((1 << raw.index_bits) - 1)
        return raw.packed >> np.uint8(raw.index_bits), raw.packed & zmask
    try:
        v = huffman_decode(raw.huffman["v"])
        z = huffman_decode(raw.huffman["z"])
    except EieFormatError as exc:
        raise EieFormatError(
            f"{path}: layer {raw.index} ({raw.name!r}): {exc}", code=exc.code or "HUFFMAN-DECODE"
        ) from None
    return v.astype(np.uint8), z.astype(np.uint8)


def load_container(path, *, check: str = "cheap") -> Container:
    """Read a ``.eie`` container with all its per-layer details.

    Parameters
    ----------
    path : str or os.PathLike
    check : {"cheap", "full"}, default "cheap"
        ``"cheap"``: the archive, manifest and size rules and the O(n_pe * n_cols)
        checks of :meth:`CompressedLayer.check_format` (every load).
        ``"full"``: also the O(nnz) checks of every layer. The complete rule
        set with severities is :func:`eiesim.format.validate.validate_container`.

    Returns
    -------
    Container

    Raises
    ------
    EieFormatError
        If the file is missing, not a ZIP archive, has no or a malformed
        manifest, another format name, a newer major version, a member whose
        size disagrees with its declaration (checked before decompressing),
        a CRC error, or layers that break a format rule. The message names the
        file, the layer and the rule; ``code`` is the rule's stable code.
    """
    if check not in ("cheap", "full"):
        raise EieFormatError(f"check: expected 'cheap' or 'full', got {check!r}", code="ARGUMENT")
    reader = _Reader(path)
    return _container_from(reader.parse(), reader.path, check)


def _container_from(parsed: _Parsed, p: str, check: str) -> Container:
    """The :class:`Container` of a parse that found no error (:func:`load_container` after parsing)."""
    out_layers = []
    for raw in parsed.layers:
        v, z = _entries_from(raw, p)
        try:
            layer = CompressedLayer(
                shape=raw.shape, n_pe=raw.n_pe, codebook=raw.codebook, ptr=raw.ptr, v=v, z=z,
                has_bias=raw.has_bias, code_bits=raw.code_bits, index_bits=raw.index_bits, name=raw.name,
            )
            if raw.pointer_bits is not None and layer.ptr.size and int(layer.ptr.max()) >> raw.pointer_bits:
                raise EieFormatError(
                    f"ptr: pointer {int(layer.ptr.max())} does not fit pointer_bits = {raw.pointer_bits}",
                    code="PTR-WIDTH",
                )
            if check == "full":
                layer.check_format(full=True)
        except EieFormatError as exc:
            raise EieFormatError(f"{p}: layer {raw.index} ({raw.name!r}): {exc}", code=exc.code) from None
        out_layers.append(
            ContainerLayer(layer=layer, pointer_bits=raw.pointer_bits, packed=raw.packed, huffman=raw.huffman,
                           compression=raw.compression, kind=raw.kind)
        )
    try:
        network = Network(tuple(cl.layer for cl in out_layers), activation=parsed.activation,
                          metadata=parsed.metadata, kinds=tuple(cl.kind for cl in out_layers))
    except EieFormatError as exc:
        raise EieFormatError(f"{p}: {exc}", code=exc.code) from None
    return Container(network=network, layers=tuple(out_layers), version=parsed.version,
                     fixed_point=parsed.fixed_point, manifest=parsed.manifest)


def load_network(path, *, check: str = "cheap") -> Network:
    """Read a ``.eie`` container (version 1 or 2.x) as a :class:`Network`.

    Parameters
    ----------
    path : str or os.PathLike
    check : {"cheap", "full"}, default "cheap"
        See :func:`load_container`.

    Returns
    -------
    Network

    Raises
    ------
    EieFormatError
        See :func:`load_container`.
    """
    return load_container(path, check=check).network
