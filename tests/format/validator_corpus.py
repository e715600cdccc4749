"""A seeded corpus of (mostly broken) per-PE layouts and the validator's findings on it.

Used by ``test_validator_golden.py``: the findings recorded from the code before the format rules
moved into one checker (issue 16 §1) are the expected values, so a refactor of the rule code cannot
change a code, a severity, a count, a location or a message without a test failing. Regenerate the
golden file only for an intended change of the rules::

    python -m tests.format.validator_corpus > tests/format/data/validator_golden.json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from eiesim.errors import EieFormatError
from eiesim.format import CompressedLayer, write_dump
from eiesim.format.validate import validate_arrays, validate_container, validate_dump

GOLDEN = Path(__file__).with_name("data") / "validator_golden.json"
TRACES = Path(__file__).resolve().parents[2] / "traces"
SHARED = Path(os.environ.get("EIESIM_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
N_SEEDS = 120


def _random_layer(rng: np.random.Generator) -> CompressedLayer:
    n_out, n_in, n_pe = int(rng.integers(1, 40)), int(rng.integers(1, 7)), int(rng.integers(1, 6))
    code_bits, index_bits = int(rng.choice([2, 4])), int(rng.choice([2, 3]))
    k = 1 << code_bits
    cb = np.r_[0.0, np.round(rng.normal(size=k - 1), 3)].astype(np.float32)
    dens = float(rng.choice([0.05, 0.2, 0.5]))
    codes = np.where(rng.random((n_out, n_in)) < dens, rng.integers(1, k, (n_out, n_in)), 0)
    bias = rng.integers(0, k, n_out) if rng.random() < 0.4 else None
    return CompressedLayer.from_codes(codes, cb, n_pe, bias_codes=bias, code_bits=code_bits,
                                      index_bits=index_bits, name=f"L{n_out}x{n_in}")


def _kwargs(lay: CompressedLayer) -> dict:
    return dict(shape=lay.shape, n_pe=lay.n_pe, codebook=lay.codebook.copy(), ptr=lay.ptr.copy(),
                v=lay.v.astype(np.int64), z=lay.z.astype(np.int64), has_bias=lay.has_bias,
                code_bits=lay.code_bits, index_bits=lay.index_bits, name=lay.name)


def _mutate(kw: dict, rng: np.random.Generator) -> str:
    """Apply one random mutation; return its name."""
    ptr, v, z = kw["ptr"], kw["v"], kw["z"]
    kind = str(rng.choice(["ptr", "v", "z", "ins", "del", "short", "long", "cb0", "cbdup", "cbnan",
                           "pbits", "filler", "fill_z"]))
    if kind == "ptr" and isinstance(ptr, np.ndarray):
        k, j = int(rng.integers(ptr.shape[0])), int(rng.integers(ptr.shape[1]))
        ptr[k, j] = max(0, int(ptr[k, j]) + int(rng.choice([-2, -1, 1, 2])))
    elif kind in ("v", "z", "filler", "fill_z") and v.size:
        i = int(rng.integers(v.size))
        if kind == "v":
            v[i] = int(rng.integers(0, (1 << kw["code_bits"]) + 3))
        elif kind == "z":
            z[i] = int(rng.integers(0, (1 << kw["index_bits"]) + 3))
        elif kind == "filler":
            v[i] = 0
        else:
            z[i] = int(rng.integers(0, 1 << kw["index_bits"]))
    elif kind == "ins":
        i = int(rng.integers(v.size + 1))
        kw["v"], kw["z"] = np.insert(v, i, int(rng.integers(0, 4))), np.insert(z, i, int(rng.integers(0, 4)))
    elif kind == "del" and v.size:
        i = int(rng.integers(v.size))
        kw["v"], kw["z"] = np.delete(v, i), np.delete(z, i)
    elif kind in ("short", "long"):
        rows = [np.asarray(p) for p in ptr]
        k = int(rng.integers(len(rows)))
        rows[k] = rows[k][:-1] if kind == "short" else np.append(rows[k], rows[k][-1])
        kw["ptr"] = rows
    elif kind == "cb0":
        kw["codebook"][0] = float(rng.choice([-0.0, 1e-30]))
    elif kind == "cbdup":
        kw["codebook"][-1] = kw["codebook"][1]
    elif kind == "cbnan":
        kw["codebook"][int(rng.integers(kw["codebook"].size))] = float(rng.choice([np.nan, np.inf]))
    elif kind == "pbits":
        kw["pointer_bits"] = int(rng.integers(1, 4))
    return kind


def _findings(rep, tmp: str = "") -> list:
    out = [[f.code, f.severity, f.count, f.layer, f.layer_name, f.pe, f.column, f.entry, f.member,
            f.message.replace(tmp, "<tmp>") if tmp else f.message] for f in rep.findings]
    out.append(["layers", [lc.to_dict() for lc in rep.layers]])
    return out


def _load_outcome(kw: dict) -> str:
    """What construction + the full layout check say (code of the first refusal, or ok)."""
    try:
        lay = CompressedLayer(shape=kw["shape"], n_pe=kw["n_pe"], codebook=kw["codebook"], ptr=kw["ptr"],
                              v=kw["v"], z=kw["z"], has_bias=kw["has_bias"], code_bits=kw["code_bits"],
                              index_bits=kw["index_bits"])
    except EieFormatError as exc:
        return "cheap:" + exc.code
    try:
        lay.check_format(full=True)
    except EieFormatError as exc:
        return "full:" + exc.code
    return "ok"


def array_cases():
    """``(case id, validator kwargs)`` for every seeded layout."""
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(seed)
        lay = _random_layer(rng)
        kw = _kwargs(lay)
        names = [_mutate(kw, rng) for _ in range(int(rng.integers(0, 4)))]
        if seed % 10 == 3:  # a centroid k >= 1 equal to 0.0: ENTRY-DECODES-TO-ZERO where it is used
            kw["codebook"][int(rng.integers(1, kw["codebook"].size))] = float(rng.choice([0.0, -0.0]))
            names.append("cbzero")
        if seed % 4 == 0:
            kw["reference"] = lay.to_dense() * np.float32(rng.choice([1.0, 1.0, -1.0]))
            kw["mask"] = rng.random(lay.shape) < 0.9
            if lay.has_bias:
                kw["reference_bias"] = lay.bias_values()
        yield f"arrays-{seed}-{'+'.join(names)}", kw


def record() -> dict:
    """Every case's findings (validator at both tiers) and load outcome."""
    out = {}
    for cid, kw in array_cases():
        for level in ("cheap", "full"):
            out[f"{cid}-{level}"] = _findings(validate_arrays(**kw, level=level))
        if not isinstance(kw["ptr"], list):
            out[f"{cid}-load"] = _load_outcome(kw)
    from .test_validate import CASES, base_kwargs

    for code, mutate in CASES:  # the one-rule cases of test_validate, messages and locations included
        kw = base_kwargs()
        mutate(kw)
        for level in ("cheap", "full"):
            out[f"case-{mutate.__name__}-{level}"] = _findings(validate_arrays(**kw, level=level))
        if not isinstance(kw["ptr"], list) and "pointer_bits" not in kw:
            out[f"case-{mutate.__name__}-load"] = _load_outcome(dict(kw, has_bias=False))
    fc8 = SHARED / "alexnet_fc8_eie"
    if (fc8 / "arithm.dat").is_file():
        out["fc8-full"] = _findings(validate_dump(fc8))
        out["fc8-cheap"] = _findings(validate_dump(fc8, level="cheap"))
    with tempfile.TemporaryDirectory(prefix="eiesim-golden-") as tmp:
        for seed in range(0, N_SEEDS, 6):
            rng = np.random.default_rng(1000 + seed)
            lay = _random_layer(rng)
            lay = CompressedLayer.from_codes(lay.to_codes()[:, : lay.n_in], lay.codebook, lay.n_pe,
                                             bias_codes=lay.to_codes()[:, lay.n_in] if lay.has_bias else None,
                                             code_bits=4, index_bits=4,
                                             name="d") if lay.code_bits == 4 else None
            if lay is None:
                continue
            d = Path(tmp) / f"dump{seed}"
            write_dump(lay, d, activations=np.ones(lay.n_in, np.float32))
            f = d / ("ptr" if seed % 2 else "spm") / f"{'ptr' if seed % 2 else 'spm'}0.dat"
            raw = bytearray(f.read_bytes())
            if raw:
                raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
                f.write_bytes(bytes(raw))
            for n_out in (None, lay.n_out):
                out[f"dump-{seed}-{n_out}"] = _findings(validate_dump(d, n_out=n_out), tmp)
    out["lenet-full"] = _findings(validate_container(TRACES / "lenet300100.eie"))
    out["lenet-cheap"] = _findings(validate_container(TRACES / "lenet300100.eie", level="cheap"))
    return out


if __name__ == "__main__":
    print(json.dumps(record(), indent=0, sort_keys=True))
