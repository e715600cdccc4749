"""EIEConfig: reference defaults, validation of every field, TOML/JSON loading."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from eiesim.config import CONFIG_SCHEMA_VERSION, EIEConfig
from eiesim.errors import EieConfigError, EieError


def test_defaults_are_the_eie_reference_design():
    """EIE (Han et al., ISCA 2016) Section VI and Table II."""
    c = EIEConfig()
    assert c.n_pe == 64
    assert c.fifo_depth == 8  # activation queue depth
    assert c.spmat_line_bits == 64  # 8 entries of 8 bits per spmat read
    assert c.clock_hz == 800e6
    assert c.code_bits == 4 and c.codebook_size == 16  # 4-bit codebook index
    assert c.index_bits == 4 and c.max_relative_index == 15  # 4-bit relative index
    assert c.pointer_bits == 16
    assert c.spmat_sram_bytes == 128 * 1024
    assert c.ptr_sram_bytes == 32 * 1024
    assert c.act_sram_bytes == 2 * 1024
    assert c.fixed_total_bits == 16  # 16-bit fixed-point datapath
    assert c.entries_per_line == 8
    assert c.cycle_s == pytest.approx(1.25e-9)
    assert c.schema_version == CONFIG_SCHEMA_VERSION
    assert c.arith in ("float32", "fixed16")


@pytest.mark.parametrize(
    "line_bits, code_bits, index_bits, entries",
    [
        (64, 4, 4, 8), (8, 4, 4, 1), (128, 4, 4, 16), (512, 4, 4, 64),
        (48, 4, 2, 8), (35, 4, 3, 5), (64, 2, 2, 16),
    ],
)
def test_entries_per_line(line_bits, code_bits, index_bits, entries):
    c = EIEConfig(spmat_line_bits=line_bits, code_bits=code_bits, index_bits=index_bits)
    assert c.entries_per_line == entries


BAD_FIELDS = [
    ("n_pe", 0),
    ("n_pe", -4),
    ("n_pe", 2.5),
    ("n_pe", "64"),
    ("n_pe", True),
    ("n_pe", None),
    ("fifo_depth", 0),
    ("fifo_depth", 1.5),
    ("spmat_line_bits", 4),
    ("spmat_line_bits", 60),  # not a multiple of the 8-bit entry
    ("spmat_line_bits", "64"),
    ("clock_hz", 0),
    ("clock_hz", -1e6),
    ("clock_hz", float("nan")),
    ("clock_hz", float("inf")),
    ("clock_hz", "800MHz"),
    ("clock_hz", True),
    ("code_bits", 0),
    ("code_bits", 9),
    ("index_bits", 0),
    ("index_bits", 9),
    ("pointer_bits", 0),
    ("pointer_bits", 33),
    ("spmat_sram_bytes", 0),
    ("ptr_sram_bytes", -1),
    ("act_sram_bytes", 0),
    ("arith", "float64"),
    ("arith", "FIXED16"),
    ("arith", None),
    ("fixed_total_bits", 1),
    ("fixed_total_bits", 33),
    ("act_frac_bits", -1),
    ("act_frac_bits", 16),  # no sign bit left in a 16-bit word
    ("weight_frac_bits", 16),
    ("weight_frac_bits", 2.5),
    ("rounding", "up"),
    ("rounding", None),
    ("saturate", 1),
    ("saturate", "yes"),
    ("schema_version", 0),
    ("schema_version", CONFIG_SCHEMA_VERSION + 1),
]


@pytest.mark.parametrize("name, value", BAD_FIELDS, ids=[f"{n}={v!r}" for n, v in BAD_FIELDS])
def test_invalid_field_raises_naming_it(name, value):
    with pytest.raises(EieConfigError, match=f"'{name}'") as info:
        EIEConfig(**{name: value})
    assert isinstance(info.value, EieError) and isinstance(info.value, ValueError)


def test_integral_floats_are_accepted():
    c = EIEConfig(n_pe=16.0, fifo_depth=4.0)
    assert c.n_pe == 16 and isinstance(c.n_pe, int)
    assert c.fifo_depth == 4 and isinstance(c.fifo_depth, int)
    assert isinstance(EIEConfig(clock_hz=1000).clock_hz, float)


def test_frozen():
    c = EIEConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.n_pe = 4  # type: ignore[misc]


def test_replace_ignores_none_and_validates():
    c = EIEConfig()
    d = c.replace(n_pe=None, fifo_depth=4, arith=None)
    assert d.n_pe == 64 and d.fifo_depth == 4 and d.arith == c.arith
    assert c.fifo_depth == 8  # the original is unchanged
    assert c.replace() == c
    with pytest.raises(EieConfigError, match="'fifo_depth'"):
        c.replace(fifo_depth=0)
    with pytest.raises(EieConfigError, match="'n_peez'"):
        c.replace(n_peez=3)


def test_to_dict_round_trip():
    c = EIEConfig(n_pe=16, arith="fixed16", rounding="floor", saturate=False)
    d = c.to_dict()
    assert d["schema_version"] == CONFIG_SCHEMA_VERSION
    assert EIEConfig.from_dict(d) == c
    assert EIEConfig.from_dict(json.loads(json.dumps(d))) == c


def test_load_toml(tmp_path):
    p = tmp_path / "eie.toml"
    p.write_text(
        'n_pe = 16\nfifo_depth = 4\nspmat_line_bits = 128\nclock_hz = 1e9\narith = "fixed16"\nsaturate = false\n'
    )
    c = EIEConfig.load(p)
    assert (c.n_pe, c.fifo_depth, c.spmat_line_bits, c.clock_hz) == (16, 4, 128, 1e9)
    assert c.arith == "fixed16" and c.saturate is False
    assert c.entries_per_line == 16


def test_load_toml_eie_table(tmp_path):
    p = tmp_path / "eie.toml"
    p.write_text("[eie]\nn_pe = 8\n")
    assert EIEConfig.load(p).n_pe == 8


def test_load_json(tmp_path):
    p = tmp_path / "eie.json"
    p.write_text(json.dumps({"n_pe": 256, "fifo_depth": 7, "rounding": "floor"}))
    c = EIEConfig.load(str(p))
    assert (c.n_pe, c.fifo_depth, c.rounding) == (256, 7, "floor")


@pytest.mark.parametrize(
    "suffix, text", [(".toml", "n_pe = 4\nqueue_depth = 3\n"), (".json", '{"n_pe": 4, "queue_depth": 3}')]
)
def test_unknown_key_rejected(tmp_path, suffix, text):
    p = tmp_path / f"eie{suffix}"
    p.write_text(text)
    with pytest.raises(EieConfigError, match="queue_depth") as info:
        EIEConfig.load(p)
    assert str(p) in str(info.value)


def test_unknown_key_in_dict():
    with pytest.raises(EieConfigError, match="'bogus'"):
        EIEConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("suffix, text", [(".toml", "n_pe = 0\n"), (".json", '{"n_pe": 0}')])
def test_invalid_value_in_file_names_file_and_field(tmp_path, suffix, text):
    p = tmp_path / f"eie{suffix}"
    p.write_text(text)
    with pytest.raises(EieConfigError, match="'n_pe'") as info:
        EIEConfig.load(p)
    assert str(p) in str(info.value)


@pytest.mark.parametrize(
    "suffix, text",
    [(".toml", "n_pe = = 3\n"), (".json", "{n_pe: 3}"), (".json", "[1, 2]"), (".toml", "\xff\xfe")],
)
def test_malformed_file(tmp_path, suffix, text):
    p = tmp_path / f"eie{suffix}"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(EieConfigError):
        EIEConfig.load(p)


def test_missing_file(tmp_path):
    with pytest.raises(EieConfigError, match="no such file"):
        EIEConfig.load(tmp_path / "nope.toml")


def test_numpy_scalars_are_accepted():
    cfg = EIEConfig(n_pe=np.int64(8), clock_hz=np.float32(1e9), saturate=np.True_)
    assert (cfg.n_pe, cfg.clock_hz, cfg.saturate) == (8, 1e9, True)
    assert type(cfg.n_pe) is int and type(cfg.saturate) is bool


@pytest.mark.parametrize("clock", [10**309, 5e-324, 0.5, 2e13])
def test_clock_out_of_range_is_a_config_error(clock):
    with pytest.raises(EieConfigError, match="clock_hz"):
        EIEConfig(clock_hz=clock)


def test_hostile_config_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(EieConfigError, match="not valid JSON"):
        EIEConfig.load(deep)
    with pytest.raises(EieConfigError, match="not a regular file"):
        EIEConfig.load("/dev/zero")
    mixed = tmp_path / "mixed.toml"
    mixed.write_text("x = 1\n[eie]\nn_pe = 8\n")
    with pytest.raises(EieConfigError, match="outside the \\[eie\\] table"):
        EIEConfig.load(mixed)


def test_json_key_given_twice_is_refused(tmp_path):
    p = tmp_path / "dup.json"
    p.write_text('{"n_pe": 4, "fifo_depth": 2, "n_pe": 8}')
    with pytest.raises(EieConfigError, match=r"dup\.json: not valid JSON: key 'n_pe' is given more than once"):
        EIEConfig.load(p)
    # nested objects too (an [eie]-style table)
    p.write_text('{"eie": {"n_pe": 4, "n_pe": 4}}')
    with pytest.raises(EieConfigError, match="given more than once"):
        EIEConfig.load(p)
    p.write_text('{"n_pe": 4, "fifo_depth": 2}')
    assert EIEConfig.load(p).n_pe == 4
