"""ddddocr's text-line recogniser on EIE: a bidirectional LSTM(512) and an 8210-way FC (``ocr-lstm``).

Model: ``ddddocr==1.6.1`` (MIT), file ``ddddocr/common.onnx`` (the package's "beta" model,
charset ``CHARSET_BETA`` of ``ddddocr/charsets.py``), read with the ``onnx`` package
(``onnx.load`` + ``onnx.numpy_helper``); ddddocr itself is never imported (it pulls in
onnxruntime and OpenCV), and its charset file is read with :func:`ast.literal_eval`. The
packages (ddddocr 1.6.1, onnx 1.23.2 and what onnx needs: protobuf 7.36.2, typing-extensions
4.16.0, ml-dtypes 0.6.0) are installed pinned with their hashes, from the eiesim checkout::

    pip install --no-deps --require-hashes -r scripts/requirements/ocr-lstm.txt

Graph (102 nodes): input (1, 1, 64, W) grey levels / 255 -> 21 Conv (3 of stride 2) with SiLU
(``x * sigmoid(x)``) and residual Adds -> (64, 8, W/8) -> per column a 512-vector (channel-major)
-> ONNX ``LSTM`` bidirectional, hidden 512 (W, R: (2, 2048, 512), gates i, o, f, c) -> concat
(1024) -> Gemm 8210 x 1024 -> greedy CTC (blank = index 0).

EIE runs, per time step, each direction's gate matrix ``[W | R]`` (2048 x 1024 + bias; the
paper's NT-LSTM class) as an ``lstm`` layer and the 8210 x 1024 output layer (NT-Wd's class) as
an ``fc`` layer; the CNN, the gate functions and the CTC decoding run in NumPy on the host.
Compression: magnitude pruning (:data:`DENSITIES`) and 4-bit codebooks, **without retraining**.

Inputs: words of :data:`WORDS` rendered with Pillow in the DejaVu fonts that matplotlib ships,
at several sizes; quality = exact-string accuracy of the decoded text against the rendered word
(the model is case-insensitive: compared in lower case).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..compress.pipeline import compress_arrays
from ..errors import EieInputError
from ..format.lstm import gate_matrix
from .registry import Workload, get_spec

__all__ = ["WORDS", "DENSITIES", "render_word", "load_workload"]

#: Fixed word list (rendered in order, cycling through fonts and sizes).
WORDS = ("sparse", "matrix", "vector", "energy", "engine", "pruning", "cycles", "memory", "codebook",
         "layer", "weights", "silicon", "network", "inference", "compression", "queue")
#: Fractions kept: each LSTM direction's [W | R], the output layer.
DENSITIES = (0.3, 0.2)
_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
_SIZES = (36, 40, 44)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("ddddocr")
    if spec is None or not spec.submodule_search_locations:
        raise EieInputError(f"ddddocr is not installed: {get_spec('ocr-lstm').install_command}")
    return Path(list(spec.submodule_search_locations)[0])


def _charset(pkg: Path) -> list:
    tree = ast.parse((pkg / "charsets.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "CHARSET_BETA":
            return list(ast.literal_eval(node.value))
    raise EieInputError(f"{pkg / 'charsets.py'}: no CHARSET_BETA")


def render_word(word: str, k: int) -> np.ndarray:
    """``word`` in black on white, font and size picked by ``k``, scaled to height 64 (ddddocr's input).

    Returns
    -------
    numpy.ndarray of float32, shape (1, 64, W)
        Grey levels / 255.
    """
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    font = ImageFont.truetype(str(font_dir / _FONTS[k % len(_FONTS)]), _SIZES[k % len(_SIZES)])
    left, top, right, bottom = font.getbbox(word)
    im = Image.new("L", (right - left + 20, bottom - top + 20), 255)
    ImageDraw.Draw(im).text((10 - left, 10 - top), word, fill=0, font=font)
    im = im.resize((int(im.size[0] * 64 / im.size[1]), 64))
    return (np.asarray(im, np.float32) / 255.0)[None]


def _conv2d(x, w, b, stride, pad):
    """Conv2d (cross-correlation, like ONNX Conv): x (C, H, W), w (O, C, kh, kw) -> (O, H', W')."""
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    cols = np.empty((c, kh, kw, ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
    y = np.tensordot(w.reshape(o, -1), cols.reshape(-1, ho * wo), axes=(1, 0)).reshape(o, ho, wo)
    return (y + b[:, None, None]).astype(np.float32)


def _cnn(graph, weights, img):
    """The CNN part of the graph up to the LSTM input: (T, 512) per column, channel-major."""
    import onnx

    vals = {graph.input[0].name: img}
    for n in graph.node:
        if n.op_type == "Conv":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            if a.get("group", 1) != 1 or len(set(a["pads"])) != 1 or len(set(a["strides"])) != 1:
                raise EieInputError(f"common.onnx: Conv {n.name!r} has attributes this front end does not run: {a}")
            vals[n.output[0]] = _conv2d(vals[n.input[0]], weights[n.input[1]], weights[n.input[2]],
                                        a["strides"][0], a["pads"][0])
        elif n.op_type == "Sigmoid":
            vals[n.output[0]] = (1.0 / (1.0 + np.exp(-vals[n.input[0]]))).astype(np.float32)
        elif n.op_type in ("Mul", "Add") and all(i in vals for i in n.input):
            a, b = vals[n.input[0]], vals[n.input[1]]
            vals[n.output[0]] = a * b if n.op_type == "Mul" else a + b
        elif n.op_type == "Transpose":  # (64, 8, T) -> (T, 64 * 8): the reshape the graph does next
            x = vals[n.input[0]]
            return np.ascontiguousarray(np.transpose(x, (2, 0, 1)).reshape(x.shape[2], -1))
    raise EieInputError("common.onnx: no Transpose after the CNN (unexpected graph)")


def load_workload(n_inputs: int, seed: int = 0) -> Workload:
    """The OCR model on ``n_inputs`` rendered words (registry name ``ocr-lstm``).

    Parameters
    ----------
    n_inputs : int
        Words to render (cycling over :data:`WORDS`, fonts and sizes).
    seed : int
        Starting offset in the word list.

    Returns
    -------
    Workload
        Layers ``lstm_fw``, ``lstm_bw`` (kind ``lstm``, 2048 x 1024 + bias) and ``fc``
        (8210 x 1024 + bias); metric exact-string accuracy.

    Raises
    ------
    EieInputError
        Packages absent (names the install command), an unexpected graph.
    """
    import onnx
    from onnx import numpy_helper

    pkg = _package_dir()
    path = pkg / "common.onnx"
    model = onnx.load(str(path))
    g = model.graph
    weights = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in g.initializer}
    lstm = [n for n in g.node if n.op_type == "LSTM"]
    gemm = [n for n in g.node if n.op_type == "Gemm"]
    if len(lstm) != 1 or len(gemm) != 1:
        raise EieInputError(f"{path}: expected one LSTM and one Gemm node")
    w_all, r_all, b_all = (weights[lstm[0].input[i]] for i in (1, 2, 3))
    h = r_all.shape[2]
    dense = []
    for d in range(2):
        dense.append(gate_matrix(w_all[d], r_all[d], b_all[d][:4 * h], b_all[d][4 * h:], source="onnx"))
    w_fc, b_fc = weights[gemm[0].input[1]], weights[gemm[0].input[2]]
    dense.append((w_fc, b_fc))
    res = compress_arrays([dense[0][0]], [dense[0][1]], ["lstm_fw"], densities=DENSITIES[0], huffman=False)
    res_b = compress_arrays([dense[1][0]], [dense[1][1]], ["lstm_bw"], densities=DENSITIES[0], huffman=False)
    res_fc = compress_arrays([w_fc], [b_fc], ["fc"], densities=DENSITIES[1], huffman=False)
    layers = (res.layers[0], res_b.layers[0], res_fc.layers[0])
    charset = _charset(pkg)
    words = [WORDS[(seed + k) % len(WORDS)] for k in range(n_inputs)]
    feats = [_cnn(g, weights, render_word(wd, seed + k)) for k, wd in enumerate(words)]

    def forward(run):
        texts = []
        for x in feats:
            fw = run(0, x)
            bw = run(1, x[::-1].copy())[::-1]
            logits = run(2, np.ascontiguousarray(np.concatenate([fw, bw], axis=1)))
            prev, out = -1, []
            for k in logits.argmax(axis=1):
                if k != prev and k != 0:
                    out.append(charset[k])
                prev = k
            texts.append("".join(out))
        return texts

    def score(texts) -> float:
        return float(np.mean([t.lower() == w.lower() for t, w in zip(texts, words)]))

    from .run import numpy_runner

    probe = Workload(name="ocr-lstm", layers=layers, kinds=("lstm", "lstm", "fc"), forward=forward, score=score,
                     metric="", original_quality=0.0, n_inputs=len(words), dense=tuple(dense))
    original = score(forward(numpy_runner(probe, compressed=False)))
    h256 = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {
        "package": "ddddocr==1.6.1", "install": get_spec("ocr-lstm").install_command,
        "weights": "ddddocr/common.onnx", "sha256": h256, "charset": "ddddocr/charsets.py CHARSET_BETA",
        "inputs": {"words": words, "fonts": "matplotlib's DejaVu TTFs", "sizes": list(_SIZES)},
        "compression": {"method": "magnitude prune + 4-bit k-means codebook (bias in the codebook)",
                        "density": {"lstm": DENSITIES[0], "fc": DENSITIES[1]}, "retrained": False,
                        "gate_order": "onnx (i, o, f, c) converted to pytorch (i, f, g, o)"},
    }
    return Workload(name="ocr-lstm", layers=layers, kinds=("lstm", "lstm", "fc"), forward=forward, score=score,
                    metric="exact-string accuracy (lower case) of the CTC-decoded words", original_quality=original,
                    n_inputs=len(words), dense=tuple(dense), metadata=meta)
