"""Compiled Cython kernels (built from ``kernels/*.pyx`` by ``setup.py``)."""

from __future__ import annotations

import os

from ..errors import EieError


def missing_kernel_error(name: str, fallback: str, cause) -> EieError:
    """The error raised when a compiled kernel cannot be imported.

    Parameters
    ----------
    name : str
        Kernel module name (``"eie_sim"``, ``"huffman_dec"``).
    fallback : str
        The pure-Python twin to name, as the caller's keyword (``"backend='reference'"``).
    cause : object
        The import failure, quoted at the end of the message.

    Returns
    -------
    eiesim.errors.EieError
        Says where the package was imported from and how to build or avoid the kernel.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return EieError(
        f"the compiled kernel eiesim._kernels.{name} is missing from {here}; if that is a "
        "source checkout shadowing the installed package (e.g. `python -m pytest` run in the "
        "repository), run from another folder or build in place with `pip install -e .`; "
        f"or use {fallback} ({cause})"
    )
