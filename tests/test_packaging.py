"""Packaging metadata (issue 9 §4): SPDX licence string, every trace file installed."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_string_and_setuptools_understands_it():
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    # PEP 639: a table ({text = ...}) is deprecated; setuptools >= 77 reads the SPDX expression
    assert doc["project"]["license"] == "BSD-3-Clause"
    (st,) = [r for r in doc["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", st)
    assert m and int(m.group(1)) >= 77, st
    assert not any(c.startswith("License ::") for c in doc["project"].get("classifiers", []))


def test_every_trace_file_is_installed_with_the_package():
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup"]
    (kw,) = [k for k in call.keywords if k.arg == "package_data"]
    patterns = ast.literal_eval(kw.value)["eiesim.traces"]
    files = [p.name for p in (REPO / "traces").iterdir() if p.is_file() and p.suffix != ".py"]
    assert "metadata.json" in files and "lenet300100.eie" in files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"traces/ files not in package_data: {missing}"


def _keys(obj, where=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{where}.{k}"
            yield from _keys(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _keys(v, f"{where}[{i}]")


def test_embedded_trace_manifest_holds_no_wall_clock_time():
    """Issue 9 §4: make_traces.py wrote run times into the .eie manifest, so no rerun was byte-identical.

    The manifest and metadata.json are the same document and name no duration or date
    (times go to traces/README.md only)."""
    import json

    from eiesim.format.container import load_network

    meta = load_network(REPO / "traces" / "lenet300100.eie").metadata
    assert meta == json.loads((REPO / "traces" / "metadata.json").read_text(encoding="utf-8"))
    timed = [k for k in _keys(meta) if re.search(r"(^|_)(seconds?|time|date|elapsed|timestamp)(_|$)", k.rsplit(".", 1)[-1])]
    assert not timed, timed
