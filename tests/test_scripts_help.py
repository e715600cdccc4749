"""Every study script in ``scripts/`` imports and parses ``--help``.

A moved library name (``eiesim.cli.check_output_args`` became
``eiesim.commands._args.check_output_args``) once broke
``scripts/study_balanced_pruning.py`` at import while every test stayed green.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))


def test_scripts_found():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
    assert "Traceback" not in proc.stderr
