"""Figures drawn from saved results: files are written and the plotted values are the JSON's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from eiesim.errors import EieInputError
from eiesim.report.plots import (
    KIND_ORDER, MODULE_ORDER, plot_all, plot_energy_breakdown, plot_ratios, plot_throughput_efficiency,
)

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("reproduce_eie", REPO / "scripts" / "reproduce_eie.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def repro_doc(tmp_path_factory):
    """A reduced reproduction (two small synthetic layers + the real FC8 when present)."""
    out = tmp_path_factory.mktemp("repro")
    mod = _load_script()
    code = mod.main(["--layers", "NT-We", "NT-LSTM", "--no-host", "--no-explain", "--no-uniform",
                     "--no-plots", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "reproduction.json").read_text())
    return doc, out


def test_reproduction_json_contract(repro_doc):
    doc, out = repro_doc
    assert (out / "reproduction.md").read_text().startswith("## EIE reproduction")
    names = [l["name"] for l in doc["layers"]]
    assert names[:2] == ["NT-We", "NT-LSTM"]
    for l in doc["layers"]:
        for key in ("name", "sim_time_us", "paper_time_us", "synthetic", "speedup", "energy_ratio"):
            assert key in l
        assert set(l["speedup"]) == {f"{p}_{k}" for p in ("cpu", "gpu", "mgpu") for k in ("dense", "sparse")}
        assert l["speedup"]["cpu_dense"] == pytest.approx(l["baselines_us"]["cpu_dense"] / l["sim_time_us"])
        e_eie = 0.6 * l["sim_time_us"] * 1e-6
        e_cpu = doc["platforms"]["cpu"]["power_w"] * l["baselines_us"]["cpu_dense"] * 1e-6
        assert l["energy_ratio"]["cpu_dense"] == pytest.approx(e_cpu / e_eie)
        assert abs(l["sim_time_us"] / l["paper_time_us"] - 1) <= 0.30
    assert doc["layers"][0]["synthetic"] is True
    if len(names) == 3:  # real FC8 present
        real = doc["layers"][2]
        assert real["synthetic"] is False and abs(real["error_pct"]) <= 1.0


def _bar_heights(container):
    return np.array([r.get_height() for r in container.patches])


def test_ratio_bars_equal_json(repro_doc, tmp_path):
    doc, _ = repro_doc
    for key in ("speedup", "energy_ratio"):
        path = tmp_path / f"{key}.png"
        fig = plot_ratios(doc, key, path)
        assert path.stat().st_size > 10_000
        ax = fig.axes[0]
        assert ax.get_yscale() == "log"
        assert "log scale" in ax.get_ylabel()
        labels = [c.get_label() for c in ax.containers]
        assert labels == ["CPU dense", "CPU sparse", "GPU dense", "GPU sparse", "mGPU dense", "mGPU sparse"]
        gm = doc["geomean"]["synthetic"][key]
        for c in ax.containers:
            p, k = c.get_label().lower().split()
            expect = [l[key][f"{p}_{k}"] for l in doc["layers"]] + [gm[f"{p}_{k}"]]
            np.testing.assert_allclose(_bar_heights(c), expect, rtol=1e-12)
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks[:-1] == doc["layer_order"] and ticks[-1].startswith("geomean")


def test_energy_breakdown_equals_json(repro_doc, tmp_path):
    doc, _ = repro_doc
    path = tmp_path / "e.png"
    fig = plot_energy_breakdown(doc, path)
    assert path.is_file()
    ax_mod, ax_kind = fig.axes[:2]
    assert "µJ" in ax_mod.get_ylabel()
    for ax, order, key in ((ax_mod, MODULE_ORDER, "by_module_pj"), (ax_kind, KIND_ORDER, "by_kind_pj")):
        assert len(ax.containers) == len(order)
        for c, k in zip(ax.containers, order):
            expect = [l["energy"]["activity"][key][k] / 1e6 for l in doc["layers"]]
            np.testing.assert_allclose(_bar_heights(c), expect, rtol=1e-12)
        tops = sum(_bar_heights(c) for c in ax.containers)
        np.testing.assert_allclose(tops, [l["energy"]["activity"]["total_pj"] / 1e6 for l in doc["layers"]], rtol=1e-9)


def test_scatter_equals_json(repro_doc, tmp_path):
    doc, _ = repro_doc
    fig = plot_throughput_efficiency(doc, tmp_path / "s.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "GOP/s" in ax.get_xlabel() and "GOP/J" in ax.get_ylabel()
    by_gid = {c.get_gid(): c for c in ax.collections}
    eie = by_gid["eie:layers"].get_offsets()
    thr = [l["ops"] / (l["sim_time_us"] * 1e-6) / 1e9 for l in doc["layers"]]
    eff = [l["ops"] / (l["energy"]["paper"]["total_pj"] * 1e-12) / 1e9 for l in doc["layers"]]
    np.testing.assert_allclose(eie[:, 0], thr, rtol=1e-12)
    np.testing.assert_allclose(eie[:, 1], eff, rtol=1e-12)
    gpu = by_gid["gpu_dense:geomean"].get_offsets()[0]
    pw = doc["platforms"]["gpu"]["power_w"]
    g_thr = np.exp(np.mean([np.log(l["ops"] / (l["baselines_us"]["gpu_dense"] * 1e-6) / 1e9) for l in doc["layers"]]))
    g_eff = np.exp(np.mean([np.log(l["ops"] / (pw * l["baselines_us"]["gpu_dense"] * 1e-6) / 1e9) for l in doc["layers"]]))
    np.testing.assert_allclose(gpu, [g_thr, g_eff], rtol=1e-9)
    assert {f"{p}_{k}:geomean" for p in ("cpu", "gpu", "mgpu") for k in ("dense", "sparse")} | {"eie:geomean"} <= set(by_gid)


def test_plot_all_writes_four_files(repro_doc, tmp_path):
    doc, _ = repro_doc
    paths = plot_all(doc, tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted(
        ["energy_breakdown.png", "speedup.png", "energy_efficiency.png", "throughput_vs_efficiency.png"])
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reproduction_json_meets_the_plot_schema(repro_doc):
    """What scripts/reproduce_eie.py writes passes eiesim plot's schema; a string ratio does not (issue 10 T4)."""
    import copy

    from eiesim.commands._results import check_plot_results

    doc, _ = repro_doc
    check_plot_results(doc, "reproduction.json")
    bad = copy.deepcopy(doc)
    bad["layers"][1]["baselines_us"]["gpu_sparse"] = "12.5"
    with pytest.raises(EieInputError, match=r"field layers\[1\]\.baselines_us\.gpu_sparse: expected a finite number > 0"):
        check_plot_results(bad, "reproduction.json")


def test_plot_errors():
    with pytest.raises(EieInputError):
        plot_all({"layers": []}, "/tmp")
    with pytest.raises(EieInputError):
        plot_ratios({"layers": [{"name": "x"}]}, "speedup")
    with pytest.raises(EieInputError):
        plot_ratios({"layers": []}, "joules")
