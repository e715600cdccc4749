"""The fixed16 datapath as the hardware holds it (issue 9, W1 and section 3).

* W1: the LNZD tests the quantised activation. A float input that rounds to 0 in the
  activation format (``act_frac_bits``) is a zero: not broadcast, not counted in the
  activation density, no cycles and no energy.
* Saturation: every accumulator update whose exact sum leaves the 16-bit word is
  counted (``counters["saturations"]``, identical in the kernel and the reference)
  and so is every input activation clipped at quantisation
  (``SimResult.act_saturations``); :func:`eiesim.sim.engine.simulate` warns when any
  occurred.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.energy.model import RunActivity, price_run
from eiesim.format.eiedump import read_dump
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate

CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)
FC8_CFG = dict(n_pe=64, spmat_line_bits=64, fifo_depth=7)


@pytest.fixture(params=["kernel", "reference"])
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def fc8(fc8_dir):
    d = read_dump(fc8_dir, n_pe=64)
    return d.layer, d.activations


def _two_by_two():
    codes = np.array([[1, 0], [0, 2]])  # column 0 -> row 0 (PE 0), column 1 -> row 1 (PE 1)
    return CompressedLayer.from_codes(codes, CB, 2)


# ------------------------------------------------------------------ W1
def test_lnzd_tests_the_quantised_activation_hand_worked(backend):
    """N = 2, a = (1e-3, 1.0); act_frac_bits = 8: 1e-3 * 256 = 0.256 rounds to 0.

    fixed16 -- the LNZD sees (0, 1): c0 load g0; c1 bc 1 from slot 1 = N-1 (+ load g1 =
    done); c2 both PEs pop 1; c3 PE 0 empty slice, PE 1 ptr + e(1). 4 + 5 drain = 9.
    float32 -- the LNZD sees (1e-3, 1): c0 load g0; c1 bc 0; c2 bc 1 (+ load g1 = done),
    PEs pop 0; c3 PE 0 e(0), PE 1 empty slice, both pop 1; c4 PE 0 empty slice, PE 1
    e(1). 5 + 5 = 10.
    """
    layer = _two_by_two()
    a = np.array([1e-3, 1.0], dtype=np.float32)
    fx = simulate(layer, a, EIEConfig(n_pe=2, arith="fixed16"), backend=backend)
    assert fx.cycles == 9
    assert fx.act_nonzeros == 1 and fx.activation_density == 0.5
    assert fx.counters["broadcasts"] == 1 and fx.counters["ptr_reads"] == 2
    assert fx.counters["macs"] == 1
    assert fx.output_fixed.tolist() == [0, 128]  # 1.0 x 0.5 = 0.5 in Q7.8
    fl = simulate(layer, a, EIEConfig(n_pe=2), backend=backend)
    assert fl.cycles == 10
    assert fl.act_nonzeros == 2 and fl.counters["broadcasts"] == 2


def test_lnzd_negative_activation_rounding_to_zero(backend):
    """-1e-3 also quantises to 0 (round half away from zero keeps |x| < 2**-9 at 0)."""
    layer = _two_by_two()
    a = np.array([-1e-3, -1e-3], dtype=np.float32)
    fx = simulate(layer, a, EIEConfig(n_pe=2, arith="fixed16"), backend=backend)
    assert fx.act_nonzeros == 0 and fx.counters["broadcasts"] == 0
    assert fx.cycles == 1 + 1 + 5  # load g0, load past it, drain


def test_fc8_tiny_input_in_fixed16_is_the_all_zero_input(fc8):
    """FC8 input x 1e-6 rounds to 0 everywhere in Q7.8: cycles, density, energy of a = 0."""
    layer, act = fc8
    cfg = EIEConfig(arith="fixed16", **FC8_CFG)
    tiny = simulate(layer, (act * np.float32(1e-6)).astype(np.float32), cfg)
    zero = simulate(layer, np.zeros_like(act), cfg)
    assert tiny.cycles == zero.cycles == 88  # 66 group loads, bias broadcast, drain
    assert tiny.act_nonzeros == zero.act_nonzeros == 0
    assert tiny.activation_density == 0.0
    assert tiny.counters == zero.counters
    np.testing.assert_array_equal(tiny.output_fixed, zero.output_fixed)
    e_tiny = price_run(RunActivity.from_result(tiny, cfg))
    e_zero = price_run(RunActivity.from_result(zero, cfg))
    assert e_tiny["activity"]["total_pj"] == e_zero["activity"]["total_pj"]
    assert e_tiny["paper"]["total_pj"] == e_zero["paper"]["total_pj"]
    # the same input in float32 is 42.9 % dense (the LNZD of a float datapath sees it)
    fl = simulate(layer, (act * np.float32(1e-6)).astype(np.float32), EIEConfig(**FC8_CFG))
    assert fl.act_nonzeros == 1759


def test_fc8_tiny_input_reference_agrees(fc8):
    layer, act = fc8
    cfg = EIEConfig(arith="fixed16", **FC8_CFG)
    tiny = (act * np.float32(1e-6)).astype(np.float32)
    k = simulate(layer, tiny, cfg, backend="kernel")
    r = simulate(layer, tiny, cfg, backend="reference")
    assert k.cycles == r.cycles == 88
    assert k.counters == r.counters
