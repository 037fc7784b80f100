"""Application-level splitting, the reassigner and the even split on hand-computed cases."""

from __future__ import annotations

import pytest

from harpagon.errors import InfeasiblePlan
from harpagon.model.latency import Dispatch
from harpagon.planning.frontier import (
    BatchKind,
    FrontierPoint,
    GroupChoice,
    ModuleContext,
    exact_frontier,
)
from harpagon.planning.splitting import (
    Paths,
    reassign_slack,
    split_by_efficiency,
    split_evenly,
)


def _frontier(*points: tuple[float, float], hardware: str = "gpu") -> list[FrontierPoint]:
    # Points whose group records only which hardware they rent (one worker per USD/h).
    kind = BatchKind(hardware, 1, 1.0, 1.0, None)
    return [FrontierPoint(latency, cost, (GroupChoice(kind, max(1, round(cost))),)) for latency, cost in points]


def _costs(chosen: dict[str, FrontierPoint]) -> dict[str, float]:
    return {name: point.cost_per_hour for name, point in chosen.items()}


def test_split_chain_takes_best_saving_per_ms(make_app):
    # Start at 10 + 5 ms. Steps: a to 20 ms (0.4 USD/h per ms), b to 15 ms (0.3), b to
    # 30 ms (0.2). Then a to 40 ms no longer fits. Final 20 + 30 = 50 ms at 6 + 2 USD/h.
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=50.0)
    frontiers = {
        "a": _frontier((10, 10), (20, 6), (40, 1)),
        "b": _frontier((5, 8), (15, 5), (30, 2)),
    }
    chosen = split_by_efficiency(app, frontiers)
    assert _costs(chosen) == {"a": 6, "b": 2}


def test_split_looks_past_next_point(make_app):
    # The next point saves 0.1 USD/h per ms; the one after saves 0.9 USD/h per ms.
    app = make_app([("a", "p")], slo_ms=30.0)
    chosen = split_by_efficiency(app, {"a": _frontier((10, 10), (11, 9.9), (20, 1))})
    assert chosen["a"].latency_ms == 20


def test_split_fork_join_checks_every_path(make_app):
    # a -> b -> d and a -> c -> d. c moving to 40 ms (7 USD/h over 15 ms) fills the SLO on
    # its path. b can still move to 30 ms because its path is then 50 ms.
    app = make_app(
        [("a", "p"), ("b", "p"), ("c", "p"), ("d", "p")],
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
        slo_ms=60.0,
    )
    frontiers = {
        "a": _frontier((10, 5)),
        "b": _frontier((10, 10), (30, 2), (45, 1)),
        "c": _frontier((25, 10), (40, 3), (50, 1)),
        "d": _frontier((10, 5)),
    }
    chosen = split_by_efficiency(app, frontiers)
    assert _costs(chosen) == {"a": 5, "b": 2, "c": 3, "d": 5}
    latency = {name: point.latency_ms for name, point in chosen.items()}
    assert Paths.of(app).critical_path(latency) == (60.0, ["a", "c", "d"])


def test_split_infeasible_slo_names_path(make_app):
    app = make_app(
        [("a", "p"), ("b", "p"), ("c", "p")], [("a", "b"), ("a", "c")], slo_ms=20.0
    )
    frontiers = {
        "a": _frontier((8, 5), (30, 1)),
        "b": _frontier((4.5, 5)),
        "c": _frontier((13.25, 5)),
    }
    with pytest.raises(
        InfeasiblePlan,
        match=r"SLO of 20 ms is below the fastest possible latency 21\.25 ms of path a -> c "
        r".*a 8 ms, c 13\.25 ms",
    ):
        split_by_efficiency(app, frontiers)


def test_split_moves_off_scarce_hardware(make_app):
    # Both modules are cheapest on "gpu" (2 workers each) but the quota is 3. Moving b to
    # "cpu" costs 1 USD/h more than moving a.
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=100.0)
    frontiers = {
        "a": _frontier((10, 2), hardware="gpu") + _frontier((20, 3), hardware="cpu"),
        "b": _frontier((10, 2), hardware="gpu") + _frontier((20, 4), hardware="cpu"),
    }
    frontiers = {name: sorted(points, key=lambda p: p.latency_ms) for name, points in frontiers.items()}
    chosen = split_by_efficiency(app, frontiers, {"gpu": 3})
    assert _costs(chosen) == {"a": 3, "b": 2}


def test_split_quota_too_small_names_hardware(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=100.0)
    frontiers = {"a": _frontier((10, 2)), "b": _frontier((10, 2))}
    with pytest.raises(InfeasiblePlan, match=r"gpu: 4 workers needed, quota 3"):
        split_by_efficiency(app, frontiers, {"gpu": 3})


def test_even_split_by_longest_chain(make_app):
    # a, b and d lie on a path of 3 modules, c only on paths of 2.
    app = make_app(
        [("a", "p"), ("b", "p"), ("c", "p"), ("d", "p")],
        [("a", "b"), ("b", "d"), ("a", "c")],
        slo_ms=60.0,
    )
    frontiers = {name: _frontier((5, 10), (20, 4), (30, 1)) for name in "abcd"}
    chosen, budgets = split_evenly(app, frontiers)
    assert budgets == {"a": 20.0, "b": 20.0, "d": 20.0, "c": 30.0}
    assert _costs(chosen) == {"a": 4, "b": 4, "c": 1, "d": 4}


def test_even_split_share_too_small(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=30.0)
    frontiers = {"a": _frontier((20, 1)), "b": _frontier((5, 1))}
    with pytest.raises(InfeasiblePlan, match="gives module 'a' 15 ms, but it needs at least 20 ms"):
        split_evenly(app, frontiers)


def _padded_contexts() -> dict[str, ModuleContext]:
    # a: b = 4, d = 20 ms (T = 200 req/s) at 100 req/s: fastest 40 ms with 100 req/s of
    #    padding (share 0.5); no padding needed from 20 + 1000 * 4 / 100 = 60 ms.
    # b: b = 2, d = 8 ms (T = 250 req/s): fastest 16 ms with share 0.6; none from 28 ms.
    return {
        "a": ModuleContext("a", 100.0, 0.0, 0.0, Dispatch.BATCH_AWARE, (BatchKind("gpu", 4, 20.0, 1.0, None),)),
        "b": ModuleContext("b", 100.0, 0.0, 0.0, Dispatch.BATCH_AWARE, (BatchKind("gpu", 2, 8.0, 1.0, None),)),
    }


def test_reassign_most_padded_first(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=70.0)
    contexts = _padded_contexts()
    frontiers = {name: exact_frontier(ctx) for name, ctx in contexts.items()}
    chosen = {name: points[-1] for name, points in frontiers.items()}
    assert chosen["a"].latency_ms == pytest.approx(40.0)
    assert chosen["b"].latency_ms == pytest.approx(16.0)

    # b (share 0.6) goes first and takes 12 of the 14 ms of slack, up to 28 ms where it
    # needs no padding. Then a takes the 2 ms left.
    points, budgets = reassign_slack(app, chosen, frontiers, contexts)
    assert points == chosen
    assert budgets["b"] == pytest.approx(28.0)
    assert budgets["a"] == pytest.approx(42.0)


def test_reassign_takes_cheaper_point(make_app):
    app = make_app([("a", "p"), ("b", "p")], [("a", "b")], slo_ms=100.0)
    contexts = _padded_contexts()
    frontiers = {name: exact_frontier(ctx) for name, ctx in contexts.items()}
    fastest = {name: points[0] for name, points in frontiers.items()}
    points, budgets = reassign_slack(app, fastest, frontiers, contexts)
    assert {name: p.cost_per_hour for name, p in points.items()} == {"a": 1.0, "b": 1.0}
    assert budgets["a"] + budgets["b"] <= 100.0 + 1e-9
