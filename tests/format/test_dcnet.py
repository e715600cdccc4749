"""The Deep Compression ``.net`` stream (docs/FORMAT.md §1)."""

from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.errors import EieFormatError
from eiesim.format.dcnet import (
    DCLayer,
    DCNet,
    LayerSpec,
    compressed_to_dclayer,
    dclayer_to_compressed,
    encode_dense,
    load_layer_specs,
    net_to_bytes,
    parse_net,
    read_net,
    write_net,
)
from eiesim.format.layout import CompressedLayer

SQUEEZENET_BYTES = 675_763


def _codebook(bits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vals = np.sort(rng.normal(size=(1 << bits) - 1)).astype(np.float32)
    return np.concatenate([[0.0], vals]).astype(np.float32)


def _sparse_codes(shape, density, bits, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 1 << bits, size=shape)
    return (codes * (rng.random(shape) < density)).astype(np.uint8)


# --------------------------------------------------------------------------- SqueezeNet
@pytest.fixture(scope="module")
def squeezenet(squeezenet_dir):
    specs = load_layer_specs(squeezenet_dir / "layers.json")
    return specs, read_net(squeezenet_dir / "compressed_SqueezeNet.net", specs)


def test_squeezenet_reads_every_byte(squeezenet, squeezenet_dir):
    specs, net = squeezenet
    assert len(specs) == 26 and len(net) == 26
    assert net.bytes_consumed == SQUEEZENET_BYTES == (squeezenet_dir / "compressed_SqueezeNet.net").stat().st_size
    assert [l.name for l in net.layers] == [s.name for s in specs]
    assert net.layers[0].shape == (96, 3, 7, 7) and net["conv_final"].shape == (1000, 512, 1, 1)
    assert all(l.spec.code_bits == 8 and l.spec.index_bits == 4 for l in net.layers)
    assert net.issues == ()  # canonical: zero padding, fillers (0, 15), no trailing filler
    # totals measured on the authors' file
    assert sum(l.n_entries for l in net.layers) == 422_083
    assert sum(l.n_fillers for l in net.layers) == 6_162
    assert sum(l.n_nonzeros for l in net.layers) == 415_921
    assert net["conv1"].n_entries == 13_902 and net["conv_final"].n_fillers == 3_650
    odd = [l for l in net.layers if l.n_entries % 2]
    assert odd, "the real file has odd entry counts"


def test_squeezenet_writes_back_identical_bytes(squeezenet, squeezenet_dir, tmp_path):
    _, net = squeezenet
    out = tmp_path / "copy.net"
    assert write_net(out, net) == SQUEEZENET_BYTES
    assert out.read_bytes() == (squeezenet_dir / "compressed_SqueezeNet.net").read_bytes()


def test_squeezenet_layers_are_canonical_and_decode(squeezenet):
    _, net = squeezenet
    for l in net.layers:
        dense_codes = l.to_codes()
        again = encode_dense(dense_codes, l.codebook, l.bias, name=l.name)
        assert np.array_equal(again.codes, l.codes) and np.array_equal(again.z, l.z), l.name
        w = l.to_dense()
        assert w.dtype == np.float32 and w.shape == l.shape
        assert np.count_nonzero(w) == l.n_nonzeros
        assert int(l.positions()[-1]) < l.spec.n_weights


def test_squeezenet_with_a_wrong_layer_list_fails_cleanly(squeezenet_dir, tmp_path):
    specs = load_layer_specs(squeezenet_dir / "layers.json")
    path = squeezenet_dir / "compressed_SqueezeNet.net"
    with pytest.raises(EieFormatError, match=r"163988 bytes after the last layer \(the layers end at byte 511775 "
                       r"of 675763\)") as exc:
        read_net(path, specs[:-1])
    assert exc.value.code == "STREAM-TRAILING-BYTES"
    wrong = list(specs)
    wrong[0] = LayerSpec("conv1", specs[0].shape, 4, 4)  # a bit width guessed wrong
    with pytest.raises(EieFormatError, match="compressed_SqueezeNet.net"):
        read_net(path, wrong)


# --------------------------------------------------------------------------- layer list
def _write_json(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_layer_specs_schema(tmp_path):
    good = {"layers": [{"name": "fc", "shape": [10, 20], "code_bits": 4, "index_bits": 4}],
            "byte_order": "little", "note": "x"}
    specs = load_layer_specs(_write_json(tmp_path / "a.json", good))
    assert specs == (LayerSpec("fc", (10, 20), 4, 4),)
    assert specs[0].n_weights == 200 and specs[0].codebook_size == 16
    cases = [
        ({"layers": [{"name": "fc", "shape": [10, 20], "index_bits": 4}]}, "'code_bits' is missing"),
        ({"layers": [{"name": "fc", "shape": [10, 20], "code_bits": 4}]}, "'index_bits' is missing"),
        ({"layers": [{"name": "fc", "shape": [10, 20], "code_bits": 6, "index_bits": 4}]}, "code_bits"),
        ({"layers": [{"name": "fc", "shape": [10, 0], "code_bits": 4, "index_bits": 4}]}, "shape"),
        ({"layers": [{"name": "fc", "shape": [10], "code_bits": 4, "index_bits": 5}]}, "index_bits"),
        ({"layers": [{"name": "fc", "shape": [1], "code_bits": 4, "index_bits": 4, "bits": 4}]}, "unknown key"),
        ({"layers": []}, "non-empty"),
        ({"layers": [{"name": "a", "shape": [1], "code_bits": 4, "index_bits": 4}] * 2}, "repeats"),
        ({"layers": [{"name": "a", "shape": [1], "code_bits": 4, "index_bits": 4}], "byte_order": "big"},
         "little"),
        ({"layerz": []}, "unknown top-level key"),
    ]
    for i, (doc, msg) in enumerate(cases):
        p = _write_json(tmp_path / f"bad{i}.json", doc)
        with pytest.raises(EieFormatError, match=msg) as exc:
            load_layer_specs(p)
        assert str(p) in str(exc.value)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(EieFormatError, match="not valid JSON"):
        load_layer_specs(tmp_path / "broken.json")
    # found by scripts/fuzz.py: a 100,000-deep array made json.loads raise RecursionError (a traceback)
    (tmp_path / "deep.json").write_text('{"layers": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(EieFormatError, match="not valid JSON"):
        load_layer_specs(tmp_path / "deep.json")
    with pytest.raises(EieFormatError, match="no such"):
        load_layer_specs(tmp_path / "missing.json")
    with pytest.raises(EieFormatError, match="code_bits"):
        LayerSpec("x", (2, 2), True, 4)


# --------------------------------------------------------------------------- odd n, n = 0
@pytest.mark.parametrize("bits", [4, 8])
def test_odd_and_empty_layers_round_trip(bits, tmp_path):
    cb = _codebook(bits)
    empty = encode_dense(np.zeros((3, 5), dtype=np.uint8), cb, np.arange(3, dtype=np.float32), name="empty")
    assert empty.n_entries == 0
    codes = np.zeros((4, 6), dtype=np.uint8)
    codes.flat[[0, 7, 23]] = [1, 2, 3]  # 3 entries: odd
    odd = encode_dense(codes, cb, name="odd")
    assert odd.n_entries == 3 and odd.codes.tolist() == [1, 2, 3] and odd.z.tolist() == [0, 6, 15]
    net = DCNet((odd, empty, odd))
    data = net_to_bytes(net)
    half = 2  # ceil(3 / 2)
    code_len = 3 if bits == 8 else half
    per_odd = 4 * (1 << bits) + 4 * 4 + code_len + half
    per_empty = 4 * (1 << bits) + 4 * 3
    assert len(data) == 12 + 2 * per_odd + per_empty == net.bytes_consumed
    assert struct.unpack("<3I", data[:12]) == (3, 0, 3)
    # 4-bit packing: entry 0 low nibble, entry 1 high nibble; the odd entry's high nibble is 0
    zbytes = data[12 + per_odd - half: 12 + per_odd]
    assert zbytes == bytes([0 | (6 << 4), 15])
    if bits == 4:
        cbytes = data[12 + per_odd - 2 * half: 12 + per_odd - half]
        assert cbytes == bytes([1 | (2 << 4), 3])
    path = tmp_path / "small.net"
    write_net(path, net)
    back = read_net(path, [odd.spec, empty.spec, LayerSpec("odd2", (4, 6), bits, 4)])
    assert back.bytes_consumed == len(data) and back.issues == ()
    assert np.array_equal(back.layers[0].to_codes(), codes)
    assert back.layers[1].n_entries == 0 and not back.layers[1].to_codes().any()
    assert np.array_equal(back.layers[1].bias, np.arange(3, dtype=np.float32))
    assert path.read_bytes() == data


def test_nonzero_padding_nibble_is_reported_and_kept():
    cb = _codebook(4)
    codes = np.zeros(10, dtype=np.uint8)
    codes[[1, 4, 9]] = [5, 6, 7]
    layer = encode_dense(codes, cb, np.zeros(10, np.float32), name="fc")
    data = bytearray(net_to_bytes([layer]))
    data[-1] |= 0xA0  # index stream padding nibble
    data[-3] |= 0x30  # code stream padding nibble
    net = parse_net(bytes(data), [layer.spec])
    assert [i.code for i in net.issues] == ["NIBBLE-PAD-NONZERO"]
    assert net.layers[0].pad_nibbles == (3, 10)
    assert np.array_equal(net.layers[0].to_codes(), codes)
    assert net_to_bytes(net) == bytes(data)  # byte-exact even when non-canonical
    with pytest.raises(EieFormatError, match="NIBBLE-PAD-NONZERO"):
        parse_net(bytes(data), [layer.spec], strict=True)


def test_noncanonical_content_is_reported():
    spec = LayerSpec("c", (40,), 4, 4)
    cb = _codebook(4)
    # entry 1 is a code-0 entry with z = 3 (not a filler shape); the stream ends with a filler
    layer = DCLayer(spec, cb, np.zeros(40, np.float32), [2, 0, 5, 0], [1, 3, 0, 15])
    codes = {i.code for i in layer.issues()}
    assert codes == {"RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING"}
    assert layer.n_fillers == 2 and layer.n_nonzeros == 2
    assert layer.to_codes().tolist()[:8] == [0, 2, 0, 0, 0, 0, 5, 0]
    bad_cb = cb.copy()
    bad_cb[0] = 0.5
    layer = DCLayer(spec, bad_cb, np.full(40, np.nan, np.float32), [2], [0])
    issue_codes = [i.code for i in layer.issues()]
    assert "CODEBOOK-ZERO-NOT-POSITIVE-ZERO" in issue_codes and "FLOAT-NONFINITE" in issue_codes
    with pytest.raises(EieFormatError, match=r"codebook\[0\]"):
        layer.to_dense()


# --------------------------------------------------------------------------- hostile input
def _small_net_bytes():
    cb = _codebook(4)
    codes = np.zeros((6, 10), dtype=np.uint8)
    codes[0, 0] = 1
    codes[5, 9] = 2  # gap of 58 -> 3 fillers
    layer = encode_dense(codes, cb, np.ones(6, np.float32), name="fc")
    assert layer.n_fillers == 3
    return layer, net_to_bytes([layer])


def test_truncated_and_trailing_bytes(tmp_path):
    layer, data = _small_net_bytes()
    p = tmp_path / "t.net"
    for cut in (1, 2, len(data) - 4, len(data) - 1):
        p.write_bytes(data[:cut])
        with pytest.raises(EieFormatError, match=r"cannot hold the header|only \d+ remain") as exc:
            read_net(p, [layer.spec])
        assert str(p) in str(exc.value) and exc.value.code == "STREAM-TRUNCATED"
        with pytest.raises(EieFormatError, match=r"cannot hold the header|only \d+ remain") as exc:
            parse_net(data[:cut], [layer.spec])
        assert exc.value.code == "STREAM-TRUNCATED"
    p.write_bytes(data + b"\x00")
    with pytest.raises(EieFormatError, match="1 bytes after the last layer") as exc:
        read_net(p, [layer.spec])
    assert exc.value.code == "STREAM-TRAILING-BYTES"
    with pytest.raises(EieFormatError, match="no such file"):
        read_net(tmp_path / "none.net", [layer.spec])


def test_position_past_the_tensor_end(tmp_path):
    layer, data = _small_net_bytes()
    # raise the z of the last (real) entry from 0 to 15: it lands 15 positions past the end
    buf = bytearray(data)
    n = layer.n_entries
    last_byte = len(buf) - 1
    assert n % 2 == 1 and buf[last_byte] & 0x0F == layer.z[-1]
    buf[last_byte] = (buf[last_byte] & 0xF0) | 0x0F
    with pytest.raises(EieFormatError, match="past the tensor end"):
        parse_net(bytes(buf), [layer.spec])
    # a header claiming more entries than the tensor has weights
    spec = LayerSpec("fc", (2, 2), 4, 4)
    with pytest.raises(EieFormatError, match="past the tensor end"):
        parse_net(struct.pack("<I", 5) + bytes(64 + 8 + 3 + 3), [spec])
    with pytest.raises(EieFormatError, match="past the tensor end"):
        DCLayer(spec, _codebook(4), np.zeros(2, np.float32), [1, 1], [2, 1])


def test_huge_header_is_rejected_instantly(tmp_path):
    spec = LayerSpec("big", (1 << 15, 1 << 12), 8, 4)  # 2**27 weights (MAX_NET_WEIGHTS): the count fits
    p = tmp_path / "hostile.net"
    p.write_bytes(struct.pack("<I", (1 << 27) - 1) + bytes(1020))
    t0 = time.perf_counter()
    with pytest.raises(EieFormatError, match=r"needs 201458687 bytes at offset 4 \(134217727 entries\), only 1020 "
                       "remain") as exc:
        read_net(p, [spec])
    assert exc.value.code == "STREAM-TRUNCATED"
    with pytest.raises(EieFormatError, match="only 1020 remain") as exc:
        parse_net(p.read_bytes(), [spec])
    assert exc.value.code == "STREAM-TRUNCATED"
    assert time.perf_counter() - t0 < 0.5
    with pytest.raises(EieFormatError, match="header"):
        parse_net(b"\x01\x00", [spec])


# --------------------------------------------------------------------------- synthetic round trips
@settings(max_examples=40, deadline=None)
@given(
    dims=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    density=st.sampled_from([0.0, 0.01, 0.05, 0.3, 0.9, 1.0]),
    bits=st.sampled_from([4, 8]),
    seed=st.integers(0, 2**31 - 1),
)
def test_dense_round_trip_with_fillers(dims, density, bits, seed):
    shape = tuple(dims)
    codes = _sparse_codes(shape, density, bits, seed)
    rng = np.random.default_rng(seed)
    bias = rng.normal(size=shape[0]).astype(np.float32)
    layer = encode_dense(codes, _codebook(bits, seed), bias, name="l")
    pos = np.flatnonzero(codes.reshape(-1))
    gaps = np.diff(np.concatenate([[-1], pos])) - 1
    assert layer.n_nonzeros == pos.size
    assert layer.n_fillers == int((gaps // 16).sum())
    assert layer.issues() == []
    data = net_to_bytes([layer, layer])
    back = parse_net(data, [layer.spec, LayerSpec("m", shape, bits, 4)], strict=True)
    assert back.bytes_consumed == len(data)
    for b in back.layers:
        assert np.array_equal(b.to_codes(), codes)
        assert np.array_equal(b.bias, bias)
        assert np.array_equal(b.to_dense(), layer.codebook[codes])
    assert net_to_bytes(back) == data


def test_long_gaps_make_canonical_fillers():
    codes = np.zeros(100, dtype=np.uint8)
    codes[[0, 50, 99]] = [1, 2, 3]  # gaps 0, 49, 48 -> 0 + 3 + 3 fillers
    layer = encode_dense(codes, _codebook(4), np.zeros(100, np.float32))
    assert layer.codes.tolist() == [1, 0, 0, 0, 2, 0, 0, 0, 3]
    assert layer.z.tolist() == [0, 15, 15, 15, 1, 15, 15, 15, 0]
    dense = np.ones(37, dtype=np.uint8)  # fully dense: every z = 0, no filler
    layer = encode_dense(dense, _codebook(4), np.zeros(37, np.float32))
    assert layer.n_fillers == 0 and not layer.z.any()


def test_encode_dense_input_errors():
    with pytest.raises(EieFormatError, match="outside"):
        encode_dense(np.array([[0, 16]]), _codebook(4))
    with pytest.raises(EieFormatError, match="16 or 256"):
        encode_dense(np.array([[0, 1]]), np.zeros(8, np.float32))
    with pytest.raises(EieFormatError, match="integers"):
        encode_dense(np.array([[0.5]]), _codebook(4))
    with pytest.raises(EieFormatError, match="bias"):
        encode_dense(np.array([[0, 1]]), _codebook(4), np.zeros(3))


# --------------------------------------------------------------------------- EIE per-PE layout
@pytest.mark.parametrize("n_pe", [1, 3, 8, 64])
def test_fc_layer_to_eie_layout_and_back(n_pe):
    rng = np.random.default_rng(n_pe)
    codes = _sparse_codes((70, 45), 0.12, 4, n_pe)
    bias = rng.normal(size=70).astype(np.float32)
    dc = encode_dense(codes, _codebook(4), bias, name="fc7")
    layer, b = dclayer_to_compressed(dc, n_pe)
    assert isinstance(layer, CompressedLayer) and layer.name == "fc7"
    assert layer.shape == (70, 45) and not layer.has_bias and layer.n_pe == n_pe
    layer.check_format(full=True)
    assert np.array_equal(b, bias)
    assert np.array_equal(layer.to_codes(), codes)
    assert np.array_equal(layer.to_dense(), dc.to_dense())
    assert layer.n_nonzeros == dc.n_nonzeros
    back = compressed_to_dclayer(layer, b)
    assert np.array_equal(back.codes, dc.codes) and np.array_equal(back.z, dc.z)
    assert np.array_equal(back.bias, bias)
    assert net_to_bytes([back]) == net_to_bytes([dc])


def test_fold_bias_needs_codebook_values():
    cb = _codebook(4)
    codes = _sparse_codes((20, 30), 0.2, 4, 5)
    bias_q = cb[np.arange(20) % 16]  # includes 0.0
    dc = encode_dense(codes, cb, bias_q, name="fc")
    layer, b = dclayer_to_compressed(dc, 4, fold_bias=True)
    assert b is None and layer.has_bias
    assert np.array_equal(layer.bias_values(), bias_q)
    back = compressed_to_dclayer(layer)
    assert np.array_equal(back.bias, bias_q) and np.array_equal(back.to_codes(), codes)
    with pytest.raises(EieFormatError, match="bias column"):
        compressed_to_dclayer(layer, bias_q)
    dc_bad = encode_dense(codes, cb, bias_q + np.float32(1e-3), name="fc")
    with pytest.raises(EieFormatError, match=r"bias\[\d+\].*not a codebook value"):
        dclayer_to_compressed(dc_bad, 4, fold_bias=True)


def test_conv_layer_flattens_to_im2col_matrix(squeezenet):
    _, net = squeezenet
    dc = net["fire2/conv1x1_1"]  # (16, 96, 1, 1)
    layer, bias = dclayer_to_compressed(dc, 8)
    assert layer.shape == (16, 96) and layer.code_bits == 8
    assert np.array_equal(layer.to_dense(), dc.to_dense().reshape(16, 96))
    back = compressed_to_dclayer(layer, bias, name=dc.name)
    assert np.array_equal(back.to_codes().reshape(dc.shape), dc.to_codes())
