"""The ``harpagon`` planner: module-level scheduling, then latency splitting and reassignment.

Units: latency in ms, rates in req/s, costs in USD/h.

Keyword options switch off one idea at a time, so the ablations reuse this planner:
round-robin dispatch, a single group per module, no dummy requests, an even SLO split.
"""

from __future__ import annotations

import time
from typing import Literal

from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.planning.frontier import FrontierPoint, harpagon_frontier
from harpagon.planning.inputs import (
    assemble_plan,
    fluid_lower_bound,
    hardware_quotas,
    module_contexts,
    planned_application,
    require_frontiers,
)
from harpagon.planning.optimal import find_feasible_points
from harpagon.planning.splitting import reassign_slack, split_by_efficiency, split_evenly

__all__ = ["plan_harpagon"]


def plan_harpagon(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    *,
    rate: float | None = None,
    headroom: float = 0.0,
    dispatch: Dispatch | str = Dispatch.BATCH_AWARE,
    two_groups: bool = True,
    dummies: bool = True,
    split: Literal["efficiency", "even"] = "efficiency",
    policy: str = "harpagon",
) -> Plan:
    """Plan ``app`` with Harpagon's dispatching, scheduling and splitting.

    Parameters
    ----------
    app, profiles, hardware
        The application, the profiles of its models and the hardware catalog.
    rate : float, optional
        Application rate to plan for, req/s (default ``app.rate``).
    headroom : float
        Plan for ``rate * (1 + headroom)``; the plan's ``rate`` is that planned rate.
    dispatch : Dispatch
        ``batch_aware`` (Harpagon) or ``round_robin`` (ablation).
    two_groups : bool
        Allow a residual group beside the main group; ``False`` keeps one group.
    dummies : bool
        Allow dummy requests; ``False`` plans every group at its real rate only.
    split : {"efficiency", "even"}
        Latency splitting by cost per ms with slack reassignment, or an equal share
        of the SLO per module on its longest path.
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
        If the SLO is below the fastest path or the quotas are too small.

    Notes
    -----
    With quotas, freeing over-quota workers one move at a time can stall. The split
    then restarts from a choice found by a MILP without objective
    (:func:`~harpagon.planning.optimal.find_feasible_points`).

    Time O(M * K * K_main) for the frontiers (M modules, K batch kinds, K_main kinds that
    can lead a module) plus the splitting's O(M^2 * F^2) worst case (F frontier points).
    """
    started = time.perf_counter()
    app = planned_application(app, rate, headroom)
    quotas = hardware_quotas(hardware)
    contexts = module_contexts(app, profiles, hardware, dispatch)

    # 1. Module level: each module's frontier of main + residual configurations.
    frontiers = {
        name: harpagon_frontier(ctx, two_groups=two_groups, dummies=dummies)
        for name, ctx in contexts.items()
    }
    if quotas:
        # Only built when a module has no point within the quotas, for the error message.
        def unlimited(name: str) -> list[FrontierPoint]:
            ctx = module_contexts(app, profiles, hardware, dispatch, quotas=False)[name]
            return harpagon_frontier(ctx, two_groups=two_groups, dummies=dummies)

        require_frontiers(app, frontiers, unlimited, hardware)

    # 2. Application level: split the SLO, then hand out the slack left on each path.
    if split == "even":
        points, budgets = split_evenly(app, frontiers, quotas)
    else:
        points = split_by_efficiency(
            app, frontiers, quotas,
            feasible_start=lambda: find_feasible_points(app, frontiers, quotas),
        )
        points, budgets = reassign_slack(app, points, frontiers, contexts, quotas)

    return assemble_plan(
        app, profiles, hardware, contexts, points, budgets,
        policy=policy,
        started=started,
        lower_bound_cost_per_hour=fluid_lower_bound(app, contexts),
    )
