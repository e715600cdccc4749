"""Issue 14 section 2: per-PE load, per-layer cycles and queue-occupancy pictures draw the run's numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.config import EIEConfig
from eiesim.format.layout import CompressedLayer
from eiesim.report.plots import plot_layers, plot_pe_load, plot_queue_timeline
from eiesim.sim.engine import simulate
from eiesim.sim.trace import pe_signals, trace_events_json

CB = np.array([0.0] + [i / 4 for i in range(1, 16)], dtype=np.float32)


@pytest.fixture(scope="module")
def lenet_doc(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "lenet.json"
    assert main(["simulate", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_pe_load_bars_are_the_json_cycles(lenet_doc):
    fig = plot_pe_load(lenet_doc)
    axes = fig.axes
    assert len(axes) == len(lenet_doc["layers"]) == 3
    for ax, layer in zip(axes, lenet_doc["layers"]):
        n = layer["n_inputs"]
        bars = [p for p in ax.patches]
        busy = np.array([b.get_height() for b in bars[: layer["n_pe"]]])
        idle = np.array([b.get_height() for b in bars[layer["n_pe"]: 2 * layer["n_pe"]]])
        np.testing.assert_allclose(busy, np.array(layer["pe_busy"]) / n)
        np.testing.assert_allclose(busy + idle, layer["cycles"] / n)
        assert layer["name"] in ax.get_title() and ax.get_ylabel() == "cycles per input"
        stall = ax.lines[0].get_ydata()
        np.testing.assert_allclose(stall, np.array(layer["pe_stall"]) / n)
    # the network's stall sums are the layers' counters seen per PE (ip1 stalls on this input set)
    assert sum(lenet_doc["layers"][0]["pe_stall"]) >= lenet_doc["layers"][0]["counters"]["ccu_stall_cycles"] > 0
    assert "LeNet-300-100" in fig._suptitle.get_text()


def test_layers_figure_cycles_and_energy(lenet_doc):
    fig = plot_layers(lenet_doc)
    assert len(fig.axes) == 1  # no energy in the document: cycles only
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [l["cycles"] / l["n_inputs"] for l in lenet_doc["layers"]])


def test_layers_figure_marks_the_papers_fc8_time(fc8_dir, tmp_path, lenet_doc):
    """EIE Table IV: Alex-8 (1000 x 4096) takes 9.9 µs = 7,920 cycles at 800 MHz on 64 PEs."""
    path = tmp_path / "fc8.json"
    assert main(["simulate", "--eie-dump", str(fc8_dir), "--fifo-depth", "8", "--json", str(path)]) == 0
    fig = plot_layers(json.loads(path.read_text()))
    marks = [l for l in fig.axes[0].lines if l.get_gid() == "paper:Alex-8"]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == [7920.0, 7920.0]
    assert "9.9 µs" in marks[0].get_label()
    assert fig.axes[0].patches[0].get_height() == 7896  # the simulated bar beside it
    assert not [l for l in plot_layers(lenet_doc).axes[0].lines if (l.get_gid() or "").startswith("paper:")]


@pytest.mark.parametrize("field, value, match", [
    ("pe_stall", "x", r"layers\[2\] \(ip3\)\.pe_stall: expected a list of numbers"),  # fuzz seed 4, results cli 9
    ("pe_stall", [1, 2], r"pe_stall: expected 64 values \(one per PE\), got 2"),
    ("pe_busy", [float("nan")] * 64, r"pe_busy: expected finite numbers >= 0"),
    ("cycles", True, r"cycles: expected a number"),
])
def test_damaged_per_pe_fields_are_refused_naming_layer_and_field(lenet_doc, field, value, match):
    """Regression (scripts/fuzz.py): a non-numeric pe_stall raised a ValueError traceback from `eiesim plot`."""
    import copy

    from eiesim.errors import EieInputError

    doc = copy.deepcopy(lenet_doc)
    if field == "pe_stall" and isinstance(value, str):
        doc["layers"][2]["pe_stall"] = list(doc["layers"][2]["pe_stall"])
        doc["layers"][2]["pe_stall"][61] = value
    else:
        doc["layers"][2][field] = value
    for plot in (plot_pe_load, plot_layers):
        with pytest.raises(EieInputError, match=match):
            plot(doc)


def test_queue_timeline_is_the_trace_occupancy():
    rng = np.random.default_rng(3)
    codes = np.where(rng.random((48, 30)) < 0.4, rng.integers(1, 16, (48, 30)), 0)
    layer = CompressedLayer.from_codes(codes, CB, 4)
    res = simulate(layer, np.ones(30, np.float32), EIEConfig(n_pe=4, fifo_depth=3), events=True)
    doc = trace_events_json(res.events, window=(5, 60), pes=[0, 1, 2, 3])
    fig = plot_queue_timeline(json.loads(json.dumps(doc)))
    img = fig.axes[0].images[0].get_array()
    for k in range(4):
        np.testing.assert_array_equal(img[k], pe_signals(res.events, k).occupancy[5:60])
    assert "CCU stall cycles" in fig._suptitle.get_text()


def test_figure_titles_name_the_workload():
    """Regression: the embedded network's source rendered as ')' in every figure title."""
    from eiesim.report.plots import _workload

    assert _workload({"source": "embedded LeNet-300-100 (traces/)"}, 3) == "embedded LeNet-300-100"
    assert _workload({"source": "dump /data/alexnet_fc8_eie/"}, 1) == "alexnet_fc8_eie"
    assert _workload({"source": "nets/lenet.eie"}, 3) == "lenet.eie"


def test_energy_layers_refuses_a_layer_without_its_breakdown():
    """Regression (scripts/fuzz.py seed 5, results api 10): a deleted 'activity' breakdown raised KeyError."""
    from eiesim.errors import EieInputError
    from eiesim.report.plots import energy_layers

    good = {"name": "ip1", "activity": {"total_pj": 1.0}, "paper": {"total_pj": 2.0}}
    doc = {"energy": {"layers": [good, {"name": "ip2", "paper": {"total_pj": 2.0}}]}}
    with pytest.raises(EieInputError, match=r"energy\.layers\[1\]: expected a layer name and the 'activity'"):
        energy_layers(doc)
    assert energy_layers(doc, "paper") == [("ip1", {"total_pj": 2.0}), ("ip2", {"total_pj": 2.0})]
    with pytest.raises(EieInputError, match=r"layers\[0\]\.energy: expected a layer name"):
        energy_layers({"layers": [{"name": "fc8", "energy": [1, 2]}]})
