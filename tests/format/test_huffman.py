"""Canonical Huffman coding (Deep Compression §4; docs/FORMAT.md §4 "Huffman")."""

from __future__ import annotations

import heapq
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eiesim.format import huffman as huffman_mod
from eiesim.format.huffman import (
    DECODE_BACKENDS,
    MAX_CODE_LEN,
    HuffmanStream,
    canonical_codes,
    code_lengths,
    decode,
    encode,
    encoded_bits,
    kraft_sum,
)
from eiesim.errors import EieConfigError, EieError, EieFormatError


# --------------------------------------------------------------------------- oracles
def ref_bits(symbols, lengths) -> str:
    """Bit string of a message, built one code word at a time (pure Python)."""
    codes = canonical_codes(lengths)
    return "".join(format(int(codes[s]), f"0{int(lengths[s])}b") for s in symbols)


def ref_payload(bits: str) -> bytes:
    padded = bits + "0" * (-len(bits) % 8)
    return bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))


def huffman_cost(counts) -> int:
    """Total bits of an optimal (unlimited) prefix code: the sum of all merge weights."""
    w = [int(c) for c in counts if c > 0]
    if len(w) == 1:
        return w[0]
    heapq.heapify(w)
    cost = 0
    while len(w) > 1:
        a, b = heapq.heappop(w), heapq.heappop(w)
        cost += a + b
        heapq.heappush(w, a + b)
    return cost


def package_merge_cost(counts, max_len) -> int:
    """Optimal length-limited cost by textbook package-merge with explicit symbol lists."""
    items = sorted((int(c), [i]) for i, c in enumerate(counts) if c > 0)
    n = len(items)
    cur = list(items)
    for _ in range(max_len - 1):
        pk = [(cur[i][0] + cur[i + 1][0], cur[i][1] + cur[i + 1][1]) for i in range(0, len(cur) - 1, 2)]
        cur = sorted(items + pk, key=lambda t: t[0])
    lens = [0] * len(counts)
    for _, syms in cur[: 2 * n - 2]:
        for s in syms:
            lens[s] += 1
    return sum(int(c) * l for c, l in zip(counts, lens))


# --------------------------------------------------------------------------- hand-worked
def test_hand_worked_lengths_and_canonical_codes():
    # CLRS Fig. 16.5 frequencies a..f. Merges: f+e=14, c+b=25, 14+d=30, 25+30=55, a+55=100
    # -> a at depth 1, b c d at depth 3, e f at depth 4.
    counts = [45, 13, 12, 16, 9, 5]
    lengths = code_lengths(counts)
    assert lengths.dtype == np.uint8
    assert lengths.tolist() == [1, 3, 3, 3, 4, 4]
    # canonical: length 1 -> 0; length 3 starts at (0 + 1) << 2 = 100; length 4 at (110 + 1) << 1 = 1110
    codes = canonical_codes(lengths)
    assert codes.dtype == np.uint64
    assert codes.tolist() == [0b0, 0b100, 0b101, 0b110, 0b1110, 0b1111]
    assert kraft_sum(lengths) == 1
    # the message with exactly these counts: 45*1 + 41*3 + 14*4 = 224 bits = 28 bytes, no padding
    msg = np.repeat(np.arange(6), counts)
    s = encode(msg, 6)
    assert s.code_lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert s.n_bits == 224 == encoded_bits(counts)
    assert s.payload == ref_payload(ref_bits(msg, lengths))
    assert np.array_equal(decode(s), msg)


def test_hand_worked_payload_with_one_pad_bit():
    # [0, 0, 0, 1, 2]: counts 3, 1, 1 -> lengths 1, 2, 2 -> codes 0, 10, 11
    # bits 0 0 0 10 11 = 0001011 (7 bits) + one zero pad bit = 0b00010110 = 0x16
    s = encode(np.array([0, 0, 0, 1, 2]), 3)
    assert s.code_lengths.tolist() == [1, 2, 2]
    assert s.n_bits == 7 and s.payload == b"\x16"
    # symbol 0 is the code word "0": a decoder that ran on into the pad bit would emit a 6th symbol
    assert decode(s).tolist() == [0, 0, 0, 1, 2]


def test_ties_are_deterministic():
    assert code_lengths([1, 1, 1, 1]).tolist() == [2, 2, 2, 2]
    assert canonical_codes([2, 2, 2, 2]).tolist() == [0, 1, 2, 3]
    a = code_lengths([5, 5, 5, 5, 5, 5, 5])
    for _ in range(3):
        assert np.array_equal(code_lengths([5, 5, 5, 5, 5, 5, 5]), a)
    assert sorted(a.tolist()) == [2, 3, 3, 3, 3, 3, 3]
    # absent symbols get length 0 and code 0
    assert code_lengths([0, 4, 0, 4]).tolist() == [0, 1, 0, 1]
    assert canonical_codes([0, 1, 0, 1]).tolist() == [0, 0, 0, 1]


# --------------------------------------------------------------------------- one symbol
@pytest.mark.parametrize("alphabet", [1, 16, 256])
def test_one_symbol_alphabet_round_trips(alphabet):
    # a fully dense layer: every relative index z = 0
    z = np.zeros(1001, dtype=np.uint8)
    s = encode(z, alphabet)
    assert s.code_lengths[0] == 1 and int(s.code_lengths.sum()) == 1
    assert s.n_bits == 1001 and s.payload == bytes(126)
    out = decode(s)
    assert out.dtype == np.uint8 and out.size == 1001 and not out.any()
    # the only code word is "0": the 7 zero pad bits never become symbols
    assert decode(encode(np.zeros(1, dtype=np.uint8), alphabet)).tolist() == [0]
    # another symbol than 0
    if alphabet > 1:
        x = np.full(9, alphabet - 1)
        s = encode(x, alphabet)
        assert s.n_bits == 9 and s.payload == b"\x00\x00"
        assert np.array_equal(decode(s), x)


def test_one_symbol_stream_rejects_a_one_bit():
    s = encode(np.zeros(8, dtype=np.uint8), 4)
    bad = HuffmanStream(4, s.code_lengths, 8, 8, b"\x10")
    with pytest.raises(EieFormatError, match="not a code word"):
        decode(bad)


def test_empty_stream():
    s = encode(np.zeros(0, dtype=np.uint8), 16)
    assert s.n_symbols == 0 and s.n_bits == 0 and s.payload == b""
    assert decode(s).size == 0
    assert code_lengths(np.zeros(5, dtype=np.int64)).tolist() == [0] * 5
    with pytest.raises(EieFormatError, match="n_bits"):
        decode(HuffmanStream(16, s.code_lengths, 0, 8, b"\x00"))


# --------------------------------------------------------------------------- residues, padding, stop
def test_every_residue_mod_8_and_zero_pad_bits():
    rng = np.random.default_rng(8)
    seen = set()
    for n in range(1, 80):
        x = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
        s = encode(x, 5)
        seen.add(s.n_bits % 8)
        assert len(s.payload) == (s.n_bits + 7) // 8
        pad = -s.n_bits % 8
        assert pad < 8
        if pad:
            assert s.payload[-1] & ((1 << pad) - 1) == 0
        assert s.payload == ref_payload(ref_bits(x, s.code_lengths))
        assert np.array_equal(decode(s), x)
    assert seen == set(range(8))
    # and with the one-symbol alphabet: n symbols = n bits
    for n in range(8, 16):
        s = encode(np.zeros(n, dtype=np.int64), 2)
        assert s.n_bits % 8 == n % 8
        assert decode(s).size == n


def test_decoding_stops_at_the_stored_count():
    # [0, 0, 0, 1, 2] -> 0 0 0 10 11 + one zero pad bit; "0" is the code word of symbol 0,
    # so a decoder running into the pad bit would emit a sixth symbol
    s = encode(np.array([0, 0, 0, 1, 2]), 3)
    assert (s.n_bits, s.payload) == (7, b"\x16")
    assert decode(s).tolist() == [0, 0, 0, 1, 2]
    # claiming fewer symbols than the bits hold is rejected, not silently truncated
    short = HuffmanStream(3, s.code_lengths, 4, 7, s.payload)
    with pytest.raises(EieFormatError, match="left over"):
        decode(short)
    # extra zero bits declared in n_bits never produce extra symbols: rejected
    longer = HuffmanStream(3, s.code_lengths, 5, 8, s.payload)
    with pytest.raises(EieFormatError, match="left over"):
        decode(longer)
    # fixed-length code (two symbols, 1 bit each): same rule
    s2 = encode(np.array([1, 1, 0, 1, 1]), 2)
    assert s2.n_bits == 5
    assert decode(s2).tolist() == [1, 1, 0, 1, 1]
    with pytest.raises(EieFormatError, match="n_bits"):
        decode(HuffmanStream(2, s2.code_lengths, 4, 5, s2.payload))
    # more symbols claimed than the payload holds
    with pytest.raises(EieFormatError, match="n_bits"):
        decode(HuffmanStream(3, s.code_lengths, 8, 7, s.payload))


def test_framing_errors():
    x = np.array([0, 1, 2, 3, 0, 0, 1, 2, 0])
    s = encode(x, 4)
    with pytest.raises(EieFormatError, match="too short"):
        decode(HuffmanStream(4, s.code_lengths, s.n_symbols, s.n_bits, s.payload[:-1]))
    with pytest.raises(EieFormatError, match="trailing bytes"):
        decode(HuffmanStream(4, s.code_lengths, s.n_symbols, s.n_bits, s.payload + b"\x00"))
    assert s.n_bits % 8
    bad_pad = s.payload[:-1] + bytes([s.payload[-1] | 1])
    with pytest.raises(EieFormatError, match="pad bits"):
        decode(HuffmanStream(4, s.code_lengths, s.n_symbols, s.n_bits, bad_pad))
    with pytest.raises(EieFormatError, match="code table is empty"):
        decode(HuffmanStream(4, np.zeros(4, np.uint8), 1, 1, b"\x00"))
    with pytest.raises(EieFormatError, match="exceeds"):
        decode(HuffmanStream(2, [1, MAX_CODE_LEN + 1], 1, 1, b"\x00"))
    with pytest.raises(EieFormatError, match="code_lengths has shape"):
        HuffmanStream(4, np.ones(3, np.uint8), 0, 0, b"")
    with pytest.raises(EieFormatError, match="alphabet_size"):
        HuffmanStream(0, np.ones(0, np.uint8), 0, 0, b"")
    with pytest.raises(EieFormatError, match="payload"):
        HuffmanStream(1, [1], 0, 0, "abc")


def test_incomplete_code_rejects_unassigned_words():
    # lengths 1, 2 (Kraft 3/4): code words 0, 10; "11" is not in the table
    lens = np.array([1, 2], dtype=np.uint8)
    assert kraft_sum(lens) == Fraction(3, 4)
    ok = HuffmanStream(2, lens, 3, 4, bytes([0b0100_0000]))  # 0 10 0
    assert decode(ok).tolist() == [0, 1, 0]
    bad = HuffmanStream(2, lens, 2, 3, bytes([0b0110_0000]))  # 0 11
    with pytest.raises(EieFormatError, match="not a code word"):
        decode(bad)


def test_kraft_above_one_is_rejected():
    lens = np.array([1, 1, 1], dtype=np.uint8)
    assert kraft_sum(lens) == Fraction(3, 2)
    with pytest.raises(EieFormatError, match="Kraft"):
        canonical_codes(lens)
    with pytest.raises(EieFormatError, match="Kraft"):
        decode(HuffmanStream(3, lens, 3, 3, b"\x00"))
    assert kraft_sum([0, 0]) == 0
    assert kraft_sum([2, 2, 2, 3, 3]) == 1


def test_encode_input_errors():
    with pytest.raises(EieFormatError, match=r"symbols\[2\] = 4"):
        encode(np.array([0, 1, 4]), 4)
    with pytest.raises(EieFormatError, match="outside"):
        encode(np.array([0, -1]), 4)
    with pytest.raises(EieFormatError, match="integer"):
        encode(np.array([0.5]), 4)
    with pytest.raises(EieFormatError, match="alphabet_size"):
        encode(np.array([0]), 0)
    with pytest.raises(EieFormatError, match="1-D"):
        encode(np.zeros((2, 2), dtype=np.int64), 4)
    with pytest.raises(EieFormatError, match="negative"):
        code_lengths([1, -1])
    with pytest.raises(EieFormatError, match="max_len"):
        code_lengths([1, 1, 1, 1, 1], max_len=2)


def test_large_alphabet_decodes_to_uint16():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1000, size=5000)
    s = encode(x, 1000)
    out = decode(s)
    assert out.dtype == np.uint16 and np.array_equal(out, x)


# --------------------------------------------------------------------------- length limit
def test_length_limited_codes_are_optimal_and_valid():
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    counts = np.array(fib, dtype=np.int64)
    plain = code_lengths(counts)
    assert int(plain.max()) == 39  # a Fibonacci histogram gives the deepest tree
    assert int((counts * plain).sum()) == huffman_cost(counts)
    for limit in (6, 8, 12, 20, MAX_CODE_LEN):
        lim = code_lengths(counts, max_len=limit)
        assert int(lim.max()) <= limit
        assert kraft_sum(lim) <= 1
        assert int((counts * lim).sum()) == package_merge_cost(counts, limit)
    assert encoded_bits(counts) == int((counts * code_lengths(counts, max_len=MAX_CODE_LEN)).sum())
    # a limit the plain code already meets changes nothing
    assert np.array_equal(code_lengths(counts, max_len=39), plain)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 10**6), min_size=2, max_size=24),
    limit=st.integers(1, 12),
)
def test_package_merge_matches_textbook(counts, limit):
    present = sum(c > 0 for c in counts)
    if present > 2**limit:
        with pytest.raises(EieFormatError):
            code_lengths(counts, max_len=limit)
        return
    lens = code_lengths(counts, max_len=limit)
    assert int(lens.max()) <= max(limit, 1)
    assert kraft_sum(lens) <= 1
    assert all((l == 0) == (c == 0) for l, c in zip(lens.tolist(), counts))
    if present >= 2:
        cost = sum(c * int(l) for c, l in zip(counts, lens.tolist()))
        assert cost == package_merge_cost(counts, limit)


# --------------------------------------------------------------------------- property tests
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alphabet=st.integers(1, 300),
    n=st.integers(0, 3000),
    concentration=st.floats(0.05, 5.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_random_distributions(alphabet, n, concentration, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(alphabet, concentration))
    x = rng.choice(alphabet, size=n, p=p)
    s = encode(x, alphabet)
    counts = np.bincount(x, minlength=alphabet)
    assert s.n_symbols == n
    assert s.n_bits == encoded_bits(counts) == int((counts * s.code_lengths.astype(np.int64)).sum())
    if n:
        assert s.n_bits == huffman_cost(counts)  # optimal (32-bit limit never binds here)
    assert kraft_sum(s.code_lengths) <= 1
    assert len(s.payload) == (s.n_bits + 7) // 8
    if n <= 400:
        assert s.payload == ref_payload(ref_bits(x, s.code_lengths))
    assert np.array_equal(decode(s), x)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 4), n=st.integers(1, 600))
def test_corrupted_payload_is_rejected_or_decodes_exactly_n(seed, flips, n):
    rng = np.random.default_rng(seed)
    x = rng.choice(12, size=n, p=rng.dirichlet(np.full(12, 0.4)))
    s = encode(x, 12)
    raw = bytearray(s.payload)
    for _ in range(flips):
        bit = int(rng.integers(0, 8 * len(raw)))
        raw[bit // 8] ^= 0x80 >> (bit % 8)
    bad = HuffmanStream(12, s.code_lengths, s.n_symbols, s.n_bits, bytes(raw))
    try:
        out = decode(bad)
    except EieFormatError:
        return
    assert out.shape == (n,)
    assert int(out.max()) < 12


def test_long_streams_cross_decode_blocks():
    # > 2**18 bits: several decode blocks, boundaries falling inside code words
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.full(256, 0.3))
    x = rng.choice(256, size=150_000, p=p).astype(np.uint8)
    s = encode(x, 256)
    assert s.n_bits > 3 * 2**18
    assert np.array_equal(decode(s), x)


def test_one_million_symbols_speed():
    rng = np.random.default_rng(0)
    x = rng.choice(16, size=1_000_000, p=rng.dirichlet(np.full(16, 0.5))).astype(np.uint8)
    t0 = time.perf_counter()
    s = encode(x, 16)
    t1 = time.perf_counter()
    y = decode(s)
    t2 = time.perf_counter()
    assert np.array_equal(x, y)
    # measured here: ~0.03 s encode, ~0.3 s decode; generous bounds for a shared 2-core machine
    assert t1 - t0 < 2.0
    assert t2 - t1 < 8.0


def test_fixed_length_streams_cross_decode_blocks():
    # fixed-length codes skip the chain search; > 2**18 symbols spans several blocks
    z = np.zeros(300_001, dtype=np.uint64)  # uint64 input is accepted
    s = encode(z, 16)
    assert s.n_bits == 300_001 and decode(s).size == 300_001
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=300_001)
    s = encode(x, 2)
    assert np.array_equal(s.code_lengths, [1, 1]) and np.array_equal(decode(s), x)
    # a legal (if wasteful) fixed 16-bit code: 00..00 -> 0, 00..01 -> 1; 00..10 is not a code word
    assert decode(HuffmanStream(2, [16, 16], 3, 48, bytes([0, 0, 0, 1, 0, 0]))).tolist() == [0, 1, 0]
    with pytest.raises(EieFormatError, match="offset 16"):
        decode(HuffmanStream(2, [16, 16], 3, 48, bytes([0, 0, 0, 2, 0, 0])))


# --------------------------------------------------------------------------- kernel vs NumPy twin
try:
    from eiesim._kernels import huffman_dec as _huffman_kernel
except ImportError:  # pragma: no cover - only on a broken install
    _huffman_kernel = None

needs_kernel = pytest.mark.skipif(
    _huffman_kernel is None,
    reason="the compiled kernel eiesim._kernels.huffman_dec is not built (run `pip install -e .`)",
)


def pack(symbols, lengths, alphabet: int) -> HuffmanStream:
    """A stream of ``symbols`` under any valid code ``lengths`` (not just the histogram's own code)."""
    lengths = np.asarray(lengths, dtype=np.uint8)
    x = np.asarray(symbols, dtype=np.int64)
    if x.size == 0:
        return HuffmanStream(alphabet, lengths, 0, 0, b"")
    codes = canonical_codes(lengths)
    ls = lengths[x].astype(np.int64)
    assert ls.min() > 0, "every symbol of the message needs a code word"
    sh = ls[:, None] - 1 - np.arange(int(ls.max()))[None, :]  # bit j of a code word, MSB first
    bits = (codes[x][:, None] >> np.maximum(sh, 0).astype(np.uint64)) & np.uint64(1)
    payload = np.packbits(bits[sh >= 0].astype(np.uint8)).tobytes()
    return HuffmanStream(alphabet, lengths, int(x.size), int(ls.sum()), payload)


def outcome(stream, backend):
    """``("ok", array)`` or ``("error", type, message)`` of one decoder."""
    try:
        return ("ok", decode(stream, backend=backend))
    except EieError as exc:
        return ("error", type(exc), str(exc))


def assert_twins(stream):
    """Kernel and NumPy twin: the same array (values and dtype), or the same error type and message."""
    k, ref = outcome(stream, "kernel"), outcome(stream, "numpy")
    assert k[0] == ref[0], (k, ref)
    if k[0] == "ok":
        assert k[1].dtype == ref[1].dtype and k[1].shape == ref[1].shape
        assert np.array_equal(k[1], ref[1])
        return k[1]
    assert k[1:] == ref[1:]
    return None


def fib_weights(k: int) -> np.ndarray:
    f = [1, 1]
    while len(f) < k:
        f.append(f[-1] + f[-2])
    return np.array(f[:k], dtype=np.int64)


def test_pack_helper_matches_the_encoder():
    rng = np.random.default_rng(2)
    x = rng.choice(9, size=333, p=rng.dirichlet(np.full(9, 0.5)))
    s = encode(x, 9)
    p = pack(x, s.code_lengths, 9)
    assert (p.n_bits, p.payload) == (s.n_bits, s.payload)


def test_backend_argument_and_fallback(monkeypatch):
    s = encode(np.array([0, 0, 0, 1, 2]), 3)
    with pytest.raises(EieConfigError, match="backend 'cuda'"):
        decode(s, backend="cuda")
    assert set(DECODE_BACKENDS) == {"kernel", "numpy"}
    assert decode(s, backend="numpy").tolist() == [0, 0, 0, 1, 2]
    # a missing kernel: the default falls back to NumPy, an explicit request says what is missing
    monkeypatch.setattr(huffman_mod, "_KERNEL_CACHE", [None, "No module named 'huffman_dec'"])
    assert decode(s).tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(EieError, match="huffman_dec is missing.*backend='numpy'"):
        decode(s, backend="kernel")


@needs_kernel
def test_default_backend_is_the_kernel(monkeypatch):
    s = encode(np.array([0, 1, 1, 2, 0]), 3)
    calls = []
    real = huffman_mod._decode_kernel
    monkeypatch.setattr(huffman_mod, "_decode_kernel", lambda *a: calls.append(1) or real(*a))
    assert decode(s).tolist() == [0, 1, 1, 2, 0]
    assert calls == [1]


@needs_kernel
def test_kernel_guards_its_memory_accesses():
    # the kernel refuses arrays that would let it read or write out of bounds (never reached
    # through decode(), which sizes them; here called directly)
    s = encode(np.array([0, 0, 0, 1, 2]), 3)
    table = np.zeros(4, np.uint32)
    per = np.zeros(3, np.uint64)
    offs = np.zeros(3, np.int64)
    order = np.arange(3, dtype=np.uint16)
    out = np.empty(5, np.uint8)
    short = np.frombuffer(s.payload + bytes(7), np.uint8)
    with pytest.raises(ValueError, match="buffer"):
        _huffman_kernel.decode_canonical(short, 7, table, 2, per, per, offs, order, 2, out)
    buf = np.frombuffer(s.payload + bytes(8), np.uint8)
    with pytest.raises(ValueError, match="table size"):
        _huffman_kernel.decode_canonical(buf, 7, table[:3], 2, per, per, offs, order, 2, out)
    with pytest.raises(ValueError, match="per-length"):
        _huffman_kernel.decode_canonical(buf, 7, table, 2, per[:2], per, offs, order, 2, out)
    with pytest.raises(ValueError, match="out of range"):
        _huffman_kernel.decode_canonical(buf, 7, table, 2, per, per, offs, order, 33, out)


_DISTRIBUTIONS = ("uniform", "skewed", "geometric", "dirichlet")


def draw_message(rng, alphabet: int, n: int, kind: str) -> np.ndarray:
    if kind == "uniform":
        p = np.full(alphabet, 1.0 / alphabet)
    elif kind == "skewed":  # one dominant symbol (a pruned layer's zero run lengths)
        p = np.full(alphabet, 0.1 / max(alphabet - 1, 1))
        p[0] = 0.9 if alphabet > 1 else 1.0
    elif kind == "geometric":  # deep trees
        p = 0.5 ** np.arange(alphabet, dtype=np.float64)
    else:
        p = rng.dirichlet(np.full(alphabet, 0.3))
    return rng.choice(alphabet, size=n, p=p / p.sum())


@needs_kernel
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alphabet=st.integers(1, 256),
    n=st.integers(0, 4000),
    kind=st.sampled_from(_DISTRIBUTIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_kernel_matches_numpy_on_random_streams(alphabet, n, kind, seed):
    rng = np.random.default_rng(seed)
    x = draw_message(rng, alphabet, n, kind)
    s = encode(x, alphabet)
    out = assert_twins(s)
    assert out is not None and np.array_equal(out, x)


@needs_kernel
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alphabet=st.integers(2, 64),
    max_len=st.integers(1, MAX_CODE_LEN),
    weights=st.sampled_from(("fibonacci", "random")),
    n=st.integers(1, 1500),
    seed=st.integers(0, 2**32 - 1),
)
def test_kernel_matches_numpy_on_length_limited_codes(alphabet, max_len, weights, n, seed):
    # codes of up to 32 bits (past the kernel's 11-bit lookup table), the message drawn
    # uniformly over the present symbols so the longest code words occur often
    rng = np.random.default_rng(seed)
    counts = fib_weights(alphabet) if weights == "fibonacci" else rng.integers(0, 1000, size=alphabet)
    counts[rng.integers(0, alphabet)] += 1  # at least one present symbol
    if np.count_nonzero(counts) > 2**max_len:
        return
    lens = code_lengths(counts, max_len=max_len)
    present = np.flatnonzero(lens)
    x = present[rng.integers(0, present.size, size=n)]
    s = pack(x, lens, alphabet)
    out = assert_twins(s)
    assert out is not None and np.array_equal(out, x)


@needs_kernel
def test_kernel_every_residue_mod_8_and_longest_codes():
    rng = np.random.default_rng(8)
    seen_bits, seen_n = set(), set()
    for n in range(1, 80):
        for alphabet, kind in ((5, "dirichlet"), (200, "geometric"), (2, "uniform")):
            x = draw_message(rng, alphabet, n, kind)
            s = encode(x, alphabet)
            seen_bits.add(s.n_bits % 8)
            seen_n.add(n % 8)
            assert np.array_equal(assert_twins(s), x)
    assert seen_bits == seen_n == set(range(8))
    # lengths 1, 2, ..., 31, 32, 32 (Kraft sum 1): every code word length up to MAX_CODE_LEN
    lens = np.array(list(range(1, MAX_CODE_LEN + 1)) + [MAX_CODE_LEN], dtype=np.uint8)
    assert kraft_sum(lens) == 1
    for n in range(1, 17):
        x = rng.integers(0, lens.size, size=n)
        assert np.array_equal(assert_twins(pack(x, lens, lens.size)), x)
    x = rng.integers(0, lens.size, size=5000)
    assert np.array_equal(assert_twins(pack(x, lens, lens.size)), x)
    # fixed 32-bit code words (no lookup-table hit at all)
    lens32 = np.full(3, MAX_CODE_LEN, dtype=np.uint8)
    x = rng.integers(0, 3, size=1000)
    assert np.array_equal(assert_twins(pack(x, lens32, 3)), x)


def _edge_streams():
    """The hand-made streams of the tests above (valid and invalid), by name."""
    s7 = encode(np.array([0, 0, 0, 1, 2]), 3)  # 0 0 0 10 11 + one zero pad bit
    s2 = encode(np.array([1, 1, 0, 1, 1]), 2)
    x9 = encode(np.array([0, 1, 2, 3, 0, 0, 1, 2, 0]), 4)
    z0 = encode(np.zeros(8, dtype=np.uint8), 4)
    empty = encode(np.zeros(0, dtype=np.uint8), 16)
    lens12 = np.array([1, 2], dtype=np.uint8)
    out = {
        "count stops before the pad bit": s7,
        "count short of the bits": HuffmanStream(3, s7.code_lengths, 4, 7, s7.payload),
        "extra zero bit declared": HuffmanStream(3, s7.code_lengths, 5, 8, s7.payload),
        "count above the bits": HuffmanStream(3, s7.code_lengths, 8, 7, s7.payload),
        "fixed length": s2,
        "fixed length, count short": HuffmanStream(2, s2.code_lengths, 4, 5, s2.payload),
        "one-symbol rejects a one bit": HuffmanStream(4, z0.code_lengths, 8, 8, b"\x10"),
        "empty": empty,
        "empty with bits": HuffmanStream(16, empty.code_lengths, 0, 8, b"\x00"),
        "too short": HuffmanStream(4, x9.code_lengths, x9.n_symbols, x9.n_bits, x9.payload[:-1]),
        "trailing bytes": HuffmanStream(4, x9.code_lengths, x9.n_symbols, x9.n_bits, x9.payload + b"\x00"),
        "pad bits": HuffmanStream(
            4, x9.code_lengths, x9.n_symbols, x9.n_bits, x9.payload[:-1] + bytes([x9.payload[-1] | 1])
        ),
        "empty table": HuffmanStream(4, np.zeros(4, np.uint8), 1, 1, b"\x00"),
        "code too long": HuffmanStream(2, [1, MAX_CODE_LEN + 1], 1, 1, b"\x00"),
        "Kraft above 1": HuffmanStream(3, [1, 1, 1], 3, 3, b"\x00"),
        "incomplete ok": HuffmanStream(2, lens12, 3, 4, bytes([0b0100_0000])),
        "incomplete, unassigned word": HuffmanStream(2, lens12, 2, 3, bytes([0b0110_0000])),
        "incomplete, unassigned long word": HuffmanStream(3, [1, 2, 14], 2, 15, bytes([0b0111_1111, 0b1111_1110])),
        "16-bit fixed": HuffmanStream(2, [16, 16], 3, 48, bytes([0, 0, 0, 1, 0, 0])),
        "16-bit fixed, bad word": HuffmanStream(2, [16, 16], 3, 48, bytes([0, 0, 0, 2, 0, 0])),
        "runs past n_bits": HuffmanStream(3, [1, 2, 2], 2, 2, bytes([0b0100_0000])),
        "long code runs past n_bits": HuffmanStream(3, [1, 2, 14], 2, 3, bytes([0b0110_0000])),
    }
    for a in (1, 16, 256):
        out[f"one-symbol alphabet {a}"] = encode(np.zeros(1001, dtype=np.uint8), a)
        out[f"one-symbol alphabet {a}, one symbol"] = encode(np.zeros(1, dtype=np.uint8), a)
    out["one-symbol alphabet, symbol 15"] = encode(np.full(9, 15), 16)
    out["uint16 symbols"] = encode(np.random.default_rng(3).integers(0, 1000, size=5000), 1000)
    return out


_EDGE = _edge_streams()
_EDGE_ERRORS = {
    "count short of the bits": "left over",
    "extra zero bit declared": "left over",
    "count above the bits": "n_bits",
    "fixed length, count short": "n_bits",
    "one-symbol rejects a one bit": "not a code word",
    "empty with bits": "n_bits",
    "too short": "too short",
    "trailing bytes": "trailing bytes",
    "pad bits": "pad bits",
    "empty table": "code table is empty",
    "code too long": "exceeds",
    "Kraft above 1": "Kraft",
    "incomplete, unassigned word": "offset 1 .symbol 1. are not a code word",
    "incomplete, unassigned long word": "offset 1 .symbol 1. are not a code word",
    "16-bit fixed, bad word": "offset 16",
    "runs past n_bits": "symbol 1 runs past n_bits = 2",
    "long code runs past n_bits": "symbol 1 runs past n_bits = 3",
}


@needs_kernel
@pytest.mark.parametrize("name", sorted(_EDGE))
def test_kernel_matches_numpy_on_edge_cases(name):
    s = _EDGE[name]
    out = assert_twins(s)
    if name in _EDGE_ERRORS:
        assert out is None
        with pytest.raises(EieFormatError, match=_EDGE_ERRORS[name]):
            decode(s, backend="kernel")
    else:
        assert out is not None and out.size == s.n_symbols


def _corrupt(rng, s: HuffmanStream, how: str) -> HuffmanStream:
    raw = bytearray(s.payload)
    if how == "flip" and raw:
        for _ in range(int(rng.integers(1, 4))):
            bit = int(rng.integers(0, 8 * len(raw)))
            raw[bit // 8] ^= 0x80 >> (bit % 8)
        return HuffmanStream(s.alphabet_size, s.code_lengths, s.n_symbols, s.n_bits, bytes(raw))
    if how == "flip in the bits" and s.n_bits:  # keeps the pad bits zero: caught by decoding only
        bit = int(rng.integers(0, s.n_bits))
        raw[bit // 8] ^= 0x80 >> (bit % 8)
        return HuffmanStream(s.alphabet_size, s.code_lengths, s.n_symbols, s.n_bits, bytes(raw))
    if how == "truncate" and s.n_bits:  # a consistent but shorter payload, zero pad bits
        nb = int(rng.integers(0, s.n_bits))
        raw = raw[: (nb + 7) // 8]
        if nb % 8:
            raw[-1] &= (0xFF << (8 - nb % 8)) & 0xFF
        return HuffmanStream(s.alphabet_size, s.code_lengths, s.n_symbols, nb, bytes(raw))
    if how == "count":
        n = max(0, s.n_symbols + int(rng.choice([-3, -2, -1, 1, 2, 3, 50])))
        return HuffmanStream(s.alphabet_size, s.code_lengths, n, s.n_bits, s.payload)
    if how == "lengths":  # another (possibly invalid or incomplete) code table
        lens = s.code_lengths.astype(np.int64)
        i = int(rng.integers(0, lens.size))
        lens[i] = max(0, min(MAX_CODE_LEN, lens[i] + int(rng.choice([-1, 1, 2]))))
        return HuffmanStream(s.alphabet_size, lens, s.n_symbols, s.n_bits, s.payload)
    return s


@needs_kernel
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alphabet=st.integers(1, 64),
    n=st.integers(1, 800),
    kind=st.sampled_from(_DISTRIBUTIONS),
    limited=st.booleans(),
    how=st.sampled_from(("flip", "flip in the bits", "truncate", "count", "lengths")),
    seed=st.integers(0, 2**32 - 1),
)
def test_kernel_matches_numpy_on_corrupted_streams(alphabet, n, kind, limited, how, seed):
    rng = np.random.default_rng(seed)
    x = draw_message(rng, alphabet, n, kind)
    if limited and alphabet > 1:  # a deep Fibonacci code, all of it used (slow path of the kernel)
        lens = code_lengths(fib_weights(alphabet), max_len=int(rng.integers(max(6, alphabet.bit_length()), 33)))
        s = pack(x, lens, alphabet)
    else:
        s = encode(x, alphabet)
    bad = _corrupt(rng, s, how)
    assert_twins(bad)


@needs_kernel
def test_kernel_on_corruptions_reaches_every_status():
    # every kernel status (exhausted, invalid word, runs past, bits left over) is met and
    # matches the NumPy twin's message
    rng = np.random.default_rng(4)
    msgs = set()
    for i in range(400):
        alphabet = int(rng.integers(2, 40))
        x = draw_message(rng, alphabet, int(rng.integers(1, 300)), _DISTRIBUTIONS[i % 4])
        lens = code_lengths(fib_weights(alphabet), max_len=int(rng.integers(max(6, alphabet.bit_length()), 33)))
        lens[int(rng.integers(0, alphabet))] = 0  # an incomplete code: unassigned words exist
        x = x[lens[x] > 0]
        if x.size == 0:
            continue
        s = pack(x, lens, alphabet)
        bad = _corrupt(rng, s, ("flip in the bits", "truncate", "count")[i % 3])
        assert_twins(bad)
        k = outcome(bad, "kernel")
        if k[0] == "error":
            for key in ("(too short)", "not a code word", "runs past", "left over"):
                if key in k[2]:
                    msgs.add(key)
    assert msgs == {"(too short)", "not a code word", "runs past", "left over"}


@needs_kernel
def test_kernel_long_streams_and_dtypes():
    rng = np.random.default_rng(11)
    x = rng.choice(256, size=150_000, p=rng.dirichlet(np.full(256, 0.3))).astype(np.uint8)
    s = encode(x, 256)
    assert np.array_equal(assert_twins(s), x)
    z = encode(np.zeros(300_001, dtype=np.uint64), 16)
    assert assert_twins(z).size == 300_001
    y = rng.integers(0, 65536, size=20_000)
    out = assert_twins(encode(y, 65536))
    assert out.dtype == np.uint16 and np.array_equal(out, y)
