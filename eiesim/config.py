"""Hardware configuration of the simulated EIE machine.

Every knob of the reference design (EIE, Han et al., ISCA 2016, Sections IV-VI
and Table II) lives in :class:`EIEConfig`. The object is frozen and validated on
construction; it loads from TOML or JSON and carries a schema version.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .errors import EieConfigError

__all__ = ["EIEConfig", "CONFIG_SCHEMA_VERSION", "ARITH_MODES", "ROUNDING_MODES", "MAX_N_PE"]

#: Version of the configuration schema written by :meth:`EIEConfig.to_dict`.
CONFIG_SCHEMA_VERSION = 1

#: Arithmetic modes of the PE datapath.
ARITH_MODES = ("float32", "fixed16")

#: Rounding modes used when a fixed-point product is narrowed.
ROUNDING_MODES = ("nearest", "floor")

#: Largest PE count N of a configuration (16x the paper's largest sweep point, 256 PEs;
#: ``eiesim compress --n-pe`` uses the same bound so every layout it writes can be simulated).
MAX_N_PE = 4096


def _unique_keys(pairs):
    """``json.loads`` object hook: a dict, refusing a key given twice (ValueError names it)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} is given more than once")
        out[k] = v
    return out


@dataclass(frozen=True)
class EIEConfig:
    """Every hardware knob of the simulated EIE machine.

    Defaults are the reference design of EIE (Han et al., ISCA 2016,
    Section VI and Table II): 64 PEs at 800 MHz, 64-bit sparse-matrix SRAM
    lines, 4-bit codebook indices and relative indices, 16-bit pointers,
    128 KB spmat SRAM and 32 KB pointer SRAM per PE, 16-bit fixed-point
    arithmetic in hardware.

    Parameters
    ----------
    n_pe : int
        Number of processing elements N (EIE: 64; the paper sweeps 1 ... 256).
    fifo_depth : int
        Activations one PE's activation queue can hold (EIE Section IV: depth 8).
        The authors' C++ simulator uses a circular buffer of size B that holds
        B - 1 activations; to reproduce its numbers use ``fifo_depth = B - 1``
        (7 for the paper's B = 8).
    spmat_line_bits : int
        Width of one sparse-matrix SRAM read in bits (EIE: 64 = 8 entries of
        8 bits). Must be a multiple of the entry width ``code_bits + index_bits``.
    clock_hz : float
        Clock frequency in Hz (EIE: 800e6, TSMC 45 nm, Section VI); 1 Hz ... 10 THz.
    code_bits : int
        Bits of the codebook index v (EIE: 4, a 16-entry codebook).
    index_bits : int
        Bits of the relative row index z (EIE: 4; a gap of 2**index_bits
        zero rows needs a filler entry).
    pointer_bits : int
        Width of one column pointer in the pointer SRAM (EIE: 16).
    spmat_sram_bytes, ptr_sram_bytes, act_sram_bytes : int
        Capacity per PE in bytes (EIE Table II: 128 KB, 32 KB, 2 KB).
    arith : {"float32", "fixed16"}
        Datapath arithmetic. ``"float32"`` computes like the authors' C++
        simulator; ``"fixed16"`` is the 16-bit fixed point of the EIE chip.
    fixed_total_bits : int
        Word width of activations, codebook values and accumulators in fixed
        mode (EIE: 16).
    act_frac_bits : int
        Fractional bits of activations and accumulators (Q format
        ``Q(fixed_total_bits - 1 - act_frac_bits).act_frac_bits``).
    weight_frac_bits : int
        Fractional bits of the codebook (decoded weight) values.
    rounding : {"nearest", "floor"}
        How a product (``act_frac_bits + weight_frac_bits`` fraction bits) and
        an input value are narrowed to ``act_frac_bits``: round half away from
        zero, or floor (drop bits).
    saturate : bool
        Clamp to the representable range instead of wrapping on overflow.

    Raises
    ------
    EieConfigError
        On construction when any field has the wrong type or is out of range;
        the message names the field.
    """

    n_pe: int = 64
    fifo_depth: int = 8
    spmat_line_bits: int = 64
    clock_hz: float = 800e6
    code_bits: int = 4
    index_bits: int = 4
    pointer_bits: int = 16
    spmat_sram_bytes: int = 128 * 1024
    ptr_sram_bytes: int = 32 * 1024
    act_sram_bytes: int = 2 * 1024
    arith: str = "float32"
    fixed_total_bits: int = 16
    act_frac_bits: int = 8
    weight_frac_bits: int = 12
    rounding: str = "nearest"
    saturate: bool = True
    schema_version: int = field(default=CONFIG_SCHEMA_VERSION)

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        def _int(name: str, lo: int, hi: int) -> None:
            val = getattr(self, name)
            if isinstance(val, numbers.Integral) and not isinstance(val, (bool, np.bool_)):
                val = int(val)  # NumPy integers are integers too
                object.__setattr__(self, name, val)
            elif isinstance(val, np.floating):
                val = float(val)
            if isinstance(val, bool) or not isinstance(val, int):
                # accept integral floats coming from JSON/TOML (e.g. 64.0)
                if isinstance(val, float) and val.is_integer():
                    object.__setattr__(self, name, int(val))
                    val = int(val)
                else:
                    raise EieConfigError(f"config field {name!r}: expected an integer, got {val!r}")
            if not lo <= val <= hi:
                raise EieConfigError(f"config field {name!r}: {val} is outside [{lo}, {hi}]")

        _int("n_pe", 1, MAX_N_PE)
        _int("fifo_depth", 1, 1 << 16)
        _int("spmat_line_bits", 8, 1 << 14)
        _int("code_bits", 1, 8)
        _int("index_bits", 1, 8)
        _int("pointer_bits", 1, 32)
        _int("spmat_sram_bytes", 1, 1 << 40)
        _int("ptr_sram_bytes", 1, 1 << 40)
        _int("act_sram_bytes", 1, 1 << 40)
        _int("fixed_total_bits", 2, 32)
        _int("act_frac_bits", 0, 31)
        _int("weight_frac_bits", 0, 31)
        _int("schema_version", 1, 1 << 16)
        if self.schema_version > CONFIG_SCHEMA_VERSION:
            raise EieConfigError(
                f"config field 'schema_version': {self.schema_version} is newer than this "
                f"eiesim understands ({CONFIG_SCHEMA_VERSION})"
            )
        entry_bits = self.code_bits + self.index_bits
        if self.spmat_line_bits % entry_bits:
            raise EieConfigError(
                f"config field 'spmat_line_bits': {self.spmat_line_bits} is not a multiple of "
                f"the entry width code_bits + index_bits = {entry_bits}"
            )
        clk = self.clock_hz
        if isinstance(clk, (bool, np.bool_)) or not isinstance(clk, numbers.Real):
            raise EieConfigError(f"config field 'clock_hz': expected a number, got {clk!r}")
        try:
            clk = float(clk)
        except OverflowError:
            raise EieConfigError("config field 'clock_hz': value too large") from None
        if not (math.isfinite(clk) and 1.0 <= clk <= 1e13):
            raise EieConfigError(f"config field 'clock_hz': {clk!r} must be between 1 Hz and 10 THz")
        object.__setattr__(self, "clock_hz", clk)
        if self.arith not in ARITH_MODES:
            raise EieConfigError(f"config field 'arith': {self.arith!r} is not one of {ARITH_MODES}")
        if self.rounding not in ROUNDING_MODES:
            raise EieConfigError(
                f"config field 'rounding': {self.rounding!r} is not one of {ROUNDING_MODES}"
            )
        if isinstance(self.saturate, np.bool_):
            object.__setattr__(self, "saturate", bool(self.saturate))
        if not isinstance(self.saturate, bool):
            raise EieConfigError(f"config field 'saturate': expected true/false, got {self.saturate!r}")
        if self.act_frac_bits >= self.fixed_total_bits:
            raise EieConfigError(
                f"config field 'act_frac_bits': {self.act_frac_bits} leaves no sign bit in a "
                f"{self.fixed_total_bits}-bit word"
            )
        if self.weight_frac_bits >= self.fixed_total_bits:
            raise EieConfigError(
                f"config field 'weight_frac_bits': {self.weight_frac_bits} leaves no sign bit in a "
                f"{self.fixed_total_bits}-bit word"
            )

    # ------------------------------------------------------------ derived values
    @property
    def entries_per_line(self) -> int:
        """Entries delivered by one spmat SRAM read, ``spmat_line_bits // (code_bits + index_bits)``."""
        return self.spmat_line_bits // (self.code_bits + self.index_bits)

    @property
    def codebook_size(self) -> int:
        """Number of codebook entries, ``2 ** code_bits`` (EIE: 16)."""
        return 1 << self.code_bits

    @property
    def max_relative_index(self) -> int:
        """Largest relative index ``2 ** index_bits - 1``; fillers carry it (EIE: 15)."""
        return (1 << self.index_bits) - 1

    @property
    def cycle_s(self) -> float:
        """Duration of one clock cycle in seconds."""
        return 1.0 / self.clock_hz

    @classmethod
    def for_layer(cls, layer, n_pe: int | None = None) -> "EIEConfig":
        """The reference design adapted to a layer's N, code and index widths.

        The spmat line stays at the reference 64 bits when the entry width
        ``code_bits + index_bits`` divides it; otherwise it holds 8 entries
        (EIE reads 8 entries per 64-bit line, Section VI).

        Parameters
        ----------
        layer : CompressedLayer
            Or any object with integer ``n_pe``, ``code_bits`` and ``index_bits``.
        n_pe : int, optional
            PE count to use instead of the layer's (the caller re-interleaves
            the layer over it); a layer laid out over more than
            :data:`MAX_N_PE` PEs can then still be simulated.

        Returns
        -------
        EIEConfig
            Default fields except ``n_pe``, ``code_bits``, ``index_bits`` and
            ``spmat_line_bits`` (64, or ``8 * (code_bits + index_bits)`` bits).

        Raises
        ------
        EieConfigError
            If the layer's widths or PE count make an invalid configuration.
        """
        entry = layer.code_bits + layer.index_bits
        line = 64 if 64 % entry == 0 else 8 * entry
        return cls(n_pe=layer.n_pe if n_pe is None else n_pe, code_bits=layer.code_bits,
                   index_bits=layer.index_bits, spmat_line_bits=line)

    # ------------------------------------------------------------------ I/O
    def replace(self, **changes: Any) -> "EIEConfig":
        """Return a copy with ``changes`` applied (validated again).

        ``None`` values are ignored so that unset command-line flags can be
        passed straight through.

        Parameters
        ----------
        **changes
            Config field names to new values (``None`` = keep the current value).

        Returns
        -------
        EIEConfig
            The new configuration; ``self`` is unchanged.

        Raises
        ------
        EieConfigError
            If a name is not a config field or a new value is invalid.
        """
        known = {f.name for f in fields(self)}
        clean = {}
        for k, v in changes.items():
            if k not in known:
                raise EieConfigError(f"unknown config field {k!r}")
            if v is not None:
                clean[k] = v
        return dataclasses.replace(self, **clean)

    def to_dict(self) -> dict:
        """Plain-dict form (JSON/TOML friendly), including ``schema_version``.

        Returns
        -------
        dict
            Field name -> value for every field; :meth:`from_dict` reads it back.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> "EIEConfig":
        """Build a config from a mapping; unknown keys are errors.

        Parameters
        ----------
        data : mapping
            Field names to values. A nested ``[eie]`` table is accepted as well.
        source : str
            Name used in error messages (usually the file path).

        Returns
        -------
        EIEConfig
            Fields not in ``data`` keep their defaults (the EIE reference design).

        Raises
        ------
        EieConfigError
            If ``data`` is not a mapping, has an unknown key, or a value is invalid.
        """
        if isinstance(data, Mapping) and "eie" in data and isinstance(data["eie"], Mapping):
            others = sorted(set(data) - {"eie"})
            if others:
                raise EieConfigError(
                    f"{source}: keys {', '.join(map(repr, others))} outside the [eie] table"
                )
            data = data["eie"]
        if not isinstance(data, Mapping):
            raise EieConfigError(f"{source}: a configuration must be a table/object of fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EieConfigError(f"{source}: unknown config field(s) {', '.join(map(repr, unknown))}")
        try:
            return cls(**dict(data))
        except EieConfigError as exc:
            raise EieConfigError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EIEConfig":
        """Load a configuration from a ``.toml`` or ``.json`` file.

        Parameters
        ----------
        path : str or os.PathLike
            The file; a name ending in ``.json`` (any case) is read as JSON,
            anything else as TOML (flat fields or an ``[eie]`` table).

        Returns
        -------
        EIEConfig

        Raises
        ------
        EieConfigError
            If the file is missing, not a regular file, over 1 MiB, unreadable,
            not valid TOML/JSON (a key given twice included: TOML forbids it, and
            JSON's last-one-wins would hide a typo), or holds an invalid
            configuration.
        """
        from ._io import decode_error_text, read_regular_file

        try:  # Python >= 3.11; imported here: most runs read no config file
            import tomllib as _toml
        except ModuleNotFoundError:  # pragma: no cover - exercised on Python 3.9/3.10 only
            import tomli as _toml  # type: ignore[no-redef]

        import json  # here too: a run without a config file never needs it (issue 11)

        path = os.fspath(path)
        raw = read_regular_file(path, 1 << 20, error=EieConfigError, what="config file")
        kind = "JSON" if path.lower().endswith(".json") else "TOML"
        try:
            text = raw.decode("utf-8")
            data = json.loads(text, object_pairs_hook=_unique_keys) if kind == "JSON" else _toml.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise EieConfigError(f"{path}: not valid {kind}: {decode_error_text(exc)}") from None
        return cls.from_dict(data, source=path)
