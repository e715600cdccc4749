"""``simulate``'s warm float32 path (one compiled call per input, the layer's checks and tables
kept per layer and config) against the general path (``prepare`` + ``run_batch``) and the reference:
same results, same errors, and a config change is never served a stale plan."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.errors import EieInputError
from eiesim.format.layout import CompressedLayer
from eiesim.sim import engine
from eiesim.sim.engine import simulate
from eiesim.sim.program import layer_plan, prepare

pytest.importorskip("eiesim._kernels.eie_sim")


def _layer(seed=0, n_out=45, n_in=33, n_pe=4, bias=True):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 16, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.25)
    cb = np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32)
    bias_codes = rng.integers(0, 16, n_out) if bias else None
    layer = CompressedLayer.from_codes(codes, cb, n_pe, bias_codes=bias_codes, index_bits=2)
    x = (rng.uniform(-3, 3, n_in) * (rng.random(n_in) < 0.5)).astype(np.float32)
    return layer, x


def _general(layer, x, cfg):
    """The general kernel path, as simulate() took it for every call before the warm path."""
    prog = prepare(layer, x, cfg)
    return engine._run_kernel(prog)


@pytest.mark.parametrize("seed, bias", [(0, True), (1, False), (2, True)])
def test_warm_path_equals_general_path_and_reference(seed, bias):
    layer, x = _layer(seed, bias=bias)
    cfg = EIEConfig(n_pe=4, fifo_depth=2, index_bits=2, spmat_line_bits=18)
    fast = simulate(layer, x, cfg)
    raw = _general(layer, x, cfg)
    ref = simulate(layer, x, cfg, backend="reference")
    assert fast.cycles == raw["cycles"] == ref.cycles
    assert fast.counters == raw["counters"] == ref.counters
    for k in ("busy", "stall"):
        np.testing.assert_array_equal(getattr(fast, k), raw[k])
        np.testing.assert_array_equal(getattr(fast, k), getattr(ref, k))
    np.testing.assert_array_equal(fast.idle, ref.idle)
    np.testing.assert_array_equal(fast.output.view(np.uint32), raw["output"].view(np.uint32))
    np.testing.assert_array_equal(fast.output.view(np.uint32), ref.output.view(np.uint32))
    assert fast.act_nonzeros == ref.act_nonzeros == int(np.count_nonzero(x))
    assert (fast.shape, fast.n_pe, fast.arith, fast.act_saturations) == (ref.shape, ref.n_pe, "float32", 0)
    assert type(fast.cycles) is int and all(type(v) is int for v in fast.counters.values())


def test_warm_path_takes_any_numeric_vector_like_the_general_path():
    layer, x = _layer(3)
    cfg = EIEConfig(n_pe=4, index_bits=2, spmat_line_bits=18)
    want = simulate(layer, x, cfg, backend="reference")
    strided = np.zeros(2 * x.size, np.float32)
    strided[::2] = x
    for a in (x, x.astype(np.float64), list(map(float, x)), strided[::2], x.astype(np.float16)):
        got = simulate(layer, a, cfg)
        want_a = simulate(layer, a, cfg, backend="reference")
        assert got.cycles == want_a.cycles and got.counters == want_a.counters
        np.testing.assert_array_equal(got.output.view(np.uint32), want_a.output.view(np.uint32))
    assert simulate(layer, x, cfg).cycles == want.cycles


@pytest.mark.parametrize("bad, match", [
    (lambda x: np.r_[x[:3], np.float32(np.inf), x[4:]].astype(np.float32), "activation 3 is not finite"),
    (lambda x: np.r_[x[:5], np.nan, x[6:]].astype(np.float32), "activation 5 is not finite"),
    (lambda x: np.concatenate([x[:2].astype(np.float64), [1e300], x[3:]]), "activation 2 = 1e\\+300 does not fit float32"),
    (lambda x: x[:-1], "has 32 values, the layer has 33 inputs"),
    (lambda x: x[None, :], "must be a 1-D vector"),
    (lambda x: x.astype(str), "must be numeric"),
])
def test_warm_path_refuses_what_the_general_path_refuses(bad, match):
    layer, x = _layer(4)
    cfg = EIEConfig(n_pe=4, index_bits=2, spmat_line_bits=18)
    simulate(layer, x, cfg)  # warm: the plan is kept
    for backend in ("kernel", "reference"):
        with pytest.raises(EieInputError, match=match):
            simulate(layer, bad(x), cfg, backend=backend)


def test_plan_follows_the_config():
    """Alternating configs on one layer object: each call is simulated with its own config."""
    layer, x = _layer(5)
    cfgs = [EIEConfig(n_pe=4, fifo_depth=d, index_bits=2, spmat_line_bits=18 * m) for d, m in ((1, 1), (6, 4))]
    want = [simulate(layer, x, c, backend="reference") for c in cfgs]
    assert want[0].cycles != want[1].cycles
    for _ in range(2):
        for c, w in zip(cfgs, want):
            r = simulate(layer, x, c)
            assert (r.cycles, r.counters) == (w.cycles, w.counters)
            assert layer_plan(layer, c) is layer_plan(layer, c)
    with pytest.raises(EieInputError, match="laid out for 4 PEs"):
        simulate(layer, x, EIEConfig(n_pe=8, index_bits=2, spmat_line_bits=18))
    with pytest.raises(EieInputError, match="laid out for 4 PEs"):  # not cached: refused again
        simulate(layer, x, EIEConfig(n_pe=8, index_bits=2, spmat_line_bits=18))
