"""``simulate(threads=2)``: the kernel's timing pass on a helper thread beside the arithmetic pass.

The two passes write nothing in common, so every result must be that of ``threads=1`` (and of the
reference); the default picks 2 only for calls of at least ``OVERLAP_MIN_STEPS`` PE steps and
``OVERLAP_MIN_MACS`` MACs on a process that may use two CPUs;
a forked child, whose copy of the helper pool has no thread, must not hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eiesim._kernels
from eiesim.config import EIEConfig
from eiesim.errors import EieConfigError
from eiesim.format.eiedump import read_dump
from eiesim.format.layout import CompressedLayer
from eiesim.sim import engine
from eiesim.sim.engine import simulate
from eiesim.sim.program import layer_plan

from ..conftest import TRACES

eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")


def _same(a, b):
    assert a.cycles == b.cycles and a.counters == b.counters and a.act_nonzeros == b.act_nonzeros
    for k in ("busy", "stall", "idle"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    np.testing.assert_array_equal(a.output.view(np.uint32), b.output.view(np.uint32))


def _layer(seed, n_out, n_in, n_pe, density=0.3):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 16, size=(n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    cb = np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32)
    layer = CompressedLayer.from_codes(codes, cb, n_pe, bias_codes=rng.integers(0, 16, n_out))
    x = (rng.uniform(-3, 3, n_in) * (rng.random(n_in) < 0.5)).astype(np.float32)
    return layer, x


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n_out=st.integers(1, 70), n_in=st.integers(1, 70),
       n_pe=st.sampled_from([1, 2, 3, 4, 8]), depth=st.integers(1, 9), line_bits=st.sampled_from([8, 24, 64]))
def test_overlap_gives_the_serial_results(seed, n_out, n_in, n_pe, depth, line_bits):
    layer, x = _layer(seed, n_out, n_in, n_pe)
    cfg = EIEConfig(n_pe=n_pe, fifo_depth=depth, spmat_line_bits=line_bits)
    one = simulate(layer, x, cfg, threads=1)
    _same(simulate(layer, x, cfg, threads=2), one)
    _same(simulate(layer, x, cfg, backend="reference"), one)


def test_overlap_on_the_real_fc8(fc8_dir):
    dump = read_dump(fc8_dir)
    cfg = EIEConfig(n_pe=64, fifo_depth=7)
    one = simulate(dump.layer, dump.activations, cfg, threads=1)
    assert one.cycles == 7926  # the authors' C++ simulator on this dump (tests/sim/test_fc8.py)
    for _ in range(3):
        _same(simulate(dump.layer, dump.activations, cfg, threads=2), one)


@pytest.mark.parametrize("bad", [0, 3, -1, 2.0, True, np.True_, "2", np.int64(3)])
def test_threads_must_be_none_1_or_2(bad):
    layer, x = _layer(0, 8, 8, 2)
    with pytest.raises(EieConfigError, match="threads must be None, 1 or 2"):
        simulate(layer, x, threads=bad)


def test_threads_may_be_a_numpy_integer():
    """``threads=np.int64(2)`` was refused (fresh-user finding 7)."""
    layer, x = _layer(0, 30, 30, 4)
    one = simulate(layer, x, threads=1)
    for t in (np.int64(2), np.int32(1), np.uint8(2)):
        _same(simulate(layer, x, threads=t), one)
        assert layer.kernel_tables(threads=t) is not None


def _exact_layer(n_out, n_in, n_macs):
    """A 64-PE layer of exactly ``n_macs`` MACs (the bias column's ``n_out`` included)."""
    codes = np.zeros(n_out * n_in, dtype=np.int64)
    codes[:n_macs - n_out] = np.arange(n_macs - n_out) % 15 + 1
    layer = CompressedLayer.from_codes(codes.reshape(n_out, n_in), np.r_[0.0, np.arange(1, 16)].astype(np.float32),
                                       64, bias_codes=np.ones(n_out, dtype=np.int64))
    assert layer.kernel_tables().macs.size == n_macs
    return layer


def _input(n_in, n_nonzero):
    x = np.zeros(n_in, dtype=np.float32)
    x[:n_nonzero] = 0.5
    return x


def test_default_overlaps_only_calls_with_enough_steps_and_macs(monkeypatch):
    """``threads=None`` overlaps a call of at least ``OVERLAP_MIN_STEPS`` PE steps (broadcasts, the
    bias column's included, x PEs that own rows) and ``OVERLAP_MIN_MACS`` MACs (broadcasts x mean
    MACs per column), on two usable CPUs; the real FC8 (112,640 steps) is overlapped."""
    assert (engine.OVERLAP_MIN_STEPS, engine.OVERLAP_MIN_MACS) == (1 << 16, 1 << 16)
    calls = []

    class _Done:
        def result(self):
            return None

    def counting_submit():
        def submit(job):
            calls.append(job)
            job()
            return _Done()
        return submit

    monkeypatch.setattr(engine, "_helper_submit", counting_submit)
    # steps decide: 128 rows on 64 PEs, 2,048 columns of 128 MACs (the MAC bound needs 512 broadcasts)
    dense = _exact_layer(128, 2047, 128 * 2048)
    # MACs decide: 64 rows, 4,096 columns (262,144 steps at full broadcast), MACs one short / exactly
    short, exact = _exact_layer(64, 4095, (1 << 16) - 1), _exact_layer(64, 4095, 1 << 16)
    cfg = EIEConfig(n_pe=64)
    cases = [(dense, _input(2047, 1022), False),  # 1,023 broadcasts x 64 PEs: 65,472 steps
             (dense, _input(2047, 1023), True),   # 65,536 steps
             (short, _input(4095, 4095), False),
             (exact, _input(4095, 4095), True),
             (exact, _input(4095, 4094), False)]  # 4,095 broadcasts x 16 MACs per column
    for cpus in (1, 2, 16):
        monkeypatch.setattr(engine, "_usable_cpus", lambda c=cpus: c)
        for layer, x, want in cases:
            calls.clear()
            r = simulate(layer, x, cfg)
            assert len(calls) == (want and cpus > 1), (cpus, layer.n_out, int(np.count_nonzero(x)))
            _same(r, simulate(layer, x, cfg, threads=1))
    small, xs = _layer(1, 30, 30, 4)
    calls.clear()
    simulate(small, xs, EIEConfig(n_pe=4), threads=2)  # asked for: overlapped whatever the size
    assert len(calls) == 1


def test_default_overlaps_the_real_fc8(fc8_dir, monkeypatch):
    dump = read_dump(fc8_dir)
    calls = []
    real = engine._helper_submit

    def spying_submit():
        submit = real()

        def spy(job):
            calls.append(job)
            return submit(job)
        return spy

    monkeypatch.setattr(engine, "_helper_submit", spying_submit)
    monkeypatch.setattr(engine, "_usable_cpus", lambda: 2)
    cfg = EIEConfig(n_pe=64, fifo_depth=7)
    r = simulate(dump.layer, dump.activations, cfg)
    assert r.cycles == 7926 and len(calls) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_helper():
    """The parent's helper pool has no thread in a forked child: without the at-fork reset the
    child's first overlapped call would wait forever on a job nobody runs."""
    layer, x = _layer(3, 40, 40, 4)
    cfg = EIEConfig(n_pe=4)
    want = simulate(layer, x, cfg, threads=2)  # the parent's pool now exists
    assert eiesim._kernels._HELPER
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        ok = simulate(layer, x, cfg, threads=2).cycles == want.cycles
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("child hung")))
    signal.alarm(30)
    try:
        got = os.read(r, 1)
        os.waitpid(pid, 0)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        signal.alarm(0)
        os.close(r)
    assert got == b"1"


def test_a_shut_down_helper_pool_runs_both_passes_here(monkeypatch):
    """At interpreter exit (an ``atexit`` handler) the helper pool refuses new jobs with
    RuntimeError; ``simulate(threads=2)`` must then run the timing pass on the calling
    thread, as the per-layer pass already did (it raised before)."""
    layer, x = _layer(5, 50, 60, 4)
    cfg = EIEConfig(n_pe=4)
    want = simulate(layer, x, cfg, threads=1)
    monkeypatch.setattr(eiesim._kernels, "_HELPER", [])  # a pool of this test's own, then shut down
    assert eiesim._kernels.helper_submit()(lambda: 1).result() == 1
    eiesim._kernels._HELPER[0].shutdown()
    assert eiesim._kernels.helper_submit()(lambda: 1) is None  # refused: the caller runs the job
    _same(simulate(layer, x, cfg, threads=2), want)


def test_run_one_runs_the_timing_pass_here_when_submit_refuses():
    """``run_one``'s ``submit`` contract is ``build_tables``': a RuntimeError (a pool shut down)
    or None means this thread runs the job."""
    layer, x = _layer(6, 40, 50, 4)
    cfg = EIEConfig(n_pe=4)
    want = simulate(layer, x, cfg, threads=1)
    plan = layer_plan(layer, cfg)

    def refuse(job):
        raise RuntimeError("cannot schedule new futures after shutdown")

    for submit in (refuse, lambda job: None):
        got = eie_sim.run_one(plan.tables, x, plan.codebook, plan.n_in, plan.has_bias, cfg.fifo_depth,
                              cfg.entries_per_line, submit)
        assert got[0] + engine.PIPELINE_DRAIN == want.cycles
        np.testing.assert_array_equal(got[1].view(np.uint32), want.output.view(np.uint32))
        np.testing.assert_array_equal(got[2], want.busy)
        np.testing.assert_array_equal(got[3], want.stall)


@pytest.mark.parametrize("pool_made", [True, False])
def test_simulate_from_an_atexit_handler(tmp_path, pool_made):
    """The user's case behind the test above, in a real interpreter exit (both raised before): the
    helper pool made earlier and shut down, or never made (``concurrent.futures`` can no longer be
    imported); and a threaded network run of several chunks."""
    script = tmp_path / "late.py"
    script.write_text(
        "import atexit, sys\n"
        "import numpy as np\n"
        "from eiesim.config import EIEConfig\n"
        "from eiesim.format.container import load_network\n"
        "from eiesim.format.layout import CompressedLayer\n"
        "from eiesim.sim.engine import simulate\n"
        "from eiesim.sim.network import simulate_network\n"
        "rng = np.random.default_rng(0)\n"
        "codes = rng.integers(1, 16, size=(64, 40)) * (rng.random((64, 40)) < 0.3)\n"
        "layer = CompressedLayer.from_codes(codes, np.r_[0.0, rng.uniform(-2, 2, 15)].astype(np.float32), 4)\n"
        "x = rng.uniform(-1, 1, 40).astype(np.float32)\n"
        f"want = simulate(layer, x, EIEConfig(n_pe=4), threads={2 if pool_made else 1}).cycles\n"
        "net = load_network(sys.argv[1])\n"
        "digits = np.tile(np.load(sys.argv[2])['inputs'][:4], (600, 1))  # 2,400 inputs: 3 chunks\n"
        "print('pool module', 'concurrent.futures' in sys.modules)\n"
        "def late():\n"
        "    print('late', simulate(layer, x, EIEConfig(n_pe=4), threads=2).cycles == want)\n"
        "    print('network', simulate_network(net, digits, workers=2).outputs.shape)\n"
        "atexit.register(late)\n")
    out = subprocess.run([sys.executable, str(script), str(TRACES / "lenet300100.eie"),
                          str(TRACES / "mnist_test100.npz")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split("\n") == [
        f"pool module {pool_made}", "late True", "network (2400, 10)", ""], out.stderr[-2000:]
