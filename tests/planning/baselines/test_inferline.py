"""Tests of the InferLine baseline: the greedy steps on hand-computed cases, validity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import InfeasiblePlan
from harpagon.evaluation.suites import random_workload
from harpagon.model import (
    Application,
    HardwareCatalog,
    HardwareType,
    Module,
    Profile,
    ProfileSet,
    validate_plan,
)
from harpagon.planning.baselines.inferline import InferLineConfig, _Greedy, plan_inferline

CATALOG = HardwareCatalog({"fast": HardwareType("fast", 3.0), "slow": HardwareType("slow", 1.0)})
PROFILES = ProfileSet({
    "p": Profile("p", {
        "fast": {1: 5.0, 2: 8.0, 4: 12.0, 8: 20.0},
        "slow": {1: 10.0, 2: 14.0, 4: 20.0, 8: 36.0},
    }),
})


def one_module(slo_ms: float, rate: float = 200.0) -> Application:
    return Application("one", rate, slo_ms, (Module("m", "p"),))


def test_greedy_downgrades_then_increases_batch():
    # Start: fast at b = 1, T = 200, 1 worker, cost 3. DowngradeHW to slow at b = 1 needs
    # 2 workers (T = 100), cost 2. Then IncreaseBatch to b = 4 (T = 200) needs 1 worker,
    # cost 1, latency 20 + 1000 * 4 / 200 = 40 ms.
    app = one_module(100.0)
    plan = plan_inferline(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    assert plan.extra["steps"] == [
        "DowngradeHW m: fast -> slow at batch 1",
        "IncreaseBatch m: batch 1 -> 4",
    ]
    group = plan.modules[0].groups[0]
    assert (group.hardware, group.batch_size, group.workers) == ("slow", 4, 1)
    assert plan.cost_per_hour == pytest.approx(1.0)
    assert plan.latency_ms == pytest.approx(40.0)


def test_greedy_stops_when_step_breaks_slo():
    # With a 30 ms SLO the IncreaseBatch step (40 ms) is invalid: slow, b = 1, 2 workers,
    # latency 10 + 1000 / 200 = 15 ms.
    app = one_module(30.0)
    plan = plan_inferline(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    assert plan.extra["steps"] == ["DowngradeHW m: fast -> slow at batch 1"]
    group = plan.modules[0].groups[0]
    assert (group.hardware, group.batch_size, group.workers) == ("slow", 1, 2)
    assert plan.latency_ms == pytest.approx(15.0)


def test_greedy_keeps_fast_hardware_under_tight_slo():
    # 12 ms: slow at b = 1 takes 15 ms, so the start (fast, b = 1, 10 ms) is final.
    app = one_module(12.0)
    plan = plan_inferline(app, PROFILES, CATALOG)
    assert plan.extra["steps"] == []
    group = plan.modules[0].groups[0]
    assert (group.hardware, group.batch_size, group.workers) == ("fast", 1, 1)


def test_groups_are_batch_aware_without_dummies():
    app = Application("two", 300.0, 200.0, (Module("a", "p"), Module("b", "p", 1.0, 2.0)), (("a", "b"),))
    plan = plan_inferline(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    for module in plan.modules:
        assert len(module.groups) == 1
        assert module.groups[0].dispatch == "batch_aware"
        assert module.groups[0].dummy_rate == 0.0


def test_start_missing_slo_infeasible():
    with pytest.raises(InfeasiblePlan, match="even the fastest hardware at the smallest batch size"):
        plan_inferline(one_module(9.0), PROFILES, CATALOG)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_greedy_ends_where_no_action_helps(seed):
    workload = random_workload(np.random.default_rng(seed))
    app, profiles, hardware = workload.app, workload.profiles, workload.hardware
    try:
        plan = plan_inferline(app, profiles, hardware)
    except InfeasiblePlan:
        return
    greedy = _Greedy(app, profiles, hardware)
    configs = {
        m.name: InferLineConfig(m.groups[0].hardware, m.groups[0].batch_size, m.groups[0].workers)
        for m in plan.modules
    }
    assert greedy.is_valid(configs)
    cost = greedy.cost(configs)
    assert cost == pytest.approx(plan.cost_per_hour)
    for name, config in configs.items():
        for _, moved in greedy.actions(name, config):
            candidate = {**configs, name: moved}
            assert greedy.cost(candidate) >= cost - 1e-9 or not greedy.is_valid(candidate)
