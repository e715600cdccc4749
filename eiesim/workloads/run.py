"""Run a registered real workload on the simulated EIE and score it.

:func:`run_workload` hands the workload's ``forward`` a layer runner that does
every EIE layer on the simulator (``fc``: one :func:`eiesim.sim.engine.simulate`
per row of the batch; ``lstm``: :func:`eiesim.sim.lstm.simulate_lstm` over the
sequence) and sums each layer's cycles and counters over every call, then
scores the outputs with the workload's own quality metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from ..config import EIEConfig
from ..errors import EieInputError
from ..sim.engine import simulate
from ..sim.lstm import lstm_cell_update, simulate_lstm
from ..sim.network import LayerSummary
from ..sim.result import COUNTER_NAMES
from .registry import Workload

__all__ = ["WorkloadRun", "run_workload", "numpy_runner"]


@dataclass(frozen=True)
class WorkloadRun:
    """A workload simulated on EIE.

    Attributes
    ----------
    workload : Workload
    layers : list of LayerSummary
        Per EIE layer, summed over every M x V the model asked for (``n_inputs``
        there counts M x V calls: rows of the batches, or LSTM time steps).
    quality : dict
        ``metric``, ``compressed`` (the compressed model as simulated),
        ``original`` (the uncompressed float model), ``n_inputs``.
    clock_hz : float
    """

    workload: Workload
    layers: List[LayerSummary]
    quality: Dict[str, Any]
    clock_hz: float

    @property
    def cycles(self) -> int:
        """Cycles of every EIE layer call, summed (cycles)."""
        return sum(l.cycles for l in self.layers)

    def to_dict(self) -> dict:
        """JSON-ready: ``workload``, ``layers`` (each with ``kind``), ``total``, ``quality``, ``metadata``."""
        return {
            "workload": self.workload.name,
            "layers": [l.to_dict() for l in self.layers],
            "total": {"cycles": int(self.cycles), "time_s": float(self.cycles / self.clock_hz),
                      "cycles_per_input": float(self.cycles / self.workload.n_inputs)},
            "quality": dict(self.quality),
            "metadata": self.workload.metadata,
        }


def numpy_runner(workload: Workload, *, compressed: bool = True):
    """A layer runner in plain NumPy: the compressed layers' dense weights, or the uncompressed ``dense``.

    Parameters
    ----------
    workload : Workload
    compressed : bool
        True: the stored (pruned, quantised) weights; False: ``workload.dense``.

    Returns
    -------
    callable
        ``run(k, x)`` as in :mod:`eiesim.workloads.registry`.
    """
    mats = []
    for k, layer in enumerate(workload.layers):
        if compressed:
            b = layer.bias_values() if layer.has_bias else np.zeros(layer.n_out, np.float32)
            mats.append((layer.to_dense().astype(np.float32), np.asarray(b, np.float32)))
        else:
            mats.append(workload.dense[k])

    def run(k: int, x: np.ndarray) -> np.ndarray:
        w, b = mats[k]
        x = np.asarray(x, np.float32)
        if workload.kinds[k] == "fc":
            return (x @ w.T + b).astype(np.float32)
        h_dim = w.shape[0] // 4
        x_dim = w.shape[1] - h_dim
        h = np.zeros(h_dim, np.float32)
        c = np.zeros(h_dim, np.float32)
        out = np.zeros((x.shape[0], h_dim), np.float32)
        for t in range(x.shape[0]):
            h, c = lstm_cell_update(w[:, :x_dim] @ x[t] + w[:, x_dim:] @ h + b, c)
            out[t] = h
        return out

    return run


def run_workload(workload: Workload, config: Optional[EIEConfig] = None, *, backend: str = "kernel") -> WorkloadRun:
    """Simulate every EIE layer of ``workload`` on its real inputs and score the result.

    Parameters
    ----------
    workload : Workload
    config : EIEConfig, optional
        Default: :meth:`EIEConfig.for_layer` of the first layer. Layers laid out for
        another PE count are re-interleaved (exact).
    backend : {"kernel", "reference"}

    Returns
    -------
    WorkloadRun

    Raises
    ------
    EieInputError
        A layer runner call with the wrong shape, or non-finite values.
    """
    layers = list(workload.layers)
    if config is None:
        config = EIEConfig.for_layer(layers[0])
    layers = [l if l.n_pe == config.n_pe else l.relayout(config.n_pe) for l in layers]
    sums = [{"cycles": 0, "calls": 0, "counters": dict.fromkeys(COUNTER_NAMES, 0), "act_nz": 0,
             "busy": np.zeros(config.n_pe, np.int64), "stall": np.zeros(config.n_pe, np.int64), "sequences": 0}
            for _ in layers]

    def run(k: int, x: np.ndarray) -> np.ndarray:
        layer, s = layers[k], sums[k]
        x = np.asarray(x, np.float32)
        if x.ndim != 2:
            raise EieInputError(f"workload {workload.name!r}: layer {k} got input of shape {x.shape}, expected 2-D")
        if workload.kinds[k] == "lstm":
            r = simulate_lstm(layer, x, config, backend=backend)
            s["cycles"] += r.cycles
            s["calls"] += r.steps
            s["sequences"] += 1
            s["act_nz"] += r.act_nonzeros
            s["busy"] += r.pe_busy
            s["stall"] += r.pe_stall
            for name, v in r.counters.items():
                s["counters"][name] += v
            return r.hidden
        out = np.zeros((x.shape[0], layer.n_out), np.float32)
        for i in range(x.shape[0]):
            r = simulate(layer, x[i], config, backend=backend)
            out[i] = r.output
            s["cycles"] += r.cycles
            s["act_nz"] += r.act_nonzeros
            s["busy"] += r.busy
            s["stall"] += r.stall
            for name, v in r.counters.items():
                s["counters"][name] += v
        s["calls"] += x.shape[0]
        return out

    outputs = workload.forward(run)
    from ..sim.lstm import host_ops_per_step

    summaries = []
    for k, layer in enumerate(layers):
        s = sums[k]
        kind = workload.kinds[k]
        summaries.append(LayerSummary(
            name=layer.name or f"layer{k}", shape=(layer.n_out, layer.n_in), n_pe=layer.n_pe,
            n_inputs=int(s["calls"]), cycles=int(s["cycles"]), clock_hz=config.clock_hz, counters=s["counters"],
            act_nonzeros=int(s["act_nz"]), stored_entries=int(layer.n_entries), fillers=int(layer.n_fillers),
            weight_nonzeros=int(round(layer.weight_density * layer.n_out * layer.n_in)),
            weight_density=float(layer.weight_density), pe_busy=s["busy"], pe_stall=s["stall"], kind=kind,
            host_ops=({op: v * int(s["calls"]) for op, v in host_ops_per_step(layer.n_out // 4).items()}
                      if kind == "lstm" else None),
            sequences=max(int(s["sequences"]), 1),
        ))
    quality = {"metric": workload.metric, "compressed": float(workload.score(outputs)),
               "original": float(workload.original_quality), "n_inputs": int(workload.n_inputs)}
    return WorkloadRun(workload=workload, layers=summaries, quality=quality, clock_hz=config.clock_hz)
