"""ocr-lstm: ddddocr's BiLSTM(512) + FC 8210x1024 on EIE (issue 13 section 2, stretch).

Skips with the exact install command when the pinned packages are absent (CI installs them from
scripts/requirements/ocr-lstm.txt; loading compresses 10.5 M weights, about 3.5 s on a 2-core machine).
"""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.workloads.registry import get_spec

SPEC = get_spec("ocr-lstm")
if not SPEC.installed:
    pytest.skip(f"ocr-lstm needs {', '.join(SPEC.missing())}: {SPEC.install_command}", allow_module_level=True)


@pytest.fixture(scope="module")
def wl():
    from eiesim.workloads import ocr

    return ocr.load_workload(2, 0)


def _onnx_direction(W, R, B, xs):
    """The ONNX LSTM operator's equations (gates i, o, f, c), float64."""
    H = R.shape[1]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros(H)
    c = np.zeros(H)
    out = []
    for x in xs.astype(np.float64):
        z = W @ x + R @ h + B[:4 * H] + B[4 * H:]
        c = sig(z[2 * H:3 * H]) * c + sig(z[:H]) * np.tanh(z[3 * H:])
        h = sig(z[H:2 * H]) * np.tanh(c)
        out.append(h)
    return np.array(out)


def test_onnx_gate_order_on_the_real_weights(wl):
    import onnx
    from onnx import numpy_helper

    from eiesim.sim.lstm import lstm_reference
    from eiesim.workloads import ocr

    g = onnx.load(str(ocr._package_dir() / "common.onnx")).graph
    w = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    node = next(n for n in g.node if n.op_type == "LSTM")
    W, R, B = (w[node.input[i]][0].astype(np.float64) for i in (1, 2, 3))
    xs = ocr._cnn(g, {k: v.astype(np.float32) for k, v in w.items()}, ocr.render_word("sparse", 0))[:6]
    want = _onnx_direction(W, R, B, xs)
    got, _ = lstm_reference(*wl.dense[0], xs)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_ocr_on_eie(wl):
    from eiesim.workloads.run import run_workload

    assert wl.kinds == ("lstm", "lstm", "fc")
    assert [l.shape for l in wl.layers] == [(2048, 1024), (2048, 1024), (8210, 1024)]
    assert wl.original_quality == 1.0  # the float model reads both rendered words
    run = run_workload(wl)
    assert [l.kind for l in run.layers] == ["lstm", "lstm", "fc"]
    assert run.layers[0].n_inputs == run.layers[2].n_inputs  # one FC M x V per LSTM step
    assert run.quality["compressed"] == 1.0
