"""The tables the commands print, built from their results (no computation beyond sums and ratios).

Each function returns a :class:`eiesim.report.table.Table`, which the command
prints (:meth:`~eiesim.report.table.Table.text`) and writes with ``--csv``
(:func:`eiesim.report.files.write_csv`).
"""

from __future__ import annotations

from typing import Sequence

from .table import Column, Table, count, fixed, per_input

__all__ = ["NONZEROS_HEADER", "network_table", "workload_table", "lstm_lines", "findings_table", "workloads_table",
           "storage_report", "inspect_table", "validation_table"]

#: Column header of the weight non-zeros, the same in inspect and validate (and README): real
#: (non-filler) entries of W, the bias column excluded (issue 9: one definition of "non-zeros").
NONZEROS_HEADER = "non-zeros (W, no bias)"

_SHAPE = Column("shape (out x in)", csv=("n_out", "n_in"), fmt=lambda s: f"{s[0]} x {s[1]}")


def _per(total: int, n: int):
    """A count per input: the count itself for one input, else the mean (float)."""
    return int(total) if n == 1 else total / n


def network_table(result, n_inputs: int, n_pe: int) -> Table:
    """The per-layer table of ``eiesim simulate`` with its total row.

    Parameters
    ----------
    result : eiesim.sim.network.NetworkResult
        The run (cycles, counters and densities of every layer).
    n_inputs : int
        Input vectors simulated; counts are per input (means) when more than one.
    n_pe : int
        Processing elements (the total's load-balance efficiency = MACs / (cycles x PEs)).

    Returns
    -------
    Table
        Columns: layer, shape (out x in; CSV ``n_out``, ``n_in``), weight
        density %, activation density %, stored entries, fillers, cycles, time
        (µs, per input), load-balance efficiency %, spmat SRAM line reads and
        pointer SRAM reads (per input for several inputs).
    """
    n = n_inputs
    per = " per input" if n > 1 else ""  # means over the inputs: cycles, spmat and pointer reads
    cols = [Column("layer"), _SHAPE, Column("non-zeros % (W, no bias)", fixed(2)), Column("acts %", fixed(1)),
            Column("entries", count), Column("fillers", count), Column(f"cycles{per}", per_input),
            Column("time us", fixed(3)), Column("LB eff %", fixed(1)), Column(f"spmat reads{per}", per_input),
            Column(f"ptr reads{per}", per_input)]
    layers = result.layers
    rows = [[l.name, tuple(l.shape), 100 * l.weight_density, 100 * l.activation_density, l.stored_entries,
             l.fillers, _per(l.cycles, n), 1e6 * l.time_s / n, 100 * l.load_balance_efficiency,
             _per(l.counters["spmat_line_reads"], n), _per(l.counters["ptr_reads"], n)] for l in layers]
    cyc = result.cycles
    macs = sum(l.counters["macs"] for l in layers)
    rows += [None, ["total", "", "", "", sum(l.stored_entries for l in layers), sum(l.fillers for l in layers),
                    _per(cyc, n), 1e6 * result.time_s / n, 100 * macs / (cyc * n_pe) if cyc else 0.0,
                    _per(sum(l.counters["spmat_line_reads"] for l in layers), n),
                    _per(sum(l.counters["ptr_reads"] for l in layers), n)]]
    return Table(cols, rows)


def workload_table(result) -> Table:
    """The per-layer table of ``eiesim simulate --workload``.

    Parameters
    ----------
    result : eiesim.workloads.run.WorkloadResult
        The workload's run (one summary per layer, each over all its M x V products).

    Returns
    -------
    Table
        Columns: layer, kind, shape (CSV ``n_out``, ``n_in``), weight density
        %, activation density %, M x V products, cycles per M x V, cycles,
        time (µs, all products), load-balance efficiency %.
    """
    cols = [Column("layer"), Column("kind"), _SHAPE, Column("weights %", fixed(2)), Column("acts %", fixed(1)),
            Column("M x V", count), Column("cycles per M x V", fixed(1, sep=True)), Column("cycles", count),
            Column("time us", fixed(3, sep=True)), Column("LB eff %", fixed(1))]
    rows = [[l.name, l.kind, tuple(l.shape), 100 * l.weight_density, 100 * l.activation_density, l.n_inputs,
             l.cycles_per_input, l.cycles, 1e6 * l.time_s, 100 * l.load_balance_efficiency] for l in result.layers]
    return Table(cols, rows)


def lstm_lines(layers, *, steps: int = None, sequences: int = None) -> list:
    """One line per ``lstm`` layer: time steps, cycles per step, the host's element-wise operations.

    Parameters
    ----------
    layers : sequence of eiesim.sim.network.LayerSummary
    steps : int, optional
        ``eiesim simulate``: the input rows, time steps of one sequence.
    sequences : int, optional
        ``eiesim simulate --workload``: the sequences run (``n_inputs`` of each layer are its time steps).

    Returns
    -------
    list of str
    """
    out = []
    for l in layers:
        if l.kind != "lstm":
            continue
        ops = ", ".join(f"{k} {v:,}" for k, v in (l.host_ops or {}).items())
        if sequences is None:  # rows are time steps of one sequence; gate functions on the host
            out.append(f"lstm layer {l.name!r}: {steps} time steps, {l.cycles:,} cycles per sequence "
                       f"({l.cycles_per_input:,.1f} per step); host element-wise ops (not cycles): {ops}")
        else:
            out.append(f"lstm layer {l.name!r}: {l.n_inputs:,} time steps over {sequences} sequence(s), "
                       f"{l.cycles_per_input:,.1f} cycles per step; host element-wise ops (not cycles): {ops}")
    return out


def findings_table(findings: Sequence) -> Table:
    """Every finding of a validation, one row each (``eiesim validate --csv``).

    Parameters
    ----------
    findings : sequence of eiesim.format.validate.Finding
        Errors, warnings and informational findings, in report order.

    Returns
    -------
    Table
        Columns: code, severity, layer (index), layer name, PE, column, entry,
        member, count (places the finding stands for), message; an empty cell
        where the finding has no such location.
    """
    cols = [Column("code"), Column("severity"), Column("layer"), Column("layer name"), Column("PE"),
            Column("column"), Column("entry"), Column("member"), Column("count", count), Column("message")]
    rows = [[f.code, f.severity, f.layer, f.layer_name, f.pe, f.column, f.entry, f.member, f.count, f.message]
            for f in findings]
    return Table(cols, rows, align="llrlrrrlrl")


def workloads_table(docs: Sequence[dict]) -> Table:
    """The registered workloads (``eiesim workloads``): name, installed (yes/no), install command.

    Parameters
    ----------
    docs : sequence of dict
        :meth:`eiesim.workloads.registry.WorkloadSpec.to_dict` of each workload.

    Returns
    -------
    Table
    """
    rows = [[d["name"], "yes" if d["installed"] else "no", d["install_command"] or "(nothing to install)"]
            for d in docs]
    return Table([Column("workload"), Column("installed"), Column("install command")], rows)


def storage_report(rows) -> Table:
    """The storage table of ``eiesim compress`` (Deep Compression Table 2 columns), one row per layer and total.

    The columns of :func:`eiesim.compress.storage.storage_columns`: the text
    is :func:`eiesim.compress.storage.storage_table`'s plain table; the CSV
    splits a rate into percent and times and ``entries (fillers)`` into two
    counts; a P+Q+H cell without Huffman coding prints ``-`` (an empty field).

    Parameters
    ----------
    rows : sequence of eiesim.compress.storage.LayerStorage
        The layers, then the total (:func:`eiesim.compress.storage.network_total`).

    Returns
    -------
    Table
    """
    from ..compress.storage import storage_columns

    cols = storage_columns()
    return Table([Column("layer")] + [Column(t, text, csv, none="-") for t, _, text, csv in cols],
                 [[r.name] + [value(r) for _, value, _, _ in cols] for r in rows])


def _ratio(v) -> str:
    return f"{v:,.1f}x"


def inspect_table(doc: dict) -> Table:
    """The per-layer storage table of ``eiesim inspect``, with its total row.

    Parameters
    ----------
    doc : dict
        The ``eiesim inspect --json`` document: ``kind`` (``net``, ``eie``,
        ``dump``), ``layers`` (dicts of counts, ``density``, bytes, and for the
        per-PE layouts ``n_pe``, ``bias_entries``, ``balance``) and ``total``.

    Returns
    -------
    Table
        Columns: layer, kind, shape (``+bias`` when the layer has a bias
        column), [PEs], entries, fillers, [bias entries], non-zeros of W,
        density %, codebook (entries x bits), bytes, dense bytes, dense / bytes
        (a ratio, ``-`` when nothing is stored), [PE max/mean, slice max/mean];
        the bracketed columns for the per-PE layouts only.
    """
    per_pe = doc["kind"] != "net"
    ratio = Column("dense / bytes", _ratio, none="-")
    bal = fixed(3)
    cols = ([Column("layer"), Column("kind"), Column("shape")] + ([Column("PEs")] if per_pe else [])
            + [Column("entries", count), Column("fillers", count)]
            + ([Column("bias entries", count)] if per_pe else [])
            + [Column(NONZEROS_HEADER, count), Column("density %", fixed(2)), Column("codebook"),
               Column("bytes", count), Column("dense bytes", count), ratio]
            + ([Column("PE max/mean", bal, none="-"), Column("slice max/mean", bal, none="-")] if per_pe else []))

    def row(r, name, kind, shape, pes, codebook, balance):
        return ([name, kind, shape] + ([pes] if per_pe else []) + [r["entries"], r["fillers"]]
                + ([r["bias_entries"]] if per_pe else [])
                + [r["nonzeros"], 100 * r["density"], codebook, r["bytes"], r["dense_bytes"],
                   r["dense_bytes"] / r["bytes"] if r["bytes"] else None]
                + (list(balance) if per_pe else []))

    rows = [row(r, r["name"], r.get("kind", "fc"),
                " x ".join(str(d) for d in r["shape"]) + (" +bias" if r.get("has_bias") else ""),
                r.get("n_pe"), f"{r['codebook_size']} x {r['code_bits']}b",
                (r["balance"]["pe_balance"], r["balance"]["slice_balance"]) if per_pe else ())
            for r in doc["layers"]]
    rows += [None, row(doc["total"], "total", "", "", "", "", ("", ""))]
    return Table(cols, rows)


def validation_table(layers) -> Table:
    """The per-layer counts ``eiesim validate`` prints above its findings.

    Parameters
    ----------
    layers : sequence of eiesim.format.validate.LayerCounts

    Returns
    -------
    Table
        Columns: #, layer, kind, shape (``?`` when the file does not say), N
        (PEs, ``-`` for a ``.net`` stream), stored entries, fillers, bias
        entries, real non-zeros of W.
    """
    cols = [Column("#"), Column("layer"), Column("kind"), Column("shape", none="?"), Column("N", none="-"),
            Column("stored entries", count), Column("fillers", count), Column("bias entries", count),
            Column(NONZEROS_HEADER, count)]
    rows = [[l.index, l.name, l.kind, " x ".join(str(d) for d in l.shape) if l.shape else None, l.n_pe,
             l.stored_entries, l.fillers, l.bias_nonzeros, l.real_nonzeros] for l in layers]
    return Table(cols, rows)
