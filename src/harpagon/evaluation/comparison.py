"""Run planners side by side on workload suites and summarise cost, validity and SLO attainment.

For each workload and policy: plan, validate the plan under its own dispatch policy, and
simulate it under uniform arrivals for a few seconds of virtual time. A policy that raises
``InfeasiblePlan``, or whose plan fails validation, counts as invalid on that workload. A
plan that misses its SLO in simulation counts as missing it. Costs in USD/h, times in ms.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from harpagon.errors import ConfigError, InfeasiblePlan, InvalidPlan
from harpagon.evaluation.first_cut import first_cut_cost_ratio
from harpagon.evaluation.simulate import simulate_uniform
from harpagon.evaluation.suites import Workload
from harpagon.model.validate import validate_plan
from harpagon.planning.registry import get_planner

__all__ = [
    "DEFAULT_POLICIES",
    "OPTIMAL_TOLERANCE",
    "Outcome",
    "run_comparison",
    "run_workload",
    "summarize",
]

REFERENCE = "harpagon"
DEFAULT_POLICIES = (
    "harpagon", "optimal", "nexus", "scrooge", "inferline",
    "harpagon-rr", "harpagon-single", "harpagon-nodummy", "harpagon-even",
)
OPTIMAL_TOLERANCE = 0.001
"""Relative cost gap within which harpagon counts as optimal (0.1%)."""


@dataclass(frozen=True)
class Outcome:
    """The result of one policy on one workload."""

    workload: str
    suite: str
    app: str
    rate: float
    slo_ms: float
    policy: str
    valid: bool
    cost_per_hour: float | None
    """``None`` when the policy found no valid plan."""
    planning_ms: float | None
    slo_met: bool | None
    """Whether every simulated request met the SLO; ``None`` when not simulated."""
    max_latency_ms: float | None
    lower_bound_cost_per_hour: float | None
    """The fluid bound reported by the planner, when it reports one."""
    error: str | None
    first_cut_ratio: float | None = None
    """Exact-bound cost over first-cut cost (reference policy only, standard suite)."""


def _plan_outcome(workload: Workload, policy: str, simulate_s: float) -> Outcome:
    app = workload.app
    base = dict(
        workload=workload.name, suite=workload.suite, app=app.name, rate=app.rate,
        slo_ms=app.slo_ms, policy=policy,
    )
    started = time.perf_counter()
    try:
        plan = get_planner(policy)(app, workload.profiles, workload.hardware)
        validate_plan(plan, app, workload.profiles, workload.hardware)
    except (InfeasiblePlan, InvalidPlan) as err:
        elapsed = (time.perf_counter() - started) * 1000.0
        return Outcome(
            **base, valid=False, cost_per_hour=None, planning_ms=elapsed, slo_met=None,
            max_latency_ms=None, lower_bound_cost_per_hour=None,
            error=f"{type(err).__name__}: {str(err).splitlines()[0]}",
        )
    slo_met: bool | None = None
    max_latency_ms: float | None = None
    if simulate_s > 0:
        result = simulate_uniform(plan, workload, simulate_s)
        slo_met, max_latency_ms = result.slo_met, result.max_latency_ms
    return Outcome(
        **base, valid=True, cost_per_hour=plan.cost_per_hour, planning_ms=plan.planning_ms,
        slo_met=slo_met, max_latency_ms=max_latency_ms,
        lower_bound_cost_per_hour=plan.lower_bound_cost_per_hour, error=None,
    )


def run_workload(
    workload: Workload, policies: Sequence[str], simulate_s: float = 2.0, first_cut: bool = True
) -> list[Outcome]:
    """Return one outcome per policy on ``workload``.

    ``simulate_s`` is the simulated traffic per plan in seconds (0 skips simulation). With
    ``first_cut``, the reference policy's outcome on a standard-suite workload also carries
    the cost ratio of the exact latency bound to the first-cut formula.
    """
    outcomes = []
    for policy in policies:
        outcome = _plan_outcome(workload, policy, simulate_s)
        if first_cut and policy == REFERENCE and workload.suite == "standard":
            outcome = Outcome(**{**asdict(outcome), "first_cut_ratio": first_cut_cost_ratio(workload)})
        outcomes.append(outcome)
    return outcomes


def _run_one(args: tuple[Workload, tuple[str, ...], float]) -> list[Outcome]:
    workload, policies, simulate_s = args
    return run_workload(workload, policies, simulate_s)


def run_comparison(
    workloads: Sequence[Workload],
    policies: Sequence[str] = DEFAULT_POLICIES,
    *,
    simulate_s: float = 2.0,
    workers: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Run every policy on every workload; return the outcomes in workload order.

    Parameters
    ----------
    workloads : sequence of Workload
    policies : sequence of str
        Registered policy names; the first call resolves each, so an unknown name raises
        before any work starts.
    simulate_s : float
        Seconds of simulated uniform traffic per plan (0 skips simulation).
    workers : int
        Worker processes; 1 runs in this process.
    on_done : callable, optional
        Called with the number of workloads just finished, for a progress bar.

    Raises
    ------
    ConfigError
        If a policy name is unknown or ``workers < 1``.
    """
    for policy in policies:
        get_planner(policy)
    if workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers}")
    jobs = [(w, tuple(policies), simulate_s) for w in workloads]
    results: list[Outcome] = []
    if workers == 1:
        for job in jobs:
            results.extend(_run_one(job))
            if on_done:
                on_done(1)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for outcomes in pool.map(_run_one, jobs, chunksize=4):
            results.extend(outcomes)
            if on_done:
                on_done(1)
    return results


def _percentile(values: list[float], q: float) -> float:
    # Nearest-rank percentile; NaN for no values.
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def _geomean(values: list[float]) -> float:
    if not values:
        return math.nan
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summarize(outcomes: Sequence[Outcome], policies: Sequence[str]) -> dict[str, Any]:
    """Return the comparison figures as a JSON-ready dict.

    Per policy, on the workloads where it and harpagon both have a valid plan: the cost
    ratio to harpagon (median, min, max, geometric mean) and the share where the policy
    is cheaper. Also per policy, over all workloads: the share with a valid plan, the share
    whose plan met the SLO in simulation, and planning time (median and p99, ms). Overall:
    the share of workloads where harpagon's cost is within 0.1% of optimal (among those
    where both are valid), and both policies' costs over the fluid bound.
    """
    by_workload: dict[str, dict[str, Outcome]] = {}
    for outcome in outcomes:
        by_workload.setdefault(outcome.workload, {})[outcome.policy] = outcome
    num_workloads = len(by_workload)

    summary: dict[str, Any] = {"workloads": num_workloads, "policies": {}}
    for policy in policies:
        ratios, cheaper = [], 0
        valid = met = simulated = 0
        planning = []
        for results in by_workload.values():
            mine = results.get(policy)
            if mine is None:
                continue
            valid += mine.valid
            if mine.slo_met is not None:
                simulated += 1
                met += mine.slo_met
            if mine.planning_ms is not None:
                planning.append(mine.planning_ms)
            reference = results.get(REFERENCE)
            if mine.valid and reference is not None and reference.valid:
                ratio = mine.cost_per_hour / reference.cost_per_hour
                ratios.append(ratio)
                cheaper += ratio < 1.0 - 1e-9
        summary["policies"][policy] = {
            "cost_ratio_median": _median(ratios),
            "cost_ratio_min": min(ratios, default=math.nan),
            "cost_ratio_max": max(ratios, default=math.nan),
            "cost_ratio_geomean": _geomean(ratios),
            "cheaper_share": cheaper / len(ratios) if ratios else math.nan,
            "compared": len(ratios),
            "valid_share": valid / num_workloads if num_workloads else math.nan,
            "slo_met_share": met / num_workloads if simulated else math.nan,
            "simulated": simulated,
            "planning_ms_median": _median(planning),
            "planning_ms_p99": _percentile(planning, 99),
        }

    # Harpagon against optimal and the fluid bound.
    optimal_hits, both = 0, 0
    over_bound: dict[str, list[float]] = {REFERENCE: [], "optimal": []}
    for results in by_workload.values():
        ours, best = results.get(REFERENCE), results.get("optimal")
        if ours and best and ours.valid and best.valid:
            both += 1
            optimal_hits += ours.cost_per_hour <= best.cost_per_hour * (1 + OPTIMAL_TOLERANCE)
        for name in over_bound:
            outcome = results.get(name)
            bound = outcome.lower_bound_cost_per_hour if outcome else None
            if outcome and outcome.valid and bound and math.isfinite(bound) and bound > 0:
                over_bound[name].append(outcome.cost_per_hour / bound)
    summary["harpagon_optimal_share"] = optimal_hits / both if both else math.nan
    summary["harpagon_optimal_compared"] = both
    summary["over_fluid_bound_median"] = {k: _median(v) for k, v in over_bound.items()}
    summary["over_fluid_bound_max"] = {k: max(v, default=math.nan) for k, v in over_bound.items()}

    ratios = [o.first_cut_ratio for o in outcomes if o.first_cut_ratio is not None]
    summary["first_cut"] = {
        "workloads": len(ratios),
        "cost_ratio_median": _median(ratios),
        "cost_ratio_max": max(ratios, default=math.nan),
        "cost_ratio_mean": statistics.fmean(ratios) if ratios else math.nan,
    }
    return summary
