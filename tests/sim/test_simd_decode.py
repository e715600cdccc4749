"""The per-layer pass's SSSE3 decode (uint16 MACs, int16 rows) builds the same tables, bit for
bit, as its scalar decode, and names the same first broken rule at the same entry."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from eiesim.format.layout import CompressedLayer

from ._tables import assert_same_tables as _assert_same

eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")


@pytest.fixture(scope="module")
def simd_switch():
    before = eie_sim.simd_decode()
    if not before:
        pytest.skip("this build or CPU has no SSSE3 decode: the scalar decode is the only one")
    yield
    eie_sim.simd_decode(before)


def _both(ptr, v, z, n_out, code_bits, index_bits):
    out = []
    for on in (True, False):
        eie_sim.simd_decode(on)
        out.append(eie_sim.build_tables(ptr=ptr, v=v, z=z, n_out=n_out, code_bits=code_bits,
                                        index_bits=index_bits))
    eie_sim.simd_decode(True)
    return out


@st.composite
def layers(draw):
    n_pe = draw(st.integers(1, 9))
    code_bits = draw(st.integers(1, 8))
    n_out = draw(st.integers(1, min(300, (1 << 16) >> code_bits)))
    n_in = draw(st.integers(1, 150))
    index_bits = draw(st.integers(1, 8))
    density = draw(st.sampled_from([0.0, 0.02, 0.2, 0.6, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 1 << code_bits, (n_out, n_in)), 0)
    codebook = np.r_[0.0, np.linspace(0.1, 1.5, (1 << code_bits) - 1)].astype(np.float32)
    return CompressedLayer.from_codes(codes, codebook, n_pe, code_bits=code_bits, index_bits=index_bits)


@given(layers())
@settings(max_examples=150, deadline=None)
def test_simd_decode_builds_the_scalar_tables(simd_switch, layer):
    a, b = _both(layer.ptr, layer.v, layer.z, layer.n_out, layer.code_bits, layer.index_bits)
    assert a[1] == 0
    assert a[0].macs.dtype == np.uint16 and a[0].first_row.dtype == np.int16  # the SIMD path ran
    _assert_same(a, b)


@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 17, 40])
def test_slices_across_8_entry_steps_and_the_layer_end(simd_switch, length):
    # one PE, one column of `length` entries then one of 3: the second ends at the last entry (no 8-byte read)
    n_out = 64
    codes = np.zeros((n_out, 2), dtype=np.int64)
    rows = np.arange(0, 2 * length, 2)[:length] % n_out
    codes[np.unique(rows), 0] = 1 + np.arange(np.unique(rows).size) % 15
    codes[[5, 40, 63], 1] = [3, 4, 9]
    layer = CompressedLayer.from_codes(codes, np.r_[0.0, np.ones(15)].astype(np.float32), 1, index_bits=2)
    assert layer.n_fillers > 0
    a, b = _both(layer.ptr, layer.v, layer.z, n_out, 4, 2)
    _assert_same(a, b)
    np.testing.assert_array_equal(a[0].last_row[:, 0], [np.nonzero(codes[:, 0])[0].max(), 63])


@pytest.mark.parametrize("break_at", ["trailing_filler", "row_range"])
@pytest.mark.parametrize("late", [False, True])
def test_simd_decode_names_the_same_broken_slice(simd_switch, break_at, late):
    rng = np.random.default_rng(3)
    codes = np.where(rng.random((40, 30)) < 0.3, rng.integers(1, 16, (40, 30)), 0)
    layer = CompressedLayer.from_codes(codes, np.r_[0.0, np.ones(15)].astype(np.float32), 4, index_bits=3)
    v, z = layer.v.copy(), layer.z.copy()
    k = 3 if late else 1
    base = int(layer.ptr[:k, -1].sum())
    for j in (range(29, -1, -1) if late else range(30)):  # a slice whose last row can be pushed past 9
        e0, e1 = base + int(layer.ptr[k, j]), base + int(layer.ptr[k, j + 1])
        rows = np.cumsum(z[e0:e1].astype(np.int64) + 1) - 1
        if e1 > e0 and rows[-1] - z[e1 - 1] + 7 >= 10:
            break
    if break_at == "trailing_filler":
        v[e1 - 1], z[e1 - 1] = 0, 7
        rule = 5  # BAD_FILLER_TRAILING
    else:
        z[e1 - 1] = 7  # the PE owns 10 rows: its last row moves to 10 or beyond
        rule = 6  # BAD_ROW_RANGE
    a, b = _both(layer.ptr, v, z, 40, 4, 3)
    assert a[0] is None and a[1] == rule and a[2] == e1 - 1
    _assert_same(a, b)


def test_switch_reports_and_refuses_nothing_it_has():
    before = eie_sim.simd_decode()
    try:
        assert eie_sim.simd_decode(False) is before
        assert eie_sim.simd_decode() is False
        if before:
            assert eie_sim.simd_decode(True) is False and eie_sim.simd_decode() is True
        else:
            with pytest.raises(RuntimeError, match="SSSE3"):
                eie_sim.simd_decode(True)
    finally:
        eie_sim.simd_decode(before)
