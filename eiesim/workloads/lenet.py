"""The embedded LeNet-300-100 (``traces/``) as a registered workload (``lenet-300-100``).

The compressed network (``traces/lenet300100.eie``: pruned with retraining, 4-bit codebooks with
centroid fine-tuning, ``scripts/make_traces.py``) and 100 real MNIST test digits with their labels
and the uncompressed float model's logits (``traces/mnist_test100.npz``); provenance in
``traces/README.md``. Nothing to install.
"""

from __future__ import annotations

import os

import numpy as np

from .._io import load_npz_arrays
from ..errors import EieInputError
from ..format.container import load_network
from .registry import Workload

__all__ = ["trace_path", "load_workload"]


def trace_path(name: str) -> str:
    """Path of an embedded trace file (``eiesim.traces`` when installed, ``traces/`` in a source tree)."""
    try:
        from importlib import resources

        p = resources.files("eiesim.traces") / name
        if p.is_file():
            return str(p)
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "traces", name)


def load_workload(n_inputs: int, seed: int = 0) -> Workload:
    """LeNet-300-100 on the first ``n_inputs`` of the 100 embedded test digits (``seed`` unused: fixed set).

    Returns
    -------
    Workload
        Three ``fc`` layers (784 -> 300 -> 100 -> 10, ReLU between); metric top-1 accuracy;
        ``original_quality`` from the recorded float-model logits; ``dense`` holds the stored
        (compressed) weights, since the uncompressed float weights are not embedded.

    Raises
    ------
    EieInputError
        More than 100 inputs asked for.
    """
    net = load_network(trace_path("lenet300100.eie"))
    arr = load_npz_arrays(trace_path("mnist_test100.npz"), error=EieInputError)
    if n_inputs > arr["inputs"].shape[0]:
        raise EieInputError(f"lenet-300-100: {n_inputs} inputs asked for, the trace holds {arr['inputs'].shape[0]}")
    x = arr["inputs"][:n_inputs].astype(np.float32)
    labels = arr["labels"][:n_inputs]
    n_layers = len(net.layers)

    def forward(run):
        a = x
        for k in range(n_layers):
            a = run(k, a)
            if k < n_layers - 1:
                a = np.maximum(a, 0)
        return a

    def score(logits) -> float:
        return float(np.mean(np.asarray(logits).argmax(axis=1) == labels))

    dense = tuple((l.to_dense().astype(np.float32), np.asarray(l.bias_values(), np.float32)) for l in net.layers)
    return Workload(
        name="lenet-300-100", layers=tuple(net.layers), kinds=tuple(net.kinds), forward=forward, score=score,
        metric="top-1 accuracy", original_quality=score(arr["float_logits"][:n_inputs]), n_inputs=n_inputs,
        dense=dense, metadata={"package": None, "source": "traces/ (see traces/README.md)", **net.metadata,
                                # the trace's own record (pruning, codebook, ...) plus the two keys every workload has
                                "compression": {"method": "magnitude prune with retraining + 4-bit k-means codebook "
                                                          "with centroid fine-tuning (scripts/make_traces.py)",
                                                "retrained": True, **net.metadata.get("compression", {})}},
    )
