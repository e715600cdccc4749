"""Result types of a simulated layer and network."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["SimResult", "COUNTER_NAMES"]

#: Action counters every simulation produces (all integers, whole layer, all PEs):
#:
#: ``broadcasts``        non-zero activations the CCU broadcast (bias pseudo-activation included)
#: ``ccu_stall_cycles``  cycles the CCU held a non-zero back because some activation queue was full
#: ``group_loads``       groups of N activations the CCU loaded into the LNZD register
#: ``ptr_reads``         pointer SRAM reads (one per column a PE takes: p_j and p_j+1 from the even/odd banks)
#: ``spmat_line_reads``  sparse-matrix SRAM line reads (a new line of ``spmat_line_bits``)
#: ``entries``           (v, z) entries processed, filler entries included
#: ``fillers``           filler (padding) entries processed: v = 0, no MAC
#: ``macs``              multiply-accumulates (real non-zero entries)
#: ``acc_writes``        accumulator (destination register file) writes
#: ``bypasses``          accumulator updates served by the bypass (same row as the previous cycle's MAC)
COUNTER_NAMES = (
    "broadcasts",
    "ccu_stall_cycles",
    "group_loads",
    "ptr_reads",
    "spmat_line_reads",
    "entries",
    "fillers",
    "macs",
    "acc_writes",
    "bypasses",
)


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of simulating one layer on one input vector.

    Attributes
    ----------
    name : str
        Layer name.
    shape : tuple of int
        ``(n_out, n_in)`` of the weight matrix.
    n_pe : int
        Number of PEs N.
    cycles : int
        Total cycles from the first CCU cycle until the arithmetic pipeline drained.
    clock_hz : float
        Clock used to convert cycles to seconds.
    output : ndarray of float32, shape (n_out,)
        The layer output W·a (+ b). In ``fixed16`` mode the dequantised accumulators.
    output_fixed : ndarray of int64, shape (n_out,), or None
        Raw accumulator integers (``fixed16`` mode only), ``act_frac_bits`` fraction bits.
    busy : ndarray of int64, shape (n_pe,)
        Cycles each PE spent on a column (pointer read plus one cycle per entry; an
        empty column slice costs one cycle).
    idle : ndarray of int64, shape (n_pe,)
        Cycles each PE had no column to work on (starved); ``busy + idle == cycles``.
    stall : ndarray of int64, shape (n_pe,)
        Cycles this PE's full activation queue held the CCU's broadcast back.
    counters : dict of str to int
        Action counts, see :data:`COUNTER_NAMES`.
    act_nonzeros : int
        Non-zero input activations as the LNZD sees them (``!= 0``; in ``fixed16``
        mode after quantisation to the activation format; bias pseudo-activation
        excluded).
    arith : str
        ``"float32"`` or ``"fixed16"``.
    """

    name: str
    shape: Tuple[int, int]
    n_pe: int
    cycles: int
    clock_hz: float
    output: np.ndarray
    output_fixed: Optional[np.ndarray]
    busy: np.ndarray
    idle: np.ndarray
    stall: np.ndarray
    counters: Dict[str, int] = field(default_factory=dict)
    act_nonzeros: int = 0
    arith: str = "float32"

    @property
    def time_s(self) -> float:
        """Simulated time in seconds, ``cycles / clock_hz``."""
        return self.cycles / self.clock_hz

    @property
    def load_balance_efficiency(self) -> float:
        """Useful MAC slots over all PE slots, ``macs / (cycles * n_pe)`` (EIE Section VI-B)."""
        if self.cycles == 0:
            return 0.0
        return self.counters["macs"] / (self.cycles * self.n_pe)

    @property
    def activation_density(self) -> float:
        """Fraction of input activations that are non-zero."""
        n_in = self.shape[1]
        return self.act_nonzeros / n_in if n_in else 0.0

    def to_dict(self) -> dict:
        """JSON-ready summary (no output vector).

        Returns
        -------
        dict
            ``name``, ``shape`` ([n_out, n_in]), ``n_pe``, ``arith``, ``cycles``
            (cycles), ``time_s`` (s), ``load_balance_efficiency`` and
            ``activation_density`` (fractions), ``act_nonzeros``, ``counters``,
            ``pe_busy_cycles`` (min/max/mean over PEs, cycles) and
            ``pe_stall_cycles_total`` (cycles).
        """
        return {
            "name": self.name,
            "shape": [int(self.shape[0]), int(self.shape[1])],
            "n_pe": int(self.n_pe),
            "arith": self.arith,
            "cycles": int(self.cycles),
            "time_s": float(self.time_s),
            "load_balance_efficiency": float(self.load_balance_efficiency),
            "activation_density": float(self.activation_density),
            "act_nonzeros": int(self.act_nonzeros),
            "counters": {k: int(v) for k, v in self.counters.items()},
            "pe_busy_cycles": {
                "min": int(self.busy.min()) if self.busy.size else 0,
                "max": int(self.busy.max()) if self.busy.size else 0,
                "mean": float(self.busy.mean()) if self.busy.size else 0.0,
            },
            "pe_stall_cycles_total": int(self.stall.sum()),
        }
