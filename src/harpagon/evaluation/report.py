"""Markdown tables of a comparison summary, for ``docs/evaluation.md`` and ``--markdown``."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summary_markdown", "summary_notes"]


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def _share(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{100.0 * value:.1f}%"


def summary_markdown(summary: dict[str, Any], title: str = "Comparison") -> str:
    """Return ``summary`` (from :func:`~harpagon.evaluation.comparison.summarize`) as Markdown."""
    lines = [
        f"### {title}",
        "",
        f"Workloads: {summary['workloads']}.",
        "",
        "| policy | cost / harpagon median | geomean | min | max | cheaper than harpagon | "
        "valid | SLO met in simulation | planning ms median | p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary["policies"].items():
        lines.append(
            f"| {name} | {_num(row['cost_ratio_median'])} | {_num(row['cost_ratio_geomean'])} | "
            f"{_num(row['cost_ratio_min'])} | "
            f"{_num(row['cost_ratio_max'])} | {_share(row['cheaper_share'])} | "
            f"{_share(row['valid_share'])} | {_share(row['slo_met_share'])} | "
            f"{_num(row['planning_ms_median'])} | {_num(row['planning_ms_p99'])} |"
        )
    lines += ["", *(f"- {note}" for note in summary_notes(summary))]
    return "\n".join(lines) + "\n"


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """Return the overall figures of ``summary`` as sentences: optimality, fluid bound, first cut."""
    bound = summary["over_fluid_bound_median"]
    bound_max = summary["over_fluid_bound_max"]
    notes = [
        f"harpagon within 0.1% of optimal: {_share(summary['harpagon_optimal_share'])} of "
        f"{summary['harpagon_optimal_compared']} workloads where both have a plan.",
        f"cost over the fluid bound, median (max): harpagon {_num(bound.get('harpagon'))} "
        f"({_num(bound_max.get('harpagon'))}), optimal {_num(bound.get('optimal'))} "
        f"({_num(bound_max.get('optimal'))}).",
    ]
    first_cut = summary.get("first_cut", {})
    if first_cut.get("workloads"):
        notes.append(
            f"exact latency bound over the first-cut formula (single-group variant, "
            f"{first_cut['workloads']} standard workloads): median "
            f"{_num(first_cut['cost_ratio_median'], 4)}, mean "
            f"{_num(first_cut['cost_ratio_mean'], 4)}, max {_num(first_cut['cost_ratio_max'], 4)}."
        )
    return notes
