"""The simulator's invariant: valid harpagon and optimal plans meet their SLO under uniform arrivals.

With uniform arrivals and deterministic fan-out, no application request may exceed the
plan's end-to-end latency and no module request may exceed its module's planned latency
(both within 1e-6 ms). A violation means the latency model and the dispatcher disagree.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_helpers import random_cases, split_rate_cases

from harpagon.errors import InfeasiblePlan
from harpagon.planning.registry import get_planner
from harpagon.simulation import simulate, summarize, uniform_arrivals

TOLERANCE_MS = 1e-6


def check_invariant(plan, app, profiles, hardware, count, rate=None, clock="planned"):
    """Simulate ``count`` uniform application requests at ``rate`` (default: the plan's) and
    assert the plan's bounds."""
    rate = plan.rate if rate is None else rate
    arrivals = uniform_arrivals(rate, count / rate)
    run = simulate(plan, app, profiles, hardware, arrivals, rate=rate, clock=clock)
    assert run.latency_ms.max() <= plan.latency_ms + TOLERANCE_MS
    assert summarize(run)["slo_attainment"] == 1.0
    for name, module in run.modules.items():
        if module.request_finish_ms.size:
            worst = module.request_latency_ms.max()
            assert worst <= plan.module(name).latency_ms + TOLERANCE_MS, name


@pytest.mark.parametrize("policy", ["harpagon", "optimal"])
def test_invariant_random_plans(policy):
    # Split-rate cases make plans with a main and a residual group, where the split slack matters.
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        case=st.one_of(random_cases(), split_rate_cases()),
        count=st.integers(200, 1500),
        headroom=st.sampled_from([0.0, 0.0, 0.2]),
    )
    def check(case, count, headroom):
        app, profiles, hardware = case
        try:
            plan = get_planner(policy)(app, profiles, hardware, headroom=headroom)
        except InfeasiblePlan:
            return
        # A plan with headroom is made for rate x (1 + headroom) and must also hold at the
        # application's own, lower rate.
        check_invariant(plan, app, profiles, hardware, count, rate=app.rate)

    check()


def test_invariant_capacity_clocks():
    # The runtime's default clocks pad every group to capacity and shape faster; every
    # bound of the plan must still hold.
    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=st.one_of(random_cases(), split_rate_cases()), count=st.integers(200, 1500))
    def check(case, count):
        app, profiles, hardware = case
        try:
            plan = get_planner("harpagon")(app, profiles, hardware)
        except InfeasiblePlan:
            return
        check_invariant(plan, app, profiles, hardware, count, clock="capacity")

    check()


def test_invariant_shared_machines():
    # Nexus packs residuals onto shared machines with a duty cycle. Its plans obey the
    # same model, so the simulator must keep them within their latency too.
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=random_cases(), count=st.integers(200, 1000))
    def check(case, count):
        app, profiles, hardware = case
        try:
            plan = get_planner("nexus")(app, profiles, hardware)
        except (InfeasiblePlan, ValueError):
            # NOTE: the nexus planner raises ValueError when a residual fits on no machine.
            return
        check_invariant(plan, app, profiles, hardware, count)

    check()


@pytest.mark.parametrize("name", ["traffic", "campus_safety", "store_reid", "incident_qa"])
def test_invariant_shipped_apps(name):
    from harpagon.model import load_hardware, load_profiles, resolve_application

    app = resolve_application(name)
    profiles = load_profiles()
    hardware = load_hardware()
    plan = get_planner("harpagon")(app, profiles, hardware)
    check_invariant(plan, app, profiles, hardware, int(np.ceil(app.rate * 5)))
