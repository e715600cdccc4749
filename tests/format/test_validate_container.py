"""Validator rules on ``.eie`` containers: one minimal broken file per rule, plus its correct twin."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eiesim.format.huffman import HuffmanStream, encode
from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer
from eiesim.format.container import load_network, save_network
from eiesim.format.validate import RULES, validate, validate_container

CB = np.array([0.0, 0.5, -0.25, 1.0], dtype=np.float32)


def base_layer(name="base") -> CompressedLayer:
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0] = 1, 2, 3
    c[1, 1], c[11, 1], c[4, 1] = 1, 2, 3
    c[5, 2] = 2
    c[2, 3], c[6, 3] = 3, 1
    return CompressedLayer.from_codes(c, CB, 2, bias_codes=np.arange(12) % 4, code_bits=2, index_bits=2, name=name)


@pytest.fixture
def base(tmp_path) -> Path:
    p = tmp_path / "base.eie"
    save_network(p, [base_layer()], metadata={"source": "test"}, packed=True, huffman=True)
    return p


def npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def rebuild(src: Path, dst: Path, *, manifest=None, replace=None, drop=(), add=None, stored=False) -> Path:
    """Copy a container member by member with changes (manifest edited by a function)."""
    replace = dict(replace or {})
    with zipfile.ZipFile(src) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            if name in drop:
                continue
            if name == "manifest.json" and manifest is not None:
                doc = json.loads(data)
                manifest(doc)
                data = json.dumps(doc).encode()
            zf.writestr(name, replace.pop(name, data))
        for name, data in (add or {}).items():
            zf.writestr(name, data)
    return dst


def member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def arr(path: Path, name: str) -> np.ndarray:
    return np.load(io.BytesIO(member(path, name)), allow_pickle=False)


L0 = "layers/0/"


def codes_of(path) -> set:
    return validate_container(path).codes()


# ---------------------------------------------------------------- the twin
def test_twin_passes(base):
    rep = validate_container(base)
    assert rep.findings == [], [str(f) for f in rep.findings]
    assert rep.version == "2.1"
    (lc,) = rep.layers
    assert (lc.stored_entries, lc.fillers) == (base_layer().n_entries, base_layer().n_fillers)


# ---------------------------------------------------------------- byte-level rules
def test_truncated_member(base, tmp_path):
    v = member(base, L0 + "v.npy")
    out = rebuild(base, tmp_path / "t.eie", replace={L0 + "v.npy": v[:-1]})
    rep = validate_container(out)
    assert rep.codes() == {"STREAM-TRUNCATED"}
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "STREAM-TRUNCATED"


def test_trailing_bytes_in_member(base, tmp_path):
    v = member(base, L0 + "v.npy")
    out = rebuild(base, tmp_path / "t.eie", replace={L0 + "v.npy": v + b"\x00"})
    assert codes_of(out) == {"STREAM-TRAILING-BYTES"}


def test_trailing_bytes_after_archive(base, tmp_path):
    out = tmp_path / "t.eie"
    out.write_bytes(base.read_bytes() + b"junk")
    assert codes_of(out) == {"STREAM-TRAILING-BYTES"}
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "STREAM-TRAILING-BYTES"


def test_crc_error(base, tmp_path):
    out = rebuild(base, tmp_path / "s.eie", stored=True)
    raw = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo(L0 + "z.npy")
    fname_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    data_at = info.header_offset + 30 + fname_len + extra_len
    raw[data_at + info.file_size - 1] ^= 0x01  # last z value: same size, wrong CRC
    out.write_bytes(bytes(raw))
    rep = validate_container(out)
    assert rep.codes() == {"CONTAINER-CRC"}
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "CONTAINER-CRC"


def test_member_missing_and_unknown(base, tmp_path):
    assert codes_of(rebuild(base, tmp_path / "m.eie", drop={L0 + "packed.npy"})) == {"CONTAINER-MEMBER-MISSING"}
    rep = validate_container(rebuild(base, tmp_path / "u.eie", add={"notes.txt": b"hello"}))
    assert rep.codes() == {"CONTAINER-MEMBER-UNKNOWN"} and rep.conformant()
    load_network(tmp_path / "u.eie")  # a warning does not stop a load


def test_member_unsupported_compression(base, tmp_path):
    out = tmp_path / "b.eie"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for i in src.infolist():
            dst.writestr(i.filename, src.read(i),
                         compress_type=zipfile.ZIP_BZIP2 if i.filename == L0 + "z.npy" else zipfile.ZIP_DEFLATED)
    assert codes_of(out) == {"CONTAINER-MEMBER-UNSUPPORTED"}


def test_member_name_twice(base, tmp_path):
    with pytest.warns(UserWarning):
        out = rebuild(base, tmp_path / "d.eie", add={L0 + "z.npy": member(base, L0 + "z.npy")})
    assert codes_of(out) == {"CONTAINER-MEMBER-UNSUPPORTED"}


_CD_COMPRESSED_SIZE = 20  # offsets of the size fields in a ZIP central-directory record
_CD_UNCOMPRESSED_SIZE = 24


def _patch_central(path: Path, name: str, field: int, size: int) -> None:
    """Overwrite one 32-bit size field of member ``name``'s central-directory record."""
    raw = bytearray(path.read_bytes())
    key = name.encode()
    at = 0
    while True:
        at = raw.index(b"PK\x01\x02", at)
        n = struct.unpack("<H", raw[at + 28: at + 30])[0]
        if bytes(raw[at + 46: at + 46 + n]) == key:
            raw[at + field: at + field + 4] = struct.pack("<I", size)
            break
        at += 4
    path.write_bytes(bytes(raw))


def test_zip_bomb_declared_size_refused_before_decompression(base, tmp_path):
    out = rebuild(base, tmp_path / "bomb.eie")
    _patch_central(out, L0 + "v.npy", _CD_UNCOMPRESSED_SIZE, 0xFFFFFFF0)  # ~4 GiB from a few bytes
    tracemalloc.start()
    try:
        rep = validate_container(out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "CONTAINER-SIZE-ABSURD" in rep.codes()
    assert rep.codes() <= {"CONTAINER-SIZE-ABSURD"}
    assert peak < 20e6
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "CONTAINER-SIZE-ABSURD"


def test_lying_compressed_size_refused_before_reading(base, tmp_path):
    """Found by fuzzing: a 2 GiB compressed size made zipfile request 2 GiB from the OS at once."""
    out = rebuild(base, tmp_path / "lie.eie")
    _patch_central(out, L0 + "z.npy", _CD_COMPRESSED_SIZE, 0x7FFFFFFF)
    tracemalloc.start()
    try:
        rep = validate_container(out)
        with pytest.raises(EieFormatError) as ei:
            load_network(out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.codes() == {"CONTAINER-SIZE-ABSURD"} and ei.value.code == "CONTAINER-SIZE-ABSURD"
    assert peak < 20e6


def test_real_bomb_member_refused_by_declared_shape(base, tmp_path):
    big = npy(np.zeros(20_000_000, dtype=np.uint8))  # 20 MB of zeros, ~20 kB deflated
    out = rebuild(base, tmp_path / "bomb2.eie", replace={L0 + "v.npy": big})
    tracemalloc.start()
    try:
        rep = validate_container(out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.codes() == {"STREAM-TRAILING-BYTES"}
    assert peak < 10e6  # refused from the directory entry, never decompressed


def test_npy_header_disagrees(base, tmp_path):
    v = arr(base, L0 + "v.npy")
    out = rebuild(base, tmp_path / "h.eie", replace={L0 + "v.npy": npy(v.astype(np.int8))})
    assert codes_of(out) == {"CONTAINER-NPY-HEADER"}
    out = rebuild(base, tmp_path / "h2.eie", replace={L0 + "v.npy": b"not an npy" + bytes(v.size)})
    assert codes_of(out) == {"CONTAINER-NPY-HEADER"}


def test_pickled_member_is_never_unpickled(base, tmp_path):
    import pickle

    flag = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (flag,))

    payload = pickle.dumps(np.array([Evil()], dtype=object))
    hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(118) + "\n"
    member_bytes = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + payload
    out = rebuild(base, tmp_path / "p.eie", replace={L0 + "v.npy": member_bytes})
    rep = validate_container(out)
    assert rep.codes() <= {"CONTAINER-NPY-HEADER", "STREAM-TRUNCATED", "STREAM-TRAILING-BYTES"}
    assert not rep.conformant()
    with pytest.raises(EieFormatError):
        load_network(out)
    assert not flag.exists()


# ---------------------------------------------------------------- manifest rules
def test_newer_minor_is_read_with_a_warning(base, tmp_path):
    def edit(m):
        m["minor_version"] = 7
        m["future_field"] = {"x": 1}
        m["layers"][0]["future_layer_field"] = 3

    out = rebuild(base, tmp_path / "n.eie", manifest=edit)
    rep = validate_container(out)
    assert rep.codes() == {"CONTAINER-NEWER-MINOR"} and rep.conformant() and not rep.conformant(strict=True)
    assert rep.version == "2.7"
    assert load_network(out).layers[0].n_entries == base_layer().n_entries


def test_newer_major_and_other_format_are_fatal(base, tmp_path):
    for edit, code in ((lambda m: m.update(version=3), "CONTAINER-VERSION"),
                       (lambda m: m.update(format="other"), "CONTAINER-VERSION")):
        out = rebuild(base, tmp_path / "v.eie", manifest=edit)
        with pytest.raises(EieFormatError) as ei:
            validate_container(out)
        assert ei.value.code == code
        with pytest.raises(EieFormatError) as ei:
            load_network(out)
        assert ei.value.code == code


def test_not_a_container_is_fatal(tmp_path):
    p = tmp_path / "x.eie"
    p.write_bytes(b"hello")
    with pytest.raises(EieFormatError) as ei:
        validate_container(p)
    assert ei.value.code == "CONTAINER-UNREADABLE"
    with pytest.raises(EieFormatError) as ei:
        validate_container(tmp_path / "missing.eie")
    assert ei.value.code == "CONTAINER-UNREADABLE"


def test_meta_missing(base, tmp_path):
    out = rebuild(base, tmp_path / "m.eie", manifest=lambda m: m["layers"][0].pop("n_pe"))
    assert codes_of(out) == {"META-MISSING"}


def test_meta_inconsistent_counts(base, tmp_path):
    out = rebuild(base, tmp_path / "c.eie", manifest=lambda m: m["layers"][0].update(n_fillers=99))
    rep = validate_container(out)
    assert rep.codes() == {"META-INCONSISTENT"} and "n_fillers" in rep.findings[0].message


def test_meta_inconsistent_bias_handling(base, tmp_path):
    out = rebuild(base, tmp_path / "c.eie", manifest=lambda m: m["layers"][0].update(bias_handling="none"))
    assert codes_of(out) == {"META-INCONSISTENT"}


def test_meta_unknown_field(base, tmp_path):
    out = rebuild(base, tmp_path / "u.eie", manifest=lambda m: m["layers"][0].update(colour="red"))
    rep = validate_container(out)
    assert rep.codes() == {"META-UNKNOWN-FIELD"} and "colour" in rep.findings[0].message


def test_ptr_width(base, tmp_path):
    out = rebuild(base, tmp_path / "w.eie", manifest=lambda m: m["layers"][0].update(pointer_bits=2))
    rep = validate_container(out)
    assert rep.codes() == {"PTR-WIDTH"}
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "PTR-WIDTH"


def test_ptr_short_declared(base, tmp_path):
    p = arr(base, L0 + "ptr.npy")[:, :-1]

    def edit(m):
        m["layers"][0]["arrays"]["ptr"]["shape"] = list(p.shape)

    out = rebuild(base, tmp_path / "s.eie", manifest=edit, replace={L0 + "ptr.npy": npy(p)})
    assert codes_of(out) == {"PTR-SHORT"}


def test_codebook_rules_in_container(base, tmp_path):
    cb = arr(base, L0 + "codebook.npy").copy()
    cb[0] = -0.0
    out = rebuild(base, tmp_path / "z.eie", replace={L0 + "codebook.npy": npy(cb)})
    assert codes_of(out) == {"CODEBOOK-ZERO-NOT-POSITIVE-ZERO"}
    cb = arr(base, L0 + "codebook.npy").copy()
    cb[2] = np.nan
    out = rebuild(base, tmp_path / "n.eie", replace={L0 + "codebook.npy": npy(cb)})
    assert codes_of(out) == {"FLOAT-NONFINITE"}


def test_fixed_range(tmp_path):
    p = tmp_path / "f.eie"
    save_network(p, [base_layer()], fixed_point={"total_bits": 16, "act_frac_bits": 8, "weight_frac_bits": 15})
    assert codes_of(p) == {"FIXED-RANGE"}  # codebook value 1.0 does not fit Q0.15
    save_network(p, [base_layer()], fixed_point={"total_bits": 16, "act_frac_bits": 8, "weight_frac_bits": 12})
    assert codes_of(p) == set()


# ---------------------------------------------------------------- entry representations
def test_packed_mismatch(base, tmp_path):
    pk = arr(base, L0 + "packed.npy").copy()
    pk[0] ^= 0x10
    out = rebuild(base, tmp_path / "p.eie", replace={L0 + "packed.npy": npy(pk)})
    rep = validate_container(out)
    assert rep.codes() == {"PACKED-MISMATCH"} and rep.findings[0].entry == 0


def test_packed_layout_is_v_high_nibble(base):
    lay = base_layer()
    pk = arr(base, L0 + "packed.npy")
    assert np.array_equal(pk >> 2, lay.v) and np.array_equal(pk & 3, lay.z)


def _huff(base, sym):
    return arr(base, L0 + f"huffman/{sym}_lengths.npy"), arr(base, L0 + f"huffman/{sym}_payload.npy")


def test_huffman_kraft(base, tmp_path):
    lens, _ = _huff(base, "v")
    bad = np.ones_like(lens)  # four 1-bit codes: Kraft sum 2
    out = rebuild(base, tmp_path / "k.eie", replace={L0 + "huffman/v_lengths.npy": npy(bad)})
    rep = validate_container(out)
    assert rep.codes() == {"HUFFMAN-KRAFT"}
    assert "Kraft sum" in rep.findings[0].message


def test_huffman_length_limit(base, tmp_path):
    lens, _ = _huff(base, "z")
    bad = lens.copy()
    bad[np.argmax(bad)] = 40
    out = rebuild(base, tmp_path / "l.eie", replace={L0 + "huffman/z_lengths.npy": npy(bad)})
    assert codes_of(out) == {"HUFFMAN-LENGTHS"}


def test_huffman_pad_bits(base, tmp_path):
    m = json.loads(member(base, "manifest.json"))
    sym = next(k for k in ("v", "z") if m["layers"][0]["huffman"][k]["n_bits"] % 8)
    _, pay = _huff(base, sym)
    p2 = pay.copy()
    p2[-1] |= 1  # the last pad bit
    out = rebuild(base, tmp_path / "p.eie", replace={L0 + f"huffman/{sym}_payload.npy": npy(p2)})
    assert codes_of(out) == {"HUFFMAN-PAD"}
    p3 = np.append(pay, np.uint8(0))  # a whole extra byte: 8 + pad bits

    def edit(mm):
        mm["layers"][0]["huffman"][sym]["payload"]["shape"] = [p3.size]

    out = rebuild(base, tmp_path / "p2.eie", manifest=edit, replace={L0 + f"huffman/{sym}_payload.npy": npy(p3)})
    assert codes_of(out) == {"HUFFMAN-PAD"}


def test_huffman_decode(base, tmp_path):
    _, pay = _huff(base, "v")
    p2 = pay[:-1]

    def edit(m):
        h = m["layers"][0]["huffman"]["v"]
        h["n_bits"] -= 8
        h["payload"]["shape"] = [p2.size]

    out = rebuild(base, tmp_path / "d.eie", manifest=edit, replace={L0 + "huffman/v_payload.npy": npy(p2)})
    assert codes_of(out) == {"HUFFMAN-DECODE"}


def test_huffman_mismatch(base, tmp_path):
    lay = base_layer()
    v2 = lay.v.copy()
    v2[[0, 5]] = v2[[5, 0]] if v2[0] != v2[5] else (2, 3)
    s = encode(v2, 4)

    def edit(m):
        h = m["layers"][0]["huffman"]["v"]
        h["n_bits"] = s.n_bits
        h["payload"]["shape"] = [len(s.payload)]

    out = rebuild(base, tmp_path / "mm.eie", manifest=edit, replace={
        L0 + "huffman/v_lengths.npy": npy(s.code_lengths.astype(np.uint8)),
        L0 + "huffman/v_payload.npy": npy(np.frombuffer(s.payload, np.uint8))})
    assert codes_of(out) == {"HUFFMAN-MISMATCH"}


def test_huffman_only_container_checks_its_decoded_entries(tmp_path):
    p = tmp_path / "h.eie"
    save_network(p, [base_layer()], huffman=True, store_vz=False)
    assert validate_container(p).findings == []
    assert isinstance(HuffmanStream, type)


# ---------------------------------------------------------------- entries inside the container
def test_entry_rules_reach_through_the_container(base, tmp_path):
    z = arr(base, L0 + "z.npy").copy()
    assert z[1] == 3 and arr(base, L0 + "v.npy")[1] == 0
    z[1] = 2  # non-canonical filler (PE 0, column 0, entry 1)
    pk = (arr(base, L0 + "v.npy") << 2) | z
    huff = {L0 + f"huffman/{s}_{k}.npy" for s in "vz" for k in ("lengths", "payload")}
    out = rebuild(base, tmp_path / "e.eie", replace={L0 + "z.npy": npy(z), L0 + "packed.npy": npy(pk)},
                  manifest=lambda m: m["layers"][0].pop("huffman"), drop=huff)
    rep = validate_container(out)
    assert rep.codes() == {"RELIDX-FILLER-NONCANONICAL"}
    f = rep.findings[0]
    assert (f.layer, f.pe, f.column, f.entry) == (0, 0, 0, 1)


def test_slack_in_container(base, tmp_path):
    v = np.append(arr(base, L0 + "v.npy"), np.uint8(1))
    z = np.append(arr(base, L0 + "z.npy"), np.uint8(0))

    def edit(m):
        l0 = m["layers"][0]
        l0.pop("huffman")
        l0["arrays"].pop("packed")
        l0.pop("packed_layout")
        for k in ("v", "z"):
            l0["arrays"][k]["shape"] = [v.size]
        l0["n_entries"] += 1
        l0["n_nonzeros"] += 1

    out = rebuild(base, tmp_path / "s.eie", manifest=edit, drop={L0 + "packed.npy", L0 + "huffman/v_lengths.npy",
                  L0 + "huffman/v_payload.npy", L0 + "huffman/z_lengths.npy", L0 + "huffman/z_payload.npy"},
                  replace={L0 + "v.npy": npy(v), L0 + "z.npy": npy(z)})
    rep = validate_container(out)
    assert rep.codes() == {"PTR-SLACK"}
    with pytest.raises(EieFormatError) as ei:
        load_network(out)
    assert ei.value.code == "PTR-SLACK"


def test_every_container_code_is_in_the_rule_table():
    import re

    src = Path(__file__).resolve().parents[2] / "eiesim" / "format" / "container.py"
    used = set(re.findall(r'"([A-Z]+(?:-[A-Z0-9]+)+)"', src.read_text()))
    from eiesim.format.validate import FATAL_CODES

    assert used - {"PK"} <= set(RULES) | set(FATAL_CODES), used - set(RULES) - set(FATAL_CODES)


def test_validate_dispatch_detects_container(base):
    assert validate(base).kind == "eie"


# ---------------------------------------------------------------- Huffman: fast match == decode
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eiesim.format.validate import ValidationReport, _check_huffman, _Collector, _huffman_matches  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 15), max_size=300), st.integers(0, 10**6), st.sampled_from(["none", "flip", "swap"]))
def test_huffman_match_agrees_with_decode(symbols, seed, corrupt):
    from eiesim.format.huffman import decode

    x = np.array(symbols, dtype=np.int64)
    s = encode(x, 16)
    rng = np.random.default_rng(seed)
    ref = x.copy()
    if corrupt == "flip" and s.payload:
        pay = bytearray(s.payload)
        pay[rng.integers(len(pay))] ^= 1 << int(rng.integers(8))
        s = HuffmanStream(16, s.code_lengths, s.n_symbols, s.n_bits, bytes(pay))
    elif corrupt == "swap" and x.size:
        ref[rng.integers(x.size)] = rng.integers(16)
    try:
        ok_decode = bool(np.array_equal(decode(s), ref))
    except EieFormatError:
        ok_decode = False
    framing = _check_huffman(_Collector(ValidationReport("t", "eie", "full")), s, "v")
    assert (framing and _huffman_matches(s, ref)) == ok_decode


def test_one_symbol_alphabet_round_trips(tmp_path):
    lay = CompressedLayer.from_codes(np.eye(6, 5, dtype=int) * 2, CB, 8, code_bits=2, index_bits=2)
    assert set(lay.z.tolist()) == {0}  # every z is 0: a one-symbol stream (1-bit code)
    p = tmp_path / "one.eie"
    save_network(p, [lay], huffman=True, store_vz=False)
    back = load_network(p).layers[0]
    assert np.array_equal(back.z, lay.z) and np.array_equal(back.v, lay.v)
    assert validate_container(p).codes() <= {"CODEBOOK-UNUSED"}


def test_validate_counts_weight_nonzeros_without_the_bias(tmp_path):
    """Issue 9: one definition of non-zeros (W's, bias column excluded) in inspect, validate and simulate."""
    from importlib import resources

    from eiesim.format.validate import validate

    rep = validate(str(resources.files("eiesim.traces") / "lenet300100.eie"))
    assert [l.real_nonzeros for l in rep.layers] == [18_816, 2_700, 260]
    assert [l.bias_nonzeros for l in rep.layers] == [300, 100, 10]
    assert all(l.stored_entries == l.fillers + l.bias_nonzeros + l.real_nonzeros for l in rep.layers)


# ---------------------------------------------------------------- one read: load + full validation
def _packed_flipped(base, tmp_path):
    pk = arr(base, L0 + "packed.npy").copy()
    pk[0] ^= 0x10
    return rebuild(base, tmp_path / "p.eie", replace={L0 + "packed.npy": npy(pk)})


@pytest.mark.parametrize("make, codes", [
    (lambda base, tmp: base, set()),
    (lambda base, tmp: rebuild(base, tmp / "c.eie", manifest=lambda m: m["layers"][0].update(n_fillers=99)),
     {"META-INCONSISTENT"}),
    (_packed_flipped, {"PACKED-MISMATCH"}),
    (lambda base, tmp: rebuild(base, tmp / "n.eie", manifest=lambda m: m.update(minor_version=7)),
     {"CONTAINER-NEWER-MINOR"}),
])
def test_load_network_validated_is_load_then_validate(base, tmp_path, make, codes):
    """Issue 11: one read gives what load_network + validate_container(level="full") give, finding by finding."""
    from eiesim.format.validate import load_network_validated

    path = make(base, tmp_path)
    net, rep = load_network_validated(path)
    ref_net, ref_rep = load_network(path), validate_container(path, level="full")
    assert rep.codes() == codes and rep.to_dict() == ref_rep.to_dict()
    assert [str(f) for f in rep.findings] == [str(f) for f in ref_rep.findings]
    (a,), (b,) = net.layers, ref_net.layers
    for key in ("ptr", "v", "z", "codebook"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    assert (a.shape, a.n_pe, a.has_bias, a.name, net.activation) == (b.shape, b.n_pe, b.has_bias, b.name,
                                                                      ref_net.activation)


def test_load_network_validated_raises_as_load_network(base, tmp_path):
    from eiesim.format.validate import load_network_validated

    out = rebuild(base, tmp_path / "m.eie", drop={L0 + "ptr.npy"})
    with pytest.raises(EieFormatError) as ref:
        load_network(out)
    with pytest.raises(EieFormatError) as got:
        load_network_validated(out)
    assert (str(got.value), got.value.code) == (str(ref.value), ref.value.code)
