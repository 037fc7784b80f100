"""The vectorised path: a whole stream of requests through a fresh dispatcher with numpy.

:func:`dispatch_bulk` returns the batches that a :class:`ClockedDispatcher` returns when
it is driven on time (every request passed at its arrival, every deadline served when
due, arrivals before deadlines at equal times), with the same floating-point operations,
so the two agree bit for bit. Times in ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harpagon.dispatch.policies import ClockedDispatcher
from harpagon.dispatch.split import split_targets

__all__ = ["BulkDispatch", "dispatch_bulk"]


@dataclass(frozen=True)
class BulkDispatch:
    """Batches of a request stream as arrays, batches in tick order."""

    request_batch: np.ndarray
    """Per request (input order): index of its batch."""
    request_release_ms: np.ndarray
    """Per request (input order): release time ``max(arrival, release_ms)``."""
    batch_group: np.ndarray
    batch_worker: np.ndarray
    batch_close_ms: np.ndarray
    batch_num_requests: np.ndarray
    """Real requests in each batch."""
    batch_size: np.ndarray
    """Planned batch size of each batch (real requests plus padding)."""

    @property
    def num_batches(self) -> int:
        """Number of batches."""
        return int(self.batch_close_ms.size)


def dispatch_bulk(
    dispatcher: ClockedDispatcher, arrival_ms: np.ndarray, release_ms: np.ndarray
) -> BulkDispatch:
    """Dispatch a whole request stream through a fresh dispatcher.

    Parameters
    ----------
    dispatcher : ClockedDispatcher
        A dispatcher that has not seen any request. It is not modified.
    arrival_ms : numpy.ndarray
        Time each request reaches the dispatcher, non-decreasing, ms.
    release_ms : numpy.ndarray
        Each request's release time ``v``, ms.

    Raises
    ------
    ValueError
        If the dispatcher was used already, the arrays differ in length, or the arrival
        times decrease.

    Notes
    -----
    Runs in O(N log N) time for N requests (one stable sort), plus O(N targets) Python
    steps when a module splits over three or more groups of unequal shares.
    """
    arrival_ms = np.asarray(arrival_ms, dtype=np.float64)
    release_ms = np.asarray(release_ms, dtype=np.float64)
    if dispatcher.num_shaped or dispatcher.pending():
        raise ValueError("dispatch_bulk needs a fresh dispatcher, but this one has requests already")
    if arrival_ms.shape != release_ms.shape or arrival_ms.ndim != 1:
        raise ValueError(
            f"arrival_ms and release_ms must be 1-D arrays of one length, got shapes "
            f"{arrival_ms.shape} and {release_ms.shape}"
        )
    if arrival_ms.size > 1 and np.any(np.diff(arrival_ms) < 0):
        raise ValueError("arrival_ms must be non-decreasing (requests in the order they arrive)")
    count = arrival_ms.size
    if count == 0:
        empty_int = np.empty(0, dtype=np.int64)
        empty_float = np.empty(0, dtype=np.float64)
        return BulkDispatch(
            empty_int, empty_float, empty_int, empty_int, empty_float, empty_int, empty_int
        )

    # 1. Hold and shape: release order is (release time, arrival order).
    released_ms = np.maximum(arrival_ms, release_ms)
    order = np.argsort(released_ms, kind="stable")
    offsets_ms = dispatcher.slot_ms * np.arange(count, dtype=np.float64)
    # A late request is shaped on its virtual release, but joins no batch before it arrives.
    shaped_ms = offsets_ms + np.maximum.accumulate(release_ms[order] - offsets_ms)
    shaped_ms = np.maximum(shaped_ms, released_ms[order])

    # 2. Split to groups, rotate over each group's clocks, then place by position.
    routes = split_targets(tuple(route.share for route in dispatcher.routes), count)
    targets = np.empty(count, dtype=np.int64)
    for route_index, route in enumerate(dispatcher.routes):
        selected = np.flatnonzero(routes == route_index)
        rotation = np.arange(selected.size, dtype=np.int64) % route.num_clocks
        targets[selected] = route.first_clock + rotation
    batch_of_shaped = np.empty(count, dtype=np.int64)
    parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (clock, tick index, size) per run
    num_batches = 0
    for index, clock in enumerate(dispatcher.clocks):
        selected = np.flatnonzero(targets == index)
        if selected.size == 0:
            continue
        shaped = shaped_ms[selected]
        first = np.ceil((shaped - clock.base_ms) / clock.period_ms)
        first += clock.base_ms + first * clock.period_ms < shaped
        first = np.maximum(first, 0).astype(np.int64)
        local = np.arange(selected.size, dtype=np.int64)
        position = np.maximum.accumulate(first * clock.batch_size - local) + local
        tick = position // clock.batch_size
        new_batch = np.empty(tick.size, dtype=bool)
        new_batch[0] = True
        np.not_equal(tick[1:], tick[:-1], out=new_batch[1:])
        starts = np.flatnonzero(new_batch)
        batch_of_shaped[selected] = num_batches + np.cumsum(new_batch) - 1
        sizes = np.diff(np.append(starts, tick.size))
        parts.append((index, tick[starts], sizes))
        num_batches += starts.size

    # 3. Order batches by (tick time, clock index), as the heap of the state machine does.
    clock_index = np.concatenate([np.full(t.size, i, dtype=np.int64) for i, t, _ in parts])
    ticks = np.concatenate([t for _, t, _ in parts])
    close_ms = np.concatenate(
        [dispatcher.clocks[i].base_ms + t * dispatcher.clocks[i].period_ms for i, t, _ in parts]
    )
    num_requests = np.concatenate([s for _, _, s in parts])
    batch_order = np.lexsort((clock_index, close_ms))
    rank = np.empty(num_batches, dtype=np.int64)
    rank[batch_order] = np.arange(num_batches, dtype=np.int64)

    groups = np.array([c.group for c in dispatcher.clocks], dtype=np.int64)[clock_index]
    sizes = np.array([c.batch_size for c in dispatcher.clocks], dtype=np.int64)[clock_index]
    fixed = np.array(
        [-1 if c.worker is None else c.worker for c in dispatcher.clocks], dtype=np.int64
    )[clock_index]
    rotation = np.array([c.workers for c in dispatcher.clocks], dtype=np.int64)[clock_index]
    workers = np.where(fixed >= 0, fixed, ticks % rotation)

    request_batch = np.empty(count, dtype=np.int64)
    request_batch[order] = rank[batch_of_shaped]
    return BulkDispatch(
        request_batch=request_batch,
        request_release_ms=released_ms,
        batch_group=groups[batch_order],
        batch_worker=workers[batch_order],
        batch_close_ms=close_ms[batch_order],
        batch_num_requests=num_requests[batch_order],
        batch_size=sizes[batch_order],
    )
