"""float32 accumulators that pass the binary32 range are reported, not returned silently as inf."""

import warnings

import numpy as np
import pytest

from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import BACKENDS, simulate
from eiesim.sim.result import Float32OverflowWarning


def _layer():
    # 2 x 2, N = 2: row 0 holds 3e38 twice (overflows when both columns are active), row 1 holds 1.0
    cb = np.zeros(16, np.float32)
    cb[1], cb[2] = 3e38, 1.0
    w = np.array([[3e38, 3e38], [1.0, 0.0]], np.float32)
    return CompressedLayer.from_weights(w, cb, 2, name="big")


@pytest.mark.parametrize("backend", BACKENDS)
def test_overflow_to_inf_warns_naming_layer_and_count(backend):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = simulate(_layer(), np.array([1.0, 1.0], np.float32), backend=backend)
    assert [w.category for w in caught] == [Float32OverflowWarning]  # once, no numpy RuntimeWarning beside it
    assert "layer 'big': 1 of 2 float32 outputs overflowed" in str(caught[0].message)
    assert np.isposinf(r.output[0]) and r.output[1] == 1.0  # what float32 hardware holds: kept, and said


def test_finite_outputs_do_not_warn_and_warn_false_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = simulate(_layer(), np.array([1.0, 0.0], np.float32))  # one 3e38 term: finite
        assert r.output[0] == np.float32(3e38)
        simulate(_layer(), np.array([1.0, 1.0], np.float32), warn=False)
