"""One table, two renderings: the aligned text a command prints and the CSV ``--csv OUT`` writes.

A :class:`Table` holds the **values** of its cells (numbers as numbers) and,
per column, how the text shows them. The CSV (:meth:`Table.to_csv`, written
by :func:`eiesim.report.files.write_csv`) is the printed table for pandas /
NumPy: one header row (the printed column titles, units in the names), one
row per printed row (the rules between the rows dropped), numbers
**unformatted** -- integers as integers, floats at full precision
(``repr``: the shortest text that reads back to the same float64), in the
unit the header names (``%`` columns hold percentages) -- and text cells
exactly as printed. A cell the text packs with two numbers (``22,487
(3,671)``) is two CSV columns (:attr:`Column.csv`). An empty cell is an
empty field. The rules: docs/CLI.md, "Tables as CSV".
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .text import format_table

__all__ = ["Column", "Table", "count", "fixed", "per_input"]


def count(v: int) -> str:
    """An integer count with thousands separators: ``19,116``."""
    return f"{v:,}"


def fixed(digits: int, *, sep: bool = False) -> Callable[[float], str]:
    """A text format of ``digits`` decimals (``sep``: with thousands separators).

    Parameters
    ----------
    digits : int
    sep : bool, default False

    Returns
    -------
    callable
        ``float -> str``.
    """
    spec = f"{',' if sep else ''}.{digits}f"
    return lambda v: format(v, spec)


def per_input(v) -> str:
    """A count per input: an ``int`` exactly (one input), a float mean to one decimal (``1,891.7``)."""
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a :class:`Table`.

    Attributes
    ----------
    title : str
        Printed header (and the CSV header): the unit in the name (``time us``, ``LB eff %``).
    fmt : callable, default str
        Text of a cell value (never called on None or a ``str``, which print as they are, their
        non-printable characters escaped).
    csv : tuple of str, optional
        When the printed cell packs several numbers, its value is a tuple of
        them and the CSV gives each its own column, titled here.
    none : str, default ""
        Text of a None cell (e.g. ``"-"``: not applicable); the CSV field is empty.
    """

    title: str
    fmt: Callable[[Any], str] = str
    csv: Optional[Tuple[str, ...]] = None
    none: str = ""


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if hasattr(v, "item") and not isinstance(v, str):  # a NumPy scalar
        v = v.item()
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def _printable(text: str) -> str:
    """``text`` with each non-printable character (``str.isprintable``) as its Python escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of cell values with its text and CSV renderings.

    Attributes
    ----------
    columns : sequence of Column
    rows : sequence of (sequence or None)
        One value per column; None draws a rule in the text (no CSV row).
    align : str, optional
        One ``"l"``/``"r"`` per column for the text; default: first column left, the rest right.
    """

    columns: Sequence[Column]
    rows: Sequence[Optional[Sequence[Any]]]
    align: Optional[str] = None

    @property
    def header(self) -> List[str]:
        """The printed column titles."""
        return [c.title for c in self.columns]

    def text_rows(self) -> List[Optional[List[str]]]:
        """The cells as printed (None for a rule); a string's non-printable characters escaped
        (``\\n``, ``\\x00``, ``\\u202e``: a layer name from a file must not move the terminal's cursor
        or reverse the text after it, nor break the columns)."""
        def show(col: Column, v) -> str:
            return col.none if v is None else _printable(v) if isinstance(v, str) else col.fmt(v)

        return [None if r is None else [show(c, v) for c, v in zip(self.columns, r)] for r in self.rows]

    def text(self) -> str:
        """The aligned text table (:func:`eiesim.report.text.format_table`), no trailing newline."""
        return format_table(self.header, self.text_rows(), align=self.align)

    def csv_header(self) -> List[str]:
        """The CSV header: the printed titles, a packed column split into its :attr:`Column.csv` titles."""
        return [t for c in self.columns for t in (c.csv or (c.title,))]

    def csv_rows(self) -> List[List[str]]:
        """The CSV fields of every printed row (rules dropped), numbers unformatted."""
        out = []
        for r in self.rows:
            if r is None:
                continue
            fields: List[str] = []
            for c, v in zip(self.columns, r):
                if c.csv is None:
                    fields.append(_csv_cell(v))
                else:
                    parts = (None,) * len(c.csv) if v is None or isinstance(v, str) else tuple(v)
                    fields.extend(_csv_cell(p) for p in parts)
            out.append(fields)
        return out

    def to_csv(self) -> str:
        """The table as CSV text (stdlib :mod:`csv`, ``"\\n"`` line ends, quoting as needed)."""
        import csv  # here: only --csv writes one

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.csv_header())
        w.writerows(self.csv_rows())
        return buf.getvalue()
