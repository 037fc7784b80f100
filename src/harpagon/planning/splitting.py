"""Application-level planning: split the SLO into module budgets over any DAG.

Units: latency and budgets in ms, costs in USD/h.

Every module has a frontier (sorted by latency) from :mod:`harpagon.planning.frontier`.
:func:`split_by_efficiency` chooses one point per module by latency-cost efficiency;
:func:`split_evenly` is the even-split ablation; :func:`reassign_slack` hands the slack
left on each path to the modules that gain from it and returns the budgets.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harpagon.errors import InfeasiblePlan
from harpagon.model.application import Application
from harpagon.planning.frontier import FrontierPoint, ModuleContext, realize_groups

__all__ = [
    "Paths",
    "check_quotas",
    "reassign_slack",
    "slo_error",
    "split_by_efficiency",
    "split_evenly",
]

_TOL = 1e-9


def fits(total_ms: float, limit_ms: float) -> bool:
    """Return whether ``total_ms`` is within ``limit_ms`` up to rounding."""
    return total_ms <= limit_ms + _TOL * max(1.0, abs(limit_ms))


@dataclass(frozen=True)
class Paths:
    """Predecessor and successor lists of an application, in topological order."""

    order: tuple[str, ...]
    predecessors: Mapping[str, tuple[str, ...]]
    successors: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, app: Application) -> Paths:
        """Return the graph of ``app``."""
        order = tuple(app.topological_order)
        return cls(
            order,
            {m: tuple(app.predecessors(m)) for m in order},
            {m: tuple(app.successors(m)) for m in order},
        )

    def through_ms(self, latency_ms: Mapping[str, float]) -> dict[str, float]:
        """Return, per module, the longest source-to-sink latency of a path through it."""
        before: dict[str, float] = {}
        for name in self.order:
            longest = 0.0
            for predecessor in self.predecessors[name]:
                if before[predecessor] > longest:
                    longest = before[predecessor]
            before[name] = longest + latency_ms[name]
        after: dict[str, float] = {}
        for name in reversed(self.order):
            longest = 0.0
            for successor in self.successors[name]:
                if after[successor] > longest:
                    longest = after[successor]
            after[name] = longest + latency_ms[name]
        return {name: before[name] + after[name] - latency_ms[name] for name in self.order}

    def critical_path(self, latency_ms: Mapping[str, float]) -> tuple[float, list[str]]:
        """Return the longest source-to-sink latency and its path."""
        best: dict[str, tuple[float, list[str]]] = {}
        for name in self.order:
            total, path = max(
                (best[p] for p in self.predecessors[name]), key=lambda item: item[0], default=(0.0, [])
            )
            best[name] = (total + latency_ms[name], path + [name])
        sinks = [name for name in self.order if not self.successors[name]]
        return max((best[s] for s in sinks), key=lambda item: item[0])

    def longest_chain(self) -> dict[str, int]:
        """Return, per module, the most modules on one path through it."""
        return {name: round(v) for name, v in self.through_ms({m: 1.0 for m in self.order}).items()}


def slo_error(app: Application, frontiers: Mapping[str, list[FrontierPoint]]) -> InfeasiblePlan:
    """Return the error for an SLO below the fastest possible path."""
    fastest = {name: min(p.latency_ms for p in points) for name, points in frontiers.items()}
    total, path = Paths.of(app).critical_path(fastest)
    minimums = ", ".join(f"{name} {fastest[name]:.4g} ms" for name in path)
    return InfeasiblePlan(
        f"application {app.name!r}: the SLO of {app.slo_ms:.6g} ms is below the fastest "
        f"possible latency {total:.6g} ms of path {' -> '.join(path)} at {app.rate:.6g} req/s "
        f"(lowest latency per module: {minimums}); raise slo_ms, lower the rate or add "
        "faster hardware"
    )


def check_quotas(
    usage: Mapping[str, int], quotas: Mapping[str, int], what: str
) -> InfeasiblePlan | None:
    """Return an error naming every hardware type that ``usage`` rents beyond its quota."""
    over = [
        f"{name}: {used} workers needed, quota {quotas[name]}"
        for name, used in sorted(usage.items())
        if name in quotas and used > quotas[name]
    ]
    if not over:
        return None
    return InfeasiblePlan(
        f"{what} exceeds the hardware quotas ({'; '.join(over)}); raise 'available' in the "
        "hardware catalog, lower the rate or relax the SLO"
    )


class _State:
    """Chosen point per module with the path and quota bookkeeping for moves."""

    def __init__(
        self, app: Application, frontiers: Mapping[str, list[FrontierPoint]],
        quotas: Mapping[str, int],
    ) -> None:
        self.app = app
        self.paths = Paths.of(app)
        self.frontiers = frontiers
        self.quotas = quotas
        self.chosen = {name: 0 for name in self.paths.order}
        self.latency_ms = {
            name: [p.latency_ms for p in points] for name, points in frontiers.items()
        }
        self.cost_per_hour = {
            name: [p.cost_per_hour for p in points] for name, points in frontiers.items()
        }
        self.ordered = {
            name: all(
                a < b and c > d
                for a, b, c, d in zip(lat, lat[1:], self.cost_per_hour[name], self.cost_per_hour[name][1:])
            )
            for name, lat in self.latency_ms.items()
        }
        """Whether a frontier's latencies rise and its costs fall along the list."""
        self._running_best: dict[tuple[str, int], list[tuple[tuple[float, float], int] | None]] = {}
        self.usage: dict[str, int] = {}
        for name in self.paths.order:
            self._add_usage(self.point(name), +1)

    def point(self, name: str) -> FrontierPoint:
        return self.frontiers[name][self.chosen[name]]

    def latencies(self) -> dict[str, float]:
        return {name: self.point(name).latency_ms for name in self.paths.order}

    def _add_usage(self, point: FrontierPoint, sign: int) -> None:
        for hardware, workers in point.workers_by_hardware().items():
            self.usage[hardware] = self.usage.get(hardware, 0) + sign * workers

    def excess_after(self, name: str, point: FrontierPoint) -> int:
        """Workers above the quotas if module ``name`` moved to ``point``."""
        usage = dict(self.usage)
        for hardware, workers in self.point(name).workers_by_hardware().items():
            usage[hardware] -= workers
        for hardware, workers in point.workers_by_hardware().items():
            usage[hardware] = usage.get(hardware, 0) + workers
        return sum(max(0, usage.get(h, 0) - limit) for h, limit in self.quotas.items())

    def excess(self) -> int:
        return sum(max(0, self.usage.get(h, 0) - limit) for h, limit in self.quotas.items())

    def move(self, name: str, index: int) -> None:
        self._add_usage(self.point(name), -1)
        self.chosen[name] = index
        self._add_usage(self.point(name), +1)

    def running_best(self, name: str, current: int) -> list[tuple[tuple[float, float], int] | None]:
        """Best move from ``current`` to any point up to each index, on an ordered frontier.

        Entry ``j`` is the (key, index) with the highest (USD/h per ms, USD/h) among the
        points ``current + 1 .. j``, or None. Each list is built once per visited point,
        so a split step costs a binary search per module instead of a scan.
        """
        cached = self._running_best.get((name, current))
        if cached is None:
            cached = [None] * len(self.latency_ms[name])
            best = None
            for index in range(current + 1, len(cached)):
                key = _move_key(self, name, current, index)
                if key is not None and (best is None or key > best[0]):
                    best = (key, index)
                cached[index] = best
            self._running_best[(name, current)] = cached
        return cached

    def moves(self) -> list[tuple[str, int, float, float]]:
        """List (module, index, latency added, cost saved) of every move within the SLO."""
        latency = self.latencies()
        through = self.paths.through_ms(latency)
        result = []
        for name in self.paths.order:
            slack = self.app.slo_ms - through[name]
            current = self.point(name)
            for index, point in enumerate(self.frontiers[name]):
                if index == self.chosen[name]:
                    continue
                added = point.latency_ms - current.latency_ms
                if fits(added, slack):
                    result.append((name, index, added, current.cost_per_hour - point.cost_per_hour))
        return result


def split_by_efficiency(
    app: Application,
    frontiers: Mapping[str, list[FrontierPoint]],
    quotas: Mapping[str, int] | None = None,
    *,
    feasible_start: Callable[[], Mapping[str, FrontierPoint] | None] | None = None,
) -> dict[str, FrontierPoint]:
    """Choose one frontier point per module by latency-cost efficiency.

    Every module starts at its fastest point. While quotas are exceeded, the move that
    frees the most over-quota workers is taken. Then, repeatedly, the move that saves the
    most USD/h per ms of latency added is taken. Moves may go to any point of a module's
    frontier, not only the next one, because frontiers are not convex. A move must keep
    every path through the module within the SLO and the quotas. The split stops when no
    move saves money.

    Freeing over-quota workers one move at a time can get stuck when two modules must
    change together. Then ``feasible_start()``, if given, returns a choice that meets the
    SLO and the quotas (or None when there is none), and the money-saving moves start
    from it.

    Raises
    ------
    InfeasiblePlan
        If the fastest points already break the SLO, or the quotas cannot be met.

    Notes
    -----
    Each step costs O(M * F + M * E) for M modules, F points per frontier and E edges;
    there are at most M * F steps because a module's cost only falls.
    """
    quotas = dict(quotas or {})
    state = _State(app, frontiers, quotas)
    total, _ = state.paths.critical_path(state.latencies())
    if not fits(total, app.slo_ms):
        raise slo_error(app, frontiers)

    # 1. Meet the quotas: free the most over-quota workers per step, then the least money.
    while state.excess() > 0:
        excess = state.excess()
        best = None
        for name, index, _, saved in state.moves():
            after = state.excess_after(name, frontiers[name][index])
            if after < excess:
                key = (after, -saved)
                if best is None or key < best[0]:
                    best = (key, name, index)
        if best is None:
            start = feasible_start() if feasible_start is not None else None
            if start is None:
                error = check_quotas(
                    state.usage, quotas, f"application {app.name!r} at {app.rate:.6g} req/s"
                )
                assert error is not None, "quota excess without an over-quota hardware type"
                raise error
            for name, point in start.items():
                state.move(name, frontiers[name].index(point))
            break
        state.move(best[1], best[2])

    # 2. Save money: the move with the most USD/h saved per ms added, quotas kept.
    while True:
        best = _best_saving_move(state) if not quotas else _best_saving_move_within_quotas(state)
        if best is None:
            break
        state.move(*best)
    return {name: state.point(name) for name in state.paths.order}


def _best_saving_move(state: _State) -> tuple[str, int] | None:
    # The move with the highest (USD/h saved per ms added, USD/h saved).
    through = state.paths.through_ms(state.latencies())
    room_tol = _TOL * max(1.0, abs(state.app.slo_ms))
    best_key: tuple[float, float] | None = None
    best = None
    for name in state.paths.order:
        current = state.chosen[name]
        latencies = state.latency_ms[name]
        limit = latencies[current] + state.app.slo_ms - through[name] + room_tol
        if state.ordered[name]:
            # The last point within the slack; the running best up to it is cached.
            last = bisect.bisect_right(latencies, limit) - 1
            candidate = state.running_best(name, current)[last] if last > current else None
        else:
            candidate = _scan_moves(state, name, current, limit)
        if candidate is not None and (best_key is None or candidate[0] > best_key):
            best_key, best = candidate[0], (name, candidate[1])
    return best


def _move_key(state: _State, name: str, current: int, index: int) -> tuple[float, float] | None:
    # (USD/h saved per ms added, USD/h saved) of a move, or None when it saves nothing.
    latencies, costs = state.latency_ms[name], state.cost_per_hour[name]
    base_cost = costs[current]
    saved = base_cost - costs[index]
    if saved <= _TOL * max(1.0, base_cost):
        return None
    added = latencies[index] - latencies[current]
    return (saved / added if added > 0 else math.inf, saved)


def _scan_moves(
    state: _State, name: str, current: int, limit: float
) -> tuple[tuple[float, float], int] | None:
    best = None
    for index, latency in enumerate(state.latency_ms[name]):
        if latency > limit or index == current:
            continue
        key = _move_key(state, name, current, index)
        if key is not None and (best is None or key > best[0]):
            best = (key, index)
    return best


def _best_saving_move_within_quotas(state: _State) -> tuple[str, int] | None:
    best = None
    for name, index, added, saved in state.moves():
        if saved <= _TOL * max(1.0, state.point(name).cost_per_hour):
            continue
        if state.excess_after(name, state.frontiers[name][index]) > 0:
            continue
        efficiency = saved / added if added > 0 else float("inf")
        key = (efficiency, saved)
        if best is None or key > best[0]:
            best = (key, name, index)
    return None if best is None else (best[1], best[2])


def split_evenly(
    app: Application,
    frontiers: Mapping[str, list[FrontierPoint]],
    quotas: Mapping[str, int] | None = None,
) -> tuple[dict[str, FrontierPoint], dict[str, float]]:
    """Give each module an equal share of the SLO and its cheapest point within it.

    A module's share is ``slo_ms / k`` where ``k`` is the most modules on one path
    through it, so the shares on every path add up to at most the SLO.

    NOTE: with quotas, modules take their cheapest point in topological order, so an
    early module can use up a quota that a later one needed. The split then raises
    InfeasiblePlan even when another choice would fit.

    Raises
    ------
    InfeasiblePlan
        If a module has no point within its share, or the quotas cannot be met.
    """
    quotas = dict(quotas or {})
    paths = Paths.of(app)
    chain = paths.longest_chain()
    budgets = {name: app.slo_ms / chain[name] for name in paths.order}
    usage: dict[str, int] = {}
    chosen: dict[str, FrontierPoint] = {}
    for name in paths.order:
        fitting = [p for p in frontiers[name] if fits(p.latency_ms, budgets[name])]
        if not fitting:
            fastest = min(p.latency_ms for p in frontiers[name])
            raise InfeasiblePlan(
                f"application {app.name!r}: an even split of the {app.slo_ms:.6g} ms SLO gives "
                f"module {name!r} {budgets[name]:.6g} ms, but it needs at least {fastest:.6g} ms; "
                "raise slo_ms or use a planner that splits by cost"
            )
        within = [p for p in fitting if _within_quotas(usage, p, quotas)]
        if not within:
            error = check_quotas(
                _plus(usage, fitting[-1]), quotas, f"module {name!r} with an even SLO split"
            )
            assert error is not None, "a point outside the quotas without an over-quota type"
            raise error
        point = min(within, key=lambda p: (p.cost_per_hour, p.latency_ms))
        chosen[name] = point
        usage = _plus(usage, point)
    return chosen, budgets


def _plus(usage: Mapping[str, int], point: FrontierPoint) -> dict[str, int]:
    total = dict(usage)
    for hardware, workers in point.workers_by_hardware().items():
        total[hardware] = total.get(hardware, 0) + workers
    return total


def _minus(usage: Mapping[str, int], point: FrontierPoint) -> dict[str, int]:
    total = dict(usage)
    for hardware, workers in point.workers_by_hardware().items():
        total[hardware] -= workers
    return total


def _within_quotas(usage: Mapping[str, int], point: FrontierPoint, quotas: Mapping[str, int]) -> bool:
    total = _plus(usage, point)
    return all(total.get(h, 0) <= limit for h, limit in quotas.items())


def _padding(ctx: ModuleContext, point: FrontierPoint, budget_ms: float) -> tuple[float, float]:
    # Returns (dummy share of the collected rate at budget_ms, the latency at which the
    # point needs no padding beyond the overflow bound).
    groups = realize_groups(point, ctx, budget_ms)
    collected = sum(g.collection_rate for g in groups)
    share = sum(g.dummy_rate for g in groups) / collected
    relaxed = realize_groups(point, ctx, math.inf)
    return share, ctx.shaping_ms + max(g.latency_ms for g in relaxed)


def reassign_slack(
    app: Application,
    chosen: Mapping[str, FrontierPoint],
    frontiers: Mapping[str, list[FrontierPoint]],
    contexts: Mapping[str, ModuleContext],
    quotas: Mapping[str, int] | None = None,
) -> tuple[dict[str, FrontierPoint], dict[str, float]]:
    """Hand each path's remaining slack to the modules that gain from more budget.

    A module gains in two ways: its frontier may have a cheaper point within the larger
    budget (taken when the quotas allow), or its groups need less padding. Modules are
    visited by their padding share at their current latency, largest first. Each takes
    the slack left on its longest path, up to the budget where it needs no more padding
    than the overflow bound. Returns the points and the budgets (ms). The budgets on every
    path add up to at most the SLO.
    """
    quotas = dict(quotas or {})
    paths = Paths.of(app)
    points = dict(chosen)
    budgets = {name: points[name].latency_ms for name in paths.order}
    usage: dict[str, int] = {}
    for point in points.values():
        usage = _plus(usage, point)
    padding = {name: _padding(contexts[name], points[name], budgets[name]) for name in paths.order}

    for name in sorted(paths.order, key=lambda m: -padding[m][0]):
        slack = app.slo_ms - paths.through_ms(budgets)[name]
        if slack <= 0:
            continue
        budget = budgets[name] + slack
        without = _minus(usage, points[name])
        cheaper = [
            p for p in frontiers[name]
            if fits(p.latency_ms, budget)
            and p.cost_per_hour < points[name].cost_per_hour - _TOL
            and _within_quotas(without, p, quotas)
        ]
        if cheaper:
            points[name] = min(cheaper, key=lambda p: (p.cost_per_hour, p.latency_ms))
            usage = _plus(without, points[name])
            _, relaxed_ms = _padding(contexts[name], points[name], points[name].latency_ms)
        else:
            relaxed_ms = padding[name][1]
        budgets[name] = max(budgets[name], min(budget, relaxed_ms), points[name].latency_ms)
    return points, budgets
