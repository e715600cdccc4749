"""The project cites papers (section, table, figure), never a notes file it does not ship (issue 9)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_citation_of_a_missing_docs_page():
    """``docs/EIE_MODEL.md`` is not part of the project: two places cited it instead of the papers."""
    cited = []
    for folder in ("eiesim", "scripts", "tests", "docs", "kernels"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".pyx", ".md", ".toml") and path != Path(__file__).resolve():
                text = path.read_text(encoding="utf-8", errors="replace")
                if "EIE_MODEL" in text:
                    cited.append(str(path.relative_to(ROOT)))
    assert not (ROOT / "docs" / "EIE_MODEL.md").exists()
    assert cited == []
