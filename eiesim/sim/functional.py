"""Untimed NumPy references for the output of one simulated layer.

These functions compute ``y = W·a (+ b)`` from a :class:`~eiesim.format.layout.CompressedLayer`
without modelling time. They are the functional oracle of the simulator: the
Cython kernel and the cycle-stepped reference model must produce the same
output **bit for bit**.

Bit-exactness needs the same order of roundings, so the accumulation follows
the order in which EIE applies the updates (Han et al., ISCA 2016, Section IV):
the CCU broadcasts the non-zero activations in increasing index ``j``, and for
each broadcast every PE walks its slice of column ``j``; after the last input
column comes the bias column with the constant input 1.0 (Section III). One
column touches each output row at most once, so the entries of a column can
be applied together (vectorised) without changing the per-row order.

Two arithmetic modes:

* :func:`spmv_float32` — float32 multiply, then float32 add, each rounded
  separately (no fused multiply-add), as in the authors' C++ simulator;
* :func:`spmv_fixed` — the 16-bit fixed-point datapath of the EIE chip
  (Section IV; Fig. 10: 16-bit fixed point costs < 0.5 % top-5 accuracy on
  AlexNet), with the Q formats, rounding and overflow rule declared in
  :class:`~eiesim.config.EIEConfig` and implemented in :mod:`eiesim.sim.fixedpoint`.
"""

from __future__ import annotations

import numpy as np

from ..config import EIEConfig
from ..errors import EieConfigError
from .fixedpoint import clamp, fixed_format, narrow, quantize
from .program import _coerce_activations

__all__ = ["spmv_float32", "spmv_fixed"]


def _column_order(layer):
    """Real (non-filler) entries of ``layer`` grouped by column.

    Returns
    -------
    col_ptr : ndarray of int64, shape (n_cols + 1,)
        Entries of column ``j`` are ``rows[col_ptr[j]:col_ptr[j+1]]``.
    rows : ndarray of int64, shape (n_real,)
        Global output row of each real entry.
    codes : ndarray of intp, shape (n_real,)
        Codebook index of each real entry (``>= 1``).
    """
    layer.check_format(full=True)  # decoded rows are then inside [0, n_out)
    real = layer.v != 0
    cols = layer.entry_cols()[real]
    rows = layer.entry_rows()[real]
    codes = layer.v[real].astype(np.intp)
    order = np.argsort(cols, kind="stable")
    col_ptr = np.zeros(layer.n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=layer.n_cols), out=col_ptr[1:])
    return col_ptr, rows[order], codes[order]


def _inputs(layer, activations):
    """Validated float32 input per stored column (bias column: 1.0) and the broadcast columns."""
    name = getattr(layer, "name", "") or "layer"
    a = _coerce_activations(activations, layer.n_in, name)
    act = np.empty(layer.n_cols, dtype=np.float32)
    act[: layer.n_in] = a
    nz = np.flatnonzero(a != 0)  # negative values are non-zeros too (EIE's LNZD)
    if layer.has_bias:
        act[layer.n_in] = np.float32(1.0)
        nz = np.append(nz, layer.n_in)
    return act, nz


def spmv_float32(layer, activations) -> np.ndarray:
    """``W·a + b`` accumulated in float32 in exactly the simulator's order.

    For each non-zero activation ``a[j]`` in increasing ``j`` (then the bias
    column with input 1.0 when ``layer.has_bias``), for each real entry
    ``(row, v)`` of column ``j``::

        y[row] = float32(y[row] + float32(codebook[v] * a[j]))

    starting from ``y = +0.0``. Fillers (``v = 0``) are skipped. This is the
    rounding sequence of the EIE model in float32 mode (the authors' C++
    simulator computes in float32), so the result is bit-identical to
    ``simulate(...).output``.

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
        The compressed layer, shape ``(n_out, n_in)``.
    activations : array_like of real numbers, shape (n_in,)
        Input vector; converted to float32 first (as the simulator does).
        Every value ``!= 0`` is a non-zero, negative values included.

    Returns
    -------
    numpy.ndarray of float32, shape (n_out,)

    Raises
    ------
    EieInputError
        If ``activations`` is not 1-D, has the wrong length, a non-numeric
        dtype or a non-finite value (also after the float32 cast).
    EieFormatError
        If the layer breaks a format rule (full check).
    """
    act, cols = _inputs(layer, activations)
    col_ptr, rows, codes = _column_order(layer)
    cb = layer.codebook  # float32
    y = np.zeros(layer.n_out, dtype=np.float32)
    for j in cols:
        lo, hi = col_ptr[j], col_ptr[j + 1]
        if lo == hi:
            continue
        r = rows[lo:hi]  # distinct rows: one update per row, same order as the hardware
        prod = cb[codes[lo:hi]] * act[j]  # float32 * float32 -> float32, rounded once
        y[r] = y[r] + prod  # float32 add, rounded once
    return y


def spmv_fixed(layer, activations, config: EIEConfig) -> np.ndarray:
    """Fixed-point accumulators of ``W·a + b`` as the EIE datapath computes them.

    EIE multiplies and accumulates in 16-bit fixed point (Han et al., ISCA
    2016, Section IV). With the formats of ``config``:

    * activations (and the bias input 1.0) are quantised to ``act_frac_bits``
      fraction bits, ``a_q = quantize(float32(a), act_frac_bits)``;
    * codebook values to ``weight_frac_bits``, ``cb_q = quantize(codebook, weight_frac_bits)``;
    * per MAC, in the simulator's column order (see :func:`spmv_float32`)::

          acc[row] = clamp(acc[row] + narrow(cb_q[v] * a_q[j], weight_frac_bits))

      where ``narrow`` rounds per ``config.rounding`` and ``clamp`` saturates
      or wraps to ``fixed_total_bits`` per ``config.saturate``
      (:mod:`eiesim.sim.fixedpoint`).

    The result is bit-identical to ``simulate(...).output_fixed`` for a
    ``config`` with ``arith="fixed16"``. Only the fixed-point fields of
    ``config`` are used (``arith``, ``n_pe`` and the timing knobs are not).

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
        The compressed layer, shape ``(n_out, n_in)``.
    activations : array_like of real numbers, shape (n_in,)
        Input vector; every value ``!= 0`` is broadcast (negative included).
    config : EIEConfig
        Supplies ``fixed_total_bits``, ``act_frac_bits``, ``weight_frac_bits``,
        ``rounding`` and ``saturate``.

    Returns
    -------
    numpy.ndarray of int64, shape (n_out,)
        Accumulators with ``act_frac_bits`` fraction bits, each in
        ``[-2**(fixed_total_bits-1), 2**(fixed_total_bits-1) - 1]``.

    Raises
    ------
    EieInputError
        If ``activations`` is malformed (see :func:`spmv_float32`).
    EieFormatError
        If the layer breaks a format rule (full check).
    EieConfigError
        If ``config`` is not an :class:`EIEConfig`.
    """
    if not isinstance(config, EIEConfig):
        raise EieConfigError(f"config: expected an EIEConfig, got {type(config).__name__}")
    act, cols = _inputs(layer, activations)
    col_ptr, rows, codes = _column_order(layer)
    fmt = fixed_format(config)
    act_q = quantize(act, config.act_frac_bits, fmt)
    cb_q = quantize(layer.codebook, config.weight_frac_bits, fmt)
    shift = config.weight_frac_bits
    acc = np.zeros(layer.n_out, dtype=np.int64)
    for j in cols:
        lo, hi = col_ptr[j], col_ptr[j + 1]
        if lo == hi:
            continue
        r = rows[lo:hi]
        prod = narrow(cb_q[codes[lo:hi]] * act_q[j], shift, fmt)
        acc[r] = clamp(acc[r] + prod, fmt)
    return acc
