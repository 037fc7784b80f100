"""Model profiles: the batch execution time d(h, b) in ms per hardware type and batch size.

Only profiled batch sizes exist; nothing is interpolated. One worker's throughput at batch
size ``b`` is ``1000 b / d`` requests per second.

``latency_ms`` is the table that planners read. A profile may also carry the 99th
percentile of its measurements; :meth:`Profile.with_statistic` returns a copy whose
``latency_ms`` is that statistic, for plans that must hold for nearly every batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from harpagon.errors import ConfigError

__all__ = ["PROFILE_STATISTICS", "Profile", "ProfileSet"]

PROFILE_STATISTICS = ("mean", "p99")
"""Statistics of the measured batch times that a profile can be planned on."""


@dataclass(frozen=True)
class Profile:
    """Measured batch latencies of one model."""

    model: str
    latency_ms: Mapping[str, Mapping[int, float]]
    """hardware name -> batch size -> batch execution time in ms, as the ``statistic`` below."""
    source: str = ""
    path: str = "<memory>"
    p99_latency_ms: Mapping[str, Mapping[int, float]] | None = None
    """hardware name -> batch size -> 99th percentile batch execution time in ms, if measured."""
    statistic: str = "mean"
    """Statistic in ``latency_ms``: ``mean``, or ``p99`` after :meth:`with_statistic`."""

    def with_statistic(self, statistic: str) -> Profile:
        """Return a copy whose ``latency_ms`` is the chosen statistic of the measurements.

        With ``"p99"``, each (hardware, batch size) takes its 99th percentile where one was
        measured and keeps the mean elsewhere, so every profiled configuration stays
        available. The copy's ``p99_latency_ms`` is unchanged.

        Raises
        ------
        ConfigError
            If ``statistic`` is not ``mean`` or ``p99``, or ``mean`` is requested from a
            profile that already contains p99 values.
        """
        if statistic not in PROFILE_STATISTICS:
            raise ConfigError(
                f"unknown profile statistic {statistic!r}; use one of {', '.join(PROFILE_STATISTICS)}"
            )
        if statistic == self.statistic:
            return self
        if self.statistic != "mean":
            raise ConfigError(
                f"{self.path}: profile {self.model!r} already contains {self.statistic} latencies "
                "and no longer the mean; load the profiles again to plan on the mean"
            )
        p99 = self.p99_latency_ms or {}
        latency_ms = {
            hardware: {
                batch_size: p99.get(hardware, {}).get(batch_size, mean_ms)
                for batch_size, mean_ms in by_size.items()
            }
            for hardware, by_size in self.latency_ms.items()
        }
        return replace(self, latency_ms=latency_ms, statistic=statistic)

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

    def with_statistic(self, statistic: str) -> ProfileSet:
        """Return the set with every profile's ``latency_ms`` set to ``statistic`` (see :meth:`Profile.with_statistic`)."""
        profiles = {name: profile.with_statistic(statistic) for name, profile in self.profiles.items()}
        return ProfileSet(profiles, self.path)

    def merged(self, other: ProfileSet) -> ProfileSet:
        """Return a set holding both; ``other`` wins on a model present in both."""
        return ProfileSet({**self.profiles, **other.profiles}, f"{self.path} + {other.path}")
