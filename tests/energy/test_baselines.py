"""Baselines: published Table IV values, derived powers, the fitted model, host measurement."""

from __future__ import annotations

import math

import pytest

from eiesim.energy.baselines import (
    HEADLINE, LAYER_ORDER, PLATFORMS, PUBLISHED_BATCH1_US, PUBLISHED_EIE_US, fitted_models, geomean, layer_bytes, measure_host, published_time,
)
from eiesim.errors import EieInputError
from eiesim.workloads.benchmarks import BENCHMARKS

LAYERS = [(n, b.n_out, b.n_in, b.weight_density) for n, b in BENCHMARKS.items()]


def test_published_table_spot_values():
    assert PUBLISHED_BATCH1_US["Alex-6"][("cpu", "dense")] == 7516.2
    assert PUBLISHED_BATCH1_US["VGG-6"][("gpu", "sparse")] == 167.0
    assert PUBLISHED_BATCH1_US["NT-LSTM"][("mgpu", "sparse")] == 315.0
    assert tuple(PUBLISHED_BATCH1_US) == LAYER_ORDER
    assert all(len(v) == 6 for v in PUBLISHED_BATCH1_US.values())
    t = published_time("Alex-8", "gpu", "dense")
    assert t.time_us == 80.5 and t.label == "published" and "Table IV" in t.source


def test_batch64_is_not_invented():
    t = published_time("Alex-8", "cpu", "dense", batch=64)
    assert t.time_us is None and t.label == "not available"
    with pytest.raises(EieInputError):
        published_time("Alex-8", "cpu", "dense", batch=8)
    with pytest.raises(EieInputError):
        published_time("ResNet-1", "cpu", "dense")


def test_table4_geomean_speedups():
    """Recomputing the paper's speedups from its own Table IV: 194x (CPU), 13x (GPU), ~314x (mGPU)."""
    sp = {p: geomean(PUBLISHED_BATCH1_US[n][(p, "dense")] / PUBLISHED_EIE_US[n] for n in LAYER_ORDER)
          for p in ("cpu", "gpu", "mgpu")}
    assert round(sp["cpu"]) == 194
    assert sp["gpu"] == pytest.approx(13, rel=0.03)
    assert sp["mgpu"] == pytest.approx(307, rel=0.03)


def test_derived_powers():
    for p in ("cpu", "gpu", "mgpu"):
        pw = PLATFORMS[p].power_w
        assert pw == pytest.approx(0.6 * HEADLINE["energy"][p] / HEADLINE["speedup"][p])
        assert "derived from the paper's headline ratios" in PLATFORMS[p].power_source
    assert PLATFORMS["cpu"].power_w == pytest.approx(76.19, abs=0.01)
    assert PLATFORMS["gpu"].power_w == pytest.approx(156.92, abs=0.01)
    assert PLATFORMS["mgpu"].power_w == pytest.approx(5.277, abs=0.001)


def test_memory_bound_model_fits_published_times():
    models = fitted_models(LAYERS)
    assert len(models) == 6
    for (p, k), m in models.items():
        assert m.t0_us >= 0 and m.bandwidth_gbs > 0
        assert m.max_rel_error < 0.5
        assert "modelled" in m.source and m.to_dict()["label"] == "modelled"
    gpu = models[("gpu", "dense")]
    assert 100 < gpu.bandwidth_gbs < 400  # Titan X: 336 GB/s peak
    assert gpu.time_us(4096, 4096, 1.0) == pytest.approx(gpu.t0_us + layer_bytes(4096, 4096, 1.0, "dense") / (gpu.bandwidth_gbs * 1e3))
    assert gpu.energy_j(1000, 4096, 0.25) == pytest.approx(gpu.power_w * gpu.time_us(1000, 4096, 0.25) * 1e-6)


def test_layer_bytes():
    assert layer_bytes(10, 20, 0.5, "dense") == 4 * 200 + 4 * 30
    assert layer_bytes(10, 20, 0.5, "sparse") == 8 * 100 + 4 * 11 + 4 * 30
    with pytest.raises(EieInputError):
        layer_bytes(1, 1, 1, "blocked")


def test_measure_host_small():
    r = measure_host(64, 128, 0.1, warmup=1, repeats=3)
    assert r["label"] == "measured on this host"
    assert r["dense_us"] > 0 and r["sparse_us"] > 0
    assert "not available" in r["energy"]
    assert r["repeats"] == 3 and "BLAS threads" in r["host"]


def test_measure_host_refuses_weights_of_another_shape():
    import scipy.sparse as sp

    with pytest.raises(EieInputError, match=r"weights of shape \(20, 10\), expected \(10, 20\)"):
        measure_host(10, 20, 0.1, weights=sp.random(20, 10, density=0.2, format="csr", random_state=0))


def test_geomean():
    assert geomean([2, 8]) == pytest.approx(4)
    assert math.isnan(geomean([1, 0]))
    assert math.isnan(geomean([]))
