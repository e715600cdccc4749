#!/usr/bin/env python
"""Benchmark: every row of issue 11's table as a ratio, both sides interleaved call by call.

Each in-process row times side A and side B alternately in one process
(A B A B ..., ``--pairs`` pairs, default 21, after one warm-up call of each,
garbage collector off) and reports the median over the pairs of the per-pair
ratio A / B, with the median times of each side beside it. Interleaving makes
both sides see the same machine load: timing the sides in separate blocks let
FC8's ratio swing between 2.6 and 4.3 on the same machine.

Whole-process rows run the two commands alternately as child processes
(``--proc-pairs`` pairs, default 21) and report the median ratio of their wall
times. Each timed row also gives the ratios' quartiles (``q1-q3``: the middle
half of the pairs): a row whose target lies between them is at its line, whatever
its median says. The memory row runs a child that simulates a tiny layer (so the one-time
imports of a first call are not counted), loads a VGG-6-sized layer, resets its
peak-RSS mark (``/proc/self/clear_refs``), simulates once, and reports
``(peak RSS - RSS before the layer was loaded) / (bytes of the layer's
encoded arrays v, z, ptr, codebook + bytes of the input)``.

Rows (targets from issue 11):

* ``fc8``, ``fc6``, ``vgg6``: warm ``eiesim.simulate`` / scipy CSC ``W @ a + b``
  (same matrix, int32 indices, same input): the real AlexNet FC8 dump
  (64 PEs, FIFO 7), a synthetic fc6-size (9216 -> 4096, 9 % weights, 35 %
  activations) and VGG-6-size (25088 -> 4096, 4 % / 35 %) layer (seed 0).
  ``simulate`` takes its default ``threads``: on a machine with two usable CPUs all three
  (calls of at least 2**16 PE steps and 2**16 MACs, ``eiesim.sim.engine.OVERLAP_MIN_STEPS``)
  run the timing pass on a helper thread beside the arithmetic pass (scipy's matvec has one
  thread); ``fc8-1t``, ``vgg6-1t``: the same with ``threads=1``.
* ``cold``: first call on a fresh copy of the FC8 layer (its per-layer pass
  included) / a warm call on the same copy; ``cold-vgg6`` the same on VGG-6. Each
  also gives its memory floor (:func:`memory_floor`): 1 + (reading the layer's stored
  arrays once and writing its tables' bytes once) / a warm call, interleaved the same way.
* ``rss``: the memory ratio above, VGG-6-size layer.
* ``mnist``: ``eiesim simulate --input mnist10k.npz`` on the embedded
  LeNet-300-100 (the 10,000 MNIST test digits) / a NumPy dense forward of the
  same network over the same digits, both whole processes.
* ``cli-fc8``: ``eiesim simulate --eie-dump FC8 --fifo-depth 7`` / ``python -c
  "import numpy"``, whole processes.
* ``reference``: pure-Python reference / kernel, 512 x 512, 10 % / 35 %
  (the target is a ratio >= 300).
* ``encode``: ``CompressedLayer.from_weights`` (dense -> per-PE CSC, 64 PEs) /
  ``scipy.sparse.csc_matrix(dense)``, VGG-6-size.
* ``huffman``, ``container``: the Cython Huffman decoder / its NumPy twin on
  12.8 M relative-index-like symbols, and loading a Huffman-only VGG-6 ``.eie``
  with kernel vs NumPy decoding (no target; ``--pairs-slow`` pairs, default 5).
* ``trace-off``: the kernel's ``run_batch`` on FC8 with tracing off / the same call on
  an ``eie_sim`` built from the kernel before the trace hook (``--baseline-kernel DIR``;
  e.g. ``git show <commit>:kernels/eie_sim.pyx`` compiled with the same flags); the
  hook costs one NULL test per broadcast and per group (issue 14: "zero cost when off").
* ``trace-on``: ``simulate(events=True)`` / ``simulate()`` on FC8, the cost of recording.

Usage: ``python scripts/bench.py [--rows fc8,vgg6,...] [--pairs P] [--proc-pairs P] [--json OUT] [--markdown]``;
``python scripts/bench.py --render OUT.json`` prints the README's table of an earlier run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FC8 = ROOT.parent / "shared" / "data" / "alexnet_fc8_eie"
if os.environ.get("EIESIM_SHARED_DATA"):
    FC8 = Path(os.environ["EIESIM_SHARED_DATA"]) / "alexnet_fc8_eie"

from eiesim import EIEConfig  # noqa: E402
from eiesim._io import json_bytes, write_atomic  # noqa: E402
from eiesim.commands._args import check_output_args  # noqa: E402
from eiesim.format.layout import CompressedLayer  # noqa: E402
from eiesim.sim.engine import simulate  # noqa: E402

ALL_ROWS = ("fc8", "fc6", "vgg6", "fc8-1t", "vgg6-1t", "cold", "cold-vgg6", "rss", "mnist", "cli-fc8", "reference",
            "encode", "huffman", "container", "trace-off", "trace-on", "fuzz")


# ----------------------------------------------------------------------------- timing helpers
@contextlib.contextmanager
def gc_off():
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def interleaved(fa, fb, pairs: int, setup=None) -> dict:
    """Time ``fa`` and ``fb`` alternately (A B A B ...); median per-pair ratio A/B.

    ``setup`` (optional) is called before each pair, untimed, and its result is
    passed to both functions (used for the cold-call row: a fresh layer per pair).
    """
    ta, tb, ratios = [], [], []
    with gc_off():
        arg = setup() if setup else None
        fa(arg) if setup else fa()  # warm-up
        fb(arg) if setup else fb()
        for _ in range(pairs):
            arg = setup() if setup else None
            t0 = time.perf_counter()
            fa(arg) if setup else fa()
            t1 = time.perf_counter()
            fb(arg) if setup else fb()
            t2 = time.perf_counter()
            ta.append(t1 - t0)
            tb.append(t2 - t1)
            ratios.append((t1 - t0) / (t2 - t1))
    return _summary(ta, tb, ratios)


def _summary(ta, tb, ratios) -> dict:
    """Medians of the two sides' times (ms) and of the per-pair ratios, with the ratios' quartiles
    (``q1``, ``q3``: the middle half of the pairs, to tell a row at its line from one clear of it)."""
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0], None, ratios[0])
    return {"a_ms": 1e3 * statistics.median(ta), "b_ms": 1e3 * statistics.median(tb),
            "ratio": statistics.median(ratios), "q1": q1, "q3": q3, "pairs": len(ratios)}


def process_pairs(cmd_a, cmd_b, pairs: int, env=None) -> dict:
    """Run two commands alternately as child processes; median ratio of their wall times.

    Both children read byte-compiled modules, as an installed package does (pip compiles them at
    install): a private ``PYTHONPYCACHEPREFIX`` (filled by the warm-up run) and no
    ``PYTHONDONTWRITEBYTECODE``. With that variable set (as in some shells and CI images) every
    ``eiesim`` process would compile its ~45 modules from source again while numpy's come
    precompiled from site-packages, and the row would time the compiler.
    """
    ta, tb, ratios = [], [], []
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cache = tempfile.TemporaryDirectory(prefix="eiesim-bench-pyc-")
    env["PYTHONPYCACHEPREFIX"] = cache.name

    def one(cmd):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{cmd!r} failed ({r.returncode}): {r.stderr.decode()[-400:]}")
        return dt

    with cache:
        one(cmd_a), one(cmd_b)  # warm the page cache and the bytecode cache
        for _ in range(pairs):
            a, b = one(cmd_a), one(cmd_b)
            ta.append(a)
            tb.append(b)
            ratios.append(a / b)
    return _summary(ta, tb, ratios)


# ----------------------------------------------------------------------------- workloads
def synthetic_layer(n_out, n_in, w_density, a_density, n_pe, seed):
    """Uniform random layer (codes 1..15, 16-entry codebook, bias column) and input."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    nnz = int(round(w_density * n_out * n_in))
    flat = np.unique(rng.integers(0, n_out * n_in, size=int(nnz * 1.03)))
    flat = rng.permutation(flat)[:nnz]
    codes = rng.integers(1, 16, size=flat.size)
    mat = sp.coo_array((codes, (flat // n_in, flat % n_in)), shape=(n_out, n_in))
    # no centroid at 0.0: a code decoding to 0 is refused (ENTRY-DECODES-TO-ZERO)
    codebook = np.concatenate([[0.0], np.linspace(-0.1, -0.01, 7), np.linspace(0.01, 0.1, 8)]).astype(np.float32)
    bias = rng.integers(0, 16, size=n_out)
    layer = CompressedLayer.from_codes(mat, codebook, n_pe, bias_codes=bias, name=f"{n_out}x{n_in}")
    a = np.where(rng.random(n_in) < a_density, rng.random(n_in), 0.0).astype(np.float32)
    return layer, a


_CACHE: dict = {}


def workload(name):
    """(layer, activations, config) of a named workload, built once."""
    if name not in _CACHE:
        cfg = EIEConfig(n_pe=64, fifo_depth=7)
        if name == "fc8":
            from eiesim.format.eiedump import read_dump

            dump = read_dump(FC8)
            _CACHE[name] = (dump.layer, dump.activations, cfg)
        elif name == "fc6":
            _CACHE[name] = synthetic_layer(4096, 9216, 0.09, 0.35, 64, 0) + (cfg,)
        elif name == "vgg6":
            _CACHE[name] = synthetic_layer(4096, 25088, 0.04, 0.35, 64, 0) + (cfg,)
        elif name == "small":
            _CACHE[name] = synthetic_layer(512, 512, 0.10, 0.35, 64, 1) + (cfg,)
    return _CACHE[name]


def fresh_copy(layer):
    """The same layer as a new object (no per-layer cache hit)."""
    return CompressedLayer(shape=layer.shape, n_pe=layer.n_pe, codebook=layer.codebook, ptr=layer.ptr,
                           v=layer.v, z=layer.z, has_bias=layer.has_bias, code_bits=layer.code_bits,
                           index_bits=layer.index_bits, name=layer.name)


def vs_scipy(name, pairs, threads=None):
    layer, a, cfg = workload(name)
    W = layer.to_scipy("csc")
    W.indices = W.indices.astype(np.int32)
    W.indptr = W.indptr.astype(np.int32)
    b = layer.bias_values()
    if b is None:
        b = np.zeros(layer.n_out, dtype=np.float32)
    r = interleaved(lambda: simulate(layer, a, cfg, threads=threads), lambda: W @ a + b, pairs)
    r["cycles"] = simulate(layer, a, cfg).cycles
    r["detail"] = f"{layer.shape[0]}x{layer.shape[1]}, nnz {W.nnz:,}, {r['cycles']:,} cycles"
    return r


def memory_floor(layer, table_bytes: int) -> None:
    """The least memory traffic of a first call on ``layer``: every stored byte read once (``max``
    of ``ptr``, ``v`` and ``z``, NumPy's fastest reads) and ``table_bytes`` written once into a new
    buffer (the tables' size, allocated as the tables are)."""
    for arr in (layer.ptr, layer.v, layer.z):
        arr.max()
    np.ones(table_bytes, dtype=np.uint8)


def cold(name, pairs):
    """The cold row: a first call on a fresh copy / a warm call on it, and the row's memory floor.

    ``floor`` is 1 + the median over a second interleaved run of :func:`memory_floor` / the warm
    call: the ratio a first call would reach if checking and tabulating the layer cost no more than
    reading its stored arrays and writing its tables once, on this machine, in this run.
    """
    layer, a, cfg = workload(name)
    r = interleaved(lambda L: simulate(L, a, cfg), lambda L: simulate(L, a, cfg), pairs,
                    setup=lambda: fresh_copy(layer))
    table_bytes = layer.kernel_tables().nbytes  # ``layer`` itself is warm from here on
    # the fresh copies share ``layer``'s arrays, so the floor reads those: no copy per pair needed
    f = interleaved(lambda: memory_floor(layer, table_bytes), lambda: simulate(layer, a, cfg), pairs)
    stored = sum(arr.nbytes for arr in (layer.ptr, layer.v, layer.z))
    r["floor"] = 1 + f["ratio"]
    r["detail"] = (f"{layer.shape[0]}x{layer.shape[1]}, fresh layer object per pair; memory floor "
                   f"{_num(r['floor'])} (read {stored / 1e6:.1f} MB, write {table_bytes / 1e6:.1f} MB: "
                   f"{_num(f['a_ms'])} ms)")
    return r


_RSS_CHILD = r"""
import json, sys, numpy as np
from eiesim import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate

def rss(field):
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
# the one-time imports a first simulate triggers (the kernel module; concurrent.futures, ~0.8 MiB, for
# the helper thread of a large layer) are the process's, not the layer's: done before the baseline
warm = CompressedLayer.from_codes(np.eye(8, dtype=np.int64), np.r_[0.0, np.ones(15)].astype(np.float32), 64)
simulate(warm, np.ones(8, np.float32), EIEConfig(n_pe=64), threads=2)
rss0 = rss('VmRSS')
with np.load(sys.argv[1]) as f:
    d = {k: f[k] for k in f.files}
layer = CompressedLayer(shape=tuple(d['shape']), n_pe=int(d['n_pe']), codebook=d['codebook'], ptr=d['ptr'],
                        v=d['v'], z=d['z'], has_bias=bool(d['has_bias']))
a = d['a']
del d
enc = layer.v.nbytes + layer.z.nbytes + layer.ptr.nbytes + layer.codebook.nbytes
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')  # reset the peak-RSS mark (VmHWM) to the current RSS
res = simulate(layer, a, EIEConfig(n_pe=64, fifo_depth=7))
peak = rss('VmHWM')
print(json.dumps({'rss0': rss0, 'peak': peak, 'encoded': enc, 'input': a.nbytes, 'cycles': res.cycles}))
"""


def rss_row(_pairs):
    layer, a, _ = workload("vgg6")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vgg6.npz")
        np.savez(path, shape=np.array(layer.shape), n_pe=layer.n_pe, codebook=layer.codebook, ptr=layer.ptr,
                 v=layer.v, z=layer.z, has_bias=layer.has_bias, a=a)
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, path], check=True, capture_output=True)
    m = json.loads(out.stdout)
    denom = m["encoded"] + m["input"]
    extra = m["peak"] - m["rss0"]
    return {"a_ms": None, "b_ms": None, "ratio": extra / denom, "pairs": 1, "a_mib": extra / 2**20,
            "b_mib": denom / 2**20,
            "detail": f"peak - before load {extra / 2**20:.1f} MiB / encoded + input {denom / 2**20:.1f} MiB"}


_DENSE_CHILD = r"""
import sys, numpy as np
with np.load(sys.argv[1]) as f:
    n = int(f['n_layers'])
    Ws = [f[f'W{k}'] for k in range(n)]
    bs = [f[f'b{k}'] for k in range(n)]
with np.load(sys.argv[2]) as f:
    x = f['inputs']
for k in range(n):
    x = x @ Ws[k].T + bs[k]
    if k < n - 1:
        x = np.maximum(x, np.float32(0))
print(int(np.argmax(x, axis=1).sum()))
"""


def eiesim_cmd(*args):
    # not `-m eiesim`: from the checkout, cwd first on sys.path would shadow a non-editable install's kernels
    return [sys.executable, "-c", "import sys; del sys.path[0]; from eiesim.cli import main; sys.exit(main(sys.argv[1:]))",
            *args]


def mnist_row(pairs):
    from eiesim.commands.simulate import DEFAULT_NETWORK, _trace_path
    from eiesim.format.container import load_network
    from eiesim.workloads.mnist import load_mnist

    net = load_network(_trace_path(DEFAULT_NETWORK))
    data = load_mnist()
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "mnist10k.npz")
        np.savez(inp, inputs=data["x_test"], labels=data["y_test"])
        dense = os.path.join(tmp, "dense.npz")
        arrs = {"n_layers": len(net.layers)}
        for k, L in enumerate(net.layers):
            arrs[f"W{k}"] = L.to_dense().astype(np.float32)
            b = L.bias_values()
            arrs[f"b{k}"] = np.zeros(L.n_out, np.float32) if b is None else b.astype(np.float32)
        np.savez(dense, **arrs)
        r = process_pairs(eiesim_cmd("simulate", "--input", inp),
                          [sys.executable, "-c", _DENSE_CHILD, dense, inp], pairs)
    r["detail"] = f"{data['x_test'].shape[0]:,} digits, {len(net.layers)} layers"
    return r


def cli_row(pairs):
    r = process_pairs(eiesim_cmd("simulate", "--eie-dump", str(FC8), "--fifo-depth", "7"),
                      [sys.executable, "-c", "import numpy"], pairs)
    r["detail"] = "whole processes"
    return r


def reference_row(pairs):
    layer, a, cfg = workload("small")
    r = interleaved(lambda: simulate(layer, a, cfg, backend="reference"), lambda: simulate(layer, a, cfg), pairs)
    r["detail"] = f"512x512, {simulate(layer, a, cfg).cycles} cycles"
    return r


def encode_row(pairs):
    import scipy.sparse as sp

    layer, _, _ = workload("vgg6")
    dense = layer.to_dense().astype(np.float32)[:, : layer.n_in]
    cb = layer.codebook
    r = interleaved(lambda: CompressedLayer.from_weights(dense, cb, 64), lambda: sp.csc_matrix(dense), pairs)
    r["detail"] = f"{dense.shape[0]}x{dense.shape[1]} float32"
    return r


def huffman_row(pairs):
    from eiesim.format import huffman

    d = 0.04
    p = d * (1 - d) ** np.arange(16)
    p[15] = 1.0 - p[:15].sum()
    x = np.random.default_rng(0).choice(16, size=12_800_000, p=p).astype(np.uint8)
    s = huffman.encode(x, 16)
    assert np.array_equal(huffman.decode(s, backend="kernel"), x)
    r = interleaved(lambda: huffman.decode(s, backend="kernel"), lambda: huffman.decode(s, backend="numpy"), pairs)
    r["detail"] = f"12.8 M symbols, {s.n_bits / x.size:.2f} bits/symbol"
    return r


@contextlib.contextmanager
def huffman_numpy_only():
    """Make ``huffman.decode``'s default backend the NumPy twin (as when the kernel is not built)."""
    from eiesim.format import huffman

    saved = list(huffman._KERNEL_CACHE)
    huffman._KERNEL_CACHE[:] = [None, "disabled by scripts/bench.py"]
    try:
        yield
    finally:
        huffman._KERNEL_CACHE[:] = saved


def container_row(pairs):
    from eiesim.format.container import load_container, save_network

    layer, _, _ = workload("vgg6")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vgg6-huffman.eie")
        save_network(path, [layer], store_vz=False, huffman=True)

        def numpy_load():
            with huffman_numpy_only():
                load_container(path)

        r = interleaved(lambda: load_container(path), numpy_load, pairs)
    r["detail"] = f"{2 * layer.n_entries:,} symbols"
    return r


def trace_on_row(pairs):
    """simulate(events=True) / simulate(), FC8: the cost of recording the timing events (issue 14)."""
    layer, a, cfg = workload("fc8")
    r = interleaved(lambda: simulate(layer, a, cfg, events=True), lambda: simulate(layer, a, cfg), pairs)
    n = simulate(layer, a, cfg, events=True).events.take.size
    r["detail"] = f"{n:,} (broadcast, PE) take cycles recorded; signals and files not included"
    return r


def _run_batch_call(mod, tables, prog, act):
    """One ``run_batch`` call of kernel module ``mod`` on FC8 (trace off), fresh outputs."""
    from eiesim.sim.engine import _fixed_mode
    from eiesim.sim.result import COUNTER_NAMES

    mod.run_batch(tables, act=act, act_q=np.zeros((0, 0), np.int64), codebook=prog.codebook,
                  codebook_q=prog.codebook_q, fixed=False, fixed_mode=_fixed_mode(prog),
                  has_bias=prog.n_cols > prog.n_in, n_in=prog.n_in, fifo_depth=prog.fifo_depth,
                  entries_per_line=prog.entries_per_line, out_f=np.zeros((1, prog.n_out), np.float32),
                  out_q=np.zeros((0, 0), np.int64), cycles=np.zeros(1, np.int64),
                  busy=np.zeros(prog.n_pe, np.int64), stall=np.zeros(prog.n_pe, np.int64),
                  counters=np.zeros(len(COUNTER_NAMES), np.int64))


def trace_off_row(pairs, baseline_dir):
    """run_batch with tracing off / the same call on a kernel built without the trace hook (FC8)."""
    if not baseline_dir:
        return {"a_ms": None, "b_ms": None, "ratio": float("nan"), "pairs": 0,
                "detail": "skipped: give --baseline-kernel DIR (an eie_sim built from the kernel without the hook)"}
    import importlib.util
    import glob

    from eiesim._kernels import eie_sim as new
    from eiesim.sim.program import prepare

    so = sorted(glob.glob(os.path.join(baseline_dir, "eie_sim*.so")) + glob.glob(os.path.join(baseline_dir, "eie_sim*.pyd")))
    if not so:
        raise SystemExit(f"--baseline-kernel {baseline_dir}: no eie_sim extension module there")
    spec = importlib.util.spec_from_file_location("eie_sim", so[0])
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    layer, a, cfg = workload("fc8")
    prog = prepare(layer, a, cfg)
    t = prog.tables
    # a baseline from before the narrow tables takes uint32 / uint64 MACs only
    macs = t.macs.astype(np.uint32) if t.macs.dtype == np.uint16 else t.macs
    old_t = old.LayerTables.from_arrays(ptr_t=t.ptr_t, first_row=t.first_row, last_row=t.last_row,
                                        col_fillers=t.col_fillers, mac_start=t.mac_start, macs=macs,
                                        n_out=t.n_out, code_bits=t.code_bits)
    act = prog.act[None, :]
    r = interleaved(lambda: _run_batch_call(new, t, prog, act), lambda: _run_batch_call(old, old_t, prog, act),
                    pairs)
    # the noise floor: the same call on both sides (A/A) and the sides swapped (B/A)
    aa = interleaved(lambda: _run_batch_call(new, t, prog, act), lambda: _run_batch_call(new, t, prog, act), pairs)
    ba = interleaved(lambda: _run_batch_call(old, old_t, prog, act), lambda: _run_batch_call(new, t, prog, act),
                     pairs)
    r["detail"] = (f"controls: A/A {aa['ratio']:.3f}, swapped B/A {ba['ratio']:.3f}; "
                   f"baseline {os.path.basename(so[0])} from {baseline_dir}")
    return r


# (key, case, A / B, target, function, which pair count)
def fuzz_row(pairs, n=25):
    """scripts/fuzz.py API inputs: one forked child per input / one child per batch (same inputs).

    Each pair runs the same ``n`` inputs of every reader (a different slice per pair) through
    ``fuzz.run_batch`` with ``isolation="input"`` then ``"batch"``; the time includes building
    the inputs (identical on both sides).  Reports per-input ms and the input/batch ratio.
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    import fuzz

    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as d:
        seeds = fuzz._build_seeds_isolated(Path(d) / "seeds")
        fuzz._worker_init(seeds, str(Path(d) / "seeds"))
        signal.signal(signal.SIGINT, signal.default_int_handler)  # _worker_init ignores Ctrl-C
        k, seen = [0], {"input": [], "batch": []}

        def run(iso):
            idx = list(range(k[0] * n, (k[0] + 1) * n))
            for r in fuzz.READERS:
                _, _, recs = fuzz.run_batch(r, "api", idx, 0, 20.0, 2 << 30, 1 << 30, None, iso)
                seen[iso] += [(r, rec["i"], rec["outcome"]) for rec in recs]

        def fa():
            run("input")

        def fb():
            run("batch")
            k[0] += 1

        r = interleaved(fa, fb, pairs)
    per = n * len(fuzz.READERS)
    same = sum(a == b for a, b in zip(seen["input"], seen["batch"]))
    r["detail"] = (f"{per} inputs per side per pair (all 9 readers): {r['a_ms'] / per:.1f} vs "
                   f"{r['b_ms'] / per:.1f} ms per input; same outcome for {same} of {len(seen['batch'])} inputs")
    return r


TABLE = [
    ("fc8", "warm simulate / scipy CSC W@a+b, real FC8", "<= 0.6", lambda p: vs_scipy("fc8", p.pairs)),
    ("fc6", "same, AlexNet fc6-size (9216->4096, 9 % / 35 %)", "<= 0.6", lambda p: vs_scipy("fc6", p.pairs)),
    ("vgg6", "same, VGG-6-size (25088->4096, 4 % / 35 %)", "<= 0.6", lambda p: vs_scipy("vgg6", p.pairs)),
    ("fc8-1t", "same, FC8, one thread (simulate(threads=1))", "<= 0.6",
     lambda p: vs_scipy("fc8", p.pairs, threads=1)),
    ("vgg6-1t", "same, VGG-6-size, one thread", "<= 0.6", lambda p: vs_scipy("vgg6", p.pairs, threads=1)),
    ("cold", "first (cold) call / warm call, FC8", "<= 2", lambda p: cold("fc8", p.pairs)),
    ("cold-vgg6", "first (cold) call / warm call, VGG-6-size", "<= 2", lambda p: cold("vgg6", p.pairs)),
    ("rss", "peak RSS simulating VGG-6-size / encoded arrays + input", "<= 2", lambda p: rss_row(p.pairs)),
    ("mnist", "simulate --input mnist10k.npz (LeNet) / NumPy dense forward, processes", "<= 2",
     lambda p: mnist_row(p.proc_pairs)),
    ("cli-fc8", "simulate --eie-dump FC8 --fifo-depth 7 / python -c 'import numpy'", "<= 1.5",
     lambda p: cli_row(p.proc_pairs)),
    ("reference", "pure-Python reference / kernel, 512x512 10 % / 35 %", ">= 300",
     lambda p: reference_row(p.pairs)),
    ("encode", "from_weights / scipy.sparse.csc_matrix(dense), VGG-6-size", "<= 1.0",
     lambda p: encode_row(p.pairs_slow)),
    ("huffman", "Huffman decode, Cython / NumPy twin, 12.8 M symbols", "-", lambda p: huffman_row(p.pairs_slow)),
    ("container", "load Huffman-only VGG-6 .eie, Cython / NumPy decoding", "-",
     lambda p: container_row(p.pairs_slow)),
    ("trace-off", "kernel run_batch, tracing off / kernel without the trace hook, FC8", "-",
     lambda p: trace_off_row(p.pairs, p.baseline_kernel)),
    ("trace-on", "simulate(events=True) / simulate(), FC8 (issue 14)", "-", lambda p: trace_on_row(p.pairs)),
    ("fuzz", "fuzz.py API inputs, a child per input / a child per batch", "-", lambda p: fuzz_row(p.pairs_slow)),
]


def _meets(ratio, target):
    if target == "-":
        return "-"
    op, val = target.split()
    return "yes" if (ratio <= float(val) if op == "<=" else ratio >= float(val)) else "no"


#: The README's wording of each row (Markdown); ``{cycles}``, ``{a_mib}``, ``{b_mib}`` from the row.
MARKDOWN_CASE = {
    "fc8": "warm simulate / scipy CSC W@a+b, real FC8 ({cycles:,} cycles)",
    "fc6": "same, AlexNet fc6-size (9216→4096, 9 % / 35 %)",
    "vgg6": "same, VGG-6-size (25088→4096, 4 % / 35 %)",
    "fc8-1t": "same, FC8, one thread (`simulate(threads=1)`)",
    "vgg6-1t": "same, VGG-6-size, one thread",
    "cold": "first (cold) call / warm call, FC8 (memory floor {floor:.2f})",
    "cold-vgg6": "first (cold) call / warm call, VGG-6-size (memory floor {floor:.2f})",
    "rss": "peak RSS simulating VGG-6-size / encoded arrays + input ({a_mib:.1f} / {b_mib:.1f} MiB)",
    "mnist": "`simulate --input mnist10k.npz` (LeNet, 10,000 digits) / NumPy dense forward, processes",
    "cli-fc8": "`simulate --eie-dump FC8 --fifo-depth 7` / `python -c \"import numpy\"`, processes",
    "reference": "pure-Python reference / kernel, 512×512 10 % / 35 %",
    "encode": "`from_weights` (dense → per-PE CSC) / `scipy.sparse.csc_matrix(dense)`, VGG-6-size",
}


def _num(x) -> str:
    """A ratio or a time as the tables print it: 3 decimals below 10, 4 significant digits below 1000,
    else 1 decimal; None as a dash."""
    return "–" if x is None else f"{x:.3f}" if abs(x) < 10 else f"{x:.4g}" if abs(x) < 1000 else f"{x:.1f}"


def markdown_table(doc: dict) -> str:
    """The README's benchmark table (Markdown) from a ``--json`` document of this script.

    One line per row: the case (:data:`MARKDOWN_CASE`, else the row's own text), the median times
    of A and B (ms), the median ratio, the ratios' quartiles and the target (``≤``/``≥``).
    """
    out = ["| case (A / B) | A ms | B ms | A / B | q1–q3 | target |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in doc["rows"]:
        fields = {k: r.get(k) for k in ("cycles", "a_mib", "b_mib", "floor")}
        case = MARKDOWN_CASE.get(r["key"], r["case"])
        case = r["case"] if any(v is None and "{" + k in case for k, v in fields.items()) else case.format(**fields)
        q = "–" if r.get("q1") is None or r.get("pairs", 0) < 2 else f"{_num(r['q1'])}–{_num(r['q3'])}"
        target = r["target"].replace("<=", "≤").replace(">=", "≥")
        out.append(f"| {case} | {_num(r['a_ms'])} | {_num(r['b_ms'])} | {_num(r['ratio'])} | {q} | {target} |")
    if "loadavg_start" in doc:
        out += ["", textwrap.fill(
            f"(One run: {doc['pairs']} interleaved pairs per in-process row, {doc['proc_pairs']} paired process "
            f"runs per whole-process row, {doc['cpus']} CPUs, load average {doc['loadavg_start'][0]:.2f} at the "
            f"start and {doc['loadavg'][0]:.2f} at the end.)", 105, break_on_hyphens=False)]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ALL_ROWS), help=f"comma-separated subset of {','.join(ALL_ROWS)}")
    ap.add_argument("--pairs", type=int, default=21, help="interleaved pairs per in-process row (>= 21)")
    ap.add_argument("--proc-pairs", type=int, default=21, help="paired process runs per whole-process row")
    ap.add_argument("--pairs-slow", type=int, default=21,
                    help="pairs for the encode / Huffman / container rows (seconds per pair)")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--markdown", action="store_true", help="also print the table as the README gives it")
    ap.add_argument("--render", metavar="JSON",
                    help="print the README table of an earlier run's --json output and exit (runs nothing)")
    ap.add_argument("--baseline-kernel", metavar="DIR",
                    help="folder holding an eie_sim extension built without the trace hook (row trace-off)")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render, encoding="utf-8") as fh:
            sys.stdout.write(markdown_table(json.load(fh)))
        return 0
    check_output_args(ap, [("--json", args.json)])  # before the benchmarks, not after
    load_start = os.getloadavg()
    want = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(want) - set(ALL_ROWS))
    if unknown:
        ap.error(f"--rows: unknown {', '.join(unknown)} (known: {', '.join(ALL_ROWS)})")
    needs_fc8 = {"fc8", "fc8-1t", "cold", "cli-fc8", "trace-off", "trace-on"}
    if not (FC8 / "arithm.dat").is_file() and needs_fc8 & set(want):
        print(f"note: {FC8} not found; FC8 rows skipped", file=sys.stderr)
        want = [w for w in want if w not in needs_fc8]

    rows = []
    print(f"{'case':<74} {'A ms':>9} {'B ms':>9} {'A/B':>8} {'q1-q3':>13} {'target':>7} {'met':>4}  detail",
          flush=True)
    for key, case, target, fn in TABLE:
        if key not in want:
            continue
        r = fn(args)
        r.update(key=key, case=case, target=target, met=_meets(r["ratio"], target))
        rows.append(r)
        a = "-" if r["a_ms"] is None else f"{r['a_ms']:.3f}"
        b = "-" if r["b_ms"] is None else f"{r['b_ms']:.3f}"
        q = "-" if r.get("q1") is None else f"{_num(r['q1'])}-{_num(r['q3'])}"
        print(f"{case:<74} {a:>9} {b:>9} {r['ratio']:>8.3f} {q:>13} {target:>7} {r['met']:>4}  {r['detail']}",
              flush=True)
    if args.json:
        doc = {"pairs": args.pairs, "proc_pairs": args.proc_pairs, "pairs_slow": args.pairs_slow,
               "cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg": os.getloadavg(), "rows": rows}
        write_atomic(args.json, json_bytes(doc))
    if args.markdown:
        print()
        sys.stdout.write(markdown_table({"rows": rows}))  # the run's settings: --render of its --json
    return 0


if __name__ == "__main__":
    sys.exit(main())
