"""Model readers: .npz, safetensors, and PyTorch zip checkpoints read without torch.

The ``.pth`` files are crafted here by hand (torch is not installed): a stand-in
``torch`` module is put in ``sys.modules`` only while pickling, so the pickle
names ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` exactly as
``torch.save`` does; it is removed again before anything is read.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from eiesim.errors import EieInputError
from eiesim.workloads.models import (
    load_model, load_npz, load_safetensors, load_torch_state_dict, select_layers,
)

_STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
                  np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("uint16"): "BFloat16Storage"}


def _fake_torch_modules():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - never called
        raise AssertionError

    def _rebuild_parameter(*args):  # pragma: no cover - never called
        raise AssertionError

    for f in (_rebuild_tensor_v2, _rebuild_parameter):
        f.__module__, f.__qualname__ = "torch._utils", f.__name__
        setattr(utils, f.__name__, f)
    for name in set(_STORAGE_NAMES.values()):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


class _Stor:
    def __init__(self, key, arr):
        self.key, self.arr = key, arr


class _Tensor:
    def __init__(self, stor, offset, size, stride, mods, param=False):
        self.args = (stor, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
        self.mods, self.param = mods, param

    def __reduce__(self):
        f = self.mods["torch._utils"]._rebuild_tensor_v2
        if self.param:
            inner = _Tensor(*self.args[:4], self.mods)
            return (self.mods["torch._utils"]._rebuild_parameter, (inner, False, collections.OrderedDict()))
        return (f, self.args)


def write_pth(path, tensors, *, transpose=(), params=(), legacy=False, extra=None):
    """Write ``{name: array}`` as torch.save would (zip, data.pkl + data/<key>)."""
    mods = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    storages = []
    sd = collections.OrderedDict()
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if name in transpose:  # stored as the transpose of a contiguous buffer
            base = np.ascontiguousarray(arr.T)
            st = _Stor(str(len(storages)), base)
            t = _Tensor(st, 0, arr.shape, (1, arr.shape[0]), mods)
        else:
            base = np.ascontiguousarray(arr).ravel()
            st = _Stor(str(len(storages)), base)
            strides = tuple(int(s // arr.itemsize) for s in np.ascontiguousarray(arr).strides)
            t = _Tensor(st, 0, arr.shape, strides, mods, param=name in params)
        storages.append(st)
        sd[name] = t
    if extra:
        sd.update(extra)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Stor):
                cls = getattr(mods["torch"], _STORAGE_NAMES[obj.arr.dtype])
                return ("storage", cls, obj.key, "cpu", int(obj.arr.size))
            return None

    try:
        sys.modules.update(mods)
        buf = io.BytesIO()
        P(buf, protocol=2).dump(sd)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    if legacy:
        with open(path, "wb") as fh:
            fh.write(buf.getvalue())
        return
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        for st in storages:
            zf.writestr(f"archive/data/{st.key}", st.arr.astype(st.arr.dtype.newbyteorder("<")).tobytes())
        zf.writestr("archive/version", "3\n")


class _RunsShell:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _mlp_tensors(seed=0):
    rng = np.random.default_rng(seed)
    return collections.OrderedDict([
        ("fc1.weight", rng.standard_normal((6, 5)).astype(np.float32)),
        ("fc1.bias", rng.standard_normal(6).astype(np.float32)),
        ("fc2.weight", rng.standard_normal((3, 6)).astype(np.float32)),
        ("fc2.bias", rng.standard_normal(3).astype(np.float32)),
    ])


# --------------------------------------------------------------------------- torch


def test_pth_round_trip_without_torch(tmp_path):
    t = _mlp_tensors()
    t["steps"] = np.array([7, 8], np.int64)
    t["half"] = np.arange(4, dtype=np.float16).reshape(2, 2)
    p = tmp_path / "model.pth"
    write_pth(p, t, transpose=("fc2.weight",), params=("fc1.bias",))
    got = load_torch_state_dict(p)
    assert list(got) == list(t)
    for k in t:
        assert got[k].dtype == t[k].dtype and np.array_equal(got[k], t[k]), k
    assert "torch" not in sys.modules
    assert list(load_model(p)) == list(t)


def test_pth_bfloat16_widened(tmp_path):
    x = np.array([1.5, -2.0, 0.15625], np.float32)
    bits = (x.view(np.uint32) >> 16).astype(np.uint16)
    p = tmp_path / "bf16.pt"
    write_pth(p, {"w": bits})
    got = load_torch_state_dict(p)["w"]
    assert got.dtype == np.float32 and np.array_equal(got, x)


def test_pth_with_pickled_callable_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "it_ran"
    p = tmp_path / "evil.pth"
    write_pth(p, _mlp_tensors(), extra={"payload": _RunsShell(f"touch {marker}")})
    with pytest.raises(EieInputError, match=r"system.*refusing"):
        load_torch_state_dict(p)
    assert not marker.exists()
    # the same payload as the whole pickle, and via builtins.eval
    for obj in (_RunsShell(f"touch {marker}"),):
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        with pytest.raises(EieInputError, match="refusing"):
            load_torch_state_dict(p)
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print(1/0)\x85R.")
    with pytest.raises(EieInputError, match="builtins.eval"):
        load_torch_state_dict(p)
    assert not marker.exists()


def test_pth_bad_storages_are_typed_errors(tmp_path):
    p = tmp_path / "m.pth"
    write_pth(p, {"w": np.ones((2, 3), np.float32)})
    raw = {n: zipfile.ZipFile(p).read(n) for n in zipfile.ZipFile(p).namelist()}
    # storage member missing
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in raw.items():
            if n != "archive/data/0":
                zf.writestr(n, b)
    with pytest.raises(EieInputError, match="missing"):
        load_torch_state_dict(p)
    # storage of the wrong size
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in raw.items():
            zf.writestr(n, b[:-4] if n == "archive/data/0" else b)
    with pytest.raises(EieInputError, match="need 24"):
        load_torch_state_dict(p)
    # a tensor reading past its storage
    q = tmp_path / "oob.pth"
    write_pth(q, {"w": np.ones((2, 3), np.float32)}, transpose=("w",))
    data = zipfile.ZipFile(q).read("archive/data.pkl")
    raw = {n: zipfile.ZipFile(q).read(n) for n in zipfile.ZipFile(q).namelist()}
    with zipfile.ZipFile(q, "w") as zf:
        for n, b in raw.items():
            zf.writestr(n, data.replace(b"K\x02K\x03", b"K\x05K\x03") if n.endswith("data.pkl") else b)
    with pytest.raises(EieInputError, match="reads element 8 of a storage of 6"):
        load_torch_state_dict(q)


def test_legacy_and_non_models_refused(tmp_path):
    p = tmp_path / "old.pth"
    write_pth(p, _mlp_tensors(), legacy=True)
    with pytest.raises(EieInputError, match="legacy"):
        load_torch_state_dict(p)
    q = tmp_path / "x.pth"
    q.write_bytes(b"hello")
    with pytest.raises(EieInputError, match="not a PyTorch"):
        load_torch_state_dict(q)
    with pytest.raises(EieInputError, match="unknown model format"):
        load_model(tmp_path / "model.onnx")
    with pytest.raises(EieInputError, match="no such file"):
        load_torch_state_dict(tmp_path / "missing.pth")


# --------------------------------------------------------------------------- npz / safetensors


def test_npz_reader_order_and_no_pickle(tmp_path):
    t = _mlp_tensors()
    p = tmp_path / "m.npz"
    np.savez(p, **t)
    got = load_npz(p)
    assert list(got) == list(t) and all(np.array_equal(got[k], t[k]) for k in t)
    bad = tmp_path / "obj.npz"
    np.savez(bad, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(EieInputError, match="obj.npz"):
        load_npz(bad)
    single = tmp_path / "single.npz"
    with open(single, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(EieInputError, match="single .npy array"):
        load_npz(single)


def test_safetensors_reader(tmp_path):
    from safetensors.numpy import save_file

    t = _mlp_tensors(1)
    p = tmp_path / "m.safetensors"
    save_file(dict(t), str(p))
    got = load_safetensors(p)
    assert set(got) == set(t) and all(np.array_equal(got[k], t[k]) for k in t)
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(EieInputError, match="bad.safetensors"):
        load_safetensors(tmp_path / "bad.safetensors")


def test_select_layers_defaults_names_and_bias_matching():
    t = _mlp_tensors()
    t["emb"] = np.zeros((4, 2), np.int64)  # 2-D but not float: skipped by default
    sel = select_layers(t)
    assert [(n, bn) for n, _, _, bn in sel] == [("fc1.weight", "fc1.bias"), ("fc2.weight", "fc2.bias")]
    sel = select_layers(t, ["fc2.weight"])
    assert sel[0][0] == "fc2.weight" and sel[0][2].shape == (3,)
    with pytest.raises(EieInputError, match="no array named"):
        select_layers(t, ["fc9.weight"])
    with pytest.raises(EieInputError, match="not a 2-D float"):
        select_layers(t, ["fc1.bias"])
    t["fc1.bias"] = np.zeros(5, np.float32)
    with pytest.raises(EieInputError, match="fc1.bias"):
        select_layers(t)
