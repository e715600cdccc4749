"""Read the weights of a trained model from ``.npz``, safetensors or a PyTorch ``.pth`` state dict.

Every reader returns an ordered mapping ``name -> numpy.ndarray`` in **file
order**, and none of them can run code from the file:

* ``.npz`` -- :func:`eiesim._io.load_npz_arrays` (no pickle; every header checked against
  its member's size before reading; member order of the archive);
* ``.safetensors`` -- :func:`safetensors.numpy.load_file` (the format holds no code), in
  the order of the tensors' data in the file (safetensors writes them sorted by dtype
  alignment, then name);
* ``.pth`` / ``.pt`` -- PyTorch's zip serialisation (``torch.save`` since
  PyTorch 1.6: ``<archive>/data.pkl`` plus one raw little-endian file per
  storage, ``<archive>/data/<key>``), read **without torch** by
  :class:`_StateDictUnpickler`.  A pickle is a program: the standard
  unpickler calls whatever importable function the file names (``os.system``
  included).  Ours resolves exactly these names and refuses every other one
  before anything is looked up or called:

  - ``collections.OrderedDict`` (the state dict itself);
  - ``torch._utils._rebuild_tensor_v2`` and ``torch._utils._rebuild_parameter``,
    replaced by NumPy emulations that only slice a storage we read;
  - the storage classes ``torch.FloatStorage``, ``torch.DoubleStorage``,
    ``torch.HalfStorage``, ``torch.BFloat16Storage``, ``torch.LongStorage``,
    ``torch.IntStorage``, ``torch.ShortStorage``, ``torch.CharStorage``,
    ``torch.ByteStorage``, ``torch.BoolStorage`` -- by name only, as
    dtype tokens (nothing of torch is imported);

  persistent ids must be ``('storage', <storage class>, key, location, numel)``
  naming an existing ``data/<key>`` member of exactly ``numel`` elements.
  Before a tensor is allocated its view is checked: no storage element read
  twice (zero or overlapping strides refused), inside its storage, at most
  :data:`MAX_TENSOR_BYTES`, and all tensors together at most
  :data:`MAX_OUTPUT_PER_FILE_BYTE` times the file's size. Every member is read
  through :func:`eiesim._io.read_zip_member` (the one ZIP member reader).
  The legacy (pre-1.6, non-zip) format is refused with a message.

:func:`select_layers` picks the fully-connected layers: by default every 2-D
floating-point array in file order, or the names given; each weight
``<prefix>.weight`` (or any name ``<prefix>.<x>``) is matched with the bias
``<prefix>.bias`` when one exists.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from eiesim._io import refuse_symlink_loop
from eiesim.errors import EieInputError

__all__ = ["load_model", "load_npz", "load_safetensors", "load_torch_state_dict", "select_layers"]

_MAX_PICKLE_BYTES = 64 * 1024 * 1024

#: torch storage class name -> NumPy dtype (little-endian); bfloat16 is widened to float32.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # raw bits; converted below
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def _err(path, msg: str) -> EieInputError:
    return EieInputError(f"{os.fspath(path)}: {msg}")


# --------------------------------------------------------------------------- npz / safetensors


def load_npz(path) -> Dict[str, np.ndarray]:
    """Arrays of a ``.npz`` file in archive order (``allow_pickle=False``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` archive.

    Returns
    -------
    dict of str to numpy.ndarray
        Ordered by archive member; dtypes and shapes as stored.

    Raises
    ------
    EieInputError
        Missing file, not a regular file (a FIFO is refused before it is
        opened), not an npz archive, an object array (refused: it would need
        pickle), or a member whose header declares more (or fewer) bytes than
        it holds (checked before anything is allocated).
    """
    from eiesim._io import NPY_MAGIC, load_npz_arrays, open_regular_file

    with open_regular_file(path, error=EieInputError, what=".npz model file") as fh:
        if fh.read(len(NPY_MAGIC)) == NPY_MAGIC:
            raise _err(path, "is a single .npy array, not an .npz archive of named arrays")
    arrays = load_npz_arrays(path, error=EieInputError)
    if set(arrays) >= {"format", "shape", "data"} and set(arrays) <= _SPARSE_KEYS:
        name = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "weight"
        return collections.OrderedDict([(name, _dense_from_scipy_npz(arrays, path))])
    return arrays


#: Member names of a :func:`scipy.sparse.save_npz` file (CSR/CSC: data, indices, indptr; COO: data, row, col;
#: ``_is_array`` for sparse arrays rather than matrices).
_SPARSE_KEYS = frozenset({"format", "shape", "data", "indices", "indptr", "row", "col", "_is_array"})
#: Largest dense matrix a sparse ``.npz`` is expanded to (elements; 1 GiB of float32): compress works dense.
MAX_DENSE_ELEMENTS = 1 << 28


def _dense_from_scipy_npz(arrays, path) -> np.ndarray:
    """The dense float matrix of a :func:`scipy.sparse.save_npz` archive (CSR, CSC or COO).

    Indices are sorted (scipy writes them unsorted after some operations);
    duplicate entries -- which scipy would silently sum -- are refused, naming
    the first (row, column). The shape is checked against
    :data:`MAX_DENSE_ELEMENTS` before anything is allocated.

    Raises
    ------
    EieInputError
        Unknown sparse format, a non-float ``data``, a malformed structure
        (scipy's full ``check_format``), a duplicate entry, or too large a shape.
    """
    import scipy.sparse as sp

    fmt = arrays["format"]
    fmt = fmt.item().decode("ascii", "replace") if fmt.dtype.kind == "S" else str(fmt.item()) \
        if fmt.ndim == 0 and fmt.dtype.kind in "SU" else None
    if fmt not in ("csr", "csc", "coo"):
        raise _err(path, f"scipy sparse .npz of format {fmt!r}: only csr, csc and coo are read")
    shape = arrays["shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or int(shape.min()) < 1:
        raise _err(path, f"scipy sparse .npz: 'shape' must be two positive integers, got {shape.tolist()}")
    n_out, n_in = (int(x) for x in shape)
    if n_out * n_in > MAX_DENSE_ELEMENTS:
        raise _err(path, f"scipy sparse .npz of shape {n_out} x {n_in}: more than {MAX_DENSE_ELEMENTS:,} weights, "
                   "too large to compress densely")
    data = arrays["data"]
    if data.ndim != 1 or data.dtype.kind != "f":
        raise _err(path, f"scipy sparse .npz: 'data' must be 1-D floating point, got {data.dtype} {data.shape}")
    need = ("indices", "indptr") if fmt != "coo" else ("row", "col")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise _err(path, f"scipy sparse .npz ({fmt}) lacks {', '.join(missing)}")
    try:
        if fmt == "coo":
            m = sp.coo_array((data, (arrays["row"], arrays["col"])), shape=(n_out, n_in))
            rc = np.stack([np.asarray(m.row, np.int64), np.asarray(m.col, np.int64)], axis=1)
            if rc.size and (rc.min() < 0 or (rc[:, 0] >= n_out).any() or (rc[:, 1] >= n_in).any()):
                raise ValueError("row or column index out of range")
            order = np.lexsort((rc[:, 1], rc[:, 0]))
            rc = rc[order]
            dup = np.flatnonzero(np.all(rc[1:] == rc[:-1], axis=1))
            if dup.size:
                r, c = rc[dup[0]]
                raise _err(path, f"scipy sparse .npz: entry ({r}, {c}) is stored {int(np.sum(np.all(rc == rc[dup[0]], axis=1)))} "
                           f"times ({dup.size} duplicate(s) in all); scipy would sum them: give each weight once")
            dense = np.zeros((n_out, n_in), dtype=data.dtype)
            dense[rc[:, 0], rc[:, 1]] = data[order]
            return dense
        cls = sp.csr_array if fmt == "csr" else sp.csc_array
        m = cls((data, arrays["indices"], arrays["indptr"]), shape=(n_out, n_in))
        m.check_format(full_check=True)
        m.sort_indices()
        ind, ptr = np.asarray(m.indices, np.int64), np.asarray(m.indptr, np.int64)
        same = np.flatnonzero(ind[1:] == ind[:-1])
        same = same[np.searchsorted(ptr, same + 1, side="right") - 1 == np.searchsorted(ptr, same, side="right") - 1]
        if same.size:
            i = int(same[0])
            major = int(np.searchsorted(ptr, i, side="right") - 1)
            r, c = (major, int(ind[i])) if fmt == "csr" else (int(ind[i]), major)
            raise _err(path, f"scipy sparse .npz: entry ({r}, {c}) is stored more than once ({same.size} duplicate(s) "
                       "in all); scipy would sum them: give each weight once")
        return m.toarray()
    except EieInputError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise _err(path, f"scipy sparse .npz ({fmt}) is malformed: {exc}") from None


def load_safetensors(path) -> Dict[str, np.ndarray]:
    """Tensors of a safetensors file in data order (:func:`safetensors.numpy.load_file`).

    Parameters
    ----------
    path : str or os.PathLike
        The safetensors file (header length at most 100 MiB).

    Returns
    -------
    dict of str to numpy.ndarray
        Ordered by the tensors' data offsets; dtypes and shapes as stored.

    Raises
    ------
    EieInputError
        Missing or not a regular file (a FIFO is refused before it is opened),
        ``safetensors`` not installed, a malformed file, or a tensor whose
        declared shape and dtype do not need exactly its ``data_offsets``
        span inside the file (checked before anything is read).
    """
    try:
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - a declared dependency
        raise _err(path, "reading safetensors needs the 'safetensors' package (pip install safetensors)") from None
    from eiesim._io import open_regular_file

    try:
        with open_regular_file(path, error=EieInputError, what="safetensors file") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= n <= 100 * 1024 * 1024:
                raise _err(path, "not a safetensors file (bad header length)")
            if 8 + n > size:
                raise _err(path, f"header length field declares {n} bytes but {size - 8} bytes follow")
            header = json.loads(fh.read(n).decode("utf-8"))
        _check_safetensors_header(path, header, size - 8 - n)
        tensors = load_file(os.fspath(path))
    except EieInputError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError, plus OSError / ValueError
        raise _err(path, f"cannot read as safetensors ({type(exc).__name__}: {exc})") from None
    order = sorted((k for k in header if k != "__metadata__"),
                   key=lambda k: (header[k].get("data_offsets", [0])[0], k))
    return collections.OrderedDict((k, np.asarray(tensors[k])) for k in order if k in tensors)


#: Bytes per element of the safetensors dtypes.
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


def _check_safetensors_header(path, header, data_bytes: int) -> None:
    """Every tensor's declared shape must need exactly its ``data_offsets`` span, inside the file."""
    if not isinstance(header, dict):
        raise _err(path, "safetensors header is not a JSON object")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list) and all(_is_int(d) and d >= 0 for d in entry["shape"])
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(_is_int(o) for o in entry["data_offsets"])):
            raise _err(path, f"tensor {name!r}: header entry needs 'dtype', a 'shape' of sizes and two "
                             "integer 'data_offsets'")
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end or end > data_bytes:
            raise _err(path, f"tensor {name!r}: data_offsets [{begin}, {end}] lie outside the {data_bytes} "
                             "bytes of data in the file")
        item = _SAFETENSORS_ITEMSIZE.get(entry["dtype"])
        if item is not None:
            need = item
            for d in entry["shape"]:
                need *= d
            if need != end - begin:
                raise _err(path, f"tensor {name!r}: header declares shape {tuple(entry['shape'])} of "
                                 f"{entry['dtype']} ({need} bytes) but its data_offsets span {end - begin} bytes")


# --------------------------------------------------------------------------- torch .pth without torch


class _StorageType:
    """Stand-in for a ``torch.<X>Storage`` class: only its dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage read from ``data/<key>``: a flat NumPy array."""

    __slots__ = ("array", "type_name")

    def __init__(self, array: np.ndarray, type_name: str) -> None:
        self.array = array
        self.type_name = type_name


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


#: Largest tensor the ``.pth`` reader materialises, in bytes (4 GiB: twice the largest EIE
#: benchmark matrix, VGG-16 fc6 at 4096 x 25088 float32 = 411 MB, times ten; eiesim's own limit).
MAX_TENSOR_BYTES = 1 << 32
#: The ``.pth`` reader materialises at most this many bytes per byte of the file, over all tensors
#: (a tensor never reads a storage element twice, so one view of every storage costs at most the
#: file; the slack covers bfloat16 widened to float32 and a few tied copies).
MAX_OUTPUT_PER_FILE_BYTE = 4
#: Bytes allowed beyond :data:`MAX_OUTPUT_PER_FILE_BYTE` x file size (small files, empty tensors).
_OUTPUT_SLACK_BYTES = 1 << 20


def _check_view(size, stride, storage_offset, n_storage, itemsize) -> int:
    """Refuse a strided view that expands its storage or leaves it; return its element count.

    Checked on Python integers before anything is allocated: every dimension
    of more than one element needs a positive stride, and the dimensions,
    taken by increasing stride, must each step past everything the smaller
    ones span (so no storage element is read twice: zero and overlapping
    strides are refused); the last element read must lie in the storage.
    The element count is then at most the storage's.
    """
    numel = 1
    for n in size:
        numel *= n
    if numel == 0:
        return 0
    last = storage_offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= n_storage:
        raise EieInputError(
            f"torch pickle: tensor of size {size} stride {stride} at offset {storage_offset} "
            f"reads element {last} of a storage of {n_storage}")
    span = 0  # elements spanned by the dimensions of smaller stride, minus one
    for st, n in sorted((st, n) for n, st in zip(size, stride) if n > 1):
        if st <= span:
            raise EieInputError(
                f"torch pickle: tensor of size {size} with stride {stride} reads storage elements more than "
                "once (zero or overlapping strides would expand the storage); refused before allocating")
        span += (n - 1) * st
    if numel * itemsize > MAX_TENSOR_BYTES:
        raise EieInputError(f"torch pickle: tensor of size {size} needs {numel * itemsize} bytes "
                            f"(limit {MAX_TENSOR_BYTES}); refused before allocating")
    return numel


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None, *, budget=None):
    """NumPy emulation of ``torch._utils._rebuild_tensor_v2``: a bounds-checked strided copy.

    Parameters
    ----------
    budget : list of int, optional
        ``[bytes left]`` for the file's tensors (see :class:`_StateDictUnpickler`);
        this tensor's bytes are taken from it before it is allocated.

    Raises
    ------
    EieInputError
        Not a storage; a bad offset, size or stride; a view that reads a
        storage element twice or leaves the storage (:func:`_check_view`);
        more than :data:`MAX_TENSOR_BYTES` or than the budget left.
    """
    if not isinstance(storage, _Storage):
        raise EieInputError("torch pickle: a tensor is built from something that is not a storage")
    if not (_is_int(storage_offset) and storage_offset >= 0):
        raise EieInputError(f"torch pickle: bad storage offset {storage_offset!r}")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= 64
            and all(_is_int(s) and s >= 0 for s in size) and all(_is_int(s) and s >= 0 for s in stride)):
        raise EieInputError(f"torch pickle: bad tensor size {size!r:.200} / stride {stride!r:.200}")
    flat = storage.array
    out_item = 4 if storage.type_name == "BFloat16Storage" else flat.dtype.itemsize
    numel = _check_view(size, stride, storage_offset, flat.size, out_item)
    if budget is not None:
        if numel * out_item > budget[0]:
            raise EieInputError(
                f"torch pickle: tensor of size {size} needs {numel * out_item} bytes, more than the "
                f"{budget[0]} left of the file's budget ({MAX_OUTPUT_PER_FILE_BYTE} x its size); "
                "refused before allocating")
        budget[0] -= numel * out_item
    if numel == 0:
        arr = np.zeros(size, dtype=flat.dtype)
    else:
        item = flat.dtype.itemsize
        arr = np.lib.stride_tricks.as_strided(
            flat[storage_offset:], shape=size, strides=tuple(st * item for st in stride), writeable=False
        ).copy()
    if storage.type_name == "BFloat16Storage":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """NumPy emulation of ``torch._utils._rebuild_parameter``: the tensor itself."""
    if not isinstance(data, np.ndarray):
        raise EieInputError("torch pickle: a parameter wraps something that is not a tensor")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
for _name in _STORAGE_DTYPES:
    _ALLOWED[("torch", _name)] = _StorageType(_name)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler of a torch ``data.pkl`` that can only build tensors and plain containers.

    ``find_class`` is the one place where a pickle turns a name into an
    object; every name outside the allow-list of the module docstring raises
    :class:`~eiesim.errors.EieInputError` before it is imported or called.
    """

    def __init__(self, fh, zf: zipfile.ZipFile, prefix: str, path: str, byteorder: str,
                 file_bytes: int = 0) -> None:
        super().__init__(fh, encoding="utf-8")
        self._zf = zf
        self._prefix = prefix
        self._path = path
        self._byteorder = byteorder
        self._storages: Dict[str, _Storage] = {}
        # bytes the file's tensors may take in all (MAX_OUTPUT_PER_FILE_BYTE x file size)
        self._budget = [MAX_OUTPUT_PER_FILE_BYTE * file_bytes + _OUTPUT_SLACK_BYTES]

    def _rebuild(self, *args):
        try:
            return _rebuild_tensor_v2(*args, budget=self._budget)
        except EieInputError as exc:
            raise _err(self._path, str(exc)) from None

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise EieInputError(
                f"{self._path}: the pickle refers to {module}.{name}; only tensors and plain "
                "containers are allowed (collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                "torch._utils._rebuild_parameter, torch.<Type>Storage) -- refusing to load it"
            ) from None

    def persistent_load(self, pid):  # noqa: D401 - pickle API
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[3], str) and _is_int(pid[4]) and pid[4] >= 0):
            raise EieInputError(f"{self._path}: unsupported persistent id in the pickle: {pid!r:.200}")
        stype, key, numel = pid[1], pid[2], pid[4]
        if key in self._storages:
            return self._storages[key]
        if not key.isalnum():
            raise EieInputError(f"{self._path}: storage key {key!r} is not a plain name")
        member = f"{self._prefix}data/{key}"
        try:
            info = self._zf.getinfo(member)
        except KeyError:
            raise EieInputError(f"{self._path}: storage member {member!r} is missing") from None
        dt = stype.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        need = numel * dt.itemsize
        if info.file_size != need:
            raise EieInputError(
                f"{self._path}: storage {member!r} holds {info.file_size} bytes; {numel} elements of "
                f"{stype.name} need {need}"
            )
        raw = _read_member(self._zf, member, self._path)
        arr = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True)
        st = _Storage(arr, stype.name)
        self._storages[key] = st
        return st


def _flatten_state(obj, path: str, prefix: str = "") -> "collections.OrderedDict[str, np.ndarray]":
    """Tensors of a (nested) state dict, names joined with '.'."""
    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise EieInputError(f"{path}: state dict key {k!r} is not a string")
            name = f"{prefix}{k}"
            if isinstance(v, np.ndarray):
                out[name] = v
            elif isinstance(v, dict):
                out.update(_flatten_state(v, path, name + "."))
            # other values (ints such as num_batches_tracked are tensors; plain numbers/strings) skipped
    elif isinstance(obj, np.ndarray):
        out[prefix.rstrip(".") or "tensor"] = obj
    else:
        raise EieInputError(f"{path}: the pickle holds a {type(obj).__name__}, not a state dict")
    return out


def load_torch_state_dict(path) -> Dict[str, np.ndarray]:
    """Tensors of a PyTorch zip checkpoint (``torch.save(model.state_dict(), path)``), without torch.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pth``/``.pt`` file in PyTorch's zip format (PyTorch >= 1.6).

    Returns
    -------
    collections.OrderedDict of str to numpy.ndarray
        In state-dict order; nested dicts (e.g. ``{"state_dict": {...}}``)
        are flattened with ``.``-joined names.  bfloat16 tensors are widened
        to float32; other dtypes kept.

    Raises
    ------
    EieInputError
        Missing or not a regular file (a FIFO is refused before it is opened);
        the legacy non-zip format; no single ``*/data.pkl``; a member whose
        declared size does not fit the file;
        a pickle naming anything but the allowed tensor/container
        constructors (nothing is called then); a storage that is missing,
        of the wrong size, or read out of bounds; a tensor view reading a
        storage element twice or larger than the limits (refused before
        allocating); a damaged archive or member (zipfile's and zlib's
        errors, an unsupported ZIP version included).
    """
    from eiesim._io import open_regular_file

    path = os.fspath(path)
    with open_regular_file(path, error=EieInputError, what="PyTorch checkpoint") as fh:
        return _load_torch_zip(fh, path)


def _read_member(zf: zipfile.ZipFile, name: str, path: str, max_bytes: Optional[int] = None) -> bytes:
    """A member's bytes through :func:`eiesim._io.read_zip_member` (sizes vetted, CRC checked)."""
    from eiesim._io import read_zip_member

    return read_zip_member(zf, zf.getinfo(name), max_bytes=max_bytes, path=path, error=EieInputError)


def _load_torch_zip(fh, path: str) -> Dict[str, np.ndarray]:
    from eiesim._io import check_zip_members, open_zip

    if not zipfile.is_zipfile(fh):
        fh.seek(0)
        head = fh.read(2)
        if head[:1] == b"\x80":
            raise _err(path, "legacy (pre-1.6, non-zip) PyTorch serialisation is not supported; "
                             "re-save it with torch.save(state_dict, path) from PyTorch >= 1.6")
        raise _err(path, "not a PyTorch zip checkpoint")
    fh.seek(0)
    file_bytes = os.fstat(fh.fileno()).st_size
    try:
        with open_zip(fh, path, error=EieInputError, what="PyTorch zip checkpoint") as zf:
            check_zip_members(zf, path=path, error=EieInputError)
            pkls = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            pkls = [n for n in pkls if n.count("/") <= 1]
            if len(pkls) != 1:
                raise _err(path, f"expected one '<archive>/data.pkl' member, found {len(pkls)}")
            member = pkls[0]
            prefix = member[: -len("data.pkl")]
            byteorder = "little"
            if f"{prefix}byteorder" in zf.namelist():
                byteorder = _read_member(zf, f"{prefix}byteorder", path, 64).decode("ascii", "replace").strip()
                if byteorder not in ("little", "big"):
                    raise _err(path, f"unknown byteorder {byteorder!r}")
            if zf.getinfo(member).file_size > _MAX_PICKLE_BYTES:
                raise _err(path, f"{member} is larger than {_MAX_PICKLE_BYTES} bytes")
            data = _read_member(zf, member, path)
            unpickler = _StateDictUnpickler(io.BytesIO(data), zf, prefix, path, byteorder, file_bytes)
            obj = unpickler.load()
    except EieInputError:
        raise
    except RecursionError:
        raise _err(path, "cannot read the PyTorch checkpoint (the pickle nests too deeply)") from None
    except (zipfile.BadZipFile, OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError, struct.error, NotImplementedError) as exc:
        raise _err(path, f"cannot read the PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    return _flatten_state(obj, path)


# --------------------------------------------------------------------------- dispatch and selection


def load_model(path) -> Dict[str, np.ndarray]:
    """Read a model file by its extension (``.npz``, ``.safetensors``, ``.pth``/``.pt``/``.bin``).

    Parameters
    ----------
    path : str or os.PathLike
        The model file; ``.ckpt`` is read as a PyTorch state dict too.

    Returns
    -------
    collections.OrderedDict of str to numpy.ndarray
        In file order.

    Raises
    ------
    EieInputError
        Unknown extension, a file holding no tensors at all (an empty model),
        or the reader's errors.
    """
    p = os.fspath(path)
    refuse_symlink_loop(p, error=EieInputError)
    low = p.lower()
    if low.endswith(".npz"):
        tensors = load_npz(p)
    elif low.endswith(".safetensors"):
        tensors = load_safetensors(p)
    elif low.endswith((".pth", ".pt", ".bin", ".ckpt")):
        tensors = load_torch_state_dict(p)
    else:
        raise _err(p, "unknown model format: expected .npz, .safetensors or a PyTorch .pth/.pt state dict")
    if not tensors:
        raise _err(p, "holds no tensors: an empty model (a network without layers) is refused")
    return tensors


def select_layers(
    tensors: Dict[str, np.ndarray], names: Optional[Sequence[str]] = None, source: str = "model"
) -> List[Tuple[str, np.ndarray, Optional[np.ndarray], Optional[str]]]:
    """Pick the weight matrices that form the layers, and their biases.

    Parameters
    ----------
    tensors : mapping of str to numpy.ndarray
        As returned by :func:`load_model`, in file order.
    names : sequence of str, optional
        Weight names in layer order.  Default: every 2-D floating-point
        array, in file order.
    source : str
        File name used in error messages.

    Returns
    -------
    list of (name, weight, bias, bias_name)
        ``weight`` float ``(n_out, n_in)`` as stored (rows = outputs, the
        ``nn.Linear`` convention); ``bias`` the 1-D float array named
        ``<prefix>.bias`` where the weight is ``<prefix>.<anything>`` and its
        length is ``n_out``, else None.

    Raises
    ------
    EieInputError
        A named array is missing, not 2-D or not floating point; no 2-D
        float array at all; a ``<prefix>.bias`` of the wrong shape.
    """
    if names is None:
        chosen = [k for k, v in tensors.items() if v.ndim == 2 and v.dtype.kind == "f"]
        if not chosen:
            raise EieInputError(f"{source}: no 2-D floating-point array (weight matrix) in the file")
    else:
        chosen = list(names)
        for k in chosen:
            if k not in tensors:
                raise EieInputError(f"{source}: no array named {k!r} (has {', '.join(list(tensors)[:20])})")
            v = tensors[k]
            if v.ndim != 2 or v.dtype.kind != "f":
                raise EieInputError(f"{source}: {k!r} is {v.dtype} {v.shape}, not a 2-D float matrix")
    from ..compress.reference import paired_bias

    return [(k, tensors[k], *paired_bias(tensors, k, source)) for k in chosen]
