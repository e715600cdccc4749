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

Building blocks: :func:`loss_and_grads` (one forward/backward pass, also used
by the centroid fine-tuning of :mod:`eiesim.compress.quantize`),
:class:`MaskedSGD` (the optimizer: momentum, weight decay and the pruning
masks, whose state can be carried from one training phase to the next) and
:func:`train_sgd` (epochs of shuffled mini-batches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from eiesim.errors import EieInputError

__all__ = [
    "MLP", "init_mlp", "forward", "train_sgd", "accuracy", "predict",
    "loss_and_grads", "MaskedSGD", "SGDState", "cosine_lr",
]


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
        """Deep copy (new arrays).

        Returns
        -------
        MLP
            Same weights and biases in freshly allocated arrays.
        """
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
    """Predicted class (argmax of the logits); evaluated in chunks.

    Parameters
    ----------
    params : MLP
    X : numpy.ndarray
        ``(batch, n_in)``, converted to float32.
    batch_size : int, default 2000
        Rows per :func:`forward` call (bounds memory, not the result).

    Returns
    -------
    numpy.ndarray
        int64 ``(batch,)`` class indices.

    Raises
    ------
    EieInputError
        If ``X`` is not 2-D with ``n_in`` columns.
    """
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

    Returns
    -------
    float
        Fraction of rows predicted correctly; ``nan`` when ``n == 0``.

    Raises
    ------
    EieInputError
        If ``y`` is not ``(n,)`` or ``X`` is not ``(n, n_in)``.
    """
    y = np.asarray(y)
    if y.shape != (np.asarray(X).shape[0],):
        raise EieInputError(f"labels y have shape {y.shape}; expected ({np.asarray(X).shape[0]},)")
    if y.size == 0:
        return float("nan")
    return float(np.mean(predict(params, X) == y))


def _check_masks(params: MLP, masks, who: str = "train_sgd") -> Optional[List[Optional[np.ndarray]]]:
    """Validate masks; return the *pruned* positions (``~mask``) per layer, or None."""
    if masks is None:
        return None
    masks = list(masks)
    if len(masks) != len(params.weights):
        raise EieInputError(f"{who}: {len(masks)} masks for {len(params.weights)} layers")
    out: List[Optional[np.ndarray]] = []
    for k, (m, w) in enumerate(zip(masks, params.weights)):
        if m is None:
            out.append(None)
            continue
        m = np.asarray(m)
        if m.dtype != np.bool_ or m.shape != w.shape:
            raise EieInputError(
                f"{who}: mask {k} must be bool of shape {w.shape}, got {m.dtype} {m.shape}"
            )
        out.append(~m)  # store the *pruned* positions
    return out


def loss_and_grads(
    params: MLP, X: np.ndarray, y: np.ndarray
) -> Tuple[float, Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
    """Mean softmax cross-entropy of a mini-batch and its gradients.

    Parameters
    ----------
    params : MLP
        The network (weights ``(n_out, n_in)`` float32).
    X : numpy.ndarray
        float32 ``(m, n_in)`` inputs, ``m >= 1``.
    y : numpy.ndarray
        int ``(m,)`` labels in ``0 .. n_out-1`` (not re-checked: callers
        validate once per run).

    Returns
    -------
    loss : float
        Mean cross-entropy in nats.
    grad_weights : tuple of numpy.ndarray
        float32, ``grad_weights[k]`` has the shape of ``weights[k]``:
        ``dL/dW_k`` (no weight decay).
    grad_biases : tuple of numpy.ndarray
        float32 ``dL/db_k``.

    Notes
    -----
    The gradient of a weight that the caller holds at 0 (pruned) is in
    general non-zero; masking is the optimizer's job (:class:`MaskedSGD`).
    """
    X = _check_x(params, X)
    y = np.asarray(y)
    m = X.shape[0]
    acts = _forward_all(params, X)
    z = acts[-1]
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(m)
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
    g = e / s
    g[rows, y] -= 1.0
    g *= np.float32(1.0 / m)
    L = len(params.weights)
    gW: List[np.ndarray] = [None] * L  # type: ignore[list-item]
    gB: List[np.ndarray] = [None] * L  # type: ignore[list-item]
    for k in range(L - 1, -1, -1):
        gW[k] = g.T @ acts[k]
        gB[k] = g.sum(axis=0)
        if k:
            g = g @ params.weights[k]
            g *= acts[k] > 0  # ReLU derivative (acts[k] is post-ReLU)
    return loss, tuple(gW), tuple(gB)


@dataclass(frozen=True)
class SGDState:
    """Momentum buffers of :class:`MaskedSGD`, to carry across training phases.

    Attributes
    ----------
    velocity_weights, velocity_biases : tuple of numpy.ndarray
        float32, shapes of the weights / biases.
    """

    velocity_weights: Tuple[np.ndarray, ...]
    velocity_biases: Tuple[np.ndarray, ...]


class MaskedSGD:
    """SGD with momentum and weight decay that keeps pruned weights at exactly 0.

    Update (PyTorch / Caffe form) for every parameter ``p`` with gradient
    ``g`` (weight decay on weights only)::

        g = dL/dp + weight_decay * p
        g[pruned] = 0
        v = momentum * v + g
        v[pruned] = 0
        p = p - lr_t * v
        p[pruned] = +0.0

    so neither the momentum buffer (which may hold history from before the
    weight was pruned) nor weight decay can revive a pruned weight: after
    **every** :meth:`step` each pruned weight is ``+0.0`` by bit pattern
    (Deep Compression Section 2: "retrain ... with the sparse connections
    fixed").  The masks are applied to the weights and the buffers once more
    on construction.

    Parameters
    ----------
    params : MLP
        Starting point (copied; the input is not modified).
    momentum : float
        In [0, 1).
    weight_decay : float
        L2 coefficient (>= 0) on weights.
    masks : sequence of (numpy.ndarray of bool or None), optional
        One per layer, ``True`` = kept.
    state : SGDState, optional
        Momentum buffers to start from (e.g. the end of the previous phase);
        default zeros.

    Raises
    ------
    EieInputError
        Hyper-parameters out of range, masks or state of the wrong shape.
    """

    def __init__(self, params: MLP, momentum: float = 0.9, weight_decay: float = 0.0,
                 masks: Optional[Sequence[Optional[np.ndarray]]] = None,
                 state: Optional[SGDState] = None) -> None:
        if not (0.0 <= float(momentum) < 1.0) or not (float(weight_decay) >= 0.0):
            raise EieInputError(
                f"MaskedSGD: momentum must lie in [0, 1) and weight_decay be >= 0, got "
                f"{momentum} and {weight_decay}"
            )
        p = params.copy()
        self.W: List[np.ndarray] = list(p.weights)
        self.B: List[np.ndarray] = list(p.biases)
        self.pruned = _check_masks(params, masks, "MaskedSGD")
        if state is None:
            self.vW = [np.zeros_like(w) for w in self.W]
            self.vB = [np.zeros_like(b) for b in self.B]
        else:
            if not isinstance(state, SGDState) or \
                    [v.shape for v in state.velocity_weights] != [w.shape for w in self.W] or \
                    [v.shape for v in state.velocity_biases] != [b.shape for b in self.B]:
                raise EieInputError("MaskedSGD: state does not match the network's shapes")
            self.vW = [np.array(v, dtype=np.float32) for v in state.velocity_weights]
            self.vB = [np.array(v, dtype=np.float32) for v in state.velocity_biases]
        self.momentum = np.float32(momentum)
        self.weight_decay = np.float32(weight_decay)
        self._apply_masks()

    def _apply_masks(self) -> None:
        if self.pruned is None:
            return
        for w, v, pm in zip(self.W, self.vW, self.pruned):
            if pm is not None:
                w[pm] = 0.0
                v[pm] = 0.0

    def step(self, grad_weights: Sequence[np.ndarray], grad_biases: Sequence[np.ndarray],
             lr: float) -> None:
        """One update with learning rate ``lr`` (gradients as from :func:`loss_and_grads`).

        Momentum SGD with L2 weight decay on the weights (not the biases);
        pruned weights, their gradients and their momentum stay 0.

        Parameters
        ----------
        grad_weights : sequence of numpy.ndarray
            ``dL/dW_k``, one per layer, shape of the layer's weights (float32).
        grad_biases : sequence of numpy.ndarray
            ``dL/db_k``, one per layer, ``(n_out_k,)`` (float32).
        lr : float
            Learning rate of this step.
        """
        lr_t = np.float32(lr)
        mom, wd = self.momentum, self.weight_decay
        for k in range(len(self.W)):
            gW = np.array(grad_weights[k], dtype=np.float32)
            if wd:
                gW += wd * self.W[k]
            pm = self.pruned[k] if self.pruned is not None else None
            if pm is not None:
                gW[pm] = 0.0
            self.vW[k] *= mom
            self.vW[k] += gW
            self.vB[k] *= mom
            self.vB[k] += grad_biases[k]
            if pm is not None:
                self.vW[k][pm] = 0.0
            self.W[k] -= lr_t * self.vW[k]
            self.B[k] -= lr_t * self.vB[k]
            if pm is not None:
                self.W[k][pm] = 0.0

    @property
    def params(self) -> MLP:
        """A view of the live parameters (copy before modifying)."""
        return MLP(tuple(self.W), tuple(self.B))

    @property
    def state(self) -> SGDState:
        """Copy of the momentum buffers."""
        return SGDState(tuple(v.copy() for v in self.vW), tuple(v.copy() for v in self.vB))


def cosine_lr(lr: float, t: int, total: int) -> float:
    """Cosine learning-rate schedule ``lr * 0.5 * (1 + cos(pi * t / total))`` (``t`` from 0).

    Parameters
    ----------
    lr : float
        Peak (initial) learning rate.
    t : int
        Step or epoch index, from 0.
    total : int
        Length of the schedule (values < 1 are treated as 1).

    Returns
    -------
    float
        Learning rate at ``t``: ``lr`` at ``t = 0``, 0 at ``t = total``.
    """
    return float(lr * 0.5 * (1.0 + np.cos(np.pi * t / max(1, total))))


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
    state: Optional[SGDState] = None,
    return_state: bool = False,
):
    """Mini-batch SGD with momentum on the mean softmax cross-entropy.

    The update is :class:`MaskedSGD`'s: for every parameter ``p`` with
    gradient ``g`` (weight decay is applied to weights, not biases)::

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
    state : SGDState, optional
        Momentum buffers to start from (default zeros), e.g. those returned by
        an earlier run with ``return_state=True``.
    return_state : bool
        Also return the final :class:`SGDState`.

    Returns
    -------
    MLP or (MLP, SGDState)
        The trained parameters (new arrays), and the momentum buffers when
        ``return_state`` is true.

    Raises
    ------
    EieInputError
        Shapes, labels, masks, state or hyper-parameters out of range.
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
    _check_masks(params, masks)
    opt = MaskedSGD(params, momentum=momentum, weight_decay=weight_decay, masks=masks, state=state)

    n = X.shape[0]
    bs = int(batch_size)
    steps_per_epoch = -(-n // bs) if n else 0
    total = max(1, int(epochs) * steps_per_epoch)
    rng = np.random.default_rng(seed)
    t = 0
    for _ in range(int(epochs)):
        order = rng.permutation(n)
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            _, gW, gB = loss_and_grads(opt.params, X[idx], y[idx])
            lr_t = cosine_lr(lr, t, total) if lr_schedule == "cosine" else lr
            opt.step(gW, gB, lr_t)
            t += 1
            if callback is not None:
                callback(t, opt.params)
    out = MLP(tuple(opt.W), tuple(opt.B))
    return (out, opt.state) if return_state else out
