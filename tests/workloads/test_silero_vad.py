"""silero-vad-lstm: the real Silero VAD LSTM cell on EIE (issue 13 section 3).

Skips with the exact install command when silero-vad (or the speech WAVs) is absent.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from eiesim.workloads import silero_vad as sv

if importlib.util.find_spec("silero_vad") is None:
    pytest.skip(f"silero-vad is not installed: {sv.INSTALL}", allow_module_level=True)


@pytest.fixture(scope="module")
def weights():
    from eiesim.workloads.models import load_safetensors

    return load_safetensors(sv.find_weights())


@pytest.fixture(scope="module")
def speech():
    try:
        files = sv.speech_files()
    except Exception:
        pytest.skip(f"no speech WAVs under {sv.SPEECH_DIR}: {sv.SPEECH_INSTALL}")
    return files


def test_weights_are_the_pinned_lstm_cell(weights):
    assert weights["lstm_cell.weight_ih"].shape == (512, 128)
    assert weights["lstm_cell.weight_hh"].shape == (512, 128)
    assert weights["stft_conv.weight"].shape == (258, 1, 256)


def _torch_cell_f64(weights, xs):
    """torch.nn.LSTMCell's documented equations in float64 on the uncompressed weights."""
    w_ih, w_hh = (weights[k].astype(np.float64) for k in ("lstm_cell.weight_ih", "lstm_cell.weight_hh"))
    b = weights["lstm_cell.bias_ih"].astype(np.float64) + weights["lstm_cell.bias_hh"]
    h = np.zeros(128)
    c = np.zeros(128)
    out = []
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for x in xs.astype(np.float64):
        z = w_ih @ x + w_hh @ h + b
        c = sig(z[128:256]) * c + sig(z[:128]) * np.tanh(z[256:384])
        h = sig(z[384:]) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_numpy_lstm_equals_torch_equations_on_real_weights_and_speech(weights, speech):
    from eiesim.format.lstm import gate_matrix
    from eiesim.sim.lstm import lstm_reference

    audio = sv.read_wav(speech[0])
    feats = sv.front_end(weights, audio)
    assert feats.shape == (-(-audio.size // 512), 128) and feats.dtype == np.float32
    w, b = gate_matrix(weights["lstm_cell.weight_ih"], weights["lstm_cell.weight_hh"],
                       weights["lstm_cell.bias_ih"], weights["lstm_cell.bias_hh"])
    hs, _ = lstm_reference(w, b, feats)
    np.testing.assert_allclose(hs, _torch_cell_f64(weights, feats), rtol=0, atol=1e-5)


def test_the_uncompressed_model_hears_speech_and_silence(weights, speech):
    # cards/001.wav: a short spoken word with silence before it -- the model must say so
    from eiesim.format.lstm import gate_matrix
    from eiesim.sim.lstm import lstm_reference

    w, b = gate_matrix(weights["lstm_cell.weight_ih"], weights["lstm_cell.weight_hh"],
                       weights["lstm_cell.bias_ih"], weights["lstm_cell.bias_hh"])
    p = sv.decoder(weights, lstm_reference(w, b, sv.front_end(weights, sv.read_wav(speech[0])))[0])
    assert p[:5].max() < 0.5 < p[8:25].min()


def test_eie_run_matches_numpy_and_reports_quality(speech):
    from eiesim.workloads.run import numpy_runner, run_workload

    wl = sv.load_workload(2, 0)
    assert wl.kinds == ("lstm",) and wl.layers[0].shape == (512, 256) and wl.layers[0].has_bias
    assert wl.metadata["compression"]["retrained"] is False
    run = run_workload(wl)
    (lay,) = run.layers
    assert lay.kind == "lstm" and lay.n_inputs == wl.metadata["inputs"]["frames"]
    assert lay.host_ops["sigmoid"] == 3 * 128 * lay.n_inputs
    d = lay.to_dict()
    # two recordings = two sequences (state reset between them)
    assert d["sequences"] == 2 and d["cycles_per_sequence"] == lay.cycles / 2 and d["steps"] == lay.n_inputs
    p_eie = wl.forward(lambda k, x: __import__("eiesim.sim.lstm", fromlist=["x"]).simulate_lstm(
        wl.layers[0], x).hidden)
    p_np = wl.forward(numpy_runner(wl))
    np.testing.assert_allclose(p_eie, p_np, atol=1e-5)
    assert run.quality["compressed"] == wl.score(p_np)
    assert 0.85 <= run.quality["compressed"] <= 1.0 and run.quality["original"] == 1.0
    assert wl.score(wl.forward(numpy_runner(wl, compressed=False))) == 1.0
