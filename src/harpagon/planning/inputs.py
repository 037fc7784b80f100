"""Steps every planner shares: the planned rate, module contexts, the fluid bound, the plan.

Units: latency in ms, rates in req/s, costs in USD/h.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch, shaping_delay_ms
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import make_module_plan, make_plan, validate_plan
from harpagon.planning.frontier import FrontierPoint, ModuleContext, module_context, realize_groups

__all__ = [
    "assemble_plan",
    "fluid_lower_bound",
    "hardware_quotas",
    "module_contexts",
    "planned_application",
    "require_frontiers",
]


def planned_application(app: Application, rate: float | None, headroom: float) -> Application:
    """Return ``app`` at the rate to plan for: ``rate`` (or the app's) times ``1 + headroom``.

    Raises
    ------
    ConfigError
        If ``headroom`` is negative or infinite, or the resulting rate is not a finite
        number > 0.
    """
    if not headroom >= 0:
        raise ConfigError(f"headroom must be a fraction >= 0 (0.2 plans for 20% more), got {headroom}")
    if not math.isfinite(headroom):
        raise ConfigError(f"headroom must be a finite fraction, got {headroom}")
    base = app.rate if rate is None else rate
    if not base > 0:
        raise ConfigError(f"rate must be > 0 req/s, got {base}")
    return app.with_overrides(rate=base * (1.0 + headroom))


def hardware_quotas(hardware: HardwareCatalog) -> dict[str, int]:
    """Return the quota of every hardware type that has one."""
    return {kind.name: kind.available for kind in hardware if kind.available is not None}


def module_contexts(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    dispatch: Dispatch | str = Dispatch.BATCH_AWARE,
    *,
    quotas: bool = True,
) -> dict[str, ModuleContext]:
    """Return the context of every module of ``app`` at ``app.rate``.

    Raises
    ------
    ConfigError
        If a module names an unknown profile or its model runs on no catalog hardware.
    """
    contexts = {}
    for module in app.modules:
        contexts[module.name] = module_context(
            name=module.name,
            rate=app.rate * module.rate_factor,
            overhead_ms=module.overhead_ms,
            shaping_ms=shaping_delay_ms(app.rate, module.rate_factor),
            profile=profiles[module.profile],
            hardware=hardware,
            dispatch=dispatch,
            quotas=quotas,
        )
    return contexts


def require_frontiers(
    app: Application,
    frontiers: Mapping[str, list[FrontierPoint]],
    unlimited: Callable[[str], list[FrontierPoint]],
    hardware: HardwareCatalog,
) -> None:
    """Raise if a module has no configuration within the quotas.

    ``unlimited(name)`` returns the module's frontier without quotas. The error message
    gives the worker counts of its cheapest point.

    Raises
    ------
    InfeasiblePlan
        Naming the module, the hardware it would need and the quota.
    """
    for name, points in frontiers.items():
        if points:
            continue
        cheapest = min(unlimited(name), key=lambda p: p.cost_per_hour)
        needs = ", ".join(
            f"{workers} x {hw} (quota {hardware[hw].available})"
            for hw, workers in cheapest.workers_by_hardware().items()
        )
        raise InfeasiblePlan(
            f"module {name!r} at {app.module_rate(name):.6g} req/s cannot be served within the "
            f"hardware quotas: its cheapest configuration needs {needs}; raise 'available' in "
            f"{hardware.path} or lower the rate"
        )


def fluid_lower_bound(app: Application, contexts: Mapping[str, ModuleContext]) -> float:
    """Return the fluid lower bound on the cost of any plan, USD/h.

    Every worker group pays at least ``p / T`` per request per second it carries. So a
    module costs at least ``r_m`` divided by the best throughput per dollar ``T / p``
    among the batch kinds that could meet the SLO with any number of workers. Such a kind
    has ``shaping + o + d < slo_ms`` (``o + 2 d`` under round-robin).
    Returns ``inf`` when a module has no such kind.
    """
    total = 0.0
    for ctx in contexts.values():
        base_ms = ctx.shaping_ms + ctx.overhead_ms
        best = 0.0
        for kind in ctx.kinds:
            fastest_ms = base_ms + kind.batch_latency_ms
            if ctx.dispatch is Dispatch.ROUND_ROBIN:
                fastest_ms += kind.batch_latency_ms
            if fastest_ms < app.slo_ms:
                best = max(best, kind.throughput / kind.price_per_hour)
        if best == 0.0:
            return float("inf")
        total += ctx.rate / best
    return total


def assemble_plan(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    contexts: Mapping[str, ModuleContext],
    points: Mapping[str, FrontierPoint],
    budgets_ms: Mapping[str, float],
    *,
    policy: str,
    started: float,
    lower_bound_cost_per_hour: float | None,
    extra: dict[str, Any] | None = None,
) -> Plan:
    """Build the plan with the dummy generator's rates, then validate it.

    ``started`` is the :func:`time.perf_counter` value when planning began; the plan's
    ``planning_ms`` runs from there to the plan's assembly (validation excluded).

    Raises
    ------
    InvalidPlan
        If the plan breaks the model, which is a bug of the planner.
    """
    modules = []
    for name in app.topological_order:
        groups = realize_groups(points[name], contexts[name], budgets_ms[name])
        modules.append(
            make_module_plan(app, name, groups, hardware, budget_ms=budgets_ms[name], rate=app.rate)
        )
    planning_ms = (time.perf_counter() - started) * 1000.0
    plan = make_plan(
        app,
        modules,
        hardware,
        policy=policy,
        planning_ms=planning_ms,
        rate=app.rate,
        lower_bound_cost_per_hour=lower_bound_cost_per_hour,
    )
    if extra:
        plan.extra.update(extra)
    validate_plan(plan, app, profiles, hardware)
    return plan
