"""Energy of a simulated run: action counts priced by an :class:`~eiesim.energy.tables.EnergyTable`.

Two methods, always reported side by side and never mixed:

``"activity"`` -- activity-based (Accelergy style)
    Every PE module of EIE Table II is priced per action it performs, plus a
    per-PE-cycle share for the clock network (and leakage, when the table
    gives a ``leakage_fraction``). The per-action energies are **calibrated**
    so that the reference run (the real AlexNet FC8 of the authors'
    simulator, 64 PEs, 7,926 cycles) dissipates exactly Table II's
    power, module by module and type by type:

    1. Table II gives the per-PE power by module (act queue, PtrRead,
       SpmatRead, ArithmUnit, ActRW) and, separately, by type (memory, clock
       network, register, combinational), not the cross table. eiesim builds
       the module x type matrix by iterative proportional fitting (IPF) from
       the independence prior ``P_module * P_type / P_total``, with memory
       power allowed only in the modules that own an SRAM (PtrRead: pointer
       SRAM; SpmatRead: spmat SRAM; ActRW: activation SRAM). The result has
       exactly Table II's row and column sums.
    2. The clock-network column (plus ``leakage_fraction`` of the rest) is a
       per-PE-cycle cost: ``P / f`` with f = 800 MHz.
    3. Every other cell becomes an energy per action:
       ``P[module, type] * T_ref * N_ref / A_ref[module]`` where ``T_ref`` is
       the reference run's time, ``N_ref = 64`` PEs and ``A_ref`` the number
       of the module's actions in that run:

       ============  ========================================================
       module        action (counter)
       ============  ========================================================
       act_queue     queue write of a broadcast: ``broadcasts * n_pe``
       ptr_read      ``ptr_reads`` (p_j and p_j+1 from the two banks)
       spmat_read    ``spmat_line_reads`` (memory part scales with line width)
       arithm_unit   ``entries`` (decode + MAC slot; fillers included)
       act_rw        ``acc_writes`` (destination read-modify-write)
       ============  ========================================================

    The CCU/LNZD is not in Table II; it is added as an *estimate* from
    Horowitz operation energies (``lnzd_node`` per quadtree node per
    broadcast or group load) and shown as its own line.

``"paper"`` -- the EIE paper's method
    Chip power (``chip_power``, 0.6 W for 64 PEs, scaled linearly with N)
    times the simulated time. Its module/type split uses Table II's shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import EieConfigError, EieInputError
from .tables import DEFAULT_TABLE, EIE_KINDS, EIE_MODULES, EnergyTable

__all__ = [
    "RunActivity",
    "Calibration",
    "EnergyBreakdown",
    "calibrate",
    "activity_energy",
    "paper_energy",
    "weight_memory_whatifs",
    "price_run",
    "MODULE_LABELS",
    "KIND_LABELS",
    "lnzd_nodes",
    "ReferenceRun",
    "FC8_REFERENCE",
    "mac_energy_pj",
]

#: Display names of the modules (EIE Table II spelling) and of the CCU line.
MODULE_LABELS = {
    "act_queue": "Act queue",
    "ptr_read": "PtrRead",
    "spmat_read": "SpmatRead",
    "arithm_unit": "ArithmUnit",
    "act_rw": "ActRW",
    "lnzd_ccu": "LNZD/CCU (est.)",
}
#: Display names of the kinds (EIE Table II "by type").
KIND_LABELS = {
    "memory": "memory (SRAM)",
    "register": "register",
    "combinational": "combinational",
    "clock": "clock network",
}

#: Modules that own an SRAM, the only ones that may carry "memory" power (EIE Section IV).
_SRAM_MODULES = ("ptr_read", "spmat_read", "act_rw")
_REQUIRED_COUNTERS = ("broadcasts", "group_loads", "ptr_reads", "spmat_line_reads", "entries", "acc_writes")


def lnzd_nodes(n_pe: int) -> int:
    """Nodes of the LNZD quadtree for ``n_pe`` PEs (one per 4 children; EIE Section IV: 21 for 64).

    Parameters
    ----------
    n_pe : int
        Number of PEs (the tree's leaves), >= 1.

    Returns
    -------
    int
        ``sum_l ceil(n_pe / 4**l)`` over the levels ``l >= 1`` down to the
        root; at least 1 (EIE, Section IV: 16 + 4 + 1 = 21 nodes for 64 PEs).
    """
    nodes, width = 0, int(n_pe)
    while width > 1:
        width = -(-width // 4)
        nodes += width
    return max(nodes, 1)


# --------------------------------------------------------------------------- activity record
@dataclass(frozen=True)
class RunActivity:
    """What a run did: the counters and times the energy model prices.

    Parameters
    ----------
    counters : dict of str to int
        Action counters of :data:`eiesim.sim.result.COUNTER_NAMES` (summed over
        ``n_inputs`` inputs).
    cycles : int
        Cycles of the run (summed over the inputs).
    n_pe : int
        PEs N.
    clock_hz : float
        Clock in Hz.
    spmat_line_bits : int
        Width of one spmat SRAM read in bits.
    name : str
    shape : tuple of int or None
        ``(n_out, n_in)`` of the layer; needed by the dense what-ifs.
    n_inputs : int
        Input vectors the counters add up.
    """

    counters: Mapping[str, int]
    cycles: int
    n_pe: int
    clock_hz: float = 800e6
    spmat_line_bits: int = 64
    name: str = ""
    shape: Optional[Tuple[int, int]] = None
    n_inputs: int = 1

    def __post_init__(self) -> None:
        missing = [c for c in _REQUIRED_COUNTERS if c not in self.counters]
        if missing:
            raise EieInputError(f"run {self.name!r}: counters lack {', '.join(missing)}")
        if self.cycles < 1:
            raise EieInputError(
                f"run {self.name!r}: cycles must be >= 1 (every simulated input takes at least the "
                f"arithmetic drain), got {self.cycles}: no power or energy ratio can be formed from it"
            )
        if self.n_pe < 1 or not (0 < self.clock_hz < math.inf) or self.n_inputs < 1:
            raise EieInputError(f"run {self.name!r}: n_pe, clock_hz or n_inputs out of range")
        negative = [k for k, v in self.counters.items() if int(v) < 0]
        if negative:
            raise EieInputError(f"run {self.name!r}: negative counter(s) {', '.join(negative)}")

    @property
    def time_s(self) -> float:
        """Simulated time of the whole run in seconds."""
        return self.cycles / self.clock_hz

    @classmethod
    def from_result(cls, result, config=None, *, name: Optional[str] = None) -> "RunActivity":
        """From a :class:`~eiesim.sim.result.SimResult` or a network ``LayerSummary``.

        Parameters
        ----------
        result : SimResult or LayerSummary
            Supplies ``counters``, ``cycles``, ``n_pe``, ``clock_hz`` (Hz),
            ``name``, ``shape`` and (when present) ``n_inputs``.
        config : EIEConfig, optional
            Gives the spmat line width (default 64 bits).
        name : str, optional
            Name of the run (default ``result.name``).

        Returns
        -------
        RunActivity

        Raises
        ------
        EieInputError
            If the counters lack one the model needs, or cycles, PEs, clock or
            inputs are out of range.
        """
        return cls(
            counters={k: int(v) for k, v in result.counters.items()},
            cycles=int(result.cycles),
            n_pe=int(result.n_pe),
            clock_hz=float(result.clock_hz),
            spmat_line_bits=int(config.spmat_line_bits) if config is not None else 64,
            name=name if name is not None else str(result.name),
            shape=(int(result.shape[0]), int(result.shape[1])),
            n_inputs=int(getattr(result, "n_inputs", 1)),
        )

    @classmethod
    def from_dict(cls, layer: Mapping, config: Optional[Mapping] = None) -> "RunActivity":
        """From one layer of a ``eiesim simulate --json`` document (or a reproduction JSON layer).

        Parameters
        ----------
        layer : mapping
            Needs ``counters``, ``cycles``; uses ``n_pe``, ``shape``, ``name``,
            ``n_inputs``, ``clock_hz`` when present.
        config : mapping, optional
            The document's ``config`` (``n_pe``, ``clock_hz``, ``spmat_line_bits``).
            Values missing from both default to the EIE reference design: 64 PEs,
            800 MHz, 64-bit spmat lines (EIE Section VI).

        Returns
        -------
        RunActivity

        Raises
        ------
        EieInputError
            If counters or cycles are missing, or a value is out of range.
        """
        config = config or {}
        if "counters" not in layer or "cycles" not in layer:
            raise EieInputError(f"layer {layer.get('name', '?')!r}: needs 'counters' and 'cycles'")
        shape = layer.get("shape")
        return cls(
            counters={k: int(v) for k, v in layer["counters"].items()},
            cycles=int(layer["cycles"]),
            n_pe=int(layer.get("n_pe", config.get("n_pe", 64))),
            clock_hz=float(layer.get("clock_hz", config.get("clock_hz", 800e6))),
            spmat_line_bits=int(layer.get("spmat_line_bits", config.get("spmat_line_bits", 64))),
            name=str(layer.get("name", "")),
            shape=(int(shape[0]), int(shape[1])) if shape is not None else None,
            n_inputs=int(layer.get("n_inputs", 1)),
        )

    def actions(self) -> Dict[str, int]:
        """Action count of each Table II module (see the module docstring).

        Returns
        -------
        dict of str to int
            ``act_queue`` (broadcasts x PEs), ``ptr_read`` (pointer reads),
            ``spmat_read`` (spmat line reads), ``arithm_unit`` (entries) and
            ``act_rw`` (accumulator writes); the module names of EIE Table II.
        """
        c = self.counters
        return {
            "act_queue": int(c["broadcasts"]) * self.n_pe,
            "ptr_read": int(c["ptr_reads"]),
            "spmat_read": int(c["spmat_line_reads"]),
            "arithm_unit": int(c["entries"]),
            "act_rw": int(c["acc_writes"]),
        }


# --------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class ReferenceRun:
    """The simulated run over which EIE Table II's powers are spread (the calibration point).

    Counts of a run, not prices: they live beside the calibration, not in the energy table.

    Attributes
    ----------
    cycles : int
        Cycles of the run (at ``table2_clock``).
    n_pe : int
        PEs of the run.
    spmat_line_bits : int
        Spmat SRAM line width (bits).
    broadcasts, ptr_reads, spmat_line_reads, entries, acc_writes : int
        The run's counters (:data:`eiesim.sim.result.COUNTER_NAMES`).
    source : str
        What run it is.
    """

    cycles: int
    n_pe: int
    spmat_line_bits: int
    broadcasts: int
    ptr_reads: int
    spmat_line_reads: int
    entries: int
    acc_writes: int
    source: str


#: The default calibration point: eiesim on the authors' AlexNet FC8 dump (EIE Table IV, Alex-8),
#: 64 PEs, fifo_depth 7, 64-bit spmat lines (EIE Section VI). ``test_reference_constants_match_a_fresh_fc8_run``
#: re-simulates it.
FC8_REFERENCE = ReferenceRun(
    cycles=7926, n_pe=64, spmat_line_bits=64, broadcasts=1760, ptr_reads=112640, spmat_line_reads=100900,
    entries=453748, acc_writes=453748,
    source="eiesim simulation of the authors' AlexNet FC8 dump (Alex-8 row of EIE Table IV, real input), "
           "64 PEs, fifo_depth 7, 64-bit lines: 7,926 cycles = 9.91 us (paper: 9.9 us; the authors' "
           "simulator: 7,926 cycles)",
)


def _ipf(rows: np.ndarray, cols: np.ndarray, allowed: np.ndarray, iters: int = 500) -> np.ndarray:
    """Matrix with the given row and column sums, zero where not allowed (IPF from the independence prior)."""
    with np.errstate(all="ignore"):  # overflow / 0-by-0 surface as non-finite cells, refused by calibrate
        total = rows.sum()
        cols = cols * (total / cols.sum())  # Table II's two totals differ in the last digit
        m = np.outer(rows, cols) / total * allowed
        for _ in range(iters):
            m *= (rows / m.sum(axis=1))[:, None]
            m *= (cols / m.sum(axis=0))[None, :]
            if np.allclose(m.sum(axis=1), rows, rtol=1e-12, atol=0):
                break
    return m


@dataclass(frozen=True)
class Calibration:
    """Per-action energies derived from EIE Table II at the reference run.

    Attributes
    ----------
    module_kind_mw : dict of str to dict of str to float
        Per-PE power split module x type (mW); rows sum to Table II's module
        powers, columns to its type powers.
    action_pj : dict of str to dict of str to float
        Dynamic energy per action of each module, by type (pJ), at the
        reference line width.
    static_pj_per_pe_cycle : dict of str to dict of str to float
        Clock network (and leakage) energy per PE per cycle (pJ), by module and type.
    ref_actions : dict of str to int
        Actions of each module in the reference run.
    ref_time_s : float
        Reference run time (s).
    ref_line_bits : int
        Spmat line width of the reference run (bits).
    reference : ReferenceRun
        The reference run itself (its counts and source).
    """

    module_kind_mw: Dict[str, Dict[str, float]]
    action_pj: Dict[str, Dict[str, float]]
    static_pj_per_pe_cycle: Dict[str, Dict[str, float]]
    ref_actions: Dict[str, int]
    ref_time_s: float
    ref_line_bits: int
    reference: "ReferenceRun" = None  # type: ignore[assignment]  # set by calibrate()

    def to_dict(self) -> dict:
        """JSON-ready form.

        Returns
        -------
        dict
            ``method`` (a sentence), the fields (powers in mW, energies in pJ,
            ``ref_time_s`` in s, ``ref_line_bits`` in bits).
        """
        return {
            "method": "EIE Table II powers x reference-run time / reference-run actions (IPF module x type split)",
            "module_kind_mw": self.module_kind_mw,
            "action_pj": self.action_pj,
            "static_pj_per_pe_cycle": self.static_pj_per_pe_cycle,
            "ref_actions": self.ref_actions,
            "ref_time_s": self.ref_time_s,
            "ref_line_bits": self.ref_line_bits,
        }


def calibrate(table: EnergyTable = DEFAULT_TABLE, reference: ReferenceRun = FC8_REFERENCE) -> Calibration:
    """Calibrate per-action energies from Table II at a reference run.

    Parameters
    ----------
    table : EnergyTable
        Needs ``pe_power_<module>`` and ``pe_power_<type>`` (mW per PE),
        ``table2_clock`` and ``leakage_fraction``.
    reference : ReferenceRun, default FC8_REFERENCE
        The run Table II's powers are spread over (its cycles and counters).

    Returns
    -------
    Calibration

    Raises
    ------
    EieConfigError
        If an entry is missing, or the entries give a non-finite energy
        (overflow, or all-zero Table II powers); the message names them.
    """
    rows = np.array([table.value(f"pe_power_{m}", "mW") for m in EIE_MODULES])
    cols = np.array([table.value(f"pe_power_{k}", "mW") for k in EIE_KINDS])
    allowed = np.ones((len(EIE_MODULES), len(EIE_KINDS)))
    mem = EIE_KINDS.index("memory")
    for i, m in enumerate(EIE_MODULES):
        if m not in _SRAM_MODULES:
            allowed[i, mem] = 0.0
    mat = _ipf(rows, cols, allowed)
    f = table.value("table2_clock", "Hz")
    n_ref = int(reference.n_pe)
    t_ref = float(reference.cycles) / f
    lam = table.value("leakage_fraction")
    ref_actions = {
        "act_queue": int(reference.broadcasts) * n_ref,
        "ptr_read": int(reference.ptr_reads),
        "spmat_read": int(reference.spmat_line_reads),
        "arithm_unit": int(reference.entries),
        "act_rw": int(reference.acc_writes),
    }
    module_kind, action, static = {}, {}, {}
    for i, m in enumerate(EIE_MODULES):
        module_kind[m] = {k: float(mat[i, j]) for j, k in enumerate(EIE_KINDS)}
        action[m], static[m] = {}, {}
        for j, k in enumerate(EIE_KINDS):
            p_w = mat[i, j] * 1e-3
            if k == "clock":
                static[m][k] = float(p_w / f * 1e12)
                action[m][k] = 0.0
            else:
                static[m][k] = float(lam * p_w / f * 1e12)
                a = ref_actions[m]
                action[m][k] = float((1.0 - lam) * p_w * t_ref * n_ref / a * 1e12) if a else 0.0
    for m in EIE_MODULES:
        for k in EIE_KINDS:
            if not (math.isfinite(action[m][k]) and math.isfinite(static[m][k])):
                raise EieConfigError(
                    f"energy table {table.name!r}: calibrating module {m} / type {k} gives a non-finite "
                    f"energy (entries pe_power_{m} = {table.value(f'pe_power_{m}', 'mW'):g} mW, "
                    f"pe_power_{k} = {table.value(f'pe_power_{k}', 'mW'):g} mW; {_largest_entry(table)})"
                )
    return Calibration(
        module_kind_mw=module_kind,
        action_pj=action,
        static_pj_per_pe_cycle=static,
        ref_actions=ref_actions,
        ref_time_s=t_ref,
        ref_line_bits=int(reference.spmat_line_bits),
        reference=reference,
    )


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one run by one method.

    Attributes
    ----------
    method : {"activity", "paper"}
    total_pj : float
        Total energy in pJ.
    time_s : float
        Simulated time in s.
    by_module : dict of str to float
        pJ per module (keys of :data:`MODULE_LABELS`).
    by_kind : dict of str to float
        pJ per type (``memory``, ``register``, ``combinational``, ``clock``).
    n_inputs : int
        Inputs the run covers (energy per input = ``total_pj / n_inputs``).
    notes : tuple of str
        How the number was obtained.
    """

    method: str
    total_pj: float
    time_s: float
    by_module: Dict[str, float]
    by_kind: Dict[str, float]
    n_inputs: int = 1
    notes: Tuple[str, ...] = ()

    @property
    def avg_power_w(self) -> float:
        """Average power in W (``total / time``)."""
        return self.total_pj * 1e-12 / self.time_s if self.time_s > 0 else 0.0

    @property
    def per_input_pj(self) -> float:
        """Energy per input vector in pJ."""
        return self.total_pj / self.n_inputs

    @property
    def by_class(self) -> Dict[str, float]:
        """pJ by the coarse classes of the issue: ``sram`` (memory), ``logic`` (register + combinational), ``clock``."""
        k = self.by_kind
        return {
            "sram": k.get("memory", 0.0),
            "logic": k.get("register", 0.0) + k.get("combinational", 0.0),
            "clock": k.get("clock", 0.0),
        }

    def to_dict(self) -> dict:
        """JSON-ready form (energies in pJ, time in s, power in W).

        Returns
        -------
        dict
            ``method``, ``total_pj``, ``per_input_pj``, ``time_s``,
            ``avg_power_w``, the ``by_module_pj`` / ``by_kind_pj`` /
            ``by_class_pj`` splits, ``n_inputs`` and ``notes`` (list of str).
        """
        return {
            "method": self.method,
            "total_pj": float(self.total_pj),
            "per_input_pj": float(self.per_input_pj),
            "time_s": float(self.time_s),
            "avg_power_w": float(self.avg_power_w),
            "by_module_pj": {k: float(v) for k, v in self.by_module.items()},
            "by_kind_pj": {k: float(v) for k, v in self.by_kind.items()},
            "by_class_pj": {k: float(v) for k, v in self.by_class.items()},
            "n_inputs": int(self.n_inputs),
            "notes": list(self.notes),
        }


def activity_energy(run: RunActivity, table: EnergyTable = DEFAULT_TABLE,
                    calibration: Optional[Calibration] = None) -> EnergyBreakdown:
    """Activity-based energy: counters x calibrated energy per action + clock (and leakage) per PE-cycle.

    Parameters
    ----------
    run : RunActivity
    table : EnergyTable
    calibration : Calibration, optional
        Default: :func:`calibrate` of ``table``.

    Returns
    -------
    EnergyBreakdown
        ``method="activity"``; modules of Table II plus ``lnzd_ccu``.
    """
    cal = calibration or calibrate(table)
    acts = run.actions()
    pe_cycles = run.cycles * run.n_pe
    by_module = {m: 0.0 for m in MODULE_LABELS}
    by_kind = {k: 0.0 for k in EIE_KINDS}
    width_scale = run.spmat_line_bits / cal.ref_line_bits
    for m in EIE_MODULES:
        for k in EIE_KINDS:
            e_act = cal.action_pj[m][k]
            if m == "spmat_read" and k == "memory":
                e_act *= width_scale  # SRAM rule: linear in read width
            e = e_act * acts[m] + cal.static_pj_per_pe_cycle[m][k] * pe_cycles
            by_module[m] += e
            by_kind[k] += e
    lnzd = table.value("lnzd_node", "pJ") * lnzd_nodes(run.n_pe) * (
        int(run.counters["broadcasts"]) + int(run.counters["group_loads"])
    )
    by_module["lnzd_ccu"] = float(lnzd)
    by_kind["combinational"] += float(lnzd)
    notes = (
        f"activity-based: Table II module powers calibrated at the reference run "
        f"({(cal.reference or FC8_REFERENCE).source}); spmat memory energy x {width_scale:g} for "
        f"{run.spmat_line_bits}-bit lines",
        "LNZD/CCU is an estimate (not in Table II): " + table.get("lnzd_node").source,
    )
    return EnergyBreakdown("activity", sum(by_module.values()), run.time_s, by_module, by_kind,
                           run.n_inputs, notes)


def paper_energy(run: RunActivity, table: EnergyTable = DEFAULT_TABLE) -> EnergyBreakdown:
    """The EIE paper's method: chip power x simulated time.

    Chip power is ``chip_power`` (0.6 W for ``chip_n_pe`` = 64 PEs, EIE
    Section VI) scaled by ``n_pe / 64``; the module and type splits use
    Table II's per-PE shares (the CCU gets none: Table II has no line for it).

    Parameters
    ----------
    run : RunActivity
        Counters and simulated time (s) of one run.
    table : EnergyTable, default DEFAULT_TABLE
        Supplies ``chip_power`` (W), ``chip_n_pe`` and the ``pe_power_*``
        Table II shares (mW).

    Returns
    -------
    EnergyBreakdown
        ``method="paper"``; energies in pJ.
    """
    p_chip = table.value("chip_power", "W") * run.n_pe / table.value("chip_n_pe")
    total = p_chip * run.time_s * 1e12
    mods = {m: table.value(f"pe_power_{m}", "mW") for m in EIE_MODULES}
    kinds = {k: table.value(f"pe_power_{k}", "mW") for k in EIE_KINDS}
    sm, sk = sum(mods.values()), sum(kinds.values())
    by_module = {m: total * v / sm for m, v in mods.items()}
    by_module["lnzd_ccu"] = 0.0
    by_kind = {k: total * v / sk for k, v in kinds.items()}
    notes = (
        f"paper's method: {p_chip:g} W ({table.get('chip_power').source}; scaled by n_pe/64) x simulated time",
        "split by EIE Table II shares",
    )
    return EnergyBreakdown("paper", total, run.time_s, by_module, by_kind, run.n_inputs, notes)


def weight_memory_whatifs(run: RunActivity, table: EnergyTable = DEFAULT_TABLE,
                          activity: Optional[EnergyBreakdown] = None,
                          calibration: Optional[Calibration] = None) -> List[dict]:
    """Where the weights live: the SRAM/DRAM gap the EIE argument rests on.

    Scenarios (all for the same layer and inputs):

    1. ``eie_sram`` -- EIE as simulated: compressed weights in on-chip SRAM
       (activity-based energy).
    2. ``compressed_dram`` -- the same accesses, but the spmat lines and
       pointers EIE reads come from DRAM (``dram_read_32b`` / 32 per bit)
       instead of the calibrated SRAM memory energy; the rest unchanged.
    3. ``dense_fp32_dram`` -- uncompressed fp32 weights streamed from DRAM once
       per input (n_out x n_in x ``dram_read_32b``) plus a fp32 multiply and add
       per weight (``fp32_mult`` + ``fp32_add``); no sparsity exploited.
    4. ``dense_fp32_sram`` -- the same dense computation with every weight read
       from a small on-chip SRAM (``sram_read_32b``), an optimistic bound (the
       layer would not fit).

    Parameters
    ----------
    run : RunActivity
        Needs ``shape`` for the dense scenarios (skipped otherwise).

    Returns
    -------
    list of dict
        ``scenario``, ``label``, ``weight_fetch_pj``, ``compute_pj``,
        ``total_pj``, ``ratio_vs_eie`` (total / EIE total), ``source``.
    """
    cal = calibration or calibrate(table)
    act = activity or activity_energy(run, table, cal)
    acts = run.actions()
    width_scale = run.spmat_line_bits / cal.ref_line_bits
    sram_fetch = (cal.action_pj["spmat_read"]["memory"] * width_scale * acts["spmat_read"]
                  + cal.action_pj["ptr_read"]["memory"] * acts["ptr_read"]
                  + (cal.static_pj_per_pe_cycle["spmat_read"]["memory"]
                     + cal.static_pj_per_pe_cycle["ptr_read"]["memory"]) * run.cycles * run.n_pe)
    pbits = 16  # EIE pointers: 16 bits, two per pointer read (Section IV)
    dram_bits = acts["spmat_read"] * run.spmat_line_bits + acts["ptr_read"] * 2 * pbits
    dram_fetch = table.dram_read_pj(dram_bits)
    eie_rest = act.total_pj - sram_fetch
    dram_src = table.get("dram_read_32b").source
    out = [
        {"scenario": "eie_sram", "label": "EIE: compressed weights in on-chip SRAM (activity-based)",
         "weight_fetch_pj": sram_fetch, "compute_pj": eie_rest, "total_pj": act.total_pj,
         "source": "activity-based model (calibrated on EIE Table II)"},
        {"scenario": "compressed_dram", "label": "compressed weights (same reads) from DRAM",
         "weight_fetch_pj": dram_fetch, "compute_pj": eie_rest, "total_pj": eie_rest + dram_fetch,
         "source": f"{dram_bits:,} bits x {table.dram_pj_per_bit():g} pJ/bit ({dram_src})"},
    ]
    if run.shape is not None:
        n_w = run.shape[0] * run.shape[1] * run.n_inputs
        compute = n_w * (table.value("fp32_mult", "pJ") + table.value("fp32_add", "pJ"))
        out.append({
            "scenario": "dense_fp32_dram", "label": "dense fp32 weights from DRAM (no sparsity)",
            "weight_fetch_pj": n_w * table.value("dram_read_32b", "pJ"), "compute_pj": compute,
            "total_pj": n_w * table.value("dram_read_32b", "pJ") + compute,
            "source": f"{dram_src}; fp32 mult + add ({table.get('fp32_mult').source})",
        })
        out.append({
            "scenario": "dense_fp32_sram", "label": "dense fp32 weights from on-chip SRAM (bound)",
            "weight_fetch_pj": n_w * table.value("sram_read_32b", "pJ"), "compute_pj": compute,
            "total_pj": n_w * table.value("sram_read_32b", "pJ") + compute,
            "source": table.get("sram_read_32b").source,
        })
    for row in out:
        row["ratio_vs_eie"] = row["total_pj"] / act.total_pj if act.total_pj else math.nan
    return out


def price_run(run: RunActivity, table: EnergyTable = DEFAULT_TABLE) -> dict:
    """Both methods and the what-ifs for one run, as a JSON-ready dict.

    Parameters
    ----------
    run : RunActivity
        Counters and simulated time of one run.
    table : EnergyTable, default DEFAULT_TABLE
        Energy per action (pJ) and chip power; see :func:`activity_energy`
        and :func:`paper_energy`.

    Returns
    -------
    dict
        ``name``, ``table`` (its name), ``activity`` and ``paper``
        (:meth:`EnergyBreakdown.to_dict`), ``whatifs``
        (:func:`weight_memory_whatifs`), ``activity_over_paper`` (ratio of the
        two totals, reported, never used to mix them).  Every float in it is
        finite.

    Raises
    ------
    EieConfigError
        If the table makes an energy non-finite (e.g. an entry of 1e308 mW
        overflows) or the paper-method energy 0: names the layer, the field
        and the table's largest entry.
    """
    cal = calibrate(table)
    act = activity_energy(run, table, cal)
    pap = paper_energy(run, table)
    if not pap.total_pj > 0:
        raise EieConfigError(
            f"layer {run.name!r}: the paper-method energy is {pap.total_pj:g} pJ (energy table "
            f"{table.name!r}: chip_power = {table.value('chip_power', 'W'):g} W); it must be > 0"
        )
    out = {
        "name": run.name,
        "table": table.name,
        "activity": act.to_dict(),
        "paper": pap.to_dict(),
        "activity_over_paper": act.total_pj / pap.total_pj,
        "whatifs": weight_memory_whatifs(run, table, act, cal),
    }
    bad = _first_non_finite(out)
    if bad is not None:
        where, value = bad
        raise EieConfigError(
            f"layer {run.name!r}: {where} = {value} is not finite with energy table {table.name!r} "
            f"({_largest_entry(table)})"
        )
    return out


def _first_non_finite(obj, where: str = ""):
    """Path and value of the first NaN/infinite float in nested dicts/lists/tuples, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where, obj)
    if isinstance(obj, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for w, v in items:
        bad = _first_non_finite(v, w)
        if bad is not None:
            return bad
    return None


def _largest_entry(table: EnergyTable) -> str:
    """``"largest entry: NAME = VALUE UNIT; smallest non-zero: NAME = VALUE UNIT"`` -- the usual
    culprits of an overflow: a huge price, or a tiny divisor (``chip_n_pe = 1e-300`` was blamed on
    the largest entry alone: second fresh-user finding)."""
    name, e = max(table.entries.items(), key=lambda kv: kv[1].value)
    out = f"largest entry: {name} = {e.value:g} {e.unit}"
    positive = [kv for kv in table.entries.items() if kv[1].value > 0]
    if positive:
        small, es = min(positive, key=lambda kv: kv[1].value)
        out += f"; smallest non-zero: {small} = {es.value:g} {es.unit}"
    return out


#: Table entries pricing one multiply + one add per arithmetic (EIE Fig. 10 compares these).
_MAC_OPS = {
    ("float32", 32): ("fp32_mult", "fp32_add"),
    ("fixed16", 32): ("int32_mult", "int32_add"),
    ("fixed16", 16): ("int16_mult", "int16_add"),
    ("fixed16", 8): ("int8_mult", "int8_add"),
}


def mac_energy_pj(arith: str, fixed_total_bits: int = 16, table: EnergyTable = DEFAULT_TABLE) -> Optional[dict]:
    """Energy of one multiply-accumulate in the PE datapath for an arithmetic (EIE Fig. 10).

    Parameters
    ----------
    arith : {"float32", "fixed16"}
        Datapath mode of :class:`eiesim.config.EIEConfig` (``fixed16`` is the
        fixed-point mode whatever its word width).
    fixed_total_bits : int, default 16
        Word width in fixed mode (ignored for ``float32``).
    table : EnergyTable
        Supplies the 45 nm operation energies: ``fp32_mult`` + ``fp32_add``
        (float32), ``int32_mult`` + ``int32_add``, ``int16_mult`` +
        ``int16_add`` or ``int8_mult`` + ``int8_add`` (Horowitz, ISSCC 2014;
        the 16-bit ones derived, see :mod:`eiesim.energy.tables`).

    Returns
    -------
    dict or None
        ``mult_pj``, ``add_pj``, ``mac_pj`` (pJ) and ``source`` (the two
        entries' sources); None for a fixed width the table does not price
        (other than 8, 16, 32 bits).
    """
    key = ("float32", 32) if arith == "float32" else (arith, int(fixed_total_bits))
    ops = _MAC_OPS.get(key)
    if ops is None:
        return None
    mult, add = table.value(ops[0], "pJ"), table.value(ops[1], "pJ")
    return {"mult_pj": float(mult), "add_pj": float(add), "mac_pj": float(mult + add),
            "source": f"{ops[0]}: {table.get(ops[0]).source}; {ops[1]}: {table.get(ops[1]).source}"}
