"""The optimal planner: the MILP choice of frontier points on hand-computed cases."""

from __future__ import annotations

from itertools import product

import pytest

from harpagon.errors import InfeasiblePlan
from harpagon.model import validate_plan
from harpagon.planning.frontier import BatchKind, FrontierPoint, GroupChoice
from harpagon.planning.optimal import choose_points, plan_optimal
from harpagon.planning.splitting import Paths, split_by_efficiency


def _frontier(*points: tuple[float, float], hardware: str = "gpu") -> list[FrontierPoint]:
    kind = BatchKind(hardware, 1, 1.0, 1.0, None)
    return [FrontierPoint(latency, cost, (GroupChoice(kind, max(1, round(cost))),)) for latency, cost in points]


def test_choose_points_beats_greedy_trap(make_app):
    # Greedy takes a to 20 ms first (0.6 USD/h per ms), after which b cannot reach 28 ms:
    # 4 + 10 = 14 USD/h. Keeping a at 10 ms and moving b costs 10 + 1 = 11 USD/h.
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=40.0)
    frontiers = {"a": _frontier((10, 10), (20, 4)), "b": _frontier((10, 10), (28, 1))}
    greedy = split_by_efficiency(app, frontiers)
    assert sum(p.cost_per_hour for p in greedy.values()) == 14
    chosen = choose_points(app, frontiers, {})
    assert {name: p.cost_per_hour for name, p in chosen.items()} == {"a": 10, "b": 1}


def test_choose_points_fork_join(make_app):
    app = make_app(
        [("a", "p"), ("b", "p"), ("c", "p"), ("d", "p")],
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
        slo_ms=70.0,
    )
    frontiers = {
        "a": _frontier((5, 9), (15, 4), (30, 1)),
        "b": _frontier((10, 10), (30, 2), (45, 1)),
        "c": _frontier((25, 10), (40, 3), (50, 1)),
        "d": _frontier((10, 5), (20, 2)),
    }
    paths = Paths.of(app)
    best = min(
        sum(p.cost_per_hour for p in combo)
        for combo in product(*(frontiers[name] for name in "abcd"))
        if paths.critical_path({name: p.latency_ms for name, p in zip("abcd", combo)})[0] <= 70.0
    )
    chosen = choose_points(app, frontiers, {})
    assert sum(p.cost_per_hour for p in chosen.values()) == best
    latency = {name: p.latency_ms for name, p in chosen.items()}
    assert paths.critical_path(latency)[0] <= 70.0


def test_choose_points_respects_quota(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=100.0)
    frontiers = {
        "a": _frontier((10, 2), hardware="gpu") + _frontier((20, 3), hardware="cpu"),
        "b": _frontier((10, 2), hardware="gpu") + _frontier((20, 4), hardware="cpu"),
    }
    chosen = choose_points(app, frontiers, {"gpu": 3})
    assert {name: p.cost_per_hour for name, p in chosen.items()} == {"a": 3, "b": 2}


def test_choose_points_joint_quota_infeasible(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=100.0)
    frontiers = {"a": _frontier((10, 2)), "b": _frontier((10, 2))}
    with pytest.raises(InfeasiblePlan, match=r"gpu: 4 workers needed, quota 3"):
        choose_points(app, frontiers, {"gpu": 3})


def test_optimal_chain_hand_computed(make_app, make_profiles, make_hardware):
    # Each module alone: 1 big + 1 small worker (1.8 USD/h) at 80 ms, or 2 big workers
    # (2 USD/h) at 60 ms. With 140 ms for both, one module must take the 60 ms option.
    profiles = make_profiles({"p": {"big": {16: 40.0}, "small": {1: 5.0}}})
    hardware = make_hardware({"big": 1.0, "small": 0.8})
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], rate=450.0, slo_ms=140.0)
    plan = plan_optimal(app, profiles, hardware)
    assert plan.cost_per_hour == pytest.approx(3.8)
    check = validate_plan(plan, app, profiles, hardware)
    assert check.latency_ms == pytest.approx(140.0)
