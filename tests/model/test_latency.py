"""Tests of the latency, capacity and shaping model that planners, dispatcher and simulator share."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import harpagon.model.latency as latency
from harpagon.model.latency import (
    Dispatch,
    batch_period_ms,
    group_capacity,
    group_latency_ms,
    max_period_ms,
    min_collection_rate,
    shaping_delay_ms,
    slack_share,
)

batch_sizes = st.integers(min_value=1, max_value=256)
workers = st.integers(min_value=1, max_value=64)
batch_times_ms = st.floats(min_value=0.1, max_value=1000.0)
rates = st.floats(min_value=0.01, max_value=1e5)
dispatches = st.sampled_from(list(Dispatch))


def test_module_doctests_pass():
    result = doctest.testmod(latency)

    assert result.attempted >= 8
    assert result.failed == 0


def test_doctest_values():
    assert batch_period_ms(8, 200.0) == 40.0
    assert group_capacity(8, 40.0, 2) == 400.0
    assert group_latency_ms(
        overhead_ms=2, batch_latency_ms=40, batch_size=8, workers=1,
        collection_rate=200, dispatch="batch_aware",
    ) == 82.0
    assert group_latency_ms(
        overhead_ms=2, batch_latency_ms=40, batch_size=8, workers=2,
        collection_rate=200, dispatch="round_robin",
    ) == 122.0
    assert min_collection_rate(100.0, 4, 0.0) == 100.0
    assert min_collection_rate(90.0, 4, 0.5) == pytest.approx(90.0 * 4 / 3.5)
    assert shaping_delay_ms(100.0, 1.0) == 0.0
    assert shaping_delay_ms(100.0, 2.0) == 5.0
    assert shaping_delay_ms(100.0, 2.5) == 10.0


def test_batch_period_without_traffic_is_infinite():
    assert batch_period_ms(4, 0.0) == math.inf


def test_group_latency_at_full_padding():
    # At w = n * T a batch-aware group needs o + d * (1 + 1 / n): P = d / n.
    capacity = group_capacity(8, 40.0, 4)

    latency_ms = group_latency_ms(
        overhead_ms=3.0, batch_latency_ms=40.0, batch_size=8, workers=4,
        collection_rate=capacity, dispatch=Dispatch.BATCH_AWARE,
    )

    assert capacity == 800.0
    assert latency_ms == pytest.approx(3.0 + 40.0 + 10.0)


def test_unknown_dispatch_rejected():
    with pytest.raises(ValueError, match="'fifo' is not a valid Dispatch"):
        group_latency_ms(
            overhead_ms=0, batch_latency_ms=1, batch_size=1, workers=1,
            collection_rate=1, dispatch="fifo",
        )


def test_slack_share_cases():
    assert slack_share(0.7, 3, Dispatch.BATCH_AWARE, 1) == 0.0
    assert slack_share(0.7, 3, Dispatch.BATCH_AWARE, 2) == 0.7
    assert slack_share(0.6, 3, Dispatch.ROUND_ROBIN, 2) == pytest.approx(0.2)


def test_min_collection_rate_impossible():
    assert min_collection_rate(10.0, 1, 1.0) == math.inf


def test_max_period_cases():
    assert max_period_ms(100.0, 5.0, 40.0, 3, Dispatch.BATCH_AWARE) == 55.0
    assert max_period_ms(100.0, 5.0, 40.0, 5, Dispatch.ROUND_ROBIN) == 11.0
    assert max_period_ms(30.0, 5.0, 40.0, 1, Dispatch.BATCH_AWARE) < 0


@settings(max_examples=200)
@given(batch_sizes, batch_times_ms, workers, rates, rates, dispatches, st.floats(0.0, 50.0))
def test_latency_falls_with_collection_rate(batch_size, batch_ms, num_workers, w1, w2, dispatch, overhead_ms):
    assume(w1 < w2)

    slow_ms = group_latency_ms(
        overhead_ms=overhead_ms, batch_latency_ms=batch_ms, batch_size=batch_size,
        workers=num_workers, collection_rate=w1, dispatch=dispatch,
    )
    fast_ms = group_latency_ms(
        overhead_ms=overhead_ms, batch_latency_ms=batch_ms, batch_size=batch_size,
        workers=num_workers, collection_rate=w2, dispatch=dispatch,
    )

    assert fast_ms <= slow_ms
    assert fast_ms > overhead_ms + batch_ms


@settings(max_examples=200)
@given(batch_sizes, batch_times_ms, workers, rates, st.floats(0.0, 50.0))
def test_round_robin_never_beats_batch_aware(batch_size, batch_ms, num_workers, rate, overhead_ms):
    common = dict(
        overhead_ms=overhead_ms, batch_latency_ms=batch_ms, batch_size=batch_size,
        workers=num_workers, collection_rate=rate,
    )

    batch_aware_ms = group_latency_ms(dispatch=Dispatch.BATCH_AWARE, **common)
    round_robin_ms = group_latency_ms(dispatch=Dispatch.ROUND_ROBIN, **common)

    assert round_robin_ms >= batch_aware_ms
    period_ms = 1000.0 * batch_size / rate
    assert round_robin_ms - batch_aware_ms == pytest.approx((num_workers - 1) * period_ms)


@settings(max_examples=200)
@given(batch_sizes, batch_times_ms, workers)
def test_capacity_linear_in_workers(batch_size, batch_ms, num_workers):
    single = group_capacity(batch_size, batch_ms, 1)

    assert group_capacity(batch_size, batch_ms, num_workers) == pytest.approx(num_workers * single)
    assert single == pytest.approx(1000.0 * batch_size / batch_ms)


@settings(max_examples=200)
@given(batch_sizes, batch_times_ms, workers, rates, rates, st.floats(0.0, 50.0), dispatches)
def test_max_period_inverts_latency(batch_size, batch_ms, num_workers, rate, budget_ms, overhead_ms, dispatch):
    # A group whose period equals max_period_ms lands exactly on the budget.
    period_ms = max_period_ms(budget_ms, overhead_ms, batch_ms, num_workers, dispatch)
    assume(period_ms > 1e-6)
    collection_rate = 1000.0 * batch_size / period_ms

    latency_ms = group_latency_ms(
        overhead_ms=overhead_ms, batch_latency_ms=batch_ms, batch_size=batch_size,
        workers=num_workers, collection_rate=collection_rate, dispatch=dispatch,
    )

    assert latency_ms == pytest.approx(budget_ms, rel=1e-9, abs=1e-6)


@settings(max_examples=200)
@given(rates, st.integers(1, 20), st.floats(0.0, 0.99))
def test_min_collection_rate_covers_rate(rate, batch_size, slack):
    assume(batch_size > slack)

    needed = min_collection_rate(rate, batch_size, slack)

    assert needed >= rate * (1 - 1e-12)
    # One period at that rate contains b - slack real requests.
    assert rate * batch_period_ms(batch_size, needed) / 1000.0 == pytest.approx(batch_size - slack)


@settings(max_examples=300)
@given(st.floats(0.1, 1e4), st.floats(0.05, 20.0))
def test_shaping_delay_bounds(app_rate, rate_factor):
    interval_ms = 1000.0 / app_rate

    bound_ms = shaping_delay_ms(app_rate, rate_factor)

    assert 0.0 <= bound_ms <= interval_ms
    if rate_factor == 1.0:
        assert bound_ms == 0.0


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_shaping_integer_factor_formula(factor):
    assert shaping_delay_ms(50.0, float(factor)) == pytest.approx(20.0 - 20.0 / factor)


def _max_bucket_delay_ms(app_rate: float, rate_factor: float, num_requests: int) -> float:
    # Arrivals are uniform. Application request i fans out to floor(f (i + 1)) - floor(f i)
    # module requests, all released at its arrival, and the bucket spaces them 1000 / r_m apart.
    interval_ms = 1000.0 / app_rate
    spacing_ms = interval_ms / rate_factor
    last_leave_ms = -math.inf
    worst_ms = 0.0
    for i in range(num_requests):
        arrival_ms = i * interval_ms
        fanout = math.floor(rate_factor * (i + 1) + 1e-9) - math.floor(rate_factor * i + 1e-9)
        for _ in range(fanout):
            last_leave_ms = max(arrival_ms, last_leave_ms + spacing_ms)
            worst_ms = max(worst_ms, last_leave_ms - arrival_ms)
    return worst_ms


@pytest.mark.parametrize("rate_factor", [0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.7, 4.0])
def test_shaping_bound_holds_for_leaky_bucket(rate_factor):
    app_rate = 120.0

    worst_ms = _max_bucket_delay_ms(app_rate, rate_factor, num_requests=2000)

    assert worst_ms <= shaping_delay_ms(app_rate, rate_factor) + 1e-6
