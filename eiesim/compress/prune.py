"""Magnitude pruning masks (Deep Compression, Han, Mao, Dally, ICLR 2016, Section 2).

A mask is a boolean array of the weight's shape, ``True`` where the weight is
kept.  Two rules:

* :func:`magnitude_mask` keeps a given fraction of the weights, the largest in
  magnitude -- the way per-layer densities such as LeNet-300-100's
  ip1 8 %, ip2 9 %, ip3 26 % (Deep Compression Table 2 / EIE Table III) are
  hit exactly;
* :func:`threshold_mask` keeps ``|w| > quality * std(w)``, the rule of the
  authors' Caffe implementation ("quality parameter" times the layer's
  standard deviation; Han et al., NIPS 2015, Section 3).
"""

from __future__ import annotations

import numpy as np

from eiesim.errors import EieInputError

__all__ = ["magnitude_mask", "threshold_mask", "mask_density"]


def _as_finite(w, who: str) -> np.ndarray:
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating) and not np.issubdtype(w.dtype, np.integer):
        raise EieInputError(f"{who}: weights must be numeric, got dtype {w.dtype}")
    if not np.all(np.isfinite(w)):
        raise EieInputError(f"{who}: weights contain NaN or infinity")
    return w


def magnitude_mask(w: np.ndarray, density: float) -> np.ndarray:
    """Keep the ``density`` fraction of weights that are largest in magnitude.

    Parameters
    ----------
    w : numpy.ndarray
        Weights of any shape (float or int), all finite.
    density : float
        Fraction kept, in [0, 1].  The number kept is
        ``k = floor(density * w.size + 0.5)`` (round half up).

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``w``; exactly ``k`` entries are ``True``: the ``k`` largest
        ``|w|``.  Ties in ``|w|`` are broken deterministically in favour of the
        lower flat (C-order) index.

    Raises
    ------
    EieInputError
        ``density`` outside [0, 1] or not finite; non-finite weights.

    Notes
    -----
    Weights equal to 0 can be "kept" when ``k`` exceeds the number of
    non-zeros; callers that need non-zero survivors should intersect the mask
    with ``w != 0``.
    """
    w = _as_finite(w, "magnitude_mask")
    density = float(density)
    if not (0.0 <= density <= 1.0):
        raise EieInputError(f"magnitude_mask: density must lie in [0, 1], got {density}")
    n = w.size
    k = int(np.floor(density * n + 0.5))
    k = min(max(k, 0), n)
    flat = np.abs(w.ravel()).astype(np.float64, copy=False)
    # stable sort of -|w|: among equal magnitudes the lower index comes first
    order = np.argsort(-flat, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask.reshape(w.shape)


def threshold_mask(w: np.ndarray, quality: float) -> np.ndarray:
    """Keep weights whose magnitude exceeds ``quality`` standard deviations.

    Parameters
    ----------
    w : numpy.ndarray
        Weights of any shape, all finite.
    quality : float
        Non-negative multiplier of the layer's standard deviation (Deep
        Compression's "quality parameter").

    Returns
    -------
    numpy.ndarray of bool
        ``|w| > quality * std(w)``, where ``std`` is the population standard
        deviation (``ddof=0``) of all entries of ``w`` (zeros included),
        computed in float64.  Strictly greater: a weight exactly at the
        threshold is pruned.

    Raises
    ------
    EieInputError
        ``quality`` negative or not finite; non-finite weights.
    """
    w = _as_finite(w, "threshold_mask")
    quality = float(quality)
    if not (np.isfinite(quality) and quality >= 0.0):
        raise EieInputError(f"threshold_mask: quality must be finite and >= 0, got {quality}")
    w64 = w.astype(np.float64, copy=False)
    thr = quality * float(np.std(w64)) if w.size else 0.0
    return np.abs(w64) > thr


def mask_density(mask: np.ndarray) -> float:
    """Fraction of ``True`` entries of a mask (``nan`` for an empty one)."""
    mask = np.asarray(mask, dtype=bool)
    return float(mask.mean()) if mask.size else float("nan")
