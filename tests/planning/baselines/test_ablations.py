"""Tests of the harpagon ablations: each switches off exactly its idea, and registration."""

from __future__ import annotations

import pytest

from harpagon.model import (
    Application,
    HardwareCatalog,
    HardwareType,
    Module,
    Profile,
    ProfileSet,
    validate_plan,
)
from harpagon.planning.baselines.ablations import (
    plan_harpagon_even,
    plan_harpagon_nodummy,
    plan_harpagon_rr,
    plan_harpagon_single,
)
from harpagon.planning.registry import get_planner

CATALOG = HardwareCatalog({"cheap": HardwareType("cheap", 1.0), "fast": HardwareType("fast", 3.0)})
PROFILES = ProfileSet({
    "p": Profile("p", {"cheap": {1: 10.0, 4: 20.0, 16: 60.0}, "fast": {1: 3.0, 4: 6.0, 16: 16.0}}),
})
APP = Application(
    "chain", 230.0, 240.0,
    (Module("a", "p", 2.0), Module("b", "p", 1.0, 2.0), Module("c", "p")),
    (("a", "b"), ("b", "c")),
)


def groups(plan):
    return [g for m in plan.modules for g in m.groups]


def test_rr_uses_round_robin_everywhere():
    plan = plan_harpagon_rr(APP, PROFILES, CATALOG)
    validate_plan(plan, APP, PROFILES, CATALOG)
    assert plan.policy == "harpagon-rr"
    assert {g.dispatch for g in groups(plan)} == {"round_robin"}


def test_single_keeps_one_group_per_module():
    plan = plan_harpagon_single(APP, PROFILES, CATALOG)
    validate_plan(plan, APP, PROFILES, CATALOG)
    assert plan.policy == "harpagon-single"
    assert all(len(m.groups) == 1 for m in plan.modules)


def test_nodummy_has_no_dummy_rate():
    plan = plan_harpagon_nodummy(APP, PROFILES, CATALOG)
    validate_plan(plan, APP, PROFILES, CATALOG)
    assert plan.policy == "harpagon-nodummy"
    assert all(g.dummy_rate == 0.0 for g in groups(plan))


def test_even_gives_equal_budgets_on_chain():
    plan = plan_harpagon_even(APP, PROFILES, CATALOG)
    validate_plan(plan, APP, PROFILES, CATALOG)
    assert plan.policy == "harpagon-even"
    for module in plan.modules:
        assert module.budget_ms == pytest.approx(APP.slo_ms / 3)


@pytest.mark.parametrize(
    "name", ["nexus", "scrooge", "inferline", "harpagon-rr", "harpagon-single",
             "harpagon-nodummy", "harpagon-even"],
)
def test_registry_returns_policy(name):
    plan = get_planner(name)(APP, PROFILES, CATALOG)
    validate_plan(plan, APP, PROFILES, CATALOG)
    assert plan.policy == name


def test_rate_and_headroom_passed_through():
    plan = plan_harpagon_even(APP, PROFILES, CATALOG, rate=100.0, headroom=0.5)
    assert plan.rate == pytest.approx(150.0)
