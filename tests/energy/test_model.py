"""Energy of a run: calibration against EIE Table II, both methods, breakdowns, what-ifs, re-pricing."""

from __future__ import annotations

import dataclasses

import pytest

from eiesim.config import EIEConfig
from eiesim.energy.model import (
    FC8_REFERENCE, RunActivity, activity_energy, calibrate, lnzd_nodes, paper_energy, price_run, weight_memory_whatifs,
)
from eiesim.energy.tables import DEFAULT_TABLE, EIE_KINDS, EIE_MODULES, EnergyEntry
from eiesim.errors import EieInputError

# the reference run: the real FC8 in the authors' configuration (tests/sim/test_fc8.py golden values)
REF_COUNTERS = {
    "broadcasts": 1760, "ccu_stall_cycles": 6068, "group_loads": 66, "ptr_reads": 112640,
    "spmat_line_reads": 100900, "entries": 453748, "fillers": 0, "macs": 453748, "acc_writes": 453748,
    "bypasses": 1143,
}
REF = RunActivity(REF_COUNTERS, cycles=7926, n_pe=64, clock_hz=800e6, spmat_line_bits=64,
                  name="fc8", shape=(1000, 4096))


def test_lnzd_nodes():
    assert lnzd_nodes(64) == 21  # EIE Section IV
    assert lnzd_nodes(4) == 1
    assert lnzd_nodes(256) == 85


def test_calibration_matrix_has_table2_marginals():
    cal = calibrate()
    for m in EIE_MODULES:
        assert sum(cal.module_kind_mw[m].values()) == pytest.approx(DEFAULT_TABLE.value(f"pe_power_{m}"), rel=1e-6)
    total = sum(DEFAULT_TABLE.value(f"pe_power_{m}") for m in EIE_MODULES)
    ksum = sum(DEFAULT_TABLE.value(f"pe_power_{k}") for k in EIE_KINDS)
    for k in EIE_KINDS:
        col = sum(cal.module_kind_mw[m][k] for m in EIE_MODULES)
        assert col == pytest.approx(DEFAULT_TABLE.value(f"pe_power_{k}") * total / ksum, rel=1e-6)
    # memory only where there is an SRAM
    assert cal.module_kind_mw["act_queue"]["memory"] == 0.0
    assert cal.module_kind_mw["arithm_unit"]["memory"] == 0.0
    # per-action energies are physically plausible against Horowitz (same order of magnitude)
    spmat = cal.action_pj["spmat_read"]["memory"]
    assert 0.25 < spmat / DEFAULT_TABLE.sram_read_pj(128 * 1024, 64) < 2
    assert cal.static_pj_per_pe_cycle["spmat_read"]["clock"] > 0


def test_activity_equals_table2_power_at_reference_run():
    e = activity_energy(REF)
    table2 = 64 * 9.158e-3 * REF.time_s * 1e12  # module powers sum to 9.158 mW
    lnzd = e.by_module["lnzd_ccu"]
    assert e.total_pj - lnzd == pytest.approx(table2, rel=1e-6)
    assert 0 < lnzd < 0.01 * e.total_pj
    for m in EIE_MODULES:
        assert e.by_module[m] == pytest.approx(64 * DEFAULT_TABLE.value(f"pe_power_{m}", "W") * REF.time_s * 1e12, rel=1e-6)
    assert sum(e.by_module.values()) == pytest.approx(e.total_pj)
    assert sum(e.by_kind.values()) == pytest.approx(e.total_pj)
    cls = e.by_class
    assert cls["sram"] + cls["logic"] + cls["clock"] == pytest.approx(e.total_pj)
    assert e.avg_power_w == pytest.approx(0.587, abs=0.002)


def test_paper_method_is_chip_power_times_time():
    e = paper_energy(REF)
    assert e.total_pj == pytest.approx(0.6 * 7926 / 800e6 * 1e12)
    assert e.avg_power_w == pytest.approx(0.6)
    assert sum(e.by_module.values()) == pytest.approx(e.total_pj)
    assert sum(e.by_kind.values()) == pytest.approx(e.total_pj)
    half = dataclasses.replace(REF, n_pe=32)
    assert paper_energy(half).avg_power_w == pytest.approx(0.3)


def test_both_methods_reported_separately():
    p = price_run(REF)
    assert p["activity"]["method"] == "activity" and p["paper"]["method"] == "paper"
    assert p["activity_over_paper"] == pytest.approx(p["activity"]["total_pj"] / p["paper"]["total_pj"])
    assert 0.95 < p["activity_over_paper"] < 1.0  # 64 x 9.157 mW = 0.586 W vs the chip's 0.6 W


def test_activity_scales_with_work_and_line_width():
    e1 = activity_energy(REF)
    double = dict(REF_COUNTERS, entries=2 * REF_COUNTERS["entries"])
    e2 = activity_energy(dataclasses.replace(REF, counters=double))
    assert e2.by_module["arithm_unit"] > e1.by_module["arithm_unit"]
    assert e2.by_module["spmat_read"] == pytest.approx(e1.by_module["spmat_read"])
    wide = activity_energy(dataclasses.replace(REF, spmat_line_bits=128))
    assert wide.by_kind["memory"] > e1.by_kind["memory"]
    longer = activity_energy(dataclasses.replace(REF, cycles=2 * REF.cycles))
    assert longer.by_kind["clock"] == pytest.approx(2 * e1.by_kind["clock"])


def test_leakage_fraction_moves_energy_to_time():
    t = DEFAULT_TABLE.merged({"leakage_fraction": EnergyEntry("leakage_fraction", 0.3, "fraction", "test")})
    e_ref = activity_energy(REF, t)
    assert e_ref.total_pj == pytest.approx(activity_energy(REF).total_pj, rel=1e-9)  # same at the reference run
    e_long = activity_energy(dataclasses.replace(REF, cycles=2 * REF.cycles), t)
    e_long0 = activity_energy(dataclasses.replace(REF, cycles=2 * REF.cycles))
    assert e_long.total_pj > e_long0.total_pj


def test_repricing_with_a_user_table():
    t = DEFAULT_TABLE.merged({"dram_read_32b": EnergyEntry("dram_read_32b", 320.0, "pJ", "test")})
    a, b = price_run(REF), price_run(REF, t)
    assert a["activity"]["total_pj"] == b["activity"]["total_pj"]
    wa = {w["scenario"]: w for w in a["whatifs"]}
    wb = {w["scenario"]: w for w in b["whatifs"]}
    assert wb["dense_fp32_dram"]["weight_fetch_pj"] == pytest.approx(0.5 * wa["dense_fp32_dram"]["weight_fetch_pj"])


def test_whatifs_show_the_sram_dram_gap():
    w = {x["scenario"]: x for x in weight_memory_whatifs(REF)}
    assert w["eie_sram"]["ratio_vs_eie"] == pytest.approx(1.0)
    assert w["dense_fp32_dram"]["total_pj"] > w["compressed_dram"]["total_pj"] > w["eie_sram"]["total_pj"]
    assert w["dense_fp32_dram"]["weight_fetch_pj"] == pytest.approx(1000 * 4096 * 640.0)
    assert w["compressed_dram"]["weight_fetch_pj"] == pytest.approx((100900 * 64 + 112640 * 32) * 20.0)
    no_shape = dataclasses.replace(REF, shape=None)
    assert {x["scenario"] for x in weight_memory_whatifs(no_shape)} == {"eie_sram", "compressed_dram"}


def test_run_activity_from_dict_and_errors():
    layer = {"name": "x", "shape": [1000, 4096], "cycles": 7926, "counters": REF_COUNTERS, "n_inputs": 1}
    r = RunActivity.from_dict(layer, {"n_pe": 64, "clock_hz": 800e6, "spmat_line_bits": 64})
    assert r == dataclasses.replace(REF, name="x")
    with pytest.raises(EieInputError, match="counters"):
        RunActivity.from_dict({"cycles": 1})
    with pytest.raises(EieInputError, match="lack"):
        RunActivity({"broadcasts": 1}, cycles=1, n_pe=64)


def test_reference_constants_match_a_fresh_fc8_run(fc8_dir):
    """The calibration's stored reference counts are what the simulator measures on the real FC8."""
    from eiesim.format.eiedump import read_dump
    from eiesim.sim.engine import simulate

    d = read_dump(fc8_dir, n_pe=64)
    cfg = EIEConfig(n_pe=64, fifo_depth=7, spmat_line_bits=64)
    res = simulate(d.layer, d.activations, cfg)
    assert res.cycles == FC8_REFERENCE.cycles
    for key in ("broadcasts", "ptr_reads", "spmat_line_reads", "entries", "acc_writes"):
        assert res.counters[key] == getattr(FC8_REFERENCE, key), key
    run = RunActivity.from_result(res, cfg)
    e = activity_energy(run)
    assert e.total_pj - e.by_module["lnzd_ccu"] == pytest.approx(64 * 9.158e-3 * res.time_s * 1e12, rel=1e-6)
