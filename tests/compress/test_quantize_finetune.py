"""k-means weight sharing (sorted 1-D Lloyd vs scipy, inits, widths) and centroid fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.compress.pipeline import quantize_network
from eiesim.compress.prune import magnitude_mask
from eiesim.compress.quantize import (
    SharedWeightNet, centroid_gradients, centroid_step, finetune_centroids, kmeans_1d,
    kmeans_codebook, quantize_layer,
)
from eiesim.compress.train import MLP, accuracy, init_mlp, train_sgd
from eiesim.errors import EieInputError


def _pruned_like(n=6000, seed=0):
    """Weights shaped like a pruned layer: two lobes outside a gap around zero."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(0.0, 0.06, size=4 * n)
    x = x[np.abs(x) > 0.05][:n]
    return x


# --------------------------------------------------------------------------- k-means


@pytest.mark.parametrize("init", ["linear", "density"])
@pytest.mark.parametrize("k", [3, 15, 63])
def test_sorted_lloyd_matches_scipy_kmeans2(init, k):
    x = _pruned_like()
    a, ia = kmeans_codebook(x, k, init, method="sorted")
    b, ib = kmeans_codebook(x, k, init, method="scipy")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert ia["empty_clusters"] == ib["empty_clusters"]
    assert ia["converged"] and ib["converged"]
    assert ia["inertia"] == pytest.approx(ib["inertia"], rel=1e-9)


def test_sorted_lloyd_same_fixed_point_from_random_init():
    x = _pruned_like(3000, seed=1)
    rng = np.random.default_rng(7)
    init = np.sort(rng.choice(x, 15, replace=False))
    c, info = kmeans_1d(x, init)
    # a Lloyd fixed point: every centroid is the mean of the points nearest to it
    lab = np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)
    for j in range(15):
        if np.any(lab == j):
            assert c[j] == pytest.approx(x[lab == j].mean(), abs=1e-12)
    assert info["converged"] and info["counts"].sum() == x.size


def test_random_forgy_init_is_seeded():
    x = _pruned_like(2000, seed=2)
    a, _ = kmeans_codebook(x, 15, "random", seed=3)
    b, _ = kmeans_codebook(x, 15, "random", seed=3)
    c, _ = kmeans_codebook(x, 15, "random", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(EieInputError):
        kmeans_codebook(x, 15, "kmeans++")
    with pytest.raises(EieInputError):
        kmeans_codebook(x, 15, method="magic")


@pytest.mark.parametrize("method", ["sorted", "scipy"])
def test_empty_clusters_stay_finite_and_are_reported(method):
    data = np.array([-1.1, -1.0, -0.9, 0.9, 1.0, 1.1])
    cents, info = kmeans_codebook(data, n_clusters=5, init="linear", method=method)
    assert np.all(np.isfinite(cents))
    np.testing.assert_allclose(cents, [-1.0, -0.55, 0.0, 0.55, 1.0], atol=1e-6)
    assert info["empty_clusters"] == [1, 2, 3]


def test_six_bit_codebook_deep_compression_width():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((30, 40)).astype(np.float32)
    m = magnitude_mask(w, 0.3)
    codes, cb, info = quantize_layer(w, m, code_bits=6)
    assert cb.shape == (64,) and cb.view(np.uint32)[0] == 0
    assert codes[m].min() >= 1 and codes[m].max() <= 63 and not codes[~m].any()
    assert info["n_clusters"] == 63


# --------------------------------------------------------------------------- centroid gradients


def test_centroid_gradient_is_sum_of_members_and_moves_by_3_lr():
    codes = np.array([[0, 2, 2], [2, 1, 0]], dtype=np.uint8)  # cluster 2 has 3 members
    grad = np.array([[9.0, 1.0, 1.0], [1.0, 0.5, -4.0]])
    g = centroid_gradients(codes, grad, 4)
    assert g.tolist() == [0.0, 0.5, 3.0, 0.0]  # zero entry gets no gradient
    cb = np.array([0.0, -0.25, 0.5, 0.75], dtype=np.float32)
    lr = 0.01
    centroid_step(cb, g, lr)
    assert cb[2] == pytest.approx(0.5 - 3 * lr, abs=1e-7)
    assert cb[1] == pytest.approx(-0.25 - 0.5 * lr, abs=1e-7)
    assert cb[3] == np.float32(0.75)  # empty cluster: no gradient, stays put
    assert cb.view(np.uint32)[0] == 0


def test_centroid_step_zero_entry_never_moves_even_with_momentum():
    cb = np.array([0.0, 1.0], dtype=np.float32)
    vel = np.array([7.0, 0.0])  # a corrupt velocity on the zero entry is ignored
    for _ in range(5):
        centroid_step(cb, np.array([100.0, 1.0]), 0.1, velocity=vel, momentum=0.9)
        assert cb.view(np.uint32)[0] == 0 and vel[0] == 0.0


def _toy_task(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    y = ((X[:, 0] + X[:, 1] - X[:, 2]) > 0).astype(np.int64)
    p = train_sgd(init_mlp((6, 12, 2), seed=1), X, y, epochs=10, lr=0.1, batch_size=32, seed=0)
    masks = [magnitude_mask(w, 0.6) for w in p.weights]
    p = MLP(tuple(w * m for w, m in zip(p.weights, masks)), p.biases)
    return X, y, p, masks


@pytest.mark.parametrize("bias_mode", ["float", "column"])
def test_finetune_keeps_codes_and_zeros_and_learns(bias_mode):
    X, y, p, masks = _toy_task()
    net, infos = quantize_network(p, masks, 2, bias_mode=bias_mode)  # 3 centroids: lossy
    before = accuracy(net.to_mlp(), X, y)
    seen = []

    def check(t, cur):
        seen.append(t)
        for w, m in zip(cur.weights(), masks):
            assert np.all(w.view(np.uint32)[~m] == 0)  # pruned positions exactly +0.0
        for cb in cur.codebooks:
            assert cb.view(np.uint32)[0] == 0

    ft, info = finetune_centroids(net, X, y, epochs=3, lr=[2e-3, 2e-2], bias_lr=0.05, seed=0,
                                  batch_size=32, callback=check)
    assert seen == list(range(1, 3 * 13 + 1))
    for a, b in zip(ft.codes, net.codes):
        assert np.array_equal(a, b)  # codes never change: kept never becomes code 0
    if bias_mode == "column":
        assert all(bc.min() >= 1 for bc in ft.bias_codes)
    assert accuracy(ft.to_mlp(), X, y) >= before - 0.01
    assert info["steps"] == 39 and len(info["layers"]) == 2


def test_finetune_reports_empty_and_zero_valued_centroids():
    codes = (np.array([[1, 0, 2], [2, 1, 0]], dtype=np.uint8),)
    cb = (np.array([0.0, 0.5, 0.0, -0.3], dtype=np.float32),)  # code 2 sits at 0.0, code 3 empty
    net = SharedWeightNet(codes, cb, (np.zeros(2, np.float32),), (None,))
    X = np.eye(3, dtype=np.float32)
    y = np.array([0, 1, 0])
    ft, info = finetune_centroids(net, X, y, epochs=1, lr=0.0, batch_size=3)
    assert info["layers"][0]["empty_codes"] == [3]
    assert info["layers"][0]["zero_valued_codes"] == [2]
    assert np.all(np.isfinite(ft.codebooks[0]))
    with pytest.raises(EieInputError):
        finetune_centroids(net, X, y, lr=[0.1, 0.2])


def test_finetune_blowup_is_a_typed_error():
    X, y, p, masks = _toy_task(seed=3)
    net, _ = quantize_network(p, masks, 2)
    with pytest.raises(EieInputError, match="non-finite"):
        with np.errstate(all="ignore"):
            finetune_centroids(net, X, y, epochs=2, lr=1e30, batch_size=32)
