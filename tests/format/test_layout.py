"""CompressedLayer: interleaved per-PE CSC layout (EIE Section III, Fig. 2/3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer

from ..conftest import CB16


def make_codebook(code_bits: int) -> np.ndarray:
    n = 1 << code_bits
    return np.array([0.0] + [0.5 * i * (-1) ** i for i in range(1, n)], dtype=np.float32)


# ---------------------------------------------------------------- paper Fig. 2/3
PE0_NZ = [(0, 0), (8, 0), (12, 0), (4, 1), (0, 2), (12, 2), (0, 4), (4, 4), (0, 5), (12, 5),
          (0, 6), (8, 7), (12, 7)]


def fig2_codes():
    codes = np.zeros((16, 8), dtype=np.int64)
    # PE0's non-zeros in column order, codes 1..13 cycling through 1..15
    pe0_codes = []
    for n, (r, c) in enumerate(sorted(PE0_NZ, key=lambda rc: (rc[1], rc[0]))):
        codes[r, c] = n % 15 + 1
        pe0_codes.append(n % 15 + 1)
    # other PEs: a few non-zeros each (PE3 has none in column 0)
    for r, c, k in [(1, 0, 3), (5, 0, 4), (13, 3, 5), (2, 2, 6), (14, 7, 7), (6, 6, 8), (9, 1, 9),
                    (3, 5, 10), (15, 5, 11), (7, 2, 12)]:
        codes[r, c] = k
    return codes, pe0_codes


def test_paper_fig2_pe0():
    codes, pe0_codes = fig2_codes()
    layer = CompressedLayer.from_codes(codes, CB16, 4)
    ptr0, v0, z0 = layer.pe_slice(0)
    assert z0.tolist() == [0, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0]
    assert ptr0.tolist() == [0, 3, 4, 6, 6, 8, 10, 11, 13]
    assert v0.tolist() == pe0_codes
    assert layer.n_fillers == 0
    assert layer.n_local_rows(0) == 4
    assert np.array_equal(layer.to_codes(), codes)
    assert layer.pe_offsets.tolist() == [0, 13, 17, 20, 23]
    layer.check_format(full=True)
    # PE k's local row r is global row r*N + k
    rows = layer.entry_rows()
    assert np.all(rows % 4 == layer.entry_pes())


def test_filler_in_layer():
    # one PE, column with non-zeros at rows 2, 3, 22 (the paper's column)
    codes = np.zeros((30, 2), dtype=np.int64)
    codes[[2, 3, 22], 1] = [1, 2, 3]
    layer = CompressedLayer.from_codes(codes, CB16, 1)
    assert layer.v.tolist() == [1, 2, 0, 3]
    assert layer.z.tolist() == [2, 0, 15, 2]
    assert layer.ptr.tolist() == [[0, 0, 4]]
    assert (layer.n_entries, layer.n_fillers, layer.n_nonzeros) == (4, 1, 3)
    assert layer.entry_rows().tolist() == [2, 3, 19, 22]
    assert layer.entry_cols().tolist() == [1, 1, 1, 1]
    layer.check_format(full=True)


@pytest.mark.parametrize("gap, n_fill, z_real", [(15, 0, 15), (16, 1, 0), (32, 2, 0), (40, 2, 8)])
def test_gaps_in_layer(gap, n_fill, z_real):
    codes = np.zeros((50, 1), dtype=np.int64)
    codes[gap, 0] = 3
    layer = CompressedLayer.from_codes(codes, CB16, 1)
    assert layer.n_fillers == n_fill
    assert layer.z[-1] == z_real
    assert layer.v.tolist() == [0] * n_fill + [3]
    assert np.array_equal(layer.to_codes(), codes)


# ---------------------------------------------------------------- edge shapes
def test_empty_pe_and_empty_columns():
    # N > n_out: PEs 5..7 own no rows; PE 1 owns rows but has no non-zeros
    codes = np.zeros((5, 4), dtype=np.int64)
    codes[0, 0] = 1
    codes[2, 0] = 2
    codes[4, 3] = 3
    codes[3, 3] = 4
    layer = CompressedLayer.from_codes(codes, CB16, 8)
    assert [layer.n_local_rows(k) for k in range(8)] == [1, 1, 1, 1, 1, 0, 0, 0]
    assert layer.ptr[1].tolist() == [0, 0, 0, 0, 0]
    for k in range(5, 8):
        ptr_k, v_k, z_k = layer.pe_slice(k)
        assert ptr_k.tolist() == [0] * 5 and v_k.size == 0 and z_k.size == 0
    assert layer.ptr[:, 2].tolist() == [1, 0, 1, 0, 0, 0, 0, 0]  # columns 1, 2 empty
    assert np.array_equal(layer.to_codes(), codes)
    layer.check_format(full=True)


def test_all_zero_matrix():
    layer = CompressedLayer.from_codes(np.zeros((3, 2), dtype=np.uint8), CB16, 2)
    assert layer.n_entries == 0 and layer.weight_density == 0.0
    assert layer.ptr.shape == (2, 3)
    assert layer.to_scipy().nnz == 0
    layer.check_format(full=True)


@pytest.mark.parametrize("n_pe", [1, 5])
def test_uneven_shape(n_pe):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 16, (37, 23)) * (rng.random((37, 23)) < 0.3)
    bias = rng.integers(0, 16, 37)
    layer = CompressedLayer.from_codes(codes, CB16, n_pe, bias_codes=bias, name="t")
    assert layer.shape == (37, 23) and layer.n_cols == 24 and layer.has_bias
    assert layer.ptr.shape == (n_pe, 25)
    assert [layer.n_local_rows(k) for k in range(n_pe)] == [len(range(k, 37, n_pe)) for k in range(n_pe)]
    full = layer.to_codes()
    assert np.array_equal(full[:, :23], codes) and np.array_equal(full[:, 23], bias)
    assert np.array_equal(layer.bias_values(), CB16[bias])
    assert np.array_equal(layer.to_dense(), CB16[codes])
    assert layer.weight_density == np.count_nonzero(codes) / codes.size
    assert layer.n_nonzeros == np.count_nonzero(codes) + np.count_nonzero(bias)
    layer.check_format(full=True)
    assert "CompressedLayer('t', shape=(37, 23)" in repr(layer)


def test_sparse_input_and_weights():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 16, (20, 30)) * (rng.random((20, 30)) < 0.2)
    a = CompressedLayer.from_codes(sp.csr_matrix(codes), CB16, 3)
    b = CompressedLayer.from_codes(sp.coo_array(codes.astype(np.float64)), CB16, 3)
    w = CB16[codes]
    c = CompressedLayer.from_weights(w, CB16, 3)
    d = CompressedLayer.from_weights(sp.csc_array(w.astype(np.float64)), CB16, 3)
    for lay in (a, b, c, d):
        assert np.array_equal(lay.to_codes(), codes)
        assert np.array_equal(lay.v, a.v) and np.array_equal(lay.ptr, a.ptr)
    e = CompressedLayer.from_weights(w, CB16, 3, bias=CB16[rng.integers(0, 16, 20)])
    assert e.has_bias and np.array_equal(e.to_dense(), w)


def test_from_weights_errors():
    w = np.zeros((4, 5), dtype=np.float32)
    w[1, 2] = 0.3
    w[3, 0] = 0.7
    with pytest.raises(EieFormatError, match=r"weights\[1, 2\]"):
        CompressedLayer.from_weights(w, CB16, 2)
    w[1, 2] = np.nan
    with pytest.raises(EieFormatError, match=r"weights\[1, 2\]"):
        CompressedLayer.from_weights(w, CB16, 2)
    with pytest.raises(EieFormatError, match=r"bias\[2\]"):
        CompressedLayer.from_weights(np.zeros((4, 5)), CB16, 2, bias=[0, CB16[2], 0.01, 0])
    # -0.0 weights are pruned
    w = np.full((2, 2), -0.0)
    assert CompressedLayer.from_weights(w, CB16, 1).n_entries == 0


def test_from_codes_errors():
    with pytest.raises(EieFormatError, match=r"codes\[1, 0\] = 16"):
        CompressedLayer.from_codes([[0, 0], [16, 0]], CB16, 1)
    with pytest.raises(EieFormatError, match=r"codes\[0, 1\] = -1"):
        CompressedLayer.from_codes([[0, -1], [0, 0]], CB16, 1)
    with pytest.raises(EieFormatError, match="not an integer code"):
        CompressedLayer.from_codes([[0, 1.5]], CB16, 1)
    with pytest.raises(EieFormatError, match="2-D"):
        CompressedLayer.from_codes([1, 2], CB16, 1)
    with pytest.raises(EieFormatError, match="bias_codes"):
        CompressedLayer.from_codes([[1, 2]], CB16, 1, bias_codes=[1, 2])
    with pytest.raises(EieFormatError, match=r"bias_codes\[0\]"):
        CompressedLayer.from_codes([[1, 2]], CB16, 1, bias_codes=[20])
    with pytest.raises(EieFormatError, match="codebook"):
        CompressedLayer.from_codes([[1, 2]], CB16[:8], 1)
    with pytest.raises(EieFormatError, match="n_pe"):
        CompressedLayer.from_codes([[1, 2]], CB16, 0)
    dup = sp.coo_array(([1, 2], ([0, 0], [1, 1])), shape=(2, 2))
    with pytest.raises(EieFormatError, match="duplicate"):
        CompressedLayer.from_codes(dup, CB16, 1)


# ---------------------------------------------------------------- check_format
@pytest.fixture
def small():
    codes = np.zeros((40, 3), dtype=np.int64)
    # PE0 column 0: local rows 0, 10, 19 -> with index_bits=3 each gap (9, 8) needs one filler:
    # entries (v, z) = (1,0) (0,7) (2,1) (0,7) (3,0)
    codes[[0, 20, 38], 0] = [1, 2, 3]
    codes[[5, 7], 2] = [4, 5]  # PE1 column 2: local rows 2, 3
    return CompressedLayer.from_codes(codes, CB16, 2, index_bits=3)


def test_small_fixture_is_valid(small):
    small.check_format(full=True)
    assert small.n_fillers >= 1


def _replace(layer, **kw):
    return dataclasses.replace(layer, **kw)


def test_cheap_ptr_not_starting_at_zero(small):
    ptr = small.ptr.copy()
    ptr[1] += 1
    with pytest.raises(EieFormatError, match=r"PE 1: first pointer p\[0\] = 1") as ei:
        _replace(small, ptr=ptr)
    assert ei.value.code == "PTR-START-NONZERO"


def test_cheap_codebook_negative_zero(small):
    cb = small.codebook.copy()
    cb[0] = -0.0
    with pytest.raises(EieFormatError, match=r"codebook\[0\]"):
        _replace(small, codebook=cb)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(codebook=np.r_[0.0, np.inf, np.ones(14)]), r"codebook\[1\]"),
        (dict(codebook=np.zeros(8)), "16 needs|needs 16"),
        (dict(ptr=np.zeros((2, 3), dtype=np.int64)), "pointer array has 3 values, 4 declared"),
        (dict(v=np.zeros(1, dtype=np.uint8)), "v and z hold 1 and 7 entries"),
        (dict(v=np.array([-1] + [1] * 6)), r"v\[0\] = -1"),
        (dict(z=np.array([300] + [1] * 6)), r"z\[0\] = 300"),
        (dict(v=np.ones(7, dtype=np.float32)), "integer"),
        (dict(ptr=np.array([[0, 1, 2, 2], [0, 0, 0, 2 ** 64 - 1]], dtype=np.uint64)), "does not fit"),
        (dict(shape=(0, 3)), "n_out"),
        (dict(has_bias=1), "has_bias"),
    ],
)
def test_cheap_failures(small, kw, msg):
    with pytest.raises(EieFormatError, match=msg):
        _replace(small, **kw)


def test_decreasing_ptr_refused_by_the_cheap_check(small):
    # issue 10 F1: every later method (entry_cols, to_dense, ...) relies on monotonic pointers,
    # so the cheap check on construction refuses them (before: accepted, then a numpy traceback)
    ptr = small.ptr.copy()
    assert ptr[0].tolist() == [0, 5, 5, 5]
    ptr[0] = [0, 5, 2, 5]
    with pytest.raises(EieFormatError, match=r"PE 0: pointer decreases at column 1 \(p\[1\] = 5 -> p\[2\] = 2\)") as ei:
        _replace(small, ptr=ptr)
    assert ei.value.code == "PTR-DECREASING"


def test_full_z_out_of_range(small):
    z = small.z.copy()
    z[0] = 8  # index_bits = 3
    with pytest.raises(EieFormatError, match=r"PE 0, column 0, entry 0: relative index z = 8 > 7") as ei:
        _replace(small, z=z).check_format(full=True)
    assert ei.value.code == "RELIDX-Z-RANGE"


def test_full_v_out_of_range():
    lay = CompressedLayer.from_codes([[1, 2]], CB16[:4], 1, code_bits=2)
    with pytest.raises(EieFormatError, match=r"PE 0, column 1, entry 1: code v = 4 > 3") as ei:
        _replace(lay, v=np.array([1, 4], dtype=np.uint8)).check_format(full=True)
    assert ei.value.code == "CODE-RANGE"


def test_full_trailing_filler(small):
    # append a filler to PE 1's column 2
    k = 1
    off = small.pe_offsets
    end = off[k + 1]
    v = np.insert(small.v, end, 0)
    z = np.insert(small.z, end, 7)
    ptr = small.ptr.copy()
    ptr[k, -1] += 1
    bad = _replace(small, v=v, z=z, ptr=ptr)
    with pytest.raises(EieFormatError, match=r"PE 1, column 2, entry 2: the column segment ends with a filler") as ei:
        bad.check_format(full=True)
    assert ei.value.code == "FILLER-TRAILING"
    bad.check_format()  # a warning of the validator: only the simulator's full check refuses it
    assert bad.to_codes().sum() == small.to_codes().sum()  # and it still decodes


def test_full_filler_with_small_z(small):
    v, z = small.v.copy(), small.z.copy()
    i = int(np.flatnonzero(v == 0)[0])
    z[i] = 2
    with pytest.raises(EieFormatError, match=r"code 0 with z = 2; a filler must be \(0, 7\)") as ei:
        _replace(small, z=z).check_format(full=True)
    assert ei.value.code == "RELIDX-FILLER-NONCANONICAL"


def test_full_row_outside_pe(small):
    z = small.z.copy()
    assert small.v[:5].tolist() == [1, 0, 2, 0, 3] and small.z[:5].tolist() == [0, 7, 1, 7, 0]
    z[4] = 7  # PE0's last entry: local row 18 + 7 + 1 = 26 >= 20 rows
    with pytest.raises(EieFormatError, match="owns only 20 rows"):
        _replace(small, z=z).check_format(full=True)


def test_pe_slice_bounds(small):
    with pytest.raises(EieFormatError, match="k"):
        small.pe_slice(2)


def test_arrays_are_coerced(small):
    lay = CompressedLayer(
        shape=[40, 3], n_pe=np.int32(2), codebook=small.codebook.astype(np.float64),
        ptr=small.ptr.astype(np.uint32), v=small.v.astype(np.int64), z=small.z.tolist(),
        index_bits=3,
    )
    assert lay.shape == (40, 3) and isinstance(lay.n_pe, int)
    assert lay.ptr.dtype == np.int64 and lay.v.dtype == np.uint8 and lay.z.dtype == np.uint8
    assert lay.codebook.dtype == np.float32 and lay.ptr.flags.c_contiguous
    assert np.array_equal(lay.to_codes(), small.to_codes())


# ---------------------------------------------------------------- properties
@st.composite
def layers(draw):
    n_out = draw(st.integers(1, 60))
    n_in = draw(st.integers(1, 60))
    density = draw(st.floats(0.0, 1.0))
    n_pe = draw(st.integers(1, 70))
    index_bits = draw(st.integers(1, 4))
    code_bits = draw(st.integers(1, 4))
    with_bias = draw(st.booleans())
    sparse_in = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 1 << code_bits, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    bias = None
    if with_bias:
        bias = rng.integers(1, 1 << code_bits, n_out) * (rng.random(n_out) < density)
    return codes, bias, n_pe, index_bits, code_bits, sparse_in


@settings(max_examples=150, deadline=None)
@given(layers())
def test_roundtrip_property(case):
    codes, bias, n_pe, index_bits, code_bits, sparse_in = case
    cb = make_codebook(code_bits)
    src = sp.csc_array(codes) if sparse_in else codes
    lay = CompressedLayer.from_codes(src, cb, n_pe, bias_codes=bias, code_bits=code_bits,
                                     index_bits=index_bits)
    lay.check_format(full=True)
    n_out, n_in = codes.shape
    assert lay.ptr.shape == (n_pe, n_in + (bias is not None) + 1)
    full = lay.to_codes()
    assert np.array_equal(full[:, :n_in], codes)
    if bias is not None:
        assert np.array_equal(full[:, n_in], bias)
        assert np.array_equal(lay.bias_values(), cb[bias])
    else:
        assert lay.bias_values() is None
    w = cb[codes]
    assert lay.to_dense().dtype == np.float32 and np.array_equal(lay.to_dense(), w)
    s = lay.to_scipy()
    assert s.format == "csc" and s.dtype == np.float32 and s.shape == codes.shape
    assert s.nnz == np.count_nonzero(codes)
    assert np.array_equal(s.toarray(), w)
    assert lay.to_scipy("csr").format == "csr"
    assert lay.n_nonzeros == np.count_nonzero(codes) + (0 if bias is None else np.count_nonzero(bias))
    assert lay.weight_density == np.count_nonzero(codes) / codes.size
    # fillers are canonical: recount from the decoded gaps
    rows = lay.entry_rows()
    assert np.all(rows < n_out) and np.all(rows % n_pe == lay.entry_pes())
    assert lay.pe_offsets[-1] == lay.n_entries
    # from_weights gives the same layout
    lay2 = CompressedLayer.from_weights(w, cb, n_pe, bias=None if bias is None else cb[bias],
                                        code_bits=code_bits, index_bits=index_bits)
    assert np.array_equal(lay2.v, lay.v) and np.array_equal(lay2.z, lay.z)
    assert np.array_equal(lay2.ptr, lay.ptr)


def test_dimensions_and_pe_count_are_bounded_by_the_containers_limit(tmp_path):
    """A layer of more than 2**28 rows (one entry, built from a sparse matrix) was accepted, then
    ``simulate`` raised a raw MemoryError and ``save_network`` wrote a file ``load_network`` refused
    (fresh-user findings 3 and 4). The container's limit, MAX_DIM, now holds at construction."""
    from eiesim.format.container import load_network, save_network
    from eiesim.format.layout import MAX_DIM
    from eiesim.format.network import Network

    one = lambda shape: sp.coo_matrix(([3], ([0], [0])), shape=shape)  # noqa: E731
    for shape in ((2**40, 2), (MAX_DIM + 1, 2)):
        with pytest.raises(EieFormatError, match=r"shape\[0\] \(n_out\): \d+ is outside \[1, 268435456\]") as e:
            CompressedLayer.from_codes(one(shape), CB16, 4)
        assert e.value.code == "ARGUMENT"
    edge = CompressedLayer.from_codes(one((MAX_DIM, 2)), CB16, 4, name="edge")
    with pytest.raises(EieFormatError, match=r"shape\[1\] \(n_in\)"):
        CompressedLayer(shape=(4, MAX_DIM + 1), n_pe=4, codebook=CB16, ptr=np.zeros((4, 2), np.int64),
                        v=np.zeros(0, np.uint8), z=np.zeros(0, np.uint8))
    with pytest.raises(EieFormatError, match=r"n_pe: \d+ is outside \[1, 268435456\]"):
        CompressedLayer(shape=(4, 1), n_pe=MAX_DIM + 1, codebook=CB16, ptr=np.zeros((1, 2), np.int64),
                        v=np.zeros(0, np.uint8), z=np.zeros(0, np.uint8))
    # the largest layer that can be built saves and reads back
    save_network(tmp_path / "edge.eie", Network([edge]))
    back = load_network(tmp_path / "edge.eie").layers[0]
    assert back.shape == (MAX_DIM, 2)
    np.testing.assert_array_equal(back.ptr, edge.ptr)
    np.testing.assert_array_equal(back.v, edge.v)
    np.testing.assert_array_equal(back.z, edge.z)
