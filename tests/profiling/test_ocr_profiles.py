"""Tests of the OCR profiles of this machine: hardware quotas, fingerprint and cache."""

from __future__ import annotations

import pytest

from harpagon.errors import ConfigError
from harpagon.model.loading import load_profiles
from harpagon.profiling import ocr as ocr_profiling
from harpagon.profiling.ocr import (
    OCR_PROFILE_NAMES,
    ensure_local_profiles,
    local_hardware,
    machine_fingerprint,
    profile_cache_dir,
)
from harpagon.profiling.profiler import BatchTiming, write_profile


@pytest.mark.parametrize(("cores", "one_thread", "two_threads"), [(1, 1, 0), (2, 2, 1), (8, 8, 4)])
def test_local_hardware_quotas_follow_cores(monkeypatch, cores, one_thread, two_threads):
    monkeypatch.setattr(ocr_profiling.os, "cpu_count", lambda: cores)

    catalog = local_hardware()

    assert catalog["cpu-1t"].available == one_thread
    assert catalog["cpu-2t"].available == two_threads
    assert catalog["cpu-1t"].threads == 1
    assert catalog["cpu-2t"].threads == 2


def test_cpu_prices_scale_with_threads():
    catalog = local_hardware()

    assert catalog["cpu-1t"].price_per_hour == pytest.approx(0.73948 / 12, abs=1e-6)
    assert catalog["cpu-2t"].price_per_hour == pytest.approx(2 * 0.73948 / 12, abs=1e-6)


def test_fingerprint_depends_on_cores(monkeypatch):
    first = machine_fingerprint()
    assert machine_fingerprint() == first

    monkeypatch.setattr(ocr_profiling.os, "cpu_count", lambda: 64)

    assert machine_fingerprint() != first


def test_cache_dir_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("HARPAGON_CACHE", str(tmp_path / "cache"))
    assert profile_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert profile_cache_dir() == tmp_path / "cache" / "profiles"

    monkeypatch.delenv("HARPAGON_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert profile_cache_dir() == tmp_path / "home" / ".cache" / "harpagon" / "profiles"


def test_cached_profiles_reused(monkeypatch, tmp_path):
    folder = tmp_path / f"ocr-{machine_fingerprint()}"
    for name in OCR_PROFILE_NAMES.values():
        write_profile(folder / f"{name}.yaml", name, "cpu-1t", {1: BatchTiming(1, 42.0, 50.0, 3)}, "cached")

    def fail(*args, **kwargs):
        raise AssertionError("profiled again although a cache exists")

    monkeypatch.setattr(ocr_profiling, "_profile_stage_runners", fail)

    profiles, hardware = ensure_local_profiles(tmp_path, progress=False)

    assert profiles["ocr_rec"].batch_latency_ms("cpu-1t", 1) == 42.0
    assert "cpu-2t" in hardware


def test_cached_profiles_p99_statistic(monkeypatch, tmp_path):
    folder = tmp_path / f"ocr-{machine_fingerprint()}"
    for name in OCR_PROFILE_NAMES.values():
        write_profile(folder / f"{name}.yaml", name, "cpu-1t", {1: BatchTiming(1, 42.0, 50.0, 3)}, "cached")

    profiles, _ = ensure_local_profiles(tmp_path, progress=False, statistic="p99")

    assert profiles["ocr_det"].batch_latency_ms("cpu-1t", 1) == 50.0
    assert profiles["ocr_det"].statistic == "p99"


def test_unknown_statistic_rejected_before_profiling(monkeypatch, tmp_path):
    def fail(*args, **kwargs):
        raise AssertionError("profiled although the statistic is invalid")

    monkeypatch.setattr(ocr_profiling, "_profile_stage_runners", fail)

    with pytest.raises(ConfigError, match=r"unknown profile statistic 'max'; use one of mean, p99"):
        ensure_local_profiles(tmp_path, progress=False, statistic="max")


def test_fingerprint_depends_on_repeats(monkeypatch):
    first = machine_fingerprint()

    monkeypatch.setattr(ocr_profiling, "_REPEATS", 100)

    assert machine_fingerprint() != first


@pytest.mark.slow
def test_profiles_measured_and_cached(monkeypatch, tmp_path):
    # Fewer sizes and repeats keep the real measurement short; the code path is the same.
    monkeypatch.setattr(ocr_profiling, "OCR_BATCH_SIZES", (1, 2))
    monkeypatch.setattr(ocr_profiling, "_REPEATS", 1)
    monkeypatch.setattr(ocr_profiling, "_WARMUP", 0)
    monkeypatch.setattr(ocr_profiling.os, "cpu_count", lambda: 1)

    profiles, hardware = ensure_local_profiles(tmp_path, progress=False)

    assert sorted(profile.model for profile in profiles) == ["ocr_cls", "ocr_det", "ocr_rec"]
    for profile in profiles:
        assert list(profile.latency_ms) == ["cpu-1t"]
        assert sorted(profile.latency_ms["cpu-1t"]) == [1, 2]
        assert sorted(profile.p99_latency_ms["cpu-1t"]) == [1, 2]
    cached = tmp_path / f"ocr-{machine_fingerprint()}"
    assert load_profiles(cached)["ocr_det"].latency_ms == profiles["ocr_det"].latency_ms
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".ocr-")]
