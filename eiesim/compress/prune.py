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

Iterative pruning (prune -> retrain -> prune harder; Han et al., NIPS 2015,
Section 3.5) uses :func:`prune_round`: each round's mask is a subset of the
previous one (the pruned set only grows, a pruned weight is never revived),
and the quality rule's standard deviation is that of the *master* weights --
the trained, unpruned layer recorded before the first round -- so that a
quality parameter means the same threshold in every round (the standard
deviation of an already-pruned layer, zeros included, shrinks round by
round).  The magnitude ranking of the density rule is over the current
(retrained) values of the surviving weights.  The schedule itself (which
densities, how long to retrain) is :func:`eiesim.compress.pipeline.prune_retrain`.
"""

from __future__ import annotations

import numpy as np

from eiesim.errors import EieInputError

__all__ = ["magnitude_mask", "threshold_mask", "mask_density", "prune_round", "master_std"]


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
    """Fraction of ``True`` entries of a mask (``nan`` for an empty one).

    Parameters
    ----------
    mask : numpy.ndarray
        Any shape; converted to bool (``True`` = kept weight).

    Returns
    -------
    float
        Kept fraction in [0, 1]; ``nan`` when ``mask`` has no elements.
    """
    mask = np.asarray(mask, dtype=bool)
    return float(mask.mean()) if mask.size else float("nan")


def master_std(w: np.ndarray) -> float:
    """Population standard deviation (float64, ``ddof=0``) of a layer's master weights.

    Parameters
    ----------
    w : numpy.ndarray
        The trained, unpruned weights of one layer, any shape, finite.

    Returns
    -------
    float
        The reference of the quality rule in every round of
        :func:`prune_round` (Han et al., NIPS 2015, Section 3: threshold =
        quality x the layer's standard deviation).
    """
    w = _as_finite(w, "master_std")
    return float(np.std(w.astype(np.float64))) if w.size else 0.0


def prune_round(
    w: np.ndarray,
    prev_mask: "np.ndarray | None" = None,
    *,
    density: "float | None" = None,
    quality: "float | None" = None,
    std_ref: "float | None" = None,
) -> np.ndarray:
    """One round of iterative magnitude pruning; the pruned set only grows.

    Exactly one of ``density`` and ``quality`` is given.

    Parameters
    ----------
    w : numpy.ndarray
        The layer's current weights (after the previous round's retraining),
        any shape, finite.  Pruned positions are expected to be 0 but their
        values are ignored: ``prev_mask`` decides.
    prev_mask : numpy.ndarray of bool, optional
        The previous round's mask (``True`` = kept), shape of ``w``; default
        all kept (the first round).
    density : float, optional
        Target fraction of the **whole** layer kept, in [0, 1]:
        ``k = floor(density * w.size + 0.5)`` weights with the largest
        ``|w|`` among the survivors of ``prev_mask`` (ties: lower flat index).
        When ``k`` is at least the number of survivors, ``prev_mask`` is
        returned unchanged (never un-prune).
    quality : float, optional
        Keep the survivors with ``|w| > quality * std_ref`` (strictly).
    std_ref : float, optional
        Standard deviation the quality rule multiplies: that of the master
        (unpruned) weights, :func:`master_std`.  Default: the standard
        deviation of ``w`` itself (right for a first round on dense weights).

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``w``; a subset of ``prev_mask``.

    Raises
    ------
    EieInputError
        Both or neither of ``density``/``quality``; values out of range;
        ``prev_mask`` not a bool array of ``w``'s shape; non-finite weights.
    """
    w = _as_finite(w, "prune_round")
    if (density is None) == (quality is None):
        raise EieInputError("prune_round: give exactly one of density= and quality=")
    if prev_mask is None:
        prev = np.ones(w.shape, dtype=bool)
    else:
        prev = np.asarray(prev_mask)
        if prev.dtype != np.bool_ or prev.shape != w.shape:
            raise EieInputError(
                f"prune_round: prev_mask must be bool of shape {w.shape}, got {prev.dtype} {prev.shape}"
            )
    if density is not None:
        density = float(density)
        if not (0.0 <= density <= 1.0):
            raise EieInputError(f"prune_round: density must lie in [0, 1], got {density}")
        k = min(max(int(np.floor(density * w.size + 0.5)), 0), w.size)
        alive = np.flatnonzero(prev.ravel())
        if k >= alive.size:
            return prev.copy()
        mag = np.abs(w.ravel()[alive]).astype(np.float64, copy=False)
        order = np.argsort(-mag, kind="stable")  # alive is ascending: ties -> lower index
        mask = np.zeros(w.size, dtype=bool)
        mask[alive[order[:k]]] = True
        return mask.reshape(w.shape)
    quality = float(quality)
    if not (np.isfinite(quality) and quality >= 0.0):
        raise EieInputError(f"prune_round: quality must be finite and >= 0, got {quality}")
    ref = master_std(w) if std_ref is None else float(std_ref)
    if not (np.isfinite(ref) and ref >= 0.0):
        raise EieInputError(f"prune_round: std_ref must be finite and >= 0, got {std_ref}")
    return prev & (np.abs(w.astype(np.float64, copy=False)) > quality * ref)
