"""A tiny synthetic application for fast runtime tests: numpy stage runners with a fixed sleep.

The ``toy`` application has four modules with a fan-out and a join::

    scale -> square -> join
    scale -> total  -> join

``scale`` doubles the input vector ``values`` (FP32, shape [N]); ``square`` gets one item per
element (fan-out, zero items for N = 0) and squares it; ``total`` sums the doubled vector;
``join`` waits for both and adds up the squares. Outputs: ``doubled`` [N], ``squares`` [N],
``total`` [1] and ``sum_of_squares`` [1], all FP32.

Each batch sleeps ``batch_ms`` (set on the adapter, carried in every item), whatever its
size, so the toy profile is flat in the batch size. An optional input ``fail`` (BOOL, [1])
set to true makes the ``scale`` batch holding that request raise, to test error handling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from harpagon.errors import ConfigError
from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog, HardwareType
from harpagon.model.plan import Plan
from harpagon.model.profiles import Profile, ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan
from harpagon.serving.stages import AppAdapter, RequestState, StageRunner

__all__ = [
    "MAX_VALUES",
    "TOY_BATCH_SIZES",
    "ToyAdapter",
    "toy_application",
    "toy_hardware",
    "toy_plan",
    "toy_profiles",
]

MAX_VALUES = 64
"""Longest ``values`` vector the toy accepts."""

TOY_BATCH_SIZES = (1, 2, 4, 8)
"""Batch sizes in the toy profiles."""

_MODULES = ("scale", "square", "total", "join")
_EDGES = (("scale", "square"), ("scale", "total"), ("square", "join"), ("total", "join"))


@dataclass(frozen=True)
class _Item:
    """One module request of the toy: a value plus the test controls."""

    value: Any
    batch_ms: float
    fail: bool = False


class _ToyRunner(StageRunner):
    """Sleeps ``batch_ms`` once per batch, then maps :meth:`compute` over the items."""

    def run_batch(self, items: list[Any], batch_size: int) -> list[Any]:
        if len(items) > batch_size:
            raise ConfigError(f"batch of {len(items)} items exceeds batch_size {batch_size}")
        time.sleep(max(item.batch_ms for item in items) / 1000.0)
        if any(item.fail for item in items):
            raise RuntimeError("toy failure requested by the 'fail' input")
        return [self.compute(item.value) for item in items]

    def compute(self, value: Any) -> Any:
        raise NotImplementedError


class ScaleRunner(_ToyRunner):
    """Doubles a vector."""

    def compute(self, value: Any) -> Any:
        return np.asarray(value, dtype=np.float32) * 2


class SquareRunner(_ToyRunner):
    """Squares a number."""

    def compute(self, value: Any) -> Any:
        return float(value) * float(value)


class TotalRunner(_ToyRunner):
    """Sums a vector."""

    def compute(self, value: Any) -> Any:
        return float(np.sum(value))


class JoinRunner(_ToyRunner):
    """Adds up the squares; the item is the list of squares."""

    def compute(self, value: Any) -> Any:
        return float(sum(value))


def toy_application(rate: float = 20.0, slo_ms: float = 1000.0, fan_out: float = 2.0) -> Application:
    """Return the toy DAG; ``fan_out`` is the expected N (the ``square`` rate factor)."""
    modules = tuple(
        Module(name, f"toy_{name}", rate_factor=fan_out if name == "square" else 1.0)
        for name in _MODULES
    )
    return Application("toy", rate, slo_ms, modules, _EDGES)


def toy_profiles(batch_ms: float = 10.0) -> ProfileSet:
    """Return flat profiles: every batch size of every module takes ``batch_ms`` on ``cpu``."""
    flat = {"cpu": dict.fromkeys(TOY_BATCH_SIZES, batch_ms)}
    return ProfileSet({f"toy_{name}": Profile(f"toy_{name}", flat) for name in _MODULES})


def toy_hardware() -> HardwareCatalog:
    """Return a one-type catalog: ``cpu``, one thread, USD 0.05 per hour."""
    return HardwareCatalog({"cpu": HardwareType("cpu", 0.05, threads=1)})


def toy_plan(
    rate: float = 20.0,
    *,
    batch_ms: float = 10.0,
    batch_size: int = 2,
    workers: int | dict[str, int] = 1,
    fill: float = 0.5,
    fan_out: float = 2.0,
) -> tuple[Plan, ProfileSet, HardwareCatalog]:
    """Return a valid one-group-per-module plan of the toy at ``rate`` req/s.

    Every group collects ``fill`` of its capacity (real rate plus padding), so batches close
    every ``1000 * batch_size / (fill * capacity)`` ms whatever the load. The SLO is set to
    the plan's latency.

    Raises
    ------
    ConfigError
        If a module's rate exceeds ``fill`` of its capacity.
    """
    profiles, hardware = toy_profiles(batch_ms), toy_hardware()
    app = toy_application(rate, 1.0, fan_out)
    module_plans = []
    for name in _MODULES:
        module = app.module(name)
        num_workers = workers.get(name, 1) if isinstance(workers, dict) else workers
        module_rate = rate * module.rate_factor
        collection_rate = fill * num_workers * 1000.0 * batch_size / batch_ms
        if collection_rate < module_rate:
            raise ConfigError(
                f"toy module {name}: rate {module_rate:.6g} req/s exceeds {fill:.0%} of the capacity "
                f"of {num_workers} workers; lower the rate or raise workers/fill"
            )
        group = make_group(
            hardware="cpu", batch_size=batch_size, workers=num_workers, rate=module_rate,
            dummy_rate=collection_rate - module_rate, dispatch="batch_aware",
            overhead_ms=module.overhead_ms, batch_latency_ms=batch_ms,
        )
        module_plans.append(make_module_plan(app, name, [group], hardware, budget_ms=1e9))
    latency_ms, _ = app.critical_path({m.name: m.latency_ms for m in module_plans})
    app = app.with_overrides(slo_ms=latency_ms)
    module_plans = [
        make_module_plan(app, m.name, list(m.groups), hardware, budget_ms=m.latency_ms)
        for m in module_plans
    ]
    plan = make_plan(app, module_plans, hardware, policy="manual", planning_ms=0.0)
    return plan, profiles, hardware


class ToyAdapter(AppAdapter):
    """Frontend glue of the toy; ``batch_ms`` is the sleep of every batch."""

    inputs = [
        {"name": "values", "datatype": "FP32", "shape": [-1]},
        {"name": "fail", "datatype": "BOOL", "shape": [1], "optional": True},
    ]
    outputs = [
        {"name": "doubled", "datatype": "FP32", "shape": [-1]},
        {"name": "squares", "datatype": "FP32", "shape": [-1]},
        {"name": "total", "datatype": "FP32", "shape": [1]},
        {"name": "sum_of_squares", "datatype": "FP32", "shape": [1]},
    ]

    def __init__(self, batch_ms: float = 10.0, application: Application | None = None) -> None:
        self.batch_ms = batch_ms
        self.application = application or toy_application()

    def runner_factory(self, module: str) -> tuple[str, str]:
        classes = {"scale": "ScaleRunner", "square": "SquareRunner", "total": "TotalRunner", "join": "JoinRunner"}
        if module not in classes:
            raise ConfigError(f"toy application has no module {module!r}; modules: {', '.join(classes)}")
        return (__name__, classes[module])

    def decode(self, inputs: dict[str, Any]) -> Any:
        if "values" not in inputs:
            raise ConfigError("missing input 'values' (FP32, shape [N])")
        values = inputs["values"]
        if values["datatype"] != "FP32" or len(values["shape"]) != 1:
            raise ConfigError(
                f"input 'values' must be FP32 with shape [N], got {values['datatype']} {values['shape']}"
            )
        if values["shape"][0] > MAX_VALUES:
            raise ConfigError(f"input 'values' has {values['shape'][0]} elements, the limit is {MAX_VALUES}")
        fail = False
        if "fail" in inputs:
            fail = bool(np.asarray(inputs["fail"]["data"]).reshape(-1)[0])
        return _Item(np.asarray(values["data"], dtype=np.float32), self.batch_ms, fail)

    def children(self, module: str, state: RequestState) -> list[Any]:
        doubled = state.results["scale"][0]
        if module == "square":
            return [_Item(float(v), self.batch_ms) for v in doubled]
        if module == "total":
            return [_Item(doubled, self.batch_ms)]
        if module == "join":
            return [_Item(list(state.results["square"]), self.batch_ms)]
        raise ConfigError(f"toy module {module!r} is not a child module")

    def respond(self, state: RequestState) -> dict[str, Any]:
        return {
            "doubled": np.asarray(state.results["scale"][0], dtype=np.float32),
            "squares": np.asarray(state.results["square"], dtype=np.float32),
            "total": np.asarray(state.results["total"], dtype=np.float32),
            "sum_of_squares": np.asarray(state.results["join"], dtype=np.float32),
        }
