"""Storage formats: EIE relative-indexed per-PE CSC and interop readers/writers.

* :mod:`.relindex` — gap <-> ``(v, z)`` with the filler rule (EIE Section III).
* :mod:`.layout` — :class:`CompressedLayer`, a layer interleaved over N PEs.
* :mod:`.container` — the ``.eie`` container (docs/FORMAT.md §2).
* :mod:`.eiedump` — the authors' C++ simulator dump directory (docs/FORMAT.md §5).
* :mod:`.dcnet` — Deep Compression ``.net`` streams (docs/FORMAT.md §5).
* :mod:`.balance` — per-PE and column-slice balance (max/mean) read from the layout
  (docs/FORMAT.md §6.3: ``INFO-BALANCE``, ``eiesim inspect``).
* :mod:`.validate` — the tiered conformance checks (docs/FORMAT.md §6).  Its entry point
  :func:`eiesim.format.validate.validate` is not re-exported here: the name
  would hide the submodule ``eiesim.format.validate``.
"""

from .container import (
    FORMAT_MINOR_VERSION,
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_MEMBER_BYTES,
    Container,
    ContainerLayer,
    Network,
    load_container,
    load_network,
    save_network,
)
from .dcnet import (
    SUPPORTED_CODE_BITS,
    SUPPORTED_INDEX_BITS,
    DCIssue,
    DCLayer,
    DCNet,
    LayerSpec,
    compressed_to_dclayer,
    dclayer_to_compressed,
    encode_dense,
    load_layer_specs,
    net_to_bytes,
    parse_net,
    read_net,
    write_net,
)
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
from .validate import (
    FATAL_CODES,
    RULES,
    Finding,
    LayerCounts,
    Rule,
    ValidationReport,
    detect_format,
    validate_arrays,
    validate_container,
    validate_dump,
    validate_layer,
    validate_net,
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
    # container
    "Network",
    "Container",
    "ContainerLayer",
    "save_network",
    "load_network",
    "load_container",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FORMAT_MINOR_VERSION",
    "MAX_MEMBER_BYTES",
    # dcnet
    "LayerSpec",
    "DCLayer",
    "DCNet",
    "DCIssue",
    "load_layer_specs",
    "read_net",
    "parse_net",
    "net_to_bytes",
    "write_net",
    "encode_dense",
    "dclayer_to_compressed",
    "compressed_to_dclayer",
    "SUPPORTED_CODE_BITS",
    "SUPPORTED_INDEX_BITS",
    # validate
    "Rule",
    "RULES",
    "FATAL_CODES",
    "Finding",
    "LayerCounts",
    "ValidationReport",
    "validate_container",
    "validate_dump",
    "validate_net",
    "validate_layer",
    "validate_arrays",
    "detect_format",
]
