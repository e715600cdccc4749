"""The house rule of issue 16: no function in ``eiesim/`` is longer than 100 lines of code.

Lines of code: the function's lines without its docstring, blank lines and comment-only lines (nested
functions count towards their parent as well as on their own).
"""

import ast
from pathlib import Path


PKG = Path(__file__).resolve().parents[1] / "eiesim"
LIMIT = 100


def code_lines(src_lines, node) -> int:
    """Lines of ``node`` (a def) that hold code: no docstring, no blank or comment-only line."""
    skip = set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    n = 0
    for lineno in range(node.lineno, node.end_lineno + 1):
        text = src_lines[lineno - 1].strip()
        if lineno not in skip and text and not text.startswith("#"):
            n += 1
    return n


def _functions():
    for path in sorted(PKG.rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        lines = src.splitlines()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name}", code_lines(lines, node)


def test_counting_rule_on_a_hand_made_function():
    src = 'def f(x):\n    """Doc\n    string."""\n\n    # a comment\n    y = x\n    return y\n'
    node = ast.parse(src).body[0]
    assert code_lines(src.splitlines(), node) == 3  # def, y = x, return


def test_no_function_longer_than_100_lines_of_code():
    long = {name: n for name, n in _functions() if n > LIMIT}
    assert not long, f"functions over {LIMIT} lines of code (split them): {long}"


def test_the_walk_sees_the_package():
    """The walk finds real functions, long ones included (it would pass vacuously on an empty package)."""
    found = dict(_functions())
    assert len(found) > 500
    assert any(n > 80 for n in found.values())
