"""The dispatcher interface: module requests in, batches out, on a clock the caller supplies.

Times are in ms on one clock chosen by the caller: virtual time in the simulator, the event
loop's monotonic time in the runtime. A dispatcher reads no clock, does no I/O and never
logs. It changes its state only when called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from harpagon.model.plan import ModulePlan

__all__ = ["Batch", "Dispatcher", "ModuleRequest"]


@dataclass(frozen=True)
class ModuleRequest:
    """One request of a module, as the dispatcher receives it."""

    request_id: int
    """Identifier, unique within the module."""
    release_ms: float
    """Virtual arrival: application arrival time plus the module's planned start ``S_m``."""
    payload: Any = None
    """Data the dispatcher carries without reading (the runtime puts its tensors here)."""


@dataclass(frozen=True)
class Batch:
    """A closed batch, sent to one worker of one group."""

    group: int
    """Index of the group in ``ModulePlan.groups``, or ``len(groups) + i`` for shared slot ``i``."""
    worker: int
    """Worker index within the group, ``0 .. workers - 1``."""
    requests: tuple[ModuleRequest, ...]
    """The real requests, 1 to ``batch_size`` of them."""
    batch_size: int
    """The planned batch size, which the worker runs whatever the number of real requests."""
    close_ms: float
    """Clock tick at which the batch closed. A caller that runs late sends it after this."""

    @property
    def padding(self) -> int:
        """Number of dummy requests that pad the batch to ``batch_size``."""
        return self.batch_size - len(self.requests)


class Dispatcher(ABC):
    """A dispatcher for one module: holds, shapes, splits and batches its requests.

    Parameters
    ----------
    module : ModulePlan
        The module's plan. Its ``rate`` (req/s) is the shaping rate ``r_m``.
    app_rate : float
        Application rate the plan was made for, req/s.
    origin_ms : float
        Clock value at which every batch clock has phase 0.

    Notes
    -----
    The caller drives the dispatcher: it calls :meth:`on_request` for every request as it
    arrives and :meth:`on_deadline` at (or soon after) every time :meth:`next_deadline_ms`
    returns. Requests arriving at the same time as a deadline should be passed before the
    deadline is served, so that they can join the batch that closes then.
    """

    def __init__(self, module: ModulePlan, app_rate: float, *, origin_ms: float = 0.0) -> None:
        self.module = module
        self.app_rate = app_rate
        self.origin_ms = origin_ms

    @abstractmethod
    def on_request(self, now_ms: float, request: ModuleRequest) -> list[Batch]:
        """Accept ``request`` at clock time ``now_ms``.

        A request whose ``release_ms`` is later than ``now_ms`` is held until then.
        Returns the batches whose ticks are already before ``now_ms`` (none when the
        caller serves every deadline on time).
        """

    @abstractmethod
    def on_deadline(self, now_ms: float) -> list[Batch]:
        """Advance the clock to ``now_ms`` and return the batches closed by it.

        Releases the held requests whose release time is ``<= now_ms``, then closes every
        non-empty batch whose tick is ``<= now_ms``. Batches are returned in tick order.
        """

    @abstractmethod
    def next_deadline_ms(self) -> float | None:
        """Return the next time :meth:`on_deadline` must be called, or None when idle.

        That is the earliest of a held request's release time and the tick of a
        non-empty open batch.
        """

    @abstractmethod
    def pending(self) -> int:
        """Return the number of requests accepted but not yet returned in a batch."""

    @abstractmethod
    def drain(self, now_ms: float) -> list[Batch]:
        """Release every held request and close every open batch at ``now_ms`` (shutdown)."""
