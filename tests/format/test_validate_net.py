"""Validator rules on Deep Compression ``.net`` streams: one minimal broken stream per rule."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from eiesim.errors import EieFormatError
from eiesim.format.dcnet import DCLayer, encode_dense, net_to_bytes, read_net
from eiesim.format.validate import RULES, validate, validate_net

from ..conftest import CB16

CB256 = np.concatenate([[0.0], np.arange(1, 256, dtype=np.float32) / 256.0]).astype(np.float32)


def layer_a() -> DCLayer:
    """fc 10 x 40, 4-bit codes, fillers, last weight at the last position, odd entry count."""
    codes = np.zeros(400, dtype=np.int64)
    pos = [0, 1, 2, 5, 40, 41, 60, 100, 101, 150, 200, 230, 260, 300, 330, 350, 380, 399]
    for k, p in enumerate(pos):
        codes[p] = 1 + k % 15
    lay = encode_dense(codes.reshape(10, 40), CB16, np.linspace(-1, 1, 10), name="fc_a", code_bits=4)
    assert lay.n_entries % 2 == 1 and lay.n_fillers > 0
    return lay


def layer_b() -> DCLayer:
    """conv 20 x 1 x 4 x 4, 8-bit codes, every centroid used."""
    codes = np.zeros(320, dtype=np.int64)
    keep = np.setdiff1d(np.arange(320), np.arange(3, 320, 16))  # 300 weights
    codes[keep] = 1 + np.arange(keep.size) % 255
    return encode_dense(codes.reshape(20, 1, 4, 4), CB256, np.zeros(20), name="conv_b", code_bits=8)


def specs():
    return [layer_a().spec, layer_b().spec]


@pytest.fixture
def net_dir(tmp_path):
    (tmp_path / "layers.json").write_text(json.dumps({"layers": [
        {"name": s.name, "shape": list(s.shape), "code_bits": s.code_bits, "index_bits": s.index_bits}
        for s in specs()]}))
    return tmp_path


def write(net_dir, data: bytes, name="m.net"):
    p = net_dir / name
    p.write_bytes(data)
    return p


def base_bytes() -> bytes:
    return net_to_bytes([layer_a(), layer_b()])


def offsets():
    a = layer_a()
    n = a.n_entries
    o_cb = 8
    o_bias = o_cb + 64
    o_codes = o_bias + 40
    o_z = o_codes + (n + 1) // 2
    return {"n": n, "cb": o_cb, "bias": o_bias, "codes": o_codes, "z": o_z, "end_a": o_z + (n + 1) // 2}


def check(net_dir, data: bytes, expected: set):
    p = write(net_dir, data)
    rep = validate_net(p, net_dir / "layers.json")
    assert rep.codes() == expected, [str(f) for f in rep.findings]
    has_error = any(RULES[c].severity == "error" for c in expected)
    # the validator and the reader agree on what is readable
    try:
        read_net(p, net_dir / "layers.json")
        readable = True
    except EieFormatError:
        readable = False
    if not expected & {"CODEBOOK-ZERO-NOT-POSITIVE-ZERO", "FLOAT-NONFINITE"}:
        assert readable == (not has_error)
    return rep


def test_twin_passes(net_dir):
    rep = check(net_dir, base_bytes(), set())
    a, b = layer_a(), layer_b()
    assert [(l.stored_entries, l.fillers, l.real_nonzeros) for l in rep.layers] == [
        (a.n_entries, a.n_fillers, a.n_nonzeros), (b.n_entries, b.n_fillers, b.n_nonzeros)]
    assert rep.layers[0].shape == (10, 40) and rep.layers[1].shape == (20, 1, 4, 4)


def test_truncated(net_dir):
    rep = check(net_dir, base_bytes()[:-1], {"STREAM-TRUNCATED"})
    assert rep.findings[0].layer == 1  # layer A is still checked and counted
    assert len(rep.layers) == 1


def test_truncated_header(net_dir):
    check(net_dir, base_bytes()[:5], {"STREAM-TRUNCATED"})


def test_trailing_bytes(net_dir):
    check(net_dir, base_bytes() + b"\x00", {"STREAM-TRAILING-BYTES"})


def test_nibble_pad_nonzero(net_dir):
    d = bytearray(base_bytes())
    o = offsets()
    d[o["end_a"] - 1] |= 0x50  # high nibble of the last index byte (odd n)
    rep = check(net_dir, bytes(d), {"NIBBLE-PAD-NONZERO"})
    assert rep.conformant() and not rep.conformant(strict=True)
    d = bytearray(base_bytes())
    d[o["z"] - 1] |= 0x30  # ... and of the last 4-bit code byte
    check(net_dir, bytes(d), {"NIBBLE-PAD-NONZERO"})


def test_nan_in_bias_and_codebook(net_dir):
    o = offsets()
    d = bytearray(base_bytes())
    d[o["bias"] + 8: o["bias"] + 12] = struct.pack("<f", float("nan"))
    rep = check(net_dir, bytes(d), {"FLOAT-NONFINITE"})
    assert "bias[2]" in rep.findings[0].message
    d = bytearray(base_bytes())
    d[o["cb"] + 12: o["cb"] + 16] = struct.pack("<f", float("inf"))
    check(net_dir, bytes(d), {"FLOAT-NONFINITE"})


def test_codebook_zero_sign(net_dir):
    o = offsets()
    d = bytearray(base_bytes())
    d[o["cb"]: o["cb"] + 4] = struct.pack("<f", -0.0)
    check(net_dir, bytes(d), {"CODEBOOK-ZERO-NOT-POSITIVE-ZERO"})


def test_codebook_duplicate(net_dir):
    o = offsets()
    d = bytearray(base_bytes())
    d[o["cb"] + 8: o["cb"] + 12] = d[o["cb"] + 4: o["cb"] + 8]
    check(net_dir, bytes(d), {"CODEBOOK-DUPLICATE"})


def test_filler_noncanonical(net_dir):
    a = layer_a()
    f = int(np.flatnonzero(a.codes == 0)[0])
    z = a.z.copy()
    z[f] = 14
    bad = DCLayer(a.spec, a.codebook, a.bias, a.codes, z)
    rep = check(net_dir, net_to_bytes([bad, layer_b()]), {"RELIDX-FILLER-NONCANONICAL"})
    assert rep.findings[0].entry == f


def test_filler_trailing(net_dir):
    # layer B's last weight is at 318 of 320: a filler after it would run past; use a short one
    codes = np.zeros(400, dtype=np.int64)
    codes[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]] = np.arange(1, 16)
    base = encode_dense(codes.reshape(10, 40), CB16, np.zeros(10), name="fc_a", code_bits=4)
    assert validate_net(write(net_dir, net_to_bytes([base, layer_b()])), net_dir / "layers.json").findings == []
    bad = DCLayer(base.spec, base.codebook, base.bias, np.append(base.codes, 0), np.append(base.z, 15))
    rep = check(net_dir, net_to_bytes([bad, layer_b()]), {"FILLER-TRAILING"})
    assert rep.findings[0].entry == base.n_entries


def test_filler_missing_position_past_tensor(net_dir):
    o = offsets()
    d = bytearray(base_bytes())
    n = o["n"]
    last = o["z"] + (n - 1) // 2  # the last entry (even index n-1) is a low nibble
    assert (n - 1) % 2 == 0
    d[last] = (d[last] & 0xF0) | 0x3  # position 399 + 3 > 399
    rep = check(net_dir, bytes(d), {"FILLER-MISSING"})
    assert rep.findings[0].entry == n - 1


def test_header_count_past_tensor(net_dir):
    d = bytearray(base_bytes())
    d[0:4] = struct.pack("<I", 401)
    check(net_dir, bytes(d), {"FILLER-MISSING"})
    d[0:4] = struct.pack("<I", 0xFFFFFFFF)  # the public decoder's wrap-around case
    check(net_dir, bytes(d), {"FILLER-MISSING"})


def test_empty_and_odd_layers(net_dir):
    a = layer_a()
    empty = DCLayer(a.spec, a.codebook, a.bias, np.zeros(0, np.uint8), np.zeros(0, np.uint8))
    rep = check(net_dir, net_to_bytes([empty, layer_b()]), {"CODEBOOK-UNUSED"})  # n = 0 is legal
    assert rep.layers[0].stored_entries == 0 and rep.conformant()


def test_unreadable_inputs(net_dir, tmp_path):
    with pytest.raises(EieFormatError) as ei:
        validate_net(net_dir / "missing.net", net_dir / "layers.json")
    assert ei.value.code == "NET-UNREADABLE"
    p = write(net_dir, base_bytes())
    with pytest.raises(EieFormatError) as ei:
        validate_net(p, net_dir / "nope.json")
    assert ei.value.code == "NET-UNREADABLE"
    (net_dir / "bad.json").write_text("{")
    with pytest.raises(EieFormatError) as ei:
        validate_net(p, net_dir / "bad.json")
    assert ei.value.code == "NET-UNREADABLE"


def test_dispatch_finds_layers_json_beside(net_dir):
    p = write(net_dir, base_bytes())
    assert validate(p).kind == "net"
    assert validate(p, "net", layers=specs()).findings == []


def test_squeezenet_passes(squeezenet_dir):
    rep = validate(squeezenet_dir)
    assert rep.kind == "net" and rep.findings == []
    net = read_net(squeezenet_dir / "compressed_SqueezeNet.net", squeezenet_dir / "layers.json")
    assert len(rep.layers) == 26 == len(net.layers)
    assert [l.stored_entries for l in rep.layers] == [l.n_entries for l in net.layers]
    assert [l.fillers for l in rep.layers] == [l.n_fillers for l in net.layers]


def test_squeezenet_truncated_names_the_layer(squeezenet_dir, tmp_path):
    data = (squeezenet_dir / "compressed_SqueezeNet.net").read_bytes()
    p = tmp_path / "s.net"
    p.write_bytes(data[:-1000])
    rep = validate_net(p, squeezenet_dir / "layers.json")
    assert rep.codes() == {"STREAM-TRUNCATED"}
    assert rep.findings[0].layer_name == "conv_final" and len(rep.layers) == 25
