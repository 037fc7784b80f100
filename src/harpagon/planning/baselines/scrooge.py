"""The Scrooge baseline (SoCC 2021): one (hardware, batch size) per module, exact latency split.

Every module runs a single worker group under round-robin dispatch, with no dummy requests,
on any hardware type of the catalog. Its options are the profiled ``(h, b)`` pairs with
``ceil(r / T)`` workers. The planner picks one option per module by an exact mixed-integer
program (HiGHS through :func:`scipy.optimize.milp`) that minimises cost subject to the SLO
on every source-to-sink path of the DAG and to the hardware quotas. Latency in ms, rates
in req/s, cost in USD/h.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from harpagon.errors import InfeasiblePlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch, shaping_delay_ms
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan
from harpagon.planning.baselines._common import (
    elapsed_ms,
    min_workers,
    pareto_front,
    profiled_hardware,
    throughput,
)
from harpagon.planning.inputs import planned_application

__all__ = ["ScroogeOption", "module_options", "plan_scrooge", "solve_split"]

POLICY = "scrooge"


@dataclass(frozen=True)
class ScroogeOption:
    """One way to deploy a module: ``workers`` round-robin workers of ``hardware`` at ``batch_size``."""

    hardware: str
    batch_size: int
    workers: int
    batch_latency_ms: float
    latency_ms: float
    """Module latency: shaping delay plus the group's round-robin worst case."""
    cost_per_hour: float


def module_options(
    app: Application, name: str, profiles: ProfileSet, hardware: HardwareCatalog,
    *, pareto: bool = True,
) -> list[ScroogeOption]:
    """Return the options of module ``name``: the Pareto-optimal ones by rising latency, or all.

    Each profiled ``(h, b)`` gets ``n = ceil(r / T)`` workers (``T = 1000 b / d``) and
    collects only real traffic, so its latency is
    ``shaping + o + d + 1000 n b / r``. Adding workers never helps: under round-robin each
    worker then fills its batch more slowly, so ``ceil(r / T)`` is also the fastest choice.

    Notes
    -----
    O(hardware types x batch sizes) per module.
    """
    module = app.module(name)
    profile = profiles[module.profile]
    rate = app.module_rate(name)
    shaping = shaping_delay_ms(app.rate, module.rate_factor)
    options: list[ScroogeOption] = []
    for hw in profiled_hardware(profile, hardware):
        price = hardware[hw].price_per_hour
        for batch_size, d in sorted(profile.latency_ms[hw].items()):
            workers = min_workers(rate, throughput(batch_size, d))
            latency = shaping + module.overhead_ms + d + 1000.0 * workers * batch_size / rate
            options.append(ScroogeOption(hw, batch_size, workers, d, latency, workers * price))
    if not pareto:
        return options
    return pareto_front(
        options, [o.latency_ms for o in options], [o.cost_per_hour for o in options]
    )


def solve_split(
    app: Application,
    options: dict[str, list[ScroogeOption]],
    quotas: dict[str, int] | None = None,
) -> dict[str, ScroogeOption]:
    """Pick one option per module at minimum total cost with every path within the SLO.

    The program has a binary ``x[m, k]`` per option and a start time ``s[m] >= 0`` per
    module: ``sum_k x[m, k] = 1``; ``s[v] >= s[u] + sum_k lat[u, k] x[u, k]`` per edge;
    ``s[m] + sum_k lat[m, k] x[m, k] <= SLO`` per sink; and per quota ``sum workers <= A_h``.

    Raises
    ------
    InfeasiblePlan
        If no choice of options meets the SLO and the quotas.
    """
    names = app.topological_order
    index: list[tuple[str, int]] = [(m, k) for m in names for k in range(len(options[m]))]
    num_x = len(index)
    start_column = {m: num_x + i for i, m in enumerate(names)}
    num_vars = num_x + len(names)
    cost = np.zeros(num_vars)
    latency_row: dict[str, np.ndarray] = {m: np.zeros(num_vars) for m in names}
    for column, (m, k) in enumerate(index):
        cost[column] = options[m][k].cost_per_hour
        latency_row[m][column] = options[m][k].latency_ms

    rows: list[np.ndarray] = []
    lower: list[float] = []
    upper: list[float] = []
    # 1. Exactly one option per module.
    for m in names:
        row = np.zeros(num_vars)
        for column, (owner, _) in enumerate(index):
            if owner == m:
                row[column] = 1.0
        rows.append(row)
        lower.append(1.0)
        upper.append(1.0)

    # 2. Precedence: a module starts after each predecessor ends; sinks end by the SLO.
    for source, target in app.edges:
        row = latency_row[source].copy()
        row[start_column[source]] += 1.0
        row[start_column[target]] -= 1.0
        rows.append(row)
        lower.append(-np.inf)
        upper.append(0.0)
    for m in app.sinks:
        row = latency_row[m].copy()
        row[start_column[m]] += 1.0
        rows.append(row)
        lower.append(-np.inf)
        upper.append(app.slo_ms)

    # 3. Hardware quotas.
    for hw, available in (quotas or {}).items():
        row = np.zeros(num_vars)
        for column, (m, k) in enumerate(index):
            if options[m][k].hardware == hw:
                row[column] = options[m][k].workers
        if row.any():
            rows.append(row)
            lower.append(-np.inf)
            upper.append(float(available))

    integrality = np.concatenate([np.ones(num_x), np.zeros(len(names))])
    bounds = Bounds(
        np.zeros(num_vars),
        np.concatenate([np.ones(num_x), np.full(len(names), app.slo_ms)]),
    )
    result = milp(
        cost, constraints=LinearConstraint(np.array(rows), lower, upper),
        integrality=integrality, bounds=bounds,
    )
    if result.x is None:
        raise InfeasiblePlan(
            f"scrooge: no single (hardware, batch size) per module meets the SLO of "
            f"{app.slo_ms:g} ms for {app.name!r} at {app.rate:g} req/s ({result.message})"
        )
    chosen: dict[str, ScroogeOption] = {}
    for column, (m, k) in enumerate(index):
        if result.x[column] > 0.5:
            chosen[m] = options[m][k]
    return chosen


def plan_scrooge(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    *,
    rate: float | None = None,
    headroom: float = 0.0,
) -> Plan:
    """Plan ``app`` the Scrooge way: single round-robin group per module, exact split.

    Parameters
    ----------
    app, profiles, hardware
        The application, its models' profiles and the hardware catalog.
    rate : float, optional
        Application rate in req/s to plan for (default ``app.rate``).
    headroom : float
        Plan for ``rate * (1 + headroom)``; the plan's ``rate`` is that planned rate.

    Raises
    ------
    InfeasiblePlan
        If no option set meets the SLO, or a module has no profiled hardware in the catalog.

    Notes
    -----
    Options are O(hardware types x batch sizes) per module; the program has one binary per
    Pareto-optimal option. HiGHS solves the sizes here (up to 10 modules) in milliseconds.
    """
    start = time.perf_counter()
    app = planned_application(app, rate, headroom)

    options: dict[str, list[ScroogeOption]] = {}
    for name in app.topological_order:
        options[name] = module_options(app, name, profiles, hardware)
        if not options[name]:
            profile = profiles[app.module(name).profile]
            raise InfeasiblePlan(
                f"scrooge: module {name!r} (profile {profile.model!r}) is not profiled on any "
                f"hardware type of the catalog: it lists "
                f"{', '.join(profile.hardware_names()) or 'none'}, and {hardware.path} offers "
                f"only {', '.join(hardware.names()) or 'nothing'}"
            )
    quotas = {h.name: h.available for h in hardware if h.available is not None}
    chosen = solve_split(app, options, quotas)

    modules = []
    for name in app.topological_order:
        option = chosen[name]
        module = app.module(name)
        group = make_group(
            hardware=option.hardware, batch_size=option.batch_size, workers=option.workers,
            rate=app.module_rate(name), dummy_rate=0.0, dispatch=Dispatch.ROUND_ROBIN,
            overhead_ms=module.overhead_ms, batch_latency_ms=option.batch_latency_ms,
        )
        modules.append(
            make_module_plan(app, name, [group], hardware, budget_ms=option.latency_ms)
        )
    return make_plan(app, modules, hardware, policy=POLICY, planning_ms=elapsed_ms(start))
