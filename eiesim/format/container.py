"""The ``.eie`` container: compressed layers and networks on disk.

A ``.eie`` file is a ZIP archive (CRC-checked by :mod:`zipfile`) holding

* ``manifest.json`` — format name and version, the network's layers in order
  with every shape, N, bit widths, bias handling and the declared shape and
  dtype of every array, plus free-form provenance metadata;
* one ``.npy`` member per array (``layers/<i>/ptr.npy``, ``v.npy``, ``z.npy``,
  ``codebook.npy``), little-endian, loaded with ``allow_pickle=False``.

Reading is bounded: the manifest is size-limited, and every member's declared
shape and dtype are checked against the byte count stored in the ZIP directory
before anything is allocated. Writing is atomic (temporary file in the same
folder, then :func:`os.replace`).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import numpy as np

from .._io import write_atomic_with
from ..errors import EieFormatError
from .layout import CompressedLayer

__all__ = ["Network", "save_network", "load_network", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "eiesim-container"
#: Version written by this eiesim. A reader refuses a newer major version.
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_ARRAYS = {
    # name: (dtype, ndim)
    "ptr": ("<i8", 2),
    "v": ("|u1", 1),
    "z": ("|u1", 1),
    "codebook": ("<f4", 1),
}
_ACTIVATIONS = ("relu", "none")


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward stack of compressed fully-connected layers.

    Attributes
    ----------
    layers : tuple of CompressedLayer
        In order; ``layers[k].n_out == layers[k + 1].n_in``.
    activation : {"relu", "none"}
        Non-linearity applied between layers (not after the last).
    metadata : dict
        Provenance: source model, data set, compression settings (JSON-serialisable).

    Raises
    ------
    EieFormatError
        If the layer list is empty, or consecutive shapes do not chain.
    """

    layers: Tuple[CompressedLayer, ...]
    activation: str = "relu"
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise EieFormatError("network: needs at least one layer")
        for k in range(len(layers) - 1):
            if layers[k].n_out != layers[k + 1].n_in:
                raise EieFormatError(
                    f"network: layer {k} ({layers[k].name!r}) has {layers[k].n_out} outputs but layer "
                    f"{k + 1} ({layers[k + 1].name!r}) has {layers[k + 1].n_in} inputs"
                )
        if self.activation not in _ACTIVATIONS:
            raise EieFormatError(f"network: activation {self.activation!r} is not one of {_ACTIVATIONS}")

    @property
    def n_in(self) -> int:
        """Inputs of the first layer."""
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        """Outputs of the last layer."""
        return self.layers[-1].n_out


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def save_network(path, network, metadata: Dict[str, Any] | None = None) -> None:
    """Write a network (or a list of layers) to a ``.eie`` container, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; an existing file is replaced only once the new one is complete.
    network : Network or sequence of CompressedLayer
    metadata : dict, optional
        Provenance merged over ``network.metadata``; must be JSON-serialisable.

    Raises
    ------
    EieFormatError
        If the metadata cannot be written as JSON or the folder cannot be written.
    """
    if not isinstance(network, Network):
        network = Network(tuple(network))
    meta = dict(network.metadata)
    meta.update(metadata or {})
    layers_meta = []
    members = []
    for i, layer in enumerate(network.layers):
        arrays = {"ptr": layer.ptr, "v": layer.v, "z": layer.z, "codebook": layer.codebook}
        decl = {}
        for name, arr in arrays.items():
            dtype, _ = _ARRAYS[name]
            arr = np.ascontiguousarray(arr, dtype=np.dtype(dtype))
            member = f"layers/{i}/{name}.npy"
            members.append((member, _npy_bytes(arr)))
            decl[name] = {"file": member, "dtype": dtype, "shape": list(arr.shape)}
        layers_meta.append(
            {
                "name": layer.name,
                "shape": [layer.n_out, layer.n_in],
                "n_pe": layer.n_pe,
                "code_bits": layer.code_bits,
                "index_bits": layer.index_bits,
                "has_bias": layer.has_bias,
                "bias_handling": "column quantised with the weight codebook (input 1.0)"
                if layer.has_bias
                else "none",
                "codebook_format": "float32",
                "n_entries": layer.n_entries,
                "n_fillers": layer.n_fillers,
                "arrays": decl,
            }
        )
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": "network",
        "activation": network.activation,
        "layers": layers_meta,
        "metadata": meta,
    }
    try:
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise EieFormatError(f"{os.fspath(path)}: metadata is not JSON-serialisable ({exc})") from None

    def _write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(_MANIFEST, manifest_bytes)
            for member, data in members:
                zf.writestr(member, data)

    write_atomic_with(path, _write)


def _read_member(zf: zipfile.ZipFile, path: str, decl: dict, where: str) -> np.ndarray:
    if not isinstance(decl, dict):
        raise EieFormatError(f"{path}: {where}: array declaration must be an object")
    member = decl.get("file")
    dtype = decl.get("dtype")
    shape = decl.get("shape")
    if not isinstance(member, str) or not isinstance(shape, list) or not isinstance(dtype, str):
        raise EieFormatError(f"{path}: {where}: declaration needs 'file', 'dtype' and 'shape'")
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape):
        raise EieFormatError(f"{path}: {where}: declared shape {shape!r} is not a list of sizes")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise EieFormatError(f"{path}: {where}: unknown dtype {dtype!r}") from None
    if dt.kind not in "iuf" or dt.hasobject:
        raise EieFormatError(f"{path}: {where}: dtype {dtype!r} is not a plain number type")
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise EieFormatError(f"{path}: {where}: member {member!r} is missing") from None
    payload = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    # .npy = magic + header (<= 64 KiB) + payload; check before decompressing anything.
    if not payload <= info.file_size <= payload + 65536:
        raise EieFormatError(
            f"{path}: {where}: member {member!r} holds {info.file_size} bytes, the declared "
            f"shape {shape} of {dtype} needs {payload} plus a header"
        )
    try:
        raw = zf.read(member)
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise EieFormatError(f"{path}: {where}: member {member!r} is not a valid .npy array ({exc})") from None
    if arr.dtype != dt or list(arr.shape) != list(shape):
        raise EieFormatError(
            f"{path}: {where}: member {member!r} is {arr.dtype.str}{list(arr.shape)}, "
            f"declared {dtype}{shape}"
        )
    return arr


def load_network(path) -> Network:
    """Read a ``.eie`` container.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network

    Raises
    ------
    EieFormatError
        If the file is missing, not a ZIP archive, has no or a malformed
        manifest, a newer format version, a member whose size disagrees with
        its declaration, or layers that break a format rule. The message names
        the file and the rule.
    """
    path = os.fspath(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise EieFormatError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise EieFormatError(f"{path}: not an eiesim container (not a ZIP archive: {exc})") from None
    with zf:
        try:
            info = zf.getinfo(_MANIFEST)
        except KeyError:
            raise EieFormatError(f"{path}: no {_MANIFEST} in the archive") from None
        if info.file_size > _MAX_MANIFEST_BYTES:
            raise EieFormatError(f"{path}: {_MANIFEST} is {info.file_size} bytes (limit {_MAX_MANIFEST_BYTES})")
        try:
            manifest = json.loads(zf.read(_MANIFEST).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
            raise EieFormatError(f"{path}: {_MANIFEST} is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise EieFormatError(f"{path}: manifest does not declare format {FORMAT_NAME!r}")
        version = manifest.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise EieFormatError(f"{path}: manifest field 'version' must be a positive integer")
        if version > FORMAT_VERSION:
            raise EieFormatError(
                f"{path}: container version {version} is newer than this eiesim reads ({FORMAT_VERSION})"
            )
        layers_meta = manifest.get("layers")
        if not isinstance(layers_meta, list) or not layers_meta:
            raise EieFormatError(f"{path}: manifest field 'layers' must be a non-empty list")
        layers = []
        for i, lm in enumerate(layers_meta):
            where = f"layer {i}"
            if not isinstance(lm, dict):
                raise EieFormatError(f"{path}: {where}: must be an object")
            arrays_decl = lm.get("arrays")
            if not isinstance(arrays_decl, dict):
                raise EieFormatError(f"{path}: {where}: field 'arrays' missing")
            arrays = {}
            for name, (dtype, ndim) in _ARRAYS.items():
                decl = arrays_decl.get(name)
                if not isinstance(decl, dict):
                    raise EieFormatError(f"{path}: {where}: array {name!r} not declared")
                if decl.get("dtype") != dtype or not isinstance(decl.get("shape"), list) or len(decl["shape"]) != ndim:
                    raise EieFormatError(
                        f"{path}: {where}: array {name!r} must be declared as {ndim}-D {dtype}"
                    )
                arrays[name] = _read_member(zf, path, decl, f"{where} array {name!r}")
            shape = lm.get("shape")
            if not (isinstance(shape, list) and len(shape) == 2):
                raise EieFormatError(f"{path}: {where}: field 'shape' must be [n_out, n_in]")
            try:
                layer = CompressedLayer(
                    shape=tuple(shape),
                    n_pe=lm.get("n_pe"),
                    codebook=arrays["codebook"],
                    ptr=arrays["ptr"],
                    v=arrays["v"],
                    z=arrays["z"],
                    has_bias=lm.get("has_bias", False),
                    code_bits=lm.get("code_bits"),
                    index_bits=lm.get("index_bits"),
                    name=lm.get("name", f"layer{i}") or f"layer{i}",
                )
            except EieFormatError as exc:
                raise EieFormatError(f"{path}: {where}: {exc}") from None
            layers.append(layer)
        activation = manifest.get("activation", "relu")
        metadata = manifest.get("metadata", {})
        if not isinstance(metadata, dict):
            raise EieFormatError(f"{path}: manifest field 'metadata' must be an object")
        try:
            return Network(tuple(layers), activation=activation, metadata=metadata)
        except EieFormatError as exc:
            raise EieFormatError(f"{path}: {exc}") from None

