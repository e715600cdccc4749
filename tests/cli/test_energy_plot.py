"""``eiesim simulate --energy``, ``eiesim energy`` (re-pricing saved counters) and ``eiesim plot``."""

from __future__ import annotations

import json

import pytest

from eiesim.cli import main

from ..conftest import run_cli as run


@pytest.fixture(scope="module")
def lenet_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "lenet.json"
    assert main(["simulate", "--energy", "--json", str(path)]) == 0
    return path


def test_simulate_energy_adds_table_and_json(lenet_json, capsys, tmp_path):
    doc = json.loads(lenet_json.read_text())
    e = doc["energy"]
    assert [l["name"] for l in e["layers"]] == ["ip1", "ip2", "ip3"]
    for l, layer in zip(e["layers"], doc["layers"]):
        assert l["activity"]["total_pj"] > 0
        assert l["paper"]["total_pj"] == pytest.approx(0.6 * layer["time_s"] * 1e12)
        assert l["activity"]["n_inputs"] == 100
    js = tmp_path / "again.json"
    code, out, err = run(capsys, "simulate", "--energy", "--json", str(js))
    assert code == 0, err
    assert "energy per input" in out and "SpmatRead" in out and "dense fp32 weights from DRAM" in out


def test_energy_reprices_saved_counters(lenet_json, capsys, tmp_path):
    code, out, err = run(capsys, "energy", str(lenet_json))
    assert code == 0, err
    assert "activity-based energy by module" in out
    base = tmp_path / "base.json"
    run(capsys, "energy", str(lenet_json), "--json", str(base))
    doc0 = json.loads(base.read_text())
    # same counters, same table -> same numbers as simulate --energy wrote
    sim_doc = json.loads(lenet_json.read_text())
    assert doc0["energy"]["layers"][0]["activity"]["total_pj"] == pytest.approx(
        sim_doc["energy"]["layers"][0]["activity"]["total_pj"])
    toml = tmp_path / "chip.toml"
    toml.write_text('name = "half-power chip"\n[entries.chip_power]\nvalue = 0.3\nunit = "W"\nsource = "test"\n')
    out_js = tmp_path / "repriced.json"
    code, out, err = run(capsys, "energy", str(lenet_json), "--table", str(toml), "--json", str(out_js))
    assert code == 0, err
    assert "half-power chip" in out
    doc = json.loads(out_js.read_text())
    for a, b in zip(doc["energy"]["layers"], doc0["energy"]["layers"]):
        assert a["paper"]["total_pj"] == pytest.approx(0.5 * b["paper"]["total_pj"])
        assert a["activity"]["total_pj"] == pytest.approx(b["activity"]["total_pj"])
    assert doc["table"]["entries"]["chip_power"]["source"] == "test"
    # the table can be written out and loaded back
    written = tmp_path / "w.toml"
    code, out, err = run(capsys, "energy", str(lenet_json), "--show-table", "--write-table", str(written))
    assert code == 0 and "dram_read_32b" in out and "Horowitz" in out
    code, _, err = run(capsys, "energy", str(lenet_json), "--table", str(written))
    assert code == 0, err


def test_energy_errors(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, out, err = run(capsys, "energy", str(bad))
    assert code == 2 and "layers" in err
    code, out, err = run(capsys, "energy", str(tmp_path / "missing.json"))
    assert code == 2 and "no such file" in err
    toml = tmp_path / "t.toml"
    toml.write_text('[entries.x]\nvalue = 1\nunit = "pJ"\n')
    bad.write_text(json.dumps({"layers": [{"cycles": 1, "counters": {}}]}))
    code, out, err = run(capsys, "energy", str(bad), "--table", str(toml))
    assert code == 2 and "source" in err


def test_plot_from_simulate_json(lenet_json, capsys, tmp_path):
    (tmp_path / "figs").mkdir()
    (tmp_path / "none").mkdir()
    code, out, err = run(capsys, "plot", str(lenet_json), "--out", str(tmp_path / "figs"))
    assert code == 0, err
    assert (tmp_path / "figs" / "energy_breakdown.png").stat().st_size > 5_000
    plain = tmp_path / "plain.json"
    assert main(["simulate", "--json", str(plain)]) == 0
    capsys.readouterr()
    # without energy: the per-PE load and per-layer cycles pictures (issue 14), no energy breakdown
    code, out, err = run(capsys, "plot", str(plain), "--out", str(tmp_path / "none"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "none").iterdir()) == ["layers.png", "pe_load.png"]
    doc = json.loads(plain.read_text())
    for layer in doc["layers"]:
        del layer["pe_busy"]
    plain.write_text(json.dumps(doc))
    (tmp_path / "none2").mkdir()
    code, out, err = run(capsys, "plot", str(plain), "--out", str(tmp_path / "none2"))
    assert code == 2 and "energy" in err


def test_fc8_energy_matches_table2(fc8_dir, capsys, tmp_path):
    js = tmp_path / "fc8.json"
    code, out, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--fifo-depth", "7", "--energy",
                         "--json", str(js))
    assert code == 0, err
    e = json.loads(js.read_text())["energy"]["layers"][0]
    # activity-based energy at the calibration run = 64 PEs x Table II power x time (+ the CCU estimate)
    act = e["activity"]
    assert act["total_pj"] - act["by_module_pj"]["lnzd_ccu"] == pytest.approx(64 * 9.158e-3 * 7926 / 800e6 * 1e12, rel=1e-6)
    assert e["paper"]["avg_power_w"] == pytest.approx(0.6)


def _table(path, key, value, unit):
    path.write_text(f'name = "odd"\n[entries.{key}]\nvalue = {value}\nunit = "{unit}"\nsource = "test"\n')
    return path


@pytest.mark.parametrize("key, value, unit, needles", [
    # Table II power that overflows the calibration: NaN everywhere before the fix
    ("pe_power_spmat_read", "1e308", "mW", ["pe_power_spmat_read = 1e+308 mW", "non-finite"]),
    # a DRAM price that overflows only the what-ifs: names the layer and the field
    ("dram_read_32b", "1e308", "pJ", ["layer 'ip1'", "whatifs", "dram_read_32b = 1e+308 pJ"]),
    # zero chip power: the activity/paper ratio would be NaN
    ("chip_power", "0", "W", ["layer 'ip1'", "chip_power = 0 W"]),
])
def test_energy_refuses_non_finite_results(lenet_json, capsys, tmp_path, key, value, unit, needles):
    """Issue 9 W4: a table that makes an energy NaN/inf is refused (exit 2), nothing written."""
    out_js = tmp_path / "o.json"
    code, out, err = run(capsys, "energy", str(lenet_json), "--table", str(_table(tmp_path / "t.toml", key, value,
                                                                                 unit)), "--json", str(out_js))
    assert code == 2 and "nan" not in out.lower()
    for n in needles:
        assert n in err, err
    assert "Traceback" not in err and "RuntimeWarning" not in err
    assert not out_js.exists()


def test_energy_refuses_zero_cycles(lenet_json, capsys, tmp_path):
    """Issue 9 W5: ``cycles: 0`` gave a finite energy at 0 W and a nan ratio; now refused naming the layer."""
    doc = json.loads(lenet_json.read_text())
    doc["layers"][1]["cycles"] = 0
    src = tmp_path / "zero.json"
    src.write_text(json.dumps(doc, allow_nan=False))
    code, out, err = run(capsys, "energy", str(src))
    assert code == 2 and "run 'ip2'" in err and "cycles must be >= 1" in err, err


def test_energy_total_counts_each_benchmark_once(lenet_json, capsys, tmp_path):
    """Issue 9: a reproduction JSON's synthetic Alex-8 and real FC8 were both summed into the total."""
    doc = json.loads(lenet_json.read_text())
    ip1, ip2, ip3 = doc["layers"]
    doc["layers"] = [dict(ip1, name="Alex-6", bench="Alex-6", synthetic=True),
                     dict(ip2, name="Alex-8", bench="Alex-8", synthetic=True),
                     dict(ip3, name="Alex-8 (real FC8)", bench="Alex-8", synthetic=False)]
    src = tmp_path / "reproduction.json"
    src.write_text(json.dumps(doc))
    out_js = tmp_path / "priced.json"
    code, out, err = run(capsys, "energy", str(src), "--json", str(out_js))
    assert code == 0, err
    priced = json.loads(out_js.read_text())["energy"]
    assert priced["in_total"] == [True, False, True]
    want = sum(l["activity"]["per_input_pj"] for l, t in zip(priced["layers"], priced["in_total"]) if t)
    total_line = next(line for line in out.splitlines() if line.startswith("total"))
    assert "without Alex-8" in total_line and "2 layers" in total_line
    assert f"{want / 1e6:,.3f}" in total_line
    # a plain simulate JSON (no 'bench'): every layer of the network is summed
    code, out, err = run(capsys, "energy", str(lenet_json))
    assert next(l for l in out.splitlines() if l.startswith("total")).split()[:1] == ["total"]
    assert "without" not in out


def test_plot_refuses_a_missing_out_folder(lenet_json, capsys, tmp_path):
    """Issue 9: plot --out created missing folders while every other output refused them; one rule now."""
    missing = tmp_path / "typo" / "figs"
    code, out, err = run(capsys, "plot", str(lenet_json), "--out", str(missing))
    assert code == 2 and "--out" in err and "folder does not exist" in err
    assert not (tmp_path / "typo").exists()
    # the same rule as a missing folder in --json
    code, _, err = run(capsys, "simulate", "--json", str(tmp_path / "typo" / "r.json"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "typo").exists()
