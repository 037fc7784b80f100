"""Tests of the plan records and their JSON form: round trip, unknown keys, missing keys."""

from __future__ import annotations

import copy
import json

import pytest

from harpagon.errors import ConfigError
from harpagon.model import Group, ModulePlan, Plan, SharedMachine, SharedMember, load_plan


def sample_plan() -> Plan:
    detector = ModulePlan(
        name="detector", profile="ssd", rate=300.0, budget_ms=200.0, latency_ms=196.5,
        cost_per_hour=6.7, shaping_ms=0.0,
        groups=(
            Group("v100", 16, 2, 280.0, 0.0, "batch_aware", 190.2),
            Group("t4", 4, 1, 20.0, 6.5, "batch_aware", 196.5),
        ),
    )
    classifier = ModulePlan(
        name="classifier", profile="resnet", rate=750.0, budget_ms=150.0, latency_ms=60.0,
        cost_per_hour=0.0, shaping_ms=3.3, groups=(),
    )
    shared = SharedMachine("t4", 50.0, (SharedMember("classifier", 38, 750.0),))
    return Plan(
        app="traffic", policy="nexus", rate=300.0, slo_ms=400.0, cost_per_hour=7.226,
        latency_ms=256.5, planning_ms=1.7, modules=(detector, classifier),
        shared_machines=(shared,), lower_bound_cost_per_hour=5.0,
    )


def test_round_trip_through_dict():
    plan = sample_plan()

    assert Plan.from_dict(plan.to_dict()) == plan


def test_round_trip_through_file(tmp_path):
    plan = sample_plan()
    path = tmp_path / "plan.json"

    plan.save(path)

    assert load_plan(path) == plan
    assert path.read_text().endswith("}\n")


def test_json_keys_match_format():
    data = json.loads(sample_plan().to_json())

    assert list(data)[:8] == [
        "app", "policy", "rate", "slo_ms", "cost_per_hour", "latency_ms", "planning_ms", "modules",
    ]
    assert data["shared_machines"] == [
        {"hardware": "t4", "duty_cycle_ms": 50.0,
         "members": [{"module": "classifier", "batch_size": 38, "rate": 750.0}]}
    ]
    group = data["modules"][0]["groups"][1]
    assert group == {
        "hardware": "t4", "batch_size": 4, "workers": 1, "rate": 20.0, "dummy_rate": 6.5,
        "dispatch": "batch_aware", "latency_ms": 196.5,
    }


def test_extra_fields_written_at_top_level():
    plan = sample_plan().with_updates(extra={"search_steps": 12})

    data = plan.to_dict()

    assert data["search_steps"] == 12
    assert "extra" not in data


def test_unknown_keys_ignored():
    data = sample_plan().to_dict()
    data["comment"] = "written by hand"
    data["modules"][0]["notes"] = "main and residual"
    data["modules"][0]["groups"][0]["gpu_memory_gb"] = 16
    data["shared_machines"][0]["zone"] = "us-east-1a"

    assert Plan.from_dict(data) == sample_plan()


def test_optional_keys_default():
    data = sample_plan().to_dict()
    for key in ("planning_ms", "shared_machines", "lower_bound_cost_per_hour"):
        del data[key]
    del data["modules"][0]["shaping_ms"]
    del data["modules"][0]["groups"][0]["dummy_rate"]
    del data["modules"][0]["groups"][0]["dispatch"]

    plan = Plan.from_dict(data)

    assert plan.planning_ms == 0.0
    assert plan.shared_machines == ()
    assert plan.lower_bound_cost_per_hour is None
    assert plan.modules[0].shaping_ms == 0.0
    assert plan.modules[0].groups[0].dummy_rate == 0.0
    assert plan.modules[0].groups[0].dispatch == "batch_aware"


@pytest.mark.parametrize(
    ("remove", "key"),
    [
        (lambda d: d.pop("app"), "app"),
        (lambda d: d.pop("slo_ms"), "slo_ms"),
        (lambda d: d.pop("modules"), "modules"),
        (lambda d: d["modules"][0].pop("budget_ms"), "budget_ms"),
        (lambda d: d["modules"][0]["groups"][0].pop("workers"), "workers"),
        (lambda d: d["shared_machines"][0].pop("duty_cycle_ms"), "duty_cycle_ms"),
    ],
)
def test_missing_key_named(remove, key):
    data = copy.deepcopy(sample_plan().to_dict())
    remove(data)

    with pytest.raises(ConfigError, match=rf"plan\.json: plan is missing the key '{key}'"):
        Plan.from_dict(data, "plan.json")


def test_wrong_type_rejected():
    data = sample_plan().to_dict()
    data["modules"][0]["groups"][0]["batch_size"] = "sixteen"

    with pytest.raises(ConfigError, match=r"plan\.json: plan has a value of the wrong type"):
        Plan.from_dict(data, "plan.json")


def test_load_plan_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"absent\.json: plan file not found"):
        load_plan(tmp_path / "absent.json")


def test_load_plan_invalid_json(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"app": "traffic",\n')

    with pytest.raises(ConfigError, match=r"plan\.json: not valid JSON \(.* at line 2\)"):
        load_plan(path)


def test_load_plan_not_an_object(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("[1, 2]")

    with pytest.raises(ConfigError, match=r"plan\.json: a plan must be a JSON object, got list"):
        load_plan(path)


def test_module_lookup():
    plan = sample_plan()

    assert plan.module("classifier").rate == 750.0
    with pytest.raises(KeyError, match="plan for 'traffic' has no module 'tracker'"):
        plan.module("tracker")


def test_group_collection_rate():
    group = sample_plan().modules[0].groups[1]

    assert group.collection_rate == 26.5
