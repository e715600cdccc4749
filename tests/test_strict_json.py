"""Every JSON file eiesim writes is strict JSON (issue 9 W4): no bare ``NaN``/``Infinity``."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from eiesim._io import json_bytes
from eiesim.errors import EieFormatError, EieInputError

ROOT = Path(__file__).resolve().parents[1]


def _json_dump_calls_without_allow_nan_false(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in ("dump", "dumps") and isinstance(f.value, ast.Name) \
                and f.value.id == "json":
            ok = any(k.arg == "allow_nan" and isinstance(k.value, ast.Constant) and k.value.value is False
                     for k in node.keywords)
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return bad


def test_every_json_dump_in_package_and_scripts_is_strict():
    files = sorted((ROOT / "eiesim").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
    assert len(files) > 20
    bad = [b for p in files for b in _json_dump_calls_without_allow_nan_false(p)]
    assert not bad, "json.dump(s) without allow_nan=False (use eiesim._io.json_bytes): " + ", ".join(bad)


def test_json_bytes_refuses_non_finite_and_names_the_path():
    doc = {"layers": [{"name": "ip1", "ratio": 1.5}, {"name": "ip2", "ratio": math.nan}]}
    with pytest.raises(EieInputError, match=r"\$\.layers\[1\]\.ratio"):
        json_bytes(doc, error=EieInputError)
    with pytest.raises(EieFormatError, match="non-finite"):
        json_bytes([math.inf])
    good = {"a": [1, 2.5, None, "x"], "b": {"c": -0.0}}
    assert json.loads(json_bytes(good)) == good
    assert json_bytes(good, indent=None, newline=False) == b'{"a": [1, 2.5, null, "x"], "b": {"c": -0.0}}'
