"""Energy: price the simulator's action counters (Timeloop/Accelergy style).

* :mod:`eiesim.energy.tables` -- energy per action, each entry with its unit and source
  (Horowitz 45 nm, EIE Table II); loadable from TOML.
* :mod:`eiesim.energy.model` -- energy of a run by two methods, never mixed: activity-based
  (calibrated on EIE Table II at the real FC8 run) and the paper's chip power x time;
  breakdowns by module and kind; SRAM/DRAM what-ifs.
* :mod:`eiesim.energy.baselines` -- CPU/GPU/mGPU times (published, modelled, measured on this host).
* :mod:`eiesim.energy.host_cpu` -- a CPU baseline measured here: dense (BLAS) and CSR ``W @ X`` at any
  batch, interleaved medians, host/BLAS facts, energy from RAPL or a declared power with its source.
"""
