"""``CompressedLayer``: a fully-connected layer laid out over N EIE PEs.

Storage (EIE, Han et al., ISCA 2016, Section III and Fig. 2/3): the weight
matrix W has shape ``(n_out, n_in)`` (rows = outputs, columns = inputs).
PE ``k`` owns every row ``i`` with ``i % N == k``; local row ``r`` of PE ``k``
is global row ``r * N + k``. Each PE stores its slice in compressed sparse
column form: per-PE column pointers and a list of ``(v, z)`` entries, where
``v`` indexes a shared codebook (``codebook[0] == 0.0``, used by fillers)
and ``z`` is the relative row index (see :mod:`eiesim.format.relindex`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EieFormatError
from .relindex import decode_segments, encode_segments_sparse
from .rules import RaiseSink, _gather_ranges, check_csc_arrays
from .rules import n_local_rows as _n_local_rows

__all__ = ["CompressedLayer", "MAX_DENSE_BYTES", "MAX_DIM"]


#: Largest matrix dimension (``n_out``, ``n_in``) and PE count of a layer: the container's limit
#: (docs/FORMAT.md section 4), so every layer that can be built can be saved and read back.
MAX_DIM = 1 << 28


def _as_int(val, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)):
        raise EieFormatError(f"{name}: expected an integer, got {val!r}", code="ARGUMENT")
    val = int(val)
    if val < lo or (hi is not None and val > hi):
        rng = f"outside [{lo}, {hi}]" if hi is not None else f"not >= {lo}"
        raise EieFormatError(f"{name}: {val} is {rng}", code="ARGUMENT")
    return val


def _coerce_int_array(a, name: str, dtype, ndim: int) -> np.ndarray:
    """Contiguous array of ``dtype``; values are range-checked before any narrowing cast."""
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise EieFormatError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}", code="ARGUMENT")
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if arr.size == 0:
        return np.ascontiguousarray(arr.astype(dtype))
    if arr.dtype.kind not in "iu":
        raise EieFormatError(f"{name}: expected an integer array, got dtype {arr.dtype}", code="ARGUMENT")
    info = np.iinfo(dtype)
    lo, hi = arr.min(), arr.max()
    if lo < info.min or hi > info.max:
        bad = int(np.flatnonzero(((arr < info.min) | (arr > info.max)).ravel())[0])
        idx = np.unravel_index(bad, arr.shape)
        idx = idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)
        raise EieFormatError(
            f"{name}[{idx}] = {arr.ravel()[bad].item()} does not fit {dtype} "
            f"(range [{info.min}, {info.max}])", code="ARGUMENT"
        )
    return np.ascontiguousarray(arr.astype(dtype))


def _issparse(x) -> bool:
    """``scipy.sparse.issparse(x)`` without importing scipy for a non-scipy object (scipy.sparse
    costs about 0.14 s of import; the simulator's command line never needs it)."""
    if not (type(x).__module__ or "").startswith("scipy.sparse"):
        return False
    import scipy.sparse as sp

    return sp.issparse(x)


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only, C-contiguous copy of ``arr`` owned by the layer."""
    out = np.array(arr, order="C", copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class CompressedLayer:
    """One fully-connected layer encoded for N PEs the way EIE stores it.

    Parameters
    ----------
    shape : tuple of int
        ``(n_out, n_in)`` of the weight matrix W (rows = outputs), each in
        ``[1, MAX_DIM]`` (:data:`MAX_DIM` = 2**28, the container's limit).
    n_pe : int
        Number of PEs N, in ``[1, MAX_DIM]``. PE ``k`` owns global rows ``i`` with ``i % N == k``;
        its local row ``r`` is global row ``r * N + k`` (EIE, Section III).
    codebook : numpy.ndarray of float32, shape (2**code_bits,)
        Shared weights; ``codebook[0]`` must be +0.0 (bit pattern 0): it is
        the value of fillers and pruned weights (EIE, Section III).
    ptr : numpy.ndarray of int64, shape (n_pe, n_cols + 1)
        Per-PE local column pointers: the entries of column ``j`` of PE ``k``
        are ``v_k[ptr[k, j]:ptr[k, j+1]]`` where ``v_k`` is PE k's part of
        ``v`` (see :attr:`pe_offsets`). ``ptr[k, 0] == 0``.
    v : numpy.ndarray of uint8, shape (n_entries,)
        Codebook indices of all entries, PE 0 first, column order within a PE.
        ``v == 0`` marks a filler.
    z : numpy.ndarray of uint8, shape (n_entries,)
        Relative row indices, same order (zero rows of the PE's own slice
        skipped before the entry).
    has_bias : bool, default False
        When True, column ``n_in`` is the bias column (its input activation is
        the constant 1.0), quantised with the same codebook, as in EIE
        Section III and the authors' C++ simulator. This is lossy and is
        declared, not hidden.
    code_bits : int, default 4
        Bits of ``v`` (EIE: 4, a 16-entry codebook), in ``[1, 8]``.
    index_bits : int, default 4
        Bits of ``z`` (EIE: 4), in ``[1, 8]``.
    name : str, default ""
        Free-form layer name.

    Raises
    ------
    EieFormatError
        On construction, when a cheap (O(n_pe * n_cols)) check of :meth:`check_format`
        fails or an array cannot be coerced to its dtype without changing
        values. The message names the field.

    Notes
    -----
    Arrays are copied into C-contiguous arrays of the stated dtypes
    (int64 / uint8 / float32) and made read-only, so a layer validated once
    stays valid (the simulator caches its full check per layer object).
    ``eq=False``: instances compare by identity.
    """

    shape: tuple[int, int]
    n_pe: int
    codebook: np.ndarray
    ptr: np.ndarray
    v: np.ndarray
    z: np.ndarray
    has_bias: bool = False
    code_bits: int = 4
    index_bits: int = 4
    name: str = ""

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        try:
            shp = tuple(self.shape)
        except TypeError:
            raise EieFormatError(f"shape: expected (n_out, n_in), got {self.shape!r}", code="ARGUMENT") from None
        if len(shp) != 2:
            raise EieFormatError(f"shape: expected (n_out, n_in), got {self.shape!r}", code="ARGUMENT")
        shp = (_as_int(shp[0], "shape[0] (n_out)", 1, MAX_DIM), _as_int(shp[1], "shape[1] (n_in)", 1, MAX_DIM))
        object.__setattr__(self, "shape", shp)
        object.__setattr__(self, "n_pe", _as_int(self.n_pe, "n_pe", 1, MAX_DIM))
        object.__setattr__(self, "code_bits", _as_int(self.code_bits, "code_bits", 1, 8))
        object.__setattr__(self, "index_bits", _as_int(self.index_bits, "index_bits", 1, 8))
        if not isinstance(self.has_bias, (bool, np.bool_)):
            raise EieFormatError(f"has_bias: expected True/False, got {self.has_bias!r}", code="ARGUMENT")
        object.__setattr__(self, "has_bias", bool(self.has_bias))
        if not isinstance(self.name, str):
            raise EieFormatError(f"name: expected a string, got {self.name!r}", code="ARGUMENT")

        cb = np.asarray(self.codebook)
        if cb.ndim != 1:
            raise EieFormatError(f"codebook: expected a 1-D array, got shape {cb.shape}", code="ARGUMENT")
        if cb.size and cb.dtype.kind not in "fiu":
            raise EieFormatError(f"codebook: expected a real-valued array, got dtype {cb.dtype}", code="ARGUMENT")
        object.__setattr__(self, "codebook", _frozen(np.asarray(cb, dtype=np.float32)))
        object.__setattr__(self, "ptr", _frozen(_coerce_int_array(self.ptr, "ptr", np.int64, 2)))
        object.__setattr__(self, "v", _frozen(_coerce_int_array(self.v, "v", np.uint8, 1)))
        object.__setattr__(self, "z", _frozen(_coerce_int_array(self.z, "z", np.uint8, 1)))
        self.check_format(full=False)

    @classmethod
    def from_codes(
        cls,
        codes,
        codebook,
        n_pe: int,
        *,
        bias_codes=None,
        code_bits: int = 4,
        index_bits: int = 4,
        name: str = "",
    ) -> "CompressedLayer":
        """Build a layer from an integer code matrix.

        Parameters
        ----------
        codes : numpy.ndarray or scipy.sparse array/matrix, shape (n_out, n_in)
            Codebook index of every weight, in ``[0, 2**code_bits)``; 0 means
            pruned. Integer dtype (integral floats are accepted too). Sparse
            inputs must not hold duplicate coordinates; explicit zeros are
            treated as pruned.
        codebook : array_like of float, shape (2**code_bits,)
            Shared weight values; ``codebook[0]`` must be +0.0.
        n_pe : int
            Number of PEs N.
        bias_codes : array_like of int, shape (n_out,), optional
            Codes of the bias; it becomes column ``n_in`` (input 1.0),
            quantised with the same codebook (EIE, Section III).
        code_bits, index_bits : int, default 4
            Bit widths of ``v`` and ``z`` (EIE: 4 and 4).
        name : str, default ""

        Returns
        -------
        CompressedLayer

        Raises
        ------
        EieFormatError
            If ``codes`` is not 2-D, holds a non-integral value, a value out of
            ``[0, 2**code_bits)`` (the message names its (row, col)), duplicate
            sparse coordinates, if ``bias_codes`` has the wrong shape or
            values, or if the codebook breaks a rule.
        """
        if _issparse(codes):
            import scipy.sparse as sp

            coo = sp.coo_array(codes)
            shape = coo.shape
            rows = np.asarray(coo.row, dtype=np.int64)
            cols = np.asarray(coo.col, dtype=np.int64)
            data = np.asarray(coo.data)
            if rows.size > 1:
                key = rows * max(shape[1], 1) + cols
                if np.unique(key).size != key.size:
                    raise EieFormatError("codes: sparse matrix holds duplicate coordinates", code="ARGUMENT")
            keep = data != 0
            rows, cols, data = rows[keep], cols[keep], data[keep]
        else:
            dense = np.asarray(codes)
            if dense.ndim != 2:
                raise EieFormatError(f"codes: expected a 2-D matrix, got shape {dense.shape}", code="ARGUMENT")
            shape = dense.shape
            rows, cols = np.nonzero(dense)
            data = dense[rows, cols]
        if len(shape) != 2:
            raise EieFormatError(f"codes: expected a 2-D matrix, got shape {shape}", code="ARGUMENT")
        code_bits = _as_int(code_bits, "code_bits", 1, 8)
        data = _check_codes(data, rows, cols, code_bits, "codes")
        return cls._from_entries(
            shape, rows, cols, data, codebook, n_pe, bias_codes=bias_codes,
            code_bits=code_bits, index_bits=index_bits, name=name,
        )

    @classmethod
    def from_weights(
        cls,
        weights,
        codebook,
        n_pe: int,
        *,
        bias=None,
        code_bits: int = 4,
        index_bits: int = 4,
        name: str = "",
    ) -> "CompressedLayer":
        """Build a layer from float weights that are all codebook values.

        Each weight is mapped exactly (bit-for-bit after widening to float64)
        to its codebook index; 0.0 (either sign) means pruned. When the
        codebook holds a value twice, the lower index is used.

        Parameters
        ----------
        weights : numpy.ndarray or scipy.sparse array/matrix, shape (n_out, n_in)
            Weight values.
        codebook : array_like of float, shape (2**code_bits,)
            Shared weights; ``codebook[0]`` must be +0.0.
        n_pe : int
            Number of PEs N.
        bias : array_like of float, shape (n_out,), optional
            Bias values, each 0.0 or a codebook value; becomes column ``n_in``.
        code_bits, index_bits : int, default 4
        name : str, default ""

        Returns
        -------
        CompressedLayer

        Raises
        ------
        EieFormatError
            If a non-zero weight is not a codebook value (the message names
            the (row, col) of the first offender in row-major order), a bias
            value is not one (names ``bias[i]``), or shapes are wrong.
        """
        code_bits = _as_int(code_bits, "code_bits", 1, 8)
        cb = np.asarray(codebook)
        if cb.ndim != 1 or cb.size != (1 << code_bits):
            raise EieFormatError(
                f"codebook: expected shape ({1 << code_bits},) for code_bits={code_bits}, got {cb.shape}",
                code="ARGUMENT"
            )
        cb64 = cb.astype(np.float32).astype(np.float64)
        if _issparse(weights):
            import scipy.sparse as sp

            coo = sp.coo_array(weights)
            coo.sum_duplicates()  # also sorts by (row, col)
            shape = coo.shape
            rows = np.asarray(coo.row, dtype=np.int64)
            cols = np.asarray(coo.col, dtype=np.int64)
            vals = np.asarray(coo.data)
            keep = vals != 0
            rows, cols, vals = rows[keep], cols[keep], vals[keep]
        else:
            dense = np.asarray(weights)
            if dense.ndim != 2:
                raise EieFormatError(f"weights: expected a 2-D matrix, got shape {dense.shape}", code="ARGUMENT")
            shape = dense.shape
            if dense.dtype.kind in "biufc":
                # one blocked scan in row-major order; the encode below needs no sort
                flat, vals = _nonzeros_rowmajor(dense)
                rows = cols = None
            else:
                rows, cols = np.nonzero(dense)
                vals = dense[rows, cols]
        if vals.size and vals.dtype.kind not in "fiu":
            raise EieFormatError(f"weights: expected real values, got dtype {vals.dtype}", code="ARGUMENT")
        codes, bad = _lookup_bits(vals, cb)
        if codes is None and bad is None:
            codes, bad = _lookup(vals, cb64)
        if bad is not None:
            r, c = (int(flat[bad]) // shape[1], int(flat[bad]) % shape[1]) if rows is None \
                else (int(rows[bad]), int(cols[bad]))
            raise EieFormatError(
                f"weights[{r}, {c}] = {vals[bad].item()!r} is not a codebook value",
                code="ARGUMENT"
            )
        bias_codes = None
        if bias is not None:
            b = np.asarray(bias)
            if b.shape != (shape[0],):
                raise EieFormatError(f"bias: expected shape ({shape[0]},), got {b.shape}", code="ARGUMENT")
            if b.size and b.dtype.kind not in "fiu":
                raise EieFormatError(f"bias: expected real values, got dtype {b.dtype}", code="ARGUMENT")
            nzb = np.flatnonzero(b != 0)
            bcodes, bad = _lookup(b[nzb], cb64)
            if bad is not None:
                raise EieFormatError(f"bias[{int(nzb[bad])}] = {b[nzb[bad]].item()!r} is not a codebook value",
                                     code="ARGUMENT")
            bias_codes = np.zeros(shape[0], dtype=np.int64)
            bias_codes[nzb] = bcodes
        if rows is None:
            return cls._from_rowmajor(
                shape, flat, codes, codebook, n_pe, bias_codes=bias_codes,
                code_bits=code_bits, index_bits=index_bits, name=name,
            )
        return cls._from_entries(
            shape, rows, cols, codes, codebook, n_pe, bias_codes=bias_codes,
            code_bits=code_bits, index_bits=index_bits, name=name,
        )

    @classmethod
    def _from_rowmajor(cls, shape, flat, codes, codebook, n_pe, *, bias_codes,
                       code_bits, index_bits, name) -> "CompressedLayer":
        """:meth:`_from_entries` for entries in row-major order, given as flat indices ``row * n_in + col``.

        The same layer as :meth:`_from_entries` (the tests hold the two to identical
        ``ptr``, ``v`` and ``z``), without its O(nnz log nnz) sort: the per-PE column
        order is a stable counting sort of the row-major stream by segment
        ``pe * n_cols + col`` (see :func:`_segment_order`), and the pointers come from
        the segment counts.
        """
        n_out, n_in, n_pe, index_bits, brow, bdata = _checked_dims_and_bias(shape, n_pe, index_bits, bias_codes,
                                                                            code_bits)
        flat = np.asarray(flat, dtype=np.int64)
        codes = np.asarray(codes)
        has_bias = bias_codes is not None
        n_cols = n_in + has_bias
        _check_size(n_pe * (n_cols + 1) * 8, f"the pointer arrays of {n_pe} PEs x {n_cols + 1} pointers (int64)")
        n_groups = -(-n_out // n_pe)  # local rows: rows g*N .. g*N + N-1 are group g
        # int32 arithmetic where every index fits (half the memory traffic of int64)
        it = np.int32 if max(n_out * n_in, n_pe * n_cols, flat.size + n_out) < 2**31 else np.int64
        flat = flat.astype(it, copy=False)
        rows = flat // it(n_in)
        cols = flat - rows * it(n_in)
        seg = (rows % it(n_pe)) * it(n_cols) + cols
        lrow = rows // it(n_pe)
        group_rows = np.minimum(np.arange(n_groups + 1, dtype=np.int64) * n_pe, n_out)  # first row of each group
        streams = [(seg, lrow, codes, np.searchsorted(flat, (group_rows * n_in).astype(it)))]
        if has_bias and brow.size:
            brow = brow.astype(it)
            streams.append(((brow % it(n_pe)) * it(n_cols) + it(n_in), brow // it(n_pe), bdata,
                            np.searchsorted(brow, group_rows.astype(it))))
        v, z, ptr = _encode_streams(streams, n_pe, n_cols, index_bits, it)
        return cls(
            shape=(n_out, n_in), n_pe=n_pe, codebook=codebook, ptr=ptr, v=v, z=z,
            has_bias=has_bias, code_bits=code_bits, index_bits=index_bits, name=name,
        )

    @classmethod
    def _from_entries(cls, shape, rows, cols, codes, codebook, n_pe, *, bias_codes,
                      code_bits, index_bits, name) -> "CompressedLayer":
        """Encode validated COO entries (codes >= 1) for ``n_pe`` PEs."""
        n_out, n_in, n_pe, index_bits, brow, bdata = _checked_dims_and_bias(shape, n_pe, index_bits, bias_codes,
                                                                            code_bits)
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        has_bias = bias_codes is not None
        if has_bias:
            rows = np.concatenate([rows, brow.astype(np.int64)])
            cols = np.concatenate([cols, np.full(brow.size, n_in, dtype=np.int64)])
            codes = np.concatenate([codes, bdata])
        n_cols = n_in + has_bias
        _check_size(n_pe * (n_cols + 1) * 8, f"the pointer arrays of {n_pe} PEs x {n_cols + 1} pointers (int64)")
        pe = rows % n_pe
        lrow = rows // n_pe
        seg = pe * n_cols + cols
        order = np.lexsort((lrow, seg))
        v, z, present, sums = encode_segments_sparse(seg[order], lrow[order], codes[order], n_pe * n_cols,
                                                     index_bits)
        # pointers straight from the non-empty segments: no dense (n_pe * n_cols) temporaries
        ptr = np.zeros((n_pe, n_cols + 1), dtype=np.int64)
        ptr[present // n_cols, present % n_cols + 1] = sums
        np.cumsum(ptr, axis=1, out=ptr)
        return cls(
            shape=(n_out, n_in), n_pe=n_pe, codebook=codebook, ptr=ptr, v=v, z=z,
            has_bias=has_bias, code_bits=code_bits, index_bits=index_bits, name=name,
        )

    def relayout(self, n_pe: int) -> "CompressedLayer":
        """The same layer re-interleaved over another number of PEs (codes kept exactly).

        Works from the stored entries: memory is O(n_entries) plus the new
        pointer arrays, never a dense ``(n_out, n_cols)`` matrix.

        Parameters
        ----------
        n_pe : int
            New number of PEs N (row ``i`` goes to PE ``i mod N``, EIE Section III).

        Returns
        -------
        CompressedLayer
            ``self`` when ``n_pe == self.n_pe``.

        Raises
        ------
        EieFormatError
            ``SIZE-LIMIT`` when the new pointer arrays (``n_pe * (n_cols + 1)``
            int64) would exceed :data:`MAX_DENSE_BYTES`; ``CODE-RANGE`` /
            ``FILLER-MISSING`` when an entry of this layer cannot be decoded;
            ``ARGUMENT`` for an ``n_pe`` that is not a positive integer.
        """
        n_pe = _as_int(n_pe, "n_pe", 1)
        if n_pe == self.n_pe:
            return self
        rows, cols, v = self._real_entries()
        bias_codes = None
        if self.has_bias:
            m = cols == self.n_in
            bias_codes = np.zeros(self.n_out, dtype=np.int64)
            bias_codes[rows[m]] = v[m]
            rows, cols, v = rows[~m], cols[~m], v[~m]
        return type(self)._from_entries(
            self.shape, rows, cols, v.astype(np.int64), self.codebook, n_pe, bias_codes=bias_codes,
            code_bits=self.code_bits, index_bits=self.index_bits, name=self.name,
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_out(self) -> int:
        """Number of output rows of W."""
        return self.shape[0]

    @property
    def n_in(self) -> int:
        """Number of input columns of W (bias column excluded)."""
        return self.shape[1]

    @property
    def n_cols(self) -> int:
        """Stored columns: ``n_in + has_bias``."""
        return self.shape[1] + int(self.has_bias)

    @property
    def pe_offsets(self) -> np.ndarray:
        """int64 (n_pe + 1,): start of PE k's entries in ``v``/``z``; last value = n_entries."""
        out = np.zeros(self.n_pe + 1, dtype=np.int64)
        np.cumsum(self.ptr[:, -1], out=out[1:])
        return out

    @property
    def n_entries(self) -> int:
        """Stored entries, fillers included."""
        return int(self.v.size)

    @property
    def n_fillers(self) -> int:
        """Filler entries (``v == 0``)."""
        return int(np.count_nonzero(self.v == 0))

    @property
    def n_nonzeros(self) -> int:
        """Real (non-filler) entries, bias column included."""
        return self.n_entries - self.n_fillers

    @property
    def weight_density(self) -> float:
        """Real non-zeros of W (bias column excluded) divided by ``n_out * n_in``."""
        real = int(np.count_nonzero(self.v))
        if self.has_bias:  # less the bias column's: segment n_in of every PE (no per-entry column array)
            seg = self.pe_offsets[:-1] + self.ptr[:, self.n_in]
            real -= int(np.count_nonzero(self.v[_gather_ranges(seg, self.ptr[:, self.n_in + 1] - self.ptr[:, self.n_in])]))
        return real / (self.n_out * self.n_in)

    def n_local_rows(self, k: int) -> int:
        """Number of rows PE ``k`` owns: ``len(range(k, n_out, n_pe))`` (EIE, Section III).

        Parameters
        ----------
        k : int
            PE index in ``[0, n_pe)``.

        Returns
        -------
        int
            Rows ``k, k + n_pe, k + 2 n_pe, ...`` below ``n_out``.

        Raises
        ------
        EieFormatError
            If ``k`` is not an integer in ``[0, n_pe)``.
        """
        k = _as_int(k, "k", 0, self.n_pe - 1)
        return int(_n_local_rows(self.n_out, self.n_pe, k))

    # ------------------------------------------------------------------ per-entry views
    def _segment_counts(self) -> np.ndarray:
        return np.diff(self.ptr, axis=1).ravel()

    def entry_pes(self) -> np.ndarray:
        """PE of each entry.

        Returns
        -------
        numpy.ndarray
            int64 ``(n_entries,)``, non-decreasing (entries are stored PE by PE).
        """
        return np.repeat(np.arange(self.n_pe, dtype=np.int64), self.ptr[:, -1])

    def entry_cols(self) -> np.ndarray:
        """Column of each entry (``n_in`` for the bias column).

        Returns
        -------
        numpy.ndarray
            int64 ``(n_entries,)``, in ``[0, n_cols)``.
        """
        cols = np.tile(np.arange(self.n_cols, dtype=np.int64), self.n_pe)
        return np.repeat(cols, self._segment_counts())

    def entry_local_rows(self) -> np.ndarray:
        """Local row of each entry within its PE, fillers included.

        Returns
        -------
        numpy.ndarray
            int64 ``(n_entries,)``, decoded from the relative indices ``z``
            column segment by column segment.
        """
        return decode_segments(self.v, self.z, self._segment_counts())

    def entry_rows(self) -> np.ndarray:
        """Global row ``local * n_pe + pe`` of each entry, fillers included.

        Returns
        -------
        numpy.ndarray
            int64 ``(n_entries,)`` (EIE, Section III: row ``i`` lives in PE
            ``i mod n_pe``).
        """
        return self.entry_local_rows() * self.n_pe + self.entry_pes()

    def pe_slice(self, k: int):
        """PE ``k``'s part of the layout, as views.

        Parameters
        ----------
        k : int
            PE index in ``[0, n_pe)``.

        Returns
        -------
        ptr_k : numpy.ndarray of int64, shape (n_cols + 1,)
        v_k, z_k : numpy.ndarray of uint8, shape (ptr_k[-1],)

        Raises
        ------
        EieFormatError
            If ``k`` is not in ``[0, n_pe)``.
        """
        k = _as_int(k, "k", 0, self.n_pe - 1)
        off = self.pe_offsets
        return self.ptr[k], self.v[off[k]:off[k + 1]], self.z[off[k]:off[k + 1]]

    # ------------------------------------------------------------------ conversions
    def _check_decodable(self) -> None:
        """Check, once per layer object, what decoding to rows and values relies on.

        The cheap load does not look at every entry; :meth:`to_codes`,
        :meth:`to_dense`, :meth:`bias_values` and :meth:`to_scipy` need every
        code inside the codebook (``CODE-RANGE``) and every decoded local row
        inside its PE's rows (``FILLER-MISSING``): the full tier's errors are
        refused (its warnings are not). O(n_entries), as the conversion
        itself. Raises :class:`EieFormatError` with the rule code.
        """
        if self.__dict__.get("_decodable"):
            return
        self._run_rules("full", RaiseSink())
        object.__setattr__(self, "_decodable", True)

    def _real_entries(self):
        self._check_decodable()
        rows = self.entry_rows()
        cols = self.entry_cols()
        real = self.v != 0
        return rows[real], cols[real], self.v[real]

    def to_codes(self) -> np.ndarray:
        """Dense code matrix.

        Returns
        -------
        numpy.ndarray of uint8, shape (n_out, n_cols)
            Codebook index of every weight (0 = pruned); column ``n_in`` is the
            bias column when :attr:`has_bias`.

        Raises
        ------
        EieFormatError
            ``SIZE-LIMIT`` when the matrix would exceed :data:`MAX_DENSE_BYTES`;
            ``CODE-RANGE`` / ``FILLER-MISSING`` when an entry cannot be decoded
            (rules the cheap load does not check).
        """
        _check_size(self.n_out * self.n_cols, "the dense code matrix (n_out x n_cols bytes)")
        out = np.zeros((self.n_out, self.n_cols), dtype=np.uint8)
        rows, cols, v = self._real_entries()
        out[rows, cols] = v
        return out

    def to_dense(self) -> np.ndarray:
        """Dense float32 weights W (bias excluded).

        Returns
        -------
        numpy.ndarray
            float32 ``(n_out, n_in)``: ``codebook[codes]``, 0.0 where pruned.

        Raises
        ------
        EieFormatError
            As :meth:`to_codes`.
        """
        _check_size(self.n_out * self.n_in * 4, "the dense weight matrix (n_out x n_in float32)")
        return self.codebook[self.to_codes()[:, : self.n_in]]

    def bias_values(self):
        """Quantised bias, or None when the layer has no bias column.

        Returns
        -------
        numpy.ndarray or None
            float32 ``(n_out,)``: ``codebook[v]`` of each row's bias-column
            entry (0.0 where the row has none); None without :attr:`has_bias`.

        Raises
        ------
        EieFormatError
            ``CODE-RANGE`` / ``FILLER-MISSING`` when an entry cannot be decoded.
        """
        if not self.has_bias:
            return None
        rows, cols, v = self._real_entries()
        out = np.zeros(self.n_out, dtype=np.float32)
        m = cols == self.n_in
        out[rows[m]] = self.codebook[v[m]]
        return out

    def to_scipy(self, fmt: str = "csc"):
        """Weights W as a scipy sparse array (float32, shape (n_out, n_in), bias excluded).

        Parameters
        ----------
        fmt : str, default "csc"
            Any scipy.sparse format name (``"csc"``, ``"csr"``, ``"coo"``, ...).

        Returns
        -------
        scipy.sparse.sparray
            No explicit zeros are stored (a codebook entry equal to 0.0 at an
            index > 0 is dropped).
        """
        import scipy.sparse as sp

        rows, cols, v = self._real_entries()
        m = cols < self.n_in
        data = self.codebook[v[m]]
        keep = data != 0
        coo = sp.coo_array(
            (data[keep], (rows[m][keep], cols[m][keep])), shape=self.shape, dtype=np.float32
        )
        return coo.asformat(fmt)

    # ------------------------------------------------------------------ checks
    def check_format(self, full: bool = False) -> None:
        """Check the layout rules; raise on the first violation.

        Cheap checks (O(n_pe * n_cols), the size of ``ptr``, run on every
        construction): dtypes and shapes (``ptr`` is ``(n_pe, n_cols + 1)``),
        ``ptr[:, 0] == 0``, ``ptr`` non-decreasing,
        ``len(v) == len(z) == ptr[:, -1].sum()``, codebook of length
        ``2**code_bits``, finite, ``codebook[0]`` is +0.0 by bit pattern.

        Full checks (O(nnz), ``full=True``): ``v < 2**code_bits``, ``z < 2**index_bits``, every filler is
        ``(0, 2**index_bits - 1)``, no segment ends with a filler, every
        decoded local row lies inside the PE's rows. Together these imply the
        canonical filler count of EIE Section III: a run of ``f`` fillers
        before a real entry with index ``z`` encodes the gap
        ``f * 2**index_bits + z`` with ``z < 2**index_bits``, so
        ``f = gap // 2**index_bits`` exactly.

        Parameters
        ----------
        full : bool, default False

        Raises
        ------
        EieFormatError
            Naming the field and, where it applies, the PE, column and entry.
            Its ``code`` attribute is the stable code of the broken rule
            (``PTR-START-NONZERO``, ``RELIDX-Z-RANGE``, ... ; table in the
            project's ``docs/FORMAT.md``). The rules are the validator's own
            (:func:`eiesim.format.rules.check_csc`, one implementation of
            each): the validator (:mod:`eiesim.format.validate`) reports every
            broken rule at once, with severities; this method stops at the
            first error and, with ``full=True``, also refuses the non-canonical
            filler warnings (``RELIDX-FILLER-NONCANONICAL``, ``FILLER-TRAILING``).
        """
        self._run_rules("cheap", RaiseSink())
        if not full:
            return
        # full: one compiled sweep that also builds the simulator's tables; the rules run (to name
        # the broken one) only when it finds one or is not built
        if self.kernel_tables() is not None:
            return
        self._run_rules("full", RaiseSink(refuse=_SIM_REFUSED))

    def _run_rules(self, level: str, sink) -> None:
        """The format rules (:mod:`eiesim.format.rules`, the validator's own) through ``sink``."""
        check_csc_arrays(sink, self.shape, self.n_pe, self.codebook, self.ptr, self.v, self.z,
                         has_bias=self.has_bias, code_bits=self.code_bits, index_bits=self.index_bits,
                         name=self.name, level=level, zero_rule=False)

    def kernel_tables(self, threads=None):
        """The simulator kernel's tables of this layer, built (and all full rules checked) once.

        Parameters
        ----------
        threads : {None, 1, 2}
            2: a layer of at least ``eie_sim.SPLIT_MIN_ENTRIES`` (2**21) entries decodes
            half of its columns on the kernels' helper thread (the same tables). None
            (default): 2 when the process may use two CPUs, else 1. A layer whose
            tables are already built returns them whatever ``threads`` is.

        Returns
        -------
        eiesim._kernels.eie_sim.LayerTables or None
            ``None`` when a full format rule is broken (:meth:`check_format`
            ``(full=True)`` names it), a PE holds 2**31 entries or more, or the
            kernel is not built. The tables are kept on the layer (it is
            immutable) and take about 8 bytes per (column, PE) (12 beyond
            32,767 rows per PE) and 2 per non-filler entry (4 when
            ``n_out << code_bits`` passes 2**16, 8 past 2**32).

        Raises
        ------
        EieConfigError
            ``threads`` is not None, 1 or 2.
        """
        from .._kernels import check_threads, helper_submit, usable_cpus

        threads = check_threads(threads, "kernel_tables")
        cached = self.__dict__.get("_kernel_tables")
        if cached is not None:
            return cached
        try:
            from .._kernels import eie_sim
        except ImportError:  # pragma: no cover - only on a broken install
            return None
        split = threads == 2 or (threads is None and self.v.size >= eie_sim.SPLIT_MIN_ENTRIES and usable_cpus() > 1)
        tables, _, _ = eie_sim.build_tables(ptr=self.ptr, v=self.v, z=self.z, n_out=self.n_out,
                                            code_bits=self.code_bits, index_bits=self.index_bits,
                                            submit=helper_submit() if split else None)
        if tables is not None:
            object.__setattr__(self, "_kernel_tables", tables)
        return tables

    # ------------------------------------------------------------------ misc
    def __repr__(self) -> str:
        nm = f"{self.name!r}, " if self.name else ""
        bias = ", bias" if self.has_bias else ""
        return (
            f"CompressedLayer({nm}shape={self.shape}{bias}, n_pe={self.n_pe}, "
            f"entries={self.n_entries}, fillers={self.n_fillers}, "
            f"density={self.weight_density:.4f}, code_bits={self.code_bits}, "
            f"index_bits={self.index_bits})"
        )


#: Warnings that ``check_format(full=True)`` refuses too: the simulator counts every code-0 entry as
#: a filler slot, so a non-canonical filler would change its cycle count (docs/FORMAT.md §6).
_SIM_REFUSED = ("RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING")

#: Largest array (bytes) a layer method materialises beyond its own storage:
#: the dense matrices of :meth:`CompressedLayer.to_codes` / ``to_dense`` and
#: the pointer arrays of a re-layout. 2 GiB, the container's per-member limit
#: (docs/FORMAT.md section 4); larger requests raise ``SIZE-LIMIT``.
MAX_DENSE_BYTES = 1 << 31


def _check_size(n_bytes: int, what: str) -> None:
    """Refuse (``SIZE-LIMIT``) an allocation of ``n_bytes`` over :data:`MAX_DENSE_BYTES`, before making it."""
    if int(n_bytes) > MAX_DENSE_BYTES:
        raise EieFormatError(
            f"{what} would take {int(n_bytes) / 2**30:.1f} GiB, over the {MAX_DENSE_BYTES / 2**30:g} GiB limit",
            code="SIZE-LIMIT",
        )


def _checked_dims_and_bias(shape, n_pe, index_bits, bias_codes, code_bits: int):
    """``(n_out, n_in, n_pe, index_bits, bias_rows, bias_codes_nz)`` checked; the bias parts are None without one.

    Raises
    ------
    EieFormatError
        ``ARGUMENT``: a dimension out of range, ``bias_codes`` of the wrong shape or
        holding a code past ``2**code_bits - 1`` (:func:`_check_codes`).
    """
    n_out = _as_int(shape[0], "shape[0] (n_out)", 1)
    n_in = _as_int(shape[1], "shape[1] (n_in)", 1)
    n_pe = _as_int(n_pe, "n_pe", 1)
    index_bits = _as_int(index_bits, "index_bits", 1, 8)
    if bias_codes is None:
        return n_out, n_in, n_pe, index_bits, None, None
    bc = np.asarray(bias_codes)
    if bc.shape != (n_out,):
        raise EieFormatError(f"bias_codes: expected shape ({n_out},), got {bc.shape}", code="ARGUMENT")
    brow = np.flatnonzero(bc)
    return n_out, n_in, n_pe, index_bits, brow, _check_codes(bc[brow], brow, np.full(brow.size, n_in), code_bits,
                                                             "bias_codes")


def _check_codes(data, rows, cols, code_bits: int, name: str) -> np.ndarray:
    """Validate code values (integral, in [1, 2**code_bits)) and return them as int64."""
    data = np.asarray(data)
    if data.size == 0:
        return data.astype(np.int64)
    if data.dtype.kind == "b":
        data = data.astype(np.int64)
    if data.dtype.kind not in "iu":
        if data.dtype.kind != "f":
            raise EieFormatError(f"{name}: expected integer codes, got dtype {data.dtype}", code="ARGUMENT")
        bad = np.flatnonzero(~np.isfinite(data) | (data != np.round(data)))
        if bad.size:
            b = _first_rowmajor(bad, rows, cols)
            raise EieFormatError(
                f"{name}[{int(rows[b])}, {int(cols[b])}] = {data[b].item()!r} is not an integer code", code="ARGUMENT"
            )
    hi = 1 << code_bits
    bad = np.flatnonzero((data < 0) | (data >= hi))
    if bad.size:
        b = _first_rowmajor(bad, rows, cols)
        where = f"[{int(rows[b])}]" if name == "bias_codes" else f"[{int(rows[b])}, {int(cols[b])}]"
        raise EieFormatError(
            f"{name}{where} = {data[b].item()!r} is outside [0, {hi}) for code_bits={code_bits}", code="ARGUMENT"
        )
    return data.astype(np.int64)


def _first_rowmajor(bad, rows, cols) -> int:
    """Index (into ``bad``'s domain) of the first offender in row-major order."""
    rows = np.asarray(rows)[bad]
    cols = np.asarray(cols)[bad]
    return int(bad[np.lexsort((cols, rows))[0]])


def _lookup(vals, cb64):
    """Exact codebook lookup of non-zero ``vals``; returns (codes int64, first bad index or None)."""
    order = np.argsort(cb64[1:], kind="stable") + 1
    srt = cb64[order]
    x = np.asarray(vals).astype(np.float64)
    idx = np.searchsorted(srt, x, side="left")
    idx_c = np.minimum(idx, srt.size - 1)
    ok = (idx < srt.size) & (srt[idx_c] == x)
    if not np.all(ok):
        return None, int(np.flatnonzero(~ok)[0])
    return order[idx_c].astype(np.int64), None


#: Bytes of the weight matrix :func:`_nonzeros_rowmajor` scans per block (its
#: ``!= 0`` mask stays in cache; NumPy's ``nonzero`` of a bool mask is a
#: branch-free loop, about 3x faster than on the float matrix itself).
_SCAN_BLOCK_BYTES = 1 << 20

#: Groups of local rows above which :func:`_segment_order` sorts instead of
#: running its per-group loop (a loop iteration per group costs some µs of Python).
_MAX_GROUP_LOOP = 512


def _nonzeros_rowmajor(dense: np.ndarray):
    """Non-zeros of a 2-D array in row-major order: (flat indices ``row * n_in + col`` int64, values).

    ``-0.0`` is zero; NaN is non-zero (as :func:`numpy.nonzero`). Any memory
    layout: the matrix is read in blocks of rows, each block once.
    """
    n_out, n_in = dense.shape
    if n_out == 0 or n_in == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=dense.dtype)
    step = max(1, _SCAN_BLOCK_BYTES // (n_in * dense.itemsize))
    idx, vals = [], []
    for r0 in range(0, n_out, step):
        blk = np.ascontiguousarray(dense[r0:r0 + step]).reshape(-1)  # a view unless rows are strided
        i = np.flatnonzero(blk != 0)
        if i.size:
            vals.append(blk[i])  # a gather by index: ~15x faster than indexing with the mask
            i += r0 * n_in
            idx.append(i)
    if len(idx) == 1:
        return idx[0], vals[0]
    if not idx:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=dense.dtype)
    return np.concatenate(idx), np.concatenate(vals)


#: Odd 32- and 64-bit multipliers for :func:`_lookup_bits`' multiply-shift hash
#: (Dietzfelbinger et al., J. Algorithms 1997; the constants are the golden ratio's
#: and those of xxHash and MurmurHash3), tried in turn until the codebook's values
#: land in distinct slots.
_HASH_MULT = {
    4: (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xCC9E2D51, 0x1B873593),
    8: (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x87C37B91114253D5,
        0x4CF5AD432745937F, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53),
}


def _lookup_bits(vals, cb):
    """Exact codebook lookup of non-zero float32 / float64 ``vals`` by bit pattern.

    Returns what :func:`_lookup` returns, or ``(None, None)`` when it does not
    apply (another dtype, or no collision-free hash found): the caller then uses
    :func:`_lookup`. For non-zero, non-NaN floats, equal values have equal bit
    patterns, so a table of the codebook's bit patterns (the lowest index for a
    value held twice; zero and NaN entries left out: they equal no non-zero
    value) addressed by a multiply-shift hash gives the same codes as comparing
    values after widening to float64, in O(1) per value instead of a binary search.
    """
    vals = np.asarray(vals)
    if vals.dtype == np.float32:
        keys = np.asarray(cb).astype(np.float32)
        ubits = np.uint32
    elif vals.dtype == np.float64:
        keys = np.asarray(cb).astype(np.float32).astype(np.float64)
        ubits = np.uint64
    else:
        return None, None
    width = 8 * keys.itemsize
    kbits = keys.view(ubits)
    use = np.flatnonzero((keys != 0) & ~np.isnan(keys))
    use = use[use >= 1]
    vb = np.ascontiguousarray(vals).view(ubits)
    if use.size == 0:
        return (None, 0) if vals.size else (np.zeros(0, dtype=np.int64), None)
    distinct = np.unique(kbits[use])
    for k in range(max(1, int(distinct.size - 1).bit_length()), 17):  # tables of up to 2**16 slots
        shift = ubits(width - k)
        for mult in _HASH_MULT[keys.itemsize]:
            m = ubits(mult)
            with np.errstate(over="ignore"):
                h = (distinct * m) >> shift
            if np.unique(h).size != distinct.size:
                continue
            table_code = np.zeros(1 << k, dtype=np.uint8)
            table_bits = np.zeros(1 << k, dtype=ubits)  # +0.0: equals no non-zero value's pattern
            with np.errstate(over="ignore"):
                hk = (kbits[use] * m) >> shift
            for i, slot in zip(use[::-1], hk[::-1]):  # the lowest index of a repeated value wins
                table_code[slot] = i
                table_bits[slot] = kbits[i]
            with np.errstate(over="ignore"):
                hv = (vb * m) >> shift
            ok = table_bits[hv] == vb
            if not ok.all():
                return None, int(np.flatnonzero(~ok)[0])
            return table_code[hv], None
    return None, None  # no multiplier separates these values: the caller's binary search


def _segment_order(seg, bounds, counts_start, n: int, it) -> np.ndarray:
    """Destination of every entry of a stream in the stable order by segment.

    ``seg`` is one stream's segment per entry; its entries come in groups (``bounds``)
    in which no segment repeats, so a per-group gather/scatter of the running
    fill pointers (``counts_start``, updated in place) is a stable counting sort.
    """
    dest = np.empty(n, dtype=it)
    for g in range(bounds.size - 1):
        a, b = int(bounds[g]), int(bounds[g + 1])
        if a == b:
            continue
        s = seg[a:b]
        d = counts_start[s]
        dest[a:b] = d
        counts_start[s] = d + 1
    return dest


def _encode_streams(streams, n_pe: int, n_cols: int, index_bits: int, it=np.int64):
    """(v, z, ptr) of a layer from entry streams, each in row-major order with group bounds.

    Every stream is ``(seg, lrow, codes, bounds)`` with ``seg = pe * n_cols + col``;
    within a segment its entries come in increasing local row, and no two streams
    share a segment. Output as :func:`eiesim.format.relindex.encode_segments_sparse`
    followed by :meth:`CompressedLayer._from_entries`' pointers.
    """
    n_seg = n_pe * n_cols
    counts = np.zeros(n_seg, dtype=np.int64)
    for seg, _, _, _ in streams:
        counts += np.bincount(seg, minlength=n_seg)
    start = np.zeros(n_seg + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    nnz = int(start[-1])
    lrow_s = np.empty(nnz, dtype=it)
    code_s = np.empty(nnz, dtype=np.uint8)
    fill = start[:-1].astype(it)
    for seg, lrow, codes, bounds in streams:
        if bounds.size - 1 > _MAX_GROUP_LOOP:
            # many small groups: a stable sort is cheaper than the loop (within a segment the
            # stream is in row order, so the stable order by segment is the per-PE column order)
            order = np.argsort(seg, kind="stable")
            dest = np.empty(seg.size, dtype=it)
            dest[order] = fill[seg[order]] + _rank_in_runs(seg[order])
            fill += np.bincount(seg, minlength=n_seg).astype(it)
        else:
            dest = _segment_order(seg, bounds, fill, seg.size, it)
        lrow_s[dest] = lrow
        code_s[dest] = codes
    zmax = (1 << index_bits) - 1
    prev = np.empty(nnz, dtype=it)
    if nnz:
        prev[1:] = lrow_s[:-1]
        prev[start[:-1][counts > 0]] = -1  # a segment's first entry counts from local row 0
    gap = lrow_s - prev - 1
    n_fill = gap >> index_bits
    if nnz and n_fill.any():
        csum = np.zeros(nnz + 1, dtype=np.int64)  # entries with fillers: may pass 2**31
        np.cumsum(n_fill + 1, out=csum[1:])
        v = np.zeros(int(csum[-1]), dtype=np.uint8)
        z = np.full(int(csum[-1]), zmax, dtype=np.uint8)
        real = csum[1:] - 1
        v[real] = code_s
        z[real] = gap & zmax
        at = csum[start]  # entries (fillers included) before each segment
    else:
        v = code_s
        z = gap.astype(np.uint8)
        at = start
    ptr = np.empty((n_pe, n_cols + 1), dtype=np.int64)
    base = at[0:n_seg:n_cols]
    ptr[:, :n_cols] = at[:n_seg].reshape(n_pe, n_cols) - base[:, None]
    ptr[:, n_cols] = at[n_cols::n_cols] - base
    return v, z, ptr


def _rank_in_runs(sorted_seg: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal values (``sorted_seg`` sorted)."""
    n = sorted_seg.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.concatenate(([True], sorted_seg[1:] != sorted_seg[:-1])))
    run_start = np.repeat(first, np.diff(np.append(first, n)))
    return np.arange(n, dtype=np.int64) - run_start
