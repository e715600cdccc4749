"""``prune._top_k`` (the O(n) top-k behind magnitude pruning) selects what a stable sort of -|w| selects."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eiesim.compress.prune import _top_k, magnitude_mask, prune_round


def _sorted_top_k(mag, k):
    return np.sort(np.argsort(-mag, kind="stable")[:k])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=80), st.data())
def test_same_set_as_the_stable_sort_with_many_ties(vals, data):
    mag = np.abs(np.asarray(vals, dtype=np.float64))
    k = data.draw(st.integers(0, mag.size))
    got = _top_k(mag, k)
    assert got.size == k
    np.testing.assert_array_equal(np.sort(got), _sorted_top_k(mag, k))


def test_hand_worked_ties_go_to_the_lower_index():
    # |w| = 1, 3, 2, 3, 2, 0: the 3 largest are the two 3s (index 1, 3) and the first 2 (index 2)
    w = np.array([1.0, -3.0, 2.0, 3.0, -2.0, -0.0])
    assert sorted(_top_k(np.abs(w), 3).tolist()) == [1, 2, 3]
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [False, True, True, True, False, False])
    prev = np.array([True, False, True, True, True, True])  # index 1 already pruned
    np.testing.assert_array_equal(prune_round(w, prev, density=0.5),
                                  [False, False, True, True, True, False])


def test_magnitude_mask_equals_the_sort_on_a_real_sized_layer():
    rng = np.random.default_rng(3)
    w = np.round(rng.standard_normal((300, 784)), 2).astype(np.float32)  # rounding makes many ties
    flat = np.abs(w.ravel()).astype(np.float64)
    for density in (0.0, 0.08, 0.5, 1.0):
        k = int(np.floor(density * w.size + 0.5))
        want = np.zeros(w.size, bool)
        want[np.argsort(-flat, kind="stable")[:k]] = True
        np.testing.assert_array_equal(magnitude_mask(w, density).ravel(), want)
