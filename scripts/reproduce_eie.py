#!/usr/bin/env python
"""Reproduce EIE's Table IV and Figs. 6-7: time, speedup and energy efficiency of the nine layers.

Usage::

    python scripts/reproduce_eie.py [--json OUT.json] [--out DIR] [--seed S] [--no-host] [--no-plots]

What it does
------------
* Simulates the nine benchmark layers of EIE (Han et al., ISCA 2016, Table
  III shapes and densities) on the paper's configuration (64 PEs, 64-bit
  spmat lines, 800 MHz, activation queues of B = 8 slots = ``fifo_depth`` 7 as
  in the authors' simulator). Their weights are not available, so each layer
  is **synthetic** (eiesim.workloads.synthetic), generated with the ``fc8``
  profile -- the row/column density spread measured on the real FC8 -- and
  also with the ``uniform`` profile for comparison.
* Simulates the real AlexNet FC8 (``../shared/data/alexnet_fc8_eie``, the
  authors' dump and input) when present.
* Explains the gaps: for each synthetic layer, the activation density at
  which it would take the paper's time (bisection), and for the layers whose
  activation density is already 100 % the row-density spread that would.
* Compares with the paper's CPU / GPU / mGPU times (EIE Table IV, batch 1),
  a memory-bound model fitted to them, and NumPy/SciPy on this host; energy
  by the paper's method (0.6 W x time; platform powers derived from the
  headline ratios) and by eiesim's activity-based model.
* Prints Markdown tables and writes them to ``DIR/reproduction.md``, the
  results to ``OUT.json`` (default ``DIR/reproduction.json``) and the plots
  (``eiesim plot``) to ``DIR``.
"""

from __future__ import annotations

import os

# Time the host baselines with one BLAS thread: on a shared machine a multi-threaded GEMV waits for
# descheduled helper threads (10 ms stalls). Must be set before NumPy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from eiesim import __version__
from eiesim._io import json_bytes, write_atomic
from eiesim.commands._args import check_output_args, seed_int
from eiesim.config import EIEConfig
from eiesim.energy.baselines import (
    HEADLINE, PLATFORM_ORDER, PLATFORMS, KINDS, PUBLISHED_BATCH1_US, SOURCE_TABLE4,
    fitted_models, geomean, measure_host, published_time,
)
from eiesim.energy.model import RunActivity, price_run
from eiesim.energy.tables import DEFAULT_TABLE
from eiesim.sim.engine import simulate
from eiesim.workloads.benchmarks import BENCHMARKS, BENCHMARK_ORDER, SOURCE as BENCH_SOURCE, benchmark_spec
from eiesim.workloads.synthetic import (
    FC8_MEASURED, PROFILES, bisect_increasing, generate, layer_statistics, make_activations,
)

REPO = Path(__file__).resolve().parents[1]
FC8_DIR = Path(os.environ.get("EIESIM_SHARED_DATA", REPO.parent / "shared" / "data")) / "alexnet_fc8_eie"
CONFIG = EIEConfig(n_pe=64, spmat_line_bits=64, fifo_depth=7, clock_hz=800e6)
ACT_SEED = 12345  # seed of the activation vectors of the bisection


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def md_table(header, rows, align=None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{nd}f}"


# --------------------------------------------------------------------------- simulation
def sim_us(layer, act) -> float:
    return simulate(layer, act, CONFIG).time_s * 1e6


def act_density_to_match(syn, target_us: float):
    """Activation density at which the same layer takes ``target_us`` (None if > 100 %)."""
    spec = syn.spec

    def t(ad):
        a = make_activations(spec.n_in, ad, syn.col_multipliers, spec.act_affinity, seed=ACT_SEED)
        return sim_us(syn.layer, a)

    if t(1.0) < target_us:
        return None
    return bisect_increasing(t, target_us, 0.0, 1.0, 14)


def row_cv_to_match(spec, target_us: float, hi: float = 2.0):
    """Row-multiplier CV at which the layer takes ``target_us`` (None if beyond ``hi``)."""
    def t(cv):
        s = generate(dataclasses.replace(spec, row_cv=cv))
        return sim_us(s.layer, s.activations)

    if t(hi) < target_us:
        return None
    return bisect_increasing(t, target_us, 0.0, hi, 9)


def lenet_statistics():
    """Statistics of the embedded LeNet-300-100 layers on their real MNIST inputs."""
    from importlib import resources

    from eiesim.format.container import load_network

    net = load_network(resources.files("eiesim.traces") / "lenet300100.eie")
    with np.load(resources.files("eiesim.traces") / "mnist_test100.npz") as z:
        x = z["inputs"][:20]
    out = []
    a = x
    for layer in net.layers:
        st = [layer_statistics(layer, v) for v in a]
        s = dict(st[0])
        for k in ("act_density", "act_col_density_ratio", "empty_slice_share"):
            s[k] = float(np.mean([q[k] for q in st]))
        s["name"] = f"LeNet-300-100 {layer.name}"
        s["source"] = "embedded trace (traces/), magnitude-pruned without retraining, 20 real MNIST digits"
        out.append(s)
        w = layer.to_scipy()
        a = np.maximum(np.asarray(w @ a.T).T + layer.bias_values(), 0)
    return out


# --------------------------------------------------------------------------- comparison
def compare(entry: dict, bench_name: str, t_sim_us: float, energy: dict, models) -> None:
    """Add speedups and energy ratios against the platforms (paper's method for EIE energy)."""
    e_paper_j = energy["paper"]["total_pj"] * 1e-12
    e_act_j = energy["activity"]["total_pj"] * 1e-12
    entry["baselines_us"] = {}
    entry["speedup"] = {}
    entry["energy_ratio"] = {}
    entry["energy_ratio_activity"] = {}
    entry["modelled_us"] = {}
    b = BENCHMARKS[bench_name]
    for p in PLATFORM_ORDER:
        for k in KINDS:
            key = f"{p}_{k}"
            t = published_time(bench_name, p, k).time_us
            entry["baselines_us"][key] = t
            entry["speedup"][key] = t / t_sim_us
            e_plat = PLATFORMS[p].power_w * t * 1e-6
            entry["energy_ratio"][key] = e_plat / e_paper_j
            entry["energy_ratio_activity"][key] = e_plat / e_act_j
            entry["modelled_us"][key] = models[(p, k)].time_us(b.n_out, b.n_in, b.weight_density)
    entry["batch64"] = "not available (EIE Table IV / Deep Compression Tables 8-9 batch-64 values are not in this project's sources)"


def geomeans(entries) -> dict:
    out = {"n_layers": len(entries), "layers": [e["name"] for e in entries]}
    out["time_ratio_sim_over_paper"] = geomean(e["sim_time_us"] / e["paper_time_us"] for e in entries)
    out["paper_speedup"] = {}
    for key in ("speedup", "energy_ratio", "energy_ratio_activity"):
        out[key] = {k: geomean(e[key][k] for e in entries) for k in entries[0][key]}
    for p in PLATFORM_ORDER:
        for k in KINDS:
            out["paper_speedup"][f"{p}_{k}"] = geomean(
                PUBLISHED_BATCH1_US[e["bench"]][(p, k)] / BENCHMARKS[e["bench"]].paper_time_us for e in entries
            )
    return out


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="OUT", help="results JSON (default DIR/reproduction.json)")
    ap.add_argument("--out", metavar="DIR", default=".",
                    help="existing folder for tables and plots (default: .; a missing folder is refused, not created)")
    ap.add_argument("--seed", type=seed_int, default=0, help="base seed of the synthetic layers, >= 0")
    ap.add_argument("--no-host", action="store_true", help="skip the NumPy/SciPy timing on this host")
    ap.add_argument("--no-plots", action="store_true", help="do not draw the plots")
    ap.add_argument("--no-explain", action="store_true", help="skip the gap analysis (bisections)")
    ap.add_argument("--no-uniform", action="store_true", help="skip the uniform-profile comparison")
    ap.add_argument("--layers", nargs="+", metavar="NAME", choices=BENCHMARK_ORDER,
                    help="simulate only these benchmark layers (default: all nine)")
    args = ap.parse_args(argv)
    # written after minutes of simulation: check every output before any work
    written = ["reproduction.md"] + ([] if args.json else ["reproduction.json"])
    if not args.no_plots:
        from eiesim.report.plots import FIGURE_FILES  # imports matplotlib: only when plotting

        written += FIGURE_FILES
    check_output_args(ap, [("--json", args.json)], folders=[("--out", args.out, written)])
    out_dir = Path(args.out)
    json_path = Path(args.json) if args.json else out_dir / "reproduction.json"
    t_start = time.perf_counter()

    models = fitted_models([(n, b.n_out, b.n_in, b.weight_density) for n, b in BENCHMARKS.items()])

    # ---- calibration data
    calibration = {"profiles": PROFILES, "fc8_measured": None, "lenet": []}
    fc8 = None
    if (FC8_DIR / "arithm.dat").is_file():
        from eiesim.format.eiedump import read_dump

        d = read_dump(FC8_DIR, n_pe=64)
        fc8 = d
        calibration["fc8_measured"] = layer_statistics(d.layer, d.activations)
        calibration["fc8_measured"]["source"] = FC8_MEASURED["source"]
    else:
        log(f"note: {FC8_DIR} not present: the real FC8 is skipped; profile 'fc8' uses stored statistics")
    calibration["lenet"] = lenet_statistics()

    # ---- layers
    entries = []
    for name in (args.layers and [n for n in BENCHMARK_ORDER if n in args.layers]) or BENCHMARK_ORDER:
        b = BENCHMARKS[name]
        t0 = time.perf_counter()
        spec = benchmark_spec(name, "fc8", seed=args.seed)
        syn = generate(spec, CONFIG.n_pe)
        res = simulate(syn.layer, syn.activations, CONFIG)
        if args.no_uniform:
            uni, t_uni = None, None
        else:
            uni = generate(benchmark_spec(name, "uniform", seed=args.seed), CONFIG.n_pe)
            t_uni = sim_us(uni.layer, uni.activations)
        run = RunActivity.from_result(res, CONFIG, name=name)
        energy = price_run(run, DEFAULT_TABLE)
        t_sim = res.time_s * 1e6
        e = {
            "name": name, "bench": name, "description": b.description, "synthetic": True, "profile": "fc8",
            "spec": spec.to_dict(), "shape": [b.n_out, b.n_in],
            "weight_density": syn.stats["weight_density"], "act_density": syn.stats["act_density"],
            "paper_weight_density": b.weight_density, "paper_act_density": b.act_density,
            "sim_time_us": t_sim, "paper_time_us": b.paper_time_us,
            "error_pct": 100 * (t_sim / b.paper_time_us - 1),
            "uniform_time_us": t_uni,
            "uniform_error_pct": None if t_uni is None else 100 * (t_uni / b.paper_time_us - 1),
            "cycles": res.cycles, "n_pe": res.n_pe, "clock_hz": res.clock_hz,
            "filler_share": syn.stats["filler_share"],
            "load_balance_efficiency": res.load_balance_efficiency,
            "counters": res.counters, "stats": syn.stats, "uniform_stats": uni.stats if uni else None,
            "ops": 2 * b.n_in * b.n_out, "energy": energy,
        }
        compare(e, name, t_sim, energy, models)
        if name == "Alex-8" and calibration["fc8_measured"] is not None:
            # the same synthetic layer on an input as dense as the real FC8's (README, Table IV discussion)
            ad = calibration["fc8_measured"]["act_density"]
            a = make_activations(spec.n_in, ad, syn.col_multipliers, spec.act_affinity, seed=ACT_SEED)
            e["at_real_fc8_act_density"] = {"act_density": ad, "sim_time_us": sim_us(syn.layer, a)}
        if not args.no_explain:
            ad = act_density_to_match(syn, b.paper_time_us)
            e["act_density_to_match_paper"] = ad
            if ad is None:
                e["row_cv_to_match_paper"] = row_cv_to_match(spec, b.paper_time_us)
        if not args.no_host:
            e["host_us"] = measure_host(b.n_out, b.n_in, b.weight_density, weights=syn.layer.to_scipy("csr"),
                                        warmup=3, repeats=7)
        entries.append(e)
        log(f"{name:8s} sim {t_sim:7.2f} us  paper {b.paper_time_us:5.1f} us  ({e['error_pct']:+.1f} %)  "
            f"uniform {fmt(t_uni, 2)} us  [{time.perf_counter() - t0:.1f} s]")

    real = None
    if fc8 is not None:
        res = simulate(fc8.layer, fc8.activations, CONFIG)
        run = RunActivity.from_result(res, CONFIG, name="Alex-8 (real FC8)")
        energy = price_run(run, DEFAULT_TABLE)
        st = calibration["fc8_measured"]
        t_sim = res.time_s * 1e6
        real = {
            "name": "Alex-8 (real FC8)", "bench": "Alex-8", "description": "AlexNet FC8, the authors' dump and input",
            "synthetic": False, "profile": None, "shape": [fc8.layer.n_out, fc8.layer.n_in],
            "weight_density": st["weight_density"], "act_density": st["act_density"],
            "paper_weight_density": 0.25, "paper_act_density": 0.375,
            "sim_time_us": t_sim, "paper_time_us": 9.9, "error_pct": 100 * (t_sim / 9.9 - 1),
            "cycles": res.cycles, "n_pe": res.n_pe, "clock_hz": res.clock_hz,
            "filler_share": st["filler_share"], "load_balance_efficiency": res.load_balance_efficiency,
            "counters": res.counters, "stats": st, "ops": 2 * fc8.layer.n_in * fc8.layer.n_out,
            "energy": energy,
        }
        compare(real, "Alex-8", t_sim, energy, models)
        if not args.no_host:
            real["host_us"] = measure_host(fc8.layer.n_out, fc8.layer.n_in, st["weight_density"],
                                           weights=fc8.layer.to_scipy("csr"), warmup=3, repeats=7)
        log(f"real FC8 sim {t_sim:.3f} us ({res.cycles} cycles)")

    layers = list(entries)
    if real:  # the real FC8 right after its synthetic stand-in
        benches = [e["bench"] for e in layers]
        layers.insert(benches.index("Alex-8") + 1 if "Alex-8" in benches else len(layers), real)
    gm = {"synthetic": geomeans(entries)}
    if real and any(e["bench"] == "Alex-8" for e in entries):
        gm["real_fc8_in_place"] = geomeans([real if e["bench"] == "Alex-8" else e for e in entries])

    # ---- targets
    targets = []

    def target(name, value, goal, ok, unit=""):
        targets.append({"target": name, "value": value, "goal": goal, "met": bool(ok), "unit": unit})

    if real:
        target("real FC8 within 1 % of 9.9 us", real["error_pct"], "|err| <= 1 %", abs(real["error_pct"]) <= 1, "%")
    for e in entries:
        target(f"{e['name']} within 30 % of the paper", e["error_pct"], "|err| <= 30 %", abs(e["error_pct"]) <= 30, "%")
    g = 100 * (gm["synthetic"]["time_ratio_sim_over_paper"] - 1)
    target(f"geomean of the {len(entries)} synthetic times within 10 %", g, "|err| <= 10 %", abs(g) <= 10, "%")
    for setname, gset in gm.items():
        for p in PLATFORM_ORDER:
            for what, key, head in (("speedup", "speedup", "speedup"), ("energy efficiency", "energy_ratio", "energy")):
                v = gset[key][f"{p}_dense"]
                h = HEADLINE[head][p]
                target(f"{what} vs {PLATFORMS[p].label} dense ({setname}) within 15 % of {h:g}x",
                       100 * (v / h - 1), "|err| <= 15 %", abs(v / h - 1) <= 0.15, "%")

    doc = {
        "kind": "eiesim.reproduce_eie",
        "eiesim_version": __version__,
        "config": CONFIG.to_dict(),
        "sources": {"benchmarks": BENCH_SOURCE, "baselines": SOURCE_TABLE4, "headline": HEADLINE["source"]},
        "energy_table": DEFAULT_TABLE.name,
        "platforms": {k: dataclasses.asdict(p) for k, p in PLATFORMS.items()},
        "headline": HEADLINE,
        "models": {f"{p}_{k}": m.to_dict() for (p, k), m in models.items()},
        "calibration": calibration,
        "layer_order": [e["name"] for e in layers],
        "layers": layers,
        "geomean": gm,
        "targets": targets,
        "runtime_s": None,
    }

    md = render_markdown(doc, args)
    doc["runtime_s"] = time.perf_counter() - t_start
    write_atomic(out_dir / "reproduction.md", (md + "\n").encode("utf-8"))
    write_atomic(json_path, json_bytes(doc, indent=1, default=_json_default, newline=False))
    print(md)
    if not args.no_plots:
        from eiesim.report.plots import plot_all

        for p in plot_all(json.loads(json_path.read_text()), out_dir):
            log(f"wrote {p}")
    log(f"wrote {json_path} and {out_dir / 'reproduction.md'} in {time.perf_counter() - t_start:.0f} s")
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


# --------------------------------------------------------------------------- markdown
def render_markdown(doc: dict, args) -> str:
    layers = doc["layers"]
    syn = [e for e in layers if e["synthetic"]]
    parts = [
        "## EIE reproduction (eiesim)",
        "",
        f"Configuration: {CONFIG.n_pe} PEs, {CONFIG.spmat_line_bits}-bit spmat lines, "
        f"{CONFIG.clock_hz / 1e6:g} MHz, activation queues of {CONFIG.fifo_depth} (the authors' B = 8). "
        "Synthetic layers: paper's shapes and densities (EIE Table III), profile `fc8` (row/column "
        "density spread of the real FC8); seed " + str(args.seed) + ".",
        "",
        "### Table IV: EIE time per layer (batch 1)",
        "",
    ]
    rows = []
    for e in layers:
        rows.append([
            e["name"], "synthetic" if e["synthetic"] else "**real**",
            f"{e['shape'][1]} x {e['shape'][0]}", fmt(100 * e["weight_density"], 1), fmt(100 * e["act_density"], 1),
            fmt(e["paper_time_us"], 1), fmt(e["sim_time_us"], 2), f"{e['error_pct']:+.1f} %",
            fmt(e.get("uniform_time_us"), 2) if e["synthetic"] else "",
            fmt(100 * e["filler_share"], 1), fmt(100 * e["load_balance_efficiency"], 1),
        ])
    gsyn = doc["geomean"]["synthetic"]
    rows.append([f"geomean ({len(syn)} synthetic)", "", "", "", "", "", "", f"{100 * (gsyn['time_ratio_sim_over_paper'] - 1):+.1f} %",
                 "", "", ""])
    parts.append(md_table(
        ["layer", "weights", "size (in x out)", "weight %", "act %", "paper us", "eiesim us", "diff",
         "uniform us", "fillers %", "LB eff %"], rows, "lllrrrrrrrr"))
    parts += ["", "LB eff = useful MAC slots / (cycles x 64). *uniform* = the same layer drawn without the FC8 "
              "row/column spread.", ""]

    # gap analysis
    if any("act_density_to_match_paper" in e for e in syn):
        parts += ["### What explains each gap", ""]
        rows = []
        for e in syn:
            ad = e.get("act_density_to_match_paper")
            rc = e.get("row_cv_to_match_paper")
            if ad is not None:
                need = f"act density {100 * ad:.1f} % (paper's table: {100 * e['paper_act_density']:.1f} %)"
            elif rc is not None:
                need = f"act already 100 %; row-density CV {rc:.2f} (FC8: 0.13)"
            else:
                need = "act already 100 %; not reached with row CV <= 2"
            ue = e["uniform_error_pct"]
            rows.append([e["name"], f"{e['error_pct']:+.1f} %", "n/a" if ue is None else f"{ue:+.1f} %", need,
                         fmt(100 * e["stats"]["empty_slice_share"], 1)])
        parts.append(md_table(["layer", "fc8 profile", "uniform", "matches the paper's time with",
                               "empty slices %"], rows, "lrrlr"))
        parts.append("")

    # speedups
    def ratio_table(key, title, head_key):
        rows = []
        for e in layers:
            rows.append([e["name"]] + [fmt(e[key][f"{p}_{k}"], 0 if e[key][f"{p}_{k}"] >= 100 else 1)
                                       for p in PLATFORM_ORDER for k in KINDS])
        for setname, label in (("synthetic", f"geomean ({len(syn)} synthetic)"), ("real_fc8_in_place", "geomean (real FC8 for Alex-8)")):
            if setname in doc["geomean"]:
                gg = doc["geomean"][setname][key]
                rows.append([f"**{label}**"] + [fmt(gg[f"{p}_{k}"], 0 if gg[f"{p}_{k}"] >= 100 else 1)
                                                for p in PLATFORM_ORDER for k in KINDS])
        if key == "speedup":
            pg = doc["geomean"]["synthetic"]["paper_speedup"]
            rows.append(["paper Table IV (recomputed)"] + [fmt(pg[f"{p}_{k}"], 0 if pg[f"{p}_{k}"] >= 100 else 1)
                                                          for p in PLATFORM_ORDER for k in KINDS])
        rows.append(["paper headline"] + [f"{HEADLINE[head_key][p]:,.0f}" if k == "dense" else "" for p in PLATFORM_ORDER for k in KINDS])
        return md_table(["layer"] + [f"{PLATFORMS[p].label} {k}" for p in PLATFORM_ORDER for k in KINDS], rows)

    parts += ["### Fig. 6: speedup of EIE over CPU / GPU / mGPU (batch 1)", "",
              ratio_table("speedup", "speedup", "speedup"), "",
              "Baseline times: EIE Table IV (published). Batch 64: not available.", "",
              "### Fig. 7: energy efficiency of EIE over CPU / GPU / mGPU (batch 1)", "",
              ratio_table("energy_ratio", "energy", "energy"), "",
              "EIE energy = 0.6 W x simulated time (the paper's method). Platform powers "
              + ", ".join(f"{PLATFORMS[p].label} {PLATFORMS[p].power_w:.1f} W" for p in PLATFORM_ORDER)
              + " are derived from the paper's headline ratios (energy ratio / speedup x 0.6 W).", ""]
    g = doc["geomean"]["synthetic"]["energy_ratio_activity"]
    parts += ["With eiesim's activity-based EIE energy instead (reported separately, not mixed): geomean "
              + ", ".join(f"{PLATFORMS[p].label} dense {g[f'{p}_dense']:,.0f}x" for p in PLATFORM_ORDER) + ".", ""]

    # energy breakdown
    parts += ["### EIE energy per layer (one input)", ""]
    rows = []
    for e in layers:
        a, pp = e["energy"]["activity"], e["energy"]["paper"]
        cls = a["by_class_pj"]
        tot = a["total_pj"]
        rows.append([e["name"], fmt(pp["total_pj"] / 1e6, 2), fmt(tot / 1e6, 2), fmt(a["avg_power_w"], 3),
                     fmt(100 * cls["sram"] / tot, 0), fmt(100 * cls["logic"] / tot, 0), fmt(100 * cls["clock"] / tot, 0),
                     fmt(100 * a["by_module_pj"]["spmat_read"] / tot, 0),
                     fmt(100 * a["by_module_pj"]["ptr_read"] / tot, 0)])
    parts.append(md_table(["layer", "paper method uJ", "activity uJ", "activity W", "SRAM %", "logic %", "clock %",
                           "SpmatRead %", "PtrRead %"], rows))
    parts += ["", "### Weights in DRAM instead of SRAM (what-if, uJ per input)", ""]
    rows = []
    for e in layers:
        w = {x["scenario"]: x for x in e["energy"]["whatifs"]}
        rows.append([e["name"], fmt(w["eie_sram"]["total_pj"] / 1e6, 2),
                     f"{fmt(w['compressed_dram']['total_pj'] / 1e6, 1)} ({w['compressed_dram']['ratio_vs_eie']:.0f}x)",
                     f"{fmt(w['dense_fp32_sram']['total_pj'] / 1e6, 1)} ({w['dense_fp32_sram']['ratio_vs_eie']:.0f}x)",
                     f"{fmt(w['dense_fp32_dram']['total_pj'] / 1e6, 0)} ({w['dense_fp32_dram']['ratio_vs_eie']:.0f}x)"])
    parts.append(md_table(["layer", "EIE (compressed, SRAM)", "compressed in DRAM", "dense fp32 in SRAM",
                           "dense fp32 in DRAM"], rows))

    # baselines: modelled and host
    parts += ["", "### Baselines: published, modelled, measured on this host (us, batch 1)", ""]
    rows = []
    for e in layers:
        r = [e["name"]]
        for p in PLATFORM_ORDER:
            r.append(f"{fmt(e['baselines_us'][f'{p}_dense'], 0)} / {fmt(e['modelled_us'][f'{p}_dense'], 0)}")
        h = e.get("host_us")
        r.append(f"{fmt(h['dense_us'], 0)} / {fmt(h['sparse_us'], 0)}" if h else "skipped")
        rows.append(r)
    parts.append(md_table(["layer"] + [f"{PLATFORMS[p].label} dense: published / modelled" for p in PLATFORM_ORDER]
                          + ["this host: NumPy dense / SciPy CSR"], rows))
    parts += ["", "Modelled = t0 + bytes / BW fitted to the nine published layers: "
              + "; ".join(f"{m['platform']} {m['kind']} t0 {m['t0_us']:.0f} us, {m['bandwidth_gbs']:.1f} GB/s "
                          f"(max err {100 * m['max_rel_error']:.0f} %)" for m in doc["models"].values()) + ".", ""]

    # calibration
    parts += ["### Calibration of the synthetic layers", ""]
    rows = []
    cal = doc["calibration"]
    srcs = ([dict(cal["fc8_measured"], name="AlexNet FC8 (real)")] if cal["fc8_measured"] else []) + cal["lenet"]
    for s in srcs:
        rows.append([s["name"], f"{s['shape'][1]} x {s['shape'][0]}", fmt(100 * s["weight_density"], 1),
                     f"{s['row_density_cv']:.3f} ({s['row_density_cv_uniform']:.3f})",
                     f"{s['col_density_cv']:.3f} ({s['col_density_cv_uniform']:.3f})",
                     fmt(100 * s.get("act_density", float("nan")), 1), f"{s.get('act_col_density_ratio', float('nan')):.2f}"])
    for e in syn:
        if e["bench"] == "Alex-8":
            s = e["stats"]
            rows.append(["synthetic Alex-8 (fc8 profile)", f"{s['shape'][1]} x {s['shape'][0]}", fmt(100 * s["weight_density"], 1),
                         f"{s['row_density_cv']:.3f} ({s['row_density_cv_uniform']:.3f})",
                         f"{s['col_density_cv']:.3f} ({s['col_density_cv_uniform']:.3f})",
                         fmt(100 * s["act_density"], 1), f"{s['act_col_density_ratio']:.2f}"])
    parts.append(md_table(["layer", "size (in x out)", "weight %", "row-density CV (uniform)", "col-density CV (uniform)",
                           "act %", "act/col affinity"], rows))
    prof = doc["calibration"]["profiles"]["fc8"]
    parts += ["", f"Profile `fc8`: row multiplier CV {prof['row_cv']}, column multiplier CV {prof['col_cv']} "
              "(the FC8's measured CVs with the binomial part removed), no activation affinity (FC8 ratio 1.00). "
              "*act/col affinity* = mean column density of the non-zero inputs / mean column density.", ""]

    # targets
    parts += ["### Targets", ""]
    rows = [[t["target"], f"{t['value']:+.1f} %", "met" if t["met"] else "**missed**"] for t in doc["targets"]]
    parts.append(md_table(["target", "value", ""], rows, "lrl"))
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
