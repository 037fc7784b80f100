"""Module-level scheduling: the worker groups of one module and its cost-latency frontier.

Units: latency in ms, rates in req/s, prices and costs in USD/h.

A module with rate ``r`` is served by one group ``(h, b, n)`` or by two (the main group and
the residual group). Dummy requests cost nothing, so a group is fastest at full padding
(collection rate ``n T`` with ``T = 1000 b / d``). A configuration therefore has one
lowest latency that does not depend on how the real rate is split, and it is feasible at
every budget at or above that latency as long as its groups can carry ``r``. The frontier
of a module is the Pareto set of (lowest latency, cost) over its configurations. Once the
module has a budget, the dummy generator (:func:`realize_groups`) sets each group's real
and dummy rate.

The search space of the exact frontier, which the ``optimal`` planner minimises over:

- one group of ``n`` workers, ``ceil(r / T) <= n <= ceil(r / T) + MAX_EXTRA_WORKERS``;
- two groups, each of ``n < ceil(r / T)`` workers (a group that could carry ``r`` alone
  makes the two-group configuration cost more than that group alone at the same latency);
- never more workers of a type than its quota.

Harpagon's frontier picks from the same groups, so its cost is never below the optimum.
This module does not look at the application graph, because
:mod:`harpagon.planning.splitting` chooses one frontier point per module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harpagon.errors import ConfigError, InfeasiblePlan
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import (
    Dispatch,
    group_capacity,
    max_period_ms,
    min_collection_rate,
    slack_share,
)
from harpagon.model.plan import Group
from harpagon.model.profiles import Profile
from harpagon.model.validate import make_group

__all__ = [
    "MAX_EXTRA_WORKERS",
    "BatchKind",
    "FrontierPoint",
    "GroupChoice",
    "ModuleContext",
    "exact_frontier",
    "harpagon_frontier",
    "module_context",
    "realize_groups",
]

MAX_EXTRA_WORKERS = 4
"""Workers a single group may have beyond the fewest that carry its rate.

Extra workers only shorten the full-padding latency ``o + d + d / n`` (batch-aware), by
less each time; without a cap the frontier would be infinite.
"""

_RATE_TOL = 1e-9
"""Relative margin kept below capacity bounds so that rounding never breaks validation."""

_COST_TOL = 1e-9

_PAIR_BLOCK_ROWS = 512
"""Rows per block in the pairwise passes, which bounds their memory to 512 x rows."""


@dataclass(frozen=True)
class BatchKind:
    """One profiled (hardware, batch size) pair of a module's model."""

    hardware: str
    batch_size: int
    batch_latency_ms: float
    price_per_hour: float
    quota: int | None
    """Quota of the hardware type (workers), ``None`` for no limit."""

    @property
    def throughput(self) -> float:
        """Requests per second of one saturated worker, ``1000 b / d``."""
        return 1000.0 * self.batch_size / self.batch_latency_ms


@dataclass(frozen=True)
class GroupChoice:
    """A worker group before its real and dummy rates are set."""

    kind: BatchKind
    workers: int

    @property
    def cost_per_hour(self) -> float:
        """Price of the group's workers, USD/h."""
        return self.workers * self.kind.price_per_hour


@dataclass(frozen=True)
class FrontierPoint:
    """A module configuration with its lowest reachable latency and its cost."""

    latency_ms: float
    """Lowest module latency of the configuration (shaping included), ms."""
    cost_per_hour: float
    groups: tuple[GroupChoice, ...]
    """One group, or the main group then the residual group."""

    def workers_by_hardware(self) -> dict[str, int]:
        """Return the number of workers the configuration rents per hardware type."""
        used: dict[str, int] = {}
        for group in self.groups:
            used[group.kind.hardware] = used.get(group.kind.hardware, 0) + group.workers
        return used

    def describe(self) -> str:
        """Return a short text such as ``3 x t4 b8 + 1 x v100 b2``."""
        return " + ".join(
            f"{g.workers} x {g.kind.hardware} b{g.kind.batch_size}" for g in self.groups
        )


@dataclass(frozen=True)
class ModuleContext:
    """Everything the module level needs about one module at the planned rate."""

    name: str
    rate: float
    """Module rate ``r_m``, req/s."""
    overhead_ms: float
    shaping_ms: float
    """Bound on the rate shaper's delay; part of every module latency."""
    dispatch: Dispatch
    kinds: tuple[BatchKind, ...]


class _KindTable:
    """Column arrays over a module's batch kinds, for vectorised formulas.

    Symbols: ``d`` batch latency (ms), ``b`` batch size, ``T`` throughput of one worker
    (req/s), ``p`` price (USD/h), ``quota`` worker quota (``inf`` when unlimited),
    ``r`` module rate (req/s), ``o`` overhead (ms).
    """

    def __init__(self, ctx: ModuleContext) -> None:
        self.ctx = ctx
        self.d = np.array([k.batch_latency_ms for k in ctx.kinds], dtype=float)
        self.b = np.array([k.batch_size for k in ctx.kinds], dtype=float)
        self.p = np.array([k.price_per_hour for k in ctx.kinds], dtype=float)
        self.T = 1000.0 * self.b / self.d
        self.quota = np.array(
            [math.inf if k.quota is None else k.quota for k in ctx.kinds], dtype=float
        )
        hardware = sorted({k.hardware for k in ctx.kinds})
        self.hardware_index = np.array([hardware.index(k.hardware) for k in ctx.kinds])
        self.round_robin = ctx.dispatch is Dispatch.ROUND_ROBIN
        # Minimum worker count that carries the whole rate as one group.
        self.min_workers = _ceil(ctx.rate / self.T)

    def group_latency(self, kind: np.ndarray, workers: np.ndarray) -> np.ndarray:
        """Lowest module latency (shaping included) of groups at full padding, ms."""
        d = self.d[kind]
        padded_period = d if self.round_robin else d / workers
        return self.ctx.shaping_ms + self.ctx.overhead_ms + d + padded_period

    def pair_max_rate(self, kind: np.ndarray, workers: np.ndarray) -> np.ndarray:
        """Highest real rate a group can take as one of two groups, req/s.

        From the split-slack bound ``w >= r_g b / (b - s)`` with ``w <= n T``: batch-aware
        ``s = r_g / r`` gives ``r_g <= n T b / (b + n T / r)``; round-robin divides
        ``s`` by ``n``, which gives ``r_g <= n T b / (b + T / r)``.
        """
        capacity = workers * self.T[kind]
        b = self.b[kind]
        r = self.ctx.rate
        if self.round_robin:
            return capacity * b / (b + self.T[kind] / r)
        return capacity * b / (b + capacity / r)

    def workers_for_pair_rate(self, kind: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """Minimum worker count whose :meth:`pair_max_rate` reaches ``rate``."""
        T = self.T[kind]
        b = self.b[kind]
        r = self.ctx.rate
        if self.round_robin:
            needed = rate * (b + T / r) / (T * b)
        else:
            needed = rate * b / (T * (b - rate / r))
        return np.maximum(_ceil(needed), 1)


def _ceil(values: np.ndarray | float) -> np.ndarray:
    # Ceiling that forgives floating-point noise just above an integer.
    array = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        result = np.ceil(array - 1e-9 * np.maximum(1.0, np.abs(array)))
    return np.where(np.isfinite(result), result, np.inf).astype(float)


def module_context(
    *,
    name: str,
    rate: float,
    overhead_ms: float,
    shaping_ms: float,
    profile: Profile,
    hardware: HardwareCatalog,
    dispatch: Dispatch | str = Dispatch.BATCH_AWARE,
    quotas: bool = True,
) -> ModuleContext:
    """Return the module context: every profiled (hardware, batch size) in the catalog.

    Hardware types that the profile lists but the catalog lacks are skipped, so a
    catalog can restrict a plan to some hardware.

    Raises
    ------
    ConfigError
        If no hardware type of the profile is in the catalog.
    InfeasiblePlan
        If every such type has a quota of 0 workers.
    """
    kinds = []
    zero_quota = set()
    for hardware_name, batch_size, batch_latency_ms in profile.configs():
        if hardware_name not in hardware:
            continue
        kind = hardware[hardware_name]
        quota = kind.available if quotas else None
        if quota == 0:
            zero_quota.add(hardware_name)
            continue
        kinds.append(
            BatchKind(hardware_name, batch_size, batch_latency_ms, kind.price_per_hour, quota)
        )
    if not kinds and zero_quota:
        raise InfeasiblePlan(
            f"module {name!r}: every hardware type model {profile.model!r} runs on has quota 0 "
            f"({', '.join(sorted(zero_quota))}); raise 'available' in {hardware.path}"
        )
    if not kinds:
        raise ConfigError(
            f"{profile.path}: module {name!r} has no hardware type left in the catalog: field "
            f"'latency_ms' of model {profile.model!r} lists hardware "
            f"{', '.join(profile.hardware_names()) or 'none'}, and the hardware catalog "
            f"{hardware.path} offers only {', '.join(hardware.names()) or 'nothing'}; "
            "profile the model on a catalog type or add one of its types to the catalog"
        )
    return ModuleContext(name, rate, overhead_ms, shaping_ms, Dispatch(dispatch), tuple(kinds))


# --- Candidate tables -------------------------------------------------------------------
# A candidate table contains one row per configuration: latency, cost, then the kind index
# and worker count of the first and second group (second kind -1 for one group).


def _single_candidates(table: _KindTable, *, extra_workers: int) -> np.ndarray:
    kinds = np.arange(len(table.ctx.kinds))
    offsets = np.arange(extra_workers + 1)
    kind = np.repeat(kinds, len(offsets))
    workers = table.min_workers[kind] + np.tile(offsets, len(kinds))
    keep = np.isfinite(workers) & (workers <= table.quota[kind])
    kind, workers = kind[keep], workers[keep]
    latency = table.group_latency(kind, workers)
    cost = workers * table.p[kind]
    return _rows(latency, cost, kind, workers)


def _rows(
    latency: np.ndarray, cost: np.ndarray, kind: np.ndarray, workers: np.ndarray,
    second_kind: np.ndarray | None = None, second_workers: np.ndarray | None = None,
) -> np.ndarray:
    size = len(latency)
    if second_kind is None:
        second_kind = np.full(size, -1.0)
        second_workers = np.zeros(size)
    return np.column_stack(
        [latency, cost, kind, workers, second_kind, second_workers]
    ).reshape(size, 6)


def _pareto(rows: np.ndarray, table: _KindTable) -> np.ndarray:
    """Return the rows no other row beats on latency, cost and quota usage."""
    if len(rows) == 0:
        return rows
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    rows = rows[order]
    limited = np.isfinite(table.quota)
    if not limited.any():
        cost = rows[:, 1]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(cost)[:-1]])
        margin = _COST_TOL * np.maximum(1.0, np.where(np.isfinite(best_before), best_before, 1.0))
        return rows[cost < best_before - margin]

    # With quotas a dearer configuration may still be needed because it rents other
    # hardware, so usage of every quota-limited type is a dimension too.
    usage = _quota_usage(rows, table)
    values = np.column_stack([rows[:, 0], rows[:, 1], usage])
    columns = np.arange(len(rows))
    dominated = np.zeros(len(rows), dtype=bool)
    for first in range(0, len(rows), _PAIR_BLOCK_ROWS):
        i = np.arange(first, min(first + _PAIR_BLOCK_ROWS, len(rows)))
        no_worse = (values[None, :, :] <= values[i, None, :] + 1e-12).all(axis=2)
        better = (values[None, :, :] < values[i, None, :] - 1e-12).any(axis=2)
        earlier = columns[None, :] < i[:, None]
        # Row j removes row i when it is no worse everywhere and better somewhere, or
        # when it is an identical row that comes first.
        dominated[i] = (no_worse & (better | earlier)).any(axis=1)
    return rows[~dominated]


def _quota_usage(rows: np.ndarray, table: _KindTable) -> np.ndarray:
    limited_types = sorted(
        {int(table.hardware_index[k]) for k in range(len(table.ctx.kinds)) if np.isfinite(table.quota[k])}
    )
    usage = np.zeros((len(rows), len(limited_types)))
    for column, hardware_index in enumerate(limited_types):
        for kind_column, workers_column in ((2, 3), (4, 5)):
            kind = rows[:, kind_column].astype(int)
            valid = kind >= 0
            match = valid & (table.hardware_index[np.where(valid, kind, 0)] == hardware_index)
            usage[:, column] += np.where(match, rows[:, workers_column], 0.0)
    return usage


def _points(rows: np.ndarray, ctx: ModuleContext) -> list[FrontierPoint]:
    points = []
    for latency, cost, kind, workers, second_kind, second_workers in rows:
        groups = [GroupChoice(ctx.kinds[int(kind)], int(workers))]
        if second_kind >= 0:
            groups.append(GroupChoice(ctx.kinds[int(second_kind)], int(second_workers)))
        # The main group is the one with the best throughput per dollar.
        groups.sort(key=lambda g: -g.kind.throughput / g.kind.price_per_hour)
        points.append(FrontierPoint(float(latency), float(cost), tuple(groups)))
    return points


# --- Exact frontier ---------------------------------------------------------------------


def exact_frontier(ctx: ModuleContext, *, two_groups: bool = True) -> list[FrontierPoint]:
    """Return the exact cost-latency frontier of a module over the whole search space.

    Points are sorted by latency. With quotas, a point may cost more than a faster one
    because it rents less of a limited hardware type.

    Notes
    -----
    Two-group configurations are found by taking each group option as the slower group
    and pairing it with the cheapest faster option that carries the rest. The partner is
    chosen per hardware class (one class per quota-limited type, one for the others).
    That is exact because within a class a cheaper partner also rents fewer limited
    workers. Time O(G^2) for G group options (batch kinds x workers below ``ceil(r / T)``).

    Examples
    --------
    >>> from harpagon.model.latency import Dispatch
    >>> kind = BatchKind("t4", 3, 30.0, 1.0, None)  # 100 req/s per worker
    >>> ctx = ModuleContext("m", 150.0, 0.0, 0.0, Dispatch.BATCH_AWARE, (kind,))
    >>> [(p.latency_ms, p.cost_per_hour) for p in exact_frontier(ctx)][-2:]
    [(40.0, 3.0), (45.0, 2.0)]
    """
    table = _KindTable(ctx)
    rows = [_single_candidates(table, extra_workers=MAX_EXTRA_WORKERS)]
    if two_groups:
        rows.append(_exact_pairs(table))
    return _points(_pareto(np.concatenate(rows), table), ctx)


def _group_options(table: _KindTable) -> tuple[np.ndarray, np.ndarray]:
    # Every (kind, workers) a group in a two-group configuration may use.
    kinds, workers = [], []
    for kind in range(len(table.ctx.kinds)):
        top = min(table.min_workers[kind] - 1, table.quota[kind])
        if top >= 1:
            count = int(top)
            kinds.append(np.full(count, kind))
            workers.append(np.arange(1, count + 1, dtype=float))
    if not kinds:
        return np.zeros(0, dtype=int), np.zeros(0)
    return np.concatenate(kinds), np.concatenate(workers)


def _exact_pairs(table: _KindTable) -> np.ndarray:
    kind, workers = _group_options(table)
    if len(kind) == 0:
        return np.zeros((0, 6))
    latency = table.group_latency(kind, workers)
    cost = workers * table.p[kind]
    max_rate = table.pair_max_rate(kind, workers) * (1 - _RATE_TOL)
    order = np.lexsort((cost, latency))
    kind, workers, latency, cost, max_rate = (
        kind[order], workers[order], latency[order], cost[order], max_rate[order]
    )
    hardware = table.hardware_index[kind]
    limited = np.isfinite(table.quota[kind])
    partner_class = np.where(limited, hardware, -1)

    # Row i: the slower group; column j: a partner no slower (earlier in the order).
    # Rows go in blocks so that the matrices stay small for modules with many options.
    size = len(kind)
    columns = np.arange(size)
    rows = []
    for first in range(0, size, _PAIR_BLOCK_ROWS):
        i_all = np.arange(first, min(first + _PAIR_BLOCK_ROWS, size))
        earlier = columns[None, :] <= i_all[:, None]
        carries = max_rate[None, :] + max_rate[i_all, None] >= table.ctx.rate
        same_type = hardware[None, :] == hardware[i_all, None]
        within_quota = ~same_type | (
            workers[None, :] + workers[i_all, None] <= table.quota[kind[i_all]][:, None]
        )
        eligible = earlier & carries & within_quota
        for value in np.unique(partner_class):
            priced = np.where(eligible & (partner_class[None, :] == value), cost[None, :], np.inf)
            best = priced.argmin(axis=1)
            found = np.isfinite(priced[np.arange(len(i_all)), best])
            i = i_all[found]
            j = best[found]
            rows.append(
                _rows(latency[i], cost[i] + cost[j], kind[i], workers[i], kind[j], workers[j])
            )
    return np.concatenate(rows)


# --- Harpagon's frontier ----------------------------------------------------------------


def harpagon_frontier(
    ctx: ModuleContext, *, two_groups: bool = True, dummies: bool = True
) -> list[FrontierPoint]:
    """Return the frontier of Harpagon's module-level scheduling.

    At a budget ``L`` the main group is the batch kind with the highest throughput per
    dollar ``T / p`` whose saturated group of ``n = floor(r / T) >= 1`` workers meets
    ``L``. The residual rate goes to the cheapest group that carries it within ``L``.
    The alternative is ``n + 1`` main workers and no residual. The cheapest single group
    that meets ``L`` is also a candidate. The frontier is the Pareto set of what this rule
    returns over all budgets.

    ``two_groups=False`` keeps single groups only. ``dummies=False`` plans without
    padding: one group of the fewest workers, collecting only its real rate (two groups
    need padding to absorb the uneven split, so they are impossible then).

    Notes
    -----
    Time O(K * M * MAX_EXTRA_WORKERS) for K batch kinds and M kinds that become the main
    group at some budget.
    """
    table = _KindTable(ctx)
    if not dummies:
        return _points(_pareto(_undummied_candidates(table), table), ctx)
    rows = [_single_candidates(table, extra_workers=MAX_EXTRA_WORKERS)]
    if two_groups:
        rows.extend(_main_residual_candidates(table))
    return _points(_pareto(np.concatenate(rows), table), ctx)


def _undummied_candidates(table: _KindTable) -> np.ndarray:
    kind = np.arange(len(table.ctx.kinds))
    workers = table.min_workers
    keep = np.isfinite(workers) & (workers <= table.quota)
    kind, workers = kind[keep], workers[keep]
    # The group collects only its real rate: latency o + d + P with P = 1000 b / r
    # (times n under round-robin).
    period = 1000.0 * table.b[kind] / table.ctx.rate
    if table.round_robin:
        period = period * workers
    latency = table.ctx.shaping_ms + table.ctx.overhead_ms + table.d[kind] + period
    return _rows(latency, workers * table.p[kind], kind, workers)


def _main_residual_candidates(table: _KindTable) -> list[np.ndarray]:
    ctx = table.ctx
    all_kinds = np.arange(len(ctx.kinds))
    saturated_workers = np.floor(ctx.rate / table.T * (1 + 1e-12))
    can_lead = (saturated_workers >= 1) & (saturated_workers <= table.quota)
    if not can_lead.any():
        return []
    saturated_latency = table.group_latency(all_kinds, np.maximum(saturated_workers, 1))

    # The main group at a budget is the best T / p among kinds whose saturated group fits,
    # so as the budget grows the main changes only to a kind with a better T / p.
    # Those record kinds, each with the budget range where it leads, are the mains.
    candidates = all_kinds[can_lead]
    efficiency = table.T[candidates] / table.p[candidates]
    order = np.lexsort((-efficiency, saturated_latency[candidates]))
    mains: list[tuple[int, float]] = []
    best_efficiency = -math.inf
    for kind, value, latency in zip(
        candidates[order].tolist(), efficiency[order].tolist(), saturated_latency[candidates][order].tolist()
    ):
        if value > best_efficiency * (1 + 1e-12):
            mains.append((kind, latency))
            best_efficiency = value

    main = np.array([kind for kind, _ in mains])
    start_ms = np.array([latency for _, latency in mains])
    end_ms = np.append(start_ms[1:], np.inf)
    workers = saturated_workers[main]
    return [_main_alone(table, main, workers + 1), _with_residual(table, main, workers, start_ms, end_ms)]


def _main_alone(table: _KindTable, main: np.ndarray, workers: np.ndarray) -> np.ndarray:
    # The alternative to a residual group: one more main worker.
    keep = workers <= table.quota[main]
    main, workers = main[keep], workers[keep]
    return _rows(table.group_latency(main, workers), workers * table.p[main], main, workers)


def _with_residual(
    table: _KindTable, main: np.ndarray, workers: np.ndarray, start_ms: np.ndarray,
    end_ms: np.ndarray,
) -> np.ndarray:
    # For each main (rows) and each kind (columns), the residual group of the fewest
    # workers that carry what the main group leaves, and up to MAX_EXTRA_WORKERS more for
    # tighter budgets (third axis). Only configurations reached while the main leads
    # (latency below end_ms) count.
    num_kinds = len(table.ctx.kinds)
    main_rate = table.pair_max_rate(main, workers) * (1 - _RATE_TOL)
    residual_rate = table.ctx.rate - main_rate
    fewest = table.workers_for_pair_rate(np.arange(num_kinds)[None, :], residual_rate[:, None])
    offsets = np.arange(MAX_EXTRA_WORKERS + 1)
    shape = (len(main), num_kinds, len(offsets))
    residual_workers = (fewest[:, :, None] + offsets[None, None, :]).reshape(-1)
    kind = np.broadcast_to(np.arange(num_kinds)[None, :, None], shape).reshape(-1)
    lead = np.broadcast_to(np.arange(len(main))[:, None, None], shape).reshape(-1)

    same_type = table.hardware_index[kind] == table.hardware_index[main[lead]]
    room = table.quota[kind] - np.where(same_type, workers[lead], 0.0)
    keep = np.isfinite(residual_workers) & (residual_workers <= room)
    keep &= residual_workers <= table.min_workers[kind] + MAX_EXTRA_WORKERS
    if not np.isfinite(table.quota).any():
        # A residual group that costs as much as one more main worker loses to the n + 1
        # alternative, which is faster. With quotas it may still rent scarcer hardware.
        keep &= residual_workers * table.p[kind] < table.p[main[lead]] * (1 - _COST_TOL)
    kind, residual_workers, lead = kind[keep], residual_workers[keep], lead[keep]

    latency = np.maximum(start_ms[lead], table.group_latency(kind, residual_workers))
    in_range = latency < end_ms[lead]
    kind, residual_workers, lead, latency = (
        kind[in_range], residual_workers[in_range], lead[in_range], latency[in_range]
    )
    cost = workers[lead] * table.p[main[lead]] + residual_workers * table.p[kind]
    return _rows(latency, cost, main[lead], workers[lead], kind, residual_workers)


# --- Dummy generator --------------------------------------------------------------------


def realize_groups(point: FrontierPoint, ctx: ModuleContext, budget_ms: float) -> list[Group]:
    """Set the real and dummy rate of each group of ``point`` for a module budget.

    The main group takes as much real rate as the split-slack bound allows and the
    residual group the rest. Each group's collection rate is the smallest that keeps
    both its batches from overflowing and its latency within ``budget_ms`` minus the
    shaping delay, so there is no padding the budget does not need.

    Raises
    ------
    ValueError
        If the point cannot meet the budget (a planner bug, not a user error).
    """
    group_budget_ms = budget_ms - ctx.shaping_ms
    num_groups = len(point.groups)
    rates = [ctx.rate]
    if num_groups == 2:
        main = point.groups[0]
        main_capacity = group_capacity(main.kind.batch_size, main.kind.batch_latency_ms, main.workers)
        main_rate = _pair_max_rate(main, main_capacity, ctx) * (1 - _RATE_TOL)
        main_rate = min(main_rate, ctx.rate * (1 - _RATE_TOL))
        rates = [main_rate, ctx.rate - main_rate]

    groups = []
    for choice, rate in zip(point.groups, rates):
        kind = choice.kind
        capacity = group_capacity(kind.batch_size, kind.batch_latency_ms, choice.workers)
        slack = slack_share(rate / ctx.rate, choice.workers, ctx.dispatch, num_groups)
        collection_rate = min_collection_rate(rate, kind.batch_size, slack)
        period_ms = max_period_ms(
            group_budget_ms, ctx.overhead_ms, kind.batch_latency_ms, choice.workers, ctx.dispatch
        )
        if period_ms <= 0:
            raise ValueError(
                f"module {ctx.name}: {point.describe()} cannot meet a budget of {budget_ms:.6g} ms"
            )
        collection_rate = max(collection_rate, 1000.0 * kind.batch_size / period_ms)
        if collection_rate > capacity * (1 + 1e-7):
            raise ValueError(
                f"module {ctx.name}: {point.describe()} needs {collection_rate:.6g} req/s, "
                f"more than its capacity {capacity:.6g} req/s, to meet {budget_ms:.6g} ms"
            )
        collection_rate = min(collection_rate, capacity)
        dummy_rate = collection_rate - rate
        if dummy_rate <= _RATE_TOL * rate:
            # Rounding noise, not padding: it would shorten the period by at most 1e-9 of it.
            dummy_rate = 0.0
        groups.append(
            make_group(
                hardware=kind.hardware,
                batch_size=kind.batch_size,
                workers=choice.workers,
                rate=rate,
                dummy_rate=dummy_rate,
                dispatch=ctx.dispatch,
                overhead_ms=ctx.overhead_ms,
                batch_latency_ms=kind.batch_latency_ms,
            )
        )
    return groups


def _pair_max_rate(choice: GroupChoice, capacity: float, ctx: ModuleContext) -> float:
    b = choice.kind.batch_size
    if ctx.dispatch is Dispatch.ROUND_ROBIN:
        return capacity * b / (b + choice.kind.throughput / ctx.rate)
    return capacity * b / (b + capacity / ctx.rate)

