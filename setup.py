"""Build script: compiles every ``kernels/*.pyx`` into ``eiesim._kernels.<name>``.

Metadata lives in ``pyproject.toml``; this file only declares the Cython
extensions (setuptools cannot glob extensions from ``pyproject.toml``).
"""

import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).resolve().parent

# Float32 MACs must not be fused into FMAs: the kernel is held bit-exact to a
# NumPy reference that multiplies and adds in separate float32 roundings.
COMPILE_ARGS = ["/O2", "/fp:precise"] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"]

extensions = [
    Extension(
        f"eiesim._kernels.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=COMPILE_ARGS,
    )
    for pyx in sorted((HERE / "kernels").glob("*.pyx"))
]

setup(
    # traces/ (the embedded default workload) ships inside the package as eiesim.traces
    packages=find_packages(include=["eiesim", "eiesim.*"]) + ["eiesim.traces"],
    package_dir={"eiesim.traces": "traces"},
    package_data={"eiesim.traces": ["*.eie", "*.npz", "*.md", "*.json"]},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
