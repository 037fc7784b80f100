"""Tests of the dispatcher state machines in virtual time, with hand-computed batches."""

from __future__ import annotations

import numpy as np
import pytest
from dispatch_helpers import drive, group, module_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.dispatch import (
    BatchAwareDispatcher,
    ClockedDispatcher,
    ModuleRequest,
    RoundRobinDispatcher,
    make_dispatcher,
)
from harpagon.errors import ConfigError

POLICIES = [BatchAwareDispatcher, RoundRobinDispatcher]


def summary(batches):
    """Return (close_ms, group, worker, request ids, padding) per batch."""
    return [
        (b.close_ms, b.group, b.worker, [r.request_id for r in b.requests], b.padding)
        for b in batches
    ]


def test_batch_aware_batches_per_tick():
    # b = 4, 2 workers, 100 req/s: period 40 ms; requests every 10 ms from t = 0.
    plan = module_plan([group(4, 2, 100.0)])
    times = [10.0 * i for i in range(9)]
    batches = drive(BatchAwareDispatcher(plan, 100.0), times, times)
    assert summary(batches) == [
        (0.0, 0, 0, [0], 3),
        (40.0, 0, 1, [1, 2, 3, 4], 0),
        (80.0, 0, 0, [5, 6, 7, 8], 0),
    ]


@pytest.mark.parametrize("policy", POLICIES)
def test_single_worker_policies_agree(policy):
    # With one worker both layouts are one clock of period P = 1000 * 4 / 100 = 40 ms.
    plan = module_plan([group(4, 1, 100.0)])
    times = [10.0 * i for i in range(6)]
    batches = drive(policy(plan, 100.0), times, times)
    assert summary(batches) == [
        (0.0, 0, 0, [0], 3),
        (40.0, 0, 0, [1, 2, 3, 4], 0),
        (80.0, 0, 0, [5], 3),
    ]


def test_padding_counts_with_dummy_rate():
    # 50 real + 50 dummy req/s at b = 4: period 40 ms, two real requests per batch.
    plan = module_plan([group(4, 1, 50.0, dummy_rate=50.0)])
    times = [20.0 * i for i in range(5)]
    batches = drive(BatchAwareDispatcher(plan, 50.0), times, times)
    assert summary(batches) == [
        (0.0, 0, 0, [0], 3),
        (40.0, 0, 0, [1, 2], 2),
        (80.0, 0, 0, [3, 4], 2),
    ]
    assert sum(b.padding for b in batches) == 7


@pytest.mark.parametrize("policy", POLICIES)
def test_request_held_until_release(policy):
    plan = module_plan([group(4, 1, 100.0)])
    dispatcher = policy(plan, 100.0)
    assert dispatcher.on_request(0.0, ModuleRequest(7, 25.0)) == []
    assert dispatcher.pending() == 1
    assert dispatcher.next_deadline_ms() == 25.0
    assert dispatcher.on_deadline(25.0) == []
    # Released at 25 ms, it joins the batch that closes at the next tick, 40 ms.
    assert dispatcher.next_deadline_ms() == 40.0
    assert dispatcher.on_deadline(39.0) == []
    batches = dispatcher.on_deadline(40.0)
    assert summary(batches) == [(40.0, 0, 0, [7], 3)]
    assert dispatcher.pending() == 0
    assert dispatcher.next_deadline_ms() is None


def test_shaping_spreads_a_burst():
    # Three requests released together at a module rate of 300 req/s leave 10/3 ms apart;
    # with b = 1 and w = 300 req/s every shaped request meets its own tick.
    plan = module_plan([group(1, 3, 300.0)])
    batches = drive(BatchAwareDispatcher(plan, 100.0), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    period = 1000.0 / 300.0
    assert [b.close_ms for b in batches] == [0.0, period, 2 * period]
    assert [b.worker for b in batches] == [0, 1, 2]
    assert all(len(b.requests) == 1 for b in batches)


def test_shaping_keeps_slot_after_late_release():
    # Slot 10 ms. Request 1 is released 1 ms after request 0, so it is shaped to 10 ms.
    plan = module_plan([group(1, 1, 100.0)])
    batches = drive(BatchAwareDispatcher(plan, 100.0), [0.0, 1.0, 30.0], [0.0, 1.0, 30.0])
    assert [b.close_ms for b in batches] == [0.0, 10.0, 30.0]


def test_split_follows_deficit_shares():
    # Shares 0.75 / 0.25; by hand: k = 1 and k = 5 are ties (deficits 0.5 and 0.5) and
    # go to group 0, so the pattern over 8 requests is 0 0 1 0 0 0 1 0.
    plan = module_plan([group(1, 1, 75.0, dummy_rate=25.0), group(1, 1, 25.0, dummy_rate=75.0)])
    times = [10.0 * i for i in range(8)]
    batches = drive(BatchAwareDispatcher(plan, 100.0), times, times)
    by_request = {b.requests[0].request_id: b.group for b in batches}
    assert [by_request[i] for i in range(8)] == [0, 0, 1, 0, 0, 0, 1, 0]


def test_batch_aware_rotates_workers():
    # b = 1, 3 workers, 300 req/s: a tick every 10/3 ms, to workers 0, 1, 2, 0, ...
    plan = module_plan([group(1, 3, 300.0)])
    times = [1000.0 / 300.0 * i for i in range(7)]
    batches = drive(BatchAwareDispatcher(plan, 300.0), times, times)
    assert [b.worker for b in batches] == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_staggers_worker_phases():
    # b = 2, 2 workers, 100 req/s: P = 20 ms; worker 0 ticks at 0, 40, 80 and worker 1
    # at 20, 60, 100. Requests alternate between the workers.
    plan = module_plan([group(2, 2, 100.0, dispatch="round_robin")])
    times = [10.0 * i for i in range(8)]
    batches = drive(RoundRobinDispatcher(plan, 100.0), times, times)
    assert summary(batches) == [
        (0.0, 0, 0, [0], 1),
        (20.0, 0, 1, [1], 1),
        (40.0, 0, 0, [2, 4], 0),
        (60.0, 0, 1, [3, 5], 0),
        (80.0, 0, 0, [6], 1),
        (100.0, 0, 1, [7], 1),
    ]


def test_full_batch_overflows_to_next_tick():
    # Module rate 1000 req/s (slot 1 ms) into one group of b = 2 at 100 req/s (P = 20 ms):
    # five requests at 0 ms are shaped to 0..4 ms; batch 20 ms fills and the rest moves on.
    plan = module_plan([group(2, 1, 100.0)], rate=1000.0)
    times = [0.0] * 5
    batches = drive(BatchAwareDispatcher(plan, 1000.0), times, times)
    assert summary(batches) == [
        (0.0, 0, 0, [0], 1),
        (20.0, 0, 0, [1, 2], 0),
        (40.0, 0, 0, [3, 4], 0),
    ]


def test_request_at_tick_joins_that_tick():
    # b = 2, one worker, 100 req/s: period 20 ms, slot 10 ms.
    plan = module_plan([group(2, 1, 100.0)])
    dispatcher = BatchAwareDispatcher(plan, 100.0)
    assert dispatcher.on_request(0.0, ModuleRequest(0, 0.0)) == []
    # The tick at 0 ms is overdue at 10 ms, so on_request returns its batch.
    assert summary(dispatcher.on_request(10.0, ModuleRequest(1, 10.0))) == [(0.0, 0, 0, [0], 1)]
    # The tick at 20 ms is not overdue at 20 ms: the request arriving then joins it.
    assert dispatcher.on_request(20.0, ModuleRequest(2, 20.0)) == []
    assert summary(dispatcher.on_deadline(20.0)) == [(20.0, 0, 0, [1, 2], 0)]


def test_late_caller_gets_batches_in_tick_order():
    # b = 1, 2 round-robin workers at 100 req/s: worker 0 ticks at 0, 20, ...; worker 1 at 10, 30, ...
    plan = module_plan([group(1, 2, 100.0, dispatch="round_robin")])
    dispatcher = RoundRobinDispatcher(plan, 100.0)
    batches = []
    for i in range(4):
        batches += dispatcher.on_request(10.0 * i, ModuleRequest(i, 10.0 * i))
    batches += dispatcher.on_deadline(100.0)
    assert [b.close_ms for b in batches] == [0.0, 10.0, 20.0, 30.0]
    assert [b.worker for b in batches] == [0, 1, 0, 1]
    assert [b.requests[0].request_id for b in batches] == [0, 1, 2, 3]


@pytest.mark.parametrize("policy", POLICIES)
def test_drain_returns_open_and_held(policy):
    plan = module_plan([group(4, 2, 100.0, dispatch="round_robin")])
    dispatcher = policy(plan, 100.0)
    sent = dispatcher.on_request(0.0, ModuleRequest(0, 0.0))
    sent += dispatcher.on_request(1.0, ModuleRequest(1, 1.0))
    sent += dispatcher.on_request(2.0, ModuleRequest(2, 500.0))
    # Request 0 met the tick at 0 ms, which was overdue at 1 ms.
    assert [r.request_id for b in sent for r in b.requests] == [0]
    assert dispatcher.pending() == 2
    drained = dispatcher.drain(5.0)
    assert sorted(r.request_id for b in drained for r in b.requests) == [1, 2]
    assert all(b.close_ms == 5.0 for b in drained)
    assert dispatcher.pending() == 0
    assert dispatcher.next_deadline_ms() is None


def test_make_dispatcher_follows_mode():
    plan = module_plan([group(2, 2, 100.0, dispatch="round_robin")])
    assert type(make_dispatcher(plan, 100.0)) is ClockedDispatcher
    assert len(make_dispatcher(plan, 100.0).clocks) == 2
    assert type(make_dispatcher(plan, 100.0, dispatch="batch_aware")) is BatchAwareDispatcher
    assert len(make_dispatcher(plan, 100.0, dispatch="batch_aware").clocks) == 1
    assert type(make_dispatcher(plan, 100.0, dispatch="round_robin")) is RoundRobinDispatcher


def test_planned_mode_mixes_policies():
    plan = module_plan([group(2, 2, 60.0), group(2, 2, 40.0, dispatch="round_robin")])
    clocks = make_dispatcher(plan, 100.0).clocks
    assert [(c.group, c.worker) for c in clocks] == [(0, None), (1, 0), (1, 1)]
    assert [c.share for c in clocks] == pytest.approx([0.6, 0.4, 0.4])
    assert [c.base_ms for c in clocks] == pytest.approx([0.0, 0.0, 50.0])
    assert [c.period_ms for c in clocks] == pytest.approx([1000 * 2 / 60, 100.0, 100.0])


def test_origin_shifts_every_clock():
    plan = module_plan([group(4, 1, 100.0)])
    times = [1000.0 + 10.0 * i for i in range(3)]
    batches = drive(BatchAwareDispatcher(plan, 100.0, origin_ms=1000.0), times, times)
    assert [b.close_ms for b in batches] == [1000.0, 1040.0]


def test_unknown_mode_rejected():
    plan = module_plan([group(4, 1, 100.0)])
    with pytest.raises(ConfigError, match="unknown dispatch mode 'fifo'; use one of planned"):
        make_dispatcher(plan, 100.0, dispatch="fifo")


def test_unknown_group_dispatch_rejected():
    plan = module_plan([group(4, 1, 100.0, dispatch="fifo")])
    with pytest.raises(ConfigError, match="group 0: unknown dispatch 'fifo'"):
        make_dispatcher(plan, 100.0)


def test_module_without_groups_rejected():
    plan = module_plan([], rate=10.0)
    with pytest.raises(ConfigError, match="no groups and no shared machine"):
        make_dispatcher(plan, 100.0)


def test_zero_collection_rate_rejected():
    plan = module_plan([group(4, 1, 0.0)], rate=10.0)
    with pytest.raises(ConfigError, match="rates must be > 0"):
        make_dispatcher(plan, 100.0)


@settings(max_examples=80, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=80),
    lags=st.lists(st.floats(-10.0, 30.0), min_size=80, max_size=80),
    delays=st.lists(st.floats(0.0, 25.0), min_size=200, max_size=200),
    mode=st.sampled_from(["planned", "batch_aware", "round_robin"]),
)
def test_late_caller_loses_no_request(gaps, lags, delays, mode):
    # A runtime serves deadlines late by a random delay; every request still leaves once,
    # in a batch of 1..b requests that closed no later than the call that returned it.
    plan = module_plan([group(4, 2, 60.0, 10.0, "round_robin"), group(2, 1, 40.0, 5.0)])
    dispatcher = make_dispatcher(plan, 100.0, dispatch=mode)
    arrivals = np.cumsum(gaps).tolist()
    delay = iter(delays)
    sent = []

    def collect(now_ms, batches):
        assert [b.close_ms for b in batches] == sorted(b.close_ms for b in batches)
        for batch in batches:
            assert batch.close_ms <= now_ms
            assert 1 <= len(batch.requests) <= batch.batch_size
        sent.extend(batches)

    for request_id, now_ms in enumerate(arrivals):
        while (deadline := dispatcher.next_deadline_ms()) is not None and deadline < now_ms:
            late_ms = min(deadline + next(delay, 0.0), now_ms)
            collect(late_ms, dispatcher.on_deadline(late_ms))
        request = ModuleRequest(request_id, now_ms + lags[request_id])
        collect(now_ms, dispatcher.on_request(now_ms, request))
    end_ms = (arrivals[-1] if arrivals else 0.0) + 5.0
    collect(end_ms, dispatcher.drain(end_ms))
    assert dispatcher.pending() == 0
    assert sorted(r.request_id for b in sent for r in b.requests) == list(range(len(arrivals)))
