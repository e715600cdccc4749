"""A non-zero code whose centroid is exactly 0.0 (issue 9, W2).

k-means on a symmetric weight set, 16 x 16 of {-1, -0.01, 0.01, 1} at 2 bits (3
centroids, linear init -1, 0, 1), leaves the middle centroid at exactly 0.0. Those
weights decode to 0.0 whatever their code: quantisation merges them into code 0
(pruned), so density is 50 %, not 100 %, and no MAC adds 0. A stored entry that decodes
to 0.0 anyway is an error for the validator (ENTRY-DECODES-TO-ZERO) and the simulator
refuses it; "non-zeros" everywhere means decoded value != 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.compress.quantize import decode, quantize_layer
from eiesim.config import EIEConfig
from eiesim.errors import EieFormatError
from eiesim.format.container import load_network
from eiesim.format.layout import CompressedLayer
from eiesim.format.validate import RULES, validate, validate_arrays
from eiesim.sim.engine import simulate

VALUES = np.array([-1.0, -0.01, 0.01, 1.0], dtype=np.float32)


def symmetric(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.permutation(np.repeat(VALUES, 64)).reshape(16, 16)


@pytest.mark.parametrize("method", ["sorted", "scipy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_centroid_is_merged_into_code_0(method, seed):
    w = symmetric(seed)
    codes, cb, info = quantize_layer(w, np.ones(w.shape, bool), code_bits=2, method=method)
    assert cb.view(np.uint32)[0] == 0
    assert not np.any(cb[1:] == 0.0)  # never a second zero centroid
    assert cb[1:].tolist() == [-1.0, 1.0, float(np.nextafter(np.float32(1), np.float32(2)))]
    assert info["merged_into_zero"] == 128 and info["n_kept"] == 128 and info["density"] == 0.5
    assert info["zero_centroids"] == [] and info["unused_codes"] == [3]
    # the merged weights are exactly the ones that decoded to 0.0: the decoded matrix is unchanged
    expected = np.where(np.abs(w) == 1, w, 0).astype(np.float32)
    np.testing.assert_array_equal(decode(codes, cb), expected)
    assert np.array_equal(codes != 0, np.abs(w) == 1)


def test_no_zero_centroid_nothing_changes():
    w = np.array([[-1.0, -0.5, 0.5, 1.0, 0.25, -0.25]], dtype=np.float32)
    codes, cb, info = quantize_layer(w, np.ones(w.shape, bool), code_bits=3)
    assert info["merged_into_zero"] == 0 and info["n_kept"] == 6
    assert np.all(codes != 0) and not np.any(cb[1:] == 0)


def test_compress_bits_2_writes_half_the_entries(capsys, tmp_path):
    src = tmp_path / "sym.npz"
    np.savez(src, **{"fc.weight": symmetric()})
    out = tmp_path / "sym.eie"
    assert main(["compress", str(src), "--bits", "2", "--n-pe", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kept 128 (50.00 %)" in text
    (layer,) = load_network(str(out)).layers
    assert layer.n_nonzeros == 128 and layer.weight_density == 0.5
    assert not np.any(layer.codebook[1:] == 0.0)
    rep = validate(str(out))
    assert "ENTRY-DECODES-TO-ZERO" not in rep.codes() and rep.conformant()
    assert rep.layers[0].real_nonzeros == 128
    r = simulate(layer, np.ones(16, np.float32), EIEConfig.for_layer(layer))
    assert r.counters["macs"] == 128


# ------------------------------------------------------------------ validator and simulator
def _layer_with_zero_code(zero=0.0):
    """Codes 1..3 in a 12 x 4 layer (2 PEs); code 2 (3 entries) decodes to ``zero``."""
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0] = 1, 2, 3
    c[1, 1], c[11, 1], c[4, 1] = 1, 2, 3
    c[5, 2] = 2
    c[2, 3], c[6, 3] = 3, 1
    cb = np.array([0.0, 0.5, 1.0, -0.25], dtype=np.float32)
    lay = CompressedLayer.from_codes(c, cb, 2, code_bits=2, index_bits=2, name="z")
    cb0 = cb.copy()
    cb0[2] = np.float32(zero)
    return lay, cb0


def test_rule_is_an_error():
    assert RULES["ENTRY-DECODES-TO-ZERO"].severity == "error"


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_validator_stored_entries_decoding_to_zero_are_an_error(zero):
    lay, cb0 = _layer_with_zero_code(zero)
    kw = dict(shape=(12, 4), n_pe=2, ptr=lay.ptr, v=lay.v, z=lay.z, code_bits=2, index_bits=2)
    assert validate_arrays(codebook=lay.codebook, **kw).conformant()
    rep = validate_arrays(codebook=cb0, **kw)
    assert "ENTRY-DECODES-TO-ZERO" in rep.codes() and not rep.conformant()
    (f,) = [f for f in rep.findings if f.code == "ENTRY-DECODES-TO-ZERO"]
    assert f.severity == "error" and f.count == 3 and "code(s) 2" in f.message
    stored = int(lay.v.size)
    fillers = int(np.count_nonzero(lay.v == 0))
    assert rep.layers[0].real_nonzeros == stored - fillers - 3  # non-zeros: decoded value != 0


def test_unused_zero_centroid_is_not_the_error():
    lay, cb0 = _layer_with_zero_code()
    v = lay.v.copy()
    v[v == 2] = 1  # nothing uses code 2 any more
    rep = validate_arrays(shape=(12, 4), n_pe=2, codebook=cb0, ptr=lay.ptr, v=v, z=lay.z,
                          code_bits=2, index_bits=2)
    assert "ENTRY-DECODES-TO-ZERO" not in rep.codes() and rep.conformant()
    assert {"CODEBOOK-DUPLICATE", "CODEBOOK-UNUSED"} <= rep.codes()


def test_simulator_refuses_entries_decoding_to_zero():
    lay, cb0 = _layer_with_zero_code()
    bad = CompressedLayer(shape=lay.shape, n_pe=2, codebook=cb0, ptr=lay.ptr, v=lay.v, z=lay.z,
                          has_bias=False, code_bits=2, index_bits=2, name="z")
    cfg = EIEConfig(n_pe=2, code_bits=2, index_bits=2)
    for backend in ("kernel", "reference"):
        with pytest.raises(EieFormatError, match="ENTRY-DECODES-TO-ZERO") as exc:
            simulate(bad, np.ones(4, np.float32), cfg, backend=backend)
        assert exc.value.code == "ENTRY-DECODES-TO-ZERO"
    assert simulate(lay, np.ones(4, np.float32), cfg).counters["macs"] == 9
