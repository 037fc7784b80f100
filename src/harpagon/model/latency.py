"""The latency, capacity and cost model shared by every planner, the validator and the simulator.

Units: latency and batch times in ms, rates in requests per second, prices in USD per hour.

The model is the exact worst case of the dispatcher in ``harpagon.dispatch`` under uniform
application arrivals with deterministic fan-out, not the first-cut formula
``o + d + 1000 (b - 1) / w``. The dispatcher works as follows (symbols of one group
``g = (h, b, n, r_g, delta_g)`` with collection rate ``w_g = r_g + delta_g``):

1. **Virtual arrival.** A module request of the application request that arrived at ``a``
   is released at ``v = a + S_m``, where ``S_m`` is the planned start of the module
   (the longest path of planned module latencies before it). Upstream work that finishes
   early is held, so every module receives the application's arrival pattern, not the
   bursts of upstream batches.
2. **Shaping.** Released requests pass a leaky bucket at the module rate ``r_m``: the k-th
   leaves at ``u_k = max(v_k, u_{k-1} + 1000 / r_m)``. Fan-out bursts (several requests
   with one ``v``) are spread out. With uniform arrivals at rate ``R`` and fan-out ``f``
   the delay ``u - v`` is below ``1000 / R``, and at most ``1000 / R - 1000 / r_m`` when
   ``f`` is an integer (zero for ``f = 1``). This is :func:`shaping_delay_ms`.
3. **Split.** Each shaped request goes to the group with the largest deficit
   ``share * (k + 1) - assigned`` (ties to the lower index), so each group receives its
   share ``alpha_g = r_g / r_m`` within one request at every prefix. A round-robin group
   then hands its requests to its workers in turn. One deficit rule over all the workers
   of two groups would let a worker drift by more than one request.
4. **Batch clock.** A batch-aware group closes a batch every ``P_g = 1000 b / w_g`` ms,
   pads it to ``b`` and sends it to its next worker in turn; each worker receives a batch
   every ``n P_g >= d`` ms, so it is never behind. A request joins the first batch that
   closes at or after ``u``, so it waits at most ``P_g`` and
   ``latency_g = o + d + P_g``. Under round-robin dispatch every worker has its own clock
   of period ``n P_g`` (phases staggered by ``P_g``): ``latency_g = o + d + n P_g``.
5. **Slack for the split.** A batch never overflows when the requests that can fall into
   one period fit in ``b``. With one group this holds for ``w_g >= r_g``. With two groups
   the share deviates by up to one request, so ``w_g >= r_g b / (b - alpha)`` is required
   (``alpha`` the group's share, divided by ``n`` under round-robin). A module has at most
   two groups (the main group and the residual group); see :data:`MAX_GROUPS_PER_MODULE`.

A module's latency is ``shaping_ms + max_g latency_g``; its cost is
``sum_g n_g * price(h_g)``.
"""

from __future__ import annotations

import math
from enum import Enum

__all__ = [
    "Dispatch",
    "MAX_GROUPS_PER_MODULE",
    "REL_TOL",
    "batch_period_ms",
    "group_capacity",
    "group_latency_ms",
    "max_period_ms",
    "min_collection_rate",
    "shaping_delay_ms",
    "slack_share",
]

MAX_GROUPS_PER_MODULE = 2
"""The main group and one residual group: the split bound of step 5 is proved for two."""

REL_TOL = 1e-9
"""Relative tolerance used when checking capacities, rates and latencies."""


class Dispatch(str, Enum):
    """Dispatch policy of a worker group."""

    BATCH_AWARE = "batch_aware"
    ROUND_ROBIN = "round_robin"


def batch_period_ms(batch_size: int, collection_rate: float) -> float:
    """Return the batch period ``P = 1000 b / w`` in ms.

    Examples
    --------
    >>> batch_period_ms(8, 200.0)
    40.0
    """
    if collection_rate <= 0:
        return math.inf
    return 1000.0 * batch_size / collection_rate


def group_capacity(batch_size: int, batch_latency_ms: float, workers: int) -> float:
    """Return the highest collection rate (req/s) that ``workers`` workers sustain.

    Each worker runs one batch of ``batch_size`` in ``batch_latency_ms``.

    Examples
    --------
    >>> group_capacity(8, 40.0, 2)
    400.0
    """
    return workers * 1000.0 * batch_size / batch_latency_ms


def group_latency_ms(
    *,
    overhead_ms: float,
    batch_latency_ms: float,
    batch_size: int,
    workers: int,
    collection_rate: float,
    dispatch: Dispatch | str,
) -> float:
    """Return the worst-case latency (ms) of one request in a group, shaping excluded.

    Parameters
    ----------
    overhead_ms : float
        Module overhead ``o`` (pre/post-processing, network), ms.
    batch_latency_ms : float
        Profiled time ``d`` of one batch, ms.
    batch_size : int
        Batch size ``b``.
    workers : int
        Worker count ``n``.
    collection_rate : float
        Real plus dummy rate ``w``, req/s.
    dispatch : Dispatch
        ``batch_aware``: ``o + d + P``; ``round_robin``: ``o + d + n P``.

    Examples
    --------
    >>> group_latency_ms(overhead_ms=2, batch_latency_ms=40, batch_size=8, workers=1,
    ...                  collection_rate=200, dispatch="batch_aware")
    82.0
    >>> group_latency_ms(overhead_ms=2, batch_latency_ms=40, batch_size=8, workers=2,
    ...                  collection_rate=200, dispatch="round_robin")
    122.0
    """
    period_ms = batch_period_ms(batch_size, collection_rate)
    if Dispatch(dispatch) is Dispatch.ROUND_ROBIN:
        period_ms *= workers
    return overhead_ms + batch_latency_ms + period_ms


def slack_share(share: float, workers: int, dispatch: Dispatch | str, num_groups: int) -> float:
    """Return the split slack ``s`` of step 5: ``w >= r b / (b - s)``.

    ``share`` is the group's fraction ``r_g / r_m`` of the module rate. A module with one
    group needs no slack, because the split is exact.
    """
    if num_groups <= 1:
        return 0.0
    if Dispatch(dispatch) is Dispatch.ROUND_ROBIN:
        return share / workers
    return share


def min_collection_rate(rate: float, batch_size: int, slack: float) -> float:
    """Return the lowest collection rate (req/s) whose batches never overflow.

    Returns ``inf`` when no rate works (``b <= slack``).

    Examples
    --------
    >>> min_collection_rate(100.0, 4, 0.0)
    100.0
    >>> min_collection_rate(90.0, 4, 0.5)
    102.85714285714286
    """
    if batch_size - slack <= 0:
        return math.inf
    return rate * batch_size / (batch_size - slack)


def max_period_ms(
    budget_ms: float,
    overhead_ms: float,
    batch_latency_ms: float,
    workers: int,
    dispatch: Dispatch | str,
) -> float:
    """Return the longest batch period (ms) that keeps a group within ``budget_ms``.

    ``budget_ms`` excludes the module's shaping delay. Returns a value ``<= 0`` when
    even an instant batch would be late.
    """
    room_ms = budget_ms - overhead_ms - batch_latency_ms
    if Dispatch(dispatch) is Dispatch.ROUND_ROBIN:
        return room_ms / workers
    return room_ms


def shaping_delay_ms(app_rate: float, rate_factor: float) -> float:
    """Return the bound on the leaky-bucket delay of step 2, in ms.

    With uniform arrivals at ``app_rate`` (req/s) and deterministic fan-out
    ``rate_factor``, the k-th module request of application request ``i`` satisfies
    ``k < f (i + 1)``, so it leaves the bucket less than one application interval
    ``1000 / R`` after its release; for an integer ``f`` the bound tightens by one module
    slot ``1000 / (f R)``, which makes it zero for ``f = 1``.

    Examples
    --------
    >>> shaping_delay_ms(100.0, 1.0)
    0.0
    >>> shaping_delay_ms(100.0, 2.0)
    5.0
    >>> shaping_delay_ms(100.0, 2.5)
    10.0
    """
    interval_ms = 1000.0 / app_rate
    if rate_factor >= 1.0 and abs(rate_factor - round(rate_factor)) <= 1e-12:
        return interval_ms - interval_ms / round(rate_factor)
    return interval_ms
