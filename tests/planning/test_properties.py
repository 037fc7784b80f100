"""Property tests: ``optimal`` against an independent brute force, ``harpagon`` against both.

The brute force below enumerates every configuration of every module straight from the
model's formulas (batch-aware latency at full padding ``o + d + d / n``, capacity
``n T``, the two-group split slack), and every combination of them, without the
planners' frontier code.
"""

from __future__ import annotations

import math
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harpagon.errors import InfeasiblePlan
from harpagon.model import validate_plan
from harpagon.model.latency import shaping_delay_ms
from harpagon.planning.harpagon import plan_harpagon
from harpagon.planning.optimal import plan_optimal

EXTRA_WORKERS = 4
"""The search space's cap: a group has at most ceil(r / T) + 4 workers."""

TOL = 1e-9


def _module_configs(app, name, profiles, hardware):
    """Every (latency_ms, cost, usage) of one module, unpruned but for exact dominance."""
    module = app.module(name)
    rate = app.rate * module.rate_factor
    shaping = shaping_delay_ms(app.rate, module.rate_factor)
    groups = []  # (hardware, latency_ms, cost, capacity, batch_size, workers)
    for hardware_name, by_size in profiles[module.profile].latency_ms.items():
        if hardware_name not in hardware:
            continue
        price = hardware[hardware_name].price_per_hour
        quota = hardware[hardware_name].available
        for batch_size, d in by_size.items():
            throughput = 1000.0 * batch_size / d
            top = math.ceil(rate / throughput - 1e-9) + EXTRA_WORKERS
            for workers in range(1, top + 1):
                if quota is not None and workers > quota:
                    break
                latency = module.overhead_ms + d + d / workers
                groups.append(
                    (hardware_name, latency, workers * price, workers * throughput, batch_size, workers)
                )
    configs = []
    for hw, latency, cost, capacity, _, workers in groups:
        if capacity >= rate * (1 - TOL):
            configs.append((shaping + latency, cost, {hw: workers}))
    for first, second in product(groups, repeat=2):
        # Group g can take at most x of the rate when x b / (b - x / r) <= capacity.
        carried = 0.0
        for _, _, _, capacity, batch_size, _ in (first, second):
            carried += capacity * batch_size / (batch_size + capacity / rate)
        if carried < rate * (1 + TOL):
            continue
        usage = {first[0]: first[5]}
        usage[second[0]] = usage.get(second[0], 0) + second[5]
        if any(hardware[h].available is not None and n > hardware[h].available for h, n in usage.items()):
            continue
        configs.append((shaping + max(first[1], second[1]), first[2] + second[2], usage))
    return _prune(configs, [h.name for h in hardware if h.available is not None])


def _prune(configs, limited):
    # Drop a configuration when a kept one is no slower, no dearer and rents no more of
    # any quota-limited hardware type.
    configs.sort(key=lambda c: (c[0], c[1]))
    kept = []
    for latency, cost, usage in configs:
        beaten = any(
            k[1] <= cost + TOL and all(k[2].get(h, 0) <= usage.get(h, 0) for h in limited)
            for k in kept
        )
        if not beaten:
            kept.append((latency, cost, usage))
    return kept


def brute_force_cost(app, profiles, hardware):
    """Return the minimum plan cost, or None when no combination meets the SLO and quotas."""
    order = app.topological_order
    options = {name: _module_configs(app, name, profiles, hardware) for name in order}
    for name in order:
        options[name].sort(key=lambda c: c[1])
    cheapest_rest = [0.0] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        cheapest_rest[i] = cheapest_rest[i + 1] + min((c[1] for c in options[order[i]]), default=math.inf)
    quotas = {h.name: h.available for h in hardware if h.available is not None}
    best = [math.inf]

    def search(index, finish, cost, usage):
        if cost + cheapest_rest[index] >= best[0] - TOL:
            return
        if index == len(order):
            best[0] = cost
            return
        name = order[index]
        start = max((finish[p] for p in app.predecessors(name)), default=0.0)
        for latency, option_cost, option_usage in options[name]:
            end = start + latency
            if end > app.slo_ms + TOL * max(1.0, app.slo_ms):
                continue
            total = dict(usage)
            for h, n in option_usage.items():
                total[h] = total.get(h, 0) + n
            if any(total.get(h, 0) > q for h, q in quotas.items()):
                continue
            search(index + 1, {**finish, name: end}, cost + option_cost, total)

    search(0, {}, 0.0, {})
    return None if best[0] == math.inf else best[0]


@st.composite
def cases(draw, make_app, make_profiles, make_hardware, always_quotas=False):
    hardware_names = ["h0", "h1"][: draw(st.integers(1, 2))]
    prices = {h: draw(st.sampled_from([0.4, 0.7, 1.0, 1.6, 2.5])) for h in hardware_names}
    quotas = {}
    if always_quotas or draw(st.booleans()):
        for h in hardware_names:
            if always_quotas or draw(st.booleans()):
                quotas[h] = draw(st.integers(1, 6))
    num_modules = draw(st.integers(1, 4))
    table = {}
    modules = []
    for i in range(num_modules):
        by_hw = {}
        for h in hardware_names:
            if by_hw and not draw(st.booleans()):
                continue
            base = draw(st.floats(1.0, 15.0))
            per_request = draw(st.floats(0.2, 3.0))
            sizes = draw(st.sets(st.sampled_from([1, 2, 4, 8, 16, 32]), min_size=1, max_size=3))
            by_hw[h] = {b: base + per_request * b for b in sorted(sizes)}
        table[f"p{i}"] = by_hw
        overhead = draw(st.sampled_from([0.0, 1.0, 2.5]))
        factor = draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))
        modules.append((f"m{i}", f"p{i}", overhead, factor))
    edges = [
        (f"m{i}", f"m{j}")
        for i in range(num_modules)
        for j in range(i + 1, num_modules)
        if draw(st.booleans())
    ]
    app = make_app(
        modules, edges,
        rate=draw(st.floats(20.0 if always_quotas else 1.0, 200.0)),
        slo_ms=draw(st.floats(10.0, 400.0)),
    )
    return app, make_profiles(table), make_hardware(prices, quotas)


@pytest.fixture(scope="module")
def case_strategy(make_app, make_profiles, make_hardware):
    return cases(make_app, make_profiles, make_hardware)


def test_optimal_matches_brute_force(case_strategy):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case_strategy)
    def check(case):
        app, profiles, hardware = case
        expected = brute_force_cost(app, profiles, hardware)
        if expected is None:
            with pytest.raises(InfeasiblePlan):
                plan_optimal(app, profiles, hardware)
            with pytest.raises(InfeasiblePlan):
                plan_harpagon(app, profiles, hardware)
            return
        optimal = plan_optimal(app, profiles, hardware)
        assert optimal.cost_per_hour == pytest.approx(expected, rel=1e-6, abs=1e-6)
        validate_plan(optimal, app, profiles, hardware)
        assert optimal.lower_bound_cost_per_hour <= optimal.cost_per_hour + 1e-9

        harpagon = plan_harpagon(app, profiles, hardware)
        validate_plan(harpagon, app, profiles, hardware)
        assert harpagon.cost_per_hour >= optimal.cost_per_hour - 1e-6

    check()


@st.composite
def split_rate_cases(draw, make_app, make_profiles, make_hardware):
    """One or two modules whose rate lies a little above a multiple of a worker's throughput,
    where a main group plus a small residual group tends to be cheapest."""
    prices = {"h0": 1.0, "h1": draw(st.sampled_from([0.3, 0.5, 0.8, 1.5]))}
    quotas = {"h1": draw(st.integers(1, 4))} if draw(st.booleans()) else {}
    table = {
        "p": {
            "h0": {b: 4.0 + draw(st.floats(0.3, 1.0)) * b for b in (8, 16, 32)},
            "h1": {b: 2.0 + draw(st.floats(0.5, 3.0)) * b for b in (1, 2, 4, 8)},
        }
    }
    throughput = 1000.0 * 32 / table["p"]["h0"][32]
    rate = (draw(st.integers(1, 3)) + draw(st.floats(0.02, 0.6))) * throughput
    modules = [("m0", "p", 1.0, 1.0)]
    edges = []
    if draw(st.booleans()):
        modules.append(("m1", "p", 0.0, 1.0))
        edges.append(("m0", "m1"))
    app = make_app(modules, edges, rate=rate, slo_ms=draw(st.floats(40.0, 300.0)))
    return app, make_profiles(table), make_hardware(prices, quotas)


def test_optimal_brute_force_split_rates(make_app, make_profiles, make_hardware):
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(split_rate_cases(make_app, make_profiles, make_hardware))
    def check(case):
        app, profiles, hardware = case
        expected = brute_force_cost(app, profiles, hardware)
        if expected is None:
            with pytest.raises(InfeasiblePlan):
                plan_optimal(app, profiles, hardware)
            return
        optimal = plan_optimal(app, profiles, hardware)
        assert optimal.cost_per_hour == pytest.approx(expected, rel=1e-6, abs=1e-6)
        harpagon = plan_harpagon(app, profiles, hardware)
        assert harpagon.cost_per_hour >= optimal.cost_per_hour - 1e-6

    check()


ABLATIONS = [
    {"dispatch": "round_robin"},
    {"two_groups": False},
    {"dummies": False},
    {"split": "even"},
]


@pytest.mark.parametrize("options", ABLATIONS, ids=["round_robin", "single_group", "no_dummies", "even_split"])
def test_ablation_plans_validate(case_strategy, options):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case_strategy)
    def check(case):
        app, profiles, hardware = case
        try:
            plan = plan_harpagon(app, profiles, hardware, **options)
        except InfeasiblePlan:
            return
        validate_plan(plan, app, profiles, hardware)
        if options.get("dummies") is False:
            assert all(g.dummy_rate == 0.0 for m in plan.modules for g in m.groups)
        if options.get("two_groups") is False:
            assert all(len(m.groups) == 1 for m in plan.modules)

    check()


def test_optimal_round_robin_not_above_ablation(case_strategy):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case_strategy)
    def check(case):
        app, profiles, hardware = case
        try:
            harpagon = plan_harpagon(app, profiles, hardware, dispatch="round_robin")
        except InfeasiblePlan:
            return
        optimal = plan_optimal(app, profiles, hardware, dispatch="round_robin")
        validate_plan(optimal, app, profiles, hardware)
        assert optimal.cost_per_hour <= harpagon.cost_per_hour + 1e-6

    check()


def test_quota_cases_match_brute_force(make_app, make_profiles, make_hardware):
    """Quotas on every hardware type: both planners find a plan exactly when one exists."""

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cases(make_app, make_profiles, make_hardware, always_quotas=True))
    def check(case):
        app, profiles, hardware = case
        expected = brute_force_cost(app, profiles, hardware)
        if expected is None:
            with pytest.raises(InfeasiblePlan):
                plan_harpagon(app, profiles, hardware)
            return
        optimal = plan_optimal(app, profiles, hardware)
        assert optimal.cost_per_hour == pytest.approx(expected, rel=1e-6, abs=1e-6)
        harpagon = plan_harpagon(app, profiles, hardware)
        validate_plan(harpagon, app, profiles, hardware)
        assert harpagon.cost_per_hour >= optimal.cost_per_hour - 1e-6

    check()
