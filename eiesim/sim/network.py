"""Multi-layer simulation: compressed layers with ReLU between them (and ``lstm`` layers).

An ``lstm`` layer (:mod:`eiesim.sim.lstm`) runs one gate M x V per time step on
the PE array; its sigmoid/tanh and cell update run on the host, counted as
operations (``host_ops``), not cycles. A network with an ``lstm`` layer takes
its inputs as the time steps of one sequence.

EIE keeps a layer's input and output activations in two register files/SRAMs
per PE and swaps their roles between layers (ping-pong; EIE Section IV,
"Activation Read/Write"): layer k's output vector is layer k+1's input, after
the ReLU. Output activation i is produced by PE i mod N and is exactly the
input activation that PE owns in the next layer, so no data moves between
PEs. Layers run one after the other; their cycles add.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .._kernels import usable_cpus
from ..config import EIEConfig
from ..errors import EieConfigError, EieError, EieInputError
from .engine import simulate_batch
from .program import layer_tables
from .result import COUNTER_NAMES, FixedPointSaturationWarning, saturation_message

__all__ = ["NetworkResult", "LayerSummary", "simulate_network", "check_network_config", "relu"]


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU in the activation's own dtype (float32 stays float32).

    Parameters
    ----------
    x : numpy.ndarray
        Activations, any shape, any real dtype.

    Returns
    -------
    numpy.ndarray
        ``max(x, 0)``, same shape and dtype.
    """
    return np.maximum(x, np.zeros((), dtype=x.dtype))


@dataclass(frozen=True)
class LayerSummary:
    """One layer's results summed over every simulated input.

    Attributes
    ----------
    name : str
    shape : tuple of int
        ``(n_out, n_in)``.
    n_pe : int
    n_inputs : int
        Input vectors simulated.
    cycles : int
        Cycles summed over the inputs (inferences run back to back).
    clock_hz : float
    counters : dict of str to int
        Action counters summed over the inputs.
    act_nonzeros : int
        Non-zero input activations summed over the inputs.
    stored_entries, fillers, weight_nonzeros : int
        Of the compressed layer (bias column included in entries).
    weight_density : float
        Real non-zero weights / (n_out * n_in), bias excluded.
    pe_busy : ndarray of int64, shape (n_pe,)
        Busy cycles per PE summed over the inputs.
    pe_stall : ndarray of int64, shape (n_pe,) or None
        Cycles each PE's full queue held the CCU back, summed over the inputs.
    act_saturations : int
        ``fixed16``: input activations saturated (or wrapped) at quantisation, summed
        over the inputs (accumulator overflows: ``counters["saturations"]``).
    kind : {"fc", "lstm"}
        For ``lstm`` the "inputs" are the time steps of one sequence, so
        ``cycles`` is the cycles per sequence and ``cycles_per_input`` those per step.
    host_ops : dict of str to int or None
        ``lstm``: element-wise host operations over the sequence
        (:func:`eiesim.sim.lstm.host_ops_per_step`; operations, not cycles).
    sequences : int
        ``lstm``: sequences the ``n_inputs`` time steps belong to (1 in a network run).
    """

    name: str
    shape: tuple
    n_pe: int
    n_inputs: int
    cycles: int
    clock_hz: float
    counters: dict
    act_nonzeros: int
    stored_entries: int
    fillers: int
    weight_nonzeros: int
    weight_density: float
    pe_busy: np.ndarray
    act_saturations: int = 0
    kind: str = "fc"
    host_ops: Optional[dict] = None
    sequences: int = 1
    pe_stall: Optional[np.ndarray] = None

    @property
    def time_s(self) -> float:
        """Simulated time of all inputs in seconds."""
        return self.cycles / self.clock_hz

    @property
    def cycles_per_input(self) -> float:
        """Mean cycles per input vector."""
        return self.cycles / self.n_inputs if self.n_inputs else 0.0

    @property
    def activation_density(self) -> float:
        """Mean fraction of non-zero input activations."""
        return self.act_nonzeros / (self.n_inputs * self.shape[1]) if self.n_inputs else 0.0

    @property
    def load_balance_efficiency(self) -> float:
        """``macs / (cycles * n_pe)`` over all inputs (EIE Section VI-B)."""
        return self.counters["macs"] / (self.cycles * self.n_pe) if self.cycles else 0.0

    def to_dict(self) -> dict:
        """JSON-ready form (the CLI contract: ``name``, ``shape``, ``cycles``, ``time_s``,
        ``load_balance_efficiency``, ``counters``).

        Returns
        -------
        dict
            ``name``, ``shape`` ([n_out, n_in]), ``n_pe``, ``n_inputs``,
            ``cycles`` and ``cycles_per_input`` (cycles), ``time_s`` (s),
            ``load_balance_efficiency``, ``weight_density`` and
            ``activation_density`` (fractions), ``stored_entries``, ``fillers``,
            ``weight_nonzeros`` and ``counters`` (counts), ``kind``; for ``lstm`` also
            ``steps``, ``sequences``, ``cycles_per_sequence`` (mean), ``cycles_per_step`` (cycles) and
            ``host_ops`` (operations); ``pe_busy`` and ``pe_stall`` (lists of n_pe cycle counts
            summed over the inputs; a PE's idle, starved cycles are ``cycles - pe_busy``).
        """
        out = {
            "name": self.name,
            "shape": [int(self.shape[0]), int(self.shape[1])],
            "n_pe": int(self.n_pe),
            "n_inputs": int(self.n_inputs),
            "cycles": int(self.cycles),
            "cycles_per_input": float(self.cycles_per_input),
            "time_s": float(self.time_s),
            "load_balance_efficiency": float(self.load_balance_efficiency),
            "weight_density": float(self.weight_density),
            "activation_density": float(self.activation_density),
            "stored_entries": int(self.stored_entries),
            "fillers": int(self.fillers),
            "weight_nonzeros": int(self.weight_nonzeros),
            "act_saturations": int(self.act_saturations),
            "counters": {k: int(v) for k, v in self.counters.items()},
            "pe_busy": [int(v) for v in self.pe_busy],
        }
        out["kind"] = self.kind
        if self.kind == "lstm":
            out["steps"] = int(self.n_inputs)
            out["sequences"] = int(self.sequences)
            out["cycles_per_sequence"] = float(self.cycles / self.sequences) if self.sequences else 0.0
            out["cycles_per_step"] = float(self.cycles_per_input)
            out["host_ops"] = {k: int(v) for k, v in (self.host_ops or {}).items()}
        if self.pe_stall is not None:
            out["pe_stall"] = [int(v) for v in self.pe_stall]
        return out


@dataclass(frozen=True)
class NetworkResult:
    """Results of a network run over one or more inputs.

    Attributes
    ----------
    layers : list of LayerSummary
    outputs : ndarray of float32, shape (n_inputs, n_out)
        Last layer's outputs (no ReLU after the last layer; h_t per step for an ``lstm``).
    clock_hz : float
    """

    layers: List[LayerSummary]
    outputs: np.ndarray
    clock_hz: float

    @property
    def cycles(self) -> int:
        """Total cycles over all layers and inputs."""
        return sum(l.cycles for l in self.layers)

    @property
    def time_s(self) -> float:
        """Total simulated time in seconds."""
        return self.cycles / self.clock_hz

    def to_dict(self) -> dict:
        """JSON-ready form without the outputs.

        Returns
        -------
        dict
            ``layers`` (list of :meth:`LayerSummary.to_dict`) and ``total``
            (``cycles`` in cycles, ``time_s`` in s).
        """
        return {
            "layers": [l.to_dict() for l in self.layers],
            "total": {"cycles": int(self.cycles), "time_s": float(self.time_s)},
        }


def check_network_config(network, config: EIEConfig, *, n_pe: bool = True) -> None:
    """Check that every layer of ``network`` can run on ``config`` (before any input is simulated).

    Parameters
    ----------
    network : eiesim.format.container.Network
    config : EIEConfig
    n_pe : bool, default True
        Check the PE count too (False: the caller re-interleaves layers of
        another N first).

    Raises
    ------
    EieConfigError
        A layer is laid out for another PE count than ``config.n_pe``
        (re-interleave it first; only with ``n_pe``), or uses other code / relative-index
        widths than ``config.code_bits`` / ``config.index_bits``. The
        message names the config field and the layer.
    """
    for k, layer in enumerate(network.layers):
        name = layer.name or f"layer{k}"
        for field, have, what in (("n_pe", layer.n_pe if n_pe else config.n_pe,
                                   f"is laid out for {layer.n_pe} PEs"),
                                  ("code_bits", layer.code_bits, f"uses {layer.code_bits}-bit codes"),
                                  ("index_bits", layer.index_bits,
                                   f"uses {layer.index_bits}-bit relative indices")):
            if getattr(config, field) != have:
                raise EieConfigError(f"config field {field!r} is {getattr(config, field)}, but layer {k} "
                                     f"({name!r}) {what}")


#: Inputs per kernel call in :func:`simulate_network` (bounds the chunk's activation arrays).
_CHUNK = 1024


def _run_chunk(layer, k: int, a: np.ndarray, start: int, config, backend: str, s: dict) -> np.ndarray:
    """Layer ``k`` on inputs ``start, start + 1, ...``; adds into the layer's sums ``s``.

    The first input (in input order) that fails raises, named as a per-input
    loop would name it: a bad activation, or a non-finite output.
    """
    try:
        res = simulate_batch(layer, a, config, backend=backend)
    except EieInputError as exc:
        msg = str(exc)
        if msg.startswith("input "):
            n, rest = msg[6:].split(":", 1)
            raise EieInputError(f"input {start + int(n)}:{rest}") from None
        raise
    finite = np.isfinite(res.output).all(axis=1)
    if not finite.all():
        n = int(np.flatnonzero(~finite)[0])
        raise EieInputError(
            f"input {start + n}: layer {k} ({layer.name!r}) produced non-finite outputs "
            f"(float32 overflow of W·a + b)"
        )
    if s is None:
        return res.output
    s["cycles"] += int(res.cycles.sum())
    s["act_nz"] += int(res.act_nonzeros.sum())
    s["act_sat"] += int(res.act_saturations.sum())
    for name, val in res.counters.items():
        s["counters"][name] += val
    s["busy"] += res.busy
    s["stall"] += res.stall
    return res.output


def _new_sums(network) -> list:
    """Zeroed per-layer sums (cycles, counters, non-zero activations, per-PE busy/stall, saturations)."""
    return [
        {"cycles": 0, "counters": dict.fromkeys(COUNTER_NAMES, 0), "act_nz": 0,
         "busy": np.zeros(layer.n_pe, dtype=np.int64), "stall": np.zeros(layer.n_pe, dtype=np.int64),
         "act_sat": 0}
        for layer in network.layers
    ]


def _add_sums(into: list, part: list) -> None:
    """Add one chunk's per-layer sums into the run's (integers: the order of the additions is irrelevant)."""
    for s, p in zip(into, part):
        for key in ("cycles", "act_nz", "act_sat"):
            s[key] += p[key]
        for name, val in p["counters"].items():
            s["counters"][name] += val
        s["busy"] += p["busy"]
        s["stall"] += p["stall"]


class _Progress:
    """A tqdm bar opened at the first update after ``delay`` seconds (tqdm's own ``delay``,
    without importing tqdm for a run that ends sooner)."""

    def __init__(self, total: int, delay: float = 1.0):
        self.total, self.delay, self.done, self.bar = total, delay, 0, None
        self.t0 = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.perf_counter() - self.t0 >= self.delay:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, desc="simulating", unit="input", leave=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _host_ops(network, k: int, n_steps: int) -> dict:
    """Host operations of LSTM layer ``k`` over ``n_steps`` steps (:func:`eiesim.sim.lstm.host_ops_per_step`)."""
    from .lstm import host_ops_per_step  # here: only networks with LSTM layers need it

    return {op: v * n_steps for op, v in host_ops_per_step(network.layer_io(k)[1]).items()}


def _forward(network, a: np.ndarray, start: int, config, backend: str, sums) -> np.ndarray:
    """Inputs ``start, start + 1, ...`` through every layer (ReLU between); adds into ``sums``."""
    n_layers = len(network.layers)
    for k, layer in enumerate(network.layers):
        a = _run_chunk(layer, k, a, start, config, backend, sums[k] if sums is not None else None)
        if k < n_layers - 1 and network.activation == "relu":
            np.maximum(a, np.zeros((), dtype=a.dtype), out=a)  # relu(a) in place: a is this chunk's own output
    return a


def _forward_sequence(network, x: np.ndarray, config, backend: str, sums, outputs, bar) -> None:
    """Rows of ``x`` as the time steps of one sequence; ``lstm`` layers carry (h, c) from step to step.

    An ``lstm`` layer's M x V input is ``[a; h_(t-1)]`` (the bias column adds b); its gate
    pre-activations go through :func:`eiesim.sim.lstm.lstm_cell_update` on the host. No ReLU
    follows an ``lstm`` layer. Writes ``outputs[t]`` and adds into ``sums``.
    """
    from .lstm import lstm_cell_update  # here: a network without LSTM layers never needs it (issue 11)

    kinds = network.kinds
    n_layers = len(network.layers)
    state = {k: (np.zeros(network.layer_io(k)[1], np.float32), np.zeros(network.layer_io(k)[1], np.float32))
             for k in range(n_layers) if kinds[k] == "lstm"}
    for t in range(x.shape[0]):
        a = x[t:t + 1].astype(np.float32)
        for k, layer in enumerate(network.layers):
            if kinds[k] == "lstm":
                z = _run_chunk(layer, k, np.concatenate([a, state[k][0][None, :]], axis=1), t, config, backend,
                               sums[k])
                h, c = lstm_cell_update(z[0], state[k][1])
                state[k] = (h, c)
                a = h[None, :]
            else:
                a = _run_chunk(layer, k, a, t, config, backend, sums[k])
                if k < n_layers - 1 and network.activation == "relu":
                    a = relu(a)
        outputs[t] = a[0]
        if bar is not None:
            bar.update(1)


def _name_first_failure(network, x: np.ndarray, start: int, chunk: int, config, backend: str) -> None:
    """Re-run a failed chunk input by input: raises the first failing input's error, named in input order."""
    for n in range(start, min(start + chunk, x.shape[0])):
        _forward(network, x[n:n + 1], n, config, backend, None)


def _forward_threads(network, x, starts, chunk: int, config, backend: str, sums, outputs, bar,
                     workers: int) -> None:
    """Chunks on a thread pool; results taken in input order, so the run equals the serial loop.

    At interpreter exit (an ``atexit`` handler) no pool can be made or used: the chunks then run on
    this thread, in order, with the same results.
    """

    def job(start):
        part = _new_sums(network)
        try:
            return _forward(network, x[start:start + chunk], start, config, backend, part), part, None
        except EieInputError as exc:
            return None, None, exc

    # each layer's one-time full check and kernel tables (cached on the layer), built once before the
    # threads start; a layer that fails it fails again, in input order, in the chunks below
    for layer in network.layers:
        try:
            layer_tables(layer)
        except EieError:
            pass
    pool = None
    try:
        try:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=min(workers, len(starts)), thread_name_prefix="eiesim-chunk")
            results = pool.map(job, starts)
        except RuntimeError:  # interpreter exit: no new threads (nor the module's import); the chunks run here
            results = map(job, starts)
        for start, (a, part, exc) in zip(starts, results):
            if exc is not None:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                _name_first_failure(network, x, start, chunk, config, backend)
                raise exc
            outputs[start:start + a.shape[0]] = a
            _add_sums(sums, part)
            if bar is not None:
                bar.update(a.shape[0])
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def simulate_network(
    network,
    inputs,
    config: Optional[EIEConfig] = None,
    *,
    backend: str = "kernel",
    progress: bool = False,
    workers: Optional[int] = 1,
) -> NetworkResult:
    """Run every input through the network on the simulated EIE.

    Parameters
    ----------
    network : eiesim.format.container.Network
    inputs : array_like of float, shape (n_inputs, n_in) or (n_in,)
        Independent input vectors; for a network with an ``lstm`` layer
        (:attr:`Network.is_recurrent`), the time steps of **one** sequence
        (state carried from row to row, zero initial state).
    config : EIEConfig, optional
        Defaults to :meth:`EIEConfig.for_layer` of the first layer.
    backend : {"kernel", "reference"}
    progress : bool
        Show a tqdm progress bar (it appears only if the run takes over 1 s).
    workers : int or None, default 1
        Threads simulating chunks of :data:`_CHUNK` inputs at once (``backend="kernel"``,
        networks without an ``lstm`` layer; the kernel runs without the GIL). ``None``:
        one per CPU this process may use. Every result is identical to ``workers=1``:
        each input is simulated alone, outputs keep the input order and the sums are
        integer (the tests hold the two to identical cycles, counters and output bits).

    Returns
    -------
    NetworkResult

    Raises
    ------
    EieInputError
        If there is no input, the inputs do not have ``n_in`` columns or are not finite, or a
        layer overflows to a non-finite output (the message names the input
        and the layer).
    EieConfigError
        From :func:`check_network_config`: a layer does not fit ``config``
        (checked before the first input).
    EieFormatError, EieConfigError
        From :func:`eiesim.sim.engine.simulate`.

    Warns
    -----
    FixedPointSaturationWarning
        Once per ``fixed16`` layer whose accumulators or inputs left the word on any
        input (the counts summed over the inputs).
    """
    x = np.asarray(inputs)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != network.n_in or x.shape[0] == 0:
        # no input at all was a result of 0 cycles per input; simulate_batch and the CLI refuse it
        raise EieInputError(
            f"network inputs must have shape (n >= 1, {network.n_in}), got {np.asarray(inputs).shape}"
        )
    if config is None:
        config = EIEConfig.for_layer(network.layers[0])
    check_network_config(network, config)
    if workers is None:
        workers = usable_cpus()
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise EieConfigError(f"workers must be a positive integer or None, got {workers!r}")
    sums = _new_sums(network)
    outputs = np.zeros((x.shape[0], network.n_out), dtype=np.float32)
    # Inputs are independent: each layer runs on a chunk of inputs in one kernel call
    # (simulate_batch), and the chunk moves to the next layer after the ReLU.
    chunk = _CHUNK if backend == "kernel" else 1
    # one chunk is one call: nothing to show; and no tqdm import (~30 ms) for a run under a second
    bar = _Progress(x.shape[0]) if progress and x.shape[0] > chunk else None
    kinds = network.kinds
    try:
        if network.is_recurrent:  # one sequence: the time steps run one after the other
            _forward_sequence(network, x, config, backend, sums, outputs, bar)
        else:
            starts = range(0, x.shape[0], chunk)
            if backend == "kernel" and workers > 1 and len(starts) > 1:
                _forward_threads(network, x, starts, chunk, config, backend, sums, outputs, bar, workers)
            else:
                for start in starts:
                    try:
                        a = _forward(network, x[start:start + chunk], start, config, backend, sums)
                    except EieInputError:
                        _name_first_failure(network, x, start, chunk, config, backend)
                        raise
                    outputs[start:start + a.shape[0]] = a
                    if bar is not None:
                        bar.update(a.shape[0])
    finally:
        if bar is not None:
            bar.close()
    summaries = []
    for k, layer in enumerate(network.layers):
        s = sums[k]
        if s["counters"]["saturations"] or s["act_sat"]:
            warnings.warn(saturation_message(
                layer.name or f"layer{k}", s["counters"]["saturations"], s["act_sat"],
                saturate=config.saturate, n_inputs=int(x.shape[0]),
                fmt=f"Q{config.fixed_total_bits - 1 - config.act_frac_bits}.{config.act_frac_bits}"),
                FixedPointSaturationWarning, stacklevel=2)
        summaries.append(
            LayerSummary(
                name=layer.name or f"layer{k}",
                shape=(layer.n_out, layer.n_in),
                n_pe=layer.n_pe,
                n_inputs=int(x.shape[0]),
                cycles=int(s["cycles"]),
                clock_hz=config.clock_hz,
                counters=s["counters"],
                act_nonzeros=int(s["act_nz"]),
                stored_entries=int(layer.n_entries),
                fillers=int(layer.n_fillers),
                weight_nonzeros=int(round(layer.weight_density * layer.n_out * layer.n_in)),
                weight_density=float(layer.weight_density),
                pe_busy=s["busy"],
                act_saturations=int(s["act_sat"]),
                kind=kinds[k],
                host_ops=_host_ops(network, k, int(x.shape[0])) if kinds[k] == "lstm" else None,
                pe_stall=s["stall"],
            )
        )
    return NetworkResult(layers=summaries, outputs=outputs, clock_hz=config.clock_hz)
