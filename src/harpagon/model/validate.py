"""The shared plan builder and validator: every figure of a plan recomputed from the model.

Planners build groups and module plans with :func:`make_group`, :func:`make_module_plan`
and :func:`make_plan`, so figures are computed in one place; :func:`validate_plan`
recomputes all of them from the profiles and the catalog and raises on any mismatch.
Latency in ms, rates in req/s, cost in USD/h.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from harpagon.errors import InvalidPlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import (
    MAX_GROUPS_PER_MODULE,
    REL_TOL,
    Dispatch,
    group_capacity,
    group_latency_ms,
    min_collection_rate,
    shaping_delay_ms,
    slack_share,
)
from harpagon.model.plan import Group, ModulePlan, Plan, SharedMachine
from harpagon.model.profiles import ProfileSet

__all__ = ["PlanCheck", "make_group", "make_module_plan", "make_plan", "validate_plan"]


def _close(a: float, b: float, tol: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def make_group(
    *,
    hardware: str,
    batch_size: int,
    workers: int,
    rate: float,
    dummy_rate: float,
    dispatch: Dispatch | str,
    overhead_ms: float,
    batch_latency_ms: float,
) -> Group:
    """Return a group with its latency computed by the model."""
    dispatch = Dispatch(dispatch)
    latency = group_latency_ms(
        overhead_ms=overhead_ms,
        batch_latency_ms=batch_latency_ms,
        batch_size=batch_size,
        workers=workers,
        collection_rate=rate + dummy_rate,
        dispatch=dispatch,
    )
    return Group(hardware, batch_size, workers, rate, dummy_rate, dispatch.value, latency)


def make_module_plan(
    app: Application,
    name: str,
    groups: list[Group] | tuple[Group, ...],
    hardware: HardwareCatalog,
    *,
    budget_ms: float,
    rate: float | None = None,
    extra_latency_ms: float = 0.0,
) -> ModulePlan:
    """Return a module plan whose latency and cost are computed from its groups.

    ``rate`` is the application rate the plan is made for (default ``app.rate``);
    ``extra_latency_ms`` is the worst latency of the module's members on shared machines.
    """
    app_rate = app.rate if rate is None else rate
    module = app.module(name)
    shaping = shaping_delay_ms(app_rate, module.rate_factor)
    latency = shaping + max([g.latency_ms for g in groups] + [extra_latency_ms])
    cost = sum(g.workers * hardware[g.hardware].price_per_hour for g in groups)
    return ModulePlan(
        name=name,
        profile=module.profile,
        rate=app_rate * module.rate_factor,
        budget_ms=budget_ms,
        latency_ms=latency,
        cost_per_hour=cost,
        groups=tuple(groups),
        shaping_ms=shaping,
    )


def make_plan(
    app: Application,
    modules: list[ModulePlan],
    hardware: HardwareCatalog,
    *,
    policy: str,
    planning_ms: float,
    rate: float | None = None,
    shared_machines: tuple[SharedMachine, ...] = (),
    lower_bound_cost_per_hour: float | None = None,
) -> Plan:
    """Return a plan whose total cost and end-to-end latency are computed from its modules."""
    latency, _ = app.critical_path({m.name: m.latency_ms for m in modules})
    cost = sum(m.cost_per_hour for m in modules) + sum(
        hardware[s.hardware].price_per_hour for s in shared_machines
    )
    by_name = {m.name: m for m in modules}
    return Plan(
        app=app.name,
        policy=policy,
        rate=app.rate if rate is None else rate,
        slo_ms=app.slo_ms,
        cost_per_hour=cost,
        latency_ms=latency,
        planning_ms=planning_ms,
        modules=tuple(by_name[n] for n in app.topological_order),
        shared_machines=shared_machines,
        lower_bound_cost_per_hour=lower_bound_cost_per_hour,
    )


@dataclass(frozen=True)
class PlanCheck:
    """Figures of a plan recomputed by :func:`validate_plan`."""

    cost_per_hour: float
    latency_ms: float
    critical_path: tuple[str, ...]
    module_latency_ms: dict[str, float]
    start_ms: dict[str, float]
    """Planned start of each module: the longest path of module latencies before it."""


def _check_group(
    problems: list[str], where: str, group: Group, app: Application, module_name: str,
    profiles: ProfileSet, hardware: HardwareCatalog, share: float, num_groups: int,
) -> float | None:
    # Returns the recomputed latency, or None when the group cannot be evaluated.
    module = app.module(module_name)
    if group.hardware not in hardware:
        problems.append(f"{where}: unknown hardware {group.hardware!r}")
        return None
    profile = profiles[module.profile]
    if group.batch_size not in profile.latency_ms.get(group.hardware, {}):
        problems.append(
            f"{where}: model {module.profile!r} is not profiled on {group.hardware} "
            f"at batch size {group.batch_size}"
        )
        return None
    if group.workers < 1:
        problems.append(f"{where}: workers must be >= 1, got {group.workers}")
        return None
    if not group.rate > 0 or group.dummy_rate < 0:
        problems.append(
            f"{where}: rate must be > 0 and dummy_rate >= 0, got {group.rate} and {group.dummy_rate}"
        )
        return None
    try:
        dispatch = Dispatch(group.dispatch)
    except ValueError:
        problems.append(f"{where}: unknown dispatch {group.dispatch!r}")
        return None
    d = profile.batch_latency_ms(group.hardware, group.batch_size)
    w = group.collection_rate
    capacity = group_capacity(group.batch_size, d, group.workers)
    if w > capacity * (1 + REL_TOL) + 1e-9:
        problems.append(
            f"{where}: collection rate {w:.6g} req/s exceeds the capacity {capacity:.6g} req/s "
            f"of {group.workers} x {group.hardware} at batch {group.batch_size}"
        )
    slack = slack_share(share, group.workers, dispatch, num_groups)
    needed = min_collection_rate(group.rate, group.batch_size, slack)
    if w < needed * (1 - REL_TOL) - 1e-9:
        problems.append(
            f"{where}: collection rate {w:.6g} req/s is below {needed:.6g} req/s, the rate "
            f"that keeps batches of {group.batch_size} from overflowing at share {share:.4g}"
        )
    latency = group_latency_ms(
        overhead_ms=module.overhead_ms, batch_latency_ms=d, batch_size=group.batch_size,
        workers=group.workers, collection_rate=w, dispatch=dispatch,
    )
    if not _close(latency, group.latency_ms):
        problems.append(f"{where}: latency_ms is {group.latency_ms:.6g}, the model gives {latency:.6g}")
    return latency


def _check_shared(
    problems: list[str], plan: Plan, app: Application, profiles: ProfileSet,
    hardware: HardwareCatalog,
) -> tuple[dict[str, float], dict[str, float]]:
    # Returns (module -> worst member latency, module -> rate carried on shared machines).
    latency: dict[str, float] = defaultdict(float)
    carried: dict[str, float] = defaultdict(float)
    # A module split over several destinations (groups and shared slots) deviates from each
    # share by up to one request, so a member's batch keeps room for its share (step 5).
    destinations = {m.name: len(m.groups) for m in plan.modules}
    for machine in plan.shared_machines:
        for member in machine.members:
            destinations[member.module] = destinations.get(member.module, 0) + 1
    for index, machine in enumerate(plan.shared_machines):
        where = f"shared machine {index} ({machine.hardware})"
        if machine.hardware not in hardware:
            problems.append(f"{where}: unknown hardware {machine.hardware!r}")
            continue
        busy_ms = 0.0
        for member in machine.members:
            module = app.module(member.module)
            d = profiles[module.profile].batch_latency_ms(machine.hardware, member.batch_size)
            busy_ms += d
            share = member.rate / (plan.rate * module.rate_factor)
            slack = slack_share(share, 1, Dispatch.BATCH_AWARE, destinations[member.module])
            needed = member.rate * machine.duty_cycle_ms / 1000.0 + slack
            if member.batch_size < needed * (1 - REL_TOL):
                problems.append(
                    f"{where}: member {member.module} runs batch {member.batch_size} per "
                    f"{machine.duty_cycle_ms:.6g} ms cycle, too small for {member.rate:.6g} req/s "
                    f"plus a split slack of {slack:.4g} requests"
                )
            latency[member.module] = max(
                latency[member.module], module.overhead_ms + machine.duty_cycle_ms + d
            )
            carried[member.module] += member.rate
        if busy_ms > machine.duty_cycle_ms * (1 + REL_TOL) + 1e-9:
            problems.append(
                f"{where}: members need {busy_ms:.6g} ms per cycle, more than the "
                f"{machine.duty_cycle_ms:.6g} ms duty cycle"
            )
    return latency, carried


def validate_plan(
    plan: Plan, app: Application, profiles: ProfileSet, hardware: HardwareCatalog
) -> PlanCheck:
    """Recompute every figure of ``plan`` and raise if any rule of the model is broken.

    Checks: hardware and batch sizes exist; every group within capacity and above its
    overflow rate; group, module and end-to-end latency; the SLO on every path; rate
    conservation per module; quotas; and cost.

    Raises
    ------
    InvalidPlan
        With one line per violated rule.

    Notes
    -----
    Runs in O(modules x groups + paths) time.
    """
    problems: list[str] = []
    names = {m.name for m in plan.modules}
    expected = {m.name for m in app.modules}
    if names != expected:
        problems.append(
            f"plan modules {sorted(names)} differ from application modules {sorted(expected)}"
        )
        raise InvalidPlan(problems)

    # 1. Shared machines, then every module's groups, rates and latency.
    shared_latency, shared_rate = _check_shared(problems, plan, app, profiles, hardware)
    module_latency: dict[str, float] = {}
    cost = sum(hardware[s.hardware].price_per_hour for s in plan.shared_machines if s.hardware in hardware)
    workers_used: dict[str, int] = defaultdict(int)
    for s in plan.shared_machines:
        workers_used[s.hardware] += 1
    for mp in plan.modules:
        module = app.module(mp.name)
        rate = plan.rate * module.rate_factor
        if mp.profile != module.profile:
            problems.append(f"module {mp.name}: profile {mp.profile!r}, application says {module.profile!r}")
        if not mp.groups and mp.name not in shared_rate:
            problems.append(f"module {mp.name}: no groups and no shared machine carry it")
        if len(mp.groups) > MAX_GROUPS_PER_MODULE:
            problems.append(
                f"module {mp.name}: {len(mp.groups)} groups, the model allows {MAX_GROUPS_PER_MODULE}"
            )
        carried = sum(g.rate for g in mp.groups) + shared_rate.get(mp.name, 0.0)
        if not _close(carried, rate):
            problems.append(f"module {mp.name}: groups carry {carried:.6g} req/s, module rate is {rate:.6g}")
        latencies = [shared_latency.get(mp.name, 0.0)]
        for index, group in enumerate(mp.groups):
            where = f"module {mp.name} group {index}"
            latency = _check_group(
                problems, where, group, app, mp.name, profiles, hardware,
                group.rate / rate, len(mp.groups),
            )
            if latency is not None:
                latencies.append(latency)
                workers_used[group.hardware] += group.workers
                cost += group.workers * hardware[group.hardware].price_per_hour
        shaping = shaping_delay_ms(plan.rate, module.rate_factor)
        if not _close(shaping, mp.shaping_ms):
            problems.append(f"module {mp.name}: shaping_ms is {mp.shaping_ms:.6g}, the model gives {shaping:.6g}")
        module_latency[mp.name] = shaping + max(latencies)
        if not _close(module_latency[mp.name], mp.latency_ms):
            problems.append(
                f"module {mp.name}: latency_ms is {mp.latency_ms:.6g}, "
                f"the model gives {module_latency[mp.name]:.6g}"
            )
        if module_latency[mp.name] > mp.budget_ms * (1 + REL_TOL) + 1e-6:
            problems.append(
                f"module {mp.name}: latency {module_latency[mp.name]:.6g} ms exceeds its budget {mp.budget_ms:.6g} ms"
            )
        module_cost = sum(g.workers * hardware[g.hardware].price_per_hour for g in mp.groups if g.hardware in hardware)
        if not _close(module_cost, mp.cost_per_hour):
            problems.append(f"module {mp.name}: cost_per_hour is {mp.cost_per_hour:.6g}, the groups cost {module_cost:.6g}")

    # 2. End-to-end latency and budgets along every path.
    latency, path = app.critical_path(module_latency)
    if latency > plan.slo_ms * (1 + REL_TOL) + 1e-6:
        problems.append(
            f"end-to-end latency {latency:.6g} ms on path {' -> '.join(path)} exceeds the SLO {plan.slo_ms:.6g} ms"
        )
    if not _close(latency, plan.latency_ms):
        problems.append(f"plan latency_ms is {plan.latency_ms:.6g}, the model gives {latency:.6g}")
    budgets = {m.name: m.budget_ms for m in plan.modules}
    budget_total, budget_path = app.critical_path(budgets)
    if budget_total > plan.slo_ms * (1 + REL_TOL) + 1e-6:
        problems.append(
            f"budgets on path {' -> '.join(budget_path)} add up to {budget_total:.6g} ms, above the SLO"
        )

    # 3. Quotas and cost.
    for name, used in sorted(workers_used.items()):
        if name in hardware and hardware[name].available is not None and used > hardware[name].available:
            problems.append(f"hardware {name}: plan uses {used} workers, quota is {hardware[name].available}")
    if not _close(cost, plan.cost_per_hour):
        problems.append(f"plan cost_per_hour is {plan.cost_per_hour:.6g}, the model gives {cost:.6g}")

    if problems:
        raise InvalidPlan(problems)
    return PlanCheck(
        cost_per_hour=cost,
        latency_ms=latency,
        critical_path=tuple(path),
        module_latency_ms=module_latency,
        start_ms=app.start_offsets_ms(module_latency),
    )
