"""Serving benchmark: Ray Serve against the Harpagon runtime on the OCR detection model.

Both systems serve the PP-OCR detection stage with the same stage runner
(``harpagon.serving.ocr.DetRunner``: pre-processing, ONNX session, post-processing) and the same
batch size, worker count and intra-op threads. Both take the same KServe v2 request over HTTP
(one PNG as a BYTES element). For each system the script loads the endpoint with uniform
arrivals at a rising series of rates, using the same open-loop generator in its own process. It measures
every rate and reports the highest one that keeps at least ``--target`` of the requests within
the SLO.

Both sides charge the ``det`` module's ``overhead_ms`` of the shipped ``ocr`` application
(PNG decoding) against the SLO.

- Harpagon: a one-module plan (``det`` on ``cpu-<threads>t``, the given batch size and
  workers, batch-aware dispatch) whose dummy rate is the smallest that fits the SLO with the
  profiled batch time d(b). A new server is started for every rate, because the plan
  depends on the rate. ``--clocks`` runs the runtime with each kind of batch clock:
  ``capacity`` (the runtime's default) or ``planned`` (the plan's collection rate).
- Ray Serve: one deployment with ``num_replicas`` = workers, ``ray_actor_options``
  ``num_cpus`` = threads and ``@serve.batch(max_batch_size=b,
  batch_wait_timeout_s=(SLO - overhead - d(b)) / 1000)``, so a batch waits no longer than the
  SLO leaves after its run. Requests reach it through Ray Serve's HTTP proxy on 127.0.0.1.

Usage::

    .venv/bin/python benchmarks/bench_ray_serve.py --batch-size 2 --workers 2 --threads 1 \\
        --slo-ms 600 --duration 20 --rates 0.2,0.3,0.4,0.5,0.6,0.7 --json out/bench_ray_serve.json

Results go to ``docs/benchmarks.md`` (section "Serving: Ray Serve vs Harpagon runtime").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from harpagon.errors import ConfigError
from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.latency import max_period_ms
from harpagon.model.plan import Plan
from harpagon.model.profiles import ProfileSet
from harpagon.model.validate import make_group, make_module_plan, make_plan
from harpagon.profiling.ocr import OCR_PROFILE_NAMES, ensure_local_profiles
from harpagon.serving.demo import demo_application
from harpagon.serving.loadgen import (
    BenchReport,
    InferRequest,
    build_schedule,
    load_requests,
    run_bench_in_process,
)
from harpagon.serving.ocr import OcrAdapter, decode_image
from harpagon.serving.server import ServingOptions, running_server
from harpagon.serving.stages import RequestState

logger = logging.getLogger("bench_ray_serve")
console = Console()

MODEL_NAME = "det"
DET_PROFILE = OCR_PROFILE_NAMES["det"]


@dataclass(frozen=True)
class Settings:
    """Settings that both systems share in one comparison."""

    batch_size: int
    workers: int
    threads: int
    slo_ms: float
    batch_latency_ms: float
    """Profiled d(b) of the detection stage on ``cpu-<threads>t``, ms."""
    duration_s: float
    target: float
    """SLO attainment a rate must reach to count as sustained."""
    ray_timeout_fraction: float = 1.0
    """Share of ``SLO - d(b)`` that Ray Serve's batch wait timeout gets."""
    overhead_ms: float = 0.0
    """Per-request overhead outside the batch (the ``det`` module's ``overhead_ms``), ms."""

    @property
    def hardware(self) -> str:
        """Hardware type of the workers in the CPU catalog."""
        return f"cpu-{self.threads}t"

    @property
    def capacity_rps(self) -> float:
        """Throughput of the workers at the profiled batch time, req/s."""
        return self.workers * 1000.0 * self.batch_size / self.batch_latency_ms

    @property
    def batch_wait_timeout_s(self) -> float:
        """Ray Serve's longest wait for a batch: (a share of) what the SLO leaves after overhead and one batch run."""
        return self.ray_timeout_fraction * (self.slo_ms - self.overhead_ms - self.batch_latency_ms) / 1000.0


# --- Harpagon: a one-module plan of the detection stage -------------------------------------


class DetectionAdapter(OcrAdapter):
    """Frontend glue of a one-module application that runs only OCR text detection.

    It decodes and validates requests as the OCR application does, and responds with the boxes.
    """

    outputs = [{"name": "boxes", "datatype": "FP32", "shape": [-1, 4, 2]}]

    def __init__(self, application: Application) -> None:
        # OcrAdapter's constructor requires the three OCR modules; this app has only det.
        self.application = application

    def children(self, module: str, state: RequestState) -> list[Any]:
        raise ConfigError(f"the detection benchmark has one module; {module!r} has no parents")

    def respond(self, state: RequestState) -> dict[str, Any]:
        return {"boxes": state.results[MODEL_NAME][0].boxes.astype(np.float32)}


def detection_plan(rate: float, settings: Settings, hardware: HardwareCatalog) -> tuple[Application, Plan]:
    """Return the one-module application at ``rate`` and its plan with the given batch and workers.

    The group's collection rate is the smallest that keeps its latency within the SLO
    (``d + 1000 b / w <= SLO``), and at least the real rate.

    Raises
    ------
    ConfigError
        If the workers cannot carry ``rate`` or even a full batch period misses the SLO.
    """
    module = Module(MODEL_NAME, DET_PROFILE, overhead_ms=settings.overhead_ms)
    app = Application("det", rate, settings.slo_ms, (module,), path="<bench_ray_serve>")
    period_ms = max_period_ms(
        settings.slo_ms, settings.overhead_ms, settings.batch_latency_ms, settings.workers, "batch_aware"
    )
    if period_ms <= 0:
        raise ConfigError(
            f"--slo-ms {settings.slo_ms:g} is below the batch time {settings.batch_latency_ms:.1f} ms"
        )
    collection_rate = max(rate, 1000.0 * settings.batch_size / period_ms)
    if collection_rate > settings.capacity_rps:
        raise ConfigError(
            f"rate {rate:.3g} req/s needs a collection rate of {collection_rate:.3g} req/s, above the "
            f"capacity {settings.capacity_rps:.3g} req/s of {settings.workers} workers"
        )
    group = make_group(
        hardware=settings.hardware, batch_size=settings.batch_size, workers=settings.workers,
        rate=rate, dummy_rate=collection_rate - rate, dispatch="batch_aware",
        overhead_ms=settings.overhead_ms, batch_latency_ms=settings.batch_latency_ms,
    )
    module_plan = make_module_plan(app, MODEL_NAME, [group], hardware, budget_ms=settings.slo_ms)
    plan = make_plan(app, [module_plan], hardware, policy="manual", planning_ms=0.0)
    return app, plan


def measure_harpagon(
    rate: float,
    clock: str,
    settings: Settings,
    requests: list[InferRequest],
    profiles: ProfileSet,
    hardware: HardwareCatalog,
) -> BenchReport:
    """Serve the detection plan at ``rate`` with ``clock`` batch clocks, warm it up, then load it."""
    app, plan = detection_plan(rate, settings, hardware)
    options = ServingOptions(clock=clock)
    with running_server(
        plan, DetectionAdapter(app), profiles=profiles, hardware=hardware, options=options
    ) as url:
        _warm_up(url, rate, requests)
        return _load(url, rate, settings, requests)


# --- Ray Serve -------------------------------------------------------------------------------


def start_ray_serve(settings: Settings, port: int) -> str:
    """Start a local Ray instance and deploy the detection stage; return the proxy's base URL."""
    import ray
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    batch_size, timeout_s, threads = settings.batch_size, settings.batch_wait_timeout_s, settings.threads

    @serve.deployment(
        num_replicas=settings.workers,
        ray_actor_options={"num_cpus": settings.threads},
        # Ray Serve's default of 5 ongoing requests per replica would cap the batch fill.
        max_ongoing_requests=max(64, 8 * batch_size),
    )
    class Detection:
        def __init__(self) -> None:
            from harpagon.serving.ocr import DetRunner

            self.runner = DetRunner(threads)

        @serve.batch(max_batch_size=batch_size, batch_wait_timeout_s=timeout_s)
        async def detect(self, images: list[np.ndarray]) -> list[Any]:
            # Run the batch off the event loop, so the replica keeps accepting requests.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.runner.run_batch, images, batch_size)

        async def __call__(self, request: Request) -> Response:
            from harpagon.serving.frontend import decode_infer_request, encode_infer_response

            header = request.headers.get("inference-header-content-length")
            request_json, inputs = decode_infer_request(
                await request.body(), None if header is None else int(header)
            )
            detection = await self.detect(decode_image(bytes(inputs["image"]["data"][0])))
            payload, _ = encode_infer_response(
                MODEL_NAME, {"boxes": detection.boxes.astype(np.float32)}, request_json, {"boxes": "FP32"}
            )
            return Response(payload, media_type="application/json")

    ray.init(
        num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(Detection.bind(), name=MODEL_NAME, route_prefix=f"/v2/models/{MODEL_NAME}")
    return f"http://127.0.0.1:{port}"


def stop_ray_serve() -> None:
    """Shut down Ray Serve and the local Ray instance."""
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


# --- Load and search ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _warm_up(url: str, rate: float, requests: list[InferRequest]) -> None:
    # A few seconds at the test rate, so first-run costs (session warm-up, connections) are paid.
    schedule = build_schedule("uniform", rate=rate, duration_s=3.0)
    run_bench_in_process(url, MODEL_NAME, requests, schedule, duration_s=3.0, slo_ms=1e9)


def _load(url: str, rate: float, settings: Settings, requests: list[InferRequest]) -> BenchReport:
    schedule = build_schedule("uniform", rate=rate, duration_s=settings.duration_s)
    return run_bench_in_process(
        url, MODEL_NAME, requests, schedule, duration_s=settings.duration_s, slo_ms=settings.slo_ms,
    )


def search(name: str, rates: list[float], settings: Settings, measure: Any) -> list[dict[str, Any]]:
    """Measure every rate of ``rates`` in increasing order.

    Every rate is measured, because attainment need not fall with the rate: a batching
    system whose batches fill faster at higher rates waits less for them.
    """
    rows = []
    for rate in sorted(rates):
        started = time.monotonic()
        try:
            report = measure(rate)
        except ConfigError as err:
            console.print(f"[yellow]{name} at {rate:.3g} req/s: skipped: {err}[/yellow]")
            break
        row = {"system": name, "rate_rps": rate, "load_average_1m": os.getloadavg()[0], **report.to_dict()}
        rows.append(row)
        console.print(
            f"{name:>17} {rate:6.2f} req/s: attainment {report.slo_attainment:.4f}, "
            f"p50 {report.latency_ms['p50']:.0f} ms, p99 {report.latency_ms['p99']:.0f} ms, "
            f"errors {report.errors}, load average {row['load_average_1m']:.1f} "
            f"({time.monotonic() - started:.0f} s)"
        )
    return rows


def best_rate(rows: list[dict[str, Any]], target: float) -> float | None:
    """Return the highest measured rate whose attainment reached ``target``."""
    passing = [row["rate_rps"] for row in rows if (row["slo_attainment"] or 0.0) >= target]
    return max(passing) if passing else None


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print one line per measured (system, rate)."""
    table = Table(title="Ray Serve vs Harpagon runtime: OCR detection, uniform arrivals")
    for column in ("system", "rate req/s", "throughput req/s", "attainment", "p50 ms", "p99 ms", "max ms", "errors", "load 1m"):
        table.add_column(column, justify="right")
    for row in rows:
        latency = row["latency_ms"]
        table.add_row(
            row["system"], f"{row['rate_rps']:.2f}", f"{row['throughput_rps']:.2f}",
            f"{row['slo_attainment']:.4f}",
            *(("-" if latency[k] is None else f"{latency[k]:.0f}") for k in ("p50", "p99", "max")),
            str(row["errors"]), f"{row['load_average_1m']:.1f}",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print (and optionally write) its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=2, help="batch size of both systems")
    parser.add_argument("--workers", type=int, default=2, help="workers (Ray Serve replicas)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per worker (1 or 2)")
    parser.add_argument("--slo-ms", type=float, default=600.0, help="latency SLO, ms")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument(
        "--rates", default="0.3,0.45,0.6,0.7,0.8,0.9",
        help="rates to try, as fractions of the workers' profiled capacity, comma-separated",
    )
    parser.add_argument("--target", type=float, default=0.99, help="SLO attainment a rate must reach")
    parser.add_argument("--systems", default="harpagon,ray", help="systems to run, comma-separated")
    parser.add_argument(
        "--clocks", default="capacity,planned",
        help="batch clocks of the Harpagon runtime to run, comma-separated (see harpagon serve --clock)",
    )
    parser.add_argument(
        "--ray-timeout-fraction", type=float, default=1.0,
        help="Ray Serve's batch_wait_timeout_s as a share of (SLO - d(b)) / 1000",
    )
    parser.add_argument("--json", type=Path, help="write the rows and settings to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    profiles, hardware = ensure_local_profiles(progress=True)
    hardware_name = f"cpu-{args.threads}t"
    if hardware_name not in hardware:
        raise SystemExit(f"error: --threads {args.threads}: no hardware type {hardware_name}; use 1 or 2")
    settings = Settings(
        batch_size=args.batch_size,
        workers=args.workers,
        threads=args.threads,
        slo_ms=args.slo_ms,
        batch_latency_ms=profiles[DET_PROFILE].batch_latency_ms(hardware_name, args.batch_size),
        duration_s=args.duration,
        target=args.target,
        ray_timeout_fraction=args.ray_timeout_fraction,
        overhead_ms=demo_application().module(MODEL_NAME).overhead_ms,
    )
    rates = [round(float(f) * settings.capacity_rps, 2) for f in args.rates.split(",")]
    requests = load_requests(None)
    console.print(
        f"detection d({settings.batch_size}) = {settings.batch_latency_ms:.1f} ms on {hardware_name}; "
        f"capacity {settings.capacity_rps:.2f} req/s; rates {rates}; "
        f"Ray batch_wait_timeout_s {settings.batch_wait_timeout_s:.3f}"
    )

    systems = args.systems.split(",")
    rows: list[dict[str, Any]] = []
    if "harpagon" in systems:
        for clock in args.clocks.split(","):
            rows += search(
                f"harpagon/{clock}", rates, settings,
                lambda rate, clock=clock: measure_harpagon(rate, clock, settings, requests, profiles, hardware),
            )
    if "ray" in systems:
        url = start_ray_serve(settings, _free_port())
        try:
            _warm_up(url, rates[0], requests)
            rows += search("ray", rates, settings, lambda rate: _load(url, rate, settings, requests))
        finally:
            stop_ray_serve()

    print_table(rows)
    names = sorted({row["system"] for row in rows})
    summary = {name: best_rate([r for r in rows if r["system"] == name], settings.target) for name in names}
    for name, rate in summary.items():
        console.print(f"{name}: highest rate with attainment >= {settings.target:.0%}: {rate} req/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "settings": {**settings.__dict__, "capacity_rps": settings.capacity_rps,
                         "batch_wait_timeout_s": settings.batch_wait_timeout_s},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": sys.version.split()[0]},
            "best_rate_rps": summary,
            "rows": rows,
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
