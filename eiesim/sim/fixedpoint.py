"""Fixed-point arithmetic of the EIE datapath (16-bit by default).

EIE computes with 16-bit fixed-point multiply-accumulate (Han et al., ISCA 2016,
Section IV and Fig. 10: 16-bit fixed point costs < 0.5 % top-5 accuracy on
AlexNet). The Q formats are declared in :class:`eiesim.config.EIEConfig`:
activations and accumulators carry ``act_frac_bits`` fraction bits, codebook
values ``weight_frac_bits``; a product carries ``act_frac_bits +
weight_frac_bits`` and is narrowed back to ``act_frac_bits`` before it is added
to the accumulator.

These vectorised NumPy functions are the oracle for the Cython kernel, which
implements the same integer operations element by element.
"""

from __future__ import annotations

import numpy as np

from ..config import EIEConfig

__all__ = ["FixedFormat", "quantize", "narrow", "clamp", "fixed_format", "out_of_range"]


class FixedFormat:
    """Integer range and narrowing rule of one fixed-point word.

    Parameters
    ----------
    total_bits : int
        Word width including the sign bit (EIE: 16).
    rounding : {"nearest", "floor"}
        ``"nearest"`` rounds half away from zero; ``"floor"`` drops bits
        (arithmetic shift right).
    saturate : bool
        Clamp to ``[lo, hi]`` on overflow instead of two's-complement wrap.
    """

    __slots__ = ("total_bits", "lo", "hi", "rounding", "saturate")

    def __init__(self, total_bits: int, rounding: str, saturate: bool) -> None:
        self.total_bits = int(total_bits)
        self.lo = -(1 << (self.total_bits - 1))
        self.hi = (1 << (self.total_bits - 1)) - 1
        self.rounding = rounding
        self.saturate = bool(saturate)


def fixed_format(config: EIEConfig) -> FixedFormat:
    """The :class:`FixedFormat` declared by ``config``.

    Parameters
    ----------
    config : EIEConfig
        Supplies ``fixed_total_bits``, ``rounding`` and ``saturate``.

    Returns
    -------
    FixedFormat
    """
    return FixedFormat(config.fixed_total_bits, config.rounding, config.saturate)


def clamp(x: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Bring int64 values into the word range: saturate, or wrap (two's complement).

    Parameters
    ----------
    x : ndarray of int64
    fmt : FixedFormat

    Returns
    -------
    ndarray of int64, same shape, every value in ``[fmt.lo, fmt.hi]``.
    """
    x = np.asarray(x, dtype=np.int64)
    if fmt.saturate:
        return np.clip(x, fmt.lo, fmt.hi)
    span = np.int64(1) << np.int64(fmt.total_bits)
    return ((x - fmt.lo) % span) + fmt.lo


def narrow(x: np.ndarray, shift: int, fmt: FixedFormat) -> np.ndarray:
    """Drop ``shift`` fraction bits of int64 values with the declared rounding (no clamping).

    ``"nearest"`` is round half away from zero: ``sign(x) * ((|x| + 2**(shift-1)) >> shift)``;
    ``"floor"`` is the arithmetic shift ``x >> shift``.

    Parameters
    ----------
    x : ndarray of int64
    shift : int
        Number of fraction bits to drop (>= 0).
    fmt : FixedFormat

    Returns
    -------
    ndarray of int64
    """
    x = np.asarray(x, dtype=np.int64)
    if shift <= 0:
        return x.copy()
    if fmt.rounding == "floor":
        return x >> np.int64(shift)
    half = np.int64(1) << np.int64(shift - 1)
    mag = (np.abs(x) + half) >> np.int64(shift)
    return np.where(x < 0, -mag, mag)


def quantize(values: np.ndarray, frac_bits: int, fmt: FixedFormat) -> np.ndarray:
    """Convert real values to fixed-point integers with ``frac_bits`` fraction bits.

    The value is scaled by ``2**frac_bits`` in float64 (exact for float32
    inputs), rounded per ``fmt.rounding`` (nearest: half away from zero;
    floor: toward minus infinity) and clamped/wrapped into the word.

    Parameters
    ----------
    values : array_like of float
        Must be finite (callers validate).
    frac_bits : int
    fmt : FixedFormat

    Returns
    -------
    ndarray of int64, same shape.
    """
    q = _round_scaled(values, frac_bits, fmt)
    q = np.clip(q, -(2.0**62), 2.0**62)  # keep the int64 cast defined before clamping
    return clamp(q.astype(np.int64), fmt)


def _round_scaled(values, frac_bits: int, fmt: FixedFormat) -> np.ndarray:
    scaled = np.asarray(values, dtype=np.float64) * float(1 << frac_bits)
    if fmt.rounding == "floor":
        return np.floor(scaled)
    return np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)


def out_of_range(values: np.ndarray, frac_bits: int, fmt: FixedFormat) -> np.ndarray:
    """Which values :func:`quantize` has to saturate (or wrap): rounded, they leave the word.

    Parameters
    ----------
    values : array_like of float
        Must be finite (callers validate).
    frac_bits : int
    fmt : FixedFormat

    Returns
    -------
    ndarray of bool, same shape: ``True`` where the rounded value lies outside
    ``[fmt.lo, fmt.hi]``.
    """
    q = _round_scaled(values, frac_bits, fmt)
    return (q < fmt.lo) | (q > fmt.hi)
