"""Masked SGD (pruned weights stay exactly 0), gradients, and iterative pruning schedules."""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.compress.pipeline import PruneRound, prune_retrain
from eiesim.compress.prune import master_std, prune_round
from eiesim.compress.train import (
    MLP, MaskedSGD, SGDState, accuracy, forward, init_mlp, loss_and_grads, train_sgd,
)
from eiesim.errors import EieInputError


def _bits(x) -> int:
    return int(np.asarray(x, dtype=np.float32).view(np.uint32))


def _toy(n=256, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = ((X[:, 0] - X[:, 1] + 0.5 * X[:, 2]) > 0).astype(np.int64)
    return X, y


# --------------------------------------------------------------------------- optimizer


def test_masked_sgd_pruned_weight_with_momentum_history_stays_zero():
    # A weight that had a large gradient history (velocity 5.0) and is then pruned,
    # with momentum 0.9, weight decay and a non-zero gradient at every step.
    w = np.array([[0.3, -0.7], [0.5, 0.2]], dtype=np.float32)
    params = MLP((w,), (np.zeros(2, np.float32),))
    state = SGDState((np.full((2, 2), 5.0, np.float32),), (np.ones(2, np.float32),))
    mask = np.array([[True, False], [True, True]])
    opt = MaskedSGD(params, momentum=0.9, weight_decay=1e-2, masks=[mask], state=state)
    assert _bits(opt.W[0][0, 1]) == 0 and opt.vW[0][0, 1] == 0  # applied on construction
    g = np.array([[1.0, -3.0], [2.0, 0.5]], dtype=np.float32)
    for step in range(6):
        opt.step([g], [np.ones(2, np.float32)], lr=0.1)
        assert _bits(opt.params.weights[0][0, 1]) == 0, f"step {step}"
        assert opt.state.velocity_weights[0][0, 1] == 0.0
    # the kept weights did move, driven by their own momentum history too
    assert opt.W[0][0, 0] != np.float32(0.3)
    assert params.weights[0][0, 1] == np.float32(-0.7)  # input untouched


def test_train_sgd_carried_momentum_cannot_revive_pruned_weight():
    X, y = _toy(64, 4)
    p0 = init_mlp((4, 6, 2), seed=1)
    p1, state = train_sgd(p0, X, y, epochs=2, lr=0.1, momentum=0.9, batch_size=8, seed=0,
                          return_state=True)
    # gradient history: the velocity of the weight we prune next is non-zero
    assert state.velocity_weights[0][2, 1] != 0.0
    mask0 = np.ones((6, 4), bool)
    mask0[2, 1] = False
    seen = []

    def check(t, p):
        seen.append(t)
        assert _bits(p.weights[0][2, 1]) == 0, f"step {t}"

    out, _ = train_sgd(p1, X, y, epochs=2, lr=0.1, momentum=0.9, weight_decay=1e-3, batch_size=8,
                       seed=1, masks=[mask0, None], state=state, return_state=True, callback=check)
    assert seen == list(range(1, 17))
    assert _bits(out.weights[0][2, 1]) == 0


def test_loss_and_grads_match_finite_differences():
    X, y = _toy(16, 3, seed=2)
    p = init_mlp((3, 5, 2), seed=3)
    p = MLP(tuple(w.astype(np.float64) for w in p.weights), tuple(b + 0.1 for b in p.biases))
    _, gW, gB = loss_and_grads(p, X, y)

    def loss(params):
        z = forward(params, X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    eps = 1e-3
    for k, (i, j) in [(0, (1, 2)), (1, (0, 3)), (0, (4, 0))]:
        W = [w.copy().astype(np.float32) for w in p.weights]
        W[k][i, j] += eps
        up = loss(MLP(tuple(W), p.biases))
        W[k][i, j] -= 2 * eps
        dn = loss(MLP(tuple(W), p.biases))
        assert gW[k][i, j] == pytest.approx((up - dn) / (2 * eps), abs=2e-3)
    assert gB[1].shape == (2,) and abs(float(gB[1].sum())) < 1e-6  # softmax rows sum to 1


# --------------------------------------------------------------------------- prune rounds


def test_prune_round_density_subset_and_never_unprune():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((20, 30)).astype(np.float32)
    m1 = prune_round(w, density=0.5)
    assert m1.sum() == 300
    # the retrained weights changed: a previously pruned weight is now the largest
    w2 = w * m1
    w2[~m1] = 0.0
    i = np.flatnonzero(~m1.ravel())[0]
    w2.ravel()[i] = 100.0
    m2 = prune_round(w2, m1, density=0.2)
    assert m2.sum() == 120
    assert not (m2 & ~m1).any()  # subset: the revived value is ignored
    assert not m2.ravel()[i]
    # a "looser" density than the current one prunes nothing more and revives nothing
    m3 = prune_round(w2, m2, density=0.9)
    assert np.array_equal(m3, m2)


def test_prune_round_quality_uses_master_std():
    w = np.array([[-3.0, -1.0], [1.0, 3.0]])
    std = master_std(w)  # sqrt(5)
    assert std == pytest.approx(np.sqrt(5.0))
    m1 = prune_round(w, quality=0.5)  # threshold 1.118: keeps +-3
    assert m1.tolist() == [[True, False], [False, True]]
    # round 2 on the pruned layer: its own std would be smaller; with std_ref = master std
    # quality 1.0 -> 2.236 keeps the 3s, quality 1.5 -> 3.354 prunes all
    wp = w * m1
    assert prune_round(wp, m1, quality=1.0, std_ref=std).tolist() == m1.tolist()
    assert not prune_round(wp, m1, quality=1.5, std_ref=std).any()
    with pytest.raises(EieInputError):
        prune_round(w, density=0.5, quality=1.0)
    with pytest.raises(EieInputError):
        prune_round(w, np.ones((3, 3), bool), density=0.5)


def test_prune_retrain_schedule_on_synthetic_data():
    X, y = _toy(512, 8, seed=5)
    base = train_sgd(init_mlp((8, 32, 2), seed=0), X, y, epochs=8, lr=0.1, batch_size=32, seed=0)
    sched = [PruneRound(densities=(0.5, 0.75), epochs=2, lr=0.05),
             PruneRound(densities=(0.25, 0.5), epochs=3, lr=0.05)]
    res = prune_retrain(base, X, y, sched, batch_size=32, seed=0, X_val=X, y_val=y)
    assert [h["densities"] for h in res.history] == [[0.5, 0.75], [0.25, 0.5]]
    for w, m in zip(res.params.weights, res.masks):
        assert np.all(w.view(np.uint32)[~m] == 0)
    assert accuracy(res.params, X, y) > 0.9
    assert res.master_stds == tuple(master_std(w) for w in base.weights)
    with pytest.raises(EieInputError):
        prune_retrain(base, X, y, [PruneRound(densities=(0.5,))])
