"""The batch-aware and round-robin dispatchers: one state machine, two clock layouts.

Every request goes through four steps (the dispatcher of :mod:`harpagon.model.latency`):
hold until its release time ``v``; shape at the module rate,
``u_k = max(v_k, u_{k-1} + 1000 / r_m)``; split to the group with the largest deficit
(under round-robin, then to the group's workers in turn); join the first batch of that
clock whose tick is ``>= u_k`` and that has room. A tick whose batch holds requests sends
it padded to the batch size. Times in ms.

The split is two-level on purpose. One deficit rule over all the workers of two
round-robin groups lets a worker's share drift by more than one request: with shares
0.375 (one worker) and 0.625 (two workers) at 5 req/s, a batch-size-1 worker of period
333 ms received two requests 200 ms apart and one waited 401 ms against a planned 334 ms.
Splitting by group and rotating inside the group keeps each group within one request,
which is what the model's overflow slack assumes.
"""

from __future__ import annotations

import heapq
import math
from enum import Enum

from harpagon.dispatch.base import Batch, Dispatcher, ModuleRequest
from harpagon.dispatch.capacity import full_capacity
from harpagon.dispatch.clocks import BatchClock, SharedSlot, build_clocks, build_routes
from harpagon.dispatch.split import Splitter
from harpagon.errors import ConfigError
from harpagon.model.latency import Dispatch
from harpagon.model.plan import ModulePlan

__all__ = [
    "BatchAwareDispatcher",
    "ClockedDispatcher",
    "DispatchMode",
    "RoundRobinDispatcher",
    "make_dispatcher",
]


class DispatchMode(str, Enum):
    """Policy that a dispatcher applies to a module's groups."""

    PLANNED = "planned"
    """The ``dispatch`` field of each group."""
    BATCH_AWARE = "batch_aware"
    ROUND_ROBIN = "round_robin"


class ClockedDispatcher(Dispatcher):
    """The dispatcher state machine, with the policy given by each group's ``dispatch`` field.

    Parameters
    ----------
    module : ModulePlan
        The module's plan.
    app_rate : float
        Application rate the plan was made for, req/s.
    origin_ms : float
        Clock value at which every batch clock has phase 0.
    shared : tuple of SharedSlot
        The module's members on shared machines. Their batches report group indices
        ``len(module.groups) + i``.

    Notes
    -----
    The shaped time is computed as ``u_k = slot k + max_{i <= k}(v_i - slot i)`` with
    ``slot = 1000 / r_m``: the same recurrence without the rounding drift of adding the
    slot ``k`` times, and the form the vectorised path in :mod:`harpagon.dispatch.bulk`
    computes bit for bit. Batch placement uses positions: request ``i`` of a clock takes
    position ``max(j0 b, previous + 1)`` and batch ``position // b``. Per request the work is
    O(log open batches) plus the split (O(1), or O(groups) for three or more groups and
    shared slots of unequal shares).
    """

    forced_policy: Dispatch | None = None
    """Policy applied to every group, or None to use each group's own."""

    def __init__(
        self,
        module: ModulePlan,
        app_rate: float,
        *,
        origin_ms: float = 0.0,
        shared: tuple[SharedSlot, ...] = (),
        shaping_rate: float | None = None,
    ) -> None:
        super().__init__(module, app_rate, origin_ms=origin_ms)
        if shaping_rate is not None and not shaping_rate >= module.rate:
            raise ValueError(
                f"shaping_rate must be >= the module rate {module.rate} req/s, got {shaping_rate}"
            )
        self.clocks: tuple[BatchClock, ...] = build_clocks(
            module, self.forced_policy, origin_ms, tuple(shared)
        )
        self.slot_ms = 1000.0 / (module.rate if shaping_rate is None else shaping_rate)
        """Shaping interval between consecutive shaped requests, ms: ``1000 / r_m`` unless a
        faster ``shaping_rate`` is given."""
        self.routes = build_routes(self.clocks)
        """Split targets: one per group or shared slot, each over its consecutive clocks."""
        self._splitter = Splitter(tuple(route.share for route in self.routes))
        self._route_counts = [0] * len(self.routes)
        self._num_shaped = 0
        self._shaped_offset_max = -math.inf
        self._held: list[tuple[float, int, ModuleRequest]] = []
        self._num_accepted = 0
        self._last_position = [-1] * len(self.clocks)
        self._next_open = [0] * len(self.clocks)
        self._open: dict[tuple[int, int], list[ModuleRequest]] = {}
        self._ticks: list[tuple[float, int, int]] = []
        self._num_pending = 0

    @property
    def num_shaped(self) -> int:
        """Number of requests released and placed in a batch so far."""
        return self._num_shaped

    # -- interface ---------------------------------------------------------------------

    def on_request(self, now_ms: float, request: ModuleRequest) -> list[Batch]:
        self._num_pending += 1
        self._release_due(now_ms)
        if request.release_ms <= now_ms:
            self._place(request, request.release_ms, now_ms)
        else:
            heapq.heappush(self._held, (request.release_ms, self._num_accepted, request))
        self._num_accepted += 1
        return self._close_due(now_ms, inclusive=False)

    def on_deadline(self, now_ms: float) -> list[Batch]:
        self._release_due(now_ms)
        return self._close_due(now_ms, inclusive=True)

    def next_deadline_ms(self) -> float | None:
        candidates = []
        if self._held:
            candidates.append(self._held[0][0])
        if self._ticks:
            candidates.append(self._ticks[0][0])
        return min(candidates) if candidates else None

    def pending(self) -> int:
        return self._num_pending

    def drain(self, now_ms: float) -> list[Batch]:
        while self._held:
            release_ms, _, request = heapq.heappop(self._held)
            self._place(request, release_ms, max(release_ms, now_ms))
        batches = self._close_due(math.inf, inclusive=True)
        return [
            Batch(b.group, b.worker, b.requests, b.batch_size, now_ms) for b in batches
        ]

    # -- steps -------------------------------------------------------------------------

    def _release_due(self, now_ms: float) -> None:
        held = self._held
        while held and held[0][0] <= now_ms:
            release_ms, _, request = heapq.heappop(held)
            self._place(request, release_ms, release_ms)

    def _place(self, request: ModuleRequest, release_ms: float, now_ms: float) -> None:
        # 1. Shape on the virtual release: u_k = slot k + running max of (release - slot k).
        # A late request (now > release) is shaped on its release too, so that its lateness
        # does not shift every later request; it only joins no batch that closed already.
        k = self._num_shaped
        self._num_shaped += 1
        offset_ms = self.slot_ms * k
        self._shaped_offset_max = max(self._shaped_offset_max, release_ms - offset_ms)
        shaped_ms = max(offset_ms + self._shaped_offset_max, now_ms)

        # 2. Split to a group, rotate over its clocks, then take the first batch at or
        # after u that has room.
        route_index = self._splitter.target(k)
        route = self.routes[route_index]
        index = route.first_clock + self._route_counts[route_index] % route.num_clocks
        self._route_counts[route_index] += 1
        clock = self.clocks[index]
        first = max(clock.first_tick_index(shaped_ms), self._next_open[index])
        position = max(first * clock.batch_size, self._last_position[index] + 1)
        self._last_position[index] = position
        tick = position // clock.batch_size

        key = (index, tick)
        batch = self._open.get(key)
        if batch is None:
            self._open[key] = [request]
            heapq.heappush(self._ticks, (clock.tick_ms(tick), index, tick))
        else:
            batch.append(request)

    def _close_due(self, now_ms: float, *, inclusive: bool) -> list[Batch]:
        ticks = self._ticks
        closed: list[Batch] = []
        while ticks and (ticks[0][0] < now_ms or (inclusive and ticks[0][0] <= now_ms)):
            tick_ms, index, tick = heapq.heappop(ticks)
            requests = self._open.pop((index, tick))
            self._next_open[index] = max(self._next_open[index], tick + 1)
            self._num_pending -= len(requests)
            clock = self.clocks[index]
            closed.append(
                Batch(clock.group, clock.worker_of(tick), tuple(requests), clock.batch_size, tick_ms)
            )
        return closed


class BatchAwareDispatcher(ClockedDispatcher):
    """Batch-aware dispatch for every group: one clock per group, tick ``j`` to worker ``j mod n``."""

    forced_policy = Dispatch.BATCH_AWARE


class RoundRobinDispatcher(ClockedDispatcher):
    """Round-robin dispatch for every group: one clock per worker, period ``n P_g``."""

    forced_policy = Dispatch.ROUND_ROBIN


def make_dispatcher(
    module: ModulePlan,
    app_rate: float,
    *,
    dispatch: DispatchMode | str = DispatchMode.PLANNED,
    origin_ms: float = 0.0,
    shared: tuple[SharedSlot, ...] = (),
    shaping_rate: float | None = None,
    clock: str = "planned",
    overhead_ms: float = 0.0,
) -> ClockedDispatcher:
    """Return the dispatcher of ``module`` for a dispatch mode and batch clock.

    ``planned`` follows each group's ``dispatch`` field; ``batch_aware`` and
    ``round_robin`` force one policy on every group (round-robin over a plan made for
    batch-aware dispatch is that plan dispatched per request). ``shaping_rate`` (req/s, at
    least the module rate) replaces the module rate in the shaper; see
    :func:`harpagon.dispatch.capacity.full_capacity`.

    ``clock="capacity"`` pads every group to its capacity and shapes at the fastest rate
    that keeps the plan's bounds (``full_capacity``, which needs the module's
    ``overhead_ms``). A module with members on shared machines keeps its planned clocks.

    Raises
    ------
    ConfigError
        If ``dispatch`` or ``clock`` is not a known mode, or the module cannot be dispatched.
    """
    if clock not in ("planned", "capacity"):
        raise ConfigError(f"unknown batch clock {clock!r}; use planned or capacity")
    if clock == "capacity" and module.groups and not shared:
        module, shaping_rate = full_capacity(module, overhead_ms)
    try:
        mode = DispatchMode(dispatch)
    except ValueError:
        raise ConfigError(
            f"unknown dispatch mode {dispatch!r}; use one of "
            f"{', '.join(m.value for m in DispatchMode)}"
        ) from None
    kinds: dict[DispatchMode, type[ClockedDispatcher]] = {
        DispatchMode.PLANNED: ClockedDispatcher,
        DispatchMode.BATCH_AWARE: BatchAwareDispatcher,
        DispatchMode.ROUND_ROBIN: RoundRobinDispatcher,
    }
    return kinds[mode](
        module, app_rate, origin_ms=origin_ms, shared=shared, shaping_rate=shaping_rate
    )
