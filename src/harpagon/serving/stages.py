"""The serving stage interface: stage runners (worker side) and app adapters (frontend side).

A served application is an :class:`~harpagon.model.application.Application` (the module DAG),
one :class:`StageRunner` per module, which runs inside a worker process, and one
:class:`AppAdapter`, which runs in the frontend process. Items are whatever a module's runner
accepts. They cross process boundaries, so they must be picklable.

Pipeline semantics: for each application request, the items of a module are built by
:meth:`AppAdapter.children` once all its parents have finished for that request. A module may
get zero items, and it then counts as finished at once. Each item is one module request for
the dispatcher. The request completes when every sink has finished, and
:meth:`AppAdapter.respond` then builds the response.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from harpagon.errors import ConfigError
from harpagon.model.application import Application

__all__ = ["StageRunner", "AppAdapter", "RequestState", "load_runner_class"]


class StageRunner(ABC):
    """Runs one module's model on batches, inside a worker process.

    Parameters
    ----------
    threads : int
        Intra-op threads of the model session(s), from the hardware type's ``threads``.
    """

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ConfigError(f"threads must be an integer >= 1, got {threads}")
        self.threads = threads

    @abstractmethod
    def run_batch(self, items: list[Any], batch_size: int) -> list[Any]:
        """Run one batch and return one result per real item, in the order of ``items``.

        The worker calls this once per batch that the dispatcher sends. The runner
        pre-processes each item to the module's fixed input shape and pads the batch to
        ``batch_size`` with zeros, because padding stands for the dummy requests. Then it runs
        the model once and post-processes the outputs.

        Raises
        ------
        ConfigError
            If ``len(items)`` exceeds ``batch_size`` or an item cannot be run. A runner raises
            only when the whole batch cannot run, and the worker then fails every request of
            the batch.
        """


@dataclass
class RequestState:
    """The frontend's record of one application request as it moves through the DAG."""

    request_id: str
    source_item: Any
    """Item that :meth:`AppAdapter.decode` returned, given to every source module."""
    results: dict[str, list[Any]] = field(default_factory=dict)
    """Module name -> that module's per-item results, in the order of its items."""
    items: dict[str, list[Any]] = field(default_factory=dict)
    """Module name -> the items built for it (by ``children``, or ``[source_item]``)."""


class AppAdapter(ABC):
    """Frontend-side glue of a served application."""

    application: Application
    """The DAG. Its module names match the plan's modules."""

    @abstractmethod
    def runner_factory(self, module: str) -> tuple[str, str]:
        """Return the import path of a module's StageRunner class as ``(module_path, class_name)``.

        The runtime calls this when it starts a worker, so the worker process can import
        and build the runner itself (``load_runner_class``).
        """

    @abstractmethod
    def decode(self, inputs: dict[str, Any]) -> Any:
        """Validate the v2 request inputs and decode them into the source modules' item.

        ``inputs`` maps each input name to a dict with the v2 fields ``datatype``, ``shape``
        and ``data`` (for BYTES inputs, ``data`` is a list of ``bytes``). The frontend calls
        this once per application request, before anything is dispatched.

        Raises
        ------
        ConfigError
            Naming the input and the problem. The frontend returns it to the client as HTTP 400.
        """

    @abstractmethod
    def children(self, module: str, state: RequestState) -> list[Any]:
        """Build the items of a non-source ``module`` from its parents' results.

        Called once per application request, when all parents of ``module`` have finished.
        ``state.results[parent]`` is the list of that parent's per-item results. An empty
        list is allowed, and the module then counts as finished at once.
        """

    @abstractmethod
    def respond(self, state: RequestState) -> dict[str, Any]:
        """Build the v2 outputs (name -> numpy array or list) once every sink has finished."""


def load_runner_class(path: tuple[str, str] | str) -> type[StageRunner]:
    """Import the StageRunner class named by ``(module_path, class_name)`` or ``"module:Class"``.

    Raises
    ------
    ConfigError
        If the module cannot be imported, the class is missing or is not a StageRunner.
    """
    if isinstance(path, str):
        module_path, _, class_name = path.partition(":")
    else:
        module_path, class_name = path
    try:
        module = importlib.import_module(module_path)
    except ImportError as err:
        raise ConfigError(f"cannot import stage runner module {module_path!r}: {err}") from err
    runner_class = getattr(module, class_name, None)
    if not (isinstance(runner_class, type) and issubclass(runner_class, StageRunner)):
        raise ConfigError(
            f"{module_path}:{class_name} is not a StageRunner class; "
            "runner_factory must name a subclass of harpagon.serving.stages.StageRunner"
        )
    return runner_class
