"""``CompressedLayer.from_weights`` on a dense matrix: the sort-free encode against the old path.

The dense path scans the matrix in row blocks, looks codes up by bit pattern and
orders the entries per PE with a counting sort (issue 11, "dense -> per-PE CSC
encode"). The old path -- ``np.nonzero``, a binary-search lookup (``_lookup``) and
the lexsort of ``_from_entries`` -- is still the code of the sparse and
``from_codes`` inputs; these tests hold the two to identical ``ptr``, ``v``, ``z``
and identical errors.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer
from eiesim.format import layout as L

from ..conftest import CB16


def old_from_weights(w, cb, n_pe, *, bias=None, code_bits=4, index_bits=4):
    """The dense path as it was: np.nonzero, _lookup (searchsorted), _from_entries (lexsort)."""
    cb64 = np.asarray(cb).astype(np.float32).astype(np.float64)
    rows, cols = np.nonzero(w)
    codes, bad = L._lookup(w[rows, cols], cb64)
    assert bad is None
    bias_codes = None
    if bias is not None:
        nzb = np.flatnonzero(bias != 0)
        bias_codes = np.zeros(w.shape[0], dtype=np.int64)
        bias_codes[nzb] = L._lookup(bias[nzb], cb64)[0]
    return CompressedLayer._from_entries(w.shape, rows, cols, codes, cb, n_pe, bias_codes=bias_codes,
                                         code_bits=code_bits, index_bits=index_bits, name="")


@contextlib.contextmanager
def knobs(block_bytes, max_loop):
    """Small scan blocks (many blocks per matrix) and the sort fallback of the group loop."""
    old = L._SCAN_BLOCK_BYTES, L._MAX_GROUP_LOOP
    L._SCAN_BLOCK_BYTES, L._MAX_GROUP_LOOP = block_bytes, max_loop
    try:
        yield
    finally:
        L._SCAN_BLOCK_BYTES, L._MAX_GROUP_LOOP = old


@st.composite
def dense_cases(draw):
    n_out = draw(st.integers(1, 70))
    n_in = draw(st.integers(1, 50))
    code_bits = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cb = rng.choice(np.array([-0.75, -0.5, -0.25, 0.125, 0.25, 0.5, 1.0, 3.0, 1e-30, -7.5e20], np.float32),
                    size=1 << code_bits)
    cb[0] = 0.0
    if draw(st.booleans()) and cb.size > 2:
        cb[-1] = cb[1]  # a value held twice: the lower index wins
    density = draw(st.sampled_from([0.0, 0.03, 0.2, 0.6, 1.0]))
    codes = rng.integers(1, 1 << code_bits, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    w = cb[codes]
    layout = draw(st.sampled_from(["C", "F", "slice", "float64", "negzero"]))
    if layout == "F":
        w = np.asfortranarray(w)
    elif layout == "slice":
        big = np.full((n_out, n_in + 3), 9.0, np.float32)
        big[:, 1:n_in + 1] = w
        w = big[:, 1:n_in + 1]
    elif layout == "float64":
        w = w.astype(np.float64)
    elif layout == "negzero":
        w = np.where(w == 0, np.float32(-0.0), w)  # -0.0 is pruned, as 0.0
    bias = cb[rng.integers(0, 1 << code_bits, n_out)] if draw(st.booleans()) else None
    n_pe = draw(st.integers(1, 70))
    index_bits = draw(st.integers(1, 4))
    block = draw(st.sampled_from([1, 64, 1 << 20]))
    max_loop = draw(st.sampled_from([0, 512]))
    return w, cb, bias, n_pe, code_bits, index_bits, block, max_loop


@settings(max_examples=300, deadline=None)
@given(dense_cases())
def test_dense_path_equals_old_path(case):
    w, cb, bias, n_pe, code_bits, index_bits, block, max_loop = case
    with knobs(block, max_loop):
        new = CompressedLayer.from_weights(w, cb, n_pe, bias=bias, code_bits=code_bits, index_bits=index_bits)
    old = old_from_weights(w, cb, n_pe, bias=bias, code_bits=code_bits, index_bits=index_bits)
    assert new.has_bias == old.has_bias
    assert np.array_equal(new.ptr, old.ptr)
    assert np.array_equal(new.v, old.v) and np.array_equal(new.z, old.z)
    assert np.array_equal(new.to_dense()[:, :w.shape[1]], np.asarray(w, np.float32))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_bit_lookup_equals_searchsorted(data):
    """Same codes and the same first offender as the binary search, for float32 and float64 values."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = data.draw(st.integers(0, 40))
    cb = rng.choice(np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 0.1, -0.1, 2.5, 1e-38, 3e38], np.float32),
                    size=data.draw(st.sampled_from([2, 4, 16, 256])))
    cb[0] = 0.0
    pool = np.concatenate([cb, np.array([0.3, np.nan, 1.0, -2.5], np.float32)])
    pool = pool[pool != 0]
    vals = rng.choice(pool, size=n)
    if data.draw(st.booleans()):
        vals = vals.astype(np.float64)
        if n and data.draw(st.booleans()):
            vals[rng.integers(n)] = 0.1  # float64 0.1 is no float32 value: not in the codebook
    cb64 = cb.astype(np.float64)
    want = L._lookup(vals, cb64)
    got = L._lookup_bits(vals, cb)
    assert (got[0] is None) == (want[0] is None) and got[1] == want[1]
    if want[0] is not None:
        assert np.array_equal(got[0], want[0])


def test_first_bad_weight_in_row_major_order_any_layout():
    w = np.zeros((40, 30), dtype=np.float32)
    w[7, 20] = 0.3  # not in CB16
    w[9, 1] = CB16[3]
    w[30, 0] = 0.7
    for arr in (w, np.asfortranarray(w), w.astype(np.float64)):
        with knobs(64, 512), pytest.raises(EieFormatError, match=r"weights\[7, 20\] = 0\.3"):
            CompressedLayer.from_weights(arr, CB16, 4)


def test_hand_worked_interleave():
    """8 x 3 matrix on 2 PEs with 1-bit relative indices (at most 1 zero row skipped per entry)."""
    codes = np.zeros((8, 3), dtype=np.int64)
    codes[0, 0], codes[6, 0], codes[1, 0] = 1, 2, 3  # PE0 local rows 0, 3; PE1 local row 0
    codes[4, 2] = 4                                  # PE0 local row 2 of column 2
    codes[7, 1] = 5                                  # PE1 local row 3 of column 1
    lay = CompressedLayer.from_weights(CB16[codes], CB16, 2, index_bits=1)
    # PE0: col 0 -> (1, z=0), gap 2 before local row 3: filler (0, 1) then (2, 0); col 2: gap 2 -> (0, 1) (4, 0)
    # PE1: col 0 -> (3, 0); col 1: gap 3 before local row 3 -> filler (0, 1) then (5, 1)
    assert lay.v.tolist() == [1, 0, 2, 0, 4, 3, 0, 5]
    assert lay.z.tolist() == [0, 1, 0, 1, 0, 0, 1, 1]
    assert lay.ptr.tolist() == [[0, 3, 3, 5], [0, 1, 3, 3]]


def test_lookup_falls_back_to_the_binary_search(monkeypatch):
    """No multiplier separates the codebook: ``_lookup_bits`` declines and ``_lookup`` gives the same layer."""
    rng = np.random.default_rng(11)
    codes = rng.integers(1, 16, (50, 40)) * (rng.random((50, 40)) < 0.3)
    want = old_from_weights(CB16[codes], CB16, 4)
    monkeypatch.setattr(L, "_HASH_MULT", {4: (), 8: ()})
    assert L._lookup_bits(CB16[1:3], CB16) == (None, None)
    got = CompressedLayer.from_weights(CB16[codes], CB16, 4)
    assert np.array_equal(got.v, want.v) and np.array_equal(got.z, want.z) and np.array_equal(got.ptr, want.ptr)
    with pytest.raises(EieFormatError, match=r"weights\[0, 1\] = 0\.3"):
        CompressedLayer.from_weights(np.array([[0, 0.3], [0.7, 0]], np.float32), CB16, 1)


def test_bit_lookup_with_255_distinct_values():
    """An 8-bit codebook of 255 distinct non-zero values: every code found, none confused."""
    cb = np.concatenate([[0.0], np.linspace(-3.0, 3.0, 256)[np.arange(256) != 128]]).astype(np.float32)
    assert np.unique(cb[1:]).size == 255 and not np.any(cb[1:] == 0)
    vals = cb[np.r_[1:256, 255:0:-1]]
    codes, bad = L._lookup_bits(vals, cb)
    assert bad is None and codes.tolist() == list(range(1, 256)) + list(range(255, 0, -1))
