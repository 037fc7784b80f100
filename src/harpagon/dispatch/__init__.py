"""The dispatcher state machines shared by the simulator and the runtime.

One dispatcher per module turns module requests into batches for the workers of its
groups: it holds each request until its planned release, shapes the stream at the module
rate, splits it across groups by deficit (and rotates over a round-robin group's
workers) and closes batches on per-group (batch-aware) or
per-worker (round-robin) clocks. Times are in ms on a clock the caller chooses. Nothing
here reads a clock, does I/O or logs. It imports only :mod:`harpagon.model`.
"""

from harpagon.dispatch.base import Batch, Dispatcher, ModuleRequest
from harpagon.dispatch.bulk import BulkDispatch, dispatch_bulk
from harpagon.dispatch.capacity import full_capacity
from harpagon.dispatch.clocks import BatchClock, Route, SharedSlot, build_clocks, build_routes
from harpagon.dispatch.policies import (
    BatchAwareDispatcher,
    ClockedDispatcher,
    DispatchMode,
    RoundRobinDispatcher,
    make_dispatcher,
)
from harpagon.dispatch.split import Splitter, split_targets

__all__ = [
    "Batch", "BatchAwareDispatcher", "BatchClock", "BulkDispatch", "ClockedDispatcher",
    "DispatchMode", "Dispatcher", "ModuleRequest", "RoundRobinDispatcher", "Route",
    "SharedSlot", "Splitter", "build_clocks", "build_routes", "dispatch_bulk",
    "full_capacity", "make_dispatcher", "split_targets",
]
