"""The InferLine baseline (SoCC 2020): a central queue per module and a greedy cost descent.

Every module runs one worker group fed by a central queue, modelled as batch-aware dispatch
without dummy requests (``latency = shaping + o + d + 1000 b / r``). The planner starts each
module on its fastest hardware at its smallest batch size with as many workers as the rate
needs. Then it repeatedly applies the single action that lowers the plan's cost most while
every path stays within the SLO:

- **IncreaseBatch**: move to the next larger profiled batch size at which fewer workers carry
  the rate (profiled sizes are sparse, so a one-size step often frees no worker and would end
  the descent early);
- **RemoveReplica**: drop one worker when the rest still carry the rate;
- **DowngradeHW**: move to the next cheaper hardware type on which the model is profiled,
  keeping the batch size when it is profiled there (else the largest smaller one), with as
  many workers as the rate needs.

It stops when no action lowers the cost. Latency in ms, rates in req/s, cost in USD/h.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from harpagon.errors import InfeasiblePlan
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import REL_TOL, Dispatch, shaping_delay_ms
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan
from harpagon.planning.baselines._common import (
    elapsed_ms,
    min_workers,
    profiled_hardware,
    throughput,
)
from harpagon.planning.inputs import planned_application

__all__ = ["InferLineConfig", "plan_inferline"]

POLICY = "inferline"


@dataclass(frozen=True)
class InferLineConfig:
    """The single group of one module: ``workers`` workers of ``hardware`` at ``batch_size``."""

    hardware: str
    batch_size: int
    workers: int


class _Greedy:
    """State of the greedy descent: one config per module and the figures derived from it."""

    def __init__(
        self, app: Application, profiles: ProfileSet, hardware: HardwareCatalog
    ) -> None:
        self.app = app
        self.profiles = profiles
        self.hardware = hardware
        self.steps: list[str] = []

    def batch_latency_ms(self, name: str, config: InferLineConfig) -> float:
        profile = self.profiles[self.app.module(name).profile]
        return profile.batch_latency_ms(config.hardware, config.batch_size)

    def workers_needed(self, name: str, hw: str, batch_size: int) -> int:
        profile = self.profiles[self.app.module(name).profile]
        d = profile.batch_latency_ms(hw, batch_size)
        return min_workers(self.app.module_rate(name), throughput(batch_size, d))

    def module_latency_ms(self, name: str, config: InferLineConfig) -> float:
        module = self.app.module(name)
        rate = self.app.module_rate(name)
        shaping = shaping_delay_ms(self.app.rate, module.rate_factor)
        d = self.batch_latency_ms(name, config)
        return shaping + module.overhead_ms + d + 1000.0 * config.batch_size / rate

    def cost(self, configs: dict[str, InferLineConfig]) -> float:
        return sum(c.workers * self.hardware[c.hardware].price_per_hour for c in configs.values())

    def is_valid(self, configs: dict[str, InferLineConfig]) -> bool:
        latency, _ = self.app.critical_path(
            {name: self.module_latency_ms(name, c) for name, c in configs.items()}
        )
        if latency > self.app.slo_ms * (1 + REL_TOL):
            return False
        for hw in self.hardware:
            if hw.available is not None:
                used = sum(c.workers for c in configs.values() if c.hardware == hw.name)
                if used > hw.available:
                    return False
        return all(
            self.workers_capacity(name, c) >= self.app.module_rate(name) * (1 - REL_TOL)
            for name, c in configs.items()
        )

    def workers_capacity(self, name: str, config: InferLineConfig) -> float:
        d = self.batch_latency_ms(name, config)
        return config.workers * throughput(config.batch_size, d)

    def initial(self) -> dict[str, InferLineConfig]:
        """Return each module on its fastest hardware at its smallest batch size."""
        configs = {}
        for name in self.app.topological_order:
            profile = self.profiles[self.app.module(name).profile]
            candidates = profiled_hardware(profile, self.hardware)
            if not candidates:
                raise InfeasiblePlan(
                    f"inferline: module {name!r} (profile {profile.model!r}) is not profiled "
                    f"on any hardware type of the catalog: it lists "
                    f"{', '.join(profile.hardware_names()) or 'none'}, and {self.hardware.path} "
                    f"offers only {', '.join(self.hardware.names()) or 'nothing'}"
                )
            hw = min(candidates, key=lambda h: (min(profile.latency_ms[h].items())[1], h))
            batch_size = min(profile.latency_ms[hw])
            configs[name] = InferLineConfig(hw, batch_size, self.workers_needed(name, hw, batch_size))
        return configs

    def actions(self, name: str, config: InferLineConfig) -> list[tuple[str, InferLineConfig]]:
        """Return the (label, new config) of every action applicable to module ``name``."""
        profile = self.profiles[self.app.module(name).profile]
        moves: list[tuple[str, InferLineConfig]] = []

        # IncreaseBatch: the next larger size that frees at least one worker.
        for batch_size in sorted(profile.latency_ms[config.hardware]):
            if batch_size <= config.batch_size:
                continue
            workers = self.workers_needed(name, config.hardware, batch_size)
            if workers < config.workers:
                label = f"IncreaseBatch {name}: batch {config.batch_size} -> {batch_size}"
                moves.append((label, replace(config, batch_size=batch_size, workers=workers)))
                break

        # RemoveReplica: one worker fewer.
        if config.workers > 1:
            fewer = replace(config, workers=config.workers - 1)
            if self.workers_capacity(name, fewer) >= self.app.module_rate(name) * (1 - REL_TOL):
                label = f"RemoveReplica {name}: workers {config.workers} -> {fewer.workers}"
                moves.append((label, fewer))

        # DowngradeHW: the next cheaper profiled hardware type.
        price = self.hardware[config.hardware].price_per_hour
        cheaper = [
            h for h in profiled_hardware(profile, self.hardware)
            if self.hardware[h].price_per_hour < price
        ]
        if cheaper:
            hw = max(cheaper, key=lambda h: (self.hardware[h].price_per_hour, h))
            sizes = sorted(profile.latency_ms[hw])
            smaller = [b for b in sizes if b <= config.batch_size]
            batch_size = smaller[-1] if smaller else sizes[0]
            workers = self.workers_needed(name, hw, batch_size)
            label = f"DowngradeHW {name}: {config.hardware} -> {hw} at batch {batch_size}"
            moves.append((label, InferLineConfig(hw, batch_size, workers)))
        return moves

    def run(self) -> dict[str, InferLineConfig]:
        """Return the configs where no action lowers the cost; record each step taken."""
        configs = self.initial()
        if not self.is_valid(configs):
            raise InfeasiblePlan(
                f"inferline: even the fastest hardware at the smallest batch size misses the "
                f"SLO of {self.app.slo_ms:g} ms (or the quotas) for {self.app.name!r} at "
                f"{self.app.rate:g} req/s"
            )
        cost = self.cost(configs)
        while True:
            best: tuple[float, str, dict[str, InferLineConfig]] | None = None
            for name in self.app.topological_order:
                for label, config in self.actions(name, configs[name]):
                    candidate = {**configs, name: config}
                    saving = cost - self.cost(candidate)
                    if saving <= 1e-12 or not self.is_valid(candidate):
                        continue
                    if best is None or saving > best[0] + 1e-12:
                        best = (saving, label, candidate)
            if best is None:
                return configs
            _, label, configs = best
            cost = self.cost(configs)
            self.steps.append(label)


def plan_inferline(
    app: Application,
    profiles: ProfileSet,
    hardware: HardwareCatalog,
    *,
    rate: float | None = None,
    headroom: float = 0.0,
) -> Plan:
    """Plan ``app`` the InferLine way: single batch-aware group per module, greedy descent.

    Parameters
    ----------
    app, profiles, hardware
        The application, its models' profiles and the hardware catalog.
    rate : float, optional
        Application rate in req/s to plan for (default ``app.rate``).
    headroom : float
        Plan for ``rate * (1 + headroom)``; the plan's ``rate`` is that planned rate.

    Returns
    -------
    Plan
        With ``extra["steps"]``: the actions applied, in order.

    Raises
    ------
    InfeasiblePlan
        If the starting point already misses the SLO or a quota.

    Notes
    -----
    Each round tries O(modules) actions and checks each in O(modules + edges). A module's
    hardware only gets cheaper, and on one type its batch size only grows, so there are at
    most O(modules x hardware types x batch sizes) rounds besides worker removals.
    """
    start = time.perf_counter()
    app = planned_application(app, rate, headroom)
    greedy = _Greedy(app, profiles, hardware)
    configs = greedy.run()

    modules = []
    for name in app.topological_order:
        config = configs[name]
        module = app.module(name)
        group = make_group(
            hardware=config.hardware, batch_size=config.batch_size, workers=config.workers,
            rate=app.module_rate(name), dummy_rate=0.0, dispatch=Dispatch.BATCH_AWARE,
            overhead_ms=module.overhead_ms,
            batch_latency_ms=greedy.batch_latency_ms(name, config),
        )
        modules.append(
            make_module_plan(
                app, name, [group], hardware,
                budget_ms=greedy.module_latency_ms(name, config),
            )
        )
    plan = make_plan(app, modules, hardware, policy=POLICY, planning_ms=elapsed_ms(start))
    return plan.with_updates(extra={"steps": list(greedy.steps)})
