"""LSTM gate orders and the single gate matrix EIE runs per time step.

EIE runs an LSTM the way the paper's NT-LSTM layer is shaped (EIE, Table III:
NT-LSTM 1201 -> 2400, i.e. 600 inputs + 600 hidden + 1 bias in, 4 x 600 gate
outputs): at each time step the four gates' pre-activations are **one** sparse
matrix-vector product

    z_t = [W_ih | W_hh | b] . [x_t; h_{t-1}; 1],   shape (4 H, X + H + 1)

with the bias in EIE's bias column (input 1.0). eiesim stores the rows of that
matrix in **PyTorch's gate order (i, f, g, o)**: rows ``[0, H)`` input gate,
``[H, 2H)`` forget gate, ``[2H, 3H)`` cell candidate, ``[3H, 4H)`` output gate.
Other sources order their gates differently, and a silent mix-up gives a
plausible-looking but wrong LSTM, so every source names its order:

* ``"pytorch"`` -- (i, f, g, o): ``torch.nn.LSTM`` / ``LSTMCell`` ``weight_ih``;
* ``"onnx"``    -- (i, o, f, c): the ONNX ``LSTM`` operator's ``W``, ``R``, ``B``
  (ONNX operator spec, "LSTM": "iofc");
* ``"keras"``   -- (i, f, c, o): Keras ``LSTM`` ``kernel`` (transposed: (X, 4H)).

(``g`` and ``c`` name the same gate, the cell candidate.)
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import EieFormatError

__all__ = ["GATE_ORDERS", "to_pytorch_order", "gate_matrix", "lstm_dims"]

#: Gate order of each source; ``g`` and ``c`` are both the cell candidate.
GATE_ORDERS = {
    "pytorch": ("i", "f", "g", "o"),
    "onnx": ("i", "o", "f", "g"),
    "keras": ("i", "f", "g", "o"),
}
_CANON = GATE_ORDERS["pytorch"]


def to_pytorch_order(a, source: str, axis: int = 0) -> np.ndarray:
    """Reorder the four gate blocks of ``a`` along ``axis`` from ``source``'s order to (i, f, g, o).

    Parameters
    ----------
    a : array_like, shape with ``4 H`` along ``axis``
        Weights or biases with the gates stacked in blocks of ``H``.
    source : {"pytorch", "onnx", "keras"}
    axis : int, default 0
        The gate axis (0 for PyTorch/ONNX ``(4H, X)``; 1 or -1 for Keras ``(X, 4H)``).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype, gate blocks in PyTorch order (a copy).

    Raises
    ------
    EieFormatError
        Unknown ``source``, or the gate axis is not a multiple of 4 (code ``ARGUMENT``).
    """
    if source not in GATE_ORDERS:
        raise EieFormatError(f"gate order {source!r} is not one of {sorted(GATE_ORDERS)}", code="ARGUMENT")
    a = np.asarray(a)
    n = a.shape[axis]
    if n % 4 or n == 0:
        raise EieFormatError(f"LSTM gate axis has {n} entries, not a positive multiple of 4", code="ARGUMENT")
    h = n // 4
    order = GATE_ORDERS[source]
    blocks = np.split(a, 4, axis=axis)
    return np.concatenate([blocks[order.index(g)] for g in _CANON], axis=axis).copy() if h else a.copy()


def gate_matrix(w_ih, w_hh, b_ih=None, b_hh=None, *, source: str = "pytorch") -> Tuple[np.ndarray, np.ndarray]:
    """The matrix ``[W_ih | W_hh]`` and bias EIE runs per step, rows in PyTorch gate order.

    Parameters
    ----------
    w_ih : array_like of float, shape (4 H, X)
        Input weights (Keras: pass ``kernel.T``).
    w_hh : array_like of float, shape (4 H, H)
        Recurrent weights (Keras: ``recurrent_kernel.T``; ONNX: ``R``).
    b_ih, b_hh : array_like of float, shape (4 H,), optional
        Biases, summed (PyTorch and ONNX have two; Keras one).
    source : {"pytorch", "onnx", "keras"}
        Gate order of the inputs.

    Returns
    -------
    w : numpy.ndarray of float32, shape (4 H, X + H)
    b : numpy.ndarray of float32, shape (4 H,)

    Raises
    ------
    EieFormatError
        Shapes that do not fit an LSTM, or an unknown ``source`` (code ``ARGUMENT``).
    """
    w_ih = np.asarray(w_ih, dtype=np.float32)
    w_hh = np.asarray(w_hh, dtype=np.float32)
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_hh.shape[0] != w_ih.shape[0] or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise EieFormatError(f"LSTM weights: W_ih {w_ih.shape} and W_hh {w_hh.shape} are not (4H, X) and (4H, H)",
                             code="ARGUMENT")
    b = np.zeros(w_ih.shape[0], dtype=np.float32)
    for bb in (b_ih, b_hh):
        if bb is not None:
            bb = np.asarray(bb, dtype=np.float32)
            if bb.shape != b.shape:
                raise EieFormatError(f"LSTM bias has shape {bb.shape}, expected {b.shape}", code="ARGUMENT")
            b = b + bb
    w = np.concatenate([w_ih, w_hh], axis=1)
    return (to_pytorch_order(w, source).astype(np.float32), to_pytorch_order(b, source).astype(np.float32))


def lstm_dims(shape) -> Tuple[int, int]:
    """``(X, H)`` of an ``lstm`` layer whose gate matrix has shape ``(4 H, X + H)``.

    Parameters
    ----------
    shape : tuple of int
        ``(n_out, n_in)`` of the gate matrix (bias column not counted).

    Returns
    -------
    tuple of int
        Input size X (>= 1) and hidden size H.

    Raises
    ------
    EieFormatError
        ``n_out`` is not a multiple of 4, or ``n_in <= H`` (code ``META-INCONSISTENT``).
    """
    n_out, n_in = int(shape[0]), int(shape[1])
    if n_out % 4 or n_out == 0:
        raise EieFormatError(f"lstm layer: {n_out} gate rows is not a positive multiple of 4",
                             code="META-INCONSISTENT")
    h = n_out // 4
    if n_in <= h:
        raise EieFormatError(f"lstm layer: {n_in} inputs cannot hold x_t and h_(t-1) of {h} (needs > {h})",
                             code="META-INCONSISTENT")
    return n_in - h, h
