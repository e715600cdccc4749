"""The kernel's per-layer pass on layers wider than one decode block (64 columns) and
dense in fillers: its tables equal a NumPy construction from the layer's decoded entries."""

import numpy as np
import pytest

from eiesim.format.layout import CompressedLayer

eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")


@pytest.mark.parametrize("n_pe, n_out, n_in, density, index_bits, seed", [
    (3, 40, 200, 0.05, 1, 0),    # ~1 filler per real entry, 4 blocks of columns
    (4, 64, 130, 0.30, 2, 1),    # 130 columns: a partial last block
    (1, 300, 70, 0.02, 2, 2),    # one PE, long gaps: runs of fillers
])
def test_tables_match_numpy_construction(n_pe, n_out, n_in, density, index_bits, seed):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 16, (n_out, n_in)), 0).astype(np.uint8)
    codebook = np.r_[0.0, np.linspace(0.1, 1.5, 15)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, codebook, n_pe, code_bits=4, index_bits=index_bits)
    assert layer.n_fillers > 0
    t, bad, _ = eie_sim.build_tables(ptr=layer.ptr, v=layer.v, z=layer.z, n_out=n_out, code_bits=4,
                                     index_bits=index_bits)
    assert bad == 0
    np.testing.assert_array_equal(t.ptr_t, layer.ptr.T)
    rows, cols = np.nonzero(codes)
    # column-major, PE 0 first, then down the PE's local rows
    order = np.lexsort((rows // n_pe, rows % n_pe, cols))
    rows, cols = rows[order], cols[order]
    np.testing.assert_array_equal(t.macs, (rows.astype(np.uint64) << 4) | codes[rows, cols])
    per_col = np.bincount(cols, minlength=n_in)
    np.testing.assert_array_equal(t.mac_start, np.r_[0, np.cumsum(per_col)])
    entries = (layer.ptr[:, 1:] - layer.ptr[:, :-1]).sum(axis=0)
    np.testing.assert_array_equal(t.col_fillers, entries - per_col)
    assert t.col_fillers.sum() == layer.n_fillers
    # last_row: the largest local row of PE k in column j (-2: empty slice)
    last = np.full((n_in, n_pe), -2)
    np.maximum.at(last, (cols, rows % n_pe), rows // n_pe)
    np.testing.assert_array_equal(t.last_row, last)
