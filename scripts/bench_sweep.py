#!/usr/bin/env python3
"""Sweep throughput on this machine: points per second per worker, and what a 100,000-point sweep costs.

Runs the points of ``scripts/sweeps/fig8.toml`` (9 benchmark layers + real FC8
x 9 queue depths, 64 PEs) in this process with every workload already built
(the steady state of a long sweep, where each worker builds a layer once),
and reports wall and CPU time per point (median and mean). The one-off cost
of building the synthetic layers is timed separately (per worker, per
workload). Then a 100,000-point sweep is priced on N workers from the mean.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from eiesim.explore import load_spec, resolve_workload
from eiesim.explore.runner import run_batch

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=str(HERE / "sweeps" / "fig8.toml"))
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over the points (default 3)")
    args = ap.parse_args(argv)
    spec = load_spec(args.spec, resolve_workload=resolve_workload)
    pts = list(spec.points)
    groups = {}
    for p in pts:
        groups.setdefault(p.settings["workload"], []).append(p)
    build = {}
    wall, cpu = [], []
    for w, ps in groups.items():  # workload by workload, as the runner batches them
        t0 = time.perf_counter()
        run_batch(ps[:1], spec.root)  # builds the workload (generation / reading) in this process
        build[w] = time.perf_counter() - t0
        for _ in range(args.repeats):
            for p in ps:
                t0, c0 = time.perf_counter(), time.process_time()
                run_batch([p], spec.root)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    mw, mc = statistics.mean(wall), statistics.mean(cpu)
    print(f"{spec.name}: {len(pts)} points x {args.repeats} passes, workloads built")
    print(f"per point: wall median {1e3 * statistics.median(wall):.1f} ms, mean {1e3 * mw:.1f} ms; "
          f"CPU median {1e3 * statistics.median(cpu):.1f} ms, mean {1e3 * mc:.1f} ms")
    print(f"points/s per worker: {1 / mw:.1f} (wall), {1 / mc:.1f} (CPU-bound, an idle core)")
    print("building each workload once per worker (s): "
          + ", ".join(f"{w} {t:.1f}" for w, t in build.items()) + f"; total {sum(build.values()):.0f} s")
    for n in (1, 2, 16, 64, 256):
        print(f"100,000 points on {n:>3} worker(s): {1e5 * mc / n / 60:8.1f} min of simulation "
              f"(CPU mean) + {sum(build.values()) / 60:.1f} min of workload building per worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
