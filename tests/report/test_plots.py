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
    (tmp_path / "figs").mkdir()  # an output folder must exist (one rule for every output)
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


def test_ratio_plots_mark_the_papers_headline_values(repro_doc):
    """Issue 9 §4: speedup.png / energy_efficiency.png mark 189x/13x/307x and 24,000x/3,400x/2,700x."""
    doc, _ = repro_doc
    for key, head, expect in (("speedup", "speedup", {"cpu": 189, "gpu": 13, "mgpu": 307}),
                              ("energy_ratio", "energy", {"cpu": 24000, "gpu": 3400, "mgpu": 2700})):
        assert doc["headline"][head] == pytest.approx(expect)
        ax = plot_ratios(doc, key).axes[0]
        lines = {l.get_gid(): l for l in ax.get_lines() if l.get_gid()}
        for p, v in expect.items():
            assert lines[f"paper:{p}"].get_ydata()[0] == pytest.approx(v)
            marker = lines[f"paper_marker:{p}"]
            assert marker.get_ydata()[0] == pytest.approx(v)
            assert f"{v:,}×" in marker.get_label()
        assert "paper" in ax.get_title()


def test_energy_breakdown_titles_labels_and_small_categories(repro_doc):
    """Issue 9 §4: title in µJ (not 'Table II units'), readable labels, every category's share shown."""
    doc, _ = repro_doc
    fig = plot_energy_breakdown(doc)
    title = fig._suptitle.get_text()
    assert "µJ" in title and "units" not in title and "EIE benchmark layers" in title
    ax_mod = fig.axes[0]
    assert ax_mod.yaxis.label.get_fontsize() >= 12 and ax_mod.get_xticklabels()[0].get_fontsize() >= 11
    labels = [t.get_text() for t in ax_mod.get_legend().get_texts()]
    assert len(labels) == len(MODULE_ORDER) and all(l.endswith(" %") for l in labels)
    # the estimated CCU is far too thin to see as a bar: its share is in the legend
    ccu = [l for l in labels if l.startswith("LNZD/CCU")][0]
    tot = sum(l["energy"]["activity"]["total_pj"] / l["energy"]["activity"]["n_inputs"] for l in doc["layers"])
    share = sum(l["energy"]["activity"]["by_module_pj"]["lnzd_ccu"] / l["energy"]["activity"]["n_inputs"]
                for l in doc["layers"]) / tot
    assert ccu == f"LNZD/CCU (est.): {100 * share:.1f} %"


def test_energy_breakdown_single_layer_fills_its_panel(repro_doc):
    doc, _ = repro_doc
    one = {"layers": doc["layers"][:1], "source": "dump /x/alexnet_fc8_eie"}
    fig = plot_energy_breakdown(one)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    bar = ax.containers[0].patches[0]
    assert bar.get_width() / (hi - lo) >= 0.5  # old layout: 0.7 of 4.5 slots (16 %)
    assert "alexnet_fc8_eie" in fig._suptitle.get_text()
