#!/usr/bin/env python3
"""Seeded mutation fuzzing of every eiesim reader, through the API and the command line.

Each reader gets a few *seed* inputs -- the real files of ``../shared/data`` where they exist
(the authors' AlexNet FC8 dump, the Deep Compression SqueezeNet ``.net``) and small files written
here with eiesim's own writers -- and every fuzz input is one seed changed by a seeded
mutation: bit flips, byte sets, integer-field edits, truncation, extension, splices (within the
file and from another seed of the same reader), and structure-aware edits (zip central-directory
and local-header fields, zip members rewritten with valid CRCs, ``.npy`` and safetensors headers,
JSON trees: types, nesting, huge shapes; ``.pth`` tensors rebuilt with huge shapes or zero
strides; dump directories with files removed, added or renamed).

Every input runs in a forked child of a pool worker (``concurrent.futures``; the worker imports
eiesim once) with an address-space cap (``RLIMIT_AS``, default 2 GB) and a wall-clock timeout
(default 20 s), and ends in one outcome:

``accepted``     the reader returned (API) / the command exited 0 (CLI), and the checks held;
``typed``        an :class:`eiesim.errors.EieError` subclass (API) / exit 1 or 2 with at most one
                 error line on stderr and no traceback (CLI);
``traceback``    any other exception (API) / a traceback on stderr or another exit code (CLI);
``signal``       the child died by a signal it was not sent;
``hang``         the child ran past the timeout (killed);
``memory``       ``MemoryError`` under the cap, or a peak resident set above ``--rss-limit``;
``silent``       accepted, but wrong: the simulated output disagrees with a functional decode
                 (dense ``W @ a + b`` in float64), a network/model lost a layer, or a value
                 differs from numpy's / safetensors' own reader;
``leftover``     (CLI) a failing command left a file in its output folder.

The run is reproducible: input ``i`` of reader ``r`` in mode ``m`` is a function of
``(--seed, r, m, i)`` only; ``--replay READER MODE INDEX --keep DIR`` rebuilds one input.

Usage::

    python scripts/fuzz.py                         # 10,000 API + 300 CLI inputs per reader
    python scripts/fuzz.py --api 200 --cli 20 --json fuzz.json
    python scripts/fuzz.py --readers eie,dump --api 1000 --cli 0
    python scripts/fuzz.py --replay npz api 17 --keep /tmp/repro

Prints one table per mode (reader x outcome counts) and, for every outcome other than
``accepted``/``typed``, the distinct failure signatures (exception type and innermost eiesim
frame) with the first reproducer index.  Exit status 1 when any input ended in a failure
outcome, else 0.  See ``docs/fuzzing.md``.
"""

from __future__ import annotations

import os

# One thread per BLAS: keeps each worker's address space small (RLIMIT_AS counts it) and the
# 2-core machine uncontended.  Set before numpy is imported anywhere in this process tree.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse  # noqa: E402
import collections  # noqa: E402
import concurrent.futures as cf  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
try:  # the installed package (with its compiled kernels) first; a source checkout only when none is installed
    import eiesim  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

OUTCOMES = ("accepted", "typed", "traceback", "signal", "hang", "memory", "silent", "leftover")
FAILURES = ("traceback", "signal", "hang", "memory", "silent", "leftover")
READERS = ("npz", "safetensors", "pth", "eie", "dump", "net", "config", "table", "results")
MODES = ("api", "cli")
MAX_FILE = 1 << 22  # mutated files never grow past 4 MiB

# =========================================================================== seeds


def _mlp(rng, sizes=(10, 12, 4)):
    """Float32 MLP tensors ``fc{k}.weight`` (out, in) and ``fc{k}.bias`` for layer widths ``sizes``."""
    import numpy as np

    t = collections.OrderedDict()
    for k in range(len(sizes) - 1):
        t[f"fc{k + 1}.weight"] = rng.standard_normal((sizes[k + 1], sizes[k])).astype(np.float32)
        t[f"fc{k + 1}.bias"] = rng.standard_normal(sizes[k + 1]).astype(np.float32)
    return t


_STORAGE = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
            "int64": "LongStorage", "uint8": "ByteStorage", "int32": "IntStorage"}


def write_pth(path, tensors, specs=None):
    """Write ``{name: array}`` the way ``torch.save`` does (zip: data.pkl + data/<key>), without torch.

    ``specs`` optionally overrides, per name, ``(storage_offset, size, stride, storage_class,
    storage_numel)`` in the pickle (the fuzzer's structure-aware edits); the stored bytes stay.
    """
    import numpy as np

    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):  # pragma: no cover - pickled by reference only
        raise AssertionError

    def _rebuild_parameter(*a):  # pragma: no cover
        raise AssertionError

    for f in (_rebuild_tensor_v2, _rebuild_parameter):
        f.__module__, f.__qualname__ = "torch._utils", f.__name__
        setattr(utils, f.__name__, f)
    for name in set(_STORAGE.values()) | {"Bogus"}:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils

    class Stor:
        def __init__(self, key, arr, cls, numel):
            self.key, self.arr, self.cls, self.numel = key, arr, cls, numel

    class Tensor:
        def __init__(self, args, param):
            self.args, self.param = args, param

        def __reduce__(self):
            if self.param:
                return (_rebuild_parameter, (Tensor(self.args, False), False, collections.OrderedDict()))
            return (_rebuild_tensor_v2, self.args)

    sd = collections.OrderedDict()
    stors = []
    for i, (name, arr) in enumerate(tensors.items()):
        arr = np.ascontiguousarray(arr)
        off, size, stride = 0, arr.shape, tuple(s // arr.itemsize for s in arr.strides)
        cls, numel = _STORAGE[arr.dtype.name], arr.size
        if specs and name in specs:
            off, size, stride, cls, numel = specs[name]
        st = Stor(str(i), arr.ravel(), cls, numel)
        stors.append(st)
        sd[name] = Tensor((st, off, tuple(size), tuple(stride), False, collections.OrderedDict()),
                          param=name.endswith("weight"))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Stor):
                return ("storage", getattr(torch, obj.cls), obj.key, "cpu", obj.numel)
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    try:
        sys.modules.update({"torch": torch, "torch._utils": utils})
        buf = io.BytesIO()
        P(buf, protocol=2).dump(sd)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        for st in stors:
            zf.writestr(f"archive/data/{st.key}", st.arr.tobytes())
        zf.writestr("archive/version", "3\n")


def _toml(d: dict, table=None) -> str:
    """Flat TOML of scalars (enough for EIEConfig and energy tables)."""
    out = [f"[{table}]"] if table else []
    sub = []
    for k, v in d.items():
        if isinstance(v, dict):
            sub.append((k, v))
            continue
        out.append(f"{k} = {json.dumps(v, allow_nan=False)}")
    text = "\n".join(out) + "\n"
    for k, v in sub:
        text += "\n" + _toml(v, f"{table}.{k}" if table else k)
    return text


def _run_cli_inproc(argv):
    """Run ``eiesim ARGV`` in this process (seed building); a non-zero exit raises."""
    from eiesim.cli import main

    rc = main(argv)
    if rc not in (0, None):
        raise RuntimeError(f"seed build: eiesim {' '.join(argv)} exited {rc}")


def build_seeds(root: Path) -> dict:
    """Write every reader's seed inputs under ``root``; return ``{reader: [seed dir, ...]}``.

    A seed is a folder; the reader's input is the folder (dumps) or the one main file in it.
    Also writes ``root/aux`` (inputs the commands need besides the fuzzed one).
    """
    import contextlib

    import numpy as np

    from eiesim.config import EIEConfig
    from eiesim.energy.tables import DEFAULT_TABLE
    from eiesim.format import CompressedLayer, write_dump
    from eiesim.format.dcnet import DCNet, encode_dense, write_net

    rng = np.random.default_rng(12345)
    seeds = {r: [] for r in READERS}
    aux = root / "aux"
    aux.mkdir(parents=True)

    def new(reader):
        d = root / reader / str(len(seeds[reader]))
        d.mkdir(parents=True)
        seeds[reader].append(str(d))
        return d

    # ---- models
    mlp = _mlp(rng)
    np.savez(new("npz") / "model.npz", **mlp)
    np.savez_compressed(new("npz") / "model.npz", **_mlp(rng, (8, 6, 3)))
    from safetensors.numpy import save_file

    save_file(dict(mlp), str(new("safetensors") / "model.safetensors"))
    save_file(dict(_mlp(rng, (8, 6, 3))), str(new("safetensors") / "model.safetensors"))
    write_pth(new("pth") / "model.pth", mlp)
    write_pth(new("pth") / "model.pth", _mlp(rng, (8, 6, 3)))
    np.savez(aux / "ref.npz", **mlp)  # the --reference of 'validate' (same shapes as the seed .eie)
    # ---- containers: compressed from the model, and hand-built variants
    with open(os.devnull, "w") as dn, contextlib.redirect_stdout(dn), contextlib.redirect_stderr(dn):
        _run_cli_inproc(["compress", str(aux / "ref.npz"), "--out", str(new("eie") / "net.eie"),
                         "--n-pe", "4", "--density", "0.5"])
        _run_cli_inproc(["compress", str(aux / "ref.npz"), "--out", str(new("eie") / "net.eie"),
                         "--n-pe", "3", "--density", "0.4", "--huffman"])
    from eiesim.format.container import save_network

    cb = np.array([0.0] + [(-1) ** i * 0.25 * i for i in range(1, 16)], dtype=np.float32)
    codes = rng.integers(0, 16, (9, 7)) * (rng.random((9, 7)) < 0.4)
    lay = CompressedLayer.from_codes(codes, cb, 4, bias_codes=rng.integers(0, 16, 9), name="l0")
    save_network(new("eie") / "net.eie", [lay], packed=True)
    np.save(aux / "x10.npy", rng.random((2, 10)).astype(np.float32))
    shutil.copy(Path(seeds["eie"][0]) / "net.eie", aux / "ref.eie")
    for d, n_in in zip(seeds["eie"], (10, 10, 7)):  # the activations 'simulate --network' reads
        np.save(Path(d) / "input.npy", rng.random((2, n_in)).astype(np.float32))
    # ---- dumps: the authors' FC8 and a small self-written one
    if (DATA / "alexnet_fc8_eie").is_dir():
        d = root / "dump" / str(len(seeds["dump"]))
        shutil.copytree(DATA / "alexnet_fc8_eie", d)
        for p in d.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.chmod(d, 0o755)
        seeds["dump"].append(str(d))
    small = CompressedLayer.from_codes(codes, cb, 4)
    d = root / "dump" / str(len(seeds["dump"]))
    d.parent.mkdir(exist_ok=True)  # without the authors' FC8 nothing made it above (write_dump makes d only)
    write_dump(small, d, activations=rng.random(7).astype(np.float32) * (rng.random(7) < 0.6))
    seeds["dump"].append(str(d))
    # ---- Deep Compression .net: the authors' SqueezeNet and a small self-written one
    if (DATA / "squeezenet_dc").is_dir():
        d = new("net")
        shutil.copy(DATA / "squeezenet_dc" / "compressed_SqueezeNet.net", d / "model.net")
        shutil.copy(DATA / "squeezenet_dc" / "layers.json", d / "layers.json")
        os.chmod(d / "model.net", 0o644)
        os.chmod(d / "layers.json", 0o644)
    d = new("net")
    l1 = encode_dense(rng.integers(0, 16, (6, 5)) * (rng.random((6, 5)) < 0.3), cb, rng.standard_normal(6),
                      name="fc1")
    cb8 = np.concatenate([[0.0], rng.standard_normal(255)]).astype(np.float32)
    l2 = encode_dense(rng.integers(0, 256, (4, 2, 3, 3)) * (rng.random((4, 2, 3, 3)) < 0.2), cb8,
                      rng.standard_normal(4), name="conv2")
    net = DCNet((l1, l2))
    write_net(d / "model.net", net)
    (d / "layers.json").write_text(json.dumps(allow_nan=False, indent=1, obj={"layers": [
        {"name": s.name, "shape": list(s.shape), "code_bits": s.code_bits, "index_bits": s.index_bits}
        for s in net.specs]}))
    # ---- configs and energy tables
    cfg = EIEConfig().to_dict()
    (new("config") / "eie.toml").write_text(_toml(cfg))
    (new("config") / "eie.json").write_text(json.dumps(cfg, indent=1, allow_nan=False))
    (new("config") / "eie.toml").write_text(_toml({"n_pe": 4, "fifo_depth": 4}, "eie"))
    (new("table") / "table.toml").write_text(DEFAULT_TABLE.to_toml())
    (new("table") / "table.toml").write_text(_first_entries(DEFAULT_TABLE.to_toml(), 3))
    # ---- results JSON: 'simulate --energy --json' of the small container and of LeNet
    with open(os.devnull, "w") as dn, contextlib.redirect_stdout(dn), contextlib.redirect_stderr(dn):
        _run_cli_inproc(["simulate", "--network", seeds["eie"][0] + "/net.eie", "--input", str(aux / "x10.npy"),
                         "--energy", "--json", str(new("results") / "results.json")])
        _run_cli_inproc(["simulate", "--energy", "--json", str(new("results") / "results.json")])
    shutil.copy(Path(seeds["results"][0]) / "results.json", aux / "results.json")
    return seeds


def _first_entries(toml_text: str, n: int) -> str:
    """The first ``n`` tables of a TOML text (a partial energy table)."""
    parts = toml_text.split("\n[")
    return "\n[".join(parts[: n + 1]) + "\n"


# the main file of each reader's seed folder (None: the folder itself)
MAIN = {"npz": "model.npz", "safetensors": "model.safetensors", "pth": "model.pth", "eie": "net.eie",
        "dump": None, "net": "model.net", "config": None, "table": "table.toml", "results": "results.json"}


def main_path(reader: str, d: Path) -> Path:
    """The reader's input inside a seed/input folder ``d`` (the folder itself for dumps)."""
    if reader == "config":
        return next(p for p in sorted(d.iterdir()) if p.suffix in (".toml", ".json"))
    return d if MAIN[reader] is None else d / MAIN[reader]


# =========================================================================== mutations
INTERESTING8 = (0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40)
INTERESTING32 = (0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
                 2**24, 10**9, 0xFFFFFFFE)


def m_bitflip(b: bytearray, r: random.Random, seed_pool) -> str:
    """Flip 1 to 32 random bits in place."""
    n = r.choice((1, 1, 2, 4, 8, 32))
    for _ in range(n):
        i = r.randrange(len(b))
        b[i] ^= 1 << r.randrange(8)
    return f"bitflip x{n}"


def m_byteset(b, r, seed_pool):
    """Set 1 to 16 bytes to interesting or random values in place."""
    n = r.choice((1, 2, 4, 16))
    for _ in range(n):
        b[r.randrange(len(b))] = r.choice(INTERESTING8) if r.random() < 0.7 else r.randrange(256)
    return f"byteset x{n}"


def m_int(b, r, seed_pool):
    """Overwrite a 2/4/8-byte integer (aligned or not, either byte order) with an interesting value."""
    if len(b) < 8:
        return m_byteset(b, r, seed_pool)
    width = r.choice((2, 4, 4, 8))
    i = r.randrange(0, len(b) - width + 1)
    if r.random() < 0.6:
        i -= i % width
    v = r.choice(INTERESTING32) if r.random() < 0.8 else r.getrandbits(8 * width)
    if r.random() < 0.2:
        v = -v
    v &= (1 << (8 * width)) - 1
    b[i:i + width] = v.to_bytes(width, r.choice(("little", "little", "big")))
    return f"int{8 * width}@{i}={v}"


def m_truncate(b, r, seed_pool):
    """Cut the file at a random length or a few bytes short of its end."""
    n = r.randrange(len(b)) if r.random() < 0.5 else max(0, len(b) - r.randrange(1, 64))
    del b[n:]
    return f"truncate to {n}"


def m_extend(b, r, seed_pool):
    """Append random bytes or copies of the tail."""
    k = r.choice((1, 4, 8, 100, 4096))
    if r.random() < 0.5:
        b.extend(r.randbytes(k))
    else:
        b.extend(b[-k:] * r.choice((1, 2, 8)))
    return f"extend by ~{k}"


def m_splice(b, r, seed_pool):
    """Copy a chunk of this file or of another seed over or into a random place."""
    src = b
    if seed_pool and r.random() < 0.5:
        src = bytearray(r.choice(seed_pool))
    if not src:
        return "splice (empty)"
    n = min(len(src), r.choice((4, 16, 64, 512)))
    s = r.randrange(len(src) - n + 1)
    d = r.randrange(len(b) + 1)
    if r.random() < 0.5:
        b[d:d + n] = src[s:s + n]  # overwrite
    else:
        b[d:d] = src[s:s + n]  # insert
    return f"splice {n}B {s}->{d}"


def m_delete(b, r, seed_pool):
    """Remove a chunk."""
    n = min(len(b), r.choice((1, 4, 16, 256)))
    s = r.randrange(len(b) - n + 1)
    del b[s:s + n]
    return f"delete {n}B@{s}"


BYTE_MUTATORS = (m_bitflip, m_byteset, m_int, m_int, m_truncate, m_extend, m_splice, m_delete)


def mutate_bytes(data: bytes, r: random.Random, seed_pool=()) -> tuple:
    """One to three byte-level mutations of ``data``; returns (bytes, description)."""
    b = bytearray(data)
    if not b:
        b.extend(r.randbytes(r.randrange(1, 64)))
        return bytes(b), "fill empty"
    descs = []
    for _ in range(r.choice((1, 1, 1, 2, 3))):
        if not b:
            break
        descs.append(r.choice(BYTE_MUTATORS)(b, r, seed_pool))
    return bytes(b[:MAX_FILE]), "+".join(descs)


# ---- JSON trees
HUGE = (10**12, 2**63, 2**64, -1, 0, 2**31, 1e308, float("inf"), float("nan"))


def _rand_value(r: random.Random):
    """A JSON value of an arbitrary type (the type-confusion edits)."""
    return r.choice((None, True, "x", "", -1, 0, 1, 2**40, 1.5, float("nan"), [], {}, [1, 2], {"a": 1},
                     "1" * 100, 10**30, [10**12, 10**12]))


def _walk(doc, path=()):
    """Every (path, node) of a decoded JSON tree, root first."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _walk(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _walk(v, path + (i,))


def _set(doc, path, value):
    """Replace the node at ``path`` (the root when empty); returns the (new) root."""
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


def mutate_json_doc(doc, r: random.Random) -> tuple:
    """One structure-aware edit of a decoded JSON tree; returns (doc or raw text, description)."""
    nodes = list(_walk(doc))
    path, node = r.choice(nodes)
    op = r.randrange(9)
    if op == 0:
        return _set(doc, path, _rand_value(r)), f"json set {list(path)}"
    if op == 1 and path:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
        return doc, f"json delete {list(path)}"
    if op == 2 and isinstance(node, (int, float)) and not isinstance(node, bool):
        v = r.choice(HUGE)
        return _set(doc, path, v), f"json number {list(path)}={v}"
    if op == 3 and isinstance(node, list):
        if node and r.random() < 0.5:
            node.append(node[r.randrange(len(node))] if r.random() < 0.5 else r.choice(HUGE))
            return doc, f"json list grow {list(path)}"
        if node:
            node.pop(r.randrange(len(node)))
        return doc, f"json list shrink {list(path)}"
    if op == 4:  # huge shapes: any all-int list becomes huge
        for p, n in nodes:
            if isinstance(n, list) and n and all(isinstance(x, int) and not isinstance(x, bool) for x in n):
                k = r.randrange(len(n))
                n[k] = r.choice((10**12, 2**31, 2**40, 0, -1, 60000))
                return doc, f"json huge shape {list(p)}[{k}]"
        return _set(doc, path, 10**12), f"json set {list(path)}=1e12"
    if op == 5:  # deep nesting
        depth = r.choice((50, 1000, 100000))
        text = _HOSTILE_JSON.encode(doc)
        if r.random() < 0.5:
            return "[" * depth + text + "]" * depth, f"json nest {depth}"
        return _set(doc, path, "@@NEST@@"), f"json nest {depth} at {list(path)}|{depth}"
    if op == 6 and isinstance(node, dict):
        node[r.choice(("extra", "name", "shape", "layers", "version", "\u0000"))] = _rand_value(r)
        return doc, f"json add key {list(path)}"
    if op == 7 and isinstance(node, str):
        return _set(doc, path, r.choice(("", node * 50, node + "\u00e9", "../../etc/passwd", node[:-1]))), \
            f"json string {list(path)}"
    if op == 8 and isinstance(node, (list, dict)):
        return _set(doc, path, r.choice(("str", 3, None, [node]))), f"json retype {list(path)}"
    return _set(doc, path, _rand_value(r)), f"json set {list(path)}"


#: Writes NaN/Infinity on purpose: mutated inputs are hostile JSON (the project's own output is strict).
_HOSTILE_JSON = json.JSONEncoder(allow_nan=True)


def json_text(doc, desc: str) -> bytes:
    """Serialise a mutated tree; expands the deep-nesting placeholder of :func:`mutate_json_doc`."""
    if isinstance(doc, str):
        return doc.encode()
    text = _HOSTILE_JSON.encode(doc)
    if "@@NEST@@" in text:
        depth = int(desc.rsplit("|", 1)[1])
        text = text.replace('"@@NEST@@"', "[" * depth + "1" + "]" * depth, 1)
    return text.encode()


def mutate_json_bytes(data: bytes, r: random.Random) -> tuple:
    """A structure-aware edit of a JSON file (byte mutations when it does not parse)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return mutate_bytes(data, r)
    doc, desc = mutate_json_doc(doc, r)
    return json_text(doc, desc), desc


# ---- zip archives (.npz, .pth, .eie)
def _zip_records(data: bytes):
    """Offsets of central-directory and local headers (via zipfile, never a reader of our own)."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    eocd = data.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", data, eocd + 16)[0] if eocd >= 0 else None
    cents = []
    if cd is not None:
        o = cd
        while data[o:o + 4] == b"PK\x01\x02":
            n, m, k = struct.unpack_from("<HHH", data, o + 28)
            cents.append(o)
            o += 46 + n + m + k
    return zf, infos, cents, eocd


CD_FIELDS = {"version_needed": (6, "H"), "flags": (8, "H"), "method": (10, "H"), "crc": (16, "I"),
             "csize": (20, "I"), "usize": (24, "I"), "name_len": (28, "H"), "extra_len": (30, "H"),
             "disk": (34, "H"), "local_offset": (42, "I")}
LH_FIELDS = {"version_needed": (4, "H"), "flags": (6, "H"), "method": (8, "H"), "crc": (14, "I"),
             "csize": (18, "I"), "usize": (22, "I"), "name_len": (26, "H"), "extra_len": (28, "H")}


def mutate_zip(data: bytes, r: random.Random, member_mutator=None) -> tuple:
    """One zip edit: a central-directory, local-header or end-record field, or a member dropped,
    duplicated, renamed, recompressed or rewritten (``member_mutator``) with a valid CRC."""
    try:
        zf, infos, cents, eocd = _zip_records(data)
    except Exception:  # noqa: BLE001 - the seed pool may hold a non-zip; fall back
        return mutate_bytes(data, r)
    b = bytearray(data)
    op = r.randrange(6)
    k = r.randrange(len(infos))
    info = infos[k]
    if op == 0 and cents:  # central-directory field
        f, (off, fmt) = r.choice(list(CD_FIELDS.items()))
        v = r.choice((0, 1, 8, 12, 14, 20, 45, 63, 99, 255, 0xFFFF, 0xFFFFFFFF, 2**31))
        struct.pack_into("<" + fmt, b, cents[k] + off, v & (0xFFFF if fmt == "H" else 0xFFFFFFFF))
        return bytes(b), f"zip cd[{info.filename}].{f}={v}"
    if op == 1 and cents:  # damage the name in the central directory only
        n = struct.unpack_from("<H", b, cents[k] + 28)[0]
        if n:
            i = cents[k] + 46 + r.randrange(n)
            b[i] = r.choice((ord("_"), ord("/"), 0, ord("."), b[i] ^ 0x20))
        return bytes(b), f"zip cd name[{info.filename}]"
    if op == 2:  # local header field
        f, (off, fmt) = r.choice(list(LH_FIELDS.items()))
        v = r.choice((0, 1, 8, 12, 14, 20, 45, 99, 255, 0xFFFF, 0xFFFFFFFF))
        struct.pack_into("<" + fmt, b, info.header_offset + off, v & (0xFFFF if fmt == "H" else 0xFFFFFFFF))
        return bytes(b), f"zip local[{info.filename}].{f}={v}"
    if op == 3 and eocd >= 0:  # end-of-central-directory fields
        off, fmt = r.choice(((8, "H"), (10, "H"), (12, "I"), (16, "I"), (20, "H")))
        struct.pack_into("<" + fmt, b, eocd + off, r.choice((0, 1, 2, 0xFFFF)) if fmt == "H"
                         else r.choice((0, 1, len(b), 0xFFFFFFFF)))
        return bytes(b), f"zip eocd+{off}"
    # rebuild the archive with one member changed (valid CRCs): removed, duplicated, renamed, or mutated
    members = [(i, zf.read(i.filename)) for i in infos]
    act = r.randrange(5) if op == 4 else 4
    out = io.BytesIO()
    desc = ""
    import warnings

    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as w:
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one edit
        for j, (i, payload) in enumerate(members):
            name, method = i.filename, i.compress_type
            if j == k:
                if act == 0:
                    desc = f"zip drop {name}"
                    continue
                if act == 1:
                    w.writestr(zipfile.ZipInfo(name), payload)
                    desc = f"zip duplicate {name}"
                elif act == 2:
                    name = r.choice((name + "x", name.upper(), "../" + name, name.replace(".", "_"), "x/" + name))
                    desc = f"zip rename {i.filename}->{name}"
                elif act == 3:
                    method = zipfile.ZIP_DEFLATED if method == zipfile.ZIP_STORED else zipfile.ZIP_STORED
                    desc = f"zip recompress {name}"
                else:
                    payload, d = member_mutator(payload, r, name) if member_mutator else mutate_bytes(payload, r)
                    desc = f"zip member {name}: {d}"
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = method
            w.writestr(zi, payload)
    return out.getvalue(), desc


def npy_member_mutator(payload: bytes, r: random.Random, name: str) -> tuple:
    """Edit a .npy header (shape, dtype, order) or its data bytes."""
    if payload[:6] != b"\x93NUMPY" or r.random() < 0.3:
        return mutate_bytes(payload, r)
    hlen = struct.unpack_from("<H", payload, 8)[0]
    header = payload[10:10 + hlen].decode("latin1")
    body = payload[10 + hlen:]
    choice = r.randrange(5)
    import re

    if choice == 0:
        new = re.sub(r"'shape': \([^)]*\)", "'shape': (%d, %d)" % (r.choice((60000, 2**31, 0, 1, 10**12)),
                                                                     r.choice((60000, 2**31, 1, 0))), header)
    elif choice == 1:
        new = re.sub(r"'descr': '[^']*'", "'descr': '%s'" % r.choice(("<f8", "<f2", "|O", "<U3", "<c16", "|V8", ">f4",
                                                                       "<i8", "|b1", "<M8[s]")), header)
    elif choice == 2:
        new = header.replace("False", "True") if "False" in header else header.replace("True", "False")
    elif choice == 3:
        new = re.sub(r"'shape': \([^)]*\)", "'shape': (%d,)" % r.choice((1, 3, 7, 10**9)), header)
    else:
        new = header[: r.randrange(len(header))]
    new = new.ljust(len(header))[: max(len(header), len(new))]
    return payload[:8] + struct.pack("<H", len(new)) + new.encode("latin1") + body, f"npy header {choice}"


def eie_member_mutator(payload: bytes, r: random.Random, name: str) -> tuple:
    """Mutate a ``.eie`` member: the JSON manifest as a tree, ``.npy`` headers or values, else bytes."""
    if name.endswith(".json"):
        return mutate_json_bytes(payload, r)
    if name.endswith(".npy"):
        if r.random() < 0.5:
            return npy_member_mutator(payload, r, name)
        return _npy_value_edit(payload, r)
    return mutate_bytes(payload, r)


def _npy_value_edit(payload: bytes, r: random.Random) -> tuple:
    """Change array *values* of a .npy (pointers decreasing, indices out of range) keeping the header."""
    import numpy as np

    try:
        a = np.load(io.BytesIO(payload), allow_pickle=False)
    except Exception:  # noqa: BLE001
        return mutate_bytes(payload, r)
    if a.size == 0:
        return mutate_bytes(payload, r)
    a = a.copy()
    flat = a.reshape(-1)
    i = r.randrange(flat.size)
    kind = r.randrange(4)
    if kind == 0 and flat.size > 1:  # swap two values (e.g. pointers out of order)
        j = r.randrange(flat.size)
        flat[i], flat[j] = flat[j], flat[i]
    elif kind == 1:
        info = np.iinfo(a.dtype) if a.dtype.kind in "iu" else np.finfo(a.dtype)
        flat[i] = r.choice((info.max, info.min, 0))
    elif kind == 2 and a.dtype.kind in "iu":
        flat[i] = max(int(flat[i]) - r.randrange(1, 5), int(np.iinfo(a.dtype).min))
    elif a.dtype.kind == "f":
        flat[i] = r.choice((np.nan, np.inf, -0.0, 1e38))
    else:
        flat[i] = flat[i] + 1 if flat[i] < np.iinfo(a.dtype).max else 0
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue(), f"npy value edit {kind}@{i}"


def mutate_safetensors(data: bytes, r: random.Random) -> tuple:
    """Edit the 8-byte header length or the JSON header (dtype, shape, data_offsets), else bytes."""
    if len(data) < 8 or r.random() < 0.4:
        return mutate_bytes(data, r)
    n = struct.unpack_from("<Q", data)[0]
    if n > len(data) - 8:
        return mutate_bytes(data, r)
    try:
        doc = json.loads(data[8:8 + n])
    except ValueError:
        return mutate_bytes(data, r)
    if r.random() < 0.2:
        v = r.choice((0, 1, n - 1, n + 1, len(data), 2**63, 2**64 - 1))
        return struct.pack("<Q", v) + data[8:], f"safetensors header length={v}"
    doc, desc = mutate_json_doc(doc, r)
    h = json_text(doc, desc)
    return struct.pack("<Q", len(h)) + h + data[8 + n:], "safetensors " + desc


def mutate_pth_structured(tensors, r: random.Random, path: Path) -> str:
    """Rewrite the ``.pth`` at ``path`` with one tensor's view changed (size, stride, offset, storage)."""
    name = r.choice(list(tensors))
    arr = tensors[name]
    size, stride, off = list(arr.shape), [s // arr.itemsize for s in arr.strides], 0
    cls, numel = _STORAGE[arr.dtype.name], arr.size
    op = r.randrange(6)
    if op == 0:
        size = [r.choice((60000, 20000, 2**31, 10**12))] * max(1, len(size))
        stride = [0] * len(size)
        d = f"pth {name} size={size} stride 0"
    elif op == 1:
        size = [r.choice((60000, 2**31, 10**12, 0)), r.choice((60000, 1, 2**20))]
        d = f"pth {name} huge size={size}"
    elif op == 2:
        stride = [r.choice((0, -1, 1, 2**40)) for _ in size]
        d = f"pth {name} stride={stride}"
    elif op == 3:
        off = r.choice((-1, 1, arr.size, 2**40))
        d = f"pth {name} offset={off}"
    elif op == 4:
        cls = r.choice(("DoubleStorage", "HalfStorage", "LongStorage", "ByteStorage", "Bogus"))
        d = f"pth {name} storage={cls}"
    else:
        numel = r.choice((0, 1, arr.size - 1, arr.size * 2, 2**40))
        d = f"pth {name} numel={numel}"
    write_pth(path, tensors, {name: (off, size, stride, cls, numel)})
    return d


def mutate_toml(data: bytes, r: random.Random) -> tuple:
    """Line-level TOML edit: a value of another type, a deleted/duplicated key, an extra line, deep nesting."""
    lines = data.decode("utf-8", "replace").splitlines()
    kv = [i for i, ln in enumerate(lines) if "=" in ln]
    op = r.randrange(6)
    if not kv or op == 0:
        return mutate_bytes(data, r)
    i = r.choice(kv)
    key, _, val = lines[i].partition("=")
    if op == 1:
        lines[i] = f"{key}= " + r.choice(('"12"', "-1", "0", "1e308", "nan", "inf", "99999999999999999999",
                                          "[1, 2]", "{a = 1}", "true", '""', "1.5", "2e9"))
        d = f"toml value {key.strip()}"
    elif op == 2:
        del lines[i]
        d = f"toml delete {key.strip()}"
    elif op == 3:
        lines.insert(i, lines[i])
        d = f"toml duplicate {key.strip()}"
    elif op == 4:
        lines.insert(r.randrange(len(lines) + 1), r.choice(("bogus = 1", "[eie]", "[x.y]", "n_pe = 4096",
                                                            "fifo_depth = 100000000", "[[a]]")))
        d = "toml insert line"
    else:
        lines[i] = f"{key}= " + "[" * 5000 + "1" + "]" * 5000
        d = f"toml nest {key.strip()}"
    return ("\n".join(lines) + "\n").encode(), d


_SEED_FILES = {}


def _read_seed_files(d: Path) -> dict:
    """``{relative path: bytes}`` of a seed folder (cached: seeds never change during a run)."""
    key = str(d)
    if key not in _SEED_FILES:
        _SEED_FILES[key] = {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    return dict(_SEED_FILES[key])


def make_input(reader: str, seed_dir: Path, others, out: Path, r: random.Random) -> str:
    """Write one mutated copy of the seed folder ``seed_dir`` into ``out``; return the description.

    ``others``: the bytes of the same-named file in the reader's other seeds (splice material).
    """
    files = _read_seed_files(seed_dir)
    out.mkdir(parents=True)
    main = main_path(reader, seed_dir)
    main_rel = str(main.relative_to(seed_dir)) if main != seed_dir else None
    desc = ""
    # which file to mutate
    if reader == "dump":
        target = r.choice(sorted(files))
        if r.random() < 0.15:  # folder-level edits
            op = r.randrange(4)
            if op == 0:
                files.pop(target)
                desc = f"dump remove {target}"
            elif op == 1:
                sub = "ptr" if target.startswith("ptr") else "spm" if target.startswith("spm") else ""
                k = len([f for f in files if f.startswith(sub + "/")]) if sub else 0
                extra = f"{sub}/{sub}{k}.dat" if sub else r.choice(("act.dat", "extra.dat", "ptr/ptrX.dat"))
                files[extra] = files[target]
                desc = f"dump add {extra} (copy of {target})"
            elif op == 2:
                new = target.replace("0", "00", 1) if "0" in target else target + ".bak"
                files[new] = files.pop(target)
                desc = f"dump rename {target}->{new}"
            else:
                other = r.choice(sorted(files))
                files[target], files[other] = files[other], files[target]
                desc = f"dump swap {target}<->{other}"
            target = None
    elif reader == "net":
        target = "layers.json" if r.random() < 0.4 else "model.net"
    elif reader == "config":
        target = main_rel if main_rel in files else next(iter(files))
    else:
        target = main_rel
    if target is not None:
        data = files[target]
        pool = [o.get(target) for o in others if o.get(target)]
        if reader in ("npz", "eie") or (reader == "pth" and r.random() < 0.7):
            if r.random() < 0.6:
                data, desc = mutate_zip(data, r, npy_member_mutator if reader == "npz" else
                                        eie_member_mutator if reader == "eie" else None)
            else:
                data, desc = mutate_bytes(data, r, pool)
        elif reader == "pth":
            import numpy as np

            tensors = collections.OrderedDict((k, np.asarray(v)) for k, v in _pth_seed_tensors(seed_dir).items())
            tmp = out / "_t.pth"
            desc = mutate_pth_structured(tensors, r, tmp)
            data = tmp.read_bytes()
            tmp.unlink()
        elif reader == "safetensors":
            data, desc = mutate_safetensors(data, r)
        elif target.endswith(".json") and r.random() < 0.7:
            data, desc = mutate_json_bytes(data, r)
        elif target.endswith(".toml") and r.random() < 0.7:
            data, desc = mutate_toml(data, r)
        elif reader == "dump" and target.startswith("ptr") and r.random() < 0.3:
            import numpy as np

            a = np.frombuffer(data[: len(data) // 4 * 4], dtype="<u4").copy()
            if a.size > 2:
                i = r.randrange(1, a.size)
                a[i] = r.choice((0, int(a[i - 1]) - 1 if a[i - 1] else 0, 2**32 - 1, int(a[-1]) + 1))
            data, desc = a.tobytes(), f"ptr value edit {target}"
        else:
            data, desc = mutate_bytes(data, r, pool)
        files[target] = data
        desc = f"{target}: {desc}"
    orig = _SEED_FILES[str(seed_dir)]
    for rel, payload in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if orig.get(rel) is payload:  # unchanged: a hard link to the seed (readers only read)
            try:
                os.link(seed_dir / rel, p)
                continue
            except OSError:
                pass
        p.write_bytes(payload)
    return desc


_PTH_CACHE = {}


def _pth_seed_tensors(seed_dir: Path):
    """Seed .pth tensors, read back through eiesim's reader (the seeds are well-formed)."""
    key = str(seed_dir)
    if key not in _PTH_CACHE:
        from eiesim.workloads.models import load_torch_state_dict

        _PTH_CACHE[key] = load_torch_state_dict(seed_dir / "model.pth")
    return _PTH_CACHE[key]


# =========================================================================== checks run in the child
class Silent(Exception):
    """An accepted input whose result is wrong."""


def _check_layer(layer, act, dense=None) -> None:
    """Simulated output of ``layer`` on ``act`` against dense ``W @ a + b`` in float64.

    ``dense``: the functional decode W to compare with (default: ``layer.to_dense()``).
    """
    import numpy as np

    import warnings

    from eiesim.sim.engine import simulate
    from eiesim.sim.result import Float32OverflowWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = simulate(layer, act)
    warned = any(issubclass(c.category, Float32OverflowWarning) for c in caught)
    w = (layer.to_dense() if dense is None else dense).astype(np.float64)
    ref = w @ np.asarray(act, dtype=np.float64)
    b = layer.bias_values()
    if b is not None:
        ref = ref + b
    out = np.asarray(res.output, dtype=np.float64)
    bound = np.abs(w) @ np.abs(np.asarray(act, dtype=np.float64)) + (np.abs(b) if b is not None else 0)
    tol = 1e-4 * (bound + 1)
    # float32 arithmetic may overflow to +-inf (or inf - inf = NaN) where the magnitude bound of the sum
    # leaves float32's range; the float64 decode then is no reference for that output -- but simulate must
    # have said so (Float32OverflowWarning): an unannounced inf is a silent wrong output
    overflow = (bound > float(np.finfo(np.float32).max)) & ~np.isfinite(out) if out.shape == ref.shape else False
    if np.any(overflow) and not warned:
        raise Silent(f"layer {layer.name!r}: float32 outputs overflowed without a Float32OverflowWarning")
    if out.shape != ref.shape or not np.all((np.abs(out - ref) <= tol) | overflow):
        raise Silent(f"layer {layer.name!r}: simulated output differs from the dense decode")


def _act_for(layer, rng):
    """A random float32 activation vector for ``layer`` with about 40 % zeros."""
    import numpy as np

    a = rng.random(layer.n_in).astype(np.float32)
    a[rng.random(layer.n_in) < 0.4] = 0
    return a


def _local_names(data: bytes) -> list:
    """Member names of every zip local file header in ``data`` (what the archive really holds)."""
    names, o = [], data.find(b"PK\x03\x04")
    while o >= 0 and o + 30 <= len(data):
        n, m = struct.unpack_from("<HH", data, o + 26)
        names.append(data[o + 30:o + 30 + n].decode("utf-8", "replace"))
        o = data.find(b"PK\x03\x04", o + 4)
    return names


def expected_tensors(path: Path, ctx: dict):
    """How many tensors a correct reader returns from this input, or None when that is not known.

    ``.npz``: one per distinct ``.npy`` local header (a member named only in a damaged central
    directory still holds a tensor). ``.pth``: the seed's count when ``data.pkl`` is unchanged
    (the pickle names every tensor). ``.safetensors``: compared with the library reader instead.
    """
    data = path.read_bytes()
    if path.suffix == ".npz":
        return len({n for n in _local_names(data) if n.endswith(".npy")})
    if path.suffix == ".pth":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                pkl = zf.read("archive/data.pkl")
        except Exception:  # noqa: BLE001 - unreadable here: no expectation
            return None
        return len(ctx["seed_tensors"]) if pkl == ctx["seed_pkl"] else None
    return None


def _model_check(tensors, path: Path, ctx: dict) -> None:
    """Silently wrong model reads: tensors lost, or values that differ from the library readers'."""
    import numpy as np

    want = expected_tensors(path, ctx)
    if want is not None and len(tensors) < want:
        raise Silent(f"model lost tensors: {want} in the file, {len(tensors)} read ({sorted(tensors)})")
    ext = path.suffix
    ref = None
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                ref = {k: z[k] for k in z.files}
        elif ext == ".safetensors":
            from safetensors.numpy import load_file

            ref = load_file(str(path))
    except Exception:  # noqa: BLE001 - the other reader refusing is not our failure
        ref = None
    if ref is not None:
        for k, v in tensors.items():
            if k in ref and np.asarray(ref[k]).dtype.kind == "f" and not np.array_equal(
                    np.asarray(ref[k], dtype=np.float64), np.asarray(v, dtype=np.float64), equal_nan=True):
                raise Silent(f"tensor {k!r} differs from the library reader's")
        if set(ref) - set(tensors) and not set(tensors) - set(ref):
            raise Silent(f"tensors missing compared with the library reader: {sorted(set(ref) - set(tensors))}")


def api_run(reader: str, inp: Path, ctx: dict) -> str:
    """Run the reader's API on one input; raise on failure. Returns a short note."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    if reader in ("npz", "safetensors", "pth"):
        from eiesim.workloads.models import load_model

        path = inp / MAIN[reader]
        tensors = load_model(path)
        _model_check(tensors, path, ctx)
        return f"{len(tensors)} tensors"
    if reader == "eie":
        from eiesim.format.container import load_container
        from eiesim.format.validate import validate_container

        c = load_container(inp / "net.eie")
        if len(c.network.layers) != ctx["n_layers"]:
            raise Silent(f"network has {len(c.network.layers)} layers, the seed {ctx['n_layers']}")
        for lay in c.network.layers:
            lay.to_codes()
            lay.weight_density  # noqa: B018 - a property that reads every array
            _check_layer(lay, _act_for(lay, rng))
        validate_container(inp / "net.eie", level="full")
        return "ok"
    if reader == "dump":
        from eiesim.format.eiedump import read_dump
        from eiesim.format.validate import validate_dump

        d = read_dump(inp)
        act = d.activations if d.activations is not None and d.activations.shape == (d.layer.n_in,) \
            else _act_for(d.layer, rng)
        if np.all(np.isfinite(act)):
            _check_layer(d.layer, act)
        validate_dump(inp)
        return "ok"
    if reader == "net":
        from eiesim.format.dcnet import dclayer_to_compressed, load_layer_specs, read_net
        from eiesim.format.validate import validate_net

        specs = load_layer_specs(inp / "layers.json")
        net = read_net(inp / "model.net", specs)
        if len(net) != len(specs):
            raise Silent(f".net gave {len(net)} layers for {len(specs)} specs")
        small = sum(s.n_weights for s in specs) < 10**6
        for lay in net.layers:
            lay.to_codes()
            dense = lay.to_dense()
            lay.issues()
            if small and dense.ndim >= 2 and dense.size:
                cl, _ = dclayer_to_compressed(lay, 4)
                _check_layer(cl, _act_for(cl, rng), dense.reshape(dense.shape[0], -1))
        validate_net(inp / "model.net", specs)
        return "ok"
    if reader == "config":
        from eiesim.config import EIEConfig

        p = main_path("config", inp)
        cfg = EIEConfig.load(p)
        if EIEConfig.from_dict(cfg.to_dict()) != cfg:
            raise Silent("config does not round-trip through to_dict/from_dict")
        return "ok"
    if reader == "table":
        from eiesim.commands.energy import price_document
        from eiesim.commands._results import load_results_json
        from eiesim.energy.tables import load_table

        t = load_table(inp / "table.toml")
        price_document(load_results_json(ctx["aux"] + "/results.json"), t)
        return "ok"
    if reader == "results":
        from eiesim.commands._results import load_results_json
        from eiesim.commands.energy import price_document
        from eiesim.report.energy import format_energy
        from eiesim.energy.tables import DEFAULT_TABLE
        from eiesim.report import plots

        doc = load_results_json(inp / "results.json")
        from eiesim.commands._results import check_energy_results, check_plot_results

        try:
            check_energy_results(doc, inp / "results.json")  # what 'eiesim energy' checks first
            format_energy(price_document(doc, DEFAULT_TABLE))
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, __import__("eiesim").EieError):
                raise
        import matplotlib.pyplot as plt

        # the figures plot_all draws for this document (same dispatch), drawn without saving
        check_plot_results(doc, inp / "results.json")  # what 'eiesim plot' checks first
        figs = []
        try:
            plots.energy_layers(doc)
            figs.append(lambda: plots.plot_energy_breakdown(doc))
        except __import__("eiesim").EieInputError:
            pass
        layers = doc.get("layers") or []
        if isinstance(layers, list) and layers and isinstance(layers[0], dict) and "speedup" in layers[0] \
                and "geomean" in doc:  # (plot_all's own test lacks the isinstance checks: the CLI covers it)
            figs += [lambda: plots.plot_ratios(doc, "speedup"), lambda: plots.plot_ratios(doc, "energy_ratio"),
                     lambda: plots.plot_throughput_efficiency(doc)]
        for f in figs:
            plt.close(f())
        return "ok"
    raise ValueError(reader)


def cli_argv(reader: str, inp: Path, out: Path, aux: str, i: int) -> list:
    """The command line of CLI input ``i`` (templates rotate with ``i``)."""
    m = str(main_path(reader, inp))
    t = {
        "npz": [["compress", m, "--out", f"{out}/o.eie", "--n-pe", "4", "--density", "0.5"],
                ["validate", f"{aux}/ref.eie", "--reference", m]],
        "safetensors": [["compress", m, "--out", f"{out}/o.eie", "--n-pe", "4", "--density", "0.5"],
                        ["validate", f"{aux}/ref.eie", "--reference", m]],
        "pth": [["compress", m, "--out", f"{out}/o.eie", "--n-pe", "4", "--density", "0.5"],
                ["validate", f"{aux}/ref.eie", "--reference", m]],
        "eie": [["inspect", m, "--json", f"{out}/i.json"], ["validate", m],
                ["simulate", "--network", m, "--input", f"{inp}/input.npy", "--json", f"{out}/r.json"],
                ["simulate", "--network", m, "--input", f"{inp}/input.npy", "--n-pe", "8"]],
        "dump": [["simulate", "--eie-dump", m, "--json", f"{out}/r.json"], ["validate", m], ["inspect", m]],
        "net": [["validate", m, "--layers", f"{inp}/layers.json"],
                ["inspect", m, "--layers", f"{inp}/layers.json", "--json", f"{out}/i.json"]],
        "config": [["simulate", "--network", f"{aux}/ref.eie", "--input", f"{aux}/x10.npy", "--config", m,
                    "--json", f"{out}/r.json"]],
        "table": [["energy", f"{aux}/results.json", "--table", m, "--json", f"{out}/e.json"],
                  ["simulate", "--network", f"{aux}/ref.eie", "--input", f"{aux}/x10.npy", "--energy-table", m]],
        "results": [["energy", m, "--json", f"{out}/e.json"], ["plot", m, "--out", f"{out}/figs"]],
    }[reader]
    return t[i % len(t)]


def cli_post_check(reader: str, argv: list, out: Path, ctx: dict) -> None:
    """After exit 0: a compressed model keeps every layer."""
    if argv[0] == "compress":
        from eiesim.format.container import load_network

        model = Path(argv[1])
        want = expected_tensors(model, ctx)
        if model.suffix == ".npz":  # the seed's weight matrices still present as members
            names = set(_local_names(model.read_bytes()))
            want = sum(1 for k in ctx["seed_weights"] if f"{k}.npy" in names)
        elif want is not None:
            want = len(ctx["seed_weights"])
        net = load_network(out / "o.eie")
        if want is not None and len(net.layers) < want:
            raise Silent(f"compress wrote {len(net.layers)} layers, the model holds {want}")


# =========================================================================== the forked child
def _innermost(tb) -> str:
    """``file:line function`` of the innermost eiesim frame of a traceback (the failure signature)."""
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if "eiesim" in f.filename and "scripts/fuzz.py" not in f.filename] or frames
    f = mine[-1]
    return f"{Path(f.filename).name}:{f.lineno} {f.name}"


class _Timeout(BaseException):
    """Raised by the batch child's per-input alarm (a BaseException: no ``except Exception`` eats it)."""


def _api_record(reader, inp: Path, ctx) -> dict:
    """Run the API of ``reader`` on one input (in a child) and classify how it ended."""
    try:
        note = api_run(reader, inp, ctx)
        return {"outcome": "accepted", "note": note}
    except Silent as exc:
        return {"outcome": "silent", "sig": "silent: " + str(exc).split(":")[0], "msg": str(exc)[:300]}
    except _Timeout as exc:
        return {"outcome": "hang", "sig": f"timeout at {_innermost(exc.__traceback__)}"}
    except BaseException as exc:  # noqa: BLE001 - classifying is the point
        from eiesim.errors import EieError, EieFormatError

        if isinstance(exc, EieError):
            return {"outcome": "typed", "type": type(exc).__name__, "msg": str(exc)[:300],
                    "empty_msg": not str(exc),
                    "no_code": isinstance(exc, EieFormatError) and getattr(exc, "code", None) is None}
        return {"outcome": "memory" if isinstance(exc, MemoryError) else "traceback",
                "sig": f"{type(exc).__name__} at {_innermost(exc.__traceback__)}",
                "msg": str(exc)[:300], "tb": "".join(traceback.format_exception(exc))[-3000:]}


def _child(reader, mode, inp: Path, out: Path, ctx, argv, res_path: str, mem_cap: int) -> None:
    """Body of the forked child: never returns."""
    code = 0
    try:
        import faulthandler

        faulthandler.disable()  # a crash is classified from the exit status, not dumped by a parent's handler
        if mem_cap:
            resource.setrlimit(resource.RLIMIT_AS, (mem_cap, mem_cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
        if mode == "api":
            rec = _api_record(reader, inp, ctx)
        else:
            rec = _child_cli(reader, inp, out, ctx, argv)
    except BaseException as exc:  # noqa: BLE001
        rec = {"outcome": "traceback", "sig": f"harness {type(exc).__name__}", "msg": str(exc)[:300]}
        code = 3
    try:
        with open(res_path, "w") as fh:
            json.dump(rec, fh, allow_nan=False)
    finally:
        os._exit(code)


def _child_cli(reader, inp, out, ctx, argv) -> dict:
    """Run ``eiesim ARGV`` in the forked child with stdout/stderr to files; classify the exit."""
    fd_out = os.open(str(out.parent / "stdout.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fd_err = os.open(str(out.parent / "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
    from eiesim.cli import main

    exc_rec = None
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - what python would print as a traceback
        traceback.print_exc()
        rc = 1
        exc_rec = {"sig": f"{type(exc).__name__} at {_innermost(exc.__traceback__)}", "msg": str(exc)[:300],
                   "memory": isinstance(exc, MemoryError)}
    sys.stdout.flush()
    sys.stderr.flush()
    err = (out.parent / "stderr.txt").read_text("utf-8", "replace")
    if exc_rec is not None or "Traceback (most recent call last)" in err:
        rec = {"outcome": "memory" if exc_rec and exc_rec["memory"] else "traceback",
               "sig": (exc_rec or {}).get("sig", "traceback on stderr"), "msg": err[-1500:]}
        return rec
    left = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]
    if rc == 0:
        try:
            cli_post_check(reader, argv, out, ctx)
        except Silent as exc:
            return {"outcome": "silent", "sig": "silent: " + str(exc).split(":")[0], "msg": str(exc)}
        return {"outcome": "accepted", "rc": 0}
    errlines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")
                and not ln.lstrip().startswith(("simulating", "layer"))]
    if rc in (1, 2) and len(errlines) <= 1:
        if left:
            return {"outcome": "leftover", "sig": f"{argv[0]} left {left}", "msg": err[-300:]}
        return {"outcome": "typed", "rc": rc, "msg": err.strip()[-300:]}
    return {"outcome": "traceback", "sig": f"{argv[0]} exit {rc} with {len(errlines)} stderr lines",
            "msg": err[-1500:]}


def run_one(reader, mode, inp: Path, out: Path, ctx, argv, timeout: float, mem_cap: int, rss_limit: int) -> dict:
    """Fork a child for one input, cap and time it, and return its outcome record."""
    res_path = str(inp.parent / "result.json")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(res_path)  # a child that dies without a record must not read an older one
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _child(reader, mode, inp, out, ctx, argv, res_path, mem_cap)
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        killed = False
        if not ready:
            os.kill(pid, signal.SIGKILL)
            killed = True
        _, status, ru = os.wait4(pid, 0)
    finally:
        os.close(fd)
    dt = time.monotonic() - t0
    rss = ru.ru_maxrss * 1024
    if killed:
        rec = {"outcome": "hang", "sig": f"timeout {timeout:g} s"}
    elif os.WIFSIGNALED(status):
        s = os.WTERMSIG(status)
        rec = {"outcome": "signal", "sig": f"signal {signal.Signals(s).name}"}
    else:
        try:
            with open(res_path) as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            rec = {"outcome": "traceback", "sig": f"child exit {os.WEXITSTATUS(status)} without a result"}
        if rss_limit and rss > rss_limit and rec["outcome"] in ("accepted", "typed"):
            rec = {"outcome": "memory", "sig": f"peak RSS {rss / 2**20:.0f} MiB", "was": rec["outcome"],
                   "msg": rec.get("msg", "")}
    rec["s"] = round(dt, 3)
    rec["rss_mib"] = round(rss / 2**20)
    return rec


def _batch_child(reader, items, wfd: int, timeout: float, mem_cap: int, rss_limit: int) -> None:
    """Body of a batch child: run the API on ``items`` in turn, one JSON line per outcome; never returns.

    The child stops (exit 0) after the first input whose outcome is not ``accepted``/``typed``
    or that pushed its peak resident set over ``rss_limit``, so that the parent restarts a fresh
    child for the rest: only inputs that ended cleanly ever share a process.
    """
    code = 0
    try:
        import faulthandler

        faulthandler.disable()
        if mem_cap:
            resource.setrlimit(resource.RLIMIT_AS, (mem_cap, mem_cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        rec_limit = max(sys.getrecursionlimit(), 1000)

        def _alarm(signum, frame):
            raise _Timeout()

        signal.signal(signal.SIGALRM, _alarm)
        os.write(wfd, b"R\n")  # set up: the parent's deadline for the first input starts now
        for inp, out, ctx in items:
            sys.setrecursionlimit(rec_limit)  # what a one-input child starts with
            t0 = time.monotonic()
            try:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                rec = _api_record(reader, Path(inp), ctx)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except _Timeout:  # the alarm fired after the API returned: still this input's
                rec = {"outcome": "hang", "sig": f"timeout {timeout:g} s"}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            if rss_limit and rss > rss_limit and rec["outcome"] in ("accepted", "typed"):
                rec = {"outcome": "memory", "sig": f"peak RSS {rss / 2**20:.0f} MiB", "was": rec["outcome"],
                       "msg": rec.get("msg", "")}
            rec["s"] = round(time.monotonic() - t0, 3)
            rec["rss_mib"] = round(rss / 2**20)
            line = (json.dumps(rec, allow_nan=False) + "\n").encode("utf-8")
            while line:
                line = line[os.write(wfd, line):]
            if rec["outcome"] not in ("accepted", "typed"):
                break
    except BaseException:  # noqa: BLE001 - the parent classifies the missing record
        code = 3
    finally:
        os._exit(code)


def run_many(reader, items, timeout: float, mem_cap: int, rss_limit: int, grace: float = 5.0) -> list:
    """Run the API of ``reader`` on ``items`` (``(inp, out, ctx)`` triples) in as few forked children as the
    outcomes allow; return one outcome record per item, in order.

    Same isolation as :func:`run_one` for every failure: each child has the ``RLIMIT_AS`` cap, a
    per-input alarm (``setitimer``, ``timeout`` seconds) backed by a parent-side kill at
    ``timeout + grace`` s after the previous input finished (an alarm cannot interrupt code
    that holds the GIL or blocks the signal), and stops after any failure
    outcome or a peak RSS over ``rss_limit``.  A child that dies by a signal, is killed on the
    deadline or exits without a record charges that outcome to the input it was running, and a
    fresh child takes the rest.
    """
    recs = []
    while len(recs) < len(items):
        todo = items[len(recs):]
        rfd, wfd = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(rfd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _batch_child(reader, todo, wfd, timeout, mem_cap, rss_limit)
        os.close(wfd)
        buf, got, killed = b"", 0, False
        try:
            while True:
                left = t0 + timeout + grace - time.monotonic()
                ready, _, _ = select.select([rfd], [], [], max(left, 0.0))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    break
                chunk = os.read(rfd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line != b"R":
                        recs.append(json.loads(line))
                        got += 1
                    t0 = time.monotonic()
            _, status, ru = os.wait4(pid, 0)
        finally:
            os.close(rfd)
        if got < len(todo) and (killed or got == 0 or os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0):
            # the input being run when the child died takes the blame
            if killed:
                rec = {"outcome": "hang", "sig": f"timeout {timeout:g} s (killed)"}
            elif os.WIFSIGNALED(status):
                rec = {"outcome": "signal", "sig": f"signal {signal.Signals(os.WTERMSIG(status)).name}"}
            else:
                rec = {"outcome": "traceback", "sig": f"child exit {os.WEXITSTATUS(status)} without a result"}
            rec["s"] = round(time.monotonic() - t0, 3)
            rec["rss_mib"] = round(ru.ru_maxrss / 2**10)
            recs.append(rec)
    return recs


# =========================================================================== pool worker
_W = {}


def _worker_init(seeds, seed_root):
    """Import once what the children use, so each fork starts warm."""
    import numpy  # noqa: F401

    import eiesim.cli  # noqa: F401
    import eiesim.commands.compress  # noqa: F401
    import eiesim.commands.energy  # noqa: F401
    import eiesim.commands.inspect  # noqa: F401
    import eiesim.commands.plot  # noqa: F401
    import eiesim.commands.simulate  # noqa: F401
    import eiesim.commands.validate  # noqa: F401
    import eiesim.format.validate  # noqa: F401
    import eiesim.report.plots  # noqa: F401
    import eiesim.sim.engine  # noqa: F401
    import eiesim.workloads.models  # noqa: F401
    import matplotlib.pyplot  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _W["seeds"] = seeds
    _W["root"] = seed_root
    _W["ctx"] = {}


def _ctx(reader, seed_dir: str) -> dict:
    """Facts about a seed that the checks compare against (tensor names, layer counts), cached per worker."""
    key = (reader, seed_dir)
    if key not in _W["ctx"]:
        ctx = {"aux": str(Path(_W["root"]) / "aux")}
        d = Path(seed_dir)
        if reader in ("npz", "safetensors", "pth"):
            from eiesim.workloads.models import load_model

            t = load_model(d / MAIN[reader])
            ctx["seed_tensors"] = {k: v.shape for k, v in t.items()}
            ctx["seed_weights"] = [k for k, v in t.items() if v.ndim == 2]
            if reader == "pth":
                with zipfile.ZipFile(d / MAIN[reader]) as zf:
                    ctx["seed_pkl"] = zf.read("archive/data.pkl")
        if reader == "eie":
            from eiesim.format.container import load_network

            ctx["n_layers"] = len(load_network(d / "net.eie").layers)
        _W["ctx"][key] = ctx
    return _W["ctx"][key]


def input_rng(master: int, reader: str, mode: str, i: int) -> random.Random:
    """The random stream of input ``i``: a function of (master seed, reader, mode, i) only."""
    return random.Random(f"eiesim-fuzz/{master}/{reader}/{mode}/{i}")


def build_input(reader, mode, i, master, seeds, work: Path):
    """Write input ``i`` of (reader, mode) under ``work``; returns (seed folder, input folder, description)."""
    r = input_rng(master, reader, mode, i)
    k = r.randrange(len(seeds[reader]))
    seed_dir = Path(seeds[reader][k])
    others = [_read_seed_files(Path(s)) for j, s in enumerate(seeds[reader]) if j != k]
    inp = work / "in"
    desc = make_input(reader, seed_dir, others, inp, r)
    return seed_dir, inp, f"seed {k}: {desc}"


def run_batch(reader, mode, indices, master, timeout, mem_cap, rss_limit, keep_dir=None, isolation="batch"):
    """Pool task: build and run the inputs ``indices`` of (reader, mode); returns their records.

    ``isolation``: ``"batch"`` runs the API inputs of the batch in as few children as the outcomes
    allow (:func:`run_many`); ``"input"`` forks one child per input (:func:`run_one`, always the
    case for the CLI).
    """
    if mode == "api" and isolation == "batch":
        return _run_batch_many(reader, indices, master, timeout, mem_cap, rss_limit, keep_dir)
    seeds = _W["seeds"]
    out_recs = []
    for i in indices:
        work = Path(tempfile.mkdtemp(prefix=f"fz-{reader}-{mode}-{i}-"))
        try:
            try:
                seed_dir, inp, desc = build_input(reader, mode, i, master, seeds, work)
            except Exception as exc:  # noqa: BLE001 - a mutator bug must not stop the run
                out_recs.append({"i": i, "outcome": "harness", "sig": f"mutator {type(exc).__name__}: {exc}"})
                continue
            out = work / "out"
            out.mkdir()
            if mode == "cli":
                (out / "figs").mkdir()
            ctx = _ctx(reader, str(seed_dir))
            argv = cli_argv(reader, inp, out, ctx["aux"], i) if mode == "cli" else None
            rec = run_one(reader, mode, inp, out, ctx, argv, timeout, mem_cap, rss_limit)
            rec.update(i=i, desc=desc)
            if argv:
                rec["argv"] = " ".join(argv[:1]) + " " + " ".join(a.replace(str(work), "$W") for a in argv[1:])
            if keep_dir and rec["outcome"] in FAILURES:
                dst = Path(keep_dir) / f"{reader}-{mode}-{i}"
                if not dst.exists():
                    shutil.copytree(inp, dst)
            out_recs.append(rec)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return reader, mode, out_recs


def _run_batch_many(reader, indices, master, timeout, mem_cap, rss_limit, keep_dir=None):
    """:func:`run_batch` for API inputs: build them all, then run them through :func:`run_many`."""
    seeds = _W["seeds"]
    out_recs, built = [], []
    top = Path(tempfile.mkdtemp(prefix=f"fz-{reader}-api-{indices[0]}-"))
    try:
        for i in indices:
            work = top / str(i)
            try:
                seed_dir, inp, desc = build_input(reader, "api", i, master, seeds, work)
            except Exception as exc:  # noqa: BLE001 - a mutator bug must not stop the run
                out_recs.append({"i": i, "outcome": "harness", "sig": f"mutator {type(exc).__name__}: {exc}"})
                continue
            (work / "out").mkdir()
            built.append((i, inp, desc, _ctx(reader, str(seed_dir))))
        recs = run_many(reader, [(str(inp), str(inp.parent / "out"), ctx) for _, inp, _, ctx in built],
                        timeout, mem_cap, rss_limit)
        for (i, inp, desc, _), rec in zip(built, recs):
            rec.update(i=i, desc=desc)
            if keep_dir and rec["outcome"] in FAILURES:
                dst = Path(keep_dir) / f"{reader}-api-{i}"
                if not dst.exists():
                    shutil.copytree(inp, dst)
            out_recs.append(rec)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return reader, "api", out_recs


# =========================================================================== driver
def format_tables(summary: dict) -> str:
    """One text table per mode: reader x outcome counts."""
    lines = []
    for mode in MODES:
        rows = summary.get(mode) or {}
        if not rows:
            continue
        cols = [o for o in OUTCOMES if any(rows[r].get(o) for r in rows) or o in ("accepted", "typed")]
        cols += ["harness"] if any(rows[r].get("harness") for r in rows) else []
        head = ["reader", "inputs"] + cols
        body = [[r, str(sum(rows[r].values()))] + [f"{rows[r].get(c, 0):,}" for c in cols] for r in rows]
        w = [max(len(x[j]) for x in [head] + body) for j in range(len(head))]
        lines.append(f"{mode.upper()} inputs (outcome counts)")
        lines.append("  ".join(h.ljust(w[j]) if j == 0 else h.rjust(w[j]) for j, h in enumerate(head)))
        lines.append("  ".join("-" * x for x in w))
        for b in body:
            lines.append("  ".join(x.ljust(w[j]) if j == 0 else x.rjust(w[j]) for j, x in enumerate(b)))
        lines.append("")
    return "\n".join(lines)


def run_campaign(readers, n_api, n_cli, *, master=0, workers=None, timeout=20.0, mem_cap=2 << 30,
                 rss_limit=1 << 30, batch=None, keep_dir=None, seed_root=None, progress=None,
                 isolation="batch") -> dict:
    """Run the campaign; return ``{"summary": {mode: {reader: {outcome: n}}}, "failures": [...], ...}``.

    ``isolation`` (API inputs): ``"batch"`` (default) runs each batch in one forked child,
    restarted after any failure; ``"input"`` forks one child per input.
    """
    workers = workers or os.cpu_count() or 1
    own = seed_root is None
    root = Path(seed_root or tempfile.mkdtemp(prefix="eiesim-fuzz-seeds-"))
    t0 = time.monotonic()
    try:
        if not (root / "aux").is_dir():
            seeds = _build_seeds_isolated(root)
        else:
            seeds = json.loads((root / "seeds.json").read_text())
        t_seeds = time.monotonic()
        summary = {m: {r: collections.Counter() for r in readers} for m in MODES if (n_api if m == "api" else n_cli)}
        sigs = {}
        extras = collections.Counter()
        secs = collections.defaultdict(list)
        tasks = []
        for mode, n in (("api", n_api), ("cli", n_cli)):
            if not n:
                continue
            b = batch or (50 if mode == "api" else 10)
            for r in readers:
                for s in range(0, n, b):
                    tasks.append((r, mode, list(range(s, min(n, s + b)))))
        ctx = multiprocessing.get_context("spawn")
        done = 0
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                    initargs=(seeds, str(root))) as ex:
            futs = [ex.submit(run_batch, r, m, idx, master, timeout, mem_cap, rss_limit, keep_dir, isolation)
                    for r, m, idx in tasks]
            for fut in _interruptible(cf.as_completed(futs), ex):
                reader, mode, recs = fut.result()
                for rec in recs:
                    summary[mode][reader][rec["outcome"]] += 1
                    secs[(mode, reader)].append(rec.get("s", 0.0))
                    if rec["outcome"] == "typed" and rec.get("no_code"):
                        extras[(mode, reader, "EieFormatError without code")] += 1
                    if rec["outcome"] in FAILURES or rec["outcome"] == "harness":
                        key = (reader, mode, rec["outcome"], rec.get("sig", ""))
                        if key not in sigs:
                            sigs[key] = {"reader": reader, "mode": mode, "outcome": rec["outcome"],
                                         "signature": rec.get("sig", ""), "count": 0, "first": rec}
                        sigs[key]["count"] += 1
                        if rec["i"] < sigs[key]["first"]["i"]:
                            sigs[key]["first"] = rec
                done += 1
                if progress:
                    progress(done, len(tasks))
        return {
            "seed": master, "workers": workers, "isolation": isolation, "timeout_s": timeout, "mem_cap_bytes": mem_cap,
            "rss_limit_bytes": rss_limit, "wall_s": round(time.monotonic() - t0, 1),
            "inputs": {"api": n_api, "cli": n_cli}, "readers": list(readers),
            "summary": {m: {r: dict(c) for r, c in rows.items()} for m, rows in summary.items()},
            "failures": sorted(sigs.values(), key=lambda s: (s["reader"], s["mode"], -s["count"])),
            "notes": {" / ".join(k): v for k, v in extras.items()},
            "seconds": {f"{m}/{r}": {"total": round(sum(v), 1), "max": max(v)} for (m, r), v in secs.items()},
            "seed_build_s": round(t_seeds - t0, 1),
        }
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _interruptible(futures_iter, ex):
    """Yield from ``futures_iter``; on Ctrl-C cancel what is queued and stop the workers."""
    try:
        yield from futures_iter
    except KeyboardInterrupt:
        ex.shutdown(wait=False, cancel_futures=True)
        for p in list(getattr(ex, "_processes", {}).values()):
            p.kill()
        raise


def _build_seeds_isolated(root: Path) -> dict:
    """Build the seeds in a spawned process (keeps this process free of eiesim and numpy)."""
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        seeds = ex.submit(build_seeds, root).result()
    (root / "seeds.json").write_text(json.dumps(seeds, allow_nan=False))
    return seeds


def replay(reader, mode, i, master, keep: Path, timeout, mem_cap, rss_limit) -> dict:
    """Rebuild input ``i`` into ``keep`` and run it once (in a child, as in the campaign)."""
    root = keep / "seeds"
    seeds = _build_seeds_isolated(root)
    _worker_init(seeds, str(root))
    work = keep / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    seed_dir, inp, desc = build_input(reader, mode, i, master, seeds, work)
    out = work / "out"
    out.mkdir()
    (out / "figs").mkdir()
    ctx = _ctx(reader, str(seed_dir))
    argv = cli_argv(reader, inp, out, ctx["aux"], i) if mode == "cli" else None
    rec = run_one(reader, mode, inp, out, ctx, argv, timeout, mem_cap, rss_limit)
    rec.update(i=i, desc=desc, input=str(inp), argv=argv)
    return rec


def main(argv=None) -> int:
    """Command line of the fuzzer; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", type=int, default=10_000, help="mutated inputs per reader through the API")
    ap.add_argument("--cli", type=int, default=300, help="mutated inputs per reader through the CLI")
    ap.add_argument("--readers", default=",".join(READERS), help=f"comma-separated subset of {','.join(READERS)}")
    ap.add_argument("--seed", type=int, default=0, help="master seed (input i is a function of it)")
    ap.add_argument("--workers", type=int, default=None, help="pool size (default: CPU count)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per input (default 20)")
    ap.add_argument("--mem-cap", type=float, default=2.0, help="RLIMIT_AS of each child in GB (default 2)")
    ap.add_argument("--rss-limit", type=float, default=1.0,
                    help="peak resident set (GB) above which an input counts as a memory blow-up (default 1)")
    ap.add_argument("--isolation", choices=("batch", "input"), default="batch",
                    help="API inputs: one forked child per batch, restarted after any failure (default), "
                         "or one child per input")
    ap.add_argument("--json", metavar="OUT", help="write the tables, failure signatures and reproducers as JSON")
    ap.add_argument("--keep", metavar="DIR", help="copy every failing input into DIR (or, with --replay, the input)")
    ap.add_argument("--replay", nargs=3, metavar=("READER", "MODE", "INDEX"), help="rebuild and run one input")
    a = ap.parse_args(argv)
    readers = [r for r in a.readers.split(",") if r]
    bad = [r for r in readers if r not in READERS]
    if bad:
        ap.error(f"unknown reader(s) {bad}; choose from {READERS}")
    from eiesim.commands._args import check_output_args

    check_output_args(ap, [("--json", a.json)])  # before the campaign, not after
    mem_cap, rss = int(a.mem_cap * 1e9), int(a.rss_limit * 1e9)
    if a.replay:
        if not a.keep:
            ap.error("--replay needs --keep DIR")
        rec = replay(a.replay[0], a.replay[1], int(a.replay[2]), a.seed, Path(a.keep), a.timeout, mem_cap, rss)
        print(json.dumps(rec, indent=1, allow_nan=False))
        return 1 if rec["outcome"] in FAILURES else 0
    if a.keep:
        Path(a.keep).mkdir(parents=True, exist_ok=True)

    def prog(done, total):
        if sys.stderr.isatty():
            print(f"\r{done}/{total} batches", end="", file=sys.stderr, flush=True)

    res = run_campaign(readers, a.api, a.cli, master=a.seed, workers=a.workers, timeout=a.timeout,
                       mem_cap=mem_cap, rss_limit=rss, keep_dir=a.keep, progress=prog, isolation=a.isolation)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"eiesim fuzz: seed {a.seed}, {res['workers']} workers, {a.isolation} isolation, "
          f"{a.timeout:g} s / {a.mem_cap:g} GB per input, "
          f"{res['wall_s']:.0f} s")
    print()
    print(format_tables(res["summary"]))
    if res["failures"]:
        print("failure signatures (reader, mode, outcome, count, signature; first reproducer):")
        for s in res["failures"]:
            f = s["first"]
            print(f"  {s['reader']:<11} {s['mode']:<3} {s['outcome']:<9} {s['count']:>5}  {s['signature']}")
            print(f"      --replay {s['reader']} {s['mode']} {f['i']}  ({f.get('desc', '')[:110]})")
    for k, v in res["notes"].items():
        print(f"note: {k}: {v}")
    if a.json:
        from eiesim._io import write_atomic

        write_atomic(a.json, json.dumps(res, indent=1, default=str, allow_nan=False).encode("utf-8"))
    return 1 if any(s["outcome"] in FAILURES or s["outcome"] == "harness" for s in res["failures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
