"""Planners: module frontiers, latency splitting, the harpagon and optimal planners, baselines.

Look a planner up by policy name with :func:`harpagon.planning.registry.get_planner`.
Nothing is imported here, so ``import harpagon.planning`` stays cheap (the optimal planner
pulls in scipy).
"""
