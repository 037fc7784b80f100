"""Tests that the vectorised path returns the batches of the state machine, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from dispatch_helpers import drive, group, module_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.dispatch import SharedSlot, dispatch_bulk, make_dispatcher


def compare(plan, arrivals, releases, mode="planned", shared=()):
    """Assert that driving the state machine and the bulk path give the same batches."""
    batches = drive(make_dispatcher(plan, 100.0, dispatch=mode, shared=shared), arrivals, releases)
    bulk = dispatch_bulk(
        make_dispatcher(plan, 100.0, dispatch=mode, shared=shared),
        np.array(arrivals, dtype=float), np.array(releases, dtype=float),
    )
    assert bulk.num_batches == len(batches)
    assert bulk.batch_close_ms.tolist() == [b.close_ms for b in batches]
    assert bulk.batch_group.tolist() == [b.group for b in batches]
    assert bulk.batch_worker.tolist() == [b.worker for b in batches]
    assert bulk.batch_size.tolist() == [b.batch_size for b in batches]
    assert bulk.batch_num_requests.tolist() == [len(b.requests) for b in batches]
    for index, batch in enumerate(batches):
        ids = sorted(r.request_id for r in batch.requests)
        assert np.flatnonzero(bulk.request_batch == index).tolist() == ids


def test_bulk_matches_hand_case():
    plan = module_plan([group(4, 2, 100.0)])
    times = [10.0 * i for i in range(9)]
    compare(plan, times, times)


def test_bulk_empty_stream():
    plan = module_plan([group(4, 2, 100.0)])
    bulk = dispatch_bulk(make_dispatcher(plan, 100.0), np.array([]), np.array([]))
    assert bulk.num_batches == 0
    assert bulk.request_batch.size == 0


def test_bulk_rejects_used_dispatcher():
    from harpagon.dispatch import ModuleRequest

    plan = module_plan([group(4, 2, 100.0)])
    dispatcher = make_dispatcher(plan, 100.0)
    dispatcher.on_request(0.0, ModuleRequest(0, 0.0))
    with pytest.raises(ValueError, match="needs a fresh dispatcher"):
        dispatch_bulk(dispatcher, np.array([1.0]), np.array([1.0]))


def test_bulk_rejects_unsorted_arrivals():
    plan = module_plan([group(4, 2, 100.0)])
    with pytest.raises(ValueError, match="must be non-decreasing"):
        dispatch_bulk(make_dispatcher(plan, 100.0), np.array([2.0, 1.0]), np.array([2.0, 1.0]))


GROUP_SETS = [
    [group(4, 2, 100.0)],
    [group(8, 3, 70.0, 20.0), group(2, 1, 30.0, 10.0)],
    [group(4, 2, 60.0, 0.0, "round_robin"), group(1, 1, 40.0, 5.0)],
    [group(3, 3, 50.0, 1.0, "round_robin"), group(5, 2, 50.0, 7.0, "round_robin")],
    [group(2, 2, 10.0, 1.0), group(2, 2, 20.0), group(1, 1, 70.0, 3.0)],
]


@settings(max_examples=60, deadline=None)
@given(
    groups=st.sampled_from(GROUP_SETS),
    mode=st.sampled_from(["planned", "batch_aware", "round_robin"]),
    gaps=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=120),
    lags=st.lists(st.floats(-20.0, 40.0), min_size=120, max_size=120),
    shared=st.booleans(),
)
def test_bulk_matches_state_machine(groups, mode, gaps, lags, shared):
    # Arrivals with bursts (zero gaps); releases before (late upstream) and after (held) arrival.
    arrivals = np.cumsum(gaps).tolist()
    releases = [a + lag for a, lag in zip(arrivals, lags)]
    slots = (SharedSlot(50.0, 12.0, 4, 20.0),) if shared else ()
    compare(module_plan(groups), arrivals, releases, mode, slots)


def test_bulk_matches_on_uniform_long_stream():
    plan = module_plan([group(8, 3, 233.0, 4.0), group(2, 1, 17.0, 30.0)])
    times = (np.arange(3000) * (1000.0 / 250.0)).tolist()
    compare(plan, times, [t + 3.0 for t in times])
