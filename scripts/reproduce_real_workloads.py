#!/usr/bin/env python
"""Real workloads on EIE: per-layer densities, cycles, time, energy, load balance and quality.

Usage::

    python scripts/reproduce_real_workloads.py [--out DIR] [--json OUT.json]
        [--mnist-inputs 10000] [--minilm-inputs 16] [--no-plot]

What it does
------------
* Runs every real workload of :mod:`eiesim.workloads.registry` whose packages
  are installed (``mnist-cnn-fc``, ``minilm-ffn``, ``silero-vad-lstm``,
  ``ocr-lstm``; the others are listed with their install command) through
  :func:`eiesim.workloads.run.run_workload`, plus LeNet-300-100 on the 100 embedded MNIST digits
  (``traces/``) and the authors' real AlexNet FC8 (``../shared/data/alexnet_fc8_eie``,
  when present).
* Each EIE layer runs on the simulator (Cython kernel, reference design:
  64 PEs, 800 MHz, 64-bit spmat lines, 4-bit codes and indices, float32
  arithmetic; EIE Table II) on the workload's real activations, one input
  vector after another; the workload's own NumPy code does the rest of the
  model (convolutions, attention, LayerNorm, GELU).
* Quality: the workload's metric on the outputs **as simulated** (compressed
  model), next to the uncompressed float model's.
* Energy: eiesim's activity-based model (:func:`eiesim.energy.model.activity_energy`,
  EIE Table II energies calibrated per action).
* Writes ``DIR/real_workloads.md`` (the tables printed here), ``DIR/real_workloads.json``
  and ``DIR/real_workloads.png``.

Rows of one kind within a workload are summed (``minilm-ffn``'s 6 blocks:
query/key/value, attention output, FFN1, FFN2), the JSON has every layer.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from eiesim._io import json_bytes, write_atomic
from eiesim.config import EIEConfig
from eiesim.energy.model import RunActivity, activity_energy
from eiesim.errors import EieError
from eiesim.sim.engine import simulate
from eiesim.sim.result import COUNTER_NAMES
from eiesim.workloads.benchmarks import BENCHMARKS

REPO = Path(__file__).resolve().parents[1]
FC8_DIR = Path(os.environ.get("EIESIM_SHARED_DATA", REPO.parent / "shared" / "data")) / "alexnet_fc8_eie"
#: Paper rows shown for comparison (EIE Table III densities, Table IV time).
PAPER_ROWS = ("Alex-8", "NT-We", "NT-Wd", "NT-LSTM")


class LayerStats:
    """Counters of one EIE layer summed over every input vector it ran."""

    def __init__(self, layer, group: str) -> None:
        self.layer = layer
        self.group = group
        self.config = EIEConfig.for_layer(layer)
        self.n_inputs = 0
        self.cycles = 0
        self.act_nonzeros = 0
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        out = np.empty((x.shape[0], self.layer.n_out), np.float32)
        for i, row in enumerate(x):
            r = simulate(self.layer, row, self.config)
            out[i] = r.output
            self.n_inputs += 1
            self.cycles += r.cycles
            self.act_nonzeros += r.act_nonzeros
            for k, v in r.counters.items():
                self.counters[k] += v
        return out

    def energy_pj(self) -> float:
        run = RunActivity(counters=self.counters, cycles=self.cycles, n_pe=self.layer.n_pe,
                          clock_hz=self.config.clock_hz, spmat_line_bits=self.config.spmat_line_bits,
                          name=self.layer.name, shape=self.layer.shape, n_inputs=self.n_inputs)
        return activity_energy(run).total_pj

    def to_dict(self) -> dict:
        n, l = self.n_inputs, self.layer
        return {
            "name": l.name, "group": self.group, "shape": [l.n_out, l.n_in], "n_inputs": n,
            "weight_density": float(l.weight_density), "activation_density": self.act_nonzeros / (n * l.n_in),
            "cycles": int(self.cycles), "cycles_per_input": self.cycles / n,
            "time_s_per_input": self.cycles / n / self.config.clock_hz,
            "energy_pj_per_input": self.energy_pj() / n,
            "load_balance_efficiency": self.counters["macs"] / (self.cycles * l.n_pe),
            "counters": {k: int(v) for k, v in self.counters.items()},
        }


def _group(name: str, workload: str) -> str:
    if workload != "minilm-ffn":
        return name
    for key, label in (("attention.self", "Q/K/V"), ("attention.output", "attn out"),
                       ("intermediate", "FFN1"), ("output.dense", "FFN2")):
        if key in name:
            return label
    return name


def _summary_dict(ls, group: str, kind: str = "fc") -> dict:
    """One :class:`~eiesim.sim.network.LayerSummary` of :func:`eiesim.workloads.run.run_workload` as a table row."""
    n = ls.n_inputs
    run = RunActivity.from_result(ls)
    return {
        "name": ls.name, "group": group, "kind": kind, "shape": [ls.shape[0], ls.shape[1]], "n_inputs": n,
        "weight_density": float(ls.weight_density), "activation_density": ls.act_nonzeros / (n * ls.shape[1]),
        "cycles": int(ls.cycles), "cycles_per_input": ls.cycles / n, "time_s_per_input": ls.cycles / n / ls.clock_hz,
        "energy_pj_per_input": activity_energy(run).total_pj / n,
        "load_balance_efficiency": ls.counters["macs"] / (ls.cycles * ls.n_pe),
        "counters": {k: int(v) for k, v in ls.counters.items()},
    }


def run_registered(name: str, n_inputs: int, log) -> dict:
    """Load a registry workload and run it with :func:`eiesim.workloads.run.run_workload` (EIE does every layer)."""
    from eiesim.workloads.registry import load
    from eiesim.workloads.run import numpy_runner, run_workload

    t0 = time.perf_counter()
    wl = load(name, n_inputs, 0)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    wr = run_workload(wl)
    t_sim = time.perf_counter() - t0
    log(f"{name}: {wl.n_inputs} inputs, loaded in {t_load:.1f} s, simulated in {t_sim:.1f} s")
    return {
        "workload": name, "n_inputs": wl.n_inputs, "metric": wl.metric,
        "quality_simulated": wr.quality["compressed"],
        "quality_compressed_float": float(wl.score(wl.forward(numpy_runner(wl, compressed=True)))),
        "quality_original": wl.original_quality, "metadata": wl.metadata,
        "layers": [_summary_dict(ls, _group(ls.name, name), kind) for ls, kind in zip(wr.layers, wl.kinds)],
    }


def run_lenet(log) -> dict:
    from eiesim.format.container import load_network

    base = resources.files("eiesim.traces")
    net = load_network(base / "lenet300100.eie")
    with np.load(base / "mnist_test100.npz") as z:
        x, y, flog = z["inputs"], z["labels"], z["float_logits"]
    stats = [LayerStats(l, l.name) for l in net.layers]
    h = x
    for k, s in enumerate(stats):
        h = s.run(h)
        if k < len(stats) - 1:
            h = np.maximum(h, 0)
    log(f"lenet-300-100: {x.shape[0]} inputs")
    return {
        "workload": "lenet-300-100", "n_inputs": int(x.shape[0]), "metric": "top-1 accuracy",
        "quality_simulated": float(np.mean(np.argmax(h, 1) == y)), "quality_compressed_float": None,
        "quality_original": float(np.mean(np.argmax(flog, 1) == y)),
        "metadata": {"inputs": "traces/mnist_test100.npz (first 100 MNIST test digits)",
                     "compression": {"method": "Deep Compression, pruned with retraining + trained quantisation "
                                               "(traces/README.md)", "retrained": True}},
        "layers": [s.to_dict() for s in stats],
    }


def run_fc8(log):
    if not (FC8_DIR / "arithm.dat").is_file():
        log(f"note: {FC8_DIR} not present: the real FC8 is skipped")
        return None
    from eiesim.format.eiedump import read_dump

    d = read_dump(FC8_DIR, n_pe=64)
    s = LayerStats(d.layer, "Alex-8 (FC8)")
    s.run(np.asarray(d.activations, np.float32)[None, :])
    log("alexnet-fc8: 1 input (the authors' dump)")
    return {"workload": "alexnet-fc8 (real, authors' dump)", "n_inputs": 1, "metric": None,
            "quality_simulated": None, "quality_compressed_float": None, "quality_original": None,
            "metadata": {"inputs": "the authors' FC8 input vector", "compression": {"retrained": True}},
            "layers": [s.to_dict()]}


def grouped(res: dict) -> list:
    """Layers of one group summed: per-input cycles, time and energy add; densities are weighted means."""
    groups: dict = {}
    for L in res["layers"]:
        g = groups.setdefault(L["group"], {"group": L["group"], "shape": L["shape"], "count": 0, "cyc": 0.0,
                                           "t": 0.0, "e": 0.0, "wd": 0.0, "ad_num": 0.0, "ad_den": 0.0,
                                           "macs": 0, "pe_cycles": 0, "dense": 0.0})
        g["count"] += 1
        g["cyc"] += L["cycles_per_input"]
        g["t"] += L["time_s_per_input"]
        g["e"] += L["energy_pj_per_input"]
        g["wd"] += L["weight_density"]
        g["ad_num"] += L["activation_density"] * L["shape"][1]
        g["ad_den"] += L["shape"][1]
        g["macs"] += L["counters"]["macs"]
        g["pe_cycles"] += L["cycles"] * 64
        g["dense"] += L["shape"][0] * L["shape"][1] / 64
    out = []
    for g in groups.values():
        out.append({"group": g["group"], "shape": g["shape"], "count": g["count"],
                    "weight_density": g["wd"] / g["count"], "activation_density": g["ad_num"] / g["ad_den"],
                    "cycles_per_input": g["cyc"], "time_us_per_input": g["t"] * 1e6,
                    "energy_nj_per_input": g["e"] / 1e3, "load_balance_efficiency": g["macs"] / g["pe_cycles"],
                    "dense_cycles_per_input": g["dense"]})
    return out


def _q(v, metric):
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if metric == "top-1 accuracy" else f"{v:.4f}"


def markdown(results: list, not_run: list) -> str:
    lines = ["| workload | layer (x count) | shape (out x in) | weight density | activation density | "
             "cycles / input vector | dense cycles / EIE cycles | time / input vector (µs) | "
             "energy / input vector (nJ) | load balance |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for res in results:
        tot_c = tot_t = tot_e = tot_d = 0.0
        for g in grouped(res):
            tot_d += g["dense_cycles_per_input"]
            tot_c += g["cycles_per_input"]
            tot_t += g["time_us_per_input"]
            tot_e += g["energy_nj_per_input"]
            cnt = f" (x{g['count']})" if g["count"] > 1 else ""
            lines.append(f"| {res['workload']} | {g['group']}{cnt} | {g['shape'][0]} x {g['shape'][1]} | "
                         f"{100 * g['weight_density']:.1f} % | {100 * g['activation_density']:.1f} % | "
                         f"{g['cycles_per_input']:,.0f} | {g['dense_cycles_per_input'] / g['cycles_per_input']:.2f} | "
                         f"{g['time_us_per_input']:.2f} | "
                         f"{g['energy_nj_per_input']:.1f} | {100 * g['load_balance_efficiency']:.1f} % |")
        if len(res["layers"]) > 1:
            lines.append(f"| {res['workload']} | **all EIE layers** | | | | {tot_c:,.0f} | {tot_d / tot_c:.2f} | {tot_t:.2f} | "
                         f"{tot_e:.1f} | |")
    for name in PAPER_ROWS:
        b = BENCHMARKS[name]
        lines.append(f"| paper: {name} | {b.description} | {b.n_out} x {b.n_in} | {100 * b.weight_density:.0f} % | "
                     f"{100 * b.act_density:.1f} % | {b.paper_cycles:,.0f} | {b.n_out * b.n_in / 64 / b.paper_cycles:.2f} | "
                     f"{b.paper_time_us:.1f} | | |")
    lines += ["", "| workload | inputs | metric | compressed, as simulated | compressed, float32 NumPy | "
                  "original (uncompressed) | retrained |", "| --- | ---: | --- | ---: | ---: | ---: | --- |"]
    for res in results:
        if res["metric"] is None:
            continue
        m = res["metric"]
        n_in = f"{res['n_inputs']:,}"
        vec = res["layers"][0]["n_inputs"]
        if vec != res["n_inputs"]:
            n_in += f" ({vec:,} vectors)"
        lines.append(f"| {res['workload']} | {n_in} | {m} | {_q(res['quality_simulated'], m)} | "
                     f"{_q(res['quality_compressed_float'], m)} | {_q(res['quality_original'], m)} | "
                     f"{'yes' if res['metadata']['compression'].get('retrained') else 'no'} |")
    lines += ["", "One input vector = one digit (LeNet, MNIST CNN), one token (minilm-ffn: every sentence's "
              "tokens, [CLS] and [SEP] included, pass every layer), the authors' one FC8 input, one time step (LSTM workloads). "
              "Rows of several layers (x count) sum their per-vector cycles, time and energy; densities "
              "and load balance are over the group. Dense cycles = n_out x n_in / 64: one MAC per PE per "
              "cycle with nothing skipped. Paper rows: EIE Table III densities, Table IV time "
              "(64 PEs, 800 MHz)."]
    if not_run:
        lines += ["", "Not run: " + "; ".join(not_run) + "."]
    return "\n".join(lines) + "\n"


def plot(results: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{r['workload']}\n{g['group']}", g) for r in results for g in grouped(r)]
    labels = [r[0] for r in rows]
    y = np.arange(len(rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 0.55 * len(rows) + 3.0), sharey=True)
    ax1.barh(y - 0.2, [100 * g["weight_density"] for _, g in rows], 0.4, label="weight density (kept)")
    ax1.barh(y + 0.2, [100 * g["activation_density"] for _, g in rows], 0.4, label="activation density (non-zero)")
    ax1.set_xlabel("density (%)")
    ax1.set_xlim(0, 105)
    ax1.axvline(9, color="tab:blue", ls=":", lw=1.2, label="paper Alex-6/7 weight density 9 % (EIE Table III)")
    ax1.axvline(35.1, color="tab:orange", ls="--", lw=1.2,
                label="paper Alex-6 activation density 35.1 % (Table III)")
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.invert_yaxis()
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    ax1.set_title("What EIE can skip: weight and activation density")
    ax2.barh(y, [100 * g["load_balance_efficiency"] for _, g in rows], 0.6, color="tab:green",
             label="load-balance efficiency (MACs / PE-cycles)")
    ax2.set_xlabel("load-balance efficiency (%)")
    ax2.set_xlim(0, 105)
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax2.set_title("PE utilisation on real activations (64 PEs)")
    names = ", ".join(r["workload"].split(" ")[0] for r in results)
    fig.suptitle(f"Real workloads on simulated EIE (64 PEs, 800 MHz, real inputs): {names}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def selection_tables(log) -> str:
    """The density searches behind ``mnist_cnn.DENSITIES`` and ``minilm.DENSITY``, as Markdown."""
    from eiesim.workloads import minilm, mnist_cnn
    from eiesim.workloads.mnist import load_mnist

    cnn = mnist_cnn.load_cnn()
    d = load_mnist()
    log("mnist-cnn-fc: conv features of the 10,000 validation digits ...")
    best, table = mnist_cnn.select_densities(cnn, mnist_cnn.conv_features(cnn, d["x_valid"]), d["y_valid"])
    lines = ["mnist-cnn-fc, MNIST validation split (10,000 digits), float32 NumPy on the decoded weights; "
             f"rule: fewest kept weights within 0.1 point of the dense head; chosen: FC1 {best[0]:.2f}, FC2 {best[1]:.2f}",
             "", "| FC1 kept | FC2 kept | weights kept | validation top-1 |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {t['fc1']:.2f} | {t['fc2']:.2f} | {t['kept']:,} | {100 * t['accuracy']:.2f} % |" for t in table]
    log("minilm-ffn: density x code-width grid on the dev sentences ...")
    bert = minilm.load_bert()
    tok = minilm.WordPiece(minilm.find_model_dir() / "model" / "vocab.txt")
    best, table = minilm.select_density(bert, tok)
    lines += ["", f"minilm-ffn, {len(minilm.DEV_SENTENCES)} dev sentences (not the evaluation set), float32 NumPy "
                  f"on the decoded weights; rule: sparsest 4-bit density with mean cosine >= 0.85; chosen: {best:.2f}",
              "", "| kept (every layer) | code bits | mean cosine to the original |", "| ---: | ---: | ---: |"]
    lines += [f"| {t['density']:.2f} | {t['code_bits']} | {t['mean_cosine']:.4f} |" for t in table]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results)")
    ap.add_argument("--json", type=Path, default=None, help="JSON results (default DIR/real_workloads.json)")
    ap.add_argument("--mnist-inputs", type=int, default=10000, help="MNIST test digits (default all 10,000)")
    ap.add_argument("--minilm-inputs", type=int, default=16, help="sentences (default all 16)")
    ap.add_argument("--lstm-inputs", type=int, default=10,
                    help="recordings / text lines of the LSTM workloads (default 10)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--selection", action="store_true",
                    help="only print how the one-shot densities were chosen (MNIST validation split, "
                         "MiniLM dev sentences) and write DIR/real_workloads_selection.md")
    args = ap.parse_args(argv)
    if args.mnist_inputs < 1 or args.minilm_inputs < 1:
        ap.error("--mnist-inputs and --minilm-inputs must be >= 1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if args.selection:
        md = selection_tables(log)
        print(md)
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "real_workloads_selection.md", md.encode())
        return 0
    from eiesim.workloads.registry import REGISTRY

    counts = {"mnist-cnn-fc": args.mnist_inputs, "minilm-ffn": args.minilm_inputs,
              "silero-vad-lstm": args.lstm_inputs, "ocr-lstm": args.lstm_inputs}
    results, not_run = [], []
    try:
        results.append(run_lenet(log))
        fc8 = run_fc8(log)
        if fc8 is not None:
            results.append(fc8)
        for spec in REGISTRY:
            if spec.name == "lenet-300-100":
                continue
            if not spec.installed:
                not_run.append(f"{spec.name} (not installed: {spec.install_command})")
                continue
            results.append(run_registered(spec.name, counts[spec.name], log))
    except EieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    md = markdown(results, not_run)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "real_workloads.md", md.encode())
    doc = {"command": "python scripts/reproduce_real_workloads.py " + " ".join(argv or sys.argv[1:]),
           "results": results, "grouped": {r["workload"]: grouped(r) for r in results}, "not_run": not_run}
    write_atomic(args.json or args.out / "real_workloads.json", json_bytes(doc))
    if not args.no_plot:
        plot(results, args.out / "real_workloads.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
