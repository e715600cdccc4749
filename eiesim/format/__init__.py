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

#: Where each re-exported name lives: the submodules load on first use (PEP 562), so that
#: ``import eiesim.format.eiedump`` (the CLI's dump reader) does not import the container,
#: Deep Compression and validation modules.
_LAZY = {
    "FORMAT_MINOR_VERSION": "container",
    "FORMAT_NAME": "container",
    "FORMAT_VERSION": "container",
    "MAX_MEMBER_BYTES": "container",
    "Container": "container",
    "ContainerLayer": "container",
    "Network": "container",
    "load_container": "container",
    "load_network": "container",
    "save_network": "container",
    "SUPPORTED_CODE_BITS": "dcnet",
    "SUPPORTED_INDEX_BITS": "dcnet",
    "DCIssue": "dcnet",
    "DCLayer": "dcnet",
    "DCNet": "dcnet",
    "LayerSpec": "dcnet",
    "compressed_to_dclayer": "dcnet",
    "dclayer_to_compressed": "dcnet",
    "encode_dense": "dcnet",
    "load_layer_specs": "dcnet",
    "net_to_bytes": "dcnet",
    "parse_net": "dcnet",
    "read_net": "dcnet",
    "write_net": "dcnet",
    "DUMP_CODE_BITS": "eiedump",
    "DUMP_INDEX_BITS": "eiedump",
    "EieDump": "eiedump",
    "read_dump": "eiedump",
    "write_dump": "eiedump",
    "CompressedLayer": "layout",
    "decode_column": "relindex",
    "decode_segments": "relindex",
    "encode_column": "relindex",
    "encode_segments": "relindex",
    "filler_mask": "relindex",
    "segment_ids": "relindex",
    "FATAL_CODES": "validate",
    "RULES": "validate",
    "Finding": "validate",
    "LayerCounts": "validate",
    "Rule": "validate",
    "ValidationReport": "validate",
    "detect_format": "validate",
    "validate_arrays": "validate",
    "validate_container": "validate",
    "validate_dump": "validate",
    "validate_layer": "validate",
    "validate_net": "validate",
}

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


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
