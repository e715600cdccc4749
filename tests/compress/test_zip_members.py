"""Issue 10 T1/F2/F3/F4: the one ZIP member reader and the bounded ``.pth`` tensor views.

Every hostile file here is written by hand (the pickle opcode by opcode, the
archive with :mod:`zipfile`, then bytes patched), so each test states exactly
which byte is wrong.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim._io import load_npz_arrays, load_npz_members
from eiesim.cli import main
from eiesim.errors import EieFormatError, EieInputError
from eiesim.workloads.models import load_model, load_torch_state_dict


# --------------------------------------------------------------------------- hand-written torch pickles
def _u(text: str) -> bytes:
    """BINUNICODE opcode."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(v: int) -> bytes:
    """BININT1 / BININT2 / BININT opcode."""
    if v < 256:
        return b"K" + bytes([v])
    if v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _tuple(items) -> bytes:
    return b"(" + b"".join(_int(i) for i in items) + b"t"


def _tensor(key: str, numel: int, offset: int, size, stride) -> bytes:
    """``torch._utils._rebuild_tensor_v2(<FloatStorage key>, offset, size, stride, False, OrderedDict())``."""
    pid = b"(" + _u("storage") + b"ctorch\nFloatStorage\n" + _u(key) + _u("cpu") + _int(numel) + b"tQ"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + _int(offset) + _tuple(size) + _tuple(stride)
            + b"\x89ccollections\nOrderedDict\n)Rt" + b"R")


def _state_dict_pickle(tensors) -> bytes:
    """Protocol-2 pickle of ``OrderedDict(name -> tensor)``; ``tensors`` is ``[(name, key, numel, off, size, stride)]``."""
    body = b"\x80\x02ccollections\nOrderedDict\n)R"
    for name, key, numel, off, size, stride in tensors:
        body += _u(name) + _tensor(key, numel, off, size, stride) + b"s"
    return body + b"."


def write_pth(path, tensors, storages, *, compress=False) -> None:
    """A torch-style zip: ``archive/data.pkl``, ``archive/byteorder``, ``archive/data/<key>``."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        zf.writestr("archive/data.pkl", _state_dict_pickle(tensors))
        zf.writestr("archive/byteorder", b"little")
        for key, values in storages.items():
            zf.writestr(f"archive/data/{key}", np.asarray(values, "<f4").tobytes())


def stride0_pth(path, n: int) -> None:
    """The issue's reproducer: ``fc.weight`` (n, n) with stride (0, 0) over a one-element storage."""
    write_pth(path, [("fc.weight", "0", 1, 0, (n, n), (0, 0))], {"0": [1.5]})


def test_hand_written_pickle_reads_like_torch(tmp_path):
    """The builder is right: contiguous, transposed and offset views give numpy's strided values."""
    s = np.arange(12, dtype=np.float32)
    p = tmp_path / "ok.pth"
    write_pth(p, [("a.weight", "0", 12, 0, (3, 4), (4, 1)),
                  ("b.weight", "0", 12, 0, (4, 3), (1, 4)),  # a transposed view of the same storage
                  ("c.bias", "0", 12, 8, (4,), (1,))], {"0": s})
    t = load_torch_state_dict(p)
    assert list(t) == ["a.weight", "b.weight", "c.bias"]
    np.testing.assert_array_equal(t["a.weight"], s.reshape(3, 4))
    np.testing.assert_array_equal(t["b.weight"], s.reshape(3, 4).T)
    np.testing.assert_array_equal(t["c.bias"], [8, 9, 10, 11])


_CHILD = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    from eiesim.workloads.models import load_torch_state_dict
    cap = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    tracemalloc.start()
    try:
        load_torch_state_dict(sys.argv[1])
        out = {"type": None, "msg": ""}
    except BaseException as exc:
        out = {"type": type(exc).__name__, "msg": str(exc)}
    out["peak"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(out))
""")


@pytest.mark.parametrize("n", [60_000, 20_000])
def test_stride0_pth_refused_before_allocating(tmp_path, n):
    """T1 (n = 60,000: 13.4 GiB asked of a 533-byte file) and F3 (n = 20,000: 3.6 GB peak) of issue 10.

    Run in a child under a 1 GiB address-space cap: the old reader died there
    with a MemoryError; now a typed error names the strides and the peak of
    Python-traced memory stays under 16 MiB (about 1.5 MB measured, imports included).
    """
    p = tmp_path / f"stride0_{n}.pth"
    stride0_pth(p, n)
    assert os.path.getsize(p) < 700
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _CHILD, str(p)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["type"] == "EieInputError", out
    assert "reads storage elements more than once" in out["msg"] and str(p) in out["msg"], out
    assert out["peak"] < 16 << 20, out  # the old reader asked for 1.6 GB (n = 20,000) and 14.4 GB


def test_overlapping_strides_refused(tmp_path):
    """A (4, 3) view with strides (1, 2) stays inside a 12-element storage but reads elements twice."""
    p = tmp_path / "overlap.pth"
    write_pth(p, [("fc.weight", "0", 12, 0, (4, 3), (1, 2))], {"0": np.arange(12)})
    with pytest.raises(EieInputError, match="more than once"):
        load_torch_state_dict(p)


def test_total_output_bounded_by_file_size(tmp_path):
    """Tied copies of one storage: 4 full views fit the budget (4 x file size), 6 do not."""
    from eiesim.workloads.models import MAX_OUTPUT_PER_FILE_BYTE

    n = 1 << 18  # 1 MiB of float32
    views = [(f"l{i}.weight", "0", n, 0, (512, 512), (512, 1)) for i in range(6)]
    p_ok, p_bad = tmp_path / "tied4.pth", tmp_path / "tied6.pth"
    write_pth(p_ok, views[:4], {"0": np.zeros(n)})
    write_pth(p_bad, views, {"0": np.zeros(n)})
    assert MAX_OUTPUT_PER_FILE_BYTE == 4
    assert len(load_torch_state_dict(p_ok)) == 4
    with pytest.raises(EieInputError, match="budget"):
        load_torch_state_dict(p_bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7)), min_size=1, max_size=3), st.integers(0, 3))
def test_accepted_views_never_read_an_element_twice(dims, offset):
    """Property: a view :func:`_check_view` accepts reads distinct storage elements, all in range."""
    from eiesim.workloads.models import _check_view

    size = tuple(d[0] for d in dims)
    stride = tuple(d[1] for d in dims)
    n_storage = 64
    try:
        numel = _check_view(size, stride, offset, n_storage, 4)
    except EieInputError:
        return
    idx = np.full(size, offset, dtype=np.int64)
    for axis, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[axis] = n
        idx = idx + (np.arange(n) * s).reshape(shape)
    assert numel == idx.size
    assert len(np.unique(idx)) == idx.size
    assert idx.size == 0 or idx.max() < n_storage


# --------------------------------------------------------------------------- damaged members (F2)
def _central_entry(raw: bytes, name: str) -> int:
    """Offset of the central-directory record of member ``name``."""
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        nlen = struct.unpack("<H", raw[pos + 28: pos + 30])[0]
        if raw[pos + 46: pos + 46 + nlen] == name.encode():
            return pos
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(name)


def version_255(src, dst, member: str) -> None:
    """Set the member's "version needed to extract" to 255 (25.5) in the central directory."""
    raw = bytearray(src.read_bytes())
    pos = _central_entry(bytes(raw), member)
    raw[pos + 6: pos + 8] = struct.pack("<H", 255)
    dst.write_bytes(bytes(raw))


def bad_deflate(src, dst, member: str) -> None:
    """Overwrite the first byte of the member's DEFLATE data with 0xff (block type 3: invalid)."""
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(member)
    nlen, elen = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    raw[info.header_offset + 30 + nlen + elen] = 0xFF
    dst.write_bytes(bytes(raw))


def bad_crc(src, dst, member: str) -> None:
    """Flip the last data byte of a stored member: the CRC-32 no longer matches."""
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(member)
    nlen, elen = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    raw[info.header_offset + 30 + nlen + elen + info.compress_size - 1] ^= 0xFF
    dst.write_bytes(bytes(raw))


def _good_pth(path, compress):
    write_pth(path, [("fc.weight", "0", 12, 0, (3, 4), (4, 1)), ("fc.bias", "1", 3, 0, (3,), (1,))],
              {"0": np.arange(12) / 7, "1": [0.5, -0.5, 0.25]}, compress=compress)


@pytest.mark.parametrize("damage, compress, exc_word", [
    (version_255, False, "NotImplementedError"),
    (bad_deflate, True, "error"),
    (bad_crc, False, "CRC"),
])
def test_pth_damaged_member_is_typed_error_naming_it(tmp_path, damage, compress, exc_word):
    """F2: zipfile's NotImplementedError and zlib.error no longer escape the .pth reader."""
    good = tmp_path / "good.pth"
    _good_pth(good, compress)
    bad = tmp_path / "bad.pth"
    damage(good, bad, "archive/data/0")
    with pytest.raises(EieInputError) as ei:
        load_model(bad)
    msg = str(ei.value)
    assert msg.startswith(str(bad)) and "'archive/data/0'" in msg and exc_word in msg, msg


def _good_npz(path, compress):
    arrays = {"fc1.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
              "fc2.weight": np.ones((2, 3), np.float32)}
    (np.savez_compressed if compress else np.savez)(path, **arrays)


@pytest.mark.parametrize("damage, compress", [(version_255, False), (bad_deflate, True), (bad_crc, False)])
def test_npz_damaged_member_names_it(tmp_path, damage, compress):
    """F2: the .npz reader goes through the same member reader: the message names file and member."""
    good = tmp_path / "good.npz"
    _good_npz(good, compress)
    bad = tmp_path / "bad.npz"
    damage(good, bad, "fc2.weight.npy")
    with pytest.raises(EieInputError) as ei:
        load_model(bad)
    assert str(ei.value).startswith(str(bad)) and "'fc2.weight.npy'" in str(ei.value), str(ei.value)


def test_container_member_errors_carry_rule_codes(tmp_path):
    """The container reader's member failures come from the shared reader with their FORMAT.md codes."""
    from eiesim._io import ZipMemberError, read_zip_member

    good = tmp_path / "good.npz"
    _good_npz(good, True)
    for damage, code in ((bad_deflate, "CONTAINER-CRC"),):
        bad = tmp_path / "bad.npz"
        damage(good, bad, "fc1.weight.npy")
        with zipfile.ZipFile(bad) as zf, pytest.raises(ZipMemberError) as ei:
            read_zip_member(zf, zf.getinfo("fc1.weight.npy"))
        assert ei.value.code == code and ei.value.member == "fc1.weight.npy"
        with zipfile.ZipFile(bad) as zf, pytest.raises(EieFormatError, match=r"bad\.npz: member 'fc1.weight.npy'"):
            read_zip_member(zf, zf.getinfo("fc1.weight.npy"), path=str(bad), error=EieFormatError)


# --------------------------------------------------------------------------- F4: name damaged in the directory only
def rename_in_directory(src, dst, old: str, new: str) -> None:
    """Change a member's name in the central directory only (same length); the local header keeps ``old``."""
    assert len(old) == len(new)
    raw = bytearray(src.read_bytes())
    pos = _central_entry(bytes(raw), old)
    raw[pos + 46: pos + 46 + len(old)] = new.encode()
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("new_name", ["fc2.weight.npx", "fc2.weighT.npy"])
def test_npz_name_damaged_in_directory_is_an_error_not_a_skip(tmp_path, new_name):
    """F4: the old reader dropped 'fc2.weight' (name no longer *.npy) and returned one layer."""
    good = tmp_path / "good.npz"
    _good_npz(good, False)
    bad = tmp_path / "bad.npz"
    rename_in_directory(good, bad, "fc2.weight.npy", new_name)
    with pytest.raises(EieInputError, match=r"bad\.npz: member 'fc2\.weigh"):
        load_model(bad)
    with pytest.raises(EieInputError, match="fc2"):
        load_npz_members(bad, ["fc1.weight"], 1 << 20, error=EieInputError)
    with pytest.raises(EieFormatError, match="fc2"):
        load_npz_arrays(bad)


def test_npz_non_npy_member_refused(tmp_path):
    """numpy.savez writes only '<name>.npy'; any other member is refused, not skipped."""
    p = tmp_path / "extra.npz"
    _good_npz(p, False)
    with zipfile.ZipFile(p, "a") as zf:
        zf.writestr("notes.txt", b"hello")
    with pytest.raises(EieInputError, match="'notes.txt' is not a .npy array"):
        load_model(p)


# --------------------------------------------------------------------------- through the CLI
@pytest.fixture
def lenet_eie():
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "traces" / "lenet300100.eie"


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("damage, compress", [(version_255, False), (bad_deflate, True)])
def test_cli_compress_and_validate_reference_on_damaged_pth(tmp_path, capsys, damage, compress, lenet_eie):
    """F2 through ``compress`` and ``validate --reference``: one line naming file and member, exit 2."""
    good = tmp_path / "good.pth"
    _good_pth(good, compress)
    bad = tmp_path / "bad.pth"
    damage(good, bad, "archive/data/0")
    out = tmp_path / "o.eie"
    code, _, err = _cli(capsys, "compress", bad, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "archive/data/0" in err, err
    assert not out.exists()
    code, _, err = _cli(capsys, "validate", lenet_eie, "--reference", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "archive/data/0" in err, err


def test_cli_compress_refuses_npz_with_damaged_name(tmp_path, capsys):
    """F4 through ``compress``: the old command exited 0 and wrote a network missing 'fc2'."""
    good = tmp_path / "good.npz"
    _good_npz(good, False)
    bad = tmp_path / "bad.npz"
    rename_in_directory(good, bad, "fc2.weight.npy", "fc2.weight.npx")
    out = tmp_path / "o.eie"
    code, _, err = _cli(capsys, "compress", bad, "--out", out)
    assert code == 2 and "fc2.weight" in err, err
    assert not out.exists()


# --------------------------------------------------------------------------- the .eie container through the same reader
@pytest.mark.parametrize("damage, member, code", [
    (version_255, "layers/0/v.npy", "CONTAINER-UNREADABLE"),
    (bad_deflate, "layers/0/v.npy", "CONTAINER-CRC"),
    (bad_deflate, "manifest.json", "CONTAINER-CRC"),
])
def test_eie_damaged_member_names_it(tmp_path, lenet_eie, damage, member, code, capsys):
    """F2 for .eie: same reader, the FORMAT.md code, file and member named; validate exits 1 or 2 in one line."""
    from eiesim.format.container import load_container

    bad = tmp_path / "bad.eie"
    damage(lenet_eie, bad, member)
    with pytest.raises(EieFormatError) as ei:
        load_container(bad)
    assert ei.value.code == code and str(ei.value).startswith(str(bad)) and repr(member) in str(ei.value), ei.value
    code_, _, err = _cli(capsys, "inspect", bad)
    assert code_ == 2 and len(err.strip().splitlines()) == 1 and member in err, err
