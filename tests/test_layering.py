"""The package's imports run one way (docs/DESIGN.md, "Dependencies run downward only").

``commands`` -> ``explore`` -> ``sim``/``energy``/``workloads`` -> ``compress`` ->
``format`` -> ``config``/``_io``/``errors``. Every import is checked, at module
level or inside a function (a function-level import does not make an upward
import acceptable), plus ``importlib.import_module("eiesim....")`` with a
literal name. ``cli.py`` (and ``__main__``) only dispatch, above ``commands``;
``report`` reads results, beside ``sim``; the compiled ``_kernels`` and the
package root (``__version__``) sit at the bottom. ``sim`` knows nothing of
``energy`` (DESIGN.md: "sim knows nothing of energy").
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "eiesim"

#: Rank of each top-level part of the package: an import may only go to a rank <= its own.
RANK = {
    "errors": 0, "_io": 0, "config": 0, "_kernels": 0, "__init__": 0,
    "format": 1,
    "compress": 2,
    "sim": 3, "energy": 3, "workloads": 3, "report": 3,
    "explore": 4,
    "commands": 5,
    "cli": 6, "__main__": 6,
}
#: Same-rank edges DESIGN.md rules out explicitly.
FORBIDDEN = {("sim", "energy")}


def _part(dotted: str):
    """Top-level part of ``eiesim.<part>...`` (``"__init__"`` for the package root), else None."""
    bits = dotted.split(".")
    if bits[0] != "eiesim":
        return None
    if len(bits) == 1 or bits[1] == "__version__":
        return "__init__"
    return bits[1]


def _imports(path: Path):
    """``(target module, line)`` of every eiesim import in one file, wherever it sits."""
    rel = path.relative_to(ROOT).with_suffix("")
    return _imports_in(path.read_text(encoding="utf-8"), list(rel.parts[:-1]))


def _imports_in(text: str, pkg):
    """Imports of the source ``text`` of a module in package ``pkg`` (list of names, e.g. ["eiesim", "format"])."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(pkg[:len(pkg) - (node.level - 1)])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if node.module is None or mod == "eiesim":  # from . import x / from eiesim import x
                for a in node.names:
                    yield f"{mod}.{a.name}", node.lineno
            else:
                yield mod, node.lineno
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                yield node.args[0].value, node.lineno


def _violations():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        src = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        assert src in RANK, f"{rel}: top-level part {src!r} has no place in DESIGN.md's order; add it to RANK"
        for target, line in _imports(path):
            dst = _part(target)
            if dst is None or dst == src:
                continue
            assert dst in RANK, f"{rel}:{line}: imports unknown part {dst!r}"
            if RANK[dst] > RANK[src] or (src, dst) in FORBIDDEN:
                bad.append(f"eiesim/{rel}:{line}: {src} -> {dst} ({target})")
    return bad


def test_no_upward_import_anywhere_in_the_package():
    bad = _violations()
    assert not bad, "upward imports (docs/DESIGN.md order):\n" + "\n".join(bad)


def test_the_walker_sees_function_level_and_relative_imports():
    # the checker itself must catch the shapes the old code hid (issue 9 §5)
    found = [t for t, _ in _imports(PKG / "format" / "container.py")]
    assert "eiesim.format.huffman" in found and "eiesim.errors" in found
    src = ("from .. import __version__\n"
           "def f():\n    from ..compress.huffman import decode\n    importlib.import_module('eiesim.cli')\n"
           "    from . import layout\n")
    targets = sorted(_imports_in(src, ["eiesim", "format"]), key=lambda tl: tl[1])
    assert [t for t, _ in targets] in (
        ["eiesim.__version__", "eiesim.compress.huffman", "eiesim.cli", "eiesim.format.layout"],
        ["eiesim.__version__", "eiesim.compress.huffman", "eiesim.format.layout", "eiesim.cli"])
    assert sorted(_part(t) for t, _ in targets) == ["__init__", "cli", "compress", "format"]
