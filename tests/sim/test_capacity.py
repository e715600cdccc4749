"""Per-PE SRAM footprint against EIE's capacities (eiesim.sim.capacity)."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim import EIEConfig
from eiesim.errors import EieInputError
from eiesim.format.eiedump import read_dump
from eiesim.format.layout import CompressedLayer
from eiesim.sim.capacity import sram_footprint


def _paper_example() -> CompressedLayer:
    """The 16 x 8 matrix of EIE Fig. 2/3 restricted to PE0's non-zeros (4 PEs): PE0 holds 13 entries."""
    w = np.zeros((16, 8), np.float32)
    for r, c in [(0, 0), (8, 0), (12, 0), (4, 1), (0, 2), (12, 2), (0, 4), (4, 4), (0, 5), (12, 5), (0, 6),
                 (8, 7), (12, 7)]:
        w[r, c] = 1.0
    w[1, 3] = 1.0  # one entry for PE1
    cb = np.zeros(16, np.float32)
    cb[1] = 1.0
    return CompressedLayer.from_weights(w, cb, 4, name="fig2")


def test_hand_worked_paper_example():
    layer = _paper_example()
    assert layer.ptr[:, -1].tolist() == [13, 1, 0, 0]
    f = sram_footprint(layer, EIEConfig(n_pe=4))
    # 13 entries x 8 bits = 104 bits -> two 64-bit lines = 16 bytes
    assert f.spmat_bytes == 16
    # 8 columns + end pointer, 16 bits each
    assert f.ptr_bytes == 18
    # ceil(8/4) + ceil(16/4) = 6 activations x 16 bits
    assert f.act_bytes == 12
    assert f.max_pointer == 13
    assert f.fits and f.problems() == []
    # 32-bit lines: 104 bits -> 4 lines = 16 bytes; 128-bit lines: 1 line = 16 bytes; 8-bit: 13 bytes
    assert sram_footprint(layer, EIEConfig(n_pe=4, spmat_line_bits=8)).spmat_bytes == 13
    assert sram_footprint(layer, EIEConfig(n_pe=4, spmat_line_bits=256)).spmat_bytes == 32


def test_each_capacity_and_pointer_width_is_reported():
    layer = _paper_example()
    # 3-bit pointers: 9 x 3 = 27 bits -> 4 bytes of pointer SRAM
    f = sram_footprint(layer, EIEConfig(n_pe=4, spmat_sram_bytes=15, ptr_sram_bytes=3, act_sram_bytes=11,
                                        pointer_bits=3))
    probs = f.problems()
    assert not f.fits and len(probs) == 4
    assert "spmat SRAM" in probs[0] and "16 bytes" in probs[0] and "15 bytes" in probs[0]
    assert "pointer SRAM" in probs[1] and "4 bytes" in probs[1] and "capacity 3 bytes" in probs[1]
    assert "activation SRAM" in probs[2] and "12 bytes" in probs[2]
    assert "13 entries" in probs[3] and "3-bit" in probs[3] and "(7)" in probs[3]
    # exactly at capacity fits; pointer value 13 needs 4 bits
    assert sram_footprint(layer, EIEConfig(n_pe=4, spmat_sram_bytes=16, ptr_sram_bytes=18, act_sram_bytes=12,
                                           pointer_bits=4)).fits
    d = f.to_dict()
    assert d["fits"] is False and d["problems"] == probs and d["spmat_bytes"] == 16


def test_bias_column_counts_a_pointer():
    w = np.zeros((4, 3), np.float32)
    w[0, 0] = 1.0
    cb = np.zeros(16, np.float32)
    cb[1] = 1.0
    with_bias = CompressedLayer.from_weights(w, cb, 2, bias=np.array([1, 0, 0, 0], np.float32))
    assert sram_footprint(with_bias, EIEConfig(n_pe=2)).ptr_bytes == (3 + 1 + 1) * 2


def test_real_fc8_fits_the_reference_design(fc8_dir):
    layer = read_dump(fc8_dir).layer
    f = sram_footprint(layer, EIEConfig())
    # busiest PE: 18,078 entries = 18,078 bytes -> 2,260 lines of 8 bytes
    assert (f.max_pointer, f.spmat_bytes) == (18078, 18080)
    assert f.ptr_bytes == (4096 + 1 + 1) * 2  # 4,096 inputs + bias column + end pointer
    assert f.act_bytes == (64 + 16) * 2
    assert f.fits
    # the same layer would not fit 16 KB of spmat SRAM per PE
    assert not sram_footprint(layer, EIEConfig(spmat_sram_bytes=16 * 1024)).fits


def test_bad_arguments_are_typed():
    with pytest.raises(EieInputError, match="CompressedLayer"):
        sram_footprint(np.zeros((2, 2)), EIEConfig())
    with pytest.raises(EieInputError, match="EIEConfig"):
        sram_footprint(_paper_example(), {"n_pe": 4})
