"""Bad arguments and misleading messages a fresh-install tester found (bugs 6-13).

Every case: exit code 2 (or 1 where a rule is broken), one line on stderr that
names the flag, file or layer at fault, no traceback. Files live in tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eiesim.compress.reference import layer_names
from eiesim.config import MAX_N_PE
from eiesim.errors import EieInputError
from eiesim.format import CompressedLayer
from eiesim.format.container import MAX_DIM, Network, load_network, save_network
from eiesim.format.eiedump import read_dump, write_dump

from ..conftest import run_cli as run

REPO = Path(__file__).resolve().parents[2]


def assert_error(code, err, *needles, exit_code=2):
    assert code == exit_code, err
    assert err.startswith("eiesim: error:"), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture
def model(tmp_path):
    """The tester's two-layer model (20 -> 30 -> 10, with biases) and an input vector."""
    r = np.random.default_rng(0)
    p = tmp_path / "good.npz"
    np.savez(p, **{"fc1.weight": r.standard_normal((30, 20)).astype("f4"),
                   "fc1.bias": r.standard_normal(30).astype("f4"),
                   "fc2.weight": r.standard_normal((10, 30)).astype("f4"),
                   "fc2.bias": r.standard_normal(10).astype("f4")})
    np.save(tmp_path / "in20.npy", np.ones(20, "f4"))
    return p


@pytest.fixture
def compressed(capsys, tmp_path, model):
    out = tmp_path / "g.eie"
    code, _, err = run(capsys, "compress", model, "--out", out, "--density", "0.5")
    assert code == 0, err
    return out


@pytest.fixture
def dump(tmp_path):
    """A small authors'-format dump directory (24 x 13 over 4 PEs, 4-bit codes) named 'mydump'."""
    r = np.random.default_rng(3)
    codes = r.integers(0, 16, size=(24, 13)) * (r.random((24, 13)) < 0.3)
    cb = np.concatenate([[0.0], np.linspace(-1.5, -0.1, 7), np.linspace(0.1, 1.5, 8)]).astype(np.float32)
    lay = CompressedLayer.from_codes(codes, cb, 4, code_bits=4, index_bits=4, name="x")
    return write_dump(lay, tmp_path / "mydump", activations=np.ones(13, np.float32))


# --------------------------------------------------------------------------- bug 6: negative seeds
def test_compress_negative_seed_is_a_usage_error(capsys, tmp_path, model):
    code, _, err = run(capsys, "compress", model, "--out", tmp_path / "x.eie", "--init", "random", "--seed", "-1")
    assert_error(code, err, "--seed: must be >= 0")
    assert not (tmp_path / "x.eie").exists()


@pytest.mark.parametrize("script, argv, needle", [
    ("reproduce_deep_compression.py", ["--seed", "-1"], "--seed: must be >= 0"),
    ("study_deep_compression_recipe.py", ["--seeds", "-1", "--prune", "P0", "--quant", "Q0"],
     "--seeds: must be >= 0"),
    ("make_traces.py", ["--seed", "-1"], "--seed: must be >= 0"),
    ("reproduce_eie.py", ["--seed", "-1"], "--seed: must be >= 0"),
    ("study_deep_compression_recipe.py", ["--jobs", "0"], "--jobs: must be >= 1"),
    ("study_deep_compression_recipe.py", ["--prune", "PX", "--quant", "Q0"], "valid: P0, P1"),
])
def test_scripts_reject_bad_arguments_before_any_work(tmp_path, script, argv, needle):
    # argparse refuses the value before MNIST is looked for or loaded: no output, a usage error
    r = subprocess.run([sys.executable, str(REPO / "scripts" / script), *argv],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr, r.stderr
    assert r.stderr.startswith("usage:"), r.stderr  # nothing ran (no progress log) before the refusal
    assert "Traceback" not in r.stderr and r.stdout == ""


# --------------------------------------------------------------------------- bug 7: --n-out / --n-in range
@pytest.mark.parametrize("argv, needle", [
    (["validate", "{d}", "--n-out", "100000000000000000000"], "--n-out: must be <= "),
    (["simulate", "--eie-dump", "{d}", "--n-out", "100000000000000000000"], "--n-out: must be <= "),
    (["simulate", "--eie-dump", "{d}", "--n-out", "100000000000"], "--n-out: must be <= "),
    (["validate", "{d}", "--n-out", "-1"], "--n-out: must be >= 1"),
    (["validate", "{d}", "--n-out", "0"], "--n-out: must be >= 1"),
    (["validate", "{d}", "--n-in", "100000000000000000000"], "--n-in: must be <= "),
    (["validate", "{d}", "--n-in", "0"], "--n-in: must be >= 1"),
    (["validate", "{d}", "--n-out", str(MAX_DIM + 1)], f"--n-out: must be <= {MAX_DIM}"),
])
def test_dump_dimensions_are_range_checked(capsys, dump, argv, needle):
    code, out, err = run(capsys, *[a.format(d=dump) for a in argv])
    assert_error(code, err, needle)
    assert "FILLER-MISSING" not in out + err  # the file is not blamed


def test_dump_dimension_bound_is_the_container_limit(capsys, dump):
    # MAX_DIM itself is accepted (a layer of that many rows is legal, only mostly empty)
    code, out, err = run(capsys, "validate", dump, "--n-out", MAX_DIM, "--quiet")
    assert code == 0, out + err
    assert out.strip() == "conformant: 0 error(s), 0 warning(s)"
    with pytest.raises(EieInputError, match="n_out = 100000000000000000000: must be an integer in 1..268435456"):
        read_dump(dump, n_out=10 ** 20)
    from eiesim.format.validate import validate_dump

    with pytest.raises(EieInputError, match="n_in = -1"):
        validate_dump(dump, n_in=-1)


# --------------------------------------------------------------------------- bug 8: --n-pe
def test_compress_n_pe_bounded_like_the_config(capsys, tmp_path, model):
    for n in (1_000_000_000, MAX_N_PE + 1):
        code, _, err = run(capsys, "compress", model, "--out", tmp_path / "pe.eie", "--n-pe", n)
        assert_error(code, err, f"--n-pe: must be <= {MAX_N_PE}")
    code, _, err = run(capsys, "compress", model, "--out", tmp_path / "pe.eie", "--n-pe", "0")
    assert_error(code, err, "--n-pe: must be >= 1")
    assert not (tmp_path / "pe.eie").exists()


def test_simulate_n_pe_flag_wins_over_the_layout(capsys, tmp_path, compressed):
    from eiesim.commands.simulate import _relayout

    net = load_network(compressed)
    wide = tmp_path / "pe5000.eie"
    save_network(wide, _relayout(net, 5000))
    inp = tmp_path / "in20.npy"
    code, out, err = run(capsys, "simulate", "--network", wide, "--input", inp, "--n-pe", "64",
                         "--save-output", tmp_path / "a.npy")
    assert code == 0, err
    assert "re-interleaved over 64 PEs" in out
    code, _, err = run(capsys, "simulate", "--network", compressed, "--input", inp, "--save-output",
                       tmp_path / "b.npy")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    # without the flag: say why and what to do, naming the file
    code, _, err = run(capsys, "simulate", "--network", wide, "--input", inp)
    assert_error(code, err, "pe5000.eie", "5000 PEs", "--n-pe")
    code, _, err = run(capsys, "simulate", "--network", compressed, "--input", inp, "--n-pe", MAX_N_PE + 1)
    assert_error(code, err, f"--n-pe: must be <= {MAX_N_PE}")


# --------------------------------------------------------------------------- bug 9: duplicate layer names
def test_compress_gives_unique_names_and_validate_pairs_them(capsys, tmp_path):
    r = np.random.default_rng(1)
    src = tmp_path / "dup.npz"
    np.savez(src, **{"a.weight": r.standard_normal((20, 20)).astype("f4"),
                     "a.weight_orig": r.standard_normal((20, 20)).astype("f4")})
    out = tmp_path / "dup.eie"
    code, _, err = run(capsys, "compress", src, "--out", out)
    assert code == 0, err
    net = load_network(out)
    assert [l.name for l in net.layers] == ["a.weight", "a.weight_orig"]
    decoded = tmp_path / "decoded.npz"
    np.savez(decoded, **{"a.weight": net.layers[0].to_dense(), "a.weight_orig": net.layers[1].to_dense()})
    js = tmp_path / "v.json"
    code, out_text, err = run(capsys, "validate", out, "--reference", decoded, "--json", js)
    assert code == 0, out_text + err
    assert "EQUIV-DENSE-MISMATCH" not in out_text
    pairs = json.loads(js.read_text())["equivalence"]["layers"]
    assert [(p["name"], p["weight"]) for p in pairs] == [("a.weight", "a.weight"),
                                                         ("a.weight_orig", "a.weight_orig")]


def test_layer_names_fall_back_to_the_full_key():
    assert layer_names(["fc1.weight", "fc2.weight", "w"]) == ["fc1", "fc2", "w"]
    assert layer_names(["a.weight", "a.weight_orig", ".weight", "a.weight.x", "b.w"]) == \
        ["a.weight", "a.weight_orig", ".weight", "a.weight.x", "b"]
    names = layer_names(["a.b", "a.c", "a.b.d"])  # 'a.b.d' -> 'a.b' collides with a fallback
    assert len(set(names)) == 3


def test_validate_reference_refuses_duplicate_or_empty_names(capsys, tmp_path, compressed):
    net = load_network(compressed)
    import dataclasses

    same = tmp_path / "same.eie"
    save_network(same, Network(tuple(dataclasses.replace(l, name="a") for l in net.layers),
                               activation=net.activation))
    ref = tmp_path / "ref.npz"
    np.savez(ref, **{"a.weight": net.layers[0].to_dense()})
    for flag in ("--reference", "--mask"):
        code, out, err = run(capsys, "validate", same, flag, ref)
        assert_error(code, err, "same.eie", "layers 0, 1", "'a'", "by name")
    from eiesim.compress.reference import pair_references

    layers = [SimpleNamespace(index=0, name="fc", shape=(2, 2)), SimpleNamespace(index=1, name="", shape=(2, 2))]
    with pytest.raises(EieInputError, match="layer 1 has an empty name"):
        pair_references(layers, {"fc.weight": np.zeros((2, 2), np.float32)}, target="x.net")


# --------------------------------------------------------------------------- bug 10: a dump given as '.'
def test_dump_given_as_dot_is_named_after_the_directory(capsys, tmp_path, dump, monkeypatch):
    lay = read_dump(dump).layer
    ref = tmp_path / "ref.npz"
    np.savez(ref, **{"mydump.weight": lay.to_dense(), "mydump.bias": np.zeros(lay.n_out, np.float32)})
    monkeypatch.chdir(dump)
    assert read_dump(".").layer.name == "mydump"
    js = tmp_path / "v.json"
    code, out, err = run(capsys, "validate", ".", "--reference", ref, "--json", js)
    assert code == 0, out + err
    doc = json.loads(js.read_text())
    assert doc["layers"][0]["name"] == "mydump"
    assert doc["equivalence"]["layers"][0]["weight"] == "mydump.weight"
    code, out, err = run(capsys, "inspect", ".")
    assert code == 0, err
    assert "mydump" in out
    monkeypatch.chdir(dump / "ptr")
    code, out, err = run(capsys, "validate", "..", "--json", js)
    assert code == 0, out + err
    assert json.loads(js.read_text())["layers"][0]["name"] == "mydump"


# --------------------------------------------------------------------------- bug 11: --strict verdict
def test_strict_verdict_matches_the_exit_status(capsys, tmp_path):
    c = np.zeros((12, 4), dtype=np.int64)
    c[0, 0], c[10, 0], c[3, 0], c[1, 1], c[5, 2], c[2, 3] = 1, 2, 3, 1, 2, 3
    lay = CompressedLayer.from_codes(c, np.array([0.0, 0.5, -0.25, 1.0], np.float32), 2, code_bits=2,
                                     index_bits=2, name="small")
    z = lay.z.copy()
    z[1] = 2  # a non-canonical filler: a warning only
    p = tmp_path / "w.eie"
    save_network(p, [CompressedLayer(shape=lay.shape, n_pe=2, codebook=lay.codebook, ptr=lay.ptr, v=lay.v, z=z,
                                     code_bits=2, index_bits=2, name="small")])
    code, out, _ = run(capsys, "validate", p, "--strict", "--quiet")
    assert code == 1
    assert out.strip() == "NOT conformant under --strict: 0 error(s), 1 warning(s)"
    code, out, _ = run(capsys, "validate", p, "--strict")
    assert code == 1 and out.strip().splitlines()[-1] == "NOT conformant under --strict: 0 error(s), 1 warning(s)"
    code, out, _ = run(capsys, "validate", p, "--quiet")
    assert code == 0 and out.strip() == "conformant: 0 error(s), 1 warning(s)"


# --------------------------------------------------------------------------- bug 12: messages name the culprit
def test_compress_empty_layer_name(capsys, tmp_path, model):
    for spec in (",", "fc1.weight,", "fc1.weight,,fc2.weight"):
        code, _, err = run(capsys, "compress", model, "--out", tmp_path / "x.eie", "--layers", spec)
        assert_error(code, err, "--layers", "empty name")
        assert "compress_arrays" not in err


def test_compress_storage_index_bits_named(capsys, tmp_path, model):
    for flag in ("--storage-index-bits", "--index-bits"):
        code, _, err = run(capsys, "compress", model, "--out", tmp_path / "x.eie", flag, "0")
        assert_error(code, err, f"{flag}: must be >= 1")
        code, _, err = run(capsys, "compress", model, "--out", tmp_path / "x.eie", flag, "9")
        assert_error(code, err, f"{flag}: must be <= 8")


@pytest.mark.parametrize("q", ["inf", "nan", "-1", "1,inf"])
def test_compress_quality_must_be_finite(capsys, tmp_path, model, q):
    code, _, err = run(capsys, "compress", model, "--out", tmp_path / "x.eie", "--quality", q)
    assert_error(code, err, "--quality: ", "finite number >= 0")
    assert "prune_round" not in err


def test_compress_empty_weight_names_file_and_array(capsys, tmp_path):
    src = tmp_path / "e.npz"
    np.savez(src, **{"fc.weight": np.zeros((0, 20), "f4")})
    code, _, err = run(capsys, "compress", src, "--out", tmp_path / "x.eie")
    assert_error(code, err, "e.npz", "'fc.weight'", "(0, 20)")


def test_simulate_config_width_mismatch_names_the_config(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"code_bits": 2, "index_bits": 6}')
    code, _, err = run(capsys, "simulate", "--config", cfg)
    assert_error(code, err, "c.json", "config field 'code_bits'", "4-bit codes")
    assert "input 0" not in err


def test_simulate_dump_that_is_a_file(capsys, tmp_path, compressed):
    code, _, err = run(capsys, "simulate", "--eie-dump", compressed, "--input", tmp_path / "in20.npy")
    assert_error(code, err, "g.eie", "is a file, not a dump directory")
    code, _, err = run(capsys, "simulate", "--eie-dump", tmp_path / "nothere", "--input", tmp_path / "in20.npy")
    assert_error(code, err, "nothere", "dump directory is missing")
    code, _, err = run(capsys, "validate", compressed, "--format", "dump")
    assert_error(code, err, "g.eie", "is a file, not a dump directory")


# --------------------------------------------------------------------------- bug 13: labels out of range
@pytest.mark.parametrize("labels, shown", [(-np.arange(5) - 100, "labels[0] is -100"),
                                           (np.array([1, 2, 3, 10 ** 12, 4]), "labels[3] is 1000000000000")])
def test_simulate_labels_must_index_the_outputs(capsys, tmp_path, labels, shown):
    p = tmp_path / "nl.npz"
    np.savez(p, inputs=np.random.default_rng(0).random((5, 784)).astype("f4"), labels=labels)
    code, out, err = run(capsys, "simulate", "--input", p)
    assert_error(code, err, "nl.npz", "'labels' must be integers in 0..9", shown)
    assert "accuracy" not in out


# --------------------------------------------------------------------------- flags that do not apply
def test_flags_that_do_not_apply_to_the_input_are_refused(capsys, tmp_path, compressed, dump):
    layers = tmp_path / "layers.json"
    layers.write_text("[]")
    cases = [
        (("validate", compressed, "--n-out", 5), ("--n-out applies to a dump directory only", "read as eie")),
        (("validate", compressed, "--n-in", 5), ("--n-in applies to a dump directory only",)),
        (("validate", compressed, "--layers", layers), ("--layers applies to a .net stream only", "read as eie")),
        (("validate", dump, "--layers", layers), ("--layers applies to a .net stream only", "read as dump")),
        (("inspect", compressed, "--layers", layers), ("--layers applies to a .net stream only", "read as eie")),
        (("simulate", "--n-out", 5), ("--n-out applies to --eie-dump only",)),
        (("simulate", "--network", compressed, "--input", tmp_path / "in20.npy", "--n-out", 5),
         ("--n-out applies to --eie-dump only",)),
    ]
    for argv, needles in cases:
        code, out, err = run(capsys, *argv)
        assert_error(code, err, *needles)
        assert out == ""
    # where they apply, they still work
    code, _, err = run(capsys, "validate", dump, "--n-out", 24, "--quiet")
    assert code == 0, err


def test_a_bad_energy_table_stops_simulate_before_it_runs(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("garbage = [\n")
    code, out, err = run(capsys, "simulate", "--energy-table", bad)
    assert_error(code, err, "bad.toml", "not valid TOML")
    assert out == ""  # nothing simulated or printed first
