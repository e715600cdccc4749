"""Storage accounting of a Deep Compression network (Han, Mao, Dally, ICLR 2016, Tables 2-5).

What is counted
---------------
The **baseline** is always the dense float32 model: every weight **and every
bias** at 32 bits (:data:`BASELINE`).  Sizes are in bits internally; tables
show bytes and ``KB = 1000 bytes``.

The compressed size of a layer is the Deep Compression storage stream, not the
per-PE EIE layout: one relative-index stream per layer over the weight matrix
flattened in C order (``W`` is ``(n_out, n_in)``, so along the inputs of one
output, then the next output), as the authors' ``.net`` files store it
(docs/FORMAT.md §1) but bit-packed at the chosen widths (e.g. the 6-bit
weights and 5-bit indices of Deep Compression Table 2 for LeNet-300-100):

* **P+Q** (pruning + quantization): ``n_entries * (code_bits + index_bits)``
  where ``n_entries`` counts the filler entries (a gap of ``g`` zeros before
  a kept weight costs ``floor(g / 2**index_bits)`` fillers of code 0,
  docs/FORMAT.md §1), **plus** the codebook (``2**code_bits`` float32
  entries) **plus** the biases (float32, uncompressed);
* **P+Q+H** (+ Huffman coding, Section 4): the code stream and the index
  stream each canonically Huffman-coded with its own table
  (:mod:`eiesim.format.huffman`): payload bits, plus per stream a table of
  one 8-bit code length per symbol of the alphabet and two 32-bit counts
  (symbols, payload bits) -- our serialisation, the paper publishes none --
  plus the same codebook and biases.

The per-layer columns are those of Deep Compression Tables 2-5: #weights,
weights kept %, weight bits and index bits per stored entry for P+Q and for
P+Q+H, and the compression rate (compressed / dense float32, also as the
factor ``dense / compressed``) without and with Huffman coding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from eiesim.errors import EieInputError
from eiesim.format import huffman

__all__ = [
    "BASELINE",
    "FLOAT_BITS",
    "HUFFMAN_TABLE_BITS_PER_SYMBOL",
    "HUFFMAN_HEADER_BITS",
    "LayerStorage",
    "layer_storage",
    "network_total",
    "relative_index_stream",
    "sharing_compression_rate",
    "storage_columns",
    "storage_table",
    "STORAGE_NOTE",
]

#: Bits of one uncompressed parameter (IEEE-754 float32).
FLOAT_BITS = 32
#: The baseline every rate is relative to.
BASELINE = "dense float32 weights and biases (32 bits per parameter)"
#: Bits stored per alphabet symbol in a Huffman table (its code length, one byte; ours).
HUFFMAN_TABLE_BITS_PER_SYMBOL = 8
#: Bits stored per Huffman stream besides the table: symbol count and payload bit count (2 x 32; ours).
HUFFMAN_HEADER_BITS = 64


def sharing_compression_rate(n: int, k: int, b: int = 32) -> float:
    """Compression rate of weight sharing alone, ``r = n*b / (n*log2(k) + k*b)``.

    Deep Compression Section 3, Eq. (1): ``n`` weights of ``b`` bits each
    are replaced by ``log2(k)``-bit indices into a table of ``k`` shared
    ``b``-bit weights.  The paper's example (Fig. 3): a 4 x 4 layer (n = 16),
    4 clusters, 32-bit weights: ``16*32 / (16*2 + 4*32) = 3.2``.

    Parameters
    ----------
    n : int
        Number of weights (> 0).
    k : int
        Number of clusters (>= 1).
    b : int
        Bits of an uncompressed weight (default 32).

    Returns
    -------
    float
        The rate (dimensionless, > 1 means smaller).

    Raises
    ------
    EieInputError
        Non-positive ``n``, ``k`` or ``b``.
    """
    if n <= 0 or k < 1 or b <= 0:
        raise EieInputError(f"sharing_compression_rate: need n > 0, k >= 1, b > 0; got {n}, {k}, {b}")
    return n * b / (n * math.log2(k) + k * b)


def relative_index_stream(codes: np.ndarray, index_bits: int):
    """The Deep Compression relative-index stream of one layer.

    Parameters
    ----------
    codes : numpy.ndarray
        int ``(n_out, n_in)`` (any shape: flattened in C order); 0 = pruned,
        >= 1 = kept weight's codebook index.
    index_bits : int
        Bits of a relative index, 1..8 (5 for Deep Compression's fc layers,
        Table 2; 4 in the authors' ``.net`` files and in EIE).

    Returns
    -------
    v : numpy.ndarray
        uint8 ``(n_entries,)`` codes, fillers (0) included.
    z : numpy.ndarray
        uint8 ``(n_entries,)`` relative indices: ``pos_i = pos_{i-1} + z_i + 1``
        from ``pos_{-1} = -1``; a filler has ``z = 2**index_bits - 1``
        (docs/FORMAT.md §1).

    Raises
    ------
    EieFormatError
        Bad ``index_bits`` or codes above 255.
    """
    from eiesim.format.relindex import encode_segments

    flat = np.asarray(codes).ravel()
    pos = np.flatnonzero(flat)
    v, z, _ = encode_segments(np.zeros(pos.size, dtype=np.int64), pos, flat[pos].astype(np.int64), 1,
                              index_bits)
    return v, z


@dataclass(frozen=True)
class LayerStorage:
    """Storage of one layer (or of a whole network: :func:`network_total`).

    All sizes in bits.  See the module docstring for what is counted.

    Attributes
    ----------
    name : str
    n_weights : int
        Weights of the dense layer (``n_out * n_in``), biases excluded.
    n_kept : int
        Weights kept by pruning (real non-zeros of the stream).
    n_entries : int
        Stored entries of the relative-index stream, fillers included.
    n_fillers : int
    n_biases : int
        Bias values (stored as float32 in both the baseline and the
        compressed model).
    code_bits, index_bits : int or None
        Widths of a stored code / relative index (None for a network total
        whose layers differ).
    codebook_bits : int
        ``2**code_bits * 32`` (summed over layers for a total).
    weight_huffman_bits, index_huffman_bits : int or None
        Huffman payloads of the code and index streams (None: not computed).
    huffman_table_bits : int or None
        Both streams' tables and headers.
    """

    name: str
    n_weights: int
    n_kept: int
    n_entries: int
    n_fillers: int
    n_biases: int
    code_bits: Optional[int]
    index_bits: Optional[int]
    codebook_bits: int
    weight_bits_pq: int
    index_bits_pq: int
    weight_huffman_bits: Optional[int] = None
    index_huffman_bits: Optional[int] = None
    huffman_table_bits: Optional[int] = None

    # ------------------------------------------------------------------ derived
    @property
    def dense_bits(self) -> int:
        """Baseline: ``(n_weights + n_biases) * 32`` bits (:data:`BASELINE`)."""
        return (self.n_weights + self.n_biases) * FLOAT_BITS

    @property
    def bias_bits(self) -> int:
        """float32 biases, ``n_biases * 32``."""
        return self.n_biases * FLOAT_BITS

    @property
    def pq_bits(self) -> int:
        """Pruned + quantised: code and index streams, codebook, biases."""
        return self.weight_bits_pq + self.index_bits_pq + self.codebook_bits + self.bias_bits

    @property
    def has_huffman(self) -> bool:
        """Whether the P+Q+H columns were computed."""
        return self.weight_huffman_bits is not None

    @property
    def pqh_bits(self) -> Optional[int]:
        """Pruned + quantised + Huffman: both payloads, tables, codebook, biases."""
        if not self.has_huffman:
            return None
        return (self.weight_huffman_bits + self.index_huffman_bits + self.huffman_table_bits
                + self.codebook_bits + self.bias_bits)

    @property
    def kept_fraction(self) -> float:
        """Weights kept by pruning / dense weights (the paper's "Weights%")."""
        return self.n_kept / self.n_weights if self.n_weights else float("nan")

    def _per_entry(self, bits: Optional[int]) -> Optional[float]:
        if bits is None:
            return None
        return bits / self.n_entries if self.n_entries else 0.0

    @property
    def weight_bits_per_entry_pq(self) -> float:
        """Bits of a stored code (fillers included), P+Q."""
        return self._per_entry(self.weight_bits_pq)

    @property
    def index_bits_per_entry_pq(self) -> float:
        """Bits of a stored relative index, P+Q."""
        return self._per_entry(self.index_bits_pq)

    @property
    def weight_bits_per_entry_pqh(self) -> Optional[float]:
        """Mean Huffman code length of the code stream (payload / entries)."""
        return self._per_entry(self.weight_huffman_bits)

    @property
    def index_bits_per_entry_pqh(self) -> Optional[float]:
        """Mean Huffman code length of the index stream (payload / entries)."""
        return self._per_entry(self.index_huffman_bits)

    @property
    def rate_pq(self) -> float:
        """Compressed / dense float32 (a fraction; the paper prints it in %)."""
        return self.pq_bits / self.dense_bits

    @property
    def rate_pqh(self) -> Optional[float]:
        """Compressed with Huffman / dense float32 (None without Huffman columns)."""
        return None if self.pqh_bits is None else self.pqh_bits / self.dense_bits

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict: the fields plus every derived column (bits; rates as fractions).

        Returns
        -------
        dict
            Every dataclass field, the derived properties (``dense_bits``,
            ``pq_bits``, ``rate_pq``, ... in bits or as fractions),
            ``compression_pq`` / ``compression_pqh`` (x, None when undefined),
            ``baseline`` (:data:`BASELINE`) and ``unit`` (``"bits"``).
        """
        d = asdict(self)
        for key in ("dense_bits", "bias_bits", "pq_bits", "pqh_bits", "kept_fraction",
                    "weight_bits_per_entry_pq", "index_bits_per_entry_pq",
                    "weight_bits_per_entry_pqh", "index_bits_per_entry_pqh", "rate_pq", "rate_pqh"):
            d[key] = getattr(self, key)
        d["compression_pq"] = 1.0 / self.rate_pq if self.rate_pq else None
        d["compression_pqh"] = 1.0 / self.rate_pqh if self.rate_pqh else None
        d["baseline"] = BASELINE
        d["unit"] = "bits"
        return d


def _huffman_costs(v: np.ndarray, z: np.ndarray, code_bits: int, index_bits: int):
    cv = np.bincount(v, minlength=1 << code_bits)
    cz = np.bincount(z, minlength=1 << index_bits)
    if v.size == 0:
        wb = ib = 0
    else:
        wb = huffman.encoded_bits(cv)
        ib = huffman.encoded_bits(cz)
    table = (HUFFMAN_TABLE_BITS_PER_SYMBOL * ((1 << code_bits) + (1 << index_bits))
             + 2 * HUFFMAN_HEADER_BITS)
    return int(wb), int(ib), int(table)


def layer_storage(
    codes: np.ndarray,
    code_bits: int,
    index_bits: int,
    *,
    name: str = "",
    n_biases: Optional[int] = None,
    huffman: bool = True,
) -> LayerStorage:
    """Storage columns of one pruned, quantised layer.

    Parameters
    ----------
    codes : numpy.ndarray
        int ``(n_out, n_in)``: 0 = pruned, ``1 .. 2**code_bits - 1`` = kept.
    code_bits : int
        Bits of a stored weight code, 1..8 (6 for Deep Compression's
        LeNet-300-100, Table 2; 4 in EIE).
    index_bits : int
        Bits of a relative index, 1..8 (5 for LeNet-300-100, Table 2).
    name : str
    n_biases : int, optional
        Float32 biases of the layer; default ``n_out`` (``codes.shape[0]``);
        0 for a layer without bias.
    huffman : bool
        Also compute the P+Q+H columns (needs :mod:`eiesim.format.huffman`).

    Returns
    -------
    LayerStorage

    Raises
    ------
    EieInputError
        ``codes`` not 2-D integer, a code outside ``0 .. 2**code_bits - 1``,
        bad widths.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or (codes.size and codes.dtype.kind not in "iu"):
        raise EieInputError(f"layer_storage({name!r}): codes must be a 2-D integer array, got "
                            f"{codes.dtype} {codes.shape}")
    code_bits, index_bits = int(code_bits), int(index_bits)
    if not (1 <= code_bits <= 8 and 1 <= index_bits <= 8):
        raise EieInputError(f"layer_storage({name!r}): code_bits and index_bits must lie in 1..8, "
                            f"got {code_bits} and {index_bits}")
    if codes.size and (codes.min() < 0 or codes.max() >= (1 << code_bits)):
        raise EieInputError(f"layer_storage({name!r}): codes must lie in 0..{(1 << code_bits) - 1} "
                            f"for code_bits={code_bits}")
    v, z = relative_index_stream(codes, index_bits)
    n_entries = int(v.size)
    n_fill = int(np.count_nonzero(v == 0))
    nb = codes.shape[0] if n_biases is None else int(n_biases)
    if huffman:
        wh, ih, tb = _huffman_costs(v, z, code_bits, index_bits)
    else:
        wh = ih = tb = None
    return LayerStorage(
        name=name,
        n_weights=int(codes.size),
        n_kept=n_entries - n_fill,
        n_entries=n_entries,
        n_fillers=n_fill,
        n_biases=nb,
        code_bits=code_bits,
        index_bits=index_bits,
        codebook_bits=(1 << code_bits) * FLOAT_BITS,
        weight_bits_pq=n_entries * code_bits,
        index_bits_pq=n_entries * index_bits,
        weight_huffman_bits=wh,
        index_huffman_bits=ih,
        huffman_table_bits=tb,
    )


def network_total(layers: Sequence[LayerStorage], name: str = "total") -> LayerStorage:
    """Sum of layer rows (the "Total" row of Deep Compression Tables 2-5).

    Per-entry bit columns of the total are means weighted by stored entries;
    ``code_bits``/``index_bits`` are kept when every layer has the same width.

    Parameters
    ----------
    layers : sequence of LayerStorage
        The per-layer rows (at least one).
    name : str, default "total"
        Name of the returned row.

    Returns
    -------
    LayerStorage
        Counts and bit totals summed over ``layers``; ``code_bits`` /
        ``index_bits`` None when the layers differ.

    Raises
    ------
    EieInputError
        No layers, or a mix of layers with and without Huffman columns.
    """
    layers = list(layers)
    if not layers:
        raise EieInputError("network_total: no layers")
    huff = {l.has_huffman for l in layers}
    if len(huff) != 1:
        raise EieInputError("network_total: some layers have Huffman columns and some do not")

    def same(attr):
        vals = {getattr(l, attr) for l in layers}
        return vals.pop() if len(vals) == 1 else None

    def total(attr):
        return sum(getattr(l, attr) for l in layers)

    h = huff.pop()
    return LayerStorage(
        name=name,
        n_weights=total("n_weights"),
        n_kept=total("n_kept"),
        n_entries=total("n_entries"),
        n_fillers=total("n_fillers"),
        n_biases=total("n_biases"),
        code_bits=same("code_bits"),
        index_bits=same("index_bits"),
        codebook_bits=total("codebook_bits"),
        weight_bits_pq=total("weight_bits_pq"),
        index_bits_pq=total("index_bits_pq"),
        weight_huffman_bits=total("weight_huffman_bits") if h else None,
        index_huffman_bits=total("index_huffman_bits") if h else None,
        huffman_table_bits=total("huffman_table_bits") if h else None,
    )


def _fmt_count(n: int) -> str:
    """A count in engineering units, 3 significant digits from 10,000 on: 1,000; 235K; 16.8M; 1.23G."""
    if n < 10000:
        return f"{n:,}"
    for scale, unit in ((1e3, "K"), (1e6, "M"), (1e9, "G")):
        v = float(f"{n / scale:.3g}")  # rounded first: 999,500 is 1.00M, not 1000K
        if v < 1000:
            return f"{v:.3g}{unit}"
        if unit == "G":
            return f"{n / scale:,.0f}G"
    raise AssertionError("unreachable")  # pragma: no cover


def _fmt_rate(r) -> str:
    """A rate as ``(percent, times)`` -> ``"2.82% (35.5x)"``."""
    return f"{r[0]:.2f}% ({r[1]:.1f}x)"


def _fmt_bits(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


def _rate(r: Optional[float]):
    return None if r is None else (100 * r, 1 / r)


def storage_columns(with_sizes: bool = True) -> list:
    """The columns of the storage table: what each holds and how the text shows it.

    One definition for :func:`storage_table` (text, markdown) and the CSV of
    ``eiesim compress --csv`` (:func:`eiesim.report.summaries.storage_report`).

    Parameters
    ----------
    with_sizes : bool
        Add stored entries (fillers) and the dense / P+Q / P+Q+H sizes in KB (1 KB = 1000 bytes).

    Returns
    -------
    list of (str, callable, callable, tuple of str or None)
        ``(title, value, text, csv_titles)``: ``value(row)`` of a
        :class:`LayerStorage` is a number (a tuple of numbers where
        ``csv_titles`` names them: a rate as percent and times, entries and
        fillers) or None (no Huffman coding: printed ``-``); ``text(value)``
        the printed cell.
    """
    pct = lambda v: f"{v:.2f}%"  # noqa: E731
    kb = lambda v: f"{v:.1f}"  # noqa: E731
    cols = [
        ("#weights", lambda r: r.n_weights, _fmt_count, None),
        ("weights kept %", lambda r: 100 * r.kept_fraction, pct, None),
        ("weight bits (P+Q)", lambda r: r.weight_bits_per_entry_pq, _fmt_bits, None),
        ("weight bits (P+Q+H)", lambda r: r.weight_bits_per_entry_pqh, _fmt_bits, None),
        ("index bits (P+Q)", lambda r: r.index_bits_per_entry_pq, _fmt_bits, None),
        ("index bits (P+Q+H)", lambda r: r.index_bits_per_entry_pqh, _fmt_bits, None),
        ("compress rate (P+Q)", lambda r: _rate(r.rate_pq), _fmt_rate,
         ("compress rate (P+Q) %", "compression (P+Q) x")),
        ("compress rate (P+Q+H)", lambda r: _rate(r.rate_pqh), _fmt_rate,
         ("compress rate (P+Q+H) %", "compression (P+Q+H) x")),
    ]
    if with_sizes:
        cols += [
            ("entries (fillers)", lambda r: (r.n_entries, r.n_fillers), lambda v: f"{v[0]:,} ({v[1]:,})",
             ("entries", "fillers")),
            ("dense KB", lambda r: r.dense_bits / 8000, kb, None),
            ("P+Q KB", lambda r: r.pq_bits / 8000, kb, None),
            ("P+Q+H KB", lambda r: None if r.pqh_bits is None else r.pqh_bits / 8000, kb, None),
        ]
    return cols


#: Footnote of the storage table: the baseline and the units.
STORAGE_NOTE = (f"Baseline: {BASELINE}. Bits per stored entry (fillers included); rates = compressed / "
                "baseline size with codebooks (float32), float32 biases, fillers and Huffman tables "
                "counted; KB = 1000 bytes. Stream: Deep Compression relative-index stream (C order), "
                "not the per-PE EIE layout.")


def storage_table(rows: Sequence[LayerStorage], *, markdown: bool = True,
                  with_sizes: bool = True) -> str:
    """The Deep Compression Table 2-5 columns as text.

    Parameters
    ----------
    rows : sequence of LayerStorage
        Layers, usually followed by :func:`network_total`.
    markdown : bool
        A GitHub markdown table (default) or aligned plain text.
    with_sizes : bool
        Add stored entries (fillers), and the dense / P+Q / P+Q+H sizes in KB
        (1 KB = 1000 bytes).

    Returns
    -------
    str
        The table and a footnote naming the baseline and units (:data:`STORAGE_NOTE`).
    """
    cols = storage_columns(with_sizes)
    header = ["layer"] + [c[0] for c in cols]
    body: List[List[str]] = []
    for r in rows:
        vals = [value(r) for _, value, _, _ in cols]
        body.append([r.name] + ["-" if v is None else text(v) for v, (_, _, text, _) in zip(vals, cols)])
    note = STORAGE_NOTE
    if markdown:
        out = ["| " + " | ".join(header) + " |",
               "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
        out += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(out) + "\n\n" + note + "\n"
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    out = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(b) for b in body]
    return "\n".join(out) + "\n" + note + "\n"
