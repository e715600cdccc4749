"""CPU, GPU and mobile-GPU baselines: published, modelled, and measured on this host.

Three kinds of numbers, each labelled with where it comes from:

``"published"``
    EIE (Han et al., ISCA 2016) Table IV, batch 1: wall time per layer on an
    Intel Core i7-5930K (CPU), an NVIDIA Titan X (GPU) and an NVIDIA Tegra K1
    (mGPU), dense (the uncompressed layer, BLAS GEMV) and sparse (the pruned
    layer, CSR SpMV). Batch-64 times are in the same table and in Deep
    Compression's appendix (Tables 8-9) but not in the sources this project may
    use, so they are ``None`` with the label ``"not available"``.
``"derived from the paper's headline ratios"``
    Platform powers. The paper's headline numbers are geometric means over the
    nine layers: EIE is 189x / 13x / 307x faster and 24,000x / 3,400x /
    2,700x more energy-efficient than CPU / GPU / mGPU running the
    uncompressed layers, with EIE at 0.6 W. Energy ratio / speedup = platform
    power / EIE power, so P = 0.6 W x (energy ratio / speedup): 76.2 W,
    156.9 W and 5.28 W.
``"modelled"``
    For layers the paper did not time: a memory-bound model per platform and
    kind, ``t = t0 + bytes / BW``, with ``t0`` and ``BW`` fitted to the nine
    published layers (least squares on relative error).
``"measured on this host"``
    Dense GEMV with NumPy and CSR matvec with SciPy on the machine running
    eiesim (warm-up, interleaved samples, median). No power is measured, so no energy.
    The fuller measurement -- batch 1 and 64, dense and CSR interleaved, BLAS
    and thread count recorded, energy from RAPL or a declared power with its
    source -- is :mod:`eiesim.energy.host_cpu` (``scripts/measure_cpu_baseline.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import EieInputError

__all__ = [
    "Platform",
    "PLATFORMS",
    "PLATFORM_ORDER",
    "KINDS",
    "LAYER_ORDER",
    "PUBLISHED_BATCH1_US",
    "PUBLISHED_EIE_US",
    "HEADLINE",
    "SOURCE_TABLE4",
    "BaselineTime",
    "published_time",
    "MemoryBoundModel",
    "fit_memory_bound_model",
    "fitted_models",
    "measure_host",
    "geomean",
]

#: Source of the published times.
SOURCE_TABLE4 = "EIE (Han et al., ISCA 2016) Table IV, batch 1"
SOURCE_HEADLINE = ("EIE (Han et al., ISCA 2016) abstract / Section VI: geometric means over the nine "
                   "benchmark layers vs the uncompressed (dense) layers")
LABEL_POWER = "derived from the paper's headline ratios"

#: The paper's layer order (EIE Table III/IV, Figs. 6-7).
LAYER_ORDER = ("Alex-6", "Alex-7", "Alex-8", "VGG-6", "VGG-7", "VGG-8", "NT-We", "NT-Wd", "NT-LSTM")
#: Platforms, in the paper's order.
PLATFORM_ORDER = ("cpu", "gpu", "mgpu")
#: Implementations timed on each platform.
KINDS = ("dense", "sparse")

#: EIE's own times in the paper (µs), EIE Table IV "EIE" row (64 PEs, 800 MHz).
PUBLISHED_EIE_US: Dict[str, float] = {
    "Alex-6": 30.3, "Alex-7": 12.2, "Alex-8": 9.9, "VGG-6": 34.4, "VGG-7": 8.7,
    "VGG-8": 8.4, "NT-We": 8.0, "NT-Wd": 13.9, "NT-LSTM": 7.5,
}

#: Published batch-1 wall times in µs: ``[layer][(platform, kind)]`` (EIE Table IV).
PUBLISHED_BATCH1_US: Dict[str, Dict[Tuple[str, str], float]] = {
    name: {("cpu", "dense"): c_d, ("cpu", "sparse"): c_s, ("gpu", "dense"): g_d,
           ("gpu", "sparse"): g_s, ("mgpu", "dense"): m_d, ("mgpu", "sparse"): m_s}
    for name, c_d, c_s, g_d, g_s, m_d, m_s in (
        ("Alex-6", 7516.2, 3066.5, 541.5, 134.8, 12437.2, 2879.3),
        ("Alex-7", 6187.1, 1282.1, 243.0, 65.8, 5765.0, 1256.5),
        ("Alex-8", 1134.9, 890.5, 80.5, 54.6, 2252.1, 837.0),
        ("VGG-6", 35022.8, 3774.3, 1467.8, 167.0, 35427.0, 4377.2),
        ("VGG-7", 5372.8, 545.1, 243.0, 39.8, 5544.3, 626.3),
        ("VGG-8", 774.2, 777.3, 80.5, 48.0, 2243.1, 745.1),
        ("NT-We", 605.0, 261.2, 65.0, 17.7, 1316.0, 240.6),
        ("NT-Wd", 1361.4, 437.4, 90.1, 41.1, 2565.5, 570.6),
        ("NT-LSTM", 470.5, 260.0, 51.9, 18.5, 956.9, 315.0),
    )
}

#: Headline geometric means of the paper (vs the dense layers), with EIE at 0.6 W.
HEADLINE = {
    "speedup": {"cpu": 189.0, "gpu": 13.0, "mgpu": 307.0},
    "energy": {"cpu": 24000.0, "gpu": 3400.0, "mgpu": 2700.0},
    "eie_power_w": 0.6,
    "source": SOURCE_HEADLINE,
    "note": "recomputing the CPU speedup from Table IV gives 194x (the bars for NT-We and NT-LSTM "
            "do not match the table)",
}


@dataclass(frozen=True)
class Platform:
    """A baseline platform.

    Attributes
    ----------
    key : str
        ``"cpu"``, ``"gpu"`` or ``"mgpu"``.
    label : str
        Short display name.
    device : str
        The hardware of the paper's measurements.
    power_w : float
        Power used for energy (W).
    power_source : str
        Where ``power_w`` comes from.
    """

    key: str
    label: str
    device: str
    power_w: float
    power_source: str


def _derived_power(key: str) -> float:
    """P = EIE power x (headline energy ratio / headline speedup)."""
    return HEADLINE["eie_power_w"] * HEADLINE["energy"][key] / HEADLINE["speedup"][key]


#: The paper's three platforms with their derived powers.
PLATFORMS: Dict[str, Platform] = {
    "cpu": Platform("cpu", "CPU", "Intel Core i7-5930K", _derived_power("cpu"),
                    f"{LABEL_POWER}: 0.6 W x 24,000 / 189 ({SOURCE_HEADLINE})"),
    "gpu": Platform("gpu", "GPU", "NVIDIA GeForce GTX Titan X", _derived_power("gpu"),
                    f"{LABEL_POWER}: 0.6 W x 3,400 / 13 ({SOURCE_HEADLINE})"),
    "mgpu": Platform("mgpu", "mGPU", "NVIDIA Tegra K1", _derived_power("mgpu"),
                     f"{LABEL_POWER}: 0.6 W x 2,700 / 307 ({SOURCE_HEADLINE})"),
}


@dataclass(frozen=True)
class BaselineTime:
    """One baseline time.

    Attributes
    ----------
    layer, platform, kind : str
    batch : int
    time_us : float or None
        Wall time per input vector in µs; ``None`` when not available.
    label : str
        ``"published"``, ``"modelled"``, ``"measured on this host"`` or ``"not available"``.
    source : str
    """

    layer: str
    platform: str
    kind: str
    batch: int
    time_us: Optional[float]
    label: str
    source: str

    def to_dict(self) -> dict:
        """JSON-ready form.

        Returns
        -------
        dict
            ``layer``, ``platform``, ``kind``, ``batch``, ``time_us`` (µs or None),
            ``label`` and ``source``.
        """
        return dict(layer=self.layer, platform=self.platform, kind=self.kind, batch=self.batch,
                    time_us=self.time_us, label=self.label, source=self.source)


def published_time(layer: str, platform: str, kind: str, batch: int = 1) -> BaselineTime:
    """A published baseline time.

    Parameters
    ----------
    layer : str
        One of :data:`LAYER_ORDER`.
    platform : {"cpu", "gpu", "mgpu"}
    kind : {"dense", "sparse"}
    batch : {1, 64}
        Batch 64 is ``"not available"`` (see the module docstring).

    Returns
    -------
    BaselineTime
        Batch 1: ``time_us`` in µs from EIE (Han et al., ISCA 2016) Table IV,
        label ``"published"``. Batch 64: ``time_us`` None, label
        ``"not available"``.

    Raises
    ------
    EieInputError
        Unknown layer, platform, kind or batch.
    """
    if layer not in PUBLISHED_BATCH1_US:
        raise EieInputError(f"no published baseline for layer {layer!r} (have {', '.join(LAYER_ORDER)})")
    if platform not in PLATFORMS or kind not in KINDS:
        raise EieInputError(f"unknown platform/kind {platform!r}/{kind!r}")
    if batch == 1:
        return BaselineTime(layer, platform, kind, 1, PUBLISHED_BATCH1_US[layer][(platform, kind)],
                            "published", SOURCE_TABLE4)
    if batch == 64:
        return BaselineTime(layer, platform, kind, 64, None, "not available",
                            "EIE Table IV / Deep Compression Tables 8-9 batch-64 columns: not in this "
                            "project's sources")
    raise EieInputError(f"batch {batch}: the paper reports batch 1 and 64 only")


# --------------------------------------------------------------------------- analytical model
def layer_bytes(n_out: int, n_in: int, weight_density: float, kind: str) -> float:
    """Bytes a memory-bound GEMV moves for one input vector.

    ``dense``: fp32 weights ``4 n_out n_in`` plus the two vectors ``4 (n_in + n_out)``.
    ``sparse`` (CSR, fp32 values, int32 column indices): ``8 nnz + 4 (n_out + 1)``
    plus the vectors.

    Parameters
    ----------
    n_out, n_in : int
        Layer shape (rows, columns).
    weight_density : float
        Fraction of non-zero weights, in [0, 1] (``nnz = density n_out n_in``;
        used for ``"sparse"`` only).
    kind : {"dense", "sparse"}

    Returns
    -------
    float
        Bytes moved.

    Raises
    ------
    EieInputError
        Unknown ``kind``.
    """
    vec = 4.0 * (n_in + n_out)
    if kind == "dense":
        return 4.0 * n_out * n_in + vec
    if kind == "sparse":
        nnz = weight_density * n_out * n_in
        return 8.0 * nnz + 4.0 * (n_out + 1) + vec
    raise EieInputError(f"unknown kind {kind!r}")


@dataclass(frozen=True)
class MemoryBoundModel:
    """``t = t0 + bytes / bandwidth``, fitted to published times (label ``"modelled"``).

    Attributes
    ----------
    platform, kind : str
    t0_us : float
        Fixed overhead per call in µs (kernel launch, call overhead), >= 0.
    bandwidth_gbs : float
        Effective bandwidth in GB/s (1e9 bytes/s).
    power_w : float
        Platform power (W), from :data:`PLATFORMS`.
    max_rel_error : float
        Largest |model/published - 1| over the fitted layers.
    source : str
    """

    platform: str
    kind: str
    t0_us: float
    bandwidth_gbs: float
    power_w: float
    max_rel_error: float
    source: str

    def time_us(self, n_out: int, n_in: int, weight_density: float) -> float:
        """Modelled time in µs of one input vector through an ``(n_out, n_in)`` layer.

        Parameters
        ----------
        n_out, n_in : int
            Layer shape.
        weight_density : float
            Fraction of non-zero weights, in [0, 1] (see :func:`layer_bytes`).

        Returns
        -------
        float
            ``t0_us + layer_bytes(...) / bandwidth``, in µs.

        Raises
        ------
        EieInputError
            If the model's ``kind`` is unknown.
        """
        return self.t0_us + layer_bytes(n_out, n_in, weight_density, self.kind) / (self.bandwidth_gbs * 1e3)

    def energy_j(self, n_out: int, n_in: int, weight_density: float) -> float:
        """Modelled energy in J: ``power_w x time``.

        Parameters
        ----------
        n_out, n_in : int
            Layer shape.
        weight_density : float
            Fraction of non-zero weights, in [0, 1].

        Returns
        -------
        float
            J, ``power_w * time_us(...) * 1e-6`` (power derived from the paper's
            headline ratios, see :data:`PLATFORMS`).
        """
        return self.power_w * self.time_us(n_out, n_in, weight_density) * 1e-6

    def to_dict(self) -> dict:
        """JSON-ready form.

        Returns
        -------
        dict
            The fields (``t0_us`` in µs, ``bandwidth_gbs`` in GB/s, ``power_w`` in
            W), plus ``label`` = ``"modelled"``.
        """
        return dict(platform=self.platform, kind=self.kind, t0_us=self.t0_us,
                    bandwidth_gbs=self.bandwidth_gbs, power_w=self.power_w,
                    max_rel_error=self.max_rel_error, label="modelled", source=self.source)


def fit_memory_bound_model(platform: str, kind: str, layers: Sequence[Tuple[str, int, int, float]]) -> MemoryBoundModel:
    """Fit ``t0`` and bandwidth to the published times of ``layers``.

    Parameters
    ----------
    platform : {"cpu", "gpu", "mgpu"}
    kind : {"dense", "sparse"}
    layers : sequence of (name, n_out, n_in, weight_density)
        Layers with published times (names from :data:`LAYER_ORDER`).

    Returns
    -------
    MemoryBoundModel
        Weighted least squares minimising the relative error; ``t0`` is
        clamped at 0 (then only the bandwidth is fitted).
    """
    b = np.array([layer_bytes(n_out, n_in, d, kind) for _, n_out, n_in, d in layers])
    t = np.array([PUBLISHED_BATCH1_US[name][(platform, kind)] for name, *_ in layers])
    w = 1.0 / t
    A = np.stack([np.ones_like(b), b], axis=1) * w[:, None]
    (t0, inv_bw), *_ = np.linalg.lstsq(A, t * w, rcond=None)
    if t0 < 0 or inv_bw <= 0:
        t0 = 0.0
        inv_bw = float(np.sum(w * w * b * t) / np.sum(w * w * b * b))
    pred = t0 + b * inv_bw
    bw_gbs = 1.0 / inv_bw / 1e3  # bytes per µs -> GB/s
    return MemoryBoundModel(
        platform=platform, kind=kind, t0_us=float(t0), bandwidth_gbs=float(bw_gbs),
        power_w=PLATFORMS[platform].power_w,
        max_rel_error=float(np.max(np.abs(pred / t - 1.0))),
        source=f"modelled: t = t0 + bytes/BW fitted to {SOURCE_TABLE4} ({len(layers)} layers); "
               f"power {LABEL_POWER}",
    )


def fitted_models(layers: Sequence[Tuple[str, int, int, float]]) -> Dict[Tuple[str, str], MemoryBoundModel]:
    """:func:`fit_memory_bound_model` for every platform and kind.

    Parameters
    ----------
    layers : sequence of (name, n_out, n_in, weight_density)
        Layers with published times (names from :data:`LAYER_ORDER`).

    Returns
    -------
    dict of (str, str) to MemoryBoundModel
        Keyed by ``(platform, kind)`` for every platform of
        :data:`PLATFORM_ORDER` and kind of :data:`KINDS`.

    Raises
    ------
    KeyError
        If a layer name has no published time.
    """
    return {(p, k): fit_memory_bound_model(p, k, layers) for p in PLATFORM_ORDER for k in KINDS}


# --------------------------------------------------------------------------- measured here
def measure_host(n_out: int, n_in: int, weight_density: float, *, seed: int = 0,
                 warmup: int = 3, repeats: int = 9, weights=None) -> dict:
    """Time dense GEMV (NumPy) and CSR matvec (SciPy) for one layer on this host, batch 1.

    A short form of :func:`eiesim.energy.host_cpu.measure_cpu_matvec` (dense
    and CSR interleaved sample by sample, each sample >= 2 ms, medians) for
    ``scripts/reproduce_eie.py``; no energy (see that module for batches,
    RAPL and declared power).

    Parameters
    ----------
    n_out, n_in : int
        Layer shape.
    weight_density : float
        Fraction of non-zero weights (uniform random positions when
        ``weights`` is not given).
    seed : int
        Seed of the random matrix and vector.
    warmup, repeats : int
        Untimed calls, then timed samples per implementation; the median is reported.
    weights : scipy.sparse matrix, optional
        Use this matrix (float32, shape ``(n_out, n_in)``) instead of a random one.

    Returns
    -------
    dict
        ``dense_us``, ``sparse_us`` (medians, µs per input vector), ``label``
        ``"measured on this host"``, ``host`` (machine, CPUs, BLAS and its
        threads, versions), ``warmup``, ``repeats``, ``energy``:
        ``"not available"`` (no power measurement).

    Raises
    ------
    EieInputError
        ``warmup`` < 0, ``repeats`` < 1, or weights that do not match the shape.
    """
    import scipy.sparse as sp

    from .host_cpu import host_info, measure_cpu_matvec

    if warmup < 0 or repeats < 1:
        raise EieInputError("measure_host: warmup >= 0 and repeats >= 1")
    rng = np.random.default_rng(seed)
    if weights is None:
        nnz = int(round(weight_density * n_out * n_in))
        flat = rng.choice(n_out * n_in, size=nnz, replace=False)
        csr = sp.csr_array(
            (rng.standard_normal(nnz).astype(np.float32), (flat // n_in, flat % n_in)),
            shape=(n_out, n_in),
        )
    else:
        csr = sp.csr_array(weights, dtype=np.float32)
        if csr.shape != (n_out, n_in):
            raise EieInputError(f"measure_host: weights of shape {csr.shape}, expected {(n_out, n_in)}")
    x = rng.standard_normal(n_in).astype(np.float32)
    r = measure_cpu_matvec(csr, x, repeats=repeats, warmup=warmup)
    h = host_info()
    threads = h.blas_threads if h.blas_threads is not None else "default"
    host = (f"{h.machine}, {h.cpu_count} CPUs, {h.blas}, BLAS threads {threads}, "
            f"numpy {h.numpy}, scipy {h.scipy}")
    return {
        "dense_us": r["dense"].time_per_call_s * 1e6,
        "sparse_us": r["sparse"].time_per_call_s * 1e6,
        "label": "measured on this host",
        "host": host,
        "warmup": warmup,
        "repeats": repeats,
        "energy": "not available (no power measurement on this host)",
    }


def geomean(values) -> float:
    """Geometric mean of positive values (NaN if any is missing or <= 0).

    Parameters
    ----------
    values : iterable of float

    Returns
    -------
    float
        ``exp(mean(log(values)))``; ``nan`` for an empty input or when any
        value is NaN or <= 0.
    """
    v = [float(x) for x in values]
    if not v or any(not (x > 0) or math.isnan(x) for x in v):
        return math.nan
    return math.exp(sum(math.log(x) for x in v) / len(v))
