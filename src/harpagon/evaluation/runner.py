"""The ``harpagon compare`` workflow: build the suite, run it with a progress bar, write outputs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harpagon.errors import ConfigError
from harpagon.evaluation.comparison import DEFAULT_POLICIES, Outcome, run_comparison, summarize
from harpagon.evaluation.plots import plot_comparison
from harpagon.evaluation.report import summary_markdown, summary_notes
from harpagon.evaluation.suites import suite_workloads
from harpagon.model.loading import resolve_application
from harpagon.planning.registry import get_planner

__all__ = ["PLOT_APPLICATION", "compare_suite", "parse_policies", "summary_table"]

PLOT_APPLICATION = "traffic"
"""The shipped application whose cost against SLO the figure shows."""


def parse_policies(text: str | None) -> list[str]:
    """Return the policy names of a comma-separated list (default: all of them).

    Raises
    ------
    ConfigError
        If a name is unknown or the list is empty.
    """
    if text is None:
        return list(DEFAULT_POLICIES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"--policies must name at least one policy, got {text!r}")
    for name in names:
        get_planner(name)
    if "harpagon" not in names:
        names.insert(0, "harpagon")
    return names


def _clean(value: Any) -> Any:
    # JSON has no NaN: write null instead.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _plot_application(outcomes: Sequence[Outcome]) -> tuple[str | None, float | None]:
    # The shipped traffic application at its own rate when the suite has it.
    names = {o.app for o in outcomes if o.suite == "standard"}
    if PLOT_APPLICATION not in names:
        return None, None
    return PLOT_APPLICATION, resolve_application(PLOT_APPLICATION).rate


def summary_table(summary: dict[str, Any]) -> Table:
    """Return the per-policy figures as a rich table."""
    table = Table(title=f"{summary['workloads']} workloads")
    table.add_column("policy", no_wrap=True)
    for column in ("cost ratio med", "min", "max", "cheaper", "valid", "SLO met", "ms med", "ms p99"):
        table.add_column(column, justify="right")
    for name, row in summary["policies"].items():
        def num(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{value:.3g}"

        def share(value: float) -> str:
            return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"

        table.add_row(
            name, num(row["cost_ratio_median"]), num(row["cost_ratio_min"]),
            num(row["cost_ratio_max"]), share(row["cheaper_share"]), share(row["valid_share"]),
            share(row["slo_met_share"]), num(row["planning_ms_median"]),
            num(row["planning_ms_p99"]),
        )
    return table


def compare_suite(
    *,
    suite: str,
    policies: Sequence[str],
    seed: int,
    workers: int,
    simulate_s: float,
    json_path: Path | None,
    plot_path: Path | None,
    markdown_path: Path | None,
    console: Console,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``policies`` on ``suite``, print the table, write the requested files.

    Returns the summary dict (the JSON output without the per-workload outcomes).

    Raises
    ------
    ConfigError
        If the suite or a policy is unknown, or ``workers`` / ``simulate_s`` is out of range.
    """
    if simulate_s < 0:
        raise ConfigError(f"--simulate-s must be >= 0 seconds, got {simulate_s}")
    workloads = suite_workloads(suite, seed=seed)
    with Progress(
        TextColumn("[bold]compare[/bold] {task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=not progress,
    ) as bar:
        task = bar.add_task(f"{suite} suite", total=len(workloads))
        outcomes = run_comparison(
            workloads, policies, simulate_s=simulate_s, workers=workers,
            on_done=lambda n: bar.advance(task, n),
        )
    summary = summarize(outcomes, policies)
    summary["suite"] = suite
    summary["seed"] = seed
    summary["simulate_s"] = simulate_s
    console.print(summary_table(summary))
    for note in summary_notes(summary):
        console.print(f"- {note}")

    if json_path is not None:
        data = {**summary, "outcomes": [asdict(o) for o in outcomes]}
        json_path.write_text(json.dumps(_clean(data), indent=1) + "\n")
        console.print(f"wrote {json_path}")
    if markdown_path is not None:
        markdown_path.write_text(summary_markdown(summary, f"{suite} suite"))
        console.print(f"wrote {markdown_path}")
    if plot_path is not None:
        app_name, rate = _plot_application(outcomes)
        plot_comparison(outcomes, policies, plot_path, app_name=app_name, rate=rate)
        console.print(f"wrote {plot_path}")
    return summary
