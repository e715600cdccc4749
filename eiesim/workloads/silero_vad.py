"""Silero VAD (16 kHz) on EIE: its LSTMCell(128, 128) per 32 ms frame, on real recorded speech.

Model: ``silero-vad==6.2.3`` (MIT), file ``silero_vad/data/silero_vad_16k.safetensors``,
located with :func:`importlib.util.find_spec` (the package imports torch, so it is never
imported) and read with :func:`safetensors.numpy.load_file`; installed pinned with its
hash, from the eiesim checkout::

    pip install --no-deps --require-hashes -r scripts/requirements/silero-vad-lstm.txt

Per frame of 512 samples (32 ms at 16 kHz) with the previous 64 samples as
context, the model (the package's own ``tinygrad_model.py`` spells it out) is

    reflect-pad right by 64 -> STFT as a Conv1d (258 x 1 x 256, stride 128) ->
    magnitude (129 x 4) -> Conv1d 129->128 k3 p1, ReLU -> Conv1d 128->64 k3 s2 p1,
    ReLU -> Conv1d 64->64 k3 s2 p1, ReLU -> Conv1d 64->128 k3 p1, ReLU -> (128,)
    -> LSTMCell(128, 128) (state carried frame to frame) -> ReLU -> Conv1d 128->1
    -> sigmoid = P(speech)

The front end (everything before the LSTM cell) runs here in NumPy; EIE runs
the LSTM cell as one gate M x V per frame, ``[W_ih | W_hh | b_ih + b_hh]``,
512 x 256 plus the bias column (:mod:`eiesim.sim.lstm`: the sigmoid/tanh and
cell update on the host). The front end does not depend on the LSTM state, so
it is computed for the whole recording first; the LSTM's time steps then run
one after the other.

Inputs: the Debian package ``pocketsphinx-testdata`` (real read speech, 16 kHz
mono 16-bit WAVs under ``/usr/share/pocketsphinx/test/data``; ``apt-get install
pocketsphinx-testdata``). Each recording is one sequence (state reset).

Quality: frame-level speech/non-speech agreement (threshold 0.5, the package's
default) of the compressed LSTM as simulated with the uncompressed float model
on the same frames; the original model agrees with itself (1.0).

Compression: magnitude pruning of ``[W_ih | W_hh]`` to :data:`DENSITY` and a
4-bit k-means codebook shared with the bias (EIE's bias column), **without
retraining** (no training data or labels for the VAD ship with the package).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import wave
from pathlib import Path
from typing import List, Tuple

import numpy as np

from ..compress.pipeline import compress_arrays
from ..errors import EieInputError
from ..format.lstm import gate_matrix
from .models import load_safetensors
from .registry import Workload, pinned_install_command

__all__ = ["PACKAGE", "VERSION", "INSTALL", "SPEECH_DIR", "DENSITY", "find_weights", "speech_files",
           "read_wav", "front_end", "decoder", "load_workload"]

PACKAGE, VERSION = "silero-vad", "6.2.3"
INSTALL = pinned_install_command("silero-vad-lstm")
#: Where Debian's pocketsphinx-testdata puts its WAVs.
SPEECH_DIR = Path(os.environ.get("EIESIM_SPEECH_DIR", "/usr/share/pocketsphinx/test/data"))
SPEECH_INSTALL = "apt-get install pocketsphinx-testdata"
#: Weight density kept in the gate matrix (chosen in docs/workloads.md from a density scan).
DENSITY = 0.3
#: Samples per frame and of context at 16 kHz (silero-vad's ``num_samples`` / ``context_size``).
FRAME, CONTEXT = 512, 64
SAMPLE_RATE = 16000
THRESHOLD = 0.5


def find_weights() -> Path:
    """Path of ``silero_vad_16k.safetensors`` in the installed package (nothing is imported).

    Raises
    ------
    EieInputError
        Package or file absent (names the install command).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise EieInputError(f"silero-vad is not installed: {INSTALL}")
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad_16k.safetensors"
    if not p.is_file():
        raise EieInputError(f"{p} is missing (reinstall: {INSTALL})")
    return p


def speech_files() -> List[Path]:
    """The real speech recordings (sorted paths of ``*.wav`` under :data:`SPEECH_DIR`).

    Raises
    ------
    EieInputError
        None found (names the apt command).
    """
    files = sorted(Path(p) for p in glob.glob(str(SPEECH_DIR / "**" / "*.wav"), recursive=True))
    if not files:
        raise EieInputError(f"no speech WAVs under {SPEECH_DIR}: {SPEECH_INSTALL} (or set EIESIM_SPEECH_DIR)")
    return files


def read_wav(path) -> np.ndarray:
    """A 16 kHz mono 16-bit PCM WAV as float32 samples in [-1, 1).

    Returns
    -------
    numpy.ndarray of float32, shape (n_samples,)

    Raises
    ------
    EieInputError
        Not a readable WAV, or not 16 kHz mono 16-bit.
    """
    try:
        with wave.open(str(path), "rb") as w:
            rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            if (rate, ch, width) != (SAMPLE_RATE, 1, 2):
                raise EieInputError(f"{path}: {rate} Hz, {ch} channel(s), {8 * width}-bit; need 16 kHz mono 16-bit")
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise EieInputError(f"{path}: not a readable WAV ({exc})") from None
    return (np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0)


def _conv1d(x: np.ndarray, w: np.ndarray, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Batched Conv1d like ``torch.nn.functional.conv1d``: x (B, C, L), w (O, C, K) -> (B, O, L')."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    k = w.shape[2]
    n_out = (x.shape[2] - k) // stride + 1
    idx = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :]  # (L', K)
    cols = x[:, :, idx]  # (B, C, L', K)
    y = np.einsum("bclk,ock->bol", cols, w, optimize=True)
    if b is not None:
        y = y + b[None, :, None]
    return y.astype(np.float32)


def front_end(weights: dict, audio: np.ndarray) -> np.ndarray:
    """The LSTM inputs of every 512-sample frame of a recording (the model's conv front end, NumPy).

    Parameters
    ----------
    weights : dict of str to numpy.ndarray
        The safetensors tensors.
    audio : numpy.ndarray of float32, shape (n_samples,)

    Returns
    -------
    numpy.ndarray of float32, shape (n_frames, 128)
        ``n_frames = ceil(n_samples / 512)`` (the last frame zero-padded).
    """
    n = -(-audio.size // FRAME)
    wav = np.zeros(CONTEXT + n * FRAME, np.float32)
    wav[CONTEXT:CONTEXT + audio.size] = audio
    idx = np.arange(n)[:, None] * FRAME + np.arange(CONTEXT + FRAME)[None, :]
    chunks = wav[idx]  # (n, 576): previous 64 samples, then the frame
    x = np.pad(chunks, ((0, 0), (0, 64)), mode="reflect")[:, None, :]  # (n, 1, 640)
    s = _conv1d(x, weights["stft_conv.weight"], None, stride=128)  # (n, 258, 4)
    x = np.sqrt(s[:, :129] ** 2 + s[:, 129:] ** 2)
    x = np.maximum(_conv1d(x, weights["conv1.weight"], weights["conv1.bias"], 1, 1), 0)
    x = np.maximum(_conv1d(x, weights["conv2.weight"], weights["conv2.bias"], 2, 1), 0)
    x = np.maximum(_conv1d(x, weights["conv3.weight"], weights["conv3.bias"], 2, 1), 0)
    x = np.maximum(_conv1d(x, weights["conv4.weight"], weights["conv4.bias"], 1, 1), 0)
    return x[:, :, 0].astype(np.float32)  # (n, 128)


def decoder(weights: dict, hidden: np.ndarray) -> np.ndarray:
    """P(speech) per frame from the LSTM's hidden states: ReLU, Conv1d 128 -> 1, sigmoid.

    Parameters
    ----------
    hidden : numpy.ndarray of float32, shape (n_frames, 128)

    Returns
    -------
    numpy.ndarray of float32, shape (n_frames,)
    """
    z = np.maximum(hidden, 0) @ weights["final_conv.weight"][0, :, 0] + weights["final_conv.bias"][0]
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_workload(n_inputs: int, seed: int = 0, *, density: float = DENSITY, n_pe: int = 64) -> Workload:
    """Silero VAD's LSTM on ``n_inputs`` real recordings (registry name ``silero-vad-lstm``).

    Parameters
    ----------
    n_inputs : int
        Recordings (each one LSTM sequence of 32 ms frames); at most the number available
        (10 in pocketsphinx-testdata 0.8+5prealpha+1-15).
    seed : int
        Picks the recordings (a seeded permutation of the sorted file list; seed 0 takes
        them in sorted order).
    density : float
        Fraction of ``[W_ih | W_hh]`` kept by magnitude pruning.
    n_pe : int
        PEs of the layout (EIE: 64).

    Returns
    -------
    Workload
        One ``lstm`` layer, shape (512, 256) plus the bias column.

    Raises
    ------
    EieInputError
        silero-vad or the speech WAVs absent (names the install command); too many inputs.
    """
    path = find_weights()
    files = speech_files()
    if n_inputs > len(files):
        raise EieInputError(f"silero-vad-lstm: {n_inputs} recordings asked for, {len(files)} under {SPEECH_DIR}")
    order = np.arange(len(files)) if seed == 0 else np.random.default_rng(seed).permutation(len(files))
    chosen = [files[i] for i in order[:n_inputs]]
    wts = load_safetensors(path)
    w, b = gate_matrix(wts["lstm_cell.weight_ih"], wts["lstm_cell.weight_hh"],
                       wts["lstm_cell.bias_ih"], wts["lstm_cell.bias_hh"], source="pytorch")
    res = compress_arrays([w], [b], ["lstm_cell"], densities=density, n_pe=n_pe, huffman=False, seed=seed)
    layer = res.layers[0]
    feats = [front_end(wts, read_wav(f)) for f in chosen]

    def forward(run) -> np.ndarray:
        return np.concatenate([decoder(wts, run(0, x)) for x in feats])

    from ..sim.lstm import lstm_reference

    ref = np.concatenate([decoder(wts, lstm_reference(w, b, x)[0]) for x in feats])
    ref_speech = ref >= THRESHOLD

    def score(probs) -> float:
        return float(np.mean((np.asarray(probs) >= THRESHOLD) == ref_speech))

    meta = {
        "package": f"{PACKAGE}=={VERSION}", "install": INSTALL, "weights": "silero_vad/data/silero_vad_16k.safetensors",
        "sha256": _sha256(path),
        "inputs": {"source": "Debian pocketsphinx-testdata (" + SPEECH_INSTALL + ")",
                   "files": [str(f.relative_to(SPEECH_DIR)) for f in chosen],
                   "frames": int(sum(x.shape[0] for x in feats)), "frame_ms": 32,
                   "reference_speech_fraction": float(ref_speech.mean())},
        "compression": {"method": "magnitude prune + 4-bit k-means codebook (bias in the codebook)",
                        "density": density, "retrained": False, "gate_order": "pytorch (i, f, g, o)"},
        "front_end": "NumPy: STFT conv, 4 Conv1d + ReLU (host); decoder ReLU, Conv1d 128->1, sigmoid (host)",
    }
    return Workload(
        name="silero-vad-lstm", layers=(layer,), kinds=("lstm",), forward=forward, score=score,
        metric="frame speech/non-speech agreement with the uncompressed model", original_quality=1.0,
        n_inputs=len(chosen), dense=((w, b),), metadata=meta,
    )
