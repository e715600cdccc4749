"""An archive whose ZIP central directory lists fewer members than it holds is refused (issue 10).

Fuzz reproducer: ``python scripts/fuzz.py --replay npz api 40`` (an 8-byte write over the
end-of-central-directory record left 0 entries and a 0-byte directory; the ``.npz`` loaded as
``{}``: a model silently without layers).
"""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from eiesim._io import check_zip_members, open_zip
from eiesim.errors import EieFormatError, EieInputError
from eiesim.workloads.models import load_model


def _two_array_npz(path, compressed=False):
    (np.savez_compressed if compressed else np.savez)(
        path, w=np.arange(12, dtype=np.float32).reshape(3, 4), b=np.ones(3, np.float32))
    return path.read_bytes()


def _set_directory(data: bytes, entries: int, size: int) -> bytes:
    """The same archive with the end-of-central-directory entry counts and directory size replaced."""
    eocd = data.rfind(b"PK\x05\x06")
    out = bytearray(data)
    struct.pack_into("<HHI", out, eocd + 8, entries, entries, size)
    return bytes(out)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_with_empty_central_directory_is_refused(tmp_path, compressed):
    p = tmp_path / "m.npz"
    p.write_bytes(_set_directory(_two_array_npz(p, compressed), 0, 0))
    with zipfile.ZipFile(p) as zf:
        assert zf.infolist() == []  # what zipfile (and numpy.load) see: no member at all
    with pytest.raises(EieInputError, match=r"lists no member, but \d+ bytes precede it.*CONTAINER-UNLISTED-DATA"):
        load_model(p)


def test_npz_with_shortened_central_directory_is_refused(tmp_path):
    p = tmp_path / "m.npz"
    data = _two_array_npz(p)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        first, cd = zf.infolist()[0], zf.start_dir
        first_cd = 46 + len(first.filename.encode()) + len(first.extra) + len(first.comment)
    eocd = data.rfind(b"PK\x05\x06")
    # the directory's second entry cut out: it now lists only 'w.npy'; b.npy's local header stays
    p.write_bytes(_set_directory(data[:cd + first_cd] + data[eocd:], 1, first_cd))
    with zipfile.ZipFile(p) as zf:
        assert [i.filename for i in zf.infolist()] == ["w.npy"]
    with pytest.raises(EieInputError, match=r"bytes \d+\.\.\d+ before the ZIP central directory are not listed"):
        load_model(p)


def test_default_error_carries_the_rule_code(tmp_path):
    p = tmp_path / "m.npz"
    p.write_bytes(_set_directory(_two_array_npz(p), 0, 0))
    with open(p, "rb") as fh, open_zip(fh, str(p)) as zf:
        with pytest.raises(EieFormatError) as ei:
            check_zip_members(zf, path=str(p))
    assert ei.value.code == "CONTAINER-UNLISTED-DATA"


class _Unseekable(io.RawIOBase):
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


@pytest.mark.parametrize("compressed", [False, True])
def test_well_formed_archives_still_load(tmp_path, compressed):
    """numpy's own archives, and a streamed one with data descriptors (flag bit 3), tile exactly."""
    p = tmp_path / "m.npz"
    _two_array_npz(p, compressed)
    got = load_model(p)
    assert list(got) == ["w", "b"] and got["w"][2, 3] == 11.0
    s = _Unseekable()
    with zipfile.ZipFile(s, "w", compression=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as zf:
        for name, a in (("w", np.eye(3, dtype=np.float32)), ("b", np.zeros(3, np.float32))):
            with zf.open(f"{name}.npy", "w") as f:
                np.save(f, a)
    q = tmp_path / "streamed.npz"
    q.write_bytes(bytes(s.buf))
    with zipfile.ZipFile(q) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())
    got = load_model(q)
    assert list(got) == ["w", "b"] and np.array_equal(got["w"], np.eye(3))


def test_empty_model_is_refused(tmp_path):
    p = tmp_path / "empty.npz"
    np.savez(p)  # a valid archive with no arrays at all
    with pytest.raises(EieInputError, match="holds no tensors"):
        load_model(p)


def test_npz_with_a_prefix_of_local_headers_is_refused(tmp_path):
    """Fuzz reproducer ``--seed 8 --replay npz api 852``: copies of the archive (one with a damaged
    member name) before the real one; zipfile skips the prefix and read 4 of the 5 names present."""
    p = tmp_path / "m.npz"
    data = _two_array_npz(p)
    p.write_bytes(data.replace(b"b.npy", b"c.npy") + data)
    with zipfile.ZipFile(p) as zf:
        assert [i.filename for i in zf.infolist()] == ["w.npy", "b.npy"]
    with pytest.raises(EieInputError, match=r"bytes 0\.\.\d+ before member 'w.npy' are not listed"):
        load_model(p)
