"""``eiesim compress`` on tiny models in every input format (.npz, safetensors, torch .pth)."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.format.container import load_network

from ..conftest import run_cli as run


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return collections.OrderedDict([
        ("net.0.weight", rng.standard_normal((40, 30)).astype(np.float32)),
        ("net.0.bias", (0.1 * rng.standard_normal(40)).astype(np.float32)),
        ("net.2.weight", rng.standard_normal((10, 40)).astype(np.float32)),
        ("net.2.bias", (0.1 * rng.standard_normal(10)).astype(np.float32)),
    ])


def _write_pth(path, tensors, extra=None):
    """A torch.save-style zip written without torch (stand-in module names while pickling only)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):  # pragma: no cover - never called
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    torch._utils = utils

    class Stor:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

    class T:
        def __init__(self, st, shape):
            self.st, self.shape = st, shape

        def __reduce__(self):
            stride = tuple(int(s) // 4 for s in np.empty(self.shape, np.float32).strides)
            return (_rebuild_tensor_v2, (self.st, 0, self.shape, stride, False, collections.OrderedDict()))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Stor):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.arr.size)
            return None

    stors = [Stor(str(i), np.ascontiguousarray(a, np.float32).ravel()) for i, a in enumerate(tensors.values())]
    sd = collections.OrderedDict((k, T(s, tuple(a.shape))) for (k, a), s in zip(tensors.items(), stors))
    sd.update(extra or {})
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    try:
        sys.modules.update({"torch": torch, "torch._utils": utils})
        buf = io.BytesIO()
        P(buf, protocol=2).dump(sd)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k, None) if v is None else sys.modules.__setitem__(k, v)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model/data.pkl", buf.getvalue())
        for s in stors:
            zf.writestr(f"model/data/{s.key}", s.arr.astype("<f4").tobytes())
        zf.writestr("model/version", "3\n")


def _write(fmt, path, tensors):
    if fmt == "npz":
        np.savez(path, **tensors)
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file(dict(tensors), str(path))
    else:
        _write_pth(path, tensors)


@pytest.mark.parametrize("fmt, ext", [("npz", ".npz"), ("safetensors", ".safetensors"), ("pth", ".pth")])
def test_compress_each_format(capsys, tmp_path, fmt, ext):
    t = _model()
    src = tmp_path / f"model{ext}"
    _write(fmt, src, t)
    out_eie = tmp_path / "out.eie"
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "compress", src, "--out", out_eie, "--density", "0.25,0.5",
                         "--bits", "4", "--huffman", "--json", js)
    assert code == 0, err
    assert "compress rate (P+Q+H)" in out and "dense float32 weights and biases" in out
    net = load_network(out_eie)
    assert [l.name for l in net.layers] == ["net.0", "net.2"]
    assert [l.shape for l in net.layers] == [(40, 30), (10, 40)]
    meta = net.metadata
    assert meta["source"]["file"] == src.name and len(meta["source"]["sha256"]) == 64
    c = meta["compression"]
    assert c["requested_densities"] == [0.25, 0.5] and c["code_bits"] == [4, 4]
    assert c["kmeans_init"] == "linear" and c["seed"] == 0
    for layer, (wname, dens) in zip(net.layers, (("net.0.weight", 0.25), ("net.2.weight", 0.5))):
        w = t[wname]
        dense = layer.to_dense()
        kept = dense != 0
        assert kept.sum() == round(dens * w.size)
        # the kept ones are the largest in magnitude, each mapped to a codebook value
        assert np.abs(w[kept]).min() >= np.abs(w[~kept]).max()
        assert np.isin(dense[kept], layer.codebook[1:]).all()
        assert layer.has_bias and layer.code_bits == 4 and layer.n_pe == 64
    doc = json.loads(js.read_text())
    assert doc["storage_total"]["n_kept"] == 300 + 200
    assert doc["layers"][0]["bias"] == "net.0.bias"


def test_compress_layers_option_and_one_layer(capsys, tmp_path):
    src = tmp_path / "m.npz"
    np.savez(src, **_model(1))
    out_eie = tmp_path / "one.eie"
    code, out, err = run(capsys, "compress", src, "--out", out_eie, "--layers", "net.2.weight",
                         "--quality", "0.5", "--bits", "3", "--n-pe", "4", "--init", "density")
    assert code == 0, err
    (layer,) = load_network(out_eie).layers
    assert layer.shape == (10, 40) and layer.code_bits == 3 and layer.n_pe == 4
    table_total = next(l for l in out.splitlines() if l.startswith("total"))
    assert " - " in table_total  # no --huffman: P+Q+H columns are '-'


def test_malicious_pth_refused_nothing_runs(capsys, tmp_path):
    marker = tmp_path / "it_ran"

    class RunsShell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "evil.pth"
    _write_pth(src, _model(), extra={"x": RunsShell()})
    out_eie = tmp_path / "out.eie"
    code, out, err = run(capsys, "compress", src, "--out", out_eie)
    assert code == 2
    assert "system" in err and "refusing" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists() and not out_eie.exists()


@pytest.mark.parametrize(
    "argv_tail, needle",
    [
        (["--density", "0.5,0.5,0.5"], "3 values for 2 layers"),
        (["--density", "1.5"], "outside [0, 1]"),
        (["--bits", "9"], "outside 1..8"),
        (["--layers", "net.2.weight,net.0.weight"], "do not form a chain"),
        (["--layers", "net.0.weight,net.0.weight"], "given more than once"),
        (["--layers", "nope"], "no array named"),
    ],
)
def test_compress_bad_arguments_exit_2(capsys, tmp_path, argv_tail, needle):
    src = tmp_path / "m.npz"
    np.savez(src, **_model())
    code, out, err = run(capsys, "compress", src, "--out", tmp_path / "o.eie", *argv_tail)
    assert code == 2 and needle in err, err


def test_compress_missing_file(capsys, tmp_path):
    code, out, err = run(capsys, "compress", tmp_path / "none.safetensors", "--out", tmp_path / "o.eie")
    assert code == 2 and "no such file" in err


def test_compress_without_bias_stores_no_bias_column(capsys, tmp_path):
    """Issue 9 W3: a weight without ``<prefix>.bias`` gets no bias column, hence no bias broadcast.

    On a 64x64 layer over 64 PEs every PE takes every broadcast column, so the
    pointer SRAM reads per input are exactly 64 x (non-zero activations); a
    bias column would add one more broadcast (64 more pointer reads and 2 more
    cycles, the old behaviour).
    """
    from eiesim.format.layout import CompressedLayer
    from eiesim.sim.engine import simulate

    rng = np.random.default_rng(9)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    src = tmp_path / "nobias.npz"
    np.savez(src, **{"fc.weight": w})
    out_eie = tmp_path / "nobias.eie"
    code, out, err = run(capsys, "compress", src, "--out", out_eie, "--density", "0.5", "--bits", "4")
    assert code == 0, err
    assert "no bias" in out
    (layer,) = load_network(out_eie).layers
    assert not layer.has_bias and layer.n_cols == 64
    a = np.where(rng.random(64) < 0.5, rng.standard_normal(64), 0).astype(np.float32)
    nz = int(np.count_nonzero(a))
    for backend in ("kernel", "reference"):
        r = simulate(layer, a, backend=backend)
        assert r.counters["ptr_reads"] == 64 * nz
    # the same codes with an (all-zero) bias column: one more broadcast
    codes = np.zeros((64, 64), np.int64)
    dense = layer.to_dense()
    for k in range(1, layer.codebook.size):
        codes[dense == layer.codebook[k]] = k
    with_col = CompressedLayer.from_codes(codes, layer.codebook, n_pe=64, bias_codes=np.zeros(64, np.int64),
                                          code_bits=4, index_bits=layer.index_bits)
    rb = simulate(with_col, a)
    assert rb.counters["ptr_reads"] == 64 * (nz + 1)
    assert rb.cycles == r.cycles + 2


@pytest.mark.parametrize("weights,codes", [
    (np.repeat(np.array([-2, -1, 0.5, 1, 2], np.float32), 20).reshape(10, 10), {"CODEBOOK-UNUSED"}),
    (np.full((8, 8), 0.3, np.float32), {"CODEBOOK-DUPLICATE", "CODEBOOK-UNUSED"}),
])
def test_compress_says_what_validate_would_warn(tmp_path, capsys, weights, codes):
    """Issue 9: compress was silent about duplicate/unused/zero centroids that validate then warned about."""
    import json as _json

    from eiesim.cli import main as _main
    from eiesim.format.validate import validate

    np.savez(tmp_path / "m.npz", fc=weights)
    out_eie, js = tmp_path / "m.eie", tmp_path / "m.json"
    assert _main(["compress", str(tmp_path / "m.npz"), "--out", str(out_eie), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    want = {f.code for f in validate(out_eie).findings if f.severity == "warning"}
    assert codes <= want
    for code in want:
        assert f"warning {code} [layer 'fc']" in out
    assert {f["code"] for f in _json.loads(js.read_text())["findings"]} == want


def _scipy_weight(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((30, 40)) * (rng.random((30, 40)) < 0.2)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_compress_reads_scipy_save_npz(tmp_path, capsys, fmt):
    """Issue 9: a scipy save_npz file gave 'no 2-D floating-point array'."""
    import scipy.sparse as sp

    from eiesim.workloads.models import load_model

    w = _scipy_weight()
    m = {"csr": sp.csr_array, "csc": sp.csc_array, "coo": sp.coo_array}[fmt](w)
    if fmt != "coo":  # indices unsorted within each row/column, as scipy leaves them after some operations
        for k in range(m.indptr.size - 1):
            a, b = m.indptr[k], m.indptr[k + 1]
            m.indices[a:b], m.data[a:b] = m.indices[a:b][::-1].copy(), m.data[a:b][::-1].copy()
        m.has_sorted_indices = False
    sp.save_npz(tmp_path / "fc6.npz", m)
    got = load_model(tmp_path / "fc6.npz")
    assert list(got) == ["fc6"] and np.array_equal(got["fc6"], w)
    out_eie = tmp_path / "fc6.eie"
    assert main(["compress", str(tmp_path / "fc6.npz"), "--out", str(out_eie), "--n-pe", "4"]) == 0
    (layer,) = load_network(out_eie).layers
    assert layer.name == "fc6" and layer.shape == (30, 40)
    assert np.array_equal(layer.to_dense() != 0, w != 0)  # every kept weight in place (no pruning asked)


@pytest.mark.parametrize("fmt", ["csr", "coo"])
def test_compress_refuses_duplicate_sparse_entries(tmp_path, capsys, fmt):
    import scipy.sparse as sp

    if fmt == "csr":
        m = sp.csr_array((np.array([1.0, 2.0], np.float32), np.array([3, 3]), np.array([0, 2, 2])), shape=(2, 5))
    else:
        m = sp.coo_array((np.array([1.0, 2.0, 3.0]), (np.array([0, 1, 0]), np.array([2, 2, 2]))), shape=(2, 3))
    sp.save_npz(tmp_path / "d.npz", m)
    assert main(["compress", str(tmp_path / "d.npz"), "--out", str(tmp_path / "d.eie")]) == 2
    err = capsys.readouterr().err
    entry = "(0, 3)" if fmt == "csr" else "(0, 2)"
    assert f"d.npz: scipy sparse .npz: entry {entry} is stored" in err and "scipy would sum them" in err
    assert not (tmp_path / "d.eie").exists()


def test_compress_names_stream_and_file_sizes(tmp_path, capsys):
    """Issue 9: the headline rate was the Deep Compression stream's only, not that of the .eie written."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", **{"fc1.weight": rng.standard_normal((300, 784)).astype(np.float32),
                                    "fc1.bias": rng.standard_normal(300).astype(np.float32)})
    out_eie, js = tmp_path / "m.eie", tmp_path / "m.json"
    assert main(["compress", str(tmp_path / "m.npz"), "--out", str(out_eie), "--density", "0.08",
                 "--json", str(js)]) == 0
    out = capsys.readouterr().out
    sizes = json.loads(js.read_text())["sizes"]
    assert sizes["eie_file_bytes"] == os.path.getsize(out_eie)
    assert sizes["dense_bytes"] == 4 * (300 * 784 + 300)
    assert sizes["dc_stream_pq_bytes"] < sizes["eie_file_bytes"] < sizes["dense_bytes"]
    f = sizes["eie_file_bytes"]
    assert (f"this .eie file (per-PE EIE layout: pointers per PE and column, codebooks, biases, manifest, ZIP): "
            f"{f / 1000:,.1f} KB, {100 * f / sizes['dense_bytes']:.2f} %") in out
    assert "Deep Compression stream, pruned + quantised (P+Q; the table's rate)" in out


def test_non_finite_weights_are_blamed_on_the_file_and_layer(capsys, tmp_path):
    """Regression (fresh-user test): the NaN error named the layer but not the file."""
    tensors = _model(1)
    name = next(iter(tensors))
    tensors[name] = tensors[name].copy()
    tensors[name].flat[3] = np.nan
    src = tmp_path / "nan_w.npz"
    np.savez(src, **tensors)
    code, out, err = run(capsys, "compress", src, "--out", tmp_path / "o.eie")
    assert code == 2 and out == "" and not (tmp_path / "o.eie").exists()
    assert f"{src}: layer" in err and "NaN or infinity" in err and len(err.strip().splitlines()) == 1
