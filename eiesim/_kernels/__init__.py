"""Compiled Cython kernels (built from ``kernels/*.pyx`` by ``setup.py``), and the one helper
thread their callers hand half of a kernel's work to (:func:`helper_submit`)."""

from __future__ import annotations

import operator
import os

from ..errors import EieConfigError, EieError

#: The helper thread: [one-worker pool, its refusal-safe submit], made on first use and
#: forgotten in a forked child (whose copy has no thread behind it).
_HELPER: list = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HELPER.clear)
_CPUS: list = []  # the affinity mask's CPUs, computed once
_CAP: list = []  # limit_cpus's cap


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, at most the cap of
    :func:`limit_cpus`), computed once: the simulator's defaults (``simulate(threads=None)``, the
    per-layer pass, ``simulate_network(workers=None)``) use helper threads only when it is above 1.

    Returns
    -------
    int
        At least 1.
    """
    if not _CPUS:
        try:
            _CPUS.append(max(1, len(os.sched_getaffinity(0))))
        except AttributeError:  # pragma: no cover - macOS / Windows
            _CPUS.append(max(1, os.cpu_count() or 1))
    return min(_CPUS[0], _CAP[0]) if _CAP else _CPUS[0]


def limit_cpus(n) -> None:
    """Set this process's cap on :func:`usable_cpus` to ``n``: a pool worker's share of the CPUs.

    :func:`usable_cpus` then returns the smaller of the affinity mask's CPUs and ``n`` (a later
    call replaces the cap, higher or lower). A sweep's worker processes call it, so ``jobs``
    workers on ``jobs`` CPUs do not each add helper threads on large layers (results are the
    same with or without them).

    Parameters
    ----------
    n : int or None
        At least 1 (any integer type); None removes the cap.

    Raises
    ------
    ValueError
        ``n`` is not None or an integer >= 1 (bool included).
    """
    if n is None:
        _CAP.clear()
        return
    k = _integer(n)
    if k is None or k < 1:
        raise ValueError(f"limit_cpus: n must be an integer >= 1 or None, got {n!r}")
    _CAP[:] = [k]


def _integer(x):
    """``x`` as a Python int when it is of an integer type (a NumPy integer too), but not a bool; else None."""
    if isinstance(x, bool):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def check_threads(threads, who: str):
    """A ``threads`` argument as None, 1 or 2 (``simulate``, ``kernel_tables``), else refused.

    Parameters
    ----------
    threads : None or int
        Any integer type (``operator.index``: a NumPy integer too), but not a bool.
    who : str
        The caller, first in the message.

    Returns
    -------
    None or int
        ``threads`` as a Python int (or None).

    Raises
    ------
    EieConfigError
        ``threads`` is not None, 1 or 2 (a bool, a float or a string is refused).
    """
    if threads is None:
        return None
    k = _integer(threads)
    if k not in (1, 2):
        raise EieConfigError(f"{who}: threads must be None, 1 or 2, got {threads!r}")
    return k


def _run_here(fn):
    """A ``submit`` that takes no job: the caller runs ``fn`` itself."""
    return None


def helper_submit():
    """``submit`` of the one-thread pool that runs half of a kernel's work beside the caller.

    Used by the simulator's timing pass (``run_one(submit=...)``) and the per-layer pass
    (``build_tables(submit=...)``); both release the GIL and keep their buffers alive
    until the helper is done with them.

    Returns
    -------
    callable
        ``submit(fn)``: the pool's future of ``fn()``, or None when the pool refuses new
        jobs (it is shut down, or cannot be made: interpreter exit, e.g. a call from an
        ``atexit`` handler); the kernels then run ``fn`` on the calling thread. The pool is
        made on first use (``concurrent.futures.ThreadPoolExecutor``).
    """
    if not _HELPER:
        try:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eiesim-helper")
        except RuntimeError:  # interpreter exit: concurrent.futures cannot even be imported now
            return _run_here

        def submit(fn):
            try:
                return pool.submit(fn)
            except RuntimeError:  # shut down: the caller runs fn itself
                return None

        _HELPER.append(pool)
        _HELPER.append(submit)
    return _HELPER[1]


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
