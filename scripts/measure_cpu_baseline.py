#!/usr/bin/env python
"""Measure a CPU baseline on this machine and set EIE against it, beside the paper's baselines.

Usage::

    python scripts/measure_cpu_baseline.py --out DIR [--threads N] [--tdp-w W --tdp-source TEXT]
        [--rapl-root PATH | --no-rapl] [--repeats R] [--min-sample-ms MS] [--layers NAME ...]
        [--seed S] [--json OUT] [--no-plot]

What it does
------------
* For each of EIE's nine benchmark layers (Han et al., ISCA 2016, Table III;
  synthetic stand-ins with the paper's shapes and densities, profile ``fc8``,
  as ``scripts/reproduce_eie.py`` makes them) and the real AlexNet FC8
  (``../shared/data/alexnet_fc8_eie``, when present): simulates EIE (64 PEs,
  64-bit spmat lines, queues of 7 = the authors' B = 8, 800 MHz); EIE energy =
  0.6 W x simulated time (the paper's method).
* Times, on this CPU, the same weights as dense NumPy ``W @ X`` (BLAS) and
  SciPy CSR ``csr @ X`` at batch 1 and batch 64, interleaved, medians of
  ``--repeats`` samples (:func:`eiesim.energy.host_cpu.measure_cpu_matvec`).
* CPU energy: RAPL package counters when readable (``/sys/class/powercap``),
  else measured time x a declared power: ``--tdp-w`` with ``--tdp-source``, or
  the default 4.375 W per BLAS thread (AMD EPYC 7763: 280 W TDP / 64 cores;
  an assumption, named as such in every output).
* Writes ``DIR/cpu_baseline.json``, ``DIR/cpu_baseline.md`` (host, times,
  speedup and energy-efficiency tables: this CPU measured beside the paper's
  CPU / GPU / mGPU, EIE Table IV) and ``DIR/cpu_baseline.png``.

``--threads`` (default 1) sets the BLAS threads before NumPy is loaded
(``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``): on a
shared machine a multi-threaded GEMV waits for descheduled helper threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

LAYER_NAMES = ("Alex-6", "Alex-7", "Alex-8", "VGG-6", "VGG-7", "VGG-8", "NT-We", "NT-Wd", "NT-LSTM")
BATCHES = (1, 64)
ACT_SEED = 12345  # seed of the batch-64 activation vectors


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", metavar="DIR", default=".",
                    help="existing folder for cpu_baseline.{json,md,png} (default: .; never created)")
    ap.add_argument("--json", metavar="OUT", help="results JSON (default DIR/cpu_baseline.json)")
    ap.add_argument("--threads", type=_positive_int, default=1,
                    help="BLAS threads for the dense products (default 1; set before NumPy loads)")
    ap.add_argument("--tdp-w", type=_positive_float, metavar="W",
                    help="declared CPU power in W charged over the measured time (needs --tdp-source)")
    ap.add_argument("--tdp-source", metavar="TEXT", help="where --tdp-w comes from (datasheet, wall meter, ...)")
    ap.add_argument("--rapl-root", metavar="PATH", default="/sys/class/powercap",
                    help="powercap folder to read RAPL package energy from (default /sys/class/powercap)")
    ap.add_argument("--no-rapl", action="store_true", help="do not use RAPL even where readable")
    ap.add_argument("--repeats", type=_positive_int, default=21, help="timed samples per implementation (default 21)")
    ap.add_argument("--min-sample-ms", type=_positive_float, default=5.0,
                    help="a sample repeats the call for at least this long (default 5 ms)")
    ap.add_argument("--layers", nargs="+", metavar="NAME", choices=LAYER_NAMES + ("FC8",),
                    help="only these layers (benchmark names, FC8 = the real AlexNet FC8; default: all)")
    ap.add_argument("--seed", type=int, default=0, help="base seed of the synthetic layers (default 0)")
    ap.add_argument("--no-plot", action="store_true", help="do not draw cpu_baseline.png")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if (args.tdp_w is None) != (args.tdp_source is None):
        ap.error("--tdp-w and --tdp-source go together: a declared power needs its source")
    if args.seed < 0:
        ap.error("--seed must be >= 0")
    if "numpy" not in sys.modules:  # the BLAS reads these once, when NumPy loads it
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    # else (main() called from a process that already loaded NumPy): host_info() reports what it can find

    import json
    from pathlib import Path

    import numpy as np

    from eiesim import __version__
    from eiesim._io import json_bytes, write_atomic
    from eiesim.commands._args import check_output_args
    from eiesim.config import EIEConfig
    from eiesim.energy.baselines import (
        HEADLINE, PLATFORM_ORDER, PLATFORMS, PUBLISHED_BATCH1_US, PUBLISHED_EIE_US, SOURCE_TABLE4, geomean,
    )
    from eiesim.energy.host_cpu import (
        declared_power, default_power, eie_vs_cpu, host_info, measure_cpu_matvec, probe_rapl,
    )
    from eiesim.energy.model import RunActivity, price_run
    from eiesim.energy.tables import DEFAULT_TABLE
    from eiesim.report.cpu_baseline import FIGURE_FILE, render_cpu_baseline_markdown
    from eiesim.sim.engine import simulate
    from eiesim.workloads.benchmarks import BENCHMARKS, benchmark_spec
    from eiesim.workloads.synthetic import generate, make_activations

    written = ["cpu_baseline.md"] + ([] if args.json else ["cpu_baseline.json"]) + ([] if args.no_plot else [FIGURE_FILE])
    check_output_args(ap, [("--json", args.json)], folders=[("--out", args.out, written)])
    out_dir = Path(args.out)
    json_path = Path(args.json) if args.json else out_dir / "cpu_baseline.json"
    t_start = time.perf_counter()
    repo = Path(__file__).resolve().parents[1]
    fc8_dir = Path(os.environ.get("EIESIM_SHARED_DATA", repo.parent / "shared" / "data")) / "alexnet_fc8_eie"
    config = EIEConfig(n_pe=64, spmat_line_bits=64, fifo_depth=7, clock_hz=800e6)

    host = host_info()
    load_start = os.getloadavg()[0]  # other work on the machine slows the CPU side (recorded, not corrected)
    meter, rapl_probe = (None, "not used (--no-rapl)") if args.no_rapl else probe_rapl(args.rapl_root)
    if meter is not None:
        power = {"method": "rapl", "watts": None, "source": meter.description}
        pw = None
    else:
        pw = (declared_power(args.tdp_w, args.tdp_source) if args.tdp_w is not None
              else default_power(host.blas_threads or args.threads))
        power = pw.to_dict()

    def paper_ratios(bench: str) -> dict:
        t_eie = PUBLISHED_EIE_US[bench]
        sp, er, us = {}, {}, {}
        for p in PLATFORM_ORDER:
            for k in ("dense", "sparse"):
                t = PUBLISHED_BATCH1_US[bench][(p, k)]
                us[f"{p}_{k}"] = t
                sp[f"{p}_{k}"] = t / t_eie
                er[f"{p}_{k}"] = PLATFORMS[p].power_w * t / (HEADLINE["eie_power_w"] * t_eie)
        return {"paper_us": us, "paper_speedup": sp, "paper_energy_ratio": er, "paper_eie_us": t_eie}

    def one_layer(name, bench, synthetic, layer, act, batch_acts, extra):
        t0 = time.perf_counter()
        res = simulate(layer, act, config)
        energy = price_run(RunActivity.from_result(res, config, name=name), DEFAULT_TABLE)
        eie_t = res.time_s
        eie_e = energy["paper"]["total_pj"] * 1e-12
        w = layer.to_scipy("csr")
        measured = {}
        for b in BATCHES:
            x = act if b == 1 else batch_acts
            r = measure_cpu_matvec(w, x, repeats=args.repeats, min_sample_s=args.min_sample_ms * 1e-3,
                                   power=pw, rapl=meter)
            for k, t in r.items():
                measured[f"{k}_b{b}"] = t
        ratios = eie_vs_cpu(eie_t, eie_e, measured)
        entry = {
            "name": name, "bench": bench, "synthetic": synthetic, "shape": [layer.n_out, layer.n_in],
            "nnz": int(w.nnz), "weight_density": w.nnz / (layer.n_out * layer.n_in),
            "act_density": float(np.count_nonzero(act) / act.size),
            "eie_time_us": eie_t * 1e6, "eie_cycles": int(res.cycles), "eie_energy_j": eie_e,
            "eie_energy_method": "paper: 0.6 W x simulated time (EIE Section VI)",
            "measured": {k: t.to_dict() for k, t in measured.items()},
            "speedup": {k: v["speedup"] for k, v in ratios.items()},
            "speedup_fastest": {k: v["speedup_fastest"] for k, v in ratios.items()},
            "energy_ratio": {k: v["energy_ratio"] for k, v in ratios.items()},
            **paper_ratios(bench), **extra,
        }
        m = entry["measured"]
        print(f"{name:18s} EIE {entry['eie_time_us']:7.2f} us | CPU us/vector: dense b1 "
              f"{1e6 * m['dense_b1']['time_per_vector_s']:9.1f}  CSR b1 {1e6 * m['sparse_b1']['time_per_vector_s']:8.1f}"
              f"  dense b64 {1e6 * m['dense_b64']['time_per_vector_s']:8.1f}  CSR b64 "
              f"{1e6 * m['sparse_b64']['time_per_vector_s']:8.1f}  [{time.perf_counter() - t0:.1f} s]",
              file=sys.stderr, flush=True)
        return entry

    wanted = args.layers or (LAYER_NAMES + ("FC8",))
    layers = []
    for name in LAYER_NAMES:
        if name not in wanted:
            continue
        spec = benchmark_spec(name, "fc8", seed=args.seed)
        syn = generate(spec, config.n_pe)
        xb = np.stack([make_activations(spec.n_in, spec.act_density, syn.col_multipliers, spec.act_affinity,
                                        seed=ACT_SEED + i) for i in range(max(BATCHES))], axis=1)
        layers.append(one_layer(name, name, True, syn.layer, syn.activations, xb,
                                {"description": BENCHMARKS[name].description}))
    if "FC8" in wanted:
        if (fc8_dir / "arithm.dat").is_file():
            from eiesim.format.eiedump import read_dump

            d = read_dump(fc8_dir, n_pe=64)
            ad = float(np.count_nonzero(d.activations) / d.activations.size)
            xb = np.stack([make_activations(d.layer.n_in, ad, seed=ACT_SEED + i) for i in range(max(BATCHES))], axis=1)
            real = one_layer("Alex-8 (real FC8)", "Alex-8", False, d.layer, d.activations, xb,
                             {"description": "AlexNet FC8, the authors' dump and input (batch 64: random "
                                            "inputs at its activation density)"})
            names = [l["name"] for l in layers]  # right after its synthetic stand-in
            layers.insert(names.index("Alex-8") + 1 if "Alex-8" in names else len(layers), real)
        else:
            print(f"note: real FC8 skipped ({fc8_dir} absent; set EIESIM_SHARED_DATA)", file=sys.stderr)
    if not layers:
        print("error: nothing measured (only FC8 asked for, and it is absent)", file=sys.stderr)
        return 2

    syn_layers = [l for l in layers if l["synthetic"]]
    gset = syn_layers or layers
    keys_m = list(layers[0]["speedup"])
    keys_p = list(layers[0]["paper_speedup"])
    gm = {"layers": [l["name"] for l in gset], "synthetic": bool(syn_layers)}
    for key, keys in (("speedup", keys_m), ("speedup_fastest", keys_m), ("energy_ratio", keys_m), ("paper_speedup", keys_p),
                      ("paper_energy_ratio", keys_p)):
        gm[key] = {k: geomean(l[key][k] for l in gset) for k in keys}
    doc = {
        "kind": "eiesim.cpu_baseline",
        "eiesim_version": __version__,
        "host": host.to_dict(),
        "power": power,
        "rapl_probe": rapl_probe,
        "settings": {"repeats": args.repeats, "min_sample_s": args.min_sample_ms * 1e-3, "threads": args.threads,
                     "batches": list(BATCHES), "seed": args.seed, "profile": "fc8",
                     "load_avg_1min": {"start": load_start, "end": os.getloadavg()[0]}},
        "config": config.to_dict(),
        "paper": {"source": SOURCE_TABLE4, "headline": HEADLINE, "eie_power_w": HEADLINE["eie_power_w"],
                  "platforms": {p: {"label": PLATFORMS[p].label, "device": PLATFORMS[p].device,
                                    "power_w": PLATFORMS[p].power_w, "power_source": PLATFORMS[p].power_source}
                                for p in PLATFORM_ORDER}},
        "layers": layers,
        "geomean": gm,
    }
    md = "## EIE against a CPU measured on this machine (eiesim)\n\n" + render_cpu_baseline_markdown(doc)
    doc["runtime_s"] = time.perf_counter() - t_start
    write_atomic(json_path, json_bytes(doc, indent=1, newline=False))
    write_atomic(out_dir / "cpu_baseline.md", (md + "\n").encode("utf-8"))
    print(md)
    if not args.no_plot:
        from eiesim.report.cpu_baseline import plot_cpu_baseline

        plot_cpu_baseline(json.loads(json_path.read_text()), out_dir / FIGURE_FILE)
    print(f"wrote {json_path}, {out_dir / 'cpu_baseline.md'}"
          + ("" if args.no_plot else f", {out_dir / FIGURE_FILE}") + f" in {time.perf_counter() - t_start:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
