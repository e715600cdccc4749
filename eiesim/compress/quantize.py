"""Weight sharing by k-means (Deep Compression, Han, Mao, Dally, ICLR 2016, Section 3).

A pruned layer's surviving weights are clustered in one dimension into
``2**code_bits - 1`` centroids; every kept weight is replaced by the index of
its nearest centroid.  The EIE codebook has ``2**code_bits`` entries (16 for
the 4-bit codes of EIE, Table II) and entry 0 is the weight ``+0.0``, used by
pruned positions and by filler entries (EIE Section III-B), so the centroids
go to entries ``1 .. 2**code_bits - 1`` in ascending order.

Centroid initialisation (Deep Compression Section 3.2, Fig. 4):

* ``"linear"`` -- evenly spaced between the minimum and the maximum of the
  surviving weights (the paper's best choice: it keeps the rare large weights);
* ``"density"`` -- evenly spaced in the weights' cumulative distribution;
* ``"random"`` -- ``n_clusters`` distinct surviving weights chosen at random.

The Lloyd iterations are :func:`scipy.cluster.vq.kmeans2` with the initial
centroids passed as a matrix (``minit='matrix'``), run one iteration at a
time until the centroids stop changing.  An empty cluster keeps its previous
centroid (scipy's rule; with linear init that is its initial value unless it
lost its members later) and is reported, never turned into NaN.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Tuple

import numpy as np
from scipy.cluster.vq import kmeans2

from eiesim.errors import EieInputError

__all__ = ["kmeans_codebook", "quantize_layer", "quantize_bias", "decode"]

_INITS = ("linear", "density", "random")


def _initial_centroids(x: np.ndarray, n_clusters: int, init: str, seed: int) -> np.ndarray:
    if init == "linear":
        return np.linspace(x.min(), x.max(), n_clusters, dtype=np.float64)
    if init == "density":
        q = (np.arange(n_clusters, dtype=np.float64) + 0.5) / n_clusters
        return np.quantile(x, q)
    # random
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


def kmeans_codebook(
    weights_nonzero: np.ndarray,
    n_clusters: int = 15,
    init: str = "linear",
    seed: int = 0,
    max_iter: int = 300,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """One-dimensional k-means codebook of a layer's surviving weights.

    Parameters
    ----------
    weights_nonzero : numpy.ndarray
        The kept weights (any shape; flattened), finite, at least one.
    n_clusters : int
        Number of centroids (15 for a 16-entry EIE codebook whose entry 0 is
        the zero weight).
    init : {"linear", "density", "random"}
        Centroid initialisation (module docstring); Deep Compression uses
        ``"linear"``.
    seed : int
        Seed of the ``"random"`` initialisation (unused otherwise: Lloyd
        iterations from a given matrix are deterministic).
    max_iter : int
        Upper bound on Lloyd iterations.

    Returns
    -------
    centroids : numpy.ndarray
        float32, shape ``(n_clusters,)``, ascending, all finite.
    info : dict
        ``init``, ``n_clusters``, ``n_weights``, ``iterations`` (Lloyd steps
        run), ``converged`` (bool), ``empty_clusters`` (list of indices into
        ``centroids`` with no member at the end; such a centroid stays at its
        last finite value), ``inertia`` (sum of squared distances, float64,
        to the float32 centroids).

    Raises
    ------
    EieInputError
        No weights, non-finite weights, unknown ``init`` or ``n_clusters < 1``.
    """
    x = np.asarray(weights_nonzero, dtype=np.float64).ravel()
    if x.size == 0:
        raise EieInputError("kmeans_codebook: no weights to cluster")
    if not np.all(np.isfinite(x)):
        raise EieInputError("kmeans_codebook: weights contain NaN or infinity")
    if init not in _INITS:
        raise EieInputError(f"kmeans_codebook: init must be one of {_INITS}, got {init!r}")
    n_clusters = int(n_clusters)
    if n_clusters < 1:
        raise EieInputError(f"kmeans_codebook: n_clusters must be >= 1, got {n_clusters}")
    max_iter = int(max_iter)
    if max_iter < 1:
        raise EieInputError(f"kmeans_codebook: max_iter must be >= 1, got {max_iter}")

    code = _initial_centroids(x, n_clusters, init, seed)
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
    centroids = np.sort(code).astype(np.float32)
    labels = _nearest_sorted(x, centroids.astype(np.float64))
    counts = np.bincount(labels, minlength=n_clusters)
    info: Dict[str, Any] = {
        "init": init,
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
) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Quantise a pruned layer to codebook indices.

    Parameters
    ----------
    w : numpy.ndarray
        float weights, shape ``(n_out, n_in)`` (rows = outputs, as EIE stores W).
    mask : numpy.ndarray of bool
        Same shape; ``True`` = kept.  Kept weights equal to 0 are still kept
        (and get a non-zero code).
    code_bits : int
        Width of a codebook index (4 in EIE, Table II); the codebook has
        ``2**code_bits`` entries, 1 <= code_bits <= 8.
    init : {"linear", "density", "random"}
        Centroid initialisation, see :func:`kmeans_codebook`.
    seed : int
        Seed of the ``"random"`` initialisation.

    Returns
    -------
    codes : numpy.ndarray
        uint8, shape of ``w``: 0 at every pruned position, ``1 .. 2**code_bits - 1``
        at every kept one (a kept weight never gets code 0).
    codebook : numpy.ndarray
        float32, shape ``(2**code_bits,)``; ``codebook[0]`` is ``+0.0`` (bit
        pattern 0x00000000), ``codebook[1:]`` the centroids in ascending order.
    info : dict
        The k-means report of :func:`kmeans_codebook` plus ``code_bits``,
        ``n_kept``, ``density``, ``zero_centroids`` (codes whose centroid
        rounded to 0.0 in float32 -- a kept weight that decodes to zero) and
        ``unused_codes`` (codes 1.. no kept weight uses).  For a mask with no
        kept weight the codebook is all zeros and every code is unused.

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
            "init": init, "n_clusters": n_clusters, "n_weights": 0, "iterations": 0,
            "converged": True, "empty_clusters": list(range(n_clusters)), "inertia": 0.0,
        }
    else:
        centroids, info = kmeans_codebook(kept, n_clusters=n_clusters, init=init, seed=seed)
        codebook[1:] = centroids
        labels = _nearest_sorted(kept.astype(np.float64), centroids.astype(np.float64))
        codes[mask] = (labels + 1).astype(np.uint8)
    codebook[0] = np.float32(0.0)  # +0.0 by bit pattern
    used = np.bincount(codes[mask].ravel(), minlength=n_codes) if kept.size else np.zeros(n_codes, int)
    info.update({
        "code_bits": code_bits,
        "n_kept": int(kept.size),
        "density": float(kept.size / w.size) if w.size else float("nan"),
        "zero_centroids": [int(c) for c in range(1, n_codes) if codebook[c] == 0.0],
        "unused_codes": [int(c) for c in range(1, n_codes) if used[c] == 0],
    })
    return codes, codebook, info


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
    """Dense float32 weights ``codebook[codes]`` (same shape as ``codes``)."""
    cb = np.asarray(codebook, dtype=np.float32)
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= cb.size):
        raise EieInputError(f"decode: codes must lie in 0..{cb.size - 1}")
    return cb[codes.astype(np.intp)]
