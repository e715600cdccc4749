"""Load-balance-aware pruning: balanced-pe (ESE) and balanced-column masks, one shot and with retraining."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.compress.pipeline import PruneRound, compress_arrays, prune_retrain
from eiesim.compress.prune import BALANCE_MODES, balanced_mask, magnitude_mask, prune_round
from eiesim.compress.train import MLP, init_mlp
from eiesim.errors import EieInputError

# 4 x 3, all non-zero; PE0 owns rows 0 and 2, PE1 rows 1 and 3 (N = 2)
W_HAND = np.array([[9, 8, 7], [1, 2, 3], [6, 5, 4], [0.5, 0.25, 0.125]], dtype=np.float32)


def pe_counts(mask, n_pe):
    rows = np.nonzero(mask)[0]
    return np.bincount(rows % n_pe, minlength=n_pe)


def slice_counts(mask, n_pe):
    """(n_in, n_pe): kept weights of PE p in column j."""
    out = np.zeros((mask.shape[1], n_pe), dtype=np.int64)
    r, c = np.nonzero(mask)
    np.add.at(out, (c, r % n_pe), 1)
    return out


def test_hand_worked_balanced_pe():
    # plain magnitude keeps 9, 8, 7, 6: all four on PE0, none on PE1
    plain = magnitude_mask(W_HAND, 4 / 12)
    assert pe_counts(plain, 2).tolist() == [4, 0]
    # water-filling: level 0 = 9 (PE0), 3 (PE1); level 1 = 8 (PE0), 2 (PE1)
    m = balanced_mask(W_HAND, 4, 2, "balanced-pe")
    assert m.tolist() == [[True, True, False], [False, True, True], [False] * 3, [False] * 3]
    # a fifth weight: level 2 offers 7 (PE0) and 1 (PE1); the larger wins
    m5 = balanced_mask(W_HAND, 5, 2, "balanced-pe")
    assert m5.tolist() == [[True, True, True], [False, True, True], [False] * 3, [False] * 3]
    assert pe_counts(m5, 2).tolist() == [3, 2]


def test_hand_worked_balanced_column():
    # column quotas from plain magnitude (9, 8, 7, 6): col0 2, col1 1, col2 1
    m = balanced_mask(W_HAND, 4, 2, "balanced-column")
    # col0: PE0's 9 and PE1's 1 (one each); col1: 8 beats PE1's 2; col2: 7 beats 3
    assert m.tolist() == [[True, True, True], [True, False, False], [False] * 3, [False] * 3]
    assert slice_counts(m, 2).tolist() == [[1, 1], [1, 0], [1, 0]]


def test_zero_weights_are_never_kept_and_too_few_candidates_keep_all():
    w = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], np.float32)
    for mode in ("balanced-pe", "balanced-column"):
        assert balanced_mask(w, 2, 3, mode).sum() == 2
        assert (balanced_mask(w, 10, 3, mode) == (w != 0)).all()
        # a candidate set excludes positions
        cand = np.array([[False, True], [True, True], [True, True]])
        assert balanced_mask(w, 10, 3, mode, candidates=cand).tolist() == [[False, False], [False, True],
                                                                          [True, False]]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(w=np.ones(5), n_keep=1, n_pe=2, mode="balanced-pe"), "2-D"),
        (dict(w=np.ones((2, 2)), n_keep=-1, n_pe=2, mode="balanced-pe"), "n_keep"),
        (dict(w=np.ones((2, 2)), n_keep=1, n_pe=0, mode="balanced-pe"), "n_pe"),
        (dict(w=np.ones((2, 2)), n_keep=1, n_pe=2, mode="balanced-row"), "mode"),
        (dict(w=np.ones((2, 2)), n_keep=1, n_pe=2, mode="balanced-pe", candidates=np.ones((2, 3), bool)),
         "candidates"),
        (dict(w=np.array([[1.0, np.nan]]), n_keep=1, n_pe=2, mode="balanced-pe"), "NaN"),
    ],
)
def test_balanced_mask_bad_input(kwargs, needle):
    with pytest.raises(EieInputError, match=needle):
        balanced_mask(**kwargs)


def test_prune_round_balance_errors():
    w = np.ones((4, 4), np.float32)
    with pytest.raises(EieInputError, match="balance must be one of"):
        prune_round(w, density=0.5, balance="ese")
    with pytest.raises(EieInputError, match="needs n_pe"):
        prune_round(w, density=0.5, balance="balanced-pe")


@st.composite
def layers(draw):
    n_out = draw(st.integers(1, 24))
    n_in = draw(st.integers(1, 10))
    n_pe = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # few distinct magnitudes (ties) and some exact zeros
    w = rng.integers(-4, 5, size=(n_out, n_in)).astype(np.float32)
    if draw(st.booleans()):
        w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    k = draw(st.integers(0, n_out * n_in))
    return w, k, n_pe


def _check_groups(counts, caps):
    """count[p] <= count[q] + 1 whenever q kept fewer than its candidates."""
    short = counts < caps
    if short.any():
        assert counts.max() <= counts[short].min() + 1, (counts.tolist(), caps.tolist())


@settings(max_examples=150, deadline=None)
@given(layers())
def test_balanced_pe_property(case):
    w, k, n_pe = case
    m = balanced_mask(w, k, n_pe, "balanced-pe")
    cand = w != 0
    assert not (m & ~cand).any()
    assert m.sum() == min(k, cand.sum())
    P = min(n_pe, w.shape[0])  # PEs that own rows
    counts, caps = pe_counts(m, n_pe)[:P], pe_counts(cand, n_pe)[:P]
    _check_groups(counts, caps)
    if cand.all() and w.shape[0] % n_pe == 0:  # equal capacities: exactly +-1
        assert counts.max() - counts.min() <= 1
    # inside its quota, every PE keeps its largest weights
    for p in range(P):
        rows = np.arange(p, w.shape[0], n_pe)
        a, c = np.abs(w[rows]), cand[rows]
        kept, dropped = a[m[rows]], a[c & ~m[rows]]
        if kept.size and dropped.size:
            assert kept.min() >= dropped.max()


@settings(max_examples=150, deadline=None)
@given(layers())
def test_balanced_column_property(case):
    w, k, n_pe = case
    m = balanced_mask(w, k, n_pe, "balanced-column")
    cand = w != 0
    assert not (m & ~cand).any()
    assert m.sum() == min(k, cand.sum())
    # every column keeps as many as plain magnitude pruning keeps there
    plain = magnitude_mask(w, k / w.size) & cand if k < cand.sum() else cand
    assert (m.sum(axis=0) == plain.sum(axis=0)).all()
    P = min(n_pe, w.shape[0])
    sc, caps = slice_counts(m, n_pe)[:, :P], slice_counts(cand, n_pe)[:, :P]
    for j in range(w.shape[1]):
        _check_groups(sc[j], caps[j])
    if cand.all() and w.shape[0] % n_pe == 0:
        assert (sc.max(axis=1) - sc.min(axis=1)).max() <= 1


@settings(max_examples=60, deadline=None)
@given(layers(), st.sampled_from(("balanced-pe", "balanced-column")), st.integers(0, 2**31 - 1))
def test_rounds_only_shrink(case, mode, seed):
    """Round after round (new values in between, as retraining gives), a pruned weight never returns."""
    w, _, n_pe = case
    rng = np.random.default_rng(seed)
    mask = None
    for d in (0.7, 0.4, 0.15):
        new = prune_round(w, mask, density=d, balance=mode, n_pe=n_pe)
        if mask is not None:
            assert not (new & ~mask).any()
        assert new.sum() == min(int(np.floor(d * w.size + 0.5)), int(((w != 0) & (mask if mask is not None
                                                                                  else True)).sum()))
        mask = new
        w = (w + rng.standard_normal(w.shape).astype(np.float32)) * mask  # "retrained", pruned stay 0


def test_quality_rule_sets_how_many_balance_sets_which():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 20)).astype(np.float32)
    plain = prune_round(w, quality=1.0)
    for mode in ("balanced-pe", "balanced-column"):
        m = prune_round(w, quality=1.0, balance=mode, n_pe=8)
        assert m.sum() == plain.sum() and not (m == plain).all()
    assert np.ptp(pe_counts(prune_round(w, quality=1.0, balance="balanced-pe", n_pe=8), 8)) <= 1


def _toy_data(seed=0, n=256):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 24), dtype=np.float32)
    y = (X[:, :8].sum(axis=1) > X[:, 8:16].sum(axis=1)).astype(np.int64) + (X[:, 20] > 0.7)
    return X, y


@pytest.mark.parametrize("mode", ["balanced-pe", "balanced-column"])
def test_prune_retrain_balanced_masks_nested_and_zero(mode):
    """Each longer schedule's masks lie inside the shorter one's; pruned weights are exactly +0.0."""
    X, y = _toy_data()
    base = init_mlp((24, 16, 12, 3), 1)
    rounds = [PruneRound(densities=(0.6, 0.6, 0.8), epochs=1, lr=0.05),
              PruneRound(densities=(0.3, 0.35, 0.5), epochs=1, lr=0.05),
              PruneRound(densities=(0.12, 0.2, 0.4), epochs=1, lr=0.05)]
    n_pe = 4
    prev = None
    for r in range(1, 4):
        res = prune_retrain(base, X, y, rounds[:r], batch_size=32, seed=7, balance=mode, n_pe=n_pe)
        for k, (w, m) in enumerate(zip(res.params.weights, res.masks)):
            assert m.sum() == int(np.floor(rounds[r - 1].densities[k] * m.size + 0.5))
            zero = w[~m]
            assert (zero == 0).all() and not np.signbit(zero).any()
            if prev is not None:
                assert not (m & ~prev[k]).any()
            P = min(n_pe, m.shape[0])  # the 3-output layer leaves PE 3 without rows
            if mode == "balanced-pe":
                assert np.ptp(pe_counts(m, n_pe)[:P]) <= 1
            else:
                assert (np.ptp(slice_counts(m, n_pe)[:, :P], axis=1) <= 1).all()
        prev = res.masks


def test_prune_retrain_rejects_balance_without_n_pe():
    X, y = _toy_data()
    with pytest.raises(EieInputError, match="needs n_pe"):
        prune_retrain(init_mlp((24, 8, 3), 0), X, y, [PruneRound(densities=(0.5, 0.5))],
                      balance="balanced-pe")


@pytest.mark.parametrize("mode", BALANCE_MODES)
def test_compress_arrays_balance_in_layout(mode):
    """The EIE layout of a one-shot compression has the balance its mask was made with."""
    rng = np.random.default_rng(5)
    ws = [rng.standard_normal((48, 40)).astype(np.float32), rng.standard_normal((8, 48)).astype(np.float32)]
    bs = [rng.standard_normal(48).astype(np.float32), None]
    res = compress_arrays(ws, bs, ["a", "b"], densities=[0.1, 0.3], n_pe=16, huffman=False, balance=mode)
    for layer, w, d in zip(res.layers, ws, (0.1, 0.3)):
        kept = layer.to_dense() != 0
        assert kept.sum() == round(d * w.size)
        P = min(16, w.shape[0])
        if mode == "balanced-pe":
            assert np.ptp(pe_counts(kept, 16)[:P]) <= 1
        elif mode == "balanced-column":
            assert (np.ptp(slice_counts(kept, 16)[:, :P], axis=1) <= 1).all()
    if mode == "none":  # plain magnitude is far from balanced on this layer
        assert np.ptp(pe_counts(res.layers[0].to_dense() != 0, 16)) > 1


def test_compress_arrays_unknown_balance():
    with pytest.raises(EieInputError, match="balance must be one of"):
        compress_arrays([np.ones((2, 2), np.float32)], [None], ["a"], densities=0.5, balance="ese")
