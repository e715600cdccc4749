"""The ``.eie`` container: round trips, version policy, v1 compatibility, atomic writes."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer
from eiesim.format.container import (
    FORMAT_MINOR_VERSION,
    FORMAT_VERSION,
    Network,
    load_container,
    load_network,
    save_network,
)
from eiesim.format.validate import validate_container

from ..conftest import CB16

TRACES = Path(__file__).resolve().parents[2] / "traces"


def make_net(seed=0) -> Network:
    rng = np.random.default_rng(seed)
    c1 = (rng.random((40, 30)) < 0.2) * rng.integers(1, 16, (40, 30))
    c2 = (rng.random((7, 40)) < 0.5) * rng.integers(1, 16, (7, 40))
    c1[:, 3] = 0  # an empty column
    l1 = CompressedLayer.from_codes(c1, CB16, 4, bias_codes=rng.integers(0, 16, 40), name="fc1")
    l2 = CompressedLayer.from_codes(c2, CB16, 4, name="fc2")
    return Network((l1, l2), activation="relu", metadata={"source_model": "random", "seed": seed})


def same_layer(a: CompressedLayer, b: CompressedLayer) -> bool:
    return (a.shape == b.shape and a.n_pe == b.n_pe and a.has_bias == b.has_bias and a.name == b.name
            and a.code_bits == b.code_bits and a.index_bits == b.index_bits
            and np.array_equal(a.ptr, b.ptr) and np.array_equal(a.v, b.v) and np.array_equal(a.z, b.z)
            and a.codebook.tobytes() == b.codebook.tobytes())


@pytest.mark.parametrize("opts", [
    {},
    {"packed": True},
    {"huffman": True},
    {"packed": True, "huffman": True},
    {"packed": True, "store_vz": False},
    {"huffman": True, "store_vz": False},
])
def test_round_trip(tmp_path, opts):
    net = make_net()
    p = tmp_path / "n.eie"
    save_network(p, net, metadata={"dataset": "none"}, **opts)
    c = load_container(p, check="full")
    assert c.version == (FORMAT_VERSION, FORMAT_MINOR_VERSION)
    assert all(same_layer(a, b) for a, b in zip(net.layers, c.network.layers))
    assert c.network.activation == "relu"
    assert c.network.metadata == {"source_model": "random", "seed": 0, "dataset": "none"}
    for cl in c.layers:
        assert cl.pointer_bits == 16
        assert (cl.packed is not None) == bool(opts.get("packed"))
        assert (cl.huffman is not None) == bool(opts.get("huffman"))
    assert validate_container(p).findings == []


def test_manifest_is_self_describing(tmp_path):
    p = tmp_path / "n.eie"
    save_network(p, make_net(), fixed_point=EIEConfig(), layer_compression=[{"density": 0.2}, None])
    with zipfile.ZipFile(p) as zf:
        m = json.loads(zf.read("manifest.json"))
        names = set(zf.namelist())
    assert m["format"] == "eiesim-container" and m["version"] == 2 and m["minor_version"] == 1
    assert [lm["kind"] for lm in m["layers"]] == ["fc", "fc"]
    assert m["fixed_point"] == {"total_bits": 16, "act_frac_bits": 8, "weight_frac_bits": 12,
                                "rounding": "nearest", "saturate": True}
    l0 = m["layers"][0]
    for key in ("name", "shape", "n_pe", "code_bits", "index_bits", "pointer_bits", "has_bias", "bias_handling",
                "codebook_format", "n_entries", "n_fillers", "n_nonzeros", "arrays"):
        assert key in l0
    assert l0["bias_handling"] == "column" and m["layers"][1]["bias_handling"] == "none"
    assert l0["compression"] == {"density": 0.2} and "compression" not in m["layers"][1]
    assert l0["arrays"]["ptr"]["dtype"] == "<u2"
    assert {d["file"] for d in l0["arrays"].values()} <= names
    c = load_container(p)
    assert c.fixed_point["weight_frac_bits"] == 12 and c.layers[0].compression == {"density": 0.2}


def test_writer_is_deterministic(tmp_path):
    save_network(tmp_path / "a.eie", make_net(), huffman=True)
    save_network(tmp_path / "b.eie", make_net(), huffman=True)
    assert (tmp_path / "a.eie").read_bytes() == (tmp_path / "b.eie").read_bytes()


def test_pointer_bits(tmp_path):
    p = tmp_path / "n.eie"
    save_network(p, make_net(), pointer_bits=12)
    assert [cl.pointer_bits for cl in load_container(p).layers] == [12, 12]
    with pytest.raises(EieFormatError) as ei:
        save_network(p, make_net(), pointer_bits=3)
    assert ei.value.code == "PTR-WIDTH"
    save_network(p, make_net(), pointer_bits=40)
    with zipfile.ZipFile(p) as zf:
        assert json.loads(zf.read("manifest.json"))["layers"][0]["arrays"]["ptr"]["dtype"] == "<i8"
    assert load_network(p).layers[0].ptr.dtype == np.int64


def test_writer_refusals(tmp_path):
    p = tmp_path / "n.eie"
    with pytest.raises(EieFormatError, match="store_vz"):
        save_network(p, make_net(), store_vz=False)
    cb256 = np.concatenate([[0.0], np.arange(1, 256) / 256.0]).astype(np.float32)
    wide = CompressedLayer.from_codes(np.eye(4, dtype=int) * 7, cb256, 2, code_bits=8, name="wide")
    with pytest.raises(EieFormatError, match="packed"):
        save_network(p, [wide], packed=True)
    save_network(p, [wide], huffman=True)  # 8-bit codes are fine without the packed image
    assert same_layer(load_network(p).layers[0], wide)
    with pytest.raises(EieFormatError, match="JSON"):
        save_network(p, make_net(), metadata={"x": object()})
    with pytest.raises(EieFormatError):
        save_network(p, make_net(), fixed_point={"total_bits": 16, "act_frac_bits": 20, "weight_frac_bits": 1})


def test_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "n.eie"
    save_network(p, make_net(0))
    before = p.read_bytes()
    with pytest.raises(EieFormatError):
        save_network(p, make_net(1), metadata={"bad": float("nan")})  # not JSON (allow_nan=False)
    import eiesim.format.container as cont

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cont, "_npy_bytes", boom)
    with pytest.raises(RuntimeError):
        save_network(p, make_net(1))
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["n.eie"]  # no temporary file left


def test_load_check_full_refuses_non_canonical(tmp_path):
    lay = make_net().layers[1]
    z = lay.z.copy()
    v = lay.v.copy()
    # make a trailing filler out of the last entry of PE 0's first non-empty column
    k0 = int(np.flatnonzero(np.diff(lay.ptr[0]) > 0)[0])
    i = int(lay.ptr[0, k0 + 1]) - 1
    v2 = np.insert(v, i + 1, 0)
    z2 = np.insert(z, i + 1, 0)
    ptr = lay.ptr.copy()
    ptr[0, k0 + 1:] += 1
    bad = CompressedLayer(shape=lay.shape, n_pe=lay.n_pe, codebook=lay.codebook, ptr=ptr, v=v2, z=z2)
    p = tmp_path / "b.eie"
    save_network(p, [bad])
    load_network(p)  # the cheap tier accepts it
    with pytest.raises(EieFormatError) as ei:
        load_network(p, check="full")
    assert ei.value.code == "RELIDX-FILLER-NONCANONICAL"
    assert validate_container(p).codes() == {"RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING"}
    with pytest.raises(EieFormatError):
        load_network(p, check="everything")


# ---------------------------------------------------------------- version 1 files
def write_v1(path: Path, net: Network) -> None:
    """The first container exactly as the v1 writer produced it (integer version, int64 pointers)."""
    def npy(a):
        b = io.BytesIO()
        np.save(b, a, allow_pickle=False)
        return b.getvalue()

    layers = []
    members = []
    for i, lay in enumerate(net.layers):
        decl = {}
        for name, arr, dt in (("ptr", lay.ptr, "<i8"), ("v", lay.v, "|u1"), ("z", lay.z, "|u1"),
                              ("codebook", lay.codebook, "<f4")):
            member = f"layers/{i}/{name}.npy"
            members.append((member, npy(np.ascontiguousarray(arr, dtype=dt))))
            decl[name] = {"file": member, "dtype": dt, "shape": list(arr.shape)}
        layers.append({"name": lay.name, "shape": [lay.n_out, lay.n_in], "n_pe": lay.n_pe,
                       "code_bits": lay.code_bits, "index_bits": lay.index_bits, "has_bias": lay.has_bias,
                       "bias_handling": "column quantised with the weight codebook (input 1.0)" if lay.has_bias
                       else "none", "codebook_format": "float32", "n_entries": lay.n_entries,
                       "n_fillers": lay.n_fillers, "arrays": decl})
    manifest = {"format": "eiesim-container", "version": 1, "kind": "network", "activation": net.activation,
                "layers": layers, "metadata": net.metadata}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for m, d in members:
            zf.writestr(m, d)


def test_reads_version_1(tmp_path):
    net = make_net()
    p = tmp_path / "v1.eie"
    write_v1(p, net)
    c = load_container(p)
    assert c.version == (1, 0)
    assert all(same_layer(a, b) for a, b in zip(net.layers, c.network.layers))
    assert c.layers[0].pointer_bits is None
    rep = validate_container(p)
    assert rep.findings == [] and rep.version == "1.0"


def test_committed_trace_loads_and_validates():
    p = TRACES / "lenet300100.eie"
    net = load_network(p)
    assert [l.name for l in net.layers] == ["ip1", "ip2", "ip3"]
    rep = validate_container(p)
    assert rep.conformant(), [str(f) for f in rep.findings]
    assert rep.codes() <= {"CODEBOOK-UNUSED"}


def _with_manifest(tmp_path, edit):
    """A saved network whose manifest ``edit(manifest)`` changed; returns the new file's path."""
    p = tmp_path / "n.eie"
    save_network(p, make_net())
    with zipfile.ZipFile(p) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    q = tmp_path / "q.eie"
    with zipfile.ZipFile(q, "w") as zf:
        for name, data in items:
            if name == "manifest.json":
                m = json.loads(data)
                edit(m)
                data = json.dumps(m).encode()
            zf.writestr(name, data)
    return q


def test_load_errors_name_file_layer_and_code(tmp_path):
    q = _with_manifest(tmp_path, lambda m: m["layers"][1].update(shape=[7, 41]))
    with pytest.raises(EieFormatError) as ei:
        load_network(q)
    assert str(q) in str(ei.value) and "layer 1" in str(ei.value)
    assert ei.value.code in {"PTR-SHORT", "META-INCONSISTENT"}


def test_an_array_declared_too_large_is_named_as_such(tmp_path):
    """A declaration with all three fields but a shape of 2**40 said "needs 'file', 'dtype' and 'shape'"
    (fresh-user finding 6): the message now names the shape's rule."""
    q = _with_manifest(tmp_path, lambda m: m["layers"][0]["arrays"]["v"].update(shape=[2**40]))
    with pytest.raises(EieFormatError, match=r"array 'v': 'shape' must be a list of integer sizes in "
                                             r"\[0, 2147483648\]") as ei:
        load_network(q)
    assert ei.value.code == "META-MISSING"
    assert any("'shape' must be a list of integer sizes" in str(f) for f in validate_container(q).findings)


# ---------------------------------------------------------------- the spec page is enough to write a reader
DOCS = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def test_minimal_reader_from_docs_reads_our_files(tmp_path):
    """docs/FORMAT.md §7 (a reader written from the page alone) decodes what save_network writes."""
    text = DOCS.read_text()
    code = text[text.index("## 7."):].split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "FORMAT.md#7", "exec"), ns)
    net = make_net()
    for opts in ({}, {"packed": True, "store_vz": False}):
        p = tmp_path / "n.eie"
        save_network(p, net, **opts)
        activation, layers = ns["read_eie"](p)
        assert activation == "relu"
        for lay, (name, W, b) in zip(net.layers, layers):
            assert name == lay.name
            assert np.array_equal(W, lay.to_dense())
            if lay.has_bias:
                assert np.array_equal(b, lay.bias_values())
            else:
                assert b is None


def test_empty_layer_round_trips(tmp_path):
    """n = 0: no entries at all is a legal layer (every PE and column empty)."""
    empty = CompressedLayer.from_codes(np.zeros((5, 7), dtype=int), CB16, 4, name="empty")
    p = tmp_path / "e.eie"
    save_network(p, [empty], packed=True, huffman=True)
    back = load_network(p, check="full").layers[0]
    assert back.n_entries == 0 and same_layer(back, empty)
    rep = validate_container(p)
    assert rep.conformant() and rep.codes() == {"CODEBOOK-UNUSED"}
    assert rep.layers[0].stored_entries == 0 and rep.layers[0].empty_pes == 4


def test_device_file_is_refused_without_reading():
    """/dev/zero would never end: the reader refuses non-regular files up front."""
    import os

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(EieFormatError, match="not a regular file"):
        load_network("/dev/zero")
