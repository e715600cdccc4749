"""Plain-text tables for the command line (no dependency, fixed-width columns)."""

from __future__ import annotations

from typing import List, Sequence

__all__ = ["format_table"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """Render rows as an aligned text table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences
        Cells, converted with ``str``; a row equal to ``None`` draws a rule.
    align : str, optional
        One character per column, ``"l"`` or ``"r"``; default: first column
        left, the rest right.

    Returns
    -------
    str
        The table, lines joined with ``"\\n"`` (no trailing newline).
    """
    ncol = len(header)
    if align is None:
        align = "l" + "r" * (ncol - 1)
    cells: List[List[str] | None] = [None if r is None else [str(c) for c in r] for r in rows]
    widths = [len(h) for h in header]
    for r in cells:
        if r is not None:
            widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def fmt(r: Sequence[str]) -> str:
        out = []
        for c, w, a in zip(r, widths, align):
            out.append(c.ljust(w) if a == "l" else c.rjust(w))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(list(header)), rule]
    for r in cells:
        lines.append(rule if r is None else fmt(r))
    return "\n".join(lines)
