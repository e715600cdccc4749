"""The ``eiesim validate`` command-line contract: exit codes 0 / 1 / 2, text and JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eiesim.compress.reference import EQUIV_CODES
from eiesim.format import CompressedLayer
from eiesim.format.container import save_network

from ..conftest import run_cli as run

TRACES = Path(__file__).resolve().parents[2] / "traces"
CB = np.array([0.0, 0.5, -0.25, 1.0], dtype=np.float32)
FINDING_KEYS = {"code", "severity", "location", "count", "message"}


def layer(z_fix=None) -> CompressedLayer:
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0] = 1, 2, 3
    c[1, 1], c[11, 1], c[4, 1] = 1, 2, 3
    c[5, 2] = 2
    c[2, 3], c[6, 3] = 3, 1
    lay = CompressedLayer.from_codes(c, CB, 2, code_bits=2, index_bits=2, name="small")
    if z_fix is None:
        return lay
    z = lay.z.copy()
    z_fix(z)
    return CompressedLayer(shape=lay.shape, n_pe=2, codebook=CB, ptr=lay.ptr, v=lay.v, z=z, code_bits=2,
                           index_bits=2, name="small")


def test_fc8_dump_passes(capsys, fc8_dir, tmp_path):
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "validate", str(fc8_dir), "--json", str(js))
    assert code == 0, err
    assert "conformant: 0 error(s), 0 warning(s)" in out
    doc = json.loads(js.read_text())
    assert doc["format"] == "dump" and doc["conformant"] is True and doc["findings"] == []
    assert doc["summary"] == {"layers": 1, "stored_entries": 1051991, "fillers": 0, "real_nonzeros": 1051032,
                              "bias_nonzeros": 959}  # issue 9: non-zeros of W, the bias column apart
    assert doc["layers"][0]["shape"] == [1000, 4096]


def test_squeezenet_passes(capsys, squeezenet_dir, tmp_path):
    js = tmp_path / "r.json"
    net = squeezenet_dir / "compressed_SqueezeNet.net"
    code, out, err = run(capsys, "validate", str(net), "--format", "net",
                         "--layers", str(squeezenet_dir / "layers.json"), "--json", str(js), "--strict")
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert doc["format"] == "net" and len(doc["layers"]) == 26
    assert doc["summary"]["stored_entries"] == sum(l["stored_entries"] for l in doc["layers"])
    assert all({"stored_entries", "fillers", "real_nonzeros"} <= set(l) for l in doc["layers"])
    code, _, _ = run(capsys, "validate", str(squeezenet_dir))  # directory: .net + layers.json detected
    assert code == 0


def test_committed_trace_passes(capsys):
    code, out, err = run(capsys, "validate", str(TRACES / "lenet300100.eie"))
    assert code == 0, err
    assert "ip1" in out and "conformant" in out


def test_broken_rule_exits_1_with_json(capsys, tmp_path):
    p = tmp_path / "b.eie"
    bad = layer(lambda z: z.__setitem__(2, 1))  # PE0 col0 last entry past its 6 rows
    save_network(p, [bad])
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "validate", str(p), "--json", str(js))
    assert code == 1
    assert "error FILLER-MISSING" in out and "NOT conformant" in out
    doc = json.loads(js.read_text())
    assert doc["conformant"] is False and doc["counts"] == {"errors": 1, "warnings": 0}
    (f,) = doc["findings"]
    assert set(f) == FINDING_KEYS
    assert f["code"] == "FILLER-MISSING" and f["severity"] == "error"
    assert f["location"] == {"layer": 0, "layer_name": "small", "pe": 0, "column": 0, "entry": 2}
    assert "PE 0, column 0, entry 2" in f["message"]


def test_warnings_pass_unless_strict(capsys, tmp_path):
    p = tmp_path / "w.eie"
    save_network(p, [layer(lambda z: z.__setitem__(1, 2))])  # non-canonical filler: a warning
    code, out, _ = run(capsys, "validate", str(p))
    assert code == 0 and "warning RELIDX-FILLER-NONCANONICAL" in out
    code, _, _ = run(capsys, "validate", str(p), "--strict")
    assert code == 1
    code, out, _ = run(capsys, "validate", str(p), "--quiet")
    assert code == 0 and out.strip() == "conformant: 0 error(s), 1 warning(s)"


def test_unreadable_exits_2_with_one_line(capsys, tmp_path):
    junk = tmp_path / "junk.eie"
    junk.write_bytes(b"PK\x03\x04 this is not a zip")
    for target in (junk, tmp_path / "missing.eie", tmp_path):
        code, out, err = run(capsys, "validate", str(target))
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("eiesim: error:")
        assert "Traceback" not in err


def test_no_traceback_escapes_the_process(tmp_path):
    junk = tmp_path / "x.net"
    junk.write_bytes(b"\x01\x02\x03")
    r = subprocess.run([sys.executable, "-m", "eiesim", "validate", str(junk), "--format", "net", "--layers",
                        str(tmp_path / "none.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_dump_options(capsys, tmp_path, fc8_dir):
    code, out, err = run(capsys, "validate", str(fc8_dir), "--format", "dump", "--n-out", "900")
    assert code == 1 and "FILLER-MISSING" in out  # rows 900..999 exist: 900 is too few
    code, out, err = run(capsys, "validate", str(fc8_dir), "--n-out", "1000", "--n-in", "4096")
    assert code == 0, out


# ---------------------------------------------------------------- --reference / --mask (equivalence rules)
EQUIV = {*EQUIV_CODES, "EQUIV-REFERENCE-MISSING", "EQUIV-REFERENCE-UNUSED"}


def _float_model(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "net.0.weight": rng.standard_normal((40, 30)).astype(np.float32),
        "net.0.bias": (0.1 * rng.standard_normal(40)).astype(np.float32),
        "net.2.weight": rng.standard_normal((10, 40)).astype(np.float32),
        "net.2.bias": (0.1 * rng.standard_normal(10)).astype(np.float32),
    }


@pytest.fixture
def compressed(capsys, tmp_path):
    """A float model compressed by ``eiesim compress`` (30 % kept, 4-bit codes) and its decoded weights."""
    from eiesim.format.container import load_network

    model = tmp_path / "model.npz"
    np.savez(model, **_float_model())
    eie = tmp_path / "model.eie"
    code, _, err = run(capsys, "compress", str(model), "--out", str(eie), "--density", "0.3", "--n-pe", "4")
    assert code == 0, err
    net = load_network(eie)
    assert [l.name for l in net.layers] == ["net.0", "net.2"]
    decoded = {}
    for l in net.layers:
        decoded[f"{l.name}.weight"] = l.to_dense()
        decoded[f"{l.name}.bias"] = l.bias_values()
    return model, eie, net, decoded


def _equiv_findings(doc):
    return [f for f in doc["findings"] if f["code"] in EQUIV]


def test_reference_quantised_passes_float_original_fails(capsys, tmp_path, compressed):
    model, eie, _, decoded = compressed
    ref = tmp_path / "decoded.npz"
    np.savez(ref, **decoded)
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "validate", str(eie), "--reference", str(ref), "--json", str(js))
    assert code == 0, out + err
    assert "equivalence: 2 of 2 layer(s) compared with reference decoded.npz" in out
    doc = json.loads(js.read_text())
    assert _equiv_findings(doc) == []
    assert doc["equivalence"] == {
        "reference": str(ref), "mask": None, "compared": True,
        "layers": [{"layer": 0, "name": "net.0", "weight": "net.0.weight", "bias": "net.0.bias", "mask": None},
                   {"layer": 1, "name": "net.2", "weight": "net.2.weight", "bias": "net.2.bias", "mask": None}]}
    # the same decoded weights through the other readers of `eiesim compress` (safetensors, torch .pth)
    from .test_compress import _write

    for fmt, ext in (("safetensors", ".safetensors"), ("pth", ".pth")):
        _write(fmt, tmp_path / f"decoded{ext}", {k: np.ascontiguousarray(v) for k, v in decoded.items()})
        code, out, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / f"decoded{ext}"))
        assert code == 0, (fmt, out)

    # the float original is not what was stored: one-shot k-means and a lossy folded bias
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(model), "--json", str(js))
    assert code == 1 and "NOT conformant" in out
    doc = json.loads(js.read_text())
    got = {(f["code"], f["location"]["layer_name"]) for f in doc["findings"] if f["severity"] == "error"}
    assert got == {(c, n) for c in ("CODEBOOK-TOO-MANY-VALUES", "EQUIV-DENSE-MISMATCH") for n in ("net.0", "net.2")}
    tm = next(f for f in doc["findings"] if f["code"] == "CODEBOOK-TOO-MANY-VALUES")
    assert "the reference holds 1200 distinct values" in tm["message"]  # 40 x 30 floats, all different
    bias = next(f for f in doc["findings"] if f["code"] == "EQUIV-DENSE-MISMATCH")
    assert bias["message"].startswith("bias[") and bias["location"]["column"] == 30  # the bias column


def test_reference_one_flipped_value(capsys, tmp_path, compressed):
    _, eie, net, decoded = compressed
    lay = net.layers[1]
    w = decoded["net.2.weight"].copy()
    i, j = (int(x) for x in np.argwhere(w != 0)[3])
    other = next(c for c in lay.codebook[1:] if c != w[i, j])
    w[i, j] = other  # still a codebook value: only this one position differs
    ref = tmp_path / "flip.npz"
    np.savez(ref, **{**decoded, "net.2.weight": w})
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(ref), "--json", str(js))
    assert code == 1
    assert f"error EQUIV-DENSE-MISMATCH [layer 1 'net.2']: W[{i}, {j}] (PE {i % 4}, column {j}" in out
    (f,) = [f for f in json.loads(js.read_text())["findings"] if f["severity"] == "error"]
    assert f["code"] == "EQUIV-DENSE-MISMATCH" and f["count"] == 1
    assert f["location"] == {"layer": 1, "layer_name": "net.2", "pe": i % 4, "column": j}
    assert repr(float(other)) in f["message"]


def test_reference_nonzero_stored_as_code0(capsys, tmp_path):
    lay = layer()  # 12 x 4 over 2 PEs, 2-bit indices: PE 0 column 0 holds a filler
    rows, cols = lay.entry_rows(), lay.entry_cols()
    fill = np.flatnonzero(lay.v == 0)
    assert fill.size
    i, j = int(rows[fill[0]]), int(cols[fill[0]])
    p = tmp_path / "small.eie"
    save_network(p, [lay])
    ref = lay.to_dense().copy()
    ref[i, j] = CB[1]
    np.savez(tmp_path / "ref.npz", **{"small.weight": ref})
    code, out, _ = run(capsys, "validate", str(p), "--reference", str(tmp_path / "ref.npz"))
    assert code == 1
    assert f"error CODE0-REAL-NONZERO [layer 0 'small']: W[{i}, {j}]" in out
    assert "EQUIV-DENSE-MISMATCH" not in out


def test_mask_excluding_a_stored_nonzero(capsys, tmp_path, compressed):
    _, eie, _, decoded = compressed
    masks = {n: decoded[f"{n}.weight"] != 0 for n in ("net.0", "net.2")}
    np.savez(tmp_path / "ok.npz", **masks)
    code, out, _ = run(capsys, "validate", str(eie), "--mask", str(tmp_path / "ok.npz"))
    assert code == 0, out
    assert "equivalence: 2 of 2 layer(s) compared with masks ok.npz" in out
    i, j = (int(x) for x in np.argwhere(masks["net.0"])[5])
    m0 = masks["net.0"].astype(np.uint8)  # 0/1 integers are accepted as well as bool
    m0[i, j] = 0
    np.savez(tmp_path / "cut.npz", **{"net.0": m0, "net.2": masks["net.2"]})
    np.savez(tmp_path / "ref.npz", **decoded)
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "ref.npz"), "--mask",
                       str(tmp_path / "cut.npz"), "--json", str(js))
    assert code == 1
    (f,) = [f for f in json.loads(js.read_text())["findings"] if f["severity"] == "error"]
    assert f["code"] == "EQUIV-OUTSIDE-MASK" and f["count"] == 1
    assert f["location"] == {"layer": 0, "layer_name": "net.0", "pe": i % 4, "column": j}
    assert f"error EQUIV-OUTSIDE-MASK [layer 0 'net.0']: W[{i}, {j}] = " in out
    assert "is stored but the pruning mask removes it" in out


def test_wrong_shapes_exit_2_one_line(capsys, tmp_path, compressed):
    _, eie, _, decoded = compressed
    cases = {
        "wshape.npz": ({**decoded, "net.2.weight": decoded["net.2.weight"].T.copy()}, None,
                       "wshape.npz: array 'net.2.weight' has shape (40, 10), expected (10, 40) (layer 1 'net.2'"),
        "bshape.npz": ({**decoded, "net.0.bias": np.zeros(41, np.float32)}, None,
                       "bias 'net.0.bias' is float32 (41,)"),
        "wint.npz": ({**decoded, "net.0.weight": np.zeros((40, 30), np.int32)}, None,
                     "'net.0.weight' is int32 (40, 30), not a 2-D float matrix"),
        "mshape.npz": (None, {"net.0": np.ones((40, 31), bool), "net.2": np.ones((10, 40), bool)},
                       "mshape.npz: mask 'net.0' has shape (40, 31), expected (40, 30)"),
        "mvals.npz": (None, {"net.0": np.full((40, 30), 2, np.int64), "net.2": np.ones((10, 40), bool)},
                      "mask 'net.0' holds 2 at [0, 0]; expected bool or 0/1 values"),
    }
    for name, (ref, mask, needle) in cases.items():
        p = tmp_path / name
        np.savez(p, **(ref or mask))
        flag = "--reference" if ref is not None else "--mask"
        code, out, err = run(capsys, "validate", str(eie), flag, str(p))
        assert code == 2, (name, out, err)
        assert err.startswith("eiesim: error:") and err.count("\n") == 1, err
        assert needle in err, err
        assert "Traceback" not in err
    code, _, err = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "missing.npz"))
    assert code == 2 and "missing.npz: no such file" in err and err.count("\n") == 1


def test_missing_and_extra_reference_arrays(capsys, tmp_path, compressed):
    _, eie, _, decoded = compressed
    extra = {"head.weight": np.ones((3, 10), np.float32), "bn.running_mean": np.zeros(10, np.float32),
             "bn.num_batches_tracked": np.array(5)}
    np.savez(tmp_path / "part.npz", **{"net.0.weight": decoded["net.0.weight"],
                                       "net.0.bias": decoded["net.0.bias"], **extra})
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "part.npz"), "--json", str(js))
    assert code == 1  # a layer whose equivalence cannot be checked is an error
    doc = json.loads(js.read_text())
    miss, unused = _equiv_findings(doc)
    assert miss["code"] == "EQUIV-REFERENCE-MISSING" and miss["severity"] == "error"
    assert miss["location"] == {"layer": 1, "layer_name": "net.2", "member": "part.npz"}
    assert "no reference array for layer 'net.2' in part.npz" in miss["message"]
    assert unused["code"] == "EQUIV-REFERENCE-UNUSED" and unused["severity"] == "warning"
    assert unused["count"] == 1 and unused["message"].endswith("match no layer of model.eie: head.weight")
    assert doc["equivalence"]["layers"] == [
        {"layer": 0, "name": "net.0", "weight": "net.0.weight", "bias": "net.0.bias", "mask": None}]

    # every layer paired, an extra weight array: a warning (exit 0 unless --strict)
    np.savez(tmp_path / "more.npz", **decoded, **extra)
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "more.npz"))
    assert code == 0 and "warning EQUIV-REFERENCE-UNUSED" in out and "head.weight" in out
    assert "bn.running_mean" not in out
    code, _, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "more.npz"), "--strict")
    assert code == 1

    # masks: keyed by layer name; a layer without one is unchecked (error), a stray key a warning
    np.savez(tmp_path / "m.npz", **{"net.0": decoded["net.0.weight"] != 0, "fc9": np.ones((2, 2), bool)})
    code, out, _ = run(capsys, "validate", str(eie), "--mask", str(tmp_path / "m.npz"))
    assert code == 1
    assert "error EQUIV-REFERENCE-MISSING [layer 1 'net.2', m.npz]: no mask for layer 'net.2'" in out
    assert "warning EQUIV-REFERENCE-UNUSED [m.npz]: 1 mask(s) of m.npz match no layer of model.eie: fc9" in out

    # the bias is part of the reference: none in the file means a zero bias is expected
    np.savez(tmp_path / "nobias.npz", **{k: v for k, v in decoded.items() if not k.endswith(".bias")})
    code, out, _ = run(capsys, "validate", str(eie), "--reference", str(tmp_path / "nobias.npz"))
    assert code == 1 and "EQUIV-DENSE-MISMATCH [layer 0 'net.0']: bias[" in out


def test_reference_not_compared_on_a_broken_file(capsys, tmp_path):
    p = tmp_path / "b.eie"
    save_network(p, [layer(lambda z: z.__setitem__(2, 1))])  # FILLER-MISSING
    np.savez(tmp_path / "ref.npz", **{"small.weight": layer().to_dense()})
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "validate", str(p), "--reference", str(tmp_path / "ref.npz"), "--json", str(js))
    assert code == 1 and "FILLER-MISSING" in out
    assert "equivalence: not compared with reference ref.npz" in out
    doc = json.loads(js.read_text())
    assert doc["equivalence"]["compared"] is False and not _equiv_findings(doc)
    code, out, _ = run(capsys, "validate", str(p), "--reference", str(tmp_path / "ref.npz"), "--quiet")
    assert code == 1 and out.strip() == "NOT conformant: 1 error(s), 0 warning(s)"


def test_reference_on_a_net_stream(capsys, tmp_path):
    from eiesim.format.dcnet import encode_dense, write_net

    rng = np.random.default_rng(3)
    cb = np.concatenate([[0.0], np.sort(rng.standard_normal(15))]).astype(np.float32)
    conv_codes = np.where(rng.random((4, 2, 3, 3)) < 0.4, rng.integers(1, 16, (4, 2, 3, 3)), 0)
    fc_codes = np.where(rng.random((5, 40)) < 0.2, rng.integers(1, 16, (5, 40)), 0)
    fc_codes[2, :] = 0  # long gaps: fillers in the stream
    fc_codes[3, 39] = 7
    bias_c = rng.standard_normal(4).astype(np.float32)
    layers = [encode_dense(conv_codes, cb, bias_c, name="conv1"), encode_dense(fc_codes, cb, name="fc")]
    assert layers[1].n_fillers > 0
    d = tmp_path / "netdir"
    d.mkdir()
    write_net(d / "m.net", layers)
    (d / "layers.json").write_text(json.dumps({"layers": [
        {"name": l.name, "shape": list(l.shape), "code_bits": 4, "index_bits": 4} for l in layers]}))
    ref = {"conv1.weight": layers[0].to_dense(), "conv1.bias": bias_c, "fc.weight": layers[1].to_dense()}
    np.savez(tmp_path / "ref.npz", **ref)
    code, out, err = run(capsys, "validate", str(d), "--reference", str(tmp_path / "ref.npz"))
    assert code == 0, out + err
    assert "equivalence: 2 of 2 layer(s) compared" in out

    w = ref["conv1.weight"].copy()
    o, c, kh, kw = (int(x) for x in np.argwhere(w != 0)[2])
    w[o, c, kh, kw] = -w[o, c, kh, kw]
    fcw = ref["fc.weight"].copy()
    pos = layers[1].positions()[layers[1].codes == 0][0]
    fcw.flat[pos] = cb[3]  # a real value where the stream holds a filler
    np.savez(tmp_path / "bad.npz", **{**ref, "conv1.weight": w, "fc.weight": fcw,
                                      "conv1.bias": bias_c + np.float32(1)})
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "validate", str(d / "m.net"), "--reference", str(tmp_path / "bad.npz"),
                       "--json", str(js))
    assert code == 1
    flat = ((o * 2 + c) * 3 + kh) * 3 + kw
    assert f"EQUIV-DENSE-MISMATCH [layer 0 'conv1']: W[{o}, {c}, {kh}, {kw}] (position {flat}) rebuilds to" in out
    assert "EQUIV-DENSE-MISMATCH [layer 0 'conv1']: bias[0] is stored as" in out
    fi, fj = divmod(int(pos), 40)
    assert f"CODE0-REAL-NONZERO [layer 1 'fc']: W[{fi}, {fj}] (position {pos}) holds" in out
    assert "PE 0" not in out
    doc = json.loads(js.read_text())
    assert all(set(f["location"]) == {"layer", "layer_name"} for f in _equiv_findings(doc))

    np.savez(tmp_path / "flat.npz", **{**ref, "conv1.weight": ref["conv1.weight"].reshape(4, 18)})
    code, _, err = run(capsys, "validate", str(d), "--reference", str(tmp_path / "flat.npz"))
    assert code == 2 and "array 'conv1.weight' has shape (4, 18), expected (4, 2, 3, 3)" in err


def test_reference_on_a_dump_directory(capsys, tmp_path):
    from eiesim.format.eiedump import write_dump

    rng = np.random.default_rng(5)
    cb = np.concatenate([[0.0], np.sort(rng.standard_normal(15))]).astype(np.float32)
    codes = np.where(rng.random((20, 13)) < 0.3, rng.integers(1, 16, (20, 13)), 0)
    codes[17:, :] = 0  # trailing zero rows: the dump cannot show them, the reference can
    codes[0, 0] = 1
    bias = np.where(rng.random(20) < 0.5, rng.integers(1, 16, 20), 0)
    bias[17:] = 0
    lay = CompressedLayer.from_codes(codes, cb, 4, bias_codes=bias, name="fc")
    d = write_dump(lay, tmp_path / "fc")
    code, out, _ = run(capsys, "validate", str(d))
    assert code == 0 and "17 x 16" in out  # inferred rows, padded columns
    np.savez(tmp_path / "ref.npz", **{"fc.weight": lay.to_dense(), "fc.bias": lay.bias_values()})
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "validate", str(d), "--reference", str(tmp_path / "ref.npz"), "--json", str(js))
    assert code == 0, out + err
    assert json.loads(js.read_text())["layers"][0]["shape"] == [20, 13]  # from the reference

    w = lay.to_dense().copy()
    w[18, 2] = cb[4]  # a weight in a row the dump holds nothing of
    np.savez(tmp_path / "bad.npz", **{"fc.weight": w, "fc.bias": lay.bias_values()})
    code, out, _ = run(capsys, "validate", str(d), "--reference", str(tmp_path / "bad.npz"))
    assert code == 1 and "EQUIV-DENSE-MISMATCH [layer 0 'fc']: W[18, 2]" in out

    code, _, err = run(capsys, "validate", str(d), "--n-out", "19", "--reference", str(tmp_path / "ref.npz"))
    assert code == 2 and "array 'fc.weight' has shape (20, 13), expected (19, 13)" in err
    np.savez(tmp_path / "short.npz", **{"fc.weight": lay.to_dense()[:10], "fc.bias": lay.bias_values()[:10]})
    code, _, err = run(capsys, "validate", str(d), "--reference", str(tmp_path / "short.npz"))
    assert code == 2 and err.count("\n") == 1
    assert "expected (17, 13)" in err and "the dump records no n_out and its entries decode rows up to 16" in err


def test_reference_on_the_real_squeezenet_stream(capsys, squeezenet_dir, tmp_path):
    from eiesim.format.dcnet import read_net

    net = read_net(squeezenet_dir / "compressed_SqueezeNet.net", squeezenet_dir / "layers.json")
    ref = {}
    for l in net.layers:
        ref[f"{l.name}.weight"], ref[f"{l.name}.bias"] = l.to_dense(), l.bias
    np.savez(tmp_path / "sq.npz", **ref)
    code, out, err = run(capsys, "validate", str(squeezenet_dir), "--reference", str(tmp_path / "sq.npz"))
    assert code == 0, out + err
    assert f"equivalence: {len(net.layers)} of {len(net.layers)} layer(s) compared" in out
    name = net.layers[1].name
    w = ref[f"{name}.weight"].copy()
    k = int(np.flatnonzero(w.ravel())[0])
    w.flat[k] = next(x for x in np.unique(w) if x != 0 and x != w.flat[k])  # another value of the codebook
    np.savez(tmp_path / "bad.npz", **{**ref, f"{name}.weight": w})
    code, out, _ = run(capsys, "validate", str(squeezenet_dir), "--reference", str(tmp_path / "bad.npz"))
    assert code == 1 and f"EQUIV-DENSE-MISMATCH [layer 1 {name!r}]" in out and f"(position {k})" in out
