"""Baseline planners re-implemented over the shared model: Nexus, Scrooge, InferLine, ablations.

Each returns a :class:`~harpagon.model.plan.Plan` built with the model's plan builder, so it
is costed and validated by the same code as every other planner. Importing this package
registers every policy here with :mod:`harpagon.planning.registry`.
"""

from harpagon.planning.baselines.ablations import (
    plan_harpagon_even,
    plan_harpagon_nodummy,
    plan_harpagon_rr,
    plan_harpagon_single,
)
from harpagon.planning.baselines.inferline import plan_inferline
from harpagon.planning.baselines.nexus import plan_nexus
from harpagon.planning.baselines.scrooge import plan_scrooge
from harpagon.planning.registry import Policy, register

__all__ = [
    "plan_harpagon_even",
    "plan_harpagon_nodummy",
    "plan_harpagon_rr",
    "plan_harpagon_single",
    "plan_inferline",
    "plan_nexus",
    "plan_scrooge",
]

register(Policy.NEXUS, plan_nexus)
register(Policy.SCROOGE, plan_scrooge)
register(Policy.INFERLINE, plan_inferline)
register(Policy.HARPAGON_RR, plan_harpagon_rr)
register(Policy.HARPAGON_SINGLE, plan_harpagon_single)
register(Policy.HARPAGON_NODUMMY, plan_harpagon_nodummy)
register(Policy.HARPAGON_EVEN, plan_harpagon_even)
