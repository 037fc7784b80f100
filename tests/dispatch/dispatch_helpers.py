"""Helpers for the dispatcher tests: module plans written by hand and a virtual-time driver."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harpagon.dispatch import Batch, Dispatcher, ModuleRequest
from harpagon.model import Group, ModulePlan


def module_plan(groups: Sequence[Group], rate: float | None = None) -> ModulePlan:
    """Return a module plan over ``groups``; latency, budget and cost are not read by the dispatcher."""
    total = sum(g.rate for g in groups) if rate is None else rate
    return ModulePlan(
        name="m", profile="p", rate=total, budget_ms=1e9, latency_ms=0.0,
        cost_per_hour=0.0, groups=tuple(groups),
    )


def group(
    batch_size: int, workers: int, rate: float, dummy_rate: float = 0.0,
    dispatch: str = "batch_aware",
) -> Group:
    """Return a group on hardware ``hw``; its latency field is not read by the dispatcher."""
    return Group("hw", batch_size, workers, rate, dummy_rate, dispatch, 0.0)


def drive(
    dispatcher: Dispatcher, arrivals_ms: Sequence[float], releases_ms: Sequence[float]
) -> list[Batch]:
    """Run ``dispatcher`` in virtual time and return every batch it sends.

    Request ``i`` arrives at ``arrivals_ms[i]`` (non-decreasing) with release
    ``releases_ms[i]``. Deadlines strictly before an arrival are served first, and a
    deadline at the arrival's time is served after it, as the simulator does.
    """
    sent: list[Batch] = []
    for request_id, (now_ms, release_ms) in enumerate(zip(arrivals_ms, releases_ms)):
        while (deadline := dispatcher.next_deadline_ms()) is not None and deadline < now_ms:
            sent += dispatcher.on_deadline(deadline)
        sent += dispatcher.on_request(now_ms, ModuleRequest(request_id, release_ms))
    while (deadline := dispatcher.next_deadline_ms()) is not None:
        sent += dispatcher.on_deadline(deadline)
    return sent


def uniform_module_stream(app_rate: float, rate_factor: float, count: int) -> tuple[list[float], list[int]]:
    """Return uniform application arrivals (ms) and each module request's application index.

    Application request ``i`` arrives at ``1000 i / app_rate`` and sends
    ``floor(f (i + 1)) - floor(f i)`` requests to the module (deterministic fan-out).
    """
    interval_ms = 1000.0 / app_rate
    arrivals = [i * interval_ms for i in range(count)]
    owners = []
    for i in range(count):
        owners += [i] * (math.floor(rate_factor * (i + 1)) - math.floor(rate_factor * i))
    return arrivals, owners
