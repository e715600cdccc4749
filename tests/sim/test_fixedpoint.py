"""Hand-worked values of the 16-bit fixed-point helpers (EIE Section IV datapath)."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate
from eiesim.sim.result import FixedPointSaturationWarning
from eiesim.sim.fixedpoint import FixedFormat, clamp, fixed_format, narrow, quantize
from eiesim.sim.functional import spmv_fixed

NEAR = FixedFormat(16, "nearest", True)
FLOOR = FixedFormat(16, "floor", True)
NEAR_WRAP = FixedFormat(16, "nearest", False)
FLOOR_WRAP = FixedFormat(16, "floor", False)


def _q(values, frac, fmt):
    out = quantize(np.asarray(values, dtype=np.float64), frac, fmt)
    assert out.dtype == np.int64
    return out.tolist()


def test_format_range():
    assert (NEAR.lo, NEAR.hi) == (-32768, 32767)
    f8 = FixedFormat(8, "floor", False)
    assert (f8.lo, f8.hi) == (-128, 127)
    c = EIEConfig(arith="fixed16", rounding="floor", saturate=False)
    f = fixed_format(c)
    assert (f.total_bits, f.lo, f.hi, f.rounding, f.saturate) == (16, -32768, 32767, "floor", False)


# ------------------------------------------------------------------ quantize
def test_quantize_round_half_away_from_zero():
    # frac 0: ties go away from zero, everything else to the nearest integer
    assert _q([2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 2.4999, 2.5001, -2.6, 0.0, -0.0], 0, NEAR) == [
        3, -3, 1, -1, 2, -2, 2, 3, -3, 0, 0,
    ]


def test_quantize_floor():
    # floor is toward minus infinity, not toward zero
    assert _q([2.5, -2.5, 0.5, -0.5, 2.999, -0.001, 3.0, -3.0], 0, FLOOR) == [2, -3, 0, -1, 2, -1, 3, -3]


def test_quantize_fraction_bits():
    # frac 8 (Q7.8): 1.0 -> 256; 0.75 -> 192; 1/512 is half an LSB -> 1 (away from zero)
    assert _q([1.0, 0.75, -0.75, 1 / 512, -1 / 512, 1 / 1024], 8, NEAR) == [256, 192, -192, 1, -1, 0]
    assert _q([1 / 512, -1 / 512, 1 / 1024, -1 / 1024], 8, FLOOR) == [0, -1, 0, -1]
    # frac 12 (Q3.12): 0.5 -> 2048; -0.25 -> -1024
    assert _q([0.5, -0.25], 12, NEAR) == [2048, -1024]


def test_quantize_saturates():
    # Q7.8 holds [-128, 127.99609375]
    assert _q([127.99609375, 128.0, 1e6, -128.0, -128.1, -1e30], 8, NEAR) == [
        32767, 32767, 32767, -32768, -32768, -32768,
    ]
    assert _q([200.0, -200.0], 8, FLOOR) == [32767, -32768]


def test_quantize_wraps():
    # without saturation the 16-bit word wraps (two's complement)
    # 128.0 * 256 = 32768 -> -32768; 129 * 256 = 33024 -> 33024 - 65536 = -32512;
    # -129 * 256 = -33024 -> -33024 + 65536 = 32512; 256 * 256 = 65536 -> 0
    assert _q([128.0, 129.0, -129.0, 256.0, -128.0], 8, NEAR_WRAP) == [-32768, -32512, 32512, 0, -32768]


# ------------------------------------------------------------------ narrow
def test_narrow_nearest():
    x = np.array([5, -5, 3, -3, 4, -4, 6, 7, -7, 0], dtype=np.int64)
    # shift 1: 2.5 -> 3, -2.5 -> -3, 1.5 -> 2, -1.5 -> -2, 2, -2, 3, 3.5 -> 4, -3.5 -> -4, 0
    assert narrow(x, 1, NEAR).tolist() == [3, -3, 2, -2, 2, -2, 3, 4, -4, 0]
    # shift 2: 5/4 = 1.25 -> 1, -1.25 -> -1, 0.75 -> 1, -0.75 -> -1, 1, -1, 1.5 -> 2, 1.75 -> 2, -1.75 -> -2
    assert narrow(x, 2, NEAR).tolist() == [1, -1, 1, -1, 1, -1, 2, 2, -2, 0]


def test_narrow_floor():
    x = np.array([5, -5, 3, -3, 4, -4, -1, 1], dtype=np.int64)
    assert narrow(x, 1, FLOOR).tolist() == [2, -3, 1, -2, 2, -2, -1, 0]


def test_narrow_product_of_q8_and_q12():
    # 0.75 (Q3.12: 3072) x 1.5 (Q7.8: 384) = 1,179,648 with 20 fraction bits;
    # >> 12 -> 288 = 1.125 in Q7.8, exact
    p = np.array([3072 * 384, -3072 * 384], dtype=np.int64)
    assert narrow(p, 12, NEAR).tolist() == [288, -288]
    # one LSB of the product over a tie: (2048 + 2048) >> 12 = 1 for 0x800 = half an output LSB
    assert narrow(np.array([2048, -2048, 2047, -2047]), 12, NEAR).tolist() == [1, -1, 0, 0]
    assert narrow(np.array([2048, -2048, 2047, -2047]), 12, FLOOR).tolist() == [0, -1, 0, -1]


def test_narrow_shift_zero_is_identity():
    x = np.array([-7, 0, 7], dtype=np.int64)
    out = narrow(x, 0, NEAR)
    assert out.tolist() == [-7, 0, 7] and out is not x


def test_narrow_does_not_clamp():
    assert narrow(np.array([1 << 40]), 4, NEAR).tolist() == [1 << 36]


# ------------------------------------------------------------------ clamp
def test_clamp_saturate():
    x = np.array([32767, 32768, 10**9, -32768, -32769, -(10**9), 0], dtype=np.int64)
    assert clamp(x, NEAR).tolist() == [32767, 32767, 32767, -32768, -32768, -32768, 0]


def test_clamp_wrap():
    x = np.array([32767, 32768, 32769, 65536, -32768, -32769, -65537, 100000], dtype=np.int64)
    # 32768 -> -32768; 32769 -> -32767; 65536 -> 0; -32769 -> 32767; -65537 -> -1;
    # 100000 - 65536 = 34464 -> 34464 - 65536 = -31072
    assert clamp(x, FLOOR_WRAP).tolist() == [32767, -32768, -32767, 0, -32768, 32767, -1, -31072]


# ------------------------------------------------------------------ through the simulator
CB = np.array([0.0, 0.75, -0.75, 7.5] + [0.25] * 12, dtype=np.float32)


@pytest.mark.parametrize("backend", ["kernel", "reference"])
def test_simulated_fixed_mac_hand_worked(backend):
    """One column, rows 0 (0.75), 1 (-0.75), 2 (7.5); a = 1.5 + 1/512 (a half-LSB tie in Q7.8).

    Nearest: a_q = round(1.501953125 * 256 = 384.5) = 385 (away from zero);
    cb_q = 3072, -3072, 30720 (Q3.12).
    row 0: 3072 * 385 = 1,182,720; / 4096 = 288.75 -> 289.
    row 1: -288.75 -> -289 (symmetric).
    row 2: 30720 * 385 = 11,827,200; / 4096 = 2887.5 -> 2888 (tie, away from zero).
    """
    layer = CompressedLayer.from_codes(np.array([[1], [2], [3]]), CB, 1)
    cfg = EIEConfig(n_pe=1, arith="fixed16")
    a = [1.5 + 1 / 512]
    r = simulate(layer, a, cfg, backend=backend)
    assert r.output_fixed.tolist() == [289, -289, 2888]
    assert r.output.tolist() == [289 / 256, -289 / 256, 2888 / 256]
    assert spmv_fixed(layer, a, cfg).tolist() == [289, -289, 2888]

    # Floor: a_q = floor(384.5) = 384; row 0: 3072 * 384 / 4096 = 288 exactly; row 1: -288;
    # row 2: 30720 * 384 / 4096 = 2880 exactly.
    floor = cfg.replace(rounding="floor")
    assert simulate(layer, a, floor, backend=backend).output_fixed.tolist() == [288, -288, 2880]
    # Floor with a product that is not exact: a = 1.5 + 1/256 -> a_q = 385;
    # row 0: 288.75 -> 288; row 1: -288.75 -> -289 (toward minus infinity); row 2: 2887.5 -> 2887.
    a = [1.5 + 1 / 256]
    assert simulate(layer, a, floor, backend=backend).output_fixed.tolist() == [288, -289, 2887]
    assert spmv_fixed(layer, a, floor).tolist() == [288, -289, 2887]


@pytest.mark.parametrize("backend", ["kernel", "reference"])
@pytest.mark.parametrize("saturate, expected", [(True, 32767), (False, -8192)])
def test_simulated_accumulator_overflow(backend, saturate, expected):
    """Row 0 gets 7.5 x 16.0 four times: 4 x 30720 = 122,880 > 32767.

    Each product 30720 * 4096 >> 12 = 30720 (= 120.0). Saturating: 30720, then 32767 and it
    stays. Wrapping: 30720, 61440 - 65536 = -4096, 26624, 57344 - 65536 = -8192
    (= 122,880 - 2 * 65,536). Updates out of the word (``counters["saturations"]``):
    saturating, the 2nd, 3rd and 4th (3); wrapping, the 2nd and 4th (2).
    """
    layer = CompressedLayer.from_codes(np.array([[3, 3, 3, 3]]), CB, 1)
    cfg = EIEConfig(n_pe=1, arith="fixed16", saturate=saturate)
    with pytest.warns(FixedPointSaturationWarning, match="saturated 3 acc" if saturate else "wrapped 2 acc"):
        r = simulate(layer, [16.0] * 4, cfg, backend=backend)
    assert r.output_fixed.tolist() == [expected]
    assert r.counters["saturations"] == (3 if saturate else 2)
    assert spmv_fixed(layer, [16.0] * 4, cfg).tolist() == [expected]
