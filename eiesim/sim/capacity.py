"""Per-PE SRAM footprint of a compressed layer against EIE's on-chip capacities.

EIE holds a whole layer on chip: each PE keeps its slice of the sparse matrix in
the spmat SRAM (128 KB), its column pointers in the pointer SRAM (32 KB, 16-bit
pointers) and its share of the source and destination activations in the
activation SRAM (2 KB, 16-bit values) -- Han et al., ISCA 2016, Section IV and
Table II.  The cycle model does not need these sizes, but a layer that does not
fit cannot run as modelled (splitting a layer over several passes is not
modelled here).  :func:`sram_footprint` says, per layer, how
much of each SRAM the busiest PE needs and whether it fits.

Accounting (per PE ``k``, with the :class:`~eiesim.EIEConfig` widths):

* spmat: ``entries_k * (code_bits + index_bits)`` bits, rounded up to whole
  ``spmat_line_bits`` lines (the SRAM is read a line at a time);
* pointers: ``(n_cols + 1) * pointer_bits`` bits (one pointer per stored
  column plus the end pointer; the bias column counts), and the largest
  pointer value, ``entries_k``, must be representable in ``pointer_bits``
  bits;
* activations: ``(ceil(n_in / N) + ceil(n_out / N)) * fixed_total_bits``
  bits -- the PE's source and destination activations (EIE keeps both for
  the ping-pong between layers); the bias input needs no storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from ..config import EIEConfig
from ..errors import EieInputError
from ..format.layout import CompressedLayer

__all__ = ["SramFootprint", "sram_footprint"]


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class SramFootprint:
    """SRAM bytes the busiest PE of one layer needs, next to the capacities.

    Attributes
    ----------
    name : str
        Layer name.
    n_pe : int
        PEs N the layer is laid out for.
    spmat_bytes : int
        Largest per-PE spmat need, bytes (whole lines).
    ptr_bytes : int
        Per-PE pointer need, bytes (the same for every PE).
    act_bytes : int
        Per-PE activation need (source + destination), bytes.
    max_pointer : int
        Largest pointer value (entries of the busiest PE).
    spmat_capacity, ptr_capacity, act_capacity : int
        Capacities per PE, bytes (:class:`~eiesim.EIEConfig` fields
        ``spmat_sram_bytes``, ``ptr_sram_bytes``, ``act_sram_bytes``; EIE
        Table II: 128 KB, 32 KB, 2 KB).
    pointer_bits : int
        Width of one pointer, bits (EIE: 16).
    """

    name: str
    n_pe: int
    spmat_bytes: int
    ptr_bytes: int
    act_bytes: int
    max_pointer: int
    spmat_capacity: int
    ptr_capacity: int
    act_capacity: int
    pointer_bits: int

    @property
    def fits(self) -> bool:
        """True when every need is within its capacity and every pointer is representable."""
        return not self.problems()

    def problems(self) -> List[str]:
        """One sentence per capacity the layer exceeds (empty when it fits).

        Returns
        -------
        list of str
        """
        out = []
        for what, need, cap in (("spmat SRAM", self.spmat_bytes, self.spmat_capacity),
                                ("pointer SRAM", self.ptr_bytes, self.ptr_capacity),
                                ("activation SRAM", self.act_bytes, self.act_capacity)):
            if need > cap:
                out.append(f"{what}: the busiest PE needs {need:,} bytes, capacity {cap:,} bytes per PE")
        if self.max_pointer >= 1 << self.pointer_bits:
            out.append(f"pointers: a PE holds {self.max_pointer:,} entries, more than a "
                       f"{self.pointer_bits}-bit pointer addresses ({(1 << self.pointer_bits) - 1:,})")
        return out

    def to_dict(self) -> dict:
        """JSON-ready fields plus ``fits`` and ``problems``.

        Returns
        -------
        dict
        """
        return {"name": self.name, "n_pe": self.n_pe, "spmat_bytes": self.spmat_bytes,
                "spmat_capacity": self.spmat_capacity, "ptr_bytes": self.ptr_bytes,
                "ptr_capacity": self.ptr_capacity, "act_bytes": self.act_bytes,
                "act_capacity": self.act_capacity, "max_pointer": self.max_pointer,
                "pointer_bits": self.pointer_bits, "fits": self.fits, "problems": self.problems()}


def sram_footprint(layer: CompressedLayer, config: EIEConfig) -> SramFootprint:
    """Per-PE SRAM needs of ``layer`` on the machine ``config`` (see the module docstring).

    Parameters
    ----------
    layer : CompressedLayer
        The layer as laid out (its ``n_pe`` is used; re-interleave it first
        to ask about another N).
    config : EIEConfig
        Widths (``code_bits``, ``index_bits``, ``pointer_bits``,
        ``spmat_line_bits``, ``fixed_total_bits``) and capacities
        (``spmat_sram_bytes``, ``ptr_sram_bytes``, ``act_sram_bytes``).

    Returns
    -------
    SramFootprint

    Raises
    ------
    EieInputError
        If ``layer`` is not a CompressedLayer or ``config`` not an EIEConfig.
    """
    if not isinstance(layer, CompressedLayer):
        raise EieInputError(f"sram_footprint: expected a CompressedLayer, got {type(layer).__name__}")
    if not isinstance(config, EIEConfig):
        raise EieInputError(f"sram_footprint: expected an EIEConfig, got {type(config).__name__}")
    N = layer.n_pe
    entries = layer.ptr[:, -1].astype(np.int64)
    max_entries = int(entries.max()) if entries.size else 0
    entry_bits = config.code_bits + config.index_bits
    line = config.spmat_line_bits
    spmat_bits = _ceil_div(max_entries * entry_bits, line) * line
    n_out, n_in = layer.shape
    act_words = _ceil_div(n_in, N) + _ceil_div(n_out, N)
    return SramFootprint(
        name=layer.name, n_pe=N,
        spmat_bytes=int(_ceil_div(spmat_bits, 8)),
        ptr_bytes=int(_ceil_div((layer.n_cols + 1) * config.pointer_bits, 8)),
        act_bytes=int(_ceil_div(act_words * config.fixed_total_bits, 8)),
        max_pointer=max_entries,
        spmat_capacity=config.spmat_sram_bytes, ptr_capacity=config.ptr_sram_bytes,
        act_capacity=config.act_sram_bytes, pointer_bits=config.pointer_bits,
    )
