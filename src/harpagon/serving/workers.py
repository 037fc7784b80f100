"""Worker processes and the pool that keeps them running.

A worker runs one module's :class:`~harpagon.serving.stages.StageRunner` on the batches its
dispatcher sends. :class:`WorkerProcess` is one worker as an OS process (``spawn`` start
method) that talks to the frontend over a pipe. :class:`WorkerPool` owns every worker of a
plan, whatever the backend. It starts them, reports readiness and runs each batch on the
worker the dispatcher names. When a worker dies, the pool starts a replacement and
re-dispatches the dead worker's in-flight batches to another worker of the same group, or
to the replacement.

All methods run on the server's asyncio event loop unless their docstring states otherwise.
Two threads per process read and write the pipe, so the loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harpagon.errors import HarpagonError

__all__ = [
    "BatchError",
    "WorkerDied",
    "WorkerHandle",
    "WorkerKey",
    "WorkerPool",
    "WorkerProcess",
    "WorkerSpec",
    "WorkerUnavailable",
    "thread_environment",
]

logger = logging.getLogger(__name__)

MAX_BATCH_ATTEMPTS = 3
"""A batch is tried on at most this many workers; a batch that kills each of them is failed."""

MAX_START_FAILURES = 3
"""Consecutive start failures (runner could not be built) after which a worker is given up."""

STOP_TIMEOUT_S = 5.0
"""How long a stopping worker may take to exit before it is killed."""


class BatchError(HarpagonError):
    """The stage runner raised on a batch; every request of the batch fails with this message."""


class WorkerUnavailable(HarpagonError):
    """No worker can run a batch: its worker and every replacement failed to start."""


class WorkerDied(Exception):
    """The worker exited while a batch was in flight; the pool re-dispatches the batch."""


@dataclass(frozen=True)
class WorkerKey:
    """Address of a worker in a plan: the module, the group index and the worker index."""

    module: str
    group: int
    worker: int

    def __str__(self) -> str:
        return f"{self.module}[group {self.group}, worker {self.worker}]"


@dataclass(frozen=True)
class WorkerSpec:
    """Description of one worker for a backend to start."""

    key: WorkerKey
    runner_path: tuple[str, str]
    """Import path of the StageRunner class, ``(module_path, class_name)``."""
    threads: int
    """Intra-op threads of the runner, from the hardware type."""
    hardware: str
    accelerator: bool = False
    """True for a GPU hardware type (the Ray backend then requests one GPU)."""


def thread_environment(threads: int) -> dict[str, str]:
    """Return the environment variables that cap math-library threads at ``threads``."""
    value = str(threads)
    return {
        "OMP_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
        "NUMEXPR_NUM_THREADS": value,
    }


class WorkerHandle(ABC):
    """One running worker as seen from the event loop (a process, a Ray actor)."""

    def __init__(self, spec: WorkerSpec, on_exit: Callable[[WorkerHandle], None]) -> None:
        self.spec = spec
        self.on_exit = on_exit
        """Called on the event loop once, when the worker exits without being stopped."""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done when the runner is built; fails if the worker could not start."""
        self.exited = False

    @property
    def usable(self) -> bool:
        """True when the worker is up and has not exited."""
        return self.ready.done() and self.ready.exception() is None and not self.exited

    @abstractmethod
    def start(self) -> None:
        """Start the worker; ``ready`` completes when its runner is built."""

    @abstractmethod
    def run(self, items: list[Any], batch_size: int) -> asyncio.Future[tuple[list[Any], float]]:
        """Send one batch; the future gives ``(results, execution_ms)``.

        The future fails with :class:`BatchError` if the runner raised and with
        :class:`WorkerDied` if the worker exited first.
        """

    @abstractmethod
    async def stop(self) -> None:
        """Stop the worker after the batches already sent to it."""

    @abstractmethod
    def describe(self) -> str:
        """Return a short identity for logs (for example the process id)."""


# --- the local worker process ------------------------------------------------------------


def _worker_main(conn: Any, runner_path: tuple[str, str], threads: int) -> None:
    """Entry point of a worker process: build the runner, then run batches until the stop message.

    Messages in: ``(batch_id, items, batch_size)``, or ``None`` to stop. Messages out:
    ``("ready", pid)`` or ``("failed", message)`` once, then per batch
    ``("ok", batch_id, results, execution_ms)`` or ``("error", batch_id, message, execution_ms)``.
    """
    # Ctrl-C reaches the whole process group. The server drains and stops its workers itself,
    # so a worker ignores SIGINT rather than die with a batch in flight.
    # NOTE: SIGTERM keeps its default action. A SIGTERM sent to the whole group kills the
    # workers at once, and their in-flight batches are re-dispatched to replacements.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Thread caps must be set before numpy or onnxruntime is imported in this process.
    os.environ.update(thread_environment(threads))
    try:
        from harpagon.serving.stages import load_runner_class

        runner = load_runner_class(runner_path)(threads)
    except Exception as err:  # noqa: BLE001 - reported to the frontend, which logs it
        conn.send(("failed", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", os.getpid()))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        batch_id, items, batch_size = message
        started = time.perf_counter()
        try:
            results = list(runner.run_batch(items, batch_size))
            if len(results) != len(items):
                raise RuntimeError(
                    f"run_batch returned {len(results)} results for {len(items)} items"
                )
            reply: tuple[Any, ...] = ("ok", batch_id, results, 0.0)
        except Exception as err:  # noqa: BLE001 - every request of the batch gets the message
            reply = ("error", batch_id, f"{type(err).__name__}: {err}", 0.0)
        execution_ms = (time.perf_counter() - started) * 1000.0
        reply = reply[:3] + (execution_ms,)
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - results that cannot be pickled
            conn.send(("error", batch_id, f"cannot send the results back: {err}", execution_ms))


class WorkerProcess(WorkerHandle):
    """A worker in a ``spawn``-started OS process, fed over a pipe."""

    _context = multiprocessing.get_context("spawn")

    def __init__(self, spec: WorkerSpec, on_exit: Callable[[WorkerHandle], None]) -> None:
        super().__init__(spec, on_exit)
        self._loop = asyncio.get_running_loop()
        self._batch_ids = itertools.count()
        self._pending: dict[int, asyncio.Future[tuple[list[Any], float]]] = {}
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = False
        self.process: Any = None
        self.pid: int | None = None

    def start(self) -> None:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        self.process = self._context.Process(
            target=_worker_main,
            args=(child_conn, self.spec.runner_path, self.spec.threads),
            name=f"harpagon-worker-{self.spec.key.module}-{self.spec.key.group}-{self.spec.key.worker}",
            daemon=True,
        )
        self.process.start()
        self.pid = self.process.pid
        # The parent must close its copy of the child's end, or recv() never raises EOFError.
        child_conn.close()
        self._conn = parent_conn
        threading.Thread(target=self._read_loop, name=f"{self.process.name}-reader", daemon=True).start()
        threading.Thread(target=self._write_loop, name=f"{self.process.name}-writer", daemon=True).start()

    def describe(self) -> str:
        return f"pid {self.pid}"

    def run(self, items: list[Any], batch_size: int) -> asyncio.Future[tuple[list[Any], float]]:
        future: asyncio.Future[tuple[list[Any], float]] = self._loop.create_future()
        if self.exited:
            future.set_exception(WorkerDied(f"worker {self.spec.key} ({self.describe()}) has exited"))
            return future
        batch_id = next(self._batch_ids)
        self._pending[batch_id] = future
        self._outbox.put((batch_id, items, batch_size))
        return future

    async def stop(self) -> None:
        self._stopping = True
        self._outbox.put(None)
        process = self.process
        if process is None:
            return
        await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.is_alive():
            logger.warning("worker %s (%s) did not stop in %.0f s; killing it",
                           self.spec.key, self.describe(), STOP_TIMEOUT_S)
            process.kill()
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)

    # Both loops run in their own threads and hand everything to the event loop.

    def _write_loop(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                return  # the process is gone; the reader reports the exit
            if message is None:
                return

    def _read_loop(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            self._loop.call_soon_threadsafe(self._on_message, message)
        self._loop.call_soon_threadsafe(self._on_eof)

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if kind == "failed":
            if not self.ready.done():
                self.ready.set_exception(WorkerUnavailable(
                    f"worker {self.spec.key} could not build its stage runner: {message[1]}"
                ))
            return
        future = self._pending.pop(message[1], None)
        if future is None or future.done():
            return
        if kind == "ok":
            future.set_result((message[2], message[3]))
        else:
            future.set_exception(BatchError(message[2]))

    def _on_eof(self) -> None:
        self.exited = True
        self._outbox.put(None)  # ends the writer thread
        if self.process is not None:
            self.process.join(0.1)
        exit_code = None if self.process is None else self.process.exitcode
        died = WorkerDied(f"worker {self.spec.key} ({self.describe()}) exited with code {exit_code}")
        if not self.ready.done():
            self.ready.set_exception(WorkerUnavailable(
                f"worker {self.spec.key} ({self.describe()}) exited with code {exit_code} "
                "before its stage runner was built"
            ))
            self.ready.exception()  # mark the exception as retrieved
        for future in self._pending.values():
            if not future.done():
                future.set_exception(died)
        self._pending.clear()
        if not self._stopping:
            self.on_exit(self)


# --- the pool ------------------------------------------------------------------------------


class WorkerPool:
    """Every worker of a plan: start, readiness, batches, replacement and re-dispatch.

    Parameters
    ----------
    specs : list of WorkerSpec
        One per worker of the plan.
    factory : callable
        Builds the handle of one worker, ``factory(spec, on_exit)``; the backend's choice.
    on_replaced : callable, optional
        Called with the module name each time a replacement is started (for metrics).
    """

    def __init__(
        self,
        specs: list[WorkerSpec],
        factory: Callable[[WorkerSpec, Callable[[WorkerHandle], None]], WorkerHandle],
        *,
        on_replaced: Callable[[str], None] | None = None,
    ) -> None:
        self.specs = {spec.key: spec for spec in specs}
        self._factory = factory
        self._on_replaced = on_replaced
        self.handles: dict[WorkerKey, WorkerHandle] = {}
        self._start_failures: dict[WorkerKey, int] = {}
        self._given_up: dict[WorkerKey, str] = {}
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start every worker; returns at once (see :meth:`wait_ready`)."""
        for spec in self.specs.values():
            self._launch(spec)

    def ready(self) -> bool:
        """True when every worker is up."""
        return bool(self.handles) and all(handle.usable for handle in self.handles.values())

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until every worker has built its runner.

        Raises
        ------
        WorkerUnavailable
            If a worker was given up, or not every worker is up after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if self._given_up:
                key, reason = next(iter(self._given_up.items()))
                raise WorkerUnavailable(f"worker {key} could not start: {reason}")
            if time.monotonic() > deadline:
                waiting = [str(key) for key, handle in self.handles.items() if not handle.usable]
                raise WorkerUnavailable(
                    f"workers not ready after {timeout_s:.0f} s: {', '.join(waiting)}"
                )
            await asyncio.sleep(0.05)

    def given_up(self) -> dict[WorkerKey, str]:
        """Return the workers that failed to start :data:`MAX_START_FAILURES` times, with the reason."""
        return dict(self._given_up)

    def pids(self) -> dict[WorkerKey, int | None]:
        """Return the process id of each local worker (None for other backends)."""
        return {key: getattr(handle, "pid", None) for key, handle in self.handles.items()}

    async def run_batch(
        self, module: str, group: int, worker: int, items: list[Any], batch_size: int
    ) -> tuple[list[Any], float]:
        """Run one batch on the named worker and return ``(results, execution_ms)``.

        If that worker dies with the batch in flight, the batch goes to another usable worker
        of the group, else to the worker's replacement once it is up.

        Raises
        ------
        BatchError
            If the runner raised on the batch.
        WorkerUnavailable
            If no worker can take the batch, or it killed :data:`MAX_BATCH_ATTEMPTS` workers.
        """
        key = WorkerKey(module, group, worker)
        last_death: WorkerDied | None = None
        for _ in range(MAX_BATCH_ATTEMPTS):
            handle = await self._usable_handle(key)
            try:
                return await handle.run(items, batch_size)
            except WorkerDied as err:
                last_death = err
                logger.warning("%s; re-dispatching its batch of %d requests", err, len(items))
        raise WorkerUnavailable(
            f"a batch of {len(items)} requests for module {module!r} failed: {MAX_BATCH_ATTEMPTS} "
            f"workers exited while running it (last: {last_death})"
        )

    async def stop(self) -> None:
        """Stop every worker (after the batches already sent) and cancel pending replacements."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(handle.stop() for handle in self.handles.values()), return_exceptions=True)

    # --- internals

    def _launch(self, spec: WorkerSpec) -> WorkerHandle:
        handle = self._factory(spec, self._on_exit)
        self.handles[spec.key] = handle
        handle.start()
        task = asyncio.get_running_loop().create_task(self._watch_start(handle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    async def _watch_start(self, handle: WorkerHandle) -> None:
        try:
            await asyncio.shield(handle.ready)
        except WorkerUnavailable as err:
            logger.warning("%s", err)
            return
        logger.debug("worker %s is up (%s)", handle.spec.key, handle.describe())

    def _on_exit(self, handle: WorkerHandle) -> None:
        key = handle.spec.key
        if self._stopping or self.handles.get(key) is not handle:
            return
        if handle.ready.done() and handle.ready.exception() is None:
            self._start_failures[key] = 0
            logger.warning("worker %s (%s) exited; starting a replacement", key, handle.describe())
        else:
            failures = self._start_failures.get(key, 0) + 1
            self._start_failures[key] = failures
            if failures >= MAX_START_FAILURES:
                reason = "its stage runner could not be built"
                if handle.ready.done():
                    reason = str(handle.ready.exception())
                logger.error("giving up worker %s after %d failed starts: %s", key, failures, reason)
                self._given_up[key] = reason
                return
            logger.warning("worker %s failed to start (attempt %d of %d); retrying",
                           key, failures, MAX_START_FAILURES)
        self._replace(handle)

    def _replace(self, handle: WorkerHandle) -> None:
        if self._stopping:
            return
        replacement = self._launch(handle.spec)
        if self._on_replaced is not None:
            self._on_replaced(handle.spec.key.module)
        task = asyncio.get_running_loop().create_task(self._log_replaced(handle, replacement))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log_replaced(self, old: WorkerHandle, new: WorkerHandle) -> None:
        try:
            await asyncio.shield(new.ready)
        except WorkerUnavailable:
            return
        logger.info("worker %s replaced: %s took over from %s", new.spec.key, new.describe(), old.describe())

    async def _usable_handle(self, key: WorkerKey) -> WorkerHandle:
        # The named worker if it is up; else another usable worker of the same group; else
        # wait for the named worker's replacement.
        while True:
            if key in self._given_up:
                raise WorkerUnavailable(f"worker {key} is unavailable: {self._given_up[key]}")
            if self._stopping:
                raise WorkerUnavailable(f"worker {key} is unavailable: the server is stopping")
            handle = self.handles.get(key)
            if handle is None:
                raise WorkerUnavailable(
                    f"the plan has no worker {key}; shared machines are not served by this runtime"
                )
            if handle.usable:
                return handle
            for other_key, other in self.handles.items():
                if (other_key.module, other_key.group) == (key.module, key.group) and other.usable:
                    return other
            try:
                await asyncio.shield(handle.ready)
            except WorkerUnavailable:
                await asyncio.sleep(0.05)  # a replacement is being launched
