"""Storage formats: EIE relative-indexed per-PE CSC and interop readers/writers.

* :mod:`.relindex` — gap <-> ``(v, z)`` with the filler rule (EIE Section III).
* :mod:`.layout` — :class:`CompressedLayer`, a layer interleaved over N PEs.
* :mod:`.eiedump` — the authors' C++ simulator dump directory (docs/FORMAT.md §2).
"""

from .eiedump import DUMP_CODE_BITS, DUMP_INDEX_BITS, EieDump, read_dump, write_dump
from .layout import CompressedLayer
from .relindex import (
    decode_column,
    decode_segments,
    encode_column,
    encode_segments,
    filler_mask,
    segment_ids,
)

__all__ = [
    "CompressedLayer",
    "EieDump",
    "read_dump",
    "write_dump",
    "DUMP_CODE_BITS",
    "DUMP_INDEX_BITS",
    "encode_column",
    "decode_column",
    "encode_segments",
    "decode_segments",
    "filler_mask",
    "segment_ids",
]
