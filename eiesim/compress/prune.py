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

Load-balance-aware pruning (:func:`balanced_mask`; the ``balance=`` option of
:func:`prune_round`) decides *which* weights survive so that the PEs of the
EIE layout (row ``i`` -> PE ``i mod N``; EIE, Han et al., ISCA 2016,
Section III-A) get equal work: ``"balanced-pe"`` gives every PE's rows the
same number of non-zeros (+-1), as ESE's load-balance-aware pruning (Han et
al., FPGA 2017, Section 3.2); ``"balanced-column"`` gives every PE's slice of
each column the same count (+-1).  ``docs/balanced_pruning.md`` says what each
costs in accuracy and why.
"""

from __future__ import annotations

import numpy as np

from eiesim.errors import EieInputError

__all__ = [
    "magnitude_mask",
    "threshold_mask",
    "mask_density",
    "prune_round",
    "master_std",
    "BALANCE_MODES",
    "balanced_mask",
]

#: Values of the ``balance`` option: how the kept weights are spread over the PEs.
BALANCE_MODES = ("none", "balanced-pe", "balanced-column")


def _as_finite(w, who: str) -> np.ndarray:
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating) and not np.issubdtype(w.dtype, np.integer):
        raise EieInputError(f"{who}: weights must be numeric, got dtype {w.dtype}")
    if not np.all(np.isfinite(w)):
        raise EieInputError(f"{who}: weights contain NaN or infinity")
    return w


def _top_k(mag: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest values of ``mag``, ties broken towards the lower position.

    The same set as ``np.argsort(-mag, kind="stable")[:k]`` in O(n) (:func:`numpy.partition`
    finds the k-th largest value ``t``; every value above ``t`` is kept, then the values equal
    to ``t`` in position order): on ddddocr's 8.4 M-weight output layer 0.08 s against 3.3 s for
    the stable sort (one call each on a loaded 2-core machine; not a bench.py ratio).

    Parameters
    ----------
    mag : numpy.ndarray of float64, 1-D
        Magnitudes, finite (no NaN).
    k : int
        How many to keep, 0 <= k <= mag.size.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Positions (not in rank order).
    """
    n = mag.size
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    t = np.partition(mag, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(mag > t)
    ties = np.flatnonzero(mag == t)
    return np.concatenate([above, ties[: k - above.size]])


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
    # the k largest |w|; among equal magnitudes the lower index first (= a stable sort of -|w|)
    mask = np.zeros(n, dtype=bool)
    mask[_top_k(flat, k)] = True
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


def _rank_within(keys_primary: np.ndarray, mag: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rank of every item inside its ``keys_primary`` group, by ``|w|`` descending, ties lower index."""
    order = np.lexsort((idx, -mag, keys_primary))
    g = keys_primary[order]
    new = np.empty(g.size, dtype=bool)
    if g.size:
        new[0] = True
        new[1:] = g[1:] != g[:-1]
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    rank = np.empty(g.size, dtype=np.int64)
    rank[order] = np.arange(g.size, dtype=np.int64) - starts[run]
    return rank


def balanced_mask(
    w: np.ndarray,
    n_keep: int,
    n_pe: int,
    mode: str = "balanced-pe",
    candidates: "np.ndarray | None" = None,
) -> np.ndarray:
    """Keep ``n_keep`` weights of a layer, spread evenly over the PEs of the EIE layout.

    The layout is EIE's (Han et al., ISCA 2016, Section III-A): row ``i`` of
    the ``(n_out, n_in)`` matrix belongs to PE ``i mod n_pe``.  The kept set
    is chosen by water-filling: every group (a PE, or a PE's slice of one
    column) first gets its largest ``|w|``, then every group its second
    largest, and so on; in the last, partial level the groups whose next
    weight is largest win.  So inside its quota each group keeps its largest
    weights, and the counts differ by at most one between groups unless a
    group runs out of candidates (it then keeps all of them).

    Parameters
    ----------
    w : numpy.ndarray
        Weights, 2-D ``(n_out, n_in)`` (rows = outputs), float or int, finite.
    n_keep : int
        Weights to keep, >= 0.  When it is at least the number of
        candidates, every candidate is kept.
    n_pe : int
        PEs N of the layout, >= 1.
    mode : {"balanced-pe", "balanced-column"}
        ``"balanced-pe"`` (ESE, Han et al., FPGA 2017, Section 3.2): the
        groups are the PEs; each PE's rows together keep ``n_keep / P``
        (+-1) weights, where P = ``min(n_pe, n_out)`` PEs own rows.
        ``"balanced-column"``: the groups are the column slices (column
        ``j``, PE ``p``); the number kept in column ``j`` is the number
        plain magnitude pruning (:func:`magnitude_mask` over the candidates)
        keeps there, and it is split evenly (+-1) over the PEs -- the
        balance one broadcast of activation ``j`` actually sees.
    candidates : numpy.ndarray of bool, optional
        Positions that may be kept (shape of ``w``); default every non-zero
        of ``w``.  Exact zeros are never candidates (a kept 0 is not a
        non-zero an EIE PE stores).

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``w``; ``min(n_keep, #candidates)`` entries ``True``, a
        subset of the candidates.  Balance guarantee: for any two groups
        ``p`` and ``q`` (of the same column, for ``"balanced-column"``),
        ``count[p] <= count[q] + 1`` whenever ``q`` kept fewer than its
        candidates.  Ties in ``|w|`` go to the lower flat (C-order) index.

    Raises
    ------
    EieInputError
        ``w`` not 2-D or not finite; ``n_keep`` < 0; ``n_pe`` < 1; unknown
        ``mode``; ``candidates`` not a bool array of ``w``'s shape.
    """
    w = _as_finite(w, "balanced_mask")
    if w.ndim != 2:
        raise EieInputError(f"balanced_mask: weights must be 2-D (n_out, n_in), got shape {w.shape}")
    if mode not in ("balanced-pe", "balanced-column"):
        raise EieInputError(
            f"balanced_mask: mode must be 'balanced-pe' or 'balanced-column', got {mode!r}"
        )
    n_keep, n_pe = int(n_keep), int(n_pe)
    if n_keep < 0:
        raise EieInputError(f"balanced_mask: n_keep must be >= 0, got {n_keep}")
    if n_pe < 1:
        raise EieInputError(f"balanced_mask: n_pe must be >= 1, got {n_pe}")
    cand = w != 0
    if candidates is not None:
        c = np.asarray(candidates)
        if c.dtype != np.bool_ or c.shape != w.shape:
            raise EieInputError(
                f"balanced_mask: candidates must be bool of shape {w.shape}, got {c.dtype} {c.shape}"
            )
        cand &= c
    idx = np.flatnonzero(cand.ravel())
    if n_keep >= idx.size:
        return cand
    n_in = w.shape[1]
    mag = np.abs(w.ravel()[idx]).astype(np.float64, copy=False)
    cols = idx % n_in
    pe = (idx // n_in) % n_pe
    if mode == "balanced-pe":
        group = pe
        sup = np.zeros(idx.size, dtype=np.int64)
        quota = np.array([n_keep], dtype=np.int64)
    else:
        group = cols * n_pe + pe
        sup = cols
        order = np.argsort(-mag, kind="stable")  # idx ascending: ties -> lower index
        quota = np.bincount(cols[order[:n_keep]], minlength=n_in)
    rank = _rank_within(group, mag, idx)
    # inside each super-group (the layer, or a column): levels of rank first, then |w| descending
    order = np.lexsort((idx, -mag, rank, sup))
    s = sup[order]
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    new[1:] = s[1:] != s[:-1]
    starts = np.flatnonzero(new)
    pos = np.arange(s.size, dtype=np.int64) - starts[np.cumsum(new) - 1]
    take = order[pos < quota[s]]
    mask = np.zeros(w.size, dtype=bool)
    mask[idx[take]] = True
    return mask.reshape(w.shape)


def prune_round(
    w: np.ndarray,
    prev_mask: "np.ndarray | None" = None,
    *,
    density: "float | None" = None,
    quality: "float | None" = None,
    std_ref: "float | None" = None,
    balance: str = "none",
    n_pe: "int | None" = None,
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
    balance : {"none", "balanced-pe", "balanced-column"}, default "none"
        ``"none"``: the rules above (plain magnitude).  Otherwise the rule
        only fixes *how many* survive (``k`` for a density; the number of
        survivors above the threshold for a quality) and
        :func:`balanced_mask` picks them among the non-zero survivors of
        ``prev_mask``, spread evenly over the ``n_pe`` PEs.
    n_pe : int, optional
        PEs of the layout; required (>= 1) when ``balance`` is not ``"none"``.

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``w``; a subset of ``prev_mask``.

    Raises
    ------
    EieInputError
        Both or neither of ``density``/``quality``; values out of range;
        ``prev_mask`` not a bool array of ``w``'s shape; non-finite weights;
        an unknown ``balance``, or a balanced mode without ``n_pe`` or on
        weights that are not 2-D.
    """
    if balance not in BALANCE_MODES:
        raise EieInputError(f"prune_round: balance must be one of {', '.join(BALANCE_MODES)}, got {balance!r}")
    if balance != "none":
        if n_pe is None:
            raise EieInputError(f"prune_round: balance={balance!r} needs n_pe (the PEs of the layout)")
        plain = prune_round(w, prev_mask, density=density, quality=quality, std_ref=std_ref)
        prev = np.ones(np.shape(w), dtype=bool) if prev_mask is None else np.asarray(prev_mask)
        if density is not None:
            n_keep = min(max(int(np.floor(float(density) * np.size(w) + 0.5)), 0), np.size(w))
        else:
            n_keep = int(plain.sum())
        return balanced_mask(w, n_keep, n_pe, balance, candidates=prev)
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
        mask = np.zeros(w.size, dtype=bool)
        mask[alive[_top_k(mag, k)]] = True  # alive is ascending: ties -> lower index
        return mask.reshape(w.shape)
    quality = float(quality)
    if not (np.isfinite(quality) and quality >= 0.0):
        raise EieInputError(f"prune_round: quality must be finite and >= 0, got {quality}")
    ref = master_std(w) if std_ref is None else float(std_ref)
    if not (np.isfinite(ref) and ref >= 0.0):
        raise EieInputError(f"prune_round: std_ref must be finite and >= 0, got {std_ref}")
    return prev & (np.abs(w.astype(np.float64, copy=False)) > quality * ref)
