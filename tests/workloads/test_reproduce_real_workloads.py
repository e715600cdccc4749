"""scripts/reproduce_real_workloads.py on the embedded LeNet trace (no model package needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reproduce_real_workloads",
                                                  REPO / "scripts" / "reproduce_real_workloads.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_real_workloads"] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop("reproduce_real_workloads", None)
    return mod


def test_lenet_row_matches_the_trace(script):
    res = script.run_lenet(lambda msg: None)
    with np.load(REPO / "traces" / "mnist_test100.npz") as z:
        # the trace's compressed logits are EIE's float32 accumulation order: the simulation reproduces them
        want = float(np.mean(np.argmax(z["pruned_quantized_logits"], 1) == z["labels"]))
    assert res["quality_simulated"] == want
    assert [L["shape"] for L in res["layers"]] == [[300, 784], [100, 300], [10, 100]]
    ip1 = res["layers"][0]
    assert ip1["n_inputs"] == 100
    assert ip1["load_balance_efficiency"] == pytest.approx(ip1["counters"]["macs"] / (ip1["cycles"] * 64))
    g = script.grouped(res)
    assert g[0]["dense_cycles_per_input"] == pytest.approx(300 * 784 / 64)
    md = script.markdown([res], ["x (not installed)"])
    total = sum(L["cycles"] for L in res["layers"]) / 100
    assert f"| lenet-300-100 | **all EIE layers** | | | | {total:,.0f} |" in md
    assert "| paper: Alex-8 |" in md and "Not run: x (not installed)." in md
