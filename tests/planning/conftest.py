"""Factories for small applications, profiles and hardware catalogs built in code.

Each fixture returns a function, so tests (hypothesis ones included) can build as many
inputs as they need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from harpagon.model import Application, HardwareCatalog, HardwareType, Module, Profile, ProfileSet


def build_app(
    modules: Sequence[tuple[str, str] | tuple[str, str, float] | tuple[str, str, float, float]],
    edges: Sequence[tuple[str, str]] = (),
    *,
    rate: float = 100.0,
    slo_ms: float = 100.0,
    name: str = "app",
) -> Application:
    """Return an application from ``(name, profile[, overhead_ms[, rate_factor]])`` tuples."""
    return Application(
        name=name,
        rate=rate,
        slo_ms=slo_ms,
        modules=tuple(Module(*spec) for spec in modules),
        edges=tuple(edges),
    )


def build_profiles(table: Mapping[str, Mapping[str, Mapping[int, float]]]) -> ProfileSet:
    """Return profiles from ``{model: {hardware: {batch_size: latency_ms}}}``."""
    return ProfileSet({model: Profile(model, by_hw) for model, by_hw in table.items()})


def build_hardware(
    prices: Mapping[str, float], quotas: Mapping[str, int] | None = None
) -> HardwareCatalog:
    """Return a catalog from ``{hardware: price_per_hour}`` and optional quotas."""
    quotas = quotas or {}
    return HardwareCatalog(
        {name: HardwareType(name, price, quotas.get(name)) for name, price in prices.items()}
    )


@pytest.fixture(scope="session")
def make_app() -> Callable[..., Application]:
    return build_app


@pytest.fixture(scope="session")
def make_profiles() -> Callable[..., ProfileSet]:
    return build_profiles


@pytest.fixture(scope="session")
def make_hardware() -> Callable[..., HardwareCatalog]:
    return build_hardware
