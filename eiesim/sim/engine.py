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


def _kernel():
    try:
        from .._kernels import eie_sim
    except ImportError as exc:  # pragma: no cover - only on a broken install
        from .._kernels import missing_kernel_error

        raise missing_kernel_error("eie_sim", "backend='reference'", exc) from None
    return eie_sim


def _fixed_mode(prog: LayerProgram) -> tuple:
    return (prog.shift, bool(prog.fx_nearest), bool(prog.fx_saturate), prog.fx_total_bits,
            prog.fx_lo, prog.fx_hi)


def _kernel_batch(prog: LayerProgram, act: np.ndarray, act_q: np.ndarray) -> dict:
    """Run the kernel on a batch of activation rows (n, n_cols) sharing ``prog``'s layer and mode."""
    eie_sim = _kernel()
    if prog.tables is None:  # pragma: no cover - only on a broken install
        raise EieFormatError(f"layer {prog.name!r}: the kernel's tables were not built")
    n = act.shape[0]
    if prog.fixed:
        out_f = np.zeros((0, 0), dtype=np.float32)
        out_q = np.zeros((n, prog.n_out), dtype=np.int64)
    else:
        out_f = np.zeros((n, prog.n_out), dtype=np.float32)
        out_q = np.zeros((0, 0), dtype=np.int64)
    cycles = np.zeros(n, dtype=np.int64)
    busy = np.zeros(prog.n_pe, dtype=np.int64)
    stall = np.zeros(prog.n_pe, dtype=np.int64)
    counters = np.zeros(len(COUNTER_NAMES), dtype=np.int64)
    eie_sim.run_batch(
        prog.tables, act=act, act_q=act_q, codebook=prog.codebook, codebook_q=prog.codebook_q,
        fixed=prog.fixed, fixed_mode=_fixed_mode(prog), has_bias=prog.n_cols > prog.n_in, n_in=prog.n_in,
        fifo_depth=prog.fifo_depth, entries_per_line=prog.entries_per_line,
        out_f=out_f, out_q=out_q, cycles=cycles, busy=busy, stall=stall, counters=counters,
    )
    return {
        "cycles": cycles + prog.drain,
        "output": out_q if prog.fixed else out_f,
        "busy": busy,
        "stall": stall,
        "counters": {name: int(counters[i]) for i, name in enumerate(COUNTER_NAMES)},
    }


def _run_kernel(prog: LayerProgram) -> dict:
    act_q = prog.act_q[None, :] if prog.fixed else np.zeros((0, 0), dtype=np.int64)
    raw = _kernel_batch(prog, prog.act[None, :], act_q)
    raw["cycles"] = int(raw["cycles"][0])
    raw["output"] = raw["output"][0]
    return raw


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
