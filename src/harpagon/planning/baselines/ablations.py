"""Ablations of the ``harpagon`` planner, each with one of its ideas switched off.

- ``harpagon-rr``: round-robin dispatch instead of batch-aware dispatch;
- ``harpagon-single``: one worker group per module (no residual group);
- ``harpagon-nodummy``: no dummy requests, so every group collects its real rate only;
- ``harpagon-even``: the SLO split evenly along each module's longest path instead of by
  latency-cost efficiency.

Each is :func:`~harpagon.planning.harpagon.plan_harpagon` with one keyword option changed,
so any difference in cost comes from that idea alone.
"""

from __future__ import annotations

from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import Dispatch
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.planning.harpagon import plan_harpagon

__all__ = [
    "plan_harpagon_even",
    "plan_harpagon_nodummy",
    "plan_harpagon_rr",
    "plan_harpagon_single",
]


def plan_harpagon_rr(
    app: Application, profiles: ProfileSet, hardware: HardwareCatalog,
    *, rate: float | None = None, headroom: float = 0.0,
) -> Plan:
    """Plan with Harpagon, but every group under round-robin dispatch."""
    return plan_harpagon(
        app, profiles, hardware, rate=rate, headroom=headroom,
        dispatch=Dispatch.ROUND_ROBIN, policy="harpagon-rr",
    )


def plan_harpagon_single(
    app: Application, profiles: ProfileSet, hardware: HardwareCatalog,
    *, rate: float | None = None, headroom: float = 0.0,
) -> Plan:
    """Plan with Harpagon, but one worker group per module."""
    return plan_harpagon(
        app, profiles, hardware, rate=rate, headroom=headroom,
        two_groups=False, policy="harpagon-single",
    )


def plan_harpagon_nodummy(
    app: Application, profiles: ProfileSet, hardware: HardwareCatalog,
    *, rate: float | None = None, headroom: float = 0.0,
) -> Plan:
    """Plan with Harpagon, but without dummy requests (each group's ``w_g = r_g``)."""
    return plan_harpagon(
        app, profiles, hardware, rate=rate, headroom=headroom,
        dummies=False, policy="harpagon-nodummy",
    )


def plan_harpagon_even(
    app: Application, profiles: ProfileSet, hardware: HardwareCatalog,
    *, rate: float | None = None, headroom: float = 0.0,
) -> Plan:
    """Plan with Harpagon, but with the SLO split evenly along each longest path."""
    return plan_harpagon(
        app, profiles, hardware, rate=rate, headroom=headroom,
        split="even", policy="harpagon-even",
    )
