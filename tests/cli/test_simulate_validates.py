"""``eiesim simulate --network`` warns about every error ``eiesim validate`` finds in a container that loads.

The loader uses ``v``/``z`` and ignores the redundant parts (declared counts, a packed image beside
them); the full validator's errors on those parts become ``warning:`` lines, from the same read of
the file (issue 10; one read since issue 11).
"""

from __future__ import annotations

import json
import zipfile

import numpy as np

from eiesim.format.container import save_network
from eiesim.format.validate import validate_container
from eiesim.format import CompressedLayer

from ..conftest import run_cli as run

CB = np.array([0.0, 0.5, -0.25, 1.0], dtype=np.float32)


def _container(tmp_path, n_fillers=None):
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0], c[5, 2], c[2, 3] = 1, 2, 3, 2, 3
    layer = CompressedLayer.from_codes(c, CB, 2, code_bits=2, index_bits=2, name="fc")
    good = tmp_path / "good.eie"
    save_network(good, [layer], packed=True)
    if n_fillers is None:
        return good
    bad = tmp_path / "bad.eie"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                doc = json.loads(data)
                doc["layers"][0]["n_fillers"] = n_fillers
                data = json.dumps(doc).encode()
            zout.writestr(info.filename, data)
    return bad


def test_rejected_container_is_simulated_with_the_validators_errors_as_warnings(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.arange(4, dtype=np.float32) + 1)
    bad = _container(tmp_path, n_fillers=99)
    errors = validate_container(bad, level="full").errors
    assert [f.code for f in errors] == ["META-INCONSISTENT"]
    code, out, err = run(capsys, "simulate", "--network", bad, "--input", x)
    assert code == 0, err
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {bad}: {f} -- eiesim validate rejects this file; simulated from the arrays as "
                      "loaded" for f in errors]
    assert "n_fillers" in warned[0]
    code, out2, _ = run(capsys, "simulate", "--network", _container(tmp_path), "--input", x)
    assert code == 0 and "warning:" not in out2
    # same simulation either way: the redundant count is not used
    assert out2.split("\n\n", 1)[1].replace("good.eie", "") == out.split("\n\n", 1)[1].replace("bad.eie", "")
