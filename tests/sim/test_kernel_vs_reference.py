"""The Cython kernel, the cycle-stepped reference and the functional oracle agree, bit for bit.

A hypothesis property test over random small layers: both backends must give
the same cycles, counters, per-PE busy/idle/stall arrays and output bits, and
the output must equal :mod:`eiesim.sim.functional` exactly. Every example is
simulated in float32 and in fixed16 mode; timing must not depend on the mode.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate
from eiesim.sim.fixedpoint import fixed_format, quantize
from eiesim.sim.functional import spmv_fixed, spmv_float32

CODE_BITS = 4
N_EXAMPLES = 300

# Entries per spmat line. With code_bits = 4 the entry is 4 + index_bits bits,
# so the line is L * (4 + index_bits) bits: for index_bits = 4 that is
# 8, 16, 32, 64, 128 bits (L = 1, 2, 4, 8, 16) -- plus L = 3 and 5, which take
# the kernel's non-power-of-two (division) path.
LINE_ENTRIES = (1, 2, 3, 4, 5, 8, 16)


def _density(rng, kind: int, skew: float = 1.0) -> float:
    """0.0 (kind 0), 1.0 (kind 1), else uniform in [0, 1) raised to ``skew`` (skew > 1: mostly sparse)."""
    if kind == 0:
        return 0.0
    if kind == 1:
        return 1.0
    return float(rng.random() ** skew)


def _pick(draw, options):
    """One of ``options``, near-uniformly; shrinks toward ``options[0]``.

    ``st.integers(lo, hi)`` over a small range and ``st.sampled_from`` favour the
    first values strongly inside a composite strategy; drawing a wide integer and
    reducing it keeps the distribution flat while hypothesis can still shrink.
    """
    return options[draw(st.integers(0, 2**20)) % len(options)]


@st.composite
def layer_cases(draw):
    """(layer, activations, float32 config, fixed16 config) for a random small layer."""
    n_out = _pick(draw, range(1, 41))
    n_in = _pick(draw, range(1, 41))
    n_pe = _pick(draw, range(1, 13))
    fifo_depth = _pick(draw, range(1, 7))
    # short relative indices make fillers frequent in these small layers (a gap of
    # 2**index_bits rows in one PE's slice needs a filler); 4 bits is EIE's choice
    index_bits = _pick(draw, (1, 1, 1, 2, 2, 3, 4))
    # a line is at least 8 bits (EIEConfig), so L = 1 needs the 8-bit entry (index_bits = 4)
    line_entries = _pick(draw, [n for n in LINE_ENTRIES if n * (CODE_BITS + index_bits) >= 8])
    # density kinds: 0 -> all zero, 1 -> all non-zero, 2..9 -> random (drawn from the seeded rng)
    w_kind = _pick(draw, range(10))
    a_kind = _pick(draw, range(10))
    b_kind = _pick(draw, range(10))
    neg_share = _pick(draw, (0.0, 0.5, 1.0))
    has_bias = _pick(draw, (False, True))
    plant_tail = _pick(draw, (False, True))
    rounding = _pick(draw, ("nearest", "floor"))
    saturate = _pick(draw, (True, False))
    loud = _pick(draw, (False, False, True))  # large weights and inputs: fixed16 sums overflow
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w_density = _density(rng, w_kind, skew=3.0)  # sparse layers make gaps, hence fillers
    a_density = _density(rng, a_kind)
    bias_density = _density(rng, b_kind)
    empty_cols = float(rng.uniform(0.0, 0.5))

    # Codebook: entry 0 is +0.0; the others are non-zero float32 values of mixed sign and scale.
    # The scale lets fixed16 accumulators overflow now and then (saturate / wrap).
    scale = 7.9 if loud else float(rng.choice([0.01, 0.5, 4.0]))
    mags = rng.uniform(0.05, 1.0, 15) * scale
    signs = rng.choice([-1.0, 1.0], 15)
    codebook = np.concatenate([[0.0], mags * signs]).astype(np.float32)

    codes = rng.integers(1, 1 << CODE_BITS, size=(n_out, n_in))
    codes[rng.random((n_out, n_in)) >= w_density] = 0
    if plant_tail:  # a non-zero in each PE's last local row: long gaps above it, hence fillers
        tail = np.zeros_like(codes)
        tail[-n_pe:, :] = rng.integers(1, 1 << CODE_BITS, size=tail[-n_pe:, :].shape)
        tail[:, rng.random(n_in) < 0.5] = 0
        codes = np.where(codes == 0, tail, codes)
    codes[:, rng.random(n_in) < empty_cols] = 0  # whole empty columns
    bias_codes = None
    if has_bias:
        bias_codes = rng.integers(1, 1 << CODE_BITS, size=n_out)
        bias_codes[rng.random(n_out) >= bias_density] = 0
    layer = CompressedLayer.from_codes(
        codes, codebook, n_pe, bias_codes=bias_codes, code_bits=CODE_BITS, index_bits=index_bits
    )

    act = rng.uniform(0.01, 1.0, n_in) * (32.0 if loud else float(rng.choice([0.05, 1.0, 4.0])))
    act[rng.random(n_in) < neg_share] *= -1.0
    act[rng.random(n_in) >= a_density] = 0.0
    act = act.astype(np.float32)

    cfg = EIEConfig(
        n_pe=n_pe,
        fifo_depth=fifo_depth,
        spmat_line_bits=line_entries * (CODE_BITS + index_bits),
        code_bits=CODE_BITS,
        index_bits=index_bits,
    )
    cfg_fx = cfg.replace(arith="fixed16", rounding=rounding, saturate=saturate)
    return layer, act, cfg, cfg_fx


def _same_result(rk, rr) -> None:
    """Kernel result ``rk`` and reference result ``rr`` are identical."""
    assert rk.cycles == rr.cycles
    assert rk.counters == rr.counters
    np.testing.assert_array_equal(rk.busy, rr.busy)
    np.testing.assert_array_equal(rk.idle, rr.idle)
    np.testing.assert_array_equal(rk.stall, rr.stall)
    assert rk.output.dtype == rr.output.dtype == np.float32
    np.testing.assert_array_equal(rk.output.view(np.uint32), rr.output.view(np.uint32))
    if rk.output_fixed is None:
        assert rr.output_fixed is None
    else:
        np.testing.assert_array_equal(rk.output_fixed, rr.output_fixed)
    assert rk.act_nonzeros == rr.act_nonzeros


STATS: Counter = Counter()


@settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,  # every run draws the same fresh budget of examples (the aggregate check below)
    # A fixed example sequence: the coverage floors below are a property of the strategy, and a
    # random draw occasionally fell under them (48 of 300 layers with fillers against a floor of 60).
    derandomize=True,
)
@given(case=layer_cases())
def _check_backends_agree(case):
    layer, act, cfg, cfg_fx = case

    # ---- float32
    rk = simulate(layer, act, cfg, backend="kernel")
    rr = simulate(layer, act, cfg, backend="reference")
    _same_result(rk, rr)
    np.testing.assert_array_equal(rk.output.view(np.uint32), spmv_float32(layer, act).view(np.uint32))

    # internal consistency of the timing
    assert np.all(rk.busy + rk.idle == rk.cycles)
    c = rk.counters
    assert c["entries"] == c["fillers"] + c["macs"]
    assert c["acc_writes"] == c["macs"]
    assert c["broadcasts"] == rk.act_nonzeros + int(layer.has_bias)
    assert c["ptr_reads"] == c["broadcasts"] * layer.n_pe
    assert c["ccu_stall_cycles"] >= rk.stall.max(initial=0)

    # ---- fixed16: accumulators equal the functional oracle
    fk = simulate(layer, act, cfg_fx, backend="kernel")
    fr = simulate(layer, act, cfg_fx, backend="reference")
    _same_result(fk, fr)
    np.testing.assert_array_equal(fk.output_fixed, spmv_fixed(layer, act, cfg_fx))
    # the fixed16 LNZD sees the quantised activations: the timing of float32 on the input
    # with every value that rounds to 0 in the activation format set to 0 (issue 9 W1)
    seen = quantize(np.asarray(act, dtype=np.float32), cfg_fx.act_frac_bits, fixed_format(cfg_fx)) != 0
    rq = rk
    if not np.array_equal(seen, np.asarray(act) != 0):
        rq = simulate(layer, np.where(seen, act, 0).astype(np.float32), cfg, backend="kernel")
        STATS["input rounding to 0"] += 1
    timing = {k: v for k, v in fk.counters.items() if k != "saturations"}
    assert fk.cycles == rq.cycles and timing == {k: v for k, v in rq.counters.items() if k != "saturations"}
    assert rk.counters["saturations"] == 0  # float32 never saturates
    assert fk.act_nonzeros == int(seen.sum())
    np.testing.assert_array_equal(fk.stall, rq.stall)

    # ---- what this example exercised (reported with --hypothesis-show-statistics)
    feats = {
        "fillers": c["fillers"] > 0,  # fillers actually processed (column broadcast)
        "layer with fillers": layer.n_fillers > 0,
        "stalls": c["ccu_stall_cycles"] > 0,
        "bypasses": c["bypasses"] > 0,
        "empty PE": layer.n_pe > layer.n_out,
        "bias": layer.has_bias,
        "negative input": bool(np.any(act < 0)),
        "all-zero input": not np.any(act),
        # a final sum outside the 16-bit word (computed with 32-bit accumulators): saturated or wrapped
        "fixed overflow": bool(
            np.any(np.abs(spmv_fixed(layer, act, cfg_fx.replace(fixed_total_bits=32))) > 32767)
        ),
    }
    if feats["fixed overflow"]:
        # an exact sum outside the word means some update left it (had none, the 16-bit
        # accumulator would equal the exact one): the counter sees it, in both backends
        assert fk.counters["saturations"] > 0
    if fk.counters["saturations"]:
        STATS["saturations counted"] += 1
    STATS["examples"] += 1
    for name, hit in feats.items():
        if hit:
            STATS[name] += 1
            event(name)


@pytest.mark.filterwarnings("ignore::eiesim.sim.result.FixedPointSaturationWarning")  # counted instead
def test_kernel_reference_and_oracle_agree():
    STATS.clear()
    _check_backends_agree()
    n = STATS["examples"]
    assert n >= N_EXAMPLES
    # The strategy must really reach the interesting corners, not just in principle.
    assert STATS["layer with fillers"] >= 0.20 * n, STATS
    assert STATS["fillers"] >= 0.15 * n, STATS
    assert STATS["stalls"] >= 0.10 * n, STATS
    for name in ("bypasses", "empty PE", "bias", "negative input", "all-zero input", "fixed overflow"):
        assert STATS[name] >= 0.02 * n, (name, STATS)


@pytest.mark.parametrize("code_bits", [1, 2, 3, 4, 5, 8])
def test_long_columns_take_the_product_table_with_the_same_bits(code_bits):
    """Columns of at least 2 * 2**code_bits MACs form their 2**code_bits products once (kernel,
    float32); shorter ones multiply at each MAC. Both agree with the reference to the bit, for every
    code width (4 is the compiled constant-shift case), on columns from empty to 600 MACs."""
    rng = np.random.default_rng(code_bits)
    n_out, n_in = 600, 24
    density = np.r_[0.0, np.geomspace(0.002, 1.0, n_in - 1)]  # columns of 0, ~1, ..., 600 MACs
    codes = rng.integers(1, 1 << code_bits, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    cb = np.r_[0.0, rng.uniform(-3, 3, (1 << code_bits) - 1)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, 8, code_bits=code_bits, index_bits=4)
    cfg = EIEConfig(n_pe=8, fifo_depth=4, code_bits=code_bits, index_bits=4, spmat_line_bits=8 * (code_bits + 4))
    per_col = np.count_nonzero(codes, axis=0)
    assert per_col.min() == 0 and per_col.max() >= 2 << code_bits and (per_col < 2 << code_bits).sum() > 1
    x = rng.uniform(-2, 2, n_in).astype(np.float32)
    _same_result(simulate(layer, x, cfg), simulate(layer, x, cfg, backend="reference"))


@pytest.mark.parametrize("n_out, n_pe, depth", [(1, 8, 1), (3, 8, 1), (3, 8, 2), (10, 64, 3), (7, 12, 5), (12, 12, 1)])
def test_pes_without_rows_follow_the_reference(n_out, n_pe, depth):
    """PEs ``k >= n_out`` own no row: the kernel gives them a closed form (take at once, busy one cycle
    per broadcast) instead of stepping them. Cycles, per-PE busy and stall (their queues are full while
    the CCU stalls on another PE), counters, outputs and every traced take cycle match the reference."""
    rng = np.random.default_rng(n_out * 100 + n_pe)
    n_in = 40
    codes = rng.integers(1, 16, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.9)
    cb = np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, n_pe, bias_codes=rng.integers(0, 16, n_out))
    x = (rng.uniform(-2, 2, n_in) * (rng.random(n_in) < 0.8)).astype(np.float32)
    cfg = EIEConfig(n_pe=n_pe, fifo_depth=depth)
    rk = simulate(layer, x, cfg, events=True)
    rr = simulate(layer, x, cfg, backend="reference", events=True)
    _same_result(rk, rr)
    # one row per PE: a PE takes each activation the cycle after it arrives, so only a queue of one
    # makes the CCU stall (a cycle per broadcast), and then every queue was full, row-less PEs' too
    assert (rk.counters["ccu_stall_cycles"] > 0) == (depth == 1)
    assert rk.stall[min(n_out, n_pe - 1)] == rk.stall[-1] == (rk.counters["ccu_stall_cycles"] if depth == 1 else 0)
    for f in ("bc_cycle", "bc_ready", "bc_col", "take", "loads"):
        np.testing.assert_array_equal(getattr(rk.events, f), getattr(rr.events, f))
    _same_result(simulate(layer, x, cfg), rr)  # the warm path (run_one) too
