"""The Nexus baseline (SOSP 2019): round-robin dispatch, squishy bin packing, tree DP split.

All workers of a plan share one hardware type. At a module budget ``L`` (less the shaping
delay) a module gets:

- **saturated workers**: the largest profiled batch size ``b`` with ``o + 2 d(b) <= L``, and
  ``n = floor(r / T)`` round-robin workers. They are padded to their full throughput
  ``w = n T``, so the model's round-robin bound ``o + d + n 1000 b / w`` equals Nexus's
  ``o + 2 d``. The real rate they carry leaves the split slack of a second destination,
  because the rest of the module's traffic goes elsewhere.
- **a residual** ``r_res = r - r_main`` on a shared machine: the largest ``b`` whose batch
  fills within its duty cycle, ``o + d(b) + 1000 (b - s) / r_res <= L``. Failing that, the
  ``b`` with the lowest occupancy on a shorter cycle ``L - o - d(b)``. If the residual fits
  on no machine the module takes one more saturated worker instead. The split slack ``s``
  is the residual's share ``r_res / r`` when saturated workers carry the rest, else 0: the
  split deviates by up to one request, so a batch keeps that much room.

Residuals of all modules are then packed onto shared machines ("squishy bin packing").
Items go in order of falling occupancy, each into the fullest machine that still fits. A
machine's duty cycle is the minimum of its members' cycles, each member runs
``b_i = ceil(cycle r_i / 1000 + s_i)`` rounded up to a profiled size, and the members fit
when ``sum d(b_i) <= cycle``.

The SLO is split by dynamic programming over the module tree, with the SLO cut into
``num_steps`` equal steps and cost counted in fractional machines (saturated workers plus
the residual's occupancy). Latency in ms, rates in req/s, cost in USD/h.

Notes
-----
The DP is exact on a tree (or a forest, under a virtual root). A DAG that is not a tree
(a module with several predecessors, a join) is unrolled into a tree by copying the
sub-DAG below the join once per path that reaches it; each copy is charged an equal share
of the module's cost, and the module finally gets the smallest budget any of its copies
received. Every path of the DAG is a path of the unrolled tree, so every path still
meets the SLO; the cost the DP minimised is an approximation for such DAGs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch, shaping_delay_ms
from harpagon.model.plan import Group, ModulePlan, Plan, SharedMachine, SharedMember
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan
from harpagon.planning.baselines._common import (
    elapsed_ms,
    throughput,
)
from harpagon.planning.inputs import planned_application

__all__ = [
    "DEFAULT_NUM_STEPS",
    "NexusModule",
    "Residual",
    "module_config",
    "pack_residuals",
    "plan_nexus",
    "split_budgets",
]

POLICY = "nexus"
DEFAULT_NUM_STEPS = 100
"""Equal steps the SLO is cut into for the latency split."""


@dataclass(frozen=True)
class Residual:
    """A module's leftover traffic, to be placed on a shared machine."""

    module: str
    rate: float
    batch_size: int
    cycle_ms: float
    """The maximum duty cycle this member tolerates at ``batch_size``."""
    room_ms: float
    """Group budget left after the overhead: ``cycle + d(b_i)`` must stay within it."""
    batch_latency_ms: dict[int, float] = field(compare=False)
    """d(b) of the module's model on the plan's hardware type, by batch size."""
    slack: float = 0.0
    """Requests a batch keeps free for the split: the member's share of the module rate
    when saturated workers carry the rest (the split deviates by up to one request), else 0."""

    @property
    def occupancy(self) -> float:
        """Share of a machine the residual takes alone: ``d(b) / cycle``."""
        return self.batch_latency_ms[self.batch_size] / self.cycle_ms


@dataclass(frozen=True)
class NexusModule:
    """The deployment of one module at one budget on the plan's hardware type."""

    name: str
    batch_size: int
    """Batch size of the saturated workers."""
    workers: int
    main_rate: float
    """Real rate on the saturated workers, req/s."""
    residual: Residual | None
    machines: float
    """Fractional machine count: saturated workers plus the residual's occupancy."""


def _residual(
    name: str, rate: float, room_ms: float, latencies: dict[int, float], slack: float
) -> Residual | None:
    # Nexus's rule first: the largest b whose batch (less the split slack) fills within
    # its cycle, cycle = 1000 (b - slack) / r.
    filled = []
    for b, d in latencies.items():
        cycle = 1000.0 * (b - slack) / rate
        if cycle > 0 and d + cycle <= room_ms and d <= cycle:
            filled.append((b, cycle))
    if filled:
        b, cycle = max(filled)
        return Residual(name, rate, b, cycle, room_ms, latencies, slack)

    # Otherwise a shorter cycle than the fill time, at the lowest occupancy.
    best: Residual | None = None
    for b, d in latencies.items():
        cycle = room_ms - d
        if cycle > 0 and d <= cycle and b >= cycle * rate / 1000.0 + slack:
            candidate = Residual(name, rate, b, cycle, room_ms, latencies, slack)
            if best is None or candidate.occupancy < best.occupancy:
                best = candidate
    return best


def module_config(
    app: Application, name: str, latencies: dict[int, float], budget_ms: float
) -> NexusModule | None:
    """Return Nexus's deployment of module ``name`` within ``budget_ms``, or ``None``.

    ``latencies`` maps batch size to d(b) on the plan's hardware type. ``None`` means no
    profiled batch size meets ``o + 2 d(b) <= budget - shaping``.
    """
    module = app.module(name)
    rate = app.module_rate(name)
    room_ms = budget_ms - shaping_delay_ms(app.rate, module.rate_factor) - module.overhead_ms
    fitting = [b for b, d in latencies.items() if 2.0 * d <= room_ms]
    if not fitting:
        return None
    b = max(fitting)
    d = latencies[b]
    full = throughput(b, d)
    workers = math.floor(rate / full * (1.0 + 1e-12))
    if workers >= 1 and rate - workers * full <= 1e-9 * rate:
        return NexusModule(name, b, workers, rate, None, float(workers))

    # The main group leaves the slack of a two-way split: w >= r_main b / (b - share / n).
    main_rate = 0.0
    if workers >= 1:
        main_rate = workers * full / (1.0 + full / (rate * b))
    residual_rate = rate - main_rate
    slack = residual_rate / rate if workers >= 1 else 0.0
    residual = _residual(name, residual_rate, room_ms, latencies, slack)
    if residual is None:
        return NexusModule(name, b, workers + 1, rate, None, float(workers + 1))
    return NexusModule(name, b, workers, main_rate, residual, workers + residual.occupancy)


def _member_batch(residual: Residual, cycle_ms: float) -> int | None:
    # The smallest profiled size that fits a cycle's arrivals plus the split slack and
    # still meets the budget.
    needed = (cycle_ms * residual.rate / 1000.0 + residual.slack) * (1.0 - 1e-12)
    for b in sorted(residual.batch_latency_ms):
        if b >= needed:
            if cycle_ms + residual.batch_latency_ms[b] <= residual.room_ms * (1 + 1e-12):
                return b
            return None
    return None


def _fit(members: list[Residual]) -> tuple[float, list[int]] | None:
    # Returns (cycle, member batch sizes) of a machine running ``members``, or None.
    cycle = min(m.cycle_ms for m in members)
    sizes = []
    for member in members:
        b = _member_batch(member, cycle)
        if b is None:
            return None
        sizes.append(b)
    busy = sum(m.batch_latency_ms[b] for m, b in zip(members, sizes, strict=True))
    if busy > cycle * (1 + 1e-12):
        return None
    return cycle, sizes


def pack_residuals(
    residuals: Sequence[Residual], hardware_name: str
) -> tuple[SharedMachine, ...]:
    """Pack residuals onto shared machines of ``hardware_name`` (squishy bin packing).

    Items go in order of falling occupancy, each into the machine that ends up fullest
    after adding it, or onto a new machine when none fits.

    Raises
    ------
    ValueError
        If a residual does not fit on a machine by itself.
    """
    for item in residuals:
        if _fit([item]) is None:
            raise ValueError(
                f"residual of module {item.module!r} does not fit on one machine: batch "
                f"{item.batch_size} takes {item.batch_latency_ms[item.batch_size]:g} ms of a "
                f"{item.cycle_ms:g} ms cycle, or overruns its {item.room_ms:g} ms room"
            )
    bins: list[list[Residual]] = []
    for item in sorted(residuals, key=lambda r: (-r.occupancy, r.module)):
        best_index, best_load = None, -1.0
        for index, members in enumerate(bins):
            fit = _fit(members + [item])
            if fit is None:
                continue
            cycle, sizes = fit
            load = sum(m.batch_latency_ms[b] for m, b in zip(members + [item], sizes, strict=True))
            if load / cycle > best_load:
                best_index, best_load = index, load / cycle
        if best_index is None:
            bins.append([item])
        else:
            bins[best_index].append(item)

    machines = []
    for members in bins:
        fit = _fit(members)
        assert fit is not None, "a packed machine must still fit its members"
        cycle, sizes = fit
        machines.append(
            SharedMachine(
                hardware=hardware_name,
                duty_cycle_ms=cycle,
                members=tuple(
                    SharedMember(m.module, b, m.rate) for m, b in zip(members, sizes, strict=True)
                ),
            )
        )
    return tuple(machines)


def split_budgets(app: Application, step_cost: dict[str, np.ndarray], num_steps: int) -> dict[str, int]:
    """Split ``num_steps`` latency steps over the modules at minimum fractional cost.

    ``step_cost[m][t]`` is module ``m``'s cost with a budget of ``t`` steps (``inf`` where it
    has no deployment; index 0 is unused). Returns the steps given to each module; along
    every path they add up to at most ``num_steps``.

    Raises
    ------
    InfeasiblePlan
        If no split gives every module a deployment.

    Notes
    -----
    O(tree nodes x num_steps^2), where a DAG with joins has more tree nodes than modules
    (see the module notes).
    """
    # 1. Unroll the DAG into a tree below a virtual root; count each module's copies.
    copies: dict[str, int] = {name: 0 for name in app.topological_order}
    nodes: list[tuple[str, list[int]]] = []

    def add(name: str) -> int:
        children = [add(successor) for successor in app.successors(name)]
        nodes.append((name, children))
        copies[name] += 1
        return len(nodes) - 1

    roots = [add(source) for source in app.sources]

    # 2. Bottom-up min-plus convolution: best[i][t] for t = 0..num_steps.
    steps = np.arange(num_steps + 1)
    best: list[np.ndarray] = []
    choice: list[np.ndarray] = []
    for name, children in nodes:
        own = step_cost[name] / copies[name]
        below = np.zeros(num_steps + 1)
        for child in children:
            below = below + best[child]
        # total[t, k] = own[k] + below[t - k] for 1 <= k <= t.
        k = steps[None, :]
        t = steps[:, None]
        total = np.where(
            (k >= 1) & (k <= t), own[None, :] + below[np.clip(t - k, 0, num_steps)], np.inf
        )
        choice.append(np.argmin(total, axis=1))
        best.append(total[steps, choice[-1]])
    if not all(np.isfinite(best[root][num_steps]) for root in roots):
        raise InfeasiblePlan(
            f"nexus: no split of the SLO of {app.slo_ms:g} ms into {num_steps} steps gives "
            f"every module of {app.name!r} a deployment"
        )

    # 3. Trace the choices top-down; a module keeps the smallest budget of its copies.
    assigned: dict[str, int] = {}

    def trace(index: int, available: int) -> None:
        name, children = nodes[index]
        own = int(choice[index][available])
        assigned[name] = min(assigned.get(name, own), own)
        for child in children:
            trace(child, available - own)

    for root in roots:
        trace(root, num_steps)
    return assigned


def _plan_on(
    app: Application, profiles: ProfileSet, hardware: HardwareCatalog, hw: str,
    num_steps: int,
) -> tuple[list[ModulePlan], tuple[SharedMachine, ...]]:
    # Plan every module on hardware type ``hw``; raises InfeasiblePlan.
    step_ms = app.slo_ms / num_steps
    price = hardware[hw].price_per_hour
    latencies = {
        name: dict(profiles[app.module(name).profile].latency_ms[hw]) for name in app.topological_order
    }

    # 1. Each module's fractional cost at every whole number of steps.
    step_cost: dict[str, np.ndarray] = {}
    for name in app.topological_order:
        costs = np.full(num_steps + 1, np.inf)
        for t in range(1, num_steps + 1):
            config = module_config(app, name, latencies[name], t * step_ms)
            if config is not None:
                costs[t] = config.machines * price
        step_cost[name] = costs

    # 2. Split the SLO, deploy each module at its budget, and pack the residuals.
    assigned = split_budgets(app, step_cost, num_steps)
    modules: list[ModulePlan] = []
    residuals: list[Residual] = []
    for name in app.topological_order:
        budget_ms = assigned[name] * step_ms
        config = module_config(app, name, latencies[name], budget_ms)
        assert config is not None, "the split gives each module a budget it can meet"
        groups: list[Group] = []
        if config.workers >= 1:
            d = latencies[name][config.batch_size]
            full = config.workers * throughput(config.batch_size, d)
            groups.append(
                make_group(
                    hardware=hw, batch_size=config.batch_size, workers=config.workers,
                    rate=config.main_rate, dummy_rate=max(0.0, full - config.main_rate),
                    dispatch=Dispatch.ROUND_ROBIN, overhead_ms=app.module(name).overhead_ms,
                    batch_latency_ms=d,
                )
            )
        if config.residual is not None:
            residuals.append(config.residual)
        modules.append(make_module_plan(app, name, groups, hardware, budget_ms=budget_ms))
    shared = pack_residuals(residuals, hw)

    # 3. Add each module's worst shared-machine latency to its own.
    member_latency: dict[str, float] = {}
    for machine in shared:
        for member in machine.members:
            module = app.module(member.module)
            latency = module.overhead_ms + machine.duty_cycle_ms + latencies[member.module][member.batch_size]
            member_latency[member.module] = max(member_latency.get(member.module, 0.0), latency)
    modules = [
        make_module_plan(
            app, m.name, list(m.groups), hardware, budget_ms=m.budget_ms,
            extra_latency_ms=member_latency.get(m.name, 0.0),
        )
        for m in modules
    ]

    # 4. The quota counts saturated workers and shared machines alike.
    available = hardware[hw].available
    used = sum(g.workers for m in modules for g in m.groups) + len(shared)
    if available is not None and used > available:
        raise InfeasiblePlan(f"nexus: the plan needs {used} {hw} machines, the quota is {available}")
    return modules, shared


def plan_nexus(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    *,
    rate: float | None = None,
    headroom: float = 0.0,
    hardware_name: str | None = None,
    num_steps: int = DEFAULT_NUM_STEPS,
) -> Plan:
    """Plan ``app`` the Nexus way on one hardware type.

    Parameters
    ----------
    app, profiles, hardware
        The application, its models' profiles and the hardware catalog.
    rate : float, optional
        Application rate in req/s to plan for (default ``app.rate``).
    headroom : float
        Plan for ``rate * (1 + headroom)``; the plan's ``rate`` is that planned rate.
    hardware_name : str, optional
        The hardware type to use. By default every type on which all modules are profiled is
        tried and the cheapest plan is kept.
    num_steps : int
        Equal steps the SLO is cut into for the latency split.

    Returns
    -------
    Plan
        With ``extra["hardware"]``, the type used.

    Raises
    ------
    ConfigError
        If ``hardware_name`` is unknown or does not profile every module, or ``num_steps < 1``.
    InfeasiblePlan
        If no hardware type gives a plan within the SLO and the quota.

    Notes
    -----
    O(hardware types x (modules x num_steps x batch sizes + tree nodes x num_steps^2)).
    """
    start = time.perf_counter()
    if num_steps < 1:
        raise ConfigError(f"num_steps must be an integer >= 1, got {num_steps}")
    app = planned_application(app, rate, headroom)
    usable = [
        hw for hw in hardware.names()
        if all(profiles[m.profile].latency_ms.get(hw) for m in app.modules)
    ]
    if hardware_name is not None:
        hardware[hardware_name]  # noqa: B018 - raises ConfigError naming the known types
        if hardware_name not in usable:
            raise ConfigError(
                f"nexus: hardware {hardware_name!r} does not profile every module of "
                f"{app.name!r}; pick one of: {', '.join(usable) or 'none'}"
            )
        usable = [hardware_name]
    if not usable:
        raise InfeasiblePlan(
            f"nexus: no hardware type of the catalog profiles every module of {app.name!r}"
        )

    best: tuple[float, str, list[ModulePlan], tuple[SharedMachine, ...]] | None = None
    reasons = []
    for hw in usable:
        try:
            modules, shared = _plan_on(app, profiles, hardware, hw, num_steps)
        except InfeasiblePlan as err:
            reasons.append(f"{hw}: {err}")
            continue
        cost = sum(m.cost_per_hour for m in modules) + len(shared) * hardware[hw].price_per_hour
        if best is None or cost < best[0]:
            best = (cost, hw, modules, shared)
    if best is None:
        raise InfeasiblePlan("nexus: no hardware type gives a plan; " + "; ".join(reasons))
    _, hw, modules, shared = best
    plan = make_plan(
        app, modules, hardware, policy=POLICY, planning_ms=elapsed_ms(start),
        shared_machines=shared,
    )
    return plan.with_updates(extra={"hardware": hw})
