"""Energy-per-action tables: every constant with its unit and its source.

The simulator only counts actions (:data:`eiesim.sim.result.COUNTER_NAMES`);
this module holds what an action costs. Following Timeloop/Accelergy, prices
live in a table that can be replaced (a TOML file) without simulating again.

The default table, :data:`DEFAULT_TABLE`, holds

* 45 nm operation and memory-access energies of Horowitz (ISSCC 2014,
  "Computing's energy problem"), the numbers the Han papers quote (EIE,
  Han et al., ISCA 2016; Deep Compression, Han, Mao, Dally, ICLR 2016);
* the per-PE power breakdown of the EIE layout (EIE Table II), the clock it
  holds at and the chip power behind the paper's energy figures.

Values *derived* from those by a stated rule (16-bit operations, the LNZD node:
:data:`DERIVED`; SRAM sizes the source does not list: :meth:`EnergyTable.sram_read_pj`)
are computed when looked up, from the table's own inputs, so a user table that
re-prices an input re-prices them too. The counts of the reference run the
activity model is calibrated on are not prices: they live beside the
calibration (:data:`eiesim.energy.model.FC8_REFERENCE`).

SRAM scaling rule (eiesim's, not from a source)
-----------------------------------------------
Horowitz gives the energy of a 64-bit read from an 8 KB, a 32 KB and a 1 MB
SRAM (10, 20 and 100 pJ). :meth:`EnergyTable.sram_read_pj` interpolates
piecewise linearly in log(energy) against log(capacity) between those points
(a power law per segment: exponent 0.5 from 8 KB to 32 KB, 0.464 from 32 KB
to 1 MB) and extends the end segments' power laws outside them; the energy
is linear in the read width (``width_bits / 64``). Example: a 64-bit read from
EIE's 128 KB spmat SRAM costs about 38 pJ by this rule.

TOML format of a user table
---------------------------
A user table overrides the default entry by entry; every entry it gives must
carry a value, a unit and a source::

    name = "my 28 nm technology"

    [entries.dram_read_32b]
    value = 320.0
    unit = "pJ"
    source = "vendor datasheet X, table 7"

    [entries.chip_power]
    value = 0.45
    unit = "W"
    source = "my measurement"
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

from ..errors import EieConfigError

__all__ = [
    "EnergyEntry",
    "EnergyTable",
    "DEFAULT_TABLE",
    "KNOWN_ENTRIES",
    "UNITS",
    "load_table",
    "EIE_MODULES",
    "EIE_KINDS",
    "DERIVED",
    "DerivedEntry",
]

#: Units an entry may carry, with their factor to the base unit of their dimension
#: (energy: pJ; power: W; frequency: Hz; plain numbers: 1).
UNITS: Dict[str, tuple] = {
    "pJ": ("energy", 1.0),
    "nJ": ("energy", 1e3),
    "uJ": ("energy", 1e6),
    "fJ": ("energy", 1e-3),
    "pJ/bit": ("energy/bit", 1.0),
    "W": ("power", 1.0),
    "mW": ("power", 1e-3),
    "uW": ("power", 1e-6),
    "Hz": ("frequency", 1.0),
    "MHz": ("frequency", 1e6),
    "bytes": ("size", 1.0),
    "KB": ("size", 1024.0),
    "MB": ("size", 1024.0 * 1024.0),
    "bits": ("bits", 1.0),
    "count": ("count", 1.0),
    "cycles": ("cycles", 1.0),
    "fraction": ("fraction", 1.0),
}

#: PE modules of EIE Table II, in the table's order.
EIE_MODULES = ("act_queue", "ptr_read", "spmat_read", "arithm_unit", "act_rw")
#: Kinds of power of EIE Table II ("by type").
EIE_KINDS = ("memory", "clock", "register", "combinational")


@dataclass(frozen=True)
class EnergyEntry:
    """One priced constant.

    Attributes
    ----------
    name : str
        Key of the entry (``"int32_mult"``, ``"dram_read_32b"``, ...).
    value : float
        The number, in ``unit``.
    unit : str
        One of :data:`UNITS` (``"pJ"``, ``"mW"``, ``"W"``, ...).
    source : str
        Where the number comes from: paper and table/figure, or the rule that
        derives it from other entries. Never empty.
    note : str
        Optional remark (what the action is, caveats).
    """

    name: str
    value: float
    unit: str
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise EieConfigError("energy entry: the name must be a non-empty string")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise EieConfigError(f"energy entry {self.name!r}: value {v!r} must be a finite number >= 0")
        object.__setattr__(self, "value", float(v))
        if not isinstance(self.unit, str) or self.unit not in UNITS:  # a TOML array/table is unhashable
            raise EieConfigError(
                f"energy entry {self.name!r}: unit {self.unit!r} is not one of {', '.join(UNITS)}"
            )
        if not isinstance(self.source, str) or not self.source.strip():
            raise EieConfigError(f"energy entry {self.name!r}: every constant needs a source")
        if not isinstance(self.note, str):
            raise EieConfigError(f"energy entry {self.name!r}: the note must be a string")

    def to(self, unit: str) -> float:
        """The value converted to ``unit`` (same dimension only).

        Parameters
        ----------
        unit : str
            Target unit, one of :data:`UNITS` and of the same dimension as
            ``self.unit`` (e.g. ``"pJ"`` -> ``"nJ"``, ``"mW"`` -> ``"W"``).

        Returns
        -------
        float
            ``value`` expressed in ``unit``.

        Raises
        ------
        EieConfigError
            If ``unit`` is unknown or of another dimension.
        """
        if unit not in UNITS:
            raise EieConfigError(f"unknown unit {unit!r}")
        dim_from, f_from = UNITS[self.unit]
        dim_to, f_to = UNITS[unit]
        if dim_from != dim_to:
            raise EieConfigError(
                f"energy entry {self.name!r}: cannot convert {self.unit} ({dim_from}) to {unit} ({dim_to})"
            )
        return self.value * f_from / f_to

    def to_dict(self) -> dict:
        """Plain dict (TOML/JSON friendly).

        Returns
        -------
        dict
            ``{"value": float, "unit": str, "source": str}``, plus ``"note": str``
            when the entry has a note.
        """
        d = {"value": self.value, "unit": self.unit, "source": self.source}
        if self.note:
            d["note"] = self.note
        return d


_HOROWITZ = "Horowitz, ISSCC 2014 'Computing's energy problem', 45 nm energy table (as quoted by Han et al., EIE ISCA 2016 and Deep Compression ICLR 2016)"
_HOROWITZ_OWN = "Horowitz, ISSCC 2014 'Computing's energy problem', 45 nm energy table (his own; the Han papers quote a subset)"
_TABLE2 = "EIE (Han et al., ISCA 2016) Table II, per-PE power at 800 MHz"


def _e(name, value, unit, source, note=""):
    return EnergyEntry(name, value, unit, source, note)


_DEFAULT_ENTRIES = (
    # ---- 45 nm operations (Horowitz)
    _e("int8_add", 0.03, "pJ", _HOROWITZ_OWN, "8-bit integer add"),
    _e("int8_mult", 0.2, "pJ", _HOROWITZ_OWN, "8-bit integer multiply"),
    _e("int32_add", 0.1, "pJ", _HOROWITZ, "32-bit integer add"),
    _e("int32_mult", 3.1, "pJ", _HOROWITZ, "32-bit integer multiply"),
    _e("fp16_add", 0.4, "pJ", _HOROWITZ_OWN, "16-bit float add"),
    _e("fp16_mult", 1.1, "pJ", _HOROWITZ_OWN, "16-bit float multiply"),
    _e("fp32_add", 0.9, "pJ", _HOROWITZ, "32-bit float add"),
    _e("fp32_mult", 3.7, "pJ", _HOROWITZ, "32-bit float multiply"),
    # ---- memories (Horowitz)
    _e("sram_read_32b", 5.0, "pJ", _HOROWITZ, "32-bit read from a small (8 KB) SRAM"),
    _e("sram_read_64b_8KB", 10.0, "pJ", _HOROWITZ_OWN, "64-bit read, 8 KB SRAM"),
    _e("sram_read_64b_32KB", 20.0, "pJ", _HOROWITZ_OWN, "64-bit read, 32 KB SRAM"),
    _e("sram_read_64b_1MB", 100.0, "pJ", _HOROWITZ_OWN, "64-bit read, 1 MB SRAM"),
    _e("dram_read_32b", 640.0, "pJ", _HOROWITZ, "32-bit DRAM read (DRAM/SRAM = 128x)"),
    # ---- EIE Table II (per PE, by module)
    _e("pe_power_act_queue", 0.112, "mW", _TABLE2, "activation queue"),
    _e("pe_power_ptr_read", 1.807, "mW", _TABLE2, "pointer read unit (pointer SRAM, 2 banks)"),
    _e("pe_power_spmat_read", 4.955, "mW", _TABLE2, "sparse-matrix read unit (spmat SRAM)"),
    _e("pe_power_arithm_unit", 1.162, "mW", _TABLE2, "arithmetic unit (decode, MAC)"),
    _e("pe_power_act_rw", 1.122, "mW", _TABLE2, "activation read/write (register files, act SRAM)"),
    _e("pe_power_total", 9.157, "mW", _TABLE2, "total per PE"),
    # ---- EIE Table II (per PE, by type)
    _e("pe_power_memory", 5.416, "mW", _TABLE2, "by type: memory"),
    _e("pe_power_clock", 1.874, "mW", _TABLE2, "by type: clock network"),
    _e("pe_power_register", 1.026, "mW", _TABLE2, "by type: register"),
    _e("pe_power_combinational", 0.841, "mW", _TABLE2, "by type: combinational"),
    # ---- chip
    _e("chip_power", 0.6, "W",
       "EIE (Han et al., ISCA 2016) Section VI / Table II: 0.59-0.6 W for 64 PEs; the paper's energy "
       "comparisons use 0.6 W x EIE time", "power of the 64-PE chip"),
    _e("chip_n_pe", 64, "count", "EIE (Han et al., ISCA 2016) Section VI: 64 PEs", "PEs of the chip"),
    _e("table2_clock", 800.0, "MHz", "EIE (Han et al., ISCA 2016) Section VI: 800 MHz (Table II)",
       "clock at which Table II's powers hold"),
    _e("leakage_fraction", 0.0, "fraction",
       "assumption (eiesim): EIE Table II does not separate leakage; 0 treats all non-clock power "
       "as activity-proportional",
       "share of each module's non-clock power that is static (charged per PE-cycle)"),
)


@dataclass(frozen=True)
class DerivedEntry:
    """An entry computed, when it is looked up, from other entries of the same table.

    Following hwcomponents (a component's energy is computed from its attributes), a derived entry
    is a rule, not a number: re-pricing an input (a user table's ``int32_mult``) re-prices every
    entry derived from it. A table that gives the derived key itself overrides the rule.

    Attributes
    ----------
    name : str
    unit : str
        Unit of the result (one of :data:`UNITS`).
    inputs : tuple of str
        Keys the rule reads (converted to ``unit``).
    rule : callable
        ``rule(*values) -> float``, the values of ``inputs`` in ``unit``, in order.
    source : str
        The rule in words, with the sources of its constants.
    note : str
    """

    name: str
    unit: str
    inputs: Tuple[str, ...]
    rule: Callable[..., float]
    source: str
    note: str = ""

    def evaluate(self, table: "EnergyTable") -> EnergyEntry:
        """The entry priced from ``table``'s inputs.

        Raises
        ------
        EieConfigError
            If ``table`` lacks an input or an input's unit is of another dimension.
        """
        vals = [table.value(k, self.unit) for k in self.inputs]
        return EnergyEntry(self.name, self.rule(*vals), self.unit, self.source, self.note)


def _int16_add(int8_add: float, int32_add: float) -> float:
    """Linear in width between the 8-bit and the 32-bit add: 16 bits is a third of the way."""
    return int8_add + (16 - 8) / (32 - 8) * (int32_add - int8_add)


#: Entries derived from others by a stated rule (computed when looked up; see :class:`DerivedEntry`).
DERIVED: Dict[str, DerivedEntry] = {d.name: d for d in (
    DerivedEntry("int16_mult", "pJ", ("int32_mult",), lambda m32: m32 / 5.0,
                 "derived: Horowitz 32-bit int mult (int32_mult, 3.1 pJ) / 5 (EIE Fig. 10: a 16-bit "
                 "fixed-point multiply costs about 5x less energy than a 32-bit one)",
                 "16-bit fixed-point multiply"),
    DerivedEntry("int16_add", "pJ", ("int8_add", "int32_add"), _int16_add,
                 "derived: linear in width between Horowitz 8-bit add (int8_add, 0.03 pJ) and 32-bit add "
                 "(int32_add, 0.1 pJ)", "16-bit fixed-point add"),
    DerivedEntry("lnzd_node", "pJ", ("int16_add",), lambda a16: 4 * a16,
                 "estimate (eiesim, not in the paper): one LNZD quadtree node per broadcast or group load "
                 "~ four 16-bit zero-detect/compare operations priced as 16-bit adds (int16_add)",
                 "energy of one LNZD node evaluation"),
)}


def _entry_map(entries: Iterable[EnergyEntry]) -> Dict[str, EnergyEntry]:
    out: Dict[str, EnergyEntry] = {}
    for e in entries:
        out[e.name] = e
    return out


@dataclass(frozen=True)
class EnergyTable:
    """A named set of :class:`EnergyEntry` objects.

    Parameters
    ----------
    name : str
        Name of the technology/table (``"eiesim default: 45 nm ..."``).
    entries : mapping of str to EnergyEntry

    Notes
    -----
    Look-ups go through :meth:`get` (the entry, with its source) or
    :meth:`value` (the number, converted to a unit). Derived SRAM/DRAM prices
    come from :meth:`sram_read_pj` and :meth:`dram_read_pj`.
    """

    name: str
    entries: Mapping[str, EnergyEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Entries the energy model divides by must not be 0 (a table with ``chip_n_pe = 0`` raised
        ``ZeroDivisionError``: fuzz seed 14): ``chip_n_pe``, ``table2_clock``, and each of EIE Table
        II's two power splits (``pe_power_<module>``, ``pe_power_<type>``) as a whole. Checked here,
        so a table built in code, merged or read from a file obeys it alike.

        Raises
        ------
        EieConfigError
            One of those entries (or a whole split) is 0.
        """
        for key in ("chip_n_pe", "table2_clock"):
            if key in self.entries and self.entries[key].value == 0:
                raise EieConfigError(f"entry {key!r}: must be > 0 (the energy model divides by it)")
        for what, names in (("module", EIE_MODULES), ("type", EIE_KINDS)):
            keys = [f"pe_power_{n}" for n in names]
            if all(k in self.entries for k in keys) and sum(self.entries[k].value for k in keys) == 0:
                raise EieConfigError(f"the per-{what} powers {', '.join(keys)} are all 0 (EIE Table II's "
                                     "split divides by their sum)")

    # ------------------------------------------------------------ look-ups
    def get(self, key: str) -> EnergyEntry:
        """The entry ``key``.

        Parameters
        ----------
        key : str
            Entry name (``"int32_mult"``, ``"pe_power_total"``, ...).

        Returns
        -------
        EnergyEntry
            The entry, with its value, unit and source.

        Raises
        ------
        EieConfigError
            If the table has no such entry (nor the inputs of a derived one).

        Notes
        -----
        A key the table does not give but :data:`DERIVED` defines is computed
        from the table's own inputs at each look-up.
        """
        e = self.entries.get(key)
        if e is not None:
            return e
        if key in DERIVED:
            return DERIVED[key].evaluate(self)
        raise EieConfigError(f"energy table {self.name!r} has no entry {key!r}")

    def value(self, key: str, unit: Optional[str] = None) -> float:
        """Value of entry ``key``, converted to ``unit`` when given.

        Parameters
        ----------
        key : str
            Entry name.
        unit : str, optional
            Unit to convert to (one of :data:`UNITS`, same dimension as the
            entry's unit). ``None`` returns the value in the entry's own unit.

        Returns
        -------
        float
            The value, in ``unit`` (or the entry's unit).

        Raises
        ------
        EieConfigError
            If the table has no entry ``key``, or ``unit`` is unknown or of
            another dimension (see :meth:`EnergyEntry.to`).
        """
        e = self.get(key)
        return e.value if unit is None else e.to(unit)

    def __contains__(self, key: str) -> bool:
        return key in self.entries or key in DERIVED

    def all_entries(self) -> Dict[str, EnergyEntry]:
        """Every entry: the table's own, then the derived ones priced from them.

        Returns
        -------
        dict of str to EnergyEntry
            A derived entry whose inputs the table lacks is left out.
        """
        out = dict(self.entries)
        for k, d in DERIVED.items():
            if k not in out and all(i in self for i in d.inputs):
                try:
                    out[k] = self.get(k)
                except EieConfigError:  # an input of another dimension
                    continue
        return out

    # ------------------------------------------------------------ derived prices
    def sram_read_pj(self, capacity_bytes: float, width_bits: float = 64) -> float:
        """Energy of one SRAM read in pJ by eiesim's scaling rule.

        Piecewise power law in capacity through Horowitz's 64-bit points
        (entries ``sram_read_64b_8KB``, ``sram_read_64b_32KB``,
        ``sram_read_64b_1MB``; log-log linear interpolation, end segments
        extended), linear in width (``width_bits / 64``).

        Parameters
        ----------
        capacity_bytes : float
            SRAM capacity in bytes (> 0).
        width_bits : float, default 64
            Bits delivered by the read (> 0).

        Returns
        -------
        float
            pJ per read.

        Raises
        ------
        EieConfigError
            If a size or width is not positive.
        """
        if not (capacity_bytes > 0 and width_bits > 0):
            raise EieConfigError("sram_read_pj: capacity_bytes and width_bits must be > 0")
        pts = [
            (8 * 1024.0, self.value("sram_read_64b_8KB", "pJ")),
            (32 * 1024.0, self.value("sram_read_64b_32KB", "pJ")),
            (1024.0 * 1024.0, self.value("sram_read_64b_1MB", "pJ")),
        ]
        x = math.log(capacity_bytes)
        if capacity_bytes <= pts[1][0]:
            (s0, e0), (s1, e1) = pts[0], pts[1]
        else:
            (s0, e0), (s1, e1) = pts[1], pts[2]
        slope = (math.log(e1) - math.log(e0)) / (math.log(s1) - math.log(s0))
        e64 = math.exp(math.log(e0) + slope * (x - math.log(s0)))
        return e64 * width_bits / 64.0

    def dram_pj_per_bit(self) -> float:
        """DRAM read energy per bit in pJ: ``dram_read_32b / 32``.

        With the default table: Horowitz (ISSCC 2014), 640 pJ per 32-bit DRAM
        read / 32 bits = 20 pJ/bit.

        Returns
        -------
        float
            pJ per bit read from DRAM.

        Raises
        ------
        EieConfigError
            If the table has no ``dram_read_32b`` entry or its unit is not an
            energy.
        """
        return self.value("dram_read_32b", "pJ") / 32.0

    def dram_read_pj(self, bits: float) -> float:
        """Energy in pJ of reading ``bits`` from DRAM (linear in bits).

        Parameters
        ----------
        bits : float
            Number of bits read (>= 0).

        Returns
        -------
        float
            pJ, ``bits * dram_pj_per_bit()`` (see :meth:`dram_pj_per_bit` for the
            source of the per-bit price).

        Raises
        ------
        EieConfigError
            If the table has no ``dram_read_32b`` entry.
        """
        return self.dram_pj_per_bit() * bits

    # ------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        """Plain dict form of the table (TOML/JSON friendly).

        Returns
        -------
        dict
            ``{"name": str, "entries": {key: {value, unit, source[, note]}}}``;
            :meth:`from_dict` reads it back.
        """
        return {"name": self.name, "entries": {k: e.to_dict() for k, e in self.entries.items()}}

    def to_toml(self) -> str:
        """The table as TOML text that :func:`load_table` reads back.

        Returns
        -------
        str
            A top-level ``name`` followed by one ``[entries.<key>]`` table per
            entry (``value``, ``unit``, ``source`` and, when set, ``note``).
        """
        lines = [f"name = {_toml_str(self.name)}", ""]
        for k, e in self.entries.items():
            lines.append(f"[entries.{k}]")
            lines.append(f"value = {e.value!r}")
            lines.append(f"unit = {_toml_str(e.unit)}")
            lines.append(f"source = {_toml_str(e.source)}")
            if e.note:
                lines.append(f"note = {_toml_str(e.note)}")
            lines.append("")
        return "\n".join(lines)

    def merged(self, other: "EnergyTable | Mapping[str, EnergyEntry]", name: Optional[str] = None) -> "EnergyTable":
        """A copy with ``other``'s entries replacing or adding to this table's.

        Parameters
        ----------
        other : EnergyTable or mapping of str to EnergyEntry
            Entries that override (same key) or extend this table's.
        name : str, optional
            Name of the result. Defaults to ``other.name`` when ``other`` is an
            :class:`EnergyTable`, else to this table's name.

        Returns
        -------
        EnergyTable
            A new table; ``self`` is unchanged.
        """
        extra = other.entries if isinstance(other, EnergyTable) else other
        entries = dict(self.entries)
        entries.update(extra)
        nm = name or (other.name if isinstance(other, EnergyTable) else self.name)
        return replace(self, name=nm, entries=entries)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "<dict>", base: Optional["EnergyTable"] = None) -> "EnergyTable":
        """Build a table from ``{"name": ..., "entries": {key: {value, unit, source}}}``.

        Parameters
        ----------
        data : mapping
            Top-level keys ``name`` (str, optional) and ``entries`` (mapping of
            key to a mapping with ``value``, ``unit``, ``source`` and optional
            ``note``); the layout :meth:`to_dict` writes.
        source : str
            Name used in error messages (the file path).
        base : EnergyTable, optional
            Entries not given in ``data`` are taken from ``base``
            (:func:`load_table` passes :data:`DEFAULT_TABLE`).

        Returns
        -------
        EnergyTable
            The table named ``data["name"]``; without one, ``base.name`` followed by
            how many entries ``source`` overrides (a report then never calls an
            edited table the default), or ``source`` without a base.

        Raises
        ------
        EieConfigError
            If the layout is wrong, an entry lacks value/unit/source, a unit is
            unknown, a value is negative, or an entry's name is not one the
            energy model prices (:data:`KNOWN_ENTRIES`: a typo would
            otherwise be added silently and change nothing); the message
            names the entry and lists the known names.
        """
        if not isinstance(data, Mapping):
            raise EieConfigError(f"{source}: an energy table must be a table of entries")
        unknown = sorted(set(data) - {"name", "entries"})
        if unknown:
            raise EieConfigError(f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}")
        raw = data.get("entries", {})
        if not isinstance(raw, Mapping):
            raise EieConfigError(f"{source}: 'entries' must be a table")
        entries = {}
        for key, spec in raw.items():
            if str(key).startswith("ref_"):
                raise EieConfigError(
                    f"{source}: entry {key!r}: the reference run's counts are not prices; they live "
                    "beside the calibration (eiesim.energy.model.FC8_REFERENCE, calibrate(reference=...))"
                )
            if not isinstance(spec, Mapping):
                raise EieConfigError(f"{source}: entry {key!r} must be a table with value, unit, source")
            missing = [f for f in ("value", "unit", "source") if f not in spec]
            if missing:
                raise EieConfigError(f"{source}: entry {key!r} lacks {', '.join(missing)}")
            extra = sorted(set(spec) - {"value", "unit", "source", "note"})
            if extra:
                raise EieConfigError(f"{source}: entry {key!r} has unknown field(s) {', '.join(extra)}")
            try:
                entries[key] = EnergyEntry(key, spec["value"], spec["unit"], spec["source"], spec.get("note", ""))
            except EieConfigError as exc:
                raise EieConfigError(f"{source}: {exc}") from None
        unknown = sorted(set(entries) - KNOWN_ENTRIES)
        if unknown:
            raise EieConfigError(
                f"{source}: unknown energy-table entr{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(map(repr, unknown))} (a typo?); the known entries are: "
                f"{', '.join(sorted(KNOWN_ENTRIES))}"
            )
        if "name" in data:
            name = data["name"]
        elif base is not None and entries:  # say the base is not priced as it stands (fresh-user finding)
            n = len(entries)
            name = f"{base.name}, with {n} entr{'y' if n == 1 else 'ies'} from {source}"
        else:
            name = base.name if base is not None else source
        if not isinstance(name, str):
            raise EieConfigError(f"{source}: 'name' must be a string")
        try:  # the table's own rules (an entry the model divides by is not 0), named with the file
            return base.merged(entries, name=name) if base is not None else cls(name=name, entries=entries)
        except EieConfigError as exc:
            raise EieConfigError(f"{source}: {exc}") from None


#: Names of the entries the energy model prices (those of the default table, derived ones included);
#: a user table may override these and no others (:meth:`EnergyTable.from_dict`).
KNOWN_ENTRIES = frozenset(e.name for e in _DEFAULT_ENTRIES) | frozenset(DERIVED)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


#: The default table: Horowitz 45 nm + EIE Table II + the FC8 calibration run.
DEFAULT_TABLE = EnergyTable(
    name="eiesim default: Horowitz 45 nm + EIE Table II (calibrated on the real FC8)",
    entries=_entry_map(_DEFAULT_ENTRIES),
)


def load_table(path: "str | os.PathLike", *, base: Optional[EnergyTable] = DEFAULT_TABLE) -> EnergyTable:
    """Load an energy table from a TOML file.

    Parameters
    ----------
    path : str or os.PathLike
        TOML file with ``name`` and ``[entries.<key>]`` tables (see the
        module docstring).
    base : EnergyTable or None, default DEFAULT_TABLE
        Entries the file does not give come from ``base``; ``None`` loads the
        file alone.

    Returns
    -------
    EnergyTable

    Raises
    ------
    EieConfigError
        If the file is missing, is not valid TOML (arrays nested past Python's
        recursion limit included), gives no entries (an empty file), or an
        entry is invalid.
    """
    from .._io import decode_error_text, read_regular_file

    try:  # Python >= 3.11; imported here: most runs read no table file
        import tomllib as _toml
    except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10
        import tomli as _toml  # type: ignore[no-redef]

    path = os.fspath(path)
    try:  # os.stat before open: a FIFO would block, a device never end
        raw = read_regular_file(path, 1 << 20, error=EieConfigError, what="TOML file")
    except EieConfigError as exc:
        raise EieConfigError(f"cannot read energy table: {exc}") from None
    try:
        data = _toml.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: arrays nested too deeply
        raise EieConfigError(f"{path}: not valid TOML: {decode_error_text(exc)}") from None
    table = EnergyTable.from_dict(data, source=path, base=base)
    if not data.get("entries"):  # an empty or wrong file would otherwise price silently as the base table
        raise EieConfigError(f"{path}: an energy table file gives no [entries.<name>] table (nothing to price; "
                             "'eiesim energy RESULTS.json --write-table FILE.toml' writes the table in use to start from)")
    return table
