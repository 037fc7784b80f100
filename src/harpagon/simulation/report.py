"""The simulation report: SLO attainment, latency percentiles, batches, utilisation and cost.

:func:`summarize` turns a :class:`SimulationRun` into a JSON-ready dict; :func:`render`
prints it as rich tables. Latency in ms, rates in req/s, cost in USD/h.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from harpagon.simulation.engine import ModuleRun, SimulationRun

__all__ = ["LATENCY_TOL_MS", "render", "summarize"]

LATENCY_TOL_MS = 1e-6
"""A request whose latency exceeds the SLO by no more than this still meets it (float rounding)."""


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p50, p99 = np.percentile(values, [50.0, 99.0])
    return {"p50": float(p50), "p99": float(p99), "max": float(values.max())}


def _group_rows(run: SimulationRun, module: ModuleRun, span_ms: float) -> list[dict[str, Any]]:
    plan = run.plan.module(module.name)
    labels = [
        (g.hardware, g.batch_size, g.workers, g.dispatch) for g in plan.groups
    ]
    for machine_index, machine in enumerate(run.plan.shared_machines):
        for member in machine.members:
            if member.module == module.name:
                labels.append((machine.hardware, member.batch_size, 1, f"shared#{machine_index}"))
    rows = []
    for index, (hardware, batch_size, workers, dispatch) in enumerate(labels):
        selected = module.batch_group == index
        num_batches = int(selected.sum())
        real = int(module.batch_num_requests[selected].sum())
        slots = int(module.batch_size[selected].sum())
        busy_ms = float((module.batch_end_ms[selected] - module.batch_start_ms[selected]).sum())
        rows.append(
            {
                "group": index,
                "hardware": hardware,
                "batch_size": batch_size,
                "workers": workers,
                "dispatch": dispatch,
                "batches": num_batches,
                "requests": real,
                "mean_batch_size": real / num_batches if num_batches else 0.0,
                "utilisation": busy_ms / (workers * span_ms) if span_ms > 0 else 0.0,
                "dummy_share": (slots - real) / slots if slots else 0.0,
            }
        )
    return rows


def summarize(run: SimulationRun) -> dict[str, Any]:
    """Return the report of ``run`` as a JSON-ready dict.

    Keys: ``requests``, ``slo_ms``, ``slo_attainment``, ``latency_ms`` (p50, p99, max),
    ``plan_latency_ms``, ``modules`` (per module: requests, latency percentiles from
    release to finish, planned latency, mean batch size, dummy share and groups),
    ``dummy_share``, ``cost_per_hour``, ``cost`` (USD over the span), ``span_s``,
    ``rate`` and ``wall_seconds``. Utilisation is busy time over ``workers x span``.
    """
    latency = run.latency_ms
    slo_ms = run.plan.slo_ms
    modules: dict[str, Any] = {}
    total_slots = 0
    total_real = 0
    for name, module in run.modules.items():
        planned = run.plan.module(name)
        num_batches = module.batch_close_ms.size
        real = int(module.batch_num_requests.sum())
        slots = int(module.batch_size.sum())
        total_real += real
        total_slots += slots
        modules[name] = {
            "requests": int(module.request_finish_ms.size),
            "latency_ms": _percentiles(module.request_latency_ms),
            "planned_latency_ms": planned.latency_ms,
            "batches": int(num_batches),
            "mean_batch_size": real / num_batches if num_batches else 0.0,
            "dummy_share": (slots - real) / slots if slots else 0.0,
            "groups": _group_rows(run, module, run.span_ms),
        }
    span_s = run.span_ms / 1000.0
    return {
        "app": run.plan.app,
        "policy": run.plan.policy,
        "rate": run.rate,
        "requests": int(latency.size),
        "slo_ms": slo_ms,
        "slo_attainment": float(np.mean(latency <= slo_ms + LATENCY_TOL_MS)) if latency.size else 1.0,
        "latency_ms": _percentiles(latency),
        "plan_latency_ms": run.plan.latency_ms,
        "modules": modules,
        "dummy_share": (total_slots - total_real) / total_slots if total_slots else 0.0,
        "cost_per_hour": run.plan.cost_per_hour,
        "cost": run.plan.cost_per_hour * span_s / 3600.0,
        "span_s": span_s,
        "wall_seconds": run.wall_seconds,
    }


def render(report: dict[str, Any], console: Console) -> None:
    """Print ``report`` (from :func:`summarize`) as a summary, a module and a group table."""
    latency = report["latency_ms"]
    summary = Table(title=f"Simulation of {report['app']} ({report['policy']} plan)", show_header=False)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    rows = [
        ("application requests", str(report["requests"])),
        ("arrival rate", f"{report['rate']:.6g} req/s"),
        ("SLO attainment", f"{100 * report['slo_attainment']:.3f}% (SLO {report['slo_ms']:.6g} ms)"),
        ("latency p50 / p99 / max", f"{latency['p50']:.2f} / {latency['p99']:.2f} / {latency['max']:.2f} ms"),
        ("planned latency", f"{report['plan_latency_ms']:.2f} ms"),
        ("dummy share", f"{100 * report['dummy_share']:.2f}%"),
        ("cost", f"{report['cost_per_hour']:.3f} USD/h"),
    ]
    for row in rows:
        summary.add_row(*row)
    console.print(summary)

    modules = Table(title="Module requests, latency from release to finish (ms)")
    for column in ("module", "requests", "p50", "p99", "max", "planned"):
        modules.add_column(column, justify="left" if column == "module" else "right")
    for name, module in report["modules"].items():
        module_latency = module["latency_ms"]
        modules.add_row(
            name, str(module["requests"]), f"{module_latency['p50']:.2f}",
            f"{module_latency['p99']:.2f}", f"{module_latency['max']:.2f}",
            f"{module['planned_latency_ms']:.2f}",
        )
    console.print(modules)

    groups = Table(title="Groups")
    for column in ("module", "group", "mean batch", "utilisation", "dummy share"):
        groups.add_column(column, justify="left" if column in ("module", "group") else "right")
    for name, module in report["modules"].items():
        for group in module["groups"]:
            groups.add_row(
                name,
                f"{group['workers']} x {group['hardware']} b={group['batch_size']} {group['dispatch']}",
                f"{group['mean_batch_size']:.2f}",
                f"{100 * group['utilisation']:.1f}%",
                f"{100 * group['dummy_share']:.1f}%",
            )
    console.print(groups)
    console.print(
        f"simulated {report['span_s']:.1f} s in {report['wall_seconds']:.2f} s of wall time",
        highlight=False,
    )
