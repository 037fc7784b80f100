"""The ``ray`` backend: each worker is a Ray actor with the resource request of its hardware.

A CPU hardware type requests ``num_cpus = threads``. A GPU type requests one GPU, plus that
``accelerator_type`` when Ray lists the type's name in ``ray.util.accelerators`` (``T4``, ``V100``, ``A100``, ...).
With ``address`` the backend joins an existing cluster; without one it starts a local Ray
instance limited to this machine's CPUs and shuts it down on ``close``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from harpagon.errors import ConfigError
from harpagon.serving.backends.local import Backend
from harpagon.serving.workers import (
    BatchError,
    WorkerDied,
    WorkerHandle,
    WorkerPool,
    WorkerSpec,
    WorkerUnavailable,
    thread_environment,
)

__all__ = ["RayBackend", "RayWorker", "ray_accelerator_type"]

logger = logging.getLogger(__name__)


class _StageActor:
    """Body of the Ray actor: one stage runner."""

    def __init__(self, runner_path: tuple[str, str], threads: int) -> None:
        from harpagon.serving.stages import load_runner_class

        self.runner = load_runner_class(runner_path)(threads)

    def pid(self) -> int:
        return os.getpid()

    def run_batch(self, items: list[Any], batch_size: int) -> tuple[list[Any], float]:
        started = time.perf_counter()
        results = list(self.runner.run_batch(items, batch_size))
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} items")
        return results, (time.perf_counter() - started) * 1000.0


def ray_accelerator_type(hardware: str) -> str | None:
    """Return Ray's accelerator type for a hardware name (``t4`` -> ``T4``), or None if unknown."""
    from ray.util import accelerators

    for name in dir(accelerators):
        value = getattr(accelerators, name)
        if name.isupper() and isinstance(value, str) and value.lower() == hardware.lower():
            return value
    return None


class RayWorker(WorkerHandle):
    """A worker as a Ray actor; batches are actor method calls awaited on the event loop."""

    def __init__(self, spec: WorkerSpec, on_exit: Callable[[WorkerHandle], None]) -> None:
        super().__init__(spec, on_exit)
        self._loop = asyncio.get_running_loop()
        self.actor: Any = None
        self.pid: int | None = None

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "runtime_env": {"env_vars": thread_environment(self.spec.threads)},
            "max_restarts": 0,
        }
        if self.spec.accelerator:
            options["num_gpus"] = 1
            options["num_cpus"] = 1
            accelerator_type = ray_accelerator_type(self.spec.hardware)
            if accelerator_type is not None:
                options["accelerator_type"] = accelerator_type
        else:
            options["num_cpus"] = self.spec.threads
        return options

    def start(self) -> None:
        import ray

        actor_class = ray.remote(_StageActor)
        self.actor = actor_class.options(**self._options()).remote(self.spec.runner_path, self.spec.threads)
        self._loop.create_task(self._wait_started())

    async def _wait_started(self) -> None:
        import ray.exceptions

        try:
            self.pid = await self.actor.pid.remote()
        except ray.exceptions.RayError as err:
            self.ready.set_exception(WorkerUnavailable(f"worker {self.spec.key} could not start: {err}"))
            self._exit()
            return
        self.ready.set_result(None)

    def describe(self) -> str:
        return f"Ray actor pid {self.pid}"

    def run(self, items: list[Any], batch_size: int) -> asyncio.Future[tuple[list[Any], float]]:
        return asyncio.ensure_future(self._run(items, batch_size))

    async def _run(self, items: list[Any], batch_size: int) -> tuple[list[Any], float]:
        import ray.exceptions

        if self.exited:
            raise WorkerDied(f"worker {self.spec.key} ({self.describe()}) has exited")
        try:
            return await self.actor.run_batch.remote(items, batch_size)
        except ray.exceptions.RayTaskError as err:
            raise BatchError(str(err.cause) if err.cause is not None else str(err)) from None
        except ray.exceptions.RayActorError as err:
            self._exit()
            raise WorkerDied(f"worker {self.spec.key} ({self.describe()}) died: {err}") from None

    def _exit(self) -> None:
        if not self.exited:
            self.exited = True
            self.on_exit(self)

    async def stop(self) -> None:
        import ray

        self.exited = True
        if self.actor is not None:
            ray.kill(self.actor, no_restart=True)


class RayBackend(Backend):
    """Workers as Ray actors on an existing cluster (``address``) or a local Ray instance."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as err:
            raise ConfigError(
                "the ray backend needs Ray; install it with: pip install 'harpagon[ray]'"
            ) from err
        self._ray = ray
        self.address = address
        self.num_cpus = num_cpus if num_cpus is not None else os.cpu_count()
        self._started_ray = False

    def make_pool(
        self, specs: list[WorkerSpec], *, on_replaced: Callable[[str], None] | None = None
    ) -> WorkerPool:
        if not self._ray.is_initialized():
            if self.address is not None:
                logger.info("connecting to the Ray cluster at %s", self.address)
                self._ray.init(address=self.address, logging_level=logging.WARNING)
            else:
                num_cpus = self._local_cpus(specs)
                logger.info("starting a local Ray instance with %d CPUs", num_cpus)
                self._ray.init(num_cpus=num_cpus, include_dashboard=False,
                               logging_level=logging.WARNING)
                self._started_ray = True
        return WorkerPool(specs, RayWorker, on_replaced=on_replaced)

    def _local_cpus(self, specs: list[WorkerSpec]) -> int:
        # A local Ray instance must offer every CPU the actors request, or actors wait forever.
        requested = sum(1 if spec.accelerator else spec.threads for spec in specs)
        available = self.num_cpus or 1
        if requested > available:
            logger.warning(
                "the plan requests %d CPUs but this machine has %d; the local Ray instance "
                "offers %d logical CPUs, so workers share cores", requested, available, requested,
            )
        return max(requested, available)

    def close(self) -> None:
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
            logger.info("local Ray instance stopped")
