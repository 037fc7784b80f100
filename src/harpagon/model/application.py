"""Applications: a DAG of modules with an entry rate (req/s) and an end-to-end SLO (ms).

Each module names a profile, an overhead ``overhead_ms`` and a ``rate_factor``: the number
of its requests per application request (absolute, not relative to its parents).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

from harpagon.errors import ConfigError

__all__ = ["Module", "Application"]


def _finite_positive_error(value: float, unit: str) -> str | None:
    """Return the error text for a value that must be a finite number > 0, or None if it is."""
    if not value > 0:
        return f"must be > 0 {unit}, got {value}"
    if not math.isfinite(value):
        return f"must be a finite number of {unit}, got {value}"
    return None


@dataclass(frozen=True)
class Module:
    """One stage of an application."""

    name: str
    profile: str
    overhead_ms: float = 0.0
    rate_factor: float = 1.0
    """Requests this module receives per application request."""


@dataclass(frozen=True)
class Application:
    """A DAG of modules with its request rate and latency SLO.

    The constructor checks the graph: unique module names, edges between known modules and
    no cycle. Module order in ``modules`` is kept; :attr:`topological_order` gives a
    precedence-respecting order.
    """

    name: str
    rate: float
    slo_ms: float
    modules: tuple[Module, ...]
    edges: tuple[tuple[str, str], ...] = ()
    path: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        if not self.modules:
            raise ConfigError(f"{self.path}: application {self.name!r} has no modules")
        rate_error = _finite_positive_error(self.rate, "req/s")
        if rate_error:
            raise ConfigError(f"{self.path}: field 'rate' {rate_error}")
        slo_error = _finite_positive_error(self.slo_ms, "ms")
        if slo_error:
            raise ConfigError(f"{self.path}: field 'slo_ms' {slo_error}")
        names = [module.name for module in self.modules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"{self.path}: duplicate module names: {', '.join(duplicates)}")
        for module in self.modules:
            if not module.rate_factor > 0:
                raise ConfigError(
                    f"{self.path}: module {module.name!r}: field 'rate_factor' must be > 0, "
                    f"got {module.rate_factor}"
                )
            if module.overhead_ms < 0:
                raise ConfigError(
                    f"{self.path}: module {module.name!r}: field 'overhead_ms' must be >= 0, "
                    f"got {module.overhead_ms}"
                )
        for source, target in self.edges:
            for end in (source, target):
                if end not in names:
                    raise ConfigError(
                        f"{self.path}: edge [{source}, {target}] names unknown module {end!r}; "
                        f"modules: {', '.join(names)}"
                    )
            if source == target:
                raise ConfigError(f"{self.path}: edge [{source}, {target}] is a self-loop")
        self.topological_order  # noqa: B018 - raises ConfigError on a cycle

    def with_overrides(self, *, rate: float | None = None, slo_ms: float | None = None) -> Application:
        """Return a copy with a new rate and/or SLO (validated like the file's values).

        Raises
        ------
        ConfigError
            If an override is not a finite number > 0. The message names the override,
            not the application file, because the value did not come from the file.
        """
        for name, value, unit in (("rate", rate, "req/s"), ("slo_ms", slo_ms, "ms")):
            error = None if value is None else _finite_positive_error(value, unit)
            if error:
                raise ConfigError(f"{name} {error}")
        return replace(
            self,
            rate=self.rate if rate is None else rate,
            slo_ms=self.slo_ms if slo_ms is None else slo_ms,
        )

    def module(self, name: str) -> Module:
        """Return the module called ``name``."""
        for module in self.modules:
            if module.name == name:
                return module
        raise ConfigError(f"{self.path}: application {self.name!r} has no module {name!r}")

    def module_rate(self, name: str) -> float:
        """Return the request rate r_m = R * f_m of a module, req/s."""
        return self.rate * self.module(name).rate_factor

    def predecessors(self, name: str) -> list[str]:
        """Return the modules with an edge into ``name``."""
        return [source for source, target in self.edges if target == name]

    def successors(self, name: str) -> list[str]:
        """Return the modules with an edge out of ``name``."""
        return [target for source, target in self.edges if source == name]

    @property
    def sources(self) -> list[str]:
        """Modules without predecessors."""
        return [m for m in self.topological_order if not self.predecessors(m)]

    @property
    def sinks(self) -> list[str]:
        """Modules without successors."""
        return [m for m in self.topological_order if not self.successors(m)]

    @cached_property
    def topological_order(self) -> list[str]:
        """Module names in an order where every edge points forward (Kahn's algorithm)."""
        indegree = {module.name: 0 for module in self.modules}
        for _, target in self.edges:
            indegree[target] += 1
        ready = [name for name, degree in indegree.items() if degree == 0]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for target in self.successors(name):
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
        if len(order) < len(self.modules):
            cycle = self._find_cycle({n for n, d in indegree.items() if d > 0})
            raise ConfigError(
                f"{self.path}: the module graph has a cycle: {' -> '.join(cycle)}; "
                "remove one of these edges"
            )
        return order

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        # Walk backwards inside the modules left with positive in-degree until one repeats.
        node = min(candidates)
        seen: list[str] = []
        while node not in seen:
            seen.append(node)
            node = next(p for p in self.predecessors(node) if p in candidates)
        cycle = seen[seen.index(node):] + [node]
        return list(reversed(cycle))

    def paths(self) -> Iterator[list[str]]:
        """Yield every source-to-sink path as a list of module names.

        Notes
        -----
        The count of paths can grow exponentially with the module count; applications here
        have at most a few dozen.
        """
        def extend(path: list[str]) -> Iterator[list[str]]:
            successors = self.successors(path[-1])
            if not successors:
                yield path
            for successor in successors:
                yield from extend(path + [successor])

        for source in self.sources:
            yield from extend([source])

    def start_offsets_ms(self, module_latency_ms: dict[str, float]) -> dict[str, float]:
        """Return each module's planned start S_m: the longest path of latencies before it."""
        start: dict[str, float] = {}
        for name in self.topological_order:
            start[name] = max(
                (start[p] + module_latency_ms[p] for p in self.predecessors(name)), default=0.0
            )
        return start

    def critical_path(self, module_latency_ms: dict[str, float]) -> tuple[float, list[str]]:
        """Return the longest source-to-sink latency (ms) and the path that reaches it."""
        best: dict[str, tuple[float, list[str]]] = {}
        for name in self.topological_order:
            before = max(
                (best[p] for p in self.predecessors(name)), key=lambda item: item[0], default=(0.0, [])
            )
            best[name] = (before[0] + module_latency_ms[name], before[1] + [name])
        return max((best[s] for s in self.sinks), key=lambda item: item[0])
