#!/usr/bin/env python
"""Benchmark: one-dimensional k-means on 10 million weights (issue 3 §2: target <= 10 s).

Compares the two Lloyd implementations of :mod:`eiesim.compress.quantize`
on the same data and the same initial centroids (linear initialisation,
Deep Compression Section 3.2):

* ``sorted`` -- the exact 1-D Lloyd on sorted data (one O(n log n) sort,
  then O(k log n) per iteration: searchsorted of the k - 1 midpoints and
  prefix-sum differences); run to its fixed point (or ``--max-iter``);
* ``scipy`` -- :func:`scipy.cluster.vq.kmeans2` (``minit='matrix'``), one
  call per iteration as ``kmeans_codebook(method='scipy')`` does; capped at
  ``--scipy-iters`` iterations and the time to the same number of
  iterations as ``sorted`` needed is extrapolated from the per-iteration cost.

It also checks that both give the same centroids after the same number of
iterations from the same start (``--check-iters``), on the full data.

The data: ``--n`` weights drawn from a Laplace distribution (scale 0.05,
seed 0) with the ones below 0.02 in magnitude removed, i.e. shaped like a
pruned layer's survivors.  BLAS is pinned to one thread.

Usage: ``python scripts/bench_kmeans.py [--n 10000000] [--k 15 63] [--json OUT]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.cluster.vq import kmeans2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:  # the installed package (with its compiled kernels) first; a source checkout only when none is installed
    import eiesim  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

from eiesim._io import json_bytes, write_atomic  # noqa: E402
from eiesim.commands._args import check_output_args  # noqa: E402
from eiesim.compress.quantize import kmeans_1d, kmeans_codebook  # noqa: E402


def make_weights(n: int, seed: int = 0) -> np.ndarray:
    """``n`` float64 values, Laplace(0, 0.05) with |w| >= 0.02 (a pruned layer's survivors)."""
    rng = np.random.default_rng(seed)
    out = np.empty(0)
    while out.size < n:
        x = rng.laplace(0.0, 0.05, size=int(1.7 * (n - out.size)) + 16)
        out = np.concatenate([out, x[np.abs(x) >= 0.02]])
    return out[:n]


def bench(x: np.ndarray, k: int, scipy_iters: int, check_iters: int, max_iter: int) -> dict:
    init = np.linspace(x.min(), x.max(), k)
    t0 = time.perf_counter()
    cents, info = kmeans_codebook(x, k, "linear", max_iter=max_iter, method="sorted")
    t_sorted = time.perf_counter() - t0

    # scipy: per-iteration cost from `scipy_iters` iterations (as kmeans_codebook(method='scipy') runs them)
    code = init.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t0 = time.perf_counter()
        for _ in range(scipy_iters):
            code, _ = kmeans2(x, code, iter=1, minit="matrix", missing="warn")
        t_scipy = time.perf_counter() - t0
        per_it = t_scipy / scipy_iters
        # agreement after `check_iters` iterations from the same start, on the same data
        c_sc = init.copy()
        for _ in range(check_iters):
            c_sc, _ = kmeans2(x, c_sc, iter=1, minit="matrix", missing="warn")
    c_so, _ = kmeans_1d(x, init, max_iter=check_iters)
    diff = float(np.max(np.abs(np.sort(c_sc) - c_so)))
    return {
        "k": k,
        "sorted_seconds": t_sorted,
        "sorted_iterations": info["iterations"],
        "sorted_converged": bool(info["converged"]),
        "empty_clusters": len(info["empty_clusters"]),
        "scipy_seconds_per_iteration": per_it,
        "scipy_iterations_timed": scipy_iters,
        "scipy_seconds_extrapolated_same_iterations": per_it * info["iterations"],
        "check_iterations": check_iters,
        "max_abs_centroid_difference_vs_scipy": diff,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="number of weights (default 10 million)")
    ap.add_argument("--k", type=int, nargs="+", default=[15, 63],
                    help="centroids (default 15 and 63: 4-bit and 6-bit codebooks minus the zero entry)")
    ap.add_argument("--scipy-iters", type=int, default=3, help="scipy iterations timed (default 3)")
    ap.add_argument("--check-iters", type=int, default=3,
                    help="iterations of the agreement check (default 3)")
    ap.add_argument("--max-iter", type=int, default=300, help="Lloyd iteration cap (default 300)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)
    check_output_args(ap, [("--json", args.json)])  # before the benchmarks, not after

    t0 = time.perf_counter()
    x = make_weights(args.n)
    print(f"{x.size:,} weights generated in {time.perf_counter() - t0:.1f} s "
          f"({platform.machine()}, {os.cpu_count()} CPUs, 1 BLAS thread; NumPy {np.__version__}, "
          f"SciPy {scipy.__version__})")
    rows = []
    for k in args.k:
        r = bench(x, k, args.scipy_iters, args.check_iters, args.max_iter)
        rows.append(r)
        print(f"k = {k:3d}: sorted 1-D Lloyd {r['sorted_seconds']:6.2f} s for {r['sorted_iterations']} "
              f"iterations ({'converged' if r['sorted_converged'] else 'iteration cap'}, "
              f"{r['empty_clusters']} empty); scipy kmeans2 {r['scipy_seconds_per_iteration']:.2f} s per "
              f"iteration -> {r['scipy_seconds_extrapolated_same_iterations']:.0f} s for as many; "
              f"max |centroid difference| after {r['check_iterations']} iterations: "
              f"{r['max_abs_centroid_difference_vs_scipy']:.2e}")
    ok = all(r["sorted_seconds"] <= 10.0 for r in rows)
    print(f"target: <= 10 s on {x.size:,} weights -> {'met' if ok else 'NOT met'}")
    if args.json:
        write_atomic(args.json, json_bytes({"n": int(x.size), "rows": rows, "target_s": 10.0,
                                           "met": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
