"""Tests of the open-loop load generator against a small FastAPI server started here."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from typer.testing import CliRunner

from harpagon.cli import app as cli_app
from harpagon.errors import ConfigError
from harpagon.serving.loadgen import (
    DROPPED,
    INFERENCE_HEADER_LENGTH,
    InferRequest,
    RequestRecord,
    build_schedule,
    check_bench_options,
    encode_infer_request,
    fetch_slo_ms,
    load_image_dir,
    run_bench,
    run_open_loop,
    summarize,
)
from harpagon.simulation.arrivals import make_arrivals


# --- A test server ---------------------------------------------------------------------------


class _ServerState:
    """What the test server saw; the apps below read and write it."""

    def __init__(self) -> None:
        self.arrivals = 0
        self.payloads: list[bytes] = []
        self.gate_size = 0
        self.gate: asyncio.Event | None = None


def _make_app(state: _ServerState) -> FastAPI:
    app = FastAPI()

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> JSONResponse:
        if name == "missing":
            return JSONResponse({"error": "unknown model"}, status_code=404)
        return JSONResponse({"name": name, "platform": "test", "parameters": {"slo_ms": 250.0}})

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> JSONResponse:
        body = await request.body()
        header_length = int(request.headers[INFERENCE_HEADER_LENGTH])
        header = json.loads(body[:header_length])
        assert header["inputs"][0]["datatype"] == "BYTES"
        (size,) = struct.unpack("<I", body[header_length:header_length + 4])
        state.payloads.append(body[header_length + 4:header_length + 4 + size])
        state.arrivals += 1
        arrival = state.arrivals

        # "gate": hold every request until gate_size requests have arrived (or 3 s passed).
        if name == "gate":
            if state.gate is None:
                state.gate = asyncio.Event()
            if arrival >= state.gate_size:
                state.gate.set()
            try:
                await asyncio.wait_for(state.gate.wait(), timeout=3.0)
            except TimeoutError:
                return JSONResponse({"error": "gate timed out"}, status_code=504)
        # "flaky": every 4th request fails with 503 and every 10th with 400.
        if name == "flaky":
            if arrival % 10 == 0:
                return JSONResponse({"error": "bad input"}, status_code=400)
            if arrival % 4 == 0:
                return JSONResponse({"error": "overloaded"}, status_code=503)
        # "slow": a delay that grows with the arrival count, so latencies spread out.
        if name == "slow":
            await asyncio.sleep(0.002 * (arrival % 7))
        return JSONResponse({"model_name": name, "outputs": []})

    return app


@pytest.fixture()
def server() -> Iterator[tuple[str, _ServerState]]:
    """Start the test server on a free 127.0.0.1 port in a thread; yield (base URL, state)."""
    state = _ServerState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_make_app(state), log_level="warning", lifespan="off")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not uvicorn_server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start within 10 s")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", state
    uvicorn_server.should_exit = True
    thread.join(timeout=10.0)
    sock.close()


def _schedule(count: int, rate: float) -> list[float]:
    return [i / rate for i in range(count)]


# --- Pure report arithmetic --------------------------------------------------------------------


def _record(index: int, latency_ms: float | None, error: str | None = None, status: int | None = 200) -> RequestRecord:
    scheduled = index * 0.01
    if latency_ms is None:
        return RequestRecord(index, scheduled, None, None, None, error)
    done = scheduled + latency_ms / 1000.0
    return RequestRecord(index, scheduled, scheduled + 0.001, done, status, error)


def test_summarize_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(7)
    latencies = rng.gamma(2.0, 20.0, size=200)
    records = [_record(i, float(value)) for i, value in enumerate(latencies)]

    report = summarize(records, duration_s=2.0, slo_ms=None)

    measured = np.array([r.latency_ms for r in records])
    assert report.latency_ms["p50"] == pytest.approx(np.percentile(measured, 50))
    assert report.latency_ms["p90"] == pytest.approx(np.percentile(measured, 90))
    assert report.latency_ms["p99"] == pytest.approx(np.percentile(measured, 99))
    assert report.latency_ms["max"] == pytest.approx(measured.max())
    assert report.latency_ms["mean"] == pytest.approx(measured.mean())
    assert report.slo_attainment is None


def test_summarize_counts_errors_as_slo_misses() -> None:
    records = [
        _record(0, 10.0),
        _record(1, 30.0),
        _record(2, 60.0),  # ok but over the SLO
        _record(3, 5.0, error="http_503", status=503),  # fast, but an error
        _record(4, None, error=DROPPED),
    ]

    report = summarize(records, duration_s=0.05, slo_ms=50.0)

    assert report.scheduled == 5
    assert report.sent == 4
    assert report.ok == 3
    assert report.errors == 2
    assert report.errors_by_kind == {DROPPED: 1, "http_503": 1}
    assert report.status_codes == {"200": 3, "503": 1}
    assert report.slo_attainment == pytest.approx(2 / 5)
    assert report.offered_rate_rps == pytest.approx(100.0)
    # The last response is record 2's, scheduled at 0.02 s with 60 ms latency: after the schedule.
    assert report.elapsed_s == pytest.approx(0.08)
    assert report.throughput_rps == pytest.approx(3 / 0.08)
    # Only successful requests enter the latency percentiles.
    assert report.latency_ms["max"] == pytest.approx(60.0)


def test_summarize_without_successes_reports_nan() -> None:
    records = [_record(0, None, error=DROPPED)]

    report = summarize(records, duration_s=1.0, slo_ms=100.0)
    data = report.to_dict()

    assert report.slo_attainment == 0.0
    assert data["latency_ms"]["p50"] is None
    assert data["throughput_rps"] == 0.0


def test_encode_infer_request_binary_bytes() -> None:
    payload = b"\x89PNG\x00\xff"

    request = encode_infer_request(payload, "image")

    header_length = int(request.headers[INFERENCE_HEADER_LENGTH])
    (tensor,) = json.loads(request.body[:header_length])["inputs"]
    assert tensor["name"] == "image"
    assert tensor["datatype"] == "BYTES"
    assert tensor["shape"] == [1]
    assert tensor["parameters"] == {"binary_data_size": 4 + len(payload)}
    assert request.body[header_length:] == struct.pack("<I", len(payload)) + payload


# --- Schedules ---------------------------------------------------------------------------------


def test_build_schedule_uniform_spacing() -> None:
    schedule = build_schedule("uniform", rate=20.0, duration_s=2.0)

    assert len(schedule) == 40
    assert np.allclose(np.diff(schedule), 0.05)


def test_build_schedule_matches_simulator_arrivals() -> None:
    schedule = build_schedule("poisson", rate=50.0, duration_s=4.0, seed=3)

    expected_ms = make_arrivals("poisson", 50.0, 4.0, np.random.default_rng([3, 1]))
    assert np.allclose(np.asarray(schedule) * 1000.0, expected_ms)


def test_build_schedule_trace_scaled_to_rate(tmp_path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join(str(t) for t in (0.0, 0.5, 0.75, 2.0)) + "\n")

    schedule = build_schedule(f"trace:{trace}", rate=3.0, duration_s=10.0)

    # Replayed at 3 req/s on average, over 10 s.
    assert len(schedule) == pytest.approx(30, abs=3)
    assert all(0.0 <= t < 10.0 for t in schedule)


def test_build_schedule_unknown_process() -> None:
    with pytest.raises(ConfigError, match=r"unknown arrival process 'bursty'"):
        build_schedule("bursty", rate=1.0, duration_s=1.0)


# --- Bad input ---------------------------------------------------------------------------------


def test_load_image_dir_missing(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"--images .*nowhere: directory not found"):
        load_image_dir(tmp_path / "nowhere")


def test_load_image_dir_without_images(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")

    with pytest.raises(ConfigError, match=r"no image files found"):
        load_image_dir(tmp_path)


def test_load_image_dir_reads_sorted_images(tmp_path) -> None:
    (tmp_path / "b.PNG").write_bytes(b"second")
    (tmp_path / "a.jpg").write_bytes(b"first")
    (tmp_path / "c.txt").write_bytes(b"skipped")

    assert load_image_dir(tmp_path) == [b"first", b"second"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 0.0, "duration_s": 1.0}, r"--rate must be > 0 req/s, got 0.0"),
        ({"rate": 1.0, "duration_s": -1.0}, r"--duration must be > 0 s, got -1.0"),
        ({"rate": 1.0, "duration_s": 1.0, "slo_ms": 0.0}, r"--slo-ms must be > 0 ms, got 0.0"),
        ({"rate": 1.0, "duration_s": 1.0, "timeout_s": 0.0}, r"--timeout must be > 0 s, got 0.0"),
        ({"rate": float("inf"), "duration_s": 1.0}, r"--rate must be a finite number of req/s, got inf"),
        ({"rate": 1.0, "duration_s": float("inf")}, r"--duration must be a finite number of s, got inf"),
        ({"rate": 1.0, "duration_s": 1.0, "slo_ms": float("inf")},
         r"--slo-ms must be a finite number of ms, got inf"),
    ],
)
def test_check_bench_options_rejects(options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_bench_options(**options)


def test_open_loop_rejects_zero_in_flight() -> None:
    with pytest.raises(ConfigError, match=r"--max-in-flight must be an integer >= 1, got 0"):
        asyncio.run(run_open_loop("http://127.0.0.1:9/x", [encode_infer_request(b"")], [0.0], max_in_flight=0))


def test_fetch_slo_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    with pytest.raises(ConfigError, match=r"cannot reach .*is the server running"):
        fetch_slo_ms(f"http://127.0.0.1:{port}", "ocr", timeout_s=2.0)


# --- Against the test server -------------------------------------------------------------------


@pytest.mark.slow
def test_open_loop_sends_while_server_blocks(server) -> None:
    """Every request is held until all have arrived: only an open-loop generator can finish."""
    base_url, state = server
    state.gate_size = 8
    requests = [encode_infer_request(b"img")]

    records = asyncio.run(
        run_open_loop(f"{base_url}/v2/models/gate/infer", requests, _schedule(8, 40.0), timeout_s=10.0)
    )

    assert [r.error for r in records] == [None] * 8
    assert state.arrivals == 8
    # Every request was sent before any response came back.
    first_done = min(r.done_s for r in records)
    assert all(r.sent_s < first_done for r in records)


@pytest.mark.slow
def test_open_loop_drops_over_in_flight_limit(server) -> None:
    base_url, state = server
    state.gate_size = 100  # never reached: the held requests time out
    requests = [encode_infer_request(b"img")]

    records = asyncio.run(
        run_open_loop(
            f"{base_url}/v2/models/gate/infer", requests, _schedule(5, 200.0), max_in_flight=3, timeout_s=1.0
        )
    )

    assert [r.error for r in records[3:]] == [DROPPED, DROPPED]
    assert [r.error for r in records[:3]] == ["ReadTimeout"] * 3
    assert state.arrivals == 3


@pytest.mark.slow
def test_run_bench_counts_status_codes(server) -> None:
    base_url, _ = server
    requests = [encode_infer_request(b"img")]

    report = run_bench(base_url, "flaky", requests, _schedule(40, 200.0), duration_s=0.2, slo_ms=10_000.0)

    # Arrivals 10, 20, 30, 40 get 400; 4, 8, 12, 16, 24, 28, 32, 36 get 503.
    assert report.scheduled == 40
    assert report.sent == 40
    assert report.ok == 28
    assert report.status_codes == {"200": 28, "400": 4, "503": 8}
    assert report.errors_by_kind == {"http_400": 4, "http_503": 8}
    assert report.slo_attainment == pytest.approx(28 / 40)


@pytest.mark.slow
def test_run_bench_percentiles_match_records(server) -> None:
    base_url, _ = server
    requests = [encode_infer_request(b"img")]
    schedule = _schedule(60, 100.0)
    infer_url = f"{base_url}/v2/models/slow/infer"

    records = asyncio.run(run_open_loop(infer_url, requests, schedule))
    report = summarize(records, duration_s=0.6, slo_ms=None)

    latencies = np.array([1000.0 * (r.done_s - r.scheduled_s) for r in records])
    assert report.ok == 60
    for name, q in {"p50": 50, "p90": 90, "p99": 99, "max": 100}.items():
        assert report.latency_ms[name] == pytest.approx(np.percentile(latencies, q)), name
    assert all(r.send_lag_ms >= 0 for r in records)


@pytest.mark.slow
def test_run_bench_reads_slo_from_metadata(server) -> None:
    base_url, state = server
    images = [b"first", b"second", b"third"]
    requests = [encode_infer_request(image) for image in images]

    report = run_bench(base_url, "echo", requests, _schedule(6, 100.0), duration_s=0.06)

    assert report.slo_ms == 250.0
    assert report.slo_attainment is not None
    # The images were sent in turn.
    assert sorted(state.payloads) == sorted(images * 2)


@pytest.mark.slow
def test_fetch_slo_unknown_model(server) -> None:
    base_url, _ = server

    with pytest.raises(ConfigError, match=r"no model 'missing' \(HTTP 404\); check --app"):
        fetch_slo_ms(base_url, "missing")


@pytest.mark.slow
def test_bench_command_writes_json(server, tmp_path) -> None:
    base_url, state = server
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"first")
    output = tmp_path / "report.json"

    result = CliRunner().invoke(cli_app, [
        "bench", "--url", base_url, "--app", "echo", "--rate", "50", "--duration", "0.4",
        "--images", str(tmp_path / "images"), "--slo-ms", "1000", "--json", str(output),
    ])

    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert report["scheduled"] == 20
    assert report["ok"] == 20
    assert report["errors"] == 0
    assert report["status_codes"] == {"200": 20}
    assert report["slo_attainment"] == 1.0
    assert set(report["latency_ms"]) >= {"p50", "p99", "max"}
    assert report["throughput_rps"] > 0
    assert state.payloads == [b"first"] * 20


def test_bench_command_bad_rate() -> None:
    result = CliRunner().invoke(cli_app, ["bench", "--rate", "-1"])

    assert result.exit_code == 2
    assert "--rate must be > 0 req/s, got -1.0" in result.output


@pytest.mark.slow
def test_run_bench_against_toy_runtime() -> None:
    """The generator against the real frontend and pipeline, serving the toy application."""
    from harpagon.serving.server import running_server
    from harpagon.serving.toy import ToyAdapter, toy_plan

    plan, profiles, hardware = toy_plan(rate=20.0, batch_ms=5.0)
    body = json.dumps({"inputs": [{"name": "values", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}]})
    request = InferRequest(body.encode(), {"content-type": "application/json"})
    adapter = ToyAdapter(batch_ms=5.0)

    with running_server(plan, adapter, profiles=profiles, hardware=hardware) as url:
        # No slo_ms given: the generator reads it from the server's model metadata.
        report = run_bench(url, "toy", [request], _schedule(20, 20.0), duration_s=1.0)

    assert report.ok == 20
    assert report.errors == 0
    assert report.slo_ms == pytest.approx(plan.slo_ms)
    assert report.slo_attainment is not None
