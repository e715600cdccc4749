"""What the command line imports (issue 11: the CLI's whole process is mostly imports).

Each check runs a fresh interpreter away from the checkout (``cwd=tmp_path``), so the installed
package is what is imported, and reads ``sys.modules`` after the command.
"""

import json
import subprocess
import sys

import numpy as np

from eiesim.format import CompressedLayer, write_dump

# never needed unless plotting (matplotlib) or building a scipy matrix (scipy)
HEAVY = ("matplotlib", "scipy")


def _modules_after(tmp_path, code: str) -> set:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


def _loaded(mods: set, prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in mods)


def test_importing_the_cli_loads_neither_matplotlib_nor_scipy(tmp_path):
    mods = _modules_after(tmp_path, "import eiesim.cli")
    assert "eiesim.cli" in mods
    assert not [h for h in HEAVY if _loaded(mods, h)]


def test_simulating_a_dump_does_not_import_the_container_reader(tmp_path):
    """``simulate --eie-dump`` builds a Network without the .eie reader (ZIP, Huffman, fractions),
    reads no TOML and imports no other command's module."""
    codes = (np.arange(9 * 7).reshape(9, 7) % 5) * (np.arange(9 * 7).reshape(9, 7) % 3 == 0)
    cb = np.array([0.0] + [0.25 * i for i in range(1, 16)], dtype=np.float32)
    d = write_dump(CompressedLayer.from_codes(codes, cb, 4), tmp_path / "d", activations=np.ones(7, np.float32))
    mods = _modules_after(tmp_path, "import contextlib, io\nfrom eiesim.cli import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()):\n"
                          f"    assert main(['simulate', '--eie-dump', {str(d)!r}]) == 0")
    assert "eiesim.format.eiedump" in mods and "eiesim.sim.network" in mods  # it did simulate
    unwanted = HEAVY + ("eiesim.format.container", "eiesim.format.huffman", "zipfile", "fractions", "tomllib",
                        "eiesim.commands.compress", "eiesim.commands.validate", "eiesim.energy",  # other commands
                        "shutil")  # argparse's formatter width (eiesim.cli._help_width)
    assert not [m for m in unwanted if _loaded(mods, m)]


def test_help_width_follows_argparse_rule(monkeypatch):
    """eiesim's help formatter wraps as argparse's own would (``shutil.get_terminal_size().columns - 2``),
    so skipping the shutil import changes no help text."""
    import argparse
    import shutil

    from eiesim.cli import _Formatter, _help_width, build_parser

    for cols in ("60", "123", "0", "junk", None):
        if cols is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", cols)
        assert _help_width() == shutil.get_terminal_size().columns - 2
        ours = build_parser("simulate")
        theirs = build_parser("simulate")
        for p in (theirs, *theirs._subparsers._group_actions[0].choices.values()):
            p.formatter_class = argparse.HelpFormatter
        sub_ours = ours._subparsers._group_actions[0].choices["simulate"]
        sub_theirs = theirs._subparsers._group_actions[0].choices["simulate"]
        assert sub_ours.formatter_class is _Formatter
        assert sub_ours.format_help() == sub_theirs.format_help()
