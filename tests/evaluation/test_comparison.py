"""Tests of the comparison: per-workload outcomes and the summary figures."""

from __future__ import annotations

import math

import pytest

from harpagon.errors import ConfigError
from harpagon.evaluation.comparison import Outcome, run_comparison, run_workload, summarize
from harpagon.evaluation.suites import Workload
from harpagon.model import Application, HardwareCatalog, HardwareType, Module, Profile, ProfileSet


def outcome(workload: str, policy: str, cost: float | None, *, planning_ms: float = 1.0,
            slo_met: bool | None = None, bound: float | None = None) -> Outcome:
    return Outcome(
        workload=workload, suite="standard", app="a", rate=10.0, slo_ms=100.0, policy=policy,
        valid=cost is not None, cost_per_hour=cost, planning_ms=planning_ms, slo_met=slo_met,
        max_latency_ms=None, lower_bound_cost_per_hour=bound, error=None,
    )


OUTCOMES = [
    outcome("w1", "harpagon", 2.0, planning_ms=1.0, slo_met=True, bound=1.0),
    outcome("w1", "optimal", 2.0, planning_ms=5.0, bound=1.0),
    outcome("w1", "nexus", 3.0, planning_ms=2.0, slo_met=True),
    outcome("w2", "harpagon", 4.0, planning_ms=3.0, slo_met=True, bound=2.0),
    outcome("w2", "optimal", 3.0, planning_ms=7.0, bound=2.0),
    outcome("w2", "nexus", 2.0, planning_ms=4.0, slo_met=False),
    outcome("w3", "harpagon", 5.0, planning_ms=2.0, slo_met=True, bound=5.0),
    outcome("w3", "optimal", 5.0, planning_ms=6.0, bound=5.0),
    outcome("w3", "nexus", None, planning_ms=9.0),
]


def test_summary_cost_ratios():
    row = summarize(OUTCOMES, ["harpagon", "optimal", "nexus"])["policies"]["nexus"]
    # Ratios on w1 and w2 (w3 has no nexus plan): 1.5 and 0.5.
    assert row["cost_ratio_median"] == pytest.approx(1.0)
    assert row["cost_ratio_min"] == pytest.approx(0.5)
    assert row["cost_ratio_max"] == pytest.approx(1.5)
    assert row["cost_ratio_geomean"] == pytest.approx(math.sqrt(1.5 * 0.5))
    assert row["cheaper_share"] == pytest.approx(0.5)
    assert row["compared"] == 2


def test_summary_validity_and_slo_shares():
    row = summarize(OUTCOMES, ["harpagon", "optimal", "nexus"])["policies"]["nexus"]
    assert row["valid_share"] == pytest.approx(2 / 3)
    assert row["slo_met_share"] == pytest.approx(1 / 3)


def test_summary_planning_time():
    row = summarize(OUTCOMES, ["harpagon", "optimal", "nexus"])["policies"]["nexus"]
    assert row["planning_ms_median"] == pytest.approx(4.0)
    assert row["planning_ms_p99"] == pytest.approx(9.0)


def test_summary_optimal_share_and_fluid_bound():
    summary = summarize(OUTCOMES, ["harpagon", "optimal", "nexus"])
    # harpagon equals optimal on w1 and w3, not on w2 (4 > 3).
    assert summary["harpagon_optimal_share"] == pytest.approx(2 / 3)
    assert summary["workloads"] == 3
    # harpagon over the bound: 2, 2, 1 -> median 2; optimal: 2, 1.5, 1 -> median 1.5.
    assert summary["over_fluid_bound_median"]["harpagon"] == pytest.approx(2.0)
    assert summary["over_fluid_bound_median"]["optimal"] == pytest.approx(1.5)


def test_summary_slo_share_nan_without_simulation():
    unsimulated = [outcome("w1", "harpagon", 1.0), outcome("w1", "scrooge", 1.0)]
    row = summarize(unsimulated, ["harpagon", "scrooge"])["policies"]["scrooge"]
    assert math.isnan(row["slo_met_share"])


CATALOG = HardwareCatalog({"g": HardwareType("g", 1.0)})
PROFILES = ProfileSet({"p": Profile("p", {"g": {1: 10.0, 4: 20.0}})})


def small_workload(slo_ms: float) -> Workload:
    app = Application("one", 300.0, slo_ms, (Module("m", "p"),))
    return Workload(f"one/{slo_ms:g}", "random", app, PROFILES, CATALOG)


def test_infeasible_policy_counts_invalid():
    # With a 12 ms SLO harpagon pads b = 1 groups (10 + 10 / n ms with n >= 5 workers),
    # while Nexus needs 2 d(1) = 20 ms and has no plan.
    outcomes = run_workload(small_workload(12.0), ["harpagon", "nexus"], simulate_s=0)
    by_policy = {o.policy: o for o in outcomes}
    assert by_policy["harpagon"].valid
    assert not by_policy["nexus"].valid
    assert by_policy["nexus"].cost_per_hour is None
    assert by_policy["nexus"].error.startswith("InfeasiblePlan")


def test_run_comparison_unknown_policy_rejected():
    with pytest.raises(ConfigError, match="unknown policy 'cheapest'"):
        run_comparison([small_workload(50.0)], ["harpagon", "cheapest"], simulate_s=0)


def test_run_comparison_workers_match_serial():
    workloads = [small_workload(slo) for slo in (20.0, 40.0, 80.0)]
    serial = run_comparison(workloads, ["harpagon", "scrooge"], simulate_s=0, workers=1)
    parallel = run_comparison(workloads, ["harpagon", "scrooge"], simulate_s=0, workers=2)
    assert [(o.workload, o.policy, o.cost_per_hour) for o in serial] == [
        (o.workload, o.policy, o.cost_per_hour) for o in parallel
    ]
