"""``eiesim compress --balance``: load-balance-aware pruning from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.format.container import load_network

from ..conftest import run_cli as run


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "fc1.weight": rng.standard_normal((40, 30)).astype(np.float32),
        "fc1.bias": (0.1 * rng.standard_normal(40)).astype(np.float32),
        "fc2.weight": rng.standard_normal((10, 40)).astype(np.float32),
    }


def _write(fmt, path, tensors):
    if fmt == "npz":
        np.savez(path, **tensors)
    else:
        from safetensors.numpy import save_file

        save_file(dict(tensors), str(path))


def _pe_counts(kept, n_pe):
    return np.bincount(np.nonzero(kept)[0] % n_pe, minlength=n_pe)


def _slice_spread(kept, n_pe, P):
    out = np.zeros((kept.shape[1], n_pe), np.int64)
    r, c = np.nonzero(kept)
    np.add.at(out, (c, r % n_pe), 1)
    return np.ptp(out[:, :P], axis=1).max()


@pytest.mark.parametrize("fmt, ext", [("npz", ".npz"), ("safetensors", ".safetensors")])
@pytest.mark.parametrize("balance", ["none", "balanced-pe", "balanced-column"])
def test_compress_balance(capsys, tmp_path, fmt, ext, balance):
    t = _model()
    src = tmp_path / f"m{ext}"
    _write(fmt, src, t)
    out_eie, js = tmp_path / "o.eie", tmp_path / "o.json"
    code, out, err = run(capsys, "compress", src, "--out", out_eie, "--density", "0.2,0.3", "--n-pe", "8",
                         "--balance", balance, "--json", js)
    assert code == 0, err
    net = load_network(out_eie)
    assert net.metadata["compression"]["balance"] == balance
    assert json.loads(js.read_text())["compression"]["balance"] == balance
    spreads = []
    for layer, (wn, d) in zip(net.layers, (("fc1.weight", 0.2), ("fc2.weight", 0.3))):
        kept = layer.to_dense() != 0
        assert kept.sum() == round(d * t[wn].size) and layer.n_pe == 8
        counts = _pe_counts(kept, 8)
        spreads.append((np.ptp(counts), _slice_spread(kept, 8, 8)))
    if balance == "balanced-pe":
        assert all(pe <= 1 for pe, _ in spreads)
    elif balance == "balanced-column":
        assert all(col <= 1 for _, col in spreads)
    else:  # plain magnitude: per-PE counts of fc1 differ by more than one
        assert spreads[0][0] > 1


def test_compress_balance_without_pruning_is_refused(capsys, tmp_path):
    src = tmp_path / "m.npz"
    np.savez(src, **_model())
    out_eie = tmp_path / "o.eie"
    code, out, err = run(capsys, "compress", src, "--out", out_eie, "--balance", "balanced-pe")
    assert code == 2 and "--balance balanced-pe: nothing is pruned" in err, err
    assert not out_eie.exists()


def test_compress_balance_unknown_choice(capsys, tmp_path):
    src = tmp_path / "m.npz"
    np.savez(src, **_model())
    with pytest.raises(SystemExit) as exc:
        main(["compress", str(src), "--out", str(tmp_path / "o.eie"), "--density", "0.5", "--balance", "ese"])
    assert exc.value.code == 2
    assert "invalid choice: 'ese'" in capsys.readouterr().err
