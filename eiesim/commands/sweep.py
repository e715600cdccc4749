"""``eiesim sweep``: run a design-space sweep spec, one JSON line per finished point."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

from ._args import int_range
from ..errors import EieInputError


def add_parser(sub) -> None:
    """Register the ``sweep`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "sweep",
        help="run a design-space sweep (TOML spec -> JSON lines)",
        description="Run every point of a sweep spec (workloads x axes over EIEConfig fields and "
        "compression knobs; docs/sweep.md) and append one JSON line per finished point to --out. "
        "--resume skips the points already there (a killed run loses no finished point).",
    )
    s.add_argument("spec", metavar="SPEC.toml")
    s.add_argument("--out", metavar="RESULTS.jsonl", required=True, help="results file (JSON lines)")
    s.add_argument("--jobs", type=int_range(1, 1024), default=1, metavar="N",
                   help="local worker processes (default 1: run here, in order)")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask distributed scheduler (tcp://HOST:PORT); needs "
                   "pip install 'eiesim[dask]'")
    s.add_argument("--batch", type=int_range(1, 100_000), metavar="K",
                   help="points per task (default: about 4 tasks per worker, at least 8 points)")
    s.add_argument("--resume", action="store_true", help="finish an existing results file")
    s.set_defaults(func=run)


def _dask_executor(address: str):
    try:
        from dask.distributed import Client
    except ImportError:
        raise EieInputError("--scheduler needs Dask distributed: pip install 'eiesim[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise EieInputError(f"--scheduler {address}: cannot connect ({exc})") from None
    workers = max(1, sum(client.nthreads().values()))
    return client, client.get_executor(), workers


@contextlib.contextmanager
def _ctrl_c_as_flag(active: bool):
    """While ``active`` (tasks on an executor) and on the main thread: SIGINT only sets a flag, which
    :func:`~eiesim.explore.run_sweep` polls (its ``stop``). A ``KeyboardInterrupt`` raised inside the
    executor's code could leave a process pool unable to shut down: the sweep then hung at exit
    (fresh-user finding), and a second Ctrl-C during the shutdown printed tracebacks at exit (second
    fresh-user finding), so every Ctrl-C until the pool is shut down only sets the flag: stopping
    takes well under a second. Yields ``stop`` (a callable) or None."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield None
        return
    hit = threading.Event()

    def on_sigint(signum, frame):
        hit.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield hit.is_set
    finally:
        if previous is not None:  # None: a handler not installed from Python, nothing to restore
            signal.signal(signal.SIGINT, previous)


def run(args) -> int:
    """Execute ``eiesim sweep``; returns the exit code.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (see :func:`add_parser`).

    Returns
    -------
    int
        0 when every point of the spec is in the results file; 130 after Ctrl-C with ``--jobs`` or
        ``--scheduler`` (the queued tasks cancelled, the pool's workers stopped, the points written
        so far kept: ``--resume`` finishes the rest).

    Raises
    ------
    EieError
        A bad spec (``EieConfigError`` naming the key), an unusable output or
        scheduler (``EieInputError``), a failing point or a dead worker
        (the points written so far stay; ``--resume`` finishes the rest).
    """
    from ..explore import load_spec, resolve_workload, run_sweep
    from ._paths import check_command_outputs

    if args.jobs > 1 and args.scheduler:
        raise EieInputError("--jobs and --scheduler exclude each other (the scheduler's workers do the work)")
    check_command_outputs([("--out", args.out)], [("SPEC.toml", args.spec)])
    spec = load_spec(args.spec, resolve_workload=resolve_workload)
    if os.path.exists(args.out) and os.path.getsize(args.out) > 0 and not args.resume:
        raise EieInputError(f"--out {args.out}: exists and is not empty; give --resume to finish it, or another file")

    tty = sys.stderr.isatty()
    bar = None
    if tty:
        from tqdm import tqdm

        bar = tqdm(total=len(spec.points), desc=f"sweep {spec.name}", unit="point", file=sys.stderr)

    def on_point(doc):
        if bar is not None:
            bar.update(1)

    from ..explore.runner import SweepInterrupted, stop_local_pool

    client = None
    executor = None
    workers = 1
    t0 = time.perf_counter()
    # with an executor, Ctrl-C only sets a flag from before the pool exists until after it is shut down
    with _ctrl_c_as_flag(bool(args.scheduler) or args.jobs > 1) as stop:
        try:
            if args.scheduler:
                client, executor, workers = _dask_executor(args.scheduler)
            elif args.jobs > 1:
                from ..explore.runner import local_pool

                executor, workers = local_pool(args.jobs), args.jobs
            if bar is not None:
                from ..explore import read_results

                if args.resume and os.path.exists(args.out):
                    ids = {p.id for p in spec.points}
                    bar.update(len({r["point"] for r in read_results(args.out)[0]} & ids))
            summary = run_sweep(spec, args.out, executor=executor, workers=workers, batch_size=args.batch,
                                resume=args.resume, on_point=on_point, stop=stop)
        except SweepInterrupted as exc:
            if executor is not None and client is None:  # our own pool: its workers ignore SIGINT
                stop_local_pool(executor)
            if bar is not None:
                bar.close()
                bar = None
            print(f"eiesim: {exc}", file=sys.stderr)
            return 130
        finally:
            if bar is not None:
                bar.close()
            if executor is not None:
                executor.shutdown(wait=True)  # run_sweep has cancelled what had not started
            if client is not None:
                client.close()
    # a Ctrl-C after the last point was written: every point is in the file, the sweep is done
    dt = time.perf_counter() - t0
    rate = summary.run / dt if dt > 0 else 0.0
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else (
        f"{args.jobs} processes" if args.jobs > 1 else "this process")
    print(f"sweep {spec.name}: {summary.total} points, {summary.skipped} already in {args.out}, "
          f"{summary.run} run in {dt:.1f} s ({rate:.1f} points/s; {summary.tasks} tasks of up to "
          f"{summary.batch_size} points on {where})")
    return 0
