"""Baseline planners re-implemented over the shared model: Nexus, Scrooge, InferLine, ablations.

Each returns a :class:`~harpagon.model.plan.Plan` built with the model's plan builder, so it
is costed and validated by the same code as every other planner.
"""

from harpagon.planning.baselines.inferline import plan_inferline
from harpagon.planning.baselines.nexus import plan_nexus
from harpagon.planning.baselines.scrooge import plan_scrooge

__all__ = ["plan_inferline", "plan_nexus", "plan_scrooge"]
