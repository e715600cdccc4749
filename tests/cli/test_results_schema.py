"""Issue 10 T3/T4: results JSON read by ``eiesim energy`` / ``plot`` is checked against its schema.

Before: ``[`` x 100,000 gave a RecursionError traceback and a string-valued
counter a ValueError traceback. Now each is one line naming the field.
"""

from __future__ import annotations

import copy
import json

import pytest

from eiesim.errors import EieInputError

from ..conftest import run_cli as run

COUNTERS = {"broadcasts": 14130, "group_loads": 1500, "ptr_reads": 904320, "spmat_line_reads": 188462,
            "entries": 802070, "acc_writes": 802070, "fillers": 0}
GOOD = {"config": {"n_pe": 64, "clock_hz": 8e8}, "layers": [
    {"name": "ip1", "shape": [300, 784], "n_pe": 64, "n_inputs": 100, "cycles": 26176, "counters": COUNTERS}]}


def test_good_document_prices(tmp_path, capsys):
    """The schema accepts what 'eiesim simulate --json' writes (the fields of the lenet run above)."""
    p = tmp_path / "r.json"
    p.write_text(json.dumps(GOOD))
    code, out, err = run(capsys, "energy", p)
    assert code == 0 and "ip1" in out, err


@pytest.mark.parametrize("command", ["energy", "plot"])
@pytest.mark.parametrize("text", ["[" * 100_000, '{"layers": ' + "[" * 100_000, '{"a":' * 50_000])
def test_deeply_nested_json_is_one_line(tmp_path, capsys, command, text):
    """T3: json.loads's RecursionError no longer escapes."""
    p = tmp_path / "deep.json"
    p.write_text(text)
    (tmp_path / "figs").mkdir()  # output folders must exist (docs/CLI.md)
    out_args = ["--out", tmp_path / "figs"] if command == "plot" else []
    code, out, err = run(capsys, command, p, *out_args)
    assert code == 2 and err.count("\n") == 1 and "nested too deeply" in err, err
    assert not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


@pytest.mark.parametrize("edit, field, rule", [
    (lambda d: d["layers"][0]["counters"].update(entries="802070"), "layers[0].counters.entries",
     'expected an integer >= 0, got "802070"'),
    (lambda d: d["layers"][0]["counters"].update(fillers=True), "layers[0].counters.fillers",
     "expected an integer >= 0, got true"),
    (lambda d: d["layers"][0]["counters"].update(ptr_reads=-1), "layers[0].counters.ptr_reads",
     "expected an integer >= 0, got -1"),
    (lambda d: d["layers"][0]["counters"].pop("acc_writes"), "layers[0].counters.acc_writes",
     "required field is missing"),
    (lambda d: d["layers"][0].update(cycles=2.5), "layers[0].cycles", "expected an integer >= 0, got 2.5"),
    (lambda d: d["layers"][0].pop("cycles"), "layers[0].cycles", "required field is missing"),
    (lambda d: d["layers"][0].update(shape=[300]), "layers[0].shape", "expected a list of 2 items"),
    (lambda d: d["layers"][0].update(n_pe=0), "layers[0].n_pe", "expected an integer >= 1, got 0"),
    (lambda d: d["layers"][0].update(counters=[1, 2]), "layers[0].counters", "expected an object"),
    (lambda d: d["config"].update(clock_hz="fast"), "config.clock_hz", 'expected a finite number > 0, got "fast"'),
    (lambda d: d.update(layers={}), "layers", "expected a list"),
    (lambda d: d.update(layers=[]), "layers", "expected a list of at least 1 item(s)"),
    (lambda d: d.update(layers=["x"]), "layers[0]", "expected an object"),
])
def test_energy_schema_errors_name_the_field(tmp_path, capsys, edit, field, rule):
    """T4: a string-valued counter (and every other type or range error) is one line naming the field."""
    doc = copy.deepcopy(GOOD)
    edit(doc)
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    code, out, err = run(capsys, "energy", p, "--json", tmp_path / "e.json")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{p}: field {field}: {rule}" in err, err
    assert not (tmp_path / "e.json").exists()


def test_nan_is_not_json(tmp_path, capsys):
    """NaN and Infinity are Python's JSON extensions, not JSON: refused before any field is read."""
    p = tmp_path / "r.json"
    p.write_text(json.dumps(GOOD).replace("800000000.0", "NaN"))
    code, out, err = run(capsys, "energy", p)
    assert code == 2 and "NaN is not JSON" in err, err


def _energy_doc():
    breakdown = {"by_module_pj": {"ptr_read": 10.0}, "by_kind_pj": {"memory": 10.0}, "n_inputs": 1}
    return {"energy": {"layers": [{"name": "l", "activity": breakdown, "paper": dict(breakdown)}]}}


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["energy"]["layers"][0]["activity"]["by_module_pj"].update(ptr_read="x"),
     "energy.layers[0].activity.by_module_pj.ptr_read"),
    (lambda d: d["energy"]["layers"][0]["activity"].update(n_inputs=0), "energy.layers[0].activity.n_inputs"),
    (lambda d: d["energy"]["layers"][0].pop("name"), "energy.layers[0].name"),
    (lambda d: d.update(layers=[{"name": "l", "speedup": {}}], geomean={}), "layers[0].speedup.cpu_dense"),
    (lambda d: d.update(layers=[{"name": "l", "speedup": {"cpu_dense": "9"}}], geomean={},
                        platforms={p: {"power_w": 1.0} for p in ("cpu", "gpu", "mgpu")}),
     "layers[0].speedup.cpu_dense"),
])
def test_plot_schema_errors_before_any_figure(tmp_path, capsys, edit, field):
    doc = _energy_doc()
    edit(doc)
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    (tmp_path / "figs").mkdir()
    code, out, err = run(capsys, "plot", p, "--out", tmp_path / "figs")
    assert code == 2 and err.count("\n") == 1 and f"field {field}:" in err, err
    assert not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


def test_plot_good_energy_doc_draws(tmp_path, capsys):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_energy_doc()))
    (tmp_path / "figs").mkdir()
    code, out, err = run(capsys, "plot", p, "--out", tmp_path / "figs")
    assert code == 0 and (tmp_path / "figs" / "energy_breakdown.png").exists(), err


def test_check_schema_message_is_one_line():
    from eiesim.commands._results import ENERGY_SCHEMA, check_schema

    with pytest.raises(EieInputError, match=r"^r\.json: field layers\[0\]\.cycles: expected an integer >= 0, got "):
        check_schema({"layers": [{"cycles": "x" * 500}]}, ENERGY_SCHEMA, "r.json")
