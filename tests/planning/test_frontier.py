"""Module-level scheduling: frontiers and the dummy generator on hand-computed cases."""

from __future__ import annotations

import pytest

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model.latency import Dispatch
from harpagon.planning.frontier import (
    BatchKind,
    FrontierPoint,
    GroupChoice,
    ModuleContext,
    exact_frontier,
    harpagon_frontier,
    module_context,
    realize_groups,
)

# Kind "big": b = 16, d = 40 ms, so T = 400 req/s for 1 USD/h (400 req/s per dollar).
BIG = BatchKind("big", 16, 40.0, 1.0, None)
# Kind "small": b = 1, d = 5 ms, so T = 200 req/s for 0.8 USD/h (250 req/s per dollar).
SMALL = BatchKind("small", 1, 5.0, 0.8, None)


def _context(rate: float, kinds=(BIG, SMALL), overhead_ms: float = 0.0, shaping_ms: float = 0.0,
             dispatch: Dispatch = Dispatch.BATCH_AWARE) -> ModuleContext:
    return ModuleContext("m", rate, overhead_ms, shaping_ms, dispatch, tuple(kinds))


def _summary(points: list[FrontierPoint]) -> list[tuple[float, float, str]]:
    return [(round(p.latency_ms, 4), round(p.cost_per_hour, 4), p.describe()) for p in points]


# At 450 req/s, one "big" worker carries at most 400 * 16 / (16 + 400 / 450) = 378.95 req/s
# as a main group, which leaves 71.05 req/s. One "small" worker carries up to
# 200 / (1 + 200 / 450) = 138.46 req/s as a residual group. The pair costs 1.8 USD/h at
# latency max(40 + 40, 5 + 5) = 80 ms. Single groups: "big" needs 2 workers (60 ms, 2 USD/h),
# "small" 3 workers (5 + 5 / 3 = 6.667 ms, 2.4 USD/h) and up to 7 (5 + 5 / 7 ms, 5.6 USD/h).
EXPECTED_450 = [
    (round(5 + 5 / 7, 4), 5.6, "7 x small b1"),
    (round(5 + 5 / 6, 4), 4.8, "6 x small b1"),
    (6.0, 4.0, "5 x small b1"),
    (6.25, 3.2, "4 x small b1"),
    (round(5 + 5 / 3, 4), 2.4, "3 x small b1"),
    (60.0, 2.0, "2 x big b16"),
    (80.0, 1.8, "1 x big b16 + 1 x small b1"),
]


def test_exact_frontier_hand_computed():
    assert _summary(exact_frontier(_context(450.0))) == EXPECTED_450


def test_harpagon_frontier_hand_computed():
    assert _summary(harpagon_frontier(_context(450.0))) == EXPECTED_450


def test_frontier_adds_shaping_and_overhead():
    points = exact_frontier(_context(450.0, overhead_ms=2.0, shaping_ms=3.0))
    assert points[-1].latency_ms == pytest.approx(85.0)
    assert points[0].latency_ms == pytest.approx(5 + 5 / 7 + 5.0)


def test_frontier_single_group_only():
    points = harpagon_frontier(_context(450.0), two_groups=False)
    assert all(len(p.groups) == 1 for p in points)
    assert points[-1].cost_per_hour == pytest.approx(2.0)


def test_frontier_without_dummies():
    # Without padding a group collects 450 req/s: "big" b16 waits 1000 * 16 / 450 ms.
    points = harpagon_frontier(_context(450.0), dummies=False)
    by_kind = {p.groups[0].kind.hardware: p for p in points}
    assert by_kind["big"].latency_ms == pytest.approx(40 + 16000 / 450)
    assert by_kind["big"].groups[0].workers == 2
    assert by_kind["small"].latency_ms == pytest.approx(5 + 1000 / 450)
    assert by_kind["small"].groups[0].workers == 3


def test_round_robin_two_batch_latency():
    # Round-robin at full padding waits n * d / n = d, whatever the worker count.
    points = exact_frontier(_context(450.0, kinds=(BIG,), dispatch=Dispatch.ROUND_ROBIN))
    assert _summary(points) == [(80.0, 2.0, "2 x big b16")]


def test_frontier_respects_quota():
    small = BatchKind("small", 1, 5.0, 0.8, 4)
    points = exact_frontier(_context(450.0, kinds=(BIG, small)))
    assert all(p.workers_by_hardware().get("small", 0) <= 4 for p in points)
    assert (6.25, 3.2, "4 x small b1") in _summary(points)
    assert (6.0, 4.0, "5 x small b1") not in _summary(points)


def test_quota_keeps_other_hardware_point():
    # With a quota on "small", the 1.8 USD/h pair and the 2 USD/h "big" pair of workers
    # both stay: the second rents no "small" worker.
    small = BatchKind("small", 1, 5.0, 0.8, 4)
    points = exact_frontier(_context(450.0, kinds=(BIG, small)))
    summary = _summary(points)
    assert (60.0, 2.0, "2 x big b16") in summary
    assert (80.0, 1.8, "1 x big b16 + 1 x small b1") in summary
    # A 3 USD/h group of 3 "big" workers is slower than 3 "small" workers, which rent
    # "small" quota: it is kept only because it rents none.
    assert (round(40 + 40 / 3, 4), 3.0, "3 x big b16") in summary


def test_realize_pair_rates_and_dummies():
    point = exact_frontier(_context(450.0))[-1]
    main, residual = realize_groups(point, _context(450.0), 80.0)
    main_rate = 400 * 16 / (16 + 400 / 450)
    assert main.hardware == "big"
    assert main.rate == pytest.approx(main_rate)
    assert main.collection_rate == pytest.approx(400.0)
    assert main.latency_ms == pytest.approx(80.0)
    residual_rate = 450 - main_rate
    share = residual_rate / 450
    # The overflow bound w >= r b / (b - share) is above the latency bound 1000 / 75.
    assert residual.rate == pytest.approx(residual_rate)
    assert residual.collection_rate == pytest.approx(residual_rate / (1 - share))
    assert residual.dummy_rate == pytest.approx(residual_rate / (1 - share) - residual_rate)


def test_realize_single_pads_for_budget():
    point = FrontierPoint(60.0, 2.0, (GroupChoice(BIG, 2),))
    ctx = _context(450.0)
    (relaxed,) = realize_groups(point, ctx, 100.0)
    # At 100 ms the period may be 60 ms: 16000 / 60 = 266.7 req/s < 450, no padding.
    assert relaxed.dummy_rate == 0.0
    assert relaxed.latency_ms == pytest.approx(40 + 16000 / 450)
    (tight,) = realize_groups(point, ctx, 60.0)
    # At 60 ms the period must be 20 ms: 800 req/s, so 350 req/s of padding.
    assert tight.dummy_rate == pytest.approx(350.0)
    assert tight.latency_ms == pytest.approx(60.0)


def test_realize_below_lowest_latency_raises():
    point = FrontierPoint(60.0, 2.0, (GroupChoice(BIG, 2),))
    with pytest.raises(ValueError, match="cannot meet a budget of 50 ms|needs .* more than its capacity"):
        realize_groups(point, _context(450.0), 50.0)


def test_context_skips_hardware_missing_from_catalog(make_profiles, make_hardware):
    profiles = make_profiles({"p": {"tpu": {1: 2.0}, "t4": {1: 3.0, 4: 6.0}}})
    ctx = module_context(
        name="m", rate=10.0, overhead_ms=0.0, shaping_ms=0.0,
        profile=profiles["p"], hardware=make_hardware({"t4": 0.5}),
    )
    assert [(kind.hardware, kind.batch_size) for kind in ctx.kinds] == [("t4", 1), ("t4", 4)]


def test_context_without_catalog_hardware_raises(make_profiles, make_hardware):
    profiles = make_profiles({"p": {"tpu": {1: 2.0}}})
    with pytest.raises(
        ConfigError,
        match=r"module 'm' has no hardware type left in the catalog: field 'latency_ms' of "
        r"model 'p' lists hardware tpu, and the hardware catalog .* offers only t4",
    ):
        module_context(
            name="m", rate=10.0, overhead_ms=0.0, shaping_ms=0.0,
            profile=profiles["p"], hardware=make_hardware({"t4": 0.5}),
        )


def test_context_skips_uncatalogued_hardware(make_profiles, make_hardware):
    profiles = make_profiles({"p": {"tpu": {1: 2.0}, "t4": {1: 3.0, 4: 9.0}}})
    ctx = module_context(
        name="m", rate=10.0, overhead_ms=0.0, shaping_ms=0.0,
        profile=profiles["p"], hardware=make_hardware({"t4": 0.5}),
    )
    assert [(k.hardware, k.batch_size) for k in ctx.kinds] == [("t4", 1), ("t4", 4)]


def test_context_all_quotas_zero_raises(make_profiles, make_hardware):
    profiles = make_profiles({"p": {"t4": {1: 3.0}}})
    with pytest.raises(InfeasiblePlan, match=r"module 'm': every hardware type .* has quota 0 \(t4\)"):
        module_context(
            name="m", rate=10.0, overhead_ms=0.0, shaping_ms=0.0,
            profile=profiles["p"], hardware=make_hardware({"t4": 0.5}, {"t4": 0}),
        )
