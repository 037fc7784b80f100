"""Property tests: on random workloads every baseline plan validates and meets its SLO in
simulation under uniform arrivals, or the planner raises ``InfeasiblePlan``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import InfeasiblePlan
from harpagon.evaluation.simulate import simulate_uniform
from harpagon.evaluation.suites import random_workload
from harpagon.model import validate_plan
from harpagon.planning.registry import get_planner

POLICIES = ["nexus", "scrooge", "inferline", "harpagon-rr", "harpagon-single",
            "harpagon-nodummy", "harpagon-even"]


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_workload_plan_valid_or_infeasible(policy, seed):
    workload = random_workload(np.random.default_rng(seed))
    try:
        plan = get_planner(policy)(workload.app, workload.profiles, workload.hardware)
    except InfeasiblePlan:
        return
    check = validate_plan(plan, workload.app, workload.profiles, workload.hardware)
    assert check.latency_ms <= workload.app.slo_ms * (1 + 1e-9)
    assert plan.policy == policy


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_workload_plan_meets_slo_in_simulation(policy, seed):
    workload = random_workload(np.random.default_rng(seed))
    try:
        plan = get_planner(policy)(workload.app, workload.profiles, workload.hardware)
    except InfeasiblePlan:
        return
    check = simulate_uniform(plan, workload, seconds=2.0)
    assert check.max_latency_ms <= plan.latency_ms * (1 + 1e-9) + 1e-6
    assert check.slo_met
