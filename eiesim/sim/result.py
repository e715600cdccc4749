"""Result types of a simulated layer and network."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["SimResult", "TimingEvents", "COUNTER_NAMES", "FixedPointSaturationWarning", "saturation_message",
           "Float32OverflowWarning", "overflow_message"]

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
#: ``saturations``       fixed16 accumulator updates whose exact sum left the word (``fixed_total_bits``):
#:                       clipped to its range (``saturate = true``) or wrapped; always 0 in float32
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
    "saturations",
)


class FixedPointSaturationWarning(UserWarning):
    """A ``fixed16`` run left the word: accumulators or inputs were saturated (or wrapped).

    The outputs are then not W·a + b rounded to the format but clipped values
    (the FC8 input x 1000 changes the top-1 class; ``act_frac_bits = 15`` on
    LeNet drops its accuracy to chance). Raised through :mod:`warnings` by
    :func:`eiesim.sim.engine.simulate` and
    :func:`eiesim.sim.network.simulate_network`.
    """


class Float32OverflowWarning(UserWarning):
    """A ``float32`` run produced outputs that are not finite although every input was.

    An accumulator passed the float32 range (about 3.4e38; IEEE 754 binary32)
    and became +/-inf (or an inf - inf sum became NaN). The simulated
    outputs are then what the float32 hardware would hold, not W·a + b.
    Raised through :mod:`warnings` by :func:`eiesim.sim.engine.simulate`.
    """


def overflow_message(name: str, n_bad: int, n_out: int) -> str:
    """One line naming the layer and how many outputs overflowed float32.

    Parameters
    ----------
    name : str
        Layer name.
    n_bad, n_out : int
        Non-finite outputs and all outputs of the layer.

    Returns
    -------
    str
    """
    return (f"layer {name!r}: {n_bad:,} of {n_out:,} float32 outputs overflowed to inf/NaN "
            "(an accumulator passed 3.4e38); the outputs are not W·a + b (scale the input or the weights)")


def saturation_message(name: str, acc: int, inputs: int, *, saturate: bool, fmt: str,
                       n_inputs: int = 1) -> str:
    """One line naming the layer and what left the fixed-point word.

    Parameters
    ----------
    name : str
        Layer name.
    acc, inputs : int
        Accumulator updates and input activations outside the word.
    saturate : bool
        The config's overflow rule (clip, or two's-complement wrap).
    fmt : str
        The activation format, e.g. ``"Q7.8"``.
    n_inputs : int
        Input vectors the counts add up.

    Returns
    -------
    str
    """
    verb = "saturated" if saturate else "wrapped"
    over = f" over {n_inputs} inputs" if n_inputs != 1 else ""
    return (f"layer {name!r}: fixed16 {verb} {acc:,} accumulator update(s) and {inputs:,} input "
            f"activation(s){over} outside the {fmt} activation format; the outputs are {verb} "
            "values, not W·a + b (lower act_frac_bits or scale the input)")


@dataclass(frozen=True, eq=False)
class TimingEvents:
    """The timing events of one simulated input, as the timing pass computed them.

    Recorded by the kernel's timing pass (``run_batch(trace_input=...)``) or by the
    reference model (``run_reference(events=True)``); the tests hold the two
    identical. :mod:`eiesim.sim.trace` derives every traced signal from these
    arrays and the layer's pointers and codes, never from a second model.

    Attributes
    ----------
    name : str
        Layer name.
    n_pe, n_cols : int
        PEs N; columns of the layer (bias column included).
    fifo_depth, entries_per_line : int
        Activation queue depth D; spmat entries per SRAM line L.
    bc_cycle : ndarray of int64, shape (n_bc,)
        Cycle in which the CCU broadcast activation i (written to every queue at its end).
    bc_ready : ndarray of int64, shape (n_bc,)
        First cycle the CCU held activation i ready; ``bc_cycle - bc_ready`` are
        its stall cycles (some queue full).
    bc_col : ndarray of int64, shape (n_bc,)
        Column j of broadcast i (the bias column is ``n_in``).
    bc_value : ndarray of float32, shape (n_bc,)
        Its activation value (bias: 1.0).
    take : ndarray of int64, shape (n_bc, n_pe)
        Cycle at whose end PE k took broadcast i off its queue; it works on the
        column from the next cycle for max(1, entries) cycles.
    loads : ndarray of int64, shape (n_loads,)
        Cycles of the LNZD group loads.
    ptr : ndarray of int64, shape (n_pe, n_cols + 1)
        Local column pointers of each PE.
    pe_offsets : ndarray of int64, shape (n_pe + 1,)
        Start of each PE's slice in ``v``.
    v : ndarray of uint8, shape (n_entries,)
        Codebook indices (0: filler entry).
    end_cycle : int
        Cycles until the CCU is done, queues empty and PEs idle (``cycles - drain``).
    drain : int
        Pipeline drain cycles after ``end_cycle``.
    clock_hz : float
    """

    name: str
    n_pe: int
    n_cols: int
    fifo_depth: int
    entries_per_line: int
    bc_cycle: np.ndarray
    bc_ready: np.ndarray
    bc_col: np.ndarray
    bc_value: np.ndarray
    take: np.ndarray
    loads: np.ndarray
    ptr: np.ndarray
    pe_offsets: np.ndarray
    v: np.ndarray
    end_cycle: int
    drain: int
    clock_hz: float


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
    act_saturations : int
        ``fixed16``: input activations outside the activation format, saturated (or
        wrapped) when quantised; accumulator overflows are ``counters["saturations"]``.
    events : TimingEvents or None
        The run's timing events (``simulate(..., events=True)``); else None.
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
    act_saturations: int = 0
    events: Optional[TimingEvents] = None

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
            ``activation_density`` (fractions), ``act_nonzeros``,
            ``act_saturations``, ``counters``,
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
            "act_saturations": int(self.act_saturations),
            "counters": {k: int(v) for k, v in self.counters.items()},
            "pe_busy_cycles": {
                "min": int(self.busy.min()) if self.busy.size else 0,
                "max": int(self.busy.max()) if self.busy.size else 0,
                "mean": float(self.busy.mean()) if self.busy.size else 0.0,
            },
            "pe_stall_cycles_total": int(self.stall.sum()),
        }
