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
