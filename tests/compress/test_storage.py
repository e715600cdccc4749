"""Storage accounting: the weight-sharing formula, the relative-index stream, Table 2 columns."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.format import huffman
from eiesim.compress.storage import (
    BASELINE, layer_storage, network_total, relative_index_stream, sharing_compression_rate,
    storage_table,
)
from eiesim.errors import EieInputError


def test_weight_sharing_rate_paper_example():
    # Deep Compression Fig. 3 / Eq. 1: 4x4 weights, 4 clusters, 32-bit weights -> 3.2x
    assert sharing_compression_rate(16, 4, 32) == pytest.approx(3.2, abs=1e-12)
    assert sharing_compression_rate(16, 4) == pytest.approx(16 * 32 / (16 * 2 + 4 * 32))
    with pytest.raises(EieInputError):
        sharing_compression_rate(0, 4)


def test_relative_index_stream_with_fillers_hand_checked():
    # flat positions 2, 3, 22 with codes 1, 2, 3 and 4-bit indices: EIE's Fig. 2 example
    codes = np.zeros((2, 15), np.uint8)
    codes.flat[[2, 3, 22]] = [1, 2, 3]
    v, z = relative_index_stream(codes, 4)
    assert v.tolist() == [1, 2, 0, 3] and z.tolist() == [2, 0, 15, 2]
    # 3-bit indices: gap 18 -> 2 fillers (z = 7) then z = 2
    v, z = relative_index_stream(codes, 3)
    assert v.tolist() == [1, 2, 0, 0, 3] and z.tolist() == [2, 0, 7, 7, 2]
    # decode back: pos_i = pos_{i-1} + z_i + 1 from -1
    pos = np.cumsum(z.astype(int) + 1) - 1
    assert pos[v != 0].tolist() == [2, 3, 22]


def test_layer_storage_counts_every_bit():
    codes = np.zeros((2, 15), np.uint8)
    codes.flat[[2, 3, 22]] = [1, 2, 3]
    s = layer_storage(codes, code_bits=2, index_bits=4, name="toy")
    assert (s.n_weights, s.n_kept, s.n_entries, s.n_fillers, s.n_biases) == (30, 3, 4, 1, 2)
    assert s.dense_bits == (30 + 2) * 32
    assert s.weight_bits_pq == 4 * 2 and s.index_bits_pq == 4 * 4
    assert s.codebook_bits == 4 * 32 and s.bias_bits == 64
    assert s.pq_bits == 8 + 16 + 128 + 64
    assert s.rate_pq == pytest.approx(216 / 1024)
    v, z = relative_index_stream(codes, 4)
    assert s.weight_huffman_bits == huffman.encode(v, 4).n_bits
    assert s.index_huffman_bits == huffman.encode(z, 16).n_bits
    assert s.huffman_table_bits == 8 * (4 + 16) + 2 * 64
    assert s.pqh_bits == s.weight_huffman_bits + s.index_huffman_bits + s.huffman_table_bits + 128 + 64
    assert s.weight_bits_per_entry_pq == 2 and s.kept_fraction == pytest.approx(0.1)
    d = s.to_dict()
    assert d["baseline"] == BASELINE and d["unit"] == "bits"
    assert d["compression_pq"] == pytest.approx(1024 / 216)
    nb = layer_storage(codes, 2, 4, n_biases=0, huffman=False)
    assert nb.bias_bits == 0 and nb.pqh_bits is None and nb.rate_pqh is None


def test_layer_storage_rejects_wide_codes():
    with pytest.raises(EieInputError, match="codes must lie"):
        layer_storage(np.full((2, 2), 16, np.uint8), 4, 4)
    with pytest.raises(EieInputError):
        layer_storage(np.zeros((2, 2), np.uint8), 9, 4)


def test_network_total_and_table():
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, dens in (("ip1", (30, 78), 0.08), ("ip2", (10, 30), 0.3)):
        c = np.where(rng.random(shape) < dens, rng.integers(1, 64, shape), 0).astype(np.uint8)
        rows.append(layer_storage(c, 6, 5, name=name))
    tot = network_total(rows)
    assert tot.n_weights == 30 * 78 + 300 and tot.n_entries == sum(r.n_entries for r in rows)
    assert tot.pqh_bits == sum(r.pqh_bits for r in rows)
    assert tot.code_bits == 6 and tot.index_bits == 5
    md = storage_table(rows + [tot])
    assert md.startswith("| layer | #weights | weights kept % | weight bits (P+Q) |")
    assert "| total |" in md and BASELINE in md
    txt = storage_table(rows + [tot], markdown=False)
    assert "compress rate (P+Q+H)" in txt.splitlines()[0]
    with pytest.raises(EieInputError):
        network_total([])


def test_weight_counts_in_engineering_units():
    """Issue 9 §4: 4096x4096 printed '16777K'; counts use K / M / G with 3 significant digits."""
    from eiesim.compress.storage import _fmt_count

    assert [_fmt_count(n) for n in (1000, 9999, 30_000, 235_200, 999_499, 999_500, 1_051_032,
                                    4096 * 4096, 25088 * 4096, 1_234_567_890)] == \
        ["1,000", "9,999", "30K", "235K", "999K", "1M", "1.05M", "16.8M", "103M", "1.23G"]
    row = layer_storage(np.zeros((4096, 4096), np.uint8), 4, 4, name="fc", huffman=False)
    assert "| fc | 16.8M |" in storage_table([row])
