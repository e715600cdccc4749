# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Canonical-Huffman decoder: the compiled twin of ``eiesim.format.huffman._decode_numpy``.

Sees only the tables prepared and the stream validated by
``eiesim.format.huffman`` (code lengths, Kraft sum, framing, pad bits, size
bounds); loops symbol by symbol without the GIL. It raises nothing from the
loop: an exhausted stream, a bit pattern that is no code word, or a code word
running past ``n_bits`` stops decoding and is reported as a status code, which
the Python side turns into the same :class:`~eiesim.errors.EieFormatError`
the NumPy decoder raises.

Decoding one symbol at bit offset ``pos`` (``pos < n_bits`` always holds when
the buffer is read):

* ``w``: the 64 bits from byte ``pos >> 3`` (big-endian), shifted left by
  ``pos & 7``, so its top ``64 - (pos & 7) >= 57`` bits are the stream from
  ``pos`` on (code words have at most 32 bits); after each code word ``w``
  is shifted left by its length, and read again only when fewer than
  ``max_len`` valid bits remain;
* ``table[w >> (64 - table_bits)]``: ``(symbol << 8) | length`` for every
  code word of at most ``table_bits`` bits (repeated over all suffixes); 0
  when the next code word is longer, or when the bits are no code word;
* longer code words: canonical search on the lengths ``table_bits + 1 ..
  max_len``. Left-justified to ``max_len`` bits, the code words of length
  ``l`` fill ``[upper[l - 1], upper[l])``; the length is the first ``l`` with
  ``v < upper[l]`` (none: not a code word), the symbol is
  ``order[offs[l] + (v >> (max_len - l)) - first[l]]``.

Reads never leave the buffer: ``pos < n_bits`` is checked before every read,
and the buffer holds ``ceil(n_bits / 8) + 8`` bytes (checked on entry).
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef fused sym_t:
    uint8_t
    uint16_t

# Status codes (same values as eiesim.format.huffman._K_*)
cdef enum:
    ST_OK = 0
    ST_EXHAUSTED = 1  # pos reached n_bits before n symbols
    ST_INVALID = 2  # the bits at pos are not a code word of the table
    ST_RUNS_PAST = 3  # the code word at pos ends after n_bits


cdef inline uint64_t _load_be64(const uint8_t* p) noexcept nogil:
    return ((<uint64_t>p[0] << 56) | (<uint64_t>p[1] << 48) | (<uint64_t>p[2] << 40)
            | (<uint64_t>p[3] << 32) | (<uint64_t>p[4] << 24) | (<uint64_t>p[5] << 16)
            | (<uint64_t>p[6] << 8) | <uint64_t>p[7])


def decode_canonical(
    const uint8_t[::1] buf,
    int64_t n_bits,
    const uint32_t[::1] table,
    int table_bits,
    const uint64_t[::1] upper,
    const uint64_t[::1] first,
    const int64_t[::1] offs,
    const uint16_t[::1] order,
    int max_len,
    sym_t[::1] out,
):
    """Decode ``out.shape[0]`` symbols of a canonical Huffman stream into ``out``.

    Parameters
    ----------
    buf : uint8 array, shape (ceil(n_bits / 8) + 8,) or longer
        Payload (code words MSB first) followed by at least 8 zero bytes.
    n_bits : int
        Payload length in bits; no code word may end after it.
    table : uint32 array, shape (2 ** table_bits,)
        ``(symbol << 8) | length`` of the code word starting with each
        ``table_bits``-bit pattern, 0 if it is longer or not a code word.
    table_bits : int
        Width of the table index, ``1 <= table_bits <= max_len``.
    upper, first, offs : arrays of shape (max_len + 1,)
        Per code length ``l``: exclusive end of the length-``l`` code words
        left-justified to ``max_len`` bits, the first canonical code word of
        length ``l``, and the index in ``order`` of its symbol.
    order : uint16 array
        Present symbols sorted by (length, symbol).
    max_len : int
        Longest code length, ``1 <= max_len <= 32``.
    out : uint8 or uint16 array, shape (n,)
        Receives the symbols; ``out[:done]`` is valid on return.

    Returns
    -------
    tuple of int
        ``(status, done, pos)``: ``status`` 0 = all ``n`` symbols decoded,
        1 = the bits ran out (``pos >= n_bits``) before symbol ``done``,
        2 = the bits at ``pos`` (symbol ``done``) are not a code word,
        3 = the code word of symbol ``done`` at ``pos`` ends after ``n_bits``;
        ``done`` symbols were decoded and ``pos`` is the bit offset reached.

    Raises
    ------
    ValueError
        If the array sizes or widths are inconsistent (never after the
        Python-side preparation; it guards the memory accesses).
    """
    cdef Py_ssize_t n = out.shape[0]
    if not 1 <= max_len <= 32 or not 1 <= table_bits <= max_len or n_bits < 0:
        raise ValueError("max_len, table_bits or n_bits out of range")
    if table.shape[0] != (<Py_ssize_t>1 << table_bits):
        raise ValueError("table size does not match table_bits")
    if upper.shape[0] < max_len + 1 or first.shape[0] < max_len + 1 or offs.shape[0] < max_len + 1:
        raise ValueError("per-length tables are shorter than max_len + 1")
    if buf.shape[0] < (n_bits + 7) // 8 + 8:
        raise ValueError("buffer is shorter than ceil(n_bits / 8) + 8 bytes")
    cdef Py_ssize_t n_order = order.shape[0]
    cdef Py_ssize_t done = 0
    cdef int64_t pos = 0
    cdef int64_t idx
    cdef int status = ST_OK
    cdef int tshift = 64 - table_bits
    cdef int vshift = 64 - max_len
    cdef int l, avail
    cdef uint32_t e
    cdef uint64_t w, v
    cdef const uint8_t* p = &buf[0]
    with nogil:
        while done < n:
            if pos >= n_bits:
                status = ST_EXHAUSTED
                break
            # one read serves every code word that fits its top 57 bits
            w = _load_be64(p + (pos >> 3)) << (pos & 7)
            avail = 64 - (pos & 7)
            while True:
                e = table[w >> tshift]
                if e != 0:
                    l = e & 0xFF
                    if pos + l > n_bits:
                        status = ST_RUNS_PAST
                        break
                    out[done] = <sym_t>(e >> 8)
                else:
                    v = w >> vshift
                    l = table_bits + 1
                    while l <= max_len and v >= upper[l]:
                        l += 1
                    if l > max_len:
                        status = ST_INVALID
                        break
                    idx = offs[l] + <int64_t>((v >> (max_len - l)) - first[l])
                    if idx < 0 or idx >= n_order:  # cannot happen for a Kraft-valid table
                        status = ST_INVALID
                        break
                    if pos + l > n_bits:
                        status = ST_RUNS_PAST
                        break
                    out[done] = <sym_t>order[idx]
                pos += l
                done += 1
                w <<= l
                avail -= l
                if avail < max_len or done >= n or pos >= n_bits:
                    break
            if status != ST_OK:
                break
    return status, done, pos
