"""Validated, flat inputs of one simulated layer (shared by the reference model and the kernel).

Following scikit-learn's Cython pattern, every check and coercion happens here,
in Python, before either backend runs: the kernel then sees only contiguous
arrays of the declared dtypes whose indices are known to be in range.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..config import EIEConfig
from ..errors import EieFormatError, EieInputError
from .fixedpoint import fixed_format, out_of_range, quantize

__all__ = [
    "LayerProgram", "LayerPlan", "layer_plan", "prepare", "ARITH_PIPELINE_DRAIN", "SPMAT_READ_LATENCY", "WRITEBACK_LATENCY",
    "PIPELINE_DRAIN",
]

#: Cycles of the arithmetic unit behind the spmat read: (1) codebook decode and
#: row-address accumulation, (2) multiply, (3) add to the accumulator read and
#: present the write (EIE, Section IV "Arithmetic Unit" and Fig. 4; the three
#: stages of the authors' C++ simulator, ``ArithmUnit`` in ``src/arithm.cpp``).
ARITH_PIPELINE_DRAIN = 3

#: The spmat SRAM read is a pipeline stage of its own behind the pointer read and
#: address generation: the line is read the cycle after its address is formed
#: (EIE Fig. 4, "Sparse Matrix Access" after "Pointer Read"; ``SpMatRead``
#: registers the address ``PtrRead`` computed, authors' C++ simulator). The stage
#: adds latency, not occupancy: one cycle once, at the end of the layer.
SPMAT_READ_LATENCY = 1

#: The destination-activation write-back: the arithmetic unit's result is
#: registered by the activation read/write unit and written into the activation
#: SRAM one cycle later; the layer is complete only when no write is pending
#: (EIE Section IV "Activation Read/Write"; ``ActRW``'s ``write_enable`` register
#: and ``layer_complete``, authors' C++ simulator).
WRITEBACK_LATENCY = 1

#: Cycles after the last entry fetch until the layer is complete: the spmat read
#: stage, the arithmetic pipeline and the write-back, 1 + 3 + 1 = 5. With it,
#: eiesim gives the authors' simulator's cycle counts on the real AlexNet FC8
#: (7,926 cycles with queues of 7; see :mod:`eiesim.sim.reference`).
PIPELINE_DRAIN = SPMAT_READ_LATENCY + ARITH_PIPELINE_DRAIN + WRITEBACK_LATENCY

@dataclass(frozen=True, eq=False)
class LayerProgram:
    """Everything a backend needs to simulate one layer on one input vector.

    Attributes
    ----------
    name : str
    n_pe, n_out, n_in, n_cols : int
        ``n_cols = n_in + 1`` when the layer has a bias column, else ``n_in``.
    ptr : ndarray of int64, shape (n_pe, n_cols + 1)
        Per-PE local column pointers.
    pe_offsets : ndarray of int64, shape (n_pe + 1,)
        Start of each PE's entries in ``v`` / ``z``.
    tables : eiesim._kernels.eie_sim.LayerTables or None
        The kernel's per-layer tables (:func:`layer_tables`); None without the kernel.
    v, z : ndarray of uint8, shape (n_entries,)
        Codebook indices and relative row indices, PE 0 first.
    slot_col : ndarray of int64, shape (n_groups * n_pe,)
        What the CCU/LNZD sees: slot ``g*N + q`` of group ``g`` holds the column
        index of a non-zero activation, or -1 for a zero (or padding) activation.
        The last group is the bias group (pseudo-activation 1.0 in slot 0) when
        the layer has a bias column.
    act : ndarray of float32, shape (n_cols,)
        Activation values per column (bias column: 1.0).
    act_q : ndarray of int64, shape (n_cols,)
        The same in fixed point (``act_frac_bits``); zeros in float32 mode.
    codebook : ndarray of float32, shape (2**code_bits,)
    codebook_q : ndarray of int64, shape (2**code_bits,)
        Codebook in fixed point (``weight_frac_bits``); zeros in float32 mode.
    fixed : bool
        ``True`` for ``fixed16`` arithmetic.
    fifo_depth, entries_per_line, index_bits : int
    drain : int
        Cycles from the last entry fetch to the end of the layer
        (:data:`PIPELINE_DRAIN`): spmat read stage, arithmetic pipeline, write-back.
    shift, fx_lo, fx_hi, fx_nearest, fx_saturate, fx_total_bits : int
        Fixed-point narrowing of products: ``shift = weight_frac_bits``, word
        range, rounding and overflow rule.
    act_nonzeros : int
        Non-zero input activations as the LNZD sees them, bias excluded: ``!= 0`` in
        float32 mode; in fixed16 mode the quantised activation ``act_q != 0`` (a
        float input that rounds to 0 in the activation format is a zero).
    act_frac_bits : int
    act_saturations : int
        ``fixed16`` only: input activations outside the activation format's range
        (clipped, or wrapped with ``saturate = false``, when quantised); 0 in float32.
    """

    name: str
    n_pe: int
    n_out: int
    n_in: int
    n_cols: int
    ptr: np.ndarray
    pe_offsets: np.ndarray
    tables: object
    v: np.ndarray
    z: np.ndarray
    slot_col: np.ndarray
    act: np.ndarray
    act_q: np.ndarray
    codebook: np.ndarray
    codebook_q: np.ndarray
    fixed: bool
    fifo_depth: int
    entries_per_line: int
    index_bits: int
    drain: int
    shift: int
    fx_lo: int
    fx_hi: int
    fx_nearest: int
    fx_saturate: int
    fx_total_bits: int
    act_nonzeros: int
    act_frac_bits: int
    act_saturations: int = 0

    @property
    def n_groups(self) -> int:
        """Groups of N activation slots the CCU scans (bias group included)."""
        return self.slot_col.shape[0] // self.n_pe

def _coerce_activations(activations, n_in: int, name: str) -> np.ndarray:
    try:
        a = np.asarray(activations)
    except Exception as exc:  # pragma: no cover - numpy refuses very odd objects
        raise EieInputError(f"layer {name!r}: activations cannot be read as an array ({exc})") from None
    if a.ndim != 1:
        raise EieInputError(
            f"layer {name!r}: activations must be a 1-D vector, got shape {a.shape}"
        )
    if a.shape[0] != n_in:
        raise EieInputError(
            f"layer {name!r}: activation vector has {a.shape[0]} values, the layer has {n_in} inputs"
        )
    if a.dtype.kind not in "biuf":
        raise EieInputError(f"layer {name!r}: activations must be numeric, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise EieInputError(f"layer {name!r}: activation {bad} is not finite ({a[bad].item()!r})")
    with np.errstate(over="ignore"):  # a finite value too large for float32 is reported below
        a32 = np.ascontiguousarray(a, dtype=np.float32)
    if not np.all(np.isfinite(a32)):
        bad = int(np.flatnonzero(~np.isfinite(a32))[0])
        raise EieInputError(
            f"layer {name!r}: activation {bad} = {a[bad].item()!r} does not fit float32"
        )
    return a32


def _kernel_module():
    try:
        from .._kernels import eie_sim
    except ImportError:  # pragma: no cover - only on a broken install
        return None
    return eie_sim

def layer_tables(layer, threads=None):
    """Check a layer's full format rules once and return the kernel's tables for it.

    The kernel's per-layer pass (``eie_sim.build_tables``, through
    :meth:`CompressedLayer.kernel_tables`, kept on the layer) checks every rule of
    :meth:`CompressedLayer.check_format` ``(full=True)`` in one O(nnz) sweep
    while it builds the tables, without the checker's temporaries. When it
    finds a broken rule, the checker runs to name it (same message and code as
    before).

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
    threads : {None, 1, 2}
        Threads of the per-layer pass (:meth:`CompressedLayer.kernel_tables`).

    Returns
    -------
    eiesim._kernels.eie_sim.LayerTables or None
        ``None`` when the kernel is not built (the full check then runs in Python).

    Raises
    ------
    EieFormatError
        The layer breaks a format rule (the message starts with the layer's name).
    """
    tables = layer.kernel_tables(threads)
    if tables is not None:
        return tables
    try:
        layer.check_format(full=True)  # raises with the broken rule's own message
    except EieFormatError as exc:
        raise EieFormatError(f"layer {layer.name!r}: {exc}", code=exc.code) from None
    if _kernel_module() is not None:  # every rule holds: only the int32 pointer table can refuse it
        raise EieFormatError(
            f"layer {layer.name!r}: a PE holds 2**31 entries or more, beyond the kernel's int32 pointer "
            "table; use backend='reference'", code="PTR-WIDTH")
    return tables


def _check_zero_codes(layer) -> None:
    """Refuse stored entries whose code decodes to 0.0 (``ENTRY-DECODES-TO-ZERO``)."""
    # a stored entry whose code decodes to 0.0 would be simulated as a MAC and counted as a
    # non-zero although it adds nothing (docs/FORMAT.md, ENTRY-DECODES-TO-ZERO): refuse it
    cb = np.asarray(layer.codebook)
    zero_codes = np.flatnonzero(cb[1:] == 0) + 1
    if zero_codes.size:
        bad = np.isin(layer.v, zero_codes)
        if bad.any():
            raise EieFormatError(
                f"layer {layer.name!r}: {int(bad.sum()):,} stored entries use code(s) "
                f"{', '.join(str(int(k)) for k in zero_codes if np.any(layer.v == k))}, whose codebook "
                "value is 0.0: they are not fillers but add nothing (ENTRY-DECODES-TO-ZERO; re-quantise "
                "the layer: a zero weight is code 0)", code="ENTRY-DECODES-TO-ZERO")

@dataclass(frozen=True, eq=False)
class LayerPlan:
    """What :func:`prepare` derives from a (layer, config) pair alone, checked and built once.

    Attributes
    ----------
    name : str
    n_pe, n_out, n_in, n_cols : int
    has_bias : bool
    tables : eiesim._kernels.eie_sim.LayerTables or None
        The kernel's tables (:func:`layer_tables`); None without the kernel.
    ptr : ndarray of int64, shape (n_pe, n_cols + 1)
    pe_offsets : ndarray of int64, shape (n_pe + 1,)
    v, z : ndarray of uint8, shape (n_entries,)
    codebook : ndarray of float32, shape (2**code_bits,)
    codebook_q : ndarray of int64, shape (2**code_bits,)
        Codebook in fixed point (``weight_frac_bits``); zeros in float32 mode.
    fixed : bool
        ``config.arith == "fixed16"``.
    """

    name: str
    n_pe: int
    n_out: int
    n_in: int
    n_cols: int
    has_bias: bool
    tables: object
    ptr: np.ndarray
    pe_offsets: np.ndarray
    v: np.ndarray
    z: np.ndarray
    codebook: np.ndarray
    codebook_q: np.ndarray
    fixed: bool


#: layer -> (config, LayerPlan) of its last simulated config (layers compare by identity)
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def layer_plan(layer, config: EIEConfig, threads=None) -> LayerPlan:
    """Check a layer against a config and build everything per-layer a simulation needs, once.

    The result is kept for the layer object (layers are immutable) and the last
    config it was simulated with, so a warm call costs a dictionary look-up.

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
    config : EIEConfig
    threads : {None, 1, 2}
        Threads of the per-layer pass when it runs (:meth:`CompressedLayer.kernel_tables`).

    Returns
    -------
    LayerPlan

    Raises
    ------
    EieInputError
        The layer's N, code or index widths differ from the config's.
    EieFormatError
        The layer breaks a format rule (full check), or a stored entry with code
        >= 1 decodes to 0.0 (``ENTRY-DECODES-TO-ZERO``).
    """
    try:
        cached = _PLANS.get(layer)
    except TypeError:  # not weak-referenceable: build without keeping
        cached = None
    if cached is not None and (cached[0] is config or cached[0] == config):
        return cached[1]
    name = getattr(layer, "name", "") or "layer"
    if layer.n_pe != config.n_pe:
        raise EieInputError(
            f"layer {name!r} is laid out for {layer.n_pe} PEs but the config has n_pe = {config.n_pe}"
        )
    if layer.code_bits != config.code_bits or layer.index_bits != config.index_bits:
        raise EieInputError(
            f"layer {name!r} uses {layer.code_bits}-bit codes and {layer.index_bits}-bit relative "
            f"indices; the config has code_bits = {config.code_bits}, index_bits = {config.index_bits}"
        )
    tables = layer_tables(layer, threads)
    _check_zero_codes(layer)
    fixed = config.arith == "fixed16"
    if fixed:
        codebook_q = quantize(layer.codebook, config.weight_frac_bits, fixed_format(config))
    else:
        codebook_q = np.zeros(layer.codebook.shape[0], dtype=np.int64)
    n_out, n_in = layer.shape
    plan = LayerPlan(
        name=name, n_pe=layer.n_pe, n_out=n_out, n_in=n_in, n_cols=layer.n_cols, has_bias=bool(layer.has_bias),
        tables=tables, ptr=np.ascontiguousarray(layer.ptr, dtype=np.int64),
        pe_offsets=np.ascontiguousarray(layer.pe_offsets, dtype=np.int64),
        v=np.ascontiguousarray(layer.v, dtype=np.uint8), z=np.ascontiguousarray(layer.z, dtype=np.uint8),
        codebook=np.ascontiguousarray(layer.codebook, dtype=np.float32),
        codebook_q=np.ascontiguousarray(codebook_q, dtype=np.int64), fixed=fixed)
    try:
        _PLANS[layer] = (config, plan)
    except TypeError:
        pass
    return plan


def prepare(layer, activations, config: EIEConfig, threads=None) -> LayerProgram:
    """Check a layer against a config and an input vector; build the flat program.

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
        The compressed layer; its ``n_pe``, ``code_bits`` and ``index_bits``
        must equal the config's.
    activations : array_like, shape (n_in,)
        Input activations. Every value ``!= 0`` is a non-zero (negative values
        included: EIE's LNZD detects non-zeros, not positives); in ``fixed16`` mode
        the test is on the value after quantisation to the activation format
        (``act_frac_bits``), the value the hardware's activation SRAM holds.
    config : EIEConfig
    threads : {None, 1, 2}
        Threads of the per-layer pass when it runs (:meth:`CompressedLayer.kernel_tables`).

    Returns
    -------
    LayerProgram

    Raises
    ------
    EieInputError
        If the activation vector has the wrong length or rank, a non-numeric
        dtype or a non-finite value, or the layer does not match the config.
    EieFormatError
        If the layer's arrays break a format rule (full check), or a stored entry
        with code >= 1 decodes to 0.0 (``ENTRY-DECODES-TO-ZERO``).
    """
    plan = layer_plan(layer, config, threads)
    name, n_pe, n_out, n_in, n_cols = plan.name, plan.n_pe, plan.n_out, plan.n_in, plan.n_cols
    a = _coerce_activations(activations, n_in, name)

    fixed = config.arith == "fixed16"
    fmt = fixed_format(config)
    act = np.empty(n_cols, dtype=np.float32)
    act[:n_in] = a
    if plan.has_bias:
        act[n_in] = np.float32(1.0)
    act_saturations = 0
    if fixed:
        # inputs outside the activation format are clipped (or wrapped) by quantize: count them
        act_saturations = int(np.count_nonzero(out_of_range(a, config.act_frac_bits, fmt)))
        act_q = quantize(act, config.act_frac_bits, fmt)
        # the LNZD tests the activation the datapath holds: a value that quantises
        # to 0 is a zero (it would add nothing), however non-zero the float was
        nz = np.flatnonzero(act_q[:n_in] != 0)
    else:
        act_q = np.zeros(n_cols, dtype=np.int64)
        nz = np.flatnonzero(a != 0)

    # What the LNZD sees: groups of N consecutive activations, then the bias group.
    n_real_groups = -(-n_in // n_pe)
    n_groups = n_real_groups + (1 if plan.has_bias else 0)
    slot_col = np.full(n_groups * n_pe, -1, dtype=np.int64)
    slot_col[nz] = nz
    if plan.has_bias:
        slot_col[n_real_groups * n_pe] = n_in

    return LayerProgram(
        name=name,
        n_pe=n_pe,
        n_out=n_out,
        n_in=n_in,
        n_cols=n_cols,
        ptr=plan.ptr,
        pe_offsets=plan.pe_offsets,
        tables=plan.tables,
        v=plan.v,
        z=plan.z,
        slot_col=slot_col,
        act=act,
        act_q=np.ascontiguousarray(act_q, dtype=np.int64),
        codebook=plan.codebook,
        codebook_q=plan.codebook_q,
        fixed=fixed,
        fifo_depth=config.fifo_depth,
        entries_per_line=config.entries_per_line,
        index_bits=config.index_bits,
        drain=PIPELINE_DRAIN,
        shift=config.weight_frac_bits,
        fx_lo=fmt.lo,
        fx_hi=fmt.hi,
        fx_nearest=1 if config.rounding == "nearest" else 0,
        fx_saturate=1 if config.saturate else 0,
        fx_total_bits=config.fixed_total_bits,
        act_nonzeros=int(nz.shape[0]),
        act_frac_bits=config.act_frac_bits,
        act_saturations=act_saturations,
    )
