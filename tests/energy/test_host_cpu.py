"""The CPU baseline measured on this host: timing arithmetic, RAPL reading, declared power, host facts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from eiesim.energy.host_cpu import (
    TDP_PER_CORE_W, CpuTiming, PowerSource, RaplMeter, RaplZone, declared_power, default_power, eie_vs_cpu,
    host_info, measure_cpu_matvec, probe_rapl,
)
from eiesim.errors import EieInputError


def _tiny(n_out=8, n_in=16, density=0.3, seed=0):
    return sp.random(n_out, n_in, density=density, format="csr", dtype=np.float32, random_state=seed)


def test_measure_tiny_layer_real_clock():
    w = _tiny()
    pw = declared_power(10.0, "test bench supply")
    for x, batch in ((np.ones(16, np.float32), 1), (np.ones((16, 4), np.float32), 4)):
        r = measure_cpu_matvec(w, x, repeats=3, warmup=1, min_sample_s=1e-4, power=pw)
        assert set(r) == {"dense", "sparse"}
        for kind, t in r.items():
            assert isinstance(t, CpuTiming) and t.kind == kind and t.batch == batch
            assert isinstance(t.time_per_call_s, float) and 0 < t.time_per_call_s < 1.0
            assert t.time_per_vector_s == pytest.approx(t.time_per_call_s / batch)
            assert t.samples == 3 and isinstance(t.calls_per_sample, int) and t.calls_per_sample >= 1
            assert t.energy_method == "declared" and t.energy_source == "test bench supply"
            assert t.power_w == 10.0
            assert t.energy_per_vector_j == pytest.approx(10.0 * t.time_per_vector_s)
            assert t.iqr_rel >= 0 and 0 < t.min_time_per_call_s <= t.time_per_call_s
            d = t.to_dict()
            assert d["kind"] == kind and d["energy_source"] == "test bench supply"


class _Clock:
    """A clock that advances ``step`` seconds per reading (hand-workable samples)."""

    def __init__(self, step):
        self.t = 0.0
        self.step = step

    def __call__(self):
        self.t += self.step
        return self.t


def test_measure_arithmetic_with_fake_clock():
    """Each timed call takes one clock step: per call = 0.5 s exactly; energy = 3 W x 0.5 s / batch 2."""
    r = measure_cpu_matvec(_tiny(), np.ones((16, 2), np.float32), repeats=5, warmup=0, min_sample_s=0.1,
                           power=declared_power(3.0, "declared in a test"), clock=_Clock(0.5))
    for t in r.values():
        assert t.calls_per_sample == 1  # ceil(0.1 / 0.5)
        assert t.time_per_call_s == 0.5 and t.time_per_vector_s == 0.25
        assert t.iqr_rel == 0.0 and t.min_time_per_call_s == 0.5
        assert t.energy_per_vector_j == pytest.approx(0.75)


class _FakeMeter(RaplMeter):
    """Every reading adds 2,000 µJ to the counter."""

    def __init__(self):
        super().__init__([RaplZone("/fake/intel-rapl:0", "package-0", 2**32 - 1)])
        self.c = itertools.count(0, 2000)

    def read_uj(self):
        return (next(self.c),)


def test_measure_energy_from_rapl():
    """A sample spans two readings 2,000 µJ apart: 5 samples x 2 mJ over 5 x 1 call x batch 1 = 2 mJ per vector."""
    r = measure_cpu_matvec(_tiny(), np.ones(16, np.float32), repeats=5, warmup=0, min_sample_s=0.0,
                           rapl=_FakeMeter(), clock=_Clock(0.01))
    for t in r.values():
        assert t.energy_method == "rapl" and "package-0" in t.energy_source
        assert t.calls_per_sample == 1
        assert t.energy_per_vector_j == pytest.approx(2e-3)
        assert t.power_w == pytest.approx(2e-3 / 0.01)


def test_measure_rejects_bad_input():
    w = _tiny()
    with pytest.raises(EieInputError, match="inputs of shape"):
        measure_cpu_matvec(w, np.ones(15, np.float32))
    with pytest.raises(EieInputError, match="NaN"):
        measure_cpu_matvec(w, np.full(16, np.nan, np.float32))
    with pytest.raises(EieInputError, match="repeats"):
        measure_cpu_matvec(w, np.ones(16, np.float32), repeats=0)
    with pytest.raises(EieInputError, match="2-D"):
        measure_cpu_matvec(np.ones(4, np.float32), np.ones(4, np.float32))
    # 8 x 16 float32 = 512 bytes: refused before the dense copy is made
    with pytest.raises(EieInputError, match="512 bytes, over the limit of 511"):
        measure_cpu_matvec(w, np.ones(16, np.float32), max_dense_bytes=511)
    big = sp.csr_array((200_000, 300_000), dtype=np.float32)  # 240 GB dense: refused by the default limit
    with pytest.raises(EieInputError, match="dense float32 copy"):
        measure_cpu_matvec(big, np.ones(300_000, np.float32))


def _zone(root, name, zone_name, energy, rng="262143328850"):
    d = root / name
    d.mkdir()
    (d / "name").write_text(zone_name + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{rng}\n")
    return d


def test_rapl_fake_sysfs(tmp_path):
    _zone(tmp_path, "intel-rapl:0", "package-0", 1000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 500)  # a sub-zone: not summed (inside the package)
    _zone(tmp_path, "intel-rapl:1", "package-1", 7000)
    _zone(tmp_path, "intel-rapl:2", "psys", 99)  # platform zone: not a package
    (tmp_path / "intel-rapl-mmio:0").mkdir()
    meter, reason = probe_rapl(tmp_path)
    assert meter is not None
    assert [z.name for z in meter.zones] == ["package-0", "package-1"]
    assert meter.zones[0].max_energy_range_uj == 262143328850
    assert meter.read_uj() == (1000, 7000)
    assert "package-0" in reason and "package-1" in reason
    # 1,000 -> 3,500 µJ on one package; the other wrapped: 262,143,328,800 -> 50 (range + 1 = 262,143,328,851)
    assert meter.joules_between((1000, 262143328800), (3500, 50)) == pytest.approx((2500 + 101) * 1e-6)


def test_rapl_absent_or_unreadable(tmp_path):
    with pytest.raises(EieInputError, match="at least one zone"):
        RaplMeter([])
    meter, reason = probe_rapl(tmp_path / "nope")
    assert meter is None and "does not exist" in reason
    meter, reason = probe_rapl(tmp_path)
    assert meter is None and "no RAPL package zone" in reason
    _zone(tmp_path, "intel-rapl:0", "package-0", "")  # root-only energy_uj reads as nothing in a container
    meter, reason = probe_rapl(tmp_path)
    assert meter is None and "not readable" in reason and "energy_uj" in reason


def test_declared_and_default_power():
    p = declared_power(95, "wall meter, idle subtracted")
    assert p == PowerSource("declared", 95.0, "wall meter, idle subtracted")
    assert p.to_dict() == {"method": "declared", "watts": 95.0, "source": p.source}
    for bad_w, bad_src in ((0, "x"), (-1, "x"), (float("inf"), "x"), ("many", "x"), (10, ""), (10, "  ")):
        with pytest.raises(EieInputError):
            declared_power(bad_w, bad_src)
    d = default_power(2)
    assert TDP_PER_CORE_W == 4.375 and d.watts == 8.75 and d.method == "declared"
    assert "280 W" in d.source and "2 cores" in d.source and "Assumed" in d.source
    with pytest.raises(EieInputError):
        default_power(0)


def test_host_info_parses_cpuinfo(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
                 "model name\t: AMD EPYC\nflags\t\t: fpu avx2 hypervisor\n\nprocessor\t: 1\nmodel name\t: other\n")
    h = host_info(f)
    assert h.cpu_model == "AMD EPYC (family 25, model 1)"
    assert h.hypervisor is True
    assert h.cpu_count >= 1 and h.numpy == np.__version__
    assert isinstance(h.blas, str) and h.blas
    assert h.blas_threads is None or h.blas_threads >= 1
    assert h.blas_threads_source
    assert host_info(tmp_path / "absent").hypervisor is False


def test_eie_vs_cpu():
    t = CpuTiming("dense", 64, 12.8e-3, 2e-4, 0.0, 6.4e-3, 3, 1, 2e-3, 20.0, "declared", "s")
    r = eie_vs_cpu(1e-5, 6e-6, {"dense_b64": t})
    assert r["dense_b64"]["speedup"] == pytest.approx(20.0)
    assert r["dense_b64"]["speedup_fastest"] == pytest.approx(10.0)  # 6.4 ms / 64 = 0.1 ms = 10 x 10 µs
    assert r["dense_b64"]["energy_ratio"] == pytest.approx(2e-3 / 6e-6)
    with pytest.raises(EieInputError):
        eie_vs_cpu(0.0, 1.0, {})
