"""What the exact dispatcher bound costs against the first-cut latency formula.

The model in :mod:`harpagon.model.latency` charges a batch-aware group
``shaping + o + d + 1000 b / w`` and requires split slack. The first-cut formula is
``o + d + 1000 (b - 1) / w`` with neither. This evaluation-only variant plans a workload
under both with the same simple planner, so the ratio isolates the formula: one
batch-aware group per module padded to full throughput (``w = n T``), ``n`` from
``ceil(r / T)`` to ``ceil(r / T) + MAX_EXTRA_WORKERS``, and an exact split of the SLO
(the Scrooge program). Its plans under the first-cut formula are not valid in our model;
they only price what the formula would promise.
"""

from __future__ import annotations

from enum import Enum

from harpagon.errors import InfeasiblePlan
from harpagon.evaluation.suites import Workload
from harpagon.model.latency import shaping_delay_ms
from harpagon.planning.baselines._common import min_workers, pareto_front, throughput
from harpagon.planning.baselines.scrooge import ScroogeOption, solve_split
from harpagon.planning.frontier import MAX_EXTRA_WORKERS

__all__ = ["LatencyFormula", "first_cut_cost_ratio", "plan_cost"]


class LatencyFormula(str, Enum):
    """Group latency formula of the variant planner."""

    EXACT = "exact"
    FIRST_CUT = "first_cut"


def _options(workload: Workload, name: str, formula: LatencyFormula) -> list[ScroogeOption]:
    app = workload.app
    module = app.module(name)
    rate = app.module_rate(name)
    profile = workload.profiles[module.profile]
    options = []
    for hw, batch_size, d in profile.configs():
        if hw not in workload.hardware:
            continue
        price = workload.hardware[hw].price_per_hour
        fewest = min_workers(rate, throughput(batch_size, d))
        for workers in range(fewest, fewest + MAX_EXTRA_WORKERS + 1):
            # Full padding: w = n T, so 1000 b / w = d / n.
            if formula is LatencyFormula.EXACT:
                latency = shaping_delay_ms(app.rate, module.rate_factor) + module.overhead_ms
                latency += d + d / workers
            else:
                latency = module.overhead_ms + d + d * (batch_size - 1) / (batch_size * workers)
            options.append(ScroogeOption(hw, batch_size, workers, d, latency, workers * price))
    return pareto_front(options, [o.latency_ms for o in options], [o.cost_per_hour for o in options])


def plan_cost(workload: Workload, formula: LatencyFormula) -> float:
    """Return the variant planner's cost (USD/h) for ``workload`` under ``formula``.

    Raises
    ------
    InfeasiblePlan
        If no choice meets the SLO under that formula.
    """
    app = workload.app
    options = {name: _options(workload, name, formula) for name in app.topological_order}
    quotas = {h.name: h.available for h in workload.hardware if h.available is not None}
    chosen = solve_split(app, options, quotas)
    return sum(option.cost_per_hour for option in chosen.values())


def first_cut_cost_ratio(workload: Workload) -> float | None:
    """Return the exact-bound cost over the first-cut cost, or ``None`` if either is infeasible."""
    try:
        exact = plan_cost(workload, LatencyFormula.EXACT)
        first_cut = plan_cost(workload, LatencyFormula.FIRST_CUT)
    except InfeasiblePlan:
        return None
    return exact / first_cut
