"""The README's generated blocks match the commands they quote (issue 9 W6).

Runs the fast sections of ``scripts/readme_tables.py`` (``eiesim simulate``'s
default output; the real FC8 line when ../shared/data is present; the benchmark table
rendered from the recorded run, ``docs/benchmarks.json``). The slow
sections (the EIE Table IV reproduction, about a minute) are checked by the
script only: ``python scripts/readme_tables.py --check``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["readme_tables"] = mod  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop("readme_tables", None)
    return mod


def test_readme_fast_sections_are_up_to_date(rt, capsys):
    code = rt.main(["--check", "--sections", "simulate-default", "fc8", "bench"])
    out, err = capsys.readouterr()
    assert code == 0, f"README drifted from its commands:\n{out}\n{err}"


def test_check_reports_drift_and_write_repairs_it(rt, tmp_path, capsys, monkeypatch):
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = rt.parse_blocks(text)
    assert {"simulate-default", "fc8", "alex8-density", "eie-table", "eie-geomean"} <= set(blocks)
    start, end = blocks["simulate-default"]
    body = text[start:end]
    assert body.startswith("```\neiesim ") and "accuracy on these 100 inputs" in body
    drifted = text[:start] + body.replace("ip1 ", "ipX ", 1) + text[end:]
    # the mechanism, without running the command again (the test above runs it)
    monkeypatch.setitem(rt.SECTIONS, "simulate-default", rt.Section("simulate-default", "fast", lambda r: body))
    readme.write_text(drifted, encoding="utf-8")
    assert rt.main(["--check", "--sections", "simulate-default", "--readme", str(readme)]) == 1
    out, _ = capsys.readouterr()
    assert "-ipX " in out and "+ip1 " in out  # a unified diff of the block
    assert rt.main(["--write", "--sections", "simulate-default", "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == text  # only the block changed, back to what it was
    assert rt.main(["--check", "--sections", "simulate-default", "--readme", str(readme)]) == 0


def test_malformed_markers_are_refused(rt):
    with pytest.raises(rt.ReadmeError, match="unknown generated section 'nope'"):
        rt.parse_blocks("a\n<!-- generated: nope -->\nx\n<!-- end -->\n")
    with pytest.raises(rt.ReadmeError, match="no '<!-- end -->'"):
        rt.parse_blocks("<!-- generated: fc8 -->\nx\n<!-- generated: eie-table -->\ny\n<!-- end -->\n")
    with pytest.raises(rt.ReadmeError, match="twice"):
        rt.parse_blocks("<!-- generated: fc8 -->\nx\n<!-- end -->\n<!-- generated: fc8 -->\ny\n<!-- end -->\n")
    assert rt.parse_blocks("t\n<!-- generated: fc8 -->\nbody\n<!-- end -->\nrest\n") == {"fc8": (26, 31)}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_script", REPO / "scripts" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cold_row(**extra):
    return dict(key="cold", case="first (cold) call / warm call, FC8", target="<= 2", a_ms=3.882, b_ms=0.502,
                ratio=7.6, q1=7.248, q3=7.949, pairs=21, **extra)


def test_bench_table_gives_the_cold_rows_memory_floor(bench):
    line = bench.markdown_table({"rows": [_cold_row(floor=1.6823)]}).splitlines()[2]
    assert line == "| first (cold) call / warm call, FC8 (memory floor 1.68) | 3.882 | 0.502 | 7.600 | 7.248–7.949 | ≤ 2 |"
    # a run recorded before the floor was measured keeps its own wording
    line = bench.markdown_table({"rows": [_cold_row()]}).splitlines()[2]
    assert line == "| first (cold) call / warm call, FC8 | 3.882 | 0.502 | 7.600 | 7.248–7.949 | ≤ 2 |"

