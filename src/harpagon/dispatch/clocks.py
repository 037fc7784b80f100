"""Batch clocks: where a module's requests can go and when each batch closes.

A batch-aware group has one clock of period ``P_g = 1000 b / w_g`` ms whose tick ``j`` goes
to worker ``j mod n``. A round-robin group has one clock per worker, of period ``n P_g``,
worker ``i`` at phase ``i P_g``. A member of a shared machine (duty cycle ``C``) has one
clock of period ``C`` at the phase where the machine starts its batch. Times in ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harpagon.errors import ConfigError
from harpagon.model.latency import Dispatch, batch_period_ms
from harpagon.model.plan import ModulePlan

__all__ = ["BatchClock", "Route", "SharedSlot", "build_clocks", "build_routes"]


@dataclass(frozen=True)
class SharedSlot:
    """A module's place on a shared machine, as its dispatcher uses it."""

    duty_cycle_ms: float
    phase_ms: float
    """Offset of the member's batch within the machine's duty cycle."""
    batch_size: int
    rate: float
    """Real request rate the member carries, req/s."""


@dataclass(frozen=True)
class BatchClock:
    """One batch clock: ticks at ``base_ms + j * period_ms`` for ``j >= 0``."""

    group: int
    """Index reported in :attr:`Batch.group`."""
    worker: int | None
    """Fixed worker of every batch, or None to rotate tick ``j`` to worker ``j mod workers``."""
    workers: int
    batch_size: int
    base_ms: float
    period_ms: float
    share: float
    """Fraction of the module's requests routed to this clock's group (or shared slot)."""

    def tick_ms(self, index: int) -> float:
        """Return the clock time of tick ``index``."""
        return self.base_ms + index * self.period_ms

    def worker_of(self, index: int) -> int:
        """Return the worker that receives the batch of tick ``index``."""
        if self.worker is not None:
            return self.worker
        return index % self.workers

    def first_tick_index(self, time_ms: float) -> int:
        """Return the first tick index whose time is ``>= time_ms`` (and ``>= 0``)."""
        index = math.ceil((time_ms - self.base_ms) / self.period_ms)
        # The division can round below the exact quotient, and the tick must not be early.
        if self.base_ms + index * self.period_ms < time_ms:
            index += 1
        return max(index, 0)


def build_clocks(
    module: ModulePlan,
    dispatch: Dispatch | None,
    origin_ms: float,
    shared: tuple[SharedSlot, ...] = (),
) -> tuple[BatchClock, ...]:
    """Return the batch clocks of a module: its groups' clocks, then its shared slots.

    ``dispatch`` forces one policy on every group, and None keeps each group's own. The clocks
    of one group are consecutive. Shares are ``r_g / sum of rates``, which is
    ``r_g / r_m`` in a valid plan.

    Raises
    ------
    ConfigError
        If the module has nothing to dispatch to, or a group's rates cannot give a period.
    """
    total_rate = sum(g.rate for g in module.groups) + sum(s.rate for s in shared)
    if not module.groups and not shared:
        raise ConfigError(f"module {module.name!r}: no groups and no shared machine to dispatch to")
    if not total_rate > 0 or not module.rate > 0:
        raise ConfigError(
            f"module {module.name!r}: rates must be > 0 req/s, got module rate {module.rate} "
            f"and groups carrying {total_rate}"
        )
    clocks: list[BatchClock] = []
    for index, group in enumerate(module.groups):
        if group.workers < 1 or group.batch_size < 1 or not group.collection_rate > 0:
            raise ConfigError(
                f"module {module.name!r} group {index}: workers and batch_size must be >= 1 and "
                f"rate + dummy_rate > 0, got {group.workers}, {group.batch_size} and "
                f"{group.collection_rate}"
            )
        try:
            policy = dispatch or Dispatch(group.dispatch)
        except ValueError:
            raise ConfigError(
                f"module {module.name!r} group {index}: unknown dispatch {group.dispatch!r}; "
                f"use one of {', '.join(d.value for d in Dispatch)}"
            ) from None
        period_ms = batch_period_ms(group.batch_size, group.collection_rate)
        share = group.rate / total_rate
        if policy is Dispatch.BATCH_AWARE:
            clocks.append(
                BatchClock(index, None, group.workers, group.batch_size, origin_ms, period_ms, share)
            )
            continue
        for worker in range(group.workers):
            clocks.append(
                BatchClock(
                    index, worker, group.workers, group.batch_size,
                    origin_ms + worker * period_ms, group.workers * period_ms, share,
                )
            )
    for offset, slot in enumerate(shared):
        clocks.append(
            BatchClock(
                len(module.groups) + offset, 0, 1, slot.batch_size,
                origin_ms + slot.phase_ms, slot.duty_cycle_ms, slot.rate / total_rate,
            )
        )
    return tuple(clocks)


@dataclass(frozen=True)
class Route:
    """A target of the split: the consecutive clocks of one group or shared slot."""

    share: float
    first_clock: int
    num_clocks: int
    """Number of clocks: 1 for a batch-aware group or a shared slot, the worker count for round-robin."""


def build_routes(clocks: tuple[BatchClock, ...]) -> tuple[Route, ...]:
    """Return the split targets of ``clocks``: one route per group or shared slot, in order."""
    routes: list[Route] = []
    for index, clock in enumerate(clocks):
        if index and clock.group == clocks[index - 1].group:
            last = routes[-1]
            routes[-1] = Route(last.share, last.first_clock, last.num_clocks + 1)
        else:
            routes.append(Route(clock.share, index, 1))
    return tuple(routes)
