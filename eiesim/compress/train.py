"""A small deterministic NumPy trainer for fully connected ReLU networks.

Enough to train LeNet-300-100 (LeCun et al. 1998; the MNIST model of Deep
Compression, Han, Mao, Dally, ICLR 2016, Table 2) on two CPU cores in under a
minute, and to retrain it under a pruning mask: with ``masks`` given, every
pruned weight is exactly ``0.0`` after every optimizer step (its gradient,
its momentum buffer and the weight itself are zeroed), the "retrain with the
sparse connections fixed" step of Deep Compression Section 2.

Conventions
-----------
* Weights are stored as EIE stores them: ``W`` has shape ``(n_out, n_in)``
  (rows are outputs, columns are inputs), float32; a layer computes
  ``z = x @ W.T + b``.
* ReLU between layers, none after the last; the loss is the mean softmax
  cross-entropy over a mini-batch.
* Everything is float32 and deterministic given the seed (same machine,
  same BLAS thread count).  The functions never print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from eiesim.errors import EieInputError

__all__ = ["MLP", "init_mlp", "forward", "train_sgd", "accuracy", "predict"]


@dataclass(frozen=True)
class MLP:
    """Parameters of a fully connected ReLU network.

    Attributes
    ----------
    weights : tuple of numpy.ndarray
        ``weights[k]`` float32, shape ``(n_out_k, n_in_k)`` (rows = outputs,
        as EIE stores W).
    biases : tuple of numpy.ndarray
        ``biases[k]`` float32, shape ``(n_out_k,)``.

    The container is frozen; :func:`train_sgd` returns a new one and leaves
    its input untouched.
    """

    weights: Tuple[np.ndarray, ...]
    biases: Tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.biases) or not self.weights:
            raise EieInputError("MLP needs one bias per weight matrix and at least one layer")
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise EieInputError(
                    f"MLP layer {k}: weight {w.shape} and bias {b.shape} do not match"
                )
            if k and w.shape[1] != self.weights[k - 1].shape[0]:
                raise EieInputError(
                    f"MLP layer {k}: takes {w.shape[1]} inputs but layer {k - 1} "
                    f"gives {self.weights[k - 1].shape[0]}"
                )

    @property
    def sizes(self) -> Tuple[int, ...]:
        """Layer widths ``(n_in, n_hidden..., n_out)``."""
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    def copy(self) -> "MLP":
        """Deep copy (new arrays)."""
        return MLP(tuple(w.copy() for w in self.weights), tuple(b.copy() for b in self.biases))


def init_mlp(sizes: Sequence[int], seed: int) -> MLP:
    """Random initial parameters (He-uniform weights, zero biases).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, e.g. ``(784, 300, 100, 10)`` for LeNet-300-100.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    MLP
        ``W_k`` drawn from U(-sqrt(6/n_in), +sqrt(6/n_in)) (He et al. 2015,
        suited to ReLU), float32; biases 0.

    Raises
    ------
    EieInputError
        Fewer than two sizes or a non-positive size.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise EieInputError(f"init_mlp: need >= 2 positive layer sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / n_in)
        weights.append(rng.uniform(-lim, lim, size=(n_out, n_in)).astype(np.float32))
        biases.append(np.zeros(n_out, dtype=np.float32))
    return MLP(tuple(weights), tuple(biases))


def _check_x(params: MLP, X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != params.weights[0].shape[1]:
        raise EieInputError(
            f"inputs X have shape {X.shape}; expected (batch, {params.weights[0].shape[1]})"
        )
    return np.ascontiguousarray(X, dtype=np.float32)


def _forward_all(params: MLP, X: np.ndarray) -> List[np.ndarray]:
    """Activations of every layer: ``[X, h1, ..., logits]`` (hidden after ReLU)."""
    acts = [X]
    h = X
    last = len(params.weights) - 1
    for k, (w, b) in enumerate(zip(params.weights, params.biases)):
        z = h @ w.T
        z += b
        if k != last:
            np.maximum(z, 0.0, out=z)
        acts.append(z)
        h = z
    return acts


def forward(params: MLP, X: np.ndarray) -> np.ndarray:
    """Logits of the network.

    Parameters
    ----------
    params : MLP
    X : numpy.ndarray
        float32, shape ``(batch, n_in)``.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(batch, n_out)``; no softmax applied.
    """
    return _forward_all(params, _check_x(params, X))[-1]


def predict(params: MLP, X: np.ndarray, batch_size: int = 2000) -> np.ndarray:
    """Predicted class (argmax of the logits), int64 ``(batch,)``; evaluated in chunks."""
    X = _check_x(params, X)
    out = np.empty(X.shape[0], dtype=np.int64)
    for s in range(0, X.shape[0], batch_size):
        out[s:s + batch_size] = np.argmax(forward(params, X[s:s + batch_size]), axis=1)
    return out


def accuracy(params: MLP, X: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1].

    Parameters
    ----------
    params : MLP
    X : numpy.ndarray
        float32 ``(n, n_in)``.
    y : numpy.ndarray
        int ``(n,)`` class labels.
    """
    y = np.asarray(y)
    if y.shape != (np.asarray(X).shape[0],):
        raise EieInputError(f"labels y have shape {y.shape}; expected ({np.asarray(X).shape[0]},)")
    if y.size == 0:
        return float("nan")
    return float(np.mean(predict(params, X) == y))


def _check_masks(params: MLP, masks) -> Optional[List[Optional[np.ndarray]]]:
    if masks is None:
        return None
    masks = list(masks)
    if len(masks) != len(params.weights):
        raise EieInputError(
            f"train_sgd: {len(masks)} masks for {len(params.weights)} layers"
        )
    out: List[Optional[np.ndarray]] = []
    for k, (m, w) in enumerate(zip(masks, params.weights)):
        if m is None:
            out.append(None)
            continue
        m = np.asarray(m)
        if m.dtype != np.bool_ or m.shape != w.shape:
            raise EieInputError(
                f"train_sgd: mask {k} must be bool of shape {w.shape}, got {m.dtype} {m.shape}"
            )
        out.append(~m)  # store the *pruned* positions
    return out


def train_sgd(
    params: MLP,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 10,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    seed: int = 0,
    masks: Optional[Sequence[Optional[np.ndarray]]] = None,
    lr_schedule: str = "cosine",
    callback: Optional[Callable[[int, MLP], None]] = None,
) -> MLP:
    """Mini-batch SGD with momentum on the mean softmax cross-entropy.

    Update (PyTorch / Caffe form), for every parameter ``p`` with gradient
    ``g`` (weight decay is applied to weights, not biases)::

        g = dL/dp + weight_decay * p
        v = momentum * v + g
        p = p - lr_t * v

    Parameters
    ----------
    params : MLP
        Starting point; not modified.
    X : numpy.ndarray
        float32 ``(n, n_in)`` training inputs.
    y : numpy.ndarray
        int ``(n,)`` labels in ``0 .. n_out-1``.
    epochs : int
        Passes over the data.
    lr : float
        Peak learning rate.
    momentum : float
        Momentum coefficient in [0, 1).
    weight_decay : float
        L2 coefficient on weights.
    batch_size : int
        Mini-batch size; the last, smaller batch of an epoch is used as is.
    seed : int
        Seeds the per-epoch shuffles (:func:`numpy.random.default_rng`).
    masks : sequence of (numpy.ndarray of bool or None), optional
        One per layer, shape of ``weights[k]``; ``True`` = weight kept.  After
        every optimizer step each pruned weight (``False``) is exactly
        ``+0.0``: its gradient, momentum buffer and value are zeroed.  Pruned
        weights are also zeroed before the first step.  ``None`` for a layer
        leaves it dense.
    lr_schedule : {"cosine", "constant"}
        ``cosine``: ``lr_t = lr * 0.5 * (1 + cos(pi * t / T))`` over the
        ``T`` steps of the run; ``constant``: ``lr_t = lr``.
    callback : callable, optional
        ``callback(step, params)`` after every optimizer step (``step`` counts
        from 1).  ``params`` is a view of the live arrays: read it or copy it,
        do not modify it.

    Returns
    -------
    MLP
        The trained parameters (new arrays).

    Raises
    ------
    EieInputError
        Shapes, labels, masks or hyper-parameters out of range.
    """
    X = _check_x(params, X)
    y = np.asarray(y)
    n_out = params.weights[-1].shape[0]
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise EieInputError(f"train_sgd: labels y must be int of shape ({X.shape[0]},)")
    if y.size and (y.min() < 0 or y.max() >= n_out):
        raise EieInputError(f"train_sgd: labels must lie in 0..{n_out - 1}")
    if int(epochs) < 0 or int(batch_size) < 1 or not (0.0 <= momentum < 1.0) or lr < 0:
        raise EieInputError(
            f"train_sgd: bad hyper-parameters epochs={epochs} batch_size={batch_size} "
            f"momentum={momentum} lr={lr}"
        )
    if lr_schedule not in ("cosine", "constant"):
        raise EieInputError(f"train_sgd: unknown lr_schedule {lr_schedule!r}")
    pruned = _check_masks(params, masks)

    p = params.copy()
    W = list(p.weights)
    B = list(p.biases)
    vW = [np.zeros_like(w) for w in W]
    vB = [np.zeros_like(b) for b in B]
    if pruned is not None:
        for w, pm in zip(W, pruned):
            if pm is not None:
                w[pm] = 0.0

    n = X.shape[0]
    bs = int(batch_size)
    steps_per_epoch = -(-n // bs) if n else 0
    total = max(1, int(epochs) * steps_per_epoch)
    rng = np.random.default_rng(seed)
    mom = np.float32(momentum)
    wd = np.float32(weight_decay)
    L = len(W)
    t = 0
    onehot_rows = np.arange(bs)
    for _ in range(int(epochs)):
        order = rng.permutation(n)
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            xb = X[idx]
            yb = y[idx]
            m = xb.shape[0]
            acts = _forward_all(p, xb)
            # softmax cross-entropy gradient w.r.t. logits, mean over batch
            z = acts[-1]
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            g = e / e.sum(axis=1, keepdims=True)
            g[onehot_rows[:m], yb] -= 1.0
            g *= np.float32(1.0 / m)
            if lr_schedule == "cosine":
                lr_t = np.float32(lr * 0.5 * (1.0 + np.cos(np.pi * t / total)))
            else:
                lr_t = np.float32(lr)
            for k in range(L - 1, -1, -1):
                h = acts[k]
                gW = g.T @ h
                gB = g.sum(axis=0)
                if k:
                    g = g @ W[k]
                    g *= acts[k] > 0  # ReLU derivative (acts[k] is post-ReLU)
                if wd:
                    gW += wd * W[k]
                pm = pruned[k] if pruned is not None else None
                if pm is not None:
                    gW[pm] = 0.0
                vW[k] *= mom
                vW[k] += gW
                vB[k] *= mom
                vB[k] += gB
                if pm is not None:
                    vW[k][pm] = 0.0
                W[k] -= lr_t * vW[k]
                B[k] -= lr_t * vB[k]
                if pm is not None:
                    W[k][pm] = 0.0
            t += 1
            if callback is not None:
                callback(t, MLP(tuple(W), tuple(B)))
    return MLP(tuple(W), tuple(B))
