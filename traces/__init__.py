"""Embedded real workloads (installed as ``eiesim.traces``); see README.md here for provenance."""
