"""Full-capacity clocks and late requests: bounds that the runtime relies on."""

from __future__ import annotations

import math
from collections import defaultdict

from dispatch_helpers import drive, group, module_plan, uniform_module_stream
from hypothesis import given, settings
from hypothesis import strategies as st
from test_contract import TOLERANCE_MS, single_module_plans

from harpagon.dispatch import full_capacity, make_dispatcher
from harpagon.model import Group
from harpagon.model.latency import group_capacity


def test_full_capacity_pads_to_capacity():
    # One group: b = 4, d = 20 ms, one worker, 50 req/s real: capacity 200 req/s, so the
    # period drops from 80 ms to 20 ms and the shaper may run at 200 req/s.
    module = module_plan([Group("hw", 4, 1, 50.0, 0.0, "batch_aware", 2.0 + 20.0 + 80.0)])
    padded, shaping_rate = full_capacity(module, overhead_ms=2.0)
    assert padded.groups[0].collection_rate == 200.0
    assert padded.groups[0].dummy_rate == 150.0
    assert padded.groups[0].latency_ms == 2.0 + 20.0 + 20.0
    assert shaping_rate == 200.0


def test_full_capacity_two_groups_shaping_rate():
    # Shares 0.75 and 0.25 of 100 req/s; capacities 1000 * 4 / 20 = 200 and 1000 * 2 / 10 = 200.
    # rho = min(200 (4 - 0.75) / (0.75 * 4), 200 (2 - 0.25) / (0.25 * 2)) = min(216.67, 700).
    module = module_plan([
        Group("hw", 4, 1, 75.0, 25.0, "batch_aware", 20.0 + 40.0),
        Group("hw", 2, 1, 25.0, 25.0, "batch_aware", 10.0 + 40.0),
    ])
    padded, shaping_rate = full_capacity(module, overhead_ms=0.0)
    assert [g.collection_rate for g in padded.groups] == [200.0, 200.0]
    assert math.isclose(shaping_rate, 200.0 * 3.25 / 3.0)


@settings(max_examples=100, deadline=None)
@given(case=single_module_plans(), count=st.integers(50, 300))
def test_full_capacity_within_planned_latency(case, count):
    plan, profiles, overhead_ms = case
    module = plan.modules[0]
    padded, shaping_rate = full_capacity(module, overhead_ms)
    arrivals, owners = uniform_module_stream(plan.rate, module.rate / plan.rate, count)
    times = [arrivals[i] for i in owners]
    batches = drive(make_dispatcher(padded, plan.rate, shaping_rate=shaping_rate), times, times)

    assert sum(len(b.requests) for b in batches) == len(owners)
    previous: dict[tuple[int, int], float] = defaultdict(lambda: -math.inf)
    for batch in batches:
        planned = module.groups[batch.group]
        batch_ms = profiles["p"].batch_latency_ms(planned.hardware, planned.batch_size)
        assert padded.groups[batch.group].collection_rate <= (
            group_capacity(planned.batch_size, batch_ms, planned.workers) * (1 + 1e-9)
        )
        for request in batch.requests:
            waited = batch.close_ms + batch_ms + overhead_ms - request.release_ms
            assert waited <= planned.latency_ms + module.shaping_ms + TOLERANCE_MS
        key = (batch.group, batch.worker)
        assert batch.close_ms >= previous[key] + batch_ms - TOLERANCE_MS
        previous[key] = batch.close_ms


def test_late_request_does_not_delay_later_ones():
    """Shaping on the arrival time made one late request shift every later one: at exactly
    the planned 20 req/s (b = 1, period 50 ms), one request 200 ms late left every later
    request 200 ms late. Shaping on the release time confines the delay to that request."""
    module = module_plan([group(1, 1, 20.0)])
    releases = [50.0 * i for i in range(40)]
    arrivals = list(releases)
    arrivals[10] += 200.0
    order = sorted(range(40), key=lambda i: arrivals[i])
    batches = drive(
        make_dispatcher(module, 20.0), [arrivals[i] for i in order], [releases[i] for i in order]
    )
    waits = {}
    for batch in batches:
        for request in batch.requests:
            waits[order[request.request_id]] = batch.close_ms - releases[order[request.request_id]]
    assert waits[10] >= 200.0
    late_others = [i for i, wait in waits.items() if i != 10 and wait > 50.0 + TOLERANCE_MS]
    assert late_others == []
