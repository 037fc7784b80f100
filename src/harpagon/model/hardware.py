"""Hardware types and the catalog that prices them.

Prices are in USD per hour for one worker (one GPU or one CPU slice); ``available`` is the
optional quota of workers of that type.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from harpagon.errors import ConfigError

__all__ = ["HardwareType", "HardwareCatalog"]


@dataclass(frozen=True)
class HardwareType:
    """A rentable worker type."""

    name: str
    price_per_hour: float
    available: int | None = None
    """Quota: the most workers of this type a plan may use; ``None`` for no limit."""
    description: str = ""
    source: str = ""
    """Source of the price."""
    threads: int | None = None
    """Intra-op threads of a CPU worker type; ``None`` for accelerators."""


@dataclass(frozen=True)
class HardwareCatalog:
    """Hardware types by name."""

    types: Mapping[str, HardwareType] = field(default_factory=dict)
    path: str = "<memory>"
    """File the catalog was read from, used in error messages."""

    def __getitem__(self, name: str) -> HardwareType:
        try:
            return self.types[name]
        except KeyError:
            known = ", ".join(sorted(self.types)) or "none"
            raise ConfigError(
                f"{self.path}: unknown hardware type {name!r}; known types: {known}. "
                "Add it to the hardware catalog or use a known name."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __iter__(self) -> Iterator[HardwareType]:
        return iter(self.types.values())

    def __len__(self) -> int:
        return len(self.types)

    def names(self) -> list[str]:
        """Return the hardware names in catalog order."""
        return list(self.types)

    def restricted_to(self, names: list[str]) -> HardwareCatalog:
        """Return a catalog holding only ``names`` (unknown names raise ``ConfigError``)."""
        return HardwareCatalog({name: self[name] for name in names}, self.path)
