"""The registry from policy name to planner.

A planner is a callable ``(app, profiles, hardware, *, rate=None, headroom=0.0) -> Plan``.
``harpagon`` and ``optimal`` are registered here; other modules add theirs with
:func:`register` (the baselines in :mod:`harpagon.planning.baselines` do so when imported,
and :func:`get_planner` imports that package before it gives up on a name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from harpagon.errors import ConfigError
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.planning.harpagon import plan_harpagon
from harpagon.planning.optimal import plan_optimal

__all__ = ["Planner", "Policy", "get_planner", "known_policies", "register"]


class Policy(str, Enum):
    """Names of the planning policies."""

    HARPAGON = "harpagon"
    OPTIMAL = "optimal"
    NEXUS = "nexus"
    SCROOGE = "scrooge"
    INFERLINE = "inferline"
    HARPAGON_RR = "harpagon-rr"
    HARPAGON_SINGLE = "harpagon-single"
    HARPAGON_NODUMMY = "harpagon-nodummy"
    HARPAGON_EVEN = "harpagon-even"


class Planner(Protocol):
    """A planning policy."""

    def __call__(
        self,
        app: Application,
        profiles: ProfileSet,
        hardware: HardwareCatalog,
        *,
        rate: float | None = None,
        headroom: float = 0.0,
    ) -> Plan: ...


_PLANNERS: dict[str, Callable[..., Plan]] = {
    Policy.HARPAGON.value: plan_harpagon,
    Policy.OPTIMAL.value: plan_optimal,
}
_BASELINES_MODULE = "harpagon.planning.baselines"


def register(name: str | Policy, planner: Callable[..., Plan], *, replace: bool = False) -> None:
    """Register ``planner`` under the policy ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already registered and ``replace`` is false.
    """
    key = Policy(name).value if name in Policy._value2member_map_ else str(name)
    if key in _PLANNERS and not replace:
        raise ValueError(f"policy {key!r} is already registered; pass replace=True to override it")
    _PLANNERS[key] = planner


def _load_baselines() -> None:
    # Imported on first use, not at module level, because the baselines package imports
    # this module to register itself.
    try:
        importlib.import_module(_BASELINES_MODULE)
    except ModuleNotFoundError as err:
        if err.name != _BASELINES_MODULE:
            raise


def known_policies() -> list[str]:
    """Return the registered policy names, built-in and baseline ones, sorted."""
    _load_baselines()
    return sorted(_PLANNERS)


def get_planner(name: str | Policy) -> Callable[..., Plan]:
    """Return the planner registered as ``name``.

    Raises
    ------
    ConfigError
        If no planner has that name; the message lists the known ones.
    """
    key = name.value if isinstance(name, Policy) else str(name)
    if key not in _PLANNERS:
        _load_baselines()
    try:
        return _PLANNERS[key]
    except KeyError:
        raise ConfigError(
            f"unknown policy {key!r}; known policies: {', '.join(known_policies())}"
        ) from None
