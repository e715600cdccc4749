"""``eiesim convert`` and ``simulate --eie-dump --n-pe N`` (issue 9 §3: the real FC8 at any N)."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.format import CompressedLayer, write_dump
from eiesim.format.container import load_network
from eiesim.format.eiedump import read_dump
from eiesim.sim.functional import spmv_float32

from ..conftest import CB16
from ..conftest import run_cli as run


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("n_pe", [16, 256])
def test_fc8_dump_runs_at_any_n_bit_exact(capsys, tmp_path, fc8_dir, n_pe):
    """--n-pe with --eie-dump was refused; now the dump is re-interleaved, outputs bit for bit unchanged."""
    d = read_dump(fc8_dir)
    want = spmv_float32(d.layer, d.activations)  # functional model of the authors' 64-PE layout
    y = tmp_path / "y.npy"
    code, out, err = run(capsys, "simulate", "--eie-dump", fc8_dir, "--fifo-depth", 7, "--n-pe", n_pe,
                         "--save-output", y)
    assert code == 0, err
    assert f"EIE: {n_pe} PEs" in out and f"re-interleaved over {n_pe} PEs" in out
    assert "top-1 output index: 708" in out
    assert "n_out = 1000 inferred from the largest decoded row" in out  # the report says n_out is a guess
    assert np.array_equal(_bits(np.load(y)), _bits(want))


def test_convert_fc8_dump_to_eie(capsys, tmp_path, fc8_dir):
    out_eie = tmp_path / "fc8_16.eie"
    code, out, err = run(capsys, "convert", fc8_dir, "--out", out_eie, "--n-pe", 16)
    assert code == 0, err
    assert "1000 x 4096 +bias" in out
    (layer,) = load_network(out_eie).layers
    d = read_dump(fc8_dir)
    assert layer.n_pe == 16 and layer.shape == (1000, 4096) and layer.has_bias
    assert np.array_equal(layer.to_codes(), d.layer.to_codes())
    assert np.array_equal(_bits(layer.codebook), _bits(d.layer.codebook))
    # the converted file simulates exactly as the dump re-interleaved on the fly
    j1, j2 = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "simulate", "--network", out_eie, "--input", fc8_dir / "act.dat", "--fifo-depth", 7,
               "--json", j1)[0] == 0
    assert run(capsys, "simulate", "--eie-dump", fc8_dir, "--n-pe", 16, "--fifo-depth", 7, "--json", j2)[0] == 0
    import json

    a, b = json.loads(j1.read_text()), json.loads(j2.read_text())
    assert a["layers"][0]["cycles"] == b["layers"][0]["cycles"]
    assert a["layers"][0]["counters"] == b["layers"][0]["counters"]


def test_convert_small_dump_keeps_n_and_codes(capsys, tmp_path):
    rng = np.random.default_rng(1)
    codes = rng.integers(1, 16, (37, 23)) * (rng.random((37, 23)) < 0.3)
    lay = CompressedLayer.from_codes(codes, CB16, 5, bias_codes=rng.integers(0, 16, 37))
    src = write_dump(lay, tmp_path / "d", activations=np.ones(23, np.float32))
    out_eie = tmp_path / "x.eie"
    assert run(capsys, "convert", src, "--out", out_eie, "--n-out", 37)[0] == 0
    (got,) = load_network(out_eie).layers
    assert got.n_pe == 5 and np.array_equal(got.v, lay.v) and np.array_equal(got.z, lay.z)
    assert np.array_equal(got.ptr, lay.ptr)


@pytest.mark.parametrize("ext", ["npz", "safetensors"])
def test_convert_codes_and_codebook(capsys, tmp_path, ext):
    rng = np.random.default_rng(2)
    c1 = (rng.integers(1, 16, (20, 30)) * (rng.random((20, 30)) < 0.2)).astype(np.uint8)
    c2 = (rng.integers(1, 4, (6, 20)) * (rng.random((6, 20)) < 0.5)).astype(np.int32)
    cb2 = np.array([0.0, -0.5, 0.25, 1.0], np.float32)
    arrays = {"fc1.codes": c1, "fc1.codebook": CB16, "fc1.bias_codes": np.arange(20, dtype=np.int64) % 16,
              "fc2.codes": c2, "fc2.codebook": cb2}
    src = tmp_path / f"m.{ext}"
    if ext == "npz":
        np.savez(src, **arrays)
    else:
        from safetensors.numpy import save_file

        save_file(arrays, str(src))
    out_eie = tmp_path / "m.eie"
    sel = ["--select", "fc1,fc2"] if ext == "safetensors" else []  # safetensors stores by dtype, not in order
    code, out, err = run(capsys, "convert", src, "--out", out_eie, "--n-pe", 4, *sel)
    assert code == 0, err
    net = load_network(out_eie)
    assert [l.name for l in net.layers] == ["fc1", "fc2"] and net.activation == "relu"
    l1, l2 = net.layers
    assert l1.n_pe == l2.n_pe == 4 and l1.has_bias and not l2.has_bias
    assert np.array_equal(l1.to_codes()[:, :30], c1) and np.array_equal(l1.to_codes()[:, 30], np.arange(20) % 16)
    assert l2.code_bits == 2 and np.array_equal(l2.to_codes(), c2)
    assert np.array_equal(l2.to_dense(), cb2[c2])


def test_convert_a_container_to_another_n(capsys, tmp_path):
    """A .eie source was read as a .net stream ("a .net stream has no layer list": fresh-user finding):
    it is re-interleaved for another N, codes, codebooks, activation and simulated outputs kept."""
    from eiesim.format.container import Network, save_network
    from eiesim.sim.network import simulate_network

    rng = np.random.default_rng(3)
    c1 = rng.integers(1, 16, (24, 18)) * (rng.random((24, 18)) < 0.3)
    c2 = rng.integers(1, 16, (7, 24)) * (rng.random((7, 24)) < 0.4)
    net = Network((CompressedLayer.from_codes(c1, CB16, 8, bias_codes=rng.integers(0, 16, 24), name="a"),
                   CompressedLayer.from_codes(c2, CB16, 8, name="b")), activation="relu", metadata={})
    src, dst, one = tmp_path / "n8.eie", tmp_path / "n3.eie", tmp_path / "b3.eie"
    save_network(src, net, {})
    code, out, err = run(capsys, "convert", src, "--out", dst, "--n-pe", 3)
    assert code == 0, err
    assert f"converted {src} (eie) -> {dst}, 2 layer(s) over 3 PEs" in out
    got = load_network(dst)
    assert got.activation == "relu" and [l.n_pe for l in got.layers] == [3, 3]
    for new, old in zip(got.layers, net.layers):
        assert np.array_equal(new.to_codes(), old.to_codes()) and np.array_equal(_bits(new.codebook), _bits(old.codebook))
    x = rng.uniform(0, 1, (4, 18)).astype(np.float32)
    assert np.array_equal(_bits(simulate_network(got, x).outputs), _bits(simulate_network(net, x).outputs))
    assert run(capsys, "convert", src, "--out", one, "--select", "b")[0] == 0  # keeps N = 8
    (b,) = load_network(one).layers
    assert b.n_pe == 8 and b.name == "b" and np.array_equal(b.to_codes(), c2)
    for flag in (["--drop-bias"], ["--index-bits", "4"]):  # even the value that used to be the default
        code, _, err = run(capsys, "convert", src, "--out", tmp_path / "x.eie", *flag)
        assert code == 2 and "do not apply to a .eie container" in err
    # one layer twice gave a network of two layers of one name (second fresh-user finding)
    code, _, err = run(capsys, "convert", src, "--out", tmp_path / "x.eie", "--select", "b, b")
    assert code == 2 and "--select: 'b' is given twice" in err and not (tmp_path / "x.eie").exists()


def test_convert_refusals(capsys, tmp_path, squeezenet_dir):
    np.savez(tmp_path / "w.npz", w=np.ones((3, 3), np.float32))
    code, _, err = run(capsys, "convert", tmp_path / "w.npz", "--out", tmp_path / "o.eie")
    assert code == 2 and "no 'codes' or 'PREFIX.codes' array" in err
    np.savez(tmp_path / "c.npz", codes=np.ones((3, 3), np.int8), codebook=np.zeros(3, np.float32))
    code, _, err = run(capsys, "convert", tmp_path / "c.npz", "--out", tmp_path / "o.eie")
    assert code == 2 and "2**b values" in err
    # a .net layer whose float bias is not a codebook value is refused, with the way out named
    code, _, err = run(capsys, "convert", squeezenet_dir, "--out", tmp_path / "o.eie")
    assert code == 2 and "bias[0]" in err and "--drop-bias" in err
    assert not (tmp_path / "o.eie").exists()


def test_convert_net_fc_shaped_layers(capsys, tmp_path, squeezenet_dir):
    from eiesim.format.dcnet import dclayer_to_compressed, load_layer_specs, read_net

    out_eie = tmp_path / "sq.eie"
    code, out, err = run(capsys, "convert", squeezenet_dir, "--out", out_eie, "--drop-bias",
                         "--select", "fire2/conv1x1_1,fire2/conv1x1_2", "--n-pe", 8)
    assert code == 0, err
    net = load_network(out_eie)
    assert [l.shape for l in net.layers] == [(16, 96), (64, 16)]
    ref = read_net(squeezenet_dir / "compressed_SqueezeNet.net", load_layer_specs(squeezenet_dir / "layers.json"))
    want = dclayer_to_compressed(ref.layer("fire2/conv1x1_1") if hasattr(ref, "layer") else
                                 [d for d in ref.layers if d.name == "fire2/conv1x1_1"][0], 8)[0]
    assert np.array_equal(net.layers[0].to_codes(), want.to_codes())
    assert np.array_equal(_bits(net.layers[0].codebook), _bits(want.codebook))
