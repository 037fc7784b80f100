"""Planning time of the ``harpagon`` and ``optimal`` planners on every shipped application.

Each planner runs once to warm up, then ``--repeats-*`` times. The table shows the median
and the 90th percentile of the wall time per plan (ms, ``time.perf_counter``) and the
median CPU time of the process (``time.process_time``), which other load on the machine
disturbs less. It also shows the plan's own ``planning_ms`` median and the cost. Profiles and the catalog are the shipped GPU
data, read once before timing. The OCR application is skipped unless ``--ocr`` is given,
because its profiles are measured on this machine first (about a minute). A synthetic
application of 10 modules on 10 hardware types with 10 batch sizes each (fixed seed)
is added with ``--synthetic``.

Usage::

    python benchmarks/bench_planning.py [--repeats-harpagon 50] [--repeats-optimal 10]
                                        [--json results.json] [--ocr] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from rich.console import Console
from rich.table import Table

from harpagon.model import Application, HardwareCatalog, HardwareType, Module, Profile, ProfileSet
from harpagon.model.loading import load_hardware, load_profiles, resolve_application, shipped_app_names
from harpagon.planning.registry import get_planner


def _machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        lscpu = ""
    model = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")),
        platform.processor() or "unknown CPU",
    )
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except FileNotFoundError:
        cores = "?"
    return f"{model}, {cores} cores (nproc), Python {platform.python_version()}"


def synthetic_inputs(seed: int = 7) -> tuple[Application, ProfileSet, HardwareCatalog]:
    """Return a 10-module DAG on 10 hardware types with 10 batch sizes per profile.

    Batch latency is ``d(b) = base + per_item * b`` ms with both terms drawn per model
    and scaled per hardware type. Faster types cost more per hour.
    """
    rng = np.random.default_rng(seed)
    speedup = np.sort(rng.uniform(1.0, 8.0, 10))
    hardware = HardwareCatalog({
        f"hw{i}": HardwareType(f"hw{i}", round(float(0.4 * factor ** 0.8 * rng.uniform(0.8, 1.2)), 4))
        for i, factor in enumerate(speedup)
    })
    sizes = [1, 2, 4, 8, 16, 24, 32, 48, 64, 128]
    profiles = {}
    modules = []
    for m in range(10):
        base, per_item = rng.uniform(2.0, 20.0), rng.uniform(0.5, 6.0)
        profiles[f"model{m}"] = Profile(
            f"model{m}",
            {
                f"hw{i}": {b: float((base + per_item * b) / factor) for b in sizes}
                for i, factor in enumerate(speedup)
            },
        )
        modules.append(Module(f"m{m}", f"model{m}", float(rng.uniform(0, 3)), float(rng.choice([1, 1, 2, 3]))))
    # A chain m0 -> ... -> m9 with two extra branches that join it again.
    edges = [(f"m{i}", f"m{i + 1}") for i in range(9)] + [("m1", "m5"), ("m3", "m8")]
    app = Application("synthetic10", 400.0, 1500.0, tuple(modules), tuple(edges))
    return app, ProfileSet(profiles), hardware


def _time_planner(policy: str, app: Any, profiles: Any, hardware: Any, repeats: int) -> dict[str, Any]:
    planner = get_planner(policy)
    plan = planner(app, profiles, hardware)
    wall_ms, cpu_ms, planning_ms = [], [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        plan = planner(app, profiles, hardware)
        wall_ms.append((time.perf_counter() - started) * 1000.0)
        cpu_ms.append((time.process_time() - cpu_started) * 1000.0)
        planning_ms.append(plan.planning_ms)
    wall_ms.sort()
    return {
        "app": app.name,
        "policy": policy,
        "modules": len(app.modules),
        "repeats": repeats,
        "median_ms": statistics.median(wall_ms),
        "p90_ms": wall_ms[min(len(wall_ms) - 1, int(0.9 * len(wall_ms)))],
        "cpu_median_ms": statistics.median(cpu_ms),
        "planning_ms_median": statistics.median(planning_ms),
        "cost_per_hour": plan.cost_per_hour,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-harpagon", type=int, default=50, help="timed runs of harpagon per app")
    parser.add_argument("--repeats-optimal", type=int, default=10, help="timed runs of optimal per app")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--ocr", action="store_true", help="include the OCR app (profiles it here first)")
    parser.add_argument(
        "--synthetic", action="store_true", help="include a 10-module, 10-hardware, 10-batch-size app"
    )
    args = parser.parse_args(argv)

    profiles, hardware = load_profiles(), load_hardware()
    results = []
    for name in shipped_app_names():
        app = resolve_application(name)
        app_profiles, app_hardware = profiles, hardware
        if name == "ocr":
            if not args.ocr:
                continue
            from harpagon.profiling.ocr import ensure_local_profiles

            app_profiles, app_hardware = ensure_local_profiles()
        for policy, repeats in (("harpagon", args.repeats_harpagon), ("optimal", args.repeats_optimal)):
            results.append(_time_planner(policy, app, app_profiles, app_hardware, repeats))
    if args.synthetic:
        app, app_profiles, app_hardware = synthetic_inputs()
        for policy, repeats in (("harpagon", args.repeats_harpagon), ("optimal", args.repeats_optimal)):
            results.append(_time_planner(policy, app, app_profiles, app_hardware, repeats))

    table = Table(title=f"Planning time per plan on {_machine()}", width=120)
    columns = ("app", "modules", "policy", "runs", "median ms", "p90 ms", "CPU median ms",
               "planning_ms median", "USD/h")
    for column in columns:
        table.add_column(column, justify="left" if column in ("app", "policy") else "right")
    for row in results:
        table.add_row(
            row["app"], str(row["modules"]), row["policy"], str(row["repeats"]),
            f"{row['median_ms']:.2f}", f"{row['p90_ms']:.2f}", f"{row['cpu_median_ms']:.2f}",
            f"{row['planning_ms_median']:.2f}",
            f"{row['cost_per_hour']:.3f}",
        )
    Console().print(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": _machine(), "results": results}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
