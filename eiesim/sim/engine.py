"""Simulate a compressed layer on EIE: validate, call a backend, assemble a :class:`SimResult`.

Two backends produce identical results (cycles, counters, output bits):

* ``"kernel"`` (default) — the Cython kernel ``eiesim._kernels.eie_sim``;
* ``"reference"`` — the cycle-stepped pure-Python model in :mod:`eiesim.sim.reference`.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ..config import EIEConfig
from ..errors import EieFormatError, EieInputError
from .program import LayerProgram, prepare
from .reference import run_reference
from .result import COUNTER_NAMES, FixedPointSaturationWarning, SimResult, saturation_message

__all__ = ["simulate", "BACKENDS"]

BACKENDS = ("kernel", "reference")


def _run_kernel(prog: LayerProgram) -> dict:
    try:
        from .._kernels import eie_sim
    except ImportError as exc:  # pragma: no cover - only on a broken install
        from .._kernels import missing_kernel_error

        raise missing_kernel_error("eie_sim", "backend='reference'", exc) from None
    out_f = np.zeros(prog.n_out, dtype=np.float32)
    out_q = np.zeros(prog.n_out, dtype=np.int64)
    busy = np.zeros(prog.n_pe, dtype=np.int64)
    stall = np.zeros(prog.n_pe, dtype=np.int64)
    counters = np.zeros(len(COUNTER_NAMES), dtype=np.int64)
    cycles = eie_sim.run_layer(
        prog.ptr_t, prog.pe_offsets, prog.packed,
        prog.slot_col, prog.act, prog.act_q, prog.codebook, prog.codebook_q,
        out_f, out_q, busy, stall, counters,
        prog.n_pe, prog.fifo_depth, prog.entries_per_line, prog.index_bits, prog.fixed,
        prog.shift, prog.fx_lo, prog.fx_hi, prog.fx_nearest, prog.fx_saturate, prog.fx_total_bits,
    )
    if cycles < 0:
        raise EieFormatError(
            f"layer {prog.name!r}: the kernel met a {'row' if cycles == -1 else 'column'} index "
            "outside the layer (the layer's arrays are inconsistent)", code="META-INCONSISTENT"
        )
    return {
        "cycles": int(cycles) + prog.drain,
        "output": out_q if prog.fixed else out_f,
        "busy": busy,
        "stall": stall,
        "counters": {name: int(counters[i]) for i, name in enumerate(COUNTER_NAMES)},
    }


def simulate(layer, activations, config: Optional[EIEConfig] = None, *, backend: str = "kernel",
             warn: bool = True) -> SimResult:
    """Simulate one compressed layer on one input vector, cycle by cycle.

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
        Layer laid out for ``config.n_pe`` PEs.
    activations : array_like of float, shape (n_in,)
        Input activations; every value ``!= 0`` counts as a non-zero (in ``fixed16``
        mode: every value whose quantised activation is ``!= 0``).
    config : EIEConfig, optional
        Hardware configuration; defaults to :meth:`EIEConfig.for_layer` (the reference
        design with the layer's N, code and index widths).
    backend : {"kernel", "reference"}
        Compiled kernel or the pure-Python reference model (identical results).
    warn : bool
        Issue a :class:`~eiesim.sim.result.FixedPointSaturationWarning` when a
        ``fixed16`` run saturated (or wrapped) an accumulator or an input
        (``counters["saturations"]``, ``act_saturations``); the network simulation
        passes False and warns once per layer.

    Returns
    -------
    SimResult
        Cycles, per-PE busy/idle/stall cycles, action counters and the output
        vector (float32 W·a + b; in ``fixed16`` mode the dequantised accumulators
        plus the raw integers in ``output_fixed``).

    Raises
    ------
    EieInputError
        ``layer`` is not a CompressedLayer; activation vector of the wrong
        length, rank or dtype, or a non-finite value; layer and config disagree
        (N, code or index bits).
    EieFormatError
        The layer's arrays break a format rule.
    EieConfigError
        ``backend`` is unknown or ``config`` is not an EIEConfig.

    Warns
    -----
    FixedPointSaturationWarning
        ``fixed16`` only, with ``warn``: an accumulator update or an input activation
        left the word (counts in ``counters["saturations"]`` and ``act_saturations``).
    """
    from ..errors import EieConfigError

    if backend not in BACKENDS:
        raise EieConfigError(f"backend {backend!r} is not one of {BACKENDS}")
    from ..format.layout import CompressedLayer

    if not isinstance(layer, CompressedLayer):
        raise EieInputError(f"simulate: expected a CompressedLayer, got {type(layer).__name__}")
    if config is None:
        config = EIEConfig.for_layer(layer)
    elif not isinstance(config, EIEConfig):
        raise EieConfigError(f"simulate: config must be an EIEConfig, got {type(config).__name__}")
    prog = prepare(layer, activations, config)
    raw = _run_kernel(prog) if backend == "kernel" else run_reference(prog)
    if prog.fixed:
        output_fixed = np.asarray(raw["output"], dtype=np.int64)
        output = (output_fixed.astype(np.float64) / float(1 << config.act_frac_bits)).astype(np.float32)
    else:
        output_fixed = None
        output = np.asarray(raw["output"], dtype=np.float32)
    cycles = int(raw["cycles"])
    busy = np.asarray(raw["busy"], dtype=np.int64)
    n_acc = int(raw["counters"]["saturations"])
    if warn and (n_acc or prog.act_saturations):
        warnings.warn(saturation_message(
            prog.name, n_acc, prog.act_saturations, saturate=config.saturate,
            fmt=f"Q{config.fixed_total_bits - 1 - config.act_frac_bits}.{config.act_frac_bits}"),
            FixedPointSaturationWarning, stacklevel=2)
    return SimResult(
        name=prog.name,
        shape=(prog.n_out, prog.n_in),
        n_pe=prog.n_pe,
        cycles=cycles,
        clock_hz=config.clock_hz,
        output=output,
        output_fixed=output_fixed,
        busy=busy,
        idle=cycles - busy,
        stall=np.asarray(raw["stall"], dtype=np.int64),
        counters=dict(raw["counters"]),
        act_nonzeros=prog.act_nonzeros,
        arith=config.arith,
        act_saturations=prog.act_saturations,
    )
