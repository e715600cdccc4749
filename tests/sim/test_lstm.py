"""LSTM layers on EIE (issue 13 section 1): gate orders, the NumPy LSTM oracle, per-step cycles,
bidirectional runs, and the layer kind in networks and containers."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eiesim.compress.pipeline import compress_arrays
from eiesim.errors import EieFormatError
from eiesim.format.container import Network, load_container, load_network, save_network
from eiesim.format.lstm import GATE_ORDERS, gate_matrix, lstm_dims, to_pytorch_order
from eiesim.sim.engine import simulate
from eiesim.sim.lstm import (host_ops_per_step, lstm_reference, simulate_bidirectional, simulate_lstm)
from eiesim.sim.network import simulate_network

REPO = Path(__file__).resolve().parents[2]


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------- independent per-source LSTMs (float64)
def _torch_lstm(w_ih, w_hh, b_ih, b_hh, xs):
    """torch.nn.LSTMCell's documented equations, gates (i, f, g, o) in blocks of H."""
    H = w_hh.shape[1]
    h = np.zeros(H)
    c = np.zeros(H)
    out = []
    for x in xs:
        z = w_ih @ x + b_ih + w_hh @ h + b_hh
        i, f, g, o = _sig(z[:H]), _sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sig(z[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def _onnx_lstm(W, R, B, xs):
    """ONNX LSTM operator (default activations, no peepholes): W, R in (i, o, f, c) order, B = [Wb; Rb]."""
    H = R.shape[1]
    wb, rb = B[:4 * H], B[4 * H:]
    h = np.zeros(H)
    c = np.zeros(H)
    out = []
    for x in xs:
        z = W @ x + R @ h + wb + rb
        zi, zo, zf, zc = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
        c = _sig(zf) * c + _sig(zi) * np.tanh(zc)
        h = _sig(zo) * np.tanh(c)
        out.append(h)
    return np.array(out)


def _keras_lstm(kernel, recurrent, bias, xs):
    """Keras LSTM: kernel (X, 4H), recurrent_kernel (H, 4H), gates (i, f, c, o)."""
    H = recurrent.shape[0]
    h = np.zeros(H)
    c = np.zeros(H)
    out = []
    for x in xs:
        z = x @ kernel + h @ recurrent + bias
        i, f, cc, o = _sig(z[:H]), _sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sig(z[3 * H:])
        c = f * c + i * cc
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


@pytest.fixture
def rnd():
    rng = np.random.default_rng(7)
    X, H, T = 5, 6, 7
    return rng, X, H, T, rng.normal(size=(T, X)).astype(np.float32)


def _f32(*arrs):
    return [np.asarray(a, dtype=np.float32) for a in arrs]


def test_pytorch_order_matches_torch_equations(rnd):
    rng, X, H, T, xs = rnd
    w_ih, w_hh, b_ih, b_hh = _f32(rng.normal(size=(4 * H, X)), rng.normal(size=(4 * H, H)),
                                  rng.normal(size=4 * H), rng.normal(size=4 * H))
    w, b = gate_matrix(w_ih, w_hh, b_ih, b_hh, source="pytorch")
    hs, _ = lstm_reference(w, b, xs)
    want = _torch_lstm(*(a.astype(np.float64) for a in (w_ih, w_hh, b_ih, b_hh)), xs.astype(np.float64))
    np.testing.assert_allclose(hs, want, rtol=0, atol=2e-6)


def test_onnx_order_is_converted(rnd):
    rng, X, H, T, xs = rnd
    W, R, B = _f32(rng.normal(size=(4 * H, X)), rng.normal(size=(4 * H, H)), rng.normal(size=8 * H))
    want = _onnx_lstm(*(a.astype(np.float64) for a in (W, R, B)), xs.astype(np.float64))
    w, b = gate_matrix(W, R, B[:4 * H], B[4 * H:], source="onnx")
    np.testing.assert_allclose(lstm_reference(w, b, xs)[0], want, rtol=0, atol=2e-6)
    # taking ONNX weights for PyTorch order is a real, visible error (the test can fail)
    w_bad, b_bad = gate_matrix(W, R, B[:4 * H], B[4 * H:], source="pytorch")
    assert np.abs(lstm_reference(w_bad, b_bad, xs)[0] - want).max() > 1e-2


def test_keras_order_is_converted(rnd):
    rng, X, H, T, xs = rnd
    k, rk, bias = _f32(rng.normal(size=(X, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H))
    want = _keras_lstm(*(a.astype(np.float64) for a in (k, rk, bias)), xs.astype(np.float64))
    w, b = gate_matrix(k.T, rk.T, bias, source="keras")
    np.testing.assert_allclose(lstm_reference(w, b, xs)[0], want, rtol=0, atol=2e-6)


def test_gate_order_permutation_by_hand():
    a = np.arange(8)  # H = 2; ONNX blocks i, o, f, c
    assert to_pytorch_order(a, "onnx").tolist() == [0, 1, 4, 5, 6, 7, 2, 3]
    assert to_pytorch_order(a, "keras").tolist() == a.tolist()
    assert to_pytorch_order(np.arange(8).reshape(1, 8), "onnx", axis=1).tolist() == [[0, 1, 4, 5, 6, 7, 2, 3]]
    assert set(GATE_ORDERS) == {"pytorch", "onnx", "keras"}
    with pytest.raises(EieFormatError, match="multiple of 4"):
        to_pytorch_order(np.arange(6), "onnx")
    with pytest.raises(EieFormatError, match="gate order"):
        to_pytorch_order(np.arange(8), "caffe")


def test_lstm_dims():
    assert lstm_dims((2400, 1200)) == (600, 600)  # EIE Table III NT-LSTM: 1201 -> 2400 (bias column apart)
    with pytest.raises(EieFormatError, match="multiple of 4"):
        lstm_dims((10, 20))
    with pytest.raises(EieFormatError, match="cannot hold"):
        lstm_dims((16, 4))


def _lstm_layer(rng, X, H, n_pe=4, density=0.5):
    w, b = gate_matrix(rng.normal(size=(4 * H, X)) * 0.5, rng.normal(size=(4 * H, H)) * 0.5,
                       rng.normal(size=4 * H) * 0.1)
    res = compress_arrays([w], [b], ["lstm"], densities=density, n_pe=n_pe, huffman=False)
    return res.layers[0]


@pytest.mark.parametrize("backend", ["kernel", "reference"])
def test_eie_lstm_equals_numpy_lstm_on_the_stored_weights(rnd, backend):
    rng, X, H, T, xs = rnd
    layer = _lstm_layer(rng, X, H)
    r = simulate_lstm(layer, xs, backend=backend)
    want, _ = lstm_reference(layer.to_dense(), layer.bias_values(), xs)
    np.testing.assert_allclose(r.hidden, want, rtol=0, atol=1e-6)
    # each step is exactly one M x V of [x_t; h_(t-1)] (plus the bias column)
    h_prev = np.zeros(H, np.float32)
    for t in range(T):
        one = simulate(layer, np.concatenate([xs[t], h_prev]), backend=backend)
        assert r.step_cycles[t] == one.cycles
        h_prev = r.hidden[t]
    assert r.cycles == int(r.step_cycles.sum())
    assert r.host_ops == {"sigmoid": 3 * H * T, "tanh": 2 * H * T, "mul": 3 * H * T, "add": H * T}
    d = r.to_dict()
    assert d["kind"] == "lstm" and d["cycles_per_sequence"] == r.cycles and d["steps"] == T


def test_kernel_and_reference_agree(rnd):
    rng, X, H, T, xs = rnd
    layer = _lstm_layer(rng, X, H)
    a, b = simulate_lstm(layer, xs), simulate_lstm(layer, xs, backend="reference")
    assert a.step_cycles.tolist() == b.step_cycles.tolist() and a.counters == b.counters
    assert a.hidden.tobytes() == b.hidden.tobytes()


def test_first_step_skips_the_zero_state(rnd):
    rng, X, H, T, xs = rnd
    layer = _lstm_layer(rng, X, H)
    r = simulate_lstm(layer, xs)
    # h_0 = 0: only x_1 (X non-zeros) at step 0, dense h afterwards -> step 0 is the cheapest
    assert r.step_cycles[0] < r.step_cycles[1:].min()


def test_host_ops_per_step_hand_count():
    assert host_ops_per_step(600) == {"sigmoid": 1800, "tanh": 1200, "mul": 1800, "add": 600}


def test_bidirectional_reports_both_and_total(rnd):
    rng, X, H, T, xs = rnd
    fw, bw = _lstm_layer(rng, X, H), _lstm_layer(rng, X, H)
    out = simulate_bidirectional(fw, bw, xs)
    assert out["cycles"] == out["forward"].cycles + out["backward"].cycles
    want_b, _ = lstm_reference(bw.to_dense(), bw.bias_values(), xs[::-1])
    np.testing.assert_allclose(out["hidden"][:, H:], want_b[::-1], atol=1e-6)
    np.testing.assert_allclose(out["hidden"][:, :H], out["forward"].hidden)
    assert out["host_ops"]["tanh"] == 2 * 2 * H * T


def test_network_with_lstm_then_fc(rnd, tmp_path):
    rng, X, H, T, xs = rnd
    lstm = _lstm_layer(rng, X, H)
    fc = compress_arrays([rng.normal(size=(3, H)).astype(np.float32)], [None], ["out"], n_pe=4,
                         huffman=False).layers[0]
    net = Network((lstm, fc), activation="relu", kinds=("lstm", "fc"))
    assert (net.n_in, net.n_out) == (X, 3)
    res = simulate_network(net, xs)
    hs = simulate_lstm(lstm, xs).hidden
    want = hs @ fc.to_dense().T.astype(np.float32)  # no ReLU after an lstm layer
    np.testing.assert_allclose(res.outputs, want, atol=1e-5)
    d = res.to_dict()["layers"]
    assert [l["kind"] for l in d] == ["lstm", "fc"]
    assert d[0]["cycles_per_sequence"] == simulate_lstm(lstm, xs).cycles
    assert d[0]["host_ops"]["sigmoid"] == 3 * H * T
    # container round trip keeps the kind
    p = tmp_path / "lstm.eie"
    save_network(p, net)
    back = load_container(p)
    assert back.network.kinds == ("lstm", "fc") and [cl.kind for cl in back.layers] == ["lstm", "fc"]
    np.testing.assert_array_equal(simulate_network(back.network, xs).outputs, res.outputs)


def test_network_refuses_bad_kinds(rnd):
    rng, X, H, T, xs = rnd
    lstm = _lstm_layer(rng, X, H)
    with pytest.raises(EieFormatError, match="kinds"):
        Network((lstm,), kinds=("gru",))
    bad = compress_arrays([rng.normal(size=(6, 4)).astype(np.float32)], [None], ["x"], n_pe=2,
                          huffman=False).layers[0]
    with pytest.raises(EieFormatError, match="multiple of 4"):
        Network((bad,), kinds=("lstm",))


def _rewrite_manifest(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "manifest.json":
                m = json.loads(data)
                edit(m)
                data = json.dumps(m).encode()
            zout.writestr(info, data)


def test_container_kind_errors(rnd, tmp_path):
    rng, X, H, T, xs = rnd
    p = tmp_path / "a.eie"
    save_network(p, Network((_lstm_layer(rng, X, H),), kinds=("lstm",)))
    q = tmp_path / "b.eie"

    def bad_kind(m):
        m["layers"][0]["kind"] = "gru"
    _rewrite_manifest(p, q, bad_kind)
    with pytest.raises(EieFormatError, match="kind") as ei:
        load_network(q)
    assert ei.value.code == "META-MISSING"
    fc_path = tmp_path / "fc.eie"
    save_network(fc_path, Network((compress_arrays([rng.normal(size=(6, 4)).astype(np.float32)], [None], ["x"],
                                                   n_pe=2, huffman=False).layers[0],)))
    r = tmp_path / "c.eie"

    def lstm_kind(m):
        m["layers"][0]["kind"] = "lstm"
    _rewrite_manifest(fc_path, r, lstm_kind)
    with pytest.raises(EieFormatError, match="multiple of 4") as ei:
        load_network(r)
    assert ei.value.code == "META-INCONSISTENT"


def test_old_containers_still_load(tmp_path):
    # the embedded trace (regenerated in 2.1, every layer names its kind) rewritten as a 2.0 manifest
    # without the kind field, and a 2.0 fixture made by main 0ea3974
    new = load_container(REPO / "traces" / "lenet300100.eie")
    assert new.version == (2, 1) and [lm["kind"] for lm in new.manifest["layers"]] == ["fc", "fc", "fc"]

    def to_v20(m):
        m["minor_version"] = 0
        for lm in m["layers"]:
            del lm["kind"]

    _rewrite_manifest(REPO / "traces" / "lenet300100.eie", tmp_path / "old.eie", to_v20)
    old = load_container(tmp_path / "old.eie")
    assert old.version == (2, 0) and old.network.kinds == ("fc", "fc", "fc")
    assert all("kind" not in lm for lm in old.manifest["layers"])
    assert all(np.array_equal(a.to_dense(), b.to_dense()) for a, b in zip(old.network.layers, new.network.layers))
    fx = load_container(REPO / "tests" / "format" / "data" / "container_v2_0.eie")
    assert fx.version == (2, 0) and fx.network.kinds == ("fc", "fc")
    assert [l.shape for l in fx.network.layers] == [(4, 3), (2, 4)]
    out = simulate_network(fx.network, np.array([1.0, 2.0, 3.0], np.float32)).outputs[0]
    # fc1: W a + b = [0.5 - 1.5 + 0.5, 2, 1 + 1, -1.5 + 1] -> ReLU [0, 2, 2, 0]; fc2: [0 + 2 - 0, -1 + 1]
    np.testing.assert_allclose(out, [2.0, 0.0])


def test_cli_inspect_validate_simulate_carry_the_kind(rnd, tmp_path, capsys):
    from eiesim.cli import main

    rng, X, H, T, xs = rnd
    net = Network((_lstm_layer(rng, X, H),), activation="none", kinds=("lstm",))
    p = tmp_path / "l.eie"
    save_network(p, net)
    np.save(tmp_path / "xs.npy", xs)
    assert main(["inspect", str(p), "--json", str(tmp_path / "i.json")]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["layers"][0]["kind"] == "lstm"
    assert main(["validate", str(p), "--json", str(tmp_path / "v.json")]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["layers"][0]["kind"] == "lstm"
    assert main(["simulate", "--network", str(p), "--input", str(tmp_path / "xs.npy"), "--n-pe", "4",
                 "--json", str(tmp_path / "s.json")]) == 0
    lay = json.loads((tmp_path / "s.json").read_text())["layers"][0]
    assert lay["kind"] == "lstm" and lay["steps"] == T
    assert lay["cycles_per_sequence"] == simulate_lstm(net.layers[0], xs).cycles
    out = capsys.readouterr().out
    assert "lstm" in out
