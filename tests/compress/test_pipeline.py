"""Pipeline glue: candidate selection, learning-rate scaling, EIE layout, one-shot compression."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.compress.pipeline import (
    centroid_learning_rates, compress_arrays, eie_order_forward, quantize_network,
    select_candidate, to_eie_layers,
)
from eiesim.compress.prune import magnitude_mask
from eiesim.compress.quantize import SharedWeightNet
from eiesim.compress.train import MLP, forward
from eiesim.errors import EieInputError


def _c(bits, lr, ve, comp):
    return {"code_bits": bits, "lr_per_weight": lr, "valid_error": ve, "compression": comp}


def test_select_candidate_rule():
    cands = [_c(6, 0.1, 1.60, 36.0), _c(5, 0.1, 1.65, 40.5), _c(4, 0.1, 1.62, 44.0),
             _c(4, 0.03, 1.70, 44.0)]
    best, why = select_candidate(cands, 1.60, target=40, max_increase=0.1)
    assert best is cands[1] and "widest" in why  # widest reaching 40x within the bound
    # the accuracy bound excludes every candidate that reaches 40x: compression still comes first
    best, why = select_candidate(cands, 1.50, target=40, max_increase=0.1)
    assert best is cands[2] and "most accurate" in why
    # nobody reaches the target: the widest within the bound among all
    best, why = select_candidate(cands, 1.60, target=50, max_increase=0.1)
    assert best is cands[0] and "no candidate reaches" in why
    with pytest.raises(EieInputError):
        select_candidate([], 1.0)


def test_centroid_learning_rates_divide_by_members_per_centroid():
    codes = (np.array([[1, 2, 3, 0], [1, 1, 0, 0]], np.uint8),)  # 5 members, 3 centroids
    net = SharedWeightNet(codes, (np.array([0, 1, 2, 3], np.float32),), (np.zeros(2, np.float32),), (None,))
    assert centroid_learning_rates(net, 0.1) == [pytest.approx(0.1 * 3 / 5)]
    net_b = SharedWeightNet(codes, net.codebooks, net.biases, (np.array([1, 2], np.uint8),))
    assert centroid_learning_rates(net_b, 0.1) == [pytest.approx(0.1 * 3 / 7)]


def test_eie_order_forward_accumulates_columns_in_order():
    # three inputs whose float32 sum depends on the order: 1e8 + 1 - 1e8
    w = np.array([[1.0, 1.0, -1.0]], np.float32)
    x = np.array([[1e8, 1.0, 1e8]], np.float32)
    out = eie_order_forward([w], [np.zeros(1, np.float32)], x)
    assert out[0, 0] == np.float32(0.0)  # (1e8 + 1) rounds to 1e8, then - 1e8
    b = np.array([0.5], np.float32)
    assert eie_order_forward([w], [b], x)[0, 0] == np.float32(0.5)


@pytest.mark.parametrize("bias_mode", ["float", "column"])
def test_quantized_network_layout_round_trip(bias_mode):
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((20, 12)).astype(np.float32), rng.standard_normal((5, 20)).astype(np.float32))
    B = (rng.standard_normal(20).astype(np.float32) * 0.1, rng.standard_normal(5).astype(np.float32) * 0.1)
    masks = [magnitude_mask(w, 0.3) for w in W]
    p = MLP(tuple(w * m for w, m in zip(W, masks)), B)
    net, infos = quantize_network(p, masks, 4, bias_mode=bias_mode)
    layers = to_eie_layers(net, ("a", "b"), n_pe=4)
    for layer, w, m in zip(layers, net.weights(), masks):
        assert np.array_equal(layer.to_dense(), w)
        assert np.all(w[~m] == 0) and np.all(layer.to_codes()[:, :-1][m] > 0)
    if bias_mode == "column":
        for layer, b in zip(layers, net.bias_values()):
            assert np.array_equal(layer.bias_values(), b)
    x = rng.standard_normal((3, 12)).astype(np.float32)
    ref = forward(net.to_mlp(), x)
    np.testing.assert_allclose(eie_order_forward(net.weights(), net.bias_values(), x), ref, rtol=1e-5,
                               atol=1e-5)


def test_compress_arrays_one_shot():
    rng = np.random.default_rng(1)
    W = [rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal((4, 16)).astype(np.float32)]
    B = [rng.standard_normal(16).astype(np.float32), None]
    res = compress_arrays(W, B, ["l1", "l2"], densities=[0.5, 0.25], code_bits=[3, 4], n_pe=2)
    assert [l.code_bits for l in res.layers] == [3, 4]
    assert res.layers[0].has_bias and res.infos[0]["bias_max_abs_error"] is not None
    assert res.infos[1]["bias"] is False and not res.layers[1].has_bias and res.layers[1].bias_values() is None
    assert [round(i["density"], 3) for i in res.infos] == [0.5, 0.25]
    assert res.total.n_kept == 64 + 16 and res.storage[1].n_biases == 0
    with pytest.raises(EieInputError, match="do not form a chain"):
        compress_arrays(W[::-1], B, ["x", "y"])
    with pytest.raises(EieInputError, match="NaN"):
        compress_arrays([np.full((2, 2), np.nan, np.float32)], [None], ["n"])
