"""Tests of the workload suites: sizes, reproducibility and the shape of random workloads."""

from __future__ import annotations

import pytest

from harpagon.errors import ConfigError
from harpagon.evaluation.suites import (
    RATE_SCALES,
    SLO_SCALES,
    random_suite,
    standard_suite,
    suite_workloads,
)
from harpagon.model.loading import resolve_application


def test_standard_suite_has_at_least_100_workloads():
    assert len(standard_suite()) >= 100


def test_standard_suite_grid_of_each_app():
    workloads = standard_suite()
    apps = {w.app.name for w in workloads}
    assert "traffic" in apps
    traffic = [w for w in workloads if w.app.name == "traffic"]
    assert len(traffic) == len(RATE_SCALES) * len(SLO_SCALES)
    base = resolve_application("traffic")
    assert sorted({w.app.rate for w in traffic}) == pytest.approx(
        sorted(base.rate * s for s in RATE_SCALES)
    )
    assert sorted({w.app.slo_ms for w in traffic}) == pytest.approx(
        sorted(base.slo_ms * s for s in SLO_SCALES)
    )


def test_standard_suite_profiles_cover_every_module():
    for workload in standard_suite():
        for module in workload.app.modules:
            assert module.profile in workload.profiles


def test_random_suite_reproducible_by_seed():
    first = [w.name for w in random_suite(seed=7, size=20)]
    again = [w.name for w in random_suite(seed=7, size=20)]
    other = [w.name for w in random_suite(seed=8, size=20)]
    assert first == again
    assert first != other


def test_random_suite_default_size_500():
    assert len(random_suite(seed=1)) == 500


def test_random_workloads_have_one_to_six_modules():
    sizes = {len(w.app.modules) for w in random_suite(seed=3, size=200)}
    assert sizes <= set(range(1, 7))
    assert {1, 6} <= sizes


def test_random_profiles_are_monotone():
    for workload in random_suite(seed=5, size=50):
        for profile in workload.profiles:
            for by_size in profile.latency_ms.values():
                sizes = sorted(by_size)
                for small, large in zip(sizes, sizes[1:]):
                    assert by_size[large] > by_size[small]
                    assert large / by_size[large] >= small / by_size[small]


def test_suite_all_is_both():
    assert len(suite_workloads("all", seed=0)) == len(standard_suite()) + 500


def test_unknown_suite_rejected():
    with pytest.raises(ConfigError, match="unknown suite 'huge'; choose one of: standard, random, all"):
        suite_workloads("huge")
