"""The ``eiesim validate`` command-line contract: exit codes 0 / 1 / 2, text and JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from eiesim.cli import main
from eiesim.format import CompressedLayer
from eiesim.format.container import save_network

TRACES = Path(__file__).resolve().parents[2] / "traces"
CB = np.array([0.0, 0.5, -0.25, 1.0], dtype=np.float32)
FINDING_KEYS = {"code", "severity", "location", "count", "message"}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
    assert doc["summary"] == {"layers": 1, "stored_entries": 1051991, "fillers": 0, "real_nonzeros": 1051991}
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
