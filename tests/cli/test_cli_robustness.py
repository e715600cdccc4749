"""Odd inputs and outputs a user may hand to ``eiesim`` and the scripts: one line, exit 2, nothing destroyed.

Regression tests for the cases a fresh-install tester found (zero-row batches,
corrupt .npy/.npz, hostile output targets, empty paths, argparse errors, headers
declaring huge shapes, FIFOs as inputs, outputs equal to inputs, outputs checked
only after the work ...).
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eiesim.cli import main

from ..conftest import run_cli as run


def assert_one_line_error(code, err, *needles):
    assert code == 2
    assert err.startswith("eiesim: error:"), err
    assert len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture
def odd_inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "empty.dat").write_bytes(b"")
    (d / "empty.npy").write_bytes(b"")
    np.save(d / "zero_rows.npy", np.zeros((0, 784), np.float32))
    good = npy_bytes(np.zeros(784, np.float32))
    (d / "trunc.npy").write_bytes(good[:100])
    # a header that declares 1e11 x 784 floats on a few bytes
    header = good.replace(b"(784,)", b"(100000000000, 784)")
    (d / "hugeshape.npy").write_bytes(header[: len(good) - 784 * 4 + 16])
    (d / "text.npy").write_text("hello, not numpy\n")
    np.save(d / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(d / "noinputs.npz", "w") as zf:
        zf.writestr("x.npy", good)
    (d / "trunc.npz").write_bytes((d / "noinputs.npz").read_bytes()[:30])
    np.savez(d / "strlabels.npz", inputs=np.zeros((2, 784), np.float32), labels=np.array(["a", "b"]))
    np.savez(d / "badlogits.npz", inputs=np.zeros((3, 784), np.float32), labels=np.zeros(3, np.int64),
             float_logits=np.zeros((2, 10), np.float32))
    x = np.zeros((3, 784), np.float32)
    x[2, 5] = np.nan
    np.save(d / "nan_row2.npy", x)
    np.save(d / "f64huge.npy", np.full(784, 1e300))
    return d


@pytest.mark.parametrize(
    "name, needle",
    [
        ("empty.dat", "0 input values"),
        ("empty.npy", "not a .npy array"),
        ("zero_rows.npy", "holds no input"),
        ("trunc.npy", "not a .npy array"),
        ("hugeshape.npy", "header declares"),
        ("text.npy", "not a .npy array"),
        ("objects.npy", "object"),
        ("noinputs.npz", "no 'inputs'"),
        ("trunc.npz", "not a readable .npz"),
        ("strlabels.npz", "'labels' must be integers"),
        ("badlogits.npz", "'float_logits' must be floats of shape (3, 10)"),
        ("nan_row2.npy", "input 2, activation 5"),
        ("f64huge.npy", "not a finite float32"),
    ],
)
def test_odd_input_files(capsys, odd_inputs, name, needle):
    code, _, err = run(capsys, "simulate", "--input", str(odd_inputs / name))
    assert_one_line_error(code, err, name, needle)


@pytest.mark.parametrize("flag", ["--network", "--input", "--config", "--json", "--save-output"])
def test_empty_path_is_an_error_not_a_default(capsys, flag):
    code, _, err = run(capsys, "simulate", flag, "")
    assert_one_line_error(code, err, "empty path")


def test_outputs_checked_before_simulating_and_nothing_half_written(capsys, tmp_path):
    js = tmp_path / "r.json"
    code, out, err = run(capsys, "simulate", "--json", str(js), "--save-output", str(tmp_path / "no" / "y.npy"))
    assert_one_line_error(code, err, "does not exist")
    assert not js.exists()
    assert out == ""  # failed before the simulation printed anything


def test_output_targets_that_must_not_be_replaced(capsys, tmp_path):
    ro = tmp_path / "ro.json"
    ro.write_text("keep")
    ro.chmod(stat.S_IRUSR)
    code, _, err = run(capsys, "simulate", "--json", str(ro))
    assert_one_line_error(code, err, "read-only")
    assert ro.read_text() == "keep"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "simulate", "--json", str(fifo))
    assert_one_line_error(code, err, "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    code, _, err = run(capsys, "simulate", "--json", "/dev/null")
    assert_one_line_error(code, err, "a device or a process's stream, not a file")


@pytest.mark.parametrize("target", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/2", "link.json", "link2.json"])
def test_an_output_through_a_stream_link_is_refused(target, tmp_path):
    """``--json /dev/stdout > report.txt`` replaced report.txt (the redirect target) with the JSON: the
    output is written by renaming a new file over the path's target (fresh-user finding); so did a
    symlink to /dev/stdout (second fresh-user finding), and a link to that link."""
    report = tmp_path / "report.txt"
    (tmp_path / "link.json").symlink_to("/dev/stdout")
    (tmp_path / "link2.json").symlink_to(tmp_path / "link.json")
    with open(report, "wb") as fh:
        proc = subprocess.run([sys.executable, "-c", "import sys; del sys.path[0]; from eiesim.cli import main; "
                               "sys.exit(main(sys.argv[1:]))", "simulate", "--json", target], stdout=fh,
                              stderr=subprocess.PIPE, cwd=tmp_path)
    assert proc.returncode == 2
    shown = target if target.startswith("/") else f"{target} (a link to /dev/stdout)"
    assert proc.stderr.decode().strip() == (f"eiesim: error: --json: {shown}: a device or a process's stream, not "
                                            "a file; outputs are written by replacing a file: give a file name")
    assert report.read_bytes() == b""


def test_regular_files_behind_proc_or_in_dev_shm_are_outputs(capsys, tmp_path, monkeypatch):
    """``/proc/self/cwd/x`` is a file of the current folder, ``/dev/shm`` a file system: both written."""
    from eiesim._io import check_writable

    monkeypatch.chdir(tmp_path)
    check_writable("/proc/self/cwd/x.json")
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        check_writable("/dev/shm/eiesim-test-x.json")
    (tmp_path / "ok.json").symlink_to(tmp_path / "real.json")  # a link to a file: written through
    code, _, err = run(capsys, "simulate", "--json", "ok.json")
    assert code == 0, err
    assert (tmp_path / "real.json").stat().st_size > 0 and (tmp_path / "ok.json").is_symlink()


def test_dash_is_not_standard_output(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "simulate", "--csv", "-")
    assert_one_line_error(code, err, "-: outputs are files here, not standard output; give a file name")
    assert list(tmp_path.iterdir()) == []


def test_output_into_a_read_only_folder_is_refused_even_as_root(capsys, tmp_path):
    """A folder without write bits is read-only to the user, as a file without them is; as root
    ``os.access`` says every folder is writable, so the file was written (fresh-user finding 5)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, out, err = run(capsys, "simulate", "--json", str(ro / "new.json"))
        assert_one_line_error(code, err, "is not writable")
        assert list(ro.iterdir()) == [] and out == ""
    finally:
        ro.chmod(0o755)


def test_symlinked_output_replaces_the_target_and_keeps_the_link(capsys, tmp_path):
    target = tmp_path / "target.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, _, err = run(capsys, "simulate", "--json", str(link))
    assert code == 0, err
    assert link.is_symlink()
    assert '"layers"' in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_huge_queue_and_many_pes_cost_no_memory(capsys, tmp_path):
    js = tmp_path / "r.json"
    code, _, err = run(capsys, "simulate", "--n-pe", "4096", "--fifo-depth", "65536", "--json", str(js))
    assert code == 0, err


def test_argparse_errors_follow_the_house_format(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--n-pe", "abc"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("eiesim: error:") and len(err.strip().splitlines()) == 1


def test_network_device_file_is_refused_quickly(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(784, np.float32))
    code, _, err = run(capsys, "simulate", "--network", "/dev/zero", "--input", str(tmp_path / "x.npy"))
    assert_one_line_error(code, err, "/dev/zero")


def test_broken_pipe_is_quiet():
    proc = subprocess.run(
        f"{sys.executable} -m eiesim simulate | head -c 10",
        shell=True, capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in proc.stderr


def test_dump_n_out_can_be_declared(capsys, tmp_path, fc8_dir):
    js = tmp_path / "r.json"
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--n-out", "1000", "--json", str(js))
    assert code == 0, err
    assert json.loads(js.read_text())["layers"][0]["shape"] == [1000, 4096]
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--n-out", "900")
    assert code == 2 and "eiesim: error:" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- inputs that lie, block or get overwritten
# Regression tests of a fresh-install report: an .npz header declaring a huge shape
# crashed the model loader, a FIFO given as an input hung every command, an output
# equal to an input destroyed it, and outputs were checked only after the work.

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) when a command blocks, e.g. opening a FIFO."""

    def _alarm(signum, frame):  # pragma: no cover - only on a regression
        raise TimeoutError("the command blocked")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def model_dir(tmp_path, capsys):
    """The tester's set-up: a 2-layer model, its .eie, an input vector, results JSON."""
    r = np.random.default_rng(0)
    np.savez(tmp_path / "good.npz", **{
        "fc1.weight": r.standard_normal((30, 20)).astype("f4"), "fc1.bias": r.standard_normal(30).astype("f4"),
        "fc2.weight": r.standard_normal((10, 30)).astype("f4"), "fc2.bias": r.standard_normal(10).astype("f4")})
    np.save(tmp_path / "in20.npy", np.ones(20, "f4"))
    code, _, err = run(capsys, "compress", str(tmp_path / "good.npz"), "--out", str(tmp_path / "g.eie"),
                       "--density", "0.5")
    assert code == 0, err
    code, _, err = run(capsys, "simulate", "--network", str(tmp_path / "g.eie"), "--input",
                       str(tmp_path / "in20.npy"), "--energy", "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    return tmp_path


def _huge_header_npy() -> bytes:
    from numpy.lib import format as F

    b = io.BytesIO()
    F.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False, "shape": (200000, 200000)})
    b.write(b"\0" * 64)
    return b.getvalue()


@pytest.mark.parametrize("argv", [
    ("validate", "{d}/g.eie", "--reference", "{d}/r_huge.npz"),
    ("validate", "{d}/g.eie", "--mask", "{d}/m_huge.npz"),
    ("compress", "{d}/r_huge.npz", "--out", "{d}/h.eie"),
])
def test_npz_header_declaring_a_huge_shape_is_refused_before_allocating(capsys, model_dir, argv):
    with zipfile.ZipFile(model_dir / "r_huge.npz", "w") as z:
        z.writestr("fc1.weight.npy", _huge_header_npy())
    with zipfile.ZipFile(model_dir / "m_huge.npz", "w") as z:
        z.writestr("fc1.npy", _huge_header_npy())
    code, _, err = run(capsys, *[a.format(d=model_dir) for a in argv])
    assert_one_line_error(code, err, "_huge.npz", "header declares shape (200000, 200000) of float32",
                          "(160000000000 bytes) but 64 bytes follow")
    assert not (model_dir / "h.eie").exists()


def _safetensors(path, header: dict, data: bytes) -> None:
    import struct

    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


@pytest.mark.parametrize("header, data, needle", [
    ({"fc1.weight": {"dtype": "F32", "shape": [200000, 200000], "data_offsets": [0, 64]}}, b"\0" * 64,
     "header declares shape (200000, 200000) of F32 (160000000000 bytes) but its data_offsets span 64 bytes"),
    ({"fc1.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}, b"\0" * 16,
     "data_offsets [0, 64] lie outside the 16 bytes of data"),
])
def test_safetensors_sizes_that_disagree_with_the_file_are_refused(capsys, tmp_path, header, data, needle):
    _safetensors(tmp_path / "m.safetensors", header, data)
    code, _, err = run(capsys, "compress", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "o.eie"))
    assert_one_line_error(code, err, "m.safetensors", "'fc1.weight'", needle)
    assert not (tmp_path / "o.eie").exists()


def _patch_central_size(path, member: str, compress_size: int) -> None:
    """Make the ZIP central directory declare ``compress_size`` bytes for ``member``."""
    import struct

    raw = bytearray(path.read_bytes())
    name = member.encode()
    pos = 0
    while True:
        at = raw.find(b"PK\x01\x02", pos)
        assert at >= 0, member
        n = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46: at + 46 + n] == name:
            struct.pack_into("<I", raw, at + 20, compress_size)
            break
        pos = at + 4
    path.write_bytes(bytes(raw))


def test_pth_member_declaring_more_bytes_than_the_file_holds_is_refused(capsys, tmp_path):
    from tests.compress.test_models import write_pth

    p = tmp_path / "m.pth"
    write_pth(p, {"fc1.weight": np.ones((4, 4), np.float32)})
    _patch_central_size(p, "archive/data/0", 2_000_000_000)
    code, _, err = run(capsys, "compress", str(p), "--out", str(tmp_path / "o.eie"))
    assert_one_line_error(code, err, "m.pth", "archive/data/0", "declares 2000000000 compressed bytes",
                          "refused before reading")


@pytest.fixture
def fifos(model_dir):
    for name in ("fifo.npz", "fifo.eie", "fifo.pth", "fifo.safetensors", "fifo.json", "fifo.toml"):
        os.mkfifo(model_dir / name)
    return model_dir


@pytest.mark.parametrize("argv", [
    ("validate", "{d}/g.eie", "--reference", "{d}/fifo.npz"),
    ("validate", "{d}/g.eie", "--mask", "{d}/fifo.npz"),
    ("validate", "{d}/g.eie", "--reference", "{d}/fifo.pth"),
    ("validate", "{d}/g.eie", "--reference", "{d}/fifo.safetensors"),
    ("validate", "{d}/fifo.eie"),
    ("compress", "{d}/fifo.npz", "--out", "{d}/x.eie"),
    ("inspect", "{d}/fifo.eie"),
    ("inspect", "{d}/g.net", "--layers", "{d}/fifo.json"),
    ("simulate", "--network", "{d}/fifo.eie", "--input", "{d}/in20.npy"),
    ("simulate", "--network", "{d}/g.eie", "--input", "{d}/in20.npy", "--config", "{d}/fifo.toml"),
    ("energy", "{d}/fifo.json"),
    ("energy", "{d}/r.json", "--table", "{d}/fifo.toml"),
    ("plot", "{d}/fifo.json", "--out", "{d}"),  # an existing folder: eiesim creates none
])
def test_fifo_inputs_are_refused_without_blocking(capsys, fifos, no_hang, argv):
    (fifos / "g.net").write_bytes(b"\0" * 8)
    argv = [a.format(d=fifos) for a in argv]
    code, _, err = run(capsys, *argv)
    fifo = next(a for a in argv if "fifo." in a)
    assert_one_line_error(code, err, os.path.basename(fifo), "not a regular file")
    assert not (fifos / "x.eie").exists() and not (fifos / "figs").exists()


def test_fifo_in_a_dump_directory_is_refused_without_blocking(capsys, model_dir, no_hang):
    from eiesim.format.container import load_network
    from eiesim.format.eiedump import write_dump

    dump = write_dump(load_network(model_dir / "g.eie").layers[0], model_dir / "dump",
                      activations=np.ones(20, np.float32))
    (dump / "act.dat").unlink()
    os.mkfifo(dump / "act.dat")
    code, _, err = run(capsys, "simulate", "--eie-dump", str(dump), "--n-out", "30")
    assert_one_line_error(code, err, "act.dat", "not a regular file")
    code, out, err = run(capsys, "validate", str(dump), "--n-out", "30")
    assert code == 1 and "DUMP-FILES" in out and "act.dat: not a regular file" in out, out + err


@pytest.mark.parametrize("setup, argv, needle", [
    ("good.npz m.npz", ("compress", "m.npz", "--out", "m.npz"), "--out: same file as MODEL (m.npz)"),
    ("good.npz m2.npz", ("compress", "m2.npz", "--out", "o.eie", "--json", "m2.npz"),
     "--json: same file as MODEL (m2.npz)"),
    ("g.eie v.eie", ("validate", "v.eie", "--json", "v.eie"), "--json: same file as PATH (v.eie)"),
    ("g.eie s.eie", ("simulate", "--network", "s.eie", "--input", "in20.npy", "--json", "s.eie"),
     "--json: same file as --network (s.eie)"),
    ("in20.npy i.npy", ("simulate", "--network", "g.eie", "--input", "i.npy", "--save-output", "i.npy"),
     "--save-output: same file as --input (i.npy)"),
    ("g.eie n.eie", ("inspect", "n.eie", "--json", "n.eie"), "--json: same file as FILE (n.eie)"),
    ("r.json e.json", ("energy", "e.json", "--json", "e.json"), "--json: same file as RESULTS.json (e.json)"),
    ("r.json energy_breakdown.png", ("plot", "energy_breakdown.png", "--out", "."),
     "same file as RESULTS.json (energy_breakdown.png)"),
])
def test_an_output_equal_to_an_input_is_refused_and_the_input_kept(capsys, model_dir, monkeypatch,
                                                                    setup, argv, needle):
    import shutil

    src, dst = setup.split()
    shutil.copy(model_dir / src, model_dir / dst)
    before = (model_dir / dst).read_bytes()
    monkeypatch.chdir(model_dir)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, needle, "refusing to overwrite an input")
    assert (model_dir / dst).read_bytes() == before
    assert out == "" and not (model_dir / "o.eie").exists()  # refused before any work


def test_an_input_reached_through_another_name_is_still_recognised(capsys, model_dir, monkeypatch):
    monkeypatch.chdir(model_dir)
    os.symlink("in20.npy", "link.npy")
    os.link("in20.npy", "hard.npy")
    before = (model_dir / "in20.npy").read_bytes()
    for out in ("link.npy", "hard.npy", str(model_dir / "in20.npy"), "./in20.npy"):
        code, _, err = run(capsys, "simulate", "--network", "g.eie", "--input", "in20.npy", "--save-output", out)
        assert_one_line_error(code, err, "--save-output: same file as --input (in20.npy)")
    assert (model_dir / "in20.npy").read_bytes() == before


def test_an_output_inside_an_input_dump_is_refused(capsys, model_dir):
    from eiesim.format.container import load_network
    from eiesim.format.eiedump import write_dump

    dump = write_dump(load_network(model_dir / "g.eie").layers[0], model_dir / "dump",
                      activations=np.ones(20, np.float32))
    before = (dump / "act.dat").read_bytes()
    code, _, err = run(capsys, "simulate", "--eie-dump", str(dump), "--n-out", "30", "--json", str(dump / "act.dat"))
    assert_one_line_error(code, err, "--json: same file as --eie-dump", "act.dat")
    assert (dump / "act.dat").read_bytes() == before


@pytest.mark.parametrize("argv, needle", [
    (("compress", "good.npz", "--out", "o2.eie", "--json", "o2.eie"), "--json: same file as --out (o2.eie)"),
    (("simulate", "--network", "g.eie", "--input", "in20.npy", "--save-output", "x", "--json", "x"),
     "--save-output: same file as --json (x)"),
    (("energy", "r.json", "--json", "t.out", "--write-table", "./t.out"), "--write-table: same file as --json (t.out)"),
])
def test_two_outputs_naming_one_file_are_refused(capsys, model_dir, monkeypatch, argv, needle):
    monkeypatch.chdir(model_dir)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, needle, "give two different outputs")
    assert out == "" and not any((model_dir / n).exists() for n in ("o2.eie", "x", "t.out"))


@pytest.mark.parametrize("argv, written", [
    (("compress", "good.npz", "--out", "c1.eie", "--json", "nodir/x.json"), "c1.eie"),
    (("simulate", "--network", "g.eie", "--input", "in20.npy", "--json", "s.json", "--save-output", "nodir/y.npy"),
     "s.json"),
    (("validate", "g.eie", "--json", "nodir/v.json"), None),
    (("inspect", "g.eie", "--json", "nodir/i.json"), None),
    (("energy", "r.json", "--json", "e.json", "--write-table", "nodir/t.toml"), "e.json"),
    (("plot", "r.json", "--out", "r.json/figs"), None),
])
def test_every_output_is_checked_before_any_work(capsys, model_dir, monkeypatch, argv, written):
    monkeypatch.chdir(model_dir)
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("eiesim: error:") and len(err.strip().splitlines()) == 1, err
    assert "nodir" in err and "does not exist" in err or "r.json" in err and "not a directory" in err, err
    assert out == ""  # nothing computed, nothing printed
    if written is not None:
        assert not (model_dir / written).exists()


_SCRIPT_CASES = [
    ("reproduce_deep_compression.py", ["--json", "{d}/nodir/r.json"], "--json"),
    ("reproduce_deep_compression.py", ["--json", "{d}/r.json", "--markdown", "{d}/r.json"], "--markdown"),
    ("study_deep_compression_recipe.py", ["--seeds", "0", "--prune", "P0", "--quant", "Q0", "--jobs", "1",
                                          "--out", "{d}/nodir/s.jsonl"], "--out"),
    ("reproduce_eie.py", ["--json", "{d}/nodir/r.json", "--out", "{d}"], "--json"),
    ("reproduce_eie.py", ["--out", "{d}/afile"], "--out"),
    ("make_traces.py", ["--out", "{d}/afile"], "--out"),
    # issue 9: one rule for all outputs -- a missing --out folder is refused, not created
    ("reproduce_eie.py", ["--out", "{d}/nodir"], "--out"),
    ("make_traces.py", ["--out", "{d}/nodir"], "--out"),
    ("study_deep_compression_recipe.py", ["--seeds", "0", "--prune", "P0", "--quant", "Q0", "--jobs", "1",
                                          "--cache", "{d}/nodir"], "--cache"),
    ("bench.py", ["--json", "{d}/nodir/b.json"], "--json"),
    ("bench_kmeans.py", ["--json", "{d}/nodir/k.json"], "--json"),
    ("bench_validate.py", ["--json", "{d}/nodir/v.json"], "--json"),
]


@pytest.mark.parametrize("script, args, flag", _SCRIPT_CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in
                                                                  enumerate(_SCRIPT_CASES)])
def test_scripts_check_their_outputs_before_any_work(tmp_path, script, args, flag):
    (tmp_path / "afile").write_text("not a folder")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), *[a.format(d=tmp_path) for a in args]],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"error: {flag}:" in last and "Traceback" not in proc.stderr, proc.stderr
    assert any(k in last for k in ("does not exist", "not a directory", "same file as")), last
    assert elapsed < 60, f"{script} took {elapsed:.0f} s to refuse its output"  # no training, no data loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written


def test_symlink_loops_get_one_message_from_every_command(capsys, tmp_path):
    """Issue 9 §4: simulate said 'cannot read (Too many levels…)', inspect/validate 'no such file',
    simulate --eie-dump 'dump directory is missing', compress 'unknown model format': now one message."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    loop = str(tmp_path / "a")
    msg = f"eiesim: error: {loop}: symbolic link loop (its links never reach a file or folder)"
    for argv in (["simulate", "--input", loop], ["simulate", "--eie-dump", loop], ["inspect", loop],
                 ["validate", loop], ["compress", loop, "--out", str(tmp_path / "o.eie")], ["energy", loop]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.strip() == msg, (argv, err)
    code, out, err = run(capsys, "simulate", "--json", loop)
    assert code == 2 and err.strip() == f"eiesim: error: --json: {loop}: symbolic link loop " \
                                       "(its links never reach a file or folder)", err


def test_input_of_unknown_type_is_refused_not_read_as_float32(capsys, tmp_path, fc8_dir):
    """A fresh-install tester: a .txt of exactly 4 x 4,096 bytes was simulated as float32 garbage (exit 0)."""
    from eiesim.cli import main

    path = tmp_path / "text.txt"
    path.write_text("a" * 16383 + "\n")
    code = main(["simulate", "--eie-dump", str(fc8_dir), "--input", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown input file type" in err and "text.txt" in err and err.count("\n") == 1


def test_workload_run_does_not_hide_fixed16_saturation(capsys, tmp_path):
    """``simulate --workload`` dropped every UserWarning, FixedPointSaturationWarning included (issue 9)."""
    from eiesim.cli import main

    cfg = tmp_path / "q015.toml"
    cfg.write_text("act_frac_bits = 15\n")
    code = main(["simulate", "--workload", "lenet-300-100", "--inputs", "3", "--arith", "fixed16",
                 "--config", str(cfg)])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.count("warning:") == 1 and "saturated" in err and "more such warnings" in err
    assert "retrained: True" in out and "?" not in out.split("\n")[2]
