"""Issue 10: every subcommand on a corpus of hostile inputs -- no traceback, exit 1 or 2, no output left.

Each file argument of each subcommand of :data:`eiesim.cli.COMMANDS` gets
every hostile file of the corpus (empty, garbage, text, JSON nested 100,000
deep, JSON of the wrong types, truncated and bit-flipped archives, headers
declaring huge shapes, the stride-0 ``.pth`` of issue 10 T1, damaged ZIP
members, a directory, a missing path) under the extensions that route it to
the reader under test. The command runs in-process through
:func:`eiesim.cli.main`, under an address-space cap of the current size plus
3 GiB: an exception escaping ``main`` is a traceback the user would have seen. A run passes when it exits 1 or 2 with an
``eiesim: error:`` or report on stderr/stdout and no output file exists
afterwards (``validate`` may write its ``--json`` report when it exits 1:
that report is its output).
"""

from __future__ import annotations

import json
import os
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eiesim.cli import COMMANDS, main
from eiesim.commands._results import REQUIRED_COUNTERS
from eiesim.report.plots import FIGURE_FILES
from tests.compress.test_zip_members import (
    _good_npz,
    _good_pth,
    bad_deflate,
    rename_in_directory,
    stride0_pth,
    version_255,
)

REPO = Path(__file__).resolve().parents[2]
LENET = REPO / "traces" / "lenet300100.eie"


def _npy_header(shape, descr="<f4") -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``{label: content}`` of hostile bytes, plus the special files made by the builders."""
    d = tmp_path_factory.mktemp("corpus")
    rng = random.Random(10)
    lenet = LENET.read_bytes()
    flipped = bytearray(lenet)
    for i in range(len(lenet) // 3, len(lenet) // 3 + 16):
        flipped[i] ^= 0xA5
    contents = {
        "empty": b"",
        "garbage": bytes(rng.randrange(256) for _ in range(4096)),
        "text": b"hello, this is not a model\n",
        "empty_object": b"{}",
        "nested_json": b"[" * 100_000,
        "nested_obj": b'{"a":' * 50_000,
        "wrong_types": json.dumps({"layers": [{"name": 3, "cycles": "1", "counters": {"entries": "abc"}}],
                                   "config": {"n_pe": True}}).encode(),
        "zip_truncated": lenet[: len(lenet) // 2],
        "zip_flipped": bytes(flipped),
        "zip_magic_only": b"PK\x03\x04" + bytes(100),
        "npy_huge_shape": _npy_header((100_000_000_000, 784)) + bytes(64),
        # integers past the float64 range where a results file has counts (energy and plot raised
        # OverflowError: fresh-user finding 1) and one of 5,000 digits (past CPython's conversion limit)
        "huge_numbers": json.dumps({"config": {"clock_hz": 2**1100}, "layers": [
            {"name": "ip1", "shape": [300, 784], "n_pe": 64, "cycles": 2**1100, "pe_busy": [2**1100] * 64,
             "load_balance_efficiency": 2**1100, "counters": {c: 2**1100 for c in REQUIRED_COUNTERS}}]}).encode(),
        "long_integer": b'{"layers": [{"name": "a", "cycles": ' + b"9" * 5000 + b"}]}",
        "toml_long_integer": b"n_pe = " + b"9" * 5000 + b"\n",
        "toml_nested": b"a = " + b"[" * 100_000,
        "toml_types": b'n_pe = "many"\nclock_hz = -1\nfifo_depth = 1e400\n',
    }
    npz = d / "huge_member.npz"
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("inputs.npy", _npy_header((10**12, 784)) + bytes(16))
    contents["npz_huge_shape"] = npz.read_bytes()
    p = d / "s0.pth"
    stride0_pth(p, 60_000)
    contents["pth_stride0"] = p.read_bytes()
    good = d / "good.pth"
    _good_pth(good, False)
    version_255(good, d / "v255.pth", "archive/data/0")
    contents["zip_version255"] = (d / "v255.pth").read_bytes()
    good_c = d / "goodc.pth"
    _good_pth(good_c, True)
    bad_deflate(good_c, d / "deflate.pth", "archive/data/0")
    contents["zip_bad_deflate"] = (d / "deflate.pth").read_bytes()
    gnpz = d / "good.npz"
    _good_npz(gnpz, False)
    rename_in_directory(gnpz, d / "renamed.npz", "fc2.weight.npy", "fc2.weight.npx")
    contents["zip_renamed_member"] = (d / "renamed.npz").read_bytes()
    return contents


#: Per subcommand: (argv template, extensions of the hostile file, output paths the run must not leave).
#: ``{bad}`` is the hostile file, ``{out}`` a folder for outputs, ``{eie}`` a valid container.
RECIPES = {
    "simulate": [
        (["simulate", "--network", "{bad}", "--json", "{out}/r.json"], (".eie",), ["r.json"]),
        (["simulate", "--input", "{bad}", "--json", "{out}/r.json", "--save-output", "{out}/y.npy"],
         (".npy", ".npz", ".dat"), ["r.json", "y.npy"]),
        (["simulate", "--config", "{bad}", "--json", "{out}/r.json"], (".toml",), ["r.json"]),
        (["simulate", "--energy", "--energy-table", "{bad}", "--json", "{out}/r.json"], (".toml",), ["r.json"]),
        (["simulate", "--eie-dump", "{bad}", "--json", "{out}/r.json"], ("",), ["r.json"]),
        (["simulate", "--workload", "lenet-300-100", "--config", "{bad}", "--json", "{out}/r.json"], (".toml",),
         ["r.json"]),
    ],
    "compress": [
        (["compress", "{bad}", "--out", "{out}/m.eie", "--json", "{out}/m.json"],
         (".npz", ".pth", ".safetensors"), ["m.eie", "m.json"]),
    ],
    "inspect": [
        (["inspect", "{bad}", "--json", "{out}/i.json"], (".eie", ".net"), ["i.json"]),
    ],
    "validate": [
        (["validate", "{bad}", "--json", "{out}/v.json"], (".eie", ".net"), ["v.json"]),
        (["validate", "{eie}", "--reference", "{bad}", "--json", "{out}/v.json"], (".npz", ".pth"), ["v.json"]),
    ],
    "energy": [
        (["energy", "{bad}", "--json", "{out}/e.json", "--write-table", "{out}/t.toml"], (".json",),
         ["e.json", "t.toml"]),
        (["energy", "{results}", "--table", "{bad}", "--json", "{out}/e.json"], (".toml",), ["e.json"]),
    ],
    "convert": [
        (["convert", "{bad}", "--out", "{out}/c.eie"], (".npz", ".safetensors", ".net"), ["c.eie"]),
    ],
    "plot": [  # an existing folder: eiesim creates none (docs/CLI.md), so the bad input is what is refused
        (["plot", "{bad}", "--out", "{out}"], (".json",),
         list(FIGURE_FILES)),
        (["plot", "{bad}", "--x", "n_pe", "--y", "cycles", "--out", "{out}"], (".jsonl",),
         ["cycles_vs_n_pe.png"]),
    ],
    "sweep": [
        (["sweep", "{bad}", "--out", "{out}/r.jsonl"], (".toml",), ["r.jsonl"]),
    ],
}

#: (content, extension) pairs that are valid input, skipped: an empty TOML file is a config or an
#: energy table with every value at its default.
VALID_PAIRS = {("empty", ".toml")}  # (the sweep refuses an empty spec: it has no version)


#: Subcommands that read no file of the user's (nothing hostile to feed them); their output checks are
#: tested with the command (``workloads``: tests/workloads/test_registry.py).
NO_FILE_INPUTS = {"workloads"}


def test_every_subcommand_has_a_recipe():
    """A new subcommand must join the corpus run (or be listed as reading no file)."""
    assert set(RECIPES) | NO_FILE_INPUTS == set(COMMANDS) and not set(RECIPES) & NO_FILE_INPUTS


@pytest.fixture(scope="module")
def results_json(tmp_path_factory):
    """A small valid results JSON (counters of one layer) for ``energy --table``."""
    p = tmp_path_factory.mktemp("res") / "r.json"
    counters = {c: 10 for c in ("broadcasts", "group_loads", "ptr_reads", "spmat_line_reads", "entries",
                                "acc_writes")}
    p.write_text(json.dumps({"layers": [{"name": "l", "cycles": 100, "n_pe": 4, "counters": counters}]}))
    return p


class _address_space_cap:
    """Lower the soft RLIMIT_AS to the process's current size + ``extra`` bytes for one run (Linux).

    A reader that tried an unbounded allocation gets a MemoryError instead of
    taking the machine's memory; the limit is restored afterwards.
    """

    def __init__(self, extra: int = 3 << 30) -> None:
        self.extra = extra
        self.saved = None

    def __enter__(self):
        try:
            import resource

            with open("/proc/self/statm") as fh:
                size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            self.saved = resource.getrlimit(resource.RLIMIT_AS)
            hard = self.saved[1]
            cap = size + self.extra if hard == resource.RLIM_INFINITY else min(hard, size + self.extra)
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        except (ImportError, OSError, ValueError):
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.saved)
        return False


def _run(argv, capsys):
    try:
        with _address_space_cap():
            code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - what the user would see as a traceback
        out, err = capsys.readouterr()
        return None, f"{type(exc).__name__}: {exc}"[:300]
    out, err = capsys.readouterr()
    return code, err


@pytest.mark.parametrize("command", sorted(RECIPES))
def test_hostile_corpus(command, corpus, results_json, tmp_path, capsys):
    failures = []
    runs = 0
    for template, exts, outputs in RECIPES[command]:
        for label, content in corpus.items():
            for ext in exts:
                if (label, ext) in VALID_PAIRS:
                    continue
                case = tmp_path / f"{label}{ext.replace('.', '_')}_{runs}"
                case.mkdir()
                out = case / "out"
                out.mkdir()
                if ext == "":  # a folder argument: a folder holding the hostile file as every dump member
                    bad = case / "dump"
                    (bad / "ptr").mkdir(parents=True)
                    (bad / "spm").mkdir()
                    for name in ("arithm.dat", "act.dat", "ptr/ptr0.dat", "spm/spm0.dat"):
                        (bad / name).write_bytes(content)
                else:
                    bad = case / f"bad{ext}"
                    bad.write_bytes(content)
                argv = [a.format(bad=bad, out=out, eie=LENET, results=results_json) for a in template]
                code, err = _run(argv, capsys)
                runs += 1
                left = [o for o in outputs if (out / o).exists()
                        and not (command == "validate" and code == 1 and o.endswith(".json"))]
                # no Python internals in a message either (CPython's digits limit advises a function call)
                if code not in (1, 2) or "Traceback" in err or "set_int_max_str_digits" in err or left:
                    failures.append(f"{' '.join(argv[:1])} [{label}{ext}] {template[1:3]}: exit {code}, "
                                    f"left {left}, {err.strip()[:200]}")
    assert runs > 0
    assert not failures, f"{len(failures)} of {runs} runs:\n" + "\n".join(failures)


@pytest.mark.parametrize("command", sorted(RECIPES))
def test_missing_and_directory_inputs(command, tmp_path, capsys, results_json):
    """A missing path and a directory where a file is expected: one line, exit 2, nothing written."""
    failures = []
    for template, exts, outputs in RECIPES[command]:
        for bad in (tmp_path / "missing", tmp_path):
            out = tmp_path / "out"
            out.mkdir(exist_ok=True)
            argv = [a.format(bad=bad, out=out, eie=LENET, results=results_json) for a in template]
            code, err = _run(argv, capsys)
            left = [o for o in outputs if (out / o).exists()]
            if code != 2 or "Traceback" in err or left:
                failures.append(f"{argv}: exit {code}, left {left}, {err.strip()[:200]}")
    assert not failures, "\n".join(failures)
