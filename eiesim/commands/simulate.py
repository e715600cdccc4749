"""``eiesim simulate``: run a compressed network or one dumped layer on the simulated EIE."""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings

import numpy as np

from .. import __version__
from .._io import (
    load_npz_members,
    parse_npy,
    read_regular_file,
    require_regular_file,
    write_atomic,
)
from ._args import add_csv_option, add_json_option, dim_int, int_range, jobs_arg
from ..config import ARITH_MODES, MAX_N_PE, EIEConfig
from ..errors import EieConfigError, EieInputError
from ._paths import check_command_outputs

DEFAULT_NETWORK = "lenet300100.eie"
DEFAULT_INPUTS = "mnist_test100.npz"
#: File name endings read as little-endian float32 raw (the authors' ``act.dat``).
RAW_INPUT_SUFFIXES = (".dat", ".bin", ".raw", ".f32")


def _trace_path(name: str) -> str:
    """Path of an embedded trace file (installed as ``eiesim.traces``; ``traces/`` in a source tree).

    The package's folder when it has one (an installed wheel, an editable install), found without
    importing :mod:`importlib.resources` (~6 ms of every default run, issue 11); else that module.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("eiesim.traces")
    except ModuleNotFoundError:
        spec = None
    for folder in (spec.submodule_search_locations or ()) if spec is not None else ():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    from importlib import resources

    try:
        return str(resources.files("eiesim.traces") / name)
    except ModuleNotFoundError:  # running from a source checkout that is not installed
        return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "traces", name)


def add_parser(sub) -> None:
    """Register the ``simulate`` subcommand on an argparse subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``eiesim`` parser's subparsers object (from
        :func:`eiesim.cli.build_parser`); the new subparser sets
        ``func=run``.
    """
    s = sub.add_parser(
        "simulate",
        help="simulate a compressed network or layer",
        description="Simulate a compressed network (default: the embedded LeNet-300-100 on 100 real "
        "MNIST test digits) or one layer from the authors' simulator dump directory.",
    )
    src = s.add_mutually_exclusive_group()
    src.add_argument("--network", metavar="PATH", help=".eie container (default: embedded LeNet-300-100)")
    src.add_argument("--eie-dump", metavar="DIR", help="authors' simulator dump directory (ptr/, spm/, arithm.dat)")
    src.add_argument("--workload", metavar="NAME",
                     help="a registered real workload (list: 'eiesim workloads'), e.g. silero-vad-lstm")
    s.add_argument("--inputs", type=int_range(1, 1_000_000), metavar="K",
                   help="--workload: real inputs to run (digits, recordings, sentences; default 4)")
    s.add_argument("--n-out", type=dim_int, metavar="ROWS",
                   help="outputs of a dumped layer, 1..2**28 as a .eie container allows (a dump does not "
                   "store it; default: inferred from the largest decoded row)")
    s.add_argument(
        "--input",
        metavar="FILE",
        help="input activations: float32 raw (.dat), .npy of shape (n_in,) or (n, n_in), "
        "or .npz with 'inputs' (and optional 'labels'); default: the embedded digits, or act.dat of a dump",
    )
    s.add_argument("--config", metavar="FILE", help="EIE configuration (.toml or .json); flags override it")
    s.add_argument("--n-pe", type=int_range(1, MAX_N_PE), metavar="N",
                   help=f"processing elements, 1..{MAX_N_PE}; a network or dump laid out for another N is "
                   "re-interleaved (exact: codes kept, relative indices and fillers re-encoded)")
    s.add_argument("--fifo-depth", type=int, metavar="D", help="activations one queue holds")
    s.add_argument("--line-bits", type=int, metavar="B", help="spmat SRAM line width in bits")
    s.add_argument("--clock-hz", type=float, metavar="F", help="clock frequency in Hz")
    s.add_argument("--arith", choices=ARITH_MODES, help="datapath arithmetic")
    s.add_argument("--backend", choices=("kernel", "reference"), default="kernel",
                   help="compiled kernel (default) or the pure-Python reference model")
    s.add_argument("--jobs", type=jobs_arg, default=None, metavar="N|auto",
                   help="threads simulating chunks of 1,024 inputs at once, 1..1024 or auto (the default: one "
                   "per CPU this process may use); results are identical for every N")
    add_json_option(s, "results")
    add_csv_option(s, "the per-layer table")
    s.add_argument("--energy", action="store_true",
                   help="add the energy of the run (activity-based and chip power x time) to the report and JSON")
    s.add_argument("--energy-table", metavar="FILE.toml",
                   help="energy table overriding the default entry by entry (implies --energy)")
    s.add_argument("--save-output", metavar="OUT.npy", help="save the last layer's outputs")
    t = s.add_argument_group("cycle traces (docs/traces.md)")
    t.add_argument("--trace", metavar="OUT.vcd|OUT.json",
                   help="write a cycle trace of one layer and input: .vcd (GTKWave) or .json (Chrome "
                   "trace-event format: ui.perfetto.dev, chrome://tracing)")
    t.add_argument("--trace-window", metavar="START:END", help="cycles to trace, END exclusive (default: all)")
    t.add_argument("--trace-pes", metavar="LIST", help="PEs to trace, e.g. 0-7,12 (default: all)")
    t.add_argument("--trace-input", type=int, default=0, metavar="K", help="input to trace, 0-based (default 0)")
    t.add_argument("--trace-layer", metavar="NAME",
                   help="layer to trace, by name or 0-based index (default: the first)")
    s.set_defaults(func=run)


# --------------------------------------------------------------------------- inputs
#: Largest input file read (bytes); protects against devices and absurd files.
MAX_INPUT_BYTES = 1 << 30


def _load_inputs(path: str, n_in: int, n_out: int):
    """Return (inputs (n, n_in) float32, labels or None, extra dict) from a .dat/.npy/.npz file."""
    extra = {}
    labels = None
    low = path.lower()
    if low.endswith(".npz"):
        keys = ("inputs", "labels", "float_logits", "pruned_quantized_logits")
        arrays = load_npz_members(path, keys, MAX_INPUT_BYTES, error=EieInputError)
        if "inputs" not in arrays:
            raise EieInputError(f"{path}: .npz has no 'inputs' array (has {arrays['__files__']})")
        x = arrays["inputs"]
        labels = arrays.get("labels")
        extra = {k: arrays[k] for k in keys[2:] if k in arrays}
    elif low.endswith(".npy"):
        x = parse_npy(read_regular_file(path, MAX_INPUT_BYTES, error=EieInputError, what=".npy file"),
                      path, error=EieInputError)
    elif low.endswith(RAW_INPUT_SUFFIXES):
        raw = read_regular_file(path, MAX_INPUT_BYTES, error=EieInputError, what="float32 .dat file")
        if len(raw) % 4:
            raise EieInputError(f"{path}: {len(raw)} bytes is not a whole number of float32 values")
        x = np.frombuffer(raw, dtype="<f4")
    else:  # a .txt or .json of the right size was once simulated as float32 garbage
        require_regular_file(path, error=EieInputError, what="input file")  # a missing file / loop says so first
        raise EieInputError(f"{path}: unknown input file type; give float32 raw ({', '.join(RAW_INPUT_SUFFIXES)}), "
                            ".npy or .npz")
    if x.dtype.kind not in "biuf":
        raise EieInputError(f"{path}: input activations must be numeric, got dtype {x.dtype}")
    if x.ndim == 1:
        if x.shape[0] == n_in:
            x = x[None, :]
        elif n_in and x.shape[0] and x.shape[0] % n_in == 0 and not low.endswith((".npy", ".npz")):
            x = x.reshape(-1, n_in)
        else:
            raise EieInputError(f"{path}: {x.shape[0]} input values, the first layer has {n_in} inputs")
    if x.ndim != 2 or x.shape[1] != n_in:
        raise EieInputError(f"{path}: inputs of shape {x.shape}, expected (n, {n_in})")
    if x.shape[0] == 0:
        raise EieInputError(f"{path}: holds no input vector")
    with np.errstate(over="ignore", invalid="ignore"):  # float32 already (an .npz's digits): no copy
        x32 = x.astype(np.float32, copy=False)
    # min and max are finite only when every value is (a NaN propagates): two passes, no
    # one-byte-per-value temporary (7.8 MB of fresh pages for 10,000 digits, issue 11)
    if not (np.isfinite(x32.min()) and np.isfinite(x32.max())):
        r, c = (int(i[0]) for i in np.nonzero(~np.isfinite(x32)))
        raise EieInputError(
            f"{path}: input {r}, activation {c} = {x[r, c].item()!r} is not a finite float32"
        )
    if labels is not None:
        if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
            raise EieInputError(
                f"{path}: 'labels' must be integers of shape ({x.shape[0]},), got {labels.dtype} {labels.shape}"
            )
        bad = np.flatnonzero((labels < 0) | (labels >= n_out))
        if bad.size:
            i = int(bad[0])
            raise EieInputError(
                f"{path}: 'labels' must be integers in 0..{n_out - 1} (the network's outputs); labels[{i}] is "
                f"{labels[i].item()} ({bad.size} out of range)"
            )
    for key, arr in extra.items():
        if arr.shape != (x.shape[0], n_out) or arr.dtype.kind != "f":
            raise EieInputError(
                f"{path}: {key!r} must be floats of shape ({x.shape[0]}, {n_out}), got {arr.dtype} {arr.shape}"
            )
    return x32, labels, extra


def _build_config(args, network, source: str) -> EIEConfig:
    """Defaults adapted to the first layer (N, code/index widths), then the config file, then flags.

    A flag wins over the layer and the file: ``--n-pe`` is applied before the
    configuration is checked, so a network laid out for an N the simulator
    does not take (over :data:`~eiesim.config.MAX_N_PE`) runs re-interleaved.
    The layers' code and index widths are checked against the result here,
    and a mismatch names the config file (or the network) and the field.
    """
    first = network.layers[0]
    if args.config is not None:
        cfg = EIEConfig.load(args.config)
    else:
        n_pe = args.n_pe
        if n_pe is None and first.n_pe > MAX_N_PE:
            raise EieInputError(f"{source}: layer {first.name!r} is laid out over {first.n_pe} PEs, more than "
                                f"the simulator's {MAX_N_PE}; give --n-pe N to re-interleave it")
        cfg = EIEConfig.for_layer(first, n_pe=n_pe)
    cfg = cfg.replace(
        n_pe=args.n_pe,
        fifo_depth=args.fifo_depth,
        spmat_line_bits=args.line_bits,
        clock_hz=args.clock_hz,
        arith=args.arith,
    )
    from ..sim.network import check_network_config

    try:  # a layer of another N is re-interleaved by the caller; the widths must match
        check_network_config(network, cfg, n_pe=False)
    except EieConfigError as exc:
        raise EieConfigError(f"{args.config if args.config is not None else source}: {exc}") from None
    return cfg


def _redundancy_warnings(path, report) -> list:
    """Warnings, naming the rule, for the errors the full validator finds in a container that loaded.

    The loader reads ``v``/``z`` (else the packed image, else the Huffman
    streams) and checks what simulating needs; the redundant parts it does not
    use (declared counts, a packed image or Huffman streams beside ``v``/``z``)
    are compared by the full validator, in O(entries), so a file ``eiesim validate`` rejects is
    never simulated silently (issue 10). ``report`` is that validator's report of the same parse
    (:func:`eiesim.format.validate.load_network_validated`: the file is read once, issue 11).
    """
    return [f"warning: {path}: {f} -- eiesim validate rejects this file; simulated from the arrays as loaded"
            for f in report.findings if f.severity == "error"]


def _relayout(network, n_pe: int):
    """Re-interleave every layer over ``n_pe`` PEs (exact: codes are kept; memory O(entries))."""
    from ..format.network import Network

    layers = tuple(layer.relayout(n_pe) for layer in network.layers)
    return Network(layers, activation=network.activation, metadata=network.metadata, kinds=network.kinds)


# --------------------------------------------------------------------------- simulate
def _next_steps(args) -> str:
    """One line for a newcomer: the flags and commands this run did not use yet ("" when none is left)."""
    import importlib.util

    tips = []
    if not (args.energy or args.energy_table):
        tips.append("--energy (energy per input, by module)")
    if not args.eie_dump:
        tips.append("--eie-dump DIR (a layer of the authors' simulator, e.g. the real AlexNet FC8)")
    if importlib.util.find_spec("eiesim.commands.sweep") is not None:
        tips.append("'eiesim sweep' (vary a hardware knob)")
    return "try next: " + "; ".join(tips) if tips else ""



@dataclasses.dataclass
class SimulateRun:
    """What ``eiesim simulate`` computed; :func:`_render` prints it, :func:`_write_outputs` saves it.

    Attributes
    ----------
    source : str
        What ran, as the first line and the JSON name it (``dump DIR``, ``workload NAME``, a path).
    n_inputs : int
        Input vectors (digits, recordings, ...) simulated.
    cfg : EIEConfig
    result : eiesim.sim.network.NetworkResult or eiesim.workloads.run.WorkloadRun
        The simulation (a workload's run sums every M x V of each layer).
    notes : list of str
        Lines printed under the configuration (inferred sizes, ``warning:`` lines).
    doc : dict
        The ``--json`` document.
    priced : list of dict or None
        :func:`eiesim.energy.model.price_run` per layer (``--energy``), with ``table_name``.
    accuracy : dict
        Top-1 accuracies (fractions) when the inputs carry labels.
    network, x : Network and numpy.ndarray (n_inputs, n_in) float32, or None
        What ran (a network, not a workload): for ``--trace`` and ``--save-output``.
    """

    source: str
    n_inputs: int
    cfg: EIEConfig
    result: object
    notes: list
    doc: dict
    priced: list = None
    table_name: str = ""
    accuracy: dict = dataclasses.field(default_factory=dict)
    network: object = None
    x: np.ndarray = None

    @property
    def is_workload(self) -> bool:
        """True for ``--workload`` (a run of a registered real workload)."""
        return self.network is None


def _energy_table(args):
    """The energy table of ``--energy`` / ``--energy-table`` (None without), read before simulating."""
    if not (args.energy or args.energy_table):
        return None
    from ..energy.tables import DEFAULT_TABLE, load_table

    return load_table(args.energy_table) if args.energy_table else DEFAULT_TABLE


def _price(run: SimulateRun, table, layers) -> None:
    """Price every layer with ``table`` (``--energy``) into ``run`` and its JSON document."""
    if table is None:
        return
    from ..energy.model import RunActivity, price_run

    run.priced = [price_run(RunActivity.from_result(l, run.cfg), table) for l in layers]
    run.table_name = table.name
    run.doc["energy"] = {"table": table.name, "layers": run.priced}


def _simulate_quietly(fn, notes: list, every: bool = True):
    """``fn()`` with a fixed16 saturation or float32 overflow warning turned into a ``warning:`` note.

    Never silent (issue 9). ``every``: one note per warning (a network), else the first and how many
    more (a workload's many runs); other warnings pass on.
    """
    from ..sim.result import FixedPointSaturationWarning, Float32OverflowWarning

    kinds = (FixedPointSaturationWarning, Float32OverflowWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    said = [str(w.message) for w in caught if issubclass(w.category, kinds)]
    if every:
        notes += [f"warning: {m}" for m in said]
        for w in caught:
            if not issubclass(w.category, kinds):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    elif said:
        more = f" (and {len(said) - 1:,} more such warnings over the workload's runs)" if len(said) > 1 else ""
        notes.append(f"warning: {said[0]}{more}")
    return out


def _execute_workload(args) -> SimulateRun:
    """``eiesim simulate --workload NAME``: load, simulate and score a registered real workload."""
    from ..format.network import Network
    from ..workloads.registry import get_spec, load
    from ..workloads.run import run_workload

    for flag, what, why in (("input", "--input", "the workload brings its own inputs"),
                            ("n_out", "--n-out", "the workload brings its own network"),
                            ("save_output", "--save-output", "a workload's results are its scores: use --json")):
        if getattr(args, flag, None) is not None:
            raise EieInputError(f"{what} does not apply to --workload ({why})")
    spec = get_spec(args.workload)  # unknown name: one line listing the registered ones
    table = _energy_table(args)
    if args.config is not None:  # a bad config file stops the run before the workload is loaded
        EIEConfig.load(args.config)
    wl = load(spec.name, args.inputs if args.inputs is not None else 4, 0)
    cfg = _build_config(args, Network(wl.layers[:1], activation="none", kinds=wl.kinds[:1]), f"workload {wl.name}")
    warn: list = []
    res = _simulate_quietly(lambda: run_workload(wl, cfg, backend=args.backend), warn, every=False)
    if warn:  # before the report, on stderr
        print(warn[0], file=sys.stderr)
    comp = wl.metadata.get("compression", {})
    notes = [f"compression: {comp.get('method', '?')}, retrained: {comp.get('retrained', '?')}"] if comp else []
    doc = {"eiesim_version": __version__, "source": f"workload {wl.name}", "n_inputs": int(wl.n_inputs),
           "config": cfg.to_dict(), **res.to_dict()}
    run = SimulateRun(f"workload {wl.name}", int(wl.n_inputs), cfg, res, notes, doc)
    _price(run, table, res.layers)
    return run


def _check_args(args) -> None:
    """Refuse empty paths, unwritable outputs and flags that do not fit, before any work."""
    for flag in ("network", "eie_dump", "input", "config", "json", "csv", "save_output", "energy_table", "trace"):
        if getattr(args, flag, None) == "":
            raise EieInputError(f"--{flag.replace('_', '-')}: empty path")
    # fail before simulating, not after; never write over an input
    default_net = args.network is None and args.eie_dump is None
    check_command_outputs(
        [("--json", args.json), ("--csv", args.csv), ("--save-output", args.save_output), ("--trace", args.trace)],
        [("--network", args.network if not default_net else _trace_path(DEFAULT_NETWORK)),
         ("--eie-dump", args.eie_dump),
         ("--input", args.input if args.input is not None or not default_net else _trace_path(DEFAULT_INPUTS)),
         ("--config", args.config), ("--energy-table", args.energy_table)],
    )
    if args.workload is not None:
        return
    if args.inputs is not None:
        raise EieInputError("--inputs applies to --workload only")
    if args.n_out is not None and args.eie_dump is None:
        raise EieInputError("--n-out applies to --eie-dump only (a .eie container stores its shapes)")


def _load(args, notes: list):
    """``(network, source, x, labels, extra)`` of a dump (``--eie-dump``) or a container (or the default)."""
    from ..format.network import Network

    if args.eie_dump is None:
        from ..format.validate import load_network_validated

        net_path = args.network if args.network is not None else _trace_path(DEFAULT_NETWORK)
        network, report = load_network_validated(net_path)
        notes.extend(_redundancy_warnings(net_path, report))
        in_path = args.input if args.input is not None else (
            None if args.network is not None else _trace_path(DEFAULT_INPUTS))
        if in_path is None:
            raise EieInputError("--network needs --input FILE (the network's input activations)")
        return (network, args.network or "embedded LeNet-300-100 (traces/)",
                *_load_inputs(in_path, network.n_in, network.n_out))
    from ..format.eiedump import read_dump

    dump = read_dump(args.eie_dump, n_out=args.n_out)  # --n-pe: re-interleaved below, exactly
    if dump.n_out_inferred:
        notes.append(f"n_out = {dump.layer.n_out} inferred from the largest decoded row (a dump does not "
                     "store it; trailing all-zero rows cannot be seen): give --n-out ROWS to set it")
    notes += [f"warning: {w}" for w in dump.warnings]
    network = Network((dump.layer,), activation="none", metadata={"source": args.eie_dump})
    source = f"dump {args.eie_dump}"
    if args.input is not None:
        return (network, source, *_load_inputs(args.input, network.n_in, network.n_out))
    if dump.activations is None:
        raise EieInputError(f"{args.eie_dump}: no act.dat; give --input FILE")
    notes.append(f"input: {os.path.join(args.eie_dump, 'act.dat')}")
    return network, source, dump.activations[None, :], None, {}


def _check_trace(args, network, n_inputs: int, n_pe: int) -> None:
    """Every ``--trace*`` option, checked before simulating."""
    if args.trace is None:
        if any(v is not None for v in (args.trace_window, args.trace_pes, args.trace_layer)) or args.trace_input:
            raise EieInputError("--trace-window/--trace-pes/--trace-input/--trace-layer need --trace OUT")
        return
    from ..sim.trace import TRACE_FORMATS, check_trace_target, parse_pes, parse_window

    if not args.trace.lower().endswith(tuple(TRACE_FORMATS)):
        raise EieInputError(f"--trace {args.trace}: the suffix must be one of {', '.join(TRACE_FORMATS)}")
    check_trace_target([l.name or f"layer{k}" for k, l in enumerate(network.layers)], n_inputs,
                       args.trace_layer, args.trace_input)
    parse_pes(args.trace_pes, n_pe)
    if args.trace_window is not None:
        parse_window(args.trace_window, 1 << 62)


def _accuracy(outputs: np.ndarray, labels, extra: dict) -> dict:
    """Top-1 accuracies (fractions) of the simulation and of the logits the input file carries."""
    if labels is None:
        return {}
    acc = {"simulated": float(np.mean(outputs.argmax(axis=1) == labels))}
    for key, name in (("float_logits", "float_model"), ("pruned_quantized_logits", "compressed_model_numpy")):
        if key in extra:
            acc[name] = float(np.mean(extra[key].argmax(axis=1) == labels))
    return acc


def _execute(args) -> SimulateRun:
    """Check the arguments, load, simulate (and price); nothing printed but progress and warnings."""
    from ..sim.capacity import sram_footprint
    from ..sim.network import simulate_network

    _check_args(args)
    if args.workload is not None:
        return _execute_workload(args)
    table = _energy_table(args)  # read before simulating: a bad table stops the run before it starts
    notes: list = []
    network, source, x, labels, extra = _load(args, notes)
    cfg = _build_config(args, network, source)
    _check_trace(args, network, x.shape[0], cfg.n_pe)
    if any(l.n_pe != cfg.n_pe for l in network.layers):
        network = _relayout(network, cfg.n_pe)
        notes.append(f"layers re-interleaved over {cfg.n_pe} PE{'s' if cfg.n_pe != 1 else ''}")
    footprints = [sram_footprint(l, cfg) for l in network.layers]
    notes += [f"warning: layer {fp.name!r} does not fit on chip ({problem}); simulated as if it did"
              for fp in footprints for problem in fp.problems()]
    bar = sys.stderr.isatty()  # a progress bar on a terminal only: redirected stderr holds one-line messages
    result = _simulate_quietly(lambda: simulate_network(network, x, cfg, backend=args.backend, progress=bar,
                                                        workers=args.jobs),
                               notes)
    n = int(x.shape[0])
    doc = {"eiesim_version": __version__, "source": source, "n_inputs": n, "config": cfg.to_dict(),
           **result.to_dict(), "sram": [fp.to_dict() for fp in footprints]}
    run = SimulateRun(source, n, cfg, result, notes, doc, accuracy=_accuracy(result.outputs, labels, extra),
                      network=network, x=x)
    if run.accuracy:
        doc["accuracy"] = run.accuracy
    _price(run, table, result.layers)
    return run


def _table(run: SimulateRun):
    """The per-layer table printed and written with ``--csv``."""
    from ..report.summaries import network_table, workload_table

    return workload_table(run.result) if run.is_workload else network_table(run.result, run.n_inputs, run.cfg.n_pe)


def _render(run: SimulateRun, args) -> None:
    """Print the report of a run: configuration, notes, the layer table, energy, accuracy, a hint."""
    from ..report.summaries import lstm_lines

    n, cfg = run.n_inputs, run.cfg
    print(f"eiesim {__version__}: {run.source}, {n} input{'s' if n != 1 else ''}")
    print(f"EIE: {cfg.n_pe} PE{'s' if cfg.n_pe != 1 else ''}, queue depth {cfg.fifo_depth}, {cfg.spmat_line_bits}-bit spmat lines, "
          f"{cfg.clock_hz / 1e6:g} MHz, {cfg.arith}, backend {args.backend}")
    for note in run.notes:
        print(note)
    print()
    print(_table(run).text())
    for line in lstm_lines(run.result.layers, **({"sequences": n} if run.is_workload else {"steps": n})):
        print(f"\n{line}")
    if run.is_workload:
        q = run.result.quality
        print(f"\nquality ({q['metric']}): compressed as simulated {q['compressed']:.4f}, "
              f"uncompressed model {q['original']:.4f}")
    if run.priced is not None:
        from ..report.energy import format_energy

        print(f"\nenergy table: {run.table_name}")
        print(format_energy(run.priced))
    if run.is_workload:
        return
    acc = run.accuracy
    if acc:
        line = f"accuracy on these {n} inputs: simulated EIE {100 * acc['simulated']:.1f} %"
        if "float_model" in acc:
            line += f", uncompressed float model {100 * acc['float_model']:.1f} %"
        if "compressed_model_numpy" in acc:
            line += f", compressed model in NumPy {100 * acc['compressed_model_numpy']:.1f} %"
        print(f"\n{line}")
    elif n == 1:
        print(f"\ntop-1 output index: {int(run.result.outputs[0].argmax())}")
    hint = _next_steps(args)
    if hint:
        print(f"\n{hint}")


def _write_trace(run: SimulateRun, args) -> None:
    """``--trace OUT``: trace one layer on one input (a second, traced run) and say what was written."""
    from ..sim.trace import trace_network_layer, write_trace

    traced = trace_network_layer(run.network, run.x, run.cfg, layer=args.trace_layer, input_index=args.trace_input,
                                 backend=args.backend)
    win = write_trace(traced, args.trace, window=args.trace_window, pes=args.trace_pes,
                      comment=f"eiesim {__version__}: {run.source}, layer {traced.name}, input {args.trace_input}")
    print(f"\ntrace: {args.trace} (layer {traced.name!r}, input {args.trace_input}, cycles {win[0]:,}.."
          f"{win[1] - 1:,} of {traced.cycles:,}; CCU stall cycles in the run: "
          f"{traced.counters['ccu_stall_cycles']:,})")


def _write_outputs(run: SimulateRun, args) -> None:
    """``--json``, ``--csv``, ``--trace`` and ``--save-output``, in that order (paths checked before any work)."""
    from ..report.files import write_csv, write_json

    if args.json:
        write_json(args.json, run.doc)
    if args.csv:
        write_csv(args.csv, _table(run))
    if args.trace is not None:
        _write_trace(run, args)
    if args.save_output:
        import io

        out = run.result.outputs[0] if run.n_inputs == 1 else run.result.outputs
        buf = io.BytesIO()
        np.save(buf, out, allow_pickle=False)
        write_atomic(args.save_output, buf.getvalue(), error=EieInputError)


def run(args) -> int:
    """Execute ``eiesim simulate``; returns the exit code.

    :func:`_execute` computes a :class:`SimulateRun`, :func:`_render` prints it
    (tables from :mod:`eiesim.report`), :func:`_write_outputs` writes the
    files asked for.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line of the subcommand (see :func:`add_parser`).

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    EieError
        Bad flags or unreadable/invalid inputs (``EieInputError`` for an empty output
        path or a missing input vector, ``EieFormatError`` / ``EieConfigError`` for a
        malformed network or configuration); :func:`eiesim.cli.main` prints the message
        and exits with code 2.
    """
    result = _execute(args)
    _render(result, args)
    _write_outputs(result, args)
    return 0
