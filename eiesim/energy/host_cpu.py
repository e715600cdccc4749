"""A CPU baseline measured on the machine running eiesim: time, power, energy.

EIE (Han et al., ISCA 2016, Table IV, Figs. 6-7) compares its simulated time
with a CPU running the same layer densely (BLAS GEMV) and sparsely (CSR SpMV).
Its CPU numbers are published ones (an Intel Core i7-5930K, see
:mod:`eiesim.energy.baselines`); this module measures the same two
implementations here:

* dense: ``W @ X`` with NumPy (whatever BLAS NumPy was built with; the library
  and its thread count are recorded in :class:`HostInfo`);
* sparse: ``csr @ X`` with SciPy's CSR matrix (single-threaded C++ loop);

at any batch (``X`` of shape ``(n_in,)`` for batch 1, ``(n_in, b)`` for batch b),
dense and sparse **interleaved** sample by sample, medians reported.

Energy is never guessed silently: with a readable RAPL package counter
(``/sys/class/powercap/*-rapl:N/energy_uj``, Linux powercap) it is the counter's
difference over the timed samples; otherwise it is measured time x a power the
user declares (a TDP share) together with where that power comes from
(:class:`PowerSource`). Library code: nothing is printed, errors are
:class:`~eiesim.errors.EieInputError`.
"""

from __future__ import annotations

import math
import os
import platform as _platform
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import EieInputError

__all__ = [
    "DEFAULT_RAPL_ROOT",
    "TDP_PER_CORE_W",
    "TDP_PER_CORE_SOURCE",
    "PowerSource",
    "default_power",
    "declared_power",
    "RaplZone",
    "RaplMeter",
    "probe_rapl",
    "HostInfo",
    "host_info",
    "CpuTiming",
    "measure_cpu_matvec",
    "KINDS",
    "MAX_DENSE_BYTES",
    "eie_vs_cpu",
]

#: Where Linux exposes RAPL energy counters (powercap framework).
DEFAULT_RAPL_ROOT = "/sys/class/powercap"

#: Default declared power per core in use (W): AMD EPYC 7763 TDP 280 W / 64 cores.
TDP_PER_CORE_W = 280.0 / 64.0
#: Where :data:`TDP_PER_CORE_W` comes from.
TDP_PER_CORE_SOURCE = (
    "AMD EPYC 7763 (Zen 3 'Milan', 64 cores) default TDP 280 W (AMD EPYC 7763 product page) / 64 cores = "
    "4.375 W per core in use. Assumed, not measured: the machine eiesim's docs were measured on reports "
    "'AMD EPYC', CPU family 25 model 1 (Zen 3 Milan) behind a KVM hypervisor that hides the exact part; "
    "declare your own power and its source")

#: The two implementations timed.
KINDS = ("dense", "sparse")


# --------------------------------------------------------------------------- power
@dataclass(frozen=True)
class PowerSource:
    """How energy is obtained from a measurement.

    Attributes
    ----------
    method : {"rapl", "declared"}
        ``"rapl"``: the RAPL counters' difference over the timed calls;
        ``"declared"``: time x ``watts``.
    watts : float or None
        Declared power in W (``None`` for ``"rapl"``).
    source : str
        Where the power comes from (carried into every result).
    """

    method: str
    watts: Optional[float]
    source: str

    def to_dict(self) -> dict:
        """JSON-ready form: ``method``, ``watts`` (W or None), ``source``."""
        return asdict(self)


def declared_power(watts: float, source: str) -> PowerSource:
    """A user-declared power (e.g. a TDP) with its source.

    Parameters
    ----------
    watts : float
        Power charged for the whole measured time, in W; finite and > 0.
    source : str
        Where the number comes from (a datasheet, a wall meter); not empty.

    Returns
    -------
    PowerSource
        ``method="declared"``.

    Raises
    ------
    EieInputError
        Non-positive or non-finite ``watts``, or an empty ``source``.
    """
    try:
        w = float(watts)
    except (TypeError, ValueError):
        raise EieInputError(f"declared power must be a number of watts, not {watts!r}") from None
    if not (math.isfinite(w) and w > 0):
        raise EieInputError(f"declared power must be finite and > 0 W, not {watts!r}")
    if not isinstance(source, str) or not source.strip():
        raise EieInputError("a declared power needs its source (where the number of watts comes from)")
    return PowerSource("declared", w, source.strip())


def default_power(cores: int) -> PowerSource:
    """The default declared power: :data:`TDP_PER_CORE_W` x the cores in use.

    Parameters
    ----------
    cores : int
        Cores the measured code runs on (the BLAS thread count), >= 1.

    Returns
    -------
    PowerSource
        ``method="declared"``, ``watts = 4.375 W x cores``, the source naming
        the part and the formula (:data:`TDP_PER_CORE_SOURCE`).

    Raises
    ------
    EieInputError
        ``cores`` < 1.
    """
    if not isinstance(cores, (int, np.integer)) or cores < 1:
        raise EieInputError(f"cores in use must be an integer >= 1, not {cores!r}")
    return PowerSource("declared", TDP_PER_CORE_W * int(cores),
                       f"default: {TDP_PER_CORE_W:g} W x {int(cores)} core{'s' if cores != 1 else ''} in use; "
                       + TDP_PER_CORE_SOURCE)


@dataclass(frozen=True)
class RaplZone:
    """One top-level RAPL zone (a CPU package).

    Attributes
    ----------
    path : str
        The zone folder (e.g. ``/sys/class/powercap/intel-rapl:0``).
    name : str
        Its ``name`` file (e.g. ``package-0``).
    max_energy_range_uj : int
        Counter range in µJ (the counter wraps to 0 past it).
    """

    path: str
    name: str
    max_energy_range_uj: int


class RaplMeter:
    """Reads the energy counters of RAPL package zones (µJ, wrap-around handled).

    Parameters
    ----------
    zones : sequence of RaplZone
        The package zones to sum (from :func:`probe_rapl`).

    Raises
    ------
    EieInputError
        No zone given.

    Notes
    -----
    A package counter holds the energy of the whole socket: other processes on
    the machine are included. The counters update about every millisecond, so
    a measurement window should be much longer than that.
    """

    def __init__(self, zones: Sequence[RaplZone]):
        if not zones:
            raise EieInputError("RaplMeter needs at least one zone")
        self.zones = tuple(zones)

    def read_uj(self) -> Tuple[int, ...]:
        """The current counters, one per zone, in µJ.

        Returns
        -------
        tuple of int

        Raises
        ------
        EieInputError
            A counter became unreadable or is not an integer.
        """
        return tuple(_read_int(Path(z.path) / "energy_uj") for z in self.zones)

    def joules_between(self, before: Sequence[int], after: Sequence[int]) -> float:
        """Energy between two readings, in J, summed over the zones.

        A counter smaller after than before wrapped once: the difference is
        taken modulo ``max_energy_range_uj + 1``.

        Parameters
        ----------
        before, after : sequence of int
            Readings of :meth:`read_uj` (µJ).

        Returns
        -------
        float
            J, >= 0.
        """
        total = 0
        for z, b, a in zip(self.zones, before, after):
            d = a - b
            if d < 0:
                d += z.max_energy_range_uj + 1
            total += d
        return total * 1e-6

    @property
    def description(self) -> str:
        """``"RAPL package energy (zone names, paths)"``."""
        return "RAPL package energy counters (" + ", ".join(f"{z.name} at {z.path}" for z in self.zones) + ")"


def _read_int(path: Path) -> int:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EieInputError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    if not re.fullmatch(r"\d{1,20}", text):
        raise EieInputError(f"{path}: expected a non-negative integer, got {text[:40]!r}")
    return int(text)


_ZONE = re.compile(r"^[a-z]+-rapl:\d+$")  # top-level zones only (intel-rapl:0, not intel-rapl:0:1)


def probe_rapl(root=DEFAULT_RAPL_ROOT) -> Tuple[Optional[RaplMeter], str]:
    """Find readable RAPL package counters under a powercap folder.

    Parameters
    ----------
    root : path-like, default ``/sys/class/powercap``
        The powercap class folder (a fake tree in tests).

    Returns
    -------
    meter : RaplMeter or None
        A meter over every top-level zone whose ``name`` starts with
        ``package`` and whose ``energy_uj`` and ``max_energy_range_uj`` read
        as integers; ``None`` when there is none.
    reason : str
        What was found, or why there is no meter (folder absent, no package
        zone, counters not readable -- since Linux 5.10 ``energy_uj`` is
        readable by root only).
    """
    root = Path(root)
    if not root.is_dir():
        return None, f"{root} does not exist (no powercap/RAPL on this machine)"
    zones: List[RaplZone] = []
    problems: List[str] = []
    for d in sorted(root.iterdir(), key=lambda p: p.name):
        if not _ZONE.match(d.name):
            continue
        try:
            name = (d / "name").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            problems.append(f"{d.name}: no readable name")
            continue
        if not name.startswith("package"):
            continue
        try:
            _read_int(d / "energy_uj")
            rng = _read_int(d / "max_energy_range_uj")
        except EieInputError as exc:
            problems.append(str(exc))
            continue
        zones.append(RaplZone(str(d), name, rng))
    if zones:
        meter = RaplMeter(zones)
        return meter, meter.description
    if problems:
        return None, "RAPL present but not readable: " + "; ".join(problems)
    return None, f"no RAPL package zone under {root}"


# --------------------------------------------------------------------------- host
@dataclass(frozen=True)
class HostInfo:
    """What the measurement ran on.

    Attributes
    ----------
    cpu_model : str
        ``model name`` of ``/proc/cpuinfo`` with family/model numbers
        (``platform.processor()`` where there is no ``/proc/cpuinfo``).
    cpu_count : int
        Logical CPUs (``os.cpu_count()``).
    hypervisor : bool
        ``/proc/cpuinfo`` flags include ``hypervisor`` (a virtual machine).
    machine, system, python : str
    numpy, scipy : str
        Versions.
    blas : str
        BLAS NumPy is linked against (``numpy.show_config``), name and version.
    blas_threads : int or None
        BLAS threads (threadpoolctl when installed, else the
        ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
        environment); ``None`` when unknown.
    blas_threads_source : str
        Where ``blas_threads`` comes from.
    """

    cpu_model: str
    cpu_count: int
    hypervisor: bool
    machine: str
    system: str
    python: str
    numpy: str
    scipy: str
    blas: str
    blas_threads: Optional[int]
    blas_threads_source: str

    def to_dict(self) -> dict:
        """JSON-ready form (the fields)."""
        return asdict(self)


def _cpuinfo(path) -> Tuple[str, bool]:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return (_platform.processor() or _platform.machine() or "unknown"), False
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # first processor only
            continue
        k, _, v = line.partition(":")
        fields.setdefault(k.strip(), v.strip())
    model = fields.get("model name") or _platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    return model, "hypervisor" in fields.get("flags", "").split()


def _blas_name() -> str:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:  # old NumPy without mode="dicts", or a build without the section
        return "unknown"


def _blas_threads() -> Tuple[Optional[int], str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return int(pools[0]["num_threads"]), f"threadpoolctl ({pools[0].get('internal_api', '?')})"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        v = os.environ.get(var)
        if v and v.strip().isdigit() and int(v) >= 1:
            return int(v), f"environment {var}"
    return None, ("unknown: threadpoolctl not installed and no OPENBLAS/OMP/MKL_NUM_THREADS set "
                  "(OpenBLAS then uses one thread per CPU)")


def host_info(cpuinfo_path="/proc/cpuinfo") -> HostInfo:
    """Describe this machine and its BLAS.

    Parameters
    ----------
    cpuinfo_path : path-like, default ``/proc/cpuinfo``

    Returns
    -------
    HostInfo
    """
    import scipy

    model, hyper = _cpuinfo(cpuinfo_path)
    threads, tsrc = _blas_threads()
    return HostInfo(
        cpu_model=model, cpu_count=int(os.cpu_count() or 1), hypervisor=hyper,
        machine=_platform.machine(), system=f"{_platform.system()} {_platform.release()}",
        python=_platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
        blas=_blas_name(), blas_threads=threads, blas_threads_source=tsrc,
    )


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class CpuTiming:
    """One implementation at one batch size, measured here.

    Attributes
    ----------
    kind : {"dense", "sparse"}
        ``"dense"``: NumPy ``W @ X`` (BLAS GEMV at batch 1, GEMM above);
        ``"sparse"``: SciPy ``csr @ X``.
    batch : int
        Input vectors per call.
    time_per_call_s : float
        Median over the samples of (sample time / calls in the sample), s.
    time_per_vector_s : float
        ``time_per_call_s / batch``, s.
    iqr_rel : float
        Interquartile range of the per-call times / median (spread, >= 0).
    min_time_per_call_s : float
        Fastest sample's time per call, s (what an idle machine approaches).
    samples, calls_per_sample : int
        Timed samples (interleaved with the other kind) and calls in each.
    energy_per_vector_j : float
        J per input vector: RAPL energy of the samples / vectors computed, or
        declared power x ``time_per_vector_s``.
    power_w : float
        Power behind the energy (RAPL: energy / time; declared: the declared W).
    energy_method : {"rapl", "declared"}
    energy_source : str
        Where the power comes from (:attr:`PowerSource.source` or the RAPL zones).
    """

    kind: str
    batch: int
    time_per_call_s: float
    time_per_vector_s: float
    iqr_rel: float
    min_time_per_call_s: float
    samples: int
    calls_per_sample: int
    energy_per_vector_j: float
    power_w: float
    energy_method: str
    energy_source: str

    def to_dict(self) -> dict:
        """JSON-ready form (the fields; times in s, energy in J, power in W)."""
        return asdict(self)


#: Largest dense copy :func:`measure_cpu_matvec` makes (bytes): 2 GiB (VGG-16 FC6 as float32 is 411 MB).
MAX_DENSE_BYTES = 2**31


def _as_inputs(weights, x, max_dense_bytes):
    import scipy.sparse as sp

    if sp.issparse(weights):
        csr = sp.csr_array(weights, dtype=np.float32)
    else:
        w = np.asarray(weights)
        if w.ndim != 2:
            raise EieInputError(f"weights must be a 2-D matrix (n_out, n_in), got shape {w.shape}")
        csr = sp.csr_array(w.astype(np.float32, copy=False))
    n_out, n_in = csr.shape
    if n_out < 1 or n_in < 1:
        raise EieInputError(f"weights of shape {csr.shape}: need n_out, n_in >= 1")
    if 4 * n_out * n_in > max_dense_bytes:
        raise EieInputError(f"weights of shape {csr.shape}: the dense float32 copy would take "
                            f"{4 * n_out * n_in:,} bytes, over the limit of {max_dense_bytes:,}")
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.shape[0] != n_in or (x.ndim == 2 and x.shape[1] < 1):
        raise EieInputError(f"inputs of shape {x.shape}: need ({n_in},) or ({n_in}, batch >= 1) for weights "
                            f"of shape {csr.shape}")
    if not np.all(np.isfinite(x)):
        raise EieInputError("inputs hold NaN or infinity")
    x = np.ascontiguousarray(x, dtype=np.float32)
    dense = csr.toarray()  # float32, C order: what a dense BLAS baseline holds
    return dense, csr, x


def measure_cpu_matvec(weights, x, *, repeats: int = 21, warmup: int = 2, min_sample_s: float = 2e-3,
                       power: Optional[PowerSource] = None, rapl: Optional[RaplMeter] = None,
                       clock: Callable[[], float] = time.perf_counter,
                       max_dense_bytes: int = MAX_DENSE_BYTES) -> Dict[str, CpuTiming]:
    """Time dense (NumPy/BLAS) and CSR (SciPy) ``W @ X`` on this machine, interleaved.

    Parameters
    ----------
    weights : scipy.sparse matrix or numpy.ndarray, shape (n_out, n_in)
        The layer's weights (converted to float32: a C-ordered dense copy and
        a CSR matrix without explicit zeros stored as given).
    x : numpy.ndarray, shape (n_in,) or (n_in, batch)
        Input vectors (float32 after conversion); batch 1 is a matrix-vector
        product (GEMV), larger batches a matrix-matrix product.
    repeats : int, default 21
        Timed samples per kind, >= 1. Sample ``r`` runs dense then sparse for
        even ``r``, sparse then dense for odd ``r`` (interleaved, so a change
        of machine load hits both alike).
    warmup : int, default 2
        Untimed calls of each kind first, >= 0.
    min_sample_s : float, default 2e-3
        A sample repeats the call until it lasts at least about this long (s;
        the count is fixed from one timed call after the warm-up), so that
        timer resolution and RAPL's ~1 ms update do not dominate.
    power : PowerSource, optional
        Declared power for the energy when ``rapl`` is None; default
        :func:`default_power` (1 core).
    rapl : RaplMeter, optional
        When given, the energy is the RAPL counters' difference over each
        kind's samples (``power`` is then not used).
    clock : callable, default ``time.perf_counter``
        Seconds, monotonic.
    max_dense_bytes : int, default :data:`MAX_DENSE_BYTES`
        Refuse weights whose dense float32 copy would be larger (checked
        before anything is allocated).

    Returns
    -------
    dict of str to CpuTiming
        ``{"dense": ..., "sparse": ...}``, both at ``batch`` = 1 for a 1-D
        ``x`` else ``x.shape[1]``.

    Raises
    ------
    EieInputError
        Shapes that do not match, a dense copy over ``max_dense_bytes``,
        non-finite inputs, ``repeats`` < 1,
        ``warmup`` < 0, ``min_sample_s`` < 0, or dense and CSR results that
        disagree (beyond float32 rounding: something is wrong with the setup).
    """
    if not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise EieInputError(f"repeats must be an integer >= 1, not {repeats!r}")
    if not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise EieInputError(f"warmup must be an integer >= 0, not {warmup!r}")
    if not (isinstance(min_sample_s, (int, float)) and math.isfinite(min_sample_s) and min_sample_s >= 0):
        raise EieInputError(f"min_sample_s must be a finite number >= 0, not {min_sample_s!r}")
    dense, csr, x = _as_inputs(weights, x, max_dense_bytes)
    batch = 1 if x.ndim == 1 else int(x.shape[1])
    if rapl is None and power is None:
        power = default_power(1)
    fns = {"dense": lambda: dense @ x, "sparse": lambda: csr @ x}

    # the two must compute the same product (float32 sums in different orders)
    yd, ys = np.asarray(fns["dense"]()), np.asarray(fns["sparse"]())
    scale = float(np.max(np.asarray(abs(csr) @ np.abs(x)), initial=0.0))
    if yd.shape != ys.shape or float(np.max(np.abs(yd - ys), initial=0.0)) > 1e-3 * max(scale, 1e-30):
        raise EieInputError("dense and CSR products disagree beyond float32 rounding")

    calls = {}
    for k in KINDS:
        for _ in range(warmup):
            fns[k]()
        t0 = clock()
        fns[k]()
        one = max(clock() - t0, 1e-9)
        calls[k] = max(1, int(math.ceil(min_sample_s / one)))
    per_call: Dict[str, List[float]] = {k: [] for k in KINDS}
    time_total = {k: 0.0 for k in KINDS}
    joules = {k: 0.0 for k in KINDS}
    for r in range(repeats):
        for k in (KINDS if r % 2 == 0 else KINDS[::-1]):
            f, n = fns[k], calls[k]
            e0 = rapl.read_uj() if rapl is not None else None
            t0 = clock()
            for _ in range(n):
                f()
            dt = clock() - t0
            if rapl is not None:
                joules[k] += rapl.joules_between(e0, rapl.read_uj())
            per_call[k].append(dt / n)
            time_total[k] += dt
    out = {}
    for k in KINDS:
        t = np.asarray(per_call[k])
        med = float(np.median(t))
        q1, q3 = np.percentile(t, [25, 75])
        if rapl is not None:
            vectors = repeats * calls[k] * batch
            e_vec = joules[k] / vectors
            p_w = joules[k] / time_total[k] if time_total[k] > 0 else 0.0
            method, src = "rapl", rapl.description
        else:
            p_w = float(power.watts)
            e_vec = p_w * med / batch
            method, src = "declared", power.source
        out[k] = CpuTiming(kind=k, batch=batch, time_per_call_s=med, time_per_vector_s=med / batch,
                           iqr_rel=float((q3 - q1) / med) if med > 0 else 0.0,
                           min_time_per_call_s=float(np.min(t)), samples=int(repeats),
                           calls_per_sample=int(calls[k]), energy_per_vector_j=float(e_vec), power_w=float(p_w),
                           energy_method=method, energy_source=src)
    return out


# --------------------------------------------------------------------------- comparison
def eie_vs_cpu(eie_time_s: float, eie_energy_j: float, timings: Dict[str, CpuTiming]) -> Dict[str, dict]:
    """EIE's speedup and energy efficiency over measured CPU timings.

    Parameters
    ----------
    eie_time_s : float
        EIE's (simulated) time per input vector, s, > 0.
    eie_energy_j : float
        EIE's energy per input vector, J, > 0 (e.g. the paper's method:
        0.6 W x time, EIE Section VI).
    timings : dict of str to CpuTiming
        Keyed as the caller likes (e.g. ``"dense_b1"``).

    Returns
    -------
    dict of str to dict
        Per key: ``speedup`` = CPU time per vector / EIE time,
        ``speedup_fastest`` = the same with the CPU's fastest sample (what a
        machine without other load approaches), and ``energy_ratio`` = CPU
        energy per vector / EIE energy (all dimensionless, > 1 when EIE wins). A batch-b CPU call is charged per
        vector (its time / b); EIE runs one vector at a time, so its time per
        vector is the same at every batch.

    Raises
    ------
    EieInputError
        A non-positive or non-finite EIE time or energy.
    """
    for what, v in (("time", eie_time_s), ("energy", eie_energy_j)):
        if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v > 0):
            raise EieInputError(f"EIE {what} per vector must be finite and > 0, not {v!r}")
    return {k: {"speedup": t.time_per_vector_s / eie_time_s,
                "speedup_fastest": t.min_time_per_call_s / t.batch / eie_time_s,
                "energy_ratio": t.energy_per_vector_j / eie_energy_j}
            for k, t in timings.items()}
