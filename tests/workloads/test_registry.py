"""The real-workload registry and its commands (issue 13 section 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiesim.cli import main
from eiesim.errors import EieInputError
from eiesim.workloads import registry
from eiesim.workloads.registry import REGISTRY, WorkloadSpec, get_spec, load, workload_names
from eiesim.workloads.run import numpy_runner, run_workload


def test_the_five_names_and_their_pinned_install_commands():
    assert workload_names() == ("lenet-300-100", "silero-vad-lstm", "mnist-cnn-fc", "minilm-ffn", "ocr-lstm")
    assert get_spec("silero-vad-lstm").install_command == (
        "pip install --no-deps --require-hashes -r scripts/requirements/silero-vad-lstm.txt")
    assert get_spec("lenet-300-100").install_command is None and get_spec("lenet-300-100").installed
    for s in REGISTRY:
        for _, ver, _ in s.packages:
            assert ver.count(".") >= 2  # pinned to an exact version


def test_missing_package_is_one_line_with_the_install_command(monkeypatch):
    fake = WorkloadSpec("fake", "x", "eiesim.workloads.fake:load_workload",
                        (("no-such-pkg-eiesim", "1.2.3", "no_such_pkg_eiesim"),))
    monkeypatch.setattr(registry, "REGISTRY", registry.REGISTRY + (fake,))
    assert not fake.installed and fake.missing() == ("no-such-pkg-eiesim",)
    with pytest.raises(EieInputError) as ei:
        load("fake", 1)
    msg = str(ei.value)
    assert "\n" not in msg and msg.endswith("pip install --no-deps --require-hashes -r scripts/requirements/fake.txt")


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(EieInputError, match="registered: lenet-300-100, silero-vad-lstm"):
        get_spec("alexnet")
    with pytest.raises(EieInputError, match="positive integer"):
        load("lenet-300-100", 0)


def test_lenet_workload_runs_as_the_embedded_default():
    wl = load("lenet-300-100", 10)
    run = run_workload(wl)
    # the README's default table: 264.4 / 151.9 / 91.8 cycles per input on 100 digits; here the first 10
    assert [l.kind for l in run.layers] == ["fc", "fc", "fc"]
    assert [l.n_inputs for l in run.layers] == [10, 10, 10]
    # simulated outputs equal the compressed model in NumPy (same argmax on every digit)
    want = wl.forward(numpy_runner(wl))
    assert run.quality["compressed"] == wl.score(want)
    assert run.quality["metric"] == "top-1 accuracy" and 0.9 <= run.quality["compressed"] <= 1.0


def test_cli_workloads_and_simulate_workload(tmp_path, capsys):
    out = tmp_path / "w.json"
    assert main(["workloads", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    by = {d["name"]: d for d in doc["workloads"]}
    assert set(by) == set(workload_names())
    assert by["lenet-300-100"]["installed"] is True
    assert by["ocr-lstm"]["install_command"] == "pip install --no-deps --require-hashes -r scripts/requirements/ocr-lstm.txt"
    s = tmp_path / "s.json"
    assert main(["simulate", "--workload", "lenet-300-100", "--inputs", "100", "--json", str(s)]) == 0
    d = json.loads(s.read_text())
    assert [l["kind"] for l in d["layers"]] == ["fc"] * 3
    assert [round(l["cycles_per_input"], 1) for l in d["layers"]] == [264.4, 151.9, 91.8]  # README default
    assert d["quality"] == {"metric": "top-1 accuracy", "compressed": 1.0, "original": 0.99, "n_inputs": 100}
    capsys.readouterr()


def test_cli_missing_workload_package_exit_2(capsys, monkeypatch):
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ddddocr", "onnx") else real(name, *a))
    assert main(["simulate", "--workload", "ocr-lstm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(
        "pip install --no-deps --require-hashes -r scripts/requirements/ocr-lstm.txt")


def test_cli_workload_refuses_input_flags(capsys):
    assert main(["simulate", "--workload", "lenet-300-100", "--input", "x.npy"]) == 2
    assert "--input does not apply to --workload (the workload brings its own inputs)" in capsys.readouterr().err
    # an output flag: the reason said "brings its own inputs" (fresh-user finding)
    assert main(["simulate", "--workload", "lenet-300-100", "--save-output", "y.npy"]) == 2
    assert "--save-output does not apply to --workload (a workload's results are its scores: use --json)" \
        in capsys.readouterr().err
    assert main(["simulate", "--inputs", "3"]) == 2
    assert "--inputs applies to --workload only" in capsys.readouterr().err


def test_cli_workloads_refuses_an_unwritable_output(tmp_path, capsys):
    assert main(["workloads", "--json", str(tmp_path / "missing" / "w.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "missing").exists()
