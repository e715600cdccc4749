"""Shared pytest fixtures and constants: paths to the authors' real files in ``../shared/data``, the
16-entry test codebook and the CLI runner (imported by the test modules: ``from ..conftest import CB16``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from eiesim.cli import main as _cli_main

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EIESIM_SHARED_DATA", REPO.parent / "shared" / "data"))
FC8_DIR = SHARED_DATA / "alexnet_fc8_eie"
SQUEEZENET_DIR = SHARED_DATA / "squeezenet_dc"
TRACES = REPO / "traces"

#: A 16-entry (4-bit) codebook: +0.0 then +-0.125 * i, all values distinct and exact in float32.
CB16 = np.array([0.0] + [(-1) ** i * 0.125 * i for i in range(1, 16)], dtype=np.float32)
CB16.setflags(write=False)


def run_cli(capsys, *argv):
    """Run ``eiesim argv`` in-process; returns ``(exit code, stdout, stderr)``.

    Arguments are passed as strings (paths welcome); argparse usage errors (``SystemExit``) are
    returned like any other exit code.
    """
    try:
        code = _cli_main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


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
