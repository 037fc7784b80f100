"""The ``local`` backend: each worker is an OS process on this machine."""

from __future__ import annotations

from collections.abc import Callable

from harpagon.serving.workers import WorkerPool, WorkerProcess, WorkerSpec

__all__ = ["Backend", "LocalBackend"]


class Backend:
    """Builds the worker pool of a plan; base class of the backends."""

    name = "base"

    def make_pool(
        self, specs: list[WorkerSpec], *, on_replaced: Callable[[str], None] | None = None
    ) -> WorkerPool:
        """Return a pool (not yet started) for ``specs``; call on the event loop."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend started (after the pool has stopped)."""


class LocalBackend(Backend):
    """Workers as ``spawn``-started processes, with the thread caps of their hardware type."""

    name = "local"

    def make_pool(
        self, specs: list[WorkerSpec], *, on_replaced: Callable[[str], None] | None = None
    ) -> WorkerPool:
        return WorkerPool(specs, WorkerProcess, on_replaced=on_replaced)
