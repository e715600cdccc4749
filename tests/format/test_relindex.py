"""Relative-index encoding with the EIE filler rule (EIE Section III)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.errors import EieFormatError
from eiesim.format.relindex import (
    decode_column,
    decode_segments,
    encode_column,
    encode_segments,
    filler_mask,
    segment_ids,
)


def test_paper_column_example():
    # EIE Section III: non-zeros at rows 2, 3, 22 -> v = 1 2 0 3, z = 2 0 15 2
    v, z = encode_column([2, 3, 22], [1, 2, 3])
    assert v.dtype == np.uint8 and z.dtype == np.uint8
    assert v.tolist() == [1, 2, 0, 3]
    assert z.tolist() == [2, 0, 15, 2]
    assert decode_column(v, z).tolist() == [2, 3, 19, 22]  # filler sits at row 3 + 15 + 1
    assert filler_mask(v).tolist() == [False, False, True, False]


@pytest.mark.parametrize(
    "gap, n_fill, z_real",
    [(0, 0, 0), (15, 0, 15), (16, 1, 0), (17, 1, 1), (31, 1, 15), (32, 2, 0), (40, 2, 8)],
)
def test_gap_filler_rule(gap, n_fill, z_real):
    # first non-zero at row `gap` (gap counted from row -1)
    v, z = encode_column([gap], [7])
    assert v.tolist() == [0] * n_fill + [7]
    assert z.tolist() == [15] * n_fill + [z_real]
    assert decode_column(v, z)[-1] == gap


def test_gap_between_entries():
    v, z = encode_column([0, 41], [1, 2])  # gap 40 after row 0
    assert v.tolist() == [1, 0, 0, 2]
    assert z.tolist() == [0, 15, 15, 8]


def test_small_index_bits():
    # 2-bit z: gap 9 -> 2 fillers (z=3), real z = 1
    v, z = encode_column([9], [1], index_bits=2)
    assert v.tolist() == [0, 0, 1]
    assert z.tolist() == [3, 3, 1]


def test_encode_segments_counts_and_empty_segments():
    seg = [0, 0, 2, 2, 4]
    pos = [2, 3, 0, 22, 16]
    codes = [1, 2, 3, 4, 5]
    v, z, counts = encode_segments(seg, pos, codes, 6)
    assert counts.dtype == np.int64
    assert counts.tolist() == [2, 0, 3, 0, 2, 0]
    assert v.tolist() == [1, 2, 3, 0, 4, 0, 5]
    assert z.tolist() == [2, 0, 0, 15, 5, 15, 0]
    pos_dec = decode_segments(v, z, counts)
    assert pos_dec.tolist() == [2, 3, 0, 16, 22, 15, 16]
    assert segment_ids(counts).tolist() == [0, 0, 2, 2, 2, 4, 4]


def test_empty_input():
    v, z, counts = encode_segments([], [], [], 3)
    assert v.size == z.size == 0 and counts.tolist() == [0, 0, 0]
    assert decode_segments(v, z, counts).size == 0
    v, z = encode_column([], [])
    assert v.size == 0


@pytest.mark.parametrize(
    "seg, pos, codes, n_seg, msg",
    [
        ([0], [1], [0], 1, "reserved for fillers"),
        ([0], [1], [256], 1, "> 255"),
        ([0, 0], [3, 3], [1, 1], 1, "increase strictly"),
        ([0, 0], [3, 1], [1, 1], 1, "increase strictly"),
        ([1, 0], [0, 0], [1, 1], 2, "decreases"),
        ([2], [0], [1], 2, "outside"),
        ([0], [-1], [1], 1, "negative"),
        ([0, 0], [1], [1, 1], 1, "lengths differ"),
    ],
)
def test_encode_errors(seg, pos, codes, n_seg, msg):
    with pytest.raises(EieFormatError, match=msg):
        encode_segments(seg, pos, codes, n_seg)


def test_bad_index_bits_and_decode_errors():
    with pytest.raises(EieFormatError, match="index_bits"):
        encode_column([1], [1], index_bits=0)
    with pytest.raises(EieFormatError, match="index_bits"):
        encode_column([1], [1], index_bits=9)
    with pytest.raises(EieFormatError, match="sum"):
        decode_segments([1, 2], [0, 0], [1])
    with pytest.raises(EieFormatError, match="negative"):
        decode_segments([1, 2], [0, 0], [3, -1])
    with pytest.raises(EieFormatError, match="integer"):
        encode_column([1.5], [1])


@st.composite
def segments(draw):
    n_seg = draw(st.integers(1, 20))
    index_bits = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 12, n_seg)
    seg, pos = [], []
    for s, n in enumerate(sizes):  # test-data generation only
        p = np.sort(rng.choice(300, size=n, replace=False))
        seg.append(np.full(n, s))
        pos.append(p)
    seg = np.concatenate(seg).astype(np.int64)
    pos = np.concatenate(pos).astype(np.int64)
    codes = rng.integers(1, 256, seg.size)
    return seg, pos, codes, n_seg, index_bits


@settings(max_examples=150, deadline=None)
@given(segments())
def test_decode_encode_roundtrip(args):
    seg, pos, codes, n_seg, index_bits = args
    v, z, counts = encode_segments(seg, pos, codes, n_seg, index_bits)
    zmax = (1 << index_bits) - 1
    assert counts.sum() == v.size == z.size
    assert int(z.max(initial=0)) <= zmax
    fill = filler_mask(v)
    assert np.all(z[fill] == zmax)
    # real entries come back in order with their positions and codes
    dec = decode_segments(v, z, counts)
    assert np.array_equal(dec[~fill], pos)
    assert np.array_equal(v[~fill], codes)
    assert np.array_equal(segment_ids(counts)[~fill], seg)
    # canonical filler count: gap // 2**index_bits per non-zero
    prev = np.where(np.r_[True, seg[1:] != seg[:-1]], -1, np.r_[-1, pos[:-1]])
    gaps = pos - prev - 1
    assert fill.sum() == int((gaps >> index_bits).sum())
    assert np.array_equal(counts, np.bincount(seg, weights=(gaps >> index_bits) + 1, minlength=n_seg).astype(np.int64))
