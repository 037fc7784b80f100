"""Build and run a server from a plan: the runtime object, ``serve_plan`` and ``running_server``.

:class:`ServingRuntime` ties the pieces together on one asyncio event loop: the worker pool
of the chosen backend, the :class:`~harpagon.serving.pipeline.Pipeline`, admission control,
draining and the metrics. :func:`serve_plan` runs it behind uvicorn until SIGINT/SIGTERM
(the first signal drains, a second SIGINT stops at once); :func:`running_server` runs it in
a background thread for tests, the load generator and the demo.

Admission control rejects requests with 503 instead of queueing them without bound. It
rejects a request in two cases. (a) An application-level leaky bucket at the planned rate
``R`` would delay it by more than ``max_backlog_ms`` (default: the SLO), because requests
arrive faster than the plan can absorb. (b) More than ``max_in_flight`` requests are in
flight, which catches workers slower than their profile. The default,
``ceil(2 R (slo_ms + max_backlog_ms) / 1000) + 1``, leaves room for admitted requests to
take twice their bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from harpagon.errors import ConfigError, HarpagonError, OverloadedError
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import validate_plan
from harpagon.serving.backends import make_backend
from harpagon.serving.metrics import RejectionLog, ServingMetrics
from harpagon.serving.pipeline import Pipeline
from harpagon.serving.stages import AppAdapter
from harpagon.serving.workers import WorkerKey, WorkerSpec

__all__ = [
    "Draining",
    "RequestTimedOut",
    "ServingOptions",
    "ServingRuntime",
    "running_server",
    "serve_plan",
]

logger = logging.getLogger(__name__)


class Draining(OverloadedError):
    """The server is shutting down and takes no new requests."""


class RequestTimedOut(HarpagonError):
    """An admitted request got no response within the request timeout."""


@dataclass(frozen=True)
class ServingOptions:
    """Limits and policies of a server; ``None`` picks the default derived from the plan."""

    max_backlog_ms: float | None = None
    """Maximum delay (ms) the admission bucket may add before a request is rejected (default: the SLO)."""
    max_in_flight: int | None = None
    """Most application requests in flight before new ones are rejected."""
    request_timeout_s: float | None = None
    """Time after which an admitted request gets HTTP 504 (default: max(30 s, 10 x SLO))."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Largest accepted request body; larger ones get 413."""
    ready_timeout_s: float = 300.0
    """How long to wait for every worker to build its runner."""
    drain_timeout_s: float = 60.0
    """How long shutdown waits for in-flight requests."""
    dispatch: str = "planned"
    """``planned``, ``batch_aware`` or ``round_robin`` (see ``harpagon.dispatch.make_dispatcher``)."""
    clock: str = "capacity"
    """``capacity`` or ``planned`` batch clocks (see :class:`harpagon.serving.pipeline.Pipeline`)."""


class ServingRuntime:
    """One served plan: workers, pipeline, admission, drain and metrics, on one event loop.

    Parameters
    ----------
    plan : Plan
        The deployment to run.
    adapter : AppAdapter
        The application's frontend glue; its application must be the plan's.
    profiles, hardware : ProfileSet, HardwareCatalog, optional
        What the plan was made with. With both, the plan is validated and the planned start
        of each module comes from :func:`validate_plan`. Without them, the planned starts
        come from the plan's own module latencies and workers run with one thread each.
    backend : str
        ``local`` or ``ray``.
    address : str, optional
        Ray cluster address (``ray`` backend only).
    options : ServingOptions, optional
        Limits; see :class:`ServingOptions`.

    Raises
    ------
    InvalidPlan
        If the plan breaks the model for the given profiles and hardware.
    ConfigError
        If the plan's modules differ from the application's, or an option is out of range.
    """

    def __init__(
        self,
        plan: Plan,
        adapter: AppAdapter,
        *,
        profiles: ProfileSet | None = None,
        hardware: HardwareCatalog | None = None,
        backend: str = "local",
        address: str | None = None,
        options: ServingOptions | None = None,
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.app = adapter.application
        self.options = options or ServingOptions()
        self.model_name = self.app.name
        self._check_modules()
        self._check_shared_machines()
        self.start_ms = self._planned_starts(profiles, hardware)
        self.specs = self._worker_specs(hardware)
        self.backend = make_backend(backend, address=address)

        slo_ms = plan.slo_ms
        self.max_backlog_ms = (
            slo_ms if self.options.max_backlog_ms is None else self.options.max_backlog_ms
        )
        self.max_in_flight = (
            self.options.max_in_flight
            if self.options.max_in_flight is not None
            else math.ceil(2.0 * plan.rate * (slo_ms + self.max_backlog_ms) / 1000.0) + 1
        )
        self.request_timeout_s = (
            self.options.request_timeout_s
            if self.options.request_timeout_s is not None
            else max(30.0, 10.0 * slo_ms / 1000.0)
        )
        if self.max_in_flight < 1 or self.max_backlog_ms < 0:
            raise ConfigError(
                f"max_in_flight must be >= 1 and max_backlog_ms >= 0, got "
                f"{self.max_in_flight} and {self.max_backlog_ms}"
            )

        self.metrics = ServingMetrics()
        self.rejection_log = RejectionLog()
        """Summarises rejected requests in the log (see :class:`RejectionLog`)."""
        self.url = ""
        """Base URL, set by the code that binds the socket (for logs)."""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: Any = None
        # Built here, so a bad dispatch mode fails before anything starts.
        self.pipeline = Pipeline(
            plan, adapter, self.start_ms, self._run_batch, self.metrics, dispatch=self.options.dispatch,
            clock=self.options.clock,
        )
        self.draining = False
        self.in_flight = 0
        self._next_slot_ms = 0.0
        self._idle = asyncio.Event()
        self._ready_task: asyncio.Task[None] | None = None
        self._was_ready = False

    # --- construction helpers

    def _check_modules(self) -> None:
        plan_modules = sorted(module.name for module in self.plan.modules)
        app_modules = sorted(self.app.topological_order)
        if plan_modules != app_modules:
            raise ConfigError(
                f"plan for {self.plan.app!r} has modules {plan_modules}, but the served "
                f"application {self.app.name!r} has {app_modules}; serve the plan with its own application"
            )

    def _planned_starts(
        self, profiles: ProfileSet | None, hardware: HardwareCatalog | None
    ) -> dict[str, float]:
        if profiles is not None and hardware is not None:
            return dict(validate_plan(self.plan, self.app, profiles, hardware).start_ms)
        logger.info("no profiles and hardware catalog given; planned starts come from the plan's module latencies")
        return self.app.start_offsets_ms({m.name: m.latency_ms for m in self.plan.modules})

    def _worker_specs(self, hardware: HardwareCatalog | None) -> list[WorkerSpec]:
        specs = []
        for module in self.plan.modules:
            runner_path = tuple(self.adapter.runner_factory(module.name))
            for group_index, group in enumerate(module.groups):
                threads, accelerator = 1, False
                if hardware is not None:
                    hardware_type = hardware[group.hardware]
                    accelerator = hardware_type.threads is None
                    threads = hardware_type.threads or 1
                for worker in range(group.workers):
                    specs.append(WorkerSpec(
                        key=WorkerKey(module.name, group_index, worker),
                        runner_path=runner_path,  # type: ignore[arg-type]
                        threads=threads,
                        hardware=group.hardware,
                        accelerator=accelerator,
                    ))
        return specs

    def _check_shared_machines(self) -> None:
        # TODO: serve Nexus-style shared machines: one worker process hosting several
        # modules' runners on a duty cycle (the dispatcher already has shared slots).
        if not self.plan.shared_machines:
            return
        members = sorted({m.module for s in self.plan.shared_machines for m in s.members})
        raise ConfigError(
            f"plan {self.plan.policy!r} for {self.plan.app!r} places modules {', '.join(members)} on "
            f"{len(self.plan.shared_machines)} shared machine(s), which the runtime cannot serve "
            "yet; serve a plan without shared machines (for example --policy harpagon or optimal)"
        )

    # --- lifecycle (on the event loop)

    async def start(self) -> None:
        """Start the workers and the pipeline; readiness follows when every worker is up."""
        self.loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        logger.info("starting %d workers for %s (plan %s, %.6g req/s, SLO %.6g ms, backend %s)",
                    len(self.specs), self.model_name, self.plan.policy, self.plan.rate,
                    self.plan.slo_ms, self.backend.name)
        self.pool = self.backend.make_pool(self.specs, on_replaced=self._count_replacement)
        self.pipeline.start()
        await self.pool.start()
        self._ready_task = self.loop.create_task(self._announce_ready())

    async def _announce_ready(self) -> None:
        try:
            await self.pool.wait_ready(self.options.ready_timeout_s)
        except HarpagonError as err:
            logger.error("server is not ready: %s", err)
            return
        self._was_ready = True
        logger.info("ready: %s serves model %r", self.url or "the server", self.model_name)

    async def _run_batch(
        self, module: str, group: int, worker: int, items: list[Any], batch_size: int
    ) -> tuple[list[Any], float]:
        return await self.pool.run_batch(module, group, worker, items, batch_size)

    def _count_replacement(self, module: str) -> None:
        self.metrics.worker_replacements.labels(module).inc()

    def ready(self) -> bool:
        """True when every worker is up and the server is not draining."""
        is_ready = self.pool is not None and not self.draining and self.pool.ready()
        if is_ready:
            self._was_ready = True
        return is_ready

    async def drain(self, timeout_s: float | None = None) -> None:
        """Stop admitting requests and wait for the in-flight ones to finish."""
        timeout_s = self.options.drain_timeout_s if timeout_s is None else timeout_s
        if not self.draining:
            self.draining = True
            logger.info("draining: %d requests in flight, new requests get 503", self.in_flight)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            logger.warning("drain timed out after %.0f s with %d requests in flight",
                           timeout_s, self.in_flight)
        else:
            logger.info("drained: no requests in flight")

    async def stop(self) -> None:
        """Stop the workers and release the backend (call after :meth:`drain`)."""
        self.draining = True
        if self._ready_task is not None:
            self._ready_task.cancel()
        self.pipeline.close()
        if self.pool is not None:
            await self.pool.stop()
        self.backend.close()
        logger.info("stopped: all workers of %s exited", self.model_name)

    # --- requests

    def _admit(self) -> None:
        # Raises Draining or OverloadedError; otherwise reserves a slot in the bucket.
        if self.draining:
            self.metrics.rejected.labels(self.model_name, "draining").inc()
            raise Draining("server is shutting down and accepts no new requests; retry on another server")
        now_ms = self.pipeline.now_ms()
        backlog_ms = max(0.0, self._next_slot_ms - now_ms)
        if backlog_ms > self.max_backlog_ms:
            self.metrics.rejected.labels(self.model_name, "rate").inc()
            raise OverloadedError(
                f"overloaded: requests arrive faster than the planned rate of {self.plan.rate:.6g} "
                f"req/s; a new request would wait {backlog_ms:.0f} ms before dispatch, more than "
                f"{self.max_backlog_ms:.0f} ms. Send at most {self.plan.rate:.6g} req/s or re-plan for a higher rate."
            )
        if self.in_flight >= self.max_in_flight:
            self.metrics.rejected.labels(self.model_name, "in_flight").inc()
            raise OverloadedError(
                f"overloaded: {self.in_flight} requests in flight, the limit for "
                f"{self.plan.rate:.6g} req/s within {self.plan.slo_ms:.6g} ms; retry later or re-plan"
            )
        self._next_slot_ms = max(self._next_slot_ms, now_ms) + 1000.0 / self.plan.rate

    async def infer(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run one application request and return the adapter's outputs.

        Raises
        ------
        OverloadedError
            If admission control rejects the request (:class:`Draining` while shutting down).
        ConfigError
            If the adapter cannot decode the inputs.
        BatchError, WorkerUnavailable
            If a batch with one of the request's items failed.
        RequestTimedOut
            If no response came within the request timeout.
        """
        # Once every worker has been up, a worker being replaced does not stop admission:
        # its batches wait for the replacement or go to another worker of its group.
        if not self._was_ready and not self.draining and not self.ready():
            self.metrics.rejected.labels(self.model_name, "not_ready").inc()
            raise OverloadedError("server is not ready: workers are still starting; retry shortly")
        self._admit()
        source_item = self.adapter.decode(inputs)

        started_ms = self.pipeline.now_ms()
        self.in_flight += 1
        self._idle.clear()
        self.metrics.in_flight.labels(self.model_name).inc()
        try:
            future = self.pipeline.submit(source_item, arrival_ms=started_ms)
            try:
                outputs = await asyncio.wait_for(asyncio.shield(future), self.request_timeout_s)
            except TimeoutError:
                raise RequestTimedOut(
                    f"no response within {self.request_timeout_s:.0f} s; a worker may be stuck"
                ) from None
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.labels(self.model_name).dec()
            if self.in_flight == 0:
                self._idle.set()

        latency_ms = self.pipeline.now_ms() - started_ms
        self.metrics.request_latency.labels(self.model_name).observe(latency_ms / 1000.0)
        if latency_ms > self.plan.slo_ms:
            self.metrics.slo_misses.labels(self.model_name).inc()
        return outputs


# --- running it ---------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}; choose another --port") from err
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    return f"http://{url_host}:{port}"


class _DrainingServer(uvicorn.Server):
    """uvicorn server whose first exit signal drains the runtime before stopping."""

    def __init__(self, config: uvicorn.Config, runtime: ServingRuntime) -> None:
        super().__init__(config)
        self.runtime = runtime
        self._drain_started = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        loop = self.runtime.loop
        if self._drain_started or loop is None:
            super().handle_exit(sig, frame)
            return
        self._drain_started = True
        loop.call_soon_threadsafe(lambda: loop.create_task(self.drain_then_exit()))

    async def drain_then_exit(self) -> None:
        await self.runtime.drain()
        self.should_exit = True


def _make_server(runtime: ServingRuntime, *, log_level: str) -> _DrainingServer:
    from harpagon.serving.frontend import create_app

    config = uvicorn.Config(
        create_app(runtime),
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return _DrainingServer(config, runtime)


def serve_plan(
    plan: Plan,
    adapter: AppAdapter,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "local",
    profiles: ProfileSet | None = None,
    hardware: HardwareCatalog | None = None,
    address: str | None = None,
    options: ServingOptions | None = None,
) -> None:
    """Serve ``plan`` on ``host:port`` until SIGINT or SIGTERM; blocks.

    The first signal drains in-flight requests (new ones get 503), then the server and the
    workers stop; a second SIGINT stops at once.

    Raises
    ------
    ConfigError
        If the address cannot be bound or an option is invalid.
    InvalidPlan
        If the plan is invalid for the given profiles and hardware.
    """
    runtime = ServingRuntime(
        plan, adapter, profiles=profiles, hardware=hardware, backend=backend,
        address=address, options=options,
    )
    sock = _bind(host, port)
    runtime.url = _url(sock)
    server = _make_server(runtime, log_level="info")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def running_server(
    plan: Plan,
    adapter: AppAdapter,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    backend: str = "local",
    profiles: ProfileSet | None = None,
    hardware: HardwareCatalog | None = None,
    address: str | None = None,
    options: ServingOptions | None = None,
    runtime_out: list[ServingRuntime] | None = None,
) -> Iterator[str]:
    """Run a server in a background thread; yield its base URL once every worker is up.

    On exit the server drains in-flight requests, stops its workers and its thread. Port 0
    picks a free port. ``runtime_out``, if given, receives the :class:`ServingRuntime` (tests
    use it to reach the workers).

    Raises
    ------
    WorkerUnavailable, HarpagonError
        If the server fails to start or is not ready within ``options.ready_timeout_s``.
    """
    runtime = ServingRuntime(
        plan, adapter, profiles=profiles, hardware=hardware, backend=backend,
        address=address, options=options,
    )
    if runtime_out is not None:
        runtime_out.append(runtime)
    sock = _bind(host, port)
    runtime.url = _url(sock)
    server = _make_server(runtime, log_level="warning")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread
            errors.append(err)

    thread = threading.Thread(target=run, name="harpagon-server", daemon=True)
    thread.start()
    try:
        _wait_until_ready(runtime, server, thread, errors)
        yield runtime.url
    finally:
        if thread.is_alive() and runtime.loop is not None:
            drain = asyncio.run_coroutine_threadsafe(runtime.drain(), runtime.loop)
            with contextlib.suppress(Exception):
                drain.result(runtime.options.drain_timeout_s + 5)
        server.should_exit = True
        thread.join(60)
        sock.close()


def _wait_until_ready(
    runtime: ServingRuntime, server: uvicorn.Server, thread: threading.Thread,
    errors: list[BaseException],
) -> None:
    deadline = time.monotonic() + runtime.options.ready_timeout_s
    while not (server.started and runtime.ready()):
        if errors or not thread.is_alive():
            reason = errors[0] if errors else "the server thread exited"
            raise HarpagonError(f"server failed to start: {reason}")
        given_up = runtime.pool.given_up() if runtime.pool is not None else {}
        if given_up:
            key, reason = next(iter(given_up.items()))
            raise HarpagonError(f"server failed to start: worker {key}: {reason}")
        if time.monotonic() > deadline:
            raise HarpagonError(
                f"server not ready after {runtime.options.ready_timeout_s:.0f} s; workers still starting"
            )
        time.sleep(0.05)
