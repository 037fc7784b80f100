"""Tests of the Nexus baseline: batch rules, squishy bin packing, the DP split, validity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import ConfigError, InfeasiblePlan, InvalidPlan
from harpagon.model import (
    Application,
    HardwareCatalog,
    HardwareType,
    Module,
    Profile,
    ProfileSet,
    SharedMachine,
    SharedMember,
    make_group,
    make_module_plan,
    make_plan,
    validate_plan,
)
from harpagon.planning.baselines.nexus import (
    Residual,
    module_config,
    pack_residuals,
    plan_nexus,
    split_budgets,
)

LATENCIES = {1: 10.0, 2: 15.0, 4: 25.0, 8: 45.0}


def one_module_app(rate: float, slo_ms: float, overhead_ms: float = 0.0) -> Application:
    return Application("one", rate, slo_ms, (Module("m", "p", overhead_ms),))


def test_saturated_batch_largest_within_budget():
    # 2 d(b) <= 60 holds for b = 1, 2, 4 (d = 25) and fails for b = 8 (d = 45).
    config = module_config(one_module_app(400.0, 60.0), "m", LATENCIES, 60.0)
    assert config is not None
    assert config.batch_size == 4
    # T(4) = 160 req/s, so floor(400 / 160) = 2 saturated workers.
    assert config.workers == 2


def test_overhead_counts_against_saturated_rule():
    # With o = 12 the room is 48 ms: 2 d <= 48 allows b = 2 (d = 15) but not b = 4.
    config = module_config(one_module_app(400.0, 60.0, 12.0), "m", LATENCIES, 60.0)
    assert config is not None
    assert config.batch_size == 2


def test_main_rate_leaves_two_way_split_slack():
    config = module_config(one_module_app(400.0, 60.0), "m", LATENCIES, 60.0)
    assert config is not None
    # r_main <= n T / (1 + T / (r b)) = 320 / (1 + 160 / 1600) = 320 / 1.1.
    assert config.main_rate == pytest.approx(320.0 / 1.1)
    assert config.residual is not None
    assert config.residual.rate == pytest.approx(400.0 - 320.0 / 1.1)


def test_residual_batch_is_largest_that_fills_in_budget():
    config = module_config(one_module_app(400.0, 60.0), "m", LATENCIES, 60.0)
    assert config is not None and config.residual is not None
    residual_rate = 400.0 - 320.0 / 1.1
    slack = residual_rate / 400.0
    # Cycle 1000 (b - s) / r_res: b = 4 gives 25 + 34.2 <= 60 ms; b = 8 gives 45 + 70.8.
    assert config.residual.slack == pytest.approx(slack)
    assert config.residual.batch_size == 4
    cycle_ms = 1000.0 * (4 - slack) / residual_rate
    assert config.residual.cycle_ms == pytest.approx(cycle_ms)
    assert config.residual.occupancy == pytest.approx(25.0 / cycle_ms)
    assert config.machines == pytest.approx(2 + 25.0 / cycle_ms)


def test_residual_alone_has_no_slack():
    # 100 req/s is below T(4) = 160: no saturated worker, the residual is the whole module.
    config = module_config(one_module_app(100.0, 60.0), "m", LATENCIES, 60.0)
    assert config is not None and config.residual is not None
    assert config.workers == 0
    assert config.residual.slack == 0.0
    # b = 2: 15 + 20 = 35 ms; b = 4: 25 + 40 = 65 ms > 60 ms.
    assert config.residual.batch_size == 2
    assert config.residual.cycle_ms == pytest.approx(20.0)


def test_squishy_packing_member_batch_keeps_slack():
    # Without slack a would run b = 2 next to b and fill the 40 ms cycle exactly (see
    # test_squishy_packing_two_residuals_share_machine). With slack 0.5 it needs
    # 40 * 50 / 1000 + 0.5 = 2.5 requests of room, so b = 4, and 25 + 25 = 50 ms > 40 ms.
    a = Residual("a", 50.0, 4, 70.0, 110.0, LATENCIES, 0.5)
    b = residual("b", 100.0, 4, 70.0)
    machines = pack_residuals([a, b], "g")
    assert len(machines) == 2


def test_module_config_none_when_budget_below_twice_d():
    assert module_config(one_module_app(100.0, 19.0), "m", LATENCIES, 19.0) is None


def test_exact_multiple_of_throughput_has_no_residual():
    config = module_config(one_module_app(320.0, 60.0), "m", LATENCIES, 60.0)
    assert config is not None
    assert config.workers == 2
    assert config.residual is None
    assert config.main_rate == pytest.approx(320.0)


def residual(module: str, rate: float, batch_size: int, room_ms: float) -> Residual:
    return Residual(module, rate, batch_size, 1000.0 * batch_size / rate, room_ms, LATENCIES)


def test_squishy_packing_two_residuals_share_machine():
    # a: 50 req/s at b = 4, cycle 80 ms, occupancy 25 / 80; b: 100 req/s at b = 4, cycle 40 ms.
    a = residual("a", 50.0, 4, 110.0)
    b = residual("b", 100.0, 4, 70.0)
    machines = pack_residuals([a, b], "g")
    assert len(machines) == 1
    machine = machines[0]
    # Duty cycle = min(80, 40) = 40 ms; a needs ceil(40 * 50 / 1000) = 2, b needs 4.
    assert machine.duty_cycle_ms == pytest.approx(40.0)
    sizes = {member.module: member.batch_size for member in machine.members}
    assert sizes == {"a": 2, "b": 4}
    # Busy time d(2) + d(4) = 15 + 25 = 40 ms fits the 40 ms cycle exactly.
    assert sum(LATENCIES[s] for s in sizes.values()) == pytest.approx(machine.duty_cycle_ms)


def test_squishy_packing_opens_machine_when_cycle_overflows():
    # c alone: 150 req/s at b = 8, cycle 53.3 ms, occupancy 45 / 53.3. Together a needs
    # b >= 53.3 * 50 / 1000 = 2.7, so b = 4 (25 ms): 25 + 45 = 70 ms > 53.3 ms.
    a = residual("a", 50.0, 4, 110.0)
    c = residual("c", 150.0, 8, 100.0)
    machines = pack_residuals([a, c], "g")
    assert len(machines) == 2
    assert machines[0].members[0].module == "c"  # higher occupancy goes first


def test_squishy_packing_rejects_oversized_residual():
    # 200 req/s at b = 8 needs a 40 ms cycle, but d(8) = 45 ms.
    with pytest.raises(ValueError, match="residual of module 'c' does not fit on one machine"):
        pack_residuals([residual("c", 200.0, 8, 100.0)], "g")


def test_squishy_packing_respects_member_budget():
    # a's model is slower at b = 2 (60 ms) than at b = 4 (12 ms). Alone: cycle 80 + 12 = 92 ms,
    # its room. Next to b the cycle is 40 ms, a drops to b = 2 and 40 + 60 = 100 ms > 92 ms.
    a = Residual("a", 50.0, 4, 80.0, 92.0, {2: 60.0, 4: 12.0})
    b = residual("b", 100.0, 4, 70.0)
    assert len(pack_residuals([a, b], "g")) == 2


def test_split_budgets_chain_hand_computed():
    app = Application("chain", 1.0, 4.0, (Module("x", "p"), Module("y", "p")), (("x", "y"),))
    costs = {
        "x": np.array([np.inf, 10.0, 4.0, 3.0, 3.0]),
        "y": np.array([np.inf, 8.0, 2.0, 2.0, 2.0]),
    }
    # (1, 3) costs 12, (2, 2) costs 6, (3, 1) costs 11.
    assert split_budgets(app, costs, 4) == {"x": 2, "y": 2}


def test_split_budgets_fork_hand_computed():
    modules = (Module("a", "p"), Module("b", "p"), Module("c", "p"))
    app = Application("fork", 1.0, 4.0, modules, (("a", "b"), ("a", "c")))
    costs = {
        "a": np.array([np.inf, 5.0, 1.0, 1.0, 1.0]),
        "b": np.array([np.inf, 6.0, 1.0, 1.0, 1.0]),
        "c": np.array([np.inf, 3.0, 3.0, 3.0, 3.0]),
    }
    # a = 2 leaves 2 steps to each branch: 1 + 1 + 3 = 5, the minimum.
    budgets = split_budgets(app, costs, 4)
    assert budgets["a"] == 2
    assert budgets["b"] == 2
    assert budgets["c"] == 1


def test_split_budgets_infeasible_raises():
    app = Application("chain", 1.0, 2.0, (Module("x", "p"), Module("y", "p")), (("x", "y"),))
    costs = {"x": np.array([np.inf, np.inf, 1.0]), "y": np.array([np.inf, 1.0, 1.0])}
    with pytest.raises(InfeasiblePlan, match="no split of the SLO"):
        split_budgets(app, costs, 2)


@st.composite
def dags_with_costs(draw):
    num_modules = draw(st.integers(1, 4))
    names = [f"m{i}" for i in range(num_modules)]
    edges = tuple(
        (names[i], names[j])
        for i, j in itertools.combinations(range(num_modules), 2)
        if draw(st.booleans())
    )
    num_steps = draw(st.integers(num_modules, 8))
    costs = {}
    for name in names:
        first = draw(st.integers(1, num_steps))
        drops = draw(st.lists(st.floats(0, 5), min_size=num_steps + 1, max_size=num_steps + 1))
        values = np.full(num_steps + 1, np.inf)
        level = 50.0
        for t in range(first, num_steps + 1):
            level -= drops[t]
            values[t] = max(level, 0.0)
        costs[name] = values
    app = Application("g", 1.0, float(num_steps), tuple(Module(n, "p") for n in names), edges)
    return app, costs, num_steps


def brute_force(app, costs, num_steps):
    names = app.topological_order
    best = np.inf
    for steps in itertools.product(range(1, num_steps + 1), repeat=len(names)):
        budgets = dict(zip(names, steps))
        if app.critical_path(budgets)[0] <= num_steps:
            best = min(best, sum(costs[n][budgets[n]] for n in names))
    return best


@settings(max_examples=60, deadline=None)
@given(dags_with_costs())
def test_split_budgets_paths_within_slo(case):
    app, costs, num_steps = case
    try:
        budgets = split_budgets(app, costs, num_steps)
    except InfeasiblePlan:
        assert brute_force(app, costs, num_steps) == np.inf
        return
    for path in app.paths():
        assert sum(budgets[n] for n in path) <= num_steps
    for name, steps in budgets.items():
        assert np.isfinite(costs[name][steps])


@settings(max_examples=40, deadline=None)
@given(dags_with_costs())
def test_split_budgets_optimal_on_trees(case):
    app, costs, num_steps = case
    if any(len(app.predecessors(n)) > 1 for n in app.topological_order):
        return
    expected = brute_force(app, costs, num_steps)
    if expected == np.inf:
        return
    budgets = split_budgets(app, costs, num_steps)
    assert sum(costs[n][budgets[n]] for n in budgets) == pytest.approx(expected)


def catalog() -> HardwareCatalog:
    return HardwareCatalog({"g": HardwareType("g", 1.0), "h": HardwareType("h", 3.0)})


def profiles() -> ProfileSet:
    return ProfileSet({
        "p": Profile("p", {"g": LATENCIES, "h": {1: 4.0, 4: 8.0, 16: 20.0}}),
        "q": Profile("q", {"g": {1: 6.0, 8: 30.0}}),
    })


def test_plan_one_hardware_type_and_validates():
    modules = (Module("a", "p", 2.0), Module("b", "p", 1.0, 2.5), Module("c", "p"))
    app = Application("app", 300.0, 200.0, modules, (("a", "b"), ("a", "c")))
    plan = plan_nexus(app, profiles(), catalog())
    validate_plan(plan, app, profiles(), catalog())
    used = {g.hardware for m in plan.modules for g in m.groups}
    used |= {s.hardware for s in plan.shared_machines}
    assert used == {plan.extra["hardware"]}
    assert all(g.dispatch == "round_robin" for m in plan.modules for g in m.groups)


def test_plan_named_hardware_is_used():
    app = Application("app", 300.0, 200.0, (Module("a", "p"),))
    plan = plan_nexus(app, profiles(), catalog(), hardware_name="h")
    validate_plan(plan, app, profiles(), catalog())
    assert plan.extra["hardware"] == "h"


def test_plan_named_hardware_must_profile_every_module():
    app = Application("app", 300.0, 200.0, (Module("a", "p"), Module("b", "q")), (("a", "b"),))
    with pytest.raises(ConfigError, match="does not profile every module"):
        plan_nexus(app, profiles(), catalog(), hardware_name="h")


def test_plan_unknown_hardware_rejected():
    app = Application("app", 300.0, 200.0, (Module("a", "p"),))
    with pytest.raises(ConfigError, match="unknown hardware type 'x'"):
        plan_nexus(app, profiles(), catalog(), hardware_name="x")


def test_plan_num_steps_must_be_positive():
    app = Application("app", 300.0, 200.0, (Module("a", "p"),))
    with pytest.raises(ConfigError, match="num_steps must be an integer >= 1, got 0"):
        plan_nexus(app, profiles(), catalog(), num_steps=0)


def test_plan_tight_slo_infeasible():
    app = Application("app", 300.0, 7.0, (Module("a", "p"),))
    with pytest.raises(InfeasiblePlan, match="no hardware type gives a plan"):
        plan_nexus(app, profiles(), catalog())


def test_plan_quota_counts_shared_machines():
    limited = HardwareCatalog({"g": HardwareType("g", 1.0, available=1)})
    app = Application("app", 300.0, 200.0, (Module("a", "p"), Module("b", "p")), (("a", "b"),))
    with pytest.raises(InfeasiblePlan, match="quota is 1"):
        plan_nexus(app, profiles(), limited)


def test_plan_rate_override():
    app = Application("app", 300.0, 200.0, (Module("a", "p"),))
    plan = plan_nexus(app, profiles(), catalog(), rate=900.0)
    assert plan.rate == 900.0
    validate_plan(plan, app.with_overrides(rate=900.0), profiles(), catalog())


def test_validator_requires_shared_member_slack():
    """A shared member beside a saturated group must keep its share of split slack.

    A plan whose residual (109.1 req/s) ran b = 4 per 36.7 ms cycle, exactly its arrivals,
    passed validation but overflowed one batch in simulation and exceeded its module
    latency by about one module slot.
    """
    app = one_module_app(400.0, 70.0)
    catalog = HardwareCatalog({"g": HardwareType("g", 1.0)})
    profile_set = ProfileSet({"p": Profile("p", {"g": LATENCIES})})
    main_rate = 320.0 / 1.1
    residual_rate = 400.0 - main_rate

    def plan_with_cycle(cycle_ms: float):
        group = make_group(
            hardware="g", batch_size=4, workers=2, rate=main_rate, dummy_rate=320.0 - main_rate,
            dispatch="round_robin", overhead_ms=0.0, batch_latency_ms=25.0,
        )
        module = make_module_plan(
            app, "m", [group], catalog, budget_ms=70.0, extra_latency_ms=cycle_ms + 25.0
        )
        machine = SharedMachine("g", cycle_ms, (SharedMember("m", 4, residual_rate),))
        return make_plan(app, [module], catalog, policy="nexus", planning_ms=0.0,
                         shared_machines=(machine,))

    with pytest.raises(InvalidPlan, match="split slack of 0.2727 requests"):
        validate_plan(plan_with_cycle(4000.0 / residual_rate), app, profile_set, catalog)
    validate_plan(plan_with_cycle(1000.0 * (4 - residual_rate / 400.0) / residual_rate),
                  app, profile_set, catalog)


def test_plan_diamond_join_keeps_paths_within_slo():
    modules = tuple(Module(n, "p", 1.0) for n in "abcd")
    edges = (("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"))
    app = Application("diamond", 200.0, 240.0, modules, edges)
    plan = plan_nexus(app, profiles(), catalog())
    validate_plan(plan, app, profiles(), catalog())
    budgets = {m.name: m.budget_ms for m in plan.modules}
    for path in app.paths():
        assert sum(budgets[name] for name in path) <= app.slo_ms + 1e-9
