"""The policy registry."""

from __future__ import annotations

import pytest

from harpagon.errors import ConfigError
from harpagon.planning import registry
from harpagon.planning.harpagon import plan_harpagon
from harpagon.planning.optimal import plan_optimal
from harpagon.planning.registry import Policy, get_planner, known_policies, register


def test_builtin_policies_resolve():
    assert get_planner("harpagon") is plan_harpagon
    assert get_planner(Policy.OPTIMAL) is plan_optimal


def test_unknown_policy_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown policy 'cheapest'; known policies: .*harpagon.*optimal"):
        get_planner("cheapest")


def test_register_adds_and_rejects_duplicates(monkeypatch):
    monkeypatch.setattr(registry, "_PLANNERS", dict(registry._PLANNERS))

    def plan_custom(app, profiles, hardware, *, rate=None, headroom=0.0):
        raise NotImplementedError

    register("custom", plan_custom)
    assert get_planner("custom") is plan_custom
    assert "custom" in known_policies()
    with pytest.raises(ValueError, match="policy 'custom' is already registered"):
        register("custom", plan_custom)
    register("custom", plan_harpagon, replace=True)
    assert get_planner("custom") is plan_harpagon
