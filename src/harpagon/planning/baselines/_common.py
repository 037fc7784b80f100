"""Helpers shared by the baseline planners: worker counts, option pruning, timing.

Latency in ms, rates in req/s, prices in USD/h. Nothing here plans; each baseline module
owns its own rules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from harpagon.model.hardware import HardwareCatalog
from harpagon.model.profiles import Profile

__all__ = [
    "elapsed_ms",
    "min_workers",
    "pareto_front",
    "profiled_hardware",
    "throughput",
]

T = TypeVar("T")


def throughput(batch_size: int, batch_latency_ms: float) -> float:
    """Return one worker's throughput ``1000 b / d`` in req/s."""
    return 1000.0 * batch_size / batch_latency_ms


def min_workers(rate: float, worker_throughput: float) -> int:
    """Return the fewest workers that carry ``rate``.

    A tiny relative tolerance keeps an exact multiple (``rate = n T``) at ``n`` workers.
    """
    return max(1, math.ceil(rate / worker_throughput * (1.0 - 1e-12)))


def profiled_hardware(profile: Profile, hardware: HardwareCatalog) -> list[str]:
    """Return the catalog's hardware types, in catalog order, on which ``profile`` was measured."""
    return [name for name in hardware.names() if profile.latency_ms.get(name)]


def elapsed_ms(start: float) -> float:
    """Return the milliseconds elapsed since ``start`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - start) * 1000.0


@dataclass(frozen=True)
class _Point(Generic[T]):
    latency_ms: float
    cost_per_hour: float
    item: T


def pareto_front(items: Iterable[T], latency_ms: Sequence[float], cost: Sequence[float]) -> list[T]:
    """Return the items not dominated in (latency, cost), sorted by rising latency.

    An item is dropped when another one has lower or equal latency and lower or equal cost;
    of equal points the first one is kept.
    """
    points = sorted(
        (_Point(lat, c, item) for item, lat, c in zip(items, latency_ms, cost, strict=True)),
        key=lambda p: (p.latency_ms, p.cost_per_hour),
    )
    front: list[T] = []
    best_cost = math.inf
    for point in points:
        if point.cost_per_hour < best_cost - 1e-12:
            front.append(point.item)
            best_cost = point.cost_per_hour
    return front

