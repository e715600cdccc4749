"""The authors' EIE simulator dump directory (docs/FORMAT.md §2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.errors import EieFormatError, EieInputError
from eiesim.format import CompressedLayer, read_dump, write_dump
from eiesim.format import eiedump as eiedump_mod

from ..conftest import CB16


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- the real FC8 dump
def test_read_fc8(fc8_dir):
    d = read_dump(fc8_dir)
    lay = d.layer
    assert lay.n_pe == 64
    assert lay.shape == (1000, 4096)  # n_out inferred, n_in from act.dat
    assert lay.has_bias and lay.n_cols == 4097
    assert lay.codebook.shape == (16,) and lay.codebook[0] == 0.0
    spm_entries = sum(os.path.getsize(fc8_dir / "spm" / f"spm{k}.dat") for k in range(64)) // 8
    assert lay.n_entries == spm_entries
    assert d.activations.dtype == np.float32 and d.activations.shape == (4096,)
    assert np.count_nonzero(d.activations) == 1759
    assert max(lay.n_local_rows(k) for k in range(64)) == 16
    lay.check_format(full=True)
    # README: top-1 class of W a + b for this input is 708
    y = lay.to_scipy() @ d.activations.astype(np.float64) + lay.bias_values()
    assert int(np.argmax(y)) == 708


def test_fc8_write_back_byte_identical(fc8_dir, tmp_path):
    d = read_dump(fc8_dir, n_pe=64)
    out = tmp_path / "fc8_copy"
    write_dump(d.layer, out, activations=d.activations)
    src_files = [f for f in _all_files(fc8_dir) if f.endswith(".dat")]
    assert len(src_files) == 2 * 64 + 2
    assert _all_files(out) == src_files
    for rel in src_files:
        assert (out / rel).read_bytes() == (fc8_dir / rel).read_bytes(), rel


def test_fc8_reencode_matches(fc8_dir):
    lay = read_dump(fc8_dir).layer
    codes = lay.to_codes()
    again = CompressedLayer.from_codes(codes[:, :4096], lay.codebook, 64, bias_codes=codes[:, 4096])
    assert np.array_equal(again.ptr, lay.ptr)
    assert np.array_equal(again.v, lay.v) and np.array_equal(again.z, lay.z)


# ---------------------------------------------------------------- synthetic round trips
def _synthetic(n_out=37, n_in=23, n_pe=5, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 16, (n_out, n_in)) * (rng.random((n_out, n_in)) < 0.3)
    codes[:, 4] = 0  # an empty column
    b = rng.integers(0, 16, n_out) if bias else None
    return CompressedLayer.from_codes(codes, CB16, n_pe, bias_codes=b)


@pytest.mark.parametrize("bias", [True, False])
def test_synthetic_roundtrip_with_padding(tmp_path, bias):
    lay = _synthetic(bias=bias)  # 23 columns on 5 PEs -> padded to 25
    act = np.linspace(-1, 1, 23, dtype=np.float32)
    out = write_dump(lay, tmp_path / "d", activations=act)
    p0 = np.fromfile(out / "ptr" / "ptr0.dat", dtype="<u4")
    assert p0.size == 25 + 2
    assert p0[23] == p0[24] == p0[25]  # padding columns are empty
    assert (out / "spm" / "spm4.dat").stat().st_size == 8 * (lay.pe_offsets[5] - lay.pe_offsets[4])
    d = read_dump(out, n_out=37)
    assert d.layer.shape == (37, 23) and d.layer.has_bias
    assert np.array_equal(d.activations, act)
    codes = d.layer.to_codes()
    assert np.array_equal(codes[:, :23], lay.to_codes()[:, :23])
    if bias:
        assert np.array_equal(d.layer.bias_values(), lay.bias_values())
    else:
        assert not codes[:, 23].any()
    # written again -> same bytes
    out2 = write_dump(d.layer, tmp_path / "d2", activations=d.activations)
    for rel in _all_files(out):
        assert (out2 / rel).read_bytes() == (out / rel).read_bytes()


def test_read_without_act_uses_padded_columns(tmp_path):
    lay = _synthetic()
    out = write_dump(lay, tmp_path / "d")
    d = read_dump(out)
    assert d.activations is None
    assert d.layer.n_in == 25  # padded count, padding columns empty
    assert d.layer.n_out <= 37
    assert np.array_equal(d.layer.to_dense()[:, :23], lay.to_dense()[: d.layer.n_out])
    d = read_dump(out, n_in=23, n_out=37)
    assert np.array_equal(d.layer.to_dense(), lay.to_dense())


def test_fillers_survive(tmp_path):
    codes = np.zeros((200, 3), dtype=np.int64)
    codes[[0, 100, 199], 1] = [1, 2, 3]  # one PE: gaps 99, 98 -> 6 fillers each
    lay = CompressedLayer.from_codes(codes, CB16, 1)
    assert lay.n_fillers == 12
    d = read_dump(write_dump(lay, tmp_path / "d"), n_in=3, n_out=200)
    assert np.array_equal(d.layer.v, lay.v) and np.array_equal(d.layer.z, lay.z)


# ---------------------------------------------------------------- errors
@pytest.fixture
def dump(tmp_path):
    return write_dump(_synthetic(), tmp_path / "d", activations=np.ones(23, np.float32))


def test_truncated_spm(dump):
    f = dump / "spm" / "spm2.dat"
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(EieFormatError, match=r"spm2\.dat.*not a multiple of 8"):
        read_dump(dump)


def test_spm_missing_entries(dump):
    f = dump / "spm" / "spm2.dat"
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(EieFormatError, match=r"ptr2\.dat: PE 2 has last pointer 50 but stores only 49 entries") as exc:
        read_dump(dump)
    assert exc.value.code == "PTR-OVERRUN"


def test_missing_ptr_file(dump):
    (dump / "ptr" / "ptr3.dat").unlink()
    with pytest.raises(EieFormatError, match=r"ptr/ptr3\.dat: ptr files must be numbered 0\.\.N-1: ptr3\.dat is missing") as exc:
        read_dump(dump)
    assert exc.value.code == "DUMP-FILES"


def test_missing_last_ptr_file_means_extra_spm(dump):
    (dump / "ptr" / "ptr4.dat").unlink()
    with pytest.raises(EieFormatError, match=r"spm/spm4\.dat: spm4\.dat has no ptr file \(N = 4\)") as exc:
        read_dump(dump)
    assert exc.value.code == "DUMP-FILES"


def test_missing_spm_file_and_dirs(dump, tmp_path):
    (dump / "spm" / "spm1.dat").unlink()
    with pytest.raises(EieFormatError, match=r"spm/spm1\.dat: spm1\.dat is missing \(PE 1 has a ptr file\)") as exc:
        read_dump(dump)
    assert exc.value.code == "DUMP-FILES"
    with pytest.raises(EieFormatError, match="dump directory is missing"):
        read_dump(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EieFormatError, match=r"no ptr/ptr\{k\}\.dat files \(not a dump directory\)"):
        read_dump(tmp_path / "empty")


def test_n_pe_mismatch(dump):
    with pytest.raises(EieFormatError, match="N does not match the dump"):
        read_dump(dump, n_pe=4)


def test_missing_codebook(dump):
    (dump / "arithm.dat").unlink()
    with pytest.raises(EieFormatError, match=r"arithm\.dat: arithm\.dat \(the codebook\) is missing") as exc:
        read_dump(dump)
    assert exc.value.code == "DUMP-FILES"


def test_bad_codebook(dump):
    cb = CB16.copy()
    cb[0] = -0.0
    (dump / "arithm.dat").write_bytes(cb.astype("<f4").tobytes())
    with pytest.raises(EieFormatError, match=r"arithm\.dat: codebook\[0\] = -0\.0 \(bits 0x80000000\) must be \+0\.0") as exc:
        read_dump(dump)
    assert exc.value.code == "CODEBOOK-ZERO-NOT-POSITIVE-ZERO"
    (dump / "arithm.dat").write_bytes(CB16[:8].astype("<f4").tobytes())
    with pytest.raises(EieFormatError, match=r"arithm\.dat: codebook holds 8 values, code_bits = 4 needs 16") as exc2:
        read_dump(dump)
    assert exc2.value.code == "CODEBOOK-SIZE"


def test_code_out_of_range(dump):
    f = dump / "spm" / "spm0.dat"
    s = np.fromfile(f, dtype="<u4").reshape(-1, 2)
    s[1, 0] = 16
    f.write_bytes(s.tobytes())
    with pytest.raises(EieFormatError, match=r"spm0\.dat: PE 0, column 0, entry 1: code v = 16 > 15") as exc:
        read_dump(dump)
    assert exc.value.code == "CODE-RANGE"
    s[1, 0] = 1
    s[2, 1] = 99
    f.write_bytes(s.tobytes())
    with pytest.raises(EieFormatError, match=r"spm0\.dat: PE 0, column \d+, entry 2: relative index z = 99 > 15") as exc2:
        read_dump(dump)
    assert exc2.value.code == "RELIDX-Z-RANGE"


def test_pointer_length_mismatch(dump):
    f = dump / "ptr" / "ptr1.dat"
    p = np.fromfile(f, dtype="<u4")
    f.write_bytes(np.r_[p, p[-1]].astype("<u4").tobytes())
    with pytest.raises(EieFormatError, match=r"ptr1\.dat: PE 1's pointer array has 28 values, 27 declared") as exc:
        read_dump(dump)
    assert exc.value.code == "PTR-LONG"


def test_padding_column_not_empty(dump):
    # move the bias column's first entry of PE 0 into padding column 23
    f = dump / "ptr" / "ptr0.dat"
    p = np.fromfile(f, dtype="<u4")
    assert p[25] < p[26]
    p[24] += 1
    p[25] += 1
    f.write_bytes(p.tobytes())
    with pytest.raises(EieFormatError, match=r"ptr0\.dat: PE 0: padding columns 23\.\.24 hold 1 entries") as exc:
        read_dump(dump)
    assert exc.value.code == "PTR-PADDING-NONEMPTY"


def test_act_length_vs_n_in(dump):
    with pytest.raises(EieFormatError, match=r"act\.dat: act\.dat holds 23 activations, n_in = 22") as exc:
        read_dump(dump, n_in=22)
    assert exc.value.code == "META-INCONSISTENT"
    (dump / "act.dat").unlink()
    with pytest.raises(EieFormatError, match="ceil"):
        read_dump(dump, n_in=19)


def test_n_out_too_small(dump):
    with pytest.raises(EieFormatError, match="owns only"):
        read_dump(dump, n_out=10)


def test_write_refuses_non_empty_and_wrong_bits(tmp_path):
    lay = _synthetic()
    target = tmp_path / "t"
    target.mkdir()
    (target / "x").write_text("keep")
    with pytest.raises(EieFormatError, match="not an empty directory"):
        write_dump(lay, target)
    assert (target / "x").read_text() == "keep"
    (target / "x").unlink()
    write_dump(lay, target)  # an empty directory is fine
    low = CompressedLayer.from_codes(np.eye(3, dtype=int), CB16, 1, index_bits=2)
    with pytest.raises(EieFormatError, match="code_bits = index_bits = 4"):
        write_dump(low, tmp_path / "low")
    with pytest.raises(EieInputError, match="activations"):
        write_dump(lay, tmp_path / "a", activations=np.ones(5))
    assert not (tmp_path / "a").exists() and not (tmp_path / "low").exists()


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(eiedump_mod.os, "rename", boom)
    with pytest.raises(OSError, match="disk full"):
        write_dump(_synthetic(), tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- which file is blamed (issue 9)
def _last_column_full_dump(tmp_path, n_act):
    """23 x 5-PE layer whose last column holds an entry on every PE; act.dat of ``n_act`` values."""
    codes = np.zeros((10, 23), dtype=np.int64)
    codes[:, 22] = np.arange(1, 11)
    codes[3, 5] = 7
    lay = CompressedLayer.from_codes(codes, CB16, 5)
    out = write_dump(lay, tmp_path / "d", activations=np.ones(23, np.float32))
    (out / "act.dat").write_bytes(np.ones(n_act, "<f4").tobytes())
    return out


def test_act_four_bytes_short_is_blamed_on_act_dat(tmp_path):
    """act.dat 4 bytes short used to be reported as 'ptr/ptr0.dat: padding columns ... must be empty'."""
    out = _last_column_full_dump(tmp_path, 22)
    with pytest.raises(EieFormatError, match=r"act\.dat: act\.dat holds 22 activations, but all 5 PEs' pointer files store entries "
                       r"past it \(PE 0: 2 entries in columns 22\.\.24, first in column 22\); act\.dat is too short") as exc:
        read_dump(out)
    assert exc.value.code == "META-INCONSISTENT"
    assert "ptr0.dat" not in str(exc.value)
    with pytest.raises(EieFormatError, match=r"act\.dat: act\.dat holds 22 activations, n_in = 23"):
        read_dump(out, n_in=23)


def test_inferred_n_out_is_flagged_and_a_lone_far_pe_warned(tmp_path):
    """Issue 9: an inferred n_out is said so, and one PE decoding rows far past every other PE's is warned."""
    codes = np.ones((40, 3), dtype=np.int64)  # 4 PEs, local rows 0..9 each
    lay = CompressedLayer.from_codes(codes, CB16, 4)
    out = write_dump(lay, tmp_path / "d", activations=np.ones(3, np.float32))
    d = read_dump(out)
    assert d.n_out_inferred and d.layer.n_out == 40 and d.warnings == ()
    assert not read_dump(out, n_out=40).n_out_inferred
    # two stray filler entries at the head of PE 1's column 2 push its rows 32 local rows down
    p = np.fromfile(out / "ptr" / "ptr1.dat", dtype="<u4")
    s = np.fromfile(out / "spm" / "spm1.dat", dtype="<u4").reshape(-1, 2)
    at = int(p[2])
    s = np.insert(s, at, [[0, 15], [0, 15]], axis=0)
    p[3:] += 2
    p.tofile(out / "ptr" / "ptr1.dat")
    s.tofile(out / "spm" / "spm1.dat")
    d = read_dump(out)
    assert d.n_out_inferred and d.layer.n_out == (9 + 32) * 4 + 1 + 1  # decided by PE 1 alone
    (w,) = d.warnings
    assert "PE 1 alone" in w and "local row 41" in w and "by local row 9" in w and "spm1.dat" in w
    assert read_dump(out, n_out=200).warnings == ()  # n_out given: nothing inferred, nothing to warn


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.integers(1, 9), n_out=st.integers(1, 70), n_in=st.integers(1, 12),
       density=st.floats(0.0, 0.6), chunk=st.sampled_from([1, 5, 40, 1 << 16, None]))
def test_inferred_n_out_is_the_last_real_row_plus_one(tmp_path_factory, seed, n_pe, n_out, n_in, density, chunk):
    """read_dump's one-pass inference (segment sums of z + 1) gives the largest decoded global row of a real
    entry + 1, as decoding every entry does (long gaps: fillers included): the compiled ``eie_sim.last_rows``
    (``chunk`` None) and the NumPy twin whatever the groups of PEs it sums at once (``_INFER_CHUNK``
    entries: one PE per group up to all PEs in one)."""
    import eiesim.format.eiedump as eiedump

    was = eiedump._INFER_CHUNK, eiedump._USE_KERNEL
    eiedump._INFER_CHUNK, eiedump._USE_KERNEL = (was[0], True) if chunk is None else (chunk, False)
    try:
        _check_inferred_n_out(tmp_path_factory, seed, n_pe, n_out, n_in, density)
    finally:
        eiedump._INFER_CHUNK, eiedump._USE_KERNEL = was


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_pe=st.integers(1, 9), n_cols=st.integers(1, 40),
       fill=st.sampled_from([0.0, 0.2, 0.9]), zmax=st.sampled_from([1, 16, 256]))
def test_kernel_last_rows_equals_the_numpy_twin(seed, n_pe, n_cols, fill, zmax):
    """``eie_sim.last_rows`` and ``_last_rows_numpy`` on any pointers and indices (empty PEs, empty
    segments, 8-bit indices), and the kernel refuses pointers that would make it read out of bounds."""
    import eiesim.format.eiedump as eiedump

    eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, (n_pe, n_cols)) * (rng.random((n_pe, n_cols)) < fill)
    ptr = np.concatenate([np.zeros((n_pe, 1), np.int64), np.cumsum(counts, axis=1)], axis=1)
    z = rng.integers(0, zmax, int(ptr[:, -1].sum())).astype(np.uint8)
    got = eie_sim.last_rows(ptr, z)
    np.testing.assert_array_equal(got, eiedump._last_rows_numpy(ptr, z))
    if z.size:
        with pytest.raises(ValueError, match="entries"):
            eie_sim.last_rows(ptr, z[:-1])
        bad = ptr.copy()
        bad[0, -1] = bad[0, 1] - 1
        with pytest.raises(ValueError, match="decreases|entries"):
            eie_sim.last_rows(bad, z)


def _check_inferred_n_out(tmp_path_factory, seed, n_pe, n_out, n_in, density):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 16, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    lay = CompressedLayer.from_codes(codes, CB16, n_pe, bias_codes=rng.integers(0, 16, n_out))
    out = write_dump(lay, tmp_path_factory.mktemp("d") / "d")
    real = lay.v != 0
    if not real.any():
        with pytest.raises(EieFormatError, match="holds no non-zero") as exc:
            read_dump(out)
        assert exc.value.code == "META-MISSING"
        return
    d = read_dump(out)
    assert d.n_out_inferred and d.layer.n_out == int(lay.entry_rows()[real].max()) + 1
    assert np.array_equal(d.layer.v, lay.v) and np.array_equal(d.layer.z, lay.z)


def test_trailing_filler_is_refused_not_counted_as_a_row(tmp_path):
    """A segment ending with a filler: its end is not a real row; the reader refuses it (FILLER-TRAILING)."""
    codes = np.zeros((8, 3), dtype=np.int64)
    codes[0, 0] = 3
    lay = CompressedLayer.from_codes(codes, CB16, 1)
    out = write_dump(lay, tmp_path / "d")
    ptr = np.fromfile(out / "ptr" / "ptr0.dat", dtype="<u4")
    spm = np.fromfile(out / "spm" / "spm0.dat", dtype="<u4").reshape(-1, 2)
    spm = np.vstack([spm, [0, 15]]).astype("<u4")  # a filler (0, 15) after column 0's real entry
    ptr[1:] += 1
    (out / "ptr" / "ptr0.dat").write_bytes(ptr.astype("<u4").tobytes())
    (out / "spm" / "spm0.dat").write_bytes(spm.tobytes())
    with pytest.raises(EieFormatError, match=r"spm0\.dat: PE 0, column 0, entry 1: the column segment ends with a "
                       "filler") as exc:
        read_dump(out)
    assert exc.value.code == "FILLER-TRAILING"


@pytest.mark.parametrize("wrong", ["zero", "smaller"])
def test_dump_file_changing_size_after_the_stat_reads_the_same_layer(tmp_path, monkeypatch, wrong):
    """read_pes sizes one buffer from a stat of every spm file, then reads each straight into it; a file
    whose size then differs (replaced in between) is read as bytes and put back in PE order (issue 11)."""
    from eiesim.format import dumprules

    rng = np.random.default_rng(3)
    codes = np.where(rng.random((40, 23)) < 0.3, rng.integers(1, 16, (40, 23)), 0)
    layer = CompressedLayer.from_codes(codes, CB16, 4, code_bits=4, index_bits=4, name="d")
    write_dump(layer, tmp_path / "d", activations=np.ones(23, np.float32))
    ref = read_dump(tmp_path / "d", n_out=40).layer
    real = dumprules._file_sizes

    def sizes(paths, n):
        got = real(paths, n)
        return [0] * n if wrong == "zero" else [max(s - 8, 0) if k % 2 else s for k, s in enumerate(got)]

    monkeypatch.setattr(dumprules, "_file_sizes", sizes)
    got = read_dump(tmp_path / "d", n_out=40).layer
    for key in ("ptr", "v", "z", "codebook"):
        assert np.array_equal(getattr(got, key), getattr(ref, key)), key
    assert np.array_equal(got.to_dense(), layer.to_dense()) and ref.n_entries == got.n_entries > 0
