"""Per-PE and column-slice balance read from the layout (eiesim.format.balance) and its INFO-BALANCE report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.cli import main
from eiesim.compress.pipeline import compress_arrays
from eiesim.errors import EieFormatError
from eiesim.format.balance import INFO_CODES, csc_balance, layer_balance
from eiesim.format.eiedump import read_dump
from eiesim.format.layout import CompressedLayer
from eiesim.format.validate import RULES, validate_dump, validate_layer

CB = np.array([0.0, 0.5, -0.5, 1.0], dtype=np.float32)


def hand_layer() -> CompressedLayer:
    """8 x 3 + bias over N = 2 (PE0: rows 0, 2, 4, 6; PE1: rows 1, 3, 5, 7), 1-bit relative indices.

    column 0: rows 0, 1, 2  -> PE0 2, PE1 1
    column 1: rows 0, 2     -> PE0 2, PE1 0
    column 2: row 7         -> PE0 0, PE1 1 (local row 3: a gap of 3 >= 2**1 needs floor(3/2) = 1 filler)
    bias: every row (8 non-zeros, not counted)
    """
    codes = np.zeros((8, 3), dtype=np.uint8)
    codes[[0, 1, 2], 0] = [1, 2, 3]
    codes[[0, 2], 1] = [1, 1]
    codes[7, 2] = 2
    return CompressedLayer.from_codes(codes, CB, 2, bias_codes=np.full(8, 3), code_bits=2, index_bits=1,
                                      name="hand")


def test_hand_worked_layout():
    lay = hand_layer()
    assert lay.n_fillers == 1  # the gap of 3 local rows in PE1, column 2
    b = layer_balance(lay)
    assert b.nonzeros_per_pe.tolist() == [4, 2] and b.nonzeros == 6  # bias column excluded
    assert b.entries_per_pe.tolist() == [4, 3]  # PE1: 2 non-zeros + 1 filler
    assert b.pe_balance == pytest.approx(4 / 3)  # max 4 / mean 3
    assert b.entries_balance == pytest.approx(8 / 7)  # max 4 / mean 3.5
    assert b.slice_max_sum == 2 + 2 + 1
    assert b.slice_balance == pytest.approx(2 * 5 / 6)
    assert b.slice_floor_sum == 2 + 1 + 1  # ceil(3/2) + ceil(2/2) + ceil(1/2)
    assert b.slice_balance_floor == pytest.approx(2 * 4 / 6)
    d = b.to_dict()
    assert d["pe_max"] == 4 and d["pe_mean"] == 3.0 and d["columns"] == 3 and d["n_pe"] == 2
    assert "PE balance max/mean 1.333" in b.message() and "column-slice balance 1.667" in b.message()


def test_a_code_decoding_to_zero_is_not_a_nonzero():
    # one PE, one column: codes 1, 2, 0 (filler); codebook[2] == 0.0 (ENTRY-DECODES-TO-ZERO)
    ptr = np.array([[0, 3]])
    v = np.array([1, 2, 0])
    assert csc_balance(ptr, v, n_in=1).nonzeros == 2
    b = csc_balance(ptr, v, n_in=1, codebook=np.array([0.0, 1.0, 0.0, 2.0], np.float32))
    assert b.nonzeros == 1 and b.entries_per_pe.tolist() == [3]


def test_empty_layer_has_no_ratio():
    b = csc_balance(np.zeros((4, 3), np.int64), np.zeros(0, np.uint8), n_in=2)
    assert b.pe_balance is None and b.slice_balance is None and b.entries_balance is None
    assert "undefined" in b.message()


@pytest.mark.parametrize("ptr, v, n_in", [
    (np.zeros(3, np.int64), np.zeros(0), 2),  # 1-D
    (np.zeros((2, 2), np.int64), np.zeros(0), 2),  # too few pointers
    (np.array([[0, 2, 1]]), np.zeros(2), 2),  # decreasing
    (np.array([[0, 1, 2]]), np.zeros(3), 2),  # v longer than addressed
    (np.array([[1, 1, 2]]), np.zeros(2), 2),  # p[0] != 0
])
def test_not_a_layout_is_an_argument_error(ptr, v, n_in):
    with pytest.raises(EieFormatError) as exc:
        csc_balance(ptr, v, n_in=n_in)
    assert exc.value.code == "ARGUMENT"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 30), st.integers(1, 9), st.floats(0.0, 1.0), st.integers(0, 2**31))
def test_matches_the_dense_count(n_out, n_in, n_pe, density, seed):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 4, (n_out, n_in)), 0)
    lay = CompressedLayer.from_codes(codes, CB, n_pe, code_bits=2, index_bits=2)
    b = layer_balance(lay)
    # n_kj from the dense matrix: rows k, k + N, ... of column j
    C = np.array([[np.count_nonzero(codes[k::n_pe, j]) for j in range(n_in)] for k in range(n_pe)]).reshape(
        n_pe, n_in)
    assert b.nonzeros_per_pe.tolist() == C.sum(axis=1).tolist()
    assert b.slice_max_sum == int(C.max(axis=0).sum())
    assert b.slice_floor_sum == int(np.ceil(C.sum(axis=0) / n_pe).sum())
    assert int(b.entries_per_pe.sum()) == lay.n_entries
    if b.nonzeros:
        # a sum of maxima is at least the maximum of sums; nothing beats the floor
        assert 1.0 <= b.pe_balance <= b.slice_balance + 1e-12
        assert b.slice_balance_floor <= b.slice_balance + 1e-12


@pytest.mark.parametrize("n_pe", [8, 16])
def test_balanced_pruning_reaches_the_floor(n_pe):
    rng = np.random.default_rng(5)
    # rows of very different scale: plain magnitude pruning crowds the kept weights into few PEs
    w = (rng.standard_normal((96, 120)) * rng.uniform(0.1, 3.0, (96, 1))).astype(np.float32)
    got = {}
    for mode in ("none", "balanced-pe", "balanced-column"):
        res = compress_arrays([w], [None], ["fc"], densities=0.1, n_pe=n_pe, huffman=False, balance=mode)
        got[mode] = layer_balance(res.layers[0])
        assert got[mode].nonzeros == round(0.1 * w.size)
    nnz = got["none"].nonzeros
    # balanced-pe: every PE keeps nnz / N (+-1), so the busiest holds ceil(nnz / N)
    assert int(got["balanced-pe"].nonzeros_per_pe.max()) == -(-nnz // n_pe)
    assert got["balanced-pe"].pe_balance == pytest.approx(n_pe * -(-nnz // n_pe) / nnz)
    assert got["balanced-pe"].pe_balance < 1.01 < got["none"].pe_balance
    # balanced-column: every slice holds c_j / N (+-1): the column-slice balance is its floor
    bc = got["balanced-column"]
    assert bc.slice_max_sum == bc.slice_floor_sum
    assert bc.slice_balance == bc.slice_balance_floor < got["none"].slice_balance
    # the column totals are plain magnitude's, so both share the floor
    assert bc.slice_floor_sum == got["none"].slice_floor_sum


# ------------------------------------------------------------------ the validator's informational report
def test_validator_reports_info_without_changing_findings():
    rep = validate_layer(hand_layer())
    assert rep.findings == [] and rep.conformant(strict=True)
    assert [f.code for f in rep.info] == ["INFO-BALANCE"]
    f = rep.info[0]
    assert f.severity == "info" and f.layer == 0 and f.layer_name == "hand"
    assert f.data["nonzeros_per_pe"] == [4, 2] and f.data["slice_max_sum"] == 5
    d = rep.to_dict()
    assert d["counts"] == {"errors": 0, "warnings": 0} and d["findings"] == []
    assert d["info"][0]["data"]["pe_balance"] == pytest.approx(4 / 3)
    assert "INFO-BALANCE" not in RULES and "INFO-BALANCE" in INFO_CODES
    docs = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text()
    for code, text in INFO_CODES.items():
        assert f"| `{code}` | {text} |" in docs
    # cheap checks: no report (the entries were not checked)
    assert validate_layer(hand_layer(), level="cheap").info == []


def test_no_balance_for_a_broken_layer():
    lay = hand_layer()
    ptr = lay.ptr.copy()
    ptr[1, 2], ptr[1, 3] = ptr[1, 3], ptr[1, 2]  # PTR-DECREASING in PE 1
    from eiesim.format.validate import validate_arrays

    rep = validate_arrays(lay.shape, 2, CB, ptr, lay.v, lay.z, has_bias=True, code_bits=2, index_bits=1)
    assert "PTR-DECREASING" in rep.codes() and rep.info == []


def test_fc8_dump(fc8_dir, tmp_path, capsys):
    rep = validate_dump(fc8_dir)
    assert rep.conformant() and [f.code for f in rep.info] == ["INFO-BALANCE"]
    d = rep.info[0].data
    # independent count from the dense code matrix (1000 x 4096, bias column dropped)
    codes = read_dump(fc8_dir).layer.to_codes()[:, :4096]
    C = np.stack([np.count_nonzero(codes[k::64], axis=0) for k in range(64)])
    assert d["nonzeros"] == int(C.sum()) == 1_051_032  # 1,051,991 entries, no filler, 959 in the bias column
    assert d["pe_max"] == int(C.sum(axis=1).max()) == 18_063
    assert d["slice_max_sum"] == int(C.max(axis=0).sum()) == 33_803
    assert d["slice_floor_sum"] == 18_515
    assert d["pe_balance"] == pytest.approx(64 * 18_063 / 1_051_032)  # 1.0999: load-balance bound 90.9 %
    assert d["slice_balance"] == pytest.approx(64 * 33_803 / 1_051_032)  # 2.058


def test_validate_command_prints_and_writes_it(tmp_path, capsys):
    trace = Path(__file__).resolve().parents[2] / "traces" / "lenet300100.eie"
    out_json = tmp_path / "v.json"
    assert main(["validate", str(trace), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert out.count("info INFO-BALANCE") == 3 and "conformant: 0 error(s), 0 warning(s)" in out
    assert "info INFO-BALANCE [layer 0 'ip1']: PE balance max/mean 1.551" in out
    doc = json.loads(out_json.read_text())
    assert doc["counts"] == {"errors": 0, "warnings": 0} and doc["conformant_strict"]
    ip1 = doc["info"][0]["data"]
    assert ip1["n_pe"] == 64 and ip1["nonzeros"] == round(0.08 * 300 * 784) == sum(ip1["nonzeros_per_pe"])
    # --quiet prints the verdict only
    assert main(["validate", str(trace), "--quiet"]) == 0
    assert "INFO-BALANCE" not in capsys.readouterr().out
