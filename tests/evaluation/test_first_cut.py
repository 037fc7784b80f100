"""Tests of the first-cut formula variant on a hand-computed module."""

from __future__ import annotations

import pytest

from harpagon.evaluation.first_cut import LatencyFormula, first_cut_cost_ratio, plan_cost
from harpagon.evaluation.suites import Workload
from harpagon.model import Application, HardwareCatalog, HardwareType, Module, Profile, ProfileSet

CATALOG = HardwareCatalog({"g": HardwareType("g", 1.0)})
PROFILES = ProfileSet({"p": Profile("p", {"g": {1: 10.0, 4: 20.0}})})


def workload(slo_ms: float) -> Workload:
    app = Application("one", 300.0, slo_ms, (Module("m", "p"),))
    return Workload("one", "standard", app, PROFILES, CATALOG)


def test_first_cut_cheaper_when_bound_is_tight():
    # b = 4 (T = 200 req/s), 2 workers at full padding: exact 20 + 20 / 2 = 30 ms,
    # first cut 20 + 20 * 3 / (4 * 2) = 27.5 ms. With a 29 ms SLO the exact bound needs
    # 3 workers (20 + 20 / 3 = 26.7 ms), the first cut 2.
    assert plan_cost(workload(29.0), LatencyFormula.EXACT) == pytest.approx(3.0)
    assert plan_cost(workload(29.0), LatencyFormula.FIRST_CUT) == pytest.approx(2.0)
    assert first_cut_cost_ratio(workload(29.0)) == pytest.approx(1.5)


def test_formulas_agree_when_slo_is_loose():
    assert first_cut_cost_ratio(workload(100.0)) == pytest.approx(1.0)


def test_ratio_none_when_infeasible():
    # Even b = 1 with 7 workers takes 10 + 10 / 7 ms under the exact bound.
    assert first_cut_cost_ratio(workload(10.5)) is None
