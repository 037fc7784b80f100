"""The ``optimal`` planner: the minimum cost under the model, by a mixed-integer program.

Units: latency in ms, rates in req/s, costs in USD/h.

Each module's exact frontier (:func:`~harpagon.planning.frontier.exact_frontier`) lists
every configuration worth considering. A MILP solved by HiGHS (through
``scipy.optimize.milp``) picks one point per module: binary ``x[m, k]`` for point ``k``
of module ``m``, a start time ``s[m] >= 0`` per module, ``s[v] >= s[u] + latency(u)`` on
every edge, ``s[m] + latency(m) <= slo_ms`` on every sink, and the hardware quotas. The
result is optimal over the search space of :mod:`harpagon.planning.frontier`.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from harpagon.errors import InfeasiblePlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.planning.frontier import FrontierPoint, exact_frontier
from harpagon.planning.inputs import (
    assemble_plan,
    fluid_lower_bound,
    hardware_quotas,
    module_contexts,
    planned_application,
    require_frontiers,
)
from harpagon.planning.splitting import (
    Paths,
    check_quotas,
    fits,
    reassign_slack,
    slo_error,
)

__all__ = ["choose_points", "find_feasible_points", "plan_optimal"]


def plan_optimal(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    *,
    rate: float | None = None,
    headroom: float = 0.0,
    dispatch: Dispatch | str = Dispatch.BATCH_AWARE,
    policy: str = "optimal",
) -> Plan:
    """Plan ``app`` at the minimum cost the model allows.

    Parameters
    ----------
    app, profiles, hardware
        The application, the profiles of its models and the hardware catalog.
    rate : float, optional
        Application rate to plan for, req/s (default ``app.rate``).
    headroom : float
        Plan for ``rate * (1 + headroom)``; the plan's ``rate`` is that planned rate.
    dispatch : Dispatch
        ``batch_aware`` or ``round_robin``: the dispatch the minimum is taken under.
    policy : str
        Name written into the plan.

    Returns
    -------
    Plan
        A validated plan with ``lower_bound_cost_per_hour`` set to the fluid bound.

    Raises
    ------
    ConfigError
        If a profile is unknown, a model runs on no catalog hardware, or the rate or
        headroom is invalid.
    InfeasiblePlan
        If the SLO is below the fastest path or no choice fits the quotas.

    Notes
    -----
    The MILP has one binary per frontier point (after dropping points too slow for the
    SLO) and one continuous start time per module; HiGHS solves the apps shipped here
    in well under a second.
    """
    started = time.perf_counter()
    app = planned_application(app, rate, headroom)
    quotas = hardware_quotas(hardware)
    contexts = module_contexts(app, profiles, hardware, dispatch)

    frontiers = {name: exact_frontier(ctx) for name, ctx in contexts.items()}
    if quotas:
        # Only built when a module has no point within the quotas, for the error message.
        def unlimited(name: str) -> list[FrontierPoint]:
            return exact_frontier(module_contexts(app, profiles, hardware, dispatch, quotas=False)[name])

        require_frontiers(app, frontiers, unlimited, hardware)

    points = choose_points(app, frontiers, quotas)
    points, budgets = reassign_slack(app, points, frontiers, contexts, quotas)
    return assemble_plan(
        app, profiles, hardware, contexts, points, budgets,
        policy=policy,
        started=started,
        lower_bound_cost_per_hour=fluid_lower_bound(app, contexts),
    )


def choose_points(
    app: Application,
    frontiers: dict[str, list[FrontierPoint]],
    quotas: dict[str, int],
) -> dict[str, FrontierPoint]:
    """Return the cheapest choice of one point per module that meets the SLO and quotas.

    Raises
    ------
    InfeasiblePlan
        If the fastest points break the SLO, or no choice fits the quotas.
    """
    return _solve(app, frontiers, quotas, minimise_cost=True)


def find_feasible_points(
    app: Application,
    frontiers: dict[str, list[FrontierPoint]],
    quotas: dict[str, int],
) -> dict[str, FrontierPoint] | None:
    """Return any choice of one point per module that meets the SLO and quotas, or None.

    The MILP has no objective, so HiGHS returns the first feasible choice it finds, not
    the cheapest. Harpagon uses it only as a starting point when its own quota repair
    gets stuck.
    """
    try:
        return _solve(app, frontiers, quotas, minimise_cost=False)
    except InfeasiblePlan:
        return None


def _solve(
    app: Application,
    frontiers: dict[str, list[FrontierPoint]],
    quotas: dict[str, int],
    *,
    minimise_cost: bool,
) -> dict[str, FrontierPoint]:
    paths = Paths.of(app)
    fastest = {name: min(p.latency_ms for p in points) for name, points in frontiers.items()}
    total, _ = paths.critical_path(fastest)
    if not fits(total, app.slo_ms):
        raise slo_error(app, frontiers)

    # 1. Drop points that cannot fit even with every other module at its fastest.
    through = paths.through_ms(fastest)
    candidates = {
        name: [
            p for p in points
            if fits(p.latency_ms - fastest[name], app.slo_ms - through[name])
        ]
        for name, points in frontiers.items()
    }

    # 2. Variables: the point binaries of every module, then one start time per module.
    order = list(paths.order)
    offsets: dict[str, int] = {}
    latency, cost = [], []
    for name in order:
        offsets[name] = len(cost)
        latency.extend(p.latency_ms for p in candidates[name])
        cost.extend(p.cost_per_hour for p in candidates[name])
    num_points = len(cost)
    start_index = {name: num_points + i for i, name in enumerate(order)}
    size = num_points + len(order)

    rows: list[np.ndarray] = []
    lower: list[float] = []
    upper: list[float] = []

    def add(row: np.ndarray, low: float, high: float) -> None:
        rows.append(row)
        lower.append(low)
        upper.append(high)

    def latency_terms(row: np.ndarray, name: str) -> None:
        first = offsets[name]
        row[first:first + len(candidates[name])] += latency[first:first + len(candidates[name])]

    # 3. Constraints: one point per module, precedence, SLO at sinks, quotas.
    for name in order:
        row = np.zeros(size)
        row[offsets[name]:offsets[name] + len(candidates[name])] = 1.0
        add(row, 1.0, 1.0)
    for name in order:
        for successor in paths.successors[name]:
            row = np.zeros(size)
            row[start_index[name]] = 1.0
            row[start_index[successor]] = -1.0
            latency_terms(row, name)
            add(row, -np.inf, 0.0)
        if not paths.successors[name]:
            row = np.zeros(size)
            row[start_index[name]] = 1.0
            latency_terms(row, name)
            add(row, -np.inf, app.slo_ms)
    for hardware_name, limit in quotas.items():
        row = np.zeros(size)
        for name in order:
            for k, point in enumerate(candidates[name]):
                row[offsets[name] + k] = point.workers_by_hardware().get(hardware_name, 0)
        if row.any():
            add(row, -np.inf, float(limit))

    objective = np.concatenate([np.asarray(cost), np.zeros(len(order))])
    if not minimise_cost:
        objective = np.zeros(size)
    integrality = np.concatenate([np.ones(num_points), np.zeros(len(order))])
    bounds = Bounds(
        np.zeros(size),
        np.concatenate([np.ones(num_points), np.full(len(order), app.slo_ms)]),
    )
    result = milp(
        objective,
        constraints=LinearConstraint(np.vstack(rows), lower, upper),
        integrality=integrality,
        bounds=bounds,
        options={"mip_rel_gap": 0.0},
    )
    if result.status == 2 or result.x is None:
        # The fastest points meet the SLO, so only the quotas can be at fault.
        usage: dict[str, int] = {}
        for name in order:
            cheapest = min(frontiers[name], key=lambda p: p.cost_per_hour)
            for hardware_name, workers in cheapest.workers_by_hardware().items():
                usage[hardware_name] = usage.get(hardware_name, 0) + workers
        error = check_quotas(usage, quotas, f"application {app.name!r} at {app.rate:.6g} req/s")
        raise error or InfeasiblePlan(
            f"application {app.name!r}: no choice of configurations meets both the SLO of "
            f"{app.slo_ms:.6g} ms and the hardware quotas {quotas}; raise the quotas or the SLO"
        )
    if result.status != 0:
        raise RuntimeError(f"HiGHS failed on the planning MILP: {result.message}")

    chosen = {}
    for name in order:
        first = offsets[name]
        values = result.x[first:first + len(candidates[name])]
        chosen[name] = candidates[name][int(np.argmax(values))]
    return chosen
