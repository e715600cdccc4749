"""The functional oracle (eiesim.sim.functional) follows the hardware's accumulation order."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate
from eiesim.sim.functional import spmv_fixed, spmv_float32

CB = np.array([0.0, 1.0, -1.0, 0.5] + [0.25] * 12, dtype=np.float32)


def test_float32_order_is_column_order_then_bias():
    """float32 addition is not associative; the oracle must add in broadcast order.

    Row 0 has weight 1.0 in columns 0, 1, 2 and a bias of 1.0; a = (2**24, 1, -2**24).
    Increasing j: 2**24, then 2**24 + 1 rounds (to even) back to 2**24, then 0; the bias
    (last) gives 1.0. The exact value is 2.0.
    """
    layer = CompressedLayer.from_codes(np.array([[1, 1, 1]]), CB, 1, bias_codes=[1])
    a = np.array([2.0**24, 1.0, -(2.0**24)], dtype=np.float32)
    y = spmv_float32(layer, a)
    assert y.dtype == np.float32 and y.tolist() == [1.0]
    for backend in ("kernel", "reference"):
        assert simulate(layer, a, EIEConfig(n_pe=1), backend=backend).output.tolist() == [1.0]


def test_float32_matches_dense_product():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 16, size=(37, 23))
    codes[rng.random(codes.shape) < 0.6] = 0
    cb = np.concatenate([[0.0], rng.normal(size=15)]).astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, 5, bias_codes=rng.integers(0, 16, 37), index_bits=2)
    a = rng.normal(size=23).astype(np.float32)
    a[rng.random(23) < 0.3] = 0
    ref = layer.to_dense().astype(np.float64) @ a.astype(np.float64) + layer.bias_values()
    y = spmv_float32(layer, a)
    assert y.shape == (37,) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_empty_layer_and_zero_input():
    layer = CompressedLayer.from_codes(np.zeros((4, 3), dtype=int), CB, 8)
    assert spmv_float32(layer, [1.0, 2.0, 3.0]).tolist() == [0.0] * 4
    assert spmv_fixed(layer, [1.0, 2.0, 3.0], EIEConfig(n_pe=8)).tolist() == [0] * 4
    full = CompressedLayer.from_codes(np.ones((4, 3), dtype=int), CB, 2)
    y = spmv_float32(full, np.zeros(3))
    assert y.tolist() == [0.0] * 4 and not np.signbit(y).any()  # +0.0, as the accumulators start


def test_fixed_uses_only_fixed_fields():
    """spmv_fixed ignores arith / n_pe / timing knobs."""
    layer = CompressedLayer.from_codes(np.array([[1, 3], [2, 0]]), CB, 2)
    a = [0.75, -2.0]
    base = spmv_fixed(layer, a, EIEConfig(n_pe=2, arith="fixed16"))
    # row 0: 1.0 * 0.75 + 0.5 * -2.0 = -0.25 -> -64 (Q7.8); row 1: -0.75 -> -192
    assert base.dtype == np.int64 and base.tolist() == [-64, -192]
    assert spmv_fixed(layer, a, EIEConfig(n_pe=7, fifo_depth=2)).tolist() == [-64, -192]


@pytest.mark.parametrize("act_frac_bits, weight_frac_bits", [(8, 12), (0, 0), (4, 14), (15, 15)])
@pytest.mark.filterwarnings("ignore::eiesim.sim.result.FixedPointSaturationWarning")  # Q0.15 saturates
def test_fixed_formats_match_simulator(act_frac_bits, weight_frac_bits):
    rng = np.random.default_rng(act_frac_bits * 100 + weight_frac_bits)
    codes = rng.integers(0, 16, size=(20, 30))
    layer = CompressedLayer.from_codes(codes, CB, 3, bias_codes=rng.integers(0, 16, 20))
    a = rng.uniform(-3, 3, 30).astype(np.float32)
    for rounding in ("nearest", "floor"):
        for saturate in (True, False):
            cfg = EIEConfig(
                n_pe=3, arith="fixed16", act_frac_bits=act_frac_bits,
                weight_frac_bits=weight_frac_bits, rounding=rounding, saturate=saturate,
            )
            r = simulate(layer, a, cfg)
            np.testing.assert_array_equal(r.output_fixed, spmv_fixed(layer, a, cfg))
