"""Open-loop load generator for a KServe v2 inference endpoint (``harpagon bench``).

Requests leave at the times of a precomputed schedule (an arrival process from
``harpagon.simulation.arrivals``), whether or not earlier requests have finished, so a slow
server builds up a queue instead of slowing the generator down. Latency is measured from the
*scheduled* send time, so a lag of the generator itself counts against the server instead of
hiding. The lag is also reported on its own, as ``send_lag_ms``.

Units: times in ms (latencies, lags) or s (schedule offsets, durations), rates in req/s.
The generator sends only what it is given; it does not retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing
import struct
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from harpagon.errors import ConfigError

__all__ = [
    "IMAGE_SUFFIXES",
    "BenchReport",
    "LAG_WARNING_MS",
    "InferRequest",
    "RequestRecord",
    "build_schedule",
    "check_bench_options",
    "encode_infer_request",
    "fetch_slo_ms",
    "load_image_dir",
    "load_requests",
    "print_report",
    "run_bench",
    "run_bench_in_process",
    "run_open_loop",
    "summarize",
    "write_report",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes that ``--images DIR`` picks up (case-insensitive)."""

DROPPED = "in_flight_limit"
"""Error kind of a scheduled request that was not sent because ``max_in_flight`` were pending."""

INFERENCE_HEADER_LENGTH = "Inference-Header-Content-Length"
"""HTTP header of the binary tensor data extension: length of the JSON part of the body."""

LAG_WARNING_MS = 10.0
"""p99 send lag above which a report warns that the generator fell behind its schedule."""

_START_DELAY_S = 0.05
"""Time between building the schedule's clock and its first send, so set-up is not lag."""

_CONNECTIONS_PER_CLIENT = 8
"""Connection pool size of each httpx client of a :class:`_ClientShards`."""


class _ClientShards:
    """Several small ``httpx.AsyncClient`` pools, each request sent through the least busy one.

    httpcore 1.0 scans every connection of a pool on each request and response, so one
    client with hundreds of connections costs more CPU per request the more are open, and
    an open-loop run that falls behind spirals. Small pools keep that cost bounded.
    """

    def __init__(self, max_in_flight: int, timeout_s: float) -> None:
        self.max_clients = -(-max_in_flight // _CONNECTIONS_PER_CLIENT)
        self.limits = httpx.Limits(
            max_connections=_CONNECTIONS_PER_CLIENT,
            max_keepalive_connections=_CONNECTIONS_PER_CLIENT,
        )
        self.timeout_s = timeout_s
        # Building an SSL context takes milliseconds, so all clients share one.
        self.ssl_context = httpx.create_ssl_context()
        self.clients: list[httpx.AsyncClient] = []
        self.in_flight: list[int] = []

    def _pick(self) -> int:
        # The least busy client, or a new one once every client's connections are in use.
        if self.clients:
            shard = min(range(len(self.clients)), key=self.in_flight.__getitem__)
            if self.in_flight[shard] < _CONNECTIONS_PER_CLIENT or len(self.clients) >= self.max_clients:
                return shard
        self.clients.append(
            httpx.AsyncClient(limits=self.limits, timeout=self.timeout_s, verify=self.ssl_context)
        )
        self.in_flight.append(0)
        return len(self.clients) - 1

    async def post(self, url: str, request: InferRequest) -> httpx.Response:
        """Send one POST through the least busy client, adding a client when all are busy."""
        shard = self._pick()
        self.in_flight[shard] += 1
        try:
            return await self.clients[shard].post(url, content=request.body, headers=request.headers)
        finally:
            self.in_flight[shard] -= 1

    async def aclose(self) -> None:
        """Close every client and its connections."""
        for client in self.clients:
            await client.aclose()


@dataclass(frozen=True)
class RequestRecord:
    """The outcome of one scheduled request."""

    index: int
    scheduled_s: float
    """Planned send time, s after the start of the run."""
    sent_s: float | None
    """Time the request was handed to the HTTP client, s after the start (``None`` if dropped)."""
    done_s: float | None
    """Time the response (or the error) came back, s after the start (``None`` if dropped)."""
    status_code: int | None
    """HTTP status code, or ``None`` when no response came back."""
    error: str | None
    """Error kind (``http_503``, ``ReadTimeout``, ``in_flight_limit`` ...), or ``None`` on success."""

    @property
    def ok(self) -> bool:
        """Whether the request got a 200 response."""
        return self.error is None

    @property
    def latency_ms(self) -> float | None:
        """Time from the scheduled send to the response in ms, or ``None`` if dropped."""
        if self.done_s is None:
            return None
        return 1000.0 * (self.done_s - self.scheduled_s)

    @property
    def send_lag_ms(self) -> float | None:
        """How late the generator sent the request compared with its schedule, ms."""
        if self.sent_s is None:
            return None
        return 1000.0 * (self.sent_s - self.scheduled_s)


@dataclass(frozen=True)
class BenchReport:
    """Summary of one load run, in the shape that ``harpagon bench --json`` writes."""

    scheduled: int
    """Requests in the schedule."""
    sent: int
    """Requests handed to the HTTP client (scheduled minus those dropped at the in-flight limit)."""
    ok: int
    """Requests that got an HTTP 200 response."""
    errors: int
    """Requests that failed for any reason, dropped ones included."""
    errors_by_kind: dict[str, int]
    status_codes: dict[str, int]
    """HTTP status code (as a string) -> count of responses."""
    duration_s: float
    """Length of the schedule, s."""
    elapsed_s: float
    """Time from the start of the schedule to the last response or the end of the schedule, s."""
    offered_rate_rps: float
    """Scheduled requests per second of schedule."""
    throughput_rps: float
    """Successful responses per second of ``elapsed_s``."""
    latency_ms: dict[str, float]
    """``p50``, ``p90``, ``p99``, ``max`` and ``mean`` of successful requests, ms (NaN if none)."""
    send_lag_ms: dict[str, float]
    """``p50``, ``p99`` and ``max`` of the generator's own lag behind the schedule, ms."""
    slo_ms: float | None
    slo_attainment: float | None
    """Share of scheduled requests that got HTTP 200 within ``slo_ms``. Errors count as misses."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Run settings kept in the JSON (URL, arrival process, seed ...)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict (NaN becomes ``None``)."""
        data = {
            "scheduled": self.scheduled,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "status_codes": dict(self.status_codes),
            "duration_s": self.duration_s,
            "elapsed_s": self.elapsed_s,
            "offered_rate_rps": self.offered_rate_rps,
            "throughput_rps": self.throughput_rps,
            "latency_ms": {k: _json_float(v) for k, v in self.latency_ms.items()},
            "send_lag_ms": {k: _json_float(v) for k, v in self.send_lag_ms.items()},
            "slo_ms": self.slo_ms,
            "slo_attainment": self.slo_attainment,
        }
        data.update(self.extra)
        return data


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


# --- Payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferRequest:
    """A ready-to-send infer request: the body and its HTTP headers."""

    body: bytes
    headers: dict[str, str]


def encode_infer_request(payload: bytes, input_name: str = "image") -> InferRequest:
    """Build a KServe v2 infer request whose one BYTES element is ``payload``.

    JSON can carry only text, so the element travels with the binary tensor data extension
    (the wire format of Triton and ``tritonclient.http``): a JSON header whose input has a
    ``binary_data_size`` parameter, then the element as a 4-byte little-endian length and its
    bytes. The ``Inference-Header-Content-Length`` header gives the length of the JSON part.
    """
    element = struct.pack("<I", len(payload)) + payload
    header = {
        "inputs": [
            {
                "name": input_name,
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(element)},
            }
        ]
    }
    header_bytes = json.dumps(header).encode()
    headers = {
        "content-type": "application/octet-stream",
        INFERENCE_HEADER_LENGTH: str(len(header_bytes)),
    }
    return InferRequest(header_bytes + element, headers)


def load_image_dir(directory: str | Path) -> list[bytes]:
    """Read every image file (by suffix, see :data:`IMAGE_SUFFIXES`) of ``directory``, sorted by name.

    Raises
    ------
    ConfigError
        If the directory does not exist or contains no image file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"--images {directory}: directory not found; pass a folder of image files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"--images {directory}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)})"
        )
    return [p.read_bytes() for p in files]


# --- Inputs: options, images, schedule ---------------------------------------------------------


def check_bench_options(
    *, rate: float, duration_s: float, slo_ms: float | None = None, timeout_s: float = 60.0
) -> None:
    """Raise :class:`ConfigError` naming the first option of a load run that is not a finite
    number > 0.
    """
    options = (("--rate", rate, "req/s"), ("--duration", duration_s, "s"),
               ("--slo-ms", slo_ms, "ms"), ("--timeout", timeout_s, "s"))
    for option, value, unit in options:
        if value is None:
            continue
        if not value > 0:
            raise ConfigError(f"{option} must be > 0 {unit}, got {value}")
        if not math.isfinite(value):
            raise ConfigError(f"{option} must be a finite number of {unit}, got {value}")


def load_requests(images_dir: str | Path | None = None, input_name: str = "image") -> list[InferRequest]:
    """Encode one infer request per image of ``images_dir``, or per bundled demo image by default."""
    if images_dir is None:
        from harpagon.serving.images import DEMO_IMAGE_NAMES, sample_images

        payloads = [image.png for image in sample_images(DEMO_IMAGE_NAMES)]
    else:
        payloads = load_image_dir(images_dir)
    return [encode_infer_request(payload, input_name) for payload in payloads]


def build_schedule(arrivals: str, *, rate: float, duration_s: float, seed: int = 0) -> list[float]:
    """Return the send offsets (s) of a load run: the arrival process ``arrivals`` at ``rate``.

    ``arrivals`` is any process that ``harpagon simulate --arrivals`` accepts (uniform,
    poisson, mmpp, trace:PATH), drawn with the same seed handling, so a load run and a
    simulation with the same seed see the same arrival times.

    Raises
    ------
    ConfigError
        If the process name is unknown or the trace file cannot be read.
    """
    from harpagon.simulation.arrivals import make_arrivals

    arrival_ms = make_arrivals(arrivals, rate, duration_s, np.random.default_rng([seed, 1]))
    return [float(value) / 1000.0 for value in arrival_ms]


# --- The open loop -------------------------------------------------------------------------


async def run_open_loop(
    infer_url: str,
    requests: Sequence[InferRequest],
    schedule_s: Sequence[float],
    *,
    max_in_flight: int = 1024,
    timeout_s: float = 60.0,
) -> list[RequestRecord]:
    """Send ``requests`` (in turn) to ``infer_url`` at the offsets ``schedule_s`` and record each outcome.

    A request is sent at its scheduled time even when earlier ones are still pending. Only
    when ``max_in_flight`` requests are pending is a scheduled request dropped (recorded with
    the error kind ``in_flight_limit``) rather than delayed, so the schedule never slips.

    Parameters
    ----------
    infer_url : str
        Full URL of the infer endpoint.
    requests : sequence of InferRequest
        Encoded requests, used in turn.
    schedule_s : sequence of float
        Non-decreasing send offsets, s after the start.
    max_in_flight : int
        Most requests pending at once; also the HTTP connection pool size.
    timeout_s : float
        Per-request timeout, s; a request that times out is an error.
    """
    if not requests:
        raise ConfigError("no requests to send; pass at least one image")
    if max_in_flight < 1:
        raise ConfigError(f"--max-in-flight must be an integer >= 1, got {max_in_flight}")

    loop = asyncio.get_running_loop()
    records: list[RequestRecord | None] = [None] * len(schedule_s)
    pending: set[asyncio.Task[None]] = set()
    client = _ClientShards(max_in_flight, timeout_s)

    try:
        start = loop.time() + _START_DELAY_S

        async def send(index: int, scheduled: float, request: InferRequest) -> None:
            sent = loop.time() - start
            status: int | None = None
            error: str | None = None
            try:
                response = await client.post(infer_url, request)
                status = response.status_code
                if status != 200:
                    error = f"http_{status}"
            except httpx.HTTPError as err:
                error = type(err).__name__
            done = loop.time() - start
            records[index] = RequestRecord(index, scheduled, sent, done, status, error)

        # Sleep until each scheduled time, then fire and forget; never await a response here.
        for index, scheduled in enumerate(schedule_s):
            delay = start + scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(pending) >= max_in_flight:
                records[index] = RequestRecord(index, scheduled, None, None, None, DROPPED)
                continue
            task = asyncio.create_task(send(index, scheduled, requests[index % len(requests)]))
            pending.add(task)
            task.add_done_callback(pending.discard)

        if pending:
            await asyncio.gather(*pending)
    finally:
        await client.aclose()

    return [record for record in records if record is not None]


# --- The report ----------------------------------------------------------------------------


def _percentiles(values: list[float], names: dict[str, float]) -> dict[str, float]:
    if not values:
        return {name: math.nan for name in names}
    array = np.asarray(values, dtype=float)
    return {name: float(np.percentile(array, q)) for name, q in names.items()}


def summarize(
    records: Sequence[RequestRecord],
    *,
    duration_s: float,
    slo_ms: float | None,
    extra: dict[str, Any] | None = None,
) -> BenchReport:
    """Reduce the per-request records of one run to a :class:`BenchReport`.

    Percentiles are numpy's default (linear interpolation) over successful requests only.
    SLO attainment counts every scheduled request: a request meets the SLO only when it got
    HTTP 200 within ``slo_ms`` of its scheduled send time.
    """
    scheduled = len(records)
    sent = sum(1 for r in records if r.sent_s is not None)
    successes = [r for r in records if r.ok]
    latencies = [r.latency_ms for r in successes if r.latency_ms is not None]
    lags = [r.send_lag_ms for r in records if r.send_lag_ms is not None]
    errors_by_kind = Counter(r.error for r in records if r.error is not None)
    status_codes = Counter(str(r.status_code) for r in records if r.status_code is not None)
    finished = [r.done_s for r in records if r.done_s is not None]
    elapsed_s = max([duration_s, *finished])

    latency = _percentiles(latencies, {"p50": 50, "p90": 90, "p99": 99, "max": 100})
    latency["mean"] = float(np.mean(latencies)) if latencies else math.nan

    slo_attainment: float | None = None
    if slo_ms is not None and scheduled:
        within = sum(1 for value in latencies if value <= slo_ms)
        slo_attainment = within / scheduled

    return BenchReport(
        scheduled=scheduled,
        sent=sent,
        ok=len(successes),
        errors=scheduled - len(successes),
        errors_by_kind=dict(sorted(errors_by_kind.items())),
        status_codes=dict(sorted(status_codes.items())),
        duration_s=duration_s,
        elapsed_s=elapsed_s,
        offered_rate_rps=scheduled / duration_s if duration_s > 0 else math.nan,
        throughput_rps=len(successes) / elapsed_s if elapsed_s > 0 else 0.0,
        latency_ms=latency,
        send_lag_ms=_percentiles(lags, {"p50": 50, "p99": 99, "max": 100}),
        slo_ms=slo_ms,
        slo_attainment=slo_attainment,
        extra=dict(extra or {}),
    )


# --- Server metadata and the whole run ------------------------------------------------------


def fetch_slo_ms(base_url: str, app: str, timeout_s: float = 10.0) -> float | None:
    """Return the SLO (ms) that the server's model metadata exposes, or ``None``.

    Reads ``GET {base_url}/v2/models/{app}`` and looks for ``parameters.slo_ms``.

    Raises
    ------
    ConfigError
        If the server cannot be reached or does not know the model.
    """
    url = f"{base_url.rstrip('/')}/v2/models/{app}"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as err:
        raise ConfigError(f"cannot reach {url}: {err}; is the server running?") from err
    if response.status_code == 404:
        raise ConfigError(f"{url}: the server has no model {app!r} (HTTP 404); check --app")
    if response.status_code != 200:
        raise ConfigError(f"{url}: model metadata request failed with HTTP {response.status_code}")
    try:
        parameters = response.json().get("parameters") or {}
        value = parameters.get("slo_ms")
    except (ValueError, AttributeError):
        return None
    return None if value is None else float(value)


def run_bench(
    base_url: str,
    app: str,
    requests: Sequence[InferRequest],
    schedule_s: Sequence[float],
    *,
    duration_s: float,
    slo_ms: float | None = None,
    max_in_flight: int = 1024,
    timeout_s: float = 60.0,
    extra: dict[str, Any] | None = None,
) -> BenchReport:
    """Run one open-loop load against ``{base_url}/v2/models/{app}/infer`` and summarize it.

    When ``slo_ms`` is ``None`` the SLO is read from the server's model metadata (see
    :func:`fetch_slo_ms`); without either, the report has no SLO attainment.
    """
    if slo_ms is None:
        slo_ms = fetch_slo_ms(base_url, app)
    infer_url = f"{base_url.rstrip('/')}/v2/models/{app}/infer"
    logger.info(
        "load run started: %s, %d requests over %.1f s", infer_url, len(schedule_s), duration_s
    )
    records = asyncio.run(
        run_open_loop(
            infer_url, requests, schedule_s, max_in_flight=max_in_flight, timeout_s=timeout_s
        )
    )
    report = summarize(
        records, duration_s=duration_s, slo_ms=slo_ms, extra={"url": infer_url, **(extra or {})}
    )
    logger.info(
        "load run finished: %d ok, %d errors, %.1f req/s", report.ok, report.errors, report.throughput_rps
    )
    return report


def run_bench_in_process(
    base_url: str,
    app: str,
    requests: Sequence[InferRequest],
    schedule_s: Sequence[float],
    **options: Any,
) -> BenchReport:
    """Run :func:`run_bench` in a fresh child process and return its report.

    Use this when the server runs in the calling process (``running_server`` puts the
    frontend in a thread), so the generator and the frontend do not share one GIL.
    ``options`` are the keyword arguments of :func:`run_bench`.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(run_bench, base_url, app, requests, schedule_s, **options).result()



# --- Output ------------------------------------------------------------------------------------


def write_report(report: BenchReport, path: str | Path) -> None:
    """Write the report as JSON to ``path``."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=1) + "\n")


def _format_ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def print_report(report: BenchReport, console: Any) -> None:
    """Print the report as a rich table, with a warning when the generator fell behind."""
    from rich.table import Table

    table = Table(title=f"Load run: {report.extra.get('url', '')}", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("offered rate", f"{report.offered_rate_rps:.2f} req/s over {report.duration_s:.1f} s")
    table.add_row("throughput (HTTP 200)", f"{report.throughput_rps:.2f} req/s")
    table.add_row("scheduled / sent / ok / errors", f"{report.scheduled} / {report.sent} / {report.ok} / {report.errors}")
    for name in ("p50", "p90", "p99", "max", "mean"):
        table.add_row(f"latency {name}", f"{_format_ms(report.latency_ms[name])} ms")
    if report.slo_ms is None:
        table.add_row("SLO attainment", "no SLO (pass --slo-ms)")
    else:
        table.add_row(f"SLO attainment ({report.slo_ms:g} ms)", f"{report.slo_attainment:.2%}")
    table.add_row("send lag p99 / max", f"{_format_ms(report.send_lag_ms['p99'])} / {_format_ms(report.send_lag_ms['max'])} ms")
    for code, count in report.status_codes.items():
        table.add_row(f"HTTP {code}", str(count))
    for kind, count in report.errors_by_kind.items():
        table.add_row(f"error {kind}", str(count))
    console.print(table)
    lag_ms = report.send_lag_ms["p99"]
    if not math.isnan(lag_ms) and lag_ms > LAG_WARNING_MS:
        console.print(
            f"[yellow]warning: the load generator sent its requests up to {lag_ms:.0f} ms late (p99); "
            "the latencies include that lag. Lower --rate or give the generator a free core.[/yellow]"
        )
