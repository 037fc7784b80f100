"""Simulate one plan under uniform arrivals for the comparison."""

from __future__ import annotations

from dataclasses import dataclass

from harpagon.evaluation.suites import Workload
from harpagon.model.latency import REL_TOL
from harpagon.model.plan import Plan
from harpagon.simulation import simulate, uniform_arrivals

__all__ = ["SimulationCheck", "simulate_uniform"]


@dataclass(frozen=True)
class SimulationCheck:
    """Whether every simulated request met the SLO, and the worst end-to-end latency (ms)."""

    slo_met: bool
    max_latency_ms: float


def simulate_uniform(plan: Plan, workload: Workload, seconds: float) -> SimulationCheck:
    """Simulate ``plan`` for ``seconds`` of uniform arrivals at the plan's rate.

    Every group runs its own planned dispatch policy, and fan-out is deterministic.

    Raises
    ------
    InvalidPlan
        If the plan breaks the model for the workload's inputs.
    """
    app = workload.app.with_overrides(rate=plan.rate)
    arrivals = uniform_arrivals(plan.rate, seconds)
    run = simulate(plan, app, workload.profiles, workload.hardware, arrivals)
    latency = run.latency_ms
    worst = float(latency.max()) if latency.size else 0.0
    return SimulationCheck(slo_met=worst <= plan.slo_ms * (1 + REL_TOL) + 1e-6, max_latency_ms=worst)
