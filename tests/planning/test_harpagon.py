"""The harpagon planner end to end: plans, options, errors."""

from __future__ import annotations

import pytest

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model import validate_plan
from harpagon.planning.harpagon import plan_harpagon
from harpagon.planning.optimal import plan_optimal

PROFILES = {
    # big: T = 400 req/s at b16; small: T = 200 req/s at b1.
    "det": {"big": {1: 10.0, 16: 40.0}, "small": {1: 5.0}},
    "cls": {"big": {1: 4.0, 8: 10.0}, "small": {1: 2.0, 2: 3.0}},
}
PRICES = {"big": 1.0, "small": 0.8}


@pytest.fixture
def inputs(make_app, make_profiles, make_hardware):
    app = make_app(
        [("det", "det", 1.0), ("cls", "cls", 0.5, 2.0)], [("det", "cls")], rate=450.0, slo_ms=150.0
    )
    return app, make_profiles(PROFILES), make_hardware(PRICES)


@pytest.mark.parametrize("planner", [plan_harpagon, plan_optimal])
def test_plan_validates_and_fits_slo(inputs, planner):
    app, profiles, hardware = inputs
    plan = planner(app, profiles, hardware)
    check = validate_plan(plan, app, profiles, hardware)
    assert check.latency_ms <= 150.0 + 1e-9
    assert plan.policy == planner.__name__.removeprefix("plan_")
    assert plan.planning_ms > 0
    assert plan.lower_bound_cost_per_hour <= plan.cost_per_hour


def test_plan_detector_uses_main_and_residual(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware)
    detector = plan.module("det")
    # 1 big worker (b16) as main group plus 1 small worker as residual: 1.8 USD/h, the
    # cheapest configuration of the detector at 450 req/s.
    assert [(g.hardware, g.batch_size, g.workers) for g in detector.groups] == [
        ("big", 16, 1), ("small", 1, 1),
    ]
    assert detector.cost_per_hour == pytest.approx(1.8)


def test_fluid_lower_bound_hand_computed(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware)
    # det at 450 req/s: the best is 400 req/s per USD/h (big b16). cls at 900 req/s: big b8
    # gives 800 req/s per USD/h, small b2 gives 666.7 / 0.8 = 833.3.
    assert plan.lower_bound_cost_per_hour == pytest.approx(450 / 400 + 900 / (2000 / 3 / 0.8))


def test_headroom_plans_for_higher_rate(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware, rate=100.0, headroom=0.25)
    assert plan.rate == pytest.approx(125.0)
    assert plan.module("cls").rate == pytest.approx(250.0)
    assert sum(g.rate for g in plan.module("det").groups) == pytest.approx(125.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"headroom": -0.1}, "headroom must be a fraction >= 0"),
        ({"rate": -5.0}, r"rate must be > 0 req/s, got -5"),
        ({"rate": 0.0}, r"rate must be > 0 req/s, got 0"),
    ],
)
def test_invalid_rate_options_raise(inputs, options, message):
    app, profiles, hardware = inputs
    with pytest.raises(ConfigError, match=message):
        plan_harpagon(app, profiles, hardware, **options)


@pytest.mark.parametrize("planner", [plan_harpagon, plan_optimal])
def test_infeasible_slo_names_module_minimums(make_app, make_profiles, make_hardware, planner):
    app = make_app([("det", "det", 1.0), ("cls", "cls")], [("det", "cls")], rate=100.0, slo_ms=5.0)
    profiles = make_profiles(PROFILES)
    # At 100 req/s one small worker carries each module, so the fastest groups have
    # 1 + 4 workers: det 1 + 5 + 5 / 5 = 7 ms, cls 2 + 2 / 5 = 2.4 ms.
    with pytest.raises(InfeasiblePlan, match=r"path det -> cls .*det 7 ms, cls 2\.4 ms") as info:
        planner(app, profiles, make_hardware(PRICES))
    assert "raise slo_ms" in str(info.value)


@pytest.mark.parametrize("planner", [plan_harpagon, plan_optimal])
def test_unknown_profile_raises_config_error(make_app, make_profiles, make_hardware, planner):
    app = make_app([("det", "nope")])
    with pytest.raises(ConfigError, match="unknown profile 'nope'; known profiles: cls, det"):
        planner(app, make_profiles(PROFILES), make_hardware(PRICES))


@pytest.mark.parametrize("planner", [plan_harpagon, plan_optimal])
def test_quota_respected(make_app, make_profiles, make_hardware, planner):
    app = make_app(
        [("det", "det", 1.0), ("cls", "cls", 0.5, 2.0)], [("det", "cls")], rate=450.0, slo_ms=150.0
    )
    hardware = make_hardware(PRICES, {"small": 1, "big": 3})
    plan = planner(app, make_profiles(PROFILES), hardware)
    used: dict[str, int] = {}
    for module in plan.modules:
        for group in module.groups:
            used[group.hardware] = used.get(group.hardware, 0) + group.workers
    assert used.get("small", 0) <= 1
    assert used.get("big", 0) <= 3


@pytest.mark.parametrize("planner", [plan_harpagon, plan_optimal])
def test_small_quota_names_workers(make_app, make_profiles, make_hardware, planner):
    # The detector needs 1000 / 400 -> 3 big workers (or small ones, quota 0).
    app = make_app([("det", "det")], rate=1000.0, slo_ms=500.0)
    hardware = make_hardware(PRICES, {"big": 2, "small": 0})
    with pytest.raises(InfeasiblePlan, match=r"module 'det' .*needs 3 x big \(quota 2\)"):
        planner(app, make_profiles(PROFILES), hardware)


def test_joint_quota_names_hardware(make_app, make_profiles, make_hardware):
    # Each module alone fits in 2 big workers, both together need 4 against a quota of 3.
    app = make_app([("a", "det"), ("b", "det")], [("a", "b")], rate=700.0, slo_ms=500.0)
    hardware = make_hardware({"big": 1.0}, {"big": 3})
    for planner in (plan_harpagon, plan_optimal):
        with pytest.raises(InfeasiblePlan, match=r"big: 4 workers needed, quota 3"):
            planner(app, make_profiles({"det": {"big": {16: 40.0}}}), hardware)


def test_round_robin_option(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware, dispatch="round_robin", policy="harpagon-rr")
    assert plan.policy == "harpagon-rr"
    assert {g.dispatch for m in plan.modules for g in m.groups} == {"round_robin"}
    validate_plan(plan, app, profiles, hardware)


def test_single_group_option(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware, two_groups=False)
    assert all(len(m.groups) == 1 for m in plan.modules)
    assert plan.cost_per_hour >= plan_harpagon(app, profiles, hardware).cost_per_hour


def test_no_dummies_option(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware, dummies=False)
    assert all(g.dummy_rate == 0.0 for m in plan.modules for g in m.groups)
    validate_plan(plan, app, profiles, hardware)


def test_even_split_option_budgets(inputs):
    app, profiles, hardware = inputs
    plan = plan_harpagon(app, profiles, hardware, split="even")
    assert [m.budget_ms for m in plan.modules] == [75.0, 75.0]
    validate_plan(plan, app, profiles, hardware)


def test_quota_repair_stuck_uses_feasible_start(make_app, make_profiles, make_hardware):
    """Freeing quota one move at a time once got stuck here and raised InfeasiblePlan.

    Starting from the fastest points, m0 and m1 rent 10 h0 workers against a quota of 5.
    After m0 moves to h1 (quota 1, already used by m2), no single move lowers the excess:
    m2 must leave h1 while m1 sheds workers. The optimum costs 2.5 USD/h.
    """
    app = make_app(
        [("m0", "p0", 0.0, 1.0), ("m1", "p1", 1.0, 2.5), ("m2", "p2", 2.5, 0.5)],
        rate=195.2335612244097, slo_ms=63.271665046524944,
    )
    profiles = make_profiles({
        "p0": {"h0": {1: 6.148192691608101, 2: 7.408971304242753, 8: 14.973642980050663},
               "h1": {4: 13.129942092064027}},
        "p1": {"h0": {4: 11.861144214293027, 16: 32.48374908758538}, "h1": {16: 35.851533155219585}},
        "p2": {"h0": {16: 15.5361720624118}, "h1": {1: 6.337076844866976}},
    })
    hardware = make_hardware({"h0": 0.7, "h1": 0.4}, {"h0": 5, "h1": 1})
    plan = plan_harpagon(app, profiles, hardware)
    validate_plan(plan, app, profiles, hardware)
    assert plan.cost_per_hour >= 2.5 - 1e-9
    assert plan_optimal(app, profiles, hardware).cost_per_hour == pytest.approx(2.5)
