"""Weight sharing by k-means and trained quantization (Deep Compression, Han, Mao, Dally, ICLR 2016, Section 3).

A pruned layer's surviving weights are clustered in one dimension into
``2**code_bits - 1`` centroids; every kept weight is replaced by the index of
its nearest centroid.  The codebook has ``2**code_bits`` entries (16 for the
4-bit codes of EIE, Table II; 64 for the 6-bit weights of Deep Compression's
LeNet-300-100, Table 2) and entry 0 is the weight ``+0.0``, used by pruned
positions and by filler entries (EIE Section III-B), so the centroids go to
entries ``1 .. 2**code_bits - 1`` in ascending order.

Centroid initialisation (Deep Compression Section 3.2, Fig. 4):

* ``"linear"`` -- evenly spaced between the minimum and the maximum of the
  surviving weights (the paper's best choice: it keeps the rare large weights);
* ``"density"`` -- evenly spaced in the weights' cumulative distribution;
* ``"random"`` -- ``n_clusters`` distinct surviving weights chosen at random
  (Forgy).

Lloyd iterations (``method``):

* ``"sorted"`` (default) -- exact one-dimensional Lloyd on the sorted data:
  in 1-D every cluster of the nearest-centroid assignment is a contiguous run
  of the sorted weights, delimited by the midpoints of neighbouring
  centroids, so one iteration is a :func:`numpy.searchsorted` of the
  ``k - 1`` midpoints plus prefix-sum differences -- O(k log n) after one
  O(n log n) sort.  It stops when the partition stops changing (a Lloyd fixed
  point).  ``scripts/bench_kmeans.py`` measures it against scipy on 10 million
  weights; ``tests/compress`` checks it against scipy on the same data.
* ``"scipy"`` -- :func:`scipy.cluster.vq.kmeans2` with the initial centroids
  passed as a matrix (``minit='matrix'``), one iteration at a time until the
  centroids stop changing.

Both keep an empty cluster's centroid where it was (scipy's rule), so it stays
finite; empty clusters are reported, never turned into NaN.

Trained quantization (Section 3.1): :func:`finetune_centroids` runs the
forward and backward pass through the shared weights ``codebook[codes]``; the
gradient of each centroid is the **sum** of its members' gradients
(:func:`centroid_gradients`), the zero entry never moves, pruned positions
(code 0) stay 0 and the codes never change.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from scipy.cluster.vq import kmeans2

from eiesim.errors import EieInputError

__all__ = [
    "kmeans_codebook",
    "kmeans_1d",
    "quantize_layer",
    "quantize_bias",
    "decode",
    "SharedWeightNet",
    "centroid_gradients",
    "centroid_step",
    "finetune_centroids",
]

_INITS = ("linear", "density", "random")
_METHODS = ("sorted", "scipy")


def _initial_centroids(x: np.ndarray, n_clusters: int, init: str, seed: int) -> np.ndarray:
    if init == "linear":
        return np.linspace(x.min(), x.max(), n_clusters, dtype=np.float64)
    if init == "density":
        q = (np.arange(n_clusters, dtype=np.float64) + 0.5) / n_clusters
        return np.quantile(x, q)
    # random (Forgy)
    rng = np.random.default_rng(seed)
    if x.size >= n_clusters:
        return np.sort(rng.choice(x, size=n_clusters, replace=False))
    return np.sort(rng.choice(x, size=n_clusters, replace=True))


def _nearest_sorted(x: np.ndarray, centroids_sorted: np.ndarray) -> np.ndarray:
    """Index of the nearest of ascending ``centroids_sorted`` for each x (ties: lower index)."""
    if centroids_sorted.size == 1:
        return np.zeros(x.shape, dtype=np.intp)
    mids = 0.5 * (centroids_sorted[:-1] + centroids_sorted[1:])
    return np.searchsorted(mids, x, side="left")


def kmeans_1d(
    x: np.ndarray,
    init_centroids: np.ndarray,
    max_iter: int = 300,
    *,
    presorted: bool = False,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Exact one-dimensional Lloyd k-means on sorted data.

    Parameters
    ----------
    x : numpy.ndarray
        float64 ``(n,)`` data, finite, ``n >= 1``.
    init_centroids : numpy.ndarray
        ``(k,)`` initial centroids (any order; sorted here).
    max_iter : int
        Upper bound on Lloyd iterations (assignment + update).
    presorted : bool
        ``x`` is already ascending (skips the O(n log n) sort).

    Returns
    -------
    centroids : numpy.ndarray
        float64 ``(k,)``, ascending.
    info : dict
        ``iterations``, ``converged`` (the partition did not change in the
        last iteration), ``counts`` (int64 ``(k,)`` members per centroid).

    Notes
    -----
    Assignment: ``x`` goes to centroid ``j`` when
    ``mid[j-1] < x <= mid[j]`` with ``mid[j] = (c[j] + c[j+1]) / 2`` -- the
    nearest centroid, ties to the lower index, as :func:`scipy.cluster.vq.vq`
    breaks them.  Means come from prefix sums of ``x - x[0]`` in float64 (the
    shift keeps the sums small); an empty cluster keeps its centroid.  With
    ascending centroids the means stay ascending, so the midpoint partition
    remains valid throughout.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    if not presorted:
        xs = np.sort(xs)
    n = xs.size
    c = np.sort(np.asarray(init_centroids, dtype=np.float64).ravel())
    k = c.size
    shift = xs[0]
    csum = np.empty(n + 1, dtype=np.float64)
    csum[0] = 0.0
    np.cumsum(xs - shift, out=csum[1:])
    bounds = None
    iterations = 0
    converged = False
    for _ in range(int(max_iter)):
        mids = 0.5 * (c[:-1] + c[1:])
        # bounds[j] .. bounds[j+1]: members of cluster j (x <= mid goes left)
        nb = np.empty(k + 1, dtype=np.int64)
        nb[0] = 0
        nb[-1] = n
        nb[1:-1] = np.searchsorted(xs, mids, side="right")
        iterations += 1
        if bounds is not None and np.array_equal(nb, bounds):
            converged = True
            break
        bounds = nb
        cnt = np.diff(bounds)
        live = cnt > 0
        sums = csum[bounds[1:]] - csum[bounds[:-1]]
        newc = c.copy()
        newc[live] = shift + sums[live] / cnt[live]
        c = newc
    if bounds is None:  # max_iter == 0 cannot happen (validated by callers); keep total
        bounds = np.array([0] * k + [n], dtype=np.int64)
    counts = np.diff(bounds) if converged else np.bincount(_nearest_sorted(xs, c), minlength=k)
    return c, {"iterations": iterations, "converged": converged, "counts": counts.astype(np.int64)}


def _kmeans_scipy(x: np.ndarray, code: np.ndarray, max_iter: int) -> Tuple[np.ndarray, int, bool]:
    iterations = 0
    converged = False
    with warnings.catch_warnings():
        # scipy warns on empty clusters; we report them in `info` instead.
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(max_iter):
            new, _labels = kmeans2(x, code, iter=1, minit="matrix", missing="warn")
            iterations += 1
            new = np.asarray(new, dtype=np.float64)
            if np.array_equal(new, code):
                converged = True
                code = new
                break
            code = new
    return code, iterations, converged


def kmeans_codebook(
    weights_nonzero: np.ndarray,
    n_clusters: int = 15,
    init: str = "linear",
    seed: int = 0,
    max_iter: int = 300,
    method: str = "sorted",
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """One-dimensional k-means codebook of a layer's surviving weights.

    Parameters
    ----------
    weights_nonzero : numpy.ndarray
        The kept weights (any shape; flattened), finite, at least one.
    n_clusters : int
        Number of centroids (15 for a 16-entry EIE codebook whose entry 0 is
        the zero weight; 63 for Deep Compression's 6-bit LeNet weights).
    init : {"linear", "density", "random"}
        Centroid initialisation (module docstring); Deep Compression uses
        ``"linear"``.
    seed : int
        Seed of the ``"random"`` initialisation (unused otherwise: Lloyd
        iterations from given centroids are deterministic).
    max_iter : int
        Upper bound on Lloyd iterations.
    method : {"sorted", "scipy"}
        Lloyd implementation (module docstring); both reach the same fixed
        point up to float64 rounding of the means.

    Returns
    -------
    centroids : numpy.ndarray
        float32, shape ``(n_clusters,)``, ascending, all finite.
    info : dict
        ``init``, ``method``, ``n_clusters``, ``n_weights``, ``iterations``
        (Lloyd steps run), ``converged`` (bool), ``empty_clusters`` (list of
        indices into ``centroids`` with no member at the end; such a centroid
        stays at its last finite value), ``inertia`` (sum of squared
        distances, float64, to the float32 centroids).

    Raises
    ------
    EieInputError
        No weights, non-finite weights, unknown ``init``/``method`` or
        ``n_clusters < 1``.
    """
    x = np.asarray(weights_nonzero, dtype=np.float64).ravel()
    if x.size == 0:
        raise EieInputError("kmeans_codebook: no weights to cluster")
    if not np.all(np.isfinite(x)):
        raise EieInputError("kmeans_codebook: weights contain NaN or infinity")
    if init not in _INITS:
        raise EieInputError(f"kmeans_codebook: init must be one of {_INITS}, got {init!r}")
    if method not in _METHODS:
        raise EieInputError(f"kmeans_codebook: method must be one of {_METHODS}, got {method!r}")
    n_clusters = int(n_clusters)
    if n_clusters < 1:
        raise EieInputError(f"kmeans_codebook: n_clusters must be >= 1, got {n_clusters}")
    max_iter = int(max_iter)
    if max_iter < 1:
        raise EieInputError(f"kmeans_codebook: max_iter must be >= 1, got {max_iter}")

    if method == "sorted":
        xs = np.sort(x)
        code0 = _initial_centroids(xs, n_clusters, init, seed)
        code, kinfo = kmeans_1d(xs, code0, max_iter, presorted=True)
        iterations, converged = kinfo["iterations"], kinfo["converged"]
    else:
        code0 = _initial_centroids(x, n_clusters, init, seed)
        code, iterations, converged = _kmeans_scipy(x, code0, max_iter)
    centroids = np.sort(code).astype(np.float32)
    labels = _nearest_sorted(x, centroids.astype(np.float64))
    counts = np.bincount(labels, minlength=n_clusters)
    info: Dict[str, Any] = {
        "init": init,
        "method": method,
        "n_clusters": n_clusters,
        "n_weights": int(x.size),
        "iterations": iterations,
        "converged": converged,
        "empty_clusters": [int(i) for i in np.flatnonzero(counts == 0)],
        "inertia": float(np.sum((x - centroids.astype(np.float64)[labels]) ** 2)),
    }
    return centroids, info


def quantize_layer(
    w: np.ndarray,
    mask: np.ndarray,
    code_bits: int = 4,
    init: str = "linear",
    seed: int = 0,
    method: str = "sorted",
) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Quantise a pruned layer to codebook indices.

    Parameters
    ----------
    w : numpy.ndarray
        float weights, shape ``(n_out, n_in)`` (rows = outputs, as EIE stores W).
    mask : numpy.ndarray of bool
        Same shape; ``True`` = kept.  A kept weight equal to 0 keeps a non-zero
        code unless its centroid is 0.0 (below).
    code_bits : int
        Width of a codebook index (4 in EIE, Table II; 6 for Deep
        Compression's LeNet-300-100 weights, Table 2); the codebook has
        ``2**code_bits`` entries, 1 <= code_bits <= 8.
    init : {"linear", "density", "random"}
        Centroid initialisation, see :func:`kmeans_codebook`.
    seed : int
        Seed of the ``"random"`` initialisation.
    method : {"sorted", "scipy"}
        Lloyd implementation, see :func:`kmeans_codebook`.

    Returns
    -------
    codes : numpy.ndarray
        uint8, shape of ``w``: 0 at every pruned position and at every kept
        weight whose centroid is exactly 0.0 (merged, below), ``1 .. 2**code_bits - 1``
        at every other kept one.
    codebook : numpy.ndarray
        float32, shape ``(2**code_bits,)``; ``codebook[0]`` is ``+0.0`` (bit
        pattern 0x00000000), ``codebook[1:]`` the centroids in ascending order.
    info : dict
        The k-means report of :func:`kmeans_codebook` plus ``code_bits``,
        ``n_kept`` (weights with a non-zero code), ``density`` (``n_kept`` over
        all weights), ``merged_into_zero`` (kept weights merged into code 0),
        ``zero_centroids`` (codes >= 1 holding 0.0: always empty now; kept for
        callers) and ``unused_codes`` (codes 1.. no kept weight uses).  For a
        mask with no kept weight the codebook is all zeros and every code is
        unused.

    Notes
    -----
    **A centroid at exactly 0.0 is merged into code 0** (issue 9, W2). k-means
    can leave a centroid at 0.0 in float32 (a symmetric set such as
    {-0.01, 0.01} averages to 0). Its weights decode to 0.0 whatever code they
    carry, so they are zero weights: they get code 0 (pruned -- no stored
    entry, no MAC, not a non-zero in any density), and the codebook never holds
    a second 0.0. The remaining centroids move down to keep ``codebook[1:]``
    ascending; each freed slot at the end gets an unused value (the next float32
    above the largest centroid), which ``eiesim validate`` reports as
    ``CODEBOOK-UNUSED``. Pinning a centroid at 0 would waste a code on the
    value code 0 already has; nudging it off 0 would keep MACs that add
    nothing and count them as non-zeros.

    Raises
    ------
    EieInputError
        Shapes differ, mask not bool, non-finite weights, bad ``code_bits``.
    """
    w = np.asarray(w)
    mask = np.asarray(mask)
    if w.ndim != 2:
        raise EieInputError(f"quantize_layer: w must be 2-D (n_out, n_in), got shape {w.shape}")
    if mask.dtype != np.bool_ or mask.shape != w.shape:
        raise EieInputError(
            f"quantize_layer: mask must be bool of shape {w.shape}, got {mask.dtype} {mask.shape}"
        )
    code_bits = int(code_bits)
    if not (1 <= code_bits <= 8):
        raise EieInputError(f"quantize_layer: code_bits must lie in 1..8, got {code_bits}")
    if not np.all(np.isfinite(w)):
        raise EieInputError("quantize_layer: weights contain NaN or infinity")
    n_codes = 1 << code_bits
    n_clusters = n_codes - 1
    kept = w[mask]
    codes = np.zeros(w.shape, dtype=np.uint8)
    codebook = np.zeros(n_codes, dtype=np.float32)
    if kept.size == 0:
        info: Dict[str, Any] = {
            "init": init, "method": method, "n_clusters": n_clusters, "n_weights": 0,
            "iterations": 0, "converged": True, "empty_clusters": list(range(n_clusters)),
            "inertia": 0.0,
        }
    else:
        centroids, info = kmeans_codebook(kept, n_clusters=n_clusters, init=init, seed=seed,
                                          method=method)
        labels = _nearest_sorted(kept.astype(np.float64), centroids.astype(np.float64))
        codebook[1:], codes[mask], merged = _merge_zero_centroids(centroids, labels)
        info["merged_into_zero"] = merged
    codebook[0] = np.float32(0.0)  # +0.0 by bit pattern
    n_kept = int(np.count_nonzero(codes[mask])) if kept.size else 0
    used = np.bincount(codes[mask].ravel(), minlength=n_codes) if kept.size else np.zeros(n_codes, int)
    info.setdefault("merged_into_zero", 0)
    info.update({
        "code_bits": code_bits,
        "n_kept": n_kept,
        "density": float(n_kept / w.size) if w.size else float("nan"),
        "zero_centroids": [int(c) for c in range(1, n_codes) if codebook[c] == 0.0],
        "unused_codes": [int(c) for c in range(1, n_codes) if used[c] == 0],
    })
    return codes, codebook, info


def _merge_zero_centroids(centroids: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, int]:
    """Merge every centroid equal to 0.0 (float32) into code 0; compact the rest.

    Parameters
    ----------
    centroids : numpy.ndarray
        float32 ``(k,)``, ascending (from :func:`kmeans_codebook`).
    labels : numpy.ndarray
        int ``(n,)``: index into ``centroids`` of each kept weight.

    Returns
    -------
    cb_tail : numpy.ndarray
        float32 ``(k,)``, the codebook entries ``1 .. k``: the non-zero centroids,
        ascending, then one unused filler value per merged centroid (the largest
        centroid's successive float32 successors: non-zero, distinct, never
        referenced).
    codes : numpy.ndarray
        uint8 ``(n,)``: ``1 ..`` for a weight on a non-zero centroid, 0 for one
        whose centroid was 0.0 (it decodes to 0.0 either way: now it is pruned).
    merged : int
        Kept weights moved to code 0.
    """
    zero = centroids == np.float32(0.0)
    k = centroids.size
    if not zero.any():
        return centroids, (labels + 1).astype(np.uint8), 0
    live = np.flatnonzero(~zero)
    new_code = np.zeros(k, dtype=np.int64)
    new_code[live] = np.arange(1, live.size + 1)
    tail = np.empty(k, dtype=np.float32)
    tail[:live.size] = centroids[live]
    v = centroids[live[-1]] if live.size else np.float32(0.0)
    for i in range(live.size, k):  # unused slots: distinct, non-zero, above every centroid
        v = np.nextafter(v, np.float32(np.inf), dtype=np.float32)
        tail[i] = v
    codes = new_code[labels].astype(np.uint8)
    return tail, codes, int(np.count_nonzero(codes == 0))


def quantize_bias(b: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook index for each bias value.

    EIE folds the bias in as one extra weight column whose input is the
    constant 1.0 (EIE Section III); the authors' simulator quantises that
    column with the layer's weight codebook.  This is lossy -- a bias is
    typically outside the weights' range or between centroids -- and callers
    must declare it.  Code 0 (the weight 0.0) is allowed: a bias nearest to
    zero is dropped.

    Parameters
    ----------
    b : numpy.ndarray
        float bias, shape ``(n_out,)``, finite.
    codebook : numpy.ndarray
        float32 ``(2**code_bits,)`` as returned by :func:`quantize_layer`.

    Returns
    -------
    numpy.ndarray
        uint8 ``(n_out,)``; ``codebook[codes]`` is the quantised bias.  Ties go
        to the lower index.

    Raises
    ------
    EieInputError
        Non-finite values, wrong dimensions, or a codebook of more than 256 entries.
    """
    b = np.asarray(b)
    cb = np.asarray(codebook)
    if b.ndim != 1 or cb.ndim != 1 or cb.size == 0 or cb.size > 256:
        raise EieInputError(
            f"quantize_bias: need 1-D bias and a 1-D codebook of 1..256 entries, "
            f"got {b.shape} and {cb.shape}"
        )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(cb))):
        raise EieInputError("quantize_bias: bias or codebook contains NaN or infinity")
    dist = np.abs(b.astype(np.float64)[:, None] - cb.astype(np.float64)[None, :])
    return np.argmin(dist, axis=1).astype(np.uint8)


def decode(codes: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Dense float32 weights ``codebook[codes]`` (same shape as ``codes``).

    Parameters
    ----------
    codes : numpy.ndarray
        Integer codes, any shape (uint8 in eiesim), each in
        ``0 .. len(codebook) - 1``.
    codebook : numpy.ndarray
        ``(n_codes,)`` shared weights, converted to float32.

    Returns
    -------
    numpy.ndarray
        float32, shape of ``codes``.

    Raises
    ------
    EieInputError
        A code outside ``0 .. len(codebook) - 1``.
    """
    cb = np.asarray(codebook, dtype=np.float32)
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= cb.size):
        raise EieInputError(f"decode: codes must lie in 0..{cb.size - 1}")
    return cb[codes.astype(np.intp)]


# --------------------------------------------------------------------------- trained quantization


@dataclass(frozen=True)
class SharedWeightNet:
    """A fully connected ReLU network whose weights are shared through per-layer codebooks.

    Attributes
    ----------
    codes : tuple of numpy.ndarray
        uint8, ``codes[k]`` shape ``(n_out_k, n_in_k)``; 0 = pruned (the
        weight ``codebook[0] = +0.0``), ``1 ..`` = kept.
    codebooks : tuple of numpy.ndarray
        float32, ``codebooks[k]`` shape ``(2**b_k,)``, ``codebooks[k][0]`` +0.0.
    biases : tuple of numpy.ndarray
        float32 ``(n_out_k,)``: the full-precision biases (Deep Compression
        keeps biases in float32), used when ``bias_codes[k]`` is None.
    bias_codes : tuple of (numpy.ndarray or None)
        uint8 ``(n_out_k,)`` when layer ``k``'s bias is shared through its
        weight codebook (EIE's bias column, input 1.0); then the bias is
        ``codebooks[k][bias_codes[k]]`` and ``biases[k]`` is ignored.

    Raises
    ------
    EieInputError
        Inconsistent lengths, shapes, dtypes or code values.
    """

    codes: Tuple[np.ndarray, ...]
    codebooks: Tuple[np.ndarray, ...]
    biases: Tuple[np.ndarray, ...]
    bias_codes: Tuple[Optional[np.ndarray], ...]

    def __post_init__(self) -> None:
        L = len(self.codes)
        if not L or not (len(self.codebooks) == len(self.biases) == len(self.bias_codes) == L):
            raise EieInputError("SharedWeightNet: codes, codebooks, biases, bias_codes differ in length")
        for k in range(L):
            c, cb, b, bc = self.codes[k], self.codebooks[k], self.biases[k], self.bias_codes[k]
            if c.dtype != np.uint8 or c.ndim != 2:
                raise EieInputError(f"SharedWeightNet: codes[{k}] must be 2-D uint8, got {c.dtype} {c.shape}")
            if cb.dtype != np.float32 or cb.ndim != 1 or cb.size < 2 or cb.size > 256:
                raise EieInputError(f"SharedWeightNet: codebooks[{k}] must be float32 (2..256,)")
            if cb.view(np.uint32)[0] != 0:
                raise EieInputError(f"SharedWeightNet: codebooks[{k}][0] must be +0.0")
            if c.size and int(c.max()) >= cb.size:
                raise EieInputError(f"SharedWeightNet: codes[{k}] holds {int(c.max())} >= {cb.size} entries")
            if b.shape != (c.shape[0],):
                raise EieInputError(f"SharedWeightNet: biases[{k}] has shape {b.shape}, want ({c.shape[0]},)")
            if bc is not None and (bc.dtype != np.uint8 or bc.shape != (c.shape[0],)
                                   or (bc.size and int(bc.max()) >= cb.size)):
                raise EieInputError(f"SharedWeightNet: bias_codes[{k}] must be uint8 ({c.shape[0]},) codes")
            if k and c.shape[1] != self.codes[k - 1].shape[0]:
                raise EieInputError(f"SharedWeightNet: layer {k} does not chain to layer {k - 1}")

    def weights(self) -> Tuple[np.ndarray, ...]:
        """Decoded float32 weights ``codebooks[k][codes[k]]``.

        Returns
        -------
        tuple of numpy.ndarray
            float32 ``(n_out_k, n_in_k)`` per layer (0.0 where pruned).
        """
        return tuple(cb[c] for c, cb in zip(self.codes, self.codebooks))

    def bias_values(self) -> Tuple[np.ndarray, ...]:
        """float32 biases in effect (decoded when shared).

        Returns
        -------
        tuple of numpy.ndarray
            float32 ``(n_out_k,)`` per layer: ``codebooks[k][bias_codes[k]]`` when
            the bias is shared, else a copy of ``biases[k]``.
        """
        return tuple(
            b.astype(np.float32, copy=True) if bc is None else cb[bc]
            for b, bc, cb in zip(self.biases, self.bias_codes, self.codebooks)
        )

    def to_mlp(self):
        """The decoded network as :class:`eiesim.compress.train.MLP`.

        Returns
        -------
        MLP
            Weights from :meth:`weights`, biases from :meth:`bias_values`.
        """
        from eiesim.compress.train import MLP

        return MLP(self.weights(), self.bias_values())


def centroid_gradients(codes: np.ndarray, grad_w: np.ndarray, n_codes: int) -> np.ndarray:
    """Gradient of the loss with respect to each shared weight (codebook entry).

    Deep Compression Section 3.1, Eq. (3): ``dL/dC_k = sum_{ij} dL/dW_ij *
    1(I_ij = k)`` -- the **sum** of the gradients of the weights that share
    centroid ``k`` (not their mean).

    Parameters
    ----------
    codes : numpy.ndarray
        int ``(...)`` codebook index of each weight.
    grad_w : numpy.ndarray
        float ``(...)`` gradient of each weight, same shape.
    n_codes : int
        Codebook size.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_codes,)``; entry 0 (the zero weight, pruned positions
        and fillers) is set to 0: the zero entry never moves.

    Raises
    ------
    EieInputError
        Shapes differ or a code lies outside ``0 .. n_codes - 1``.
    """
    codes = np.asarray(codes)
    grad_w = np.asarray(grad_w)
    if codes.shape != grad_w.shape:
        raise EieInputError(f"centroid_gradients: codes {codes.shape} and gradients {grad_w.shape} differ")
    if codes.size and (codes.min() < 0 or codes.max() >= n_codes):
        raise EieInputError(f"centroid_gradients: codes must lie in 0..{n_codes - 1}")
    g = np.bincount(codes.ravel().astype(np.intp), weights=grad_w.ravel().astype(np.float64),
                    minlength=n_codes)
    g[0] = 0.0
    return g


def centroid_step(codebook: np.ndarray, grad_c: np.ndarray, lr: float,
                  velocity: Optional[np.ndarray] = None, momentum: float = 0.0) -> np.ndarray:
    """One SGD(-momentum) step on a codebook; entry 0 stays ``+0.0``.

    ``v = momentum * v + g; c = c - lr * v``, computed in float64 and stored
    to the float32 codebook; ``v[0]`` and ``c[0]`` are reset to 0.

    Parameters
    ----------
    codebook : numpy.ndarray
        float32 ``(K,)``, modified in place.
    grad_c : numpy.ndarray
        float ``(K,)`` from :func:`centroid_gradients`.
    lr : float
        Learning rate.
    velocity : numpy.ndarray, optional
        float64 ``(K,)`` momentum buffer, modified in place.
    momentum : float
        In [0, 1).

    Returns
    -------
    numpy.ndarray
        The codebook (same object).
    """
    g = np.asarray(grad_c, dtype=np.float64).copy()
    g[0] = 0.0
    if velocity is not None:
        velocity *= momentum
        velocity += g
        velocity[0] = 0.0
        g = velocity
    new = codebook.astype(np.float64) - float(lr) * g
    codebook[:] = new.astype(np.float32)
    codebook[0] = np.float32(0.0)
    return codebook


def finetune_centroids(
    net: SharedWeightNet,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 2,
    lr=1e-3,
    momentum: float = 0.9,
    batch_size: int = 128,
    seed: int = 0,
    lr_schedule: str = "cosine",
    bias_lr: Optional[float] = None,
    callback: Optional[Callable[[int, SharedWeightNet], None]] = None,
) -> Tuple[SharedWeightNet, Dict[str, Any]]:
    """Trained quantization: fine-tune the shared centroids (Deep Compression Section 3.1).

    Each step runs forward and backward through the decoded weights
    ``codebook[codes]`` (:func:`eiesim.compress.train.loss_and_grads`), sums
    the weight gradients per centroid (:func:`centroid_gradients`; a shared
    bias column adds its members too) and takes a momentum step on the
    centroids (:func:`centroid_step`).  The codes never change: a pruned
    position (code 0) stays exactly 0 and a kept one keeps its non-zero code.
    Full-precision biases (``bias_codes[k] is None``) are trained by plain
    momentum SGD with ``bias_lr``.

    Parameters
    ----------
    net : SharedWeightNet
        Start point (not modified).
    X : numpy.ndarray
        float32 ``(n, n_in)`` training inputs.
    y : numpy.ndarray
        int ``(n,)`` labels.
    epochs : int
        Passes over the data (>= 0).
    lr : float or sequence of float
        Peak centroid learning rate, one for all layers or one per layer.  The
        gradient is a *sum* over members, so this is much smaller than a
        per-weight rate (and a layer with many weights per centroid wants a
        smaller one).
    momentum : float
        In [0, 1).
    batch_size : int
        Mini-batch size.
    seed : int
        Seeds the per-epoch shuffles.
    lr_schedule : {"cosine", "constant"}
        As :func:`eiesim.compress.train.train_sgd`.
    bias_lr : float, optional
        Peak learning rate of full-precision biases (default 0: frozen).
    callback : callable, optional
        ``callback(step, net)`` after every step.

    Returns
    -------
    net : SharedWeightNet
        The fine-tuned network (new arrays, same codes).
    info : dict
        ``steps``; ``layers``: one dict per layer with ``empty_codes`` (codes
        >= 1 without a member: their centroids never move and stay finite),
        ``zero_valued_codes`` (codes >= 1 whose centroid became exactly 0.0:
        a kept weight that now decodes to zero -- reported, not hidden),
        ``max_centroid_shift`` (float, largest ``|c_after - c_before|``).

    Raises
    ------
    EieInputError
        Bad shapes, labels or hyper-parameters, or a centroid that became
        non-finite (learning rate too high).
    """
    from eiesim.compress.train import MLP, cosine_lr, loss_and_grads

    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != net.codes[0].shape[1] or y.shape != (X.shape[0],):
        raise EieInputError(
            f"finetune_centroids: X {X.shape} / y {y.shape} do not fit a network with "
            f"{net.codes[0].shape[1]} inputs"
        )
    n_out = net.codes[-1].shape[0]
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_out):
        raise EieInputError(f"finetune_centroids: labels must be int in 0..{n_out - 1}")
    L = len(net.codes)
    lrs = [float(v) for v in lr] if isinstance(lr, (list, tuple, np.ndarray)) else [float(lr)] * L
    if int(epochs) < 0 or int(batch_size) < 1 or not (0.0 <= momentum < 1.0) or len(lrs) != L \
            or min(lrs) < 0:
        raise EieInputError(
            f"finetune_centroids: bad hyper-parameters epochs={epochs} batch_size={batch_size} "
            f"momentum={momentum} lr={lr} (one value or one per layer, >= 0)"
        )
    if lr_schedule not in ("cosine", "constant"):
        raise EieInputError(f"finetune_centroids: unknown lr_schedule {lr_schedule!r}")
    bias_lr = 0.0 if bias_lr is None else float(bias_lr)
    cbs = [cb.copy() for cb in net.codebooks]
    before = [cb.copy() for cb in net.codebooks]
    biases = [b.astype(np.float32, copy=True) for b in net.biases]
    vel = [np.zeros(cb.size, dtype=np.float64) for cb in cbs]
    vb = [np.zeros_like(b) for b in biases]
    # flat positions and codes of the kept weights: the only ones with a centroid gradient
    kept_idx = [np.flatnonzero(c.ravel()) for c in net.codes]
    kept_code = [c.ravel()[i].astype(np.intp) for c, i in zip(net.codes, kept_idx)]
    n = X.shape[0]
    bs = int(batch_size)
    total = max(1, int(epochs) * (-(-n // bs) if n else 0))
    rng = np.random.default_rng(seed)
    mom32 = np.float32(momentum)
    t = 0

    def current() -> SharedWeightNet:
        return SharedWeightNet(net.codes, tuple(cbs), tuple(biases), net.bias_codes)

    for _ in range(int(epochs)):
        order = rng.permutation(n)
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            Ws = tuple(cb[c] for c, cb in zip(net.codes, cbs))
            Bs = tuple(b if bc is None else cb[bc] for b, bc, cb in zip(biases, net.bias_codes, cbs))
            _, gW, gB = loss_and_grads(MLP(Ws, Bs), X[idx], y[idx])
            f = cosine_lr(1.0, t, total) if lr_schedule == "cosine" else 1.0
            for k in range(L):
                K = cbs[k].size
                g = np.bincount(kept_code[k], weights=gW[k].ravel()[kept_idx[k]].astype(np.float64),
                                minlength=K)
                bc = net.bias_codes[k]
                if bc is not None:
                    g += np.bincount(bc.astype(np.intp), weights=gB[k].astype(np.float64), minlength=K)
                elif bias_lr:
                    vb[k] *= mom32
                    vb[k] += gB[k]
                    biases[k] -= np.float32(bias_lr * f) * vb[k]
                centroid_step(cbs[k], g, lrs[k] * f, velocity=vel[k], momentum=momentum)
            t += 1
            if callback is not None:
                callback(t, current())
    layers: List[Dict[str, Any]] = []
    for k in range(L):
        if not np.all(np.isfinite(cbs[k])):
            raise EieInputError(
                f"finetune_centroids: layer {k} centroids became non-finite (learning rate {lrs[k]} too high)"
            )
        K = cbs[k].size
        members = np.bincount(kept_code[k], minlength=K)
        if net.bias_codes[k] is not None:
            members = members + np.bincount(net.bias_codes[k].astype(np.intp), minlength=K)
        layers.append({
            "empty_codes": [int(c) for c in range(1, K) if members[c] == 0],
            "zero_valued_codes": [int(c) for c in range(1, K) if members[c] and cbs[k][c] == 0.0],
            "max_centroid_shift": float(np.max(np.abs(cbs[k].astype(np.float64) - before[k]))),
        })
    return current(), {"steps": t, "layers": layers}
