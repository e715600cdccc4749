"""The network: a feed-forward (or recurrent) stack of compressed layers.

It lives apart from the container reader (:mod:`eiesim.format.container`, which re-exports it) so that
building a network from any source -- an authors' dump, a workload -- does not import the ``.eie``
reader with its ZIP, Huffman and manifest machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

from ..errors import EieFormatError
from .layout import CompressedLayer
from .lstm import lstm_dims

__all__ = ["Network", "LAYER_KINDS"]

#: Non-linearities applied between layers.
_ACTIVATIONS = ("relu", "none")
#: Layer kinds (docs/FORMAT.md): ``fc`` (y = W x + b) and ``lstm`` (gate matrix, :mod:`eiesim.format.lstm`).
LAYER_KINDS = ("fc", "lstm")


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward stack of compressed fully-connected layers.

    Attributes
    ----------
    layers : tuple of CompressedLayer
        In order; each layer's outputs are the next layer's inputs (for an
        ``lstm`` layer: inputs X, outputs H, see ``kinds``).
    activation : {"relu", "none"}
        Non-linearity applied between layers (not after the last, nor after an
        ``lstm`` layer, whose output h_t is already bounded).
    metadata : dict
        Provenance: source model, data set, compression settings (JSON-serialisable).
    kinds : tuple of str, optional
        ``"fc"`` or ``"lstm"`` per layer (default: all ``"fc"``). An ``lstm``
        layer is the gate matrix ``[W_ih | W_hh]`` of shape ``(4 H, X + H)`` in
        PyTorch gate order (:mod:`eiesim.format.lstm`).

    Raises
    ------
    EieFormatError
        If the layer list is empty, consecutive shapes do not chain, a kind is
        unknown, or an ``lstm`` layer's shape is not ``(4 H, X + H)``.
    """

    layers: Tuple[CompressedLayer, ...]
    activation: str = "relu"
    metadata: Dict[str, Any] = field(default_factory=dict)
    kinds: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise EieFormatError("network: needs at least one layer", code="META-MISSING")
        for lay in layers:
            if not isinstance(lay, CompressedLayer):
                raise EieFormatError(f"network: expected CompressedLayer objects, got {type(lay).__name__}",
                                     code="ARGUMENT")
        kinds = tuple(self.kinds) if self.kinds else ("fc",) * len(layers)
        if len(kinds) != len(layers) or any(k not in LAYER_KINDS for k in kinds):
            raise EieFormatError(f"network: kinds {kinds!r} must give one of {LAYER_KINDS} per layer "
                                 f"({len(layers)} layers)", code="META-MISSING")
        object.__setattr__(self, "kinds", kinds)
        for k, kind in enumerate(kinds):
            if kind == "lstm":
                try:
                    lstm_dims(layers[k].shape)
                except EieFormatError as exc:
                    raise EieFormatError(f"network: layer {k} ({layers[k].name!r}): {exc}", code=exc.code) from None
        for k in range(len(layers) - 1):
            if self.layer_io(k)[1] != self.layer_io(k + 1)[0]:
                raise EieFormatError(
                    f"network: layer {k} ({layers[k].name!r}) has {self.layer_io(k)[1]} outputs but layer "
                    f"{k + 1} ({layers[k + 1].name!r}) has {self.layer_io(k + 1)[0]} inputs",
                    code="META-INCONSISTENT",
                )
        if self.activation not in _ACTIVATIONS:
            raise EieFormatError(
                f"network: activation {self.activation!r} is not one of {_ACTIVATIONS}", code="META-MISSING"
            )

    def layer_io(self, k: int) -> Tuple[int, int]:
        """``(inputs, outputs)`` of layer ``k`` as the network sees them.

        ``fc``: ``(n_in, n_out)``; ``lstm``: ``(X, H)`` (the gate matrix is
        ``(4 H, X + H)``; h_{t-1} is fed back inside the layer).

        Raises
        ------
        EieFormatError
            An ``lstm`` layer whose shape is not an LSTM's.
        """
        lay = self.layers[k]
        if self.kinds[k] == "lstm":
            return lstm_dims(lay.shape)
        return lay.n_in, lay.n_out

    @property
    def is_recurrent(self) -> bool:
        """True when a layer is an ``lstm`` (inputs are then one sequence, one row per time step)."""
        return "lstm" in self.kinds

    @property
    def n_in(self) -> int:
        """Inputs of the first layer (per time step for an ``lstm``)."""
        return self.layer_io(0)[0]

    @property
    def n_out(self) -> int:
        """Outputs of the last layer (H for an ``lstm``)."""
        return self.layer_io(len(self.layers) - 1)[1]
