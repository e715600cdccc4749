"""Load balance of a per-PE CSC layout, read from the layout alone (no simulation).

EIE (Han et al., ISCA 2016, Sections III-B and VI-B) gives PE ``k`` the rows
``i % N == k`` of W, and the CCU broadcasts one non-zero activation per cycle to
all N PEs. Two ratios bound how evenly that work is spread, both ``>= 1``
(1 = perfect):

* **PE balance** ``max_k n_k / mean_k n_k``, where ``n_k`` is PE k's real
  non-zeros over the whole layer. It is the imbalance with unbounded
  activation queues: a dense input keeps the busiest PE working ``max_k n_k``
  cycles while the mean is ``nnz / N``. ESE's load-balance-aware pruning
  (Han et al., FPGA 2017, Section 3.2; ``eiesim compress --balance
  balanced-pe``) drives it to 1.
* **Column-slice balance** ``sum_j max_k n_kj / sum_j mean_k n_kj``
  ``= N * sum_j max_k n_kj / nnz``, where ``n_kj`` is the real non-zeros of
  PE k's slice of column j. It is the imbalance with no queueing at all:
  every broadcast waits for its busiest PE, so a dense input costs
  ``sum_j max_k n_kj`` MAC cycles instead of the ideal ``nnz / N``. EIE's
  depth-8 queues put the pipeline between the two bounds, nearer this one
  (docs/balanced_pruning.md). ``--balance balanced-column`` drives it to its
  floor ``N * sum_j ceil(c_j / N) / nnz`` (``c_j`` = column j's non-zeros):
  a slice holds whole weights, so a column of ``c_j`` non-zeros cannot
  do better than ``ceil(c_j / N)`` on its busiest PE.

The column-slice balance is never below the PE balance (a sum of maxima is at
least the maximum of sums). Means are over all N PEs, those owning no row
(``N > n_out``) included: they idle, as in the simulator's load-balance
efficiency.

Counted as in ``eiesim validate`` and ``eiesim inspect``: a real non-zero is
a stored entry whose decoded value is not 0 (code ``v >= 1`` and
``codebook[v] != 0``); fillers (code 0) are not. Only the ``n_in`` weight
columns count: the bias column (and a dump's padding columns, which follow
the weight columns) are excluded, as in the weight density. Stored entries
(fillers included, the slots a PE actually spends) are reported per PE as
well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from ..errors import EieFormatError
from .layout import CompressedLayer

__all__ = ["INFO_CODES", "LayerBalance", "csc_balance", "layer_balance"]

#: Informational reports of ``eiesim validate`` (severity ``info``: never a failure, never in
#: ``ValidationReport.findings``; docs/FORMAT.md §6.3).
INFO_CODES = {
    "INFO-BALANCE": "Per layer that breaks no error rule (full checks, per-PE layouts: container, dump, "
                    "in-memory layer): real non-zeros and "
                    "stored entries per PE, the PE balance max/mean and the column-slice balance "
                    "(sum over columns of the busiest PE's slice / sum of the mean slice) with its floor.",
}


@dataclass(frozen=True)
class LayerBalance:
    """Balance of one layer's layout over its PEs (see the module docstring).

    Attributes
    ----------
    n_pe : int
        PEs N.
    n_cols : int
        Weight columns counted (``n_in``; bias and padding columns excluded).
    nonzeros_per_pe : numpy.ndarray of int64, shape (n_pe,)
        Real non-zeros of each PE (weight columns only).
    entries_per_pe : numpy.ndarray of int64, shape (n_pe,)
        Stored entries of each PE, fillers included (weight columns only).
    slice_max_sum : int
        ``sum_j max_k n_kj``: MAC cycles of a dense input when every broadcast
        waits for its busiest PE (cycles).
    slice_floor_sum : int
        ``sum_j ceil(c_j / N)``: the least ``slice_max_sum`` any layout with
        the same column counts ``c_j`` can have (cycles).
    """

    n_pe: int
    n_cols: int
    nonzeros_per_pe: np.ndarray
    entries_per_pe: np.ndarray
    slice_max_sum: int
    slice_floor_sum: int

    @property
    def nonzeros(self) -> int:
        """Real non-zeros of the weight columns, all PEs."""
        return int(self.nonzeros_per_pe.sum())

    @staticmethod
    def _ratio(num: float, den: float) -> Optional[float]:
        return float(num / den) if den > 0 else None

    @property
    def pe_balance(self) -> Optional[float]:
        """``max_k n_k / mean_k n_k`` (>= 1); None when the layer has no non-zero."""
        return self._ratio(self.n_pe * int(self.nonzeros_per_pe.max()), self.nonzeros)

    @property
    def entries_balance(self) -> Optional[float]:
        """max / mean of the stored entries per PE, fillers included; None when nothing is stored."""
        return self._ratio(self.n_pe * int(self.entries_per_pe.max()), int(self.entries_per_pe.sum()))

    @property
    def slice_balance(self) -> Optional[float]:
        """``N * sum_j max_k n_kj / nnz`` (>= :attr:`pe_balance`); None without non-zeros."""
        return self._ratio(self.n_pe * self.slice_max_sum, self.nonzeros)

    @property
    def slice_balance_floor(self) -> Optional[float]:
        """``N * sum_j ceil(c_j / N) / nnz``: the column-slice balance a perfectly balanced
        (within whole weights) layout with these column counts reaches; None without non-zeros."""
        return self._ratio(self.n_pe * self.slice_floor_sum, self.nonzeros)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form.

        Returns
        -------
        dict
            ``n_pe``, ``columns``, ``nonzeros``, ``nonzeros_per_pe`` and
            ``entries_per_pe`` (lists of int), ``pe_max`` / ``pe_mean`` (non-zeros),
            ``pe_balance``, ``entries_balance``, ``slice_max_sum`` / ``slice_floor_sum``
            (cycles), ``slice_balance``, ``slice_balance_floor`` (ratios; None without
            non-zeros).
        """
        return {
            "n_pe": self.n_pe,
            "columns": self.n_cols,
            "nonzeros": self.nonzeros,
            "nonzeros_per_pe": [int(x) for x in self.nonzeros_per_pe],
            "entries_per_pe": [int(x) for x in self.entries_per_pe],
            "pe_max": int(self.nonzeros_per_pe.max()),
            "pe_mean": self.nonzeros / self.n_pe,
            "pe_balance": self.pe_balance,
            "entries_balance": self.entries_balance,
            "slice_max_sum": self.slice_max_sum,
            "slice_floor_sum": self.slice_floor_sum,
            "slice_balance": self.slice_balance,
            "slice_balance_floor": self.slice_balance_floor,
        }

    def message(self) -> str:
        """One line for a report: both ratios with the counts behind them."""
        if not self.nonzeros:
            return f"no real non-zero in the {self.n_cols} weight columns: balance undefined"
        k = int(np.argmax(self.nonzeros_per_pe))
        return (f"PE balance max/mean {self.pe_balance:.3f} (PE {k}: {int(self.nonzeros_per_pe[k]):,} "
                f"non-zeros, mean {self.nonzeros / self.n_pe:,.1f} over {self.n_pe} PEs); column-slice "
                f"balance {self.slice_balance:.3f} (sum over columns of the busiest slice "
                f"{self.slice_max_sum:,}, floor {self.slice_balance_floor:.3f})")


def csc_balance(ptr, v, *, n_in: int, codebook=None) -> LayerBalance:
    """Balance of a per-PE CSC layout given as arrays.

    Parameters
    ----------
    ptr : array_like of int, shape (n_pe, n_ptr)
        Per-PE column pointers, ``ptr[k, 0] == 0``, non-decreasing,
        ``n_ptr >= n_in + 1``; columns past ``n_in`` (bias, dump padding) are
        ignored.
    v : array_like of int, shape (sum_k ptr[k, -1],)
        Codes of all entries, PE 0 first (PE k's share is ``ptr[k, -1]``
        entries, column order within a PE). Code 0 is a filler.
    n_in : int
        Weight columns counted, >= 1.
    codebook : array_like of float, optional
        When given, a code ``v >= 1`` with ``codebook[v] == 0.0`` is not a
        non-zero (codes past the codebook are counted as non-zeros: the
        validator reports them as ``CODE-RANGE``).

    Returns
    -------
    LayerBalance

    Raises
    ------
    EieFormatError
        ``ARGUMENT`` when the arrays do not form a layout (ptr not 2-D, too
        short, not starting at 0, decreasing, or ``v`` not holding
        ``sum_k ptr[k, -1]`` entries).

    Notes
    -----
    O(entries + n_pe * n_in) time and memory, the size of the layout itself.
    """
    P = np.asarray(ptr)
    vv = np.asarray(v)
    if P.ndim != 2 or P.shape[0] < 1 or P.dtype.kind not in "iu" or vv.ndim != 1:
        raise EieFormatError(f"ptr: expected a 2-D integer array (n_pe, columns + 1), got shape {P.shape}",
                             code="ARGUMENT")
    n_pe = int(P.shape[0])
    n_in = int(n_in)
    if n_in < 1 or P.shape[1] < n_in + 1:
        raise EieFormatError(f"ptr: {P.shape[1]} pointers per PE cannot hold {n_in} columns", code="ARGUMENT")
    P = P.astype(np.int64)
    if np.any(P[:, 0] != 0) or np.any(np.diff(P, axis=1) < 0) or int(P[:, -1].sum()) != vv.size:
        raise EieFormatError("ptr/v: pointers must start at 0, never decrease, and address all of v",
                             code="ARGUMENT")
    real = vv != 0
    if codebook is not None:
        cb = np.asarray(codebook, dtype=np.float32)
        zero_codes = np.flatnonzero(cb == 0)
        zero_codes = zero_codes[zero_codes >= 1]
        if zero_codes.size:
            real &= ~np.isin(vv, zero_codes)
    seg = np.diff(P, axis=1)  # (n_pe, n_ptr - 1) entries per (PE, column)
    off = np.concatenate(([0], np.cumsum(P[:, -1])))
    # real non-zeros per (PE, column) of the weight columns: prefix sums over each PE's entries
    cs = np.concatenate(([0], np.cumsum(real, dtype=np.int64)))
    at = off[:-1, None] + P[:, : n_in + 1]  # global positions of the column boundaries
    C = np.diff(cs[at], axis=1)  # (n_pe, n_in)
    nnz_pe = C.sum(axis=1)
    col_tot = C.sum(axis=0)
    return LayerBalance(
        n_pe=n_pe,
        n_cols=n_in,
        nonzeros_per_pe=nnz_pe,
        entries_per_pe=seg[:, :n_in].sum(axis=1),
        slice_max_sum=int(C.max(axis=0).sum()),
        slice_floor_sum=int(((col_tot + n_pe - 1) // n_pe).sum()),
    )


def layer_balance(layer) -> LayerBalance:
    """Balance of a :class:`~eiesim.format.layout.CompressedLayer` over its PEs.

    Parameters
    ----------
    layer : CompressedLayer
        Its ``n_in`` weight columns are counted; the bias column is not.

    Returns
    -------
    LayerBalance

    Raises
    ------
    EieFormatError
        ``ARGUMENT`` if ``layer`` is not a CompressedLayer.
    """
    if not isinstance(layer, CompressedLayer):
        raise EieFormatError(f"layer_balance: expected a CompressedLayer, got {type(layer).__name__}",
                             code="ARGUMENT")
    return csc_balance(layer.ptr, layer.v, n_in=layer.n_in, codebook=layer.codebook)
