"""Property-based fuzzing of the three readers and the validator.

Every mutated input (byte flips, truncations, extensions, absurd sizes
written into size fields, manifest edits, missing or extra files) must end
in a valid load or a typed :class:`~eiesim.errors.EieError` -- never another
exception -- within 1 s of CPU time and 200 MB of traced memory, and nothing
is ever unpickled.

The number of examples per property is bounded for the test suite; a longer
campaign is the same file with more examples::

    EIESIM_FUZZ_EXAMPLES=5000 python -m pytest -q tests/format/test_fuzz_readers.py
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eiesim.errors import EieError  # noqa: E402
from eiesim.format import CompressedLayer, read_dump, write_dump  # noqa: E402
from eiesim.format.container import load_network, save_network  # noqa: E402
from eiesim.format.dcnet import encode_dense, net_to_bytes, read_net  # noqa: E402
from eiesim.format.validate import validate_container, validate_dump, validate_net  # noqa: E402

from ..conftest import CB16

N_EXAMPLES = int(os.environ.get("EIESIM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, derandomize="EIESIM_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CPU_LIMIT_S = 1.0
MEM_LIMIT_B = 200e6
TRIED = {"eie": 0, "dump": 0, "net": 0}


def _bounded(fn, *args, **kwargs):
    """Run ``fn``; it must return or raise EieError, within the CPU and memory limits.

    Returns ``(result, None)`` or ``(None, the EieError)``.
    """
    tracemalloc.start()
    t0 = time.process_time()
    out = (None, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = (fn(*args, **kwargs), None)
    except EieError as exc:
        assert str(exc)
        out = (None, exc)
    finally:
        cpu = time.process_time() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert cpu < CPU_LIMIT_S, f"{fn.__name__} took {cpu:.2f} s of CPU"
    assert peak < MEM_LIMIT_B, f"{fn.__name__} peaked at {peak / 1e6:.0f} MB"
    return out


def _agree(loaded, report, *, tolerated=()) -> None:
    """A report without errors (nor the ``tolerated`` warnings) means the reader accepts the input."""
    rep, rep_exc = report
    if rep is None:
        return
    if not rep.errors and not rep.codes() & set(tolerated):
        assert loaded[1] is None, f"validator: conformant; reader: {loaded[1]!r}"


# ---------------------------------------------------------------- base inputs
def _layers():
    rng = np.random.default_rng(7)
    c1 = (rng.random((40, 24)) < 0.25) * rng.integers(1, 16, (40, 24))
    c1[30:, 5] = 0
    c1[39, 5] = 3  # a gap of >= 16 local rows in PE 0? (N = 2: local rows 0..19)
    c2 = (rng.random((6, 40)) < 0.4) * rng.integers(1, 16, (6, 40))
    l1 = CompressedLayer.from_codes(c1, CB16, 2, bias_codes=rng.integers(0, 16, 40), name="a")
    l2 = CompressedLayer.from_codes(c2, CB16, 4, name="b")
    return l1, l2


def _container_bytes(**opts) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "b.eie"
        save_network(p, list(_layers()), metadata={"k": [1, 2]}, **opts)
        return p.read_bytes()


def _stored_copy(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for i in src.infolist():
            dst.writestr(i.filename, src.read(i))
    return out.getvalue()


EIE_BASES = [_container_bytes(packed=True, huffman=True), _stored_copy(_container_bytes(packed=True, huffman=True)),
             _container_bytes(huffman=True, store_vz=False)]


def _zip_hot_offsets(data: bytes):
    """Offsets of the size, offset and count fields of every ZIP header."""
    hot = []
    for sig, fields in ((b"PK\x03\x04", (14, 18, 22, 26, 28)), (b"PK\x01\x02", (16, 20, 24, 28, 30, 42)),
                        (b"PK\x05\x06", (8, 10, 12, 16, 20))):
        at = data.find(sig)
        while at >= 0:
            hot += [at + f for f in fields if at + f + 4 <= len(data)]
            at = data.find(sig, at + 4)
    return sorted(set(hot))


def _net_base():
    codes = np.zeros((8, 50), dtype=np.int64)
    codes.flat[[0, 3, 40, 41, 90, 150, 151, 200, 260, 300, 399]] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    a = encode_dense(codes, CB16, np.linspace(-1, 1, 8), name="fc", code_bits=4)
    cb256 = np.concatenate([[0.0], np.arange(1, 256) / 256.0]).astype(np.float32)
    c8 = np.zeros((6, 2, 3, 3), dtype=np.int64)
    c8.flat[::3] = 1 + np.arange(36) % 255
    b = encode_dense(c8, cb256, np.zeros(6), name="conv", code_bits=8)
    return net_to_bytes([a, b]), [a.spec, b.spec]


NET_BASE, NET_SPECS = _net_base()


def _dump_files():
    lay = CompressedLayer.from_codes(np.eye(12, 9, dtype=np.int64) * 3 + np.eye(12, 9, -2, dtype=np.int64), CB16, 4,
                                     bias_codes=np.arange(12) % 16, name="d")
    with tempfile.TemporaryDirectory() as d:
        root = write_dump(lay, Path(d) / "dump", activations=np.linspace(0, 1, 9, dtype=np.float32))
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


DUMP_FILES = _dump_files()

BIG = [0, 1, 2, 7, 255, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF0, 10**9]


@st.composite
def mutate_bytes(draw, data: bytes, hot=()):
    buf = bytearray(data)
    for op in draw(st.lists(st.sampled_from(["flip", "trunc", "extend", "u32", "u16", "zero"]), min_size=1,
                            max_size=3)):
        if op == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= draw(st.integers(1, 255))
        elif op == "trunc":
            del buf[draw(st.integers(0, len(buf))):]
        elif op == "extend":
            buf += draw(st.binary(min_size=1, max_size=40))
        elif op in ("u32", "u16") and len(buf) >= 4:
            w = 4 if op == "u32" else 2
            cand = st.integers(0, len(buf) - w)
            valid_hot = [h for h in hot if h + w <= len(buf)]
            i = draw(st.one_of(st.sampled_from(valid_hot), cand) if valid_hot else cand)
            val = draw(st.one_of(st.sampled_from(BIG), st.integers(0, 2**32 - 1)))
            buf[i:i + w] = struct.pack("<I" if w == 4 else "<H", val & (0xFFFFFFFF if w == 4 else 0xFFFF))
        elif op == "zero" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i:i + draw(st.integers(1, 64))] = b"\x00" * len(buf[i:i + 64][:64])
    return bytes(buf)


# ---------------------------------------------------------------- container
@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="eiesim-fuzz-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _check_container(path: Path) -> None:
    TRIED["eie"] += 1
    cheap = _bounded(load_network, path)
    full = _bounded(load_network, path, check="full")
    rep = _bounded(validate_container, path)
    _agree(cheap, rep)
    _agree(full, rep, tolerated=("RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING"))


@FUZZ
@given(st.data())
def test_fuzz_container_bytes(workdir, data):
    base = data.draw(st.sampled_from(EIE_BASES))
    blob = data.draw(mutate_bytes(base, tuple(_zip_hot_offsets(base))))
    p = workdir / "f.eie"
    p.write_bytes(blob)
    _check_container(p)


def _scalar_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _scalar_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _scalar_paths(v, prefix + (i,))


WEIRD = [None, True, -1, 0, 1, 2**31, 2**62, 2**64, 10**400, 1.5, "", "x", "<f8", "|O", [], {}, [2**40, 2**40],
         [0], [-1], "../../etc/passwd"]


@FUZZ
@given(st.data())
def test_fuzz_container_manifest(workdir, data):
    base = EIE_BASES[0]
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        items = {i.filename: zf.read(i) for i in zf.infolist()}
    m = json.loads(items["manifest.json"])
    paths = sorted(_scalar_paths(m), key=repr)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = m
        try:
            for k in path[:-1]:
                parent = parent[k]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(st.sampled_from(WEIRD))
        except (KeyError, IndexError, TypeError):
            pass
    try:
        items["manifest.json"] = json.dumps(m).encode()
    except ValueError:
        return
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in items.items():
            zf.writestr(name, blob)
    p = workdir / "m.eie"
    p.write_bytes(out.getvalue())
    _check_container(p)


# ---------------------------------------------------------------- dump directory
@FUZZ
@given(st.data())
def test_fuzz_dump(workdir, data):
    files = dict(DUMP_FILES)
    names = sorted(files)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["mutate", "mutate", "delete", "add"]))
        name = data.draw(st.sampled_from(names))
        if op == "mutate" and name in files:
            files[name] = data.draw(mutate_bytes(files[name], (0, 4, 8)))
        elif op == "delete":
            files.pop(name, None)
        else:
            k = data.draw(st.sampled_from([4, 5, 63, 99999]))
            files[data.draw(st.sampled_from([f"ptr/ptr{k}.dat", f"spm/spm{k}.dat"]))] = data.draw(
                st.binary(max_size=40))
    root = workdir / "dump"
    shutil.rmtree(root, ignore_errors=True)
    for name, blob in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    TRIED["dump"] += 1
    loaded = _bounded(read_dump, root)
    rep = _bounded(validate_dump, root)
    _bounded(validate_dump, root, n_out=12)
    if rep[0] is not None and rep[0].layers and rep[0].layers[0].real_nonzeros:
        _agree(loaded, rep, tolerated=("RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING"))


# ---------------------------------------------------------------- .net stream
@FUZZ
@given(st.data())
def test_fuzz_net(workdir, data):
    blob = data.draw(mutate_bytes(NET_BASE, (0, 4)))
    p = workdir / "f.net"
    p.write_bytes(blob)
    TRIED["net"] += 1
    _agree(_bounded(read_net, p, NET_SPECS), _bounded(validate_net, p, NET_SPECS))


def test_readers_agree_with_validator_on_the_bases(workdir):
    """Sanity: the unmutated bases load and validate clean."""
    for i, base in enumerate(EIE_BASES):
        p = workdir / f"base{i}.eie"
        p.write_bytes(base)
        load_network(p, check="full")
        assert validate_container(p).codes() <= {"CODEBOOK-UNUSED"}
    p = workdir / "base.net"
    p.write_bytes(NET_BASE)
    read_net(p, NET_SPECS)
    assert validate_net(p, NET_SPECS).codes() <= {"CODEBOOK-UNUSED"}


def test_report_case_counts(capsys):
    with capsys.disabled():
        print(f"\nfuzz cases tried this run: {TRIED} (max_examples = {N_EXAMPLES} per property)")
