"""Malformed inputs to the simulator raise typed errors (never a crash, never a silent result)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.errors import EieConfigError, EieError, EieFormatError, EieInputError
from eiesim.format.layout import CompressedLayer
from eiesim.sim.engine import BACKENDS, simulate
from eiesim.sim.functional import spmv_fixed, spmv_float32

CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)
CODES = np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]])


@pytest.fixture
def layer():
    return CompressedLayer.from_codes(CODES, CB, 2, name="tiny")


@pytest.fixture
def cfg():
    return EIEConfig(n_pe=2)


def _runners(cfg):
    """Every public entry point that takes an activation vector."""
    return {
        "kernel": lambda lay, a: simulate(lay, a, cfg, backend="kernel"),
        "reference": lambda lay, a: simulate(lay, a, cfg, backend="reference"),
        "kernel-fixed16": lambda lay, a: simulate(lay, a, cfg.replace(arith="fixed16")),
        "spmv_float32": lambda lay, a: spmv_float32(lay, a),
        "spmv_fixed": lambda lay, a: spmv_fixed(lay, a, cfg),
    }


RUNNERS = ["kernel", "reference", "kernel-fixed16", "spmv_float32", "spmv_fixed"]

BAD_ACTIVATIONS = {
    "too short": ([1.0, 2.0], "has 2 values"),
    "too long": (np.ones(4), "has 4 values"),
    "empty": (np.zeros(0), "has 0 values"),
    "2-D row": (np.ones((1, 3)), "1-D"),
    "2-D column": (np.ones((3, 1)), "1-D"),
    "scalar": (1.0, "1-D"),
    "None": (None, "1-D"),
    "NaN": ([1.0, np.nan, 0.0], "activation 1 is not finite"),
    "+inf": ([np.inf, 0.0, 0.0], "activation 0 is not finite"),
    "-inf float16": (np.array([0, 0, -np.inf], dtype=np.float16), "activation 2 is not finite"),
    "float64 beyond float32": (np.array([0.0, 1e300, 0.0]), "does not fit float32"),
    "strings": (["1", "2", "3"], "numeric"),
    "bytes dtype": (np.array([b"a", b"b", b"c"]), "numeric"),
    "object array": (np.array([1.0, None, 2.0], dtype=object), "numeric"),
    "object array of numbers": (np.array([1.0, 2.0, 3.0], dtype=object), "numeric"),
    "complex": (np.ones(3, dtype=complex), "numeric"),
    "datetime": (np.array(["2020-01-01"] * 3, dtype="datetime64[D]"), "numeric"),
    "ragged": ([[1.0], [2.0, 3.0], 4.0], "cannot be read"),
}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("case", list(BAD_ACTIVATIONS))
def test_bad_activations_raise_input_error(layer, cfg, runner, case):
    bad, msg = BAD_ACTIVATIONS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks out before the error
        with pytest.raises(EieInputError, match=msg) as info:
            _runners(cfg)[runner](layer, bad)
    assert "tiny" in str(info.value)  # the message names the layer
    assert isinstance(info.value, EieError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    "good",
    [
        [1, 0, 2],
        np.array([1, 0, 2], dtype=np.int64),
        np.array([1, 0, 2], dtype=np.uint8),
        np.array([1.0, 0.0, 2.0], dtype=np.float64),
        np.array([1.0, 0.0, 2.0], dtype=np.float16),
        np.array([1.0, 0.0, 2.0, 9.0], dtype=np.float32)[::1][:3],
        np.array([1.0, 9.0, 0.0, 9.0, 2.0], dtype=np.float32)[::2],  # non-contiguous view
    ],
)
def test_numeric_inputs_are_accepted_alike(layer, cfg, runner, good):
    run = _runners(cfg)[runner]
    expected = run(layer, np.array([1.0, 0.0, 2.0], dtype=np.float32))
    got = run(layer, good)
    if hasattr(expected, "output"):
        np.testing.assert_array_equal(got.output, expected.output)
        assert got.cycles == expected.cycles
    else:
        np.testing.assert_array_equal(got, expected)


def test_bool_activations(layer, cfg):
    r = simulate(layer, np.array([True, False, True]), cfg)
    np.testing.assert_array_equal(r.output, simulate(layer, [1.0, 0.0, 1.0], cfg).output)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_config_n_pe_mismatch(layer, backend):
    with pytest.raises(EieInputError, match="2 PEs .* n_pe = 4"):
        simulate(layer, [1.0, 0.0, 2.0], EIEConfig(n_pe=4), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_config_code_bits_mismatch(backend):
    cb3 = CB[:8]
    lay = CompressedLayer.from_codes(CODES, cb3, 2, code_bits=3)
    # default config: 4-bit codes
    with pytest.raises(EieInputError, match="3-bit codes.*code_bits = 4"):
        simulate(lay, [1.0, 0.0, 2.0], EIEConfig(n_pe=2), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_config_index_bits_mismatch(layer, backend):
    with pytest.raises(EieInputError, match="index_bits = 2"):
        simulate(layer, [1.0, 0.0, 2.0], EIEConfig(n_pe=2, index_bits=2, spmat_line_bits=48), backend=backend)


def test_default_config_follows_the_layer():
    lay = CompressedLayer.from_codes(np.minimum(CODES, 3), CB[:4], 3, code_bits=2, index_bits=2)
    r = simulate(lay, [1.0, 1.0, 1.0])
    assert r.n_pe == 3
    np.testing.assert_array_equal(r.output, spmv_float32(lay, [1.0, 1.0, 1.0]))


def test_default_config_for_an_entry_width_not_dividing_64():
    lay = CompressedLayer.from_codes(CODES, CB[:8], 3, code_bits=3, index_bits=2)
    r = simulate(lay, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(r.output, spmv_float32(lay, [1.0, 1.0, 1.0]))
    # 3 + 2 = 5-bit entries: the default line holds 8 of them (40 bits)
    assert EIEConfig.for_layer(lay).spmat_line_bits == 40


@pytest.mark.parametrize("backend", ["", "Kernel", "cuda", None, 1])
def test_unknown_backend(layer, cfg, backend):
    with pytest.raises(EieConfigError, match="backend"):
        simulate(layer, [1.0, 0.0, 2.0], cfg, backend=backend)


def test_spmv_fixed_needs_a_config(layer):
    with pytest.raises(EieConfigError, match="EIEConfig"):
        spmv_fixed(layer, [1.0, 0.0, 2.0], {"n_pe": 2})


# ------------------------------------------------------------------ layers that pass the cheap check only
def _z_out_of_range_layer():
    # cheap check passes (a decreasing ptr no longer does: issue 10 F1); z = 16 needs 5 bits
    return CompressedLayer(shape=(40, 1), n_pe=1, codebook=CB, ptr=[[0, 1]], v=[1], z=[16])


def _row_out_of_range_layer():
    # z = 5 decodes to row 5 of a 2-row layer
    return CompressedLayer(shape=(2, 1), n_pe=1, codebook=CB, ptr=[[0, 1]], v=[1], z=[5])


def _filler_at_end_layer():
    return CompressedLayer(shape=(40, 1), n_pe=1, codebook=CB, ptr=[[0, 1]], v=[0], z=[15])


@pytest.mark.parametrize(
    "make, msg, code",
    [
        (_z_out_of_range_layer, "relative index z = 16", "RELIDX-Z-RANGE"),
        (_row_out_of_range_layer, "local row 5", "FILLER-MISSING"),
        (_filler_at_end_layer, "ends with a filler", "FILLER-TRAILING"),
    ],
)
@pytest.mark.parametrize("runner", RUNNERS)
def test_broken_layers_are_rejected_before_simulation(make, msg, code, runner):
    lay = make()
    cfg = EIEConfig(n_pe=1)
    with pytest.raises(EieFormatError, match=msg) as ei:
        _runners(cfg)[runner](lay, np.ones(lay.n_in))
    assert ei.value.code == code  # issue 10 F6: the simulator's refusal carried code=None


# ------------------------------------------------------------------ negative activations are non-zeros
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arith", ["float32", "fixed16"])
def test_negative_activation_counts_as_nonzero(layer, backend, arith):
    """The authors' simulator tests ``> 0`` and drops negative inputs; EIE's LNZD detects ``!= 0``."""
    cfg = EIEConfig(n_pe=2, arith=arith)
    a = np.array([0.0, -1.5, 0.0], dtype=np.float32)
    r = simulate(layer, a, cfg, backend=backend)
    assert r.act_nonzeros == 1
    assert r.counters["broadcasts"] == 1
    assert r.counters["macs"] == 1  # W[1, 1] = codebook[3] = 0.75
    assert r.output.tolist() == [0.0, -1.125, 0.0]
    assert np.any(r.output != 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_zero_is_zero(layer, cfg, backend):
    r = simulate(layer, np.array([-0.0, -0.0, -0.0], dtype=np.float32), cfg, backend=backend)
    assert r.act_nonzeros == 0 and r.counters["broadcasts"] == 0


def test_non_layer_and_non_config_arguments_raise_typed_errors():
    lay = CompressedLayer.from_codes(CODES, CB[:8], 3, code_bits=3, index_bits=2)
    with pytest.raises(EieInputError, match="CompressedLayer"):
        simulate({"ptr": []}, [1.0])
    with pytest.raises(EieConfigError, match="EIEConfig"):
        simulate(lay, [1.0, 1.0, 1.0], {"n_pe": 3})


def test_a_network_run_needs_at_least_one_input():
    """``simulate_network`` on a (0, n_in) array returned a result of 0 cycles per input, while
    ``simulate_batch`` and the command line refuse it (fresh-user finding)."""
    from eiesim.format.network import Network
    from eiesim.sim.network import simulate_network

    rng = np.random.default_rng(0)
    net = Network((CompressedLayer.from_codes(rng.integers(0, 16, (6, 5)), np.r_[0.0, np.ones(15)].astype(np.float32),
                                              2),), activation="none", metadata={})
    for x in (np.zeros((0, 5), np.float32), np.zeros((0, 4), np.float32), np.zeros((3, 4), np.float32)):
        with pytest.raises(EieInputError, match=r"network inputs must have shape \(n >= 1, 5\), got \(\d, \d\)"):
            simulate_network(net, x)
    assert simulate_network(net, np.ones((1, 5), np.float32)).outputs.shape == (1, 6)


def test_an_integer_below_its_bound_is_worded_as_such():
    with pytest.raises(EieFormatError, match=r"shape\[0\] \(n_out\): 0 is not >= 1"):
        CompressedLayer.from_codes(np.ones((0, 5), np.int64), np.r_[0.0, np.ones(15)].astype(np.float32), 2)
