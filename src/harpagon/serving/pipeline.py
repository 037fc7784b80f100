"""The pipeline: application requests through the module DAG, driven by the dispatchers.

One :class:`Pipeline` per server runs on the asyncio event loop. Its clock is the loop's
clock in ms since :meth:`Pipeline.start`. Each module has one dispatcher from
:func:`harpagon.dispatch.make_dispatcher`:

* an item becomes a module request, released at ``arrival_ms + start_ms[module]`` (the
  module's planned start), and goes to the dispatcher's ``on_request``;
* a loop timer fires at the dispatcher's ``next_deadline_ms()`` and calls ``on_deadline``;
* each batch the dispatcher closes goes to the worker it names, through ``run_batch``;
* results go back to their application request. When every parent of a module has
  finished, :meth:`AppAdapter.children` builds that module's items, so fan-out is real and
  joins wait for all parents. When every module has finished, :meth:`AppAdapter.respond`
  builds the response.

A failed batch fails every application request with an item in it; no request is left
waiting. The pipeline does not admit or reject requests; the server does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from harpagon.dispatch import Batch, Dispatcher, ModuleRequest, make_dispatcher
from harpagon.model.plan import Plan
from harpagon.serving.metrics import ServingMetrics
from harpagon.serving.stages import AppAdapter, RequestState

__all__ = ["Pipeline", "RunBatch"]

logger = logging.getLogger(__name__)

RunBatch = Callable[[str, int, int, list[Any], int], Awaitable[tuple[list[Any], float]]]
"""``run_batch(module, group, worker, items, batch_size) -> (results, execution_ms)``."""


@dataclass(eq=False)
class _Flight:
    """An application request in flight, with the pipeline's bookkeeping."""

    state: RequestState
    arrival_ms: float
    future: asyncio.Future[dict[str, Any]]
    remaining: dict[str, int] = field(default_factory=dict)
    """Module -> results still missing."""
    finished: set[str] = field(default_factory=set)

    @property
    def settled(self) -> bool:
        """True once the request has its response or its error."""
        return self.future.done()


@dataclass(frozen=True, eq=False)
class _ItemRef:
    """Payload of a module request: where its result goes."""

    flight: _Flight
    index: int
    created_ms: float


class Pipeline:
    """Routes application requests through the DAG, one dispatcher per module.

    Parameters
    ----------
    plan : Plan
        The deployment; one dispatcher per module plan.
    adapter : AppAdapter
        Builds items and the response; its module names match the plan's.
    start_ms : dict
        Planned start of each module in ms (``validate_plan(...).start_ms``).
    run_batch : RunBatch
        Sends a batch to a worker and returns its results.
    metrics : ServingMetrics
        Where batch sizes, padding and dispatcher waits are recorded.
    dispatch : str
        ``planned`` (each group's own policy), ``batch_aware`` or ``round_robin``.
    clock : str
        ``capacity`` (default): batch clocks at each group's capacity and a shaper as fast
        as the groups allow (:func:`harpagon.dispatch.full_capacity`). Padding is counted
        but not run. ``planned``: the plan's own collection rates, as the simulator runs
        them by default, with every batch padded to its planned size.
    """

    def __init__(
        self,
        plan: Plan,
        adapter: AppAdapter,
        start_ms: dict[str, float],
        run_batch: RunBatch,
        metrics: ServingMetrics,
        *,
        dispatch: str = "planned",
        clock: str = "capacity",
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.app = adapter.application
        self.start_ms = dict(start_ms)
        self._run_batch = run_batch
        self._metrics = metrics
        # Capacity clocks send partial batches often; padding them for real would keep the
        # workers busy with zeros. Their padding stays in the metrics, and a batch of k < b
        # real requests runs as a batch of k, no slower than d(b) on a profile monotone in b.
        self._pad_batches = clock == "planned"
        self.dispatchers: dict[str, Dispatcher] = {
            module.name: make_dispatcher(
                module, plan.rate, dispatch=dispatch, clock=clock,
                overhead_ms=self.app.module(module.name).overhead_ms,
            )
            for module in plan.modules
        }
        self._parents = {name: self.app.predecessors(name) for name in self.app.topological_order}
        self._successors = {name: self.app.successors(name) for name in self.app.topological_order}
        self._request_ids = {name: itertools.count() for name in self.dispatchers}
        self._timers: dict[str, tuple[float, asyncio.TimerHandle] | None] = dict.fromkeys(self.dispatchers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._app_ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origin_s = 0.0

    # --- clock and entry

    def start(self) -> None:
        """Bind to the running loop; the pipeline clock reads 0 ms now."""
        self._loop = asyncio.get_running_loop()
        self._origin_s = self._loop.time()

    def now_ms(self) -> float:
        """Return the pipeline clock: ms since :meth:`start`, on the event loop's clock."""
        assert self._loop is not None, "Pipeline.start() must run before the pipeline is used"
        return (self._loop.time() - self._origin_s) * 1000.0

    def submit(self, source_item: Any, *, arrival_ms: float | None = None) -> asyncio.Future[dict[str, Any]]:
        """Start one application request; the future gives the adapter's outputs.

        ``arrival_ms`` defaults to now on the pipeline clock. The future fails with the
        first error of any of the request's batches, or of ``children``/``respond``.
        """
        assert self._loop is not None, "Pipeline.start() must run before submit()"
        now = self.now_ms()
        flight = _Flight(
            state=RequestState(request_id=str(next(self._app_ids)), source_item=source_item),
            arrival_ms=now if arrival_ms is None else arrival_ms,
            future=self._loop.create_future(),
        )
        for source in self.app.sources:
            self._add_items(flight, source, [source_item])
        return flight.future

    # --- items and dispatchers

    def _add_items(self, flight: _Flight, module: str, items: list[Any]) -> None:
        state = flight.state
        state.items[module] = items
        state.results[module] = [None] * len(items)
        flight.remaining[module] = len(items)
        if not items:
            self._finish_module(flight, module)
            return

        now = self.now_ms()
        release_ms = flight.arrival_ms + self.start_ms[module]
        dispatcher = self.dispatchers[module]
        ids = self._request_ids[module]
        for index in range(len(items)):
            request = ModuleRequest(next(ids), release_ms, _ItemRef(flight, index, now))
            self._send(module, dispatcher.on_request(now, request))
        self._arm_timer(module)

    def _arm_timer(self, module: str) -> None:
        assert self._loop is not None
        deadline_ms = self.dispatchers[module].next_deadline_ms()
        current = self._timers[module]
        if current is not None:
            if deadline_ms is not None and current[0] == deadline_ms:
                return
            current[1].cancel()
            self._timers[module] = None
        if deadline_ms is None:
            return
        when_s = self._origin_s + deadline_ms / 1000.0
        handle = self._loop.call_at(when_s, self._on_timer, module)
        self._timers[module] = (deadline_ms, handle)

    def _on_timer(self, module: str) -> None:
        self._timers[module] = None
        batches = self.dispatchers[module].on_deadline(self.now_ms())
        self._send(module, batches)
        self._arm_timer(module)

    def _send(self, module: str, batches: list[Batch]) -> None:
        assert self._loop is not None
        for batch in batches:
            waits_ms = [batch.close_ms - request.payload.created_ms for request in batch.requests]
            self._metrics.observe_batch(module, len(batch.requests), batch.batch_size, waits_ms)
            task = self._loop.create_task(self._run(module, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- results

    async def _run(self, module: str, batch: Batch) -> None:
        refs: list[_ItemRef] = [request.payload for request in batch.requests]
        items = [ref.flight.state.items[module][ref.index] for ref in refs]
        try:
            results, execution_ms = await self._run_batch(
                module, batch.group, batch.worker, items,
                batch.batch_size if self._pad_batches else len(items),
            )
        except Exception as err:  # noqa: BLE001 - every request of the batch gets the error
            logger.warning("batch of %d requests for module %s (group %d, worker %d) failed: %s",
                           len(refs), module, batch.group, batch.worker, err)
            for ref in refs:
                self._fail(ref.flight, err)
            return
        self._metrics.execution_time.labels(module).observe(execution_ms / 1000.0)
        for ref, result in zip(refs, results, strict=True):
            flight = ref.flight
            if flight.settled:
                continue
            flight.state.results[module][ref.index] = result
            flight.remaining[module] -= 1
            if flight.remaining[module] == 0:
                self._finish_module(flight, module)

    def _finish_module(self, flight: _Flight, module: str) -> None:
        if flight.settled:
            return
        flight.finished.add(module)
        for successor in self._successors[module]:
            if successor in flight.remaining:
                continue  # a join already started by another parent
            if not all(parent in flight.finished for parent in self._parents[successor]):
                continue
            try:
                items = list(self.adapter.children(successor, flight.state))
            except Exception as err:  # noqa: BLE001 - the request fails with the adapter's error
                logger.exception("building items of module %s failed", successor)
                self._fail(flight, err)
                return
            self._add_items(flight, successor, items)
            if flight.settled:
                return
        if len(flight.finished) == len(self.dispatchers) and not flight.settled:
            try:
                outputs = self.adapter.respond(flight.state)
            except Exception as err:  # noqa: BLE001 - the request fails with the adapter's error
                logger.exception("building the response of request %s failed", flight.state.request_id)
                self._fail(flight, err)
                return
            flight.future.set_result(outputs)

    def _fail(self, flight: _Flight, err: BaseException) -> None:
        if not flight.future.done():
            flight.future.set_exception(err)

    def pending_batches(self) -> int:
        """Return the count of batches sent to workers whose results have not come back."""
        return len(self._tasks)

    def close(self) -> None:
        """Cancel the dispatcher timers (at shutdown, after draining)."""
        for module, current in self._timers.items():
            if current is not None:
                current[1].cancel()
                self._timers[module] = None
