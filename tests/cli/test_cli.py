"""The ``eiesim simulate`` command-line contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from eiesim.cli import main

from ..conftest import run_cli as run

JSON_LAYER_KEYS = {"name", "shape", "cycles", "time_s", "load_balance_efficiency", "counters"}
JSON_COUNTER_KEYS = {"broadcasts", "ptr_reads", "spmat_line_reads", "entries", "fillers", "macs"}


def test_default_network_runs_and_reports_accuracy(capsys, tmp_path):
    js = tmp_path / "r.json"
    out_npy = tmp_path / "y.npy"
    code, out, err = run(capsys, "simulate", "--json", str(js), "--save-output", str(out_npy))
    assert code == 0, err
    assert "accuracy on these 100 inputs" in out
    doc = json.loads(js.read_text())
    assert [l["name"] for l in doc["layers"]] == ["ip1", "ip2", "ip3"]
    assert [l["shape"] for l in doc["layers"]] == [[300, 784], [100, 300], [10, 100]]
    for layer in doc["layers"]:
        assert JSON_LAYER_KEYS <= set(layer)
        assert JSON_COUNTER_KEYS <= set(layer["counters"])
        assert layer["cycles"] > 0
    assert doc["total"]["cycles"] == sum(l["cycles"] for l in doc["layers"])
    assert doc["total"]["time_s"] == pytest.approx(doc["total"]["cycles"] / 800e6)
    assert doc["config"]["n_pe"] == 64
    # the simulated network agrees with its float32 NumPy evaluation on every digit
    y = np.load(out_npy)
    assert y.shape == (100, 10)
    assert 0.80 <= doc["accuracy"]["simulated"] <= 1.0


def test_fc8_dump_json_contract(capsys, tmp_path, fc8_dir):
    js = tmp_path / "fc8.json"
    y_path = tmp_path / "y.npy"
    code, out, err = run(
        capsys, "simulate", "--eie-dump", str(fc8_dir), "--fifo-depth", "7",
        "--json", str(js), "--save-output", str(y_path),
    )
    assert code == 0, err
    doc = json.loads(js.read_text())
    (layer,) = doc["layers"]
    assert layer["shape"] == [1000, 4096]
    assert abs(layer["cycles"] - 7920) / 7920 < 0.01
    assert doc["config"]["fifo_depth"] == 7
    assert layer["counters"]["broadcasts"] == 1759 + 1  # non-zero activations + bias
    assert int(np.load(y_path).argmax()) == 708
    assert "top-1 output index: 708" in out


def test_input_formats_dat_and_npy_agree(capsys, tmp_path, fc8_dir):
    a = np.fromfile(fc8_dir / "act.dat", dtype="<f4")
    np.save(tmp_path / "a.npy", a)
    a.tofile(tmp_path / "a.dat")
    results = []
    for name in ("a.npy", "a.dat"):
        js = tmp_path / f"{name}.json"
        code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--input",
                           str(tmp_path / name), "--json", str(js))
        assert code == 0, err
        results.append(json.loads(js.read_text())["layers"][0])
    assert results[0] == results[1]


def test_flags_override_config_file(capsys, tmp_path, fc8_dir):
    cfg = tmp_path / "eie.toml"
    cfg.write_text("n_pe = 64\nfifo_depth = 2\nspmat_line_bits = 128\n")
    js = tmp_path / "r.json"
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--config", str(cfg),
                       "--fifo-depth", "7", "--json", str(js))
    assert code == 0, err
    c = json.loads(js.read_text())["config"]
    assert (c["fifo_depth"], c["spmat_line_bits"]) == (7, 128)


@pytest.mark.parametrize(
    "argv_tail, needle",
    [
        (["--network", "/no/such/file.eie", "--input", "/no/such.npy"], "no such file"),
        (["--eie-dump", "/no/such/dir"], "missing"),
        (["--fifo-depth", "0"], "fifo_depth"),
        (["--line-bits", "60"], "spmat_line_bits"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv_tail, needle):
    code, out, err = run(capsys, "simulate", *argv_tail)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_wrong_input_length_and_bad_npy(capsys, tmp_path, fc8_dir):
    np.zeros(100, dtype=np.float32).tofile(tmp_path / "short.dat")
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--input", str(tmp_path / "short.dat"))
    assert code == 2 and "short.dat" in err and "4096" in err
    # --n-pe with a dump re-interleaves it (issue 9): tests/cli/test_convert.py
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--input", str(tmp_path / "bad.npy"))
    assert code == 2 and "bad.npy" in err


def test_python_dash_m_entry_point_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "eiesim", "simulate", "--network", str(tmp_path / "missing.eie"),
         "--input", str(tmp_path / "x.npy")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("eiesim: error:")
    assert "Traceback" not in proc.stderr


def test_relayout_over_other_pe_counts_keeps_outputs(capsys, tmp_path):
    outs = []
    for n_pe in ("64", "7"):
        y = tmp_path / f"y{n_pe}.npy"
        code, _, err = run(capsys, "simulate", "--n-pe", n_pe, "--save-output", str(y))
        assert code == 0, err
        outs.append(np.load(y))
    # interleaving changes timing, never the arithmetic order of one output row
    assert np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))


def test_layers_that_overflow_an_sram_are_flagged(capsys, tmp_path):
    """The embedded LeNet fits EIE's SRAMs; with 256-byte spmat SRAMs ip1's busiest PE (464 bytes) does not."""
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "simulate", "--json", str(js))
    assert code == 0, err
    assert "does not fit" not in out
    assert [s["fits"] for s in json.loads(js.read_text())["sram"]] == [True, True, True]
    cfg = tmp_path / "small.toml"
    cfg.write_text("spmat_sram_bytes = 256\n")
    code, out, err = run(capsys, "simulate", "--config", str(cfg), "--json", str(js))
    assert code == 0, err
    assert ("warning: layer 'ip1' does not fit on chip (spmat SRAM: the busiest PE needs 464 bytes, "
            "capacity 256 bytes per PE)") in out
    sram = json.loads(js.read_text())["sram"]
    assert [s["fits"] for s in sram] == [False, True, True]
    assert sram[0]["spmat_bytes"] == 464 and sram[0]["spmat_capacity"] == 256


def test_simulate_table_says_per_input_and_what_to_try_next(capsys):
    """Issue 9 §4: the read columns are per-input means (header says so); one 'try next' line at the end."""
    assert main(["simulate"]) == 0
    out = capsys.readouterr().out
    header = [l for l in out.splitlines() if l.startswith("layer ")][0]
    assert "cycles per input" in header and "spmat reads per input" in header and "ptr reads per input" in header
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("try next: --energy") and "--eie-dump DIR" in last
    assert main(["simulate", "--energy"]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("try next: ") and "--energy" not in last and "--eie-dump" in last


def test_one_pe_is_said_in_the_singular(capsys):
    """Regression (fresh-user test): 'EIE: 1 PEs' and 're-interleaved over 1 PEs'."""
    code, out, err = run(capsys, "simulate", "--n-pe", "1")
    assert code == 0, err
    assert "EIE: 1 PE, queue depth" in out and "layers re-interleaved over 1 PE\n" in out


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    """Regression (fresh-user test): `simulate ... 2>file` left tqdm's bar in the file."""
    import eiesim.sim.network as network_mod

    seen = []
    real = network_mod.simulate_network

    def spy(*a, **kw):
        seen.append(kw.get("progress"))
        return real(*a, **kw)

    monkeypatch.setattr(network_mod, "simulate_network", spy)
    code, out, err = run(capsys, "simulate")
    assert code == 0, err
    assert seen == [False]  # pytest's captured stderr is not a terminal
