"""Synthetic sparse layers and activation vectors, with the statistics of real pruned layers.

Real magnitude-pruned layers are not uniformly random: some output rows keep
many more weights than others, and so do some input columns. On the authors'
AlexNet FC8 (1,000 x 4,096, 25.7 % dense) the per-row density has a
coefficient of variation (CV) of 0.133, against 0.027 for a uniform random
matrix of the same shape and density. EIE's time depends on those spreads
(they decide how evenly the work falls on the PEs and how many filler
entries the relative indices need) and on which inputs are non-zero.

The generator
-------------
A weight ``W[i, j]`` is kept with probability
``min(1, s * d * r_i * c_j)`` where ``d`` is the target density, ``r_i`` and
``c_j`` are Gamma-distributed multipliers of mean 1 and CV ``row_cv`` and
``col_cv`` (1 when the CV is 0), and ``s`` (1 unless the clip at 1 binds)
restores the expected density. Kept weights get uniform random codes
1 ... 2**code_bits - 1. The activation vector has exactly
``round(act_density * n_in)`` non-zero entries chosen without replacement with
weights ``c_j ** act_affinity`` (0: uniform; > 0: inputs whose columns hold
more weights are more often active), values ``|N(0, 1)| + 0.01``.

A measured density CV mixes the multiplier spread with binomial sampling
noise: ``cv_measured**2 ~= cv_multiplier**2 + (1 - d) / (d n)`` with ``n``
the row length (``n_in``) for rows and the column length (``n_out``) for
columns; :func:`multiplier_cv` inverts it, so a spread measured on one layer
transfers to layers of other shapes.

Everything is deterministic from ``seed`` (NumPy ``default_rng`` streams
spawned from one ``SeedSequence``; matrices are drawn in fixed-size row
chunks).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, Optional

import numpy as np
import scipy.sparse as sp

from ..errors import EieInputError

__all__ = [
    "SyntheticSpec",
    "SyntheticLayer",
    "generate",
    "make_activations",
    "layer_statistics",
    "multiplier_cv",
    "fit_affinity",
    "bisect_increasing",
    "PROFILES",
    "FC8_MEASURED",
    "synthetic_codebook",
]

#: Rows drawn per chunk (fixed, so results do not depend on the machine).
_CHUNK_ELEMS = 1 << 22

#: Statistics eiesim measured on the authors' AlexNet FC8 dump (``../shared/data/alexnet_fc8_eie``,
#: the Alex-8 layer of EIE Table IV) with :func:`layer_statistics`; ``tests/workloads`` re-measures them.
FC8_MEASURED = {
    "shape": (1000, 4096),
    "weight_density": 0.256600,
    "row_density_cv": 0.13265,
    "col_density_cv": 0.09802,
    "act_density": 0.42944,
    "act_col_density_ratio": 1.0032,
    "source": "measured by eiesim on the authors' AlexNet FC8 dump (RalphMao/EIE-simulator, real input act.dat)",
}


def multiplier_cv(measured_cv: float, density: float, n: int) -> float:
    """Multiplier CV that yields ``measured_cv`` after binomial sampling.

    Parameters
    ----------
    measured_cv : float
        CV of the measured per-row (or per-column) density.
    density : float
        Weight density d of the layer.
    n : int
        Length of a row (``n_in``) or of a column (``n_out``).

    Returns
    -------
    float
        ``sqrt(max(0, measured_cv**2 - (1 - d) / (d n)))``.
    """
    if not 0 < density <= 1 or n < 1:
        raise EieInputError("multiplier_cv: need 0 < density <= 1 and n >= 1")
    return math.sqrt(max(0.0, measured_cv ** 2 - (1.0 - density) / (density * n)))


#: Knob presets. ``fc8`` is calibrated on the real FC8 (:data:`FC8_MEASURED`): the measured
#: row/column CVs with the binomial part removed (:func:`multiplier_cv`), no activation affinity
#: (its active inputs' columns are as dense as the rest: ratio 1.003).
PROFILES: Dict[str, Dict[str, float]] = {
    "uniform": {"row_cv": 0.0, "col_cv": 0.0, "act_affinity": 0.0},
    "fc8": {
        "row_cv": round(multiplier_cv(FC8_MEASURED["row_density_cv"], FC8_MEASURED["weight_density"], 4096), 4),
        "col_cv": round(multiplier_cv(FC8_MEASURED["col_density_cv"], FC8_MEASURED["weight_density"], 1000), 4),
        "act_affinity": 0.0,
    },
}


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Parameters
    ----------
    n_out, n_in : int
        Weight matrix shape ``(n_out, n_in)`` (rows = outputs).
    weight_density : float
        Expected fraction of kept weights, in (0, 1].
    act_density : float
        Fraction of non-zero input activations, in [0, 1].
    row_cv, col_cv : float, default 0
        CV of the row / column density multipliers (0 = uniform random).
    act_affinity : float, default 0
        Exponent of the column multiplier in the choice of active inputs.
    bias : bool, default True
        Add a bias column with every row non-zero (as the authors' dumps have).
    seed : int, default 0
    name : str, default "synthetic"
    """

    n_out: int
    n_in: int
    weight_density: float
    act_density: float
    row_cv: float = 0.0
    col_cv: float = 0.0
    act_affinity: float = 0.0
    bias: bool = True
    seed: int = 0
    name: str = "synthetic"

    def __post_init__(self) -> None:
        for nm in ("n_out", "n_in"):
            v = getattr(self, nm)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise EieInputError(f"SyntheticSpec.{nm}: expected an integer >= 1, got {v!r}")
        if not 0 < self.weight_density <= 1:
            raise EieInputError(f"SyntheticSpec.weight_density: {self.weight_density} is not in (0, 1]")
        if not 0 <= self.act_density <= 1:
            raise EieInputError(f"SyntheticSpec.act_density: {self.act_density} is not in [0, 1]")
        for nm in ("row_cv", "col_cv", "act_affinity"):
            v = getattr(self, nm)
            if not (math.isfinite(v) and v >= 0):
                raise EieInputError(f"SyntheticSpec.{nm}: {v} must be finite and >= 0")

    def with_profile(self, profile: str) -> "SyntheticSpec":
        """Copy with the knobs of :data:`PROFILES` ``[profile]``.

        Parameters
        ----------
        profile : str
            A key of :data:`PROFILES`.

        Returns
        -------
        SyntheticSpec
            Same shape, densities and seed; the profile's knobs replaced.

        Raises
        ------
        EieInputError
            Unknown profile.
        """
        if profile not in PROFILES:
            raise EieInputError(f"unknown profile {profile!r} (have {', '.join(PROFILES)})")
        return replace(self, **PROFILES[profile])

    def to_dict(self) -> dict:
        """Plain dict.

        Returns
        -------
        dict
            Field name -> value (JSON-ready).
        """
        return asdict(self)


@dataclass(frozen=True, eq=False)
class SyntheticLayer:
    """A generated layer with its activation vector.

    Attributes
    ----------
    spec : SyntheticSpec
    layer : CompressedLayer
    activations : numpy.ndarray of float32, shape (n_in,)
    col_multipliers : numpy.ndarray of float64, shape (n_in,)
        The ``c_j`` used (for new activation vectors with :func:`make_activations`).
    stats : dict
        :func:`layer_statistics` of the result.
    """

    spec: SyntheticSpec
    layer: object
    activations: np.ndarray
    col_multipliers: np.ndarray
    stats: dict = field(default_factory=dict)


def _multipliers(rng: np.random.Generator, n: int, cv: float) -> np.ndarray:
    if cv <= 0:
        return np.ones(n)
    k = 1.0 / cv ** 2
    m = rng.gamma(k, 1.0 / k, n)
    return m / m.mean()


def synthetic_codebook(code_bits: int = 4) -> np.ndarray:
    """Codebook of a synthetic layer: 0.0 then ``2**code_bits - 1`` distinct non-zero values in [-1, 1].

    Parameters
    ----------
    code_bits : int, default 4
        Code width (EIE: 4 bits, a 16-entry codebook; EIE Section III).

    Returns
    -------
    numpy.ndarray of float32, shape (2**code_bits,)
        Entry 0 is 0.0 (the filler/pruned value); then evenly spaced negative
        values from -1, then positive values up to 1.
    """
    n = (1 << code_bits) - 1
    neg = n // 2 + n % 2
    vals = np.concatenate([-np.linspace(1.0, 1.0 / neg, neg), np.linspace(1.0 / neg, 1.0, n - neg)])
    return np.concatenate([[0.0], vals]).astype(np.float32)


def _expected_nnz(scale: float, d: float, r: np.ndarray, c: np.ndarray) -> float:
    tot = 0.0
    step = max(1, _CHUNK_ELEMS // c.size)
    for i0 in range(0, r.size, step):
        tot += float(np.minimum(1.0, scale * d * r[i0:i0 + step, None] * c[None, :]).sum())
    return tot


def make_activations(n_in: int, act_density: float, col_multipliers: Optional[np.ndarray] = None,
                     act_affinity: float = 0.0, *, seed=0) -> np.ndarray:
    """An activation vector with exactly ``round(act_density * n_in)`` non-zeros.

    Parameters
    ----------
    n_in : int
    act_density : float
        In [0, 1].
    col_multipliers : numpy.ndarray, shape (n_in,), optional
        Column multipliers ``c_j``; needed when ``act_affinity > 0``.
    act_affinity : float
        Non-zeros are drawn without replacement with weights ``c_j ** act_affinity``
        (Gumbel top-k).
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    numpy.ndarray of float32, shape (n_in,)
        Non-negative (ReLU-like) values ``|N(0, 1)| + 0.01`` at the chosen inputs.
    """
    if not 0 <= act_density <= 1:
        raise EieInputError(f"act_density {act_density} is not in [0, 1]")
    rng = np.random.default_rng(seed)
    k = int(round(act_density * n_in))
    keys = -np.log(-np.log(rng.random(n_in)))  # Gumbel(0, 1)
    if act_affinity and col_multipliers is not None:
        keys = keys + act_affinity * np.log(np.maximum(col_multipliers, 1e-300))
    idx = np.argsort(-keys, kind="stable")[:k]
    a = np.zeros(n_in, dtype=np.float32)
    a[idx] = (np.abs(rng.standard_normal(k)) + 0.01).astype(np.float32)
    return a


def generate(spec: SyntheticSpec, n_pe: int = 64, *, code_bits: int = 4, index_bits: int = 4) -> SyntheticLayer:
    """Generate a layer and an activation vector from ``spec``.

    Parameters
    ----------
    spec : SyntheticSpec
    n_pe : int, default 64
        PEs the layer is laid out for.
    code_bits, index_bits : int, default 4
        Entry format (EIE: 4 + 4 bits).

    Returns
    -------
    SyntheticLayer
        With :func:`layer_statistics` of the generated layer and vector.
    """
    from ..format.layout import CompressedLayer

    ss = np.random.SeedSequence(spec.seed)
    s_row, s_col, s_mask, s_code, s_act, s_bias = ss.spawn(6)
    r = _multipliers(np.random.default_rng(s_row), spec.n_out, spec.row_cv)
    c = _multipliers(np.random.default_rng(s_col), spec.n_in, spec.col_cv)
    d = spec.weight_density
    scale = 1.0
    if d * r.max() * c.max() > 1.0:  # the clip at 1 binds somewhere: restore the expected density
        target = d * spec.n_out * spec.n_in
        lo, hi = 1.0, 1.0
        while _expected_nnz(hi, d, r, c) < target and hi < 1e6:
            hi *= 2.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if _expected_nnz(mid, d, r, c) < target:
                lo = mid
            else:
                hi = mid
        scale = hi
    rng = np.random.default_rng(s_mask)
    rows_l, cols_l = [], []
    step = max(1, _CHUNK_ELEMS // spec.n_in)
    for i0 in range(0, spec.n_out, step):
        rr = r[i0:i0 + step]
        p = np.minimum(1.0, (scale * d) * rr[:, None] * c[None, :]).astype(np.float32)
        u = rng.random((rr.size, spec.n_in), dtype=np.float32)
        ii, jj = np.nonzero(u < p)
        rows_l.append(ii + i0)
        cols_l.append(jj)
    rows = np.concatenate(rows_l).astype(np.int64)
    cols = np.concatenate(cols_l).astype(np.int64)
    hi_code = 1 << code_bits
    codes = np.random.default_rng(s_code).integers(1, hi_code, rows.size, dtype=np.int64)
    coo = sp.coo_array((codes, (rows, cols)), shape=(spec.n_out, spec.n_in))
    bias = np.random.default_rng(s_bias).integers(1, hi_code, spec.n_out, dtype=np.int64) if spec.bias else None
    layer = CompressedLayer.from_codes(
        coo, synthetic_codebook(code_bits), n_pe, bias_codes=bias,
        code_bits=code_bits, index_bits=index_bits, name=spec.name,
    )
    a = make_activations(spec.n_in, spec.act_density, c, spec.act_affinity, seed=s_act)
    return SyntheticLayer(spec, layer, a, c, layer_statistics(layer, a))


def layer_statistics(layer, activations=None) -> dict:
    """Statistics that decide EIE's load balance, measured on a compressed layer.

    Parameters
    ----------
    layer : CompressedLayer
    activations : array_like, shape (n_in,), optional

    Returns
    -------
    dict
        ``shape``; ``weight_density``; ``row_density_cv`` and
        ``col_density_cv`` (CV of the per-row / per-column kept fraction, bias
        excluded); ``row_density_cv_uniform`` and ``col_density_cv_uniform``
        (what a uniform random matrix of this shape and density gives,
        ``sqrt((1 - d) / (d n))``); ``pe_load_cv`` and ``pe_load_max_over_mean``
        (non-zeros per PE); ``filler_share`` (fillers / stored entries);
        with activations also ``act_density`` and ``act_col_density_ratio``
        (mean column density over the non-zero inputs / over all inputs; 1 =
        no affinity) and ``empty_slice_share`` (share of (PE, active column)
        slices with no entry: each costs a cycle).
    """
    n_out, n_in = layer.shape
    ent_cols = layer.entry_cols()
    real = (layer.v != 0) & (ent_cols < n_in)
    rows = layer.entry_rows()[real]
    cols = ent_cols[real]
    nnz = rows.size
    d = nnz / (n_out * n_in)
    row_n = np.bincount(rows, minlength=n_out) / n_in
    col_n = np.bincount(cols, minlength=n_in) / n_out
    pe_n = np.bincount(rows % layer.n_pe, minlength=layer.n_pe).astype(float)

    def cv(x):
        m = x.mean()
        return float(x.std() / m) if m > 0 else 0.0

    out = {
        "shape": [int(n_out), int(n_in)],
        "weight_density": float(d),
        "row_density_cv": cv(row_n),
        "col_density_cv": cv(col_n),
        "row_density_cv_uniform": float(math.sqrt((1 - d) / (d * n_in))) if d > 0 else 0.0,
        "col_density_cv_uniform": float(math.sqrt((1 - d) / (d * n_out))) if d > 0 else 0.0,
        "pe_load_cv": cv(pe_n),
        "pe_load_max_over_mean": float(pe_n.max() / pe_n.mean()) if pe_n.mean() > 0 else 0.0,
        "filler_share": float(layer.n_fillers / layer.n_entries) if layer.n_entries else 0.0,
    }
    if activations is not None:
        a = np.asarray(activations)
        if a.shape != (n_in,):
            raise EieInputError(f"activations: expected shape ({n_in},), got {a.shape}")
        act = a != 0
        out["act_density"] = float(act.mean())
        out["act_col_density_ratio"] = (
            float(col_n[act].mean() / col_n.mean()) if act.any() and col_n.mean() > 0 else 1.0
        )
        counts = np.diff(layer.ptr, axis=1)[:, :n_in]
        out["empty_slice_share"] = float((counts[:, act] == 0).mean()) if act.any() else 0.0
    return out


def fit_affinity(col_density: np.ndarray, act_density: float, target_ratio: float, *,
                 seeds: int = 8, hi: float = 20.0) -> float:
    """Affinity exponent that reproduces a measured ``act_col_density_ratio``.

    Bisection on the exponent beta: active inputs drawn with weights
    ``col_density ** beta`` (as :func:`make_activations` does with the
    multipliers), averaged over ``seeds`` draws.

    Parameters
    ----------
    col_density : numpy.ndarray, shape (n_in,)
        Measured per-column density of the real layer.
    act_density : float
    target_ratio : float
        Measured mean column density over active inputs / over all inputs.

    Returns
    -------
    float
        beta >= 0 (0 when the target is <= the uniform ratio).
    """
    cd = np.asarray(col_density, dtype=float)
    m = cd.mean()
    mult = np.maximum(cd / m, 1e-6)

    def ratio(beta):
        vals = []
        for s in range(seeds):
            a = make_activations(cd.size, act_density, mult, beta, seed=s)
            vals.append(cd[a != 0].mean() / m)
        return float(np.mean(vals))

    if ratio(0.0) >= target_ratio:
        return 0.0
    if ratio(hi) < target_ratio:
        return hi
    return bisect_increasing(ratio, target_ratio, 0.0, hi, 30)


def bisect_increasing(f, target: float, lo: float, hi: float, n_iter: int) -> float:
    """Where a non-decreasing function reaches ``target``, by ``n_iter`` bisection steps.

    The caller checks beforehand that the crossing lies in ``[lo, hi]``.

    Parameters
    ----------
    f : callable float -> float
        Non-decreasing in its argument (e.g. simulated time in µs against
        activation density).
    target : float
        Value to reach, in the units of ``f``.
    lo, hi : float
        Bracket of the argument.
    n_iter : int
        Number of halvings; the answer is within ``(hi - lo) / 2**(n_iter + 1)``.

    Returns
    -------
    float
        Midpoint of the final bracket ``[x, y]`` with ``f(x) < target <= f(y)``
        (``f`` is evaluated once per step).
    """
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
