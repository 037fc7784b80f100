"""Failure tests on the toy server: killed workers, overload, bad input, draining, batch errors."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from harpagon.serving.server import ServingOptions, ServingRuntime, running_server
from harpagon.serving.toy import ToyAdapter, toy_plan
from harpagon.serving.workers import WorkerKey

pytestmark = pytest.mark.slow


def _body(values: list[float], fail: bool = False) -> dict:
    inputs = [{"name": "values", "datatype": "FP32", "shape": [len(values)], "data": values}]
    if fail:
        inputs.append({"name": "fail", "datatype": "BOOL", "shape": [1], "data": [True]})
    return {"inputs": inputs}


def _post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/toy/infer", json=body, timeout=60)


def _paced(url: str, count: int, interval_s: float, during=None) -> list[httpx.Response]:
    # Sends `count` requests `interval_s` apart from a thread pool; calls `during()` halfway.
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = []
        for index in range(count):
            futures.append(pool.submit(_post, url, _body([float(index), 1.0])))
            if during is not None and index == count // 2:
                during()
            time.sleep(interval_s)
        return [future.result() for future in futures]


def test_killed_worker_loses_no_request() -> None:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=40.0, workers={"square": 2})
    runtimes: list[ServingRuntime] = []
    # Requests queue while the replacements start, so the in-flight limit is lifted here.
    options = ServingOptions(max_in_flight=100)
    with running_server(
        plan, ToyAdapter(batch_ms=40.0), profiles=profiles, hardware=hardware,
        runtime_out=runtimes, options=options,
    ) as url:
        pids = runtimes[0].pool.pids()
        victims = [pids[WorkerKey("scale", 0, 0)], pids[WorkerKey("square", 0, 1)]]

        def kill() -> None:
            for pid in victims:
                os.kill(pid, signal.SIGKILL)

        responses = _paced(url, 30, 0.05, during=kill)
        statuses = [response.status_code for response in responses]
        assert statuses == [200] * 30, [r.text for r in responses if r.status_code != 200]
        for index, response in enumerate(responses):
            totals = {o["name"]: o["data"] for o in response.json()["outputs"]}["total"]
            assert totals == [2.0 * index + 2.0]
        new_pids = runtimes[0].pool.pids()
        for key in (WorkerKey("scale", 0, 0), WorkerKey("square", 0, 1)):
            assert new_pids[key] not in victims
        metrics = httpx.get(f"{url}/metrics").text
        assert 'harpagon_worker_replacements_total{module="scale"} 1.0' in metrics


def test_overload_is_503() -> None:
    plan, profiles, hardware = toy_plan(10.0, batch_ms=20.0)
    with running_server(plan, ToyAdapter(batch_ms=20.0), profiles=profiles, hardware=hardware) as url:
        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(lambda i: _post(url, _body([float(i)])), range(40)))
        statuses = [response.status_code for response in responses]
        assert set(statuses) <= {200, 503}
        assert statuses.count(503) > 0
        assert statuses.count(200) > 0
        rejected = [r.json()["error"] for r in responses if r.status_code == 503]
        assert all(message.startswith("overloaded:") for message in rejected)
        assert "planned rate of 10 req/s" in rejected[0] or "requests in flight" in rejected[0]
        metrics = httpx.get(f"{url}/metrics").text
        assert 'harpagon_rejected_total{app="toy",reason="rate"}' in metrics


def test_in_flight_limit_is_503() -> None:
    plan, profiles, hardware = toy_plan(2.0, batch_ms=300.0, batch_size=4, fill=0.9)
    options = ServingOptions(max_backlog_ms=1e9, max_in_flight=2)
    with running_server(
        plan, ToyAdapter(batch_ms=300.0), profiles=profiles, hardware=hardware, options=options
    ) as url:
        with ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(pool.map(lambda i: _post(url, _body([1.0])), range(6)))
        statuses = sorted(response.status_code for response in responses)
        assert statuses.count(503) >= 1
        assert statuses.count(200) >= 1
        message = next(r.json()["error"] for r in responses if r.status_code == 503)
        assert "requests in flight" in message


def test_drain_completes_in_flight_and_rejects_new() -> None:
    plan, profiles, hardware = toy_plan(2.0, batch_ms=250.0, batch_size=4, fill=0.9)
    runtimes: list[ServingRuntime] = []
    with running_server(
        plan, ToyAdapter(batch_ms=250.0), profiles=profiles, hardware=hardware, runtime_out=runtimes
    ) as url:
        runtime = runtimes[0]
        with ThreadPoolExecutor(max_workers=3) as pool:
            in_flight = [pool.submit(_post, url, _body([2.0])) for _ in range(3)]
            for _ in range(3):
                time.sleep(0.06)  # stay within the planned rate
            deadline = time.monotonic() + 10
            while runtime.in_flight < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert runtime.in_flight == 3
            drain = asyncio.run_coroutine_threadsafe(runtime.drain(), runtime.loop)
            time.sleep(0.05)

            rejected = _post(url, _body([1.0]))
            assert rejected.status_code == 503
            assert "shutting down" in rejected.json()["error"]
            assert httpx.get(f"{url}/v2/health/ready").status_code == 503

            responses = [future.result() for future in in_flight]
            drain.result(30)
        assert [response.status_code for response in responses] == [200, 200, 200]
        assert runtime.in_flight == 0


def test_failing_batch_fails_its_requests() -> None:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=30.0, batch_size=4, fill=0.5)
    with running_server(plan, ToyAdapter(batch_ms=30.0), profiles=profiles, hardware=hardware) as url:
        results: dict[str, httpx.Response] = {}

        def send(name: str, fail: bool) -> None:
            results[name] = _post(url, _body([1.0], fail=fail))

        threads = [threading.Thread(target=send, args=(f"r{i}", i == 1)) for i in range(3)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(60)

        failed = results["r1"]
        assert failed.status_code == 500
        assert failed.json() == {"error": "inference failed: RuntimeError: toy failure requested by the 'fail' input"}
        for response in results.values():
            assert response.status_code in (200, 500)
            if response.status_code == 500:
                assert "toy failure requested" in response.json()["error"]
        # The server keeps serving after a failed batch.
        assert _post(url, _body([1.0])).status_code == 200


def test_not_ready_is_503() -> None:
    """Before every worker is up, infer rejects with a clear message instead of queueing."""
    from harpagon.errors import OverloadedError

    plan, profiles, hardware = toy_plan(20.0)
    adapter = ToyAdapter()
    runtime = ServingRuntime(plan, adapter, profiles=profiles, hardware=hardware)
    inputs = {"values": {"datatype": "FP32", "shape": [1], "data": [1.0]}}

    async def run() -> None:
        await runtime.start()
        try:
            await runtime.infer(inputs)
        finally:
            await runtime.stop()

    with pytest.raises(OverloadedError, match="server is not ready: workers are still starting"):
        asyncio.run(run())
