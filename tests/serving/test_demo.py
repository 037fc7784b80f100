"""Tests of the end-to-end demo: histogram arithmetic, input checks, and one real run."""

from __future__ import annotations

import json
import math
import time

import pytest
from typer.testing import CliRunner

from harpagon.cli import app as cli_app
from harpagon.errors import ConfigError
from harpagon.serving.demo import (
    DemoResult,
    HistogramSnapshot,
    cpu_sample,
    demo_application,
    histogram_quantile,
    parse_module_histograms,
    run_demo,
    verdict,
)
from harpagon.serving.metrics import ServingMetrics

# --- Histogram quantiles -----------------------------------------------------------------------


def _snapshot(counts: dict[float, float]) -> HistogramSnapshot:
    # counts: upper bound -> observations in that bucket (not cumulative).
    cumulative, buckets = 0.0, []
    for bound in sorted(counts):
        cumulative += counts[bound]
        buckets.append((bound, cumulative))
    return HistogramSnapshot(tuple(buckets), total=0.0, count=cumulative)


def test_histogram_quantile_interpolates_in_bucket() -> None:
    # 10 observations in (0, 10], 30 in (10, 20], none above.
    snap = _snapshot({10.0: 10, 20.0: 30, math.inf: 0})

    # Rank 20 of 40 is the 10th of 30 in the second bucket: 10 + 10 * 10 / 30.
    assert histogram_quantile(0.5, snap) == pytest.approx(10.0 + 10.0 / 3.0)
    # Rank 5 is half-way through the first bucket, which starts at 0.
    assert histogram_quantile(0.125, snap) == pytest.approx(5.0)
    assert histogram_quantile(1.0, snap) == pytest.approx(20.0)


def test_histogram_quantile_skips_empty_buckets() -> None:
    snap = _snapshot({1.0: 0, 2.0: 4, 4.0: 0, 8.0: 4, math.inf: 0})

    # Rank 6 of 8 is the 2nd of 4 in (4, 8]: the empty (2, 4] bucket is its lower edge.
    assert histogram_quantile(0.75, snap) == pytest.approx(6.0)


def test_histogram_quantile_in_inf_bucket() -> None:
    snap = _snapshot({1.0: 1, math.inf: 3})

    assert histogram_quantile(0.99, snap) == 1.0


def test_histogram_quantile_empty_is_nan() -> None:
    snap = _snapshot({1.0: 0, math.inf: 0})

    assert math.isnan(histogram_quantile(0.5, snap))


def test_snapshot_minus_keeps_new_observations() -> None:
    before = HistogramSnapshot(((1.0, 2.0), (math.inf, 3.0)), total=2.5, count=3.0)
    after = HistogramSnapshot(((1.0, 5.0), (math.inf, 9.0)), total=10.5, count=9.0)

    delta = after.minus(before)

    assert delta.buckets == ((1.0, 3.0), (math.inf, 6.0))
    assert delta.total == pytest.approx(8.0)
    assert delta.count == 6.0
    assert delta.mean == pytest.approx(8.0 / 6.0)


# --- /metrics parsing --------------------------------------------------------------------------


def test_parse_module_histograms_from_runtime_metrics() -> None:
    metrics = ServingMetrics()
    for seconds in (0.02, 0.03, 0.2):
        metrics.execution_time.labels("det").observe(seconds)
    metrics.observe_batch("det", 3, 4, [5.0, 7.0, 300.0])
    metrics.observe_batch("rec", 1, 1, [1.0])

    parsed = parse_module_histograms(metrics.render().decode())

    det = parsed["det"]
    assert det["execution_ms"].count == 3
    assert det["execution_ms"].total == pytest.approx(250.0)
    # Bucket bounds are converted to ms: 3 observations at or below 250 ms.
    assert dict(det["execution_ms"].buckets)[250.0] == 3
    assert dict(det["execution_ms"].buckets)[25.0] == 1
    assert det["queue_ms"].count == 3
    assert det["queue_ms"].total == pytest.approx(312.0)
    assert det["batch_size"].count == 1
    assert det["batch_size"].mean == 3.0
    assert parsed["rec"]["batch_size"].mean == 1.0
    assert "execution_ms" not in parsed["rec"] or parsed["rec"]["execution_ms"].count == 0


# --- Inputs ------------------------------------------------------------------------------------


def test_demo_application_rate_override() -> None:
    app = demo_application(rate=2.5)

    assert app.name == "ocr"
    assert app.rate == 2.5
    assert [m.name for m in app.modules] == ["det", "cls", "rec"]


def test_run_demo_rejects_bad_duration() -> None:
    with pytest.raises(ConfigError, match=r"--duration must be > 0 s, got 0"):
        run_demo(duration_s=0.0)


def test_run_demo_rejects_bad_port() -> None:
    with pytest.raises(ConfigError, match=r"--port must be between 0 and 65535, got 70000"):
        run_demo(port=70000)


def test_run_demo_rejects_bad_statistic() -> None:
    with pytest.raises(ConfigError, match=r"--statistic must be one of mean, p99, got 'median'"):
        run_demo(statistic="median")


def test_demo_command_bad_rate() -> None:
    result = CliRunner().invoke(cli_app, ["demo", "--rate", "-2"])

    assert result.exit_code == 2
    assert "--rate must be > 0 req/s, got -2.0" in result.output


# --- One real run ------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_command_real_models(tmp_path) -> None:
    """Profiles (cached after the first run), plans, serves and loads the real OCR models for 5 s."""
    output = tmp_path / "demo.json"

    result = CliRunner().invoke(cli_app, ["demo", "--duration", "5", "--json", str(output)])

    assert result.exit_code == 0, result.output
    data = json.loads(output.read_text())
    planned, measured = data["planned"], data["measured"]
    assert planned["app"] == "ocr"
    assert planned["policy"] == "harpagon"
    assert planned["profile_statistic"] == "p99"
    assert [m["name"] for m in planned["modules"]] == ["det", "cls", "rec"]
    for module in planned["modules"]:
        for group in module["groups"]:
            assert group["batch_latency_ms"] > 0
    # The bench --json shape, with one request per planned interval.
    assert measured["scheduled"] == round(5 * planned["rate"])
    assert measured["ok"] + measured["errors"] == measured["scheduled"]
    assert 0.0 <= measured["slo_attainment"] <= 1.0
    assert measured["slo_ms"] == planned["slo_ms"]
    assert set(measured["latency_ms"]) >= {"p50", "p99", "max"}
    assert "throughput_rps" in measured
    # Every module ran batches during the measured run.
    assert measured["modules"]["det"]["batches"] > 0
    assert measured["modules"]["det"]["execution_ms"]["mean"] > 0
    assert measured["modules"]["det"]["slowdown"] == pytest.approx(
        measured["modules"]["det"]["execution_ms"]["mean"] / planned["modules"][0]["groups"][0]["batch_latency_ms"]
    )
    assert measured["host"]["cpus"] >= 1
    assert measured["host"]["demo_cpu_cores"] > 0
    assert measured["host"]["other_cpu_cores"] >= 0
    assert "SLO attainment" in result.output


# --- Verdict -----------------------------------------------------------------------------------


def _result(
    attainment: float, *, slowdown: float = 1.0, load: float = 0.5, other: float = 0.1, rejected: int = 0
) -> DemoResult:
    measured = {
        "slo_attainment": attainment,
        "errors_by_kind": {"http_503": rejected} if rejected else {},
        "send_lag_ms": {"p50": 0.5, "p99": 1.0, "max": 2.0},
        "modules": {"det": {"slowdown": slowdown}, "rec": {"slowdown": 1.0}},
        "host": {"cpus": 2, "load_average_1m": load, "demo_cpu_cores": 0.8, "other_cpu_cores": other},
    }
    return DemoResult(planned={}, measured=measured)


def test_verdict_target_met() -> None:
    lines = verdict(_result(0.995))

    assert len(lines) == 1
    assert "target met: 99.50%" in lines[0]


def test_verdict_names_causes_of_miss() -> None:
    lines = verdict(_result(0.4, slowdown=3.0, load=6.0, other=1.2, rejected=7))

    assert "target missed: 40.00%" in lines[0]
    assert any("det 3.0x" in line and "rec" not in line for line in lines)
    assert any("other processes used 1.20 of the 2 cores" in line for line in lines)
    assert any("7 requests were rejected (HTTP 503)" in line for line in lines)


def test_verdict_miss_without_known_cause() -> None:
    lines = verdict(_result(0.9))

    assert lines == ["[red]target missed: 90.00% of requests within the SLO (target 99%)[/red]"]


def test_cpu_sample_counts_own_work() -> None:
    before = cpu_sample()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        pass  # busy loop: this process uses one core
    after = cpu_sample()

    assert before is not None
    assert after is not None
    own_s = after["own_s"] - before["own_s"]
    wall_s = after["wall_s"] - before["wall_s"]
    # One busy thread uses some CPU, and no more than the wall time (plus one 10 ms tick each side).
    assert own_s > 0
    assert own_s <= wall_s + 0.02
