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
from pathlib import Path

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.energy.model import RunActivity, price_run
from eiesim.format.eiedump import read_dump
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate
from eiesim.sim.result import FixedPointSaturationWarning

CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)
TRACES = Path(__file__).resolve().parents[2] / "traces"
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


# ------------------------------------------------------------------ saturation
def _one_column():
    codes = np.array([[15], [1]])  # column 0: row 0 weight 3.75, row 1 weight 0.25 (N = 1)
    return CompressedLayer.from_codes(codes, CB, 1)


@pytest.mark.parametrize("saturate", [True, False])
def test_accumulator_saturation_counted_hand_worked(backend, saturate):
    """a = 100 (in Q7.8: 25,600): row 0 gets 100 x 3.75 = 375 > 127.996 -> one update out of
    the word; row 1 gets 25 (in range). Saturated: 32,767; wrapped: 96,000 - 65,536 = 30,464."""
    cfg = EIEConfig(n_pe=1, arith="fixed16", saturate=saturate)
    with pytest.warns(FixedPointSaturationWarning, match=r"layer .*: fixed16 (saturated|wrapped) 1 acc"):
        r = simulate(_one_column(), np.array([100.0], dtype=np.float32), cfg, backend=backend)
    assert r.counters["saturations"] == 1 and r.act_saturations == 0
    assert r.output_fixed.tolist() == ([32767, 6400] if saturate else [96000 - 65536, 6400])
    assert r.to_dict()["counters"]["saturations"] == 1


def test_input_saturation_counted_hand_worked(backend):
    """a = 200 > 127.996: the input itself is clipped to 32,767 (Q7.8) when quantised; row 0's
    sum 32,767 x 3.75 leaves the word, row 1's 32,767 x 0.25 = 8,191.75 -> 8,192 fits."""
    cfg = EIEConfig(n_pe=1, arith="fixed16")
    with pytest.warns(FixedPointSaturationWarning, match=r"1 accumulator update\(s\) and 1 input"):
        r = simulate(_one_column(), np.array([200.0], dtype=np.float32), cfg, backend=backend)
    assert r.act_saturations == 1 and r.counters["saturations"] == 1
    assert r.output_fixed.tolist() == [32767, 8192]


def test_no_saturation_no_warning(backend):
    cfg = EIEConfig(n_pe=1, arith="fixed16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = simulate(_one_column(), np.array([10.0], dtype=np.float32), cfg, backend=backend)
        f = simulate(_one_column(), np.array([1e30], dtype=np.float32), EIEConfig(n_pe=1), backend=backend)
    assert r.counters["saturations"] == 0 and r.act_saturations == 0
    assert f.counters["saturations"] == 0  # float32 never saturates


def test_fc8_input_times_1000_saturates_and_warns(fc8):
    """FC8 input x 1000 in Q7.8: the top-1 class moves from 708 to 22, and eiesim says why."""
    layer, act = fc8
    cfg = EIEConfig(arith="fixed16", **FC8_CFG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = simulate(layer, act, cfg)
    assert ok.counters["saturations"] == 0 and int(np.argmax(ok.output)) == 708
    big = (act * np.float32(1000)).astype(np.float32)
    with pytest.warns(FixedPointSaturationWarning, match="alexnet_fc8_eie"):
        r = simulate(layer, big, cfg)
    assert r.counters["saturations"] == 27448
    assert r.act_saturations == 1685  # inputs above 127.996 (act > 0.128)
    assert r.act_saturations == int(np.count_nonzero(act * np.float32(1000) >= 32767.5 / 256))
    assert int(np.argmax(r.output)) == 22


def test_lenet_act_frac_bits_15_warns_once_per_layer():
    """act_frac_bits = 15 (Q0.15, |x| < 1) on LeNet-300-100: every layer saturates."""
    from eiesim.format.container import load_network
    from eiesim.sim.network import simulate_network

    net = load_network(str(TRACES / "lenet300100.eie"))
    x = np.load(TRACES / "mnist_test100.npz")["inputs"][:5]
    cfg = EIEConfig.for_layer(net.layers[0]).replace(arith="fixed16", act_frac_bits=15)
    with pytest.warns(FixedPointSaturationWarning) as rec:
        res = simulate_network(net, x, cfg)
    sat = [l.counters["saturations"] for l in res.layers]
    assert all(s > 0 for s in sat)
    assert len(rec) == len(net.layers)  # once per layer, not once per input
    for w, l in zip(rec, res.layers):
        assert f"layer {l.name!r}" in str(w.message) and f"{l.counters['saturations']:,} acc" in str(w.message)
        assert "over 5 inputs" in str(w.message)
    ok = simulate_network(net, x, cfg.replace(act_frac_bits=8))
    assert all(l.counters["saturations"] == 0 for l in ok.layers)


def test_cli_prints_the_saturation_warning(capsys, tmp_path, fc8_dir):
    from eiesim.cli import main

    d = read_dump(fc8_dir, n_pe=64)
    big = tmp_path / "big.npy"
    np.save(big, (d.activations * np.float32(1000)).astype(np.float32))
    js = tmp_path / "r.json"
    code = main(["simulate", "--eie-dump", str(fc8_dir), "--fifo-depth", "7", "--input", str(big),
                 "--arith", "fixed16", "--json", str(js)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "warning: layer 'alexnet_fc8_eie': fixed16 saturated 27,448 accumulator update(s) and 1,685" in out
    import json

    layer = json.loads(js.read_text())["layers"][0]
    assert layer["counters"]["saturations"] == 27448 and layer["act_saturations"] == 1685
