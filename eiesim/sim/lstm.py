"""LSTM layers on EIE: one sparse M x V per time step, the gate functions on the host.

Assumption (stated, as in the EIE paper's NT-LSTM benchmark, which times only
the M x V): at each time step the PE array computes the four gates'
pre-activations ``z_t = [W_ih | W_hh | b] . [x_t; h_{t-1}; 1]`` (one layer of
shape ``(4 H, X + H)`` with the bias column, rows in PyTorch gate order
i, f, g, o; :mod:`eiesim.format.lstm`). The element-wise part

    i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
    c_t = f * c_{t-1} + i * g,      h_t = o * tanh(c_t)

runs **outside the PE array** (on the host) and is counted as operations, not
cycles (:func:`host_ops_per_step`). Time steps are sequential: ``h_t`` is part
of the input of step ``t + 1``, so their cycles add. ``h_{t-1}`` is dense
(no zero-skipping on it) unless it happens to be exactly 0 (the zero initial
state at ``t = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from ..config import EIEConfig
from ..errors import EieInputError
from ..format.lstm import lstm_dims
from .engine import simulate
from .result import COUNTER_NAMES

__all__ = ["sigmoid", "lstm_cell_update", "lstm_reference", "host_ops_per_step", "LstmResult",
           "simulate_lstm", "simulate_bidirectional"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in the input's dtype (float32 stays float32), overflow-free.

    Parameters
    ----------
    x : numpy.ndarray of float

    Returns
    -------
    numpy.ndarray
        ``1 / (1 + exp(-x))``, same shape and dtype.
    """
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    one = np.ones((), dtype=x.dtype)
    return np.where(x >= 0, one / (one + e), e / (one + e)).astype(x.dtype, copy=False)


def lstm_cell_update(z: np.ndarray, c_prev: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The host's element-wise step: gate pre-activations -> ``(h_t, c_t)``.

    Parameters
    ----------
    z : numpy.ndarray of float32, shape (4 H,)
        Gate pre-activations in PyTorch order (i, f, g, o).
    c_prev : numpy.ndarray of float32, shape (H,)

    Returns
    -------
    h, c : numpy.ndarray of float32, shape (H,)
    """
    z = np.asarray(z, dtype=np.float32)
    h4 = z.shape[-1] // 4
    i = sigmoid(z[..., :h4])
    f = sigmoid(z[..., h4:2 * h4])
    g = np.tanh(z[..., 2 * h4:3 * h4])
    o = sigmoid(z[..., 3 * h4:])
    c = f * c_prev + i * g
    return (o * np.tanh(c)).astype(np.float32), c.astype(np.float32)


def lstm_reference(w, b, xs, h0=None, c0=None) -> Tuple[np.ndarray, np.ndarray]:
    """A plain NumPy float32 LSTM (the oracle the tests hold the EIE path to).

    Parameters
    ----------
    w : numpy.ndarray of float, shape (4 H, X + H)
        ``[W_ih | W_hh]``, rows in PyTorch gate order (i, f, g, o).
    b : numpy.ndarray of float, shape (4 H,)
    xs : numpy.ndarray of float, shape (T, X)
    h0, c0 : numpy.ndarray of float, shape (H,), optional
        Initial state (default zeros).

    Returns
    -------
    hs : numpy.ndarray of float32, shape (T, H)
        Hidden state after every step.
    c : numpy.ndarray of float32, shape (H,)
        Final cell state.
    """
    w = np.asarray(w, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    x_dim, h_dim = lstm_dims(w.shape)
    xs = np.asarray(xs, dtype=np.float32).reshape(-1, x_dim)
    h = np.zeros(h_dim, np.float32) if h0 is None else np.asarray(h0, np.float32)
    c = np.zeros(h_dim, np.float32) if c0 is None else np.asarray(c0, np.float32)
    hs = np.zeros((xs.shape[0], h_dim), dtype=np.float32)
    for t in range(xs.shape[0]):
        z = w[:, :x_dim] @ xs[t] + w[:, x_dim:] @ h + b
        h, c = lstm_cell_update(z, c)
        hs[t] = h
    return hs, c


def host_ops_per_step(hidden: int) -> Dict[str, int]:
    """Element-wise host operations of one LSTM step (not PE cycles).

    Parameters
    ----------
    hidden : int
        H.

    Returns
    -------
    dict of str to int
        ``sigmoid`` 3 H (i, f, o), ``tanh`` 2 H (g and c_t), ``mul`` 3 H
        (f c, i g, o tanh c), ``add`` H (c_t); from the cell equations in the
        module docstring.
    """
    return {"sigmoid": 3 * hidden, "tanh": 2 * hidden, "mul": 3 * hidden, "add": hidden}


@dataclass(frozen=True)
class LstmResult:
    """One LSTM over one sequence on EIE.

    Attributes
    ----------
    name : str
    shape : tuple of int
        ``(4 H, X + H)`` of the gate matrix.
    steps : int
        Time steps T.
    step_cycles : numpy.ndarray of int64, shape (T,)
        Cycles of each step's M x V (drain included).
    counters : dict of str to int
        Action counters summed over the steps.
    act_nonzeros : int
        Non-zero inputs ``[x_t; h_{t-1}]`` summed over the steps.
    pe_busy : numpy.ndarray of int64, shape (n_pe,)
    n_pe : int
    clock_hz : float
    hidden : numpy.ndarray of float32, shape (T, H)
        ``h_t`` of every step.
    host_ops : dict of str to int
        Element-wise host operations over the sequence (:func:`host_ops_per_step` x T).
    pe_stall : numpy.ndarray of int64, shape (n_pe,), optional
        Per-PE stall cycles summed over the steps (None: not recorded).
    """

    name: str
    shape: Tuple[int, int]
    steps: int
    step_cycles: np.ndarray
    counters: Dict[str, int]
    act_nonzeros: int
    pe_busy: np.ndarray
    n_pe: int
    clock_hz: float
    hidden: np.ndarray
    host_ops: Dict[str, int]
    pe_stall: Optional[np.ndarray] = None

    @property
    def cycles(self) -> int:
        """Cycles of the whole sequence (steps are sequential, so they add)."""
        return int(self.step_cycles.sum())

    @property
    def cycles_per_step(self) -> float:
        """Mean cycles per time step."""
        return self.cycles / self.steps if self.steps else 0.0

    @property
    def time_s(self) -> float:
        """Simulated time of the sequence in seconds."""
        return self.cycles / self.clock_hz

    def to_dict(self) -> dict:
        """JSON-ready summary (no hidden states): ``kind`` ``"lstm"``, ``cycles_per_sequence``,
        ``cycles_per_step`` (cycles), ``time_s`` (s), ``host_ops`` (operations), counters."""
        macs = self.counters.get("macs", 0)
        return {
            "name": self.name,
            "kind": "lstm",
            "shape": [int(self.shape[0]), int(self.shape[1])],
            "steps": int(self.steps),
            "cycles_per_sequence": int(self.cycles),
            "cycles_per_step": float(self.cycles_per_step),
            "time_s": float(self.time_s),
            "load_balance_efficiency": float(macs / (self.cycles * self.n_pe)) if self.cycles else 0.0,
            "activation_density": float(self.act_nonzeros / (self.steps * self.shape[1])) if self.steps else 0.0,
            "host_ops": {k: int(v) for k, v in self.host_ops.items()},
            "counters": {k: int(v) for k, v in self.counters.items()},
        }


def simulate_lstm(layer, xs, config: Optional[EIEConfig] = None, *, backend: str = "kernel",
                  h0=None, c0=None) -> LstmResult:
    """Run one LSTM layer over one sequence on the simulated EIE, step by step.

    Parameters
    ----------
    layer : eiesim.format.layout.CompressedLayer
        The gate matrix, shape ``(4 H, X + H)``, PyTorch gate order, normally
        with the bias column.
    xs : array_like of float, shape (T, X)
        The input sequence.
    config : EIEConfig, optional
    backend : {"kernel", "reference"}
    h0, c0 : array_like of float, shape (H,), optional
        Initial state (default zeros).

    Returns
    -------
    LstmResult

    Raises
    ------
    EieInputError
        ``xs`` is not (T, X) with T >= 1, or not finite; the gate M x V
        overflowed to a non-finite value (names the step).
    EieFormatError
        The layer's shape is not an LSTM's (:func:`eiesim.format.lstm.lstm_dims`).
    """
    x_dim, h_dim = lstm_dims(layer.shape)
    xs = np.asarray(xs, dtype=np.float32)
    if xs.ndim != 2 or xs.shape[1] != x_dim or xs.shape[0] < 1:
        raise EieInputError(f"lstm layer {layer.name!r}: input sequence must have shape (T, {x_dim}), "
                            f"got {xs.shape}")
    if not np.all(np.isfinite(xs)):
        raise EieInputError(f"lstm layer {layer.name!r}: input sequence has non-finite values")
    if config is None:
        config = EIEConfig.for_layer(layer)
    h = np.zeros(h_dim, np.float32) if h0 is None else np.asarray(h0, np.float32)
    c = np.zeros(h_dim, np.float32) if c0 is None else np.asarray(c0, np.float32)
    steps = xs.shape[0]
    step_cycles = np.zeros(steps, dtype=np.int64)
    counters = dict.fromkeys(COUNTER_NAMES, 0)
    busy = np.zeros(layer.n_pe, dtype=np.int64)
    stall = np.zeros(layer.n_pe, dtype=np.int64)
    hs = np.zeros((steps, h_dim), dtype=np.float32)
    act_nz = 0
    for t in range(steps):
        res = simulate(layer, np.concatenate([xs[t], h]), config, backend=backend)
        if not np.all(np.isfinite(res.output)):
            raise EieInputError(f"lstm layer {layer.name!r}: step {t} produced non-finite gate pre-activations")
        step_cycles[t] = res.cycles
        for k, v in res.counters.items():
            counters[k] += v
        busy += res.busy
        stall += res.stall
        act_nz += res.act_nonzeros
        h, c = lstm_cell_update(res.output, c)
        hs[t] = h
    per = host_ops_per_step(h_dim)
    return LstmResult(
        name=layer.name, shape=(layer.n_out, layer.n_in), steps=steps, step_cycles=step_cycles,
        counters=counters, act_nonzeros=int(act_nz), pe_busy=busy, n_pe=layer.n_pe,
        clock_hz=config.clock_hz, hidden=hs, host_ops={k: v * steps for k, v in per.items()}, pe_stall=stall,
    )


def simulate_bidirectional(forward_layer, backward_layer, xs, config: Optional[EIEConfig] = None, *,
                           backend: str = "kernel") -> dict:
    """A bidirectional LSTM as two LSTMs over the sequence, reported separately and together.

    The backward LSTM reads the sequence reversed; its hidden states are
    returned in the original time order. The two directions are independent, so
    on one EIE they run one after the other and their cycles add.

    Parameters
    ----------
    forward_layer, backward_layer : CompressedLayer
        Gate matrices of the two directions (same X and H).
    xs : array_like of float, shape (T, X)
    config : EIEConfig, optional
    backend : {"kernel", "reference"}

    Returns
    -------
    dict
        ``forward`` and ``backward`` (:class:`LstmResult`), ``hidden`` float32
        ``(T, 2 H)`` (forward then backward states per step), ``cycles``
        (both directions, cycles), ``time_s`` (s), ``host_ops`` (summed).

    Raises
    ------
    EieInputError, EieFormatError
        As :func:`simulate_lstm`; also when the directions' shapes differ.
    """
    if tuple(forward_layer.shape) != tuple(backward_layer.shape):
        raise EieInputError(f"bidirectional LSTM: directions have shapes {forward_layer.shape} and "
                            f"{backward_layer.shape}")
    xs = np.asarray(xs, dtype=np.float32)
    fw = simulate_lstm(forward_layer, xs, config, backend=backend)
    bw = simulate_lstm(backward_layer, xs[::-1], config, backend=backend)
    host = {k: fw.host_ops[k] + bw.host_ops[k] for k in fw.host_ops}
    return {
        "forward": fw, "backward": bw,
        "hidden": np.concatenate([fw.hidden, bw.hidden[::-1]], axis=1),
        "cycles": fw.cycles + bw.cycles, "time_s": fw.time_s + bw.time_s, "host_ops": host,
    }
