"""Energy tables: every constant has a unit and a source; TOML in and out; the SRAM/DRAM rules."""

from __future__ import annotations

import math

import pytest

from eiesim.energy.tables import DEFAULT_TABLE, DERIVED, UNITS, EnergyEntry, EnergyTable, load_table
from eiesim.errors import EieConfigError


def test_every_default_entry_has_unit_and_source():
    assert len(DEFAULT_TABLE.entries) >= 25
    assert set(DEFAULT_TABLE.all_entries()) == set(DEFAULT_TABLE.entries) | set(DERIVED)
    for key, e in DEFAULT_TABLE.all_entries().items():
        assert e.name == key
        assert e.unit in UNITS
        assert e.source.strip()
        assert e.value >= 0


@pytest.mark.parametrize("key,value,unit", [
    ("int32_add", 0.1, "pJ"), ("fp32_add", 0.9, "pJ"), ("int32_mult", 3.1, "pJ"), ("fp32_mult", 3.7, "pJ"),
    ("sram_read_32b", 5.0, "pJ"), ("dram_read_32b", 640.0, "pJ"), ("int8_add", 0.03, "pJ"),
    ("fp16_mult", 1.1, "pJ"), ("sram_read_64b_8KB", 10.0, "pJ"), ("sram_read_64b_1MB", 100.0, "pJ"),
    ("pe_power_spmat_read", 4.955, "mW"), ("pe_power_clock", 1.874, "mW"), ("pe_power_total", 9.157, "mW"),
    ("chip_power", 0.6, "W"),
])
def test_published_values(key, value, unit):
    e = DEFAULT_TABLE.get(key)
    assert e.value == pytest.approx(value) and e.unit == unit


def test_table2_sums_are_consistent():
    t = DEFAULT_TABLE
    mods = sum(t.value(f"pe_power_{m}") for m in ("act_queue", "ptr_read", "spmat_read", "arithm_unit", "act_rw"))
    kinds = sum(t.value(f"pe_power_{k}") for k in ("memory", "clock", "register", "combinational"))
    assert mods == pytest.approx(9.157, abs=2e-3)
    assert kinds == pytest.approx(9.157, abs=2e-3)
    # 64 PEs x 9.157 mW ~ the chip's 0.59-0.6 W
    assert 64 * t.value("pe_power_total", "W") == pytest.approx(0.586, abs=1e-3)


def test_unit_conversion():
    assert DEFAULT_TABLE.get("pe_power_total").to("W") == pytest.approx(9.157e-3)
    assert DEFAULT_TABLE.get("table2_clock").to("Hz") == pytest.approx(800e6)
    with pytest.raises(EieConfigError, match="cannot convert"):
        DEFAULT_TABLE.get("chip_power").to("pJ")


def test_sram_rule_exact_at_horowitz_points_and_linear_in_width():
    t = DEFAULT_TABLE
    assert t.sram_read_pj(8 * 1024) == pytest.approx(10.0)
    assert t.sram_read_pj(32 * 1024) == pytest.approx(20.0)
    assert t.sram_read_pj(1024 * 1024) == pytest.approx(100.0)
    assert t.sram_read_pj(32 * 1024, 32) == pytest.approx(10.0)
    assert t.sram_read_pj(128 * 1024, 128) == pytest.approx(2 * t.sram_read_pj(128 * 1024, 64))
    sizes = [1024, 2048, 8192, 16384, 32768, 131072, 1 << 20, 1 << 22]
    vals = [t.sram_read_pj(s) for s in sizes]
    assert all(a < b for a, b in zip(vals, vals[1:]))
    # 128 KB spmat SRAM: 20 pJ x 4 ** (log 5 / log 32)
    assert t.sram_read_pj(128 * 1024) == pytest.approx(20 * 4 ** (math.log(5) / math.log(32)))
    with pytest.raises(EieConfigError):
        t.sram_read_pj(0)


def test_dram_per_bit():
    assert DEFAULT_TABLE.dram_pj_per_bit() == pytest.approx(20.0)
    assert DEFAULT_TABLE.dram_read_pj(64) == pytest.approx(1280.0)
    # DRAM / SRAM = 128x for a 32-bit word (Han et al.)
    assert DEFAULT_TABLE.value("dram_read_32b") / DEFAULT_TABLE.value("sram_read_32b") == pytest.approx(128)


def test_toml_round_trip(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text(DEFAULT_TABLE.to_toml())
    t = load_table(p, base=None)
    assert t.name == DEFAULT_TABLE.name
    assert set(t.entries) == set(DEFAULT_TABLE.entries)
    for k, e in DEFAULT_TABLE.entries.items():
        assert t.get(k) == e


def test_user_table_overrides_entry_by_entry(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "my tech"\n[entries.dram_read_32b]\nvalue = 320.0\nunit = "pJ"\nsource = "my datasheet"\n')
    t = load_table(p)
    assert t.name == "my tech"
    assert t.value("dram_read_32b") == 320.0
    assert t.get("dram_read_32b").source == "my datasheet"
    assert t.value("sram_read_32b") == 5.0  # from the default


def test_a_table_file_without_a_name_is_not_called_the_default(tmp_path, capsys):
    """``energy --table mine.toml`` (no ``name``) printed the default table's name although its prices
    changed (fresh-user finding): the name now says what the file overrides."""
    from eiesim.cli import main

    p = tmp_path / "tb.toml"
    p.write_text('[entries.int32_add]\nvalue = 0.0\nunit = "pJ"\nsource = "me"\n')
    t = load_table(p)
    assert t.name == f"{DEFAULT_TABLE.name}, with 1 entry from {p}"
    p.write_text('[entries.int32_add]\nvalue = 0.0\nunit = "pJ"\nsource = "me"\n'
                 '[entries.dram_read_32b]\nvalue = 1.0\nunit = "pJ"\nsource = "me"\n')
    assert load_table(p).name.endswith(f", with 2 entries from {p}")
    res = tmp_path / "r.json"
    assert main(["simulate", "--json", str(res)]) == 0
    capsys.readouterr()
    assert main(["energy", str(res), "--table", str(p)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"energy table: {DEFAULT_TABLE.name}, with 2 entries from {p}"


def test_an_overflow_names_a_tiny_divisor_too(tmp_path, capsys):
    """``chip_n_pe = 1e-300`` overflowed the paper's method and the message blamed the largest entry
    (``table2_clock``) alone (second fresh-user finding)."""
    from eiesim.cli import main

    p = tmp_path / "t.toml"
    p.write_text('[entries.chip_n_pe]\nvalue = 1e-300\nunit = "count"\nsource = "s"\n')
    res = tmp_path / "r.json"
    assert main(["simulate", "--json", str(res)]) == 0
    capsys.readouterr()
    assert main(["energy", str(res), "--table", str(p)]) == 2
    assert "is not finite" in (err := capsys.readouterr().err) and "smallest non-zero: chip_n_pe = 1e-300 count" in err


@pytest.mark.parametrize("body,match", [
    ('[entries.chip_n_pe]\nvalue = 0\nunit = "count"\nsource = "s"\n', "'chip_n_pe': must be > 0"),
    ('[entries.table2_clock]\nvalue = 0.0\nunit = "Hz"\nsource = "s"\n', "'table2_clock': must be > 0"),
    ("".join(f'[entries.pe_power_{k}]\nvalue = 0.0\nunit = "mW"\nsource = "s"\n'
             for k in ("memory", "clock", "register", "combinational")), "per-type powers .* are all 0"),
])
def test_entries_the_model_divides_by_must_not_be_zero(tmp_path, body, match):
    """``chip_n_pe = 0`` priced a run into ZeroDivisionError (fuzz seed 14, table api 151)."""
    p = tmp_path / "t.toml"
    p.write_text(body)
    with pytest.raises(EieConfigError, match=match):
        load_table(p)


def test_a_table_built_in_code_obeys_the_divisor_rule_too():
    zero = EnergyEntry("chip_n_pe", 0, "count", "s")
    with pytest.raises(EieConfigError, match="'chip_n_pe': must be > 0"):
        DEFAULT_TABLE.merged({"chip_n_pe": zero})
    with pytest.raises(EieConfigError, match="'chip_n_pe': must be > 0"):
        EnergyTable(name="mine", entries={"chip_n_pe": zero})


@pytest.mark.parametrize("body,match", [
    ('[entries.x]\nvalue = 1.0\nunit = "pJ"\n', "lacks source"),
    ('[entries.x]\nvalue = 1.0\nunit = "parsecs"\nsource = "s"\n', "unit"),
    ('[entries.x]\nvalue = -1.0\nunit = "pJ"\nsource = "s"\n', ">= 0"),
    ('[entries.x]\nvalue = 1.0\nunit = "pJ"\nsource = ""\n', "source"),
    ('[entries.x]\nvalue = 1.0\nunit = "pJ"\nsource = "s"\ncolour = "red"\n', "unknown field"),
    ('bogus = 1\n', "unknown top-level"),
    # regression (fresh-user test): an empty file priced silently as the default table
    ('', "gives no \\[entries"),
    ('name = "mine"\n', "gives no \\[entries"),
    ('name = "mine"\n[entries]\n', "gives no \\[entries"),
    ('this is [ not toml', "not valid TOML"),
    # found by scripts/fuzz.py: tomllib recurses once per '[' and raised RecursionError (a traceback)
    ('value = ' + '[' * 5000 + '1' + ']' * 5000 + '\n', "not valid TOML"),
    # found by scripts/fuzz.py: an array or table as unit/note raised TypeError (unhashable) from the check
    ('[entries.x]\nvalue = 1.0\nunit = [1, 2]\nsource = "s"\n', "unit"),
    ('[entries.x]\nvalue = 1.0\nunit = {a = 1}\nsource = "s"\n', "unit"),
    ('[entries.x]\nvalue = 1.0\nunit = "pJ"\nsource = "s"\nnote = [1]\n', "note"),
])
def test_bad_tables_are_refused(tmp_path, body, match):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(EieConfigError, match=match):
        load_table(p)


def test_missing_file_and_entry():
    with pytest.raises(EieConfigError, match="cannot read"):
        load_table("/nonexistent/table.toml")
    with pytest.raises(EieConfigError, match="no entry"):
        DEFAULT_TABLE.get("flux_capacitor")
    with pytest.raises(EieConfigError):
        EnergyEntry("x", float("nan"), "pJ", "s")
    assert isinstance(DEFAULT_TABLE.merged({}), EnergyTable)


def test_unknown_entry_name_is_refused_with_the_known_names(tmp_path):
    """Issue 9: a typo ("dram_read_32" for "dram_read_32b") was added silently and changed nothing."""
    from eiesim.energy.tables import KNOWN_ENTRIES

    p = tmp_path / "typo.toml"
    p.write_text('[entries.dram_read_32]\nvalue = 320.0\nunit = "pJ"\nsource = "my datasheet"\n')
    for base in (DEFAULT_TABLE, None):
        with pytest.raises(EieConfigError, match="unknown energy-table entry 'dram_read_32'") as exc:
            load_table(p, base=base)
        msg = str(exc.value)
        assert str(p) in msg
        assert all(k in msg for k in KNOWN_ENTRIES)  # the message lists every known name
    assert "dram_read_32b" in KNOWN_ENTRIES and KNOWN_ENTRIES == set(DEFAULT_TABLE.all_entries())


# ---------------------------------------------------------------- derived entries (issue 16 §4)
def test_derived_entries_keep_their_published_values():
    t = DEFAULT_TABLE
    assert t.value("int16_mult") == 3.1 / 5.0  # EIE Fig. 10: 5x less than Horowitz's 3.1 pJ
    assert t.value("int16_add") == 0.03 + (16 - 8) / (32 - 8) * (0.1 - 0.03)
    assert t.value("lnzd_node") == 4 * (0.03 + (16 - 8) / (32 - 8) * (0.1 - 0.03))
    assert "int16_mult" in t and t.get("lnzd_node").unit == "pJ" and "int16_add" in t.get("lnzd_node").source


def _table(tmp_path, body):
    p = tmp_path / "mine.toml"
    p.write_text('name = "my tech"\n' + body)
    return load_table(p)


def test_repricing_an_input_reprices_every_entry_derived_from_it(tmp_path):
    """Before: int16_mult, int16_add and lnzd_node were literals frozen at import; a user table
    that re-priced int32_mult or the adds left them at the 45 nm numbers."""
    t = _table(tmp_path, '[entries.int32_mult]\nvalue = 6.2\nunit = "pJ"\nsource = "s"\n'
                         '[entries.int8_add]\nvalue = 0.06\nunit = "pJ"\nsource = "s"\n'
                         '[entries.int32_add]\nvalue = 200.0\nunit = "fJ"\nsource = "s"\n')
    assert t.value("int16_mult") == pytest.approx(6.2 / 5)
    assert t.value("int16_add") == pytest.approx(0.06 + (0.2 - 0.06) / 3)
    assert t.value("lnzd_node") == pytest.approx(4 * (0.06 + (0.2 - 0.06) / 3))
    assert t.all_entries()["lnzd_node"].value == pytest.approx(4 * (0.06 + (0.2 - 0.06) / 3))
    # the LNZD/CCU energy of a run follows
    from eiesim.energy.model import RunActivity, activity_energy
    run = RunActivity({"broadcasts": 10, "ptr_reads": 0, "spmat_line_reads": 0, "entries": 0, "acc_writes": 0,
                       "group_loads": 0}, cycles=100, n_pe=64)
    base = activity_energy(run).by_module["lnzd_ccu"]
    assert base == pytest.approx(4 * (0.03 + 0.07 / 3) * 21 * 10)  # 21 LNZD nodes for 64 PEs (EIE Section IV)
    assert activity_energy(run, t).by_module["lnzd_ccu"] == pytest.approx(2 * base)  # int16_add doubled


def test_a_derived_key_given_explicitly_overrides_its_rule(tmp_path):
    t = _table(tmp_path, '[entries.lnzd_node]\nvalue = 1.5\nunit = "pJ"\nsource = "my synthesis"\n'
                         '[entries.int8_add]\nvalue = 1.0\nunit = "pJ"\nsource = "s"\n')
    assert t.value("lnzd_node") == 1.5 and t.get("lnzd_node").source == "my synthesis"
    assert t.value("int16_add") == pytest.approx(1.0 + (0.1 - 1.0) / 3)


def test_toml_round_trip_does_not_freeze_derived_entries(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text(DEFAULT_TABLE.to_toml())
    assert "int16_mult" not in p.read_text() and "ref_cycles" not in p.read_text()
    t = load_table(p, base=None).merged({"int32_mult": EnergyEntry("int32_mult", 31.0, "pJ", "s")})
    assert t.value("int16_mult") == pytest.approx(6.2)


def test_reference_counts_are_not_prices(tmp_path):
    assert not any(k.startswith("ref_") for k in DEFAULT_TABLE.all_entries())
    with pytest.raises(EieConfigError, match="not prices"):
        _table(tmp_path, '[entries.ref_cycles]\nvalue = 100\nunit = "cycles"\nsource = "s"\n')
