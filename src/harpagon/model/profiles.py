"""Model profiles: the batch execution time d(h, b) in ms per hardware type and batch size.

Only profiled batch sizes exist; nothing is interpolated. One worker's throughput at batch
size ``b`` is ``1000 b / d`` requests per second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from harpagon.errors import ConfigError

__all__ = ["Profile", "ProfileSet"]


@dataclass(frozen=True)
class Profile:
    """Measured batch latencies of one model."""

    model: str
    latency_ms: Mapping[str, Mapping[int, float]]
    """hardware name -> batch size -> mean batch execution time in ms."""
    source: str = ""
    path: str = "<memory>"

    def batch_latency_ms(self, hardware: str, batch_size: int) -> float:
        """Return d(hardware, batch_size) in ms.

        Raises
        ------
        ConfigError
            If the model was not profiled on that hardware at that batch size.
        """
        try:
            return self.latency_ms[hardware][batch_size]
        except KeyError:
            sizes = sorted(self.latency_ms.get(hardware, {}))
            raise ConfigError(
                f"{self.path}: model {self.model!r} has no profile for hardware {hardware!r} "
                f"at batch size {batch_size}; profiled sizes there: {sizes or 'none'}"
            ) from None

    def configs(self) -> Iterator[tuple[str, int, float]]:
        """Yield every profiled ``(hardware, batch_size, batch_latency_ms)``."""
        for hardware, by_size in self.latency_ms.items():
            for batch_size, latency in sorted(by_size.items()):
                yield hardware, batch_size, latency

    def hardware_names(self) -> list[str]:
        """Return the hardware types this model was profiled on."""
        return list(self.latency_ms)


@dataclass(frozen=True)
class ProfileSet:
    """Profiles by model name."""

    profiles: Mapping[str, Profile] = field(default_factory=dict)
    path: str = "<memory>"

    def __getitem__(self, model: str) -> Profile:
        try:
            return self.profiles[model]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(
                f"{self.path}: unknown profile {model!r}; known profiles: {known}. "
                "Profile the model (harpagon profile) or fix the module's 'profile' field."
            ) from None

    def __contains__(self, model: object) -> bool:
        return model in self.profiles

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.profiles.values())

    def __len__(self) -> int:
        return len(self.profiles)

    def merged(self, other: ProfileSet) -> ProfileSet:
        """Return a set holding both; ``other`` wins on a model present in both."""
        return ProfileSet({**self.profiles, **other.profiles}, f"{self.path} + {other.path}")
