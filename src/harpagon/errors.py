"""Exception hierarchy shared by every part of Harpagon.

Each error message names the value that is wrong and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "HarpagonError",
    "ConfigError",
    "InfeasiblePlan",
    "InvalidPlan",
    "OverloadedError",
]


class HarpagonError(Exception):
    """Base class of every error that Harpagon raises on purpose."""


class ConfigError(HarpagonError, ValueError):
    """An input file or option is malformed or inconsistent."""


class InfeasiblePlan(HarpagonError):
    """No deployment meets the SLO (or the quotas) with the given profiles and hardware."""


class InvalidPlan(HarpagonError):
    """A plan breaks the model: capacity, rate conservation, latency, quota or cost.

    Attributes
    ----------
    problems : list of str
        One line per violated rule.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid plan:\n  " + "\n  ".join(self.problems))


class OverloadedError(HarpagonError):
    """The runtime cannot accept more work without breaking its latency bound."""
