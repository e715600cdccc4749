"""Kernel tables compared field by field (tests of the per-layer pass's SSSE3 decode and split)."""

import numpy as np

FIELDS = ("ptr_t", "first_row", "last_row", "col_fillers", "col_entries", "mac_start", "macs")


def assert_same_tables(a, b):
    """Two ``build_tables`` results are equal: the code and entry, and every table's dtype and values."""
    assert a[1:] == b[1:]
    if a[0] is None:
        assert b[0] is None
        return
    for f in FIELDS:
        x, y = getattr(a[0], f), getattr(b[0], f)
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)
