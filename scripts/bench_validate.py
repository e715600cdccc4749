"""Benchmark: full validation of a VGG-6-sized layer (EIE Table III: 25088 inputs, 4096 outputs, 4 % weights).

Builds a random pruned and quantised layer (4-bit codes, 4-bit relative indices, 64 PEs, with a bias
column), then times -- separately from the build -- the full rule set of ``eiesim.format.validate``:

* ``validate_layer``: the layer in memory (pointer, entry, filler, position and codebook rules);
* ``validate_container``: the same layer written to an ``.eie`` file with the packed image, and with the
  packed image plus the Huffman streams (reading, CRCs, every size rule, packed image and Huffman
  streams cross-checked against v / z).

Usage: ``python scripts/bench_validate.py [--repeat 3] [--density 0.04] [--n-pe 64] [--seed 0] [--json OUT]``
Target (issue #4): full validation <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

from eiesim._io import json_bytes, write_atomic
from eiesim.commands._args import check_output_args
from eiesim.format.container import save_network
from eiesim.format.layout import CompressedLayer
from eiesim.format.validate import validate_container, validate_layer

from bench import synthetic_layer  # noqa: E402  (scripts/ is sys.path[0] when run as a script)


def build_layer(n_out: int, n_in: int, density: float, n_pe: int, seed: int) -> CompressedLayer:
    """Random layer: uniform non-zero positions, codes 1..15, 16-entry codebook, bias column (bench.py's)."""
    return synthetic_layer(n_out, n_in, density, 0.35, n_pe, seed)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-out", type=int, default=4096)
    ap.add_argument("--n-in", type=int, default=25088)
    ap.add_argument("--density", type=float, default=0.04)
    ap.add_argument("--n-pe", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    check_output_args(ap, [("--json", args.json)])  # before the benchmarks, not after

    t0 = time.perf_counter()
    layer = build_layer(args.n_out, args.n_in, args.density, args.n_pe, args.seed)
    t_build = time.perf_counter() - t0
    print(f"built {layer!r} in {t_build:.1f} s")

    times_mem = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rep = validate_layer(layer, pointer_bits=32)
        times_mem.append(time.perf_counter() - t0)
    assert rep.conformant(), [str(f) for f in rep.findings]
    print(f"validate_layer (full, in memory): best {min(times_mem):.3f} s of {args.repeat} "
          f"({layer.n_entries:,} entries, {layer.n_fillers:,} fillers)")

    variants = {
        "packed": dict(packed=True),
        "packed+huffman": dict(packed=True, huffman=True),
    }
    times_file = {}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, opts in variants.items():
            path = os.path.join(tmp, f"vgg6-{label}.eie")
            save_network(path, [layer], **opts)
            sizes[label] = os.path.getsize(path)
            times_file[label] = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rep_f = validate_container(path)
                times_file[label].append(time.perf_counter() - t0)
            assert rep_f.conformant(), [str(f) for f in rep_f.findings]
            print(f"validate_container (full, .eie with {label}, {sizes[label]:,} bytes; reading, CRCs, size "
                  f"rules, representations cross-checked): best {min(times_file[label]):.3f} s of {args.repeat}")
    best = [min(times_mem)] + [min(t) for t in times_file.values()]
    ok = max(best) <= 2.0
    print("target <= 2 s:", "met" if ok else "MISSED")
    if args.json:
        write_atomic(args.json, json_bytes({
            "shape": [args.n_out, args.n_in], "density": args.density, "n_pe": args.n_pe,
            "entries": layer.n_entries, "fillers": layer.n_fillers, "build_s": t_build,
            "validate_layer_s": times_mem, "validate_container_s": times_file, "file_bytes": sizes,
            "machine": platform.platform(), "cpus": os.cpu_count(),
        }))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
