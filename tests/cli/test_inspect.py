"""The ``eiesim inspect`` command-line contract."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from ..conftest import run_cli as run


def test_squeezenet_net_stream(capsys, tmp_path, squeezenet_dir):
    js = tmp_path / "sq.json"
    code, out, err = run(
        capsys, "inspect", squeezenet_dir / "compressed_SqueezeNet.net",
        "--layers", squeezenet_dir / "layers.json", "--json", js,
    )
    assert code == 0, err
    assert "bytes consumed: 675,763 of 675,763" in out
    assert "conv_final" in out and "1000 x 512 x 1 x 1" in out
    doc = json.loads(js.read_text())
    assert doc["kind"] == "net"
    assert len(doc["layers"]) == 26
    assert doc["bytes_consumed"] == doc["file_size"] == 675_763
    assert doc["header_bytes"] + doc["total"]["bytes"] == 675_763
    assert doc["total"]["entries"] == 422_083
    assert doc["total"]["fillers"] == 6_162
    assert doc["total"]["nonzeros"] == 415_921
    first = doc["layers"][0]
    assert first["name"] == "conv1" and first["shape"] == [96, 3, 7, 7]
    assert first["codebook_size"] == 256 and first["entries"] == 13_902
    # 256 float32 codebook + 96 float32 bias + 13,902 code bytes + 6,951 index bytes
    assert first["bytes"] == 1024 + 384 + 13_902 + 6_951
    assert doc["issues"] == []
    # regression (fresh-user test): SqueezeNet's 26 convolutions were listed as kind fc
    assert {l["kind"] for l in doc["layers"]} == {"conv"}
    assert "conv1            conv      96 x 3 x 7 x 7" in out
    code, out, err = run(capsys, "validate", squeezenet_dir / "compressed_SqueezeNet.net")
    assert code == 0, err
    assert "0             conv1  conv      96 x 3 x 7 x 7" in out


def test_net_layer_list_defaults_to_the_one_beside_it(capsys, tmp_path, squeezenet_dir):
    """As ``eiesim validate``: the .net file, or its directory, with layers.json beside it."""
    for arg in (squeezenet_dir / "compressed_SqueezeNet.net", squeezenet_dir):
        code, out, err = run(capsys, "inspect", str(arg))
        assert code == 0, err
        assert "bytes consumed: 675,763 of 675,763" in out
    # a lone .net copy with no layers.json beside it: the flag is named
    lone = tmp_path / "x.net"
    lone.write_bytes((squeezenet_dir / "compressed_SqueezeNet.net").read_bytes())
    code, _out, err = run(capsys, "inspect", str(lone))
    assert code == 2
    assert "--layers" in err and "none beside it" in err and err.count("\n") == 1
    # --json may not overwrite the layer list it read (on a copy: never write near ../shared)
    (tmp_path / "layers.json").write_bytes((squeezenet_dir / "layers.json").read_bytes())
    before = (tmp_path / "layers.json").read_bytes()
    code, _out, err = run(capsys, "inspect", str(lone), "--json", str(tmp_path / "layers.json"))
    assert code == 2 and "same file" in err
    assert (tmp_path / "layers.json").read_bytes() == before


def test_fc8_dump_directory(capsys, tmp_path, fc8_dir):
    js = tmp_path / "fc8.json"
    code, out, err = run(capsys, "inspect", fc8_dir, "--json", js)
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert doc["kind"] == "dump" and len(doc["layers"]) == 1
    layer = doc["layers"][0]
    assert layer["shape"] == [1000, 4096] and layer["has_bias"] and layer["n_pe"] == 64
    assert layer["entries"] == 1_051_991 and layer["fillers"] == 0
    assert layer["codebook_size"] == 16
    # 64 PEs x (4096 columns + bias column + 1) pointers of 16 bits; 4+4 bits per entry; 16 float32
    assert layer["pointers"] == 64 * 4098
    assert layer["bytes"] == 1_051_991 + 64 * 4098 * 2 + 64
    assert "1,051,991" in out
    # balance of the weight columns (the 959 bias non-zeros excluded): PE 6 holds 18,063 of 1,051,032
    bal = layer["balance"]
    assert bal["nonzeros"] == 1_051_032 and bal["pe_max"] == 18_063 and bal["slice_max_sum"] == 33_803
    assert bal["pe_balance"] == pytest.approx(64 * 18_063 / 1_051_032)
    assert bal["slice_balance"] == pytest.approx(64 * 33_803 / 1_051_032)
    head, row = out.splitlines()[1], out.splitlines()[3]
    assert "PE max/mean" in head and "slice max/mean" in head
    assert row.split()[-2:] == ["1.100", "2.058"]


def test_embedded_trace_container(capsys, tmp_path):
    path = resources.files("eiesim.traces") / "lenet300100.eie"
    js = tmp_path / "lenet.json"
    code, out, err = run(capsys, "inspect", str(path), "--json", js, "--pointer-bits", "12")
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert doc["kind"] == "eie"
    assert [l["name"] for l in doc["layers"]] == ["ip1", "ip2", "ip3"]
    assert [l["shape"] for l in doc["layers"]] == [[300, 784], [100, 300], [10, 100]]
    for l in doc["layers"]:
        assert l["pointer_bits"] == 12
        assert l["entries"] == l["fillers"] + l["bias_entries"] + l["nonzeros"]
        # issue 9: one definition of non-zeros -- W's, bias excluded -- so density = non-zeros / weights
        assert l["nonzeros"] == l["density"] * l["weights"] and l["bias_entries"] == l["shape"][0]
        assert l["bits"] == l["entries"] * 8 + l["pointers"] * 12 + 16 * 32
    assert [l["nonzeros"] for l in doc["layers"]] == [18_816, 2_700, 260]  # 8 %, 9 %, 26 % (traces/README.md)
    assert "non-zeros (W, no bias)" in out
    assert "ip1" in out and "300 x 784" in out


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b""])
def test_bad_inputs_are_one_line_errors(capsys, tmp_path, content):
    p = tmp_path / "x.eie"
    p.write_bytes(content)
    code, _out, err = run(capsys, "inspect", p)
    assert code == 2 and err.startswith("eiesim: error:") and err.count("\n") == 1
    code, _out, err = run(capsys, "inspect", tmp_path / "missing.net", "--layers", tmp_path / "l.json")
    assert code == 2 and "no such file" in err


def test_net_errors_are_one_line(capsys, tmp_path, squeezenet_dir):
    data = (squeezenet_dir / "compressed_SqueezeNet.net").read_bytes()
    p = tmp_path / "cut.net"
    p.write_bytes(data[:-10])
    code, _out, err = run(capsys, "inspect", p, "--layers", squeezenet_dir / "layers.json")
    assert code == 2 and "needs 163984 bytes at offset 511779 (105973 entries), only 163974 remain" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("balance", ["none", "balanced-pe", "balanced-column"])
def test_balance_columns_after_balanced_pruning(capsys, tmp_path, balance):
    import numpy as np

    rng = np.random.default_rng(3)
    # rows of very different scale: plain magnitude pruning crowds the kept weights into few PEs
    w = (rng.standard_normal((64, 48)) * rng.uniform(0.1, 3.0, (64, 1))).astype(np.float32)
    np.savez(tmp_path / "m.npz", **{"fc.weight": w})
    eie, js = tmp_path / "m.eie", tmp_path / "i.json"
    code, _, err = run(capsys, "compress", tmp_path / "m.npz", "--out", eie, "--density", "0.25", "--n-pe", "8",
                       "--balance", balance)
    assert code == 0, err
    code, out, err = run(capsys, "inspect", eie, "--json", js)
    assert code == 0, err
    bal = json.loads(js.read_text())["layers"][0]["balance"]
    nnz = bal["nonzeros"]
    assert nnz == 768 and sum(bal["nonzeros_per_pe"]) == nnz  # 25 % of 64 x 48
    pe, sl = (float(x) for x in out.splitlines()[3].split()[-2:])
    assert (pe, sl) == (round(bal["pe_balance"], 3), round(bal["slice_balance"], 3))
    if balance == "balanced-pe":  # 768 / 8 = 96 on every PE exactly
        assert bal["nonzeros_per_pe"] == [96] * 8 and pe == 1.0
    elif balance == "balanced-column":  # every slice holds ceil or floor of c_j / 8: the floor is reached
        assert bal["slice_max_sum"] == bal["slice_floor_sum"] and sl == round(bal["slice_balance_floor"], 3)
    else:  # plain magnitude is uneven on both counts
        assert pe > 1.2 and bal["slice_max_sum"] > bal["slice_floor_sum"]


def test_inspect_shows_dense_baseline_and_ratio(capsys, tmp_path):
    """Issue 9: inspect showed stored bytes without the dense baseline they compress."""
    path = resources.files("eiesim.traces") / "lenet300100.eie"
    js = tmp_path / "i.json"
    code, out, err = run(capsys, "inspect", str(path), "--json", js)
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert [l["dense_bytes"] for l in doc["layers"]] == [4 * (300 * 784 + 300), 4 * (100 * 300 + 100),
                                                          4 * (10 * 100 + 10)]
    t = doc["total"]
    assert t["dense_bytes"] == 1_066_440
    assert "dense bytes" in out and "dense / bytes" in out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert f"{t['dense_bytes'] / t['bytes']:,.1f}x" in total and "1,066,440" in total
