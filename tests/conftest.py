"""Shared pytest fixtures: paths to the authors' real files in ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EIESIM_SHARED_DATA", REPO.parent / "shared" / "data"))
FC8_DIR = SHARED_DATA / "alexnet_fc8_eie"
SQUEEZENET_DIR = SHARED_DATA / "squeezenet_dc"
TRACES = REPO / "traces"


@pytest.fixture(scope="session")
def fc8_dir() -> Path:
    """The authors' AlexNet FC8 dump laid out for 64 PEs (skips when absent)."""
    if not (FC8_DIR / "arithm.dat").is_file():
        pytest.skip(f"real fixture not present: {FC8_DIR} (set EIESIM_SHARED_DATA to the folder holding it)")
    return FC8_DIR


@pytest.fixture(scope="session")
def squeezenet_dir() -> Path:
    """The Deep Compression SqueezeNet `.net` stream (skips when absent)."""
    if not (SQUEEZENET_DIR / "compressed_SqueezeNet.net").is_file():
        pytest.skip(f"real fixture not present: {SQUEEZENET_DIR} (set EIESIM_SHARED_DATA to the folder holding it)")
    return SQUEEZENET_DIR


# Tests write only to temporary directories: no example database in the checkout.
try:
    from hypothesis import settings as _hsettings

    _hsettings.register_profile("eiesim", database=None)
    _hsettings.load_profile("eiesim")
except ImportError:  # pragma: no cover
    pass
