"""Tests of the Scrooge baseline: per-module options, the exact split, validity."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model import (
    Application,
    HardwareCatalog,
    HardwareType,
    Module,
    Profile,
    ProfileSet,
    validate_plan,
)
from harpagon.planning.baselines.scrooge import module_options, plan_scrooge

CATALOG = HardwareCatalog({"cheap": HardwareType("cheap", 1.0), "fast": HardwareType("fast", 3.0)})
PROFILES = ProfileSet({
    "p": Profile("p", {"cheap": {1: 10.0, 4: 20.0, 16: 60.0}, "fast": {1: 3.0, 4: 6.0, 16: 16.0}}),
    "q": Profile("q", {"cheap": {1: 8.0, 2: 12.0, 8: 40.0}}),
})


def test_option_round_robin_latency_hand_computed():
    app = Application("one", 100.0, 1000.0, (Module("m", "p", 2.0),))
    options = module_options(app, "m", PROFILES, CATALOG, pareto=False)
    by_key = {(o.hardware, o.batch_size): o for o in options}
    # cheap, b = 4: T = 200 req/s, n = 1; latency = 2 + 20 + 1000 * 1 * 4 / 100 = 62 ms.
    assert by_key[("cheap", 4)].workers == 1
    assert by_key[("cheap", 4)].latency_ms == pytest.approx(62.0)
    assert by_key[("cheap", 4)].cost_per_hour == pytest.approx(1.0)


def test_option_workers_ceil_rate_over_throughput():
    app = Application("one", 450.0, 1000.0, (Module("m", "p"),))
    options = module_options(app, "m", PROFILES, CATALOG, pareto=False)
    by_key = {(o.hardware, o.batch_size): o for o in options}
    # cheap, b = 4: T = 200 req/s, so ceil(450 / 200) = 3 workers; latency 20 + 3 * 4000 / 450.
    assert by_key[("cheap", 4)].workers == 3
    assert by_key[("cheap", 4)].latency_ms == pytest.approx(20.0 + 12000.0 / 450.0)


def test_options_are_pareto_front():
    app = Application("one", 450.0, 1000.0, (Module("m", "p"),))
    options = module_options(app, "m", PROFILES, CATALOG)
    latencies = [o.latency_ms for o in options]
    costs = [o.cost_per_hour for o in options]
    assert latencies == sorted(latencies)
    assert all(a > b for a, b in zip(costs, costs[1:]))


def brute_force_cost(app: Application) -> float:
    options = {m: module_options(app, m, PROFILES, CATALOG) for m in app.topological_order}
    best = float("inf")
    for choice in itertools.product(*options.values()):
        chosen = dict(zip(options, choice))
        latency, _ = app.critical_path({m: o.latency_ms for m, o in chosen.items()})
        if latency <= app.slo_ms:
            best = min(best, sum(o.cost_per_hour for o in chosen.values()))
    return best


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(20.0, 800.0),
    slo_ms=st.floats(30.0, 400.0),
    factors=st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=3),
)
def test_exact_split_equals_brute_force_on_chain(rate, slo_ms, factors):
    modules = tuple(Module(f"m{i}", "p", 1.0, f) for i, f in enumerate(factors))
    edges = tuple((f"m{i}", f"m{i + 1}") for i in range(len(factors) - 1))
    app = Application("chain", rate, slo_ms, modules, edges)
    expected = brute_force_cost(app)
    if expected == float("inf"):
        with pytest.raises(InfeasiblePlan):
            plan_scrooge(app, PROFILES, CATALOG)
        return
    plan = plan_scrooge(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    assert plan.cost_per_hour == pytest.approx(expected)


def test_exact_split_on_diamond_equals_brute_force():
    modules = tuple(Module(n, "p", 1.0) for n in "abcd")
    edges = (("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"))
    app = Application("diamond", 300.0, 120.0, modules, edges)
    plan = plan_scrooge(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    assert plan.cost_per_hour == pytest.approx(brute_force_cost(app))


def test_plan_single_round_robin_group_per_module():
    app = Application("two", 300.0, 200.0, (Module("a", "p"), Module("b", "q")), (("a", "b"),))
    plan = plan_scrooge(app, PROFILES, CATALOG)
    validate_plan(plan, app, PROFILES, CATALOG)
    for module in plan.modules:
        assert len(module.groups) == 1
        assert module.groups[0].dispatch == "round_robin"
        assert module.groups[0].dummy_rate == 0.0


def test_plan_respects_quota():
    limited = HardwareCatalog({
        "cheap": HardwareType("cheap", 1.0, available=1),
        "fast": HardwareType("fast", 3.0),
    })
    app = Application("two", 150.0, 200.0, (Module("a", "p"), Module("b", "p")), (("a", "b"),))
    plan = plan_scrooge(app, PROFILES, limited)
    validate_plan(plan, app, PROFILES, limited)
    assert sum(g.workers for m in plan.modules for g in m.groups if g.hardware == "cheap") <= 1


def test_plan_tight_slo_infeasible():
    app = Application("one", 100.0, 5.0, (Module("m", "p"),))
    with pytest.raises(InfeasiblePlan, match="no single \\(hardware, batch size\\) per module"):
        plan_scrooge(app, PROFILES, CATALOG)


def test_plan_unprofiled_module_infeasible():
    catalog = HardwareCatalog({"fast": HardwareType("fast", 3.0)})
    app = Application("one", 100.0, 500.0, (Module("m", "q"),))
    with pytest.raises(InfeasiblePlan, match="not profiled on any hardware type"):
        plan_scrooge(app, PROFILES, catalog)


def test_plan_negative_headroom_rejected():
    app = Application("one", 100.0, 500.0, (Module("m", "p"),))
    with pytest.raises(ConfigError, match="headroom must be a fraction >= 0.*got -0.5"):
        plan_scrooge(app, PROFILES, CATALOG, headroom=-0.5)
