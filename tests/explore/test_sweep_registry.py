"""``eiesim sweep`` takes the real workloads of the registry by name (issue 13 section 2).

The run test uses the cheapest one, ``silero-vad-lstm`` (one recording: ~1.3 s to load), and skips
with the exact install commands where its package or the speech WAVs are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.errors import EieConfigError, EieInputError
from eiesim.explore import parse_spec, run_point
from eiesim.workloads import registry
from eiesim.workloads import silero_vad as sv
from eiesim.workloads.registry import get_spec, load
from eiesim.workloads.run import run_workload

SPEC = get_spec("silero-vad-lstm")


def _need_silero():
    if not SPEC.installed:
        pytest.skip(f"silero-vad-lstm needs {', '.join(SPEC.missing())}: {SPEC.install_command}")
    try:
        sv.speech_files()
    except EieInputError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("wl, key, words", [
    ({"registry": "alexnet"}, "'workloads[0].registry'", "unknown workload 'alexnet' (have lenet-300-100"),
    ({"registry": "lenet-300-100", "inputs": {"file": "x.npz"}}, "'workloads[0].inputs.file'",
     "prepares its own real inputs"),
    ({"registry": "lenet-300-100", "profile": "fc8"}, "'workloads[0].profile'", "benchmark workloads only"),
    ({"registry": "lenet-300-100", "network": "x.eie"}, "'workloads[0]'", "'registry'"),
])
def test_registry_workload_errors_name_the_key(wl, key, words):
    with pytest.raises(EieConfigError) as ei:
        parse_spec({"version": 1, "workloads": [wl]})
    assert key in str(ei.value) and words in str(ei.value)


def test_missing_package_is_refused_at_parse_with_the_install_command(monkeypatch):
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: None if name == "silero_vad" else real(name, *a))
    with pytest.raises(EieConfigError) as ei:
        parse_spec({"version": 1, "workloads": [{"registry": "silero-vad-lstm"}]})
    assert str(ei.value).endswith(
        "'workloads[0].registry': workload 'silero-vad-lstm' needs silero-vad: "
        "pip install --no-deps --require-hashes -r scripts/requirements/silero-vad-lstm.txt")


def test_registry_points_resolve_seeds_count_and_the_loaders_defaults():
    spec = parse_spec({"version": 1, "inputs": {"count": 3, "file": "shared.npz", "act_density": 0.5},
                       "workloads": [{"registry": "lenet-300-100", "seeds": [0, 1]}],
                       "grid": {"n_pe": [16, 64]}})
    assert len(spec.points) == 4
    s = spec.points[0].settings
    assert s["workload_spec"] == {"kind": "registry", "ref": "lenet-300-100", "seed": 0, "profile": None}
    assert s["inputs"] == {"count": 3}  # the shared file and density are for other kinds
    assert (s["code_bits"], s["index_bits"]) == (4, 4)
    assert [p.settings["workload"] for p in spec.points] == ["lenet-300-100 seed 0"] * 2 + ["lenet-300-100 seed 1"] * 2


def test_registry_point_is_the_workload_run_and_carries_its_quality():
    _need_silero()
    spec = parse_spec({"version": 1, "workloads": [{"registry": "silero-vad-lstm", "inputs": {"count": 1}}],
                       "grid": {"n_pe": [32, 64]}})
    docs = {p.settings["n_pe"]: run_point(p) for p in spec.points}
    want = run_workload(load("silero-vad-lstm", 1, 0))  # 64 PEs, the loader's layout
    d = docs[64]
    assert d["cycles_total"] == want.cycles and d["n_inputs"] == 1
    assert d["counters"]["macs"] == want.layers[0].counters["macs"]
    assert d["quality"] == want.quality and d["quality"]["metric"].startswith("frame speech/non-speech")
    assert d["pe"]["busy"]["total"] == int(want.layers[0].pe_busy.sum())
    assert d["pe"]["stall"]["total"] == int(want.layers[0].pe_stall.sum())
    assert d["pe"]["busy"]["total"] + d["pe"]["idle"]["total"] == want.cycles * 64
    # 32 PEs: an exact re-layout, so the same outputs (same quality) in more cycles
    assert docs[32]["quality"] == d["quality"]
    assert docs[32]["cycles_total"] > d["cycles_total"]
    assert d["layers"][0]["shape"] == [512, 256] and d["layers"][0]["name"] == "lstm_cell"
    assert np.isfinite(d["energy"]["activity_pj"]) and d["energy"]["activity_pj"] > 0


def test_cli_sweep_of_a_registry_workload(tmp_path: Path, capsys):
    _need_silero()
    spec = tmp_path / "s.toml"
    spec.write_text('version = 1\n[[workloads]]\nregistry = "silero-vad-lstm"\ninputs = { count = 1 }\n'
                    '[grid]\nfifo_depth = [2, 8]\n')
    out = tmp_path / "r.jsonl"
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert sorted(l["settings"]["fifo_depth"] for l in lines) == [2, 8]
    by = {l["settings"]["fifo_depth"]: l for l in lines}
    assert by[2]["cycles_total"] >= by[8]["cycles_total"]  # a shallower activation queue never helps
    assert by[2]["quality"] == by[8]["quality"]  # the queue changes timing, not the arithmetic
    capsys.readouterr()
    base = tmp_path / "b.toml"
    base.write_text('version = 1\n[[workloads]]\nregistry = "silero-vad-lstm"\ninputs = { count = 1 }\n'
                    '[base]\ncode_bits = 8\n')
    assert main(["sweep", str(base), "--out", str(tmp_path / "b.jsonl")]) != 0
    err = capsys.readouterr().err
    assert "'code_bits' is 8, but layer 'lstm_cell' uses 4" in err and "Traceback" not in err
