"""Tests of ``harpagon simulate`` through the typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harpagon.cli import app
from harpagon.model import load_hardware, load_profiles, resolve_application
from harpagon.planning.registry import get_planner

runner = CliRunner()


def unwrapped(output: str) -> str:
    """Return ``output`` with rich's line wrapping undone (all whitespace runs as one space)."""
    return " ".join(output.split())


@pytest.fixture(scope="module")
def traffic_plan(tmp_path_factory):
    """A harpagon plan of the shipped traffic application, saved as JSON."""
    path = tmp_path_factory.mktemp("plans") / "traffic.json"
    application = resolve_application("traffic")
    get_planner("harpagon")(application, load_profiles(), load_hardware()).save(path)
    return path


def test_simulate_writes_json(traffic_plan, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["simulate", str(traffic_plan), "--duration", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "SLO attainment" in result.output
    report = json.loads(out.read_text())
    assert report["slo_attainment"] == 1.0
    assert report["requests"] == round(2 * report["rate"])
    assert set(report["latency_ms"]) == {"p50", "p99", "max"}
    assert set(report["modules"]) == {"detector", "car_classifier", "person_classifier"}
    assert report["wall_seconds"] >= 0.0
    assert 0.0 <= report["dummy_share"] < 1.0


def test_simulate_rate_and_dispatch(traffic_plan, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["simulate", str(traffic_plan), "--duration", "2", "--rate", "100",
         "--arrivals", "poisson", "--dispatch", "round_robin", "--jitter", "0.1",
         "--fanout", "poisson", "--seed", "4", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["rate"] == 100.0
    assert 150 <= report["requests"] <= 250
    groups = [g for m in report["modules"].values() for g in m["groups"]]
    assert {g["dispatch"] for g in groups} == {"batch_aware"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arrivals", "bursty"], "unknown arrival process 'bursty'"),
        (["--jitter", "2"], "jitter must be in [0, 1), got 2.0"),
        (["--dispatch", "fifo"], "unknown dispatch mode 'fifo'"),
        (["--rate", "-3"], "--rate must be > 0 req/s, got -3.0"),
        (["--duration", "0"], "duration must be > 0 s, got 0.0"),
        (["--rate", "inf"], "--rate must be a finite number of req/s, got inf"),
        (["--duration", "inf"], "--duration must be a finite number of s, got inf"),
        (["--duration", "1e7"], "is 15,000,000,000 requests, more than the limit of 10,000,000"),
        (["--rate", "1e6", "--duration", "11"], "lower the rate or the duration"),
    ],
)
def test_simulate_bad_option(traffic_plan, extra, message):
    result = runner.invoke(app, ["simulate", str(traffic_plan), *extra])
    assert result.exit_code == 2
    assert message in unwrapped(result.output)


def test_simulate_missing_plan(tmp_path):
    result = runner.invoke(app, ["simulate", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert "plan file not found" in unwrapped(result.output)


def test_simulate_wrong_hardware(traffic_plan, tmp_path):
    catalog = tmp_path / "hardware.yaml"
    catalog.write_text("hardware:\n  - {name: t4, price_per_hour: 0.5}\n")
    result = runner.invoke(app, ["simulate", str(traffic_plan), "--hardware", str(catalog)])
    assert result.exit_code == 2
    assert "unknown hardware" in unwrapped(result.output)
    assert "pass the --app, --profiles and --hardware it was made with" in unwrapped(result.output)


@pytest.mark.parametrize("target", ["directory", "missing folder"])
def test_simulate_unwritable_json(traffic_plan, tmp_path, target):
    path = tmp_path if target == "directory" else tmp_path / "missing" / "report.json"
    result = runner.invoke(app, ["simulate", str(traffic_plan), "--duration", "1", "--json", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"cannot write {path}" in unwrapped(result.output)
    assert "choose a writable path for --json" in unwrapped(result.output)
    assert "SLO attainment" not in result.output
    assert not (tmp_path / "missing").exists()


def test_simulate_plan_of_unshipped_app(traffic_plan, tmp_path):
    data = json.loads(traffic_plan.read_text())
    data["app"] = "warehouse"
    plan_path = tmp_path / "warehouse.json"
    plan_path.write_text(json.dumps(data))
    result = runner.invoke(app, ["simulate", str(plan_path)])
    assert result.exit_code == 2
    assert (
        "the plan is for application 'warehouse', which is not shipped; pass --app FILE "
        "(and --profiles/--hardware if it used others)"
    ) in unwrapped(result.output)
