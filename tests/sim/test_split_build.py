"""The per-layer pass split over two threads (``build_tables(submit=...)``): the same tables, bit
for bit, and the same first broken rule at the same entry, as on one thread."""

import gc
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import eiesim._kernels
from eiesim.config import EIEConfig
from eiesim.errors import EieConfigError
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate

from ._tables import assert_same_tables as _assert_same

eie_sim = pytest.importorskip("eiesim._kernels.eie_sim")

POOL = ThreadPoolExecutor(max_workers=1)


class _Recorder:
    """A ``submit`` that counts its jobs and runs them on the pool."""

    def __init__(self):
        self.jobs = 0

    def __call__(self, fn):
        self.jobs += 1
        return POOL.submit(fn)


def _build(layer, v=None, z=None, submit=None):
    return eie_sim.build_tables(ptr=layer.ptr, v=layer.v if v is None else v, z=layer.z if z is None else z,
                                n_out=layer.n_out, code_bits=layer.code_bits, index_bits=layer.index_bits,
                                submit=submit)


def _layer(seed, n_out, n_in, n_pe, density, code_bits=4, index_bits=4):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 1 << code_bits, (n_out, n_in)), 0)
    cb = np.r_[0.0, np.linspace(0.1, 1.5, (1 << code_bits) - 1)].astype(np.float32)
    return CompressedLayer.from_codes(codes, cb, n_pe, code_bits=code_bits, index_bits=index_bits)


@pytest.fixture
def split_everything(monkeypatch):
    monkeypatch.setattr(eie_sim, "SPLIT_MIN_ENTRIES", 0)


@given(seed=st.integers(0, 2**32 - 1), n_pe=st.integers(1, 9), n_in=st.integers(128, 400),
       n_out=st.integers(1, 200), density=st.sampled_from([0.0, 0.03, 0.3, 1.0]),
       code_bits=st.sampled_from([2, 4, 8]), index_bits=st.integers(1, 8), simd=st.booleans())
@settings(max_examples=60, deadline=None)
def test_split_build_equals_one_thread(seed, n_pe, n_in, n_out, density, code_bits, index_bits, simd):
    layer = _layer(seed, n_out, n_in, n_pe, density, code_bits, index_bits)
    before = eie_sim.SPLIT_MIN_ENTRIES, eie_sim.simd_decode()
    eie_sim.SPLIT_MIN_ENTRIES = 0
    try:
        if before[1]:
            eie_sim.simd_decode(simd)
        rec = _Recorder()
        split, one = _build(layer, submit=rec), _build(layer)
    finally:
        eie_sim.SPLIT_MIN_ENTRIES = before[0]
        eie_sim.simd_decode(before[1])
    assert one[1] == 0
    # a split needs entries and two blocks of 64 columns (n_in + 1 with the bias column is >= 129)
    assert rec.jobs == (1 if layer.v.size else 0)
    _assert_same(split, one)


@pytest.mark.parametrize("where", ["first", "second", "both"])
@pytest.mark.parametrize("rule", ["trailing_filler", "row_range"])
def test_split_build_names_the_first_broken_slice(split_everything, where, rule):
    layer = _layer(5, 48, 300, 4, 0.3, index_bits=3)
    v, z = layer.v.copy(), layer.z.copy()
    base = int(layer.ptr[:1, -1].sum())  # PE 1's entries
    breaks = {"first": [20], "second": [250], "both": [250, 20]}[where]
    for j in breaks:  # PE 1 owns 12 rows: its slice of column j's last row moves to 12 or beyond
        while True:
            e0, e1 = base + int(layer.ptr[1, j]), base + int(layer.ptr[1, j + 1])
            rows = np.cumsum(layer.z[e0:e1].astype(np.int64) + 1) - 1
            if e1 > e0 and rows[-1] - layer.z[e1 - 1] + 7 >= 12:
                break
            j += 1
        if rule == "trailing_filler":
            v[e1 - 1], z[e1 - 1] = 0, 7
        else:
            z[e1 - 1] = 7
    rec = _Recorder()
    split, one = _build(layer, v, z, submit=rec), _build(layer, v, z)
    assert rec.jobs == 1
    assert one[0] is None and one[1] == (5 if rule == "trailing_filler" else 6)
    _assert_same(split, one)


def test_a_pool_that_refuses_the_job_builds_on_one_thread(split_everything):
    layer = _layer(2, 100, 200, 8, 0.2)

    def closed(fn):
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    _assert_same(_build(layer, submit=closed), _build(layer))


def test_split_threshold_and_the_threads_argument(monkeypatch):
    layer = _layer(3, 64, 300, 4, 0.2)
    rec = _Recorder()
    assert layer.v.size < eie_sim.SPLIT_MIN_ENTRIES
    _build(layer, submit=rec)
    assert rec.jobs == 0  # below the threshold the submit is not used
    monkeypatch.setattr(eie_sim, "SPLIT_MIN_ENTRIES", layer.v.size)
    _build(layer, submit=rec)
    assert rec.jobs == 1
    # kernel_tables: threads=1 builds on this thread; None splits when two CPUs are usable
    monkeypatch.setattr(eiesim._kernels, "helper_submit", lambda: rec)
    for threads, cpus, want in ((1, 2, 0), (None, 1, 0), (None, 2, 1), (2, 1, 1)):
        monkeypatch.setattr(eiesim._kernels, "usable_cpus", lambda c=cpus: c)
        rec.jobs = 0
        fresh = CompressedLayer(shape=layer.shape, n_pe=4, codebook=layer.codebook, ptr=layer.ptr, v=layer.v,
                                z=layer.z)
        fresh.kernel_tables(threads)
        assert rec.jobs == want, (threads, cpus)
        assert fresh.kernel_tables(1) is fresh.kernel_tables()  # kept on the layer
    rec.jobs = 0
    fresh = CompressedLayer(shape=layer.shape, n_pe=4, codebook=layer.codebook, ptr=layer.ptr, v=layer.v, z=layer.z)
    r = simulate(fresh, np.ones(layer.n_in, np.float32), EIEConfig(n_pe=4), threads=1)
    assert rec.jobs == 0 and r.cycles > 0  # simulate(threads=1): the first call's pass on this thread too
    for bad in (0, 3, True, 2.0, "2"):
        with pytest.raises(EieConfigError, match="threads must be None, 1 or 2"):
            fresh.kernel_tables(bad)


class _Interrupted(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_an_interrupted_wait_leaves_the_other_half_its_buffers(split_everything):
    """The calling thread's wait is interrupted (a signal handler raises) while the other half has
    not started: that half then decodes into buffers its job object keeps alive, and nothing breaks."""
    layer = _layer(9, 300, 700, 8, 0.3)
    gate, inner = threading.Event(), []

    def gated(fn):
        f = POOL.submit(lambda: (gate.wait(10), fn()))
        inner.append(f)
        return f

    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(_Interrupted()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(_Interrupted):
            _build(layer, submit=gated)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    gc.collect()  # the build's own references are gone; the job's are not
    gate.set()
    inner[0].result(timeout=30)
    _assert_same(_build(layer, submit=_Recorder()), _build(layer))


@pytest.mark.parametrize("kw", [{}, {"events": True}, {"backend": "reference"}, {"arith": "fixed16"}])
def test_simulate_threads_1_builds_on_its_own_thread_on_every_path(monkeypatch, kw):
    """simulate(threads=1) passes threads to the per-layer pass on the float32 warm path and on the
    prepare() path (events, fixed16, the reference backend) alike; threads=None splits."""
    layer = _layer(4, 64, 300, 4, 0.2)
    monkeypatch.setattr(eie_sim, "SPLIT_MIN_ENTRIES", 0)
    monkeypatch.setattr(eiesim._kernels, "usable_cpus", lambda: 2)
    rec = _Recorder()
    monkeypatch.setattr(eiesim._kernels, "helper_submit", lambda: rec)
    arith = kw.pop("arith", "float32")
    cfg = EIEConfig(n_pe=4, arith=arith)
    x = np.ones(layer.n_in, np.float32)
    for threads, want in ((1, 0), (None, 1)):
        fresh = CompressedLayer(shape=layer.shape, n_pe=4, codebook=layer.codebook, ptr=layer.ptr, v=layer.v,
                                z=layer.z)
        rec.jobs = 0
        one = simulate(fresh, x, cfg, threads=threads, **kw)
        assert rec.jobs == want, threads
    assert one.cycles == simulate(layer, x, cfg, threads=1, **kw).cycles
