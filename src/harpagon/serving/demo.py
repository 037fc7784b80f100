"""The end-to-end demo (``harpagon demo``): profile, plan, serve and load the OCR application.

The demo measures the three OCR stage runners on this machine (cached per machine) and plans
the shipped ``ocr`` application with a planner (``harpagon`` by default). It validates the
plan and serves it with the local backend. A separate process then loads it with uniform
arrivals at the planned rate, and the demo compares what was planned with what was measured.

Measured figures come from two places. End-to-end latency and SLO attainment are the load
generator's own timings (from each request's scheduled send time to its response). Per
module, the server's Prometheus histograms give the batch execution time, the dispatcher
wait, the real batch size and the padding, as the difference of two ``/metrics`` scrapes
taken around the measured run. Histogram quantiles are interpolated within buckets
(Prometheus ``histogram_quantile`` style), so they are estimates; means are exact.
Latencies in ms, rates in req/s, cost in USD/h.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

from harpagon.errors import ConfigError
from harpagon.model.application import Application
from harpagon.model.hardware import HardwareCatalog
from harpagon.model.loading import load_application, shipped_data_path
from harpagon.model.plan import Plan
from harpagon.model.profiles import PROFILE_STATISTICS, ProfileSet
from harpagon.model.validate import validate_plan
from harpagon.serving.loadgen import (
    LAG_WARNING_MS,
    BenchReport,
    build_schedule,
    check_bench_options,
    load_requests,
    run_bench_in_process,
)

__all__ = [
    "ATTAINMENT_TARGET",
    "DemoResult",
    "HistogramSnapshot",
    "histogram_quantile",
    "parse_module_histograms",
    "print_demo",
    "run_demo",
    "verdict",
]

logger = logging.getLogger(__name__)

ATTAINMENT_TARGET = 0.99
"""SLO attainment the demo expects at the planned rate under uniform arrivals."""

WARM_UP_S = 3.0
"""Load at the planned rate before the measured run, so first-batch costs are not measured."""

OTHER_CPU_WARNING = 0.25
"""Cores used by processes outside the demo above which the verdict names them as a cause."""

SLOWDOWN_WARNING = 1.25
"""Ratio of measured mean batch time to the profile above which the verdict names the module."""

_MODULE_HISTOGRAMS = {
    "execution_ms": "harpagon_execution_time_seconds",
    "queue_ms": "harpagon_queue_time_seconds",
    "batch_size": "harpagon_batch_size",
}


# --- Histograms from /metrics ------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramSnapshot:
    """One Prometheus histogram series: cumulative bucket counts by upper bound, sum and count."""

    buckets: tuple[tuple[float, float], ...]
    """``(upper bound, cumulative count)`` in increasing bound order; the last bound is ``inf``."""
    total: float
    """Sum of the observed values."""
    count: float

    def minus(self, earlier: HistogramSnapshot | None) -> HistogramSnapshot:
        """Return the observations made since ``earlier`` (same bucket bounds)."""
        if earlier is None:
            return self
        before = dict(earlier.buckets)
        buckets = tuple((bound, value - before.get(bound, 0.0)) for bound, value in self.buckets)
        return HistogramSnapshot(buckets, self.total - earlier.total, self.count - earlier.count)

    @property
    def mean(self) -> float:
        """Mean observed value, NaN without observations."""
        return self.total / self.count if self.count > 0 else math.nan


def histogram_quantile(q: float, snapshot: HistogramSnapshot) -> float:
    """Estimate the ``q``-quantile (0 <= q <= 1) of a histogram by linear interpolation in its bucket.

    The lowest bucket is taken to start at 0. A quantile that falls in the ``+Inf`` bucket
    returns the highest finite bound. Returns NaN for an empty histogram.

    Examples
    --------
    >>> snap = HistogramSnapshot(((1.0, 2.0), (2.0, 4.0), (math.inf, 4.0)), 5.0, 4.0)
    >>> histogram_quantile(0.5, snap)
    1.0
    >>> histogram_quantile(0.75, snap)
    1.5
    """
    if snapshot.count <= 0:
        return math.nan
    rank = q * snapshot.count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in snapshot.buckets:
        if cumulative >= rank and cumulative > lower_count:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (cumulative - lower_count)
        lower_bound, lower_count = bound, cumulative
    return lower_bound


def parse_module_histograms(text: str) -> dict[str, dict[str, HistogramSnapshot]]:
    """Return ``{module: {name: snapshot}}`` for the runtime's per-module histograms in ``text``.

    ``name`` is ``execution_ms`` and ``queue_ms`` (converted from seconds to ms) and
    ``batch_size`` (real requests per batch), from a Prometheus text exposition.
    """
    from prometheus_client.parser import text_string_to_metric_families

    names_by_metric = {metric: name for name, metric in _MODULE_HISTOGRAMS.items()}
    raw: dict[tuple[str, str], dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        name = names_by_metric.get(family.name)
        if name is None:
            continue
        scale = 1000.0 if name.endswith("_ms") else 1.0
        for sample in family.samples:
            module = sample.labels.get("module")
            if module is None:
                continue
            entry = raw.setdefault((module, name), {"buckets": [], "sum": 0.0, "count": 0.0})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]) * scale, sample.value))
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value * scale
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value

    result: dict[str, dict[str, HistogramSnapshot]] = {}
    for (module, name), entry in raw.items():
        buckets = tuple(sorted(entry["buckets"]))
        result.setdefault(module, {})[name] = HistogramSnapshot(buckets, entry["sum"], entry["count"])
    return result


def _scrape(base_url: str) -> dict[str, dict[str, HistogramSnapshot]]:
    response = httpx.get(f"{base_url}/metrics", timeout=10.0)
    response.raise_for_status()
    return parse_module_histograms(response.text)


def _module_figures(
    after: dict[str, dict[str, HistogramSnapshot]], before: dict[str, dict[str, HistogramSnapshot]]
) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for module, histograms in after.items():
        delta = {name: snap.minus(before.get(module, {}).get(name)) for name, snap in histograms.items()}
        entry: dict[str, Any] = {}
        for name in ("execution_ms", "queue_ms"):
            snap = delta.get(name)
            if snap is None:
                continue
            entry[name] = {
                "mean": _json_float(snap.mean),
                "p50": _json_float(histogram_quantile(0.50, snap)),
                "p99": _json_float(histogram_quantile(0.99, snap)),
            }
        sizes = delta.get("batch_size")
        if sizes is not None:
            entry["batches"] = int(sizes.count)
            entry["real_batch_size_mean"] = _json_float(sizes.mean)
        figures[module] = entry
    return figures


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


# --- Planned figures -------------------------------------------------------------------------


def _planned_figures(plan: Plan, profiles: ProfileSet) -> dict[str, Any]:
    data = plan.to_dict()
    for module_data, module in zip(data["modules"], plan.modules, strict=True):
        profile = profiles[module.profile]
        for group_data, group in zip(module_data["groups"], module.groups, strict=True):
            group_data["batch_latency_ms"] = profile.batch_latency_ms(group.hardware, group.batch_size)
    return data


# --- The run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """Planned and measured figures of one demo run, in the shape ``harpagon demo --json`` writes."""

    planned: dict[str, Any]
    """The plan's JSON, each group with its profiled batch time ``batch_latency_ms``."""
    measured: dict[str, Any]
    """The load generator's report (``harpagon bench --json`` shape) plus per-module ``modules``."""

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"planned": ..., "measured": ...}``."""
        return {"planned": self.planned, "measured": self.measured}


def demo_application(rate: float | None = None) -> Application:
    """Return the shipped OCR application, with its rate replaced by ``rate`` (req/s) if given."""
    app = load_application(shipped_data_path("apps", "ocr.yaml"))
    return app if rate is None else app.with_overrides(rate=rate)


def run_demo(
    *,
    rate: float | None = None,
    duration_s: float = 30.0,
    port: int = 0,
    policy: str = "harpagon",
    progress: bool = True,
    profiles_and_hardware: tuple[ProfileSet, HardwareCatalog] | None = None,
    statistic: str = "p99",
) -> DemoResult:
    """Profile (or read the cache), plan, validate, serve and load the OCR application.

    Parameters
    ----------
    rate : float, optional
        Application rate, req/s; the shipped application's rate by default.
    duration_s : float
        Length of the measured load, s (a warm-up of :data:`WARM_UP_S` comes first).
    port : int
        Port of the server on 127.0.0.1; 0 picks a free one.
    policy : str
        Planner name (see ``harpagon.planning.registry``).
    progress : bool
        Show the profiler's progress bar when the profiles are not cached.
    profiles_and_hardware : tuple, optional
        Profiles and catalog to plan with instead of this machine's OCR profiles.
    statistic : str
        Statistic of this machine's profiles to plan on, ``p99`` (default) or ``mean``. A
        served plan must hold for nearly every batch, not for the mean one.

    Raises
    ------
    ConfigError
        If an option is out of range.
    InfeasiblePlan, InvalidPlan
        If no plan meets the SLO, or the plan breaks the model.
    """
    from harpagon.planning.registry import get_planner
    from harpagon.profiling.ocr import ensure_local_profiles
    from harpagon.serving.ocr import OcrAdapter
    from harpagon.serving.server import running_server

    check_bench_options(rate=demo_application().rate if rate is None else rate, duration_s=duration_s)
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    if statistic not in PROFILE_STATISTICS:
        raise ConfigError(f"--statistic must be one of {', '.join(PROFILE_STATISTICS)}, got {statistic!r}")

    # 1. Profiles of this machine, then the plan, checked by the shared validator.
    profiles, hardware = profiles_and_hardware or ensure_local_profiles(
        progress=progress, statistic=statistic
    )
    app = demo_application(rate)
    plan = get_planner(policy)(app, profiles, hardware)
    validate_plan(plan, app, profiles, hardware)
    logger.info("planned %s at %.3g req/s: cost %.4f USD/h, latency %.0f ms of SLO %.0f ms",
                app.name, plan.rate, plan.cost_per_hour, plan.latency_ms, plan.slo_ms)

    # 2. Serve it, warm it up, and measure one run at the planned rate from another process.
    requests = load_requests(None)
    schedule = build_schedule("uniform", rate=plan.rate, duration_s=duration_s)
    warm_up = build_schedule("uniform", rate=plan.rate, duration_s=WARM_UP_S)
    with running_server(
        plan, OcrAdapter(app), port=port, profiles=profiles, hardware=hardware
    ) as url:
        run_bench_in_process(url, app.name, requests, warm_up, duration_s=WARM_UP_S, slo_ms=plan.slo_ms)
        before = _scrape(url)
        cpu_before = cpu_sample()
        report: BenchReport = run_bench_in_process(
            url, app.name, requests, schedule, duration_s=duration_s, slo_ms=plan.slo_ms,
            extra={"arrivals": "uniform", "rate_rps": plan.rate},
        )
        cpu_after = cpu_sample()
        after = _scrape(url)

    # 3. Measured figures: the generator's report, per-module histograms, and the CPU used by
    # processes outside the demo, which shows whether they competed for the cores.
    planned = _planned_figures(plan, profiles)
    statistics = {profiles[module.profile].statistic for module in plan.modules}
    planned["profile_statistic"] = statistics.pop() if len(statistics) == 1 else "mixed"
    measured = report.to_dict()
    measured["modules"] = _module_figures(after, before)
    _add_slowdowns(planned, measured["modules"])
    measured["host"] = {
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "demo_cpu_cores": _cores(cpu_before, cpu_after, "own_s"),
        "other_cpu_cores": _cores(cpu_before, cpu_after, "other_s"),
    }
    return DemoResult(planned=planned, measured=measured)


def cpu_sample() -> dict[str, float] | None:
    """Return CPU seconds used so far by this process tree (``own_s``) and by all other processes.

    Reads ``/proc`` (Linux only; ``None`` elsewhere). ``own_s`` counts this process, its live
    descendants (the workers) and its reaped children (the load generator); ``other_s`` is the
    machine's busy time minus ``own_s``. ``wall_s`` is ``time.monotonic()``.
    """
    try:
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:8]]
        # user, nice, system, idle, iowait, irq, softirq: busy = all but idle and iowait.
        busy = sum(fields) - fields[3] - fields[4]
        parents: dict[int, int] = {}
        times: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue  # the process exited while the loop ran
            # The command name may contain spaces, so fields are counted after its closing ")".
            rest = stat[stat.rindex(")") + 2:].split()
            parents[int(entry)] = int(rest[1])
            times[int(entry)] = int(rest[11]) + int(rest[12])
            if int(entry) == os.getpid():
                times[int(entry)] += int(rest[13]) + int(rest[14])
    except (OSError, ValueError):
        return None

    own, frontier = 0, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        own += times.get(pid, 0)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return {"own_s": own / ticks_per_s, "other_s": (busy - own) / ticks_per_s, "wall_s": time.monotonic()}


def _cores(before: dict[str, float] | None, after: dict[str, float] | None, key: str) -> float | None:
    # Mean cores used between two samples: CPU seconds over wall seconds.
    if before is None or after is None or after["wall_s"] <= before["wall_s"]:
        return None
    return max(0.0, (after[key] - before[key]) / (after["wall_s"] - before["wall_s"]))


def _add_slowdowns(planned: dict[str, Any], modules: dict[str, dict[str, Any]]) -> None:
    # Slowdown: measured mean batch time over the planned d(b) of the module's (first) group,
    # which is the profile's p99 when the plan was made on p99 profiles.
    for module in planned["modules"]:
        figures = modules.get(module["name"])
        mean_ms = (figures or {}).get("execution_ms", {}).get("mean")
        if mean_ms is None:
            continue
        figures["slowdown"] = mean_ms / module["groups"][0]["batch_latency_ms"]


# --- Output ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_demo(result: DemoResult, console: Any) -> None:
    """Print planned against measured figures: per module, end to end, and the verdict."""
    from rich.table import Table

    planned, measured = result.planned, result.measured
    modules = Table(title=f"{planned['app']}: planned vs measured per module (ms)")
    for column in ("module", "workers", "b", "d(b)", "exec mean", "exec p99~", "wait p99~", "real b", "bound"):
        modules.add_column(column, justify="right")
    for module in planned["modules"]:
        figures = measured["modules"].get(module["name"], {})
        execution = figures.get("execution_ms", {})
        queue = figures.get("queue_ms", {})
        real_batch = figures.get("real_batch_size_mean")
        for group in module["groups"]:
            modules.add_row(
                module["name"],
                f"{group['workers']} x {group['hardware']}",
                str(group["batch_size"]),
                f"{group['batch_latency_ms']:.0f}",
                _ms(execution.get("mean")),
                _ms(execution.get("p99")),
                _ms(queue.get("p99")),
                "-" if real_batch is None else f"{real_batch:.2f}",
                f"{module['latency_ms']:.0f}",
            )
    console.print(modules)
    console.print(
        f"b: planned batch size; d(b): profiled batch time ({planned.get('profile_statistic', 'mean')}); "
        "exec: measured batch time; wait: time "
        "in the dispatcher from an item's creation to its batch closing; real b: mean real requests "
        "per batch; ~: estimated from histogram buckets; bound: planned module latency."
    )

    summary = Table(title="end to end", show_header=True)
    summary.add_column("figure")
    summary.add_column("planned", justify="right")
    summary.add_column("measured", justify="right")
    latency = measured["latency_ms"]
    summary.add_row("rate req/s", f"{planned['rate']:.3g}", f"{measured['throughput_rps']:.3g}")
    summary.add_row("latency p50 ms", "-", _ms(latency["p50"]))
    summary.add_row("latency p99 ms", "-", _ms(latency["p99"]))
    summary.add_row("latency max ms", f"<= {planned['latency_ms']:.0f}", _ms(latency["max"]))
    summary.add_row(
        "SLO attainment", f"100% within {planned['slo_ms']:.0f} ms",
        f"{measured['slo_attainment']:.2%}",
    )
    summary.add_row("errors", "0", f"{measured['errors']} {measured['errors_by_kind'] or ''}".strip())
    summary.add_row("cost USD/h", f"{planned['cost_per_hour']:.4f}", f"{planned['cost_per_hour']:.4f}")
    console.print(summary)

    for line in verdict(result):
        console.print(line)


def verdict(result: DemoResult) -> list[str]:
    """Return the demo's conclusion: target met or missed, and the likely causes of a miss."""
    measured = result.measured
    attainment = measured["slo_attainment"] or 0.0
    if attainment >= ATTAINMENT_TARGET:
        return [f"[green]target met: {attainment:.2%} of requests within the SLO (target {ATTAINMENT_TARGET:.0%})[/green]"]

    lines = [f"[red]target missed: {attainment:.2%} of requests within the SLO (target {ATTAINMENT_TARGET:.0%})[/red]"]
    slow = {
        name: figures["slowdown"]
        for name, figures in measured["modules"].items()
        if figures.get("slowdown", 0.0) > SLOWDOWN_WARNING
    }
    if slow:
        listed = ", ".join(f"{name} {ratio:.1f}x" for name, ratio in slow.items())
        lines.append(f"- batches ran slower than their profile ({listed}), so workers fell behind the plan")
    host = measured.get("host", {})
    other, own = host.get("other_cpu_cores"), host.get("demo_cpu_cores")
    if other is not None and other > OTHER_CPU_WARNING:
        lines.append(
            f"- other processes used {other:.2f} of the {host.get('cpus')} cores during the run "
            f"(the demo itself {own:.2f}); rerun on an idle machine"
        )
    rejected = measured["errors_by_kind"].get("http_503", 0)
    if rejected:
        lines.append(f"- {rejected} requests were rejected (HTTP 503) because the server's backlog exceeded the SLO")
    lag_ms = (measured.get("send_lag_ms") or {}).get("p99")
    if lag_ms is not None and lag_ms > LAG_WARNING_MS:
        lines.append(f"- the load generator sent its requests up to {lag_ms:.0f} ms late (p99)")
    return lines
