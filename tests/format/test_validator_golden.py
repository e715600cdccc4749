"""The validator's findings on a seeded corpus are those recorded before the rules moved into one checker.

Issue 16 §1 moved every per-PE CSC and codebook rule into :mod:`eiesim.format.rules`, run by the
validator (collecting) and by construction/loading (raising). The expected values in
``data/validator_golden.json`` were recorded from the code before the move (main at bf52923, after
issue 9 added ``ENTRY-DECODES-TO-ZERO``): every code, severity, count, location and message of the
validator at both tiers, on 120 seeded random layouts with 0-3 random mutations each (a quarter with
a reference, mask and bias; a tenth with a centroid equal to 0.0), the one-rule cases of
``test_validate.py``, 20 bit-flipped dump directories (with and without ``n_out``), the real FC8
dump and the embedded LeNet container; plus the code with which ``CompressedLayer`` +
``check_format(full=True)`` refuses each layout.

One load outcome was changed on purpose: ``arrays-105-z-load`` was ``FILLER-MISSING`` and is now
``RELIDX-GLOBAL-ROWS``, the code the validator always gave that layout (its decoded rows all
satisfy row ≡ k (mod N) and run past their PE's slice).
"""

from __future__ import annotations

import json

import pytest

from .validator_corpus import GOLDEN, record


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def now() -> dict:
    return record()


def test_corpus_covers_the_rules(golden):
    codes = {f[0] for v in golden.values() if isinstance(v, list) for f in v[:-1]}
    assert {"PTR-SHORT", "PTR-LONG", "PTR-START-NONZERO", "PTR-SLACK", "PTR-OVERRUN", "PTR-DECREASING",
            "PTR-WIDTH", "CODE-RANGE", "RELIDX-Z-RANGE", "RELIDX-FILLER-NONCANONICAL", "FILLER-TRAILING",
            "FILLER-MISSING", "RELIDX-GLOBAL-ROWS", "CODEBOOK-UNUSED", "CODEBOOK-DUPLICATE", "CODEBOOK-SIZE",
            "CODEBOOK-ZERO-NOT-POSITIVE-ZERO", "FLOAT-NONFINITE", "META-INCONSISTENT",
            "EQUIV-DENSE-MISMATCH", "EQUIV-OUTSIDE-MASK", "ENTRY-DECODES-TO-ZERO"} <= codes


def test_validator_findings_unchanged(golden, now):
    missing_fc8 = {k for k in golden if k.startswith("fc8-")} - set(now)
    keys = [k for k in golden if not k.endswith("-load") and k not in missing_fc8]
    changed = [k for k in keys if now.get(k) != golden[k]]
    assert not changed, (changed[:5], [(golden[k], now.get(k)) for k in changed[:2]])


def test_load_outcomes_unchanged(golden, now):
    keys = [k for k in golden if k.endswith("-load")]
    assert len(keys) > 50
    changed = {k: (golden[k], now.get(k)) for k in keys if now.get(k) != golden[k]}
    assert not changed
