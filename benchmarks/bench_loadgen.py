"""Ceiling of the open-loop load generator: the highest rate it sends on time on this machine.

A trivial ASGI server (reads the body, returns a fixed JSON) runs in its own process on
127.0.0.1, and the generator sends the bundled demo images to it at a rising series of rates
with uniform arrivals. A rate is kept up when every request succeeds and the p99 send lag
stays below ``LAG_WARNING_MS`` (the generator's own warning threshold). The server shares
the machine's cores with the generator, so the figures are a lower bound on the generator
alone.

Usage::

    .venv/bin/python benchmarks/bench_loadgen.py --rates 100,250,500,750,1000 --duration 5

Results go to ``docs/benchmarks.md`` (section "Serving: Ray Serve vs Harpagon runtime").
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time

from rich.console import Console
from rich.table import Table

from harpagon.serving.loadgen import LAG_WARNING_MS, build_schedule, load_requests, run_bench


async def _trivial_app(scope, receive, send) -> None:  # noqa: ANN001 - the ASGI signature
    if scope["type"] != "http":
        return
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"outputs": []}'})


def _serve(sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(_trivial_app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    """Measure the generator at each rate and print one row per rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,250,500,750,1000", help="rates to try, req/s, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per rate")
    args = parser.parse_args(argv)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    time.sleep(2.0)

    requests = load_requests(None)
    sizes = sorted(len(request.body) for request in requests)
    table = Table(title=f"open-loop generator against a trivial server, {os.cpu_count()} cores shared")
    for column in ("rate req/s", "ok", "errors", "throughput req/s", "p50 ms", "p99 ms", "lag p99 ms", "lag max ms", "client CPU ms/req"):
        table.add_column(column, justify="right")
    try:
        for rate in (float(value) for value in args.rates.split(",")):
            schedule = build_schedule("uniform", rate=rate, duration_s=args.duration)
            cpu_before = time.process_time()
            report = run_bench(url, "trivial", requests, schedule, duration_s=args.duration, slo_ms=1e9)
            cpu_ms = 1000.0 * (time.process_time() - cpu_before) / max(1, report.scheduled)
            table.add_row(
                f"{rate:g}", str(report.ok), str(report.errors), f"{report.throughput_rps:.1f}",
                f"{report.latency_ms['p50']:.1f}", f"{report.latency_ms['p99']:.1f}",
                f"{report.send_lag_ms['p99']:.1f}", f"{report.send_lag_ms['max']:.1f}", f"{cpu_ms:.2f}",
            )
    finally:
        server.terminate()
        server.join(10)
        sock.close()
    console = Console()
    console.print(table)
    console.print(
        f"request bodies: {sizes[0]} to {sizes[-1]} bytes (the demo images); "
        f"a rate is kept up when its lag p99 stays below {LAG_WARNING_MS:g} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
