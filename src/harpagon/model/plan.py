"""Plans: the deployment a planner returns, and its JSON form.

A plan lists, per module, its worker groups (hardware, batch size, workers, real and dummy
rate in req/s, dispatch policy, latency in ms) and its budget; plus packed machines shared
by several modules (Nexus-style). Readers ignore unknown JSON keys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harpagon.errors import ConfigError

__all__ = ["Group", "ModulePlan", "SharedMember", "SharedMachine", "Plan", "load_plan"]


@dataclass(frozen=True)
class Group:
    """A worker group: ``workers`` workers of one hardware type running one batch size."""

    hardware: str
    batch_size: int
    workers: int
    rate: float
    """Real request rate routed to the group, req/s."""
    dummy_rate: float
    """Padding rate, req/s: the group collects ``rate + dummy_rate`` requests per second."""
    dispatch: str
    latency_ms: float
    """Worst-case latency of the group, shaping excluded."""

    @property
    def collection_rate(self) -> float:
        """Real plus dummy rate w_g, req/s."""
        return self.rate + self.dummy_rate


@dataclass(frozen=True)
class SharedMember:
    """A module's residual traffic placed on a shared machine."""

    module: str
    batch_size: int
    rate: float


@dataclass(frozen=True)
class SharedMachine:
    """One machine that runs several modules' batches in a duty cycle (squishy bin packing)."""

    hardware: str
    duty_cycle_ms: float
    members: tuple[SharedMember, ...]


@dataclass(frozen=True)
class ModulePlan:
    """The deployment of one module."""

    name: str
    profile: str
    rate: float
    budget_ms: float
    latency_ms: float
    cost_per_hour: float
    groups: tuple[Group, ...]
    shaping_ms: float = 0.0
    """Bound on the rate shaper's delay, part of ``latency_ms``."""


@dataclass(frozen=True)
class Plan:
    """A full deployment with its cost (USD/h) and end-to-end latency (ms)."""

    app: str
    policy: str
    rate: float
    slo_ms: float
    cost_per_hour: float
    latency_ms: float
    planning_ms: float
    modules: tuple[ModulePlan, ...]
    shared_machines: tuple[SharedMachine, ...] = ()
    lower_bound_cost_per_hour: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Policy-specific details kept in the JSON (for example the budgets' search trace)."""

    def module(self, name: str) -> ModulePlan:
        """Return the plan of module ``name``."""
        for module in self.modules:
            if module.name == name:
                return module
        raise KeyError(f"plan for {self.app!r} has no module {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the plan in its JSON shape."""
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return data

    def to_json(self, indent: int | None = 1) -> str:
        """Return the plan as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> None:
        """Write the plan as JSON to ``path``."""
        Path(path).write_text(self.to_json() + "\n")

    def with_updates(self, **changes: Any) -> Plan:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "<memory>") -> Plan:
        """Build a plan from its JSON shape; unknown keys are ignored.

        Raises
        ------
        ConfigError
            If a required key is missing or has the wrong type.
        """
        try:
            modules = tuple(
                ModulePlan(
                    name=str(m["name"]),
                    profile=str(m["profile"]),
                    rate=float(m["rate"]),
                    budget_ms=float(m["budget_ms"]),
                    latency_ms=float(m["latency_ms"]),
                    cost_per_hour=float(m["cost_per_hour"]),
                    shaping_ms=float(m.get("shaping_ms", 0.0)),
                    groups=tuple(
                        Group(
                            hardware=str(g["hardware"]),
                            batch_size=int(g["batch_size"]),
                            workers=int(g["workers"]),
                            rate=float(g["rate"]),
                            dummy_rate=float(g.get("dummy_rate", 0.0)),
                            dispatch=str(g.get("dispatch", "batch_aware")),
                            latency_ms=float(g["latency_ms"]),
                        )
                        for g in m["groups"]
                    ),
                )
                for m in data["modules"]
            )
            shared = tuple(
                SharedMachine(
                    hardware=str(s["hardware"]),
                    duty_cycle_ms=float(s["duty_cycle_ms"]),
                    members=tuple(
                        SharedMember(str(e["module"]), int(e["batch_size"]), float(e["rate"]))
                        for e in s["members"]
                    ),
                )
                for s in data.get("shared_machines", [])
            )
            bound = data.get("lower_bound_cost_per_hour")
            return cls(
                app=str(data["app"]),
                policy=str(data["policy"]),
                rate=float(data["rate"]),
                slo_ms=float(data["slo_ms"]),
                cost_per_hour=float(data["cost_per_hour"]),
                latency_ms=float(data["latency_ms"]),
                planning_ms=float(data.get("planning_ms", 0.0)),
                modules=modules,
                shared_machines=shared,
                lower_bound_cost_per_hour=None if bound is None else float(bound),
            )
        except KeyError as err:
            raise ConfigError(f"{path}: plan is missing the key {err.args[0]!r}") from err
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{path}: plan has a value of the wrong type: {err}") from err


def load_plan(path: str | Path) -> Plan:
    """Read a plan JSON file.

    Raises
    ------
    ConfigError
        If the file is missing, is not JSON, or lacks a required key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: plan file not found") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a plan must be a JSON object, got {type(data).__name__}")
    return Plan.from_dict(data, str(path))
