"""Worker process and pool tests: batches, runner errors, replacement and start failures."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest

from harpagon.serving.toy import ToyAdapter, _Item
from harpagon.serving.workers import (
    MAX_START_FAILURES,
    BatchError,
    WorkerKey,
    WorkerPool,
    WorkerProcess,
    WorkerSpec,
    WorkerUnavailable,
    thread_environment,
)

pytestmark = pytest.mark.slow

_SCALE = ToyAdapter().runner_factory("scale")


def _spec(worker: int = 0, runner_path: tuple[str, str] = _SCALE) -> WorkerSpec:
    return WorkerSpec(WorkerKey("scale", 0, worker), runner_path, threads=1, hardware="cpu")


def _pool(specs: list[WorkerSpec], replaced: list[str] | None = None) -> WorkerPool:
    return WorkerPool(specs, WorkerProcess, on_replaced=None if replaced is None else replaced.append)


def test_thread_environment_caps_threads() -> None:
    env = thread_environment(3)
    assert env["OMP_NUM_THREADS"] == "3"
    assert env["OPENBLAS_NUM_THREADS"] == "3"
    assert env["MKL_NUM_THREADS"] == "3"


def test_pool_runs_batch() -> None:
    async def run() -> tuple[list, float]:
        pool = _pool([_spec()])
        await pool.start()
        try:
            await pool.wait_ready(60)
            items = [_Item(np.array([1.0, 2.0]), 0.0), _Item(np.array([3.0]), 0.0)]
            return await pool.run_batch("scale", 0, 0, items, 4)
        finally:
            await pool.stop()

    results, execution_ms = asyncio.run(run())
    np.testing.assert_allclose(results[0], [2.0, 4.0])
    np.testing.assert_allclose(results[1], [6.0])
    assert execution_ms >= 0.0


def test_pool_runner_error_is_batch_error() -> None:
    async def run() -> None:
        pool = _pool([_spec()])
        await pool.start()
        try:
            await pool.wait_ready(60)
            items = [_Item(np.array([1.0]), 0.0), _Item(np.array([2.0]), 0.0, fail=True)]
            await pool.run_batch("scale", 0, 0, items, 2)
        finally:
            await pool.stop()

    with pytest.raises(BatchError, match="toy failure requested"):
        asyncio.run(run())


def test_pool_replaces_killed_worker() -> None:
    """A batch in flight on a worker killed with SIGKILL completes on the replacement."""

    async def run() -> tuple[list, int | None, int | None, list[str]]:
        replaced: list[str] = []
        pool = _pool([_spec()], replaced)
        await pool.start()
        try:
            await pool.wait_ready(60)
            old_pid = pool.pids()[WorkerKey("scale", 0, 0)]
            batch = asyncio.ensure_future(
                pool.run_batch("scale", 0, 0, [_Item(np.array([5.0]), 800.0)], 1)
            )
            await asyncio.sleep(0.3)
            os.kill(old_pid, signal.SIGKILL)
            results, _ = await asyncio.wait_for(batch, 60)
            await pool.wait_ready(60)
            return results, old_pid, pool.pids()[WorkerKey("scale", 0, 0)], replaced
        finally:
            await pool.stop()

    results, old_pid, new_pid, replaced = asyncio.run(run())
    np.testing.assert_allclose(results[0], [10.0])
    assert new_pid is not None
    assert new_pid != old_pid
    assert replaced == ["scale"]


def test_pool_redispatches_to_group_peer() -> None:
    """With two workers in the group, a dead worker's batch may go to the live one."""

    async def run() -> list:
        pool = _pool([_spec(0), _spec(1)])
        await pool.start()
        try:
            await pool.wait_ready(60)
            pid = pool.pids()[WorkerKey("scale", 0, 0)]
            batch = asyncio.ensure_future(
                pool.run_batch("scale", 0, 0, [_Item(np.array([1.5]), 800.0)], 1)
            )
            await asyncio.sleep(0.3)
            os.kill(pid, signal.SIGKILL)
            results, _ = await asyncio.wait_for(batch, 60)
            return results
        finally:
            await pool.stop()

    np.testing.assert_allclose(asyncio.run(run())[0], [3.0])


def test_pool_gives_up_on_broken_runner() -> None:
    async def run() -> None:
        pool = _pool([_spec(runner_path=("harpagon.serving.toy", "NoSuchRunner"))])
        await pool.start()
        try:
            await pool.wait_ready(60)
        finally:
            assert len(pool.given_up()) == 1
            await pool.stop()

    with pytest.raises(WorkerUnavailable, match="NoSuchRunner is not a StageRunner"):
        asyncio.run(run())
    assert MAX_START_FAILURES >= 2


def test_ray_backend_serves_toy() -> None:
    """The ray backend on a local Ray instance: a request, a failing batch, a killed actor."""
    ray = pytest.importorskip("ray")
    import httpx

    from harpagon.serving.server import ServingRuntime, running_server
    from harpagon.serving.toy import toy_plan

    plan, profiles, hardware = toy_plan(20.0, batch_ms=5.0)
    body = {"inputs": [{"name": "values", "datatype": "FP32", "shape": [2], "data": [1.0, 3.0]}]}
    failing = {"inputs": body["inputs"] + [{"name": "fail", "datatype": "BOOL", "shape": [1], "data": [True]}]}
    runtimes: list[ServingRuntime] = []
    try:
        with running_server(
            plan, ToyAdapter(batch_ms=5.0), profiles=profiles, hardware=hardware,
            backend="ray", runtime_out=runtimes,
        ) as url:
            infer_url = f"{url}/v2/models/toy/infer"
            response = httpx.post(infer_url, json=body, timeout=60)
            assert response.status_code == 200
            outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
            assert outputs["sum_of_squares"] == [40.0]

            failed = httpx.post(infer_url, json=failing, timeout=60)
            assert failed.status_code == 500
            assert "toy failure requested" in failed.json()["error"]

            actor = runtimes[0].pool.handles[WorkerKey("scale", 0, 0)].actor
            ray.kill(actor, no_restart=True)
            response = httpx.post(infer_url, json=body, timeout=120)
            assert response.status_code == 200
            assert runtimes[0].pool.handles[WorkerKey("scale", 0, 0)].actor != actor
    finally:
        if ray.is_initialized():
            ray.shutdown()


def test_pool_unknown_worker_unavailable() -> None:
    async def run() -> None:
        pool = _pool([_spec()])
        await pool.start()
        try:
            await pool.wait_ready(60)
            await pool.run_batch("scale", 1, 0, [_Item(np.array([1.0]), 0.0)], 1)
        finally:
            await pool.stop()

    with pytest.raises(WorkerUnavailable, match=r"the plan has no worker scale\[group 1, worker 0\]"):
        asyncio.run(run())
