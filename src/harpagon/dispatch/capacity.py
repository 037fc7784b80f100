"""Run a module's batch clocks at full capacity: the most dummy requests a plan allows.

Dummies cost nothing (workers are paid whether busy or not), so every group of a valid plan
may collect at its capacity ``w_g = n T`` instead of its planned rate. Each bound of the
model then gets tighter: the batch period shrinks, so the group latency drops to
``o + d + d / n`` (batch-aware), and the overflow bound ``w_g >= r_g b / (b - s)`` keeps
holding. The shaper may then run faster than the module rate, which drains fan-out bursts
and recovers from stalls sooner, up to the rate ``rho`` at which every group still receives
at most ``b`` requests per period:
``rho = min_g w_g (b_g - s_g) / (share_g b_g)``.
Times in ms, rates in req/s.
"""

from __future__ import annotations

from dataclasses import replace

from harpagon.model.latency import Dispatch, batch_period_ms, group_capacity, slack_share
from harpagon.model.plan import ModulePlan
from harpagon.model.validate import make_group

__all__ = ["full_capacity"]


def full_capacity(module: ModulePlan, overhead_ms: float) -> tuple[ModulePlan, float]:
    """Return the module with every group padded to capacity, and the fastest shaping rate.

    The batch time ``d`` of each group is recovered from its planned latency, so no profile
    is needed: ``d = latency - o - P`` (batch-aware) or ``latency - o - n P`` (round-robin).

    Parameters
    ----------
    module : ModulePlan
        A module of a valid plan.
    overhead_ms : float
        The module's overhead ``o``, ms.

    Returns
    -------
    (ModulePlan, float)
        The padded module (same groups, workers and real rates; larger dummy rates and
        lower latencies) and the shaping rate ``rho >= module.rate`` in req/s.

    Examples
    --------
    >>> from harpagon.model.plan import Group
    >>> g = make_group(hardware="t4", batch_size=4, workers=1, rate=50.0, dummy_rate=0.0,
    ...                dispatch="batch_aware", overhead_ms=0.0, batch_latency_ms=20.0)
    >>> m = ModulePlan("m", "p", 50.0, 100.0, g.latency_ms, 0.5, (g,))
    >>> padded, rho = full_capacity(m, 0.0)
    >>> padded.groups[0].collection_rate, padded.groups[0].latency_ms, rho
    (200.0, 40.0, 200.0)
    """
    groups = []
    shaping_rate = float("inf")
    for group in module.groups:
        dispatch = Dispatch(group.dispatch)
        period_ms = batch_period_ms(group.batch_size, group.collection_rate)
        if dispatch is Dispatch.ROUND_ROBIN:
            period_ms *= group.workers
        batch_ms = group.latency_ms - overhead_ms - period_ms
        capacity = max(group_capacity(group.batch_size, batch_ms, group.workers), group.collection_rate)
        padded = make_group(
            hardware=group.hardware,
            batch_size=group.batch_size,
            workers=group.workers,
            rate=group.rate,
            dummy_rate=capacity - group.rate,
            dispatch=dispatch,
            overhead_ms=overhead_ms,
            batch_latency_ms=batch_ms,
        )
        groups.append(padded)
        share = group.rate / module.rate
        slack = slack_share(share, group.workers, dispatch, len(module.groups))
        shaping_rate = min(
            shaping_rate, capacity * (group.batch_size - slack) / (share * group.batch_size)
        )
    latency = module.shaping_ms + max(g.latency_ms for g in groups)
    padded_module = replace(module, groups=tuple(groups), latency_ms=latency)
    return padded_module, max(shaping_rate, module.rate)
