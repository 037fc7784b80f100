"""Workload suites for comparing planners: the shipped applications on a grid, and random ones.

A workload is one application at one rate (req/s) and SLO (ms) with its profiles and
hardware catalog. ``standard`` sweeps every shipped GPU application over rates from light
(a fraction of one worker's load, so residual groups dominate) to heavy, and SLOs from
tight to loose. ``random`` draws monotone profiles, DAGs of 1 to 6 modules and prices from
a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum

import numpy as np

from harpagon.errors import ConfigError
from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog, HardwareType
from harpagon.model.loading import load_hardware, load_profiles, resolve_application, shipped_app_names
from harpagon.model.profiles import Profile, ProfileSet

__all__ = [
    "RATE_SCALES",
    "SLO_SCALES",
    "Suite",
    "Workload",
    "random_workload",
    "random_suite",
    "standard_suite",
    "suite_workloads",
]

RATE_SCALES = (0.02, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Multiples of each shipped application's own rate in the standard suite."""

SLO_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
"""Multiples of each shipped application's own SLO in the standard suite."""

RANDOM_SUITE_SIZE = 500

_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
_RATE_FACTORS = (0.5, 1.0, 1.5, 2.0, 3.0)


class Suite(str, Enum):
    """Names of the workload suites."""

    STANDARD = "standard"
    RANDOM = "random"
    ALL = "all"


@dataclass(frozen=True)
class Workload:
    """One planning problem: an application at its rate and SLO, with profiles and hardware."""

    name: str
    suite: str
    app: Application
    profiles: ProfileSet
    hardware: HardwareCatalog


def standard_suite(
    rate_scales: tuple[float, ...] = RATE_SCALES, slo_scales: tuple[float, ...] = SLO_SCALES
) -> list[Workload]:
    """Return every shipped application whose models have shipped profiles, on a grid.

    The grid is the application's own rate times ``rate_scales`` by its own SLO times
    ``slo_scales``. Applications whose profiles are not shipped (the OCR demo, which is
    profiled on this machine at run time) are left out.
    """
    profiles = load_profiles()
    hardware = load_hardware()
    workloads = []
    for app_name in shipped_app_names():
        base = resolve_application(app_name)
        if any(module.profile not in profiles for module in base.modules):
            continue
        for rate_scale, slo_scale in itertools.product(rate_scales, slo_scales):
            app = base.with_overrides(rate=base.rate * rate_scale, slo_ms=base.slo_ms * slo_scale)
            name = f"{app_name}@{app.rate:g}rps/{app.slo_ms:g}ms"
            workloads.append(Workload(name, Suite.STANDARD.value, app, profiles, hardware))
    return workloads


def _random_dag(rng: np.random.Generator, num_modules: int) -> tuple[tuple[str, str], ...]:
    # Every module after the first hangs below one earlier module; a few extra edges make joins.
    names = [f"m{i}" for i in range(num_modules)]
    edges = {(names[int(rng.integers(0, j))], names[j]) for j in range(1, num_modules)}
    for i, j in itertools.combinations(range(num_modules), 2):
        if rng.random() < 0.15:
            edges.add((names[i], names[j]))
    return tuple(sorted(edges))


def random_workload(rng: np.random.Generator, index: int = 0) -> Workload:
    """Return one random workload drawn from ``rng``.

    Hardware: 2 to 5 types with prices from 0.3 to 6 USD/h and speeds roughly rising
    with price. Each module gets its own model profiled on a random subset of types at
    4 to 7 batch sizes, with ``d(b) = base + per_item * b ** 0.9``: rising in ``b`` with
    rising throughput (a monotone profile). The rate is 5 to 3000 req/s and the SLO 1.2 to
    8 times the fastest possible path, so most workloads are feasible.
    """
    # 1. Hardware types and their relative speeds.
    num_types = int(rng.integers(2, 6))
    prices = np.sort(rng.uniform(0.3, 6.0, num_types))
    speeds = prices ** rng.uniform(0.3, 0.9) * rng.uniform(0.7, 1.3, num_types)
    types = {
        f"hw{i}": HardwareType(f"hw{i}", float(round(price, 4)))
        for i, price in enumerate(prices)
    }
    hardware = HardwareCatalog(types, f"<random {index}>")

    # 2. One model per module, profiled on a non-empty subset of the types.
    num_modules = int(rng.integers(1, 7))
    profiles: dict[str, Profile] = {}
    modules = []
    fastest_ms: dict[str, float] = {}
    for m in range(num_modules):
        base_ms = rng.uniform(1.0, 30.0)
        per_item_ms = rng.uniform(0.2, 8.0)
        sizes = sorted(rng.choice(_BATCH_SIZES, size=int(rng.integers(4, 8)), replace=False))
        on = [name for name in types if rng.random() < 0.7] or [str(rng.choice(list(types)))]
        latency_ms = {}
        for name in on:
            speed = speeds[list(types).index(name)]
            latency_ms[name] = {
                int(b): float(round((base_ms + per_item_ms * b ** 0.9) / speed, 4)) for b in sizes
            }
        model = f"model{m}"
        profiles[model] = Profile(model, latency_ms)
        overhead_ms = float(round(rng.uniform(0.0, 5.0), 2))
        factor = float(_RATE_FACTORS[int(rng.integers(0, len(_RATE_FACTORS)))]) if m else 1.0
        modules.append(Module(f"m{m}", model, overhead_ms, factor))
        fastest_ms[f"m{m}"] = overhead_ms + 2.0 * min(
            min(by_size.values()) for by_size in latency_ms.values()
        )

    # 3. Graph, rate and an SLO that the fastest configurations can meet.
    edges = _random_dag(rng, num_modules)
    rate = float(round(10 ** rng.uniform(np.log10(5.0), np.log10(3000.0)), 2))
    draft = Application(f"random{index}", rate, 1.0, tuple(modules), edges)
    floor_ms, _ = draft.critical_path(fastest_ms)
    slo_ms = float(round(floor_ms * rng.uniform(1.2, 8.0) + 1000.0 / rate, 2))
    app = draft.with_overrides(slo_ms=slo_ms)
    name = f"random{index}:{num_modules}m@{rate:g}rps/{slo_ms:g}ms"
    return Workload(name, Suite.RANDOM.value, app, ProfileSet(profiles, f"<random {index}>"), hardware)


def random_suite(seed: int = 0, size: int = RANDOM_SUITE_SIZE) -> list[Workload]:
    """Return ``size`` random workloads from a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return [random_workload(rng, index) for index in range(size)]


def suite_workloads(suite: Suite | str, *, seed: int = 0) -> list[Workload]:
    """Return the workloads of ``suite`` (``standard``, ``random`` or ``all``).

    Raises
    ------
    ConfigError
        If ``suite`` is not a known suite name.
    """
    try:
        chosen = Suite(suite)
    except ValueError:
        known = ", ".join(s.value for s in Suite)
        raise ConfigError(f"unknown suite {suite!r}; choose one of: {known}") from None
    workloads = []
    if chosen in (Suite.STANDARD, Suite.ALL):
        workloads += standard_suite()
    if chosen in (Suite.RANDOM, Suite.ALL):
        workloads += random_suite(seed)
    return workloads
