"""Tests of the plan builder and validator: a valid plan recomputed by hand, then one test per rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harpagon.errors import InvalidPlan
from harpagon.model import (
    Application,
    Group,
    HardwareCatalog,
    HardwareType,
    Module,
    ModulePlan,
    Plan,
    Profile,
    ProfileSet,
    make_group,
    make_module_plan,
    make_plan,
    validate_plan,
)

HARDWARE = HardwareCatalog(
    {"t4": HardwareType("t4", 0.5), "v100": HardwareType("v100", 2.0)}, "catalog.yaml"
)
PROFILES = ProfileSet(
    {
        "det": Profile("det", {"t4": {1: 10.0, 4: 20.0}, "v100": {1: 5.0, 8: 20.0}}),
        "cls": Profile("cls", {"t4": {1: 2.0, 8: 8.0}, "v100": {8: 4.0}}),
    }
)
# A detector feeding a classifier with 2 requests per frame.
APP = Application(
    name="pipeline",
    rate=100.0,
    slo_ms=200.0,
    modules=(Module("det", "det", overhead_ms=2.0), Module("cls", "cls", overhead_ms=1.0, rate_factor=2.0)),
    edges=(("det", "cls"),),
)


def hand_plan() -> Plan:
    """Return a valid plan written out with hand-computed figures.

    det: 1 x v100 at batch 8 (capacity 400 req/s), 100 req/s, period 80 ms,
    latency 2 + 20 + 80 = 102 ms. cls: 1 x t4 at batch 8 (capacity 1000 req/s),
    200 real + 200 dummy req/s, period 20 ms, latency 1 + 8 + 20 = 29 ms, plus shaping
    10 - 5 = 5 ms for fan-out 2 at 100 req/s: 34 ms. End to end 136 ms, cost 2.5 USD/h.
    """
    det = ModulePlan(
        name="det", profile="det", rate=100.0, budget_ms=120.0, latency_ms=102.0,
        cost_per_hour=2.0, shaping_ms=0.0,
        groups=(Group("v100", 8, 1, 100.0, 0.0, "batch_aware", 102.0),),
    )
    cls = ModulePlan(
        name="cls", profile="cls", rate=200.0, budget_ms=80.0, latency_ms=34.0,
        cost_per_hour=0.5, shaping_ms=5.0,
        groups=(Group("t4", 8, 1, 200.0, 200.0, "batch_aware", 29.0),),
    )
    return Plan(
        app="pipeline", policy="manual", rate=100.0, slo_ms=200.0, cost_per_hour=2.5,
        latency_ms=136.0, planning_ms=0.0, modules=(det, cls),
    )


def build_plan(
    det_groups: list[dict], cls_groups: list[dict], *, app: Application = APP,
    hardware: HardwareCatalog = HARDWARE, det_budget_ms: float = 120.0,
    cls_budget_ms: float = 80.0,
) -> Plan:
    """Return a plan whose derived figures come from the shared builders."""
    def groups(module: str, specs: list[dict]) -> list[Group]:
        profile = PROFILES[app.module(module).profile]
        return [
            make_group(
                **spec,
                dispatch="batch_aware",
                overhead_ms=app.module(module).overhead_ms,
                batch_latency_ms=profile.batch_latency_ms(spec["hardware"], spec["batch_size"]),
            )
            for spec in specs
        ]

    modules = [
        make_module_plan(app, "det", groups("det", det_groups), hardware, budget_ms=det_budget_ms),
        make_module_plan(app, "cls", groups("cls", cls_groups), hardware, budget_ms=cls_budget_ms),
    ]
    return make_plan(app, modules, hardware, policy="manual", planning_ms=0.0)


DET_V100 = dict(hardware="v100", batch_size=8, workers=1, rate=100.0, dummy_rate=0.0)
CLS_T4 = dict(hardware="t4", batch_size=8, workers=1, rate=200.0, dummy_rate=200.0)


def test_hand_plan_is_valid():
    check = validate_plan(hand_plan(), APP, PROFILES, HARDWARE)

    assert check.cost_per_hour == pytest.approx(2.5)
    assert check.latency_ms == pytest.approx(136.0)
    assert check.critical_path == ("det", "cls")
    assert check.module_latency_ms == pytest.approx({"det": 102.0, "cls": 34.0})
    assert check.start_ms == pytest.approx({"det": 0.0, "cls": 102.0})


def test_builders_reproduce_hand_plan():
    built = build_plan([DET_V100], [CLS_T4])

    assert built == hand_plan()


def test_two_groups_above_overflow_bound_valid():
    # Shares 0.75 and 0.25 need w >= 150 * 8 / 7.25 and w >= 50 * 8 / 7.75.
    plan = build_plan(
        [DET_V100],
        [
            dict(hardware="t4", batch_size=8, workers=1, rate=150.0, dummy_rate=16.0),
            dict(hardware="v100", batch_size=8, workers=1, rate=50.0, dummy_rate=70.0),
        ],
    )

    check = validate_plan(plan, APP, PROFILES, HARDWARE)

    # t4 group: 1 + 8 + 8000/166 ms; v100 group: 1 + 4 + 8000/120 ms; shaping 5 ms.
    expected_cls_ms = 5.0 + max(1 + 8 + 8000 / 166, 1 + 4 + 8000 / 120)
    assert check.module_latency_ms["cls"] == pytest.approx(expected_cls_ms)
    assert check.cost_per_hour == pytest.approx(2.0 + 0.5 + 2.0)


def test_over_capacity_rejected():
    det = dict(DET_V100, dummy_rate=350.0)
    plan = build_plan([det], [CLS_T4])

    with pytest.raises(InvalidPlan, match=r"module det group 0: collection rate 450 req/s exceeds the capacity 400 req/s"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_under_overflow_bound_with_two_groups():
    plan = build_plan(
        [DET_V100],
        [
            dict(hardware="t4", batch_size=8, workers=1, rate=150.0, dummy_rate=0.0),
            dict(hardware="v100", batch_size=8, workers=1, rate=50.0, dummy_rate=70.0),
        ],
    )

    with pytest.raises(InvalidPlan, match=r"module cls group 0: collection rate 150 req/s is below 165\.517"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_one_group_needs_no_overflow_slack():
    cls = dict(CLS_T4, dummy_rate=0.0)
    plan = build_plan([DET_V100], [cls], det_budget_ms=102.0, cls_budget_ms=98.0)

    check = validate_plan(plan, APP, PROFILES, HARDWARE)

    assert check.module_latency_ms["cls"] == pytest.approx(5.0 + 1 + 8 + 40)


def test_rate_not_conserved():
    cls = dict(CLS_T4, rate=180.0, dummy_rate=220.0)
    plan = build_plan([DET_V100], [cls])

    with pytest.raises(InvalidPlan, match=r"module cls: groups carry 180 req/s, module rate is 200"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_wrong_group_latency():
    plan = hand_plan()
    det = plan.modules[0]
    det = replace(det, groups=(replace(det.groups[0], latency_ms=90.0),))
    plan = replace(plan, modules=(det, plan.modules[1]))

    with pytest.raises(InvalidPlan, match=r"module det group 0: latency_ms is 90, the model gives 102"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_wrong_plan_latency():
    plan = replace(hand_plan(), latency_ms=120.0)

    with pytest.raises(InvalidPlan, match=r"plan latency_ms is 120, the model gives 136"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_slo_exceeded():
    app = APP.with_overrides(slo_ms=130.0)
    plan = build_plan([DET_V100], [CLS_T4], app=app, det_budget_ms=102.0, cls_budget_ms=28.0)

    with pytest.raises(InvalidPlan, match=r"end-to-end latency 136 ms on path det -> cls exceeds the SLO 130 ms"):
        validate_plan(plan, app, PROFILES, HARDWARE)


def test_budget_exceeded():
    plan = build_plan([DET_V100], [CLS_T4], det_budget_ms=90.0)

    with pytest.raises(InvalidPlan, match=r"module det: latency 102 ms exceeds its budget 90 ms"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_budgets_above_slo():
    plan = build_plan([DET_V100], [CLS_T4], det_budget_ms=150.0, cls_budget_ms=60.0)

    with pytest.raises(InvalidPlan, match=r"budgets on path det -> cls add up to 210 ms, above the SLO"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_quota_exceeded():
    limited = HardwareCatalog(
        {"t4": HardwareType("t4", 0.5), "v100": HardwareType("v100", 2.0, available=1)}
    )
    det = dict(DET_V100, workers=2)
    plan = build_plan([det], [CLS_T4], hardware=limited)

    with pytest.raises(InvalidPlan, match=r"hardware v100: plan uses 2 workers, quota is 1"):
        validate_plan(plan, APP, PROFILES, limited)


def test_wrong_plan_cost():
    plan = replace(hand_plan(), cost_per_hour=2.0)

    with pytest.raises(InvalidPlan, match=r"plan cost_per_hour is 2, the model gives 2\.5"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_wrong_module_cost():
    plan = hand_plan()
    plan = replace(plan, modules=(replace(plan.modules[0], cost_per_hour=4.0), plan.modules[1]))

    with pytest.raises(InvalidPlan, match=r"module det: cost_per_hour is 4, the groups cost 2"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_unknown_hardware():
    plan = hand_plan()
    det = plan.modules[0]
    det = replace(det, groups=(replace(det.groups[0], hardware="h100"),))
    plan = replace(plan, modules=(det, plan.modules[1]))

    with pytest.raises(InvalidPlan, match=r"module det group 0: unknown hardware 'h100'"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_batch_not_profiled():
    plan = hand_plan()
    det = plan.modules[0]
    det = replace(det, groups=(replace(det.groups[0], batch_size=4),))
    plan = replace(plan, modules=(det, plan.modules[1]))

    with pytest.raises(InvalidPlan, match=r"model 'det' is not profiled on v100 at batch size 4"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_three_groups_rejected():
    plan = build_plan(
        [DET_V100],
        [
            dict(hardware="t4", batch_size=8, workers=1, rate=100.0, dummy_rate=40.0),
            dict(hardware="t4", batch_size=8, workers=1, rate=50.0, dummy_rate=80.0),
            dict(hardware="v100", batch_size=8, workers=1, rate=50.0, dummy_rate=70.0),
        ],
    )

    with pytest.raises(InvalidPlan, match=r"module cls: 3 groups, the model allows 2") as raised:
        validate_plan(plan, APP, PROFILES, HARDWARE)

    assert len(raised.value.problems) == 1


def test_wrong_shaping_delay():
    plan = hand_plan()
    cls = replace(plan.modules[1], shaping_ms=0.0, latency_ms=29.0)
    plan = replace(plan, modules=(plan.modules[0], cls), latency_ms=131.0)

    with pytest.raises(InvalidPlan, match=r"module cls: shaping_ms is 0, the model gives 5"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_missing_module_rejected():
    plan = hand_plan()
    plan = replace(plan, modules=plan.modules[:1])

    with pytest.raises(InvalidPlan, match=r"plan modules \['det'\] differ from application modules \['cls', 'det'\]"):
        validate_plan(plan, APP, PROFILES, HARDWARE)


def test_every_problem_listed():
    plan = replace(hand_plan(), cost_per_hour=9.0, latency_ms=1.0)

    with pytest.raises(InvalidPlan) as raised:
        validate_plan(plan, APP, PROFILES, HARDWARE)

    assert len(raised.value.problems) == 2
    assert raised.value.problems[0].startswith("plan latency_ms is 1")
    assert raised.value.problems[1].startswith("plan cost_per_hour is 9")
