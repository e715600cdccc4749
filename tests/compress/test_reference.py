"""The library's ``validate --reference`` logic (:mod:`eiesim.compress.reference`), called without the CLI.

It returns findings and raises typed errors; it never prints or exits (issue 16 §3).
"""

from __future__ import annotations

import numpy as np
import pytest

from eiesim.compress.pipeline import compress_arrays
from eiesim.compress.reference import EQUIV_CODES, compare_with_reference, paired_bias
from eiesim.errors import EieInputError
from eiesim.format.container import Network, save_network
from eiesim.format.validate import validate


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(5)
    w = [rng.standard_normal((12, 9)).astype(np.float32), rng.standard_normal((4, 12)).astype(np.float32)]
    b = [rng.standard_normal(12).astype(np.float32), None]
    res = compress_arrays(w, b, ["fc1", "fc2"], densities=[0.5, 0.5], n_pe=4)
    path = tmp_path / "n.eie"
    save_network(path, Network(tuple(res.layers), activation="relu"), {})
    # the dense quantised weights and biases the file stores: the reference it must equal, bit for bit
    tensors = {"fc1.weight": res.layers[0].to_dense(), "fc1.bias": res.layers[0].bias_values(),
               "fc2.weight": res.layers[1].to_dense()}
    return path, tensors


def test_the_stored_weights_equal_their_quantised_reference(saved, capsys):
    path, tensors = saved
    report, section = compare_with_reference(validate(path), tensors, reference_file="ref.npz")
    assert section["compared"] is True and section["reference"] == "ref.npz" and section["mask"] is None
    assert [(p["name"], p["weight"], p["bias"]) for p in section["layers"]] == [
        ("fc1", "fc1.weight", "fc1.bias"), ("fc2", "fc2.weight", None)]
    assert not [f for f in report.findings if f.code in EQUIV_CODES]
    assert capsys.readouterr() == ("", "")  # library code prints nothing


def test_one_changed_weight_is_one_mismatch_at_its_layer(saved, capsys):
    path, tensors = saved
    w = tensors["fc2.weight"].copy()
    r, c = np.argwhere(w != 0)[0]
    w[r, c] = np.nextafter(w[r, c], np.float32(np.inf))  # one ulp: bit for bit means bit for bit
    report, _ = compare_with_reference(validate(path), {**tensors, "fc2.weight": w})
    bad = [f for f in report.findings if f.code == "EQUIV-DENSE-MISMATCH"]
    assert [(f.layer, f.layer_name, f.severity) for f in bad] == [(1, "fc2", "error")]
    assert not report.conformant()
    assert capsys.readouterr() == ("", "")


def test_unpaired_layers_and_arrays_are_findings_and_a_wrong_shape_is_a_typed_error(saved):
    path, tensors = saved
    report, section = compare_with_reference(validate(path), {"fc1.weight": tensors["fc1.weight"],
                                                               "other.weight": np.zeros((3, 3), np.float32)})
    codes = sorted(f.code for f in report.findings if f.code.startswith("EQUIV-REFERENCE"))
    assert codes == ["EQUIV-REFERENCE-MISSING", "EQUIV-REFERENCE-UNUSED"]
    with pytest.raises(EieInputError, match=r"'fc2.weight' has shape \(12, 4\), expected \(4, 12\)"):
        compare_with_reference(validate(path), {**tensors, "fc2.weight": tensors["fc2.weight"].T.copy()})


def test_paired_bias_is_the_prefix_bias_and_checks_its_shape():
    t = {"a.weight": np.zeros((3, 2), np.float32), "a.bias": np.ones(3, np.float32), "w": np.zeros((2, 2))}
    b, name = paired_bias(t, "a.weight")
    assert name == "a.bias" and b is t["a.bias"]
    assert paired_bias(t, "w") == (None, None)
    with pytest.raises(EieInputError, match=r"bias 'a.bias' is float32 \(2,\); weight 'a.weight' needs float \(3,\)"):
        paired_bias({**t, "a.bias": np.ones(2, np.float32)}, "a.weight", "m.npz")
