"""Pipeline tests on the toy application with in-process runners (no worker processes)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from harpagon.errors import ConfigError
from harpagon.model.validate import validate_plan
from harpagon.serving.metrics import ServingMetrics
from harpagon.serving.pipeline import Pipeline
from harpagon.serving.stages import load_runner_class
from harpagon.serving.toy import ToyAdapter, toy_plan
from harpagon.serving.workers import BatchError


class _InProcessWorkers:
    """Runs batches with the toy runners in this process and records every batch."""

    def __init__(self, adapter: ToyAdapter, fail_module: str | None = None) -> None:
        self.runners = {
            module: load_runner_class(adapter.runner_factory(module))(1)
            for module in adapter.application.topological_order
        }
        self.fail_module = fail_module
        self.batches: list[tuple[str, int, int, int, int]] = []

    async def run_batch(
        self, module: str, group: int, worker: int, items: list[Any], batch_size: int
    ) -> tuple[list[Any], float]:
        self.batches.append((module, group, worker, len(items), batch_size))
        if module == self.fail_module:
            raise BatchError(f"{module} failed on purpose")
        return self.runners[module].run_batch(items, batch_size), 0.0


def _values(data: list[float]) -> dict[str, Any]:
    return {"values": {"datatype": "FP32", "shape": [len(data)], "data": np.asarray(data, np.float32)}}


async def _serve(
    inputs: list[dict[str, Any]], *, fail_module: str | None = None, batch_size: int = 2,
    clock: str = "capacity",
) -> tuple[list[Any], _InProcessWorkers, Pipeline]:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=1.0, batch_size=batch_size)
    adapter = ToyAdapter(batch_ms=0.0)
    start_ms = validate_plan(plan, adapter.application, profiles, hardware).start_ms
    workers = _InProcessWorkers(adapter, fail_module)
    pipeline = Pipeline(plan, adapter, start_ms, workers.run_batch, ServingMetrics(), clock=clock)
    pipeline.start()
    futures = [pipeline.submit(adapter.decode(item)) for item in inputs]
    results = await asyncio.gather(*futures, return_exceptions=True)
    pipeline.close()
    return results, workers, pipeline


def test_pipeline_fan_out_and_join() -> None:
    results, workers, _ = asyncio.run(_serve([_values([1.0, 2.0, 3.0])]))
    outputs = results[0]
    np.testing.assert_allclose(outputs["doubled"], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(outputs["squares"], [4.0, 16.0, 36.0])
    np.testing.assert_allclose(outputs["total"], [12.0])
    np.testing.assert_allclose(outputs["sum_of_squares"], [56.0])
    square_requests = sum(size for module, _, _, size, _ in workers.batches if module == "square")
    assert square_requests == 3


def test_pipeline_empty_fan_out_finishes() -> None:
    """A request with no values gives ``square`` zero items; ``join`` must still run."""
    results, workers, _ = asyncio.run(_serve([_values([])]))
    outputs = results[0]
    assert outputs["squares"].shape == (0,)
    np.testing.assert_allclose(outputs["sum_of_squares"], [0.0])
    assert all(module != "square" for module, *_ in workers.batches)


def test_pipeline_many_requests_keep_order() -> None:
    inputs = [_values([float(i), float(i + 1)]) for i in range(12)]
    results, workers, _ = asyncio.run(_serve(inputs))
    for i, outputs in enumerate(results):
        np.testing.assert_allclose(outputs["doubled"], [2.0 * i, 2.0 * (i + 1)])
        np.testing.assert_allclose(outputs["total"], [4.0 * i + 2.0])
    for module, group, worker, size, batch_size in workers.batches:
        assert 1 <= size <= batch_size, (module, size)
        assert (group, worker) == (0, 0)


def test_pipeline_planned_clock_pads_batches() -> None:
    inputs = [_values([1.0]) for _ in range(8)]
    _, workers, _ = asyncio.run(_serve(inputs, batch_size=4, clock="planned"))
    assert {batch_size for *_, batch_size in workers.batches} == {4}


def test_pipeline_capacity_clock_runs_real_items() -> None:
    """Capacity clocks send partial batches; they run with their real items only."""
    inputs = [_values([1.0]) for _ in range(5)]
    _, workers, pipeline = asyncio.run(_serve(inputs, batch_size=4, clock="capacity"))
    assert all(size == run_size for *_, size, run_size in workers.batches)
    assert any(size < 4 for *_, size, _ in workers.batches)


def test_pipeline_unknown_clock_rejected() -> None:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=1.0)
    adapter = ToyAdapter(batch_ms=0.0)
    start_ms = validate_plan(plan, adapter.application, profiles, hardware).start_ms
    with pytest.raises(ConfigError, match="unknown batch clock 'fast'"):
        Pipeline(plan, adapter, start_ms, _InProcessWorkers(adapter).run_batch, ServingMetrics(), clock="fast")


def test_pipeline_batch_error_fails_every_request() -> None:
    inputs = [_values([1.0, 2.0]) for _ in range(5)]
    results, _, pipeline = asyncio.run(_serve(inputs, fail_module="total"))
    assert len(results) == 5
    for result in results:
        assert isinstance(result, BatchError)
        assert "total failed on purpose" in str(result)
    assert pipeline.pending_batches() == 0


def test_pipeline_releases_at_planned_start() -> None:
    """A module's request is not batched before arrival plus the module's planned start."""

    async def run() -> tuple[dict[str, float], float, dict[str, float]]:
        plan, profiles, hardware = toy_plan(20.0, batch_ms=1.0)
        adapter = ToyAdapter(batch_ms=0.0)
        start_ms = validate_plan(plan, adapter.application, profiles, hardware).start_ms
        closed_ms: dict[str, float] = {}
        pipeline: Pipeline

        async def run_batch(module: str, group: int, worker: int, items: list[Any], batch_size: int):
            closed_ms.setdefault(module, pipeline.now_ms())
            runner = load_runner_class(adapter.runner_factory(module))(1)
            return runner.run_batch(items, batch_size), 0.0

        pipeline = Pipeline(plan, adapter, start_ms, run_batch, ServingMetrics())
        pipeline.start()
        arrival_ms = pipeline.now_ms()
        await pipeline.submit(adapter.decode(_values([1.0])), arrival_ms=arrival_ms)
        return closed_ms, arrival_ms, start_ms

    closed_ms, arrival_ms, start_ms = asyncio.run(run())
    for module, when_ms in closed_ms.items():
        assert when_ms >= arrival_ms + start_ms[module] - 1e-6, module


@pytest.mark.parametrize("dispatch", ["batch_aware", "round_robin"])
def test_pipeline_forced_dispatch_policy(dispatch: str) -> None:
    async def run() -> list[Any]:
        plan, _, _ = toy_plan(20.0, batch_ms=1.0, workers=2)
        adapter = ToyAdapter(batch_ms=0.0)
        workers = _InProcessWorkers(adapter)
        start_ms = adapter.application.start_offsets_ms({m.name: m.latency_ms for m in plan.modules})
        pipeline = Pipeline(plan, adapter, start_ms, workers.run_batch, ServingMetrics(), dispatch=dispatch)
        pipeline.start()
        futures = [pipeline.submit(adapter.decode(_values([2.0]))) for _ in range(4)]
        return await asyncio.gather(*futures)

    for outputs in asyncio.run(run()):
        np.testing.assert_allclose(outputs["sum_of_squares"], [16.0])
