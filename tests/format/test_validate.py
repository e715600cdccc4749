"""Validator rules on per-PE CSC layouts (raw arrays, CompressedLayer, dump directories).

Every rule gets a minimal input that breaks that rule and only that rule
(the report's set of codes is exactly ``{code}``), next to a correct twin
that passes.
"""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer, write_dump
from eiesim.format.relindex import encode_segments
from eiesim.format.validate import (
    FATAL_CODES,
    RULES,
    ValidationReport,
    validate,
    validate_arrays,
    validate_dump,
    validate_layer,
)

from ..conftest import CB16

# ---------------------------------------------------------------- the base layer
# 12 x 4, N = 2 PEs (6 local rows each), 2-bit codes, 2-bit relative indices (filler z = 3).
# PE0: col0 rows 0,4(filler),5 | col1 row 2 | col2 - | col3 rows 1,3
# PE1: col0 row 1 | col1 rows 0,4(filler),5 | col2 row 2 | col3 -
CB = np.array([0.0, 0.5, -0.25, 1.0], dtype=np.float32)


def base_codes() -> np.ndarray:
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0] = 1, 2, 3
    c[1, 1], c[11, 1], c[4, 1] = 1, 2, 3
    c[5, 2] = 2
    c[2, 3], c[6, 3] = 3, 1
    return c


def base_layer() -> CompressedLayer:
    return CompressedLayer.from_codes(base_codes(), CB, 2, code_bits=2, index_bits=2, name="base")


def base_kwargs() -> dict:
    lay = base_layer()
    return dict(shape=(12, 4), n_pe=2, codebook=CB.copy(), ptr=lay.ptr.copy(), v=lay.v.copy(), z=lay.z.copy(),
                code_bits=2, index_bits=2, name="base")


def test_base_layout_is_as_documented():
    lay = base_layer()
    assert lay.ptr.tolist() == [[0, 3, 4, 4, 6], [0, 1, 4, 5, 5]]
    assert lay.v.tolist() == [1, 0, 2, 3, 3, 1, 3, 1, 0, 2, 2]
    assert lay.z.tolist() == [0, 3, 0, 2, 1, 1, 1, 0, 3, 0, 2]


def test_base_passes_with_counts():
    rep = validate_arrays(**base_kwargs())
    assert rep.findings == []
    assert rep.conformant() and rep.conformant(strict=True)
    (lc,) = rep.layers
    assert (lc.stored_entries, lc.fillers, lc.real_nonzeros, lc.empty_pes) == (11, 2, 9, 0)
    d = rep.to_dict()
    assert d["conformant"] is True and d["counts"] == {"errors": 0, "warnings": 0}
    assert d["summary"] == {"layers": 1, "stored_entries": 11, "fillers": 2, "real_nonzeros": 9, "bias_nonzeros": 0}


# ---------------------------------------------------------------- one mutation per rule
def _insert(kw, pe: int, col: int, at_end_of_col: bool, v: int, z: int):
    """Insert an entry at the end of (pe, col) and fix the pointers."""
    ptr = kw["ptr"]
    off = int(ptr[:pe, -1].sum())
    i = off + int(ptr[pe, col + 1])
    kw["v"] = np.insert(kw["v"], i, v)
    kw["z"] = np.insert(kw["z"], i, z)
    ptr[pe, col + 1:] += 1


def m_ptr_start(kw):
    kw["ptr"][1, 0] = 1


def m_ptr_decreasing(kw):
    kw["ptr"][0, 2] = 2  # [0, 3, 2, 4, 6]


def m_ptr_slack(kw):
    kw["v"] = np.append(kw["v"], 1)
    kw["z"] = np.append(kw["z"], 0)


def m_ptr_overrun(kw):
    kw["v"], kw["z"] = kw["v"][:-1], kw["z"][:-1]


def m_ptr_short(kw):
    kw["ptr"] = [kw["ptr"][0], kw["ptr"][1][:-1]]


def m_ptr_long(kw):
    kw["ptr"] = [kw["ptr"][0], np.append(kw["ptr"][1], 5)]


def m_ptr_width(kw):
    kw["pointer_bits"] = 2  # PE 0's last pointer is 6


def m_code_range(kw):
    kw["v"][3] = 4  # PE0 col1, was code 3 (code 3 stays used in col3)


def m_z_range(kw):
    kw["z"][10] = 4  # PE1 col2: row 2 -> 4, still < 6 (only the 2-bit field width is broken)


def m_filler_noncanonical(kw):
    kw["z"][1] = 2  # PE0 col0 filler (0, 3) -> (0, 2): the next entry moves to row 4


def m_filler_trailing(kw):
    _insert(kw, 1, 0, True, 0, 3)  # PE1 col0: real row 1 then a canonical filler (row 5 < 6)


def m_filler_missing(kw):
    kw["z"][2] = 1  # PE0 col0 last entry: row 5 -> 6, past PE0's 6 rows


def m_codebook_zero_neg(kw):
    kw["codebook"][0] = -0.0


def m_codebook_zero_tiny(kw):
    kw["codebook"][0] = 1e-30


def m_codebook_size(kw):
    kw["codebook"] = np.append(kw["codebook"], np.float32(2.0))


def m_nan_codebook(kw):
    kw["codebook"][2] = np.nan


def m_inf_codebook(kw):
    kw["codebook"][3] = -np.inf


def m_codebook_duplicate(kw):
    kw["codebook"][3] = kw["codebook"][2]


def m_codebook_unused(kw):
    kw["v"] = np.where(kw["v"] == 3, 1, kw["v"])


def m_vz_lengths(kw):
    kw["z"] = kw["z"][:-1]


CASES = [
    ("PTR-START-NONZERO", m_ptr_start),
    ("PTR-DECREASING", m_ptr_decreasing),
    ("PTR-SLACK", m_ptr_slack),
    ("PTR-OVERRUN", m_ptr_overrun),
    ("PTR-SHORT", m_ptr_short),
    ("PTR-LONG", m_ptr_long),
    ("PTR-WIDTH", m_ptr_width),
    ("CODE-RANGE", m_code_range),
    ("RELIDX-Z-RANGE", m_z_range),
    ("RELIDX-FILLER-NONCANONICAL", m_filler_noncanonical),
    ("FILLER-TRAILING", m_filler_trailing),
    ("FILLER-MISSING", m_filler_missing),
    ("CODEBOOK-ZERO-NOT-POSITIVE-ZERO", m_codebook_zero_neg),
    ("CODEBOOK-ZERO-NOT-POSITIVE-ZERO", m_codebook_zero_tiny),
    ("CODEBOOK-SIZE", m_codebook_size),
    ("FLOAT-NONFINITE", m_nan_codebook),
    ("FLOAT-NONFINITE", m_inf_codebook),
    ("CODEBOOK-DUPLICATE", m_codebook_duplicate),
    ("CODEBOOK-UNUSED", m_codebook_unused),
    ("META-INCONSISTENT", m_vz_lengths),
]


@pytest.mark.parametrize("code,mutate", CASES, ids=[f"{c}-{m.__name__}" for c, m in CASES])
def test_rule_minimal_case(code, mutate):
    kw = base_kwargs()
    mutate(kw)
    rep = validate_arrays(**kw)
    assert rep.codes() == {code}, [str(f) for f in rep.findings]
    (f,) = rep.findings
    assert f.severity == RULES[code].severity
    assert rep.conformant() == (f.severity == "warning")
    assert not rep.conformant(strict=True)
    # the message names where it is
    if f.pe is not None:
        assert f"PE {f.pe}" in f.message
    assert validate_arrays(**base_kwargs()).findings == []  # the correct twin


def test_locations_name_pe_column_entry():
    kw = base_kwargs()
    m_filler_noncanonical(kw)
    (f,) = validate_arrays(**kw).findings
    assert (f.pe, f.column, f.entry) == (0, 0, 1)
    assert "PE 0, column 0, entry 1" in f.message
    kw = base_kwargs()
    m_ptr_decreasing(kw)
    (f,) = validate_arrays(**kw).findings
    assert (f.pe, f.column) == (0, 1)
    d = f.to_dict()
    assert d["code"] == "PTR-DECREASING" and d["severity"] == "error"
    assert d["location"] == {"layer": 0, "layer_name": "base", "pe": 0, "column": 1}


def test_cheap_level_skips_full_rules():
    kw = base_kwargs()
    m_filler_missing(kw)
    assert validate_arrays(**kw, level="cheap").findings == []
    kw = base_kwargs()
    m_ptr_start(kw)
    assert validate_arrays(**kw, level="cheap").codes() == {"PTR-START-NONZERO"}
    with pytest.raises(EieFormatError):
        validate_arrays(**base_kwargs(), level="medium")


def test_counts_over_many_places():
    kw = base_kwargs()
    kw["z"][[1, 8]] = 2  # both fillers non-canonical
    (f,) = validate_arrays(**kw).findings
    assert f.code == "RELIDX-FILLER-NONCANONICAL" and f.count == 2 and (f.pe, f.entry) == (0, 1)


def test_several_rules_at_once_all_reported():
    kw = base_kwargs()
    m_filler_noncanonical(kw)
    m_codebook_duplicate(kw)
    kw["z"][10] = 4
    assert validate_arrays(**kw).codes() == {"RELIDX-FILLER-NONCANONICAL", "CODEBOOK-DUPLICATE", "RELIDX-Z-RANGE"}


# ---------------------------------------------------------------- layout.check_format agrees
LAYOUT_CODES = {"PTR-START-NONZERO", "PTR-DECREASING", "PTR-SLACK", "PTR-OVERRUN", "CODE-RANGE", "RELIDX-Z-RANGE",
                "RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING", "FILLER-MISSING", "CODEBOOK-ZERO-NOT-POSITIVE-ZERO",
                "CODEBOOK-SIZE", "FLOAT-NONFINITE"}


LAYOUT_CASES = [(c, m) for c, m in CASES if c in LAYOUT_CODES]


@pytest.mark.parametrize("code,mutate", LAYOUT_CASES, ids=[f"{c}-{m.__name__}" for c, m in LAYOUT_CASES])
def test_layout_check_format_raises_the_same_code(code, mutate):
    """The tier that runs on every load (CompressedLayer) names the same rule."""
    kw = base_kwargs()
    mutate(kw)
    with pytest.raises(EieFormatError) as ei:
        lay = CompressedLayer(shape=kw["shape"], n_pe=2, codebook=kw["codebook"], ptr=kw["ptr"], v=kw["v"],
                              z=kw["z"], code_bits=2, index_bits=2)
        lay.check_format(full=True)
    assert ei.value.code == code


# ---------------------------------------------------------------- global rows
def _global_rows_layout(codes: np.ndarray, n_pe: int, index_bits: int):
    """Encode the way a buggy writer does: z counts every row of the column, not the PE's rows."""
    rows, cols = np.nonzero(codes)
    n_cols = codes.shape[1]
    pe = rows % n_pe
    seg = pe * n_cols + cols
    order = np.lexsort((rows, seg))
    v, z, counts = encode_segments(seg[order], rows[order], codes[rows, cols][order], n_pe * n_cols, index_bits)
    ptr = np.zeros((n_pe, n_cols + 1), dtype=np.int64)
    np.cumsum(counts.reshape(n_pe, n_cols), axis=1, out=ptr[:, 1:])
    return ptr, v, z


def test_global_rows_detected_and_not_reported_as_missing_filler():
    kw = base_kwargs()
    kw["ptr"], kw["v"], kw["z"] = _global_rows_layout(base_codes(), 2, 2)
    rep = validate_arrays(**kw)
    assert rep.codes() == {"RELIDX-GLOBAL-ROWS"}, [str(f) for f in rep.findings]
    assert "mod N = 2" in rep.findings[0].message


def test_global_rows_statistical_branch_in_dump_without_n_out(tmp_path):
    rng = np.random.default_rng(3)
    codes = (rng.random((96, 40)) < 0.3) * rng.integers(1, 16, (96, 40))
    cb = CB16
    ptr, v, z = _global_rows_layout(np.concatenate([codes, np.zeros((96, 1), int)], axis=1), 8, 4)
    bad = CompressedLayer(shape=(96, 40), n_pe=8, codebook=cb, ptr=ptr, v=v, z=z, has_bias=True)
    write_dump(bad, tmp_path / "bad")
    rep = validate_dump(tmp_path / "bad")  # n_out unknown: nothing runs past an inferred slice
    assert rep.codes() == {"RELIDX-GLOBAL-ROWS"}, [str(f) for f in rep.findings]
    assert "inferred" in rep.findings[0].message
    good = CompressedLayer.from_codes(codes, cb, 8)
    write_dump(good, tmp_path / "good")
    assert validate_dump(tmp_path / "good").findings == []
    assert validate_dump(tmp_path / "good", n_out=96).findings == []


def test_small_slices_are_not_mistaken_for_global_rows():
    # every PE owns one row (n_out = N): all local rows are 0, trivially "congruent" for PE 0
    codes = np.zeros((4, 30), dtype=np.int64)
    codes[0, :] = 1 + np.arange(30) % 3
    codes[2, ::2] = 2
    lay = CompressedLayer.from_codes(codes, CB, 4, code_bits=2, index_bits=2)
    assert validate_layer(lay).findings == []


# ---------------------------------------------------------------- equivalence with a reference
def reference() -> np.ndarray:
    return CB[base_codes()]


def test_equivalence_twin_passes():
    lay = base_layer()
    rep = validate_layer(lay, reference=reference(), mask=base_codes() != 0)
    assert rep.findings == []


def test_equiv_dense_mismatch():
    ref = reference()
    ref[0, 0] = CB[2]
    rep = validate_layer(base_layer(), reference=ref)
    assert rep.codes() == {"EQUIV-DENSE-MISMATCH"}
    assert "W[0, 0]" in rep.findings[0].message


def test_code0_real_nonzero():
    ref = reference()
    ref[8, 0] = CB[1]  # PE0 col0's filler decodes to local row 4 = global row 8
    rep = validate_layer(base_layer(), reference=ref)
    assert rep.codes() == {"CODE0-REAL-NONZERO"}
    assert "W[8, 0]" in rep.findings[0].message


def test_equiv_outside_mask():
    mask = base_codes() != 0
    mask[0, 0] = False
    rep = validate_layer(base_layer(), reference=reference(), mask=mask)
    assert rep.codes() == {"EQUIV-OUTSIDE-MASK"}


def test_codebook_too_many_values():
    ref = reference()
    ref[7, 2] = 0.125  # a 5th distinct value (zero included) for a 4-entry codebook
    rep = validate_layer(base_layer(), reference=ref)
    assert rep.codes() == {"CODEBOOK-TOO-MANY-VALUES"}


def test_negative_zero_in_reference_counts_as_pruned():
    ref = reference()
    ref[7, 2] = -0.0
    assert validate_layer(base_layer(), reference=ref).findings == []


def test_bias_column_equivalence():
    c = base_codes()
    bias_codes = np.array([0, 1, 2, 3] * 3)
    lay = CompressedLayer.from_codes(c, CB, 2, bias_codes=bias_codes, code_bits=2, index_bits=2)
    assert validate_layer(lay, reference=CB[c], reference_bias=CB[bias_codes]).findings == []
    rb = CB[bias_codes].copy()
    rb[5] = CB[3]
    rep = validate_layer(lay, reference=CB[c], reference_bias=rb)
    assert rep.codes() == {"EQUIV-DENSE-MISMATCH"} and "bias[5]" in rep.findings[0].message


def test_reference_shape_checked():
    with pytest.raises(EieFormatError, match="reference"):
        validate_layer(base_layer(), reference=np.zeros((3, 3)))


# ---------------------------------------------------------------- the paper's example and real layers
def test_paper_fig3_pe0_example():
    """EIE Fig. 2/3: PE0 of a 16 x 8 matrix over 4 PEs."""
    nz = [(0, 0), (8, 0), (12, 0), (4, 1), (0, 2), (12, 2), (0, 4), (4, 4), (0, 5), (12, 5), (0, 6), (8, 7), (12, 7)]
    codes = np.zeros((16, 8), dtype=np.int64)
    for k, (r, c) in enumerate(nz):
        codes[r, c] = 1 + k % 15
    cb = np.concatenate([[0.0], np.arange(1, 16)]).astype(np.float32)
    lay = CompressedLayer.from_codes(codes, cb, 4)
    assert lay.ptr[0].tolist() == [0, 3, 4, 6, 6, 8, 10, 11, 13]
    rep = validate_layer(lay, reference=cb[codes])
    assert rep.codes() <= {"CODEBOOK-UNUSED"}  # 13 non-zeros cannot use 15 centroids
    assert rep.layers[0].real_nonzeros == 13 and rep.layers[0].empty_pes == 3


def test_empty_layer_and_empty_pes_are_legal():
    codes = np.zeros((5, 3), dtype=np.int64)
    lay = CompressedLayer.from_codes(codes, CB, 8, code_bits=2, index_bits=2)
    rep = validate_layer(lay)
    assert rep.codes() == {"CODEBOOK-UNUSED"}  # nothing uses any centroid; no error
    assert rep.conformant()
    assert rep.layers[0].stored_entries == 0 and rep.layers[0].empty_pes == 8


def test_real_fc8_dump_passes(fc8_dir):
    rep = validate(fc8_dir)
    assert rep.kind == "dump" and rep.findings == []
    (lc,) = rep.layers
    assert lc.shape == (1000, 4096) and lc.n_pe == 64
    assert lc.stored_entries == 1051991 and lc.fillers == 0


def test_fatal_codes_are_not_rules():
    assert not set(FATAL_CODES) & set(RULES)
    assert all(r.severity in ("error", "warning") and r.tier in ("cheap", "full") for r in RULES.values())
    assert isinstance(validate_arrays(**base_kwargs()), ValidationReport)


# ---------------------------------------------------------------- dump directories
def dump_layer(n_out=20, n_in=13, n_pe=4) -> CompressedLayer:
    """A dump-ready layer (4-bit codes) that uses all 15 centroids, with fillers and a bias column."""
    c = np.zeros((n_out, n_in), dtype=np.int64)
    pos = [(0, 0), (16, 0), (19, 0), (5, 1), (9, 2), (2, 3), (18, 3), (7, 5), (11, 6), (1, 7), (13, 8), (6, 9),
           (4, 10), (14, 11), (3, 12), (8, 12), (17, 4)]
    for k, (r, col) in enumerate(pos):
        c[r, col] = 1 + k % 15
    cb = CB16
    bias = np.arange(n_out) % 16
    return CompressedLayer.from_codes(c, cb, n_pe, bias_codes=bias, name="d")


def make_dump(tmp_path, name="d", **kw):
    lay = dump_layer(**kw)
    act = np.linspace(0, 1, lay.n_in, dtype=np.float32)
    return write_dump(lay, tmp_path / name, activations=act)


def test_dump_twin_passes(tmp_path):
    d = make_dump(tmp_path)
    rep = validate_dump(d)
    assert rep.findings == [], [str(f) for f in rep.findings]
    assert validate_dump(d, n_out=20).findings == []
    assert rep.layers[0].shape == (20, 13)


def _rw(path, dtype, fn):
    a = np.fromfile(path, dtype=dtype)
    a = fn(a.copy())
    path.write_bytes(np.asarray(a, dtype=dtype).tobytes())


def test_dump_truncated_spm(tmp_path):
    d = make_dump(tmp_path)
    raw = (d / "spm" / "spm2.dat").read_bytes()
    (d / "spm" / "spm2.dat").write_bytes(raw[:-3])
    rep = validate_dump(d, n_out=20)
    assert rep.codes() == {"STREAM-TRUNCATED"}
    assert rep.findings[0].member == "spm/spm2.dat"


def test_dump_missing_spm_file(tmp_path):
    d = make_dump(tmp_path)
    (d / "spm" / "spm1.dat").unlink()
    assert validate_dump(d, n_out=20).codes() == {"DUMP-FILES"}


def test_dump_ptr_numbering_gap(tmp_path):
    d = make_dump(tmp_path)
    (d / "ptr" / "ptr2.dat").unlink()
    (d / "spm" / "spm2.dat").unlink()
    rep = validate_dump(d, n_out=20)
    assert rep.codes() == {"DUMP-FILES"} and "ptr2.dat" in rep.findings[0].message


def test_dump_padding_column_nonempty(tmp_path):
    d = make_dump(tmp_path)  # n_in = 13 over 4 PEs: padded to 16, padding columns 13..15
    p = np.fromfile(d / "ptr" / "ptr1.dat", dtype="<u4").astype(np.int64)
    s = np.fromfile(d / "spm" / "spm1.dat", dtype="<u4").reshape(-1, 2)
    at = int(p[14])  # end of column 13 (first padding column)
    s = np.insert(s, at, [[3, 0]], axis=0)
    p[14:] += 1
    (d / "ptr" / "ptr1.dat").write_bytes(p.astype("<u4").tobytes())
    (d / "spm" / "spm1.dat").write_bytes(s.astype("<u4").tobytes())
    rep = validate_dump(d, n_out=20)
    assert rep.codes() == {"PTR-PADDING-NONEMPTY"}
    assert (rep.findings[0].pe, rep.findings[0].column) == (1, 13)


def test_dump_short_pointer_file(tmp_path):
    d = make_dump(tmp_path)
    _rw(d / "ptr" / "ptr3.dat", "<u4", lambda a: a[:-1])
    assert validate_dump(d, n_out=20).codes() == {"PTR-SHORT"}


def test_dump_missing_or_extra_pe_is_named_as_such(tmp_path):
    """A dump with one PE's ptr/spm pair deleted (or one too many) blamed ptr0.dat's length, because N is
    the file count (fresh-user finding): the message now says which N the intact files fit."""
    import shutil

    hint = ("every pointer file has the 18 values of N = 4 PEs for 13 input columns, but {n} PE(s) have files: "
            "a PE's ptr/spm pair missing or extra?")
    d = make_dump(tmp_path)  # n_in = 13 over 4 PEs: 16 padded columns + 2
    (d / "ptr" / "ptr3.dat").unlink()
    (d / "spm" / "spm3.dat").unlink()
    rep = validate_dump(d, n_out=20)
    (f,) = [f for f in rep.findings if f.code in ("PTR-SHORT", "PTR-LONG")]
    assert f.message.endswith(hint.format(n=3)) and "(3 PE(s) too long)" in f.message  # 13 columns on 3 PEs: 17
    d = make_dump(tmp_path, name="e")
    shutil.copy(d / "ptr" / "ptr0.dat", d / "ptr" / "ptr4.dat")
    shutil.copy(d / "spm" / "spm0.dat", d / "spm" / "spm4.dat")
    rep = validate_dump(d, n_out=20)
    (f,) = [f for f in rep.findings if f.code in ("PTR-SHORT", "PTR-LONG")]
    assert f.message.endswith(hint.format(n=5)) and "(5 PE(s) too long)" in f.message  # 5 PEs: 17
    d = make_dump(tmp_path, name="f")  # one file short: no such hint
    _rw(d / "ptr" / "ptr3.dat", "<u4", lambda a: a[:-1])
    (f,) = validate_dump(d, n_out=20).findings
    assert "missing or extra" not in f.message


def test_dump_pointer_start_and_slack(tmp_path):
    d = make_dump(tmp_path)
    _rw(d / "ptr" / "ptr0.dat", "<u4", lambda a: np.where(np.arange(a.size) == 0, 1, a))
    assert validate_dump(d, n_out=20).codes() == {"PTR-START-NONZERO"}
    d = make_dump(tmp_path, name="e")
    s = np.fromfile(d / "spm" / "spm1.dat", dtype="<u4")
    (d / "spm" / "spm1.dat").write_bytes(np.append(s, [1, 0]).astype("<u4").tobytes())
    assert validate_dump(d, n_out=20).codes() == {"PTR-SLACK"}


def test_dump_code_out_of_4_bit_range(tmp_path):
    d = make_dump(tmp_path)
    s = np.fromfile(d / "spm" / "spm0.dat", dtype="<u4").reshape(-1, 2).copy()
    s[0, 0] = 1000  # the uint32 field holds it, the 4-bit code cannot
    (d / "spm" / "spm0.dat").write_bytes(s.astype("<u4").tobytes())
    rep = validate_dump(d, n_out=20)
    assert rep.codes() == {"CODE-RANGE"} and (rep.findings[0].pe, rep.findings[0].entry) == (0, 0)


def test_dump_act_length_and_nan(tmp_path):
    d = make_dump(tmp_path)
    a = np.fromfile(d / "act.dat", dtype="<f4")
    (d / "act.dat").write_bytes(a[:-1].tobytes())
    assert validate_dump(d, n_out=20, n_in=13).codes() == {"META-INCONSISTENT"}
    a2 = a.copy()
    a2[4] = np.nan
    (d / "act.dat").write_bytes(a2.tobytes())
    rep = validate_dump(d, n_out=20)
    assert rep.codes() == {"FLOAT-NONFINITE"} and rep.findings[0].entry == 4


def test_dump_codebook_size_and_zero(tmp_path):
    d = make_dump(tmp_path)
    cb = np.fromfile(d / "arithm.dat", dtype="<f4")
    (d / "arithm.dat").write_bytes(np.append(cb, np.float32(2)).tobytes())
    assert validate_dump(d, n_out=20).codes() == {"CODEBOOK-SIZE"}
    cb2 = cb.copy()
    cb2[0] = -0.0
    (d / "arithm.dat").write_bytes(cb2.tobytes())
    assert validate_dump(d, n_out=20).codes() == {"CODEBOOK-ZERO-NOT-POSITIVE-ZERO"}


def test_dump_rows_past_slice_with_known_n_out(tmp_path):
    d = make_dump(tmp_path)
    assert validate_dump(d, n_out=20).findings == []
    # the last real entry of PE 3 sits at its last local row (4): claim n_out = 16
    rep = validate_dump(d, n_out=16)
    assert rep.codes() == {"FILLER-MISSING"}


def test_dump_unreadable(tmp_path):
    with pytest.raises(EieFormatError) as ei:
        validate_dump(tmp_path / "nothing")
    assert ei.value.code == "DUMP-UNREADABLE"
    (tmp_path / "empty").mkdir()
    with pytest.raises(EieFormatError) as ei:
        validate_dump(tmp_path / "empty")
    assert ei.value.code == "DUMP-UNREADABLE"


def test_docs_rule_table_matches_the_code():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text()
    for rule in RULES.values():
        row = f"| `{rule.code}` | {rule.severity} | {rule.tier} |"
        assert row in text, row
    for code in FATAL_CODES:
        assert f"| `{code}` |" in text


def test_dump_act_short_or_long_is_blamed_on_act_dat(tmp_path):
    """Issue 9: a 4-byte-short act.dat was reported as PTR-PADDING-NONEMPTY on ptr/ptr0.dat."""
    codes = np.zeros((10, 23), dtype=np.int64)
    codes[:, 22] = np.arange(1, 11)  # every PE stores an entry in the last column
    codes[:5, 21] = np.arange(11, 16)  # every centroid used
    cb = np.array([0.0] + [0.25 * i for i in range(1, 16)], np.float32)
    out = write_dump(CompressedLayer.from_codes(codes, cb, 5), tmp_path / "d", activations=np.ones(23, np.float32))
    assert validate_dump(out).findings == []
    (out / "act.dat").write_bytes(np.ones(22, "<f4").tobytes())  # 4 bytes short
    rep = validate_dump(out)
    assert rep.codes() == {"META-INCONSISTENT"}, [str(f) for f in rep.findings]
    assert [f.member for f in rep.findings] == ["act.dat"]
    assert "act.dat holds 22 activations" in str(rep.findings[0])
    (out / "act.dat").write_bytes(np.ones(26, "<f4").tobytes())  # one group of 5 too long
    rep = validate_dump(out)
    assert rep.codes() == {"META-INCONSISTENT"}, [str(f) for f in rep.findings]
    assert [f.member for f in rep.findings] == ["act.dat"]
    assert "describe 25 padded input columns" in str(rep.findings[0])
