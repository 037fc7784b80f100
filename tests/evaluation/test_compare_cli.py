"""Tests of ``harpagon compare``: outputs on the standard suite and bad options."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from harpagon.cli import app

runner = CliRunner()


def test_compare_writes_json_markdown_and_plot(tmp_path):
    out_json = tmp_path / "compare.json"
    out_md = tmp_path / "compare.md"
    out_png = tmp_path / "compare.png"
    result = runner.invoke(app, [
        "compare", "--suite", "standard", "--policies", "harpagon,scrooge",
        "--simulate-s", "0", "--no-progress", "--json", str(out_json),
        "--markdown", str(out_md), "--plot", str(out_png),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert data["workloads"] >= 100
    assert set(data["policies"]) == {"harpagon", "scrooge"}
    row = data["policies"]["scrooge"]
    for key in ("cost_ratio_median", "cost_ratio_min", "cost_ratio_max", "cheaper_share",
                "valid_share", "slo_met_share", "planning_ms_median"):
        assert key in row
    assert "harpagon_optimal_share" in data
    assert "| scrooge |" in out_md.read_text()
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_unknown_policy_exits_2():
    result = runner.invoke(app, ["compare", "--policies", "harpagon,cheapest", "--simulate-s", "0"])
    assert result.exit_code == 2
    assert "unknown policy 'cheapest'" in result.output


def test_compare_unknown_suite_exits_2():
    result = runner.invoke(app, ["compare", "--suite", "huge", "--simulate-s", "0"])
    assert result.exit_code == 2
    assert "unknown suite 'huge'" in result.output


def test_compare_negative_simulation_time_exits_2():
    result = runner.invoke(app, ["compare", "--simulate-s", "-1"])
    assert result.exit_code == 2
    assert "--simulate-s must be >= 0 seconds, got -1.0" in result.output
