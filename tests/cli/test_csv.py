"""``--csv OUT``: every command that prints a table writes the same table as CSV (issue 16 §3).

Each CSV is read back with :func:`csv.reader` and compared cell by cell with the printed
table (a printed number is the CSV value rounded as printed) and with the ``--json`` values
of the same run, on the real files of ../shared/data and the embedded LeNet trace.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re

import numpy as np
import pytest

from eiesim.report.table import Column, Table, count, fixed

from ..conftest import TRACES, run_cli

_NUM = re.compile(r"^-?[\d,]*\.?\d+(e[+-]?\d+)?$")


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def printed_table(out: str, first_title: str):
    """``(header, rows)`` of the aligned table whose header starts with ``first_title``; columns from the rule."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(first_title) and lines[i + 1].startswith("-"))
    rule = lines[start + 1]
    spans = [m.span() for m in re.finditer(r"-+", rule)]

    def cells(line):
        padded = line.ljust(len(rule))
        return [padded[a:b].strip() for a, b in spans]

    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        if line.startswith("-") and set(line) <= {"-", " "}:
            continue
        rows.append(cells(line))
    return cells(lines[start]), rows


def same_cell(printed: str, field: str) -> bool:
    """A CSV field shows the printed cell: equal text, or the number the text rounds."""
    if printed == field:
        return True
    text = printed.rstrip("%x").replace(",", "")
    if not _NUM.match(text) or field == "":
        return False
    decimals = len(text.split(".")[1]) if "." in text else 0
    return math.isclose(round(float(field), decimals), float(text), rel_tol=0, abs_tol=10 ** -decimals / 2 + 1e-12)


def assert_same_table(printed, fields, packed=None):
    """Every printed row against its CSV row; ``packed``: printed column -> function(cell) -> CSV fields."""
    packed = packed or {}
    p_head, p_rows = printed
    c_head, c_rows = fields
    assert len(p_rows) == len(c_rows)
    for p, c in zip(p_rows, c_rows):
        expanded = []
        for j, cell in enumerate(p):
            expanded.extend(packed[j](cell) if j in packed else [cell])
        assert len(expanded) == len(c) == len(c_head)
        for e, f, title in zip(expanded, c, c_head):
            assert same_cell(e, f), (title, e, f)


def split_shape(cell):
    return cell.split(" x ") if cell else ["", ""]


# --------------------------------------------------------------------------- simulate
def test_simulate_fc8_csv_is_the_printed_table_with_the_json_values(capsys, tmp_path, fc8_dir):
    out_csv, out_json = tmp_path / "fc8.csv", tmp_path / "fc8.json"
    code, out, err = run_cli(capsys, "simulate", "--eie-dump", fc8_dir, "--fifo-depth", "7",
                             "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    assert header == ["layer", "n_out", "n_in", "non-zeros % (W, no bias)", "acts %", "entries", "fillers",
                      "cycles", "time us", "LB eff %", "spmat reads", "ptr reads"]
    assert [r[0] for r in rows] == ["alexnet_fc8_eie", "total"]
    row = dict(zip(header, rows[0]))
    assert (row["n_out"], row["n_in"], row["cycles"]) == ("1000", "4096", "7926")  # the authors' 7,926 cycles
    doc = json.loads(out_json.read_text())
    layer = doc["layers"][0]
    assert int(row["entries"]) == layer["stored_entries"] == 1_051_991
    assert float(row["time us"]) == pytest.approx(7926 / 800e6 * 1e6)
    assert float(row["LB eff %"]) == pytest.approx(100 * layer["load_balance_efficiency"], rel=1e-12)
    assert int(row["spmat reads"]) == layer["counters"]["spmat_line_reads"]
    assert float(row["non-zeros % (W, no bias)"]) == 100 * 1_051_032 / (1000 * 4096)
    assert_same_table(printed_table(out, "layer"), (header, rows), packed={1: split_shape})


def test_simulate_csv_of_many_inputs_holds_unrounded_means(capsys, tmp_path):
    out_csv, out_json = tmp_path / "lenet.csv", tmp_path / "lenet.json"
    code, out, err = run_cli(capsys, "simulate", "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    assert "cycles per input" in header and "spmat reads per input" in header
    assert [r[0] for r in rows] == ["ip1", "ip2", "ip3", "total"]
    doc = json.loads(out_json.read_text())
    n = doc["n_inputs"]
    assert n == 100
    col = header.index("cycles per input")
    for r, layer in zip(rows, doc["layers"]):
        assert float(r[col]) == layer["cycles"] / n  # the mean itself, not the printed one decimal
    assert float(rows[-1][col]) == sum(l["cycles"] for l in doc["layers"]) / n
    assert rows[-1][1:5] == ["", "", "", ""]  # the total row leaves shape and densities empty
    assert_same_table(printed_table(out, "layer"), (header, rows), packed={1: split_shape})


def test_simulate_csv_is_refused_before_simulating(capsys, tmp_path):
    code, out, err = run_cli(capsys, "simulate", "--csv", tmp_path / "missing" / "x.csv")
    assert code == 2 and "--csv" in err and "does not exist" in err and out == ""
    same = tmp_path / "same.out"
    code, out, err = run_cli(capsys, "simulate", "--csv", same, "--json", same)
    assert code == 2 and "same file" in err and out == "" and not same.exists()
    # an input is never overwritten: a copy in tmp_path (the checkout's traces/ is not the embedded input under a
    # non-editable install, so naming it here once overwrote a committed file -- fresh-user finding)
    inp = tmp_path / "in.npz"
    inp.write_bytes((TRACES / "mnist_test100.npz").read_bytes())
    before = inp.read_bytes()
    code, out, err = run_cli(capsys, "simulate", "--input", inp, "--csv", inp)
    assert code == 2 and "--csv" in err and out == ""
    assert inp.read_bytes() == before


# --------------------------------------------------------------------------- energy
def test_energy_csv_has_both_methods_and_the_module_breakdown(capsys, tmp_path, fc8_dir):
    res = tmp_path / "fc8.json"
    assert run_cli(capsys, "simulate", "--eie-dump", fc8_dir, "--json", res)[0] == 0
    out_csv, out_json = tmp_path / "e.csv", tmp_path / "e.json"
    code, out, err = run_cli(capsys, "energy", res, "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    from eiesim.energy.model import KIND_LABELS, MODULE_LABELS

    assert header[:8] == ["layer", "paper method uJ", "activity uJ", "activity/paper", "activity W", "SRAM %",
                          "logic %", "clock %"]
    assert header[8:] == [f"{v} uJ" for v in MODULE_LABELS.values()] + [f"{v} uJ" for v in KIND_LABELS.values()]
    (row,) = rows
    priced = json.loads(out_json.read_text())["energy"]["layers"][0]
    a = priced["activity"]
    assert float(row[1]) == priced["paper"]["per_input_pj"] / 1e6
    assert float(row[2]) == a["per_input_pj"] / 1e6
    assert float(row[3]) == priced["activity_over_paper"]
    by_module = [float(x) for x in row[8:8 + len(MODULE_LABELS)]]
    assert by_module == [a["by_module_pj"][k] / a["n_inputs"] / 1e6 for k in MODULE_LABELS]
    assert sum(by_module) == pytest.approx(float(row[2]), rel=1e-9)  # the modules add up to the total
    p_head, p_rows = printed_table(out, "layer")
    assert p_head == header[:8]
    assert_same_table((p_head, p_rows), (header[:8], [r[:8] for r in rows]))


# --------------------------------------------------------------------------- inspect
@pytest.mark.parametrize("which", ["fc8", "squeezenet", "lenet"])
def test_inspect_csv_matches_table_and_json(capsys, tmp_path, which, request):
    path = {"fc8": lambda: request.getfixturevalue("fc8_dir"),
            "squeezenet": lambda: request.getfixturevalue("squeezenet_dir") / "compressed_SqueezeNet.net",
            "lenet": lambda: TRACES / "lenet300100.eie"}[which]()
    out_csv, out_json = tmp_path / "i.csv", tmp_path / "i.json"
    code, out, err = run_cli(capsys, "inspect", path, "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    doc = json.loads(out_json.read_text())
    assert [r[0] for r in rows] == [l["name"] for l in doc["layers"]] + ["total"]
    for key, title in (("entries", "entries"), ("fillers", "fillers"), ("nonzeros", "non-zeros (W, no bias)"),
                       ("bytes", "bytes"), ("dense_bytes", "dense bytes")):
        col = header.index(title)
        assert [int(r[col]) for r in rows] == [l[key] for l in doc["layers"]] + [doc["total"][key]]
    col = header.index("dense / bytes")
    assert float(rows[-1][col]) == doc["total"]["dense_bytes"] / doc["total"]["bytes"]
    assert_same_table(printed_table(out, "layer"), (header, rows), packed={})
    if which == "squeezenet":
        assert len(rows) == 27 and "PEs" not in header  # 26 layers, .net has no PEs
    if which == "fc8":
        col = header.index("PE max/mean")
        assert float(rows[0][col]) == doc["layers"][0]["balance"]["pe_balance"]
        assert rows[-1][col] == ""


# --------------------------------------------------------------------------- validate
def test_validate_csv_lists_every_finding(capsys, tmp_path, fc8_dir):
    rng = np.random.default_rng(3)
    model = tmp_path / "m.npz"
    w1 = rng.standard_normal((24, 16)).astype(np.float32)
    np.savez(model, **{"fc1.weight": w1, "fc1.bias": rng.standard_normal(24).astype(np.float32),
                       "fc2.weight": rng.standard_normal((6, 24)).astype(np.float32)})
    eie = tmp_path / "m.eie"
    assert run_cli(capsys, "compress", model, "--out", eie, "--density", "0.4", "--n-pe", "4")[0] == 0
    bad = tmp_path / "bad.npz"  # the reference differs from what was compressed: equivalence errors
    np.savez(bad, **{"fc1.weight": w1 + 1, "fc2.weight": np.zeros((6, 24), np.float32)})
    out_csv, out_json = tmp_path / "v.csv", tmp_path / "v.json"
    code, out, err = run_cli(capsys, "validate", eie, "--reference", bad, "--csv", out_csv, "--json", out_json)
    assert code == 1, err
    header, rows = read_csv(out_csv)
    assert header == ["code", "severity", "layer", "layer name", "PE", "column", "entry", "member", "count",
                      "message"]
    doc = json.loads(out_json.read_text())
    found = doc["findings"] + doc["info"]
    assert len(rows) == len(found) and any(r[0] == "EQUIV-DENSE-MISMATCH" for r in rows)
    for r, f in zip(rows, found):
        loc = f.get("location", {})
        assert r[0] == f["code"] and r[1] == f["severity"] and r[-1] == f["message"]
        assert r[2] == str(loc.get("layer", "")) and r[3] == (loc.get("layer_name") or "")
        assert int(r[8]) == f["count"]
    printed = [l for l in out.splitlines() if l.startswith(("error ", "warning ", "info "))]
    assert len(printed) == len(rows)


# --------------------------------------------------------------------------- compress, workloads
def test_compress_csv_splits_packed_cells_and_matches_json(capsys, tmp_path):
    rng = np.random.default_rng(1)
    model = tmp_path / "m.npz"
    np.savez(model, **{"a.weight": rng.standard_normal((30, 20)).astype(np.float32),
                       "b.weight": rng.standard_normal((5, 30)).astype(np.float32)})
    out_csv, out_json = tmp_path / "c.csv", tmp_path / "c.json"
    code, out, err = run_cli(capsys, "compress", model, "--out", tmp_path / "m.eie", "--density", "0.25",
                             "--huffman", "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    assert header[0] == "layer" and "entries" in header and "fillers" in header
    assert "compress rate (P+Q) %" in header and "compression (P+Q) x" in header
    doc = json.loads(out_json.read_text())
    storage = [l["storage"] for l in doc["layers"]] + [doc["storage_total"]]
    assert [r[0] for r in rows] == ["a", "b", "total"]
    for r, st in zip(rows, storage):
        row = dict(zip(header, r))
        assert int(row["entries"]) == st["n_entries"] and int(row["fillers"]) == st["n_fillers"]
        assert int(row["#weights"]) == st["n_weights"]
    p_head, p_rows = printed_table(out, "layer")
    p_rows = p_rows[:-1]  # the footnote follows the table
    rate = lambda cell: re.match(r"([\d.]+)% \(([\d.,]+)x\)", cell).groups()  # noqa: E731
    ent = lambda cell: re.match(r"([\d,]+) \(([\d,]+)\)", cell).groups()  # noqa: E731
    count_k = {1: lambda cell: [cell] if "K" not in cell else [str(float(cell[:-1]) * 1000)]}
    packed = {7: rate, 8: rate, 9: ent, **count_k}
    assert_same_table((p_head, p_rows), (header, rows), packed=packed)


def test_workloads_csv_is_the_list(capsys, tmp_path):
    out_csv, out_json = tmp_path / "w.csv", tmp_path / "w.json"
    code, out, err = run_cli(capsys, "workloads", "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    assert header == ["workload", "installed", "install command"]
    docs = json.loads(out_json.read_text())["workloads"]
    assert [r[0] for r in rows] == [d["name"] for d in docs] and "lenet-300-100" in [r[0] for r in rows]
    assert [r[1] for r in rows] == ["yes" if d["installed"] else "no" for d in docs]
    assert_same_table(printed_table(out, "workload"), (header, rows))


# --------------------------------------------------------------------------- the Table itself
def test_table_text_and_csv_from_one_set_of_values():
    t = Table([Column("name"), Column("shape", lambda s: f"{s[0]} x {s[1]}", csv=("rows", "cols")),
               Column("n", count), Column("t us", fixed(3)), Column("r", fixed(2), none="-")],
              [["a,b", (3, 4), 12345, 0.1 + 0.2, None], None, ["total", "", np.int64(7), 1 / 3, 2.0]])
    assert t.text().splitlines() == [
        "name   shape       n   t us     r",
        "-----  -----  ------  -----  ----",
        "a,b    3 x 4  12,345  0.300     -",
        "-----  -----  ------  -----  ----",
        "total              7  0.333  2.00",
    ]
    rows = list(csv.reader(io.StringIO(t.to_csv())))
    assert rows == [["name", "rows", "cols", "n", "t us", "r"],
                    ["a,b", "3", "4", "12345", repr(0.1 + 0.2), ""],  # a comma in a cell is quoted, not split
                    ["total", "", "", "7", repr(1 / 3), "2.0"]]
    assert float(rows[1][4]) == 0.1 + 0.2 and float(rows[2][4]) == 1 / 3  # full precision round trip
    assert t.to_csv().count("\n") == 3 and '"a,b"' in t.to_csv()


def test_text_escapes_control_characters_and_the_csv_keeps_them(capsys, tmp_path):
    """A layer name from a file with NUL, a newline or U+202E (right-to-left override) went raw to
    the terminal table (fresh-user finding 8): the text escapes them; CSV and JSON keep the name."""
    name = "ip\x001\n\u202eevil"
    t = Table([Column("name"), Column("n", count)], [[name, 3], ["ok", 4]])
    assert t.text().splitlines() == [
        "name                 n",
        "-------------------  -",
        "ip\\x001\\n\\u202eevil  3",
        "ok                   4",
    ]
    assert list(csv.reader(io.StringIO(t.to_csv())))[1] == [name, "3"]
    from eiesim.format.container import load_network, save_network
    from eiesim.format.network import Network

    net = load_network(TRACES / "lenet300100.eie")
    path = tmp_path / "odd.eie"
    save_network(path, Network([dataclasses.replace(net.layers[0], name=name)] + list(net.layers[1:])))
    code, out, err = run_cli(capsys, "inspect", str(path))
    assert code == 0, err
    assert "ip\\x001\\n\\u202eevil" in out and "\u202e" not in out and "\x00" not in out


def test_simulate_workload_csv_matches_json(capsys, tmp_path):
    out_csv, out_json = tmp_path / "w.csv", tmp_path / "w.json"
    code, out, err = run_cli(capsys, "simulate", "--workload", "lenet-300-100", "--inputs", "2",
                             "--csv", out_csv, "--json", out_json)
    assert code == 0, err
    header, rows = read_csv(out_csv)
    assert header == ["layer", "kind", "n_out", "n_in", "weights %", "acts %", "M x V", "cycles per M x V",
                      "cycles", "time us", "LB eff %"]
    layers = json.loads(out_json.read_text())["layers"]
    assert [r[0] for r in rows] == ["ip1", "ip2", "ip3"]
    for r, l in zip(rows, layers):
        assert int(r[8]) == l["cycles"] and int(r[6]) == 2 and float(r[7]) == l["cycles"] / 2
    assert_same_table(printed_table(out, "layer"), (header, rows), packed={2: split_shape})


def test_simulate_lstm_network_prints_its_time_steps_and_writes_its_rows(capsys, tmp_path):
    from eiesim.compress.pipeline import compress_arrays
    from eiesim.format.container import Network, save_network
    from eiesim.format.lstm import gate_matrix
    from eiesim.sim.lstm import host_ops_per_step

    rng = np.random.default_rng(7)
    X, H, T = 5, 6, 7
    w, b = gate_matrix(rng.normal(size=(4 * H, X)) * 0.5, rng.normal(size=(4 * H, H)) * 0.5,
                       rng.normal(size=4 * H) * 0.1)
    lstm = compress_arrays([w], [b], ["lstm"], densities=0.5, n_pe=4, huffman=False).layers[0]
    fc = compress_arrays([rng.normal(size=(3, H)).astype(np.float32)], [None], ["out"], n_pe=4,
                         huffman=False).layers[0]
    net, xs = tmp_path / "l.eie", tmp_path / "x.npy"
    save_network(net, Network((lstm, fc), activation="relu", kinds=("lstm", "fc")), {})
    np.save(xs, rng.normal(size=(T, X)).astype(np.float32))
    out_csv, out_json = tmp_path / "l.csv", tmp_path / "l.json"
    code, out, err = run_cli(capsys, "simulate", "--network", net, "--input", xs, "--csv", out_csv,
                             "--json", out_json)
    assert code == 0, err
    layers = json.loads(out_json.read_text())["layers"]
    cyc = layers[0]["cycles"]
    ops = host_ops_per_step(H)
    line = (f"lstm layer 'lstm': {T} time steps, {cyc:,} cycles per sequence ({cyc / T:,.1f} per step); "
            "host element-wise ops (not cycles): " + ", ".join(f"{k} {v * T:,}" for k, v in ops.items()))
    assert line in out.splitlines()
    header, rows = read_csv(out_csv)
    assert [r[:3] for r in rows] == [["lstm", str(4 * H), str(X + H)], ["out", "3", str(H)], ["total", "", ""]]
    assert float(rows[0][header.index("cycles per input")]) == cyc / T
