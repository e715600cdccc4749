"""Odd inputs a user may hand to ``eiesim simulate``: one line, exit 2, nothing destroyed.

Regression tests for the cases a fresh-install tester found (zero-row batches,
corrupt .npy/.npz, hostile output targets, empty paths, argparse errors ...).
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from eiesim.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
    assert_one_line_error(code, err, "not a regular file")


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
    import json

    assert json.loads(js.read_text())["layers"][0]["shape"] == [1000, 4096]
    code, _, err = run(capsys, "simulate", "--eie-dump", str(fc8_dir), "--n-out", "900")
    assert code == 2 and "eiesim: error:" in err and len(err.strip().splitlines()) == 1
