"""Simulator speed: simulated application requests per second of wall time, on one core.

Plans a shipped application with the ``harpagon`` planner on the shipped GPU profiles and
catalog, generates the arrivals once, then times :func:`harpagon.simulation.simulate`
(plan validation included, arrival generation excluded) over several repeats and reports
the median. The default is the three-module ``traffic`` application (a detector feeding
two classifiers, 5 module requests per application request) with one million uniform
arrivals. Numerical libraries are limited to one thread before numpy is imported.

Usage::

    .venv/bin/python benchmarks/bench_simulator.py --app traffic --requests 1000000 \\
        --repeats 5 --arrivals uniform poisson --json out/bench_simulator.json

Results go to ``docs/benchmarks.md`` (section "Simulator speed").
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from harpagon.model import load_hardware, load_profiles, resolve_application  # noqa: E402
from harpagon.planning.registry import get_planner  # noqa: E402
from harpagon.simulation import make_arrivals, simulate, summarize  # noqa: E402


def measure(app_name: str, requests: int, repeats: int, arrivals: str, engine: str) -> dict:
    """Return the timing record of ``repeats`` simulations of ``requests`` application requests."""
    app = resolve_application(app_name)
    profiles = load_profiles()
    hardware = load_hardware()
    plan = get_planner("harpagon")(app, profiles, hardware)
    arrival_ms = make_arrivals(arrivals, plan.rate, requests / plan.rate, np.random.default_rng(0))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run = simulate(plan, app, profiles, hardware, arrival_ms, engine=engine)
        seconds.append(time.perf_counter() - start)
    report = summarize(run)
    module_requests = sum(m["requests"] for m in report["modules"].values())
    median = statistics.median(seconds)
    return {
        "app": app_name,
        "modules": len(app.modules),
        "arrivals": arrivals,
        "engine": engine,
        "requests": int(arrival_ms.size),
        "module_requests": module_requests,
        "repeats": repeats,
        "median_s": median,
        "min_s": min(seconds),
        "requests_per_s": arrival_ms.size / median,
        "slo_attainment": report["slo_attainment"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="traffic", help="Shipped application name.")
    parser.add_argument("--requests", type=int, default=1_000_000, help="Application requests per run.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed runs; the median is reported.")
    parser.add_argument(
        "--arrivals", nargs="+", default=["uniform", "poisson"], help="Arrival processes to time."
    )
    parser.add_argument(
        "--engine", default="bulk", choices=["bulk", "events"],
        help="bulk (vectorised dispatcher) or events (one dispatcher call per event).",
    )
    parser.add_argument("--json", default=None, help="Write the records as JSON to this file.")
    args = parser.parse_args()

    records = [measure(args.app, args.requests, args.repeats, kind, args.engine) for kind in args.arrivals]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print("| app | arrivals | engine | app requests | module requests | median s | app requests/s | attainment |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in records:
        print(
            f"| {r['app']} | {r['arrivals']} | {r['engine']} | {r['requests']:,} | {r['module_requests']:,} | "
            f"{r['median_s']:.2f} | {r['requests_per_s']:,.0f} | {100 * r['slo_attainment']:.2f}% |"
        )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(records, handle, indent=1)


if __name__ == "__main__":
    main()
