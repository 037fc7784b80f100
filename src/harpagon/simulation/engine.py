"""The discrete-event simulation of a plan in virtual time (ms).

Application request ``i`` arrives at ``a_i``. Module ``m`` emits its ``c_m(i)`` requests
for it when every parent has finished its requests for ``i`` (a parent with no requests
counts as finished when its own parents are). Each module request is released at
``a_i + S_m`` (``S_m`` the planned start of the module) and goes through the module's
dispatcher from :mod:`harpagon.dispatch`. A batch starts when its worker is free, runs
``d(h, b)`` (times ``1 + jitter U(-1, 1)`` with jitter) and all its requests finish
``overhead_ms`` after it ends. The application request ends when its last module request
finishes.

Later modules never feed back into earlier ones, so modules are simulated one at a time in
topological order, each over all requests at once. The default engine uses
:func:`harpagon.dispatch.dispatch_bulk`; ``engine="events"`` drives the same dispatcher
one event at a time, ordered by (time, arrivals before deadlines, sequence), and gives the
same batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from harpagon.dispatch import (
    ClockedDispatcher,
    DispatchMode,
    ModuleRequest,
    SharedSlot,
    dispatch_bulk,
    make_dispatcher,
)
from harpagon.dispatch.bulk import BulkDispatch
from harpagon.errors import ConfigError
from harpagon.model import Application, HardwareCatalog, Plan, ProfileSet, validate_plan

__all__ = ["FANOUT_KINDS", "ModuleRun", "SimulationRun", "simulate"]

FANOUT_KINDS = ("deterministic", "poisson")
"""Accepted fan-out models: ``floor(f (i + 1)) - floor(f i)`` requests, or Poisson(f)."""


@dataclass(frozen=True)
class ModuleRun:
    """Requests and batches of one module in a simulation run."""

    name: str
    request_owner: np.ndarray
    """Per module request: index of its application request."""
    request_release_ms: np.ndarray
    """Per module request: release time, ``max(emission, a_i + S_m)``."""
    request_finish_ms: np.ndarray
    batch_group: np.ndarray
    """Per batch: group index; shared slot ``i`` is ``len(groups) + i``."""
    batch_worker: np.ndarray
    batch_close_ms: np.ndarray
    batch_start_ms: np.ndarray
    batch_end_ms: np.ndarray
    batch_num_requests: np.ndarray
    batch_size: np.ndarray

    @property
    def request_latency_ms(self) -> np.ndarray:
        """Per module request: finish minus release, ms."""
        return self.request_finish_ms - self.request_release_ms


@dataclass(frozen=True)
class SimulationRun:
    """The outcome of one simulation."""

    plan: Plan
    rate: float
    """Simulated application rate, req/s (the plan's rate unless overridden)."""
    arrival_ms: np.ndarray
    end_ms: np.ndarray
    """Per application request: time its last module request finished."""
    modules: dict[str, ModuleRun]
    start_ms: dict[str, float]
    """Planned start ``S_m`` of each module."""
    span_ms: float
    """From 0 to the later of the last arrival and the last batch's end."""
    wall_seconds: float

    @property
    def latency_ms(self) -> np.ndarray:
        """Per application request: end-to-end latency, ms."""
        return self.end_ms - self.arrival_ms


def _shared_slots(
    plan: Plan, app: Application, profiles: ProfileSet
) -> dict[str, list[tuple[SharedSlot, float]]]:
    # Members of a shared machine run in list order within each duty cycle, so member i's
    # batch starts after the batch times of members 0 .. i-1.
    # NOTE: each member runs on its own timeline, so a jittered batch that overruns its
    # slot does not delay the next member. Without jitter, slots of a valid plan never overlap.
    slots: dict[str, list[tuple[SharedSlot, float]]] = {}
    for machine in plan.shared_machines:
        phase_ms = 0.0
        for member in machine.members:
            profile = profiles[app.module(member.module).profile]
            batch_ms = profile.batch_latency_ms(machine.hardware, member.batch_size)
            slot = SharedSlot(machine.duty_cycle_ms, phase_ms, member.batch_size, member.rate)
            slots.setdefault(member.module, []).append((slot, batch_ms))
            phase_ms += batch_ms
    return slots


def _fanout_counts(
    rate_factor: float, count: int, fanout: str, rng: np.random.Generator
) -> np.ndarray:
    if fanout == "poisson":
        return rng.poisson(rate_factor, size=count).astype(np.int64)
    steps = np.floor(rate_factor * np.arange(count + 1, dtype=np.float64)).astype(np.int64)
    return np.diff(steps)


def _dispatch_events(
    dispatcher: ClockedDispatcher, arrival_ms: np.ndarray, release_ms: np.ndarray
) -> BulkDispatch:
    # Drive the state machine one event at a time; arrivals before deadlines at equal times.
    sent = []
    for request_id, (now_ms, release) in enumerate(zip(arrival_ms.tolist(), release_ms.tolist())):
        while (deadline := dispatcher.next_deadline_ms()) is not None and deadline < now_ms:
            sent += dispatcher.on_deadline(deadline)
        sent += dispatcher.on_request(now_ms, ModuleRequest(request_id, release))
    while (deadline := dispatcher.next_deadline_ms()) is not None:
        sent += dispatcher.on_deadline(deadline)
    request_batch = np.empty(arrival_ms.size, dtype=np.int64)
    for index, batch in enumerate(sent):
        for request in batch.requests:
            request_batch[request.request_id] = index
    return BulkDispatch(
        request_batch=request_batch,
        request_release_ms=np.maximum(arrival_ms, release_ms),
        batch_group=np.array([b.group for b in sent], dtype=np.int64),
        batch_worker=np.array([b.worker for b in sent], dtype=np.int64),
        batch_close_ms=np.array([b.close_ms for b in sent], dtype=np.float64),
        batch_num_requests=np.array([len(b.requests) for b in sent], dtype=np.int64),
        batch_size=np.array([b.batch_size for b in sent], dtype=np.int64),
    )


def _run_workers(
    close_ms: np.ndarray, duration_ms: np.ndarray, worker_key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (start, end) of each batch: it starts at ``max(close, end of the worker's previous batch)``.

    Batches must be in close order. Per worker, ``end_j = S_j + max_{i <= j}(close_i - S_{i-1})``
    with ``S`` the running sum of batch times; when no batch waits, ``end = close + duration``.
    """
    end_ms = close_ms + duration_ms
    for key in np.unique(worker_key):
        index = np.flatnonzero(worker_key == key)
        close = close_ms[index]
        end = end_ms[index]
        if index.size < 2 or np.all(close[1:] >= end[:-1]):
            continue
        busy = np.cumsum(duration_ms[index])
        end_ms[index] = busy + np.maximum.accumulate(close - (busy - duration_ms[index]))
    return end_ms - duration_ms, end_ms


def _simulate_module(
    plan: Plan, app: Application, profiles: ProfileSet, name: str, emit_ms: np.ndarray,
    arrival_ms: np.ndarray, start_ms: float, slots: list[tuple[SharedSlot, float]],
    *, dispatch: str, jitter: float, fanout: str, engine: str, clock: str,
    fanout_rng: np.random.Generator, jitter_rng: np.random.Generator,
) -> tuple[ModuleRun, np.ndarray]:
    """Simulate one module over all application requests; return its run and per-request done time."""
    module = app.module(name)
    module_plan = plan.module(name)
    count = arrival_ms.size

    # 1. Module requests: fan-out counts, emission (arrival at the dispatcher) and release.
    counts = _fanout_counts(module.rate_factor, count, fanout, fanout_rng)
    owner = np.repeat(np.arange(count, dtype=np.int64), counts)
    order = np.argsort(emit_ms[owner], kind="stable")
    owner = owner[order]
    request_arrival_ms = emit_ms[owner]
    request_release_ms = arrival_ms[owner] + start_ms

    # 2. The dispatcher: batches with their groups, workers and close times.
    dispatcher = make_dispatcher(
        module_plan, plan.rate, dispatch=dispatch, shared=tuple(slot for slot, _ in slots),
        clock=clock, overhead_ms=module.overhead_ms,
    )
    if engine == "events":
        batches = _dispatch_events(dispatcher, request_arrival_ms, request_release_ms)
    else:
        batches = dispatch_bulk(dispatcher, request_arrival_ms, request_release_ms)

    # 3. Workers: each batch runs d(h, b), possibly jittered, when its worker is free.
    batch_times = [
        profiles[module.profile].batch_latency_ms(g.hardware, g.batch_size)
        for g in module_plan.groups
    ] + [batch_ms for _, batch_ms in slots]
    duration_ms = np.array(batch_times, dtype=np.float64)[batches.batch_group]
    if jitter:
        duration_ms = duration_ms * (1.0 + jitter * jitter_rng.uniform(-1.0, 1.0, batches.num_batches))
    worker_key = batches.batch_group * (1 << 32) + batches.batch_worker
    batch_start_ms, batch_end_ms = _run_workers(batches.batch_close_ms, duration_ms, worker_key)
    finish_ms = batch_end_ms[batches.request_batch] + module.overhead_ms

    # 4. Done time per application request: its last request's finish, or its emission.
    done_ms = emit_ms.copy()
    if owner.size:
        by_owner = np.lexsort((finish_ms, owner))
        last = np.flatnonzero(np.append(owner[by_owner][1:] != owner[by_owner][:-1], True))
        owners_with_requests = owner[by_owner][last]
        done_ms[owners_with_requests] = np.maximum(
            done_ms[owners_with_requests], finish_ms[by_owner][last]
        )
    run = ModuleRun(
        name=name,
        request_owner=owner,
        request_release_ms=batches.request_release_ms,
        request_finish_ms=finish_ms,
        batch_group=batches.batch_group,
        batch_worker=batches.batch_worker,
        batch_close_ms=batches.batch_close_ms,
        batch_start_ms=batch_start_ms,
        batch_end_ms=batch_end_ms,
        batch_num_requests=batches.batch_num_requests,
        batch_size=batches.batch_size,
    )
    return run, done_ms


def simulate(
    plan: Plan,
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    arrival_ms: np.ndarray,
    *,
    dispatch: DispatchMode | str = DispatchMode.PLANNED,
    jitter: float = 0.0,
    fanout: str = "deterministic",
    seed: int = 0,
    engine: str = "bulk",
    rate: float | None = None,
    clock: str = "planned",
) -> SimulationRun:
    """Simulate ``plan`` under the given application arrivals.

    Parameters
    ----------
    plan, app, profiles, hardware
        The plan and the inputs it was made from; the plan is validated first.
    arrival_ms : numpy.ndarray
        Application arrival times, ms, sorted.
    dispatch : DispatchMode or str
        ``planned`` (each group's policy), ``batch_aware`` or ``round_robin``.
    jitter : float
        Batch times vary uniformly within ``+-jitter`` of the profile, ``0 <= jitter < 1``.
    fanout : str
        ``deterministic`` or ``poisson`` requests per application request.
    seed : int
        Seed of the fan-out and jitter draws; the same seed gives the same run.
    engine : str
        ``bulk`` (vectorised) or ``events`` (one dispatcher call per event, slower).
    rate : float, optional
        Simulated application rate, req/s, reported with the run (default: the plan's).
    clock : str
        ``planned``: the plan's collection rates. ``capacity``: every group collects at
        its capacity and the shaper runs as fast as the groups allow, as the runtime does
        by default (see :func:`harpagon.dispatch.full_capacity`). Batches still take the
        profiled ``d(h, b)`` of their planned size.

    Raises
    ------
    InvalidPlan
        If the plan breaks the model for these inputs.
    ConfigError
        If an option is out of range.

    Notes
    -----
    Runs in O(N log N) time for N module requests with the bulk engine.
    """
    if not 0.0 <= jitter < 1.0:
        raise ConfigError(f"jitter must be in [0, 1), got {jitter}")
    if fanout not in FANOUT_KINDS:
        raise ConfigError(f"unknown fan-out {fanout!r}; use one of {', '.join(FANOUT_KINDS)}")
    if engine not in ("bulk", "events"):
        raise ConfigError(f"unknown engine {engine!r}; use bulk or events")
    try:
        mode = DispatchMode(dispatch)
    except ValueError:
        raise ConfigError(
            f"unknown dispatch mode {dispatch!r}; use one of "
            f"{', '.join(m.value for m in DispatchMode)}"
        ) from None
    arrival_ms = np.asarray(arrival_ms, dtype=np.float64)
    if arrival_ms.size and np.any(np.diff(arrival_ms) < 0):
        raise ConfigError("arrival times must be sorted")

    wall_start = time.perf_counter()
    check = validate_plan(plan, app, profiles, hardware)
    slots = _shared_slots(plan, app, profiles)
    fanout_rng, jitter_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    # Modules in topological order: each emits when all its parents are done.
    done: dict[str, np.ndarray] = {}
    runs: dict[str, ModuleRun] = {}
    for name in app.topological_order:
        parents = app.predecessors(name)
        emit_ms = arrival_ms.copy()
        for parent in parents:
            np.maximum(emit_ms, done[parent], out=emit_ms)
        runs[name], done[name] = _simulate_module(
            plan, app, profiles, name, emit_ms, arrival_ms, check.start_ms[name],
            slots.get(name, []), dispatch=mode.value, jitter=jitter, clock=clock,
            fanout=fanout, engine=engine, fanout_rng=fanout_rng, jitter_rng=jitter_rng,
        )

    end_ms = arrival_ms.copy()
    for name in app.sinks:
        np.maximum(end_ms, done[name], out=end_ms)
    last_end = max((float(r.batch_end_ms.max()) for r in runs.values() if r.batch_end_ms.size), default=0.0)
    last_arrival = float(arrival_ms[-1]) if arrival_ms.size else 0.0
    return SimulationRun(
        plan=plan,
        rate=plan.rate if rate is None else rate,
        arrival_ms=arrival_ms,
        end_ms=end_ms,
        modules=runs,
        start_ms=dict(check.start_ms),
        span_ms=max(last_end, last_arrival),
        wall_seconds=time.perf_counter() - wall_start,
    )
