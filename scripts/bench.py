#!/usr/bin/env python
"""Benchmark: the cycle-level kernel against scipy.sparse and against the pure-Python reference.

Measured in one run, on this machine, median of several repetitions after a
warm-up (timings are wall-clock, ``time.perf_counter``):

1. FC8 (the authors' AlexNet FC8 dump, 64 PEs): ``eiesim.simulate`` with the
   compiled kernel vs ``scipy.sparse`` CSC matvec of the same decoded matrix and
   the same input (W @ a + b).
2. A synthetic 4096 x 4096 layer at 9 % weights / 35 % activations (Alex-7-like,
   uniform random, seed 0), same comparison.
3. The kernel vs the cycle-stepped pure-Python reference on a 512 x 512 layer.
4. Canonical-Huffman decoding of 12.8 M symbols of a 16-symbol alphabet (the
   relative-index distribution of a layer at 4 % density: ``P(z = k) =
   d (1 - d)^k`` for ``k < 15``, the rest on 15; seed 0): the Cython kernel
   ``eiesim._kernels.huffman_dec`` vs its NumPy twin (``decode(backend=...)``).
5. Loading (``load_container``, cheap checks) a Huffman-only ``.eie`` of a
   VGG-6-sized layer (25088 -> 4096 at 4 %, 64 PEs: 12.8 M symbols in its v
   and z streams; ``scripts/bench_validate.py``'s layer), with Huffman decoding
   by the kernel vs by the NumPy twin. ``--no-container`` skips it (building
   the layer takes a while).

The simulator does more than the matvec (it also produces the cycle count,
per-PE busy/stall cycles and eleven action counters), but it skips zero
activations, which scipy's CSC matvec does not.

Usage: ``python scripts/bench.py [--repeat R] [--no-container] [--json OUT]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eiesim import EIEConfig
from eiesim._io import json_bytes, write_atomic
from eiesim.commands._args import check_output_args
from eiesim.format import huffman
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import simulate

FC8 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alexnet_fc8_eie"


def median_time(fn, repeat: int, number: int) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls, in seconds."""
    fn()  # warm-up (also fills the per-layer validation cache)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


def synthetic_layer(n_out, n_in, w_density, a_density, n_pe, seed):
    rng = np.random.default_rng(seed)
    codes = np.zeros((n_out, n_in), dtype=np.uint8)
    mask = rng.random((n_out, n_in)) < w_density
    codes[mask] = rng.integers(1, 16, size=int(mask.sum()))
    # no centroid at 0.0: a code decoding to 0 is refused (ENTRY-DECODES-TO-ZERO)
    codebook = np.concatenate([[0.0], np.linspace(-0.1, -0.01, 7), np.linspace(0.01, 0.1, 8)]).astype(np.float32)
    layer = CompressedLayer.from_codes(codes, codebook, n_pe, name=f"synthetic {n_out}x{n_in}")
    a = np.where(rng.random(n_in) < a_density, rng.random(n_in), 0.0).astype(np.float32)
    return layer, a


def vs_scipy(name, layer, a, cfg, repeat):
    W = layer.to_scipy("csc")
    b = layer.bias_values()
    if b is None:
        b = np.zeros(layer.n_out, dtype=np.float32)
    t_sim = median_time(lambda: simulate(layer, a, cfg), repeat, 20)
    t_sp = median_time(lambda: W @ a + b, repeat, 20)
    res = simulate(layer, a, cfg)
    return {
        "case": name,
        "shape": list(layer.shape),
        "nnz": int(W.nnz),
        "cycles": res.cycles,
        "ours_ms": 1e3 * t_sim,
        "other": "scipy.sparse CSC matvec",
        "other_ms": 1e3 * t_sp,
        "ratio": t_sim / t_sp,
    }


def huffman_case(n_symbols: int, repeat: int) -> dict:
    """Decode ``n_symbols`` of a relative-index-like 16-symbol stream: kernel vs NumPy twin."""
    d = 0.04
    p = d * (1 - d) ** np.arange(16)
    p[15] = 1.0 - p[:15].sum()
    x = np.random.default_rng(0).choice(16, size=n_symbols, p=p).astype(np.uint8)
    s = huffman.encode(x, 16)
    assert np.array_equal(huffman.decode(s, backend="kernel"), x)
    t_k = median_time(lambda: huffman.decode(s, backend="kernel"), repeat, 1)
    t_n = median_time(lambda: huffman.decode(s, backend="numpy"), 3, 1)
    return {
        "case": f"Huffman decode {n_symbols / 1e6:.1f} M",
        "shape": [n_symbols],
        "nnz": n_symbols,
        "cycles": None,
        "bits_per_symbol": s.n_bits / n_symbols,
        "ours_ms": 1e3 * t_k,
        "other": "NumPy twin",
        "other_ms": 1e3 * t_n,
        "ratio": t_k / t_n,
    }


@contextlib.contextmanager
def huffman_numpy_only():
    """Make ``huffman.decode``'s default backend the NumPy twin (as when the kernel is not built)."""
    saved = list(huffman._KERNEL_CACHE)
    huffman._KERNEL_CACHE[:] = [None, "disabled by scripts/bench.py"]
    try:
        yield
    finally:
        huffman._KERNEL_CACHE[:] = saved


def container_case(repeat: int) -> dict:
    """Load a Huffman-only ``.eie`` of a VGG-6-sized layer, decoding with the kernel vs NumPy."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_validate import build_layer

    from eiesim.format.container import load_container, save_network

    layer = build_layer(4096, 25088, 0.04, 64, 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vgg6-huffman.eie")
        save_network(path, [layer], store_vz=False, huffman=True)
        loaded = load_container(path).layers[0].layer
        assert np.array_equal(loaded.v, layer.v) and np.array_equal(loaded.z, layer.z)
        t_k = median_time(lambda: load_container(path), repeat, 1)
        with huffman_numpy_only():
            t_n = median_time(lambda: load_container(path), 3, 1)
    return {
        "case": "load VGG-6 .eie (Huff)",
        "shape": list(layer.shape),
        "nnz": 2 * int(layer.n_entries),  # symbols in the v and z streams
        "cycles": None,
        "ours_ms": 1e3 * t_k,
        "other": "same, NumPy decoding",
        "other_ms": 1e3 * t_n,
        "ratio": t_k / t_n,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-container", action="store_true", help="skip the .eie loading case")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    check_output_args(ap, [("--json", args.json)])  # before the benchmarks, not after
    rows = []

    cfg64 = EIEConfig(n_pe=64, fifo_depth=7)
    if (FC8 / "arithm.dat").is_file():
        from eiesim.format.eiedump import read_dump

        dump = read_dump(FC8)
        rows.append(vs_scipy("FC8 (real, 64 PEs)", dump.layer, dump.activations, cfg64, args.repeat))
    else:
        print(f"note: {FC8} not found; FC8 row skipped", file=sys.stderr)

    layer, a = synthetic_layer(4096, 4096, 0.09, 0.35, 64, seed=0)
    rows.append(vs_scipy("synthetic 9 % / 35 %", layer, a, cfg64, args.repeat))

    small, a_small = synthetic_layer(512, 512, 0.10, 0.35, 64, seed=1)
    t_k = median_time(lambda: simulate(small, a_small, cfg64), args.repeat, 20)
    t_r = median_time(lambda: simulate(small, a_small, cfg64, backend="reference"), 3, 1)
    rows.append({
        "case": "512x512 10 % / 35 %",
        "shape": [512, 512],
        "nnz": int(small.n_nonzeros),
        "cycles": simulate(small, a_small, cfg64).cycles,
        "ours_ms": 1e3 * t_k,
        "other": "pure-Python reference",
        "other_ms": 1e3 * t_r,
        "ratio": t_k / t_r,
    })

    rows.append(huffman_case(12_800_000, args.repeat))
    if not args.no_container:
        rows.append(container_case(args.repeat))

    print(f"{'case':<22} {'shape':>11} {'nnz':>10} {'cycles':>8} {'kernel ms':>10}  {'vs':<24} {'their ms':>9} {'kernel/them':>11}")
    for r in rows:
        shape = "x".join(str(d) for d in r["shape"])
        cycles = "-" if r["cycles"] is None else f"{r['cycles']:,}"
        print(f"{r['case']:<22} {shape:>11} {r['nnz']:>10,} {cycles:>8} {r['ours_ms']:>10.3f}  "
              f"{r['other']:<24} {r['other_ms']:>9.3f} {r['ratio']:>11.3f}")
    if args.json:
        write_atomic(args.json, json_bytes({"repeat": args.repeat, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
