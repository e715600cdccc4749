"""The CPU-baseline tables and figure, and scripts/measure_cpu_baseline.py end to end on one small layer."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from eiesim.energy.baselines import HEADLINE, PLATFORMS
from eiesim.errors import EieInputError
from eiesim.report.cpu_baseline import MEASURED_KEYS, PAPER_KEYS, plot_cpu_baseline, render_cpu_baseline_markdown

REPO = Path(__file__).resolve().parents[2]


def _timing(kind, batch, us):
    return {"kind": kind, "batch": batch, "time_per_call_s": us * batch * 1e-6, "time_per_vector_s": us * 1e-6,
            "iqr_rel": 0.1, "min_time_per_call_s": us * batch * 0.9e-6, "samples": 21, "calls_per_sample": 3, "energy_per_vector_j": 5.0 * us * 1e-6,
            "power_w": 5.0, "energy_method": "declared", "energy_source": "lab notebook p. 7"}


def _doc():
    """A hand-made document: one layer, EIE 10 µs and 6 µJ; the CPU 1,000 / 500 / 100 / 50 µs per vector."""
    us = {"dense_b1": 1000.0, "sparse_b1": 500.0, "dense_b64": 100.0, "sparse_b64": 50.0}
    layer = {
        "name": "Alex-8", "bench": "Alex-8", "synthetic": True, "eie_time_us": 10.0, "paper_eie_us": 9.9,
        "measured": {k: _timing(k.split("_")[0], 1 if k.endswith("b1") else 64, v) for k, v in us.items()},
        "speedup": {k: v / 10.0 for k, v in us.items()},
        "speedup_fastest": {k: 0.9 * v / 10.0 for k, v in us.items()},
        "energy_ratio": {k: 5.0 * v * 1e-6 / 6e-6 for k, v in us.items()},
        "paper_us": {k: 1134.9 for k, _ in PAPER_KEYS},
        "paper_speedup": {k: 114.6 for k, _ in PAPER_KEYS},
        "paper_energy_ratio": {k: 14557.0 for k, _ in PAPER_KEYS},
    }
    gm = {"layers": ["Alex-8"]}
    for key in ("speedup", "energy_ratio", "paper_speedup", "paper_energy_ratio"):
        gm[key] = dict(layer[key])
    gm["speedup_fastest"] = dict(layer["speedup_fastest"])
    return {
        "kind": "eiesim.cpu_baseline",
        "host": {"cpu_model": "Test CPU (family 1, model 2)", "cpu_count": 4, "hypervisor": False, "blas": "openblas 0.3",
                 "blas_threads": 1, "blas_threads_source": "environment OPENBLAS_NUM_THREADS", "scipy": "1.0",
                 "numpy": "2.0", "python": "3.11"},
        "power": {"method": "declared", "watts": 5.0, "source": "lab notebook p. 7"},
        "rapl_probe": "no RAPL package zone under /x",
        "settings": {"repeats": 21, "min_sample_s": 5e-3, "load_avg_1min": {"start": 3.25, "end": 1.0}},
        "paper": {"headline": HEADLINE, "eie_power_w": 0.6,
                  "platforms": {p: {"label": v.label, "power_w": v.power_w} for p, v in PLATFORMS.items()}},
        "layers": [layer],
        "geomean": gm,
    }


def test_markdown_tables():
    md = render_cpu_baseline_markdown(_doc())
    assert "lab notebook p. 7" in md and "declared power 5 W" in md
    assert "openblas 0.3, 1 thread(s) (environment OPENBLAS_NUM_THREADS)" in md
    lines = md.splitlines()
    assert ("| spread | interquartile range / median of the samples: median 10 %, largest 10 % over 4 series; "
            "1-min load average 3.2 at the start, 1.0 at the end |") in lines
    # time table: EIE 10.0, paper 9.90, then the four measured times, then the paper's CPU dense / sparse
    assert "| Alex-8 | 10.0 | 9.90 | 1,000 | 500 | 100 | 50.0 | 1,135 | 1,135 |" in lines
    # speedups 100x, 50x, 10x, 5x; the paper's 114.6 -> 115x
    assert "| Alex-8 | 100× | 50.0× | 10.0× | 5.00× | " + " | ".join(["115×"] * 6) + " |" in lines
    # energy ratios: 5 W x 1,000 µs = 5 mJ over 6 µJ = 833x ...
    assert "| Alex-8 | 833× | 417× | 83.3× | 41.7× | " + " | ".join(["14,557×"] * 6) + " |" in lines
    assert "| geomean, fastest sample | 90.0× | 45.0× | 9.00× | 4.50× |  |  |  |  |  |  |" in lines
    assert "| paper headline (dense) |  |  |  |  | 189× |  | 13.0× |  | 307× |  |" in lines
    assert "| paper headline (dense) |  |  |  |  | 24,000× |  | 3,400× |  | 2,700× |  |" in lines
    assert [k for k, _ in MEASURED_KEYS] == ["dense_b1", "sparse_b1", "dense_b64", "sparse_b64"]
    with pytest.raises(EieInputError, match="cpu_baseline"):
        render_cpu_baseline_markdown({"kind": "eiesim.reproduce_eie", "layers": []})


def test_plot(tmp_path):
    fig = plot_cpu_baseline(_doc(), tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax_speed, ax_energy = fig.axes
    assert ax_speed.get_yscale() == "log" and "speedup" in ax_speed.get_ylabel()
    markers = [l for l in ax_speed.lines if l.get_gid() == "paper_marker:speedup"]
    assert markers and markers[0].get_ydata()[0] == 189.0
    markers = [l for l in ax_energy.lines if l.get_gid() == "paper_marker:energy_ratio"]
    assert markers and markers[0].get_ydata()[0] == 24000.0
    ticks = [l for l in ax_speed.lines if l.get_gid() == "fastest:dense_b1"]
    assert list(ticks[0].get_ydata()) == pytest.approx([90.0, 90.0])
    heights = sorted(round(p.get_height(), 6) for p in ax_speed.patches)
    assert heights == sorted([100.0, 50.0, 10.0, 5.0, 114.6, 114.6] * 2)  # the layer and the geomean group
    assert "Test CPU" in fig.texts[0].get_text() and "5 W declared" in fig.texts[0].get_text()


def _script():
    spec = importlib.util.spec_from_file_location("measure_cpu_baseline", REPO / "scripts" / "measure_cpu_baseline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_one_layer_carries_the_declared_power(tmp_path, capsys):
    mod = _script()
    code = mod.main(["--out", str(tmp_path), "--layers", "NT-We", "--repeats", "1", "--min-sample-ms", "0.1",
                     "--tdp-w", "12.5", "--tdp-source", "wall meter, this test", "--no-plot", "--no-rapl"])
    assert code == 0
    doc = json.loads((tmp_path / "cpu_baseline.json").read_text())
    assert doc["power"] == {"method": "declared", "watts": 12.5, "source": "wall meter, this test"}
    (layer,) = doc["layers"]
    assert layer["name"] == "NT-We" and layer["shape"] == [600, 4096]
    assert layer["paper_us"]["cpu_dense"] == 605.0 and layer["paper_eie_us"] == 8.0
    for k, t in layer["measured"].items():
        assert t["energy_source"] == "wall meter, this test" and t["power_w"] == 12.5
        assert t["batch"] == (1 if k.endswith("b1") else 64)
        assert layer["speedup"][k] == pytest.approx(t["time_per_vector_s"] / (layer["eie_time_us"] * 1e-6))
        assert layer["speedup_fastest"][k] <= layer["speedup"][k] * (1 + 1e-12)
    assert layer["eie_energy_j"] == pytest.approx(0.6 * layer["eie_time_us"] * 1e-6, rel=1e-6)
    md = (tmp_path / "cpu_baseline.md").read_text()
    assert "wall meter, this test" in md and "not used (--no-rapl)" in md
    assert md in capsys.readouterr().out


def test_script_refuses_power_without_source(tmp_path, capsys):
    mod = _script()
    with pytest.raises(SystemExit) as exc:
        mod.main(["--out", str(tmp_path), "--tdp-w", "40"])
    assert exc.value.code == 2
    assert "--tdp-source" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_script_real_fc8_alone(tmp_path, fc8_dir, capsys):
    """--layers FC8 measures the authors' FC8 by itself: EIE 7,926 cycles (queues of 7, as in the README)."""
    mod = _script()
    assert mod.main(["--out", str(tmp_path), "--layers", "FC8", "--repeats", "1", "--min-sample-ms", "0.1",
                     "--no-plot", "--no-rapl"]) == 0
    doc = json.loads((tmp_path / "cpu_baseline.json").read_text())
    (layer,) = doc["layers"]
    assert layer["name"] == "Alex-8 (real FC8)" and layer["synthetic"] is False
    assert layer["shape"] == [1000, 4096] and layer["eie_cycles"] == 7926
    assert doc["geomean"]["synthetic"] is False
    md = (tmp_path / "cpu_baseline.md").read_text()
    assert "| **geomean (1)** |" in md and "default: 4.375 W x 1 core in use" in md
