"""Design-space exploration: sweep specs, point identity, a runner over any Executor, JSONL results.

A sweep is a loop over :func:`eiesim.sim.engine.simulate` and the energy
model, nothing more (DESIGN.md):

* :mod:`eiesim.explore.spec` -- the versioned TOML spec, validated key by
  key, expanded into resolved points with stable ids;
* :mod:`eiesim.explore.runner` -- one point (simulate + price), batches,
  :func:`run_sweep` over a ``concurrent.futures.Executor`` (process pool,
  Dask client, none) with append-and-flush JSON lines and resume.
"""

from .runner import (
    RESULT_VERSION,
    EieSweepError,
    SweepInterrupted,
    SweepSummary,
    default_batch_size,
    make_batches,
    read_results,
    resolve_workload,
    run_batch,
    run_point,
    run_sweep,
    table_identity,
)
from .spec import CONFIG_AXES, KNOB_AXES, SPEC_VERSION, Point, SweepSpec, load_spec, parse_spec, point_id

__all__ = [
    "RESULT_VERSION", "EieSweepError", "SweepInterrupted", "SweepSummary", "default_batch_size", "make_batches",
    "read_results", "resolve_workload", "run_batch", "run_point", "run_sweep", "table_identity",
    "CONFIG_AXES", "KNOB_AXES", "SPEC_VERSION", "Point", "SweepSpec", "load_spec", "parse_spec", "point_id",
]
