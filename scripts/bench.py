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

The simulator does more than the matvec (it also produces the cycle count,
per-PE busy/stall cycles and ten action counters), but it skips zero
activations, which scipy's CSC matvec does not.

Usage: ``python scripts/bench.py [--repeat R] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from eiesim import EIEConfig
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
    codebook = np.concatenate([[0.0], np.linspace(-0.1, 0.1, 15)]).astype(np.float32)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
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

    print(f"{'case':<22} {'shape':>11} {'nnz':>10} {'cycles':>8} {'kernel ms':>10}  {'vs':<24} {'their ms':>9} {'kernel/them':>11}")
    for r in rows:
        shape = f"{r['shape'][0]}x{r['shape'][1]}"
        print(f"{r['case']:<22} {shape:>11} {r['nnz']:>10,} {r['cycles']:>8,} {r['ours_ms']:>10.3f}  "
              f"{r['other']:<24} {r['other_ms']:>9.3f} {r['ratio']:>11.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
