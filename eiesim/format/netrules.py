"""The rules of the Deep Compression ``.net`` stream (docs/FORMAT.md §1), each written once, run through a sink.

As in :mod:`eiesim.format.rules`, a checker reports a finding -- ``sink.add(code, message,
**location)`` -- and the sink decides what it means: the validator
(:func:`eiesim.format.validate.validate_net`) collects every finding; the reader
(:func:`eiesim.format.dcnet.read_net`, :class:`~eiesim.format.dcnet.DCLayer`) raises on the first
error through a :class:`~eiesim.format.rules.RaiseSink`, and :meth:`DCLayer.issues
<eiesim.format.dcnet.DCLayer.issues>` keeps the non-canonical findings of a readable layer.

Tiers: :func:`check_header` and :func:`plan_layers` (``cheap``) look at the header and the file
size only, before anything else is read; :func:`check_net_layer` adds the codebook and bias
rules (``cheap``) and the O(entries) rules of the entry stream (``full``).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .rules import _check_unused as check_unused
from .rules import check_codebook, check_floats, check_zero_decoding

__all__ = ["MAX_NET_WEIGHTS", "shape_problem", "check_header", "plan_layers", "check_positions",
           "check_net_layer"]

#: Largest weight tensor (elements, ``prod(shape)``) a layer may declare: 2**27, i.e. 512 MiB as the
#: float32 of :meth:`DCLayer.to_dense <eiesim.format.dcnet.DCLayer.to_dense>` (VGG-16's fc6, the
#: largest Deep Compression layer, has 102,760,448; 2**29 let a fuzzed 660 KiB stream declare 282 M
#: weights and build 1.1 GB). The stream does not bound trailing pruned weights, so this limit does;
#: ``shape[0]`` is also bounded by the stream, which stores one float32 bias per output. Larger
#: declarations break rule ``NET-SHAPE-LIMIT``.
MAX_NET_WEIGHTS = 1 << 27


def shape_problem(spec) -> Optional[str]:
    """Why a declared tensor shape breaks ``NET-SHAPE-LIMIT`` (None when it does not)."""
    if spec.n_weights > MAX_NET_WEIGHTS:
        return (f"shape {list(spec.shape)} declares {spec.n_weights} weights, more than the "
                f"{MAX_NET_WEIGHTS} (2**27, 512 MiB as float32) a layer may have")
    return None


def check_header(sink, size: int, n_layers: int) -> bool:
    """``STREAM-TRUNCATED``: ``size`` bytes hold the header (one uint32 entry count per layer)."""
    if size < 4 * n_layers:
        sink.add("STREAM-TRUNCATED", f"{size} bytes cannot hold the header of {n_layers} layers "
                 f"({4 * n_layers} bytes)")
        return False
    return True


def plan_layers(sink, specs, header, size: int) -> Tuple[List[Tuple[int, int]], bool]:
    """Where every layer lies, from the header and the stream size alone (O(layers)).

    Rules: ``NET-SHAPE-LIMIT``, ``FILLER-MISSING`` (more entries declared than the tensor has
    weights: positions grow by at least 1), ``STREAM-TRUNCATED`` (a layer's bytes run past the
    end), ``STREAM-TRAILING-BYTES``. The walk stops at the first layer that breaks one.

    Parameters
    ----------
    sink : RaiseSink or the validator's collector
    specs : sequence of LayerSpec
    header : sequence of int
        Entry count of every layer (the stream's uint32 header).
    size : int
        Bytes of the whole stream, header included.

    Returns
    -------
    spans : list of (int, int)
        ``(byte offset, entry count)`` of every layer located, in order.
    complete : bool
        Every layer was located and the stream ends where the last one does.
    """
    off = 4 * len(specs)
    spans = []
    for i, (spec, n) in enumerate(zip(specs, (int(k) for k in header))):
        loc = {"layer": i, "layer_name": spec.name}
        problem = shape_problem(spec)
        if problem is not None:
            sink.add("NET-SHAPE-LIMIT", problem, **loc)
            return spans, False
        if n > spec.n_weights:
            sink.add("FILLER-MISSING", f"header declares {n} entries, more than the {spec.n_weights} weights of "
                     f"shape {spec.shape}: positions run past the tensor end", **loc)
            return spans, False
        need = spec.stream_bytes(n)
        if off + need > size:
            sink.add("STREAM-TRUNCATED", f"needs {need} bytes at offset {off} ({n} entries), only {size - off} "
                     "remain", **loc)
            return spans, False
        spans.append((off, n))
        off += need
    if off < size:
        sink.add("STREAM-TRAILING-BYTES", f"{size - off} bytes after the last layer (the layers end at byte {off} "
                 f"of {size}): a wrong layer list or a corrupt file", layer=None)
        return spans, False
    return spans, True


def check_positions(sink, spec, z: np.ndarray, **loc) -> None:
    """``FILLER-MISSING``: every entry's position ``pos_i = pos_{i-1} + z_i + 1`` lies inside the tensor.

    O(1) when the last position (``sum(z) + n - 1``) fits, else O(n) to name the first entry past it.
    """
    n = z.size
    if n == 0 or int(z.sum(dtype=np.int64)) + n - 1 < spec.n_weights:
        return
    pos = np.cumsum(z.astype(np.int64) + 1) - 1
    past = pos >= spec.n_weights
    e = int(np.argmax(past))
    sink.add("FILLER-MISSING", f"entry {e} decodes to position {int(pos[e])}, past the tensor end "
             f"({spec.n_weights} weights, shape {spec.shape})", entry=e, count=int(past.sum()), **loc)


def check_net_layer(sink, spec, cb: np.ndarray, bias: np.ndarray, codes: np.ndarray, z: np.ndarray,
                    pads, level: str) -> None:
    """Every rule of one located ``.net`` layer.

    Cheap tier: the codebook rules (:func:`eiesim.format.rules.check_codebook`) and
    ``FLOAT-NONFINITE`` of the bias. Full tier adds ``NIBBLE-PAD-NONZERO``,
    ``RELIDX-FILLER-NONCANONICAL``, ``FILLER-TRAILING``, ``FILLER-MISSING``, ``CODEBOOK-UNUSED`` and
    ``ENTRY-DECODES-TO-ZERO`` -- O(entries), vectorised.

    Parameters
    ----------
    sink : RaiseSink, the validator's collector or DCLayer.issues' sink
    spec : LayerSpec
    cb : numpy.ndarray of float32, shape (2**code_bits,)
    bias : numpy.ndarray of float32, shape (shape[0],)
    codes, z : numpy.ndarray of uint8, shape (n,)
    pads : (int, int)
        The padding high nibbles of an odd entry count (code stream, index stream).
    level : {"cheap", "full"}
    """
    check_codebook(sink, cb, spec.code_bits, level)
    check_floats(sink, bias, "bias")
    if level == "cheap":
        return
    n = codes.size
    if any(pads):
        sink.add("NIBBLE-PAD-NONZERO", f"odd entry count {n}: padding nibbles (code, index) = {tuple(pads)}, "
                 "must be 0", entry=n - 1, count=sum(1 for p in pads if p))
    if n == 0:
        check_unused(sink, codes[:0], spec.code_bits, cb.size)
        return
    zmax = (1 << spec.index_bits) - 1
    fill = codes == 0
    nonc = fill & (z != zmax)
    if nonc.any():
        e = int(np.argmax(nonc))
        sink.add("RELIDX-FILLER-NONCANONICAL", f"entry {e}: code 0 with z = {int(z[e])}; a filler must be "
                 f"(0, {zmax})", entry=e, count=int(nonc.sum()))
    if fill[-1]:
        sink.add("FILLER-TRAILING", f"the stream ends with a filler (entry {n - 1})", entry=n - 1)
    check_positions(sink, spec, z)
    check_unused(sink, codes[~fill], spec.code_bits, cb.size)
    check_zero_decoding(sink, codes[~fill], cb)
